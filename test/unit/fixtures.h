/* fixtures.h -- the shared pprof fixtures (../shared/fixtures/pprof, or
 * $FIRN_FIXTURES) for the unit tests.  Include after cmocka.h; a failure to
 * read or decode fails the running test. */
#ifndef FIRN_TEST_FIXTURES_H
#define FIRN_TEST_FIXTURES_H

#include <stdio.h>
#include <stdlib.h>

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

#endif
