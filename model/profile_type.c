/* profile_type.c -- the name:sample_type:sample_unit:period_type:period_unit
 * [:delta] form of a series' profile type, as Parca and Pyroscope write it.
 * Units and the period may be empty: some producers send no period type. */
#include "model/profile_type.h"

#include <stdio.h>
#include <string.h>

#define PT_SHOW_MAX 200   /* bytes of a bad profile type shown in an error */
#define PT_WANT "want name:sample_type:sample_unit:period_type:period_unit[:delta]"

int firn_profile_type_parse(const char *s, firn_profile_type *out, firn_err *err)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return firn_errf(err, FIRN_EINVAL, "profile type: none given");
    const char *field[6];
    size_t len[6];
    size_t count = 0;
    const char *p = s;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        if (count == 6)
            return firn_errf(err, FIRN_EINVAL, "profile type \"%.*s\": %s", PT_SHOW_MAX, s,
                             PT_WANT);
        field[count] = p;
        len[count] = n;
        count++;
        if (!colon)
            break;
        p = colon + 1;
    }
    if (count < 5)
        return firn_errf(err, FIRN_EINVAL, "profile type \"%.*s\": %s", PT_SHOW_MAX, s,
                         PT_WANT);
    if (len[FIRN_PT_NAME] == 0)
        return firn_errf(err, FIRN_EINVAL, "profile type \"%.*s\": empty name", PT_SHOW_MAX,
                         s);
    if (len[FIRN_PT_SAMPLE_TYPE] == 0)
        return firn_errf(err, FIRN_EINVAL, "profile type \"%.*s\": empty sample type",
                         PT_SHOW_MAX, s);
    if (count == 6 && !(len[5] == 5 && memcmp(field[5], "delta", 5) == 0))
        return firn_errf(err, FIRN_EINVAL,
                         "profile type \"%.*s\": sixth field \"%.*s\" is not \"delta\"",
                         PT_SHOW_MAX, s, PT_SHOW_MAX, field[5]);
    for (int i = 0; i < 5; i++) {
        out->field[i] = field[i];
        out->len[i] = len[i];
    }
    out->delta = count == 6;
    return FIRN_OK;
}

int firn_profile_type_format(char *buf, size_t size, const char *name,
                             const char *sample_type, const char *sample_unit,
                             const char *period_type, const char *period_unit, bool delta)
{
    const char *field[5] = {name, sample_type, sample_unit, period_type, period_unit};
    for (int i = 0; i < 5; i++) {
        if (!field[i])
            field[i] = "";
        if (strchr(field[i], ':'))
            return -1;
    }
    if (!field[FIRN_PT_NAME][0] || !field[FIRN_PT_SAMPLE_TYPE][0])
        return -1;
    return snprintf(buf, size, "%s:%s:%s:%s:%s%s", field[0], field[1], field[2], field[3],
                    field[4], delta ? ":delta" : "");
}
