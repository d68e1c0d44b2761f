/* k8s_roles.c -- Kubernetes objects to target groups, with the
 * __meta_kubernetes_* labels Prometheus's discovery/kubernetes gives them
 * (pod.go, service.go, endpoints.go, endpointslice.go, node.go, ingress.go
 * and the metadata helpers of kubernetes.go), so that relabel rules
 * written for Prometheus work here unchanged.
 *
 * The objects are the API server's JSON, read through the j* readers
 * below: a field of the wrong type reads as absent, and an absent field
 * reads as Go's zero value ("" or 0), as it would in the Go structs
 * Prometheus decodes into.  Array elements of the wrong type are skipped.
 *
 * Label sets are built as Go builds its model.LabelSet maps: a later
 * assignment to a name replaces an earlier one (lset keeps every put with
 * its sequence number; ls_finish sorts by name and keeps the last).  An
 * empty value is then dropped: Prometheus's labels.Builder deletes a label
 * set to "", so an empty label never reaches relabeling or the scrape.
 * Where Go iterates a map (labels, annotations, seen pods), the order here
 * is the JSON's, which only matters when two keys sanitize to one name.
 *
 * Memory: names and values live in the caller's arena (or are string
 * literals); the scratch arrays (label sets, the target list, the seen-pod
 * index) are malloc'd per build and freed before returning.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discovery/k8s.h"

#define META "__meta_kubernetes_"
#define SERVICE_NAME_LABEL "kubernetes.io/service-name"

static const k8s_kind_info kind_infos[K8S_KIND_COUNT] = {
    [K8S_POD] = {"/api/v1", "pods", "Pod", true},
    [K8S_SERVICE] = {"/api/v1", "services", "Service", true},
    [K8S_ENDPOINTS] = {"/api/v1", "endpoints", "Endpoints", true},
    [K8S_ENDPOINTSLICE] = {"/apis/discovery.k8s.io/v1", "endpointslices", "EndpointSlice", true},
    [K8S_NODE] = {"/api/v1", "nodes", "Node", false},
    [K8S_INGRESS] = {"/apis/networking.k8s.io/v1", "ingresses", "Ingress", true},
    [K8S_NAMESPACE] = {"/api/v1", "namespaces", "Namespace", false},
};

const k8s_kind_info *disc_k8s_kind_get(k8s_kind k)
{
    return (unsigned)k < K8S_KIND_COUNT ? &kind_infos[k] : NULL;
}

static const struct {
    const char *role;
    k8s_kind kind;
} roles[] = {
    {"pod", K8S_POD},           {"service", K8S_SERVICE}, {"endpoints", K8S_ENDPOINTS},
    {"endpointslice", K8S_ENDPOINTSLICE}, {"node", K8S_NODE}, {"ingress", K8S_INGRESS},
};

int disc_k8s_role_kind(const char *role)
{
    if (!role)
        return -1;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(role, roles[i].role) == 0)
            return (int)roles[i].kind;
    return -1;
}

static bool is_role(k8s_kind k)
{
    return k == K8S_POD || k == K8S_SERVICE || k == K8S_ENDPOINTS || k == K8S_ENDPOINTSLICE ||
           k == K8S_NODE || k == K8S_INGRESS;
}

unsigned disc_k8s_role_watches(k8s_kind role, const k8s_role_options *o)
{
    bool node = o && o->attach_node, ns = o && o->attach_namespace;
    unsigned m = 0;
    switch (role) {
    case K8S_ENDPOINTS:
    case K8S_ENDPOINTSLICE:
        m |= 1u << K8S_SERVICE | 1u << K8S_POD;
        /* fall through */
    case K8S_POD:
        if (node)
            m |= 1u << K8S_NODE;
        /* fall through */
    case K8S_SERVICE:
    case K8S_INGRESS:
        if (ns)
            m |= 1u << K8S_NAMESPACE;
        break;
    default:
        break;
    }
    return m;
}

size_t disc_k8s_group_source(k8s_kind role, const char *ns, const char *name, char *out, size_t size)
{
    static const char *const prefix[K8S_KIND_COUNT] = {
        [K8S_POD] = "pod",           [K8S_SERVICE] = "svc",  [K8S_ENDPOINTS] = "endpoints",
        [K8S_ENDPOINTSLICE] = "endpointslice", [K8S_NODE] = "node", [K8S_INGRESS] = "ingress",
        [K8S_NAMESPACE] = "namespace",
    };
    if (size)
        out[0] = '\0';
    if ((unsigned)role >= K8S_KIND_COUNT)
        return 0;
    ns = ns ? ns : "";
    name = name ? name : "";
    int n = kind_infos[role].namespaced ? snprintf(out, size, "%s/%s/%s", prefix[role], ns, name)
                                        : snprintf(out, size, "%s/%s", prefix[role], name);
    return n < 0 ? 0 : (size_t)n;
}

/* ---- JSON readers: a value of the wrong type reads as absent ------------------- */

static json_t *jv(const json_t *o, const char *key)
{
    return json_is_object(o) ? json_object_get(o, key) : NULL;
}

static const json_t *jobj(const json_t *o, const char *key)
{
    const json_t *v = jv(o, key);
    return json_is_object(v) ? v : NULL;
}

static const json_t *jarr(const json_t *o, const char *key)
{
    const json_t *v = jv(o, key);
    return json_is_array(v) ? v : NULL;
}

static size_t jlen(const json_t *arr)
{
    return json_is_array(arr) ? json_array_size(arr) : 0;
}

/* Element i of arr when it is an object, else NULL. */
static const json_t *jobj_at(const json_t *arr, size_t i)
{
    const json_t *v = json_array_get(arr, i);
    return json_is_object(v) ? v : NULL;
}

static const char *jstr(const json_t *o, const char *key)
{
    const json_t *v = jv(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static const char *jstr0(const json_t *o, const char *key)
{
    const char *s = jstr(o, key);
    return s ? s : "";
}

/* An int32 field (Go's int32: a JSON integer in range), else false. */
static bool jint32(const json_t *o, const char *key, int32_t *out)
{
    const json_t *v = jv(o, key);
    if (!json_is_integer(v))
        return false;
    json_int_t i = json_integer_value(v);
    if (i < INT32_MIN || i > INT32_MAX)
        return false;
    *out = (int32_t)i;
    return true;
}

static int32_t jint32_0(const json_t *o, const char *key)
{
    int32_t v = 0;
    return jint32(o, key, &v) ? v : 0;
}

/* A *bool field: 1, 0, or -1 when absent. */
static int jbool(const json_t *o, const char *key)
{
    const json_t *v = jv(o, key);
    return json_is_true(v) ? 1 : json_is_false(v) ? 0 : -1;
}

const char *disc_k8s_namespace(const json_t *obj)
{
    return jstr0(jobj(obj, "metadata"), "namespace");
}

const char *disc_k8s_name(const json_t *obj)
{
    return jstr0(jobj(obj, "metadata"), "name");
}

/* ---- the build: label sets and targets ------------------------------------------ */

typedef struct lent {
    firn_label l;
    size_t seq;
} lent;

typedef struct lset {
    lent *v;
    size_t n, cap;
} lset;

typedef struct bctx {
    firn_arena *a;
    const k8s_lookup *lk;
    bool attach_node, attach_namespace;
    lset group, target, scratch;
    disc_target *targets;
    size_t n_targets, cap_targets;
} bctx;

static const json_t *lk_get(const bctx *b, k8s_kind kind, const char *ns, const char *name)
{
    if (!b->lk || !b->lk->get)
        return NULL;
    const json_t *o = b->lk->get(b->lk->ctx, kind, ns, name);
    return json_is_object(o) ? o : NULL;
}

static char *astr(bctx *b, const char *s)
{
    return firn_arena_strndup(b->a, s, strlen(s));
}

static char *afmt(bctx *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *afmt(bctx *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert(n >= 0);   /* only %s and integers are formatted here */
    char *p = firn_arena_alloc(b->a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* prefix + key with every character outside [a-zA-Z0-9_] made "_", as
 * Prometheus's strutil.SanitizeLabelName: one "_" per rune (a multi-byte
 * UTF-8 character is one), one per byte of invalid UTF-8. */
static char *asan(bctx *b, const char *prefix, const char *key)
{
    size_t pl = strlen(prefix), kl = strlen(key);
    char *p = firn_arena_alloc(b->a, pl + kl + 1);
    memcpy(p, prefix, pl);
    size_t o = pl;
    for (size_t i = 0; i < kl;) {
        unsigned char c = (unsigned char)key[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_') {
            p[o++] = (char)c;
            i++;
            continue;
        }
        uint32_t rune;
        size_t n = firn_utf8_decode((const unsigned char *)key + i, kl - i, &rune);
        p[o++] = '_';
        i += n ? n : 1;
    }
    p[o] = '\0';
    return p;
}

/* ASCII lowercase (Go's strings.ToLower on the ASCII the API sends). */
static char *alower(bctx *b, const char *s)
{
    char *p = astr(b, s);
    for (char *q = p; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q - 'A' + 'a');
    return p;
}

static char *fmt_uint_port(bctx *b, int32_t port)
{
    /* strconv.FormatUint(uint64(port)): a negative int32 sign-extends. */
    return afmt(b, "%" PRIu64, (uint64_t)(int64_t)port);
}

/* Go's net.JoinHostPort. */
static char *join_host_port(bctx *b, const char *host, const char *port)
{
    assert(host && port);   /* from jstr0 or the arena: never NULL */
    return strchr(host, ':') ? afmt(b, "[%s]:%s", host, port) : afmt(b, "%s:%s", host, port);
}

/* Append name=value; both must outlive the group (literals or arena). */
static void put_owned(lset *ls, const char *name, const char *value)
{
    assert(name && value);
    ls->v = firn_grow(ls->v, ls->n, &ls->cap, sizeof *ls->v, 32);
    ls->v[ls->n] = (lent){{name, value}, ls->n};
    ls->n++;
}

/* Append name=value with value copied; a NULL value is an absent field. */
static void put(bctx *b, lset *ls, const char *name, const char *value)
{
    if (value)
        put_owned(ls, name, astr(b, value));
}

static void put_all(lset *ls, const firn_label *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put_owned(ls, l[i].name, l[i].value);
}

static int lent_cmp(const void *x, const void *y)
{
    const lent *p = x, *q = y;
    int c = strcmp(p->l.name, q->l.name);
    if (c)
        return c;
    return p->seq < q->seq ? -1 : p->seq > q->seq;
}

/* The set, sorted by name, the last put of each name kept, empty values
 * dropped, in the arena; ls is emptied for reuse. */
static firn_label *ls_finish(bctx *b, lset *ls, size_t *n_out)
{
    *n_out = 0;
    firn_sort(ls->v, ls->n, sizeof *ls->v, lent_cmp);
    firn_label *out = firn_arena_calloc(b->a, ls->n + 1, sizeof *out);
    size_t k = 0;
    for (size_t i = 0; i < ls->n; i++) {
        if (i + 1 < ls->n && strcmp(ls->v[i].l.name, ls->v[i + 1].l.name) == 0)
            continue;
        if (ls->v[i].l.value[0])
            out[k++] = ls->v[i].l;
    }
    ls->n = 0;
    *n_out = k;
    return out;
}

/* The target built in b->target is complete: add it to the group. */
static void end_target(bctx *b)
{
    size_t n;
    firn_label *l = ls_finish(b, &b->target, &n);
    b->targets = firn_grow(b->targets, b->n_targets, &b->cap_targets, sizeof *b->targets, 8);
    b->targets[b->n_targets++] = (disc_target){l, n};
}

/* ---- object metadata: addObjectMetaLabels and friends ---------------------------- */

typedef struct meta_names {
    const char *name, *label, *labelpresent, *annotation, *annotationpresent;
} meta_names;

#define META_NAMES(r)                                                                     \
    {META r "_name", META r "_label_", META r "_labelpresent_", META r "_annotation_",    \
     META r "_annotationpresent_"}

static const meta_names meta_pod = META_NAMES("pod");
static const meta_names meta_service = META_NAMES("service");
static const meta_names meta_endpoints = META_NAMES("endpoints");
static const meta_names meta_endpointslice = META_NAMES("endpointslice");
static const meta_names meta_node = META_NAMES("node");
static const meta_names meta_ingress = META_NAMES("ingress");
/* attach_metadata.namespace: the namespace's labels and annotations, not
 * its name (that is __meta_kubernetes_namespace already). */
static const meta_names meta_namespace = {NULL, META "namespace_label_",
                                          META "namespace_labelpresent_",
                                          META "namespace_annotation_",
                                          META "namespace_annotationpresent_"};

/* prefix<key>=value and present<key>=true for every string value of map. */
static void put_map(bctx *b, lset *ls, const json_t *map, const char *prefix,
                    const char *present)
{
    if (!json_is_object(map))
        return;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)map, key, v) {
        if (!json_is_string(v))
            continue;
        char *san = asan(b, "", key);
        put_owned(ls, afmt(b, "%s%s", prefix, san), astr(b, json_string_value(v)));
        put_owned(ls, afmt(b, "%s%s", present, san), "true");
    }
}

static void put_meta(bctx *b, lset *ls, const meta_names *m, const json_t *obj)
{
    const json_t *meta = jobj(obj, "metadata");
    if (m->name)
        put(b, ls, m->name, jstr0(meta, "name"));
    put_map(b, ls, jobj(meta, "labels"), m->label, m->labelpresent);
    put_map(b, ls, jobj(meta, "annotations"), m->annotation, m->annotationpresent);
}

/* attach_metadata.node: the node's name, labels and annotations. */
static void put_node_meta(bctx *b, lset *ls, const char *node_name)
{
    const json_t *node = lk_get(b, K8S_NODE, "", node_name);
    if (node)
        put_meta(b, ls, &meta_node, node);
}

static void put_namespace_meta(bctx *b, lset *ls, const char *ns)
{
    const json_t *obj = lk_get(b, K8S_NAMESPACE, "", ns);
    if (obj)
        put_meta(b, ls, &meta_namespace, obj);
}

/* ---- addresses ------------------------------------------------------------------ */

/* 4 or 6 as Go's net.ParseIP would have it (an IPv4-mapped IPv6 address is
 * IPv4: To4 is not nil), 0 when s is no IP address. */
static int ip_family(const char *s, unsigned char ip6[16])
{
    unsigned char v4[4];
    if (inet_pton(AF_INET, s, v4) == 1)
        return 4;
    if (inet_pton(AF_INET6, s, ip6) != 1)
        return 0;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(ip6, mapped, sizeof mapped) == 0 ? 4 : 6;
}

/* An IPv6 address as Go prints it (RFC 5952: lowercase hex, no leading
 * zeros, the leftmost longest run of two or more zero groups as "::"). */
static void ip6_string(const unsigned char ip[16], char out[48])
{
    unsigned g[8];
    for (int i = 0; i < 8; i++)
        g[i] = (unsigned)ip[2 * i] << 8 | ip[2 * i + 1];
    int zs = -1, ze = -1;
    for (int i = 0; i < 8; i++) {
        int j = i;
        while (j < 8 && g[j] == 0)
            j++;
        if (j - i >= 2 && j - i > ze - zs) {
            zs = i;
            ze = j;
        }
    }
    size_t o = 0;
    for (int i = 0; i < 8; i++) {
        if (i == zs) {
            out[o++] = ':';
            out[o++] = ':';
            i = ze;
            if (i >= 8)
                break;
        } else if (i > 0) {
            out[o++] = ':';
        }
        o += (size_t)snprintf(out + o, 48 - o, "%x", g[i]);
    }
    out[o] = '\0';
}

/* ---- pods ------------------------------------------------------------------------ */

/* The ready label: the lowercased status of the first Ready condition,
 * "unknown" without one. */
static const char *pod_ready(bctx *b, const json_t *status)
{
    const json_t *conds = jarr(status, "conditions");
    for (size_t i = 0; i < jlen(conds); i++) {
        const json_t *c = jobj_at(conds, i);
        if (c && strcmp(jstr0(c, "type"), "Ready") == 0)
            return alower(b, jstr0(c, "status"));
    }
    return "unknown";
}

/* podLabels: what a pod puts on its group (pod role) or its targets
 * (endpoints, endpointslice). */
static void put_pod_labels(bctx *b, lset *ls, const json_t *pod)
{
    const json_t *meta = jobj(pod, "metadata"), *spec = jobj(pod, "spec"),
                 *status = jobj(pod, "status");
    put(b, ls, META "pod_ip", jstr0(status, "podIP"));
    put_owned(ls, META "pod_ready", pod_ready(b, status));
    put(b, ls, META "pod_phase", jstr0(status, "phase"));
    put(b, ls, META "pod_node_name", jstr0(spec, "nodeName"));
    put(b, ls, META "pod_host_ip", jstr0(status, "hostIP"));
    put(b, ls, META "pod_uid", jstr0(meta, "uid"));

    /* The first IPv4 and the first IPv6 address of status.podIPs. */
    const json_t *ips = jarr(status, "podIPs");
    bool v4 = false, v6 = false;
    for (size_t i = 0; i < jlen(ips) && !(v4 && v6); i++) {
        const char *ip = jstr0(jobj_at(ips, i), "ip");
        unsigned char raw[16];
        int fam = ip[0] ? ip_family(ip, raw) : 0;
        if (fam == 4 && !v4) {
            put(b, ls, META "pod_ipv4", ip);
            v4 = true;
        } else if (fam == 6 && !v6) {
            put(b, ls, META "pod_ipv6", ip);
            v6 = true;
        }
    }

    put_meta(b, ls, &meta_pod, pod);

    const json_t *owners = jarr(meta, "ownerReferences");
    for (size_t i = 0; i < jlen(owners); i++) {
        const json_t *ref = jobj_at(owners, i);
        if (!ref || jbool(ref, "controller") != 1)
            continue;
        if (jstr0(ref, "kind")[0])
            put(b, ls, META "pod_controller_kind", jstr0(ref, "kind"));
        if (jstr0(ref, "name")[0])
            put(b, ls, META "pod_controller_name", jstr0(ref, "name"));
        break;
    }
}

/* spec.containers followed by spec.initContainers, as one list. */
typedef struct containers {
    const json_t *main, *init;
    size_t n_main, n;
} containers;

static containers pod_containers(const json_t *pod)
{
    const json_t *spec = jobj(pod, "spec");
    containers c = {jarr(spec, "containers"), jarr(spec, "initContainers"), 0, 0};
    c.n_main = jlen(c.main);
    c.n = c.n_main + jlen(c.init);
    return c;
}

static const json_t *container_at(const containers *c, size_t i, bool *is_init)
{
    *is_init = i >= c->n_main;
    return *is_init ? jobj_at(c->init, i - c->n_main) : jobj_at(c->main, i);
}

static size_t count_objects(const json_t *arr)
{
    size_t n = 0;
    for (size_t i = 0; i < jlen(arr); i++)
        n += jobj_at(arr, i) != NULL;
    return n;
}

static const char *container_id(const json_t *status, bool is_init, const char *name)
{
    const json_t *st = jarr(status, is_init ? "initContainerStatuses" : "containerStatuses");
    for (size_t i = 0; i < jlen(st); i++) {
        const json_t *s = jobj_at(st, i);
        if (s && strcmp(jstr0(s, "name"), name) == 0)
            return jstr0(s, "containerID");
    }
    return "";
}

static void build_pod(bctx *b, const json_t *pod)
{
    const json_t *spec = jobj(pod, "spec"), *status = jobj(pod, "status");
    const char *ip = jstr0(status, "podIP");
    if (!ip[0])   /* starting or evicted: no targets, no labels */
        return;
    put_pod_labels(b, &b->group, pod);
    put(b, &b->group, META "namespace", disc_k8s_namespace(pod));
    if (b->attach_node)
        put_node_meta(b, &b->group, jstr0(spec, "nodeName"));
    if (b->attach_namespace)
        put_namespace_meta(b, &b->group, disc_k8s_namespace(pod));

    /* A container without ports gives the pod's IP alone (an IPv6 one in
     * brackets, RFC 3986, in Go's canonical form); the user adds a port. */
    const char *bare = ip;
    unsigned char raw[16];
    if (ip_family(ip, raw) == 6) {
        char s[48];
        ip6_string(raw, s);
        bare = afmt(b, "[%s]", s);
    }

    containers cs = pod_containers(pod);
    for (size_t i = 0; i < cs.n; i++) {
        bool init;
        const json_t *c = container_at(&cs, i, &init);
        if (!c)
            continue;
        const char *cname = jstr0(c, "name");
        const char *cid = container_id(status, init, cname);
        const char *init_s = init ? "true" : "false";
        const json_t *ports = jarr(c, "ports");
        if (count_objects(ports) == 0) {
            put(b, &b->target, "__address__", bare);
            put(b, &b->target, META "pod_container_name", cname);
            put(b, &b->target, META "pod_container_id", cid);
            put(b, &b->target, META "pod_container_image", jstr0(c, "image"));
            put_owned(&b->target, META "pod_container_init", init_s);
            end_target(b);
            continue;
        }
        for (size_t p = 0; p < jlen(ports); p++) {
            const json_t *port = jobj_at(ports, p);
            if (!port)
                continue;
            char *num = fmt_uint_port(b, jint32_0(port, "containerPort"));
            put_owned(&b->target, "__address__", join_host_port(b, ip, num));
            put(b, &b->target, META "pod_container_name", cname);
            put(b, &b->target, META "pod_container_id", cid);
            put(b, &b->target, META "pod_container_image", jstr0(c, "image"));
            put_owned(&b->target, META "pod_container_port_number", num);
            put(b, &b->target, META "pod_container_port_name", jstr0(port, "name"));
            put(b, &b->target, META "pod_container_port_protocol", jstr0(port, "protocol"));
            put_owned(&b->target, META "pod_container_init", init_s);
            end_target(b);
        }
    }
}

/* ---- services ---------------------------------------------------------------------- */

/* serviceLabels: on a service's group, and on the group of the endpoints
 * or endpoint slices of a service. */
static void put_service_labels(bctx *b, lset *ls, const json_t *svc)
{
    put(b, ls, META "namespace", disc_k8s_namespace(svc));
    put_meta(b, ls, &meta_service, svc);
}

/* The load balancer's IPs from status.loadBalancer.ingress, comma-separated
 * (dual stack), else the deprecated spec.loadBalancerIP. */
static const char *loadbalancer_ip(bctx *b, const json_t *svc)
{
    const json_t *ing = jarr(jobj(jobj(svc, "status"), "loadBalancer"), "ingress");
    size_t len = 0;
    for (size_t i = 0; i < jlen(ing); i++) {
        const char *ip = jstr0(jobj_at(ing, i), "ip");
        if (ip[0])
            len += strlen(ip) + 1;
    }
    if (len == 0)
        return jstr0(jobj(svc, "spec"), "loadBalancerIP");
    char *s = firn_arena_alloc(b->a, len);
    size_t o = 0;
    for (size_t i = 0; i < jlen(ing); i++) {
        const char *ip = jstr0(jobj_at(ing, i), "ip");
        size_t l = strlen(ip);
        if (!l)
            continue;
        if (o)
            s[o++] = ',';
        memcpy(s + o, ip, l);
        o += l;
    }
    s[o] = '\0';
    return s;
}

static void build_service(bctx *b, const json_t *svc)
{
    const json_t *spec = jobj(svc, "spec");
    put_service_labels(b, &b->group, svc);
    if (b->attach_namespace)
        put_namespace_meta(b, &b->group, disc_k8s_namespace(svc));

    const char *type = jstr0(spec, "type");
    const char *host = afmt(b, "%s.%s.svc", disc_k8s_name(svc), disc_k8s_namespace(svc));
    const json_t *ports = jarr(spec, "ports");
    for (size_t i = 0; i < jlen(ports); i++) {
        const json_t *port = jobj_at(ports, i);
        if (!port)
            continue;
        char *num = afmt(b, "%" PRId32, jint32_0(port, "port"));
        put_owned(&b->target, "__address__", join_host_port(b, host, num));
        put(b, &b->target, META "service_port_name", jstr0(port, "name"));
        put_owned(&b->target, META "service_port_number", num);
        put(b, &b->target, META "service_port_protocol", jstr0(port, "protocol"));
        put(b, &b->target, META "service_type", type);
        if (strcmp(type, "ExternalName") == 0)
            put(b, &b->target, META "service_external_name", jstr0(spec, "externalName"));
        else
            put(b, &b->target, META "service_cluster_ip", jstr0(spec, "clusterIP"));
        if (strcmp(type, "LoadBalancer") == 0)
            put(b, &b->target, META "service_loadbalancer_ip", loadbalancer_ip(b, svc));
        end_target(b);
    }
}

/* ---- endpoints and endpoint slices ----------------------------------------------------- */

#define PORT_NONE INT64_MIN   /* an endpoint slice port without a number */

/* A pod some address points at, with the ports its targets covered. */
typedef struct seen_pod {
    const json_t *pod;
    firn_label *labels;   /* podLabels, finished */
    size_t n_labels;
    int64_t *ports;
    size_t n_ports, cap_ports;
} seen_pod;

/* The pods of one build in the order first seen; looked up by the
 * object's address (one object per pod in the client's store). */
typedef struct seen_pods {
    seen_pod *v;
    size_t n, cap;
    firn_u64map index;
    bool index_ok;
} seen_pods;

static void seen_free(seen_pods *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].ports);
    free(s->v);
    if (s->index_ok)
        firn_u64map_destroy(&s->index);
}

static seen_pod *seen_get(bctx *b, seen_pods *s, const json_t *pod)
{
    if (!s->index_ok) {
        firn_u64map_init(&s->index, 16);
        s->index_ok = true;
    }
    uint64_t key = (uint64_t)(uintptr_t)pod;
    uint32_t idx;
    if (firn_u64map_get(&s->index, key, &idx))
        return &s->v[idx];
    assert(s->n < UINT32_MAX);   /* pods of one object's addresses, already in memory */
    s->v = firn_grow(s->v, s->n, &s->cap, sizeof *s->v, 8);
    firn_u64map_put(&s->index, key, (uint32_t)s->n, NULL);
    seen_pod *sp = &s->v[s->n++];
    *sp = (seen_pod){pod, NULL, 0, NULL, 0, 0};
    put_pod_labels(b, &b->scratch, pod);
    sp->labels = ls_finish(b, &b->scratch, &sp->n_labels);
    return sp;
}

static void seen_add_port(seen_pod *sp, int64_t port)
{
    sp->ports = firn_grow(sp->ports, sp->n_ports, &sp->cap_ports, sizeof *sp->ports, 4);
    sp->ports[sp->n_ports++] = port;
}

static bool seen_covers(const seen_pod *sp, int32_t port)
{
    for (size_t i = 0; i < sp->n_ports; i++)
        if (sp->ports[i] != PORT_NONE && sp->ports[i] == port)
            return true;
    return false;
}

/* The pod an address's targetRef names, when it is a pod in the store. */
static const json_t *resolve_pod(const bctx *b, const json_t *ref)
{
    if (!ref || strcmp(jstr0(ref, "kind"), "Pod") != 0)
        return NULL;
    return lk_get(b, K8S_POD, jstr0(ref, "namespace"), jstr0(ref, "name"));
}

/* The container port labels of the pod's container port equal to port
 * (the last container with one wins, as in Prometheus).  protocol is the
 * endpoint port's protocol (endpoints), or NULL for the container port's
 * own (endpoint slices). */
static void put_matching_container(bctx *b, const json_t *pod, int32_t port, const char *protocol)
{
    containers cs = pod_containers(pod);
    for (size_t i = 0; i < cs.n; i++) {
        bool init;
        const json_t *c = container_at(&cs, i, &init);
        const json_t *cports = jarr(c, "ports");
        for (size_t p = 0; p < jlen(cports); p++) {
            const json_t *cport = jobj_at(cports, p);
            if (!cport || jint32_0(cport, "containerPort") != port)
                continue;
            put(b, &b->target, META "pod_container_name", jstr0(c, "name"));
            put(b, &b->target, META "pod_container_image", jstr0(c, "image"));
            put(b, &b->target, META "pod_container_port_name", jstr0(cport, "name"));
            put_owned(&b->target, META "pod_container_port_number", fmt_uint_port(b, port));
            put(b, &b->target, META "pod_container_port_protocol",
                protocol ? protocol : jstr0(cport, "protocol"));
            put_owned(&b->target, META "pod_container_init", init ? "true" : "false");
            break;
        }
    }
}

/* Targets for the container ports of the seen pods that no endpoint port
 * covered, so that a pod's other ports can be scraped too. */
static void put_uncovered_ports(bctx *b, const seen_pods *s)
{
    for (size_t k = 0; k < s->n; k++) {
        const seen_pod *sp = &s->v[k];
        const char *ip = jstr0(jobj(sp->pod, "status"), "podIP");
        if (!ip[0])
            continue;
        containers cs = pod_containers(sp->pod);
        for (size_t i = 0; i < cs.n; i++) {
            bool init;
            const json_t *c = container_at(&cs, i, &init);
            const json_t *cports = jarr(c, "ports");
            for (size_t p = 0; p < jlen(cports); p++) {
                const json_t *cport = jobj_at(cports, p);
                if (!cport)
                    continue;
                int32_t port = jint32_0(cport, "containerPort");
                if (seen_covers(sp, port))
                    continue;
                char *num = fmt_uint_port(b, port);
                put_owned(&b->target, "__address__", join_host_port(b, ip, num));
                put(b, &b->target, META "pod_container_name", jstr0(c, "name"));
                put(b, &b->target, META "pod_container_image", jstr0(c, "image"));
                put(b, &b->target, META "pod_container_port_name", jstr0(cport, "name"));
                put_owned(&b->target, META "pod_container_port_number", num);
                put(b, &b->target, META "pod_container_port_protocol",
                    jstr0(cport, "protocol"));
                put_owned(&b->target, META "pod_container_init", init ? "true" : "false");
                put_all(&b->target, sp->labels, sp->n_labels);
                end_target(b);
            }
        }
    }
}

static void endpoints_add(bctx *b, seen_pods *seen, const json_t *addr, const json_t *port,
                          const char *ready)
{
    int32_t num = jint32_0(port, "port");
    put_owned(&b->target, "__address__",
              join_host_port(b, jstr0(addr, "ip"), fmt_uint_port(b, num)));
    put(b, &b->target, META "endpoint_port_name", jstr0(port, "name"));
    put(b, &b->target, META "endpoint_port_protocol", jstr0(port, "protocol"));
    put_owned(&b->target, META "endpoint_ready", ready);

    const json_t *ref = jobj(addr, "targetRef");
    if (ref) {
        put(b, &b->target, META "endpoint_address_target_kind", jstr0(ref, "kind"));
        put(b, &b->target, META "endpoint_address_target_name", jstr0(ref, "name"));
    }
    const char *node_name = jstr(addr, "nodeName");
    if (node_name)
        put(b, &b->target, META "endpoint_node_name", node_name);
    if (jstr0(addr, "hostname")[0])
        put(b, &b->target, META "endpoint_hostname", jstr0(addr, "hostname"));
    if (b->attach_node) {
        if (node_name)
            put_node_meta(b, &b->target, node_name);
        else if (ref && strcmp(jstr0(ref, "kind"), "Node") == 0)
            put_node_meta(b, &b->target, jstr0(ref, "name"));
    }

    const json_t *pod = resolve_pod(b, ref);
    seen_pod *sp = pod ? seen_get(b, seen, pod) : NULL;
    if (sp) {
        put_all(&b->target, sp->labels, sp->n_labels);
        put_matching_container(b, pod, num, jstr0(port, "protocol"));
        seen_add_port(sp, num);
    }
    end_target(b);
}

static void build_endpoints(bctx *b, const json_t *eps, seen_pods *seen)
{
    const char *ns = disc_k8s_namespace(eps);
    put(b, &b->group, META "namespace", ns);
    const json_t *svc = lk_get(b, K8S_SERVICE, ns, disc_k8s_name(eps));
    if (svc)
        put_service_labels(b, &b->group, svc);
    put_meta(b, &b->group, &meta_endpoints, eps);
    if (b->attach_namespace)
        put_namespace_meta(b, &b->group, ns);

    const json_t *subsets = jarr(eps, "subsets");
    for (size_t s = 0; s < jlen(subsets); s++) {
        const json_t *ss = jobj_at(subsets, s);
        const json_t *ports = jarr(ss, "ports"), *ready = jarr(ss, "addresses"),
                     *not_ready = jarr(ss, "notReadyAddresses");
        for (size_t p = 0; p < jlen(ports); p++) {
            const json_t *port = jobj_at(ports, p);
            if (!port)
                continue;
            for (size_t i = 0; i < jlen(ready); i++)
                if (jobj_at(ready, i))
                    endpoints_add(b, seen, jobj_at(ready, i), port, "true");
            for (size_t i = 0; i < jlen(not_ready); i++)
                if (jobj_at(not_ready, i))
                    endpoints_add(b, seen, jobj_at(not_ready, i), port, "false");
        }
    }
    put_uncovered_ports(b, seen);
}

static const char *bool_str(int v)
{
    return v < 0 ? NULL : v ? "true" : "false";
}

static void slice_add(bctx *b, seen_pods *seen, const char *addr, const json_t *ep,
                      const json_t *port)
{
    int32_t num = 0;
    bool has_num = jint32(port, "port", &num);
    const char *num_s = has_num ? fmt_uint_port(b, num) : NULL;
    put_owned(&b->target, "__address__",
              has_num ? join_host_port(b, addr, num_s) : astr(b, addr));
    put(b, &b->target, META "endpointslice_port_name", jstr(port, "name"));
    put(b, &b->target, META "endpointslice_port_protocol", jstr(port, "protocol"));
    if (has_num)
        put_owned(&b->target, META "endpointslice_port", num_s);
    put(b, &b->target, META "endpointslice_port_app_protocol", jstr(port, "appProtocol"));

    const json_t *cond = jobj(ep, "conditions");
    put(b, &b->target, META "endpointslice_endpoint_conditions_ready",
        bool_str(jbool(cond, "ready")));
    put(b, &b->target, META "endpointslice_endpoint_conditions_serving",
        bool_str(jbool(cond, "serving")));
    put(b, &b->target, META "endpointslice_endpoint_conditions_terminating",
        bool_str(jbool(cond, "terminating")));
    put(b, &b->target, META "endpointslice_endpoint_hostname", jstr(ep, "hostname"));

    const json_t *ref = jobj(ep, "targetRef");
    if (ref) {
        put(b, &b->target, META "endpointslice_address_target_kind", jstr0(ref, "kind"));
        put(b, &b->target, META "endpointslice_address_target_name", jstr0(ref, "name"));
    }
    const char *node_name = jstr(ep, "nodeName");
    put(b, &b->target, META "endpointslice_endpoint_node_name", node_name);
    put(b, &b->target, META "endpointslice_endpoint_zone", jstr(ep, "zone"));
    put_map(b, &b->target, jobj(ep, "deprecatedTopology"), META "endpointslice_endpoint_topology_",
            META "endpointslice_endpoint_topology_present_");
    if (b->attach_node) {
        if (ref && strcmp(jstr0(ref, "kind"), "Node") == 0)
            put_node_meta(b, &b->target, jstr0(ref, "name"));
        else if (node_name)
            put_node_meta(b, &b->target, node_name);
    }

    const json_t *pod = resolve_pod(b, ref);
    seen_pod *sp = pod ? seen_get(b, seen, pod) : NULL;
    if (sp) {
        put_all(&b->target, sp->labels, sp->n_labels);
        if (has_num)
            put_matching_container(b, pod, num, NULL);
        seen_add_port(sp, has_num ? num : PORT_NONE);
    }
    end_target(b);
}

static void build_endpointslice(bctx *b, const json_t *eps, seen_pods *seen)
{
    const char *ns = disc_k8s_namespace(eps);
    put(b, &b->group, META "namespace", ns);
    put(b, &b->group, META "endpointslice_address_type", jstr0(eps, "addressType"));
    put_meta(b, &b->group, &meta_endpointslice, eps);
    /* The service a slice belongs to is in its kubernetes.io/service-name label. */
    const char *svc_name = jstr(jobj(jobj(eps, "metadata"), "labels"), SERVICE_NAME_LABEL);
    const json_t *svc = svc_name ? lk_get(b, K8S_SERVICE, ns, svc_name) : NULL;
    if (svc)
        put_service_labels(b, &b->group, svc);
    if (b->attach_namespace)
        put_namespace_meta(b, &b->group, ns);

    const json_t *eplist = jarr(eps, "endpoints"), *ports = jarr(eps, "ports");
    for (size_t e = 0; e < jlen(eplist); e++) {
        const json_t *ep = jobj_at(eplist, e);
        if (!ep)
            continue;
        const json_t *addrs = jarr(ep, "addresses");
        for (size_t p = 0; p < jlen(ports); p++) {
            const json_t *port = jobj_at(ports, p);
            if (!port)
                continue;
            for (size_t i = 0; i < jlen(addrs); i++) {
                const json_t *addr = json_array_get(addrs, i);
                if (json_is_string(addr))
                    slice_add(b, seen, json_string_value(addr), ep, port);
            }
        }
    }
    put_uncovered_ports(b, seen);
}

/* ---- nodes ----------------------------------------------------------------------- */

/* The address types in the order a node's address is chosen. */
static const char *const node_address_order[] = {
    "InternalIP", "InternalDNS", "ExternalIP", "ExternalDNS", "LegacyHostIP", "Hostname",
};

static int build_node(bctx *b, const json_t *node, firn_err *err)
{
    const json_t *spec = jobj(node, "spec"), *status = jobj(node, "status");
    put(b, &b->group, META "node_provider_id", jstr0(spec, "providerID"));
    const json_t *conds = jarr(status, "conditions");
    for (size_t i = 0; i < jlen(conds); i++) {
        const json_t *c = jobj_at(conds, i);
        if (!c)
            continue;
        char *type = alower(b, jstr0(c, "type"));
        put_owned(&b->group, type ? asan(b, META "node_condition_", type) : NULL,
                  alower(b, jstr0(c, "status")));
    }
    put_meta(b, &b->group, &meta_node, node);

    const json_t *addrs = jarr(status, "addresses");
    const char *addr = NULL;
    for (size_t t = 0; !addr && t < sizeof node_address_order / sizeof *node_address_order; t++)
        for (size_t i = 0; !addr && i < jlen(addrs); i++) {
            const json_t *a = jobj_at(addrs, i);
            if (a && strcmp(jstr0(a, "type"), node_address_order[t]) == 0)
                addr = jstr0(a, "address");
        }
    if (!addr)
        /* Prometheus logs this and sends nothing: the node keeps the
         * targets it had. */
        return firn_errf(err, FIRN_EINVAL,
                         "Node %.253s: status.addresses: no address of type InternalIP, "
                         "InternalDNS, ExternalIP, ExternalDNS, LegacyHostIP or Hostname",
                         disc_k8s_name(node));

    int32_t port = jint32_0(jobj(jobj(status, "daemonEndpoints"), "kubeletEndpoint"), "Port");
    put_owned(&b->target, "__address__",
              join_host_port(b, addr, afmt(b, "%" PRId32, port)));
    put(b, &b->target, "instance", disc_k8s_name(node));
    /* The first address of each type: walking backwards, the first is put last. */
    for (size_t i = jlen(addrs); i-- > 0;) {
        const json_t *a = jobj_at(addrs, i);
        if (a)
            put(b, &b->target, asan(b, META "node_address_", jstr0(a, "type")),
                jstr0(a, "address"));
    }
    end_target(b);
    return 0;
}

/* ---- ingresses ------------------------------------------------------------------- */

static size_t count_dots(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '.';
    return n;
}

/* host matches pattern when they are equal, or the pattern is "*." and
 * then the host's labels but the first (Prometheus's matchesHostnamePattern,
 * strings.Split semantics: "" is one empty label). */
static bool host_matches(const char *pattern, const char *host)
{
    if (strcmp(pattern, host) == 0)
        return true;
    if (pattern[0] != '*' || (pattern[1] != '.' && pattern[1] != '\0'))
        return false;
    if (count_dots(pattern) != count_dots(host))
        return false;
    const char *h = strchr(host, '.');
    const char *p = pattern + 1;
    return h ? strcmp(p, h) == 0 : *p == '\0';
}

static void build_ingress(bctx *b, const json_t *ing)
{
    const json_t *spec = jobj(ing, "spec");
    put(b, &b->group, META "namespace", disc_k8s_namespace(ing));
    put(b, &b->group, META "ingress_class_name", jstr(spec, "ingressClassName"));
    put_meta(b, &b->group, &meta_ingress, ing);
    if (b->attach_namespace)
        put_namespace_meta(b, &b->group, disc_k8s_namespace(ing));

    const json_t *tls = jarr(spec, "tls"), *rules = jarr(spec, "rules");
    for (size_t r = 0; r < jlen(rules); r++) {
        const json_t *rule = jobj_at(rules, r);
        if (!rule)
            continue;
        const char *host = jstr0(rule, "host");
        bool https = false;
        for (size_t t = 0; t < jlen(tls) && !https; t++) {
            const json_t *hosts = jarr(jobj_at(tls, t), "hosts");
            for (size_t h = 0; h < jlen(hosts) && !https; h++) {
                const json_t *pat = json_array_get(hosts, h);
                https = json_is_string(pat) && host_matches(json_string_value(pat), host);
            }
        }
        const char *scheme = https ? "https" : "http";
        /* No http section: one target for "/"; an http section gives its
         * paths (none when it has none), "" meaning "/". */
        const json_t *http = jobj(rule, "http");
        const json_t *paths = jarr(http, "paths");
        size_t n = http ? jlen(paths) : 1;
        for (size_t p = 0; p < n; p++) {
            const char *path = "/";
            if (http) {
                const json_t *hp = jobj_at(paths, p);
                if (!hp)
                    continue;
                path = jstr0(hp, "path")[0] ? jstr0(hp, "path") : "/";
            }
            put(b, &b->target, "__address__", host);
            put_owned(&b->target, META "ingress_scheme", scheme);
            put(b, &b->target, META "ingress_host", host);
            put(b, &b->target, META "ingress_path", path);
            end_target(b);
        }
    }
}

/* ---- the entry points -------------------------------------------------------------- */

int disc_k8s_build_group(k8s_kind role, const json_t *obj, const k8s_lookup *lk,
                    const k8s_role_options *o, firn_arena *a, disc_group *out, firn_err *err)
{
    memset(out, 0, sizeof *out);
    if (!is_role(role))
        return firn_errf(err, FIRN_EINVAL, "kubernetes: kind %d is not a role", (int)role);
    const k8s_kind_info *ki = &kind_infos[role];
    if (!json_is_object(obj))
        return firn_errf(err, FIRN_EINVAL, "%s: not a JSON object", ki->kind);
    const char *ns = disc_k8s_namespace(obj), *name = disc_k8s_name(obj);
    if (!name[0]) {
        if (ki->namespaced)
            return firn_errf(err, FIRN_EINVAL,
                             "%s in namespace \"%.253s\": metadata.name: missing, empty or "
                             "not a string", ki->kind, ns);
        return firn_errf(err, FIRN_EINVAL, "%s: metadata.name: missing, empty or not a string",
                         ki->kind);
    }

    bctx b = {.a = a, .lk = lk, .attach_node = o && o->attach_node,
              .attach_namespace = o && o->attach_namespace};
    seen_pods seen = {0};
    int rc = 0;
    switch (role) {
    case K8S_POD:
        build_pod(&b, obj);
        break;
    case K8S_SERVICE:
        build_service(&b, obj);
        break;
    case K8S_ENDPOINTS:
        build_endpoints(&b, obj, &seen);
        break;
    case K8S_ENDPOINTSLICE:
        build_endpointslice(&b, obj, &seen);
        break;
    case K8S_NODE:
        rc = build_node(&b, obj, err);
        break;
    case K8S_INGRESS:
        build_ingress(&b, obj);
        break;
    default:
        break;
    }

    if (rc == 0) {
        size_t sl = disc_k8s_group_source(role, ns, name, NULL, 0);
        char *source = firn_arena_alloc(a, sl + 1);
        disc_target *targets = firn_arena_calloc(a, b.n_targets + 1, sizeof *targets);
        disc_k8s_group_source(role, ns, name, source, sl + 1);
        if (b.n_targets)
            memcpy(targets, b.targets, b.n_targets * sizeof *targets);
        out->source = source;
        out->targets = targets;
        out->n_targets = b.n_targets;
        out->labels = ls_finish(&b, &b.group, &out->n_labels);
    }
    seen_free(&seen);
    free(b.group.v);
    free(b.target.v);
    free(b.scratch.v);
    free(b.targets);
    return rc;
}

/* ---- what to rebuild when a secondary object changes --------------------------------- */

typedef enum aff_match {
    AFF_ALL,               /* every object visited */
    AFF_REFS_POD,          /* endpoints/slices with an address whose targetRef is the pod */
    AFF_ON_NODE,           /* endpoints/slices with an address on the node */
    AFF_SLICE_OF_SERVICE,  /* slices labeled kubernetes.io/service-name=name */
    AFF_POD_ON_NODE,       /* pods with spec.nodeName = name */
} aff_match;

typedef struct aff {
    k8s_kind role;
    aff_match match;
    const char *ns, *name;   /* of the changed object */
    void (*fn)(void *fn_ctx, const json_t *obj);
    void *fn_ctx;
} aff;

static bool ref_is(const json_t *ref, const char *kind, const char *ns, const char *name)
{
    return ref && strcmp(jstr0(ref, "kind"), kind) == 0 && strcmp(jstr0(ref, "name"), name) == 0 &&
           (!ns || strcmp(jstr0(ref, "namespace"), ns) == 0);
}

/* An address (of Endpoints) or an endpoint (of an EndpointSlice) points
 * at the changed pod, or sits on the changed node. */
static bool address_matches(const aff *f, const json_t *addr)
{
    const json_t *ref = jobj(addr, "targetRef");
    if (f->match == AFF_REFS_POD)
        return ref_is(ref, "Pod", f->ns, f->name);
    const char *node = jstr(addr, "nodeName");
    return (node && strcmp(node, f->name) == 0) || ref_is(ref, "Node", NULL, f->name);
}

static bool addresses_match(const aff *f, const json_t *obj)
{
    if (f->role == K8S_ENDPOINTSLICE) {
        const json_t *eps = jarr(obj, "endpoints");
        for (size_t i = 0; i < jlen(eps); i++)
            if (jobj_at(eps, i) && address_matches(f, jobj_at(eps, i)))
                return true;
        return false;
    }
    const json_t *subsets = jarr(obj, "subsets");
    for (size_t s = 0; s < jlen(subsets); s++) {
        const json_t *ss = jobj_at(subsets, s);
        static const char *const lists[] = {"addresses", "notReadyAddresses"};
        for (size_t l = 0; l < 2; l++) {
            const json_t *addrs = jarr(ss, lists[l]);
            for (size_t i = 0; i < jlen(addrs); i++)
                if (jobj_at(addrs, i) && address_matches(f, jobj_at(addrs, i)))
                    return true;
        }
    }
    return false;
}

static void aff_visit(void *ctx, const json_t *obj)
{
    const aff *f = ctx;
    if (!json_is_object(obj))
        return;
    bool hit = false;
    switch (f->match) {
    case AFF_ALL:
        hit = true;
        break;
    case AFF_REFS_POD:
    case AFF_ON_NODE:
        hit = addresses_match(f, obj);
        break;
    case AFF_SLICE_OF_SERVICE: {
        const char *svc = jstr(jobj(jobj(obj, "metadata"), "labels"), SERVICE_NAME_LABEL);
        hit = svc && strcmp(svc, f->name) == 0;
        break;
    }
    case AFF_POD_ON_NODE:
        hit = strcmp(jstr0(jobj(obj, "spec"), "nodeName"), f->name) == 0;
        break;
    }
    if (hit)
        f->fn(f->fn_ctx, obj);
}

void disc_k8s_affected(k8s_kind role, k8s_kind changed, const json_t *obj, const k8s_lookup *lk,
                  void (*fn)(void *fn_ctx, const json_t *obj), void *fn_ctx)
{
    if (!is_role(role) || changed == role || (unsigned)changed >= K8S_KIND_COUNT || !fn || !lk ||
        !json_is_object(obj))
        return;
    const char *ns = disc_k8s_namespace(obj), *name = disc_k8s_name(obj);
    if (!name[0])
        return;
    aff f = {role, AFF_ALL, ns, name, fn, fn_ctx};
    const char *each_ns = NULL;   /* NULL: every namespace */
    bool slices = role == K8S_ENDPOINTSLICE, endpoints = role == K8S_ENDPOINTS;

    switch (changed) {
    case K8S_SERVICE:
        if (endpoints) {   /* the endpoints of the same name */
            const json_t *e = lk->get ? lk->get(lk->ctx, K8S_ENDPOINTS, ns, name) : NULL;
            if (json_is_object(e))
                fn(fn_ctx, e);
            return;
        }
        if (!slices)
            return;
        f.match = AFF_SLICE_OF_SERVICE;
        each_ns = ns;
        break;
    case K8S_POD:
        if (!endpoints && !slices)
            return;
        f.match = AFF_REFS_POD;
        each_ns = ns;
        break;
    case K8S_NODE:
        if (role == K8S_POD)
            f.match = AFF_POD_ON_NODE;
        else if (endpoints || slices)
            f.match = AFF_ON_NODE;
        else
            return;
        break;
    case K8S_NAMESPACE:
        if (role == K8S_NODE)
            return;
        f.match = AFF_ALL;
        each_ns = name;
        break;
    default:
        return;
    }
    if (lk->each)
        lk->each(lk->ctx, role, each_ns, aff_visit, &f);
}
