/*  spool_fixture — the fixture of the spool's unit tests (test_spool.c,
    test_spool_resend.c): a mkdtemp folder per test, the spool at
    root/spool, the whole folder removed by teardown. Include after
    <ftw.h>, <stdio.h>, <stdlib.h>. */
#ifndef SPOOL_FIXTURE_H
#define SPOOL_FIXTURE_H

typedef struct {
    char root[64];                  /* mkdtemp dir, removed by teardown */
    char dir[96];                   /* the spool: root/spool */
} fixture_t;

static int s_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st, (void) flag, (void) ftw;
    return remove(path);
}

static int s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->root, sizeof f->root, "/tmp/cv_spool_test_XXXXXX");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->dir, sizeof f->dir, "%s/spool", f->root);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    int rc = nftw(f->root, s_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}

#endif
