/*  read_handle — one message from the adapters' ROUTER socket, handed to the
    handler of its command (Mosquitto's read_handle.c).

    Frames: routing id (ZeroMQ's), command, then the command's own. The
    source is the one owning the CURVE key the message was authenticated
    with (the `User-Id` metadata set by the ZAP handler, hub/receive/cv_auth.c):
    never anything the adapter writes. */
#include "cv_ingest_int.h"

#include "cv_log.h"

typedef void (*handler_fn)(cv_ingest_t *self, int src, zframe_t *routing, zmsg_t *msg);

static handler_fn s_handler(cv_cmd_t cmd)
{
    switch (cmd) {
    case CV_CMD_HELLO:  return cv_ingest__handle_hello;
    case CV_CMD_EVENT:  return cv_ingest__handle_event;
    case CV_CMD_PING:   return cv_ingest__handle_ping;
    case CV_CMD_BYE:    return cv_ingest__handle_bye;
    case CV_CMD_RESULT: return cv_ingest__handle_result;
    default:            return NULL;
    }
}

void cv_ingest__read(cv_ingest_t *self)
{
    zmsg_t *msg = zmsg_recv(self->router);
    if (!msg)
        return;
    zframe_t *routing = zmsg_pop(msg);
    zframe_t *cmdf = zmsg_pop(msg);
    if (!routing || !cmdf)
        goto done;
    const char *key = zframe_meta(cmdf, "User-Id");
    const cv_source_conf_t *source = key ? cv_hub_config_source_by_key(self->config, key) : NULL;
    if (!source) {
        /* CURVE let it in: a subscriber key talking to the wrong socket, or the
           connection of a key a reload removed (its next handshake fails) */
        cv_warn("ingest", "message from a key that belongs to no source (a subscriber key, or one a reload "
                "removed): dropped");
        goto done;
    }
    int src = (int) (source - self->config->sources);
    handler_fn handle = s_handler(cv_proto_cmd(zframe_data(cmdf), zframe_size(cmdf)));
    if (handle)
        handle(self, src, routing, msg);
    else
        cv_ingest__refuse(self, src, routing, &(cv_ingest__ref_t) { NULL, NULL, NULL }, "malformed",
                          "unknown command");
done:
    zframe_destroy(&routing);
    zframe_destroy(&cmdf);
    zmsg_destroy(&msg);
}
