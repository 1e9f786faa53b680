/*  api_conn — the connections of civibus-api's HTTP server, watched for
    what libmicrohttpd 0.9.75 does not do itself:

    - a header deadline (http.header_timeout_s): the head of a request
      (request line and headers) must arrive within that many seconds of
      the connection opening, or of the previous answer on a kept-alive
      connection. libmicrohttpd's own timeout (http.idle_timeout_s) only
      closes a connection that is silent, so a client sending one byte
      every few seconds (slowloris) would hold its socket for ever. A
      thread checks the deadlines four times a second and shuts the late
      sockets down (shutdown(2): libmicrohttpd then sees the end of the
      stream and closes the connection itself).
    - a limit of connections at once per client address
      (http.per_address_connections), checked when libmicrohttpd announces
      a connection, under one mutex (so parallel accepts cannot overshoot):
      one over the limit is shut down before any byte is read. IPv6
      clients count per /64. A trusted proxy (http.trusted_proxies) carries
      every user of the city: only the total limit (http.connections)
      applies to it, and the proxy's own per-client limits.

    The table has one slot per connection (at most http.connections); a
    slot is the connection's socket context (MHD_OPTION_NOTIFY_CONNECTION),
    freed when libmicrohttpd announces the close — before it closes the
    socket, so a late shutdown never hits a reused descriptor. */
#ifndef CV_API_CONN_H
#define CV_API_CONN_H

#include "api_config.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct cv_api_conn cv_api_conn_t;

/* NULL when the thread cannot start. */
cv_api_conn_t *cv_api_conn_new(const cv_api_config_t *cfg);
void cv_api_conn_destroy(cv_api_conn_t **self_p);

/* The MHD_OPTION_NOTIFY_CONNECTION callback (cls: the table). */
void cv_api_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                         enum MHD_ConnectionNotificationCode toe);

/* The head of a request arrived: no deadline until its answer is sent. */
void cv_api_conn_head_done(cv_api_conn_t *self, struct MHD_Connection *conn);
/* The answer was sent: the next request's head has header_timeout_s from now. */
void cv_api_conn_request_done(cv_api_conn_t *self, struct MHD_Connection *conn);

/* The client address of a request that came through a trusted proxy: the
   right-most address of its X-Forwarded-For value `xff` that is not a
   trusted proxy (each proxy appends the address it got the request from;
   what the client wrote itself is further left, never trusted). False
   when there is none that parses (then the proxy's own address counts). */
bool cv_api_conn_forwarded(const cv_api_config_t *cfg, const char *xff, int *family,
                           unsigned char addr[16]);

/* Counters for /metrics: connections cut at the header deadline, and
   connections refused by the per-address limit. */
uint64_t cv_api_conn_cut(cv_api_conn_t *self);
uint64_t cv_api_conn_refused(cv_api_conn_t *self);

#endif
