/* decode.c -- bytes -> validated pprof_profile.
 *
 * Four steps, each able to refuse the input with a message naming where:
 *  1. size caps and gunzip (capped, see gzip.c);
 *     Input with a legacy binary CPU profile header (never a protobuf's
 *     first bytes: field number 0) goes to legacy.c instead;
 *  2. a scan of the top-level protobuf fields: rejects what is not a pprof
 *     protobuf (text profiles, other binaries) with the byte offset, counts
 *     the repeated tables against their caps before anything is allocated,
 *     and detects concatenated profiles (time_nanos twice, as Go's decoder);
 *  3. protobuf-c unpacks into an arena of its own under a memory budget;
 *  4. validation, and conversion of ids into array indexes.
 */
#include "internal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pprof_limits_default(pprof_limits *l)
{
    l->max_input_bytes = 32u << 20;
    l->max_decoded_bytes = 128u << 20;
    l->max_memory_bytes = (size_t)1 << 30;
    l->max_samples = 4u << 20;
    l->max_locations = 4u << 20;
    l->max_functions = 4u << 20;
    l->max_mappings = 1u << 16;
    l->max_strings = 4u << 20;
}

/* ---- protobuf-c allocation in an arena, under a budget ------------------ */

static void *pb_alloc(void *data, size_t size)
{
    pprof_pb_alloc *a = data;
    if (size > a->budget - a->used) {
        a->exceeded = true;
        return NULL;
    }
    a->used += size;
    return firn_arena_alloc(a->arena, size);
}

static void pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr; /* the arena frees everything at once */
}

void pprof_pb_alloc_init(pprof_pb_alloc *a, firn_arena *arena, size_t budget)
{
    a->pb.alloc = pb_alloc;
    a->pb.free = pb_free;
    a->pb.allocator_data = a;
    a->arena = arena;
    a->budget = budget;
    a->used = 0;
    a->exceeded = false;
}

/* ---- step 2: top-level wire scan ---------------------------------------- */

static const char NOT_PPROF[] = "not a pprof protobuf";

/* Reads a varint at *pos; returns 0 on success. */
static int read_varint(const unsigned char *b, size_t len, size_t *pos, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= len)
            return -1;
        unsigned char c = b[(*pos)++];
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

static bool looks_like_text(const unsigned char *b, size_t len)
{
    size_t n = len < 64 ? len : 64;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = b[i];
        if (!((c >= 0x20 && c < 0x7f) || c == '\n' || c == '\r' || c == '\t'))
            return false;
    }
    return true;
}

struct counts {
    size_t samples, mappings, locations, functions, strings;
};

/* Expected wire type of each Profile field (0 varint, 2 length-delimited);
 * comment (13) is a packable int64 and may be either. */
static int expected_wire_type(uint64_t field)
{
    switch (field) {
    case 1: case 2: case 3: case 4: case 5: case 6: case 11:
        return 2;
    case 7: case 8: case 9: case 10: case 12: case 14: case 15:
        return 0;
    case 13:
        return -2;
    default:
        return -1; /* unknown field: any valid wire type */
    }
}

static int scan_top_level(const unsigned char *b, size_t len, struct counts *c,
                          const pprof_limits *lim, firn_err *err)
{
    if (len == 0)
        return firn_errf(err, FIRN_EINVAL, "%s: the input is empty", NOT_PPROF);
    if (looks_like_text(b, len))
        return firn_errf(err, FIRN_EINVAL,
                         "%s: the input is text (a legacy text profile? request debug=0)",
                         NOT_PPROF);
    memset(c, 0, sizeof *c);
    bool seen_time = false;
    size_t pos = 0;
    while (pos < len) {
        size_t at = pos;
        uint64_t tag;
        if (read_varint(b, len, &pos, &tag) < 0)
            return firn_errf(err, FIRN_EINVAL, "%s: byte %zu: truncated field tag", NOT_PPROF, at);
        uint64_t field = tag >> 3;
        int wt = (int)(tag & 7);
        if (field == 0)
            return firn_errf(err, FIRN_EINVAL,
                             "%s: byte %zu: field number 0 is invalid (nor is it a legacy "
                             "CPU profile: its header is 0, 3, 0 or 1, period, 0)",
                             NOT_PPROF, at);
        int want = expected_wire_type(field);
        if (want >= 0 && wt != want)
            return firn_errf(err, FIRN_EINVAL,
                             "%s: byte %zu: field %llu has wire type %d, expected %d",
                             NOT_PPROF, at, (unsigned long long)field, wt, want);
        if (want == -2 && wt != 0 && wt != 2)
            return firn_errf(err, FIRN_EINVAL,
                             "%s: byte %zu: field %llu has wire type %d, expected 0 or 2",
                             NOT_PPROF, at, (unsigned long long)field, wt);
        uint64_t v;
        switch (wt) {
        case 0:
            if (read_varint(b, len, &pos, &v) < 0)
                return firn_errf(err, FIRN_EINVAL, "%s: byte %zu: truncated varint in field %llu",
                                 NOT_PPROF, at, (unsigned long long)field);
            break;
        case 1:
            if (len - pos < 8)
                return firn_errf(err, FIRN_EINVAL, "%s: byte %zu: truncated fixed64 in field %llu",
                                 NOT_PPROF, at, (unsigned long long)field);
            pos += 8;
            break;
        case 5:
            if (len - pos < 4)
                return firn_errf(err, FIRN_EINVAL, "%s: byte %zu: truncated fixed32 in field %llu",
                                 NOT_PPROF, at, (unsigned long long)field);
            pos += 4;
            break;
        case 2:
            if (read_varint(b, len, &pos, &v) < 0)
                return firn_errf(err, FIRN_EINVAL, "%s: byte %zu: truncated length in field %llu",
                                 NOT_PPROF, at, (unsigned long long)field);
            if (v > len - pos)
                return firn_errf(err, FIRN_EINVAL,
                                 "%s: byte %zu: field %llu claims %llu bytes, only %zu remain",
                                 NOT_PPROF, at, (unsigned long long)field,
                                 (unsigned long long)v, len - pos);
            pos += (size_t)v;
            break;
        default:
            return firn_errf(err, FIRN_EINVAL, "%s: byte %zu: invalid wire type %d for field %llu",
                             NOT_PPROF, at, wt, (unsigned long long)field);
        }
        switch (field) {
        case 2: c->samples++; break;
        case 3: c->mappings++; break;
        case 4: c->locations++; break;
        case 5: c->functions++; break;
        case 6: c->strings++; break;
        case 9:
            if (seen_time)
                return firn_errf(err, FIRN_EINVAL,
                                 "byte %zu: time_nanos appears twice: concatenated profiles "
                                 "are not supported", at);
            seen_time = true;
            break;
        default: break;
        }
    }
#define CAP(what, n, max)                                                           \
    if ((n) > (max))                                                                \
        return firn_errf(err, FIRN_ETOOBIG, "profile has %zu %s, more than the cap of %zu", \
                         (size_t)(n), what, (size_t)(max));
    CAP("samples", c->samples, lim->max_samples);
    CAP("locations", c->locations, lim->max_locations);
    CAP("functions", c->functions, lim->max_functions);
    CAP("mappings", c->mappings, lim->max_mappings);
    CAP("strings", c->strings, lim->max_strings);
#undef CAP
    return 0;
}

/* ---- step 4: validation and conversion ----------------------------------- */

struct idmap {
    bool dense;      /* ids are exactly 1..n in order: index = id - 1 */
    size_t n;
    firn_u64map map;
};

static const char *str_preview(const char *s, char *buf, size_t size)
{
    size_t n = strlen(s);
    if (n + 1 <= size)
        return s;
    snprintf(buf, size, "%.*s...", (int)(size - 4), s);
    return buf;
}

static int check_str(int64_t idx, size_t n_strings, firn_err *err, const char *what_fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int check_str(int64_t idx, size_t n_strings, firn_err *err, const char *what_fmt, ...)
{
    if (idx >= 0 && (uint64_t)idx < n_strings)
        return 0;
    char what[256];
    va_list ap;
    va_start(ap, what_fmt);
    vsnprintf(what, sizeof what, what_fmt, ap);
    va_end(ap);
    return firn_errf(err, FIRN_EINVAL, "%s: string index %lld out of range (string_table has %zu entries)",
                     what, (long long)idx, n_strings);
}

/* Build id -> index for one table.  ids[i] is read through get_id.  When
 * every id is zero the table is numbered by position (lenient; *repaired is
 * set).  Otherwise zero and duplicate ids are errors. */
static int build_idmap(struct idmap *m, size_t n, uint64_t (*get_id)(void *tab, size_t i),
                       void (*set_id)(void *tab, size_t i, uint64_t id), void *tab,
                       const char *kind, bool *repaired, firn_err *err)
{
    m->n = n;
    m->dense = true;
    memset(&m->map, 0, sizeof m->map);
    bool all_zero = n > 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = get_id(tab, i);
        if (id != i + 1)
            m->dense = false;
        if (id != 0)
            all_zero = false;
    }
    if (all_zero) {
        for (size_t i = 0; i < n; i++)
            set_id(tab, i, i + 1);
        *repaired = true;
        m->dense = true;
        return 0;
    }
    if (m->dense)
        return 0;
    firn_u64map_init(&m->map, n);
    for (size_t i = 0; i < n; i++) {
        uint64_t id = get_id(tab, i);
        if (id == 0)
            return firn_errf(err, FIRN_EINVAL, "%s[%zu]: id 0 is reserved", kind, i);
        uint32_t prev;
        if (firn_u64map_put(&m->map, id, (uint32_t)i, &prev) == 0)
            return firn_errf(err, FIRN_EINVAL, "%s[%zu]: duplicate id %llu (also %s[%u])",
                             kind, i, (unsigned long long)id, kind, prev);
    }
    return 0;
}

static bool idmap_find(const struct idmap *m, uint64_t id, uint32_t *idx)
{
    if (m->dense) {
        if (id == 0 || id > m->n)
            return false;
        *idx = (uint32_t)(id - 1);
        return true;
    }
    return firn_u64map_get(&m->map, id, idx) == 1;
}

#define ID_ACCESSORS(Type, name)                                           \
    static uint64_t name##_get_id(void *tab, size_t i)                     \
    {                                                                      \
        return ((Type **)tab)[i]->id;                                      \
    }                                                                      \
    static void name##_set_id(void *tab, size_t i, uint64_t id)            \
    {                                                                      \
        ((Type **)tab)[i]->id = id;                                        \
    }
ID_ACCESSORS(Firn__Pprof__Mapping, mapping)
ID_ACCESSORS(Firn__Pprof__Location, location)
ID_ACCESSORS(Firn__Pprof__Function, function)
#undef ID_ACCESSORS

static int convert(const Firn__Pprof__Profile *m, pprof_profile *p, firn_err *err)
{
    firn_arena *A = p->arena;
    const size_t ns = m->n_string_table;
    int rc;

    /* strings */
    if (ns == 0)
        return firn_errf(err, FIRN_EINVAL, "string_table is empty; string_table[0] must be \"\"");
    if (m->string_table[0][0] != '\0') {
        char buf[64];
        return firn_errf(err, FIRN_EINVAL, "string_table[0] must be \"\", found \"%s\"",
                         str_preview(m->string_table[0], buf, sizeof buf));
    }
    /* The profile owns copies of what it keeps of the message (strings,
     * comments, values), so the message's arena can go once this returns:
     * the unpacked message is most of a decode's memory, and a profile
     * waiting in the store's queue should not carry it.  Every table below
     * is sized by the unpacked message, already in memory under the memory
     * cap, so these allocations are internal ones (model/alloc.h). */
    p->strings = firn_arena_alloc(A, ns * sizeof *p->strings);
    for (size_t i = 0; i < ns; i++)
        p->strings[i] = firn_arena_strndup(A, m->string_table[i], strlen(m->string_table[i]));
    p->n_strings = ns;

    /* header fields */
    if ((rc = check_str(m->drop_frames, ns, err, "drop_frames")) ||
        (rc = check_str(m->keep_frames, ns, err, "keep_frames")) ||
        (rc = check_str(m->default_sample_type, ns, err, "default_sample_type")) ||
        (rc = check_str(m->doc_url, ns, err, "doc_url")))
        return rc;
    p->drop_frames = m->drop_frames;
    p->keep_frames = m->keep_frames;
    p->default_sample_type = m->default_sample_type;
    p->doc_url = m->doc_url;
    p->time_nanos = m->time_nanos;
    p->duration_nanos = m->duration_nanos;
    p->period = m->period;
    if (m->period_type) {
        if ((rc = check_str(m->period_type->type, ns, err, "period_type.type")) ||
            (rc = check_str(m->period_type->unit, ns, err, "period_type.unit")))
            return rc;
        p->period_type.type = m->period_type->type;
        p->period_type.unit = m->period_type->unit;
    }
    for (size_t i = 0; i < m->n_comment; i++)
        if ((rc = check_str(m->comment[i], ns, err, "comment[%zu]", i)))
            return rc;
    p->comments = m->n_comment ? firn_arena_alloc(A, m->n_comment * sizeof *p->comments) : NULL;
    if (m->n_comment)
        memcpy(p->comments, m->comment, m->n_comment * sizeof *p->comments);
    p->n_comments = m->n_comment;

    /* sample types */
    p->n_sample_types = m->n_sample_type;
    p->sample_types = firn_arena_calloc(A, m->n_sample_type ? m->n_sample_type : 1,
                                        sizeof *p->sample_types);
    for (size_t i = 0; i < m->n_sample_type; i++) {
        if ((rc = check_str(m->sample_type[i]->type, ns, err, "sample_type[%zu].type", i)) ||
            (rc = check_str(m->sample_type[i]->unit, ns, err, "sample_type[%zu].unit", i)))
            return rc;
        p->sample_types[i].type = m->sample_type[i]->type;
        p->sample_types[i].unit = m->sample_type[i]->unit;
    }

    /* ids */
    struct idmap maps, locs, funcs;
    memset(&maps, 0, sizeof maps);
    memset(&locs, 0, sizeof locs);
    memset(&funcs, 0, sizeof funcs);
    bool rep_m = false, rep_l = false, rep_f = false;
    rc = build_idmap(&maps, m->n_mapping, mapping_get_id, mapping_set_id, m->mapping,
                     "mapping", &rep_m, err);
    if (!rc)
        rc = build_idmap(&locs, m->n_location, location_get_id, location_set_id, m->location,
                         "location", &rep_l, err);
    if (!rc)
        rc = build_idmap(&funcs, m->n_function, function_get_id, function_set_id, m->function,
                         "function", &rep_f, err);
    if (rc)
        goto out;
    p->repairs = (rep_m ? PPROF_REPAIR_MAPPING_IDS : 0) | (rep_l ? PPROF_REPAIR_LOCATION_IDS : 0) |
                 (rep_f ? PPROF_REPAIR_FUNCTION_IDS : 0);

    /* mappings */
    p->n_mappings = m->n_mapping;
    p->mappings = firn_arena_calloc(A, m->n_mapping ? m->n_mapping : 1, sizeof *p->mappings);
    for (size_t i = 0; i < m->n_mapping; i++) {
        const Firn__Pprof__Mapping *s = m->mapping[i];
        if ((rc = check_str(s->filename, ns, err, "mapping[%zu] (id %llu).filename", i,
                            (unsigned long long)s->id)) ||
            (rc = check_str(s->build_id, ns, err, "mapping[%zu] (id %llu).build_id", i,
                            (unsigned long long)s->id)))
            goto out;
        pprof_mapping *d = &p->mappings[i];
        d->id = s->id;
        d->memory_start = s->memory_start;
        d->memory_limit = s->memory_limit;
        d->file_offset = s->file_offset;
        d->filename = s->filename;
        d->build_id = s->build_id;
        d->has_functions = s->has_functions;
        d->has_filenames = s->has_filenames;
        d->has_line_numbers = s->has_line_numbers;
        d->has_inline_frames = s->has_inline_frames;
    }

    /* functions */
    p->n_functions = m->n_function;
    p->functions = firn_arena_calloc(A, m->n_function ? m->n_function : 1, sizeof *p->functions);
    for (size_t i = 0; i < m->n_function; i++) {
        const Firn__Pprof__Function *s = m->function[i];
        unsigned long long id = (unsigned long long)s->id;
        if ((rc = check_str(s->name, ns, err, "function[%zu] (id %llu).name", i, id)) ||
            (rc = check_str(s->system_name, ns, err, "function[%zu] (id %llu).system_name", i, id)) ||
            (rc = check_str(s->filename, ns, err, "function[%zu] (id %llu).filename", i, id)))
            goto out;
        pprof_function *d = &p->functions[i];
        d->id = s->id;
        d->name = s->name;
        d->system_name = s->system_name;
        d->filename = s->filename;
        d->start_line = s->start_line;
    }

    /* locations */
    p->n_locations = m->n_location;
    p->locations = firn_arena_calloc(A, m->n_location ? m->n_location : 1, sizeof *p->locations);
    for (size_t i = 0; i < m->n_location; i++) {
        const Firn__Pprof__Location *s = m->location[i];
        pprof_location *d = &p->locations[i];
        d->id = s->id;
        d->address = s->address;
        d->is_folded = s->is_folded;
        d->mapping = PPROF_NONE;
        if (s->mapping_id != 0 && !idmap_find(&maps, s->mapping_id, &d->mapping)) {
            rc = firn_errf(err, FIRN_EINVAL, "location[%zu] (id %llu): mapping_id %llu not found",
                           i, (unsigned long long)s->id, (unsigned long long)s->mapping_id);
            goto out;
        }
        d->n_lines = s->n_line;
        d->lines = s->n_line ? firn_arena_alloc(A, s->n_line * sizeof *d->lines) : NULL;
        for (size_t j = 0; j < s->n_line; j++) {
            const Firn__Pprof__Line *ls = s->line[j];
            pprof_line *ld = &d->lines[j];
            ld->line = ls->line;
            ld->column = ls->column;
            ld->function = PPROF_NONE;
            if (ls->function_id != 0 && !idmap_find(&funcs, ls->function_id, &ld->function)) {
                rc = firn_errf(err, FIRN_EINVAL,
                               "location[%zu] (id %llu): line[%zu]: function_id %llu not found", i,
                               (unsigned long long)s->id, j, (unsigned long long)ls->function_id);
                goto out;
            }
        }
    }

    /* samples */
    p->n_samples = m->n_sample;
    p->samples = firn_arena_calloc(A, m->n_sample ? m->n_sample : 1, sizeof *p->samples);
    int64_t *values = firn_arena_alloc(A, (m->n_sample * m->n_sample_type + 1) * sizeof *values);
    for (size_t i = 0; i < m->n_sample; i++) {
        const Firn__Pprof__Sample *s = m->sample[i];
        pprof_sample *d = &p->samples[i];
        if (s->n_value != m->n_sample_type) {
            rc = firn_errf(err, FIRN_EINVAL, "sample[%zu]: %zu values, but %zu sample types", i,
                           s->n_value, m->n_sample_type);
            goto out;
        }
        d->values = values + i * m->n_sample_type;
        if (s->n_value)
            memcpy(d->values, s->value, s->n_value * sizeof *d->values);
        d->n_locations = s->n_location_id;
        d->locations = s->n_location_id ? firn_arena_alloc(A, s->n_location_id * sizeof(uint32_t))
                                        : NULL;
        for (size_t j = 0; j < s->n_location_id; j++) {
            if (!idmap_find(&locs, s->location_id[j], &d->locations[j])) {
                rc = firn_errf(err, FIRN_EINVAL, "sample[%zu]: location_id %llu not found", i,
                               (unsigned long long)s->location_id[j]);
                goto out;
            }
        }
        d->n_labels = s->n_label;
        d->labels = s->n_label ? firn_arena_alloc(A, s->n_label * sizeof *d->labels) : NULL;
        for (size_t j = 0; j < s->n_label; j++) {
            const Firn__Pprof__Label *ls = s->label[j];
            if ((rc = check_str(ls->key, ns, err, "sample[%zu].label[%zu].key", i, j)) ||
                (rc = check_str(ls->str, ns, err, "sample[%zu].label[%zu].str", i, j)) ||
                (rc = check_str(ls->num_unit, ns, err, "sample[%zu].label[%zu].num_unit", i, j)))
                goto out;
            d->labels[j].key = ls->key;
            d->labels[j].str = ls->str;
            d->labels[j].num = ls->num;
            d->labels[j].num_unit = ls->num_unit;
        }
    }
    rc = 0;
out:
    firn_u64map_destroy(&maps.map);
    firn_u64map_destroy(&locs.map);
    firn_u64map_destroy(&funcs.map);
    return rc;
}

/* ---- entry points -------------------------------------------------------- */

static bool string_ok(const pprof_profile *p, int64_t s)
{
    return s >= 0 && (uint64_t)s < p->n_strings;
}

/* The promises pprof.h makes of a decoded profile (checked by convert):
 * strings[0] is "", string indexes in range, ids nonzero and every
 * reference resolved to an index in range. */
__attribute__((unused)) static bool promises_hold(const pprof_profile *p)
{
    if (p->n_strings == 0 || p->strings[0][0] != '\0')
        return false;
    for (size_t i = 0; i < p->n_sample_types; i++)
        if (!string_ok(p, p->sample_types[i].type) || !string_ok(p, p->sample_types[i].unit))
            return false;
    for (size_t i = 0; i < p->n_samples; i++)
        for (size_t k = 0; k < p->samples[i].n_locations; k++)
            if (p->samples[i].locations[k] >= p->n_locations)
                return false;
    for (size_t i = 0; i < p->n_mappings; i++)
        if (!p->mappings[i].id || !string_ok(p, p->mappings[i].filename) ||
            !string_ok(p, p->mappings[i].build_id))
            return false;
    for (size_t i = 0; i < p->n_locations; i++) {
        const pprof_location *l = &p->locations[i];
        if (!l->id || (l->mapping != PPROF_NONE && l->mapping >= p->n_mappings))
            return false;
        for (size_t k = 0; k < l->n_lines; k++)
            if (l->lines[k].function != PPROF_NONE && l->lines[k].function >= p->n_functions)
                return false;
    }
    for (size_t i = 0; i < p->n_functions; i++)
        if (!p->functions[i].id || !string_ok(p, p->functions[i].name) ||
            !string_ok(p, p->functions[i].system_name) || !string_ok(p, p->functions[i].filename))
            return false;
    return true;
}

pprof_profile *pprof_decode(const void *data, size_t len, const pprof_limits *limits,
                            firn_err *err)
{
    pprof_limits def;
    if (!limits) {
        pprof_limits_default(&def);
        limits = &def;
    }
    if (len > limits->max_input_bytes) {
        firn_errf(err, FIRN_ETOOBIG, "profile is %zu bytes, more than the cap of %zu", len,
                  limits->max_input_bytes);
        return NULL;
    }

    unsigned char *inflated = NULL;
    const unsigned char *buf = data;
    size_t buf_len = len;
    if (pprof_is_gzip(data, len)) {
        if (pprof_gunzip(data, len, limits->max_decoded_bytes, &inflated, &buf_len, err) < 0)
            return NULL;
        buf = inflated;
    } else if (len > limits->max_decoded_bytes) {
        firn_errf(err, FIRN_ETOOBIG, "profile is %zu bytes, more than the cap of %zu", len,
                  limits->max_decoded_bytes);
        return NULL;
    }

    bool java;
    int legacy = pprof_legacy_detect(buf, buf_len, &java);
    if (legacy >= 0) {
        pprof_profile *lp = pprof_legacy_decode(buf, buf_len, legacy, java, limits, err);
        free(inflated);
        return lp;
    }

    struct counts counts;
    pprof_profile *p = NULL;
    firn_arena *arena = NULL, *msg_arena = NULL;
    if (scan_top_level(buf, buf_len, &counts, limits, err) < 0)
        goto fail;

    /* Most of the memory goes to protobuf-c's per-message structs, in an
     * arena of their own that is freed once the profile is built (about a
     * third of it stays: Go's 20k-sample large.cpu took 23.8 MB decoded
     * before, 8 MB after); size the chunks to the input so large profiles
     * use few chunks. */
    size_t chunk = buf_len < (1u << 16) ? (1u << 16) : buf_len > (8u << 20) ? (8u << 20) : buf_len;
    msg_arena = firn_arena_new(chunk);
    arena = firn_arena_new(chunk / 2);
    pprof_pb_alloc alloc;
    pprof_pb_alloc_init(&alloc, msg_arena, limits->max_memory_bytes);
    Firn__Pprof__Profile *msg = firn__pprof__profile__unpack(&alloc.pb, buf_len, buf);
    if (!msg) {
        if (alloc.exceeded)
            firn_errf(err, FIRN_ETOOBIG, "decoding needs more than the memory cap of %zu bytes",
                      limits->max_memory_bytes);
        else
            firn_errf(err, FIRN_EINVAL, "%s: a nested message is malformed", NOT_PPROF);
        goto fail;
    }
    p = firn_arena_calloc(arena, 1, sizeof *p);
    p->arena = arena;
    if (convert(msg, p, err) < 0) {
        p = NULL;
        goto fail;
    }
    assert(promises_hold(p));
    firn_arena_free(msg_arena);
    free(inflated);
    return p;

fail:
    firn_arena_free(arena);
    firn_arena_free(msg_arena);
    free(inflated);
    return NULL;
}

void pprof_free(pprof_profile *p)
{
    if (p)
        firn_arena_free(p->arena);
}
