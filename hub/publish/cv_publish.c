/*  cv_publish — see cv_publish.h. */
#include "cv_publish.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "receive/cv_auth.h"

struct cv_publish {
    zsock_t *pub;                 /* XPUB: it tells us whether anyone listens */
    int64_t subscribed_topics;    /* topics with at least one subscriber */
};

cv_publish_t *cv_publish_new(const cv_hub_config_t *config, char *err, size_t errlen)
{
    cv_publish_t *self = cv_zmalloc(sizeof *self);
    self->pub = zsock_new(ZMQ_XPUB);
    if (!self->pub) {
        snprintf(err, errlen, "cannot make the publish socket: %s", zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (config->publish_curve)
        cv_auth_curve_server(config, self->pub);
    zsock_set_sndhwm(self->pub, 100000);
    zsock_set_linger(self->pub, 0);
    if (zsock_bind(self->pub, "%s", config->publish_endpoint) < 0) {
        snprintf(err, errlen, "cannot bind the publish endpoint %s: %s", config->publish_endpoint,
                 zmq_strerror(zmq_errno()));
        goto fail;
    }
    return self;
fail:
    cv_publish_destroy(&self);
    return NULL;
}

void cv_publish_destroy(cv_publish_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zsock_destroy(&(*self_p)->pub);
    free(*self_p);
    *self_p = NULL;
}

zsock_t *cv_publish_sock(cv_publish_t *self)
{
    return self->pub;
}

/* First byte 1: a topic gets its first subscriber; 0: its last one left. */
void cv_publish_subscriptions(cv_publish_t *self)
{
    while (zsock_events(self->pub) & ZMQ_POLLIN) {
        zframe_t *f = zframe_recv(self->pub);
        if (!f)
            break;
        if (zframe_size(f) >= 1)
            self->subscribed_topics += zframe_data(f)[0] == 1 ? 1 : -1;
        zframe_destroy(&f);
    }
}

void cv_publish_item(cv_publish_t *self, const cv_store_item_t *it)
{
    if (!it->event || self->subscribed_topics <= 0)
        return;                   /* nobody listens: build nothing */
    /* a shallow view: the kept values are shared with the event, not copied */
    json_t *ev = json_object();
    const char *key;
    json_t *value;
    json_object_foreach(it->event, key, value)
        if (strcmp(key, "citizen") != 0 && strcmp(key, "summary") != 0 && strcmp(key, "extra") != 0)
            json_object_set(ev, key, value);
    json_object_set_new(ev, "seq", json_integer(it->event_seq));
    json_object_set_new(ev, "request_id", json_integer(it->request_id));
    json_object_set_new(ev, "tracking_code", json_string(it->tracking_code));
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    const char *service = json_string_value(json_object_get(it->event, "service"));
    char seq[24];
    snprintf(seq, sizeof seq, "%" PRId64, it->event_seq);
    if (text)
        zsock_send(self->pub, "sss", service ? service : "", seq, text);
    free(text);
}
