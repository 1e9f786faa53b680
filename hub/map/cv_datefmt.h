/*  datefmt — dates read as exports write them, in a strptime-like format.

    Back-office software writes dates in many ways: `04/03/2024 10:00`,
    `04/12/2018 11:11:26 AM`, `14 févr. 2024`, `jeudi 14/03/2024`, or an
    Excel serial such as `43203.4652`. The C library's strptime reads some
    of them, but its month and day names and AM/PM follow the process
    locale, it has no French names without the locale installed, and it
    says nothing about why a text did not match. This reader is our own:
    the same format language, fixed French and English names whatever the
    locale, and a reason naming the part that did not match and where.

    Conversions: %Y %y %m %d %e %H %I %M %S %p %z %F %T %R %b %B %h %a %A
    %n %t %%, and the whole format "excel" for an Excel serial date. A
    format is checked once at load (cv_datefmt_check); cv_datefmt_read
    then reads one text. Reasons name a conversion and a character
    position, never the text itself (it may be personal data).

    Nothing here allocates or has state: safe from any thread. */
#ifndef CV_DATEFMT_H
#define CV_DATEFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CV_DATEFMT_MAX 64          /* longest accepted format */
#define CV_DATEFMT_EXCEL "excel"   /* the format of Excel serial dates */

/* Returned by cv_datefmt_read: the text does not have the format's form;
   or it has, but names no real date or time (31 April, Excel's 29/02/1900). */
#define CV_DATEFMT_NOMATCH (-1)
#define CV_DATEFMT_NODATE (-2)

/* A date read from text; offset (seconds east of UTC) only if has_offset. */
typedef struct {
    int year, month, day;
    int hour, min, sec;
    bool has_offset;
    int32_t offset;
} cv_datefmt_civil_t;

/* Checks a format at load: known conversions only, a year, a month and a
   day, %I with %p and %p with %I, no longer than CV_DATEFMT_MAX. Returns
   0, or -1 with a reason in why. */
int cv_datefmt_check(const char *format, char *why, size_t whylen);

/* Reads text (NUL-terminated, whole) with a format that passed
   cv_datefmt_check into *out. Returns 0, CV_DATEFMT_NOMATCH or
   CV_DATEFMT_NODATE with a reason in why (why may be NULL). */
int cv_datefmt_read(const char *text, const char *format, cv_datefmt_civil_t *out,
                    char *why, size_t whylen);

/* Checks that a civil date names a real day and time (years 1-9999,
   offset below 24 hours). Returns 0, or CV_DATEFMT_NODATE with a reason. */
int cv_datefmt_valid(const cv_datefmt_civil_t *c, char *why, size_t whylen);

/* The position of p in text, in characters (UTF-8) from 1: what reasons
   say ("at character N"). */
int cv_datefmt_char_at(const char *text, const char *p);

#endif
