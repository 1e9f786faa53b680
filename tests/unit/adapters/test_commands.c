/*  test_commands — adapters/commands/cv_commands.c against a real HTTP server.

    The software is a small libmicrohttpd server in this process, with the
    three behaviours of tests/sim/command_target.py: /idem/pickups honours
    Idempotency-Key, /lookup/pickups stores our reference (external_ref)
    and can be searched by it, /unsafe/pickups creates on every request;
    /echo/... records what it received. Results are captured by the sender
    callback. Restarts are real: the module is destroyed and opened again
    on the same journal, or opened on a journal written as a killed process
    leaves it ("try" without "tried"). */
#include "commands/cv_commands.h"

#include <microhttpd.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cv_test.h"

/* ---- the software ------------------------------------------------------------ */

typedef struct {
    struct MHD_Daemon *daemon;
    int port;
    pthread_mutex_t lock;
    int created;                 /* objects created */
    int posts;                   /* POST requests answered */
    int fail_first;              /* answer 503 to this many POSTs first */
    int status;                  /* answer every POST with this status instead (0: no) */
    char keys[16][160];          /* idempotency keys seen, keys[i] created object i+1 */
    int key_object[16];
    int nkeys;
    char refs[16][160];          /* external_ref of lookup objects */
    int ref_object[16];
    int nrefs;
    char last_url[512];
    char raw_path[512];          /* the last /echo path as sent, still URL-encoded */
    char last_header[160];       /* X-Command-Id of the last request */
    char last_body[1024];
} target_t;

static target_t s_t;

typedef struct {
    char data[4096];
    size_t len;
} upload_t;

static enum MHD_Result s_reply(struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
{
    char body[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    struct MHD_Response *res = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(res, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response(conn, status, res);
    MHD_destroy_response(res);
    return rc;
}

static int s_create(void)
{
    return ++s_t.created;
}

static enum MHD_Result s_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                const char *version, const char *data, size_t *size, void **con_cls)
{
    upload_t *up = *con_cls;
    if (!up) {
        *con_cls = calloc(1, sizeof *up);
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*size) {
        size_t n = *size < sizeof up->data - 1 - up->len ? *size : sizeof up->data - 1 - up->len;
        memcpy(up->data + up->len, data, n);
        up->len += n;
        *size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&s_t.lock);
    enum MHD_Result rc;
    const char *query = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "external_ref");
    const char *cmd_id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Command-Id");
    snprintf(s_t.last_url, sizeof s_t.last_url, "%s", url);
    snprintf(s_t.last_header, sizeof s_t.last_header, "%s", cmd_id ? cmd_id : "");
    snprintf(s_t.last_body, sizeof s_t.last_body, "%.1000s", up->data);
    if (strcmp(method, "GET") == 0 && strcmp(url, "/lookup/pickups") == 0) {
        int found = 0;
        for (int i = 0; query && i < s_t.nrefs; i++)
            if (strcmp(s_t.refs[i], query) == 0)
                found = s_t.ref_object[i];
        rc = found ? s_reply(conn, 200, "[{\"id\": \"P-%d\"}]", found) : s_reply(conn, 200, "[]");
    }
    else if (strcmp(method, "POST") != 0)
        rc = s_reply(conn, 405, "{}");
    else if (s_t.posts++ < s_t.fail_first)
        rc = s_reply(conn, 503, "{\"error\": \"busy\"}");
    else if (s_t.status)
        rc = s_reply(conn, (unsigned) s_t.status, "{\"error\": \"refused\"}");
    else if (strcmp(url, "/idem/pickups") == 0) {
        const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
        int seen = 0;
        for (int i = 0; key && i < s_t.nkeys; i++)
            if (strcmp(s_t.keys[i], key) == 0)
                seen = s_t.key_object[i];
        if (!key)
            rc = s_reply(conn, 400, "{}");
        else if (seen)
            rc = s_reply(conn, 200, "{\"id\": \"P-%d\"}", seen);
        else {
            int obj = s_create();
            snprintf(s_t.keys[s_t.nkeys], sizeof s_t.keys[0], "%s", key);
            s_t.key_object[s_t.nkeys++] = obj;
            rc = s_reply(conn, 201, "{\"id\": \"P-%d\"}", obj);
        }
    }
    else if (strcmp(url, "/lookup/pickups") == 0) {
        int obj = s_create();
        const char *ref = strstr(up->data, "\"external_ref\":\"");
        if (ref) {
            ref += strlen("\"external_ref\":\"");
            snprintf(s_t.refs[s_t.nrefs], sizeof s_t.refs[0], "%.*s", (int) strcspn(ref, "\""), ref);
            s_t.ref_object[s_t.nrefs++] = obj;
        }
        rc = s_reply(conn, 201, "{\"id\": \"P-%d\"}", obj);
    }
    else if (strcmp(url, "/unsafe/pickups") == 0)
        rc = s_reply(conn, 201, "{\"id\": \"P-%d\"}", s_create());
    else if (strncmp(url, "/echo/", 6) == 0)
        rc = s_reply(conn, 201, "{\"data\": {\"ref\": \"R-9\"}}");
    else
        rc = s_reply(conn, 404, "{}");
    pthread_mutex_unlock(&s_t.lock);
    return rc;
}

/* Keeps the /echo path as it came on the wire, then decodes as MHD would. */
static size_t s_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    if (strncmp(s, "/echo/", 6) == 0) {
        pthread_mutex_lock(&s_t.lock);
        snprintf(s_t.raw_path, sizeof s_t.raw_path, "%s", s);
        pthread_mutex_unlock(&s_t.lock);
    }
    return MHD_http_unescape(s);
}

static void s_done(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    free(*con_cls);
    *con_cls = NULL;
}

/* ---- the module's configuration and results -------------------------------------- */

static char s_url[5][256];
static char s_lookup_url[256];
static char *s_hname[] = { "X-Command-Id" };
static char *s_hvalue[] = { "{id}" };
static cv_command_kind_t s_kinds[5];
static cv_commands_conf_t s_conf;
static char s_dir[256];

typedef struct {
    uint64_t id;
    char outcome[8];
    char detail[512];
} result_t;

static result_t s_results[32];
static int s_nresults;
static int s_session_open = 1;

static int s_sender(void *arg, uint64_t id, const char *outcome, const char *detail)
{
    if (!s_session_open)
        return 1;
    if (s_nresults < 32) {
        result_t *r = &s_results[s_nresults++];
        r->id = id;
        snprintf(r->outcome, sizeof r->outcome, "%s", outcome);
        snprintf(r->detail, sizeof r->detail, "%s", detail);
    }
    return 0;
}

static int s_group_setup(void **state)
{
    pthread_mutex_init(&s_t.lock, NULL);
    s_t.daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, s_handle, NULL,
                                  MHD_OPTION_NOTIFY_COMPLETED, s_done, NULL,
                                  MHD_OPTION_UNESCAPE_CALLBACK, s_unescape, NULL,
                                  MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
    if (!s_t.daemon)
        return -1;
    s_t.port = MHD_get_daemon_info(s_t.daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
    const char *paths[] = { "idem/pickups", "unsafe/pickups", "lookup/pickups",
                            "echo/{payload.lieu.commune}?ref={key}&n={payload.volume}", "" };
    const char *names[] = { "idem", "unsafe", "lookup", "echo", "down" };
    for (int i = 0; i < 5; i++) {
        if (i == 4)     /* a port nothing listens on: the software is down */
            snprintf(s_url[i], sizeof s_url[i], "http://127.0.0.1:1/pickups");
        else
            snprintf(s_url[i], sizeof s_url[i], "http://127.0.0.1:%d/%s", s_t.port, paths[i]);
        s_kinds[i] = (cv_command_kind_t) { .name = (char *) names[i], .method = "POST", .url = s_url[i],
                                           .body = true, .reference = "id" };
    }
    s_kinds[0].idempotency_header = "Idempotency-Key";
    snprintf(s_lookup_url, sizeof s_lookup_url, "http://127.0.0.1:%d/lookup/pickups?external_ref={key}", s_t.port);
    s_kinds[2].lookup_url = s_lookup_url;
    s_kinds[2].reference_field = "external_ref";
    s_kinds[3].reference = "data.ref";
    s_kinds[3].header_names = s_hname;
    s_kinds[3].header_values = s_hvalue;
    s_kinds[3].nheaders = 1;
    s_conf = (cv_commands_conf_t) { .timeout_ms = 5000, .max_attempts = 5, .backoff_ms = 10,
                                    .backoff_max_ms = 40, .concurrency = 2, .keep_days = 7,
                                    .kinds = s_kinds, .nkinds = 5 };
    snprintf(s_dir, sizeof s_dir, "/tmp/test_commands.%ld", (long) getpid());
    return mkdir(s_dir, 0700);
}

static int s_group_teardown(void **state)
{
    MHD_stop_daemon(s_t.daemon);
    char path[300];
    snprintf(path, sizeof path, "%s/commands.journal", s_dir);
    unlink(path);
    rmdir(s_dir);
    return 0;
}

/* Each test: an empty journal, a fresh software, no results. */
static int s_setup(void **state)
{
    char path[300];
    snprintf(path, sizeof path, "%s/commands.journal", s_dir);
    unlink(path);
    pthread_mutex_lock(&s_t.lock);
    s_t.created = s_t.posts = s_t.fail_first = s_t.status = s_t.nkeys = s_t.nrefs = 0;
    pthread_mutex_unlock(&s_t.lock);
    s_nresults = 0;
    s_session_open = 1;
    s_conf.max_attempts = 5;
    return 0;
}

static cv_commands_t *s_open(void)
{
    char err[256];
    cv_commands_t *c = cv_commands_new(&s_conf, s_dir, "test", err, sizeof err);
    if (!c)
        print_error("cv_commands_new: %s\n", err);
    assert_non_null(c);
    cv_commands_set_sender(c, s_sender, NULL);
    return c;
}

/* Steps until command id is finished (or 10 s). */
static cv_command_info_t s_run(cv_commands_t *c, uint64_t id)
{
    for (int i = 0; i < 2000; i++) {
        int wait = cv_commands_step(c);
        assert_true(wait >= 0);
        cv_command_info_t info = cv_commands_info(c, id);
        if (info.state == CV_COMMAND_FINISHED || info.state == CV_COMMAND_ACKED)
            return info;
        usleep((useconds_t) (wait > 5 ? 5 : wait) * 1000 + 500);
    }
    fail_msg("command %llu not finished", (unsigned long long) id);
    return (cv_command_info_t) { 0 };
}

static const char *s_payload = "{\"usager\": \"DUPONT Jean-Pierre\", \"volume\": 2,"
                               " \"lieu\": {\"commune\": \"Saint-Étienne & Co\"}}";

static void s_receive(cv_commands_t *c, uint64_t id, const char *kind, const char *key)
{
    cv_commands_receive(c, id, kind, key, s_payload, strlen(s_payload));
}

static int s_created(void)
{
    pthread_mutex_lock(&s_t.lock);
    int n = s_t.created;
    pthread_mutex_unlock(&s_t.lock);
    return n;
}

static char *s_journal_text(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/commands.journal", s_dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static void s_write_journal(const char *text)
{
    char path[300];
    snprintf(path, sizeof path, "%s/commands.journal", s_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_template_check(void **state)
{
    char why[200];
    assert_int_equal(cv_commands_template_check("http://x/{key}/{id}?k={kind}&v={payload.a.b}&t={env:HOME}", why,
                                                sizeof why), 0);
    assert_int_equal(cv_commands_template_check("literal {{ brace", why, sizeof why), 0);
    assert_int_equal(cv_commands_template_check("http://x/{nom}", why, sizeof why), -1);
    assert_non_null(strstr(why, "unknown placeholder '{nom}'"));
    assert_int_equal(cv_commands_template_check("http://x/{key", why, sizeof why), -1);
    assert_non_null(strstr(why, "without its '}'"));
}

static void test_performed_once(void **state)
{
    cv_commands_t *c = s_open();
    s_receive(c, 1, "idem", "cvb-test-0001");
    cv_command_info_t info = s_run(c, 1);
    assert_true(info.done);
    assert_int_equal(info.http_status, 201);
    assert_int_equal(info.attempts, 1);
    assert_string_equal(info.reference, "P-1");
    assert_false(info.possible_duplicate);
    assert_int_equal(s_created(), 1);
    assert_int_equal(s_nresults, 1);
    assert_int_equal(s_results[0].id, 1);
    assert_string_equal(s_results[0].outcome, "done");
    assert_non_null(strstr(s_results[0].detail, "\"reference\":\"P-1\""));
    assert_non_null(strstr(s_results[0].detail, "\"http_status\":201"));
    assert_null(strstr(s_results[0].detail, "possible_duplicate"));
    /* the same key delivered again: the result again, nothing performed */
    s_receive(c, 1, "idem", "cvb-test-0001");
    assert_int_equal(s_nresults, 2);
    assert_string_equal(s_results[1].outcome, "done");
    for (int i = 0; i < 20; i++)
        cv_commands_step(c);
    assert_int_equal(s_created(), 1);
    assert_int_equal(cv_commands_open(c), 1);
    cv_commands_result_ack(c, 1, NULL);
    assert_int_equal(cv_commands_info(c, 1).state, CV_COMMAND_ACKED);
    assert_int_equal(cv_commands_open(c), 0);
    cv_commands_destroy(&c);
    assert_null(c);

    /* reopened: still acknowledged, nothing resent; the payload left the journal */
    c = s_open();
    assert_int_equal(cv_commands_info(c, 1).state, CV_COMMAND_ACKED);
    assert_string_equal(cv_commands_info(c, 1).reference, "P-1");
    cv_commands_session(c);
    cv_commands_step(c);
    assert_int_equal(s_nresults, 2);
    assert_null(strstr(s_journal_text(), "DUPONT"));
    cv_commands_destroy(&c);
}

static void test_retried_on_503(void **state)
{
    s_t.fail_first = 2;
    cv_commands_t *c = s_open();
    s_receive(c, 2, "idem", "cvb-test-0002");
    cv_command_info_t info = s_run(c, 2);
    assert_true(info.done);
    assert_int_equal(info.attempts, 3);
    assert_false(info.possible_duplicate);            /* a 503 performed nothing */
    assert_int_equal(s_created(), 1);
    cv_commands_destroy(&c);
}

static void test_refused_fails_at_once(void **state)
{
    s_t.status = 422;
    cv_commands_t *c = s_open();
    s_receive(c, 3, "unsafe", "cvb-test-0003");
    cv_command_info_t info = s_run(c, 3);
    assert_false(info.done);
    assert_int_equal(info.attempts, 1);
    assert_int_equal(s_nresults, 1);
    assert_string_equal(s_results[0].outcome, "failed");
    assert_non_null(strstr(s_results[0].detail, "the software refused it: HTTP 422"));
    assert_null(strstr(s_results[0].detail, "DUPONT"));
    cv_commands_destroy(&c);
}

static void test_down_gives_up(void **state)
{
    s_conf.max_attempts = 3;
    cv_commands_t *c = s_open();
    s_receive(c, 4, "down", "cvb-test-0004");
    cv_command_info_t info = s_run(c, 4);
    assert_false(info.done);
    assert_int_equal(info.attempts, 3);
    assert_false(info.uncertain);                      /* nothing was ever sent */
    assert_non_null(strstr(s_results[0].detail, "gave up after 3 attempts"));
    assert_null(strstr(s_results[0].detail, "may have been performed"));
    cv_commands_destroy(&c);
}

/* A journal as kill -9 leaves it: the request was out, its answer never read. */
static void s_killed_journal(uint64_t id, const char *kind, const char *key)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"j\":\"start\",\"id\":%llu,\"kind\":\"%s\",\"key\":\"%s\",\"payload\":%s,\"t\":1}\n"
             "{\"j\":\"try\",\"id\":%llu,\"n\":1,\"dup\":false}\n",
             (unsigned long long) id, kind, key, s_payload, (unsigned long long) id);
    s_write_journal(text);
}

static void test_restart_idempotency_key(void **state)
{
    /* the killed attempt did reach the software */
    s_t.created = 1;
    snprintf(s_t.keys[0], sizeof s_t.keys[0], "cvb-test-0005");
    s_t.key_object[0] = 1;
    s_t.nkeys = 1;
    s_killed_journal(5, "idem", "cvb-test-0005");
    cv_commands_t *c = s_open();
    cv_command_info_t info = cv_commands_info(c, 5);
    assert_int_equal(info.state, CV_COMMAND_RUNNING);
    assert_true(info.uncertain);
    info = s_run(c, 5);
    assert_true(info.done);
    assert_false(info.possible_duplicate);
    assert_int_equal(info.http_status, 200);
    assert_string_equal(info.reference, "P-1");
    assert_int_equal(s_created(), 1);                  /* performed once */
    cv_commands_destroy(&c);
}

static void test_restart_lookup(void **state)
{
    /* found: the killed attempt did create it */
    s_t.created = 1;
    snprintf(s_t.refs[0], sizeof s_t.refs[0], "cvb-test-0006");
    s_t.ref_object[0] = 1;
    s_t.nrefs = 1;
    s_killed_journal(6, "lookup", "cvb-test-0006");
    cv_commands_t *c = s_open();
    cv_command_info_t info = s_run(c, 6);
    assert_true(info.done);
    assert_false(info.possible_duplicate);
    assert_string_equal(info.reference, "P-1");
    assert_int_equal(s_created(), 1);
    assert_non_null(strstr(s_results[0].detail, "\"found_by_lookup\":true"));
    cv_commands_destroy(&c);

    /* not found: the killed attempt never got there; sent, once, not flagged */
    s_setup(state);
    s_killed_journal(7, "lookup", "cvb-test-0007");
    c = s_open();
    info = s_run(c, 7);
    assert_true(info.done);
    assert_false(info.possible_duplicate);
    assert_int_equal(s_created(), 1);
    assert_null(strstr(s_results[0].detail, "found_by_lookup"));
    assert_int_equal(s_t.nrefs, 1);
    assert_string_equal(s_t.refs[0], "cvb-test-0007");  /* our reference went into the body */
    cv_commands_destroy(&c);
}

static void test_restart_at_least_once(void **state)
{
    s_t.created = 1;
    s_killed_journal(8, "unsafe", "cvb-test-0008");
    cv_commands_t *c = s_open();
    cv_command_info_t info = s_run(c, 8);
    assert_true(info.done);
    assert_true(info.possible_duplicate);
    assert_int_equal(s_created(), 2);
    assert_non_null(strstr(s_results[0].detail, "\"possible_duplicate\":true"));
    cv_commands_destroy(&c);
    /* the flag survives a restart with the result */
    c = s_open();
    assert_true(cv_commands_info(c, 8).possible_duplicate);
    cv_commands_destroy(&c);
}

static void test_templates_filled(void **state)
{
    cv_commands_t *c = s_open();
    s_receive(c, 9, "echo", "cvb-test-0009");
    cv_command_info_t info = s_run(c, 9);
    assert_true(info.done);
    assert_string_equal(info.reference, "R-9");        /* dot path data.ref */
    assert_string_equal(s_t.raw_path, "/echo/Saint-%C3%89tienne%20%26%20Co");
    assert_string_equal(s_t.last_url, "/echo/Saint-Étienne & Co");
    assert_string_equal(s_t.last_header, "9");
    assert_non_null(strstr(s_t.last_body, "DUPONT"));  /* the payload is the body */

    /* a missing field fails the command, naming the path, not a value */
    const char *payload = "{\"usager\": \"DUPONT\"}";
    cv_commands_receive(c, 10, "echo", "cvb-test-0010", payload, strlen(payload));
    info = s_run(c, 10);
    assert_false(info.done);
    assert_non_null(strstr(s_results[1].detail, "payload field 'lieu.commune' is missing"));
    assert_null(strstr(s_results[1].detail, "DUPONT"));

    /* an unknown kind and a payload that is not an object fail too */
    cv_commands_receive(c, 11, "teleport", "cvb-test-0011", "{}", 2);
    assert_false(s_run(c, 11).done);
    assert_non_null(strstr(s_results[2].detail, "unknown command kind 'teleport'"));
    cv_commands_receive(c, 12, "idem", "cvb-test-0012", "[1]", 3);
    assert_false(s_run(c, 12).done);
    assert_non_null(strstr(s_results[3].detail, "not a JSON object"));
    cv_commands_destroy(&c);
}

static void test_result_waits_for_a_session(void **state)
{
    s_session_open = 0;
    cv_commands_t *c = s_open();
    s_receive(c, 13, "idem", "cvb-test-0013");
    assert_true(s_run(c, 13).done);
    assert_int_equal(s_nresults, 0);
    cv_commands_destroy(&c);                           /* restarted before any session */
    c = s_open();
    assert_int_equal(cv_commands_info(c, 13).state, CV_COMMAND_FINISHED);
    s_session_open = 1;
    cv_commands_session(c);
    assert_int_equal(s_nresults, 1);
    assert_int_equal(s_results[0].id, 13);
    assert_int_equal(s_created(), 1);
    cv_commands_destroy(&c);
}

static void test_torn_journal(void **state)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"j\":\"start\",\"id\":14,\"kind\":\"unsafe\",\"key\":\"cvb-test-0014\",\"payload\":{},\"t\":1}\n"
             "{\"j\":\"try\",\"id\":14,\"n\":1,\"du");
    s_write_journal(text);
    cv_commands_t *c = s_open();
    cv_command_info_t info = cv_commands_info(c, 14);
    assert_int_equal(info.state, CV_COMMAND_RUNNING);
    assert_false(info.uncertain);                      /* the torn "try" was never durable */
    info = s_run(c, 14);
    assert_true(info.done);
    assert_false(info.possible_duplicate);
    assert_null(strstr(s_journal_text(), "\"du\n"));   /* rewritten without the torn line */
    cv_commands_destroy(&c);
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_template_check, s_setup),
        cmocka_unit_test_setup(test_performed_once, s_setup),
        cmocka_unit_test_setup(test_retried_on_503, s_setup),
        cmocka_unit_test_setup(test_refused_fails_at_once, s_setup),
        cmocka_unit_test_setup(test_down_gives_up, s_setup),
        cmocka_unit_test_setup(test_restart_idempotency_key, s_setup),
        cmocka_unit_test_setup(test_restart_lookup, s_setup),
        cmocka_unit_test_setup(test_restart_at_least_once, s_setup),
        cmocka_unit_test_setup(test_templates_filled, s_setup),
        cmocka_unit_test_setup(test_result_waits_for_a_session, s_setup),
        cmocka_unit_test_setup(test_torn_journal, s_setup),
    };
    return cv_test_end(cv_test_group(tests, s_group_setup, s_group_teardown));
}
