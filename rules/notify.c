/* notify.c -- the Alertmanager client, as Prometheus 2.42's notifier:
 * external labels added where an alert lacks them, alert_relabel_configs,
 * one bounded queue (the oldest alerts dropped when full), batches POSTed
 * as API v2 JSON to every Alertmanager, no retry (the rule's resend is the
 * retry).  A batch that no Alertmanager accepted is counted as dropped.
 *
 * Counters keep 2.42's meanings: sent_total{alertmanager} += batch size
 * per attempt (failed ones included), errors_total{alertmanager} += 1 per
 * failed request, dropped_total += batch size when no Alertmanager took it.
 *
 * Alertmanagers come from static_configs and from discovery/'s file_sd,
 * dns_sd and kubernetes_sd providers (one per entry, restarted by each
 * rules_notifier_set).  Each target becomes a URL as Prometheus 2.42's
 * alertmanagerFromGroup builds it: its labels with __scheme__ and
 * __alerts_path__ (path_prefix + /api/v2/alerts) go through the entry's
 * relabel_configs; a dropped target is not sent to, a kept one is
 * __scheme__://__address__ + __alerts_path__ (rules_am_group_urls).
 *
 * Threads: rules_notifier_send from any evaluation thread (never blocks on
 * the network), one sender thread, rules_notifier_set from the reload path,
 * the providers' threads through their sinks (all under n->mu).
 */
#include "internal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "discovery/discovery.h"
#include "httpc/httpc.h"

struct queued {
    char *json;                  /* one alert object */
};

struct am {
    char *url;
    int64_t timeout_ms;
    const config_http *http;     /* the configuration's, valid while it is set */
    uint64_t sent, errors;
};

/* What one provider last reported: the Alertmanager URLs of each source. */
struct prov_group {
    char *source;
    char **urls;
    size_t n;
};

/* One file_sd, dns_sd or kubernetes_sd entry of an Alertmanager config,
 * running. */
struct am_provider {
    disc_sink sink;              /* first: the sink callbacks get this pointer */
    rules_notifier *n;
    /* the entry's config: alive until the provider is stopped (a
     * configuration outlives the rules_notifier_set replacing it) */
    const config_alertmanager *am;
    disc_file *file;             /* one of these three */
    disc_dns *dns;
    disc_k8s *k8s;
    struct prov_group *groups;
    size_t n_groups, cap_groups;
};

struct rules_notifier {
    pthread_mutex_t mu;
    pthread_cond_t wake, idle;
    pthread_t thread;
    bool started, stop;
    bool sending;                /* POSTs in flight use the configuration's http config */
    struct queued *q;            /* ring */
    size_t cap, head, len;
    size_t batch;
    struct am *ams;
    size_t n_ams, cap_ams;
    const firn_label *external;
    size_t n_external;
    const firn_relabel_config *relabel;
    size_t n_relabel;
    uint64_t dropped;
    char *user_agent;
    const firn_config *cfg;      /* the Alertmanager configs, for rebuilds */
    struct am_provider **provs;
    size_t n_provs;
    char *dns_server;            /* --discovery.dns.server, or NULL */
    /* counters of Alertmanagers no longer configured live on in metrics
     * as long as the process: Prometheus keeps them too */
};

/* Go's strfmt.DateTime: milliseconds, UTC, "Z". */
static void am_time(firn_buf *b, int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char buf[40];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    firn_buf_printf(b, "\"%s.%03dZ\"", buf, (int)(ms % 1000 + 1000) % 1000);
}

rules_notifier *rules_notifier_new(size_t capacity, size_t batch, const char *dns_server,
                                   firn_err *err)
{
    (void)err;   /* nothing left that can fail (model/alloc.h) */
    rules_notifier *n = firn_xcalloc(1, sizeof *n);
    n->q = firn_xcalloc(capacity ? capacity : 1, sizeof *n->q);   /* a flag's size */
    if (dns_server)
        n->dns_server = firn_xstrdup(dns_server);
    n->cap = capacity ? capacity : 1;
    n->batch = batch ? batch : 64;
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->wake, NULL);
    pthread_cond_init(&n->idle, NULL);
    return n;
}

/* path.Join("/", path_prefix, "/api/v2/alerts") minus the leading "/":
 * "" or "a/b". */
static void alerts_prefix(const char *path_prefix, char *prefix, size_t size)
{
    size_t pl = 0;
    for (const char *p = path_prefix; *p && pl + 1 < size; p++)
        if (*p != '/' || (pl && prefix[pl - 1] != '/'))
            prefix[pl++] = *p;
    while (pl && prefix[pl - 1] == '/')
        pl--;
    prefix[pl] = 0;
}

/* Sets name to value in l[0..*n) (l has room for one more). */
static void label_set(firn_label *l, size_t *n, const char *name, const char *value)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(l[i].name, name) == 0) {
            l[i].value = value;
            return;
        }
    l[(*n)++] = (firn_label){name, value};
}

/* Go's url.URL String() for {scheme, host, path}: the path escaped as
 * url.PathEscape's encodePath mode does (unreserved and $&+,/:;=@ kept),
 * a "/" put before a relative path when there is a host. */
static char *am_url(const char *scheme, const char *host, const char *path)
{
    firn_buf b = {0};
    if (scheme[0])
        firn_buf_printf(&b, "%s:", scheme);
    if (scheme[0] || host[0])
        firn_buf_printf(&b, "//%s", host);
    if (host[0] && path[0] && path[0] != '/')
        firn_buf_puts(&b, "/");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~$&+,/:;=@", *p))
            firn_buf_printf(&b, "%c", *p);
        else
            firn_buf_printf(&b, "%%%02X", *p);
    }
    return firn_buf_take(&b, NULL);
}

int rules_am_group_urls(const config_alertmanager *c, const disc_group *g, char ***urls,
                        size_t *n_urls, firn_err *err)
{
    *urls = NULL;
    *n_urls = 0;
    char prefix[512];
    alerts_prefix(c->path_prefix, prefix, sizeof prefix);
    char path[600];
    snprintf(path, sizeof path, "/%s%sapi/v2/alerts", prefix, prefix[0] ? "/" : "");
    firn_arena *arena = firn_arena_new(0);
    char **out = firn_xcalloc(g->n_targets + 1, sizeof *out);
    size_t n = 0;
    int rc = 0;
    for (size_t t = 0; rc == 0 && t < g->n_targets; t++) {
        const disc_target *tg = &g->targets[t];
        firn_label *l = firn_arena_alloc(arena, (tg->n_labels + g->n_labels + 2) * sizeof *l);
        /* the target's labels; the configured scheme and path over them;
         * the group's labels the target lacks (the order later Prometheus
         * versions make explicit with a labels.Builder) */
        size_t nl = 0;
        for (size_t k = 0; k < tg->n_labels; k++)
            label_set(l, &nl, tg->labels[k].name, tg->labels[k].value);
        label_set(l, &nl, "__scheme__", c->scheme);
        label_set(l, &nl, "__alerts_path__", path);
        for (size_t k = 0; k < g->n_labels; k++)
            if (!firn_labels_get(tg->labels, tg->n_labels, g->labels[k].name))
                label_set(l, &nl, g->labels[k].name, g->labels[k].value);
        if (firn_labels_normalize(l, &nl, err) < 0) {
            rc = -1;
            break;
        }
        firn_label *kept = l;
        size_t n_kept = nl;
        if (c->n_relabel_configs) {
            int k = firn_relabel_process(c->relabel_configs, c->n_relabel_configs, l, nl, arena,
                                         &kept, &n_kept, err);
            if (k < 0) {
                rc = -1;
                break;
            }
            if (k == 0)
                continue;   /* dropped by relabel_configs: not sent to */
        }
        const char *addr = firn_labels_get(kept, n_kept, "__address__");
        const char *scheme = firn_labels_get(kept, n_kept, "__scheme__");
        const char *apath = firn_labels_get(kept, n_kept, "__alerts_path__");
        if (addr && strchr(addr, '/')) {   /* config.CheckTargetAddress: the whole group fails */
            rc = firn_errf(err, FIRN_EINVAL, "\"%.256s\" is not a valid hostname", addr);
            break;
        }
        out[n++] = am_url(scheme ? scheme : "", addr ? addr : "", apath ? apath : "");
    }
    firn_arena_free(arena);
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            free(out[i]);
        free(out);
        return rc;
    }
    *urls = out;
    *n_urls = n;
    return 0;
}

/* Adds the Alertmanager at url (taken) to the list being built (no
 * duplicate URLs), its counters carried over from old. */
static void add_am(rules_notifier *n, const config_alertmanager *c, char *url,
                   const struct am *old, size_t n_old)
{
    for (size_t k = 0; k < n->n_ams; k++)
        if (strcmp(n->ams[k].url, url) == 0) {
            free(url);
            return;
        }
    n->ams = firn_grow(n->ams, n->n_ams, &n->cap_ams, sizeof *n->ams, 4);
    struct am *a = &n->ams[n->n_ams++];
    *a = (struct am){.url = url, .timeout_ms = c->timeout_ms, .http = &c->http};
    for (size_t k = 0; k < n_old; k++)   /* counters carry over */
        if (strcmp(old[k].url, url) == 0) {
            a->sent = old[k].sent;
            a->errors = old[k].errors;
        }
}

static void log_group_failed(const firn_err *err)
{
    char q[512];
    firn_log(FIRN_LOG_ERROR, "notifier", "Creating discovered Alertmanagers failed", "err=%s",
             firn_log_quote(q, sizeof q, err->msg));
}

/* The Alertmanager list from the configuration and what the providers
 * found (n->mu held). */
static void rebuild_ams(rules_notifier *n)
{
    struct am *old = n->ams;
    size_t n_old = n->n_ams;
    n->ams = NULL;
    n->n_ams = n->cap_ams = 0;
    for (size_t i = 0; n->cfg && i < n->cfg->n_alertmanagers; i++) {
        const config_alertmanager *c = &n->cfg->alertmanagers[i];
        for (size_t g = 0; g < c->n_static_configs; g++) {
            /* static_configs as Prometheus's static provider: one group
             * per entry, its labels the group's */
            const config_target_group *sg = &c->static_configs[g];
            disc_target *targets = firn_xcalloc(sg->n_targets + 1, sizeof *targets);
            firn_label *addrs = firn_xcalloc(sg->n_targets + 1, sizeof *addrs);
            char **urls = NULL;
            size_t n_urls = 0;
            firn_err err = {0};
            for (size_t t = 0; t < sg->n_targets; t++) {
                addrs[t] = (firn_label){"__address__", sg->targets[t]};
                targets[t] = (disc_target){&addrs[t], 1};
            }
            disc_group dg = {.source = "", .targets = targets, .n_targets = sg->n_targets,
                             .labels = sg->labels, .n_labels = sg->n_labels};
            if (rules_am_group_urls(c, &dg, &urls, &n_urls, &err) < 0)
                log_group_failed(&err);
            for (size_t u = 0; u < n_urls; u++)
                add_am(n, c, urls[u], old, n_old);
            free(urls);
            free(targets);
            free(addrs);
        }
        for (size_t p = 0; p < n->n_provs; p++)
            for (size_t g = 0; n->provs[p]->am == c && g < n->provs[p]->n_groups; g++)
                for (size_t t = 0; t < n->provs[p]->groups[g].n; t++)
                    add_am(n, c, firn_xstrdup(n->provs[p]->groups[g].urls[t]), old, n_old);
    }
    for (size_t k = 0; k < n_old; k++)
        free(old[k].url);
    free(old);
}

static void prov_group_clear(struct prov_group *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->urls[i]);
    free(g->urls);
    free(g->source);
    *g = (struct prov_group){0};
}

/* disc_sink.send: the provider's groups by source (an empty group removes
 * its source), then the list again. */
static void prov_send(disc_sink *self, const disc_group *groups, size_t count)
{
    struct am_provider *p = (struct am_provider *)self;
    rules_notifier *n = p->n;
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < count; i++) {
        const disc_group *g = &groups[i];
        size_t k = 0;
        while (k < p->n_groups && strcmp(p->groups[k].source, g->source) != 0)
            k++;
        if (k < p->n_groups)
            prov_group_clear(&p->groups[k]);
        if (!g->n_targets) {
            if (k < p->n_groups)
                p->groups[k] = p->groups[--p->n_groups];
            continue;
        }
        if (k == p->n_groups) {
            p->groups = firn_grow(p->groups, p->n_groups, &p->cap_groups, sizeof *p->groups, 4);
            p->n_groups++;
        }
        struct prov_group *pg = &p->groups[k];
        *pg = (struct prov_group){.source = firn_xstrdup(g->source)};
        firn_err err = {0};
        if (rules_am_group_urls(p->am, g, &pg->urls, &pg->n, &err) < 0)
            log_group_failed(&err);
        if (!pg->urls) {   /* failed: the source is left out */
            prov_group_clear(pg);
            p->groups[k] = p->groups[--p->n_groups];
        }
    }
    rebuild_ams(n);
    pthread_mutex_unlock(&n->mu);
}

static void prov_refreshed(disc_sink *self, bool ok)
{
    (void)self, (void)ok;   /* discovery/ logs failed refreshes */
}

static void provs_stop(struct am_provider **provs, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (provs[i]->file)
            disc_file_stop(provs[i]->file);
        if (provs[i]->dns)
            disc_dns_stop(provs[i]->dns);
        if (provs[i]->k8s)
            disc_k8s_stop(provs[i]->k8s);
        for (size_t g = 0; g < provs[i]->n_groups; g++)
            prov_group_clear(&provs[i]->groups[g]);
        free(provs[i]->groups);
        free(provs[i]);
    }
    free(provs);
}

/* Starts a provider for Alertmanager config am (the entry file, dns or
 * k8s). */
static void prov_start(rules_notifier *n, const config_alertmanager *am,
                       const config_file_sd *file, const config_dns_sd *dns,
                       const config_kubernetes_sd *k8s)
{
    struct am_provider *p = firn_xcalloc(1, sizeof *p);
    p->sink = (disc_sink){.send = prov_send, .refreshed = prov_refreshed};
    p->n = n;
    p->am = am;
    pthread_mutex_lock(&n->mu);
    /* one more provider: a config has a handful, each added once */
    n->provs = firn_xreallocarray(n->provs, n->n_provs + 1, sizeof *n->provs);
    n->provs[n->n_provs++] = p;   /* before it starts: its first send finds it */
    pthread_mutex_unlock(&n->mu);
    firn_err err = {0};
    disc_dns_options o = {.server = n->dns_server};
    disc_k8s_options ko = {.job = "alerting"};
    bool ok = file  ? (p->file = disc_file_start(file, &p->sink, &err)) != NULL
              : dns ? (p->dns = disc_dns_start(dns, &o, &p->sink, &err)) != NULL
                    : (p->k8s = disc_k8s_start(k8s, &ko, &p->sink, &err)) != NULL;
    if (!ok)
        firn_log(FIRN_LOG_ERROR, "notifier", "Cannot start Alertmanager discovery",
                 "err=\"%s\"", err.msg);
}

void rules_notifier_set(rules_notifier *n, const firn_config *cfg)
{
    pthread_mutex_lock(&n->mu);
    /* the previous configuration is freed after this returns: no POST may
     * still be using its http config */
    while (n->sending)
        pthread_cond_wait(&n->idle, &n->mu);
    struct am_provider **old = n->provs;
    size_t n_old = n->n_provs;
    n->provs = NULL;
    n->n_provs = 0;
    n->cfg = cfg;
    rebuild_ams(n);
    n->external = cfg->external_labels;
    n->n_external = cfg->n_external_labels;
    n->relabel = cfg->alert_relabel_configs;
    n->n_relabel = cfg->n_alert_relabel_configs;
    pthread_mutex_unlock(&n->mu);
    /* the old providers, unlocked: their threads may be waiting for n->mu */
    provs_stop(old, n_old);
    for (size_t i = 0; i < cfg->n_alertmanagers; i++) {
        const config_alertmanager *am = &cfg->alertmanagers[i];
        for (size_t j = 0; j < am->n_file_sd; j++)
            prov_start(n, am, &am->file_sd[j], NULL, NULL);
        for (size_t j = 0; j < am->n_dns_sd; j++)
            prov_start(n, am, NULL, &am->dns_sd[j], NULL);
        for (size_t j = 0; j < am->n_kubernetes_sd; j++)
            prov_start(n, am, NULL, NULL, &am->kubernetes_sd[j]);
    }
}

void rules_notifier_send(rules_notifier *n, const rules_notification *alerts, size_t count)
{
    firn_arena *arena = firn_arena_new(0);
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < count; i++) {
        const rules_notification *a = &alerts[i];
        /* external labels where the alert lacks the label (or has it empty) */
        firn_label *l = firn_arena_alloc(arena, (a->n_labels + n->n_external + 1) * sizeof *l);
        size_t nl = 0;
        for (size_t k = 0; k < a->n_labels; k++)
            l[nl++] = a->labels[k];
        for (size_t k = 0; k < n->n_external; k++) {
            const char *have = firn_labels_get(a->labels, a->n_labels, n->external[k].name);
            if (!have || !have[0])
                l[nl++] = n->external[k];
        }
        firn_err err = {0};
        if (firn_labels_normalize(l, &nl, &err) < 0)
            continue;
        firn_label *out = l;
        size_t n_out = nl;
        if (n->n_relabel) {
            int kept = firn_relabel_process(n->relabel, n->n_relabel, l, nl, arena, &out, &n_out,
                                            &err);
            if (kept <= 0)
                continue;   /* dropped by alert_relabel_configs */
        }
        firn_buf b = {0};
        firn_buf_puts(&b, "{\"annotations\":");
        rules_json_labels(&b, a->annotations, a->n_annotations);
        firn_buf_puts(&b, ",\"endsAt\":");
        am_time(&b, a->ends_at_ms);
        firn_buf_puts(&b, ",\"startsAt\":");
        am_time(&b, a->starts_at_ms);
        firn_buf_puts(&b, ",\"generatorURL\":");
        firn_json_string(&b, a->generator_url);
        firn_buf_puts(&b, ",\"labels\":");
        rules_json_labels(&b, out, n_out);
        firn_buf_puts(&b, "}");
        char *json = firn_buf_take(&b, NULL);   /* no cap: never NULL */
        if (n->len == n->cap) {
            /* full: the oldest goes */
            free(n->q[n->head].json);
            n->head = (n->head + 1) % n->cap;
            n->len--;
            n->dropped++;
        }
        n->q[(n->head + n->len) % n->cap].json = json;
        n->len++;
    }
    pthread_cond_signal(&n->wake);
    pthread_mutex_unlock(&n->mu);
    firn_arena_free(arena);
}

/* One POST; true on a 2xx. */
static bool post(const char *url, const config_http *http, int64_t timeout_ms, const char *body,
                 const char *user_agent)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (!h)
        firn_oom(0);   /* libcurl's own allocation failed */
    httpc_response *resp = firn_xmalloc(sizeof *resp);
    bool ok = false;
    const char *why = NULL;
    if (httpc_post(NULL, http, url, h, body, strlen(body), timeout_ms, user_agent, NULL, resp) < 0)
        why = resp->error;
    else if (!(ok = resp->status / 100 == 2))
        why = "bad response status";
    if (!ok) {
        char q[512];
        firn_log(FIRN_LOG_ERROR, "notifier", "Error sending alert", "alertmanager=%s err=%s",
                 url, firn_log_quote(q, sizeof q, why));
    }
    free(resp);
    curl_slist_free_all(h);
    return ok;
}

static void *sender(void *arg)
{
    rules_notifier *n = arg;
    pthread_mutex_lock(&n->mu);
    for (;;) {
        while (!n->stop && n->len == 0)
            pthread_cond_wait(&n->wake, &n->mu);
        if (n->stop)
            break;
        assert(n->len <= n->cap && n->head < n->cap);
        size_t k = n->len < n->batch ? n->len : n->batch;
        firn_buf body = {0};
        firn_buf_puts(&body, "[");
        for (size_t i = 0; i < k; i++) {
            struct queued *q = &n->q[(n->head + i) % n->cap];
            if (i)
                firn_buf_puts(&body, ",");
            firn_buf_puts(&body, q->json);
            free(q->json);
            q->json = NULL;
        }
        firn_buf_puts(&body, "]");
        n->head = (n->head + k) % n->cap;
        n->len -= k;
        /* a snapshot of the targets: the POSTs run unlocked */
        size_t n_ams = n->n_ams;
        struct am *ams = firn_xcalloc(n_ams + 1, sizeof *ams);
        for (size_t i = 0; i < n_ams; i++) {
            ams[i] = n->ams[i];
            ams[i].url = firn_xstrdup(n->ams[i].url);
        }
        n->sending = true;
        pthread_mutex_unlock(&n->mu);
        bool any = false;
        bool *ok = firn_xcalloc(n_ams + 1, sizeof *ok);
        for (size_t i = 0; i < n_ams; i++)
            any |= ok[i] = post(ams[i].url, ams[i].http, ams[i].timeout_ms, body.data,
                                n->user_agent ? n->user_agent : "firn");
        firn_buf_free(&body);
        pthread_mutex_lock(&n->mu);
        n->sending = false;
        pthread_cond_broadcast(&n->idle);
        for (size_t i = 0; i < n_ams; i++) {
            for (size_t j = 0; j < n->n_ams; j++)
                if (strcmp(n->ams[j].url, ams[i].url) == 0) {
                    n->ams[j].sent += k;
                    n->ams[j].errors += !ok[i];
                }
            free(ams[i].url);
        }
        if (!any)
            n->dropped += k;
        free(ams);
        free(ok);
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

int rules_notifier_start(rules_notifier *n, const char *user_agent, firn_err *err)
{
    n->user_agent = firn_xstrdup(user_agent ? user_agent : "firn");
    int rc = pthread_create(&n->thread, NULL, sender, n);
    if (rc)
        return firn_errf(err, FIRN_EIO, "starting the notifier: %s", strerror(rc));
    n->started = true;
    return 0;
}

void rules_notifier_free(rules_notifier *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    struct am_provider **provs = n->provs;
    size_t n_provs = n->n_provs;
    n->provs = NULL;
    n->n_provs = 0;
    pthread_mutex_unlock(&n->mu);
    provs_stop(provs, n_provs);
    pthread_mutex_lock(&n->mu);
    n->stop = true;
    pthread_cond_signal(&n->wake);
    pthread_mutex_unlock(&n->mu);
    if (n->started)
        pthread_join(n->thread, NULL);
    for (size_t i = 0; i < n->len; i++)
        free(n->q[(n->head + i) % n->cap].json);
    free(n->q);
    for (size_t i = 0; i < n->n_ams; i++)
        free(n->ams[i].url);
    free(n->ams);
    free(n->user_agent);
    free(n->dns_server);
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->wake);
    pthread_cond_destroy(&n->idle);
    free(n);
}

void rules_notifier_metrics_write(rules_notifier *n, firn_buf *b)
{
    pthread_mutex_lock(&n->mu);
    firn_metrics_header(b, "firn_notifications_sent_total", "counter",
                        "Alerts sent to an Alertmanager, per attempt (failed ones included), "
                        "as Prometheus 2.42 counts.");
    for (size_t i = 0; i < n->n_ams; i++) {
        firn_label l = {"alertmanager", n->ams[i].url};
        firn_metrics_sample(b, "firn_notifications_sent_total", &l, 1, (double)n->ams[i].sent);
    }
    firn_metrics_header(b, "firn_notifications_errors_total", "counter",
                        "Requests to an Alertmanager that failed (Prometheus 2.42's meaning).");
    for (size_t i = 0; i < n->n_ams; i++) {
        firn_label l = {"alertmanager", n->ams[i].url};
        firn_metrics_sample(b, "firn_notifications_errors_total", &l, 1,
                            (double)n->ams[i].errors);
    }
    firn_metrics_single(b, "firn_notifications_dropped_total", "counter",
                        "Alerts dropped: the queue was full, or no Alertmanager accepted them.",
                        (double)n->dropped);
    firn_metrics_single(b, "firn_notifications_queue_length", "gauge",
                        "Alerts waiting in the notification queue.", (double)n->len);
    firn_metrics_single(b, "firn_notifications_queue_capacity", "gauge",
                        "Capacity of the notification queue.", (double)n->cap);
    firn_metrics_single(b, "firn_notifications_alertmanagers_discovered", "gauge",
                        "Alertmanagers alerts are sent to.", (double)n->n_ams);
    pthread_mutex_unlock(&n->mu);
}
