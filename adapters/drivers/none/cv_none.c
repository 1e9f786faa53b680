/*  driver_none — `driver: {kind: none}`: an adapter that reads nothing.

    For an adapter that only performs outbound commands (the `commands:`
    section of adapter.yaml, docs/commands.md): the run loop keeps the hub
    connection alive and the client performs the commands the hub sends;
    the driver itself has no records to read. Its section takes no key
    besides `kind` and `source`. */
#include "runtime/cv_driver.h"

#include <stdlib.h>

typedef struct {
    int unused;
} none_t;

static void *s_start(const cv_driver_ctx_t *ctx, char *err, size_t errlen)
{
    static const char *const keys[] = { "kind", "source", NULL };
    if (cv_yaml_check_keys(ctx->doc, ctx->conf, keys, "'driver' (kind none)", err, errlen) < 0)
        return NULL;
    return calloc(1, sizeof(none_t));
}

static int s_step(void *self)
{
    return 1000;                 /* nothing to read: the client polls meanwhile */
}

static void s_stop(void **self_p)
{
    free(*self_p);
    *self_p = NULL;
}

const cv_driver_t cv_none_driver = { "none", s_start, s_step, s_stop };
