/* discovery.h -- service discovery: where targets come from.
 *
 * Every mechanism produces target groups, as Prometheus's discovery
 * packages do: a group has a source (unique within its provider: for
 * static_configs the index of the entry, "0", "1", ...), its targets (each
 * a label set holding at least __address__) and labels common to all of
 * them.  A group with no targets tells that the source is now empty.  The
 * scrape manager (scrape/) turns groups into scrape targets; discovery
 * knows nothing of scraping.
 *
 * What is here: the group type, static_configs, and the providers of
 * file_sd_configs (file.c), dns_sd_configs (dns.c) and
 * kubernetes_sd_configs (kubernetes.c, with k8s_roles.c), each running in
 * a thread of its own and reporting groups to a disc_sink.
 *
 * Memory: a disc_groups owns all it points to (one arena); free it with
 * disc_groups_free.  Threads: no global state.
 */
#ifndef FIRN_DISCOVERY_H
#define FIRN_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "model/model.h"

typedef struct disc_target {
    firn_label *labels;   /* sorted by name */
    size_t n_labels;
} disc_target;

typedef struct disc_group {
    const char *source;
    disc_target *targets;
    size_t n_targets;
    firn_label *labels;   /* sorted by name */
    size_t n_labels;
} disc_group;

typedef struct disc_groups {
    disc_group *v;
    size_t n;
    firn_arena *arena;
} disc_groups;

/* The groups of a job's static_configs: one per entry, source = its index,
 * each target {__address__: target}. */
int disc_static_groups(const config_scrape *cfg, disc_groups *out, firn_err *err);
void disc_groups_free(disc_groups *g);

/* ---- providers ---------------------------------------------------------------
 *
 * A provider runs one SD config (one entry of a job's file_sd_configs or
 * dns_sd_configs) on a thread of its own.  It reports through its sink:
 * send() with groups (copied by the sink before it returns; a group with
 * no targets deletes its source, sources not mentioned are kept, as
 * Prometheus's manager does), refreshed() after each refresh with whether
 * it worked (for /metrics: a failed refresh keeps the last good groups).
 * stop() must make the provider's thread return promptly (it is called
 * from another thread) and free everything the provider holds.
 */
typedef struct disc_sink disc_sink;
struct disc_sink {
    void (*send)(disc_sink *self, const disc_group *groups, size_t n);
    void (*refreshed)(disc_sink *self, bool ok);
};

typedef struct disc_file disc_file;
/* Start watching cfg's files (globs, "*" only in the last path element;
 * .json, .yml, .yaml; other patterns are refused here too): a group per
 * file and entry, source "PATH:INDEX", __meta_filepath on each.  The
 * thread reads everything at once, then again on inotify events (parent
 * directories; atomic renames) and every refresh_interval (5m when not
 * positive).  A file that fails to read or parse (over 16 MiB included)
 * keeps its previous groups, logs the error and makes the refresh count
 * as failed; a deleted file, or one no pattern matches any more, empties
 * its sources, and a file with fewer entries the vanished indexes.  cfg
 * is copied.  disc_file_stop wakes the thread, joins it and frees f. */
disc_file *disc_file_start(const config_file_sd *cfg, disc_sink *sink, firn_err *err);
void disc_file_stop(disc_file *f);
/* The groups of one file_sd file held in data[0..len): JSON or YAML by
 * path's extension (case-insensitive), strictly (unknown fields, null
 * entries, bad label names and non-string values refused, the whole file
 * with them), each group with source "PATH:INDEX" and __meta_filepath =
 * path.  On error err says "PATH[:LINE:COL]: why".  The provider's parser,
 * callable on bytes for tests and fuzzing. */
int disc_file_parse(const char *path, const char *data, size_t len, disc_groups *out,
                    firn_err *err);

typedef struct disc_dns_options {
    const char *server;   /* "HOST:PORT": one resolver instead of resolv.conf's
                             (--discovery.dns.server); NULL for resolv.conf */
} disc_dns_options;

typedef struct disc_dns disc_dns;
/* Resolve cfg's names with c-ares (asynchronously) every refresh_interval:
 * a group per name (source = the name), Prometheus's __meta_dns_* labels.
 * NXDOMAIN empties the name's group; a server failure keeps it.  Each
 * name is tried with resolv.conf's search list (with o->server too, which
 * replaces only the servers); the first NOERROR answer wins.  A refresh
 * reports ok only when every name resolved.  cfg and o are copied. */
disc_dns *disc_dns_start(const config_dns_sd *cfg, const disc_dns_options *o, disc_sink *sink,
                         firn_err *err);
void disc_dns_stop(disc_dns *d);

typedef struct disc_k8s_options {
    const char *serviceaccount_dir;  /* in-cluster token, ca.crt, namespace; NULL:
                                        /var/run/secrets/kubernetes.io/serviceaccount */
    int64_t watch_timeout_s;         /* watch timeoutSeconds; 0: random in [300, 600] */
    const char *job;                 /* for log lines; NULL: none */
} disc_k8s_options;

typedef struct disc_k8s disc_k8s;
/* Discover cfg's role from the Kubernetes API server (api_server with the
 * config's HTTP settings, kubeconfig_file, or the in-cluster service
 * account: KUBERNETES_SERVICE_HOST/PORT, its token re-read at each request,
 * its ca.crt): list + watch of the role's objects (and of what their labels
 * need: services and pods for endpoints, nodes and namespaces for
 * attach_metadata) in cfg's namespaces with cfg's selectors; a group per
 * object with Prometheus's sources and __meta_kubernetes_* labels, sent
 * once every list has been read and then as objects change.  A refresh is
 * a list; failed requests back off from 0.8 s to 30 s and keep the last
 * groups.  Refuses a config it cannot connect with at all (no server, not
 * in a cluster, a bad kubeconfig).  cfg and o are copied. */
disc_k8s *disc_k8s_start(const config_kubernetes_sd *cfg, const disc_k8s_options *o,
                         disc_sink *sink, firn_err *err);
void disc_k8s_stop(disc_k8s *k);

/* ---- the discovery manager -------------------------------------------------
 *
 * Runs one provider per entry of each job's file_sd_configs, dns_sd_configs
 * and kubernetes_sd_configs (provider names "file/0", "dns/1",
 * "kubernetes/0", ... within the job),
 * merges what they report by source, and hands the changes on through
 * update() at most every update_interval_ms (Prometheus: 5 s), from its own
 * thread.  update() gets, for one job and provider, the groups that changed
 * (an empty group: that source is gone); it runs with the manager's lock
 * held and must not call back into discovery.
 * Threads: apply and free from one thread; metrics from any.
 */
typedef void (*disc_update_fn)(void *ctx, const char *job, const char *provider,
                               const disc_group *groups, size_t n);

typedef struct disc_manager_options {
    disc_update_fn update;
    void *ctx;
    int64_t update_interval_ms;    /* default 5000 */
    disc_dns_options dns;
    disc_k8s_options k8s;
} disc_manager_options;

typedef struct disc_manager disc_manager;

disc_manager *disc_manager_new(const disc_manager_options *o, firn_err *err);
/* Run cfg's SD configs: a provider whose job, mechanism, index and config
 * are unchanged keeps running with its groups; others start or stop.  Then
 * every provider's groups are handed on again at once, since pools the
 * scrape manager rebuilt for the same config start without them.  cfg is
 * only read during the call.  A provider that cannot start (a Kubernetes
 * config outside a cluster, say) makes the call fail with the first such
 * error, naming the job and provider; the others, later ones included,
 * run, and further failures are logged. */
int disc_manager_apply(disc_manager *m, const firn_config *cfg, firn_err *err);
void disc_manager_free(disc_manager *m);
/* firn_sd_refreshes_total{mechanism}, firn_sd_refresh_failures_total,
 * firn_sd_updates_total, firn_sd_discovered_targets{mechanism}. */
void disc_manager_metrics_write(disc_manager *m, firn_buf *b);

#endif
