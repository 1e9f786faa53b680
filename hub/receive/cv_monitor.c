/*  monitor — see cv_monitor.h. */
#include "cv_monitor.h"

#include "cv_alloc.h"
#include "cv_log.h"

struct cv_monitor {
    zsock_t *pair;
    char name[64];
};

cv_monitor_t *cv_monitor_new(zsock_t *watched, const char *name)
{
    cv_monitor_t *self = cv_zcalloc(1, sizeof *self);
    snprintf(self->name, sizeof self->name, "%s", name);
    char endpoint[128];
    snprintf(endpoint, sizeof endpoint, "inproc://monitor-%s-%p", name, (void *) self);
    if (zmq_socket_monitor(zsock_resolve(watched), endpoint,
                           ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                           | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) != 0) {
        free(self);
        return NULL;
    }
    self->pair = zsock_new_pair(endpoint);      /* a PAIR connects by default */
    return self;
}

void cv_monitor_destroy(cv_monitor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zsock_destroy(&(*self_p)->pair);
    free(*self_p);
    *self_p = NULL;
}

zsock_t *cv_monitor_sock(cv_monitor_t *self)
{
    return self->pair;
}

void cv_monitor_handle(cv_monitor_t *self)
{
    zmsg_t *msg = zmsg_recv(self->pair);
    if (!msg)
        return;
    zframe_t *ev = zmsg_first(msg);
    zframe_t *addr = zmsg_next(msg);
    if (ev && zframe_size(ev) >= 6) {
        uint16_t event;
        memcpy(&event, zframe_data(ev), sizeof event);
        char *where = addr ? zframe_strdup(addr) : cv_zstrdup("?");
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            cv_warn(self->name, "refused a connection from %s: unknown CURVE key", where);
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
            cv_warn(self->name, "handshake failed with %s: not a CURVE client of this hub", where);
        else if (event == ZMQ_EVENT_DISCONNECTED)
            cv_info(self->name, "connection from %s closed (peer gone, or a message over "
                    "limits.max_message_bytes)", where);
        free(where);
    }
    zmsg_destroy(&msg);
}
