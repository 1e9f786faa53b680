#!/usr/bin/env bash
# tests/fresh/deb_check.sh DEB — the Debian package on a pristine Debian 12, as a city's
# IT team would install it (docs/operations.md, "Install"). Called by tests/fresh/run.sh
# (make fresh-check) with the .deb built in its first root; runnable alone, as root:
#   make deb && bash tests/fresh/deb_check.sh dist/civibus_*.deb
#
# A SECOND root is unpacked from the cached debootstrap tarball (FRESH_CACHE, default
# /var/tmp/civibus-fresh-bookworm-minbase.tar; made by run.sh): nothing of civibus's build
# is in it. There:
#   1. apt-get install --no-install-recommends ./civibus.deb pulls the runtime libraries
#      from the mirror (that proves Depends); the users, the groups and /var/lib/civibus
#      are made with their owners and modes; nothing is enabled and nothing runs;
#   2. Debian's PostgreSQL 15 (its own cluster, started by hand: no systemd here), the
#      package's roles.sql, a database owned by civibus_owner and migrated by
#      `civibus-hub --migrate` as that role, peer authentication mapping each service
#      user to its role (the hub then runs as civibus_hub, the API as civibus_api);
#   3. the hub, the API and one adapter (the file-drop example-311 source, an export made
#      by tests/tools/gen_311.py dropped in its inbox) started from their unit files by
#      tests/fresh/supervise.sh, as the units' users: the export's events reach the
#      timeline, the API answers a tracking code (public) and a token's request count;
#   3b. the same package repacked as version N+1 with one more migration, installed over
#      it (an upgrade): the postinst migrates as civibus_owner and try-restarts what runs
#      (a stand-in systemctl), the edited conffile, the keys and the users stay, the hub
#      starts again on it;
#   4. a stop of everything by SIGTERM, then `apt-get remove` keeps /var/lib/civibus and
#      `apt-get purge` removes it, the users staying.
# Prints PASS/FAIL lines and "N passed, N failed"; exit 0 all passed, 1 a failure, 77
# when the root cannot be made (no cached tarball, not root).
set -u
cd "$(dirname "$0")/../.."
SRC=$(pwd)
DEB=${1:?usage: deb_check.sh civibus_VERSION_ARCH.deb}
CACHE=${FRESH_CACHE:-/var/tmp/civibus-fresh-bookworm-minbase.tar}
passed=0 failed=0 failures=()
say() { printf '[deb] %s\n' "$*"; }
cannot() { say "CANNOT CHECK THE PACKAGE: $*"; exit 77; }
record() {  # name rc [logfile]
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1)); echo "PASS deb: $1"
    else
        failed=$((failed + 1)); failures+=("deb: $1"); echo "FAIL deb: $1 (exit $2)"
        [ -n "${3:-}" ] && [ -f "$3" ] && tail -n 40 "$3" | sed 's/^/    | /'
    fi
}
[ "$(id -u)" -eq 0 ] || cannot "must run as root (chroot, mounts)"
[ -s "$DEB" ] || cannot "no package $DEB"
[ -s "$CACHE" ] || cannot "no cached Debian 12 root $CACHE (make fresh-check makes it)"

W=$(mktemp -d /var/tmp/civibus-deb.XXXXXX)
R=$W/root LOG=$W/log
mkdir -p "$R" "$LOG"
mounted=()
in_root_pids() {
    local p r
    for p in /proc/[0-9]*; do
        r=$(readlink "$p/root" 2>/dev/null) || continue
        [ "$r" = "$R" ] && echo "${p#/proc/}"
    done
}
cleanup() {
    local pids i
    pids=$(in_root_pids)
    [ -n "$pids" ] && { kill -TERM $pids 2>/dev/null; sleep 2; pids=$(in_root_pids); [ -n "$pids" ] && kill -KILL $pids 2>/dev/null; sleep 0.5; }
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount -R "${mounted[$i]}" 2>/dev/null || umount -R -l "${mounted[$i]}" 2>/dev/null
    done
    if grep -q " $R/" /proc/self/mounts; then say "could not unmount everything under $R: left in place"
    elif [ "${FRESH_KEEP:-0}" = 1 ]; then say "kept the root in $R"
    else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tar -C "$R" -xf "$CACHE" || cannot "could not unpack $CACHE"
chmod 0755 "$R"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$R/etc/hosts"
cp -L /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null
if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
    cp /etc/apt/sources.list.d/*.sources "$R/etc/apt/sources.list.d/" && : >"$R/etc/apt/sources.list"
fi
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d" && chmod 0755 "$R/usr/sbin/policy-rc.d"
mount -t proc proc "$R/proc" && mounted+=("$R/proc") || cannot "could not mount /proc"
mount -t sysfs sysfs "$R/sys" && mounted+=("$R/sys") || cannot "could not mount /sys"
mount --rbind /dev "$R/dev" && mounted+=("$R/dev") || cannot "could not mount /dev"
mount --make-rslave "$R/dev"
mkdir -p "$R/tmp/civibus-deb"
cp "$DEB" "$R/tmp/civibus-deb/" && cp tests/fresh/supervise.sh "$R/tmp/civibus-deb/" || cannot "could not copy the package in"
python3 tests/tools/gen_311.py --rows 40 --out "$R/tmp/civibus-deb/sr-export-20181201.csv" || cannot "gen_311.py failed"
# the civibus programs running in the root (minbase has no ps): "pid path user" lines
printf '%s\n' 'for p in /proc/[0-9]*; do e=$(readlink "$p/exe" 2>/dev/null) || continue' \
    'case $e in /usr/bin/civibus*) echo "${p#/proc/} $e $(stat -c %U "$p")" ;; esac; done' >"$R/tmp/civibus-deb/pids.sh"
PKG=/tmp/civibus-deb/$(basename "$DEB")
inroot() {
    chroot "$R" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive bash -c "cd / && $1" </dev/null
}
say "second root in $R (Debian $(cat "$R/etc/debian_version")), package $(basename "$DEB")"

# 1. the package alone, with its Depends
inroot "apt-get update -qq && apt-get install -y -qq --no-install-recommends $PKG" >"$LOG/install.log" 2>&1
record "apt-get install ./$(basename "$DEB") (Depends from the mirror)" $? "$LOG/install.log"
inroot 'set -e
    dpkg -s civibus | grep -qx "Status: install ok installed"
    for b in civibus-hub civibus-api civibus-adapter civibusctl civibus-notify; do
        /usr/bin/$b --help >/dev/null 2>&1 || [ $? -le 2 ]; ldd /usr/bin/$b | grep -q "not found" && { echo "$b: missing library"; ldd /usr/bin/$b; exit 1; }
    done
    for u in hub api adapter notify; do
        getent passwd civibus-$u | grep -q ":/usr/sbin/nologin$" || { echo "user civibus-$u"; exit 1; }
        [ "$(stat -c "%U %a" /var/lib/civibus/$u)" = "civibus-$u 700" ] || { echo "/var/lib/civibus/$u: $(stat -c "%U %a" /var/lib/civibus/$u)"; exit 1; }
    done
    id -nG civibus-api | grep -qw civibus-files && id -nG civibus-adapter | grep -qw civibus-files
    id -nG civibus-hub | grep -qw civibus-files && { echo "civibus-hub is in civibus-files"; exit 1; }
    [ "$(stat -c "%U %G %a" /var/lib/civibus/attachments)" = "civibus-api civibus-files 2770" ]
    [ "$(stat -c "%U %a" /var/lib/civibus/hub/hub_secret)" = "civibus-hub 600" ]
    [ "$(stat -c "%U %a" /var/lib/civibus/keys/hub)" = "root 644" ]
    [ "$(stat -c "%U %a" /var/lib/civibus/notify/reply_secret)" = "civibus-notify 600" ]
    ls /etc/systemd/system/*.wants/ 2>/dev/null | grep civibus && { echo "a unit is enabled"; exit 1; }
    [ -z "$(bash /tmp/civibus-deb/pids.sh)" ] || { echo "something runs: $(bash /tmp/civibus-deb/pids.sh)"; exit 1; }
    echo ok' >"$LOG/layout.log" 2>&1
record "users, groups, /var/lib/civibus modes; nothing enabled, nothing running" $? "$LOG/layout.log"

# 2. PostgreSQL: Debian's cluster, the package's roles.sql, the database owned by
#    civibus_owner, peer authentication mapping each service user to its role (and root,
#    the administrator, to the owner and civibusctl's role), as docs/operations.md says
inroot 'set -e
    apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
    V=15; C=/etc/postgresql/$V/main
    printf "%s\n" "civibus civibus-hub civibus_hub" "civibus civibus-api civibus_api" \
        "civibus civibus-notify civibus_notify" "civibus root civibus_owner" "civibus root civibus_admin" \
        "civibus root civibus_hub" "civibus postgres postgres" >>$C/pg_ident.conf
    sed -i "0,/^local/s//local   civibus   all   peer map=civibus\n&/" $C/pg_hba.conf
    pg_ctlcluster $V main start
    runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres -f /usr/share/civibus/sql/roles.sql
    runuser -u postgres -- createdb -O civibus_owner civibus
    PGUSER=civibus_owner civibus-hub --config /etc/civibus/civibus.yaml --migrate
    runuser -u postgres -- psql -X -At -d civibus -c "select tableowner from pg_tables where tablename = '"'"'events'"'"'" | grep -qx civibus_owner
    echo ok' >"$LOG/pg.log" 2>&1
record "PostgreSQL 15, roles.sql, the database owned by civibus_owner, migrated by --migrate" $? "$LOG/pg.log"

# 3. the example-311 source configured as the city would, and the three units started
inroot 'set -e
    S=exemple-311
    runuser -u civibus-adapter -- civibus-adapter keygen --out /var/lib/civibus/adapter/keys/$S >/dev/null
    install -m 0644 /var/lib/civibus/adapter/keys/$S /var/lib/civibus/keys/$S
    sed -i "s|^sources: \[\]|sources:\n  - name: $S\n    mapping: /usr/share/civibus/adapters/$S/mapping.yaml\n    keys: [/var/lib/civibus/keys/$S]|" /etc/civibus/civibus.yaml
    sed -i "s|^\(  poll_ms:\).*|\1 500|" /etc/civibus/adapters/$S.yaml
    install -d -o civibus-adapter -g civibus-adapter -m 0750 /var/lib/civibus/adapter/inbox/$S
    civibus-hub --config /etc/civibus/civibus.yaml --check-config
    echo ok' >"$LOG/config.log" 2>&1
record "a source configured (keygen, civibus.yaml, adapter file), --check-config" $? "$LOG/config.log"

SUP="bash /tmp/civibus-deb/supervise.sh"
wait_log() {  # name pattern seconds
    inroot "for _ in \$(seq 1 $(($3 * 10))); do grep -q '$2' /var/log/civibus-supervise/$1.log 2>/dev/null && exit 0; sleep 0.1; done; exit 1"
}
inroot "$SUP start civibus-hub" >"$LOG/hub.log" 2>&1 && wait_log civibus-hub "listening for adapters" 60
rc=$?; inroot 'cat /var/log/civibus-supervise/civibus-hub.log' >>"$LOG/hub.log" 2>&1
record "civibus-hub from its unit, as civibus-hub (role civibus_hub: the schema checked), listening" $rc "$LOG/hub.log"
inroot "$SUP start civibus-api" >"$LOG/api-start.log" 2>&1 &&
    inroot 'for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/8480) 2>/dev/null && exit 0; sleep 0.1; done; exit 1'
rc=$?; inroot 'cat /var/log/civibus-supervise/civibus-api.log' >>"$LOG/api-start.log" 2>&1
record "civibus-api from its unit, as civibus-api, on 127.0.0.1:8480" $rc "$LOG/api-start.log"
inroot 'S=exemple-311; F=sr-export-20181201.csv; D=/var/lib/civibus/adapter/inbox/$S
    runuser -u civibus-adapter -- cp /tmp/civibus-deb/$F $D/.$F.tmp && runuser -u civibus-adapter -- mv $D/.$F.tmp $D/$F' >"$LOG/adapter.log" 2>&1
inroot "$SUP start civibus-adapter@ exemple-311" >>"$LOG/adapter.log" 2>&1 &&
    inroot 'for _ in $(seq 1 600); do
                n=$(runuser -u postgres -- psql -X -At -d civibus -c "select count(*) from events where source = '"'"'exemple-311'"'"'")
                [ "${n:-0}" -gt 0 ] && [ -f /var/lib/civibus/adapter/inbox/exemple-311/done/sr-export-20181201.csv ] && { echo "$n events"; exit 0; }
                sleep 0.1
            done; exit 1' >>"$LOG/adapter.log" 2>&1
rc=$?; inroot 'cat /var/log/civibus-supervise/civibus-adapter@exemple-311.log; ls -lR /var/lib/civibus/adapter' >>"$LOG/adapter.log" 2>&1
record "civibus-adapter@exemple-311 as civibus-adapter: the dropped export's events in the timeline" $rc "$LOG/adapter.log"

inroot 'bash /tmp/civibus-deb/pids.sh; bash /tmp/civibus-deb/pids.sh | awk "
    {n++} \$2 == \"/usr/bin/civibus-hub\" && \$3 != \"civibus-hub\" {bad=1}
    \$2 == \"/usr/bin/civibus-api\" && \$3 != \"civibus-api\" {bad=1}
    \$2 == \"/usr/bin/civibus-adapter\" && \$3 != \"civibus-adapter\" {bad=1} END {exit bad || n != 3}"' >"$LOG/users.log" 2>&1
record "three programs running, each as its unit's user" $? "$LOG/users.log"

inroot 'set -e
    http() {  # path [token]: prints the status line and the body
        exec 3<>/dev/tcp/127.0.0.1/8480
        printf "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s\r\n" "$1" "${2:+Authorization: Bearer $2
}" | sed "s/$/\r/; s/\r\r$/\r/" >&3
        cat <&3; exec 3>&-
    }
    code=$(runuser -u postgres -- psql -X -At -d civibus -c "select tracking_code from requests where tracking_code is not null limit 1")
    [ -n "$code" ]
    out=$(http "/v1/track/$code"); echo "$out" | head -1
    echo "$out" | head -1 | grep -q " 200 " && echo "$out" | grep -q "\"status\""
    tok=$(PGUSER=civibus_admin civibusctl --config /etc/civibus/api.yaml token create --role supervisor --label deb-check)
    out=$(http "/v1/requests/count" "$tok"); echo "$out" | head -1; echo "$out" | tail -1
    echo "$out" | head -1 | grep -q " 200 "
    out=$(http "/v1/requests/count"); echo "$out" | head -1 | grep -q " 401 "
    echo ok' >"$LOG/http.log" 2>&1
record "the API answers a tracking code and a token (civibusctl as civibus_admin)" $? "$LOG/http.log"

# 3b. an upgrade: the same package as version N+1 (repacked, with one migration more),
#     installed over the running one. No systemd in the root: a stand-in systemctl says
#     the hub is active and records what the postinst asks. The postinst applies the new
#     migration as civibus_owner (root's peer map) while the hub runs, then try-restarts
#     what runs; the edited conffile, the keys and the users stay; the hub (as
#     civibus_hub) starts again on the migrated schema.
inroot 'set -e
    cd /tmp/civibus-deb && rm -rf up && dpkg-deb -R '"$PKG"' up
    v=$(sed -n "s/^Version: //p" up/DEBIAN/control); sed -i "s/^Version: .*/Version: $v+up1/" up/DEBIAN/control
    printf "CREATE TABLE deb_upgrade_probe (n int);\n" >up/usr/share/civibus/schemas/sql/900_deb_upgrade_probe.sql
    dpkg-deb --root-owner-group -b up civibus_up.deb >/dev/null
    sum=$(md5sum </var/lib/civibus/hub/hub_secret); uid=$(id -u civibus-hub)
    [ ! -e /usr/bin/systemctl ] || { echo "this root has a systemctl: the stand-in would replace it"; exit 1; }
    mkdir -p /run/systemd/system      # dpkg gives maintainer scripts a PATH of its own: /usr/bin
    printf "#!/bin/sh\necho \"systemctl \$*\" >>/tmp/civibus-deb/systemctl.log\nexit 0\n" >/usr/bin/systemctl
    chmod 0755 /usr/bin/systemctl; : >/tmp/civibus-deb/systemctl.log
    apt-get install -y -qq --no-install-recommends ./civibus_up.deb >/tmp/civibus-deb/apt-up.log 2>&1 \
        || { cat /tmp/civibus-deb/apt-up.log; rm -f /usr/bin/systemctl; exit 1; }
    rm -f /usr/bin/systemctl; rmdir /run/systemd/system
    cat /tmp/civibus-deb/systemctl.log
    grep -qE "migrate: [1-9][0-9]* files applied" /tmp/civibus-deb/apt-up.log || { cat /tmp/civibus-deb/apt-up.log; exit 1; }
    [ "$(runuser -u postgres -- psql -X -At -d civibus -c "select tableowner from pg_tables where tablename = '"'"'deb_upgrade_probe'"'"'")" = civibus_owner ]
    grep -qx "systemctl try-restart civibus-hub.service" /tmp/civibus-deb/systemctl.log
    grep -q "^systemctl try-restart civibus-api.service" /tmp/civibus-deb/systemctl.log
    grep -E "^systemctl (enable|start)" /tmp/civibus-deb/systemctl.log && exit 1
    dpkg -s civibus | grep -qx "Version: $v+up1"
    [ "$(md5sum </var/lib/civibus/hub/hub_secret)" = "$sum" ] && [ "$(id -u civibus-hub)" = "$uid" ]
    grep -q "^  - name: exemple-311" /etc/civibus/civibus.yaml
    ls /etc/civibus/*.dpkg-* 2>/dev/null && exit 1
    echo ok' >"$LOG/upgrade.log" 2>&1 &&
inroot "$SUP stop civibus-hub && : >/var/log/civibus-supervise/civibus-hub.log && $SUP start civibus-hub" >>"$LOG/upgrade.log" 2>&1 &&
    wait_log civibus-hub "listening for adapters" 60
rc=$?; inroot 'cat /var/log/civibus-supervise/civibus-hub.log' >>"$LOG/upgrade.log" 2>&1
record "upgrade to N+1 over the running install: its migration applied as civibus_owner, what runs try-restarted, conffile, keys, users kept; the hub restarts" $rc "$LOG/upgrade.log"

# 4. stop by SIGTERM, nothing left; remove keeps the state, purge removes it
inroot "$SUP stop civibus-adapter@ exemple-311; $SUP stop civibus-api; $SUP stop civibus-hub
        sleep 0.5; left=\$(bash /tmp/civibus-deb/pids.sh); [ -z \"\$left\" ] || { echo \"left running: \$left\"; exit 1; }" >"$LOG/stop.log" 2>&1
record "SIGTERM stops the three, nothing of civibus left running" $? "$LOG/stop.log"
inroot 'set -e
    apt-get remove -y -qq civibus >/dev/null
    [ -s /var/lib/civibus/hub/hub_secret ] && [ -d /var/lib/civibus/adapter/spool/exemple-311 ]
    [ -f /etc/civibus/civibus.yaml ]
    apt-get purge -y -qq civibus >/dev/null
    [ ! -e /var/lib/civibus ] && [ ! -e /etc/civibus/civibus.yaml ]
    getent passwd civibus-hub >/dev/null
    echo ok' >"$LOG/remove.log" 2>&1
record "remove keeps /var/lib/civibus and /etc/civibus; purge removes them, users kept" $? "$LOG/remove.log"
inroot 'runuser -u postgres -- true; pg_ctlcluster 15 main stop -m fast' >/dev/null 2>&1

echo
[ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
