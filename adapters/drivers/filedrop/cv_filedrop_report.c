/*  driver_filedrop_report — what became of a file's records (cv_filedrop.h,
    docs/drivers/filedrop.md "What is logged").

    The client calls the driver once per settlement (cv_client_on_settle);
    the driver adds it to the tally of the file whose spool ids hold it.
    When the file is settled, these functions tell its outcome, write the
    line logged, the sidecar kept beside the file and the source's
    counters in the Prometheus text format. Only counts and the hub's
    reason codes appear here — never a value read from a file. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cv_filedrop.h"
#include "cv_log.h"

#define COMP "filedrop"

/* ---- tallies ------------------------------------------------------------- */

/* The code with anything outside [A-Za-z0-9_.-] replaced by '_'. */
static void s_clean_code(const char *reason, char out[CV_FILEDROP_REASON_LEN])
{
    size_t i = 0;
    for (; reason && reason[i] && i < CV_FILEDROP_REASON_LEN - 1; i++) {
        char ch = reason[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_'
                  || ch == '.' || ch == '-';
        out[i] = ok ? ch : '_';
    }
    if (i == 0)
        out[i++] = '?';
    out[i] = '\0';
}

void cv_filedrop_tally_add(cv_filedrop_reason_t *reasons, size_t *n, size_t max, const char *reason, long count)
{
    char code[CV_FILEDROP_REASON_LEN];
    s_clean_code(reason, code);
    for (size_t pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < *n; i++)
            if (strcmp(reasons[i].code, code) == 0) {
                reasons[i].n += count;
                return;
            }
        if (*n + 1 < max || (*n < max && strcmp(code, "other") == 0)) {
            snprintf(reasons[*n].code, sizeof reasons[*n].code, "%s", code);
            reasons[(*n)++].n = count;
            return;
        }
        snprintf(code, sizeof code, "other");  /* the last slot is kept for "other" */
    }
}

void cv_filedrop_tally_settle(cv_filedrop_tally_t *t, bool acked, const char *reason)
{
    if (acked && reason && strcmp(reason, "id_reused") == 0)
        acked = false;                 /* settled, as a dead letter: not stored */
    else if (acked) {
        t->acked++;
        if (reason && strcmp(reason, "duplicate") == 0)
            t->duplicates++;
        else if (!reason || strcmp(reason, "stored") != 0)
            t->untold++;
        return;
    }
    t->dead++;
    cv_filedrop_tally_add(t->reasons, &t->nreasons, CV_FILEDROP_FILE_REASONS, reason, 1);
}

static int s_by_count(const void *a, const void *b)
{
    const cv_filedrop_reason_t *x = a, *y = b;
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return strcmp(x->code, y->code);
}

size_t cv_filedrop_tally_top(const cv_filedrop_reason_t *reasons, size_t n, cv_filedrop_reason_t *out, size_t max)
{
    cv_filedrop_reason_t all[CV_FILEDROP_SOURCE_REASONS];
    if (n > CV_FILEDROP_SOURCE_REASONS)
        n = CV_FILEDROP_SOURCE_REASONS;
    memcpy(all, reasons, n * sizeof *all);
    qsort(all, n, sizeof *all, s_by_count);
    if (n > max)
        n = max;
    memcpy(out, all, n * sizeof *out);
    return n;
}

/* ---- one settled file ---------------------------------------------------- */

long cv_filedrop_report_stored(const cv_filedrop_settled_t *f)
{
    return f->tally->acked - cv_filedrop_report_duplicates(f);
}

long cv_filedrop_report_duplicates(const cv_filedrop_settled_t *f)
{
    /* the hub says which; a CIVIBUS/1 hub does not, and then a copy of a
       file settled before is all duplicates, any other file none */
    return f->tally->duplicates + (f->copy ? f->tally->untold : 0);
}

long cv_filedrop_report_unknown(const cv_filedrop_settled_t *f)
{
    long n = f->total - f->refused - f->tally->acked - f->tally->dead;
    return n > 0 ? n : 0;
}

cv_filedrop_outcome_t cv_filedrop_report_outcome(const cv_filedrop_settled_t *f)
{
    long unknown = cv_filedrop_report_unknown(f);
    if (f->tally->dead == 0 && f->refused == 0 && unknown == 0)
        return CV_FILEDROP_OUT_DONE;
    if (f->tally->acked == 0 && unknown == 0)
        return CV_FILEDROP_OUT_DEAD;       /* every record dead or refused: none went in */
    return CV_FILEDROP_OUT_PARTLY;
}

/* Appends to out at *at (keeps it terminated, stops at the end). */
static void s_cat(char *out, size_t len, size_t *at, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void s_cat(char *out, size_t len, size_t *at, const char *fmt, ...)
{
    if (*at >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *at, len - *at, fmt, ap);
    va_end(ap);
    *at = n < 0 ? len : *at + (size_t) n;
}

void cv_filedrop_report_line(const cv_filedrop_settled_t *f, char *out, size_t len)
{
    size_t at = 0;
    out[0] = '\0';
    s_cat(out, len, &at, "%ld records: %ld stored, %ld duplicates, %ld dead-lettered", f->total,
          cv_filedrop_report_stored(f), cv_filedrop_report_duplicates(f), f->tally->dead);
    cv_filedrop_reason_t top[3];
    size_t n = cv_filedrop_tally_top(f->tally->reasons, f->tally->nreasons, top, 3);
    for (size_t i = 0; i < n; i++)
        s_cat(out, len, &at, "%s%s %ld", i ? ", " : " (", top[i].code, top[i].n);
    if (f->tally->nreasons > n)
        s_cat(out, len, &at, ", ...");
    if (n)
        s_cat(out, len, &at, ")");
    if (f->refused)
        s_cat(out, len, &at, ", %ld refused (larger than max_event_bytes)", f->refused);
    long unknown = cv_filedrop_report_unknown(f);
    if (unknown)
        s_cat(out, len, &at, ", %ld settled before a restart (not counted)", unknown);
}

void cv_filedrop_report_sidecar(const cv_filedrop_settled_t *f, const char *summary, char *out, size_t len)
{
    size_t at = 0;
    out[0] = '\0';
    s_cat(out, len, &at, "summary: %s\nrecords: %ld\nstored: %ld\nduplicates: %ld\ndead: %ld\nrefused: %ld\n"
          "unknown: %ld\n", summary, f->total, cv_filedrop_report_stored(f), cv_filedrop_report_duplicates(f),
          f->tally->dead, f->refused, cv_filedrop_report_unknown(f));
    cv_filedrop_reason_t all[CV_FILEDROP_FILE_REASONS];
    size_t n = cv_filedrop_tally_top(f->tally->reasons, f->tally->nreasons, all, CV_FILEDROP_FILE_REASONS);
    for (size_t i = 0; i < n; i++)
        s_cat(out, len, &at, "reason %s: %ld\n", all[i].code, all[i].n);
    if (at > 0 && at <= len && out[at - 1] == '\n')
        out[at - 1] = '\0';        /* the mover adds the last line end */
}

/* ---- the header hint ----------------------------------------------------- */

bool cv_filedrop_report_header_hint(const char *const *names, size_t n, char sep, char *out, size_t len)
{
    static const char seps[] = { ',', ';', '\t', '|' };
    if (!names || n != 1)
        return false;
    for (size_t i = 0; i < sizeof seps; i++) {
        if (seps[i] == sep || !strchr(names[0], seps[i]))
            continue;
        char shown[8] = "a tab", key[8] = "tab";
        if (seps[i] != '\t') {
            snprintf(shown, sizeof shown, "'%c'", seps[i]);
            snprintf(key, sizeof key, "'%c'", seps[i]);
        }
        snprintf(out, len, "the header reads as one column but contains %s; is `separator: %s` missing in the "
                 "adapter config?", shown, key);
        return true;
    }
    return false;
}

/* ---- the source's counters ----------------------------------------------- */

static const char *const s_file_outcomes[4] = { "done", "partly_dead", "dead", "unreadable" };

void cv_filedrop_metrics_add(cv_filedrop_metrics_t *m, const cv_filedrop_settled_t *f, cv_filedrop_outcome_t out)
{
    m->files[out]++;
    if (!f)
        return;
    m->stored += cv_filedrop_report_stored(f);
    m->duplicates += cv_filedrop_report_duplicates(f);
    m->dead += f->tally->dead;
    m->refused += f->refused;
    m->unknown += cv_filedrop_report_unknown(f);
    for (size_t i = 0; i < f->tally->nreasons; i++)
        cv_filedrop_tally_add(m->reasons, &m->nreasons, CV_FILEDROP_SOURCE_REASONS, f->tally->reasons[i].code,
                              f->tally->reasons[i].n);
}

char *cv_filedrop_metrics_text(const cv_filedrop_metrics_t *m, const char *source)
{
    size_t len = 4096 + (size_t) CV_FILEDROP_SOURCE_REASONS * 200, at = 0;
    char *out = malloc(len);
    if (!out)
        return NULL;
    out[0] = '\0';
    s_cat(out, len, &at, "# HELP civibus_filedrop_files_total Files the file-drop driver settled or refused, "
          "by outcome.\n# TYPE civibus_filedrop_files_total counter\n");
    for (int i = 0; i < 4; i++)
        s_cat(out, len, &at, "civibus_filedrop_files_total{source=\"%s\",outcome=\"%s\"} %ld\n", source,
              s_file_outcomes[i], m->files[i]);
    const char *names[5] = { "stored", "duplicate", "dead", "refused", "unknown" };
    long values[5] = { m->stored, m->duplicates, m->dead, m->refused, m->unknown };
    s_cat(out, len, &at, "# HELP civibus_filedrop_records_total Records of settled files, by what the hub "
          "answered.\n# TYPE civibus_filedrop_records_total counter\n");
    for (int i = 0; i < 5; i++)
        s_cat(out, len, &at, "civibus_filedrop_records_total{source=\"%s\",outcome=\"%s\"} %ld\n", source,
              names[i], values[i]);
    s_cat(out, len, &at, "# HELP civibus_filedrop_dead_records_total Dead-lettered records of settled files, "
          "by the hub's reason code.\n# TYPE civibus_filedrop_dead_records_total counter\n");
    for (size_t i = 0; i < m->nreasons; i++)
        s_cat(out, len, &at, "civibus_filedrop_dead_records_total{source=\"%s\",reason=\"%s\"} %ld\n", source,
              m->reasons[i].code, m->reasons[i].n);
    return out;
}

int cv_filedrop_metrics_write(const char *path, const char *text)
{
    char tmp[4096];
    if ((size_t) snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    bool ok = fputs(text, f) >= 0;
    if (fclose(f) != 0 || !ok || rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

void cv_filedrop_metrics_save(const cv_filedrop_conf_t *conf, const cv_filedrop_metrics_t *m, const char *source)
{
    if (!conf->metrics_file)
        return;
    char *text = cv_filedrop_metrics_text(m, source);
    if (!text || cv_filedrop_metrics_write(conf->metrics_file, text) < 0)
        cv_warn(COMP, "source %s: cannot write the metrics file %s", source, conf->metrics_file);
    free(text);
}

/* ---- copies: files settled before ---------------------------------------- */

void cv_filedrop_history_add(cv_filedrop_history_t *h, const char *sha, const char *name)
{
    size_t i = h->n++ % CV_FILEDROP_HISTORY;
    free(h->files[i].name);
    h->files[i].name = strdup(name);
    snprintf(h->files[i].sha, sizeof h->files[i].sha, "%s", h->files[i].name ? sha : "");
}

const char *cv_filedrop_history_find(const cv_filedrop_history_t *h, const char *sha, const char *name)
{
    size_t n = h->n < CV_FILEDROP_HISTORY ? h->n : CV_FILEDROP_HISTORY;
    for (size_t i = 0; i < n; i++)
        if (h->files[i].name && strcmp(h->files[i].sha, sha) == 0 && (!name || strcmp(h->files[i].name, name) == 0))
            return h->files[i].name;
    return NULL;
}

void cv_filedrop_history_free(cv_filedrop_history_t *h)
{
    for (size_t i = 0; i < CV_FILEDROP_HISTORY; i++)
        free(h->files[i].name);
    memset(h, 0, sizeof *h);
}

/* ---- the settled file ---------------------------------------------------- */

int cv_filedrop_report_settle(const cv_filedrop_conf_t *conf, const char *source, const cv_filedrop_entry_t *e,
                              const char *copy_of, cv_filedrop_metrics_t *m)
{
    cv_filedrop_settled_t f = { e->total, e->refused, copy_of != NULL, &e->tally };
    cv_filedrop_outcome_t out = cv_filedrop_report_outcome(&f);
    char line[600], summary[900], sidecar[2048], moved[512], err[512];
    size_t at = 0;
    cv_filedrop_report_line(&f, line, sizeof line);
    s_cat(summary, sizeof summary, &at, "%s%s", out == CV_FILEDROP_OUT_DEAD ? "every record was dead-lettered "
          "by the hub: " : "", line);
    if (copy_of)
        s_cat(summary, sizeof summary, &at, "; the same content as %s, settled before", copy_of);
    if (e->refused)
        s_cat(summary, sizeof summary, &at, "; the first record refused at line %ld", e->refused_line);
    cv_filedrop_report_sidecar(&f, summary, sidecar, sizeof sidecar);
    bool ok = out != CV_FILEDROP_OUT_DEAD;
    if (cv_filedrop_inbox_move(conf, e->name, ok, out == CV_FILEDROP_OUT_DONE ? NULL : sidecar, moved, sizeof moved,
                               err, sizeof err) < 0) {
        cv_error(COMP, "source %s: %s", source, err);
        return -1;
    }
    const char *dir = ok ? conf->done_dir : conf->error_dir;
    if (out == CV_FILEDROP_OUT_DONE)
        cv_info(COMP, "file %s: %s; moved to %s/%s", e->name, summary, dir, moved);
    else
        cv_warn(COMP, "file %s: %s%s; moved to %s/%s (with %s.reason)", e->name,
                out == CV_FILEDROP_OUT_DEAD ? "" : "some records did not go in: ", summary, dir, moved, moved);
    cv_filedrop_metrics_add(m, &f, out);
    cv_filedrop_metrics_save(conf, m, source);
    return 0;
}
