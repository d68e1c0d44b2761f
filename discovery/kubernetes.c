/* kubernetes.c -- kubernetes_sd_configs: targets from the Kubernetes API
 * server, kept in sync by list + watch (contract in discovery.h; the
 * objects-to-groups half is k8s_roles.c).
 *
 * One thread per provider runs a libcurl multi handle with one watcher per
 * (kind, namespace) the role needs: the role's own kind, plus what its
 * groups look up (endpoints: services and pods; attach_metadata: nodes,
 * namespaces).  A watcher does what client-go's Reflector does:
 *
 *   LIST   (limit=500 pages with continue; resourceVersion=0 the first
 *          time, the last seen version after a failure, none -- a
 *          consistent read -- after the version expired)
 *          -> the page's objects replace the watcher's store; objects gone
 *          since the last list count as deleted;
 *   WATCH  from the list's version, with bookmarks and a random
 *          timeoutSeconds in [5m, 10m]: a chunked stream of one JSON event
 *          a line, split on '\n' whatever the chunk boundaries; every event
 *          (BOOKMARK included) advances the version; a clean end re-watches
 *          at once; HTTP 410 or an ERROR event with code 410 re-lists;
 *          other failures back off (0.8 s doubling to 30 s, reset by
 *          success) and re-watch from the last version.
 *
 * After each round of socket activity the objects that changed, and the
 * role objects disc_k8s_affected says depend on them, are rebuilt into groups;
 * a group is sent only when it differs from the one last sent for its
 * source.  Nothing is sent until every watcher has listed once (as
 * Prometheus waits for its informers' caches), then every group at once.
 *
 * Stores are jansson objects keyed "NS/NAME" (cluster-scoped: "NAME"),
 * owned by their watcher.  managedFields are dropped on arrival: they are
 * large and no label comes from them.
 */
#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define XXH_STATIC_LINKING_ONLY   /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "config/kubeconfig.h"
#include "discovery/discovery.h"
#include "discovery/k8s.h"
#include "httpc/httpc.h"

#define K8S_COMPONENT "discovery"
#define K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define K8S_PAGE_LIMIT 500
#define K8S_LIST_BODY_MAX (256u << 20)  /* one page of a list */
#define K8S_EVENT_MAX (64u << 20)       /* one watch event line */
#define K8S_BACKOFF_MIN_MS 800
#define K8S_BACKOFF_MAX_MS 30000
#define K8S_SHORT_WATCH_MS 1000         /* a watch ending sooner with no event failed */
#define K8S_CONNECT_TIMEOUT_MS 10000
#define K8S_LIST_TIMEOUT_MS 120000
#define K8S_WATCH_GRACE_S 30            /* beyond timeoutSeconds before libcurl gives up */
#define K8S_SECTION_MAX 64              /* namespaces x kinds */

enum wstate { W_IDLE, W_LIST, W_WATCH };
enum wnext { NEXT_LIST, NEXT_WATCH };

typedef struct watcher {
    disc_k8s *k;
    k8s_kind kind;
    char *ns;                   /* "" for all namespaces or cluster-scoped */
    const char *label_sel, *field_sel;  /* NULL unless the config has a selector */
    enum wstate state;
    enum wnext next;            /* what W_IDLE starts at due_ms */
    int64_t due_ms;
    int64_t backoff_ms;
    bool synced;                /* listed once */
    bool rv_expired;            /* relist without a version */
    char *rv;                   /* last seen resourceVersion (NULL: none) */
    char *cont;                 /* list continue token */
    json_t *store;              /* key -> object */
    json_t *listing;            /* the list being read, page by page */
    CURL *easy;
    httpc_request req;
    firn_buf body;              /* a list page */
    firn_buf line;              /* a watch event being received */
    bool body_too_big;
    bool stream_failed;         /* a watch event could not be read */
    bool stream_expired;        /* an ERROR event with code 410 */
    char stream_error[256];
    int64_t watch_started_ms;
    size_t watch_events;
    char curl_error[CURL_ERROR_SIZE];
} watcher;

struct disc_k8s {
    k8s_kind role;
    k8s_role_options ropts;
    char *server;               /* no trailing '/' */
    config_http http;           /* api_server's, in-cluster's or kubeconfig's */
    config_kubeconfig kubeconfig;
    bool has_kubeconfig;
    firn_arena *arena;          /* the copied strings */
    disc_k8s_options opts;
    disc_sink *sink;
    char user_agent[64];
    watcher *w;
    size_t n_w;
    CURLM *multi;
    _Atomic bool stopping;
    pthread_t thread;
    bool all_synced;
    json_t *dirty;              /* role object key -> [ns, name] to rebuild */
    json_t *sent;               /* source -> hash of the group last sent */
};

/* ---- small helpers ---------------------------------------------------------------- */

static int64_t backoff_next(int64_t cur)
{
    if (cur < K8S_BACKOFF_MIN_MS)
        return K8S_BACKOFF_MIN_MS;
    return cur * 2 > K8S_BACKOFF_MAX_MS ? K8S_BACKOFF_MAX_MS : cur * 2;
}

static void set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? firn_xstrdup(s) : NULL;
}

/* A value jansson just made: NULL only when its own allocation failed
 * (what it packs here is valid UTF-8, which it parsed itself), so abort as
 * model/alloc.h does. */
static json_t *json_made(json_t *v)
{
    if (!v)
        firn_oom(0);
    return v;
}

static const char *obj_rv(const json_t *obj)
{
    const char *rv = json_string_value(json_object_get(json_object_get(obj, "metadata"),
                                                       "resourceVersion"));
    return rv ? rv : "";
}

/* The store key of obj: "NS/NAME", or "NAME" for cluster-scoped kinds. */
static void obj_key(k8s_kind kind, const char *ns, const char *name, firn_buf *b)
{
    b->len = 0;
    if (disc_k8s_kind_get(kind)->namespaced)
        firn_buf_printf(b, "%s/%s", ns, name);
    else
        firn_buf_puts(b, name);
    firn_buf_append(b, "", 1);
}

/* The message of a Kubernetes Status body, else the body's start. */
static void status_message(const char *body, size_t len, char *out, size_t size)
{
    json_t *s = json_loadb(body, len, 0, NULL);
    const char *msg = json_string_value(json_object_get(s, "message"));
    if (msg)
        snprintf(out, size, "%s", msg);
    else
        snprintf(out, size, "%.*s", (int)(len > 200 ? 200 : len), body);
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    json_decref(s);
}

static const char *watcher_where(const watcher *w, char *buf, size_t size)
{
    const k8s_kind_info *ki = disc_k8s_kind_get(w->kind);
    if (w->ns[0])
        snprintf(buf, size, "%s in namespace %s", ki->resource, w->ns);
    else
        snprintf(buf, size, "%s", ki->resource);
    return buf;
}

/* ---- look-ups for the role code ---------------------------------------------------- */

static const json_t *lk_get(void *ctx, k8s_kind kind, const char *ns, const char *name)
{
    disc_k8s *k = ctx;
    firn_buf key = {0};
    obj_key(kind, ns ? ns : "", name, &key);
    const json_t *found = NULL;
    for (size_t i = 0; i < k->n_w && !found; i++) {
        watcher *w = &k->w[i];
        if (w->kind == kind && (!w->ns[0] || (ns && strcmp(w->ns, ns) == 0)))
            found = json_object_get(w->store, (const char *)key.data);
    }
    firn_buf_free(&key);
    return found;
}

static void lk_each(void *ctx, k8s_kind kind, const char *ns,
                    void (*fn)(void *fn_ctx, const json_t *obj), void *fn_ctx)
{
    disc_k8s *k = ctx;
    for (size_t i = 0; i < k->n_w; i++) {
        watcher *w = &k->w[i];
        if (w->kind != kind || (ns && w->ns[0] && strcmp(w->ns, ns) != 0))
            continue;
        const char *key;
        json_t *obj;
        json_object_foreach(w->store, key, obj) {
            if (!ns || w->ns[0] || strcmp(disc_k8s_namespace(obj), ns) == 0)
                fn(fn_ctx, obj);
        }
    }
}

/* ---- changes ------------------------------------------------------------------------- */

static void mark_dirty(void *ctx, const json_t *obj)
{
    disc_k8s *k = ctx;
    firn_buf key = {0};
    obj_key(k->role, disc_k8s_namespace(obj), disc_k8s_name(obj), &key);
    json_object_set_new(k->dirty, (const char *)key.data,
                        json_made(json_pack("[ss]", disc_k8s_namespace(obj), disc_k8s_name(obj))));
    firn_buf_free(&key);
}

/* obj of w's kind was added, changed or (gone) deleted. */
static void object_changed(watcher *w, const json_t *obj)
{
    disc_k8s *k = w->k;
    k8s_lookup lk = {lk_get, lk_each, k};
    if (w->kind == k->role)
        mark_dirty(k, obj);
    else
        disc_k8s_affected(k->role, w->kind, obj, &lk, mark_dirty, k);
}

static void store_put(watcher *w, json_t *obj)
{
    json_object_del(json_object_get(obj, "metadata"), "managedFields");
    firn_buf key = {0};
    obj_key(w->kind, disc_k8s_namespace(obj), disc_k8s_name(obj), &key);
    json_t *old = json_object_get(w->store, (const char *)key.data);
    if (old)
        object_changed(w, old);  /* what depended on the old state may change too */
    json_object_set_new(w->store, (const char *)key.data, obj);
    object_changed(w, obj);
    firn_buf_free(&key);
}

static void store_del(watcher *w, const json_t *obj)
{
    firn_buf key = {0};
    obj_key(w->kind, disc_k8s_namespace(obj), disc_k8s_name(obj), &key);
    json_t *old = json_object_get(w->store, (const char *)key.data);
    if (old) {
        json_incref(old);
        json_object_del(w->store, (const char *)key.data);
        object_changed(w, old);
        json_decref(old);
    }
    firn_buf_free(&key);
}

/* A finished list replaces the store: what is gone counts as deleted,
 * what is new or at another version as changed. */
static void store_replace(watcher *w, json_t *next)
{
    const char *key;
    json_t *obj;
    void *tmp;
    json_t *old = w->store;
    w->store = next;
    json_object_foreach_safe(old, tmp, key, obj) {
        json_t *now = json_object_get(next, key);
        if (!now) {
            object_changed(w, obj);  /* gone: its dependents rebuild without it */
        } else if (strcmp(obj_rv(now), obj_rv(obj)) != 0) {
            object_changed(w, obj);
            object_changed(w, now);
        }
    }
    json_object_foreach(next, key, obj) {
        if (!json_object_get(old, key))
            object_changed(w, obj);
    }
    json_decref(old);
}

/* ---- groups -------------------------------------------------------------------------- */

static uint64_t group_hash(const disc_group *g)
{
    XXH3_state_t state;
    XXH3_state_t *st = &state;
    XXH3_64bits_reset(st);
    for (size_t i = 0; i < g->n_labels; i++) {
        XXH3_64bits_update(st, g->labels[i].name, strlen(g->labels[i].name) + 1);
        XXH3_64bits_update(st, g->labels[i].value, strlen(g->labels[i].value) + 1);
    }
    for (size_t t = 0; t < g->n_targets; t++) {
        XXH3_64bits_update(st, "\x01", 1);
        for (size_t i = 0; i < g->targets[t].n_labels; i++) {
            const firn_label *l = &g->targets[t].labels[i];
            XXH3_64bits_update(st, l->name, strlen(l->name) + 1);
            XXH3_64bits_update(st, l->value, strlen(l->value) + 1);
        }
    }
    return XXH3_64bits_digest(st) | 1;  /* never 0: 0 means "empty group sent" */
}

/* Rebuild every dirty role object and send the groups that changed. */
static void emit(disc_k8s *k)
{
    if (!k->all_synced || json_object_size(k->dirty) == 0)
        return;
    size_t cap = json_object_size(k->dirty);
    firn_arena *a = firn_arena_new(64 * 1024);
    disc_group *out = firn_xcalloc(cap + 1, sizeof *out);
    size_t n = 0;
    k8s_lookup lk = {lk_get, lk_each, k};
    const char *key;
    json_t *v;
    json_object_foreach(k->dirty, key, v) {
        const char *ns = json_string_value(json_array_get(v, 0));
        const char *name = json_string_value(json_array_get(v, 1));
        const json_t *obj = lk_get(k, k->role, ns, name);
        disc_group g = {0};
        if (obj) {
            firn_err err = {0};
            if (disc_k8s_build_group(k->role, obj, &lk, &k->ropts, a, &g, &err) < 0) {
                /* As Prometheus: logged, nothing sent, the last group stays
                 * (a node without an address yet keeps its old target). */
                firn_log(FIRN_LOG_WARN, K8S_COMPONENT, "Kubernetes object skipped",
                         "job=%s error=%s", k->opts.job,
                         firn_log_quote((char[512]){0}, 512, err.msg));
                continue;
            }
        }
        if (!obj) {
            char src[1024];
            disc_k8s_group_source(k->role, ns, name, src, sizeof src);
            g.source = firn_arena_strndup(a, src, strlen(src));
        }
        uint64_t h = g.n_targets ? group_hash(&g) : 0;
        json_t *last = json_object_get(k->sent, g.source);
        if (last ? (uint64_t)json_integer_value(last) == h : h == 0)
            continue;  /* unchanged, or never sent and still empty */
        if (h)
            json_object_set_new(k->sent, g.source, json_made(json_integer((json_int_t)h)));
        else
            json_object_del(k->sent, g.source);
        assert(n < cap);   /* one group per dirty key at most */
        out[n++] = g;
    }
    if (n)
        k->sink->send(k->sink, out, n);
    json_object_clear(k->dirty);
    free(out);
    firn_arena_free(a);
}

/* The first time every watcher has listed: every role object is dirty. */
static void check_synced(disc_k8s *k)
{
    if (k->all_synced)
        return;
    for (size_t i = 0; i < k->n_w; i++)
        if (!k->w[i].synced)
            return;
    k->all_synced = true;
    json_object_clear(k->dirty);
    for (size_t i = 0; i < k->n_w; i++) {
        if (k->w[i].kind != k->role)
            continue;
        const char *key;
        json_t *obj;
        json_object_foreach(k->w[i].store, key, obj)
            mark_dirty(k, obj);
    }
}

/* ---- requests ------------------------------------------------------------------------ */

static size_t on_list_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    watcher *w = ctx;
    size_t n = size * nmemb;
    if (w->body.len + n > K8S_LIST_BODY_MAX) {
        w->body_too_big = true;
        return 0;
    }
    firn_buf_append(&w->body, data, n);   /* no cap: the limit is checked above */
    return n;
}

static void handle_event(watcher *w, const char *line, size_t len);

static size_t on_watch_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    watcher *w = ctx;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
        return on_list_body(data, size, nmemb, ctx);  /* an error body: keep it */
    const char *p = data, *end = data + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t take = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (w->line.len + take > K8S_EVENT_MAX) {
            snprintf(w->stream_error, sizeof w->stream_error,
                     "a watch event over %u MiB", K8S_EVENT_MAX >> 20);
            w->stream_failed = true;
            return 0;
        }
        firn_buf_append(&w->line, p, take);   /* no cap: the limit is checked above */
        if (!nl)
            break;
        if (w->line.len)
            handle_event(w, (const char *)w->line.data, w->line.len);
        w->line.len = 0;
        if (w->stream_failed || w->stream_expired)
            return 0;  /* ends the transfer; the completion decides what next */
        p = nl + 1;
    }
    return n;
}

static void handle_event(watcher *w, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *ev = json_loadb(line, len, 0, &jerr);
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *obj = json_object_get(ev, "object");
    if (!ev || !type || !json_is_object(obj)) {
        snprintf(w->stream_error, sizeof w->stream_error, "bad watch event: %s",
                 ev ? "no type or object" : jerr.text);
        w->stream_failed = true;
        json_decref(ev);
        return;
    }
    w->watch_events++;
    if (strcmp(type, "ERROR") == 0) {
        if (json_integer_value(json_object_get(obj, "code")) == 410) {
            w->stream_expired = true;
        } else {
            const char *msg = json_string_value(json_object_get(obj, "message"));
            snprintf(w->stream_error, sizeof w->stream_error, "watch error event: %s",
                     msg ? msg : "(no message)");
            w->stream_failed = true;
        }
        json_decref(ev);
        return;
    }
    const char *rv = json_string_value(json_object_get(json_object_get(obj, "metadata"),
                                                       "resourceVersion"));
    if (strcmp(type, "BOOKMARK") != 0) {
        if (!disc_k8s_name(obj)[0]) {
            snprintf(w->stream_error, sizeof w->stream_error, "%s event without metadata.name",
                     type);
            w->stream_failed = true;
            json_decref(ev);
            return;
        }
        if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
            store_put(w, json_incref(obj));
        } else if (strcmp(type, "DELETED") == 0) {
            store_del(w, obj);
        } else {
            snprintf(w->stream_error, sizeof w->stream_error, "unknown watch event type %.32s",
                     type);
            w->stream_failed = true;
            json_decref(ev);
            return;
        }
    }
    if (rv && rv[0])
        set_str(&w->rv, rv);
    json_decref(ev);
}

/* Add name=value (value escaped) to b, with '?' or '&' before it. */
static void add_param(CURL *e, firn_buf *b, const char *name, const char *value)
{
    char *esc = curl_easy_escape(e, value, 0);
    firn_buf_printf(b, "%c%s=%s", memchr(b->data, '?', b->len) ? '&' : '?', name,
                    esc ? esc : "");
    curl_free(esc);
}

/* Start w's list (a page) or watch request. */
static void watcher_start(watcher *w, enum wstate what)
{
    disc_k8s *k = w->k;
    const k8s_kind_info *ki = disc_k8s_kind_get(w->kind);
    if (!w->easy && !(w->easy = curl_easy_init()))
        firn_oom(0);   /* libcurl's own allocation failed */
    CURL *e = w->easy;
    curl_easy_reset(e);
    httpc_request_free(&w->req);
    w->body.len = 0;
    w->line.len = 0;
    w->body_too_big = w->stream_failed = w->stream_expired = false;
    w->stream_error[0] = w->curl_error[0] = '\0';

    firn_buf url = {0};
    firn_buf_puts(&url, k->server);
    firn_buf_puts(&url, ki->group_version);
    if (w->ns[0])
        firn_buf_printf(&url, "/namespaces/%s", w->ns);
    firn_buf_printf(&url, "/%s", ki->resource);
    firn_buf_append(&url, "", 1);
    url.len--;
    if (what == W_LIST) {
        char limit[16];
        snprintf(limit, sizeof limit, "%d", K8S_PAGE_LIMIT);
        add_param(e, &url, "limit", limit);
        if (w->cont)
            add_param(e, &url, "continue", w->cont);
        else if (!w->rv_expired)
            add_param(e, &url, "resourceVersion", w->rv ? w->rv : "0");
    } else {
        /* Spread over [5m, 10m] as client-go does, differently per watcher
         * and per start, so watches do not all end together. */
        struct { int64_t now; const void *w; } seed = {firn_now_ms(), w};
        int64_t t = k->opts.watch_timeout_s > 0
                        ? k->opts.watch_timeout_s
                        : 300 + (int64_t)(XXH3_64bits(&seed, sizeof seed) % 301);
        char ts[24];
        snprintf(ts, sizeof ts, "%lld", (long long)t);
        add_param(e, &url, "watch", "true");
        add_param(e, &url, "resourceVersion", w->rv ? w->rv : "");
        add_param(e, &url, "allowWatchBookmarks", "true");
        add_param(e, &url, "timeoutSeconds", ts);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)((t + K8S_WATCH_GRACE_S) * 1000));
        w->watch_started_ms = firn_mono_ms();
        w->watch_events = 0;
    }
    if (w->label_sel)
        add_param(e, &url, "labelSelector", w->label_sel);
    if (w->field_sel)
        add_param(e, &url, "fieldSelector", w->field_sel);
    firn_buf_append(&url, "", 1);

    curl_easy_setopt(e, CURLOPT_PRIVATE, w);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, what == W_LIST ? on_list_body : on_watch_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, w->curl_error);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, k->user_agent);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)K8S_CONNECT_TIMEOUT_MS);
    if (what == W_LIST)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)K8S_LIST_TIMEOUT_MS);
    if (k->has_kubeconfig) {
        const config_kubeconfig *kc = &k->kubeconfig;
        struct curl_blob ca = {kc->ca_data, kc->ca_len, CURL_BLOB_COPY};
        struct curl_blob cert = {kc->cert_data, kc->cert_len, CURL_BLOB_COPY};
        struct curl_blob key = {kc->key_data, kc->key_len, CURL_BLOB_COPY};
        if (kc->ca_data)
            curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &ca);
        if (kc->cert_data)
            curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cert);
        if (kc->key_data)
            curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &key);
    }
    if (!(w->req.headers = curl_slist_append(NULL, "Accept: application/json")))
        firn_oom(0);   /* libcurl's own allocation failed */
    char why[512];
    const char *fail = httpc_apply(e, &k->http, (const char *)url.data, &w->req, why, sizeof why);
    if (fail) {
        char where[160];
        firn_log(FIRN_LOG_WARN, K8S_COMPONENT, "Kubernetes request not made",
                 "job=%s what=%s error=%s", k->opts.job, watcher_where(w, where, sizeof where),
                 firn_log_quote((char[600]){0}, 600, fail));
        k->sink->refreshed(k->sink, false);
        w->state = W_IDLE;
        w->next = what == W_LIST ? NEXT_LIST : NEXT_WATCH;
        w->due_ms = firn_mono_ms() + (w->backoff_ms = backoff_next(w->backoff_ms));
        firn_buf_free(&url);
        return;
    }
    firn_buf_free(&url);
    w->state = what;
    curl_multi_add_handle(k->multi, e);
}

/* A failure: log it, count it, and try next again after the backoff. */
static void watcher_failed(watcher *w, enum wnext next, const char *what, const char *why)
{
    char where[160];
    firn_log(FIRN_LOG_WARN, K8S_COMPONENT, "Kubernetes discovery request failed",
             "job=%s request=%s what=%s error=%s backoff_ms=%lld", w->k->opts.job, what,
             watcher_where(w, where, sizeof where), firn_log_quote((char[600]){0}, 600, why),
             (long long)backoff_next(w->backoff_ms));
    w->k->sink->refreshed(w->k->sink, false);
    w->state = W_IDLE;
    w->next = next;
    w->backoff_ms = backoff_next(w->backoff_ms);
    w->due_ms = firn_mono_ms() + w->backoff_ms;
}

/* Relist from scratch: the last version is gone from the server. */
static void watcher_expired(watcher *w)
{
    char where[160];
    firn_log(FIRN_LOG_INFO, K8S_COMPONENT, "Kubernetes watch expired, listing again",
             "job=%s what=%s resource_version=%s", w->k->opts.job,
             watcher_where(w, where, sizeof where),
             w->rv ? w->rv : "");
    w->rv_expired = true;
    set_str(&w->cont, NULL);
    json_decref(w->listing);
    w->listing = NULL;
    watcher_start(w, W_LIST);
}

static void list_page_done(watcher *w, long status, CURLcode rc)
{
    char why[512];
    if (rc != CURLE_OK) {
        snprintf(why, sizeof why, "%s", w->body_too_big ? "list page over 256 MiB"
                                        : w->curl_error[0] ? w->curl_error
                                                           : curl_easy_strerror(rc));
        watcher_failed(w, NEXT_LIST, "list", why);
        return;
    }
    if (status == 410) {
        watcher_expired(w);
        return;
    }
    if (status != 200) {
        char msg[400];
        status_message((const char *)w->body.data, w->body.len, msg, sizeof msg);
        snprintf(why, sizeof why, "HTTP %ld: %s", status, msg);
        watcher_failed(w, NEXT_LIST, "list", why);
        return;
    }
    json_error_t jerr;
    json_t *list = json_loadb((const char *)w->body.data, w->body.len, 0, &jerr);
    json_t *items = json_object_get(list, "items");
    json_t *meta = json_object_get(list, "metadata");
    const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
    if (!list || !json_is_array(items) || !rv) {
        snprintf(why, sizeof why, "not a list: %s",
                 !list ? jerr.text : !json_is_array(items) ? "no items array"
                                                           : "no metadata.resourceVersion");
        json_decref(list);
        watcher_failed(w, NEXT_LIST, "list", why);
        return;
    }
    if (!w->listing)
        w->listing = json_made(json_object());
    size_t i;
    json_t *obj;
    firn_buf key = {0};
    json_array_foreach(items, i, obj) {
        if (!json_is_object(obj) || !disc_k8s_name(obj)[0])
            continue;  /* nameless: no source to give it */
        json_object_del(json_object_get(obj, "metadata"), "managedFields");
        obj_key(w->kind, disc_k8s_namespace(obj), disc_k8s_name(obj), &key);
        json_object_set(w->listing, (const char *)key.data, obj);
    }
    firn_buf_free(&key);
    const char *cont = json_string_value(json_object_get(meta, "continue"));
    if (cont && cont[0]) {
        set_str(&w->cont, cont);
        json_decref(list);
        watcher_start(w, W_LIST);
        return;
    }
    set_str(&w->cont, NULL);
    set_str(&w->rv, rv);
    json_decref(list);
    w->rv_expired = false;
    store_replace(w, w->listing);
    w->listing = NULL;
    w->synced = true;
    w->backoff_ms = 0;
    w->k->sink->refreshed(w->k->sink, true);
    check_synced(w->k);
    watcher_start(w, W_WATCH);
}

static void watch_done(watcher *w, long status, CURLcode rc)
{
    char why[512];
    if (w->stream_expired || status == 410) {
        watcher_expired(w);
        return;
    }
    if (w->stream_failed) {
        /* An event was lost: only a fresh list is sure to be whole. */
        watcher_failed(w, NEXT_LIST, "watch", w->stream_error);
        return;
    }
    if (status != 200 && status != 0) {
        char msg[400];
        status_message((const char *)w->body.data, w->body.len, msg, sizeof msg);
        snprintf(why, sizeof why, "HTTP %ld: %s", status, msg);
        watcher_failed(w, NEXT_WATCH, "watch", why);
        return;
    }
    if (w->watch_events > 0)
        w->backoff_ms = 0;
    if (rc != CURLE_OK) {
        snprintf(why, sizeof why, "%s", w->curl_error[0] ? w->curl_error
                                                         : curl_easy_strerror(rc));
        watcher_failed(w, NEXT_WATCH, "watch", why);
        return;
    }
    if (w->watch_events == 0 && firn_mono_ms() - w->watch_started_ms < K8S_SHORT_WATCH_MS) {
        watcher_failed(w, NEXT_WATCH, "watch", "the watch ended at once without events");
        return;
    }
    watcher_start(w, W_WATCH);  /* a clean end (timeoutSeconds): watch on */
}

static void transfer_done(disc_k8s *k, CURL *e, CURLcode rc)
{
    watcher *w = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&w);
    curl_multi_remove_handle(k->multi, e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    /* A write callback that stopped the transfer on purpose is not an error. */
    if (rc == CURLE_WRITE_ERROR && (w->stream_expired || w->stream_failed))
        rc = CURLE_OK;
    if (w->state == W_LIST)
        list_page_done(w, status, rc);
    else
        watch_done(w, status, rc);
}

/* ---- the thread -------------------------------------------------------------------- */

static void *k8s_thread(void *arg)
{
    disc_k8s *k = arg;
    for (size_t i = 0; i < k->n_w; i++)
        watcher_start(&k->w[i], W_LIST);
    while (!atomic_load(&k->stopping)) {
        int running = 0;
        curl_multi_perform(k->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(k->multi, &left)))
            if (msg->msg == CURLMSG_DONE)
                transfer_done(k, msg->easy_handle, msg->data.result);
        int64_t now = firn_mono_ms(), wait = 1000;
        for (size_t i = 0; i < k->n_w; i++) {
            watcher *w = &k->w[i];
            if (w->state != W_IDLE)
                continue;
            if (w->due_ms <= now) {
                watcher_start(w, w->next == NEXT_LIST ? W_LIST : W_WATCH);
                wait = 0;
            } else if (w->due_ms - now < wait) {
                wait = w->due_ms - now;
            }
        }
        emit(k);
        if (wait > 0)
            curl_multi_poll(k->multi, NULL, 0, (int)wait, NULL);
    }
    return NULL;
}

/* ---- start and stop ---------------------------------------------------------------- */

static int read_small(const char *path, char *out, size_t size, firn_err *err)
{
    char why[300];
    if (httpc_read_secret(path, out, size, why, sizeof why) < 0)
        return firn_errf(err, FIRN_EIO, "%s", why);
    return 0;
}

/* Where to connect and how to authenticate: api_server with the config's
 * http settings, a kubeconfig file, or the in-cluster service account. */
static int connection_setup(disc_k8s *k, const config_kubernetes_sd *cfg, char *own_ns,
                            size_t own_ns_size, firn_err *err)
{
    firn_arena *a = k->arena;
    if (cfg->api_server) {
        k->server = firn_arena_strdup(a, cfg->api_server);
        config_http_copy(a, &cfg->http, &k->http);
    } else if (cfg->kubeconfig_file) {
        if (config_kubeconfig_load(cfg->kubeconfig_file, &k->kubeconfig, err) < 0)
            return -1;
        k->has_kubeconfig = true;
        k->server = firn_arena_strdup(a, k->kubeconfig.server);
        config_http_copy(a, &k->kubeconfig.http, &k->http);
    } else {
        const char *host = getenv("KUBERNETES_SERVICE_HOST");
        const char *port = getenv("KUBERNETES_SERVICE_PORT");
        if (!host || !host[0] || !port || !port[0])
            return firn_errf(err, FIRN_EINVAL,
                             "no api_server or kubeconfig_file, and not running in a "
                             "Kubernetes cluster (KUBERNETES_SERVICE_HOST and "
                             "KUBERNETES_SERVICE_PORT unset)");
        char *url = firn_xasprintf(strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
                                   host, port);
        k->server = firn_arena_strdup(a, url);
        free(url);
        const char *dir = k->opts.serviceaccount_dir ? k->opts.serviceaccount_dir : K8S_SA_DIR;
        char *token_path = firn_xasprintf("%s/token", dir);
        char *ca_path = firn_xasprintf("%s/ca.crt", dir);
        k->http.authorization.set = true;
        k->http.authorization.type = "Bearer";
        k->http.authorization.credentials_file = firn_arena_strdup(a, token_path);
        k->http.tls.ca_file = firn_arena_strdup(a, ca_path);
        free(token_path);
        free(ca_path);
        if (cfg->own_namespace) {
            char *ns_path = firn_xasprintf("%s/namespace", dir);
            int rc = read_small(ns_path, own_ns, own_ns_size, err);
            free(ns_path);
            if (rc < 0)
                return -1;
        }
    }
    assert(k->server);   /* each branch above set it from a string */
    size_t n = strlen(k->server);
    while (n && k->server[n - 1] == '/')
        k->server[--n] = '\0';
    if (strncmp(k->server, "http://", 7) != 0 && strncmp(k->server, "https://", 8) != 0)
        return firn_errf(err, FIRN_EINVAL, "API server URL \"%.200s\" is not http(s)",
                         k->server);
    return 0;
}

static const char *selector_for(const config_kubernetes_sd *cfg, k8s_kind kind, bool label)
{
    for (size_t i = 0; i < cfg->n_selectors; i++)
        if (disc_k8s_role_kind(cfg->selectors[i].role) == (int)kind)
            return label ? cfg->selectors[i].label : cfg->selectors[i].field;
    return NULL;
}

static void k8s_free(disc_k8s *k)
{
    for (size_t i = 0; i < k->n_w; i++) {
        watcher *w = &k->w[i];
        if (w->easy) {
            if (w->state != W_IDLE && k->multi)
                curl_multi_remove_handle(k->multi, w->easy);
            curl_easy_cleanup(w->easy);
        }
        httpc_request_free(&w->req);
        firn_buf_free(&w->body);
        firn_buf_free(&w->line);
        json_decref(w->store);
        json_decref(w->listing);
        free(w->rv);
        free(w->cont);
        free(w->ns);
    }
    free(k->w);
    if (k->multi)
        curl_multi_cleanup(k->multi);
    if (k->has_kubeconfig)
        config_kubeconfig_free(&k->kubeconfig);
    json_decref(k->dirty);
    json_decref(k->sent);
    firn_arena_free(k->arena);
    free(k);
}

static pthread_once_t k8s_curl_once = PTHREAD_ONCE_INIT;
static CURLcode k8s_curl_rc;

static void k8s_curl_init(void)
{
    k8s_curl_rc = curl_global_init(CURL_GLOBAL_ALL);
}

disc_k8s *disc_k8s_start(const config_kubernetes_sd *cfg, const disc_k8s_options *o,
                         disc_sink *sink, firn_err *err)
{
    pthread_once(&k8s_curl_once, k8s_curl_init);
    if (k8s_curl_rc != CURLE_OK) {
        firn_errf(err, FIRN_EIO, "libcurl: %s", curl_easy_strerror(k8s_curl_rc));
        return NULL;
    }
    int role = cfg->role ? disc_k8s_role_kind(cfg->role) : -1;
    if (role < 0) {
        firn_errf(err, FIRN_EINVAL, "unknown Kubernetes SD role \"%.64s\"",
                  cfg->role ? cfg->role : "");
        return NULL;
    }
    disc_k8s *k = firn_xcalloc(1, sizeof *k);
    k->arena = firn_arena_new(1024);
    k->dirty = json_made(json_object());
    k->sent = json_made(json_object());
    if (!(k->multi = curl_multi_init()))
        firn_oom(0);   /* libcurl's own allocation failed */
    k->role = (k8s_kind)role;
    k->ropts.attach_node = cfg->attach_node;
    k->ropts.attach_namespace = cfg->attach_namespace;
    k->sink = sink;
    if (o)
        k->opts = *o;
    k->opts.serviceaccount_dir = firn_arena_strdup(k->arena, k->opts.serviceaccount_dir);
    k->opts.job = firn_arena_strdup(k->arena, k->opts.job ? k->opts.job : "");
    snprintf(k->user_agent, sizeof k->user_agent, "firn/%s", FIRN_VERSION);
    char own_ns[256] = "";
    if (connection_setup(k, cfg, own_ns, sizeof own_ns, err) < 0) {
        k8s_free(k);
        return NULL;
    }

    /* The namespaces: the configured names and our own, or all. */
    const char *names[K8S_SECTION_MAX];
    size_t n_names = 0;
    for (size_t i = 0; i < cfg->n_namespaces && n_names < K8S_SECTION_MAX; i++)
        names[n_names++] = cfg->namespaces[i];
    if (own_ns[0] && n_names < K8S_SECTION_MAX)
        names[n_names++] = own_ns;
    unsigned kinds = (1u << role) | disc_k8s_role_watches(k->role, &k->ropts);
    size_t cap = 0;
    for (int kind = 0; kind < K8S_KIND_COUNT; kind++)
        if (kinds & (1u << kind))
            cap += disc_k8s_kind_get((k8s_kind)kind)->namespaced && n_names ? n_names : 1;
    k->w = firn_xcalloc(cap, sizeof *k->w);
    for (int kind = 0; kind < K8S_KIND_COUNT; kind++) {
        if (!(kinds & (1u << kind)))
            continue;
        bool per_ns = disc_k8s_kind_get((k8s_kind)kind)->namespaced && n_names;
        for (size_t i = 0; i < (per_ns ? n_names : 1); i++) {
            bool dup = false;  /* own namespace also listed by name */
            for (size_t j = 0; per_ns && j < i; j++)
                dup |= strcmp(names[j], names[i]) == 0;
            if (dup)
                continue;
            watcher *w = &k->w[k->n_w];
            w->k = k;
            w->kind = (k8s_kind)kind;
            w->ns = firn_xstrdup(per_ns ? names[i] : "");
            w->store = json_made(json_object());
            w->label_sel = firn_arena_strdup(k->arena, selector_for(cfg, (k8s_kind)kind, true));
            w->field_sel = firn_arena_strdup(k->arena, selector_for(cfg, (k8s_kind)kind, false));
            k->n_w++;
            assert(k->n_w <= cap);
        }
    }
    firn_log(FIRN_LOG_INFO, K8S_COMPONENT, "Kubernetes discovery starting",
             "job=%s role=%s server=%s watches=%zu", k->opts.job, cfg->role, k->server, k->n_w);
    if (pthread_create(&k->thread, NULL, k8s_thread, k) != 0) {
        k8s_free(k);
        firn_errf(err, FIRN_EIO, "starting the Kubernetes discovery thread failed");
        return NULL;
    }
    return k;
}

void disc_k8s_stop(disc_k8s *k)
{
    if (!k)
        return;
    atomic_store(&k->stopping, true);
    curl_multi_wakeup(k->multi);
    pthread_join(k->thread, NULL);
    k8s_free(k);
}
