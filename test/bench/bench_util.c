/* bench_util.c -- what the store benchmarks share: a clock, a small random
 * generator, removing their scratch directory, timing a merge, and timing
 * `go tool pprof -proto` on the same profiles as files. */
#include "bench_util.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t bench_rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void bench_rm_tree(const char *dir)
{
    if (dir && dir[0])
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

double bench_merge(tsdb *db, const firn_matcher *m, size_t n_m, int64_t start, int64_t end,
                   tsdb_merge_stats *st, firn_err *err)
{
    double t0 = bench_now();
    tsdb_reader *r = tsdb_reader_open(db, err);
    if (!r)
        return -1;
    tsdb_series_set set = {0};
    pprof_profile *merged = NULL;
    if (tsdb_select(r, m, n_m, start, end, &set, err) == 0) {
        uint64_t *ids = calloc(set.n + 1, sizeof *ids);
        for (size_t i = 0; ids && i < set.n; i++)
            ids[i] = set.series[i].id;
        *st = (tsdb_merge_stats){0};
        merged = ids ? tsdb_merge(r, ids, set.n, start, end, NULL, st, err) : NULL;
        if (!ids)
            firn_errf(err, FIRN_ENOMEM, "out of memory");
        free(ids);
    }
    double secs = bench_now() - t0;
    pprof_free(merged);
    tsdb_series_set_free(&set);
    tsdb_reader_close(r);
    return merged ? secs : -1;
}

static double children_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double bench_go_merge(const char *dir, char **files, size_t n, const char *who, FILE *log,
                      double *cpu)
{
    char **argv = calloc(n + 8, sizeof *argv);
    if (!argv)
        return -1;
    size_t a = 0;
    argv[a++] = "go";
    argv[a++] = "tool";
    argv[a++] = "pprof";
    argv[a++] = "-proto";
    argv[a++] = "-sample_index=0";
    for (size_t i = 0; i < n; i++)
        argv[a++] = files[i];
    char out[4096];
    snprintf(out, sizeof out, "%s/go-merged.pb.gz", dir);
    double start = bench_now(), cpu0 = children_cpu();
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(out, "w", stdout) || !freopen("/dev/null", "w", stderr))
            _exit(126);
        setenv("PPROF_TMPDIR", dir, 1);
        setenv("HOME", dir, 1);
        setenv("GOTOOLCHAIN", "local", 1);
        setenv("GOPROXY", "off", 1);
        execvp("go", argv);
        _exit(127);
    }
    int status = 0;
    bool ok = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
              WEXITSTATUS(status) == 0;
    double secs = bench_now() - start;
    if (cpu)
        *cpu = children_cpu() - cpu0;
    free(argv);
    if (!ok) {
        fprintf(log, "%s: `go tool pprof -proto` failed (status %d); is golang-go installed?\n",
                who, status);
        return -1;
    }
    return secs;
}
