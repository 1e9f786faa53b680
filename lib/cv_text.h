/*  cv_text — small text helpers shared by the hub's mapping and the
    adapters' file readers. */
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

#endif
