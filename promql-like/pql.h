/* pql.h -- firn's query language: a PromQL subset whose metric names are
 * profile types, plus profile queries (what a flame graph shows).
 *
 * Owns: parsing query text into an AST (pql_parse), evaluating metric
 * expressions against a tsdb reader (pql_eval_instant / pql_eval_range),
 * and profile queries (pql_profile_query: merge, single, diff, group-by,
 * stack filter, node limit) into a stack tree.
 *
 * The language (see README "Query language"):
 *  - selectors as PromQL: name{l="v", l!="v", l=~"re", l!~"re"}, a bare name,
 *    or {__name__="..."}; strings "..." '...' `raw` with Go escapes; regexes
 *    anchored with "." matching newline; at least one matcher that does not
 *    match "";
 *  - the reserved pseudo-label __function__ in a selector is a stack filter,
 *    not a series matcher: {__function__=~"re"} keeps the samples whose
 *    stack has a frame whose function name matches re; != and !~ keep the
 *    stacks with no such frame;
 *  - numbers, durations (5m, 1h30m), comments (# to end of line), offset;
 *  - sum avg min max count topk bottomk with by (...) / without (...);
 *  - rate increase sum_over_time avg_over_time max_over_time min_over_time
 *    count_over_time over [range]; vector(scalar) (one sample without
 *    labels) and time() (the evaluation time in seconds), as Prometheus;
 *  - + - * / and > < >= <= == != (with bool) between scalars and vectors,
 *    vector-vector one-to-one on all labels but __name__, or on (...) /
 *    ignoring (...); unary minus; parentheses.
 *
 * Threads: an AST is immutable after parsing and may be evaluated from many
 * threads at once, each with its own tsdb reader.
 * Memory: pql_parse returns an AST owned by its own arena (pql_query_free);
 * results are freed with their *_free functions.
 */
#ifndef FIRN_PQL_H
#define FIRN_PQL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "tsdb/tsdb.h"

#define PQL_FUNCTION_LABEL "__function__"
#define PQL_QUERY_MAX 65536          /* bytes of query text */
#define PQL_DEPTH_MAX 200            /* nesting of the AST */
#define PQL_DEFAULT_LOOKBACK_MS (5 * 60 * 1000)

/* ---- the AST ---------------------------------------------------------------- */

typedef enum pql_kind {
    PQL_NUMBER,          /* number */
    PQL_STRING,          /* string */
    PQL_VECTOR_SELECTOR, /* sel */
    PQL_MATRIX_SELECTOR, /* sel, with range_ms > 0 */
    PQL_AGGREGATE,       /* agg */
    PQL_CALL,            /* call */
    PQL_BINARY,          /* bin */
    PQL_UNARY_MINUS,     /* unary.expr */
    PQL_PAREN,           /* unary.expr */
} pql_kind;

typedef enum pql_value_type {
    PQL_TYPE_SCALAR,
    PQL_TYPE_VECTOR,
    PQL_TYPE_MATRIX,
    PQL_TYPE_STRING,
} pql_value_type;

typedef enum pql_agg_op {
    PQL_AGG_SUM, PQL_AGG_AVG, PQL_AGG_MIN, PQL_AGG_MAX, PQL_AGG_COUNT,
    PQL_AGG_TOPK, PQL_AGG_BOTTOMK,
} pql_agg_op;

typedef enum pql_func {
    PQL_FN_RATE, PQL_FN_INCREASE, PQL_FN_SUM_OVER_TIME, PQL_FN_AVG_OVER_TIME,
    PQL_FN_MAX_OVER_TIME, PQL_FN_MIN_OVER_TIME, PQL_FN_COUNT_OVER_TIME,
    PQL_FN_VECTOR, PQL_FN_TIME,
} pql_func;

typedef enum pql_binop {
    PQL_OP_ADD, PQL_OP_SUB, PQL_OP_MUL, PQL_OP_DIV,
    PQL_OP_EQ, PQL_OP_NE, PQL_OP_GT, PQL_OP_LT, PQL_OP_GE, PQL_OP_LE,
} pql_binop;

typedef struct pql_expr pql_expr;

struct pql_expr {
    pql_kind kind;
    int line, col;                   /* 1-based position of the node's first token */
    union {
        double number;
        const char *string;
        struct {
            const char *name;        /* the metric name as written, or NULL */
            firn_matcher *matchers;  /* series matchers, __name__ included */
            size_t n_matchers;
            firn_matcher *filters;   /* __function__ matchers (stack filter) */
            size_t n_filters;
            int64_t offset_ms;
            int64_t range_ms;        /* PQL_MATRIX_SELECTOR only */
        } sel;
        struct {
            pql_agg_op op;
            pql_expr *param;         /* k of topk/bottomk, else NULL */
            pql_expr *expr;
            const char **labels;     /* by (...) / without (...) */
            size_t n_labels;
            bool without;
        } agg;
        struct {
            pql_func fn;
            pql_expr **args;
            size_t n_args;
        } call;
        struct {
            pql_binop op;
            pql_expr *lhs, *rhs;
            bool return_bool;        /* comparison with "bool" */
            bool on, ignoring;       /* vector matching modifiers */
            const char **labels;     /* their label list */
            size_t n_labels;
        } bin;
        struct {
            pql_expr *expr;
        } unary;
    };
};

/* A parsed query: the root and the arena owning every node and string.
 * Matchers are destroyed by pql_query_free. */
typedef struct pql_query {
    pql_expr *root;
    pql_value_type type;             /* of the root */
    firn_arena *arena;
} pql_query;

/* Parses text (at most PQL_QUERY_MAX bytes).  Errors name the position and
 * what was expected, e.g. `1:17: unexpected "}", expected label matcher`;
 * type errors too (`1:6: expected type range vector in call to function
 * "rate", got instant vector`). */
int pql_parse(const char *text, pql_query *out, firn_err *err);
void pql_query_free(pql_query *q);

/* The AST as indented text, one node per line (firnctl query parse). */
char *pql_format_ast(const pql_query *q);
/* Operator and name spellings. */
const char *pql_agg_name(pql_agg_op op);
const char *pql_func_name(pql_func fn);
const char *pql_binop_name(pql_binop op);
const char *pql_type_name(pql_value_type t);

/* ---- metric expressions --------------------------------------------------- */

typedef struct pql_point {
    int64_t t_ms;
    double v;
} pql_point;

typedef struct pql_series {
    firn_label *labels;              /* sorted */
    size_t n_labels;
    pql_point *points;               /* one for an instant vector */
    size_t n_points;
} pql_series;

/* The value of an expression: a scalar or string (one point / the string),
 * an instant vector or a matrix (series).  Owned by its arena. */
typedef struct pql_result {
    pql_value_type type;
    double scalar;
    int64_t t_ms;                    /* of a scalar or string */
    const char *string;
    pql_series *series;
    size_t n_series;
    firn_arena *arena;
} pql_result;

void pql_result_free(pql_result *r);

typedef struct pql_eval_options {
    int64_t lookback_ms;             /* 0: 5 minutes, as Prometheus */
    size_t max_samples;              /* cap on the points the query holds: loaded and
                                        in its result (0: PQL_MAX_SAMPLES_DEFAULT) */
} pql_eval_options;

/* The expression at one time (Prometheus /api/v1/query).  A profile series'
 * value at t is the total of its latest profile in (t - lookback, t]; with
 * a stack filter, the total of the samples the filter keeps.
 * rate/increase on a delta profile type sum the profiles in the range
 * (increase) and divide by the range in seconds (rate); on other types they
 * follow Prometheus's counter rules.  Errors: FIRN_EINVAL (bad input),
 * FIRN_ETOOBIG (max_samples, with the message PQL_TOO_MANY_SAMPLES). */
int pql_eval_instant(tsdb_reader *r, const pql_query *q, int64_t t_ms,
                     const pql_eval_options *opts, pql_result *out, firn_err *err);

/* The expression at start, start + step, ... <= end (Prometheus
 * /api/v1/query_range): a matrix (scalars become one series without
 * labels).  step_ms > 0. */
int pql_eval_range(tsdb_reader *r, const pql_query *q, int64_t start_ms, int64_t end_ms,
                   int64_t step_ms, const pql_eval_options *opts, pql_result *out,
                   firn_err *err);

/* ---- profile queries ------------------------------------------------------- */

/* A node of a stack tree (flame graph): one frame (function) reached by one
 * path from the root.  Values of a diff carry both sides. */
typedef struct pql_node {
    uint32_t function;               /* index into pql_tree.functions; UINT32_MAX for
                                        the root and for "other" */
    const char *name;                /* function name, "total" for the root, "other" */
    int64_t self, cum;               /* base (or only) values */
    int64_t compare_self, compare_cum; /* diff only */
    struct pql_node *children;       /* sorted by cum, descending */
    size_t n_children;
} pql_node;

typedef struct pql_function_info {
    const char *name;
    const char *system_name;
    const char *filename;
    int64_t start_line;
    const char *mapping;             /* the mapping's file name, or "" */
} pql_function_info;

typedef struct pql_tree {
    pql_node root;                   /* name "total" */
    pql_function_info *functions;
    size_t n_functions;
    bool diff;
    const char *profile_type;        /* __name__ of the merged series */
    const char *sample_type, *sample_unit;
    int64_t total, compare_total;
    firn_arena *arena;
} pql_tree;

typedef enum pql_profile_mode {
    PQL_PROFILE_MERGE,               /* every profile in [start, end] */
    PQL_PROFILE_SINGLE,              /* the profiles at exactly time */
} pql_profile_mode;

typedef struct pql_profile_request {
    const char *query;               /* a selector (with an optional __function__ filter) */
    pql_profile_mode mode;
    int64_t start_ms, end_ms;        /* MERGE */
    int64_t time_ms;                 /* SINGLE */
    /* diff: a second side; compare_query NULL for none */
    const char *compare_query;
    pql_profile_mode compare_mode;
    int64_t compare_start_ms, compare_end_ms, compare_time_ms;
    const char **group_by;           /* pprof sample label keys: one subtree per value set */
    size_t n_group_by;
    const char *filter;              /* function-name regex: keep stacks with a matching frame */
    size_t max_nodes;                /* 0: no limit; else keep the top-N nodes by cum */
    size_t max_samples;              /* cap on the samples the query holds: stack values
                                        read (both sides) and the tree's nodes
                                        (0: PQL_MAX_SAMPLES_DEFAULT); FIRN_ETOOBIG with
                                        PQL_TOO_MANY_SAMPLES past it */
    bool raw;                        /* merge raw profiles only, not the store's rollups:
                                        the same result, slower (a benchmark's anchor) */
} pql_profile_request;

/* The merged profile of a request's first side as pprof (for format=pprof
 * and for callers that build their own reports): stacks filtered, sample
 * labels kept only for group_by keys. */
pprof_profile *pql_profile_pprof(tsdb_reader *r, const pql_profile_request *req, firn_err *err);

/* The stack tree of a request (both sides for a diff).  The selector must
 * match series of one profile type (else FIRN_EINVAL naming the types).  With group_by, the
 * root's children are one node per label value set, named
 * "key=value, key2=value2", above the stacks. */
int pql_profile_tree(tsdb_reader *r, const pql_profile_request *req, pql_tree *out,
                     firn_err *err);
void pql_tree_free(pql_tree *t);

/* ---- query limits (limits.c) ------------------------------------------------
 *
 * --query.max-samples and --query.max-concurrency, shared by every path that
 * evaluates a query (the Prometheus API, the profile API, Pyroscope's
 * Connect queries, rule evaluation).  A sample is one value the query holds
 * in memory: for a metric expression a point loaded from the store or a
 * point of its result (as Prometheus counts them); for a profile query a
 * stack value read from the store (a raw profile's sample, a rollup's
 * entry; both sides of a diff) and a node of the stack tree it answers
 * with.  Past max_samples a query fails with FIRN_ETOOBIG and
 * PQL_TOO_MANY_SAMPLES (Prometheus's text; its API answers 422
 * "execution").  At most max_concurrency queries are evaluated at once;
 * more wait in pql_limits_enter, as Prometheus's do. */

#define PQL_MAX_SAMPLES_DEFAULT ((size_t)50 * 1000 * 1000)  /* Prometheus's default */
#define PQL_MAX_CONCURRENCY_DEFAULT 20                      /* Prometheus's default */
#define PQL_TOO_MANY_SAMPLES TSDB_TOO_MANY_SAMPLES

typedef struct pql_limits {
    size_t max_samples;
    size_t max_concurrency;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t running, waiting;         /* under mu */
    uint64_t waited_total, too_many_samples_total;  /* under mu */
    bool ready;                      /* mu and cv initialized */
} pql_limits;

typedef struct pql_limits_counts {
    size_t running, waiting;
    uint64_t waited_total, too_many_samples_total;
} pql_limits_counts;

/* 0 for either: Prometheus's default.  FIRN_ENOMEM when a lock cannot be made. */
int pql_limits_init(pql_limits *l, size_t max_samples, size_t max_concurrency, firn_err *err);
/* No query may be running or waiting. */
void pql_limits_destroy(pql_limits *l);
/* The max_samples to give a query (PQL_MAX_SAMPLES_DEFAULT for NULL). */
size_t pql_limits_samples(const pql_limits *l);
/* Takes a slot, waiting while max_concurrency queries run (true when it
 * waited); leave gives it back with the query's result code (FIRN_ETOOBIG
 * is counted).  NULL: no gate. */
bool pql_limits_enter(pql_limits *l);
void pql_limits_leave(pql_limits *l, int rc);
void pql_limits_stats(pql_limits *l, pql_limits_counts *out);
/* firn_engine_queries, _waiting, _concurrent_max, firn_engine_query_max_samples,
 * firn_engine_queries_waited_total, firn_engine_queries_too_many_samples_total. */
void pql_limits_metrics_write(pql_limits *l, firn_buf *b);

#endif
