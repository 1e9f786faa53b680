/*  api_attachments — see api_attachments.h. Reading a registration's
    files (decode, type, name), the body cap that lets them in, and the
    two GET handlers. The rows are read with plain parameterised
    statements (cv_api_db_exec_params): 025's table is newer than the
    API's prepared set. */
#include "api_attachments.h"

#include "api_handler.h"
#include "api_util.h"
#include "cv_attach.h"
#include "cv_hash.h"
#include "cv_log.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

void cv_api_attachments_free(cv_api_attachments_t *a)
{
    for (size_t i = 0; a && i < a->n; i++) {
        free(a->items[i].data);
        free(a->items[i].name);
    }
    if (a) {
        free(a->items);
        a->items = NULL;
        a->n = 0;
    }
}

/* The length of the UTF-8 sequence at p (valid UTF-8) and its code point. */
static size_t s_utf8(const unsigned char *p, unsigned *cp)
{
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    size_t n = p[0] >= 0xF0 ? 4 : p[0] >= 0xE0 ? 3 : 2;
    unsigned v = p[0] & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
    for (size_t k = 1; k < n && p[k]; k++)
        v = (v << 6) | (p[k] & 0x3F);
    *cp = v;
    return n;
}

char *cv_api_attachment_name_clean(const char *name)
{
    if (!name)
        return NULL;
    const char *base = name;
    for (const char *p = name; *p; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    char *out = malloc(strlen(base) + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    const unsigned char *p = (const unsigned char *) base;
    while (*p) {
        unsigned cp;
        size_t len = s_utf8(p, &cp);
        bool drop = cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)           /* C0, DEL, C1 */
                    || (cp >= 0x200E && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E)  /* bidi */
                    || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF
                    || (n == 0 && (cp == '.' || cp == ' '));                     /* leading dots, spaces */
        if (!drop) {
            if (n + len > 255)
                break;                          /* cut before a character that does not fit */
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = 0;
    if (n == 0) {
        free(out);
        return NULL;
    }
    return out;
}

static const char *s_ext(const char *mime)
{
    return strcmp(mime, "application/pdf") == 0 ? "pdf" : strcmp(mime, "image/png") == 0 ? "png" : "jpg";
}

char *cv_api_attachment_disposition(const char *name, const char *sha256, const char *mime)
{
    char fallback[32];
    if (!name || !*name) {
        snprintf(fallback, sizeof fallback, "%.12s.%s", sha256, s_ext(mime));
        name = fallback;
    }
    size_t len = strlen(name);
    char *out = malloc(64 + 4 * len);           /* ascii copy + 3 bytes per encoded byte */
    if (!out)
        return NULL;
    char *w = out;
    w += sprintf(w, "attachment; filename=\"");
    for (const unsigned char *p = (const unsigned char *) name; *p; p++)
        *w++ = *p >= 0x20 && *p < 0x7F && *p != '"' && *p != '\\' ? (char) *p : '_';
    w += sprintf(w, "\"; filename*=UTF-8''");
    static const char keep[] = "!#$&+-.^_`|~";
    for (const unsigned char *p = (const unsigned char *) name; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
            || (*p && strchr(keep, *p)))
            *w++ = (char) *p;
        else
            w += sprintf(w, "%%%02X", *p);
    }
    *w = 0;
    return out;
}

int64_t cv_api_body_cap(const cv_api_config_t *cfg, const char *method, const char *url,
                        const char *authorization)
{
    if (cfg->attach_max_files > 0 && method && url && strcmp(method, "POST") == 0
        && (strcmp(url, "/v1/requests") == 0 || strcmp(url, "/v1/requests/") == 0)
        && authorization && strncasecmp(authorization, "Bearer ", 7) == 0)
        return cfg->attach_body_bytes;
    return cfg->max_body_bytes;
}

/* One element of the list: {"name"?, "content_base64"} into *a. */
static int s_read_one(json_t *el, size_t i, const cv_api_config_t *cfg, int64_t *total,
                      cv_api_attachment_t *a, char *why, size_t whylen)
{
    if (!json_is_object(el)) {
        snprintf(why, whylen, "attachments[%zu] is an object: {\"name\", \"content_base64\"}", i);
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(el, key, v) {
        if (strcmp(key, "name") != 0 && strcmp(key, "content_base64") != 0) {
            snprintf(why, whylen, "attachments[%zu]: unknown member (name and content_base64 only)", i);
            return -1;
        }
    }
    json_t *name = json_object_get(el, "name"), *b64 = json_object_get(el, "content_base64");
    if (name && !json_is_null(name) && !json_is_string(name)) {
        snprintf(why, whylen, "attachments[%zu].name is a text", i);
        return -1;
    }
    if (!json_is_string(b64) || json_string_length(b64) == 0) {
        snprintf(why, whylen, "attachments[%zu].content_base64 is required (the file, in base64)", i);
        return -1;
    }
    size_t blen = json_string_length(b64);
    /* the decoded size is known from the text's: refuse before decoding */
    if (blen / 4 * 3 > (size_t) cfg->attach_max_bytes + 2) {
        snprintf(why, whylen, "attachments[%zu] is larger than %lld bytes", i, (long long) cfg->attach_max_bytes);
        return -1;
    }
    size_t cap = blen / 4 * 3 + 3, len = 0;
    a->data = malloc(cap);
    if (!a->data) {
        snprintf(why, whylen, "attachments[%zu]: out of memory", i);
        return -1;
    }
    if (blen % 4 != 0
        || sodium_base642bin(a->data, cap, json_string_value(b64), blen, NULL, &len, NULL,
                             sodium_base64_VARIANT_ORIGINAL) != 0) {
        snprintf(why, whylen, "attachments[%zu].content_base64 is not base64 (RFC 4648, with its '=' padding,"
                 " no line breaks)", i);
        return -1;
    }
    a->len = len;
    if (len == 0) {
        snprintf(why, whylen, "attachments[%zu] is empty", i);
        return -1;
    }
    if ((int64_t) len > cfg->attach_max_bytes) {
        snprintf(why, whylen, "attachments[%zu] is larger than %lld bytes", i, (long long) cfg->attach_max_bytes);
        return -1;
    }
    *total += (int64_t) len;
    if (*total > cfg->attach_max_total) {
        snprintf(why, whylen, "attachments: more than %lld bytes in all (at attachments[%zu])",
                 (long long) cfg->attach_max_total, i);
        return -1;
    }
    a->mime = cv_attach_sniff(a->data, len);
    if (!a->mime) {
        snprintf(why, whylen, "attachments[%zu] is not a PDF, JPEG or PNG file (the type is read from the"
                 " content, never the name)", i);
        return -1;
    }
    a->name = json_is_string(name) ? cv_api_attachment_name_clean(json_string_value(name)) : NULL;
    return 0;
}

int cv_api_attachments_read(json_t *body, const cv_api_config_t *cfg, cv_api_attachments_t *out,
                            char *why, size_t whylen)
{
    out->items = NULL;
    out->n = 0;
    json_t *list = json_incref(json_object_get(body, "attachments"));
    json_object_del(body, "attachments");
    if (!list || json_is_null(list)) {
        json_decref(list);
        return 0;
    }
    int rc = -1;
    size_t n = json_array_size(list);
    if (!json_is_array(list))
        snprintf(why, whylen, "attachments is a list: [{\"name\", \"content_base64\"}, ...]");
    else if (n > (size_t) cfg->attach_max_files)
        snprintf(why, whylen, "attachments: at most %d files", cfg->attach_max_files);
    else if (n > 0 && !(out->items = calloc(n, sizeof *out->items)))
        snprintf(why, whylen, "attachments: out of memory");
    else {
        int64_t total = 0;
        rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            rc = s_read_one(json_array_get(list, i), i, cfg, &total, &out->items[i], why, whylen);
            out->n = i + 1;
            /* the base64 text is not needed any more: free it as we go */
            if (json_is_object(json_array_get(list, i)))
                json_object_del(json_array_get(list, i), "content_base64");
        }
    }
    json_decref(list);
    if (rc != 0)
        cv_api_attachments_free(out);
    return rc;
}

/* ---- GET /v1/requests/{id}/attachments[/{sha256}] ---- */

/* The request's row (sql's columns: service, citizen_id, then its own) when
   the caller may read its attachments; NULL when answered already: 404 no
   such request, 403 another service's agent, 503. */
static PGresult *s_request(cv_api_req_t *req, const cv_api_principal_t *who, const char *sql, int n,
                           const char *const *v)
{
    PGresult *r = cv_api_db_exec_params(sql, n, v);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        CV_API_DB_DOWN(req);
        return NULL;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        cv_api_error(req, 404, "not_found", "no such request");
        return NULL;
    }
    cv_api_view_t view = cv_api_view_for(who, PQgetisnull(r, 0, 0) ? NULL : PQgetvalue(r, 0, 0));
    if (!cv_api_field_allowed("request", "summary", view)) {
        PQclear(r);
        cv_api_error(req, 403, "forbidden", "the attachments of a request are for its service's agents,"
                     " supervisors and admins");
        return NULL;
    }
    return r;
}

static bool s_request_id(cv_api_req_t *req, char out[24])
{
    int64_t rid;
    if (!cv_api_parse_int(cv_api_param(req, "id"), 1, INT64_MAX, &rid)) {
        cv_api_error(req, 404, "not_found", "no such request");
        return false;
    }
    snprintf(out, 24, "%lld", (long long) rid);
    return true;
}

void cv_api_request_attachments(cv_api_req_t *req, const cv_api_principal_t *who)
{
    char rs[24];
    if (!s_request_id(req, rs))
        return;
    const char *v[1] = { rs };
    PGresult *r = s_request(req, who,
        "SELECT r.service, r.citizen_id, COALESCE((SELECT json_agg(json_build_object("
        "  'sha256', a.sha256, 'mime', a.mime, 'size', a.size, 'name', a.name, 'source', a.source,"
        "  'created_at', a.created_at) ORDER BY a.id) FROM attachments a WHERE a.request_id = r.id), '[]')::text"
        " FROM requests r WHERE r.id = $1::bigint", 1, v);
    if (!r)
        return;
    int64_t cid = PQgetisnull(r, 0, 1) ? 0 : strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    json_t *list = cv_api_row_json(r, 0, 2);
    PQclear(r);
    if (!list) {
        CV_API_DB_DOWN(req);
        return;
    }
    if (cv_api_audit(req, who, cid, strtoll(rs, NULL, 10), (int) json_array_size(list)) != 0) {
        json_decref(list);
        return;
    }
    cv_api_reply(req, 200, json_pack("{s:I, s:o}", "request_id", (json_int_t) strtoll(rs, NULL, 10),
                                     "attachments", list));
}

/* The stored type as a constant string (the row's CHECK allows these only). */
static const char *s_mime(const char *m)
{
    static const char *const known[] = { "application/pdf", "image/jpeg", "image/png" };
    for (size_t i = 0; i < 3; i++)
        if (strcmp(m, known[i]) == 0)
            return known[i];
    return NULL;
}

/* The whole file at path into a malloc'd buffer of exactly `size` bytes. */
static char *s_read_file(const char *path, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *buf = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t) st.st_size == size ? malloc(size) : NULL;
    size_t got = 0;
    while (buf && got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(buf);
            buf = NULL;
            break;
        }
        got += (size_t) n;
    }
    close(fd);
    return buf;
}

void cv_api_request_attachment(cv_api_req_t *req, const cv_api_principal_t *who)
{
    char rs[24];
    if (!s_request_id(req, rs))
        return;
    const char *sha = cv_api_param(req, "sha");
    const char *v[2] = { rs, cv_attach_sha_ok(sha) ? sha : "" };
    PGresult *r = s_request(req, who,
        "SELECT r.service, r.citizen_id, a.mime, a.size, a.name FROM requests r"
        " LEFT JOIN attachments a ON a.request_id = r.id AND a.sha256 = $2"
        " WHERE r.id = $1::bigint", 2, v);
    if (!r)
        return;
    if (PQgetisnull(r, 0, 2)) {                 /* not THAT request's (or not a sha256 at all) */
        PQclear(r);
        cv_api_error(req, 404, "not_found", "this request has no such attachment");
        return;
    }
    int64_t cid = PQgetisnull(r, 0, 1) ? 0 : strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    const char *mime = s_mime(PQgetvalue(r, 0, 2));
    size_t size = (size_t) strtoull(PQgetvalue(r, 0, 3), NULL, 10);
    char *disposition = mime ? cv_api_attachment_disposition(PQgetisnull(r, 0, 4) ? NULL : PQgetvalue(r, 0, 4),
                                                             sha, mime) : NULL;
    PQclear(r);
    char path[4200], hex[CV_HASH_HEX_LEN + 1];
    char *bytes = cv_attach_path(req->ctx->config->attach_dir, sha, path, sizeof path) == 0
                ? s_read_file(path, size) : NULL;
    if (bytes)
        cv_hash_bytes(bytes, size, hex);
    if (!bytes || strcmp(hex, sha) != 0 || !disposition || !mime) {
        /* the row is there and the file is not (or not whole): the folder
           lost it; restore it from the backup (docs/attachments.md) */
        cv_error("attach", "request %s: attachment %s is %s in %s", rs, sha,
                 !bytes ? "missing or of another size" : "damaged (its SHA-256 differs)",
                 req->ctx->config->attach_dir);
        free(bytes);
        free(disposition);
        cv_api_error(req, 503, "unavailable", "the stored file cannot be read; the administrator is told");
        return;
    }
    if (cv_api_audit(req, who, cid, strtoll(rs, NULL, 10), 1) != 0) {
        free(bytes);
        free(disposition);
        return;
    }
    cv_api_reply_bytes(req, 200, bytes, size, mime, disposition);
}
