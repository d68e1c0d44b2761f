/* query_cmd.c -- `firnctl query ...`: the query language from the command
 * line, against a store opened read-only (so it runs beside a writing firn).
 *
 *  - parse EXPR prints the AST as the parser sees it (one node per line), or
 *    the parse error with its line and column;
 *  - eval and range print what firn's /api/v1/query and /api/v1/query_range
 *    answer, byte for byte (web/json.c writes both): Prometheus's JSON,
 *    timestamps as seconds with at most 3 decimals, values as Go's
 *    strconv.FormatFloat; errors as {"status":"error","errorType":...} on
 *    standard output with exit status 1;
 *  - profile prints a profile query as collapsed stacks (flamegraph.pl's
 *    input; two columns for a diff, as its difffolded input), as a flat/cum
 *    table like `go tool pprof -top`, as gzipped pprof, or as the flame
 *    graph JSON and SVG of /api/v1/profile (web/'s renderers, so the CLI
 *    and the API print the same).
 */
#include <assert.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "firnctl.h"
#include "promql-like/pql.h"
#include "promql-like/render.h"
#include "web/web.h"

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
          "          [--format collapsed|top|pprof|flamegraph|svg] [-o FILE]\n"
          "                                   the profiles at MS (or merged over [start, end]):\n"
          "                                   collapsed stacks \"a;b;c VALUE\" (default; with\n"
          "                                   --compare \"a;b;c BASE COMPARE\"), flat/cum per\n"
          "                                   function, gzipped pprof, or the flame graph as\n"
          "                                   /api/v1/profile's JSON or a standalone SVG\n"
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
    case F_TIME: return firnctl_parse_ms(f->name, v, &o->time);
    case F_START: return firnctl_parse_ms(f->name, v, &o->start);
    case F_END: return firnctl_parse_ms(f->name, v, &o->end);
    case F_STEP: return parse_step(v, &o->step_ms);
    case F_GROUP_BY: o->group_by[o->n_group_by++] = v; return 0;
    case F_FILTER: o->filter = v; return 0;
    case F_COMPARE: o->compare = v; return 0;
    case F_COMPARE_TIME: return firnctl_parse_ms(f->name, v, &o->compare_time);
    case F_COMPARE_START: return firnctl_parse_ms(f->name, v, &o->compare_start);
    case F_COMPARE_END: return firnctl_parse_ms(f->name, v, &o->compare_end);
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
    o->group_by = firn_xcalloc((size_t)argc + 1, sizeof *o->group_by);
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

static void put_json(FILE *f, json_t *j)
{
    json_dumpf(j, f, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
}

/* Prometheus's error envelope on standard output; returns the exit status. */
static int json_error(const char *type, const char *msg)
{
    json_t *j = json_pack("{s:s, s:s, s:s}", "status", "error", "errorType", type, "error", msg);
    put_json(stdout, j);
    putchar('\n');
    return 1;
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
        o->time = firn_now_ms();
    }
    firn_err err = {0};
    pql_query q;
    if (pql_parse(o->expr, &q, &err) < 0)
        return json_error("bad_data", err.msg);
    if (range && web_query_range_check(o->start, o->end, o->step_ms, &err) < 0) {
        pql_query_free(&q);
        return json_error("bad_data", err.msg);
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
    firn_buf b = {0};
    firn_buf_puts(&b, "{\"status\":\"success\",\"data\":");
    web_json_pql_result(&b, &res);
    firn_buf_puts(&b, "}\n");
    pql_result_free(&res);
    size_t len;
    char *out = firn_buf_take(&b, &len);   /* no cap: the result is in memory already */
    size_t written = fwrite(out, 1, len, stdout);
    free(out);
    if (written != len || fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "firnctl: writing standard output failed\n");
        return 1;
    }
    return 0;
}

/* ---- profile queries -------------------------------------------------------- */

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
        strcmp(format, "pprof") != 0 && strcmp(format, "flamegraph") != 0 &&
        strcmp(format, "svg") != 0) {
        fprintf(stderr, "firnctl: --format \"%s\": want collapsed, top, pprof, flamegraph or "
                        "svg\n", format);
        return -1;
    }
    bool tree = strcmp(format, "top") != 0 && strcmp(format, "pprof") != 0;
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
    if (o->compare && !tree) {
        fprintf(stderr, "firnctl: --compare needs --format collapsed, flamegraph or svg (a "
                        "diff has two values per stack)\n");
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
        .max_nodes = tree ? o->max_nodes : 0,
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
    firn_buf b = {0};
    int rc;
    if (strcmp(o->format, "top") == 0) {
        pprof_profile *p = pql_profile_pprof(r, req, &err);
        rc = p ? pql_render_top_text(&b, p, o->max_nodes, &err) : -1;
        pprof_free(p);
    } else {
        pql_tree t;
        if ((rc = pql_profile_tree(r, req, &t, &err)) == 0) {
            if (strcmp(o->format, "collapsed") == 0) {
                rc = pql_render_collapsed(&b, &t);
            } else if (strcmp(o->format, "svg") == 0) {
                pql_svg_options so = {.request = req};
                rc = pql_render_svg(&b, &t, &so);
            } else {   /* what /api/v1/profile answers */
                firn_buf_puts(&b, "{\"status\":\"success\",\"data\":");
                rc = pql_render_flamegraph(&b, &t);
                firn_buf_puts(&b, "}\n");
            }
            pql_tree_free(&t);
        }
    }
    if (rc < 0) {
        /* b has no cap: only the query itself fails, and it says why */
        assert(err.code && err.msg[0]);
        fprintf(stderr, "firnctl: %s\n", err.msg);
        firn_buf_free(&b);
        return 1;
    }
    *out = firn_buf_take(&b, len);
    return 0;
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
