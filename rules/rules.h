/* rules.h -- Prometheus's recording and alerting rules over firn's query
 * language: rule files (load, validate, lint) and the Go text/template
 * subset their labels and annotations use.
 *
 * Rule files follow Prometheus 2.42's format and validation exactly
 * (model/rulefmt): the same YAML keys, the same checks in the same order,
 * and the same error texts, so `firnctl check rules` prints what `promtool
 * check rules` prints.  Expressions are parsed by promql-like/ (pql_parse);
 * an expression outside its PromQL subset is refused with its message.
 * Beyond Prometheus, a `record:` name that is a profile type
 * (name:sample_type:sample_unit:period_type:period_unit[:delta]) is refused,
 * since its float series would shadow profiles; `query_offset` (Prometheus
 * 2.53+) is accepted and listed by rules_file_newer_fields.
 *
 * Uses: config/yaml.h (the YAML node tree, with positions), promql-like/,
 * model/.  Memory: a rules_file owns everything it points to (one arena and
 * the parsed queries); rules_file_free releases it.  Threads: loading is
 * reentrant; a loaded file is read-only.
 */
#ifndef FIRN_RULES_H
#define FIRN_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pthread.h>
#include <stdio.h>

#include "config/config.h"
#include "model/model.h"
#include "promql-like/pql.h"
#include "tsdb/tsdb.h"

#define RULES_FILE_MAX (16u << 20)   /* bytes of one rule file */

/* ---- templates (template.c) ----------------------------------------------- */

/* A parsed template: Go text/template as Prometheus 2.42's alert templates
 * see it (actions, pipelines, variables, if/else/range/with, comments and
 * trim markers; Go's builtins and Prometheus's functions but query). */
typedef struct rules_template rules_template;

/* One sample of a template's `query` result. */
typedef struct rules_sample {
    firn_label *labels;
    size_t n_labels;
    double value;
} rules_sample;

/* The template function `query`: an instant vector (or scalar, as one
 * sample without labels) for expr, allocated from arena; an error's
 * message becomes the template's execution error. */
typedef int (*rules_query_fn)(void *ctx, const char *expr, firn_arena *arena, rules_sample **out,
                              size_t *n, firn_err *err);

/* The data an alert template runs on: $labels (.Labels), $externalLabels,
 * $externalURL and $value; query may be NULL (then `query` is an error). */
typedef struct rules_template_data {
    const firn_label *labels;
    size_t n_labels;
    const firn_label *external_labels;
    size_t n_external_labels;
    const char *external_url;
    double value;
    rules_query_fn query;
    void *query_ctx;
} rules_template_data;

/* Parses text under the name given, with Prometheus's alert preamble
 * ({{$labels := .Labels}}... ) in front.  Errors are Go's texts:
 * "template: NAME:LINE: unclosed action". */
rules_template *rules_template_parse(const char *name, const char *text, firn_err *err);
void rules_template_free(rules_template *t);
/* Runs a template; returns a malloc'd string, never NULL.  An execution
 * error is, as in Prometheus, the result's text: "<error expanding
 * template: ...>". */
char *rules_template_expand(const rules_template *t, const rules_template_data *data);
/* Parse and run in one step (firnctl, tests). */
char *rules_template_expand_text(const char *name, const char *text,
                                 const rules_template_data *data);

/* ---- rule files (file.c) ----------------------------------------------------- */

typedef struct rules_rule {
    bool alert;                      /* an alerting rule, else a recording rule */
    const char *name;                /* the record: or alert: value */
    const char *expr;                /* as written */
    pql_query query;                 /* parsed */
    int64_t for_ms, keep_firing_for_ms;
    firn_label *labels;              /* sorted by name */
    size_t n_labels;
    firn_label *annotations;         /* sorted by name */
    size_t n_annotations;
} rules_rule;

typedef struct rules_group {
    const char *name;
    int64_t interval_ms;             /* 0: the global evaluation_interval */
    int64_t limit;                   /* <= 0: no limit */
    int64_t query_offset_ms;         /* 0 when absent */
    bool has_query_offset;
    rules_rule *rules;
    size_t n_rules;
} rules_group;

typedef struct rules_file {
    const char *path;                /* as given */
    rules_group *groups;
    size_t n_groups;
    size_t n_rules;
    firn_arena *arena;
} rules_file;

/* Error lines, each as promtool prints it ("PATH: 5:15: group ...").  A
 * line may hold newlines (yaml's "unmarshal errors" list). */
typedef struct rules_errors {
    char **lines;
    size_t n;
} rules_errors;

void rules_errors_free(rules_errors *e);

/* Loads and validates a rule file (or text named path).  Returns the file,
 * or NULL with every error in errs (and the first in err). */
rules_file *rules_file_load(const char *path, rules_errors *errs, firn_err *err);
rules_file *rules_file_parse(const char *path, const char *text, size_t len, rules_errors *errs,
                             firn_err *err);
void rules_file_free(rules_file *f);

/* promtool's duplicate-rules lint: rules with the same name and the same
 * labels anywhere in the file.  Returns the message promtool prints
 * ("lint error N duplicate rule(s) found.\n..."), malloc'd, or NULL when
 * there is no duplicate. */
char *rules_file_lint_duplicates(const rules_file *f);

/* Fields firn accepts that Prometheus 2.42 refuses: a malloc'd note, or
 * NULL. */
char *rules_file_newer_fields(const rules_file *f);

/* ---- evaluation (eval.c) --------------------------------------------------------
 *
 * One group's rules evaluated at a slot time ts, in file order, each rule's
 * output committed to the store before the next rule runs (so a recording
 * rule's series is visible to the next rule at the same ts).  Recording
 * rules write float series; alerting rules run Prometheus's state machine
 * (inactive / pending / firing, for, keep_firing_for, resolved alerts kept
 * and re-sent for 15 minutes) and write ALERTS and ALERTS_FOR_STATE once
 * the group is restored.  Series a rule produced last time and not this
 * time get a stale marker.  A rule error writes nothing (and no stale
 * markers) and sets the rule's health.  Timestamps of samples and alerts
 * are ts; the wall clock only times the evaluation.
 */

typedef enum rules_alert_state { RULES_INACTIVE, RULES_PENDING, RULES_FIRING } rules_alert_state;

typedef struct rules_alert {
    firn_label *labels;              /* sorted, alertname included; one allocation */
    size_t n_labels;
    firn_label *annotations;
    size_t n_annotations;
    rules_alert_state state;
    double value;
    uint64_t hash;                   /* of labels */
    int64_t active_at_ms, fired_at_ms, resolved_at_ms, last_sent_ms, valid_until_ms,
        keep_firing_since_ms;
} rules_alert;

/* One alert as the notifier sends it (Alertmanager API v2). */
typedef struct rules_notification {
    const firn_label *labels;
    size_t n_labels;
    const firn_label *annotations;
    size_t n_annotations;
    int64_t starts_at_ms, ends_at_ms;
    const char *generator_url;
} rules_notification;

/* Called after an alerting rule's evaluation with the alerts due to be
 * sent; the array is valid during the call only. */
typedef void (*rules_send_fn)(void *ctx, const rules_notification *alerts, size_t n);

/* Called with the float samples (stale markers included) a rule's
 * evaluation has just committed to the store; valid during the call only. */
typedef void (*rules_written_fn)(void *ctx, const tsdb_float_sample *samples, size_t n);

typedef struct rules_eval_options {
    tsdb *db;
    const firn_label *external_labels;   /* for templates ($externalLabels) */
    size_t n_external_labels;
    const char *external_url;            /* $externalURL; generatorURL's base */
    int64_t resend_delay_ms;             /* 0: 1m */
    int64_t outage_tolerance_ms;         /* 0: 1h */
    int64_t for_grace_period_ms;         /* 0: 10m */
    rules_send_fn send;                  /* NULL: alerts are not sent */
    void *send_ctx;
    rules_written_fn written;            /* NULL: nobody is told (remote_write is) */
    void *written_ctx;
    pql_eval_options pql;
    /* --query.max-samples and --query.max-concurrency: a rule's query (and a
     * template's) waits for a slot, and one past the samples fails that
     * evaluation with Prometheus's error; NULL: pql.max_samples, no gate */
    pql_limits *limits;
} rules_eval_options;

typedef enum rules_health { RULES_HEALTH_UNKNOWN, RULES_HEALTH_OK, RULES_HEALTH_ERR } rules_health;

/* A rule's state; read it under the group's lock (rules_group_rt_lock). */
typedef struct rules_rule_rt {
    const rules_rule *rule;
    rules_health health;
    char last_error[512];
    int64_t last_eval_wall_ms;
    double eval_seconds;
    rules_alert *alerts;
    size_t n_alerts, cap_alerts;
    /* series written last time, for stale markers: packed label sets */
    firn_label **prev;
    size_t *prev_n;
    size_t n_prev;
    uint64_t evaluations_total, failures_total;
} rules_rule_rt;

typedef struct rules_group_rt {
    const rules_file *file;
    const rules_group *group;
    char *key;                       /* file ";" name */
    int64_t interval_ms;
    rules_eval_options opts;
    rules_rule_rt *rules;
    size_t n_rules;
    bool restored;                   /* ALERTS are written (after the for-state restore) */
    int64_t last_eval_wall_ms, last_eval_ts_ms;
    double eval_seconds;
    uint64_t iterations_total, iterations_missed_total, last_samples;
    pthread_mutex_t mu;
} rules_group_rt;

/* The runtime of f's group gi (f must outlive it); default_interval_ms
 * applies when the group has no interval.  Never NULL (err is not written). */
rules_group_rt *rules_group_rt_new(const rules_file *f, size_t gi, int64_t default_interval_ms,
                                   const rules_eval_options *o, firn_err *err);
void rules_group_rt_free(rules_group_rt *g);
/* Evaluates every rule at ts (ms). */
void rules_group_rt_eval(rules_group_rt *g, int64_t ts_ms);
/* Prometheus's RestoreForState at now_ms: pending time of alerts of rules
 * with for >= the grace period is carried over from ALERTS_FOR_STATE; then
 * the group is restored. */
void rules_group_rt_restore(rules_group_rt *g, int64_t now_ms);
/* Prometheus's CopyState on reload: evaluation times, stale-marker sets and
 * the alerts of alerting rules matched by name and labels (the n-th
 * duplicate with the n-th). */
void rules_group_rt_copy_state(rules_group_rt *to, rules_group_rt *from);
/* The offset of the group's slots within its interval (Prometheus's hash
 * offset: xxhash64 of the file and name as labels, modulo the interval). */
int64_t rules_group_rt_offset(const rules_group_rt *g);
/* Writes stale markers at ts for every series the group wrote last
 * (a removed group). */
void rules_group_rt_mark_all_stale(rules_group_rt *g, int64_t ts_ms);

/* ---- the manager (manager.c): firn's rule engine in the server -------------------
 *
 * Runs the rule groups of a configuration's rule_files, each on its own
 * thread at fixed slots (k * interval + the group's hash offset), and feeds
 * the notifier.  Rules and alerting configuration are applied whole or not
 * at all: on any rule file error the running groups and Alertmanagers stay.
 * A group whose file and name are unchanged takes over its predecessor's
 * state (alerts, stale-marker sets, evaluation times; its phase is its
 * hash's); a removed group's series get stale markers.  Groups loaded at
 * startup restore their alerts' `for` state after their second evaluation
 * (Prometheus's RestoreForState); groups added by a reload start restored.
 */
typedef struct rules_manager rules_manager;

typedef struct rules_manager_options {
    tsdb *db;
    const char *external_url;        /* firn's URL: generatorURL, $externalURL */
    int64_t resend_delay_ms;         /* 0: 1m */
    int64_t outage_tolerance_ms;     /* 0: 1h */
    int64_t for_grace_period_ms;     /* 0: 10m */
    size_t queue_capacity;           /* 0: 10000 */
    size_t batch_size;               /* 0: 64 (Prometheus 2.42; 256 since 3.4) */
    const char *dns_server;          /* Alertmanager dns_sd_configs' resolver
                                        (HOST:PORT); NULL: resolv.conf */
    pql_limits *limits;              /* the server's query limits (rules_eval_options) */
} rules_manager_options;

rules_manager *rules_manager_new(const rules_manager_options *o, firn_err *err);
/* Applies cfg's rule_files (globs relative to the directory of cfg->source
 * when it is a file), evaluation_interval, external_labels and alerting.
 * Takes cfg: it is kept while in use and freed later, or at once on error.
 * On error (every rule file error logged, the first in err) nothing
 * changes. */
int rules_manager_apply(rules_manager *m, firn_config *cfg, firn_err *err);
void rules_manager_free(rules_manager *m);
void rules_manager_metrics_write(rules_manager *m, firn_buf *b);
/* GET /api/v1/rules: the whole response body in Prometheus 2.42's JSON;
 * type is NULL/"" (all), "alert" or "record" (any case); another value is
 * FIRN_EINVAL with Prometheus's message. */
int rules_manager_json_rules(rules_manager *m, const char *type, firn_buf *b, firn_err *err);
/* GET /api/v1/alerts: pending and firing alerts, sorted by labels. */
void rules_manager_json_alerts(rules_manager *m, firn_buf *b);

/* ---- unit tests (unittest.c) ------------------------------------------------------ */

/* promtool 2.42's `test rules` on one unit-test file: "Unit Testing:  FILE"
 * and "  SUCCESS" on out, or "  FAILED:" and the errors on err (an empty
 * line on out after each); 0 when it passed, 1 otherwise. */
int rules_unittest_file(const char *path, FILE *out, FILE *err);

/* Go's strconv.FormatFloat(v, 'e', -1, 64) (alert values in the API). */
void rules_format_float_e(char *buf, size_t size, double v);

#endif
