/* relabel.h -- Prometheus's relabel_config (model/relabel): the rules that
 * rewrite, keep or drop a label set, applied to discovered targets and
 * scraped samples.
 * Label names are validated the legacy way ([a-zA-Z_][a-zA-Z0-9_]*, at most
 * FIRN_LABEL_NAME_MAX bytes), as firn_label_name_valid; target_label and the
 * labelmap replacement may hold $-references, checked against Prometheus's
 * ^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$.
 *
 * A config is built once (by the config loader), then read-only: it can be
 * applied from many threads at once. */
#ifndef FIRN_MODEL_RELABEL_H
#define FIRN_MODEL_RELABEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/alloc.h"
#include "model/err.h"
#include "model/labels.h"
#include "model/regex.h"

typedef enum firn_relabel_action {
    FIRN_RELABEL_REPLACE,
    FIRN_RELABEL_KEEP,
    FIRN_RELABEL_DROP,
    FIRN_RELABEL_KEEPEQUAL,
    FIRN_RELABEL_DROPEQUAL,
    FIRN_RELABEL_HASHMOD,
    FIRN_RELABEL_LABELMAP,
    FIRN_RELABEL_LABELDROP,
    FIRN_RELABEL_LABELKEEP,
    FIRN_RELABEL_LOWERCASE,
    FIRN_RELABEL_UPPERCASE,
} firn_relabel_action;

typedef struct firn_relabel_config {
    firn_relabel_action action;
    char **source_labels;    /* malloc'd array of malloc'd names, owned; not NULL
                              * when given, even as [] (labeldrop and labelkeep
                              * refuse a given source_labels, as Prometheus) */
    size_t n_source_labels;
    char *separator;         /* NULL = ";" */
    char *target_label;      /* may be NULL */
    char *regex;             /* pattern text; NULL = "(.*)"; "" (an explicit null in
                              * YAML) = the empty regex, which matches only "" */
    uint64_t modulus;
    char *replacement;       /* NULL = "$1" */
    firn_regex *compiled;    /* set by firn_relabel_config_init */
    /* Which fields were given explicitly.  Prometheus compares separator,
     * modulus and replacement with their defaults by value, so only an
     * explicit regex (has_regex, or regex not NULL) counts in validation;
     * the others are for the loader's own use. */
    bool has_separator, has_regex, has_modulus, has_replacement;
} firn_relabel_config;

/* Most labels a label set may hold while rules run (labelmap adds some). */
#define FIRN_RELABEL_LABELS_MAX 4096

/* The action named s, case-insensitively (Go's strings.ToLower); -1 when
 * there is none. */
int firn_relabel_action_parse(const char *s, firn_relabel_action *out);
/* "replace", "keep", ...; "unknown" for a value outside the enum. */
const char *firn_relabel_action_name(firn_relabel_action a);
/* Validate c as Prometheus's Config.Validate does, with the same messages
 * ("relabel configuration for replace action requires 'target_label'
 * value"), and compile its regex into c->compiled.  c holds zeros or
 * values in every field it does not set. */
int firn_relabel_config_init(firn_relabel_config *c, firn_err *err);
/* Free the owned strings and the compiled regex; c is zeroed. */
void firn_relabel_config_destroy(firn_relabel_config *c);
/* Apply cfgs[0..n) in order, as Prometheus's relabel.Process, stopping at
 * the first rule that drops.  in is a label set (pairs with an empty value
 * count as absent).  Returns 1 when kept, with *out the new label set,
 * sorted by name, its array and strings allocated from arena (NULL when
 * the set is empty); 0 when dropped (*out NULL, *n_out 0); negative (with
 * err) when a regex hits its match limit, a produced value is longer than
 * FIRN_LABEL_VALUE_MAX, the set grows past FIRN_RELABEL_LABELS_MAX, or in
 * has a duplicate name.  Thread-safe for read-only cfgs. */
int firn_relabel_process(const firn_relabel_config *cfgs, size_t n, const firn_label *in,
                         size_t n_in, firn_arena *arena, firn_label **out, size_t *n_out,
                         firn_err *err);

#endif
