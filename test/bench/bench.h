/* bench.h -- firn's benchmarks, run by `firnctl bench ...`.
 *
 * Each prints its figures to `out`, one per line as `figure_name value`
 * (a bare number; the unit is in the name), and notes for humans to `log`.
 * Benchmarks never assert on timings: they measure and report.
 */
#ifndef FIRN_BENCH_H
#define FIRN_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model/model.h"

/* Decode the given pprof files in a loop for about `seconds` and compare
 * with plain zlib inflate of the same gzipped bytes (raw inputs are gzipped
 * first at zlib's default level, as producers send them).  Figures:
 * bench_files, decode_mb_per_s (compressed input), decode_profiles_per_s,
 * inflate_mb_per_s, decode_vs_inflate_ratio (decode time / inflate time). */
int bench_decode(const char **files, size_t n_files, double seconds, FILE *out, FILE *log,
                 firn_err *err);

/* Ingest `targets` x `profiles` synthetic profiles (variants of the given
 * base files) into a fresh store from `threads` producer threads, then merge
 * 1M+ samples of one profile type, and compare with zlib inflate of the
 * same input and with `go tool pprof -proto` merging the same profiles.
 * Figures: ingest_profiles_per_s, ingest_samples_per_s,
 * ingest_vs_inflate_ratio, disk_bytes_per_sample, merge_samples_per_s,
 * merge_speedup_vs_go_pprof (omitted when go is missing), peak_rss_mb, and
 * the counts behind them. */
int bench_tsdb(const char **files, size_t n_files, long targets, long profiles, int threads,
               FILE *out, FILE *log, firn_err *err);

/* The query language over the bench tsdb data set (targets in 10 jobs):
 * parse time per query, a range query `sum by (job)` over targets x
 * profiles points (first and warm), a range query with a stack filter (it
 * decodes every block of its series), and a profile (flame graph) merge of
 * one job.  Figures: parse_us, range_query_first_ms, range_query_ms,
 * filtered_range_query_ms, merge_query_ms, and the sizes behind them. */
int bench_query(const char **files, size_t n_files, long targets, long profiles, int threads,
                FILE *out, FILE *log, firn_err *err);

/* The rule engine over the bench tsdb data set: `targets` recording rules,
 * one per target's series (targets in 10 jobs), each a 5m rate summed by
 * instance, every other one with a stack filter (__function__=~"runtime\\..*"),
 * in groups of 100, evaluated for two 1m intervals (the figures are the
 * second's: a running server's caches are warm).  Anchor in the same run:
 * the same expressions as plain instant queries.  Figures:
 * rules_interval_wall_ms, rules_interval_cpu_ms,
 * rules_cpu_share_of_1m_interval, group_eval_ms_mean/max,
 * rule_eval_us_mean/plain_mean/filtered_mean/max,
 * anchor_instant_queries_ms, rules_vs_instant_queries_ratio (wall),
 * anchor_instant_queries_cpu_ms, rules_vs_instant_queries_cpu_ratio, and the counts
 * behind them.  profiles must be at least 31 (a 5m window 10 s apart). */
int bench_rules(const char **files, size_t n_files, long targets, long profiles, int threads,
                FILE *out, FILE *log, firn_err *err);

/* Rollups: `targets` targets of one job, `profiles` profiles each over the
 * last 7 days (subsets of the first file's samples).  Figures: the raw
 * merge of the week warm and cold (page cache dropped for the store's file)
 * in samples/s beside a memcpy floor of the same decoded bytes, the
 * compaction's seconds, and the flame graph of the job over 1 h, 24 h and
 * 7 d in ms with rollups and with the raw merge as the anchor:
 * merge_warm_samples_per_s, merge_cold_samples_per_s,
 * memcpy_floor_samples_per_s, compaction_seconds, flamegraph_{1h,24h,7d}_ms,
 * flamegraph_{1h,24h,7d}_raw_ms, flamegraph_7d_vs_1h_ratio,
 * rollup_speedup_7d. */
int bench_rollup(const char **files, size_t n_files, long targets, long profiles, int threads,
                 FILE *out, FILE *log, firn_err *err);

/* `firnctl bench fleet` (bench_fleet.c): a fleet built from big real
 * profiles, see the file's comment for the layout.  Figures (each next to
 * its anchor from the same run): ingest_samples_per_s,
 * ingest_profiles_per_s and ingest_vs_inflate_ratio (zlib inflate of the
 * same bytes); disk_bytes_per_sample and disk_vs_gzip_pprof_ratio (the
 * gzipped pprof files); merge_warm_samples_per_s and
 * merge_cold_samples_per_s (page cache dropped) with the memcpy floor;
 * merge_speedup_vs_go_pprof (`go tool pprof -proto` on the same profiles);
 * flamegraph_1h_ms, flamegraph_24h_ms, flamegraph_7d_ms (from rollups, after
 * compaction_seconds of tsdb_rollup_run) beside flamegraph_*_raw_ms (the
 * raw profiles alone) and rollup_speedup_7d;
 * range_query_SxP_ms (S series x P points, by default range_query_1000x360_ms:
 * `sum by (job) (rate(TYPE[1m]))` at a 10 s step, warm, on a store of its
 * own) beside range_query_read_ms (the same points read alone), and the CPU
 * time of each (range_query_cpu_ms, range_query_read_cpu_ms); rss_anon_peak_mb
 * and the file-backed RSS, at peak and after; stacks_per_profile and
 * distinct_stacks; and the counts behind them. */
typedef struct bench_fleet_options {
    long targets;                /* of job "fleet" */
    long minutes;                /* the fleet's span, at one profile per kind per 10 s */
    long history_days;           /* the "history" job's span */
    int64_t history_interval_ms; /* its profiles' spacing */
    int threads;                 /* producer threads */
    long queue_mb;               /* the store's append queue: MiB of decoded profiles */
    long go_profiles;            /* CPU profiles `go tool pprof` merges */
    long range_series;           /* the range query's data set: series x points */
    long range_points;
    const char *fixtures_dir;    /* shared/fixtures/pprof */
    bool drop_caches;            /* as root, drop the whole page cache for the cold merge
                                    (else, and when not root, only the store file's) */
    const char *keep_store;      /* NULL: a temporary store, removed after */
    const char **files;          /* more base profiles (e.g. recorded from test/goservice) */
    size_t n_files;
} bench_fleet_options;

void bench_fleet_options_default(bench_fleet_options *o);
int bench_fleet(const bench_fleet_options *o, FILE *out, FILE *log, firn_err *err);

#endif
