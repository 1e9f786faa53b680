/*  tz — wall-clock dates as back-office software writes them, turned into UTC.

    French exports write dates in Europe/Paris local time, without an
    offset. To store an instant we need the zone's rules, so this module
    reads the IANA zone file itself (/usr/share/zoneinfo/<name>, TZif
    format: a table of transitions plus a POSIX TZ rule for the years after
    the table). A loaded zone is immutable: any number of threads may use
    it at once, and nothing here touches the TZ environment variable or the
    C library's time zone state.

    Local time that the clock showed twice or never is read this way:
      - the hour repeated when clocks go back (2024-10-27 02:30 in Paris)
        is its FIRST occurrence (summer time: 00:30Z);
      - a time inside the gap when clocks go forward (2024-03-31 02:30,
        which never happened) is read with the offset in force before the
        jump (+01:00: 01:30Z).
    A date written with an explicit offset is taken as written.

    Times are counted as int64 seconds since 1970-01-01T00:00:00Z, and
    "local seconds" are the same count applied to the wall-clock fields as
    if they were UTC. */
#ifndef CV_TZ_H
#define CV_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_datefmt.h"

#define CV_TZ_DIR "/usr/share/zoneinfo"
#define CV_TZ_UTC_LEN 20           /* "YYYY-MM-DDTHH:MM:SSZ" */

typedef struct cv_tz cv_tz_t;

/* A date read from text; offset (seconds east of UTC) only if has_offset. */
typedef cv_datefmt_civil_t cv_tz_civil_t;

/* Loads zone `name` (e.g. "Europe/Paris") from CV_TZ_DIR. NULL with a
   reason in err when the name is unsafe, unknown or the file unreadable. */
cv_tz_t *cv_tz_new(const char *name, char *err, size_t errlen);
void cv_tz_destroy(cv_tz_t **self_p);
const char *cv_tz_name(const cv_tz_t *self);

/* UTC offset (seconds east) in force at instant utc. */
int32_t cv_tz_offset_at(const cv_tz_t *self, int64_t utc);

/* The UTC instant of local wall-clock seconds, with the rules above. */
int64_t cv_tz_local_to_utc(const cv_tz_t *self, int64_t local);

/* Seconds of a civil date-time counted as UTC (no validation). */
int64_t cv_tz_civil_secs(int year, int month, int day, int hour, int min, int sec);

/* Year, month and day of a count of days since 1970-01-01 (years 1-9999). */
void cv_tz_civil_date(int64_t days, int *year, int *month, int *day);

/* The instant a parsed date names: its own offset if it has one, else
   wall-clock time in zone. */
int64_t cv_tz_civil_to_utc(const cv_tz_t *zone, const cv_tz_civil_t *c);

/* Writes "YYYY-MM-DDTHH:MM:SSZ". */
void cv_tz_format_utc(int64_t utc, char out[CV_TZ_UTC_LEN + 1]);

/* Reads text (NUL-terminated) into *out. format is one that passed
   cv_tz_check_format (read by cv_datefmt_read: %Y %m %d %H %I %p %b ...,
   or "excel"), or NULL for ISO 8601: YYYY-MM-DD, optionally followed by
   'T' or ' ' and HH:MM[:SS[.frac]] and by Z or +HH[:MM] / -HH[:MM] / +HHMM.
   The whole text must match, the date must exist (no 31/02) and an
   offset, in either form, be below 24 hours. Returns 0, or -1. */
int cv_tz_parse(const char *text, const char *format, cv_tz_civil_t *out);

/* The same, with the reason of a failure in why (which part did not
   match and at which character, or which part does not exist; never the
   text). Returns 0, CV_DATEFMT_NOMATCH or CV_DATEFMT_NODATE. */
int cv_tz_parse_why(const char *text, const char *format, cv_tz_civil_t *out, char *why, size_t whylen);

/* Checks a format at load time (cv_datefmt_check). Returns 0, or -1 with
   a reason in why. */
int cv_tz_check_format(const char *format, char *why, size_t whylen);

#endif
