/* labels.h -- labels and label matchers, as Prometheus's model/labels.
 *
 * They live in model/ so that the query parser can build matchers the store
 * evaluates without the store knowing the parser. */
#ifndef FIRN_MODEL_LABELS_H
#define FIRN_MODEL_LABELS_H

#include <stdbool.h>
#include <stddef.h>

#include "model/err.h"
#include "model/regex.h"

/* A label pair.  A label set is an array of them sorted by name with unique
 * names.  The strings are owned by whoever owns the array. */
typedef struct firn_label {
    const char *name;
    const char *value;
} firn_label;

#define FIRN_LABEL_NAME "__name__"
#define FIRN_LABEL_NAME_MAX 256       /* bytes in a label name */
#define FIRN_LABEL_VALUE_MAX 65536    /* bytes in a label value */
#define FIRN_LABELS_MAX 256           /* pairs in a label set */

/* Prometheus's label name rule: [a-zA-Z_][a-zA-Z0-9_]*. */
bool firn_label_name_valid(const char *name);
/* Sort by name and check the set: valid names, UTF-8 values within
 * FIRN_LABEL_VALUE_MAX, no duplicate names, at most FIRN_LABELS_MAX pairs.
 * Pairs with an empty value are removed (Prometheus: an empty label is an
 * absent label); *n is updated. */
int firn_labels_normalize(firn_label *labels, size_t *n, firn_err *err);
/* Value of name in a sorted set, or NULL. */
const char *firn_labels_get(const firn_label *labels, size_t n, const char *name);
/* {a="1", b="2"} with Prometheus's quoting of values (Go %q escapes), into a
 * malloc'd string (never NULL). */
char *firn_labels_format(const firn_label *labels, size_t n);

/* ---- label matchers ------------------------------------------------------ */

typedef enum firn_match_type {
    FIRN_MATCH_EQ,    /* =  */
    FIRN_MATCH_NE,    /* != */
    FIRN_MATCH_RE,    /* =~ */
    FIRN_MATCH_NRE,   /* !~ */
} firn_match_type;

/* One label matcher, as Prometheus's labels.Matcher: name, operator, value.
 * A label that is absent has the value "".  Owns its strings and regex. */
typedef struct firn_matcher {
    firn_match_type type;
    char *name;
    char *value;
    firn_regex *re;   /* for =~ and !~ */
} firn_matcher;

/* Fails (with err) only on a regex that does not compile. */
int firn_matcher_init(firn_matcher *m, firn_match_type type, const char *name,
                      const char *value, firn_err *err);
void firn_matcher_destroy(firn_matcher *m);
/* Whether the matcher accepts value (NULL means the label is absent, i.e.
 * ""); a regex that hits its match limit counts as no match. */
bool firn_matcher_matches(const firn_matcher *m, const char *value);
/* "=", "!=", "=~", "!~". */
const char *firn_match_type_str(firn_match_type type);

#endif
