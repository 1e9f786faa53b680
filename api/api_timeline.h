/*  api_timeline — a citizen's timeline page, written as JSON from the rows
    of its statement (api_sql.c, CV_SQL_TIMELINE*), in the caller's view.

    The timeline is the API's biggest answer. PostgreSQL returns plain rows
    (every value as text) and this module writes the answer in one pass,
    without building a JSON tree:

        {"citizen": {...}, "requests": [...], "events": [...],
         "limit": L, "offset": O, "next_offset": N or null}

    Each request and event is written in the view its service gives
    (cv_api_view_for: an agent's own service or another one; a supervisor's
    or an admin's view), with only the fields the access table shows for
    that view (cv_api_field_allowed); the citizen in the own-service view
    for an agent, who only gets the timeline of a citizen with a request of
    their service. Values: strings escaped as jansson writes them, numbers
    and booleans as PostgreSQL gives them, timestamps in the form
    PostgreSQL's JSON gives them ("2024-01-11T04:46:00+00:00"), the
    citizen's identities (JSON built by PostgreSQL) compacted. Compact
    output, the bytes jansson's JSON_COMPACT would write.
    tests/unit/api/test_api_timeline.c checks it on built results,
    tests/it/api.sh through the real API. */
#ifndef CV_API_TIMELINE_H
#define CV_API_TIMELINE_H

#include "api_access.h"

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

/* Writes the page of `res` (the statement's rows; limit and offset as
   asked) for `who` into *body (malloc'ed, NUL-terminated) and the number
   of the page's requests into *nrequests. Returns 0; 1 when the rows hold
   no citizen (not found, or not for this agent); -1 when the rows are not
   the statement's or memory ran out. */
int cv_api_timeline_json(const PGresult *res, const cv_api_principal_t *who, int64_t limit,
                         int64_t offset, char **body, int *nrequests);

#endif
