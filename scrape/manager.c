/* manager.c -- the scrape manager: pools, loops, the libcurl scrape thread
 * and the ingest workers (contract in scrape.h).
 *
 * Ownership and lifetimes:
 * - A cfg_ref wraps one applied firn_config with a reference count: the
 *   manager holds one on the current config, each pool one on the config it
 *   was built from, each loop one on its pool's config (loops point into
 *   the config: their profile type and scrape config).
 * - A loop is reference counted: its pool holds one, the scheduling heap one
 *   per entry, an in-flight ingest job one.  Removing a loop from its pool
 *   marks it removed; whoever drops the last reference frees it.
 * - m->mu guards the pools, every loop's health fields and the lists the
 *   scrape thread picks up (loops to schedule, loops to reap).  Loop fields
 *   set at creation (labels, URL, offset, configs) are read without it.
 * - loop->busy is set by the scrape thread when a scrape starts and cleared
 *   by whoever finishes with the loop (the scrape thread on a failed fetch,
 *   an ingest worker once the store has answered): so fetching and storing
 *   of one loop never overlap, and its delta state needs no lock.  A loop
 *   handed to the store keeps its ingest job's reference until then.
 */
#include <assert.h>
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define XXH_STATIC_LINKING_ONLY   /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "httpc/httpc.h"
#include "ingest/ingest.h"
#include "pprof/pprof.h"
#include "scrape/scrape.h"

#define DEFAULT_INGEST_WORKERS 2
#define DEFAULT_INGEST_QUEUE 512
#define MAX_CONNECTIONS_CACHED 1024
#define ERROR_MAX 512

/* ---- results (firn_scrapes_total{result}) ---------------------------------- */

enum result {
    RES_SUCCESS,       /* stored */
    RES_BASELINE,      /* first scrape of a cumulative profile: baseline only */
    RES_HTTP_ERROR,    /* status other than 200 */
    RES_FETCH_ERROR,   /* connection, DNS, TLS, protocol */
    RES_TIMEOUT,
    RES_BODY_LIMIT,
    RES_DECODE_ERROR,
    RES_LIMIT,         /* sample_limit, label_limit, target_limit */
    RES_STORE_ERROR,
    RES_QUEUE_FULL,
    RES_SKIPPED,       /* the previous scrape of the loop was still running */
    RES_BUDGET,        /* the ingest memory budget was in use: skipped */
    RES_COUNT
};

static const char *const RESULT_NAMES[RES_COUNT] = {
    "success", "baseline", "http_error", "fetch_error", "timeout", "body_limit",
    "decode_error", "limit", "store_error", "queue_full", "skipped", "budget",
};

/* ---- types ------------------------------------------------------------------ */

typedef struct cfg_ref {
    firn_config *cfg;
    _Atomic int refs;
} cfg_ref;

typedef struct pool pool;

typedef struct loop {
    _Atomic int refs;
    _Atomic bool busy;
    _Atomic bool removed;
    scrape_manager *m;
    cfg_ref *cref;
    const config_scrape *job;
    const config_profile_type *pt;
    char *pool_name;                /* copied: the loop may outlive its pool */
    firn_arena *arena;              /* labels and strings below */
    scrape_target target;           /* labels copied into arena */
    firn_label *store_labels;       /* __name__ and target.public_labels (which point
                                       into it): /api/v1/targets' labels */
    size_t n_store_labels;
    char *url;
    uint64_t key;                   /* identity within the pool: labels + URL */
    uint64_t offset_ms;
    int64_t label_count;            /* for label_limit */

    /* scrape thread only */
    CURL *easy;
    bool in_multi;                  /* easy is added to the multi handle */
    httpc_request req;              /* headers, connect_to: live while in_multi */
    firn_buf body;
    ingest_grant body_grant;        /* body's bytes, taken from the ingest budget */
    bool body_too_big;
    bool over_budget;               /* the ingest budget refused more of the body */
    int64_t started_mono_ms;
    int64_t started_wall_ms;
    char curl_error[CURL_ERROR_SIZE];

    /* ingest worker only (serialized by busy) */
    pprof_delta_state *delta;
    /* the store's answer to the scrape handed to it (qmu while queued) */
    ingest_pending *pending;
    struct loop *done_next;

    /* m->mu */
    scrape_health health;
    char last_error[ERROR_MAX];
    int64_t last_scrape_ms;
    double last_duration_s;
} loop;

typedef struct provider {
    char *name;
    disc_groups groups;             /* one per source, latest wins */
} provider;

struct pool {
    char *name;
    cfg_ref *cref;
    const config_scrape *job;
    loop **loops;                   /* sorted by labels for status */
    size_t n_loops;
    firn_label **dropped;           /* discovered label sets of dropped targets */
    size_t *n_dropped_labels;
    size_t n_dropped;
    firn_arena *dropped_arena;
    provider *providers;
    size_t n_providers;
    char limit_error[ERROR_MAX];    /* target_limit exceeded: every loop fails */
};

typedef struct heap_entry {
    int64_t due_mono_ms;
    loop *l;
} heap_entry;

typedef struct ingest_job {
    loop *l;
    firn_buf body;
    ingest_grant grant;             /* body's bytes in the ingest budget */
    int64_t fetch_s_start_mono;
} ingest_job;

struct scrape_manager {
    scrape_options opts;
    char *user_agent;
    pthread_mutex_t mu;
    cfg_ref *current;
    pool **pools;
    size_t n_pools;
    loop **to_schedule;             /* new loops for the scrape thread */
    size_t n_to_schedule, cap_to_schedule;
    loop **to_reap;                 /* removed loops it must abort and release */
    size_t n_to_reap, cap_to_reap;
    bool stopping;

    /* scrape thread */
    pthread_t thread;
    CURLM *multi;
    heap_entry *heap;
    size_t n_heap, cap_heap;

    /* ingest */
    pthread_mutex_t qmu;
    pthread_cond_t qcond;
    ingest_job *queue;              /* ring */
    size_t q_head, q_len;
    bool q_stopping;
    loop *done_head;                /* scrapes the store has answered, for a worker */
    size_t in_store;                /* scrapes handed to the store, not yet finished */
    pthread_t *workers;
    size_t n_workers;

    /* self-metrics */
    _Atomic uint64_t results[RES_COUNT];
    _Atomic uint64_t samples_stored;
    _Atomic uint64_t bytes_fetched;
    _Atomic uint64_t syncs;
    firn_histogram duration;
};

const char *scrape_health_name(scrape_health h)
{
    switch (h) {
    case SCRAPE_HEALTH_UP:
        return "up";
    case SCRAPE_HEALTH_DOWN:
        return "down";
    default:
        return "unknown";
    }
}

/* ---- references ---------------------------------------------------------------- */

static cfg_ref *cfg_ref_get(cfg_ref *c)
{
    atomic_fetch_add(&c->refs, 1);
    return c;
}

static void cfg_ref_put(cfg_ref *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1) {
        config_free(c->cfg);
        free(c);
    }
}

static loop *loop_get(loop *l)
{
    atomic_fetch_add(&l->refs, 1);
    return l;
}

/* Free a fetched body and give its bytes back to the ingest budget. */
static void body_drop(firn_buf *body, ingest_grant *g)
{
    firn_buf_free(body);
    ingest_grant_release(g);
}

static void loop_put(loop *l)
{
    if (!l || atomic_fetch_sub(&l->refs, 1) != 1)
        return;
    if (l->easy)
        curl_easy_cleanup(l->easy);
    httpc_request_free(&l->req);
    body_drop(&l->body, &l->body_grant);
    pprof_delta_free(l->delta);
    free(l->url);
    free(l->pool_name);
    firn_arena_free(l->arena);
    cfg_ref_put(l->cref);
    free(l);
}

/* Record the end of one scrape of l (any thread). */
static void loop_finish(loop *l, enum result res, const char *error, int64_t started_mono)
{
    scrape_manager *m = l->m;
    double took = (double)(firn_mono_ms() - started_mono) / 1000.0;
    atomic_fetch_add(&m->results[res], 1);
    if (res != RES_SKIPPED)
        firn_histogram_observe(&m->duration, took);
    pthread_mutex_lock(&m->mu);
    l->health = error ? SCRAPE_HEALTH_DOWN : SCRAPE_HEALTH_UP;
    /* a longer error is cut to what the targets page shows */
    snprintf(l->last_error, sizeof l->last_error, "%.*s", (int)sizeof l->last_error - 1,
             error ? error : "");
    l->last_scrape_ms = l->started_wall_ms;
    l->last_duration_s = took;
    pthread_mutex_unlock(&m->mu);
    if (error && !atomic_load(&l->removed)) {
        char q[600];
        firn_log(FIRN_LOG_DEBUG, "scrape", "scrape failed", "pool=%s url=%s err=%s",
                 l->pool_name, l->url, firn_log_quote(q, sizeof q, error));
    }
}

/* ---- growing arrays ------------------------------------------------------------- */

static void push_loop(loop ***v, size_t *n, size_t *cap, loop *l)
{
    *v = firn_grow(*v, *n, cap, sizeof **v, 64);
    (*v)[(*n)++] = l;
}

/* ---- the schedule (a binary min-heap on due time) ---------------------------- */

static void heap_push(scrape_manager *m, int64_t due, loop *l)
{
    m->heap = firn_grow(m->heap, m->n_heap, &m->cap_heap, sizeof *m->heap, 256);
    size_t i = m->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (m->heap[parent].due_mono_ms <= due)
            break;
        m->heap[i] = m->heap[parent];
        i = parent;
    }
    m->heap[i] = (heap_entry){due, l};
}

static heap_entry heap_pop(scrape_manager *m)
{
    heap_entry top = m->heap[0];
    heap_entry last = m->heap[--m->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m->n_heap)
            break;
        if (c + 1 < m->n_heap && m->heap[c + 1].due_mono_ms < m->heap[c].due_mono_ms)
            c++;
        if (last.due_mono_ms <= m->heap[c].due_mono_ms)
            break;
        m->heap[i] = m->heap[c];
        i = c;
    }
    if (m->n_heap)
        m->heap[i] = last;
    return top;
}

/* The next due time of l after now, on its phase. */
static int64_t next_due(const loop *l)
{
    return firn_mono_ms() +
           scrape_next_delay_ms(firn_now_ms(), l->target.interval_ms, l->offset_ms);
}

/* ---- fetching (scrape thread) ---------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    loop *l = ctx;
    size_t n = size * nmemb;
    uint64_t limit = l->job->body_size_limit ? l->job->body_size_limit
                                             : l->m->opts.default_body_limit;
    if (l->body.len + n > limit) {
        l->body_too_big = true;
        return 0;  /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    /* the body's bytes count in the ingest budget until stored (realloc
     * leaves the unused part of a large buffer untouched: len is what is
     * resident) */
    if (!ingest_budget_take(&l->body_grant, n)) {
        l->over_budget = true;
        return 0;
    }
    firn_buf_append(&l->body, data, n);   /* no cap: the limit is checked above */
    return n;
}

static int64_t loop_timeout_ms(const loop *l)
{
    int64_t t = l->target.timeout_ms;
    if (l->pt->delta && l->pt->timeout_ms > t)
        t = l->pt->timeout_ms;  /* the target records for `seconds` first */
    return t;
}

/* Set up l's request.  Returns NULL or an error for lastError. */
static const char *loop_prepare(loop *l, char *why, size_t why_size)
{
    if (!l->easy) {
        l->easy = curl_easy_init();
        if (!l->easy)
            firn_oom(0);   /* libcurl's own allocation failed */
    } else {
        curl_easy_reset(l->easy);
    }
    httpc_request_free(&l->req);
    CURL *e = l->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, l);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, l);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, l->curl_error);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, l->m->user_agent);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)loop_timeout_ms(l));
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);  /* Go's client follows redirects */
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    uint64_t limit = l->job->body_size_limit ? l->job->body_size_limit
                                             : l->m->opts.default_body_limit;
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)limit);

    char hdr[128];
    snprintf(hdr, sizeof hdr, "X-Prometheus-Scrape-Timeout-Seconds: %g",
             (double)loop_timeout_ms(l) / 1000.0);
    if (!(l->req.headers = curl_slist_append(NULL, hdr)))
        firn_oom(sizeof hdr);   /* libcurl's own allocation failed */
    return httpc_apply(e, &l->job->http, l->url, &l->req, why, why_size);
}

static void loop_start(scrape_manager *m, loop *l)
{
    char why[ERROR_MAX];
    l->started_mono_ms = firn_mono_ms();
    l->started_wall_ms = firn_now_ms();
    if (l->job->label_limit && (uint64_t)l->label_count > l->job->label_limit) {
        snprintf(why, sizeof why, "label_limit exceeded (labels: %lld, limit: %llu)",
                 (long long)l->label_count, (unsigned long long)l->job->label_limit);
        loop_finish(l, RES_LIMIT, why, l->started_mono_ms);
        return;
    }
    body_drop(&l->body, &l->body_grant);
    l->body_too_big = false;
    l->over_budget = false;
    l->curl_error[0] = '\0';
    const char *error = loop_prepare(l, why, sizeof why);
    if (error) {
        loop_finish(l, RES_FETCH_ERROR, error, l->started_mono_ms);
        return;
    }
    if (curl_multi_add_handle(m->multi, l->easy) != CURLM_OK) {
        loop_finish(l, RES_FETCH_ERROR, "could not start the request", l->started_mono_ms);
        return;
    }
    l->in_multi = true;
    atomic_store(&l->busy, true);
    loop_get(l);  /* the transfer's reference */
}


static bool enqueue_ingest(scrape_manager *m, loop *l);

/* A transfer ended: record a failure, or hand the body to the workers. */
static void loop_fetched(scrape_manager *m, loop *l, CURLcode rc)
{
    char why[ERROR_MAX + CURL_ERROR_SIZE];
    long code = 0;
    curl_easy_getinfo(l->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_multi_remove_handle(m->multi, l->easy);
    l->in_multi = false;
    enum result res = RES_SUCCESS;
    if (l->over_budget) {
        snprintf(why, sizeof why, "ingest memory budget (%zu bytes) in use: scrape skipped",
                 ingest_budget_limit());
        res = RES_BUDGET;
    } else if (l->body_too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        uint64_t limit = l->job->body_size_limit ? l->job->body_size_limit
                                                 : m->opts.default_body_limit;
        snprintf(why, sizeof why, "body size limit exceeded (limit: %llu bytes)",
                 (unsigned long long)limit);
        res = RES_BODY_LIMIT;
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(why, sizeof why, "Get \"%s\": timed out after %gs", l->url,
                 (double)loop_timeout_ms(l) / 1000.0);
        res = RES_TIMEOUT;
    } else if (rc != CURLE_OK) {
        snprintf(why, sizeof why, "Get \"%s\": %s", l->url,
                 l->curl_error[0] ? l->curl_error : curl_easy_strerror(rc));
        res = RES_FETCH_ERROR;
    } else if (code != 200) {
        const char *text = firn_http_status_text((int)code);
        snprintf(why, sizeof why, "server returned HTTP status %ld%s%s", code, *text ? " " : "",
                 text);
        res = RES_HTTP_ERROR;
    }
    atomic_fetch_add(&m->bytes_fetched, l->body.len);
    if (res != RES_SUCCESS) {
        body_drop(&l->body, &l->body_grant);
        loop_finish(l, res, why, l->started_mono_ms);
        atomic_store(&l->busy, false);
    } else if (atomic_load(&l->removed)) {
        body_drop(&l->body, &l->body_grant);
        atomic_store(&l->busy, false);
    } else if (!enqueue_ingest(m, l)) {
        body_drop(&l->body, &l->body_grant);
        loop_finish(l, RES_QUEUE_FULL, "ingest queue full: profile dropped", l->started_mono_ms);
        atomic_store(&l->busy, false);
    }
    loop_put(l);  /* the transfer's reference */
}

/* Take the loops apply/update created or removed since the last wake. */
static void take_changes(scrape_manager *m)
{
    pthread_mutex_lock(&m->mu);
    loop **add = m->to_schedule, **reap = m->to_reap;
    size_t n_add = m->n_to_schedule, n_reap = m->n_to_reap;
    m->to_schedule = m->to_reap = NULL;
    m->n_to_schedule = m->cap_to_schedule = m->n_to_reap = m->cap_to_reap = 0;
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < n_reap; i++) {
        loop *l = reap[i];
        if (l->in_multi) {
            /* Abort the transfer; a loop being stored finishes in its
             * worker instead. */
            curl_multi_remove_handle(m->multi, l->easy);
            l->in_multi = false;
            body_drop(&l->body, &l->body_grant);
            atomic_store(&l->busy, false);
            loop_put(l);  /* the transfer's reference */
        }
        loop_put(l);  /* the pool's reference */
    }
    free(reap);
    for (size_t i = 0; i < n_add; i++)
        heap_push(m, next_due(add[i]), add[i]);
    free(add);
}

static void *scrape_thread(void *arg)
{
    scrape_manager *m = arg;
    for (;;) {
        pthread_mutex_lock(&m->mu);
        bool stop = m->stopping;
        pthread_mutex_unlock(&m->mu);
        if (stop)
            break;
        take_changes(m);

        int64_t now = firn_mono_ms();
        while (m->n_heap && m->heap[0].due_mono_ms <= now) {
            heap_entry e = heap_pop(m);
            loop *l = e.l;
            if (atomic_load(&l->removed)) {
                loop_put(l);  /* the heap's reference */
                continue;
            }
            pthread_mutex_lock(&m->mu);
            const char *limit_error = NULL;
            char limit_copy[ERROR_MAX];
            for (size_t i = 0; i < m->n_pools; i++)
                if (strcmp(m->pools[i]->name, l->pool_name) == 0 && m->pools[i]->limit_error[0]) {
                    snprintf(limit_copy, sizeof limit_copy, "%s", m->pools[i]->limit_error);
                    limit_error = limit_copy;
                }
            pthread_mutex_unlock(&m->mu);
            if (atomic_load(&l->busy)) {
                atomic_fetch_add(&m->results[RES_SKIPPED], 1);
            } else if (limit_error) {
                l->started_wall_ms = firn_now_ms();
                loop_finish(l, RES_LIMIT, limit_error, firn_mono_ms());
            } else {
                loop_start(m, l);
            }
            /* The next tick is a whole interval on, so the phase never
             * drifts and a tick can never come twice (recomputing from the
             * wall clock, rounded to ms, could land 1 ms later). */
            int64_t due = e.due_mono_ms + l->target.interval_ms;
            if (due <= now)
                due += (now - due) / l->target.interval_ms * l->target.interval_ms +
                       l->target.interval_ms;
            assert(due > now);
            heap_push(m, due, l);
        }

        int running = 0;
        curl_multi_perform(m->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            loop *l = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&l);
            loop_fetched(m, l, msg->data.result);
        }

        long curl_timeout = -1;
        curl_multi_timeout(m->multi, &curl_timeout);
        int64_t wait = 1000;
        if (m->n_heap) {
            int64_t until = m->heap[0].due_mono_ms - firn_mono_ms();
            wait = until < 0 ? 0 : until;
        }
        if (curl_timeout >= 0 && curl_timeout < wait)
            wait = curl_timeout;
        if (wait > 1000)
            wait = 1000;
        curl_multi_poll(m->multi, NULL, 0, (int)wait, NULL);
    }
    return NULL;
}

/* ---- storing (ingest workers) ------------------------------------------------- */

static bool enqueue_ingest(scrape_manager *m, loop *l)
{
    pthread_mutex_lock(&m->qmu);
    if (m->q_len == m->opts.ingest_queue_max || m->q_stopping) {
        pthread_mutex_unlock(&m->qmu);
        return false;
    }
    ingest_job *j = &m->queue[(m->q_head + m->q_len) % m->opts.ingest_queue_max];
    j->l = loop_get(l);
    j->body = l->body;
    j->grant = l->body_grant;
    l->body = (firn_buf){0};
    l->body_grant = (ingest_grant){0};
    m->q_len++;
    pthread_cond_signal(&m->qcond);
    pthread_mutex_unlock(&m->qmu);
    return true;
}

/* The store's answer to l's scrape (its writer thread): queued for a worker,
 * which records it (ingest_done_fn). */
static void scrape_stored(void *ctx, ingest_pending *pd)
{
    loop *l = ctx;
    scrape_manager *m = l->m;
    pthread_mutex_lock(&m->qmu);
    l->pending = pd;
    l->done_next = m->done_head;
    m->done_head = l;
    pthread_cond_signal(&m->qcond);
    pthread_mutex_unlock(&m->qmu);
}

static void record(scrape_manager *m, loop *l, int rc, const ingest_result *r, const char *error)
{
    enum result res = RES_SUCCESS;
    if (rc < 0)
        res = r->failed == INGEST_FAILED_LIMIT   ? RES_LIMIT
              : r->failed == INGEST_FAILED_STORE ? RES_STORE_ERROR
                                                 : RES_DECODE_ERROR;
    else if (r->baseline)
        res = RES_BASELINE;
    else
        atomic_fetch_add(&m->samples_stored, r->samples);
    loop_finish(l, res, rc < 0 ? error : NULL, l->started_mono_ms);
}

/* Decode l's body and hand it to the store without waiting for the commit:
 * true when handed over (scrape_stored ends the scrape), false when ended
 * here (refused, or a delta baseline). */
static bool ingest_one(scrape_manager *m, loop *l, firn_buf *body)
{
    firn_err err = {0};
    ingest_options o = {
        .profile_name = l->pt->name,
        /* the target sent a delta over ?seconds=N, or cumulative columns to
         * difference against its previous scrape */
        .delta = l->pt->delta ? INGEST_DELTA_ALL : INGEST_DELTA_CUMULATIVE,
        .delta_state = &l->delta,
        .timestamp_ms = l->started_wall_ms,
        .sample_limit = l->job->sample_limit,
        .keep_sample_types = l->pt->keep_sample_types,
        .n_keep_sample_types = l->pt->n_keep_sample_types,
    };
    ingest_result r;
    pthread_mutex_lock(&m->qmu);
    m->in_store++;   /* before the store can answer */
    pthread_mutex_unlock(&m->qmu);
    /* __name__ is the store's to derive */
    int rc = ingest_pprof_async(m->opts.db, l->target.public_labels, l->target.n_public,
                                body->data, body->len, &o, &r, scrape_stored, l, &err);
    if (rc == INGEST_QUEUED)
        return true;
    pthread_mutex_lock(&m->qmu);
    m->in_store--;
    pthread_mutex_unlock(&m->qmu);
    record(m, l, rc, &r, err.msg);
    return false;
}

/* A scrape the store has answered: forward it, record it, free the loop
 * for its next scrape. */
static void ingest_finish(scrape_manager *m, loop *l)
{
    firn_err err = {0};
    ingest_result r;
    ingest_pending *pd = l->pending;
    l->pending = NULL;
    int rc = ingest_pending_finish(pd, &r, &err);
    record(m, l, rc, &r, err.msg);
    atomic_store(&l->busy, false);
    loop_put(l);
}

static void *ingest_worker(void *arg)
{
    scrape_manager *m = arg;
    for (;;) {
        pthread_mutex_lock(&m->qmu);
        while (m->q_len == 0 && !m->done_head && !(m->q_stopping && m->in_store == 0))
            pthread_cond_wait(&m->qcond, &m->qmu);
        if (m->done_head) {
            loop *l = m->done_head;
            m->done_head = l->done_next;
            m->in_store--;
            if (m->q_stopping && m->in_store == 0)
                pthread_cond_broadcast(&m->qcond);   /* the others may leave */
            pthread_mutex_unlock(&m->qmu);
            ingest_finish(m, l);
            continue;
        }
        if (m->q_len == 0) {
            /* stopping, nothing queued, nothing in the store */
            pthread_mutex_unlock(&m->qmu);
            return NULL;
        }
        ingest_job j = m->queue[m->q_head];
        m->q_head = (m->q_head + 1) % m->opts.ingest_queue_max;
        m->q_len--;
        pthread_mutex_unlock(&m->qmu);
        bool handed = !atomic_load(&j.l->removed) && ingest_one(m, j.l, &j.body);
        /* the profile is decoded: its bytes are not needed any more */
        body_drop(&j.body, &j.grant);
        if (!handed) {
            atomic_store(&j.l->busy, false);
            loop_put(j.l);
        }
    }
}

/* ---- pools ------------------------------------------------------------------- */

static int label_set_cmp(const firn_label *a, size_t na, const firn_label *b, size_t nb)
{
    for (size_t i = 0; i < na && i < nb; i++) {
        int c = strcmp(a[i].name, b[i].name);
        if (c)
            return c;
        c = strcmp(a[i].value, b[i].value);
        if (c)
            return c;
    }
    return na < nb ? -1 : na > nb;
}

static int loop_cmp(const void *a, const void *b)
{
    const loop *x = *(loop *const *)a, *y = *(loop *const *)b;
    int c = label_set_cmp(x->store_labels, x->n_store_labels, y->store_labels, y->n_store_labels);
    return c ? c : strcmp(x->pt->name, y->pt->name);
}

static firn_label *copy_labels(firn_arena *a, const firn_label *in, size_t n)
{
    firn_label *out = firn_arena_calloc(a, n + 1, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        out[i].name = firn_arena_strndup(a, in[i].name, strlen(in[i].name));
        out[i].value = firn_arena_strndup(a, in[i].value, strlen(in[i].value));
    }
    return out;
}

/* *dst becomes a copy of src in a. */
static void copy_group(firn_arena *a, disc_group *dst, const disc_group *src)
{
    dst->source = firn_arena_strndup(a, src->source, strlen(src->source));
    dst->labels = copy_labels(a, src->labels, src->n_labels);
    dst->n_labels = src->n_labels;
    dst->targets = firn_arena_calloc(a, src->n_targets + 1, sizeof *dst->targets);
    for (size_t t = 0; t < src->n_targets; t++) {
        dst->targets[t].labels = copy_labels(a, src->targets[t].labels, src->targets[t].n_labels);
        dst->targets[t].n_labels = src->targets[t].n_labels;
    }
    dst->n_targets = src->n_targets;
}

static uint64_t loop_key(const scrape_target *t, const char *url, const char *profile)
{
    XXH3_state_t state;
    XXH3_state_t *st = &state;
    XXH3_64bits_reset(st);
    static const unsigned char sep = 0xff;
    for (size_t i = 0; i < t->n_labels; i++) {
        XXH3_64bits_update(st, t->labels[i].name, strlen(t->labels[i].name));
        XXH3_64bits_update(st, &sep, 1);
        XXH3_64bits_update(st, t->labels[i].value, strlen(t->labels[i].value));
        XXH3_64bits_update(st, &sep, 1);
    }
    XXH3_64bits_update(st, url, strlen(url));
    XXH3_64bits_update(st, &sep, 1);
    XXH3_64bits_update(st, profile, strlen(profile));
    return XXH3_64bits_digest(st);
}

/* A new loop for profile type pt of the kept target t (labels copied). */
static loop *loop_new(scrape_manager *m, pool *p, const scrape_target *t,
                      const config_profile_type *pt, char *url, uint64_t key)
{
    loop *l = firn_xcalloc(1, sizeof *l);
    atomic_init(&l->refs, 1);
    l->m = m;
    l->cref = cfg_ref_get(p->cref);
    l->job = p->job;
    l->pt = pt;
    l->url = url;
    l->key = key;
    l->pool_name = firn_xstrdup(p->name);
    l->arena = firn_arena_new(2048);  /* a few hundred bytes of labels per loop */
    l->target = *t;
    l->target.discovered = copy_labels(l->arena, t->discovered, t->n_discovered);
    l->target.labels = copy_labels(l->arena, t->labels, t->n_labels);
    l->store_labels = firn_arena_calloc(l->arena, t->n_public + 1, sizeof *l->store_labels);
    /* __name__ sorts before any other public label (they start with a
     * letter or one underscore), so it goes first. */
    l->store_labels[0] = (firn_label){FIRN_LABEL_NAME, pt->name};
    firn_label *pub = copy_labels(l->arena, t->public_labels, t->n_public);
    memcpy(l->store_labels + 1, pub, t->n_public * sizeof *pub);
    l->n_store_labels = t->n_public + 1;
    l->target.public_labels = l->store_labels + 1;
    l->label_count = (int64_t)t->n_public;
    l->offset_ms = scrape_target_offset_ms(t, url, m->opts.offset_seed, t->interval_ms);
    l->health = SCRAPE_HEALTH_UNKNOWN;
    return l;
}

/* Remove l from service: the scrape thread aborts its transfer and drops
 * the pool's reference.  m->mu held. */
static void retire_loop(scrape_manager *m, loop *l)
{
    atomic_store(&l->removed, true);
    push_loop(&m->to_reap, &m->n_to_reap, &m->cap_to_reap, l);
}

/* Rebuild p's loops from its providers' groups, keeping every loop whose
 * identity is unchanged.  m->mu held. */
static void pool_sync(scrape_manager *m, pool *p)
{
    firn_arena *scratch = firn_arena_new(0);
    firn_arena *dropped_arena = firn_arena_new(0);
    loop **loops = NULL;
    size_t n_loops = 0, cap_loops = 0;
    firn_label **dropped = NULL;
    size_t *n_dropped_labels = NULL, n_dropped = 0, cap_dropped = 0;
    firn_u64map seen, old;
    firn_u64map_init(&seen, p->n_loops + 16);
    firn_u64map_init(&old, p->n_loops + 16);
    for (size_t i = 0; i < p->n_loops; i++)
        firn_u64map_put(&old, p->loops[i]->key, (uint32_t)i, NULL);

    size_t n_targets = 0;
    for (size_t pi = 0; pi < p->n_providers; pi++) {
        const disc_groups *gs = &p->providers[pi].groups;
        for (size_t gi = 0; gi < gs->n; gi++) {
            const disc_group *g = &gs->v[gi];
            for (size_t ti = 0; ti < g->n_targets; ti++) {
                scrape_target t;
                firn_err terr = {0};
                int trc = scrape_target_labels(p->job, g->targets[ti].labels,
                                               g->targets[ti].n_labels, g->labels, g->n_labels,
                                               scratch, &t, &terr);
                if (trc < 0) {
                    char q[600];
                    firn_log(FIRN_LOG_WARN, "scrape", "creating target failed",
                             "pool=%s err=%s", p->name, firn_log_quote(q, sizeof q, terr.msg));
                    continue;
                }
                if (t.dropped) {
                    if (n_dropped == cap_dropped) {   /* the two share one capacity */
                        dropped = firn_grow(dropped, n_dropped, &cap_dropped, sizeof *dropped, 16);
                        n_dropped_labels = firn_xreallocarray(n_dropped_labels, cap_dropped,
                                                              sizeof *n_dropped_labels);
                    }
                    dropped[n_dropped] = copy_labels(dropped_arena, t.discovered, t.n_discovered);
                    n_dropped_labels[n_dropped++] = t.n_discovered;
                    continue;
                }
                n_targets++;
                for (size_t k = 0; k < p->job->n_profile_types; k++) {
                    const config_profile_type *pt = &p->job->profile_types[k];
                    if (!pt->enabled)
                        continue;
                    char *url = scrape_target_url(&t, p->job, pt);
                    uint64_t key = loop_key(&t, url, pt->name);
                    uint32_t idx;
                    if (firn_u64map_get(&seen, key, &idx) == 1) {
                        free(url);  /* the same target twice */
                        continue;
                    }
                    loop *l;
                    bool fresh = false;
                    if (firn_u64map_get(&old, key, &idx) == 1 && p->loops[idx]) {
                        l = p->loops[idx];
                        p->loops[idx] = NULL;
                        free(url);
                    } else {
                        l = loop_new(m, p, &t, pt, url, key);
                        fresh = true;
                    }
                    push_loop(&loops, &n_loops, &cap_loops, l);
                    firn_u64map_put(&seen, key, (uint32_t)(n_loops - 1), NULL);
                    if (fresh)
                        push_loop(&m->to_schedule, &m->n_to_schedule, &m->cap_to_schedule,
                                  loop_get(l));
                }
            }
        }
    }
    /* Loops not found again stop. */
    for (size_t i = 0; i < p->n_loops; i++)
        if (p->loops[i])
            retire_loop(m, p->loops[i]);
    free(p->loops);
    firn_sort(loops, n_loops, sizeof *loops, loop_cmp);
    p->loops = loops;
    p->n_loops = n_loops;
    free(p->dropped);
    free(p->n_dropped_labels);
    firn_arena_free(p->dropped_arena);
    p->dropped = dropped;
    p->n_dropped_labels = n_dropped_labels;
    p->n_dropped = n_dropped;
    p->dropped_arena = dropped_arena;
    dropped_arena = NULL;
    p->limit_error[0] = '\0';
    if (p->job->target_limit && n_targets > p->job->target_limit)
        snprintf(p->limit_error, sizeof p->limit_error,
                 "target_limit exceeded (number of targets: %zu, limit: %llu)", n_targets,
                 (unsigned long long)p->job->target_limit);
    atomic_fetch_add(&m->syncs, 1);
    firn_u64map_destroy(&old);
    firn_u64map_destroy(&seen);
    firn_arena_free(scratch);
}

static void pool_free(scrape_manager *m, pool *p)
{
    for (size_t i = 0; i < p->n_loops; i++)
        retire_loop(m, p->loops[i]);
    free(p->loops);
    free(p->dropped);
    free(p->n_dropped_labels);
    firn_arena_free(p->dropped_arena);
    for (size_t i = 0; i < p->n_providers; i++) {
        free(p->providers[i].name);
        disc_groups_free(&p->providers[i].groups);
    }
    free(p->providers);
    free(p->name);
    cfg_ref_put(p->cref);
    free(p);
}

/* Store groups as provider's (replacing sources given).  Takes gs. */
static void pool_set_groups(pool *p, const char *provider_name, disc_groups *gs)
{
    provider *pv = NULL;
    for (size_t i = 0; i < p->n_providers; i++)
        if (strcmp(p->providers[i].name, provider_name) == 0)
            pv = &p->providers[i];
    if (!pv) {
        /* one more provider: a job has a handful, each added once */
        p->providers = firn_xreallocarray(p->providers, p->n_providers + 1, sizeof *p->providers);
        pv = &p->providers[p->n_providers++];
        pv->name = firn_xstrdup(provider_name);
        pv->groups = *gs;
        *gs = (disc_groups){0};
        return;
    }
    /* Merge by source: a source in gs replaces the old one; the rest stay.
     * The old groups are copied into gs's arena so one arena owns all. */
    size_t n = gs->n;
    for (size_t i = 0; i < pv->groups.n; i++) {
        bool replaced = false;
        for (size_t k = 0; k < gs->n; k++)
            if (strcmp(gs->v[k].source, pv->groups.v[i].source) == 0)
                replaced = true;
        n += !replaced;
    }
    disc_group *v = firn_arena_calloc(gs->arena, n + 1, sizeof *v);
    memcpy(v, gs->v, gs->n * sizeof *v);
    size_t at = gs->n;
    for (size_t i = 0; i < pv->groups.n; i++) {
        const disc_group *old = &pv->groups.v[i];
        bool replaced = false;
        for (size_t k = 0; k < gs->n; k++)
            if (strcmp(gs->v[k].source, old->source) == 0)
                replaced = true;
        if (!replaced)
            copy_group(gs->arena, &v[at++], old);
    }
    assert(at == n);
    gs->v = v;
    gs->n = n;
    disc_groups_free(&pv->groups);
    pv->groups = *gs;
    *gs = (disc_groups){0};
}

/* A new pool for job, its static targets synced.  m->mu held. */
static pool *pool_new(scrape_manager *m, cfg_ref *cref, const config_scrape *job)
{
    pool *p = firn_xcalloc(1, sizeof *p);
    p->name = firn_xstrdup(job->job_name);
    p->cref = cfg_ref_get(cref);
    p->job = job;
    disc_groups gs;
    disc_static_groups(job, &gs, NULL);   /* cannot fail (discovery.h) */
    pool_set_groups(p, "static", &gs);
    pool_sync(m, p);
    return p;
}

/* ---- the manager ------------------------------------------------------------- */

void scrape_options_default(scrape_options *o)
{
    memset(o, 0, sizeof *o);
    o->ingest_workers = DEFAULT_INGEST_WORKERS;
    o->ingest_queue_max = DEFAULT_INGEST_QUEUE;
    pprof_limits limits;
    pprof_limits_default(&limits);
    o->default_body_limit = limits.max_input_bytes;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_ALL);
}

static void wake(scrape_manager *m)
{
    curl_multi_wakeup(m->multi);
}

/* Let the ingest workers finish the jobs queued, and record every answer
 * of the store to what they handed it, and join them. */
static void stop_workers(scrape_manager *m)
{
    pthread_mutex_lock(&m->qmu);
    m->q_stopping = true;
    pthread_cond_broadcast(&m->qcond);
    pthread_mutex_unlock(&m->qmu);
    for (size_t i = 0; i < m->n_workers; i++)
        pthread_join(m->workers[i], NULL);
}

/* Free a manager that never ran (no thread left). */
static void manager_discard(scrape_manager *m)
{
    if (m->multi)
        curl_multi_cleanup(m->multi);
    free(m->user_agent);
    free(m->queue);
    free(m->workers);
    free(m);
}

scrape_manager *scrape_manager_new(const scrape_options *o, firn_err *err)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        firn_errf(err, FIRN_EIO, "initializing libcurl: %s", curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    scrape_manager *m = firn_xcalloc(1, sizeof *m);
    m->opts = *o;
    if (!m->opts.ingest_workers)
        m->opts.ingest_workers = DEFAULT_INGEST_WORKERS;
    if (!m->opts.ingest_queue_max)
        m->opts.ingest_queue_max = DEFAULT_INGEST_QUEUE;
    if (!m->opts.default_body_limit) {
        pprof_limits limits;
        pprof_limits_default(&limits);
        m->opts.default_body_limit = limits.max_input_bytes;
    }
    m->user_agent = firn_xstrdup(o->user_agent ? o->user_agent : "firn/" FIRN_VERSION);
    /* sizes from firn's own flags, not from outside input */
    m->queue = firn_xcalloc(m->opts.ingest_queue_max, sizeof *m->queue);
    m->workers = firn_xcalloc(m->opts.ingest_workers, sizeof *m->workers);
    m->multi = curl_multi_init();
    if (!m->multi)
        firn_oom(0);   /* libcurl's own allocation failed */
    static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                    2.5, 5, 10, 20, 30, 60};
    firn_histogram_init(&m->duration, bounds, sizeof bounds / sizeof bounds[0]);
    curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, (long)MAX_CONNECTIONS_CACHED);
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->qmu, NULL);
    pthread_cond_init(&m->qcond, NULL);
    for (size_t i = 0; i < m->opts.ingest_workers; i++) {
        if (pthread_create(&m->workers[i], NULL, ingest_worker, m) != 0)
            break;
        m->n_workers++;
    }
    if (m->n_workers != m->opts.ingest_workers ||
        pthread_create(&m->thread, NULL, scrape_thread, m) != 0) {
        stop_workers(m);
        manager_discard(m);
        firn_errf(err, FIRN_EIO, "starting the scrape threads failed");
        return NULL;
    }
    return m;
}

int scrape_manager_apply(scrape_manager *m, firn_config *cfg, firn_err *err)
{
    (void)err;   /* nothing left that can fail: see scrape.h */
    cfg_ref *cref = firn_xcalloc(1, sizeof *cref);
    cref->cfg = cfg;
    atomic_init(&cref->refs, 1);

    pthread_mutex_lock(&m->mu);
    pool **pools = firn_xcalloc(cfg->n_scrapes + 1, sizeof *pools);
    bool *kept = firn_xcalloc(cfg->n_scrapes + 1, sizeof *kept);
    size_t n_kept = 0, built = 0;
    for (size_t i = 0; i < cfg->n_scrapes; i++) {
        const config_scrape *job = &cfg->scrapes[i];
        for (size_t k = 0; k < m->n_pools && !pools[i]; k++) {
            pool *old = m->pools[k];
            if (strcmp(old->name, job->job_name) == 0 && config_scrape_equal(old->job, job)) {
                pools[i] = old;  /* unchanged: keeps loops, baselines, health */
                kept[i] = true;
                n_kept++;
            }
        }
        if (!pools[i]) {
            pools[i] = pool_new(m, cref, job);
            built++;
        }
    }
    size_t stopped = 0;
    for (size_t k = 0; k < m->n_pools; k++) {
        bool still = false;
        for (size_t i = 0; i < cfg->n_scrapes; i++)
            still |= pools[i] == m->pools[k];
        if (!still) {
            pool_free(m, m->pools[k]);
            stopped++;
        }
    }
    free(kept);
    free(m->pools);
    m->pools = pools;
    m->n_pools = cfg->n_scrapes;
    cfg_ref *previous = m->current;
    m->current = cref;
    pthread_mutex_unlock(&m->mu);
    cfg_ref_put(previous);
    wake(m);
    char q[300];
    firn_log(FIRN_LOG_INFO, "scrape", "scrape configuration applied",
             "source=%s pools=%zu kept=%zu started=%zu stopped=%zu",
             firn_log_quote(q, sizeof q, cfg->source), cfg->n_scrapes, n_kept, built, stopped);
    return 0;
}

int scrape_manager_update(scrape_manager *m, const char *job, const char *provider_name,
                          const disc_group *groups, size_t n, firn_err *err)
{
    /* Copy the groups first, outside the lock. */
    disc_groups gs = {0};
    gs.arena = firn_arena_new(0);
    gs.v = firn_arena_calloc(gs.arena, n + 1, sizeof *gs.v);
    for (size_t i = 0; i < n; i++)
        copy_group(gs.arena, &gs.v[gs.n++], &groups[i]);
    pthread_mutex_lock(&m->mu);
    pool *p = NULL;
    for (size_t i = 0; i < m->n_pools; i++)
        if (strcmp(m->pools[i]->name, job) == 0)
            p = m->pools[i];
    int rc;
    if (!p) {
        disc_groups_free(&gs);
        rc = firn_errf(err, FIRN_EINVAL, "no scrape config for job %s", job);
    } else {
        pool_set_groups(p, provider_name, &gs);
        pool_sync(m, p);
        rc = 0;
    }
    pthread_mutex_unlock(&m->mu);
    wake(m);
    return rc;
}

void scrape_manager_free(scrape_manager *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n_pools; i++)
        pool_free(m, m->pools[i]);
    free(m->pools);
    m->pools = NULL;
    m->n_pools = 0;
    m->stopping = true;
    pthread_mutex_unlock(&m->mu);
    wake(m);
    pthread_join(m->thread, NULL);
    /* Abort transfers still running and release everything the scrape
     * thread held. */
    take_changes(m);
    while (m->n_heap)
        loop_put(heap_pop(m).l);
    free(m->heap);

    stop_workers(m);
    curl_multi_cleanup(m->multi);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->qmu);
    pthread_cond_destroy(&m->qcond);
    cfg_ref_put(m->current);
    free(m->queue);
    free(m->workers);
    free(m->user_agent);
    free(m);
}

/* ---- status and metrics --------------------------------------------------------- */

int scrape_manager_status(scrape_manager *m, scrape_status *out, firn_err *err)
{
    (void)err;   /* nothing left that can fail: see scrape.h */
    *out = (scrape_status){0};
    out->arena = firn_arena_new(0);
    firn_arena *a = out->arena;
    pthread_mutex_lock(&m->mu);
    size_t n_active = 0, n_dropped = 0;
    for (size_t i = 0; i < m->n_pools; i++) {
        n_active += m->pools[i]->n_loops;
        n_dropped += m->pools[i]->n_dropped;
    }
    out->pools = firn_arena_calloc(a, m->n_pools + 1, sizeof *out->pools);
    out->active = firn_arena_calloc(a, n_active + 1, sizeof *out->active);
    out->dropped = firn_arena_calloc(a, n_dropped + 1, sizeof *out->dropped);
    for (size_t i = 0; i < m->n_pools; i++) {
        const pool *p = m->pools[i];
        const char *name = firn_arena_strndup(a, p->name, strlen(p->name));
        out->pools[out->n_pools++] = name;
        for (size_t k = 0; k < p->n_loops; k++) {
            const loop *l = p->loops[k];
            scrape_loop_status *s = &out->active[out->n_active++];
            s->pool = name;
            s->profile_name = firn_arena_strndup(a, l->pt->name, strlen(l->pt->name));
            s->discovered = copy_labels(a, l->target.discovered, l->target.n_discovered);
            s->n_discovered = l->target.n_discovered;
            s->labels = copy_labels(a, l->store_labels, l->n_store_labels);
            s->n_labels = l->n_store_labels;
            s->url = firn_arena_strndup(a, l->url, strlen(l->url));
            s->health = l->health;
            s->last_error = firn_arena_strndup(a, l->last_error, strlen(l->last_error));
            s->last_scrape_ms = l->last_scrape_ms;
            s->last_duration_s = l->last_duration_s;
            s->interval_ms = l->target.interval_ms;
            s->timeout_ms = loop_timeout_ms(l);
        }
        for (size_t k = 0; k < p->n_dropped; k++) {
            scrape_dropped_status *d = &out->dropped[out->n_dropped++];
            d->pool = name;
            d->discovered = copy_labels(a, p->dropped[k], p->n_dropped_labels[k]);
            d->n_discovered = p->n_dropped_labels[k];
        }
    }
    assert(out->n_active == n_active && out->n_dropped == n_dropped);
    pthread_mutex_unlock(&m->mu);
    /* Pools sorted by name; each pool's loops are already in label order. */
    for (size_t i = 1; i < out->n_pools; i++)
        for (size_t k = i; k > 0 && strcmp(out->pools[k - 1], out->pools[k]) > 0; k--) {
            const char *t = out->pools[k];
            out->pools[k] = out->pools[k - 1];
            out->pools[k - 1] = t;
        }
    return 0;
}

void scrape_status_free(scrape_status *s)
{
    firn_arena_free(s->arena);
    *s = (scrape_status){0};
}

void scrape_manager_metrics_write(scrape_manager *m, firn_buf *b)
{
    size_t pools, loops = 0, up = 0, down = 0, dropped = 0;
    pthread_mutex_lock(&m->mu);
    pools = m->n_pools;
    for (size_t i = 0; i < m->n_pools; i++) {
        loops += m->pools[i]->n_loops;
        dropped += m->pools[i]->n_dropped;
        for (size_t k = 0; k < m->pools[i]->n_loops; k++) {
            up += m->pools[i]->loops[k]->health == SCRAPE_HEALTH_UP;
            down += m->pools[i]->loops[k]->health == SCRAPE_HEALTH_DOWN;
        }
    }
    pthread_mutex_unlock(&m->mu);
    pthread_mutex_lock(&m->qmu);
    size_t qlen = m->q_len;
    pthread_mutex_unlock(&m->qmu);

    firn_metrics_single(b, "firn_scrape_pools", "gauge",
                        "Scrape pools (jobs) running.",
                        (double)pools);
    firn_metrics_header(b, "firn_scrape_targets", "gauge",
                        "Scrape loops (target and profile type) by health.");
    firn_label l[1] = {{"health", "up"}};
    firn_metrics_sample(b, "firn_scrape_targets", l, 1, (double)up);
    l[0].value = "down";
    firn_metrics_sample(b, "firn_scrape_targets", l, 1, (double)down);
    l[0].value = "unknown";
    firn_metrics_sample(b, "firn_scrape_targets", l, 1, (double)(loops - up - down));
    firn_metrics_single(b, "firn_scrape_dropped_targets", "gauge",
                        "Discovered targets that relabeling dropped.",
                        (double)dropped);
    firn_metrics_single(b, "firn_ingest_memory_bytes", "gauge",
                        "Bytes the ingest paths hold now: scraped bodies until stored, and "
                        "decoding (at most --ingest.max-bytes-in-flight).",
                        (double)ingest_budget_used());
    firn_metrics_single(b, "firn_ingest_memory_refusals_total", "counter",
                        "Times the ingest memory budget refused bytes: a scrape skipped "
                        "(result=\"budget\") or a push answered 503.",
                        (double)ingest_budget_refused());
    firn_metrics_header(b, "firn_scrapes_total", "counter", "Scrapes by result.");
    for (int r = 0; r < RES_COUNT; r++) {
        firn_label rl = {"result", RESULT_NAMES[r]};
        firn_metrics_sample(b, "firn_scrapes_total", &rl, 1, (double)atomic_load(&m->results[r]));
    }
    firn_metrics_header(b, "firn_scrape_duration_seconds", "histogram",
                        "Time from the start of a scrape until its profile is stored or it fails.");
    firn_histogram_write(b, "firn_scrape_duration_seconds", NULL, 0, &m->duration);
    firn_metrics_single(b, "firn_scrape_body_bytes_total", "counter",
                        "Bytes of profiles fetched from targets.",
                        (double)atomic_load(&m->bytes_fetched));
    firn_metrics_single(b, "firn_scrape_samples_stored_total", "counter",
                        "Samples of scraped profiles stored.",
                        (double)atomic_load(&m->samples_stored));
    firn_metrics_single(b, "firn_scrape_target_syncs_total", "counter",
                        "Times a scrape pool rebuilt its targets from target groups.",
                        (double)atomic_load(&m->syncs));
    firn_metrics_single(b, "firn_ingest_queue_length", "gauge",
                        "Fetched profiles waiting to be decoded and stored.",
                        (double)qlen);
    firn_metrics_single(b, "firn_ingest_queue_capacity", "gauge",
                        "Fetched profiles the ingest queue holds at most.",
                        (double)m->opts.ingest_queue_max);
}
