/*  migrate — the hub's start-up schema step alone, for the tests.

    migrate CONNINFO DIR

    Opens a store the way civibus-hub does at start-up (cv_store_new: the
    durability check, then hub/store/cv_migrate.c over DIR: the numbered migrations,
    then the repeatable files of DIR/functions), and closes it. The runner's
    log lines go to stderr; a failure prints the store's error there. Exit 0
    when the schema is up to date, 1 otherwise. */
#include "cv_log.h"
#include "store/cv_store.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: migrate CONNINFO DIR\n");
        return 2;
    }
    cv_log_init("migrate", CV_LOG_INFO);
    char err[1024] = "";
    cv_store_t *store = cv_store_new(argv[1], argv[2], err, sizeof err);
    if (!store) {
        fprintf(stderr, "migrate: %s\n", err);
        return 1;
    }
    cv_store_destroy(&store);
    return 0;
}
