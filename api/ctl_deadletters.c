/*  ctl_deadletters — `civibusctl dead-letters list|replay` (ctl_fix.h,
    docs/operations.md "Fixing what was stored").

    list: per reason, how many dead letters wait and how many were replayed;
    then the newest ones: id, when, reason, detail (never the payload: it
    is personal data).

    replay: each waiting dead letter of the source whose reason comes from
    the mapping (REPLAYABLE below; not invalid_json, invalid_utf8, malformed
    or too_large, whose payload is not a whole record) is parsed, hashed and
    mapped as hub/receive/handle_event.c does, with the source's CURRENT
    mapping, and what maps goes through the hub's store. A dead letter
    whose event is now stored (or was already: duplicate) is marked
    replayed_at / replayed_event, in a transaction after the store's: a
    crash in between leaves it waiting, and the next replay finds its event
    a duplicate and marks it then. A second run therefore stores nothing.
    --progress (the default on a terminal): a line a second on stderr while
    the dead letters are mapped, then while they are marked (ctl_progress.c). */
#include "ctl_fix.h"
#include "ctl_progress.h"

#include "cv_hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLAYABLE_LIST "unmapped_value,missing_field,bad_date,bad_type,invalid_event,no_rule,data_error"
static const char *const REPLAYABLE = "{" REPLAYABLE_LIST "}";      /* a text[] literal */

static bool s_replayable(const char *reason)
{
    char key[64];
    if (strlen(reason) > sizeof key - 3 || strchr(reason, ','))
        return false;
    snprintf(key, sizeof key, ",%s,", reason);
    return strstr("," REPLAYABLE_LIST ",", key) != NULL;
}

static int s_usage(void)
{
    fprintf(stderr, "usage: civibusctl [--config FILE] dead-letters list --source S [--reason R] [--limit N]"
                    " [--hub-config FILE]\n"
                    "       civibusctl dead-letters replay --hub-config FILE --source S [--reason R]"
                    " [--dry-run] [--progress]\n");
    return 2;
}

static int s_list(PGconn *pg, const char *source, const char *reason, const char *limit)
{
    const char *v[3] = { source, reason, limit ? limit : "10" };
    PGresult *r = cv_ctl_fix_select(pg, "dead-letters list",
        "SELECT reason, count(*) FILTER (WHERE replayed_at IS NULL),"
        "       count(*) FILTER (WHERE replayed_at IS NOT NULL)"
        " FROM dead_letters WHERE source = $1 AND ($2::text IS NULL OR reason = $2)"
        " GROUP BY reason ORDER BY reason", 2, v, 0);
    if (!r)
        return 1;
    printf("dead letters of %s: %d reason(s)\n", source, PQntuples(r));
    for (int i = 0; i < PQntuples(r); i++)
        printf("  %-16s %s waiting, %s replayed\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
               PQgetvalue(r, i, 2));
    PQclear(r);
    r = cv_ctl_fix_select(pg, "dead-letters list",
        "SELECT id, to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), reason,"
        "       COALESCE(detail, ''), CASE WHEN replayed_at IS NOT NULL THEN 'replayed as event '"
        "       || COALESCE(replayed_event::text, '?') WHEN replay_reason IS NOT NULL"
        "       THEN 'waiting; at the last replay: ' || replay_reason || ': ' || COALESCE(replay_detail, '')"
        "       ELSE 'waiting' END"
        " FROM dead_letters WHERE source = $1 AND ($2::text IS NULL OR reason = $2)"
        " ORDER BY id DESC LIMIT $3::int", 3, v, 0);
    if (!r)
        return 1;
    printf("newest %d:\n", PQntuples(r));
    for (int i = 0; i < PQntuples(r); i++)
        printf("  #%s %s %s (%s): %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
               PQgetvalue(r, i, 4), PQgetvalue(r, i, 3));
    PQclear(r);
    return 0;
}

typedef struct {
    char id[24];
    cv_store_item_t item;
} s_letter_t;

/* Dry run: would the event be new, a duplicate, or an id reused? */
static const char *s_probe(PGconn *pg, const cv_store_item_t *it)
{
    const char *v[3] = { it->source, json_string_value(json_object_get(it->event, "event_id")),
                         it->content_hash };
    PGresult *r = PQexecParams(pg, "SELECT content_hash = $3 FROM events WHERE source = $1 AND event_id = $2",
                               3, NULL, v, NULL, NULL, 0);
    const char *what = PQresultStatus(r) != PGRES_TUPLES_OK ? "error"
                       : PQntuples(r) == 0 ? "stored"
                       : strcmp(PQgetvalue(r, 0, 0), "t") == 0 ? "duplicate" : "id_reused";
    PQclear(r);
    return what;
}

static int s_mark(PGconn *pg, const s_letter_t *l)
{
    char seq[24];
    snprintf(seq, sizeof seq, "%lld", (long long) l->item.event_seq);
    const char *v[2] = { l->id, seq };
    PGresult *r = PQexecParams(pg, "UPDATE dead_letters SET replayed_at = now(), replayed_event = $2::bigint"
                                   " WHERE id = $1::bigint AND replayed_at IS NULL", 2, NULL, v, NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : 1;
    if (rc)
        fprintf(stderr, "civibusctl: marking dead letter %s failed: %s", l->id, PQresultErrorMessage(r));
    PQclear(r);
    return rc;
}

/* A dead letter that still does not map: what the mapping says now. */
static void s_tried(PGconn *pg, bool dry, const char *id, const char *reason, const char *detail)
{
    if (dry)
        return;
    const char *v[3] = { id, reason, detail };
    PGresult *r = PQexecParams(pg, "UPDATE dead_letters SET replay_reason = $2, replay_detail = $3,"
                                   " replay_tried_at = now() WHERE id = $1::bigint", 3, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fprintf(stderr, "civibusctl: dead letter %s: %s", id, PQresultErrorMessage(r));
    PQclear(r);
}

static int s_replay(cv_ctl_fix_t *f, const char *reason, bool dry, bool progress)
{
    const char *v[3] = { f->source->name, reason, REPLAYABLE };
    /* binary results: the payload's bytes as they are */
    PGresult *r = cv_ctl_fix_select(f->pg, "dead-letters replay",
        "SELECT id::text, reason, payload FROM dead_letters"
        " WHERE source = $1 AND replayed_at IS NULL AND payload IS NOT NULL"
        "   AND reason = ANY ($3::text[]) AND ($2::text IS NULL OR reason = $2) ORDER BY id", 3, v, 1);
    if (!r)
        return 1;
    int n = PQntuples(r), rc = 0;
    s_letter_t *letters = calloc((size_t) n + 1, sizeof *letters);
    cv_store_item_t *items = calloc((size_t) n + 1, sizeof *items);
    json_t *dead = json_object();
    size_t m = 0;
    if (!letters || !items || !dead) {
        fprintf(stderr, "civibusctl: dead-letters replay: out of memory\n");
        n = 0;
        rc = 1;
    }
    long long in = 0, dup = 0, stayed = 0;
    char phase[160], extra[80];
    snprintf(phase, sizeof phase, "dead-letters replay %s: mapped", f->source->name);
    cv_ctl_progress_t pr;
    cv_ctl_progress_start(&pr, phase, n, progress);
    for (int i = 0; i < n; i++) {
        snprintf(extra, sizeof extra, "%lld still dead", stayed);
        cv_ctl_progress(&pr, i, extra, false);
        const char *raw = PQgetvalue(r, i, 2);
        size_t len = (size_t) PQgetlength(r, i, 2);
        json_error_t jerr;
        json_t *record = json_loadb(raw, len, 0, &jerr);
        char hash[65], why[48], detail[256];
        json_t *event = NULL;
        char id[24];
        snprintf(id, sizeof id, "%.*s", PQgetlength(r, i, 0), PQgetvalue(r, i, 0));
        if (!json_is_object(record)) {
            cv_ctl_fix_count(dead, "invalid_json");
            s_tried(f->pg, dry, id, "invalid_json", "payload is not a JSON object");
            stayed++;
            json_decref(record);
            continue;
        }
        cv_hash_json(record, hash);
        if (cv_mapping_apply_hashed(f->source->mapping, record, hash, &event, why, sizeof why,
                                    detail, sizeof detail) != 0) {
            cv_ctl_fix_count(dead, why);
            s_tried(f->pg, dry, id, why, detail);
            stayed++;
            json_decref(record);
            continue;
        }
        snprintf(letters[m].id, sizeof letters[m].id, "%s", id);
        cv_ctl_fix_item(&letters[m].item, f->source->name, event, record, raw, len, hash);
        m++;
    }
    snprintf(extra, sizeof extra, "%lld still dead", stayed);
    cv_ctl_progress(&pr, n, extra, true);
    if (!dry && m > 0) {
        for (size_t k = 0; k < m; k++)
            items[k] = letters[k].item;
        if (cv_ctl_fix_write(f, items, m) != 0)
            rc = 1;
        for (size_t k = 0; k < m && rc == 0; k++)
            letters[k].item = items[k];
    }
    snprintf(phase, sizeof phase, "dead-letters replay %s: %s", f->source->name, dry ? "probed" : "marked");
    cv_ctl_progress_start(&pr, phase, (long long) m, progress && m > 0);
    for (size_t k = 0; k < m && rc == 0; k++) {
        snprintf(extra, sizeof extra, "%lld stored, %lld duplicate(s)", in, dup);
        cv_ctl_progress(&pr, (long long) k, extra, false);
        cv_store_item_t *it = &letters[k].item;
        const char *what = !dry ? NULL : s_probe(f->pg, it);
        if (dry ? strcmp(what, "stored") == 0 : it->outcome == CV_OUT_STORED)
            in++;
        else if (dry ? strcmp(what, "duplicate") == 0 : it->outcome == CV_OUT_DUPLICATE)
            dup++;
        else {
            const char *why = dry ? what : it->outcome == CV_OUT_ID_REUSED ? "id_reused"
                              : it->reason[0] ? it->reason : "data_error";
            cv_ctl_fix_count(dead, why);
            s_tried(f->pg, dry, letters[k].id, why, it->detail);
            stayed++;
            continue;
        }
        if (!dry && s_mark(f->pg, &letters[k]) != 0)
            rc = 1;
    }
    snprintf(extra, sizeof extra, "%lld stored, %lld duplicate(s)", in, dup);
    if (m > 0)
        cv_ctl_progress(&pr, (long long) m, extra, true);
    if (rc == 0) {
        printf("dead-letters replay %s%s: %d dead letter(s) read, %lld stored, %lld duplicate(s)"
               " (already stored), %lld still dead\n", f->source->name,
               dry ? " (dry run: nothing changed; would be)" : "", n, in, dup, stayed);
        cv_ctl_fix_print_counts("still dead, by reason:", dead);
        json_t *counts = json_pack("{s:i, s:I, s:I, s:O}", "read", n, "stored", (json_int_t) in,
                                   "duplicates", (json_int_t) dup, "still_dead", dead);
        if (!dry)
            rc = cv_ctl_fix_audit(f, "dead-letters replay", "reason", reason, counts, in > 0);
        json_decref(counts);
    }
    for (size_t k = 0; k < m; k++) {
        json_decref(letters[k].item.event);
        json_decref(letters[k].item.record);
        cv_store_item_release(&letters[k].item);
    }
    free(letters);
    free(items);
    json_decref(dead);
    PQclear(r);
    return rc;
}

int cv_ctl_deadletters(const char *conninfo, int argc, char **argv)
{
    const char *source = NULL, *reason = NULL, *limit = NULL, *hub = NULL;
    bool dry = false, progress = false;
    if (argc < 1 || (strcmp(argv[0], "list") != 0 && strcmp(argv[0], "replay") != 0))
        return s_usage();
    bool list = strcmp(argv[0], "list") == 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0 && !list) dry = true;
        else if (strcmp(argv[i], "--progress") == 0 && !list) progress = true;
        else if (i + 1 >= argc) return s_usage();
        else if (strcmp(argv[i], "--source") == 0) source = argv[++i];
        else if (strcmp(argv[i], "--reason") == 0) reason = argv[++i];
        else if (strcmp(argv[i], "--hub-config") == 0) hub = argv[++i];
        else if (strcmp(argv[i], "--limit") == 0 && list) limit = argv[++i];
        else return s_usage();
    }
    if (!source)
        return s_usage();
    if (reason && !list && !s_replayable(reason)) {
        fprintf(stderr, "civibusctl: dead letters of reason '%s' are not replayed (their payload is not a"
                        " whole record, or the mapping did not refuse it); replayable: %s\n", reason, REPLAYABLE_LIST);
        return 2;
    }
    if (limit && (strspn(limit, "0123456789") != strlen(limit) || strlen(limit) > 6 || !*limit))
        return s_usage();
    cv_ctl_fix_t f;
    int rc;
    if (list && !hub) {
        PGconn *pg = PQconnectdb(conninfo ? conninfo : "");
        if (PQstatus(pg) != CONNECTION_OK) {
            fprintf(stderr, "civibusctl: connection failed: %s", PQerrorMessage(pg));
            rc = 1;
        }
        else
            rc = s_list(pg, source, reason, limit);
        PQfinish(pg);
        return rc;
    }
    rc = cv_ctl_fix_open(&f, hub, source, !list && !dry);
    if (rc == 0)
        rc = list ? s_list(f.pg, source, reason, limit) : s_replay(&f, reason, dry, progress);
    cv_ctl_fix_close(&f);
    return rc;
}
