/*  auth — see cv_auth.h. */
#include "cv_auth.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#include "cv_log.h"

static int s_mkdir(const char *path, char *err, size_t errlen)
{
    if (zsys_dir_create("%s", path) != 0) {
        snprintf(err, errlen, "cannot create folder %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Removes every *.pub file of dir: the folder holds only what we wrote. */
static void s_clear(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".pub") == 0) {
            char path[PATH_MAX];
            if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int) sizeof path)
                unlink(path);
        }
    }
    closedir(d);
}

static int s_write_cert(const char *dir, const char *name, int k, const char *role, const char *key,
                        char *err, size_t errlen)
{
    static const byte no_secret[32];        /* a public certificate holds no secret */
    byte pub[32];
    zmq_z85_decode(pub, key);
    zcert_t *cert = zcert_new_from(pub, no_secret);
    zcert_set_meta(cert, "role", "%s", role);
    zcert_set_meta(cert, "name", "%s", name);
    char path[PATH_MAX];
    int rc = -1;
    if (snprintf(path, sizeof path, "%s/%s-%s-%d.pub", dir, role, name, k) < (int) sizeof path)
        rc = zcert_save_public(cert, path);
    zcert_destroy(&cert);
    if (rc != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* <runtime_dir>/curve holding exactly the config's keys; its path in dir. */
static int s_write_certs(const cv_hub_config_t *config, char *dir, size_t dirlen, char *err, size_t errlen)
{
    if (snprintf(dir, dirlen, "%s/curve", config->runtime_dir) >= (int) dirlen) {
        snprintf(err, errlen, "runtime_dir path too long");
        return -1;
    }
    if (s_mkdir(config->runtime_dir, err, errlen) < 0 || s_mkdir(dir, err, errlen) < 0)
        return -1;
    chmod(dir, 0700);
    s_clear(dir);
    for (size_t i = 0; i < config->nsources; i++)
        for (int k = 0; k < config->sources[i].nkeys; k++)
            if (s_write_cert(dir, config->sources[i].name, k, "adapter", config->sources[i].keys[k], err, errlen) < 0)
                return -1;
    for (int k = 0; k < config->nsubscriber_keys; k++)
        if (s_write_cert(dir, "subscriber", k, "subscriber", config->subscriber_keys[k], err, errlen) < 0)
            return -1;
    return 0;
}

int cv_auth_refresh(zactor_t *auth, const cv_hub_config_t *config, char *err, size_t errlen)
{
    char dir[PATH_MAX - 128];
    if (s_write_certs(config, dir, sizeof dir, err, errlen) < 0)
        return -1;
    /* zauth's CURVE command drops its certificate store and reads the
       folder again (a store refreshes itself on lookups too, but only when
       the folder's size, count or mtime in seconds moved: a rotation within
       the second could go unseen) */
    zstr_sendx(auth, "CURVE", dir, NULL);
    zsock_wait(auth);
    return 0;
}

zactor_t *cv_auth_start(const cv_hub_config_t *config, char *err, size_t errlen)
{
    char dir[PATH_MAX - 128];
    if (s_write_certs(config, dir, sizeof dir, err, errlen) < 0)
        return NULL;

    zactor_t *auth = zactor_new(zauth, NULL);
    if (!auth) {
        snprintf(err, errlen, "cannot start the ZAP handler");
        return NULL;
    }
    if (getenv("CIVIBUS_ZAUTH_VERBOSE")) {
        zstr_sendx(auth, "VERBOSE", NULL);
        zsock_wait(auth);
    }
    zstr_sendx(auth, "CURVE", dir, NULL);
    zsock_wait(auth);
    return auth;
}

int cv_auth_curve_server(const cv_hub_config_t *config, zsock_t *sock)
{
    zcert_t *cert = zcert_load(config->server_cert);
    if (!cert)
        return -1;
    zcert_apply(cert, sock);
    zsock_set_curve_server(sock, 1);
    zsock_set_zap_domain(sock, "civibus");
    zcert_destroy(&cert);
    return 0;
}
