/* internal.h -- what pyroscope/'s files share: the call every RPC gets, the
 * JSON codec, the label view of firn's series, and flame graph building.
 */
#ifndef FIRN_PYROSCOPE_INTERNAL_H
#define FIRN_PYROSCOPE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "pprof/pprof.h"
#include "promql-like/pql.h"
#include "push/v1/push.pb-c.h"
#include "pyroscope/pyroscope.h"
#include "querier/v1/querier.pb-c.h"
#include "settings/v1/setting.pb-c.h"
#include "types/v1/types.pb-c.h"

/* Most bytes a gzipped request body may inflate to (as /ingest's cap). */
#define PYROSCOPE_GUNZIP_MAX (128u << 20)
/* Responses at least this big are gzipped when the client takes gzip. */
#define PYROSCOPE_GZIP_MIN 1024
/* max_nodes: Pyroscope's default and its cap (-querier.max-flamegraph-nodes-*). */
#define PYROSCOPE_MAX_NODES_DEFAULT 8192
#define PYROSCOPE_MAX_NODES_MAX (1 << 20)

/* Connect's error codes (connectrpc.com/docs/protocol#error-codes). */
typedef enum pyroscope_code {
    PYRO_CANCELED = 1, PYRO_UNKNOWN, PYRO_INVALID_ARGUMENT, PYRO_DEADLINE_EXCEEDED,
    PYRO_NOT_FOUND, PYRO_ALREADY_EXISTS, PYRO_PERMISSION_DENIED, PYRO_RESOURCE_EXHAUSTED,
    PYRO_FAILED_PRECONDITION, PYRO_ABORTED, PYRO_OUT_OF_RANGE, PYRO_UNIMPLEMENTED,
    PYRO_INTERNAL, PYRO_UNAVAILABLE, PYRO_DATA_LOSS, PYRO_UNAUTHENTICATED,
} pyroscope_code;

const char *pyroscope_code_name(pyroscope_code c);
int pyroscope_code_http_status(pyroscope_code c);
/* The Connect code for a firn error code. */
pyroscope_code pyroscope_code_of(int firn_code);

/* One RPC in progress: everything it allocates lives in arena (alloc
 * allocates there too, for protobuf-c), freed when the answer is sent. */
typedef struct pyroscope_call {
    pyroscope_api *api;
    firn_arena *arena;
    ProtobufCAllocator alloc;
    /* An RPC answering with bytes already encoded (SelectMergeProfile's
     * pprof) sets these, malloc'd, instead of a message. */
    unsigned char *raw;
    size_t raw_len;
    const ProtobufCMessageDescriptor *raw_type;
    /* A query (pyroscope_query_enter) holds a slot of api->limits until
     * pyroscope_call_end, its answer encoded; samples_left is what its
     * merges may still read, query_rc FIRN_ETOOBIG once one went past it. */
    bool in_query;
    size_t samples_left;
    int query_rc;
} pyroscope_call;

/* Takes a slot of the api's query limits for the rest of the call (once;
 * waits while --query.max-concurrency queries run). */
void pyroscope_query_enter(pyroscope_call *c);

typedef int (*pyroscope_rpc_fn)(pyroscope_call *c, const ProtobufCMessage *in,
                                ProtobufCMessage **out, firn_err *err);

/* A message of type d, zeroed to its defaults, in the call's arena; never
 * NULL. */
void *pyroscope_new(pyroscope_call *c, const ProtobufCMessageDescriptor *d);

/* ---- protojson.c ------------------------------------------------------------ */

/* JSON text into a new message of type d allocated with alloc, which never
 * answers NULL (the call's arena); FIRN_EINVAL naming the field for a value
 * of the wrong kind. */
int pyroscope_json_decode(const ProtobufCMessageDescriptor *d, const char *text, size_t len,
                          ProtobufCAllocator *alloc, ProtobufCMessage **out, firn_err *err);
/* m as JSON appended to b. */
void pyroscope_json_encode(const ProtobufCMessage *m, firn_buf *b);

/* ---- view.c: firn's series as Pyroscope sees them ---------------------------- */

/* A selected series and its Pyroscope labels (sorted by name). */
typedef struct pyroscope_series {
    const tsdb_series *series;
    firn_label *labels;
    size_t n_labels;
    const char *profile_type;        /* the 5-field ID */
    bool delta;                      /* firn's type ends in :delta */
} pyroscope_series;

typedef struct pyroscope_selection {
    pyroscope_series *v;
    size_t n;
} pyroscope_selection;

/* The series holding a profile in [start_ms, end_ms] (0, 0: all time) that
 * match any of the selectors (none: every series), written in Pyroscope's
 * label model, and of profile type profile_type when it is not NULL or "".
 * When a type exists both as A and A:delta, only the :delta series are
 * kept.  Everything lives in the call's arena.  FIRN_EINVAL naming the
 * selector that does not parse. */
int pyroscope_select(pyroscope_call *c, tsdb_reader *r, char *const *selectors, size_t n_sel,
                     const char *profile_type, int64_t start_ms, int64_t end_ms,
                     pyroscope_selection *out, firn_err *err);
/* A label's value in a view, or NULL. */
const char *pyroscope_label(const pyroscope_series *s, const char *name);
/* A time range as Pyroscope sends it: FIRN_EINVAL when end is before
 * start; 0, 0 becomes all time. */
int pyroscope_range(int64_t *start_ms, int64_t *end_ms, firn_err *err);
/* The store's reader, or an error (unavailable without a store). */
tsdb_reader *pyroscope_reader(pyroscope_call *c, firn_err *err);

/* ---- flamegraph.c -------------------------------------------------------------- */

/* A function-name tree (Pyroscope merges stacks by function name only). */
typedef struct pyroscope_tree pyroscope_tree;

/* The merged profile of the selection in [start_ms, end_ms] (its first
 * sample type), or NULL: with err unset when nothing was selected, else
 * with the error. */
pprof_profile *pyroscope_merge(pyroscope_call *c, tsdb_reader *r, const pyroscope_selection *s,
                               int64_t start_ms, int64_t end_ms, firn_err *err);
/* Drops the samples whose root-first stack does not begin with call_site
 * (function names); n 0 keeps everything. */
void pyroscope_filter_call_site(pprof_profile *p, char *const *call_site, size_t n);
/* The call site of a StackTraceSelector (NULL: none) as names. */
size_t pyroscope_call_site(pyroscope_call *c, const Types__V1__StackTraceSelector *sel,
                           char ***names);
/* The tree grows with the profiles added to it, which are in memory
 * already (at most a node per frame of theirs): nothing here fails. */
pyroscope_tree *pyroscope_tree_new(void);
/* Adds p's first sample type to side 0 (the only side, or a diff's left)
 * or 1 (a diff's right). */
int pyroscope_tree_add(pyroscope_tree *t, const pprof_profile *p, int side, firn_err *err);
/* pyroscope_tree_add within the call's query (pyroscope_query_enter): its
 * new nodes are samples of --query.max-samples, taken from what the
 * query's merges left; past them FIRN_ETOOBIG with PQL_TOO_MANY_SAMPLES. */
int pyroscope_tree_add_query(pyroscope_call *c, pyroscope_tree *t, const pprof_profile *p,
                             int side, firn_err *err);
/* pyroscope_tree_new and pyroscope_tree_add_query on side 0. */
pyroscope_tree *pyroscope_tree_build(pyroscope_call *c, const pprof_profile *p, firn_err *err);
void pyroscope_tree_free(pyroscope_tree *t);
/* The FlameGraph message of a tree, at most max_nodes nodes (the rest in
 * "other" children), in the call's arena; NULL when the tree's total is 0
 * (nothing to show). */
Querier__V1__FlameGraph *pyroscope_flamegraph(pyroscope_call *c, const pyroscope_tree *t,
                                              int64_t max_nodes);
/* Both sides of a tree as a FlameGraphDiff (leftTicks, rightTicks, total
 * their sum). */
Querier__V1__FlameGraphDiff *pyroscope_flamegraph_diff(pyroscope_call *c,
                                                       const pyroscope_tree *t,
                                                       int64_t max_nodes);
/* max_nodes as a request gives it: absent or 0 the default, else checked. */
int pyroscope_max_nodes(bool given, int64_t v, int64_t *out, firn_err *err);

/* ---- render.c: Pyroscope's HTTP API the Drilldown still uses --------------- */

int pyroscope_render_register(http_server *s, pyroscope_api *api, firn_err *err);
/* The error answer of a Connect call, also for the HTTP routes. */
void pyroscope_respond_error(http_response *resp, pyroscope_code code, const char *msg);
/* A fresh call on api; pyroscope_call_end frees it. */
void pyroscope_call_begin(pyroscope_call *c, pyroscope_api *api);
void pyroscope_call_end(pyroscope_call *c);

/* ---- the RPCs ---------------------------------------------------------------------- */

int pyroscope_rpc_profile_types(pyroscope_call *, const ProtobufCMessage *, ProtobufCMessage **,
                                firn_err *);
int pyroscope_rpc_label_names(pyroscope_call *, const ProtobufCMessage *, ProtobufCMessage **,
                              firn_err *);
int pyroscope_rpc_label_values(pyroscope_call *, const ProtobufCMessage *, ProtobufCMessage **,
                               firn_err *);
int pyroscope_rpc_series(pyroscope_call *, const ProtobufCMessage *, ProtobufCMessage **,
                         firn_err *);
int pyroscope_rpc_profile_stats(pyroscope_call *, const ProtobufCMessage *, ProtobufCMessage **,
                                firn_err *);
int pyroscope_rpc_merge_stacktraces(pyroscope_call *, const ProtobufCMessage *,
                                    ProtobufCMessage **, firn_err *);
int pyroscope_rpc_merge_span_profile(pyroscope_call *, const ProtobufCMessage *,
                                     ProtobufCMessage **, firn_err *);
int pyroscope_rpc_merge_profile(pyroscope_call *, const ProtobufCMessage *, ProtobufCMessage **,
                                firn_err *);
int pyroscope_rpc_diff(pyroscope_call *, const ProtobufCMessage *, ProtobufCMessage **,
                       firn_err *);
/* Diff's work, for /pyroscope/render-diff too. */
int pyroscope_diff(pyroscope_call *c, const Querier__V1__DiffRequest *req,
                   Querier__V1__FlameGraphDiff **fg, firn_err *err);
int pyroscope_rpc_select_series(pyroscope_call *, const ProtobufCMessage *, ProtobufCMessage **,
                                firn_err *);
int pyroscope_rpc_push(pyroscope_call *, const ProtobufCMessage *, ProtobufCMessage **,
                       firn_err *);
int pyroscope_rpc_settings_get(pyroscope_call *, const ProtobufCMessage *, ProtobufCMessage **,
                               firn_err *);
int pyroscope_rpc_settings_set(pyroscope_call *, const ProtobufCMessage *, ProtobufCMessage **,
                               firn_err *);
int pyroscope_rpc_settings_delete(pyroscope_call *, const ProtobufCMessage *,
                                  ProtobufCMessage **, firn_err *);

#endif
