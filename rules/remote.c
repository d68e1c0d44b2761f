/* remote.c -- remote_write: the float samples rules write (recorded series,
 * ALERTS, ALERTS_FOR_STATE, stale markers) sent to Prometheus-compatible
 * receivers as Prometheus's remote-write 1.0 protocol: a prompb
 * WriteRequest (rules/prompb, Prometheus's protos), snappy block format,
 * POST with Content-Encoding: snappy, Content-Type: application/x-protobuf
 * and X-Prometheus-Remote-Write-Version: 0.1.0.
 *
 * One queue and one sender thread per remote_write entry (Prometheus's
 * queue manager with one shard).  A sample gets the external labels it
 * lacks, then write_relabel_configs, when it is queued.  The queue holds at
 * most queue_config.capacity samples; a full queue drops its oldest
 * (counted): firn keeps no write-ahead log to re-read, so the queue's bound
 * is what an outage may cost.  A batch (max_samples_per_send, or what is
 * there once batch_send_deadline has passed) is retried on a 5xx, a 429
 * (after Retry-After when given) or a transport error, with back-off from
 * min_backoff doubling up to max_backoff, until it is accepted; another 4xx
 * fails it at once (the spec: retrying cannot help).
 *
 * Reload: an entry with the same url and name keeps its queue, its pending
 * samples and its counters and takes the new settings; a removed entry's
 * queue stops and its pending samples are dropped (counted, in the last
 * scrape of its metrics only).
 *
 * Threads: rules_remote_append from evaluation threads (never waits on the
 * network), a sender per queue, rules_remote_set from the reload path with
 * the manager's configuration lock held exclusively (so the external
 * labels and relabel rules append reads stay valid: appends run under that
 * lock shared).  The sender copies what a POST needs under the queue lock
 * and posts unlocked.
 */
#include "internal.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <snappy-c.h>
#include <xxhash.h>

#include "httpc/httpc.h"
#include "remote.pb-c.h"


struct rw_sample {
    firn_label *labels;     /* sorted; one allocation (rules_labels_pack) */
    size_t n;
    int64_t ts;
    double v;
};

struct rw_queue {
    rules_remote *owner;
    char *key;                       /* url "\n" name: the identity kept across reloads */
    char *remote_name;               /* the name, or a hash of the url */
    char *url;
    const config_remote_write *cfg;  /* the running configuration's; read under owner->mu */
    struct rw_sample *ring;
    size_t cap, head, len;
    int64_t first_pending_ms;        /* monotonic time the oldest pending sample came */
    pthread_t thread;
    bool started, stop;
    pthread_cond_t wake;
    uint64_t sent, failed, retried, dropped_full, dropped_relabel, bytes;
    double highest_sent_ts;
};

struct rules_remote {
    pthread_mutex_t mu;              /* guards every queue's ring, counters and cfg */
    struct rw_queue **queues;
    size_t n_queues;
    const firn_label *external;
    size_t n_external;
    double highest_ts;               /* newest sample timestamp appended, in seconds */
    char *user_agent;
};

rules_remote *rules_remote_new(const char *user_agent, firn_err *err)
{
    (void)err;   /* nothing left that can fail (model/alloc.h) */
    rules_remote *r = firn_xcalloc(1, sizeof *r);
    r->user_agent = firn_xstrdup(user_agent);
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

/* ---- sending ------------------------------------------------------------------- */

/* What one POST needs, copied out of the configuration under the lock. */
struct post_settings {
    firn_arena *arena;
    char *url;
    config_http http;
    struct curl_slist *extra;        /* the configured headers */
    int64_t timeout_ms, min_backoff_ms, max_backoff_ms;
};

/* libcurl's own allocation failure aborts, as model/alloc.h does. */
static void slist_add(struct curl_slist **l, const char *line)
{
    struct curl_slist *grown = curl_slist_append(*l, line);
    if (!grown)
        firn_oom(strlen(line));
    *l = grown;
}

static void settings_copy(const struct rw_queue *q, struct post_settings *s)
{
    const config_remote_write *c = q->cfg;
    *s = (struct post_settings){.arena = firn_arena_new(0)};
    s->url = firn_arena_strdup(s->arena, c->url);
    config_http_copy(s->arena, &c->http, &s->http);
    for (size_t i = 0; i < c->n_headers; i++) {
        char line[8192];
        snprintf(line, sizeof line, "%s: %s", c->headers[i].name, c->headers[i].value);
        slist_add(&s->extra, line);
    }
    s->timeout_ms = c->remote_timeout_ms;
    s->min_backoff_ms = c->min_backoff_ms;
    s->max_backoff_ms = c->max_backoff_ms;
}

static void settings_free(struct post_settings *s)
{
    curl_slist_free_all(s->extra);
    firn_arena_free(s->arena);
    *s = (struct post_settings){0};
}

/* The batch as a snappy-compressed prompb.WriteRequest (malloc'd), one
 * TimeSeries per sample, as Prometheus's queue manager builds it.  Sized by
 * the batch, already in memory (at most max_samples_per_send). */
static char *encode(const struct rw_sample *b, size_t n, size_t *out_len)
{
    Prometheus__TimeSeries *ts = firn_xcalloc(n + 1, sizeof *ts);
    Prometheus__TimeSeries **tsp = firn_xcalloc(n + 1, sizeof *tsp);
    Prometheus__Sample *smp = firn_xcalloc(n + 1, sizeof *smp);
    Prometheus__Sample **smpp = firn_xcalloc(n + 1, sizeof *smpp);
    size_t n_labels = 0;
    for (size_t i = 0; i < n; i++)
        n_labels += b[i].n;
    Prometheus__Label *lab = firn_xcalloc(n_labels + 1, sizeof *lab);
    Prometheus__Label **labp = firn_xcalloc(n_labels + 1, sizeof *labp);
    size_t li = 0;
    for (size_t i = 0; i < n; i++) {
        prometheus__time_series__init(&ts[i]);
        prometheus__sample__init(&smp[i]);
        smp[i].value = b[i].v;
        smp[i].timestamp = b[i].ts;
        smpp[i] = &smp[i];
        ts[i].n_samples = 1;
        ts[i].samples = &smpp[i];
        ts[i].labels = &labp[li];
        ts[i].n_labels = b[i].n;
        for (size_t k = 0; k < b[i].n; k++, li++) {
            prometheus__label__init(&lab[li]);
            lab[li].name = (char *)b[i].labels[k].name;
            lab[li].value = (char *)b[i].labels[k].value;
            labp[li] = &lab[li];
        }
        tsp[i] = &ts[i];
    }
    assert(li == n_labels);
    Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
    req.n_timeseries = n;
    req.timeseries = tsp;
    size_t len = prometheus__write_request__get_packed_size(&req);
    char *packed = firn_xmalloc(len + 1);
    size_t got = prometheus__write_request__pack(&req, (uint8_t *)packed);
    assert(got == len);
    (void)got;   /* only the assert reads it */
    size_t clen = snappy_max_compressed_length(len);
    char *out = firn_xmalloc(clen + 1);
    /* into snappy_max_compressed_length's bytes it cannot fail */
    snappy_status st = snappy_compress(packed, len, out, &clen);
    assert(st == SNAPPY_OK);
    (void)st;   /* only the assert reads it */
    *out_len = clen;
    free(ts);
    free(tsp);
    free(smp);
    free(smpp);
    free(lab);
    free(labp);
    free(packed);
    return out;
}

enum outcome { SENT, RETRY, FAIL };

/* One log line for a failed request; the URL, name and the receiver's
 * answer are quoted (they come from outside). */
static void log_failure(const struct rw_queue *q, enum firn_log_level level, const char *msg,
                        long status, const char *why)
{
    char name[128], url[512], text[HTTPC_RESPONSE_KEEP + 64];
    firn_log(level, "remote", msg, "remote_name=%s url=%s status=%ld err=%s",
             firn_log_quote(name, sizeof name, q->remote_name),
             firn_log_quote(url, sizeof url, q->url), status,
             firn_log_quote(text, sizeof text, why));
}

/* One POST of body: the spec's outcome of its answer. */
static enum outcome post(const struct rw_queue *q, const struct post_settings *s,
                         const char *user_agent, const char *body, size_t len,
                         int64_t *retry_after_ms)
{
    struct curl_slist *h = NULL;
    slist_add(&h, "Content-Encoding: snappy");
    slist_add(&h, "Content-Type: application/x-protobuf");
    slist_add(&h, "X-Prometheus-Remote-Write-Version: 0.1.0");
    for (const struct curl_slist *l = s->extra; l; l = l->next)
        slist_add(&h, l->data);
    httpc_response *resp = firn_xmalloc(sizeof *resp);
    enum outcome out = RETRY;
    if (httpc_post(NULL, &s->http, s->url, h, body, len, s->timeout_ms, user_agent, NULL, resp) < 0) {
        log_failure(q, FIRN_LOG_WARN, "Failed to send batch, retrying", 0, resp->error);
    } else if (resp->status / 100 == 2) {
        out = SENT;
    } else {
        out = httpc_retryable(resp->status, true) ? RETRY : FAIL;
        *retry_after_ms = resp->retry_after_ms;
        log_failure(q, out == RETRY ? FIRN_LOG_WARN : FIRN_LOG_ERROR,
                    out == RETRY ? "Failed to send batch, retrying"
                                 : "non-recoverable error, batch dropped",
                    resp->status, resp->body);
    }
    free(resp);
    curl_slist_free_all(h);
    return out;
}

static void batch_free(struct rw_sample *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(b[i].labels);
    free(b);
}

static void *sender(void *arg)
{
    struct rw_queue *q = arg;
    rules_remote *r = q->owner;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        /* wait for a full batch, or for the oldest sample's deadline */
        while (!q->stop) {
            size_t max = q->cfg->max_samples_per_send;
            if (q->len >= max)
                break;
            if (q->len) {
                int64_t left = q->first_pending_ms + q->cfg->batch_send_deadline_ms -
                               firn_mono_ms();
                if (left <= 0)
                    break;
                struct timespec dl = firn_deadline_ms(left);
                pthread_cond_timedwait(&q->wake, &r->mu, &dl);
            } else {
                pthread_cond_wait(&q->wake, &r->mu);
            }
        }
        if (q->stop)
            break;
        assert(q->len <= q->cap && q->head < q->cap);
        size_t k = q->len < q->cfg->max_samples_per_send ? q->len : q->cfg->max_samples_per_send;
        struct rw_sample *batch = firn_xreallocarray(NULL, k, sizeof *batch);
        double newest = 0;
        for (size_t i = 0; i < k; i++) {
            batch[i] = q->ring[(q->head + i) % q->cap];
            if ((double)batch[i].ts / 1000.0 > newest)
                newest = (double)batch[i].ts / 1000.0;
        }
        q->head = (q->head + k) % q->cap;
        q->len -= k;
        q->first_pending_ms = firn_mono_ms();
        pthread_mutex_unlock(&r->mu);
        size_t len = 0;
        char *body = encode(batch, k, &len);
        batch_free(batch, k);
        pthread_mutex_lock(&r->mu);
        /* the batch until it is accepted, refused or the queue stops */
        int64_t backoff = q->cfg->min_backoff_ms;
        while (!q->stop) {
            struct post_settings s;
            settings_copy(q, &s);
            pthread_mutex_unlock(&r->mu);
            int64_t retry_after = -1;
            enum outcome o = post(q, &s, r->user_agent, body, len, &retry_after);
            int64_t max_backoff = s.max_backoff_ms;
            settings_free(&s);
            pthread_mutex_lock(&r->mu);
            if (o == SENT) {
                q->sent += k;
                q->bytes += len;
                if (newest > q->highest_sent_ts)
                    q->highest_sent_ts = newest;
                break;
            }
            if (o == FAIL) {
                q->failed += k;
                break;
            }
            q->retried += k;
            int64_t wait = retry_after >= 0 ? retry_after : backoff;
            struct timespec dl = firn_deadline_ms(wait);
            /* wakes for new samples too; the wait then goes on */
            int64_t until = firn_mono_ms() + wait;
            while (!q->stop && firn_mono_ms() < until)
                pthread_cond_timedwait(&q->wake, &r->mu, &dl);
            backoff = backoff * 2 < max_backoff ? backoff * 2 : max_backoff;
        }
        free(body);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- queues ---------------------------------------------------------------------- */

static void ring_drop_oldest(struct rw_queue *q)
{
    free(q->ring[q->head].labels);
    q->head = (q->head + 1) % q->cap;
    q->len--;
    q->dropped_full++;
}

/* Re-sizes the ring to cap (under the lock), keeping the newest samples. */
static void ring_resize(struct rw_queue *q, size_t cap)
{
    if (cap == q->cap)
        return;
    struct rw_sample *ring = firn_xcalloc(cap, sizeof *ring);   /* the config's capacity */
    while (q->len > cap)
        ring_drop_oldest(q);
    for (size_t i = 0; i < q->len; i++)
        ring[i] = q->ring[(q->head + i) % q->cap];
    free(q->ring);
    q->ring = ring;
    q->cap = cap;
    q->head = 0;
}

static void queue_free(struct rw_queue *q)
{
    while (q->len)
        ring_drop_oldest(q);
    free(q->ring);
    free(q->key);
    free(q->remote_name);
    free(q->url);
    pthread_cond_destroy(&q->wake);
    free(q);
}

/* Stops q's sender (r->mu held on entry and exit). */
static void queue_stop(rules_remote *r, struct rw_queue *q)
{
    q->stop = true;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&r->mu);
    if (q->started)
        pthread_join(q->thread, NULL);
    pthread_mutex_lock(&r->mu);
}

static char *queue_key(const config_remote_write *c)
{
    return firn_xasprintf("%s\n%s", c->url, c->name);
}

static struct rw_queue *queue_new(rules_remote *r, const config_remote_write *c)
{
    struct rw_queue *q = firn_xcalloc(1, sizeof *q);
    q->owner = r;
    q->key = queue_key(c);
    q->url = firn_xstrdup(c->url);
    if (c->name[0]) {
        q->remote_name = firn_xstrdup(c->name);
    } else {
        /* Prometheus names an unnamed queue by its config's hash */
        char h[8];
        snprintf(h, sizeof h, "%06" PRIx64, XXH3_64bits(c->url, strlen(c->url)) & 0xffffff);
        q->remote_name = firn_xstrdup(h);
    }
    q->cap = c->capacity;
    q->ring = firn_xcalloc(q->cap, sizeof *q->ring);
    pthread_cond_init(&q->wake, NULL);
    return q;
}

void rules_remote_set(rules_remote *r, const firn_config *cfg)
{
    struct rw_queue **next = firn_xcalloc(cfg->n_remote_writes + 1, sizeof *next);
    pthread_mutex_lock(&r->mu);
    size_t n_next = 0;
    for (size_t i = 0; i < cfg->n_remote_writes; i++) {
        const config_remote_write *c = &cfg->remote_writes[i];
        char *key = queue_key(c);
        struct rw_queue *q = NULL;
        for (size_t j = 0; j < r->n_queues && !q; j++)
            if (r->queues[j] && strcmp(r->queues[j]->key, key) == 0) {
                q = r->queues[j];
                r->queues[j] = NULL;   /* kept */
            }
        free(key);
        if (!q)
            q = queue_new(r, c);
        q->cfg = c;
        ring_resize(q, c->capacity);
        if (!q->started) {
            q->started = pthread_create(&q->thread, NULL, sender, q) == 0;
            if (!q->started) {
                firn_log(FIRN_LOG_ERROR, "remote", "starting a remote_write sender failed",
                         "url=%s", c->url);
                queue_free(q);
                continue;
            }
        }
        pthread_cond_signal(&q->wake);   /* deadlines and sizes may have changed */
        next[n_next++] = q;
    }
    struct rw_queue **old = r->queues;
    size_t n_old = r->n_queues;
    r->queues = next;
    r->n_queues = n_next;
    r->external = cfg->external_labels;
    r->n_external = cfg->n_external_labels;
    /* the queues no longer configured (kept ones are NULL in old) */
    for (size_t j = 0; j < n_old; j++) {
        struct rw_queue *q = old[j];
        if (!q)
            continue;
        queue_stop(r, q);
        if (q->len)
            firn_log(FIRN_LOG_WARN, "remote", "remote_write removed, pending samples dropped",
                     "remote_name=%s url=%s samples=%zu", q->remote_name, q->url, q->len);
        queue_free(q);
    }
    free(old);
    pthread_mutex_unlock(&r->mu);
}

void rules_remote_append(rules_remote *r, const tsdb_float_sample *s, size_t n)
{
    firn_arena *arena = firn_arena_new(0);
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; r->n_queues && i < n; i++) {
        /* external labels where the series lacks them */
        firn_label *l = firn_arena_alloc(arena, (s[i].n_labels + r->n_external + 1) * sizeof *l);
        size_t nl = 0;
        for (size_t k = 0; k < s[i].n_labels; k++)
            l[nl++] = s[i].labels[k];
        for (size_t k = 0; k < r->n_external; k++) {
            bool have = false;
            for (size_t j = 0; j < s[i].n_labels && !have; j++)
                have = strcmp(s[i].labels[j].name, r->external[k].name) == 0 &&
                       s[i].labels[j].value[0];
            if (!have)
                l[nl++] = r->external[k];
        }
        firn_err err = {0};
        if (firn_labels_normalize(l, &nl, &err) < 0)
            continue;
        if ((double)s[i].timestamp_ms / 1000.0 > r->highest_ts)
            r->highest_ts = (double)s[i].timestamp_ms / 1000.0;
        for (size_t qi = 0; qi < r->n_queues; qi++) {
            struct rw_queue *q = r->queues[qi];
            firn_label *out = l;
            size_t n_out = nl;
            if (q->cfg->n_write_relabel_configs &&
                firn_relabel_process(q->cfg->write_relabel_configs,
                                     q->cfg->n_write_relabel_configs, l, nl, arena, &out, &n_out,
                                     &err) <= 0) {
                q->dropped_relabel++;
                continue;
            }
            firn_label *packed = rules_labels_pack(out, n_out);
            if (q->len == q->cap)
                ring_drop_oldest(q);
            if (q->len == 0)
                q->first_pending_ms = firn_mono_ms();
            q->ring[(q->head + q->len) % q->cap] =
                (struct rw_sample){packed, n_out, s[i].timestamp_ms, s[i].value};
            q->len++;
            if (q->len >= q->cfg->max_samples_per_send || q->len == 1)
                pthread_cond_signal(&q->wake);
        }
    }
    pthread_mutex_unlock(&r->mu);
    firn_arena_free(arena);
}

void rules_remote_free(rules_remote *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    struct rw_queue **old = r->queues;
    size_t n_old = r->n_queues;
    r->queues = NULL;
    r->n_queues = 0;
    for (size_t j = 0; j < n_old; j++) {
        queue_stop(r, old[j]);
        queue_free(old[j]);
    }
    free(old);
    pthread_mutex_unlock(&r->mu);
    pthread_mutex_destroy(&r->mu);
    free(r->user_agent);
    free(r);
}

/* ---- metrics ------------------------------------------------------------------------ */

void rules_remote_metrics_write(rules_remote *r, firn_buf *b)
{
    static const struct {
        const char *name, *type, *help;
    } F[] = {
        {"firn_remote_storage_samples_total", "counter",
         "Samples sent to remote storage and accepted."},
        {"firn_remote_storage_samples_failed_total", "counter",
         "Samples refused by remote storage with an error that is not retried (a 4xx other "
         "than 429)."},
        {"firn_remote_storage_samples_retried_total", "counter",
         "Samples whose send failed with a recoverable error (5xx, 429, transport) and was "
         "retried."},
        {"firn_remote_storage_samples_dropped_total", "counter",
         "Samples not sent: reason=\"queue_full\" the queue was at capacity (its oldest "
         "went), reason=\"relabel\" dropped by write_relabel_configs."},
        {"firn_remote_storage_samples_pending", "gauge", "Samples waiting in the queue."},
        {"firn_remote_storage_bytes_total", "counter",
         "Compressed request bytes accepted by remote storage."},
        {"firn_remote_storage_queue_highest_sent_timestamp_seconds", "gauge",
         "Newest sample timestamp remote storage accepted, in seconds since the epoch."},
        {"firn_remote_storage_shard_capacity", "gauge",
         "Capacity of the queue (firn sends through one shard)."},
        {"firn_remote_storage_max_samples_per_send", "gauge",
         "Most samples in one request."},
    };
    pthread_mutex_lock(&r->mu);
    for (size_t f = 0; f < sizeof F / sizeof *F; f++) {
        firn_metrics_header(b, F[f].name, F[f].type, F[f].help);
        for (size_t i = 0; i < r->n_queues; i++) {
            const struct rw_queue *q = r->queues[i];
            firn_label l[3] = {{"remote_name", q->remote_name}, {"url", q->url}, {NULL, NULL}};
            double v;
            switch (f) {
            case 0: v = (double)q->sent; break;
            case 1: v = (double)q->failed; break;
            case 2: v = (double)q->retried; break;
            case 3:
                l[2] = (firn_label){"reason", "queue_full"};
                firn_metrics_sample(b, F[f].name, l, 3, (double)q->dropped_full);
                l[2] = (firn_label){"reason", "relabel"};
                v = (double)q->dropped_relabel;
                break;
            case 4: v = (double)q->len; break;
            case 5: v = (double)q->bytes; break;
            case 6: v = q->highest_sent_ts; break;
            case 7: v = (double)q->cap; break;
            default: v = (double)q->cfg->max_samples_per_send; break;
            }
            firn_metrics_sample(b, F[f].name, l, l[2].name ? 3 : 2, v);
        }
    }
    firn_metrics_single(b, "firn_remote_storage_highest_timestamp_in_seconds", "gauge",
                        "Newest sample timestamp queued for remote storage, in seconds since "
                        "the epoch.",
                        r->highest_ts);
    pthread_mutex_unlock(&r->mu);
}
