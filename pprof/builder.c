/* builder.c -- assembling a profile from parts, deduplicated by content.
 *
 * Everything a finished profile points to (strings, samples' location and
 * value arrays) is allocated in the builder's arena as it is added, and the
 * arena becomes the profile's.  The tables themselves grow as heap vectors
 * and are copied into the arena by pprof_builder_finish.
 *
 * Dedup maps are keyed by a 64-bit hash of the content; a hit is confirmed
 * by comparing content, and a collision probes the next key, so two
 * different contents never share an index.
 */
#include "internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY   /* XXH3_state_t on the stack */
#include <xxhash.h>

struct vec {
    void *v;
    size_t n, cap;
};

struct pprof_builder {
    firn_arena *arena;
    size_t n_types;
    struct vec strings;     /* char * */
    struct vec functions;   /* pprof_function */
    struct vec mappings;    /* pprof_mapping */
    struct vec locations;   /* pprof_location */
    struct vec samples;     /* pprof_sample */
    pprof_value_type *types;
    pprof_value_type period_type;
    int64_t period, time_nanos, duration_nanos;
    firn_u64map string_map, function_map, mapping_map, location_map;
};

/* Room for one more element of size sz. */
static void *vec_push(struct vec *v, size_t sz)
{
    v->v = firn_grow(v->v, v->n, &v->cap, sz, 64);
    return (char *)v->v + sz * v->n++;
}

pprof_builder *pprof_builder_new(size_t n_sample_types)
{
    pprof_builder *b = firn_xcalloc(1, sizeof *b);
    b->n_types = n_sample_types;
    b->arena = firn_arena_new(0);
    b->types = firn_xcalloc(n_sample_types ? n_sample_types : 1, sizeof *b->types);
    firn_u64map_init(&b->string_map, 256);
    firn_u64map_init(&b->function_map, 256);
    firn_u64map_init(&b->mapping_map, 16);
    firn_u64map_init(&b->location_map, 256);
    pprof_builder_string(b, "", 0);   /* strings[0] is "" */
    return b;
}

void pprof_builder_free(pprof_builder *b)
{
    if (!b)
        return;
    firn_arena_free(b->arena);
    free(b->strings.v);
    free(b->functions.v);
    free(b->mappings.v);
    free(b->locations.v);
    free(b->samples.v);
    free(b->types);
    firn_u64map_destroy(&b->string_map);
    firn_u64map_destroy(&b->function_map);
    firn_u64map_destroy(&b->mapping_map);
    firn_u64map_destroy(&b->location_map);
    free(b);
}

/* Finds the index of content hashing to h for which same(index) holds, or
 * reserves key for a new element at index next.  Returns the index found,
 * or next after recording it. */
static uint32_t dedup(const pprof_builder *b, firn_u64map *m, uint64_t h, uint32_t next,
                      bool (*same)(const pprof_builder *, uint32_t, const void *),
                      const void *content)
{
    assert(next < PPROF_NONE);   /* callers cap their tables far below 2^32 */
    for (;;) {
        uint32_t idx;
        int r = firn_u64map_put(m, h, next, &idx);
        if (r == 1)
            return next;
        assert(idx < next);   /* a key already there names an element already pushed */
        if (same(b, idx, content))
            return idx;
        h = h * 0x9E3779B97F4A7C15ull + 1;   /* collision: probe another key */
    }
}

struct str_content {
    const char *s;
    size_t len;
};

static bool same_string(const pprof_builder *b, uint32_t idx, const void *c)
{
    const struct str_content *sc = c;
    const char *have = ((char **)b->strings.v)[idx];
    return strlen(have) == sc->len && memcmp(have, sc->s, sc->len) == 0;
}

int64_t pprof_builder_string(pprof_builder *b, const char *s, size_t len)
{
    struct str_content sc = {s, len};
    uint32_t next = (uint32_t)b->strings.n;
    uint32_t idx = dedup(b, &b->string_map, XXH3_64bits(s, len), next, same_string, &sc);
    if (idx != next)
        return idx;
    char **slot = vec_push(&b->strings, sizeof(char *));
    *slot = firn_arena_strndup(b->arena, s, len);
    return idx;
}

static int64_t cstr(pprof_builder *b, const char *s)
{
    return pprof_builder_string(b, s ? s : "", s ? strlen(s) : 0);
}

void pprof_builder_sample_type(pprof_builder *b, size_t column, const char *type,
                               const char *unit)
{
    if (column < b->n_types) {
        b->types[column].type = cstr(b, type);
        b->types[column].unit = cstr(b, unit);
    }
}

void pprof_builder_period(pprof_builder *b, const char *type, const char *unit, int64_t period)
{
    b->period_type.type = cstr(b, type);
    b->period_type.unit = cstr(b, unit);
    b->period = period;
}

void pprof_builder_time(pprof_builder *b, int64_t time_nanos, int64_t duration_nanos)
{
    b->time_nanos = time_nanos;
    b->duration_nanos = duration_nanos;
}

static bool same_function(const pprof_builder *b, uint32_t idx, const void *c)
{
    const pprof_function *x = &((pprof_function *)b->functions.v)[idx], *y = c;
    return x->name == y->name && x->system_name == y->system_name &&
           x->filename == y->filename && x->start_line == y->start_line;
}

uint32_t pprof_builder_function(pprof_builder *b, const pprof_function *f)
{
    int64_t key[4] = {f->name, f->system_name, f->filename, f->start_line};
    uint32_t next = (uint32_t)b->functions.n;
    uint32_t idx = dedup(b, &b->function_map, XXH3_64bits(key, sizeof key), next,
                         same_function, f);
    if (idx != next)
        return idx;
    pprof_function *slot = vec_push(&b->functions, sizeof *slot);
    *slot = *f;
    slot->id = next + 1;
    return idx;
}

uint32_t pprof_builder_function_distinct(pprof_builder *b, const pprof_function *f)
{
    uint32_t next = (uint32_t)b->functions.n;
    assert(next < PPROF_NONE);
    pprof_function *slot = vec_push(&b->functions, sizeof *slot);
    *slot = *f;
    slot->id = next + 1;
    return next;
}

static bool same_mapping(const pprof_builder *b, uint32_t idx, const void *c)
{
    const pprof_mapping *x = &((pprof_mapping *)b->mappings.v)[idx], *y = c;
    return x->memory_start == y->memory_start && x->memory_limit == y->memory_limit &&
           x->file_offset == y->file_offset && x->filename == y->filename &&
           x->build_id == y->build_id && x->has_functions == y->has_functions &&
           x->has_filenames == y->has_filenames &&
           x->has_line_numbers == y->has_line_numbers &&
           x->has_inline_frames == y->has_inline_frames;
}

uint32_t pprof_builder_mapping(pprof_builder *b, const pprof_mapping *m)
{
    uint64_t key[6] = {m->memory_start, m->memory_limit, m->file_offset,
                       (uint64_t)m->filename, (uint64_t)m->build_id,
                       (uint64_t)(m->has_functions | m->has_filenames << 1 |
                                  m->has_line_numbers << 2 | m->has_inline_frames << 3)};
    uint32_t next = (uint32_t)b->mappings.n;
    uint32_t idx = dedup(b, &b->mapping_map, XXH3_64bits(key, sizeof key), next,
                         same_mapping, m);
    if (idx != next)
        return idx;
    pprof_mapping *slot = vec_push(&b->mappings, sizeof *slot);
    *slot = *m;
    slot->id = next + 1;
    return idx;
}

static bool same_location(const pprof_builder *b, uint32_t idx, const void *c)
{
    const pprof_location *x = &((pprof_location *)b->locations.v)[idx], *y = c;
    if (x->mapping != y->mapping || x->address != y->address || x->is_folded != y->is_folded ||
        x->n_lines != y->n_lines)
        return false;
    for (size_t i = 0; i < x->n_lines; i++)
        if (x->lines[i].function != y->lines[i].function || x->lines[i].line != y->lines[i].line ||
            x->lines[i].column != y->lines[i].column)
            return false;
    return true;
}

uint32_t pprof_builder_location(pprof_builder *b, const pprof_location *l)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    uint64_t head[4] = {l->mapping, l->address, l->is_folded, l->n_lines};
    XXH3_64bits_update(&st, head, sizeof head);
    for (size_t i = 0; i < l->n_lines; i++) {
        int64_t ln[3] = {l->lines[i].function, l->lines[i].line, l->lines[i].column};
        XXH3_64bits_update(&st, ln, sizeof ln);
    }
    uint32_t next = (uint32_t)b->locations.n;
    uint32_t idx = dedup(b, &b->location_map, XXH3_64bits_digest(&st), next, same_location, l);
    if (idx != next)
        return idx;
    pprof_line *lines = NULL;
    if (l->n_lines) {
        lines = firn_arena_alloc(b->arena, l->n_lines * sizeof *lines);
        memcpy(lines, l->lines, l->n_lines * sizeof *lines);
    }
    pprof_location *slot = vec_push(&b->locations, sizeof *slot);
    *slot = *l;
    slot->id = next + 1;
    slot->lines = lines;
    return idx;
}

pprof_hash pprof_builder_location_identity(const pprof_builder *b, uint32_t location)
{
    assert(location < b->locations.n);
    /* The identity reads the string, function, mapping and location tables
     * alone, which are already in their finished form (finish copies them). */
    pprof_profile view = {
        .strings = b->strings.v,
        .n_strings = b->strings.n,
        .functions = b->functions.v,
        .n_functions = b->functions.n,
        .mappings = b->mappings.v,
        .n_mappings = b->mappings.n,
        .locations = b->locations.v,
        .n_locations = b->locations.n,
    };
    return pprof_location_identity(&view, location);
}

int pprof_builder_sample(pprof_builder *b, const uint32_t *locations, size_t n_locations,
                         const int64_t *values, const pprof_label *labels, size_t n_labels)
{
    pprof_sample *s = vec_push(&b->samples, sizeof *s);
    memset(s, 0, sizeof *s);
    s->n_locations = n_locations;
    s->n_labels = n_labels;
    s->locations = firn_arena_alloc(b->arena, (n_locations ? n_locations : 1) * sizeof(uint32_t));
    s->values = firn_arena_alloc(b->arena, (b->n_types ? b->n_types : 1) * sizeof(int64_t));
    s->labels = n_labels ? firn_arena_alloc(b->arena, n_labels * sizeof(pprof_label)) : NULL;
    if (n_locations)   /* locations may be NULL then */
        memcpy(s->locations, locations, n_locations * sizeof(uint32_t));
    memcpy(s->values, values, b->n_types * sizeof(int64_t));
    if (n_labels)
        memcpy(s->labels, labels, n_labels * sizeof(pprof_label));
    return 0;
}

/* Copy a vector's elements into the arena. */
static void *vec_to_arena(const pprof_builder *b, const struct vec *v, size_t sz)
{
    void *out = firn_arena_alloc(b->arena, (v->n ? v->n : 1) * sz);
    if (v->n)
        memcpy(out, v->v, v->n * sz);
    return out;
}

pprof_profile *pprof_builder_finish(pprof_builder *b, firn_err *err)
{
    (void)err;   /* nothing left that can fail: see pprof.h */
    pprof_profile *p = firn_arena_calloc(b->arena, 1, sizeof *p);
    p->sample_types = firn_arena_alloc(b->arena, (b->n_types ? b->n_types : 1) *
                                                     sizeof *p->sample_types);
    p->strings = vec_to_arena(b, &b->strings, sizeof(char *));
    p->functions = vec_to_arena(b, &b->functions, sizeof(pprof_function));
    p->mappings = vec_to_arena(b, &b->mappings, sizeof(pprof_mapping));
    p->locations = vec_to_arena(b, &b->locations, sizeof(pprof_location));
    p->samples = vec_to_arena(b, &b->samples, sizeof(pprof_sample));
    memcpy(p->sample_types, b->types, b->n_types * sizeof *p->sample_types);
    p->n_sample_types = b->n_types;
    p->n_strings = b->strings.n;
    p->n_functions = b->functions.n;
    p->n_mappings = b->mappings.n;
    p->n_locations = b->locations.n;
    p->n_samples = b->samples.n;
    p->period_type = b->period_type;
    p->period = b->period;
    p->time_nanos = b->time_nanos;
    p->duration_nanos = b->duration_nanos;
    p->arena = b->arena;
    b->arena = NULL;   /* now the profile's */
    pprof_builder_free(b);
    return p;
}
