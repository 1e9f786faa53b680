/*  driver_filedrop_xml — see cv_filedrop_xml.h.

    Expat calls back for each start tag, run of text and end tag. Inside a
    record the reader keeps a stack of open elements (frames); the text of
    all open elements shares one buffer: a frame's text starts at its
    text_start, and a child's text is cut off again when the child ends, so
    a parent's text runs on after it. When an element ends, its value (a
    string, or the object of its attributes and children) goes into its
    parent's object; when the record element ends, the record is emitted. */
#include "cv_filedrop_xml.h"

#include <expat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XML_DEFAULT_MAX (1024 * 1024)
#define XML_DEPTH 32
#define XML_NS_SEP '\x01'          /* expat gives "uri\x01local" */

typedef struct {
    char *name;                    /* local name: the key in the parent */
    json_t *obj;                   /* attributes and children; NULL while none */
    size_t text_start;             /* where its text begins in text */
} frame_t;

struct cv_filedrop_xml {
    cv_filedrop_xml_opts_t opts;
    XML_Parser parser;
    cv_filedrop_emit_fn emit;
    void *arg;
    frame_t frames[XML_DEPTH + 1]; /* [0] is the record */
    int depth;                     /* open frames; 0: outside any record */
    cv_filedrop_buf_t text;
    size_t record_bytes;           /* text and attribute bytes of the current record */
    long record_line;
    long records;
    bool failed;
    char err[256];
    char lead[4];                  /* the document's first bytes, held until there are four */
    size_t nlead;
};

static void s_stop(cv_filedrop_xml_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Stops the parser with a reason (the first one wins). */
static void s_stop(cv_filedrop_xml_t *self, const char *fmt, ...)
{
    if (self->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->err, sizeof self->err, fmt, ap);
    va_end(ap);
    self->failed = true;
    XML_StopParser(self->parser, XML_FALSE);
}

static long s_line(const cv_filedrop_xml_t *self)
{
    return (long) XML_GetCurrentLineNumber(self->parser);
}

static const char *s_local(const char *name)
{
    const char *sep = strrchr(name, XML_NS_SEP);
    return sep ? sep + 1 : name;
}

static bool s_count(cv_filedrop_xml_t *self, size_t n)
{
    self->record_bytes += n;
    if (self->record_bytes <= self->opts.max_record_bytes)
        return true;
    s_stop(self, "line %ld: the record that starts at line %ld is larger than %zu bytes", s_line(self),
           self->record_line, self->opts.max_record_bytes);
    return false;
}

/* Adds value (owned) under key; a key seen again makes a list. Values are
   strings, nulls and objects, so a list here always comes from a repeat. */
static int s_put(json_t *obj, const char *key, json_t *value)
{
    json_t *old = json_object_get(obj, key);
    if (!old)
        return json_object_set_new(obj, key, value);
    if (json_is_array(old))
        return json_array_append_new(old, value);
    json_t *list = json_array();
    if (!list || json_array_append(list, old) < 0 || json_array_append_new(list, value) < 0) {
        json_decref(list);
        return -1;
    }
    return json_object_set_new(obj, key, list);
}

static json_t *s_obj(frame_t *f)
{
    if (!f->obj)
        f->obj = json_object();
    return f->obj;
}

static void s_free_frames(cv_filedrop_xml_t *self)
{
    for (int i = 0; i < self->depth; i++) {
        free(self->frames[i].name);
        json_decref(self->frames[i].obj);
    }
    self->depth = 0;
}

/* ---- expat callbacks ----------------------------------------------------- */

static void XMLCALL s_on_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
    cv_filedrop_xml_t *self = arg;
    const char *local = s_local(name);
    if (self->depth == 0 && strcmp(local, self->opts.record) != 0)
        return;                    /* outside records */
    if (self->depth == XML_DEPTH) {
        s_stop(self, "line %ld: elements nested more than %d deep in a record", s_line(self), XML_DEPTH);
        return;
    }
    if (self->depth == 0) {
        self->record_line = s_line(self);
        self->record_bytes = 0;
        self->text.len = 0;
    }
    frame_t *f = &self->frames[self->depth++];
    *f = (frame_t) { strdup(local), self->depth == 1 ? json_object() : NULL, self->text.len };
    if (!f->name || (self->depth == 1 && !f->obj) || !s_count(self, strlen(local))) {
        s_stop(self, "line %ld: out of memory", s_line(self));
        return;
    }
    const char *prefix = self->opts.attribute_prefix ? self->opts.attribute_prefix : "";
    for (size_t i = 0; attrs[i]; i += 2) {
        const char *value = attrs[i + 1];
        char key[512];
        snprintf(key, sizeof key, "%s%s", prefix, s_local(attrs[i]));
        json_t *v;
        if (!s_count(self, strlen(key) + strlen(value)))
            return;
        if (cv_filedrop_text_value_make(value, strlen(value), &self->opts.values, &v) < 0
            || !s_obj(f) || (v && s_put(f->obj, key, v) < 0)) {
            s_stop(self, "line %ld: out of memory", s_line(self));
            return;
        }
    }
}

static void XMLCALL s_on_text(void *arg, const XML_Char *s, int len)
{
    cv_filedrop_xml_t *self = arg;
    if (self->depth == 0 || self->failed || !s_count(self, (size_t) len))
        return;
    if (cv_buf_add(&self->text, s, (size_t) len) < 0)
        s_stop(self, "line %ld: out of memory", s_line(self));
}

/* The frame's value: its object (with its text under text_key when not
   blank), or its text as a value. 0, or -1 when out of memory. */
static int s_value(cv_filedrop_xml_t *self, frame_t *f, json_t **out)
{
    /* no text read yet: the buffer has no data (NULL + 0 is undefined) */
    const char *p = self->text.data ? self->text.data + f->text_start : "";
    size_t n = self->text.len - f->text_start;
    if (!f->obj)
        return cv_filedrop_text_value_make(p, n, &self->opts.values, out);
    cv_filedrop_text_trim(&p, &n);
    if (n > 0 && cv_filedrop_text_value_put(f->obj, self->opts.text_key, p, n, &self->opts.values) < 0)
        return -1;
    *out = f->obj;
    f->obj = NULL;
    return 0;
}

static void XMLCALL s_on_end(void *arg, const XML_Char *name)
{
    cv_filedrop_xml_t *self = arg;
    (void) name;
    if (self->depth == 0 || self->failed)
        return;
    frame_t *f = &self->frames[self->depth - 1];
    json_t *value = NULL;
    if (s_value(self, f, &value) < 0) {
        s_stop(self, "line %ld: out of memory", s_line(self));
        return;
    }
    self->text.len = f->text_start;
    char *key = f->name;
    self->depth--;
    if (self->depth == 0) {        /* the record is complete */
        free(key);
        self->records++;
        if (self->emit(self->arg, value, self->record_line, self->records) < 0) {
            s_stop(self, "%s", "");
        }
        return;
    }
    frame_t *parent = &self->frames[self->depth - 1];
    if (value && (!s_obj(parent) || s_put(parent->obj, key, value) < 0))
        s_stop(self, "line %ld: out of memory", s_line(self));
    free(key);
}

static void XMLCALL s_on_entity(void *arg, const XML_Char *name, int is_param, const XML_Char *value,
                                int value_len, const XML_Char *base, const XML_Char *system_id,
                                const XML_Char *public_id, const XML_Char *notation)
{
    cv_filedrop_xml_t *self = arg;
    s_stop(self, "line %ld: entity declarations are refused", s_line(self));
}

static int XMLCALL s_on_encoding(void *data, const XML_Char *name, XML_Encoding *info)
{
    cv_filedrop_encoding_t enc;
    if (cv_filedrop_text_encoding_parse(name, &enc) < 0 || (enc != CV_FILEDROP_ENC_CP1252 && enc != CV_FILEDROP_ENC_LATIN9))
        return XML_STATUS_ERROR;
    for (int b = 0; b < 256; b++)
        info->map[b] = cv_filedrop_text_codepoint(enc, (unsigned char) b);
    info->data = NULL;
    info->convert = NULL;
    info->release = NULL;
    return XML_STATUS_OK;
}

/* ---- the reader ---------------------------------------------------------- */

cv_filedrop_xml_t *cv_filedrop_xml_new(const cv_filedrop_xml_opts_t *opts, cv_filedrop_emit_fn emit, void *arg)
{
    cv_filedrop_xml_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->opts = *opts;
    if (!self->opts.max_record_bytes)
        self->opts.max_record_bytes = XML_DEFAULT_MAX;
    if (!self->opts.text_key || !*self->opts.text_key)
        self->opts.text_key = "_text";
    self->text.limit = self->opts.max_record_bytes;
    self->emit = emit;
    self->arg = arg;
    self->parser = XML_ParserCreateNS(opts->encoding && *opts->encoding ? opts->encoding : NULL, XML_NS_SEP);
    if (!self->parser) {
        free(self);
        return NULL;
    }
    XML_SetUserData(self->parser, self);
    XML_SetElementHandler(self->parser, s_on_start, s_on_end);
    XML_SetCharacterDataHandler(self->parser, s_on_text);
    XML_SetEntityDeclHandler(self->parser, s_on_entity);
    XML_SetUnknownEncodingHandler(self->parser, s_on_encoding, NULL);
    XML_SetParamEntityParsing(self->parser, XML_PARAM_ENTITY_PARSING_NEVER);
    return self;
}

void cv_filedrop_xml_destroy(cv_filedrop_xml_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cv_filedrop_xml_t *self = *self_p;
    s_free_frames(self);
    XML_ParserFree(self->parser);
    cv_buf_free(&self->text);
    free(self);
    *self_p = NULL;
}

static int s_parse(cv_filedrop_xml_t *self, const char *data, size_t len, bool final)
{
    if (self->failed)
        return -1;
    while (len > 0 || final) {
        int n = len > (1 << 20) ? 1 << 20 : (int) len;
        bool last = final && (size_t) n == len;
        if (XML_Parse(self->parser, data, n, last) != XML_STATUS_OK) {
            if (!self->failed) {
                self->failed = true;
                snprintf(self->err, sizeof self->err, "line %lu: %s",
                         (unsigned long) XML_GetCurrentLineNumber(self->parser),
                         XML_ErrorString(XML_GetErrorCode(self->parser)));
            }
            return -1;
        }
        data += n;
        len -= (size_t) n;
        if (last)
            break;
    }
    return 0;
}

/* expat guesses an undeclared encoding from the document's first bytes (a
   BOM, "<?xm" in UTF-16): it gets at least four at once, so a file read in
   small pieces is read as the same file read whole (the fuzzer found a
   UTF-16 file parsed whole and refused when fed a byte at a time). */
int cv_filedrop_xml_feed(cv_filedrop_xml_t *self, const char *data, size_t len)
{
    if (self->nlead < sizeof self->lead) {
        size_t take = sizeof self->lead - self->nlead < len ? sizeof self->lead - self->nlead : len;
        memcpy(self->lead + self->nlead, data, take);
        self->nlead += take;
        data += take;
        len -= take;
        if (self->nlead < sizeof self->lead)
            return self->failed ? -1 : 0;
        if (s_parse(self, self->lead, sizeof self->lead, false) < 0)
            return -1;
    }
    return s_parse(self, data, len, false);
}

int cv_filedrop_xml_end(cv_filedrop_xml_t *self)
{
    if (self->nlead > 0 && self->nlead < sizeof self->lead) {   /* a document shorter than four bytes */
        size_t n = self->nlead;
        self->nlead = sizeof self->lead;
        if (s_parse(self, self->lead, n, false) < 0)
            return -1;
    }
    return s_parse(self, "", 0, true);
}

const char *cv_filedrop_xml_error(const cv_filedrop_xml_t *self)
{
    return self->err;
}

long cv_filedrop_xml_records(const cv_filedrop_xml_t *self)
{
    return self->records;
}
