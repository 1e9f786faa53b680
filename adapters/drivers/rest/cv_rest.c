/*  driver_rest — the REST polling driver (`kind: rest`, docs/drivers/rest.md).

    A software's API is read page by page with GET requests; each page is
    a JSON body whose list at `records_path` holds the records. Two ways
    to move through the data:

      token  each page names the next one (`next_token_path`); the token is
             sent back in `token_param`. On the last page (no next token)
             the driver keeps the token of that page and asks for it again
             after `poll_interval_ms`: a change feed whose tokens are
             positions returns what was added since.
      since  the driver asks for records changed since a cursor
             (`since_param`), the largest `cursor_field` value submitted so
             far, minus `overlap`. The API must answer in cursor order and
             include the cursor value itself (>=), so records sharing the
             last timestamp are read again rather than missed. A full page
             that does not move the cursor (more records share one value
             than a page holds) doubles the page size, up to 16 times.

    Every record of a page is submitted (its JSON text, compact), then the
    position ({"token": ...} / {"since": ...}) is set: the client makes
    both durable in one sync, so a restart resumes from the last page
    submitted, never skipping one. A page is re-read when caught up or
    after an overlap: records identical to ones of the previous page
    submitted by this process are not submitted again (the hub would
    deduplicate them anyway; after a restart they are sent once more).

    Step does one request at most and never blocks (cv_rest_http.c):
    while a transfer runs it returns 10 ms so the run loop keeps serving
    the hub connection. Failures (connection refused, timeouts, HTTP 5xx,
    429, other statuses, a body that is not JSON or has no list, a body
    over max_response_bytes) are logged with the URL without its query,
    the status and the attempt number, and retried with exponential
    back-off from retry.initial_ms to retry.max_ms, forever: the software
    will come back, and nothing may be skipped. */
#include "cv_rest.h"

#include <curl/curl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cv_alloc.h"
#include "cv_hash.h"
#include "cv_log.h"

#define MAX_GROWTH       16      /* page size doubles up to 16 x page_size */
#define BUSY_WAIT_MS     10      /* step period while a transfer runs */
#define FULL_WAIT_MS     100     /* step period while the spool is full */
#define MAX_TOKEN_BYTES  3000    /* the position must fit the spool's 4 KiB */

typedef char hash_t[CV_HASH_HEX_LEN + 1];

typedef struct {
    hash_t *items;
    size_t count, cap;
} hash_set_t;

typedef struct {
    cv_rest_config_t *config;
    cv_rest_http_t *http;
    cv_client_t *client;
    char *source;
    /* position */
    char *token;                 /* token mode: the page to ask for, NULL: first */
    cv_rest_cursor_t cursor;     /* since mode: largest value submitted */
    int64_t page_size;           /* current page size (since mode may grow it) */
    /* schedule */
    bool busy;
    int64_t next_at;             /* monotonic ms: no request before */
    int64_t last_request_at;
    unsigned failures;           /* in a row */
    bool caught_up;
    /* counters, for logs */
    uint64_t pages, records;
    /* records of the previous page, sorted, and of the current one */
    hash_set_t previous, current;
} rest_t;

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ hash sets */

static int s_hash_cmp(const void *a, const void *b)
{
    return memcmp(a, b, CV_HASH_HEX_LEN);
}

static bool s_set_has(const hash_set_t *set, const hash_t h)
{
    return set->count && bsearch(h, set->items, set->count, sizeof *set->items, s_hash_cmp);
}

static int s_set_add(hash_set_t *set, const hash_t h)
{
    if (set->count == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 256;
        hash_t *items = realloc(set->items, cap * sizeof *items);
        if (!items)
            return -1;
        set->items = items;
        set->cap = cap;
    }
    memcpy(set->items[set->count++], h, sizeof(hash_t));
    return 0;
}

/* The current page becomes the previous one. */
static void s_set_rotate(rest_t *self)
{
    hash_set_t t = self->previous;
    self->previous = self->current;
    self->current = t;
    self->current.count = 0;
    if (self->previous.count)
        qsort(self->previous.items, self->previous.count, sizeof *self->previous.items, s_hash_cmp);
}

/* ------------------------------------------------------------ requests */

static int s_add_param(CURLU *u, const char *name, const char *value)
{
    size_t len = strlen(name) + strlen(value) + 2;
    char *pair = malloc(len);
    if (!pair)
        return -1;
    snprintf(pair, len, "%s=%s", name, value);
    /* APPENDQUERY + URLENCODE: encodes the pair, keeps its first '=' */
    CURLUcode rc = curl_url_set(u, CURLUPART_QUERY, pair, CURLU_APPENDQUERY | CURLU_URLENCODE);
    explicit_bzero(pair, len);
    free(pair);
    return rc == CURLUE_OK ? 0 : -1;
}

/* The URL of the next page, malloc'ed (curl_free), or NULL. */
static char *s_page_url(rest_t *self)
{
    const cv_rest_config_t *c = self->config;
    CURLU *u = curl_url();
    char *url = NULL;
    if (!u || curl_url_set(u, CURLUPART_URL, c->url, 0) != CURLUE_OK)
        goto done;
    for (size_t i = 0; i < c->query_count; i++)
        if (s_add_param(u, c->query[i].name, c->query[i].value) < 0)
            goto done;
    char value[CV_REST_CURSOR_TEXT + 32];
    if (c->page_size_param) {
        snprintf(value, sizeof value, "%lld", (long long) self->page_size);
        if (s_add_param(u, c->page_size_param, value) < 0)
            goto done;
    }
    if (c->mode == CV_REST_TOKEN && self->token && s_add_param(u, c->token_param, self->token) < 0)
        goto done;
    if (c->mode == CV_REST_SINCE) {
        const char *since = NULL;
        if (self->cursor.valid) {
            cv_rest_cursor_since(&self->cursor, c->overlap, value, sizeof value);
            since = value;
        } else {
            since = c->since_start;
        }
        if (since && s_add_param(u, c->since_param, since) < 0)
            goto done;
    }
    curl_url_get(u, CURLUPART_URL, &url, 0);
done:
    curl_url_cleanup(u);
    return url;
}

static void s_start_request(rest_t *self, int64_t now)
{
    char *url = s_page_url(self);
    self->busy = true;
    self->last_request_at = now;
    if (!url) {
        cv_rest_http_start(self->http, "");   /* reported as a failure by the next poll */
        return;
    }
    cv_rest_http_start(self->http, url);
    explicit_bzero(url, strlen(url));
    curl_free(url);
}

/* ------------------------------------------------------------ outcomes */

static void s_schedule(rest_t *self, int64_t delay_ms)
{
    int64_t at = s_now_ms() + delay_ms;
    if (self->config->rate_limit > 0) {
        int64_t min_at = self->last_request_at + (int64_t) (1000.0 / self->config->rate_limit);
        if (at < min_at)
            at = min_at;
    }
    self->next_at = at;
}

static void s_failed(rest_t *self, bool config_problem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Logs a failed request and schedules its retry with back-off. */
static void s_failed(rest_t *self, bool config_problem, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    self->failures++;
    int64_t delay = self->config->retry_initial_ms;
    for (unsigned i = 1; i < self->failures && delay < self->config->retry_max_ms; i++)
        delay *= 2;
    if (delay > self->config->retry_max_ms)
        delay = self->config->retry_max_ms;
    cv_log(config_problem ? CV_LOG_ERROR : CV_LOG_WARN, "rest",
           "source %s: GET %s failed: %s (attempt %u); retrying in %.1f s%s", self->source,
           self->config->url_for_logs, reason, self->failures, (double) delay / 1000.0,
           config_problem ? " (check url, credentials and pagination keys)" : "");
    s_schedule(self, delay);
}

static void s_succeeded(rest_t *self)
{
    if (self->failures)
        cv_info("rest", "source %s: GET %s answers again after %u failed attempt%s", self->source,
                self->config->url_for_logs, self->failures, self->failures > 1 ? "s" : "");
    self->failures = 0;
}

/* Submits one record unless the previous page already had it. Returns 1
   when submitted, 0 when skipped, -1 on a fatal spool error. */
static int s_submit(rest_t *self, json_t *record, size_t index)
{
    char *text = json_dumps(record, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) {
        cv_error("rest", "source %s: page %llu: record %zu cannot be serialised (out of memory)", self->source,
                 (unsigned long long) self->pages, index);
        return -1;
    }
    size_t len = strlen(text);
    hash_t h;
    cv_hash_bytes(text, len, h);
    int rc = 1;
    if (s_set_add(&self->current, h) < 0) {
        cv_error("rest", "source %s: out of memory", self->source);
        rc = -1;
    } else if (s_set_has(&self->previous, h)) {
        rc = 0;
    } else {
        int sub = cv_client_submit(self->client, text, len);
        if (sub == 1)
            cv_warn("rest", "source %s: page %llu: record %zu (%zu bytes) is larger than max_event_bytes: not sent",
                    self->source, (unsigned long long) self->pages, index, len);
        if (sub < 0)
            cv_error("rest", "source %s: the spool refused a record: %s", self->source,
                     cv_client_error_text(cv_client_error(self->client)));
        rc = sub < 0 ? -1 : 1;
    }
    explicit_bzero(text, len);
    free(text);
    return rc;
}

static int s_set_position(rest_t *self, char *position)
{
    int rc = position ? cv_client_set_position(self->client, position) : -1;
    free(position);
    if (rc < 0)
        cv_error("rest", "source %s: cannot save the position in the spool", self->source);
    return rc;
}

/* Token mode: the next token, after the page's records are submitted. */
static int s_next_token(rest_t *self, json_t *root, size_t count)
{
    json_t *next = cv_rest_config_json_path(root, self->config->next_token_path);
    char text[64];
    const char *token = NULL;
    if (json_is_string(next) && json_string_length(next) > 0) {
        token = json_string_value(next);
    } else if (json_is_integer(next)) {
        snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(next));
        token = text;
    }
    if (token && strlen(token) > MAX_TOKEN_BYTES) {
        cv_error("rest", "source %s: page %llu: the next page token is longer than %d bytes", self->source,
                 (unsigned long long) self->pages, MAX_TOKEN_BYTES);
        return -1;
    }
    bool same = token && self->token && strcmp(token, self->token) == 0;
    /* no next token, the same one, or an empty page: the last page for now */
    self->caught_up = !token || same || count == 0;
    if (!token || same)
        return 0;                /* keep asking for this page: a change feed */
    free(self->token);
    self->token = cv_zstrdup(token);
    return self->token ? s_set_position(self, cv_rest_cursor_position_token(token)) : -1;
}

/* Since mode: the new cursor is the largest value of the page. */
static int s_next_since(rest_t *self, const cv_rest_cursor_t *max, size_t count)
{
    const cv_rest_config_t *c = self->config;
    bool full = c->page_size_param && (int64_t) count >= self->page_size;
    if (cv_rest_cursor_cmp(max, &self->cursor) > 0) {
        self->cursor = *max;
        self->page_size = c->page_size;
        /* without page_size_param a page's fullness is unknown: ask again at once */
        self->caught_up = c->page_size_param && !full;
        return s_set_position(self, cv_rest_cursor_position_since(&self->cursor));
    }
    self->caught_up = true;
    if (!full)
        return 0;
    if (self->page_size < c->page_size * MAX_GROWTH) {
        self->page_size *= 2;
        self->caught_up = false;
        cv_warn("rest", "source %s: a full page of %zu records did not move the cursor (they share one '%s' "
                "value): asking for pages of %lld", self->source, count, c->cursor_field,
                (long long) self->page_size);
    } else {
        cv_error("rest", "source %s: more than %lld records share one '%s' value: cannot move past them; "
                 "raise pagination.page_size", self->source, (long long) self->page_size, c->cursor_field);
    }
    return 0;
}

/* A page arrived (HTTP 2xx): submit, move the position, schedule the next. */
static int s_on_page(rest_t *self, const cv_rest_reply_t *reply)
{
    const cv_rest_config_t *c = self->config;
    json_error_t jerr;
    /* ALLOW_NUL: a "\u0000" in one record must not block the page; the hub
       dead-letters that record */
    json_t *root = json_loadb(reply->body, reply->len, JSON_ALLOW_NUL, &jerr);
    if (!root) {
        /* jerr.text may quote the body: log the place only */
        s_failed(self, false, "HTTP %ld but the body is not valid JSON (%zu bytes, error at line %d column %d)",
                 reply->status, reply->len, jerr.line, jerr.column);
        return 0;
    }
    json_t *list = cv_rest_config_json_path(root, c->records_path);
    if (!json_is_array(list)) {
        s_failed(self, false, "HTTP %ld but the body has no list at '%s'", reply->status,
                 c->records_path[0] ? c->records_path : "(body)");
        json_decref(root);
        return 0;
    }
    s_succeeded(self);
    self->pages++;
    size_t count = json_array_size(list), sent = 0, no_cursor = 0;
    bool unordered = false;
    cv_rest_cursor_t max = self->cursor, prev = { 0 }, value;
    for (size_t i = 0; i < count; i++) {
        json_t *record = json_array_get(list, i);
        int rc = s_submit(self, record, i);
        if (rc < 0) {
            json_decref(root);
            return -1;
        }
        sent += (size_t) rc;
        if (c->mode != CV_REST_SINCE)
            continue;
        if (!cv_rest_cursor_from_json(cv_rest_config_json_path(record, c->cursor_field), &value)) {
            no_cursor++;
            continue;
        }
        if (cv_rest_cursor_cmp(&value, &prev) < 0)
            unordered = true;
        prev = value;
        if (cv_rest_cursor_cmp(&value, &max) > 0)
            max = value;
    }
    self->records += sent;
    if (no_cursor)
        cv_warn("rest", "source %s: page %llu: %zu records without a usable '%s' (sent; the cursor ignores them)",
                self->source, (unsigned long long) self->pages, no_cursor, c->cursor_field);
    if (unordered)
        cv_warn("rest", "source %s: page %llu: records are not in '%s' order; the API must sort by it or "
                "records may be missed", self->source, (unsigned long long) self->pages, c->cursor_field);
    if (sent)
        cv_info("rest", "source %s: page %llu: %zu records, %zu sent", self->source,
                (unsigned long long) self->pages, count, sent);
    else
        cv_debug("rest", "source %s: page %llu: %zu records, none new", self->source,
                 (unsigned long long) self->pages, count);
    bool was_caught_up = self->caught_up;
    int rc = c->mode == CV_REST_TOKEN ? s_next_token(self, root, count) : s_next_since(self, &max, count);
    json_decref(root);
    s_set_rotate(self);
    if (self->caught_up && !was_caught_up)
        cv_info("rest", "source %s: caught up after page %llu (%llu records sent so far); polling every %lld ms",
                self->source, (unsigned long long) self->pages, (unsigned long long) self->records,
                (long long) c->poll_interval_ms);
    s_schedule(self, self->caught_up ? c->poll_interval_ms : 0);
    return rc;
}

static int s_on_reply(rest_t *self, const cv_rest_reply_t *reply)
{
    if (!reply->ok) {
        s_failed(self, false, "%s", reply->error);
        return 0;
    }
    long st = reply->status;
    if (st >= 200 && st < 300)
        return s_on_page(self, reply);
    bool transient = st >= 500 || st == 429 || st == 408;
    s_failed(self, !transient, "HTTP %ld", st);
    return 0;
}

/* ------------------------------------------------------------ driver */

static void s_stop(void **self_p);

static void s_restore(rest_t *self)
{
    const char *saved = cv_client_position(self->client);
    if (!saved)
        return;
    if (cv_rest_cursor_position_parse(saved, self->config->mode, &self->token, &self->cursor) < 0) {
        cv_warn("rest", "source %s: the saved position is not a %s position: starting from the first page",
                self->source, self->config->mode == CV_REST_TOKEN ? "page token" : "since cursor");
        return;
    }
    if (self->config->mode == CV_REST_SINCE)
        cv_info("rest", "source %s: resuming from the saved cursor %s", self->source, self->cursor.text);
    else
        cv_info("rest", "source %s: resuming from the saved page token", self->source);
}

static void *s_start(const cv_driver_ctx_t *ctx, char *err, size_t errlen)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "rest driver: cannot initialise libcurl");
        return NULL;
    }
    rest_t *self = cv_zcalloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "rest driver: out of memory");
        curl_global_cleanup();
        return NULL;
    }
    void *p = self;
    self->client = ctx->client;
    self->source = cv_zstrdup(ctx->source);
    self->config = cv_rest_config_new(ctx, err, errlen);
    if (!self->config || !self->source || !(self->http = cv_rest_http_new(self->config, err, errlen))) {
        s_stop(&p);
        return NULL;
    }
    self->page_size = self->config->page_size;
    self->last_request_at = s_now_ms() - 100000;
    s_restore(self);
    cv_info("rest", "source %s: polling GET %s (%s pagination)", self->source, self->config->url_for_logs,
            self->config->mode == CV_REST_TOKEN ? "token" : "since");
    return self;
}

static int s_step(void *arg)
{
    rest_t *self = arg;
    int64_t now = s_now_ms();
    if (self->busy) {
        cv_rest_reply_t reply;
        if (cv_rest_http_poll(self->http, &reply) == 0)
            return BUSY_WAIT_MS;
        self->busy = false;
        if (s_on_reply(self, &reply) < 0)
            return -1;
        return 0;
    }
    if (now < self->next_at) {
        int64_t wait = self->next_at - now;
        return wait > INT_MAX ? INT_MAX : (int) wait;
    }
    if (!cv_client_can_accept(self->client))
        return FULL_WAIT_MS;
    s_start_request(self, now);
    return BUSY_WAIT_MS;
}

static void s_stop(void **self_p)
{
    rest_t *self = *self_p;
    if (!self)
        return;
    cv_rest_http_destroy(&self->http);
    cv_rest_config_destroy(&self->config);
    free(self->source);
    free(self->token);
    free(self->previous.items);
    free(self->current.items);
    free(self);
    *self_p = NULL;
    curl_global_cleanup();
}

const cv_driver_t cv_rest_driver = { "rest", s_start, s_step, s_stop };
