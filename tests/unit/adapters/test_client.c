/*  Unit tests of the adapter runtime (adapters/runtime/cv_client) and of
    the adapter config loader (adapters/runtime/adapter_config).

    The client talks to a REAL ZeroMQ ROUTER socket with CURVE on, whose
    ZAP handler (CZMQ zauth) accepts only the keys in a temp cert dir. The
    test plays the hub's side of CIVIBUS/1 step by step in one thread:
    `s_recv` pumps cv_client_poll while it waits for the client's next
    message, and the test answers with WELCOME, ACK, NACK, ERROR... Every
    test has its own temp dir (keys, certs, spool), removed at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_test.h"

#include <czmq.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cv_log.h"
#include "cv_proto.h"
#include "runtime/cv_adapter_config.h"
#include "runtime/cv_client.h"

typedef struct {
    char dir[64];
    char certdir[128], client_key[128], client_secret[160], spool[128];
    zactor_t *auth;
    zcert_t *server_cert;
    cv_client_t *client;                 /* destroyed by the teardown if a test fails */
    zsock_t *router;
    char endpoint[64];
    zframe_t *peer;                      /* routing id of the last message */
    char session[CV_SESSION_ID_LEN + 1];
    unsigned sessions;
} hub_t;

/* ------------------------------------------------------------ the fake hub */

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static hub_t *s_hub_new(void)
{
    hub_t *hub = calloc(1, sizeof *hub);
    assert_non_null(hub);
    strcpy(hub->dir, "/tmp/cv-client-test-XXXXXX");
    assert_non_null(mkdtemp(hub->dir));
    snprintf(hub->certdir, sizeof hub->certdir, "%s/certs", hub->dir);
    snprintf(hub->client_key, sizeof hub->client_key, "%s/client", hub->dir);
    snprintf(hub->client_secret, sizeof hub->client_secret, "%s_secret", hub->client_key);
    snprintf(hub->spool, sizeof hub->spool, "%s/spool", hub->dir);
    assert_int_equal(zsys_dir_create("%s", hub->certdir), 0);

    /* the client's key pair, its public half listed for zauth */
    zcert_t *client = zcert_new();
    assert_int_equal(zcert_save(client, hub->client_key), 0);
    char listed[192];
    snprintf(listed, sizeof listed, "%s/client.key", hub->certdir);
    assert_int_equal(zcert_save_public(client, listed), 0);
    zcert_destroy(&client);

    hub->auth = zactor_new(zauth, NULL);
    assert_non_null(hub->auth);
    zstr_sendx(hub->auth, "CURVE", hub->certdir, NULL);
    zsock_wait(hub->auth);

    hub->server_cert = zcert_new();
    hub->router = zsock_new(ZMQ_ROUTER);
    zcert_apply(hub->server_cert, hub->router);
    zsock_set_curve_server(hub->router, 1);
    zsock_set_linger(hub->router, 0);
    int port = zsock_bind(hub->router, "tcp://127.0.0.1:*");
    assert_true(port > 0);
    snprintf(hub->endpoint, sizeof hub->endpoint, "tcp://127.0.0.1:%d", port);
    return hub;
}

static void s_hub_destroy(hub_t **hub_p)
{
    hub_t *hub = *hub_p;
    cv_client_destroy(&hub->client);
    zframe_destroy(&hub->peer);
    zsock_destroy(&hub->router);
    zactor_destroy(&hub->auth);
    zcert_destroy(&hub->server_cert);
    nftw(hub->dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    free(hub);
    *hub_p = NULL;
}

static int s_setup(void **state)
{
    *state = s_hub_new();
    return 0;
}

static int s_teardown(void **state)
{
    hub_t *hub = *state;
    s_hub_destroy(&hub);
    return 0;
}

static cv_client_opts_t s_opts(hub_t *hub, const char *secret_file)
{
    cv_client_opts_t opts = {
        .endpoint = hub->endpoint,
        .hub_public_key = zcert_public_txt(hub->server_cert),
        .secret_key_file = secret_file ? secret_file : hub->client_secret,
        .spool_dir = hub->spool,
        .max_event_bytes = 4096,
        .description = "test_client",
        .name = "test",
    };
    opts.spool.segment_bytes = 1 << 20;
    opts.spool.max_bytes = 64 << 20;
    return opts;
}

static cv_client_t *s_client_new(hub_t *hub)
{
    cv_client_opts_t opts = s_opts(hub, NULL);
    char err[256] = "";
    cv_client_t *client = cv_client_new(&opts, err, sizeof err);
    if (!client)
        fail_msg("cv_client_new: %s", err);
    hub->client = client;
    return client;
}

static void s_client_destroy(hub_t *hub, cv_client_t **client_p)
{
    cv_client_destroy(client_p);
    assert_null(*client_p);
    hub->client = NULL;
}

/* Next message from the client (routing id removed, BYE skipped), pumping
   the client meanwhile; NULL after timeout_ms. */
static zmsg_t *s_recv(hub_t *hub, cv_client_t *client, int timeout_ms)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    while (true) {
        while (zsock_events(hub->router) & ZMQ_POLLIN) {
            zmsg_t *msg = zmsg_recv(hub->router);
            assert_non_null(msg);
            zframe_destroy(&hub->peer);
            hub->peer = zmsg_pop(msg);
            if (zframe_streq(zmsg_first(msg), "BYE")) {
                zmsg_destroy(&msg);
                continue;
            }
            return msg;
        }
        if (zclock_mono() >= deadline)
            return NULL;
        if (client)
            cv_client_poll(client, 0);
        zmq_pollitem_t item = { zsock_resolve(hub->router), 0, ZMQ_POLLIN, 0 };
        zmq_poll(&item, 1, 1);
    }
}

static void s_send(hub_t *hub, const char *cmd, ...)
{
    zmsg_t *msg = zmsg_new();
    zmsg_append(msg, &(zframe_t *) { zframe_dup(hub->peer) });
    zmsg_addstr(msg, cmd);
    va_list ap;
    va_start(ap, cmd);
    for (const char *frame = va_arg(ap, const char *); frame; frame = va_arg(ap, const char *))
        zmsg_addstr(msg, frame);
    va_end(ap);
    assert_int_equal(zmsg_send(&msg, hub->router), 0);
}

static void s_expect_cmd(zmsg_t *msg, const char *cmd)
{
    if (!msg)
        fail_msg("expected %s, got nothing", cmd);
    char *got = zframe_strdup(zmsg_first(msg));
    if (strcmp(got, cmd) != 0) {
        char copy[64];
        snprintf(copy, sizeof copy, "%s", got);
        free(got);
        fail_msg("expected %s, got %s", cmd, copy);
    }
    free(got);
}

/* Waits for a HELLO asking for protocol version and answers WELCOME with
   a fresh session. */
static void s_welcome_v(hub_t *hub, cv_client_t *client, const char *version, const char *window,
                        const char *max_bytes, const char *heartbeat)
{
    zmsg_t *msg = s_recv(hub, client, 3000);
    s_expect_cmd(msg, "HELLO");
    assert_true(zframe_streq(zmsg_next(msg), version));
    zmsg_destroy(&msg);
    snprintf(hub->session, sizeof hub->session, "%032x", ++hub->sessions + 0xabc000u);
    s_send(hub, "WELCOME", hub->session, window, max_bytes, heartbeat, NULL);
}

/* The same for the version the client asks first, CIVIBUS/1.1. */
static void s_welcome(hub_t *hub, cv_client_t *client, const char *window, const char *max_bytes,
                      const char *heartbeat)
{
    s_welcome_v(hub, client, CV_PROTO_VERSION_1_1, window, max_bytes, heartbeat);
}

/* Waits for an EVENT of the current session; checks its seq and record. */
static void s_expect_event(hub_t *hub, cv_client_t *client, uint64_t seq, const char *record)
{
    zmsg_t *msg = s_recv(hub, client, 3000);
    s_expect_cmd(msg, "EVENT");
    assert_int_equal(zmsg_size(msg), 4);
    assert_true(zframe_streq(zmsg_next(msg), hub->session));
    zframe_t *f = zmsg_next(msg);
    uint64_t got;
    assert_int_equal(cv_proto_parse_u64(zframe_data(f), zframe_size(f), &got), 0);
    assert_int_equal(got, seq);
    char *body = zframe_strdup(zmsg_next(msg));
    assert_string_equal(body, record);
    free(body);
    zmsg_destroy(&msg);
}

static void s_expect_nothing(hub_t *hub, cv_client_t *client, int ms)
{
    zmsg_t *msg = s_recv(hub, client, ms);
    if (msg) {
        char *cmd = zframe_strdup(zmsg_first(msg));
        char copy[64];
        snprintf(copy, sizeof copy, "%s", cmd);
        free(cmd);
        zmsg_destroy(&msg);
        fail_msg("expected no message, got %s", copy);
    }
}

static void s_submit(cv_client_t *client, int from, int to)
{
    for (int i = from; i <= to; i++) {
        char rec[32];
        snprintf(rec, sizeof rec, "{\"n\":%d}", i);
        assert_int_equal(cv_client_submit(client, rec, strlen(rec)), 0);
    }
}

static const char *s_rec(int i)
{
    static char rec[32];
    snprintf(rec, sizeof rec, "{\"n\":%d}", i);
    return rec;
}

/* ------------------------------------------------------------------ tests */

static void test_window_ack_nack(void **state)
{
    hub_t *hub = *state;
    cv_client_t *client = s_client_new(hub);
    s_submit(client, 1, 10);
    s_welcome(hub, client, "4", "262144", "2000");
    for (int i = 1; i <= 4; i++)
        s_expect_event(hub, client, (uint64_t) i, s_rec(i));
    s_expect_nothing(hub, client, 200);          /* window of 4 is full */
    assert_true(cv_client_connected(client));
    assert_string_equal(cv_client_session(client), hub->session);

    s_send(hub, "ACK", hub->session, "1-2", NULL);
    s_expect_event(hub, client, 5, s_rec(5));
    s_expect_event(hub, client, 6, s_rec(6));
    s_expect_nothing(hub, client, 150);
    assert_int_equal(cv_client_unsettled(client), 8);

    s_send(hub, "NACK", hub->session, "3", "invalid_json", NULL);
    s_expect_event(hub, client, 7, s_rec(7));
    s_expect_nothing(hub, client, 150);
    assert_int_equal(cv_client_unsettled(client), 7);

    s_send(hub, "ACK", hub->session, "4-7", NULL);    /* 4 was in flight all along */
    for (int i = 8; i <= 10; i++)
        s_expect_event(hub, client, (uint64_t) i, s_rec(i));
    s_expect_nothing(hub, client, 100);
    assert_false(cv_client_settled(client));
    s_send(hub, "ACK", hub->session, "8-10", NULL);
    assert_int_equal(cv_client_wait_settled(client, 2000), 0);

    cv_client_stats_t st = cv_client_stats(client);
    assert_int_equal(st.submitted, 10);
    assert_int_equal(st.sent, 10);
    assert_int_equal(st.resent, 0);
    assert_int_equal(st.acked, 9);
    assert_int_equal(st.nacked, 1);
    assert_int_equal(st.refused, 0);
    s_client_destroy(hub, &client);
    assert_null(client);
}

/* What on_settle was told, by spool id (ids 1..16 here). */
typedef struct { char what[17][16]; bool acked[17]; } settled_t;

static void s_on_settle(void *arg, uint64_t id, bool acked, const char *reason)
{
    settled_t *t = arg;
    assert_true(id >= 1 && id <= 16);
    assert_string_equal(t->what[id], "");                 /* once per record */
    snprintf(t->what[id], sizeof t->what[id], "%s", reason);
    t->acked[id] = acked;
}

/* CIVIBUS/1.1: each ACK names what its ranges are, and the driver is told
   per record; an unknown kind still settles. */
static void test_ack_kinds(void **state)
{
    hub_t *hub = *state;
    cv_client_t *client = s_client_new(hub);
    settled_t t = { 0 };
    cv_client_on_settle(client, s_on_settle, &t);
    s_submit(client, 1, 6);
    s_welcome(hub, client, "8", "262144", "2000");
    for (int i = 1; i <= 6; i++)
        s_expect_event(hub, client, (uint64_t) i, s_rec(i));
    s_send(hub, "ACK", hub->session, "1,3", "stored", NULL);
    s_send(hub, "NACK", hub->session, "2", "bad_date", NULL);
    s_send(hub, "ACK", hub->session, "4", "duplicate", NULL);
    s_send(hub, "ACK", hub->session, "5", "id_reused", NULL);
    s_send(hub, "ACK", hub->session, "6", "something_new", NULL);
    assert_int_equal(cv_client_wait_settled(client, 2000), 0);
    assert_string_equal(t.what[1], "stored");
    assert_string_equal(t.what[2], "bad_date");
    assert_false(t.acked[2]);
    assert_string_equal(t.what[3], "stored");
    assert_string_equal(t.what[4], "duplicate");
    assert_string_equal(t.what[5], "id_reused");
    assert_true(t.acked[5]);
    assert_string_equal(t.what[6], "settled");
    cv_client_stats_t st = cv_client_stats(client);
    assert_int_equal(st.acked, 5);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(st.nacked, 1);
    s_client_destroy(hub, &client);
}

/* A hub refusing CIVIBUS/1.1 gets CIVIBUS/1, whose ACKs do not say what
   they are ("settled"); a hub refusing that too stops the client. */
static void test_protocol_fallback(void **state)
{
    hub_t *hub = *state;
    cv_client_t *client = s_client_new(hub);
    settled_t t = { 0 };
    cv_client_on_settle(client, s_on_settle, &t);
    s_submit(client, 1, 2);
    zmsg_t *msg = s_recv(hub, client, 3000);
    s_expect_cmd(msg, "HELLO");
    assert_true(zframe_streq(zmsg_next(msg), CV_PROTO_VERSION_1_1));
    zmsg_destroy(&msg);
    s_send(hub, "ERROR", "bad_protocol", "expected CIVIBUS/1", "HELLO", "", "", NULL);
    s_welcome_v(hub, client, CV_PROTO_VERSION, "8", "262144", "2000");
    s_expect_event(hub, client, 1, s_rec(1));
    s_expect_event(hub, client, 2, s_rec(2));
    s_send(hub, "ACK", hub->session, "1-2", NULL);
    assert_int_equal(cv_client_wait_settled(client, 2000), 0);
    assert_string_equal(t.what[1], "settled");
    assert_string_equal(t.what[2], "settled");
    assert_true(cv_client_connected(client));

    /* the session drops (unknown_session): HELLO again, still CIVIBUS/1 */
    s_send(hub, "ERROR", "unknown_session", "no such session", "PING", hub->session, "", NULL);
    msg = s_recv(hub, client, 3000);
    s_expect_cmd(msg, "HELLO");
    assert_true(zframe_streq(zmsg_next(msg), CV_PROTO_VERSION));
    zmsg_destroy(&msg);
    s_send(hub, "ERROR", "bad_protocol", "expected CIVIBUS/9", "HELLO", "", "", NULL);
    for (int i = 0; i < 200 && cv_client_error(client) == CV_CLIENT_OK; i++)
        cv_client_poll(client, 10);
    assert_int_equal(cv_client_error(client), CV_CLIENT_ERR_PROTOCOL);
    s_client_destroy(hub, &client);
}

static void test_ack_for_other_session_ignored(void **state)
{
    hub_t *hub = *state;
    cv_client_t *client = s_client_new(hub);
    s_submit(client, 1, 2);
    s_welcome(hub, client, "4", "262144", "2000");
    s_expect_event(hub, client, 1, s_rec(1));
    s_expect_event(hub, client, 2, s_rec(2));
    s_send(hub, "ACK", "0123456789abcdef0123456789abcdef", "1-2", NULL);
    s_send(hub, "ACK", hub->session, "not-a-range", NULL);
    s_expect_nothing(hub, client, 150);
    assert_int_equal(cv_client_unsettled(client), 2);
    s_send(hub, "ACK", hub->session, "2", NULL);
    s_expect_nothing(hub, client, 100);
    assert_int_equal(cv_client_unsettled(client), 1);
    s_client_destroy(hub, &client);
}

static void test_unknown_session_resends_unsettled(void **state)
{
    hub_t *hub = *state;
    cv_client_t *client = s_client_new(hub);
    s_submit(client, 1, 6);
    s_welcome(hub, client, "4", "262144", "2000");
    for (int i = 1; i <= 4; i++)
        s_expect_event(hub, client, (uint64_t) i, s_rec(i));
    s_send(hub, "ACK", hub->session, "1,3", NULL);
    s_expect_event(hub, client, 5, s_rec(5));
    s_expect_event(hub, client, 6, s_rec(6));

    s_send(hub, "ERROR", "unknown_session", "session expired", NULL);
    s_submit(client, 7, 8);                        /* wait in memory meanwhile */
    s_welcome(hub, client, "4", "262144", "2000");   /* a new HELLO, a new session */
    s_expect_event(hub, client, 1, s_rec(2));
    s_expect_event(hub, client, 2, s_rec(4));
    s_expect_event(hub, client, 3, s_rec(5));
    s_expect_event(hub, client, 4, s_rec(6));
    s_expect_nothing(hub, client, 150);

    s_send(hub, "ACK", hub->session, "1-4", NULL);
    s_expect_event(hub, client, 5, s_rec(7));
    s_expect_event(hub, client, 6, s_rec(8));
    s_send(hub, "ACK", hub->session, "5-6", NULL);
    assert_int_equal(cv_client_wait_settled(client, 2000), 0);
    cv_client_stats_t st = cv_client_stats(client);
    assert_int_equal(st.acked, 8);                 /* each record settled once */
    assert_int_equal(st.sent, 12);
    assert_int_equal(st.resent, 4);
    assert_int_equal(st.reconnects, 1);
    s_client_destroy(hub, &client);
}

/* ERROR's last frames name the message it answers: one about an older
   session is ignored; one about ours (here bad_sequence on EVENT 2) or
   about none ends the session, and everything unsettled goes again. */
static void test_error_names_its_session(void **state)
{
    hub_t *hub = *state;
    cv_client_t *client = s_client_new(hub);
    s_submit(client, 1, 3);
    s_welcome(hub, client, "4", "262144", "2000");
    for (int i = 1; i <= 3; i++)
        s_expect_event(hub, client, (uint64_t) i, s_rec(i));
    s_send(hub, "ERROR", "unknown_session", "no such session", "EVENT", "0123456789abcdef0123456789abcdef", "7",
           NULL);
    s_send(hub, "ERROR", "malformed", "missing session id", "PING", "0123456789abcdef0123456789abcdef", "",
           NULL);
    s_expect_nothing(hub, client, 200);
    assert_true(cv_client_connected(client));
    assert_string_equal(cv_client_session(client), hub->session);
    s_send(hub, "ACK", hub->session, "1", NULL);
    s_expect_nothing(hub, client, 100);
    assert_int_equal(cv_client_unsettled(client), 2);

    s_send(hub, "ERROR", "bad_sequence", "sequence 2 where 3 was expected", "EVENT", hub->session, "2", NULL);
    s_welcome(hub, client, "4", "262144", "2000");
    s_expect_event(hub, client, 1, s_rec(2));
    s_expect_event(hub, client, 2, s_rec(3));
    /* an ERROR naming no session (an older hub's two frames, or a message the
       hub could not tie to one) ends the session too */
    s_send(hub, "ERROR", "window_exceeded", "too many", "EVENT", "", "", NULL);
    s_welcome(hub, client, "4", "262144", "2000");
    s_expect_event(hub, client, 1, s_rec(2));
    s_expect_event(hub, client, 2, s_rec(3));
    s_send(hub, "ACK", hub->session, "1-2", NULL);
    assert_int_equal(cv_client_wait_settled(client, 2000), 0);
    cv_client_stats_t st = cv_client_stats(client);
    assert_int_equal(st.reconnects, 2);
    assert_int_equal(st.acked, 3);
    s_client_destroy(hub, &client);
}

static void test_restart_resends_spool_first(void **state)
{
    hub_t *hub = *state;
    cv_client_t *client = s_client_new(hub);
    s_submit(client, 1, 5);
    s_welcome(hub, client, "4", "262144", "2000");
    for (int i = 1; i <= 4; i++)
        s_expect_event(hub, client, (uint64_t) i, s_rec(i));
    s_send(hub, "ACK", hub->session, "1-2", NULL);
    s_expect_event(hub, client, 5, s_rec(5));
    assert_int_equal(cv_client_set_position(client, "line 5"), 0);
    s_expect_nothing(hub, client, 150);
    assert_int_equal(cv_client_unsettled(client), 3);
    s_client_destroy(hub, &client);                /* 3, 4 and 5 stay unsettled */

    client = s_client_new(hub);
    assert_int_equal(cv_client_unsettled(client), 3);
    assert_string_equal(cv_client_position(client), "line 5");
    s_submit(client, 6, 6);
    s_welcome(hub, client, "10", "262144", "2000");
    s_expect_event(hub, client, 1, s_rec(3));
    s_expect_event(hub, client, 2, s_rec(4));
    s_expect_event(hub, client, 3, s_rec(5));
    s_expect_event(hub, client, 4, s_rec(6));
    s_send(hub, "ACK", hub->session, "1-4", NULL);
    assert_int_equal(cv_client_wait_settled(client, 2000), 0);
    cv_client_stats_t st = cv_client_stats(client);
    assert_int_equal(st.submitted, 1);
    assert_int_equal(st.resent, 3);
    assert_int_equal(st.acked, 4);
    s_client_destroy(hub, &client);
}

static off_t s_file_size(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* A driver that waits for ACKs submits nothing, so no batch sync carries
   the settlements: they must reach disk on their own, or a kill -9 then
   resends everything acknowledged since the last batch. */
static void test_settlements_synced_while_idle(void **state)
{
    hub_t *hub = *state;
    cv_client_t *client = s_client_new(hub);
    s_submit(client, 1, 4);
    s_welcome(hub, client, "4", "262144", "2000");
    for (int i = 1; i <= 4; i++)
        s_expect_event(hub, client, (uint64_t) i, s_rec(i));
    s_expect_nothing(hub, client, 50);
    assert_true(s_file_size(hub->spool, "settled.log") <= 0);
    s_send(hub, "ACK", hub->session, "1-3", NULL);
    s_expect_nothing(hub, client, 500);            /* polls, submits nothing */
    assert_int_equal(cv_client_unsettled(client), 1);
    assert_true(s_file_size(hub->spool, "settled.log") > 0);
    s_client_destroy(hub, &client);
}

static void test_too_large_refused_locally(void **state)
{
    hub_t *hub = *state;
    cv_client_opts_t opts = s_opts(hub, NULL);
    opts.max_event_bytes = 100;
    char err[256];
    cv_client_t *client = hub->client = cv_client_new(&opts, err, sizeof err);
    assert_non_null(client);
    char big[200];
    memset(big, 'x', sizeof big);
    assert_int_equal(cv_client_submit(client, big, 101), 1);
    assert_int_equal(cv_client_unsettled(client), 0);
    assert_int_equal(cv_client_submit(client, big, 100), 0);
    assert_int_equal(cv_client_unsettled(client), 1);

    s_welcome(hub, client, "4", "50", "2000");       /* the hub's limit is lower */
    zmsg_t *msg = s_recv(hub, client, 2000);
    s_expect_cmd(msg, "EVENT");
    zmsg_destroy(&msg);
    assert_int_equal(cv_client_max_event_bytes(client), 50);
    assert_int_equal(cv_client_submit(client, big, 60), 1);
    assert_int_equal(cv_client_submit(client, big, 50), 0);
    s_expect_event(hub, client, 2, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    cv_client_stats_t st = cv_client_stats(client);
    assert_int_equal(st.refused, 2);
    assert_int_equal(st.submitted, 2);
    s_client_destroy(hub, &client);
}

static void test_unknown_key_is_auth_failure(void **state)
{
    hub_t *hub = *state;
    char stranger[192];
    snprintf(stranger, sizeof stranger, "%s/stranger", hub->dir);
    zcert_t *cert = zcert_new();
    assert_int_equal(zcert_save(cert, stranger), 0);
    zcert_destroy(&cert);
    strcat(stranger, "_secret");

    cv_client_opts_t opts = s_opts(hub, stranger);
    char err[256];
    cv_client_t *client = hub->client = cv_client_new(&opts, err, sizeof err);
    assert_non_null(client);
    s_submit(client, 1, 1);
    int rc = 0;
    int64_t deadline = zclock_mono() + 3000;
    while (rc == 0 && zclock_mono() < deadline)
        rc = cv_client_poll(client, 100);
    assert_int_equal(rc, -1);
    assert_int_equal(cv_client_error(client), CV_CLIENT_ERR_AUTH);
    assert_false(cv_client_can_accept(client));
    assert_int_equal(cv_client_submit(client, "{}", 2), -1);
    assert_false(zsock_events(hub->router) & ZMQ_POLLIN);   /* nothing got through */
    s_client_destroy(hub, &client);
}

static void test_heartbeat_and_silent_hub(void **state)
{
    hub_t *hub = *state;
    cv_client_t *client = s_client_new(hub);
    s_welcome(hub, client, "4", "262144", "100");
    zmsg_t *msg = s_recv(hub, client, 1000);       /* idle: PING */
    s_expect_cmd(msg, "PING");
    assert_true(zframe_streq(zmsg_next(msg), hub->session));
    zmsg_destroy(&msg);
    s_send(hub, "PONG", hub->session, NULL);

    s_submit(client, 1, 1);
    s_expect_event(hub, client, 1, s_rec(1));
    /* the hub stays silent: the client gives up on the session after
       3 x 100 ms, reconnects and sends the record again */
    int64_t start = zclock_mono();
    while ((msg = s_recv(hub, client, 2000)) && zframe_streq(zmsg_first(msg), "PING"))
        zmsg_destroy(&msg);
    s_expect_cmd(msg, "HELLO");
    zmsg_destroy(&msg);
    assert_true(zclock_mono() - start >= 250);
    snprintf(hub->session, sizeof hub->session, "%032x", 0x5e55u);
    s_send(hub, "WELCOME", hub->session, "4", "262144", "2000", NULL);
    s_expect_event(hub, client, 1, s_rec(1));
    s_send(hub, "ACK", hub->session, "1", NULL);
    assert_int_equal(cv_client_wait_settled(client, 2000), 0);
    assert_int_equal(cv_client_stats(client).reconnects, 1);
    s_client_destroy(hub, &client);
}

/* More records than the send cache holds: the overflow is read back from
   the spool, in order, with the window respected throughout. */
static void test_overflow_read_back_in_order(void **state)
{
    hub_t *hub = *state;
    cv_client_t *client = s_client_new(hub);
    const int total = 2600;
    s_submit(client, 1, total);
    assert_int_equal(cv_client_flush(client), 0);
    s_welcome(hub, client, "50", "262144", "2000");
    int next = 1;
    while (next <= total) {
        int batch_start = next;
        for (int k = 0; k < 50 && next <= total; k++, next++)
            s_expect_event(hub, client, (uint64_t) next, s_rec(next));
        if (next <= total)                          /* window full: nothing more */
            assert_false(zsock_events(hub->router) & ZMQ_POLLIN);
        char range[48];
        snprintf(range, sizeof range, "%d-%d", batch_start, next - 1);
        s_send(hub, "ACK", hub->session, range, NULL);
    }
    assert_int_equal(cv_client_wait_settled(client, 3000), 0);
    cv_client_stats_t st = cv_client_stats(client);
    assert_int_equal(st.acked, total);
    assert_int_equal(st.sent, total);
    assert_int_equal(st.resent, 0);
    s_client_destroy(hub, &client);
}

/* ----------------------------------------------------------------- config */

static void s_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void s_config_err(hub_t *hub, const char *text, const char *expect)
{
    char path[192], err[512] = "";
    snprintf(path, sizeof path, "%s/bad.yaml", hub->dir);
    s_write(path, text);
    cv_adapter_config_t *cfg = cv_adapter_config_load(path, err, sizeof err);
    assert_null(cfg);
    char want[512];
    snprintf(want, sizeof want, "%s:%s", path, expect);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("got '%s', want prefix '%s'", err, want);
}

static void test_config(void **state)
{
    hub_t *hub = *state;
    char path[192], hubkey[192], err[512] = "";
    snprintf(hubkey, sizeof hubkey, "%s/hub", hub->dir);
    assert_int_equal(zcert_save_public(hub->server_cert, hubkey), 0);
    snprintf(path, sizeof path, "%s/adapter.yaml", hub->dir);
    s_write(path,
            "hub:\n"
            "  endpoint: tcp://127.0.0.1:5560\n"
            "  public_key_file: hub\n"
            "sources:\n"
            "  demo:\n"
            "    secret_key_file: client_secret\n"
            "    spool_dir: spool/demo\n"
            "  other:\n"
            "    secret_key_file: /nonexistent/key_secret\n"
            "    spool_dir: /var/tmp/x\n"
            "spool:\n"
            "  max_bytes: 2097152\n"
            "  retention_days: 0\n"
            "limits:\n"
            "  max_event_bytes: 1000\n");
    cv_adapter_config_t *cfg = cv_adapter_config_load(path, err, sizeof err);
    if (!cfg)
        fail_msg("%s", err);
    assert_string_equal(cfg->endpoint, "tcp://127.0.0.1:5560");
    assert_string_equal(cfg->hub_public_key, zcert_public_txt(hub->server_cert));
    assert_int_equal(cfg->source_count, 2);
    assert_int_equal(cfg->spool.max_bytes, 2097152);
    assert_int_equal(cfg->spool.segment_bytes, 64 << 20);
    assert_int_equal(cfg->spool.retention_days, 0);
    assert_int_equal(cfg->max_event_bytes, 1000);
    cv_client_opts_t opts;
    assert_int_equal(cv_adapter_config_client_opts(cfg, "demo", &opts, err, sizeof err), 0);
    char want[512];
    snprintf(want, sizeof want, "%s/spool/demo", hub->dir);
    assert_string_equal(opts.spool_dir, want);
    assert_string_equal(opts.secret_key_file, hub->client_secret);
    assert_int_equal(opts.max_event_bytes, 1000);
    assert_string_equal(opts.name, "demo");

    assert_int_equal(cv_adapter_config_client_opts(cfg, "other", &opts, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:9: cannot read a CURVE secret key", path);
    assert_memory_equal(err, want, strlen(want));
    assert_int_equal(cv_adapter_config_client_opts(cfg, "nope", &opts, err, sizeof err), -1);
    assert_non_null(strstr(err, "no source 'nope'"));
    cv_adapter_config_destroy(&cfg);
    assert_null(cfg);

    /* a key that decodes to zeros is no key */
    s_write(path,
            "hub:\n  endpoint: tcp://h:1\n  public_key: \"" "0000000000000000000000000000000000000000" "\"\n"
            "sources:\n  demo:\n    secret_key_file: hub\n    spool_dir: s\n");
    assert_null(cv_adapter_config_load(path, err, sizeof err));
    snprintf(want, sizeof want, "%s:3: 'public_key' must be", path);
    assert_memory_equal(err, want, strlen(want));

    s_config_err(hub, "hub:\n  endpoint: tcp://h:1\n  public_key_file: hub\n  colour: blue\n"
                      "sources:\n  demo: {secret_key_file: a, spool_dir: b}\n",
                 "4: unknown key 'colour'");
    s_config_err(hub, "hub:\n  endpoint: tcp://h:1\n  public_key_file: missing\n"
                      "sources:\n  demo: {secret_key_file: a, spool_dir: b}\n",
                 "3: cannot read a CURVE certificate");
    s_config_err(hub, "hub:\n  endpoint: tcp://h:1\n  public_key_file: hub\n"
                      "sources:\n  demo: {secret_key_file: a, spool_dir: b}\n"
                      "limits:\n  max_event_bytes: lots\n",
                 "7: 'max_event_bytes' must be a whole number");
    s_config_err(hub, "hub:\n  endpoint: tcp://h:1\n  public_key_file: hub\n"
                      "sources:\n  demo: {secret_key_file: a}\n",
                 "5: missing required key 'spool_dir'");
    s_config_err(hub, "hub:\n  endpoint: tcp://h:1\n"
                      "sources:\n  demo: {secret_key_file: a, spool_dir: b}\n",
                 "1: 'hub' needs exactly one of");
    s_config_err(hub, "hub:\n  endpoint: localhost\n  public_key_file: hub\n"
                      "sources:\n  demo: {secret_key_file: a, spool_dir: b}\n",
                 "2: 'endpoint' must look like");
    s_config_err(hub, "hub:\n  endpoint: tcp://h:1\n  public_key_file: hub\n"
                      "sources:\n  \"bad name\": {secret_key_file: a, spool_dir: b}\n",
                 "5: source name 'bad name'");
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    zsys_handler_set(NULL);
    cv_log_init("test_client", CV_LOG_ERROR);       /* CIVIBUS_LOG=debug to see more */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_window_ack_nack, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_ack_kinds, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_protocol_fallback, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_ack_for_other_session_ignored, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_session_resends_unsettled, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_error_names_its_session, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_settlements_synced_while_idle, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_restart_resends_spool_first, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_too_large_refused_locally, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_is_auth_failure, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_and_silent_hub, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_overflow_read_back_in_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_config, s_setup, s_teardown),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
