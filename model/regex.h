/* regex.h -- PCRE2 regular expressions with Prometheus's semantics, their
 * capture groups, and Go's regexp.Expand for relabeling.
 *
 * A compiled regex has Prometheus's anchoring: the whole input must match,
 * and "." matches newline (RE2's ^(?s:re)$).  UTF-8 mode, JIT when
 * available, and a match limit so a pathological pattern cannot spin.
 * A compiled firn_regex is read-only and safe to use from many threads. */
#ifndef FIRN_MODEL_REGEX_H
#define FIRN_MODEL_REGEX_H

#include <stddef.h>

#include "model/err.h"

typedef struct firn_regex firn_regex;

#define FIRN_REGEX_MAX_GROUPS 64

firn_regex *firn_regex_compile(const char *pattern, firn_err *err);
void firn_regex_free(firn_regex *re);
/* 1 when the whole of s matches, 0 when not, negative (with err) when
 * matching failed (match limit hit). */
int firn_regex_match(const firn_regex *re, const char *s, size_t len, firn_err *err);

/* Capture groups and Go's regexp.Expand, for relabeling.
 *
 * An ovector holds 2 * FIRN_REGEX_MAX_GROUPS offsets into the subject: the
 * start and end of group i at [2i] and [2i+1], group 0 the whole match, a
 * group that did not take part (SIZE_MAX, SIZE_MAX). */

/* Capture groups in the pattern, group 0 not counted. */
int firn_regex_group_count(const firn_regex *re);
/* 1 when the whole of s matches, with the groups in ovector and their
 * number (capture groups + 1) in *n_groups; 0 when it does not match;
 * negative (with err) when matching failed, or the pattern has
 * FIRN_REGEX_MAX_GROUPS capture groups or more. */
int firn_regex_match_groups(const firn_regex *re, const char *s, size_t len,
                            size_t *ovector /* 2 * FIRN_REGEX_MAX_GROUPS */,
                            size_t *n_groups, firn_err *err);
/* Index of the named group (?P<name>...) or (?<name>...), -1 if none. */
int firn_regex_group_index(const firn_regex *re, const char *name);
/* tmpl with its references replaced as Go's regexp.Expand does: $name or
 * ${name}, name the longest run of letters, digits and "_" ($1x is ${1x});
 * an all-digit name is a group index, any other a group name; an unknown,
 * out-of-range or unmatched group gives ""; "$$" is "$"; a "$" not followed
 * by a name or a closed ${name} is itself.  subject, ovector and n_groups
 * come from firn_regex_match_groups.  A malloc'd string; NULL only when
 * PCRE2 fails while reading a reference name. */
char *firn_regex_expand(const firn_regex *re, const char *tmpl, const char *subject,
                        const size_t *ovector, size_t n_groups);
/* Go's re.ReplaceAllString(s, replacement): with Prometheus's anchoring the
 * regex matches all of s or nothing, so this is the expanded replacement
 * when s matches and a copy of s when not.  A malloc'd string; NULL (with
 * err) when matching or expanding failed. */
char *firn_regex_replace_all(const firn_regex *re, const char *s, size_t len,
                             const char *replacement, firn_err *err);

#endif
