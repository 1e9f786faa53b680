/*  rawclient — a deliberately misbehaving adapter, for the protocol abuse test.

    rawclient ENDPOINT HUB_PUBLIC_CERT CLIENT_SECRET_CERT

    Speaks CIVIBUS/1 by hand over a real CURVE DEALER socket and checks how
    the hub answers broken input: a wrong protocol version, an unknown
    command, an EVENT with missing frames or a non-numeric sequence number,
    an EVENT for an unknown session, a message over the hub's hard size
    limit (libzmq drops the connection; the socket reconnects by itself and
    the hub ends the session on its next message) — and that after all
    this a well-formed session still gets its event ACKed. Every ERROR ends
    the session, so a new HELLO follows each one. Prints one line per check;
    exit 0 when all hold. The full conformance suite is tests/protocol/. */
#include <czmq.h>
#include <stdio.h>
#include <string.h>

static int s_failures = 0;

static void s_check(bool ok, const char *what)
{
    printf("%s - %s\n", ok ? "ok" : "not ok", what);
    if (!ok)
        s_failures++;
}

static zsock_t *s_connect(const char *endpoint, zcert_t *server, zcert_t *client)
{
    zsock_t *s = zsock_new(ZMQ_DEALER);
    zcert_apply(client, s);
    zsock_set_curve_serverkey(s, zcert_public_txt(server));
    zsock_set_rcvtimeo(s, 3000);
    zsock_set_linger(s, 0);
    zsock_connect(s, "%s", endpoint);
    return s;
}

/* Receives one message and returns its frames joined by '|' (caller frees), or NULL. */
static char *s_recv(zsock_t *s)
{
    zmsg_t *m = zmsg_recv(s);
    if (!m)
        return NULL;
    char buf[512] = "";
    for (zframe_t *f = zmsg_first(m); f; f = zmsg_next(m)) {
        char *t = zframe_strdup(f);
        if (buf[0])
            strncat(buf, "|", sizeof buf - strlen(buf) - 1);
        strncat(buf, t, sizeof buf - strlen(buf) - 1);
        free(t);
    }
    zmsg_destroy(&m);
    return strdup(buf);
}

static bool s_starts(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* HELLO → WELCOME; returns the session id (caller frees) or NULL. */
static char *s_hello(zsock_t *s)
{
    zstr_sendx(s, "HELLO", "CIVIBUS/1", "rawclient", NULL);
    char *r = s_recv(s);
    if (!s_starts(r, "WELCOME|")) {
        free(r);
        return NULL;
    }
    char *sid = strndup(r + 8, 32);
    free(r);
    return sid;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: rawclient ENDPOINT HUB_PUBLIC_CERT CLIENT_SECRET_CERT\n");
        return 2;
    }
    zsys_init();
    zcert_t *server = zcert_load(argv[2]);
    zcert_t *client = zcert_load(argv[3]);
    if (!server || !client) {
        fprintf(stderr, "rawclient: cannot load certificates\n");
        return 2;
    }
    zsock_t *s = s_connect(argv[1], server, client);

    zstr_sendx(s, "HELLO", "CIVIBUS/0", "rawclient", NULL);
    char *r = s_recv(s);
    s_check(s_starts(r, "ERROR|bad_protocol"), "HELLO with another protocol version gets ERROR bad_protocol");
    free(r);

    zstr_sendx(s, "EVENT", "0123456789abcdef0123456789abcdef", "1", "{}", NULL);
    r = s_recv(s);
    s_check(s_starts(r, "ERROR|unknown_session"), "EVENT before HELLO gets ERROR unknown_session");
    free(r);

    char *sid = s_hello(s);
    s_check(sid != NULL, "HELLO gets WELCOME with a session id");
    if (!sid)
        return 1;

    zstr_sendx(s, "FROB", sid, NULL);
    r = s_recv(s);
    s_check(s_starts(r, "ERROR|malformed"), "unknown command gets ERROR malformed");
    free(r);
    zstr_sendx(s, "PING", sid, NULL);
    r = s_recv(s);
    s_check(s_starts(r, "ERROR|unknown_session"), "... and the ERROR ended the session");
    free(r);
    free(sid);
    sid = s_hello(s);

    zstr_sendx(s, "EVENT", sid, "not-a-number", "{}", NULL);
    r = s_recv(s);
    s_check(s_starts(r, "ERROR|malformed") && strstr(r, "|EVENT|") && strstr(r, sid),
            "EVENT with a non-numeric sequence number gets ERROR malformed naming its session");
    free(r);
    free(sid);
    sid = s_hello(s);

    zstr_sendx(s, "EVENT", sid, "1", NULL);
    r = s_recv(s);
    s_check(s_starts(r, "NACK|") && strstr(r, "|1|malformed"), "EVENT without its record is NACKed malformed");
    free(r);

    zstr_sendx(s, "PING", sid, NULL);
    r = s_recv(s);
    s_check(s_starts(r, "PONG|"), "PING gets PONG");
    free(r);

    zstr_sendx(s, "EVENT", sid, "2", "[1, 2, 3]", NULL);
    r = s_recv(s);
    s_check(s_starts(r, "NACK|") && strstr(r, "|2|invalid_json"), "a JSON array is NACKed invalid_json");
    free(r);

    /* over max_event_bytes but under the hard limit: NACK too_large, dead letter */
    size_t mid = 20000;
    char *json = malloc(mid + 1);
    memset(json, ' ', mid);
    const char *head = "{\"id\":\"MID-1\",\"pad\":\"";
    memcpy(json, head, strlen(head));
    json[mid - 2] = '"';
    json[mid - 1] = '}';
    json[mid] = '\0';
    zstr_sendx(s, "EVENT", sid, "3", json, NULL);
    free(json);
    r = s_recv(s);
    printf("# answer: %.80s\n", r ? r : "(none)");
    s_check(s_starts(r, "NACK|") && strstr(r, "|3|too_large"), "a record over max_event_bytes is NACKed too_large");
    free(r);

    /* over the hard limit: libzmq drops the connection and the socket
       reconnects; the record is not answered, the session's next message is */
    size_t big = 200 * 1024;
    char *blob = malloc(big);
    memset(blob, 'x', big);
    zmsg_t *m = zmsg_new();
    zmsg_addstr(m, "EVENT");
    zmsg_addstr(m, sid);
    zmsg_addstr(m, "4");
    zmsg_addmem(m, blob, big);
    zmsg_send(&m, s);
    free(blob);
    r = s_recv(s);
    s_check(r == NULL, "a message over max_message_bytes is not answered (connection dropped)");
    free(r);
    zstr_sendx(s, "PING", sid, NULL);
    r = s_recv(s);
    s_check(s_starts(r, "ERROR|unknown_session") && strstr(r, sid),
            "... and the session's next message gets ERROR unknown_session naming it");
    free(r);
    free(sid);
    zsock_destroy(&s);

    /* the hub still serves a well-formed session afterwards */
    s = s_connect(argv[1], server, client);
    sid = s_hello(s);
    s_check(sid != NULL, "a new connection gets WELCOME after the abuse");
    if (sid) {
        zstr_sendx(s, "EVENT", sid, "1",
                   "{\"id\":\"RAW-1\",\"version\":1,\"type\":\"encombrants\",\"statut\":\"RECU\",\"canal\":\"WEB\","
                   "\"date\":\"05/03/2024 10:00\"}", NULL);
        r = s_recv(s);
        s_check(s_starts(r, "ACK|") || s_starts(r, "NACK|"),
                "a well-formed EVENT is settled after the abuse");
        printf("# answer: %s\n", r ? r : "(none)");
        s_check(s_starts(r, "ACK|") && strstr(r, "|1"), "... and ACKed");
        free(r);
        free(sid);
    }
    zsock_destroy(&s);
    zcert_destroy(&server);
    zcert_destroy(&client);
    return s_failures ? 1 : 0;
}
