/* config.h -- config/, the YAML files firn reads: its one public header.
 *
 * Five parts, each with its contract below:
 *   1. firn's configuration file (--config.file): scrape configs, service
 *      discovery entries, relabeling, rule files;
 *   2. the web configuration file (--web.config.file): TLS and auth;
 *   3. firn-agent's configuration file (--config-path);
 *   4. kubeconfig files, for Kubernetes service discovery;
 *   5. the YAML decoder the others share, public for the modules that read
 *      YAML files of their own (discovery's file_sd targets, rule files).
 * All are strict where firn's own files are concerned and report every
 * error as "NAME:LINE:COL: field: message".  Memory follows model/alloc.h:
 * inputs are capped (CONFIG_MAX_BYTES, KUBECONFIG_MAX_BYTES, node and depth
 * caps) before anything is built, and no function here fails for want of
 * memory.
 */
#ifndef FIRN_CONFIG_H
#define FIRN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

/* ==== 1. firn's configuration ===========================================
 *
 * firn's YAML configuration: types, defaults and validation.
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
 *                        alertmanagers: [{static_configs, file_sd_configs,
 *                        dns_sd_configs, kubernetes_sd_configs (as for
 *                        scrapes), relabel_configs (over the targets'
 *                        labels, __scheme__ and __alerts_path__; a null
 *                        rule is Prometheus's "empty or null Alertmanager
 *                        target relabeling rule"; with rules, static
 *                        targets may hold '/'), scheme (http), path_prefix
 *                        (/), timeout (10s), api_version (v2; v1 is
 *                        refused: firn speaks v2 only), basic_auth,
 *                        authorization, tls_config}]}
 *   remote_write:       [{url (required), name (unique; a hash of the
 *                        entry when absent, as Prometheus), remote_timeout
 *                        (30s), headers ({name: value}; Authorization and
 *                        Prometheus 2.42's reserved headers are refused),
 *                        write_relabel_configs, basic_auth, authorization,
 *                        bearer_token(_file), tls_config, queue_config:
 *                        {capacity (2500), max_samples_per_send (500),
 *                        batch_send_deadline (5s), min_backoff (30ms),
 *                        max_backoff (5s)}}] (Prometheus 2.42's defaults);
 *                       firn sends through one queue per entry (one shard),
 *                       so queue_config's shard keys are unknown fields
 *   profile_remote_write: [{url (required: the Pyroscope base URL, http or
 *                        https), name (unique; [A-Za-z0-9_.-], not starting
 *                        with '.'), remote_timeout (30s), headers {name:
 *                        value}, write_relabel_configs, basic_auth,
 *                        authorization, bearer_token(_file), tls_config,
 *                        queue_config: {max_bytes (256MiB, at least 1MiB),
 *                        shards (1, 1..64), max_samples_per_send (100
 *                        profiles, 1..4096: what one Push to firn may carry),
 *                        batch_send_deadline (5s), min_backoff (30ms),
 *                        max_backoff (5s), retry_on_http_429 (true)}}];
 *                        URLs and names unique (forward.h sends them)
 *   object_storage:     Parca's bucket config; accepted and not used (firn
 *                       stores locally); see config_object_storage_type.
 *   Other top-level keys are unknown fields.
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
 *                        config_kubeconfig_load (part 4) reads it.
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

/* One profile_remote_write entry: where stored profiles are forwarded. */
typedef struct config_profile_remote_write {
    char *url;                  /* the Pyroscope base URL; Push is <url>/push.v1.PusherService/Push */
    char *name;                 /* unique; "" unless given (the queue is then named by the URL) */
    int64_t remote_timeout_ms;  /* 30s */
    config_http http;
    firn_label *headers;        /* sorted by name */
    size_t n_headers;
    firn_relabel_config *write_relabel_configs;
    size_t n_write_relabel_configs;
    /* queue_config */
    uint64_t max_bytes;         /* 256MiB: the on-disk queue's bound */
    uint64_t shards;            /* 1 */
    uint64_t max_samples_per_send;  /* 100 profiles */
    int64_t batch_send_deadline_ms; /* 5s */
    int64_t min_backoff_ms;     /* 30ms */
    int64_t max_backoff_ms;     /* 5s */
    bool retry_on_http_429;     /* true */
} config_profile_remote_write;

/* One alerting.alertmanagers entry. */
typedef struct config_alertmanager {
    config_target_group *static_configs;
    size_t n_static_configs;
    config_file_sd *file_sd;
    size_t n_file_sd;
    config_dns_sd *dns_sd;
    size_t n_dns_sd;
    config_kubernetes_sd *kubernetes_sd;
    size_t n_kubernetes_sd;
    /* applied to each discovered target's labels plus __scheme__ and
     * __alerts_path__ (rules/notify.c); initialized and compiled */
    firn_relabel_config *relabel_configs;
    size_t n_relabel_configs;
    char *scheme;               /* "http" or "https" */
    char *path_prefix;          /* "/" unless given */
    int64_t timeout_ms;         /* 10s */
    config_http http;
} config_alertmanager;

#define CONFIG_REMOTE_WRITE_CAPACITY_MAX 10000000u  /* queue_config.capacity */

/* One remote_write entry (rules/ sends recorded series to it). */
typedef struct config_remote_write {
    char *url;
    char *name;                     /* given, or "" */
    int64_t remote_timeout_ms;      /* 30s */
    firn_label *headers;            /* sorted by name */
    size_t n_headers;
    config_http http;
    firn_relabel_config *write_relabel_configs;  /* initialized and compiled */
    size_t n_write_relabel_configs;
    uint64_t capacity;              /* 2500 samples */
    uint64_t max_samples_per_send;  /* 500 */
    int64_t batch_send_deadline_ms; /* 5s */
    int64_t min_backoff_ms;         /* 30ms */
    int64_t max_backoff_ms;         /* 5s */
} config_remote_write;

typedef struct firn_config firn_config;

struct firn_config {
    char *source;  /* the name errors and logs use: the path, or the given name */
    /* the loaded document written out again with every secret (passwords,
     * credentials, bearer tokens, object_storage) as "<secret>" and without
     * comments: what /api/v1/status/config shows (redact.c) */
    char *yaml;
    /* the document as loaded, secrets included: only for config_copy,
     * never shown */
    char *text;
    size_t text_len;
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
    config_remote_write *remote_writes;
    size_t n_remote_writes;
    config_profile_remote_write *profile_remote_writes;
    size_t n_profile_remote_writes;
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
/* A second, independent config from the text cfg was loaded from (same
 * name): for a component that must own its configuration's lifetime (the
 * rule engine).  Unlike loading cfg->yaml, secrets are kept. */
firn_config *config_copy(const firn_config *cfg, firn_err *err);

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

/* ==== 2. the web configuration ==========================================
 *
 * the web configuration file (firn --web.config.file): TLS
 * and authentication for firn's HTTP server, in Prometheus's web-config
 * format (exporter-toolkit, docs/web-configuration.md), so a file written
 * for Prometheus or an exporter loads unchanged unless it uses a key listed
 * below as refused.
 *
 * Contract
 * - Strict, like part 1: unknown keys, duplicate keys, wrong node kinds
 *   and bad values are errors "NAME:LINE:COL: field: message"; all are
 *   collected (up to CONFIG_MAX_ERRORS); a file with any error yields no
 *   config.  Keys of Prometheus's format that firn does not implement are
 *   refused with "not supported by firn", never ignored: a file that asks
 *   for a protection firn would not give must not start a server.
 * - Only the text is checked here (no file is opened but the config
 *   itself): http_new loads the certificates and says what is wrong with
 *   them.  A relative cert_file, key_file or client_ca_file is relative to
 *   the directory of the config file (of `name` for the string loaders), as
 *   exporter-toolkit does.
 * - Memory: a config_web owns everything it points to; config_web_free.
 *   Read-only once loaded: any thread may read it.
 *
 * Keys (defaults in parentheses)
 *   tls_server_config:        serve HTTPS only (HTTP/1.1, ALPN http/1.1)
 *     cert_file, key_file     PEM certificate (chain) and key; each needs
 *                             the other, and any other key of
 *                             tls_server_config needs them
 *     client_auth_type        (NoClientCert) RequestClientCert,
 *                             RequireAnyClientCert (also RequireClientCert),
 *                             VerifyClientCertIfGiven,
 *                             RequireAndVerifyClientCert: Go's
 *                             tls.ClientAuthType
 *     client_ca_file          PEM CAs that verify client certificates;
 *                             refused with NoClientCert (as exporter-
 *                             toolkit); required by VerifyClientCertIfGiven
 *                             and RequireAndVerifyClientCert (Go would fall
 *                             back to the system's roots, which lets in any
 *                             client with a certificate from a public CA)
 *     min_version, max_version   TLS12 or TLS13 (TLS12, TLS13); TLS10 and
 *                             TLS11 are refused
 *     prefer_server_cipher_suites   a boolean, accepted and ignored, as Go
 *                             itself ignores it since Go 1.18
 *     refused: cert, key, client_ca (inline PEM), cipher_suites,
 *              curve_preferences, client_allowed_sans
 *   http_server_config:
 *     headers                 {name: value} added to every response (401s
 *                             too): Content-Security-Policy, X-Frame-Options
 *                             (deny or sameorigin), X-Content-Type-Options
 *                             (nosniff), X-XSS-Protection,
 *                             Strict-Transport-Security; a blank value adds
 *                             nothing; any other name is an error
 *     http2                   false only (firn serves HTTP/1.1; Prometheus's
 *                             default is true)
 *   basic_auth_users          {user: bcrypt hash}, $2a$, $2b$ or $2y$ with a
 *                             cost of 4 to 31 (`htpasswd -nbBC 10 USER PASS`);
 *                             a user name may not hold ':'
 *   firn_bearer_token_sha256  firn's extension, not Prometheus's: [hex
 *                             SHA-256 of a token] (`printf %s "$TOKEN" |
 *                             sha256sum`); a request with "Authorization:
 *                             Bearer TOKEN" for one of them is let in
 *   refused: rate_limit
 *   With basic_auth_users or firn_bearer_token_sha256 every request needs
 *   one valid credential, as Prometheus protects every path.
 */

/* TLS versions as on the wire (and as OpenSSL's TLS1_2_VERSION...). */
#define CONFIG_WEB_TLS12 0x0303
#define CONFIG_WEB_TLS13 0x0304
#define CONFIG_WEB_SHA256_LEN 32

typedef enum config_web_client_auth {
    CONFIG_WEB_NO_CLIENT_CERT,
    CONFIG_WEB_REQUEST_CLIENT_CERT,           /* asked for, not verified, not required */
    CONFIG_WEB_REQUIRE_ANY_CLIENT_CERT,       /* required, not verified */
    CONFIG_WEB_VERIFY_CLIENT_CERT_IF_GIVEN,   /* verified when given */
    CONFIG_WEB_REQUIRE_AND_VERIFY_CLIENT_CERT,
} config_web_client_auth;

typedef struct config_web_user {
    char *name;
    char *hash;   /* a bcrypt hash, checked to be one */
} config_web_user;

typedef struct config_web_header {
    char *name;   /* as the file spells it, one of the five allowed */
    char *value;  /* not blank; no control characters */
} config_web_header;

typedef struct config_web_token {
    unsigned char sha256[CONFIG_WEB_SHA256_LEN];
} config_web_token;

typedef struct config_web {
    char *source;             /* the file's name, as in messages */
    bool tls;                 /* tls_server_config given: HTTPS only */
    char *cert_file;          /* with tls: paths resolved as said above */
    char *key_file;
    char *client_ca_file;     /* NULL unless given */
    config_web_client_auth client_auth;
    int min_version, max_version;   /* CONFIG_WEB_TLS12 or CONFIG_WEB_TLS13 */
    config_web_user *users;   /* sorted by name, unique */
    size_t n_users;
    config_web_token *tokens;
    size_t n_tokens;
    config_web_header *headers;
    size_t n_headers;
    firn_arena *arena;        /* owns everything above */
} config_web;

/* Load a web configuration file (CONFIG_MAX_BYTES at most).  On error
 * returns NULL, err holds the first lines and errs (when not NULL) every
 * line; free errs with config_errors_free, also after success. */
config_web *config_web_load_file(const char *path, config_errors *errs, firn_err *err);
/* The same for text in memory; name stands for the file. */
config_web *config_web_load_string(const char *text, size_t len, const char *name,
                                   config_errors *errs, firn_err *err);
void config_web_free(config_web *w);

/* ---- credentials ----------------------------------------------------------- */

/* Whether requests need credentials (users or tokens are configured). */
bool config_web_auth_required(const config_web *w);

/* Whether user and password are one of basic_auth_users.  Slow on
 * purpose (bcrypt: tens of milliseconds at cost 10): never on an event
 * loop.  An unknown user costs one bcrypt too (against another user's
 * hash), so timing does not tell which users exist; a password holding a
 * NUL byte never matches.  Any thread. */
bool config_web_check_basic(const config_web *w, const char *user, size_t user_len,
                            const char *password, size_t password_len);

/* Whether token is one of firn_bearer_token_sha256: one SHA-256 and
 * constant-time compares, fast enough for an event loop.  Any thread. */
bool config_web_check_bearer(const config_web *w, const char *token, size_t len);

/* ==== 3. firn-agent's configuration =====================================
 *
 * firn-agent's configuration file (--config-path), in
 * Parca Agent's format: Prometheus relabel_configs applied to the labels of
 * every profile the agent pushes.
 *
 *   relabel_configs: [relabel_config]   each validated and compiled as in
 *                                       a scrape config (model/ relabel)
 *
 * Strict as part 1: unknown keys, duplicate keys, wrong node kinds and
 * invalid rules are errors "NAME:LINE:COL: field: message", all collected;
 * a file with any error yields no config.  An empty file is an empty
 * configuration.  A config_agent owns what it points to (config_agent_free)
 * and is read-only once loaded.
 */

typedef struct config_agent {
    firn_relabel_config *relabel_configs;   /* initialized and compiled */
    size_t n_relabel_configs;
    firn_arena *arena;
} config_agent;

/* On error NULL, err holding the first lines and errs (when not NULL)
 * every line; the caller frees errs with config_errors_free either way. */
config_agent *config_agent_load_string(const char *text, size_t len, const char *name,
                                       config_errors *errs, firn_err *err);
config_agent *config_agent_load_file(const char *path, config_errors *errs, firn_err *err);
void config_agent_free(config_agent *c);

/* ==== 4. kubeconfig files ===============================================
 *
 * a kubeconfig file (client-go clientcmd v1, what kubectl
 * reads) reduced to the one connection Kubernetes SD needs: the server,
 * TLS and credentials of its current context (kubernetes_sd_configs'
 * kubeconfig_file).
 *
 * Contract
 * - The context is current-context; when that is absent or empty and the
 *   file has exactly one context, that one.  The context must name a
 *   cluster and a user that the file defines (as client-go's
 *   ConfirmUsable); the cluster must have a server, an http:// or https://
 *   URL.
 * - Lenient about keys, strict about what it reads: keys firn does not read
 *   (preferences, extensions, proxy settings of other clusters, ...) are
 *   ignored, but every field read must have its type (a string, a boolean,
 *   a list, a mapping), names must be unique within clusters, users and
 *   contexts, and the chosen context's pieces must be consistent.
 * - Refused, naming the user or cluster: credential plugins (exec,
 *   auth-provider: firn cannot run them), impersonation (as, as-uid,
 *   as-groups, as-user-extra), proxy-url, data and file given for the same
 *   item (certificate-authority, client-certificate, client-key; token and
 *   tokenFile), a client certificate without its key or a key without its
 *   certificate, token or tokenFile together with username/password (client-go:
 *   "more than one authentication method"), a CA together with
 *   insecure-skip-tls-verify, a namespace that is not a DNS-1123 label.
 * - Files: a relative certificate-authority, client-certificate,
 *   client-key or tokenFile is relative to the kubeconfig's directory, as
 *   kubectl resolves it.  Each must be readable now (stat and access only:
 *   nothing is opened); the client reads them when it connects, so a
 *   rotated token or certificate is picked up.
 * - Errors: every problem is reported (up to CONFIG_MAX_ERRORS), one per
 *   line, "PATH:LINE:COL: field: what" where a node is at fault and
 *   "PATH: what" otherwise (the file itself, a missing context).  Secrets
 *   (token, password, key data) never appear in messages.  Codes:
 *   FIRN_EIO when a file could not be read (the kubeconfig or one it
 *   names), FIRN_ETOOBIG for a kubeconfig over KUBECONFIG_MAX_BYTES, else
 *   FIRN_EINVAL.
 * - Memory: a loaded config_kubeconfig owns everything it points to, in its
 *   arena; config_kubeconfig_free releases it.  On error nothing is left
 *   to free (*out is zeroed).  Loading is reentrant; a loaded value is
 *   read-only, so any thread may read it.
 */

/* kubeconfig files hold a few certificates and tokens: 4 MiB is plenty. */
#define KUBECONFIG_MAX_BYTES (4u << 20)

/* The connection a kubeconfig file's current context names.  For each of
 * the CA, the client certificate and the client key, at most one of the
 * file (in http.tls) and the data is set; the certificate and the key are
 * both given (file or data) or neither. */
typedef struct config_kubeconfig {
    char *server;              /* cluster.server, e.g. "https://1.2.3.4:6443" */
    config_http http;          /* tls: ca_file (certificate-authority), cert_file/key_file
                                  (client-certificate/client-key), insecure_skip_verify
                                  (insecure-skip-tls-verify), server_name (tls-server-name);
                                  authorization {Bearer, credentials (token) |
                                  credentials_file (tokenFile)};
                                  basic_auth (username/password) */
    unsigned char *ca_data, *cert_data, *key_data;  /* decoded *-data (PEM bytes) or NULL */
    size_t ca_len, cert_len, key_len;
    char *ns;                  /* context.namespace or NULL */
    firn_arena *arena;         /* owns everything above */
} config_kubeconfig;

/* Read path (at most KUBECONFIG_MAX_BYTES) and decode it as below. */
int config_kubeconfig_load(const char *path, config_kubeconfig *out, firn_err *err);

/* Decode a kubeconfig's text; path names it in messages and relative file
 * names are resolved against its directory. */
int config_kubeconfig_parse(const char *path, const char *data, size_t len,
                            config_kubeconfig *out, firn_err *err);

/* Release what a load gave; k is zeroed.  NULL or a zeroed k is fine. */
void config_kubeconfig_free(config_kubeconfig *k);

/* ==== 5. YAML decoding ==================================================
 *
 * config/'s YAML decoding, public: a YAML document as a tree of
 * nodes with their positions (yaml_tree.c, on libyaml's events), and the
 * decoder that turns such a tree into typed structs, strictly, with every
 * error as "NAME:LINE:COL: field: message" (decode.c).  Every YAML file
 * firn reads goes through it, in config/ and outside (discovery's file_sd
 * target files, rule files).
 *
 * Nodes live in the caller's arena.  An alias is resolved to the node of its
 * anchor (shared, not copied), so the tree is a DAG; `weight` counts the
 * nodes of a subtree with aliases expanded, which is what bounds the work of
 * walking it.  Anchors become visible only once their node is complete, so
 * there are no cycles.
 *
 * A decoder (config_dec) collects errors instead of stopping at the first one
 * (up to CONFIG_MAX_ERRORS, then a count), so one run lists every problem
 * of a file.  Strings it returns live in the decoder's arena, which the
 * caller owns.  config.c (the scrape configuration), web_config.c (the
 * web configuration), agent_config.c and kubeconfig.c (kubeconfig files,
 * leniently) are its users, and outside config/ discovery/file.c (file_sd's
 * YAML target files) and rules/ (rule files and rule unit tests).
 */

/* ---- the node tree (yaml_tree.c) ------------------------------------------ */

typedef enum config_ynode_kind {
    CONFIG_YNODE_SCALAR,
    CONFIG_YNODE_SEQ,
    CONFIG_YNODE_MAP
} config_ynode_kind;

typedef struct config_ynode config_ynode;
struct config_ynode {
    config_ynode_kind kind;
    int line, col;       /* 1-based */
    bool plain;          /* scalar written without quotes or block style */
    char *value;         /* scalar: NUL-terminated (may also hold NULs: see len) */
    size_t len;
    config_ynode **items; /* seq: n items; map: n pairs as key, value, key, value... */
    size_t n;
    size_t weight;       /* nodes in this subtree, aliases expanded (saturating) */
};

/* Parse one YAML document.  *root is NULL for an empty document.  On a
 * syntax error or a cap (depth, expanded nodes, several documents) returns
 * FIRN_EINVAL with err "LINE:COL: message" and sets *line and *col. */
int config_ytree_parse(const char *text, size_t len, firn_arena *arena, config_ynode **root,
                       int *line, int *col, firn_err *err);

/* A null scalar: plain empty, ~, null, Null or NULL. */
bool config_ynode_is_null(const config_ynode *n);

/* The document under root written out again as YAML, in arena, with every
 * secret value replaced by "<secret>" (redact.c says which); "" for an empty
 * document, NULL when libyaml refuses to write the tree back.  What
 * /api/v1/status/config shows. */
char *config_redacted_yaml(const config_ynode *root, firn_arena *arena);

/* ---- the decoder (decode.c) ---------------------------------------------- */

typedef struct config_dec_error {
    int line, col;   /* 0 for errors about the whole file */
    size_t seq;      /* report order, to keep the sort stable */
    char *text;      /* malloc'd */
} config_dec_error;

typedef struct config_dec {
    const char *name;    /* the file's name in messages */
    firn_arena *arena;   /* the result's: strings and arrays decoded go here */
    config_dec_error *errs;
    size_t n_lines, cap_lines;
    size_t dropped;      /* errors beyond CONFIG_MAX_ERRORS */
} config_dec;

/* ---- errors ---------------------------------------------------------------- */

/* Report "NAME:LINE:COL: field: message" at node `at` (NULL: the whole
 * file, "NAME: field: message"); field may be NULL. */
void config_dec_err(config_dec *d, const config_ynode *at, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Parse text into *root (NULL for an empty document).  False, after
 * reporting, when the text is over CONFIG_MAX_BYTES or is not YAML: then
 * that is the only error. */
bool config_dec_parse(config_dec *d, const char *text, size_t len, config_ynode **root);

/* The start of a load from text: errs (when not NULL) emptied, *name
 * defaulted to default_name, a zeroed result of size bytes with a new
 * arena in *arena (the caller stores it in the result). */
void *config_dec_begin(config_errors *errs, const char **name, const char *default_name, size_t size,
                firn_arena **arena);

/* The end of a load: 0 when nothing was reported.  Otherwise -1, err holds
 * the first lines (as many as fit, then "(and N more)"), and when errs is
 * not NULL every line in document order goes to it (caller frees with
 * config_errors_free).  Frees the decoder's own error list either way. */
int config_dec_finish(config_dec *d, config_errors *errs, firn_err *err);

/* Read a file for a loader: at most CONFIG_MAX_BYTES.  On failure err and
 * errs (one line, when not NULL) say why. */
int config_dec_read_file(const char *path, unsigned char **buf, size_t *len, config_errors *errs,
                  firn_err *err);

/* ---- memory ---------------------------------------------------------------- */

/* In the decoder's arena (model/alloc.h: they do not fail; NULL stays
 * NULL).  config_dec_calloc returns NULL for n == 0. */
char *config_dec_strdup(config_dec *d, const char *s);
void *config_dec_calloc(config_dec *d, size_t n, size_t size);

/* ---- nodes ------------------------------------------------------------------ */

/* "null", "a mapping", "a list" or "a scalar", for messages. */
const char *config_dec_kind(const config_ynode *n);

/* Look up each of names[0..count) in map n: vals[i] / keys[i] get the value
 * and key nodes, or NULL (keys may be NULL when count <= 32).  Reports
 * unknown and duplicate keys ("unknown field in WHAT") and non-scalar keys.
 * Returns false (after reporting) when n is neither a mapping nor null; a
 * null node is an empty mapping. */
bool config_dec_fields(config_dec *d, const config_ynode *n, const char *field, const char *what,
                const char *const *names, size_t count, const config_ynode **vals, const config_ynode **keys);

/* As config_dec_fields, for formats whose files carry many keys firn does not
 * read (kubeconfig's preferences, extensions, ...): keys not in names are
 * ignored, without a word.  Duplicates of names are still reported. */
bool config_dec_fields_lax(config_dec *d, const config_ynode *n, const char *field, const char *what,
                    const char *const *names, size_t count, const config_ynode **vals,
                    const config_ynode **keys);

/* v as a list: NULL when absent or null, and (after reporting "expected a
 * list") when it is anything else. */
const config_ynode *config_dec_seq(config_dec *d, const config_ynode *v, const char *field);

/* The later of two nodes in the file (either may be NULL): where a
 * conflict between two keys becomes one. */
const config_ynode *config_dec_later(const config_ynode *a, const config_ynode *b);

/* A scalar as a string (valid UTF-8, no NUL); false after reporting when it
 * is not.  A null or absent value is "not given": *out is left alone.  The
 * string lives in the tree, so in the decoder's arena. */
bool config_dec_str(config_dec *d, const config_ynode *v, const char *field, char **out);

/* A YAML 1.1 boolean as go-yaml v2 reads it; null or absent leaves *out. */
bool config_dec_bool(config_dec *d, const config_ynode *v, const char *field, bool *out);

/* A list of strings; null or absent is an empty list. */
bool config_dec_str_list(config_dec *d, const config_ynode *v, const char *field, char ***out, size_t *n);

/* ---- shared decoders -------------------------------------------------------- */

/* One relabel_config rule into rc (malloc'd strings, as firn_relabel_config
 * owns them), validated and compiled.  Returns true when rc is initialized
 * and must be destroyed later (firn_relabel_config_destroy).  config.c's;
 * the agent's config uses it too. */
bool config_dec_relabel(config_dec *d, const config_ynode *v, firn_relabel_config *rc);

#endif
