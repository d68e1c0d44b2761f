/* file.c -- rule files: Prometheus 2.42's rulefmt.Parse, its YAML decoding
 * errors and its validation, with the same texts and positions.
 *
 * Prometheus decodes a rule file twice (strictly into typed structs, then
 * into yaml.Node trees for positions) and validates only when both
 * succeed.  So the errors come in three tiers, and a file gets only one:
 *  1. a YAML syntax error (reported once per decode: twice);
 *  2. a custom unmarshaler's error (a bad duration): the first one in the
 *     document, alone, since it aborts go-yaml's decode;
 *  3. go-yaml's type errors ("yaml: unmarshal errors:" and one "  line N:"
 *     per problem: unknown fields, duplicate keys, kinds that do not fit);
 *  4. otherwise the semantic errors of rulefmt's Validate, all of them.
 * Positions are the YAML nodes go-yaml v3 gives: the group's mapping (its
 * first key), the record/alert/expr values; an absent node prints 0:0.
 */
#include "rules/rules.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "config/yaml.h"

struct strlist {
    char **v;
    size_t n, cap;
};

/* Takes s (malloc'd). */
static void strlist_add(struct strlist *l, char *s)
{
    assert(s);
    l->v = firn_grow(l->v, l->n, &l->cap, sizeof *l->v, 8);
    l->v[l->n++] = s;
}

static void strlist_free(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static char *vfmt(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        firn_oom(strlen(fmt));   /* as firn_xasprintf: the formats here are %s and numbers */
    return s;
}

static char *fmt_str(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_str(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vfmt(fmt, ap);
    va_end(ap);
    return s;
}

struct loader {
    const char *path;
    firn_arena *arena;
    char *fatal;                 /* tier 2 */
    struct strlist types;        /* tier 3: "line N: ...", of the typed decode */
    struct strlist types2;       /* the same, of the second (yaml.Node) decode */
    struct strlist sem;          /* tier 4: whole messages after "PATH: " */
};

static void type_err(struct loader *ld, const config_ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void type_err(struct loader *ld, const config_ynode *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vfmt(fmt, ap);
    va_end(ap);
    strlist_add(&ld->types, fmt_str("line %d: %s", at ? at->line : 0, msg));
    free(msg);
}

static void sem_err(struct loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sem_err(struct loader *ld, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strlist_add(&ld->sem, vfmt(fmt, ap));
    va_end(ap);
}

/* go-yaml's tag of a scalar as its messages print it. */
static const char *scalar_tag(const config_ynode *n)
{
    if (!n->plain)
        return "!!str";
    const char *v = n->value;
    if (config_ynode_is_null(n))
        return "!!null";
    static const char *const bools[] = {"true", "True", "TRUE", "false", "False", "FALSE"};
    for (size_t i = 0; i < sizeof bools / sizeof *bools; i++)
        if (strcmp(v, bools[i]) == 0)
            return "!!bool";
    const char *p = v;
    if (*p == '-' || *p == '+')
        p++;
    if (*p >= '0' && *p <= '9') {
        char *end;
        strtoll(v, &end, 0);
        if (!*end)
            return "!!int";
        strtod(v, &end);
        if (!*end)
            return "!!float";
    }
    if (strcmp(p, ".inf") == 0 || strcmp(p, ".Inf") == 0 || strcmp(v, ".nan") == 0 ||
        (*p == '.' && p[1] >= '0' && p[1] <= '9'))
        return "!!float";
    return "!!str";
}

/* "!!str `abc`" or "!!seq", as in go-yaml's "cannot unmarshal X into T". */
static void kind_err(struct loader *ld, const config_ynode *n, const char *type)
{
    if (n->kind == CONFIG_YNODE_SCALAR) {
        char shown[32];
        if (strlen(n->value) > 10)
            snprintf(shown, sizeof shown, "%.7s...", n->value);
        else
            snprintf(shown, sizeof shown, "%s", n->value);
        type_err(ld, n, "cannot unmarshal %s `%s` into %s", scalar_tag(n), shown, type);
    } else {
        type_err(ld, n, "cannot unmarshal %s into %s",
                 n->kind == CONFIG_YNODE_SEQ ? "!!seq" : "!!map", type);
    }
}

/* go-yaml v3 checks a mapping's keys for repeats before decoding it, and
 * decodes nothing of a mapping that has one. */
static bool unique_keys(struct loader *ld, const config_ynode *map)
{
    bool ok = true;
    for (size_t i = 0; i < map->n; i++) {
        const config_ynode *a = map->items[2 * i];
        for (size_t j = i + 1; j < map->n; j++) {
            const config_ynode *b = map->items[2 * j];
            if (a->kind == b->kind && a->kind == CONFIG_YNODE_SCALAR &&
                strcmp(a->value, b->value) == 0) {
                type_err(ld, b, "mapping key \"%s\" already defined at line %d", b->value,
                         a->line);
                ok = false;
            }
        }
    }
    return ok;
}

/* The map's values for names (NULL when absent); unknown keys reported as
 * go-yaml does.  False when the mapping is not to be decoded. */
static bool fields(struct loader *ld, const config_ynode *map, const char *type,
                   const char *const *names, size_t count, const config_ynode **vals)
{
    for (size_t i = 0; i < count; i++)
        vals[i] = NULL;
    if (!unique_keys(ld, map))
        return false;
    const config_ynode *merge = NULL;
    for (size_t k = 0; k + 1 < map->n * 2; k += 2) {
        const config_ynode *key = map->items[k], *val = map->items[k + 1];
        const char *kn = key->kind == CONFIG_YNODE_SCALAR ? key->value : "";
        if (key->plain && strcmp(kn, "<<") == 0) {
            merge = val;
            continue;
        }
        size_t i = 0;
        while (i < count && strcmp(names[i], kn) != 0)
            i++;
        if (i == count)
            type_err(ld, key, "field %s not found in type rulefmt.%s", kn, type);
        else
            vals[i] = val;
    }
    /* the merge key: the merged mappings' keys, where the mapping has none */
    if (merge) {
        size_t n = merge->kind == CONFIG_YNODE_SEQ ? merge->n : 1;
        for (size_t m = 0; m < n; m++) {
            const config_ynode *src = merge->kind == CONFIG_YNODE_SEQ ? merge->items[m] : merge;
            if (src->kind != CONFIG_YNODE_MAP) {
                type_err(ld, src, "map merge requires map or sequence of maps as the value");
                continue;
            }
            const config_ynode *sub[16];
            if (count > 16 || !fields(ld, src, type, names, count, sub))
                continue;
            for (size_t i = 0; i < count; i++) {
                bool explicit_key = false;
                for (size_t k = 0; k < map->n && !explicit_key; k++)
                    explicit_key = map->items[2 * k]->kind == CONFIG_YNODE_SCALAR &&
                                   strcmp(map->items[2 * k]->value, names[i]) == 0;
                if (!explicit_key && !vals[i] && sub[i])
                    vals[i] = sub[i];
            }
        }
    }
    return true;
}

/* An error of the second decode (into yaml.Node trees), which go-yaml
 * reports as an error of its own. */
static void second_decode_err(struct loader *ld, const config_ynode *n, const char *type)
{
    struct strlist save = ld->types;
    ld->types = ld->types2;
    kind_err(ld, n, type);
    ld->types2 = ld->types;
    ld->types = save;
}

static void unique_keys_second(struct loader *ld, const config_ynode *map)
{
    struct strlist save = ld->types;
    ld->types = ld->types2;
    unique_keys(ld, map);
    ld->types2 = ld->types;
    ld->types = save;
}

/* A scalar decoded into a Go string field: any scalar; null is "". */
static const char *str_field(struct loader *ld, const config_ynode *v)
{
    if (!v || config_ynode_is_null(v))
        return "";
    if (v->kind != CONFIG_YNODE_SCALAR) {
        kind_err(ld, v, "string");
        return "";
    }
    return v->value;
}

/* A yaml.Node field (record, alert, expr): any node; its Value is a
 * scalar's text, else "". */
static const char *node_value(const config_ynode *v)
{
    if (!v || v->kind != CONFIG_YNODE_SCALAR || config_ynode_is_null(v))
        return "";
    return v->value;
}

/* Prometheus's model.ParseDuration, with its messages. */
static int64_t duration_field(struct loader *ld, const config_ynode *v)
{
    if (!v || config_ynode_is_null(v))
        return 0;
    if (v->kind != CONFIG_YNODE_SCALAR) {
        kind_err(ld, v, "string");
        return 0;
    }
    if (ld->fatal)
        return 0;
    int64_t ms = 0;
    if (!v->value[0]) {
        ld->fatal = fmt_str("empty duration string");
        return 0;
    }
    firn_err e = {0};
    if (firn_duration_parse(v->value, &ms, &e) < 0) {
        ld->fatal = fmt_str("not a valid duration string: \"%s\"", v->value);
        return 0;
    }
    return ms;
}

static int64_t int_field(struct loader *ld, const config_ynode *v)
{
    if (!v || config_ynode_is_null(v))
        return 0;
    const char *tag = v->kind == CONFIG_YNODE_SCALAR ? scalar_tag(v) : "";
    if (strcmp(tag, "!!int") == 0) {
        errno = 0;
        char *end;
        long long x = strtoll(v->value, &end, 0);
        if (errno == 0)
            return x;
    } else if (strcmp(tag, "!!float") == 0) {
        /* go-yaml truncates a float that fits */
        double d = strtod(v->value, NULL);
        if (d >= -9.2e18 && d <= 9.2e18)
            return (int64_t)d;
    }
    kind_err(ld, v, "int");
    return 0;
}

static bool valid_metric_name(const char *s)
{
    if (!*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (p != s && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const firn_label *)a)->name, ((const firn_label *)b)->name);
}

/* map[string]string: every scalar value is a string; null is "". */
static firn_label *string_map(struct loader *ld, const config_ynode *v, const char *type,
                              size_t *n)
{
    *n = 0;
    if (!v || config_ynode_is_null(v))
        return NULL;
    if (v->kind != CONFIG_YNODE_MAP) {
        kind_err(ld, v, "map[string]string");
        return NULL;
    }
    (void)type;
    if (!unique_keys(ld, v))
        return NULL;
    firn_label *out = firn_arena_alloc(ld->arena, (v->n + 1) * sizeof *out);
    for (size_t k = 0; k < v->n; k++) {
        const config_ynode *key = v->items[2 * k], *val = v->items[2 * k + 1];
        if (key->kind != CONFIG_YNODE_SCALAR) {
            kind_err(ld, key, "string");
            continue;
        }
        const char *value = "";
        if (val->kind != CONFIG_YNODE_SCALAR)
            kind_err(ld, val, "string");
        else if (!config_ynode_is_null(val))
            value = val->value;
        out[*n].name = key->value;
        out[*n].value = value;
        (*n)++;
    }
    /* sorted: Prometheus's own order is a Go map's (random); sorted is stable */
    firn_sort(out, *n, sizeof *out, cmp_label);
    return out;
}

static const char *const GROUP_FIELDS[] = {"name", "interval", "limit", "rules", "query_offset"};
enum { G_NAME, G_INTERVAL, G_LIMIT, G_RULES, G_QUERY_OFFSET, G_N };
static const char *const RULE_FIELDS[] = {"record", "alert", "expr", "for", "keep_firing_for",
                                          "labels", "annotations"};
enum { R_RECORD, R_ALERT, R_EXPR, R_FOR, R_KEEP, R_LABELS, R_ANNOTATIONS, R_N };

/* Where a rule's nodes are, for validation after decoding. */
struct rule_nodes {
    const config_ynode *record, *alert, *expr;
};

struct group_nodes {
    const config_ynode *node;
    struct rule_nodes *rules;
};

static void decode_rule(struct loader *ld, const config_ynode *n, rules_rule *r,
                        struct rule_nodes *rn)
{
    memset(rn, 0, sizeof *rn);
    if (config_ynode_is_null(n))
        return;
    if (n->kind != CONFIG_YNODE_MAP) {
        kind_err(ld, n, "rulefmt.RuleNode");
        return;
    }
    const config_ynode *v[R_N];
    if (!fields(ld, n, "RuleNode", RULE_FIELDS, R_N, v))
        return;
    rn->record = v[R_RECORD];
    rn->alert = v[R_ALERT];
    rn->expr = v[R_EXPR];
    r->for_ms = duration_field(ld, v[R_FOR]);
    r->keep_firing_for_ms = duration_field(ld, v[R_KEEP]);
    r->labels = string_map(ld, v[R_LABELS], "labels", &r->n_labels);
    r->annotations = string_map(ld, v[R_ANNOTATIONS], "annotations", &r->n_annotations);
}

static void decode_group(struct loader *ld, const config_ynode *n, rules_group *g,
                         struct group_nodes *gn)
{
    gn->node = n;
    g->name = "";
    if (config_ynode_is_null(n))
        return;
    if (n->kind != CONFIG_YNODE_MAP) {
        kind_err(ld, n, "rulefmt.RuleGroup");
        return;
    }
    const config_ynode *v[G_N];
    if (!fields(ld, n, "RuleGroup", GROUP_FIELDS, G_N, v))
        return;
    g->name = str_field(ld, v[G_NAME]);
    g->interval_ms = duration_field(ld, v[G_INTERVAL]);
    g->limit = int_field(ld, v[G_LIMIT]);
    if (v[G_QUERY_OFFSET]) {
        g->has_query_offset = true;
        g->query_offset_ms = duration_field(ld, v[G_QUERY_OFFSET]);
    }
    const config_ynode *rs = v[G_RULES];
    if (!rs || config_ynode_is_null(rs))
        return;
    if (rs->kind != CONFIG_YNODE_SEQ) {
        kind_err(ld, rs, "[]rulefmt.RuleNode");
        return;
    }
    g->rules = firn_arena_calloc(ld->arena, rs->n + 1, sizeof *g->rules);
    gn->rules = firn_arena_calloc(ld->arena, rs->n + 1, sizeof *gn->rules);
    g->n_rules = rs->n;
    for (size_t i = 0; i < rs->n; i++)
        decode_rule(ld, rs->items[i], &g->rules[i], &gn->rules[i]);
}

/* "L:C: msg" from pql becomes "L:C: parse error: msg", Prometheus's form. */
static char *parse_error_text(const char *msg)
{
    int l, c, off = 0;
    if (sscanf(msg, "%d:%d: %n", &l, &c, &off) == 2 && off > 0)
        return fmt_str("%d:%d: parse error: %s", l, c, msg + off);
    return fmt_str("parse error: %s", msg);
}

/* Go's %q (strconv.Quote) of s, into the loader's arena. */
static const char *go_quote(struct loader *ld, const char *s)
{
    size_t len = strlen(s);
    char *q = firn_arena_alloc(ld->arena, len * 10 + 3);
    q[firn_go_quote(q, s, len)] = 0;
    return q;
}

static bool is_profile_type(const char *name)
{
    firn_profile_type pt;
    return firn_profile_type_parse(name, &pt, NULL) == 0;
}

/* rulefmt's RuleNode.Validate, in its order; then firn's own check. */
static void validate_rule(struct loader *ld, const rules_group *g, size_t idx, rules_rule *r,
                          const struct rule_nodes *rn)
{
    const char *record = node_value(rn->record), *alert = node_value(rn->alert);
    const char *expr = node_value(rn->expr);
    const char *gq = go_quote(ld, g->name), *sq = go_quote(ld, alert[0] ? alert : record);
    char where[64];
#define POS(node) ((node) ? (node)->line : 0), ((node) ? (node)->col : 0)
#define ERR_AT(node, ...)                                                                   \
    do {                                                                                    \
        char *m_ = fmt_str(__VA_ARGS__);                                                    \
        snprintf(where, sizeof where, "%d:%d: ", POS(node));                                \
        sem_err(ld, "%sgroup %s, rule %zu, %s: %s", where, gq, idx + 1, sq,                   \
                m_);                                                                        \
        free(m_);                                                                           \
    } while (0)
#define ERR_NONE(...)                                                                     \
    do {                                                                                  \
        char *m_ = fmt_str(__VA_ARGS__);                                                  \
        sem_err(ld, "group %s, rule %zu, %s: %s", gq, idx + 1, sq,                        \
                m_);                                                                      \
        free(m_);                                                                         \
    } while (0)

    if (record[0] && alert[0]) {
        char *m = fmt_str("%d:%d: %d:%d: group %s, rule %zu, %s: only one of 'record' "
                          "and 'alert' must be set", POS(rn->record), POS(rn->alert), gq,
                          idx + 1, sq);
        strlist_add(&ld->sem, m);
    }
    if (!record[0] && !alert[0])
        ERR_AT(rn->record, "one of 'record' or 'alert' must be set");
    if (!expr[0]) {
        ERR_AT(rn->expr, "field 'expr' must be set in rule");
    } else {
        firn_err e = {0};
        if (pql_parse(expr, &r->query, &e) < 0) {
            char *pe = parse_error_text(e.msg);
            ERR_AT(rn->expr, "could not parse expression: %s", pe);
            free(pe);
            memset(&r->query, 0, sizeof r->query);
        }
    }
    if (record[0]) {
        if (r->n_annotations)
            ERR_AT(rn->record, "invalid field 'annotations' in recording rule");
        if (r->for_ms)
            ERR_AT(rn->record, "invalid field 'for' in recording rule");
        if (r->keep_firing_for_ms)
            ERR_AT(rn->record, "invalid field 'keep_firing_for' in recording rule");
        if (!valid_metric_name(record))
            ERR_AT(rn->record, "invalid recording rule name: %s", record);
        else if (is_profile_type(record))
            ERR_AT(rn->record, "invalid recording rule name: %s: a profile type's name (its "
                   "float series would shadow the profiles)", record);
    }
    for (size_t i = 0; i < r->n_labels; i++) {
        if (!firn_label_name_valid(r->labels[i].name) ||
            strcmp(r->labels[i].name, FIRN_LABEL_NAME) == 0)
            ERR_NONE("invalid label name: %s", r->labels[i].name);
        if (!firn_utf8_valid(r->labels[i].value, strlen(r->labels[i].value)))
            ERR_NONE("invalid label value: %s", r->labels[i].value);
    }
    for (size_t i = 0; i < r->n_annotations; i++)
        if (!firn_label_name_valid(r->annotations[i].name))
            ERR_NONE("invalid annotation name: %s", r->annotations[i].name);
    if (alert[0]) {
        char *tname = fmt_str("__alert_%s", alert);
        for (int pass = 0; pass < 2; pass++) {
            const firn_label *set = pass ? r->annotations : r->labels;
            size_t n = pass ? r->n_annotations : r->n_labels;
            for (size_t i = 0; i < n; i++) {
                firn_err e = {0};
                rules_template *t = rules_template_parse(tname, set[i].value, &e);
                if (t)
                    rules_template_free(t);
                else
                    ERR_NONE("%s \"%s\": %s", pass ? "annotation" : "label", set[i].name, e.msg);
            }
        }
        free(tname);
    }
#undef ERR_AT
#undef ERR_NONE
#undef POS
    r->alert = alert[0] != 0;
    r->name = r->alert ? alert : record;
    r->expr = expr;
}

void rules_errors_free(rules_errors *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++)
        free(e->lines[i]);
    free(e->lines);
    memset(e, 0, sizeof *e);
}

void rules_file_free(rules_file *f)
{
    if (!f)
        return;
    for (size_t g = 0; g < f->n_groups; g++)
        for (size_t i = 0; i < f->groups[g].n_rules; i++)
            pql_query_free(&f->groups[g].rules[i].query);
    firn_arena_free(f->arena);
}

/* "line N: ..." by N, stable (reports on one line keep their order). */
static void sort_by_line(struct strlist *l)
{
    for (size_t i = 1; i < l->n; i++) {
        char *v = l->v[i];
        size_t j = i;
        while (j > 0 && atoi(l->v[j - 1] + 5) > atoi(v + 5)) {
            l->v[j] = l->v[j - 1];
            j--;
        }
        l->v[j] = v;
    }
}

/* What go-yaml reads of text: the first document only (its end in
 * *doc_end), and, when libyaml refuses it, go-yaml's message for that
 * ("line N: problem", N from the context mark as go-yaml counts it). */
static char *first_document(const char *text, size_t len, size_t *doc_end)
{
    yaml_parser_t p;
    *doc_end = len;
    if (!yaml_parser_initialize(&p))
        firn_oom(sizeof p);   /* libyaml's own allocation failed */
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    char *msg = NULL;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            size_t line = 0;
            if (p.context_mark.line)
                line = p.context_mark.line + (p.error == YAML_SCANNER_ERROR);
            else if (p.problem_mark.line)
                line = p.problem_mark.line + (p.error == YAML_SCANNER_ERROR);
            const char *problem = p.problem ? p.problem : "unknown problem parsing YAML content";
            msg = line ? fmt_str("line %zu: %s", line, problem) : fmt_str("%s", problem);
            break;
        }
        yaml_event_type_t t = ev.type;
        if (t == YAML_DOCUMENT_END_EVENT)
            *doc_end = ev.end_mark.index;
        yaml_event_delete(&ev);
        if (t == YAML_DOCUMENT_END_EVENT || t == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&p);
    return msg;
}

/* Moves the loader's errors of the tier that applies into errs, each
 * prefixed with the path. */
static int finish(struct loader *ld, const char *syntax, rules_errors *errs, firn_err *err)
{
    struct strlist out = {0};
    if (syntax) {
        for (int i = 0; i < 2; i++)   /* one per decode, as Prometheus */
            strlist_add(&out, fmt_str("%s: yaml: %s", ld->path, syntax));
    } else if (ld->fatal) {
        strlist_add(&out, fmt_str("%s: %s", ld->path, ld->fatal));
    } else if (ld->types.n || ld->types2.n) {
        for (int k = 0; k < 2; k++) {
            struct strlist *l = k ? &ld->types2 : &ld->types;
            if (!l->n)
                continue;
            /* go-yaml decodes in document order */
            sort_by_line(l);
            firn_buf b = {0};
            firn_buf_printf(&b, "%s: yaml: unmarshal errors:", ld->path);
            for (size_t i = 0; i < l->n; i++)
                firn_buf_printf(&b, "\n  %s", l->v[i]);
            strlist_add(&out, firn_buf_take(&b, NULL));
        }
    } else {
        for (size_t i = 0; i < ld->sem.n; i++)
            strlist_add(&out, fmt_str("%s: %s", ld->path, ld->sem.v[i]));
    }
    if (out.n == 0)
        return 0;
    firn_errf(err, FIRN_EINVAL, "%s", out.v[0]);
    if (errs) {
        errs->lines = out.v;
        errs->n = out.n;
    } else {
        strlist_free(&out);
    }
    return FIRN_EINVAL;
}

rules_file *rules_file_parse(const char *path, const char *text, size_t len, rules_errors *errs,
                             firn_err *err)
{
    if (errs)
        memset(errs, 0, sizeof *errs);
    struct loader ld = {.path = path};
    rules_file *f = NULL;
    firn_arena *arena = firn_arena_new(0);
    ld.arena = arena;
    f = firn_arena_calloc(arena, 1, sizeof *f);
    f->arena = arena;
    f->path = firn_arena_strdup(arena, path);
    config_ynode *root = NULL;
    int line = 0, col = 0;
    firn_err perr = {0};
    char *syntax = NULL;
    struct group_nodes *gns = NULL;
    size_t doc_end = len;
    if (len > RULES_FILE_MAX) {
        syntax = fmt_str("file of %zu bytes; at most %u", len, RULES_FILE_MAX);
    } else if (!(syntax = first_document(text, len, &doc_end)) &&
               config_ytree_parse(text, doc_end, arena, &root, &line, &col, &perr) < 0) {
        /* libyaml accepted it: a cap of the tree (depth, aliases expanded) */
        const char *msg = strchr(perr.msg, ' ');
        syntax = fmt_str("line %d: %s", line, msg ? msg + 1 : perr.msg);
    }
    if (!syntax && root && !config_ynode_is_null(root)) {
        if (root->kind != CONFIG_YNODE_MAP) {
            kind_err(&ld, root, "rulefmt.RuleGroups");
            second_decode_err(&ld, root, "rulefmt.ruleGroups");
        } else {
            static const char *const top[] = {"groups"};
            const config_ynode *gs;
            if (!fields(&ld, root, "RuleGroups", top, 1, &gs)) {
                gs = NULL;
                unique_keys_second(&ld, root);
            }
            if (gs && !config_ynode_is_null(gs) && gs->kind != CONFIG_YNODE_SEQ) {
                kind_err(&ld, gs, "[]rulefmt.RuleGroup");
                second_decode_err(&ld, gs, "[]yaml.Node");
            } else if (gs && gs->kind == CONFIG_YNODE_SEQ) {
                f->groups = firn_arena_calloc(arena, gs->n + 1, sizeof *f->groups);
                gns = firn_arena_calloc(arena, gs->n + 1, sizeof *gns);
                f->n_groups = gs->n;
                for (size_t i = 0; i < gs->n; i++)
                    decode_group(&ld, gs->items[i], &f->groups[i], &gns[i]);
            }
        }
    }
    if (!syntax && !ld.fatal && !ld.types.n) {
        /* rulefmt's RuleGroups.Validate */
        for (size_t i = 0; i < f->n_groups; i++) {
            rules_group *g = &f->groups[i];
            const config_ynode *gn = gns[i].node;
            if (!g->name[0])
                sem_err(&ld, "%d:%d: Groupname must not be empty", gn->line, gn->col);
            for (size_t j = 0; j < i; j++)
                if (strcmp(f->groups[j].name, g->name) == 0) {
                    sem_err(&ld, "%d:%d: groupname: \"%s\" is repeated in the same file",
                            gn->line, gn->col, g->name);
                    break;
                }
            for (size_t r = 0; r < g->n_rules; r++)
                validate_rule(&ld, g, r, &g->rules[r], &gns[i].rules[r]);
            f->n_rules += g->n_rules;
        }
    }
    int rc = finish(&ld, syntax, errs, err);
    free(syntax);
    free(ld.fatal);
    strlist_free(&ld.types);
    strlist_free(&ld.types2);
    strlist_free(&ld.sem);
    if (rc) {
        rules_file_free(f);
        return NULL;
    }
    return f;
}

rules_file *rules_file_load(const char *path, rules_errors *errs, firn_err *err)
{
    if (errs)
        memset(errs, 0, sizeof *errs);
    unsigned char *buf;
    size_t len;
    if (firn_read_file(path, RULES_FILE_MAX, &buf, &len, err) < 0) {
        if (errs && err) {
            errs->lines = firn_xmalloc(sizeof *errs->lines);
            errs->lines[0] = firn_xstrdup(err->msg);
            errs->n = 1;
        }
        return NULL;
    }
    rules_file *f = rules_file_parse(path, (const char *)buf, len, errs, err);
    free(buf);
    return f;
}

/* ---- lint ---------------------------------------------------------------------- */

struct lint_item {
    const rules_rule *r;
};

static int labels_cmp(const rules_rule *a, const rules_rule *b)
{
    for (size_t i = 0; i < a->n_labels && i < b->n_labels; i++) {
        int c = strcmp(a->labels[i].name, b->labels[i].name);
        if (!c)
            c = strcmp(a->labels[i].value, b->labels[i].value);
        if (c)
            return c;
    }
    return a->n_labels < b->n_labels ? -1 : a->n_labels > b->n_labels;
}

static int lint_cmp(const void *x, const void *y)
{
    const rules_rule *a = ((const struct lint_item *)x)->r, *b = ((const struct lint_item *)y)->r;
    int c = strcmp(a->name, b->name);
    return c ? c : labels_cmp(a, b);
}

char *rules_file_lint_duplicates(const rules_file *f)
{
    if (f->n_rules < 2)
        return NULL;
    struct lint_item *items = firn_xreallocarray(NULL, f->n_rules, sizeof *items);
    size_t n = 0;
    for (size_t g = 0; g < f->n_groups; g++)
        for (size_t i = 0; i < f->groups[g].n_rules; i++)
            items[n++].r = &f->groups[g].rules[i];
    firn_sort(items, n, sizeof *items, lint_cmp);
    firn_buf b = {0};
    size_t dups = 0;
    const rules_rule *last_dup = NULL;
    for (size_t i = 1; i < n; i++) {
        if (lint_cmp(&items[i - 1], &items[i]) != 0)
            continue;
        if (last_dup && lint_cmp(&(struct lint_item){last_dup}, &items[i]) == 0)
            continue;
        last_dup = items[i].r;
        dups++;
        firn_buf_printf(&b, "Metric: %s\nLabel(s):\n", items[i].r->name);
        for (size_t l = 0; l < items[i].r->n_labels; l++)
            firn_buf_printf(&b, "\t%s: %s\n", items[i].r->labels[l].name,
                            items[i].r->labels[l].value);
    }
    free(items);
    if (!dups) {
        firn_buf_free(&b);
        return NULL;
    }
    char *out = fmt_str("lint error %zu duplicate rule(s) found.\n%sMight cause inconsistency "
                        "while recording expressions", dups, b.len ? b.data : "");
    firn_buf_free(&b);
    return out;
}

char *rules_file_newer_fields(const rules_file *f)
{
    for (size_t g = 0; g < f->n_groups; g++)
        if (f->groups[g].has_query_offset)
            return fmt_str("group \"%s\": query_offset is refused by Prometheus before 2.53 "
                           "(\"field query_offset not found in type rulefmt.RuleGroup\")",
                           f->groups[g].name);
    return NULL;
}
