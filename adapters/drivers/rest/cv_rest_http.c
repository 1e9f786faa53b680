/*  driver_rest_http — one GET at a time, never blocking the run loop.

    The run loop must keep polling the hub connection (ACKs, heartbeats)
    while a slow API takes seconds to answer. So the transfer runs on the
    curl multi interface: start adds the request, each poll calls
    curl_multi_perform (which only does what the sockets allow right now)
    and returns at once. The driver's step returns a short wait while a
    transfer runs, so the loop alternates: a little HTTP, a client poll.
    DNS lookups use curl's threaded resolver, so they do not block either.

    One easy handle is reused, which keeps the connection alive between
    pages when the server allows it. The body is collected up to
    max_response_bytes; past that the transfer is aborted (too_large).
    Redirects are not followed (a credential must not travel to another
    host); only http and https are allowed. */
#include "cv_rest.h"

#include "cv_buf.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cv_rest_http {
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers;
    bool busy;
    bool failed_start;           /* start failed: the next poll reports it */
    cv_buf_t body;               /* limit: max_response_bytes */
    bool too_large;
    char errbuf[CURL_ERROR_SIZE];
};

static size_t s_on_data(char *data, size_t size, size_t nmemb, void *arg)
{
    cv_rest_http_t *self = arg;
    size_t n = size * nmemb;
    if (cv_buf_add(&self->body, data, n) == 0)
        return n;
    self->too_large = self->body.len + n > self->body.limit;
    return 0;                     /* aborts the transfer: CURLE_WRITE_ERROR */
}

static int s_headers(cv_rest_http_t *self, const cv_rest_config_t *config)
{
    struct curl_slist *list = curl_slist_append(NULL, "Accept: application/json");
    for (size_t i = 0; list && i < config->header_count; i++) {
        size_t len = strlen(config->headers[i].name) + strlen(config->headers[i].value) + 3;
        char *line = malloc(len);
        if (!line)
            break;
        snprintf(line, len, "%s: %s", config->headers[i].name, config->headers[i].value);
        struct curl_slist *next = curl_slist_append(list, line);
        explicit_bzero(line, len);
        free(line);
        if (!next)
            break;
        list = next;
    }
    self->headers = list;
    return list ? 0 : -1;
}

cv_rest_http_t *cv_rest_http_new(const cv_rest_config_t *config, char *err, size_t errlen)
{
    cv_rest_http_t *self = calloc(1, sizeof *self);
    if (!self || !(self->multi = curl_multi_init()) || !(self->easy = curl_easy_init())
        || s_headers(self, config) < 0) {
        snprintf(err, errlen, "rest driver: cannot initialise libcurl");
        cv_rest_http_destroy(&self);
        return NULL;
    }
    self->body.limit = (size_t) config->max_response_bytes;
    CURL *e = self->easy;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) config->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) config->timeout_ms);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "civibus-adapter/0.1 (rest)");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");      /* gzip welcome; bounded after decoding */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, self->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, self);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, self->errbuf);
    if (config->username) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, config->username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, config->password);
    }
    if (config->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, config->ca_file);
    return self;
}

void cv_rest_http_destroy(cv_rest_http_t **self_p)
{
    cv_rest_http_t *self = *self_p;
    if (!self)
        return;
    cv_rest_http_cancel(self);
    if (self->easy)
        curl_easy_cleanup(self->easy);
    if (self->multi)
        curl_multi_cleanup(self->multi);
    curl_slist_free_all(self->headers);   /* holds secrets: libcurl frees, cannot wipe */
    cv_buf_free(&self->body);
    free(self);
    *self_p = NULL;
}

int cv_rest_http_start(cv_rest_http_t *self, const char *url)
{
    cv_rest_http_cancel(self);
    cv_buf_reset(&self->body);
    self->too_large = false;
    self->errbuf[0] = '\0';
    if (curl_easy_setopt(self->easy, CURLOPT_URL, url) != CURLE_OK
        || curl_multi_add_handle(self->multi, self->easy) != CURLM_OK) {
        self->failed_start = true;
        return -1;
    }
    self->busy = true;
    int running;
    curl_multi_perform(self->multi, &running);
    return 0;
}

int cv_rest_http_poll(cv_rest_http_t *self, cv_rest_reply_t *reply)
{
    memset(reply, 0, sizeof *reply);
    if (self->failed_start) {
        self->failed_start = false;
        snprintf(reply->error, sizeof reply->error, "cannot start the request (out of memory?)");
        return 1;
    }
    if (!self->busy)
        return 0;
    int running, left;
    curl_multi_perform(self->multi, &running);
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(self->multi, &left))) {
        if (msg->msg != CURLMSG_DONE || msg->easy_handle != self->easy)
            continue;
        CURLcode rc = msg->data.result;
        curl_multi_remove_handle(self->multi, self->easy);
        self->busy = false;
        reply->too_large = self->too_large;
        if (rc == CURLE_OK) {
            reply->ok = true;
            curl_easy_getinfo(self->easy, CURLINFO_RESPONSE_CODE, &reply->status);
            reply->body = self->body.data ? self->body.data : "";
            reply->len = self->body.len;
        } else {
            /* curl's messages name the host, port and timings, never the query */
            snprintf(reply->error, sizeof reply->error, "%s",
                     self->too_large ? "response larger than max_response_bytes"
                     : self->errbuf[0] ? self->errbuf : curl_easy_strerror(rc));
        }
        return 1;
    }
    return 0;
}

void cv_rest_http_cancel(cv_rest_http_t *self)
{
    if (self->busy) {
        curl_multi_remove_handle(self->multi, self->easy);
        self->busy = false;
    }
}
