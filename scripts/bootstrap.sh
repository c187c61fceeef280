#!/usr/bin/env bash
# Installs what capflow needs on a fresh Debian/Ubuntu machine with Node 22.13+ (20.19+ works): pnpm, the workspace's
# packages, and redis-server (via apt when missing and running as root; else a clear message).
# Sourced by ./capflow and scripts/test.sh; idempotent and quiet when everything is there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

need_node() {
  if ! command -v node >/dev/null 2>&1; then
    echo "capflow needs Node.js 20 or newer: https://nodejs.org/ (or: apt-get install nodejs)" >&2
    exit 1
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$major" -lt 20 ]; then
    echo "capflow needs Node.js 20 or newer; found $(node --version)" >&2
    exit 1
  fi
}

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "capflow needs: $*. Install with: sudo apt-get update && sudo apt-get install -y $*" >&2
    exit 1
  fi
  if [ ! -f /tmp/.capflow-apt-updated ]; then
    apt-get update -qq >/dev/null && touch /tmp/.capflow-apt-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

need_node
if ! command -v pnpm >/dev/null 2>&1; then
  echo "capflow: installing pnpm" >&2
  npm install -g pnpm@12.21.0 >/dev/null 2>&1 || { echo "could not install pnpm: run npm install -g pnpm@12" >&2; exit 1; }
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "capflow: installing redis-server" >&2
  apt_install redis-server
fi
# Stamp the install with the lockfile's hash so an unchanged tree skips pnpm entirely.
stamp="$root/node_modules/.capflow-install-stamp"
want="$(cat "$root/pnpm-lock.yaml" "$root/package.json" "$root"/packages/*/package.json | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "capflow: installing packages (pnpm install)" >&2
  (cd "$root" && pnpm install --frozen-lockfile --reporter=silent) || (cd "$root" && pnpm install --frozen-lockfile)
  echo "$want" >"$stamp"
fi
