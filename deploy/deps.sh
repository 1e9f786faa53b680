#!/usr/bin/env bash
# deploy/deps.sh [run|test|fuzz|check [build|test|fuzz]] — the Debian 12 packages civibus needs.
#
#   run, test, fuzz  makes sure the packages for `make run` (or `make test`, `make fuzz`)
#                are installed. As root, installs what is missing (apt-get,
#                non-interactive); otherwise names the missing packages and the command to
#                install them, exits 1.
#   check KIND   installs nothing: asks pkg-config for every library the build links
#                (KIND test adds cmocka; KIND fuzz clang with libFuzzer, ASan and UBSan) and
#                the compiler; names the Debian package of each one missing and exits 1.
#                The Makefile runs it before it computes its flags, so a machine without a
#                library gets one line naming the package, never a wall of linker errors.
#
# The build's libraries are listed once, below, as pkg-config module = Debian package;
# the Makefile takes its module list from `deps.sh modules`.
set -euo pipefail

# pkg-config module : Debian package that ships its .pc file
libs=(libzmq:libzmq3-dev libczmq:libczmq-dev jansson:libjansson-dev yaml-0.1:libyaml-dev
      libpq:libpq-dev libsodium:libsodium-dev libcurl:libcurl4-openssl-dev
      libmicrohttpd:libmicrohttpd-dev expat:libexpat1-dev jemalloc:libjemalloc-dev)
test_libs=(cmocka:libcmocka-dev)

build=(gcc make pkg-config python3 postgresql postgresql-client curl)   # curl: what make run's banner says to try
for l in "${libs[@]}"; do build+=("${l#*:}"); done
# the mail flow of `make run` and of the tests: the throwaway mail servers (below)
mail=(dovecot-imapd dovecot-lmtpd postfix)
test_extra=(libcmocka-dev valgrind procps psmisc python3-yaml python3-zmq python3-jsonschema
            "${mail[@]}" iproute2)
# dovecot-imapd, dovecot-lmtpd, postfix: the test mail servers (tests/mail/mailctl.sh starts
# its own instances on loopback ports, never the system's); iproute2: `ss` in their test.
# Their postinst would start the system's dovecot and postfix (all addresses, ports 25/143):
# installing them, a policy-rc.d forbidding service starts is put in place when the machine
# has none, and removed after.
# chromium, nodejs, npm: the browser tests (tests/browser/: playwright-core and axe-core from
# npm drive Debian's chromium). A machine whose Node.js comes with its own npm (NodeSource's
# nodejs) does not need Debian's npm package: it is asked for only when `npm` is missing.
# ca-certificates: npm reaches its registry over TLS with the system's bundle.
test_extra+=(chromium nodejs ca-certificates)
command -v npm >/dev/null 2>&1 || test_extra+=(npm)
# make fuzz (tests/fuzz/): Debian's clang, its sanitizer and libFuzzer runtimes, and
# llvm-symbolizer for readable crash stacks
fuzz_extra=(clang-14 libclang-rt-14-dev llvm-14)

mode=${1:-run}
case "$mode" in
modules)    # the pkg-config modules the build links, for the Makefile
    for l in "${libs[@]}"; do printf '%s ' "${l%%:*}"; done; echo
    exit 0 ;;
check)
    want=("${libs[@]}")
    [ "${2:-build}" = test ] && want+=("${test_libs[@]}")
    missing=()
    command -v "${CC:-cc}" >/dev/null 2>&1 || missing+=(gcc)
    if ! command -v pkg-config >/dev/null 2>&1; then
        missing+=(pkg-config)
        for l in "${want[@]}"; do missing+=("${l#*:}"); done
    else
        for l in "${want[@]}"; do
            pkg-config --exists "${l%%:*}" 2>/dev/null || missing+=("${l#*:}")
        done
    fi
    command -v pg_config >/dev/null 2>&1 || [ -f /usr/include/postgresql/libpq-fe.h ] || missing+=(libpq-dev)
    if [ "${2:-build}" = fuzz ]; then
        if ! command -v clang-14 >/dev/null 2>&1; then
            missing+=(clang-14 libclang-rt-14-dev)
        elif ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' \
                | clang-14 -fsanitize=fuzzer,address,undefined -x c - -o /dev/null 2>/dev/null; then
            missing+=(libclang-rt-14-dev)
        fi
    fi
    [ ${#missing[@]} -eq 0 ] && exit 0
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "civibus cannot be built: these Debian packages are missing: ${missing[*]}" >&2
    echo "  install them with 'make deps' as root, or: sudo apt-get install ${missing[*]}" >&2
    echo "  ('make run' and 'make test' install them themselves when run as root)" >&2
    exit 1 ;;
run|test|fuzz) ;;
*)  echo "usage: deploy/deps.sh [run|test|fuzz|check [build|test|fuzz]|modules]" >&2; exit 2 ;;
esac

want=("${build[@]}")
[ "$mode" = run ] && want+=("${mail[@]}")
[ "$mode" = test ] && want+=("${test_extra[@]}")
[ "$mode" = fuzz ] && want+=("${fuzz_extra[@]}")

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    if [ "$mode" = run ]; then    # without root the mail servers cannot run anyway: not needed
        rest=()
        for p in "${missing[@]}"; do [[ " ${mail[*]} " == *" $p "* ]] || rest+=("$p"); done
        missing=("${rest[@]}")
        [ ${#missing[@]} -eq 0 ] && exit 0
    fi
    echo "civibus needs these Debian packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "installing Debian packages (${#missing[@]}, a few minutes on a bare machine): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq </dev/null
policy=/usr/sbin/policy-rc.d own_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# deploy/deps.sh: no service starts while installing\nexit 101\n' >"$policy"
    chmod 755 "$policy"; own_policy=1
    trap 'rm -f "$policy"' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
[ "$own_policy" = 1 ] && rm -f "$policy"
echo "packages installed"
