/*  cv_smtp — see cv_smtp.h. The read callback tells whether libcurl took
    the message's last byte: an error after that is an unknown outcome,
    before it a retry (the server cannot have accepted a mail it did not
    fully receive). libcurl does the dot-stuffing. */
#include "cv_smtp.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *p;
    size_t left;
    bool done;                   /* the last byte was handed over */
} src_t;

static size_t s_read(char *buf, size_t size, size_t n, void *arg)
{
    src_t *s = arg;
    size_t k = size * n < s->left ? size * n : s->left;
    memcpy(buf, s->p, k);
    s->p += k;
    s->left -= k;
    if (k == 0)
        s->done = true;
    return k;
}

cv_send_t cv_smtp_send(const cv_notify_config_t *cfg, const char *rcpt, const char *msg, size_t len, char *code,
                       size_t codelen)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(code, codelen, "curl_init");
        return CV_SEND_RETRY;
    }
    src_t src = { .p = msg, .left = len };
    char to[300];
    snprintf(to, sizeof to, "<%s>", rcpt);
    struct curl_slist *rcpts = curl_slist_append(NULL, to);
    char from[300];
    snprintf(from, sizeof from, "<%s>", cfg->intake);     /* bounces come back to the intake mailbox */
    curl_easy_setopt(c, CURLOPT_URL, cfg->smtp_url);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpts);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, s_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &src);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long) cfg->timeout_s);
    curl_easy_setopt(c, CURLOPT_USE_SSL, cfg->tls == CV_TLS_REQUIRED   ? (long) CURLUSESSL_ALL
                                         : cfg->tls == CV_TLS_OPTIONAL ? (long) CURLUSESSL_TRY
                                                                       : (long) CURLUSESSL_NONE);
    if (cfg->smtp_user) {
        curl_easy_setopt(c, CURLOPT_USERNAME, cfg->smtp_user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, cfg->smtp_password);
    }
    CURLcode rc = curl_easy_perform(c);
    long resp = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp);
    curl_slist_free_all(rcpts);
    curl_easy_cleanup(c);
    if (rc == CURLE_OK) {
        snprintf(code, codelen, "smtp_%ld", resp ? resp : 250);
        return CV_SEND_OK;
    }
    if (resp >= 500 && resp < 600) {
        snprintf(code, codelen, "smtp_%ld", resp);
        return CV_SEND_FAILED;
    }
    if (resp >= 400 && resp < 500) {
        snprintf(code, codelen, "smtp_%ld", resp);
        return CV_SEND_RETRY;
    }
    if (rc == CURLE_USE_SSL_FAILED || rc == CURLE_LOGIN_DENIED) {
        snprintf(code, codelen, "curl_%d", (int) rc);     /* no STARTTLS, or refused login: the city's config */
        return CV_SEND_RETRY;
    }
    snprintf(code, codelen, "curl_%d", (int) rc);
    return src.done ? CV_SEND_UNKNOWN : CV_SEND_RETRY;
}
