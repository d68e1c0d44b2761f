/* test_config.c -- the YAML config: Parca's and Prometheus's configs load
 * with the right defaults, every error names its line and column, caps
 * hold, and config_scrape_equal sees every field.  Also kubeconfig files
 * (kubeconfig.h): context selection, paths, base64 data, credentials, and
 * every refusal naming its place. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/kubeconfig.h"

/* test_config reads no pprof fixture: fixtures.h is here for temp_dir and
 * remove_tree. */
#ifndef FIRN_FIXTURES_DIR
#define FIRN_FIXTURES_DIR ""
#endif
#include "fixtures.h"

static firn_config *load(const char *yaml)
{
    firn_err err = {0};
    firn_config *cfg = config_load_string(yaml, strlen(yaml), "t.yml", &err);
    if (!cfg)
        fail_msg("unexpected error:\n%s", err.msg);
    return cfg;
}

static const config_profile_type *profile(const config_scrape *sc, const char *name)
{
    for (size_t i = 0; i < sc->n_profile_types; i++)
        if (strcmp(sc->profile_types[i].name, name) == 0)
            return &sc->profile_types[i];
    fail_msg("no profile type %s", name);
    return NULL;
}

static void assert_profile(const config_scrape *sc, const char *name, bool enabled,
                           const char *path, bool delta, int64_t seconds, int64_t timeout_ms)
{
    const config_profile_type *pt = profile(sc, name);
    assert_int_equal(pt->enabled, enabled);
    assert_string_equal(pt->path, path);
    assert_int_equal(pt->delta, delta);
    assert_int_equal(pt->seconds, seconds);
    assert_int_equal(pt->timeout_ms, timeout_ms);
}

/* ---- Parca's configs ------------------------------------------------------ */

/* PARCA.md section 3: the repository's parca.yaml. */
static void test_parca_default_yaml(void **state)
{
    (void)state;
    firn_config *cfg = load("object_storage:\n"
                            "  bucket:\n"
                            "    type: \"FILESYSTEM\"\n"
                            "    config:\n"
                            "      directory: \"./data\"\n"
                            "# scrape_configs:\n"
                            "#   - job_name: \"parca\"\n");
    assert_true(cfg->has_object_storage);
    assert_string_equal(cfg->object_storage_type, "FILESYSTEM");
    assert_int_equal(cfg->n_scrapes, 0);
    assert_int_equal(cfg->scrape_interval_ms, 10000);
    assert_int_equal(cfg->scrape_timeout_ms, 10000);
    config_free(cfg);
}

/* PARCA.md section 3: pkg/config/config_test.go TestLoadComplex. */
static const char PARCA_COMPLEX[] =
    "object_storage:\n"
    "  bucket:\n"
    "    type: \"FILESYSTEM\"\n"
    "    config:\n"
    "      directory: \"./tmp\"\n"
    "scrape_configs:\n"
    "  - job_name: 'parca'\n"
    "    scrape_interval: 5s            # timeout becomes 8s\n"
    "    static_configs:\n"
    "      - targets: [ 'localhost:10902' ]\n"
    "    profiling_config:\n"
    "      pprof_config:\n"
    "        memory:\n"
    "          enabled: true\n"
    "          path: /parca/debug/pprof/allocs\n"
    "        fgprof:\n"
    "          enabled: true\n"
    "          path: /debug/fgprof\n"
    "  - job_name: 'path-prefix-and-seconds'\n"
    "    scheme: https\n"
    "    params: { key_1: ['value1'] }\n"
    "    profiling_config:\n"
    "      path_prefix: /test/prefix\n"
    "      pprof_config:\n"
    "        fgprof:\n"
    "          enabled: true\n"
    "          path: /debug/fgprof\n"
    "          delta: true\n"
    "          seconds: 3\n"
    "    relabel_configs:\n"
    "      - source_labels: [__address__]\n"
    "        target_label: instance\n";

static void test_parca_complex(void **state)
{
    (void)state;
    firn_config *cfg = load(PARCA_COMPLEX);
    assert_true(cfg->has_object_storage);
    assert_int_equal(cfg->n_scrapes, 2);

    const config_scrape *a = &cfg->scrapes[0];
    assert_string_equal(a->job_name, "parca");
    assert_int_equal(a->interval_ms, 5000);
    assert_int_equal(a->timeout_ms, 5000);   /* min(global 10s, interval) */
    assert_string_equal(a->scheme, "http");
    assert_true(a->honor_timestamps);
    assert_false(a->honor_labels);
    assert_int_equal(a->n_static_configs, 1);
    assert_int_equal(a->static_configs[0].n_targets, 1);
    assert_string_equal(a->static_configs[0].targets[0], "localhost:10902");
    /* built-ins first in Parca's order, then custom ones */
    assert_int_equal(a->n_profile_types, 6);
    const char *order[] = {"memory", "block", "goroutine", "mutex", "process_cpu", "fgprof"};
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(a->profile_types[i].name, order[i]);
    assert_profile(a, "memory", true, "/parca/debug/pprof/allocs", false, 0, 5000);
    assert_profile(a, "block", true, "/debug/pprof/block", false, 0, 5000);
    assert_profile(a, "goroutine", true, "/debug/pprof/goroutine", false, 0, 5000);
    assert_profile(a, "mutex", true, "/debug/pprof/mutex", false, 0, 5000);
    /* seconds = interval - 1s; the CPU request gets seconds + 3s */
    assert_profile(a, "process_cpu", true, "/debug/pprof/profile", true, 4, 7000);
    assert_profile(a, "fgprof", true, "/debug/fgprof", false, 0, 5000);

    const config_scrape *b = &cfg->scrapes[1];
    assert_string_equal(b->job_name, "path-prefix-and-seconds");
    assert_int_equal(b->interval_ms, 10000);
    assert_int_equal(b->timeout_ms, 10000);
    assert_string_equal(b->scheme, "https");
    assert_int_equal(b->n_params, 1);
    assert_string_equal(b->params[0].name, "key_1");
    assert_int_equal(b->params[0].n_values, 1);
    assert_string_equal(b->params[0].values[0], "value1");
    assert_string_equal(b->path_prefix, "/test/prefix");
    assert_profile(b, "memory", true, "/test/prefix/debug/pprof/allocs", false, 0, 10000);
    assert_profile(b, "process_cpu", true, "/test/prefix/debug/pprof/profile", true, 9, 12000);
    assert_profile(b, "fgprof", true, "/test/prefix/debug/fgprof", true, 3, 10000);
    assert_int_equal(b->n_relabel_configs, 1);
    assert_int_equal(b->relabel_configs[0].action, FIRN_RELABEL_REPLACE);
    assert_string_equal(b->relabel_configs[0].source_labels[0], "__address__");
    assert_string_equal(b->relabel_configs[0].target_label, "instance");
    assert_non_null(b->relabel_configs[0].compiled);
    config_free(cfg);
}

/* Parca merges its defaults into a partial entry; enabled: false disables. */
static void test_parca_profile_merge(void **state)
{
    (void)state;
    firn_config *cfg = load("scrape_configs:\n"
                            "  - job_name: a\n"
                            "    scrape_interval: 30s\n"
                            "    scrape_timeout: 45s\n"
                            "    profiling_config:\n"
                            "      pprof_config:\n"
                            "        memory: {enabled: false}\n"
                            "        process_cpu: {seconds: 30}\n"
                            "        block:\n"
                            "        mutex: {delta: true}\n"
                            "        heap: {path: /debug/pprof/heap, enabled: no,\n"
                            "               keep_sample_type: [{type: inuse_space, unit: bytes}]}\n");
    const config_scrape *sc = &cfg->scrapes[0];
    assert_int_equal(sc->timeout_ms, 45000);   /* Parca: timeout > interval is fine */
    assert_profile(sc, "memory", false, "/debug/pprof/allocs", false, 0, 45000);
    assert_profile(sc, "process_cpu", true, "/debug/pprof/profile", true, 30, 45000);
    assert_profile(sc, "block", true, "/debug/pprof/block", false, 0, 45000);
    assert_profile(sc, "mutex", true, "/debug/pprof/mutex", true, 29, 45000);
    assert_profile(sc, "heap", false, "/debug/pprof/heap", false, 0, 45000);
    const config_profile_type *heap = profile(sc, "heap");
    assert_int_equal(heap->n_keep_sample_types, 1);
    assert_string_equal(heap->keep_sample_types[0].type, "inuse_space");
    assert_string_equal(heap->keep_sample_types[0].unit, "bytes");
    config_free(cfg);
}

/* process_cpu seconds never drops below 1, and the CPU timeout covers it. */
static void test_cpu_seconds_small_interval(void **state)
{
    (void)state;
    firn_config *cfg = load("global: {scrape_interval: 1s}\n"
                            "scrape_configs: [{job_name: a}, {job_name: b, scrape_interval: 1m}]\n");
    assert_int_equal(cfg->scrape_timeout_ms, 1000);   /* min(10s, 1s) */
    assert_profile(&cfg->scrapes[0], "process_cpu", true, "/debug/pprof/profile", true, 1, 4000);
    assert_int_equal(cfg->scrapes[1].timeout_ms, 1000);   /* min(global timeout, 1m) */
    assert_profile(&cfg->scrapes[1], "process_cpu", true, "/debug/pprof/profile", true, 59, 62000);
    config_free(cfg);
}

/* ---- Prometheus's scrape config, every field ------------------------------ */

static const char FULL[] =
    "global:\n"
    "  scrape_interval: 15s\n"
    "  scrape_timeout: 12s\n"
    "  external_labels: {region: eu, cluster: c1}\n"
    "scrape_configs:\n"
    "  - job_name: api\n"
    "    scrape_interval: 20s\n"
    "    scrape_timeout: 5s\n"
    "    scheme: https\n"
    "    params:\n"
    "      z: [1]\n"
    "      a: [x, y]\n"
    "    honor_labels: true\n"
    "    honor_timestamps: false\n"
    "    basic_auth:\n"
    "      username: user\n"
    "      password_file: /etc/pw\n"
    "    tls_config:\n"
    "      ca_file: /ca.pem\n"
    "      cert_file: /c.pem\n"
    "      key_file: /k.pem\n"
    "      server_name: api.internal\n"
    "      insecure_skip_verify: true\n"
    "    sample_limit: 1000\n"
    "    target_limit: 50\n"
    "    label_limit: 30\n"
    "    body_size_limit: 10MB\n"
    "    static_configs:\n"
    "      - targets: ['10.0.0.1:6060', '10.0.0.2:6060']\n"
    "        labels: {zone: b, env: prod}\n"
    "      - targets: []\n"
    "    file_sd_configs:\n"
    "      - files: ['/etc/firn/*.json', 'targets.yml']\n"
    "      - files: [a.yaml]\n"
    "        refresh_interval: 1m\n"
    "    dns_sd_configs:\n"
    "      - names: [_pprof._tcp.example.com]\n"
    "      - names: [api.example.com]\n"
    "        type: a\n"
    "        port: 6060\n"
    "        refresh_interval: 10s\n"
    "    kubernetes_sd_configs:\n"
    "      - role: pod\n"
    "        namespaces: {own_namespace: true, names: [default]}\n"
    "        selectors: [{role: pod, label: 'app=x', field: 'spec.nodeName=n1'}, {role: node}]\n"
    "        attach_metadata: {node: true}\n"
    "      - role: endpoints\n"
    "        api_server: https://k8s:6443\n"
    "        bearer_token_file: /var/run/token\n"
    "        tls_config: {ca_file: /k8s-ca.pem}\n"
    "    relabel_configs:\n"
    "      - source_labels: [__meta_kubernetes_pod_annotation_firn_scrape]\n"
    "        action: keep\n"
    "        regex: 'true'\n"
    "      - source_labels: [a, b]\n"
    "        separator: '-'\n"
    "        regex: (.+)-(.+)\n"
    "        target_label: ab\n"
    "        replacement: $2$1\n"
    "      - action: HashMod\n"
    "        source_labels: [__address__]\n"
    "        modulus: 8\n"
    "        target_label: __tmp_shard\n"
    "      - action: labelmap\n"
    "        regex: __meta_kubernetes_pod_label_(.+)\n"
    "  - job_name: other\n"
    "    bearer_token: secret\n";

static void test_full_prometheus(void **state)
{
    (void)state;
    firn_config *cfg = load(FULL);
    assert_int_equal(cfg->scrape_interval_ms, 15000);
    assert_int_equal(cfg->scrape_timeout_ms, 12000);
    assert_int_equal(cfg->n_external_labels, 2);
    assert_string_equal(cfg->external_labels[0].name, "cluster");
    assert_string_equal(cfg->external_labels[1].value, "eu");
    assert_int_equal(cfg->n_scrapes, 2);

    const config_scrape *sc = config_scrape_find(cfg, "api");
    assert_ptr_equal(sc, &cfg->scrapes[0]);
    assert_int_equal(sc->interval_ms, 20000);
    assert_int_equal(sc->timeout_ms, 5000);
    assert_string_equal(sc->scheme, "https");
    assert_int_equal(sc->n_params, 2);
    assert_string_equal(sc->params[0].name, "a");   /* sorted */
    assert_int_equal(sc->params[0].n_values, 2);
    assert_string_equal(sc->params[0].values[1], "y");
    assert_string_equal(sc->params[1].values[0], "1");
    assert_true(sc->honor_labels);
    assert_false(sc->honor_timestamps);
    assert_true(sc->http.basic_auth.set);
    assert_string_equal(sc->http.basic_auth.username, "user");
    assert_null(sc->http.basic_auth.password);
    assert_string_equal(sc->http.basic_auth.password_file, "/etc/pw");
    assert_false(sc->http.authorization.set);
    assert_string_equal(sc->http.tls.ca_file, "/ca.pem");
    assert_string_equal(sc->http.tls.cert_file, "/c.pem");
    assert_string_equal(sc->http.tls.key_file, "/k.pem");
    assert_string_equal(sc->http.tls.server_name, "api.internal");
    assert_true(sc->http.tls.insecure_skip_verify);
    assert_int_equal(sc->sample_limit, 1000);
    assert_int_equal(sc->target_limit, 50);
    assert_int_equal(sc->label_limit, 30);
    assert_int_equal(sc->body_size_limit, 10u << 20);

    assert_int_equal(sc->n_static_configs, 2);
    assert_int_equal(sc->static_configs[0].n_targets, 2);
    assert_string_equal(sc->static_configs[0].targets[1], "10.0.0.2:6060");
    assert_int_equal(sc->static_configs[0].n_labels, 2);
    assert_string_equal(sc->static_configs[0].labels[0].name, "env");
    assert_string_equal(sc->static_configs[0].labels[1].value, "b");
    assert_int_equal(sc->static_configs[1].n_targets, 0);

    assert_int_equal(sc->n_file_sd, 2);
    assert_int_equal(sc->file_sd[0].n_files, 2);
    assert_int_equal(sc->file_sd[0].refresh_interval_ms, 5 * 60000);
    assert_int_equal(sc->file_sd[1].refresh_interval_ms, 60000);

    assert_int_equal(sc->n_dns_sd, 2);
    assert_string_equal(sc->dns_sd[0].type, "SRV");
    assert_int_equal(sc->dns_sd[0].port, 0);
    assert_int_equal(sc->dns_sd[0].refresh_interval_ms, 30000);
    assert_string_equal(sc->dns_sd[1].type, "A");
    assert_int_equal(sc->dns_sd[1].port, 6060);
    assert_int_equal(sc->dns_sd[1].refresh_interval_ms, 10000);

    assert_int_equal(sc->n_kubernetes_sd, 2);
    const config_kubernetes_sd *k = &sc->kubernetes_sd[0];
    assert_string_equal(k->role, "pod");
    assert_null(k->api_server);
    assert_true(k->own_namespace);
    assert_int_equal(k->n_namespaces, 1);
    assert_int_equal(k->n_selectors, 2);
    assert_string_equal(k->selectors[0].label, "app=x");
    assert_string_equal(k->selectors[0].field, "spec.nodeName=n1");
    assert_null(k->selectors[1].label);
    assert_true(k->attach_node);
    assert_false(k->attach_namespace);
    k = &sc->kubernetes_sd[1];
    assert_string_equal(k->api_server, "https://k8s:6443");
    assert_true(k->http.authorization.set);
    assert_string_equal(k->http.authorization.type, "Bearer");
    assert_string_equal(k->http.authorization.credentials_file, "/var/run/token");
    assert_string_equal(k->http.tls.ca_file, "/k8s-ca.pem");

    assert_int_equal(sc->n_relabel_configs, 4);
    assert_int_equal(sc->relabel_configs[0].action, FIRN_RELABEL_KEEP);
    assert_string_equal(sc->relabel_configs[0].regex, "true");
    assert_string_equal(sc->relabel_configs[1].separator, "-");
    assert_string_equal(sc->relabel_configs[1].replacement, "$2$1");
    assert_int_equal(sc->relabel_configs[2].action, FIRN_RELABEL_HASHMOD);
    assert_int_equal(sc->relabel_configs[2].modulus, 8);
    assert_int_equal(sc->relabel_configs[3].action, FIRN_RELABEL_LABELMAP);
    /* the relabel rules work: run them on a discovered target */
    firn_label in[] = {{"__address__", "10.0.0.1:6060"},
                       {"__meta_kubernetes_pod_annotation_firn_scrape", "true"},
                       {"__meta_kubernetes_pod_label_app", "api"},
                       {"a", "A"},
                       {"b", "B"}};
    firn_arena *arena = firn_arena_new(0);
    firn_label *out;
    size_t n_out;
    firn_err err = {0};
    assert_int_equal(firn_relabel_process(sc->relabel_configs, sc->n_relabel_configs, in, 5,
                                          arena, &out, &n_out, &err),
                     1);
    assert_string_equal(firn_labels_get(out, n_out, "ab"), "BA");
    assert_string_equal(firn_labels_get(out, n_out, "app"), "api");
    assert_non_null(firn_labels_get(out, n_out, "__tmp_shard"));
    firn_arena_free(arena);

    /* every profile type is on by default */
    assert_int_equal(sc->n_profile_types, 5);
    assert_profile(sc, "process_cpu", true, "/debug/pprof/profile", true, 19, 22000);

    const config_scrape *o = &cfg->scrapes[1];
    assert_int_equal(o->interval_ms, 15000);
    assert_int_equal(o->timeout_ms, 12000);
    assert_true(o->http.authorization.set);   /* bearer_token becomes authorization */
    assert_string_equal(o->http.authorization.type, "Bearer");
    assert_string_equal(o->http.authorization.credentials, "secret");
    assert_null(config_scrape_find(cfg, "nope"));
    config_free(cfg);
}

/* YAML details: anchors, YAML 1.1 booleans, explicit nulls. */
/* Rules and alerting: rule_files, evaluation_interval, alerting. */
static void test_rules_and_alerting(void **state)
{
    (void)state;
    firn_config *cfg = load("global: {evaluation_interval: 30s, external_labels: {region: eu}}\n"
                            "rule_files: [rules/*.yml, /etc/firn/x.yml]\n"
                            "alerting:\n"
                            "  alert_relabel_configs: [{action: labeldrop, regex: replica}]\n"
                            "  alertmanagers:\n"
                            "  - static_configs: [{targets: ['127.0.0.1:9093', 'b:9093']}]\n"
                            "    path_prefix: /am\n    timeout: 2s\n    scheme: https\n"
                            "    basic_auth: {username: u, password: p}\n"
                            "  - static_configs: [{targets: ['c:9093']}]\n"
                            "  - file_sd_configs: [{files: [am/*.json]}]\n"
                            "    dns_sd_configs: [{names: [am.example], type: A, port: 9093}]\n"
                            "  - kubernetes_sd_configs: [{role: pod, api_server: 'http://k:1'}]\n"
                            "    static_configs: [{targets: ['http://am:9093/']}]\n"
                            "    relabel_configs:\n"
                            "    - {source_labels: [__meta_kubernetes_pod_container_port_name],"
                            " action: keep, regex: web}\n");
    assert_int_equal(cfg->evaluation_interval_ms, 30000);
    assert_int_equal(cfg->n_rule_files, 2);
    assert_string_equal(cfg->rule_files[0], "rules/*.yml");
    assert_int_equal(cfg->n_alert_relabel_configs, 1);
    assert_int_equal(cfg->n_alertmanagers, 4);
    /* relabel_configs and kubernetes_sd_configs; with rules, a static
     * target may hold '/' (relabeling may fix it up, as Prometheus) */
    const config_alertmanager *k = &cfg->alertmanagers[3];
    assert_int_equal(k->n_kubernetes_sd, 1);
    assert_string_equal(k->kubernetes_sd[0].role, "pod");
    assert_string_equal(k->kubernetes_sd[0].api_server, "http://k:1");
    assert_int_equal(k->n_relabel_configs, 1);
    assert_int_equal(k->relabel_configs[0].action, FIRN_RELABEL_KEEP);
    assert_non_null(k->relabel_configs[0].compiled);
    assert_string_equal(k->static_configs[0].targets[0], "http://am:9093/");
    const config_alertmanager *a = &cfg->alertmanagers[0], *b = &cfg->alertmanagers[1];
    const config_alertmanager *c = &cfg->alertmanagers[2];
    assert_int_equal(c->n_file_sd, 1);
    assert_string_equal(c->file_sd[0].files[0], "am/*.json");
    assert_int_equal(c->n_dns_sd, 1);
    assert_string_equal(c->dns_sd[0].type, "A");
    assert_int_equal(c->dns_sd[0].port, 9093);
    assert_int_equal(a->n_static_configs, 1);
    assert_int_equal(a->static_configs[0].n_targets, 2);
    assert_string_equal(a->path_prefix, "/am");
    assert_string_equal(a->scheme, "https");
    assert_int_equal(a->timeout_ms, 2000);
    assert_true(a->http.basic_auth.set);
    /* Prometheus's defaults */
    assert_string_equal(b->scheme, "http");
    assert_string_equal(b->path_prefix, "/");
    assert_int_equal(b->timeout_ms, 10000);
    config_free(cfg);
    cfg = load("scrape_configs: []\n");
    assert_int_equal(cfg->evaluation_interval_ms, 60000);
    assert_int_equal(cfg->n_rule_files, 0);
    assert_int_equal(cfg->n_remote_writes, 0);
    config_free(cfg);
}

/* remote_write: the keys firn takes and Prometheus 2.42's defaults. */
static void test_remote_write(void **state)
{
    (void)state;
    firn_config *cfg = load("remote_write:\n"
                            "  - url: https://mimir:9009/api/v1/push\n"
                            "    name: mimir\n    remote_timeout: 5s\n"
                            "    headers: {X-Scope-OrgID: team-a, B-Header: b}\n"
                            "    authorization: {credentials: tok}\n"
                            "    write_relabel_configs: [{source_labels: [__name__], "
                            "regex: 'job:.*', action: keep}]\n"
                            "    queue_config: {capacity: 100, max_samples_per_send: 10, "
                            "batch_send_deadline: 2s, min_backoff: 1s, max_backoff: 8s}\n"
                            "  - url: http://127.0.0.1:9090/api/v1/write\n");
    assert_int_equal(cfg->n_remote_writes, 2);
    const config_remote_write *a = &cfg->remote_writes[0], *b = &cfg->remote_writes[1];
    assert_string_equal(a->url, "https://mimir:9009/api/v1/push");
    assert_string_equal(a->name, "mimir");
    assert_int_equal(a->remote_timeout_ms, 5000);
    assert_int_equal(a->n_headers, 2);   /* sorted by name */
    assert_string_equal(a->headers[0].name, "B-Header");
    assert_string_equal(a->headers[1].name, "X-Scope-OrgID");
    assert_string_equal(a->headers[1].value, "team-a");
    assert_true(a->http.authorization.set);
    assert_string_equal(a->http.authorization.type, "Bearer");
    assert_int_equal(a->n_write_relabel_configs, 1);
    assert_int_equal(a->capacity, 100);
    assert_int_equal(a->max_samples_per_send, 10);
    assert_int_equal(a->batch_send_deadline_ms, 2000);
    assert_int_equal(a->min_backoff_ms, 1000);
    assert_int_equal(a->max_backoff_ms, 8000);
    /* Prometheus 2.42's DefaultRemoteWriteConfig / DefaultQueueConfig */
    assert_string_equal(b->name, "");
    assert_int_equal(b->remote_timeout_ms, 30000);
    assert_int_equal(b->n_headers, 0);
    assert_int_equal(b->capacity, 2500);
    assert_int_equal(b->max_samples_per_send, 500);
    assert_int_equal(b->batch_send_deadline_ms, 5000);
    assert_int_equal(b->min_backoff_ms, 30);
    assert_int_equal(b->max_backoff_ms, 5000);
    /* the credentials never show in the served configuration */
    assert_null(strstr(cfg->yaml, "tok"));
    assert_non_null(strstr(cfg->yaml, "<secret>"));
    /* a copy for the rule engine keeps them (it sends them) */
    firn_err err = {0};
    firn_config *copy = config_copy(cfg, &err);
    assert_non_null(copy);
    assert_string_equal(copy->remote_writes[0].http.authorization.credentials, "tok");
    assert_string_equal(copy->source, cfg->source);
    config_free(copy);
    config_free(cfg);
}

static void test_yaml_anchors_and_nulls(void **state)
{
    (void)state;
    firn_config *cfg = load("scrape_configs:\n"
                            "  - job_name: a\n"
                            "    static_configs: &targets\n"
                            "      - targets: ['h:1']\n"
                            "    honor_labels: yes\n"
                            "    relabel_configs:\n"
                            "      - source_labels: [x]\n"
                            "        regex:\n"
                            "        action: keep\n"
                            "  - job_name: b\n"
                            "    static_configs: *targets\n"
                            "    honor_labels: Off\n"
                            "    params:\n"
                            "    file_sd_configs: ~\n");
    assert_int_equal(cfg->n_scrapes, 2);
    assert_true(cfg->scrapes[0].honor_labels);
    assert_false(cfg->scrapes[1].honor_labels);
    assert_int_equal(cfg->scrapes[1].n_static_configs, 1);
    assert_string_equal(cfg->scrapes[1].static_configs[0].targets[0], "h:1");
    /* an explicit null regex is the empty regex, not the default */
    assert_true(cfg->scrapes[0].relabel_configs[0].has_regex);
    assert_string_equal(cfg->scrapes[0].relabel_configs[0].regex, "");
    config_free(cfg);
}

static void test_empty_documents(void **state)
{
    (void)state;
    const char *docs[] = {"", "# nothing\n", "---\n", "~\n", "{}\n", "scrape_configs:\n"};
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        firn_config *cfg = load(docs[i]);
        assert_int_equal(cfg->n_scrapes, 0);
        assert_int_equal(cfg->scrape_interval_ms, 10000);
        config_free(cfg);
    }
}

static void test_body_size_units(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        uint64_t want;
    } cases[] = {
        {"0", 0}, {"100B", 100}, {"1KB", 1024}, {"1KiB", 1024}, {"1.5MB", 1572864},
        {"1GB512MB", (1ull << 30) + (512ull << 20)}, {"2TiB", 2ull << 40},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char yaml[200];
        snprintf(yaml, sizeof yaml, "scrape_configs: [{job_name: a, body_size_limit: %s}]\n",
                 cases[i].in);
        firn_config *cfg = load(yaml);
        assert_int_equal(cfg->scrapes[0].body_size_limit, cases[i].want);
        config_free(cfg);
    }
}

/* ---- errors --------------------------------------------------------------- */

static const struct {
    const char *what;
    const char *yaml;
    const char *want;   /* the first error line */
} ERRORS[] = {
    {"unknown top-level key",
     "global:\n  scrape_interval: 15s\nremote_read: []\n",
     "t.yml:3:1: remote_read: unknown field in the top level"},
    {"remote_write without url",
     "remote_write:\n  - name: a\n",
     "t.yml:2:5: url: url for remote_write is empty"},
    {"remote_write: an Authorization header",
     "remote_write:\n  - url: http://h/w\n    headers: {Authorization: x}\n",
     "t.yml:3:15: headers: authorization header must be changed via the basic_auth, "
     "authorization, oauth2, or sigv4 parameter"},
    {"remote_write: a reserved header",
     "remote_write:\n  - url: http://h/w\n    headers: {User-Agent: x}\n",
     "t.yml:3:15: headers: User-Agent is a reserved header. It must not be changed"},
    {"remote_write: two entries with one name",
     "remote_write:\n  - {url: 'http://h/a', name: x}\n  - {url: 'http://h/b', name: x}\n",
     "t.yml:3:5: name: found multiple remote write configs with job name \"x\""},
    {"remote_write: the same URL twice, unnamed",
     "remote_write:\n  - {url: 'http://h/a'}\n  - {url: 'http://h/a'}\n",
     "t.yml:3:5: url: duplicate remote write configs are not allowed, found duplicate for "
     "URL: http://h/a"},
    {"remote_write: a shard setting firn does not have",
     "remote_write:\n  - url: http://h/w\n    queue_config: {max_shards: 4}\n",
     "t.yml:3:20: max_shards: unknown field in queue_config"},
    {"remote_write: capacity 0",
     "remote_write:\n  - url: http://h/w\n    queue_config: {capacity: 0}\n",
     "t.yml:3:30: capacity: must be between 1 and 10000000"},
    {"remote_write: not http",
     "remote_write:\n  - url: ftp://h/w\n",
     "t.yml:2:10: url: unsupported scheme \"ftp\": http or https"},
    {"remote_write: credentials in the URL",
     "remote_write:\n  - url: http://u:hunter2@h/w\n",
     "t.yml:2:10: url: credentials in the URL are refused (use basic_auth or authorization, "
     "which are kept secret)"},
    {"unknown global key",
     "global:\n  query_log_file: q.log\n",
     "t.yml:2:3: query_log_file: unknown field in global"},
    {"unknown scrape key",
     "scrape_configs:\n  - job_name: a\n    metrics_path: /x\n",
     "t.yml:3:5: metrics_path: unknown field in scrape_config"},
    {"duplicate key",
     "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_interval: 6s\n",
     "t.yml:4:5: scrape_interval: duplicate field in scrape_config (first set at 3:5)"},
    {"duplicate top-level key",
     "scrape_configs: []\nscrape_configs: []\n",
     "t.yml:2:1: scrape_configs: duplicate field in the top level (first set at 1:1)"},
    {"duplicate job",
     "scrape_configs:\n  - job_name: a\n  - job_name: a\n",
     "t.yml:3:15: job_name: found multiple scrape configs with job name \"a\""},
    {"missing job name",
     "scrape_configs:\n  - scrape_interval: 5s\n",
     "t.yml:2:5: job_name: job_name is empty"},
    {"bad duration",
     "scrape_configs:\n  - job_name: a\n    scrape_interval: 1x\n",
     "t.yml:3:22: scrape_interval: not a valid duration string: \"1x\""},
    {"global timeout > interval",
     "global:\n  scrape_interval: 5s\n  scrape_timeout: 10s\n",
     "t.yml:3:19: scrape_timeout: global scrape timeout greater than scrape interval "
     "(10s > 5s)"},
    {"bad relabel action",
     "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: frobnicate\n",
     "t.yml:4:17: action: unknown relabel action \"frobnicate\""},
    {"empty relabel action",
     "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: ''\n",
     "t.yml:4:17: action: relabel action cannot be empty"},
    {"relabel validation error",
     "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - source_labels: [a]\n"
     "        target_label: b\n      - action: hashmod\n        target_label: c\n",
     "t.yml:6:9: relabel_configs: relabel configuration for hashmod requires non-zero modulus"},
    {"relabel lowercase with replacement",
     "scrape_configs:\n  - job_name: a\n    relabel_configs:\n"
     "      - {action: lowercase, target_label: x, replacement: y}\n",
     "t.yml:4:9: relabel_configs: 'replacement' can not be set for lowercase action"},
    {"relabel bad regex",
     "scrape_configs:\n  - job_name: a\n    relabel_configs:\n"
     "      - {action: keep, source_labels: [a], regex: '(a'}\n",
     "t.yml:4:9: relabel_configs: "},
    {"null relabel rule",
     "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      -\n",
     "t.yml:4:8: relabel_configs: empty or null target relabeling rule in scrape config"},
    {"bad static label name",
     "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [h:1]\n"
     "        labels:\n          bad-name: x\n",
     "t.yml:6:11: labels: \"bad-name\" is not a valid label name"},
    {"bad external label name",
     "global:\n  external_labels: {0ab: x}\n",
     "t.yml:2:21: external_labels: \"0ab\" is not a valid label name"},
    {"password and password_file",
     "scrape_configs:\n  - job_name: a\n    basic_auth:\n      username: u\n      password: p\n"
     "      password_file: /f\n",
     "t.yml:6:7: basic_auth: at most one of basic_auth password & password_file must be "
     "configured"},
    {"bearer_token and authorization",
     "scrape_configs:\n  - job_name: a\n    authorization:\n      credentials: c\n"
     "    bearer_token: t\n",
     "t.yml:5:5: authorization: authorization is not compatible with bearer_token & "
     "bearer_token_file"},
    {"bearer_token and bearer_token_file",
     "scrape_configs:\n  - job_name: a\n    bearer_token_file: /t\n    bearer_token: t\n",
     "t.yml:4:5: bearer_token: at most one of bearer_token & bearer_token_file must be "
     "configured"},
    {"basic_auth and authorization",
     "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u}\n"
     "    authorization: {credentials: c}\n",
     "t.yml:4:5: basic_auth: at most one of basic_auth & authorization must be configured"},
    {"authorization type basic",
     "scrape_configs:\n  - job_name: a\n    authorization: {type: Basic, credentials: c}\n",
     "t.yml:3:27: authorization: authorization type cannot be set to \"basic\", use "
     "\"basic_auth\" instead"},
    {"cert without key",
     "scrape_configs:\n  - job_name: a\n    tls_config:\n      cert_file: /c\n",
     "t.yml:4:7: tls_config: key_file must be configured together with cert_file"},
    {"key without cert",
     "scrape_configs:\n  - job_name: a\n    tls_config: {key_file: /k}\n",
     "t.yml:3:18: tls_config: cert_file must be configured together with key_file"},
    {"a rule file glob with a star before the last element",
     "rule_files: ['a/*/b.yml']\n",
     "t.yml:1:14: rule_files: invalid rule file path \"a/*/b.yml\""},
    {"Alertmanager API v1",
     "alerting:\n  alertmanagers:\n  - api_version: v1\n",
     "t.yml:3:18: api_version: expected Alertmanager api version to be one of [v2] but got v1 "
     "(firn speaks API v2 only)"},
    {"a null Alertmanager relabel rule",
     "alerting:\n  alertmanagers:\n  - relabel_configs: [null]\n",
     "t.yml:3:23: relabel_configs: empty or null Alertmanager target relabeling rule"},
    {"an invalid Alertmanager relabel rule",
     "alerting:\n  alertmanagers:\n  - relabel_configs: [{action: replace}]\n",
     "t.yml:3:23: relabel_configs: relabel configuration for replace action requires "
     "'target_label' value"},
    {"an Alertmanager Kubernetes SD config without a role",
     "alerting:\n  alertmanagers:\n  - kubernetes_sd_configs: [{api_server: 'http://k'}]\n",
     "t.yml:3:29: role: role missing (one of pod, service, endpoints, endpointslice, node, "
     "ingress)"},
    {"an Alertmanager URL as a target",
     "alerting:\n  alertmanagers:\n  - static_configs: [{targets: ['http://am:9093/']}]\n",
     "t.yml:3:33: targets: \"http://am:9093/\" is not a valid hostname"},
    {"a mapping where a list is expected",
     "scrape_configs: {job_name: a}\n",
     "t.yml:1:17: scrape_configs: expected a list, got a mapping"},
    {"a scalar where a list is expected",
     "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: h:1\n",
     "t.yml:4:18: targets: expected a list of strings, got a scalar"},
    {"a list where a scalar is expected",
     "scrape_configs:\n  - job_name: [a]\n",
     "t.yml:2:15: job_name: expected a string, got a list"},
    {"a quoted string where a bool is expected",
     "scrape_configs:\n  - job_name: a\n    honor_labels: 'true'\n",
     "t.yml:3:19: honor_labels: expected a boolean, got \"true\""},
    {"negative limit",
     "scrape_configs:\n  - job_name: a\n    sample_limit: -1\n",
     "t.yml:3:19: sample_limit: expected an unsigned integer, got \"-1\""},
    {"bad body size",
     "scrape_configs:\n  - job_name: a\n    body_size_limit: 10XB\n",
     "t.yml:3:22: body_size_limit: invalid size \"10XB\" (want e.g. 10MB, 512KiB, 0)"},
    {"bad scheme",
     "scrape_configs:\n  - job_name: a\n    scheme: ftp\n",
     "t.yml:3:13: scheme: unsupported scheme \"ftp\" (http or https)"},
    {"URL as a static target",
     "scrape_configs:\n  - job_name: a\n    static_configs:\n"
     "      - targets: ['h:1', 'http://h:2/x']\n",
     "t.yml:4:26: targets: \"http://h:2/x\" is not a valid hostname"},
    {"custom profile without path",
     "scrape_configs:\n  - job_name: a\n    profiling_config:\n      pprof_config:\n"
     "        fgprof: {enabled: true}\n",
     "t.yml:5:9: fgprof: path is required for the custom profile type \"fgprof\""},
    {"seconds without delta",
     "scrape_configs:\n  - job_name: a\n    profiling_config:\n      pprof_config:\n"
     "        memory: {seconds: 5}\n",
     "t.yml:5:27: seconds: seconds is only used with delta: true"},
    {"bad profile name",
     "scrape_configs:\n  - job_name: a\n    profiling_config:\n      pprof_config:\n"
     "        my-prof: {path: /x}\n",
     "t.yml:5:9: pprof_config: \"my-prof\" is not a valid profile name (it must match "
     "[a-zA-Z_][a-zA-Z0-9_]*)"},
    {"unknown profile field",
     "scrape_configs:\n  - job_name: a\n    profiling_config:\n      pprof_config:\n"
     "        memory: {enable: true}\n",
     "t.yml:5:18: enable: unknown field in pprof_config entry"},
    {"profile seconds out of range",
     "scrape_configs:\n  - job_name: a\n    profiling_config:\n      pprof_config:\n"
     "        process_cpu: {seconds: 86401}\n",
     "t.yml:5:32: seconds: must be between 1 and 86400"},
    {"profile seconds beyond int64 (found by fuzz.config)",
     "scrape_configs:\n  - job_name: a\n    profiling_config:\n      pprof_config:\n"
     "        process_cpu: {seconds: 14347467612885206812}\n",
     "t.yml:5:32: seconds: must be between 1 and 86400"},
    {"an empty labels map is no labels (found by fuzz.config: qsort on NULL)",
     "scrape_configs:\n  - job_name: a\n    static_configs:\n"
     "      - targets: ['10.0.0.1:6060']\n        labels: {}\n"
     "      - targets: ['10.0.0.2:6060']\n        bogus: 1\n",
     "t.yml:7:9: bogus: unknown field in static_config"},
    {"relative profile path",
     "scrape_configs:\n  - job_name: a\n    profiling_config:\n      pprof_config:\n"
     "        memory: {path: debug/pprof/heap}\n",
     "t.yml:5:24: path: \"debug/pprof/heap\" must start with \"/\""},
    {"file SD without files",
     "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - refresh_interval: 1m\n",
     "t.yml:4:9: file_sd_configs: file service discovery config must contain at least one "
     "path name"},
    {"file SD bad pattern",
     "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: ['a/*/b.json']\n",
     "t.yml:4:17: files: path name \"a/*/b.json\" is not valid for file discovery"},
    {"DNS SD A without port",
     "scrape_configs:\n  - job_name: a\n    dns_sd_configs:\n      - {names: [x], type: A}\n",
     "t.yml:4:9: dns_sd_configs: a port is required in DNS-SD configs for all record types "
     "except SRV"},
    {"DNS SD bad type",
     "scrape_configs:\n  - job_name: a\n    dns_sd_configs:\n      - {names: [x], type: PTR}\n",
     "t.yml:4:28: type: invalid DNS-SD records type PTR"},
    {"Kubernetes SD without role",
     "scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs:\n      - api_server: x\n",
     "t.yml:4:9: role: role missing (one of pod, service, endpoints, endpointslice, node, "
     "ingress)"},
    {"Kubernetes SD selector role",
     "scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs:\n"
     "      - {role: service, selectors: [{role: pod}]}\n",
     "t.yml:4:44: role: service role supports only service selectors"},
    {"Kubernetes SD attach_metadata.deployment",
     "scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs:\n"
     "      - {role: pod, attach_metadata: {deployment: true}}\n",
     "t.yml:4:51: attach_metadata.deployment is not supported by firn (node and namespace "
     "are)"},
    {"Kubernetes SD attach_metadata.job",
     "scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs:\n"
     "      - role: pod\n        attach_metadata:\n          node: true\n          job: yes\n",
     "t.yml:7:16: attach_metadata.job is not supported by firn (node and namespace are)"},
    {"Kubernetes SD attach_metadata.cronjob",
     "scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs:\n"
     "      - {role: pod, attach_metadata: {cronjob: True}}\n",
     "t.yml:4:48: attach_metadata.cronjob is not supported by firn (node and namespace are)"},
    {"Kubernetes SD HTTP config without api_server",
     "scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs:\n"
     "      - {role: pod, bearer_token: x}\n",
     "t.yml:4:9: kubernetes_sd_configs: to use custom HTTP client configuration please "
     "provide the 'api_server' URL explicitly"},
    {"YAML syntax error",
     "scrape_configs:\n  - job_name: a\n   bad: [\n",
     "t.yml:3:4: yaml: did not find expected '-' indicator while parsing a block collection "
     "at line 2 column 3"},
    {"two documents",
     "scrape_configs: []\n---\nscrape_configs: []\n",
     "t.yml:2:1: a config file holds one YAML document, found a second one"},
    {"unknown alias",
     "scrape_configs: *nope\n",
     "t.yml:1:17: unknown anchor referenced by alias"},
    {"top level is a list",
     "- a\n",
     "t.yml:1:1: expected a mapping at the top level, got a list"},
    {"non-scalar key",
     "? [a]\n: b\n",
     "t.yml:1:3: mapping keys must be scalars, got a list"},
    {"NUL in a string",
     "scrape_configs: [{job_name: \"a\\0b\"}]\n",
     "t.yml:1:29: job_name: string contains a NUL byte"},
    {"merge keys are not supported",
     "scrape_configs:\n  - job_name: a\n    <<: {scheme: https}\n",
     "t.yml:3:5: <<: unknown field in scrape_config"},
    {"profile_remote_write without url",
     "profile_remote_write:\n  - name: a\n",
     "t.yml:2:5: url: url for profile_remote_write is empty"},
    {"profile_remote_write scheme",
     "profile_remote_write:\n  - url: ftp://h/\n",
     "t.yml:2:10: url: unsupported scheme \"ftp\": http or https"},
    {"profile_remote_write password in the URL",
     "profile_remote_write:\n  - url: http://u:p@h:1/\n",
     "t.yml:2:10: url: credentials in the URL are refused (use basic_auth or authorization"},
    {"profile_remote_write name",
     "profile_remote_write:\n  - url: http://h/\n    name: ../x\n",
     "t.yml:3:11: name: \"../x\": a name is [A-Za-z0-9_.-]"},
    {"profile_remote_write duplicate name",
     "profile_remote_write:\n  - {url: 'http://a/', name: c}\n  - {url: 'http://b/', name: c}\n",
     "t.yml:3:5: profile_remote_write: found multiple profile_remote_write configs with name \"c\""},
    {"profile_remote_write duplicate URL",
     "profile_remote_write:\n  - url: http://a/\n  - url: http://a/\n",
     "t.yml:3:5: profile_remote_write: duplicate profile_remote_write configs are not allowed"},
    {"profile_remote_write Authorization header",
     "profile_remote_write:\n  - url: http://a/\n    headers: {Authorization: x}\n",
     "t.yml:3:15: headers: authorization header must be changed via the basic_auth"},
    {"profile_remote_write shards",
     "profile_remote_write:\n  - url: http://a/\n    queue_config: {shards: 65}\n",
     "t.yml:3:28: shards: must be 1 to 64"},
    {"profile_remote_write max_samples_per_send",
     "profile_remote_write:\n  - url: http://a/\n    queue_config: {max_samples_per_send: 0}\n",
     "t.yml:3:42: max_samples_per_send: must be 1 to 4096"},
    {"profile_remote_write max_bytes",
     "profile_remote_write:\n  - url: http://a/\n    queue_config: {max_bytes: 1KiB}\n",
     "t.yml:3:31: max_bytes: at least 1MiB"},
    {"profile_remote_write backoff",
     "profile_remote_write:\n  - url: http://a/\n    queue_config: {min_backoff: 2s, max_backoff: 1s}\n",
     "t.yml:3:50: max_backoff: must not be less than min_backoff"},
    {"profile_remote_write relabel",
     "profile_remote_write:\n  - url: http://a/\n    write_relabel_configs: [{action: replace}]\n",
     "t.yml:3:29: relabel_configs: relabel configuration for replace action requires 'target_label' value"},
};

/* profile_remote_write's defaults and fields. */
static void test_profile_remote_write(void **state)
{
    (void)state;
    firn_config *cfg = load("profile_remote_write:\n"
                            "  - url: http://central:7070/\n"
                            "  - url: https://profiles.example/pyroscope\n"
                            "    name: cloud\n"
                            "    remote_timeout: 5s\n"
                            "    basic_auth: {username: u, password_file: /p}\n"
                            "    headers: {X-Scope-OrgID: t1}\n"
                            "    write_relabel_configs:\n"
                            "      - {source_labels: [job], regex: x, action: drop}\n"
                            "    queue_config: {max_bytes: 1GiB, shards: 4, max_samples_per_send: 50,\n"
                            "                   batch_send_deadline: 1s, min_backoff: 100ms,\n"
                            "                   max_backoff: 10s, retry_on_http_429: false}\n");
    assert_int_equal(cfg->n_profile_remote_writes, 2);
    const config_profile_remote_write *a = &cfg->profile_remote_writes[0];
    assert_string_equal(a->url, "http://central:7070/");
    assert_string_equal(a->name, "");
    assert_int_equal(a->remote_timeout_ms, 30000);
    assert_int_equal(a->max_bytes, 256u << 20);
    assert_int_equal(a->shards, 1);
    assert_int_equal(a->max_samples_per_send, 100);
    assert_int_equal(a->batch_send_deadline_ms, 5000);
    assert_int_equal(a->min_backoff_ms, 30);
    assert_int_equal(a->max_backoff_ms, 5000);
    assert_true(a->retry_on_http_429);
    const config_profile_remote_write *b = &cfg->profile_remote_writes[1];
    assert_string_equal(b->name, "cloud");
    assert_int_equal(b->remote_timeout_ms, 5000);
    assert_true(b->http.basic_auth.set);
    assert_string_equal(b->http.basic_auth.password_file, "/p");
    assert_int_equal(b->n_headers, 1);
    assert_string_equal(b->headers[0].name, "X-Scope-OrgID");
    assert_string_equal(b->headers[0].value, "t1");
    assert_int_equal(b->n_write_relabel_configs, 1);
    assert_int_equal(b->max_bytes, 1ull << 30);
    assert_int_equal(b->shards, 4);
    assert_int_equal(b->max_samples_per_send, 50);
    assert_int_equal(b->batch_send_deadline_ms, 1000);
    assert_int_equal(b->min_backoff_ms, 100);
    assert_int_equal(b->max_backoff_ms, 10000);
    assert_false(b->retry_on_http_429);
    /* the header's value is a secret in what /api/v1/status/config shows */
    assert_non_null(strstr(cfg->yaml, "X-Scope-OrgID: <secret>"));
    assert_null(strstr(cfg->yaml, "t1"));
    config_free(cfg);
}

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ERRORS / sizeof *ERRORS; i++) {
        config_errors errs = {0};
        firn_err err = {0};
        firn_config *cfg = config_load_string_errors(ERRORS[i].yaml, strlen(ERRORS[i].yaml),
                                                     "t.yml", &errs, &err);
        if (cfg || errs.n == 0)
            fail_msg("%s: loaded without error", ERRORS[i].what);
        if (strncmp(errs.lines[0], ERRORS[i].want, strlen(ERRORS[i].want)) != 0)
            fail_msg("%s:\n got: %s\nwant: %s", ERRORS[i].what, errs.lines[0], ERRORS[i].want);
        /* err->msg starts with the same line */
        assert_int_equal(err.code, FIRN_EINVAL);
        assert_int_equal(strncmp(err.msg, errs.lines[0], strlen(ERRORS[i].want)), 0);
        config_errors_free(&errs);
        /* and the plain API refuses it too, never crashing */
        assert_null(config_load_string(ERRORS[i].yaml, strlen(ERRORS[i].yaml), "t.yml", NULL));
    }
}

/* Every error is reported, in document order; err->msg holds what fits. */
static void test_errors_collected(void **state)
{
    (void)state;
    const char *yaml = "global:\n"
                       "  scrape_interval: 1x\n"
                       "scrape_configs:\n"
                       "  - job_name: a\n"
                       "    honor_labels: maybe\n"
                       "    bogus: 1\n"
                       "  - job_name: a\n";
    config_errors errs = {0};
    firn_err err = {0};
    assert_null(config_load_string_errors(yaml, strlen(yaml), "t.yml", &errs, &err));
    assert_int_equal(errs.n, 4);
    assert_string_equal(errs.lines[0], "t.yml:2:20: scrape_interval: not a valid duration "
                                       "string: \"1x\"");
    assert_string_equal(errs.lines[1], "t.yml:5:19: honor_labels: expected a boolean, got "
                                       "\"maybe\"");
    assert_string_equal(errs.lines[2], "t.yml:6:5: bogus: unknown field in scrape_config");
    assert_string_equal(errs.lines[3], "t.yml:7:15: job_name: found multiple scrape configs "
                                       "with job name \"a\"");
    char want[1024];
    snprintf(want, sizeof want, "%s\n%s\n%s\n%s", errs.lines[0], errs.lines[1], errs.lines[2],
             errs.lines[3]);
    assert_string_equal(err.msg, want);
    config_errors_free(&errs);
    config_errors_free(&errs);   /* idempotent */

    /* many errors: capped, and err->msg says how many it left out */
    size_t n = 300;
    char *big = malloc(n * 40 + 64);
    size_t len = (size_t)sprintf(big, "scrape_configs:\n  - job_name: a\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(big + len, "    bad_%zu: 1\n", i);
    assert_null(config_load_string_errors(big, len, "t.yml", &errs, &err));
    assert_int_equal(errs.n, CONFIG_MAX_ERRORS + 1);
    assert_string_equal(errs.lines[CONFIG_MAX_ERRORS], "t.yml: too many errors, 200 more not shown");
    assert_non_null(strstr(err.msg, " more)"));
    assert_true(strlen(err.msg) < FIRN_ERR_MSG_MAX);
    config_errors_free(&errs);
    free(big);
}

static void test_caps(void **state)
{
    (void)state;
    firn_err err = {0};
    /* nesting */
    char deep[400];
    memset(deep, '[', 200);
    memset(deep + 200, ']', 200);
    assert_null(config_load_string(deep, sizeof deep, "t.yml", &err));
    assert_non_null(strstr(err.msg, "nesting deeper than the cap of 64 levels"));

    /* an alias bomb is refused before anything walks it */
    const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                       "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                       "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    assert_null(config_load_string(bomb, strlen(bomb), "t.yml", &err));
    assert_non_null(strstr(err.msg, "t.yml:6:"));
    assert_non_null(strstr(err.msg, "document too large"));

    /* size */
    assert_null(config_load_string("", (size_t)CONFIG_MAX_BYTES + 1, "t.yml", &err));
    assert_int_equal(err.code, FIRN_EINVAL);
    assert_string_equal(err.msg, "t.yml: larger than the cap of 16777216 bytes");

    /* invalid UTF-8 is a YAML error, not a crash */
    assert_null(config_load_string("a: \xff\n", 6, "t.yml", &err));
    assert_non_null(strstr(err.msg, "t.yml:1:"));
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, PARCA_COMPLEX, strlen(PARCA_COMPLEX)), (ssize_t)strlen(PARCA_COMPLEX));
    close(fd);
    firn_err err = {0};
    firn_config *cfg = config_load_file(path, &err);
    assert_non_null(cfg);
    assert_string_equal(cfg->source, path);
    assert_int_equal(cfg->n_scrapes, 2);
    config_free(cfg);

    FILE *f = fopen(path, "w");
    fputs("scrape_configs:\n  - job_name: a\n    nope: 1\n", f);
    fclose(f);
    config_errors errs = {0};
    assert_null(config_load_file_errors(path, &errs, &err));
    assert_int_equal(errs.n, 1);
    char want[256];
    snprintf(want, sizeof want, "%s:3:5: nope: unknown field in scrape_config", path);
    assert_string_equal(errs.lines[0], want);
    assert_string_equal(err.msg, want);
    config_errors_free(&errs);
    unlink(path);

    assert_null(config_load_file_errors(path, &errs, &err));
    assert_int_equal(err.code, FIRN_EIO);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.lines[0], "No such file"));
    config_errors_free(&errs);
    config_free(NULL);
}

/* ---- the embedded default and equality ----------------------------------- */

static void test_default_config(void **state)
{
    (void)state;
    char *yaml = config_default_yaml("localhost:7070");
    firn_config *cfg = load(yaml);
    free(yaml);
    assert_int_equal(cfg->n_scrapes, 1);
    const config_scrape *sc = &cfg->scrapes[0];
    assert_string_equal(sc->job_name, "firn");
    assert_int_equal(sc->interval_ms, 10000);
    assert_int_equal(sc->timeout_ms, 10000);
    assert_int_equal(sc->n_static_configs, 1);
    assert_string_equal(sc->static_configs[0].targets[0], "localhost:7070");
    assert_int_equal(sc->n_profile_types, 5);
    for (size_t i = 0; i < sc->n_profile_types; i++) {
        const char *name = sc->profile_types[i].name;
        bool served = strcmp(name, "process_cpu") == 0 || strcmp(name, "memory") == 0;
        assert_int_equal(sc->profile_types[i].enabled, served);
    }
    assert_profile(sc, "process_cpu", true, "/debug/pprof/profile", true, 9, 12000);
    config_free(cfg);
    /* A quote in the address stays inside the YAML string. */
    yaml = config_default_yaml("it's:1");
    cfg = load(yaml);
    free(yaml);
    assert_string_equal(cfg->scrapes[0].static_configs[0].targets[0], "it's:1");
    config_free(cfg);
}

static void test_scrape_equal(void **state)
{
    (void)state;
    firn_config *a = load(FULL), *b = load(FULL);
    assert_true(config_scrape_equal(&a->scrapes[0], &b->scrapes[0]));
    assert_true(config_scrape_equal(&a->scrapes[1], &b->scrapes[1]));
    assert_false(config_scrape_equal(&a->scrapes[0], &a->scrapes[1]));
    config_free(b);

    /* one changed line anywhere in a job makes it different */
    static const struct {
        const char *from, *to;
    } edits[] = {
        {"scrape_interval: 20s", "scrape_interval: 21s"},
        {"scrape_timeout: 5s", "scrape_timeout: 6s"},
        {"scheme: https", "scheme: http"},
        {"a: [x, y]", "a: [x, z]"},
        {"honor_labels: true", "honor_labels: false"},
        {"password_file: /etc/pw", "password_file: /etc/pw2"},
        {"server_name: api.internal", "server_name: api2"},
        {"sample_limit: 1000", "sample_limit: 1001"},
        {"body_size_limit: 10MB", "body_size_limit: 11MB"},
        {"'10.0.0.2:6060'", "'10.0.0.3:6060'"},
        {"zone: b", "zone: c"},
        {"refresh_interval: 1m", "refresh_interval: 2m"},
        {"port: 6060", "port: 6061"},
        {"field: 'spec.nodeName=n1'", "field: 'spec.nodeName=n2'"},
        {"attach_metadata: {node: true}", "attach_metadata: {node: false}"},
        {"bearer_token_file: /var/run/token", "bearer_token_file: /var/run/token2"},
        {"regex: 'true'", "regex: 'yes'"},
        {"replacement: $2$1", "replacement: $1$2"},
        {"modulus: 8", "modulus: 9"},
        {"action: labelmap", "action: labelkeep"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        const char *at = strstr(FULL, edits[i].from);
        assert_non_null(at);
        size_t pre = (size_t)(at - FULL), from_len = strlen(edits[i].from);
        char *text = malloc(sizeof FULL + 64);
        sprintf(text, "%.*s%s%s", (int)pre, FULL, edits[i].to, at + from_len);
        firn_config *c = load(text);
        if (config_scrape_equal(&a->scrapes[0], &c->scrapes[0]))
            fail_msg("edit %zu (%s -> %s) not seen", i, edits[i].from, edits[i].to);
        assert_true(config_scrape_equal(&a->scrapes[1], &c->scrapes[1]));
        config_free(c);
        free(text);
    }

    /* defaults written out explicitly change nothing */
    firn_config *x = load("scrape_configs: [{job_name: a}]\n");
    firn_config *y = load("scrape_configs:\n"
                          "  - job_name: a\n"
                          "    scrape_interval: 10s\n"
                          "    scheme: http\n"
                          "    honor_timestamps: true\n"
                          "    profiling_config:\n"
                          "      pprof_config:\n"
                          "        memory: {enabled: true, path: /debug/pprof/allocs}\n"
                          "        process_cpu: {delta: true, seconds: 9}\n");
    assert_true(config_scrape_equal(&x->scrapes[0], &y->scrapes[0]));
    config_free(x);
    config_free(y);
    /* profile settings count */
    x = load("scrape_configs: [{job_name: a, profiling_config: {pprof_config: "
             "{goroutine: {enabled: false}}}}]\n");
    y = load("scrape_configs: [{job_name: a}]\n");
    assert_false(config_scrape_equal(&x->scrapes[0], &y->scrapes[0]));
    config_free(x);
    config_free(y);
    config_free(a);
}

/* ---- Kubernetes SD attach_metadata ------------------------------------------ */

/* node and namespace are implemented; the others may be written, false. */
static void test_k8s_attach_metadata(void **state)
{
    (void)state;
    firn_config *cfg = load("scrape_configs:\n"
                            "  - job_name: a\n"
                            "    kubernetes_sd_configs:\n"
                            "      - role: pod\n"
                            "        attach_metadata: {node: true, namespace: true,\n"
                            "                          deployment: false, job: no, cronjob: ~}\n");
    const config_kubernetes_sd *k = &cfg->scrapes[0].kubernetes_sd[0];
    assert_true(k->attach_node);
    assert_true(k->attach_namespace);
    config_free(cfg);

    /* all three at once: three errors, each at its value */
    const char *yaml = "scrape_configs:\n"
                       "  - job_name: a\n"
                       "    kubernetes_sd_configs:\n"
                       "      - role: pod\n"
                       "        attach_metadata: {deployment: true, job: true, cronjob: true}\n";
    config_errors errs = {0};
    firn_err err = {0};
    assert_null(config_load_string_errors(yaml, strlen(yaml), "t.yml", &errs, &err));
    assert_int_equal(errs.n, 3);
    assert_string_equal(errs.lines[0], "t.yml:5:39: attach_metadata.deployment is not "
                                       "supported by firn (node and namespace are)");
    assert_string_equal(errs.lines[1], "t.yml:5:50: attach_metadata.job is not supported by "
                                       "firn (node and namespace are)");
    assert_string_equal(errs.lines[2], "t.yml:5:65: attach_metadata.cronjob is not supported "
                                       "by firn (node and namespace are)");
    config_errors_free(&errs);
}

/* ---- kubeconfig files -------------------------------------------------------- */

/* PEM-ish texts and their base64 (python3 base64.b64encode): 65, 69 and 64
 * bytes, so one '=', none and two of padding. */
#define CA_PEM "-----BEGIN CERTIFICATE-----\nMIIBfirnCA\n-----END CERTIFICATE-----\n"
#define CA_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJmaXJuQ0EKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
#define CERT_PEM "-----BEGIN CERTIFICATE-----\nMIIBfirnClient\n-----END CERTIFICATE-----\n"
#define CERT_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJmaXJuQ2xpZW50Ci0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"
#define KEY_PEM "-----BEGIN PRIVATE KEY-----\nMIIEkey01\n-----END PRIVATE KEY-----\n"
#define KEY_B64 "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JSUVrZXkwMQotLS0tLUVORCBQUklWQVRFIEtFWS0tLS0tCg=="

static int kc_setup(void **state)
{
    *state = temp_dir("kubeconfig");
    return 0;
}

static int kc_teardown(void **state)
{
    remove_tree(*state);
    free(*state);
    return 0;
}

/* Write text to dir/name; the path, malloc'd. */
static char *kc_write(const char *dir, const char *name, const char *text)
{
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("cannot write %s", path);
    fputs(text, f);
    fclose(f);
    return path;
}

/* dir/kubeconfig holding text, loaded; fails the test on an error. */
static void kc_load(const char *dir, const char *text, config_kubeconfig *k)
{
    char *path = kc_write(dir, "kubeconfig", text);
    firn_err err = {0};
    if (config_kubeconfig_load(path, k, &err) < 0)
        fail_msg("unexpected error:\n%s", err.msg);
    assert_non_null(k->arena);
    free(path);
}

static void assert_path(const char *got, const char *dir, const char *rel)
{
    char want[1024];
    snprintf(want, sizeof want, "%s/%s", dir, rel);
    assert_non_null(got);
    assert_string_equal(got, want);
}

/* Relative files resolve against the kubeconfig's directory; the keys firn
 * does not read (and the users and clusters the context does not name)
 * are ignored. */
static void test_kubeconfig_files(void **state)
{
    const char *dir = *state;
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/certs", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    free(kc_write(dir, "certs/ca.pem", CA_PEM));
    free(kc_write(dir, "certs/client.crt", CERT_PEM));
    char *key = kc_write(dir, "certs/client.key", KEY_PEM);
    free(kc_write(dir, "token", "tok\n"));
    char text[4096];
    snprintf(text, sizeof text,
             "apiVersion: v1\n"
             "kind: Config\n"
             "preferences: {colors: true}\n"
             "clusters:\n"
             "- name: dev\n"
             "  cluster:\n"
             "    server: https://10.0.0.1:6443\n"
             "    certificate-authority: certs/ca.pem\n"
             "    tls-server-name: kubernetes.default\n"
             "    disable-compression: true\n"
             "    extensions:\n"
             "    - name: client.authentication.k8s.io/exec\n"
             "      extension: {audience: x}\n"
             "- name: prod\n"
             "  cluster: {server: 'https://prod:6443', proxy-url: 'http://proxy:3128'}\n"
             "users:\n"
             "- name: dev-admin\n"
             "  user:\n"
             "    client-certificate: certs/client.crt\n"
             "    client-key: %s\n"
             "    tokenFile: token\n"
             "- name: cloud\n"
             "  user: {exec: {command: gke-gcloud-auth-plugin, apiVersion: v1beta1}}\n"
             "contexts:\n"
             "- name: dev\n"
             "  context: {cluster: dev, user: dev-admin, namespace: monitoring}\n"
             "- name: prod\n"
             "  context: {cluster: prod, user: cloud}\n"
             "current-context: dev\n"
             "extensions: []\n",
             key);
    config_kubeconfig k;
    kc_load(dir, text, &k);
    assert_string_equal(k.server, "https://10.0.0.1:6443");
    assert_path(k.http.tls.ca_file, dir, "certs/ca.pem");
    assert_path(k.http.tls.cert_file, dir, "certs/client.crt");
    assert_string_equal(k.http.tls.key_file, key);   /* absolute: as given */
    assert_string_equal(k.http.tls.server_name, "kubernetes.default");
    assert_false(k.http.tls.insecure_skip_verify);
    assert_true(k.http.authorization.set);
    assert_string_equal(k.http.authorization.type, "Bearer");
    assert_null(k.http.authorization.credentials);
    assert_path(k.http.authorization.credentials_file, dir, "token");
    assert_false(k.http.basic_auth.set);
    assert_null(k.ca_data);
    assert_null(k.cert_data);
    assert_null(k.key_data);
    assert_string_equal(k.ns, "monitoring");
    config_kubeconfig_free(&k);
    assert_null(k.arena);
    config_kubeconfig_free(&k);   /* a zeroed one is fine */
    config_kubeconfig_free(NULL);

    /* parse names the file: a name without a directory leaves paths as
     * they are (relative to the working directory) */
    const char *bare = "clusters: [{name: c, cluster: {server: 'http://h:8080', "
                       "certificate-authority: /dev/null}}]\n"
                       "users: [{name: u, user: {}}]\n"
                       "contexts: [{name: x, context: {cluster: c, user: u}}]\n";
    firn_err err = {0};
    assert_int_equal(config_kubeconfig_parse("kubeconfig", bare, strlen(bare), &k, &err), 0);
    assert_string_equal(k.server, "http://h:8080");
    assert_string_equal(k.http.tls.ca_file, "/dev/null");
    assert_false(k.http.authorization.set);
    assert_false(k.http.basic_auth.set);
    assert_null(k.ns);
    config_kubeconfig_free(&k);
    free(key);
}

/* The *-data fields decode to the PEM bytes, whatever their padding and
 * line breaks; a token given inline is the credentials. */
static void test_kubeconfig_data(void **state)
{
    const char *dir = *state;
    /* the CA's base64 split over lines, as a literal block */
    const char *text =
        "clusters:\n"
        "- name: c\n"
        "  cluster:\n"
        "    server: https://k8s.example.com\n"
        "    certificate-authority-data: |\n"
        "      LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJmaXJu\n"
        "      Q0EKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=\n"
        "users:\n"
        "- name: u\n"
        "  user:\n"
        "    client-certificate-data: " CERT_B64 "\n"
        "    client-key-data: " KEY_B64 "\n"
        "    token: s3cret\n"
        "contexts:\n"
        "- name: only\n"
        "  context: {cluster: c, user: u}\n";
    config_kubeconfig k;
    kc_load(dir, text, &k);
    assert_string_equal(k.server, "https://k8s.example.com");
    assert_int_equal(k.ca_len, strlen(CA_PEM));
    assert_memory_equal(k.ca_data, CA_PEM, k.ca_len);
    assert_int_equal(k.cert_len, strlen(CERT_PEM));
    assert_memory_equal(k.cert_data, CERT_PEM, k.cert_len);
    assert_int_equal(k.key_len, strlen(KEY_PEM));
    assert_memory_equal(k.key_data, KEY_PEM, k.key_len);
    assert_null(k.http.tls.ca_file);
    assert_null(k.http.tls.cert_file);
    assert_null(k.http.tls.key_file);
    assert_true(k.http.authorization.set);
    assert_string_equal(k.http.authorization.type, "Bearer");
    assert_string_equal(k.http.authorization.credentials, "s3cret");
    assert_null(k.http.authorization.credentials_file);
    assert_null(k.ns);
    config_kubeconfig_free(&k);
}

static void test_kubeconfig_basic_auth(void **state)
{
    const char *dir = *state;
    config_kubeconfig k;
    kc_load(dir,
            "clusters: [{name: c, cluster: {server: 'https://h:6443', "
            "insecure-skip-tls-verify: true}}]\n"
            "users: [{name: u, user: {username: admin, password: 'pa:ss'}}]\n"
            "contexts: [{name: x, context: {cluster: c, user: u, namespace: kube-system}}]\n"
            "current-context: x\n",
            &k);
    assert_true(k.http.tls.insecure_skip_verify);
    assert_true(k.http.basic_auth.set);
    assert_string_equal(k.http.basic_auth.username, "admin");
    assert_string_equal(k.http.basic_auth.password, "pa:ss");
    assert_null(k.http.basic_auth.password_file);
    assert_false(k.http.authorization.set);
    assert_string_equal(k.ns, "kube-system");
    config_kubeconfig_free(&k);

    /* a password alone is basic auth with an empty user name, as client-go */
    kc_load(dir,
            "clusters: [{name: c, cluster: {server: 'https://h:6443'}}]\n"
            "users: [{name: u, user: {password: p, username: ''}}]\n"
            "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
            &k);
    assert_true(k.http.basic_auth.set);
    assert_string_equal(k.http.basic_auth.username, "");
    assert_string_equal(k.http.basic_auth.password, "p");
    config_kubeconfig_free(&k);
}

/* current-context picks among several; without it the only context. */
static void test_kubeconfig_current_context(void **state)
{
    const char *dir = *state;
    static const char base[] =
        "clusters:\n"
        "- {name: a, cluster: {server: 'https://a:6443'}}\n"
        "- {name: b, cluster: {server: 'https://b:6443'}}\n"
        "users:\n"
        "- {name: ua, user: {token: ta}}\n"
        "- {name: ub, user: {token: tb}}\n"
        "contexts:\n"
        "- {name: ctx-a, context: {cluster: a, user: ua, namespace: na}}\n"
        "- {name: ctx-b, context: {cluster: b, user: ub}}\n"
        "- {name: ctx-mixed, context: {cluster: a, user: ub, namespace: nm}}\n";
    static const struct {
        const char *current;
        const char *server, *token, *ns;
    } cases[] = {
        {"ctx-a", "https://a:6443", "ta", "na"},
        {"ctx-b", "https://b:6443", "tb", NULL},
        {"ctx-mixed", "https://a:6443", "tb", "nm"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[1024];
        snprintf(text, sizeof text, "current-context: %s\n%s", cases[i].current, base);
        config_kubeconfig k;
        kc_load(dir, text, &k);
        assert_string_equal(k.server, cases[i].server);
        assert_string_equal(k.http.authorization.credentials, cases[i].token);
        if (cases[i].ns)
            assert_string_equal(k.ns, cases[i].ns);
        else
            assert_null(k.ns);
        config_kubeconfig_free(&k);
    }
    config_kubeconfig k;
    kc_load(dir,
            "current-context: ''\n"
            "clusters: [{name: a, cluster: {server: 'https://only:6443'}}]\n"
            "users: [{name: u, user: {token: t}}]\n"
            "contexts: [{name: lone, context: {cluster: a, user: u}}]\n",
            &k);
    assert_string_equal(k.server, "https://only:6443");
    config_kubeconfig_free(&k);
}

/* Each refusal: the first line of err->msg, "%1$s" standing for the
 * kubeconfig's path and "%2$s" for its directory. */
static const struct {
    const char *what;
    const char *yaml;
    const char *want;
    int code;
} KC_ERRORS[] = {
    {"no such context",
     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
     "users: [{name: u, user: {}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
     "current-context: y\n",
     "%1$s:4:18: current-context: no context named \"y\"", FIRN_EINVAL},
    {"no current-context among several",
     "contexts:\n- {name: x, context: {cluster: c, user: u}}\n"
     "- {name: y, context: {cluster: c, user: u}}\n",
     "%1$s: no current-context, and 2 contexts to choose from: set current-context",
     FIRN_EINVAL},
    {"no contexts at all",
     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n",
     "%1$s: no current-context and no contexts: nothing names a cluster", FIRN_EINVAL},
    {"an empty file",
     "",
     "%1$s: no current-context and no contexts: nothing names a cluster", FIRN_EINVAL},
    {"no such cluster",
     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
     "users: [{name: u, user: {}}]\n"
     "contexts: [{name: x, context: {cluster: d, user: u}}]\n",
     "%1$s:3:41: cluster: no cluster named \"d\" (context \"x\")", FIRN_EINVAL},
    {"no such user",
     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
     "users: [{name: u, user: {}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: v}}]\n",
     "%1$s:3:50: user: no user named \"v\" (context \"x\")", FIRN_EINVAL},
    {"a context without a cluster",
     "users: [{name: u, user: {}}]\n"
     "contexts: [{name: x, context: {user: u}}]\n",
     "%1$s:2:31: context \"x\" names no cluster", FIRN_EINVAL},
    {"a context without a user",
     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
     "contexts:\n- name: x\n  context:\n    cluster: c\n",
     "%1$s:5:5: context \"x\" names no user", FIRN_EINVAL},
    {"no server",
     "clusters:\n- name: c\n  cluster:\n    certificate-authority-data: " CA_B64 "\n"
     "users: [{name: u, user: {}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:4:5: cluster \"c\" has no server", FIRN_EINVAL},
    {"a server that is no URL",
     "clusters: [{name: c, cluster: {server: 'h:6443'}}]\n"
     "users: [{name: u, user: {}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:1:40: server: cluster \"c\": \"h:6443\" is not an http:// or https:// URL",
     FIRN_EINVAL},
    {"bad base64",
     "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
     "    certificate-authority-data: LS0tLS1CRUdJTi*=\n"
     "users: [{name: u, user: {}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:5:33: certificate-authority-data: cluster \"c\": not valid base64", FIRN_EINVAL},
    {"base64 without its padding",
     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
     "users:\n- name: u\n  user:\n    client-certificate-data: " CERT_B64 "\n"
     "    client-key-data: LS0tLS1CRUdJTiBQU\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:6:22: client-key-data: user \"u\": not valid base64", FIRN_EINVAL},
    {"base64 with '=' inside",
     "clusters: [{name: c, cluster: {server: 'https://h', certificate-authority-data: 'LS0=LS0t'}}]\n"
     "users: [{name: u, user: {}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:1:81: certificate-authority-data: cluster \"c\": not valid base64", FIRN_EINVAL},
    {"an exec plugin",
     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
     "users:\n- name: eks\n  user:\n    exec:\n      command: aws\n"
     "contexts: [{name: x, context: {cluster: c, user: eks}}]\n",
     "%1$s:5:5: exec: user \"eks\" gets its credentials from an exec plugin, which firn "
     "cannot run (give the user a token, tokenFile, client certificate or username and "
     "password)",
     FIRN_EINVAL},
    {"an auth-provider plugin",
     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
     "users: [{name: gke, user: {auth-provider: {name: gcp}}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: gke}}]\n",
     "%1$s:2:28: auth-provider: user \"gke\" gets its credentials from an auth-provider "
     "plugin, which firn cannot run",
     FIRN_EINVAL},
    {"impersonation",
     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
     "users: [{name: u, user: {token: t, as-groups: [admins]}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:2:36: as-groups: user \"u\" impersonates another user, which firn does not "
     "support",
     FIRN_EINVAL},
    {"CA data and file",
     "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
     "    certificate-authority-data: " CA_B64 "\n"
     "    certificate-authority: /dev/null\n"
     "users: [{name: u, user: {}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:6:5: cluster \"c\" has both certificate-authority and certificate-authority-data "
     "(give one)",
     FIRN_EINVAL},
    {"client certificate data and file",
     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
     "users:\n- name: u\n  user:\n    client-certificate: /dev/null\n"
     "    client-key: /dev/null\n    client-certificate-data: " CERT_B64 "\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:7:5: user \"u\" has both client-certificate and client-certificate-data (give one)",
     FIRN_EINVAL},
    {"client key data and file",
     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
     "users:\n- name: u\n  user:\n    client-key-data: " KEY_B64 "\n"
     "    client-key: /dev/null\n    client-certificate: /dev/null\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:6:5: user \"u\" has both client-key and client-key-data (give one)", FIRN_EINVAL},
    {"token and tokenFile",
     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
     "users: [{name: u, user: {tokenFile: /dev/null, token: s3cret}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:2:48: user \"u\" has both token and tokenFile (give one)", FIRN_EINVAL},
    {"token and basic auth",
     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
     "users: [{name: u, user: {token: s3cret, username: a, password: s3cret}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:2:54: user \"u\" has more than one authentication method (a token and a "
     "username/password): give one",
     FIRN_EINVAL},
    {"a certificate without its key",
     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
     "users: [{name: u, user: {client-certificate-data: " CERT_B64 "}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:2:26: user \"u\" has a client certificate but no client-key or client-key-data",
     FIRN_EINVAL},
    {"a key without its certificate",
     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
     "users: [{name: u, user: {client-key: /dev/null}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:2:26: user \"u\" has a client key but no client-certificate or "
     "client-certificate-data",
     FIRN_EINVAL},
    {"an unreadable CA file",
     "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
     "    certificate-authority: missing/ca.pem\n"
     "users: [{name: u, user: {}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:5:28: certificate-authority: cluster \"c\": cannot read \"%2$s/missing/ca.pem\": No "
     "such file or directory",
     FIRN_EIO},
    {"a directory as the token file",
     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
     "users: [{name: u, user: {tokenFile: .}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:2:37: tokenFile: user \"u\": cannot read \"%2$s/.\": Is a directory", FIRN_EIO},
    {"an unreadable client key",
     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
     "users: [{name: u, user: {client-certificate: /dev/null, client-key: /nonexistent/k}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:2:69: client-key: user \"u\": cannot read \"/nonexistent/k\": No such file or "
     "directory",
     FIRN_EIO},
    {"a CA and insecure-skip-tls-verify",
     "clusters: [{name: c, cluster: {server: 'https://h', certificate-authority-data: "
     CA_B64 ", insecure-skip-tls-verify: true}}]\n"
     "users: [{name: u, user: {}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:1:197: insecure-skip-tls-verify: cluster \"c\" has a certificate authority and "
     "skips verification: give one (client-go refuses both)",
     FIRN_EINVAL},
    {"a proxy",
     "clusters: [{name: c, cluster: {server: 'https://h', proxy-url: 'socks5://p:1080'}}]\n"
     "users: [{name: u, user: {}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:1:64: proxy-url: cluster \"c\" is reached through a proxy, which firn does not "
     "support",
     FIRN_EINVAL},
    {"a bad namespace",
     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
     "users: [{name: u, user: {}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u, namespace: Monitoring}}]\n",
     "%1$s:3:64: namespace: \"Monitoring\" is not a valid namespace name", FIRN_EINVAL},
    {"a duplicate cluster name",
     "clusters:\n- {name: c, cluster: {server: 'https://h'}}\n"
     "- {name: c, cluster: {server: 'https://i'}}\n"
     "users: [{name: u, user: {}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:3:10: name: duplicate cluster name \"c\" (first at 2:10)", FIRN_EINVAL},
    {"a duplicate key",
     "clusters: [{name: c, cluster: {server: 'https://h', server: 'https://i'}}]\n"
     "users: [{name: u, user: {}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:1:53: server: duplicate field in cluster (first set at 1:32)", FIRN_EINVAL},
    {"a list where a string is read",
     "clusters: [{name: c, cluster: {server: ['https://h']}}]\n"
     "users: [{name: u, user: {}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:1:40: server: expected a string, got a list", FIRN_EINVAL},
    {"a quoted boolean",
     "clusters: [{name: c, cluster: {server: 'https://h', insecure-skip-tls-verify: 'true'}}]\n"
     "users: [{name: u, user: {}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:1:79: insecure-skip-tls-verify: expected a boolean, got \"true\"", FIRN_EINVAL},
    {"clusters as a mapping",
     "clusters: {c: {server: 'https://h'}}\n"
     "users: [{name: u, user: {}}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:1:11: clusters: expected a list, got a mapping", FIRN_EINVAL},
    {"a user that is a scalar",
     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
     "users: [{name: u, user: admin}]\n"
     "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
     "%1$s:2:25: user: expected a mapping, got a scalar", FIRN_EINVAL},
    {"the top level is a list",
     "- clusters\n",
     "%1$s:1:1: expected a mapping at the top level, got a list", FIRN_EINVAL},
    {"a YAML syntax error",
     "clusters: [{name: c\n",
     "%1$s:2:1: yaml: ", FIRN_EINVAL},
};

static void test_kubeconfig_errors(void **state)
{
    const char *dir = *state;
    for (size_t i = 0; i < sizeof KC_ERRORS / sizeof *KC_ERRORS; i++) {
        char *path = kc_write(dir, "kubeconfig", KC_ERRORS[i].yaml);
        char want[1024];
        snprintf(want, sizeof want, KC_ERRORS[i].want, path, dir);
        config_kubeconfig k;
        firn_err err = {0};
        int rc = config_kubeconfig_load(path, &k, &err);
        if (rc == 0)
            fail_msg("%s: loaded without error", KC_ERRORS[i].what);
        size_t first = strcspn(err.msg, "\n");
        if (strncmp(err.msg, want, strlen(want)) != 0 || first < strlen(want))
            fail_msg("%s:\n got: %s\nwant: %s", KC_ERRORS[i].what, err.msg, want);
        assert_int_equal(rc, KC_ERRORS[i].code);
        assert_int_equal(err.code, KC_ERRORS[i].code);
        assert_null(k.arena);
        assert_null(k.server);
        /* secrets stay out of messages */
        assert_null(strstr(err.msg, "s3cret"));
        assert_null(strstr(err.msg, "LS0t"));
        free(path);
    }
}

/* Every problem of the chosen context is reported, in file order. */
static void test_kubeconfig_errors_collected(void **state)
{
    const char *dir = *state;
    char *path = kc_write(dir, "kubeconfig",
                          "clusters:\n"
                          "- name: c\n"
                          "  cluster: {proxy-url: 'http://p:3128'}\n"
                          "users:\n"
                          "- name: u\n"
                          "  user: {exec: {command: x}}\n"
                          "contexts: [{name: x, context: {cluster: c, user: u}}]\n");
    config_kubeconfig k;
    firn_err err = {0};
    assert_int_equal(config_kubeconfig_load(path, &k, &err), FIRN_EINVAL);
    char want[2048];
    snprintf(want, sizeof want,
             "%s:3:12: cluster \"c\" has no server\n"
             "%s:3:24: proxy-url: cluster \"c\" is reached through a proxy, which firn does not "
             "support\n"
             "%s:6:10: exec: user \"u\" gets its credentials from an exec plugin, which firn "
             "cannot run (give the user a token, tokenFile, client certificate or username and "
             "password)",
             path, path, path);
    assert_string_equal(err.msg, want);
    free(path);
}

/* The file itself: missing, too large; the cap holds for text in memory. */
static void test_kubeconfig_read(void **state)
{
    const char *dir = *state;
    char path[1024];
    snprintf(path, sizeof path, "%s/none", dir);
    config_kubeconfig k;
    firn_err err = {0};
    assert_int_equal(config_kubeconfig_load(path, &k, &err), FIRN_EIO);
    char want[1100];
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    assert_string_equal(err.msg, want);
    assert_null(k.arena);

    size_t big = KUBECONFIG_MAX_BYTES + 1;
    char *text = malloc(big + 1);
    memset(text, '#', big);
    text[big] = '\0';
    char *big_path = kc_write(dir, "big", text);
    assert_int_equal(config_kubeconfig_load(big_path, &k, &err), FIRN_ETOOBIG);
    assert_non_null(strstr(err.msg, "larger than the cap of 4194304 bytes"));
    assert_int_equal(config_kubeconfig_parse("kc", text, big, &k, &err), FIRN_ETOOBIG);
    assert_string_equal(err.msg, "kc: larger than the cap of 4194304 bytes");
    assert_null(k.arena);
    free(text);
    free(big_path);
}

/* /api/v1/status/config shows the document written out again, each secret
 * as "<secret>" (Prometheus's config.Secret), comments dropped, paths and
 * user names shown.  Expected texts are written by hand in libyaml's block
 * style. */
static void test_redacted_yaml(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } CASES[] = {
        {"# hunter2 is the password\n"
         "scrape_configs:\n"
         "  - job_name: a\n"
         "    basic_auth: {username: alice, password: hunter2}\n"
         "    static_configs: [{targets: ['h:1'], labels: {password: shown}}]\n"
         "  - job_name: b\n"
         "    authorization:\n"
         "      credentials: \"tok en\"\n"
         "  - job_name: c\n"
         "    bearer_token: |\n"
         "      multi\n"
         "      line\n"
         "  - job_name: d\n"
         "    basic_auth: {username: bob, password_file: /etc/pw}\n"
         "    kubernetes_sd_configs:\n"
         "      - role: pod\n"
         "        api_server: https://k:6443\n"
         "        basic_auth: {username: k, password: kpw}\n"
         "      - role: node\n"
         "        api_server: https://k:6443\n"
         "        bearer_token: ktok\n"
         "object_storage:\n"
         "  bucket:\n"
         "    type: S3\n"
         "    config: {bucket: b, secret_key: sk, endpoints: [e1]}\n",
         "scrape_configs:\n"
         "- job_name: a\n"
         "  basic_auth:\n"
         "    username: alice\n"
         "    password: <secret>\n"
         "  static_configs:\n"
         "  - targets:\n"
         "    - 'h:1'\n"
         "    labels:\n"
         "      password: shown\n"
         "- job_name: b\n"
         "  authorization:\n"
         "    credentials: <secret>\n"
         "- job_name: c\n"
         "  bearer_token: <secret>\n"
         "- job_name: d\n"
         "  basic_auth:\n"
         "    username: bob\n"
         "    password_file: /etc/pw\n"
         "  kubernetes_sd_configs:\n"
         "  - role: pod\n"
         "    api_server: https://k:6443\n"
         "    basic_auth:\n"
         "      username: k\n"
         "      password: <secret>\n"
         "  - role: node\n"
         "    api_server: https://k:6443\n"
         "    bearer_token: <secret>\n"
         "object_storage:\n"
         "  bucket:\n"
         "    type: S3\n"
         "    config:\n"
         "      bucket: <secret>\n"
         "      secret_key: <secret>\n"
         "      endpoints:\n"
         "      - <secret>\n"},
        /* a secret shared through an alias is masked wherever it appears;
         * the alias stays an alias (an alias bomb is not expanded); a
         * quoted "true" stays a string */
        {"scrape_configs:\n"
         "  - job_name: a\n"
         "    basic_auth: {username: u, password: &pw s3cret}\n"
         "    static_configs: [{targets: [x], labels: {l: *pw, m: *pw, q: 'true'}}]\n",
         "scrape_configs:\n"
         "- job_name: a\n"
         "  basic_auth:\n"
         "    username: u\n"
         "    password: &a1 <secret>\n"
         "  static_configs:\n"
         "  - targets:\n"
         "    - x\n"
         "    labels:\n"
         "      l: *a1\n"
         "      m: *a1\n"
         "      q: 'true'\n"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        firn_err err = {0};
        firn_config *cfg = config_load_string(CASES[i].in, strlen(CASES[i].in), "t.yml", &err);
        if (!cfg)
            fail_msg("case %zu: %s", i, err.msg);
        assert_string_equal(cfg->yaml, CASES[i].want);
        config_free(cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parca_default_yaml),
        cmocka_unit_test(test_parca_complex),
        cmocka_unit_test(test_parca_profile_merge),
        cmocka_unit_test(test_cpu_seconds_small_interval),
        cmocka_unit_test(test_full_prometheus),
        cmocka_unit_test(test_rules_and_alerting),
        cmocka_unit_test(test_remote_write),
        cmocka_unit_test(test_yaml_anchors_and_nulls),
        cmocka_unit_test(test_empty_documents),
        cmocka_unit_test(test_body_size_units),
        cmocka_unit_test(test_profile_remote_write),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_errors_collected),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_default_config),
        cmocka_unit_test(test_redacted_yaml),
        cmocka_unit_test(test_scrape_equal),
        cmocka_unit_test(test_k8s_attach_metadata),
        cmocka_unit_test_setup_teardown(test_kubeconfig_files, kc_setup, kc_teardown),
        cmocka_unit_test_setup_teardown(test_kubeconfig_data, kc_setup, kc_teardown),
        cmocka_unit_test_setup_teardown(test_kubeconfig_basic_auth, kc_setup, kc_teardown),
        cmocka_unit_test_setup_teardown(test_kubeconfig_current_context, kc_setup,
                                        kc_teardown),
        cmocka_unit_test_setup_teardown(test_kubeconfig_errors, kc_setup, kc_teardown),
        cmocka_unit_test_setup_teardown(test_kubeconfig_errors_collected, kc_setup,
                                        kc_teardown),
        cmocka_unit_test_setup_teardown(test_kubeconfig_read, kc_setup, kc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
