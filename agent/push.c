/* push.c -- the pusher: one thread that takes gzipped profiles from the
 * push buffer and POSTs them to firn's /api/v1/ingest with libcurl.
 *
 * Retries: a push that fails for a reason that may pass (no connection, a
 * timeout, 5xx, 429) goes back to the head of the buffer and the thread
 * waits, 500 ms doubling up to 30 s, before it tries again; a success
 * resets the wait.  Meanwhile the sampling loop keeps filling the buffer,
 * which drops its oldest profiles when full: how much a long outage loses
 * is bounded and counted, and the agent's memory is bounded too.  A 4xx
 * (firn refused this profile) is logged and the profile dropped: sending
 * it again would not help.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/internal.h"

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define PUSH_TIMEOUT_MS 10000
#define REPLY_MAX 4096

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
    char reply[REPLY_MAX];
    size_t reply_len;
};

static size_t on_reply(char *data, size_t size, size_t n, void *ctx)
{
    agent_pusher *p = ctx;
    size_t len = size * n, room = REPLY_MAX - 1 - p->reply_len;
    memcpy(p->reply + p->reply_len, data, len < room ? len : room);
    p->reply_len += len < room ? len : room;
    p->reply[p->reply_len] = '\0';
    return len;
}

enum outcome { PUSH_OK, PUSH_RETRY, PUSH_DROP };

static enum outcome push_one(agent_pusher *p, const agent_push_item *it)
{
    size_t url_len = strlen(p->url_base) + strlen(it->query) + 1;
    char *url = malloc(url_len);
    if (!url)
        return PUSH_RETRY;
    snprintf(url, url_len, "%s%s", p->url_base, it->query);
    char curl_error[CURL_ERROR_SIZE] = "";
    p->reply_len = 0;
    p->reply[0] = '\0';
    CURL *e = p->curl;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *)it->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)it->body_len);
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
    free(url);
    char q[600];
    if (rc != CURLE_OK) {
        atomic_fetch_add(&p->stats->failed, 1);
        firn_log(FIRN_LOG_WARN, "push", "pushing a profile failed; will retry", "err=%s",
                 firn_log_quote(q, sizeof q, curl_error[0] ? curl_error : curl_easy_strerror(rc)));
        return PUSH_RETRY;
    }
    if (status >= 200 && status < 300) {
        atomic_fetch_add(&p->stats->ok, 1);
        atomic_fetch_add(&p->stats->bytes, it->body_len);
        return PUSH_OK;
    }
    if (status == 429 || status >= 500) {
        atomic_fetch_add(&p->stats->failed, 1);
        firn_log(FIRN_LOG_WARN, "push", "firn did not take a profile; will retry",
                 "status=%ld reply=%s", status, firn_log_quote(q, sizeof q, p->reply));
        return PUSH_RETRY;
    }
    atomic_fetch_add(&p->stats->rejected, 1);
    firn_log(FIRN_LOG_ERROR, "push", "firn refused a profile; dropped", "status=%ld reply=%s",
             status, firn_log_quote(q, sizeof q, p->reply));
    return PUSH_DROP;
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
        agent_push_item it;
        if (!agent_pushbuf_take(p->q, &it, stop ? 0 : 1000)) {
            if (stop)
                break;
            continue;
        }
        enum outcome o = push_one(p, &it);
        if (o == PUSH_RETRY) {
            atomic_fetch_add(&p->stats->retried, 1);
            agent_pushbuf_requeue(p->q, &it);
            if (stop || pause_or_stop(p, backoff))
                break;   /* stopping, and firn does not take profiles: no use waiting */
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            continue;
        }
        agent_push_item_free(&it);
        if (o == PUSH_OK)
            backoff = BACKOFF_MIN_MS;
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
    agent_pusher *p = calloc(1, sizeof *p);
    size_t len = strlen(remote);
    while (len > 0 && remote[len - 1] == '/')
        len--;
    if (p)
        p->url_base = malloc(len + sizeof "/api/v1/ingest?");
    if (p && p->url_base)
        snprintf(p->url_base, len + sizeof "/api/v1/ingest?", "%.*s/api/v1/ingest?", (int)len,
                 remote);
    if (p && p->url_base)
        p->curl = curl_easy_init();
    if (p && p->curl) {
        p->headers = curl_slist_append(NULL, "Content-Type: application/octet-stream");
        p->headers = curl_slist_append(p->headers, "Expect:");
    }
    if (!p || !p->headers) {
        if (p) {
            if (p->curl)
                curl_easy_cleanup(p->curl);
            free(p->url_base);
        }
        free(p);
        firn_errf(err, FIRN_ENOMEM, "out of memory starting the pusher");
        return NULL;
    }
    p->q = q;
    p->stats = stats;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cond, NULL);
    if (pthread_create(&p->thread, NULL, pusher_main, p) != 0) {
        curl_slist_free_all(p->headers);
        curl_easy_cleanup(p->curl);
        free(p->url_base);
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
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cond);
    free(p);
}

int agent_remote_check(const char *remote, firn_err *err)
{
    CURL *e = curl_easy_init();
    if (!e)
        return firn_errf(err, FIRN_ENOMEM, "out of memory");
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
