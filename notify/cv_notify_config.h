/*  cv_notify_config — deploy/notify.yaml, read once at start-up.

    Every key is listed in docs/notifications.md; unknown keys are refused at
    every level, and any bad value stops the start with "file:line: reason".
    Paths (reply_secret_file, templates, secret files) are relative to the
    config file's folder. */
#ifndef CV_NOTIFY_CONFIG_H
#define CV_NOTIFY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { CV_TLS_NONE = 0, CV_TLS_OPTIONAL, CV_TLS_REQUIRED } cv_tls_t;

typedef struct {
    char *name;                  /* a label: the ledger's recipient is webhook:NAME */
    char *url;
    unsigned char secret[128];
    size_t secretlen;
    bool personal;               /* the body may carry the citizen's id (fields: citizen_id) */
} cv_notify_webhook_t;

typedef struct {
    char *service;
    char *address;               /* the supervisor's e-mail */
} cv_notify_supervisor_t;

typedef struct {
    char *conninfo;
    char *public_url;            /* status page: {public_url}/suivi/{code} */
    char *city;                  /* the city's name in mails */
    bool start_from_end;         /* first start: skip the events already stored */
    int poll_ms, batch, coalesce_s;
    char *timezone;
    char *quiet_start, *quiet_end;   /* "HH:MM", or NULL: no quiet hours */
    char *digest_at;             /* citizens' digest time "HH:MM" */
    int retry_base_s, retry_max_s, max_attempts;
    /* mail */
    char *smtp_url;
    cv_tls_t tls;
    char *smtp_user, *smtp_password;
    char *from, *from_name, *intake, *msgid_domain, *subject_prefix;
    unsigned char reply_key[256];
    size_t reply_keylen;
    char *templates;             /* folder */
    int timeout_s;
    /* webhooks, sms, digest */
    cv_notify_webhook_t *webhooks;
    size_t nwebhooks;
    char *sms_url;
    char *sms_token;
    char *sms_default;           /* off | immediate | digest; NULL: no gateway */
    char *supervisor_at;         /* services' digest "HH:MM", NULL: none */
    int soon_days;
    cv_notify_supervisor_t *supervisors;
    size_t nsupervisors;
} cv_notify_config_t;

cv_notify_config_t *cv_notify_config_load(const char *path, char *err, size_t errlen);
void cv_notify_config_destroy(cv_notify_config_t **self_p);

#endif
