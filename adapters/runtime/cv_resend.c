/*  cv_resend — see cv_resend.h: after a restore of the hub's database, the
    spool's settled records since a time are sent again.

    Step 1 opens the spool alone (not through the client: nothing connects
    before the records are marked), asks the marks for the first id that may
    have been settled since --since and unsettles the retained records from
    there; step 2 is the client of every adapter, which sends unsettled
    records first and settles them as the hub answers. The command prints

        resent N acked A (duplicates D) nacked K

    N the records this run sends (marked again in step 1, plus those an
    interrupted earlier run left unsettled), A, D, K their settlements. A - D is what
    the hub stored now: what the restore had lost. Only counts are printed
    or logged, never a record. */
#include "cv_resend.h"

#include "cv_adapter_config.h"
#include "cv_client.h"
#include "cv_log.h"
#include "spool/cv_spool.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_FATAL   1
#define EXIT_USAGE   2
#define EXIT_AUTH    3
#define EXIT_TIMEOUT 4

static int s_usage(const char *why, const char *arg)
{
    fprintf(stderr, "civibus-adapter resend: ");
    fprintf(stderr, why, arg);
    fprintf(stderr, "\nusage: civibus-adapter resend --config FILE [--source NAME] --since TIME "
            "[--timeout SECONDS]\n  TIME: 2026-12-07T10:15:00Z, 2026-12-07 11:15:00+01:00 or @UNIX_SECONDS\n");
    return EXIT_USAGE;
}

/* Reads exactly `width` digits as an int in [lo, hi]; advances *p. */
static bool s_num(const char **p, int width, int lo, int hi, int *out)
{
    int v = 0;
    for (int i = 0; i < width; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += width;
    *out = v;
    return v >= lo && v <= hi;
}

int cv_resend_parse_time(const char *text, int64_t *ms)
{
    const char *p = text;
    if (*p == '@') {
        char *end;
        errno = 0;
        long long s = strtoll(p + 1, &end, 10);
        if (errno || end == p + 1 || *end || s < 0 || s > 253402300799LL)
            return -1;
        *ms = (int64_t) s * 1000;
        return 0;
    }
    struct tm tm = { 0 };
    int y, mo, d, h, mi, s = 0, frac = 0;
    if (!s_num(&p, 4, 1970, 9999, &y) || *p++ != '-' || !s_num(&p, 2, 1, 12, &mo) || *p++ != '-'
        || !s_num(&p, 2, 1, 31, &d) || (*p != 'T' && *p != ' ') || !(p++, s_num(&p, 2, 0, 23, &h))
        || *p++ != ':' || !s_num(&p, 2, 0, 59, &mi))
        return -1;
    if (*p == ':' && !(p++, s_num(&p, 2, 0, 60, &s)))
        return -1;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0)
            return -1;
        for (; digits < 3; digits++)
            frac *= 10;
    }
    if (*p == ' ')
        p++;
    int offset = 0;                 /* minutes east of UTC */
    if (strcmp(p, "Z") == 0 || strcmp(p, "UTC") == 0)
        offset = 0;
    else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
        if (!s_num(&p, 2, 0, 14, &oh))
            return -1;
        if (*p == ':')
            p++;
        if (*p && !s_num(&p, 2, 0, 59, &om))
            return -1;
        if (*p)
            return -1;
        offset = sign * (oh * 60 + om);
    }
    else
        return -1;                  /* no zone: refused */
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    time_t t = timegm(&tm);
    if (t == (time_t) -1 || tm.tm_mday != d)   /* 31 February */
        return -1;
    *ms = ((int64_t) t - (int64_t) offset * 60) * 1000 + frac;
    return 0;
}

/* Step 1: marks the records again; how many the client will send (those
   marked now and those an interrupted earlier run left unsettled), or -1. */
static int64_t s_unsettle(const cv_client_opts_t *opts, int64_t since_ms, char *err, size_t errlen)
{
    cv_spool_opts_t sopts = opts->spool;
    sopts.max_record_bytes = opts->max_event_bytes ? opts->max_event_bytes : 262144;
    cv_spool_t *spool = cv_spool_open(opts->spool_dir, &sopts, err, errlen);
    if (!spool)
        return -1;
    uint64_t from = 0;
    int64_t n = -1;
    if (cv_spool_settled_since(spool, since_ms, &from) == 0)
        n = cv_spool_unsettle_from(spool, from);
    if (n < 0)
        snprintf(err, errlen, "%s: the spool failed (see the log above)", opts->spool_dir);
    else {
        cv_info("resend", "%s: %" PRId64 " settled records from spool id %" PRIu64 " marked to be sent again",
                opts->name ? opts->name : "?", n, from);
        n = (int64_t) cv_spool_unsettled_count(spool);   /* with those an earlier run left */
    }
    cv_spool_destroy(&spool);
    return n;
}

/* Step 2: the client delivers every unsettled record; an exit code. */
static int s_deliver(cv_client_t *client, double timeout, const char *source)
{
    int64_t deadline = timeout > 0 ? zclock_mono() + (int64_t) (timeout * 1000) : INT64_MAX;
    while (true) {
        if (cv_client_error(client) == CV_CLIENT_ERR_AUTH) {
            fprintf(stderr, "civibus-adapter: the hub refused the key of source '%s' (public key %s)\n",
                    source, cv_client_public_key(client));
            return EXIT_AUTH;
        }
        if (cv_client_error(client) != CV_CLIENT_OK) {
            fprintf(stderr, "civibus-adapter: %s\n", cv_client_error_text(cv_client_error(client)));
            return EXIT_FATAL;
        }
        if (cv_client_settled(client))
            return 0;
        int64_t now = zclock_mono();
        if (now >= deadline)
            return EXIT_TIMEOUT;
        int64_t wait = deadline - now < 1000 ? deadline - now : 1000;
        if (cv_client_poll(client, (int) wait) < 0 && cv_client_error(client) == CV_CLIENT_OK)
            return EXIT_FATAL;
    }
}

int cv_resend_main(int argc, char **argv)
{
    const char *config_path = NULL, *source = NULL, *since = NULL;
    double timeout = 0;
    for (int i = 0; i < argc; i += 2) {
        if (i + 1 >= argc)
            return s_usage("option %s needs a value", argv[i]);
        const char *opt = argv[i], *val = argv[i + 1];
        if (strcmp(opt, "--config") == 0)
            config_path = val;
        else if (strcmp(opt, "--source") == 0)
            source = val;
        else if (strcmp(opt, "--since") == 0)
            since = val;
        else if (strcmp(opt, "--timeout") == 0) {
            char *end;
            timeout = strtod(val, &end);
            if (end == val || *end || !(timeout > 0) || timeout > 1e9)
                return s_usage("--timeout needs a positive number of seconds, not '%s'", val);
        }
        else
            return s_usage("unknown option %s", opt);
    }
    if (!config_path || !since)
        return s_usage("%s", "--config and --since are required");
    int64_t since_ms;
    if (cv_resend_parse_time(since, &since_ms))
        return s_usage("--since: '%s' is not a time with its zone (e.g. 2026-12-07T10:15:00Z)", since);

    char err[1024];
    cv_adapter_config_t *config = cv_adapter_config_load(config_path, err, sizeof err);
    if (!config) {
        fprintf(stderr, "%s\n", err);
        return EXIT_USAGE;
    }
    if (!source)
        source = config->driver_source ? config->driver_source
                 : config->source_count == 1 ? config->sources[0].name : NULL;
    cv_client_opts_t opts;
    if (!source) {
        cv_adapter_config_destroy(&config);
        return s_usage("%s", "the config has several sources: name one with --source");
    }
    if (cv_adapter_config_client_opts(config, source, &opts, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        cv_adapter_config_destroy(&config);
        return EXIT_USAGE;
    }
    opts.description = "civibus-adapter/0.1 resend";
    opts.name = source;
    int rc = EXIT_FATAL;
    int64_t n = s_unsettle(&opts, since_ms, err, sizeof err);
    if (n < 0)
        fprintf(stderr, "civibus-adapter: source '%s': %s\n", source, err);
    else {
        cv_client_t *client = cv_client_new(&opts, err, sizeof err);
        if (!client)
            fprintf(stderr, "civibus-adapter: source '%s': %s\n", source, err);
        else {
            rc = s_deliver(client, timeout, source);
            cv_client_stats_t st = cv_client_stats(client);
            if (rc == 0)
                printf("resent %" PRId64 " acked %" PRIu64 " (duplicates %" PRIu64 ") nacked %" PRIu64 "\n",
                       n, st.acked, st.duplicates, st.nacked);
            else if (rc == EXIT_TIMEOUT)
                fprintf(stderr, "civibus-adapter: timeout after %g s: %" PRIu64 " records unsettled "
                        "(run resend again, or start the adapter: it sends them first)\n",
                        timeout, cv_client_unsettled(client));
            cv_client_destroy(&client);
        }
    }
    cv_adapter_config_destroy(&config);
    fflush(stdout);
    return rc;
}
