/* ingest.h -- the one path from bytes to the store, for scraped and pushed
 * profiles alike.
 *
 * Contract.  ingest_pprof takes target labels, the raw bytes of a pprof
 * profile (gzipped or not) and options, and either stores the profile (one
 * series per sample type, through tsdb_append, durable when it returns 0)
 * or returns a negative code with an error naming what is wrong; nothing of
 * a refused profile is stored.  In this order:
 *  1. decode with pprof/'s caps (pprof_limits_default): FIRN_EINVAL "decoding
 *     profile: ...", FIRN_ETOOBIG past a cap;
 *  2. sample_limit: FIRN_ETOOBIG "sample limit exceeded (samples: N, limit: L)";
 *  3. keep_sample_types (Parca's keep_sample_type): the other columns are
 *     dropped; FIRN_EINVAL when none is left;
 *  4. which columns are deltas (enum ingest_delta); with
 *     INGEST_DELTA_CUMULATIVE the cumulative columns become deltas against
 *     the target's previous profile, and the first profile (or one after a
 *     restart) is only kept as the baseline: 0 with result.baseline set;
 *  5. tsdb_append at timestamp_ms (0: the profile's time_nanos, else now):
 *     its errors prefixed "storing the profile: " (FIRN_EINVAL, FIRN_EBUSY
 *     for a full queue, FIRN_ETOOBIG, FIRN_EIO).
 * result.failed says which step refused (scrape health reports it).  Labels
 * are the target's, sorted, without __name__ (the store derives it from
 * profile_name); pushed labels go through ingest_labels_check first.
 *
 * The conversions of other formats are here too, so every push endpoint
 * shares them: Pyroscope's application names with labels, its profile
 * names by sample type, its folded suffixes, collapsed stacks ("folded")
 * as a pprof profile, and its time parameters.
 *
 * Threads: any; a pprof_delta_state belongs to one caller at a time (one
 * per scrape loop).  Memory: what a function returns in an arena lives as
 * long as the arena; a profile handed to ingest_profile is taken.
 */
#ifndef FIRN_INGEST_H
#define FIRN_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config/config.h"
#include "model/model.h"
#include "pprof/pprof.h"
#include "tsdb/tsdb.h"

/* Which columns hold deltas over the profile's duration. */
enum ingest_delta {
    INGEST_DELTA_AUTO = 0,    /* all when the profile has a duration (Parca's rule), else none */
    INGEST_DELTA_ALL,         /* all (a target asked for ?seconds=N, a client said delta=true) */
    INGEST_DELTA_NONE,        /* none: every column is a snapshot */
    INGEST_DELTA_COLUMNS,     /* as delta_columns says, one per sample type */
    INGEST_DELTA_CUMULATIVE,  /* the cumulative columns (pprof_delta_columns) are turned
                               * into deltas against *delta_state; the rest are snapshots */
};

typedef struct ingest_options {
    const char *profile_name;       /* the profile type's first field ("process_cpu"); required */
    enum ingest_delta delta;
    const bool *delta_columns;      /* INGEST_DELTA_COLUMNS only */
    pprof_delta_state **delta_state;  /* INGEST_DELTA_CUMULATIVE only: the target's state,
                                     * created here when *delta_state is NULL; the caller
                                     * frees it with pprof_delta_free */
    int64_t timestamp_ms;           /* 0: the profile's time_nanos, else now */
    uint64_t sample_limit;          /* 0: no limit */
    const config_sample_type *keep_sample_types;  /* NULL (n 0): keep every column */
    size_t n_keep_sample_types;
    bool keep_profile;              /* hand the stored profile back in the result */
} ingest_options;

enum ingest_failure {
    INGEST_OK = 0,
    INGEST_FAILED_DECODE,   /* not a profile (or over a cap), or no column left */
    INGEST_FAILED_LIMIT,    /* sample_limit */
    INGEST_FAILED_STORE,    /* tsdb_append refused or failed */
};

typedef struct ingest_result {
    enum ingest_failure failed;
    bool baseline;              /* kept as the delta baseline; nothing stored */
    size_t samples;             /* samples stored */
    int64_t timestamp_ms;       /* where it was stored */
    bool duplicate;             /* the store held this very profile already (a retry) */
    pprof_profile *profile;     /* with keep_profile, once stored: the profile as stored */
    bool *delta_columns;        /* with keep_profile, once stored: one per sample type */
} ingest_result;

/* ---- memory (budget.c) ----------------------------------------------------
 *
 * One byte budget bounds what every ingest path holds at once: a scraped
 * body from its first byte until it is stored (the scrape loop takes it as
 * the body arrives; past the budget the scrape is skipped and counted), and
 * decoding, for scrapes and pushes alike (ingest_decode takes a grant sized
 * to the input, decodes within it, and asks for more only when a profile
 * needs it; past the budget FIRN_EBUSY, which pushes answer 503 with
 * Retry-After).  A grant is held until its profile is stored or dropped. */
#define INGEST_DEFAULT_BUDGET ((size_t)512 << 20)
typedef struct ingest_grant {
    size_t bytes;   /* taken from the budget; zero-initialize */
} ingest_grant;
/* The budget's size (0: INGEST_DEFAULT_BUDGET); set before ingest starts. */
void ingest_budget_set(size_t bytes);
size_t ingest_budget_limit(void);
size_t ingest_budget_used(void);
/* Takes that were refused since the start. */
uint64_t ingest_budget_refused(void);
/* Take n bytes into g; false, nothing taken (a refusal counted), when the
 * budget would run over. */
bool ingest_budget_take(ingest_grant *g, size_t n);
/* pprof_gunzip within the budget: the inflated bytes are taken into *g
 * (zero-initialized; the caller releases it with the buffer); FIRN_EBUSY
 * when the budget cannot hold them, else pprof_gunzip's errors (FIRN_ETOOBIG
 * past max_out). */
int ingest_gunzip(const void *data, size_t len, size_t max_out, unsigned char **out,
                  size_t *out_len, ingest_grant *g, firn_err *err);
/* Give back what g holds past n bytes. */
void ingest_grant_keep(ingest_grant *g, size_t n);
/* Give back all g holds; g may be NULL or empty. */
void ingest_grant_release(ingest_grant *g);

/* Frees what a result holds (the profile, the columns); r may be zeroed. */
void ingest_result_free(ingest_result *r);

/* Steps 1 to 5 above, the decoding's grant released before it returns. */
int ingest_pprof(tsdb *db, const firn_label *labels, size_t n_labels, const void *data,
                 size_t len, const ingest_options *o, ingest_result *r, firn_err *err);
/* Steps 1 alone: the profile, or NULL with FIRN_EINVAL or FIRN_ETOOBIG, or
 * FIRN_EBUSY when the budget cannot hold its decoding.  The memory is
 * taken into *g (zero-initialized by the caller, who releases it once the
 * profile is stored or freed; on failure nothing is left in it). */
pprof_profile *ingest_decode(const void *data, size_t len, ingest_grant *g, firn_err *err);
/* Steps 2 to 5 on a profile already decoded or converted; p is taken (and
 * changed: columns dropped, deltas applied). */
int ingest_profile(tsdb *db, const firn_label *labels, size_t n_labels, pprof_profile *p,
                   const ingest_options *o, ingest_result *r, firn_err *err);

/* ---- asynchronous ingest -----------------------------------------------------
 *
 * The same steps, but the caller does not wait for the store's commit: it
 * hands the profile over and goes on, so that many profiles share one
 * commit (the writer commits every append queued together; see
 * tsdb_append_async).  Steps 1 to 4 run on the caller's thread: a refusal
 * there, or a baseline, is returned at once as by ingest_pprof.  Otherwise
 * the call returns INGEST_QUEUED (memory: the decoded profile and its
 * grant stay held, within the ingest budget and the store's queue limits,
 * which hold the caller back when full) and done is called exactly once,
 * on the store's writer thread, once the commit holding the profile is
 * durable or failed.  done must be quick and must not call the store: it
 * hands pd to a thread of the caller's, which calls ingest_pending_finish. */
#define INGEST_QUEUED 1
typedef struct ingest_pending ingest_pending;
typedef void (*ingest_done_fn)(void *ctx, ingest_pending *pd);
/* decode (step 1), then ingest_profile_async */
int ingest_pprof_async(tsdb *db, const firn_label *labels, size_t n_labels, const void *data,
                       size_t len, const ingest_options *o, ingest_result *r, ingest_done_fn done,
                       void *ctx, firn_err *err);
/* p and the grant that holds it (*g, left empty) are taken. */
int ingest_profile_async(tsdb *db, const firn_label *labels, size_t n_labels, pprof_profile *p,
                         ingest_grant *g, const ingest_options *o, ingest_result *r,
                         ingest_done_fn done, void *ctx, firn_err *err);
/* What ingest_pprof would have returned: 0 (stored; the forwarder, if any,
 * has been given the profile) or the store's error ("storing the profile:
 * ...", r->failed INGEST_FAILED_STORE); r (may be NULL) is the result,
 * with the profile as keep_profile says.  Frees pd and releases its grant. */
int ingest_pending_finish(ingest_pending *pd, ingest_result *r, firn_err *err);

/* ---- forwarding ------------------------------------------------------------ */

/* A profile just made durable in the store, as a forwarder
 * (profile_remote_write) sees it.  Everything is only valid during the
 * call. */
typedef struct ingest_stored {
    const firn_label *labels;     /* the target labels, sorted, without __name__ */
    size_t n_labels;
    const char *profile_name;
    const pprof_profile *profile; /* as stored: columns kept, deltas applied */
    const bool *delta_columns;    /* one per sample type */
    int64_t timestamp_ms;         /* where it was stored */
} ingest_stored;

/* Called by ingest_profile on its caller's thread after every profile it
 * stored (not for a baseline, a refusal, or a duplicate the store already
 * held), before it returns: so whatever the callee makes durable is so
 * before the push is answered.  Set once before the first ingest and
 * cleared (NULL) after the last; not synchronized with ingest itself. */
typedef void (*ingest_forward_fn)(void *ctx, const ingest_stored *s);
void ingest_forward_set(ingest_forward_fn fn, void *ctx);

/* Pushed labels: at most INGEST_MAX_LABELS, no __name__ (the profile type
 * is the store's to derive), then firn_labels_normalize (sorted, valid, no
 * duplicates).  FIRN_EINVAL. */
#define INGEST_MAX_LABELS 64
int ingest_labels_check(firn_label *labels, size_t *n_labels, firn_err *err);

/* The pairs of "k=v, k2 = v2" in [p, end), split on ',' and trimmed, copied
 * into a; empty items are skipped.  FIRN_EINVAL, naming what the list is,
 * for an item without '='. */
int ingest_kv_list_parse(firn_arena *a, const char *what, const char *p, const char *end,
                         firn_label **pairs, size_t *n_pairs, firn_err *err);

/* ---- Pyroscope's conventions (pyroscope.c) ------------------------------- */

/* Pyroscope's "name" parameter, app.name{k=v,k2=v2}: the application name
 * before the braces (Pyroscope's rule: [A-Za-z0-9_.\-/]+, trimmed) and the
 * labels in them (names with '.' turned into '_', then checked as
 * Prometheus names; values trimmed; no __name__), into a.  FIRN_EINVAL
 * saying what is wrong. */
int ingest_pyroscope_name_parse(const char *s, firn_arena *a, const char **app,
                                firn_label **labels, size_t *n_labels, firn_err *err);

/* The profile name Pyroscope gives a pprof upload by its sample types
 * (display names from sample_type_config when config is not NULL): "wall"
 * when one is wall; else by the first that matches: process_cpu (contains
 * cpu; "samples" is cpu), memory (alloc_*, inuse_*, space, objects), mutex
 * (mutex_*), block (block_*), goroutines; else the last one's name, or NULL
 * when fallback is false. */
const char *ingest_pyroscope_profile_name(const pprof_profile *p, json_t *config,
                                          bool fallback);

/* Pyroscope's attime for Unix times: seconds, or milliseconds,
 * microseconds, nanoseconds by their number of digits (13, 16, 19), as ms.
 * FIRN_EINVAL naming param. */
int ingest_pyroscope_time(const char *param, const char *s, int64_t *ms, firn_err *err);
/* sampleRate: a rate in Hz, 0 to 1000000000.  FIRN_EINVAL. */
int ingest_pyroscope_sample_rate(const char *s, int64_t *hz, firn_err *err);

/* How collapsed stacks become a one-column profile. */
typedef struct ingest_folded_type {
    const char *sample_type, *sample_unit;
    const char *period_type, *period_unit;  /* "" when none */
    int64_t period;
    int64_t scale;   /* every value is multiplied by it (1, or a CPU period) */
    bool lines;      /* Pyroscope's "lines": one stack per line, each counted once */
} ingest_folded_type;

/* Most frames in one collapsed stack. */
#define INGEST_FOLDED_DEPTH_MAX 16384

/* Collapsed stacks ("root;child;leaf 12" per line, flamegraph.pl's and
 * Pyroscope's "folded" format) as a pprof profile with one sample per
 * distinct stack; blank lines and lines without a value are skipped, as
 * Pyroscope skips them.  FIRN_EINVAL naming the line of a bad value. */
pprof_profile *ingest_folded_parse(const char *body, size_t len, const ingest_folded_type *t,
                                   firn_err *err);

/* A Pyroscope folded upload's kind, from the application name's suffix
 * after its last '.' (none: cpu), as Pyroscope's convertMetadata: how to
 * parse the stacks (cpu and wall samples become nanoseconds at sample_rate
 * Hz when it is not 0), the profile name, whether the values are a
 * snapshot rather than counts over the interval, and the service name (the
 * application name without the suffix, in a).  FIRN_EINVAL for an unknown
 * suffix. */
int ingest_pyroscope_folded_kind(const char *app, bool lines, int64_t sample_rate, firn_arena *a,
                                 ingest_folded_type *t, const char **profile_name,
                                 bool *snapshot, const char **service, firn_err *err);

/* A Pyroscope pprof upload, decoded and stored as Pyroscope would: named by
 * its sample types (ingest_pyroscope_profile_name with config; FIRN_EINVAL
 * when there is none), its time from_ms when its time_nanos is 0 or in
 * 1970, the counting columns (and every column of process_cpu and wall)
 * deltas, over until_ms - from_ms when it has no duration.  Labels as for
 * ingest_profile. */
int ingest_pyroscope_pprof(tsdb *db, const firn_label *labels, size_t n_labels, const void *data,
                           size_t len, json_t *config, int64_t from_ms, int64_t until_ms,
                           ingest_result *r, firn_err *err);

#endif
