/* fuzz_pyroscope.c -- libFuzzer target for the text parsers of Pyroscope's
 * ingest API in ingest/: the application name with its labels
 * ("app.cpu{k=v}") and collapsed stacks ("a;b;c 12" lines).  The input is
 * "NAME\0STACKS" (without a NUL, all stacks).  Nothing may crash or leak; a
 * refusal must say why; an accepted name has a non-empty application name
 * and valid label names; an accepted profile has one column, and every
 * sample a stack and a positive value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_profile(pprof_profile *p, const firn_err *err)
{
    if (!p) {
        if (err->msg[0] == '\0')
            abort();
        return;
    }
    if (p->n_sample_types != 1)
        abort();
    for (size_t i = 0; i < p->n_samples; i++)
        if (p->samples[i].n_locations == 0 || p->samples[i].n_locations > INGEST_FOLDED_DEPTH_MAX ||
            p->samples[i].values[0] <= 0)
            abort();
    pprof_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nul = memchr(in, '\0', size);
    if (nul) {
        char *name = strndup(in, (size_t)(nul - in));
        firn_arena *a = firn_arena_new(0);
        if (!name || !a)
            abort();
        const char *app;
        firn_label *l;
        size_t n;
        firn_err err = {0};
        if (ingest_pyroscope_name_parse(name, a, &app, &l, &n, &err) < 0) {
            if (err.msg[0] == '\0')
                abort();
        } else {
            if (!app || !*app)
                abort();
            for (size_t i = 0; i < n; i++)
                if (!firn_label_name_valid(l[i].name))
                    abort();
        }
        firn_arena_free(a);
        free(name);
    }
    const char *body = nul ? nul + 1 : in;
    size_t len = nul ? size - (size_t)(nul - in) - 1 : size;
    char *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    memcpy(copy, body, len);
    firn_err err = {0};
    ingest_folded_type t = {.sample_type = "cpu", .sample_unit = "nanoseconds",
                         .period_type = "cpu", .period_unit = "nanoseconds",
                         .period = 10000000, .scale = 10000000};
    check_profile(ingest_folded_parse(copy, len, &t, &err), &err);
    t.lines = true;
    t.scale = 1;
    err = (firn_err){0};
    check_profile(ingest_folded_parse(copy, len, &t, &err), &err);
    free(copy);
    return 0;
}
