/*  test_filedrop_report — what the file-drop driver says of a settled file
    (adapters/drivers/filedrop/cv_filedrop_report.c): the tally of ACKs and
    NACKs by reason code (codes cleaned, bounded, "other"), the top
    reasons, a file's outcome (done, partly dead, dead), the line logged,
    the sidecar, the header hint, the metrics text and file, and the settled files
    remembered to tell a copy. The
    driver end to end is tests/it/filedrop_truth.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/filedrop/cv_filedrop.h"

static void s_settle(cv_filedrop_tally_t *t, long acked, const char *reason, long n)
{
    for (long i = 0; i < acked; i++)
        cv_filedrop_tally_settle(t, true, NULL);
    for (long i = 0; i < n; i++)
        cv_filedrop_tally_settle(t, false, reason);
}

static void test_tally(void **state)
{
    (void) state;
    cv_filedrop_tally_t t = { 0 };
    s_settle(&t, 7, "bad_date", 2);
    s_settle(&t, 0, "missing_field", 3);
    s_settle(&t, 0, "bad date; DROP", 1);      /* cleaned: safe in a log, a file, a label */
    s_settle(&t, 0, "", 1);
    s_settle(&t, 0, NULL, 1);
    assert_int_equal(t.acked, 7);
    assert_int_equal(t.dead, 8);
    assert_int_equal(t.nreasons, 4);
    assert_string_equal(t.reasons[2].code, "bad_date__DROP");
    assert_string_equal(t.reasons[3].code, "?");
    assert_int_equal(t.reasons[3].n, 2);

    /* more distinct codes than the table holds: the last slot is "other" */
    cv_filedrop_tally_t u = { 0 };
    char code[32];
    for (int i = 0; i < 12; i++) {
        snprintf(code, sizeof code, "code_%02d", i);
        s_settle(&u, 0, code, i + 1);
    }
    assert_int_equal(u.nreasons, CV_FILEDROP_FILE_REASONS);
    assert_string_equal(u.reasons[CV_FILEDROP_FILE_REASONS - 1].code, "other");
    assert_int_equal(u.reasons[CV_FILEDROP_FILE_REASONS - 1].n, 8 + 9 + 10 + 11 + 12);
    assert_int_equal(u.dead, 78);

    /* the longest code is cut, not overflowed */
    cv_filedrop_tally_t v = { 0 };
    s_settle(&v, 0, "a_very_long_reason_code_that_goes_on_and_on", 1);
    assert_int_equal(strlen(v.reasons[0].code), CV_FILEDROP_REASON_LEN - 1);

    cv_filedrop_reason_t top[3];
    size_t n = cv_filedrop_tally_top(t.reasons, t.nreasons, top, 3);
    assert_int_equal(n, 3);
    assert_string_equal(top[0].code, "missing_field");
    assert_string_equal(top[1].code, "?");          /* 2, before bad_date by code */
    assert_string_equal(top[2].code, "bad_date");
    assert_int_equal(top[2].n, 2);
}

static void test_outcome_and_line(void **state)
{
    (void) state;
    char line[600];
    cv_filedrop_tally_t t = { 0 };
    s_settle(&t, 5, NULL, 0);
    cv_filedrop_settled_t f = { 5, 0, false, &t };
    assert_int_equal(cv_filedrop_report_outcome(&f), CV_FILEDROP_OUT_DONE);
    cv_filedrop_report_line(&f, line, sizeof line);
    assert_string_equal(line, "5 records: 5 stored, 0 duplicates, 0 dead-lettered");
    f.copy = true;                                 /* the same content as a settled file */
    cv_filedrop_report_line(&f, line, sizeof line);
    assert_string_equal(line, "5 records: 0 stored, 5 duplicates, 0 dead-lettered");
    assert_int_equal(cv_filedrop_report_duplicates(&f), 5);
    assert_int_equal(cv_filedrop_report_stored(&f), 0);

    /* a CIVIBUS/1.1 hub says, per record, stored or already stored: a file
       re-dropped with 3 new lines is 3 stored, the rest duplicates, and an
       id sent again with another content is a dead letter */
    cv_filedrop_tally_t k = { 0 };
    for (int i = 0; i < 3; i++)
        cv_filedrop_tally_settle(&k, true, "stored");
    for (int i = 0; i < 5; i++)
        cv_filedrop_tally_settle(&k, true, "duplicate");
    cv_filedrop_tally_settle(&k, true, "id_reused");
    cv_filedrop_settled_t kf = { 9, 0, false, &k };
    cv_filedrop_report_line(&kf, line, sizeof line);
    assert_string_equal(line, "9 records: 3 stored, 5 duplicates, 1 dead-lettered (id_reused 1)");
    assert_int_equal(cv_filedrop_report_outcome(&kf), CV_FILEDROP_OUT_PARTLY);
    kf.copy = true;                                /* told: the copy guess is not used */
    assert_int_equal(cv_filedrop_report_stored(&kf), 3);
    assert_int_equal(cv_filedrop_report_duplicates(&kf), 5);

    cv_filedrop_tally_t p = { 0 };                 /* partly dead */
    s_settle(&p, 6, "bad_date", 2);
    s_settle(&p, 0, "missing_field", 1);
    s_settle(&p, 0, "unmapped_value", 1);
    s_settle(&p, 0, "no_rule", 1);
    cv_filedrop_settled_t g = { 12, 1, false, &p };
    assert_int_equal(cv_filedrop_report_outcome(&g), CV_FILEDROP_OUT_PARTLY);
    cv_filedrop_report_line(&g, line, sizeof line);
    assert_string_equal(line, "12 records: 6 stored, 0 duplicates, 5 dead-lettered (bad_date 2, missing_field 1, "
                              "no_rule 1, ...), 1 refused (larger than max_event_bytes)");

    cv_filedrop_tally_t d = { 0 };                 /* every record dead */
    s_settle(&d, 0, "missing_field", 10000);
    cv_filedrop_settled_t h = { 10000, 0, false, &d };
    assert_int_equal(cv_filedrop_report_outcome(&h), CV_FILEDROP_OUT_DEAD);
    cv_filedrop_report_line(&h, line, sizeof line);
    assert_string_equal(line, "10000 records: 0 stored, 0 duplicates, 10000 dead-lettered (missing_field 10000)");

    /* after a restart some were settled by the earlier run: not known, so not "dead" */
    cv_filedrop_settled_t r = { 10004, 0, false, &d };
    assert_int_equal(cv_filedrop_report_unknown(&r), 4);
    assert_int_equal(cv_filedrop_report_outcome(&r), CV_FILEDROP_OUT_PARTLY);
    cv_filedrop_report_line(&r, line, sizeof line);
    assert_non_null(strstr(line, ", 4 settled before a restart (not counted)"));

    cv_filedrop_tally_t z = { 0 };                 /* refused only, or empty */
    cv_filedrop_settled_t refused = { 2, 2, false, &z }, empty = { 0, 0, false, &z };
    assert_int_equal(cv_filedrop_report_outcome(&refused), CV_FILEDROP_OUT_DEAD);
    assert_int_equal(cv_filedrop_report_outcome(&empty), CV_FILEDROP_OUT_DONE);

    char small[24];                                /* cut, terminated */
    cv_filedrop_report_line(&g, small, sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);
}

static void test_sidecar(void **state)
{
    (void) state;
    char text[2048];
    cv_filedrop_tally_t t = { 0 };
    s_settle(&t, 3, "bad_date", 2);
    s_settle(&t, 0, "missing_field", 4);
    cv_filedrop_settled_t f = { 9, 0, false, &t };
    cv_filedrop_report_sidecar(&f, "the summary", text, sizeof text);
    assert_string_equal(text, "summary: the summary\nrecords: 9\nstored: 3\nduplicates: 0\ndead: 6\nrefused: 0\n"
                              "unknown: 0\nreason missing_field: 4\nreason bad_date: 2");
}

static void test_header_hint(void **state)
{
    (void) state;
    char hint[300];
    const char *comma[] = { "id,statut,date" }, *tab[] = { "id\tstatut" }, *semi[] = { "id;statut" };
    const char *pipe[] = { "id|statut" }, *plain[] = { "identifiant" }, *two[] = { "id,x", "statut" };
    assert_true(cv_filedrop_report_header_hint(comma, 1, ';', hint, sizeof hint));
    assert_string_equal(hint, "the header reads as one column but contains ','; is `separator: ','` missing in "
                              "the adapter config?");
    assert_true(cv_filedrop_report_header_hint(tab, 1, ';', hint, sizeof hint));
    assert_non_null(strstr(hint, "contains a tab; is `separator: tab` missing"));
    assert_true(cv_filedrop_report_header_hint(semi, 1, ',', hint, sizeof hint));
    assert_non_null(strstr(hint, "`separator: ';'`"));
    assert_true(cv_filedrop_report_header_hint(pipe, 1, ';', hint, sizeof hint));
    assert_non_null(strstr(hint, "`separator: '|'`"));
    assert_false(cv_filedrop_report_header_hint(plain, 1, ';', hint, sizeof hint));
    assert_false(cv_filedrop_report_header_hint(two, 2, ';', hint, sizeof hint));
    assert_false(cv_filedrop_report_header_hint(NULL, 0, ';', hint, sizeof hint));
}

static void test_metrics(void **state)
{
    (void) state;
    cv_filedrop_metrics_t m = { 0 };
    cv_filedrop_tally_t a = { 0 }, b = { 0 }, c = { 0 };
    s_settle(&a, 5, NULL, 0);
    s_settle(&b, 3, "bad_date", 2);
    s_settle(&c, 0, "missing_field", 4);
    s_settle(&c, 0, "bad_date", 1);
    cv_filedrop_settled_t fa = { 5, 0, false, &a }, fb = { 5, 0, false, &b }, fc = { 5, 0, false, &c };
    cv_filedrop_settled_t copy = { 5, 0, true, &a };
    cv_filedrop_metrics_add(&m, &fa, cv_filedrop_report_outcome(&fa));
    cv_filedrop_metrics_add(&m, &fb, cv_filedrop_report_outcome(&fb));
    cv_filedrop_metrics_add(&m, &fc, cv_filedrop_report_outcome(&fc));
    cv_filedrop_metrics_add(&m, &copy, cv_filedrop_report_outcome(&copy));
    cv_filedrop_metrics_add(&m, NULL, CV_FILEDROP_OUT_UNREADABLE);
    char *text = cv_filedrop_metrics_text(&m, "urbanisme");
    assert_non_null(text);
    const char *want[] = {
        "# TYPE civibus_filedrop_files_total counter\n",
        "\ncivibus_filedrop_files_total{source=\"urbanisme\",outcome=\"done\"} 2\n",
        "\ncivibus_filedrop_files_total{source=\"urbanisme\",outcome=\"partly_dead\"} 1\n",
        "\ncivibus_filedrop_files_total{source=\"urbanisme\",outcome=\"dead\"} 1\n",
        "\ncivibus_filedrop_files_total{source=\"urbanisme\",outcome=\"unreadable\"} 1\n",
        "\ncivibus_filedrop_records_total{source=\"urbanisme\",outcome=\"stored\"} 8\n",
        "\ncivibus_filedrop_records_total{source=\"urbanisme\",outcome=\"duplicate\"} 5\n",
        "\ncivibus_filedrop_records_total{source=\"urbanisme\",outcome=\"dead\"} 7\n",
        "\ncivibus_filedrop_dead_records_total{source=\"urbanisme\",reason=\"bad_date\"} 3\n",
        "\ncivibus_filedrop_dead_records_total{source=\"urbanisme\",reason=\"missing_field\"} 4\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (!strstr(text, want[i]))
            fail_msg("metrics lack %s in:\n%s", want[i], text);

    char dir[] = "/tmp/cv-filedrop-metrics-XXXXXX", path[128], back[8192];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/filedrop.prom", dir);
    assert_int_equal(cv_filedrop_metrics_write(path, text), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(back, 1, sizeof back - 1, f);
    back[n] = '\0';
    fclose(f);
    assert_string_equal(back, text);
    snprintf(back, sizeof back, "%s/filedrop.prom.tmp", dir);
    assert_int_not_equal(access(back, F_OK), 0);   /* written aside, then renamed */
    snprintf(back, sizeof back, "%s/missing/filedrop.prom", dir);
    assert_int_equal(cv_filedrop_metrics_write(back, text), -1);
    unlink(path);
    rmdir(dir);
    free(text);
}

static void test_history(void **state)
{
    (void) state;
    cv_filedrop_history_t h = { 0 };
    assert_null(cv_filedrop_history_find(&h, "0123456789abcdef", NULL));
    cv_filedrop_history_add(&h, "0123456789abcdef", "a.csv");
    assert_string_equal(cv_filedrop_history_find(&h, "0123456789abcdef", NULL), "a.csv");
    assert_string_equal(cv_filedrop_history_find(&h, "0123456789abcdef", "a.csv"), "a.csv");
    assert_null(cv_filedrop_history_find(&h, "0123456789abcdef", "b.csv"));   /* named records differ */
    assert_null(cv_filedrop_history_find(&h, "fedcba9876543210", NULL));
    char sha[17], name[32];
    for (int i = 0; i < CV_FILEDROP_HISTORY; i++) {          /* the oldest is forgotten */
        snprintf(sha, sizeof sha, "%016d", i);
        snprintf(name, sizeof name, "f%d.csv", i);
        cv_filedrop_history_add(&h, sha, name);
    }
    assert_null(cv_filedrop_history_find(&h, "0123456789abcdef", NULL));
    assert_string_equal(cv_filedrop_history_find(&h, "0000000000000063", NULL), "f63.csv");
    assert_string_equal(cv_filedrop_history_find(&h, "0000000000000000", NULL), "f0.csv");
    cv_filedrop_history_free(&h);
    assert_int_equal(h.n, 0);
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tally),
        cmocka_unit_test(test_outcome_and_line),
        cmocka_unit_test(test_sidecar),
        cmocka_unit_test(test_header_hint),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_history),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
