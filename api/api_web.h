/*  api_web — the pages people use, served by civibus-api itself (docs/web.md).

    The pages are plain files under web/ (HTML, CSS, a little JavaScript, the
    French texts' catalogue): no build step, no CDN, nothing from outside —
    a city's network may have no Internet. At start-up the API reads
    web.dir once into memory (only known file types; at most 128 files of
    at most 512 KiB each), so a page costs no disk access; a file changed
    on disk is served after a SIGHUP (cv_api_web_reload) or a restart.

    URLs: /assets/NAME is web/assets/NAME; /PAGE and /PAGE/anything (for
    example /suivi/KXD7M4RT9CP, the link of a notification) is
    web/PAGE/index.html, whose script reads the rest of the path. Pages read
    their data through the API's own endpoints, with its access rules and
    rate limits: there is no second way to data here.

    Every answer carries a strict Content-Security-Policy (scripts, styles
    and images from this server only, no inline script, no framing),
    X-Content-Type-Options, Referrer-Policy: no-referrer (a tracking code in
    the URL never leaves in a Referer) and an ETag; a matching
    If-None-Match is answered 304. */
#ifndef CV_API_WEB_H
#define CV_API_WEB_H

#include <stdbool.h>

#include "api_server.h"

typedef struct cv_api_web cv_api_web_t;

/* Loads dir; NULL with err ("DIR/FILE: reason") when it cannot be read or
   breaks a limit. */
cv_api_web_t *cv_api_web_new(const char *dir, char *err, size_t errlen);
void cv_api_web_destroy(cv_api_web_t **self_p);
/* Reads the folder again; on success the new files are served from now on
   (*nfiles of them), else -1 with err and the old ones stay. */
int cv_api_web_reload(cv_api_web_t *self, size_t *nfiles, char *err, size_t errlen);

/* When req's path is a page's or an asset's (its first segment names a
   folder of web/), fills the answer and returns true; false otherwise
   (the API's routes then serve it). */
bool cv_api_web_serve(cv_api_web_t *self, cv_api_req_t *req);

/* The headers every page and asset answer carries (for api_server.c). */
#define CV_API_WEB_CSP "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;" \
    " connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

#endif
