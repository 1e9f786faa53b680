/*  hub_rules — see cv_hub_rules.h. */
#include "cv_hub_rules.h"

#include <stdio.h>
#include <stdlib.h>

#include "cv_alloc.h"
#include "cv_log.h"
#include "deadlines/cv_deadlines.h"
#include "identity/cv_idsources.h"
#include "routing/cv_routing.h"

struct cv_hub_rules {
    char *deadlines;            /* cv_deadlines_load's JSON, NULL = no file */
    size_t ndeadlines;
    char *routes;               /* cv_routing_load's JSON, NULL = no file */
    size_t nroutes;
};

cv_hub_rules_t *cv_hub_rules_load(const cv_hub_config_t *config, char *err, size_t errlen)
{
    cv_hub_rules_t *self = cv_zcalloc(1, sizeof *self);
    if (config->deadlines_path
        && !(self->deadlines = cv_deadlines_load(config->deadlines_path, &self->ndeadlines, err, errlen))) {
        cv_hub_rules_destroy(&self);
        return NULL;
    }
    if (config->routing_path) {
        /* the live sources: routing may not name a removed one */
        const char *names[CV_MAX_SOURCES];
        size_t n = 0;
        for (size_t i = 0; i < config->nsources && n < CV_MAX_SOURCES; i++)
            if (!config->sources[i].removed)
                names[n++] = config->sources[i].name;
        if (!(self->routes = cv_routing_load(config->routing_path, names, n, &self->nroutes, err, errlen))) {
            cv_hub_rules_destroy(&self);
            return NULL;
        }
    }
    return self;
}

void cv_hub_rules_destroy(cv_hub_rules_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->deadlines);
    free((*self_p)->routes);
    free(*self_p);
    *self_p = NULL;
}

int cv_hub_rules_apply(const cv_hub_rules_t *self, const cv_hub_config_t *config, char *err, size_t errlen)
{
    long moved = 0;
    if (cv_deadlines_apply(config->conninfo, self->deadlines, &moved, err, errlen) < 0)
        return -1;
    if (config->deadlines_path)
        cv_info("hub", "deadlines: %zu rules from %s (%ld due dates moved)", self->ndeadlines,
                config->deadlines_path, moved);
    if (cv_routing_apply(config->conninfo, self->routes, err, errlen) < 0)
        return -1;
    if (config->routing_path)
        cv_info("hub", "routing: %zu rules from %s", self->nroutes, config->routing_path);
    size_t changed = 0;
    if (cv_idsources_apply(config->conninfo, config, &changed, err, errlen) < 0)
        return -1;
    if (changed)
        cv_info("hub", "identity: %zu sources' levels set from the configuration", changed);
    return cv_idsources_apply_files(config->conninfo, config, err, errlen);
}
