/* test_k8s_roles.c -- the Kubernetes role code (discovery/k8s_roles.c)
 * against Prometheus's discovery/kubernetes tests: pod_test.go,
 * service_test.go, endpoints_test.go, endpointslice_test.go, node_test.go
 * and ingress_test.go, ported one case per Go test as a table.
 *
 * Each case is an object as the API server would send it for the Go test's
 * struct (JSON written with ' for ", see J), the other objects the client
 * would hold in its stores, and the group Prometheus's test expects:
 * source, group labels, and the targets in order, every label compared.
 * Two things differ from the Go tables on purpose:
 *  - labels whose value is "" are not listed: firn drops them, as
 *    Prometheus's labels.Builder does before relabeling sees them;
 *  - a Go test that updates an object after the start is ported as one
 *    build over the final state of the store.
 * Cases marked "(derived)" have no Prometheus test: their expectation is
 * what the Prometheus code computes for that input (named in the case).
 *
 * Then disc_k8s_affected, the small functions, and the refusals and type
 * mismatches the role code must survive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discovery/k8s.h"

#define M(x) "__meta_kubernetes_" x
/* A label list: name, value, ..., and a list of them (the targets). */
#define L(...) ((const char *const[]){__VA_ARGS__, NULL})
#define T(...) ((const char *const *const[]){__VA_ARGS__, NULL})

/* ---- the test store: a JSON array of objects, each with its "kind" ---------------- */

/* JSON with ' for " (no value in these tests holds a quote). */
static json_t *J(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t e;
    json_t *v = json_loads(d, 0, &e);
    if (!v)
        fail_msg("bad test JSON at %d:%d: %s: %s", e.line, e.column, e.text, d);
    free(d);
    return v;
}

static bool is_kind(const json_t *obj, k8s_kind kind)
{
    const char *k = json_string_value(json_object_get(obj, "kind"));
    return k && strcmp(k, disc_k8s_kind_get(kind)->kind) == 0;
}

static const json_t *store_get(void *ctx, k8s_kind kind, const char *ns, const char *name)
{
    const json_t *store = ctx;
    for (size_t i = 0; i < json_array_size(store); i++) {
        const json_t *o = json_array_get(store, i);
        if (is_kind(o, kind) && strcmp(disc_k8s_name(o), name) == 0 &&
            (!disc_k8s_kind_get(kind)->namespaced || strcmp(disc_k8s_namespace(o), ns) == 0))
            return o;
    }
    return NULL;
}

static void store_each(void *ctx, k8s_kind kind, const char *ns,
                       void (*fn)(void *fn_ctx, const json_t *obj), void *fn_ctx)
{
    const json_t *store = ctx;
    for (size_t i = 0; i < json_array_size(store); i++) {
        const json_t *o = json_array_get(store, i);
        if (is_kind(o, kind) && (!ns || strcmp(disc_k8s_namespace(o), ns) == 0))
            fn(fn_ctx, o);
    }
}

/* ---- comparing a group with the expectation ---------------------------------------- */

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const firn_label *)a)->name, ((const firn_label *)b)->name);
}

static char *labels_text(const firn_label *l, size_t n)
{
    char *s = firn_labels_format(l, n);
    assert_non_null(s);
    return s;
}

/* Whether got (sorted, as the builder returns it) is exactly want. */
static void check_labels(const char *what, const char *const *want, const firn_label *got,
                         size_t n_got)
{
    size_t n = 0;
    while (want && want[2 * n])
        n++;
    firn_label *w = calloc(n + 1, sizeof *w);
    assert_non_null(w);
    for (size_t i = 0; i < n; i++)
        w[i] = (firn_label){want[2 * i], want[2 * i + 1]};
    firn_sort(w, n, sizeof *w, label_cmp);
    bool same = n == n_got;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(w[i].name, got[i].name) == 0 && strcmp(w[i].value, got[i].value) == 0;
    for (size_t i = 1; i < n_got; i++)
        if (strcmp(got[i - 1].name, got[i].name) >= 0)
            fail_msg("%s: labels not sorted or not unique at %s", what, got[i].name);
    if (!same) {
        char *ws = labels_text(w, n), *gs = labels_text(got, n_got);
        print_error("%s:\n want %s\n got  %s\n", what, ws, gs);
        free(ws);
        free(gs);
        free(w);
        fail();
    }
    free(w);
}

typedef struct role_case {
    const char *name;
    k8s_kind role;
    k8s_role_options opts;
    const char *obj;      /* the role's object */
    const char *store;    /* a JSON array of the other objects, or NULL */
    const char *source;
    const char *const *labels;
    const char *const *const *targets;   /* NULL: no targets */
} role_case;

static void run_case(const role_case *c)
{
    json_t *obj = J(c->obj);
    json_t *store = J(c->store ? c->store : "[]");
    json_array_append(store, obj);
    k8s_lookup lk = {store_get, store_each, store};
    firn_arena *a = firn_arena_new(0);
    assert_non_null(a);
    disc_group g;
    firn_err err = {0};
    if (disc_k8s_build_group(c->role, obj, &lk, &c->opts, a, &g, &err) < 0)
        fail_msg("%s: refused: %s", c->name, err.msg);
    assert_string_equal(g.source, c->source);
    char what[256];
    snprintf(what, sizeof what, "%s: group labels", c->name);
    check_labels(what, c->labels, g.labels, g.n_labels);
    size_t n = 0;
    while (c->targets && c->targets[n])
        n++;
    if (g.n_targets != n)
        fail_msg("%s: %zu targets, want %zu", c->name, g.n_targets, n);
    for (size_t i = 0; i < n; i++) {
        snprintf(what, sizeof what, "%s: target %zu", c->name, i);
        check_labels(what, c->targets[i], g.targets[i].labels, g.targets[i].n_labels);
    }
    firn_arena_free(a);
    json_decref(obj);
    json_decref(store);
}

static void run_cases(const role_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        run_case(&cases[i]);
}

/* ---- pods (pod_test.go) --------------------------------------------------------------- */

#define POD_MULTI                                                                             \
    "{'kind':'Pod','metadata':{'name':'testpod','namespace':'default','uid':'abc123',"       \
    "'labels':{'test/label':'testvalue'},'annotations':{'test/annotation':'testannotationvalue'}," \
    "'ownerReferences':[{'apiVersion':'','kind':'testcontrollerkind','name':'testcontrollername'," \
    "'uid':'','controller':true}]},"                                                          \
    "'spec':{'nodeName':'testnode','containers':["                                            \
    "{'name':'testcontainer0','image':'testcontainer0:latest','ports':["                      \
    "{'name':'testport0','containerPort':9000,'protocol':'TCP'},"                            \
    "{'name':'testport1','containerPort':9001,'protocol':'UDP'}]},"                          \
    "{'name':'testcontainer1','image':'testcontainer1:latest'}]},"                            \
    "'status':{'phase':'Running','conditions':[{'type':'Ready','status':'True'}],"            \
    "'hostIP':'2.3.4.5','podIP':'1.2.3.4','containerStatuses':["                              \
    "{'name':'testcontainer0','containerID':'docker://a1b2c3d4e5f6'},"                        \
    "{'name':'testcontainer1','containerID':'containerd://6f5e4d3c2b1a'}]}}"

/* makePods(ns) */
#define POD(ns)                                                                               \
    "{'kind':'Pod','metadata':{'name':'testpod','namespace':'" ns "','uid':'abc123'},"        \
    "'spec':{'nodeName':'testnode','containers':[{'name':'testcontainer',"                   \
    "'image':'testcontainer:latest','ports':[{'name':'testport','containerPort':9000,"        \
    "'protocol':'TCP'}]}]},'status':{'phase':'Running','conditions':[{'type':'Ready',"        \
    "'status':'True'}],'hostIP':'2.3.4.5','podIP':'1.2.3.4','containerStatuses':["            \
    "{'name':'testcontainer','containerID':'docker://a1b2c3d4e5f6'}]}}"

#define POD_INIT                                                                              \
    "{'kind':'Pod','metadata':{'name':'testpod','namespace':'default','uid':'abc123'},"       \
    "'spec':{'nodeName':'testnode','containers':[{'name':'testcontainer',"                   \
    "'image':'testcontainer:latest','ports':[{'name':'testport','containerPort':9000,"        \
    "'protocol':'TCP'}]}],'initContainers':[{'name':'initcontainer',"                         \
    "'image':'initcontainer:latest'}]},'status':{'phase':'Pending','conditions':[{'type':"    \
    "'Ready','status':'False'}],'hostIP':'2.3.4.5','podIP':'1.2.3.4','containerStatuses':["   \
    "{'name':'testcontainer','containerID':'docker://a1b2c3d4e5f6'}],"                        \
    "'initContainerStatuses':[{'name':'initcontainer','containerID':'containerd://6f5e4d3c2b1a'}]}}"

/* makeNode(name, address, providerID, labels, annotations); the labels and
 * annotations are JSON objects */
#define NODE(name, address, labels)                                                           \
    "{'kind':'Node','metadata':{'name':'" name "','labels':" labels "},"                      \
    "'status':{'addresses':[{'type':'InternalIP','address':'" address "'}],"                  \
    "'daemonEndpoints':{'kubeletEndpoint':{'Port':10250}}}}"

/* makeNamespace(name, labels, annotations) */
#define NAMESPACE(name, labels, annotations)                                                  \
    "{'kind':'Namespace','metadata':{'name':'" name "','labels':" labels ",'annotations':"    \
    annotations "}}"

/* expectedPodTargetGroups(ns) */
#define POD_TARGET                                                                            \
    "__address__", "1.2.3.4:9000", M("pod_container_name"), "testcontainer",                 \
        M("pod_container_image"), "testcontainer:latest", M("pod_container_port_name"),        \
        "testport", M("pod_container_port_number"), "9000", M("pod_container_port_protocol"), \
        "TCP", M("pod_container_init"), "false", M("pod_container_id"), "docker://a1b2c3d4e5f6"
#define POD_GROUP(ns)                                                                         \
    M("pod_name"), "testpod", M("namespace"), ns, M("pod_node_name"), "testnode",             \
        M("pod_ip"), "1.2.3.4", M("pod_host_ip"), "2.3.4.5", M("pod_ready"), "true",          \
        M("pod_phase"), "Running", M("pod_uid"), "abc123"

static const role_case pod_cases[] = {
    {"TestPodDiscoveryBeforeRun", K8S_POD, {0}, POD_MULTI, NULL, "pod/default/testpod",
     L(M("pod_name"), "testpod", M("namespace"), "default", M("pod_label_test_label"),
       "testvalue", M("pod_labelpresent_test_label"), "true",
       M("pod_annotation_test_annotation"), "testannotationvalue",
       M("pod_annotationpresent_test_annotation"), "true", M("pod_node_name"), "testnode",
       M("pod_ip"), "1.2.3.4", M("pod_host_ip"), "2.3.4.5", M("pod_ready"), "true",
       M("pod_phase"), "Running", M("pod_uid"), "abc123", M("pod_controller_kind"),
       "testcontrollerkind", M("pod_controller_name"), "testcontrollername"),
     T(L("__address__", "1.2.3.4:9000", M("pod_container_name"), "testcontainer0",
         M("pod_container_image"), "testcontainer0:latest", M("pod_container_port_name"),
         "testport0", M("pod_container_port_number"), "9000", M("pod_container_port_protocol"),
         "TCP", M("pod_container_init"), "false", M("pod_container_id"),
         "docker://a1b2c3d4e5f6"),
       L("__address__", "1.2.3.4:9001", M("pod_container_name"), "testcontainer0",
         M("pod_container_image"), "testcontainer0:latest", M("pod_container_port_name"),
         "testport1", M("pod_container_port_number"), "9001", M("pod_container_port_protocol"),
         "UDP", M("pod_container_init"), "false", M("pod_container_id"),
         "docker://a1b2c3d4e5f6"),
       L("__address__", "1.2.3.4", M("pod_container_name"), "testcontainer1",
         M("pod_container_image"), "testcontainer1:latest", M("pod_container_init"), "false",
         M("pod_container_id"), "containerd://6f5e4d3c2b1a"))},
    {"TestPodDiscoveryInitContainer", K8S_POD, {0}, POD_INIT, NULL, "pod/default/testpod",
     L(M("pod_name"), "testpod", M("namespace"), "default", M("pod_node_name"), "testnode",
       M("pod_ip"), "1.2.3.4", M("pod_host_ip"), "2.3.4.5", M("pod_ready"), "false",
       M("pod_phase"), "Pending", M("pod_uid"), "abc123"),
     T(L(POD_TARGET),
       L("__address__", "1.2.3.4", M("pod_container_name"), "initcontainer",
         M("pod_container_image"), "initcontainer:latest", M("pod_container_init"), "true",
         M("pod_container_id"), "containerd://6f5e4d3c2b1a"))},
    {"TestPodDiscoveryAdd", K8S_POD, {0}, POD("default"), NULL, "pod/default/testpod",
     L(POD_GROUP("default")), T(L(POD_TARGET))},
    /* TestPodDiscoveryUpdate ends with makePods("default"), as TestPodDiscoveryAdd. */
    {"TestPodDiscoveryUpdateEmptyPodIP", K8S_POD, {0},
     "{'kind':'Pod','metadata':{'name':'testpod','namespace':'default','uid':'abc123'},"
     "'spec':{'nodeName':'testnode','containers':[{'name':'testcontainer',"
     "'image':'testcontainer:latest','ports':[{'name':'testport','containerPort':9000,"
     "'protocol':'TCP'}]}]},'status':{'phase':'Running','conditions':[{'type':'Ready',"
     "'status':'True'}],'hostIP':'2.3.4.5','podIP':''}}",
     NULL, "pod/default/testpod", NULL, NULL},
    {"TestPodDiscoveryNamespaces/ns1", K8S_POD, {0}, POD("ns1"), NULL, "pod/ns1/testpod",
     L(POD_GROUP("ns1")), T(L(POD_TARGET))},
    {"TestPodDiscoveryNamespaces/ns2", K8S_POD, {0}, POD("ns2"), NULL, "pod/ns2/testpod",
     L(POD_GROUP("ns2")), T(L(POD_TARGET))},
    {"TestPodDiscoveryWithNodeMetadata", K8S_POD, {.attach_node = true}, POD("default"),
     "[" NODE("testnode", "", "{'l1':'v1'}") "]", "pod/default/testpod",
     L(POD_GROUP("default"), M("node_name"), "testnode", M("node_label_l1"), "v1",
       M("node_labelpresent_l1"), "true"),
     T(L(POD_TARGET))},
    {"TestPodDiscoveryWithNodeMetadataUpdateNode", K8S_POD, {.attach_node = true},
     POD("default"), "[" NODE("testnode", "", "{'l2':'v2'}") "]", "pod/default/testpod",
     L(POD_GROUP("default"), M("node_name"), "testnode", M("node_label_l2"), "v2",
       M("node_labelpresent_l2"), "true"),
     T(L(POD_TARGET))},
    {"TestPodDiscoveryWithNamespaceMetadata", K8S_POD, {.attach_namespace = true},
     POD("test-ns"),
     "[" NAMESPACE("test-ns", "{'app':'web','tier':'frontend'}",
                   "{'maintainer':'devops','build':'v3.4.5'}") "]",
     "pod/test-ns/testpod",
     L(POD_GROUP("test-ns"), M("namespace_annotation_maintainer"), "devops",
       M("namespace_annotationpresent_maintainer"), "true", M("namespace_annotation_build"),
       "v3.4.5", M("namespace_annotationpresent_build"), "true", M("namespace_label_app"),
       "web", M("namespace_labelpresent_app"), "true", M("namespace_label_tier"), "frontend",
       M("namespace_labelpresent_tier"), "true"),
     T(L(POD_TARGET))},
    {"TestPodDiscoveryWithUpdatedNamespaceMetadata", K8S_POD, {.attach_namespace = true},
     POD("test-ns"),
     "[" NAMESPACE("test-ns", "{'app':'service','tier':'backend','zone':'us-east'}",
                   "{'maintainer':'sre','build':'v4.5.6','deployment':'canary'}") "]",
     "pod/test-ns/testpod",
     L(POD_GROUP("test-ns"), M("namespace_annotation_maintainer"), "sre",
       M("namespace_annotationpresent_maintainer"), "true", M("namespace_annotation_build"),
       "v4.5.6", M("namespace_annotationpresent_build"), "true",
       M("namespace_annotation_deployment"), "canary",
       M("namespace_annotationpresent_deployment"), "true", M("namespace_label_app"),
       "service", M("namespace_labelpresent_app"), "true", M("namespace_label_tier"),
       "backend", M("namespace_labelpresent_tier"), "true", M("namespace_label_zone"),
       "us-east", M("namespace_labelpresent_zone"), "true"),
     T(L(POD_TARGET))},
    /* (derived: pod.go buildPod) attach_node with the node not in the store:
     * the pod is kept, without node labels. */
    {"attach_node, node missing", K8S_POD, {.attach_node = true}, POD("default"), NULL,
     "pod/default/testpod", L(POD_GROUP("default")), T(L(POD_TARGET))},
    /* (derived: pod.go podLabels, buildPod) dual stack: the first IPv4 and
     * IPv6 of podIPs; a portless target on an IPv6 pod IP is bracketed in
     * Go's canonical form; label keys are sanitized per rune. */
    {"IPv6 pod, podIPs, sanitized keys", K8S_POD, {0},
     "{'metadata':{'name':'p6','namespace':'ns','labels':{'app.kubernetes.io/name':'x',"
     "'caf\\u00e9':'y'}},'spec':{'containers':[{'name':'c'},{'name':'d','ports':["
     "{'containerPort':8080}]}]},'status':{'podIP':'2001:DB8:0:0:1:0:0:1','podIPs':["
     "{'ip':''},{'ip':'2001:db8::1:0:0:1'},{'ip':'10.0.0.7'},{'ip':'::ffff:10.0.0.8'},"
     "{'ip':'fe80::2'}]}}",
     NULL, "pod/ns/p6",
     L(M("pod_name"), "p6", M("namespace"), "ns", M("pod_ip"), "2001:DB8:0:0:1:0:0:1",
       M("pod_ready"), "unknown", M("pod_ipv4"), "10.0.0.7", M("pod_ipv6"),
       "2001:db8::1:0:0:1", M("pod_label_app_kubernetes_io_name"), "x",
       M("pod_labelpresent_app_kubernetes_io_name"), "true", M("pod_label_caf_"), "y",
       M("pod_labelpresent_caf_"), "true"),
     T(L("__address__", "[2001:db8::1:0:0:1]", M("pod_container_name"), "c",
         M("pod_container_init"), "false"),
       L("__address__", "[2001:DB8:0:0:1:0:0:1]:8080", M("pod_container_name"), "d",
         M("pod_container_port_number"), "8080", M("pod_container_init"), "false"))},
};

static void test_pod(void **state)
{
    (void)state;
    run_cases(pod_cases, sizeof pod_cases / sizeof *pod_cases);
}

/* ---- services (service_test.go) ----------------------------------------------------------- */

#define SERVICE(ns)                                                                           \
    "{'kind':'Service','metadata':{'name':'testservice','namespace':'" ns "'},"               \
    "'spec':{'ports':[{'name':'testport','protocol':'TCP','port':30900}],'type':'ClusterIP',"  \
    "'clusterIP':'10.0.0.1'}}"
#define SERVICE_TARGET(ns)                                                                    \
    M("service_port_protocol"), "TCP", "__address__", "testservice." ns ".svc:30900",          \
        M("service_type"), "ClusterIP", M("service_cluster_ip"), "10.0.0.1",                  \
        M("service_port_name"), "testport", M("service_port_number"), "30900"

static const role_case service_cases[] = {
    {"TestServiceDiscoveryAdd/testservice", K8S_SERVICE, {0}, SERVICE("default"), NULL,
     "svc/default/testservice", L(M("service_name"), "testservice", M("namespace"), "default"),
     T(L(SERVICE_TARGET("default")))},
    {"TestServiceDiscoveryAdd/testservice-external", K8S_SERVICE, {0},
     "{'kind':'Service','metadata':{'name':'testservice-external','namespace':'default'},"
     "'spec':{'ports':[{'name':'testport','protocol':'TCP','port':31900}],"
     "'type':'ExternalName','externalName':'FooExternalName'}}",
     NULL, "svc/default/testservice-external",
     L(M("service_name"), "testservice-external", M("namespace"), "default"),
     T(L(M("service_port_protocol"), "TCP", "__address__",
         "testservice-external.default.svc:31900", M("service_type"), "ExternalName",
         M("service_port_name"), "testport", M("service_port_number"), "31900",
         M("service_external_name"), "FooExternalName"))},
    {"TestServiceDiscoveryAdd/testservice-loadbalancer", K8S_SERVICE, {0},
     "{'kind':'Service','metadata':{'name':'testservice-loadbalancer','namespace':'default'},"
     "'spec':{'ports':[{'name':'testport','protocol':'TCP','port':31900}],"
     "'type':'LoadBalancer','loadBalancerIP':'127.0.0.1','clusterIP':'10.0.0.1'}}",
     NULL, "svc/default/testservice-loadbalancer",
     L(M("service_name"), "testservice-loadbalancer", M("namespace"), "default"),
     T(L(M("service_port_protocol"), "TCP", "__address__",
         "testservice-loadbalancer.default.svc:31900", M("service_type"), "LoadBalancer",
         M("service_port_name"), "testport", M("service_port_number"), "31900",
         M("service_cluster_ip"), "10.0.0.1", M("service_loadbalancer_ip"), "127.0.0.1"))},
    /* (derived: prometheus/prometheus#19404) status.loadBalancer.ingress IPs
     * first, comma-separated; hostname-only ingress leaves the spec's. */
    {"load balancer status, dual stack", K8S_SERVICE, {0},
     "{'kind':'Service','metadata':{'name':'svc-metallb-dual','namespace':'default'},"
     "'spec':{'ports':[{'name':'testport','protocol':'TCP','port':32001}],'type':'LoadBalancer',"
     "'clusterIP':'10.0.0.1','loadBalancerIP':'9.9.9.9'},'status':{'loadBalancer':{'ingress':["
     "{'ip':'2001:1:2:3:4::'},{'hostname':'lb.example'},{'ip':'1.2.3.4'}]}}}",
     NULL, "svc/default/svc-metallb-dual",
     L(M("service_name"), "svc-metallb-dual", M("namespace"), "default"),
     T(L(M("service_port_protocol"), "TCP", "__address__", "svc-metallb-dual.default.svc:32001",
         M("service_type"), "LoadBalancer", M("service_port_name"), "testport",
         M("service_port_number"), "32001", M("service_cluster_ip"), "10.0.0.1",
         M("service_loadbalancer_ip"), "2001:1:2:3:4::,1.2.3.4"))},
    {"load balancer status, hostname only", K8S_SERVICE, {0},
     "{'kind':'Service','metadata':{'name':'svc-eks','namespace':'default'},"
     "'spec':{'ports':[{'name':'testport','protocol':'TCP','port':32002}],'type':'LoadBalancer',"
     "'clusterIP':'10.0.0.1'},'status':{'loadBalancer':{'ingress':["
     "{'hostname':'example-lb-name-abc.elb.eu-central-1.test.com'}]}}}",
     NULL, "svc/default/svc-eks", L(M("service_name"), "svc-eks", M("namespace"), "default"),
     T(L(M("service_port_protocol"), "TCP", "__address__", "svc-eks.default.svc:32002",
         M("service_type"), "LoadBalancer", M("service_port_name"), "testport",
         M("service_port_number"), "32002", M("service_cluster_ip"), "10.0.0.1"))},
    {"TestServiceDiscoveryUpdate", K8S_SERVICE, {0},
     "{'kind':'Service','metadata':{'name':'testservice','namespace':'default',"
     "'labels':{'test-label':'testvalue'},'annotations':{'test-annotation':'testannotationvalue'}},"
     "'spec':{'ports':[{'name':'testport0','protocol':'TCP','port':30900},"
     "{'name':'testport1','protocol':'UDP','port':30901}],'type':'ClusterIP',"
     "'clusterIP':'10.0.0.1'}}",
     NULL, "svc/default/testservice",
     L(M("service_name"), "testservice", M("namespace"), "default",
       M("service_label_test_label"), "testvalue", M("service_labelpresent_test_label"), "true",
       M("service_annotation_test_annotation"), "testannotationvalue",
       M("service_annotationpresent_test_annotation"), "true"),
     T(L(M("service_port_protocol"), "TCP", "__address__", "testservice.default.svc:30900",
         M("service_type"), "ClusterIP", M("service_cluster_ip"), "10.0.0.1",
         M("service_port_name"), "testport0", M("service_port_number"), "30900"),
       L(M("service_port_protocol"), "UDP", "__address__", "testservice.default.svc:30901",
         M("service_type"), "ClusterIP", M("service_cluster_ip"), "10.0.0.1",
         M("service_port_name"), "testport1", M("service_port_number"), "30901"))},
    {"TestServiceDiscoveryNamespaces/ns1", K8S_SERVICE, {0}, SERVICE("ns1"), NULL,
     "svc/ns1/testservice", L(M("service_name"), "testservice", M("namespace"), "ns1"),
     T(L(SERVICE_TARGET("ns1")))},
    {"TestServiceDiscoveryNamespaces/ns2", K8S_SERVICE, {0}, SERVICE("ns2"), NULL,
     "svc/ns2/testservice", L(M("service_name"), "testservice", M("namespace"), "ns2"),
     T(L(SERVICE_TARGET("ns2")))},
    {"TestServiceDiscoveryOwnNamespace", K8S_SERVICE, {0}, SERVICE("own-ns"), NULL,
     "svc/own-ns/testservice", L(M("service_name"), "testservice", M("namespace"), "own-ns"),
     T(L(SERVICE_TARGET("own-ns")))},
    {"TestServiceDiscoveryWithNamespaceMetadata", K8S_SERVICE, {.attach_namespace = true},
     SERVICE("test-ns"),
     "[" NAMESPACE("test-ns", "{'environment':'production','team':'backend'}",
                   "{'owner':'platform','version':'v1.2.3'}") "]",
     "svc/test-ns/testservice",
     L(M("namespace"), "test-ns", M("namespace_annotation_owner"), "platform",
       M("namespace_annotationpresent_owner"), "true", M("namespace_annotation_version"),
       "v1.2.3", M("namespace_annotationpresent_version"), "true",
       M("namespace_label_environment"), "production", M("namespace_labelpresent_environment"),
       "true", M("namespace_label_team"), "backend", M("namespace_labelpresent_team"), "true",
       M("service_name"), "testservice"),
     T(L(SERVICE_TARGET("test-ns")))},
    {"TestServiceDiscoveryWithUpdatedNamespaceMetadata", K8S_SERVICE,
     {.attach_namespace = true}, SERVICE("test-ns"),
     "[" NAMESPACE("test-ns", "{'environment':'staging','team':'frontend','region':'us-west'}",
                   "{'owner':'sre','version':'v2.1.0','cost-center':'engineering'}") "]",
     "svc/test-ns/testservice",
     L(M("namespace"), "test-ns", M("namespace_annotation_owner"), "sre",
       M("namespace_annotationpresent_owner"), "true", M("namespace_annotation_version"),
       "v2.1.0", M("namespace_annotationpresent_version"), "true",
       M("namespace_annotation_cost_center"), "engineering",
       M("namespace_annotationpresent_cost_center"), "true", M("namespace_label_environment"),
       "staging", M("namespace_labelpresent_environment"), "true", M("namespace_label_team"),
       "frontend", M("namespace_labelpresent_team"), "true", M("namespace_label_region"),
       "us-west", M("namespace_labelpresent_region"), "true", M("service_name"),
       "testservice"),
     T(L(SERVICE_TARGET("test-ns")))},
};

static void test_service(void **state)
{
    (void)state;
    run_cases(service_cases, sizeof service_cases / sizeof *service_cases);
}

/* ---- endpoints (endpoints_test.go) ---------------------------------------------------------- */

/* makeEndpoints(ns) */
#define ENDPOINTS(ns)                                                                         \
    "{'kind':'Endpoints','metadata':{'name':'testendpoints','namespace':'" ns "',"            \
    "'annotations':{'test.annotation':'test'}},'subsets':["                                   \
    "{'addresses':[{'ip':'1.2.3.4','hostname':'testendpoint1','nodeName':'foobar'}],"          \
    "'ports':[{'name':'testport','port':9000,'protocol':'TCP'}]},"                            \
    "{'addresses':[{'ip':'2.3.4.5'}],'notReadyAddresses':[{'ip':'2.3.4.5'}],"                 \
    "'ports':[{'name':'testport','port':9001,'protocol':'TCP'}]},"                            \
    "{'addresses':[{'ip':'6.7.8.9','targetRef':{'kind':'Node','name':'barbaz'}}],"            \
    "'ports':[{'name':'testport','port':9002,'protocol':'TCP'}]}]}"

#define EP_T1                                                                                 \
    "__address__", "1.2.3.4:9000", M("endpoint_hostname"), "testendpoint1",                   \
        M("endpoint_node_name"), "foobar", M("endpoint_port_name"), "testport",               \
        M("endpoint_port_protocol"), "TCP", M("endpoint_ready"), "true"
#define EP_T2                                                                                 \
    "__address__", "2.3.4.5:9001", M("endpoint_port_name"), "testport",                       \
        M("endpoint_port_protocol"), "TCP", M("endpoint_ready"), "true"
#define EP_T3                                                                                 \
    "__address__", "2.3.4.5:9001", M("endpoint_port_name"), "testport",                       \
        M("endpoint_port_protocol"), "TCP", M("endpoint_ready"), "false"
#define EP_T4                                                                                 \
    "__address__", "6.7.8.9:9002", M("endpoint_address_target_kind"), "Node",                 \
        M("endpoint_address_target_name"), "barbaz", M("endpoint_port_name"), "testport",     \
        M("endpoint_port_protocol"), "TCP", M("endpoint_ready"), "true"
#define EP_ANNOTATION                                                                         \
    M("endpoints_annotation_test_annotation"), "test",                                        \
        M("endpoints_annotationpresent_test_annotation"), "true"

/* The pod of TestEndpointsDiscoveryAdd, in namespace ns with pod IP ip. */
#define EP_POD(ns, ip)                                                                        \
    "{'kind':'Pod','metadata':{'name':'testpod','namespace':'" ns "','uid':'deadbeef'},"      \
    "'spec':{'nodeName':'testnode','containers':[{'name':'c1','image':'c1:latest','ports':["   \
    "{'name':'mainport','containerPort':9000,'protocol':'TCP'}]},{'name':'c2','image':"        \
    "'c2:latest','ports':[{'name':'sideport','containerPort':9001,'protocol':'TCP'}]}]},"      \
    "'status':{'hostIP':'2.3.4.5','podIP':'" ip "'}}"
#define EP_POD_LABELS(ip)                                                                     \
    M("pod_name"), "testpod", M("pod_ip"), ip, M("pod_ready"), "unknown", M("pod_node_name"), \
        "testnode", M("pod_host_ip"), "2.3.4.5", M("pod_uid"), "deadbeef"
#define EP_SERVICE(ns, labels)                                                                \
    "{'kind':'Service','metadata':{'name':'testendpoints','namespace':'" ns "','labels':"     \
    labels "}}"

static const role_case endpoints_cases[] = {
    {"TestEndpointsDiscoveryBeforeRun", K8S_ENDPOINTS, {0}, ENDPOINTS("default"), NULL,
     "endpoints/default/testendpoints",
     L(M("namespace"), "default", M("endpoints_name"), "testendpoints", EP_ANNOTATION),
     T(L(EP_T1), L(EP_T2), L(EP_T3), L(EP_T4))},
    {"TestEndpointsDiscoveryAdd", K8S_ENDPOINTS, {0},
     "{'kind':'Endpoints','metadata':{'name':'testendpoints','namespace':'default'},"
     "'subsets':[{'addresses':[{'ip':'4.3.2.1','targetRef':{'kind':'Pod','name':'testpod',"
     "'namespace':'default'}}],'ports':[{'name':'testport','port':9000,'protocol':'TCP'}]}]}",
     "[" EP_POD("default", "1.2.3.4") "]", "endpoints/default/testendpoints",
     L(M("endpoints_name"), "testendpoints", M("namespace"), "default"),
     T(L("__address__", "4.3.2.1:9000", M("endpoint_port_name"), "testport",
         M("endpoint_port_protocol"), "TCP", M("endpoint_ready"), "true",
         M("endpoint_address_target_kind"), "Pod", M("endpoint_address_target_name"), "testpod",
         EP_POD_LABELS("1.2.3.4"), M("pod_container_name"), "c1", M("pod_container_image"),
         "c1:latest", M("pod_container_port_name"), "mainport",
         M("pod_container_port_number"), "9000", M("pod_container_port_protocol"), "TCP",
         M("pod_container_init"), "false"),
       L("__address__", "1.2.3.4:9001", EP_POD_LABELS("1.2.3.4"), M("pod_container_name"),
         "c2", M("pod_container_image"), "c2:latest", M("pod_container_port_name"),
         "sideport", M("pod_container_port_number"), "9001",
         M("pod_container_port_protocol"), "TCP", M("pod_container_init"), "false"))},
    {"TestEndpointsDiscoveryUpdate", K8S_ENDPOINTS, {0},
     "{'kind':'Endpoints','metadata':{'name':'testendpoints','namespace':'default'},"
     "'subsets':[{'addresses':[{'ip':'1.2.3.4'}],'ports':[{'name':'testport','port':9000,"
     "'protocol':'TCP'}]},{'addresses':[{'ip':'2.3.4.5'}],'ports':[{'name':'testport',"
     "'port':9001,'protocol':'TCP'}]}]}",
     NULL, "endpoints/default/testendpoints",
     L(M("namespace"), "default", M("endpoints_name"), "testendpoints"),
     T(L("__address__", "1.2.3.4:9000", M("endpoint_port_name"), "testport",
         M("endpoint_port_protocol"), "TCP", M("endpoint_ready"), "true"),
       L(EP_T2))},
    {"TestEndpointsDiscoveryEmptySubsets", K8S_ENDPOINTS, {0},
     "{'kind':'Endpoints','metadata':{'name':'testendpoints','namespace':'default'},"
     "'subsets':[]}",
     NULL, "endpoints/default/testendpoints",
     L(M("namespace"), "default", M("endpoints_name"), "testendpoints"), NULL},
    {"TestEndpointsDiscoveryWithService", K8S_ENDPOINTS, {0}, ENDPOINTS("default"),
     "[" EP_SERVICE("default", "{'app/name':'test'}") "]", "endpoints/default/testendpoints",
     L(M("namespace"), "default", M("endpoints_name"), "testendpoints",
       M("service_label_app_name"), "test", M("service_labelpresent_app_name"), "true",
       M("service_name"), "testendpoints", EP_ANNOTATION),
     T(L(EP_T1), L(EP_T2), L(EP_T3), L(EP_T4))},
    {"TestEndpointsDiscoveryWithServiceUpdate", K8S_ENDPOINTS, {0}, ENDPOINTS("default"),
     "[" EP_SERVICE("default", "{'app/name':'svc','component':'testing'}") "]",
     "endpoints/default/testendpoints",
     L(M("namespace"), "default", M("endpoints_name"), "testendpoints",
       M("service_label_app_name"), "svc", M("service_labelpresent_app_name"), "true",
       M("service_name"), "testendpoints", M("service_label_component"), "testing",
       M("service_labelpresent_component"), "true", EP_ANNOTATION),
     T(L(EP_T1), L(EP_T2), L(EP_T3), L(EP_T4))},
    {"TestEndpointsDiscoveryWithNodeMetadata", K8S_ENDPOINTS, {.attach_node = true},
     ENDPOINTS("default"),
     "[" EP_SERVICE("default", "{'app/name':'test'}") "," NODE("foobar", "", "{'az':'us-east1'}")
     "," NODE("barbaz", "", "{'az':'us-west2'}") "]",
     "endpoints/default/testendpoints",
     L(M("namespace"), "default", M("endpoints_name"), "testendpoints",
       M("service_label_app_name"), "test", M("service_labelpresent_app_name"), "true",
       M("service_name"), "testendpoints", EP_ANNOTATION),
     T(L(EP_T1, M("node_label_az"), "us-east1", M("node_labelpresent_az"), "true",
         M("node_name"), "foobar"),
       L(EP_T2), L(EP_T3),
       L(EP_T4, M("node_label_az"), "us-west2", M("node_labelpresent_az"), "true",
         M("node_name"), "barbaz"))},
    {"TestEndpointsDiscoveryNamespaces/ns1", K8S_ENDPOINTS, {0}, ENDPOINTS("ns1"),
     "[" EP_SERVICE("ns1", "{'app':'app1'}") "," EP_POD("ns2", "4.3.2.1") "]",
     "endpoints/ns1/testendpoints",
     L(M("namespace"), "ns1", M("endpoints_name"), "testendpoints", EP_ANNOTATION,
       M("service_label_app"), "app1", M("service_labelpresent_app"), "true",
       M("service_name"), "testendpoints"),
     T(L(EP_T1), L(EP_T2), L(EP_T3), L(EP_T4))},
    {"TestEndpointsDiscoveryNamespaces/ns2", K8S_ENDPOINTS, {0},
     "{'kind':'Endpoints','metadata':{'name':'testendpoints','namespace':'ns2'},"
     "'subsets':[{'addresses':[{'ip':'4.3.2.1','targetRef':{'kind':'Pod','name':'testpod',"
     "'namespace':'ns2'}}],'ports':[{'name':'testport','port':9000,'protocol':'TCP'}]}]}",
     "[" EP_SERVICE("ns1", "{'app':'app1'}") ","
     "{'kind':'Pod','metadata':{'name':'testpod','namespace':'ns2','uid':'deadbeef'},"
     "'spec':{'nodeName':'testnode','containers':[{'name':'c1','image':'c1:latest','ports':["
     "{'name':'mainport','containerPort':9000,'protocol':'TCP'}]}]},"
     "'status':{'hostIP':'2.3.4.5','podIP':'4.3.2.1'}}]",
     "endpoints/ns2/testendpoints",
     L(M("namespace"), "ns2", M("endpoints_name"), "testendpoints"),
     T(L("__address__", "4.3.2.1:9000", M("endpoint_port_name"), "testport",
         M("endpoint_port_protocol"), "TCP", M("endpoint_ready"), "true",
         M("endpoint_address_target_kind"), "Pod", M("endpoint_address_target_name"), "testpod",
         EP_POD_LABELS("4.3.2.1"), M("pod_container_name"), "c1", M("pod_container_image"),
         "c1:latest", M("pod_container_port_name"), "mainport",
         M("pod_container_port_number"), "9000", M("pod_container_port_protocol"), "TCP",
         M("pod_container_init"), "false"))},
    {"TestEndpointsDiscoveryOwnNamespace", K8S_ENDPOINTS, {0}, ENDPOINTS("own-ns"),
     "[" EP_POD("own-ns", "4.3.2.1") "]", "endpoints/own-ns/testendpoints",
     L(M("namespace"), "own-ns", M("endpoints_name"), "testendpoints", EP_ANNOTATION),
     T(L(EP_T1), L(EP_T2), L(EP_T3), L(EP_T4))},
    {"TestEndpointsDiscoveryUpdatePod", K8S_ENDPOINTS, {0},
     "{'kind':'Endpoints','metadata':{'name':'testendpoints','namespace':'default'},"
     "'subsets':[{'addresses':[{'ip':'4.3.2.1','targetRef':{'kind':'Pod','name':'testpod',"
     "'namespace':'default'}}],'ports':[{'name':'mainport','port':9000,'protocol':'TCP'}]}]}",
     "[{'kind':'Pod','metadata':{'name':'testpod','namespace':'default','uid':'deadbeef'},"
     "'spec':{'nodeName':'testnode','containers':[{'name':'c1','image':'c1:latest','ports':["
     "{'name':'mainport','containerPort':9000,'protocol':'TCP'}]}]},"
     "'status':{'phase':'Running','conditions':[{'type':'Ready','status':'True'}],"
     "'hostIP':'2.3.4.5','podIP':'4.3.2.1'}}]",
     "endpoints/default/testendpoints",
     L(M("namespace"), "default", M("endpoints_name"), "testendpoints"),
     T(L("__address__", "4.3.2.1:9000", M("endpoint_port_name"), "mainport",
         M("endpoint_port_protocol"), "TCP", M("endpoint_ready"), "true",
         M("endpoint_address_target_kind"), "Pod", M("endpoint_address_target_name"), "testpod",
         M("pod_name"), "testpod", M("pod_ip"), "4.3.2.1", M("pod_ready"), "true",
         M("pod_phase"), "Running", M("pod_node_name"), "testnode", M("pod_host_ip"),
         "2.3.4.5", M("pod_container_name"), "c1", M("pod_container_image"), "c1:latest",
         M("pod_container_port_name"), "mainport", M("pod_container_port_number"), "9000",
         M("pod_container_port_protocol"), "TCP", M("pod_uid"), "deadbeef",
         M("pod_container_init"), "false"))},
    {"TestEndpointsDiscoverySidecarContainer", K8S_ENDPOINTS, {0},
     "{'kind':'Endpoints','metadata':{'name':'testsidecar','namespace':'default'},"
     "'subsets':[{'addresses':[{'ip':'4.3.2.1','targetRef':{'kind':'Pod','name':'testpod',"
     "'namespace':'default'}}],'ports':[{'name':'testport','port':9000,'protocol':'TCP'},"
     "{'name':'initport','port':9111,'protocol':'TCP'}]}]}",
     "[{'kind':'Pod','metadata':{'name':'testpod','namespace':'default','uid':'deadbeef'},"
     "'spec':{'nodeName':'testnode','initContainers':[{'name':'ic1','image':'ic1:latest',"
     "'ports':[{'name':'initport','containerPort':1111,'protocol':'TCP'}]},{'name':'ic2',"
     "'image':'ic2:latest','ports':[{'name':'initport','containerPort':9111,'protocol':'TCP'}]}],"
     "'containers':[{'name':'c1','image':'c1:latest','ports':[{'name':'mainport',"
     "'containerPort':9000,'protocol':'TCP'}]}]},'status':{'hostIP':'2.3.4.5',"
     "'podIP':'4.3.2.1'}}]",
     "endpoints/default/testsidecar",
     L(M("endpoints_name"), "testsidecar", M("namespace"), "default"),
     T(L("__address__", "4.3.2.1:9000", M("endpoint_address_target_kind"), "Pod",
         M("endpoint_address_target_name"), "testpod", M("endpoint_port_name"), "testport",
         M("endpoint_port_protocol"), "TCP", M("endpoint_ready"), "true",
         M("pod_container_image"), "c1:latest", M("pod_container_name"), "c1",
         M("pod_container_port_name"), "mainport", M("pod_container_port_number"), "9000",
         M("pod_container_port_protocol"), "TCP", EP_POD_LABELS("4.3.2.1"),
         M("pod_container_init"), "false"),
       L("__address__", "4.3.2.1:9111", M("endpoint_address_target_kind"), "Pod",
         M("endpoint_address_target_name"), "testpod", M("endpoint_port_name"), "initport",
         M("endpoint_port_protocol"), "TCP", M("endpoint_ready"), "true",
         M("pod_container_image"), "ic2:latest", M("pod_container_name"), "ic2",
         M("pod_container_port_name"), "initport", M("pod_container_port_number"), "9111",
         M("pod_container_port_protocol"), "TCP", EP_POD_LABELS("4.3.2.1"),
         M("pod_container_init"), "true"),
       L("__address__", "4.3.2.1:1111", M("pod_container_image"), "ic1:latest",
         M("pod_container_name"), "ic1", M("pod_container_port_name"), "initport",
         M("pod_container_port_number"), "1111", M("pod_container_port_protocol"), "TCP",
         EP_POD_LABELS("4.3.2.1"), M("pod_container_init"), "true"))},
    {"TestEndpointsDiscoveryWithNamespaceMetadata", K8S_ENDPOINTS, {.attach_namespace = true},
     ENDPOINTS("test-ns"),
     "[" NAMESPACE("test-ns", "{'environment':'production','team':'backend'}",
                   "{'owner':'platform','version':'v1.2.3'}") "]",
     "endpoints/test-ns/testendpoints",
     L(M("namespace"), "test-ns", M("namespace_annotation_owner"), "platform",
       M("namespace_annotationpresent_owner"), "true", M("namespace_annotation_version"),
       "v1.2.3", M("namespace_annotationpresent_version"), "true",
       M("namespace_label_environment"), "production", M("namespace_labelpresent_environment"),
       "true", M("namespace_label_team"), "backend", M("namespace_labelpresent_team"), "true",
       M("endpoints_name"), "testendpoints", EP_ANNOTATION),
     T(L(EP_T1), L(EP_T2), L(EP_T3), L(EP_T4))},
    /* (derived: endpoints.go buildEndpoints) a not-ready address of a pod:
     * ready=false, and the pod's other container port is an extra target;
     * attach_node through a Node targetRef when the address has no nodeName. */
    {"notReady pod address, extra port, node by targetRef", K8S_ENDPOINTS,
     {.attach_node = true},
     "{'kind':'Endpoints','metadata':{'name':'e','namespace':'default'},'subsets':[{"
     "'notReadyAddresses':[{'ip':'1.2.3.4','nodeName':'n1','targetRef':{'kind':'Pod',"
     "'name':'testpod','namespace':'default'}}],'addresses':[{'ip':'6.7.8.9','targetRef':{"
     "'kind':'Node','name':'n2'}}],'ports':[{'name':'web','port':9001,'protocol':'UDP'}]}]}",
     "[" EP_POD("default", "1.2.3.4") "," NODE("n1", "10.0.0.1", "{}") ","
     NODE("n2", "10.0.0.2", "{'zone':'b'}") "]",
     "endpoints/default/e", L(M("namespace"), "default", M("endpoints_name"), "e"),
     T(L("__address__", "6.7.8.9:9001", M("endpoint_address_target_kind"), "Node",
         M("endpoint_address_target_name"), "n2", M("endpoint_port_name"), "web",
         M("endpoint_port_protocol"), "UDP", M("endpoint_ready"), "true", M("node_name"), "n2",
         M("node_label_zone"), "b", M("node_labelpresent_zone"), "true"),
       L("__address__", "1.2.3.4:9001", M("endpoint_address_target_kind"), "Pod",
         M("endpoint_address_target_name"), "testpod", M("endpoint_node_name"), "n1",
         M("endpoint_port_name"), "web", M("endpoint_port_protocol"), "UDP",
         M("endpoint_ready"), "false", M("node_name"), "n1", EP_POD_LABELS("1.2.3.4"),
         M("pod_container_name"), "c2", M("pod_container_image"), "c2:latest",
         M("pod_container_port_name"), "sideport", M("pod_container_port_number"), "9001",
         M("pod_container_port_protocol"), "UDP", M("pod_container_init"), "false"),
       L("__address__", "1.2.3.4:9000", EP_POD_LABELS("1.2.3.4"), M("pod_container_name"),
         "c1", M("pod_container_image"), "c1:latest", M("pod_container_port_name"),
         "mainport", M("pod_container_port_number"), "9000",
         M("pod_container_port_protocol"), "TCP", M("pod_container_init"), "false"))},
};

static void test_endpoints(void **state)
{
    (void)state;
    run_cases(endpoints_cases, sizeof endpoints_cases / sizeof *endpoints_cases);
}

/* ---- endpoint slices (endpointslice_test.go) ------------------------------------------------ */

/* makeEndpointSliceV1(ns) */
#define SLICE(ns)                                                                             \
    "{'kind':'EndpointSlice','metadata':{'name':'testendpoints','namespace':'" ns "',"        \
    "'labels':{'kubernetes.io/service-name':'testendpoints'},"                                \
    "'annotations':{'test.annotation':'test'}},'addressType':'IPv4',"                          \
    "'ports':[{'name':'testport','port':9000,'protocol':'TCP','appProtocol':'http'}],"         \
    "'endpoints':[{'addresses':['1.2.3.4'],'conditions':{'ready':true,'serving':true,"         \
    "'terminating':false},'hostname':'testendpoint1','targetRef':{},'nodeName':'foobar',"      \
    "'deprecatedTopology':{'topology':'value'},'zone':'us-east-1a'},"                          \
    "{'addresses':['2.3.4.5'],'conditions':{'ready':true,'serving':true,'terminating':false},"  \
    "'zone':'us-east-1b'},"                                                                   \
    "{'addresses':['3.4.5.6'],'conditions':{'ready':false,'serving':true,'terminating':true}," \
    "'zone':'us-east-1c'},"                                                                   \
    "{'addresses':['4.5.6.7'],'conditions':{'ready':true,'serving':true,'terminating':false}," \
    "'targetRef':{'kind':'Node','name':'barbaz'},'zone':'us-east-1a'}]}"

#define ES_PORT                                                                               \
    M("endpointslice_port"), "9000", M("endpointslice_port_app_protocol"), "http",             \
        M("endpointslice_port_name"), "testport", M("endpointslice_port_protocol"), "TCP"
#define ES_COND(r, s, t)                                                                      \
    M("endpointslice_endpoint_conditions_ready"), r,                                          \
        M("endpointslice_endpoint_conditions_serving"), s,                                    \
        M("endpointslice_endpoint_conditions_terminating"), t
#define ES_T1                                                                                 \
    "__address__", "1.2.3.4:9000", ES_COND("true", "true", "false"),                          \
        M("endpointslice_endpoint_hostname"), "testendpoint1",                                \
        M("endpointslice_endpoint_node_name"), "foobar",                                      \
        M("endpointslice_endpoint_topology_present_topology"), "true",                        \
        M("endpointslice_endpoint_topology_topology"), "value",                               \
        M("endpointslice_endpoint_zone"), "us-east-1a", ES_PORT
#define ES_T2                                                                                 \
    "__address__", "2.3.4.5:9000", ES_COND("true", "true", "false"),                          \
        M("endpointslice_endpoint_zone"), "us-east-1b", ES_PORT
#define ES_T3                                                                                 \
    "__address__", "3.4.5.6:9000", ES_COND("false", "true", "true"),                          \
        M("endpointslice_endpoint_zone"), "us-east-1c", ES_PORT
#define ES_T4                                                                                 \
    "__address__", "4.5.6.7:9000", M("endpointslice_address_target_kind"), "Node",            \
        M("endpointslice_address_target_name"), "barbaz", ES_COND("true", "true", "false"),   \
        M("endpointslice_endpoint_zone"), "us-east-1a", ES_PORT
#define ES_GROUP(ns)                                                                          \
    M("endpointslice_address_type"), "IPv4", M("namespace"), ns, M("endpointslice_name"),     \
        "testendpoints", M("endpointslice_label_kubernetes_io_service_name"), "testendpoints", \
        M("endpointslice_labelpresent_kubernetes_io_service_name"), "true",                   \
        M("endpointslice_annotation_test_annotation"), "test",                                \
        M("endpointslice_annotationpresent_test_annotation"), "true"
#define ES_SERVICE_TEST                                                                       \
    M("service_label_app_name"), "test", M("service_labelpresent_app_name"), "true",          \
        M("service_name"), "testendpoints"
/* A slice in ns with one Pod endpoint at 4.3.2.1, ports given. */
#define POD_SLICE(name, ns, ports, cond)                                                      \
    "{'kind':'EndpointSlice','metadata':{'name':'" name "','namespace':'" ns "'},"            \
    "'addressType':'IPv4','ports':" ports ",'endpoints':[{'addresses':['4.3.2.1'],"            \
    "'targetRef':{'kind':'Pod','name':'testpod','namespace':'" ns "'}" cond "}]}"
#define ES_POD_TARGET(num)                                                                    \
    "__address__", "4.3.2.1:" num, M("endpointslice_address_target_kind"), "Pod",             \
        M("endpointslice_address_target_name"), "testpod", M("endpointslice_port"), num,     \
        M("endpointslice_port_protocol"), "TCP"

static const role_case slice_cases[] = {
    {"TestEndpointSliceDiscoveryBeforeRun", K8S_ENDPOINTSLICE, {0}, SLICE("default"), NULL,
     "endpointslice/default/testendpoints", L(ES_GROUP("default")),
     T(L(ES_T1), L(ES_T2), L(ES_T3), L(ES_T4))},
    {"TestEndpointSliceDiscoveryAdd", K8S_ENDPOINTSLICE, {0},
     POD_SLICE("testendpoints", "default",
               "[{'name':'testport','port':9000,'protocol':'TCP'}]",
               ",'conditions':{'ready':false}"),
     "[" EP_POD("default", "1.2.3.4") "]", "endpointslice/default/testendpoints",
     L(M("endpointslice_address_type"), "IPv4", M("endpointslice_name"), "testendpoints",
       M("namespace"), "default"),
     T(L(ES_POD_TARGET("9000"), M("endpointslice_endpoint_conditions_ready"), "false",
         M("endpointslice_port_name"), "testport", M("pod_container_name"), "c1",
         M("pod_container_image"), "c1:latest", M("pod_container_port_name"), "mainport",
         M("pod_container_port_number"), "9000", M("pod_container_port_protocol"), "TCP",
         EP_POD_LABELS("1.2.3.4"), M("pod_container_init"), "false"),
       L("__address__", "1.2.3.4:9001", M("pod_container_name"), "c2",
         M("pod_container_image"), "c2:latest", M("pod_container_port_name"), "sideport",
         M("pod_container_port_number"), "9001", M("pod_container_port_protocol"), "TCP",
         EP_POD_LABELS("1.2.3.4"), M("pod_container_init"), "false"))},
    {"TestEndpointSliceDiscoveryUpdate", K8S_ENDPOINTSLICE, {0},
     "{'kind':'EndpointSlice','metadata':{'name':'testendpoints','namespace':'default'},"
     "'addressType':'IPv4','ports':[{'name':'testport','port':9000,'protocol':'TCP',"
     "'appProtocol':'http'}],'endpoints':[{'addresses':['1.2.3.4'],'conditions':{'ready':true,"
     "'serving':true,'terminating':false},'hostname':'testendpoint1','targetRef':{},"
     "'nodeName':'foobar','deprecatedTopology':{'topology':'value'},'zone':'us-east-1a'},"
     "{'addresses':['2.3.4.5'],'conditions':{'ready':true,'serving':true,'terminating':false},"
     "'zone':'us-east-1b'}]}",
     NULL, "endpointslice/default/testendpoints",
     L(M("endpointslice_address_type"), "IPv4", M("endpointslice_name"), "testendpoints",
       M("namespace"), "default"),
     T(L(ES_T1), L(ES_T2))},
    {"TestEndpointSliceDiscoveryEmptyEndpoints", K8S_ENDPOINTSLICE, {0},
     "{'kind':'EndpointSlice','metadata':{'name':'testendpoints','namespace':'default',"
     "'labels':{'kubernetes.io/service-name':'testendpoints'},"
     "'annotations':{'test.annotation':'test'}},'addressType':'IPv4',"
     "'ports':[{'name':'testport','port':9000,'protocol':'TCP','appProtocol':'http'}],"
     "'endpoints':[]}",
     NULL, "endpointslice/default/testendpoints", L(ES_GROUP("default")), NULL},
    {"TestEndpointSliceDiscoveryWithService", K8S_ENDPOINTSLICE, {0}, SLICE("default"),
     "[" EP_SERVICE("default", "{'app/name':'test'}") "]",
     "endpointslice/default/testendpoints", L(ES_GROUP("default"), ES_SERVICE_TEST),
     T(L(ES_T1), L(ES_T2), L(ES_T3), L(ES_T4))},
    {"TestEndpointSliceDiscoveryWithServiceUpdate", K8S_ENDPOINTSLICE, {0}, SLICE("default"),
     "[" EP_SERVICE("default", "{'app/name':'svc','component':'testing'}") "]",
     "endpointslice/default/testendpoints",
     L(ES_GROUP("default"), M("service_label_app_name"), "svc", M("service_label_component"),
       "testing", M("service_labelpresent_app_name"), "true",
       M("service_labelpresent_component"), "true", M("service_name"), "testendpoints"),
     T(L(ES_T1), L(ES_T2), L(ES_T3), L(ES_T4))},
    {"TestEndpointsSlicesDiscoveryWithNodeMetadata", K8S_ENDPOINTSLICE, {.attach_node = true},
     SLICE("default"),
     "[" EP_SERVICE("default", "{'app/name':'test'}") "," NODE("foobar", "", "{'az':'us-east1'}")
     "," NODE("barbaz", "", "{'az':'us-west2'}") "]",
     "endpointslice/default/testendpoints", L(ES_GROUP("default"), ES_SERVICE_TEST),
     T(L(ES_T1, M("node_label_az"), "us-east1", M("node_labelpresent_az"), "true",
         M("node_name"), "foobar"),
       L(ES_T2), L(ES_T3),
       L(ES_T4, M("node_label_az"), "us-west2", M("node_labelpresent_az"), "true",
         M("node_name"), "barbaz"))},
    {"TestEndpointSliceDiscoveryNamespaces/ns1", K8S_ENDPOINTSLICE, {0}, SLICE("ns1"),
     "[{'kind':'Service','metadata':{'name':'testendpoints','namespace':'ns1',"
     "'labels':{'app':'app1'}}}]",
     "endpointslice/ns1/testendpoints",
     L(ES_GROUP("ns1"), M("service_label_app"), "app1", M("service_labelpresent_app"), "true",
       M("service_name"), "testendpoints"),
     T(L(ES_T1), L(ES_T2), L(ES_T3), L(ES_T4))},
    {"TestEndpointSliceDiscoveryNamespaces/ns2", K8S_ENDPOINTSLICE, {0},
     POD_SLICE("testendpoints", "ns2", "[{'name':'testport','port':9000,'protocol':'TCP'}]", ""),
     "[{'kind':'Pod','metadata':{'name':'testpod','namespace':'ns2','uid':'deadbeef'},"
     "'spec':{'nodeName':'testnode','containers':[{'name':'c1','image':'c1:latest','ports':["
     "{'name':'mainport','containerPort':9000,'protocol':'TCP'}]}]},"
     "'status':{'hostIP':'2.3.4.5','podIP':'4.3.2.1'}}]",
     "endpointslice/ns2/testendpoints",
     L(M("endpointslice_address_type"), "IPv4", M("endpointslice_name"), "testendpoints",
       M("namespace"), "ns2"),
     T(L(ES_POD_TARGET("9000"), M("endpointslice_port_name"), "testport",
         M("pod_container_name"), "c1", M("pod_container_image"), "c1:latest",
         M("pod_container_port_name"), "mainport", M("pod_container_port_number"), "9000",
         M("pod_container_port_protocol"), "TCP", EP_POD_LABELS("4.3.2.1"),
         M("pod_container_init"), "false"))},
    {"TestEndpointSliceDiscoveryOwnNamespace", K8S_ENDPOINTSLICE, {0}, SLICE("own-ns"),
     "[" EP_POD("own-ns", "4.3.2.1") "]", "endpointslice/own-ns/testendpoints",
     L(ES_GROUP("own-ns")), T(L(ES_T1), L(ES_T2), L(ES_T3), L(ES_T4))},
    {"TestEndpointSliceDiscoverySidecarContainer", K8S_ENDPOINTSLICE, {0},
     POD_SLICE("testsidecar", "default",
               "[{'name':'testport','port':9000,'protocol':'TCP'},"
               "{'name':'initport','port':9111,'protocol':'TCP'}]", ""),
     "[{'kind':'Pod','metadata':{'name':'testpod','namespace':'default','uid':'deadbeef'},"
     "'spec':{'nodeName':'testnode','initContainers':[{'name':'ic1','image':'ic1:latest',"
     "'ports':[{'name':'initport','containerPort':1111,'protocol':'TCP'}]},{'name':'ic2',"
     "'image':'ic2:latest','ports':[{'name':'initport','containerPort':9111,'protocol':'TCP'}]}],"
     "'containers':[{'name':'c1','image':'c1:latest','ports':[{'name':'mainport',"
     "'containerPort':9000,'protocol':'TCP'}]}]},'status':{'hostIP':'2.3.4.5',"
     "'podIP':'4.3.2.1'}}]",
     "endpointslice/default/testsidecar",
     L(M("endpointslice_address_type"), "IPv4", M("endpointslice_name"), "testsidecar",
       M("namespace"), "default"),
     T(L(ES_POD_TARGET("9000"), M("endpointslice_port_name"), "testport",
         M("pod_container_image"), "c1:latest", M("pod_container_name"), "c1",
         M("pod_container_port_name"), "mainport", M("pod_container_port_number"), "9000",
         M("pod_container_port_protocol"), "TCP", EP_POD_LABELS("4.3.2.1"),
         M("pod_container_init"), "false"),
       L(ES_POD_TARGET("9111"), M("endpointslice_port_name"), "initport",
         M("pod_container_image"), "ic2:latest", M("pod_container_name"), "ic2",
         M("pod_container_port_name"), "initport", M("pod_container_port_number"), "9111",
         M("pod_container_port_protocol"), "TCP", EP_POD_LABELS("4.3.2.1"),
         M("pod_container_init"), "true"),
       L("__address__", "4.3.2.1:1111", M("pod_container_image"), "ic1:latest",
         M("pod_container_name"), "ic1", M("pod_container_port_name"), "initport",
         M("pod_container_port_number"), "1111", M("pod_container_port_protocol"), "TCP",
         EP_POD_LABELS("4.3.2.1"), M("pod_container_init"), "true"))},
    {"TestEndpointsSlicesDiscoveryWithNamespaceMetadata", K8S_ENDPOINTSLICE,
     {.attach_namespace = true}, SLICE("test-ns"),
     "[" NAMESPACE("test-ns", "{'service':'web','layer':'frontend'}",
                   "{'contact':'platform','release':'v5.6.7'}") ","
     EP_SERVICE("test-ns", "{'app/name':'test'}") "]",
     "endpointslice/test-ns/testendpoints",
     L(ES_GROUP("test-ns"), ES_SERVICE_TEST, M("namespace_annotation_contact"), "platform",
       M("namespace_annotationpresent_contact"), "true", M("namespace_annotation_release"),
       "v5.6.7", M("namespace_annotationpresent_release"), "true", M("namespace_label_service"),
       "web", M("namespace_labelpresent_service"), "true", M("namespace_label_layer"),
       "frontend", M("namespace_labelpresent_layer"), "true"),
     T(L(ES_T1), L(ES_T2), L(ES_T3), L(ES_T4))},
    {"TestEndpointsSlicesDiscoveryWithUpdatedNamespaceMetadata", K8S_ENDPOINTSLICE,
     {.attach_namespace = true}, SLICE("test-ns"),
     "[" NAMESPACE("test-ns", "{'component':'cache','layer':'backend','region':'us-central'}",
                   "{'contact':'sre','release':'v6.7.8','monitoring':'enabled'}") ","
     EP_SERVICE("test-ns", "{'app/name':'test'}") "]",
     "endpointslice/test-ns/testendpoints",
     L(ES_GROUP("test-ns"), ES_SERVICE_TEST, M("namespace_annotation_contact"), "sre",
       M("namespace_annotationpresent_contact"), "true", M("namespace_annotation_release"),
       "v6.7.8", M("namespace_annotationpresent_release"), "true",
       M("namespace_annotation_monitoring"), "enabled",
       M("namespace_annotationpresent_monitoring"), "true", M("namespace_label_component"),
       "cache", M("namespace_labelpresent_component"), "true", M("namespace_label_layer"),
       "backend", M("namespace_labelpresent_layer"), "true", M("namespace_label_region"),
       "us-central", M("namespace_labelpresent_region"), "true"),
     T(L(ES_T1), L(ES_T2), L(ES_T3), L(ES_T4))},
    /* (derived: endpointslice.go buildEndpointSlice) a port without a
     * number gives the bare address and no port labels; an IPv6 address is
     * bracketed with a port; attach_node by nodeName. */
    {"port without number, IPv6", K8S_ENDPOINTSLICE, {.attach_node = true},
     "{'metadata':{'name':'s6','namespace':'ns'},'addressType':'IPv6','ports':[{'name':'x'},"
     "{'port':443}],'endpoints':[{'addresses':['2001:db8::7',5],'nodeName':'n1'}]}",
     "[" NODE("n1", "10.0.0.1", "{}") "]", "endpointslice/ns/s6",
     L(M("endpointslice_address_type"), "IPv6", M("endpointslice_name"), "s6", M("namespace"),
       "ns"),
     T(L("__address__", "2001:db8::7", M("endpointslice_port_name"), "x",
         M("endpointslice_endpoint_node_name"), "n1", M("node_name"), "n1"),
       L("__address__", "[2001:db8::7]:443", M("endpointslice_port"), "443",
         M("endpointslice_endpoint_node_name"), "n1", M("node_name"), "n1"))},
};

static void test_endpointslice(void **state)
{
    (void)state;
    run_cases(slice_cases, sizeof slice_cases / sizeof *slice_cases);
}

/* ---- nodes (node_test.go) --------------------------------------------------------------------- */

static const role_case node_cases[] = {
    {"TestNodeDiscoveryBeforeStart", K8S_NODE, {0},
     "{'kind':'Node','metadata':{'name':'test','labels':{'test-label':'testvalue'},"
     "'annotations':{'test-annotation':'testannotationvalue'}},'status':{'addresses':["
     "{'type':'InternalIP','address':'1.2.3.4'}],'daemonEndpoints':{'kubeletEndpoint':"
     "{'Port':10250}}}}",
     NULL, "node/test",
     L(M("node_name"), "test", M("node_label_test_label"), "testvalue",
       M("node_labelpresent_test_label"), "true", M("node_annotation_test_annotation"),
       "testannotationvalue", M("node_annotationpresent_test_annotation"), "true"),
     T(L("__address__", "1.2.3.4:10250", "instance", "test", M("node_address_InternalIP"),
         "1.2.3.4"))},
    {"TestNodeDiscoveryAdd", K8S_NODE, {0}, NODE("test1", "1.2.3.4", "{}"), NULL, "node/test1",
     L(M("node_name"), "test1"),
     T(L("__address__", "1.2.3.4:10250", "instance", "test1", M("node_address_InternalIP"),
         "1.2.3.4"))},
    {"TestNodeDiscoveryUpdate", K8S_NODE, {0}, NODE("test0", "1.2.3.4", "{'Unschedulable':'true'}"),
     NULL, "node/test0",
     L(M("node_label_Unschedulable"), "true", M("node_labelpresent_Unschedulable"), "true",
       M("node_name"), "test0"),
     T(L("__address__", "1.2.3.4:10250", "instance", "test0", M("node_address_InternalIP"),
         "1.2.3.4"))},
    /* (derived: node.go nodeLabels, buildNode, nodeAddress) the address by
     * type priority, the first of each type, conditions lowercased,
     * provider ID; the kubelet port from daemonEndpoints. */
    {"address priority, conditions, provider", K8S_NODE, {0},
     "{'kind':'Node','metadata':{'name':'n'},'spec':{'providerID':'aws:///eu-west-1a/i-1'},"
     "'status':{'conditions':[{'type':'Ready','status':'True'},{'type':'MemoryPressure',"
     "'status':'False'},{'type':'example.com/KernelDeadlock','status':'Unknown'}],"
     "'addresses':[{'type':'Hostname','address':'n.local'},{'type':'ExternalIP','address':"
     "'203.0.113.9'},{'type':'ExternalIP','address':'203.0.113.10'},{'type':'InternalDNS',"
     "'address':'n.internal'}],'daemonEndpoints':{'kubeletEndpoint':{'Port':10255}}}}",
     NULL, "node/n",
     L(M("node_name"), "n", M("node_provider_id"), "aws:///eu-west-1a/i-1",
       M("node_condition_ready"), "true", M("node_condition_memorypressure"), "false",
       M("node_condition_example_com_kerneldeadlock"), "unknown"),
     T(L("__address__", "n.internal:10255", "instance", "n", M("node_address_Hostname"),
         "n.local", M("node_address_ExternalIP"), "203.0.113.9", M("node_address_InternalDNS"),
         "n.internal"))},
};

static void test_node(void **state)
{
    (void)state;
    run_cases(node_cases, sizeof node_cases / sizeof *node_cases);
}

/* ---- ingresses (ingress_test.go) ---------------------------------------------------------------- */

/* makeIngress(ns, tls) */
#define INGRESS(ns, tls)                                                                      \
    "{'kind':'Ingress','metadata':{'name':'testingress','namespace':'" ns "',"                \
    "'labels':{'test/label':'testvalue'},'annotations':{'test/annotation':'testannotationvalue'}}," \
    "'spec':{'ingressClassName':'testclass'" tls ",'rules':[{'host':'example.com','http':"     \
    "{'paths':[{'path':'/'},{'path':'/foo'}]}},{'host':'nobackend.example.com','http':{}},"    \
    "{'host':'test.example.com','http':{'paths':[{}]}}]}}"
#define ING_GROUP(ns)                                                                         \
    M("ingress_name"), "testingress", M("namespace"), ns, M("ingress_label_test_label"),      \
        "testvalue", M("ingress_labelpresent_test_label"), "true",                            \
        M("ingress_annotation_test_annotation"), "testannotationvalue",                       \
        M("ingress_annotationpresent_test_annotation"), "true", M("ingress_class_name"),      \
        "testclass"
/* expectedTargetGroups(ns, tls) */
#define ING_TARGETS(s1, s2)                                                                   \
    T(L(M("ingress_scheme"), s1, M("ingress_host"), "example.com", M("ingress_path"), "/",    \
        "__address__", "example.com"),                                                        \
      L(M("ingress_scheme"), s1, M("ingress_host"), "example.com", M("ingress_path"), "/foo", \
        "__address__", "example.com"),                                                        \
      L(M("ingress_scheme"), s2, M("ingress_host"), "test.example.com", "__address__",        \
        "test.example.com", M("ingress_path"), "/"))

static const role_case ingress_cases[] = {
    {"TestIngressDiscoveryAdd", K8S_INGRESS, {0}, INGRESS("default", ""), NULL,
     "ingress/default/testingress", L(ING_GROUP("default")), ING_TARGETS("http", "http")},
    {"TestIngressDiscoveryAddTLS", K8S_INGRESS, {0},
     INGRESS("default", ",'tls':[{'hosts':['example.com','test.example.com']}]"), NULL,
     "ingress/default/testingress", L(ING_GROUP("default")), ING_TARGETS("https", "https")},
    {"TestIngressDiscoveryAddMixed", K8S_INGRESS, {0},
     INGRESS("default", ",'tls':[{'hosts':['example.com']}]"), NULL,
     "ingress/default/testingress", L(ING_GROUP("default")), ING_TARGETS("https", "http")},
    {"expectedTargetGroups(TLSWildcard)", K8S_INGRESS, {0},
     INGRESS("default", ",'tls':[{'hosts':['*.example.com']}]"), NULL,
     "ingress/default/testingress", L(ING_GROUP("default")), ING_TARGETS("http", "https")},
    {"TestIngressDiscoveryNamespaces/ns1", K8S_INGRESS, {0}, INGRESS("ns1", ""), NULL,
     "ingress/ns1/testingress", L(ING_GROUP("ns1")), ING_TARGETS("http", "http")},
    {"TestIngressDiscoveryNamespaces/ns2", K8S_INGRESS, {0}, INGRESS("ns2", ""), NULL,
     "ingress/ns2/testingress", L(ING_GROUP("ns2")), ING_TARGETS("http", "http")},
    {"TestIngressDiscoveryOwnNamespace", K8S_INGRESS, {0}, INGRESS("own-ns", ""), NULL,
     "ingress/own-ns/testingress", L(ING_GROUP("own-ns")), ING_TARGETS("http", "http")},
    {"TestIngressDiscoveryWithNamespaceMetadata", K8S_INGRESS, {.attach_namespace = true},
     INGRESS("test-ns", ""),
     "[" NAMESPACE("test-ns", "{'service':'web','layer':'frontend'}",
                   "{'contact':'platform','release':'v5.6.7'}") "]",
     "ingress/test-ns/testingress",
     L(ING_GROUP("test-ns"), M("namespace_annotation_contact"), "platform",
       M("namespace_annotationpresent_contact"), "true", M("namespace_annotation_release"),
       "v5.6.7", M("namespace_annotationpresent_release"), "true", M("namespace_label_service"),
       "web", M("namespace_labelpresent_service"), "true", M("namespace_label_layer"),
       "frontend", M("namespace_labelpresent_layer"), "true"),
     ING_TARGETS("http", "http")},
    {"TestIngressDiscoveryWithUpdatedNamespaceMetadata", K8S_INGRESS,
     {.attach_namespace = true}, INGRESS("test-ns", ""),
     "[" NAMESPACE("test-ns", "{'component':'cache','layer':'backend','region':'us-central'}",
                   "{'contact':'sre','release':'v6.7.8','monitoring':'enabled'}") "]",
     "ingress/test-ns/testingress",
     L(ING_GROUP("test-ns"), M("namespace_annotation_contact"), "sre",
       M("namespace_annotationpresent_contact"), "true", M("namespace_annotation_release"),
       "v6.7.8", M("namespace_annotationpresent_release"), "true",
       M("namespace_annotation_monitoring"), "enabled",
       M("namespace_annotationpresent_monitoring"), "true", M("namespace_label_component"),
       "cache", M("namespace_labelpresent_component"), "true", M("namespace_label_layer"),
       "backend", M("namespace_labelpresent_layer"), "true", M("namespace_label_region"),
       "us-central", M("namespace_labelpresent_region"), "true"),
     ING_TARGETS("http", "http")},
    /* (derived: ingress.go buildIngress) a rule without an http section is
     * one "/" target; "*" matches a host without dots. */
    {"rule without http, bare wildcard", K8S_INGRESS, {0},
     "{'metadata':{'name':'i','namespace':'ns'},'spec':{'tls':[{'hosts':['*']}],'rules':["
     "{'host':'intranet'},{'host':'a.b'}]}}",
     NULL, "ingress/ns/i", L(M("ingress_name"), "i", M("namespace"), "ns"),
     T(L("__address__", "intranet", M("ingress_scheme"), "https", M("ingress_host"), "intranet",
         M("ingress_path"), "/"),
       L("__address__", "a.b", M("ingress_scheme"), "http", M("ingress_host"), "a.b",
         M("ingress_path"), "/"))},
};

static void test_ingress(void **state)
{
    (void)state;
    run_cases(ingress_cases, sizeof ingress_cases / sizeof *ingress_cases);
}

/* ---- disc_k8s_affected ------------------------------------------------------------------------------- */

typedef struct hits {
    char names[16][64];
    size_t n;
} hits;

static void record_hit(void *ctx, const json_t *obj)
{
    hits *h = ctx;
    assert_true(h->n < 16);
    snprintf(h->names[h->n++], sizeof h->names[0], "%s/%s", disc_k8s_namespace(obj), disc_k8s_name(obj));
}

/* The objects disc_k8s_affected names, "ns/name,ns/name" in store order. */
static char *affected(const json_t *store, k8s_kind role, k8s_kind changed, const char *obj)
{
    static char out[1024];
    json_t *o = J(obj);
    hits h = {.n = 0};
    k8s_lookup lk = {store_get, store_each, (void *)store};
    disc_k8s_affected(role, changed, o, &lk, record_hit, &h);
    out[0] = '\0';
    for (size_t i = 0; i < h.n; i++)
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", i ? "," : "", h.names[i]);
    json_decref(o);
    return out;
}

static void test_affected(void **state)
{
    (void)state;
    json_t *store = J(
        "[" ENDPOINTS("default") ","
        "{'kind':'Endpoints','metadata':{'name':'other','namespace':'default'},'subsets':[{"
        "'notReadyAddresses':[{'ip':'4.3.2.1','targetRef':{'kind':'Pod','name':'testpod',"
        "'namespace':'default'}}],'ports':[{'port':1}]}]},"
        "{'kind':'Endpoints','metadata':{'name':'far','namespace':'ns2'},'subsets':[{"
        "'addresses':[{'ip':'4.3.2.1','nodeName':'foobar','targetRef':{'kind':'Pod',"
        "'name':'testpod','namespace':'ns2'}}]}]}," SLICE("default") ","
        POD_SLICE("podslice", "default", "[]", "") ","
        "{'kind':'EndpointSlice','metadata':{'name':'s2','namespace':'ns2','labels':{"
        "'kubernetes.io/service-name':'testendpoints'}},'endpoints':[{'addresses':['1.1.1.1'],"
        "'nodeName':'barbaz'}]}," POD("default") "," POD("ns2") ","
        "{'kind':'Pod','metadata':{'name':'elsewhere','namespace':'default'},'spec':{"
        "'nodeName':'othernode'}}," SERVICE("default") "," INGRESS("default", "") "]");

    const char *svc = "{'metadata':{'name':'testendpoints','namespace':'default'}}";
    const char *pod = "{'metadata':{'name':'testpod','namespace':'default'}}";
    const char *node_foobar = "{'metadata':{'name':'foobar'}}";
    const char *node_barbaz = "{'metadata':{'name':'barbaz'}}";
    const char *node_test = "{'metadata':{'name':'testnode'}}";
    const char *ns_default = "{'metadata':{'name':'default'}}";

    /* A service: the endpoints of its name; the slices labeled with it, in its namespace. */
    assert_string_equal(affected(store, K8S_ENDPOINTS, K8S_SERVICE, svc),
                        "default/testendpoints");
    assert_string_equal(affected(store, K8S_ENDPOINTSLICE, K8S_SERVICE, svc),
                        "default/testendpoints");
    assert_string_equal(affected(store, K8S_ENDPOINTS, K8S_SERVICE,
                                 "{'metadata':{'name':'nosuch','namespace':'default'}}"),
                        "");
    /* A pod: what points at it, ready or not, in its namespace only. */
    assert_string_equal(affected(store, K8S_ENDPOINTS, K8S_POD, pod), "default/other");
    assert_string_equal(affected(store, K8S_ENDPOINTSLICE, K8S_POD, pod), "default/podslice");
    /* A node: pods on it; endpoints and slices with an address on it, by
     * nodeName or by a Node targetRef, in every namespace. */
    assert_string_equal(affected(store, K8S_POD, K8S_NODE, node_test),
                        "default/testpod,ns2/testpod");
    assert_string_equal(affected(store, K8S_ENDPOINTS, K8S_NODE, node_foobar),
                        "default/testendpoints,ns2/far");
    assert_string_equal(affected(store, K8S_ENDPOINTS, K8S_NODE, node_barbaz),
                        "default/testendpoints");
    assert_string_equal(affected(store, K8S_ENDPOINTSLICE, K8S_NODE, node_barbaz),
                        "default/testendpoints,ns2/s2");
    /* A namespace: everything of the role in it. */
    assert_string_equal(affected(store, K8S_POD, K8S_NAMESPACE, ns_default),
                        "default/testpod,default/elsewhere");
    assert_string_equal(affected(store, K8S_SERVICE, K8S_NAMESPACE, ns_default),
                        "default/testservice");
    assert_string_equal(affected(store, K8S_INGRESS, K8S_NAMESPACE, ns_default),
                        "default/testingress");
    assert_string_equal(affected(store, K8S_ENDPOINTS, K8S_NAMESPACE, ns_default),
                        "default/testendpoints,default/other");
    assert_string_equal(affected(store, K8S_ENDPOINTSLICE, K8S_NAMESPACE, ns_default),
                        "default/testendpoints,default/podslice");
    /* Nothing for the role's own kind, for kinds a role does not depend
     * on, for the node role, or for an object without a name. */
    assert_string_equal(affected(store, K8S_SERVICE, K8S_SERVICE, svc), "");
    assert_string_equal(affected(store, K8S_POD, K8S_SERVICE, svc), "");
    assert_string_equal(affected(store, K8S_SERVICE, K8S_POD, pod), "");
    assert_string_equal(affected(store, K8S_NODE, K8S_NAMESPACE, ns_default), "");
    assert_string_equal(affected(store, K8S_INGRESS, K8S_NODE, node_test), "");
    assert_string_equal(affected(store, K8S_ENDPOINTS, K8S_POD, "{'metadata':{}}"), "");
    assert_string_equal(affected(store, K8S_ENDPOINTS, K8S_POD, "[1]"), "");
    /* No lookup, or one without each: nothing, no crash. */
    json_t *o = J(pod);
    hits h = {.n = 0};
    disc_k8s_affected(K8S_ENDPOINTS, K8S_POD, o, NULL, record_hit, &h);
    k8s_lookup half = {store_get, NULL, store};
    disc_k8s_affected(K8S_ENDPOINTS, K8S_POD, o, &half, record_hit, &h);
    assert_int_equal(h.n, 0);
    json_decref(o);
    json_decref(store);
}

/* ---- the small functions ------------------------------------------------------------------------ */

static void test_kinds_and_roles(void **state)
{
    (void)state;
    static const struct {
        k8s_kind k;
        const char *gv, *resource, *kind;
        bool namespaced;
    } want[] = {
        {K8S_POD, "/api/v1", "pods", "Pod", true},
        {K8S_SERVICE, "/api/v1", "services", "Service", true},
        {K8S_ENDPOINTS, "/api/v1", "endpoints", "Endpoints", true},
        {K8S_ENDPOINTSLICE, "/apis/discovery.k8s.io/v1", "endpointslices", "EndpointSlice", true},
        {K8S_NODE, "/api/v1", "nodes", "Node", false},
        {K8S_INGRESS, "/apis/networking.k8s.io/v1", "ingresses", "Ingress", true},
        {K8S_NAMESPACE, "/api/v1", "namespaces", "Namespace", false},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const k8s_kind_info *ki = disc_k8s_kind_get(want[i].k);
        assert_non_null(ki);
        assert_string_equal(ki->group_version, want[i].gv);
        assert_string_equal(ki->resource, want[i].resource);
        assert_string_equal(ki->kind, want[i].kind);
        assert_int_equal(ki->namespaced, want[i].namespaced);
    }
    assert_null(disc_k8s_kind_get(K8S_KIND_COUNT));
    assert_null(disc_k8s_kind_get((k8s_kind)-1));

    assert_int_equal(disc_k8s_role_kind("pod"), K8S_POD);
    assert_int_equal(disc_k8s_role_kind("service"), K8S_SERVICE);
    assert_int_equal(disc_k8s_role_kind("endpoints"), K8S_ENDPOINTS);
    assert_int_equal(disc_k8s_role_kind("endpointslice"), K8S_ENDPOINTSLICE);
    assert_int_equal(disc_k8s_role_kind("node"), K8S_NODE);
    assert_int_equal(disc_k8s_role_kind("ingress"), K8S_INGRESS);
    assert_int_equal(disc_k8s_role_kind("namespace"), -1);
    assert_int_equal(disc_k8s_role_kind("Pod"), -1);
    assert_int_equal(disc_k8s_role_kind(""), -1);
    assert_int_equal(disc_k8s_role_kind(NULL), -1);

    const unsigned S = 1u << K8S_SERVICE, P = 1u << K8S_POD, N = 1u << K8S_NODE,
                   NS = 1u << K8S_NAMESPACE;
    k8s_role_options none = {0}, node = {.attach_node = true}, ns = {.attach_namespace = true},
                     both = {true, true};
    assert_int_equal(disc_k8s_role_watches(K8S_POD, &none), 0);
    assert_int_equal(disc_k8s_role_watches(K8S_POD, NULL), 0);
    assert_int_equal(disc_k8s_role_watches(K8S_POD, &node), N);
    assert_int_equal(disc_k8s_role_watches(K8S_POD, &both), N | NS);
    assert_int_equal(disc_k8s_role_watches(K8S_ENDPOINTS, &none), S | P);
    assert_int_equal(disc_k8s_role_watches(K8S_ENDPOINTS, &both), S | P | N | NS);
    assert_int_equal(disc_k8s_role_watches(K8S_ENDPOINTSLICE, &node), S | P | N);
    assert_int_equal(disc_k8s_role_watches(K8S_SERVICE, &both), NS);
    assert_int_equal(disc_k8s_role_watches(K8S_INGRESS, &ns), NS);
    assert_int_equal(disc_k8s_role_watches(K8S_INGRESS, &node), 0);
    assert_int_equal(disc_k8s_role_watches(K8S_NODE, &both), 0);
}

static void test_group_source(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(disc_k8s_group_source(K8S_POD, "default", "testpod", buf, sizeof buf), 19);
    assert_string_equal(buf, "pod/default/testpod");
    disc_k8s_group_source(K8S_SERVICE, "ns", "s", buf, sizeof buf);
    assert_string_equal(buf, "svc/ns/s");
    disc_k8s_group_source(K8S_ENDPOINTS, "ns", "e", buf, sizeof buf);
    assert_string_equal(buf, "endpoints/ns/e");
    disc_k8s_group_source(K8S_ENDPOINTSLICE, "ns", "e", buf, sizeof buf);
    assert_string_equal(buf, "endpointslice/ns/e");
    disc_k8s_group_source(K8S_NODE, "", "n", buf, sizeof buf);
    assert_string_equal(buf, "node/n");
    disc_k8s_group_source(K8S_INGRESS, "ns", "i", buf, sizeof buf);
    assert_string_equal(buf, "ingress/ns/i");
    /* TestPodDiscoveryDelete: the source of a deleted pod is built from its key. */
    char small[8];
    assert_int_equal(disc_k8s_group_source(K8S_POD, "default", "testpod", small, sizeof small), 19);
    assert_string_equal(small, "pod/def");
    assert_int_equal(disc_k8s_group_source(K8S_POD, "default", "testpod", NULL, 0), 19);
    assert_int_equal(disc_k8s_group_source(K8S_KIND_COUNT, "a", "b", buf, sizeof buf), 0);
    assert_string_equal(buf, "");
}

static void test_name_namespace(void **state)
{
    (void)state;
    json_t *o = J("{'metadata':{'name':'n','namespace':'ns'}}");
    assert_string_equal(disc_k8s_name(o), "n");
    assert_string_equal(disc_k8s_namespace(o), "ns");
    json_decref(o);
    o = J("{'metadata':{'name':5,'namespace':null}}");
    assert_string_equal(disc_k8s_name(o), "");
    assert_string_equal(disc_k8s_namespace(o), "");
    json_decref(o);
    o = J("{'metadata':'x'}");
    assert_string_equal(disc_k8s_name(o), "");
    json_decref(o);
    assert_string_equal(disc_k8s_name(NULL), "");
    assert_string_equal(disc_k8s_namespace(NULL), "");
}

/* ---- refusals and type mismatches ---------------------------------------------------------------- */

/* Build obj (no lookup); returns the status, the group in *g. */
static int build(k8s_kind role, const char *obj, firn_arena *a, disc_group *g, firn_err *err)
{
    json_t *o = J(obj);
    int rc = disc_k8s_build_group(role, o, NULL, NULL, a, g, err);
    json_decref(o);
    return rc;
}

static void test_refusals(void **state)
{
    (void)state;
    firn_arena *a = firn_arena_new(0);
    disc_group g;
    firn_err err = {0};
    static const struct {
        k8s_kind role;
        const char *obj, *msg;
    } refused[] = {
        {K8S_POD, "{'metadata':{'namespace':'default'},'status':{'podIP':'1.2.3.4'}}",
         "Pod in namespace \"default\": metadata.name: missing, empty or not a string"},
        {K8S_SERVICE, "{'metadata':{'name':'','namespace':'ns'}}",
         "Service in namespace \"ns\": metadata.name: missing, empty or not a string"},
        {K8S_ENDPOINTS, "{'metadata':{'name':7,'namespace':'ns'}}",
         "Endpoints in namespace \"ns\": metadata.name: missing, empty or not a string"},
        {K8S_ENDPOINTSLICE, "{'metadata':'x'}",
         "EndpointSlice in namespace \"\": metadata.name: missing, empty or not a string"},
        {K8S_NODE, "{'status':{}}", "Node: metadata.name: missing, empty or not a string"},
        {K8S_INGRESS, "[1,2]", "Ingress: not a JSON object"},
        {K8S_NAMESPACE, "{'metadata':{'name':'default'}}", "kubernetes: kind 6 is not a role"},
        /* A node with no usable address: Prometheus sends nothing for it. */
        {K8S_NODE, "{'metadata':{'name':'n1'},'status':{'addresses':[{'type':'Weird',"
                   "'address':'x'}]}}",
         "Node n1: status.addresses: no address of type InternalIP, InternalDNS, ExternalIP, "
         "ExternalDNS, LegacyHostIP or Hostname"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        memset(&g, 0xa5, sizeof g);
        assert_int_equal(build(refused[i].role, refused[i].obj, a, &g, &err), FIRN_EINVAL);
        assert_int_equal(err.code, FIRN_EINVAL);
        assert_string_equal(err.msg, refused[i].msg);
        assert_null(g.source);
        assert_int_equal(g.n_targets, 0);
        assert_int_equal(g.n_labels, 0);
    }
    assert_int_equal(disc_k8s_build_group(K8S_POD, NULL, NULL, NULL, a, &g, &err), FIRN_EINVAL);
    firn_arena_free(a);
}

/* The address and labels of target i, as text. */
static char *target_text(const disc_group *g, size_t i)
{
    assert_true(i < g->n_targets);
    return labels_text(g->targets[i].labels, g->targets[i].n_labels);
}

static void test_type_mismatches(void **state)
{
    (void)state;
    firn_arena *a = firn_arena_new(0);
    disc_group g;
    firn_err err = {0};

    /* "containers": 5 reads as no containers: the group, no targets. */
    assert_int_equal(build(K8S_POD,
                           "{'metadata':{'name':'p','namespace':'n'},'spec':{'containers':5},"
                           "'status':{'podIP':'1.2.3.4','conditions':'x'}}",
                           a, &g, &err),
                     0);
    assert_string_equal(g.source, "pod/n/p");
    assert_int_equal(g.n_targets, 0);
    assert_string_equal(firn_labels_get(g.labels, g.n_labels, M("pod_ready")), "unknown");

    /* Ports as a string, as strings, a port number as a string or out of
     * int32 range: absent, Go's zero. */
    assert_int_equal(build(K8S_POD,
                           "{'metadata':{'name':'p','namespace':'n','labels':{'a':1,'b':'2'}},"
                           "'spec':{'containers':[{'name':'c0','ports':'9000'},"
                           "{'name':'c1','ports':['9000',null]},7,{'name':'c2','ports':["
                           "{'containerPort':'9000','name':5},{'containerPort':4294967296},"
                           "{'containerPort':-1}]}]},'status':{'podIP':'1.2.3.4'}}",
                           a, &g, &err),
                     0);
    assert_int_equal(g.n_targets, 5);
    char *t;
    static const char *const want[] = {
        "{__address__=\"1.2.3.4\", __meta_kubernetes_pod_container_init=\"false\", "
        "__meta_kubernetes_pod_container_name=\"c0\"}",
        "{__address__=\"1.2.3.4\", __meta_kubernetes_pod_container_init=\"false\", "
        "__meta_kubernetes_pod_container_name=\"c1\"}",
        "{__address__=\"1.2.3.4:0\", __meta_kubernetes_pod_container_init=\"false\", "
        "__meta_kubernetes_pod_container_name=\"c2\", "
        "__meta_kubernetes_pod_container_port_number=\"0\"}",
        "{__address__=\"1.2.3.4:0\", __meta_kubernetes_pod_container_init=\"false\", "
        "__meta_kubernetes_pod_container_name=\"c2\", "
        "__meta_kubernetes_pod_container_port_number=\"0\"}",
        "{__address__=\"1.2.3.4:18446744073709551615\", "
        "__meta_kubernetes_pod_container_init=\"false\", "
        "__meta_kubernetes_pod_container_name=\"c2\", "
        "__meta_kubernetes_pod_container_port_number=\"18446744073709551615\"}",
    };
    for (size_t i = 0; i < 5; i++) {
        t = target_text(&g, i);
        assert_string_equal(t, want[i]);
        free(t);
    }
    assert_null(firn_labels_get(g.labels, g.n_labels, M("pod_label_a")));
    assert_string_equal(firn_labels_get(g.labels, g.n_labels, M("pod_label_b")), "2");

    /* Endpoints with subsets of the wrong shape: the group, no targets. */
    assert_int_equal(build(K8S_ENDPOINTS,
                           "{'metadata':{'name':'e','namespace':'n'},'subsets':[5,{'ports':{},"
                           "'addresses':[{'ip':'1.1.1.1'}]},{'ports':[{'port':80}],"
                           "'addresses':'x','notReadyAddresses':[3]}]}",
                           a, &g, &err),
                     0);
    assert_int_equal(g.n_targets, 0);
    assert_string_equal(firn_labels_get(g.labels, g.n_labels, M("endpoints_name")), "e");

    /* Service ports a string, a slice with endpoints an object. */
    assert_int_equal(build(K8S_SERVICE, "{'metadata':{'name':'s','namespace':'n'},"
                                        "'spec':{'ports':'80','type':[]}}", a, &g, &err), 0);
    assert_int_equal(g.n_targets, 0);
    assert_int_equal(build(K8S_ENDPOINTSLICE, "{'metadata':{'name':'s','namespace':'n'},"
                                              "'endpoints':{},'ports':[{'port':1}]}", a, &g,
                           &err), 0);
    assert_int_equal(g.n_targets, 0);
    /* An ingress with rules of the wrong types and a path of the wrong type. */
    assert_int_equal(build(K8S_INGRESS, "{'metadata':{'name':'i','namespace':'n'},'spec':{"
                                        "'tls':'x','rules':[1,{'host':'h','http':{'paths':["
                                        "{'path':3},2]}}]}}", a, &g, &err), 0);
    assert_int_equal(g.n_targets, 1);
    t = target_text(&g, 0);
    assert_string_equal(t, "{__address__=\"h\", __meta_kubernetes_ingress_host=\"h\", "
                           "__meta_kubernetes_ingress_path=\"/\", "
                           "__meta_kubernetes_ingress_scheme=\"http\"}");
    free(t);
    firn_arena_free(a);
}

/* A lookup that returns things that are not objects must be survived. */
static const json_t *bad_get(void *ctx, k8s_kind kind, const char *ns, const char *name)
{
    (void)kind;
    (void)ns;
    (void)name;
    return ctx;
}

static void test_bad_lookup(void **state)
{
    (void)state;
    json_t *junk = json_integer(3);
    k8s_lookup lk = {bad_get, NULL, junk};
    json_t *o = J(ENDPOINTS("default"));
    firn_arena *a = firn_arena_new(0);
    disc_group g;
    firn_err err = {0};
    k8s_role_options both = {true, true};
    assert_int_equal(disc_k8s_build_group(K8S_ENDPOINTS, o, &lk, &both, a, &g, &err), 0);
    assert_int_equal(g.n_targets, 4);
    k8s_lookup none = {NULL, NULL, NULL};
    assert_int_equal(disc_k8s_build_group(K8S_ENDPOINTS, o, &none, &both, a, &g, &err), 0);
    assert_int_equal(g.n_targets, 4);
    firn_arena_free(a);
    json_decref(o);
    json_decref(junk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pod),
        cmocka_unit_test(test_service),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_endpointslice),
        cmocka_unit_test(test_node),
        cmocka_unit_test(test_ingress),
        cmocka_unit_test(test_affected),
        cmocka_unit_test(test_kinds_and_roles),
        cmocka_unit_test(test_group_source),
        cmocka_unit_test(test_name_namespace),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_type_mismatches),
        cmocka_unit_test(test_bad_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
