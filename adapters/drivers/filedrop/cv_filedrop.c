/*  driver_filedrop — `kind: filedrop`: reads the export files a software
    drops into a folder (docs/drivers/filedrop.md; the parts are listed in
    cv_filedrop.h).

    One file at a time goes through three phases, each step doing a
    bounded amount of work:
      PROBE   (CSV with `encoding: auto` only) is the whole file UTF-8?
      CHECK   parse the whole file, hash it, count its records, check each
              fits max_event_bytes; nothing is submitted yet, so a file
              that cannot be read (truncated, wrong column count, bad
              encoding, malformed XML) moves to error/ with a <name>.reason
              and none of its records reaches the hub;
      SUBMIT  parse it again and submit record after record while the
              client accepts, then record the position.
    A file whose records are all submitted waits in the position list
    until the hub has settled (ACKed or NACKed) every spool id from its
    first to its last record; then it moves to done/, or to error/ when
    every record was dead-lettered, with one line in the log telling how
    many records went in and why the others did not (cv_filedrop_report.c).

    The position (cv_filedrop_position.c) names each file started and
    not yet moved, with a hash of its content and how many records were
    submitted: it is set after the records it covers were submitted, so
    the client's next sync makes both durable together. A restarted driver
    finishes waiting for the files already submitted and resumes the file
    it was reading at the record after the last one submitted. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cv_filedrop.h"
#include "cv_filedrop_csv.h"
#include "cv_filedrop_xml.h"
#include "cv_log.h"
#include "runtime/cv_driver.h"
#include "spool/cv_spool.h"

#define COMP "filedrop"
#define CHECK_BYTES (1 << 20)      /* bytes read per step while probing or checking */
#define SUBMIT_CHUNK 16384         /* bytes read at a time while submitting */
#define READ_BUF 65536

typedef enum { PH_IDLE, PH_PROBE, PH_CHECK, PH_SUBMIT } phase_t;

typedef struct {
    cv_filedrop_conf_t conf;
    cv_client_t *client;
    char *source;
    cv_filedrop_entry_t *files;             /* the position: files started and not moved yet */
    size_t nfiles;
    bool dirty;                    /* files changed since the last set_position */
    int64_t next_scan;             /* monotonic ms of the next look at the inbox */
    bool inbox_warned;
    cv_filedrop_metrics_t metrics; /* the source's counters since the start */
    cv_filedrop_history_t history; /* files settled in this run, to tell a copy */
    /* the file being read */
    phase_t phase;
    char *name;
    cv_filedrop_format_t format;
    int fd;
    cv_filedrop_encoding_t encoding;        /* CSV */
    bool utf8;                     /* PROBE: valid UTF-8 so far */
    unsigned char carry[4];        /* PROBE: an incomplete UTF-8 sequence */
    size_t ncarry;
    crypto_hash_sha256_state sha;  /* CHECK */
    cv_filedrop_csv_t *csv;
    cv_filedrop_xml_t *xml;
    cv_filedrop_entry_t *entry;             /* SUBMIT: its position entry (valid during a step) */
    long skip;                     /* SUBMIT: records an earlier run submitted */
    long step_records;             /* SUBMIT: records submitted in this step */
    bool fatal;
    char problem[512];             /* why the file cannot be read, "line N: ..." */
    char buf[READ_BUF];
} filedrop_t;

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- position entries ---------------------------------------------------- */

static cv_filedrop_entry_t *s_find(filedrop_t *self, const char *name)
{
    for (size_t i = 0; i < self->nfiles; i++)
        if (strcmp(self->files[i].name, name) == 0)
            return &self->files[i];
    return NULL;
}

static void s_forget(filedrop_t *self, cv_filedrop_entry_t *e)
{
    size_t i = (size_t) (e - self->files);
    free(e->name);
    memmove(e, e + 1, (self->nfiles - i - 1) * sizeof *e);
    self->nfiles--;
    self->dirty = true;
}

static cv_filedrop_entry_t *s_add_entry(filedrop_t *self, const char *name, const char *sha)
{
    cv_filedrop_entry_t *files = realloc(self->files, (self->nfiles + 1) * sizeof *files);
    if (!files)
        return NULL;
    self->files = files;
    cv_filedrop_entry_t *e = &files[self->nfiles];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name)))
        return NULL;
    memcpy(e->sha, sha, CV_FILEDROP_SHA_HEX + 1);
    e->total = -1;
    self->nfiles++;
    self->dirty = true;
    return e;
}

static int s_save_position(filedrop_t *self)
{
    if (!self->dirty)
        return 0;
    char *text = cv_filedrop_position_encode(self->files, self->nfiles);
    int rc = text ? cv_client_set_position(self->client, text) : -1;
    free(text);
    if (rc < 0) {
        cv_error(COMP, "source %s: cannot save the position (%zu files listed)", self->source, self->nfiles);
        return -1;
    }
    self->dirty = false;
    return 0;
}

/* Whether one more file fits in the position's 4 KiB. */
static bool s_room_for(filedrop_t *self, const char *name)
{
    char *text = cv_filedrop_position_encode(self->files, self->nfiles);
    size_t need = text ? strlen(text) + strlen(name) * 2 + 160 : SIZE_MAX;
    free(text);
    return need < CV_SPOOL_POSITION_MAX;
}

/* ---- the file being read ------------------------------------------------- */

static void s_close(filedrop_t *self)
{
    if (self->fd >= 0)
        close(self->fd);
    self->fd = -1;
    cv_filedrop_csv_destroy(&self->csv);
    cv_filedrop_xml_destroy(&self->xml);
    free(self->name);
    self->name = NULL;
    self->entry = NULL;
    self->phase = PH_IDLE;
    self->next_scan = 0;           /* look for the next file at once */
}

/* Adds the origin field to a record (when configured). */
static int s_origin(filedrop_t *self, json_t *rec, long line, long index)
{
    return cv_filedrop_origin_add(&self->conf, self->name, self->format, rec, line, index);
}

/* Whether the CSV header looks read with the wrong separator; the hint
   goes to self->problem. */
static bool s_header_hint(filedrop_t *self)
{
    size_t n = 0;
    const char *const *names = self->csv ? cv_filedrop_csv_header(self->csv, &n) : NULL;
    char hint[300];
    if (!cv_filedrop_report_header_hint(names, n, self->conf.csv_separator, hint, sizeof hint))
        return false;
    snprintf(self->problem, sizeof self->problem, "line 1: %s (nothing was submitted)", hint);
    return true;
}

/* CHECK: each record must fit the event size limit once in JSON. */
static int s_emit_check(void *arg, json_t *rec, long line, long index)
{
    filedrop_t *self = arg;
    if (index == 1 && s_header_hint(self)) {
        json_decref(rec);
        return -1;
    }
    size_t size = s_origin(self, rec, line, index) == 0 ? json_dumpb(rec, NULL, 0, JSON_COMPACT) : 0;
    json_decref(rec);
    uint32_t max = cv_client_max_event_bytes(self->client);
    if (size == 0)
        snprintf(self->problem, sizeof self->problem, "line %ld: out of memory", line);
    else if (size > max)
        snprintf(self->problem, sizeof self->problem, "line %ld: record %ld is %zu bytes once in JSON, over "
                 "the limit of %u bytes (limits.max_event_bytes, or the hub's)", line, index, size, max);
    return size == 0 || size > max ? -1 : 0;
}

/* SUBMIT: skips what an earlier run submitted, submits the rest. */
static int s_emit_submit(void *arg, json_t *rec, long line, long index)
{
    filedrop_t *self = arg;
    cv_filedrop_entry_t *e = self->entry;
    if (index <= self->skip) {
        json_decref(rec);
        return 0;
    }
    char *text = s_origin(self, rec, line, index) == 0 ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    if (!text) {
        cv_error(COMP, "file %s line %ld: out of memory", self->name, line);
        self->fatal = true;
        return -1;
    }
    int rc = cv_client_submit(self->client, text, strlen(text));
    free(text);
    if (rc < 0) {
        cv_error(COMP, "file %s line %ld: the spool refused the record (%s)", self->name, line,
                 cv_client_error_text(cv_client_error(self->client)));
        self->fatal = true;
        return -1;
    }
    if (rc == 1) {                 /* the hub lowered its limit since CHECK */
        cv_warn(COMP, "file %s line %ld: record refused, larger than max_event_bytes", self->name, line);
        if (e->refused++ == 0)
            e->refused_line = line;
    } else {
        uint64_t id = cv_client_last_id(self->client);
        if (e->first == 0)
            e->first = e->checked = id;
        e->last = id;
    }
    e->done = index;
    self->step_records++;
    self->dirty = true;
    return 0;
}

static int s_parser_new(filedrop_t *self, cv_filedrop_emit_fn emit)
{
    const cv_filedrop_conf_t *c = &self->conf;
    cv_filedrop_csv_destroy(&self->csv);
    cv_filedrop_xml_destroy(&self->xml);
    if (self->format == CV_FILEDROP_FMT_CSV) {
        cv_filedrop_csv_opts_t o = { c->csv_separator, c->csv_quote, c->csv_header, (const char *const *) c->csv_columns.v,
                            c->csv_columns.n, self->encoding, c->values, c->max_record_bytes };
        self->csv = cv_filedrop_csv_new(&o, emit, self);
    } else {
        cv_filedrop_xml_opts_t o = { c->xml_record, c->xml_encoding, c->xml_attribute_prefix, c->xml_text_key,
                            c->values, c->max_record_bytes };
        self->xml = cv_filedrop_xml_new(&o, emit, self);
    }
    if (self->csv || self->xml)
        return 0;
    cv_error(COMP, "file %s: out of memory", self->name);
    self->fatal = true;
    return -1;
}

/* Feeds n bytes (n == 0: the end of the file). -1 with self->problem. */
static int s_parse(filedrop_t *self, const char *data, size_t n)
{
    int rc = self->csv ? (n ? cv_filedrop_csv_feed(self->csv, data, n) : cv_filedrop_csv_end(self->csv))
                       : (n ? cv_filedrop_xml_feed(self->xml, data, n) : cv_filedrop_xml_end(self->xml));
    if (rc < 0) {
        const char *why = self->csv ? cv_filedrop_csv_error(self->csv) : cv_filedrop_xml_error(self->xml);
        if (why[0])                /* else the emit function wrote the problem */
            snprintf(self->problem, sizeof self->problem, "%s", why);
    }
    return rc;
}

static long s_records(const filedrop_t *self)
{
    return self->csv ? cv_filedrop_csv_records(self->csv) : cv_filedrop_xml_records(self->xml);
}

/* ---- reports ------------------------------------------------------------- */

/* The client's settlements: counted for the file whose records they are. */
static void s_on_settle(void *arg, uint64_t id, bool acked, const char *reason)
{
    filedrop_t *self = arg;
    for (size_t i = 0; i < self->nfiles; i++)
        if (self->files[i].first && id >= self->files[i].first && id <= self->files[i].last) {
            cv_filedrop_tally_settle(&self->files[i].tally, acked, reason);
            return;
        }
}

/* The settled file of this run that e is a copy of, or NULL. */
static const char *s_copy_of(const filedrop_t *self, const cv_filedrop_entry_t *e)
{
    bool named = self->conf.origin_key && (self->conf.origin_fields & CV_FILEDROP_ORIGIN_FILE);
    return cv_filedrop_history_find(&self->history, e->sha, named ? e->name : NULL);
}

/* Moves the file being read to error/ with the problem as its reason. */
static int s_reject(filedrop_t *self)
{
    char reason[800], moved[512], err[512];
    cv_filedrop_entry_t *e = s_find(self, self->name);
    bool some = e && e->first != 0;
    snprintf(reason, sizeof reason, "%s%s", self->problem,
             some ? " (the records before it were submitted to the hub)" : "");
    if (e)
        s_forget(self, e);
    if (cv_filedrop_inbox_move(&self->conf, self->name, false, reason, moved, sizeof moved, err, sizeof err) < 0) {
        cv_error(COMP, "source %s: %s", self->source, err);
        return -1;
    }
    cv_warn(COMP, "file %s moved to %s/%s: %s", self->name, self->conf.error_dir, moved, reason);
    cv_filedrop_metrics_add(&self->metrics, NULL, CV_FILEDROP_OUT_UNREADABLE);
    cv_filedrop_metrics_save(&self->conf, &self->metrics, self->source);
    s_close(self);
    return 0;
}

/* Reads up to len bytes; -1 with the problem set. */
static ssize_t s_read(filedrop_t *self, size_t len)
{
    ssize_t n = read(self->fd, self->buf, len);
    if (n < 0)
        snprintf(self->problem, sizeof self->problem, "cannot read the file: %s", strerror(errno));
    return n;
}

static int s_rewind(filedrop_t *self)
{
    if (lseek(self->fd, 0, SEEK_SET) == 0)
        return 0;
    snprintf(self->problem, sizeof self->problem, "cannot read the file again: %s", strerror(errno));
    return -1;
}

static int s_start_check(filedrop_t *self)
{
    crypto_hash_sha256_init(&self->sha);
    self->phase = PH_CHECK;
    return s_parser_new(self, s_emit_check);
}

/* Opens the next file, or a file to resume. Returns 0 (maybe none), -1 fatal. */
static int s_open(filedrop_t *self, const char *name)
{
    char path[4096];
    self->name = strdup(name);
    self->format = cv_filedrop_inbox_format(&self->conf, name);
    self->problem[0] = '\0';
    if (!self->name)
        return -1;
    if (self->format == CV_FILEDROP_FMT_NONE) {
        snprintf(self->problem, sizeof self->problem, "the file name matches neither csv.match nor xml.match "
                 "(add it to 'ignore' if it is not an export)");
        return s_reject(self);
    }
    snprintf(path, sizeof path, "%s/%s", self->conf.inbox, name);
    self->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (self->fd < 0 && errno == ENOENT) {     /* gone meanwhile */
        s_close(self);
        return 0;
    }
    if (self->fd < 0) {
        snprintf(self->problem, sizeof self->problem, "cannot open the file: %s", strerror(errno));
        return s_reject(self);
    }
    self->encoding = self->conf.csv_encoding;
    if (self->format == CV_FILEDROP_FMT_CSV && self->encoding == CV_FILEDROP_ENC_AUTO) {
        self->phase = PH_PROBE;
        self->utf8 = true;
        self->ncarry = 0;
        return 0;
    }
    return s_start_check(self);
}

/* ---- phases -------------------------------------------------------------- */

/* Validates UTF-8 across chunk boundaries (carry holds a cut sequence). */
static void s_probe_bytes(filedrop_t *self, const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (self->utf8 && self->ncarry > 0 && i < n) {
        self->carry[self->ncarry++] = p[i++];
        int len = cv_filedrop_text_utf8_seq(self->carry, self->ncarry);
        if (len < 0 || (len == 0 && self->ncarry == 4))
            self->utf8 = false;
        else if (len > 0)
            self->ncarry = 0;
    }
    while (self->utf8 && i < n) {
        int len = p[i] ? cv_filedrop_text_utf8_seq(p + i, n - i) : -1;
        if (len < 0)
            self->utf8 = false;
        else if (len == 0) {
            memcpy(self->carry, p + i, n - i);
            self->ncarry = n - i;
            break;
        } else
            i += (size_t) len;
    }
}

static int s_step_probe(filedrop_t *self)
{
    for (size_t total = 0; total < CHECK_BYTES; ) {
        ssize_t n = s_read(self, sizeof self->buf);
        if (n < 0)
            return s_reject(self);
        if (n == 0) {
            if (self->ncarry)
                self->utf8 = false;
            self->encoding = self->utf8 ? CV_FILEDROP_ENC_UTF8 : CV_FILEDROP_ENC_CP1252;
            if (s_rewind(self) < 0)
                return s_reject(self);
            return s_start_check(self);
        }
        s_probe_bytes(self, (const unsigned char *) self->buf, (size_t) n);
        total += (size_t) n;
    }
    return 0;
}

/* The whole file parsed: compare with what a previous run recorded, then
   read it again to submit. */
static int s_check_done(filedrop_t *self)
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    char sha[CV_FILEDROP_SHA_HEX + 1];
    crypto_hash_sha256_final(&self->sha, digest);
    for (int i = 0; i < CV_FILEDROP_SHA_HEX / 2; i++)
        snprintf(sha + 2 * i, 3, "%02x", digest[i]);
    long total = s_records(self);
    if (total == 0 && s_header_hint(self))      /* a header alone, read with the wrong separator */
        return s_reject(self);
    cv_filedrop_entry_t *e = s_find(self, self->name);
    if (e && strcmp(e->sha, sha) != 0) {
        cv_warn(COMP, "file %s changed since an earlier run read it: reading it from the start", self->name);
        s_forget(self, e);
        e = NULL;
    }
    if (!e && !(e = s_add_entry(self, self->name, sha))) {
        cv_error(COMP, "file %s: out of memory", self->name);
        return -1;
    }
    e->copy = s_copy_of(self, e) != NULL;       /* the hub's ACKs will be duplicates */
    self->skip = e->done;
    e->total = total;
    self->dirty = true;
    if (self->skip > 0)
        cv_info(COMP, "file %s: resuming at record %ld of %ld", self->name, self->skip + 1, total);
    else
        cv_info(COMP, "file %s: %ld records (%s), submitting", self->name, total,
                self->format == CV_FILEDROP_FMT_XML ? "xml" : cv_filedrop_text_encoding_name(self->encoding));
    if (s_rewind(self) < 0)
        return s_reject(self);
    self->phase = PH_SUBMIT;
    return s_parser_new(self, s_emit_submit);
}

static int s_step_check(filedrop_t *self)
{
    for (size_t total = 0; total < CHECK_BYTES; ) {
        ssize_t n = s_read(self, sizeof self->buf);
        if (n < 0)
            return s_reject(self);
        if (n > 0)
            crypto_hash_sha256_update(&self->sha, (const unsigned char *) self->buf, (unsigned long long) n);
        if (s_parse(self, self->buf, (size_t) n) < 0) {
            char why[sizeof self->problem];
            snprintf(why, sizeof why, "%s", self->problem);
            if (!self->fatal && strncmp(why, "line 1: the header reads", 24) != 0 && s_header_hint(self))
                snprintf(self->problem + strlen(self->problem), sizeof self->problem - strlen(self->problem),
                         "; then %.200s", why);
            return self->fatal ? -1 : s_reject(self);
        }
        if (n == 0)
            return s_check_done(self);
        total += (size_t) n;
    }
    return 0;
}

/* Submits records while the client accepts them, at most `batch` a step. */
static int s_step_submit(filedrop_t *self)
{
    self->entry = s_find(self, self->name);
    self->step_records = 0;
    while (cv_client_can_accept(self->client) && self->step_records < self->conf.batch) {
        ssize_t n = s_read(self, SUBMIT_CHUNK);
        if (n < 0)
            return s_reject(self);
        if (s_parse(self, self->buf, (size_t) n) < 0) {
            if (self->fatal)
                return -1;
            char why[sizeof self->problem];
            snprintf(why, sizeof why, "%s", self->problem);
            snprintf(self->problem, sizeof self->problem, "the file changed while it was read: %.400s", why);
            return s_reject(self);
        }
        if (n == 0) {
            cv_filedrop_entry_t *e = self->entry;
            if (e->done != e->total) {
                cv_warn(COMP, "file %s changed while it was read: %ld records instead of %ld", self->name,
                        e->done, e->total);
                e->total = e->done;
            }
            cv_info(COMP, "file %s: %ld records submitted, waiting for the hub to settle them", self->name,
                    e->total);
            s_close(self);
            break;
        }
    }
    self->entry = NULL;
    return 0;
}

static bool s_in_inbox(const filedrop_t *self, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", self->conf.inbox, name);
    return access(path, F_OK) == 0;
}

/* Moves every fully submitted file whose records are all settled to done/
   (or error/). */
static int s_settle(filedrop_t *self)
{
    for (size_t i = self->nfiles; i-- > 0; ) {
        cv_filedrop_entry_t *e = &self->files[i];
        if ((self->name && strcmp(e->name, self->name) == 0) || e->total < 0 || e->done < e->total)
            continue;
        while (e->first && e->checked <= e->last && cv_client_is_settled(self->client, e->checked))
            e->checked++;
        if (e->first && e->checked <= e->last)
            continue;
        if (!s_in_inbox(self, e->name))
            cv_warn(COMP, "file %s left the inbox before it could be moved", e->name);
        else if (cv_filedrop_report_settle(&self->conf, self->source, e, e->copy ? s_copy_of(self, e) : NULL,
                                           &self->metrics) < 0)
            return -1;
        else
            cv_filedrop_history_add(&self->history, e->sha, e->name);
        s_forget(self, e);
    }
    return 0;
}

static bool s_listed(void *arg, const char *name)
{
    return s_find(arg, name) != NULL;
}

/* Picks what to read next: a file an earlier run did not finish, else the
   next file of the inbox. */
static int s_pick(filedrop_t *self)
{
    for (size_t i = 0; i < self->nfiles; i++)
        if (self->files[i].total < 0 || self->files[i].done < self->files[i].total)
            return s_open(self, self->files[i].name);
    char *name = NULL;
    int rc = cv_filedrop_inbox_next(&self->conf, s_listed, self, &name);
    if (rc < 0) {
        if (!self->inbox_warned)
            cv_warn(COMP, "source %s: cannot read the inbox %s: %s (trying again every %d ms)", self->source,
                    self->conf.inbox, strerror(errno), self->conf.poll_ms);
        self->inbox_warned = true;
        return 0;
    }
    self->inbox_warned = false;
    if (rc == 0)
        return 0;
    if (!s_room_for(self, name)) {
        free(name);                /* too many files wait for the hub: later */
        return 0;
    }
    rc = s_open(self, name);
    free(name);
    return rc;
}

static int s_step(void *arg)
{
    filedrop_t *self = arg;
    int rc = s_settle(self);
    int64_t now = s_now_ms();
    if (rc == 0 && self->phase == PH_IDLE && now >= self->next_scan) {
        self->next_scan = now + self->conf.poll_ms;
        rc = s_pick(self);
    }
    if (rc == 0 && self->phase == PH_PROBE)
        rc = s_step_probe(self);
    else if (rc == 0 && self->phase == PH_CHECK)
        rc = s_step_check(self);
    else if (rc == 0 && self->phase == PH_SUBMIT)
        rc = s_step_submit(self);
    if (rc < 0 || self->fatal || s_save_position(self) < 0)
        return -1;
    if (self->phase == PH_SUBMIT)
        return cv_client_can_accept(self->client) ? 0 : 20;
    if (self->phase != PH_IDLE)
        return 0;
    int64_t wait = self->next_scan - s_now_ms();
    if (self->nfiles > 0 && wait > 100)
        wait = 100;                /* files wait for their settlement */
    return wait < 0 ? 0 : (int) wait;
}

/* ---- start and stop ------------------------------------------------------ */

/* The first CV_FILEDROP_SHA_HEX hex digits of a file's SHA-256, or -1. */
static int s_file_sha(filedrop_t *self, const char *name, char sha[CV_FILEDROP_SHA_HEX + 1])
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", self->conf.inbox, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    ssize_t n;
    while ((n = read(fd, self->buf, sizeof self->buf)) > 0)
        crypto_hash_sha256_update(&st, (const unsigned char *) self->buf, (unsigned long long) n);
    close(fd);
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, digest);
    for (int i = 0; i < CV_FILEDROP_SHA_HEX / 2; i++)
        snprintf(sha + 2 * i, 3, "%02x", digest[i]);
    return n < 0 ? -1 : 0;
}

/* Takes the position of an earlier run: files it submitted whole must be
   the same files still (else they were moved and a new file took the
   name); the file it was reading is checked again when it is resumed. */
static void s_restore(filedrop_t *self)
{
    const char *text = cv_client_position(self->client);
    if (!text)
        return;
    if (cv_filedrop_position_decode(text, &self->files, &self->nfiles) < 0) {
        cv_warn(COMP, "source %s: the spool's position is not a file-drop position: starting from the inbox",
                self->source);
        self->dirty = true;
        return;
    }
    for (size_t i = self->nfiles; i-- > 0; ) {
        cv_filedrop_entry_t *e = &self->files[i];
        char sha[CV_FILEDROP_SHA_HEX + 1];
        bool waiting = e->total >= 0 && e->done >= e->total;
        if (!s_in_inbox(self, e->name) || (waiting && (s_file_sha(self, e->name, sha) < 0 || strcmp(sha, e->sha) != 0))) {
            cv_info(COMP, "file %s of the last run is no longer in the inbox", e->name);
            s_forget(self, e);
        } else if (waiting)
            cv_info(COMP, "file %s: waiting for the hub to settle its records (submitted by the last run)", e->name);
    }
}

static void *s_start(const cv_driver_ctx_t *ctx, char *err, size_t errlen)
{
    filedrop_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->fd = -1;
    if (cv_filedrop_conf_load(&self->conf, ctx->doc, ctx->conf, ctx->config_dir, err, errlen) < 0
        || !(self->source = strdup(ctx->source))) {
        cv_filedrop_conf_free(&self->conf);
        free(self);
        return NULL;
    }
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium cannot start");
        cv_filedrop_conf_free(&self->conf);
        free(self->source);
        free(self);
        return NULL;
    }
    self->client = ctx->client;
    cv_client_on_settle(self->client, s_on_settle, self);
    s_restore(self);
    cv_filedrop_metrics_save(&self->conf, &self->metrics, self->source);
    cv_info(COMP, "source %s: watching %s every %d ms (%s%s%s), done: %s, error: %s", self->source,
            self->conf.inbox, self->conf.poll_ms, self->conf.csv_on ? "csv" : "",
            self->conf.csv_on && self->conf.xml_on ? ", " : "", self->conf.xml_on ? "xml" : "",
            self->conf.done_dir, self->conf.error_dir);
    return self;
}

static void s_stop(void **self_p)
{
    if (!self_p || !*self_p)
        return;
    filedrop_t *self = *self_p;
    cv_client_on_settle(self->client, NULL, NULL);
    s_save_position(self);
    cv_filedrop_history_free(&self->history);
    s_close(self);
    cv_filedrop_position_entries_free(&self->files, &self->nfiles);
    cv_filedrop_conf_free(&self->conf);
    free(self->source);
    free(self);
    *self_p = NULL;
}

const cv_driver_t cv_filedrop_driver = { "filedrop", s_start, s_step, s_stop };
