/*  civibus-adapter — the generic adapter program.

    replay  reads a JSON-lines file (one raw record per line) and delivers
            every line to the hub through the runtime (cv_client), then
            waits until the hub has settled all of them. It is the demo
            adapter, the load generator of the benchmark, and the simplest
            example of how an adapter drives cv_client: submit while
            can_accept, poll to flush a batch, wait until settled.
    keygen  writes a CURVE key pair (zcert files) for an adapter or the hub.

    replay's progress: when stderr is a terminal (or with --progress, e.g.
    to a file), every second a line with the lines read (and the share of
    the file, from its size and the read offset), the records acked and
    nacked, the settle rate over the last second and on average, and an
    ETA from the average byte rate. On a terminal the line is redrawn in
    place (\r); elsewhere one line per second. Never on a non-terminal
    (the journal) unless asked: a service's log is for events.

    Exit codes: 0 done, 1 fatal error, 2 bad arguments or config,
    3 the hub refused our key, 4 --timeout expired. See docs/adapters.md. */
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cv_log.h"
#include "cv_text.h"
#include "runtime/cv_adapter_config.h"
#include "runtime/cv_client.h"
#include "runtime/cv_resend.h"
#include "runtime/cv_run.h"

#define EXIT_FATAL   1
#define EXIT_USAGE   2
#define EXIT_AUTH    3
#define EXIT_TIMEOUT 4
#define DESCRIPTION  "civibus-adapter/0.1 replay"

static const char *s_usage =
    "usage:\n"
    "  civibus-adapter replay --config FILE --source NAME --file RECORDS.jsonl\n"
    "                         [--rate N] [--timeout SECONDS] [--progress]\n"
    "      send every line of RECORDS.jsonl to the hub as one raw record of\n"
    "      source NAME; print \"sent N acked A nacked K\" once all are settled.\n"
    "      --rate N         pace to N records per second\n"
    "      --timeout S      give up (exit 4) if not all settled after S seconds\n"
    "      --progress       a progress line every second on stderr (the default\n"
    "                       when stderr is a terminal)\n"
    "  civibus-adapter run --config FILE\n"
    "      serve one source with the driver its config names (rest, webhook,\n"
    "      filedrop) until SIGINT/SIGTERM; see docs/adapters.md.\n"
    "  civibus-adapter resend --config FILE [--source NAME] --since TIME [--timeout S]\n"
    "      after a restore of the hub's database: send again the spool's records\n"
    "      settled at or after TIME (2026-12-07T10:15:00Z); see docs/adapters.md.\n"
    "  civibus-adapter keygen --out PATH [--force]\n"
    "      write a CURVE key pair: PATH (public) and PATH_secret (secret, 0600);\n"
    "      print the public key. --force overwrites an existing pair.\n"
    "  civibus-adapter --help\n"
    "exit codes: 0 ok, 1 fatal error, 2 bad arguments or config,\n"
    "            3 the hub refused this adapter's key, 4 timeout\n";

static int s_bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "civibus-adapter: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", s_usage);
    return EXIT_USAGE;
}

static bool s_parse_positive(const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end != '\0' || !(v > 0) || v > 1e9)
        return false;
    *out = v;
    return true;
}

/* ----------------------------------------------------------------- replay */

typedef struct {
    const char *config, *source, *file;
    double rate, timeout;           /* 0: none */
    bool progress;                  /* --progress */
} replay_args_t;

/* The progress line (top of file). */
typedef struct {
    bool on, tty;
    FILE *in;
    off_t size;                     /* 0: unknown (a pipe) */
    int64_t start, last;            /* zclock_mono */
    uint64_t last_settled;
    bool drawn;                     /* a \r line is on the terminal */
} progress_t;

static void s_progress_init(progress_t *self, bool asked, FILE *in)
{
    memset(self, 0, sizeof *self);
    self->tty = isatty(STDERR_FILENO) == 1;
    self->on = asked || self->tty;
    self->in = in;
    struct stat st;
    if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode))
        self->size = st.st_size;
    self->start = self->last = zclock_mono();
}

/* Prints the line when a second has passed since the last one (or at once
   with final); final ends a terminal's line. */
static void s_progress(progress_t *self, cv_client_t *client, uint64_t lines, bool final)
{
    if (!self->on)
        return;
    int64_t now = zclock_mono();
    if (!final && now - self->last < 1000)
        return;
    cv_client_stats_t st = cv_client_stats(client);
    uint64_t settled = st.acked + st.nacked;
    double dt = (double) (now - self->last) / 1000.0, all = (double) (now - self->start) / 1000.0;
    double rate = dt > 0 ? (double) (settled - self->last_settled) / dt : 0;
    double avg = all > 0 ? (double) settled / all : 0;
    char share[32] = "", eta[48] = "";
    off_t pos = ftello(self->in);
    if (self->size > 0 && pos >= 0) {
        snprintf(share, sizeof share, " (%.1f%%)", 100.0 * (double) pos / (double) self->size);
        if (!final && pos > 0 && all > 0) {
            char d[24];
            cv_text_duration(d, sizeof d, all * (double) (self->size - pos) / (double) pos);
            snprintf(eta, sizeof eta, ", ETA %s", d);
        }
    }
    char took[24];
    cv_text_duration(took, sizeof took, all);
    fprintf(stderr, "%sreplay: %" PRIu64 " lines read%s, %" PRIu64 " acked, %" PRIu64 " nacked, "
            "%.0f/s (average %.0f/s), %s elapsed%s%s",
            self->tty ? "\r\033[K" : "", lines, share, st.acked, st.nacked, rate, avg, took, eta,
            self->tty && !final ? "" : "\n");
    fflush(stderr);
    self->drawn = self->tty && !final;
    self->last = now;
    self->last_settled = settled;
}

static int s_replay_args(int argc, char **argv, replay_args_t *args)
{
    memset(args, 0, sizeof *args);
    for (int i = 0; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--progress") == 0) {
            args->progress = true;
            continue;
        }
        if (i + 1 >= argc)
            return s_bad_usage("option %s needs a value", opt);
        const char *val = argv[++i];
        if (strcmp(opt, "--config") == 0)
            args->config = val;
        else if (strcmp(opt, "--source") == 0)
            args->source = val;
        else if (strcmp(opt, "--file") == 0)
            args->file = val;
        else if (strcmp(opt, "--rate") == 0) {
            if (!s_parse_positive(val, &args->rate))
                return s_bad_usage("--rate needs a positive number, not '%s'", val);
        }
        else if (strcmp(opt, "--timeout") == 0) {
            if (!s_parse_positive(val, &args->timeout))
                return s_bad_usage("--timeout needs a positive number of seconds, not '%s'", val);
        }
        else
            return s_bad_usage("unknown option %s", opt);
    }
    if (!args->config || !args->source || !args->file)
        return s_bad_usage("replay needs %s", "--config, --source and --file");
    return 0;
}

static bool s_blank(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!strchr(" \t\r\n", line[i]))
            return false;
    return true;
}

static int s_client_failed(cv_client_t *client, const replay_args_t *args, const char *endpoint)
{
    cv_client_error_t error = cv_client_error(client);
    if (error == CV_CLIENT_ERR_AUTH) {
        fprintf(stderr, "civibus-adapter: the hub at %s refused the key of source '%s' "
                "(public key %s): list this key for the source in the hub config\n",
                endpoint, args->source, cv_client_public_key(client));
        return EXIT_AUTH;
    }
    fprintf(stderr, "civibus-adapter: %s\n", cv_client_error_text(error));
    return EXIT_FATAL;
}

/* Submits the file's lines in batches (one spool sync each), paced by
   --rate, until the end of the file, then waits for every settlement. */
static int s_replay_loop(cv_client_t *client, FILE *in, const replay_args_t *args,
                         const char *endpoint, uint64_t *accepted)
{
    char *line = NULL;
    size_t cap = 0;
    uint64_t lineno = 0;
    bool eof = false;
    int rc = -1;
    int64_t start = zclock_mono();
    progress_t progress;
    s_progress_init(&progress, args->progress, in);
    int64_t deadline = args->timeout > 0 ? start + (int64_t) (args->timeout * 1000) : INT64_MAX;
    double next_due = (double) start;
    while (rc < 0) {
        int64_t now = zclock_mono();
        if (now >= deadline) {
            rc = EXIT_TIMEOUT;
            break;
        }
        size_t batch = 0, batch_max = cv_client_window(client) / 2;
        if (batch_max < 1)
            batch_max = 1;
        int64_t wait = 0;
        while (!eof && batch < batch_max) {
            if (!cv_client_can_accept(client)) {
                wait = 50;
                break;
            }
            if (args->rate > 0 && (double) now < next_due) {
                wait = (int64_t) (next_due - (double) now) + 1;
                break;
            }
            ssize_t n = getline(&line, &cap, in);
            if (n < 0) {
                if (ferror(in)) {
                    fprintf(stderr, "civibus-adapter: cannot read %s: %s\n", args->file, strerror(errno));
                    rc = EXIT_FATAL;
                }
                eof = true;
                break;
            }
            lineno++;
            if (n > 0 && line[n - 1] == '\n')
                n--;
            if (n > 0 && line[n - 1] == '\r')
                n--;
            if (s_blank(line, (size_t) n))
                continue;
            int sub = cv_client_submit(client, line, (size_t) n);
            if (sub < 0)
                break;
            if (sub == 1)
                cv_warn("replay", "%s line %" PRIu64 ": record of %zd bytes refused (over max_event_bytes %u)",
                        args->file, lineno, n, cv_client_max_event_bytes(client));
            else
                (*accepted)++;
            batch++;
            if (args->rate > 0) {
                next_due += 1000.0 / args->rate;
                now = zclock_mono();
            }
        }
        if (rc >= 0)
            break;
        if (cv_client_error(client) != CV_CLIENT_OK) {
            rc = s_client_failed(client, args, endpoint);
            break;
        }
        if (eof) {
            if (cv_client_flush(client) == 0 && cv_client_settled(client)) {
                rc = 0;
                break;
            }
            wait = 1000;
        }
        if (wait > deadline - now)
            wait = deadline - now;
        if (progress.on && wait > 1000)
            wait = 1000;
        if (cv_client_poll(client, (int) wait) < 0)
            rc = s_client_failed(client, args, endpoint);
        s_progress(&progress, client, lineno, false);
    }
    s_progress(&progress, client, lineno, true);
    free(line);
    return rc;
}

static int s_replay(int argc, char **argv)
{
    replay_args_t args;
    if (s_replay_args(argc, argv, &args) != 0)
        return EXIT_USAGE;
    char err[1024];
    cv_adapter_config_t *config = cv_adapter_config_load(args.config, err, sizeof err);
    cv_client_opts_t opts;
    if (!config || cv_adapter_config_client_opts(config, args.source, &opts, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        cv_adapter_config_destroy(&config);
        return EXIT_USAGE;
    }
    opts.description = DESCRIPTION;
    FILE *in = fopen(args.file, "r");
    if (!in) {
        fprintf(stderr, "civibus-adapter: cannot open %s: %s\n", args.file, strerror(errno));
        cv_adapter_config_destroy(&config);
        return EXIT_USAGE;
    }
    int rc = EXIT_FATAL;
    cv_client_t *client = cv_client_new(&opts, err, sizeof err);
    if (!client)
        fprintf(stderr, "civibus-adapter: source '%s': %s\n", args.source, err);
    else {
        uint64_t accepted = 0;
        rc = s_replay_loop(client, in, &args, config->endpoint, &accepted);
        cv_client_stats_t st = cv_client_stats(client);
        if (rc == 0)
            printf("sent %" PRIu64 " acked %" PRIu64 " nacked %" PRIu64 "\n", accepted, st.acked, st.nacked);
        else if (rc == EXIT_TIMEOUT)
            fprintf(stderr, "civibus-adapter: timeout after %g s: %" PRIu64 " records unsettled "
                    "(sent %" PRIu64 " acked %" PRIu64 " nacked %" PRIu64 ")\n", args.timeout,
                    cv_client_unsettled(client), accepted, st.acked, st.nacked);
        if (st.refused > 0)
            cv_warn("replay", "%" PRIu64 " records refused locally (over max_event_bytes)", st.refused);
        cv_client_destroy(&client);
    }
    fclose(in);
    cv_adapter_config_destroy(&config);
    fflush(stdout);
    return rc;
}

/* ----------------------------------------------------------------- keygen */

static int s_keygen(int argc, char **argv)
{
    const char *out = NULL;
    bool force = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--force") == 0)
            force = true;
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out = argv[++i];
        else
            return s_bad_usage("keygen: unexpected argument %s", argv[i]);
    }
    if (!out || !*out)
        return s_bad_usage("keygen needs %s", "--out PATH");
    char secret[4096];
    if (snprintf(secret, sizeof secret, "%s_secret", out) >= (int) sizeof secret)
        return s_bad_usage("keygen: path too long: %s", out);
    struct stat st;
    if (!force && (stat(out, &st) == 0 || stat(secret, &st) == 0)) {
        fprintf(stderr, "civibus-adapter: %s or %s already exists (use --force to replace the pair)\n",
                out, secret);
        return EXIT_FATAL;
    }
    const char *slash = strrchr(out, '/');
    if (slash && slash != out) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", (int) (slash - out), out);
        if (stat(dir, &st) != 0 && zsys_dir_create("%s", dir) != 0) {
            fprintf(stderr, "civibus-adapter: cannot create directory %s\n", dir);
            return EXIT_FATAL;
        }
    }
    zcert_t *cert = zcert_new();
    if (!cert) {
        fprintf(stderr, "civibus-adapter: cannot generate a key pair\n");
        return EXIT_FATAL;
    }
    zcert_set_meta(cert, "created-by", "civibus-adapter keygen");
    int rc = zcert_save(cert, out);
    if (rc == 0 && chmod(secret, 0600) != 0)
        rc = -1;
    if (rc != 0)
        fprintf(stderr, "civibus-adapter: cannot write %s and %s: %s\n", out, secret, strerror(errno));
    else
        printf("%s\n", zcert_public_txt(cert));
    zcert_destroy(&cert);
    return rc == 0 ? 0 : EXIT_FATAL;
}

int main(int argc, char **argv)
{
    zsys_handler_set(NULL);          /* Ctrl-C stops us at once: the spool is durable */
    cv_log_init("civibus-adapter", CV_LOG_INFO);
    if (argc < 2) {
        fprintf(stderr, "%s", s_usage);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        printf("%s", s_usage);
        return 0;
    }
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0) {
            printf("%s", s_usage);
            return 0;
        }
    if (strcmp(cmd, "replay") == 0)
        return s_replay(argc - 2, argv + 2);
    if (strcmp(cmd, "resend") == 0)
        return cv_resend_main(argc - 2, argv + 2);
    if (strcmp(cmd, "keygen") == 0)
        return s_keygen(argc - 2, argv + 2);
    if (strcmp(cmd, "run") == 0) {
        if (argc != 4 || strcmp(argv[2], "--config") != 0)
            return s_bad_usage("%s", "run needs exactly: --config FILE");
        return cv_run(argv[3]);
    }
    return s_bad_usage("unknown command '%s'", cmd);
}
