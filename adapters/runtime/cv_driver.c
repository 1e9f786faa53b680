/*  cv_driver — the table of drivers. Each driver lives in its own file
    (driver_rest.c, driver_webhook.c, driver_filedrop.c, driver_none.c)
    and defines one cv_driver_t. They are declared weak here so that the
    table only holds the drivers that this build links. */
#include "cv_driver.h"

#include <stdio.h>
#include <string.h>

extern const cv_driver_t cv_driver_rest __attribute__((weak));
extern const cv_driver_t cv_driver_webhook __attribute__((weak));
extern const cv_driver_t cv_driver_filedrop __attribute__((weak));
extern const cv_driver_t cv_driver_none __attribute__((weak));

#define NDRIVERS 4

static const cv_driver_t *s_table(size_t i)
{
    const cv_driver_t *all[NDRIVERS] = { &cv_driver_rest, &cv_driver_webhook, &cv_driver_filedrop,
                                         &cv_driver_none };
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
