/* k8s.h -- Kubernetes discovery internals, shared by kubernetes.c (the API
 * client: list + watch, the object stores, the provider thread) and
 * k8s_roles.c (objects to target groups with Prometheus's
 * __meta_kubernetes_* labels).  Not part of discovery's public interface.
 *
 * Objects are the API server's JSON (Accept: application/json) as jansson
 * values, kept whole in the client's stores.  The role code only reads
 * them; every shape check is its own (a field of the wrong type reads as
 * absent), so any JSON the server sends builds a group or is refused
 * with a message, never a crash.
 */
#ifndef FIRN_DISCOVERY_K8S_H
#define FIRN_DISCOVERY_K8S_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "discovery/discovery.h"
#include "model/model.h"

typedef enum k8s_kind {
    K8S_POD,
    K8S_SERVICE,
    K8S_ENDPOINTS,
    K8S_ENDPOINTSLICE,
    K8S_NODE,
    K8S_INGRESS,
    K8S_NAMESPACE,
    K8S_KIND_COUNT
} k8s_kind;

typedef struct k8s_kind_info {
    const char *group_version;  /* URL prefix: "/api/v1", "/apis/discovery.k8s.io/v1" */
    const char *resource;       /* "pods", "endpointslices", ... */
    const char *kind;           /* "Pod", ... (an object's "kind") */
    bool namespaced;            /* false: nodes, namespaces */
} k8s_kind_info;

const k8s_kind_info *disc_k8s_kind_get(k8s_kind k);

/* The kind a config role lists and watches first ("pod" -> K8S_POD,
 * "endpointslice" -> K8S_ENDPOINTSLICE, ...); -1 for an unknown role. */
int disc_k8s_role_kind(const char *role);

typedef struct k8s_role_options {
    bool attach_node;       /* attach_metadata.node: pod, endpoints, endpointslice */
    bool attach_namespace;  /* attach_metadata.namespace */
} k8s_role_options;

/* The kinds (a bit mask of 1u << k8s_kind) a role watches beside its own:
 * endpoints also services and pods, pod with attach_node also nodes, ... */
unsigned disc_k8s_role_watches(k8s_kind role, const k8s_role_options *o);

/* What the client keeps, for the builders' look-ups.  get: the object of
 * kind named ns/name (ns "" for cluster-scoped kinds), or NULL.  each: fn
 * for every object of kind in namespace ns (NULL: all namespaces). */
typedef struct k8s_lookup {
    const json_t *(*get)(void *ctx, k8s_kind kind, const char *ns, const char *name);
    void (*each)(void *ctx, k8s_kind kind, const char *ns,
                 void (*fn)(void *fn_ctx, const json_t *obj), void *fn_ctx);
    void *ctx;
} k8s_lookup;

/* The source of the group of role's object ns/name, as Prometheus names
 * it: "pod/NS/NAME", "svc/NS/NAME", "endpoints/NS/NAME",
 * "endpointslice/NS/NAME", "node/NAME", "ingress/NS/NAME".  Truncated to
 * size; returns the length it needed. */
size_t disc_k8s_group_source(k8s_kind role, const char *ns, const char *name, char *out,
                        size_t size);

/* The group of obj, an object of role's kind, as Prometheus builds it
 * (labels sorted, strings in arena a; the group's source as
 * disc_k8s_group_source).  An object that gives no targets (a pod without IP)
 * gives a group with none, which tells the scrape side to drop the
 * source.  Refuses (FIRN_EINVAL, naming the object and field) an object
 * without metadata.name, or of the wrong shape where there is no sensible
 * reading. */
int disc_k8s_build_group(k8s_kind role, const json_t *obj, const k8s_lookup *lk,
                    const k8s_role_options *o, firn_arena *a, disc_group *out, firn_err *err);

/* Call fn for every object of role's kind whose group may change when obj
 * (of kind changed, role's own kind excluded) changes: for endpoints, a
 * service's endpoints of the same name and the endpoints whose addresses
 * point at a pod; for pods with attach_node, the pods on a node; ... */
void disc_k8s_affected(k8s_kind role, k8s_kind changed, const json_t *obj, const k8s_lookup *lk,
                  void (*fn)(void *fn_ctx, const json_t *obj), void *fn_ctx);

/* metadata.namespace and metadata.name of obj ("" when absent). */
const char *disc_k8s_namespace(const json_t *obj);
const char *disc_k8s_name(const json_t *obj);

#endif
