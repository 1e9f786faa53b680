#!/usr/bin/env bash
# deploy/deps.sh [run|test] — makes sure the Debian 12 packages civibus needs are here.
#
# As root, installs what is missing (apt-get, non-interactive). Otherwise names the
# missing packages and the command to install them, and exits 1.
set -euo pipefail

build=(gcc make pkg-config libzmq3-dev libczmq-dev libjansson-dev libyaml-dev libpq-dev
       libsodium-dev libcurl4-openssl-dev libmicrohttpd-dev libexpat1-dev libjemalloc-dev python3
       postgresql postgresql-client)
test_extra=(libcmocka-dev valgrind procps psmisc curl python3-yaml)
want=("${build[@]}")
[ "${1:-run}" = test ] && want+=("${test_extra[@]}")

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "civibus needs these Debian packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq </dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
echo "packages installed"
