/*  driver_imap_thread — what in a mail says which request it answers
    (docs/intake.md, "E-mail": the rule, in order).

      a. a recipient (To, Cc, Delivered-To, X-Original-To) that is one of our
         signed reply addresses (lib/cv_replyaddr.h; needs the key file):
         the tracking code it carries;
      b. else a tracking code in the subject: 11 characters of the codes'
         alphabet whose check character is right, written whole or with '-'
         or ' ' between groups ("KXD7-M4RT-9C"); a code with a wrong check
         character is no code;
      c. the Message-IDs of In-Reply-To and References, hashed (SHA-256 hex
         of the id without <>), In-Reply-To first: the hub looks them up in
         mail_threads.
    The driver only reads; the hub decides (functions/ingest.sql,
    cv_ingest_threads): a code that names no request, or hashes it does not
    know, thread nothing and the mail is a new request. */
#include "cv_imap.h"

#include "cv_replyaddr.h"

#include <ctype.h>
#include <sodium.h>
#include <string.h>

static const char s_alphabet[] = "ACDEFHJKLMNPRTUVWXY34679";

static int s_pos(char c)
{
    if (!c)
        return -1;
    const char *p = strchr(s_alphabet, c);
    return p ? (int) (p - s_alphabet) : -1;
}

bool cv_imap_code_checks(const char code[11])
{
    int sum = 0;
    for (int i = 0; i < 11; i++) {
        int v = s_pos(code[i]);
        if (v < 0)
            return false;
        sum += (i + 1) * v;
    }
    return sum % 29 == 0;
}

bool cv_imap_subject_code(const char *subject, char out[12])
{
    if (!subject)
        return false;
    for (const char *p = subject; *p; p++) {
        if (p > subject && isalnum((unsigned char) p[-1]))
            continue;                           /* a code starts a word */
        char code[12];
        int n = 0;
        const char *q = p;
        while (*q && n < 11) {
            if (s_pos(*q) >= 0) {
                code[n++] = *q++;
            } else if ((*q == '-' || *q == ' ') && n > 0 && s_pos(q[1]) >= 0) {
                q++;
            } else {
                break;
            }
        }
        if (n == 11 && !isalnum((unsigned char) *q)) {
            code[11] = '\0';
            if (cv_imap_code_checks(code)) {
                memcpy(out, code, 12);
                return true;
            }
        }
    }
    return false;
}

bool cv_imap_recipient_code(const unsigned char *key, size_t keylen, const char *value, size_t len,
                            char out[CV_REPLYADDR_CODE_MAX])
{
    if (!key || !keylen || !value)
        return false;
    const char *p = value, *end = value + len;
    while (p < end) {                           /* a list: "A <a@b>, c@d" */
        const char *comma = memchr(p, ',', (size_t) (end - p));
        const char *e = comma ? comma : end;
        while (p < e && isspace((unsigned char) *p))
            p++;
        size_t n = (size_t) (e - p);
        while (n > 0 && isspace((unsigned char) p[n - 1]))
            n--;
        if (n > 0 && n <= 512 && cv_replyaddr_read(key, keylen, p, n, out) == 0)
            return true;
        p = comma ? comma + 1 : end;
    }
    return false;
}

static void s_hash(const char *id, size_t n, char hex[65])
{
    unsigned char dig[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(dig, (const unsigned char *) id, n);
    sodium_bin2hex(hex, 65, dig, sizeof dig);
}

bool cv_imap_msgid_hash(const char *value, size_t len, char hex[65])
{
    const char *lt = memchr(value, '<', len);
    const char *gt = lt ? memchr(lt, '>', (size_t) (value + len - lt)) : NULL;
    if (lt && gt && gt > lt + 1) {
        s_hash(lt + 1, (size_t) (gt - lt - 1), hex);
        return true;
    }
    size_t a = 0, b = len;                      /* no <>: the value, trimmed */
    while (a < b && isspace((unsigned char) value[a])) a++;
    while (b > a && isspace((unsigned char) value[b - 1])) b--;
    if (a == b)
        return false;
    s_hash(value + a, b - a, hex);
    return true;
}

size_t cv_imap_msgid_hashes(const char *value, size_t len, json_t *hashes, size_t max)
{
    size_t added = 0;
    const char *p = value, *end = value + len;
    while (p < end && json_array_size(hashes) < max) {
        const char *lt = memchr(p, '<', (size_t) (end - p));
        if (!lt)
            break;
        const char *gt = memchr(lt, '>', (size_t) (end - lt));
        if (!gt)
            break;
        if (gt > lt + 1) {
            char hex[65];
            s_hash(lt + 1, (size_t) (gt - lt - 1), hex);
            bool seen = false;
            for (size_t i = 0; i < json_array_size(hashes) && !seen; i++)
                seen = strcmp(json_string_value(json_array_get(hashes, i)), hex) == 0;
            if (!seen && json_array_append_new(hashes, json_string(hex)) == 0)
                added++;
        }
        p = gt + 1;
    }
    return added;
}
