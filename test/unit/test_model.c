/* test_model.c -- errors, arenas, the u64 map and file helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model.h"

static void test_err_format_and_prefix(void **state)
{
    (void)state;
    firn_err err = {0};
    assert_int_equal(firn_errf(&err, FIRN_EINVAL, "sample %d: bad", 3), FIRN_EINVAL);
    assert_int_equal(err.code, FIRN_EINVAL);
    assert_string_equal(err.msg, "sample 3: bad");
    firn_err_prefix(&err, "file %s", "x.pb.gz");
    assert_string_equal(err.msg, "file x.pb.gz: sample 3: bad");
    firn_err_clear(&err);
    assert_int_equal(err.code, FIRN_OK);
    assert_string_equal(err.msg, "");
    /* NULL err is allowed and still returns the code. */
    assert_int_equal(firn_errf(NULL, FIRN_EIO, "x"), FIRN_EIO);
}

static void test_err_prefix_truncates_safely(void **state)
{
    (void)state;
    firn_err err = {0};
    char long_msg[FIRN_ERR_MSG_MAX * 2];
    memset(long_msg, 'a', sizeof long_msg - 1);
    long_msg[sizeof long_msg - 1] = '\0';
    firn_errf(&err, FIRN_EINVAL, "%s", long_msg);
    assert_int_equal(strlen(err.msg), FIRN_ERR_MSG_MAX - 1);
    firn_err_prefix(&err, "%s", long_msg);
    assert_true(strlen(err.msg) < FIRN_ERR_MSG_MAX);
}

static void test_arena_alignment_and_sizes(void **state)
{
    (void)state;
    firn_arena *a = firn_arena_new(1024);
    assert_non_null(a);
    for (size_t size = 1; size < 600; size += 37) {
        unsigned char *p = firn_arena_alloc(a, size);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 0xab, size); /* ASan checks the whole block is ours */
    }
    /* Larger than a chunk: gets its own. */
    unsigned char *big = firn_arena_alloc(a, 100000);
    assert_non_null(big);
    memset(big, 1, 100000);
    assert_true(firn_arena_bytes(a) >= 100000);
    int *z = firn_arena_calloc(a, 100, sizeof(int));
    for (int i = 0; i < 100; i++)
        assert_int_equal(z[i], 0);
    char *s = firn_arena_strndup(a, "hello world", 5);
    assert_string_equal(s, "hello");
    /* Overflowing requests fail instead of wrapping. */
    assert_null(firn_arena_calloc(a, SIZE_MAX / 2, 4));
    assert_null(firn_arena_alloc(a, SIZE_MAX));
    firn_arena_free(a);
}

static void test_u64map(void **state)
{
    (void)state;
    firn_u64map m;
    assert_int_equal(firn_u64map_init(&m, 4), 0);
    /* Keys spread across the range, including 0 and UINT64_MAX; forces growth. */
    for (uint32_t i = 0; i < 5000; i++) {
        uint64_t key = (uint64_t)i * 0x9e3779b97f4a7c15ULL;
        assert_int_equal(firn_u64map_put(&m, key, i, NULL), 1);
    }
    assert_int_equal(firn_u64map_put(&m, UINT64_MAX, 7, NULL), 1);
    assert_int_equal(m.len, 5001);
    for (uint32_t i = 0; i < 5000; i++) {
        uint32_t v = 0;
        assert_int_equal(firn_u64map_get(&m, (uint64_t)i * 0x9e3779b97f4a7c15ULL, &v), 1);
        assert_int_equal(v, i);
    }
    uint32_t existing = 0;
    assert_int_equal(firn_u64map_put(&m, 0, 99, &existing), 0);
    assert_int_equal(existing, 0); /* key 0 was inserted with value 0 */
    uint32_t v;
    assert_int_equal(firn_u64map_get(&m, 12345, &v), 0);
    firn_u64map_destroy(&m);
}

static void test_file_roundtrip_and_cap(void **state)
{
    (void)state;
    char dir[] = "/tmp/firn-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/f.bin", dir);
    unsigned char data[100000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 7);
    firn_err err = {0};
    assert_int_equal(firn_write_file_atomic(path, data, sizeof data, &err), 0);
    unsigned char *back;
    size_t len;
    assert_int_equal(firn_read_file(path, sizeof data, &back, &len, &err), 0);
    assert_int_equal(len, sizeof data);
    assert_memory_equal(back, data, len);
    free(back);
    assert_int_equal(firn_read_file(path, sizeof data - 1, &back, &len, &err), FIRN_ETOOBIG);
    assert_non_null(strstr(err.msg, "larger than the cap"));
    unlink(path);
    assert_int_equal(firn_read_file(path, 10, &back, &len, &err), FIRN_EIO);
    assert_non_null(strstr(err.msg, "No such file"));
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_format_and_prefix),
        cmocka_unit_test(test_err_prefix_truncates_safely),
        cmocka_unit_test(test_arena_alignment_and_sizes),
        cmocka_unit_test(test_u64map),
        cmocka_unit_test(test_file_roundtrip_and_cap),
    };
    return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
