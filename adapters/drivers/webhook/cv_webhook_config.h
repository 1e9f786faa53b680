/*  driver_webhook_config — the `driver:` section of a webhook adapter
    (docs/drivers/webhook.md), read and checked with its lines:

        driver:
          kind: webhook
          source: dechets
          address: 127.0.0.1        port: 8091        port_file: run/port
          path: /webhooks/dechets   body: object | array
          max_body_bytes  max_connections  timeout_s  retry_after_s
          signature: {header, prefix, secret_env | secret_file}

    The shared secret is read here (from the environment or a file), once,
    into memory that is wiped when the config is cleared; it is never
    printed, only its source is named in errors. */
#ifndef CV_DRIVER_WEBHOOK_CONFIG_H
#define CV_DRIVER_WEBHOOK_CONFIG_H

#include <stddef.h>

#include "cv_webhook_http.h"
#include "runtime/cv_driver.h"

#define CV_WEBHOOK_SECRET_MIN 16     /* bytes */
#define CV_WEBHOOK_SECRET_MAX 4096

typedef struct {
    cv_webhook_http_opts_t http;     /* strings point into the YAML document */
    char *port_file;                 /* resolved against the config folder, or NULL */
    unsigned char *secret;           /* the HMAC key (http.secret points here) */
    size_t secret_len;
} cv_webhook_config_t;

/* Reads ctx->conf into *out (zeroed first). 0, or -1 with
   "file:line: reason" in err and nothing to clear. */
int cv_webhook_config_read(const cv_driver_ctx_t *ctx, cv_webhook_config_t *out, char *err, size_t errlen);

/* Wipes the secret and frees what read allocated. */
void cv_webhook_config_clear(cv_webhook_config_t *self);

#endif
