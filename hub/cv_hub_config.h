/*  hub_config — the hub's configuration file (deploy/civibus.yaml documents
    every key). Loaded once at start-up; any bad line stops start-up with
    "file:line: reason" and exit code 2. Relative paths are resolved from
    the config file's own directory, so a config works from any cwd. */
#ifndef CV_HUB_CONFIG_H
#define CV_HUB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "map/cv_mapping.h"

#define CV_MAX_SOURCES 256
#define CV_KEY_Z85_LEN 40

typedef struct {
    char *name;                       /* [a-z0-9_-]{1,63} */
    char *mapping_path;
    cv_mapping_t *mapping;            /* loaded with the config */
    char keys[2][CV_KEY_Z85_LEN + 1]; /* CURVE public keys (two during a rotation) */
    int nkeys;
    int certainty;                    /* `identity:` 1 declared, 2 software, 4 certified; 0 not said */
    bool files;                       /* `attachments: true`: its records may name attachments' files */
    bool removed;                     /* gone from the file at a reload: no keys, its slot kept */
} cv_source_conf_t;

typedef struct {
    char *file;
    /* postgres */
    char *conninfo;                   /* "" = libpq defaults (PG* environment) */
    char *migrations_dir;
    /* listen */
    char *adapters_endpoint;          /* ROUTER */
    char *publish_endpoint;           /* PUB, NULL = none */
    bool publish_curve;               /* true unless loopback/ipc/inproc */
    char subscriber_keys[8][CV_KEY_Z85_LEN + 1];
    int nsubscriber_keys;
    char *metrics_address;            /* /metrics HTTP server (IPv4 or IPv6 literal), NULL = none */
    int metrics_port;                 /* 0 = any free port (logged at start-up) */
    /* curve */
    char *server_cert;                /* zcert secret file of the hub */
    char *runtime_dir;                /* hub's private working files (client cert dir) */
    /* store */
    int batch_max_events;
    int batch_max_delay_ms;
    int64_t pending_max_bytes;
    int stuck_after_s;                /* /healthz: a batch uncommitted this long = writer stuck */
    /* limits */
    int64_t max_message_bytes;
    int64_t max_event_bytes;
    /* protocol */
    int window;
    int heartbeat_ms;
    /* commands (docs/commands.md) */
    int64_t command_result_timeout_ms;  /* deliver a `sent` command again after this */
    int64_t identity_propose_interval_ms; /* weak-match proposals job (0: off) */
    size_t identity_cache_pairs;          /* linked pairs the store remembers (0: off) */
    int identity_max_shared;              /* holders after which a value stops linking */
    int identity_max_absorb;              /* largest component of new pairs one batch links */
    /* deadlines (deploy/deadlines.yaml, docs/deadlines.md; loaded by main.c with
       hub/deadlines/, so that the programs that read this config need not): NULL = none */
    char *deadlines_path;
    /* routing (deploy/routing.yaml, docs/routing.md; loaded by main.c with hub/routing/): NULL = none */
    char *routing_path;
    /* sources */
    cv_source_conf_t *sources;        /* room for CV_MAX_SOURCES: a reload appends, never moves */
    size_t nsources;
} cv_hub_config_t;

/* Loads and validates the file, including every source's mapping and the
   server certificate's presence. NULL with "file:line: reason" in err. */
cv_hub_config_t *cv_hub_config_load(const char *path, char *err, size_t errlen);
void cv_hub_config_destroy(cv_hub_config_t **self_p);

/* What differs between a and b that only a restart applies (every key but
   the sources, routing and deadlines), as "postgres.conninfo, store" in
   out; 0 when nothing, else the number of items. */
int cv_hub_config_restart_diff(const cv_hub_config_t *a, const cv_hub_config_t *b, char *out, size_t len);

/* The source owning a CURVE public key, or NULL. */
const cv_source_conf_t *cv_hub_config_source_by_key(const cv_hub_config_t *self, const char *z85);

#endif
