/*  trymap — `civibus-hub --try-mapping SOURCE FILE` (cv_trymap.h).

    Design: the hub's own mapping (cv_mapping_apply_hashed, the call the
    ingest makes, with the same record hash) runs on every record that
    cv_trymap_read.c gets from the file the way the adapter would; this
    file only counts and reports. Nothing reaches the store: the hub's
    main calls cv_trymap_run before any PostgreSQL connection, socket or
    log of a record. What the mapping cannot tell is said in the docs:
    the store's own dead letters (an event id reused with other content)
    are predicted from the file alone (ids seen twice in it), not from
    what is already stored.

    The report (docs/mapping.md, "Trying a mapping"): the reading settings,
    the header hint or the problem that stops the file, counts of records,
    mapped and dead; counts by category, channel, status and outcome; how
    many events have requested_at, a location and lat/lon; the first 3
    events, pretty-printed (the file's values: personal data, on out
    only); each distinct dead-letter reason with its count and the first
    record's number, line and detail (never a value). */
#include "cv_trymap.h"

#include <stdlib.h>
#include <string.h>

#include "cv_hash.h"
#include "cv_trymap_int.h"

#define SHOWN 3                    /* events printed */

typedef struct {
    char *key;
    long n;
    long line, index;              /* reasons: the first record's */
    char *detail;
} count_t;

typedef struct {
    count_t *v;
    size_t n;
} counts_t;

typedef struct {
    const cv_mapping_t *mapping;
    long records, mapped, dead;
    counts_t category, channel, status, outcome, reasons;
    long requested, located, latlon;
    json_t *shown[SHOWN];
    long shown_line[SHOWN], shown_index[SHOWN];
    size_t nshown;
    json_t *ids;                   /* event_id -> record hash */
    long repeated, reused;
    bool oom;
} trymap_t;

static count_t *s_count(trymap_t *self, counts_t *c, const char *key)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i].key, key) == 0) {
            c->v[i].n++;
            return &c->v[i];
        }
    count_t *v = realloc(c->v, (c->n + 1) * sizeof *v);
    char *k = strdup(key);
    if (!v || !k) {
        if (v)
            c->v = v;
        free(k);
        self->oom = true;
        return NULL;
    }
    c->v = v;
    c->v[c->n] = (count_t) { .key = k, .n = 1 };
    return &c->v[c->n++];
}

static void s_counts_free(counts_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].key);
        free(c->v[i].detail);
    }
    free(c->v);
}

static const char *s_str(const json_t *obj, const char *key, const char *none)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : none;
}

static void s_dead(trymap_t *self, long line, long index, const char *reason, const char *detail)
{
    self->dead++;
    count_t *c = s_count(self, &self->reasons, reason);
    if (c && c->n == 1) {
        c->line = line;
        c->index = index;
        c->detail = strdup(detail);
    }
}

/* An event id met before in the file: the store keeps one (the same
   content) or dead-letters the second as id_reused (another content). */
static void s_ids(trymap_t *self, const json_t *event, const char *hash)
{
    const char *id = s_str(event, "event_id", NULL);
    if (!id || !self->ids)
        return;
    const char *seen = json_string_value(json_object_get(self->ids, id));
    if (!seen)
        json_object_set_new(self->ids, id, json_string(hash));
    else if (strcmp(seen, hash) == 0)
        self->repeated++;
    else
        self->reused++;
}

static void s_mapped(trymap_t *self, json_t *event, long line, long index)
{
    self->mapped++;
    s_count(self, &self->category, s_str(event, "category", "(null)"));
    s_count(self, &self->channel, s_str(event, "channel", "(null)"));
    s_count(self, &self->status, s_str(event, "status", "(null)"));
    s_count(self, &self->outcome, s_str(json_object_get(event, "outcome"), "code", "(none)"));
    if (json_is_string(json_object_get(event, "requested_at")))
        self->requested++;
    const json_t *loc = json_object_get(event, "location");
    if (json_is_object(loc)) {
        self->located++;
        if (json_is_number(json_object_get(loc, "lat")) && json_is_number(json_object_get(loc, "lon")))
            self->latlon++;
    }
    if (self->nshown < SHOWN) {
        self->shown_line[self->nshown] = line;
        self->shown_index[self->nshown] = index;
        self->shown[self->nshown++] = event;
    } else
        json_decref(event);
}

static void s_record(void *arg, json_t *record, long line, long index, const char *reason, const char *detail)
{
    trymap_t *self = arg;
    self->records++;
    if (!record) {
        s_dead(self, line, index, reason, detail);
        return;
    }
    char hash[CV_HASH_HEX_LEN + 1], why[48], text[256];
    json_t *event = NULL;
    if (cv_hash_json(record, hash) < 0) {
        self->oom = true;
        json_decref(record);
        return;
    }
    if (cv_mapping_apply_hashed(self->mapping, record, hash, &event, why, sizeof why, text, sizeof text) != 0)
        s_dead(self, line, index, why, text);
    else {
        s_ids(self, event, hash);
        s_mapped(self, event, line, index);
    }
    json_decref(record);
}

/* ---- the report ---------------------------------------------------------- */

static int s_by_count(const void *a, const void *b)
{
    const count_t *x = a, *y = b;
    return x->n != y->n ? (x->n < y->n ? 1 : -1) : strcmp(x->key, y->key);
}

static void s_print_counts(FILE *out, const char *title, counts_t *c)
{
    qsort(c->v, c->n, sizeof *c->v, s_by_count);
    fprintf(out, "by %s:\n", title);
    for (size_t i = 0; i < c->n; i++)
        fprintf(out, "  %-24s %ld\n", c->v[i].key, c->v[i].n);
}

static void s_where(FILE *out, long index, long line)
{
    fprintf(out, "record %ld (line %ld)", index, line);
}

static void s_report(trymap_t *self, const char *file, const cv_trymap_read_t *rd, FILE *out)
{
    fprintf(out, "%s, read as %s\n", file, rd->settings);
    fprintf(out, "nothing is stored; the events below show values from the file (personal data): keep this "
                 "output on this machine\n\n");
    if (rd->hint[0]) {             /* the driver's hint, as an instruction */
        const char *q = strstr(rd->hint, "; is `");
        if (q && rd->separator[0])
            fprintf(out, "line 1: %.*s; add `separator: %s` to the source's driver settings (the csv section of "
                         "the adapter config's driver)\n", (int) (q - rd->hint), rd->hint, rd->separator);
        else
            fprintf(out, "line 1: %s\n", rd->hint);
        fprintf(out, "  the file-drop driver would move this file to error/ and submit none of its records\n\n");
    }
    if (rd->problem[0])
        fprintf(out, "the file cannot be read: %s\n  the file-drop driver would move it to error/ and submit "
                     "none of its records; the counts below are of the records before the problem\n\n",
                rd->problem);
    fprintf(out, "records: %ld\nmapped:  %ld\ndead:    %ld\n\n", self->records, self->mapped, self->dead);
    if (self->mapped > 0) {
        s_print_counts(out, "category", &self->category);
        s_print_counts(out, "channel", &self->channel);
        s_print_counts(out, "status", &self->status);
        s_print_counts(out, "outcome", &self->outcome);
        fprintf(out, "requested_at: %ld of %ld events\n", self->requested, self->mapped);
        fprintf(out, "location: %ld of %ld events (with lat/lon: %ld)\n", self->located, self->mapped,
                self->latlon);
        if (self->repeated || self->reused)
            fprintf(out, "event ids seen twice in the file: %ld with the same content (stored once), %ld with "
                         "another content (the store would dead-letter them as id_reused)\n",
                    self->repeated, self->reused);
        fprintf(out, "\nfirst %zu event%s:\n", self->nshown, self->nshown == 1 ? "" : "s");
        for (size_t i = 0; i < self->nshown; i++) {
            char *text = json_dumps(self->shown[i], JSON_INDENT(2));
            s_where(out, self->shown_index[i], self->shown_line[i]);
            fprintf(out, ":\n%s\n", text ? text : "(out of memory)");
            free(text);
        }
    }
    if (self->reasons.n > 0) {
        qsort(self->reasons.v, self->reasons.n, sizeof *self->reasons.v, s_by_count);
        fprintf(out, "\ndead-letter reasons:\n");
        for (size_t i = 0; i < self->reasons.n; i++) {
            const count_t *c = &self->reasons.v[i];
            fprintf(out, "  %s: %ld record%s, e.g. ", c->key, c->n, c->n == 1 ? "" : "s");
            s_where(out, c->index, c->line);
            fprintf(out, ": %s\n", c->detail ? c->detail : "");
        }
    }
}

int cv_trymap_run(const cv_hub_config_t *config, const char *source, const char *file,
                  const char *adapter_config, FILE *out, FILE *err)
{
    const cv_source_conf_t *src = NULL;
    for (size_t i = 0; i < config->nsources && !src; i++)
        if (strcmp(config->sources[i].name, source) == 0)
            src = &config->sources[i];
    if (!src) {
        fprintf(err, "%s: no source '%s' under 'sources' (--try-mapping SOURCE FILE)\n", config->file, source);
        return CV_TRYMAP_USAGE;
    }
    trymap_t self = { .mapping = src->mapping, .ids = json_object() };
    cv_trymap_input_t in = { file, adapter_config, source, config->max_event_bytes };
    cv_trymap_read_t rd;
    char why[1024] = "";
    int rc = cv_trymap__read(&in, s_record, &self, &rd, why, sizeof why);
    if (rc < 0)
        fprintf(err, "%s\n", why);
    else if (self.oom) {
        fprintf(err, "%s: out of memory\n", file);
        rc = -1;
    } else
        s_report(&self, file, &rd, out);
    for (size_t i = 0; i < self.nshown; i++)
        json_decref(self.shown[i]);
    json_decref(self.ids);
    counts_t *all[] = { &self.category, &self.channel, &self.status, &self.outcome, &self.reasons };
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        s_counts_free(all[i]);
    if (rc < 0)
        return CV_TRYMAP_USAGE;
    return self.dead || rd.problem[0] || rd.hint[0] ? CV_TRYMAP_SOME_DEAD : CV_TRYMAP_ALL_MAPPED;
}
