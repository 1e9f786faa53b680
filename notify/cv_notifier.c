/*  cv_notifier — see cv_notifier.h. Single-threaded: the sends are the slow
    part and go one at a time, in not_before order; each is its own pair of
    short transactions around the network call, never one held open over
    it. Every statement is parameterised. */
#include "cv_notifier.h"

#include "cv_alloc.h"
#include "cv_buf.h"
#include "cv_hash.h"
#include "cv_http_out.h"
#include "cv_log.h"
#include "cv_mail.h"
#include "cv_replyaddr.h"
#include "cv_smtp.h"
#include "cv_template.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCK_SQL "SELECT pg_try_advisory_lock(1667856994, 20)"    /* 'civb', 20: the notifier */
#define PICK_MAX 20

enum { T_ACK = 0, T_STATUS, T_DIGEST, T_CDIGEST, T_COUNT };
static const char *const s_tnames[T_COUNT] = { "accuse_reception", "changement_statut", "digest_service",
                                                "digest_citoyen" };
static const char *const s_placeholders[] = { "code", "statut", "lien", "categorie", "service", "ville", "date",
                                              "liste", "nombre_retard", "nombre_bientot", "nombre", NULL };

struct cv_notifier {
    const cv_notify_config_t *cfg;
    cv_template_t *tpl[T_COUNT];
    PGconn *db;
    char *webhooks;              /* {a,b} for cv_notify_plan */
};

/* what a template's placeholders read */
typedef struct {
    const char *code, *statut, *lien, *categorie, *service, *ville, *date, *liste;
    char retard[16], bientot[16], nombre[16];
} values_t;

static const char *s_value(void *arg, const char *name)
{
    values_t *v = arg;
    if (!strcmp(name, "code")) return v->code;
    if (!strcmp(name, "statut")) return v->statut;
    if (!strcmp(name, "lien")) return v->lien;
    if (!strcmp(name, "categorie")) return v->categorie;
    if (!strcmp(name, "service")) return v->service;
    if (!strcmp(name, "ville")) return v->ville;
    if (!strcmp(name, "date")) return v->date;
    if (!strcmp(name, "liste")) return v->liste;
    if (!strcmp(name, "nombre_retard")) return v->retard;
    if (!strcmp(name, "nombre_bientot")) return v->bientot;
    if (!strcmp(name, "nombre")) return v->nombre;
    return NULL;
}

static const char *s_status_fr(const char *s)
{
    static const char *const map[][2] = {
        { "received", "reçue" },           { "acknowledged", "prise en compte" }, { "in_progress", "en cours" },
        { "waiting_citizen", "en attente de votre réponse" }, { "resolved", "traitée" },
        { "rejected", "refusée" },         { "closed", "close" },                 { "cancelled", "annulée" } };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (!strcmp(map[i][0], s))
            return map[i][1];
    return s;
}

cv_notifier_t *cv_notifier_new(const cv_notify_config_t *cfg, char *err, size_t errlen)
{
    cv_notifier_t *self = cv_zcalloc(1, sizeof *self);
    self->cfg = cfg;
    for (int t = 0; t < T_COUNT; t++)
        if (!(self->tpl[t] = cv_template_load(cfg->templates, s_tnames[t], s_placeholders, err, errlen))) {
            cv_notifier_destroy(&self);
            return NULL;
        }
    cv_buf_t b = { 0 };
    cv_buf_addstr(&b, "{");
    for (size_t i = 0; i < cfg->nwebhooks; i++) {
        if (i)
            cv_buf_addstr(&b, ",");
        cv_buf_addstr(&b, cfg->webhooks[i].name);     /* a-z 0-9 _ - (the config checks) */
    }
    cv_buf_addstr(&b, "}");
    self->webhooks = cv_buf_take(&b);
    return self;
}

void cv_notifier_destroy(cv_notifier_t **self_p)
{
    cv_notifier_t *self = *self_p;
    if (!self)
        return;
    for (int t = 0; t < T_COUNT; t++)
        cv_template_destroy(&self->tpl[t]);
    if (self->db)
        PQfinish(self->db);
    free(self->webhooks);
    free(self);
    *self_p = NULL;
}

/* Runs a statement; returns its result when it succeeded (caller clears), else
   logs once with the SQLSTATE and returns NULL. */
static PGresult *s_exec(cv_notifier_t *self, const char *what, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(self->db, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    cv_error("db", "%s: %s (SQLSTATE %s)", what, PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) ?
             PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : PQerrorMessage(self->db), state ? state : "-");
    PQclear(r);
    return NULL;
}

static int s_run(cv_notifier_t *self, const char *what, const char *sql, int n, const char *const *params)
{
    PGresult *r = s_exec(self, what, sql, n, params);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

int cv_notifier_connect(cv_notifier_t *self, char *err, size_t errlen)
{
    const cv_notify_config_t *cfg = self->cfg;
    if (self->db)
        PQfinish(self->db);
    self->db = PQconnectdb(cfg->conninfo);
    if (PQstatus(self->db) != CONNECTION_OK) {
        snprintf(err, errlen, "postgres: cannot connect (%s)", strtok(PQerrorMessage(self->db), "\n"));
        return -1;
    }
    PGresult *r = s_exec(self, "lock", LOCK_SQL, 0, NULL);
    if (!r) {
        snprintf(err, errlen, "postgres: cannot take the notifier's lock");
        return -1;
    }
    bool got = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!got) {
        snprintf(err, errlen, "another civibus-notify runs on this database (one at a time)");
        return -1;
    }
    if (s_run(self, "session", "SET synchronous_commit = on", 0, NULL) < 0 ||
        !(r = s_exec(self, "schema", "SELECT to_regclass('notifications') IS NOT NULL", 0, NULL))) {
        snprintf(err, errlen, "postgres: the session cannot be set up");
        return -1;
    }
    got = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!got) {
        snprintf(err, errlen, "the database has no notifications table: start civibus-hub once (it applies "
                              "migration 026)");
        return -1;
    }
    /* a send in flight when the notifier died: its outcome is lost, never repeated */
    r = s_exec(self, "recover",
               "UPDATE notifications SET state = 'unknown', last_error = 'interrupted', updated_at = now(), "
               "done_at = now() WHERE state = 'sending'", 0, NULL);
    if (!r) {
        snprintf(err, errlen, "postgres: cannot read the ledger");
        return -1;
    }
    const char *n = PQcmdTuples(r);
    cv_info("notify", "%s interrupted send(s) recorded unknown (never sent again)", n);
    PQclear(r);
    const char *p[1] = { cfg->start_from_end ? "end" : "beginning" };
    if (s_run(self, "cursor",
              "INSERT INTO notify_cursor (id, last_event_id) SELECT 1, CASE WHEN $1 = 'end' "
              "THEN COALESCE((SELECT max(id) FROM events), 0) ELSE 0 END ON CONFLICT (id) DO NOTHING",
              1, p) < 0 ||
        !(r = s_exec(self, "counts",
                     "SELECT (SELECT last_event_id FROM notify_cursor), count(*) FILTER (WHERE state = 'unknown'), "
                     "count(*) FILTER (WHERE state = 'planned'), count(*) FILTER (WHERE state = 'sent') "
                     "FROM notifications", 0, NULL))) {
        snprintf(err, errlen, "postgres: cannot set the cursor");
        return -1;
    }
    cv_info("notify", "cursor at event %s; ledger: %s unknown, %s planned, %s sent", PQgetvalue(r, 0, 0),
            PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3));
    PQclear(r);
    return 0;
}

/* After a restore of the database (docs/backup.md):
   the ledger went back to the backup's point, so a row 'planned' there may
   have been sent since, and the events the adapters resent are new rows of
   events the notifier may have told already. The notifier promises at most
   once: every 'planned' row becomes 'unknown' (last_error 'restored') and
   the cursor moves to the last event, in one statement. */
int cv_notifier_after_restore(cv_notifier_t *self, char *out, size_t outlen)
{
    PGresult *r = s_exec(self, "after restore",
                         "WITH old AS (SELECT last_event_id FROM notify_cursor WHERE id = 1), "
                         "p AS (UPDATE notifications SET state = 'unknown', last_error = 'restored', "
                         "updated_at = now(), done_at = now() WHERE state = 'planned' RETURNING 1), "
                         "c AS (UPDATE notify_cursor SET last_event_id = GREATEST(last_event_id, "
                         "COALESCE((SELECT max(id) FROM events), 0)), updated_at = now() WHERE id = 1 "
                         "RETURNING last_event_id) "
                         "SELECT (SELECT count(*) FROM p), (SELECT last_event_id FROM old), "
                         "(SELECT last_event_id FROM c)", 0, NULL);
    if (!r)
        return -1;
    snprintf(out, outlen, "after restore: %s planned notification(s) recorded unknown (never sent); "
             "cursor moved from event %s to %s (those events tell nobody)", PQgetvalue(r, 0, 0),
             PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
    PQclear(r);
    return 0;
}

/* (1) plan: every event after the cursor, batch by batch */
static int s_plan(cv_notifier_t *self, bool *busy)
{
    const cv_notify_config_t *cfg = self->cfg;
    char batch[16], coalesce[16];
    snprintf(batch, sizeof batch, "%d", cfg->batch);
    snprintf(coalesce, sizeof coalesce, "%d", cfg->coalesce_s);
    const char *p[6] = { batch, coalesce, self->webhooks, cfg->sms_url ? cfg->sms_default : NULL, cfg->timezone,
                         cfg->digest_at };
    if (s_run(self, "plan", "BEGIN", 0, NULL) < 0)
        return -1;
    PGresult *r = s_exec(self, "plan",
                         "SELECT planned, last_event, (SELECT count(*) FROM events WHERE id > last_event) > 0 "
                         "FROM cv_notify_plan($1::int, $2::int, $3::text[], $4, $5, $6::time)", 6, p);
    if (!r) {
        s_run(self, "plan", "ROLLBACK", 0, NULL);
        return -1;
    }
    int planned = atoi(PQgetvalue(r, 0, 0));
    if (strcmp(PQgetvalue(r, 0, 2), "t") == 0)
        *busy = true;
    if (planned)
        cv_debug("notify", "planned %d notification(s), cursor at event %s", planned, PQgetvalue(r, 0, 1));
    PQclear(r);
    return s_run(self, "plan", "COMMIT", 0, NULL);
}

/* (2) the services' digests due now: one row per (service, day) */
static int s_digests(cv_notifier_t *self)
{
    const cv_notify_config_t *cfg = self->cfg;
    for (size_t i = 0; i < cfg->nsupervisors; i++) {
        char who[300];
        snprintf(who, sizeof who, "supervisor:%s", cfg->supervisors[i].service);
        const char *p[4] = { who, cfg->supervisors[i].address, cfg->timezone, cfg->supervisor_at };
        if (s_run(self, "digest",
                  "INSERT INTO notifications (recipient, channel, template, address, digest_day) "
                  "SELECT $1, 'email', 'digest_service', $2, (now() AT TIME ZONE $3)::date "
                  "WHERE (now() AT TIME ZONE $3)::time >= $4::time "
                  "ON CONFLICT (recipient, channel, digest_day) WHERE digest_day IS NOT NULL DO NOTHING",
                  4, p) < 0)
            return -1;
    }
    return 0;
}

typedef struct {
    const char *id, *recipient, *channel, *template, *status, *address, *code, *category, *service, *request_id,
        *event_id, *day, *citizen_id;
    int attempts;
} row_t;

/* The digest's list: the service's open requests overdue or due within soon_days. */
static int s_digest_list(cv_notifier_t *self, const char *service, cv_buf_t *list, values_t *v)
{
    char days[16];
    snprintf(days, sizeof days, "%d", self->cfg->soon_days);
    const char *p[3] = { service, days, self->cfg->timezone };
    PGresult *r = s_exec(self, "digest list",
                         "SELECT tracking_code, COALESCE(category, '-'), to_char(due_at AT TIME ZONE $3, "
                         "'DD/MM/YYYY HH24:MI'), due_at < now() FROM requests WHERE service = $1 "
                         "AND due_at IS NOT NULL AND due_at < now() + make_interval(days => $2::int) "
                         "AND status IN ('received', 'acknowledged', 'in_progress') ORDER BY due_at, id LIMIT 500",
                         3, p);
    if (!r)
        return -1;
    int late = 0, soon = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        bool over = strcmp(PQgetvalue(r, i, 3), "t") == 0;
        over ? late++ : soon++;
        cv_buf_addstr(list, over ? "- EN RETARD  " : "- bientôt    ");
        cv_buf_addstr(list, PQgetvalue(r, i, 0));
        cv_buf_addstr(list, "  échéance ");
        cv_buf_addstr(list, PQgetvalue(r, i, 2));
        cv_buf_addstr(list, "  ");
        cv_buf_addstr(list, PQgetvalue(r, i, 1));
        cv_buf_addstr(list, "\n");
    }
    if (PQntuples(r) == 0)
        cv_buf_addstr(list, "Aucune demande en retard ni proche de son échéance.\n");
    PQclear(r);
    snprintf(v->retard, sizeof v->retard, "%d", late);
    snprintf(v->bientot, sizeof v->bientot, "%d", soon);
    return 0;
}

/* "{id}": the rows a claim or an outcome is about when they are the row alone. */
static const char *s_ids(const row_t *row, const char *ids, char *buf, size_t len)
{
    if (ids)
        return ids;
    snprintf(buf, len, "{%s}", row->id);
    return buf;
}

/* Writes the outcome of a send for the rows ids (NULL: the row alone). */
static int s_outcome(cv_notifier_t *self, const row_t *row, const char *ids, cv_send_t out, const char *code)
{
    const cv_notify_config_t *cfg = self->cfg;
    char one[40];
    ids = s_ids(row, ids, one, sizeof one);
    char delay[32];
    long d = cfg->retry_base_s;
    for (int i = 1; i < row->attempts && d < cfg->retry_max_s; i++)
        d *= 2;
    if (d > cfg->retry_max_s)
        d = cfg->retry_max_s;
    snprintf(delay, sizeof delay, "%ld", d);
    const char *state = out == CV_SEND_OK ? "sent" : out == CV_SEND_FAILED ? "failed" : out == CV_SEND_UNKNOWN ? "unknown"
                        : row->attempts >= cfg->max_attempts                  ? "failed" : "planned";
    const char *p[4] = { ids, state, out == CV_SEND_OK ? NULL : code, delay };
    if (strcmp(state, "planned") != 0)
        cv_info("send", "notification %s (%s, %s): %s %s", row->id, row->channel, row->template, state, code);
    else
        cv_warn("send", "notification %s (%s, %s): %s, attempt %d, again in %s s", row->id, row->channel,
                row->template, code, row->attempts, delay);
    return s_run(self, "outcome",
                 "UPDATE notifications SET state = $2, last_error = $3, updated_at = now(), "
                 "not_before = CASE WHEN $2 = 'planned' THEN now() + make_interval(secs => $4::int) ELSE not_before END, "
                 "done_at = CASE WHEN $2 = 'planned' THEN NULL ELSE now() END WHERE id = ANY($1::bigint[]) AND state = 'sending'",
                 4, p);
}

/* Claims a row: 'sending' committed (its Message-ID in mail_threads), or
   'skipped' when its address was suppressed since it was planned; ids: the
   rows (NULL: the row alone). Returns 1 claimed, 0 not to send, -1 db error. */
static int s_claim(cv_notifier_t *self, row_t *row, const char *ids, const char *msgid_hash)
{
    char one[40];
    const char *p[3] = { s_ids(row, ids, one, sizeof one), row->address, msgid_hash };
    if (s_run(self, "claim", "BEGIN", 0, NULL) < 0)
        return -1;
    PGresult *r = s_exec(self, "claim",
                         "UPDATE notifications n SET state = CASE WHEN s.address IS NULL THEN 'sending' ELSE 'skipped' END, "
                         "last_error = CASE WHEN s.address IS NULL THEN last_error ELSE 'suppressed' END, "
                         "attempts = attempts + CASE WHEN s.address IS NULL THEN 1 ELSE 0 END, updated_at = now(), "
                         "done_at = CASE WHEN s.address IS NULL THEN NULL ELSE now() END, "
                         "message_id_hash = COALESCE($3, n.message_id_hash) "
                         "FROM (SELECT 1) one LEFT JOIN email_suppressions s ON s.address = lower($2) "
                         "WHERE n.id = ANY($1::bigint[]) AND n.state = 'planned' RETURNING n.state, n.attempts", 3, p);
    if (!r) {
        s_run(self, "claim", "ROLLBACK", 0, NULL);
        return -1;
    }
    int rc = PQntuples(r) >= 1 && strcmp(PQgetvalue(r, 0, 0), "sending") == 0 ? 1 : 0;
    row->attempts = 0;
    for (int i = 0; rc && i < PQntuples(r); i++)       /* a digest's rows: the most tried one counts */
        if (atoi(PQgetvalue(r, i, 1)) > row->attempts)
            row->attempts = atoi(PQgetvalue(r, i, 1));
    PQclear(r);
    if (rc && msgid_hash && row->request_id[0]) {
        const char *q[2] = { msgid_hash, row->request_id };
        if (s_run(self, "claim", "INSERT INTO mail_threads (message_id_hash, request_id, direction) "
                                 "VALUES ($1, $2::bigint, 'out') ON CONFLICT DO NOTHING", 2, q) < 0) {
            s_run(self, "claim", "ROLLBACK", 0, NULL);
            return -1;
        }
    }
    return s_run(self, "claim", "COMMIT", 0, NULL) < 0 ? -1 : rc;
}

/* Writes the mail of template t with the values v, claims the rows ids
   (NULL: the row alone; a citizen's digest: all of its rows) and sends
   it. reply: the signed Reply-To, or NULL. */
static int s_deliver(cv_notifier_t *self, row_t *row, const char *ids, int t, values_t *v, const char *reply)
{
    const cv_notify_config_t *cfg = self->cfg;
    char msgid[300], hash[CV_HASH_HEX_LEN + 1], code[64] = "";
    cv_buf_t subj = { 0 }, text = { 0 }, html = { 0 }, msg = { .limit = 4 << 20 };
    int rc = 0;
    cv_mail_message_id(cfg->msgid_domain, msgid, sizeof msgid);
    cv_hash_bytes(msgid, strlen(msgid), hash);
    cv_buf_addstr(&subj, cfg->subject_prefix);
    cv_buf_addstr(&subj, " ");
    cv_template_render(self->tpl[t], s_value, v, &subj, &text, &html);
    cv_mail_t m = { .from = cfg->from, .from_name = cfg->from_name, .to = row->address, .reply_to = reply,
                    .message_id = msgid, .subject = subj.data, .text = text.data ? text.data : "",
                    .html = html.data ? html.data : "" };
    if (cv_mail_compose(&m, &msg) < 0) {
        /* an address the ledger holds but a header cannot: never sent */
        char one[40];
        const char *p[1] = { s_ids(row, ids, one, sizeof one) };
        cv_warn("send", "notification %s: the address is not one a header can hold: skipped", row->id);
        rc = s_run(self, "skip", "UPDATE notifications SET state = 'skipped', last_error = 'bad_address', "
                                 "address = NULL, updated_at = now(), done_at = now() "
                                 "WHERE id = ANY($1::bigint[]) AND state = 'planned'", 1, p);
        goto done;
    }
    int claimed = s_claim(self, row, ids, hash);
    if (claimed <= 0) {
        rc = claimed;
        goto done;
    }
    cv_send_t out = cv_smtp_send(cfg, row->address, msg.data, msg.len, code, sizeof code);
    rc = s_outcome(self, row, ids, out, code);
done:
    cv_buf_free(&subj), cv_buf_free(&text), cv_buf_free(&html), cv_buf_free(&msg);
    return rc;
}

static int s_send_email(cv_notifier_t *self, row_t *row)
{
    const cv_notify_config_t *cfg = self->cfg;
    int t = !strcmp(row->template, "accuse_reception") ? T_ACK : !strcmp(row->template, "digest_service") ? T_DIGEST
                                                                                                             : T_STATUS;
    values_t v = { .code = row->code, .statut = s_status_fr(row->status), .categorie = row->category,
                   .service = row->service, .ville = cfg->city, .date = row->day };
    char link[600], reply[400];
    snprintf(link, sizeof link, "%s/suivi/%s", cfg->public_url, row->code);
    v.lien = link;
    cv_buf_t list = { 0 };
    bool have_reply = false;
    if (t == T_DIGEST) {
        v.service = strchr(row->recipient, ':') + 1;
        v.code = "";
        v.lien = cfg->public_url;
        if (s_digest_list(self, v.service, &list, &v) < 0)
            return -1;
        v.liste = list.data;
    } else {
        have_reply = cv_replyaddr_make(cfg->reply_key, cfg->reply_keylen, cfg->intake, row->code, reply,
                                       sizeof reply) == 0;
    }
    int rc = s_deliver(self, row, NULL, t, &v, have_reply ? reply : NULL);
    cv_buf_free(&list);
    return rc;
}

/* A citizen's daily digest: every row of theirs due now (template
   digest_citoyen, planned so by cv_notify_person) in one mail, one line per
   change. The rows share the mail's fate: sent, failed, unknown or back to
   planned together. Replies thread when the digest is about one request. */
static int s_send_cdigest(cv_notifier_t *self, row_t *row)
{
    const cv_notify_config_t *cfg = self->cfg;
    const char *p[3] = { row->recipient, row->address, cfg->timezone };
    PGresult *r = s_exec(self, "digest rows",
                         "SELECT n.id, r.tracking_code, COALESCE(n.status, ''), COALESCE(r.category, '-'), "
                         "to_char(COALESCE(e.occurred_at, n.created_at) AT TIME ZONE $3, 'DD/MM/YYYY HH24:MI'), "
                         "n.request_id, to_char(now() AT TIME ZONE $3, 'DD/MM/YYYY') "
                         "FROM notifications n JOIN requests r ON r.id = n.request_id "
                         "LEFT JOIN events e ON e.id = n.event_id "
                         "WHERE n.state = 'planned' AND n.template = 'digest_citoyen' AND n.channel = 'email' "
                         "AND n.recipient = $1 AND n.address = $2 AND n.not_before <= now() ORDER BY n.id LIMIT 200",
                         3, p);
    if (!r)
        return -1;
    int n = PQntuples(r), rc = 0;
    if (n == 0) {                /* already sent with an earlier row of the same pick */
        PQclear(r);
        return 0;
    }
    cv_buf_t ids = { 0 }, list = { 0 };
    bool one = true;
    cv_buf_addstr(&ids, "{");
    for (int i = 0; i < n; i++) {
        if (i)
            cv_buf_addstr(&ids, ",");
        cv_buf_addstr(&ids, PQgetvalue(r, i, 0));
        one = one && !strcmp(PQgetvalue(r, i, 5), PQgetvalue(r, 0, 5));
        cv_buf_addstr(&list, "- ");
        cv_buf_addstr(&list, PQgetvalue(r, i, 4));
        cv_buf_addstr(&list, "  demande ");
        cv_buf_addstr(&list, PQgetvalue(r, i, 1));
        cv_buf_addstr(&list, " (");
        cv_buf_addstr(&list, PQgetvalue(r, i, 3));
        cv_buf_addstr(&list, ") : ");
        cv_buf_addstr(&list, s_status_fr(PQgetvalue(r, i, 2)));
        cv_buf_addstr(&list, "\n  ");
        cv_buf_addstr(&list, cfg->public_url);
        cv_buf_addstr(&list, "/suivi/");
        cv_buf_addstr(&list, PQgetvalue(r, i, 1));
        cv_buf_addstr(&list, "\n");
    }
    cv_buf_addstr(&ids, "}");
    char reply[400], code[40], day[16], rid[24];
    snprintf(code, sizeof code, "%s", PQgetvalue(r, 0, 1));
    snprintf(day, sizeof day, "%s", PQgetvalue(r, 0, 6));
    snprintf(rid, sizeof rid, "%s", PQgetvalue(r, 0, 5));
    PQclear(r);
    values_t v = { .code = one ? code : "", .ville = cfg->city, .date = day, .liste = list.data,
                   .lien = cfg->public_url };
    snprintf(v.nombre, sizeof v.nombre, "%d", n);
    bool have_reply = one && cv_replyaddr_make(cfg->reply_key, cfg->reply_keylen, cfg->intake, code, reply,
                                               sizeof reply) == 0;
    row_t g = *row;
    g.request_id = one ? rid : "";            /* mail_threads: only when one request */
    rc = s_deliver(self, &g, ids.data, T_CDIGEST, &v, have_reply ? reply : NULL);
    cv_buf_free(&ids), cv_buf_free(&list);
    return rc;
}

/* A webhook: the notification's facts, no personal data (the citizen's id
   only when the webhook's config says citizen_id: true). */
static int s_send_webhook(cv_notifier_t *self, row_t *row)
{
    const cv_notify_config_t *cfg = self->cfg;
    const cv_notify_webhook_t *h = NULL;
    for (size_t i = 0; i < cfg->nwebhooks; i++)
        if (!strcmp(cfg->webhooks[i].name, row->address))
            h = &cfg->webhooks[i];
    if (!h) {
        const char *p[1] = { row->id };
        cv_warn("send", "notification %s: webhook %s is no longer configured: skipped", row->id, row->address);
        return s_run(self, "skip", "UPDATE notifications SET state = 'skipped', last_error = 'not_configured', "
                                   "updated_at = now(), done_at = now() WHERE id = $1::bigint", 1, p);
    }
    json_t *b = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s}", "notification", (json_int_t) atoll(row->id),
                          "event", (json_int_t) atoll(row->event_id), "template", row->template, "tracking_code",
                          row->code, "status", row->status, "service", row->service, "category", row->category,
                          "status_page", "");
    char link[600];
    snprintf(link, sizeof link, "%s/suivi/%s", cfg->public_url, row->code);
    json_object_set_new(b, "status_page", json_string(link));
    if (h->personal && row->citizen_id[0])
        json_object_set_new(b, "citizen_id", json_integer(atoll(row->citizen_id)));
    char *body = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(b);
    char sig[72], hdr[120], code[64] = "";
    cv_http_sign(h->secret, h->secretlen, body, strlen(body), sig);
    snprintf(hdr, sizeof hdr, "X-Civibus-Signature: %s", sig);
    const char *headers[2] = { hdr, NULL };
    int claimed = s_claim(self, row, NULL, NULL), rc = claimed;
    if (claimed > 0)
        rc = s_outcome(self, row, NULL, cv_http_post(h->url, headers, body, strlen(body), cfg->timeout_s, code, sizeof code),
                       code);
    free(body);
    return rc;
}

/* An SMS through the gateway: {"to": phone, "text": subject and link}. */
static int s_send_sms(cv_notifier_t *self, row_t *row)
{
    const cv_notify_config_t *cfg = self->cfg;
    int t = !strcmp(row->template, "accuse_reception") ? T_ACK : T_STATUS;
    values_t v = { .code = row->code, .statut = s_status_fr(row->status), .categorie = row->category,
                   .service = row->service, .ville = cfg->city };
    char link[600], code[64] = "";
    snprintf(link, sizeof link, "%s/suivi/%s", cfg->public_url, row->code);
    v.lien = link;
    cv_buf_t subj = { 0 }, text = { 0 }, html = { 0 };
    cv_template_render(self->tpl[t], s_value, &v, &subj, &text, &html);
    cv_buf_addstr(&subj, " ");
    cv_buf_addstr(&subj, link);
    json_t *b = json_pack("{s:s, s:s, s:s}", "to", row->address, "text", subj.data, "reference", row->id);
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    cv_buf_free(&subj), cv_buf_free(&text), cv_buf_free(&html);
    char auth[600];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", cfg->sms_token ? cfg->sms_token : "");
    const char *headers[2] = { cfg->sms_token ? auth : NULL, NULL };
    int claimed = s_claim(self, row, NULL, NULL), rc = claimed;
    if (claimed > 0)
        rc = s_outcome(self, row, NULL, cv_http_post(cfg->sms_url, headers, body, strlen(body), cfg->timeout_s, code,
                                               sizeof code), code);
    free(body);
    memset(auth, 0, sizeof auth);
    return rc;
}

/* (3) send what is due; quiet hours hold the citizens' and helpers' mails and SMS */
static int s_send(cv_notifier_t *self, bool *busy)
{
    const cv_notify_config_t *cfg = self->cfg;
    const char *p[3] = { cfg->timezone, cfg->quiet_start, cfg->quiet_end };
    PGresult *r = s_exec(self, "pick",
                         "SELECT n.id, n.recipient, n.channel, n.template, COALESCE(n.status, ''), "
                         "COALESCE(n.address, ''), COALESCE(r.tracking_code, ''), COALESCE(r.category, ''), "
                         "COALESCE(r.service, ''), COALESCE(n.request_id::text, ''), COALESCE(n.event_id::text, ''), "
                         "COALESCE(to_char(n.digest_day, 'DD/MM/YYYY'), ''), COALESCE(r.citizen_id::text, ''), n.attempts "
                         "FROM notifications n LEFT JOIN requests r ON r.id = n.request_id "
                         "WHERE n.state = 'planned' AND n.not_before <= now() AND (n.channel = 'webhook' "
                         "OR n.recipient LIKE 'supervisor:%' OR cv_notify_quiet_end(now(), $1, $2::time, $3::time) IS NULL) "
                         "ORDER BY n.not_before, n.id LIMIT " "20", 3, p);
    if (!r)
        return -1;
    int n = PQntuples(r), rc = 0;
    if (n == PICK_MAX)
        *busy = true;
    for (int i = 0; i < n && rc == 0; i++) {
        row_t row = { PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
                      PQgetvalue(r, i, 4), PQgetvalue(r, i, 5), PQgetvalue(r, i, 6), PQgetvalue(r, i, 7),
                      PQgetvalue(r, i, 8), PQgetvalue(r, i, 9), PQgetvalue(r, i, 10), PQgetvalue(r, i, 11),
                      PQgetvalue(r, i, 12), atoi(PQgetvalue(r, i, 13)) };
        if (!strcmp(row.channel, "email") && !strcmp(row.template, "digest_citoyen"))
            rc = s_send_cdigest(self, &row);
        else if (!strcmp(row.channel, "email"))
            rc = s_send_email(self, &row);
        else if (!strcmp(row.channel, "webhook"))
            rc = s_send_webhook(self, &row);
        else if (!strcmp(row.channel, "sms") && cfg->sms_url)
            rc = s_send_sms(self, &row);
        else {               /* an SMS planned before the gateway was taken out of the config */
            const char *q[1] = { row.id };
            cv_warn("send", "notification %s: %s is no longer configured: skipped", row.id, row.channel);
            rc = s_run(self, "skip", "UPDATE notifications SET state = 'skipped', last_error = 'not_configured', "
                                     "updated_at = now(), done_at = now() WHERE id = $1::bigint AND state = 'planned'",
                       1, q);
        }
        rc = rc < 0 ? -1 : 0;
    }
    PQclear(r);
    return rc;
}

int cv_notifier_step(cv_notifier_t *self, bool *busy)
{
    *busy = false;
    if (PQstatus(self->db) != CONNECTION_OK)
        return -1;
    if (s_plan(self, busy) < 0 || s_digests(self) < 0 || s_send(self, busy) < 0)
        return -1;
    return 0;
}
