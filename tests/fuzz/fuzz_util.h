/*  fuzz_util — what the libFuzzer harnesses of tests/fuzz/ share.

    Each harness is one file, tests/fuzz/<target>/fuzz_<target>.c, built by
    `make fuzz-bin` with clang -fsanitize=fuzzer,address,undefined against
    the product's own objects (build-fuzz/): it calls a parser through its
    real entry point and checks what the parser promises (its header), so a
    wrong answer is a finding as much as a crash. Included by harnesses only.

      fuzz_quiet()         no log lines: a parser that logs would print
                           millions of them (cv_log filters below ERROR+1)
      fuzz_file()          the bytes as a file, for the loaders that only
                           take a path (config and mapping YAML): one file
                           in a private folder, rewritten for each input;
                           fuzz_put() and fuzz_copy() put the files such a
                           config names beside it
      fuzz_take_byte()     a byte of options off the front of the input
      fuzz_error_form()    whether an error reads "file:line: reason"
      fuzz_check()         a failed promise: prints it and aborts, which
                           libFuzzer reports as a crash with the input */
#ifndef CV_FUZZ_UTIL_H
#define CV_FUZZ_UTIL_H

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cv_log.h"

/* Whether a tracking code read (cv_api_tracking_code) is the text it came
   from: the same characters, case aside, without the '-' and ' ' people
   write between them. */
static inline bool fuzz_code_from(const char *code, const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '-' || *p == ' ')
            continue;
        if (!code[n] || toupper((unsigned char) *p) != code[n])
            return false;
        n++;
    }
    return code[n] == '\0';
}

static inline void fuzz_quiet(void)
{
    cv_log_init("fuzz", (cv_log_level_t) (CV_LOG_ERROR + 1));
}

#define fuzz_check(cond, ...) do { \
        if (!(cond)) { \
            fprintf(stderr, "fuzz check failed at %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__); \
            fputc('\n', stderr); \
            abort(); \
        } \
    } while (0)

static char fuzz__dir[64];

static inline int fuzz__rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static inline void fuzz__cleanup(void)
{
    nftw(fuzz__dir, fuzz__rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* The harness's private folder (made on the first call, removed at exit),
   under $TMPDIR. */
static inline const char *fuzz_dir(void)
{
    if (!fuzz__dir[0]) {
        snprintf(fuzz__dir, sizeof fuzz__dir, "%s/civibus-fuzz-XXXXXX",
                 getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(fuzz__dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz__cleanup);
    }
    return fuzz__dir;
}

/* Writes size bytes to <private dir>/name (its folder made if need be) and
   returns that path (static storage, until the next call), or NULL when
   the file cannot be written. */
static inline const char *fuzz_put(const char *name, const void *data, size_t size)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    for (char *slash = strchr(path + strlen(fuzz__dir) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(path, 0700);
        *slash = '/';
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    bool ok = fwrite(data, 1, size, f) == size;
    ok = fclose(f) == 0 && ok;
    return ok ? path : NULL;
}

/* The input as the file <private dir>/input.yaml, for the loaders that
   only take a path; NULL when it cannot be written. */
static inline const char *fuzz_file(const uint8_t *data, size_t size)
{
    return fuzz_put("input.yaml", data, size);
}

/* Copies the product file src (relative to the source tree) to the private
   folder as name; exits when it cannot. */
static inline void fuzz_copy(const char *name, const char *src)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", FUZZ_ROOT, src);
    FILE *f = fopen(path, "rb");
    char buf[1 << 16];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (!f || ferror(f) || n == sizeof buf || !fuzz_put(name, buf, n)) {
        fprintf(stderr, "fuzz: cannot copy %s\n", path);
        exit(1);
    }
    fclose(f);
}

/* True when err reads "file:line: reason" (the file may hold ':'). */
static inline bool fuzz_error_form(const char *err)
{
    for (const char *p = strchr(err, ':'); p; p = strchr(p + 1, ':')) {
        const char *q = p + 1;
        while (*q >= '0' && *q <= '9')
            q++;
        if (q > p + 1 && q[0] == ':' && q[1] == ' ' && q[2] != '\0')
            return p > err;
    }
    return false;
}

/* The first byte of the input (consumed), or 0 when there is none. */
static inline uint8_t fuzz_take_byte(const uint8_t **data, size_t *size)
{
    if (*size == 0)
        return 0;
    uint8_t b = **data;
    (*data)++;
    (*size)--;
    return b;
}

/* A NUL-terminated copy (malloc'd; aborts when out of memory). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
