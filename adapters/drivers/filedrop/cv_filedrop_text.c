/*  driver_filedrop_text — encodings, a bounded buffer and record values for
    the file-drop driver (cv_filedrop.h).

    French exports come in UTF-8 or in Windows-1252 (œ, €, ’, « » are bytes
    9C, 80, 92, AB, BB), sometimes in ISO-8859-15. The single-byte encodings
    are converted with a table: no iconv, no locale. Every text is checked:
    a byte that the encoding leaves undefined, or a broken UTF-8 sequence,
    is an error the caller reports with its line, never passed on. */
#include "cv_filedrop.h"

#include "cv_buf.h"
#include "cv_text.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- encodings ----------------------------------------------------------- */

/* Windows-1252 bytes 80..9F (0: undefined). A0..FF are U+00A0..U+00FF. */
static const uint16_t s_cp1252_80[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,
    0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

int cv_filedrop_text_encoding_parse(const char *name, cv_filedrop_encoding_t *out)
{
    static const struct { const char *name; cv_filedrop_encoding_t enc; } names[] = {
        { "utf-8", CV_FILEDROP_ENC_UTF8 }, { "utf8", CV_FILEDROP_ENC_UTF8 },
        { "windows-1252", CV_FILEDROP_ENC_CP1252 }, { "cp1252", CV_FILEDROP_ENC_CP1252 },
        { "iso-8859-1", CV_FILEDROP_ENC_CP1252 }, { "latin1", CV_FILEDROP_ENC_CP1252 },
        { "iso-8859-15", CV_FILEDROP_ENC_LATIN9 }, { "latin9", CV_FILEDROP_ENC_LATIN9 },
        { "auto", CV_FILEDROP_ENC_AUTO },
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcasecmp(name, names[i].name) == 0) {
            *out = names[i].enc;
            return 0;
        }
    return -1;
}

const char *cv_filedrop_text_encoding_name(cv_filedrop_encoding_t enc)
{
    switch (enc) {
    case CV_FILEDROP_ENC_UTF8: return "utf-8";
    case CV_FILEDROP_ENC_CP1252: return "windows-1252";
    case CV_FILEDROP_ENC_LATIN9: return "iso-8859-15";
    default: return "auto";
    }
}

int cv_filedrop_text_codepoint(cv_filedrop_encoding_t enc, unsigned char b)
{
    if (b < 0x80)
        return b;
    if (enc == CV_FILEDROP_ENC_CP1252)
        return b >= 0xA0 ? b : s_cp1252_80[b - 0x80] ? s_cp1252_80[b - 0x80] : -1;
    if (enc == CV_FILEDROP_ENC_LATIN9) {
        switch (b) {
        case 0xA4: return 0x20AC;
        case 0xA6: return 0x0160;
        case 0xA8: return 0x0161;
        case 0xB4: return 0x017D;
        case 0xB8: return 0x017E;
        case 0xBC: return 0x0152;
        case 0xBD: return 0x0153;
        case 0xBE: return 0x0178;
        default: return b >= 0xA0 ? b : -1;   /* 80..9F are C1 controls */
        }
    }
    return -1;
}

int cv_filedrop_text_utf8_seq(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    int len;
    unsigned char lo = 0x80, hi = 0xBF;   /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;                    /* no overlong forms */
        if (c == 0xED)
            hi = 0x9F;                    /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;                    /* up to U+10FFFF */
    } else
        return -1;
    for (int i = 1; i < len; i++) {
        if ((size_t) i >= n)
            return 0;
        if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xBF))
            return -1;
    }
    return len;
}

/* ---- buffer -------------------------------------------------------------- */

static size_t s_put_utf8(char *out, int cp)
{
    if (cp < 0x80) {
        out[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char) (0xC0 | (cp >> 6));
        out[1] = (char) (0x80 | (cp & 0x3F));
        return 2;
    }
    out[0] = (char) (0xE0 | (cp >> 12));
    out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char) (0x80 | (cp & 0x3F));
    return 3;
}

int cv_filedrop_text_buf_decode(cv_filedrop_buf_t *b, cv_filedrop_encoding_t enc, const char *p, size_t n, size_t *bad)
{
    const unsigned char *s = (const unsigned char *) p;
    *bad = (size_t) -1;
    if (enc == CV_FILEDROP_ENC_UTF8 || enc == CV_FILEDROP_ENC_AUTO) {
        for (size_t i = 0; i < n; ) {
            int len = s[i] ? cv_filedrop_text_utf8_seq(s + i, n - i) : -1;
            if (len <= 0) {
                *bad = i;
                return -1;
            }
            i += (size_t) len;
        }
        return cv_buf_add(b, p, n);
    }
    if (cv_buf_reserve(b, n * 3) < 0 && cv_buf_reserve(b, n) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int cp = s[i] ? cv_filedrop_text_codepoint(enc, s[i]) : -1;
        if (cp < 0) {
            *bad = i;
            return -1;
        }
        char u[3];
        if (cv_buf_add(b, u, s_put_utf8(u, cp)) < 0)
            return -1;
    }
    return 0;
}


/* ---- values -------------------------------------------------------------- */

void cv_filedrop_text_trim(const char **p, size_t *n)
{
    cv_text_trim(p, n);
}

int cv_filedrop_text_value_make(const char *p, size_t n, const cv_filedrop_values_t *v, json_t **out)
{
    if (v->trim)
        cv_filedrop_text_trim(&p, &n);
    *out = NULL;
    if (n == 0 && v->empty == CV_FILEDROP_EMPTY_OMIT)
        return 0;
    *out = n == 0 && v->empty == CV_FILEDROP_EMPTY_NULL ? json_null() : json_stringn(p, n);
    return *out ? 0 : -1;
}

int cv_filedrop_text_value_put(json_t *obj, const char *key, const char *p, size_t n, const cv_filedrop_values_t *v)
{
    json_t *value;
    if (cv_filedrop_text_value_make(p, n, v, &value) < 0)
        return -1;
    return !value || json_object_set_new(obj, key, value) == 0 ? 0 : -1;
}

/* ---- origin -------------------------------------------------------------- */

int cv_filedrop_origin_add(const cv_filedrop_conf_t *c, const char *file, cv_filedrop_format_t format, json_t *rec,
                           long line, long index)
{
    if (!c->origin_key)
        return 0;
    json_t *o = json_object();
    if (!o)
        return -1;
    if (c->origin_fields & CV_FILEDROP_ORIGIN_FILE)
        json_object_set_new(o, "file", json_string(file));
    if (c->origin_fields & CV_FILEDROP_ORIGIN_FORMAT)
        json_object_set_new(o, "format", json_string(format == CV_FILEDROP_FMT_CSV ? "csv" : "xml"));
    if (c->origin_fields & CV_FILEDROP_ORIGIN_LINE)
        json_object_set_new(o, "line", json_integer(line));
    if (c->origin_fields & CV_FILEDROP_ORIGIN_RECORD)
        json_object_set_new(o, "record", json_integer(index));
    return json_object_set_new(rec, c->origin_key, o);
}
