/* test_scrape_manager.c -- the scrape manager against its contract in
 * scrape/scrape.h, with real HTTP: the targets are routes of a web/ server
 * on 127.0.0.1 serving generated profiles, and profiles land in a real store
 * in a temporary directory.
 *
 * Intervals are short (100-200 ms) so conditions are reached quickly; every
 * wait polls a condition with a deadline (wait_until), never sleeps a fixed
 * time in place of one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixtures.h"
#include "h2o_lsan.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ingest/ingest.h"
#include "scrape/scrape.h"
#include "tsdb/tsdb.h"
#include "web/web.h"

/* ---- the fake target ------------------------------------------------------ */

static _Atomic int64_t allocs_served;  /* how many /allocs answers so far */

/* A Go-shaped allocs profile with two stacks: main;alloc grows by one
 * object of 100 bytes per request (cumulative), main;keep holds 1 object
 * of 64 bytes in use. */
static pprof_profile *allocs_profile(int64_t n)
{
    static const char *const types[4][2] = {{"alloc_objects", "count"}, {"alloc_space", "bytes"},
                                             {"inuse_objects", "count"}, {"inuse_space", "bytes"}};
    pprof_builder *b = pprof_builder_new(4);
    for (size_t i = 0; i < 4; i++)
        pprof_builder_sample_type(b, i, types[i][0], types[i][1]);
    pprof_builder_period(b, "space", "bytes", 524288);
    pprof_function mf = {.name = pprof_builder_string(b, "main", 4)};
    pprof_line ml = {.function = pprof_builder_function(b, &mf), .line = 1};
    pprof_location main_loc = {.mapping = PPROF_NONE, .lines = &ml, .n_lines = 1};
    uint32_t root = pprof_builder_location(b, &main_loc);
    const char *fn[2] = {"alloc", "keep"};
    const int64_t v[2][4] = {{n, n * 100, 0, 0}, {1, 64, 1, 64}};
    for (size_t i = 0; i < 2; i++) {
        pprof_function f = {.name = pprof_builder_string(b, fn[i], strlen(fn[i]))};
        pprof_line ln = {.function = pprof_builder_function(b, &f), .line = 2};
        pprof_location l = {.mapping = PPROF_NONE, .lines = &ln, .n_lines = 1};
        uint32_t stack[2] = {pprof_builder_location(b, &l), root};
        pprof_builder_sample(b, stack, 2, v[i], NULL, 0);
    }
    firn_err err = {0};
    return pprof_builder_finish(b, &err);
}

static void serve_profile(http_response *resp, pprof_profile *p)
{
    unsigned char *out = NULL;
    size_t len = 0;
    firn_err err = {0};
    if (!p || pprof_encode(p, -1, &out, &len, &err) < 0) {
        pprof_free(p);
        http_respond_text(resp, 500, "could not build the profile");
        return;
    }
    pprof_free(p);
    resp->status = 200;
    resp->content_type = "application/octet-stream";
    resp->body = (char *)out;
    resp->body_len = len;
}

static void handle_allocs(void *ctx, const http_request *req, http_response *resp)
{
    (void)ctx, (void)req;
    serve_profile(resp, allocs_profile(atomic_fetch_add(&allocs_served, 1) + 1));
}

/* Bearer-protected allocs: 401 unless the token is "s3cret". */
static void handle_auth_allocs(void *ctx, const http_request *req, http_response *resp)
{
    const char *auth = http_request_header(req, "authorization");
    if (!auth || strcmp(auth, "Bearer s3cret") != 0) {
        http_respond_text(resp, 401, "Unauthorized");
        return;
    }
    handle_allocs(ctx, req, resp);
}

static void handle_garbage(void *ctx, const http_request *req, http_response *resp)
{
    (void)ctx, (void)req;
    http_respond_text(resp, 200, "not a profile");
}

typedef struct fixture {
    http_server *web;
    int port;
    char *dir;
    tsdb *db;
    scrape_manager *m;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    firn_err err = {0};
    http_options wo;
    http_options_default(&wo);
    wo.listen_address = "127.0.0.1:0";
    f->web = http_new(&wo, &err);
    if (!f->web)
        fail_msg("http_new: %s", err.msg);
    http_route(f->web, "GET", "/debug/pprof/allocs", 0, handle_allocs, NULL, &err);
    http_route(f->web, "GET", "/auth/debug/pprof/allocs", 0, handle_auth_allocs, NULL, &err);
    http_route(f->web, "GET", "/garbage/debug/pprof/allocs", 0, handle_garbage, NULL, &err);
    if (http_start(f->web, &err) < 0)
        fail_msg("http_start: %s", err.msg);
    f->port = http_port(f->web);
    f->dir = temp_dir("scrape");
    tsdb_options to;
    tsdb_options_default(&to);
    to.path = f->dir;
    f->db = tsdb_open(&to, &err);
    if (!f->db)
        fail_msg("tsdb_open: %s", err.msg);
    scrape_options so;
    scrape_options_default(&so);
    so.db = f->db;
    f->m = scrape_manager_new(&so, &err);
    if (!f->m)
        fail_msg("scrape_manager_new: %s", err.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    scrape_manager_free(f->m);
    tsdb_close(f->db);
    http_stop(f->web);
    remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------ */

/* Apply YAML in which every "PORT" is replaced by the fake target's port. */
static void apply(fixture *f, const char *yaml)
{
    char text[8192], port[16];
    snprintf(port, sizeof port, "%d", f->port);
    size_t o = 0;
    for (const char *p = yaml; *p && o < sizeof text - 16;) {
        if (strncmp(p, "PORT", 4) == 0) {
            o += (size_t)snprintf(text + o, sizeof text - o, "%s", port);
            p += 4;
        } else {
            text[o++] = *p++;
        }
    }
    text[o] = '\0';
    firn_err err = {0};
    firn_config *cfg = config_load_string(text, o, "test.yml", &err);
    if (!cfg)
        fail_msg("config: %s", err.msg);
    assert_int_equal(scrape_manager_apply(f->m, cfg, &err), 0);
}

/* The status of the loop of pool for profile, copied into out (false when
 * there is none). */
typedef struct loop_view {
    scrape_health health;
    char last_error[512];
    int64_t last_scrape_ms;
    char url[512];
    int n_active, n_dropped;
} loop_view;

static bool view(fixture *f, const char *pool, const char *profile, const char *instance,
                 loop_view *out)
{
    scrape_status st;
    firn_err err = {0};
    assert_int_equal(scrape_manager_status(f->m, &st, &err), 0);
    bool found = false;
    memset(out, 0, sizeof *out);
    out->n_active = (int)st.n_active;
    out->n_dropped = (int)st.n_dropped;
    for (size_t i = 0; i < st.n_active; i++) {
        const scrape_loop_status *s = &st.active[i];
        const char *inst = firn_labels_get(s->labels, s->n_labels, "instance");
        if (strcmp(s->pool, pool) == 0 && strcmp(s->profile_name, profile) == 0 &&
            (!instance || (inst && strcmp(inst, instance) == 0))) {
            out->health = s->health;
            snprintf(out->last_error, sizeof out->last_error, "%s", s->last_error);
            out->last_scrape_ms = s->last_scrape_ms;
            snprintf(out->url, sizeof out->url, "%s", s->url);
            found = true;
        }
    }
    scrape_status_free(&st);
    return found;
}

/* Poll cond every 20 ms for up to 10 s. */
#define wait_until(cond)                                                     \
    do {                                                                     \
        int64_t deadline_ = firn_mono_ms() + 10000;                                \
        while (!(cond) && firn_mono_ms() < deadline_)                              \
            usleep(20000);                                                   \
        assert_true(cond);                                                   \
    } while (0)

struct total_acc {
    size_t n;
    int64_t *totals;
};

static int collect_total(void *ctx, const tsdb_block *b)
{
    struct total_acc *a = ctx;
    if (a->totals && a->n < 64)
        a->totals[a->n] = b->total;
    a->n++;
    return 0;
}

/* Stored profiles of the series named name with label job=job: their count
 * and the totals of each, oldest first (at most 64). */
static size_t stored(fixture *f, const char *name, const char *job, int64_t *totals)
{
    firn_err err = {0};
    tsdb_reader *r = tsdb_reader_open(f->db, &err);
    assert_non_null(r);
    firn_matcher ms[2];
    assert_int_equal(firn_matcher_init(&ms[0], FIRN_MATCH_EQ, "__name__", name, &err), 0);
    assert_int_equal(firn_matcher_init(&ms[1], FIRN_MATCH_EQ, "job", job, &err), 0);
    tsdb_series_set set;
    assert_int_equal(tsdb_select(r, ms, 2, INT64_MIN, INT64_MAX, &set, &err), 0);
    struct total_acc acc = {0, totals};
    for (size_t i = 0; i < set.n; i++)
        tsdb_scan(r, set.series[i].id, INT64_MIN, INT64_MAX, TSDB_SCAN_TOTALS, collect_total,
                  &acc, &err);
    tsdb_series_set_free(&set);
    firn_matcher_destroy(&ms[0]);
    firn_matcher_destroy(&ms[1]);
    tsdb_reader_close(r);
    return acc.n;
}

#define ONLY_MEMORY                                                       \
    "    profiling_config:\n"                                             \
    "      pprof_config:\n"                                               \
    "        process_cpu: {enabled: false}\n"                             \
    "        block: {enabled: false}\n"                                   \
    "        goroutine: {enabled: false}\n"                               \
    "        mutex: {enabled: false}\n"

/* ---- tests ------------------------------------------------------------------------ */

/* The first scrape of a cumulative profile only sets the baseline; each
 * later one stores the increase of alloc_* (one object, 100 bytes per
 * request) under a :delta type, and inuse_* as they are. */
static void test_deltas_stored(void **state)
{
    fixture *f = *state;
    apply(f, "global: {scrape_interval: 100ms}\n"
             "scrape_configs:\n"
             "  - job_name: mem\n"
             "    static_configs: [{targets: ['127.0.0.1:PORT']}]\n" ONLY_MEMORY);
    int64_t totals[64];
    wait_until(stored(f, "memory:alloc_objects:count:space:bytes:delta", "mem", NULL) >= 3);
    size_t n = stored(f, "memory:alloc_objects:count:space:bytes:delta", "mem", totals);
    for (size_t i = 0; i < n && i < 64; i++)
        assert_int_equal(totals[i], 1);
    n = stored(f, "memory:alloc_space:bytes:space:bytes:delta", "mem", totals);
    assert_true(n >= 3);
    for (size_t i = 0; i < n && i < 64; i++)
        assert_int_equal(totals[i], 100);
    n = stored(f, "memory:inuse_space:bytes:space:bytes", "mem", totals);
    assert_true(n >= 3);
    for (size_t i = 0; i < n && i < 64; i++)
        assert_int_equal(totals[i], 64);
    assert_int_equal(stored(f, "memory:alloc_objects:count:space:bytes", "mem", NULL), 0);
    loop_view v;
    assert_true(view(f, "mem", "memory", NULL, &v));
    assert_int_equal(v.health, SCRAPE_HEALTH_UP);
    assert_string_equal(v.last_error, "");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/debug/pprof/allocs", f->port);
    assert_string_equal(v.url, url);
}

/* Failures name what went wrong; the healthy target next to them is up. */
static void test_health_errors(void **state)
{
    fixture *f = *state;
    apply(f, "global: {scrape_interval: 100ms}\n"
             "scrape_configs:\n"
             "  - job_name: ok\n"
             "    static_configs: [{targets: ['127.0.0.1:PORT']}]\n" ONLY_MEMORY
             "  - job_name: notfound\n"
             "    static_configs: [{targets: ['127.0.0.1:PORT']}]\n" ONLY_MEMORY
             "      path_prefix: /nothere\n"
             "  - job_name: garbage\n"
             "    static_configs: [{targets: ['127.0.0.1:PORT']}]\n" ONLY_MEMORY
             "      path_prefix: /garbage\n"
             "  - job_name: dead\n"
             "    static_configs: [{targets: ['127.0.0.1:1']}]\n" ONLY_MEMORY
             "  - job_name: unauthorized\n"
             "    authorization: {credentials: wrong}\n"
             "    static_configs: [{targets: ['127.0.0.1:PORT']}]\n" ONLY_MEMORY
             "      path_prefix: /auth\n");
    loop_view v;
    wait_until(view(f, "notfound", "memory", NULL, &v) && v.health == SCRAPE_HEALTH_DOWN);
    assert_string_equal(v.last_error, "server returned HTTP status 404 Not Found");
    wait_until(view(f, "garbage", "memory", NULL, &v) && v.health == SCRAPE_HEALTH_DOWN);
    assert_non_null(strstr(v.last_error, "decoding profile: "));
    wait_until(view(f, "dead", "memory", NULL, &v) && v.health == SCRAPE_HEALTH_DOWN);
    assert_non_null(strstr(v.last_error, "Get \"http://127.0.0.1:1/debug/pprof/allocs\": "));
    wait_until(view(f, "unauthorized", "memory", NULL, &v) && v.health == SCRAPE_HEALTH_DOWN);
    assert_string_equal(v.last_error, "server returned HTTP status 401 Unauthorized");
    wait_until(view(f, "ok", "memory", NULL, &v) && v.health == SCRAPE_HEALTH_UP);
    assert_true(v.last_scrape_ms > 0);
}

/* Credentials read from a file at each scrape. */
static void test_bearer_file(void **state)
{
    fixture *f = *state;
    char path[600];
    snprintf(path, sizeof path, "%s/token", f->dir);
    FILE *t = fopen(path, "w");
    assert_non_null(t);
    fputs("s3cret\n", t);
    fclose(t);
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "global: {scrape_interval: 100ms}\n"
             "scrape_configs:\n"
             "  - job_name: auth\n"
             "    bearer_token_file: %s\n"
             "    static_configs: [{targets: ['127.0.0.1:PORT']}]\n" ONLY_MEMORY
             "      path_prefix: /auth\n",
             path);
    apply(f, yaml);
    loop_view v;
    wait_until(view(f, "auth", "memory", NULL, &v) && v.health == SCRAPE_HEALTH_UP);
    /* A rotated token is read at the next scrape. */
    t = fopen(path, "w");
    fputs("rotated\n", t);
    fclose(t);
    wait_until(view(f, "auth", "memory", NULL, &v) && v.health == SCRAPE_HEALTH_DOWN);
    assert_string_equal(v.last_error, "server returned HTTP status 401 Unauthorized");
}

/* A reload with the same job keeps its loop (health and last scrape); a
 * changed job starts over; a removed job goes away. */
static void test_reload(void **state)
{
    fixture *f = *state;
    const char *a = "global: {scrape_interval: 100ms}\n"
                    "scrape_configs:\n"
                    "  - job_name: same\n"
                    "    static_configs: [{targets: ['127.0.0.1:PORT']}]\n" ONLY_MEMORY
                    "  - job_name: gone\n"
                    "    static_configs: [{targets: ['127.0.0.1:PORT']}]\n" ONLY_MEMORY;
    apply(f, a);
    loop_view v;
    wait_until(view(f, "same", "memory", NULL, &v) && v.health == SCRAPE_HEALTH_UP);
    apply(f, "global: {scrape_interval: 100ms}\n"
             "scrape_configs:\n"
             "  - job_name: same\n"
             "    static_configs: [{targets: ['127.0.0.1:PORT']}]\n" ONLY_MEMORY
             "  - job_name: changed\n"
             "    scrape_interval: 1h\n"
             "    static_configs: [{targets: ['127.0.0.1:PORT']}]\n" ONLY_MEMORY);
    assert_true(view(f, "same", "memory", NULL, &v));
    assert_int_equal(v.health, SCRAPE_HEALTH_UP);
    assert_true(v.last_scrape_ms > 0);
    assert_true(view(f, "changed", "memory", NULL, &v));
    assert_int_equal(v.health, SCRAPE_HEALTH_UNKNOWN);
    assert_int_equal(v.last_scrape_ms, 0);
    assert_false(view(f, "gone", "memory", NULL, &v));
    assert_int_equal(v.n_active, 2);
}

/* Groups from another provider add targets; an empty group of the same
 * source removes them; relabeling drops are listed as dropped. */
static void test_update_groups(void **state)
{
    fixture *f = *state;
    apply(f, "global: {scrape_interval: 100ms}\n"
             "scrape_configs:\n"
             "  - job_name: sd\n"
             "    relabel_configs: [{source_labels: [team], regex: drop-me, action: drop}]\n"
             ONLY_MEMORY);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", f->port);
    firn_label t1[] = {{"__address__", addr}};
    firn_label t2[] = {{"__address__", "127.0.0.1:1"}};
    disc_target targets[] = {{t1, 1}, {t2, 1}};
    firn_label group_labels[] = {{"team", "a"}};
    disc_group g = {"file.json:0", targets, 2, group_labels, 1};
    firn_err err = {0};
    assert_int_equal(scrape_manager_update(f->m, "sd", "file/0", &g, 1, &err), 0);
    loop_view v;
    wait_until(view(f, "sd", "memory", addr, &v) && v.health == SCRAPE_HEALTH_UP);
    assert_int_equal(v.n_active, 2);
    int64_t first = v.last_scrape_ms;

    /* The same target again keeps its loop; the other one goes. */
    g.n_targets = 1;
    assert_int_equal(scrape_manager_update(f->m, "sd", "file/0", &g, 1, &err), 0);
    assert_true(view(f, "sd", "memory", addr, &v));
    assert_int_equal(v.n_active, 1);
    assert_int_equal(v.health, SCRAPE_HEALTH_UP);
    assert_true(v.last_scrape_ms >= first);

    /* Relabeling drops the group's targets now. */
    group_labels[0].value = "drop-me";
    assert_int_equal(scrape_manager_update(f->m, "sd", "file/0", &g, 1, &err), 0);
    assert_false(view(f, "sd", "memory", addr, &v));
    assert_int_equal(v.n_active, 0);
    assert_int_equal(v.n_dropped, 1);

    /* An empty group of that source empties it. */
    g.n_targets = 0;
    assert_int_equal(scrape_manager_update(f->m, "sd", "file/0", &g, 1, &err), 0);
    view(f, "sd", "memory", addr, &v);
    assert_int_equal(v.n_active + v.n_dropped, 0);

    assert_int_equal(scrape_manager_update(f->m, "nosuchjob", "file/0", &g, 1, &err),
                     FIRN_EINVAL);
}

/* sample_limit, target_limit and keep_sample_type. */
static void test_limits(void **state)
{
    fixture *f = *state;
    apply(f, "global: {scrape_interval: 100ms}\n"
             "scrape_configs:\n"
             "  - job_name: samples\n"
             "    sample_limit: 1\n"
             "    static_configs: [{targets: ['127.0.0.1:PORT']}]\n" ONLY_MEMORY
             "  - job_name: targets\n"
             "    target_limit: 1\n"
             "    static_configs: [{targets: ['127.0.0.1:PORT', 'localhost:PORT']}]\n"
             ONLY_MEMORY
             "  - job_name: keep\n"
             "    static_configs: [{targets: ['127.0.0.1:PORT']}]\n" ONLY_MEMORY
             "        memory:\n"
             "          keep_sample_type: [{type: inuse_space, unit: bytes}]\n");
    loop_view v;
    /* on a loaded machine a 100 ms scrape may time out first: wait for the
     * limit's error, which every scrape that completes must give */
    wait_until(view(f, "samples", "memory", NULL, &v) && v.health == SCRAPE_HEALTH_DOWN &&
               strcmp(v.last_error, "sample limit exceeded (samples: 2, limit: 1)") == 0);
    assert_string_equal(v.last_error, "sample limit exceeded (samples: 2, limit: 1)");
    wait_until(view(f, "targets", "memory", NULL, &v) && v.health == SCRAPE_HEALTH_DOWN);
    assert_string_equal(v.last_error, "target_limit exceeded (number of targets: 2, limit: 1)");
    wait_until(stored(f, "memory:inuse_space:bytes:space:bytes", "keep", NULL) >= 2);
    assert_int_equal(stored(f, "memory:alloc_space:bytes:space:bytes:delta", "keep", NULL), 0);
    assert_int_equal(stored(f, "memory:inuse_objects:count:space:bytes", "keep", NULL), 0);
}

/* The ingest memory budget: a body it cannot hold is not kept, the scrape
 * is skipped (counted as result "budget", the target down saying why), and
 * scrapes are stored again once the budget has room. */
static void test_budget(void **state)
{
    fixture *f = *state;
    ingest_budget_set(64);   /* smaller than any profile the target serves */
    apply(f, "global: {scrape_interval: 100ms}\n"
             "scrape_configs:\n"
             "  - job_name: budget\n"
             "    static_configs: [{targets: ['127.0.0.1:PORT']}]\n" ONLY_MEMORY);
    loop_view v;
    wait_until(view(f, "budget", "memory", NULL, &v) && v.health == SCRAPE_HEALTH_DOWN &&
               strstr(v.last_error, "ingest memory budget"));
    assert_string_equal(v.last_error, "ingest memory budget (64 bytes) in use: scrape skipped");
    assert_int_equal(stored(f, "memory:inuse_space:bytes:space:bytes", "budget", NULL), 0);
    firn_buf b = {0};
    scrape_manager_metrics_write(f->m, &b);
    const char *line = strstr(b.data, "\nfirn_scrapes_total{result=\"budget\"} ");
    assert_non_null(line);
    assert_true(strtod(line + strlen("\nfirn_scrapes_total{result=\"budget\"} "), NULL) >= 1);
    firn_buf_free(&b);
    ingest_budget_set(0);
    wait_until(stored(f, "memory:inuse_space:bytes:space:bytes", "budget", NULL) >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_deltas_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bearer_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
