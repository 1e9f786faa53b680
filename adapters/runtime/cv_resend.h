/*  cv_resend — `civibus-adapter resend --config FILE --source NAME --since TIME`:
    after the hub's database was restored to an earlier point, send again
    every record of the source's spool that may have been settled at or
    after TIME (docs/adapters.md "After a restore").

    Two steps, each safe to interrupt: (1) with the spool opened alone,
    cv_spool_settled_since finds the first id that may have been settled
    since TIME and cv_spool_unsettle_from marks the retained records from
    there unsettled again (one atomic rewrite of settled.log); (2) the
    normal client opens the spool and delivers them as records left by a
    crash, then waits until every one is settled. The hub deduplicates by
    event id and content hash: what survived the restore is ACKed as a
    duplicate, what the restore lost is stored. Killed at any point, the
    command is simply run again.

    The source's `run` (or `replay`) must be stopped meanwhile: the spool
    allows one process. Exit codes as replay: 0 all settled, 1 fatal,
    2 usage or config, 3 key refused, 4 --timeout. */
#ifndef CV_RESEND_H
#define CV_RESEND_H

#include <stdint.h>

/* argv holds the options after the word "resend". */
int cv_resend_main(int argc, char **argv);

/* Parses "YYYY-MM-DD[T ]HH:MM[:SS[.fff]]" followed by "Z", "UTC" or an
   offset "+HH[:MM]" / "-HH[:MM]" (a space may come before the zone), or
   "@SECONDS" (unix time), into unix milliseconds. A time without a zone
   is refused: the spool's marks are UTC. 0 or -1. */
int cv_resend_parse_time(const char *text, int64_t *ms);

#endif
