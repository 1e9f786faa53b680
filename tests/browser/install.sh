#!/usr/bin/env bash
# tests/browser/install.sh LOGFILE — installs tests/browser's npm packages (playwright-core,
# axe-core, pinned by package-lock.json) when they are missing or older than the lock file.
#
# The registry may be reached through a TLS proxy whose authority is in the system's bundle
# but not in Node.js's own list: npm is given that bundle explicitly (--cafile), so it does
# not depend on an npmrc or a NODE_EXTRA_CA_CERTS the machine may not have (CI's does not).
# The three browser tests call this; the lock makes two callers install once.
set -euo pipefail
B=$(cd "$(dirname "$0")" && pwd)
LOG=${1:-/dev/stderr}
exec 9>"$B/.install.lock"
flock 9
if [ -d "$B/node_modules/playwright-core" ] && [ -d "$B/node_modules/axe-core" ] &&
   [ ! "$B/package-lock.json" -nt "$B/node_modules" ]; then
    exit 0
fi
ca=()
for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
    if [ -r "$f" ]; then
        ca=(--cafile="$f"); export NODE_EXTRA_CA_CERTS=${NODE_EXTRA_CA_CERTS:-$f}; break
    fi
done
cd "$B"
if ! npm ci --no-audit --no-fund --loglevel=error "${ca[@]}" >"$LOG" 2>&1; then
    echo "npm ci in tests/browser failed (the registry unreachable?): $(tail -5 "$LOG")" >&2
    exit 1
fi
touch "$B/node_modules"
