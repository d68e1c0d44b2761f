/* pprof.h -- the pprof profile model, its decoder/encoder, and the
 * normalization helpers every other firn module uses.
 *
 * Owns: turning bytes (raw or gzipped protobuf, see profile.proto) into a
 * validated pprof_profile and back.  A decoded profile is self-contained: one
 * arena holds the profile and everything it points to, and pprof_free()
 * releases it all.  Functions here are pure (no globals, no I/O) and
 * thread-safe on distinct profiles; a profile may be read from many threads
 * at once once decoded.
 *
 * Promises of a profile returned by pprof_decode():
 *  - strings[0] is "" and every string index in the profile is in range;
 *  - every sample has exactly n_sample_types values;
 *  - mapping, location and function ids are nonzero and unique, and every
 *    reference between them has been resolved to an array index
 *    (PPROF_NONE where the format says "no mapping"/"no function").
 * Input that breaks these rules is rejected with an error naming the element
 * and the rule, except one lenient case producers really emit: a table whose
 * ids are *all* zero (the .NET profiler omits function ids) is numbered by
 * position, 1..n, and the profile's `repairs` says so.
 *
 * Depends only on model/ (errors, arenas, maps), zlib and protobuf-c.
 */
#ifndef FIRN_PPROF_H
#define FIRN_PPROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

#define PPROF_NONE UINT32_MAX

typedef struct pprof_value_type {
    int64_t type;   /* string index, e.g. "cpu" */
    int64_t unit;   /* string index, e.g. "nanoseconds" */
} pprof_value_type;

typedef struct pprof_label {
    int64_t key;       /* string index */
    int64_t str;       /* string index, 0 when the label is numeric */
    int64_t num;
    int64_t num_unit;  /* string index, 0 when absent */
} pprof_label;

typedef struct pprof_sample {
    uint32_t *locations;   /* indexes into profile->locations, leaf first */
    size_t n_locations;
    int64_t *values;       /* profile->n_sample_types of them */
    pprof_label *labels;
    size_t n_labels;
} pprof_sample;

typedef struct pprof_mapping {
    uint64_t id;
    uint64_t memory_start;
    uint64_t memory_limit;
    uint64_t file_offset;
    int64_t filename;      /* string index */
    int64_t build_id;      /* string index */
    bool has_functions;
    bool has_filenames;
    bool has_line_numbers;
    bool has_inline_frames;
} pprof_mapping;

typedef struct pprof_line {
    uint32_t function;     /* index into profile->functions, or PPROF_NONE */
    int64_t line;
    int64_t column;
} pprof_line;

typedef struct pprof_location {
    uint64_t id;
    uint32_t mapping;      /* index into profile->mappings, or PPROF_NONE */
    uint64_t address;
    pprof_line *lines;     /* lines[0] is the innermost (inlined) frame */
    size_t n_lines;
    bool is_folded;
} pprof_location;

typedef struct pprof_function {
    uint64_t id;
    int64_t name;          /* string index */
    int64_t system_name;   /* string index */
    int64_t filename;      /* string index */
    int64_t start_line;
} pprof_function;

/* What lenient decoding repaired (bit set in pprof_profile.repairs). */
enum {
    PPROF_REPAIR_MAPPING_IDS = 1u << 0,   /* all mapping ids were 0 */
    PPROF_REPAIR_LOCATION_IDS = 1u << 1,  /* all location ids were 0 */
    PPROF_REPAIR_FUNCTION_IDS = 1u << 2,  /* all function ids were 0 */
};

typedef struct pprof_profile {
    firn_arena *arena;               /* owns the profile and all it points to */

    pprof_value_type *sample_types;
    size_t n_sample_types;
    pprof_sample *samples;
    size_t n_samples;
    pprof_mapping *mappings;
    size_t n_mappings;
    pprof_location *locations;
    size_t n_locations;
    pprof_function *functions;
    size_t n_functions;
    char **strings;                  /* NUL-terminated */
    size_t n_strings;

    int64_t drop_frames;             /* string index */
    int64_t keep_frames;             /* string index */
    int64_t time_nanos;
    int64_t duration_nanos;
    pprof_value_type period_type;
    int64_t period;
    int64_t *comments;               /* string indexes */
    size_t n_comments;
    int64_t default_sample_type;     /* string index, 0 = unset */
    int64_t doc_url;                 /* string index */

    unsigned repairs;                /* PPROF_REPAIR_* */
} pprof_profile;

/* ---- decoding and encoding ------------------------------------------- */

/* Caps on what one profile may cost.  Every size from outside is capped. */
typedef struct pprof_limits {
    size_t max_input_bytes;      /* compressed (as received) */
    size_t max_decoded_bytes;    /* after gunzip: stops gzip bombs */
    size_t max_memory_bytes;     /* arena budget while unpacking */
    size_t max_samples;
    size_t max_locations;
    size_t max_functions;
    size_t max_mappings;
    size_t max_strings;
} pprof_limits;

void pprof_limits_default(pprof_limits *limits);

/* Decode a raw or gzipped pprof protobuf.  limits may be NULL (defaults).
 * Returns NULL and fills err on any problem; on success the profile keeps no
 * pointer into data. */
pprof_profile *pprof_decode(const void *data, size_t len,
                            const pprof_limits *limits, firn_err *err);

void pprof_free(pprof_profile *p);

/* Encode to protobuf; gzip_level 0 writes raw protobuf, 1..9 gzips at that
 * level, -1 gzips at zlib's default level (what `go tool pprof` writes).
 * *out is malloc'd; the caller frees it. */
int pprof_encode(const pprof_profile *p, int gzip_level,
                 unsigned char **out, size_t *out_len, firn_err *err);

/* gunzip (one or more concatenated gzip members) into a malloc'd buffer of at
 * most max_out bytes; FIRN_ETOOBIG past that.  Exposed for ingest endpoints
 * and benchmarks that need the same capped inflate. */
int pprof_gunzip(const void *data, size_t len, size_t max_out,
                 unsigned char **out, size_t *out_len, firn_err *err);

/* gzip data at level (1..9, -1 = zlib's default) into a malloc'd buffer. */
int pprof_gzip(const void *data, size_t len, int level,
               unsigned char **out, size_t *out_len, firn_err *err);

/* True when data starts with the gzip magic bytes. */
bool pprof_is_gzip(const void *data, size_t len);

/* ---- reading --------------------------------------------------------- */

/* strings[idx], or "" when idx is out of range. */
const char *pprof_str(const pprof_profile *p, int64_t idx);

/* Index of the sample type whose type string equals name, or -1. */
int pprof_sample_type_index(const pprof_profile *p, const char *name);

/* default_sample_type if set and present, else the last sample type
 * (pprof's rule); -1 if the profile has no sample types. */
int pprof_default_sample_index(const pprof_profile *p);

/* totals[i] = sum of column i over all samples (n_sample_types entries),
 * saturating at INT64_MIN/INT64_MAX instead of overflowing. */
void pprof_totals(const pprof_profile *p, int64_t *totals);

/* Saturating int64 addition (profiles are input; overflow is not UB here). */
int64_t pprof_add_sat(int64_t a, int64_t b);

/* ---- normalization --------------------------------------------------- */

/* A 128-bit content hash (xxh3). */
typedef struct pprof_hash {
    uint64_t lo;
    uint64_t hi;
} pprof_hash;

static inline bool pprof_hash_eq(pprof_hash a, pprof_hash b)
{
    return a.lo == b.lo && a.hi == b.hi;
}

/* Identity of one frame, independent of ids (which every profile renumbers)
 * and of where a binary was loaded:
 *  - symbolized (has lines): each line's function name, file and line number;
 *  - unsymbolized: the mapping's build id (or file name when it has none)
 *    and the address relative to the file (address - start + offset); the
 *    raw address when there is no mapping. */
pprof_hash pprof_location_identity(const pprof_profile *p, uint32_t location);

/* pprof_location_identity of every location, into out[n_locations]; one
 * pass with one scratch buffer, for callers that need them all.  Returns 0. */
int pprof_location_identities(const pprof_profile *p, pprof_hash *out);
/* Identity of a sample: its stack (location identities, leaf first) and its
 * labels in sorted order (key, str, num, num_unit as strings/numbers).  Two
 * samples with equal identity describe the same thing and may be summed. */
pprof_hash pprof_sample_identity(const pprof_profile *p, size_t sample);

/* Identity of a sample's labels alone, in sorted order (the part of
 * pprof_sample_identity after the stack). */
pprof_hash pprof_labels_identity(const pprof_profile *p, size_t sample);
/* pprof_labels_identity of every sample into out[n_samples] ({0,0} for a
 * sample without labels), each distinct label set as written hashed once. */
void pprof_labels_identities(const pprof_profile *p, pprof_hash *out);
/* Sum samples of equal identity into the first of them (values saturate)
 * and drop the rest; sample order is otherwise kept.  Returns 0 (err is not
 * written: nothing here can fail under the out-of-memory policy). */
int pprof_merge_samples(pprof_profile *p, firn_err *err);

/* ---- deltas of cumulative profiles --------------------------------------- */

/* The previous scrape of one (target, profile type), for turning Go's
 * cumulative profiles (allocs/heap alloc_*, block, mutex) into deltas.
 * Not thread-safe: one state per scrape loop. */
typedef struct pprof_delta_state pprof_delta_state;

pprof_delta_state *pprof_delta_new(void);
void pprof_delta_free(pprof_delta_state *st);
/* columns[i] = whether column i is cumulative (alloc_objects/count,
 * alloc_space/bytes, contentions/count, delay/nanoseconds); the rest
 * (inuse_*, goroutine, cpu) are snapshots or deltas already. */
void pprof_delta_columns(const pprof_profile *p, bool *columns);
/* Turns p, in place, into its difference from the previous profile for the
 * columns marked, per sample identity (other columns are kept as they are),
 * drops samples left all zero, sets duration_nanos to the time between the
 * two, and makes p's original values the next baseline.  Returns 1 when p
 * now holds a delta to store, 0 when there was no usable baseline (the
 * first profile, other sample types, or a value that went down: a restart)
 * and p should not be stored (err is not written). */
int pprof_delta_apply(pprof_delta_state *st, pprof_profile *p, const bool *columns,
                      firn_err *err);

/* ---- building ---------------------------------------------------------- */

/* Builds a profile from parts, deduplicating strings, functions, mappings
 * and locations by content, so that code producing profiles (the store
 * reading back, query reports, the agent) need not track ids.  Indexes
 * returned are those of the finished profile's tables; string indexes are
 * string table indexes.  Not thread-safe; one builder per profile. */
typedef struct pprof_builder pprof_builder;

/* n_sample_types columns; their types are set with pprof_builder_sample_type.
 * Never NULL: the builder allocates under the out-of-memory policy
 * (model/alloc.h), so no adder fails and the callers cap what they add. */
pprof_builder *pprof_builder_new(size_t n_sample_types);
void pprof_builder_free(pprof_builder *b);
/* Every adder returns the element's index (pprof_builder_sample returns 0). */
int64_t pprof_builder_string(pprof_builder *b, const char *s, size_t len);
void pprof_builder_sample_type(pprof_builder *b, size_t column, const char *type,
                               const char *unit);
void pprof_builder_period(pprof_builder *b, const char *type, const char *unit, int64_t period);
void pprof_builder_time(pprof_builder *b, int64_t time_nanos, int64_t duration_nanos);
/* f, m and l use string indexes from this builder (m->id, f->id, l->id are
 * ignored; l->mapping and its lines' functions are indexes from this
 * builder). */
uint32_t pprof_builder_function(pprof_builder *b, const pprof_function *f);
/* Adds f without looking for an equal function: for a caller whose
 * functions are distinct already (a store partition's, keyed by their
 * content).  A builder given functions this way must get all of them this
 * way, as pprof_builder_function would not find these. */
uint32_t pprof_builder_function_distinct(pprof_builder *b, const pprof_function *f);
uint32_t pprof_builder_mapping(pprof_builder *b, const pprof_mapping *m);
uint32_t pprof_builder_location(pprof_builder *b, const pprof_location *l);
/* pprof_location_identity of a location added so far (an index returned by
 * pprof_builder_location): what it will be in the finished profile. */
pprof_hash pprof_builder_location_identity(const pprof_builder *b, uint32_t location);
/* Values has n_sample_types entries; labels use builder string indexes. */
int pprof_builder_sample(pprof_builder *b, const uint32_t *locations, size_t n_locations,
                         const int64_t *values, const pprof_label *labels, size_t n_labels);
/* The finished profile (ids 1..n in table order); the builder is consumed.
 * Never NULL; err is not written (kept for the callers' one error path). */
pprof_profile *pprof_builder_finish(pprof_builder *b, firn_err *err);

/* ---- reports ----------------------------------------------------------- */

typedef struct pprof_top_row {
    const char *name;   /* function name; "[binary]" or "<unknown>" if unsymbolized */
    int64_t flat;       /* value where this function is the leaf frame */
    int64_t cum;        /* value of samples with this function anywhere */
} pprof_top_row;

typedef struct pprof_top_report {
    pprof_top_row *rows;
    size_t n_rows;
    int64_t total;          /* the column's total over all samples */
    firn_arena *arena;      /* owns rows and the names made for addresses */
} pprof_top_report;

/* Flat/cum per function for one sample column, sorted as `go tool pprof
 * -top` sorts (|flat| descending, then name).  Names point into the profile
 * or into out->arena; free with pprof_top_free() before the profile. */
int pprof_top(const pprof_profile *p, int sample_index, pprof_top_report *out, firn_err *err);
void pprof_top_free(pprof_top_report *t);

#endif
