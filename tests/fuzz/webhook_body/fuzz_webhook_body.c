/*  fuzz_webhook_body — what a webhook POST carries
    (adapters/drivers/webhook/cv_webhook_body.c): its signature header,
    checked with cv_webhook_body_signature_ok, and its body, cut into
    records with cv_webhook_body_split, in object and in array mode.

    Input: one byte of options (array mode, and whether the header is the
    body's real signature, in lower or upper case, or the fuzzed text),
    the signature header up to the first newline, then the body.
    Checked:
      - a header is accepted exactly when it is the prefix followed by the
        body's HMAC in hex, either case (compared against
        cv_webhook_body_sign), and a real signature with one digit changed
        is refused;
      - the spans lie inside the body; for a JSON body, each span, parsed
        alone, is the value jansson finds at its place in the whole body
        (the element of the array, or the body): records are cut without
        re-encoding, so the hub stores exactly what was sent; the verdict
        is RECORDS exactly when those values are all objects;
      - a body that is not JSON is one span, the whole body. */
#include "fuzz_util.h"

#include <ctype.h>
#include <jansson.h>
#include <strings.h>

#include "drivers/webhook/cv_webhook_body.h"

static const char s_key[] = "a webhook secret of the fuzz harness";
static const char s_prefix[] = "sha256=";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

static void s_signature(uint8_t opt, const char *given, const uint8_t *body, size_t len)
{
    char sig[CV_WEBHOOK_SIG_HEX + 1], header[sizeof s_prefix + CV_WEBHOOK_SIG_HEX + 64];
    cv_webhook_body_sign(s_key, sizeof s_key - 1, body, len, sig);
    fuzz_check(strlen(sig) == CV_WEBHOOK_SIG_HEX, "signature of %zu digits", strlen(sig));
    if (opt & 2) {                              /* the real one, maybe upper case, maybe altered */
        snprintf(header, sizeof header, "%s%s", s_prefix, sig);
        if (opt & 4)
            for (char *p = header + sizeof s_prefix - 1; *p; p++)
                *p = (char) toupper((unsigned char) *p);
        bool ok = cv_webhook_body_signature_ok(s_key, sizeof s_key - 1, s_prefix, header, body, len);
        fuzz_check(ok, "the body's own signature refused: %s", header);
        size_t at = sizeof s_prefix - 1 + (opt >> 3) % CV_WEBHOOK_SIG_HEX;
        header[at] = header[at] == '0' ? '1' : '0';
        ok = cv_webhook_body_signature_ok(s_key, sizeof s_key - 1, s_prefix, header, body, len);
        fuzz_check(!ok, "an altered signature accepted: %s", header);
        return;
    }
    bool ok = cv_webhook_body_signature_ok(s_key, sizeof s_key - 1, s_prefix, given, body, len);
    bool want = strncmp(given, s_prefix, sizeof s_prefix - 1) == 0
                && strlen(given) == sizeof s_prefix - 1 + CV_WEBHOOK_SIG_HEX
                && strncasecmp(given + sizeof s_prefix - 1, sig, CV_WEBHOOK_SIG_HEX) == 0;
    fuzz_check(ok == want, "header accepted %d, is the signature %d", ok, want);
    fuzz_check(!cv_webhook_body_signature_ok(s_key, sizeof s_key - 1, s_prefix, NULL, body, len),
               "no header accepted");
}

static void s_split(bool array, const uint8_t *data, size_t len)
{
    const char *body = (const char *) data;
    cv_webhook_span_t *spans = NULL;
    size_t count = 99;
    cv_webhook_verdict_t v = cv_webhook_body_split(body, len, array, &spans, &count);
    fuzz_check(v != CV_WEBHOOK_BODY_NO_MEMORY, "out of memory");
    for (size_t i = 0; i < count; i++)
        fuzz_check(spans[i].offset <= len && spans[i].len <= len - spans[i].offset, "span %zu outside", i);
    json_t *whole = json_loadb(body, len, 0, NULL);
    if (!whole) {
        fuzz_check(v == CV_WEBHOOK_BODY_NOT_JSON && count == 1 && spans[0].offset == 0 && spans[0].len == len,
                   "a body that is not JSON: verdict %d, %zu spans", v, count);
    } else {
        bool list = array && json_is_array(whole);
        size_t n = list ? json_array_size(whole) : 1;
        fuzz_check(count == n, "%zu spans for %zu values", count, n);
        bool objects = true;
        for (size_t i = 0; i < n; i++) {
            json_t *want = list ? json_array_get(whole, i) : whole;
            objects = objects && json_is_object(want);
            json_t *got = json_loadb(body + spans[i].offset, spans[i].len, JSON_DECODE_ANY, NULL);
            fuzz_check(got && json_equal(got, want), "span %zu (%zu+%zu) is not value %zu", i, spans[i].offset,
                       spans[i].len, i);
            json_decref(got);
        }
        fuzz_check((v == CV_WEBHOOK_BODY_RECORDS) == objects, "verdict %d, all objects %d", v, objects);
        fuzz_check(v != CV_WEBHOOK_BODY_NOT_JSON, "JSON called not JSON");
        json_decref(whole);
    }
    free(spans);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t opt = fuzz_take_byte(&data, &size);
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl ? (size_t) (nl - data) : 0;
    char *header = fuzz_strndup(data, hlen);
    if (nl) {
        data += hlen + 1;
        size -= hlen + 1;
    }
    s_signature(opt, header, data, size);
    s_split(opt & 1, data, size);
    s_split(!(opt & 1), data, size);
    free(header);
    return 0;
}
