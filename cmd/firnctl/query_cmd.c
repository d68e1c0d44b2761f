/* query_cmd.c -- `firnctl query ...`: the query language from the command
 * line, against a store opened read-only (so it runs beside a writing firn).
 *
 *  - parse EXPR prints the AST as the parser sees it (one node per line), or
 *    the parse error with its line and column;
 *  - eval and range print what Prometheus's /api/v1/query and
 *    /api/v1/query_range answer, byte for byte in shape: timestamps as
 *    seconds with at most 3 decimals, values as Go's strconv.FormatFloat(v,
 *    'f', -1, 64), errors as {"status":"error","errorType":...} on standard
 *    output with exit status 1;
 *  - profile prints a profile query as collapsed stacks (flamegraph.pl's
 *    input; two columns for a diff, as its difffolded input), as a flat/cum
 *    table like `go tool pprof -top`, or as gzipped pprof.
 */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "firnctl.h"
#include "promql-like/pql.h"

/* Prometheus's cap on a range query (web/api/v1: "exceeded maximum
 * resolution of 11,000 points per timeseries"). */
#define QUERY_RANGE_POINTS_MAX 11000

static void usage(FILE *f)
{
    fputs("usage: firnctl query <command> [flags] EXPR\n"
          "\n"
          "commands:\n"
          "  parse EXPR                       print the AST of a query, or its parse error\n"
          "  eval EXPR [--time MS]            instant query at MS (default now), as the JSON\n"
          "                                   of Prometheus's /api/v1/query\n"
          "  range EXPR --start MS --end MS --step STEP\n"
          "                                   range query, as the JSON of /api/v1/query_range;\n"
          "                                   STEP is a duration (15s, 1m) or milliseconds\n"
          "  profile SELECTOR (--time MS | --start MS --end MS) [--group-by KEY]...\n"
          "          [--filter REGEX] [--max-nodes N]\n"
          "          [--compare SELECTOR (--compare-time MS |\n"
          "                               --compare-start MS --compare-end MS)]\n"
          "          [--format collapsed|top|pprof] [-o FILE]\n"
          "                                   the profiles at MS (or merged over [start, end]):\n"
          "                                   collapsed stacks \"a;b;c VALUE\" (default; with\n"
          "                                   --compare \"a;b;c BASE COMPARE\"), flat/cum per\n"
          "                                   function, or gzipped pprof\n"
          "\n"
          "profile flags:\n"
          "  --group-by KEY                   one subtree per value of this pprof sample label\n"
          "  --filter REGEX                   keep the stacks with a function matching REGEX\n"
          "  --max-nodes N                    the N nodes of largest cum; the rest is \"other\"\n"
          "                                   (with --format top: the first N rows)\n"
          "\n"
          "flags for every command but parse:\n"
          "  --storage.tsdb.path DIR          the store (default ./data), opened read-only\n"
          "\n"
          "eval and range print errors as Prometheus does, {\"status\":\"error\", ...} on\n"
          "standard output, and exit 1.\n",
          f);
}

/* ---- flags ------------------------------------------------------------------ */

enum {
    F_PATH = 1u << 0,
    F_TIME = 1u << 1,
    F_START = 1u << 2,
    F_END = 1u << 3,
    F_STEP = 1u << 4,
    F_GROUP_BY = 1u << 5,
    F_FILTER = 1u << 6,
    F_MAX_NODES = 1u << 7,
    F_COMPARE = 1u << 8,
    F_COMPARE_TIME = 1u << 9,
    F_COMPARE_START = 1u << 10,
    F_COMPARE_END = 1u << 11,
    F_FORMAT = 1u << 12,
    F_OUTPUT = 1u << 13,
};

static const struct flag {
    const char *name;
    unsigned bit;
} flags[] = {
    {"--storage.tsdb.path", F_PATH}, {"--time", F_TIME},
    {"--start", F_START},            {"--end", F_END},
    {"--step", F_STEP},              {"--group-by", F_GROUP_BY},
    {"--filter", F_FILTER},          {"--max-nodes", F_MAX_NODES},
    {"--compare", F_COMPARE},        {"--compare-time", F_COMPARE_TIME},
    {"--compare-start", F_COMPARE_START}, {"--compare-end", F_COMPARE_END},
    {"--format", F_FORMAT},          {"-o", F_OUTPUT},
};

struct opts {
    const char *cmd;
    unsigned given;              /* F_* bits of the flags on the command line */
    const char *expr;
    const char *path;
    int64_t time, start, end, compare_time, compare_start, compare_end;
    int64_t step_ms;
    const char **group_by;
    size_t n_group_by;
    const char *filter, *compare, *format, *output;
    size_t max_nodes;
};

static int parse_ms(const char *flag, const char *s, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end) {
        fprintf(stderr, "firnctl: %s: \"%s\" is not a number of milliseconds\n", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* A step is milliseconds when it is a bare integer, else a duration. */
static int parse_step(const char *s, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s && !*end) {
        *out = v;
        return 0;
    }
    firn_err err = {0};
    if (firn_duration_parse(s, out, &err) < 0) {
        fprintf(stderr, "firnctl: --step: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int set_flag(struct opts *o, const struct flag *f, const char *v)
{
    switch (f->bit) {
    case F_PATH: o->path = v; return 0;
    case F_TIME: return parse_ms(f->name, v, &o->time);
    case F_START: return parse_ms(f->name, v, &o->start);
    case F_END: return parse_ms(f->name, v, &o->end);
    case F_STEP: return parse_step(v, &o->step_ms);
    case F_GROUP_BY: o->group_by[o->n_group_by++] = v; return 0;
    case F_FILTER: o->filter = v; return 0;
    case F_COMPARE: o->compare = v; return 0;
    case F_COMPARE_TIME: return parse_ms(f->name, v, &o->compare_time);
    case F_COMPARE_START: return parse_ms(f->name, v, &o->compare_start);
    case F_COMPARE_END: return parse_ms(f->name, v, &o->compare_end);
    case F_FORMAT: o->format = v; return 0;
    case F_OUTPUT: o->output = v; return 0;
    case F_MAX_NODES: {
        char *end;
        long long n = strtoll(v, &end, 10);
        if (!*v || *end || n < 0) {
            fprintf(stderr, "firnctl: --max-nodes: \"%s\" is not a non-negative integer\n", v);
            return -1;
        }
        o->max_nodes = (size_t)n;
        return 0;
    }
    }
    return -1;
}

/* Flags may come before or after EXPR; "--" ends them (for an expression
 * that starts with "--").  allowed: the F_* bits the command takes. */
static int parse_flags(int argc, char **argv, unsigned allowed, struct opts *o)
{
    o->path = "./data";
    o->group_by = calloc((size_t)argc + 1, sizeof *o->group_by);
    if (!o->group_by) {
        fprintf(stderr, "firnctl: out of memory\n");
        return -1;
    }
    bool flags_done = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!flags_done && strcmp(a, "--") == 0) {
            flags_done = true;
            continue;
        }
        if (flags_done || !(strncmp(a, "--", 2) == 0 || strcmp(a, "-o") == 0)) {
            if (o->expr) {
                fprintf(stderr, "firnctl: query %s: unexpected argument \"%s\" (quote the "
                                "expression as one argument)\n", o->cmd, a);
                return -1;
            }
            o->expr = a;
            continue;
        }
        const struct flag *f = NULL;
        for (size_t k = 0; k < sizeof flags / sizeof *flags && !f; k++)
            if (strcmp(a, flags[k].name) == 0)
                f = &flags[k];
        if (!f) {
            fprintf(stderr, "firnctl: query %s: unknown flag %s\n", o->cmd, a);
            return -1;
        }
        if (!(allowed & f->bit)) {
            fprintf(stderr, "firnctl: query %s does not take %s\n", o->cmd, a);
            return -1;
        }
        if (i + 1 == argc) {
            fprintf(stderr, "firnctl: %s needs a value\n", a);
            return -1;
        }
        if ((o->given & f->bit) && f->bit != F_GROUP_BY) {
            fprintf(stderr, "firnctl: %s given twice\n", a);
            return -1;
        }
        o->given |= f->bit;
        if (set_flag(o, f, argv[++i]) < 0)
            return -1;
    }
    if (!o->expr) {
        fprintf(stderr, "firnctl: query %s needs an expression\n", o->cmd);
        return -1;
    }
    return 0;
}

/* ---- the store ---------------------------------------------------------------- */

struct store {
    tsdb *db;
    tsdb_reader *r;
};

static int store_open(const char *path, struct store *s, firn_err *err)
{
    tsdb_options opt;
    tsdb_options_default(&opt);
    opt.path = path;
    opt.read_only = true;
    s->r = NULL;
    if (!(s->db = tsdb_open(&opt, err)))
        return err->code ? err->code : FIRN_EIO;
    if (!(s->r = tsdb_reader_open(s->db, err))) {
        tsdb_close(s->db);
        s->db = NULL;
        return err->code ? err->code : FIRN_EIO;
    }
    return 0;
}

static void store_close(struct store *s)
{
    tsdb_reader_close(s->r);
    tsdb_close(s->db);
}

/* ---- Prometheus JSON ---------------------------------------------------------- */

/* Seconds with the milliseconds as 3 decimals, none when whole, as
 * Prometheus's jsonutil.MarshalTimestamp writes them. */
static void put_timestamp(FILE *f, int64_t ms)
{
    uint64_t u = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    fprintf(f, "%s%" PRIu64, ms < 0 ? "-" : "", u / 1000);
    if (u % 1000)
        fprintf(f, ".%03" PRIu64, u % 1000);
}

/* v as Go's strconv.FormatFloat(v, 'f', -1, 64): the fewest digits that
 * read back as v, in positional notation; "NaN", "+Inf", "-Inf". */
static void format_value(double v, char *buf, size_t size)
{
    if (isnan(v)) {
        snprintf(buf, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    /* e is [-]d[.ddd]e(+|-)XX: collect the digits and the exponent */
    char digits[24];
    size_t n = 0;
    const char *p = e + (e[0] == '-');
    for (; *p && *p != 'e'; p++)
        if (*p != '.' && n < sizeof digits)
            digits[n++] = *p;
    int exp = *p == 'e' ? atoi(p + 1) : 0;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    long point = exp + 1L;   /* digits before the decimal point */
    size_t len = 0;
#define PUT(c) (len + 1 < size ? (void)(buf[len++] = (c)) : (void)0)
    if (e[0] == '-')
        PUT('-');
    if (point <= 0) {
        PUT('0');
        PUT('.');
        for (long i = point; i < 0; i++)
            PUT('0');
        for (size_t i = 0; i < n; i++)
            PUT(digits[i]);
    } else {
        for (long i = 0; i < point || i < (long)n; i++) {
            if (i == point)
                PUT('.');
            PUT(i < (long)n ? digits[i] : '0');
        }
    }
#undef PUT
    buf[len] = 0;
}

static void put_json(FILE *f, json_t *j)
{
    json_dumpf(j, f, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
}

static void put_string(FILE *f, const char *s)
{
    put_json(f, json_string(s ? s : ""));
}

/* [t,"v"] */
static void put_point(FILE *f, int64_t t_ms, double v)
{
    char buf[400];
    format_value(v, buf, sizeof buf);
    fputc('[', f);
    put_timestamp(f, t_ms);
    fprintf(f, ",\"%s\"]", buf);
}

static void put_metric(FILE *f, const pql_series *s)
{
    json_t *m = json_object();
    for (size_t i = 0; m && i < s->n_labels; i++)
        json_object_set_new(m, s->labels[i].name, json_string(s->labels[i].value));
    put_json(f, m);
}

/* The "data" of a success: {"resultType":...,"result":...}. */
static void put_result(FILE *f, const pql_result *r)
{
    fprintf(f, "{\"resultType\":\"%s\",\"result\":",
            r->type == PQL_TYPE_SCALAR   ? "scalar"
            : r->type == PQL_TYPE_STRING ? "string"
            : r->type == PQL_TYPE_VECTOR ? "vector"
                                         : "matrix");
    if (r->type == PQL_TYPE_SCALAR) {
        put_point(f, r->t_ms, r->scalar);
    } else if (r->type == PQL_TYPE_STRING) {
        fputc('[', f);
        put_timestamp(f, r->t_ms);
        fputc(',', f);
        put_string(f, r->string);
        fputc(']', f);
    } else {
        fputc('[', f);
        for (size_t i = 0; i < r->n_series; i++) {
            const pql_series *s = &r->series[i];
            fputs(i ? ",{\"metric\":" : "{\"metric\":", f);
            put_metric(f, s);
            if (r->type == PQL_TYPE_VECTOR && s->n_points == 1) {
                fputs(",\"value\":", f);
                put_point(f, s->points[0].t_ms, s->points[0].v);
            } else {
                fputs(",\"values\":[", f);
                for (size_t k = 0; k < s->n_points; k++) {
                    if (k)
                        fputc(',', f);
                    put_point(f, s->points[k].t_ms, s->points[k].v);
                }
                fputc(']', f);
            }
            fputc('}', f);
        }
        fputc(']', f);
    }
    fputc('}', f);
}

/* Prometheus's error envelope on standard output; returns the exit status. */
static int json_error(const char *type, const char *msg)
{
    json_t *j = json_pack("{s:s, s:s, s:s}", "status", "error", "errorType", type, "error", msg);
    put_json(stdout, j);
    putchar('\n');
    return 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* query eval / query range: Prometheus checks the request (bad_data), then
 * runs it (execution); a store that cannot be read is "unavailable". */
static int query_eval(struct opts *o, bool range)
{
    if (range) {
        unsigned need[] = {F_START, F_END, F_STEP};
        const char *names[] = {"--start", "--end", "--step"};
        for (size_t i = 0; i < 3; i++)
            if (!(o->given & need[i])) {
                fprintf(stderr, "firnctl: query range needs --start, --end and --step (%s "
                                "missing)\n", names[i]);
                return 2;
            }
    } else if (!(o->given & F_TIME)) {
        o->time = now_ms();
    }
    firn_err err = {0};
    pql_query q;
    if (pql_parse(o->expr, &q, &err) < 0)
        return json_error("bad_data", err.msg);
    if (range) {
        const char *bad = NULL;
        if (o->end < o->start)
            bad = "end timestamp must not be before start time";
        else if (o->step_ms <= 0)
            bad = "zero or negative query resolution step widths are not accepted. Try a "
                  "positive integer";
        else if ((o->end - o->start) / o->step_ms > QUERY_RANGE_POINTS_MAX)
            bad = "exceeded maximum resolution of 11,000 points per timeseries. Try "
                  "decreasing the query resolution (?step=XX)";
        if (bad) {
            pql_query_free(&q);
            return json_error("bad_data", bad);
        }
    }
    struct store st;
    if (store_open(o->path, &st, &err) < 0) {
        pql_query_free(&q);
        return json_error("unavailable", err.msg);
    }
    pql_result res;
    int rc = range ? pql_eval_range(st.r, &q, o->start, o->end, o->step_ms, NULL, &res, &err)
                   : pql_eval_instant(st.r, &q, o->time, NULL, &res, &err);
    bool request_error = range && q.type != PQL_TYPE_SCALAR && q.type != PQL_TYPE_VECTOR;
    store_close(&st);
    pql_query_free(&q);
    if (rc < 0)
        return json_error(request_error ? "bad_data" : "execution", err.msg);
    fputs("{\"status\":\"success\",\"data\":", stdout);
    put_result(stdout, &res);
    fputs("}\n", stdout);
    pql_result_free(&res);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "firnctl: writing standard output failed\n");
        return 1;
    }
    return 0;
}

/* ---- profile queries -------------------------------------------------------- */

/* A function name as one collapsed-stack frame: ';' separates frames and a
 * line ends the stack, so neither may appear inside. */
static void put_frame(FILE *f, const char *name)
{
    for (const char *p = name; *p; p++)
        fputc(*p == ';' ? ':' : *p == '\n' || *p == '\r' ? ' ' : *p, f);
}

/* One line per node with a self value: its path from the root (the root
 * "total" left out) and the value, or both values for a diff.  Depth
 * first with an explicit stack: profiles may be deep. */
static int put_collapsed(FILE *f, const pql_tree *t)
{
    struct item {
        const pql_node *node;
        size_t depth;
    } *stack = NULL;
    const char **path = NULL;
    size_t n = 0, cap = 0, path_cap = 0;
    int rc = 0;
    for (size_t i = t->root.n_children; i-- > 0;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            struct item *ns = realloc(stack, cap * sizeof *ns);
            if (!ns)
                goto oom;
            stack = ns;
        }
        stack[n++] = (struct item){&t->root.children[i], 0};
    }
    while (n) {
        struct item it = stack[--n];
        if (it.depth >= path_cap) {
            path_cap = path_cap ? path_cap * 2 : 64;
            const char **np = realloc(path, path_cap * sizeof *np);
            if (!np)
                goto oom;
            path = np;
        }
        path[it.depth] = it.node->name;
        if (it.node->self || (t->diff && it.node->compare_self)) {
            for (size_t d = 0; d <= it.depth; d++) {
                if (d)
                    fputc(';', f);
                put_frame(f, path[d]);
            }
            if (t->diff)
                fprintf(f, " %" PRId64 " %" PRId64 "\n", it.node->self, it.node->compare_self);
            else
                fprintf(f, " %" PRId64 "\n", it.node->self);
        }
        if (n + it.node->n_children > cap) {
            cap = (n + it.node->n_children) * 2;
            struct item *ns = realloc(stack, cap * sizeof *ns);
            if (!ns)
                goto oom;
            stack = ns;
        }
        for (size_t i = it.node->n_children; i-- > 0;)
            stack[n++] = (struct item){&it.node->children[i], it.depth + 1};
    }
    goto out;
oom:
    rc = -1;
    fprintf(stderr, "firnctl: out of memory\n");
out:
    free(stack);
    free(path);
    return rc;
}

static void put_percent(FILE *f, int64_t part, int64_t whole)
{
    fprintf(f, " %6.2f%%", whole ? 100.0 * (double)part / (double)whole : 0.0);
}

/* flat, flat%, sum%, cum, cum%, name: the columns of `go tool pprof -top`,
 * with raw values; max_rows 0 shows every function. */
static int put_top(FILE *f, const pprof_profile *p, size_t max_rows)
{
    pprof_top_report top;
    firn_err err = {0};
    if (pprof_top(p, 0, &top, &err) < 0) {
        fprintf(stderr, "firnctl: %s\n", err.msg);
        return -1;
    }
    size_t shown = max_rows && max_rows < top.n_rows ? max_rows : top.n_rows;
    int64_t shown_flat = 0;
    for (size_t i = 0; i < shown; i++)
        shown_flat = pprof_add_sat(shown_flat, top.rows[i].flat);
    if (p->n_sample_types)
        fprintf(f, "Type: %s (%s)\n", pprof_str(p, p->sample_types[0].type),
                pprof_str(p, p->sample_types[0].unit));
    fprintf(f, "Showing nodes accounting for %" PRId64 ",", shown_flat);
    put_percent(f, shown_flat, top.total);
    fprintf(f, " of %" PRId64 " total\n", top.total);
    if (shown < top.n_rows)
        fprintf(f, "Dropped %zu nodes\n", top.n_rows - shown);
    fprintf(f, "%12s %7s %7s %12s %7s\n", "flat", "flat%", "sum%", "cum", "cum%");
    int64_t sum = 0;
    for (size_t i = 0; i < shown; i++) {
        const pprof_top_row *row = &top.rows[i];
        sum = pprof_add_sat(sum, row->flat);
        fprintf(f, "%12" PRId64, row->flat);
        put_percent(f, row->flat, top.total);
        put_percent(f, sum, top.total);
        fprintf(f, " %12" PRId64, row->cum);
        put_percent(f, row->cum, top.total);
        fprintf(f, "  %s\n", row->name);
    }
    pprof_top_free(&top);
    return 0;
}

/* Whether given holds the single flag, or every flag of the pair, but not
 * both kinds. */
static bool one_of(unsigned given, unsigned single, unsigned pair)
{
    return (given & single) ? !(given & pair) : (given & pair) == pair;
}

/* Checks the flag combinations of query profile; fills the request. */
static int profile_request(struct opts *o, pql_profile_request *req)
{
    const char *format = o->format ? o->format : "collapsed";
    if (strcmp(format, "collapsed") != 0 && strcmp(format, "top") != 0 &&
        strcmp(format, "pprof") != 0) {
        fprintf(stderr, "firnctl: --format \"%s\": want collapsed, top or pprof\n", format);
        return -1;
    }
    o->format = format;
    bool time = o->given & F_TIME, ctime = o->given & F_COMPARE_TIME;
    if (!one_of(o->given, F_TIME, F_START | F_END)) {
        fprintf(stderr, "firnctl: query profile needs --time MS, or --start MS and --end MS\n");
        return -1;
    }
    if (!o->compare && (o->given & (F_COMPARE_TIME | F_COMPARE_START | F_COMPARE_END))) {
        fprintf(stderr, "firnctl: --compare-time, --compare-start and --compare-end go with "
                        "--compare SELECTOR\n");
        return -1;
    }
    if (o->compare && !one_of(o->given, F_COMPARE_TIME, F_COMPARE_START | F_COMPARE_END)) {
        fprintf(stderr, "firnctl: --compare needs --compare-time MS, or --compare-start MS and "
                        "--compare-end MS\n");
        return -1;
    }
    if (o->compare && strcmp(format, "collapsed") != 0) {
        fprintf(stderr, "firnctl: --compare needs --format collapsed (a diff has two values "
                        "per stack)\n");
        return -1;
    }
    if ((o->given & F_MAX_NODES) && strcmp(format, "pprof") == 0) {
        fprintf(stderr, "firnctl: --max-nodes does not apply to --format pprof\n");
        return -1;
    }
    *req = (pql_profile_request){
        .query = o->expr,
        .mode = time ? PQL_PROFILE_SINGLE : PQL_PROFILE_MERGE,
        .start_ms = o->start,
        .end_ms = o->end,
        .time_ms = o->time,
        .compare_query = o->compare,
        .compare_mode = ctime ? PQL_PROFILE_SINGLE : PQL_PROFILE_MERGE,
        .compare_start_ms = o->compare_start,
        .compare_end_ms = o->compare_end,
        .compare_time_ms = o->compare_time,
        .group_by = o->group_by,
        .n_group_by = o->n_group_by,
        .filter = o->filter,
        /* the tree's node limit; for top it limits the rows instead */
        .max_nodes = strcmp(format, "collapsed") == 0 ? o->max_nodes : 0,
    };
    return 0;
}

/* Runs the request into a text or binary buffer (out, len). */
static int profile_render(struct opts *o, tsdb_reader *r, const pql_profile_request *req,
                          char **out, size_t *len)
{
    firn_err err = {0};
    if (strcmp(o->format, "pprof") == 0) {
        pprof_profile *p = pql_profile_pprof(r, req, &err);
        if (!p || pprof_encode(p, -1, (unsigned char **)out, len, &err) < 0) {
            fprintf(stderr, "firnctl: %s\n", err.msg);
            pprof_free(p);
            return 1;
        }
        pprof_free(p);
        return 0;
    }
    FILE *f = open_memstream(out, len);
    if (!f) {
        fprintf(stderr, "firnctl: out of memory\n");
        return 1;
    }
    int rc = 0;
    if (strcmp(o->format, "top") == 0) {
        pprof_profile *p = pql_profile_pprof(r, req, &err);
        if (!p) {
            fprintf(stderr, "firnctl: %s\n", err.msg);
            rc = 1;
        } else {
            rc = put_top(f, p, o->max_nodes) < 0;
            pprof_free(p);
        }
    } else {
        pql_tree t;
        if (pql_profile_tree(r, req, &t, &err) < 0) {
            fprintf(stderr, "firnctl: %s\n", err.msg);
            rc = 1;
        } else {
            rc = put_collapsed(f, &t) < 0;
            pql_tree_free(&t);
        }
    }
    if (fclose(f) != 0 && !rc) {
        fprintf(stderr, "firnctl: out of memory\n");
        rc = 1;
    }
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

static int query_profile(struct opts *o)
{
    pql_profile_request req;
    if (profile_request(o, &req) < 0)
        return 2;
    struct store st;
    firn_err err = {0};
    if (store_open(o->path, &st, &err) < 0) {
        fprintf(stderr, "firnctl: %s\n", err.msg);
        return 1;
    }
    char *out = NULL;
    size_t len = 0;
    int rc = profile_render(o, st.r, &req, &out, &len);
    store_close(&st);
    if (rc)
        return rc;
    if (o->output) {
        if (firn_write_file_atomic(o->output, out, len, &err) < 0) {
            fprintf(stderr, "firnctl: %s\n", err.msg);
            rc = 1;
        }
    } else if (fwrite(out, 1, len, stdout) != len || fflush(stdout) != 0) {
        fprintf(stderr, "firnctl: writing standard output failed\n");
        rc = 1;
    }
    free(out);
    return rc;
}

/* ---- parse ------------------------------------------------------------------ */

static int query_parse(const char *text)
{
    pql_query q;
    firn_err err = {0};
    if (pql_parse(text, &q, &err) < 0) {
        fprintf(stderr, "firnctl: %s\n", err.msg);
        return 1;
    }
    char *ast = pql_format_ast(&q);
    pql_query_free(&q);
    if (!ast) {
        fprintf(stderr, "firnctl: out of memory\n");
        return 1;
    }
    fputs(ast, stdout);
    free(ast);
    return 0;
}

int cmd_query(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    const char *cmd = argv[0];
    if (strcmp(cmd, "parse") == 0) {
        if (argc != 2) {
            fprintf(stderr, "usage: firnctl query parse EXPR\n");
            return 2;
        }
        return query_parse(argv[1]);
    }
    unsigned allowed;
    if (strcmp(cmd, "eval") == 0)
        allowed = F_PATH | F_TIME;
    else if (strcmp(cmd, "range") == 0)
        allowed = F_PATH | F_START | F_END | F_STEP;
    else if (strcmp(cmd, "profile") == 0)
        allowed = ~0u & ~F_STEP;
    else {
        fprintf(stderr, "firnctl: unknown query command \"%s\"\n\n", cmd);
        usage(stderr);
        return 2;
    }
    struct opts o = {.cmd = cmd};
    int rc;
    if (parse_flags(argc - 1, argv + 1, allowed, &o) < 0)
        rc = 2;
    else if (strcmp(cmd, "profile") == 0)
        rc = query_profile(&o);
    else
        rc = query_eval(&o, strcmp(cmd, "range") == 0);
    free(o.group_by);
    return rc;
}
