#!/usr/bin/env bash
# The README's test command: installs what the tests need, then type-checks, lints and runs the unit
# and integration suites (the integration suite starts its own redis-server, S3 server and Prometheus),
# then the chaos suite at CI size.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/bootstrap.sh"
for tool in prometheus chromium; do
  if ! command -v "$tool" >/dev/null 2>&1; then echo "capflow: installing $tool" >&2; apt_install "$tool"; fi
done
cd "$root"
pnpm typecheck
pnpm lint
pnpm vitest run --project unit --project integration "$@"
# Every chaos test once at its reduced size (CAPFLOW_CHAOS_SCALE=ci, test/support/fault/chaos-config.ts),
# so the suite cannot rot outside CI; the full sizes stay in `pnpm test:chaos`. Sizes, seeds and times
# in docs/reliability.md ("The CI-size chaos run"). Skipped when the caller picked test files.
if [ "$#" -eq 0 ]; then
  CAPFLOW_CHAOS_SCALE=ci pnpm vitest run --project chaos
fi
