/* config.c -- decode the YAML tree into firn_config, apply Parca's and
 * Prometheus's defaults, validate (config.h has the contract and the keys).
 *
 * Decoding never stops at the first error: a bad field is reported and
 * skipped, so one run of `firnctl check config` lists every problem.
 * Cross-field checks run only on fields that decoded.
 */
#include "config/config.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_INTERVAL_MS (10 * 1000)   /* Parca */
#define DEFAULT_TIMEOUT_MS (10 * 1000)    /* Prometheus */
#define FILE_SD_REFRESH_MS (5 * 60 * 1000)
#define DNS_SD_REFRESH_MS (30 * 1000)
#define DELTA_TIMEOUT_MARGIN_MS 3000      /* Parca: timeout = interval + 3s */
#define MAX_PROFILE_SECONDS 86400         /* a day-long CPU profile is surely a mistake */

/* ---- scalars ------------------------------------------------------------- */

static bool get_u64(config_dec *d, const config_ynode *v, const char *field, uint64_t *out)
{
    if (!v || config_ynode_is_null(v))
        return true;
    if (v->kind != CONFIG_YNODE_SCALAR || !v->plain) {
        config_dec_err(d, v, field, "expected an unsigned integer, got %s",
                v->kind == CONFIG_YNODE_SCALAR ? "a quoted string" : config_dec_kind(v));
        return false;
    }
    const char *p = v->value;
    if (*p == '+')
        p++;
    uint64_t n = 0;
    if (!*p)
        goto bad;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            goto bad;
        if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, (uint64_t)(*p - '0'), &n)) {
            config_dec_err(d, v, field, "integer out of range: %.64s", v->value);
            return false;
        }
    }
    *out = n;
    return true;
bad:
    config_dec_err(d, v, field, "expected an unsigned integer, got \"%.64s\"", v->value);
    return false;
}

/* A Prometheus duration; *given is set when the value was there. */
static bool get_duration(config_dec *d, const config_ynode *v, const char *field, int64_t *out, bool *given)
{
    char *s = NULL;
    if (!config_dec_str(d, v, field, &s))
        return false;
    if (!s)
        return true;
    firn_err e = {0};
    int64_t ms;
    if (firn_duration_parse(s, &ms, &e) < 0) {
        config_dec_err(d, v, field, "%s", e.msg);
        return false;
    }
    *out = ms;
    if (given)
        *given = true;
    return true;
}

/* Prometheus's units.Base2Bytes: a decimal number and a unit, repeated
 * ("1GB512MB"); KB and KiB alike mean 1024.  "0" needs no unit. */
static int parse_bytes(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"B", 1},          {"KB", 1ull << 10}, {"KiB", 1ull << 10}, {"MB", 1ull << 20},
        {"MiB", 1ull << 20}, {"GB", 1ull << 30}, {"GiB", 1ull << 30}, {"TB", 1ull << 40},
        {"TiB", 1ull << 40}, {"PB", 1ull << 50}, {"PiB", 1ull << 50}, {"EB", 1ull << 60},
        {"EiB", 1ull << 60},
    };
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    if (!*s)
        return -1;
    long double total = 0;
    const char *p = s;
    while (*p) {
        const char *num = p;
        long double n = 0, scale = 1;
        bool frac = false, digits = false;
        for (; (*p >= '0' && *p <= '9') || (*p == '.' && !frac); p++) {
            if (*p == '.') {
                frac = true;
                continue;
            }
            digits = true;
            if (frac) {
                scale /= 10;
                n += (*p - '0') * scale;
            } else {
                n = n * 10 + (*p - '0');
            }
            if (n > 1e30L)
                return -1;
        }
        if (!digits || p == num)
            return -1;
        size_t best = sizeof units / sizeof *units, best_len = 0;
        for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
            size_t len = strlen(units[i].unit);
            if (len > best_len && strncmp(p, units[i].unit, len) == 0) {
                best = i;
                best_len = len;
            }
        }
        if (best_len == 0)
            return -1;
        total += n * (long double)units[best].mult;
        if (total >= 18446744073709551615.0L)
            return -1;
        p += best_len;
    }
    *out = (uint64_t)total;
    return 0;
}

static bool get_bytes(config_dec *d, const config_ynode *v, const char *field, uint64_t *out)
{
    char *s = NULL;
    if (!config_dec_str(d, v, field, &s))
        return false;
    if (s && parse_bytes(s, out) < 0) {
        config_dec_err(d, v, field, "invalid size \"%.64s\" (want e.g. 10MB, 512KiB, 0)", s);
        return false;
    }
    return true;
}
static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const firn_label *)a)->name, ((const firn_label *)b)->name);
}

/* A {name: value} label map: valid names, UTF-8 values, sorted by name. */
static bool get_labels(config_dec *d, const config_ynode *v, const char *field, firn_label **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!v || config_ynode_is_null(v))
        return true;
    if (v->kind != CONFIG_YNODE_MAP) {
        config_dec_err(d, v, field, "expected a mapping of label names to values, got %s", config_dec_kind(v));
        return false;
    }
    if (v->n > FIRN_LABELS_MAX) {
        config_dec_err(d, v, field, "more than %d labels", FIRN_LABELS_MAX);
        return false;
    }
    firn_label *labels = config_dec_calloc(d, v->n, sizeof *labels);
    if (v->n && !labels)
        return false;
    bool ok = true;
    size_t k = 0;
    for (size_t p = 0; p < v->n; p++) {
        const config_ynode *key = v->items[2 * p], *val = v->items[2 * p + 1];
        char *name = NULL, *value = NULL;
        if (!config_dec_str(d, key, field, &name)) {
            ok = false;
            continue;
        }
        if (!name || !firn_label_name_valid(name)) {
            config_dec_err(d, key, field, "\"%.128s\" is not a valid label name", name ? name : "");
            ok = false;
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < k; j++)
            dup |= strcmp(labels[j].name, name) == 0;
        if (dup) {
            config_dec_err(d, key, field, "duplicate label name \"%s\"", name);
            ok = false;
            continue;
        }
        if (!config_dec_str(d, val, field, &value)) {
            ok = false;
            continue;
        }
        labels[k].name = name;
        labels[k].value = value ? value : "";
        k++;
    }
    firn_sort(labels, k, sizeof *labels, cmp_label);
    *out = labels;
    *n = k;
    return ok;
}

/* ---- HTTP client keys ---------------------------------------------------- */

static void dec_basic_auth(config_dec *d, const config_ynode *v, config_basic_auth *out)
{
    static const char *const names[] = {"username", "password", "password_file"};
    const config_ynode *vals[3], *keys[3];
    if (!v || !config_dec_fields(d, v, "basic_auth", "basic_auth", names, 3, vals, keys))
        return;
    out->set = true;
    out->username = "";
    config_dec_str(d, vals[0], "username", &out->username);
    config_dec_str(d, vals[1], "password", &out->password);
    config_dec_str(d, vals[2], "password_file", &out->password_file);
    if (out->password && out->password_file)
        config_dec_err(d, config_dec_later(keys[1], keys[2]), "basic_auth",
                "at most one of basic_auth password & password_file must be configured");
}

static void dec_authorization(config_dec *d, const config_ynode *v, config_authorization *out)
{
    static const char *const names[] = {"type", "credentials", "credentials_file"};
    const config_ynode *vals[3], *keys[3];
    if (!v || !config_dec_fields(d, v, "authorization", "authorization", names, 3, vals, keys))
        return;
    out->set = true;
    out->type = "Bearer";
    config_dec_str(d, vals[0], "type", &out->type);
    config_dec_str(d, vals[1], "credentials", &out->credentials);
    config_dec_str(d, vals[2], "credentials_file", &out->credentials_file);
    if (strcasecmp(out->type, "basic") == 0)
        config_dec_err(d, vals[0], "authorization",
                "authorization type cannot be set to \"basic\", use \"basic_auth\" instead");
    if (out->credentials && out->credentials_file)
        config_dec_err(d, config_dec_later(keys[1], keys[2]), "authorization",
                "at most one of authorization credentials & credentials_file must be configured");
}

static void dec_tls(config_dec *d, const config_ynode *v, config_tls *out)
{
    static const char *const names[] = {"ca_file", "cert_file", "key_file", "server_name",
                                        "insecure_skip_verify"};
    const config_ynode *vals[5], *keys[5];
    if (!v || !config_dec_fields(d, v, "tls_config", "tls_config", names, 5, vals, keys))
        return;
    config_dec_str(d, vals[0], "ca_file", &out->ca_file);
    config_dec_str(d, vals[1], "cert_file", &out->cert_file);
    config_dec_str(d, vals[2], "key_file", &out->key_file);
    config_dec_str(d, vals[3], "server_name", &out->server_name);
    config_dec_bool(d, vals[4], "insecure_skip_verify", &out->insecure_skip_verify);
    if (out->cert_file && !out->key_file)
        config_dec_err(d, keys[1], "tls_config", "key_file must be configured together with cert_file");
    if (out->key_file && !out->cert_file)
        config_dec_err(d, keys[2], "tls_config", "cert_file must be configured together with key_file");
}

/* The HTTP client keys of a scrape or SD config, as indexes into vals/keys:
 * basic_auth, authorization, bearer_token, bearer_token_file, tls_config. */
static void dec_http(config_dec *d, const config_ynode *const *vals, const config_ynode *const *keys, config_http *out)
{
    dec_basic_auth(d, vals[0], &out->basic_auth);
    dec_authorization(d, vals[1], &out->authorization);
    char *token = NULL, *token_file = NULL;
    config_dec_str(d, vals[2], "bearer_token", &token);
    config_dec_str(d, vals[3], "bearer_token_file", &token_file);
    dec_tls(d, vals[4], &out->tls);
    if (token && token_file)
        config_dec_err(d, config_dec_later(keys[2], keys[3]), "bearer_token",
                "at most one of bearer_token & bearer_token_file must be configured");
    if ((token || token_file) && out->authorization.set)
        config_dec_err(d, config_dec_later(keys[1], config_dec_later(keys[2], keys[3])), "authorization",
                "authorization is not compatible with bearer_token & bearer_token_file");
    else if ((token || token_file) && out->basic_auth.set)
        config_dec_err(d, config_dec_later(keys[0], config_dec_later(keys[2], keys[3])), "basic_auth",
                "at most one of basic_auth, bearer_token & bearer_token_file must be configured");
    else if (out->authorization.set && out->basic_auth.set)
        config_dec_err(d, config_dec_later(keys[0], keys[1]), "basic_auth",
                "at most one of basic_auth & authorization must be configured");
    if ((token || token_file) && !out->authorization.set) {
        out->authorization.set = true;
        out->authorization.type = "Bearer";
        out->authorization.credentials = token;
        out->authorization.credentials_file = token ? NULL : token_file;
    }
}

#define HTTP_FIELD_NAMES "basic_auth", "authorization", "bearer_token", "bearer_token_file", "tls_config"
#define N_HTTP_FIELDS 5

/* ---- service discovery --------------------------------------------------- */

static void dec_static(config_dec *d, const config_ynode *v, config_target_group *out)
{
    static const char *const names[] = {"targets", "labels"};
    const config_ynode *vals[2];
    if (!config_dec_fields(d, v, "static_configs", "static_config", names, 2, vals, NULL))
        return;
    config_dec_str_list(d, vals[0], "targets", &out->targets, &out->n_targets);
    get_labels(d, vals[1], "labels", &out->labels, &out->n_labels);
}

/* Prometheus's file SD pattern rule:
 * ^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$ */
bool config_file_sd_pattern_ok(const char *s)
{
    const char *star = strchr(s, '*');
    if (star && (strchr(star + 1, '*') || strchr(star + 1, '/')))
        return false;
    const char *dot = strrchr(s, '.');
    if (!dot || (star && dot < star))
        return false;
    static const char *const ext[] = {"json", "yml", "yaml", "JSON", "YML", "YAML"};
    for (size_t i = 0; i < 6; i++)
        if (strcmp(dot + 1, ext[i]) == 0)
            return true;
    return false;
}

static void dec_file_sd(config_dec *d, const config_ynode *v, config_file_sd *out)
{
    static const char *const names[] = {"files", "refresh_interval"};
    const config_ynode *vals[2];
    out->refresh_interval_ms = FILE_SD_REFRESH_MS;
    if (!config_dec_fields(d, v, "file_sd_configs", "file_sd_config", names, 2, vals, NULL))
        return;
    bool ok = config_dec_str_list(d, vals[0], "files", &out->files, &out->n_files);
    get_duration(d, vals[1], "refresh_interval", &out->refresh_interval_ms, NULL);
    if (ok && out->n_files == 0)
        config_dec_err(d, vals[0] ? vals[0] : v, "file_sd_configs",
                "file service discovery config must contain at least one path name");
    for (size_t i = 0; ok && i < out->n_files; i++)
        if (!config_file_sd_pattern_ok(out->files[i]))
            config_dec_err(d, vals[0]->items[i], "files",
                    "path name \"%.256s\" is not valid for file discovery", out->files[i]);
}

static void dec_dns_sd(config_dec *d, const config_ynode *v, config_dns_sd *out)
{
    static const char *const names[] = {"names", "type", "port", "refresh_interval"};
    const config_ynode *vals[4];
    out->refresh_interval_ms = DNS_SD_REFRESH_MS;
    out->type = "SRV";
    if (!config_dec_fields(d, v, "dns_sd_configs", "dns_sd_config", names, 4, vals, NULL))
        return;
    bool ok = config_dec_str_list(d, vals[0], "names", &out->names, &out->n_names);
    char *type = NULL;
    uint64_t port = 0;
    config_dec_str(d, vals[1], "type", &type);
    bool port_ok = get_u64(d, vals[2], "port", &port);
    get_duration(d, vals[3], "refresh_interval", &out->refresh_interval_ms, NULL);
    if (ok && out->n_names == 0)
        config_dec_err(d, vals[0] ? vals[0] : v, "dns_sd_configs",
                "DNS-SD config must contain at least one SRV record name");
    if (type) {
        static const char *const types[] = {"SRV", "A", "AAAA", "MX", "NS"};
        out->type = NULL;
        for (size_t i = 0; i < 5; i++)
            if (strcasecmp(type, types[i]) == 0)
                out->type = (char *)types[i];
        if (!out->type) {
            config_dec_err(d, vals[1], "type", "invalid DNS-SD records type %.64s", type);
            out->type = "SRV";
        }
    }
    if (port > 65535)
        config_dec_err(d, vals[2], "port", "port %llu out of range", (unsigned long long)port);
    else
        out->port = (uint16_t)port;
    if (port_ok && port == 0 && strcmp(out->type, "SRV") != 0)
        config_dec_err(d, vals[2] ? vals[2] : v, "dns_sd_configs",
                "a port is required in DNS-SD configs for all record types except SRV");
}

static const char *const K8S_ROLES[] = {"node", "service", "pod", "endpoints", "endpointslice",
                                        "ingress"};

/* Selector roles allowed per SD role (PROMETHEUS.md 3.4). */
static bool k8s_selector_allowed(const char *role, const char *sel)
{
    if (strcmp(role, "pod") == 0)
        return strcmp(sel, "pod") == 0 || strcmp(sel, "node") == 0;
    if (strcmp(role, "endpoints") == 0)
        return strcmp(sel, "pod") == 0 || strcmp(sel, "service") == 0 ||
               strcmp(sel, "endpoints") == 0;
    if (strcmp(role, "endpointslice") == 0)
        return strcmp(sel, "pod") == 0 || strcmp(sel, "service") == 0 ||
               strcmp(sel, "endpointslice") == 0;
    return strcmp(role, sel) == 0;
}

static bool k8s_role_valid(const char *role)
{
    for (size_t i = 0; i < sizeof K8S_ROLES / sizeof *K8S_ROLES; i++)
        if (strcmp(role, K8S_ROLES[i]) == 0)
            return true;
    return false;
}

static void dec_k8s_sd(config_dec *d, const config_ynode *v, config_kubernetes_sd *out)
{
    static const char *const names[] = {HTTP_FIELD_NAMES, "role", "api_server", "kubeconfig_file",
                                        "namespaces", "selectors", "attach_metadata"};
    enum { F_ROLE = N_HTTP_FIELDS, F_API, F_KUBECONFIG, F_NS, F_SEL, F_ATTACH, F_COUNT };
    const config_ynode *vals[F_COUNT], *keys[F_COUNT];
    if (!config_dec_fields(d, v, "kubernetes_sd_configs", "kubernetes_sd_config", names, F_COUNT, vals,
                    keys))
        return;
    dec_http(d, vals, keys, &out->http);
    config_dec_str(d, vals[F_ROLE], "role", &out->role);
    config_dec_str(d, vals[F_API], "api_server", &out->api_server);
    config_dec_str(d, vals[F_KUBECONFIG], "kubeconfig_file", &out->kubeconfig_file);
    if (!out->role)
        config_dec_err(d, vals[F_ROLE] ? vals[F_ROLE] : v, "role", "role missing (one of pod, service, "
                "endpoints, endpointslice, node, ingress)");
    else if (!k8s_role_valid(out->role))
        config_dec_err(d, vals[F_ROLE], "role", "unknown Kubernetes SD role \"%.64s\"", out->role);
    if (out->api_server && out->kubeconfig_file)
        config_dec_err(d, config_dec_later(keys[F_API], keys[F_KUBECONFIG]), "kubernetes_sd_configs",
                "cannot use 'kubeconfig_file' and 'api_server' simultaneously");
    bool custom_http = false;
    for (size_t i = 0; i < N_HTTP_FIELDS; i++)
        custom_http |= vals[i] != NULL;
    if (custom_http && !out->api_server)
        config_dec_err(d, v, "kubernetes_sd_configs",
                "to use custom HTTP client configuration please provide the 'api_server' URL explicitly");

    static const char *const ns_names[] = {"own_namespace", "names"};
    const config_ynode *ns[2];
    if (vals[F_NS] && config_dec_fields(d, vals[F_NS], "namespaces", "namespaces", ns_names, 2, ns, NULL)) {
        config_dec_bool(d, ns[0], "own_namespace", &out->own_namespace);
        config_dec_str_list(d, ns[1], "names", &out->namespaces, &out->n_namespaces);
        if (out->own_namespace && (out->api_server || out->kubeconfig_file))
            config_dec_err(d, ns[0], "own_namespace",
                    "cannot use 'own_namespace' with 'api_server' or 'kubeconfig_file'");
    }

    const config_ynode *sel = config_dec_seq(d, vals[F_SEL], "selectors");
    if (sel) {
        out->selectors = config_dec_calloc(d, sel->n, sizeof *out->selectors);
        for (size_t i = 0; out->selectors && i < sel->n; i++) {
            static const char *const s_names[] = {"role", "label", "field"};
            const config_ynode *sv[3];
            config_k8s_selector *s = &out->selectors[out->n_selectors];
            if (!config_dec_fields(d, sel->items[i], "selectors", "selector", s_names, 3, sv, NULL))
                continue;
            config_dec_str(d, sv[0], "role", &s->role);
            config_dec_str(d, sv[1], "label", &s->label);
            config_dec_str(d, sv[2], "field", &s->field);
            if (!s->role) {
                config_dec_err(d, sel->items[i], "selectors", "selector role missing");
                continue;
            }
            if (!k8s_role_valid(s->role)) {
                config_dec_err(d, sv[0], "role", "unknown selector role \"%.64s\"", s->role);
                continue;
            }
            if (out->role && k8s_role_valid(out->role) && !k8s_selector_allowed(out->role, s->role)) {
                config_dec_err(d, sv[0], "role", "%s role supports only %s selectors", out->role,
                        strcmp(out->role, "pod") == 0             ? "pod, node"
                        : strcmp(out->role, "endpoints") == 0     ? "pod, service, endpoints"
                        : strcmp(out->role, "endpointslice") == 0 ? "pod, service, endpointslice"
                                                               : out->role);
                continue;
            }
            bool dup = false;
            for (size_t j = 0; j < out->n_selectors; j++)
                dup |= strcmp(out->selectors[j].role, s->role) == 0;
            if (dup) {
                config_dec_err(d, sv[0], "role", "duplicated selector role: %s", s->role);
                continue;
            }
            out->n_selectors++;
        }
    }

    /* Prometheus's deployment, job and cronjob metadata need watches of
     * ReplicaSets, Jobs and CronJobs that firn's discovery does not make:
     * asking for them is an error, not labels silently missing. */
    static const char *const a_names[] = {"node", "namespace", "deployment", "job", "cronjob"};
    const config_ynode *av[5];
    if (vals[F_ATTACH] &&
        config_dec_fields(d, vals[F_ATTACH], "attach_metadata", "attach_metadata", a_names, 5, av, NULL)) {
        config_dec_bool(d, av[0], "node", &out->attach_node);
        config_dec_bool(d, av[1], "namespace", &out->attach_namespace);
        for (size_t i = 2; i < 5; i++) {
            bool on = false;
            if (config_dec_bool(d, av[i], a_names[i], &on) && on)
                config_dec_err(d, av[i], NULL,
                        "attach_metadata.%s is not supported by firn (node and namespace are)",
                        a_names[i]);
        }
    }
}

/* ---- relabel rules ------------------------------------------------------- */

bool config_dec_relabel(config_dec *d, const config_ynode *v, firn_relabel_config *rc)
{
    static const char *const names[] = {"source_labels", "separator", "target_label", "regex",
                                        "modulus", "replacement", "action"};
    const config_ynode *vals[7];
    memset(rc, 0, sizeof *rc);
    if (config_ynode_is_null(v)) {
        config_dec_err(d, v, "relabel_configs", "empty or null target relabeling rule in scrape config");
        return false;
    }
    size_t before = d->n_lines + d->dropped;
    if (!config_dec_fields(d, v, "relabel_configs", "relabel_config", names, 7, vals, NULL))
        return false;

    char **src = NULL, *sep = NULL, *target = NULL, *regex = NULL, *repl = NULL, *action = NULL;
    size_t n_src = 0;
    config_dec_str_list(d, vals[0], "source_labels", &src, &n_src);
    config_dec_str(d, vals[1], "separator", &sep);
    config_dec_str(d, vals[2], "target_label", &target);
    config_dec_str(d, vals[3], "regex", &regex);
    get_u64(d, vals[4], "modulus", &rc->modulus);
    config_dec_str(d, vals[5], "replacement", &repl);
    config_dec_str(d, vals[6], "action", &action);
    rc->action = FIRN_RELABEL_REPLACE;
    if (vals[6] && firn_relabel_action_parse(action ? action : "", &rc->action) < 0) {
        if (!action || !*action)
            config_dec_err(d, vals[6], "action", "relabel action cannot be empty");
        else
            config_dec_err(d, vals[6], "action", "unknown relabel action \"%.64s\"", action);
    }
    if (d->n_lines + d->dropped != before)
        return false;

    rc->has_separator = vals[1] != NULL;
    rc->has_regex = vals[3] != NULL;
    rc->has_modulus = vals[4] != NULL;
    rc->has_replacement = vals[5] != NULL;
    if (n_src) {
        rc->source_labels = firn_xcalloc(n_src, sizeof *rc->source_labels);
        for (size_t i = 0; i < n_src; i++)
            rc->source_labels[i] = firn_xstrdup(src[i]);
        rc->n_source_labels = n_src;
    }
    /* An explicit null regex is the empty regex (Prometheus's YAML quirk). */
    if (rc->has_regex)
        rc->regex = firn_xstrdup(regex ? regex : "");
    if (rc->has_separator)
        rc->separator = firn_xstrdup(sep ? sep : "");
    if (rc->has_replacement)
        rc->replacement = firn_xstrdup(repl ? repl : "");
    if (target)
        rc->target_label = firn_xstrdup(target);
    firn_err e = {0};
    if (firn_relabel_config_init(rc, &e) < 0) {
        config_dec_err(d, v, "relabel_configs", "%s", e.msg);
        firn_relabel_config_destroy(rc);
        return false;
    }
    return true;
}

/* ---- profiling_config ---------------------------------------------------- */

static const struct {
    const char *name, *path;
    bool delta;
} BUILTIN_PROFILES[] = {
    /* Parca pkg/config/config.go DefaultScrapeConfig */
    {"memory", "/debug/pprof/allocs", false},
    {"block", "/debug/pprof/block", false},
    {"goroutine", "/debug/pprof/goroutine", false},
    {"mutex", "/debug/pprof/mutex", false},
    {"process_cpu", "/debug/pprof/profile", true},
};
#define N_BUILTIN (sizeof BUILTIN_PROFILES / sizeof *BUILTIN_PROFILES)

/* One pprof_config entry as written, before defaults. */
typedef struct profile_entry {
    const config_ynode *key;
    const config_ynode *seconds_node;
    char *name;
    bool enabled, has_delta, delta, has_seconds;
    char *path;
    uint64_t seconds;
    config_sample_type *keep;
    size_t n_keep;
} profile_entry;

static bool dec_profile_entry(config_dec *d, const config_ynode *key, const config_ynode *v, profile_entry *e)
{
    static const char *const names[] = {"enabled", "path", "delta", "seconds", "keep_sample_type"};
    const config_ynode *vals[5];
    e->key = key;
    e->name = key->value;
    e->enabled = true;
    if (!firn_label_name_valid(key->value)) {
        config_dec_err(d, key, "pprof_config", "\"%.64s\" is not a valid profile name "
                "(it must match [a-zA-Z_][a-zA-Z0-9_]*)", key->value);
        return false;
    }
    if (!config_dec_fields(d, v, key->value, "pprof_config entry", names, 5, vals, NULL))
        return false;
    config_dec_bool(d, vals[0], "enabled", &e->enabled);
    config_dec_str(d, vals[1], "path", &e->path);
    e->has_delta = vals[2] && !config_ynode_is_null(vals[2]);
    config_dec_bool(d, vals[2], "delta", &e->delta);
    e->has_seconds = vals[3] && !config_ynode_is_null(vals[3]);
    e->seconds_node = vals[3];
    get_u64(d, vals[3], "seconds", &e->seconds);
    if (e->path && e->path[0] != '/')
        config_dec_err(d, vals[1], "path", "\"%.128s\" must start with \"/\"", e->path);
    if (e->has_seconds && (e->seconds == 0 || e->seconds > MAX_PROFILE_SECONDS))
        config_dec_err(d, vals[3], "seconds", "must be between 1 and %d", MAX_PROFILE_SECONDS);
    const config_ynode *keep = config_dec_seq(d, vals[4], "keep_sample_type");
    if (keep) {
        e->keep = config_dec_calloc(d, keep->n, sizeof *e->keep);
        for (size_t i = 0; e->keep && i < keep->n; i++) {
            static const char *const k_names[] = {"type", "unit"};
            const config_ynode *kv[2];
            config_sample_type *st = &e->keep[e->n_keep];
            if (!config_dec_fields(d, keep->items[i], "keep_sample_type", "keep_sample_type entry",
                            k_names, 2, kv, NULL))
                continue;
            config_dec_str(d, kv[0], "type", &st->type);
            config_dec_str(d, kv[1], "unit", &st->unit);
            if (!st->type || !st->unit) {
                config_dec_err(d, keep->items[i], "keep_sample_type", "both type and unit are required");
                continue;
            }
            e->n_keep++;
        }
    }
    return true;
}

typedef struct profiling {
    char *path_prefix;
    profile_entry *entries;
    size_t n_entries;
    const config_ynode *node;
} profiling;

static void dec_profiling(config_dec *d, const config_ynode *v, profiling *out)
{
    static const char *const names[] = {"path_prefix", "pprof_config"};
    const config_ynode *vals[2];
    out->node = v;
    if (!config_dec_fields(d, v, "profiling_config", "profiling_config", names, 2, vals, NULL))
        return;
    config_dec_str(d, vals[0], "path_prefix", &out->path_prefix);
    if (out->path_prefix && out->path_prefix[0] && out->path_prefix[0] != '/')
        config_dec_err(d, vals[0], "path_prefix", "\"%.128s\" must start with \"/\"", out->path_prefix);
    const config_ynode *pc = vals[1];
    if (!pc || config_ynode_is_null(pc))
        return;
    if (pc->kind != CONFIG_YNODE_MAP) {
        config_dec_err(d, pc, "pprof_config", "expected a mapping of profile names, got %s", config_dec_kind(pc));
        return;
    }
    out->entries = config_dec_calloc(d, pc->n, sizeof *out->entries);
    for (size_t p = 0; out->entries && p < pc->n; p++) {
        const config_ynode *k = pc->items[2 * p], *v2 = pc->items[2 * p + 1];
        char *name = NULL;
        if (!config_dec_str(d, k, "pprof_config", &name) || !name) {
            if (!name && k->kind == CONFIG_YNODE_SCALAR)
                config_dec_err(d, k, "pprof_config", "profile name missing");
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < out->n_entries; j++) {
            if (strcmp(out->entries[j].name, name) == 0) {
                config_dec_err(d, k, name, "duplicate field in pprof_config (first set at %d:%d)",
                        out->entries[j].key->line, out->entries[j].key->col);
                dup = true;
            }
        }
        if (dup)
            continue;
        if (dec_profile_entry(d, k, v2, &out->entries[out->n_entries]))
            out->n_entries++;
    }
}

static char *join_path(config_dec *d, const char *prefix, const char *path)
{
    size_t a = strlen(prefix), b = strlen(path);
    char *s = firn_arena_alloc(d->arena, a + b + 1);
    assert(s);   /* two strings of the file: no overflow */
    memcpy(s, prefix, a);
    memcpy(s + a, path, b + 1);
    return s;
}

/* Merge Parca's defaults with the entries as written (see config.h). */
static void finish_profiles(config_dec *d, config_scrape *sc, const profiling *pr)
{
    sc->path_prefix = pr->path_prefix ? pr->path_prefix : "";
    sc->profile_types = config_dec_calloc(d, N_BUILTIN + pr->n_entries, sizeof *sc->profile_types);
    bool *used = config_dec_calloc(d, pr->n_entries + 1, sizeof *used);
    for (size_t pass = 0; pass < 2; pass++) {
        size_t count = pass == 0 ? N_BUILTIN : pr->n_entries;
        for (size_t i = 0; i < count; i++) {
            const profile_entry *e = NULL;
            size_t builtin = N_BUILTIN;
            if (pass == 0) {
                builtin = i;
                for (size_t j = 0; j < pr->n_entries; j++)
                    if (strcmp(pr->entries[j].name, BUILTIN_PROFILES[i].name) == 0) {
                        e = &pr->entries[j];
                        used[j] = true;
                    }
            } else {
                if (used[i])
                    continue;
                e = &pr->entries[i];
            }
            config_profile_type *pt = &sc->profile_types[sc->n_profile_types];
            pt->name = e ? e->name : (char *)BUILTIN_PROFILES[builtin].name;
            pt->enabled = e ? e->enabled : true;
            const char *path = e && e->path ? e->path
                               : builtin < N_BUILTIN ? BUILTIN_PROFILES[builtin].path
                                                     : NULL;
            if (!path) {
                config_dec_err(d, e->key, e->name, "path is required for the custom profile type \"%s\"",
                        e->name);
                continue;
            }
            pt->path = join_path(d, sc->path_prefix, path);
            pt->delta = e && e->has_delta ? e->delta
                        : builtin < N_BUILTIN ? BUILTIN_PROFILES[builtin].delta
                                              : false;
            if (e && e->has_seconds && !pt->delta) {
                config_dec_err(d, e->seconds_node, "seconds", "seconds is only used with delta: true");
                continue;
            }
            if (e && e->has_seconds && (e->seconds == 0 || e->seconds > MAX_PROFILE_SECONDS))
                continue;  /* refused where it was read; no timeout from it */
            pt->timeout_ms = sc->timeout_ms;
            if (pt->delta) {
                int64_t def = sc->interval_ms / 1000 - 1;
                pt->seconds = e && e->has_seconds ? (int64_t)e->seconds : (def < 1 ? 1 : def);
                int64_t need = pt->seconds * 1000 + DELTA_TIMEOUT_MARGIN_MS;
                if (pt->timeout_ms < need)
                    pt->timeout_ms = need;
            }
            if (e) {
                pt->keep_sample_types = e->keep;
                pt->n_keep_sample_types = e->n_keep;
            }
            sc->n_profile_types++;
        }
    }
}

/* ---- scrape_config ------------------------------------------------------- */

static void dec_params(config_dec *d, const config_ynode *v, config_scrape *sc)
{
    if (!v || config_ynode_is_null(v))
        return;
    if (v->kind != CONFIG_YNODE_MAP) {
        config_dec_err(d, v, "params", "expected a mapping of names to lists of values, got %s",
                config_dec_kind(v));
        return;
    }
    sc->params = config_dec_calloc(d, v->n, sizeof *sc->params);
    for (size_t p = 0; sc->params && p < v->n; p++) {
        config_param *pa = &sc->params[sc->n_params];
        const config_ynode *k = v->items[2 * p];
        if (!config_dec_str(d, k, "params", &pa->name) || !pa->name)
            continue;
        bool dup = false;
        for (size_t j = 0; j < sc->n_params; j++)
            dup |= strcmp(sc->params[j].name, pa->name) == 0;
        if (dup) {
            config_dec_err(d, k, "params", "duplicate parameter \"%.64s\"", pa->name);
            continue;
        }
        if (config_dec_str_list(d, v->items[2 * p + 1], pa->name, &pa->values, &pa->n_values))
            sc->n_params++;
    }
    for (size_t i = 1; i < sc->n_params; i++)   /* insertion sort: few params */
        for (size_t j = i; j > 0 && strcmp(sc->params[j - 1].name, sc->params[j].name) > 0; j--) {
            config_param t = sc->params[j];
            sc->params[j] = sc->params[j - 1];
            sc->params[j - 1] = t;
        }
}

enum {
    S_JOB = N_HTTP_FIELDS, S_INTERVAL, S_TIMEOUT, S_SCHEME, S_PARAMS, S_HONOR_LABELS,
    S_HONOR_TS, S_STATIC, S_FILE_SD, S_DNS_SD, S_K8S_SD, S_RELABEL, S_SAMPLE_LIMIT,
    S_TARGET_LIMIT, S_LABEL_LIMIT, S_BODY_LIMIT, S_PROFILING, S_NORMALIZED, S_COUNT
};

static const char *const SCRAPE_FIELDS[S_COUNT] = {
    HTTP_FIELD_NAMES, "job_name", "scrape_interval", "scrape_timeout", "scheme", "params",
    "honor_labels", "honor_timestamps", "static_configs", "file_sd_configs", "dns_sd_configs",
    "kubernetes_sd_configs", "relabel_configs", "sample_limit", "target_limit", "label_limit",
    "body_size_limit", "profiling_config", "normalized_addresses",
};

/* Decode a list of mappings with fn into a freshly allocated array. */
#define DEC_LIST(d, node, field, arr, count, fn)                                   \
    do {                                                                           \
        const config_ynode *seq_ = config_dec_seq((d), (node), (field));                         \
        if (seq_) {                                                                \
            (arr) = config_dec_calloc((d), seq_->n, sizeof *(arr));                          \
            for (size_t i_ = 0; (arr) && i_ < seq_->n; i_++)                       \
                fn((d), seq_->items[i_], &(arr)[(count)++]);                       \
        }                                                                          \
    } while (0)

/* Prometheus's checkStaticTargets: refuse "http://host:port/path" targets. */
static void check_static_targets(config_dec *d, const config_ynode *groups)
{
    for (size_t g = 0; groups && g < groups->n; g++) {
        const config_ynode *grp = groups->items[g];
        if (grp->kind != CONFIG_YNODE_MAP)
            continue;
        for (size_t p = 0; p < grp->n; p++) {
            const config_ynode *k = grp->items[2 * p], *v = grp->items[2 * p + 1];
            if (k->kind != CONFIG_YNODE_SCALAR || strcmp(k->value, "targets") != 0 ||
                v->kind != CONFIG_YNODE_SEQ)
                continue;
            for (size_t t = 0; t < v->n; t++)
                if (v->items[t]->kind == CONFIG_YNODE_SCALAR && strchr(v->items[t]->value, '/'))
                    config_dec_err(d, v->items[t], "targets", "\"%.256s\" is not a valid hostname",
                            v->items[t]->value);
        }
    }
}

/* Returns the job_name value node (for duplicate reporting) or NULL. */
static const config_ynode *dec_scrape(config_dec *d, const config_ynode *v, const firn_config *cfg, config_scrape *sc)
{
    const config_ynode *vals[S_COUNT], *keys[S_COUNT];
    sc->scheme = "http";
    sc->honor_timestamps = true;
    sc->path_prefix = "";
    if (config_ynode_is_null(v)) {
        config_dec_err(d, v, "scrape_configs", "empty or null scrape config section");
        return NULL;
    }
    if (!config_dec_fields(d, v, "scrape_configs", "scrape_config", SCRAPE_FIELDS, S_COUNT, vals, keys))
        return NULL;
    config_dec_str(d, vals[S_JOB], "job_name", &sc->job_name);
    if (!sc->job_name || !*sc->job_name) {
        config_dec_err(d, vals[S_JOB] ? vals[S_JOB] : v, "job_name", "job_name is empty");
        sc->job_name = NULL;
    }

    int64_t interval = 0, timeout = 0;
    get_duration(d, vals[S_INTERVAL], "scrape_interval", &interval, NULL);
    get_duration(d, vals[S_TIMEOUT], "scrape_timeout", &timeout, NULL);
    sc->interval_ms = interval ? interval : cfg->scrape_interval_ms;
    if (timeout)
        sc->timeout_ms = timeout;
    else
        sc->timeout_ms = cfg->scrape_timeout_ms < sc->interval_ms ? cfg->scrape_timeout_ms
                                                                  : sc->interval_ms;

    config_dec_str(d, vals[S_SCHEME], "scheme", &sc->scheme);
    if (strcmp(sc->scheme, "http") != 0 && strcmp(sc->scheme, "https") != 0) {
        config_dec_err(d, vals[S_SCHEME], "scheme", "unsupported scheme \"%.32s\" (http or https)",
                sc->scheme);
        sc->scheme = "http";
    }
    dec_params(d, vals[S_PARAMS], sc);
    config_dec_bool(d, vals[S_HONOR_LABELS], "honor_labels", &sc->honor_labels);
    config_dec_bool(d, vals[S_HONOR_TS], "honor_timestamps", &sc->honor_timestamps);
    bool normalized = false;
    config_dec_bool(d, vals[S_NORMALIZED], "normalized_addresses", &normalized);
    dec_http(d, vals, keys, &sc->http);
    get_u64(d, vals[S_SAMPLE_LIMIT], "sample_limit", &sc->sample_limit);
    get_u64(d, vals[S_TARGET_LIMIT], "target_limit", &sc->target_limit);
    get_u64(d, vals[S_LABEL_LIMIT], "label_limit", &sc->label_limit);
    get_bytes(d, vals[S_BODY_LIMIT], "body_size_limit", &sc->body_size_limit);

    DEC_LIST(d, vals[S_STATIC], "static_configs", sc->static_configs, sc->n_static_configs,
             dec_static);
    DEC_LIST(d, vals[S_FILE_SD], "file_sd_configs", sc->file_sd, sc->n_file_sd, dec_file_sd);
    DEC_LIST(d, vals[S_DNS_SD], "dns_sd_configs", sc->dns_sd, sc->n_dns_sd, dec_dns_sd);
    DEC_LIST(d, vals[S_K8S_SD], "kubernetes_sd_configs", sc->kubernetes_sd, sc->n_kubernetes_sd,
             dec_k8s_sd);

    const config_ynode *rl = config_dec_seq(d, vals[S_RELABEL], "relabel_configs");
    if (rl) {
        sc->relabel_configs = config_dec_calloc(d, rl->n, sizeof *sc->relabel_configs);
        for (size_t i = 0; sc->relabel_configs && i < rl->n; i++)
            if (config_dec_relabel(d, rl->items[i], &sc->relabel_configs[sc->n_relabel_configs]))
                sc->n_relabel_configs++;
    }

    /* A URL pasted as a target, unless relabeling may fix it up. */
    if (!rl || rl->n == 0)
        check_static_targets(d, vals[S_STATIC] && vals[S_STATIC]->kind == CONFIG_YNODE_SEQ
                                    ? vals[S_STATIC]
                                    : NULL);

    profiling pr = {0};
    if (vals[S_PROFILING])
        dec_profiling(d, vals[S_PROFILING], &pr);
    finish_profiles(d, sc, &pr);
    return sc->job_name ? vals[S_JOB] : NULL;
}

/* ---- top level ----------------------------------------------------------- */

static void dec_global(config_dec *d, const config_ynode *v, firn_config *cfg)
{
    static const char *const names[] = {"scrape_interval", "scrape_timeout", "external_labels",
                                        "evaluation_interval"};
    const config_ynode *vals[4];
    if (!config_dec_fields(d, v, "global", "global", names, 4, vals, NULL))
        return;
    int64_t eval = 0;
    get_duration(d, vals[3], "evaluation_interval", &eval, NULL);
    if (eval)
        cfg->evaluation_interval_ms = eval;
    bool has_timeout = false;
    int64_t interval = 0, timeout = 0;
    get_duration(d, vals[0], "scrape_interval", &interval, NULL);
    get_duration(d, vals[1], "scrape_timeout", &timeout, &has_timeout);
    if (interval)
        cfg->scrape_interval_ms = interval;
    if (timeout > cfg->scrape_interval_ms) {
        char t[32], iv[32];
        firn_duration_format(t, sizeof t, timeout);
        firn_duration_format(iv, sizeof iv, cfg->scrape_interval_ms);
        config_dec_err(d, vals[1], "scrape_timeout",
                "global scrape timeout greater than scrape interval (%s > %s)", t, iv);
    }
    else if (timeout)
        cfg->scrape_timeout_ms = timeout;
    if (!timeout && cfg->scrape_timeout_ms > cfg->scrape_interval_ms)
        cfg->scrape_timeout_ms = cfg->scrape_interval_ms;
    get_labels(d, vals[2], "external_labels", &cfg->external_labels, &cfg->n_external_labels);
}

static void dec_object_storage(config_dec *d, const config_ynode *v, firn_config *cfg)
{
    cfg->has_object_storage = true;
    if (config_ynode_is_null(v))
        return;
    if (v->kind != CONFIG_YNODE_MAP) {
        config_dec_err(d, v, "object_storage", "expected a mapping, got %s", config_dec_kind(v));
        return;
    }
    /* Parca's bucket config is not used; only its type is kept for the log. */
    for (size_t p = 0; p < v->n; p++) {
        const config_ynode *k = v->items[2 * p], *b = v->items[2 * p + 1];
        if (k->kind != CONFIG_YNODE_SCALAR || strcmp(k->value, "bucket") != 0 || b->kind != CONFIG_YNODE_MAP)
            continue;
        for (size_t q = 0; q < b->n; q++)
            if (b->items[2 * q]->kind == CONFIG_YNODE_SCALAR &&
                strcmp(b->items[2 * q]->value, "type") == 0 &&
                b->items[2 * q + 1]->kind == CONFIG_YNODE_SCALAR)
                cfg->object_storage_type = b->items[2 * q + 1]->value;
    }
}

/* ---- rules and alerting --------------------------------------------------- */

static void dec_alertmanager(config_dec *d, const config_ynode *v, config_alertmanager *am)
{
    static const char *const names[] = {HTTP_FIELD_NAMES, "static_configs", "scheme",
                                        "path_prefix", "timeout", "api_version",
                                        "relabel_configs", "file_sd_configs",
                                        "dns_sd_configs", "kubernetes_sd_configs"};
    const config_ynode *vals[N_HTTP_FIELDS + 9], *keys[N_HTTP_FIELDS + 9];
    am->scheme = "http";
    am->path_prefix = "/";
    am->timeout_ms = 10000;
    if (!config_dec_fields(d, v, "alertmanagers", "alertmanager_config", names,
                           N_HTTP_FIELDS + 9, vals, keys))
        return;
    dec_http(d, vals, keys, &am->http);
    const config_ynode *const *x = vals + N_HTTP_FIELDS;
    DEC_LIST(d, x[0], "static_configs", am->static_configs, am->n_static_configs, dec_static);
    config_dec_str(d, x[1], "scheme", &am->scheme);
    if (strcmp(am->scheme, "http") != 0 && strcmp(am->scheme, "https") != 0)
        config_dec_err(d, x[1], "scheme", "unknown scheme \"%.64s\": http or https",
                       am->scheme);
    config_dec_str(d, x[2], "path_prefix", &am->path_prefix);
    get_duration(d, x[3], "timeout", &am->timeout_ms, NULL);
    char *version = NULL;
    config_dec_str(d, x[4], "api_version", &version);
    if (version && strcmp(version, "v2") != 0)
        config_dec_err(d, x[4], "api_version",
                       "expected Alertmanager api version to be one of [v2] but got %.16s "
                       "(firn speaks API v2 only)", version);
    DEC_LIST(d, x[6], "file_sd_configs", am->file_sd, am->n_file_sd, dec_file_sd);
    DEC_LIST(d, x[7], "dns_sd_configs", am->dns_sd, am->n_dns_sd, dec_dns_sd);
    DEC_LIST(d, x[8], "kubernetes_sd_configs", am->kubernetes_sd, am->n_kubernetes_sd,
             dec_k8s_sd);
    const config_ynode *rl = config_dec_seq(d, x[5], "relabel_configs");
    if (rl) {
        am->relabel_configs = config_dec_calloc(d, rl->n, sizeof *am->relabel_configs);
        for (size_t i = 0; am->relabel_configs && i < rl->n; i++) {
            if (config_ynode_is_null(rl->items[i])) {   /* Prometheus's own message here */
                config_dec_err(d, rl->items[i], "relabel_configs",
                               "empty or null Alertmanager target relabeling rule");
                continue;
            }
            if (config_dec_relabel(d, rl->items[i], &am->relabel_configs[am->n_relabel_configs]))
                am->n_relabel_configs++;
        }
    }
    /* A URL pasted as a target, unless relabeling may fix it up
     * (Prometheus's AlertmanagerConfig.UnmarshalYAML). */
    if (!rl || rl->n == 0)
        check_static_targets(d, x[0] && x[0]->kind == CONFIG_YNODE_SEQ ? x[0] : NULL);
}

static void dec_alerting(config_dec *d, const config_ynode *v, firn_config *cfg)
{
    static const char *const names[] = {"alert_relabel_configs", "alertmanagers"};
    const config_ynode *vals[2];
    if (!config_dec_fields(d, v, "alerting", "alerting", names, 2, vals, NULL))
        return;
    const config_ynode *rl = config_dec_seq(d, vals[0], "alert_relabel_configs");
    if (rl) {
        cfg->alert_relabel_configs = config_dec_calloc(d, rl->n, sizeof *cfg->alert_relabel_configs);
        for (size_t i = 0; cfg->alert_relabel_configs && i < rl->n; i++)
            if (config_dec_relabel(d, rl->items[i],
                                   &cfg->alert_relabel_configs[cfg->n_alert_relabel_configs]))
                cfg->n_alert_relabel_configs++;
    }
    DEC_LIST(d, vals[1], "alertmanagers", cfg->alertmanagers, cfg->n_alertmanagers,
             dec_alertmanager);
}

/* ---- remote_write and profile_remote_write --------------------------------- */

/* Prometheus 2.42's reservedHeaders (config/config.go), lower case; an
 * Authorization header has its own message. */
static const char *const reserved_headers[] = {
    "host", "content-encoding", "content-length", "content-type", "user-agent", "connection",
    "keep-alive", "proxy-authenticate", "proxy-authorization", "www-authenticate",
    "accept-encoding", "x-prometheus-remote-write-version", "x-prometheus-remote-read-version",
    "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"};

/* headers: {name: value} of either remote write, as Prometheus checks them:
 * names as HTTP tokens, neither Authorization (a secret belongs where it is
 * masked) nor a reserved header, values without line breaks (they become
 * header lines).  Sorted by name into *out. */
static void dec_headers(config_dec *d, const config_ynode *v, firn_label **out, size_t *n_out)
{
    if (!v || config_ynode_is_null(v))
        return;
    if (v->kind != CONFIG_YNODE_MAP) {
        config_dec_err(d, v, "headers", "expected a mapping of header names to values, got %s",
                       config_dec_kind(v));
        return;
    }
    firn_label *headers = config_dec_calloc(d, v->n, sizeof *headers);
    size_t n = 0;
    for (size_t p = 0; headers && p < v->n; p++) {
        const config_ynode *key = v->items[2 * p], *val = v->items[2 * p + 1];
        char *name = NULL, *value = NULL;
        if (!config_dec_str(d, key, "headers", &name) || !config_dec_str(d, val, "headers", &value))
            continue;
        bool token = name && *name;
        for (const char *c = name; token && *c; c++)
            token = (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
                    (*c >= 'A' && *c <= 'Z') || strchr("!#$%&'*+-.^_`|~", *c);
        if (!token) {
            config_dec_err(d, key, "headers", "\"%.128s\" is not a valid header name",
                           name ? name : "");
            continue;
        }
        if (strcasecmp(name, "authorization") == 0) {
            config_dec_err(d, key, "headers", "authorization header must be changed via the "
                           "basic_auth, authorization, oauth2, or sigv4 parameter");
            continue;
        }
        bool reserved = false;
        for (size_t i = 0; i < sizeof reserved_headers / sizeof *reserved_headers; i++)
            reserved |= strcasecmp(name, reserved_headers[i]) == 0;
        if (reserved) {
            config_dec_err(d, key, "headers", "%s is a reserved header. It must not be changed",
                           name);
            continue;
        }
        if (value && strpbrk(value, "\r\n")) {
            config_dec_err(d, val, "headers", "the value of header %s holds a line break", name);
            continue;
        }
        headers[n++] = (firn_label){name, value ? value : ""};
    }
    if (headers)
        qsort(headers, n, sizeof *headers, cmp_label);
    *out = headers;
    *n_out = n;
}

/* A remote write's url: http or https, without credentials (the URL shows
 * in /metrics and logs; credentials go in basic_auth or authorization,
 * which are kept secret). */
static void dec_remote_url(config_dec *d, const config_ynode *v, const config_ynode *url_node,
                           const char *what, char **url)
{
    config_dec_str(d, url_node, "url", url);
    const char *host = *url ? strstr(*url, "://") : NULL;
    if (!*url) {
        config_dec_err(d, v, "url", "url for %s is empty", what);
    } else if (strncmp(*url, "http://", 7) != 0 && strncmp(*url, "https://", 8) != 0) {
        config_dec_err(d, url_node, "url", "unsupported scheme \"%.*s\": http or https",
                       host ? (int)(host - *url > 32 ? 32 : host - *url) : 0, *url);
    } else if (memchr(host + 3, '@', strcspn(host + 3, "/?#"))) {
        config_dec_err(d, url_node, "url", "credentials in the URL are refused (use basic_auth "
                       "or authorization, which are kept secret)");
    }
}

/* write_relabel_configs of either remote write. */
static void dec_write_relabel(config_dec *d, const config_ynode *v, const char *what,
                              firn_relabel_config **out, size_t *n_out)
{
    const config_ynode *rl = config_dec_seq(d, v, "write_relabel_configs");
    if (!rl || !(*out = config_dec_calloc(d, rl->n, sizeof **out)))
        return;
    for (size_t i = 0; i < rl->n; i++) {
        if (config_ynode_is_null(rl->items[i])) {
            config_dec_err(d, rl->items[i], "write_relabel_configs",
                           "empty or null relabeling rule in %s config", what);
            continue;
        }
        if (config_dec_relabel(d, rl->items[i], &(*out)[*n_out]))
            (*n_out)++;
    }
}

static void dec_rw_queue_config(config_dec *d, const config_ynode *v, config_remote_write *rw)
{
    static const char *const names[] = {"capacity", "max_samples_per_send",
                                        "batch_send_deadline", "min_backoff", "max_backoff"};
    const config_ynode *vals[5];
    if (!v || config_ynode_is_null(v) ||
        !config_dec_fields(d, v, "queue_config", "queue_config", names, 5, vals, NULL))
        return;
    get_u64(d, vals[0], "capacity", &rw->capacity);
    get_u64(d, vals[1], "max_samples_per_send", &rw->max_samples_per_send);
    get_duration(d, vals[2], "batch_send_deadline", &rw->batch_send_deadline_ms, NULL);
    get_duration(d, vals[3], "min_backoff", &rw->min_backoff_ms, NULL);
    get_duration(d, vals[4], "max_backoff", &rw->max_backoff_ms, NULL);
    /* caps before anything is allocated from them: a queue slot is a few
     * hundred bytes, a batch is built in memory */
    if (rw->capacity == 0 || rw->capacity > CONFIG_REMOTE_WRITE_CAPACITY_MAX)
        config_dec_err(d, vals[0] ? vals[0] : v, "capacity", "must be between 1 and %u",
                       CONFIG_REMOTE_WRITE_CAPACITY_MAX);
    else if (rw->max_samples_per_send == 0 || rw->max_samples_per_send > rw->capacity)
        config_dec_err(d, vals[1] ? vals[1] : v, "max_samples_per_send",
                       "must be between 1 and capacity (%" PRIu64 ")", rw->capacity);
    if (rw->batch_send_deadline_ms <= 0)
        config_dec_err(d, vals[2], "batch_send_deadline", "must be more than 0s");
    if (rw->min_backoff_ms <= 0 || rw->max_backoff_ms < rw->min_backoff_ms)
        config_dec_err(d, vals[4] ? vals[4] : vals[3], "max_backoff",
                       "min_backoff must be more than 0s and max_backoff at least min_backoff");
}

static void dec_remote_write(config_dec *d, const config_ynode *v, config_remote_write *rw)
{
    static const char *const names[] = {HTTP_FIELD_NAMES, "url", "name", "remote_timeout",
                                        "headers", "write_relabel_configs", "queue_config"};
    const config_ynode *vals[N_HTTP_FIELDS + 6], *keys[N_HTTP_FIELDS + 6];
    rw->name = "";
    rw->remote_timeout_ms = 30000;
    rw->capacity = 2500;
    rw->max_samples_per_send = 500;
    rw->batch_send_deadline_ms = 5000;
    rw->min_backoff_ms = 30;
    rw->max_backoff_ms = 5000;
    if (config_ynode_is_null(v)) {
        config_dec_err(d, v, "remote_write", "empty or null remote write config section");
        return;
    }
    if (!config_dec_fields(d, v, "remote_write", "remote_write_config", names,
                           N_HTTP_FIELDS + 6, vals, keys))
        return;
    dec_http(d, vals, keys, &rw->http);
    const config_ynode *const *x = vals + N_HTTP_FIELDS;
    dec_remote_url(d, v, x[0], "remote_write", &rw->url);
    config_dec_str(d, x[1], "name", &rw->name);
    get_duration(d, x[2], "remote_timeout", &rw->remote_timeout_ms, NULL);
    dec_headers(d, x[3], &rw->headers, &rw->n_headers);
    dec_write_relabel(d, x[4], "remote write", &rw->write_relabel_configs,
                      &rw->n_write_relabel_configs);
    dec_rw_queue_config(d, x[5], rw);
}

static void dec_remote_writes(config_dec *d, const config_ynode *v, firn_config *cfg)
{
    const config_ynode *seq = config_dec_seq(d, v, "remote_write");
    if (!seq || !(cfg->remote_writes = config_dec_calloc(d, seq->n, sizeof *cfg->remote_writes)))
        return;
    for (size_t i = 0; i < seq->n; i++)
        dec_remote_write(d, seq->items[i], &cfg->remote_writes[cfg->n_remote_writes++]);
    for (size_t i = 0; i < cfg->n_remote_writes; i++)
        for (size_t j = 0; j < i; j++)
            if (cfg->remote_writes[i].name[0] &&
                strcmp(cfg->remote_writes[i].name, cfg->remote_writes[j].name) == 0) {
                config_dec_err(d, seq->items[i], "name",
                               "found multiple remote write configs with job name \"%.128s\"",
                               cfg->remote_writes[i].name);
                break;
            } else if (!cfg->remote_writes[i].name[0] && !cfg->remote_writes[j].name[0] &&
                       cfg->remote_writes[i].url && cfg->remote_writes[j].url &&
                       strcmp(cfg->remote_writes[i].url, cfg->remote_writes[j].url) == 0) {
                /* their queues would have one identity and one set of metrics */
                config_dec_err(d, seq->items[i], "url",
                               "duplicate remote write configs are not allowed, found "
                               "duplicate for URL: %.256s", cfg->remote_writes[i].url);
                break;
            }
}

static void dec_prw_queue_config(config_dec *d, const config_ynode *v,
                                 config_profile_remote_write *w)
{
    static const char *const names[] = {"max_bytes", "shards", "max_samples_per_send",
                                        "batch_send_deadline", "min_backoff", "max_backoff",
                                        "retry_on_http_429"};
    const config_ynode *x[7];
    if (!config_dec_fields(d, v, "queue_config", "queue_config", names, 7, x, NULL))
        return;
    if (get_bytes(d, x[0], "max_bytes", &w->max_bytes) && w->max_bytes < (1u << 20))
        config_dec_err(d, x[0], "max_bytes", "at least 1MiB");
    if (get_u64(d, x[1], "shards", &w->shards) && (w->shards < 1 || w->shards > 64))
        config_dec_err(d, x[1], "shards", "must be 1 to 64");
    if (get_u64(d, x[2], "max_samples_per_send", &w->max_samples_per_send) &&
        (w->max_samples_per_send < 1 || w->max_samples_per_send > 4096))
        config_dec_err(d, x[2], "max_samples_per_send", "must be 1 to 4096 (profiles per Push)");
    get_duration(d, x[3], "batch_send_deadline", &w->batch_send_deadline_ms, NULL);
    get_duration(d, x[4], "min_backoff", &w->min_backoff_ms, NULL);
    get_duration(d, x[5], "max_backoff", &w->max_backoff_ms, NULL);
    config_dec_bool(d, x[6], "retry_on_http_429", &w->retry_on_http_429);
    if (w->min_backoff_ms > w->max_backoff_ms)
        config_dec_err(d, x[5] ? x[5] : x[4], "max_backoff", "must not be less than min_backoff");
}

static void dec_profile_remote_write(config_dec *d, const config_ynode *v,
                                     config_profile_remote_write *w)
{
    static const char *const names[] = {HTTP_FIELD_NAMES, "url", "name", "remote_timeout",
                                        "headers", "write_relabel_configs", "queue_config"};
    const config_ynode *vals[N_HTTP_FIELDS + 6], *keys[N_HTTP_FIELDS + 6];
    *w = (config_profile_remote_write){
        .name = "", .remote_timeout_ms = 30000, .max_bytes = 256u << 20, .shards = 1,
        .max_samples_per_send = 100, .batch_send_deadline_ms = 5000, .min_backoff_ms = 30,
        .max_backoff_ms = 5000, .retry_on_http_429 = true};
    if (!config_dec_fields(d, v, "profile_remote_write", "profile_remote_write", names,
                           N_HTTP_FIELDS + 6, vals, keys))
        return;
    dec_http(d, vals, keys, &w->http);
    const config_ynode *const *x = vals + N_HTTP_FIELDS;
    dec_remote_url(d, v, x[0], "profile_remote_write", &w->url);
    config_dec_str(d, x[1], "name", &w->name);
    if (!w->name)
        w->name = "";
    bool name_ok = w->name[0] != '.';
    for (const char *p = w->name; *p; p++)
        name_ok &= isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.';
    if (!name_ok)
        config_dec_err(d, x[1], "name", "\"%.100s\": a name is [A-Za-z0-9_.-] and does "
                       "not start with '.' (it names the queue's directory)", w->name);
    get_duration(d, x[2], "remote_timeout", &w->remote_timeout_ms, NULL);
    dec_headers(d, x[3], &w->headers, &w->n_headers);
    dec_write_relabel(d, x[4], "profile_remote_write", &w->write_relabel_configs,
                      &w->n_write_relabel_configs);
    dec_prw_queue_config(d, x[5], w);
}

static void dec_profile_remote_writes(config_dec *d, const config_ynode *v, firn_config *cfg)
{
    DEC_LIST(d, v, "profile_remote_write", cfg->profile_remote_writes,
             cfg->n_profile_remote_writes, dec_profile_remote_write);
    for (size_t i = 0; i < cfg->n_profile_remote_writes; i++)
        for (size_t j = 0; j < i; j++) {
            const config_profile_remote_write *a = &cfg->profile_remote_writes[i],
                                              *b = &cfg->profile_remote_writes[j];
            if (a->url && b->url && strcmp(a->url, b->url) == 0 && strcmp(a->name, b->name) == 0)
                config_dec_err(d, v->items[i], "profile_remote_write",
                               "duplicate profile_remote_write configs are not allowed, found "
                               "duplicate for URL: %.200s", a->url);
            else if (*a->name && strcmp(a->name, b->name) == 0)
                config_dec_err(d, v->items[i], "profile_remote_write",
                               "found multiple profile_remote_write configs with name \"%.100s\"",
                               a->name);
        }
}

/* Prometheus's rule file pattern rule: ^[^*]*(\*[^/]*)?$ */
static void dec_rule_files(config_dec *d, const config_ynode *v, firn_config *cfg)
{
    if (!config_dec_str_list(d, v, "rule_files", &cfg->rule_files, &cfg->n_rule_files))
        return;
    for (size_t i = 0; i < cfg->n_rule_files; i++) {
        const char *star = strchr(cfg->rule_files[i], '*');
        if (star && (strchr(star + 1, '*') || strchr(star + 1, '/')))
            config_dec_err(d, v->items[i], "rule_files", "invalid rule file path \"%s\"",
                           cfg->rule_files[i]);
    }
}

static void dec_config(config_dec *d, const config_ynode *root, firn_config *cfg)
{
    static const char *const names[] = {"global", "scrape_configs", "object_storage",
                                        "rule_files", "alerting", "remote_write",
                                        "profile_remote_write"};
    const config_ynode *vals[7];
    if (root && root->kind != CONFIG_YNODE_MAP && !config_ynode_is_null(root)) {
        config_dec_err(d, root, NULL, "expected a mapping at the top level, got %s", config_dec_kind(root));
        return;
    }
    if (!config_dec_fields(d, root, NULL, "the top level", names, 7, vals, NULL))
        return;
    if (vals[6])
        dec_profile_remote_writes(d, vals[6], cfg);
    if (vals[0])
        dec_global(d, vals[0], cfg);
    if (vals[3])
        dec_rule_files(d, vals[3], cfg);
    if (vals[4])
        dec_alerting(d, vals[4], cfg);
    if (vals[5])
        dec_remote_writes(d, vals[5], cfg);
    if (vals[2])
        dec_object_storage(d, vals[2], cfg);
    const config_ynode *sc = config_dec_seq(d, vals[1], "scrape_configs");
    if (!sc)
        return;
    if (sc->n == 0)   /* config_dec_calloc gives NULL for no elements */
        return;
    cfg->scrapes = config_dec_calloc(d, sc->n, sizeof *cfg->scrapes);
    const config_ynode **job_nodes = config_dec_calloc(d, sc->n, sizeof *job_nodes);
    for (size_t i = 0; i < sc->n; i++) {
        config_scrape *s = &cfg->scrapes[cfg->n_scrapes++];
        job_nodes[i] = dec_scrape(d, sc->items[i], cfg, s);
        for (size_t j = 0; job_nodes[i] && j < i; j++)
            if (job_nodes[j] && strcmp(cfg->scrapes[j].job_name, s->job_name) == 0) {
                config_dec_err(d, job_nodes[i], "job_name",
                        "found multiple scrape configs with job name \"%.128s\"", s->job_name);
                break;
            }
    }
}

/* ---- loading ------------------------------------------------------------- */

void config_free(firn_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_scrapes; i++)
        for (size_t j = 0; j < cfg->scrapes[i].n_relabel_configs; j++)
            firn_relabel_config_destroy(&cfg->scrapes[i].relabel_configs[j]);
    for (size_t j = 0; j < cfg->n_alert_relabel_configs; j++)
        firn_relabel_config_destroy(&cfg->alert_relabel_configs[j]);
    for (size_t i = 0; i < cfg->n_alertmanagers; i++)
        for (size_t j = 0; j < cfg->alertmanagers[i].n_relabel_configs; j++)
            firn_relabel_config_destroy(&cfg->alertmanagers[i].relabel_configs[j]);
    for (size_t i = 0; i < cfg->n_remote_writes; i++)
        for (size_t j = 0; j < cfg->remote_writes[i].n_write_relabel_configs; j++)
            firn_relabel_config_destroy(&cfg->remote_writes[i].write_relabel_configs[j]);
    for (size_t i = 0; i < cfg->n_profile_remote_writes; i++)
        for (size_t j = 0; j < cfg->profile_remote_writes[i].n_write_relabel_configs; j++)
            firn_relabel_config_destroy(&cfg->profile_remote_writes[i].write_relabel_configs[j]);
    firn_arena_free(cfg->arena);
    free(cfg);
}

void config_errors_free(config_errors *errs)
{
    if (!errs)
        return;
    for (size_t i = 0; i < errs->n; i++)
        free(errs->lines[i]);
    free(errs->lines);
    errs->lines = NULL;
    errs->n = 0;
}

firn_config *config_load_string_errors(const char *text, size_t len, const char *name,
                                       config_errors *errs, firn_err *err)
{
    firn_arena *arena;
    firn_config *cfg = config_dec_begin(errs, &name, "<config>", sizeof *cfg, &arena);
    cfg->arena = arena;
    cfg->scrape_interval_ms = DEFAULT_INTERVAL_MS;
    cfg->scrape_timeout_ms = DEFAULT_TIMEOUT_MS;
    cfg->evaluation_interval_ms = 60 * 1000;
    config_dec d = {.name = name, .arena = arena};
    cfg->source = config_dec_strdup(&d, name);
    config_ynode *root = NULL;
    if (config_dec_parse(&d, text, len, &root))
        dec_config(&d, root, cfg);
    if (config_dec_finish(&d, errs, err) == 0) {
        cfg->yaml = config_redacted_yaml(root, arena);
        cfg->text = firn_arena_alloc(arena, len + 1);
        if (cfg->text) {
            memcpy(cfg->text, text, len);
            cfg->text[len] = '\0';
            cfg->text_len = len;
        }
        if (cfg->yaml && cfg->text)
            return cfg;
        firn_errf(err, FIRN_EINVAL, "%s: libyaml cannot write the configuration back", name);
    }
    config_free(cfg);
    return NULL;
}

firn_config *config_load_string(const char *text, size_t len, const char *name, firn_err *err)
{
    return config_load_string_errors(text, len, name, NULL, err);
}

firn_config *config_copy(const firn_config *cfg, firn_err *err)
{
    return config_load_string(cfg->text, cfg->text_len, cfg->source, err);
}

firn_config *config_load_file_errors(const char *path, config_errors *errs, firn_err *err)
{
    unsigned char *buf;
    size_t len;
    if (config_dec_read_file(path, &buf, &len, errs, err) < 0)
        return NULL;
    firn_config *cfg = config_load_string_errors((const char *)buf, len, path, errs, err);
    free(buf);
    return cfg;
}

firn_config *config_load_file(const char *path, firn_err *err)
{
    return config_load_file_errors(path, NULL, err);
}

/* ---- queries ------------------------------------------------------------- */

/* firn serves CPU and heap profiles of its own (selfprof/), not Go's
 * block, goroutine and mutex profiles: those are off. */
static const char DEFAULT_YAML[] =
    "# firn's built-in configuration, used when no --config.file is given:\n"
    "# firn scrapes its own profiles, so a fresh server has data to show.\n"
    "global:\n"
    "  scrape_interval: 10s\n"
    "  scrape_timeout: 10s\n"
    "scrape_configs:\n"
    "  - job_name: firn\n"
    "    static_configs:\n"
    "      - targets: ['%s']\n"
    "    profiling_config:\n"
    "      pprof_config:\n"
    "        block: {enabled: false}\n"
    "        goroutine: {enabled: false}\n"
    "        mutex: {enabled: false}\n";

char *config_default_yaml(const char *self)
{
    /* The target is quoted in YAML single quotes: double any quote in it. */
    size_t n = strlen(self), q = 0;
    for (size_t i = 0; i < n; i++)
        q += self[i] == '\'';
    char *target = firn_xmalloc(n + q + 1);
    char *t = target;
    for (size_t i = 0; i < n; i++) {
        *t++ = self[i];
        if (self[i] == '\'')
            *t++ = '\'';
    }
    *t = '\0';
    char *out = firn_xasprintf(DEFAULT_YAML, target);
    free(target);
    return out;
}

const config_scrape *config_scrape_find(const firn_config *cfg, const char *job_name)
{
    for (size_t i = 0; cfg && i < cfg->n_scrapes; i++)
        if (cfg->scrapes[i].job_name && strcmp(cfg->scrapes[i].job_name, job_name) == 0)
            return &cfg->scrapes[i];
    return NULL;
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool strs_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(a[i], b[i]))
            return false;
    return true;
}

static bool labels_eq(const firn_label *a, size_t na, const firn_label *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(a[i].name, b[i].name) || !str_eq(a[i].value, b[i].value))
            return false;
    return true;
}

static bool http_eq(const config_http *a, const config_http *b)
{
    return a->basic_auth.set == b->basic_auth.set &&
           str_eq(a->basic_auth.username, b->basic_auth.username) &&
           str_eq(a->basic_auth.password, b->basic_auth.password) &&
           str_eq(a->basic_auth.password_file, b->basic_auth.password_file) &&
           a->authorization.set == b->authorization.set &&
           str_eq(a->authorization.type, b->authorization.type) &&
           str_eq(a->authorization.credentials, b->authorization.credentials) &&
           str_eq(a->authorization.credentials_file, b->authorization.credentials_file) &&
           str_eq(a->tls.ca_file, b->tls.ca_file) && str_eq(a->tls.cert_file, b->tls.cert_file) &&
           str_eq(a->tls.key_file, b->tls.key_file) &&
           str_eq(a->tls.server_name, b->tls.server_name) &&
           a->tls.insecure_skip_verify == b->tls.insecure_skip_verify;
}

/* Compares what the rules do: an omitted field equals its default. */
static bool relabel_eq(const firn_relabel_config *a, const firn_relabel_config *b)
{
    return a->action == b->action &&
           strs_eq(a->source_labels, a->n_source_labels, b->source_labels, b->n_source_labels) &&
           str_eq(a->separator ? a->separator : ";", b->separator ? b->separator : ";") &&
           str_eq(a->target_label, b->target_label) &&
           str_eq(a->regex ? a->regex : "(.*)", b->regex ? b->regex : "(.*)") &&
           a->modulus == b->modulus &&
           str_eq(a->replacement ? a->replacement : "$1", b->replacement ? b->replacement : "$1");
}

bool config_file_sd_equal(const config_file_sd *a, const config_file_sd *b)
{
    return strs_eq(a->files, a->n_files, b->files, b->n_files) &&
           a->refresh_interval_ms == b->refresh_interval_ms;
}

bool config_dns_sd_equal(const config_dns_sd *a, const config_dns_sd *b)
{
    return strs_eq(a->names, a->n_names, b->names, b->n_names) && str_eq(a->type, b->type) &&
           a->port == b->port && a->refresh_interval_ms == b->refresh_interval_ms;
}

bool config_kubernetes_sd_equal(const config_kubernetes_sd *a, const config_kubernetes_sd *b)
{
    if (!str_eq(a->role, b->role) || !str_eq(a->api_server, b->api_server) ||
        !str_eq(a->kubeconfig_file, b->kubeconfig_file) || a->own_namespace != b->own_namespace ||
        !strs_eq(a->namespaces, a->n_namespaces, b->namespaces, b->n_namespaces) ||
        a->n_selectors != b->n_selectors || a->attach_node != b->attach_node ||
        a->attach_namespace != b->attach_namespace || !http_eq(&a->http, &b->http))
        return false;
    for (size_t i = 0; i < a->n_selectors; i++)
        if (!str_eq(a->selectors[i].role, b->selectors[i].role) ||
            !str_eq(a->selectors[i].label, b->selectors[i].label) ||
            !str_eq(a->selectors[i].field, b->selectors[i].field))
            return false;
    return true;
}

static bool profile_eq(const config_profile_type *a, const config_profile_type *b)
{
    if (!str_eq(a->name, b->name) || a->enabled != b->enabled || !str_eq(a->path, b->path) ||
        a->delta != b->delta || a->seconds != b->seconds || a->timeout_ms != b->timeout_ms ||
        a->n_keep_sample_types != b->n_keep_sample_types)
        return false;
    for (size_t i = 0; i < a->n_keep_sample_types; i++)
        if (!str_eq(a->keep_sample_types[i].type, b->keep_sample_types[i].type) ||
            !str_eq(a->keep_sample_types[i].unit, b->keep_sample_types[i].unit))
            return false;
    return true;
}

bool config_scrape_equal(const config_scrape *a, const config_scrape *b)
{
    if (!str_eq(a->job_name, b->job_name) || a->interval_ms != b->interval_ms ||
        a->timeout_ms != b->timeout_ms || !str_eq(a->scheme, b->scheme) ||
        a->honor_labels != b->honor_labels || a->honor_timestamps != b->honor_timestamps ||
        a->n_params != b->n_params || !http_eq(&a->http, &b->http) ||
        a->sample_limit != b->sample_limit || a->target_limit != b->target_limit ||
        a->label_limit != b->label_limit || a->body_size_limit != b->body_size_limit ||
        !str_eq(a->path_prefix, b->path_prefix) || a->n_profile_types != b->n_profile_types ||
        a->n_static_configs != b->n_static_configs || a->n_file_sd != b->n_file_sd ||
        a->n_dns_sd != b->n_dns_sd || a->n_kubernetes_sd != b->n_kubernetes_sd ||
        a->n_relabel_configs != b->n_relabel_configs)
        return false;
    for (size_t i = 0; i < a->n_params; i++)
        if (!str_eq(a->params[i].name, b->params[i].name) ||
            !strs_eq(a->params[i].values, a->params[i].n_values, b->params[i].values,
                     b->params[i].n_values))
            return false;
    for (size_t i = 0; i < a->n_profile_types; i++)
        if (!profile_eq(&a->profile_types[i], &b->profile_types[i]))
            return false;
    for (size_t i = 0; i < a->n_static_configs; i++) {
        const config_target_group *x = &a->static_configs[i], *y = &b->static_configs[i];
        if (!strs_eq(x->targets, x->n_targets, y->targets, y->n_targets) ||
            !labels_eq(x->labels, x->n_labels, y->labels, y->n_labels))
            return false;
    }
    for (size_t i = 0; i < a->n_file_sd; i++)
        if (!config_file_sd_equal(&a->file_sd[i], &b->file_sd[i]))
            return false;
    for (size_t i = 0; i < a->n_dns_sd; i++)
        if (!config_dns_sd_equal(&a->dns_sd[i], &b->dns_sd[i]))
            return false;
    for (size_t i = 0; i < a->n_kubernetes_sd; i++)
        if (!config_kubernetes_sd_equal(&a->kubernetes_sd[i], &b->kubernetes_sd[i]))
            return false;
    for (size_t i = 0; i < a->n_relabel_configs; i++)
        if (!relabel_eq(&a->relabel_configs[i], &b->relabel_configs[i]))
            return false;
    return true;
}

/* ---- copies --------------------------------------------------------------- */

static char **acopy_strs(firn_arena *a, char *const *in, size_t n)
{
    char **out = firn_arena_calloc(a, n + 1, sizeof *out);
    assert(out);   /* n strings of a loaded config: no overflow */
    for (size_t i = 0; i < n; i++)
        out[i] = firn_arena_strdup(a, in[i]);
    return out;
}

bool config_http_copy(firn_arena *a, const config_http *in, config_http *out)
{
    *out = *in;
    out->basic_auth.username = firn_arena_strdup(a, in->basic_auth.username);
    out->basic_auth.password = firn_arena_strdup(a, in->basic_auth.password);
    out->basic_auth.password_file = firn_arena_strdup(a, in->basic_auth.password_file);
    out->authorization.type = firn_arena_strdup(a, in->authorization.type);
    out->authorization.credentials = firn_arena_strdup(a, in->authorization.credentials);
    out->authorization.credentials_file = firn_arena_strdup(a, in->authorization.credentials_file);
    out->tls.ca_file = firn_arena_strdup(a, in->tls.ca_file);
    out->tls.cert_file = firn_arena_strdup(a, in->tls.cert_file);
    out->tls.key_file = firn_arena_strdup(a, in->tls.key_file);
    out->tls.server_name = firn_arena_strdup(a, in->tls.server_name);
    return true;
}

void config_file_sd_copy(firn_arena *a, const config_file_sd *in, config_file_sd *out)
{
    *out = *in;
    out->files = acopy_strs(a, in->files, in->n_files);
}

void config_dns_sd_copy(firn_arena *a, const config_dns_sd *in, config_dns_sd *out)
{
    *out = *in;
    out->names = acopy_strs(a, in->names, in->n_names);
    out->type = firn_arena_strdup(a, in->type);
}

void config_kubernetes_sd_copy(firn_arena *a, const config_kubernetes_sd *in,
                               config_kubernetes_sd *out)
{
    config_http_copy(a, &in->http, &out->http);
    config_http http = out->http;
    *out = *in;
    out->http = http;
    out->role = firn_arena_strdup(a, in->role);
    out->api_server = firn_arena_strdup(a, in->api_server);
    out->kubeconfig_file = firn_arena_strdup(a, in->kubeconfig_file);
    out->namespaces = acopy_strs(a, in->namespaces, in->n_namespaces);
    out->selectors = firn_arena_calloc(a, in->n_selectors + 1, sizeof *out->selectors);
    assert(out->selectors);
    for (size_t i = 0; i < in->n_selectors; i++) {
        out->selectors[i].role = firn_arena_strdup(a, in->selectors[i].role);
        out->selectors[i].label = firn_arena_strdup(a, in->selectors[i].label);
        out->selectors[i].field = firn_arena_strdup(a, in->selectors[i].field);
    }
}
