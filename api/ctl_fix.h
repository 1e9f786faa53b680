/*  ctl_fix — `civibusctl dead-letters ...` and `civibusctl remap`: fixing what
    was stored after a source's mapping was corrected (docs/operations.md,
    "Fixing what was stored").

    Both commands read the HUB's configuration (--hub-config FILE, the file
    civibus-hub runs with): its PostgreSQL connection (the hub's role, which
    may write the timeline) and the source's current mapping, loaded with the
    hub's own code (hub/cv_hub_config.c, hub/map). What they store goes
    through the hub's store (hub/store/cv_store.c, cv_ingest): the same
    canonical event, event id and content hash as if the hub had received
    the record now. `dead-letters list` needs no hub config: without one it
    uses civibusctl's --config connection or the PG* environment.

    Nothing here prints a payload or a field's value: counts, ids, reason
    codes and the mapping's details (which name field paths only). */
#ifndef CTL_FIX_H
#define CTL_FIX_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "cv_hub_config.h"
#include "store/cv_store.h"

/* argv[0] is "dead-letters" or "remap"; conninfo is civibusctl's --config
   connection or NULL. Exit codes: 0 ok, 1 database error, 2 usage. */
int cv_ctl_fix_main(const char *conninfo, int argc, char **argv);

/* ---- shared by ctl_deadletters.c and ctl_remap.c ---- */

typedef struct {
    cv_hub_config_t *config;
    const cv_source_conf_t *source;
    PGconn *pg;              /* reads, marks, audit */
    cv_store_t *store;       /* writes (NULL for a dry run) */
} cv_ctl_fix_t;

/* Loads the hub config, finds the source, connects; with `store`, opens
   the hub's store too (which applies pending migrations, as the hub does).
   2 on a usage/config error, 1 on a database error, 0 ok. */
int cv_ctl_fix_open(cv_ctl_fix_t *f, const char *hub_config, const char *source, bool store);
void cv_ctl_fix_close(cv_ctl_fix_t *f);

/* Writes n EVENT items in batches through the store; 0 or -1 (store error,
   printed). */
int cv_ctl_fix_write(cv_ctl_fix_t *f, cv_store_item_t *items, size_t n);

/* Fills an EVENT item (borrowing event, record and raw); prepares it. */
void cv_ctl_fix_item(cv_store_item_t *it, const char *source, json_t *event, json_t *record,
                     const char *raw, size_t raw_len, const char *hash);

/* One fix_runs row (options {option: value}, value NULL giving null;
   dry runs leave none); then, when something was stored, tells the hub's
   identity cache to forget (pg_notify civibus_identity). 0 or 1. */
int cv_ctl_fix_audit(cv_ctl_fix_t *f, const char *command, const char *option, const char *value,
                     json_t *counts, bool notify);

/* A query returning rows (binary: results in binary format); NULL, the
   error printed with `what`, on failure. */
PGresult *cv_ctl_fix_select(PGconn *pg, const char *what, const char *sql, int nparams,
                            const char *const *values, int binary);

/* A counter per key in a JSON object. */
void cv_ctl_fix_count(json_t *counts, const char *key);
/* Prints "  key: n" lines of a counter object. */
void cv_ctl_fix_print_counts(const char *title, const json_t *counts);

int cv_ctl_deadletters(const char *conninfo, int argc, char **argv);
int cv_ctl_remap(int argc, char **argv);

#endif
