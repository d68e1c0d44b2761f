/* model.h -- the vocabulary every firn layer shares: errors and arenas.
 *
 * model/ sits below every other module (pprof/ included): it knows nothing of
 * profiles, storage, HTTP or the query language.  Labels and label matchers
 * live here so that the query parser can build matchers the store evaluates
 * without the store knowing the parser.
 *
 * Also here: structured logging, labels, PCRE2 regexes with Prometheus's
 * anchoring, label matchers, and the profile-type names of series.
 *
 * Errors: a function that can fail returns an int (0 = ok, a negative
 * firn_status on error) or a pointer (NULL on error) and fills the caller's
 * firn_err with one human sentence naming what failed and where.
 *
 * Arenas: per-request and per-profile work allocates from a firn_arena and
 * frees everything at once.  An arena is not thread-safe; give each thread or
 * each unit of work its own.
 */
#ifndef FIRN_MODEL_H
#define FIRN_MODEL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- errors ---------------------------------------------------------- */

enum firn_status {
    FIRN_OK = 0,
    FIRN_EINVAL = -1,   /* bad input: malformed, out of range, inconsistent */
    FIRN_ENOMEM = -2,   /* allocation failed */
    FIRN_EIO = -3,      /* read/write/system call failed */
    FIRN_ETOOBIG = -4,  /* input exceeds a configured cap */
    FIRN_EBUSY = -5,    /* a bounded queue is full: try again later */
    FIRN_EEXIST = -6,   /* the thing to create is already there */
};

#define FIRN_ERR_MSG_MAX 512

typedef struct firn_err {
    int code;                    /* a firn_status, FIRN_OK when unset */
    char msg[FIRN_ERR_MSG_MAX];  /* "what: where: why", NUL-terminated */
} firn_err;

/* Fill err (if not NULL) with code and a printf-style message; returns code so
 * callers can write `return firn_errf(err, FIRN_EINVAL, "...")`. */
int firn_errf(firn_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepend "prefix: " to an error already set, to add context on the way up
 * ("fixture.pb.gz: " + "sample 3: ..."). */
void firn_err_prefix(firn_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void firn_err_clear(firn_err *err);

/* ---- arenas ---------------------------------------------------------- */

typedef struct firn_arena firn_arena;

/* A bump allocator over a list of chunks.  chunk_size is the size of the
 * regular chunks (0 picks a default); larger requests get a chunk of their
 * own.  Returns NULL when out of memory. */
firn_arena *firn_arena_new(size_t chunk_size);
void firn_arena_free(firn_arena *a);

/* 16-byte aligned, uninitialized; NULL when out of memory or on overflow. */
void *firn_arena_alloc(firn_arena *a, size_t size);
void *firn_arena_calloc(firn_arena *a, size_t count, size_t size);
/* Copy len bytes and add a NUL. */
char *firn_arena_strndup(firn_arena *a, const char *s, size_t len);
/* A copy of the string s in a; NULL when s is NULL or a runs out. */
char *firn_arena_strdup(firn_arena *a, const char *s);
/* Bytes obtained from the system so far (chunks included). */
size_t firn_arena_bytes(const firn_arena *a);

/* ---- process --------------------------------------------------------- */

/* Malloc settings for programs that decode profile after profile: keep
 * buffers up to 32 MiB on the heap instead of mapping and unmapping them
 * per request, and return free heap to the kernel only past 64 MiB.  The
 * page faults this avoids cost more than decoding itself (see `firnctl
 * bench decode`).  Call once at the start of main(). */
void firn_tune_malloc(void);

/* The wall clock (CLOCK_REALTIME) and a monotonic clock, in milliseconds. */
int64_t firn_now_ms(void);
int64_t firn_mono_ms(void);
/* The wall-clock time ms milliseconds from now (ms >= 0), as
 * pthread_cond_timedwait takes its deadline. */
struct timespec firn_deadline_ms(int64_t ms);

/* ---- files ----------------------------------------------------------- */

/* Read a whole file (or standard input for "-") into a malloc'd buffer;
 * FIRN_ETOOBIG when it is larger than max bytes. */
int firn_read_file(const char *path, size_t max, unsigned char **out, size_t *out_len,
                   firn_err *err);

/* Write len bytes to path through a temporary file and rename(2), so a
 * reader never sees a half-written file; the file and then its directory
 * are synced, so once it returns 0 the new file survives a crash.  An error
 * after the rename (the directory sync failed) leaves the new file in place
 * but not known to be durable. */
int firn_write_file_atomic(const char *path, const void *data, size_t len, firn_err *err);

/* ---- growing arrays ----------------------------------------------------- */

/* The array v (n used of *cap) with room for one more element: v itself
 * when there is room, else v reallocated to twice *cap (initial when
 * empty) with *cap updated.  NULL when out of memory; v and *cap are then
 * unchanged and still the caller's. */
void *firn_grow(void *v, size_t n, size_t *cap, size_t elem, size_t initial);

/* ---- sorted tables ------------------------------------------------------ */

/* qsort that takes an empty array as it comes (NULL included: qsort's
 * arguments must not be NULL even for no elements) and sorts nothing below
 * two elements. */
void firn_sort(void *base, size_t n, size_t elem, int (*cmp)(const void *, const void *));

/* In an array of n elements of elem bytes sorted by the uint64_t at
 * key_offset in each, the number of elements whose key is <= key: the
 * element at the result - 1 is the last one at or below key (none when 0).
 * For address tables: symbols, mappings, JIT code ranges. */
size_t firn_sorted_count_le(const void *base, size_t n, size_t elem, size_t key_offset,
                            uint64_t key);

/* ---- u64 -> u32 hash map --------------------------------------------- */

/* Open addressing, linear probing; keys are arbitrary uint64 values (0 is a
 * valid key).  Used to map sparse ids to dense indexes and hashes to slots. */
typedef struct firn_u64map {
    struct firn_u64map_slot {
        uint64_t key;
        uint32_t val, used;
    } *slots;
    size_t cap;     /* power of two */
    size_t len;
} firn_u64map;

int firn_u64map_init(firn_u64map *m, size_t expected);
void firn_u64map_destroy(firn_u64map *m);
/* Empty m, keeping its capacity. */
void firn_u64map_clear(firn_u64map *m);
/* Insert key -> val.  Returns 1 if inserted, 0 if the key existed (its value
 * is left unchanged and written to *existing if not NULL), negative on OOM. */
int firn_u64map_put(firn_u64map *m, uint64_t key, uint32_t val, uint32_t *existing);
/* Returns 1 and sets *val when found, 0 otherwise. */
int firn_u64map_get(const firn_u64map *m, uint64_t key, uint32_t *val);

/* ---- logging ----------------------------------------------------------- */

/* Structured one-line logs on standard error, as Prometheus and Parca write
 * them:  ts=2026-11-24T10:00:00.123Z level=warn component=tsdb msg="..." k=v
 * Each line is written with a single write(2), so lines from different
 * threads never interleave.  Thread-safe. */
enum firn_log_level { FIRN_LOG_DEBUG, FIRN_LOG_INFO, FIRN_LOG_WARN, FIRN_LOG_ERROR };

/* Lines below level are dropped (default FIRN_LOG_INFO). */
void firn_log_set_level(enum firn_log_level level);
/* "debug", "info", "warn" or "error"; -1 for anything else. */
int firn_log_level_parse(const char *name);
/* msg is quoted and escaped; kv_fmt (may be NULL) is printf-style and
 * appended after msg as is, e.g. "path=%s series=%zu".  Values that may hold
 * spaces or quotes should go through firn_log_quote. */
void firn_log(enum firn_log_level level, const char *component, const char *msg,
              const char *kv_fmt, ...) __attribute__((format(printf, 4, 5)));
/* Write s as a logfmt value into buf (quoted and escaped when it needs to
 * be, truncated to fit); returns buf. */
const char *firn_log_quote(char *buf, size_t size, const char *s);

/* ---- labels -------------------------------------------------------------- */

/* A label pair.  A label set is an array of them sorted by name with unique
 * names (Prometheus's model/labels).  The strings are owned by whoever owns
 * the array. */
typedef struct firn_label {
    const char *name;
    const char *value;
} firn_label;

#define FIRN_LABEL_NAME "__name__"
#define FIRN_LABEL_NAME_MAX 256       /* bytes in a label name */
#define FIRN_LABEL_VALUE_MAX 65536    /* bytes in a label value */
#define FIRN_LABELS_MAX 256           /* pairs in a label set */

/* Prometheus's label name rule: [a-zA-Z_][a-zA-Z0-9_]*. */
bool firn_label_name_valid(const char *name);
/* One UTF-8 sequence at s[0..len) (len > 0): its length with *rune set, or
 * 0 when invalid (bad lead byte, missing continuation, overlong form,
 * surrogate, past U+10FFFF). */
size_t firn_utf8_decode(const unsigned char *s, size_t len, uint32_t *rune);
/* The UTF-8 sequence of rune r (at most 0x10FFFF) into out: its length,
 * 1 to 4.  Surrogates are the caller's to refuse. */
size_t firn_utf8_encode(uint32_t r, char out[4]);
/* The len bytes at s are valid UTF-8. */
bool firn_utf8_valid(const char *s, size_t len);
/* Sort by name and check the set: valid names, UTF-8 values within
 * FIRN_LABEL_VALUE_MAX, no duplicate names, at most FIRN_LABELS_MAX pairs.
 * Pairs with an empty value are removed (Prometheus: an empty label is an
 * absent label); *n is updated. */
int firn_labels_normalize(firn_label *labels, size_t *n, firn_err *err);
/* Value of name in a sorted set, or NULL. */
const char *firn_labels_get(const firn_label *labels, size_t n, const char *name);
/* The Go-quoted (strconv.Quote) form of s[0..len) written to out when out
 * is not NULL; returns its length, quotes included: at most 10 bytes per
 * input byte, plus 2.  Invalid UTF-8 bytes come out as \xNN, as in Go. */
size_t firn_go_quote(char *out, const char *s, size_t len);
/* {a="1", b="2"} with Prometheus's quoting of values (Go %q escapes), into a
 * malloc'd string. */
char *firn_labels_format(const firn_label *labels, size_t n);

/* ---- growable byte buffers ---------------------------------------------- */

/* Appends never fail loudly: the first allocation failure sets failed and
 * every later append is a no-op, so a writer checks once at the end.  data
 * is always NUL-terminated when not NULL.  Zero-initialize to start. */
typedef struct firn_buf {
    char *data;
    size_t len, cap;
    bool failed;
} firn_buf;

void firn_buf_append(firn_buf *b, const void *p, size_t n);
void firn_buf_puts(firn_buf *b, const char *s);
void firn_buf_printf(firn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand the bytes to the caller (free them); the buffer is empty again.
 * NULL when an append failed (the bytes are freed then). */
char *firn_buf_take(firn_buf *b, size_t *len);
void firn_buf_free(firn_buf *b);
/* s (NULL as "") as a JSON string escaped as Go's encoding/json does (<, >,
 * & and U+2028/9 as \u escapes; invalid UTF-8 as \ufffd). */
void firn_json_string(firn_buf *b, const char *s);

/* The reason phrase of an HTTP status, as Go's http.StatusText ("Not
 * Found"); "" for a code it does not know. */
const char *firn_http_status_text(int status);

/* ---- Prometheus text exposition ----------------------------------------- */

/* Writers of the text format (version 0.0.4) that /metrics serves and
 * `promtool check metrics` accepts.  A family is one header then its
 * samples; names must be valid metric names, label names valid label
 * names; values are escaped here (\\, \", \n). */
#define FIRN_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void firn_metrics_header(firn_buf *b, const char *name, const char *type, const char *help);
/* name{labels} value: labels may be NULL when n is 0.  Integral values are
 * printed without exponent; NaN and infinities as Prometheus spells them. */
void firn_metrics_sample(firn_buf *b, const char *name, const firn_label *labels, size_t n,
                         double value);

/* A family of one sample without labels: header, then name value. */
void firn_metrics_single(firn_buf *b, const char *name, const char *type, const char *help,
                         double value);

/* A histogram with fixed upper bounds, observed from any thread. */
#define FIRN_HISTOGRAM_MAX_BUCKETS 24
typedef struct firn_histogram {
    double bounds[FIRN_HISTOGRAM_MAX_BUCKETS];  /* ascending; +Inf is implicit */
    size_t n_bounds;
    _Atomic uint64_t counts[FIRN_HISTOGRAM_MAX_BUCKETS + 1];  /* per bucket, not cumulative */
    _Atomic uint64_t sum_micro;  /* sum of observations, in millionths */
} firn_histogram;

/* bounds[0..n) ascending, n <= FIRN_HISTOGRAM_MAX_BUCKETS. */
void firn_histogram_init(firn_histogram *h, const double *bounds, size_t n);
void firn_histogram_observe(firn_histogram *h, double v);
/* name_bucket{labels,le="..."}, name_sum, name_count (no header). */
void firn_histogram_write(firn_buf *b, const char *name, const firn_label *labels, size_t n,
                          const firn_histogram *h);

/* ---- regular expressions (PCRE2) --------------------------------------- */

/* A compiled regex with Prometheus's anchoring: the whole input must match,
 * and "." matches newline (RE2's ^(?s:re)$).  UTF-8 mode, JIT when
 * available, and a match limit so a pathological pattern cannot spin.
 * A compiled firn_regex is read-only and safe to use from many threads. */
typedef struct firn_regex firn_regex;

#define FIRN_REGEX_MAX_GROUPS 64

firn_regex *firn_regex_compile(const char *pattern, firn_err *err);
void firn_regex_free(firn_regex *re);
/* 1 when the whole of s matches, 0 when not, negative (with err) when
 * matching failed (match limit hit). */
int firn_regex_match(const firn_regex *re, const char *s, size_t len, firn_err *err);

/* Capture groups and Go's regexp.Expand, for relabeling.
 *
 * An ovector holds 2 * FIRN_REGEX_MAX_GROUPS offsets into the subject: the
 * start and end of group i at [2i] and [2i+1], group 0 the whole match, a
 * group that did not take part (SIZE_MAX, SIZE_MAX). */

/* Capture groups in the pattern, group 0 not counted. */
int firn_regex_group_count(const firn_regex *re);
/* 1 when the whole of s matches, with the groups in ovector and their
 * number (capture groups + 1) in *n_groups; 0 when it does not match;
 * negative (with err) when matching failed, or the pattern has
 * FIRN_REGEX_MAX_GROUPS capture groups or more. */
int firn_regex_match_groups(const firn_regex *re, const char *s, size_t len,
                            size_t *ovector /* 2 * FIRN_REGEX_MAX_GROUPS */,
                            size_t *n_groups, firn_err *err);
/* Index of the named group (?P<name>...) or (?<name>...), -1 if none. */
int firn_regex_group_index(const firn_regex *re, const char *name);
/* tmpl with its references replaced as Go's regexp.Expand does: $name or
 * ${name}, name the longest run of letters, digits and "_" ($1x is ${1x});
 * an all-digit name is a group index, any other a group name; an unknown,
 * out-of-range or unmatched group gives ""; "$$" is "$"; a "$" not followed
 * by a name or a closed ${name} is itself.  subject, ovector and n_groups
 * come from firn_regex_match_groups.  A malloc'd string; NULL when out of
 * memory. */
char *firn_regex_expand(const firn_regex *re, const char *tmpl, const char *subject,
                        const size_t *ovector, size_t n_groups);
/* Go's re.ReplaceAllString(s, replacement): with Prometheus's anchoring the
 * regex matches all of s or nothing, so this is the expanded replacement
 * when s matches and a copy of s when not.  A malloc'd string; NULL (with
 * err) when matching failed or out of memory. */
char *firn_regex_replace_all(const firn_regex *re, const char *s, size_t len,
                             const char *replacement, firn_err *err);

/* ---- label matchers ------------------------------------------------------ */

typedef enum firn_match_type {
    FIRN_MATCH_EQ,    /* =  */
    FIRN_MATCH_NE,    /* != */
    FIRN_MATCH_RE,    /* =~ */
    FIRN_MATCH_NRE,   /* !~ */
} firn_match_type;

/* One label matcher, as Prometheus's labels.Matcher: name, operator, value.
 * A label that is absent has the value "".  Owns its strings and regex. */
typedef struct firn_matcher {
    firn_match_type type;
    char *name;
    char *value;
    firn_regex *re;   /* for =~ and !~ */
} firn_matcher;

int firn_matcher_init(firn_matcher *m, firn_match_type type, const char *name,
                      const char *value, firn_err *err);
void firn_matcher_destroy(firn_matcher *m);
/* Whether the matcher accepts value (NULL means the label is absent, i.e.
 * ""); a regex that hits its match limit counts as no match. */
bool firn_matcher_matches(const firn_matcher *m, const char *value);
/* "=", "!=", "=~", "!~". */
const char *firn_match_type_str(firn_match_type type);

/* ---- durations ------------------------------------------------------------ */

/* Prometheus duration syntax ("15d", "1h30m", "500ms", "0"; units y w d h m
 * s ms, each at most once, in that order) into milliseconds. */
int firn_duration_parse(const char *s, int64_t *ms, firn_err *err);
/* The inverse, as Prometheus prints durations ("1h30m", "0s"); snprintf's
 * return convention. */
int firn_duration_format(char *buf, size_t size, int64_t ms);

/* ---- profile types --------------------------------------------------------- */

/* A profile type, the __name__ of every stored series, written as Parca and
 * Pyroscope write it: name:sample_type:sample_unit:period_type:period_unit
 * with ":delta" appended for types that are stored as deltas, e.g.
 * process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta.  The fields point into
 * the string that was parsed (they are not NUL-terminated). */
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

/* ---- relabeling ------------------------------------------------------------ */

/* Prometheus's relabel_config (model/relabel): the rules that rewrite, keep
 * or drop a label set, applied to discovered targets and scraped samples.
 * Label names are validated the legacy way ([a-zA-Z_][a-zA-Z0-9_]*, at most
 * FIRN_LABEL_NAME_MAX bytes), as firn_label_name_valid; target_label and the
 * labelmap replacement may hold $-references, checked against Prometheus's
 * ^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$.
 *
 * A config is built once (by the config loader), then read-only: it can be
 * applied from many threads at once. */
typedef enum firn_relabel_action {
    FIRN_RELABEL_REPLACE,
    FIRN_RELABEL_KEEP,
    FIRN_RELABEL_DROP,
    FIRN_RELABEL_KEEPEQUAL,
    FIRN_RELABEL_DROPEQUAL,
    FIRN_RELABEL_HASHMOD,
    FIRN_RELABEL_LABELMAP,
    FIRN_RELABEL_LABELDROP,
    FIRN_RELABEL_LABELKEEP,
    FIRN_RELABEL_LOWERCASE,
    FIRN_RELABEL_UPPERCASE,
} firn_relabel_action;

typedef struct firn_relabel_config {
    firn_relabel_action action;
    char **source_labels;    /* malloc'd array of malloc'd names, owned; not NULL
                              * when given, even as [] (labeldrop and labelkeep
                              * refuse a given source_labels, as Prometheus) */
    size_t n_source_labels;
    char *separator;         /* NULL = ";" */
    char *target_label;      /* may be NULL */
    char *regex;             /* pattern text; NULL = "(.*)"; "" (an explicit null in
                              * YAML) = the empty regex, which matches only "" */
    uint64_t modulus;
    char *replacement;       /* NULL = "$1" */
    firn_regex *compiled;    /* set by firn_relabel_config_init */
    /* Which fields were given explicitly.  Prometheus compares separator,
     * modulus and replacement with their defaults by value, so only an
     * explicit regex (has_regex, or regex not NULL) counts in validation;
     * the others are for the loader's own use. */
    bool has_separator, has_regex, has_modulus, has_replacement;
} firn_relabel_config;

/* Most labels a label set may hold while rules run (labelmap adds some). */
#define FIRN_RELABEL_LABELS_MAX 4096

/* The action named s, case-insensitively (Go's strings.ToLower); -1 when
 * there is none. */
int firn_relabel_action_parse(const char *s, firn_relabel_action *out);
/* "replace", "keep", ...; "unknown" for a value outside the enum. */
const char *firn_relabel_action_name(firn_relabel_action a);
/* Validate c as Prometheus's Config.Validate does, with the same messages
 * ("relabel configuration for replace action requires 'target_label'
 * value"), and compile its regex into c->compiled.  c holds zeros or
 * values in every field it does not set. */
int firn_relabel_config_init(firn_relabel_config *c, firn_err *err);
/* Free the owned strings and the compiled regex; c is zeroed. */
void firn_relabel_config_destroy(firn_relabel_config *c);
/* Apply cfgs[0..n) in order, as Prometheus's relabel.Process, stopping at
 * the first rule that drops.  in is a label set (pairs with an empty value
 * count as absent).  Returns 1 when kept, with *out the new label set,
 * sorted by name, its array and strings allocated from arena (NULL when
 * the set is empty); 0 when
 * dropped (*out NULL, *n_out 0); negative (with err) when a regex hits its
 * match limit, a produced value is longer than FIRN_LABEL_VALUE_MAX, the
 * set grows past FIRN_RELABEL_LABELS_MAX, in has a duplicate name, or out
 * of memory.  Thread-safe for read-only cfgs. */
int firn_relabel_process(const firn_relabel_config *cfgs, size_t n, const firn_label *in,
                         size_t n_in, firn_arena *arena, firn_label **out, size_t *n_out,
                         firn_err *err);

#endif
