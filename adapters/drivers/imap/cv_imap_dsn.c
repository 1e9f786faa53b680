/*  driver_imap_dsn — RFC 3464 delivery-status fields (cv_imap_dsn.h).

    The part is read as blocks of fields separated by blank lines: the first
    block is about the message (Reporting-MTA, Arrival-Date), each later one
    about a recipient. Every block that names a Final-Recipient or an
    Original-Recipient is a recipient; in a block the first occurrence of a
    field counts; folded lines are unfolded; a line ends at LF (a CR before
    it dropped), so a CR inside a value stays in it and makes the value
    unreadable (never a field of its own). Values are bounded (FIELD_MAX)
    and the part itself (CV_IMAP_DSN_MAX_BYTES), the recipients kept too
    (CV_IMAP_DSN_MAX). Nothing is logged. */
#include "cv_imap_dsn.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define FIELD_MAX 400                 /* a field value kept (an address is <= 320) */
#define ADDR_MAX 320

enum { F_FINAL, F_ORIG, F_ACTION, F_STATUS, F_COUNT };
static const char *const s_names[F_COUNT] = { "Final-Recipient", "Original-Recipient", "Action", "Status" };

typedef struct {
    char value[F_COUNT][FIELD_MAX + 1];
    size_t len[F_COUNT];
    bool seen[F_COUNT];
    bool too_long[F_COUNT];
    int current;                      /* the field a folded line continues, or -1 */
} block_t;

bool cv_imap_dsn_status(const char *value, size_t len, char out[16])
{
    size_t i = 0;
    while (i < len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    unsigned n[3] = { 0, 0, 0 };
    for (int k = 0; k < 3; k++) {
        size_t digits = 0;
        while (i < len && isdigit((unsigned char) value[i]) && digits < 4) {
            n[k] = n[k] * 10 + (unsigned) (value[i] - '0');
            i++;
            digits++;
        }
        if (digits == 0 || digits > 3 || (i < len && isdigit((unsigned char) value[i])))
            return false;
        if (k < 2) {
            if (i >= len || value[i] != '.')
                return false;
            i++;
        }
    }
    /* what follows: nothing, or blanks then a comment */
    while (i < len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    if (i < len && value[i] != '(')
        return false;
    if (n[0] != 2 && n[0] != 4 && n[0] != 5)
        return false;
    snprintf(out, 16, "%u.%u.%u", n[0], n[1], n[2]);
    return true;
}

bool cv_imap_dsn_permanent(const char *action, const char *status)
{
    return action && status && strcmp(action, "failed") == 0 && strncmp(status, "5.", 2) == 0 &&
           strcmp(status, "5.2.2") != 0;
}

/* "rfc822; <Jeanne@Exemple.FR>" -> "jeanne@exemple.fr"; false when the type
   is not rfc822 or the address is not one a suppression can hold. */
static bool s_address(const char *v, size_t len, char out[ADDR_MAX + 1])
{
    const char *semi = memchr(v, ';', len);
    if (!semi)
        return false;
    const char *t = v, *te = semi;
    while (t < te && (*t == ' ' || *t == '\t')) t++;
    while (te > t && (te[-1] == ' ' || te[-1] == '\t')) te--;
    if (te - t != 6 || strncasecmp(t, "rfc822", 6) != 0)
        return false;
    const char *a = semi + 1, *end = v + len;
    while (a < end && (*a == ' ' || *a == '\t')) a++;
    const char *ae = a;
    while (ae < end && *ae != ' ' && *ae != '\t') ae++;
    for (const char *r = ae; r < end; r++) {          /* then blanks, or a comment */
        if (*r == '(')
            break;
        if (*r != ' ' && *r != '\t')
            return false;
    }
    if (ae - a >= 2 && *a == '<' && ae[-1] == '>') { a++; ae--; }
    size_t n = (size_t) (ae - a);
    if (n < 3 || n > ADDR_MAX)
        return false;
    const char *at = NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) a[i];
        if (c <= 0x20 || c >= 0x7f || strchr("<>()[],;:\"\\", c))
            return false;
        if (c == '@')
            at = a + i;
        out[i] = (char) tolower(c);
    }
    out[n] = '\0';
    return at && at != a && at != ae - 1 && strchr(out, '@') == strrchr(out, '@');
}

static bool s_action(const char *v, size_t len, char out[16])
{
    static const char *const known[] = { "failed", "delayed", "delivered", "relayed", "expanded" };
    size_t i = 0, n = 0;
    while (i < len && (v[i] == ' ' || v[i] == '\t')) i++;
    char word[16];
    while (i < len && n + 1 < sizeof word && isalpha((unsigned char) v[i]))
        word[n++] = (char) tolower((unsigned char) v[i++]);
    word[n] = '\0';
    while (i < len && (v[i] == ' ' || v[i] == '\t')) i++;
    if (i < len && v[i] != '(')
        return false;
    for (size_t k = 0; k < sizeof known / sizeof *known; k++)
        if (strcmp(word, known[k]) == 0) {
            snprintf(out, 16, "%s", word);
            return true;
        }
    return false;
}

static void s_add(block_t *b, int f, const char *v, size_t n)
{
    if (b->len[f] + n > FIELD_MAX) {
        b->too_long[f] = true;
        return;
    }
    memcpy(b->value[f] + b->len[f], v, n);
    b->len[f] += n;
    b->value[f][b->len[f]] = '\0';
}

/* One block ended: a recipient when it names one. */
static void s_emit(block_t *b, json_t *list, size_t *dropped)
{
    char final[ADDR_MAX + 1], orig[ADDR_MAX + 1], action[16], status[16];
    bool has_final = b->seen[F_FINAL] && !b->too_long[F_FINAL] && s_address(b->value[F_FINAL], b->len[F_FINAL], final);
    bool has_orig = b->seen[F_ORIG] && !b->too_long[F_ORIG] && s_address(b->value[F_ORIG], b->len[F_ORIG], orig);
    bool has_action = b->seen[F_ACTION] && !b->too_long[F_ACTION] && s_action(b->value[F_ACTION], b->len[F_ACTION], action);
    bool has_status = b->seen[F_STATUS] && !b->too_long[F_STATUS] && cv_imap_dsn_status(b->value[F_STATUS], b->len[F_STATUS], status);
    bool named = b->seen[F_FINAL] || b->seen[F_ORIG];
    memset(b, 0, sizeof *b);
    b->current = -1;
    if (!named)
        return;
    if (!has_final && !has_orig) {
        ++*dropped;
        return;
    }
    if (json_array_size(list) >= CV_IMAP_DSN_MAX) {
        ++*dropped;
        return;
    }
    json_t *r = json_object();
    if (!r)
        return;
    /* the recipient: Final-Recipient, else the original one */
    json_object_set_new(r, "recipient", json_string(has_final ? final : orig));
    if (has_orig)
        json_object_set_new(r, "original_recipient", json_string(orig));
    if (has_action)
        json_object_set_new(r, "action", json_string(action));
    if (has_status)
        json_object_set_new(r, "status", json_string(status));
    json_object_set_new(r, "permanent",
                        json_boolean(cv_imap_dsn_permanent(has_action ? action : NULL, has_status ? status : NULL)));
    json_array_append_new(list, r);
}

json_t *cv_imap_dsn_parse(const char *text, size_t len, const char *returned_hash)
{
    json_t *dsn = json_object(), *list = json_array();
    if (!dsn || !list) {
        json_decref(dsn);
        json_decref(list);
        return NULL;
    }
    if (len > CV_IMAP_DSN_MAX_BYTES)
        len = CV_IMAP_DSN_MAX_BYTES;
    block_t b = { .current = -1 };
    size_t dropped = 0;
    const char *p = text, *end = text ? text + len : NULL;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t) (end - p));
        const char *le = eol ? eol : end;
        if (le > p && le[-1] == '\r')
            le--;
        bool blank = true;
        for (const char *s = p; s < le; s++)
            if (*s != ' ' && *s != '\t') { blank = false; break; }
        if (blank) {
            s_emit(&b, list, &dropped);
        } else if (*p == ' ' || *p == '\t') {
            if (b.current >= 0)
                s_add(&b, b.current, p, (size_t) (le - p));
        } else {
            b.current = -1;
            const char *colon = memchr(p, ':', (size_t) (le - p));
            for (int f = 0; colon && f < F_COUNT; f++) {
                size_t nl = strlen(s_names[f]);
                const char *ne = colon;
                while (ne > p && (ne[-1] == ' ' || ne[-1] == '\t')) ne--;
                if ((size_t) (ne - p) == nl && strncasecmp(p, s_names[f], nl) == 0) {
                    if (!b.seen[f]) {
                        b.seen[f] = true;
                        b.current = f;
                        s_add(&b, f, colon + 1, (size_t) (le - colon - 1));
                    }
                    break;
                }
            }
        }
        p = eol ? eol + 1 : end;
    }
    s_emit(&b, list, &dropped);
    if (returned_hash)
        json_object_set_new(dsn, "returned_message_id_hash", json_string(returned_hash));
    json_object_set_new(dsn, "recipients", list);
    if (dropped)
        json_object_set_new(dsn, "recipients_dropped", json_integer((json_int_t) dropped));
    return dsn;
}
