/* fixtures.h -- the shared pprof fixtures (../shared/fixtures/pprof, or
 * $FIRN_FIXTURES) for the unit tests.  Include after cmocka.h; a failure to
 * read or decode fails the running test. */
#ifndef FIRN_TEST_FIXTURES_H
#define FIRN_TEST_FIXTURES_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pprof/pprof.h"

static inline const char *fixtures_dir(void)
{
    const char *env = getenv("FIRN_FIXTURES");
    return env && *env ? env : FIRN_FIXTURES_DIR;
}

static inline unsigned char *read_fixture(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", fixtures_dir(), name);
    unsigned char *buf;
    firn_err err = {0};
    if (firn_read_file(path, 64u << 20, &buf, len, &err) < 0)
        fail_msg("%s", err.msg);
    return buf;
}

static inline pprof_profile *decode_fixture(const char *name)
{
    size_t len;
    unsigned char *buf = read_fixture(name, &len);
    firn_err err = {0};
    pprof_profile *p = pprof_decode(buf, len, NULL, &err);
    free(buf);
    if (!p)
        fail_msg("%s: %s", name, err.msg);
    return p;
}

/* A fresh directory /tmp/firn-test-NAME-XXXXXX (malloc'd path). */
static inline char *temp_dir(const char *name)
{
    char tmpl[256];
    snprintf(tmpl, sizeof tmpl, "/tmp/firn-test-%s-XXXXXX", name);
    if (!mkdtemp(tmpl))
        fail_msg("mkdtemp failed");
    return strdup(tmpl);
}

static inline int remove_entry_(const char *path, const struct stat *st, int flag,
                                struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* rm -rf path. */
static inline void remove_tree(const char *path)
{
    nftw(path, remove_entry_, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
