/* labels.c -- label sets as Prometheus's model/labels: validation,
 * normalization (sorted, unique names, no empty values), lookup, the
 * {a="1", b="2"} text form with Go's strconv.Quote escapes, and label
 * matchers.
 */
#include "model/labels.h"

#include "model/alloc.h"
#include "model/table.h"
#include "model/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR_SHOW_MAX 128   /* bytes of a bad name or value shown in an error */

bool firn_label_name_valid(const char *name)
{
    if (!name || !*name)
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (p != name && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* s Go-quoted for an error message, cut to ERR_SHOW_MAX bytes of input. */
static const char *show(char *buf, const char *s)
{
    size_t len = strnlen(s, ERR_SHOW_MAX + 1);
    bool cut = len > ERR_SHOW_MAX;
    if (cut)
        len = ERR_SHOW_MAX;
    size_t n = firn_go_quote(buf, s, len);   /* at most 10 bytes per input byte, + 2 */
    if (cut) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

#define SHOW_BUF (ERR_SHOW_MAX * 10 + 8)

static int compare_by_name(const void *a, const void *b)
{
    return strcmp(((const firn_label *)a)->name, ((const firn_label *)b)->name);
}

int firn_labels_normalize(firn_label *labels, size_t *n, firn_err *err)
{
    char shown[SHOW_BUF];
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        const firn_label *l = &labels[i];
        if (!l->name)
            return firn_errf(err, FIRN_EINVAL, "label %zu: no name", i);
        size_t name_len = strnlen(l->name, FIRN_LABEL_NAME_MAX + 1);
        if (name_len > FIRN_LABEL_NAME_MAX)
            return firn_errf(err, FIRN_ETOOBIG, "label name %s: longer than %d bytes",
                             show(shown, l->name), FIRN_LABEL_NAME_MAX);
        if (!firn_label_name_valid(l->name))
            return firn_errf(err, FIRN_EINVAL,
                             "label name %s: must match [a-zA-Z_][a-zA-Z0-9_]*",
                             show(shown, l->name));
        const char *value = l->value ? l->value : "";
        size_t value_len = strnlen(value, FIRN_LABEL_VALUE_MAX + 1);
        if (value_len > FIRN_LABEL_VALUE_MAX)
            return firn_errf(err, FIRN_ETOOBIG, "label %s: value longer than %d bytes",
                             show(shown, l->name), FIRN_LABEL_VALUE_MAX);
        if (!firn_utf8_valid(value, value_len))
            return firn_errf(err, FIRN_EINVAL, "label %s: value is not valid UTF-8",
                             show(shown, l->name));
        if (value_len > 0)
            kept++;
    }
    if (kept > FIRN_LABELS_MAX)
        return firn_errf(err, FIRN_ETOOBIG, "label set has %zu labels, more than %d", kept,
                         FIRN_LABELS_MAX);

    /* The set is valid pair by pair: drop empty values, sort, look for twins. */
    size_t out = 0;
    for (size_t i = 0; i < *n; i++)
        if (labels[i].value && labels[i].value[0])
            labels[out++] = labels[i];
    firn_sort(labels, out, sizeof *labels, compare_by_name);
    for (size_t i = 1; i < out; i++)
        if (strcmp(labels[i - 1].name, labels[i].name) == 0)
            return firn_errf(err, FIRN_EINVAL, "duplicate label name %s",
                             show(shown, labels[i].name));
    *n = out;
    return FIRN_OK;
}

const char *firn_labels_get(const firn_label *labels, size_t n, const char *name)
{
    if (!name)
        return NULL;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(labels[mid].name, name);
        if (c == 0)
            return labels[mid].value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Write the text form into out (when not NULL); returns its length. */
static size_t format_into(char *out, const firn_label *labels, size_t n)
{
    size_t pos = 0;
#define PUT(s, len)                                    \
    do {                                               \
        if (out)                                       \
            memcpy(out + pos, (s), (len));             \
        pos += (len);                                  \
    } while (0)
    PUT("{", 1);
    for (size_t i = 0; i < n; i++) {
        const char *value = labels[i].value ? labels[i].value : "";
        if (i > 0)
            PUT(", ", 2);
        PUT(labels[i].name, strlen(labels[i].name));
        PUT("=", 1);
        pos += firn_go_quote(out ? out + pos : NULL, value, strlen(value));
    }
    PUT("}", 1);
#undef PUT
    return pos;
}

char *firn_labels_format(const firn_label *labels, size_t n)
{
    size_t len = format_into(NULL, labels, n);
    char *s = firn_xmalloc(len + 1);
    format_into(s, labels, n);
    s[len] = '\0';
    return s;
}

/* ---- label matchers ------------------------------------------------------ */

const char *firn_match_type_str(firn_match_type type)
{
    switch (type) {
    case FIRN_MATCH_EQ:
        return "=";
    case FIRN_MATCH_NE:
        return "!=";
    case FIRN_MATCH_RE:
        return "=~";
    case FIRN_MATCH_NRE:
        return "!~";
    }
    return "?";
}

int firn_matcher_init(firn_matcher *m, firn_match_type type, const char *name,
                      const char *value, firn_err *err)
{
    memset(m, 0, sizeof *m);
    if (type != FIRN_MATCH_EQ && type != FIRN_MATCH_NE && type != FIRN_MATCH_RE &&
        type != FIRN_MATCH_NRE)
        return firn_errf(err, FIRN_EINVAL, "matcher: unknown match type %d", (int)type);
    if (!name || !value)
        return firn_errf(err, FIRN_EINVAL, "matcher: no label %s", name ? "value" : "name");
    firn_regex *re = NULL;
    if (type == FIRN_MATCH_RE || type == FIRN_MATCH_NRE) {
        firn_err compile_err = {0};
        re = firn_regex_compile(value, &compile_err);
        if (!re) {
            if (err) {
                *err = compile_err;
                firn_err_prefix(err, "label \"%.128s\"", name);
            }
            return compile_err.code;
        }
    }
    m->type = type;
    m->name = firn_xstrdup(name);
    m->value = firn_xstrdup(value);
    m->re = re;
    return FIRN_OK;
}

void firn_matcher_destroy(firn_matcher *m)
{
    free(m->name);
    free(m->value);
    firn_regex_free(m->re);
    m->name = NULL;
    m->value = NULL;
    m->re = NULL;
}

bool firn_matcher_matches(const firn_matcher *m, const char *value)
{
    if (!value)
        value = "";
    switch (m->type) {
    case FIRN_MATCH_EQ:
        return strcmp(value, m->value) == 0;
    case FIRN_MATCH_NE:
        return strcmp(value, m->value) != 0;
    case FIRN_MATCH_RE:
        return firn_regex_match(m->re, value, strlen(value), NULL) == 1;
    case FIRN_MATCH_NRE:
        /* A regex that fails (match limit) has not matched: !~ accepts. */
        return firn_regex_match(m->re, value, strlen(value), NULL) <= 0;
    }
    return false;
}
