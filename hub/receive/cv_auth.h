/*  auth — CURVE authentication of adapters and subscribers.

    The hub runs CZMQ's zauth ZAP handler. Before any socket binds, the
    public keys from the config are written as zcert public certificates
    into <runtime_dir>/curve/ (a folder the hub empties and owns), and zauth
    is told to accept exactly those keys. A connecting peer whose key is
    not there fails the CURVE handshake: nothing it sends reaches the hub.
    libzmq then attaches the peer's public key as the "User-Id" property of
    every message; the ingest loop maps it to a source with the config. */
#ifndef CV_AUTH_H
#define CV_AUTH_H

#include <czmq.h>

#include "cv_hub_config.h"

/* Starts zauth with the config's keys; NULL with a reason in err. */
zactor_t *cv_auth_start(const cv_hub_config_t *config, char *err, size_t errlen);

/* A reload: the folder rewritten with the config's keys now, and zauth
   told to read it again. -1 with a reason in err (the old keys stay). */
int cv_auth_refresh(zactor_t *auth, const cv_hub_config_t *config, char *err, size_t errlen);

/* Makes sock a CURVE server with the hub's certificate. */
int cv_auth_curve_server(const cv_hub_config_t *config, zsock_t *sock);

#endif
