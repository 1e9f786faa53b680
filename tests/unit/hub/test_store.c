/*  test_store — hub/store/cv_store.c and the SQL migrations, against a real PostgreSQL.

    The server comes from the standard PG* variables (tests/run.sh starts a
    throwaway cluster with deploy/pgctl.sh and exports them). The group
    creates a fresh database civibus_test_store_<pid>, runs every test in it
    (each test uses its own source names, so tests do not see each other's
    rows) and drops it at the end. Run from the repository root (the
    migrations are read from schemas/sql).

    CIVIBUS_STORE_BENCH=N makes the throughput test write N batches of 1,000
    events instead of 10. */
#include "store/cv_store.h"

#include "cv_hash.h"

#include <libpq-fe.h>
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

#include "pg_fixture.h"

#define CODE_RE "^[ACDEFHJKLMNPRTUVWXY34679]{11}$"   /* 10 drawn + the check (023) */
#define DRAW_RE "^[ACDEFHJKLMNPRTUVWXY34679]{10}$"

static char pgf_dbname[64];
static char pgf_conninfo[128];
static PGconn *pgf_db;              /* Runs a statement that must fail; returns its SQLSTATE (static buffer). */
static const char *s_must_fail(const char *sql)
{
    static char state[6];
    PGresult *res = PQexec(pgf_db, sql);
    assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
    snprintf(state, sizeof state, "%s", PQresultErrorField(res, PG_DIAG_SQLSTATE));
    PQclear(res);
    return state;
}

/* ---- batches ------------------------------------------------------------- */

typedef struct {
    cv_store_item_t *items;
    json_t **events, **records;
    char **raws;
    size_t n, cap;
} tbatch_t;

static cv_store_item_t *s_push(tbatch_t *b)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->items = realloc(b->items, b->cap * sizeof *b->items);
        b->events = realloc(b->events, b->cap * sizeof *b->events);
        b->records = realloc(b->records, b->cap * sizeof *b->records);
        b->raws = realloc(b->raws, b->cap * sizeof *b->raws);
        assert_non_null(b->items);
        assert_non_null(b->events);
        assert_non_null(b->records);
        assert_non_null(b->raws);
    }
    b->events[b->n] = b->records[b->n] = NULL;
    b->raws[b->n] = NULL;
    cv_store_item_t *it = &b->items[b->n++];
    memset(it, 0, sizeof *it);
    return it;
}

static void s_batch_free(tbatch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        json_decref(b->events[i]);
        json_decref(b->records[i]);
        free(b->raws[i]);
    }
    free(b->items);
    free(b->events);
    free(b->records);
    free(b->raws);
    memset(b, 0, sizeof *b);
}

/* A canonical event; the raw record used with it is a copy of the event, so
   the same event always has the same content hash. */
static json_t *s_ev(const char *source, const char *event_id, const char *record_id,
                    const char *status, const char *occurred_at)
{
    json_t *e = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:n, s:s, s:{s:s}}",
                          "schema_version", 1, "source", source, "event_id", event_id,
                          "kind", "signalement", "source_record_id", record_id,
                          "request_ref", record_id, "service", "voirie", "category", "nid_de_poule",
                          "channel", "web", "status", status, "source_status", status,
                          "source_channel", "WEB", "occurred_at", occurred_at, "due_at",
                          "summary", "Trou dangereux devant le 3 rue des Lilas",
                          "extra", "agent", "AG-7");
    assert_non_null(e);
    return e;
}

static void s_set_citizen(json_t *event, const char *source_citizen_id, const char *family_name)
{
    json_t *c = json_pack("{s:s, s:s, s:s, s:s}", "family_name", family_name,
                          "given_names", "Jeanne", "email", "jeanne.secret@example.fr",
                          "phone", "06 99 88 77 66");
    if (source_citizen_id)
        json_object_set_new(c, "source_citizen_id", json_string(source_citizen_id));
    json_object_set_new(event, "citizen", c);
}

/* Adds an EVENT item (takes event). */
static size_t s_add_event(tbatch_t *b, const char *source, json_t *event)
{
    cv_store_item_t *it = s_push(b);
    size_t i = b->n - 1;
    json_t *record = json_deep_copy(event);
    b->events[i] = event;
    b->records[i] = record;
    b->raws[i] = json_dumps(record, JSON_COMPACT | JSON_SORT_KEYS);
    it->kind = CV_ITEM_EVENT;
    snprintf(it->source, sizeof it->source, "%s", source);
    it->event = event;
    it->record = record;
    it->raw = b->raws[i];
    it->raw_len = strlen(b->raws[i]);
    assert_int_equal(cv_hash_json(record, it->content_hash), 0);
    return i;
}

static size_t s_add_dead(tbatch_t *b, const char *source, const char *reason,
                         const char *raw, size_t len)
{
    cv_store_item_t *it = s_push(b);
    size_t i = b->n - 1;
    b->raws[i] = malloc(len + 1);
    memcpy(b->raws[i], raw, len);
    b->raws[i][len] = '\0';
    it->kind = CV_ITEM_DEAD;
    snprintf(it->source, sizeof it->source, "%s", source);
    snprintf(it->reason, sizeof it->reason, "%s", reason);
    snprintf(it->detail, sizeof it->detail, "test detail for %s", reason);
    it->raw = b->raws[i];
    it->raw_len = len;
    cv_hash_bytes(raw, len, it->content_hash);
    return i;
}

static void s_write(cv_store_t *store, tbatch_t *b)
{
    int rc = cv_store_write_batch(store, b->items, b->n);
    if (rc != 0)
        print_error("write_batch: %s\n", cv_store_error(store));
    assert_int_equal(rc, 0);
}

static int s_group_setup(void **state)
{
    return pgf_setup("store");
}

static int s_group_teardown(void **state)
{
    return pgf_teardown();
}

/* ---- tests ---------------------------------------------------------------- */

static void test_migrations_applied_once(void **state)
{
    cv_store_t *store = pgf_store();
    cv_store_destroy(&store);
    assert_null(store);
    long long versions = pgf_number("SELECT count(*) FROM schema_migrations", NULL, NULL);
    assert_true(versions >= 2);
    pgf_expect("1", "SELECT count(*) FROM schema_migrations WHERE version = 1 AND name = '001_init.sql'",
                   NULL, NULL);
    char *applied = pgf_value("SELECT string_agg(version || '@' || applied_at, ',' ORDER BY version) "
                            "FROM schema_migrations", NULL, NULL);

    store = pgf_store();                     /* second start: nothing to apply */
    cv_store_destroy(&store);
    assert_int_equal(pgf_number("SELECT count(*) FROM schema_migrations", NULL, NULL), versions);
    pgf_expect(applied, "SELECT string_agg(version || '@' || applied_at, ',' ORDER BY version) "
                            "FROM schema_migrations", NULL, NULL);
    free(applied);
    pgf_expect("events", "SELECT to_regclass('events')::text", NULL, NULL);
}

static void s_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_migration_errors(void **state)
{
    cv_store_t *store = pgf_store();        /* the real migrations first: 001 is applied */
    cv_store_destroy(&store);
    char dir[] = "/tmp/cv_test_migr_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], err[512];

    /* a bad statement is reported as file:line and nothing is recorded */
    snprintf(path, sizeof path, "%s/900_bad.sql", dir);
    s_write_file(path, "CREATE TABLE t900 (\n    id int,\n    oops oops oops\n);\n");
    assert_null(cv_store_new(pgf_conninfo, dir, err, sizeof err));
    char where[300];
    snprintf(where, sizeof where, "%s:3: SQLSTATE 42601", path);
    assert_non_null(strstr(err, where));
    assert_int_equal(pgf_number("SELECT count(*) FROM schema_migrations WHERE version = 900", NULL, NULL), 0);
    pgf_expect(NULL, "SELECT to_regclass('t900')::text", NULL, NULL);
    unlink(path);

    /* an applied migration whose file changed is refused */
    snprintf(path, sizeof path, "%s/001_init.sql", dir);
    s_write_file(path, "SELECT 1;\n");
    assert_null(cv_store_new(pgf_conninfo, dir, err, sizeof err));
    assert_non_null(strstr(err, "001_init.sql: version 1 was applied with another content"));
    unlink(path);

    /* an empty directory is refused */
    assert_null(cv_store_new(pgf_conninfo, dir, err, sizeof err));
    assert_non_null(strstr(err, "no migration files"));
    rmdir(dir);
}

static void test_refuses_async_commit(void **state)
{
    char conninfo[256], err[512] = "";
    snprintf(conninfo, sizeof conninfo, "%s options='-c synchronous_commit=off'", pgf_conninfo);
    assert_null(cv_store_new(conninfo, PGF_SQL_DIR, err, sizeof err));
    assert_non_null(strstr(err, "synchronous_commit=off"));

    snprintf(conninfo, sizeof conninfo, "%s options='-c synchronous_commit=local'", pgf_conninfo);
    cv_store_t *store = cv_store_new(conninfo, PGF_SQL_DIR, err, sizeof err);
    assert_non_null(store);                 /* waits for the local flush: accepted */
    cv_store_destroy(&store);

    assert_null(cv_store_new("dbname=civibus_no_such_db", PGF_SQL_DIR, err, sizeof err));
    assert_non_null(strstr(err, "cannot connect"));
}

static void test_store_duplicate_id_reused(void **state)
{
    cv_store_t *store = pgf_store();
    tbatch_t b = { 0 };
    s_add_event(&b, "t_dup", s_ev("t_dup", "E1", "R1", "received", "2024-03-04T09:00:00Z"));
    s_add_event(&b, "t_dup", s_ev("t_dup", "E2", "R2", "received", "2024-03-04T09:05:00Z"));
    s_write(store, &b);
    assert_int_equal(b.items[0].outcome, CV_OUT_STORED);
    assert_int_equal(b.items[1].outcome, CV_OUT_STORED);
    assert_true(b.items[0].event_seq > 0);
    assert_true(b.items[1].event_seq > b.items[0].event_seq);
    assert_true(b.items[0].request_id > 0);
    assert_true(b.items[1].request_id != b.items[0].request_id);
    assert_int_equal(strlen(b.items[0].tracking_code), 11);
    cv_store_item_t first = b.items[0];
    s_batch_free(&b);

    /* the same event again: DUPLICATE, pointing at the stored row */
    s_add_event(&b, "t_dup", s_ev("t_dup", "E1", "R1", "received", "2024-03-04T09:00:00Z"));
    s_write(store, &b);
    assert_int_equal(b.items[0].outcome, CV_OUT_DUPLICATE);
    assert_int_equal(b.items[0].event_seq, first.event_seq);
    assert_int_equal(b.items[0].request_id, first.request_id);
    assert_string_equal(b.items[0].tracking_code, first.tracking_code);
    s_batch_free(&b);

    /* the same id with another content: ID_REUSED and a dead letter */
    json_t *other = s_ev("t_dup", "E1", "R1", "received", "2024-03-04T09:00:00Z");
    json_object_set_new(other, "summary", json_string("un autre contenu"));
    size_t i = s_add_event(&b, "t_dup", other);
    s_write(store, &b);
    assert_int_equal(b.items[i].outcome, CV_OUT_ID_REUSED);
    assert_string_equal(b.items[i].reason, "id_reused");
    assert_int_equal(b.items[i].event_seq, 0);
    char bytes[24];
    snprintf(bytes, sizeof bytes, "%zu", b.items[i].raw_len);
    char hash[CV_HASH_HEX_LEN + 1];
    cv_hash_bytes(b.items[i].raw, b.items[i].raw_len, hash);
    pgf_expect("1", "SELECT count(*) FROM dead_letters WHERE source = 't_dup' AND reason = 'id_reused' "
                   "AND event_id = 'E1' AND payload_bytes = $1::bigint AND payload_hash = $2",
                   bytes, hash);
    pgf_expect(b.raws[i], "SELECT convert_from(payload, 'UTF8') FROM dead_letters "
                   "WHERE source = 't_dup' AND reason = 'id_reused'", NULL, NULL);
    assert_int_equal(pgf_number("SELECT count(*) FROM events WHERE source = 't_dup'", NULL, NULL), 2);

    /* sent again (say, after a lost ACK): still ID_REUSED, one dead letter */
    s_write(store, &b);
    assert_int_equal(b.items[i].outcome, CV_OUT_ID_REUSED);
    assert_int_equal(pgf_number("SELECT count(*) FROM dead_letters WHERE source = 't_dup'", NULL, NULL), 1);
    s_batch_free(&b);
    cv_store_destroy(&store);
}

static void test_duplicate_inside_batch(void **state)
{
    cv_store_t *store = pgf_store();
    tbatch_t b = { 0 };
    s_add_event(&b, "t_inb", s_ev("t_inb", "E1", "R1", "received", "2024-03-04T09:00:00Z"));
    s_add_event(&b, "t_inb", s_ev("t_inb", "E2", "R1", "in_progress", "2024-03-04T10:00:00Z"));
    s_add_event(&b, "t_inb", s_ev("t_inb", "E1", "R1", "received", "2024-03-04T09:00:00Z"));
    json_t *other = s_ev("t_inb", "E1", "R1", "received", "2024-03-04T09:00:00Z");
    json_object_set_new(other, "summary", json_string("autre"));
    s_add_event(&b, "t_inb", other);
    /* same event id in another source is another event */
    s_add_event(&b, "t_inb2", s_ev("t_inb2", "E1", "R1", "received", "2024-03-04T09:00:00Z"));
    s_write(store, &b);

    assert_int_equal(b.items[0].outcome, CV_OUT_STORED);
    assert_int_equal(b.items[1].outcome, CV_OUT_STORED);
    assert_int_equal(b.items[2].outcome, CV_OUT_DUPLICATE);
    assert_int_equal(b.items[2].event_seq, b.items[0].event_seq);
    assert_int_equal(b.items[2].request_id, b.items[0].request_id);
    assert_string_equal(b.items[2].tracking_code, b.items[0].tracking_code);
    assert_int_equal(b.items[3].outcome, CV_OUT_ID_REUSED);
    assert_int_equal(b.items[4].outcome, CV_OUT_STORED);
    assert_true(b.items[4].event_seq > b.items[1].event_seq);
    assert_int_equal(b.items[1].request_id, b.items[0].request_id);   /* same record R1 */
    assert_true(b.items[4].request_id != b.items[0].request_id);
    assert_int_equal(pgf_number("SELECT count(*) FROM events WHERE source = 't_inb'", NULL, NULL), 2);
    assert_int_equal(pgf_number("SELECT count(*) FROM dead_letters WHERE source = 't_inb' "
                              "AND reason = 'id_reused'", NULL, NULL), 1);
    s_batch_free(&b);
    cv_store_destroy(&store);
}

static void test_dead_items(void **state)
{
    cv_store_t *store = pgf_store();
    tbatch_t b = { 0 };
    char big[5000];
    memset(big, 'x', sizeof big);
    big[0] = '{';
    s_add_dead(&b, "t_dead", "invalid_json", "{not json", 9);
    s_add_event(&b, "t_dead", s_ev("t_dead", "E1", "R1", "received", "2024-03-04T09:00:00Z"));
    s_add_dead(&b, "t_dead", "too_large", big, sizeof big);
    s_write(store, &b);
    assert_int_equal(b.items[0].outcome, CV_OUT_DEAD_LETTERED);
    assert_int_equal(b.items[1].outcome, CV_OUT_STORED);
    assert_int_equal(b.items[2].outcome, CV_OUT_DEAD_LETTERED);
    assert_string_equal(b.items[0].reason, "invalid_json");

    pgf_expect("{not json|9|test detail for invalid_json",
                   "SELECT convert_from(payload, 'UTF8') || '|' || payload_bytes || '|' || detail "
                   "FROM dead_letters WHERE source = 't_dead' AND reason = 'invalid_json' "
                   "AND event_id IS NULL", NULL, NULL);
    char hash[CV_HASH_HEX_LEN + 1];
    cv_hash_bytes(big, sizeof big, hash);
    pgf_expect("1024|5000", "SELECT length(payload) || '|' || payload_bytes FROM dead_letters "
                   "WHERE source = 't_dead' AND reason = 'too_large' AND payload_hash = $1", hash, NULL);

    /* the same bad record re-sent: NACKed again, kept once */
    s_write(store, &b);
    assert_int_equal(b.items[0].outcome, CV_OUT_DEAD_LETTERED);
    assert_int_equal(b.items[1].outcome, CV_OUT_DUPLICATE);
    assert_int_equal(pgf_number("SELECT count(*) FROM dead_letters WHERE source = 't_dead'", NULL, NULL), 2);
    s_batch_free(&b);

    /* a batch of dead items only */
    s_add_dead(&b, "t_dead", "bad_date", "{\"d\":\"31/02\"}", 13);
    s_write(store, &b);
    assert_int_equal(b.items[0].outcome, CV_OUT_DEAD_LETTERED);
    assert_int_equal(pgf_number("SELECT count(*) FROM dead_letters WHERE source = 't_dead'", NULL, NULL), 3);
    s_batch_free(&b);
    cv_store_destroy(&store);
}

static void test_data_error_isolated(void **state)
{
    cv_store_t *store = pgf_store();
    tbatch_t b = { 0 };
    /* one already stored, to be sent again inside the failing batch */
    s_add_event(&b, "t_data", s_ev("t_data", "E0", "R0", "received", "2024-03-01T09:00:00Z"));
    s_write(store, &b);
    int64_t e0 = b.items[0].event_seq;
    s_batch_free(&b);

    char id[16], rec[16];
    for (int k = 0; k < 9; k++) {
        snprintf(id, sizeof id, "E%d", k + 1);
        snprintf(rec, sizeof rec, "R%d", k + 1);
        const char *at = k == 2 ? "2024-02-30T10:00:00Z" : "2024-03-04T09:00:00Z"; /* no 30 Feb */
        json_t *e = s_ev("t_data", id, rec, k == 5 ? "en_cours" : "received", at);
        if (k == 7)       /* a NUL byte in a text field */
            json_object_set_new(e, "summary", json_stringn("avant\0apres", 11));
        if (k == 8)       /* a NUL in a JSON field (\u0000 cannot become jsonb) */
            json_object_set_new(e, "extra", json_pack("{s:s%}", "note", "a\0b", (size_t) 3));
        s_add_event(&b, "t_data", e);
    }
    s_add_event(&b, "t_data", s_ev("t_data", "E0", "R0", "received", "2024-03-01T09:00:00Z"));
    s_add_dead(&b, "t_data", "invalid_json", "[", 1);
    s_write(store, &b);

    for (size_t i = 0; i < 9; i++) {
        cv_store_item_t *it = &b.items[i];
        if (i == 2 || i == 5 || i == 7 || i == 8) {
            static const char *expected[9] = { [2] = "SQLSTATE 22008", [5] = "SQLSTATE 23514",
                                               [7] = "SQLSTATE 22021", [8] = "SQLSTATE 22P05" };
            assert_int_equal(it->outcome, CV_OUT_DEAD_LETTERED);
            assert_string_equal(it->reason, "data_error");
            assert_string_equal(it->detail, expected[i]);
            assert_int_equal(it->event_seq, 0);
        } else {
            assert_int_equal(it->outcome, CV_OUT_STORED);
            assert_true(it->event_seq > e0);
        }
    }
    assert_int_equal(b.items[9].outcome, CV_OUT_DUPLICATE);
    assert_int_equal(b.items[9].event_seq, e0);
    assert_int_equal(b.items[10].outcome, CV_OUT_DEAD_LETTERED);
    /* stored ones keep batch order */
    assert_true(b.items[1].event_seq > b.items[0].event_seq);
    assert_true(b.items[6].event_seq > b.items[4].event_seq);

    assert_int_equal(pgf_number("SELECT count(*) FROM events WHERE source = 't_data'", NULL, NULL), 6);
    assert_int_equal(pgf_number("SELECT count(*) FROM events WHERE source = 't_data' "
                              "AND event_id IN ('E3', 'E6', 'E8', 'E9')", NULL, NULL), 0);
    pgf_expect("E3:SQLSTATE 22008,E6:SQLSTATE 23514,E8:SQLSTATE 22021,E9:SQLSTATE 22P05",
                   "SELECT string_agg(event_id || ':' || detail, ',' ORDER BY event_id) "
                   "FROM dead_letters WHERE source = 't_data' AND reason = 'data_error'", NULL, NULL);
    /* no refused value in what goes to logs */
    assert_null(strstr(cv_store_error(store), "2024-02-30"));
    assert_null(strstr(cv_store_error(store), "en_cours"));
    s_batch_free(&b);

    /* an id too long for the dedupe index (program limit, 54000) is isolated too */
    char *huge = malloc(9001);
    memset(huge, 'x', 9000);
    huge[9000] = '\0';
    uint32_t lcg = 12345;                         /* pseudo-random: does not compress */
    for (int k = 0; k < 9000; k++) {
        lcg = lcg * 1103515245u + 12345u;
        huge[k] = (char) ('a' + (lcg >> 16) % 26);
    }
    s_add_event(&b, "t_data", s_ev("t_data", "L1", "RL", "received", "2024-03-04T09:00:00Z"));
    s_add_event(&b, "t_data", s_ev("t_data", huge, "RL", "received", "2024-03-04T09:00:00Z"));
    free(huge);
    s_write(store, &b);
    assert_int_equal(b.items[0].outcome, CV_OUT_STORED);
    assert_int_equal(b.items[1].outcome, CV_OUT_DEAD_LETTERED);
    assert_string_equal(b.items[1].detail, "SQLSTATE 54000");
    s_batch_free(&b);

    /* a batch where every event is bad */
    s_add_event(&b, "t_data", s_ev("t_data", "B1", "RB", "nope", "2024-03-04T09:00:00Z"));
    s_add_event(&b, "t_data", s_ev("t_data", "B2", "RB", "received", "2024-13-01T09:00:00Z"));
    s_add_event(&b, "t_data", s_ev("t_data", "B3", "RB", "received", "demain"));
    s_add_event(&b, "t_data", s_ev("t_data", "B4", "RB", "received", "infinity"));
    s_write(store, &b);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(b.items[i].outcome, CV_OUT_DEAD_LETTERED);
    assert_string_equal(b.items[2].detail, "SQLSTATE 22007");
    assert_string_equal(b.items[3].detail, "SQLSTATE 23514");
    assert_int_equal(pgf_number("SELECT count(*) FROM events WHERE source = 't_data'", NULL, NULL), 7);
    assert_int_equal(pgf_number("SELECT count(*) FROM request_sources WHERE source = 't_data' "
                              "AND source_record_id = 'RB'", NULL, NULL), 0);
    s_batch_free(&b);
    cv_store_destroy(&store);
}

/* Status, status_event_id and due_at of the request of record `rec`. */
static char *s_request_state(const char *source, const char *rec)
{
    return pgf_value("SELECT r.status || '|' || r.status_event_id || '|' || coalesce(r.due_at::text, '-')"
                   " || '|' || r.flagged FROM requests r JOIN request_sources s ON s.request_id = r.id "
                   "WHERE s.source = $1 AND s.source_record_id = $2", source, rec);
}

static void s_expect_state(const char *source, const char *rec, const char *status,
                           int64_t event_seq, const char *flagged)
{
    char expected[128];
    snprintf(expected, sizeof expected, "%s|%lld|", status, (long long) event_seq);
    char *state = s_request_state(source, rec);
    assert_non_null(state);
    if (strncmp(state, expected, strlen(expected)) != 0)
        print_error("request state %s, expected %s...\n", state, expected);
    assert_memory_equal(state, expected, strlen(expected));
    assert_string_equal(strrchr(state, '|') + 1, flagged);
    free(state);
}

static int64_t s_one(cv_store_t *store, const char *source, json_t *event, cv_outcome_t outcome,
                     bool flagged)
{
    tbatch_t b = { 0 };
    s_add_event(&b, source, event);
    s_write(store, &b);
    assert_int_equal(b.items[0].outcome, outcome);
    assert_int_equal(b.items[0].transition_flagged, flagged);
    int64_t seq = b.items[0].event_seq;
    s_batch_free(&b);
    return seq;
}

static void test_projection_latest_occurred_at(void **state)
{
    cv_store_t *store = pgf_store();
    const char *S = "t_proj";
    json_t *e1 = s_ev(S, "P1", "R1", "received", "2024-03-01T10:00:00Z");
    json_object_set_new(e1, "due_at", json_string("2024-04-01T00:00:00Z"));
    int64_t s1 = s_one(store, S, e1, CV_OUT_STORED, false);
    s_expect_state(S, "R1", "received", s1, "false");
    char *due = s_request_state(S, "R1");
    assert_non_null(strstr(due, "2024-04-01 00:00:00+00"));
    free(due);

    int64_t s3 = s_one(store, S, s_ev(S, "P3", "R1", "in_progress", "2024-03-03T10:00:00Z"),
                       CV_OUT_STORED, false);
    s_expect_state(S, "R1", "in_progress", s3, "false");

    /* a late arrival does not move the status back */
    s_one(store, S, s_ev(S, "P2", "R1", "acknowledged", "2024-03-02T10:00:00Z"), CV_OUT_STORED, false);
    s_expect_state(S, "R1", "in_progress", s3, "false");

    /* two in one batch, the later one first */
    tbatch_t b = { 0 };
    s_add_event(&b, S, s_ev(S, "P5", "R1", "resolved", "2024-03-05T10:00:00Z"));
    s_add_event(&b, S, s_ev(S, "P4", "R1", "waiting_citizen", "2024-03-04T10:00:00Z"));
    s_write(store, &b);
    assert_false(b.items[0].transition_flagged);
    assert_false(b.items[1].transition_flagged);
    int64_t s5 = b.items[0].event_seq;
    assert_true(b.items[1].event_seq > s5);
    s_batch_free(&b);
    s_expect_state(S, "R1", "resolved", s5, "false");

    /* same occurred_at: the later event (source order) wins */
    int64_t s6 = s_one(store, S, s_ev(S, "P6", "R1", "closed", "2024-03-05T10:00:00Z"),
                       CV_OUT_STORED, false);
    s_expect_state(S, "R1", "closed", s6, "false");
    char *due2 = s_request_state(S, "R1");
    assert_non_null(strstr(due2, "|-|"));          /* due_at follows the latest event */
    free(due2);

    /* the timeline keeps everything, in occurred_at order */
    pgf_expect("received,acknowledged,in_progress,waiting_citizen,resolved,closed",
                   "SELECT string_agg(e.status, ',' ORDER BY e.occurred_at, e.id) FROM events e "
                   "WHERE e.source = $1 AND e.source_record_id = 'R1'", S, NULL);
    cv_store_destroy(&store);
}

static void test_transition_flagging(void **state)
{
    cv_store_t *store = pgf_store();
    const char *S = "t_flag";
    /* received -> closed is outside the lifecycle */
    s_one(store, S, s_ev(S, "F1", "RF", "received", "2024-03-01T10:00:00Z"), CV_OUT_STORED, false);
    int64_t f2 = s_one(store, S, s_ev(S, "F2", "RF", "closed", "2024-03-02T10:00:00Z"), CV_OUT_STORED, true);
    s_expect_state(S, "RF", "closed", f2, "true");
    pgf_expect("true", "SELECT transition_flagged::text FROM events WHERE source = $1 AND event_id = 'F2'",
                   S, NULL);

    /* the same status again is not a transition; allowed steps are not flagged */
    s_one(store, S, s_ev(S, "G1", "RG", "in_progress", "2024-03-01T10:00:00Z"), CV_OUT_STORED, false);
    s_one(store, S, s_ev(S, "G2", "RG", "in_progress", "2024-03-02T10:00:00Z"), CV_OUT_STORED, false);
    int64_t g3 = s_one(store, S, s_ev(S, "G3", "RG", "resolved", "2024-03-03T10:00:00Z"), CV_OUT_STORED, false);
    s_expect_state(S, "RG", "resolved", g3, "false");

    /* judged against the status in effect just before it by occurred_at */
    s_one(store, S, s_ev(S, "H1", "RH", "received", "2024-03-01T10:00:00Z"), CV_OUT_STORED, false);
    int64_t h3 = s_one(store, S, s_ev(S, "H3", "RH", "resolved", "2024-03-03T10:00:00Z"), CV_OUT_STORED, false);
    s_one(store, S, s_ev(S, "H2", "RH", "closed", "2024-03-02T10:00:00Z"), CV_OUT_STORED, true);
    s_expect_state(S, "RH", "resolved", h3, "true");      /* status kept, request flagged */

    /* the first event of a request may have any status */
    int64_t k1 = s_one(store, S, s_ev(S, "K1", "RK", "closed", "2024-03-01T10:00:00Z"), CV_OUT_STORED, false);
    s_expect_state(S, "RK", "closed", k1, "false");

    /* inside one batch: ordered by occurred_at, not by position */
    tbatch_t b = { 0 };
    s_add_event(&b, S, s_ev(S, "L2", "RL", "in_progress", "2024-03-02T10:00:00Z"));
    s_add_event(&b, S, s_ev(S, "L1", "RL", "received", "2024-03-01T10:00:00Z"));
    s_add_event(&b, S, s_ev(S, "L3", "RL", "received", "2024-03-03T10:00:00Z"));  /* back: flagged */
    s_write(store, &b);
    assert_false(b.items[0].transition_flagged);
    assert_false(b.items[1].transition_flagged);
    assert_true(b.items[2].transition_flagged);
    s_expect_state(S, "RL", "received", b.items[2].event_seq, "true");
    s_batch_free(&b);

    /* a duplicate reports the stored flag */
    s_one(store, S, s_ev(S, "F2", "RF", "closed", "2024-03-02T10:00:00Z"), CV_OUT_DUPLICATE, true);
    cv_store_destroy(&store);
}

static void test_tracking_codes(void **state)
{
    cv_store_t *store = pgf_store();
    tbatch_t b = { 0 };
    char id[16];
    for (int k = 0; k < 300; k++) {
        snprintf(id, sizeof id, "T%d", k);
        s_add_event(&b, "t_code", s_ev("t_code", id, id, "received", "2024-03-04T09:00:00Z"));
    }
    s_write(store, &b);
    const char *alphabet = "ACDEFHJKLMNPRTUVWXY34679";
    for (size_t i = 0; i < b.n; i++) {
        const char *code = b.items[i].tracking_code;
        assert_int_equal(strlen(code), 11);
        assert_int_equal(strspn(code, alphabet), 11);
        char rid[24];
        snprintf(rid, sizeof rid, "%lld", (long long) b.items[i].request_id);
        pgf_expect(code, "SELECT tracking_code FROM requests WHERE id = $1::bigint", rid, NULL);
    }
    assert_int_equal(pgf_number("SELECT count(DISTINCT r.tracking_code) FROM requests r "
                              "JOIN request_sources s ON s.request_id = r.id WHERE s.source = 't_code'",
                              NULL, NULL), 300);
    assert_int_equal(pgf_number("SELECT count(*) FROM requests WHERE tracking_code !~ '" CODE_RE "'",
                              NULL, NULL), 0);
    /* the generator itself: many draws, right shape, every letter used */
    pgf_expect("0", "SELECT count(*) FROM (SELECT cv_tracking_code() c FROM generate_series(1, 2000)) t "
                   "WHERE c !~ '" DRAW_RE "'", NULL, NULL);
    /* the check character: every code's weighted sum is 0 modulo 29, and one
       wrong or two swapped characters never keep it so */
    pgf_expect("0", "WITH c AS (SELECT cv_code_finish(cv_tracking_code()) code FROM generate_series(1, 500)),"
                   " s AS (SELECT code, (SELECT sum(i * (strpos('ACDEFHJKLMNPRTUVWXY34679', substr(code, i, 1)) - 1))"
                   " FROM generate_series(1, 11) i) % 29 AS r FROM c) SELECT count(*) FROM s WHERE r <> 0", NULL, NULL);
    pgf_expect("24", "SELECT count(DISTINCT ch) FROM (SELECT regexp_split_to_table(cv_tracking_code(), '') ch "
                   "FROM generate_series(1, 200)) t", NULL, NULL);
    /* a candidate code already taken is redrawn (cv_ingest called directly,
       with the code of an existing request as its only candidate) */
    char *taken = pgf_value("SELECT tracking_code FROM requests ORDER BY id LIMIT 1", NULL, NULL);
    char *answer = pgf_value("SELECT o_outcome || ' ' || o_tracking_code "
                             "FROM cv_ingest(ARRAY[0], ARRAY['t_code'], ARRAY['h'], "
                             "ARRAY[NULL], convert_to($1, 'UTF8'), ARRAY['C1'], ARRAY['k'], ARRAY['RC1'], "
                             "ARRAY[NULL], ARRAY['voirie'], ARRAY['nid'], ARRAY['web'], ARRAY['received'], "
                             "ARRAY[NULL], ARRAY[NULL], ARRAY['2024-03-04T09:00:00Z'], ARRAY[NULL], "
                             "ARRAY[NULL], ARRAY[NULL], ARRAY[NULL], ARRAY['{}'])", taken, NULL);
    char *redrawn = pgf_value("SELECT r.tracking_code FROM requests r JOIN request_sources s "
                            "ON s.request_id = r.id WHERE s.source = 't_code' AND s.source_record_id = 'RC1'",
                            NULL, NULL);
    assert_non_null(redrawn);
    assert_string_not_equal(redrawn, taken);
    /* ... and the outcome names the code the request got, not the candidate */
    assert_non_null(answer);
    assert_int_equal(strncmp(answer, "stored ", 7), 0);
    assert_string_equal(answer + 7, redrawn);
    free(answer);
    assert_int_equal(strspn(redrawn, alphabet), 11);
    assert_int_equal(strlen(redrawn), 11);
    free(taken);
    free(redrawn);
    assert_int_equal(pgf_number("SELECT count(DISTINCT r.tracking_code) FROM requests r "
                              "JOIN request_sources s ON s.request_id = r.id WHERE s.source = 't_code'",
                              NULL, NULL), 301);

    /* tracking codes are unique (constraint) */
    assert_string_equal(s_must_fail("INSERT INTO requests (tracking_code, status, status_occurred_at, "
                                    "status_event_id) SELECT tracking_code, 'received', now(), 0 "
                                    "FROM requests LIMIT 1"), "23505");
    s_batch_free(&b);
    cv_store_destroy(&store);
}

static void test_personal_data_tables(void **state)
{
    cv_store_t *store = pgf_store();
    json_error_t jerr;
    json_t *example = json_load_file("schemas/v1/example-event.json", 0, &jerr);
    assert_non_null(example);
    json_object_set_new(example, "source", json_string("t_pd"));
    tbatch_t b = { 0 };
    s_add_event(&b, "t_pd", example);
    json_t *anon = s_ev("t_pd", "A1", "RA", "received", "2024-03-04T09:00:00Z");
    s_set_citizen(anon, NULL, "MARTIN");
    s_add_event(&b, "t_pd", anon);
    s_add_event(&b, "t_pd", s_ev("t_pd", "N1", "RN", "received", "2024-03-04T09:00:00Z"));
    s_write(store, &b);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(b.items[i].outcome, CV_OUT_STORED);
    char rid[24];
    snprintf(rid, sizeof rid, "%lld", (long long) b.items[0].request_id);

    /* request_sources, requests */
    pgf_expect(rid, "SELECT request_id::text FROM request_sources WHERE source = 't_pd' "
                   "AND source_record_id = 'PC0751232400001'", NULL, NULL);
    pgf_expect("PC 075 123 24 00001|in_progress|guichet|urbanisme|permis_construire|2024-05-04 22:00:00+00",
                   "SELECT request_ref || '|' || status || '|' || channel || '|' || service || '|' || "
                   "category || '|' || due_at FROM requests WHERE id = $1::bigint", rid, NULL);

    /* citizen_sources: identity block under the source's citizen id */
    pgf_expect("DUPONT|jp.dupont@example.fr|75019",
                   "SELECT identity->>'family_name' || '|' || (identity->>'email') || '|' || "
                   "(identity->'address'->>'postcode') FROM citizen_sources "
                   "WHERE source = 't_pd' AND source_citizen_id = 'PET-4411'", NULL, NULL);
    pgf_expect("1", "SELECT count(*) FROM events e JOIN citizen_sources c ON c.citizen_id = e.citizen_id "
                   "JOIN requests r ON r.citizen_id = e.citizen_id AND r.id = e.request_id "
                   "WHERE e.source = 't_pd' AND e.event_id LIKE 'PC0751232400001%' "
                   "AND c.source_citizen_id = 'PET-4411'", NULL, NULL);
    /* a block without an id: keyed by the hash of its canonical JSON */
    char key[80], hash[CV_HASH_HEX_LEN + 1];
    assert_int_equal(cv_hash_json(json_object_get(b.events[1], "citizen"), hash), 0);
    snprintf(key, sizeof key, "sha256:%s", hash);
    pgf_expect("MARTIN", "SELECT identity->>'family_name' FROM citizen_sources "
                   "WHERE source = 't_pd' AND source_citizen_id = $1", key, NULL);
    /* no block, no citizen */
    pgf_expect(NULL, "SELECT citizen_id::text FROM events WHERE source = 't_pd' AND event_id = 'N1'",
                   NULL, NULL);
    assert_int_equal(pgf_number("SELECT count(*) FROM citizen_sources WHERE source = 't_pd'", NULL, NULL), 2);

    /* source_records: raw record, summary, extra */
    pgf_expect("Extension d'une maison individuelle|SVC-URBA-3|32.5|DUPONT",
                   "SELECT summary || '|' || (extra->>'instructeur') || '|' || (extra->>'surface_plancher')"
                   " || '|' || (raw->'citizen'->>'family_name') FROM source_records "
                   "WHERE source = 't_pd' AND source_record_id = 'PC0751232400001' "
                   "AND request_id = $1::bigint", rid, NULL);

    /* events: no personal data */
    char *row = pgf_value("SELECT string_agg(to_jsonb(e)::text, ' ') FROM events e WHERE source = 't_pd'",
                        NULL, NULL);
    assert_non_null(row);
    const char *personal[] = { "DUPONT", "MARTIN", "Jean-Pierre", "jp.dupont@example.fr", "06 12 34 56 78",
                               "rue de l", "75019", "Extension d", "SVC-URBA-3", "1971-05-12",
                               "jeanne.secret", "Trou dangereux", NULL };
    for (int k = 0; personal[k]; k++)
        if (strstr(row, personal[k])) {
            print_error("events row holds personal data: %s\n", personal[k]);
            fail();
        }
    free(row);

    /* a newer version of the record replaces the personal data; an older one does not */
    s_batch_free(&b);
    json_t *newer = s_ev("t_pd", "A2", "RA", "in_progress", "2024-03-05T09:00:00Z");
    s_set_citizen(newer, NULL, "MARTIN");
    json_object_set_new(newer, "summary", json_string("version 2"));
    s_add_event(&b, "t_pd", newer);
    json_t *older = s_ev("t_pd", "A0", "RA", "received", "2024-03-01T09:00:00Z");
    json_object_set_new(older, "summary", json_string("version 0"));
    s_add_event(&b, "t_pd", older);
    s_write(store, &b);
    pgf_expect("version 2", "SELECT summary FROM source_records WHERE source = 't_pd' "
                   "AND source_record_id = 'RA'", NULL, NULL);
    s_batch_free(&b);
    cv_store_destroy(&store);
}

static void s_ic_event(cv_store_t *store, const char *source, const char *event_id, const char *family,
                       const char *email, cv_outcome_t outcome)
{
    tbatch_t b = { 0 };
    json_t *e = s_ev(source, event_id, "RIC1", "received", "2024-03-04T09:00:00Z");
    s_set_citizen(e, "CIT-1", family);
    if (email)
        json_object_set_new(json_object_get(e, "citizen"), "email", json_string(email));
    json_object_set_new(e, "category", json_string("ic_category"));
    s_add_event(&b, source, e);
    s_write(store, &b);
    assert_int_equal(b.items[0].outcome, outcome);
    s_batch_free(&b);
}

static void s_ic_stats(cv_store_t *store, uint64_t hits, uint64_t misses)
{
    uint64_t h, m;
    cv_store_identity_cache_stats(store, &h, &m);
    assert_int_equal(h, hits);
    assert_int_equal(m, misses);
}

/* The store's cache of stored identity blocks: an unchanged block is sent
   as NULL (a hit) and changes nothing; a changed one is sent, stored, and
   its new e-mail recorded; the cache learns only what PostgreSQL confirms,
   and an erasure empties it. */
static void test_identity_cache(void **state)
{
    cv_store_t *store = pgf_store();
    assert_int_equal(cv_store_set_identity_cache(store, 1000), 0);
    s_ic_event(store, "t_ic", "IC1", "LEROY", NULL, CV_OUT_STORED);
    s_ic_stats(store, 0, 1);
    s_ic_event(store, "t_ic", "IC2", "LEROY", NULL, CV_OUT_STORED);          /* same block */
    s_ic_stats(store, 1, 1);
    s_ic_event(store, "t_ic", "IC1", "LEROY", NULL, CV_OUT_DUPLICATE);       /* a resend */
    s_ic_stats(store, 2, 1);
    pgf_expect("2", "SELECT count(*) FROM events WHERE source = 't_ic' AND citizen_id = "
                   "(SELECT citizen_id FROM citizen_sources WHERE source = 't_ic')", NULL, NULL);
    pgf_expect("LEROY", "SELECT identity->>'family_name' FROM citizen_sources WHERE source = 't_ic'",
                   NULL, NULL);

    /* a new e-mail: sent whole, stored, its identifier recorded; then known */
    s_ic_event(store, "t_ic", "IC3", "LEROY", "jeanne.leroy@example.fr", CV_OUT_STORED);
    s_ic_stats(store, 2, 2);
    pgf_expect("jeanne.leroy@example.fr", "SELECT identity->>'email' FROM citizen_sources "
                   "WHERE source = 't_ic'", NULL, NULL);
    pgf_expect("2", "SELECT count(*) FROM citizen_identifiers WHERE source = 't_ic' AND kind = 'email'",
                   NULL, NULL);
    s_ic_event(store, "t_ic", "IC4", "LEROY", "jeanne.leroy@example.fr", CV_OUT_STORED);
    s_ic_stats(store, 3, 2);
    /* the older block again: sent (the cache holds the new one), kept as it is */
    s_ic_event(store, "t_ic", "IC5", "LEROY", NULL, CV_OUT_STORED);
    s_ic_stats(store, 3, 3);
    pgf_expect("voirie", "SELECT string_agg(service, ',') FROM service_categories "
                   "WHERE category = 'ic_category'", NULL, NULL);        /* Open311's catalogue */

    /* erased: the next event is sent whole and gives the pair its identity back */
    PGresult *r = PQexec(pgf_db, "SELECT cv_citizen_erase(citizen_id) FROM citizen_sources WHERE source = 't_ic'");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    cv_store_forget_identities();          /* what the commander does on the notification */
    s_ic_event(store, "t_ic", "IC6", "LEROY", "jeanne.leroy@example.fr", CV_OUT_STORED);
    s_ic_stats(store, 3, 4);
    pgf_expect("jeanne.leroy@example.fr", "SELECT identity->>'email' FROM citizen_sources "
                   "WHERE source = 't_ic'", NULL, NULL);
    cv_store_destroy(&store);
}

/* Items the ingest loop prepared (JSON texts and citizen key made off the
   writer thread) are stored exactly like items the store serialises. */
static void test_prepared_items(void **state)
{
    cv_store_t *store = pgf_store();
    tbatch_t b = { 0 };
    for (int prepared = 0; prepared < 2; prepared++) {
        const char *source = prepared ? "t_prep1" : "t_prep0";
        json_t *e = s_ev(source, "P1", "RP1", "received", "2024-03-04T09:00:00Z");
        s_set_citizen(e, "CIT-P", "NGUYỄN");
        s_add_event(&b, source, e);
        json_t *anon = s_ev(source, "P2", "RP2", "received", "2024-03-04T09:00:00Z");
        s_set_citizen(anon, NULL, "ÉPÉE");                /* keyed by the block's hash */
        json_object_set_new(anon, "extra", json_pack("{s:s, s:[i,i]}", "note", "l’été « chaud »", "n", 1, 2));
        s_add_event(&b, source, anon);
        s_add_event(&b, source, s_ev(source, "P3", "RP3", "received", "2024-03-04T09:00:00Z"));
    }
    for (size_t i = 3; i < 6; i++) {
        assert_int_equal(cv_store_item_prepare(&b.items[i]), 0);
        assert_true(b.items[i].prepared);
    }
    assert_string_equal(b.items[3].citizen_key, "CIT-P");
    assert_int_equal(strncmp(b.items[4].citizen_key, "sha256:", 7), 0);
    assert_string_equal(b.items[5].citizen_key, "");
    assert_null(b.items[5].citizen_json);
    s_write(store, &b);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(b.items[i].outcome, CV_OUT_STORED);
    pgf_expect("5", "SELECT count(*) FROM ("   /* 2 identities + 3 records, equal */
                   " SELECT source_citizen_id, identity FROM citizen_sources WHERE source = 't_prep0'"
                   " INTERSECT SELECT source_citizen_id, identity FROM citizen_sources WHERE source = 't_prep1'"
                   " UNION ALL SELECT source_record_id, extra FROM source_records WHERE source = 't_prep0'"
                   " INTERSECT SELECT source_record_id, extra FROM source_records WHERE source = 't_prep1') x",
                   NULL, NULL);
    pgf_expect("3", "SELECT count(*) FROM ("      /* every field of the events, equal */
                   " SELECT event_id, kind, source_record_id, service, category, channel, status,"
                   "        source_status, source_channel, occurred_at, due_at FROM events WHERE source = 't_prep0'"
                   " INTERSECT SELECT event_id, kind, source_record_id, service, category, channel, status,"
                   "        source_status, source_channel, occurred_at, due_at FROM events WHERE source = 't_prep1') x",
                   NULL, NULL);
    pgf_expect("l’été « chaud »", "SELECT extra->>'note' FROM source_records "
                   "WHERE source = 't_prep1' AND source_record_id = 'RP2'", NULL, NULL);
    for (size_t i = 0; i < 6; i++)
        cv_store_item_release(&b.items[i]);
    s_batch_free(&b);
    cv_store_destroy(&store);
}

static void test_append_only(void **state)
{
    cv_store_t *store = pgf_store();
    s_one(store, "t_ao", s_ev("t_ao", "E1", "R1", "received", "2024-03-04T09:00:00Z"), CV_OUT_STORED, false);
    cv_store_destroy(&store);
    assert_string_equal(s_must_fail("UPDATE events SET status = 'closed' WHERE source = 't_ao'"), "P0001");
    assert_string_equal(s_must_fail("DELETE FROM events WHERE source = 't_ao'"), "P0001");
    assert_string_equal(s_must_fail("TRUNCATE events"), "P0001");
    pgf_expect("received", "SELECT status FROM events WHERE source = 't_ao'", NULL, NULL);
    /* personal data stays erasable */
    pgf_expect("1", "WITH d AS (DELETE FROM source_records WHERE source = 't_ao' RETURNING 1) "
                   "SELECT count(*) FROM d", NULL, NULL);
}

typedef struct {
    cv_store_t *store;
    tbatch_t *batch;
    int rc;
} writer_t;

static void *s_writer(void *arg)
{
    writer_t *w = arg;
    w->rc = cv_store_write_batch(w->store, w->batch->items, w->batch->n);
    return NULL;
}

static void s_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void test_reconnect(void **state)
{
    char conninfo[256], err[512];
    snprintf(conninfo, sizeof conninfo, "%s application_name=cv_test_reconnect", pgf_conninfo);
    cv_store_t *store = cv_store_new(conninfo, PGF_SQL_DIR, err, sizeof err);
    assert_non_null(store);
    const char *S = "t_reco";
    tbatch_t b1 = { 0 }, b2 = { 0 };
    char id[16];
    for (int k = 0; k < 5; k++) {
        snprintf(id, sizeof id, "E%d", k);
        s_add_event(&b1, S, s_ev(S, id, id, "received", "2024-03-04T09:00:00Z"));
    }
    s_write(store, &b1);
    for (int k = 3; k < 8; k++) {          /* E3, E4 already stored; E5..E7 new */
        snprintf(id, sizeof id, "E%d", k);
        s_add_event(&b2, S, s_ev(S, id, id, "received", "2024-03-04T09:00:00Z"));
    }

    /* hold the writer lock so the batch waits inside its transaction, then kill its backend */
    PGresult *res = PQexec(pgf_db, "SELECT pg_advisory_lock(1667856994, 2)");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
    writer_t w = { store, &b2, 0 };
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, s_writer, &w), 0);
    char *pid = NULL;
    for (int tries = 0; tries < 200 && !pid; tries++) {
        s_sleep_ms(25);
        pid = pgf_value("SELECT pid::text FROM pg_stat_activity WHERE application_name = 'cv_test_reconnect' "
                      "AND wait_event_type = 'Lock' AND state = 'active'", NULL, NULL);
    }
    assert_non_null(pid);
    pgf_expect("true", "SELECT pg_terminate_backend($1::int)::text", pid, NULL);
    free(pid);
    pthread_join(thread, NULL);
    res = PQexec(pgf_db, "SELECT pg_advisory_unlock(1667856994, 2)");
    PQclear(res);
    assert_int_equal(w.rc, -1);
    assert_true(strlen(cv_store_error(store)) > 0);
    for (size_t i = 0; i < b2.n; i++)
        assert_int_equal(b2.items[i].outcome, CV_OUT_NONE);
    assert_int_equal(pgf_number("SELECT count(*) FROM events WHERE source = $1", S, NULL), 5);

    /* without a reconnect the connection stays unusable */
    assert_int_equal(cv_store_write_batch(store, b2.items, b2.n), -1);
    int rc = -1;
    for (int tries = 0; tries < 50 && rc != 0; tries++) {
        rc = cv_store_reconnect(store);
        if (rc != 0)
            s_sleep_ms(100);
    }
    assert_int_equal(rc, 0);
    s_write(store, &b2);
    assert_int_equal(b2.items[0].outcome, CV_OUT_DUPLICATE);
    assert_int_equal(b2.items[0].event_seq, b1.items[3].event_seq);
    assert_int_equal(b2.items[1].outcome, CV_OUT_DUPLICATE);
    for (size_t i = 2; i < 5; i++)
        assert_int_equal(b2.items[i].outcome, CV_OUT_STORED);

    /* the caller retries a batch whose commit it could not confirm: all DUPLICATE */
    int64_t seq = b2.items[4].event_seq;
    s_write(store, &b2);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(b2.items[i].outcome, CV_OUT_DUPLICATE);
    assert_int_equal(b2.items[4].event_seq, seq);
    assert_int_equal(pgf_number("SELECT count(*) FROM events WHERE source = $1", S, NULL), 8);
    assert_int_equal(pgf_number("SELECT count(DISTINCT event_id) FROM events WHERE source = $1", S, NULL), 8);
    assert_int_equal(pgf_number("SELECT count(*) FROM requests r JOIN request_sources s ON s.request_id = r.id "
                              "WHERE s.source = $1", S, NULL), 8);
    s_batch_free(&b1);
    s_batch_free(&b2);
    cv_store_destroy(&store);
}

static void test_throughput(void **state)
{
    int batches = getenv("CIVIBUS_STORE_BENCH") ? atoi(getenv("CIVIBUS_STORE_BENCH")) : 10;
    cv_store_t *store = pgf_store();
    const char *S = "t_bench";
    static const char *statuses[] = { "received", "in_progress", "resolved" };
    char id[32], rec[32], cit[32], at[32];
    double seconds = 0;
    long long stored = 0;
    for (int n = 0; n < batches; n++) {
        tbatch_t b = { 0 };
        for (int k = 0; k < 1000; k++) {
            long g = (long) n * 1000 + k;
            /* three events per record, spread over consecutive batches' records */
            long record = g / 3;
            snprintf(id, sizeof id, "B%ld", g);
            snprintf(rec, sizeof rec, "REC%ld", record);
            snprintf(cit, sizeof cit, "CIT%ld", record % 5000);
            snprintf(at, sizeof at, "2024-03-%02ldT%02ld:00:00Z", 1 + g % 3, record % 24);
            json_t *e = s_ev(S, id, rec, statuses[g % 3], at);
            s_set_citizen(e, cit, "DURAND");
            s_add_event(&b, S, e);
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        s_write(store, &b);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        seconds += (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
        for (size_t i = 0; i < b.n; i++) {
            assert_int_equal(b.items[i].outcome, CV_OUT_STORED);
            if (i)
                assert_true(b.items[i].event_seq > b.items[i - 1].event_seq);
            stored++;
        }
        s_batch_free(&b);
    }
    printf("store: %lld events in %.2f s of write_batch: %.0f events/s\n", stored, seconds,
           stored / (seconds > 0 ? seconds : 1));
    assert_int_equal(pgf_number("SELECT count(*) FROM events WHERE source = $1", S, NULL), stored);
    assert_int_equal(pgf_number("SELECT count(*) FROM events WHERE source = $1 AND transition_flagged",
                              S, NULL), 0);
    cv_store_destroy(&store);
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrations_applied_once),
        cmocka_unit_test(test_migration_errors),
        cmocka_unit_test(test_refuses_async_commit),
        cmocka_unit_test(test_store_duplicate_id_reused),
        cmocka_unit_test(test_duplicate_inside_batch),
        cmocka_unit_test(test_dead_items),
        cmocka_unit_test(test_data_error_isolated),
        cmocka_unit_test(test_projection_latest_occurred_at),
        cmocka_unit_test(test_transition_flagging),
        cmocka_unit_test(test_tracking_codes),
        cmocka_unit_test(test_personal_data_tables),
        cmocka_unit_test(test_identity_cache),
        cmocka_unit_test(test_prepared_items),
        cmocka_unit_test(test_append_only),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_throughput),
    };
    return cv_test_end(cv_test_group(tests, s_group_setup, s_group_teardown));
}
