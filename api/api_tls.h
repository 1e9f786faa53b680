/*  api_tls — civibus-api's own HTTPS (libmicrohttpd with GnuTLS).

    The `tls:` block of api.yaml names a certificate (PEM, the chain's
    intermediates after it) and its private key (PEM, unencrypted). Both
    are read when the configuration is loaded, checked there — readable,
    PEM, the key not open to group or others (refused: chmod 600), and the
    pair accepted by GnuTLS (a daemon without a socket is started with
    them) — so a bad file stops start-up with "file:line: reason" naming
    the config line. The server then serves TLS 1.2 and 1.3 only
    (CV_API_TLS_PRIORITIES) and every answer carries
    Strict-Transport-Security.

    Without `tls:`, plain HTTP is served on a loopback address only, unless
    listen.insecure_http is true (a TLS reverse proxy in front). The
    certificate is read once: a renewed one needs a restart (docs/api.md). */
#ifndef CV_API_TLS_H
#define CV_API_TLS_H

#include "api_config.h"
#include "cv_yaml.h"

#include <stdbool.h>
#include <stddef.h>

#define CV_API_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define CV_API_HSTS "max-age=31536000"

/* Reads the `tls` block (node may be NULL: no TLS) into self; 0, or -1
   with "file:line: reason" in err. */
int cv_api_tls_load(cv_api_config_t *self, const cv_yaml_doc_t *doc, const cv_yaml_node_t *node,
                    char *err, size_t errlen);

/* Whether the IPv4 address text is a loopback one (127.0.0.0/8). */
bool cv_api_tls_loopback(const char *address);

/* Whether this libmicrohttpd was built with TLS. */
bool cv_api_tls_supported(void);

#endif
