/*  reload — SIGHUP: the hub reads its configuration file again, without a
    restart, and applies what can change while it runs.

    Applied: sources added (their keys let in, counted in /metrics, their
    commands delivered), sources removed (their keys refused from the next
    handshake, their open session ended, their slot kept so that nothing
    indexed by source moves; pending commands wait for them), keys added,
    rotated or removed (a session is ended when one of its source's keys
    goes, so its adapter reconnects with a key still listed or is refused),
    mappings read again, identity levels and attachments flags, the routing
    and deadline files. Everything else (PostgreSQL, listening addresses,
    the hub's certificate, store, limits, protocol, commands and identity
    settings) needs a restart: a reload names what differs and keeps the
    running values.

    All or nothing: the file, every mapping and the routing and deadline
    files are loaded and checked first; any error ("file:line: reason") is
    logged and the running configuration stays whole. The work is done on
    the ingest thread between two turns of its loop; the other threads see
    only appended sources (the commander is told the new count, /metrics
    publishes a slot once it is written). A batch in flight keeps its
    events, which no longer refer to any mapping. */
#include "cv_ingest_int.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_auth.h"
#include "cv_hub_rules.h"
#include "cv_log.h"

static volatile sig_atomic_t s_requested;

void cv_ingest_request_reload(int signum)
{
    (void) signum;
    s_requested = 1;
}

bool cv_ingest__reload_requested(void)
{
    return s_requested != 0;
}

static cv_source_conf_t *s_find(cv_hub_config_t *config, const char *name)
{
    for (size_t i = 0; i < config->nsources; i++)
        if (strcmp(config->sources[i].name, name) == 0)
            return &config->sources[i];
    return NULL;
}

/* Whether every key of a is still among b's. */
static bool s_keys_kept(const cv_source_conf_t *a, const cv_source_conf_t *b)
{
    for (int i = 0; i < a->nkeys; i++) {
        bool found = false;
        for (int k = 0; k < b->nkeys && !found; k++)
            found = strcmp(a->keys[i], b->keys[k]) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* Takes over fresh's keys, mapping and flags (fresh gets the old mapping,
   freed with it). */
static void s_take(cv_source_conf_t *live, cv_source_conf_t *fresh)
{
    memcpy(live->keys, fresh->keys, sizeof live->keys);
    live->nkeys = fresh->nkeys;
    cv_mapping_t *m = live->mapping;
    live->mapping = fresh->mapping;
    fresh->mapping = m;
    char *path = live->mapping_path;
    live->mapping_path = fresh->mapping_path;
    fresh->mapping_path = path;
    live->certainty = fresh->certainty;
    live->files = fresh->files;
    live->removed = false;
}

/* The paths of the routing and deadline files move to the live config. */
static void s_swap_path(char **live, char **fresh)
{
    char *p = *live;
    *live = *fresh;
    *fresh = p;
}

void cv_ingest__reload(cv_ingest_t *self)
{
    s_requested = 0;
    cv_hub_config_t *live = self->config;
    char err[1024] = "";
    cv_info("reload", "SIGHUP: reading %s again", live->file);
    cv_hub_config_t *fresh = cv_hub_config_load(live->file, err, sizeof err);
    cv_hub_rules_t *rules = fresh ? cv_hub_rules_load(fresh, err, sizeof err) : NULL;
    if (!rules) {
        cv_error("reload", "%s: the running configuration is kept", err);
        cv_hub_config_destroy(&fresh);
        return;
    }
    size_t room = CV_MAX_SOURCES - live->nsources;
    for (size_t j = 0; j < fresh->nsources; j++)
        if (!s_find(live, fresh->sources[j].name) && room-- == 0) {
            cv_error("reload", "%s: more than %d sources since start-up (removed ones included): "
                     "restart the hub; the running configuration is kept", live->file, CV_MAX_SOURCES);
            cv_hub_rules_destroy(&rules);
            cv_hub_config_destroy(&fresh);
            return;
        }
    char diff[512];
    if (cv_hub_config_restart_diff(live, fresh, diff, sizeof diff) > 0)
        cv_warn("reload", "changed, but only a restart applies it (the running value is kept): %s", diff);

    int removed = 0, rekeyed = 0, added = 0;
    for (size_t i = 0; i < live->nsources; i++) {
        cv_source_conf_t *s = &live->sources[i];
        cv_source_conf_t *f = s_find(fresh, s->name);
        if (!f) {
            if (!s->removed) {
                s->removed = true;
                s->nkeys = 0;
                cv_ingest__end_session(self, (int) i, "ended: its source was removed from the configuration");
                cv_info("reload", "source %s removed: its adapter's keys are refused from now on", s->name);
                removed++;
            }
            continue;
        }
        bool kept = s_keys_kept(s, f);
        if (!kept || f->nkeys != s->nkeys)
            rekeyed++;
        if (s->removed)
            cv_info("reload", "source %s is back", s->name);
        s_take(s, f);
        if (!kept)
            cv_ingest__end_session(self, (int) i, "ended: a key of its source was removed");
    }
    for (size_t j = 0; j < fresh->nsources; j++) {
        cv_source_conf_t *f = &fresh->sources[j];
        if (s_find(live, f->name))
            continue;
        cv_source_conf_t *s = &live->sources[live->nsources];
        memset(s, 0, sizeof *s);
        s->name = f->name;
        f->name = cv_zstrdup(s->name);     /* fresh frees its own copy */
        s_take(s, f);
        live->nsources++;
        cv_metrics_add_source(self->metrics, s->name);
        cv_info("reload", "source %s added", s->name);
        added++;
    }
    if (added)
        cv_commander_sources(self->commander, live->nsources);
    if (cv_auth_refresh(self->auth, live, err, sizeof err) < 0)
        cv_error("reload", "CURVE keys: %s (the keys read at the last reload stay in force)", err);
    s_swap_path(&live->routing_path, &fresh->routing_path);
    s_swap_path(&live->deadlines_path, &fresh->deadlines_path);
    if (cv_hub_rules_apply(rules, live, err, sizeof err) < 0)
        cv_error("reload", "%s: routing, deadlines or identity levels not all written; SIGHUP again once "
                 "PostgreSQL answers", err);
    cv_hub_rules_destroy(&rules);
    cv_hub_config_destroy(&fresh);
    cv_info("reload", "done: %zu sources (%d added, %d removed, %d with changed keys), mappings read again",
            live->nsources, added, removed, rekeyed);
}
