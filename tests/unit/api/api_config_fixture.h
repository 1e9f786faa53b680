/*  api_config_fixture — the API's configuration loaded from a text, for the
    unit tests of its keys (test_api_limits.c, test_api_tls.c): the text
    written to a mkstemp file, loaded, the file removed; and the check that
    a text is refused with a reason. Include after cmocka and <unistd.h>. */
#ifndef API_CONFIG_FIXTURE_H
#define API_CONFIG_FIXTURE_H

#include "api_config.h"

static cv_api_config_t *s_config(const char *text, char *err, size_t errlen)
{
    char path[] = "/tmp/test_api_config.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
    close(fd);
    cv_api_config_t *cfg = cv_api_config_load(path, err, errlen);
    unlink(path);
    return cfg;
}

/* text is refused, with expect in the reason */
static void s_config_error(const char *text, const char *expect)
{
    char err[512] = "";
    cv_api_config_t *cfg = s_config(text, err, sizeof err);
    if (cfg)
        fail_msg("accepted: %s", text);
    if (!strstr(err, expect))
        fail_msg("expected '%s' in '%s'", expect, err);
}

#endif
