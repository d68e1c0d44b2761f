/* fuzz_k8s_roles.c -- libFuzzer target for the Kubernetes role code
 * (disc_k8s_build_group and disc_k8s_affected, discovery/k8s.h).  The input is JSON:
 * one object, or an array of them.  Every object is built as every role,
 * without and with attach_metadata (node and namespace), over a lookup
 * holding all the objects whatever their kind (so a pod is also the node,
 * the service and the namespace of that name, and can be the pod an
 * address points at); disc_k8s_affected runs for every role and changed kind.
 *
 * Whatever the input, nothing may crash or leak, a refusal must say why,
 * and a group must keep the contract: its source as disc_k8s_group_source,
 * every label set sorted by name with unique valid names and non-empty
 * UTF-8 values.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discovery/k8s.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct objs {
    json_t *const *v;
    size_t n;
} objs;

static const json_t *fz_get(void *ctx, k8s_kind kind, const char *ns, const char *name)
{
    const objs *o = ctx;
    bool namespaced = disc_k8s_kind_get(kind)->namespaced;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(disc_k8s_name(o->v[i]), name) == 0 &&
            (!namespaced || strcmp(disc_k8s_namespace(o->v[i]), ns) == 0))
            return o->v[i];
    return NULL;
}

static void fz_each(void *ctx, k8s_kind kind, const char *ns,
                    void (*fn)(void *fn_ctx, const json_t *obj), void *fn_ctx)
{
    (void)kind;
    const objs *o = ctx;
    for (size_t i = 0; i < o->n; i++)
        if (!ns || strcmp(disc_k8s_namespace(o->v[i]), ns) == 0)
            fn(fn_ctx, o->v[i]);
}

static void count_hit(void *ctx, const json_t *obj)
{
    if (!json_is_object(obj))
        abort();
    (*(size_t *)ctx)++;
}

static void check_labels(const firn_label *l, size_t n)
{
    if (n && !l)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (!firn_label_name_valid(l[i].name) || !l[i].value || !l[i].value[0] ||
            !firn_utf8_valid(l[i].value, strlen(l[i].value)))
            abort();
        if (i > 0 && strcmp(l[i - 1].name, l[i].name) >= 0)
            abort();
    }
}

static void check_group(k8s_kind role, const json_t *obj, const disc_group *g)
{
    char want[512];
    size_t need = disc_k8s_group_source(role, disc_k8s_namespace(obj), disc_k8s_name(obj), want, sizeof want);
    if (!g->source || (need < sizeof want && strcmp(g->source, want) != 0) ||
        strlen(g->source) != need)
        abort();
    check_labels(g->labels, g->n_labels);
    if (g->n_targets && !g->targets)
        abort();
    for (size_t t = 0; t < g->n_targets; t++)
        check_labels(g->targets[t].labels, g->targets[t].n_labels);
}

static const k8s_kind roles[] = {K8S_POD,  K8S_SERVICE, K8S_ENDPOINTS, K8S_ENDPOINTSLICE,
                                 K8S_NODE, K8S_INGRESS};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *root = json_loadb((const char *)data, size, JSON_DECODE_ANY, &je);
    if (!root)
        return 0;
    json_t *one[1] = {root};
    objs o = {one, 1};
    json_t **items = NULL;
    if (json_is_array(root)) {
        o.n = json_array_size(root);
        items = calloc(o.n + 1, sizeof *items);
        if (!items)
            abort();
        for (size_t i = 0; i < o.n; i++)
            items[i] = json_array_get(root, i);
        o.v = items;
    }
    k8s_lookup lk = {fz_get, fz_each, &o};
    static const k8s_role_options opts[] = {{false, false}, {true, true}};
    firn_arena *a = firn_arena_new(0);
    if (!a)
        abort();
    for (size_t i = 0; i < o.n; i++) {
        const json_t *obj = o.v[i];
        for (size_t r = 0; r < sizeof roles / sizeof *roles; r++) {
            for (size_t p = 0; p < sizeof opts / sizeof *opts; p++) {
                disc_group g;
                firn_err err = {0};
                if (disc_k8s_build_group(roles[r], obj, &lk, &opts[p], a, &g, &err) < 0) {
                    if (err.msg[0] == '\0' || g.source || g.n_targets || g.n_labels)
                        abort();
                    continue;
                }
                check_group(roles[r], obj, &g);
            }
            size_t hits = 0;
            for (int changed = 0; changed < K8S_KIND_COUNT; changed++)
                disc_k8s_affected(roles[r], (k8s_kind)changed, obj, &lk, count_hit, &hits);
            if (hits > 64 * (o.n + 1))
                abort();
        }
    }
    firn_arena_free(a);
    free(items);
    json_decref(root);
    return 0;
}
