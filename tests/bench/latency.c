/*  latency — send-to-ACK latency of one adapter at a steady rate (make bench).

    latency --config ADAPTER.yaml --source NAME --file RECORDS.jsonl --rate N
            [--count N] [--timeout SECONDS] [--samples FILE]

    A real adapter (the cv_client runtime, its durable spool and CURVE
    connection) sends the file's lines at a fixed rate and measures, for
    each record, the time from its SCHEDULED send time to the moment the
    client sees it settled (ACK or NACK). Record i is due at t0 + i/rate,
    whatever happened before: when the hub is slow the tool falls behind
    schedule and that lag counts in the latency of every record sent late
    (no coordinated omission). t0 is taken once the session is open, so
    the CURVE handshake is not counted. What is counted is what a record
    lives through in production: the spool append and fdatasync, the
    send, the hub's batching delay, mapping, the commit, and the ACK.

    The records are read into memory first (no disk reads while timing).
    Settlement is seen in cv_client_poll, which returns as soon as the hub
    answers; the open records are checked in spool id order.

    Prints one JSON line: count, acked, nacked, p50/p90/p99/p999/max/mean
    in ms, the p99 of the worst second, and where the adapter side itself
    stalled at worst: sends behind schedule, the spool's fdatasync
    (cv_client_flush), cv_client_poll past its timeout. --samples writes
    "due_ms latency_ms" per record, for a closer look. Exit 0
    when every record settled, 1 otherwise, 2 on bad arguments. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cv_log.h"
#include "runtime/cv_adapter_config.h"
#include "runtime/cv_client.h"

typedef struct {
    const char *config, *source, *file, *samples;
    double rate, timeout;
    long count;                  /* 0: every line of the file */
} args_t;

typedef struct {
    char **lines;
    size_t *lens;
    size_t n;
} records_t;

typedef struct {
    uint64_t id;                 /* spool id, 0 until submitted */
    double due_ms;               /* scheduled send time, from t0 */
    double latency_ms;           /* < 0 while not settled */
} sample_t;

typedef struct {
    double late_max_ms;          /* worst lag of a send behind its schedule */
    double flush_max_ms;         /* worst cv_client_flush: the spool's fdatasync */
    double poll_over_max_ms;     /* worst cv_client_poll overrun past its timeout */
} stalls_t;

static double s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static int s_usage(const char *why)
{
    fprintf(stderr, "latency: %s\nusage: latency --config FILE --source NAME --file RECORDS.jsonl "
            "--rate N [--count N] [--timeout SECONDS] [--samples FILE]\n", why);
    return 2;
}

static int s_args(int argc, char **argv, args_t *a)
{
    *a = (args_t) { .timeout = 120 };
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *opt = argv[i], *val = argv[i + 1];
        if (strcmp(opt, "--config") == 0)
            a->config = val;
        else if (strcmp(opt, "--source") == 0)
            a->source = val;
        else if (strcmp(opt, "--file") == 0)
            a->file = val;
        else if (strcmp(opt, "--rate") == 0)
            a->rate = strtod(val, NULL);
        else if (strcmp(opt, "--count") == 0)
            a->count = strtol(val, NULL, 10);
        else if (strcmp(opt, "--timeout") == 0)
            a->timeout = strtod(val, NULL);
        else if (strcmp(opt, "--samples") == 0)
            a->samples = val;
        else
            return s_usage("unknown option");
    }
    if (argc % 2 == 0)
        return s_usage("every option needs a value");
    if (!a->config || !a->source || !a->file)
        return s_usage("--config, --source and --file are required");
    if (!(a->rate > 0 && a->rate <= 1e6) || a->count < 0 || !(a->timeout > 0))
        return s_usage("--rate must be in (0, 1e6], --count >= 0, --timeout > 0");
    return 0;
}

static void s_records_free(records_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->lines[i]);
    free(r->lines);
    free(r->lens);
    *r = (records_t) { 0 };
}

/* Reads up to max lines (0: all), skipping blank ones. */
static int s_records_load(records_t *r, const char *path, size_t max)
{
    FILE *in = fopen(path, "r");
    if (!in) {
        fprintf(stderr, "latency: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 0;
    char *line = NULL;
    size_t linecap = 0;
    ssize_t len;
    int rc = 0;
    while ((max == 0 || r->n < max) && (len = getline(&line, &linecap, in)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        if (r->n == cap) {
            cap = cap ? cap * 2 : 4096;
            char **lines = realloc(r->lines, cap * sizeof *lines);
            size_t *lens = lines ? realloc(r->lens, cap * sizeof *lens) : NULL;
            if (lines)
                r->lines = lines;
            if (!lines || !lens) {
                rc = -1;
                break;
            }
            r->lens = lens;
        }
        if (!(r->lines[r->n] = strdup(line))) {
            rc = -1;
            break;
        }
        r->lens[r->n++] = (size_t) len;
    }
    free(line);
    fclose(in);
    if (rc < 0)
        fprintf(stderr, "latency: out of memory reading %s\n", path);
    return rc;
}

/* Marks newly settled samples in [*first_open, sent); moves first_open. */
static void s_collect(cv_client_t *client, sample_t *s, size_t sent, size_t *first_open,
                      size_t *settled, double t0)
{
    double now = s_now_ms() - t0;
    for (size_t i = *first_open; i < sent; i++)
        if (s[i].latency_ms < 0 && cv_client_is_settled(client, s[i].id)) {
            s[i].latency_ms = now - s[i].due_ms;
            (*settled)++;
        }
    while (*first_open < sent && s[*first_open].latency_ms >= 0)
        (*first_open)++;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted values. */
static double s_pct(const double *v, size_t n, double p)
{
    size_t rank = (size_t) ceil(p / 100.0 * (double) n);
    return v[rank > 0 ? rank - 1 : 0];
}

/* The highest per-second p99 (records grouped by due second). */
static double s_worst_second_p99(const sample_t *s, size_t n, double rate)
{
    size_t per = rate >= 1 ? (size_t) rate : 1;
    double *v = malloc(per * sizeof *v), worst = 0;
    for (size_t from = 0; v && from < n; from += per) {
        size_t m = 0;
        for (size_t i = from; i < n && i < from + per; i++)
            if (s[i].latency_ms >= 0)
                v[m++] = s[i].latency_ms;
        if (m == 0)
            continue;
        qsort(v, m, sizeof *v, s_cmp_double);
        double p = s_pct(v, m, 99);
        if (p > worst)
            worst = p;
    }
    free(v);
    return worst;
}

static int s_write_samples(const sample_t *s, size_t n, const char *path)
{
    FILE *out = fopen(path, "w");
    if (!out) {
        fprintf(stderr, "latency: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%.3f %.3f\n", s[i].due_ms, s[i].latency_ms);
    return fclose(out);
}

static void s_report(const sample_t *s, size_t n, cv_client_stats_t st, const stalls_t *stalls,
                     const args_t *a)
{
    double *v = malloc((n ? n : 1) * sizeof *v);
    double sum = 0;
    size_t m = 0;
    for (size_t i = 0; v && i < n; i++)
        if (s[i].latency_ms >= 0) {
            v[m++] = s[i].latency_ms;
            sum += s[i].latency_ms;
        }
    if (!v || m == 0) {
        printf("{\"count\": %zu, \"settled\": 0}\n", n);
        free(v);
        return;
    }
    qsort(v, m, sizeof *v, s_cmp_double);
    printf("{\"count\": %zu, \"settled\": %zu, \"acked\": %" PRIu64 ", \"nacked\": %" PRIu64 ", "
           "\"rate\": %g, \"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, "
           "\"max_ms\": %.3f, \"mean_ms\": %.3f, \"worst_second_p99_ms\": %.3f, "
           "\"send_late_max_ms\": %.3f, \"flush_max_ms\": %.3f, \"poll_overrun_max_ms\": %.3f}\n",
           n, m, st.acked, st.nacked, a->rate, s_pct(v, m, 50), s_pct(v, m, 90), s_pct(v, m, 99),
           s_pct(v, m, 99.9), v[m - 1], sum / (double) m, s_worst_second_p99(s, n, a->rate),
           stalls->late_max_ms, stalls->flush_max_ms, stalls->poll_over_max_ms);
    free(v);
}

/* Waits for the session to open; -1 on a fatal error or at the deadline. */
static int s_connect(cv_client_t *client, double deadline)
{
    while (!cv_client_connected(client)) {
        if (s_now_ms() > deadline || cv_client_poll(client, 100) < 0) {
            fprintf(stderr, "latency: no session with the hub (%s)\n",
                    cv_client_error_text(cv_client_error(client)));
            return -1;
        }
    }
    return 0;
}

/* The timed loop: submit what is due, flush, wait for answers or the
   next due time. Returns 0 when everything settled, -1 otherwise. */
static int s_run(cv_client_t *client, const records_t *r, sample_t *s, const args_t *a,
                 stalls_t *stalls)
{
    double interval = 1000.0 / a->rate;
    double t0 = s_now_ms(), deadline = t0 + a->timeout * 1000.0;
    size_t sent = 0, first_open = 0, settled = 0;
    for (size_t i = 0; i < r->n; i++)
        s[i] = (sample_t) { 0, (double) i * interval, -1 };
    while (settled < r->n) {
        double now = s_now_ms() - t0;
        if (now + t0 > deadline) {
            fprintf(stderr, "latency: timeout: %zu of %zu records settled\n", settled, r->n);
            return -1;
        }
        bool submitted = false;
        while (sent < r->n && s[sent].due_ms <= now) {
            if (cv_client_submit(client, r->lines[sent], r->lens[sent]) != 0) {
                fprintf(stderr, "latency: record %zu not accepted by the client\n", sent + 1);
                return -1;
            }
            s[sent].id = cv_client_last_id(client);
            if (now - s[sent].due_ms > stalls->late_max_ms)
                stalls->late_max_ms = now - s[sent].due_ms;
            sent++;
            submitted = true;
        }
        double t = s_now_ms();
        if (submitted && cv_client_flush(client) < 0)
            return -1;
        if (s_now_ms() - t > stalls->flush_max_ms)
            stalls->flush_max_ms = s_now_ms() - t;
        s_collect(client, s, sent, &first_open, &settled, t0);
        double wait = sent < r->n ? s[sent].due_ms - (s_now_ms() - t0) : 100;
        int wait_ms = wait <= 0 ? 0 : (int) ceil(wait);
        t = s_now_ms();
        if (cv_client_poll(client, wait_ms) < 0) {
            fprintf(stderr, "latency: %s\n", cv_client_error_text(cv_client_error(client)));
            return -1;
        }
        if (s_now_ms() - t - wait_ms > stalls->poll_over_max_ms)
            stalls->poll_over_max_ms = s_now_ms() - t - wait_ms;
        s_collect(client, s, sent, &first_open, &settled, t0);
    }
    return 0;
}

int main(int argc, char **argv)
{
    args_t a;
    if (s_args(argc, argv, &a) != 0)
        return 2;
    cv_log_init("bench-latency", CV_LOG_WARN);
    char err[1024];
    cv_adapter_config_t *config = cv_adapter_config_load(a.config, err, sizeof err);
    cv_client_opts_t opts;
    if (!config || cv_adapter_config_client_opts(config, a.source, &opts, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        cv_adapter_config_destroy(&config);
        return 2;
    }
    opts.description = "civibus-bench/latency";
    opts.name = a.source;
    records_t records = { 0 };
    sample_t *samples = NULL;
    cv_client_t *client = NULL;
    int rc = 1;
    if (s_records_load(&records, a.file, (size_t) a.count) < 0)
        goto done;
    if (records.n == 0 || (a.count > 0 && records.n < (size_t) a.count)) {
        fprintf(stderr, "latency: %s has %zu records, %ld wanted\n", a.file, records.n, a.count);
        goto done;
    }
    samples = calloc(records.n, sizeof *samples);
    client = cv_client_new(&opts, err, sizeof err);
    if (!samples || !client) {
        fprintf(stderr, "latency: %s\n", client ? "out of memory" : err);
        goto done;
    }
    stalls_t stalls = { 0 };
    if (s_connect(client, s_now_ms() + 30000) == 0
        && s_run(client, &records, samples, &a, &stalls) == 0)
        rc = 0;
    s_report(samples, records.n, cv_client_stats(client), &stalls, &a);
    if (a.samples && s_write_samples(samples, records.n, a.samples) != 0)
        rc = 1;
done:
    cv_client_destroy(&client);
    free(samples);
    s_records_free(&records);
    cv_adapter_config_destroy(&config);
    return rc;
}
