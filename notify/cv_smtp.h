/*  cv_smtp — one mail handed to the city's SMTP server (libcurl).

    smtp:// with tls: required (STARTTLS or no send), optional (STARTTLS when
    offered) or none; smtps:// is TLS from the first byte. The outcome says
    what the ledger may do next:
      CV_SEND_OK       the server answered 250 to the data: sent
      CV_SEND_RETRY    refused for now (4xx) or never reached the data
                       (connection refused, timeout before DATA): try again
      CV_SEND_FAILED   refused for good (5xx): never again
      CV_SEND_UNKNOWN  the whole message went out but no final answer came
                       (connection lost, timeout after the data): the mail
                       may have been accepted, so it is never sent again
    code: "smtp_421", "smtp_550", "curl_7" — never an address. */
#ifndef CV_SMTP_H
#define CV_SMTP_H

#include "cv_notify_config.h"

#include <stddef.h>

typedef enum { CV_SEND_OK = 0, CV_SEND_RETRY, CV_SEND_FAILED, CV_SEND_UNKNOWN } cv_send_t;

cv_send_t cv_smtp_send(const cv_notify_config_t *cfg, const char *rcpt, const char *msg, size_t len, char *code,
                       size_t codelen);

#endif
