/*  api_config — civibus-api's configuration file (deploy/api.yaml documents
    every key). Loaded once at start-up; a bad line stops start-up with
    "file:line: reason" (exit 2), like the hub's config. */
#ifndef CV_API_CONFIG_H
#define CV_API_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

/* An address or a network (CIDR) of http.trusted_proxies. */
typedef struct {
    int family;                  /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int prefix;                  /* bits that must match: 32 / 128 for one address */
} cv_api_net_t;

typedef struct {
    char *file;
    char *conninfo;              /* "" = libpq defaults (PG* environment): the primary */
    char *read_dsn;              /* postgres.read_dsn: a streaming replica for reads, NULL = none */
    int max_replica_lag_s;       /* postgres.max_replica_lag_s: beyond, reads go to the primary, /healthz 503 */
    int health_timeout_ms;       /* postgres.health_timeout_ms: the watcher's SELECT 1 deadline */
    char *address;               /* listen address, default 127.0.0.1 */
    int port;                    /* 0 = any free port (tests read the log) */
    bool insecure_http;          /* listen.insecure_http: plain HTTP on a non-loopback address */
    char *tls_cert_file;         /* tls.certificate: PEM, the chain after it; NULL = plain HTTP */
    char *tls_key_file;          /* tls.key: PEM private key */
    char *tls_cert;              /* their contents, read at load time (api_tls.c) */
    char *tls_key;
    int threads;                 /* MHD thread pool size = PostgreSQL connections */
    int64_t max_body_bytes;      /* larger bodies get 413 */
    int max_url_bytes;           /* a longer request target gets 414 */
    int max_header_bytes;        /* larger request headers (all of them) get 431 */
    int max_params;              /* more query parameters get 400 */
    int header_timeout_s;        /* a request head must arrive within this; 0 = no deadline */
    int idle_timeout_s;          /* a silent connection is closed after this */
    int max_connections;         /* connections at once, in all */
    int per_address_connections; /* connections at once from one address (not trusted proxies) */
    cv_api_net_t *trusted_proxies;   /* whose X-Forwarded-For is honoured */
    size_t ntrusted;
    cv_api_net_t *metrics_from;  /* http.metrics_from: who may read /metrics besides loopback */
    size_t nmetrics_from;
    int page_max;                /* largest `limit` accepted */
    int track_per_minute;        /* tracking-code lookups per client address */
    int owner_per_minute;        /* citizen searches by tracking code, per token */
    int audit_flush_ms;          /* audit batches are written at least this often */
    char *link_key_file;         /* links.secret_file, NULL = citizen links off */
    int link_max_days;           /* longest validity civibusctl gives a link */
    char *web_dir;               /* web.dir: the pages' files (web/), NULL = no pages */
    int session_idle_min;        /* web.session_idle_min: a console session unused this long ends */
    int session_max_hours;       /* web.session_max_hours: and at the latest this long after sign-in */
    char *costs_file;            /* dashboard.costs_file (deploy/costs.yaml), NULL = defaults */
    char *cookie_secure;         /* web.cookie_secure: auto (behind a TLS proxy), always, never */
    char **o311_public;          /* open311.public_categories: listed without a token */
    size_t no311_public;
    char **o311_details;         /* open311.public_details: their description and address too */
    size_t no311_details;
    /* attachments (docs/attachments.md) */
    char *attach_dir;            /* attachments.dir: the content-addressed folder */
    int64_t attach_max_bytes;    /* attachments.max_bytes: one file, decoded */
    int attach_max_files;        /* attachments.max_files: files per request */
    int64_t attach_max_total;    /* attachments.max_total_bytes: all of one request's, decoded */
    int64_t attach_body_bytes;   /* the body cap of POST /v1/requests with a token (derived) */
} cv_api_config_t;

/* The hard ceilings of the attachments keys: a registration's body is held
   in memory (the text, its JSON and one decoded file at a time). */
#define CV_API_ATTACH_MAX_BYTES_CEIL (32LL * 1024 * 1024)
#define CV_API_ATTACH_TOTAL_CEIL (48LL * 1024 * 1024)
#define CV_API_ATTACH_FILES_CEIL 20

cv_api_config_t *cv_api_config_load(const char *path, char *err, size_t errlen);
void cv_api_config_destroy(cv_api_config_t **self_p);

/* Parses "192.0.2.1", "2001:db8::1", "10.0.0.0/8" or "2001:db8::/32"; false
   when it is none of these. */
bool cv_api_config_net_parse(const char *text, cv_api_net_t *out);
/* Whether the address (4 or 16 bytes of `family`) is one of the trusted proxies. */
bool cv_api_config_trusted(const cv_api_config_t *self, int family, const void *addr);
/* A path of the config, relative to the config file's folder (malloc'd). */
char *cv_api_config_relative(const char *file, const char *p);
/* Whether the client address (text: the peer's, or through a trusted proxy
   X-Forwarded-For's) may read /metrics: loopback, or in http.metrics_from. */
bool cv_api_config_metrics_allowed(const cv_api_config_t *self, const char *client);
/* Whether `category` is in the list (open311.public_categories / public_details). */
bool cv_api_config_listed(char *const *list, size_t n, const char *category);

#endif
