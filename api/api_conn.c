/*  api_conn — see api_conn.h. A fixed array of slots, a free list, one
    mutex, one watcher thread. Counting an address's connections scans the
    used slots: at most http.connections, a few microseconds. */
#include "api_conn.h"

#include "cv_alloc.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

typedef struct slot {
    bool used;
    bool trusted;               /* a trusted proxy: no per-address limit */
    bool cut;                   /* shut down at its deadline already */
    int fd;
    int family;
    unsigned char addr[16];     /* IPv4: 4 bytes; IPv6: its /64 (8 bytes) */
    int64_t deadline_ms;        /* 0 = none (a request is being served) */
    struct slot *next_free;
} slot_t;

struct cv_api_conn {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool stopping;
    int64_t timeout_ms;         /* 0 = no deadline */
    int per_address;
    const cv_api_config_t *cfg;
    slot_t *slots;
    size_t nslots;
    slot_t *free;
    uint64_t cut, refused;
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *s_watch(void *arg)
{
    cv_api_conn_t *self = arg;
    pthread_mutex_lock(&self->lock);
    while (!self->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&self->wake, &self->lock, &until);
        int64_t now = s_now_ms();
        for (size_t i = 0; i < self->nslots; i++) {
            slot_t *s = &self->slots[i];
            if (s->used && !s->cut && s->deadline_ms && now >= s->deadline_ms) {
                shutdown(s->fd, SHUT_RDWR);
                s->cut = true;
                self->cut++;
            }
        }
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

cv_api_conn_t *cv_api_conn_new(const cv_api_config_t *cfg)
{
    cv_api_conn_t *self = cv_zcalloc(1, sizeof *self);
    self->cfg = cfg;
    self->timeout_ms = (int64_t) cfg->header_timeout_s * 1000;
    self->per_address = cfg->per_address_connections;
    self->nslots = (size_t) cfg->max_connections;
    self->slots = cv_zcalloc(self->nslots, sizeof *self->slots);
    for (size_t i = self->nslots; i-- > 0; ) {
        self->slots[i].next_free = self->free;
        self->free = &self->slots[i];
    }
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->wake, NULL);
    if (pthread_create(&self->thread, NULL, s_watch, self) != 0) {
        pthread_cond_destroy(&self->wake);
        pthread_mutex_destroy(&self->lock);
        free(self->slots);
        free(self);
        return NULL;
    }
    return self;
}

void cv_api_conn_destroy(cv_api_conn_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cv_api_conn_t *self = *self_p;
    pthread_mutex_lock(&self->lock);
    self->stopping = true;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
    pthread_join(self->thread, NULL);
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->lock);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

/* The connection's address as a slot keeps it; false when it has none. */
static bool s_address(struct MHD_Connection *conn, slot_t *s, bool *trusted, const cv_api_config_t *cfg)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return false;
    const struct sockaddr *sa = ci->client_addr;
    memset(s->addr, 0, sizeof s->addr);
    if (sa->sa_family == AF_INET) {
        const struct in_addr *a = &((const struct sockaddr_in *) sa)->sin_addr;
        memcpy(s->addr, a, 4);
        *trusted = cv_api_config_trusted(cfg, AF_INET, a);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *) sa)->sin6_addr;
        memcpy(s->addr, a, 8);
        *trusted = cv_api_config_trusted(cfg, AF_INET6, a);
    } else
        return false;
    s->family = sa->sa_family;
    return true;
}

void cv_api_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                         enum MHD_ConnectionNotificationCode toe)
{
    cv_api_conn_t *self = cls;
    if (!self)
        return;
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        slot_t *s = *socket_context;
        if (!s)
            return;
        pthread_mutex_lock(&self->lock);
        s->used = false;
        s->next_free = self->free;
        self->free = s;
        pthread_mutex_unlock(&self->lock);
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *fi = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    slot_t probe = { 0 };
    bool trusted = false;
    bool known = s_address(conn, &probe, &trusted, self->cfg);
    *socket_context = NULL;
    if (!fi)
        return;
    pthread_mutex_lock(&self->lock);
    size_t same = 0;
    if (known && !trusted)
        for (size_t i = 0; i < self->nslots; i++) {
            const slot_t *o = &self->slots[i];
            if (o->used && o->family == probe.family && memcmp(o->addr, probe.addr, sizeof o->addr) == 0)
                same++;
        }
    slot_t *s = self->free;
    if (same >= (size_t) self->per_address || !s) {
        self->refused++;
        pthread_mutex_unlock(&self->lock);
        shutdown(fi->connect_fd, SHUT_RDWR);
        return;
    }
    self->free = s->next_free;
    memcpy(s->addr, probe.addr, sizeof s->addr);
    s->family = probe.family;
    s->trusted = trusted;
    s->used = true;
    s->cut = false;
    s->fd = fi->connect_fd;
    s->deadline_ms = self->timeout_ms ? s_now_ms() + self->timeout_ms : 0;
    pthread_mutex_unlock(&self->lock);
    *socket_context = s;
}

static slot_t *s_slot(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void cv_api_conn_head_done(cv_api_conn_t *self, struct MHD_Connection *conn)
{
    slot_t *s = self ? s_slot(conn) : NULL;
    if (!s)
        return;
    pthread_mutex_lock(&self->lock);
    s->deadline_ms = 0;
    pthread_mutex_unlock(&self->lock);
}

void cv_api_conn_request_done(cv_api_conn_t *self, struct MHD_Connection *conn)
{
    slot_t *s = self ? s_slot(conn) : NULL;
    if (!s || !self->timeout_ms)
        return;
    pthread_mutex_lock(&self->lock);
    s->deadline_ms = s_now_ms() + self->timeout_ms;
    pthread_mutex_unlock(&self->lock);
}

bool cv_api_conn_forwarded(const cv_api_config_t *cfg, const char *xff, int *family,
                           unsigned char addr[16])
{
    if (!xff)
        return false;
    const char *end = xff + strlen(xff);
    while (end > xff) {
        const char *start = end;
        while (start > xff && start[-1] != ',')
            start--;
        const char *a = start, *b = end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        char text[64];
        size_t n = (size_t) (b - a);
        if (n == 0 || n >= sizeof text)
            return false;
        memcpy(text, a, n);
        text[n] = 0;
        memset(addr, 0, 16);
        if (inet_pton(AF_INET, text, addr) == 1)
            *family = AF_INET;
        else if (inet_pton(AF_INET6, text, addr) == 1)
            *family = AF_INET6;
        else
            return false;               /* a broken chain: nothing left of it is reliable */
        if (!cv_api_config_trusted(cfg, *family, addr))
            return true;
        end = start > xff ? start - 1 : start;
    }
    return false;
}

uint64_t cv_api_conn_cut(cv_api_conn_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t n = self->cut;
    pthread_mutex_unlock(&self->lock);
    return n;
}

uint64_t cv_api_conn_refused(cv_api_conn_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t n = self->refused;
    pthread_mutex_unlock(&self->lock);
    return n;
}
