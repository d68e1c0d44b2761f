/* test_forward.c -- forward/: the durable queue (the bound, oldest dropped
 * and counted; order; what survives a reopen; moving records when the
 * shard count changes; deletes of records the bound already dropped), and
 * the senders against a Push receiver on loopback (http/): profiles from
 * four threads at once, 503s retried, relabeling, basic auth, each profile
 * received exactly once, and a reload to another shard count while
 * profiles keep coming.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixtures.h"
#include "h2o_lsan.h"
#include "forward/forward.h"
#include "forward/internal.h"
#include "http/http.h"
#include "push/v1/push.pb-c.h"

#define REC 100000   /* bytes of record: 10 of them and their headers pass 1 MiB */

/* Record i: REC bytes, the first 8 holding i, the rest a pattern of it. */
static unsigned char *record(uint64_t i)
{
    static unsigned char buf[REC];
    memcpy(buf, &i, sizeof i);
    for (size_t k = sizeof i; k < REC; k++)
        buf[k] = (unsigned char)(i * 31 + k);
    return buf;
}

typedef struct seen {
    uint64_t ids[64];
    size_t n;
    bool intact;
} seen;

static void visit(void *ctx, const void *data, size_t len)
{
    seen *s = ctx;
    uint64_t id;
    assert_int_equal(len, REC);
    memcpy(&id, data, sizeof id);
    s->intact &= memcmp(data, record(id), REC) == 0;
    s->ids[s->n++] = id;
}

/* The records of shard, oldest first, as "id id ...". */
static void expect_shard(fqueue *q, uint32_t shard, const char *want)
{
    seen s = {.intact = true};
    uint64_t seqs[64];
    pthread_mutex_lock(&q->mu);
    long n = fq_peek_locked(q, shard, 64, SIZE_MAX, visit, &s, seqs);
    pthread_mutex_unlock(&q->mu);
    assert_true(n >= 0);
    assert_int_equal((size_t)n, s.n);
    assert_true(s.intact);
    char got[512] = "";
    for (size_t i = 0; i < s.n; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", i ? " " : "",
                 (unsigned long long)s.ids[i]);
    if (strcmp(got, want) != 0)
        fail_msg("shard %u: got \"%s\", want \"%s\"", shard, got, want);
}

static void append_ok(fqueue *q, uint32_t shard, uint64_t id, uint64_t want_dropped)
{
    firn_err err = {0};
    uint64_t dropped = 99;
    if (fq_append(q, shard, record(id), REC, &dropped, &err) != 0)
        fail_msg("append %llu: %s", (unsigned long long)id, err.msg);
    assert_int_equal(dropped, want_dropped);
}

static void test_queue(void **state)
{
    (void)state;
    char *dir = temp_dir("forward");
    char qdir[600];
    snprintf(qdir, sizeof qdir, "%s/q", dir);
    fqueue q;
    firn_err err = {0};
    const uint64_t max = 1u << 20;
    assert_int_equal(fq_open(&q, qdir, max, 2, &err), 0);
    assert_int_equal(q.count, 0);

    /* ten fit (10 * (REC + 8) <= 1 MiB); each later one drops the oldest,
     * whichever shard holds it */
    for (uint64_t i = 1; i <= 10; i++)
        append_ok(&q, (uint32_t)(i % 2), i, 0);
    assert_int_equal(q.count, 10);
    assert_int_equal(q.bytes, 10 * (REC + FWD_RECORD_HEADER));
    append_ok(&q, 0, 11, 1);   /* drops 1 (shard 1) */
    append_ok(&q, 0, 12, 1);   /* drops 2 (shard 0) */
    assert_int_equal(q.count, 10);
    assert_true(q.bytes <= max);
    expect_shard(&q, 0, "4 6 8 10 11 12");
    expect_shard(&q, 1, "3 5 7 9");
    assert_int_equal(q.pending[0], 6);
    assert_int_equal(q.pending[1], 4);

    /* a record over the bound alone is refused, nothing dropped for it */
    uint64_t dropped = 0;
    static unsigned char big[(1u << 20) + 1];
    assert_int_equal(fq_append(&q, 0, big, sizeof big, &dropped, &err), FIRN_ETOOBIG);
    assert_int_equal(q.count, 10);

    /* a delete of records the bound dropped meanwhile skips them */
    uint64_t seqs[8];
    seen s = {.intact = true};
    pthread_mutex_lock(&q.mu);
    assert_int_equal(fq_peek_locked(&q, 1, 2, SIZE_MAX, visit, &s, seqs), 2);   /* 3, 5 */
    pthread_mutex_unlock(&q.mu);
    append_ok(&q, 1, 13, 1);   /* drops 3 */
    size_t deleted = 0;
    assert_int_equal(fq_delete(&q, 1, seqs, 2, &deleted), 0);
    assert_int_equal(deleted, 1);
    expect_shard(&q, 1, "7 9 13");
    assert_int_equal(q.count, 9);

    /* closed and opened again: the same records, counts and order; the
     * sequence goes on */
    fq_close(&q);
    assert_int_equal(fq_open(&q, qdir, max, 2, &err), 0);
    assert_int_equal(q.count, 9);
    assert_int_equal(q.bytes, 9 * (REC + FWD_RECORD_HEADER));
    expect_shard(&q, 0, "4 6 8 10 11 12");
    expect_shard(&q, 1, "7 9 13");
    append_ok(&q, 1, 14, 0);
    expect_shard(&q, 1, "7 9 13 14");

    /* fewer shards: shard 1's records move to shard 0, in age order */
    fq_close(&q);
    assert_int_equal(fq_open(&q, qdir, max, 1, &err), 0);
    assert_int_equal(q.count, 10);
    assert_int_equal(q.pending[0], 10);
    expect_shard(&q, 0, "4 6 7 8 9 10 11 12 13 14");
    /* and back to three through fq_configure: nothing moves */
    assert_int_equal(fq_configure(&q, 2 * max, 3, &err), 0);
    assert_int_equal(q.pending[0], 10);
    append_ok(&q, 2, 15, 0);   /* room under the larger bound */
    assert_int_equal(q.count, 11);
    pthread_mutex_lock(&q.mu);
    assert_true(fq_queue_oldest_ms_locked(&q) > 0);
    assert_int_equal(fq_oldest_ms_locked(&q, 1), 0);
    pthread_mutex_unlock(&q.mu);
    fq_close(&q);
    remove_tree(dir);
    free(dir);
}

/* ---- the senders, against a Push receiver on loopback ---------------------------------- */

/* What the receiver saw: each profile's "instance" label once per Push
 * that carried it, and the labels of the first. */
typedef struct receiver {
    pthread_mutex_t mu;
    int refuse;           /* answer this many Pushes 503 first */
    size_t pushes, refused;
    size_t seen[64];      /* by instance number */
    bool delta_false, name_ok, relabeled, auth_ok;
} receiver;

static void h_push(void *ctx, const http_request *r, http_response *resp)
{
    receiver *rc = ctx;
    size_t len;
    const void *body = http_request_body(r, &len);
    const char *auth = http_request_header(r, "Authorization");
    pthread_mutex_lock(&rc->mu);
    rc->pushes++;
    /* "edge:pw" in base64 */
    rc->auth_ok = auth && strcmp(auth, "Basic ZWRnZTpwdw==") == 0;
    if (rc->refused < (size_t)rc->refuse) {
        rc->refused++;
        pthread_mutex_unlock(&rc->mu);
        http_respond_text(resp, 503, "{\"code\":\"unavailable\",\"message\":\"busy\"}");
        resp->content_type = "application/json";
        return;
    }
    Push__V1__PushRequest *req = push__v1__push_request__unpack(NULL, len, body);
    assert_non_null(req);
    for (size_t i = 0; i < req->n_series; i++) {
        const Push__V1__RawProfileSeries *sr = req->series[i];
        assert_int_equal(sr->n_samples, 1);
        for (size_t k = 0; k < sr->n_labels; k++) {
            const char *n = sr->labels[k]->name, *v = sr->labels[k]->value;
            if (strcmp(n, "instance") == 0)
                rc->seen[atoi(v)]++;
            rc->delta_false |= strcmp(n, "__delta__") == 0 && strcmp(v, "false") == 0;
            rc->name_ok |= strcmp(n, "__name__") == 0 && strcmp(v, "process_cpu") == 0;
            rc->relabeled |= strcmp(n, "edge") == 0 && strcmp(v, "e1") == 0;
        }
    }
    push__v1__push_request__free_unpacked(req, NULL);
    pthread_mutex_unlock(&rc->mu);
    resp->status = 200;
    resp->content_type = "application/proto";
}

static size_t seen_total(receiver *rc, size_t n, size_t *twice)
{
    size_t once = 0;
    *twice = 0;
    pthread_mutex_lock(&rc->mu);
    for (size_t i = 0; i < n; i++) {
        once += rc->seen[i] >= 1;
        *twice += rc->seen[i] > 1;
    }
    pthread_mutex_unlock(&rc->mu);
    return once;
}

static forward *forward_with(const char *dir, int port, int shards)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "profile_remote_write:\n"
             "  - url: http://127.0.0.1:%d/\n"
             "    name: t\n"
             "    basic_auth: {username: edge, password: pw}\n"
             "    write_relabel_configs:\n"
             "      - {source_labels: [instance], regex: '63', action: drop}\n"
             "      - {target_label: edge, replacement: e1}\n"
             "    queue_config: {shards: %d, max_samples_per_send: 4,\n"
             "                   batch_send_deadline: 10ms, min_backoff: 5ms, max_backoff: 20ms}\n",
             port, shards);
    firn_err err = {0};
    firn_config *cfg = config_load_string(yaml, strlen(yaml), "t.yml", &err);
    if (!cfg)
        fail_msg("config: %s", err.msg);
    forward *f = forward_new(dir);
    if (forward_apply(f, cfg, &err) < 0)
        fail_msg("forward_apply: %s", err.msg);
    return f;
}

/* The value of a family in forward_metrics_write's text. */
static double metric(forward *f, const char *name)
{
    firn_buf b = {0};
    forward_metrics_write(f, &b);
    char key[200];
    snprintf(key, sizeof key, "\n%s{", name);
    const char *p = b.data ? strstr(b.data, key) : NULL;
    double v = p ? strtod(strchr(strchr(p, '}'), ' ') + 1, NULL) : -1;
    firn_buf_free(&b);
    return v;
}

static bool wait_until(forward *f, receiver *rc, size_t want)
{
    for (int i = 0; i < 1000; i++) {   /* 10 s at most */
        size_t twice;
        if (seen_total(rc, 64, &twice) >= want && metric(f, "firn_profile_remote_write_queue_profiles") == 0)
            return true;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* Profiles from..from+15, as ingest hands them over, instance = their number. */
struct ingest_job {
    forward *f;
    pprof_profile *p;
    const bool *columns;
    int from;
};

static void *ingest_thread(void *arg)
{
    struct ingest_job *j = arg;
    for (int i = j->from; i < j->from + 16; i++) {
        char inst[8];
        snprintf(inst, sizeof inst, "%d", i);
        firn_label labels[] = {{"instance", inst}, {"job", "j"}};
        ingest_stored st = {labels, 2, "process_cpu", j->p, j->columns, 1700000000000 + i};
        forward_profile(j->f, &st);
    }
    return NULL;
}

static void test_senders(void **state)
{
    (void)state;
    receiver rc = {.refuse = 3};
    pthread_mutex_init(&rc.mu, NULL);
    http_options o;
    http_options_default(&o);
    o.listen_address = "127.0.0.1:0";
    firn_err err = {0};
    http_server *s = http_new(&o, &err);
    assert_non_null(s);
    assert_int_equal(http_route(s, "POST", "/push.v1.PusherService/Push", HTTP_ROUTE_WORKER,
                                h_push, &rc, &err), 0);
    assert_int_equal(http_start(s, &err), 0);
    char *dir = temp_dir("forward-senders");
    char qdir[600];
    snprintf(qdir, sizeof qdir, "%s/queues", dir);
    forward *f = forward_with(qdir, http_port(s), 3);

    pprof_profile *p = decode_fixture("pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz");
    bool columns[8] = {true, true};
    assert_true(p->n_sample_types <= 8);
    /* 64 profiles from 4 threads at once; instance 63 is dropped by relabeling */
    struct ingest_job jobs[4];
    pthread_t th[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (struct ingest_job){f, p, columns, t * 16};
        assert_int_equal(pthread_create(&th[t], NULL, ingest_thread, &jobs[t]), 0);
    }
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(metric(f, "firn_profile_remote_write_profiles_enqueued_total"), 63);
    assert_true(wait_until(f, &rc, 63));
    size_t twice;
    assert_int_equal(seen_total(&rc, 64, &twice), 63);
    assert_int_equal(twice, 0);
    assert_int_equal(rc.seen[63], 0);
    assert_true(rc.delta_false && rc.name_ok && rc.relabeled && rc.auth_ok);
    assert_int_equal(metric(f, "firn_profile_remote_write_profiles_sent_total"), 63);
    assert_true(metric(f, "firn_profile_remote_write_profiles_retried_total") > 0);
    assert_int_equal(metric(f, "firn_profile_remote_write_profiles_failed_total"), 0);

    /* a reload to one shard while profiles keep coming: nothing lost */
    memset(rc.seen, 0, sizeof rc.seen);
    forward *g = f;
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "profile_remote_write:\n  - url: http://127.0.0.1:%d/\n    name: t\n"
             "    basic_auth: {username: edge, password: pw}\n"
             "    queue_config: {shards: 1, batch_send_deadline: 10ms}\n", http_port(s));
    jobs[0] = (struct ingest_job){g, p, columns, 0};
    assert_int_equal(pthread_create(&th[0], NULL, ingest_thread, &jobs[0]), 0);
    firn_config *cfg = config_load_string(yaml, strlen(yaml), "t.yml", &err);
    assert_non_null(cfg);
    assert_int_equal(forward_apply(g, cfg, &err), 0);
    pthread_join(th[0], NULL);
    assert_true(wait_until(g, &rc, 16));
    assert_int_equal(seen_total(&rc, 64, &twice), 16);
    assert_int_equal(metric(g, "firn_profile_remote_write_shards"), 1);
    assert_int_equal(metric(g, "firn_profile_remote_write_profiles_sent_total"), 63 + 16);

    forward_free(g);
    pprof_free(p);
    http_stop(s);
    pthread_mutex_destroy(&rc.mu);
    remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue),
        cmocka_unit_test(test_senders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
