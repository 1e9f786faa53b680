/*  ctl_attachments — `civibusctl attachments gc [--dry-run] [--grace-minutes N]`
    (docs/attachments.md, "Erasure and gc").

    Deletes the files of attachments.dir that no `attachments` row names
    (erased citizens', expired requests', refused registrations'), and the
    stray temporary files (".<sha>.<pid>.tmp") older than an hour. A file
    younger than the grace (default 60 minutes) is kept: a writer that does
    not take the folder's lock (the hub, for mail attachments) may not have
    committed its row yet. Each fan-out folder is swept under the folder's
    advisory lock taken exclusively (api_attachments.h, CV_API_ATTACH_LOCK):
    an API registration in progress holds it shared from its first write to
    its commit. It prints counts and bytes only (never a name), and warns
    of rows whose file is missing (restore them from the backup).
    Exit codes: 0 ok, 1 database or folder error, 2 usage. */
#ifndef CTL_ATTACHMENTS_H
#define CTL_ATTACHMENTS_H

#include "api_config.h"

/* argv[0] is "attachments". */
int cv_ctl_attachments_main(const cv_api_config_t *cfg, int argc, char **argv);

#endif
