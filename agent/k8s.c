/* k8s.c -- Kubernetes names for the processes of this node: namespace,
 * pod, container, and the pod's labels for relabeling.
 *
 * The pods come from discovery/'s Kubernetes client (kubernetes.c: list +
 * watch, in-cluster service account or a kubeconfig, back-off) with the
 * pod role and fieldSelector=spec.nodeName=NODE, so the API server sends
 * this node's pods only.  Its groups are Prometheus's: one per pod
 * (source "pod/NS/NAME"; __meta_kubernetes_namespace, _pod_name, _pod_uid,
 * _pod_label_*), a target per container port or portless container
 * (__meta_kubernetes_pod_container_name, _container_id
 * "containerd://ID", "cri-o://ID", "docker://ID").  They are kept here by
 * source, replaced whole when a pod changes, and dropped when a group
 * comes without targets (the pod went, or has no IP yet: no process of it
 * runs).
 *
 * A process is matched by what its cgroup path says (procfs.c): the
 * container id names the container; a pod uid alone (a process in the
 * pod's cgroup but in none of its containers') names the pod.
 *
 * Threads: the client's thread sends; the sampling loop looks up; one
 * mutex guards the pods.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/internal.h"
#include "discovery/discovery.h"

#define META "__meta_kubernetes_"
#define POD_LABEL META "pod_label_"
#define K8S_MAX_PODS 4096        /* a node runs at most 110 by default */
#define K8S_MAX_CONTAINERS 64    /* per pod */

typedef struct k8s_container {
    char id[AGENT_CONTAINER_ID_LEN + 1];
    const char *name;
} k8s_container;

typedef struct k8s_pod {
    firn_arena *arena;           /* every string below */
    const char *source, *uid, *ns, *name;
    firn_label *labels;          /* POD_LABEL* of the group */
    size_t n_labels;
    k8s_container containers[K8S_MAX_CONTAINERS];
    size_t n_containers;
} k8s_pod;

struct agent_k8s {
    disc_sink sink;              /* first: the client calls back with it */
    pthread_mutex_t mu;
    k8s_pod *pods;               /* unordered; a node has ~100 */
    size_t n_pods, cap_pods;
    disc_k8s *disc;
    _Atomic uint64_t refresh_failures;   /* lists or watches that failed */
};

static const char *label_value(const firn_label *l, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0)
            return l[i].value;
    return "";
}

static void pod_free(k8s_pod *p)
{
    firn_arena_free(p->arena);
    memset(p, 0, sizeof *p);
}

/* The pod of group g (which has targets) into p. */
static void pod_build(const disc_group *g, k8s_pod *p)
{
    memset(p, 0, sizeof *p);
    p->arena = firn_arena_new(4096);
    firn_arena *a = p->arena;
    p->source = firn_arena_strdup(a, g->source);
    p->uid = firn_arena_strdup(a, label_value(g->labels, g->n_labels, META "pod_uid"));
    p->ns = firn_arena_strdup(a, label_value(g->labels, g->n_labels, META "namespace"));
    p->name = firn_arena_strdup(a, label_value(g->labels, g->n_labels, META "pod_name"));
    size_t n = 0;
    for (size_t i = 0; i < g->n_labels; i++)
        n += strncmp(g->labels[i].name, POD_LABEL, sizeof POD_LABEL - 1) == 0;
    p->labels = firn_arena_calloc(a, n ? n : 1, sizeof *p->labels);
    for (size_t i = 0; i < g->n_labels; i++) {
        const firn_label *l = &g->labels[i];
        if (strncmp(l->name, POD_LABEL, sizeof POD_LABEL - 1) != 0)
            continue;
        firn_label *c = &p->labels[p->n_labels++];
        c->name = firn_arena_strdup(a, l->name);
        c->value = firn_arena_strdup(a, l->value);
    }
    for (size_t t = 0; t < g->n_targets; t++) {   /* a container per port: once each */
        const disc_target *tg = &g->targets[t];
        k8s_container c;
        if (!agent_k8s_container_id(
                label_value(tg->labels, tg->n_labels, META "pod_container_id"), c.id))
            continue;   /* not started yet */
        bool seen = false;
        for (size_t i = 0; i < p->n_containers && !seen; i++)
            seen = strcmp(p->containers[i].id, c.id) == 0;
        if (seen || p->n_containers == K8S_MAX_CONTAINERS)
            continue;
        c.name = firn_arena_strdup(
            a, label_value(tg->labels, tg->n_labels, META "pod_container_name"));
        p->containers[p->n_containers++] = c;
    }
}

static void on_send(disc_sink *self, const disc_group *groups, size_t n)
{
    agent_k8s *k = (agent_k8s *)self;
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < n; i++) {
        const disc_group *g = &groups[i];
        for (size_t j = 0; j < k->n_pods; j++) {
            if (strcmp(k->pods[j].source, g->source) == 0) {
                pod_free(&k->pods[j]);
                k->pods[j] = k->pods[--k->n_pods];
                break;
            }
        }
        if (g->n_targets == 0)
            continue;
        if (k->n_pods == K8S_MAX_PODS) {
            firn_log(FIRN_LOG_WARN, "kubernetes", "a pod is left unnamed (more pods than a "
                     "node holds)", "source=%s pods=%zu", g->source, k->n_pods);
            continue;
        }
        k->pods = firn_grow(k->pods, k->n_pods, &k->cap_pods, sizeof *k->pods, 32);
        pod_build(g, &k->pods[k->n_pods++]);
    }
    pthread_mutex_unlock(&k->mu);
}

static void on_refreshed(disc_sink *self, bool ok)
{
    agent_k8s *k = (agent_k8s *)self;
    if (!ok)
        atomic_fetch_add(&k->refresh_failures, 1);
}

agent_k8s *agent_k8s_start(const char *node, const char *kubeconfig, firn_err *err)
{
    agent_k8s *k = firn_xcalloc(1, sizeof *k);
    k->sink = (disc_sink){.send = on_send, .refreshed = on_refreshed};
    pthread_mutex_init(&k->mu, NULL);
    char field[300];
    snprintf(field, sizeof field, "spec.nodeName=%s", node);
    config_k8s_selector sel = {.role = "pod", .field = field};
    config_kubernetes_sd cfg = {
        .role = "pod",
        .kubeconfig_file = (char *)kubeconfig,
        .selectors = &sel,
        .n_selectors = 1,
    };
    disc_k8s_options o = {.job = "firn-agent"};
    firn_err why = {0};
    k->disc = disc_k8s_start(&cfg, &o, &k->sink, &why);   /* copies cfg */
    if (!k->disc) {
        firn_errf(err, why.code, "Kubernetes names (%s): %s",
                  kubeconfig ? "--kubeconfig" : "--kubernetes", why.msg);
        pthread_mutex_destroy(&k->mu);
        free(k);
        return NULL;
    }
    return k;
}

void agent_k8s_stop(agent_k8s *k)
{
    if (!k)
        return;
    disc_k8s_stop(k->disc);   /* no more calls back after this */
    for (size_t i = 0; i < k->n_pods; i++)
        pod_free(&k->pods[i]);
    free(k->pods);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

size_t agent_k8s_labels(agent_k8s *k, const agent_cgroup_info *cg, firn_arena *arena,
                        firn_label *out, size_t cap)
{
    if (!cg->container_id[0] && !cg->pod_uid[0])
        return 0;
    size_t n = 0;
    pthread_mutex_lock(&k->mu);
    const k8s_pod *pod = NULL;
    const char *container = NULL;
    for (size_t i = 0; i < k->n_pods && !pod; i++) {
        const k8s_pod *p = &k->pods[i];
        for (size_t c = 0; cg->container_id[0] && c < p->n_containers && !pod; c++) {
            if (strcmp(p->containers[c].id, cg->container_id) == 0) {
                pod = p;
                container = p->containers[c].name;
            }
        }
        if (!pod && cg->pod_uid[0] && strcmp(p->uid, cg->pod_uid) == 0)
            pod = p;
    }
    /* copied: the pod may be replaced once the lock is let go */
    const firn_label own[] = {{"namespace", pod ? pod->ns : ""},
                              {"pod", pod ? pod->name : ""},
                              {"container", container ? container : ""}};
    for (size_t i = 0; pod && i < 3 && n < cap; i++) {
        if (!own[i].value[0])
            continue;
        out[n++] = (firn_label){own[i].name, firn_arena_strdup(arena, own[i].value)};
    }
    for (size_t i = 0; pod && i < pod->n_labels && n < cap; i++)
        out[n++] = (firn_label){firn_arena_strdup(arena, pod->labels[i].name),
                                firn_arena_strdup(arena, pod->labels[i].value)};
    pthread_mutex_unlock(&k->mu);
    return n;
}

size_t agent_k8s_pods(agent_k8s *k, uint64_t *refresh_failures)
{
    pthread_mutex_lock(&k->mu);
    size_t n = k->n_pods;
    pthread_mutex_unlock(&k->mu);
    *refresh_failures = atomic_load(&k->refresh_failures);
    return n;
}
