/* profile.c -- reading a decoded profile: strings, sample types, totals. */
#include "internal.h"

#include <string.h>

const char *pprof_str(const pprof_profile *p, int64_t idx)
{
    if (idx < 0 || (uint64_t)idx >= p->n_strings)
        return "";
    return p->strings[idx];
}

int pprof_sample_type_index(const pprof_profile *p, const char *name)
{
    for (size_t i = 0; i < p->n_sample_types; i++)
        if (strcmp(pprof_str(p, p->sample_types[i].type), name) == 0)
            return (int)i;
    return -1;
}

int pprof_default_sample_index(const pprof_profile *p)
{
    if (p->n_sample_types == 0)
        return -1;
    if (p->default_sample_type != 0) {
        int i = pprof_sample_type_index(p, pprof_str(p, p->default_sample_type));
        if (i >= 0)
            return i;
    }
    return (int)p->n_sample_types - 1;
}

int64_t pprof_add_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

void pprof_totals(const pprof_profile *p, int64_t *totals)
{
    memset(totals, 0, p->n_sample_types * sizeof *totals);
    for (size_t i = 0; i < p->n_samples; i++) {
        const int64_t *v = p->samples[i].values;
        for (size_t j = 0; j < p->n_sample_types; j++)
            totals[j] = pprof_add_sat(totals[j], v[j]);
    }
}
