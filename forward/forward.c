/* forward.c -- profile_remote_write's endpoints, records and senders
 * (contract in forward.h, the queue in queue.c).
 *
 * A Push body is built from queued records without decoding them: a
 * record is one packed RawProfileSeries, and PushRequest is
 * `repeated RawProfileSeries series = 1`, whose wire form is each element
 * as field 1 (tag byte 0x0a, a varint length, the bytes) one after the
 * other; protobuf-c packs the records, the concatenation is the wire
 * format's own rule for repeated fields.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <errno.h>

#include "forward/forward.h"
#include "forward/internal.h"
#include "httpc/httpc.h"
#include "push/v1/push.pb-c.h"

#define PUSH_PATH "/push.v1.PusherService/Push"
/* Most bytes of records in one Push: under the 64 MiB body cap firn's
 * Push accepts, with room for framing. */
#define BATCH_BYTES_MAX (32u << 20)

typedef struct endpoint endpoint;

typedef struct sender {
    endpoint *ep;
    uint32_t shard;
    pthread_t thread;
    bool started;
} sender;

struct endpoint {
    char *id;                  /* name, or "url-" + a hash of the URL: the queue's directory */
    char *remote_name;         /* the name, or the id: the metrics' remote_name */
    char *url;                 /* as configured */
    char *push_url;
    const config_profile_remote_write *cfg;   /* in the forward's current config */
    struct curl_slist *headers; /* Connect's and the configured header lines */
    fqueue q;
    _Atomic bool stop;
    sender senders[FWD_SHARDS_MAX];
    uint32_t n_senders;
    _Atomic uint64_t enqueued, sent, failed, retried, dropped, sent_bytes;
    bool keep;                 /* forward_apply's mark */
};

struct forward {
    char *dir;
    pthread_rwlock_t lock;     /* eps and cfg; readers: forward_profile, metrics */
    endpoint **eps;
    size_t n_eps;
    firn_config *cfg;
};

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (h ^ 0xff) * 1099511628211ULL;   /* a separator no UTF-8 text holds */
}

#define FNV_OFFSET 1469598103934665603ULL

static void endpoint_id(const config_profile_remote_write *w, char *out, size_t size)
{
    if (*w->name)
        snprintf(out, size, "%s", w->name);
    else
        snprintf(out, size, "url-%016" PRIx64, fnv1a(FNV_OFFSET, w->url));
}

/* ---- senders -------------------------------------------------------------- */

enum outcome { SENT, FAILED, STOPPED };

/* One record appended to a PushRequest being built in ctx (a firn_buf). */
static void add_record(void *ctx, const void *data, size_t len)
{
    firn_buf *body = ctx;
    unsigned char hdr[11];
    size_t n = 0;
    hdr[n++] = 0x0a;   /* field 1, length-delimited */
    for (uint64_t v = len; ; v >>= 7) {
        hdr[n++] = (unsigned char)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80)
            break;
    }
    firn_buf_append(body, hdr, n);
    firn_buf_append(body, data, len);
}

/* Sleep ms, or less when the endpoint stops. */
static void backoff_wait(endpoint *ep, int64_t ms)
{
    struct timespec until = firn_deadline_ms(ms);
    pthread_mutex_lock(&ep->q.mu);
    while (!atomic_load(&ep->stop) &&
           pthread_cond_timedwait(&ep->q.cond, &ep->q.mu, &until) == 0)
        ;
    pthread_mutex_unlock(&ep->q.mu);
}

/* Connect's error code from a JSON error body, into code ("" if none). */
static void connect_code(const char *body, const char *content_type, char *code, size_t size)
{
    code[0] = '\0';
    if (strncmp(content_type, "application/json", 16) != 0)
        return;
    const char *p = strstr(body, "\"code\"");
    if (!p || !(p = strchr(p + 6, '"')))
        return;
    p++;
    size_t n = strcspn(p, "\"");
    if (n < size)
        snprintf(code, size, "%.*s", (int)n, p);
}

/* Send one batch until it is answered for good or the endpoint stops. */
static enum outcome send_batch(endpoint *ep, CURL *e, const firn_buf *body, size_t n)
{
    const config_profile_remote_write *cfg = ep->cfg;
    int64_t backoff = cfg->min_backoff_ms;
    bool warned = false;
    for (;;) {
        if (atomic_load(&ep->stop))
            return STOPPED;
        char code[32];
        httpc_response answer, *resp = &answer;
        long status = 0;
        if (httpc_post(e, &cfg->http, ep->push_url, ep->headers, body->data, body->len,
                       cfg->remote_timeout_ms, "firn/" FIRN_VERSION, &ep->stop, resp) == 0)
            status = resp->status;
        if (status == 200) {
            atomic_fetch_add(&ep->sent, n);
            atomic_fetch_add(&ep->sent_bytes, body->len);
            if (warned)
                firn_log(FIRN_LOG_INFO, "forward", "Push delivered after retries",
                         "remote_name=%s", ep->remote_name);
            return SENT;
        }
        if (status == 0 && atomic_load(&ep->stop))
            return STOPPED;
        connect_code(resp->body, resp->content_type, code, sizeof code);
        char q[400];
        if (httpc_retryable(status, cfg->retry_on_http_429) || strcmp(code, "aborted") == 0 ||
            strcmp(code, "unavailable") == 0) {
            atomic_fetch_add(&ep->retried, n);
            if (!warned)
                firn_log(FIRN_LOG_WARN, "forward", "Push failed, retrying with back-off",
                         "remote_name=%s url=%s status=%ld err=%s", ep->remote_name, ep->url,
                         status, firn_log_quote(q, sizeof q, status ? resp->body : resp->error));
            warned = true;
            backoff_wait(ep, backoff);
            backoff = backoff * 2 > cfg->max_backoff_ms ? cfg->max_backoff_ms : backoff * 2;
            continue;
        }
        atomic_fetch_add(&ep->failed, n);
        firn_log(FIRN_LOG_ERROR, "forward", "Push refused; dropping the batch",
                 "remote_name=%s url=%s status=%ld profiles=%zu err=%s", ep->remote_name,
                 ep->url, status, n, firn_log_quote(q, sizeof q, resp->body));
        return FAILED;
    }
}

static void *sender_main(void *arg)
{
    sender *s = arg;
    endpoint *ep = s->ep;
    fqueue *q = &ep->q;
    const config_profile_remote_write *cfg = ep->cfg;
    CURL *e = curl_easy_init();
    if (!e)
        firn_oom(0);   /* libcurl's allocation: the policy of model/alloc.h */
    /* max_samples_per_send is capped by config (at most capacity) */
    uint64_t *seqs = firn_xreallocarray(NULL, cfg->max_samples_per_send, sizeof *seqs);
    pthread_mutex_lock(&q->mu);
    while (!atomic_load(&ep->stop)) {
        uint64_t pending = q->pending[s->shard];
        if (!pending) {
            pthread_cond_wait(&q->cond, &q->mu);
            continue;
        }
        if (pending < cfg->max_samples_per_send) {
            /* a partial batch waits out the deadline of its oldest record */
            int64_t due = fq_oldest_ms_locked(q, s->shard) + cfg->batch_send_deadline_ms;
            int64_t now = firn_now_ms();
            if (due > now) {
                struct timespec until = firn_deadline_ms(due - now);
                pthread_cond_timedwait(&q->cond, &q->mu, &until);
                continue;
            }
        }
        firn_buf body = {0};
        long n = fq_peek_locked(q, s->shard, cfg->max_samples_per_send, BATCH_BYTES_MAX,
                                add_record, &body, seqs);
        pthread_mutex_unlock(&q->mu);
        enum outcome out = STOPPED;
        if (n > 0 && !body.failed) {
            out = send_batch(ep, e, &body, (size_t)n);
        } else {
            firn_log(FIRN_LOG_ERROR, "forward", "reading the queue failed", "remote_name=%s",
                     ep->remote_name);
            backoff_wait(ep, cfg->max_backoff_ms);
        }
        firn_buf_free(&body);
        if (out != STOPPED) {
            size_t deleted;
            int rc = fq_delete(q, s->shard, seqs, (size_t)n, &deleted);
            if (rc) {
                /* they stay queued and go again: a firn receiver takes the
                 * same profile twice as once */
                firn_log(FIRN_LOG_ERROR, "forward", "deleting sent records failed",
                         "remote_name=%s err=\"%s\"", ep->remote_name, mdb_strerror(rc));
                backoff_wait(ep, cfg->max_backoff_ms);
            }
        }
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    curl_easy_cleanup(e);
    free(seqs);
    return NULL;
}

static void senders_stop(endpoint *ep)
{
    pthread_mutex_lock(&ep->q.mu);
    atomic_store(&ep->stop, true);
    pthread_cond_broadcast(&ep->q.cond);
    pthread_mutex_unlock(&ep->q.mu);
    for (uint32_t i = 0; i < ep->n_senders; i++)
        if (ep->senders[i].started)
            pthread_join(ep->senders[i].thread, NULL);
    ep->n_senders = 0;
}

static int senders_start(endpoint *ep, firn_err *err)
{
    atomic_store(&ep->stop, false);
    for (uint32_t i = 0; i < ep->cfg->shards; i++) {
        ep->senders[i] = (sender){.ep = ep, .shard = i};
        if (pthread_create(&ep->senders[i].thread, NULL, sender_main, &ep->senders[i]) != 0) {
            ep->n_senders = i;
            senders_stop(ep);
            return firn_errf(err, FIRN_EIO, "profile_remote_write %s: cannot start a sender",
                             ep->remote_name);
        }
        ep->senders[i].started = true;
    }
    ep->n_senders = (uint32_t)ep->cfg->shards;
    return 0;
}

/* ---- endpoints ---------------------------------------------------------------- */

/* libcurl's list append; its allocation failing aborts (model/alloc.h). */
static struct curl_slist *header_add(struct curl_slist *h, const char *line)
{
    struct curl_slist *l = curl_slist_append(h, line);
    if (!l)
        firn_oom(0);
    return l;
}

/* The request's headers: Connect's, then the configured ones. */
static struct curl_slist *headers_new(const config_profile_remote_write *w)
{
    struct curl_slist *h = header_add(NULL, "Content-Type: application/proto");
    header_add(h, "Connect-Protocol-Version: 1");
    for (size_t i = 0; i < w->n_headers; i++) {
        char *line = firn_xasprintf("%s: %s", w->headers[i].name, w->headers[i].value);
        header_add(h, line);
        free(line);
    }
    return h;
}

static void endpoint_free(endpoint *ep)
{
    if (!ep)
        return;
    senders_stop(ep);
    fq_close(&ep->q);
    curl_slist_free_all(ep->headers);
    free(ep->id);
    free(ep->remote_name);
    free(ep->url);
    free(ep->push_url);
    free(ep);
}

/* Point ep at w (its senders stopped). */
static void endpoint_set(endpoint *ep, const config_profile_remote_write *w)
{
    size_t base = strlen(w->url);
    while (base && w->url[base - 1] == '/')
        base--;   /* as Connect clients join a base URL and a procedure */
    ep->cfg = w;
    curl_slist_free_all(ep->headers);
    free(ep->push_url);
    free(ep->url);
    ep->headers = headers_new(w);
    ep->push_url = firn_xasprintf("%.*s%s", (int)base, w->url, PUSH_PATH);
    ep->url = firn_xstrdup(w->url);
}

static endpoint *endpoint_open(forward *f, const config_profile_remote_write *w, const char *id,
                               firn_err *err)
{
    endpoint *ep = firn_xcalloc(1, sizeof *ep);
    char *dir = firn_xasprintf("%s/%s", f->dir, id);
    int rc = fq_open(&ep->q, dir, w->max_bytes, (uint32_t)w->shards, err);
    free(dir);
    if (rc < 0) {
        free(ep);
        return NULL;
    }
    ep->id = firn_xstrdup(id);
    ep->remote_name = firn_xstrdup(*w->name ? w->name : id);
    endpoint_set(ep, w);
    return ep;
}

forward *forward_new(const char *dir)
{
    forward *f = firn_xcalloc(1, sizeof *f);
    f->dir = firn_xstrdup(dir);
    pthread_rwlock_init(&f->lock, NULL);
    return f;
}

static endpoint *find(endpoint **eps, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(eps[i]->id, id) == 0)
            return eps[i];
    return NULL;
}

int forward_apply(forward *f, firn_config *cfg, firn_err *err)
{
    size_t n = cfg->n_profile_remote_writes;
    endpoint **next = firn_xcalloc(n + 1, sizeof *next);
    bool *opened = firn_xcalloc(n + 1, sizeof *opened);
    int rc = 0;
    if (n && mkdir(f->dir, 0750) < 0 && errno != EEXIST)
        rc = firn_errf(err, FIRN_EIO, "profile_remote_write: %s: %s", f->dir, strerror(errno));
    /* Open what is new first: a queue that cannot open leaves all as it was. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        char id[300];
        endpoint_id(&cfg->profile_remote_writes[i], id, sizeof id);
        if ((next[i] = find(f->eps, f->n_eps, id)))
            continue;
        if (!(next[i] = endpoint_open(f, &cfg->profile_remote_writes[i], id, err)))
            rc = FIRN_EIO;
        opened[i] = rc == 0;
    }
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            if (opened[i])
                endpoint_free(next[i]);
        free(next);
        free(opened);
        config_free(cfg);
        return rc;
    }
    /* Kept ones: senders stop (an in-flight Push is abandoned, still
     * queued), take the new settings, start again. */
    pthread_rwlock_wrlock(&f->lock);
    for (size_t i = 0; i < f->n_eps; i++)
        f->eps[i]->keep = false;
    for (size_t i = 0; i < n; i++)
        next[i]->keep = true;
    for (size_t i = 0; i < f->n_eps; i++)
        senders_stop(f->eps[i]);
    for (size_t i = 0; i < f->n_eps; i++)
        if (!f->eps[i]->keep)
            endpoint_free(f->eps[i]);
    for (size_t i = 0; i < n; i++) {
        const config_profile_remote_write *w = &cfg->profile_remote_writes[i];
        firn_err e2 = {0};
        if (!opened[i]) {
            endpoint_set(next[i], w);
            if (fq_configure(&next[i]->q, w->max_bytes, (uint32_t)w->shards, &e2) < 0)
                firn_log(FIRN_LOG_ERROR, "forward", "keeping the previous settings",
                         "remote_name=%s err=\"%s\"", next[i]->remote_name, e2.msg);
        }
        if (senders_start(next[i], &e2) < 0)
            firn_log(FIRN_LOG_ERROR, "forward", "starting senders failed",
                     "remote_name=%s err=\"%s\"", next[i]->remote_name, e2.msg);
    }
    free(f->eps);
    f->eps = next;
    f->n_eps = n;
    firn_config *old = f->cfg;
    f->cfg = cfg;
    pthread_rwlock_unlock(&f->lock);
    config_free(old);
    free(opened);
    return 0;
}

/* ---- records ---------------------------------------------------------------------- */

/* One profile, as every endpoint sends it: encoded once. */
typedef struct encoded {
    unsigned char *pprof;
    size_t len;
    bool tried;
} encoded;

static int encode_profile(const ingest_stored *s, encoded *enc, firn_err *err)
{
    if (enc->tried)
        return enc->pprof ? 0 : FIRN_EIO;
    enc->tried = true;
    /* the receiver stores at time_nanos: where this store put it */
    pprof_profile copy = *s->profile;
    copy.time_nanos = s->timestamp_ms * 1000000;
    return pprof_encode(&copy, 1, &enc->pprof, &enc->len, err);
}

/* The record for ep: relabeled labels and the profile; 0 and *len 0 when
 * relabeling drops it. */
static int build_record(endpoint *ep, const ingest_stored *s, encoded *enc, firn_arena *a,
                        unsigned char **out, size_t *len, uint32_t *shard, firn_err *err)
{
    *len = 0;
    firn_label *in = firn_arena_calloc(a, s->n_labels + 1, sizeof *in);
    in[0] = (firn_label){FIRN_LABEL_NAME, s->profile_name};
    memcpy(in + 1, s->labels, s->n_labels * sizeof *in);
    firn_label *labels = in;
    size_t n = s->n_labels + 1;
    if (ep->cfg->n_write_relabel_configs) {
        int kept = firn_relabel_process(ep->cfg->write_relabel_configs,
                                        ep->cfg->n_write_relabel_configs, in, n, a, &labels, &n,
                                        err);
        if (kept <= 0)
            return kept;
    }
    int rc = encode_profile(s, enc, err);
    if (rc < 0)
        return rc;
    Types__V1__LabelPair *pairs = firn_arena_calloc(a, n + 1, sizeof *pairs);
    Types__V1__LabelPair **ptrs = firn_arena_calloc(a, n + 1, sizeof *ptrs);
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++) {
        types__v1__label_pair__init(&pairs[i]);
        pairs[i].name = (char *)labels[i].name;
        pairs[i].value = (char *)labels[i].value;
        ptrs[i] = &pairs[i];
        h = fnv1a(fnv1a(h, labels[i].name), labels[i].value);
    }
    types__v1__label_pair__init(&pairs[n]);
    pairs[n].name = "__delta__";   /* the values are as stored: deltas taken */
    pairs[n].value = "false";
    ptrs[n] = &pairs[n];
    Push__V1__RawSample sample = PUSH__V1__RAW_SAMPLE__INIT;
    sample.raw_profile.data = enc->pprof;
    sample.raw_profile.len = enc->len;
    Push__V1__RawSample *samples[1] = {&sample};
    Push__V1__RawProfileSeries series = PUSH__V1__RAW_PROFILE_SERIES__INIT;
    series.n_labels = n + 1;
    series.labels = ptrs;
    series.n_samples = 1;
    series.samples = samples;
    size_t size = push__v1__raw_profile_series__get_packed_size(&series);
    unsigned char *buf = firn_arena_alloc(a, size ? size : 1);
    *len = push__v1__raw_profile_series__pack(&series, buf);
    assert(*len == size);
    *out = buf;
    *shard = (uint32_t)(h % ep->q.shards);
    return 0;
}

void forward_profile(void *ctx, const ingest_stored *s)
{
    forward *f = ctx;
    pthread_rwlock_rdlock(&f->lock);
    encoded enc = {0};
    firn_arena *a = f->n_eps ? firn_arena_new(0) : NULL;
    for (size_t i = 0; i < f->n_eps; i++) {
        endpoint *ep = f->eps[i];
        firn_err err = {0};
        unsigned char *rec;
        size_t len;
        uint32_t shard;
        uint64_t dropped = 0;
        int rc = build_record(ep, s, &enc, a, &rec, &len, &shard, &err);
        if (rc == 0 && len)
            rc = fq_append(&ep->q, shard, rec, len, &dropped, &err);
        atomic_fetch_add(&ep->dropped, dropped);
        if (rc == 0 && len) {
            atomic_fetch_add(&ep->enqueued, 1);
        } else if (rc < 0) {
            atomic_fetch_add(&ep->dropped, 1);
            char q[600];
            firn_log(FIRN_LOG_ERROR, "forward", "queueing a profile failed; it is dropped",
                     "remote_name=%s err=%s", ep->remote_name,
                     firn_log_quote(q, sizeof q, err.msg));
        }
    }
    pthread_rwlock_unlock(&f->lock);
    firn_arena_free(a);
    free(enc.pprof);
}

/* ---- metrics ------------------------------------------------------------------------ */

enum { M_ENQUEUED, M_SENT, M_FAILED, M_RETRIED, M_DROPPED, M_SENT_BYTES, M_QUEUE_BYTES,
       M_QUEUE_PROFILES, M_LAG, M_SHARDS, M_COUNT };

static const struct {
    const char *name, *type, *help;
} METRICS[M_COUNT] = {
    {"firn_profile_remote_write_profiles_enqueued_total", "counter",
     "Profiles appended to the endpoint's durable queue."},
    {"firn_profile_remote_write_profiles_sent_total", "counter",
     "Profiles the endpoint answered 200 for."},
    {"firn_profile_remote_write_profiles_failed_total", "counter",
     "Profiles dropped because the endpoint refused them (an answer not retried)."},
    {"firn_profile_remote_write_profiles_retried_total", "counter",
     "Profiles sent again after a retryable failure (each retry counts)."},
    {"firn_profile_remote_write_profiles_dropped_total", "counter",
     "Profiles dropped from the queue: oldest ones past max_bytes, or not queueable."},
    {"firn_profile_remote_write_sent_bytes_total", "counter",
     "Push request bytes the endpoint answered 200 for."},
    {"firn_profile_remote_write_queue_bytes", "gauge",
     "Bytes of profiles waiting in the endpoint's queue."},
    {"firn_profile_remote_write_queue_profiles", "gauge",
     "Profiles waiting in the endpoint's queue."},
    {"firn_profile_remote_write_lag_seconds", "gauge",
     "How long the oldest queued profile has waited (0 when the queue is empty)."},
    {"firn_profile_remote_write_shards", "gauge", "Sender threads of the endpoint."},
};

void forward_metrics_write(forward *f, firn_buf *b)
{
    pthread_rwlock_rdlock(&f->lock);
    if (!f->n_eps) {
        pthread_rwlock_unlock(&f->lock);
        return;
    }
    double *v = firn_xcalloc(f->n_eps * M_COUNT, sizeof *v);
    for (size_t i = 0; i < f->n_eps; i++) {
        endpoint *ep = f->eps[i];
        double *m = v + i * M_COUNT;
        m[M_ENQUEUED] = (double)atomic_load(&ep->enqueued);
        m[M_SENT] = (double)atomic_load(&ep->sent);
        m[M_FAILED] = (double)atomic_load(&ep->failed);
        m[M_RETRIED] = (double)atomic_load(&ep->retried);
        m[M_DROPPED] = (double)atomic_load(&ep->dropped);
        m[M_SENT_BYTES] = (double)atomic_load(&ep->sent_bytes);
        pthread_mutex_lock(&ep->q.mu);
        m[M_QUEUE_BYTES] = (double)ep->q.bytes;
        m[M_QUEUE_PROFILES] = (double)ep->q.count;
        int64_t oldest = fq_queue_oldest_ms_locked(&ep->q);
        m[M_SHARDS] = ep->q.shards;
        pthread_mutex_unlock(&ep->q.mu);
        int64_t lag = oldest ? firn_now_ms() - oldest : 0;
        m[M_LAG] = lag > 0 ? (double)lag / 1000.0 : 0;
    }
    for (int k = 0; k < M_COUNT; k++) {
        firn_metrics_header(b, METRICS[k].name, METRICS[k].type, METRICS[k].help);
        for (size_t i = 0; i < f->n_eps; i++) {
            firn_label l[2] = {{"remote_name", f->eps[i]->remote_name},
                               {"url", f->eps[i]->url}};
            firn_metrics_sample(b, METRICS[k].name, l, 2, v[i * M_COUNT + k]);
        }
    }
    pthread_rwlock_unlock(&f->lock);
    free(v);
}

void forward_free(forward *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_eps; i++)
        endpoint_free(f->eps[i]);
    free(f->eps);
    config_free(f->cfg);
    pthread_rwlock_destroy(&f->lock);
    free(f->dir);
    free(f);
}
