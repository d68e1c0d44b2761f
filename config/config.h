/* config.h -- firn's YAML configuration: types, defaults and validation.
 *
 * Reads a Prometheus/Parca-style configuration file (libyaml) into typed,
 * fully defaulted structs.  A parca.yaml (scrape_configs with
 * profiling_config, object_storage) loads unchanged; so do Prometheus
 * scrape configs restricted to the fields listed below.
 *
 * Contract
 * - Strict: unknown keys, duplicate keys, wrong node kinds (a list where a
 *   scalar is expected...), bad durations, sizes, label names, duplicate job
 *   names and invalid relabel rules are errors.  Every error is one line
 *   "NAME:LINE:COL: field: message" (1-based line and column of the offending
 *   key or value, from libyaml's marks).
 * - All errors are collected (up to CONFIG_MAX_ERRORS), in document order,
 *   except that a YAML syntax error stops reading at that point: it is then
 *   the only error.  A file with any error yields no config (NULL).
 * - Caps: input at most CONFIG_MAX_BYTES, nesting at most CONFIG_MAX_DEPTH,
 *   and at most CONFIG_MAX_NODES nodes once aliases are expanded (so an
 *   alias bomb is refused, not expanded).  Anchors and aliases work; the
 *   merge key "<<" is not supported (it is an unknown field).
 * - Memory: a firn_config owns everything it points to (strings live in an
 *   arena, relabel rules are destroyed with firn_relabel_config_destroy);
 *   config_free releases all of it.  A loaded config is read-only, so any
 *   number of threads may read it at once.
 * - Threads: loading is reentrant (no global state).
 *
 * Keys and defaults (the source of each default in parentheses)
 *   global:
 *     scrape_interval   10s (Parca's DefaultScrapeConfig; Prometheus says 1m)
 *     scrape_timeout    10s, but never more than scrape_interval: unset, it
 *                       is min(10s, scrape_interval); set above the interval
 *                       it is an error (Prometheus GlobalConfig)
 *     external_labels   {}; label names must be valid
 *     evaluation_interval  1m: rule groups without an interval of their own
 *   scrape_configs: [scrape_config]
 *   rule_files:         [glob] Prometheus rule files (rules/ reads them); a
 *                       '*' only in the last path element; relative to the
 *                       config file's directory
 *   alerting:           {alert_relabel_configs: [relabel_config],
 *                        alertmanagers: [{static_configs, scheme (http),
 *                        path_prefix (/), timeout (10s), api_version (v2;
 *                        v1 is refused: firn speaks v2 only), basic_auth,
 *                        authorization, tls_config}]}; an Alertmanager's
 *                       relabel_configs is refused (not supported)
 *   object_storage:     Parca's bucket config; accepted and not used (firn
 *                       stores locally); see config_object_storage_type.
 *   Other top-level keys (remote_write, ...) are unknown fields.
 *
 *   scrape_config:
 *     job_name          required, unique across scrape configs
 *     scrape_interval   global scrape_interval
 *     scrape_timeout    min(global scrape_timeout, scrape_interval)
 *                       (Prometheus).  A larger explicit value is accepted:
 *                       Parca requires timeout > interval for CPU profiles.
 *     scheme            http (http or https)
 *     params            {name: [values]}
 *     honor_labels      false      honor_timestamps  true
 *     basic_auth        {username, password | password_file}
 *     authorization     {type: Bearer, credentials | credentials_file};
 *                       type "Basic" is refused (use basic_auth)
 *     bearer_token, bearer_token_file   deprecated: at most one, not with
 *                       authorization or basic_auth; turned into
 *                       authorization {type: Bearer, ...}
 *     tls_config        {ca_file, cert_file, key_file, server_name,
 *                        insecure_skip_verify}; cert_file and key_file
 *                       together or not at all
 *     static_configs    [{targets: [host:port], labels: {name: value}}];
 *                       without relabel_configs a target containing '/' is
 *                       refused (a URL pasted as a target)
 *     file_sd_configs   [{files: [pattern], refresh_interval: 5m}]
 *     dns_sd_configs    [{names: [...], type: SRV|A|AAAA|MX|NS (SRV),
 *                        port (required unless SRV), refresh_interval: 30s}]
 *     kubernetes_sd_configs  [{role, api_server | kubeconfig_file,
 *                        namespaces: {own_namespace, names}, selectors:
 *                        [{role, label, field}], attach_metadata: {node,
 *                        namespace}, and the HTTP client keys above (only
 *                        with api_server)}].  attach_metadata's deployment,
 *                        job and cronjob are refused when true (false is
 *                        accepted).  kubeconfig_file is only a path here:
 *                        config_kubeconfig_load (kubeconfig.h) reads it.
 *     relabel_configs   [relabel_config], each validated and compiled by
 *                       firn_relabel_config_init (model/)
 *     sample_limit, target_limit, label_limit   0 (no limit)
 *     body_size_limit   0 (no limit); "10MB", "512KiB"... (base 2, as
 *                       Prometheus's units.Base2Bytes)
 *     normalized_addresses   Parca's flag for its agent; accepted, unused
 *     profiling_config:
 *       path_prefix     "" prepended to every path
 *       pprof_config:   {name: {enabled, path, delta, seconds,
 *                                keep_sample_type: [{type, unit}]}}
 *         Parca's defaults, merged into what the file gives (an entry for a
 *         built-in name inherits its path and delta; "enabled" defaults to
 *         true for any entry present):
 *           memory       /debug/pprof/allocs     delta false
 *           block        /debug/pprof/block      delta false
 *           goroutine    /debug/pprof/goroutine  delta false
 *           mutex        /debug/pprof/mutex      delta false
 *           process_cpu  /debug/pprof/profile    delta true
 *         (Parca pkg/config/config.go DefaultScrapeConfig.)  "delta" means
 *         Parca's delta: the target records for `seconds` and returns a
 *         delta (?seconds=N).  Cumulative profiles (memory, block, mutex)
 *         are turned into deltas by firn at ingest, whatever this flag says.
 *         seconds: only with delta, 1..86400; default max(1, scrape_interval - 1s)
 *         (PPROF.md: interval - 1, as Grafana Alloy; Parca uses the
 *         interval itself and a timeout of interval + 3s).  A custom name
 *         needs a path; names follow the label-name rule.
 */
#ifndef FIRN_CONFIG_H
#define FIRN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

#define CONFIG_MAX_BYTES (16u << 20)
#define CONFIG_MAX_DEPTH 64
#define CONFIG_MAX_NODES 1000000
#define CONFIG_MAX_ERRORS 100

/* ---- types --------------------------------------------------------------- */

typedef struct config_basic_auth {
    bool set;
    char *username;
    char *password;       /* NULL unless given */
    char *password_file;  /* NULL unless given; never both */
} config_basic_auth;

typedef struct config_authorization {
    bool set;
    char *type;              /* "Bearer" unless given */
    char *credentials;       /* NULL unless given */
    char *credentials_file;  /* NULL unless given; never both */
} config_authorization;

typedef struct config_tls {
    char *ca_file, *cert_file, *key_file, *server_name;  /* NULL unless given */
    bool insecure_skip_verify;
} config_tls;

/* The HTTP client keys shared by scrape configs and Kubernetes SD.  The
 * deprecated bearer_token(_file) are folded into authorization. */
typedef struct config_http {
    config_basic_auth basic_auth;
    config_authorization authorization;
    config_tls tls;
} config_http;

typedef struct config_param {
    char *name;
    char **values;
    size_t n_values;
} config_param;

/* One static target group: each target becomes {__address__: target} plus
 * labels (sorted by name, unique, valid names). */
typedef struct config_target_group {
    char **targets;
    size_t n_targets;
    firn_label *labels;
    size_t n_labels;
} config_target_group;

typedef struct config_file_sd {
    char **files;
    size_t n_files;
    int64_t refresh_interval_ms;  /* 5m */
} config_file_sd;

typedef struct config_dns_sd {
    char **names;
    size_t n_names;
    char *type;                   /* upper case: SRV, A, AAAA, MX or NS */
    uint16_t port;                /* 0 for SRV */
    int64_t refresh_interval_ms;  /* 30s */
} config_dns_sd;

typedef struct config_k8s_selector {
    char *role;
    char *label;  /* NULL unless given */
    char *field;  /* NULL unless given */
} config_k8s_selector;

typedef struct config_kubernetes_sd {
    char *role;             /* node, service, pod, endpoints, endpointslice, ingress */
    char *api_server;       /* NULL: in-cluster or kubeconfig_file */
    char *kubeconfig_file;  /* NULL unless given */
    bool own_namespace;
    char **namespaces;      /* empty: all namespaces */
    size_t n_namespaces;
    config_k8s_selector *selectors;
    size_t n_selectors;
    bool attach_node, attach_namespace;
    config_http http;       /* only with api_server */
} config_kubernetes_sd;

typedef struct config_sample_type {
    char *type;
    char *unit;
} config_sample_type;

/* One profile type a job scrapes, after Parca's defaults are merged in. */
typedef struct config_profile_type {
    char *name;         /* the first part of the profile type: "process_cpu" */
    bool enabled;
    char *path;         /* path_prefix + path: "/debug/pprof/profile" */
    bool delta;         /* Parca's delta: request ?seconds=N */
    int64_t seconds;    /* N when delta, else 0 */
    int64_t timeout_ms; /* the job's timeout, at least seconds + 3s for delta */
    config_sample_type *keep_sample_types;  /* empty: keep all */
    size_t n_keep_sample_types;
} config_profile_type;

typedef struct config_scrape {
    char *job_name;
    int64_t interval_ms;
    int64_t timeout_ms;
    char *scheme;        /* "http" or "https" */
    bool honor_labels;
    bool honor_timestamps;
    config_param *params;  /* sorted by name */
    size_t n_params;
    config_http http;
    uint64_t sample_limit, target_limit, label_limit, body_size_limit;
    char *path_prefix;   /* "" unless given; already applied to paths */
    config_profile_type *profile_types;  /* built-ins first, then custom in file order */
    size_t n_profile_types;
    config_target_group *static_configs;
    size_t n_static_configs;
    config_file_sd *file_sd;
    size_t n_file_sd;
    config_dns_sd *dns_sd;
    size_t n_dns_sd;
    config_kubernetes_sd *kubernetes_sd;
    size_t n_kubernetes_sd;
    firn_relabel_config *relabel_configs;  /* initialized and compiled */
    size_t n_relabel_configs;
} config_scrape;

/* One alerting.alertmanagers entry. */
typedef struct config_alertmanager {
    config_target_group *static_configs;
    size_t n_static_configs;
    char *scheme;               /* "http" or "https" */
    char *path_prefix;          /* "/" unless given */
    int64_t timeout_ms;         /* 10s */
    config_http http;
} config_alertmanager;

typedef struct firn_config firn_config;

struct firn_config {
    char *source;  /* the name errors and logs use: the path, or the given name */
    /* the loaded document written out again with every secret (passwords,
     * credentials, bearer tokens, object_storage) as "<secret>" and without
     * comments: what /api/v1/status/config shows (redact.c) */
    char *yaml;
    int64_t scrape_interval_ms;
    int64_t scrape_timeout_ms;
    firn_label *external_labels;  /* sorted by name */
    size_t n_external_labels;
    config_scrape *scrapes;
    size_t n_scrapes;
    int64_t evaluation_interval_ms;  /* 1m */
    char **rule_files;          /* globs, joined to the config file's directory */
    size_t n_rule_files;
    config_alertmanager *alertmanagers;
    size_t n_alertmanagers;
    firn_relabel_config *alert_relabel_configs;
    size_t n_alert_relabel_configs;
    bool has_object_storage;
    char *object_storage_type;  /* object_storage.bucket.type, or NULL */
    firn_arena *arena;          /* owns the strings and arrays above */
};

/* The error lines of a failed load, each "NAME:LINE:COL: field: message". */
typedef struct config_errors {
    char **lines;
    size_t n;
} config_errors;

/* ---- loading ------------------------------------------------------------- */

/* Load and validate a file (CONFIG_MAX_BYTES at most; "-" is standard
 * input).  On error returns NULL and sets err: its message holds the first
 * error lines joined by newlines, as many as fit, then "(and N more)". */
firn_config *config_load_file(const char *path, firn_err *err);
/* The same for text in memory; name stands for the file in messages. */
firn_config *config_load_string(const char *text, size_t len, const char *name,
                                firn_err *err);
/* As above, and when errs is not NULL every error line is also stored in
 * *errs (caller frees with config_errors_free, also after success). */
firn_config *config_load_file_errors(const char *path, config_errors *errs, firn_err *err);
firn_config *config_load_string_errors(const char *text, size_t len, const char *name,
                                       config_errors *errs, firn_err *err);
void config_errors_free(config_errors *errs);

void config_free(firn_config *cfg);

/* ---- queries ------------------------------------------------------------- */

/* The embedded configuration firn runs with when no file is given, as
 * malloc'd YAML: job "firn" scraping firn itself at self ("localhost:7070")
 * for the profiles firn serves of itself (process_cpu and memory; block,
 * goroutine and mutex disabled). */
char *config_default_yaml(const char *self);

/* Whether two scrape configs would scrape identically (every field,
 * relabel rules included), so that a reload can keep that scrape pool. */
bool config_scrape_equal(const config_scrape *a, const config_scrape *b);
/* The same comparison for one SD config entry (discovery keeps a provider
 * whose entry is unchanged). */
bool config_file_sd_equal(const config_file_sd *a, const config_file_sd *b);
bool config_dns_sd_equal(const config_dns_sd *a, const config_dns_sd *b);
bool config_kubernetes_sd_equal(const config_kubernetes_sd *a, const config_kubernetes_sd *b);

/* Deep copies of in into out, every string and array in arena a, so that
 * the copy outlives the config.  They do not fail (model/alloc.h);
 * config_http_copy still returns true for callers written before that. */
bool config_http_copy(firn_arena *a, const config_http *in, config_http *out);
void config_file_sd_copy(firn_arena *a, const config_file_sd *in, config_file_sd *out);
void config_dns_sd_copy(firn_arena *a, const config_dns_sd *in, config_dns_sd *out);
void config_kubernetes_sd_copy(firn_arena *a, const config_kubernetes_sd *in,
                               config_kubernetes_sd *out);

/* Prometheus's file_sd pattern rule: "*" only in the last path element,
 * and a .json, .yml or .yaml name:
 * ^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$ */
bool config_file_sd_pattern_ok(const char *pattern);

/* The scrape config of a job, or NULL. */
const config_scrape *config_scrape_find(const firn_config *cfg, const char *job_name);

#endif
