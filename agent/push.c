/* push.c -- the pusher: one thread that takes every profile waiting in the
 * push buffer (a drain's, up to BATCH_MAX_ITEMS and BATCH_MAX_BYTES) and
 * POSTs them as one batch to firn's /api/v1/ingest with libcurl
 * (Content-Type application/x-firn-batch: "LENGTH QUERY\n" and the
 * profile, again and again; firn answers per profile, each stored whole or
 * not at all).
 *
 * Retries: a batch that fails for a reason that may pass (no connection, a
 * timeout, 5xx, 429), and each profile of a batch that firn could not
 * store for such a reason (its own code 5xx or 429), goes back to the head
 * of the buffer in its order and the thread waits, 500 ms doubling up to
 * 30 s, before it tries again; a success resets the wait.  Meanwhile the
 * sampling loop keeps filling the buffer, which drops its oldest profiles
 * when full: how much a long outage loses is bounded and counted, and the
 * agent's memory is bounded too.  A profile firn refused (4xx) is logged
 * and dropped: sending it again would not help.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/internal.h"

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define PUSH_TIMEOUT_MS 30000
#define REPLY_MAX (8u << 20)          /* a batch's answer: ~150 bytes a profile */
#define BATCH_MAX_ITEMS 4096
#define BATCH_MAX_BYTES (16u << 20)   /* firn takes 64 MiB bodies by default */
#define BATCH_CONTENT_TYPE "application/x-firn-batch"   /* firn's (README, web/web.h) */

struct agent_pusher {
    pthread_t thread;
    char *url_base;               /* remote + "/api/v1/ingest?" */
    agent_pushbuf *q;
    agent_push_stats *stats;
    CURL *curl;
    struct curl_slist *headers;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stopping;
    int64_t stop_deadline_ms;     /* monotonic; after it nothing more is tried */
    firn_buf reply;               /* capped at REPLY_MAX */
    firn_buf body;                /* the batch being sent */
    agent_push_item *batch;       /* BATCH_MAX_ITEMS */
    size_t n_batch;
    enum outcome { PUSH_OK, PUSH_RETRY, PUSH_DROP } *outcomes;
};

/* Empty b, keeping its memory (a batch a drain). */
static void buf_clear(firn_buf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->data)
        b->data[0] = '\0';
}

static size_t on_reply(char *data, size_t size, size_t n, void *ctx)
{
    agent_pusher *p = ctx;
    size_t len = size * n;
    if (p->reply.len + len <= REPLY_MAX)
        firn_buf_append(&p->reply, data, len);
    return len;
}

/* The outcome of each profile of the batch from firn's answer (a 2xx):
 * its item's status, or its code when it failed; an answer that cannot be
 * read retries them all (nothing says which were stored: a profile stored
 * twice is refused the second time, a duplicate timestamp, so no profile
 * is counted twice). */
static void item_outcomes(agent_pusher *p)
{
    json_t *root = p->reply.data && !p->reply.failed
                       ? json_loadb(p->reply.data, p->reply.len, 0, NULL) : NULL;
    json_t *items = json_object_get(json_object_get(root, "data"), "items");
    size_t logged = 0;
    for (size_t i = 0; i < p->n_batch; i++) {
        json_t *it = json_array_get(items, i);
        const char *status = json_string_value(json_object_get(it, "status"));
        json_int_t code = json_integer_value(json_object_get(it, "code"));
        if (!it || !status) {
            p->outcomes[i] = PUSH_RETRY;
        } else if (strcmp(status, "success") == 0) {
            p->outcomes[i] = PUSH_OK;
            atomic_fetch_add(&p->stats->profiles, 1);
            atomic_fetch_add(&p->stats->bytes, p->batch[i].body_len);
        } else if (code == 429 || code >= 500) {
            p->outcomes[i] = PUSH_RETRY;
        } else {
            p->outcomes[i] = PUSH_DROP;
            atomic_fetch_add(&p->stats->rejected, 1);
            char q[600], e[600];
            if (logged++ == 0)
                firn_log(FIRN_LOG_ERROR, "push", "firn refused a profile; dropped",
                         "code=%lld query=%s err=%s", (long long)code,
                         firn_log_quote(q, sizeof q, p->batch[i].query),
                         firn_log_quote(e, sizeof e, json_string_value(json_object_get(it,
                                                                             "error"))));
        }
    }
    json_decref(root);
}

/* POST the batch; p->outcomes says what became of each profile. */
static void push_batch(agent_pusher *p)
{
    buf_clear(&p->body);
    for (size_t i = 0; i < p->n_batch; i++) {
        firn_buf_printf(&p->body, "%zu %s\n", p->batch[i].body_len, p->batch[i].query);
        firn_buf_append(&p->body, p->batch[i].body, p->batch[i].body_len);
    }
    const char *url = p->url_base;
    char curl_error[CURL_ERROR_SIZE] = "";
    buf_clear(&p->reply);
    CURL *e = p->curl;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, p->body.data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->body.len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_reply);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)PUSH_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "firn-agent/" FIRN_VERSION);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    char q[600];
    const char *reply = p->reply.data && !p->reply.failed ? p->reply.data : "";
    enum outcome all = PUSH_OK;
    if (rc != CURLE_OK) {
        atomic_fetch_add(&p->stats->failed, 1);
        firn_log(FIRN_LOG_WARN, "push", "pushing profiles failed; will retry",
                 "profiles=%zu err=%s", p->n_batch,
                 firn_log_quote(q, sizeof q, curl_error[0] ? curl_error : curl_easy_strerror(rc)));
        all = PUSH_RETRY;
    } else if (status >= 200 && status < 300) {
        atomic_fetch_add(&p->stats->ok, 1);
        item_outcomes(p);
        return;
    } else if (status == 429 || status >= 500) {
        atomic_fetch_add(&p->stats->failed, 1);
        firn_log(FIRN_LOG_WARN, "push", "firn did not take the profiles; will retry",
                 "profiles=%zu status=%ld reply=%s", p->n_batch, status,
                 firn_log_quote(q, sizeof q, reply));
        all = PUSH_RETRY;
    } else {
        atomic_fetch_add(&p->stats->rejected, p->n_batch);
        firn_log(FIRN_LOG_ERROR, "push", "firn refused the batch; dropped",
                 "profiles=%zu status=%ld reply=%s", p->n_batch, status,
                 firn_log_quote(q, sizeof q, reply));
        all = PUSH_DROP;
    }
    for (size_t i = 0; i < p->n_batch; i++)
        p->outcomes[i] = all;
}

/* Wait ms unless asked to stop meanwhile; true then. */
static bool pause_or_stop(agent_pusher *p, int64_t ms)
{
    struct timespec until = firn_deadline_ms(ms);
    pthread_mutex_lock(&p->mu);
    while (!p->stopping && pthread_cond_timedwait(&p->cond, &p->mu, &until) == 0)
        ;
    bool stop = p->stopping;
    pthread_mutex_unlock(&p->mu);
    return stop;
}

static bool stopping(agent_pusher *p, bool *past_deadline)
{
    pthread_mutex_lock(&p->mu);
    bool s = p->stopping;
    *past_deadline = s && firn_mono_ms() >= p->stop_deadline_ms;
    pthread_mutex_unlock(&p->mu);
    return s;
}

static void *pusher_main(void *arg)
{
    agent_pusher *p = arg;
    int64_t backoff = BACKOFF_MIN_MS;
    for (;;) {
        bool past;
        bool stop = stopping(p, &past);
        if (past)
            break;
        /* everything waiting: a drain's profiles arrive together */
        p->n_batch = 0;
        size_t bytes = 0;
        if (!agent_pushbuf_take(p->q, &p->batch[0], stop ? 0 : 1000)) {
            if (stop)
                break;
            continue;
        }
        bytes = p->batch[0].body_len;
        p->n_batch = 1;
        while (p->n_batch < BATCH_MAX_ITEMS && bytes < BATCH_MAX_BYTES &&
               agent_pushbuf_take(p->q, &p->batch[p->n_batch], 0))
            bytes += p->batch[p->n_batch++].body_len;
        push_batch(p);
        /* the ones to retry go back to the head in their order */
        size_t retry = 0, ok = 0;
        for (size_t i = p->n_batch; i-- > 0;) {
            if (p->outcomes[i] == PUSH_RETRY) {
                retry++;
                agent_pushbuf_requeue(p->q, &p->batch[i]);
            } else {
                ok += p->outcomes[i] == PUSH_OK;
                agent_push_item_free(&p->batch[i]);
            }
        }
        if (retry) {
            atomic_fetch_add(&p->stats->retried, retry);
            if (stop || pause_or_stop(p, backoff))
                break;   /* stopping, and firn does not take profiles: no use waiting */
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
        } else if (ok) {
            backoff = BACKOFF_MIN_MS;
        }
    }
    return NULL;
}

agent_pusher *agent_pusher_start(const char *remote, agent_pushbuf *q, agent_push_stats *stats,
                                 firn_err *err)
{
    if (strncmp(remote, "http://", 7) != 0 && strncmp(remote, "https://", 8) != 0) {
        firn_errf(err, FIRN_EINVAL, "remote store address \"%.200s\": want http://HOST:PORT "
                  "or https://HOST:PORT", remote);
        return NULL;
    }
    agent_pusher *p = firn_xcalloc(1, sizeof *p);
    size_t len = strlen(remote);
    while (len > 0 && remote[len - 1] == '/')
        len--;
    p->url_base = firn_xasprintf("%.*s/api/v1/ingest", (int)len, remote);
    p->batch = firn_xcalloc(BATCH_MAX_ITEMS, sizeof *p->batch);
    p->outcomes = firn_xcalloc(BATCH_MAX_ITEMS, sizeof *p->outcomes);
    /* libcurl's only failures here are its mallocs' (curl_global_init ran in main) */
    p->curl = curl_easy_init();
    if (!p->curl)
        firn_oom(sizeof(void *));
    p->headers = curl_slist_append(NULL, "Content-Type: " BATCH_CONTENT_TYPE);
    struct curl_slist *more = p->headers ? curl_slist_append(p->headers, "Expect:") : NULL;
    if (!more)
        firn_oom(sizeof "Expect:");
    p->headers = more;
    p->q = q;
    p->stats = stats;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cond, NULL);
    if (pthread_create(&p->thread, NULL, pusher_main, p) != 0) {
        curl_slist_free_all(p->headers);
        curl_easy_cleanup(p->curl);
        free(p->url_base);
        free(p->batch);
        free(p->outcomes);
        free(p);
        firn_errf(err, FIRN_EIO, "cannot start the pusher thread");
        return NULL;
    }
    return p;
}

void agent_pusher_stop(agent_pusher *p, int64_t grace_ms)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    p->stop_deadline_ms = firn_mono_ms() + grace_ms;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
    agent_pushbuf_close(p->q);
    pthread_join(p->thread, NULL);
    curl_slist_free_all(p->headers);
    curl_easy_cleanup(p->curl);
    free(p->url_base);
    free(p->batch);
    free(p->outcomes);
    firn_buf_free(&p->body);
    firn_buf_free(&p->reply);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cond);
    free(p);
}

int agent_remote_check(const char *remote, firn_err *err)
{
    CURL *e = curl_easy_init();
    if (!e)   /* only its malloc can fail */
        firn_oom(sizeof(void *));
    size_t len = strlen(remote);
    while (len > 0 && remote[len - 1] == '/')
        len--;
    char url[2048];
    snprintf(url, sizeof url, "%.*s/-/healthy", (int)(len < 2000 ? len : 2000), remote);
    char curl_error[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    if (rc != CURLE_OK)
        return firn_errf(err, FIRN_EIO, "%s: %s", url,
                         curl_error[0] ? curl_error : curl_easy_strerror(rc));
    if (status != 200)
        return firn_errf(err, FIRN_EIO, "%s: HTTP status %ld", url, status);
    return 0;
}
