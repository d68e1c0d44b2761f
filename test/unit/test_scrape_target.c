/* test_scrape_target.c -- scrape targets: Prometheus's TestPopulateLabels,
 * TestTargetURL and TestTargetOffset ported, with Parca's per-profile-type
 * URLs, and the first-scrape delay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scrape/scrape.h"

/* ---- fixtures -------------------------------------------------------------- */

enum { CFG_BASIC, CFG_PREFIX, CFG_RELABEL_ADDRESS, CFG_RELABEL_DROP, CFG_PARAMS, CFG_SECONDS,
       N_CFG };

static const char *const CONFIGS[N_CFG] = {
    [CFG_BASIC] = "scrape_configs:\n"
                  "  - job_name: job\n"
                  "    scrape_interval: 1s\n"
                  "    scrape_timeout: 1s\n",
    /* Prometheus's tests set metrics_path /metrics; firn's __metrics_path__
     * is the path prefix. */
    [CFG_PREFIX] = "scrape_configs:\n"
                   "  - job_name: job\n"
                   "    scrape_interval: 1s\n"
                   "    scrape_timeout: 1s\n"
                   "    profiling_config: {path_prefix: /metrics}\n",
    [CFG_RELABEL_ADDRESS] = "scrape_configs:\n"
                            "  - job_name: job\n"
                            "    scrape_interval: 1s\n"
                            "    scrape_timeout: 1s\n"
                            "    relabel_configs:\n"
                            "      - {source_labels: [custom], target_label: __address__,\n"
                            "         action: replace, regex: '(.*)', replacement: '${1}'}\n",
    [CFG_RELABEL_DROP] = "scrape_configs:\n"
                         "  - job_name: job\n"
                         "    scrape_interval: 1s\n"
                         "    scrape_timeout: 1s\n"
                         "    relabel_configs:\n"
                         "      - {source_labels: [custom], regex: drop, action: drop}\n",
    [CFG_PARAMS] = "scrape_configs:\n"
                   "  - job_name: job\n"
                   "    scrape_interval: 10s\n"
                   "    params: {abc: [foo, bar, baz], xyz: [hoo], q: ['a b&c=d/\xc3\xa9~']}\n",
    [CFG_SECONDS] = "scrape_configs:\n"
                    "  - job_name: job\n"
                    "    scheme: https\n"
                    "    scrape_interval: 10s\n"
                    "    params: {seconds: ['30']}\n"
                    "    profiling_config:\n"
                    "      path_prefix: /test/prefix\n"
                    "      pprof_config: {process_cpu: {seconds: 3}}\n",
};

static firn_config *g_cfg[N_CFG];

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < N_CFG; i++) {
        firn_err err = {0};
        g_cfg[i] = config_load_string(CONFIGS[i], strlen(CONFIGS[i]), "t.yml", &err);
        if (!g_cfg[i]) {
            fprintf(stderr, "config %d: %s\n", i, err.msg);
            return -1;
        }
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < N_CFG; i++)
        config_free(g_cfg[i]);
    return 0;
}

static const config_scrape *job(int cfg)
{
    return &g_cfg[cfg]->scrapes[0];
}

static const config_profile_type *profile(const config_scrape *sc, const char *name)
{
    for (size_t i = 0; i < sc->n_profile_types; i++)
        if (strcmp(sc->profile_types[i].name, name) == 0)
            return &sc->profile_types[i];
    fail_msg("no profile type %s", name);
    return NULL;
}

#define MAX_PAIRS 8

/* Label pairs as written in a table, {name, value} until a NULL name. */
static size_t pairs(const char *const (*p)[2], firn_label *out)
{
    size_t n = 0;
    while (n < MAX_PAIRS && p[n][0]) {
        out[n].name = p[n][0];
        out[n].value = p[n][1];
        n++;
    }
    return n;
}

static void assert_labels(const firn_label *l, size_t n, const char *want)
{
    char *got = firn_labels_format(l, n);
    assert_non_null(got);
    bool same = strcmp(got, want) == 0;
    if (!same)
        fprintf(stderr, "got  %s\nwant %s\n", got, want);
    free(got);
    if (!same)
        fail();
}

/* ---- label population: Prometheus's TestPopulateLabels -------------------- */

typedef struct populate_case {
    const char *name;
    int cfg;
    const char *target[MAX_PAIRS][2];
    const char *group[MAX_PAIRS][2];
    const char *discovered;  /* NULL: not checked */
    const char *labels;      /* when kept */
    const char *public_labels;
    bool dropped;
    const char *err;         /* the message, or its prefix when it ends in ": " */
    int64_t interval_ms, timeout_ms;
} populate_case;

static const populate_case POPULATE[] = {
    {"regular population of scrape config options", CFG_PREFIX,
     {{"__address__", "1.2.3.4:1000"}, {"custom", "value"}}, {{0}},
     "{__address__=\"1.2.3.4:1000\", __metrics_path__=\"/metrics\", __scheme__=\"http\", "
     "__scrape_interval__=\"1s\", __scrape_timeout__=\"1s\", custom=\"value\", job=\"job\"}",
     "{__address__=\"1.2.3.4:1000\", __metrics_path__=\"/metrics\", __scheme__=\"http\", "
     "__scrape_interval__=\"1s\", __scrape_timeout__=\"1s\", custom=\"value\", "
     "instance=\"1.2.3.4:1000\", job=\"job\"}",
     "{custom=\"value\", instance=\"1.2.3.4:1000\", job=\"job\"}", false, NULL, 1000, 1000},
    {"pre-defined labels override the scrape config", CFG_PREFIX,
     {{"__address__", "1.2.3.4"}, {"__scheme__", "https"}, {"__metrics_path__", "/custom"},
      {"job", "custom-job"}, {"__scrape_interval__", "2s"}, {"__scrape_timeout__", "2s"}},
     {{0}}, NULL,
     "{__address__=\"1.2.3.4\", __metrics_path__=\"/custom\", __scheme__=\"https\", "
     "__scrape_interval__=\"2s\", __scrape_timeout__=\"2s\", instance=\"1.2.3.4\", "
     "job=\"custom-job\"}",
     "{instance=\"1.2.3.4\", job=\"custom-job\"}", false, NULL, 2000, 2000},
    {"group labels fill what the target lacks", CFG_BASIC,
     {{"__address__", "a:1"}, {"env", "prod"}},
     {{"env", "dev"}, {"team", "x"}, {"__address__", "b:2"}},
     "{__address__=\"a:1\", __scheme__=\"http\", __scrape_interval__=\"1s\", "
     "__scrape_timeout__=\"1s\", env=\"prod\", job=\"job\", team=\"x\"}",
     NULL, "{env=\"prod\", instance=\"a:1\", job=\"job\", team=\"x\"}", false, NULL, 1000,
     1000},
    {"provide instance label", CFG_BASIC,
     {{"__address__", "[::1]"}, {"instance", "custom-instance"}}, {{0}}, NULL,
     "{__address__=\"[::1]\", __scheme__=\"http\", __scrape_interval__=\"1s\", "
     "__scrape_timeout__=\"1s\", instance=\"custom-instance\", job=\"job\"}",
     "{instance=\"custom-instance\", job=\"job\"}", false, NULL, 1000, 1000},
    {"no default port (Prometheus v3)", CFG_BASIC, {{"__address__", "1.2.3.4"}}, {{0}}, NULL,
     NULL, "{instance=\"1.2.3.4\", job=\"job\"}", false, NULL, 1000, 1000},
    {"address label missing", CFG_BASIC, {{"custom", "value"}}, {{0}},
     "{__scheme__=\"http\", __scrape_interval__=\"1s\", __scrape_timeout__=\"1s\", "
     "custom=\"value\", job=\"job\"}",
     NULL, NULL, false, "no address", 0, 0},
    {"address label missing, but added in relabeling", CFG_RELABEL_ADDRESS,
     {{"custom", "host:1234"}}, {{0}}, NULL,
     "{__address__=\"host:1234\", __scheme__=\"http\", __scrape_interval__=\"1s\", "
     "__scrape_timeout__=\"1s\", custom=\"host:1234\", instance=\"host:1234\", job=\"job\"}",
     "{custom=\"host:1234\", instance=\"host:1234\", job=\"job\"}", false, NULL, 1000, 1000},
    {"invalid UTF-8 label", CFG_BASIC, {{"__address__", "1.2.3.4:1000"}, {"custom", "\xbd"}},
     {{0}}, NULL, NULL, NULL, false, "invalid label value for \"custom\": \"\\xbd\"", 0, 0},
    {"invalid duration in interval label", CFG_BASIC,
     {{"__address__", "1.2.3.4:1000"}, {"__scrape_interval__", "2notseconds"}}, {{0}}, NULL,
     NULL, NULL, false, "error parsing scrape interval: ", 0, 0},
    {"invalid duration in timeout label", CFG_BASIC,
     {{"__address__", "1.2.3.4:1000"}, {"__scrape_timeout__", "2notseconds"}}, {{0}}, NULL,
     NULL, NULL, false, "error parsing scrape timeout: ", 0, 0},
    {"0 interval in interval label", CFG_BASIC,
     {{"__address__", "1.2.3.4:1000"}, {"__scrape_interval__", "0s"}}, {{0}}, NULL, NULL,
     NULL, false, "scrape interval cannot be 0", 0, 0},
    {"0 duration in timeout label", CFG_BASIC,
     {{"__address__", "1.2.3.4:1000"}, {"__scrape_timeout__", "0s"}}, {{0}}, NULL, NULL,
     NULL, false, "scrape timeout cannot be 0", 0, 0},
    /* Prometheus refuses this ("scrape timeout cannot be greater than scrape
     * interval"); firn's config accepts it per job, for Parca's CPU profiles. */
    {"timeout above interval is accepted", CFG_BASIC,
     {{"__address__", "1.2.3.4:1000"}, {"__scrape_interval__", "1s"},
      {"__scrape_timeout__", "2s"}},
     {{0}}, NULL, NULL, "{instance=\"1.2.3.4:1000\", job=\"job\"}", false, NULL, 1000, 2000},
    {"meta labels are removed after relabeling", CFG_BASIC,
     {{"__address__", "a:1"}, {"__meta_foo", "bar"}, {"__tmp_x", "y"}}, {{0}},
     "{__address__=\"a:1\", __meta_foo=\"bar\", __scheme__=\"http\", "
     "__scrape_interval__=\"1s\", __scrape_timeout__=\"1s\", __tmp_x=\"y\", job=\"job\"}",
     "{__address__=\"a:1\", __scheme__=\"http\", __scrape_interval__=\"1s\", "
     "__scrape_timeout__=\"1s\", __tmp_x=\"y\", instance=\"a:1\", job=\"job\"}",
     "{instance=\"a:1\", job=\"job\"}", false, NULL, 1000, 1000},
    {"relabeling drops the target", CFG_RELABEL_DROP,
     {{"__address__", "a:1"}, {"custom", "drop"}}, {{0}},
     "{__address__=\"a:1\", __scheme__=\"http\", __scrape_interval__=\"1s\", "
     "__scrape_timeout__=\"1s\", custom=\"drop\", job=\"job\"}",
     NULL, NULL, true, NULL, 0, 0},
    {"relabeling keeps another target", CFG_RELABEL_DROP,
     {{"__address__", "a:1"}, {"custom", "keep"}}, {{0}}, NULL, NULL,
     "{custom=\"keep\", instance=\"a:1\", job=\"job\"}", false, NULL, 1000, 1000},
    {"params become __param_ labels", CFG_PARAMS,
     {{"__address__", "a:1"}, {"__param_xyz", "mine"}}, {{0}},
     "{__address__=\"a:1\", __param_abc=\"foo\", __param_q=\"a b&c=d/\xc3\xa9~\", "
     "__param_xyz=\"mine\", __scheme__=\"http\", __scrape_interval__=\"10s\", "
     "__scrape_timeout__=\"10s\", job=\"job\"}",
     NULL, "{instance=\"a:1\", job=\"job\"}", false, NULL, 10000, 10000},
    {"a URL as address", CFG_BASIC, {{"__address__", "http://a:1/metrics"}}, {{0}}, NULL,
     NULL, NULL, false, "\"http://a:1/metrics\" is not a valid hostname", 0, 0},
};

static void test_populate_labels(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof POPULATE / sizeof *POPULATE; i++) {
        const populate_case *c = &POPULATE[i];
        print_message("case: %s\n", c->name);
        firn_label target[MAX_PAIRS], group[MAX_PAIRS];
        size_t n_target = pairs(c->target, target), n_group = pairs(c->group, group);
        firn_arena *arena = firn_arena_new(0);
        assert_non_null(arena);
        scrape_target t;
        firn_err err = {0};
        int rc = scrape_target_labels(job(c->cfg), target, n_target, group, n_group, arena, &t,
                                      &err);
        if (c->err) {
            assert_int_equal(rc, FIRN_EINVAL);
            size_t len = strlen(c->err);
            if (len >= 2 && strcmp(c->err + len - 2, ": ") == 0)
                assert_memory_equal(err.msg, c->err, len);
            else
                assert_string_equal(err.msg, c->err);
        } else {
            if (rc != 0)
                fail_msg("%s: %s", c->name, err.msg);
            assert_int_equal(t.dropped, c->dropped);
        }
        if (c->discovered)
            assert_labels(t.discovered, t.n_discovered, c->discovered);
        if (!c->err && !c->dropped) {
            if (c->labels)
                assert_labels(t.labels, t.n_labels, c->labels);
            assert_labels(t.public_labels, t.n_public, c->public_labels);
            assert_int_equal(t.interval_ms, c->interval_ms);
            assert_int_equal(t.timeout_ms, c->timeout_ms);
        }
        if (c->dropped) {
            assert_null(t.labels);
            assert_int_equal(t.n_public, 0);
        }
        firn_arena_free(arena);
    }
}

/* Discovery hands over what it finds; a target past the relabel cap is
 * refused, not truncated. */
static void test_populate_labels_too_many(void **state)
{
    (void)state;
    size_t n = FIRN_RELABEL_LABELS_MAX + 1;
    firn_label *l = calloc(n, sizeof *l);
    assert_non_null(l);
    for (size_t i = 0; i < n; i++) {
        l[i].name = "x";
        l[i].value = "y";
    }
    firn_arena *arena = firn_arena_new(0);
    assert_non_null(arena);
    scrape_target t;
    firn_err err = {0};
    assert_int_equal(scrape_target_labels(job(CFG_BASIC), l, n, NULL, 0, arena, &t, &err),
                     FIRN_ETOOBIG);
    assert_int_equal(scrape_target_labels(job(CFG_BASIC), l, 1, l, n - 5, arena, &t, &err),
                     FIRN_ETOOBIG);
    firn_arena_free(arena);
    free(l);
}

/* ---- URL: Prometheus's TestTargetURL, and Parca's profile paths ------------ */

typedef struct url_case {
    const char *name;
    int cfg;
    const char *target[MAX_PAIRS][2];
    const char *profile;
    const char *url;
} url_case;

static const url_case URLS[] = {
    {"params overridden and added by __param_ labels", CFG_PARAMS,
     {{"__address__", "example.com:1234"}, {"__param_abc", "overwrite"},
      {"__param_cde", "huu"}},
     "memory",
     "http://example.com:1234/debug/pprof/allocs?abc=overwrite&abc=bar&abc=baz&cde=huu"
     "&q=a+b%26c%3Dd%2F%C3%A9~&xyz=hoo"},
    {"delta CPU gets seconds (interval - 1s)", CFG_PARAMS,
     {{"__address__", "example.com:1234"}, {"__param_abc", "overwrite"},
      {"__param_cde", "huu"}},
     "process_cpu",
     "http://example.com:1234/debug/pprof/profile?abc=overwrite&abc=bar&abc=baz&cde=huu"
     "&q=a+b%26c%3Dd%2F%C3%A9~&seconds=9&xyz=hoo"},
    {"no params: no query", CFG_BASIC, {{"__address__", "1.2.3.4"}}, "goroutine",
     "http://1.2.3.4/debug/pprof/goroutine"},
    {"path prefix, scheme, and the profile's seconds win", CFG_SECONDS,
     {{"__address__", "h:1"}, {"__param_seconds", "60"}}, "process_cpu",
     "https://h:1/test/prefix/debug/pprof/profile?seconds=3"},
    {"the config's seconds param stays on non-delta types", CFG_SECONDS,
     {{"__address__", "h:1"}}, "block", "https://h:1/test/prefix/debug/pprof/block?seconds=30"},
    {"relabeled __metrics_path__ and __scheme__", CFG_PREFIX,
     {{"__address__", "h:1"}, {"__metrics_path__", "/custom"}, {"__scheme__", "https"}},
     "mutex", "https://h:1/custom/debug/pprof/mutex"},
};

static void test_target_url(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof URLS / sizeof *URLS; i++) {
        const url_case *c = &URLS[i];
        print_message("case: %s\n", c->name);
        firn_label target[MAX_PAIRS];
        size_t n = pairs(c->target, target);
        firn_arena *arena = firn_arena_new(0);
        assert_non_null(arena);
        scrape_target t;
        firn_err err = {0};
        if (scrape_target_labels(job(c->cfg), target, n, NULL, 0, arena, &t, &err) != 0)
            fail_msg("%s: %s", c->name, err.msg);
        char *url = scrape_target_url(&t, job(c->cfg), profile(job(c->cfg), c->profile));
        assert_non_null(url);
        assert_string_equal(url, c->url);
        free(url);
        firn_arena_free(arena);
    }
}

/* ---- offsets: Prometheus's TestTargetOffset, and stability ----------------- */

static uint64_t offset_of(const char *address, uint64_t seed, int64_t interval_ms)
{
    firn_label l = {"__address__", address};
    firn_arena *arena = firn_arena_new(0);
    assert_non_null(arena);
    scrape_target t;
    firn_err err = {0};
    const config_scrape *sc = job(CFG_BASIC);
    if (scrape_target_labels(sc, &l, 1, NULL, 0, arena, &t, &err) != 0)
        fail_msg("%s", err.msg);
    char *url = scrape_target_url(&t, sc, profile(sc, "process_cpu"));
    assert_non_null(url);
    uint64_t off = scrape_target_offset_ms(&t, url, seed, interval_ms);
    free(url);
    firn_arena_free(arena);
    return off;
}

static void test_target_offset_distribution(void **state)
{
    (void)state;
    enum { TARGETS = 10000, BUCKETS = 10 };
    const int64_t interval = 10000;
    const uint64_t seed = 0x1234567890abcdefULL;
    int buckets[BUCKETS] = {0};
    for (int i = 0; i < TARGETS; i++) {
        char addr[32];
        snprintf(addr, sizeof addr, "instance-%d", i);
        uint64_t off = offset_of(addr, seed, interval);
        assert_true(off < (uint64_t)interval);
        buckets[off / (interval / BUCKETS)]++;
    }
    const int want = TARGETS / BUCKETS, tolerance = want * 15 / 100;
    for (int b = 0; b < BUCKETS; b++)
        if (buckets[b] < want - tolerance || buckets[b] > want + tolerance)
            fail_msg("bucket %d holds %d targets, want %d +- %d", b, buckets[b], want,
                     tolerance);
}

static void test_target_offset_stable(void **state)
{
    (void)state;
    uint64_t a = offset_of("1.2.3.4:7070", 42, 10000);
    assert_int_equal(offset_of("1.2.3.4:7070", 42, 10000), a);
    /* Pinned, so that a change of hash (which moves every target's phase
     * after an upgrade) is a deliberate one. */
    assert_int_equal(a, 8632);
    assert_int_not_equal(offset_of("1.2.3.4:7071", 42, 10000), a);
    assert_int_not_equal(offset_of("1.2.3.4:7070", 43, 10000), a);
    assert_int_equal(offset_of("1.2.3.4:7070", 42, 0), 0);

    /* The URL is part of the hash: two profile types of one target differ. */
    firn_label l = {"__address__", "1.2.3.4:7070"};
    firn_arena *arena = firn_arena_new(0);
    assert_non_null(arena);
    scrape_target t;
    firn_err err = {0};
    assert_int_equal(scrape_target_labels(job(CFG_BASIC), &l, 1, NULL, 0, arena, &t, &err), 0);
    assert_int_not_equal(scrape_target_offset_ms(&t, "http://1.2.3.4:7070/a", 42, 1000000),
                         scrape_target_offset_ms(&t, "http://1.2.3.4:7070/b", 42, 1000000));
    firn_arena_free(arena);
}

/* ---- first-scrape delay ---------------------------------------------------- */

static void test_next_delay(void **state)
{
    (void)state;
    static const struct {
        int64_t now, interval;
        uint64_t offset;
        int64_t want;
    } CASES[] = {
        {0, 10000, 0, 10000},     {0, 10000, 3000, 3000},  {2500, 10000, 3000, 500},
        {3000, 10000, 3000, 10000}, {3500, 10000, 3000, 9500}, {9999, 10000, 0, 1},
        {1700000000123, 15000, 14999, 9876}, {-1, 10000, 0, 1},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++)
        assert_int_equal(scrape_next_delay_ms(CASES[i].now, CASES[i].interval, CASES[i].offset),
                         CASES[i].want);
    /* Whenever it is computed, the first scrape lands on the target's phase. */
    for (int64_t now = 1700000000000; now < 1700000000000 + 25000; now += 7) {
        int64_t d = scrape_next_delay_ms(now, 10000, 1234);
        assert_true(d > 0 && d <= 10000);
        assert_int_equal((now + d) % 10000, 1234);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_populate_labels),
        cmocka_unit_test(test_populate_labels_too_many),
        cmocka_unit_test(test_target_url),
        cmocka_unit_test(test_target_offset_distribution),
        cmocka_unit_test(test_target_offset_stable),
        cmocka_unit_test(test_next_delay),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
