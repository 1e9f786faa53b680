#!/usr/bin/env bash
# mailctl.sh — throwaway mail servers for tests: Dovecot (IMAP + LMTP) and Postfix (SMTP).
#
#   tests/mail/mailctl.sh start DIR    write the configs (first time), start both, print env
#   tests/mail/mailctl.sh stop DIR     stop both, wait until every process is gone
#   tests/mail/mailctl.sh env DIR      print `export CIVIBUS_MAIL_...=...` lines to eval
#   tests/mail/mailctl.sh status DIR   exit 0 when both run, 3 when not
#
# What runs (Debian 12 packages dovecot-imapd, dovecot-lmtpd, postfix; deploy/deps.sh test):
#   - Postfix's master with its own config folder (postfix -c DIR/mail/postfix), its smtpd
#     on 127.0.0.1:SMTP_PORT only, no chroot, no outside relay: every domain but
#     civibus.test is refused, and mail for civibus.test goes by LMTP to
#   - Dovecot (dovecot -c DIR/mail/dovecot.conf): IMAP without TLS on 127.0.0.1:IMAP_PORT,
#     LMTP on 127.0.0.1:LMTP_PORT, users from a passwd-file with known passwords
#     (below), maildir under DIR/mail/maildir/USER.
# Nothing listens on another address. The system's own dovecot/postfix services (which the
# packages' postinst may start, unless policy-rc.d forbids it) are not used nor touched.
#
# Users (login = mailbox, address USER@civibus.test):
#   mairie  / mairie-secret    the city's intake mailbox
#   citoyen / citoyen-secret   a citizen's mailbox
#   accueil / accueil-secret   a second city mailbox (the same mail received twice)
# Both servers have recipient_delimiter = +: mairie+ANYTHING@civibus.test is delivered to
# mairie (the signed reply addresses of the notifier, lib/cv_replyaddr.h).
#
# Postfix's master must run as root (it drops to the `postfix` user); Dovecot as root
# drops to `dovecot`/`dovenull`. Not root: Dovecot runs as the caller, and Postfix cannot
# run at all (the script says so and exits 1). When DIR is not reachable by those users (a
# folder under /root), the servers' files live in a fresh /tmp/civibus-mail.XXXXXX and
# DIR/mail is a symlink to it; stop removes nothing, `stop --purge` removes it.
#
# Ports: CIVIBUS_MAIL_SMTP_PORT, CIVIBUS_MAIL_IMAP_PORT, CIVIBUS_MAIL_LMTP_PORT, or free
# ones chosen at first start, kept in DIR/mail/ports.
set -euo pipefail

DOMAIN=civibus.test
die() { echo "mailctl: $*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

free_port() {
    python3 - <<'EOF'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
EOF
}

paths() {
    local mode="${1:-}"
    [ -n "$DIR" ] || die "usage: mailctl.sh start|stop|env|status DIR"
    if [ "$mode" = create ]; then mkdir -p "$DIR" || die "$DIR: cannot create"; fi
    DIR="$(cd "$DIR" 2>/dev/null && pwd)" || DIR=""
    M=""
    [ -n "$DIR" ] && [ -d "$DIR/mail" ] && M="$(readlink -f "$DIR/mail")"
    return 0
}

reachable() {     # reachable USER PATH: USER can traverse PATH
    runuser -u "$1" -- test -x "$2" 2>/dev/null
}

create() {
    if [ -L "$DIR/mail" ] && [ ! -d "$DIR/mail" ]; then rm -f "$DIR/mail"; fi
    if [ ! -e "$DIR/mail" ]; then
        if is_root && ! { reachable dovecot "$DIR" && reachable postfix "$DIR"; }; then
            local tmp; tmp="$(mktemp -d /tmp/civibus-mail.XXXXXX)"
            chmod 0755 "$tmp"
            ln -s "$tmp" "$DIR/mail"
        else
            mkdir -m 0755 "$DIR/mail"
        fi
    fi
    M="$(readlink -f "$DIR/mail")"
    [ -f "$M/ports" ] && return 0

    local smtp imap lmtp
    smtp="${CIVIBUS_MAIL_SMTP_PORT:-$(free_port)}"
    imap="${CIVIBUS_MAIL_IMAP_PORT:-$(free_port)}"
    lmtp="${CIVIBUS_MAIL_LMTP_PORT:-$(free_port)}"
    mkdir -p "$M/log" "$M/state" "$M/maildir" "$M/postfix/queue" "$M/postfix/data"
    local run; run="$(mktemp -d /tmp/cv-mail-run.XXXXXX)"      # short: unix socket paths
    chmod 0755 "$run"
    echo "$run" >"$M/run_dir"

    local muser mgroup login
    if is_root; then muser=dovecot; mgroup=dovecot; login=dovenull
    else muser="$(id -un)"; mgroup="$(id -gn)"; login="$muser"; fi
    local muid mgid; muid="$(id -u "$muser")"; mgid="$(id -g "$muser")"

    cat >"$M/passwd" <<EOF
mairie:{PLAIN}mairie-secret:$muid:$mgid::$M/maildir/mairie
citoyen:{PLAIN}citoyen-secret:$muid:$mgid::$M/maildir/citoyen
accueil:{PLAIN}accueil-secret:$muid:$mgid::$M/maildir/accueil
EOF
    cat >"$M/dovecot.conf" <<EOF
# tests/mail/mailctl.sh — throwaway Dovecot, loopback only, no TLS
instance_name = civibus-mail-$(basename "$run")
base_dir = $run
state_dir = $M/state
log_path = $M/log/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = $muser
default_internal_group = $mgroup
default_login_user = $login
first_valid_uid = $muid
last_valid_uid = $muid
first_valid_gid = 0
mail_location = maildir:~/Maildir
mail_privileged_group =
lmtp_save_to_detail_mailbox = no
recipient_delimiter = +
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $M/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%n $M/passwd
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Traite {
    auto = create
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lmtp
  }
}
EOF
    if ! is_root; then
        cat >>"$M/dovecot.conf" <<EOF
service imap-login {
  chroot =
}
service anvil {
  chroot =
}
EOF
    fi

    cat >"$M/postfix/main.cf" <<EOF
# tests/mail/mailctl.sh — throwaway Postfix, loopback only, no outside relay
compatibility_level = 3.6
queue_directory = $M/postfix/queue
data_directory = $M/postfix/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mail.$DOMAIN
mydomain = $DOMAIN
myorigin = $DOMAIN
mydestination =
mynetworks = 127.0.0.0/8
relayhost =
virtual_mailbox_domains = $DOMAIN
virtual_transport = lmtp:inet:127.0.0.1:$lmtp
default_transport = error:mailctl: no mail leaves the test servers
relay_transport = error:mailctl: no mail leaves the test servers
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
local_recipient_maps =
recipient_delimiter = +
biff = no
smtputf8_enable = no
message_size_limit = 41943040
maillog_file_prefixes = $M/log
maillog_file = $M/log/postfix.log
smtpd_banner = \$myhostname ESMTP civibus test server
EOF
    cat >"$M/postfix/master.cf" <<EOF
# service type private unpriv chroot wakeup maxproc command
127.0.0.1:$smtp inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    if is_root; then
        chown -R "$muser:$mgroup" "$M/maildir" "$M/state"
        chown postfix: "$M/postfix/data"
    fi
    printf 'SMTP_PORT=%s\nIMAP_PORT=%s\nLMTP_PORT=%s\n' "$smtp" "$imap" "$lmtp" >"$M/ports"
}

load() {
    [ -n "$M" ] && [ -f "$M/ports" ] || die "no mail servers in ${DIR:-?} (run start first)"
    # shellcheck disable=SC1091
    . "$M/ports"
    RUN="$(cat "$M/run_dir")"
    PF="$M/postfix"
}

dovecot_pid() { [ -f "$RUN/master.pid" ] && cat "$RUN/master.pid" 2>/dev/null || true; }
postfix_pid() {
    local f="$PF/queue/pid/master.pid"
    [ -f "$f" ] && tr -d ' ' <"$f" 2>/dev/null || true
}
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

listening() { # listening PORT: something accepts on 127.0.0.1:PORT
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

print_env() {
    echo "export CIVIBUS_MAIL_DIR=$M"
    echo "export CIVIBUS_MAIL_DOMAIN=$DOMAIN"
    echo "export CIVIBUS_MAIL_SMTP_PORT=$SMTP_PORT"
    echo "export CIVIBUS_MAIL_IMAP_PORT=$IMAP_PORT"
    echo "export CIVIBUS_MAIL_LMTP_PORT=$LMTP_PORT"
    echo "export CIVIBUS_SMTP_URL=smtp://127.0.0.1:$SMTP_PORT"
    echo "export CIVIBUS_IMAP_URL=imap://127.0.0.1:$IMAP_PORT"
    echo "export CIVIBUS_CITY_MAIL=mairie@$DOMAIN"
    echo "export CIVIBUS_CITY_IMAP_USER=mairie"
    echo "export CIVIBUS_CITY_IMAP_PASSWORD=mairie-secret"
    echo "export CIVIBUS_CITY2_MAIL=accueil@$DOMAIN"
    echo "export CIVIBUS_CITY2_IMAP_USER=accueil"
    echo "export CIVIBUS_CITY2_IMAP_PASSWORD=accueil-secret"
    echo "export CIVIBUS_CITIZEN_MAIL=citoyen@$DOMAIN"
    echo "export CIVIBUS_CITIZEN_IMAP_USER=citoyen"
    echo "export CIVIBUS_CITIZEN_IMAP_PASSWORD=citoyen-secret"
}

wait_port() { # wait_port PORT NAME LOG
    local i
    for i in $(seq 1 100); do
        listening "$1" && return 0
        sleep 0.1
    done
    tail -n 30 "$3" >&2 2>/dev/null || true
    die "$2 does not answer on 127.0.0.1:$1 after 10 s (log: $3)"
}

cmd_start() {
    command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] \
        || die "no dovecot: apt-get install dovecot-imapd dovecot-lmtpd (deploy/deps.sh test)"
    [ -x /usr/sbin/postfix ] || die "no postfix: apt-get install postfix (deploy/deps.sh test)"
    is_root || die "Postfix's master must be started as root (it runs its services as 'postfix')"
    create
    load
    mkdir -p -m 0755 "$RUN"
    if ! alive "$(dovecot_pid)"; then
        /usr/sbin/dovecot -c "$M/dovecot.conf" >>"$M/log/dovecot.start" 2>&1 \
            || { cat "$M/log/dovecot.start" >&2; die "dovecot did not start"; }
    fi
    wait_port "$IMAP_PORT" dovecot "$M/log/dovecot.log"
    wait_port "$LMTP_PORT" "dovecot lmtp" "$M/log/dovecot.log"
    if ! alive "$(postfix_pid)"; then
        /usr/sbin/postfix -c "$PF" check >>"$M/log/postfix.start" 2>&1 || true
        /usr/sbin/postfix -c "$PF" start >>"$M/log/postfix.start" 2>&1 \
            || { cat "$M/log/postfix.start" >&2; die "postfix did not start"; }
    fi
    wait_port "$SMTP_PORT" postfix "$M/log/postfix.log"
    print_env
}

# stops a master: polite signal, then wait up to 10 s, then SIGKILL to its process group
stop_master() { # stop_master NAME PID
    local name=$1 pid=$2 i
    alive "$pid" || return 0
    for i in $(seq 1 100); do
        alive "$pid" || return 0
        sleep 0.1
    done
    echo "mailctl: $name ($pid) still running after 10 s: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

# every process still started from these servers' config (children outliving their master)
leftovers() {
    local p
    for p in /proc/[0-9]*; do
        [ -r "$p/environ" ] || continue
        if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF -e "MAIL_CONFIG=$PF" \
                -e "DOVECOT_CONFIG=$M/dovecot.conf"; then
            echo "${p#/proc/}"
        elif { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -e "$M/dovecot.conf" -e "$PF" \
                -e "civibus-mail-$(basename "$RUN")/"; then
            echo "${p#/proc/}"
        fi
    done
}

cmd_stop() {
    local purge=$1 pid
    if [ -z "$M" ] || [ ! -f "$M/ports" ]; then echo "mailctl: not running" >&2; return 0; fi
    load
    pid="$(postfix_pid)"
    if alive "$pid"; then
        /usr/sbin/postfix -c "$PF" stop >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
        stop_master postfix "$pid"
    fi
    pid="$(dovecot_pid)"
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        stop_master dovecot "$pid"
    fi
    local left i
    for i in $(seq 1 50); do
        left="$(leftovers | tr '\n' ' ')"
        [ -z "$left" ] && break
        sleep 0.1
    done
    if [ -n "$left" ]; then
        echo "mailctl: processes left after stop, killed: $left" >&2
        # shellcheck disable=SC2086
        kill -KILL $left 2>/dev/null || true
    fi
    rm -rf -- "$RUN"          # sockets and pid files only; start makes it anew
    if [ "$purge" = 1 ]; then
        if [ -L "$DIR/mail" ]; then
            case "$M" in /tmp/civibus-mail.*) rm -rf -- "$M" ;; esac
            rm -f "$DIR/mail"
        else
            rm -rf -- "$DIR/mail"
        fi
    fi
}

main() {
    local cmd="${1:-}" purge=0 a
    shift || true
    DIR=""
    for a in "$@"; do
        case "$a" in
            --purge) purge=1 ;;
            -*) die "unknown option $a" ;;
            *) [ -z "$DIR" ] || die "one DIR only"; DIR="$a" ;;
        esac
    done
    case "$cmd" in
        start)  paths create; cmd_start ;;
        stop)   paths; cmd_stop "$purge" ;;
        env)    paths; load; print_env ;;
        status) paths; load
                if alive "$(dovecot_pid)" && alive "$(postfix_pid)"; then
                    echo "running (smtp $SMTP_PORT, imap $IMAP_PORT)"; exit 0
                fi
                echo "not running"; exit 3 ;;
        leftovers) paths; load; leftovers ;;
        *) echo "usage: mailctl.sh start|stop [--purge]|env|status DIR" >&2; exit 2 ;;
    esac
}

main "$@"
