/*  test_filedrop — the file-drop driver (adapters/runtime/driver_filedrop*):
    encodings, the CSV parser and the XML reader on the edge cases French
    exports have (Windows-1252, BOM, CRLF, quoted line breaks, truncated
    files, wrong column counts, malformed XML), fed whole and in chunks of
    every size; the driver's configuration errors as file:line; and the
    driver itself with a real client and spool (no hub: nothing settles):
    which files it reads in which order, what it submits, error/ with a
    reason, the position and the resumption of a file after a restart.
    Errors must never quote a value from the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_test.h"

#include <czmq.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cv_yaml.h"
#include "drivers/filedrop/cv_filedrop.h"
#include "drivers/filedrop/cv_filedrop_csv.h"
#include "drivers/filedrop/cv_filedrop_xml.h"
#include "map/cv_mapping.h"
#include "runtime/cv_client.h"
#include "runtime/cv_driver.h"
#include "spool/cv_spool.h"

/* ---- collecting records -------------------------------------------------- */

typedef struct {
    json_t *records;               /* [{"line":..,"index":..,"record":{..}}] */
    long stop_after;               /* emit returns -1 after this many (0: never) */
} sink_t;

static int s_collect(void *arg, json_t *rec, long line, long index)
{
    sink_t *sink = arg;
    json_array_append_new(sink->records, json_pack("{s:I, s:I, s:o}", "line", (json_int_t) line,
                                                   "index", (json_int_t) index, "record", rec));
    return sink->stop_after && (long) json_array_size(sink->records) >= sink->stop_after ? -1 : 0;
}

static cv_filedrop_csv_opts_t s_csv_opts(void)
{
    cv_filedrop_csv_opts_t o = { ';', '"', true, NULL, 0, CV_FILEDROP_ENC_UTF8, { true, CV_FILEDROP_EMPTY_OMIT }, 0 };
    return o;
}

/* Parses text fed in chunks of `chunk` bytes (0: all at once). Returns
   the records; *rc is the result, err gets the error. */
static json_t *s_csv(const cv_filedrop_csv_opts_t *o, const char *text, size_t len, size_t chunk, int *rc,
                     char *err, size_t errlen)
{
    sink_t sink = { json_array(), 0 };
    cv_filedrop_csv_t *csv = cv_filedrop_csv_new(o, s_collect, &sink);
    assert_non_null(csv);
    *rc = 0;
    for (size_t at = 0; at < len && *rc == 0; ) {
        size_t n = chunk && len - at > chunk ? chunk : len - at;
        *rc = cv_filedrop_csv_feed(csv, text + at, n);
        at += n;
    }
    if (*rc == 0)
        *rc = cv_filedrop_csv_end(csv);
    snprintf(err, errlen, "%s", cv_filedrop_csv_error(csv));
    assert_int_equal(cv_filedrop_csv_records(csv), (long) json_array_size(sink.records));
    cv_filedrop_csv_destroy(&csv);
    assert_null(csv);
    return sink.records;
}

/* Parses and expects success; returns the records. */
static json_t *s_csv_ok(const cv_filedrop_csv_opts_t *o, const char *text)
{
    int rc;
    char err[256];
    json_t *all = s_csv(o, text, strlen(text), 0, &rc, err, sizeof err);
    if (rc != 0)
        fail_msg("CSV refused: %s", err);
    /* the same, one byte at a time and in chunks of 7, must give the same */
    size_t sizes[2] = { 1, 7 };
    for (int i = 0; i < 2; i++) {
        json_t *again = s_csv(o, text, strlen(text), sizes[i], &rc, err, sizeof err);
        assert_int_equal(rc, 0);
        assert_true(json_equal(all, again));
        json_decref(again);
    }
    return all;
}

/* Parses and expects failure with err starting with want; returns how
   many records were emitted before. */
static long s_csv_fails(const cv_filedrop_csv_opts_t *o, const char *text, size_t len, const char *want)
{
    long emitted = -1;
    size_t sizes[3] = { 0, 1, 5 };
    for (int i = 0; i < 3; i++) {
        int rc;
        char err[256];
        json_t *got = s_csv(o, text, len, sizes[i], &rc, err, sizeof err);
        if (rc == 0)
            fail_msg("CSV accepted; expected '%s'", want);
        if (strncmp(err, want, strlen(want)) != 0)
            fail_msg("error '%s' does not start with '%s'", err, want);
        assert_null(strstr(err, "SECRET"));
        if (emitted >= 0)
            assert_int_equal(emitted, (long) json_array_size(got));
        emitted = (long) json_array_size(got);
        json_decref(got);
    }
    return emitted;
}

static json_t *s_rec(json_t *all, size_t i)
{
    return json_object_get(json_array_get(all, i), "record");
}

static long s_line(json_t *all, size_t i)
{
    return (long) json_integer_value(json_object_get(json_array_get(all, i), "line"));
}

static const char *s_str(json_t *rec, const char *key)
{
    return json_string_value(json_object_get(rec, key));
}

static void s_json_is(json_t *value, const char *want)
{
    json_t *w = json_loads(want, 0, NULL);
    assert_non_null(w);
    if (!json_equal(value, w)) {
        char *got = json_dumps(value, JSON_COMPACT);
        char copy[1024];
        snprintf(copy, sizeof copy, "%s", got);
        free(got);
        json_decref(w);
        fail_msg("got %s\nwant %s", copy, want);
    }
    json_decref(w);
}

/* ---- encodings ----------------------------------------------------------- */

static void test_encodings(void **state)
{
    cv_filedrop_encoding_t e;
    assert_int_equal(cv_filedrop_text_encoding_parse("Windows-1252", &e), 0);
    assert_int_equal(e, CV_FILEDROP_ENC_CP1252);
    assert_int_equal(cv_filedrop_text_encoding_parse("ISO-8859-1", &e), 0);
    assert_int_equal(e, CV_FILEDROP_ENC_CP1252);
    assert_int_equal(cv_filedrop_text_encoding_parse("latin9", &e), 0);
    assert_int_equal(e, CV_FILEDROP_ENC_LATIN9);
    assert_int_equal(cv_filedrop_text_encoding_parse("ebcdic", &e), -1);

    assert_int_equal(cv_filedrop_text_codepoint(CV_FILEDROP_ENC_CP1252, 0x9C), 0x0153);   /* œ */
    assert_int_equal(cv_filedrop_text_codepoint(CV_FILEDROP_ENC_CP1252, 0x8C), 0x0152);   /* Œ */
    assert_int_equal(cv_filedrop_text_codepoint(CV_FILEDROP_ENC_CP1252, 0x80), 0x20AC);   /* € */
    assert_int_equal(cv_filedrop_text_codepoint(CV_FILEDROP_ENC_CP1252, 0x92), 0x2019);   /* ’ */
    assert_int_equal(cv_filedrop_text_codepoint(CV_FILEDROP_ENC_CP1252, 0xAB), 0x00AB);   /* « */
    assert_int_equal(cv_filedrop_text_codepoint(CV_FILEDROP_ENC_CP1252, 0xC9), 0x00C9);   /* É */
    assert_int_equal(cv_filedrop_text_codepoint(CV_FILEDROP_ENC_CP1252, 0x81), -1);
    assert_int_equal(cv_filedrop_text_codepoint(CV_FILEDROP_ENC_CP1252, 0x9D), -1);
    assert_int_equal(cv_filedrop_text_codepoint(CV_FILEDROP_ENC_LATIN9, 0xA4), 0x20AC);
    assert_int_equal(cv_filedrop_text_codepoint(CV_FILEDROP_ENC_LATIN9, 0xBD), 0x0153);
    assert_int_equal(cv_filedrop_text_codepoint(CV_FILEDROP_ENC_LATIN9, 0x92), -1);

    assert_int_equal(cv_filedrop_text_utf8_seq((const unsigned char *) "A", 1), 1);
    assert_int_equal(cv_filedrop_text_utf8_seq((const unsigned char *) "\xC5\x93", 2), 2);          /* œ */
    assert_int_equal(cv_filedrop_text_utf8_seq((const unsigned char *) "\xE2\x82\xAC", 3), 3);      /* € */
    assert_int_equal(cv_filedrop_text_utf8_seq((const unsigned char *) "\xF0\x9F\x98\x80", 4), 4);
    assert_int_equal(cv_filedrop_text_utf8_seq((const unsigned char *) "\xE2\x82", 2), 0);          /* cut */
    assert_int_equal(cv_filedrop_text_utf8_seq((const unsigned char *) "\xC0\xAF", 2), -1);         /* overlong */
    assert_int_equal(cv_filedrop_text_utf8_seq((const unsigned char *) "\xE0\x80\xAF", 3), -1);     /* overlong */
    assert_int_equal(cv_filedrop_text_utf8_seq((const unsigned char *) "\xED\xA0\x80", 3), -1);     /* surrogate */
    assert_int_equal(cv_filedrop_text_utf8_seq((const unsigned char *) "\xF4\x90\x80\x80", 4), -1); /* > U+10FFFF */
    assert_int_equal(cv_filedrop_text_utf8_seq((const unsigned char *) "\x9C", 1), -1);

    cv_filedrop_buf_t b = { .limit = 99 };
    size_t bad;
    assert_int_equal(cv_filedrop_text_buf_decode(&b, CV_FILEDROP_ENC_CP1252, "C\x9Cur \x80 l\x92\xE9t\xE9", 12, &bad), 0);
    assert_int_equal(cv_buf_add(&b, "", 1), 0);
    assert_string_equal(b.data, "Cœur € l’été");
    assert_int_equal(cv_filedrop_text_codepoint(CV_FILEDROP_ENC_CP1252, 0x8C), 0x0152);
    b.len = 0;
    assert_int_equal(cv_filedrop_text_buf_decode(&b, CV_FILEDROP_ENC_UTF8, "ab\xC3(", 4, &bad), -1);
    assert_int_equal(bad, 2);
    assert_int_equal(cv_filedrop_text_buf_decode(&b, CV_FILEDROP_ENC_CP1252, "ab\x81", 3, &bad), -1);
    assert_int_equal(bad, 2);
    b.len = 0;
    assert_int_equal(cv_filedrop_text_buf_decode(&b, CV_FILEDROP_ENC_CP1252, "\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9"
                                   "\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9"
                                   "\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9"
                                   "\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9\xE9", 50, &bad), -1);   /* 100 bytes > 99 */
    assert_int_equal(bad, (size_t) -1);
    cv_buf_free(&b);
}

/* ---- CSV ----------------------------------------------------------------- */

static void test_csv_french_export(void **state)
{
    /* BOM, CRLF, ';', a quoted field with ';' and a CRLF inside, a doubled
       quote, a last line without line end */
    const char *text =
        "\xEF\xBB\xBFN\xC2\xB0 dossier;Nom;Pr\xC3\xA9nom;Objet\r\n"
        "PC 075 056 24 00012;N'DIAYE;A\xC3\xAF" "cha;\"Extension ; v\xC3\xA9randa\r\nc\xC3\xB4t\xC3\xA9 \"\"jardin\"\"\"\r\n"
        "DP 075 056 24 00013; LEF\xC3\xA8VRE ;Fran\xC3\xA7ois;Cl\xC3\xB4ture\r\n"
        "CU 075 056 24 00014;C\xC5\x92UR;\xC3\x89lise;\xC2\xAB Certificat \xC2\xBB";
    cv_filedrop_csv_opts_t o = s_csv_opts();
    json_t *all = s_csv_ok(&o, text);
    assert_int_equal(json_array_size(all), 3);
    s_json_is(s_rec(all, 0), "{\"N° dossier\":\"PC 075 056 24 00012\",\"Nom\":\"N'DIAYE\",\"Prénom\":\"Aïcha\","
                             "\"Objet\":\"Extension ; véranda\\ncôté \\\"jardin\\\"\"}");
    s_json_is(s_rec(all, 1), "{\"N° dossier\":\"DP 075 056 24 00013\",\"Nom\":\"LEFèVRE\",\"Prénom\":\"François\","
                             "\"Objet\":\"Clôture\"}");
    assert_string_equal(s_str(s_rec(all, 2), "Nom"), "CŒUR");
    assert_string_equal(s_str(s_rec(all, 2), "Objet"), "« Certificat »");
    /* lines: the header is line 1, the quoted line break makes row 2 two lines long */
    assert_int_equal(s_line(all, 0), 2);
    assert_int_equal(s_line(all, 1), 4);
    assert_int_equal(s_line(all, 2), 5);
    json_decref(all);
}

static void test_csv_windows_1252(void **state)
{
    /* what a French Windows software writes: Pr\xE9nom, C\x9Cur, \x80, l\x92 */
    const char *text = "Nom;Pr\xE9nom;Montant;Objet\r\n"
                       "C\x8CUR;No\xEBl;12 \x80;R\xE9novation de l\x92" "\xE9table \xAB en pierre \xBB\r\n";
    cv_filedrop_csv_opts_t o = s_csv_opts();
    o.encoding = CV_FILEDROP_ENC_CP1252;
    json_t *all = s_csv_ok(&o, text);
    assert_int_equal(json_array_size(all), 1);
    s_json_is(s_rec(all, 0), "{\"Nom\":\"CŒUR\",\"Prénom\":\"Noël\",\"Montant\":\"12 €\","
                             "\"Objet\":\"Rénovation de l’étable « en pierre »\"}");
    json_decref(all);

    /* a UTF-8 BOM means UTF-8 even when Windows-1252 is configured */
    all = s_csv_ok(&o, "\xEF\xBB\xBFNom\nC\xC5\x92UR\n");
    assert_string_equal(s_str(s_rec(all, 0), "Nom"), "CŒUR");
    json_decref(all);

    /* ISO-8859-15 */
    o.encoding = CV_FILEDROP_ENC_LATIN9;
    all = s_csv_ok(&o, "Nom;Montant\nC\xBDUR;5 \xA4\n");
    s_json_is(s_rec(all, 0), "{\"Nom\":\"CœUR\",\"Montant\":\"5 €\"}");
    json_decref(all);
}

static void test_csv_values_and_shapes(void **state)
{
    cv_filedrop_csv_opts_t o = s_csv_opts();
    /* empty values: omitted by default; blank rows skipped; a trailing
       separator on every line; a lone CR ends a line too */
    const char *text = "a;b;c;\n1; ;\"\";\n\n  ;;;\r3;4;5;\n";
    json_t *all = s_csv_ok(&o, text);
    assert_int_equal(json_array_size(all), 2);
    s_json_is(s_rec(all, 0), "{\"a\":\"1\"}");
    s_json_is(s_rec(all, 1), "{\"a\":\"3\",\"b\":\"4\",\"c\":\"5\"}");
    assert_int_equal(s_line(all, 1), 5);
    json_decref(all);

    o.values.empty = CV_FILEDROP_EMPTY_NULL;
    all = s_csv_ok(&o, text);
    s_json_is(s_rec(all, 0), "{\"a\":\"1\",\"b\":null,\"c\":null}");
    json_decref(all);
    o.values.empty = CV_FILEDROP_EMPTY_KEEP;
    o.values.trim = false;
    all = s_csv_ok(&o, text);
    s_json_is(s_rec(all, 0), "{\"a\":\"1\",\"b\":\" \",\"c\":\"\"}");
    json_decref(all);

    /* no header: configured names; ',' and no quoting (a quote is text) */
    const char *names[] = { "id", "nom", "ville" };
    o = s_csv_opts();
    o.header = false;
    o.columns = names;
    o.ncolumns = 3;
    o.separator = ',';
    o.quote = 0;
    all = s_csv_ok(&o, "7,Jean \"JP\" Dupont,Saint-\xC3\x89tienne\n8,X,Y");
    assert_int_equal(json_array_size(all), 2);
    s_json_is(s_rec(all, 0), "{\"id\":\"7\",\"nom\":\"Jean \\\"JP\\\" Dupont\",\"ville\":\"Saint-Étienne\"}");
    assert_int_equal(s_line(all, 0), 1);
    json_decref(all);

    /* a header AND configured names: the names replace the header's */
    o = s_csv_opts();
    o.columns = names;
    o.ncolumns = 3;
    all = s_csv_ok(&o, "ID;NOM;VILLE\n1;a;b\n");
    s_json_is(s_rec(all, 0), "{\"id\":\"1\",\"nom\":\"a\",\"ville\":\"b\"}");
    json_decref(all);

    /* blanks around a quoted field; a tab separator */
    o = s_csv_opts();
    o.separator = '\t';
    all = s_csv_ok(&o, "a\tb\n  \"x\ty\"  \t\"\"\"\"\n");
    s_json_is(s_rec(all, 0), "{\"a\":\"x\\ty\",\"b\":\"\\\"\"}");
    json_decref(all);

    /* an empty file, a header alone */
    o = s_csv_opts();
    all = s_csv_ok(&o, "");
    assert_int_equal(json_array_size(all), 0);
    json_decref(all);
    all = s_csv_ok(&o, "a;b\r\n");
    assert_int_equal(json_array_size(all), 0);
    json_decref(all);
}

static void test_csv_errors(void **state)
{
    cv_filedrop_csv_opts_t o = s_csv_opts();
    /* truncated: the file ends inside a quoted field; the rows before were emitted */
    const char *t1 = "a;b\n1;SECRET-x\n2;\"SECRET-DUPONT\nsuite";
    assert_int_equal(s_csv_fails(&o, t1, strlen(t1), "line 4: the file ends inside the quoted field opened at line 3"), 1);
    /* a row cut short, a row too long */
    const char *t2 = "a;b;c\n1;2;3\n4;SECRET\n";
    assert_int_equal(s_csv_fails(&o, t2, strlen(t2), "line 3: 2 fields where there are 3 columns"), 1);
    const char *t3 = "a;b\n1;2;SECRET\n";
    s_csv_fails(&o, t3, strlen(t3), "line 2: 3 fields where there are 2 columns");
    /* text after a closing quote */
    const char *t4 = "a;b\n\"1\"x;2\n";
    s_csv_fails(&o, t4, strlen(t4), "line 2: text after the closing quote of column 1");
    /* encodings: broken UTF-8, in a quoted field after a line break */
    const char *t5 = "a;b\n1;\"SECRET\nl\xE9gende\"\n";
    s_csv_fails(&o, t5, strlen(t5), "line 3, column 2: byte 0xE9 is not valid utf-8");
    o.encoding = CV_FILEDROP_ENC_CP1252;
    const char *t6 = "a\n\x81SECRET\n";
    s_csv_fails(&o, t6, strlen(t6), "line 2, column 1: byte 0x81 is not valid windows-1252");
    o.encoding = CV_FILEDROP_ENC_UTF8;
    /* NUL, UTF-16 */
    const char t7[] = "a\nx\0y\n";
    s_csv_fails(&o, t7, sizeof t7 - 1, "line 2: a NUL byte");
    const char t8[] = "\xFF\xFE" "a\0\n\0";
    s_csv_fails(&o, t8, sizeof t8 - 1, "line 1: a UTF-16 file");
    /* headers */
    const char *t9 = "a;;b\n1;2;3\n";
    s_csv_fails(&o, t9, strlen(t9), "line 1: column 2 of the header has no name");
    const char *t10 = "\n\nnom;ville;nom\n";
    s_csv_fails(&o, t10, strlen(t10), "line 3: column 3 of the header has the same name as column 1");
    /* a row over the size limit: an unterminated quote swallowing the file */
    o.max_record_bytes = 64;
    char big[400];
    snprintf(big, sizeof big, "a;b\n1;\"%0300d\n", 7);
    s_csv_fails(&o, big, strlen(big), "line 2: a row longer than 64 bytes (is the quote opened at line 2 ever closed?)");
}

static void test_csv_emit_can_stop(void **state)
{
    cv_filedrop_csv_opts_t o = s_csv_opts();
    sink_t sink = { json_array(), 2 };
    cv_filedrop_csv_t *csv = cv_filedrop_csv_new(&o, s_collect, &sink);
    const char *text = "a\n1\n2\n3\n4\n";
    assert_int_equal(cv_filedrop_csv_feed(csv, text, strlen(text)), -1);
    assert_string_equal(cv_filedrop_csv_error(csv), "");
    assert_int_equal(json_array_size(sink.records), 2);
    assert_int_equal(cv_filedrop_csv_feed(csv, "5\n", 2), -1);     /* stays stopped */
    cv_filedrop_csv_destroy(&csv);
    json_decref(sink.records);
    /* no header and no names: refused */
    o.header = false;
    assert_null(cv_filedrop_csv_new(&o, s_collect, &sink));
}

/* ---- XML ----------------------------------------------------------------- */

static cv_filedrop_xml_opts_t s_xml_opts(void)
{
    cv_filedrop_xml_opts_t o = { "dossier", NULL, "", "_text", { true, CV_FILEDROP_EMPTY_OMIT }, 0 };
    return o;
}

static json_t *s_xml(const cv_filedrop_xml_opts_t *o, const char *text, size_t chunk, int *rc, char *err, size_t errlen)
{
    sink_t sink = { json_array(), 0 };
    cv_filedrop_xml_t *xml = cv_filedrop_xml_new(o, s_collect, &sink);
    assert_non_null(xml);
    size_t len = strlen(text);
    *rc = 0;
    for (size_t at = 0; at < len && *rc == 0; ) {
        size_t n = chunk && len - at > chunk ? chunk : len - at;
        *rc = cv_filedrop_xml_feed(xml, text + at, n);
        at += n;
    }
    if (*rc == 0)
        *rc = cv_filedrop_xml_end(xml);
    snprintf(err, errlen, "%s", cv_filedrop_xml_error(xml));
    assert_int_equal(cv_filedrop_xml_records(xml), (long) json_array_size(sink.records));
    cv_filedrop_xml_destroy(&xml);
    assert_null(xml);
    return sink.records;
}

static json_t *s_xml_ok(const cv_filedrop_xml_opts_t *o, const char *text)
{
    int rc;
    char err[256];
    json_t *all = s_xml(o, text, 0, &rc, err, sizeof err);
    if (rc != 0)
        fail_msg("XML refused: %s", err);
    for (size_t chunk = 1; chunk < 20; chunk += 6) {
        json_t *again = s_xml(o, text, chunk, &rc, err, sizeof err);
        assert_int_equal(rc, 0);
        assert_true(json_equal(all, again));
        json_decref(again);
    }
    return all;
}

static void s_xml_fails(const cv_filedrop_xml_opts_t *o, const char *text, const char *want)
{
    int rc;
    char err[256];
    json_t *all = s_xml(o, text, 3, &rc, err, sizeof err);
    json_decref(all);
    if (rc == 0)
        fail_msg("XML accepted; expected '%s'", want);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("error '%s' does not start with '%s'", err, want);
    assert_null(strstr(err, "SECRET"));
}

static void test_xml_records(void **state)
{
    const char *text =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ads:export xmlns:ads=\"urn:ads\" date=\"2024-03-14\">\n"
        "  <entete>ignored</entete>\n"
        "  <ads:dossiers>\n"
        "    <ads:dossier numero=\"PC 075 056 24 00012\" type=\"PC\">\n"
        "      <etat date=\"2024-03-01\">  D\xC3\xA9p\xC3\xB4t </etat>\n"
        "      <petitionnaire id=\"P-1\"><nom>C\xC5\x92UR</nom><prenom>\xC3\x89lise</prenom>\n"
        "        <telephone>01 02 03 04 05</telephone><telephone>06 12 34 56 78</telephone>\n"
        "        <mail/></petitionnaire>\n"
        "      <objet><![CDATA[Abri < 5 m\xC2\xB2 & terrasse]]></objet>\n"
        "      <note>l&apos;\xC3\xA9table &amp; &#8217;grange&#8217;</note>\n"
        "    </ads:dossier>\n"
        "    <ads:dossier numero=\"DP-2\"><etat>Instruction</etat><dossier>nested</dossier></ads:dossier>\n"
        "  </ads:dossiers>\n"
        "</ads:export>\n";
    cv_filedrop_xml_opts_t o = s_xml_opts();
    json_t *all = s_xml_ok(&o, text);
    assert_int_equal(json_array_size(all), 2);
    s_json_is(s_rec(all, 0),
              "{\"numero\":\"PC 075 056 24 00012\",\"type\":\"PC\","
              "\"etat\":{\"date\":\"2024-03-01\",\"_text\":\"Dépôt\"},"
              "\"petitionnaire\":{\"id\":\"P-1\",\"nom\":\"CŒUR\",\"prenom\":\"Élise\","
              "\"telephone\":[\"01 02 03 04 05\",\"06 12 34 56 78\"]},"
              "\"objet\":\"Abri < 5 m² & terrasse\",\"note\":\"l'étable & ’grange’\"}");
    s_json_is(s_rec(all, 1), "{\"numero\":\"DP-2\",\"etat\":\"Instruction\",\"dossier\":\"nested\"}");
    assert_int_equal(s_line(all, 0), 5);
    assert_int_equal(s_line(all, 1), 13);
    json_decref(all);

    /* empty elements as null; an attribute prefix; another text key */
    o.values.empty = CV_FILEDROP_EMPTY_NULL;
    o.attribute_prefix = "@";
    o.text_key = "valeur";
    all = s_xml_ok(&o, "<r><dossier n=\"1\"><mail/><etat d=\"x\">A</etat><vide a=\"\"/></dossier></r>");
    s_json_is(s_rec(all, 0), "{\"@n\":\"1\",\"mail\":null,\"etat\":{\"@d\":\"x\",\"valeur\":\"A\"},\"vide\":{\"@a\":null}}");
    json_decref(all);

    /* a document without records is valid */
    o = s_xml_opts();
    all = s_xml_ok(&o, "<export/>");
    assert_int_equal(json_array_size(all), 0);
    json_decref(all);
}

static void test_xml_windows_1252(void **state)
{
    const char *text = "<?xml version=\"1.0\" encoding=\"windows-1252\"?>\n"
                       "<export><dossier><nom>C\x8CUR</nom><objet>l\x92" "\xE9table \x80 \xAB ok \xBB</objet>"
                       "</dossier></export>";
    cv_filedrop_xml_opts_t o = s_xml_opts();
    json_t *all = s_xml_ok(&o, text);
    s_json_is(s_rec(all, 0), "{\"nom\":\"CŒUR\",\"objet\":\"l’étable € « ok »\"}");
    json_decref(all);
    /* ISO-8859-15 declared; and an override of the declaration */
    all = s_xml_ok(&o, "<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?><dossier><n>C\xBDur \xA4</n></dossier>");
    s_json_is(s_rec(all, 0), "{\"n\":\"Cœur €\"}");
    json_decref(all);
    o.encoding = "windows-1252";
    all = s_xml_ok(&o, "<dossier><n>C\x9Cur</n></dossier>");
    s_json_is(s_rec(all, 0), "{\"n\":\"Cœur\"}");
    json_decref(all);
    /* an undefined byte */
    s_xml_fails(&o, "<dossier><n>SECRET\x81</n></dossier>", "line 1: ");
}

static void test_xml_errors(void **state)
{
    cv_filedrop_xml_opts_t o = s_xml_opts();
    s_xml_fails(&o, "<export>\n<dossier><nom>SECRET</prenom></dossier>\n</export>", "line 2: mismatched tag");
    s_xml_fails(&o, "<export>\n<dossier><nom>SECRET</nom></dossier>\n<dossier><nom>SECR", "line 3: ");
    s_xml_fails(&o, "<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ENTITY a \"SECRET\">]>\n<x>&a;</x>",
                "line 2: entity declarations are refused");
    s_xml_fails(&o, "", "line 1: no element found");
    s_xml_fails(&o, "<export><dossier>SECRET &nbsp;</dossier></export>", "line 1: undefined entity");
    char deep[2048] = "<dossier>";
    for (int i = 0; i < 40; i++)
        strcat(deep, "<a>");
    s_xml_fails(&o, deep, "line 1: elements nested more than 32 deep in a record");
    o.max_record_bytes = 50;
    s_xml_fails(&o, "<r><dossier>\n<a>0123456789012345678901234567890123456789012345678901234567890</a></dossier></r>",
                "line 2: the record that starts at line 1 is larger than 50 bytes");
}

/* ---- the driver ---------------------------------------------------------- */

typedef struct {
    char dir[64];
    char inbox[128], spool[128], secret[160], endpoint[128], hubkey[41];
    cv_yaml_doc_t *doc;
    cv_client_t *client;
    void *driver;
} env_t;

/* The driver, as `civibus-adapter run` finds it. */
static const cv_driver_t *s_drv(void)
{
    const cv_driver_t *d = cv_driver_find("filedrop");
    assert_non_null(d);
    return d;
}

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int s_env_setup(void **state)
{
    env_t *env = calloc(1, sizeof *env);
    strcpy(env->dir, "/tmp/cv-filedrop-test-XXXXXX");
    assert_non_null(mkdtemp(env->dir));
    snprintf(env->inbox, sizeof env->inbox, "%s/inbox", env->dir);
    snprintf(env->spool, sizeof env->spool, "%s/spool", env->dir);
    snprintf(env->endpoint, sizeof env->endpoint, "ipc://%s/nobody.sock", env->dir);
    assert_int_equal(mkdir(env->inbox, 0700), 0);
    zcert_t *mine = zcert_new(), *hub = zcert_new();
    char path[96];
    snprintf(path, sizeof path, "%s/adapter", env->dir);
    assert_int_equal(zcert_save(mine, path), 0);
    snprintf(env->secret, sizeof env->secret, "%s_secret", path);
    snprintf(env->hubkey, sizeof env->hubkey, "%s", zcert_public_txt(hub));
    zcert_destroy(&mine);
    zcert_destroy(&hub);
    *state = env;
    return 0;
}

static void s_driver_stop(env_t *env)
{
    if (env->driver)
        s_drv()->stop(&env->driver);
    assert_null(env->driver);
    if (env->client)
        cv_client_flush(env->client);
    cv_client_destroy(&env->client);
    cv_yaml_destroy(&env->doc);
}

static int s_env_teardown(void **state)
{
    env_t *env = *state;
    s_driver_stop(env);
    nftw(env->dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    free(env);
    return 0;
}

static void s_write(env_t *env, const char *name, const char *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", env->inbox, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static bool s_exists(env_t *env, const char *rel)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", env->inbox, rel);
    return access(path, F_OK) == 0;
}

static char *s_slurp(env_t *env, const char *rel)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", env->inbox, rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = calloc(1, 4096);
    size_t n = fread(text, 1, 4095, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

/* The driver section (YAML, indented by 2) of adapter.yaml. */
static cv_yaml_doc_t *s_section(env_t *env, const char *driver_yaml)
{
    char text[4096], err[256];
    snprintf(text, sizeof text, "driver:\n  kind: filedrop\n  source: urbanisme\n  inbox: %s\n%s",
             env->inbox, driver_yaml);
    cv_yaml_doc_t *doc = cv_yaml_parse("adapter.yaml", text, strlen(text), err, sizeof err);
    if (!doc)
        fail_msg("%s", err);
    return doc;
}

static void s_driver_start(env_t *env, const char *driver_yaml)
{
    char err[512] = "";
    env->doc = s_section(env, driver_yaml);
    cv_client_opts_t opts = { .endpoint = env->endpoint, .hub_public_key = env->hubkey,
                              .secret_key_file = env->secret, .spool_dir = env->spool,
                              .max_event_bytes = 4096, .name = "urbanisme" };
    env->client = cv_client_new(&opts, err, sizeof err);
    if (!env->client)
        fail_msg("client: %s", err);
    cv_driver_ctx_t ctx = { env->doc, cv_yaml_get(env->doc->root, "driver"), env->dir, "urbanisme", env->client };
    env->driver = s_drv()->start(&ctx, err, sizeof err);
    if (!env->driver)
        fail_msg("start: %s", err);
}

/* Runs steps until the driver is idle (waits for its next poll). */
static void s_run(env_t *env, int max_steps)
{
    for (int i = 0; i < max_steps; i++) {
        int wait = s_drv()->step(env->driver);
        assert_true(wait >= 0);
        if (wait > 0)
            return;
    }
}

/* Every record in the spool, in id order, as JSON. */
static json_t *s_spooled(env_t *env)
{
    char err[256];
    cv_spool_t *spool = cv_spool_open(env->spool, NULL, err, sizeof err);
    if (!spool)
        fail_msg("spool: %s", err);
    json_t *all = json_array();
    uint64_t id = 0;
    void *data;
    size_t len;
    while (cv_spool_next_unsettled(spool, id, &id, &data, &len) == 1) {
        json_t *rec = json_loadb(data, len, 0, NULL);
        assert_non_null(rec);
        json_array_append_new(all, rec);
        free(data);
    }
    cv_spool_destroy(&spool);
    return all;
}

static void s_start_fails(env_t *env, const char *driver_yaml, int line, const char *want)
{
    char err[512] = "", prefix[64];
    cv_yaml_doc_t *doc = s_section(env, driver_yaml);
    cv_driver_ctx_t ctx = { doc, cv_yaml_get(doc->root, "driver"), env->dir, "urbanisme", NULL };
    void *d = s_drv()->start(&ctx, err, sizeof err);
    cv_yaml_destroy(&doc);
    if (d)
        fail_msg("started; expected line %d: %s", line, want);
    snprintf(prefix, sizeof prefix, "adapter.yaml:%d: ", line);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, want))
        fail_msg("error '%s' is not '%s...%s'", err, prefix, want);
}

static void test_driver_config_errors(void **state)
{
    env_t *env = *state;
    assert_non_null(cv_driver_find("filedrop"));
    assert_string_equal(s_drv()->kind, "filedrop");
    s_start_fails(env, "  csv: {}\n  colour: blue\n", 6, "unknown key 'colour'");
    s_start_fails(env, "  poll_ms: 0\n  csv: {}\n", 5, "poll_ms");
    s_start_fails(env, "  order: size\n  csv: {}\n", 5, "'order' must be name or mtime");
    s_start_fails(env, "  empty: zero\n  csv: {}\n", 5, "'empty' must be omit, null or keep");
    s_start_fails(env, "  trim: true\n", 1, "needs a 'csv' or an 'xml' section");
    s_start_fails(env, "  csv:\n    separator: \";;\"\n", 6, "'separator' must be one ASCII character");
    s_start_fails(env, "  csv:\n    separator: \"'\"\n    quote: \"'\"\n", 7, "the quote cannot be the separator");
    s_start_fails(env, "  csv:\n    header: false\n", 6, "'columns' must name the columns");
    s_start_fails(env, "  csv:\n    columns: [a, b, a]\n", 6, "column 'a' is named twice");
    s_start_fails(env, "  csv:\n    encoding: ebcdic\n", 6, "unknown encoding 'ebcdic'");
    s_start_fails(env, "  csv:\n    delimiter: \";\"\n", 6, "unknown key 'delimiter'");
    s_start_fails(env, "  xml:\n    match: [\"*.xml\"]\n", 6, "missing required key 'record'");
    s_start_fails(env, "  xml:\n    record: dossier\n    encoding: klingon\n", 7, "unknown encoding 'klingon'");
    s_start_fails(env, "  origin_key: _o\n  origin_fields: [file, colour]\n  csv: {}\n", 6, "unknown origin field 'colour'");
    s_start_fails(env, "  origin_fields: [file]\n  csv: {}\n", 5, "'origin_fields' needs 'origin_key'");
    char yaml[256];
    snprintf(yaml, sizeof yaml, "  csv: {}\n  done_dir: /proc/nope\n");
    s_start_fails(env, yaml, 6, "cannot create done_dir");
    /* the inbox must exist */
    rmdir(env->inbox);
    s_start_fails(env, "  csv: {}\n", 4, "inbox");
    assert_int_equal(mkdir(env->inbox, 0700), 0);
}

static const char *s_driver_yaml =
    "  poll_ms: 10\n"
    "  origin_key: _origine\n"
    "  csv:\n"
    "    match: [\"*.csv\"]\n"
    "    encoding: auto\n"
    "  xml:\n"
    "    record: dossier\n";

static void test_driver_reads_files(void **state)
{
    env_t *env = *state;
    /* b.csv Windows-1252 (auto), a.xml, c.csv truncated, d.txt unknown,
       .e.csv and f.csv.tmp still being written */
    const char *b = "id;nom\r\nB-1;C\x8CUR\r\nB-2;L\x92" "\xE9glise\r\n";
    s_write(env, "b.csv", b, strlen(b));
    const char *a = "<?xml version=\"1.0\"?><export><dossier id=\"A-1\"><nom>CŒUR</nom></dossier></export>";
    s_write(env, "a.xml", a, strlen(a));
    const char *c = "id;nom\nC-1;ok\nC-2;\"SECRET-DUPONT\n";
    s_write(env, "c.csv", c, strlen(c));
    s_write(env, "d.txt", "x", 1);
    s_write(env, ".e.csv", "id\nE-1\n", 7);
    s_write(env, "f.csv.tmp", "id\nF-1\n", 7);
    s_driver_start(env, s_driver_yaml);
    s_run(env, 50);

    /* a.xml then b.csv are submitted (c.csv is refused whole: none of its rows) */
    assert_true(s_exists(env, "a.xml"));        /* not settled: no hub */
    assert_true(s_exists(env, "b.csv"));
    assert_false(s_exists(env, "c.csv"));
    assert_true(s_exists(env, "error/c.csv"));
    char *reason = s_slurp(env, "error/c.csv.reason");
    assert_non_null(reason);
    assert_string_equal(reason, "line 4: the file ends inside the quoted field opened at line 3 (a truncated file?)\n");
    free(reason);
    assert_true(s_exists(env, "error/d.txt"));
    reason = s_slurp(env, "error/d.txt.reason");
    assert_non_null(strstr(reason, "matches neither csv.match nor xml.match"));
    free(reason);
    assert_true(s_exists(env, ".e.csv"));
    assert_true(s_exists(env, "f.csv.tmp"));
    /* the position lists both files, all records submitted */
    cv_filedrop_entry_t *files;
    size_t n;
    assert_int_equal(cv_filedrop_position_decode(cv_client_position(env->client), &files, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(files[0].name, "a.xml");
    assert_int_equal(files[0].done, 1);
    assert_int_equal(files[0].total, 1);
    assert_string_equal(files[1].name, "b.csv");
    assert_int_equal(files[1].done, 2);
    assert_int_equal(files[1].first, 2);
    assert_int_equal(files[1].last, 3);
    cv_filedrop_position_entries_free(&files, &n);
    s_driver_stop(env);

    json_t *spooled = s_spooled(env);
    s_json_is(spooled, "[{\"id\":\"A-1\",\"nom\":\"CŒUR\",\"_origine\":{\"file\":\"a.xml\",\"format\":\"xml\",\"line\":1,\"record\":1}},"
                       " {\"id\":\"B-1\",\"nom\":\"CŒUR\",\"_origine\":{\"file\":\"b.csv\",\"format\":\"csv\",\"line\":2,\"record\":1}},"
                       " {\"id\":\"B-2\",\"nom\":\"L’église\",\"_origine\":{\"file\":\"b.csv\",\"format\":\"csv\",\"line\":3,\"record\":2}}]");
    json_decref(spooled);

    /* a restart finds them waiting for the hub: nothing is read twice */
    s_driver_start(env, s_driver_yaml);
    s_run(env, 50);
    s_driver_stop(env);
    spooled = s_spooled(env);
    assert_int_equal(json_array_size(spooled), 3);
    json_decref(spooled);
}

static void test_driver_resumes_mid_file(void **state)
{
    env_t *env = *state;
    /* 250 rows of about 100 bytes: more than one read of the driver */
    char *big = malloc(64 * 1024);
    size_t len = (size_t) sprintf(big, "id;objet\n");
    for (int i = 1; i <= 250; i++)
        len += (size_t) sprintf(big + len, "R-%d;\"ligne %d de l’objet du dossier, un texte assez long pour "
                                "remplir la ligne\nsuite\"\n", i, i);
    s_write(env, "big.csv", big, len);
    free(big);
    const char *yaml = "  poll_ms: 10\n  batch: 40\n  origin_key: o\n  origin_fields: [record]\n  csv: {}\n";
    s_driver_start(env, yaml);
    /* steps until a part of the file is submitted, then "crash" */
    for (int i = 0; i < 20; i++) {
        s_drv()->step(env->driver);
        cv_filedrop_entry_t *files;
        size_t n;
        const char *pos = cv_client_position(env->client);
        if (pos && cv_filedrop_position_decode(pos, &files, &n) == 0) {
            long done = n ? files[0].done : 0;
            cv_filedrop_position_entries_free(&files, &n);
            if (done > 0)
                break;
        }
    }
    s_driver_stop(env);
    json_t *part = s_spooled(env);
    size_t first_run = json_array_size(part);
    json_decref(part);
    assert_true(first_run > 0 && first_run < 250);

    s_driver_start(env, yaml);
    s_run(env, 200);
    s_driver_stop(env);
    json_t *all = s_spooled(env);
    assert_int_equal(json_array_size(all), 250);           /* each record once */
    for (size_t i = 0; i < 250; i++) {
        json_t *rec = json_array_get(all, i);
        char want[32];
        snprintf(want, sizeof want, "R-%zu", i + 1);
        assert_string_equal(s_str(rec, "id"), want);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(rec, "o"), "record")), (json_int_t) i + 1);
        assert_string_equal(s_str(rec, "objet") + strlen(s_str(rec, "objet")) - 6, "\nsuite");
    }
    json_decref(all);
}

static void test_driver_refuses_large_records_and_changed_files(void **state)
{
    env_t *env = *state;
    /* a record over max_event_bytes (4096 here): the whole file to error/ */
    char *big = malloc(8192);
    int len = sprintf(big, "id;texte\n1;court\n2;");
    memset(big + len, 'x', 5000);
    len += 5000;
    big[len++] = '\n';
    s_write(env, "large.csv", big, (size_t) len);
    free(big);
    /* a position from an earlier run naming a file that was replaced since */
    s_write(env, "n.csv", "id\nN-1\nN-2\n", 11);
    s_driver_start(env, "  poll_ms: 10\n  csv: {}\n");
    cv_filedrop_entry_t old = { .name = "n.csv", .sha = "0123456789abcdef", .done = 1, .total = 2, .first = 1, .last = 1 };
    char *text = cv_filedrop_position_encode(&old, 1);
    assert_int_equal(cv_client_set_position(env->client, text), 0);
    free(text);
    s_driver_stop(env);
    s_driver_start(env, "  poll_ms: 10\n  csv: {}\n");
    s_run(env, 50);
    s_driver_stop(env);
    assert_true(s_exists(env, "error/large.csv"));
    char *reason = s_slurp(env, "error/large.csv.reason");
    assert_non_null(strstr(reason, "line 3: record 2 is "));
    assert_non_null(strstr(reason, "over the limit of 4096 bytes"));
    free(reason);
    json_t *all = s_spooled(env);                   /* n.csv is read whole again */
    s_json_is(all, "[{\"id\":\"N-1\"},{\"id\":\"N-2\"}]");
    json_decref(all);
}

static void test_position_text(void **state)
{
    cv_filedrop_entry_t files[2] = {
        { .name = "dossiers 14-03.csv", .sha = "00112233aabbccdd", .done = 5, .total = 9, .first = 11, .last = 15 },
        { .name = "arrêtés.xml", .sha = "ffeeddccbbaa9988", .done = 0, .total = 0 },
    };
    char *text = cv_filedrop_position_encode(files, 2);
    assert_non_null(text);
    cv_filedrop_entry_t *back;
    size_t n;
    assert_int_equal(cv_filedrop_position_decode(text, &back, &n), 0);
    free(text);
    assert_int_equal(n, 2);
    assert_string_equal(back[0].name, "dossiers 14-03.csv");
    assert_string_equal(back[0].sha, "00112233aabbccdd");
    assert_int_equal(back[0].done, 5);
    assert_int_equal(back[0].total, 9);
    assert_int_equal(back[0].first, 11);
    assert_int_equal(back[0].checked, 11);
    assert_int_equal(back[0].last, 15);
    assert_string_equal(back[1].name, "arrêtés.xml");
    cv_filedrop_position_entries_free(&back, &n);
    assert_null(back);
    assert_int_equal(cv_filedrop_position_decode("cursor=42", &back, &n), -1);
    assert_int_equal(cv_filedrop_position_decode("{\"filedrop\":1,\"files\":[{\"name\":\"../x\",\"sha\":\"0011223344556677\","
                                        "\"done\":0,\"total\":1,\"first\":0,\"last\":0}]}", &back, &n), -1);
}

/* ---- the urbanisme mapping and computed due dates ------------------------ */

/* CSV text of one export row → the record the driver submits (with the
   adapter's origin) → the event the hub stores. */
static json_t *s_csv_event(const cv_mapping_t *m, const char *csv_text, cv_filedrop_encoding_t enc, char *reason, char *detail)
{
    cv_filedrop_csv_opts_t o = s_csv_opts();
    o.encoding = enc;
    json_t *all = s_csv_ok(&o, csv_text);
    assert_int_equal(json_array_size(all), 1);
    json_t *rec = s_rec(all, 0);
    json_object_set_new(rec, "_export", json_pack("{s:s}", "format", "csv"));
    json_t *event = NULL;
    cv_mapping_apply(m, rec, &event, reason, 64, detail, 256);
    json_decref(all);
    return event;
}

static const char *s_field(json_t *event, const char *a, const char *b)
{
    json_t *v = json_object_get(event, a);
    return json_string_value(b ? json_object_get(v, b) : v);
}

static void test_urbanisme_mapping(void **state)
{
    char err[512], reason[64], detail[256];
    cv_mapping_t *m = cv_mapping_load("adapters/urbanisme/mapping.yaml", "urbanisme", err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    /* a Windows-1252 row as the ADS software exports it: a house (PCMI) filed
       14/03/2024: instruction ends 2 months later, midnight Paris time */
    const char *header = "N\xB0 dossier;Type;Nature;Date d\xE9p\xF4t;\xC9tat;Date \xE9tat;Canal;P\xE9titionnaire (id);"
                         "Civilit\xE9;Nom;Pr\xE9nom;Date de naissance;T\xE9l\xE9phone;Courriel;Adresse;Code postal;"
                         "Commune;Adresse du terrain;Surface (m\xB2);Objet\r\n";
    char text[2048];
    snprintf(text, sizeof text, "%sPC 075056 24 00012;PC;PCMI;14/03/2024;En instruction;02/04/2024 09:15;"
             "D\xE9p\xF4t en ligne;PET-00412;M.;Dupont;Jean Pierre;12/05/1971;+33 6 12 34 56 78;"
             "JP.Dupont@Example.fr;12, rue de l\x92\xC9glise;75019;Paris;3 rue de Crim\xE9" "e;124;"
             "\"Construction d\x92une maison \xAB c\xF4t\xE9 jardin \xBB\r\n\x9Cil-de-b\x9Cuf\"\r\n", header);
    json_t *e = s_csv_event(m, text, CV_FILEDROP_ENC_CP1252, reason, detail);
    if (!e)
        fail_msg("%s: %s", reason, detail);
    assert_string_equal(s_field(e, "kind", NULL), "dossier_urbanisme");
    assert_string_equal(s_field(e, "event_id", NULL), "PC 075056 24 00012|En instruction|02/04/2024 09:15");
    assert_string_equal(s_field(e, "status", NULL), "in_progress");
    assert_string_equal(s_field(e, "category", NULL), "permis_construire");
    assert_string_equal(s_field(e, "channel", NULL), "web");
    assert_string_equal(s_field(e, "occurred_at", NULL), "2024-04-02T07:15:00Z");   /* summer time */
    assert_string_equal(s_field(e, "due_at", NULL), "2024-05-13T22:00:00Z");       /* 14/05 00:00 Paris */
    assert_string_equal(s_field(e, "summary", NULL), "Construction d’une maison « côté jardin »\nœil-de-bœuf");
    assert_string_equal(s_field(e, "citizen", "family_name"), "Dupont");
    assert_string_equal(s_field(e, "citizen", "given_names"), "Jean Pierre");
    assert_string_equal(s_field(e, "citizen", "birth_date"), "1971-05-12");
    assert_string_equal(s_field(e, "citizen", "phone"), "+33 6 12 34 56 78");
    assert_string_equal(s_field(e, "citizen", "email"), "jp.dupont@example.fr");
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(e, "citizen"), "address"),
                                                          "line1")), "12, rue de l’Église");
    s_json_is(json_object_get(e, "extra"), "{\"Nature\":\"PCMI\",\"Adresse du terrain\":\"3 rue de Crimée\","
                                           "\"Surface (m²)\":\"124\"}");
    json_decref(e);
    /* the other kinds: DP 1 month, other PC 3 months, CUb 2 months, filed on a 31st */
    const char *kinds[][3] = { { "DP", "DP", "2024-04-29T22:00:00Z" },       /* 31/03 + 1 month = 30/04 */
                               { "PC", "PC", "2024-06-29T22:00:00Z" },       /* 31/03 + 3 months = 30/06 */
                               { "CU", "CUb", "2024-05-30T22:00:00Z" },      /* 31/03 + 2 months = 31/05 */
                               { "CU", "CUa", "2024-04-29T22:00:00Z" } };
    for (int i = 0; i < 4; i++) {
        snprintf(text, sizeof text, "%sX-1;%s;%s;31/03/2024;D\xE9p\xF4t;31/03/2024 10:00;Guichet;;;;;;;;;;;;;\r\n", header,
                 kinds[i][0], kinds[i][1]);
        e = s_csv_event(m, text, CV_FILEDROP_ENC_CP1252, reason, detail);
        if (!e)
            fail_msg("%s: %s: %s", kinds[i][1], reason, detail);
        assert_string_equal(s_field(e, "due_at", NULL), kinds[i][2]);
        assert_string_equal(s_field(e, "status", NULL), "received");
        assert_null(json_object_get(e, "citizen") == json_null() ? NULL : json_object_get(e, "citizen"));
        json_decref(e);
    }
    /* a kind without a time limit: dead-lettered, naming the path, not the value */
    snprintf(text, sizeof text, "%sX-2;PC;SECRET;31/03/2024;D\xE9p\xF4t;31/03/2024 10:00;;;;;;;;;;;;;;\r\n", header);
    assert_null(s_csv_event(m, text, CV_FILEDROP_ENC_CP1252, reason, detail));
    assert_string_equal(reason, "unmapped_value");
    assert_string_equal(detail, "due_at: the value at path 'Nature' ('add') has no entry in 'map' and there is no 'default'");
    /* an XML decision */
    const char *xml = "<?xml version=\"1.0\" encoding=\"windows-1252\"?><ads:export xmlns:ads=\"urn:x\"><ads:arrete "
                      "numero=\"ARR-2024-0042\" date_signature=\"2024-05-02T16:20:00\"><dossier numero=\"PC 075056 24 "
                      "00012\" type=\"PC\" nature=\"PCMI\"/><decision>Accord avec prescriptions</decision>"
                      "<petitionnaire id=\"PET-00412\"><nom>Dupont</nom><prenom>Jean Pierre</prenom>"
                      "<naissance>1971-05-12</naissance></petitionnaire></ads:arrete></ads:export>";
    cv_filedrop_xml_opts_t xo = s_xml_opts();
    xo.record = "arrete";
    json_t *all = s_xml_ok(&xo, xml);
    json_t *rec = s_rec(all, 0);
    json_object_set_new(rec, "_export", json_pack("{s:s}", "format", "xml"));
    assert_int_equal(cv_mapping_apply(m, rec, &e, reason, 64, detail, 256), 0);
    assert_string_equal(s_field(e, "kind", NULL), "decision_urbanisme");
    assert_string_equal(s_field(e, "source_record_id", NULL), "PC 075056 24 00012");
    assert_string_equal(s_field(e, "status", NULL), "resolved");
    assert_string_equal(s_field(e, "occurred_at", NULL), "2024-05-02T14:20:00Z");
    assert_true(json_is_null(json_object_get(e, "due_at")));
    assert_string_equal(s_field(e, "citizen", "given_names"), "Jean Pierre");
    json_decref(e);
    json_decref(all);
    cv_mapping_destroy(&m);
}

/* A mapping with one rule whose due_at is `due_yaml` (indented by 6). */
static cv_mapping_t *s_due_mapping(const char *due_yaml, char *err, size_t errlen)
{
    char path[] = "/tmp/cv-filedrop-mapping-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "mapping_version: 1\nsource: t\nrules:\n  - kind: k\n    fields:\n"
               "      source_record_id: {path: id}\n      service: {const: s}\n      status: {const: received}\n"
               "      occurred_at: {path: date}\n      due_at:\n%s", due_yaml);
    fclose(f);
    cv_mapping_t *m = cv_mapping_load(path, "t", err, errlen);
    unlink(path);
    return m;
}

static const char *s_due(const cv_mapping_t *m, const char *record, char *reason, char *detail)
{
    static char due[64];
    json_t *rec = json_loads(record, 0, NULL), *e = NULL;
    assert_non_null(rec);
    int rc = cv_mapping_apply(m, rec, &e, reason, 64, detail, 256);
    json_decref(rec);
    if (rc < 0)
        return NULL;
    json_t *v = json_object_get(e, "due_at");
    snprintf(due, sizeof due, "%s", json_is_null(v) ? "null" : json_string_value(v));
    json_decref(e);
    return due;
}

static void test_mapping_add(void **state)
{
    char err[512], reason[64], detail[256];
    /* a fixed duration; days and weeks; the time of day and the zone kept */
    cv_mapping_t *m = s_due_mapping("        path: date\n        add: 2 months\n", err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    assert_string_equal(s_due(m, "{\"id\":\"1\",\"date\":\"2023-12-31T10:00\"}", reason, detail), "2024-02-29T09:00:00Z");
    assert_string_equal(s_due(m, "{\"id\":\"1\",\"date\":\"2024-01-30 08:00\"}", reason, detail), "2024-03-30T07:00:00Z");
    /* across the switch to summer time: 31/01 10:00 (+01) + 2 months = 31/03 10:00 (+02) */
    assert_string_equal(s_due(m, "{\"id\":\"1\",\"date\":\"2024-01-31T10:00\"}", reason, detail), "2024-03-31T08:00:00Z");
    cv_mapping_destroy(&m);
    m = s_due_mapping("        path: date\n        add: {path: delai, unit: days, default: 2 weeks}\n", err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    assert_string_equal(s_due(m, "{\"id\":\"1\",\"date\":\"2024-02-20\",\"delai\":\"10\"}", reason, detail),
                        "2024-02-29T23:00:00Z");
    assert_string_equal(s_due(m, "{\"id\":\"1\",\"date\":\"2024-12-25\",\"delai\":15}", reason, detail),
                        "2025-01-08T23:00:00Z");
    assert_string_equal(s_due(m, "{\"id\":\"1\",\"date\":\"2024-02-20\",\"delai\":\" 3 semaines \"}", reason, detail),
                        "2024-03-11T23:00:00Z");
    assert_string_equal(s_due(m, "{\"id\":\"1\",\"date\":\"2024-02-20\"}", reason, detail), "2024-03-04T23:00:00Z");
    assert_string_equal(s_due(m, "{\"id\":\"1\",\"date\":\"2024-02-20\",\"delai\":\"1 an\"}", reason, detail),
                        "2025-02-19T23:00:00Z");
    assert_null(s_due(m, "{\"id\":\"1\",\"date\":\"2024-02-20\",\"delai\":\"SECRET jours\"}", reason, detail));
    assert_string_equal(reason, "bad_date");
    assert_string_equal(detail, "due_at: the value at path 'delai' ('add') is not a duration such as '2 months' or a number");
    assert_null(s_due(m, "{\"id\":\"1\",\"date\":\"2024-02-20\",\"delai\":{\"a\":1}}", reason, detail));
    assert_string_equal(reason, "bad_type");
    cv_mapping_destroy(&m);
    /* a missing duration: the date is missing (null), or missing_field when required */
    m = s_due_mapping("        path: date\n        add: {path: nature, map: {DP: 1 month}}\n", err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    assert_string_equal(s_due(m, "{\"id\":\"1\",\"date\":\"2024-02-20\"}", reason, detail), "null");
    assert_string_equal(s_due(m, "{\"id\":\"1\",\"date\":\"2024-02-20\",\"nature\":\"DP\"}", reason, detail),
                        "2024-03-19T23:00:00Z");
    cv_mapping_destroy(&m);
    m = s_due_mapping("        path: date\n        required: true\n        add: {join: [a, b], map: {x|y: 1 day}}\n",
                      err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    assert_null(s_due(m, "{\"id\":\"1\",\"date\":\"2024-02-20\",\"a\":\"x\"}", reason, detail));
    assert_string_equal(reason, "missing_field");
    assert_string_equal(detail, "due_at: join part 'b' ('add') is missing");
    assert_string_equal(s_due(m, "{\"id\":\"1\",\"date\":\"2024-02-28T12:00:00+01:00\",\"a\":\"x\",\"b\":\"y\"}",
                              reason, detail), "2024-02-29T11:00:00Z");
    cv_mapping_destroy(&m);

    /* load errors name the line */
    const struct { const char *yaml; const char *want; } bad[] = {
        { "        path: date\n        add: 2 moons\n", ":12: 'add' of field 'due_at': '2 moons' is not a duration" },
        { "        path: date\n        add: {path: n, map: {DP: 1 mois, PC: trois mois}}\n",
          ":12: 'add' of field 'due_at': 'trois mois' is not a duration" },
        { "        path: date\n        add: {path: n, unit: fortnights}\n", ":12: 'add' of field 'due_at': 'unit' must be" },
        { "        path: date\n        add: {path: n, hash: record}\n", ":12: unknown key 'hash'" },
        { "        path: date\n        add: {const: 12}\n", ":12: 'add' of field 'due_at': '12' is not a duration" },
        { "        path: date\n        add: {path: n, default: 1234567 days}\n", "is not a duration" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        m = s_due_mapping(bad[i].yaml, err, sizeof err);
        if (m)
            fail_msg("loaded: %s", bad[i].yaml);
        if (!strstr(err, bad[i].want))
            fail_msg("error '%s' lacks '%s'", err, bad[i].want);
    }
    /* only date-times */
    char path[] = "/tmp/cv-filedrop-mapping-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "mapping_version: 1\nsource: t\nrules:\n  - kind: k\n    fields:\n      source_record_id: {path: id}\n"
               "      service: {const: s}\n      status: {const: received}\n      occurred_at: {path: date}\n"
               "      citizen.birth_date: {path: n, add: 1 year}\n");
    fclose(f);
    assert_null(cv_mapping_load(path, "t", err, sizeof err));
    unlink(path);
    assert_non_null(strstr(err, ":10: 'add' only applies to date-times (occurred_at, due_at)"));
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encodings),
        cmocka_unit_test(test_csv_french_export),
        cmocka_unit_test(test_csv_windows_1252),
        cmocka_unit_test(test_csv_values_and_shapes),
        cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_csv_emit_can_stop),
        cmocka_unit_test(test_xml_records),
        cmocka_unit_test(test_xml_windows_1252),
        cmocka_unit_test(test_xml_errors),
        cmocka_unit_test(test_position_text),
        cmocka_unit_test(test_urbanisme_mapping),
        cmocka_unit_test(test_mapping_add),
        cmocka_unit_test_setup_teardown(test_driver_config_errors, s_env_setup, s_env_teardown),
        cmocka_unit_test_setup_teardown(test_driver_reads_files, s_env_setup, s_env_teardown),
        cmocka_unit_test_setup_teardown(test_driver_resumes_mid_file, s_env_setup, s_env_teardown),
        cmocka_unit_test_setup_teardown(test_driver_refuses_large_records_and_changed_files, s_env_setup,
                                        s_env_teardown),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
