/*  store — see cv_store.h.

    The work is done in SQL by cv_ingest (schemas/sql/functions/ingest.sql); this
    file moves batches in and outcomes out, and owns the transaction:

      BEGIN
        SELECT * FROM cv_ingest($1..$24)  the EVENT items as 23 parallel arrays,
                                          one per field, in binary format, and
                                          tracking code candidates
        SELECT * FROM cv_command_results  RESULT items (cv_commander.c), only when
                                          there are some
        INSERT INTO dead_letters ...      one jsonb array: DEAD items, id_reused,
                                          data errors (only when there are some)
      COMMIT

    A data error (SQLSTATE class 22 or 23, or 54000) in cv_ingest means
    some element carries a value PostgreSQL refuses. The batch is then
    rolled back and redone by bisection: each half runs under a SAVEPOINT; a failing half is
    rolled back to its savepoint and split again, down to single elements,
    which become `data_error` dead letters. The good elements of the batch
    commit together in the same transaction. Any other failure returns -1
    with nothing trusted; the caller reconnects and resends the batch.

    Identity. Each event's (source, source citizen id) pair is looked up in
    a bounded cache (cv_idcache.c) of the identity blocks PostgreSQL holds:
    an unchanged block is sent as NULL, which identity resolution and the
    identity update skip. cv_ingest says, per element sent with a block,
    whether that block is now the stored one; those enter the cache after
    COMMIT. An erasure (cv_store_forget_identities) empties it.

    Error texts never carry values: for a data error only the SQLSTATE is
    kept (PostgreSQL's message may quote the refused value). */
#include "cv_store.h"

#include "cv_store_int.h"

#include "cv_buf.h"
#include "cv_hash.h"
#include "cv_json.h"
#include "cv_log.h"
#include "cv_migrate.h"
#include "cv_text.h"
#include "commands/cv_commander.h"
#include "identity/cv_idcache.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOO_LARGE_KEEP 1024           /* bytes of payload kept for reason too_large */

enum { S_FAIL = -1, S_OK = 0, S_DATA = 1 };


#define BYTEA_OID      17
#define INT4_OID       23
#define TEXT_OID       25
#define INT4ARRAY_OID  1007
#define TEXTARRAY_OID  1009

struct cv_store {
    PGconn *conn;
    cv_store__column_t params[N_PARAMS];  /* cv_ingest's arguments, reused */
    cv_buf_t buf;                  /* dead letters (jsonb) and JSON scratch, reused */
    size_t *ev;                 /* positions of the EVENT items of the batch */
    uint64_t *pair, *block;     /* per ev: cache keys of its citizen pair and block (0: none) */
    bool *current;              /* per ev: its block is the stored one (cv_ingest says) */
    size_t ev_cap;
    cv_idcache_t *idcache;      /* stored blocks of pairs, or NULL */
    uint64_t idcache_epoch;     /* of s_forget when the cache was last emptied */
    _Atomic uint64_t idcache_hits, idcache_misses;   /* read by the ingest thread */
    int max_shared, max_absorb; /* identity limits (0: the SQL defaults) */
    char sqlstate[6];           /* of the last data error */
    char error[512];
};

static const char *s_ingest_sql =
    "SELECT o_idx, o_outcome, o_event_seq, o_request_id, o_tracking_code, o_flagged, o_identity_current "
    "FROM cv_ingest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, "
    "$18, $19, $23, $24, $20, $21, $22)";   /* citizen, raw; then requested_at, location, outcome */

static const char *s_dead_sql =
    "INSERT INTO dead_letters (source, event_id, reason, detail, payload, payload_hash, payload_bytes) "
    "SELECT x.s, x.id, x.reason, x.detail, decode(x.p, 'hex'), x.ph, x.n "
    "FROM jsonb_to_recordset($1::jsonb) "
    "  AS x(s text, id text, reason text, detail text, p text, ph text, n bigint) "
    "ON CONFLICT (source, reason, payload_hash) DO NOTHING";

/* ---- errors ------------------------------------------------------------- */

static void s_fail(cv_store_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_fail(cv_store_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->error, sizeof self->error, fmt, ap);
    va_end(ap);
}

/* A value PostgreSQL refuses: class 22 (data exception), 23 (integrity
   constraint) and 54000 (program limit, e.g. an index row too large for a
   huge event id): retrying could never succeed, so the element is isolated
   instead, as the contract asks for 22 and 23. */
static bool s_is_data_error(const char *state)
{
    return state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0
                     || strcmp(state, "54000") == 0);
}

/* Records why a statement failed and classifies it: S_DATA for a data
   error, S_FAIL otherwise. For a data error the message is left out: it
   may quote the refused value. */
static int s_sql_fail(cv_store_t *self, PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (s_is_data_error(state)) {
        snprintf(self->sqlstate, sizeof self->sqlstate, "%s", state);
        s_fail(self, "%s: SQLSTATE %s (data error)", what, state);
        return S_DATA;
    }
    const char *msg = state ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg)
        msg = PQerrorMessage(self->conn);    /* client side: connection lost... */
    int len = (int) strcspn(msg, "\n");
    if (state)
        s_fail(self, "%s: SQLSTATE %s: %.*s", what, state, len, msg);
    else
        s_fail(self, "%s: %.*s", what, len, msg);
    return S_FAIL;
}

/* Runs a command without parameters. */
static int s_cmd(cv_store_t *self, const char *sql)
{
    PGresult *res = PQexec(self->conn, sql);
    int rc = S_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = s_sql_fail(self, res, sql);
    PQclear(res);
    return rc;
}

/* ---- the parameter buffer ------------------------------------------------ */

static void s_buf_str(cv_buf_t *b, const char *s)
{
    cv_buf_add(b, s, strlen(s));
}

static void s_buf_int(cv_buf_t *b, long long v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", v);
    cv_buf_add(b, num, (size_t) n);
}

/* A JSON string literal (cv_json's escaping); NULL gives null. */
static void s_buf_jstr(cv_buf_t *b, const char *s)
{
    if (s)
        cv_json_string_to_buf(s, strlen(s), b);
    else
        s_buf_str(b, "null");
}

static void s_buf_hex(cv_buf_t *b, const void *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = data;
    char chunk[256];
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        chunk[k++] = digits[p[i] >> 4];
        chunk[k++] = digits[p[i] & 15];
        if (k == sizeof chunk) {
            cv_buf_add(b, chunk, k);
            k = 0;
        }
    }
    cv_buf_add(b, chunk, k);
}


/* ---- connection ---------------------------------------------------------- */

/* Server notices (e.g. "relation already exists, skipping") go to the debug
   log instead of stderr. */
static void s_notice(void *arg, const char *message)
{
    cv_debug("store", "server notice: %.*s", (int) strcspn(message, "\n"), message);
}

static int s_show(cv_store_t *self, const char *name, char *value, size_t len)
{
    char sql[64];
    snprintf(sql, sizeof sql, "SHOW %s", name);
    PGresult *res = PQexec(self->conn, sql);
    int rc = S_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        s_sql_fail(self, res, sql);
        rc = S_FAIL;
    } else
        snprintf(value, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

/* Refuses a server that may lose committed transactions. synchronous_commit
   values that wait for the local WAL flush (on, local, remote_write,
   remote_apply) are accepted; off is refused. */
static int s_check_durable(cv_store_t *self)
{
    char fsync[32], sync[32], fpw[32];
    if (s_show(self, "fsync", fsync, sizeof fsync) < 0
        || s_show(self, "synchronous_commit", sync, sizeof sync) < 0
        || s_show(self, "full_page_writes", fpw, sizeof fpw) < 0)
        return S_FAIL;
    if (strcmp(fsync, "on") != 0) {
        s_fail(self, "PostgreSQL runs with fsync=%s: refusing to store events "
               "(a crash could lose acknowledged events); set fsync=on", fsync);
        return S_FAIL;
    }
    if (strcmp(sync, "on") != 0 && strcmp(sync, "local") != 0
        && strcmp(sync, "remote_write") != 0 && strcmp(sync, "remote_apply") != 0) {
        s_fail(self, "PostgreSQL runs with synchronous_commit=%s: refusing to store events "
               "(a crash could lose acknowledged events); set synchronous_commit=on", sync);
        return S_FAIL;
    }
    if (strcmp(fpw, "on") != 0)
        cv_warn("store", "PostgreSQL runs with full_page_writes=%s: a crash may corrupt pages "
                "unless the file system prevents torn writes", fpw);
    return S_OK;
}

static int s_prepare(cv_store_t *self, const char *name, const char *sql, int n, const Oid *types)
{
    PGresult *res = PQprepare(self->conn, name, sql, n, types);
    int rc = S_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        char what[64];
        snprintf(what, sizeof what, "prepare %s", name);
        s_sql_fail(self, res, what);
        rc = S_FAIL;
    }
    PQclear(res);
    return rc;
}

/* Per-session state, after migrations and after every reconnect. */
/* The identity limits as session settings (cv_identity_setting reads them). */
static int s_limits(cv_store_t *self)
{
    if (self->max_shared <= 0)
        return S_OK;                /* the SQL defaults */
    char sql[160];                  /* plain integers: no value from outside */
    snprintf(sql, sizeof sql, "SET civibus.identity_max_shared = %d; SET civibus.identity_max_absorb = %d",
             self->max_shared, self->max_absorb);
    return s_cmd(self, sql);
}

static int s_session(cv_store_t *self)
{
    if (s_cmd(self, "SET TIME ZONE 'UTC'") != S_OK)
        return S_FAIL;
    Oid types[N_PARAMS];
    for (int p = 0; p < N_PARAMS; p++)
        types[p] = p == P_IDX ? INT4ARRAY_OID : p == P_CODES ? BYTEA_OID : TEXTARRAY_OID;
    if (s_prepare(self, "cv_ingest", s_ingest_sql, N_PARAMS, types) < 0
        || s_prepare(self, "cv_dead", s_dead_sql, 0, NULL) < 0)
        return S_FAIL;
    return s_limits(self);
}

int cv_store_set_identity_limits(cv_store_t *self, int max_shared, int max_absorb)
{
    self->max_shared = max_shared;
    self->max_absorb = max_absorb;
    return s_limits(self) == S_OK ? 0 : -1;
}

cv_store_t *cv_store_new(const char *conninfo, const char *sql_dir, char *err, size_t errlen)
{
    cv_store_t *self = sodium_init() < 0 ? NULL : calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "store: out of memory");
        return NULL;
    }
    const char *keys[] = { "fallback_application_name", "dbname", "client_encoding", NULL };
    const char *values[] = { "civibus-hub", conninfo ? conninfo : "", "UTF8", NULL };
    self->conn = PQconnectdbParams(keys, values, 1);
    if (!self->conn || PQstatus(self->conn) != CONNECTION_OK) {
        char line[512];
        cv_text_one_line(self->conn ? PQerrorMessage(self->conn) : "out of memory", line, sizeof line);
        snprintf(err, errlen, "store: cannot connect to PostgreSQL: %s", line);
        goto fail;
    }
    PQsetNoticeProcessor(self->conn, s_notice, NULL);
    if (s_check_durable(self) < 0) {
        snprintf(err, errlen, "store: %s", self->error);
        goto fail;
    }
    char why[512];
    int applied = cv_migrate(self->conn, sql_dir, why, sizeof why);
    if (applied < 0) {
        snprintf(err, errlen, "%s", why);
        goto fail;
    }
    if (s_session(self) < 0) {
        snprintf(err, errlen, "store: %s", self->error);
        goto fail;
    }
    return self;
fail:
    cv_store_destroy(&self);
    return NULL;
}

void cv_store_destroy(cv_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cv_store_t *self = *self_p;
    if (self->conn)
        PQfinish(self->conn);
    for (int p = 0; p < N_PARAMS; p++)
        free(self->params[p].data.data);
    free(self->buf.data);
    free(self->ev);
    free(self->pair);
    free(self->block);
    free(self->current);
    cv_idcache_destroy(&self->idcache);
    free(self);
    *self_p = NULL;
}

int cv_store_reconnect(cv_store_t *self)
{
    PQreset(self->conn);
    if (PQstatus(self->conn) != CONNECTION_OK) {
        char line[512];
        s_fail(self, "reconnect: %s", cv_text_one_line(PQerrorMessage(self->conn), line, sizeof line));
        return -1;
    }
    if (s_check_durable(self) < 0 || s_session(self) < 0)
        return -1;
    cv_info("store", "reconnected to PostgreSQL");
    return 0;
}

const char *cv_store_error(const cv_store_t *self)
{
    return self->error;
}

/* ---- one call of cv_ingest ------------------------------------------------ */





/* Appends n candidate tracking codes, 10 characters each, from the
   alphabet of requests.tracking_code, uniformly (random bytes >= 240 =
   10 * 24 are skipped). One random draw per 100 codes or so. */
static void s_add_codes(cv_buf_t *b, size_t n)
{
    static const char alphabet[] = "ACDEFHJKLMNPRTUVWXY34679";
    unsigned char rnd[1024];
    char out[sizeof rnd];
    size_t need = n * 10;
    while (need > 0 && !b->failed) {
        randombytes_buf(rnd, sizeof rnd);
        size_t k = 0;
        for (size_t i = 0; i < sizeof rnd && k < need; i++)
            if (rnd[i] < 240)
                out[k++] = alphabet[rnd[i] % 24];
        cv_buf_add(b, out, k);
        need -= k;
    }
}

static cv_outcome_t s_outcome(const char *text)
{
    if (strcmp(text, "stored") == 0)
        return CV_OUT_STORED;
    if (strcmp(text, "duplicate") == 0)
        return CV_OUT_DUPLICATE;
    if (strcmp(text, "id_reused") == 0)
        return CV_OUT_ID_REUSED;
    return CV_OUT_NONE;
}

static int s_read_outcomes(cv_store_t *self, PGresult *res, cv_store_item_t *items, size_t lo, size_t hi)
{
    if ((size_t) PQntuples(res) != hi - lo) {
        s_fail(self, "cv_ingest returned %d outcomes for %zu events", PQntuples(res), hi - lo);
        return S_FAIL;
    }
    for (size_t r = 0; r < hi - lo; r++) {
        size_t idx = self->ev[lo + r];
        cv_outcome_t outcome = s_outcome(PQgetvalue(res, (int) r, 1));
        if (strtoull(PQgetvalue(res, (int) r, 0), NULL, 10) != idx || outcome == CV_OUT_NONE) {
            s_fail(self, "cv_ingest returned an unexpected outcome row %zu", r);
            return S_FAIL;
        }
        cv_store_item_t *it = &items[idx];
        it->outcome = outcome;
        if (outcome == CV_OUT_ID_REUSED) {
            snprintf(it->reason, sizeof it->reason, "id_reused");
            snprintf(it->detail, sizeof it->detail,
                     "event id already stored with another content hash");
            continue;
        }
        it->event_seq = strtoll(PQgetvalue(res, (int) r, 2), NULL, 10);
        it->request_id = strtoll(PQgetvalue(res, (int) r, 3), NULL, 10);
        snprintf(it->tracking_code, sizeof it->tracking_code, "%s", PQgetvalue(res, (int) r, 4));
        it->transition_flagged = PQgetvalue(res, (int) r, 5)[0] == 't';
        self->current[lo + r] = PQgetvalue(res, (int) r, 6)[0] == 't';
    }
    return S_OK;
}









/* The citizen block of ev[k]: NULL when the cache knows it is the one
   stored for its pair, its JSON text otherwise. */
static void s_col_citizen(cv_store_t *self, cv_store__column_t *c, const cv_store_item_t *it, size_t k)
{
    const char *text = it->citizen_json;
    size_t len = it->citizen_json_len;
    if (!it->prepared) {
        const json_t *citizen = json_object_get(it->event, "citizen");
        self->buf.len = 0;
        if (citizen && !json_is_null(citizen))
            cv_store__buf_json(&self->buf, citizen);
        text = self->buf.len ? self->buf.data : NULL;
        len = self->buf.len;
    }
    self->block[k] = self->pair[k] && text ? cv_idcache_block(self->idcache, text, len) : 0;
    if (self->block[k] && cv_idcache_get(self->idcache, self->pair[k]) == self->block[k]) {
        cv_store__col_text(c, NULL, 0);              /* unchanged: nothing to resolve or update */
        self->idcache_hits++;
        return;
    }
    if (self->block[k])
        self->idcache_misses++;
    cv_store__col_text(c, text, len);
}

/* Fills the parameters with the EVENT items ev[lo..hi): one array per
   field, and P_CODES, a plain bytea of tracking code candidates (10 bytes
   each, one per item: enough for every request the batch may create).
   Strings go as they are, NUL bytes included: PostgreSQL refuses those (a
   data error). */
static int s_build(cv_store_t *self, cv_store_item_t *items, size_t lo, size_t hi)
{
    cv_store__column_t *p = self->params;
    for (int k = 0; k < N_PARAMS; k++)
        cv_store__col_start(&p[k]);
    p[P_CODES].data.len = 0;                  /* not an array: no header */
    s_add_codes(&p[P_CODES].data, hi - lo);
    char hashkey[80];
    for (size_t k = lo; k < hi; k++) {
        const cv_store_item_t *it = &items[self->ev[k]];
        cv_store__col_int(&p[P_IDX], (uint32_t) self->ev[k]);
        cv_store__col_text(&p[P_SOURCE], it->source, strlen(it->source));
        cv_store__col_text(&p[P_HASH], it->content_hash, strlen(it->content_hash));
        size_t key_len = 0;
        const char *key;
        if (it->prepared) {
            key_len = strlen(it->citizen_key);
            key = key_len ? it->citizen_key : NULL;
        } else
            key = cv_store__citizen_key(it->event, hashkey, &key_len);
        cv_store__col_text(&p[P_CITIZEN_KEY], key, key_len);
        self->pair[k] = key && self->idcache ? cv_idcache_key(self->idcache, it->source, key, key_len) : 0;
        self->current[k] = false;
        if (it->prepared)
            cv_store__col_fields(p, it);
        else
            for (int f = P_EVENT_ID; f < P_CITIZEN; f++)
                cv_store__col_json(&p[f], json_object_get(it->event, cv_store__fields[f - P_EVENT_ID]), f == P_EXTRA);
        s_col_citizen(self, &p[P_CITIZEN], it, k);
        if (it->raw)
            cv_store__col_text(&p[P_RAW], it->raw, it->raw_len);
        else
            cv_store__col_json(&p[P_RAW], it->record, true);
    }
    bool oom = false;
    for (int k = 0; k < N_PARAMS; k++) {
        if (k != P_CODES)
            cv_store__col_finish(&p[k], k == P_IDX ? INT4_OID : TEXT_OID);
        oom |= p[k].data.failed;
        p[k].data.failed = false;
    }
    if (oom) {
        s_fail(self, "out of memory building a batch of %zu events", hi - lo);
        return S_FAIL;
    }
    return S_OK;
}

/* Runs cv_ingest over the EVENT items ev[lo..hi). */
static int s_ingest(cv_store_t *self, cv_store_item_t *items, size_t lo, size_t hi)
{
    if (s_build(self, items, lo, hi) != S_OK)
        return S_FAIL;
    const char *values[N_PARAMS];
    int lengths[N_PARAMS], formats[N_PARAMS];
    for (int k = 0; k < N_PARAMS; k++) {
        values[k] = self->params[k].data.data;
        lengths[k] = (int) self->params[k].data.len;
        formats[k] = 1;
    }
    PGresult *res = PQexecPrepared(self->conn, "cv_ingest", N_PARAMS, values, lengths, formats, 0);
    int rc = PQresultStatus(res) == PGRES_TUPLES_OK
           ? s_read_outcomes(self, res, items, lo, hi)
           : s_sql_fail(self, res, "cv_ingest");
    PQclear(res);
    return rc;
}

/* ---- data errors: bisection under savepoints ---------------------------- */

static void s_mark_data_error(cv_store_t *self, cv_store_item_t *it)
{
    it->outcome = CV_OUT_DEAD_LETTERED;
    snprintf(it->reason, sizeof it->reason, "data_error");
    snprintf(it->detail, sizeof it->detail, "SQLSTATE %s", self->sqlstate);
}

static int s_isolate(cv_store_t *self, cv_store_item_t *items, size_t lo, size_t hi)
{
    if (s_cmd(self, "SAVEPOINT cv_part") != S_OK)
        return S_FAIL;
    int rc = s_ingest(self, items, lo, hi);
    if (rc == S_OK)
        return s_cmd(self, "RELEASE SAVEPOINT cv_part") == S_OK ? S_OK : S_FAIL;
    if (rc == S_FAIL)
        return S_FAIL;
    if (s_cmd(self, "ROLLBACK TO SAVEPOINT cv_part") != S_OK
        || s_cmd(self, "RELEASE SAVEPOINT cv_part") != S_OK)
        return S_FAIL;
    if (hi - lo == 1) {
        s_mark_data_error(self, &items[self->ev[lo]]);
        return S_OK;
    }
    size_t mid = lo + (hi - lo) / 2;
    rc = s_isolate(self, items, lo, mid);
    return rc == S_OK ? s_isolate(self, items, mid, hi) : rc;
}

/* The whole batch failed with a data error: start again, in halves. */
static int s_redo_isolating(cv_store_t *self, cv_store_item_t *items, size_t m)
{
    if (s_cmd(self, "ROLLBACK") != S_OK || s_cmd(self, "BEGIN") != S_OK)
        return S_FAIL;
    if (m == 1) {
        s_mark_data_error(self, &items[self->ev[0]]);
        return S_OK;
    }
    int rc = s_isolate(self, items, 0, m / 2);
    return rc == S_OK ? s_isolate(self, items, m / 2, m) : rc;
}

/* ---- dead letters --------------------------------------------------------- */

static bool s_needs_dead_letter(const cv_store_item_t *it)
{
    return it->kind == CV_ITEM_DEAD || it->outcome == CV_OUT_ID_REUSED
        || it->outcome == CV_OUT_DEAD_LETTERED;
}

static void s_add_dead(cv_buf_t *b, const cv_store_item_t *it, bool with_event_id)
{
    const json_t *id = with_event_id ? json_object_get(it->event, "event_id") : NULL;
    size_t keep = it->raw ? it->raw_len : 0;
    if (strcmp(it->reason, "too_large") == 0 && keep > TOO_LARGE_KEEP)
        keep = TOO_LARGE_KEEP;
    char hash[CV_HASH_HEX_LEN + 1];
    cv_hash_bytes(it->raw ? it->raw : "", it->raw ? it->raw_len : 0, hash);

    s_buf_str(b, "{\"s\":");
    s_buf_jstr(b, it->source);
    s_buf_str(b, ",\"id\":");
    s_buf_jstr(b, json_is_string(id) ? json_string_value(id) : NULL);
    s_buf_str(b, ",\"reason\":");
    s_buf_jstr(b, it->reason[0] ? it->reason : "unknown");
    s_buf_str(b, ",\"detail\":");
    s_buf_jstr(b, it->detail[0] ? it->detail : NULL);
    s_buf_str(b, ",\"p\":\"");
    s_buf_hex(b, it->raw, keep);
    s_buf_str(b, "\",\"ph\":\"");
    s_buf_str(b, hash);
    s_buf_str(b, "\",\"n\":");
    s_buf_int(b, (long long) (it->raw ? it->raw_len : 0));
    s_buf_str(b, "}");
}

static int s_insert_dead(cv_store_t *self, cv_store_item_t *items, size_t n, bool with_event_id)
{
    cv_buf_t *b = &self->buf;
    b->len = 0;
    cv_buf_add(b, "[", 1);
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (s_needs_dead_letter(&items[i])) {
            if (count++)
                cv_buf_add(b, ",", 1);
            s_add_dead(b, &items[i], with_event_id);
        }
    cv_buf_add(b, "]", 1);
    if (b->failed) {
        b->failed = false;
        s_fail(self, "out of memory building %zu dead letters", count);
        return S_FAIL;
    }
    const char *params[1] = { b->data };
    PGresult *res = PQexecPrepared(self->conn, "cv_dead", 1, params, NULL, NULL, 0);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? S_OK : s_sql_fail(self, res, "dead letters");
    PQclear(res);
    return rc;
}

/* The only text a dead letter takes from the record is its event id; if
   PostgreSQL refuses even that, the dead letters go in without it. */
static int s_dead_letters(cv_store_t *self, cv_store_item_t *items, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += s_needs_dead_letter(&items[i]);
    if (count == 0)
        return S_OK;                        /* the usual case: no round trip */
    if (s_cmd(self, "SAVEPOINT cv_dead") != S_OK)
        return S_FAIL;
    int rc = s_insert_dead(self, items, n, true);
    if (rc == S_DATA) {
        if (s_cmd(self, "ROLLBACK TO SAVEPOINT cv_dead") != S_OK)
            return S_FAIL;
        rc = s_insert_dead(self, items, n, false);
    }
    if (rc != S_OK)
        return S_FAIL;
    return s_cmd(self, "RELEASE SAVEPOINT cv_dead") == S_OK ? S_OK : S_FAIL;
}

/* ---- the batch ------------------------------------------------------------- */

static void s_reset_outputs(cv_store_item_t *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cv_store_item_t *it = &items[i];
        it->outcome = CV_OUT_NONE;
        it->event_seq = 0;
        it->request_id = 0;
        it->tracking_code[0] = '\0';
        it->transition_flagged = false;
        if (it->kind == CV_ITEM_EVENT) {
            it->reason[0] = '\0';
            it->detail[0] = '\0';
        }
    }
}

/* Fills self->ev with the positions of EVENT items; an EVENT item without
   an event cannot be stored and is dead-lettered. */
static int s_collect(cv_store_t *self, cv_store_item_t *items, size_t n, size_t *m)
{
    if (n > self->ev_cap) {
        size_t *grown = realloc(self->ev, n * sizeof *grown);
        if (grown)
            self->ev = grown;
        uint64_t *pairs = grown ? realloc(self->pair, n * sizeof *pairs) : NULL;
        if (pairs)
            self->pair = pairs;
        uint64_t *blocks = pairs ? realloc(self->block, n * sizeof *blocks) : NULL;
        if (blocks)
            self->block = blocks;
        bool *current = blocks ? realloc(self->current, n * sizeof *current) : NULL;
        if (!current) {
            s_fail(self, "out of memory for a batch of %zu items", n);
            return S_FAIL;
        }
        self->current = current;
        self->ev_cap = n;
    }
    *m = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].kind != CV_ITEM_EVENT)
            continue;
        if (!json_is_object(items[i].event)) {
            items[i].outcome = CV_OUT_DEAD_LETTERED;
            snprintf(items[i].reason, sizeof items[i].reason, "invalid_event");
            snprintf(items[i].detail, sizeof items[i].detail, "no canonical event given to the store");
            continue;
        }
        self->ev[(*m)++] = i;
    }
    return S_OK;
}

static int s_abort(cv_store_t *self, cv_store_item_t *items, size_t n)
{
    if (PQstatus(self->conn) == CONNECTION_OK && PQtransactionStatus(self->conn) != PQTRANS_IDLE)
        PQclear(PQexec(self->conn, "ROLLBACK"));
    s_reset_outputs(items, n);
    return -1;
}

/* After COMMIT: the blocks PostgreSQL holds now. */
static void s_remember_blocks(cv_store_t *self, size_t m)
{
    if (!self->idcache)
        return;
    for (size_t k = 0; k < m; k++)
        if (self->current[k] && self->pair[k] && self->block[k])
            cv_idcache_put(self->idcache, self->pair[k], self->block[k]);
}

/* Bumped by cv_store_forget_identities (any thread); each store empties
   its cache before its next batch when it sees a new value. */
static _Atomic uint64_t s_forget;

void cv_store_forget_identities(void)
{
    s_forget++;
}

int cv_store_set_identity_cache(cv_store_t *self, size_t pairs)
{
    cv_idcache_destroy(&self->idcache);
    if (pairs == 0)
        return 0;
    self->idcache = cv_idcache_new(pairs);
    self->idcache_epoch = s_forget;
    if (!self->idcache) {
        s_fail(self, "out of memory for an identity cache of %zu pairs", pairs);
        return -1;
    }
    return 0;
}

void cv_store_identity_cache_stats(const cv_store_t *self, uint64_t *hits, uint64_t *misses)
{
    *hits = self->idcache_hits;
    *misses = self->idcache_misses;
}

int cv_store_write_batch(cv_store_t *self, cv_store_item_t *items, size_t n)
{
    s_reset_outputs(items, n);
    if (n == 0)
        return 0;
    if (self->idcache && self->idcache_epoch != s_forget) {
        self->idcache_epoch = s_forget;       /* an erasure: stored blocks went */
        cv_idcache_clear(self->idcache);
        cv_info("store", "identity cache emptied (identity blocks were erased)");
    }
    size_t m;
    if (s_collect(self, items, n, &m) != S_OK)
        return s_abort(self, items, n);
    if (PQstatus(self->conn) != CONNECTION_OK) {
        s_fail(self, "not connected to PostgreSQL");
        return s_abort(self, items, n);
    }
    if (s_cmd(self, "BEGIN") != S_OK)
        return s_abort(self, items, n);

    int rc = m ? s_ingest(self, items, 0, m) : S_OK;
    if (rc == S_DATA) {
        rc = s_redo_isolating(self, items, m);
        size_t bad = 0;
        for (size_t k = 0; k < m; k++)
            bad += items[self->ev[k]].outcome == CV_OUT_DEAD_LETTERED;
        if (rc == S_OK)
            cv_warn("store", "batch of %zu: %zu event(s) refused by PostgreSQL, dead-lettered "
                    "as data_error", n, bad);
    }
    if (rc == S_OK && cv_commander_store_results(self->conn, items, n, self->error, sizeof self->error) < 0)
        rc = S_FAIL;                         /* command results (cv_commander.c), before their dead letters */
    if (rc == S_OK)
        rc = s_dead_letters(self, items, n);
    if (rc != S_OK)
        return s_abort(self, items, n);

    PGresult *res = PQexec(self->conn, "COMMIT");
    bool committed = PQresultStatus(res) == PGRES_COMMAND_OK
                  && strcmp(PQcmdStatus(res), "COMMIT") == 0;
    if (PQresultStatus(res) == PGRES_COMMAND_OK && !committed)
        s_fail(self, "COMMIT: the transaction was rolled back");
    else if (!committed)
        s_sql_fail(self, res, "COMMIT (outcome unknown)");
    PQclear(res);
    if (!committed)
        return s_abort(self, items, n);

    for (size_t i = 0; i < n; i++)
        if (items[i].kind == CV_ITEM_DEAD)
            items[i].outcome = CV_OUT_DEAD_LETTERED;
    s_remember_blocks(self, m);
    self->error[0] = '\0';
    return 0;
}
