/* profile_type.h -- the profile type, the __name__ of every stored series,
 * written as Parca and Pyroscope write it:
 * name:sample_type:sample_unit:period_type:period_unit with ":delta"
 * appended for types that are stored as deltas, e.g.
 * process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta. */
#ifndef FIRN_MODEL_PROFILE_TYPE_H
#define FIRN_MODEL_PROFILE_TYPE_H

#include <stdbool.h>
#include <stddef.h>

#include "model/err.h"

/* The fields point into the string that was parsed (they are not
 * NUL-terminated). */
typedef struct firn_profile_type {
    const char *field[5];    /* name, sample_type, sample_unit, period_type, period_unit */
    size_t len[5];
    bool delta;
} firn_profile_type;

enum { FIRN_PT_NAME, FIRN_PT_SAMPLE_TYPE, FIRN_PT_SAMPLE_UNIT, FIRN_PT_PERIOD_TYPE,
       FIRN_PT_PERIOD_UNIT };

/* Parse s; rejects a wrong number of fields, an empty name or sample type,
 * and a sixth field other than "delta". */
int firn_profile_type_parse(const char *s, firn_profile_type *out, firn_err *err);
/* Write the canonical form into buf; returns the length it needs (as
 * snprintf).  A field containing ':' is rejected with -1. */
int firn_profile_type_format(char *buf, size_t size, const char *name,
                             const char *sample_type, const char *sample_unit,
                             const char *period_type, const char *period_unit, bool delta);

#endif
