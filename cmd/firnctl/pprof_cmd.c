/* pprof_cmd.c -- `firnctl pprof info|convert|top` and `firnctl bench decode|tsdb`. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "firnctl.h"
#include "pprof/pprof.h"
#include "test/bench/bench.h"

pprof_profile *firnctl_load_profile(const char *path, size_t *file_bytes, bool *gzipped)
{
    pprof_limits lim;
    pprof_limits_default(&lim);
    unsigned char *buf;
    size_t len;
    firn_err err = {0};
    if (firn_read_file(path, lim.max_input_bytes, &buf, &len, &err) < 0) {
        fprintf(stderr, "firnctl: %s\n", err.msg);
        return NULL;
    }
    if (file_bytes)
        *file_bytes = len;
    if (gzipped)
        *gzipped = pprof_is_gzip(buf, len);
    pprof_profile *p = pprof_decode(buf, len, &lim, &err);
    free(buf);
    if (!p)
        fprintf(stderr, "firnctl: %s: %s\n", path, err.msg);
    return p;
}

static json_t *value_type_json(const pprof_profile *p, pprof_value_type vt)
{
    return json_pack("{s:s, s:s}", "type", pprof_str(p, vt.type), "unit", pprof_str(p, vt.unit));
}

static void format_rfc3339(int64_t nanos, char *buf, size_t size)
{
    time_t secs = (time_t)(nanos / 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)((nanos % 1000000000) / 1000000));
}

static int pprof_info(const char *path)
{
    size_t bytes;
    bool gz;
    pprof_profile *p = firnctl_load_profile(path, &bytes, &gz);
    if (!p)
        return 1;
    int64_t *totals = firn_xcalloc(p->n_sample_types ? p->n_sample_types : 1, sizeof *totals);
    pprof_totals(p, totals);
    json_t *types = json_array();
    for (size_t i = 0; i < p->n_sample_types; i++) {
        json_t *t = value_type_json(p, p->sample_types[i]);
        json_object_set_new(t, "total", json_integer(totals[i]));
        json_array_append_new(types, t);
    }
    int def = pprof_default_sample_index(p);
    json_t *o = json_object();
    json_object_set_new(o, "file", json_string(path));
    json_object_set_new(o, "bytes", json_integer((json_int_t)bytes));
    json_object_set_new(o, "gzipped", json_boolean(gz));
    json_object_set_new(o, "sample_types", types);
    json_object_set_new(o, "default_sample_type",
                        def >= 0 ? json_string(pprof_str(p, p->sample_types[def].type)) : json_null());
    json_object_set_new(o, "period_type", value_type_json(p, p->period_type));
    json_object_set_new(o, "period", json_integer(p->period));
    json_object_set_new(o, "time_nanos", json_integer(p->time_nanos));
    if (p->time_nanos > 0) {
        char ts[64];
        format_rfc3339(p->time_nanos, ts, sizeof ts);
        json_object_set_new(o, "time", json_string(ts));
    } else {
        json_object_set_new(o, "time", json_null());
    }
    json_object_set_new(o, "duration_nanos", json_integer(p->duration_nanos));
    json_object_set_new(o, "counts",
                        json_pack("{s:I, s:I, s:I, s:I, s:I}", "samples", (json_int_t)p->n_samples,
                                  "locations", (json_int_t)p->n_locations, "functions",
                                  (json_int_t)p->n_functions, "mappings", (json_int_t)p->n_mappings,
                                  "strings", (json_int_t)p->n_strings));
    json_t *repairs = json_array();
    if (p->repairs & PPROF_REPAIR_MAPPING_IDS)
        json_array_append_new(repairs, json_string("mapping ids were all 0: numbered by position"));
    if (p->repairs & PPROF_REPAIR_LOCATION_IDS)
        json_array_append_new(repairs, json_string("location ids were all 0: numbered by position"));
    if (p->repairs & PPROF_REPAIR_FUNCTION_IDS)
        json_array_append_new(repairs, json_string("function ids were all 0: numbered by position"));
    json_object_set_new(o, "repairs", repairs);
    json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(o);
    free(totals);
    pprof_free(p);
    return 0;
}

static int pprof_convert(const char *in, const char *out)
{
    pprof_profile *p = firnctl_load_profile(in, NULL, NULL);
    if (!p)
        return 1;
    unsigned char *buf;
    size_t len;
    firn_err err = {0};
    int rc = pprof_encode(p, -1, &buf, &len, &err);
    pprof_free(p);
    if (rc < 0) {
        fprintf(stderr, "firnctl: %s: %s\n", in, err.msg);
        return 1;
    }
    if (strcmp(out, "-") == 0) {
        rc = fwrite(buf, 1, len, stdout) == len ? 0 : firn_errf(&err, FIRN_EIO, "stdout: %s", strerror(errno));
    } else {
        rc = firn_write_file_atomic(out, buf, len, &err);
    }
    free(buf);
    if (rc < 0) {
        fprintf(stderr, "firnctl: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* pprof's measurement units: a display unit is chosen once per report
 * (see report_unit), values print with two decimals and a trailing ".00"
 * dropped, zero prints as "0". */
struct unit_family {
    const char *sample_unit;
    const char *names[9];
    double factors[9];
};

static const struct unit_family unit_families[] = {
    {"nanoseconds",
     {"ns", "us", "ms", "s", "mins", "hrs", "days", "wks", "yrs"},
     {1, 1e3, 1e6, 1e9, 60e9, 3600e9, 86400e9, 604800e9, 31536000e9}},
    {"microseconds",
     {"us", "ms", "s", "mins", "hrs", "days", "wks", "yrs", NULL},
     {1, 1e3, 1e6, 60e6, 3600e6, 86400e6, 604800e6, 31536000e6, 0}},
    {"milliseconds",
     {"ms", "s", "mins", "hrs", "days", "wks", "yrs", NULL, NULL},
     {1, 1e3, 60e3, 3600e3, 86400e3, 604800e3, 31536000e3, 0, 0}},
    {"bytes",
     {"B", "kB", "MB", "GB", "TB", "PB", NULL, NULL, NULL},
     {1, 1024, 1048576, 1073741824.0, 1099511627776.0, 1125899906842624.0, 0, 0, 0}},
};

/* A unit choice: the family and the index of the unit in it (-1: raw). */
struct display_unit {
    const struct unit_family *family;
    int index;
};

/* The largest unit in which |v| >= 1, as pprof's autoscale. */
static int autoscale(const struct unit_family *f, int64_t v)
{
    double a = v < 0 ? -(double)v : (double)v;
    int best = -1;
    for (int i = 0; i < 9 && f->names[i]; i++)
        if (a / f->factors[i] >= 1.0)
            best = i;
    return best;
}

/* The unit family of a sample unit ("nanoseconds", "bytes"...), or NULL
 * for units printed as plain numbers. */
static const struct unit_family *unit_family_for(const char *unit)
{
    for (size_t i = 0; i < sizeof unit_families / sizeof unit_families[0]; i++)
        if (strcmp(unit, unit_families[i].sample_unit) == 0)
            return &unit_families[i];
    return NULL;
}

/* pprof's "minimum" output unit, chosen from the report's rows: the unit of
 * the smallest row (its flat, or its cum when flat is 0) or, when the total
 * needs another unit and is over 100 times larger, the unit of 100x the
 * smallest. */
static struct display_unit report_unit(const char *unit, const pprof_top_report *t)
{
    struct display_unit u = {unit_family_for(unit), -1};
    if (!u.family)
        return u;
    int64_t min = 0;
    for (size_t i = 0; i < t->n_rows; i++) {
        int64_t lo = t->rows[i].flat != 0 ? t->rows[i].flat : t->rows[i].cum;
        if (lo < 0)
            lo = lo == INT64_MIN ? INT64_MAX : -lo;
        if (lo > 0 && (min == 0 || lo < min))
            min = lo;
    }
    int64_t max = t->total;
    if (min == 0)
        min = max;
    int min_unit = autoscale(u.family, min), max_unit = autoscale(u.family, max);
    u.index = min_unit;
    if (min_unit != max_unit && min < max / 100 && min <= INT64_MAX / 100)
        u.index = autoscale(u.family, 100 * min);
    if (u.index < 0)
        u.index = 0;
    return u;
}

static void scaled(int64_t v, struct display_unit u, char *buf, size_t size)
{
    if (v == 0) {
        snprintf(buf, size, "0");
        return;
    }
    if (!u.family) {
        snprintf(buf, size, "%" PRId64, v);
        return;
    }
    snprintf(buf, size, "%.2f", (double)v / u.family->factors[u.index]);
    size_t n = strlen(buf);
    if (n > 3 && strcmp(buf + n - 3, ".00") == 0)
        buf[n - 3] = '\0';
    strncat(buf, u.family->names[u.index], size - strlen(buf) - 1);
}

static void scaled_auto(int64_t v, const char *unit, char *buf, size_t size)
{
    struct display_unit u = {unit_family_for(unit), 0};
    if (u.family && autoscale(u.family, v) > 0)
        u.index = autoscale(u.family, v);
    scaled(v, u, buf, size);
}

/* pprof's percentages: "100%" near 100, two decimals above 1%, else two
 * significant digits. */
static void pct(int64_t part, int64_t whole, char *buf, size_t size)
{
    double r = whole == 0 ? 0.0 : 100.0 * (double)part / (double)whole;
    if (r < 0)
        r = -r;
    if (r >= 99.95 && r <= 100.05)
        snprintf(buf, size, "  100%%");
    else if (r >= 1.0)
        snprintf(buf, size, "%5.2f%%", r);
    else
        snprintf(buf, size, "%5.2g%%", r);
}

static int parse_size(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < 0)
        return -1;
    *out = v;
    return 0;
}

static int pprof_top_cmd(int argc, char **argv)
{
    const char *path = NULL, *index_arg = NULL;
    long nodes = -1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--sample-index") == 0 && i + 1 < argc) {
            index_arg = argv[++i];
        } else if (strcmp(argv[i], "--nodes") == 0 && i + 1 < argc) {
            if (parse_size(argv[++i], &nodes) < 0) {
                fprintf(stderr, "firnctl: --nodes: \"%s\" is not a non-negative integer\n", argv[i]);
                return 2;
            }
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "firnctl: pprof top: unknown or incomplete option \"%s\"\n", argv[i]);
            return 2;
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "firnctl: pprof top: unexpected argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: firnctl pprof top FILE [--sample-index N|NAME] [--nodes N]\n");
        return 2;
    }
    pprof_profile *p = firnctl_load_profile(path, NULL, NULL);
    if (!p)
        return 1;
    int idx = pprof_default_sample_index(p);
    if (index_arg) {
        long n;
        idx = parse_size(index_arg, &n) == 0 ? (n > INT32_MAX ? -1 : (int)n)
                                               : pprof_sample_type_index(p, index_arg);
        if (idx < 0 || (size_t)idx >= p->n_sample_types) {
            fprintf(stderr, "firnctl: --sample-index %s: no such sample type (profile has:", index_arg);
            for (size_t i = 0; i < p->n_sample_types; i++)
                fprintf(stderr, " %zu=%s", i, pprof_str(p, p->sample_types[i].type));
            fprintf(stderr, ")\n");
            pprof_free(p);
            return 2;
        }
    }
    pprof_top_report top;
    firn_err err = {0};
    if (idx < 0 || pprof_top(p, idx, &top, &err) < 0) {
        fprintf(stderr, "firnctl: %s: %s\n", path, idx < 0 ? "profile has no sample types" : err.msg);
        pprof_free(p);
        return 1;
    }
    struct display_unit unit = report_unit(pprof_str(p, p->sample_types[idx].unit), &top);
    char a[64], b[64], pa[16], pb[16], pc[16];
    printf("Type: %s\n", pprof_str(p, p->sample_types[idx].type));
    if (p->time_nanos > 0) {
        char ts[64];
        format_rfc3339(p->time_nanos, ts, sizeof ts);
        printf("Time: %s\n", ts);
    }
    if (p->duration_nanos > 0) {
        scaled_auto(p->duration_nanos, "nanoseconds", a, sizeof a);
        scaled(top.total, unit, b, sizeof b);
        printf("Duration: %s, Total samples = %s\n", a, b);
    }
    size_t shown = top.n_rows;
    if (nodes >= 0 && (size_t)nodes < shown)
        shown = (size_t)nodes;
    int64_t shown_flat = 0;
    for (size_t i = 0; i < shown; i++)
        shown_flat = pprof_add_sat(shown_flat, top.rows[i].flat);
    scaled(shown_flat, unit, a, sizeof a);
    scaled(top.total, unit, b, sizeof b);
    pct(shown_flat, top.total, pa, sizeof pa);
    printf("Showing nodes accounting for %s, %s of %s total\n", a, pa + strspn(pa, " "), b);
    if (shown < top.n_rows)
        printf("Showing top %zu nodes out of %zu\n", shown, top.n_rows);
    printf("%10s %6s %6s %10s %6s\n", "flat", "flat%", "sum%", "cum", "cum%");
    int64_t sum = 0;
    for (size_t i = 0; i < shown; i++) {
        const pprof_top_row *r = &top.rows[i];
        sum = pprof_add_sat(sum, r->flat);
        scaled(r->flat, unit, a, sizeof a);
        scaled(r->cum, unit, b, sizeof b);
        pct(r->flat, top.total, pa, sizeof pa);
        pct(sum, top.total, pb, sizeof pb);
        pct(r->cum, top.total, pc, sizeof pc);
        printf("%10s %s %s %10s %s  %s\n", a, pa, pb, b, pc, r->name);
    }
    pprof_top_free(&top);
    pprof_free(p);
    return 0;
}

int cmd_pprof(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[0], "info") == 0 && argc == 2)
        return pprof_info(argv[1]);
    if (argc >= 1 && strcmp(argv[0], "convert") == 0 && argc == 3)
        return pprof_convert(argv[1], argv[2]);
    if (argc >= 1 && strcmp(argv[0], "top") == 0)
        return pprof_top_cmd(argc - 1, argv + 1);
    fprintf(stderr, "usage: firnctl pprof info FILE\n"
                    "       firnctl pprof convert IN OUT\n"
                    "       firnctl pprof top FILE [--sample-index N|NAME] [--nodes N]\n");
    return 2;
}

static int bench_usage(void)
{
    fprintf(stderr, "usage: firnctl bench decode [--seconds S] FILE...\n"
                    "       firnctl bench tsdb [--targets N] [--profiles N] [--threads N] "
                    "FILE...\n"
                    "       firnctl bench query [--targets N] [--profiles N] [--threads N] "
                    "FILE...\n"
                    "       firnctl bench rules [--targets N] [--profiles N] [--threads N] "
                    "FILE...\n"
                    "       firnctl bench rollup [--targets N] [--profiles N] FILE\n"
                    "       firnctl bench fleet [--quick] [--targets N] [--minutes N] "
                    "[--history-days N]\n"
                    "                           [--history-interval MS] [--threads N] "
                    "[--go-profiles N]\n"
                    "                           [--range-series N] [--range-points N] "
                    "[--queue-mb N]\n"
                    "                           [--fixtures DIR] [--keep-store DIR] [FILE...]\n"
                    "\n"
                    "bench fleet: job \"fleet\" has N targets (default 10), each sending a Go CPU, "
                    "Go heap,\n"
                    "goroutine and agent-style CPU profile every 10 s for --minutes (default 10),\n"
                    "built from the big fixtures in --fixtures (default ../shared/fixtures/pprof) "
                    "and any\n"
                    "FILE (e.g. profiles recorded from test/goservice: one target in four uses\n"
                    "them), each target keeping its own 30-90%% of a base's stacks.  Job\n"
                    "\"history\" is one target sending the small\n"
                    "agent-style profile every --history-interval ms (default 60000) for\n"
                    "--history-days (default 7): the 24 h and 7 d flame graphs read it, and its\n"
                    "small profiles keep the default run within about 8 minutes on 2 cores.\n"
                    "The range query sum by (job) (rate(TYPE[1m])) runs at a 10 s step over\n"
                    "--range-series (default 1000) series of --range-points (default 360)\n"
                    "profiles, in a store of its own.\n"
                    "--queue-mb (default 32): MiB of decoded profiles the store's append queue\n"
                    "lets wait for or be in a commit.\n"
                    "Cold merges drop the page cache as root (else only the store file's pages).\n"
                    "--quick: 2 targets x 2 minutes, history one profile an hour, a range\n"
                    "query over 100 series x 60 points, and only the store's pages dropped\n"
                    "(a smoke test).\n");
    return 2;
}

/* strtol with a range check; -1 when s is not a number in [lo, hi]. */
static long bench_count(const char *flag, const char *s, long lo, long hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) {
        fprintf(stderr, "firnctl: %s: \"%s\" is not a count in [%ld, %ld]\n", flag, s, lo, hi);
        return -1;
    }
    return v;
}

typedef int (*store_bench_fn)(const char **, size_t, long, long, int, FILE *, FILE *,
                              firn_err *);

/* bench tsdb and bench query: the same flags over the same synthetic set. */
static int bench_store_cmd(const char *name, store_bench_fn fn, long targets, long profiles,
                           int argc, char **argv)
{
    long threads = 64;
    int first = 0;
    while (first + 1 < argc && strncmp(argv[first], "--", 2) == 0) {
        long *dst = strcmp(argv[first], "--targets") == 0    ? &targets
                    : strcmp(argv[first], "--profiles") == 0 ? &profiles
                    : strcmp(argv[first], "--threads") == 0  ? &threads
                                                             : NULL;
        if (!dst)
            return bench_usage();
        if ((*dst = bench_count(argv[first], argv[first + 1], 1, 1000000)) < 0)
            return 2;
        first += 2;
    }
    if (first >= argc)
        return bench_usage();
    firn_err err = {0};
    if (fn((const char **)argv + first, (size_t)(argc - first), targets, profiles, (int)threads,
           stdout, stderr, &err) < 0) {
        fprintf(stderr, "firnctl: bench %s: %s\n", name, err.msg);
        return 1;
    }
    return 0;
}

/* bench fleet's flags; FILEs after them are more base profiles. */
static int bench_fleet_cmd(int argc, char **argv)
{
    bench_fleet_options o;
    bench_fleet_options_default(&o);
    o.fixtures_dir = "../shared/fixtures/pprof";
    int first = 0;
    long threads = o.threads, interval = (long)o.history_interval_ms;
    while (first < argc && strncmp(argv[first], "--", 2) == 0) {
        const char *flag = argv[first];
        if (strcmp(flag, "--quick") == 0) {
            o.targets = 2;
            o.minutes = 2;
            interval = 3600000;
            o.go_profiles = 4;
            o.range_series = 100;
            o.range_points = 60;
            threads = 4;
            o.drop_caches = false;
            first++;
            continue;
        }
        if (first + 1 >= argc)
            return bench_usage();
        const char *v = argv[first + 1];
        long *dst = strcmp(flag, "--targets") == 0            ? &o.targets
                    : strcmp(flag, "--minutes") == 0          ? &o.minutes
                    : strcmp(flag, "--history-days") == 0     ? &o.history_days
                    : strcmp(flag, "--history-interval") == 0 ? &interval
                    : strcmp(flag, "--threads") == 0          ? &threads
                    : strcmp(flag, "--go-profiles") == 0      ? &o.go_profiles
                    : strcmp(flag, "--range-series") == 0     ? &o.range_series
                    : strcmp(flag, "--range-points") == 0     ? &o.range_points
                    : strcmp(flag, "--queue-mb") == 0         ? &o.queue_mb
                                                              : NULL;
        if (strcmp(flag, "--fixtures") == 0)
            o.fixtures_dir = v;
        else if (strcmp(flag, "--keep-store") == 0)
            o.keep_store = v;
        else if (!dst)
            return bench_usage();
        else if ((*dst = bench_count(flag, v, dst == &o.go_profiles ? 0 : 1,
                                     dst == &interval ? 86400000 : 100000)) < 0)
            return 2;
        first += 2;
    }
    if (threads > 256) {
        fprintf(stderr, "firnctl: --threads: at most 256\n");
        return 2;
    }
    o.threads = (int)threads;
    o.history_interval_ms = interval;
    o.files = (const char **)argv + first;
    o.n_files = (size_t)(argc - first);
    firn_err err = {0};
    if (bench_fleet(&o, stdout, stderr, &err) < 0) {
        fprintf(stderr, "firnctl: bench fleet: %s\n", err.msg);
        return 1;
    }
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "fleet") == 0)
        return bench_fleet_cmd(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "tsdb") == 0)
        return bench_store_cmd("tsdb", bench_tsdb, 1000, 360, argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "query") == 0)
        return bench_store_cmd("query", bench_query, 1000, 360, argc - 1, argv + 1);
    /* 6 minutes of profiles 10 s apart: a full 5m window, two intervals */
    if (argc >= 1 && strcmp(argv[0], "rules") == 0)
        return bench_store_cmd("rules", bench_rules, 1000, 37, argc - 1, argv + 1);
    /* 2 targets x a profile every 5 minutes for a week */
    if (argc >= 1 && strcmp(argv[0], "rollup") == 0)
        return bench_store_cmd("rollup", bench_rollup, 2, 2016, argc - 1, argv + 1);
    if (argc < 1 || strcmp(argv[0], "decode") != 0)
        return bench_usage();
    double seconds = 2.0;
    int first = 1;
    if (argc >= 3 && strcmp(argv[1], "--seconds") == 0) {
        char *end;
        seconds = strtod(argv[2], &end);
        if (*end || !(seconds > 0 && seconds <= 3600)) {
            fprintf(stderr, "firnctl: --seconds: \"%s\" is not a number of seconds in (0, 3600]\n",
                    argv[2]);
            return 2;
        }
        first = 3;
    }
    if (first >= argc)
        return bench_usage();
    firn_err err = {0};
    if (bench_decode((const char **)argv + first, (size_t)(argc - first), seconds, stdout, stderr,
                     &err) < 0) {
        fprintf(stderr, "firnctl: bench decode: %s\n", err.msg);
        return 1;
    }
    return 0;
}
