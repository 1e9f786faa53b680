# tests/it/mail_lib.sh — the test mail servers in an integration test (sourced after lib.sh;
# not a test itself):
#
#   mail_start                 Postfix + Dovecot under $W/mailsrv (tests/mail/mailctl.sh),
#                              stopped and purged when the script exits; their CIVIBUS_*
#                              variables (ports, the city's and the citizen's mailboxes) set
#   imap_driver [LINE...]      prints the `driver:` block of an imap adapter reading the city's
#                              mailbox (source courriel, its password in $W/imap.password,
#                              0600; poll_ms 200), each LINE ("batch: 10") one more key
[ "${BASH_SOURCE[0]}" = "$0" ] && exit 0
MAILCTL=$ROOT/tests/mail/mailctl.sh

mail_start() {
    bash "$MAILCTL" start "$W/mailsrv" >"$W/mail.env" 2>"$W/mail.err" || fail "mail servers: $(cat "$W/mail.err")"
    at_exit "bash '$MAILCTL' stop --purge '$W/mailsrv' >/dev/null 2>&1"
    # shellcheck disable=SC1091
    . "$W/mail.env"
}

imap_driver() {
    (umask 077; printf '%s\n' "$CIVIBUS_CITY_IMAP_PASSWORD" >"$W/imap.password")
    printf 'driver:\n  kind: imap\n  source: courriel\n  url: %s\n  user: %s\n  password_file: %s\n  poll_ms: 200\n' \
        "$CIVIBUS_IMAP_URL" "$CIVIBUS_CITY_IMAP_USER" "$W/imap.password"
    local l
    for l in "$@"; do printf '  %s\n' "$l"; done
}
