/*  api_timeline — see api_timeline.h. One pass over the rows (they come
    sorted by part: the citizen, the requests, the events) into one buffer,
    sized once from the rows' bytes. The masks of shown fields, per object
    and view, are read from the access table once. */
#include "api_timeline.h"

#include "api_db.h"
#include "api_util.h"
#include "cv_buf.h"
#include "cv_json.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXCOLS (CV_TIMELINE_NCOLS - CV_TIMELINE_VALUES)

typedef enum { OBJ_CITIZEN = 0, OBJ_REQUEST, OBJ_EVENT, OBJ_COUNT } object_t;

static const char *const s_objects[OBJ_COUNT] = { "citizen", "request", "event" };

typedef struct {
    const cv_api_column_t *cols;
    size_t ncols;
    int service;                                /* the column of the row's service, -1: none */
    bool show[CV_API_VIEW_COUNT][MAXCOLS];
    char key[MAXCOLS][40];                      /* ,"field": */
    size_t keylen[MAXCOLS];
} table_t;

static table_t s_tables[OBJ_COUNT];
static bool s_ok;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void s_init(void)
{
    s_ok = true;
    for (int o = 0; o < OBJ_COUNT; o++) {
        table_t *t = &s_tables[o];
        t->cols = cv_api_sql_columns(s_objects[o], &t->ncols);
        t->service = -1;
        if (!t->cols || t->ncols > MAXCOLS) {
            s_ok = false;
            continue;
        }
        for (size_t i = 0; i < t->ncols; i++) {
            int n = snprintf(t->key[i], sizeof t->key[i], ",\"%s\":", t->cols[i].field);
            if (n < 0 || (size_t) n >= sizeof t->key[i])
                s_ok = false;
            t->keylen[i] = n > 0 ? (size_t) n : 0;
            if (o != OBJ_CITIZEN && strcmp(t->cols[i].field, "service") == 0)
                t->service = (int) i;
            for (int v = 0; v < CV_API_VIEW_COUNT; v++)
                t->show[v][i] = cv_api_field_allowed(s_objects[o], t->cols[i].field, (cv_api_view_t) v);
        }
        if (o != OBJ_CITIZEN && t->service < 0)
            s_ok = false;                           /* a request's or event's view needs its service */
    }
}

/* Appends n bytes: in place while the buffer sized up front has room. */
static inline void s_put(cv_buf_t *b, const char *p, size_t n)
{
    if (b->data && b->len + n < b->cap) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
    } else
        cv_buf_add(b, p, n);
}

/* "2024-01-11 04:46:00.5+00" (text output, ISO) -> "2024-01-11T04:46:00.5+00:00"
   (PostgreSQL's JSON); anything else ("infinity") as a plain string. */
static void s_time(cv_buf_t *b, const char *v, size_t len)
{
    const char *sp = memchr(v, ' ', len);
    size_t date = sp ? (size_t) (sp - v) : 0;
    size_t sign = 0;
    for (size_t i = date + 1; sp && i < len; i++)
        if (v[i] == '+' || v[i] == '-')
            sign = i;
    if (!sp || date < 10 || sign < date + 9 || strchr(v + date + 1, ' ')) {
        cv_json_string_to_buf(v, len, b);
        return;
    }
    s_put(b, "\"", 1);
    s_put(b, v, date);
    s_put(b, "T", 1);
    s_put(b, sp + 1, len - date - 1);
    if (len - sign == 3)                        /* "+00": the minutes of the offset */
        s_put(b, ":00", 3);
    s_put(b, "\"", 1);
}

static void s_value(cv_buf_t *b, const PGresult *res, int row, int col, cv_api_col_kind_t kind)
{
    if (PQgetisnull(res, row, col)) {
        s_put(b, "null", 4);
        return;
    }
    const char *v = PQgetvalue(res, row, col);
    size_t len = (size_t) PQgetlength(res, row, col);
    switch (kind) {
    case CV_API_COL_NUM:
        s_put(b, v, len);
        break;
    case CV_API_COL_BOOL:
        if (v[0] == 't')
            s_put(b, "true", 4);
        else
            s_put(b, "false", 5);
        break;
    case CV_API_COL_TIME:
        s_time(b, v, len);
        break;
    case CV_API_COL_JSON:
        if (cv_buf_reserve(b, len) == 0)
            b->len += cv_api_json_compact(b->data + b->len, v, len);
        break;
    default:
        cv_json_string_to_buf(v, len, b);
        break;
    }
}

static void s_object(cv_buf_t *b, const PGresult *res, int row, const table_t *t, cv_api_view_t view)
{
    bool first = true;
    s_put(b, "{", 1);
    for (size_t i = 0; i < t->ncols; i++) {
        if (!t->show[view][i])
            continue;
        /* the table's own names: nothing to escape; the comma but before the first */
        s_put(b, t->key[i] + first, t->keylen[i] - first);
        s_value(b, res, row, CV_TIMELINE_VALUES + (int) i, t->cols[i].kind);
        first = false;
    }
    s_put(b, "}", 1);
}

static int s_part(const PGresult *res, int row)
{
    return atoi(PQgetvalue(res, row, CV_TIMELINE_PART));
}

/* The view of a request or event: the one its service gives. */
static cv_api_view_t s_view(const PGresult *res, int row, const table_t *t, const cv_api_principal_t *who)
{
    int col = CV_TIMELINE_VALUES + t->service;
    return cv_api_view_for(who, PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col));
}

int cv_api_timeline_json(const PGresult *res, const cv_api_principal_t *who, int64_t limit,
                         int64_t offset, char **body, int *nrequests)
{
    pthread_once(&s_once, s_init);
    *body = NULL;
    *nrequests = 0;
    if (!s_ok || PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != CV_TIMELINE_NCOLS)
        return -1;
    int rows = PQntuples(res);
    if (rows == 0 || s_part(res, 0) != OBJ_CITIZEN)
        return 1;

    /* the values, plus a field name and punctuation each: most answers in one allocation */
    size_t size = 128;
    for (int row = 0; row < rows; row++)
        for (int col = CV_TIMELINE_VALUES; col < CV_TIMELINE_NCOLS; col++)
            size += (size_t) PQgetlength(res, row, col) + 24;
    cv_buf_t b = { 0 };
    cv_buf_reserve(&b, size);

    cv_api_view_t own = who->role == CV_API_AGENT ? CV_API_VIEW_OWN : cv_api_view_for(who, NULL);
    cv_buf_addstr(&b, "{\"citizen\":");
    s_object(&b, res, 0, &s_tables[OBJ_CITIZEN], own);
    cv_buf_addstr(&b, ",\"requests\":[");
    int64_t last_rank = offset + limit;
    bool more = false;
    int part = OBJ_REQUEST, n = 0;
    for (int row = 1; row < rows; row++) {
        int p = s_part(res, row);
        if (p == OBJ_REQUEST
            && strtoll(PQgetvalue(res, row, CV_TIMELINE_RANK), NULL, 10) > last_rank) {
            more = true;                            /* the next page's first request */
            continue;
        }
        if (p == OBJ_EVENT && part == OBJ_REQUEST) {
            cv_buf_addstr(&b, "],\"events\":[");
            part = OBJ_EVENT;
            *nrequests = n;
            n = 0;
        } else if (p != part) {
            cv_buf_free(&b);                        /* not in the statement's order */
            return -1;
        }
        if (n++)
            s_put(&b, ",", 1);
        s_object(&b, res, row, &s_tables[p], s_view(res, row, &s_tables[p], who));
    }
    if (part == OBJ_REQUEST) {
        cv_buf_addstr(&b, "],\"events\":[");
        *nrequests = n;
    }
    char tail[96], next[24] = "null";
    if (more)
        snprintf(next, sizeof next, "%lld", (long long) last_rank);
    snprintf(tail, sizeof tail, "],\"limit\":%lld,\"offset\":%lld,\"next_offset\":%s}",
             (long long) limit, (long long) offset, next);
    cv_buf_addstr(&b, tail);
    if (b.failed) {
        cv_buf_free(&b);
        return -1;
    }
    *body = cv_buf_take(&b);
    return *body ? 0 : -1;
}
