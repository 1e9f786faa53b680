/*  cv_replyaddr — signed reply addresses: a reply threads into its request.

    Every mail civibus sends about a request (notify/) says Reply-To:
    <local>+<code>-<sig>@<domain>, built from the city's intake address
    (mairie@ville.fr), the request's tracking code (11 characters, upper
    case, no separator) and sig, the first 10 characters of the lower-case
    base32 (RFC 4648 alphabet) of HMAC-SHA256(key, "civibus-reply:" code).
    The city's mail server delivers +extensions to the intake mailbox (the
    usual "recipient delimiter"), so a citizen's reply reaches the imap
    adapter, which reads the address back: a valid signature proves the
    address was one we wrote, so the reply is about that request — whoever
    sends it (docs/intake.md, "Replies"). A forged or edited address reads
    as none: the mail is then matched by the other rules, or becomes a new
    request. 50 bits of signature: guessing one costs 2^49 mails on average.

    The key is a secret of at least 32 bytes shared by the notifier and the
    imap adapter (deploy: var/keys/reply_secret). */
#ifndef CV_REPLYADDR_H
#define CV_REPLYADDR_H

#include <stddef.h>

#define CV_REPLYADDR_CODE_MAX 16      /* a tracking code, with its NUL */
#define CV_REPLYADDR_SIG_LEN 10
#define CV_REPLYADDR_KEY_MIN 32

/* Writes the reply address for code into out. intake is an addr-spec
   (local@domain, no '+' in local). Returns 0, or -1 when intake or code
   is not one, the key is shorter than CV_REPLYADDR_KEY_MIN or out is too
   small. */
int cv_replyaddr_make(const unsigned char *key, size_t keylen, const char *intake, const char *code,
                      char *out, size_t outlen);

/* Reads a recipient address (an addr-spec, or text holding one in <...>,
   any case): when it is <local>+<code>-<sig>@<domain> with sig valid for
   code under key, writes the code (upper case) and returns 0; else -1.
   Compares the signature in constant time. Reads at most 512 bytes. */
int cv_replyaddr_read(const unsigned char *key, size_t keylen, const char *addr, size_t len,
                      char code[CV_REPLYADDR_CODE_MAX]);

/* Loads a key file: its bytes (whitespace at the end removed) are the key.
   Returns 0, or -1 with err filled ("PATH: reason") when the file cannot
   be read, is readable by others than its owner (mode & 077) or holds
   fewer than CV_REPLYADDR_KEY_MIN bytes. */
int cv_replyaddr_key_load(const char *path, unsigned char *key, size_t cap, size_t *keylen, char *err,
                          size_t errlen);

#endif
