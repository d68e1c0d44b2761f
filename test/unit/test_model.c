/* test_model.c -- errors, arenas, the u64 map, file helpers, logging, labels,
 * regexes, label matchers and profile types. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

/* A reset arena keeps one chunk of its chunk size (and only that), and
 * what it hands out next is whole and aligned. */
static void test_arena_reset_keeps_one_chunk(void **state)
{
    (void)state;
    firn_arena *a = firn_arena_new(1024);
    firn_arena_reset(a);   /* nothing yet: nothing kept */
    assert_int_equal(firn_arena_bytes(a), 0);
    for (int round = 0; round < 3; round++) {
        for (size_t size = 1; size < 600; size += 37)
            memset(firn_arena_alloc(a, size), 0xab, size);   /* several chunks */
        memset(firn_arena_alloc(a, 100000), 1, 100000);     /* one of its own */
        size_t before = firn_arena_bytes(a);
        assert_true(before > 100000 + 2 * 1024);
        firn_arena_reset(a);
        size_t kept = firn_arena_bytes(a);
        assert_true(kept >= 1024 && kept < 2 * 1024);   /* one chunk and its header */
        unsigned char *p = firn_arena_alloc(a, 1000);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 0xcd, 1000);   /* ASan checks it is ours */
        assert_int_equal(firn_arena_bytes(a), kept);   /* from the kept chunk */
    }
    firn_arena_free(a);
}

/* Run fn(arg) in a child: it must abort with the out-of-memory message of
 * model/alloc.h on standard error. */
static void assert_oom_abort(void (*fn)(void *), void *arg)
{
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], STDERR_FILENO);
        close(pipefd[0]);
        fn(arg);
        _exit(0);   /* not reached when fn aborts */
    }
    close(pipefd[1]);
    char out[256] = {0};
    size_t len = 0;
    ssize_t n;
    while (len < sizeof out - 1 && (n = read(pipefd[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)n;
    close(pipefd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_non_null(strstr(out, "firn: out of memory ("));
}

static void grow_impossible(void *v)
{
    size_t huge = SIZE_MAX / 4;
    (void)firn_grow(v, huge, &huge, 16, 4);
}

static void xcalloc_overflow(void *unused)
{
    (void)unused;
    (void)firn_xcalloc(SIZE_MAX / 2, 4);
}

static void xstrndup_impossible(void *unused)
{
    (void)unused;
    (void)firn_xstrndup("", SIZE_MAX);
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
    /* Cleared: empty, same capacity, usable again. */
    size_t cap = m.cap;
    firn_u64map_clear(&m);
    assert_int_equal(m.len, 0);
    assert_int_equal(m.cap, cap);
    assert_int_equal(firn_u64map_get(&m, UINT64_MAX, &v), 0);
    assert_int_equal(firn_u64map_put(&m, UINT64_MAX, 3, NULL), 1);
    assert_int_equal(firn_u64map_get(&m, UINT64_MAX, &v), 1);
    assert_int_equal(v, 3);
    firn_u64map_destroy(&m);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void test_sort(void **state)
{
    (void)state;
    firn_sort(NULL, 0, sizeof(int), cmp_int);  /* UBSan stops qsort(NULL, 0, ...) */
    int one = 7;
    firn_sort(&one, 1, sizeof one, cmp_int);
    assert_int_equal(one, 7);
    int v[] = {3, -1, 2, 2, 0};
    firn_sort(v, 5, sizeof *v, cmp_int);
    static const int want[] = {-1, 0, 2, 2, 3};
    assert_memory_equal(v, want, sizeof want);
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

/* A path that is no regular file is written in place, never renamed
 * over: `firnctl ... -o /dev/null` as root replaced /dev/null with a file.
 * A FIFO stands in for the device (a reader holds it open). */
static void test_file_write_through(void **state)
{
    (void)state;
    char dir[] = "/tmp/firn-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    int rd = open(path, O_RDONLY | O_NONBLOCK);
    assert_true(rd >= 0);
    firn_err err = {0};
    assert_int_equal(firn_write_file_atomic(path, "hello", 5, &err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    char got[8];
    assert_int_equal(read(rd, got, sizeof got), 5);
    assert_memory_equal(got, "hello", 5);
    close(rd);
    /* nothing else was left in the directory (no temporary file) */
    DIR *d = opendir(dir);
    assert_non_null(d);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d));)
        entries += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(entries, 1);
    unlink(path);
    rmdir(dir);
}

/* ---- logging ------------------------------------------------------------ */

static void test_log_level_parse(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int want;
    } cases[] = {
        {"debug", FIRN_LOG_DEBUG}, {"info", FIRN_LOG_INFO}, {"warn", FIRN_LOG_WARN},
        {"error", FIRN_LOG_ERROR}, {"warning", -1},         {"INFO", -1},
        {"", -1},                  {NULL, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(firn_log_level_parse(cases[i].name), cases[i].want);
}

static void test_log_quote(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t size;
        const char *want;
    } cases[] = {
        {"abc", 64, "abc"},
        {"/var/lib/firn", 64, "/var/lib/firn"},
        {"a\\b", 64, "a\\b"},                 /* a backslash alone needs no quotes */
        {"h\xc3\xa9llo", 64, "h\xc3\xa9llo"}, /* UTF-8 is kept */
        {"", 64, "\"\""},
        {NULL, 64, "\"\""},
        {"a b", 64, "\"a b\""},
        {"a=b", 64, "\"a=b\""},
        {"a\"b", 64, "\"a\\\"b\""},
        {"x\\ y", 64, "\"x\\\\ y\""},
        {"a\nb", 64, "\"a\\nb\""},
        {"\t", 64, "\"\\t\""},
        {"\x01", 64, "\"\\u0001\""},
        /* Truncated to fit: bare, quoted, never inside an escape or a rune. */
        {"abcdef", 4, "abc"},
        {"a b c d", 6, "\"a b\""},
        {"\"\"\"", 5, "\"\\\"\""},
        {"\xc3\xa9", 2, ""},
        {"a \xc3\xa9", 5, "\"a \""},
        {"a b", 2, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        memset(buf, 'Z', sizeof buf);
        const char *got = firn_log_quote(buf, cases[i].size, cases[i].in);
        assert_ptr_equal(got, buf);
        assert_string_equal(got, cases[i].want);
    }
    char one = 'Z';
    firn_log_quote(&one, 0, "x");   /* size 0: nothing written */
    assert_int_equal(one, 'Z');
}

/* Run fn with standard error sent to a file; returns what was written
 * (malloc'd). */
static char *capture_stderr(void (*fn)(void))
{
    char path[] = "/tmp/firn-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    fn();
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    off_t len = lseek(fd, 0, SEEK_END);
    assert_true(len >= 0);
    char *out = malloc((size_t)len + 1);
    assert_non_null(out);
    assert_int_equal(pread(fd, out, (size_t)len, 0), len);
    out[len] = '\0';
    close(fd);
    return out;
}

static void log_some_lines(void)
{
    firn_log_set_level(FIRN_LOG_WARN);
    firn_log(FIRN_LOG_INFO, "tsdb", "dropped", NULL);
    firn_log(FIRN_LOG_WARN, "tsdb", "disk \"full\"\n", "path=%s series=%zu", "/x", (size_t)3);
    firn_log(FIRN_LOG_ERROR, "scrape pool", "failed", NULL);
    firn_log_set_level(FIRN_LOG_DEBUG);
    firn_log(FIRN_LOG_DEBUG, "http", "", NULL);
    firn_log_set_level(FIRN_LOG_INFO);
    firn_log(FIRN_LOG_DEBUG, "http", "dropped too", NULL);
}

static void test_log_lines(void **state)
{
    (void)state;
    char *out = capture_stderr(log_some_lines);
    static const char *const want[] = {
        "level=warn component=tsdb msg=\"disk \\\"full\\\"\\n\" path=/x series=3",
        "level=error component=\"scrape pool\" msg=\"failed\"",
        "level=debug component=http msg=\"\"",
    };
    firn_err err = {0};
    firn_regex *ts = firn_regex_compile(
        "ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z ", &err);
    assert_non_null(ts);
    char *line = out;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        const char *rest = strstr(line, " level=");
        assert_non_null(rest);
        assert_int_equal(firn_regex_match(ts, line, (size_t)(rest - line) + 1, &err), 1);
        assert_string_equal(rest + 1, want[i]);
        line = nl + 1;
    }
    assert_string_equal(line, "");   /* the dropped lines are not there */
    firn_regex_free(ts);
    free(out);
}

static void log_long_lines(void)
{
    char big[10000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    firn_log(FIRN_LOG_INFO, "t", big, "k=v");
    firn_log(FIRN_LOG_INFO, "t", "short", "k=%s", big);
    /* A value of 2-byte runes cut at the end must not leave half a rune. */
    char runes[9001];
    for (size_t i = 0; i < 9000; i += 2)
        memcpy(runes + i, "\xc3\xa9", 2);
    runes[9000] = '\0';
    firn_log(FIRN_LOG_INFO, "t", "short", "kk=%s", runes);
}

static void test_log_long_lines_are_cut(void **state)
{
    (void)state;
    char *out = capture_stderr(log_long_lines);
    char *line = out;
    for (int i = 0; i < 3; i++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        size_t len = (size_t)(nl - line) + 1;
        assert_true(len <= 4096);
        assert_true(len > 4000);
        if (i == 0) {
            assert_memory_equal(nl - 2, "x\"", 2);   /* msg closed, kv dropped */
        } else {
            assert_non_null(strstr(line, "msg=\"short\" k"));
            assert_true(firn_utf8_valid(line, len - 1));
        }
        line = nl + 1;
    }
    assert_string_equal(line, "");
    free(out);
}

/* ---- labels ------------------------------------------------------------- */

static void test_label_name_valid(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        bool want;
    } cases[] = {
        {"job", true},      {"__name__", true}, {"_", true},        {"a1_B2", true},
        {"A", true},        {"", false},        {"1a", false},      {"a-b", false},
        {"a.b", false},     {"a b", false},     {"\xc3\xa9", false}, {NULL, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(firn_label_name_valid(cases[i].name), cases[i].want);
}

static void test_utf8_valid(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool want;
    } cases[] = {
        {"", true},
        {"plain ascii", true},
        {"\xc3\xa9", true},              /* U+00E9 */
        {"\xe2\x82\xac", true},          /* U+20AC */
        {"\xf0\x9f\x98\x80", true},      /* U+1F600 */
        {"\xf4\x8f\xbf\xbf", true},      /* U+10FFFF */
        {"\xef\xbf\xbd", true},          /* U+FFFD itself */
        {"\xff", false},
        {"\x80", false},                 /* a lone continuation byte */
        {"\xc0\x80", false},             /* overlong NUL */
        {"\xe0\x80\xaf", false},         /* overlong "/" */
        {"\xed\xa0\x80", false},         /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", false},     /* past U+10FFFF */
        {"\xe2\x82", false},             /* truncated */
        {"a\xc3", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(firn_utf8_valid(cases[i].s, strlen(cases[i].s)), cases[i].want);
    /* Only len bytes are looked at. */
    assert_true(firn_utf8_valid("ab\xff", 2));
}

static void test_labels_normalize_sorts_and_drops_empty(void **state)
{
    (void)state;
    firn_label labels[] = {
        {"job", "api"}, {"zone", ""}, {"__name__", "cpu"}, {"instance", "a:1"},
        {"empty", NULL}, {"az", "1"},
    };
    size_t n = sizeof labels / sizeof labels[0];
    firn_err err = {0};
    assert_int_equal(firn_labels_normalize(labels, &n, &err), 0);
    assert_int_equal(n, 4);
    static const char *const names[] = {"__name__", "az", "instance", "job"};
    for (size_t i = 0; i < n; i++)
        assert_string_equal(labels[i].name, names[i]);
    assert_string_equal(firn_labels_get(labels, n, "job"), "api");
    assert_string_equal(firn_labels_get(labels, n, "__name__"), "cpu");
    assert_string_equal(firn_labels_get(labels, n, "instance"), "a:1");
    assert_null(firn_labels_get(labels, n, "zone"));
    assert_null(firn_labels_get(labels, n, "a"));
    assert_null(firn_labels_get(labels, n, "zzz"));
    assert_null(firn_labels_get(labels, n, NULL));
    assert_null(firn_labels_get(labels, 0, "job"));

    /* A twin with an empty value is an absent label, not a duplicate. */
    firn_label twins[] = {{"job", "a"}, {"job", ""}};
    n = 2;
    assert_int_equal(firn_labels_normalize(twins, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(twins[0].value, "a");

    n = 0;
    assert_int_equal(firn_labels_normalize(NULL, &n, &err), 0);
}

static void test_labels_normalize_errors(void **state)
{
    (void)state;
    static char long_name[FIRN_LABEL_NAME_MAX + 2];
    static char max_name[FIRN_LABEL_NAME_MAX + 1];
    static char long_value[FIRN_LABEL_VALUE_MAX + 2];
    memset(long_name, 'a', sizeof long_name - 1);
    memset(max_name, 'a', sizeof max_name - 1);
    memset(long_value, 'v', sizeof long_value - 1);
    static const struct {
        firn_label labels[3];
        size_t n;
        int code;
        const char *msg;   /* NULL: valid */
    } cases[] = {
        {{{"1a", "x"}}, 1, FIRN_EINVAL,
         "label name \"1a\": must match [a-zA-Z_][a-zA-Z0-9_]*"},
        {{{"job", "x"}, {"a-b", ""}}, 2, FIRN_EINVAL,
         "label name \"a-b\": must match [a-zA-Z_][a-zA-Z0-9_]*"},
        {{{"", "x"}}, 1, FIRN_EINVAL, "label name \"\": must match [a-zA-Z_][a-zA-Z0-9_]*"},
        {{{"a\nb", "x"}}, 1, FIRN_EINVAL,
         "label name \"a\\nb\": must match [a-zA-Z_][a-zA-Z0-9_]*"},
        {{{NULL, "x"}}, 1, FIRN_EINVAL, "label 0: no name"},
        {{{"job", "a"}, {"zone", "b"}, {"job", "c"}}, 3, FIRN_EINVAL,
         "duplicate label name \"job\""},
        {{{"job", "a\xff"}}, 1, FIRN_EINVAL, "label \"job\": value is not valid UTF-8"},
        {{{"job", long_value}}, 1, FIRN_ETOOBIG, "label \"job\": value longer than 65536 bytes"},
        {{{long_name, "x"}}, 1, FIRN_ETOOBIG, NULL},
        {{{max_name, "x"}}, 1, FIRN_OK, NULL},
        {{{"job", long_value + 1}}, 1, FIRN_OK, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        firn_label labels[3];
        memcpy(labels, cases[i].labels, sizeof labels);
        size_t n = cases[i].n;
        firn_err err = {0};
        int rc = firn_labels_normalize(labels, &n, &err);
        assert_int_equal(rc, cases[i].code);
        if (rc != FIRN_OK)
            assert_int_equal(n, cases[i].n);   /* untouched on error */
        if (cases[i].msg)
            assert_string_equal(err.msg, cases[i].msg);
    }
}

static void test_labels_normalize_count_cap(void **state)
{
    (void)state;
    enum { N = FIRN_LABELS_MAX + 1 };
    static char names[N][16];
    static firn_label labels[N + 1];
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "l%zu", N - i);
        labels[i] = (firn_label){names[i], "v"};
    }
    labels[N] = (firn_label){"empty", ""};
    firn_err err = {0};
    size_t n = N - 1;   /* exactly the cap */
    assert_int_equal(firn_labels_normalize(labels, &n, &err), 0);
    assert_int_equal(n, FIRN_LABELS_MAX);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(labels[i - 1].name, labels[i].name) < 0);
    for (size_t i = 0; i < N; i++)
        labels[i] = (firn_label){names[i], "v"};
    n = N + 1;   /* one over, and an empty one that does not count */
    assert_int_equal(firn_labels_normalize(labels, &n, &err), FIRN_ETOOBIG);
    assert_string_equal(err.msg, "label set has 257 labels, more than 256");
}

static void test_labels_format(void **state)
{
    (void)state;
    static const struct {
        firn_label labels[3];
        size_t n;
        const char *want;
    } cases[] = {
        {{{NULL, NULL}}, 0, "{}"},
        {{{"a", "1"}}, 1, "{a=\"1\"}"},
        {{{"a", "1"}, {"b", "x\"y"}}, 2, "{a=\"1\", b=\"x\\\"y\"}"},
        {{{"__name__", "cpu"}, {"job", "api"}, {"z", "q"}}, 3,
         "{__name__=\"cpu\", job=\"api\", z=\"q\"}"},
        {{{"v", "back\\slash"}}, 1, "{v=\"back\\\\slash\"}"},
        {{{"v", "a\nb\tc\r"}}, 1, "{v=\"a\\nb\\tc\\r\"}"},
        {{{"v", "\a\b\f\v"}}, 1, "{v=\"\\a\\b\\f\\v\"}"},
        {{{"v", "\x01\x1f\x7f"}}, 1, "{v=\"\\x01\\x1f\\x7f\"}"},
        {{{"v", "caf\xc3\xa9 \xf0\x9f\x98\x80"}}, 1, "{v=\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}"},
        {{{"v", "\xc2\x85"}}, 1, "{v=\"\\u0085\"}"},             /* C1 control */
        {{{"v", "\xc2\xa0"}}, 1, "{v=\"\\u00a0\"}"},             /* no-break space */
        {{{"v", "\xe2\x80\x8b"}}, 1, "{v=\"\\u200b\"}"},         /* zero-width space */
        {{{"v", "\xef\xbb\xbf"}}, 1, "{v=\"\\ufeff\"}"},         /* BOM */
        {{{"v", "\xf3\xa0\x80\x81"}}, 1, "{v=\"\\U000e0001\"}"}, /* language tag */
        {{{"v", "\xff" "a\xe2\x82"}}, 1, "{v=\"\\xffa\\xe2\\x82\"}"},
        {{{"v", NULL}}, 1, "{v=\"\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = firn_labels_format(cases[i].labels, cases[i].n);
        assert_non_null(got);
        assert_string_equal(got, cases[i].want);
        free(got);
    }
}

/* ---- regexes ------------------------------------------------------------ */

static void test_regex_compile_errors(void **state)
{
    (void)state;
    static const struct {
        const char *pattern;
        const char *msg;   /* NULL: only the code is checked */
    } cases[] = {
        {"a(b", "invalid regex \"a(b\": offset 3: missing closing parenthesis"},
        {"a)|(b", "invalid regex \"a)|(b\": offset 1: unmatched closing parenthesis"},
        {"*", NULL},
        {"[a-", NULL},
        {"a\\", NULL},
        {"a{2,1}", NULL},
        {"(?<n>a", NULL},
        {"\"q\"(", "invalid regex \"\\\"q\\\"(\": offset 4: missing closing parenthesis"},
        {"\\C", NULL},        /* one code unit, would break UTF-8 */
        {"$**", NULL},        /* a grouped assertion still cannot take "**" */
        {NULL, "invalid regex: no pattern"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        firn_err err = {0};
        assert_null(firn_regex_compile(cases[i].pattern, &err));
        assert_int_equal(err.code, FIRN_EINVAL);
        if (cases[i].msg)
            assert_string_equal(err.msg, cases[i].msg);
        else
            assert_non_null(strstr(err.msg, "invalid regex \""));
    }
    assert_null(firn_regex_compile("(", NULL));   /* NULL err is allowed */

    size_t big = 64 * 1024 + 1;
    char *pattern = malloc(big + 1);
    assert_non_null(pattern);
    memset(pattern, 'a', big);
    pattern[big] = '\0';
    firn_err err = {0};
    assert_null(firn_regex_compile(pattern, &err));
    assert_int_equal(err.code, FIRN_ETOOBIG);
    assert_non_null(strstr(err.msg, "...\": longer than 65536 bytes"));
    /* Under the cap, PCRE2 may still find the compiled form too large. */
    pattern[big - 1] = '\0';
    assert_null(firn_regex_compile(pattern, &err));
    assert_int_equal(err.code, FIRN_ETOOBIG);
    assert_non_null(strstr(err.msg, "...\": offset "));
    assert_non_null(strstr(err.msg, ": regular expression is too large"));
    /* At the cap, a pattern that compiles small is fine. */
    memcpy(pattern, "(?#", 3);
    memcpy(pattern + big - 3, ")b", 2);
    firn_regex *re = firn_regex_compile(pattern, &err);
    if (!re)
        fail_msg("%s", err.msg);
    assert_int_equal(firn_regex_match(re, "b", 1, &err), 1);
    firn_regex_free(re);
    free(pattern);
    firn_regex_free(NULL);
}

static void test_regex_anchoring_and_flags(void **state)
{
    (void)state;
    static const struct {
        const char *pattern;
        const char *s;
        int want;
    } cases[] = {
        {"foo|bar", "foo", 1},
        {"foo|bar", "bar", 1},
        {"foo|bar", "foobar", 0},        /* the whole value must match */
        {"foo|foobar", "foobar", 1},     /* ... trying every alternative */
        {"foo", "xfoo", 0},
        {"foo", "foox", 0},
        {".*", "", 1},
        {".*", "anything", 1},
        {".+", "", 0},
        {"", "", 1},
        {"", "a", 0},
        {"a.b", "a\nb", 1},              /* "." matches newline, (?s) */
        {"(?-s)a.b", "a\nb", 0},         /* ... unless turned off */
        {"a$", "a\n", 0},                /* "$" is the end of the text */
        {"^a$", "a", 1},
        {"(?m)a$\\n", "a\n", 1},
        {"(?i)FOO", "foo", 1},
        {"(?i)FOO", "fOo", 1},
        {"FOO", "foo", 0},
        {"(?i)\xc3\x89t\xc3\xa9", "\xc3\xa9T\xc3\x89", 1},   /* Unicode case folding */
        {".", "\xc3\xa9", 1},            /* one rune, two bytes */
        {"..", "\xc3\xa9", 0},
        {"\\d+", "123", 1},
        {"\\d", "\xd9\xa3", 0},          /* \d is ASCII, as in RE2 */
        {"[[:alpha:]]+", "abc", 1},
        {"[]a]+", "]a]", 1},
        {"a{,3}", "a{,3}", 1},           /* not a repeat, in RE2 either */
        {"\\Qa.b", "a.b", 1},            /* \Q to the end of the pattern */
        {"\\Qa.b", "axb", 0},
        {"\\Qa)|(b", "a)|(b", 1},
        {"a\\z", "a", 1},
        /* Quantified assertions, accepted by RE2. */
        {"$*bar", "bar", 1},
        {"$*bar", "foo-bar", 0},
        {"bar^*", "bar", 1},
        {"bar^+", "bar", 0},
        {"(?:^)+bar", "bar", 1},
        {"\\b*bar", "bar", 1},
        {"[$*]+", "$*", 1},              /* in a class: not an assertion */
        {"\\Q$*", "$*", 1},              /* quoted: not an assertion */
        {"[[:digit:]$]+", "1$", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        firn_err err = {0};
        firn_regex *re = firn_regex_compile(cases[i].pattern, &err);
        if (!re)
            fail_msg("case %zu: %s", i, err.msg);
        int got = firn_regex_match(re, cases[i].s, strlen(cases[i].s), &err);
        if (got != cases[i].want)
            fail_msg("case %zu: /%s/ on \"%s\": got %d, want %d", i, cases[i].pattern,
                     cases[i].s, got, cases[i].want);
        firn_regex_free(re);
    }
}

static void test_regex_subject_edge_cases(void **state)
{
    (void)state;
    firn_err err = {0};
    /* More capture groups than FIRN_REGEX_MAX_GROUPS still match. */
    enum { GROUPS = FIRN_REGEX_MAX_GROUPS + 6 };
    char groups[GROUPS * 3 + 1], subject[GROUPS + 1];
    for (size_t i = 0; i < GROUPS; i++) {
        memcpy(groups + 3 * i, "(a)", 3);
        subject[i] = 'a';
    }
    groups[GROUPS * 3] = '\0';
    subject[GROUPS] = '\0';
    firn_regex *many = firn_regex_compile(groups, &err);
    assert_non_null(many);
    assert_int_equal(firn_regex_match(many, subject, GROUPS, &err), 1);
    assert_int_equal(firn_regex_match(many, subject, GROUPS - 1, &err), 0);
    firn_regex_free(many);

    firn_regex *re = firn_regex_compile("a.c", &err);
    assert_non_null(re);
    /* len, not the NUL, ends the subject; a NUL inside is a character. */
    assert_int_equal(firn_regex_match(re, "abcdef", 3, &err), 1);
    assert_int_equal(firn_regex_match(re, "a\0c", 3, &err), 1);
    /* Invalid UTF-8 does not match "." but is not an error. */
    assert_int_equal(firn_regex_match(re, "a\xff" "c", 3, &err), 0);
    firn_regex_free(re);
    re = firn_regex_compile(".*", &err);
    assert_non_null(re);
    assert_int_equal(firn_regex_match(re, NULL, 0, &err), 1);
    firn_regex_free(re);
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void test_regex_match_limit(void **state)
{
    (void)state;
    static const char *const patterns[] = {"(a+)+$", "(a|aa)+", "(a*)*b", "(?:a|a)+c"};
    char subject[4097];
    memset(subject, 'a', sizeof subject - 2);
    subject[sizeof subject - 2] = '!';
    subject[sizeof subject - 1] = '\0';
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        firn_err err = {0};
        firn_regex *re = firn_regex_compile(patterns[i], &err);
        assert_non_null(re);
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        int rc = firn_regex_match(re, subject, strlen(subject), &err);
        double took = seconds_since(&start);
        assert_true(rc <= 0);
        if (rc < 0) {
            assert_int_equal(rc, FIRN_ETOOBIG);
            assert_non_null(strstr(err.msg, "regex \""));
            assert_non_null(strstr(err.msg, "limit"));
        }
        if (took > 5.0)
            fail_msg("/%s/ took %.1f s", patterns[i], took);
        firn_regex_free(re);
    }
}

static void test_regex_long_subject(void **state)
{
    (void)state;
    /* A repeated group over a value at the label value cap: deep
     * backtracking state, still answered. */
    size_t len = FIRN_LABEL_VALUE_MAX;
    char *s = malloc(len + 1);
    assert_non_null(s);
    for (size_t i = 0; i < len; i++)
        s[i] = i % 2 ? 'a' : 'b';
    s[len] = '\0';
    firn_err err = {0};
    firn_regex *re = firn_regex_compile("(?:[ab]c?)*", &err);
    assert_non_null(re);
    int rc = firn_regex_match(re, s, len, &err);
    if (rc < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(rc, 1);
    firn_regex_free(re);
    re = firn_regex_compile(".*b.*a", &err);
    assert_non_null(re);
    assert_int_equal(firn_regex_match(re, s, len, &err), 1);
    firn_regex_free(re);
    free(s);
}

struct regex_thread_arg {
    const firn_regex *re;
    int matched;
    int errors;
};

static void *regex_thread(void *p)
{
    struct regex_thread_arg *arg = p;
    for (int i = 0; i < 2000; i++) {
        char s[32];
        int n = snprintf(s, sizeof s, "job-%d", i);
        int rc = firn_regex_match(arg->re, s, (size_t)n, NULL);
        if (rc < 0)
            arg->errors++;
        else
            arg->matched += rc;
    }
    return NULL;
}

static void test_regex_threads(void **state)
{
    (void)state;
    firn_err err = {0};
    firn_regex *re = firn_regex_compile("job-(\\d*[05])", &err);
    assert_non_null(re);
    pthread_t threads[4];
    struct regex_thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct regex_thread_arg){re, 0, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, regex_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(args[i].errors, 0);
        assert_int_equal(args[i].matched, 400);
    }
    firn_regex_free(re);
}

/* ---- label matchers ----------------------------------------------------- */

static void test_matcher(void **state)
{
    (void)state;
    /* Prometheus's model/labels/matcher_test.go TestMatcher, then more. */
    static const struct {
        firn_match_type type;
        const char *value;
        const char *input;   /* NULL: the label is absent */
        bool match;
    } cases[] = {
        {FIRN_MATCH_EQ, "bar", "bar", true},
        {FIRN_MATCH_EQ, "bar", "foo-bar", false},
        {FIRN_MATCH_NE, "bar", "bar", false},
        {FIRN_MATCH_NE, "bar", "foo-bar", true},
        {FIRN_MATCH_RE, "bar", "bar", true},
        {FIRN_MATCH_RE, "bar", "foo-bar", false},
        {FIRN_MATCH_RE, ".*bar", "foo-bar", true},
        {FIRN_MATCH_NRE, "bar", "bar", false},
        {FIRN_MATCH_NRE, "bar", "foo-bar", true},
        {FIRN_MATCH_NRE, ".*bar", "foo-bar", false},
        {FIRN_MATCH_RE, "$*bar", "foo-bar", false},
        {FIRN_MATCH_RE, "bar^+", "foo-bar", false},
        {FIRN_MATCH_RE, "$+bar", "foo-bar", false},
        /* An absent label is "". */
        {FIRN_MATCH_EQ, "", NULL, true},
        {FIRN_MATCH_EQ, "", "", true},
        {FIRN_MATCH_EQ, "bar", NULL, false},
        {FIRN_MATCH_NE, "", NULL, false},
        {FIRN_MATCH_NE, "bar", NULL, true},
        {FIRN_MATCH_RE, ".*", NULL, true},
        {FIRN_MATCH_RE, ".+", NULL, false},
        {FIRN_MATCH_RE, "bar|", NULL, true},
        {FIRN_MATCH_NRE, ".*", NULL, false},
        {FIRN_MATCH_NRE, ".+", NULL, true},
        {FIRN_MATCH_NRE, "", "x", true},
        /* Anchoring, newline and case. */
        {FIRN_MATCH_RE, "foo|bar", "foobar", false},
        {FIRN_MATCH_NRE, "foo|bar", "foobar", true},
        {FIRN_MATCH_RE, "foo.*", "foo\nbar", true},
        {FIRN_MATCH_RE, "(?i)FOO", "foo", true},
        {FIRN_MATCH_NRE, "(?i)FOO", "Foo", false},
        {FIRN_MATCH_EQ, "Foo", "foo", false},
        {FIRN_MATCH_RE, "a.b", "a\nb", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        firn_matcher m;
        firn_err err = {0};
        if (firn_matcher_init(&m, cases[i].type, "test_label_name", cases[i].value, &err) != 0)
            fail_msg("case %zu: %s", i, err.msg);
        assert_string_equal(m.name, "test_label_name");
        assert_string_equal(m.value, cases[i].value);
        assert_int_equal(m.re != NULL,
                         cases[i].type == FIRN_MATCH_RE || cases[i].type == FIRN_MATCH_NRE);
        if (firn_matcher_matches(&m, cases[i].input) != cases[i].match)
            fail_msg("case %zu: test_label_name%s\"%s\" on %s%s%s: want %d", i,
                     firn_match_type_str(cases[i].type), cases[i].value,
                     cases[i].input ? "\"" : "", cases[i].input ? cases[i].input : "absent",
                     cases[i].input ? "\"" : "", cases[i].match);
        firn_matcher_destroy(&m);
        assert_null(m.name);
        assert_null(m.re);
        firn_matcher_destroy(&m);   /* twice is harmless */
    }
}

static void test_matcher_errors(void **state)
{
    (void)state;
    firn_matcher m;
    firn_err err = {0};
    assert_int_equal(firn_matcher_init(&m, FIRN_MATCH_RE, "job", "a(b", &err), FIRN_EINVAL);
    assert_string_equal(err.msg, "label \"job\": invalid regex \"a(b\": offset 3: "
                                 "missing closing parenthesis");
    /* Nothing is left allocated: the struct is zeroed. */
    assert_null(m.name);
    assert_null(m.value);
    assert_null(m.re);
    firn_matcher_destroy(&m);
    assert_int_equal(firn_matcher_init(&m, FIRN_MATCH_NRE, "job", "(", NULL), FIRN_EINVAL);
    assert_null(m.name);
    /* "=" does not compile its value: a(b is just a string. */
    assert_int_equal(firn_matcher_init(&m, FIRN_MATCH_EQ, "job", "a(b", &err), 0);
    assert_true(firn_matcher_matches(&m, "a(b"));
    firn_matcher_destroy(&m);
    assert_int_equal(firn_matcher_init(&m, (firn_match_type)7, "job", "x", &err), FIRN_EINVAL);
    assert_string_equal(err.msg, "matcher: unknown match type 7");
    assert_int_equal(firn_matcher_init(&m, FIRN_MATCH_EQ, NULL, "x", &err), FIRN_EINVAL);
    assert_int_equal(firn_matcher_init(&m, FIRN_MATCH_EQ, "job", NULL, &err), FIRN_EINVAL);
    firn_matcher zeroed = {0};
    firn_matcher_destroy(&zeroed);
}

static void test_matcher_match_limit(void **state)
{
    (void)state;
    char subject[4097];
    memset(subject, 'a', sizeof subject - 2);
    subject[sizeof subject - 2] = '!';
    subject[sizeof subject - 1] = '\0';
    firn_matcher re, nre;
    assert_int_equal(firn_matcher_init(&re, FIRN_MATCH_RE, "x", "(a+)+$", NULL), 0);
    assert_int_equal(firn_matcher_init(&nre, FIRN_MATCH_NRE, "x", "(a+)+$", NULL), 0);
    /* Whether the limit is hit or not, the regex has not matched. */
    assert_false(firn_matcher_matches(&re, subject));
    assert_true(firn_matcher_matches(&nre, subject));
    firn_matcher_destroy(&re);
    firn_matcher_destroy(&nre);
}

static void test_match_type_str(void **state)
{
    (void)state;
    assert_string_equal(firn_match_type_str(FIRN_MATCH_EQ), "=");
    assert_string_equal(firn_match_type_str(FIRN_MATCH_NE), "!=");
    assert_string_equal(firn_match_type_str(FIRN_MATCH_RE), "=~");
    assert_string_equal(firn_match_type_str(FIRN_MATCH_NRE), "!~");
    assert_string_equal(firn_match_type_str((firn_match_type)9), "?");
}

/* ---- profile types ------------------------------------------------------ */

static void test_profile_type_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        const char *field[5];
        bool delta;
        const char *msg;   /* non-NULL: an error */
    } cases[] = {
        {"process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta",
         {"process_cpu", "cpu", "nanoseconds", "cpu", "nanoseconds"}, true, NULL},
        {"memory:inuse_space:bytes:space:bytes",
         {"memory", "inuse_space", "bytes", "space", "bytes"}, false, NULL},
        {"goroutine:goroutine:count::", {"goroutine", "goroutine", "count", "", ""}, false, NULL},
        {"x:y::::delta", {"x", "y", "", "", ""}, true, NULL},
        {"x:y", {NULL}, false,
         "profile type \"x:y\": want "
         "name:sample_type:sample_unit:period_type:period_unit[:delta]"},
        {"", {NULL}, false,
         "profile type \"\": want name:sample_type:sample_unit:period_type:period_unit[:delta]"},
        {"a:b:c:d:e:delta:f", {NULL}, false,
         "profile type \"a:b:c:d:e:delta:f\": want "
         "name:sample_type:sample_unit:period_type:period_unit[:delta]"},
        {":cpu:ns:cpu:ns", {NULL}, false, "profile type \":cpu:ns:cpu:ns\": empty name"},
        {"p::ns:cpu:ns", {NULL}, false, "profile type \"p::ns:cpu:ns\": empty sample type"},
        {"p:cpu:ns:cpu:ns:cumulative", {NULL}, false,
         "profile type \"p:cpu:ns:cpu:ns:cumulative\": sixth field \"cumulative\" is not "
         "\"delta\""},
        {"p:cpu:ns:cpu:ns:", {NULL}, false,
         "profile type \"p:cpu:ns:cpu:ns:\": sixth field \"\" is not \"delta\""},
        {"p:cpu:ns:cpu:ns:deltas", {NULL}, false, NULL},
        {NULL, {NULL}, false, "profile type: none given"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        firn_profile_type pt;
        firn_err err = {0};
        int rc = firn_profile_type_parse(cases[i].s, &pt, &err);
        if (!cases[i].field[0]) {
            assert_int_equal(rc, FIRN_EINVAL);
            if (cases[i].msg)
                assert_string_equal(err.msg, cases[i].msg);
            continue;
        }
        if (rc != 0)
            fail_msg("case %zu: %s", i, err.msg);
        for (int f = 0; f < 5; f++) {
            assert_int_equal(pt.len[f], strlen(cases[i].field[f]));
            assert_memory_equal(pt.field[f], cases[i].field[f], pt.len[f]);
            /* Fields point into the parsed string. */
            assert_true(pt.field[f] >= cases[i].s &&
                        pt.field[f] <= cases[i].s + strlen(cases[i].s));
        }
        assert_int_equal(pt.delta, cases[i].delta);
    }
}

static void test_profile_type_format(void **state)
{
    (void)state;
    static const struct {
        const char *field[5];
        bool delta;
        const char *want;   /* NULL: rejected with -1 */
    } cases[] = {
        {{"process_cpu", "cpu", "nanoseconds", "cpu", "nanoseconds"}, true,
         "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta"},
        {{"memory", "alloc_space", "bytes", "space", "bytes"}, false,
         "memory:alloc_space:bytes:space:bytes"},
        {{"goroutine", "goroutine", "count", "", ""}, false, "goroutine:goroutine:count::"},
        {{"goroutine", "goroutine", "count", NULL, NULL}, false, "goroutine:goroutine:count::"},
        {{"a:b", "cpu", "ns", "cpu", "ns"}, false, NULL},
        {{"p", "cpu", "ns", "cpu", "n:s"}, true, NULL},
        {{"", "cpu", "ns", "cpu", "ns"}, false, NULL},
        {{"p", "", "ns", "cpu", "ns"}, false, NULL},
        {{NULL, "cpu", "ns", "cpu", "ns"}, false, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *const *f = cases[i].field;
        char buf[128];
        int n = firn_profile_type_format(buf, sizeof buf, f[0], f[1], f[2], f[3], f[4],
                                         cases[i].delta);
        if (!cases[i].want) {
            assert_int_equal(n, -1);
            continue;
        }
        assert_int_equal(n, (int)strlen(cases[i].want));
        assert_string_equal(buf, cases[i].want);
        /* snprintf semantics: the length needed, truncated output. */
        char small[8];
        assert_int_equal(firn_profile_type_format(small, sizeof small, f[0], f[1], f[2], f[3],
                                                  f[4], cases[i].delta),
                         n);
        assert_int_equal(strlen(small), sizeof small - 1);
        assert_int_equal(firn_profile_type_format(NULL, 0, f[0], f[1], f[2], f[3], f[4],
                                                  cases[i].delta),
                         n);

        /* Round trip: parse gives back the fields. */
        firn_profile_type pt;
        firn_err err = {0};
        assert_int_equal(firn_profile_type_parse(buf, &pt, &err), 0);
        for (int k = 0; k < 5; k++) {
            const char *want = f[k] ? f[k] : "";
            assert_int_equal(pt.len[k], strlen(want));
            assert_memory_equal(pt.field[k], want, pt.len[k]);
        }
        assert_int_equal(pt.delta, cases[i].delta);
    }
}

/* ---- growing arrays ---------------------------------------------------------- */

static void test_grow(void **state)
{
    (void)state;
    int *v = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; i < 100; i++) {
        int *g = firn_grow(v, n, &cap, sizeof *g, 4);
        assert_non_null(g);
        v = g;
        v[n++] = i;
        assert_true(cap >= n);
    }
    assert_int_equal(cap, 128);  /* 4, 8, ..., doubled only when full */
    for (int i = 0; i < 100; i++)
        assert_int_equal(v[i], i);
    /* Room left: the same array, cap untouched. */
    assert_ptr_equal(firn_grow(v, n, &cap, sizeof *v, 4), v);
    assert_int_equal(cap, 128);
    /* A size that cannot be is an out-of-memory abort, not NULL. */
    assert_oom_abort(grow_impossible, v);
    free(v);
}

/* The arena's twin: the elements are copied to a block twice as big, the
 * old one is left to the arena. */
static void test_arena_grow(void **state)
{
    (void)state;
    firn_arena *a = firn_arena_new(0);
    int *v = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; i < 100; i++) {
        v = firn_arena_grow(a, v, n, &cap, sizeof *v, 4);
        v[n++] = i;
        assert_true(cap >= n);
    }
    assert_int_equal(cap, 128);
    for (int i = 0; i < 100; i++)
        assert_int_equal(v[i], i);
    assert_ptr_equal(firn_arena_grow(a, v, n, &cap, sizeof *v, 4), v);
    assert_int_equal(cap, 128);
    firn_arena_free(a);
}

/* The policy: an allocation firn sizes itself never returns NULL. */
static void test_xalloc(void **state)
{
    (void)state;
    char *p = firn_xmalloc(0);   /* a pointer to free, not NULL */
    assert_non_null(p);
    p = firn_xrealloc(p, 10);
    memcpy(p, "123456789", 10);
    p = firn_xreallocarray(p, 5, 4);
    assert_string_equal(p, "123456789");
    free(p);
    int *z = firn_xcalloc(8, sizeof *z);
    for (int i = 0; i < 8; i++)
        assert_int_equal(z[i], 0);
    free(z);
    char *s = firn_xstrndup("hello world", 5);
    assert_string_equal(s, "hello");
    free(s);
    s = firn_xstrdup("x");
    assert_string_equal(s, "x");
    free(s);
    s = firn_xasprintf("%s-%d", "a", 7);
    assert_string_equal(s, "a-7");
    free(s);
    char *d = firn_xmemdup("ab\0c", 4);
    assert_memory_equal(d, "ab\0c", 4);
    free(d);
    assert_oom_abort(xcalloc_overflow, NULL);
    assert_oom_abort(xstrndup_impossible, NULL);
}

/* ---- durations ------------------------------------------------------------- */

/* Prometheus's common/model TestParseDuration table: input, value, and how
 * model.Duration prints it back (weeks and years only when exact). */
static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t ms;
        const char *out;
    } cases[] = {
        {"0", 0, "0s"},         {"0s", 0, "0s"},          {"324ms", 324, "324ms"},
        {"3s", 3000, "3s"},     {"5m", 300000, "5m"},     {"1h", 3600000, "1h"},
        {"4d", 345600000, "4d"}, {"4d1h", 349200000, "4d1h"}, {"14d", 1209600000, "2w"},
        {"3w", 1814400000, "3w"}, {"3w2d1h", 1990800000, "23d1h"},
        {"15d", 1296000000, "15d"}, {"10y", 315360000000, "10y"},
        {"1h30m", 5400000, "1h30m"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = -1;
        firn_err err = {0};
        assert_int_equal(firn_duration_parse(cases[i].in, &ms, &err), 0);
        assert_int_equal(ms, cases[i].ms);
        char buf[64];
        firn_duration_format(buf, sizeof buf, ms);
        assert_string_equal(buf, cases[i].out);
    }
    const char *bad[] = {"", "1", "1.5h", "-1s", "1h1h", "1m1h", "1x", "s", "3.5d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms;
        firn_err err = {0};
        assert_int_equal(firn_duration_parse(bad[i], &ms, &err), FIRN_EINVAL);
        assert_non_null(strstr(err.msg, "duration"));
    }
}

/* ---- buffers and the text exposition format ------------------------------ */

static void test_buf(void **state)
{
    (void)state;
    firn_buf b = {0};
    firn_buf_puts(&b, "a");
    firn_buf_printf(&b, "%d-%s", 42, "x");
    char big[1000];
    memset(big, 'y', sizeof big);
    firn_buf_append(&b, big, sizeof big);
    size_t len;
    char *s = firn_buf_take(&b, &len);
    assert_int_equal(len, 5 + sizeof big);
    assert_memory_equal(s, "a42-x", 5);
    assert_int_equal(s[len], '\0');
    free(s);
    assert_null(b.data);
    s = firn_buf_take(&b, &len);  /* empty: still a string */
    assert_string_equal(s, "");
    free(s);
    b.failed = true;
    firn_buf_puts(&b, "lost");
    assert_null(firn_buf_take(&b, &len));

    /* A cap: the append that would pass it fails, the bytes stay as they
     * were, later appends are no-ops, and take hands back NULL. */
    firn_buf c;
    firn_buf_init(&c, 8);
    firn_buf_puts(&c, "12345678");   /* exactly the cap */
    assert_false(c.failed);
    assert_int_equal(c.len, 8);
    firn_buf_puts(&c, "9");
    assert_true(c.failed);
    assert_int_equal(c.len, 8);
    assert_string_equal(c.data, "12345678");
    firn_buf_puts(&c, "");
    firn_buf_printf(&c, "%s", "");
    assert_int_equal(c.len, 8);
    assert_null(firn_buf_take(&c, &len));
    assert_int_equal(len, 0);
    /* take keeps the cap: a long printf is refused before it is written. */
    assert_int_equal(c.max, 8);
    char wide[300];
    memset(wide, 'w', sizeof wide - 1);
    wide[sizeof wide - 1] = '\0';
    firn_buf_printf(&c, "%s", wide);
    assert_true(c.failed);
    assert_null(c.data);
    firn_buf_free(&c);
    assert_int_equal(c.max, 8);
    assert_false(c.failed);
}

static void test_metrics_text(void **state)
{
    (void)state;
    firn_buf b = {0};
    firn_metrics_header(&b, "x_total", "counter", "Help with \\ and\nnewline.");
    firn_label l[2] = {{"a", "q\"uote\\"}, {"b", "line\nbreak"}};
    firn_metrics_sample(&b, "x_total", l, 2, 3);
    firn_metrics_sample(&b, "x_total", NULL, 0, 0.25);
    firn_metrics_sample(&b, "x_total", NULL, 0, NAN);
    firn_metrics_sample(&b, "x_total", NULL, 0, -INFINITY);
    firn_histogram h;
    const double bounds[] = {0.1, 1, 120, 1e6};
    firn_histogram_init(&h, bounds, 4);
    firn_histogram_observe(&h, 0.05);
    firn_histogram_observe(&h, 0.1);  /* le is inclusive */
    firn_histogram_observe(&h, 50);
    firn_histogram_observe(&h, 2e6);
    firn_label hl = {"handler", "/m"};
    firn_histogram_write(&b, "d_seconds", &hl, 1, &h);
    char *s = firn_buf_take(&b, NULL);
    assert_string_equal(s,
        "# HELP x_total Help with \\\\ and\\nnewline.\n"
        "# TYPE x_total counter\n"
        "x_total{a=\"q\\\"uote\\\\\",b=\"line\\nbreak\"} 3\n"
        "x_total 0.25\n"
        "x_total NaN\n"
        "x_total -Inf\n"
        "d_seconds_bucket{handler=\"/m\",le=\"0.1\"} 2\n"
        "d_seconds_bucket{handler=\"/m\",le=\"1\"} 2\n"
        "d_seconds_bucket{handler=\"/m\",le=\"120\"} 3\n"
        "d_seconds_bucket{handler=\"/m\",le=\"1e+06\"} 3\n"
        "d_seconds_bucket{handler=\"/m\",le=\"+Inf\"} 4\n"
        "d_seconds_sum{handler=\"/m\"} 2.00005015e+06\n"
        "d_seconds_count{handler=\"/m\"} 4\n");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_format_and_prefix),
        cmocka_unit_test(test_err_prefix_truncates_safely),
        cmocka_unit_test(test_arena_alignment_and_sizes),
        cmocka_unit_test(test_arena_reset_keeps_one_chunk),
        cmocka_unit_test(test_u64map),
        cmocka_unit_test(test_xalloc),
        cmocka_unit_test(test_sort),
        cmocka_unit_test(test_file_roundtrip_and_cap),
        cmocka_unit_test(test_file_write_through),
        cmocka_unit_test(test_log_level_parse),
        cmocka_unit_test(test_log_quote),
        cmocka_unit_test(test_log_lines),
        cmocka_unit_test(test_log_long_lines_are_cut),
        cmocka_unit_test(test_label_name_valid),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_labels_normalize_sorts_and_drops_empty),
        cmocka_unit_test(test_labels_normalize_errors),
        cmocka_unit_test(test_labels_normalize_count_cap),
        cmocka_unit_test(test_labels_format),
        cmocka_unit_test(test_regex_compile_errors),
        cmocka_unit_test(test_regex_anchoring_and_flags),
        cmocka_unit_test(test_regex_subject_edge_cases),
        cmocka_unit_test(test_regex_match_limit),
        cmocka_unit_test(test_regex_long_subject),
        cmocka_unit_test(test_regex_threads),
        cmocka_unit_test(test_matcher),
        cmocka_unit_test(test_matcher_errors),
        cmocka_unit_test(test_matcher_match_limit),
        cmocka_unit_test(test_match_type_str),
        cmocka_unit_test(test_profile_type_parse),
        cmocka_unit_test(test_profile_type_format),
        cmocka_unit_test(test_grow),
        cmocka_unit_test(test_arena_grow),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_metrics_text),
    };
    return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
