#!/usr/bin/env bash
# san: skip (it packages the normal build: an ASan binary would make Depends name libasan)
# make install and make deb (docs/operations.md, "Install"), fast, without a database:
#   1. `make install DESTDIR=... PREFIX=/usr` lays out the programs (0755), the data under
#      /usr/share/civibus, the production configuration under /etc/civibus and the units,
#      every file 0644 or 0755 and none writable by group or others; no build leftover, no
#      simulator, no demo path (../var) in an installed file; every /usr/share/civibus path
#      the configuration names is installed; the production defaults hold (no source,
#      loopback only); a second install keeps a configuration the city edited;
#   2. installed for real in a folder (PREFIX, SYSCONFDIR, STATEDIR there): the hub and the
#      notifier accept their installed configuration (--check-config), a bad line still
#      stops them with file:line; the units pass `systemd-analyze verify` with nothing on
#      stderr (a bad directive does), and `systemd-analyze security --offline` rates each
#      at most 2.0 (printed);
#   3. `make deb`: the package's control (Version from VERSION, the runtime libraries in
#      Depends, no -dev, no sanitizer), conffiles = every file of /etc/civibus, the three
#      maintainer scripts executable and parsing under sh, stripped binaries, nothing of the
#      build, the tests or the demo in the file list.
. "$(dirname "$0")/lib.sh"
cd "$ROOT" || fail "no tree"
unset SAN
W=$(mktemp -d "${CIVIBUS_TEST_TMP:-/tmp}/it-install.XXXXXX")
at_exit 'rm -rf "$W"'
MK="make --no-print-directory SAN="

# ---- 1. the staged layout ----------------------------------------------------------------
S=$W/stage
$MK install DESTDIR="$S" PREFIX=/usr >"$W/install.log" 2>&1 || { tail -n 20 "$W/install.log"; fail "make install DESTDIR"; }
for b in civibus-hub civibus-api civibus-adapter civibusctl civibus-notify; do
    [ "$(stat -c %a "$S/usr/bin/$b" 2>/dev/null)" = 755 ] || fail "/usr/bin/$b is not installed 0755"
done
[ "$(ls "$S/usr/bin" | wc -l)" = 5 ] || fail "/usr/bin holds more than the five programs: $(ls "$S/usr/bin")"
for f in usr/share/civibus/schemas/sql/001_init.sql usr/share/civibus/schemas/sql/rewritten \
         usr/share/civibus/schemas/sql/functions/ingest.sql usr/share/civibus/schemas/v2/event.schema.json \
         usr/share/civibus/web/console usr/share/civibus/notify/templates/accuse_reception.txt \
         usr/share/civibus/adapters/etat-civil/mapping.yaml usr/share/civibus/adapters/courriel/mapping.yaml \
         usr/share/civibus/civibus-setup usr/share/doc/civibus/operations.md \
         etc/civibus/civibus.yaml etc/civibus/api.yaml etc/civibus/notify.yaml etc/civibus/routing.yaml \
         etc/civibus/deadlines.yaml etc/civibus/retention.yaml etc/civibus/costs.yaml \
         etc/civibus/adapters/etat-civil.yaml etc/civibus/adapters/urbanisme.yaml \
         usr/lib/systemd/system/civibus-hub.service usr/lib/systemd/system/civibus-adapter@.service; do
    [ -e "$S/$f" ] || fail "not installed: /$f"
done
[ "$(ls "$S/usr/share/civibus/schemas/sql/"*.sql | wc -l)" = "$(ls schemas/sql/*.sql | wc -l)" ] || fail "not every migration is installed"
bad=$(find "$S" -perm /022 ! -type l; find "$S" -type f ! -perm 0644 ! -perm 0755)
[ -z "$bad" ] || fail "modes: $bad"
left=$(find "$S" -name '*.o' -o -name '*.d' -o -name '*.py' -o -name '*.jsonl' -o -path '*/tests/*' -o -path '*/sim/*' -o -name demo.yaml)
[ -z "$left" ] || fail "build, test or demo files installed: $left"
grep -rl '\.\./var\|\.\./\.\./\|tests/sim' "$S/etc" "$S/usr/lib" && fail "a demo path in an installed file (above)"
ok "make install DESTDIR: $(find "$S" -type f | wc -l) files, modes 0644/0755, nothing of the build or the demo"
# every path under /usr/share/civibus or /usr/bin that the configuration and the units name exists
for p in $(grep -rhoE '/usr/(share/civibus|bin)/[A-Za-z0-9_./@%-]+' "$S/etc" "$S/usr/lib/systemd" | sed 's/%i.*//' | sort -u); do
    [ -e "$S$p" ] || [ "${p%/}" != "$p" ] || fail "named but not installed: $p"
done
grep -q '^sources: \[\]' "$S/etc/civibus/civibus.yaml" || fail "the installed hub config has sources"
grep -q '^  adapters: tcp://127.0.0.1:' "$S/etc/civibus/civibus.yaml" || fail "the hub listens beyond loopback"
grep -q '^  address: 127.0.0.1 ' "$S/etc/civibus/api.yaml" || fail "the API listens beyond loopback"
grep -q '^  address: 127.0.0.1$' "$S/etc/civibus/adapters/dechets.yaml" || fail "the webhook adapter listens beyond loopback"
grep -q '^ExecStart=/usr/bin/civibus-adapter run --config /etc/civibus/adapters/%i.yaml$' \
    "$S/usr/lib/systemd/system/civibus-adapter@.service" || fail "the adapter's unit does not read /etc/civibus/adapters/%i.yaml"
grep -l '^\[Install\]' "$S"/usr/lib/systemd/system/*.service | wc -l | grep -qx 4 || fail "a unit without [Install]"
ok "production defaults: no source, loopback only, the units name the installed paths"
echo "# edited by the city" >>"$S/etc/civibus/api.yaml"
$MK install DESTDIR="$S" PREFIX=/usr >"$W/install2.log" 2>&1 || fail "second make install"
grep -q "edited by the city" "$S/etc/civibus/api.yaml" || fail "a second make install overwrote an edited config"
grep -q "kept $S/etc/civibus/api.yaml" "$W/install2.log" || fail "the second install does not say it kept api.yaml"
ok "a second make install keeps the city's edited configuration"

# ---- 2. installed in a folder: configs load, units verify --------------------------------
P=$W/p
$MK install PREFIX="$P/usr" SYSCONFDIR="$P/etc" STATEDIR="$P/state" >"$W/install3.log" 2>&1 || fail "make install PREFIX"
grep -rq "$P/usr/share/civibus/schemas/sql" "$P/etc/civibus/civibus.yaml" || fail "the hub config's migrations path is not PREFIX's"
mkdir -p "$P/state/hub" "$P/state/notify" "$P/state/keys"
"$P/usr/bin/civibus-adapter" keygen --out "$P/state/hub/hub" >/dev/null || fail "keygen"
head -c 48 /dev/urandom | base64 >"$P/state/notify/reply_secret"; chmod 600 "$P/state/notify/reply_secret"
"$P/usr/bin/civibus-hub" --config "$P/etc/civibus/civibus.yaml" --check-config >"$W/check.log" 2>&1 \
    || fail "the installed hub config is refused: $(cat "$W/check.log")"
"$P/usr/bin/civibus-notify" --config "$P/etc/civibus/notify.yaml" --check-config >"$W/check.log" 2>&1 \
    || fail "the installed notify config is refused: $(cat "$W/check.log")"
sed 's|^  batch_max_events: 1000|  batch_max_events: lots|' "$P/etc/civibus/civibus.yaml" >"$W/bad.yaml"
"$P/usr/bin/civibus-hub" --config "$W/bad.yaml" --check-config >"$W/check.log" 2>&1; rc=$?
[ $rc = 2 ] && grep -q "bad.yaml:[0-9]*:" "$W/check.log" || fail "a bad line in the installed config: exit $rc, $(cat "$W/check.log")"
ok "the installed hub and notify configurations pass --check-config (and a bad line is file:line, exit 2)"
if command -v systemd-analyze >/dev/null 2>&1; then
    U=$P/usr/lib/systemd/system
    ln -s civibus-adapter@.service "$U/civibus-adapter@etat-civil.service"
    units="$U/civibus-hub.service $U/civibus-api.service $U/civibus-notify.service $U/civibus-adapter@etat-civil.service"
    # shellcheck disable=SC2086
    systemd-analyze verify $units >"$W/verify.out" 2>&1; rc=$?
    [ $rc = 0 ] && [ ! -s "$W/verify.out" ] || fail "systemd-analyze verify: exit $rc: $(cat "$W/verify.out")"
    sed 's/^ProtectHome=yes/ProtectHome=sometimes/' "$U/civibus-hub.service" >"$W/civibus-hub.service"
    systemd-analyze verify "$W/civibus-hub.service" 2>&1 | grep -q "ProtectHome\|protect home" || fail "verify does not see a bad directive"
    for u in $units; do
        e=$(systemd-analyze security --offline=yes "$u" 2>/dev/null | sed -n 's/.*Overall exposure level for \([^:]*\): \([0-9.]*\).*/\1 \2/p')
        [ -n "$e" ] || fail "systemd-analyze security --offline: no rating for $u"
        echo "  exposure $e"
        awk -v x="${e##* }" 'BEGIN { exit !(x <= 2.0) }' || fail "$e: exposure above 2.0"
    done
    ok "the four units pass systemd-analyze verify; exposure at most 2.0"
else
    echo "  (no systemd-analyze on this machine: units not verified)"
fi

# ---- 3. make deb -------------------------------------------------------------------------
V=$(cat VERSION); A=$(dpkg --print-architecture)
D=$W/dist/civibus_${V}_$A.deb
$MK deb DEB_STAGE="$W/debstage" DEB_FILE="$D" >"$W/deb.log" 2>&1 || { tail -n 20 "$W/deb.log"; fail "make deb"; }
[ -s "$D" ] || fail "make deb wrote no $D"
dpkg-deb -f "$D" Version | grep -qx "$V" || fail "Version is not VERSION's $V"
dep=$(dpkg-deb -f "$D" Depends)
for lib in libzmq5 libczmq4 libyaml-0-2 libjansson4 libpq5 libcurl4 libmicrohttpd12 libsodium23 libexpat1 libjemalloc2 adduser; do
    echo "$dep" | grep -qw "$lib" || fail "Depends lacks $lib: $dep"
done
echo "$dep" | grep -q -- '-dev\|asan\|ubsan\|cmocka' && fail "Depends names a build or test package: $dep"
dpkg-deb -e "$D" "$W/ctl" || fail "dpkg-deb -e"
for m in postinst prerm postrm; do
    [ -x "$W/ctl/$m" ] || fail "no executable $m"; sh -n "$W/ctl/$m" || fail "$m does not parse"
done
dpkg-deb -c "$D" | awk '{print $6}' | sed 's|^\./|/|' >"$W/list"
diff <(grep '^/etc/.*[^/]$' "$W/list" | sort) <(sort "$W/ctl/conffiles") >"$W/conf.diff" \
    || fail "conffiles are not the files of /etc: $(cat "$W/conf.diff")"
grep -q '^/etc/civibus/adapters/etat-civil.yaml$' "$W/ctl/conffiles" || fail "an adapter's config is not a conffile"
grep -E '\.o$|\.d$|/tests/|/sim/|/build|/var/|\.jsonl$|/bin/civibus-[a-z]*-san' "$W/list" && fail "the package lists the above"
grep -q '^/lib/systemd/system/civibus-adapter@.service$' "$W/list" || fail "no adapter unit in the package"
grep -q '^/usr/share/doc/civibus/copyright$' "$W/list" || fail "no copyright file"
dpkg-deb -x "$D" "$W/x"
readelf -S "$W/x/usr/bin/civibus-hub" | grep -q debug_info && fail "the package's binaries are not stripped"
# the postinst's commands (its closing message, a here-document, and the lines it prints,
# aside) never enable or start a unit: only daemon-reload, the is-active/is-enabled
# questions, and try-restart of what already runs
sed "/<<'MSG'/,/^MSG$/d; /^ *echo /d" "$W/ctl/postinst" | grep -n 'systemctl\|invoke-rc.d\|deb-systemd' \
    | grep -v 'systemctl daemon-reload\|systemctl try-restart\|systemctl -q is-active [a-z.-]* && ! systemctl -q is-enabled' \
    && fail "postinst enables or starts a unit (above)"
ok "make deb: $(basename "$D"), $(wc -l <"$W/list") entries, $(wc -l <"$W/ctl/conffiles") conffiles, Depends: $dep"
