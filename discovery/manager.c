/* manager.c -- the discovery manager: one provider per SD config entry of
 * each job, their groups coalesced and handed on (contract in
 * discovery.h).
 *
 * Each provider reports through its sink from its own thread; the sink
 * merges the groups by source into two sets under the manager's mutex:
 * `pending` (what changed since the last flush, an empty group included,
 * since it tells that a source is gone) and `current` (every source that
 * has targets, to send again after a reload rebuilt the scrape pools).  A
 * flusher thread hands pending sets on every update_interval, so a burst
 * of changes (a directory of files rewritten) costs one target sync.
 */
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discovery/discovery.h"

#define DEFAULT_UPDATE_INTERVAL_MS 5000

enum mechanism { MECH_FILE, MECH_DNS, MECH_K8S, MECH_COUNT };
static const char *const MECH_NAMES[MECH_COUNT] = {"file", "dns", "kubernetes"};

/* A group that owns its memory. */
typedef struct owned_group {
    firn_arena *arena;
    disc_group g;
} owned_group;

typedef struct group_set {
    owned_group *v;
    size_t n, cap;
} group_set;

typedef struct provider {
    disc_sink sink;              /* first: the sink handed out is the provider */
    disc_manager *m;
    char *job;
    char name[32];               /* "file/0", "dns/1": unique within the job */
    enum mechanism mech;
    config_file_sd file_cfg;     /* a copy, for comparing on reload */
    config_dns_sd dns_cfg;
    config_kubernetes_sd k8s_cfg;
    firn_arena *cfg_arena;
    disc_file *file;
    disc_dns *dns;
    disc_k8s *k8s;
    group_set pending, current;  /* m->mu */
    bool dirty;                  /* m->mu */
    size_t targets;              /* m->mu: targets in current */
} provider;

struct disc_manager {
    disc_manager_options opts;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stopping;
    pthread_t flusher;
    provider **providers;
    size_t n_providers;
    /* self-metrics */
    _Atomic uint64_t refreshes[MECH_COUNT], failures[MECH_COUNT], updates;
};

/* ---- owned groups ------------------------------------------------------------- */

/* The counts below are of groups already in memory: the arena's callocs
 * cannot overflow, so they do not return NULL (model/alloc.h). */
static firn_label *copy_labels(firn_arena *a, const firn_label *in, size_t n)
{
    firn_label *out = firn_arena_calloc(a, n + 1, sizeof *out);
    assert(out);
    for (size_t i = 0; i < n; i++) {
        out[i].name = firn_arena_strdup(a, in[i].name);
        out[i].value = firn_arena_strdup(a, in[i].value);
    }
    return out;
}

static void group_copy(owned_group *o, const disc_group *g)
{
    o->arena = firn_arena_new(1024);
    firn_arena *a = o->arena;
    o->g.source = firn_arena_strdup(a, g->source);
    o->g.labels = copy_labels(a, g->labels, g->n_labels);
    o->g.n_labels = g->n_labels;
    o->g.targets = firn_arena_calloc(a, g->n_targets + 1, sizeof *o->g.targets);
    assert(o->g.targets);
    for (size_t t = 0; t < g->n_targets; t++) {
        o->g.targets[t].labels = copy_labels(a, g->targets[t].labels, g->targets[t].n_labels);
        o->g.targets[t].n_labels = g->targets[t].n_labels;
    }
    o->g.n_targets = g->n_targets;
}

static void set_clear(group_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        firn_arena_free(s->v[i].arena);
    free(s->v);
    *s = (group_set){0};
}

/* Put a copy of g into s in place of the group of the same source; with
 * drop_empty, an empty g only removes that source. */
static void set_put(group_set *s, const disc_group *g, bool drop_empty)
{
    size_t at = s->n;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].g.source, g->source) == 0)
            at = i;
    if (at < s->n) {
        firn_arena_free(s->v[at].arena);
        s->v[at] = s->v[--s->n];
    }
    if (drop_empty && g->n_targets == 0)
        return;
    s->v = firn_grow(s->v, s->n, &s->cap, sizeof *s->v, 8);
    group_copy(&s->v[s->n++], g);
}

/* The groups of s as a plain array (malloc'd; the groups stay s's). */
static disc_group *set_view(const group_set *s)
{
    disc_group *v = firn_xreallocarray(NULL, s->n + 1, sizeof *v);
    for (size_t i = 0; i < s->n; i++)
        v[i] = s->v[i].g;
    return v;
}

/* ---- sinks ------------------------------------------------------------------------ */

static void sink_send(disc_sink *self, const disc_group *groups, size_t n)
{
    provider *p = (provider *)self;
    disc_manager *m = p->m;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < n; i++) {
        set_put(&p->pending, &groups[i], false);
        set_put(&p->current, &groups[i], true);
    }
    size_t targets = 0;
    for (size_t i = 0; i < p->current.n; i++)
        targets += p->current.v[i].g.n_targets;
    p->targets = targets;
    p->dirty = true;
    pthread_mutex_unlock(&m->mu);
}

static void sink_refreshed(disc_sink *self, bool ok)
{
    provider *p = (provider *)self;
    atomic_fetch_add(&p->m->refreshes[p->mech], 1);
    if (!ok)
        atomic_fetch_add(&p->m->failures[p->mech], 1);
}

/* ---- providers ---------------------------------------------------------------------- */

static void provider_free(provider *p)
{
    if (!p)
        return;
    if (p->file)
        disc_file_stop(p->file);
    if (p->dns)
        disc_dns_stop(p->dns);
    if (p->k8s)
        disc_k8s_stop(p->k8s);
    set_clear(&p->pending);
    set_clear(&p->current);
    firn_arena_free(p->cfg_arena);
    free(p->job);
    free(p);
}

/* A provider for entry index of mechanism mech of job; started. */
static provider *provider_new(disc_manager *m, const char *job, enum mechanism mech, size_t index,
                              const void *cfg, firn_err *err)
{
    provider *p = firn_xcalloc(1, sizeof *p);
    p->job = firn_xstrdup(job);
    p->cfg_arena = firn_arena_new(1024);
    p->sink.send = sink_send;
    p->sink.refreshed = sink_refreshed;
    p->m = m;
    p->mech = mech;
    snprintf(p->name, sizeof p->name, "%s/%zu", MECH_NAMES[mech], index);
    bool ok;
    if (mech == MECH_FILE) {
        config_file_sd_copy(p->cfg_arena, cfg, &p->file_cfg);
        ok = (p->file = disc_file_start(&p->file_cfg, &p->sink, err)) != NULL;
    } else if (mech == MECH_K8S) {
        disc_k8s_options ko = m->opts.k8s;
        ko.job = job;
        config_kubernetes_sd_copy(p->cfg_arena, cfg, &p->k8s_cfg);
        ok = (p->k8s = disc_k8s_start(&p->k8s_cfg, &ko, &p->sink, err)) != NULL;
    } else {
        config_dns_sd_copy(p->cfg_arena, cfg, &p->dns_cfg);
        ok = (p->dns = disc_dns_start(&p->dns_cfg, &m->opts.dns, &p->sink, err)) != NULL;
    }
    if (!ok) {
        provider_free(p);
        return NULL;
    }
    return p;
}

/* ---- flushing ----------------------------------------------------------------------- */

/* Hand on every provider's pending groups (all of current when all). */
static void flush(disc_manager *m, bool all)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n_providers; i++) {
        provider *p = m->providers[i];
        if (!p->dirty && !all)
            continue;
        group_set *s = all ? &p->current : &p->pending;
        disc_group *v = set_view(s);
        /* The callback runs under the lock so providers cannot change the
         * groups it reads; it must not call back into discovery. */
        m->opts.update(m->opts.ctx, p->job, p->name, v, s->n);
        atomic_fetch_add(&m->updates, 1);
        free(v);
        set_clear(&p->pending);
        p->dirty = false;
    }
    pthread_mutex_unlock(&m->mu);
}

static void *flusher(void *arg)
{
    disc_manager *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stopping) {
        struct timespec until = firn_deadline_ms(m->opts.update_interval_ms);
        pthread_cond_timedwait(&m->cond, &m->mu, &until);
        if (m->stopping)
            break;
        pthread_mutex_unlock(&m->mu);
        flush(m, false);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* ---- the manager -------------------------------------------------------------------- */

disc_manager *disc_manager_new(const disc_manager_options *o, firn_err *err)
{
    disc_manager *m = firn_xcalloc(1, sizeof *m);
    m->opts = *o;
    if (m->opts.update_interval_ms <= 0)
        m->opts.update_interval_ms = DEFAULT_UPDATE_INTERVAL_MS;
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&m->flusher, NULL, flusher, m) != 0) {
        pthread_mutex_destroy(&m->mu);
        pthread_cond_destroy(&m->cond);
        free(m);
        firn_errf(err, FIRN_EIO, "starting the discovery thread failed");
        return NULL;
    }
    return m;
}

int disc_manager_apply(disc_manager *m, const firn_config *cfg, firn_err *err)
{
    size_t want = 0;
    for (size_t i = 0; i < cfg->n_scrapes; i++)
        want += cfg->scrapes[i].n_file_sd + cfg->scrapes[i].n_dns_sd +
                cfg->scrapes[i].n_kubernetes_sd;
    provider **next = firn_xcalloc(want + 1, sizeof *next);
    pthread_mutex_lock(&m->mu);
    provider **old = m->providers;
    size_t n_old = m->n_providers;
    m->providers = NULL;
    m->n_providers = 0;
    pthread_mutex_unlock(&m->mu);

    size_t n = 0, kept = 0;
    int rc = 0;
    for (size_t i = 0; i < cfg->n_scrapes; i++) {
        const config_scrape *job = &cfg->scrapes[i];
        size_t n_sd = job->n_file_sd + job->n_dns_sd + job->n_kubernetes_sd;
        for (size_t k = 0; k < n_sd; k++) {
            enum mechanism mech = k < job->n_file_sd                  ? MECH_FILE
                                  : k < job->n_file_sd + job->n_dns_sd ? MECH_DNS
                                                                       : MECH_K8S;
            size_t index = mech == MECH_FILE ? k
                           : mech == MECH_DNS ? k - job->n_file_sd
                                              : k - job->n_file_sd - job->n_dns_sd;
            const void *c = mech == MECH_FILE  ? (const void *)&job->file_sd[index]
                            : mech == MECH_DNS ? (const void *)&job->dns_sd[index]
                                               : (const void *)&job->kubernetes_sd[index];
            char name[32];
            snprintf(name, sizeof name, "%s/%zu", MECH_NAMES[mech], index);
            provider *p = NULL;
            for (size_t o = 0; o < n_old && !p; o++) {
                provider *q = old[o];
                if (q && q->mech == mech && strcmp(q->job, job->job_name) == 0 &&
                    strcmp(q->name, name) == 0 &&
                    (mech == MECH_FILE  ? config_file_sd_equal(&q->file_cfg, c)
                     : mech == MECH_DNS ? config_dns_sd_equal(&q->dns_cfg, c)
                                        : config_kubernetes_sd_equal(&q->k8s_cfg, c))) {
                    p = q;  /* unchanged: keeps running, and its groups */
                    old[o] = NULL;
                    kept++;
                }
            }
            if (!p) {
                firn_err perr = {0};
                p = provider_new(m, job->job_name, mech, index, c, &perr);
                if (!p && rc == 0)  /* the first failure is the error; the rest start */
                    rc = firn_errf(err, perr.code, "job %s, %s: %s", job->job_name, name,
                                   perr.msg);
                else if (!p)
                    firn_log(FIRN_LOG_ERROR, "discovery", "Starting a discovery provider failed",
                             "job=%s provider=%s err=%s", job->job_name, name,
                             firn_log_quote((char[600]){0}, 600, perr.msg));
            }
            if (p)
                next[n++] = p;
        }
    }
    /* Providers gone from the config stop (outside the lock: they may be
     * sending). */
    for (size_t o = 0; o < n_old; o++)
        provider_free(old[o]);
    free(old);
    pthread_mutex_lock(&m->mu);
    m->providers = next;
    m->n_providers = n;
    pthread_mutex_unlock(&m->mu);
    /* Pools the scrape manager rebuilt have none of these groups yet. */
    flush(m, true);
    firn_log(FIRN_LOG_INFO, "discovery", "discovery configuration applied",
             "providers=%zu kept=%zu", n, kept);
    return rc;
}

void disc_manager_free(disc_manager *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->stopping = true;
    pthread_cond_broadcast(&m->cond);
    provider **ps = m->providers;
    size_t n = m->n_providers;
    m->providers = NULL;
    m->n_providers = 0;
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->flusher, NULL);
    for (size_t i = 0; i < n; i++)
        provider_free(ps[i]);
    free(ps);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cond);
    free(m);
}

/* A family with one sample per mechanism. */
static void write_by_mechanism(firn_buf *b, const char *name, const char *type, const char *help,
                               const double *values)
{
    firn_metrics_header(b, name, type, help);
    for (int i = 0; i < MECH_COUNT; i++) {
        firn_label l = {"mechanism", MECH_NAMES[i]};
        firn_metrics_sample(b, name, &l, 1, values[i]);
    }
}

void disc_manager_metrics_write(disc_manager *m, firn_buf *b)
{
    double refreshes[MECH_COUNT], failures[MECH_COUNT], targets[MECH_COUNT] = {0};
    for (int i = 0; i < MECH_COUNT; i++) {
        refreshes[i] = (double)atomic_load(&m->refreshes[i]);
        failures[i] = (double)atomic_load(&m->failures[i]);
    }
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n_providers; i++)
        targets[m->providers[i]->mech] += (double)m->providers[i]->targets;
    pthread_mutex_unlock(&m->mu);
    write_by_mechanism(b, "firn_sd_refreshes_total", "counter",
                       "Refreshes of discovery providers, by mechanism.", refreshes);
    write_by_mechanism(b, "firn_sd_refresh_failures_total", "counter",
                       "Refreshes that failed (the last good targets stay), by mechanism.",
                       failures);
    firn_metrics_single(b, "firn_sd_updates_total", "counter",
                        "Target group updates handed to the scrape manager.",
                        (double)atomic_load(&m->updates));
    write_by_mechanism(b, "firn_sd_discovered_targets", "gauge",
                       "Targets the providers currently report, by mechanism.", targets);
}
