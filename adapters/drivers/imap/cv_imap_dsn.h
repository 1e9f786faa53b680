/*  driver_imap_dsn — the per-recipient fields of a delivery status
    notification (RFC 3464, message/delivery-status), read from outside
    input: anyone can send a mail shaped like a bounce, so this only reads;
    the hub decides what a DSN may change (functions/suppressions.sql: only
    a DSN about a mail we sent, for the address we sent it to).

    The record gets
      "dsn": {"returned_message_id_hash": "<SHA-256 hex of the Message-ID
               of the returned headers>",
              "recipients": [{"recipient": "a@b", "original_recipient": "a@b",
                              "action": "failed", "status": "5.1.1",
                              "permanent": true}, ...],
              "recipients_dropped": N}
    Addresses are lower-cased, type rfc822 only, at most 320 bytes, no
    blank or control character; Action one of failed, delayed, delivered,
    relayed, expanded; Status "class.subject.detail" (class 2, 4 or 5,
    numbers without leading zeros); a field that is not that is left out,
    a recipient without a readable address is skipped; at most
    CV_IMAP_DSN_MAX recipients (the rest counted in recipients_dropped). */
#ifndef CV_DRIVER_IMAP_DSN_H
#define CV_DRIVER_IMAP_DSN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define CV_IMAP_DSN_MAX 50            /* recipients kept of one DSN */
#define CV_IMAP_DSN_MAX_BYTES 65536   /* of the delivery-status part read */

/* Permanent: Action failed and Status class 5, except 5.2.2 (mailbox
   full: transient in practice). 4.x.x never. */
bool cv_imap_dsn_permanent(const char *action, const char *status);

/* Normalises a Status value ("5.01.1 (user unknown)" -> "5.1.1") into out;
   false when it is not one. */
bool cv_imap_dsn_status(const char *value, size_t len, char out[16]);

/* Parses the delivery-status text (already transfer-decoded); returns a new
   "dsn" object (recipients array, maybe empty), NULL when out of memory.
   returned_hash: the Message-ID hash of the returned headers, or NULL. */
json_t *cv_imap_dsn_parse(const char *text, size_t len, const char *returned_hash);

#endif
