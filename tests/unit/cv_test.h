/*  cv_test — one test per process, as libuv's runner does.

    Every unit-test program's main goes through these few calls:

        int main(int argc, char **argv)
        {
            cv_test_begin(argc, argv);
            const struct CMUnitTest tests[] = { ... };
            return cv_test_end(cv_test_group(tests, setup, teardown));
        }

    `test_x --list` prints the names of its tests, one a line; `test_x NAME`
    runs that test alone (with its group's setup and teardown), exit 2 when
    there is no such test; `test_x` alone runs them all. tests/run.sh lists
    each program and runs each test in a process of its own under its own
    timeout, so a test that hangs or crashes is named, and no test sees what
    another left behind. Included by test files only. */
#ifndef CV_TEST_H
#define CV_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static const char *cv_test__only;       /* the one test to run, or NULL */
static bool cv_test__listing, cv_test__found;

static inline void cv_test_begin(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--list") == 0)
        cv_test__listing = true;
    else if (argc >= 2)
        cv_test__only = argv[1];
}

static inline int cv_test__group(const char *name, const struct CMUnitTest *tests, size_t n,
                                 CMFixtureFunction setup, CMFixtureFunction teardown)
{
    if (cv_test__listing) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    if (cv_test__only) {
        bool here = false;
        for (size_t i = 0; i < n && !here; i++)
            here = strcmp(tests[i].name, cv_test__only) == 0;
        if (!here)
            return 0;                   /* another group's test: nothing of this one runs */
        cv_test__found = true;
        cmocka_set_test_filter(cv_test__only);
    }
    return _cmocka_run_group_tests(name, tests, n, setup, teardown);
}

#define cv_test_group(tests, setup, teardown) \
    cv_test__group(#tests, (tests), sizeof(tests) / sizeof((tests)[0]), (setup), (teardown))

static inline int cv_test_end(int failed)
{
    if (cv_test__only && !cv_test__found) {
        fprintf(stderr, "no test named %s (--list lists them)\n", cv_test__only);
        return 2;
    }
    return failed;
}

#endif
