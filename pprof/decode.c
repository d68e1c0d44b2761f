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
 *  3. protobuf-c unpacks the table elements one at a time (a scratch arena
 *     reused per element, everything under a memory budget) and each is
 *     copied into the profile;
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

/* Also copies the top-level fields that are not table elements (fields 2
 * to 6), tag and all and in order, into header (step 3 unpacks them). */
static int scan_top_level(const unsigned char *b, size_t len, struct counts *c,
                          firn_buf *header, const pprof_limits *lim, firn_err *err)
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
        if (field < 2 || field > 6)
            firn_buf_append(header, b + at, pos - at);
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
        return ((Type *)tab)[i].id;                                        \
    }                                                                      \
    static void name##_set_id(void *tab, size_t i, uint64_t id)            \
    {                                                                      \
        ((Type *)tab)[i].id = id;                                          \
    }
ID_ACCESSORS(pprof_mapping, mapping)
ID_ACCESSORS(pprof_location, location)
ID_ACCESSORS(pprof_function, function)
#undef ID_ACCESSORS

/* ---- step 3: unpacking, one element at a time ----------------------------
 *
 * protobuf-c unpacks each element of the repeated top-level fields (a
 * sample, a location, ...) on its own into a scratch arena that is reset
 * for the next, and the element is copied into the profile at once; the
 * other top-level fields (sample types, period, comments, the scalars and
 * any unknown ones) are gathered by the scan, in their order, and unpacked
 * together as one Profile message.  Unpacking the whole Profile instead
 * built a tree of protobuf-c structs twice the profile's size (16 MB for
 * Go's 20k-sample large.cpu) before the profile was made from it: memory
 * and cache misses paid by every decode.  The bytes protobuf-c reads are the same; only the
 * top level, which scan_top_level has already checked, is walked here.
 *
 * What only validation needs (ids as written, before they are resolved to
 * indexes) goes to a temporary arena.  Everything counts against
 * max_memory_bytes. */

struct unpacker {
    pprof_profile *p;
    firn_arena *tmp;              /* ids as written, freed after validation */
    firn_arena *scratch;          /* one element's protobuf-c structs */
    pprof_pb_alloc pb;            /* protobuf-c's allocator over scratch */
    size_t budget, used;
    bool exceeded;
    /* as written */
    uint64_t *loc_mapping_id;     /* per location */
    uint64_t **line_function_id;  /* per location, per line; NULL when every
                                     id fits in the lines' own uint32s */
    uint64_t **sample_location_id;/* per sample; NULL when every id fits in
                                     the sample's own uint32 array */
    size_t *sample_n_values;      /* per sample */
    int64_t *values;              /* every sample's values, in sample order */
    size_t n_sample_types;
};

/* n bytes from a (the profile's arena or tmp) within the budget; NULL (and
 * exceeded set) past it. */
static void *u_alloc(struct unpacker *u, firn_arena *a, size_t n)
{
    if (n > u->budget - u->used) {
        u->exceeded = true;
        return NULL;
    }
    u->used += n;
    void *r = firn_arena_alloc(a, n ? n : 1);
    assert(r);   /* n is within the budget, so it does not overflow */
    return r;
}

/* Steps past the top-level field at *pos (scan_top_level accepted the whole
 * message): its number, and where its bytes start and how many there are
 * (for a length-delimited field, the payload). */
static void next_field(const unsigned char *b, size_t len, size_t *pos, uint64_t *field,
                       size_t *start, size_t *n)
{
    uint64_t tag = 0, v = 0;
    int rc = read_varint(b, len, pos, &tag);
    assert(rc == 0);
    *field = tag >> 3;
    int wt = (int)(tag & 7);
    switch (wt) {
    case 0: rc = read_varint(b, len, pos, &v); *start = *pos; *n = 0; break;
    case 1: *start = *pos; *n = 8; *pos += 8; break;
    case 5: *start = *pos; *n = 4; *pos += 4; break;
    default:
        assert(wt == 2);
        rc = read_varint(b, len, pos, &v);
        *start = *pos;
        *n = (size_t)v;
        *pos += (size_t)v;
        break;
    }
    assert(rc == 0 && *pos <= len);
    (void)rc;
}

/* Readies the scratch arena for the next element within what is left of
 * the budget. */
static void scratch_ready(struct unpacker *u)
{
    firn_arena_reset(u->scratch);
    pprof_pb_alloc_init(&u->pb, u->scratch, u->budget - u->used);
}

/* protobuf-c refused an element: over the budget, or malformed. */
static int unpack_failed(struct unpacker *u, const pprof_limits *lim, firn_err *err)
{
    if (u->pb.exceeded || u->exceeded)
        return firn_errf(err, FIRN_ETOOBIG, "decoding needs more than the memory cap of %zu bytes",
                         lim->max_memory_bytes);
    return firn_errf(err, FIRN_EINVAL, "%s: a nested message is malformed", NOT_PPROF);
}

/* The top-level fields that are not table elements, unpacked as one
 * Profile message (so repeated scalars, the period type's parts and packed
 * or unpacked comments mean what protobuf-c makes of them). */
static int unpack_header(struct unpacker *u, const firn_buf *header, const pprof_limits *lim,
                         firn_err *err)
{
    pprof_profile *p = u->p;
    if (header->len > u->budget - u->used) {
        u->exceeded = true;
        return unpack_failed(u, lim, err);
    }
    u->used += header->len;
    scratch_ready(u);
    Firn__Pprof__Profile *m = firn__pprof__profile__unpack(
        &u->pb.pb, header->len, (const uint8_t *)(header->data ? header->data : ""));
    if (!m)
        return unpack_failed(u, lim, err);
    assert(m->n_sample == 0 && m->n_location == 0 && m->n_string_table == 0);
    p->drop_frames = m->drop_frames;
    p->keep_frames = m->keep_frames;
    p->default_sample_type = m->default_sample_type;
    p->doc_url = m->doc_url;
    p->time_nanos = m->time_nanos;
    p->duration_nanos = m->duration_nanos;
    p->period = m->period;
    if (m->period_type) {
        p->period_type.type = m->period_type->type;
        p->period_type.unit = m->period_type->unit;
    }
    p->n_comments = m->n_comment;
    p->comments = m->n_comment ? u_alloc(u, p->arena, m->n_comment * sizeof *p->comments) : NULL;
    p->n_sample_types = m->n_sample_type;
    p->sample_types = u_alloc(u, p->arena, (m->n_sample_type ? m->n_sample_type : 1) *
                                               sizeof *p->sample_types);
    if ((m->n_comment && !p->comments) || !p->sample_types)
        return unpack_failed(u, lim, err);
    if (m->n_comment)
        memcpy(p->comments, m->comment, m->n_comment * sizeof *p->comments);
    memset(p->sample_types, 0, sizeof *p->sample_types);
    for (size_t i = 0; i < m->n_sample_type; i++) {
        p->sample_types[i].type = m->sample_type[i]->type;
        p->sample_types[i].unit = m->sample_type[i]->unit;
    }
    u->n_sample_types = m->n_sample_type;
    return 0;
}

/* The tables, sized by the scan's counts (zeroed, as convert's checks
 * expect of what an element leaves unset). */
static int alloc_tables(struct unpacker *u, const struct counts *c, const pprof_limits *lim,
                        firn_err *err)
{
    pprof_profile *p = u->p;
    size_t nst = u->n_sample_types;
#define TABLE(dst, a, n, size)                                   \
    do {                                                         \
        (dst) = u_alloc(u, (a), ((n) ? (n) : 1) * (size));       \
        if (!(dst))                                              \
            return unpack_failed(u, lim, err);                   \
        memset((dst), 0, ((n) ? (n) : 1) * (size));              \
    } while (0)
    TABLE(p->strings, p->arena, c->strings, sizeof *p->strings);
    TABLE(p->mappings, p->arena, c->mappings, sizeof *p->mappings);
    TABLE(p->functions, p->arena, c->functions, sizeof *p->functions);
    TABLE(p->locations, p->arena, c->locations, sizeof *p->locations);
    TABLE(p->samples, p->arena, c->samples, sizeof *p->samples);
    if (c->samples && nst > (SIZE_MAX / sizeof(int64_t) - 1) / c->samples) {
        u->exceeded = true;
        return unpack_failed(u, lim, err);
    }
    TABLE(u->values, p->arena, c->samples * nst + 1, sizeof *u->values);
    TABLE(u->loc_mapping_id, u->tmp, c->locations, sizeof *u->loc_mapping_id);
    TABLE(u->line_function_id, u->tmp, c->locations, sizeof *u->line_function_id);
    TABLE(u->sample_location_id, u->tmp, c->samples, sizeof *u->sample_location_id);
    TABLE(u->sample_n_values, u->tmp, c->samples, sizeof *u->sample_n_values);
#undef TABLE
    return 0;
}

static int unpack_sample(struct unpacker *u, size_t i, const Firn__Pprof__Sample *s)
{
    pprof_sample *d = &u->p->samples[i];
    d->n_locations = s->n_location_id;
    if (s->n_location_id) {
        d->locations = u_alloc(u, u->p->arena, s->n_location_id * sizeof *d->locations);
        if (!d->locations)
            return -1;
        /* Ids that fit wait in the array their indexes go to, which
         * validation then rewrites in place (one array walked, not two);
         * a sample with a larger id keeps its ids as written aside. */
        bool fit = true;
        for (size_t j = 0; j < s->n_location_id; j++) {
            fit &= s->location_id[j] <= UINT32_MAX;
            d->locations[j] = (uint32_t)s->location_id[j];
        }
        if (!fit) {
            uint64_t *ids = u_alloc(u, u->tmp, s->n_location_id * sizeof *ids);
            if (!ids)
                return -1;
            memcpy(ids, s->location_id, s->n_location_id * sizeof *ids);
            u->sample_location_id[i] = ids;
        }
    }
    u->sample_n_values[i] = s->n_value;
    d->values = u->values + i * u->n_sample_types;
    if (s->n_value == u->n_sample_types && s->n_value)
        memcpy(d->values, s->value, s->n_value * sizeof *d->values);
    d->n_labels = s->n_label;
    if (s->n_label) {
        d->labels = u_alloc(u, u->p->arena, s->n_label * sizeof *d->labels);
        if (!d->labels)
            return -1;
        for (size_t j = 0; j < s->n_label; j++) {
            d->labels[j].key = s->label[j]->key;
            d->labels[j].str = s->label[j]->str;
            d->labels[j].num = s->label[j]->num;
            d->labels[j].num_unit = s->label[j]->num_unit;
        }
    }
    return 0;
}

static int unpack_location(struct unpacker *u, size_t i, const Firn__Pprof__Location *s)
{
    pprof_location *d = &u->p->locations[i];
    d->id = s->id;
    d->address = s->address;
    d->is_folded = s->is_folded;
    d->mapping = PPROF_NONE;
    u->loc_mapping_id[i] = s->mapping_id;
    d->n_lines = s->n_line;
    if (s->n_line) {
        d->lines = u_alloc(u, u->p->arena, s->n_line * sizeof *d->lines);
        if (!d->lines)
            return -1;
        /* function ids wait where their indexes go, as a sample's location
         * ids do (unpack_sample) */
        bool fit = true;
        for (size_t j = 0; j < s->n_line; j++) {
            fit &= s->line[j]->function_id <= UINT32_MAX;
            d->lines[j].function = (uint32_t)s->line[j]->function_id;
            d->lines[j].line = s->line[j]->line;
            d->lines[j].column = s->line[j]->column;
        }
        if (!fit) {
            uint64_t *fids = u_alloc(u, u->tmp, s->n_line * sizeof *fids);
            if (!fids)
                return -1;
            for (size_t j = 0; j < s->n_line; j++)
                fids[j] = s->line[j]->function_id;
            u->line_function_id[i] = fids;
        }
    }
    return 0;
}

static void unpack_mapping(struct unpacker *u, size_t i, const Firn__Pprof__Mapping *s)
{
    pprof_mapping *d = &u->p->mappings[i];
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

static void unpack_function(struct unpacker *u, size_t i, const Firn__Pprof__Function *s)
{
    pprof_function *d = &u->p->functions[i];
    d->id = s->id;
    d->name = s->name;
    d->system_name = s->system_name;
    d->filename = s->filename;
    d->start_line = s->start_line;
}

/* Every element of the tables, in the order written. */
static int unpack_elements(struct unpacker *u, const unsigned char *b, size_t len,
                           const struct counts *c, const pprof_limits *lim, firn_err *err)
{
    pprof_profile *p = u->p;
    (void)c;   /* the tables' sizes, only asserted */
    size_t pos = 0;
    while (pos < len) {
        size_t start, n;
        uint64_t field;
        next_field(b, len, &pos, &field, &start, &n);
        const unsigned char *e = b + start;
        int rc = 0;
        switch (field) {
        case 6: {
            /* a string is its bytes: protobuf-c would copy them and add a
             * NUL, and a profile's strings end at their first NUL */
            const unsigned char *nul = memchr(e, 0, n);
            size_t sl = nul ? (size_t)(nul - e) : n;
            char *str = u_alloc(u, p->arena, sl + 1);
            if (!str)
                return unpack_failed(u, lim, err);
            memcpy(str, e, sl);
            str[sl] = '\0';
            assert(p->n_strings < c->strings);
            p->strings[p->n_strings++] = str;
            continue;
        }
        case 2: {
            scratch_ready(u);
            Firn__Pprof__Sample *s = firn__pprof__sample__unpack(&u->pb.pb, n, e);
            assert(p->n_samples < c->samples);
            rc = s ? unpack_sample(u, p->n_samples++, s) : -1;
            break;
        }
        case 3: {
            scratch_ready(u);
            Firn__Pprof__Mapping *s = firn__pprof__mapping__unpack(&u->pb.pb, n, e);
            assert(p->n_mappings < c->mappings);
            if (s)
                unpack_mapping(u, p->n_mappings++, s);
            rc = s ? 0 : -1;
            break;
        }
        case 4: {
            scratch_ready(u);
            Firn__Pprof__Location *s = firn__pprof__location__unpack(&u->pb.pb, n, e);
            assert(p->n_locations < c->locations);
            rc = s ? unpack_location(u, p->n_locations++, s) : -1;
            break;
        }
        case 5: {
            scratch_ready(u);
            Firn__Pprof__Function *s = firn__pprof__function__unpack(&u->pb.pb, n, e);
            assert(p->n_functions < c->functions);
            if (s)
                unpack_function(u, p->n_functions++, s);
            rc = s ? 0 : -1;
            break;
        }
        default:
            continue;
        }
        if (rc < 0)
            return unpack_failed(u, lim, err);
    }
    return 0;
}

/* ---- step 4: validation, ids resolved to indexes ------------------------- */

static int convert(struct unpacker *u, firn_err *err)
{
    pprof_profile *p = u->p;
    const size_t ns = p->n_strings;
    int rc;

    /* strings */
    if (ns == 0)
        return firn_errf(err, FIRN_EINVAL, "string_table is empty; string_table[0] must be \"\"");
    if (p->strings[0][0] != '\0') {
        char buf[64];
        return firn_errf(err, FIRN_EINVAL, "string_table[0] must be \"\", found \"%s\"",
                         str_preview(p->strings[0], buf, sizeof buf));
    }

    /* header fields */
    if ((rc = check_str(p->drop_frames, ns, err, "drop_frames")) ||
        (rc = check_str(p->keep_frames, ns, err, "keep_frames")) ||
        (rc = check_str(p->default_sample_type, ns, err, "default_sample_type")) ||
        (rc = check_str(p->doc_url, ns, err, "doc_url")) ||
        (rc = check_str(p->period_type.type, ns, err, "period_type.type")) ||
        (rc = check_str(p->period_type.unit, ns, err, "period_type.unit")))
        return rc;
    for (size_t i = 0; i < p->n_comments; i++)
        if ((rc = check_str(p->comments[i], ns, err, "comment[%zu]", i)))
            return rc;

    /* sample types */
    for (size_t i = 0; i < p->n_sample_types; i++)
        if ((rc = check_str(p->sample_types[i].type, ns, err, "sample_type[%zu].type", i)) ||
            (rc = check_str(p->sample_types[i].unit, ns, err, "sample_type[%zu].unit", i)))
            return rc;

    /* ids */
    struct idmap maps, locs, funcs;
    memset(&maps, 0, sizeof maps);
    memset(&locs, 0, sizeof locs);
    memset(&funcs, 0, sizeof funcs);
    bool rep_m = false, rep_l = false, rep_f = false;
    rc = build_idmap(&maps, p->n_mappings, mapping_get_id, mapping_set_id, p->mappings,
                     "mapping", &rep_m, err);
    if (!rc)
        rc = build_idmap(&locs, p->n_locations, location_get_id, location_set_id, p->locations,
                         "location", &rep_l, err);
    if (!rc)
        rc = build_idmap(&funcs, p->n_functions, function_get_id, function_set_id, p->functions,
                         "function", &rep_f, err);
    if (rc)
        goto out;
    p->repairs = (rep_m ? PPROF_REPAIR_MAPPING_IDS : 0) | (rep_l ? PPROF_REPAIR_LOCATION_IDS : 0) |
                 (rep_f ? PPROF_REPAIR_FUNCTION_IDS : 0);

    /* mappings */
    for (size_t i = 0; i < p->n_mappings; i++) {
        const pprof_mapping *s = &p->mappings[i];
        if ((rc = check_str(s->filename, ns, err, "mapping[%zu] (id %llu).filename", i,
                            (unsigned long long)s->id)) ||
            (rc = check_str(s->build_id, ns, err, "mapping[%zu] (id %llu).build_id", i,
                            (unsigned long long)s->id)))
            goto out;
    }

    /* functions */
    for (size_t i = 0; i < p->n_functions; i++) {
        const pprof_function *s = &p->functions[i];
        unsigned long long id = (unsigned long long)s->id;
        if ((rc = check_str(s->name, ns, err, "function[%zu] (id %llu).name", i, id)) ||
            (rc = check_str(s->system_name, ns, err, "function[%zu] (id %llu).system_name", i, id)) ||
            (rc = check_str(s->filename, ns, err, "function[%zu] (id %llu).filename", i, id)))
            goto out;
    }

    /* locations */
    for (size_t i = 0; i < p->n_locations; i++) {
        pprof_location *d = &p->locations[i];
        uint64_t mapping_id = u->loc_mapping_id[i];
        if (mapping_id != 0 && !idmap_find(&maps, mapping_id, &d->mapping)) {
            rc = firn_errf(err, FIRN_EINVAL, "location[%zu] (id %llu): mapping_id %llu not found",
                           i, (unsigned long long)d->id, (unsigned long long)mapping_id);
            goto out;
        }
        for (size_t j = 0; j < d->n_lines; j++) {
            const uint64_t *raw = u->line_function_id[i];
            uint64_t fid = raw ? raw[j] : d->lines[j].function;
            d->lines[j].function = PPROF_NONE;
            if (fid != 0 && !idmap_find(&funcs, fid, &d->lines[j].function)) {
                rc = firn_errf(err, FIRN_EINVAL,
                               "location[%zu] (id %llu): line[%zu]: function_id %llu not found", i,
                               (unsigned long long)d->id, j, (unsigned long long)fid);
                goto out;
            }
        }
    }

    /* samples */
    for (size_t i = 0; i < p->n_samples; i++) {
        pprof_sample *d = &p->samples[i];
        if (u->sample_n_values[i] != p->n_sample_types) {
            rc = firn_errf(err, FIRN_EINVAL, "sample[%zu]: %zu values, but %zu sample types", i,
                           u->sample_n_values[i], p->n_sample_types);
            goto out;
        }
        for (size_t j = 0; j < d->n_locations; j++) {
            const uint64_t *raw = u->sample_location_id[i];
            uint64_t id = raw ? raw[j] : d->locations[j];
            if (!idmap_find(&locs, id, &d->locations[j])) {
                rc = firn_errf(err, FIRN_EINVAL, "sample[%zu]: location_id %llu not found", i,
                               (unsigned long long)id);
                goto out;
            }
        }
        for (size_t j = 0; j < d->n_labels; j++) {
            const pprof_label *ls = &d->labels[j];
            if ((rc = check_str(ls->key, ns, err, "sample[%zu].label[%zu].key", i, j)) ||
                (rc = check_str(ls->str, ns, err, "sample[%zu].label[%zu].str", i, j)) ||
                (rc = check_str(ls->num_unit, ns, err, "sample[%zu].label[%zu].num_unit", i, j)))
                goto out;
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
    firn_buf header = {0};   /* within the input's size, which is capped */
    if (scan_top_level(buf, buf_len, &counts, &header, limits, err) < 0) {
        firn_buf_free(&header);
        free(inflated);
        return NULL;
    }

    /* The profile takes about twice the protobuf's size, the ids kept for
     * validation a fraction of that: chunks sized to the input keep large
     * profiles to few chunks. */
    size_t chunk = buf_len < (1u << 16) ? (1u << 16) : buf_len > (8u << 20) ? (8u << 20) : buf_len;
    struct unpacker u = {.budget = limits->max_memory_bytes};
    firn_arena *arena = firn_arena_new(chunk / 2);
    u.tmp = firn_arena_new(chunk / 4);
    u.scratch = firn_arena_new(0);
    pprof_profile *p = u_alloc(&u, arena, sizeof *p);
    if (p) {
        memset(p, 0, sizeof *p);
        p->arena = arena;
        u.p = p;
    }
    int rc = p ? 0 : unpack_failed(&u, limits, err);
    if (!rc)
        rc = unpack_header(&u, &header, limits, err);
    if (!rc)
        rc = alloc_tables(&u, &counts, limits, err);
    if (!rc)
        rc = unpack_elements(&u, buf, buf_len, &counts, limits, err);
    if (!rc)
        rc = convert(&u, err);
    firn_arena_free(u.scratch);
    firn_arena_free(u.tmp);
    firn_buf_free(&header);
    free(inflated);
    if (rc) {
        firn_arena_free(arena);
        return NULL;
    }
    assert(promises_hold(p));
    return p;
}

void pprof_free(pprof_profile *p)
{
    if (p)
        firn_arena_free(p->arena);
}
