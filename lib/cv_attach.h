/*  cv_attach — the attachments store: a content-addressed folder.

    A scanned letter, a photo of a pothole, a PDF sent by mail: their bytes
    are kept in one folder, each file named by the SHA-256 of its content
    (DIR/ab/abcdef…, two-character fan-out), written to a temporary name,
    fsync'ed, renamed, and the folder fsync'ed — so a file named here is
    whole and durable, and the same bytes attached twice are stored once.
    The rows saying which request has which file are in PostgreSQL
    (`attachments`, schemas/sql/025_mail_attachments.sql); a file is written
    before its row commits, so a crash in between leaves at worst a file no
    row names, which `civibusctl attachments gc` removes.

    Why a folder and not PostgreSQL (docs/attachments.md): 100,000 letters a
    year scanned at 0.5–2 MB is 50–200 GB a year; in the database they would
    multiply the size of every base backup and WAL archive, and vacuum them.
    A folder is backed up with rsync, deduplicated by name, and a file read
    does not hold a database connection.

    Only PDF, JPEG and PNG are accepted, recognised by their first bytes
    (never by a name or a declared type), up to a size cap. */
#ifndef CV_ATTACH_H
#define CV_ATTACH_H

#include <stddef.h>

#define CV_ATTACH_SHA_LEN 64

typedef struct {
    char sha256[CV_ATTACH_SHA_LEN + 1];
    const char *mime;                /* "application/pdf", "image/jpeg", "image/png" (static) */
    size_t size;
} cv_attach_info_t;

/* The type of data by its first bytes, or NULL when it is none we keep. */
const char *cv_attach_sniff(const void *data, size_t len);

/* Stores data under dir (created 0700 if missing; a dir shared with its
   group, mode 07x0, gets files its group may read) and fills info. Returns
   0 (stored now, or there already), or -1 with err filled: an empty or
   larger than max_bytes content, a type not kept ("not a PDF, JPEG or PNG
   file"), or an I/O error (with the path). Never logs. */
int cv_attach_put(const char *dir, const void *data, size_t len, size_t max_bytes, cv_attach_info_t *info,
                  char *err, size_t errlen);

/* The path of the file named sha256 under dir into out (whether or not it
   exists). -1 when sha256 is not 64 lower-case hex digits or out is short. */
int cv_attach_path(const char *dir, const char *sha256, char *out, size_t outlen);

/* True when sha256 is 64 lower-case hexadecimal digits. */
int cv_attach_sha_ok(const char *sha256);

#endif
