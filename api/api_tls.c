/*  api_tls — see api_tls.h. The files are read into memory (libmicrohttpd
    takes PEM text, MHD_OPTION_HTTPS_MEM_CERT / _KEY); the check that
    GnuTLS accepts them starts a libmicrohttpd daemon without a listening
    socket and keeps its first message as the reason. */
#include "api_tls.h"

#include "cv_alloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PEM_MAX (1024 * 1024)

bool cv_api_tls_supported(void)
{
    return MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES;
}

bool cv_api_tls_loopback(const char *address)
{
    struct in_addr a;
    return address && inet_pton(AF_INET, address, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* The whole file (up to 1 MiB) as a C string, or NULL with the reason. */
static char *s_read(const char *path, struct stat *st, char *why, size_t whylen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || st->st_size > PEM_MAX) {
        snprintf(why, whylen, "%s is not a file of at most 1 MiB", path);
        close(fd);
        return NULL;
    }
    char *buf = cv_zmalloc((size_t) st->st_size + 1);
    size_t got = 0;
    while (got < (size_t) st->st_size) {
        ssize_t n = read(fd, buf + got, (size_t) st->st_size - got);
        if (n <= 0)
            break;
        got += (size_t) n;
    }
    close(fd);
    buf[got] = 0;
    if (strlen(buf) != got) {
        snprintf(why, whylen, "%s is not PEM text (it holds a NUL byte: DER? convert it with openssl)", path);
        free(buf);
        return NULL;
    }
    return buf;
}

typedef struct {
    char first[256];
} capture_t;

static void s_capture(void *cls, const char *fmt, va_list ap)
{
    capture_t *c = cls;
    if (c->first[0])
        return;
    vsnprintf(c->first, sizeof c->first, fmt, ap);
    size_t n = strlen(c->first);
    while (n && (c->first[n - 1] == '\n' || c->first[n - 1] == '\r'))
        c->first[--n] = 0;
}

static enum MHD_Result s_nothing(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                 const char *version, const char *data, size_t *size, void **con_cls)
{
    return MHD_NO;
}

/* Whether GnuTLS takes the pair (and the priorities); the reason otherwise. */
static bool s_pair_ok(const char *cert, const char *key, char *why, size_t whylen)
{
    capture_t c = { { 0 } };
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_TLS | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG, 0, NULL, NULL, s_nothing, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, s_capture, &c,
        MHD_OPTION_HTTPS_MEM_CERT, cert,
        MHD_OPTION_HTTPS_MEM_KEY, key,
        MHD_OPTION_HTTPS_PRIORITIES, CV_API_TLS_PRIORITIES,
        MHD_OPTION_END);
    if (d) {
        MHD_stop_daemon(d);
        return true;
    }
    snprintf(why, whylen, "%s", c.first[0] ? c.first : "GnuTLS refused them");
    return false;
}

int cv_api_tls_load(cv_api_config_t *self, const cv_yaml_doc_t *doc, const cv_yaml_node_t *n,
                    char *err, size_t errlen)
{
    static const char *const keys[] = { "certificate", "key", NULL };
    const char *s;
    char why[512];
    struct stat st;
    if (!n)
        return 0;
    if (cv_yaml_expect(doc, n, CV_YAML_MAP, "'tls'", err, errlen) < 0
        || cv_yaml_check_keys(doc, n, keys, "'tls'", err, errlen) < 0)
        return -1;
    if (!cv_api_tls_supported())
        return cv_yaml_fail(doc, n, err, errlen, "'tls': this libmicrohttpd was built without TLS"
                            " (GnuTLS); install Debian's libmicrohttpd12 or put a TLS proxy in front");
    if (cv_yaml_str(doc, n, "certificate", true, NULL, &s, err, errlen) < 0)
        return -1;
    const cv_yaml_node_t *cn = cv_yaml_get(n, "certificate"), *kn = cv_yaml_get(n, "key");
    self->tls_cert_file = cv_api_config_relative(doc->file, s);
    if (!(self->tls_cert = s_read(self->tls_cert_file, &st, why, sizeof why)))
        return cv_yaml_fail(doc, cn, err, errlen, "'certificate': %s", why);
    if (!strstr(self->tls_cert, "-----BEGIN CERTIFICATE-----"))
        return cv_yaml_fail(doc, cn, err, errlen, "'certificate': %s holds no PEM certificate"
                            " (-----BEGIN CERTIFICATE-----)", self->tls_cert_file);
    if (strstr(self->tls_cert, "PRIVATE KEY-----"))
        return cv_yaml_fail(doc, cn, err, errlen, "'certificate': %s holds a private key: keep the key"
                            " in its own file (tls.key, mode 600)", self->tls_cert_file);
    if (cv_yaml_str(doc, n, "key", true, NULL, &s, err, errlen) < 0)
        return -1;
    self->tls_key_file = cv_api_config_relative(doc->file, s);
    if (!(self->tls_key = s_read(self->tls_key_file, &st, why, sizeof why)))
        return cv_yaml_fail(doc, kn, err, errlen, "'key': %s", why);
    if (st.st_mode & 077)
        return cv_yaml_fail(doc, kn, err, errlen, "'key': %s is open to others (mode %03o): chmod 600 it",
                            self->tls_key_file, (unsigned) (st.st_mode & 0777));
    if (strstr(self->tls_key, "ENCRYPTED"))
        return cv_yaml_fail(doc, kn, err, errlen, "'key': %s is encrypted: civibus-api takes an"
                            " unencrypted key (openssl pkey -in KEY -out KEY2), readable by its user only",
                            self->tls_key_file);
    if (!strstr(self->tls_key, "PRIVATE KEY-----"))
        return cv_yaml_fail(doc, kn, err, errlen, "'key': %s holds no PEM private key"
                            " (-----BEGIN PRIVATE KEY-----)", self->tls_key_file);
    if (!s_pair_ok(self->tls_cert, self->tls_key, why, sizeof why))
        return cv_yaml_fail(doc, n, err, errlen, "'tls': the certificate and key are refused (not"
                            " valid, or the key is not the certificate's): %s", why);
    return 0;
}
