#!/usr/bin/env bash
# tests/fresh/supervise.sh — runs a systemd unit the way systemd would, where there is no
# systemd (a chroot): for tests/fresh/deb_check.sh.
#
#   supervise.sh start UNIT [INSTANCE]   e.g. start civibus-hub, start civibus-adapter@ exemple-311
#   supervise.sh stop  UNIT [INSTANCE]   SIGTERM, then SIGKILL after the unit's TimeoutStopSec
#
# The command lines are read from the installed unit file itself
# (/lib/systemd/system/UNIT.service, or the template for an instance, %i replaced):
# Environment=, EnvironmentFile= (a leading '-': optional), UMask=, every ExecStartPre= in order (one
# failing stops the start, as systemd does), then ExecStart= in the background, each as the
# unit's User= and Group= (setpriv, which execs: the pid is the program's; the user's
# groups from /etc/group, so SupplementaryGroups= holds
# when it names groups the user is in: checked), from /. Its stdout and stderr go to
# /var/log/civibus-supervise/NAME.log (the journal's stand-in); its pid to NAME.pid.
# The sandboxing directives are not applied (no systemd): systemd-analyze verify and
# security check them (tests/it/install.sh).
set -u
UNITDIR=${UNITDIR:-/lib/systemd/system}
LOGDIR=${LOGDIR:-/var/log/civibus-supervise}
mkdir -p "$LOGDIR"

cmd=${1:?start|stop}; unit=${2:?unit}; inst=${3:-}
name=$unit$inst
file=$UNITDIR/$unit.service
[ -f "$file" ] || { echo "supervise: no unit file $file" >&2; exit 2; }

# key FILE: every value of KEY= in [Service], %i replaced, one a line
values() {
    sed -n '/^\[Service\]/,/^\[/p' "$file" | sed -n "s/^$1=//p" | sed "s/%i/$inst/g"
}

if [ "$cmd" = stop ]; then
    pid=$(cat "$LOGDIR/$name.pid" 2>/dev/null) || exit 0
    t=$(values TimeoutStopSec | tail -n 1); t=${t%s}; t=${t:-90}
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 $((t * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { echo "supervise: $name ignored SIGTERM for ${t}s: killed"; kill -KILL "$pid"; }
    rm -f "$LOGDIR/$name.pid"
    exit 0
fi

user=$(values User | tail -n 1)
group=$(values Group | tail -n 1); group=${group:-$user}
[ -n "$user" ] || { echo "supervise: $file has no User=" >&2; exit 2; }
getent passwd "$user" >/dev/null || { echo "supervise: the unit's user $user does not exist" >&2; exit 2; }
for g in $(values SupplementaryGroups); do
    id -nG "$user" | tr ' ' '\n' | grep -qx "$g" ||
        { echo "supervise: $user is not in $g (SupplementaryGroups=)" >&2; exit 2; }
done
umask_v=$(values UMask | tail -n 1)
envargs=()
while read -r ef; do
    [ -n "$ef" ] || continue
    opt=0; [ "${ef#-}" != "$ef" ] && { opt=1; ef=${ef#-}; }
    if [ -f "$ef" ]; then
        while IFS= read -r line; do
            case $line in ''|'#'*) ;; *=*) envargs+=("$line") ;; esac
        done <"$ef"
    elif [ $opt = 0 ]; then
        echo "supervise: EnvironmentFile $ef is missing" >&2; exit 2
    fi
done < <(values EnvironmentFile)
for e in $(values Environment); do envargs+=("$e"); done    # Environment=K=V (no spaces in ours)

run_as() {  # command line (systemd splits on spaces; the units quote nothing). Execs:
            # call it in a subshell, or with & (then $! is the program's own pid)
    # shellcheck disable=SC2086
    cd / && umask "${umask_v:-0022}" && exec setpriv --reuid="$user" --regid="$group" --init-groups \
        env -i PATH=/usr/bin:/bin LANG=C.UTF-8 "${envargs[@]}" $1
}

while read -r pre; do
    [ -n "$pre" ] || continue
    echo "supervise: $name: ExecStartPre=$pre" >>"$LOGDIR/$name.log"
    (run_as "$pre") >>"$LOGDIR/$name.log" 2>&1 || { echo "supervise: $name: ExecStartPre failed: $pre" >&2; exit 1; }
done < <(values ExecStartPre)
start=$(values ExecStart | tail -n 1)
[ -n "$start" ] || { echo "supervise: $file has no ExecStart=" >&2; exit 2; }
echo "supervise: $name: ExecStart=$start (as $user)" >>"$LOGDIR/$name.log"
run_as "$start" >>"$LOGDIR/$name.log" 2>&1 </dev/null &
pid=$!
echo $pid >"$LOGDIR/$name.pid"
# the pid is the program's (what a stop signals), once setpriv and env have exec'ed
exe=${start%% *}
for _ in $(seq 1 50); do [ "$(readlink /proc/$pid/exe 2>/dev/null)" = "$exe" ] && break; sleep 0.02; done
[ "$(readlink /proc/$pid/exe 2>/dev/null)" = "$exe" ] || { echo "supervise: $name: pid $pid is not $exe (exited at once? see $LOGDIR/$name.log)" >&2; exit 1; }
echo "$name started as $user, pid $pid"
