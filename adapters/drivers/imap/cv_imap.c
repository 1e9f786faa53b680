/*  driver_imap — polls one IMAP mailbox (`kind: imap`, docs/drivers/imap.md).

    Each step does one of: (re)connect, mark the settled mails done, or one
    poll: UID SEARCH for the mails not yet done, then fetch at most `batch`
    of them (BODY.PEEK: their flags are not touched), turn each into one
    record (cv_imap_mime.c) with "uidvalidity" and "uid" (the mapping's event
    id) and submit it. A mail is marked done (flag, or moved to done_folder)
    only once the hub has settled its record (cv_client_on_settle): ACKed,
    or NACKed and dead-lettered by the hub with its reason. So:
      - a crash of the adapter before the mark leaves the mail undone: the
        next run submits it again and the hub's dedupe on (source, event id)
        ACKs it without a second event; then it is marked;
      - a crash of the hub or PostgreSQL before the ACK: the spool resends.
    No mail is marked that the hub has not settled; none is lost.
    A mail larger than max_mail_bytes is submitted with what was read and
    "too_large": true; a record the client refuses as too large is submitted
    again without its body ("body_dropped": true). Logs name UIDs and counts,
    never a mail's contents. */
#include "cv_imap.h"

#include "cv_alloc.h"
#include "cv_log.h"

#include <curl/curl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEARCH_MAX 5000
#define DONE_MAX 200
#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 60000

typedef struct {
    uint64_t uid;
    uint64_t id;                 /* spool id of its record */
    bool settled;
} pending_t;

typedef struct {
    cv_client_t *client;
    char *source;
    cv_imap_config_t *config;
    cv_imap_session_t *session;
    uint64_t uidvalidity;
    pending_t *pending;          /* submitted this run, not yet marked done */
    size_t npending, cap;
    uint64_t *uids;              /* search result */
    int64_t next_at;             /* no work before (reconnect back-off) */
    int64_t next_poll_at;
    int64_t retry_ms;
    uint64_t submitted, done, nacked;
} imap_t;

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_failed(imap_t *self, const char *what)
{
    cv_warn("imap", "source %s: %s; retrying in %lld ms", self->source, what, (long long) self->retry_ms);
    cv_imap_close(&self->session);
    self->next_at = s_now_ms() + self->retry_ms;
    self->retry_ms = self->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : self->retry_ms * 2;
}

static void s_on_settle(void *arg, uint64_t id, bool acked, const char *reason)
{
    imap_t *self = arg;
    for (size_t i = 0; i < self->npending; i++) {
        if (self->pending[i].id == id) {
            self->pending[i].settled = true;
            if (!acked) {
                self->nacked++;
                cv_warn("imap", "source %s: mail UID %llu refused by the hub (%s): dead-lettered there, marked done",
                        self->source, (unsigned long long) self->pending[i].uid, reason ? reason : "?");
            }
            return;
        }
    }
}

static bool s_in_flight(const imap_t *self, uint64_t uid)
{
    for (size_t i = 0; i < self->npending; i++)
        if (self->pending[i].uid == uid)
            return true;
    return false;
}

/* Marks the settled mails done; drops them from pending once marked. */
static int s_mark_done(imap_t *self)
{
    uint64_t uids[DONE_MAX];
    int n = 0;
    for (size_t i = 0; i < self->npending && n < DONE_MAX; i++)
        if (self->pending[i].settled)
            uids[n++] = self->pending[i].uid;
    if (!n)
        return 0;
    char err[256];
    if (cv_imap_done(self->session, uids, n, err, sizeof err) < 0) {
        s_failed(self, err);
        return -1;
    }
    size_t w = 0;
    int left = n;
    for (size_t i = 0; i < self->npending; i++) {
        if (self->pending[i].settled && left > 0) {
            left--;
            continue;
        }
        self->pending[w++] = self->pending[i];
    }
    self->npending = w;
    self->done += (uint64_t) n;
    cv_debug("imap", "source %s: %d mails marked done", self->source, n);
    return 1;
}

static void s_cut_field(json_t *rec, const char *key, size_t max)
{
    const char *v = json_string_value(json_object_get(rec, key));
    if (!v || strlen(v) <= max)
        return;
    char *copy = cv_zstrdup(v);
    if (!copy)
        return;
    while (max > 0 && ((unsigned char) copy[max] & 0xC0) == 0x80)
        max--;
    copy[max] = '\0';
    json_object_set_new(rec, key, json_string(copy));
    free(copy);
}

/* Submits one mail's record: 0, 1 when the client refused it even without
   its body (left undone, warned), -1 fatal. */
static int s_submit(imap_t *self, uint64_t uid, const char *raw, size_t len, bool too_large)
{
    cv_imap_mime_opts_t opts = { .max_body_bytes = (size_t) self->config->max_body_bytes,
                                 .reply_key = self->config->reply_keylen ? self->config->reply_key : NULL,
                                 .reply_keylen = self->config->reply_keylen,
                                 .attach_dir = too_large ? NULL : self->config->attachments_dir,
                                 .attach_max_bytes = (size_t) self->config->max_attachment_bytes };
    json_t *rec = cv_imap_mime_record(raw, len, &opts);
    if (!rec)
        return -1;
    json_object_set_new(rec, "mailbox", json_string(self->config->mailbox));
    json_object_set_new(rec, "uidvalidity", json_integer((json_int_t) self->uidvalidity));
    json_object_set_new(rec, "uid", json_integer((json_int_t) uid));
    char eid[48];
    snprintf(eid, sizeof eid, "%llu.%llu", (unsigned long long) self->uidvalidity, (unsigned long long) uid);
    json_object_set_new(rec, "event_id", json_string(eid));
    json_object_set_new(rec, "size", json_integer((json_int_t) len));
    if (too_large) {
        json_object_set_new(rec, "too_large", json_true());
        if (self->config->attachments_dir) {
            json_t *pr = json_object_get(rec, "problems");
            if (!json_is_array(pr))
                json_object_set_new(rec, "problems", pr = json_array());
            json_array_append_new(pr, json_string("files not kept: the mail is larger than max_mail_bytes"));
        }
    }
    if (!json_object_get(rec, "date")) {              /* no readable Date: when it was read */
        char now[32];
        time_t t = time(NULL);
        struct tm u;
        gmtime_r(&t, &u);
        strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &u);
        json_object_set_new(rec, "date", json_string(now));
        json_object_set_new(rec, "date_from", json_string("fetch"));
    }
    s_cut_field(rec, "subject", 998);
    s_cut_field(rec, "from_name", 200);
    s_cut_field(rec, "in_reply_to", 998);
    int rc = 1;
    for (int attempt = 0; attempt < 2 && rc == 1; attempt++) {
        if (attempt == 1) {
            json_object_del(rec, "body");
            json_object_set_new(rec, "body_dropped", json_true());
        }
        char *text = json_dumps(rec, JSON_COMPACT);
        if (!text) {
            json_decref(rec);
            return -1;
        }
        rc = cv_client_submit(self->client, text, strlen(text));
        free(text);
    }
    json_decref(rec);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        cv_warn("imap", "source %s: mail UID %llu: its record is too large even without its body; left undone",
                self->source, (unsigned long long) uid);
        return 1;
    }
    if (self->npending == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 64;
        pending_t *p = cv_zrealloc(self->pending, cap * sizeof *p);
        if (!p)
            return -1;
        self->pending = p;
        self->cap = cap;
    }
    self->pending[self->npending++] = (pending_t) { uid, cv_client_last_id(self->client), false };
    self->submitted++;
    return 0;
}

/* One poll: search, fetch and submit up to `batch` new mails. */
static int s_poll(imap_t *self, int64_t now)
{
    char err[256];
    int n = cv_imap_search(self->session, self->uids, SEARCH_MAX, err, sizeof err);
    if (n < 0) {
        s_failed(self, err);
        return 0;
    }
    int sent = 0, fresh = 0;
    for (int i = 0; i < n && sent < self->config->batch; i++) {
        uint64_t uid = self->uids[i];
        if (s_in_flight(self, uid))
            continue;
        fresh++;
        if (!cv_client_can_accept(self->client))
            break;
        char *raw;
        size_t len;
        bool too_large;
        int rc = cv_imap_fetch(self->session, uid, (size_t) self->config->max_mail_bytes, &raw, &len, &too_large,
                               err, sizeof err);
        if (rc < 0) {
            s_failed(self, err);
            return 0;
        }
        if (rc == 1)
            continue;
        rc = s_submit(self, uid, raw, len, too_large);
        free(raw);
        if (rc < 0) {
            cv_error("imap", "source %s: cannot submit (spool error or out of memory)", self->source);
            return -1;
        }
        if (rc == 0)
            sent++;
    }
    if (sent) {
        if (cv_client_flush(self->client) < 0)
            return -1;
        cv_info("imap", "source %s: %d mails submitted (%llu so far, %zu awaiting the hub)", self->source, sent,
                (unsigned long long) self->submitted, self->npending);
    }
    /* more waiting: poll again soon; else wait poll_ms */
    self->next_poll_at = now + (sent >= self->config->batch && fresh > sent ? 0 : self->config->poll_ms);
    return 0;
}

static void s_stop(void **self_p);

static void *s_start(const cv_driver_ctx_t *ctx, char *err, size_t errlen)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "imap driver: cannot initialise libcurl");
        return NULL;
    }
    imap_t *self = cv_zcalloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "imap driver: out of memory");
        curl_global_cleanup();
        return NULL;
    }
    void *p = self;
    self->client = ctx->client;
    self->source = cv_zstrdup(ctx->source);
    self->uids = cv_zcalloc(SEARCH_MAX, sizeof *self->uids);
    self->config = cv_imap_config_new(ctx, err, errlen);
    if (!self->config || !self->source || !self->uids) {
        if (!err[0])
            snprintf(err, errlen, "imap driver: out of memory");
        s_stop(&p);
        return NULL;
    }
    self->retry_ms = RETRY_MIN_MS;
    cv_client_on_settle(self->client, s_on_settle, self);
    cv_info("imap", "source %s: polling %s mailbox %s every %lld ms (done: %s %s)", self->source,
            self->config->url_for_logs, self->config->mailbox, (long long) self->config->poll_ms,
            self->config->done_folder ? "moved to" : "flag", self->config->done_folder ? self->config->done_folder
                                                                                       : self->config->flag);
    return self;
}

static int s_step(void *arg)
{
    imap_t *self = arg;
    int64_t now = s_now_ms();
    if (now < self->next_at) {
        int64_t wait = self->next_at - now;
        return wait > INT_MAX ? INT_MAX : (int) wait;
    }
    if (!self->session) {
        char err[256];
        self->session = cv_imap_open(self->config, err, sizeof err);
        if (!self->session) {
            s_failed(self, err);
            return 0;
        }
        uint64_t v = cv_imap_uidvalidity(self->session);
        if (self->uidvalidity && v != self->uidvalidity) {
            cv_warn("imap", "source %s: mailbox %s has a new UIDVALIDITY (%llu, was %llu): mails not yet done get "
                    "new event ids", self->source, self->config->mailbox, (unsigned long long) v,
                    (unsigned long long) self->uidvalidity);
            self->npending = 0;
        }
        self->uidvalidity = v;
        self->retry_ms = RETRY_MIN_MS;
        cv_info("imap", "source %s: connected (UIDVALIDITY %llu)", self->source, (unsigned long long) v);
    }
    int rc = s_mark_done(self);
    if (rc != 0)
        return 0;
    if (now < self->next_poll_at) {
        int64_t wait = self->next_poll_at - now;
        return wait > 200 ? 200 : (int) wait;      /* settled mails are marked within 200 ms */
    }
    if (!cv_client_can_accept(self->client))
        return 50;
    return s_poll(self, now) < 0 ? -1 : 0;
}

static void s_stop(void **self_p)
{
    imap_t *self = *self_p;
    if (!self)
        return;
    if (self->client)
        cv_client_on_settle(self->client, NULL, NULL);
    if (self->source && self->config)
        cv_info("imap", "source %s: stopping (%llu mails submitted, %llu marked done, %llu refused by the hub)",
                self->source, (unsigned long long) self->submitted, (unsigned long long) self->done,
                (unsigned long long) self->nacked);
    cv_imap_close(&self->session);
    cv_imap_config_destroy(&self->config);
    free(self->source);
    free(self->pending);
    free(self->uids);
    free(self);
    *self_p = NULL;
    curl_global_cleanup();
}

const cv_driver_t cv_imap_driver = { "imap", s_start, s_step, s_stop };
