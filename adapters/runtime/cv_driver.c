/*  cv_driver — the table of drivers. Each driver lives in its own file
    (cv_rest.c, cv_webhook.c, cv_filedrop.c, cv_none.c, cv_imap.c)
    and defines one cv_driver_t. They are declared weak here so that the
    table only holds the drivers that this build links. */
#include "cv_driver.h"

#include <stdio.h>
#include <string.h>

extern const cv_driver_t cv_rest_driver __attribute__((weak));
extern const cv_driver_t cv_webhook_driver __attribute__((weak));
extern const cv_driver_t cv_filedrop_driver __attribute__((weak));
extern const cv_driver_t cv_none_driver __attribute__((weak));
extern const cv_driver_t cv_imap_driver __attribute__((weak));

#define NDRIVERS 5

static const cv_driver_t *s_table(size_t i)
{
    const cv_driver_t *all[NDRIVERS] = { &cv_rest_driver, &cv_webhook_driver, &cv_filedrop_driver,
                                         &cv_none_driver, &cv_imap_driver };
    return i < sizeof all / sizeof *all ? all[i] : NULL;
}

const cv_driver_t *cv_driver_find(const char *kind)
{
    for (size_t i = 0; i < NDRIVERS; i++) {
        const cv_driver_t *d = s_table(i);
        if (d && strcmp(d->kind, kind) == 0)
            return d;
    }
    return NULL;
}

const char *cv_driver_kinds(void)
{
    static char kinds[64];
    kinds[0] = '\0';
    for (size_t i = 0; i < NDRIVERS; i++) {
        const cv_driver_t *d = s_table(i);
        if (d)
            snprintf(kinds + strlen(kinds), sizeof kinds - strlen(kinds), "%s%s", kinds[0] ? ", " : "", d->kind);
    }
    return kinds[0] ? kinds : "(none)";
}
