/* tsdb_cmd.c -- `firnctl tsdb ...`: write to and inspect a store directory
 * (as `promtool tsdb` does for Prometheus). */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "firnctl.h"
#include "tsdb/tsdb.h"

#define MAX_MATCHERS 32
#define MAX_LABELS 64

struct opts {
    tsdb_options store;
    const char *name;
    bool delta;
    firn_label labels[MAX_LABELS];
    size_t n_labels;
    firn_matcher matchers[MAX_MATCHERS];
    size_t n_matchers;
    int64_t timestamp, interval, start, end, time;
    long repeat;
    bool have_time;
    const char *output;
    const char **args;
    size_t n_args;
};

static void usage(FILE *f)
{
    fputs("usage: firnctl tsdb <command> [flags] [args]\n"
          "\n"
          "commands:\n"
          "  append --name NAME [--delta] [--label k=v]... [--timestamp MS [--interval MS]]\n"
          "         [--repeat N] FILE...      store pprof files (one series per sample type)\n"
          "  series [--match M]...            label sets of the matching series\n"
          "  labels [--match M]...            label names\n"
          "  values NAME [--match M]...       values of one label\n"
          "  dump [--match M]... [--start MS] [--end MS]\n"
          "                                   one line per stored profile: series, time, total\n"
          "  export --match M... (--time MS | --start MS --end MS) [-o FILE]\n"
          "                                   the matching profiles merged, as gzipped pprof\n"
          "  stats                            counts and sizes, as JSON\n"
          "  clean                            run the retention pass now\n"
          "\n"
          "flags for every command:\n"
          "  --storage.tsdb.path DIR          the store (default ./data)\n"
          "  --storage.tsdb.retention.time D  e.g. 15d (default), 12h, 0 = forever\n"
          "\n"
          "A matcher M is NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX.\n",
          f);
}

static int parse_matcher(struct opts *o, char *s)
{
    if (o->n_matchers == MAX_MATCHERS) {
        fprintf(stderr, "firnctl: at most %d matchers\n", MAX_MATCHERS);
        return -1;
    }
    static const struct {
        const char *op;
        firn_match_type type;
    } ops[] = {{"!=", FIRN_MATCH_NE}, {"=~", FIRN_MATCH_RE}, {"!~", FIRN_MATCH_NRE},
               {"=", FIRN_MATCH_EQ}};
    /* the first operator character decides where the name ends */
    size_t at = strcspn(s, "=!");
    for (size_t i = 0; s[at] && i < sizeof ops / sizeof *ops; i++) {
        size_t len = strlen(ops[i].op);
        if (strncmp(s + at, ops[i].op, len) != 0)
            continue;
        char name[FIRN_LABEL_NAME_MAX + 1];
        if (at == 0 || at > FIRN_LABEL_NAME_MAX)
            break;
        memcpy(name, s, at);
        name[at] = 0;
        firn_err err = {0};
        if (firn_matcher_init(&o->matchers[o->n_matchers], ops[i].type, name, s + at + len,
                              &err) < 0) {
            fprintf(stderr, "firnctl: --match %s: %s\n", s, err.msg);
            return -1;
        }
        o->n_matchers++;
        return 0;
    }
    fprintf(stderr, "firnctl: --match \"%s\": want NAME=VALUE, NAME!=VALUE, NAME=~RE or NAME!~RE\n",
            s);
    return -1;
}

static int parse(int argc, char **argv, struct opts *o)
{
    tsdb_options_default(&o->store);
    o->start = INT64_MIN;
    o->end = INT64_MAX;
    o->repeat = 1;
    o->args = firn_xcalloc((size_t)argc + 1, sizeof *o->args);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (strcmp(a, "--storage.tsdb.path") == 0 && v) {
            o->store.path = v;
        } else if (strcmp(a, "--storage.tsdb.retention.time") == 0 && v) {
            firn_err err = {0};
            if (firn_duration_parse(v, &o->store.retention_ms, &err) < 0) {
                fprintf(stderr, "firnctl: %s: %s\n", a, err.msg);
                return -1;
            }
        } else if (strcmp(a, "--name") == 0 && v) {
            o->name = v;
        } else if (strcmp(a, "--label") == 0 && v) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || o->n_labels == MAX_LABELS) {
                fprintf(stderr, "firnctl: --label \"%s\": want NAME=VALUE (at most %d)\n", v,
                        MAX_LABELS);
                return -1;
            }
            o->labels[o->n_labels].name = firn_xstrndup(v, (size_t)(eq - v));
            o->labels[o->n_labels++].value = eq + 1;
        } else if (strcmp(a, "--match") == 0 && v) {
            if (parse_matcher(o, argv[i + 1]) < 0)
                return -1;
        } else if (strcmp(a, "--timestamp") == 0 && v) {
            if (firnctl_parse_ms(a, v, &o->timestamp) < 0)
                return -1;
        } else if (strcmp(a, "--interval") == 0 && v) {
            if (firnctl_parse_ms(a, v, &o->interval) < 0)
                return -1;
        } else if (strcmp(a, "--start") == 0 && v) {
            if (firnctl_parse_ms(a, v, &o->start) < 0)
                return -1;
        } else if (strcmp(a, "--end") == 0 && v) {
            if (firnctl_parse_ms(a, v, &o->end) < 0)
                return -1;
        } else if (strcmp(a, "--time") == 0 && v) {
            if (firnctl_parse_ms(a, v, &o->time) < 0)
                return -1;
            o->have_time = true;
        } else if (strcmp(a, "--repeat") == 0 && v) {
            o->repeat = strtol(v, NULL, 10);
            if (o->repeat < 1) {
                fprintf(stderr, "firnctl: --repeat: \"%s\" is not a positive count\n", v);
                return -1;
            }
        } else if (strcmp(a, "-o") == 0 && v) {
            o->output = v;
        } else if (strcmp(a, "--delta") == 0) {
            o->delta = true;
            takes = false;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "firnctl: unknown flag or missing value: %s\n", a);
            return -1;
        } else {
            o->args[o->n_args++] = a;
            takes = false;
        }
        if (takes)
            i++;
    }
    return 0;
}

static void opts_free(struct opts *o)
{
    for (size_t i = 0; i < o->n_matchers; i++)
        firn_matcher_destroy(&o->matchers[i]);
    for (size_t i = 0; i < o->n_labels; i++)
        free((char *)o->labels[i].name);
    free(o->args);
}

/* Appends every file, repeat times, printing one line per stored profile
 * as soon as it is durable. */
static int do_append(tsdb *db, struct opts *o)
{
    if (!o->name || !o->n_args) {
        fprintf(stderr, "firnctl: tsdb append needs --name NAME and at least one FILE\n");
        return 2;
    }
    pprof_profile **profiles = firn_xcalloc(o->n_args, sizeof *profiles);
    int rc = 0;
    for (size_t i = 0; i < o->n_args; i++)
        if (!(profiles[i] = firnctl_load_profile(o->args[i], NULL, NULL)))
            rc = 1;
    int64_t ts = o->timestamp;
    for (long r = 0; r < o->repeat && !rc; r++) {
        for (size_t i = 0; i < o->n_args; i++) {
            tsdb_append_req req = {.labels = o->labels,
                                   .n_labels = o->n_labels,
                                   .profile_name = o->name,
                                   .delta = o->delta,
                                   .profile = profiles[i],
                                   .timestamp_ms = ts};
            firn_err err = {0};
            if (tsdb_append(db, &req, &err) < 0) {
                fprintf(stderr, "firnctl: %s: %s\n", o->args[i], err.msg);
                rc = 1;
                break;
            }
            printf("stored %s at %lld ms: %zu series\n", o->args[i],
                   (long long)(ts ? ts : profiles[i]->time_nanos / 1000000),
                   profiles[i]->n_sample_types);
            fflush(stdout);
            if (ts)
                ts += o->interval;
        }
    }
    for (size_t i = 0; i < o->n_args; i++)
        pprof_free(profiles[i]);
    free(profiles);
    return rc;
}

static void print_labels(const firn_label *l, size_t n)
{
    char *s = firn_labels_format(l, n);
    fputs(s ? s : "?", stdout);
    free(s);
}

static int select_series(tsdb_reader *r, struct opts *o, tsdb_series_set *set)
{
    firn_err err = {0};
    if (tsdb_select(r, o->matchers, o->n_matchers, o->start, o->end, set, &err) < 0) {
        fprintf(stderr, "firnctl: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static int do_series(tsdb_reader *r, struct opts *o)
{
    tsdb_series_set set;
    if (select_series(r, o, &set))
        return 1;
    for (size_t i = 0; i < set.n; i++) {
        print_labels(set.series[i].labels, set.series[i].n_labels);
        putchar('\n');
    }
    tsdb_series_set_free(&set);
    return 0;
}

static int do_labels(tsdb_reader *r, struct opts *o, const char *name)
{
    tsdb_strings s;
    firn_err err = {0};
    int rc = name ? tsdb_label_values(r, name, o->matchers, o->n_matchers, o->start, o->end, &s,
                                      &err)
                  : tsdb_label_names(r, o->matchers, o->n_matchers, o->start, o->end, &s, &err);
    if (rc < 0) {
        fprintf(stderr, "firnctl: %s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i < s.n; i++)
        puts(s.v[i]);
    tsdb_strings_free(&s);
    return 0;
}

struct dump_ctx {
    const tsdb_series *s;
};

static int dump_block(void *ctx, const tsdb_block *b)
{
    const tsdb_series *s = ((struct dump_ctx *)ctx)->s;
    print_labels(s->labels, s->n_labels);
    printf(" %lld total=%lld samples=%zu duration_ns=%lld period=%lld\n",
           (long long)b->timestamp_ms, (long long)b->total, b->n_samples,
           (long long)b->duration_nanos, (long long)b->period);
    return 0;
}

static int do_dump(tsdb_reader *r, struct opts *o)
{
    tsdb_series_set set;
    if (select_series(r, o, &set))
        return 1;
    int rc = 0;
    for (size_t i = 0; i < set.n && !rc; i++) {
        struct dump_ctx c = {&set.series[i]};
        firn_err err = {0};
        if (tsdb_scan(r, set.series[i].id, o->start, o->end, 0, dump_block, &c, &err) < 0) {
            fprintf(stderr, "firnctl: %s\n", err.msg);
            rc = 1;
        }
    }
    tsdb_series_set_free(&set);
    return rc;
}

static int do_export(tsdb_reader *r, struct opts *o)
{
    if (!o->n_matchers || (!o->have_time && (o->start == INT64_MIN || o->end == INT64_MAX))) {
        fprintf(stderr, "firnctl: tsdb export needs --match and --time, or --start and --end\n");
        return 2;
    }
    if (o->have_time)
        o->start = o->end = o->time;
    tsdb_series_set set;
    if (select_series(r, o, &set))
        return 1;
    uint64_t *ids = firn_xcalloc(set.n + 1, sizeof *ids);
    for (size_t i = 0; i < set.n; i++)
        ids[i] = set.series[i].id;
    firn_err err = {0};
    tsdb_merge_options mo = {.keep_labels = o->have_time};
    tsdb_merge_stats ms = {0};
    bool none = !set.n;
    pprof_profile *p = !none ? tsdb_merge(r, ids, set.n, o->start, o->end, &mo, &ms, &err)
                             : NULL;
    free(ids);
    tsdb_series_set_free(&set);
    /* a series is selected when its time span overlaps the range, so it may
     * hold no profile inside: an empty file would hide the mistake */
    if (none || (p && !ms.blocks)) {
        pprof_free(p);
        if (o->have_time)
            fprintf(stderr, "firnctl: no profile of the matching series at %lld ms\n",
                    (long long)o->time);
        else
            fprintf(stderr, "firnctl: no profile of the matching series in [%lld, %lld] ms\n",
                    (long long)o->start, (long long)o->end);
        return 1;
    }
    if (!p) {
        fprintf(stderr, "firnctl: %s\n", err.msg);   /* tsdb_merge names every failure */
        return 1;
    }
    unsigned char *out;
    size_t len;
    int rc = pprof_encode(p, -1, &out, &len, &err);
    pprof_free(p);
    if (rc == 0) {
        if (o->output)
            rc = firn_write_file_atomic(o->output, out, len, &err);
        else if (fwrite(out, 1, len, stdout) != len)
            rc = firn_errf(&err, FIRN_EIO, "writing standard output failed");
        free(out);
    }
    if (rc < 0) {
        fprintf(stderr, "firnctl: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static int do_stats(tsdb *db)
{
    tsdb_stats s;
    firn_err err = {0};
    if (tsdb_stats_get(db, &s, &err) < 0) {
        fprintf(stderr, "firnctl: %s\n", err.msg);
        return 1;
    }
    json_t *o = json_pack("{s:I, s:I, s:I, s:I}", "series", (json_int_t)s.series, "blocks",
                          (json_int_t)s.blocks, "disk_bytes", (json_int_t)s.disk_bytes,
                          "map_bytes", (json_int_t)s.map_bytes);
    char *text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
    if (text)
        puts(text);
    free(text);
    json_decref(o);
    return text ? 0 : 1;
}

int cmd_tsdb(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    const char *cmd = argv[0];
    static const char *const known[] = {"append", "series", "labels", "values",
                                        "dump",   "export", "stats",  "clean"};
    bool ok = false;
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        ok |= strcmp(cmd, known[i]) == 0;
    if (!ok) {
        fprintf(stderr, "firnctl: unknown tsdb command \"%s\"\n\n", cmd);
        usage(stderr);
        return 2;
    }
    struct opts o = {0};
    if (parse(argc - 1, argv + 1, &o) < 0) {
        opts_free(&o);
        return 2;
    }
    bool writes = strcmp(cmd, "append") == 0 || strcmp(cmd, "clean") == 0;
    o.store.read_only = !writes;
    if (strcmp(cmd, "values") == 0 && o.n_args != 1) {
        fprintf(stderr, "firnctl: tsdb values needs one label NAME\n");
        opts_free(&o);
        return 2;
    }
    firn_err err = {0};
    tsdb *db = tsdb_open(&o.store, &err);
    if (!db) {
        fprintf(stderr, "firnctl: %s\n", err.msg);
        opts_free(&o);
        return 1;
    }
    int rc = 0;
    if (strcmp(cmd, "append") == 0) {
        rc = do_append(db, &o);
    } else if (strcmp(cmd, "clean") == 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        tsdb_stats st;
        /* the writer runs a pass of its own as the store opens, which may
         * come first and leave this one nothing: count what both deleted */
        if (tsdb_retention_run(db, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, NULL,
                               &err) < 0 ||
            tsdb_stats_get(db, &st, &err) < 0) {
            fprintf(stderr, "firnctl: %s\n", err.msg);
            rc = 1;
        } else {
            printf("deleted %llu profiles older than the retention\n",
                   (unsigned long long)st.retention_deleted_blocks_total);
        }
    } else if (strcmp(cmd, "stats") == 0) {
        rc = do_stats(db);
    } else {
        tsdb_reader *r = tsdb_reader_open(db, &err);
        if (!r) {
            fprintf(stderr, "firnctl: %s\n", err.msg);
            rc = 1;
        } else if (strcmp(cmd, "series") == 0) {
            rc = do_series(r, &o);
        } else if (strcmp(cmd, "labels") == 0) {
            rc = do_labels(r, &o, NULL);
        } else if (strcmp(cmd, "values") == 0) {
            rc = do_labels(r, &o, o.args[0]);
        } else if (strcmp(cmd, "dump") == 0) {
            rc = do_dump(r, &o);
        } else {
            rc = do_export(r, &o);
        }
        tsdb_reader_close(r);
    }
    tsdb_close(db);
    opts_free(&o);
    return rc;
}
