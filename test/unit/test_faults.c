/* test_faults.c -- real I/O faults against model/file.c and the store.
 *
 * test/fault/sync_fault.c is linked in: fsync, fdatasync and msync fail
 * with EIO while the file named by FIRN_FAULT_SYNC exists (only for
 * directories with FIRN_FAULT_SYNC_WHAT=dir), and count each failure they
 * inject in that file, so every test also checks that the fault was hit.
 *  - an atomic file write whose directory cannot be synced fails (the rename
 *    is not durable), and one whose data cannot be synced leaves the old
 *    file whole and no temporary file;
 *  - a store append whose commit cannot be synced is not acknowledged, leaves
 *    nothing behind, and appends work again once the fault stops;
 *  - so is every asynchronous append of such a commit, each answered with
 *    the error;
 *  - a retention pass that fails is counted and the next one works.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixtures.h"
#include "async_answers.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/model.h"
#include "pprof/pprof.h"
#include "tsdb/tsdb.h"

#define FX_CPU "pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz"   /* samples, cpu */

struct fixture {
    char *dir;
    char flag[512];   /* FIRN_FAULT_SYNC: the fault is on while it exists */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->dir = temp_dir("faults");
    snprintf(f->flag, sizeof f->flag, "%s.fault", f->dir);
    setenv("FIRN_FAULT_SYNC", f->flag, 1);
    unsetenv("FIRN_FAULT_SYNC_WHAT");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unsetenv("FIRN_FAULT_SYNC");
    unlink(f->flag);
    remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void fault_start(struct fixture *f, const char *what)
{
    if (what)
        setenv("FIRN_FAULT_SYNC_WHAT", what, 1);
    else
        unsetenv("FIRN_FAULT_SYNC_WHAT");
    int fd = open(f->flag, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    close(fd);
}

/* Stops the fault; returns how many syncs it made fail. */
static off_t fault_stop(struct fixture *f)
{
    struct stat st;
    assert_int_equal(stat(f->flag, &st), 0);
    unlink(f->flag);
    return st.st_size;
}

static char *slurp(const char *path)
{
    unsigned char *buf;
    size_t len;
    firn_err err = {0};
    if (firn_read_file(path, 1 << 20, &buf, &len, &err) < 0)
        fail_msg("%s", err.msg);
    char *s = malloc(len + 1);
    memcpy(s, buf, len);
    s[len] = '\0';
    free(buf);
    return s;
}

static size_t entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void test_write_file_directory_sync(void **state)
{
    struct fixture *f = *state;
    char path[600];
    snprintf(path, sizeof path, "%s/out.txt", f->dir);
    firn_err err = {0};
    assert_int_equal(firn_write_file_atomic(path, "old", 3, &err), 0);

    /* the rename is made but cannot be made durable: the caller must know */
    fault_start(f, "dir");
    int rc = firn_write_file_atomic(path, "new", 3, &err);
    assert_true(fault_stop(f) >= 1);
    assert_int_equal(rc, FIRN_EIO);
    if (!strstr(err.msg, f->dir) || !strstr(err.msg, "Input/output error"))
        fail_msg("the error does not name the directory and the cause: %s", err.msg);
    assert_int_equal(entries(f->dir), 1);

    /* the data itself cannot be synced: the old file stays whole, no
     * temporary file is left */
    assert_int_equal(firn_write_file_atomic(path, "old", 3, &err), 0);
    fault_start(f, NULL);
    rc = firn_write_file_atomic(path, "newer", 5, &err);
    assert_true(fault_stop(f) >= 1);
    assert_int_equal(rc, FIRN_EIO);
    char *text = slurp(path);
    assert_string_equal(text, "old");
    free(text);
    assert_int_equal(entries(f->dir), 1);
}

static int64_t stored_blocks(tsdb *db)
{
    tsdb_stats s;
    firn_err err = {0};
    if (tsdb_stats_get(db, &s, &err) < 0)
        fail_msg("stats: %s", err.msg);
    return (int64_t)s.blocks;
}

static int append_at(tsdb *db, const pprof_profile *p, const char *job, int64_t ts,
                     firn_err *err)
{
    firn_label labels[] = {{"job", job}};
    tsdb_append_req req = {.labels = labels,
                           .n_labels = 1,
                           .profile_name = "process_cpu",
                           .profile = p,
                           .timestamp_ms = ts};
    return tsdb_append(db, &req, err);
}

static void test_store_sync_failure(void **state)
{
    struct fixture *f = *state;
    tsdb_options o;
    tsdb_options_default(&o);
    o.path = f->dir;
    o.retention_ms = 0;
    firn_err err = {0};
    tsdb *db = tsdb_open(&o, &err);
    if (!db)
        fail_msg("open: %s", err.msg);
    pprof_profile *cpu = decode_fixture(FX_CPU);
    const int64_t T = 1700000000000;
    assert_int_equal(append_at(db, cpu, "a", T, &err), 0);
    assert_int_equal(stored_blocks(db), 2);   /* two sample types: two series */

    fault_start(f, NULL);
    int rc = append_at(db, cpu, "a", T + 1000, &err);
    int rc2 = append_at(db, cpu, "b", T, &err);
    assert_true(fault_stop(f) >= 1);
    assert_int_equal(rc, FIRN_EIO);
    assert_int_equal(rc2, FIRN_EIO);
    if (!strstr(err.msg, "Input/output error"))
        fail_msg("the error does not say why: %s", err.msg);
    /* nothing of them is there, not even the new series of b */
    assert_int_equal(stored_blocks(db), 2);
    tsdb_stats s;
    assert_int_equal(tsdb_stats_get(db, &s, &err), 0);
    assert_int_equal(s.series, 2);

    /* the fault stops: the same appends are taken */
    assert_int_equal(append_at(db, cpu, "a", T + 1000, &err), 0);
    assert_int_equal(append_at(db, cpu, "b", T, &err), 0);
    assert_int_equal(stored_blocks(db), 6);
    tsdb_close(db);

    /* and all of it is there after a reopen */
    db = tsdb_open(&o, &err);
    if (!db)
        fail_msg("reopen: %s", err.msg);
    assert_int_equal(stored_blocks(db), 6);
    tsdb_close(db);
    pprof_free(cpu);
}

/* Asynchronous appends whose commits cannot be synced: every one of them is
 * answered with the error, none is stored, and they are taken once the
 * fault stops. */
enum { ASYNC_FAULT_N = 24 };

static void append_all_async(tsdb *db, const pprof_profile *p, async_answers *a,
                             async_slot *slots, int64_t ts)
{
    for (size_t i = 0; i < ASYNC_FAULT_N; i++) {
        char job[16];
        snprintf(job, sizeof job, "j%zu", i);
        firn_label labels[] = {{"job", job}};
        tsdb_append_req req = {.labels = labels, .n_labels = 1, .profile_name = "process_cpu",
                               .profile = p, .timestamp_ms = ts};
        slots[i] = (async_slot){a, i};
        firn_err err = {0};
        if (tsdb_append_async(db, &req, async_answer, &slots[i], &err) != 0)
            fail_msg("append %zu not queued: %s", i, err.msg);
    }
    async_answers_wait(a, ASYNC_FAULT_N);
}

static void test_store_sync_failure_async(void **state)
{
    struct fixture *f = *state;
    tsdb_options o;
    tsdb_options_default(&o);
    o.path = f->dir;
    o.retention_ms = 0;
    firn_err err = {0};
    tsdb *db = tsdb_open(&o, &err);
    if (!db)
        fail_msg("open: %s", err.msg);
    pprof_profile *cpu = decode_fixture(FX_CPU);
    const int64_t T = 1700000000000;
    async_answers *a = malloc(sizeof *a);
    assert_non_null(a);
    async_slot slots[ASYNC_FAULT_N];

    async_answers_init(a);
    fault_start(f, NULL);
    append_all_async(db, cpu, a, slots, T);
    assert_true(fault_stop(f) >= 1);
    for (size_t i = 0; i < ASYNC_FAULT_N; i++) {
        assert_int_equal(a->status[i], FIRN_EIO);
        if (!strstr(a->err[i].msg, "Input/output error"))
            fail_msg("append %zu: the error does not say why: %s", i, a->err[i].msg);
    }
    assert_int_equal(stored_blocks(db), 0);
    tsdb_stats s;
    assert_int_equal(tsdb_stats_get(db, &s, &err), 0);
    assert_int_equal(s.series, 0);
    assert_int_equal(s.append_failures_total, ASYNC_FAULT_N);
    async_answers_destroy(a);

    async_answers_init(a);
    append_all_async(db, cpu, a, slots, T);
    for (size_t i = 0; i < ASYNC_FAULT_N; i++)
        assert_int_equal(a->status[i], 0);
    tsdb_close(db);
    db = tsdb_open(&o, &err);
    if (!db)
        fail_msg("reopen: %s", err.msg);
    assert_int_equal(stored_blocks(db), 2 * ASYNC_FAULT_N);
    tsdb_close(db);
    async_answers_destroy(a);
    free(a);
    pprof_free(cpu);
}

static void test_retention_failure_counted(void **state)
{
    struct fixture *f = *state;
    tsdb_options o;
    tsdb_options_default(&o);
    o.path = f->dir;
    o.retention_ms = 5000;
    o.retention_interval_ms = 3600 * 1000;
    o.partition_ms = 1000;
    firn_err err = {0};
    tsdb *db = tsdb_open(&o, &err);
    if (!db)
        fail_msg("open: %s", err.msg);
    pprof_profile *cpu = decode_fixture(FX_CPU);
    const int64_t T = (firn_now_ms() / 1000 + 1) * 1000;
    for (int i = 0; i < 3; i++)
        assert_int_equal(append_at(db, cpu, "a", T + i * 1000, &err), 0);

    uint64_t deleted = 0;
    fault_start(f, NULL);
    int rc = tsdb_retention_run(db, T + 6500, &deleted, &err);
    assert_true(fault_stop(f) >= 1);
    assert_true(rc < 0);
    tsdb_stats s;
    assert_int_equal(tsdb_stats_get(db, &s, &err), 0);
    assert_int_equal(s.retention_failures_total, 1);
    assert_int_equal(s.blocks, 6);

    assert_int_equal(tsdb_retention_run(db, T + 6500, &deleted, &err), 0);
    assert_int_equal(deleted, 4);
    assert_int_equal(tsdb_stats_get(db, &s, &err), 0);
    assert_int_equal(s.retention_failures_total, 1);
    assert_int_equal(s.blocks, 2);
    tsdb_close(db);
    pprof_free(cpu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_file_directory_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_sync_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_sync_failure_async, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_failure_counted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
