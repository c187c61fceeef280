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
# The photo check set's test builds from the photographs of Debian's mate-backgrounds.
if [ ! -d /usr/share/backgrounds/mate/nature ]; then
  echo "capflow: installing mate-backgrounds" >&2
  apt_install mate-backgrounds
fi
# numpy reads the .npy files of `capflow export` in test/cli/export.int.test.ts: a reader that shares
# no code with capflow's own.
if ! python3 -c "import numpy" >/dev/null 2>&1; then
  echo "capflow: installing python3-numpy" >&2
  apt_install python3-numpy
fi
cd "$root"
pnpm typecheck
pnpm lint
pnpm vitest run --project unit --project integration "$@"
# The chaos tests whose reduced sizes (test/support/fault/chaos-config.ts) are proven, once each, so the
# suite cannot rot outside CI; the full sizes stay in `pnpm test:chaos`. Not yet here, each for a reason
# in docs/reliability.md ("The CI-size chaos run"): checkpoint-crash (its S3 half), resume and the memory
# soak, the Sentinel failover (minutes), and conservation (on idle cores its 60 images are all encoded
# before the first fault lands, so it cannot show faults that hit live work). Skipped when the caller
# picked test files.
if [ "$#" -eq 0 ]; then
  CAPFLOW_CHAOS_SCALE=ci pnpm vitest run --project chaos \
    test/chaos/store-faults test/chaos/fuzz test/chaos/redis-outage test/chaos/poison-pill
fi
