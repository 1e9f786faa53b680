/*  api_config — civibus-api's configuration file (deploy/api.yaml documents
    every key). Loaded once at start-up; a bad line stops start-up with
    "file:line: reason" (exit 2), like the hub's config. */
#ifndef CV_API_CONFIG_H
#define CV_API_CONFIG_H

#include <stdint.h>
#include <stddef.h>

typedef struct {
    char *file;
    char *conninfo;              /* "" = libpq defaults (PG* environment) */
    char *address;               /* listen address, default 127.0.0.1 */
    int port;                    /* 0 = any free port (tests read the log) */
    int threads;                 /* MHD thread pool size = PostgreSQL connections */
    int64_t max_body_bytes;      /* larger bodies get 413 */
    int page_max;                /* largest `limit` accepted */
    int track_per_minute;        /* tracking-code lookups per client address */
    int audit_flush_ms;          /* audit batches are written at least this often */
    char *link_key_file;         /* links.secret_file, NULL = citizen links off */
    int link_max_days;           /* longest validity civibusctl gives a link */
} cv_api_config_t;

cv_api_config_t *cv_api_config_load(const char *path, char *err, size_t errlen);
void cv_api_config_destroy(cv_api_config_t **self_p);

#endif
