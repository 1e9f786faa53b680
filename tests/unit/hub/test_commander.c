/*  test_commander — hub/commands/cv_commander.c and schemas/sql/003_commands.sql against
    a real PostgreSQL.

    Two halves: the writer side (RESULT items written by the store in a
    batch: the commands row, the command_result event, duplicates, unknown
    commands) and the delivery thread (pending commands handed over when
    their source connects, again on a new session and after the result
    timeout, never for a source without a session). The server comes from
    the PG* variables (tests/run.sh); the group uses its own database
    civibus_test_commander_<pid>, dropped at the end. Run from the
    repository root (migrations are read from schemas/sql). */
#include "commands/cv_commander.h"

#include "cv_hash.h"

#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cv_test.h"

#include "pg_fixture.h"

/* ---- SQL helpers -------------------------------------------------------------- */

static char *s_value(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *s_value(const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGresult *res = PQexec(pgf_db, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
        print_error("query failed: %s\n%s", sql, PQerrorMessage(pgf_db));
        PQclear(res);
        fail();
    }
    char *out = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? strdup(PQgetvalue(res, 0, 0)) : NULL;
    PQclear(res);
    return out;
}

static long long s_number(const char *sql_fmt, long long arg)
{
    char *v = s_value(sql_fmt, arg);
    long long n = v ? atoll(v) : -1;
    free(v);
    return n;
}

static void s_expect(const char *expected, const char *sql_fmt, long long arg)
{
    char *v = s_value(sql_fmt, arg);
    if (!expected)
        assert_null(v);
    else {
        if (!v)
            fail_msg("no value for: %s", sql_fmt);
        assert_string_equal(v, expected);
    }
    free(v);
}

static int s_group_setup(void **state)
{
    return pgf_setup("commander");
}

static int s_group_teardown(void **state)
{
    return pgf_teardown();
}

/* ---- batches -------------------------------------------------------------------- */

typedef struct {
    cv_store_item_t items[8];
    json_t *owned[8];              /* events and records the test made */
    char *raws[8];
    size_t n;
} tbatch_t;

/* A request of source `src`, record `rec`, with a citizen: its requests.id. */
static long long s_request(cv_store_t *store, const char *src, const char *rec, const char *status)
{
    tbatch_t b = { 0 };
    json_t *e = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}}",
                          "schema_version", 1, "source", src, "event_id", rec, "kind", "encombrants",
                          "source_record_id", rec, "service", "dechets", "category", "encombrants",
                          "channel", "guichet", "status", status, "source_status", "NOUVELLE",
                          "occurred_at", "2024-03-04T09:00:00Z",
                          "citizen", "source_citizen_id", "USG-42", "family_name", "DUPONT");
    cv_store_item_t *it = &b.items[0];
    it->kind = CV_ITEM_EVENT;
    snprintf(it->source, sizeof it->source, "%s", src);
    it->event = it->record = e;
    b.raws[0] = json_dumps(e, JSON_COMPACT);
    it->raw = b.raws[0];
    it->raw_len = strlen(b.raws[0]);
    cv_hash_json(e, it->content_hash);
    assert_int_equal(cv_store_write_batch(store, b.items, 1), 0);
    assert_int_equal(it->outcome, CV_OUT_STORED);
    long long id = it->request_id;
    json_decref(e);
    free(b.raws[0]);
    return id;
}

static long long s_command(const char *src, const char *kind, long long request_id)
{
    char req[24];
    snprintf(req, sizeof req, "%lld", request_id);
    char *v = s_value("INSERT INTO commands (source, kind, request_id, payload) VALUES ('%s', '%s', %s, "
                      "'{\"usager\": \"DUPONT\", \"volume_m3\": 2}') RETURNING id",
                      src, kind, request_id > 0 ? req : "NULL");
    long long id = atoll(v);
    free(v);
    return id;
}

/* Adds a RESULT item as the ingest loop builds it. */
static cv_store_item_t *s_add_result(tbatch_t *b, const char *src, long long id, const char *outcome,
                                     const char *detail)
{
    cv_store_item_t *it = &b->items[b->n];
    memset(it, 0, sizeof *it);
    it->kind = CV_ITEM_RESULT;
    snprintf(it->source, sizeof it->source, "%s", src);
    json_t *d = json_loads(detail, 0, NULL);
    assert_non_null(d);
    it->record = json_pack("{s:I, s:s, s:o}", "command", (json_int_t) id, "outcome", outcome, "detail", d);
    b->owned[b->n] = it->record;
    b->raws[b->n] = strdup(detail);
    it->raw = b->raws[b->n];
    it->raw_len = strlen(detail);
    cv_hash_json(it->record, it->content_hash);
    b->n++;
    return it;
}

static void s_free(tbatch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        if (b->items[i].kind == CV_ITEM_RESULT)
            json_decref(b->items[i].event);      /* set by the store, owned by the item */
        json_decref(b->owned[i]);
        free(b->raws[i]);
    }
    memset(b, 0, sizeof *b);
}

/* ---- the writer side ------------------------------------------------------------- */

static void test_result_recorded(void **state)
{
    cv_store_t *store = pgf_store();
    long long req = s_request(store, "dechets", "ENC-1", "in_progress");
    long long cmd = s_command("dechets", "pickup", req);
    long long status_event = s_number("SELECT status_event_id FROM requests WHERE id = %lld", req);

    tbatch_t b = { 0 };
    cv_store_item_t *it = s_add_result(&b, "dechets", cmd, "done",
                                       "{\"http_status\": 201, \"reference\": \"P-1\", \"attempts\": 2}");
    assert_int_equal(cv_store_write_batch(store, b.items, b.n), 0);
    assert_int_equal(it->outcome, CV_OUT_STORED);
    assert_true(it->event_seq > status_event);
    assert_int_equal(it->request_id, req);
    char *code = s_value("SELECT tracking_code FROM requests WHERE id = %lld", req);
    assert_string_equal(it->tracking_code, code);
    free(code);
    /* the published view: the event, no personal data */
    assert_non_null(it->event);
    assert_string_equal(json_string_value(json_object_get(it->event, "kind")), "command_result");
    assert_string_equal(json_string_value(json_object_get(it->event, "status")), "in_progress");
    char *text = json_dumps(it->event, 0);
    assert_null(strstr(text, "DUPONT"));
    free(text);

    /* the timeline: one event, the request's status, its labels and citizen */
    char ev[32];
    snprintf(ev, sizeof ev, "%lld", (long long) it->event_seq);
    s_expect("command_result|in_progress|command_done|dechets|encombrants|guichet",
             "SELECT kind || '|' || status || '|' || source_status || '|' || service || '|' || category "
             "|| '|' || channel FROM events WHERE id = %lld", it->event_seq);
    char expect_id[64];
    snprintf(expect_id, sizeof expect_id, "command:%lld:done|command:%lld", cmd, cmd);
    s_expect(expect_id, "SELECT event_id || '|' || source_record_id FROM events WHERE id = %lld", it->event_seq);
    assert_int_equal(s_number("SELECT count(*) FROM events e JOIN requests r ON r.citizen_id = e.citizen_id "
                              "WHERE e.id = %lld", it->event_seq), 1);
    /* the command row; the request's projection untouched */
    s_expect("done|false|P-1|201", "SELECT status || '|' || possible_duplicate || '|' || (result->>'reference') "
             "|| '|' || (result->>'http_status') FROM commands WHERE id = %lld", cmd);
    assert_int_equal(s_number("SELECT result_event_id FROM commands WHERE id = %lld", cmd), it->event_seq);
    assert_int_equal(s_number("SELECT count(*) FROM commands WHERE id = %lld AND done_at IS NOT NULL "
                              "AND error IS NULL", cmd), 1);
    assert_int_equal(s_number("SELECT status_event_id FROM requests WHERE id = %lld", req), status_event);
    int64_t seq = it->event_seq;
    s_free(&b);

    /* the same result again (a lost RESULT_ACK): a duplicate, nothing new */
    it = s_add_result(&b, "dechets", cmd, "done", "{\"http_status\": 200, \"reference\": \"P-1\"}");
    assert_int_equal(cv_store_write_batch(store, b.items, b.n), 0);
    assert_int_equal(it->outcome, CV_OUT_DUPLICATE);
    assert_int_equal(it->event_seq, seq);
    assert_null(it->event);
    assert_int_equal(s_number("SELECT count(*) FROM events WHERE event_id LIKE 'command:%lld:%%'", cmd), 1);
    s_expect("201", "SELECT result->>'http_status' FROM commands WHERE id = %lld", cmd);
    s_free(&b);
    cv_store_destroy(&store);
}

static void test_failed_flagged_and_ordered(void **state)
{
    cv_store_t *store = pgf_store();
    long long req = s_request(store, "urbanisme", "PC-1", "received");
    long long cmd = s_command("urbanisme", "notify", req);
    tbatch_t b = { 0 };
    /* an event and a result in one batch: the result's event comes after */
    json_t *e = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                          "schema_version", 1, "source", "urbanisme", "event_id", "PC-2", "kind", "permis",
                          "source_record_id", "PC-2", "service", "urbanisme", "category", "permis",
                          "channel", "web", "status", "received", "source_status", "DEPOT",
                          "occurred_at", "2024-03-05T09:00:00Z");
    cv_store_item_t *ev = &b.items[b.n];
    ev->kind = CV_ITEM_EVENT;
    snprintf(ev->source, sizeof ev->source, "urbanisme");
    ev->event = ev->record = e;
    b.owned[b.n] = e;
    b.raws[b.n] = json_dumps(e, JSON_COMPACT);
    ev->raw = b.raws[b.n];
    ev->raw_len = strlen(ev->raw);
    cv_hash_json(e, ev->content_hash);
    b.n++;
    cv_store_item_t *it = s_add_result(&b, "urbanisme", cmd, "failed",
                                       "{\"http_status\": 422, \"attempts\": 3, \"possible_duplicate\": true,"
                                       " \"error\": \"the software refused it: HTTP 422\"}");
    assert_int_equal(cv_store_write_batch(store, b.items, b.n), 0);
    assert_int_equal(ev->outcome, CV_OUT_STORED);
    assert_int_equal(it->outcome, CV_OUT_STORED);
    assert_true(it->event_seq > ev->event_seq);
    s_expect("failed|true|the software refused it: HTTP 422|", "SELECT status || '|' || possible_duplicate || '|' "
             "|| error || '|' || COALESCE(result->>'error', '') FROM commands WHERE id = %lld", cmd);
    s_expect("command_failed", "SELECT source_status FROM events WHERE id = %lld", it->event_seq);
    s_free(&b);
    cv_store_destroy(&store);
}

static void test_unknown_and_requestless(void **state)
{
    cv_store_t *store = pgf_store();
    long long other = s_command("etat-civil", "acte", 0);        /* another source's command */
    long long loose = s_command("voirie", "ticket", 0);          /* no request */
    tbatch_t b = { 0 };
    cv_store_item_t *a = s_add_result(&b, "voirie", 999999, "done", "{\"attempts\": 1}");
    cv_store_item_t *o = s_add_result(&b, "voirie", other, "done", "{\"attempts\": 2}");
    cv_store_item_t *l = s_add_result(&b, "voirie", loose, "done", "{\"attempts\": 1, \"reference\": \"T-5\"}");
    assert_int_equal(cv_store_write_batch(store, b.items, b.n), 0);
    assert_int_equal(a->outcome, CV_OUT_DEAD_LETTERED);
    assert_string_equal(a->reason, "unknown_command");
    assert_int_equal(o->outcome, CV_OUT_DEAD_LETTERED);
    assert_int_equal(l->outcome, CV_OUT_STORED);
    assert_int_equal(l->event_seq, 0);
    assert_null(l->event);
    s_expect("pending", "SELECT status FROM commands WHERE id = %lld", other);   /* untouched */
    s_expect("done|T-5", "SELECT status || '|' || (result->>'reference') FROM commands WHERE id = %lld", loose);
    assert_int_equal(s_number("SELECT count(*) FROM events WHERE event_id LIKE 'command:%lld:%%'", loose), 0);
    assert_int_equal(s_number("SELECT count(*) FROM dead_letters WHERE source = 'voirie' AND reason = "
                              "'unknown_command' AND %lld > 0", 1), 2);
    s_free(&b);
    cv_store_destroy(&store);
}

static void test_outbox_constraints(void **state)
{
    cv_store_t *store = pgf_store();
    cv_store_destroy(&store);
    long long id = s_command("dechets", "pickup", 0);
    char *key = s_value("SELECT idempotency_key FROM commands WHERE id = %lld", id);
    assert_true(strncmp(key, "cvb-", 4) == 0 && strlen(key) == 36);
    free(key);
    /* the payload may be purged only once the command is final */
    PGresult *res = PQexec(pgf_db, "UPDATE commands SET payload = NULL WHERE status = 'pending'");
    assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
    assert_string_equal(PQresultErrorField(res, PG_DIAG_SQLSTATE), "23514");
    PQclear(res);
    res = PQexec(pgf_db, "INSERT INTO commands (source, kind, payload) VALUES ('x', 'bad kind!', '{}')");
    assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
    PQclear(res);
}

/* ---- the delivery thread ------------------------------------------------------------ */

static cv_hub_config_t *s_config(void)
{
    cv_hub_config_t *c = calloc(1, sizeof *c);
    c->conninfo = pgf_conninfo;
    c->command_result_timeout_ms = 1500;
    c->nsources = 2;
    c->sources = calloc(2, sizeof *c->sources);
    c->sources[0].name = "livraison";
    c->sources[1].name = "absente";
    return c;
}

/* The next command handed over within ms, or id 0. */
static cv_command_t s_next(cv_commander_t *commander, int ms)
{
    cv_command_t c = { 0 };
    zpoller_t *poller = zpoller_new(cv_commander_sock(commander), NULL);
    if (zpoller_wait(poller, ms))
        assert_int_equal(cv_commander_recv(commander, &c), 0);
    zpoller_destroy(&poller);
    return c;
}

static void test_delivery(void **state)
{
    cv_store_t *store = pgf_store();                 /* migrations */
    cv_store_destroy(&store);
    cv_hub_config_t *config = s_config();
    cv_commander_t *commander = cv_commander_new(config);
    assert_non_null(commander);
    long long first = s_command("livraison", "pickup", 0);
    long long away = s_command("absente", "pickup", 0);

    /* nothing while no session is open */
    cv_command_t c = s_next(commander, 1500);
    assert_int_equal(c.id, 0);
    s_expect("pending|0", "SELECT status || '|' || deliveries FROM commands WHERE id = %lld", first);

    /* a session: handed over, marked sent */
    cv_commander_session(commander, 0, true);
    c = s_next(commander, 3000);
    assert_int_equal(c.id, first);
    assert_int_equal(c.source, 0);
    assert_string_equal(c.kind, "pickup");
    assert_non_null(strstr(c.payload, "volume_m3"));
    char *key = s_value("SELECT idempotency_key FROM commands WHERE id = %lld", first);
    assert_string_equal(c.key, key);
    free(key);
    cv_commander_command_clear(&c);
    s_expect("sent|1", "SELECT status || '|' || deliveries FROM commands WHERE id = %lld", first);

    /* a new command while connected: soon (notification or the next tick) */
    long long second = s_command("livraison", "pickup", 0);
    c = s_next(commander, 3000);
    assert_int_equal(c.id, second);
    cv_commander_command_clear(&c);

    /* no result within the timeout: both again, once each */
    c = s_next(commander, 4000);
    assert_int_equal(c.id, first);
    cv_commander_command_clear(&c);
    c = s_next(commander, 2000);
    assert_int_equal(c.id, second);
    cv_commander_command_clear(&c);
    s_expect("sent|2", "SELECT status || '|' || deliveries FROM commands WHERE id = %lld", first);

    /* a new session: every sent command again, at once; a finished one not */
    s_value("UPDATE commands SET status = 'done', done_at = now() WHERE id = %lld", second);
    cv_commander_session(commander, 0, true);
    c = s_next(commander, 900);
    assert_int_equal(c.id, first);
    cv_commander_command_clear(&c);
    s_expect("3", "SELECT deliveries FROM commands WHERE id = %lld", first);

    /* closed: nothing more, and the other source's command never left */
    cv_commander_session(commander, 0, false);
    s_command("livraison", "pickup", 0);
    c = s_next(commander, 2500);
    assert_int_equal(c.id, 0);
    s_expect("pending|0", "SELECT status || '|' || deliveries FROM commands WHERE id = %lld", away);

    cv_commander_destroy(&commander);
    assert_null(commander);
    free(config->sources);
    free(config);
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_result_recorded),
        cmocka_unit_test(test_failed_flagged_and_ordered),
        cmocka_unit_test(test_unknown_and_requestless),
        cmocka_unit_test(test_outbox_constraints),
        cmocka_unit_test(test_delivery),
    };
    return cv_test_end(cv_test_group(tests, s_group_setup, s_group_teardown));
}
