#!/usr/bin/env bash
# The README's test command: installs what the tests need, then type-checks, lints and runs the unit
# and integration suites (the integration suite starts its own redis-server, S3 server and Prometheus).
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
cd "$root"
pnpm typecheck
pnpm lint
pnpm vitest run --project unit --project integration "$@"
