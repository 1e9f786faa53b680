/*  driver_imap — internals of the IMAP polling driver (`kind: imap`), shared
    by its files; the driver itself is only `cv_imap_driver`
    (cv_driver.h). docs/drivers/imap.md describes the YAML keys and the
    record.

      cv_imap_config.c  the `driver:` section -> cv_imap_config_t
      cv_imap_fetch.c   one IMAP session through libcurl (login, TLS), raw
                        commands: SELECT, UID SEARCH, UID FETCH BODY.PEEK[]
                        (never sets \Seen), UID STORE / UID MOVE
      cv_imap_mime.c    one raw mail -> the record (JSON): headers (RFC 2047),
                        the text part (quoted-printable, base64, charsets,
                        HTML reduced to text), automatic mails marked, the
                        mail's files kept (lib/cv_attach.c, attachments_dir)
      cv_imap_dsn.c     a delivery report's per-recipient fields (RFC 3464)
      cv_imap_charset.c a part's charset to UTF-8 (iconv)
      cv_imap_html.c    an HTML part reduced to text
      cv_imap_thread.c  which request a reply answers: signed reply address,
                        tracking code in the subject, Message-ID hashes
      cv_imap.c         the driver: poll, submit, mark done after the ACK

    Nothing here logs addresses, subjects, bodies or the password: only the
    URL's scheme, host and mailbox, UIDs, counts and IMAP status words. */
#ifndef CV_DRIVER_IMAP_H
#define CV_DRIVER_IMAP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/cv_driver.h"

/* ---------------------------------------------------------------- config */

typedef struct {
    char *url;                   /* imaps://host[:port] or imap://127.0.0.1:port */
    char *url_for_logs;          /* scheme://host[:port] */
    char *user;
    char *password;              /* from password_file; wiped on destroy */
    char *mailbox;               /* "INBOX" */
    char *flag;                  /* "\\Seen" or a keyword; NULL when done_folder */
    char *done_folder;           /* move there after the ACK, or NULL */
    char *ca_file;               /* NULL: system CAs */
    int64_t poll_ms;
    int64_t timeout_ms;
    int64_t batch;               /* mails fetched per step */
    int64_t max_mail_bytes;      /* a larger mail is submitted without its body */
    int64_t max_body_bytes;      /* body text kept in the record */
    char *attachments_dir;       /* the API's attachments folder (lib/cv_attach.h), or NULL: not kept */
    int64_t max_attachment_bytes;
    unsigned char reply_key[256];   /* reply_secret_file (cv_replyaddr), wiped on destroy */
    size_t reply_keylen;         /* 0: no key, signed reply addresses not read */
} cv_imap_config_t;

cv_imap_config_t *cv_imap_config_new(const cv_driver_ctx_t *ctx, char *err, size_t errlen);
void cv_imap_config_destroy(cv_imap_config_t **self_p);
/* True for a host that is a loopback address or "localhost". */
bool cv_imap_config_loopback(const char *host);

/* ------------------------------------------------------------------ fetch */

typedef struct cv_imap_session cv_imap_session_t;

/* Connects, logs in (libcurl: TLS for imaps://), selects the mailbox.
   NULL with a reason (no secret) in err. */
cv_imap_session_t *cv_imap_open(const cv_imap_config_t *config, char *err, size_t errlen);
void cv_imap_close(cv_imap_session_t **self_p);
uint64_t cv_imap_uidvalidity(const cv_imap_session_t *self);

/* UIDs of the mails not yet done (not flagged / still in the mailbox), in
   increasing order, at most max. Returns the count, or -1 (err). */
int cv_imap_search(cv_imap_session_t *self, uint64_t *uids, int max, char *err, size_t errlen);
/* The raw mail of one UID without touching its flags (BODY.PEEK[]). Returns
   0 with *data (malloc'ed) and *len; 1 when the mail is gone; -1 (err).
   *too_large: only the first max bytes were kept. */
int cv_imap_fetch(cv_imap_session_t *self, uint64_t uid, size_t max, char **data, size_t *len, bool *too_large,
                  char *err, size_t errlen);
/* Marks done: STORE +FLAGS.SILENT (flag), or UID MOVE to the folder. */
int cv_imap_done(cv_imap_session_t *self, const uint64_t *uids, int n, char *err, size_t errlen);

/* ------------------------------------------------------------------- mime */

typedef struct {
    size_t max_body_bytes;       /* 0: 8192 */
    const unsigned char *reply_key;  /* NULL: signed reply addresses not read */
    size_t reply_keylen;
    const char *attach_dir;      /* NULL: files counted, not kept (the fuzz harness, a too large mail) */
    size_t attach_max_bytes;     /* 0: 10 MiB */
} cv_imap_mime_opts_t;

/* Parses a raw mail into the record's fields (never fails on bad input:
   what cannot be read is left out and named in "problems"). Returns a new
   JSON object, NULL only when out of memory. */
json_t *cv_imap_mime_record(const char *raw, size_t len, const cv_imap_mime_opts_t *opts);

/* Helpers, exposed for the unit tests and the fuzz harness. Each returns
   malloc'ed NUL-terminated UTF-8 (invalid bytes become U+FFFD), or NULL. */
char *cv_imap_mime_to_utf8(const char *charset, const char *in, size_t len, bool *unknown);
char *cv_imap_mime_decode_header(const char *value, size_t len);
char *cv_imap_mime_html_text(const char *html, size_t len);
/* RFC 5322 date -> "YYYY-MM-DDTHH:MM:SSZ"; false when unreadable. */
bool cv_imap_mime_date(const char *value, char out[21]);

/* ----------------------------------------------------------------- thread */

#define CV_IMAP_THREAD_IDS_MAX 20    /* Message-ID hashes kept of In-Reply-To + References */

/* True when the 11 characters are a tracking code with its check character. */
bool cv_imap_code_checks(const char code[11]);
/* The first tracking code with a right check character in subject
   (whole, or with '-' / ' ' between groups), upper case, into out. */
bool cv_imap_subject_code(const char *subject, char out[12]);
/* A recipient list's first signed reply address: its code into out. */
bool cv_imap_recipient_code(const unsigned char *key, size_t keylen, const char *value, size_t len,
                            char out[16]);
/* SHA-256 hex of a Message-ID without its <> (the first <...>, else the
   trimmed value); false when empty. */
bool cv_imap_msgid_hash(const char *value, size_t len, char hex[65]);
/* Appends the hashes of each <id> in value to the array (no repeats, at
   most max in all); returns how many were added. */
size_t cv_imap_msgid_hashes(const char *value, size_t len, json_t *hashes, size_t max);

#endif
