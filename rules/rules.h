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

#include "model/model.h"
#include "promql-like/pql.h"

#define RULES_FILE_MAX (16u << 20)   /* bytes of one rule file */

/* ---- templates (template.c) ----------------------------------------------- */

/* A parsed template: Go text/template as Prometheus 2.42's alert templates
 * see it (actions, pipelines, variables, if/else/range/with, comments and
 * trim markers; Go's builtins and Prometheus's functions but query). */
typedef struct rules_template rules_template;

/* The data an alert template runs on: $labels (.Labels), $externalLabels,
 * $externalURL and $value. */
typedef struct rules_template_data {
    const firn_label *labels;
    size_t n_labels;
    const firn_label *external_labels;
    size_t n_external_labels;
    const char *external_url;
    double value;
} rules_template_data;

/* Parses text under the name given, with Prometheus's alert preamble
 * ({{$labels := .Labels}}... ) in front.  Errors are Go's texts:
 * "template: NAME:LINE: unclosed action". */
rules_template *rules_template_parse(const char *name, const char *text, firn_err *err);
void rules_template_free(rules_template *t);
/* Runs a template; returns a malloc'd string.  An execution error is, as in
 * Prometheus, the result's text: "<error expanding template: ...>".  NULL
 * only when out of memory. */
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

#endif
