/*  api_open311 — Open311 GeoReport v2 under /open311/v2/ (docs/api.md).
    The routes, their roles and rate limits are in the route table
    (api_route_table.c): services and one request by its id are public
    (the latter rate limited like /v1/track), the list needs a token, a
    POST (public, rate limited) enters the timeline. Each path ends in
    .{format:json|xml}: the pattern takes the suffix off, so a handler reads
    the format from the path parameter and answers in it; another suffix
    matches no route (404).

    service_request_id is the request's public tracking code (random, not
    guessable); the internal id never leaves. A service_code is a category.
    Answers use the specification's field names; errors its format,
    [{"code": 400, "description": "..."}] or <errors><error>...</error></errors>:
    the handlers write their own that way, and the router passes every
    other error under /open311/ (401, 404, 405, 429, 503 ...) through
    cv_api_o311_reformat. The list shows each request through the caller's
    view (docs/access.md): the id (the tracking code) only where the view
    shows tracking_code.

    POST takes form fields (application/x-www-form-urlencoded, as the
    specification says) or a JSON object with the same names, and writes a
    one-event batch with cv_ingest — the store's function, its writer lock
    and its projection — as source "open311", channel web, status received.
    The description and the person's fields are personal data: stored where
    the store keeps them (source_records, citizen_sources), never logged. */
#include "api_handler.h"

#include "api_util.h"
#include "cv_hash.h"
#include "cv_log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    cv_api_req_t *req;
    bool xml;
} o311_t;

/* The answer's format: the route's {format}, or for a path no route
   matched its last segment's suffix. */
static bool s_wants_xml(const cv_api_req_t *req)
{
    const char *format = cv_api_param(req, "format");
    if (format)
        return strcmp(format, "xml") == 0;
    const char *last = req->nseg ? req->seg[req->nseg - 1] : "";
    size_t n = strlen(last);
    return n > 4 && strcmp(last + n - 4, ".xml") == 0;
}

static o311_t s_o311(cv_api_req_t *req)
{
    return (o311_t) { .req = req, .xml = s_wants_xml(req) };
}

/* ---- output ---- */

static void s_xml_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* An array of flat objects as <outer><inner><key>value</key>...</inner></outer>. */
static char *s_xml(json_t *items, const char *outer, const char *inner)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<%s>", outer);
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item) {
        fprintf(f, "<%s>", inner);
        const char *key;
        json_t *v;
        json_object_foreach(item, key, v) {
            fprintf(f, "<%s>", key);
            if (json_is_string(v))
                s_xml_escape(f, json_string_value(v));
            else if (json_is_integer(v))
                fprintf(f, "%lld", (long long) json_integer_value(v));
            else if (json_is_boolean(v))
                fputs(json_is_true(v) ? "true" : "false", f);
            fprintf(f, "</%s>", key);
        }
        fprintf(f, "</%s>", inner);
    }
    fprintf(f, "</%s>\n", outer);
    fclose(f);
    return text;
}

static void s_answer(o311_t *o, int status, json_t *items, const char *outer, const char *inner)
{
    if (!o->xml) {
        cv_api_reply(o->req, status, items);
        return;
    }
    o->req->text = s_xml(items, outer, inner);
    o->req->content_type = "text/xml; charset=utf-8";
    o->req->status = o->req->text ? status : 503;
    json_decref(items);
    if (!o->req->text)
        cv_api_error(o->req, 503, "unavailable", "out of memory");
}

static void s_error(o311_t *o, int status, const char *description)
{
    s_answer(o, status, json_pack("[{s:i, s:s}]", "code", status, "description", description),
             "errors", "error");
}

void cv_api_o311_reformat(cv_api_req_t *req)
{
    json_t *msg = json_object_get(json_object_get(req->reply, "error"), "message");
    if (!msg)
        return;                         /* not the API's error object */
    char text[256];
    snprintf(text, sizeof text, "%s", json_string_value(msg) ? json_string_value(msg) : "error");
    int status = req->status;
    json_decref(req->reply);
    req->reply = NULL;
    o311_t o = s_o311(req);
    s_error(&o, status, text);
}

static json_t *s_rows(PGresult *r)
{
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *j = json_loads(PQgetvalue(r, i, 0), 0, NULL);
        if (j)
            json_array_append_new(items, j);
    }
    return items;
}

/* ---- GET ---- */

void cv_api_o311_services(cv_api_req_t *req, const cv_api_principal_t *who)
{
    o311_t o = s_o311(req);
    PGresult *r = cv_api_sql(req, CV_SQL_O311_SERVICES, 0, NULL);
    if (!r)
        return;
    json_t *items = s_rows(r);
    PQclear(r);
    s_answer(&o, 200, items, "services", "service");
}

/* A W3C date-time as Open311 sends it: 2024-03-01, 2024-03-01T10:00:00Z,
   2024-03-01T10:00:00+01:00. PostgreSQL checks the calendar. */
static bool s_datetime_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 10 || n > 40)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789-:T+Z.", s[i]))
            return false;
    return s[4] == '-' && s[7] == '-';
}

void cv_api_o311_requests(cv_api_req_t *req, const cv_api_principal_t *who)
{
    o311_t oo = s_o311(req), *o = &oo;
    const char *names[7] = { "service_request_id", "service_code", "start_date", "end_date",
                             "status", "updated_after", "updated_before" };
    const char *v[8];
    char code[11];
    for (int i = 0; i < 7; i++)
        v[i] = cv_api_query(req, names[i]);
    if (v[0] && !cv_api_tracking_code(v[0], code)) {
        s_error(o, 400, "service_request_id: a tracking code");
        return;
    }
    if (v[0])
        v[0] = code;
    if (v[4] && strcmp(v[4], "open") != 0 && strcmp(v[4], "closed") != 0) {
        s_error(o, 400, "status: open or closed");
        return;
    }
    for (int i = 2; i < 7; i++)
        if (i != 4 && v[i] && !s_datetime_ok(v[i])) {
            s_error(o, 400, "dates: W3C format, e.g. 2024-03-01T10:00:00Z");
            return;
        }
    if (v[1] && (!*v[1] || strlen(v[1]) > 200)) {
        s_error(o, 400, "service_code: 1 to 200 characters");
        return;
    }
    v[7] = "1000";
    PGresult *r = cv_api_sql(req, CV_SQL_O311_REQUESTS, 8, v);
    if (!r)
        return;
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *j = json_loads(PQgetvalue(r, i, 0), 0, NULL);
        if (!j)
            continue;
        if (!cv_api_field_allowed("request", "tracking_code", cv_api_view_for(who, PQgetvalue(r, i, 1))))
            json_object_del(j, "service_request_id");
        json_array_append_new(items, j);
    }
    PQclear(r);
    if (cv_api_audit(req, who, 0, 0, (int) json_array_size(items)) != 0) {
        json_decref(items);
        return;
    }
    s_answer(o, 200, items, "service_requests", "request");
}

void cv_api_o311_request(cv_api_req_t *req, const cv_api_principal_t *who)
{
    o311_t oo = s_o311(req), *o = &oo;
    char code[11];
    if (!cv_api_tracking_code(cv_api_param(req, "id"), code)) {
        s_error(o, 404, "no request has this id");
        return;
    }
    const char *v[1] = { code };
    PGresult *r = cv_api_sql(req, CV_SQL_O311_REQUEST, 1, v);
    if (!r)
        return;
    if (PQntuples(r) != 1) {
        PQclear(r);
        s_error(o, 404, "no request has this id");
        return;
    }
    int64_t rid = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    int64_t cid = PQgetisnull(r, 0, 2) ? 0 : strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    json_t *items = s_rows(r);
    PQclear(r);
    if (cv_api_audit(req, who, cid, rid, 1) != 0) {
        json_decref(items);
        return;
    }
    s_answer(o, 200, items, "service_requests", "request");
}

/* ---- POST ---- */

static int s_hex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes one form component in place; false on a bad escape. */
static bool s_form_decode(char *s)
{
    char *w = s;
    for (char *p = s; *p; p++) {
        if (*p == '+')
            *w++ = ' ';
        else if (*p == '%') {
            int a = p[1] ? s_hex(p[1]) : -1, b = a >= 0 && p[2] ? s_hex(p[2]) : -1;
            if (a < 0 || b < 0)
                return false;
            *w++ = (char) (a * 16 + b);
            p += 2;
        } else
            *w++ = *p;
    }
    *w = 0;
    return true;
}

/* The POST body as a JSON object of strings (form or JSON) after its
   Content-Type ct (may be NULL); NULL + message. Not static so that
   tests/fuzz/api_body reaches it without an HTTP connection. */
json_t *cv_api_o311_post_fields(const char *ct, const char *body, size_t body_len, const char **why)
{
    if (!body || body_len == 0) {
        *why = "the body is empty";
        return NULL;
    }
    if (ct && strncmp(ct, "application/json", 16) == 0) {
        json_error_t e;
        json_t *j = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &e);
        if (!json_is_object(j)) {
            json_decref(j);
            *why = "the body is not a JSON object";
            return NULL;
        }
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            if (!json_is_string(v) && !json_is_number(v)) {
                json_decref(j);
                *why = "every field must be a string (or a number for lat/long)";
                return NULL;
            }
        }
        return j;
    }
    if (!ct || strncmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
        *why = "send application/x-www-form-urlencoded or application/json";
        return NULL;
    }
    if (body_len && memchr(body, 0, body_len)) {
        *why = "a form field contains a NUL byte";
        return NULL;
    }
    char *copy = strndup(body, body_len), *save = NULL;
    if (!copy) {
        *why = "the form could not be read (out of memory)";
        return NULL;
    }
    json_t *j = json_object();
    for (char *pair = strtok_r(copy, "&", &save); pair; pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        if (eq)
            *eq = 0;
        if (!s_form_decode(pair) || (eq && !s_form_decode(eq + 1))
            || !cv_api_utf8_valid(pair, strlen(pair), true)
            || (eq && !cv_api_utf8_valid(eq + 1, strlen(eq + 1), true))) {
            free(copy);
            json_decref(j);
            *why = "a form field is not valid (escape or UTF-8)";
            return NULL;
        }
        if (*pair)
            json_object_set_new(j, pair, json_string(eq ? eq + 1 : ""));
    }
    free(copy);
    return j;
}

/* A text field: NULL when absent/empty; false (and why) when too long or not text. */
static bool s_text(json_t *f, const char *key, size_t max, const char **out)
{
    json_t *v = json_object_get(f, key);
    *out = json_is_string(v) && json_string_length(v) ? json_string_value(v) : NULL;
    if (!*out)
        return true;
    return strlen(*out) <= max && cv_api_utf8_valid(*out, strlen(*out), true);
}

void cv_api_o311_post(cv_api_req_t *req, const cv_api_principal_t *who)
{
    o311_t oo = s_o311(req), *o = &oo;
    const char *why = NULL;
    json_t *f = cv_api_o311_post_fields(cv_api_header(req, "Content-Type"), req->body, req->body_len, &why);
    if (!f) {
        s_error(o, 400, why);
        return;
    }
    const char *code, *desc, *first, *last, *email, *phone, *addr;
    if (!s_text(f, "service_code", 200, &code) || !s_text(f, "description", 4000, &desc)
        || !s_text(f, "first_name", 200, &first) || !s_text(f, "last_name", 200, &last)
        || !s_text(f, "email", 200, &email) || !s_text(f, "phone", 200, &phone)
        || !s_text(f, "address_string", 200, &addr)) {
        json_decref(f);
        s_error(o, 400, "a field is too long or not text (description 4000 bytes, others 200)");
        return;
    }
    if (!code || !desc) {
        json_decref(f);
        s_error(o, 400, !code ? "service_code is required" : "description is required");
        return;
    }
    if (email && (!strchr(email, '@') || strchr(email, ' '))) {
        json_decref(f);
        s_error(o, 400, "email is not an e-mail address");
        return;
    }
    const char *sv[1] = { code };
    PGresult *r = cv_api_sql(req, CV_SQL_O311_SERVICE_OF, 1, sv);
    if (!r) {
        json_decref(f);
        return;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        json_decref(f);
        s_error(o, 400, "service_code: no such service (see services.json)");
        return;
    }
    char service[256];
    snprintf(service, sizeof service, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);

    /* the record, its id, hash and citizen block, shaped like the hub's */
    unsigned char rnd[12];
    randombytes_buf(rnd, sizeof rnd);
    char hex[25], record_id[40], hash[CV_HASH_HEX_LEN + 1], ckey[CV_HASH_HEX_LEN + 8];
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    snprintf(record_id, sizeof record_id, "web-%s", hex);
    json_object_set_new(f, "service_request_id", json_string(record_id));
    cv_hash_json(f, hash);
    char *raw = json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS);
    json_t *citizen = NULL;
    char *cit = NULL;
    if (first || last || email || phone || addr) {
        citizen = json_pack("{s:o, s:o, s:n, s:n, s:o, s:o, s:n, s:n}",
                            "given_names", first ? json_string(first) : json_null(),
                            "family_name", last ? json_string(last) : json_null(),
                            "birth_name", "birth_date",
                            "email", email ? json_string(email) : json_null(),
                            "phone", phone ? json_string(phone) : json_null(),
                            "source_citizen_id", "address");
        if (addr)
            json_object_set_new(citizen, "address",
                                json_pack("{s:s, s:n, s:n, s:n, s:n}", "line1", addr, "line2",
                                          "postcode", "city", "country"));
        char h[CV_HASH_HEX_LEN + 1];
        cv_hash_json(citizen, h);
        snprintf(ckey, sizeof ckey, "sha256:%s", h);
        cit = json_dumps(citizen, JSON_COMPACT | JSON_SORT_KEYS);
    }
    const char *v[8] = { hash, cit ? ckey : NULL, record_id, service, code, desc, cit, raw };
    r = cv_api_sql(req, CV_SQL_O311_INGEST, 8, v);
    free(raw);
    free(cit);
    json_decref(citizen);
    json_decref(f);
    if (!r)
        return;
    if (PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), "stored") != 0) {
        PQclear(r);
        s_error(o, 503, "the request could not be stored; try again");
        return;
    }
    json_t *out = json_pack("[{s:s, s:s, s:n}]", "service_request_id", PQgetvalue(r, 0, 1),
                            "service_notice", "", "account_id");
    cv_info("open311", "web request stored as request %s", PQgetvalue(r, 0, 2));
    PQclear(r);
    s_answer(o, 201, out, "service_requests", "request");
}
