/*  http_load — paced (open-loop) HTTP GET load with latency from the
    scheduled send time (make bench: the API's timeline and status).

    http_load --base http://HOST:PORT --paths FILE --rate N --duration S
              [--connections N] [--token-file FILE] [--timeout S]
              [--samples FILE]

    Request i (path i of the file, cycled) is due at t0 + i/rate, whatever
    happened before. It is sent as soon as it is due and a keep-alive
    connection is free; its latency runs from its DUE time to the last byte
    of the answer. A slow server therefore cannot hide its queueing: while
    every connection waits for an answer, due requests pile up and each one
    counts the wait (no coordinated omission, unlike a closed loop such as
    plain wrk). The connections are opened before t0; a connection the
    server closes is reopened (blocking connect: localhost).

    Plain sockets and epoll, HTTP/1.1, one request in flight per connection
    (no pipelining); answers with Content-Length, chunked, or until close.
    The body is counted, not kept. --token-file: its first line is sent as
    "Authorization: Bearer ..." (a file, so the token is not in ps).

    The run ends when every request is answered, or --timeout seconds after
    the last one was due. A server that cannot keep up leaves requests
    unanswered (sent or not) at that point: they are counted apart
    ("unanswered", "saturated": true) and enter the percentiles with the
    latency they had reached, a lower bound, so a saturated run shows as
    such instead of looking fast on the few answers it got.

    Prints one JSON line: requests due, sent, answered, ok (2xx), non2xx,
    errors (transport: connection reset, malformed answer), unanswered, the
    status codes seen, the achieved rate (answers / time from t0 to the
    last answer), p50/p90/p99/p99.9/max/mean in ms, and the worst lag of a
    send behind its schedule. Exit 0 when every request got a 2xx answer,
    1 otherwise, 2 on bad arguments. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define HEAD_MAX 16384           /* status line and headers of one answer */
#define REQ_MAX 4096             /* one request */
#define LINE_MAX_ 64             /* a chunk-size or trailer line (rest is skipped) */

typedef struct {
    const char *base, *paths, *token_file, *samples;
    double rate, duration, timeout;
    int conns;
} args_t;

typedef struct {
    char **v;
    size_t n;
} lines_t;

typedef enum { P_HEAD, P_LEN, P_EOF, P_CSIZE, P_CDATA, P_CCRLF, P_TRAILER } phase_t;

typedef struct {
    int fd;
    bool busy;
    size_t req;                  /* index of the request in flight */
    char out[REQ_MAX];
    size_t out_len, out_off;
    char head[HEAD_MAX];
    size_t head_len;
    phase_t phase;
    size_t left;                 /* body or chunk bytes still to come */
    char line[LINE_MAX_];
    size_t line_len;
    int status;
    bool keep_alive;
} conn_t;

typedef struct {
    char host[256], port[16];
    char auth[200];              /* "Authorization: Bearer ...\r\n" or "" */
    lines_t paths;
    size_t total;                /* requests due in the run */
    double *latency;             /* ms from due time to answer; < 0: none */
    short *status;               /* per request: HTTP status, -1 transport error, 0 open */
    size_t next, answered, errors;
    double interval;             /* ms between due times */
    double last_answer_ms, late_max_ms;
    double end_ms;               /* when the run stopped, from t0 */
    int ep;
    conn_t *c;                   /* nconns of them (own allocation) */
    int nconns;
} load_t;

static double s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static int s_usage(const char *why)
{
    fprintf(stderr, "http_load: %s\nusage: http_load --base http://HOST:PORT --paths FILE --rate N "
            "--duration S [--connections N] [--token-file FILE] [--timeout S] [--samples FILE]\n", why);
    return 2;
}

static int s_args(int argc, char **argv, args_t *a)
{
    *a = (args_t) { .timeout = 10, .conns = 16 };
    if (argc % 2 == 0)
        return s_usage("every option needs a value");
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *opt = argv[i], *val = argv[i + 1];
        if (strcmp(opt, "--base") == 0)
            a->base = val;
        else if (strcmp(opt, "--paths") == 0)
            a->paths = val;
        else if (strcmp(opt, "--token-file") == 0)
            a->token_file = val;
        else if (strcmp(opt, "--samples") == 0)
            a->samples = val;
        else if (strcmp(opt, "--rate") == 0)
            a->rate = strtod(val, NULL);
        else if (strcmp(opt, "--duration") == 0)
            a->duration = strtod(val, NULL);
        else if (strcmp(opt, "--timeout") == 0)
            a->timeout = strtod(val, NULL);
        else if (strcmp(opt, "--connections") == 0)
            a->conns = atoi(val);
        else
            return s_usage("unknown option");
    }
    if (!a->base || !a->paths)
        return s_usage("--base and --paths are required");
    if (!(a->rate > 0 && a->rate <= 1e6) || !(a->duration > 0 && a->rate * a->duration <= 1e8)
        || !(a->timeout > 0) || a->conns < 1 || a->conns > MAX_CONNS)
        return s_usage("--rate in (0, 1e6], --duration > 0 (rate x duration <= 1e8), --timeout > 0, "
                       "--connections in [1, 256]");
    return 0;
}

/* "http://host:port" (no path, no TLS) into host and port. */
static int s_parse_base(const char *base, load_t *L)
{
    const char *p = strncmp(base, "http://", 7) == 0 ? base + 7 : NULL;
    const char *colon = p ? strchr(p, ':') : NULL;
    if (!colon || (size_t) (colon - p) >= sizeof L->host || strlen(colon + 1) >= sizeof L->port
        || strspn(colon + 1, "0123456789") != strlen(colon + 1) || colon[1] == '\0') {
        fprintf(stderr, "http_load: --base must be http://HOST:PORT, not '%s'\n", base);
        return -1;
    }
    memcpy(L->host, p, (size_t) (colon - p));
    L->host[colon - p] = '\0';
    snprintf(L->port, sizeof L->port, "%s", colon + 1);
    return 0;
}

static void s_lines_free(lines_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    *l = (lines_t) { 0 };
}

/* Non-blank lines of path (each at most 2 kB: a URL path). */
static int s_lines_load(lines_t *l, const char *path)
{
    FILE *in = fopen(path, "r");
    if (!in) {
        fprintf(stderr, "http_load: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    char buf[2048];
    size_t cap = 0;
    int rc = 0;
    while (rc == 0 && fgets(buf, sizeof buf, in)) {
        size_t len = strcspn(buf, "\r\n");
        buf[len] = '\0';
        if (len == 0)
            continue;
        if (l->n == cap) {
            cap = cap ? cap * 2 : 1024;
            char **v = realloc(l->v, cap * sizeof *v);
            if (!v) {
                rc = -1;
                break;
            }
            l->v = v;
        }
        if (buf[0] != '/' || !(l->v[l->n] = strdup(buf)))
            rc = -1;
        else
            l->n++;
    }
    fclose(in);
    if (rc < 0)
        fprintf(stderr, "http_load: %s: a line is not a path (/...) or out of memory\n", path);
    else if (l->n == 0)
        fprintf(stderr, "http_load: %s has no path\n", path);
    return rc < 0 || l->n == 0 ? -1 : 0;
}

static int s_token(load_t *L, const char *path)
{
    if (!path)
        return 0;
    FILE *in = fopen(path, "r");
    char tok[160] = "";
    if (!in || !fgets(tok, sizeof tok, in)) {
        fprintf(stderr, "http_load: cannot read a token from %s\n", path);
        if (in)
            fclose(in);
        return -1;
    }
    fclose(in);
    tok[strcspn(tok, "\r\n")] = '\0';
    snprintf(L->auth, sizeof L->auth, "Authorization: Bearer %s\r\n", tok);
    return 0;
}

/* ---- connections ------------------------------------------------------------------ */

static int s_open(load_t *L, conn_t *c)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
    int rc = getaddrinfo(L->host, L->port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "http_load: %s:%s: %s\n", L->host, L->port, gai_strerror(rc));
        return -1;
    }
    c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        fprintf(stderr, "http_load: cannot connect to %s:%s: %s\n", L->host, L->port, strerror(errno));
        freeaddrinfo(ai);
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        return -1;
    }
    freeaddrinfo(ai);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
    if (epoll_ctl(L->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        fprintf(stderr, "http_load: epoll_ctl: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

static void s_close(conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);                /* also leaves the epoll set */
    c->fd = -1;
    c->busy = false;
}

static void s_want_write(load_t *L, conn_t *c, bool on)
{
    struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
    epoll_ctl(L->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes what is left of the request; -1 on a transport error. */
static int s_flush(load_t *L, conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            s_want_write(L, c, true);
            return 0;
        }
        if (n <= 0)
            return -1;
        c->out_off += (size_t) n;
    }
    s_want_write(L, c, false);
    return 0;
}

/* The request in flight on c is over: status > 0 answered, -1 transport error. */
static void s_finish(load_t *L, conn_t *c, int status, double t0)
{
    double now = s_now_ms() - t0;
    L->status[c->req] = (short) status;
    if (status > 0) {
        L->latency[c->req] = now - (double) c->req * L->interval;
        L->answered++;
        L->last_answer_ms = now;
    } else {
        L->latency[c->req] = -1;
        L->errors++;
    }
    c->busy = false;
}

static int s_send(load_t *L, conn_t *c, size_t req)
{
    const char *path = L->paths.v[req % L->paths.n];
    int n = snprintf(c->out, sizeof c->out, "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: "
                     "civibus-bench/http_load\r\nAccept: application/json\r\n%s\r\n",
                     path, L->host, L->port, L->auth);
    if (n < 0 || (size_t) n >= sizeof c->out) {
        fprintf(stderr, "http_load: request %zu too long\n", req);
        return -1;
    }
    c->out_len = (size_t) n;
    c->out_off = 0;
    c->busy = true;
    c->req = req;
    c->head_len = 0;
    c->phase = P_HEAD;
    return 0;
}

/* ---- answers ---------------------------------------------------------------------- */

/* Status line and the three headers that frame the body; -1 on a malformed head. */
static int s_parse_head(conn_t *c)
{
    int major = 0, minor = 0, status = 0;
    if (sscanf(c->head, "HTTP/%d.%d %d", &major, &minor, &status) != 3 || status < 100 || status > 599)
        return -1;
    c->status = status;
    c->keep_alive = major == 1 && minor >= 1;
    bool chunked = false, has_len = false;
    long long len = 0;
    for (char *h = strstr(c->head, "\r\n"); h && h[2] != '\r'; h = strstr(h + 2, "\r\n")) {
        const char *name = h + 2;
        if (strncasecmp(name, "content-length:", 15) == 0) {
            len = strtoll(name + 15, NULL, 10);
            has_len = len >= 0;
        } else if (strncasecmp(name, "transfer-encoding:", 18) == 0) {
            chunked = strstr(name, "chunked") != NULL;     /* first line only matters */
        } else if (strncasecmp(name, "connection:", 11) == 0) {
            const char *v = name + 11;
            v += strspn(v, " \t");
            if (strncasecmp(v, "close", 5) == 0)
                c->keep_alive = false;
        }
    }
    if (chunked)
        c->phase = P_CSIZE, c->line_len = 0;
    else if (has_len)
        c->phase = P_LEN, c->left = (size_t) len;
    else if (status == 204 || status == 304 || status < 200)
        c->phase = P_LEN, c->left = 0;
    else
        c->phase = P_EOF, c->keep_alive = false;
    return 0;
}

/* Appends byte to the current line; true when the line ended ('\n'). */
static bool s_line_byte(conn_t *c, char ch)
{
    if (ch == '\n') {
        c->line[c->line_len < sizeof c->line ? c->line_len : sizeof c->line - 1] = '\0';
        return true;
    }
    if (c->line_len < sizeof c->line - 1)
        c->line[c->line_len++] = ch;
    return false;
}

/* Consumes body bytes; 1 when the answer is complete, 0 for more, -1 on error. */
static int s_body(conn_t *c, const char *p, size_t n)
{
    size_t i = 0;
    while (true) {
        if (c->phase == P_LEN && c->left == 0)
            return i == n ? 1 : -1;                   /* bytes past the answer: no pipelining */
        if (i == n)
            return 0;
        size_t take = n - i < c->left ? n - i : c->left;
        switch (c->phase) {
        case P_EOF:
            return 0;
        case P_LEN:
            c->left -= take, i += take;
            break;
        case P_CDATA:
            c->left -= take, i += take;
            if (c->left == 0)
                c->phase = P_CCRLF, c->line_len = 0;
            break;
        case P_CSIZE:
        case P_CCRLF:
        case P_TRAILER:
            if (!s_line_byte(c, p[i++]))
                break;
            if (c->phase == P_CCRLF) {
                c->phase = P_CSIZE, c->line_len = 0;
            } else if (c->phase == P_CSIZE) {
                char *end;
                unsigned long long size = strtoull(c->line, &end, 16);
                if (end == c->line)
                    return -1;
                c->phase = size ? P_CDATA : P_TRAILER, c->left = (size_t) size, c->line_len = 0;
            } else if (c->line_len == 0 || (c->line_len == 1 && c->line[0] == '\r')) {
                c->phase = P_LEN, c->left = 0;        /* end of trailer: complete */
            } else {
                c->line_len = 0;
            }
            break;
        case P_HEAD:
            return -1;
        }
    }
}

/* Feeds received bytes; 1 complete, 0 more to come, -1 malformed. */
static int s_feed(conn_t *c, const char *p, size_t n)
{
    if (c->phase != P_HEAD)
        return s_body(c, p, n);
    size_t room = sizeof c->head - 1 - c->head_len;
    size_t take = n < room ? n : room;
    memcpy(c->head + c->head_len, p, take);
    size_t old = c->head_len;
    c->head_len += take;
    c->head[c->head_len] = '\0';
    char *end = strstr(c->head + (old > 3 ? old - 3 : 0), "\r\n\r\n");
    if (!end)
        return c->head_len == sizeof c->head - 1 ? -1 : 0;
    size_t head_bytes = (size_t) (end + 4 - c->head);
    end[2] = '\0';                                    /* headers end with their "\r\n" */
    if (s_parse_head(c) != 0)
        return -1;
    return s_body(c, p + (head_bytes - old), n - (head_bytes - old));
}

/* Reads what c has; finishes its request on a complete answer or an error. */
static int s_on_readable(load_t *L, conn_t *c, double t0)
{
    char buf[65536];
    while (true) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        int done = -1;
        if (n == 0 && c->busy && c->phase == P_EOF)
            done = 1;
        else if (n > 0 && c->busy)
            done = s_feed(c, buf, (size_t) n);
        if (done == 0)
            continue;
        bool reopen = done < 0 || !c->keep_alive;
        if (c->busy)
            s_finish(L, c, done > 0 ? c->status : -1, t0);
        if (!reopen)
            return 0;
        s_close(c);
        return s_open(L, c);
    }
}

/* ---- the run ---------------------------------------------------------------------- */

static conn_t *s_idle(load_t *L)
{
    for (int i = 0; i < L->nconns; i++)
        if (!L->c[i].busy && L->c[i].fd >= 0)
            return &L->c[i];
    return NULL;
}

/* Sends every due request a free connection can take; -1 on a fatal error. */
static int s_dispatch(load_t *L, double t0)
{
    double now = s_now_ms() - t0;
    conn_t *c;
    while (L->next < L->total && (double) L->next * L->interval <= now && (c = s_idle(L))) {
        double due = (double) L->next * L->interval;
        if (now - due > L->late_max_ms)
            L->late_max_ms = now - due;
        if (s_send(L, c, L->next) != 0)
            return -1;
        L->next++;
        if (s_flush(L, c) != 0) {
            s_finish(L, c, -1, t0);
            s_close(c);
            if (s_open(L, c) != 0)
                return -1;
        }
    }
    return 0;
}

static int s_run(load_t *L, const args_t *a)
{
    double t0 = s_now_ms();
    double deadline = (a->duration + a->timeout) * 1000.0;
    while (L->answered + L->errors < L->total) {
        if (s_dispatch(L, t0) != 0)
            return -1;
        double now = s_now_ms() - t0;
        L->end_ms = now;
        if (now > deadline)
            break;
        double wait = L->next < L->total ? (double) L->next * L->interval - now : 100;
        int wait_ms = wait <= 0 ? (s_idle(L) ? 0 : 1) : (int) ceil(wait);
        struct epoll_event evs[64];
        int n = epoll_wait(L->ep, evs, 64, wait_ms);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "http_load: epoll_wait: %s\n", strerror(errno));
            return -1;
        }
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if ((evs[i].events & EPOLLOUT) && c->busy && s_flush(L, c) != 0) {
                s_finish(L, c, -1, t0);
                s_close(c);
                if (s_open(L, c) != 0)
                    return -1;
                continue;
            }
            if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && s_on_readable(L, c, t0) != 0)
                return -1;
        }
    }
    return 0;
}

/* ---- report ----------------------------------------------------------------------- */

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static double s_pct(const double *v, size_t n, double p)
{
    size_t rank = (size_t) ceil(p / 100.0 * (double) n);
    return n ? v[rank > 0 ? rank - 1 : 0] : 0;
}

static void s_report(const load_t *L, const args_t *a, size_t unanswered)
{
    double *v = malloc((L->total ? L->total : 1) * sizeof *v), sum = 0;
    size_t m = 0, ok = 0, non2xx = 0, codes[600] = { 0 };
    for (size_t i = 0; v && i < L->total; i++) {
        if (L->status[i] == 0) {                     /* unanswered: a lower bound */
            v[m++] = L->end_ms - (double) i * L->interval;
            sum += v[m - 1];
        }
        if (L->status[i] <= 0)
            continue;
        v[m++] = L->latency[i];
        sum += L->latency[i];
        codes[L->status[i]]++;
        if (L->status[i] >= 200 && L->status[i] < 300)
            ok++;
        else
            non2xx++;
    }
    if (v)
        qsort(v, m, sizeof *v, s_cmp_double);
    printf("{\"requests\": %zu, \"sent\": %zu, \"answered\": %zu, \"ok\": %zu, \"non2xx\": %zu, "
           "\"errors\": %zu, \"unanswered\": %zu, \"saturated\": %s, \"status\": {",
           L->total, L->next, L->answered, ok, non2xx, L->errors, unanswered, unanswered ? "true" : "false");
    const char *sep = "";
    for (int s = 100; s < 600; s++)
        if (codes[s]) {
            printf("%s\"%d\": %zu", sep, s, codes[s]);
            sep = ", ";
        }
    printf("}, \"rate\": %g, \"duration_s\": %g, \"connections\": %d, \"achieved_rps\": %.1f, "
           "\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, \"max_ms\": %.3f, "
           "\"mean_ms\": %.3f, \"send_late_max_ms\": %.3f}\n",
           a->rate, a->duration, a->conns,
           L->last_answer_ms > 0 ? (double) L->answered * 1000.0 / L->last_answer_ms : 0.0,
           s_pct(v, m, 50), s_pct(v, m, 90), s_pct(v, m, 99), s_pct(v, m, 99.9),
           m ? v[m - 1] : 0.0, m ? sum / (double) m : 0.0, L->late_max_ms);
    free(v);
}

static int s_write_samples(const load_t *L, const char *path)
{
    FILE *out = fopen(path, "w");
    if (!out) {
        fprintf(stderr, "http_load: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < L->total; i++)
        fprintf(out, "%.3f %d %.3f\n", (double) i * L->interval, L->status[i],
                L->status[i] > 0 ? L->latency[i] : -1.0);
    return fclose(out);
}

int main(int argc, char **argv)
{
    args_t a;
    if (s_args(argc, argv, &a) != 0)
        return 2;
    static load_t L;
    L.ep = -1;
    if (s_parse_base(a.base, &L) != 0 || s_lines_load(&L.paths, a.paths) != 0 || s_token(&L, a.token_file) != 0) {
        s_lines_free(&L.paths);
        return 2;
    }
    int rc = 1;
    L.total = (size_t) llround(a.rate * a.duration);
    L.interval = 1000.0 / a.rate;
    L.latency = calloc(L.total ? L.total : 1, sizeof *L.latency);
    L.status = calloc(L.total ? L.total : 1, sizeof *L.status);
    L.ep = epoll_create1(EPOLL_CLOEXEC);
    L.c = calloc((size_t) a.conns, sizeof *L.c);
    for (int i = 0; L.c && i < a.conns; i++)
        L.c[i].fd = -1;
    if (!L.latency || !L.status || !L.c || L.ep < 0) {
        fprintf(stderr, "http_load: out of memory or no epoll\n");
        goto done;
    }
    L.nconns = a.conns;
    for (int i = 0; i < L.nconns; i++)
        if (s_open(&L, &L.c[i]) != 0)
            goto done;
    if (s_run(&L, &a) != 0)
        goto done;
    size_t unanswered = L.total - L.answered - L.errors;
    if (unanswered)
        fprintf(stderr, "http_load: %zu requests unanswered after %g s\n", unanswered, a.duration + a.timeout);
    s_report(&L, &a, unanswered);
    if (a.samples && s_write_samples(&L, a.samples) != 0)
        goto done;
    size_t ok = 0;
    for (size_t i = 0; i < L.total; i++)
        ok += L.status[i] >= 200 && L.status[i] < 300;
    rc = ok == L.total ? 0 : 1;
done:
    for (int i = 0; i < L.nconns; i++)
        s_close(&L.c[i]);
    free(L.c);
    if (L.ep >= 0)
        close(L.ep);
    free(L.latency);
    free(L.status);
    s_lines_free(&L.paths);
    return rc;
}
