/*  cv_text — small text helpers shared by the hub's mapping, the adapters'
    file readers, the programs' logs and progress lines. */
#ifndef CV_TEXT_H
#define CV_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the blank at the start (front) or the end of p[0..n): one
   ASCII white-space byte, a no-break space U+00A0 or a narrow no-break
   space U+202F (French exports put them before « : ; ? ! » and in
   numbers); 0 when there is none. */
size_t cv_text_blank(const char *p, size_t n, bool front);

/* Moves *p and shrinks *n past the blanks at both ends. */
void cv_text_trim(const char **p, size_t *n);

/* msg on one line in out (at most len bytes, NUL-terminated): each run of
   line breaks becomes "; ", trailing ones go. For libpq's connection
   errors, whose cause may be on a later line ("connection to server at
   localhost (::1) failed: Connection refused" first, then 127.0.0.1's
   certificate failure). Not for a statement's error: its DETAIL lines may
   quote values. Returns out. */
char *cv_text_one_line(const char *msg, char *out, size_t len);

/* s seconds as a progress line writes them: "4m07s", "2h13m" (0 for a
   negative, absurd or unknown value). */
void cv_text_duration(char *out, size_t len, double s);

#endif
