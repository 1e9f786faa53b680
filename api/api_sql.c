/*  api_sql — every statement the API prepares (see api_db.h). Each returns
    its rows as JSON text built by PostgreSQL (json_build_object), which the
    handlers parse, filter by role (api_access) and send — except the
    timeline, the API's biggest answer: its statement returns plain rows (the
    citizen, the page's requests, their events, every value as text), which
    api_timeline.c writes as JSON in the caller's view. Both kinds come from
    the same column tables below. Timestamps are UTC (the session time
    zone). Pages ask for limit + 1 rows to tell whether a next page exists. */
#include "api_db.h"

#include <string.h>

#define OPEN_STATUSES "('received', 'acknowledged', 'in_progress', 'waiting_citizen')"

/* The columns of each object, once: X(field, JSON kind, SQL expression),
   SEP between them. They give both the full objects of the parse-and-filter
   statements (REQUEST_JSON, EVENT_JSON) and the timeline's rows and column
   tables (cv_api_sql_columns). */
/* A value of the request's latest source record (its personal data). */
#define LATEST_RECORD(expr) "(SELECT " expr " FROM request_sources rs" \
    " JOIN source_records sr ON sr.source = rs.source AND sr.source_record_id = rs.source_record_id" \
    " WHERE rs.request_id = r.id ORDER BY sr.record_at DESC LIMIT 1)"

#define REQUEST_COLUMNS(X, SEP) \
    X("id", NUM, "r.id") SEP X("tracking_code", STR, "r.tracking_code") SEP \
    X("service", STR, "r.service") SEP X("category", STR, "r.category") SEP \
    X("channel", STR, "r.channel") SEP X("status", STR, "r.status") SEP \
    X("status_at", TIME, "r.status_occurred_at") SEP X("due_at", TIME, "r.due_at") SEP \
    X("due_kind", STR, "r.due_kind") SEP X("paused_seconds", NUM, "r.paused_seconds") SEP \
    X("created_at", TIME, "r.created_at") SEP X("updated_at", TIME, "r.updated_at") SEP \
    X("request_ref", STR, "r.request_ref") SEP X("citizen_id", NUM, "r.citizen_id") SEP \
    X("flagged", BOOL, "r.flagged") SEP \
    X("overdue", BOOL, "coalesce(r.due_at < now() AND r.status IN " OPEN_STATUSES ", false)") SEP \
    X("summary", STR, LATEST_RECORD("sr.summary")) SEP \
    X("requested_at", TIME, "r.requested_at") SEP X("outcome", STR, "r.outcome") SEP \
    X("outcome_reason", STR, "r.outcome_reason") SEP X("outcome_ref", STR, "r.outcome_ref") SEP \
    X("location", JSON, LATEST_RECORD("sr.location"))

#define EVENT_COLUMNS(X, SEP) \
    X("id", NUM, "e.id") SEP X("request_id", NUM, "e.request_id") SEP X("service", STR, "e.service") SEP \
    X("category", STR, "e.category") SEP X("kind", STR, "e.kind") SEP X("source", STR, "e.source") SEP \
    X("status", STR, "e.status") SEP X("source_status", STR, "e.source_status") SEP \
    X("occurred_at", TIME, "e.occurred_at") SEP X("due_at", TIME, "e.due_at") SEP \
    X("received_at", TIME, "e.received_at") SEP X("transition_flagged", BOOL, "e.transition_flagged") SEP \
    X("requested_at", TIME, "e.requested_at") SEP X("outcome", STR, "e.outcome") SEP \
    X("outcome_reason", STR, "e.outcome_reason") SEP X("outcome_ref", STR, "e.outcome_ref")

/* A timeline's citizen: c.id is the citizen asked for. */
#define CITIZEN_COLUMNS(X, SEP) \
    X("id", NUM, "c.id") SEP \
    X("identities", JSON, "cv_identity_view(c.id)")

#define SQL_PAIR(field, kind, expr) "'" field "', " expr
#define SQL_TEXT(field, kind, expr) expr "::text"
#define COLUMN(field, kind, expr) { field, CV_API_COL_##kind }
#define COMMA ,

#define REQUEST_JSON "json_build_object(" REQUEST_COLUMNS(SQL_PAIR, ", ") ")::text"
#define EVENT_JSON "json_build_object(" EVENT_COLUMNS(SQL_PAIR, ", ") ")::text"

static const cv_api_column_t s_request_cols[] = { REQUEST_COLUMNS(COLUMN, COMMA) };
static const cv_api_column_t s_event_cols[] = { EVENT_COLUMNS(COLUMN, COMMA) };
static const cv_api_column_t s_citizen_cols[] = { CITIZEN_COLUMNS(COLUMN, COMMA) };
#define NCOLS(a) (sizeof a / sizeof a[0])

const cv_api_column_t *cv_api_sql_columns(const char *object, size_t *n)
{
    if (strcmp(object, "request") == 0) {
        *n = NCOLS(s_request_cols);
        return s_request_cols;
    }
    if (strcmp(object, "event") == 0) {
        *n = NCOLS(s_event_cols);
        return s_event_cols;
    }
    if (strcmp(object, "citizen") == 0) {
        *n = NCOLS(s_citizen_cols);
        return s_citizen_cols;
    }
    *n = 0;
    return NULL;
}

/* Open311 GeoReport v2: every field of a request, in the specification's
   order and names (api_open311.c hides what the caller may not see);
   service_request_id is the tracking code, dates are W3C date-times in
   UTC, description the latest summary, address / lat / long what the web
   form (source open311) gave. Rows: the item, service, category, id,
   citizen id. */
#define O311_TIME(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define O311_FORM(expr) "(SELECT " expr " FROM request_sources rs JOIN source_records sr" \
    " ON sr.source = rs.source AND sr.source_record_id = rs.source_record_id" \
    " WHERE rs.request_id = r.id AND rs.source = 'open311' ORDER BY sr.record_at DESC LIMIT 1)"
#define O311_NUMBER(key) "CASE WHEN sr.raw->>'" key "' ~ '^-?[0-9]{1,3}(\\.[0-9]{1,12})?$'" \
    " THEN (sr.raw->>'" key "')::float8 END"
#define O311_ROW \
    "json_build_object('service_request_id', r.tracking_code," \
    " 'status', CASE WHEN r.status IN " OPEN_STATUSES " THEN 'open' ELSE 'closed' END," \
    " 'status_notes', r.status, 'service_name', r.category, 'service_code', r.category," \
    " 'description', " LATEST_RECORD("sr.summary") "," \
    " 'agency_responsible', r.service, 'service_notice', NULL," \
    " 'requested_datetime', " O311_TIME("coalesce(r.requested_at, r.created_at)") "," \
    " 'updated_datetime', " O311_TIME("r.updated_at") "," \
    " 'expected_datetime', " O311_TIME("r.due_at") "," \
    " 'address', coalesce(" LATEST_RECORD("sr.location->>'address'") ", " O311_FORM("sr.raw->>'address_string'") ")," \
    " 'address_id', NULL, 'zipcode', " LATEST_RECORD("sr.location->>'postcode'") "," \
    " 'lat', coalesce(" LATEST_RECORD("(sr.location->>'lat')::float8") ", " O311_FORM(O311_NUMBER("lat")) ")," \
    " 'long', coalesce(" LATEST_RECORD("(sr.location->>'lon')::float8") ", " O311_FORM(O311_NUMBER("long")) ")," \
    " 'media_url', NULL)::text, r.service, r.category, r.id, r.citizen_id"

/* A citizen's timeline, one page, as rows (api_timeline.c writes the
   answer): $1 citizen id, $2 limit, $3 offset, $4 (agent only) the agent's
   service. Every row has CV_TIMELINE_NCOLS columns: its part (0 the
   citizen, 1 a request, 2 an event), a request's rank counting from the
   newest, then the object's columns in table order as text (NULL past
   them); sorted by part, then creation or occurrence. No part-0 row: no
   such citizen or, for an agent, none with a request of the agent's
   service (existence is not revealed). A page is the limit requests that come after offset others,
   counting from the newest (creation time, then id, a stable order): the
   first page holds the most recent requests, next_offset goes back in
   time. The page's requests are read once (cr, with one row more than the
   page, the oldest, ranked past offset + limit: a next page exists) and
   listed in creation order; the events are those of the page's requests,
   in occurrence order. tests/it/api.sh checks the order and the pages. */
#define NULLS2 "NULL::text, NULL::text"
#define NULLS4 NULLS2 ", " NULLS2
#define NULLS6 NULLS4 ", " NULLS2
#define NULLS20 NULLS4 ", " NULLS4 ", " NULLS4 ", " NULLS4 ", " NULLS4
#define VALUES_22 "v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15, v16, v17, v18, v19, v20," \
    " v21, v22"
#define TIMELINE_SQL(SEEN) \
    "WITH cr AS MATERIALIZED (SELECT r.*, row_number() OVER (ORDER BY r.created_at DESC, r.id DESC) AS k" \
    " FROM requests r WHERE r.citizen_id = $1::bigint" \
    " ORDER BY r.created_at DESC, r.id DESC LIMIT $2::int + 1 OFFSET $3::bigint)" \
    " SELECT part, k, " VALUES_22 \
    " FROM (SELECT 0, NULL::bigint, " CITIZEN_COLUMNS(SQL_TEXT, ", ") ", " NULLS20 \
    ", NULL::timestamptz, NULL::bigint" \
    " FROM (SELECT $1::bigint AS id) c WHERE " SEEN \
    " UNION ALL SELECT 1, r.k, " REQUEST_COLUMNS(SQL_TEXT, ", ") ", r.created_at, r.id FROM cr r" \
    " UNION ALL SELECT 2, NULL, " EVENT_COLUMNS(SQL_TEXT, ", ") ", " NULLS6 ", e.occurred_at, e.id" \
    " FROM cr r JOIN events e ON e.request_id = r.id WHERE r.k <= $3::bigint + $2::int)" \
    " x(part, k, " VALUES_22 ", t, i)" \
    " ORDER BY part, t, i"

static const char *const s_sql[CV_SQL_COUNT] = {
    [CV_SQL_TOKEN] =
        "SELECT id, role, service FROM cv_api_token($1)",    /* the hashes are not the API's to read */
    [CV_SQL_REQUEST] =
        "SELECT " REQUEST_JSON ", r.service, r.citizen_id FROM requests r WHERE r.id = $1::bigint",
    [CV_SQL_REQUEST_EVENTS] =
        "SELECT " EVENT_JSON " FROM events e WHERE e.request_id = $1::bigint ORDER BY e.occurred_at, e.id",
    /* what the citizen and others were told (civibus-notify's ledger, docs/notifications.md):
       no address, no content; recipient is citizen, helper, supervisor:SERVICE or webhook:NAME */
    [CV_SQL_REQUEST_NOTIFICATIONS] =
        "SELECT json_build_object('recipient', n.recipient, 'channel', n.channel, 'template', n.template,"
        " 'status', n.status, 'state', n.state, 'attempts', n.attempts, 'error', n.last_error,"
        " 'planned_at', n.created_at, 'done_at', n.done_at)::text"
        " FROM notifications n WHERE n.request_id = $1::bigint ORDER BY n.created_at, n.id",
    [CV_SQL_SERVICE_OPEN] =
        "SELECT " REQUEST_JSON ", r.service FROM requests r"
        " WHERE r.service = $1 AND r.status IN " OPEN_STATUSES
        " ORDER BY r.id LIMIT $2::int OFFSET $3::bigint",
    [CV_SQL_OVERDUE] =
        "SELECT " REQUEST_JSON ", r.service FROM requests r"
        " WHERE r.due_at < now() AND r.status IN " OPEN_STATUSES
        " AND ($1::text IS NULL OR r.service = $1)"
        " ORDER BY r.due_at, r.id LIMIT $2::int OFFSET $3::bigint",
    /* a service's queue by due date (api_queue.c): $2 overdue, soon (due within $3 days) or
       both; waiting_citizen requests are not in it (their clock is stopped) */
    [CV_SQL_QUEUE] =
        "SELECT " REQUEST_JSON ", r.service FROM requests r"
        " WHERE r.service = $1 AND r.due_at IS NOT NULL"
        " AND r.status IN ('received', 'acknowledged', 'in_progress')"
        " AND r.due_at < CASE WHEN $2 = 'overdue' THEN now() ELSE now() + $3::int * interval '1 day' END"
        " AND ($2 <> 'soon' OR r.due_at >= now())"
        " ORDER BY r.due_at, r.id LIMIT $4::int OFFSET $5::bigint",
    [CV_SQL_IDENTITY_INSTALLED] =
        "SELECT to_regprocedure('cv_fold(text)') IS NOT NULL"
        " AND to_regclass('citizen_identifiers') IS NOT NULL"
        " AND to_regclass('citizen_sources_search_name') IS NOT NULL",
    [CV_SQL_TRACK] =
        "SELECT json_build_object('tracking_code', r.tracking_code, 'service', r.service,"
        " 'category', r.category, 'status', r.status, 'status_at', r.status_occurred_at,"
        " 'due_at', r.due_at, 'created_at', r.created_at, 'requested_at', r.requested_at,"
        " 'history', (SELECT coalesce(json_agg(json_build_object('status', e.status,"
        "   'occurred_at', e.occurred_at) ORDER BY e.occurred_at, e.id), '[]')"
        "   FROM events e WHERE e.request_id = r.id))::text, r.id, r.citizen_id"
        " FROM requests r WHERE r.tracking_code = $1",
    [CV_SQL_TIMELINE] =
        TIMELINE_SQL("EXISTS (SELECT 1 FROM citizens WHERE id = $1::bigint)"),
    [CV_SQL_TIMELINE_AGENT] =
        TIMELINE_SQL("EXISTS (SELECT 1 FROM requests WHERE citizen_id = $1::bigint AND service = $4::text)"),
    [CV_SQL_HAS_PROPOSALS] =
        "SELECT to_regclass('merge_proposals') IS NOT NULL",
    /* Open311: a service is a category (its group: the service that handles
       it, the first one seen when several do), from service_categories (009). */
    [CV_SQL_O311_SERVICES] =
        "SELECT json_build_object('service_code', s.category, 'service_name', s.category,"
        " 'description', '', 'metadata', false, 'type', 'realtime', 'keywords', '',"
        " 'group', s.service)::text"
        " FROM (SELECT DISTINCT ON (category) category, service FROM service_categories"
        "       ORDER BY category, first_seen, service) s",
    [CV_SQL_O311_SERVICE_OF] =
        "SELECT service FROM service_categories WHERE category = $1"
        " ORDER BY first_seen, service LIMIT 1",
    /* $1 service_request_id (tracking codes, or id-<id> as items show), $2 service_code (categories),
       $5 status (open, closed): arrays, NULL = any; $3 start_date, $4 end_date,
       $6 updated_after, $7 updated_before; $8 limit (page_size), $10 offset
       ((page - 1) * page_size); $9 the categories the caller may list (NULL =
       any: a token). A request without a category is no Open311 service's.
       Newest first, by id: a stable order for the pages. */
    [CV_SQL_O311_REQUESTS] =
        "SELECT " O311_ROW " FROM requests r"
        " WHERE r.category IS NOT NULL"
        " AND ($1::text[] IS NULL OR r.tracking_code = ANY($1::text[]) OR 'id-' || r.id = ANY($1::text[]))"
        " AND ($2::text[] IS NULL OR r.category = ANY($2::text[]))"
        " AND ($3::timestamptz IS NULL OR r.created_at >= $3::timestamptz)"
        " AND ($4::timestamptz IS NULL OR r.created_at <= $4::timestamptz)"
        " AND ($5::text[] IS NULL OR (CASE WHEN r.status IN " OPEN_STATUSES " THEN 'open' ELSE 'closed' END)"
        "      = ANY($5::text[]))"
        " AND ($6::timestamptz IS NULL OR r.updated_at >= $6::timestamptz)"
        " AND ($7::timestamptz IS NULL OR r.updated_at <= $7::timestamptz)"
        " AND ($9::text[] IS NULL OR r.category = ANY($9::text[]))"
        " ORDER BY r.id DESC LIMIT $8::int OFFSET $10::bigint",
    [CV_SQL_O311_REQUEST] =
        "SELECT " O311_ROW " FROM requests r WHERE r.tracking_code = $1 AND r.category IS NOT NULL",
    /* requests/id-<id>: the id an item shows where the caller may not see
       the tracking code (api_open311.c decides what it shows). */
    [CV_SQL_O311_REQUEST_ID] =
        "SELECT " O311_ROW " FROM requests r WHERE r.id = $1::bigint AND r.category IS NOT NULL",
    /* A web request enters the timeline through the store's own function (its
       writer lock, its projection): a one-element batch of source 'open311'.
       $1 content hash, $2 citizen key, $3 record / event id, $4 service,
       $5 category, $6 summary, $7 citizen block, $8 raw record, $9 the
       location (address_string, lat, long; never the citizen's); requested
       now. */
    [CV_SQL_O311_INGEST] =
        "SELECT o_outcome, o_tracking_code, o_request_id FROM cv_ingest(ARRAY[0], ARRAY['open311'],"
        " ARRAY[$1::text], ARRAY[$2::text], convert_to(cv_tracking_code(), 'UTF8'), ARRAY[$3::text],"
        " ARRAY['open311_request'], ARRAY[$3::text], ARRAY[NULL::text], ARRAY[$4::text],"
        " ARRAY[$5::text], ARRAY['web'], ARRAY['received'], ARRAY[NULL::text], ARRAY[NULL::text],"
        " ARRAY[to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')],"
        " ARRAY[NULL::text], ARRAY[$6::text], ARRAY[NULL::text], ARRAY[$7::text], ARRAY[$8::text],"
        " p_requested_at => ARRAY[to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')],"
        " p_location => ARRAY[$9::text])",
    /* GET /v1/requests/count: $1 service, $2 status, $3 channel, $4 category,
       $5 created from (included), $6 created before (excluded); NULL = any. */
    [CV_SQL_REQUEST_COUNT] =
        "SELECT count(*) FROM requests r"
        " WHERE ($1::text IS NULL OR r.service = $1) AND ($2::text IS NULL OR r.status = $2)"
        " AND ($3::text IS NULL OR r.channel = $3) AND ($4::text IS NULL OR r.category = $4)"
        " AND ($5::timestamptz IS NULL OR r.created_at >= $5::timestamptz)"
        " AND ($6::timestamptz IS NULL OR r.created_at < $6::timestamptz)",
    [CV_SQL_LINK_REVOKED] =
        "SELECT 1 FROM api_revoked_links WHERE link_id = $1",
    /* A page of a citizen's requests, as a timeline page: $2 (limit + 1)
       requests after $3 newer ones, listed in creation order (the extra,
       oldest row first). */
    [CV_SQL_LINK_REQUESTS] =
        "SELECT json_build_object('tracking_code', r.tracking_code, 'service', r.service,"
        " 'category', r.category, 'status', r.status, 'status_at', r.status_occurred_at,"
        " 'due_at', r.due_at, 'created_at', r.created_at)::text, r.id"
        " FROM (SELECT * FROM requests WHERE citizen_id ="
        " (SELECT coalesce(c.merged_into, c.id) FROM citizens c WHERE c.id = $1::bigint)"   /* merges are followed */
        " ORDER BY created_at DESC, id DESC LIMIT $2::int OFFSET $3::bigint) r"
        " ORDER BY r.created_at, r.id",
};

/* Citizen search. $1 name, $2 email, $3 phone, $4 address, $5 tracking code,
   $6 the agent's service (null: any), $7 limit, $8 offset. Substring matches
   use strpos (no pattern characters) or LIKE with backslash, % and _ escaped; a
   name or address that folds to fewer than 2 characters matches no one
   (the handler refuses it first: "%%" folded to "" matched everyone). Two variants of the
   name / e-mail / phone / address tests: plain (lower case, digits), and,
   once identity resolution (004_identity.sql) and the search columns
   (007_search.sql) are installed, its own normalisation: e-mail and phone
   through the citizen_identifiers index, names and addresses folded
   (accents, case, punctuation) and matched through trigram indexes (the
   folded text holds letters, digits and spaces only: no LIKE escaping). */
#define SEARCH(NAME, EMAIL, PHONE, ADDRESS) \
    "SELECT json_build_object('id', c.citizen_id, 'identities', cv_identity_view(c.citizen_id))::text" \
    " FROM (SELECT DISTINCT cs.citizen_id FROM citizen_sources cs" \
    "  WHERE ($1::text IS NULL OR " NAME ")" \
    "    AND ($2::text IS NULL OR " EMAIL ")" \
    "    AND ($3::text IS NULL OR " PHONE ")" \
    "    AND ($4::text IS NULL OR " ADDRESS ")" \
    "    AND ($5::text IS NULL OR cs.citizen_id IN" \
    "          (SELECT r.citizen_id FROM requests r WHERE r.tracking_code = $5))" \
    "    AND ($6::text IS NULL OR EXISTS (SELECT 1 FROM requests r" \
    "          WHERE r.citizen_id = cs.citizen_id AND r.service = $6))) c" \
    " ORDER BY c.citizen_id LIMIT $7::int OFFSET $8::bigint"

#define NAMES(F) "concat_ws(' ', " F "(cs.identity->>'given_names'), " F "(cs.identity->>'family_name'), " \
                 F "(cs.identity->>'birth_name'))"
#define ADDR "concat_ws(' ', cs.identity->'address'->>'line1', cs.identity->'address'->>'line2'," \
             " cs.identity->'address'->>'postcode', cs.identity->'address'->>'city')"

static const char *s_search_plain = SEARCH(
    "strpos(lower(" NAMES("") "), lower($1)) > 0",
    "lower(cs.identity->>'email') = lower($2)",
    "right(regexp_replace(cs.identity->>'phone', '[^0-9]', '', 'g'), 9)"
    " = right(regexp_replace($3, '[^0-9]', '', 'g'), 9)",
    "strpos(lower(" ADDR "), lower($4)) > 0");

#define LIKE_ESCAPED(x) "replace(replace(replace(" x ", '\\', '\\\\'), '%', '\\%'), '_', '\\_')"
#define FOLDED_MATCH(col, p) "(length(replace(cv_fold(" p "), ' ', '')) >= 2 AND " col \
    " LIKE '%' || " LIKE_ESCAPED("cv_fold(" p ")") " || '%')"

static const char *s_search_identity = SEARCH(
    FOLDED_MATCH("cs.search_name", "$1"),
    "cs.citizen_id IN (SELECT i.citizen_id FROM citizen_identifiers i"
    " WHERE i.kind = 'email' AND i.value = cv_norm_email($2))",
    "cs.citizen_id IN (SELECT i.citizen_id FROM citizen_identifiers i"
    " WHERE i.kind = 'phone' AND i.value = cv_norm_phone($3))",
    FOLDED_MATCH("cs.search_address", "$4"));

const char *cv_api_sql_text(cv_sql_t stmt, bool identity)
{
    if (stmt == CV_SQL_CITIZEN_SEARCH)
        return identity ? s_search_identity : s_search_plain;
    return stmt < CV_SQL_COUNT && s_sql[stmt] ? s_sql[stmt] : "SELECT 1";
}
