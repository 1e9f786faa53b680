/*  fuzz_replyaddr — a recipient address read back as a signed reply
    address (lib/cv_replyaddr.c): the To: or Delivered-To: of any mail.

    Checked: reading never overruns (ASan), and an address that reads as
    valid names a well-formed code whose address, made again, reads back
    as the same code. With a random key an input is valid only by
    forgery, which the run would show as a hit on a corpus without one. */
#include "fuzz_util.h"

#include <string.h>

#include "cv_replyaddr.h"

static const unsigned char KEY[] = "fuzz-reply-key-0123456789abcdef-0123456789";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char code[CV_REPLYADDR_CODE_MAX];
    if (cv_replyaddr_read(KEY, sizeof KEY - 1, (const char *) data, size, code) != 0)
        return 0;
    size_t n = strlen(code);
    fuzz_check(n >= 6 && n < CV_REPLYADDR_CODE_MAX, "code of %zu characters", n);
    char again[128], back[CV_REPLYADDR_CODE_MAX];
    fuzz_check(cv_replyaddr_make(KEY, sizeof KEY - 1, "mairie@ville.fr", code, again, sizeof again) == 0,
               "cannot make the address of a code read");
    fuzz_check(cv_replyaddr_read(KEY, sizeof KEY - 1, again, strlen(again), back) == 0 && strcmp(back, code) == 0,
               "made address does not read back");
    return 0;
}
