/*  ctl_remap — `civibusctl remap --hub-config FILE --source S [--since DATE]
    [--dry-run]` (ctl_fix.h, docs/operations.md "Fixing what was stored",
    docs/schema.md "Corrections").

    Reads the latest raw record of each of the source's records
    (source_records.raw; with --since, those whose record_at is at or after
    DATE), maps it with the source's CURRENT mapping, and compares the
    result with what is stored: the request's status, status time
    (occurred_at), due_at, category, requested_at, outcome, and the
    record's location. A record that differs gets a correction event: the
    canonical event as mapped now, with kind 'correction' and the event id
    'remap:' + sha256 of (that event, the events.id it corrects), written
    through the hub's store (cv_ingest) like any event, so the timeline
    stays append-only. A correction takes the request's projection when
    it is written (functions/remap.sql), whatever its occurred_at. Once
    written, the projection agrees with the mapping: a second run finds
    nothing to correct and writes nothing (and the same correction sent
    twice would be a duplicate). --progress (the default on a terminal):
    a line a second on stderr while the records are compared
    (ctl_progress.c). */
#include "ctl_fix.h"
#include "ctl_progress.h"

#include "cv_hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const FIELDS[] = { "status", "occurred_at", "due_at", "category", "requested_at",
                                      "outcome", "location" };
#define NFIELDS (sizeof FIELDS / sizeof FIELDS[0])

/* $1 the event as mapped now, $2 source, $3 source_record_id: one boolean
   per FIELDS entry (true: differs), then the events.id in effect. A field
   the event does not give is not compared where the projection keeps the
   old value (category, requested_at). A location absent and a JSON null
   are the same (the store writes the latter). */
static const char *s_diff_sql =
    "WITH e AS (SELECT $1::jsonb AS e)"
    " SELECT r.status IS DISTINCT FROM e->>'status',"
    "        r.status_occurred_at IS DISTINCT FROM (e->>'occurred_at')::timestamptz,"
    "        r.due_at IS DISTINCT FROM (e->>'due_at')::timestamptz,"
    "        e->>'category' IS NOT NULL AND r.category IS DISTINCT FROM e->>'category',"
    "        e->>'requested_at' IS NOT NULL"
    "          AND r.requested_at IS DISTINCT FROM (e->>'requested_at')::timestamptz,"
    "        (r.outcome::text, r.outcome_reason, r.outcome_ref) IS DISTINCT FROM"
    "          (e->'outcome'->>'code', e->'outcome'->>'reason', e->'outcome'->>'related_ref'),"
    "        NULLIF(sr.location, 'null') IS DISTINCT FROM NULLIF(cv_location(e->'location'), 'null'),"
    "        r.status_event_id"
    " FROM e, source_records sr JOIN requests r ON r.id = sr.request_id"
    " WHERE sr.source = $2 AND sr.source_record_id = $3";

static int s_usage(void)
{
    fprintf(stderr, "usage: civibusctl remap --hub-config FILE --source S [--since DATE] [--dry-run] [--progress]\n");
    return 2;
}

typedef struct {
    json_t *event, *record;
    char *raw;
    size_t raw_len;
    char hash[65];
    cv_store_item_t item;
} s_fix_t;

/* Which fields differ (bit per FIELDS entry); -1 on error; *corrects the
   events.id in effect. */
static int s_diff(PGconn *pg, const char *source, const json_t *event, char corrects[24])
{
    char *text = json_dumps(event, JSON_COMPACT);
    const char *v[3] = { text, source, json_string_value(json_object_get(event, "source_record_id")) };
    PGresult *r = PQexecParams(pg, s_diff_sql, 3, NULL, v, NULL, NULL, 0);
    free(text);
    int bits = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        fprintf(stderr, "civibusctl: remap: comparing a record failed (SQLSTATE %s)\n", st ? st : "?");
        bits = -1;
    }
    else if (PQntuples(r) == 1) {
        for (size_t k = 0; k < NFIELDS; k++)
            if (strcmp(PQgetvalue(r, 0, (int) k), "t") == 0)
                bits |= 1 << k;
        snprintf(corrects, 24, "%s", PQgetvalue(r, 0, (int) NFIELDS));
    }
    PQclear(r);
    return bits;
}

/* The correction: the event as mapped, kind 'correction', a derived id. */
static int s_correction(s_fix_t *x, const char *corrects)
{
    char *text = json_dumps(x->event, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return -1;
    size_t len = strlen(text) + strlen(corrects) + 2;
    char *buf = malloc(len), hex[65], id[80];
    if (!buf) {
        free(text);
        return -1;
    }
    snprintf(buf, len, "%s|%s", text, corrects);
    cv_hash_bytes(buf, strlen(buf), hex);
    free(buf);
    free(text);
    snprintf(id, sizeof id, "remap:%s", hex);
    json_object_set_new(x->event, "event_id", json_string(id));
    json_object_set_new(x->event, "kind", json_string("correction"));
    return 0;
}

static int s_remap(cv_ctl_fix_t *f, const char *since, bool dry, bool progress)
{
    const char *v[2] = { f->source->name, since };
    PGresult *r = cv_ctl_fix_select(f->pg, "remap",
        "SELECT raw::text FROM source_records"
        " WHERE source = $1 AND raw IS NOT NULL AND ($2::timestamptz IS NULL OR record_at >= $2::timestamptz)"
        " ORDER BY source_record_id", 2, v, 0);
    if (!r)
        return 1;
    int n = PQntuples(r), rc = 0;
    s_fix_t *fix = calloc((size_t) n + 1, sizeof *fix);
    cv_store_item_t *items = calloc((size_t) n + 1, sizeof *items);
    json_t *unmapped = json_object(), *changed = json_object();
    size_t m = 0;
    if (!fix || !items || !unmapped || !changed) {
        fprintf(stderr, "civibusctl: remap: out of memory\n");
        n = 0;
        rc = 1;
    }
    long long nchanged = 0, nunmapped = 0;
    char what[160], extra[80];
    snprintf(what, sizeof what, "remap %s: records compared", f->source->name);
    cv_ctl_progress_t pr;
    cv_ctl_progress_start(&pr, what, n, progress);
    for (int i = 0; i < n && rc == 0; i++) {
        snprintf(extra, sizeof extra, "%lld changed, %lld not mapped", nchanged, nunmapped);
        cv_ctl_progress(&pr, i, extra, false);
        s_fix_t *x = &fix[m];
        memset(x, 0, sizeof *x);          /* what a skipped record left here */
        json_error_t jerr;
        char why[48], detail[256], corrects[24] = "";
        x->record = json_loads(PQgetvalue(r, i, 0), 0, &jerr);
        if (!json_is_object(x->record)) {
            cv_ctl_fix_count(unmapped, "invalid_json");
            nunmapped++;
            json_decref(x->record);
            continue;
        }
        cv_hash_json(x->record, x->hash);
        if (cv_mapping_apply_hashed(f->source->mapping, x->record, x->hash, &x->event, why, sizeof why,
                                    detail, sizeof detail) != 0) {
            cv_ctl_fix_count(unmapped, why);
            nunmapped++;
            json_decref(x->record);
            continue;
        }
        int bits = s_diff(f->pg, f->source->name, x->event, corrects);
        if (bits < 0)
            rc = 1;
        if (bits <= 0 || !corrects[0] || s_correction(x, corrects) != 0) {
            json_decref(x->record);
            json_decref(x->event);
            continue;
        }
        for (size_t k = 0; k < NFIELDS; k++)
            if (bits & (1 << k))
                cv_ctl_fix_count(changed, FIELDS[k]);
        nchanged++;
        x->raw = strdup(PQgetvalue(r, i, 0));
        x->raw_len = strlen(x->raw);
        cv_ctl_fix_item(&x->item, f->source->name, x->event, x->record, x->raw, x->raw_len, x->hash);
        m++;
    }
    snprintf(extra, sizeof extra, "%lld changed, %lld not mapped", nchanged, nunmapped);
    cv_ctl_progress(&pr, n, extra, true);
    long long stored = 0, dup = 0, failed = 0;
    if (rc == 0 && !dry && m > 0) {
        for (size_t k = 0; k < m; k++)
            items[k] = fix[k].item;
        if (cv_ctl_fix_write(f, items, m) != 0)
            rc = 1;
        for (size_t k = 0; k < m && rc == 0; k++) {
            if (items[k].outcome == CV_OUT_STORED)
                stored++;
            else if (items[k].outcome == CV_OUT_DUPLICATE)
                dup++;
            else
                failed++;
        }
    }
    if (rc == 0) {
        printf("remap %s%s: %d record(s) read, %lld changed, %lld could not be mapped now\n",
               f->source->name, dry ? " (dry run: nothing written)" : "", n, nchanged, nunmapped);
        cv_ctl_fix_print_counts("changed, by field:", changed);
        cv_ctl_fix_print_counts("not mapped now, by reason:", unmapped);
        if (!dry)
            printf("correction events: %lld written, %lld duplicate(s), %lld refused (dead letters)\n",
                   stored, dup, failed);
        json_t *counts = json_pack("{s:i, s:I, s:O, s:O, s:I, s:I, s:I}", "read", n,
                                   "changed", (json_int_t) nchanged, "by_field", changed,
                                   "unmapped", unmapped, "written", (json_int_t) stored,
                                   "duplicates", (json_int_t) dup, "refused", (json_int_t) failed);
        if (!dry)
            rc = cv_ctl_fix_audit(f, "remap", "since", since, counts, stored > 0);
        json_decref(counts);
    }
    for (size_t k = 0; k < m; k++) {
        json_decref(fix[k].event);
        json_decref(fix[k].record);
        cv_store_item_release(&fix[k].item);
        free(fix[k].raw);
    }
    free(fix);
    free(items);
    json_decref(unmapped);
    json_decref(changed);
    PQclear(r);
    return rc;
}

int cv_ctl_remap(int argc, char **argv)
{
    const char *source = NULL, *since = NULL, *hub = NULL;
    bool dry = false, progress = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0) dry = true;
        else if (strcmp(argv[i], "--progress") == 0) progress = true;
        else if (i + 1 >= argc) return s_usage();
        else if (strcmp(argv[i], "--source") == 0) source = argv[++i];
        else if (strcmp(argv[i], "--since") == 0) since = argv[++i];
        else if (strcmp(argv[i], "--hub-config") == 0) hub = argv[++i];
        else return s_usage();
    }
    if (!source || !hub)
        return s_usage();
    cv_ctl_fix_t f;
    int rc = cv_ctl_fix_open(&f, hub, source, !dry);
    if (rc == 0)
        rc = s_remap(&f, since, dry, progress);
    cv_ctl_fix_close(&f);
    return rc;
}
