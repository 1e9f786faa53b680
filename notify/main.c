/*  civibus-notify — tells citizens, helpers, supervisors and other systems
    what happens to the requests (docs/notifications.md).

        civibus-notify --config deploy/notify.yaml
        civibus-notify --config deploy/notify.yaml --check-config
        civibus-notify --config deploy/notify.yaml --after-restore

    A process of its own, beside the hub: it reads the committed timeline
    like any feed consumer, so an SMTP server that is slow or down never
    touches the hub's ingest path. Start-up: config and templates
    (file:line errors, exit 2), database (exit 1 when unusable), then the
    loop until SIGINT/SIGTERM; a lost database connection is retried every
    few seconds, and what was in flight is recorded unknown at reconnect. */
#include "cv_log.h"
#include "cv_notifier.h"
#include "cv_notify_config.h"

#include <curl/curl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void) sig;
    s_stop = 1;
}

static void s_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    cv_log_init("notify", CV_LOG_INFO);
    const char *path = NULL;
    bool check = false, usage = false, restored = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--check-config") == 0)
            check = true;
        else if (strcmp(argv[i], "--after-restore") == 0)
            restored = true;
        else
            usage = true;
    }
    if (!path || usage) {
        fprintf(stderr, "usage: civibus-notify --config FILE [--check-config | --after-restore]\n");
        return 2;
    }
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "civibus-notify: cannot initialise libsodium or libcurl\n");
        return 1;
    }
    char err[1024];
    cv_notify_config_t *cfg = cv_notify_config_load(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    cv_notifier_t *n = cv_notifier_new(cfg, err, sizeof err);
    if (!n) {
        fprintf(stderr, "%s\n", err);
        cv_notify_config_destroy(&cfg);
        return 2;
    }
    if (check) {
        printf("%s: ok\n", path);
        cv_notifier_destroy(&n);
        cv_notify_config_destroy(&cfg);
        return 0;
    }
    struct sigaction sa = { .sa_handler = s_on_signal };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (cv_notifier_connect(n, err, sizeof err) < 0) {
        cv_error("main", "%s", err);
        cv_notifier_destroy(&n);
        cv_notify_config_destroy(&cfg);
        return 1;
    }
    if (restored) {                  /* once, after a restore and the adapters' resend */
        int rc = cv_notifier_after_restore(n, err, sizeof err);
        if (rc == 0)
            printf("%s\n", err);
        cv_notifier_destroy(&n);
        cv_notify_config_destroy(&cfg);
        curl_global_cleanup();
        return rc == 0 ? 0 : 1;
    }
    cv_info("main", "running: %zu webhook(s), sms %s, %zu service digest(s)", cfg->nwebhooks,
            cfg->sms_url ? "on" : "off", cfg->nsupervisors);
    while (!s_stop) {
        bool busy = false;
        if (cv_notifier_step(n, &busy) < 0) {
            while (!s_stop) {
                s_sleep_ms(2000);
                if (cv_notifier_connect(n, err, sizeof err) == 0)
                    break;
                cv_warn("main", "%s; trying again", err);
            }
            continue;
        }
        if (!busy)
            s_sleep_ms(cfg->poll_ms);
    }
    cv_info("main", "stopped");
    cv_notifier_destroy(&n);
    cv_notify_config_destroy(&cfg);
    curl_global_cleanup();
    return 0;
}
