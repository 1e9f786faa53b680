/*  api_attachments — the files of a request (docs/attachments.md).

    POST /v1/requests takes an optional "attachments": [{"name", "content_base64"}]
    (api_intake.c): cv_api_attachments_read checks and decodes them before
    anything is written — strict base64 (RFC 4648, padded, no line breaks),
    at most attachments.max_files, each at most attachments.max_bytes and
    all of them attachments.max_total_bytes once decoded, typed by their
    first bytes only (cv_attach_sniff: PDF, JPEG, PNG), names cleaned. A
    refusal names the field's index ("attachments[2]"), never a value.
    The files go to the content-addressed folder (lib/cv_attach.h)
    before the registration's transaction, their rows (`attachments`,
    025_mail_attachments.sql) in it: a refused registration leaves at most
    files no row names, which `civibusctl attachments gc` removes
    (ctl_attachments.c). The writes and the registration hold a shared
    PostgreSQL advisory lock (CV_API_ATTACH_LOCK); gc takes it exclusively
    for each folder it sweeps, so it never removes a file whose row is
    about to commit.

        GET /v1/requests/{id}/attachments            the list
        GET /v1/requests/{id}/attachments/{sha}      the bytes (sha: its SHA-256)

    Both for whoever may read the request's content: the access table's
    `summary` row (an agent of the request's service, a supervisor, an
    admin; another service's agent: 403, before any attachment is looked
    at). A sha256 that is not 64 lower-case hex digits, or not attached to
    THAT request, is 404: one request's files are never reached through
    another. Each read is audited with the request's citizen. */
#ifndef CV_API_ATTACHMENTS_H
#define CV_API_ATTACHMENTS_H

#include "api_config.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The advisory lock key of the attachments folder ("civattch"). */
#define CV_API_ATTACH_LOCK "7163386843247174504"

typedef struct {
    unsigned char *data;         /* decoded, malloc'd */
    size_t len;
    const char *mime;            /* cv_attach_sniff's */
    char *name;                  /* cleaned, malloc'd; NULL: none given */
} cv_api_attachment_t;

typedef struct {
    cv_api_attachment_t *items;
    size_t n;
} cv_api_attachments_t;

/* Takes body's "attachments" out of it and decodes them into *out (n = 0
   when absent, null or empty). 0, or -1 with the refusal (a 400's message,
   naming the index, never a value) in why; *out is then empty. */
int cv_api_attachments_read(json_t *body, const cv_api_config_t *cfg, cv_api_attachments_t *out,
                            char *why, size_t whylen);
void cv_api_attachments_free(cv_api_attachments_t *a);

/* A sender's file name made safe to keep and to give back: the part after
   the last '/' or '\', without control characters (C0, DEL, C1) nor the
   bidirectional controls that make "x\u202Efdp.exe" look like "xexe.pdf",
   without leading dots and spaces or trailing spaces, cut at a character
   boundary to 255 bytes. NULL when nothing is left (or name is NULL).
   name must be valid UTF-8 (the server checked the body). */
char *cv_api_attachment_name_clean(const char *name);

/* The Content-Disposition of a download: attachment; filename="ascii"
   (a fallback: non-ASCII, quotes and backslashes as '_');
   filename*=UTF-8''percent-encoded (RFC 6266, RFC 8187). Without a name:
   the sha256's first 12 digits and the type's extension. malloc'd. */
char *cv_api_attachment_disposition(const char *name, const char *sha256, const char *mime);

/* The body cap of a request (api_server.c, at its headers): the larger
   attachments.* cap for POST /v1/requests with a bearer token (the path as
   written, with or without a final '/'), http.max_body_bytes otherwise. */
int64_t cv_api_body_cap(const cv_api_config_t *cfg, const char *method, const char *url,
                        const char *authorization);

#endif
