/*  ctl_progress — the progress line of civibusctl's long commands (remap,
    dead-letters replay): on stderr, every second, when stderr is a terminal
    or when --progress was given. See ctl_progress.c. */
#ifndef CTL_PROGRESS_H
#define CTL_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    bool on, tty;
    const char *what;               /* "remap etat-civil: records compared" */
    long long total;                /* items the phase goes through */
    int64_t start, last;            /* monotonic ms */
    long long last_done;
} cv_ctl_progress_t;

/* A phase of `total` items; on when asked (--progress) or stderr is a terminal. */
void cv_ctl_progress_start(cv_ctl_progress_t *self, const char *what, long long total, bool asked);
/* done items so far; extra (may be NULL) is appended ("3 changed"). Prints
   at most once a second, and always when final (which ends the line). */
void cv_ctl_progress(cv_ctl_progress_t *self, long long done, const char *extra, bool final);

#endif
