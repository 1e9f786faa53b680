/*  cv_notifier — the notifier's loop over the database (docs/notifications.md).

    Each step: (1) plan — cv_notify_plan (functions/notify.sql) reads the
    events after the cursor and writes their ledger rows in the transaction
    that moves the cursor; (2) the services' daily digests due today get
    their row (one per service and day, whatever the restarts); (3) send —
    each due row is committed 'sending' (with its Message-ID in
    mail_threads) before its send, then 'sent', 'failed', 'unknown', or back
    to 'planned' with a back-off; a citizen's digest rows (digest_citoyen)
    due together are claimed, sent and settled as one mail. At start, rows left 'sending' by a killed
    notifier become 'unknown' and are counted in the log. One notifier per
    database: a session advisory lock refuses a second one. */
#ifndef CV_NOTIFIER_H
#define CV_NOTIFIER_H

#include "cv_notify_config.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct cv_notifier cv_notifier_t;

/* Loads the templates; NULL with err ("file:line: reason"). */
cv_notifier_t *cv_notifier_new(const cv_notify_config_t *cfg, char *err, size_t errlen);
void cv_notifier_destroy(cv_notifier_t **self_p);

/* Connects, takes the lock, marks interrupted sends unknown, creates the
   cursor. -1 with err when the database cannot be used. */
int cv_notifier_connect(cv_notifier_t *self, char *err, size_t errlen);

/* After a restore of the database: 'planned' rows become 'unknown'
   ('restored') and the cursor moves to the last event, so nothing the
   notifier may have sent after the backup's point is sent again. After
   cv_notifier_connect. 0 with a summary in out (counts, event ids), or -1. */
int cv_notifier_after_restore(cv_notifier_t *self, char *out, size_t outlen);

/* One pass: plan, digests, send what is due. *busy: more work is waiting
   (call again at once). -1 on a database error (reconnect). */
int cv_notifier_step(cv_notifier_t *self, bool *busy);

#endif
