/*  monitor — logs what happens to adapters' connections at the transport:
    a refused CURVE key (ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) and dropped
    connections (ZMQ_EVENT_DISCONNECTED: the peer went away, or sent a
    message over limits.max_message_bytes, which makes libzmq drop it).
    Uses libzmq's socket monitor on an inproc PAIR socket that the ingest
    loop polls. Logs the peer's network address, never message content. */
#ifndef CV_MONITOR_H
#define CV_MONITOR_H

#include <czmq.h>

typedef struct cv_monitor cv_monitor_t;

cv_monitor_t *cv_monitor_new(zsock_t *watched, const char *name);
void cv_monitor_destroy(cv_monitor_t **self_p);

/* The socket to poll; call cv_monitor_handle when it is readable. */
zsock_t *cv_monitor_sock(cv_monitor_t *self);
void cv_monitor_handle(cv_monitor_t *self);

#endif
