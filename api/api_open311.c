/*  api_open311 — Open311 GeoReport v2 under /open311/v2/ (docs/api.md).
    The routes, their roles and rate limits are in the route table
    (api_route_table.c): services and one request by its id are public
    (the latter rate limited like /v1/track, a token optional: an item's
    id, tracking code or id-<id>, is the id requests/{id} takes, and it
    answers that item as the list would); the list is public for the
    categories the city lists in open311.public_categories (rate limited
    per address) and takes a token for everything else; a POST (public,
    rate limited) enters the timeline. Each path ends in
    .{format:json|xml}: the pattern takes the suffix off, so a handler reads
    the format from the path parameter and answers in it; another suffix
    matches no route (404).

    Every request item has every field of the specification, null (an
    empty element in XML) when unknown or hidden, so a client finds the
    same shape whoever asks. service_request_id is the request's tracking
    code (random, not guessable) where the caller may see it: the one who
    gave it (GET requests/{id}), a token whose view shows tracking_code
    (docs/access.md). Elsewhere — another service's request, and every item
    of the anonymous list — it is "id-" and the request's internal id: a
    tracking code in a public list would let anyone holding a token find
    who made the request (a citizen search by tracking code). The
    description (the request's summary) and the address (the location the
    web form gave) are shown to a token whose view shows the summary, and
    without a token only in the categories of open311.public_details;
    nothing of the person ever. Filters service_request_id, service_code
    and status take comma-separated lists, as the specification says.
    Answers use the specification's field names; errors its format,
    [{"code": 400, "description": "..."}] or <errors><error>...</error></errors>:
    the handlers write their own that way, the router passes every other
    error under /open311/ (401, 404, 405, 429, 503 ...) through
    cv_api_o311_reformat, and the server writes its own (400, 413, 414,
    431) with cv_api_o311_error_body. The list's audit row holds the ids
    of the citizens whose requests it showed in a view that shows them.

    POST takes form fields (application/x-www-form-urlencoded, as the
    specification says) or a JSON object with the same names, and writes a
    one-event batch with cv_ingest — the store's function, its writer lock
    and its projection — as source "open311", channel web, status received;
    it answers 200 with the specification's body (service_request_id,
    service_notice, account_id). The description and the person's fields
    are personal data: stored where the store keeps them (source_records,
    citizen_sources), never logged. A field holding a NUL (%00), or not
    UTF-8 once decoded, is refused (400). */
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
            else if (json_is_real(v))
                fprintf(f, "%.7f", json_real_value(v));
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

char *cv_api_o311_error_body(const char *url, int status, const char *description, const char **type)
{
    const char *q = strchr(url, '?');
    size_t n = q ? (size_t) (q - url) : strlen(url);
    json_t *items = json_pack("[{s:i, s:s}]", "code", status, "description", description);
    char *body;
    if (n > 4 && memcmp(url + n - 4, ".xml", 4) == 0) {
        body = s_xml(items, "errors", "error");
        *type = "text/xml; charset=utf-8";
    } else {
        body = json_dumps(items, JSON_COMPACT);
        *type = "application/json; charset=utf-8";
    }
    json_decref(items);
    return body;
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

#define O311_LIST_MAX 100       /* values of one comma-separated filter */
#define O311_PAGE_SIZE 100      /* requests of a list page by default (page_size) */
#define O311_PAGE_SIZE_MAX 1000 /* the largest page_size */
#define O311_PAGE_MAX 1000000   /* the last page one may ask for */

/* Appends `v` to the array literal being written in f, quoted. */
static void s_array_add(FILE *f, bool first, const char *v, size_t len)
{
    fputs(first ? "\"" : ",\"", f);
    for (size_t i = 0; i < len; i++) {
        if (v[i] == '"' || v[i] == '\\')
            fputc('\\', f);
        fputc(v[i], f);
    }
    fputc('"', f);
}

/* A comma-separated filter as a PostgreSQL array literal (malloc'd in
   *out; NULL when the parameter is absent). Each value must pass `check`
   (which may rewrite it into buf). False (and the reason) on a bad value,
   an empty one, or more than O311_LIST_MAX. */
typedef bool check_fn(const char *v, size_t len, char *buf, size_t cap);

static bool s_list(const char *csv, check_fn *check, char **out, const char **why)
{
    *out = NULL;
    if (!csv)
        return true;
    size_t len = 0;
    FILE *f = open_memstream(out, &len);
    if (!f) {
        *why = "out of memory";
        return false;
    }
    fputc('{', f);
    int n = 0;
    bool ok = true;
    for (const char *p = csv; ok; ) {
        const char *comma = strchr(p, ',');
        size_t vlen = comma ? (size_t) (comma - p) : strlen(p);
        char buf[256];
        if (vlen == 0 || vlen >= sizeof buf || ++n > O311_LIST_MAX || !check(p, vlen, buf, sizeof buf))
            ok = false;
        else
            s_array_add(f, n == 1, buf, strlen(buf));
        if (!comma)
            break;
        p = comma + 1;
    }
    fputc('}', f);
    fclose(f);
    if (!ok) {
        free(*out);
        *out = NULL;
        *why = "a comma-separated value is empty, invalid or one of too many";
    }
    return ok;
}

/* A service_request_id: a tracking code, or "id-" and a request's id (what
   an item shows where the caller may not see the code); *n the id, 0 for a
   tracking code (normalised into code). */
static bool s_request_id(const char *v, char code[CV_API_CODE_MAX], int64_t *n)
{
    *n = 0;
    if (strncmp(v, "id-", 3) == 0)
        return v[3] >= '1' && v[3] <= '9' && cv_api_parse_int(v + 3, 1, INT64_MAX, n);
    return cv_api_tracking_code(v, code);
}

static bool s_check_code(const char *v, size_t len, char *buf, size_t cap)
{
    char in[32], code[CV_API_CODE_MAX];
    int64_t n;
    if (len >= sizeof in || cap < sizeof in)
        return false;
    memcpy(in, v, len);
    in[len] = 0;
    if (!s_request_id(in, code, &n))
        return false;
    if (n)
        snprintf(buf, cap, "id-%lld", (long long) n);
    else
        memcpy(buf, code, sizeof code);
    return true;
}

static bool s_check_status(const char *v, size_t len, char *buf, size_t cap)
{
    if (!((len == 4 && memcmp(v, "open", 4) == 0) || (len == 6 && memcmp(v, "closed", 6) == 0)))
        return false;
    memcpy(buf, v, len);
    buf[len] = 0;
    return true;
}

static bool s_check_service(const char *v, size_t len, char *buf, size_t cap)
{
    if (len > 200)
        return false;
    memcpy(buf, v, len);
    buf[len] = 0;
    return true;
}

/* The public categories as an array literal (malloc'd). */
static char *s_public_categories(const cv_api_config_t *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    fputc('{', f);
    for (size_t i = 0; i < cfg->no311_public; i++)
        s_array_add(f, i == 0, cfg->o311_public[i], strlen(cfg->o311_public[i]));
    fputc('}', f);
    fclose(f);
    return text;
}

/* One request item of a statement's row (columns: the item as JSON, the
   request's service, category, id, citizen id) as the caller may see it;
   *citizen the citizen whose data it shows (0: none). NULL when the row
   is not for this caller. `by_code`: the caller gave the tracking code. */
static json_t *s_item(PGresult *r, int i, const cv_api_ctx_t *ctx, const cv_api_principal_t *who,
                      bool by_code, int64_t *citizen)
{
    *citizen = 0;
    json_t *j = json_loads(PQgetvalue(r, i, 0), 0, NULL);
    if (!j)
        return NULL;
    const char *service = PQgetisnull(r, i, 1) ? NULL : PQgetvalue(r, i, 1);
    const char *category = PQgetvalue(r, i, 2);
    const cv_api_config_t *cfg = ctx->config;
    bool code, details;
    if (who->role == CV_API_CITIZEN) {
        if (!by_code && !cv_api_config_listed(cfg->o311_public, cfg->no311_public, category)) {
            json_decref(j);             /* the statement filters them; the policy is here */
            return NULL;
        }
        code = by_code;
        details = cv_api_config_listed(cfg->o311_details, cfg->no311_details, category);
    } else {
        cv_api_view_t view = cv_api_view_for(who, service);
        code = by_code || cv_api_field_allowed("request", "tracking_code", view);
        details = cv_api_field_allowed("request", "summary", view);
        if (cv_api_field_allowed("request", "citizen_id", view) && !PQgetisnull(r, i, 4))
            *citizen = strtoll(PQgetvalue(r, i, 4), NULL, 10);
    }
    if (!code) {
        char id[32];
        snprintf(id, sizeof id, "id-%s", PQgetvalue(r, i, 3));
        json_object_set_new(j, "service_request_id", json_string(id));
    }
    if (!details) {
        json_object_set_new(j, "description", json_null());
        json_object_set_new(j, "address", json_null());
        json_object_set_new(j, "zipcode", json_null());
        json_object_set_new(j, "lat", json_null());
        json_object_set_new(j, "long", json_null());
    }
    return j;
}

void cv_api_o311_requests(cv_api_req_t *req, const cv_api_principal_t *who)
{
    o311_t oo = s_o311(req), *o = &oo;
    const char *names[7] = { "service_request_id", "service_code", "start_date", "end_date",
                             "status", "updated_after", "updated_before" };
    const char *q[7];
    for (int i = 0; i < 7; i++)
        q[i] = cv_api_query(req, names[i]);
    char *ids = NULL, *codes = NULL, *statuses = NULL, *allowed = NULL;
    const char *why = NULL;
    if (!s_list(q[0], s_check_code, &ids, &why))
        why = "service_request_id: tracking codes or id-<id>, comma-separated";
    else if (!s_list(q[1], s_check_service, &codes, &why))
        why = "service_code: 1 to 200 characters each, comma-separated";
    else if (!s_list(q[4], s_check_status, &statuses, &why))
        why = "status: open, closed or open,closed";
    for (int i = 2; !why && i < 7; i++)
        if (i != 4 && q[i] && !s_datetime_ok(q[i]))
            why = "dates: W3C format, e.g. 2024-03-01T10:00:00Z";
    /* pages (docs/api.md): page is 1-based, page_size O311_PAGE_SIZE by default */
    int64_t page = 1, size = O311_PAGE_SIZE;
    const char *qp = cv_api_query(req, "page"), *qs = cv_api_query(req, "page_size");
    if (!why && qp && !cv_api_parse_int(qp, 1, O311_PAGE_MAX, &page))
        why = "page: an integer from 1 (the first page) to 1000000";
    if (!why && qs && !cv_api_parse_int(qs, 1, O311_PAGE_SIZE_MAX, &size))
        why = "page_size: an integer from 1 to 1000 (default 100)";
    if (!why && who->role == CV_API_CITIZEN && !(allowed = s_public_categories(req->ctx->config)))
        why = "out of memory";
    if (why) {
        s_error(o, 400, why);
        free(ids), free(codes), free(statuses), free(allowed);
        return;
    }
    char limit[24], offset[24];
    snprintf(limit, sizeof limit, "%lld", (long long) size);
    snprintf(offset, sizeof offset, "%lld", (long long) ((page - 1) * size));
    const char *v[10] = { ids, codes, q[2], q[3], statuses, q[5], q[6], limit, allowed, offset };
    PGresult *r = cv_api_sql(req, CV_SQL_O311_REQUESTS, 10, v);
    free(ids), free(codes), free(statuses), free(allowed);
    if (!r)
        return;
    json_t *items = json_array();
    int64_t *cids = malloc(((size_t) PQntuples(r) + 1) * sizeof *cids);
    size_t ncids = 0;
    for (int i = 0; cids && i < PQntuples(r); i++) {
        int64_t cid;
        json_t *j = s_item(r, i, req->ctx, who, false, &cid);
        if (!j)
            continue;
        if (cid)
            cids[ncids++] = cid;
        json_array_append_new(items, j);
    }
    PQclear(r);
    if (!cids) {
        json_decref(items);
        s_error(o, 503, "out of memory");
        return;
    }
    int rc = cv_api_audit_list(req, who, cids, ncids, (int) json_array_size(items));
    free(cids);
    if (rc != 0) {
        json_decref(items);
        return;
    }
    s_answer(o, 200, items, "service_requests", "request");
}

/* One request by the id its items show: the tracking code (whoever gives
   it sees it, as the one who holds it), or id-<id>, seen exactly as in the
   list (the same s_item): without a token only in a public category (404
   otherwise: existence is not revealed), never with its tracking code;
   with a token through the caller's view. */
void cv_api_o311_request(cv_api_req_t *req, const cv_api_principal_t *who)
{
    o311_t oo = s_o311(req), *o = &oo;
    char code[CV_API_CODE_MAX], num[24];
    int64_t n;
    if (!s_request_id(cv_api_param(req, "id"), code, &n)) {
        s_error(o, 404, "no request has this id");
        return;
    }
    snprintf(num, sizeof num, "%lld", (long long) n);
    const char *v[1] = { n ? num : code };
    PGresult *r = cv_api_sql(req, n ? CV_SQL_O311_REQUEST_ID : CV_SQL_O311_REQUEST, 1, v);
    if (!r)
        return;
    int64_t shown = 0;
    json_t *item = PQntuples(r) == 1 ? s_item(r, 0, req->ctx, who, n == 0, &shown) : NULL;
    int64_t rid = item ? strtoll(PQgetvalue(r, 0, 3), NULL, 10) : 0;
    /* the one who gave the code holds the request: its citizen is the one read */
    int64_t cid = item && n == 0 && !PQgetisnull(r, 0, 4) ? strtoll(PQgetvalue(r, 0, 4), NULL, 10) : shown;
    PQclear(r);
    if (!item) {
        s_error(o, 404, "no request has this id");
        return;
    }
    json_t *items = json_array();
    json_array_append_new(items, item);
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

/* Decodes one form component in place; false on a bad escape or when the
   decoded text is not UTF-8 text (a %00 is refused here: it would cut the
   C string short, and the field with it). */
static bool s_form_decode(char *s)
{
    char *start = s;
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
    size_t n = (size_t) (w - start);
    *w = 0;
    return cv_api_utf8_valid(start, n, true);
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
        if (!s_form_decode(pair) || (eq && !s_form_decode(eq + 1))) {
            free(copy);
            json_decref(j);
            *why = "a form field is not valid (escape, NUL or UTF-8)";
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

/* lat / long of the form: absent, or decimal degrees within range (the
   web form's point). Returns false for anything else. */
static bool s_degrees(json_t *f, const char *key, double max, json_t **out)
{
    json_t *v = json_object_get(f, key);
    const char *t = json_string_value(v);
    *out = NULL;
    if (!v || (t && !*t))
        return true;
    char *end = NULL;
    double d = json_is_number(v) ? json_number_value(v) : t ? strtod(t, &end) : 0;
    if (!json_is_number(v) && (!t || end == t || *end || strlen(t) > 24))
        return false;
    if (!(d >= -max && d <= max))
        return false;
    *out = json_real(d);
    return true;
}

/* The request's location (where the pothole is): address_string, lat and
   long of the form, or NULL when it gives none. Never the person's
   address: a location creates no citizen. */
static json_t *s_location(const char *addr, json_t *lat, json_t *lon)
{
    if (!addr && !lat && !lon)
        return NULL;
    return json_pack("{s:o, s:n, s:n, s:o, s:o}", "address", addr ? json_string(addr) : json_null(),
                     "postcode", "city", "lat", lat ? lat : json_null(), "lon", lon ? lon : json_null());
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
    json_t *lat, *lon = NULL;
    if (!s_degrees(f, "lat", 90, &lat) || !s_degrees(f, "long", 180, &lon)) {
        json_decref(lat);
        json_decref(f);
        s_error(o, 400, "lat and long are decimal degrees (-90 to 90, -180 to 180)");
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
    if (first || last || email || phone) {
        citizen = json_pack("{s:o, s:o, s:n, s:n, s:o, s:o, s:n, s:n}",
                            "given_names", first ? json_string(first) : json_null(),
                            "family_name", last ? json_string(last) : json_null(),
                            "birth_name", "birth_date",
                            "email", email ? json_string(email) : json_null(),
                            "phone", phone ? json_string(phone) : json_null(),
                            "source_citizen_id", "address");
        char h[CV_HASH_HEX_LEN + 1];
        cv_hash_json(citizen, h);
        snprintf(ckey, sizeof ckey, "sha256:%s", h);
        cit = json_dumps(citizen, JSON_COMPACT | JSON_SORT_KEYS);
    }
    json_t *location = s_location(addr, lat, lon);
    char *loc = location ? json_dumps(location, JSON_COMPACT) : NULL;
    json_decref(location);
    const char *v[9] = { hash, cit ? ckey : NULL, record_id, service, code, desc, cit, raw, loc };
    r = cv_api_sql(req, CV_SQL_O311_INGEST, 9, v);
    free(raw);
    free(cit);
    free(loc);
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
    s_answer(o, 200, out, "service_requests", "request");     /* GeoReport v2: 200 */
}
