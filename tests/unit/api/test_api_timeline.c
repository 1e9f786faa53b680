/*  test_api_timeline — the timeline's writer (api/api_timeline.c) on
    results built here the way the statement returns them (libpq's
    PQmakeEmptyPGresult / PQsetvalue): the exact bytes of a page, every
    field of every view as the access table says, timestamps in
    PostgreSQL's JSON form, escapes, the next page, not found, and results
    that are not the statement's. tests/it/api.sh checks the same answers
    from a real database through the real API. */
#include "api_access.h"
#include "api_db.h"
#include "api_timeline.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cv_test.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static PGresult *s_result(int ncols)
{
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    assert_non_null(r);
    PGresAttDesc att[CV_TIMELINE_NCOLS + 1];
    memset(att, 0, sizeof att);
    for (int i = 0; i < ncols; i++) {
        att[i].name = (char *) "c";
        att[i].typid = 25;                      /* text */
        att[i].typlen = -1;
        att[i].atttypmod = -1;
    }
    assert_true(PQsetResultAttrs(r, ncols, att));
    return r;
}

/* Appends a row: part, rank (NULL: "") and the values ("\x01" for NULL). */
static void s_row(PGresult *r, const char *part, const char *rank, int n, ...)
{
    int row = PQntuples(r);
    assert_true(PQsetvalue(r, row, CV_TIMELINE_PART, (char *) part, (int) strlen(part)));
    assert_true(PQsetvalue(r, row, CV_TIMELINE_RANK, (char *) rank, *rank ? (int) strlen(rank) : -1));
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < CV_TIMELINE_NCOLS - CV_TIMELINE_VALUES; i++) {
        const char *v = i < n ? va_arg(ap, const char *) : "\x01";
        bool null = strcmp(v, "\x01") == 0;
        assert_true(PQsetvalue(r, row, CV_TIMELINE_VALUES + i, (char *) v, null ? -1 : (int) strlen(v)));
    }
    va_end(ap);
}

#define N "\x01"

static const char *s_identities =
    "[{\"source\" : \"etat_civil\", \"identity\" : {\"family_name\": \"L’HÔPITAL\", \"line\": \"a b\"}}]";

/* A citizen with three requests (the oldest, ranked 3, is the next page's),
   two services, and events of the page's two requests. */
static PGresult *s_page(void)
{
    PGresult *r = s_result(CV_TIMELINE_NCOLS);
    s_row(r, "0", "", 2, "77", s_identities);
    s_row(r, "1", "3", 17, "5", "AAAAAAAAAA", "urbanisme", "permis", "web", "closed",
          "2024-01-01 00:00:00+00", N, N, "0", "2024-01-01 00:00:00+00", "2024-01-02 00:00:00+00", "PC 1", "77",
          "false", "false", "old");
    s_row(r, "1", "2", 17, "7", "CCCCCCCCCC", "urbanisme", "permis_construire", "courrier", "in_progress",
          "2024-03-01 10:15:00.25+00", "2024-04-30 23:00:00+00", "source", "3600", "2024-02-01 08:00:00.123456+00",
          "2024-03-01 10:15:01+00", "PC 075 \"B\"", "77", "true", "false",
          "Extension « côté cour »\n2e étage\t\\ ok");
    s_row(r, "1", "1", 17, "9", "DDDDDDDDDD", "dechets", "encombrants", "telephone", "received",
          "2024-05-01 09:00:00+00", N, N, "0", "2024-05-01 09:00:00+00", "2024-05-01 09:00:00+00", N, "77",
          "false", "true", "un canapé");
    s_row(r, "2", "", 12, "101", "7", "urbanisme", "permis_construire", "depot", "urbanisme", "received",
          "DEPOSE", "2024-02-01 08:00:00+00", N, "2024-02-01 08:00:01.5+00", "false");
    s_row(r, "2", "", 12, "102", "7", "urbanisme", "permis_construire", "instruction", "urbanisme",
          "in_progress", "EN_COURS", "2024-03-01 10:15:00.25+00", "2024-04-30 23:00:00+00",
          "2024-03-01 10:15:01+00", "true");
    s_row(r, "2", "", 12, "103", "9", "dechets", "encombrants", "demande", "dechets", "received", N,
          "2024-05-01 09:00:00+00", N, "2024-05-01 09:00:00+00", "false");
    return r;
}

static char *s_json(const PGresult *r, cv_api_role_t role, const char *service, int64_t limit,
                    int64_t offset, int *nrequests)
{
    cv_api_principal_t who = { .token_id = 1, .role = role };
    snprintf(who.service, sizeof who.service, "%s", service);
    char *body = NULL;
    assert_int_equal(cv_api_timeline_json(r, &who, limit, offset, &body, nrequests), 0);
    assert_non_null(body);
    return body;
}

/* A supervisor's page, byte for byte: compact, the table's field order,
   timestamps as PostgreSQL's JSON writes them, strings escaped as jansson
   does, the identities compacted, the next page's request left out. */
static void test_supervisor_bytes(void **state)
{
    PGresult *r = s_page();
    int n;
    char *body = s_json(r, CV_API_SUPERVISOR, "", 2, 0, &n);
    assert_int_equal(n, 2);
    const char *want =
        "{\"citizen\":{\"id\":77,\"identities\":[{\"source\":\"etat_civil\",\"identity\":"
        "{\"family_name\":\"L’HÔPITAL\",\"line\":\"a b\"}}]},"
        "\"requests\":[{\"id\":7,\"tracking_code\":\"CCCCCCCCCC\",\"service\":\"urbanisme\","
        "\"category\":\"permis_construire\",\"channel\":\"courrier\",\"status\":\"in_progress\","
        "\"status_at\":\"2024-03-01T10:15:00.25+00:00\",\"due_at\":\"2024-04-30T23:00:00+00:00\","
        "\"due_kind\":\"source\",\"paused_seconds\":3600,"
        "\"created_at\":\"2024-02-01T08:00:00.123456+00:00\",\"updated_at\":\"2024-03-01T10:15:01+00:00\","
        "\"request_ref\":\"PC 075 \\\"B\\\"\",\"citizen_id\":77,\"flagged\":true,\"overdue\":false,"
        "\"summary\":\"Extension « côté cour »\\n2e étage\\t\\\\ ok\","
        "\"requested_at\":null,\"outcome\":null,\"outcome_reason\":null,\"outcome_ref\":null,\"location\":null},"
        "{\"id\":9,\"tracking_code\":\"DDDDDDDDDD\",\"service\":\"dechets\",\"category\":\"encombrants\","
        "\"channel\":\"telephone\",\"status\":\"received\",\"status_at\":\"2024-05-01T09:00:00+00:00\","
        "\"due_at\":null,\"due_kind\":null,\"paused_seconds\":0,\"created_at\":\"2024-05-01T09:00:00+00:00\",\"updated_at\":\"2024-05-01T09:00:00+00:00\","
        "\"request_ref\":null,\"citizen_id\":77,\"flagged\":false,\"overdue\":true,\"summary\":\"un canapé\","
        "\"requested_at\":null,\"outcome\":null,\"outcome_reason\":null,\"outcome_ref\":null,\"location\":null}],"
        "\"events\":[{\"id\":101,\"request_id\":7,\"service\":\"urbanisme\",\"category\":\"permis_construire\","
        "\"kind\":\"depot\",\"source\":\"urbanisme\",\"status\":\"received\",\"source_status\":\"DEPOSE\","
        "\"occurred_at\":\"2024-02-01T08:00:00+00:00\",\"due_at\":null,"
        "\"received_at\":\"2024-02-01T08:00:01.5+00:00\",\"transition_flagged\":false,"
        "\"requested_at\":null,\"outcome\":null,\"outcome_reason\":null,\"outcome_ref\":null},"
        "{\"id\":102,\"request_id\":7,\"service\":\"urbanisme\",\"category\":\"permis_construire\","
        "\"kind\":\"instruction\",\"source\":\"urbanisme\",\"status\":\"in_progress\","
        "\"source_status\":\"EN_COURS\",\"occurred_at\":\"2024-03-01T10:15:00.25+00:00\","
        "\"due_at\":\"2024-04-30T23:00:00+00:00\",\"received_at\":\"2024-03-01T10:15:01+00:00\","
        "\"transition_flagged\":true,\"requested_at\":null,\"outcome\":null,\"outcome_reason\":null,\"outcome_ref\":null},"
        "{\"id\":103,\"request_id\":9,\"service\":\"dechets\",\"category\":\"encombrants\",\"kind\":\"demande\","
        "\"source\":\"dechets\",\"status\":\"received\",\"source_status\":null,"
        "\"occurred_at\":\"2024-05-01T09:00:00+00:00\",\"due_at\":null,"
        "\"received_at\":\"2024-05-01T09:00:00+00:00\",\"transition_flagged\":false,"
        "\"requested_at\":null,\"outcome\":null,\"outcome_reason\":null,\"outcome_ref\":null}],"
        "\"limit\":2,\"offset\":0,\"next_offset\":2}";
    assert_string_equal(body, want);
    json_error_t err;
    json_t *j = json_loads(body, 0, &err);
    assert_non_null(j);                         /* and it is JSON */
    char *again = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(again, body);           /* the bytes jansson would write */
    free(again);
    json_decref(j);
    free(body);
    PQclear(r);
}

/* Every object of every view has exactly the fields the access table shows. */
static void s_check_fields(json_t *o, const char *object, cv_api_view_t view)
{
    size_t ncols;
    const cv_api_column_t *cols = cv_api_sql_columns(object, &ncols);
    assert_non_null(cols);
    size_t shown = 0;
    for (size_t i = 0; i < ncols; i++) {
        bool allowed = cv_api_field_allowed(object, cols[i].field, view);
        if (allowed != (json_object_get(o, cols[i].field) != NULL))
            fail_msg("%s.%s in the %s view: %s", object, cols[i].field, cv_api_view_name(view),
                     allowed ? "missing" : "shown");
        shown += allowed;
    }
    assert_int_equal(json_object_size(o), shown);
}

static void test_views(void **state)
{
    PGresult *r = s_page();
    static const struct {
        cv_api_role_t role;
        const char *service;
    } who[] = { { CV_API_AGENT, "urbanisme" }, { CV_API_AGENT, "dechets" }, { CV_API_SUPERVISOR, "" },
                { CV_API_ADMIN, "" } };
    for (size_t k = 0; k < sizeof who / sizeof who[0]; k++) {
        int n;
        char *body = s_json(r, who[k].role, who[k].service, 50, 0, &n);
        assert_int_equal(n, 3);
        json_t *j = json_loads(body, 0, NULL);
        assert_non_null(j);
        cv_api_principal_t p = { .role = who[k].role };
        snprintf(p.service, sizeof p.service, "%s", who[k].service);
        s_check_fields(json_object_get(j, "citizen"),
                       "citizen", p.role == CV_API_AGENT ? CV_API_VIEW_OWN : cv_api_view_for(&p, NULL));
        const char *arrays[2][2] = { { "requests", "request" }, { "events", "event" } };
        for (int a = 0; a < 2; a++) {
            size_t i;
            json_t *o;
            json_array_foreach(json_object_get(j, arrays[a][0]), i, o) {
                const char *service = json_string_value(json_object_get(o, "service"));
                s_check_fields(o, arrays[a][1], cv_api_view_for(&p, service));
            }
        }
        /* the agent of urbanisme does not see the dechets request's summary, nor
           the other way round */
        if (p.role == CV_API_AGENT) {
            json_t *reqs = json_object_get(j, "requests");
            bool own0 = strcmp(p.service, "urbanisme") == 0;     /* oldest first: 5 (urbanisme), 7, 9 */
            assert_int_equal(json_object_get(json_array_get(reqs, 1), "summary") != NULL, own0);
            assert_int_equal(json_object_get(json_array_get(reqs, 2), "summary") != NULL, !own0);
        }
        assert_true(json_is_null(json_object_get(j, "next_offset")));
        json_decref(j);
        free(body);
    }
    PQclear(r);
}

/* An agent token without a service sees the other view of everything. */
static void test_agent_without_service(void **state)
{
    PGresult *r = s_page();
    int n;
    char *body = s_json(r, CV_API_AGENT, "", 50, 0, &n);
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    assert_null(json_object_get(json_array_get(json_object_get(j, "requests"), 0), "summary"));
    assert_null(json_object_get(json_array_get(json_object_get(j, "events"), 0), "source_status"));
    json_decref(j);
    free(body);
    PQclear(r);
}

static void test_not_found_and_bad_rows(void **state)
{
    cv_api_principal_t who = { .role = CV_API_SUPERVISOR };
    char *body = (char *) "x";
    int n = 9;
    PGresult *r = s_result(CV_TIMELINE_NCOLS);            /* no rows at all */
    assert_int_equal(cv_api_timeline_json(r, &who, 50, 0, &body, &n), 1);
    assert_null(body);
    s_row(r, "1", "1", 1, "5");                           /* a request, no citizen row */
    assert_int_equal(cv_api_timeline_json(r, &who, 50, 0, &body, &n), 1);
    PQclear(r);
    r = s_result(CV_TIMELINE_NCOLS - 1);                  /* not the statement's rows */
    assert_int_equal(cv_api_timeline_json(r, &who, 50, 0, &body, &n), -1);
    PQclear(r);
    r = PQmakeEmptyPGresult(NULL, PGRES_FATAL_ERROR);
    assert_int_equal(cv_api_timeline_json(r, &who, 50, 0, &body, &n), -1);
    PQclear(r);
}

/* A citizen without requests; timestamps PostgreSQL would not write in ISO
   form stay strings. */
static void test_empty_page_and_odd_times(void **state)
{
    PGresult *r = s_result(CV_TIMELINE_NCOLS);
    s_row(r, "0", "", 2, "3", "[]");
    int n;
    char *body = s_json(r, CV_API_ADMIN, "", 10, 20, &n);
    assert_int_equal(n, 0);
    assert_string_equal(body, "{\"citizen\":{\"id\":3,\"identities\":[]},\"requests\":[],\"events\":[],"
                              "\"limit\":10,\"offset\":20,\"next_offset\":null}");
    free(body);
    s_row(r, "2", "", 12, "1", "2", N, N, N, N, "received", N, "infinity", "2024-06-30 12:00:00+05:30",
          "12024-01-01 00:00:00-01", "false");
    body = s_json(r, CV_API_ADMIN, "", 10, 20, &n);
    assert_non_null(strstr(body, "\"occurred_at\":\"infinity\",\"due_at\":\"2024-06-30T12:00:00+05:30\","
                                 "\"received_at\":\"12024-01-01T00:00:00-01:00\""));
    free(body);
    PQclear(r);
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_supervisor_bytes),
        cmocka_unit_test(test_views),
        cmocka_unit_test(test_agent_without_service),
        cmocka_unit_test(test_not_found_and_bad_rows),
        cmocka_unit_test(test_empty_page_and_odd_times),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
