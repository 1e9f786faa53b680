/*  ctl_progress — the progress line of civibusctl's long commands.

    "remap demo: records compared: 1200/5000 (24.0%), 31 changed, 812/s
    (average 790/s), 0m01s elapsed, ETA 0m05s": the items done of the
    phase's total, what the command adds, the rate over the last second
    and on average, the time so far and the time left at the average
    rate. On a terminal the line is redrawn in place (\r, erase to the end
    of the line) and the final one ends it; elsewhere (--progress to a
    file) one line a second. Never on a non-terminal unless asked: a job's
    log (cron mail, the journal) is for results, and stdout keeps only the
    command's summary either way. */
#include "ctl_progress.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cv_text.h"

static int64_t s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cv_ctl_progress_start(cv_ctl_progress_t *self, const char *what, long long total, bool asked)
{
    memset(self, 0, sizeof *self);
    self->tty = isatty(STDERR_FILENO) == 1;
    self->on = asked || self->tty;
    self->what = what;
    self->total = total;
    self->start = self->last = s_now();
}

void cv_ctl_progress(cv_ctl_progress_t *self, long long done, const char *extra, bool final)
{
    if (!self->on)
        return;
    int64_t now = s_now();
    if (!final && now - self->last < 1000)
        return;
    double dt = (double) (now - self->last) / 1000.0, all = (double) (now - self->start) / 1000.0;
    double rate = dt > 0 ? (double) (done - self->last_done) / dt : 0;
    double avg = all > 0 ? (double) done / all : 0;
    char took[24], eta[40] = "";
    cv_text_duration(took, sizeof took, all);
    if (!final && done > 0 && self->total > done) {
        char left[24];
        cv_text_duration(left, sizeof left, all * (double) (self->total - done) / (double) done);
        snprintf(eta, sizeof eta, ", ETA %s", left);
    }
    fprintf(stderr, "%s%s: %lld/%lld (%.1f%%)%s%s, %.0f/s (average %.0f/s), %s elapsed%s%s",
            self->tty ? "\r\033[K" : "", self->what, done, self->total,
            self->total > 0 ? 100.0 * (double) done / (double) self->total : 100.0,
            extra ? ", " : "", extra ? extra : "", rate, avg, took, eta, self->tty && !final ? "" : "\n");
    fflush(stderr);
    self->last = now;
    self->last_done = done;
}
