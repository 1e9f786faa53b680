/*  driver_imap_fetch — one IMAP session.

    libcurl connects, negotiates TLS (imaps://, certificates checked) and
    logs in (CURLOPT_CONNECT_ONLY stops right after the login); the commands
    after it are sent with curl_easy_send and read with curl_easy_recv,
    because libcurl's own FETCH uses BODY[] — which sets \Seen at once — and
    drops the literal of a custom command. Commands used: SELECT, UID SEARCH,
    UID FETCH (RFC822.SIZE BODY.PEEK[]<0.MAX>), UID STORE +FLAGS.SILENT,
    UID MOVE (RFC 6851), CREATE, LOGOUT. Every wait is bounded by timeout_ms.
    Errors name the command and the server's status word, never its text
    (it may quote an address). */
#include "cv_imap.h"

#include "cv_alloc.h"
#include "cv_buf.h"

#include <curl/curl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct cv_imap_session {
    CURL *curl;
    const cv_imap_config_t *config;
    uint64_t uidvalidity;
    unsigned tag;
    cv_buf_t in;                 /* bytes received, not yet consumed */
    size_t lit_off, lit_len;     /* the BODY[] literal of the last reply */
    bool has_lit;
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int s_wait(cv_imap_session_t *self, bool out, int64_t deadline)
{
    curl_socket_t fd;
    if (curl_easy_getinfo(self->curl, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK || fd == CURL_SOCKET_BAD)
        return -1;
    int64_t left = deadline - s_now_ms();
    if (left <= 0)
        return -1;
    struct pollfd p = { .fd = fd, .events = out ? POLLOUT : POLLIN };
    int rc = poll(&p, 1, left > 1000 ? 1000 : (int) left);
    return rc < 0 ? -1 : 0;
}

static int s_send(cv_imap_session_t *self, const char *data, size_t len, int64_t deadline)
{
    size_t done = 0;
    while (done < len) {
        size_t n = 0;
        CURLcode rc = curl_easy_send(self->curl, data + done, len - done, &n);
        if (rc == CURLE_AGAIN) {
            if (s_wait(self, true, deadline) < 0)
                return -1;
            continue;
        }
        if (rc != CURLE_OK)
            return -1;
        done += n;
    }
    return 0;
}

/* Reads until the tagged reply of `tag`. Returns the offset of that line's
   status word in self->in, or -1 (timeout, connection lost, too large). */
static long s_reply(cv_imap_session_t *self, const char *tag, size_t max, int64_t deadline)
{
    size_t tl = strlen(tag), scan = 0;
    self->has_lit = false;
    for (;;) {
        /* consume complete lines */
        while (scan < self->in.len) {
            char *line = self->in.data + scan;
            char *crlf = memmem(line, self->in.len - scan, "\r\n", 2);
            if (!crlf)
                break;
            size_t ll = (size_t) (crlf - line);
            if (ll > 2 && line[ll - 1] == '}') {               /* a literal follows */
                char *open = line + ll - 2;
                while (open > line && *open >= '0' && *open <= '9')
                    open--;
                if (*open == '{' && open < line + ll - 2) {
                    size_t n = strtoull(open + 1, NULL, 10);
                    size_t start = (size_t) (crlf + 2 - self->in.data);
                    if (n > max + 65536)
                        return -1;
                    if (self->in.len < start + n)
                        break;                                   /* wait for the rest */
                    if (!self->has_lit && open - line >= 6 && memmem(line, (size_t) (open - line), "BODY[]", 6)) {
                        self->has_lit = true;
                        self->lit_off = start;
                        self->lit_len = n;
                    }
                    scan = start + n;                             /* the line goes on after it */
                    continue;
                }
            }
            if (ll > tl && strncmp(line, tag, tl) == 0 && line[tl] == ' ')
                return (long) (scan + tl + 1);
            scan = (size_t) (crlf + 2 - self->in.data);
        }
        char buf[65536];
        size_t n = 0;
        CURLcode rc = curl_easy_recv(self->curl, buf, sizeof buf, &n);
        if (rc == CURLE_AGAIN) {
            if (s_wait(self, false, deadline) < 0)
                return -1;
            continue;
        }
        if (rc != CURLE_OK || n == 0)
            return -1;
        if (cv_buf_add(&self->in, buf, n) < 0)
            return -1;
    }
}

/* Sends one command and reads its reply: 0 OK, 1 NO/BAD (err says which),
   -1 transport. The reply stays in self->in until the next command. */
static int s_command(cv_imap_session_t *self, const char *what, size_t max, char *err, size_t errlen,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int s_command(cv_imap_session_t *self, const char *what, size_t max, char *err, size_t errlen,
                     const char *fmt, ...)
{
    char tag[16], line[8192];
    snprintf(tag, sizeof tag, "c%u", ++self->tag);
    int n = snprintf(line, sizeof line, "%s ", tag);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t) n, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t) n + 3 > sizeof line) {
        snprintf(err, errlen, "%s: command too long", what);
        return 1;
    }
    memcpy(line + n, "\r\n", 3);
    cv_buf_reset(&self->in);
    int64_t deadline = s_now_ms() + self->config->timeout_ms;
    if (s_send(self, line, (size_t) n + 2, deadline) < 0) {
        snprintf(err, errlen, "%s: cannot send (connection lost)", what);
        return -1;
    }
    long at = s_reply(self, tag, max, deadline);
    if (at < 0) {
        snprintf(err, errlen, "%s: no complete answer within %lld ms (or connection lost)", what,
                 (long long) self->config->timeout_ms);
        return -1;
    }
    const char *status = self->in.data + at;
    if (strncmp(status, "OK", 2) == 0)
        return 0;
    snprintf(err, errlen, "%s: the server answered %.3s", what, status);
    return 1;
}

cv_imap_session_t *cv_imap_open(const cv_imap_config_t *config, char *err, size_t errlen)
{
    cv_imap_session_t *self = cv_zcalloc(1, sizeof *self);
    if (!self || !(self->curl = curl_easy_init())) {
        snprintf(err, errlen, "out of memory");
        free(self);
        return NULL;
    }
    self->config = config;
    self->in.limit = (size_t) config->max_mail_bytes + (1 << 20);
    CURL *c = self->curl;
    curl_easy_setopt(c, CURLOPT_URL, config->url);
    curl_easy_setopt(c, CURLOPT_USERNAME, config->user);
    curl_easy_setopt(c, CURLOPT_PASSWORD, config->password);
    curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long) config->timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) config->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "imap,imaps");
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (config->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, config->ca_file);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "cannot connect and log in to %s: %s", config->url_for_logs, curl_easy_strerror(rc));
        cv_imap_close(&self);
        return NULL;
    }
    if (s_command(self, "SELECT", 0, err, errlen, "SELECT \"%s\"", config->mailbox) != 0) {
        cv_imap_close(&self);
        return NULL;
    }
    const char *v = memmem(self->in.data, self->in.len, "[UIDVALIDITY ", 13);
    self->uidvalidity = v ? strtoull(v + 13, NULL, 10) : 0;
    if (!self->uidvalidity) {
        snprintf(err, errlen, "SELECT: the server gave no UIDVALIDITY");
        cv_imap_close(&self);
        return NULL;
    }
    if (config->done_folder) {
        char ignored[128];
        s_command(self, "CREATE", 0, ignored, sizeof ignored, "CREATE \"%s\"", config->done_folder);
    }
    return self;
}

void cv_imap_close(cv_imap_session_t **self_p)
{
    cv_imap_session_t *self = *self_p;
    if (!self)
        return;
    if (self->curl) {
        char ignored[128];
        if (self->uidvalidity)
            s_command(self, "LOGOUT", 0, ignored, sizeof ignored, "LOGOUT");
        curl_easy_cleanup(self->curl);
    }
    cv_buf_free(&self->in);
    free(self);
    *self_p = NULL;
}

uint64_t cv_imap_uidvalidity(const cv_imap_session_t *self)
{
    return self->uidvalidity;
}

int cv_imap_search(cv_imap_session_t *self, uint64_t *uids, int max, char *err, size_t errlen)
{
    const cv_imap_config_t *c = self->config;
    char what[300];
    if (c->done_folder)
        snprintf(what, sizeof what, "UNDELETED");
    else if (strcasecmp(c->flag, "\\Seen") == 0)
        snprintf(what, sizeof what, "UNSEEN UNDELETED");
    else if (strcasecmp(c->flag, "\\Flagged") == 0)
        snprintf(what, sizeof what, "UNFLAGGED UNDELETED");
    else
        snprintf(what, sizeof what, "UNKEYWORD %s UNDELETED", c->flag);
    int rc = s_command(self, "UID SEARCH", 0, err, errlen, "UID SEARCH %s", what);
    if (rc != 0)
        return -1;
    int n = 0;
    const char *p = self->in.data, *end = self->in.data + self->in.len;
    while (p < end) {
        const char *eol = memmem(p, (size_t) (end - p), "\r\n", 2);
        if (!eol)
            break;
        if (eol - p > 8 && strncasecmp(p, "* SEARCH", 8) == 0) {
            const char *s = p + 8;
            while (s < eol && n < max) {
                while (s < eol && *s == ' ')
                    s++;
                char *e;
                unsigned long long u = strtoull(s, &e, 10);
                if (e == s)
                    break;
                /* keep them sorted: servers answer in order, but make sure */
                int k = n;
                while (k > 0 && uids[k - 1] > u) {
                    uids[k] = uids[k - 1];
                    k--;
                }
                uids[k] = u;
                n++;
                s = e;
            }
        }
        p = eol + 2;
    }
    return n;
}

int cv_imap_fetch(cv_imap_session_t *self, uint64_t uid, size_t max, char **data, size_t *len, bool *too_large,
                  char *err, size_t errlen)
{
    *data = NULL;
    *len = 0;
    *too_large = false;
    int rc = s_command(self, "UID FETCH", max, err, errlen, "UID FETCH %llu (RFC822.SIZE BODY.PEEK[]<0.%zu>)",
                       (unsigned long long) uid, max);
    if (rc != 0)
        return -1;
    if (!self->has_lit)
        return 1;                                       /* expunged meanwhile */
    const char *sz = memmem(self->in.data, self->lit_off, "RFC822.SIZE ", 12);
    if (sz && strtoull(sz + 12, NULL, 10) > max)
        *too_large = true;
    *data = cv_zmalloc(self->lit_len + 1);
    if (!*data) {
        snprintf(err, errlen, "UID FETCH: out of memory");
        return -1;
    }
    memcpy(*data, self->in.data + self->lit_off, self->lit_len);
    (*data)[self->lit_len] = '\0';
    *len = self->lit_len;
    return 0;
}

int cv_imap_done(cv_imap_session_t *self, const uint64_t *uids, int n, char *err, size_t errlen)
{
    cv_buf_t set = { 0 };
    for (int i = 0; i < n; i++) {
        char one[24];
        snprintf(one, sizeof one, "%s%llu", i ? "," : "", (unsigned long long) uids[i]);
        cv_buf_addstr(&set, one);
    }
    cv_buf_add(&set, "", 0);
    if (set.failed) {
        cv_buf_free(&set);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc;
    if (self->config->done_folder)
        rc = s_command(self, "UID MOVE", 0, err, errlen, "UID MOVE %s \"%s\"", set.data, self->config->done_folder);
    else
        rc = s_command(self, "UID STORE", 0, err, errlen, "UID STORE %s +FLAGS.SILENT (%s)", set.data,
                       self->config->flag);
    cv_buf_free(&set);
    return rc == 0 ? 0 : -1;
}
