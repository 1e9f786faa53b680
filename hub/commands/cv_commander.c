/*  commander — see cv_commander.h and docs/commands.md.

    The thread is a CZMQ actor. Its pipe carries, from the ingest loop,
    "SESSION <source index> <0|1>", and back, one message per command to
    send: "COMMAND <source index> <id> <kind> <key> <payload>". It waits on
    the pipe and on its PostgreSQL socket (LISTEN civibus_commands) with a
    one-second tick, then runs one delivery round for the connected
    sources:

        UPDATE commands SET status = 'sent', deliveries + 1, sent_at = now()
        WHERE source = ANY(connected) AND id > $last
          AND (pending, or sent and due)
        ORDER BY id LIMIT 100 ... RETURNING ...

    page after page (keyset on id), so many commands neither hold a long
    transaction nor make it loop on the rows it just marked. "Due" means
    older than commands.result_timeout_ms, or any `sent` command of a source
    that has just opened a session.

    The same thread, having a connection off the ingest path, also runs the
    identity job that proposes weak matches to agents (cv_identity_propose,
    docs/identity.md) every identity.propose_interval_ms, and LISTENs on
    'civibus_identity', which an erasure notifies: the store then forgets
    the identity blocks it cached. */
#include "cv_commander.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cv_log.h"
#include "cv_text.h"

#define TICK_MS      1000
#define PAGE         100
#define COMP         "commander"

struct cv_commander {
    zactor_t *actor;
    const cv_hub_config_t *config;
};

typedef struct {
    const cv_hub_config_t *config;
    zsock_t *pipe;
    PGconn *conn;
    size_t n;                  /* sources known (grows on SOURCES: a reload added some) */
    bool *open;                /* per source: a session is open */
    bool *fresh;               /* per source: a session opened since the last round */
    bool wake;                 /* a notification or news: run a round now */
    int64_t next_round, next_connect, next_propose;
    int backoff_ms;
    bool down_logged;
    bool was_connected;        /* a connection was lost: notifications may have been missed */
} state_t;

static const char *s_deliver_sql =
    "WITH d AS ("
    "  SELECT id FROM commands"
    "  WHERE source = ANY($1::text[]) AND id > $2::bigint"
    "    AND (status = 'pending' OR (status = 'sent' AND (source = ANY($3::text[])"
    "         OR sent_at < now() - $4::bigint * interval '1 millisecond')))"
    "  ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED),"                 /* PAGE */
    " u AS ("
    "  UPDATE commands c SET status = 'sent', deliveries = c.deliveries + 1, sent_at = now()"
    "  FROM d WHERE c.id = d.id"
    "  RETURNING c.id, c.source, c.kind, c.idempotency_key, c.payload::text)"
    " SELECT * FROM u ORDER BY id";

/* ---- the connection ------------------------------------------------------ */

static void s_disconnect(state_t *st, const char *why)
{
    if (st->conn) {
        int len = (int) strcspn(why, "\n");
        cv_warn(COMP, "PostgreSQL connection lost (%.*s): commands wait until it is back", len, why);
        PQfinish(st->conn);
        st->conn = NULL;
    }
    st->next_connect = zclock_mono() + st->backoff_ms;
    st->backoff_ms = st->backoff_ms * 2 > 5000 ? 5000 : st->backoff_ms * 2;
}

static void s_connect(state_t *st)
{
    /* a bounded connect (the hub's conninfo may set its own), so stopping never waits long */
    const char *keys[] = { "fallback_application_name", "connect_timeout", "dbname", "client_encoding", NULL };
    const char *values[] = { "civibus-hub-commander", "5", st->config->conninfo, "UTF8", NULL };
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    PGresult *res = NULL;
    if (conn && PQstatus(conn) == CONNECTION_OK)
        res = PQexec(conn, "LISTEN civibus_commands; LISTEN civibus_identity");
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
        if (!st->down_logged) {
            char line[512];
            cv_warn(COMP, "cannot connect to PostgreSQL (%s): commands wait; retrying",
                    cv_text_one_line(conn ? PQerrorMessage(conn) : "out of memory", line, sizeof line));
            st->down_logged = true;
        }
        PQclear(res);
        PQfinish(conn);
        st->next_connect = zclock_mono() + st->backoff_ms;
        st->backoff_ms = st->backoff_ms * 2 > 5000 ? 5000 : st->backoff_ms * 2;
        return;
    }
    PQclear(res);
    if (st->down_logged)
        cv_info(COMP, "connected to PostgreSQL");
    st->down_logged = false;
    st->conn = conn;
    st->backoff_ms = 100;
    st->wake = true;
    if (st->was_connected)
        cv_store_forget_identities();        /* an erasure may have gone unheard meanwhile */
    st->was_connected = true;
}

/* Reads notifications: civibus_identity (an erasure) empties the store's
   identity cache; any other means "look again" for commands. */
static void s_on_notify(state_t *st)
{
    if (!PQconsumeInput(st->conn)) {
        s_disconnect(st, PQerrorMessage(st->conn));
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(st->conn))) {
        if (strcmp(n->relname, "civibus_identity") == 0)
            cv_store_forget_identities();
        else
            st->wake = true;
        PQfreemem(n);
    }
}

/* ---- delivering ------------------------------------------------------------ */

/* "{a,b}": the sources (names are [a-z0-9_-]) whose flag is set. */
static void s_names(const state_t *st, const bool *flag, char *out, size_t len)
{
    size_t used = (size_t) snprintf(out, len, "{");
    for (size_t i = 0; i < st->n && used < len; i++)
        if (flag[i])
            used += (size_t) snprintf(out + used, len - used, "%s%s", used > 1 ? "," : "",
                                      st->config->sources[i].name);
    if (used < len)
        snprintf(out + used, len - used, "}");
}

static int s_source_index(const state_t *st, const char *name)
{
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->config->sources[i].name, name) == 0)
            return (int) i;
    return -1;
}

/* One page of deliveries: the number of rows, or -1. */
static int s_page(state_t *st, const char *open, const char *fresh, int64_t *last, int *counts)
{
    char after[24], timeout[24];
    snprintf(after, sizeof after, "%" PRId64, *last);
    snprintf(timeout, sizeof timeout, "%" PRId64, st->config->command_result_timeout_ms);
    const char *params[4] = { open, after, fresh, timeout };
    PGresult *res = PQexecParams(st->conn, s_deliver_sql, 4, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (PQstatus(st->conn) != CONNECTION_OK)
            s_disconnect(st, PQerrorMessage(st->conn));
        else
            cv_error(COMP, "delivery query failed (SQLSTATE %s)", state ? state : "?");
        PQclear(res);
        return -1;
    }
    int rows = PQntuples(res);
    for (int r = 0; r < rows; r++) {
        int64_t id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        int src = s_source_index(st, PQgetvalue(res, r, 1));
        if (id > *last)
            *last = id;
        if (src < 0)
            continue;
        if (zsock_send(st->pipe, "si8sss", "COMMAND", src, (uint64_t) id, PQgetvalue(res, r, 2),
                       PQgetvalue(res, r, 3), PQgetisnull(res, r, 4) ? "{}" : PQgetvalue(res, r, 4)) < 0) {
            /* the ingest loop is not reading (stopping?): these stay `sent`, delivered later */
            rows = -1;
            break;
        }
        counts[src]++;
    }
    PQclear(res);
    return rows;
}

/* Hands over every command due for the connected sources, page by page. */
static void s_round(state_t *st)
{
    st->wake = false;
    st->next_round = zclock_mono() + TICK_MS;
    size_t n = st->n, nopen = 0;
    for (size_t i = 0; i < n; i++)
        nopen += st->open[i];
    if (nopen == 0)
        return;
    size_t len = n * 66 + 3;
    char *open = malloc(len), *fresh = malloc(len);
    int *counts = calloc(n, sizeof *counts);
    if (open && fresh && counts) {
        s_names(st, st->open, open, len);
        s_names(st, st->fresh, fresh, len);
        int64_t last = 0;
        int rows;
        while ((rows = s_page(st, open, fresh, &last, counts)) == PAGE)
            ;
        if (rows >= 0)
            memset(st->fresh, 0, n * sizeof *st->fresh);     /* else: again next round */
        for (size_t i = 0; i < n; i++)
            if (counts[i])
                cv_info(COMP, "source %s: %d command(s) handed to its adapter", st->config->sources[i].name,
                        counts[i]);
    }
    free(open);
    free(fresh);
    free(counts);
    /* notifications that arrived during the queries wait in libpq's buffer */
    PGnotify *note;
    while (st->conn && (note = PQnotifies(st->conn))) {
        st->wake = true;
        PQfreemem(note);
    }
}

/* ---- the thread ------------------------------------------------------------ */

/* Handles one message from the ingest loop; false on $TERM. */
static bool s_on_pipe(state_t *st)
{
    zmsg_t *msg = zmsg_recv(st->pipe);
    if (!msg)
        return false;
    char *cmd = zmsg_popstr(msg);
    bool go_on = cmd && strcmp(cmd, "$TERM") != 0;
    if (go_on && strcmp(cmd, "SESSION") == 0) {
        char *src = zmsg_popstr(msg), *open = zmsg_popstr(msg);
        long i = src ? strtol(src, NULL, 10) : -1;
        if (i >= 0 && (size_t) i < st->n && open) {
            st->open[i] = open[0] == '1';
            st->fresh[i] = st->open[i];
            st->wake |= st->open[i];
        }
        free(src);
        free(open);
    }
    else if (go_on && strcmp(cmd, "SOURCES") == 0) {
        /* a reload appended sources: their names were written before this
           message was sent, and existing entries never move */
        char *count = zmsg_popstr(msg);
        long n = count ? strtol(count, NULL, 10) : -1;
        if (n > (long) st->n && n <= CV_MAX_SOURCES)
            st->n = (size_t) n;
        free(count);
    }
    free(cmd);
    zmsg_destroy(&msg);
    return go_on;
}

/* The weak-match proposals job: idempotent, so a missed or repeated run is
   harmless. Skipped while identity resolution (004_identity.sql) is absent. */
static void s_propose(state_t *st)
{
    st->next_propose = zclock_mono() + st->config->identity_propose_interval_ms;
    PGresult *res = PQexec(st->conn, "SELECT CASE WHEN to_regprocedure('cv_identity_propose()') IS NULL"
                                     " THEN NULL ELSE cv_identity_propose()::text END");
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        cv_warn(COMP, "identity proposals job failed: SQLSTATE %s",
                PQresultErrorField(res, PG_DIAG_SQLSTATE) ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : "?");
    else if (!PQgetisnull(res, 0, 0) && strcmp(PQgetvalue(res, 0, 0), "0") != 0)
        cv_info(COMP, "identity: %s new merge proposal(s) for agents", PQgetvalue(res, 0, 0));
    PQclear(res);
}

static void s_actor(zsock_t *pipe, void *arg)
{
    cv_commander_t *self = arg;
    state_t st = { .config = self->config, .pipe = pipe, .backoff_ms = 100 };
    st.n = self->config->nsources;
    st.open = calloc(CV_MAX_SOURCES, sizeof *st.open);      /* room for sources a reload adds */
    st.fresh = calloc(CV_MAX_SOURCES, sizeof *st.fresh);
    zsock_set_sndtimeo(pipe, 1000);            /* never stuck when the ingest loop stops reading */
    zsock_signal(pipe, 0);
    if (!st.open || !st.fresh) {
        cv_error(COMP, "out of memory: commands will not be delivered");
        while (s_on_pipe(&st))
            ;
        free(st.open);
        free(st.fresh);
        return;
    }
    s_connect(&st);
    while (true) {
        int64_t now = zclock_mono();
        if (!st.conn && now >= st.next_connect)
            s_connect(&st);
        if (st.conn && (st.wake || now >= st.next_round))
            s_round(&st);
        if (st.conn && st.config->identity_propose_interval_ms > 0 && now >= st.next_propose)
            s_propose(&st);
        int64_t until = st.conn ? st.next_round : st.next_connect;
        long wait = (long) (until - zclock_mono());
        zmq_pollitem_t items[2] = {
            { zsock_resolve(pipe), 0, ZMQ_POLLIN, 0 },
            { NULL, st.conn ? PQsocket(st.conn) : -1, ZMQ_POLLIN, 0 },
        };
        int rc = zmq_poll(items, st.conn ? 2 : 1, wait < 0 ? 0 : wait);
        if (rc < 0 && zmq_errno() != EINTR)
            break;
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN) && !s_on_pipe(&st))
            break;
        if (rc > 0 && st.conn && (items[1].revents & ZMQ_POLLIN))
            s_on_notify(&st);
    }
    PQfinish(st.conn);
    free(st.open);
    free(st.fresh);
}

/* ---- public API -------------------------------------------------------------- */

cv_commander_t *cv_commander_new(const cv_hub_config_t *config)
{
    cv_commander_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->actor = zactor_new(s_actor, self);
    if (!self->actor) {
        free(self);
        return NULL;
    }
    return self;
}

void cv_commander_destroy(cv_commander_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cv_commander_t *self = *self_p;
    zactor_destroy(&self->actor);
    free(self);
    *self_p = NULL;
}

zsock_t *cv_commander_sock(cv_commander_t *self)
{
    return zactor_sock(self->actor);
}

void cv_commander_session(cv_commander_t *self, int source, bool open)
{
    zmsg_t *msg = zmsg_new();
    zmsg_addstr(msg, "SESSION");
    zmsg_addstrf(msg, "%d", source);
    zmsg_addstr(msg, open ? "1" : "0");
    void *sock = zsock_resolve(zactor_sock(self->actor));
    size_t parts = zmsg_size(msg);
    for (size_t i = 0; i < parts; i++) {
        zframe_t *f = zmsg_pop(msg);
        int more = i + 1 < parts ? ZMQ_SNDMORE : 0;
        if (zmq_send(sock, zframe_data(f), zframe_size(f), more | ZMQ_DONTWAIT) < 0 && i == 0) {
            zframe_destroy(&f);
            cv_warn(COMP, "busy: news of a session dropped (the next poll catches up)");
            break;
        }
        zframe_destroy(&f);
    }
    zmsg_destroy(&msg);
}

void cv_commander_sources(cv_commander_t *self, size_t n)
{
    char count[24];
    snprintf(count, sizeof count, "%zu", n);
    zstr_sendx(self->actor, "SOURCES", count, NULL);
}

int cv_commander_recv(cv_commander_t *self, cv_command_t *command)
{
    memset(command, 0, sizeof *command);
    char *cmd = NULL;
    uint64_t id = 0;
    int src = -1;
    if (zsock_recv(self->actor, "si8sss", &cmd, &src, &id, &command->kind, &command->key,
                   &command->payload) < 0 || !cmd || strcmp(cmd, "COMMAND") != 0
        || !command->kind || !command->key || !command->payload) {
        free(cmd);
        cv_commander_command_clear(command);
        return -1;
    }
    free(cmd);
    command->source = src;
    command->id = id;
    return 0;
}

void cv_commander_command_clear(cv_command_t *command)
{
    free(command->kind);
    free(command->key);
    free(command->payload);
    memset(command, 0, sizeof *command);
}

/* ---- the writer side ---------------------------------------------------------- */

static const char *s_results_sql =
    "SELECT o_idx, o_outcome, o_event_seq, o_request_id, o_tracking_code, o_event::text "
    "FROM cv_command_results($1::jsonb)";

static bool s_is_data_error(const char *state)
{
    return state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0
                     || strcmp(state, "54000") == 0);
}

static int s_exec(PGconn *conn, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc < 0) {
        const char *msg = PQerrorMessage(conn);
        snprintf(err, errlen, "%s: %.*s", sql, (int) strcspn(msg, "\n"), msg);
    }
    PQclear(res);
    return rc;
}

/* The results as cv_command_results wants them; NULL when there are none. */
static char *s_results_json(cv_store_item_t *items, size_t n)
{
    json_t *array = json_array();
    for (size_t i = 0; i < n; i++) {
        cv_store_item_t *it = &items[i];
        if (it->kind != CV_ITEM_RESULT)
            continue;
        json_decref(it->event);              /* from a previous attempt of the batch */
        it->event = NULL;
        json_t *el = json_pack("{s:I, s:s, s:O, s:O, s:O, s:s}", "idx", (json_int_t) i,
                               "source", it->source,
                               "command", json_object_get(it->record, "command"),
                               "outcome", json_object_get(it->record, "outcome"),
                               "detail", json_object_get(it->record, "detail"),
                               "hash", it->content_hash);
        if (el)
            json_array_append_new(array, el);
    }
    char *text = json_array_size(array) ? json_dumps(array, JSON_COMPACT) : NULL;
    json_decref(array);
    return text;
}

static void s_read_result(cv_store_item_t *it, PGresult *res, int r)
{
    const char *outcome = PQgetvalue(res, r, 1);
    if (strcmp(outcome, "unknown") == 0) {
        it->outcome = CV_OUT_DEAD_LETTERED;
        snprintf(it->reason, sizeof it->reason, "unknown_command");
        snprintf(it->detail, sizeof it->detail, "command %" JSON_INTEGER_FORMAT " does not exist for this source",
                 json_integer_value(json_object_get(it->record, "command")));
        return;
    }
    it->outcome = strcmp(outcome, "recorded") == 0 ? CV_OUT_STORED : CV_OUT_DUPLICATE;
    it->event_seq = PQgetisnull(res, r, 2) ? 0 : strtoll(PQgetvalue(res, r, 2), NULL, 10);
    it->request_id = PQgetisnull(res, r, 3) ? 0 : strtoll(PQgetvalue(res, r, 3), NULL, 10);
    snprintf(it->tracking_code, sizeof it->tracking_code, "%s", PQgetvalue(res, r, 4));
    if (it->outcome == CV_OUT_STORED && !PQgetisnull(res, r, 5))
        it->event = json_loads(PQgetvalue(res, r, 5), 0, NULL);
}

int cv_commander_store_results(PGconn *conn, cv_store_item_t *items, size_t n, char *err, size_t errlen)
{
    char *text = s_results_json(items, n);
    if (!text)
        return 0;                            /* the usual case: no result in this batch */
    if (s_exec(conn, "SAVEPOINT cv_results", err, errlen) < 0) {
        free(text);
        return -1;
    }
    const char *params[1] = { text };
    PGresult *res = PQexecParams(conn, s_results_sql, 1, NULL, params, NULL, NULL, 0);
    free(text);
    int rc = 0;
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        for (int r = 0; r < PQntuples(res); r++) {
            size_t idx = strtoull(PQgetvalue(res, r, 0), NULL, 10);
            if (idx < n && items[idx].kind == CV_ITEM_RESULT)
                s_read_result(&items[idx], res, r);
        }
        for (size_t i = 0; i < n; i++)
            if (items[i].kind == CV_ITEM_RESULT && items[i].outcome == CV_OUT_NONE) {
                snprintf(err, errlen, "cv_command_results gave no outcome for item %zu", i);
                rc = -1;
            }
    }
    else if (s_is_data_error(PQresultErrorField(res, PG_DIAG_SQLSTATE))) {
        /* values PostgreSQL refuses (never expected: the hub checked them) */
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        for (size_t i = 0; i < n; i++)
            if (items[i].kind == CV_ITEM_RESULT) {
                items[i].outcome = CV_OUT_DEAD_LETTERED;
                snprintf(items[i].reason, sizeof items[i].reason, "data_error");
                snprintf(items[i].detail, sizeof items[i].detail, "SQLSTATE %s", state);
            }
        cv_warn(COMP, "command results refused by PostgreSQL (SQLSTATE %s): dead-lettered", state);
        PQclear(res);
        return s_exec(conn, "ROLLBACK TO SAVEPOINT cv_results", err, errlen);
    }
    else {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char *msg = PQerrorMessage(conn);
        snprintf(err, errlen, "cv_command_results: SQLSTATE %s: %.*s", state ? state : "?",
                 (int) strcspn(msg, "\n"), msg);
        rc = -1;
    }
    PQclear(res);
    if (rc == 0)
        rc = s_exec(conn, "RELEASE SAVEPOINT cv_results", err, errlen);
    return rc;
}
