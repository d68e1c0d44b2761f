/* delta.c -- turning cumulative profiles into deltas between scrapes.
 *
 * Go's heap/allocs, block and mutex profiles count from process start.  To
 * make a time-range merge mean "what happened in this range", each scrape
 * is stored as the difference from the previous scrape of the same target,
 * per sample identity (stack + labels, pprof_sample_identity), for the
 * cumulative columns only: alloc_objects/alloc_space and contentions/delay
 * are subtracted, inuse_* pass through as the latest snapshot (net/http/pprof
 * subtracts every column and so corrupts inuse; golang/go#57765).
 *
 * The first profile has no baseline and yields nothing; a value going down
 * means the process restarted, so the baseline is replaced and that profile
 * yields nothing either (as Pyroscope's ingester does).
 */
#include "internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct delta_entry {
    pprof_hash id;
    int64_t *values;          /* the delta columns' cumulative values */
};

struct pprof_delta_state {
    bool have;                /* a baseline exists */
    size_t n_types;
    char **type_names;        /* "type/unit" per column, to notice a change */
    bool *columns;
    int64_t time_nanos;
    firn_u64map index;        /* id.lo -> entry */
    struct delta_entry *e;
    size_t n;
    firn_arena *arena;        /* entries' values and names */
};

pprof_delta_state *pprof_delta_new(void)
{
    return firn_xcalloc(1, sizeof(pprof_delta_state));
}

static void state_clear(pprof_delta_state *st)
{
    firn_u64map_destroy(&st->index);
    free(st->e);
    free(st->columns);
    firn_arena_free(st->arena);
    memset(st, 0, sizeof *st);
}

void pprof_delta_free(pprof_delta_state *st)
{
    if (!st)
        return;
    state_clear(st);
    free(st);
}

void pprof_delta_columns(const pprof_profile *p, bool *columns)
{
    static const char *const cumulative[][2] = {
        {"alloc_objects", "count"}, {"alloc_space", "bytes"},
        {"contentions", "count"},   {"delay", "nanoseconds"},
    };
    for (size_t i = 0; i < p->n_sample_types; i++) {
        const char *t = pprof_str(p, p->sample_types[i].type);
        const char *u = pprof_str(p, p->sample_types[i].unit);
        columns[i] = false;
        for (size_t k = 0; k < sizeof cumulative / sizeof *cumulative; k++)
            if (strcmp(t, cumulative[k][0]) == 0 && strcmp(u, cumulative[k][1]) == 0)
                columns[i] = true;
    }
}

/* Whether p has the same sample types and delta columns as the baseline. */
static bool same_shape(const pprof_delta_state *st, const pprof_profile *p, const bool *columns)
{
    if (!st->have || st->n_types != p->n_sample_types)
        return false;
    for (size_t i = 0; i < p->n_sample_types; i++) {
        const char *t = pprof_str(p, p->sample_types[i].type);
        const char *u = pprof_str(p, p->sample_types[i].unit);
        size_t tl = strlen(t);
        const char *have = st->type_names[i];
        if (columns[i] != st->columns[i] || strncmp(have, t, tl) != 0 || have[tl] != '/' ||
            strcmp(have + tl + 1, u) != 0)
            return false;
    }
    return true;
}

static struct delta_entry *find(const pprof_delta_state *st, pprof_hash id)
{
    uint32_t idx;
    if (st->index.cap && firn_u64map_get(&st->index, id.lo, &idx) &&
        pprof_hash_eq(st->e[idx].id, id))
        return &st->e[idx];
    return NULL;
}

/* Makes st (zeroed) a baseline of p's values (p has no duplicate
 * identities). */
static void set_baseline(pprof_delta_state *st, const pprof_profile *p, const bool *columns,
                         const pprof_hash *ids)
{
    st->n_types = p->n_sample_types;
    /* One chunk that fits the values: a state lives as long as its scrape
     * loop, so the default 64 KiB chunk would be mostly waste. */
    st->arena = firn_arena_new((p->n_samples + 1) * (st->n_types + 1) * sizeof(int64_t) +
                               64 * (st->n_types + 1));
    st->columns = firn_xreallocarray(NULL, st->n_types ? st->n_types : 1, sizeof *st->columns);
    st->type_names = firn_arena_alloc(st->arena, (st->n_types + 1) * sizeof(char *));
    st->e = firn_xreallocarray(NULL, p->n_samples ? p->n_samples : 1, sizeof *st->e);
    firn_u64map_init(&st->index, p->n_samples);
    for (size_t i = 0; i < st->n_types; i++) {
        const char *t = pprof_str(p, p->sample_types[i].type);
        const char *u = pprof_str(p, p->sample_types[i].unit);
        size_t tl = strlen(t), ul = strlen(u);
        char *name = firn_arena_alloc(st->arena, tl + ul + 2);
        memcpy(name, t, tl);
        name[tl] = '/';
        memcpy(name + tl + 1, u, ul + 1);
        st->type_names[i] = name;
        st->columns[i] = columns[i];
    }
    for (size_t s = 0; s < p->n_samples; s++) {
        int64_t *v = firn_arena_alloc(st->arena, (st->n_types ? st->n_types : 1) * sizeof *v);
        memcpy(v, p->samples[s].values, st->n_types * sizeof *v);
        uint32_t have;
        if (firn_u64map_put(&st->index, ids[s].lo, (uint32_t)st->n, &have) == 0)
            continue;   /* a 64-bit collision: that sample has no baseline */
        st->e[st->n].id = ids[s];
        st->e[st->n].values = v;
        st->n++;
    }
    assert(st->n <= p->n_samples);
    st->time_nanos = p->time_nanos;
    st->have = true;
}

int pprof_delta_apply(pprof_delta_state *st, pprof_profile *p, const bool *columns,
                      firn_err *err)
{
    /* equal identities first summed, as pprof merges them (Go's heap emits
     * duplicates) */
    pprof_merge_samples(p, err);
    pprof_hash *ids = firn_xreallocarray(NULL, p->n_samples ? p->n_samples : 1, sizeof *ids);
    pprof_sample_identities(p, ids);
    bool reset = !same_shape(st, p, columns);
    for (size_t s = 0; s < p->n_samples && !reset; s++) {
        const struct delta_entry *e = find(st, ids[s]);
        for (size_t i = 0; e && i < p->n_sample_types && !reset; i++)
            reset = columns[i] && p->samples[s].values[i] < e->values[i];
    }
    /* the new baseline is p's cumulative values, taken before p changes */
    pprof_delta_state fresh = {0};
    set_baseline(&fresh, p, columns, ids);
    if (!reset) {
        size_t kept = 0;
        for (size_t s = 0; s < p->n_samples; s++) {
            pprof_sample *smp = &p->samples[s];
            const struct delta_entry *e = find(st, ids[s]);
            bool nonzero = false;
            for (size_t i = 0; i < p->n_sample_types; i++) {
                if (columns[i] && e)
                    smp->values[i] -= e->values[i];   /* >= 0: checked above */
                nonzero |= smp->values[i] != 0;
            }
            if (nonzero)   /* nothing happened to this stack: drop it, as pprof does */
                p->samples[kept++] = *smp;
        }
        p->n_samples = kept;
        if (p->time_nanos > st->time_nanos && st->time_nanos > 0)
            p->duration_nanos = p->time_nanos - st->time_nanos;
    }
    free(ids);
    state_clear(st);
    *st = fresh;
    return reset ? 0 : 1;
}
