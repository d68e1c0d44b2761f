/* bench_util.h -- helpers the store benchmarks share (bench_util.c). */
#ifndef FIRN_BENCH_UTIL_H
#define FIRN_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>

#include "tsdb/tsdb.h"

/* Seconds on the monotonic clock. */
double bench_now(void);
/* xorshift64: a reproducible sequence from a nonzero seed. */
uint64_t bench_rng(uint64_t *s);
/* Removes a directory tree ("" or NULL: nothing). */
void bench_rm_tree(const char *dir);
/* Selects with m in [start, end] and merges what matches; seconds, or -1
 * with err.  *st gets the merge's counts. */
double bench_merge(tsdb *db, const firn_matcher *m, size_t n_m, int64_t start, int64_t end,
                   tsdb_merge_stats *st, firn_err *err);
/* Runs `go tool pprof -proto` on files (output and Go's scratch in dir);
 * seconds, or -1 (said on log, prefixed with who) when go is missing or
 * fails.  *cpu (when not NULL): the CPU seconds (user and system) of go
 * and the processes it waited for. */
double bench_go_merge(const char *dir, char **files, size_t n, const char *who, FILE *log,
                      double *cpu);

#endif
