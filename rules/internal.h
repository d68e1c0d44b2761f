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
/* The Alertmanagers (static, and the file_sd and dns_sd providers it
 * starts, stopping the previous ones), external labels and
 * alert_relabel_configs of cfg, which must stay alive until the next call
 * (or rules_notifier_free). */
void rules_notifier_set(rules_notifier *n, const firn_config *cfg);
/* Queues alerts (rules_send_fn's shape); never waits for the network. */
void rules_notifier_send(rules_notifier *n, const rules_notification *alerts, size_t count);
void rules_notifier_metrics_write(rules_notifier *n, firn_buf *b);
void rules_notifier_free(rules_notifier *n);

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
