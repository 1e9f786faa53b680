/*  cv_publish — where a stored event goes out: the hub's publish socket.

    An XPUB socket (listen.publish): consumers subscribe by service (the
    topic) and receive each stored event without its personal data — what
    the events table holds, plus its commit-ordered `seq`, request id and
    tracking code. XPUB tells the hub whether anyone listens, so nothing is
    serialised while nobody subscribes. Best effort: a consumer that must see
    everything catches up from `events` by id (docs/architecture.md).

    Owned and called by the socket thread only (hub/receive/cv_ingest.c),
    after COMMIT, in events.id order. */
#ifndef CV_PUBLISH_H
#define CV_PUBLISH_H

#include <czmq.h>
#include <stddef.h>

#include "cv_hub_config.h"
#include "store/cv_store.h"

typedef struct cv_publish cv_publish_t;

/* Binds config->publish_endpoint (with CURVE when publish_curve; the ZAP
   handler must already run). NULL with the reason in err. */
cv_publish_t *cv_publish_new(const cv_hub_config_t *config, char *err, size_t errlen);
void cv_publish_destroy(cv_publish_t **self_p);

/* The socket to poll: subscription messages arrive on it. */
zsock_t *cv_publish_sock(cv_publish_t *self);

/* Reads the pending subscription messages (a topic's first subscriber, or
   its last one leaving, also by disconnecting). */
void cv_publish_subscriptions(cv_publish_t *self);

/* Publishes a stored item (an event, or a command_result event) when
   someone listens; otherwise builds nothing. */
void cv_publish_item(cv_publish_t *self, const cv_store_item_t *it);

#endif
