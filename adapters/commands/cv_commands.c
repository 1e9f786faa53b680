/*  cv_commands — see cv_commands.h and docs/commands.md.

    Design. A command is a small record in one list, in arrival order:
    RUNNING (attempts left to make), FINISHED (result not yet acknowledged
    by the hub), ACKED (kept keep_days, so a late second delivery is
    answered with the same result instead of being performed again).

    Files: this one has the list, results, attempts and the API;
    templates are in cv_commands_template.c, the journal (its format,
    writing, reading, rewriting) in cv_commands_journal.c, what they
    share (structures, cv_commands__ functions) in cv_commands_int.h.

    HTTP runs in a curl multi handle driven by cv_commands_step: at most
    `concurrency` transfers, each bounded by timeout_ms; an answer is read
    up to 64 KiB (enough for the reference). Attempt outcomes:
      2xx                      done
      408, 425, 429, 5xx       not performed, retried (502 and 504 come from
                               a gateway: uncertain)
      other statuses           failed for good (the software refused it)
      curl error, nothing sent not performed (connection refused, DNS...)
      curl error after sending uncertain (timeout, connection cut) */
#include "cv_commands_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cv_alloc.h"
#include "cv_log.h"

#define MAX_ANSWER      (64 * 1024)
#define COMPACT_BYTES   (4u << 20)
#define RESEND_MS       30000           /* a result not acknowledged is sent again */
#define MAX_KEY         128
#define MAX_KIND        64

static int64_t s_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the list ------------------------------------------------------------------ */

static const cv_command_kind_t *s_kind(const cv_commands_t *self, const char *kind)
{
    for (size_t i = 0; i < self->conf->nkinds; i++)
        if (strcmp(self->conf->kinds[i].name, kind) == 0)
            return &self->conf->kinds[i];
    return NULL;
}

cmd_t *cv_commands__find_key(const cv_commands_t *self, const char *key)
{
    for (cmd_t *c = self->head; c; c = c->next)
        if (strcmp(c->key, key) == 0)
            return c;
    return NULL;
}

/* By hub id, preferring one not yet acknowledged (ids repeat only if the
   hub's database was replaced). */
cmd_t *cv_commands__find_id(const cv_commands_t *self, uint64_t id)
{
    cmd_t *found = NULL;
    for (cmd_t *c = self->head; c; c = c->next)
        if (c->id == id && (!found || c->state != CV_COMMAND_ACKED))
            found = c;
    return found;
}

cmd_t *cv_commands__add(cv_commands_t *self, uint64_t id, const char *kind, const char *key)
{
    cmd_t *c = cv_zcalloc(1, sizeof *c);
    if (!c || !(c->kind = cv_zstrdup(kind)) || !(c->key = cv_zstrdup(key))) {
        if (c)
            free(c->kind);
        free(c);
        return NULL;
    }
    c->id = id;
    c->conf = s_kind(self, kind);
    c->state = CV_COMMAND_RUNNING;
    c->backoff_ms = self->conf->backoff_ms;
    c->due = s_mono();
    cmd_t **tail = &self->head;
    while (*tail)
        tail = &(*tail)->next;
    *tail = c;
    return c;
}

void cv_commands__free(cmd_t *c)
{
    free(c->kind);
    free(c->key);
    json_decref(c->payload);
    json_decref(c->detail);
    free(c->answer);
    free(c);
}

/* ---- results --------------------------------------------------------------------- */

static void s_send_result(cv_commands_t *self, cmd_t *c)
{
    if (!self->send || c->state != CV_COMMAND_FINISHED)
        return;
    char *text = json_dumps(c->detail, JSON_COMPACT);
    if (!text)
        return;
    if (self->send(self->send_arg, c->id, c->done ? "done" : "failed", text) == 0)
        c->result_sent_at = s_mono();
    free(text);
}

static void s_finish(cv_commands_t *self, cmd_t *c, bool done, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void s_finish(cv_commands_t *self, cmd_t *c, bool done, const char *fmt, ...)
{
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->error, sizeof c->error, fmt, ap);
        va_end(ap);
    }
    json_t *d = json_object();
    if (c->http_status)
        json_object_set_new(d, "http_status", json_integer(c->http_status));
    json_object_set_new(d, "attempts", json_integer(c->attempts));
    if (c->dup)
        json_object_set_new(d, "possible_duplicate", json_true());
    if (c->found_by_lookup)
        json_object_set_new(d, "found_by_lookup", json_true());
    if (!done)
        json_object_set_new(d, "error", json_string(c->error));
    if (c->detail)                          /* the reference, set by the caller */
        json_object_update(d, c->detail);
    json_decref(c->detail);
    c->detail = d;
    c->done = done;
    c->finished_at = (int64_t) time(NULL);
    c->state = CV_COMMAND_FINISHED;
    c->result_sent_at = 0;
    if (cv_commands__journal(self, cv_commands__done_line(c), true) < 0)
        return;
    json_decref(c->payload);                /* personal data: not needed any more */
    c->payload = NULL;
    if (done)
        cv_info(COMP, "%s: command %" PRIu64 " (%s) done: HTTP %d after %d attempt(s)%s", self->name, c->id,
                c->kind, c->http_status, c->attempts,
                c->dup ? "; possible duplicate (sent again after an unknown outcome)" : "");
    else
        cv_warn(COMP, "%s: command %" PRIu64 " (%s) failed: %s", self->name, c->id, c->kind, c->error);
    s_send_result(self, c);
}

/* ---- one attempt -------------------------------------------------------------------- */

static size_t s_on_answer(char *data, size_t size, size_t nmemb, void *arg)
{
    cmd_t *c = arg;
    size_t n = size * nmemb, keep = n;
    if (c->answer_len + keep > MAX_ANSWER)
        keep = MAX_ANSWER - c->answer_len;
    if (keep > 0) {
        char *grown = realloc(c->answer, c->answer_len + keep + 1);
        if (!grown)
            return 0;
        c->answer = grown;
        memcpy(c->answer + c->answer_len, data, keep);
        c->answer_len += keep;
        c->answer[c->answer_len] = '\0';
    }
    return n;
}

static int s_add_header(struct curl_slist **list, const char *name, const char *value, char *why, size_t wlen)
{
    for (const char *p = value; *p; p++)
        if ((unsigned char) *p < 0x20 && *p != '\t') {
            snprintf(why, wlen, "header %s would hold a control character", name);
            return -1;
        }
    char *line = NULL;
    if (asprintf(&line, "%s: %s", name, value) < 0)
        return -1;
    struct curl_slist *grown = curl_slist_append(*list, line);
    free(line);
    if (!grown) {
        snprintf(why, wlen, "out of memory");
        return -1;
    }
    *list = grown;
    return 0;
}

/* The request of this attempt; -1 with why when it cannot be built (the
   command then fails: retrying would not help). */
static int s_build(cmd_t *c, bool lookup, CURL *easy, char *why, size_t wlen)
{
    const cv_command_kind_t *k = c->conf;
    char *url = cv_commands__expand(lookup ? k->lookup_url : k->url, c, true, why, wlen);
    if (!url)
        return -1;
    curl_easy_setopt(easy, CURLOPT_URL, url);
    free(url);
    for (size_t i = 0; i < k->nheaders; i++) {
        char *value = cv_commands__expand(k->header_values[i], c, false, why, wlen);
        int rc = value ? s_add_header(&c->headers, k->header_names[i], value, why, wlen) : -1;
        free(value);
        if (rc < 0)
            return -1;
    }
    if (lookup) {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
        return s_add_header(&c->headers, "Accept", "application/json", why, wlen);
    }
    if (k->idempotency_header && s_add_header(&c->headers, k->idempotency_header, c->key, why, wlen) < 0)
        return -1;
    if (s_add_header(&c->headers, "Expect", "", why, wlen) < 0)
        return -1;
    if (k->body) {
        json_t *body = json_deep_copy(c->payload);
        if (body && k->reference_field)
            json_object_set_new(body, k->reference_field, json_string(c->key));
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        if (!text) {
            snprintf(why, wlen, "out of memory");
            return -1;
        }
        curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, text);
        free(text);
        if (s_add_header(&c->headers, "Content-Type", "application/json", why, wlen) < 0)
            return -1;
    }
    if (strcmp(k->method, "GET") == 0)
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    else if (strcmp(k->method, "POST") != 0 || !k->body)
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, k->method);
    return 0;
}

static void s_start(cv_commands_t *self, cmd_t *c)
{
    if (!c->conf) {
        s_finish(self, c, false, "unknown command kind '%s' (not in this adapter's commands.kinds)", c->kind);
        return;
    }
    if (!c->payload) {
        s_finish(self, c, false, "the payload is not a JSON object");
        return;
    }
    bool lookup = c->phase == PH_LOOKUP;
    CURL *easy = curl_easy_init();
    char why[160] = "out of memory";
    if (!easy || s_build(c, lookup, easy, why, sizeof why) < 0) {
        curl_easy_cleanup(easy);
        curl_slist_free_all(c->headers);
        c->headers = NULL;
        s_finish(self, c, false, "cannot build the request: %s", why);
        return;
    }
    if (!lookup) {
        if (c->uncertain && !c->conf->idempotency_header)
            c->dup = true;                   /* at-least-once: the first may have been performed */
        json_t *line = json_pack("{s:s, s:I, s:i, s:b}", "j", "try", "id", (json_int_t) c->id,
                                 "n", c->attempts + 1, "dup", c->dup);
        if (cv_commands__journal(self, line, true) < 0) {
            curl_easy_cleanup(easy);
            curl_slist_free_all(c->headers);
            c->headers = NULL;
            return;
        }
        c->pending_try = true;
    }
    c->attempts++;
    free(c->answer);
    c->answer = NULL;
    c->answer_len = 0;
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) self->conf->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) self->conf->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, s_on_answer);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, c);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "civibus-adapter/0.1");
    if (curl_multi_add_handle(self->multi, easy) != CURLM_OK) {
        curl_easy_cleanup(easy);
        curl_slist_free_all(c->headers);
        c->headers = NULL;
        c->due = s_mono() + c->backoff_ms;
        return;
    }
    c->easy = easy;
    self->inflight++;
    cv_debug(COMP, "%s: command %" PRIu64 " (%s): attempt %d (%s)", self->name, c->id, c->kind, c->attempts,
             lookup ? "lookup by our reference" : c->conf->method);
}

/* After a failed attempt: again later, or failed for good. */
static void s_retry(cv_commands_t *self, cmd_t *c)
{
    const cv_command_kind_t *k = c->conf;
    if (c->attempts >= self->conf->max_attempts) {
        char last[200];
        snprintf(last, sizeof last, "%s", c->error);
        s_finish(self, c, false, "gave up after %d attempts (last: %s)%s", c->attempts, last,
                 c->uncertain ? "; an attempt's outcome is unknown: it may have been performed" : "");
        return;
    }
    int delay = c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > self->conf->backoff_max_ms ? self->conf->backoff_max_ms : c->backoff_ms * 2;
    c->due = s_mono() + delay;
    const char *mode = "";
    if (c->uncertain && k->idempotency_header)
        mode = "; outcome unknown: sending again with the same idempotency key";
    else if (c->uncertain && k->lookup_url) {
        c->phase = PH_LOOKUP;
        mode = "; outcome unknown: looking it up by our reference first";
    }
    else if (c->uncertain)
        mode = "; outcome unknown and no idempotency key nor lookup: at-least-once, flagged possible duplicate";
    cv_warn(COMP, "%s: command %" PRIu64 " (%s): attempt %d failed (%s); retrying in %d ms%s", self->name,
            c->id, c->kind, c->attempts, c->error, delay, mode);
}

/* The software's reference at a dot path of a JSON answer, into detail. */
static void s_take_reference(cmd_t *c, const char *path)
{
    json_decref(c->detail);
    c->detail = NULL;
    if (!path || !c->answer)
        return;
    json_t *answer = json_loads(c->answer, 0, NULL);
    const json_t *at = answer;
    if (json_is_array(at))
        at = json_array_get(at, 0);
    char *ref = at ? cv_commands__payload_text(at, path, strlen(path)) : NULL;
    if (ref && strlen(ref) <= 200)
        c->detail = json_pack("{s:s}", "reference", ref);
    free(ref);
    json_decref(answer);
}

static void s_after_send(cv_commands_t *self, cmd_t *c, CURLcode rc, long status, long sent_bytes)
{
    bool unknown = false;
    if (rc == CURLE_OK && status >= 200 && status < 300) {
        c->pending_try = false;
        json_t *line = json_pack("{s:s, s:I, s:i, s:b}", "j", "tried", "id", (json_int_t) c->id,
                                 "n", c->attempts, "uncertain", false);
        if (cv_commands__journal(self, line, false) < 0)
            return;
        s_take_reference(c, c->conf->reference);
        s_finish(self, c, true, NULL);
        return;
    }
    if (rc == CURLE_OK) {
        snprintf(c->error, sizeof c->error, "HTTP %ld", status);
        bool retry = status == 408 || status == 425 || status == 429 || status >= 500;
        unknown = status == 502 || status == 504;
        if (!retry) {
            c->pending_try = false;
            if (cv_commands__journal(self, json_pack("{s:s, s:I, s:i, s:b}", "j", "tried", "id", (json_int_t) c->id,
                                          "n", c->attempts, "uncertain", c->uncertain), false) < 0)
                return;
            s_finish(self, c, false, "the software refused it: HTTP %ld%s", status,
                     c->uncertain ? "; an earlier attempt's outcome is unknown: it may have been performed" : "");
            return;
        }
    }
    else {
        snprintf(c->error, sizeof c->error, "%s", curl_easy_strerror(rc));
        unknown = sent_bytes > 0;            /* nothing sent: it cannot have been performed */
    }
    c->uncertain |= unknown;
    c->pending_try = false;
    if (cv_commands__journal(self, json_pack("{s:s, s:I, s:i, s:b}", "j", "tried", "id", (json_int_t) c->id,
                                  "n", c->attempts, "uncertain", c->uncertain), false) < 0)
        return;
    s_retry(self, c);
}

static void s_after_lookup(cv_commands_t *self, cmd_t *c, CURLcode rc, long status)
{
    bool found = false, absent = rc == CURLE_OK && status == 404;
    if (rc == CURLE_OK && status == 200) {
        json_t *answer = c->answer ? json_loads(c->answer, 0, NULL) : NULL;
        absent = json_is_array(answer) && json_array_size(answer) == 0;
        found = !absent;
        json_decref(answer);
    }
    if (found) {
        c->found_by_lookup = true;
        s_take_reference(c, c->conf->lookup_reference ? c->conf->lookup_reference : c->conf->reference);
        cv_info(COMP, "%s: command %" PRIu64 " (%s): found by lookup: it was performed, not sending it again",
                self->name, c->id, c->kind);
        s_finish(self, c, true, NULL);
        return;
    }
    if (absent) {
        c->uncertain = false;                /* the software has nothing with our reference */
        c->phase = PH_SEND;
        c->due = s_mono();
        snprintf(c->error, sizeof c->error, "not found by lookup");
        if (cv_commands__journal(self, json_pack("{s:s, s:I}", "j", "clear", "id", (json_int_t) c->id), false) < 0)
            return;
        cv_info(COMP, "%s: command %" PRIu64 " (%s): not found by lookup: sending it", self->name, c->id, c->kind);
        if (c->attempts >= self->conf->max_attempts)
            s_finish(self, c, false, "gave up after %d attempts (last: not found by lookup)", c->attempts);
        return;
    }
    if (rc == CURLE_OK)
        snprintf(c->error, sizeof c->error, "lookup: HTTP %ld", status);
    else
        snprintf(c->error, sizeof c->error, "lookup: %s", curl_easy_strerror(rc));
    if (cv_commands__journal(self, json_pack("{s:s, s:I, s:i, s:b}", "j", "tried", "id", (json_int_t) c->id,
                                  "n", c->attempts, "uncertain", c->uncertain), false) < 0)
        return;
    s_retry(self, c);
}

static void s_on_done(cv_commands_t *self, CURL *easy, CURLcode rc)
{
    cmd_t *c = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &c);
    long status = 0, sent = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &sent);
    curl_multi_remove_handle(self->multi, easy);
    curl_easy_cleanup(easy);
    self->inflight--;
    if (!c)
        return;
    c->easy = NULL;
    curl_slist_free_all(c->headers);
    c->headers = NULL;
    c->http_status = rc == CURLE_OK ? (int) status : 0;
    if (c->phase == PH_LOOKUP)
        s_after_lookup(self, c, rc, status);
    else
        s_after_send(self, c, rc, status, sent);
    free(c->answer);
    c->answer = NULL;
    c->answer_len = 0;
}

/* ---- public API ------------------------------------------------------------------------ */

cv_commands_t *cv_commands_new(const cv_commands_conf_t *conf, const char *dir, const char *name,
                               char *err, size_t errlen)
{
    cv_commands_t *self = cv_zcalloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->conf = conf;
    self->fd = -1;
    self->name = cv_zstrdup(name ? name : "adapter");
    self->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dir_fd < 0) {
        snprintf(err, errlen, "commands: cannot open folder '%s': %s", dir, strerror(errno));
        goto fail;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(self->multi = curl_multi_init())) {
        snprintf(err, errlen, "commands: cannot initialise libcurl");
        goto fail;
    }
    char why[256] = "";
    if (cv_commands__read_journal(self, why, sizeof why) < 0 || cv_commands__rewrite(self) < 0) {
        snprintf(err, errlen, "commands: %s/%s: %s", dir, JOURNAL, why[0] ? why : strerror(errno));
        goto fail;
    }
    size_t resumed = 0, waiting = 0;
    for (cmd_t *c = self->head; c; c = c->next) {
        if (c->state == CV_COMMAND_FINISHED)
            waiting++;
        if (c->state != CV_COMMAND_RUNNING)
            continue;
        resumed++;
        c->uncertain |= c->pending_try;
        c->pending_try = false;
        if (c->uncertain && c->conf && !c->conf->idempotency_header && c->conf->lookup_url)
            c->phase = PH_LOOKUP;
        cv_info(COMP, "%s: command %" PRIu64 " (%s) resumed after a restart%s", self->name, c->id, c->kind,
                !c->uncertain ? ""
                : c->conf && c->conf->idempotency_header ? ": an attempt's outcome is unknown, retrying with the same idempotency key"
                : c->phase == PH_LOOKUP ? ": an attempt's outcome is unknown, looking it up by our reference first"
                : ": an attempt's outcome is unknown and the software has no idempotency key nor lookup: "
                  "at-least-once, the result will be flagged possible duplicate");
    }
    if (waiting)
        cv_info(COMP, "%s: %zu command result(s) from a previous run wait for the hub", self->name, waiting);
    return self;
fail:
    cv_commands_destroy(&self);
    return NULL;
}

void cv_commands_destroy(cv_commands_t **self_p)
{
    cv_commands_t *self = *self_p;
    if (!self)
        return;
    while (self->head) {
        cmd_t *c = self->head;
        self->head = c->next;
        if (c->easy) {
            curl_multi_remove_handle(self->multi, c->easy);
            curl_easy_cleanup(c->easy);
            curl_slist_free_all(c->headers);
        }
        cv_commands__free(c);
    }
    if (self->multi) {
        curl_multi_cleanup(self->multi);
        curl_global_cleanup();
    }
    if (self->fd >= 0)
        close(self->fd);
    if (self->dir_fd >= 0)
        close(self->dir_fd);
    free(self->name);
    free(self);
    *self_p = NULL;
}

void cv_commands_set_sender(cv_commands_t *self, cv_commands_send_fn *send, void *arg)
{
    self->send = send;
    self->send_arg = arg;
}

static bool s_valid_text(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-", s[i]))
            return false;
    return true;
}

void cv_commands_receive(cv_commands_t *self, uint64_t id, const char *kind, const char *key,
                         const char *payload, size_t len)
{
    if (self->failed)
        return;
    if (!s_valid_text(kind, MAX_KIND) || !s_valid_text(key, MAX_KEY)) {
        cv_warn(COMP, "%s: command %" PRIu64 " ignored: malformed kind or key", self->name, id);
        return;
    }
    cmd_t *c = cv_commands__find_key(self, key);
    if (c) {
        if (c->state == CV_COMMAND_RUNNING) {
            cv_debug(COMP, "%s: command %" PRIu64 " delivered again while running: left alone", self->name, id);
            return;
        }
        cv_info(COMP, "%s: command %" PRIu64 " delivered again: sending its result again", self->name, id);
        c->id = id;
        c->state = CV_COMMAND_FINISHED;
        s_send_result(self, c);
        return;
    }
    if (!(c = cv_commands__add(self, id, kind, key))) {
        cv_error(COMP, "%s: out of memory: command %" PRIu64 " left for a later delivery", self->name, id);
        return;
    }
    json_t *parsed = json_loadb(payload, len, 0, NULL);
    c->payload = json_is_object(parsed) ? parsed : (json_decref(parsed), NULL);
    if (cv_commands__journal(self, cv_commands__start_line(c), true) < 0)
        return;
    cv_info(COMP, "%s: command %" PRIu64 " (%s) received", self->name, id, kind);
}

void cv_commands_result_ack(cv_commands_t *self, uint64_t id, const char *reason)
{
    cmd_t *c = cv_commands__find_id(self, id);
    if (!c || c->state != CV_COMMAND_FINISHED)
        return;
    c->state = CV_COMMAND_ACKED;
    if (reason)
        cv_warn(COMP, "%s: the hub refused the result of command %" PRIu64 ": %s", self->name, id, reason);
    else
        cv_debug(COMP, "%s: result of command %" PRIu64 " recorded by the hub", self->name, id);
    cv_commands__journal(self, json_pack("{s:s, s:I}", "j", "acked", "id", (json_int_t) id), false);
}

void cv_commands_session(cv_commands_t *self)
{
    for (cmd_t *c = self->head; c; c = c->next)
        if (c->state == CV_COMMAND_FINISHED) {
            c->result_sent_at = 0;
            s_send_result(self, c);
        }
}

int cv_commands_step(cv_commands_t *self)
{
    if (self->failed)
        return -1;
    int64_t now = s_mono();
    for (cmd_t *c = self->head; c && self->inflight < (size_t) self->conf->concurrency; c = c->next)
        if (c->state == CV_COMMAND_RUNNING && !c->easy && c->due <= now)
            s_start(self, c);
    if (self->inflight > 0) {
        int running;
        curl_multi_perform(self->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(self->multi, &left)))
            if (msg->msg == CURLMSG_DONE)
                s_on_done(self, msg->easy_handle, msg->data.result);
    }
    now = s_mono();
    int64_t next = 1000;
    for (cmd_t *c = self->head; c; c = c->next) {
        if (c->state == CV_COMMAND_FINISHED
            && (c->result_sent_at == 0 || now - c->result_sent_at >= RESEND_MS))
            s_send_result(self, c);
        if (c->state == CV_COMMAND_RUNNING && !c->easy && c->due - now < next)
            next = c->due - now < 0 ? 0 : c->due - now;
    }
    if (self->inflight > 0 && next > 10)
        next = 10;
    if (self->journal_bytes > COMPACT_BYTES && self->inflight == 0 && cv_commands__rewrite(self) < 0)
        self->failed = true;
    return self->failed ? -1 : (int) next;
}

cv_command_info_t cv_commands_info(const cv_commands_t *self, uint64_t id)
{
    cv_command_info_t info = { 0 };
    const cmd_t *c = cv_commands__find_id(self, id);
    if (!c)
        return info;
    info.state = c->state;
    info.done = c->done;
    info.possible_duplicate = c->dup;
    info.uncertain = c->uncertain || c->pending_try;
    info.attempts = c->attempts;
    info.http_status = c->http_status ? c->http_status
                     : (int) json_integer_value(json_object_get(c->detail, "http_status"));
    const char *ref = json_string_value(json_object_get(c->detail, "reference"));
    snprintf(info.reference, sizeof info.reference, "%s", ref ? ref : "");
    return info;
}

size_t cv_commands_open(const cv_commands_t *self)
{
    size_t n = 0;
    for (const cmd_t *c = self->head; c; c = c->next)
        n += c->state == CV_COMMAND_RUNNING || c->state == CV_COMMAND_FINISHED;
    return n;
}
