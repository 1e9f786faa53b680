/*  api_sql — every statement the API prepares (see api_db.h). Each returns
    its rows as JSON text built by PostgreSQL (json_build_object), which the
    handlers parse, filter by role (api_access) and send. Timestamps are
    UTC (the session time zone). Pages ask for limit + 1 rows to tell
    whether a next page exists. */
#include "api_db.h"

#define OPEN_STATUSES "('received', 'acknowledged', 'in_progress', 'waiting_citizen')"

#define REQUEST_JSON \
    "json_build_object('id', r.id, 'tracking_code', r.tracking_code, 'service', r.service," \
    " 'category', r.category, 'channel', r.channel, 'status', r.status," \
    " 'status_at', r.status_occurred_at, 'due_at', r.due_at, 'created_at', r.created_at," \
    " 'updated_at', r.updated_at, 'request_ref', r.request_ref, 'citizen_id', r.citizen_id," \
    " 'flagged', r.flagged," \
    " 'overdue', coalesce(r.due_at < now() AND r.status IN " OPEN_STATUSES ", false)," \
    " 'summary', (SELECT sr.summary FROM request_sources rs" \
    "             JOIN source_records sr ON sr.source = rs.source AND sr.source_record_id = rs.source_record_id" \
    "             WHERE rs.request_id = r.id ORDER BY sr.record_at DESC LIMIT 1))::text"

#define EVENT_JSON \
    "json_build_object('id', e.id, 'request_id', e.request_id, 'service', e.service," \
    " 'category', e.category, 'kind', e.kind, 'source', e.source, 'status', e.status," \
    " 'source_status', e.source_status, 'occurred_at', e.occurred_at, 'due_at', e.due_at," \
    " 'received_at', e.received_at, 'transition_flagged', e.transition_flagged)::text"

/* Open311 GeoReport v2 field names; service_request_id is the tracking code. */
#define O311_JSON \
    "json_build_object('service_request_id', r.tracking_code," \
    " 'status', CASE WHEN r.status IN " OPEN_STATUSES " THEN 'open' ELSE 'closed' END," \
    " 'status_notes', r.status, 'service_name', r.category, 'service_code', r.category," \
    " 'agency_responsible', r.service, 'requested_datetime', r.created_at," \
    " 'updated_datetime', r.updated_at, 'expected_datetime', r.due_at)::text"

static const char *const s_sql[CV_SQL_COUNT] = {
    [CV_SQL_TOKEN] =
        "SELECT id, role, coalesce(service, '') FROM api_tokens"
        " WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
    [CV_SQL_REQUEST] =
        "SELECT " REQUEST_JSON ", r.service, r.citizen_id FROM requests r WHERE r.id = $1::bigint",
    [CV_SQL_REQUEST_EVENTS] =
        "SELECT " EVENT_JSON " FROM events e WHERE e.request_id = $1::bigint ORDER BY e.occurred_at, e.id",
    [CV_SQL_SERVICE_OPEN] =
        "SELECT " REQUEST_JSON ", r.service FROM requests r"
        " WHERE r.service = $1 AND r.status IN " OPEN_STATUSES
        " ORDER BY r.id LIMIT $2::int OFFSET $3::bigint",
    [CV_SQL_OVERDUE] =
        "SELECT " REQUEST_JSON ", r.service FROM requests r"
        " WHERE r.due_at < now() AND r.status IN " OPEN_STATUSES
        " AND ($1::text IS NULL OR r.service = $1)"
        " ORDER BY r.due_at, r.id LIMIT $2::int OFFSET $3::bigint",
    [CV_SQL_CITIZEN_EXISTS] =
        "SELECT 1 FROM citizens WHERE id = $1::bigint",
    [CV_SQL_CITIZEN_SEEN_BY] =
        "SELECT 1 FROM requests WHERE citizen_id = $1::bigint AND service = $2 LIMIT 1",
    [CV_SQL_CITIZEN_IDENTITIES] =
        "SELECT coalesce(json_agg(json_build_object('source', s.source, 'identity', s.identity)"
        " ORDER BY s.source, s.source_citizen_id), '[]')::text"
        " FROM citizen_sources s WHERE s.citizen_id = $1::bigint",
    [CV_SQL_CITIZEN_REQUESTS] =
        "SELECT " REQUEST_JSON ", r.service FROM requests r WHERE r.citizen_id = $1::bigint"
        " ORDER BY r.created_at, r.id",
    [CV_SQL_CITIZEN_EVENTS] =
        "SELECT " EVENT_JSON ", e.service FROM requests r JOIN events e ON e.request_id = r.id"
        " WHERE r.citizen_id = $1::bigint ORDER BY e.occurred_at, e.id",
    [CV_SQL_IDENTITY_INSTALLED] =
        "SELECT to_regprocedure('cv_fold(text)') IS NOT NULL"
        " AND to_regclass('citizen_identifiers') IS NOT NULL"
        " AND to_regclass('citizen_sources_search_name') IS NOT NULL",
    [CV_SQL_TRACK] =
        "SELECT json_build_object('tracking_code', r.tracking_code, 'service', r.service,"
        " 'category', r.category, 'status', r.status, 'status_at', r.status_occurred_at,"
        " 'due_at', r.due_at, 'created_at', r.created_at,"
        " 'history', (SELECT coalesce(json_agg(json_build_object('status', e.status,"
        "   'occurred_at', e.occurred_at) ORDER BY e.occurred_at, e.id), '[]')"
        "   FROM events e WHERE e.request_id = r.id))::text, r.id, r.citizen_id"
        " FROM requests r WHERE r.tracking_code = $1",
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
    /* $1 service_request_id, $2 service_code, $3 start_date, $4 end_date, $5 status
       (open|closed), $6 updated_after, $7 updated_before, $8 limit. */
    [CV_SQL_O311_REQUESTS] =
        "SELECT " O311_JSON ", r.service FROM requests r"
        " WHERE ($1::text IS NULL OR r.tracking_code = $1) AND ($2::text IS NULL OR r.category = $2)"
        " AND ($3::timestamptz IS NULL OR r.created_at >= $3::timestamptz)"
        " AND ($4::timestamptz IS NULL OR r.created_at <= $4::timestamptz)"
        " AND ($5::text IS NULL OR ($5 = 'open') = (r.status IN " OPEN_STATUSES "))"
        " AND ($6::timestamptz IS NULL OR r.updated_at >= $6::timestamptz)"
        " AND ($7::timestamptz IS NULL OR r.updated_at <= $7::timestamptz)"
        " ORDER BY r.id DESC LIMIT $8::int",
    [CV_SQL_O311_REQUEST] =
        "SELECT " O311_JSON ", r.id, r.citizen_id FROM requests r WHERE r.tracking_code = $1",
    /* A web request enters the timeline through the store's own function (its
       writer lock, its projection): a one-element batch of source 'open311'.
       $1 content hash, $2 citizen key, $3 record / event id, $4 service,
       $5 category, $6 summary, $7 citizen block, $8 raw record. */
    [CV_SQL_O311_INGEST] =
        "SELECT o_outcome, o_tracking_code, o_request_id FROM cv_ingest(ARRAY[0], ARRAY['open311'],"
        " ARRAY[$1::text], ARRAY[$2::text], convert_to(cv_tracking_code(), 'UTF8'), ARRAY[$3::text],"
        " ARRAY['open311_request'], ARRAY[$3::text], ARRAY[NULL::text], ARRAY[$4::text],"
        " ARRAY[$5::text], ARRAY['web'], ARRAY['received'], ARRAY[NULL::text], ARRAY[NULL::text],"
        " ARRAY[to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')],"
        " ARRAY[NULL::text], ARRAY[$6::text], ARRAY[NULL::text], ARRAY[$7::text], ARRAY[$8::text])",
    [CV_SQL_LINK_REVOKED] =
        "SELECT 1 FROM api_revoked_links WHERE link_id = $1",
    [CV_SQL_LINK_REQUESTS] =
        "SELECT json_build_object('tracking_code', r.tracking_code, 'service', r.service,"
        " 'category', r.category, 'status', r.status, 'status_at', r.status_occurred_at,"
        " 'due_at', r.due_at, 'created_at', r.created_at)::text, r.id"
        " FROM requests r WHERE r.citizen_id ="
        " (SELECT coalesce(c.merged_into, c.id) FROM citizens c WHERE c.id = $1::bigint)"   /* merges are followed */
        " ORDER BY r.created_at, r.id",
};

/* Citizen search. $1 name, $2 email, $3 phone, $4 address, $5 tracking code,
   $6 the agent's service (null: any), $7 limit, $8 offset. Substring matches
   use strpos: no LIKE pattern characters to escape. Two variants of the
   name / e-mail / phone / address tests: plain (lower case, digits), and,
   once identity resolution (004_identity.sql) and the search columns
   (007_search.sql) are installed, its own normalisation: e-mail and phone
   through the citizen_identifiers index, names and addresses folded
   (accents, case, punctuation) and matched through trigram indexes (the
   folded text holds letters, digits and spaces only: no LIKE escaping). */
#define SEARCH(NAME, EMAIL, PHONE, ADDRESS) \
    "SELECT json_build_object('id', c.citizen_id, 'identities'," \
    "  (SELECT coalesce(json_agg(json_build_object('source', s.source, 'identity', s.identity)" \
    "   ORDER BY s.source, s.source_citizen_id), '[]') FROM citizen_sources s" \
    "   WHERE s.citizen_id = c.citizen_id))::text" \
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

static const char *s_search_identity = SEARCH(
    "cs.search_name LIKE '%' || coalesce(cv_fold($1), '') || '%'",
    "cs.citizen_id IN (SELECT i.citizen_id FROM citizen_identifiers i"
    " WHERE i.kind = 'email' AND i.value = cv_norm_email($2))",
    "cs.citizen_id IN (SELECT i.citizen_id FROM citizen_identifiers i"
    " WHERE i.kind = 'phone' AND i.value = cv_norm_phone($3))",
    "cs.search_address LIKE '%' || coalesce(cv_fold($4), '') || '%'");

const char *cv_api_sql_text(cv_sql_t stmt, bool identity)
{
    if (stmt == CV_SQL_CITIZEN_SEARCH)
        return identity ? s_search_identity : s_search_plain;
    return stmt < CV_SQL_COUNT && s_sql[stmt] ? s_sql[stmt] : "SELECT 1";
}
