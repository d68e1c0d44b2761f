/* top.c -- flat/cum per function, as `go tool pprof -top` reports it.
 *
 * flat: the value of samples whose leaf frame (innermost line of the first
 * location) is the function.  cum: the value of samples with the function
 * anywhere on the stack, counted once per sample even under recursion.
 * Functions are grouped by name.  Samples whose value is zero are skipped,
 * as pprof skips them.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct top_state {
    const pprof_profile *p;
    firn_u64map by_name;       /* hash(name) -> row */
    pprof_top_row *rows;
    size_t *last_sample;       /* per row: 1 + the last sample counted in cum */
    size_t n, cap;
};

/* Row index for a frame name.  A name that lives in a caller's
 * scratch buffer (transient) is copied into `arena` only when it starts a
 * new row, so repeated frames cost no memory. */
static size_t row_for(struct top_state *t, const char *name, bool transient, firn_arena *arena)
{
    uint64_t key = XXH3_64bits(name, strlen(name));
    uint32_t idx;
    /* Linear probing on the key space resolves the (rare) hash collision of
     * two different names. */
    while (firn_u64map_get(&t->by_name, key, &idx)) {
        if (strcmp(t->rows[idx].name, name) == 0)
            return idx;
        key++;
    }
    if (t->n == t->cap) {   /* rows and last_sample share one capacity */
        size_t cap = t->cap;
        t->rows = firn_grow(t->rows, t->n, &cap, sizeof *t->rows, 64);
        t->last_sample = firn_xreallocarray(t->last_sample, cap, sizeof *t->last_sample);
        t->cap = cap;
    }
    if (transient)
        name = firn_arena_strndup(arena, name, strlen(name));
    firn_u64map_put(&t->by_name, key, (uint32_t)t->n, NULL);
    t->rows[t->n] = (pprof_top_row){.name = name, .flat = 0, .cum = 0};
    t->last_sample[t->n] = 0;
    return t->n++;
}

/* Frame names as pprof gives them at function granularity: the function's
 * name; for an unsymbolized frame its binary, "[app]"; "<unknown>" when
 * there is neither a name nor a binary. */
static const char *frame_name(const pprof_profile *p, const pprof_location *l, size_t line,
                              char *buf, size_t size)
{
    if (l->n_lines > 0 && l->lines[line].function != PPROF_NONE) {
        const char *name = pprof_str(p, p->functions[l->lines[line].function].name);
        return *name ? name : "<unknown>";
    }
    if (l->mapping != PPROF_NONE) {
        const char *file = pprof_str(p, p->mappings[l->mapping].filename);
        const char *slash = strrchr(file, '/');
        if (slash)
            file = slash + 1;
        if (*file) {
            snprintf(buf, size, "[%s]", file);
            return buf;
        }
    }
    return "<unknown>";
}

static int cmp_rows(const void *a, const void *b)
{
    const pprof_top_row *x = a, *y = b;
    int64_t fx = x->flat < 0 ? -x->flat : x->flat;
    int64_t fy = y->flat < 0 ? -y->flat : y->flat;
    if (fx != fy)
        return fx > fy ? -1 : 1;
    return strcmp(x->name, y->name);
}

int pprof_top(const pprof_profile *p, int sample_index, pprof_top_report *out, firn_err *err)
{
    memset(out, 0, sizeof *out);
    int64_t *total = &out->total;
    if (sample_index < 0 || (size_t)sample_index >= p->n_sample_types)
        return firn_errf(err, FIRN_EINVAL, "sample index %d out of range (profile has %zu sample types)",
                         sample_index, p->n_sample_types);
    struct top_state t = {.p = p};
    out->arena = firn_arena_new(0);
    firn_u64map_init(&t.by_name, 256);
    for (size_t i = 0; i < p->n_samples; i++) {
        const pprof_sample *s = &p->samples[i];
        int64_t v = s->values[sample_index];
        if (v == 0)
            continue; /* as pprof: a zero sample adds no function to the report */
        *total = pprof_add_sat(*total, v);
        bool leaf = true;
        for (size_t j = 0; j < s->n_locations; j++) {
            const pprof_location *l = &p->locations[s->locations[j]];
            size_t nl = l->n_lines ? l->n_lines : 1;
            for (size_t k = 0; k < nl; k++) {
                char buf[256];
                const char *name = frame_name(p, l, k, buf, sizeof buf);
                size_t r = row_for(&t, name, name == buf, out->arena);
                if (leaf)
                    t.rows[r].flat = pprof_add_sat(t.rows[r].flat, v);
                leaf = false;
                if (t.last_sample[r] != i + 1) {
                    t.last_sample[r] = i + 1;
                    t.rows[r].cum = pprof_add_sat(t.rows[r].cum, v);
                }
            }
        }
    }
    firn_sort(t.rows, t.n, sizeof *t.rows, cmp_rows);
    pprof_top_row *out_rows = firn_arena_alloc(out->arena, (t.n ? t.n : 1) * sizeof *out_rows);
    if (t.n)
        memcpy(out_rows, t.rows, t.n * sizeof *out_rows);
    out->rows = out_rows;
    out->n_rows = t.n;
    free(t.rows);
    free(t.last_sample);
    firn_u64map_destroy(&t.by_name);
    return 0;
}

void pprof_top_free(pprof_top_report *t)
{
    firn_arena_free(t->arena);
    memset(t, 0, sizeof *t);
}
