/*  cv_run — `civibus-adapter run --config FILE`: one adapter process serving
    one source with the driver its config names (cv_driver.h).

    Loads the config (errors "file:line: reason", exit 2), opens the client
    (spool + hub connection), starts the driver, then alternates driver
    steps and client polls until SIGINT/SIGTERM. Exit codes: 0 stopped by a
    signal, 1 fatal error, 2 bad config, 3 the hub refused this adapter's
    key. Unsettled records stay in the spool for the next start. */
#ifndef CV_RUN_H
#define CV_RUN_H

int cv_run(const char *config_path);

#endif
