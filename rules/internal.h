/* internal.h -- what the files of rules/ share and nobody else uses: the
 * notifier (notify.c) and the remote_write queues (remote.c) the manager
 * (manager.c) feeds. */
#ifndef FIRN_RULES_INTERNAL_H
#define FIRN_RULES_INTERNAL_H

#include "config/config.h"
#include "rules/rules.h"

typedef struct rules_notifier rules_notifier;

/* A queue of capacity alerts sent in batches of batch (Prometheus 2.42:
 * 10000 and 64); dns_server (HOST:PORT, or NULL for resolv.conf) serves
 * the Alertmanagers' dns_sd_configs. */
rules_notifier *rules_notifier_new(size_t capacity, size_t batch, const char *dns_server,
                                   firn_err *err);
int rules_notifier_start(rules_notifier *n, const char *user_agent, firn_err *err);
/* The Alertmanagers (static, and the file_sd, dns_sd and kubernetes_sd
 * providers it starts, stopping the previous ones), external labels and
 * alert_relabel_configs of cfg, which must stay alive until the next call
 * (or rules_notifier_free). */
void rules_notifier_set(rules_notifier *n, const firn_config *cfg);
/* Queues alerts (rules_send_fn's shape); never waits for the network. */
void rules_notifier_send(rules_notifier *n, const rules_notification *alerts, size_t count);
void rules_notifier_metrics_write(rules_notifier *n, firn_buf *b);
void rules_notifier_free(rules_notifier *n);

typedef struct disc_group disc_group;
/* The Alertmanager URLs of group g's targets under config c, as Prometheus
 * 2.42's alertmanagerFromGroup: each target's labels, __scheme__ (c's
 * scheme) and __alerts_path__ (path.Join("/", path_prefix,
 * "/api/v2/alerts")) over them, then the group's labels the target lacks,
 * through c's relabel_configs; a dropped target gives no URL, a kept one
 * __scheme__://__address__ + __alerts_path__ (Go's url.URL form).  On
 * error (a kept __address__ holding '/': the whole group, as Prometheus; a
 * relabel failure) returns negative with err and no URLs.  *urls and its
 * strings are malloc'd; the caller frees them. */
int rules_am_group_urls(const config_alertmanager *c, const disc_group *g, char ***urls,
                        size_t *n_urls, firn_err *err);

/* remote_write (remote.c): one queue and sender per configured entry. */
typedef struct rules_remote rules_remote;

rules_remote *rules_remote_new(const char *user_agent, firn_err *err);
/* Takes cfg's remote_write entries, external labels and relabel rules,
 * which must stay alive until the next call (or rules_remote_free); called
 * with no rules_remote_append running. */
void rules_remote_set(rules_remote *r, const firn_config *cfg);
/* Queues samples for every remote (rules_written_fn's shape); never waits
 * for the network. */
void rules_remote_append(rules_remote *r, const tsdb_float_sample *samples, size_t n);
void rules_remote_metrics_write(rules_remote *r, firn_buf *b);
void rules_remote_free(rules_remote *r);

/* A label set in one allocation, array then strings: free() it (eval.c). */
firn_label *rules_labels_pack(const firn_label *l, size_t n);

/* A label set as a JSON object in its order (manager.c). */
void rules_json_labels(firn_buf *b, const firn_label *l, size_t n);

#endif
