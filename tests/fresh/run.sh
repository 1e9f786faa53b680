#!/usr/bin/env bash
# tests/fresh/run.sh — `make fresh-check`: the README's two commands on a bare Debian 12.
#
# As root: makes a minimal Debian 12 root (debootstrap --variant=minbase bookworm, from
# the mirror of this machine's own apt sources; the pristine root is cached as a tarball
# in /var/tmp, so later runs skip the download), copies in a clean clone of the current
# commit (uncommitted changes are not checked), and runs inside it, as a city's IT team
# would on a new machine:
#
#   apt-get install git make       what the README asks for before `make run`
#   make                           a build alone names the missing Debian packages
#   make run DETACH=1              must work the first time: installs, builds, starts
#   the three simulated softwares' events are in PostgreSQL; the API answers a timeline
#   make stop                      and then no process is left running in the root
#   make test                      the whole suite, inside the root
#   make deb                       the package, then installed into a second pristine root
#                                  and run from its units (tests/fresh/deb_check.sh)
#
# /proc, /sys and /dev are mounted in the root and unmounted on every exit path; services
# may not start there (policy-rc.d); the root's own folder is 0755 (PostgreSQL runs as
# `postgres` inside and must reach its folders). Prints "N passed, N failed" last: its own
# steps plus the counts of `make test` inside.
#
# Exit 0 when all passed, 1 when something failed, 77 when the root could not be made (no
# debootstrap, no mirror): .ci/run then falls back to `make test` on the host.
# FRESH_KEEP=1 keeps the root for a look afterwards (it is still unmounted); FRESH_MIRROR
# and FRESH_CACHE override the mirror and the cached tarball.
set -u
cd "$(dirname "$0")/../.."
SRC=$(pwd)
CACHE=${FRESH_CACHE:-/var/tmp/civibus-fresh-bookworm-minbase.tar}
passed=0 failed=0 failures=()

say() { printf '[fresh] %s\n' "$*"; }
cannot() { say "CANNOT MAKE THE FRESH ROOT: $*"; exit 77; }
record() {  # name rc [logfile]
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1)); echo "PASS fresh: $1"
    else
        failed=$((failed + 1)); failures+=("fresh: $1"); echo "FAIL fresh: $1 (exit $2)"
        [ -n "${3:-}" ] && [ -f "$3" ] && tail -n 40 "$3" | sed 's/^/    | /'
    fi
}

[ "$(id -u)" -eq 0 ] || cannot "must run as root (debootstrap, chroot, mounts)"
git -C "$SRC" rev-parse HEAD >/dev/null 2>&1 || cannot "$SRC is not a git checkout"
[ -z "$(git -C "$SRC" status --porcelain --untracked-files=no)" ] ||
    say "note: uncommitted changes are not checked: the root gets a clone of HEAD"

# The mirror: the first bookworm source of this machine's apt configuration.
mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm([ \n]|$)/ && !/bookworm-security/ {
                 if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { s = substr($0, RSTART, RLENGTH);
                 sub(/URIs:[ \t]*/, "", s); print s; exit } }' "$f"
    done
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" && $0 ~ / bookworm / { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }'
}
MIRROR=${FRESH_MIRROR:-$(mirror | head -n 1)}
[ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian

# A cached root older than 30 days is made again (apt-get upgrades it anyway, but a root
# that old would spend the run downloading what changed).
[ -s "$CACHE" ] && [ -n "$(find "$CACHE" -mtime +30 2>/dev/null)" ] && rm -f "$CACHE"
if [ ! -s "$CACHE" ]; then
    if ! command -v debootstrap >/dev/null 2>&1; then
        say "installing debootstrap on this machine"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; } \
            </dev/null >/dev/null 2>&1 || cannot "debootstrap is not installed and could not be"
    fi
    say "making a minimal Debian 12 root from $MIRROR (cached afterwards in $CACHE)"
    B=$(mktemp -d /var/tmp/civibus-debootstrap.XXXXXX)
    if ! debootstrap --variant=minbase bookworm "$B/root" "$MIRROR" >"$B.log" 2>&1; then
        tail -n 20 "$B.log"; rm -rf "$B" "$B.log"; cannot "debootstrap failed (log above)"
    fi
    tar -C "$B/root" -cf "$CACHE.part" . && mv "$CACHE.part" "$CACHE" || { rm -rf "$B" "$B.log"; cannot "could not write $CACHE"; }
    rm -rf "$B" "$B.log"
fi

W=$(mktemp -d /var/tmp/civibus-fresh.XXXXXX)
R=$W/root
LOG=$W/log
mkdir -p "$R" "$LOG"
mounted=()

host_local_cas() {  # DIR: writes each authority of this machine's bundle that Debian does not ship
    local bundle=/etc/ssl/certs/ca-certificates.crt
    [ -r "$bundle" ] && command -v python3 >/dev/null 2>&1 || return 0
    mkdir -p "$1"
    python3 - "$bundle" "$1" <<'PY'
import glob, re, sys
pem = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
debian = set()
for f in glob.glob("/usr/share/ca-certificates/**/*.crt", recursive=True):
    debian.update("".join(c.split()) for c in pem.findall(open(f, errors="replace").read()))
n = 0
for c in pem.findall(open(sys.argv[1], errors="replace").read()):
    if "".join(c.split()) not in debian:
        n += 1
        open("%s/civibus-host-%d.crt" % (sys.argv[2], n), "w").write(c + "\n")
PY
}

in_root_pids() {  # the processes whose root directory is the fresh root
    local p r
    for p in /proc/[0-9]*; do
        r=$(readlink "$p/root" 2>/dev/null) || continue
        [ "$r" = "$R" ] && echo "${p#/proc/}"
    done
}

cleanup() {
    local pids
    pids=$(in_root_pids)
    [ -n "$pids" ] && { kill -TERM $pids 2>/dev/null; sleep 2; pids=$(in_root_pids); [ -n "$pids" ] && kill -KILL $pids 2>/dev/null; sleep 0.5; }
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount -R "${mounted[$i]}" 2>/dev/null || umount -R -l "${mounted[$i]}" 2>/dev/null
    done
    if grep -q " $R/" /proc/self/mounts; then
        say "could not unmount everything under $R: left in place"
    elif [ "${FRESH_KEEP:-0}" = 1 ]; then
        say "kept the root in $R"
    else
        rm -rf "$W"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tar -C "$R" -xf "$CACHE" || cannot "could not unpack $CACHE"
chmod 0755 "$R"     # tar restores the cached root's own mode; PostgreSQL's user must get in

# What an installed machine has and a debootstrap root lacks: names, DNS, this machine's
# own apt sources (same mirror, updates and security), and no service starts.
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$R/etc/hosts"
echo civibus-fresh >"$R/etc/hostname"
cp -L /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null
if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
    cp /etc/apt/sources.list.d/*.sources "$R/etc/apt/sources.list.d/" && : >"$R/etc/apt/sources.list"
fi
# This machine's own certificate authorities (those not shipped by Debian's ca-certificates:
# a city's TLS proxy, say) are trusted in the root as on the machine, or npm could not reach
# its registry for the browser tests: ca-certificates adds /usr/local/share/ca-certificates.
host_local_cas "$R/usr/local/share/ca-certificates"
printf '#!/bin/sh\n# civibus fresh-check: no service starts in this root\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
chmod 0755 "$R/usr/sbin/policy-rc.d"

mount -t proc proc "$R/proc" && mounted+=("$R/proc") || cannot "could not mount /proc in the root"
mount -t sysfs sysfs "$R/sys" && mounted+=("$R/sys") || cannot "could not mount /sys in the root"
mount --rbind /dev "$R/dev" && mounted+=("$R/dev") || cannot "could not mount /dev in the root"
mount --make-rslave "$R/dev"    # unmounting the copy never touches this machine's /dev

git clone -q --no-hardlinks "$SRC" "$R/civibus" || cannot "could not clone $SRC"
say "root ready in $R: Debian $(cat "$R/etc/debian_version"), civibus $(git -C "$R/civibus" rev-parse --short HEAD)"

inroot() {  # command line: runs in the root, in the clone, with a clean environment
    chroot "$R" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 TERM=dumb CI="${CI:-}" bash -c "cd /civibus && $1" </dev/null
}

# 1. The README's prerequisite on a bare machine: git (to clone) and make.
start=$SECONDS
inroot 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git make >/dev/null' >"$LOG/make.log" 2>&1
record "apt-get install git make" $? "$LOG/make.log"

# 1b. A plain build before anything is installed stops at once and names the packages.
inroot 'make' >"$LOG/build-bare.log" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "these Debian packages are missing: .*libzmq3-dev" "$LOG/build-bare.log" \
        && ! grep -q "undefined reference" "$LOG/build-bare.log"; then
    record "a build without the libraries names the missing Debian packages" 0
else
    record "a build without the libraries names the missing Debian packages" 1 "$LOG/build-bare.log"
fi

# 2. make run DETACH=1, at the first try.
start=$SECONDS
inroot 'make run DETACH=1' >"$LOG/run.log" 2>&1
rc=$?
say "make run took $((SECONDS - start)) s"
record "make run DETACH=1 at the first try" $rc "$LOG/run.log"

# 3. What it started works: events of the three softwares, and the API serves a timeline.
if [ $rc -eq 0 ]; then
    inroot '. var/run.env && for s in etat-civil urbanisme dechets; do
                n=$(psql -X -A -t -c "select count(*) from events where source = '"'"'$s'"'"'")
                echo "$s: $n events"; [ "${n:-0}" -gt 0 ] || exit 1
            done' >"$LOG/events.log" 2>&1
    record "events of the three simulated softwares in PostgreSQL" $? "$LOG/events.log"
    inroot 'python3 - <<PY
import json, urllib.request
tok = open("var/api-token").read().strip()
def get(path):
    rq = urllib.request.Request("http://127.0.0.1:8480" + path, headers={"Authorization": "Bearer " + tok})
    return json.load(urllib.request.urlopen(rq, timeout=10))
found = get("/v1/citizens?name=dupont")["items"]
assert found, "no citizen named Dupont"
tl = get("/v1/citizens/%d/timeline" % found[0]["id"])
assert tl["events"] and tl["requests"], tl
print("timeline of citizen %d: %d events, %d requests" % (found[0]["id"], len(tl["events"]), len(tl["requests"])))
PY' >"$LOG/api.log" 2>&1
    record "the API answers a citizen's timeline" $? "$LOG/api.log"
fi

# 4. make stop, and nothing left running in the root.
inroot 'make stop' >"$LOG/stop.log" 2>&1
record "make stop" $? "$LOG/stop.log"
sleep 1
left=$(in_root_pids)
if [ -n "$left" ]; then
    for p in $left; do echo "left running: $p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"; done >"$LOG/left.log"
    record "nothing left running after make stop" 1 "$LOG/left.log"
    kill -KILL $left 2>/dev/null
else
    record "nothing left running after make stop" 0
fi

# 5. make test, inside the root; its own PASS/FAIL lines are shown as they come.
start=$SECONDS
# In the background and waited for: a signal to this script interrupts `wait` at once, and
# the clean-up ends the root's processes (a foreground pipeline would defer the trap).
{ inroot 'make test'; echo $? >"$LOG/test.rc"; } 2>&1 | tee "$LOG/test.log" \
    | grep --line-buffered -E '^(PASS|FAIL) |^    \|' | sed -u "s/^/  /" &
wait $!
rc=$(cat "$LOG/test.rc" 2>/dev/null || echo 1)
say "make test took $((SECONDS - start)) s"
last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$LOG/test.log" | tail -n 1)
if [ -n "$last" ]; then
    passed=$((passed + ${last%% passed*}))
    f=${last#*, }; failed=$((failed + ${f%% failed}))
    mapfile -t -O "${#failures[@]}" failures < <(sed -n 's/^failed: //p' "$LOG/test.log")
    [ $rc -ne 0 ] && [ "${f%% failed}" = 0 ] && record "make test exit code" $rc "$LOG/test.log"
else
    record "make test ran to its summary line" 1 "$LOG/test.log"
fi
left=$(in_root_pids)
[ -z "$left" ] || record "nothing left running after make test" 1

# 6. The Debian package: built here (make deb), then installed into a SECOND pristine root
#    from the same cached tarball, where the units run it (tests/fresh/deb_check.sh).
inroot 'make deb' >"$LOG/deb.log" 2>&1
rc=$?
record "make deb" $rc "$LOG/deb.log"
if [ $rc -eq 0 ]; then
    start=$SECONDS
    FRESH_CACHE=$CACHE bash "$SRC/tests/fresh/deb_check.sh" "$(ls "$R"/civibus/dist/civibus_*.deb | tail -n 1)" \
        >"$LOG/deb-check.log" 2>&1
    rc=$?
    say "the package's check took $((SECONDS - start)) s"
    grep -E '^(PASS|FAIL) deb:' "$LOG/deb-check.log" | sed 's/^/  /'
    record "the .deb installs and runs on a second pristine root (tests/fresh/deb_check.sh)" $rc "$LOG/deb-check.log"
fi

echo
[ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
