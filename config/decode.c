/* decode.c -- the decoder the YAML file loaders share (config.h, part 5): error
 * collection in document order, strict mappings, scalars and string lists.
 */
#include "config/config.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ---------------------------------------------------------------- */

static void add_line(config_dec *d, int line_no, int col, char *line)
{
    if (d->n_lines == CONFIG_MAX_ERRORS) {
        d->dropped++;
        free(line);
        return;
    }
    d->errs = firn_grow(d->errs, d->n_lines, &d->cap_lines, sizeof *d->errs, 8);
    d->errs[d->n_lines] = (config_dec_error){line_no, col, d->n_lines, line};
    d->n_lines++;
}

static int cmp_error(const void *a, const void *b)
{
    const config_dec_error *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void config_dec_err(config_dec *d, const config_ynode *at, const char *field, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *line;
    if (at)
        line = field ? firn_xasprintf("%s:%d:%d: %s: %s", d->name, at->line, at->col, field, msg)
                     : firn_xasprintf("%s:%d:%d: %s", d->name, at->line, at->col, msg);
    else
        line = field ? firn_xasprintf("%s: %s: %s", d->name, field, msg)
                     : firn_xasprintf("%s: %s", d->name, msg);
    add_line(d, at ? at->line : 0, at ? at->col : 0, line);
}

/* ---- memory ---------------------------------------------------------------- */

char *config_dec_strdup(config_dec *d, const char *s)
{
    return firn_arena_strdup(d->arena, s);
}

void *config_dec_calloc(config_dec *d, size_t n, size_t size)
{
    if (n == 0)
        return NULL;
    void *p = firn_arena_calloc(d->arena, n, size);
    assert(p);   /* n counts nodes of a document within CONFIG_MAX_NODES */
    return p;
}

/* ---- nodes ------------------------------------------------------------------ */

const char *config_dec_kind(const config_ynode *n)
{
    if (config_ynode_is_null(n))
        return "null";
    switch (n->kind) {
    case CONFIG_YNODE_MAP:
        return "a mapping";
    case CONFIG_YNODE_SEQ:
        return "a list";
    default:
        return "a scalar";
    }
}

/* config_dec_fields and config_dec_fields_lax: strict reports keys not in names. */
static bool fields(config_dec *d, const config_ynode *n, const char *field, const char *what,
                   const char *const *names, size_t count, const config_ynode **vals,
                   const config_ynode **keys, bool strict)
{
    const config_ynode *own_keys[32];
    if (!keys) {
        assert(count <= sizeof own_keys / sizeof *own_keys);
        keys = own_keys;
    }
    for (size_t i = 0; i < count; i++)
        vals[i] = keys[i] = NULL;
    if (config_ynode_is_null(n))
        return true;
    if (n->kind != CONFIG_YNODE_MAP) {
        config_dec_err(d, n, field, "expected a mapping, got %s", config_dec_kind(n));
        return false;
    }
    for (size_t p = 0; p < n->n; p++) {
        const config_ynode *k = n->items[2 * p], *v = n->items[2 * p + 1];
        if (k->kind != CONFIG_YNODE_SCALAR) {
            if (strict)
                config_dec_err(d, k, field, "mapping keys must be scalars, got %s", config_dec_kind(k));
            continue;
        }
        size_t i = 0;
        while (i < count && strcmp(names[i], k->value) != 0)
            i++;
        if (i == count || k->len != strlen(k->value)) {
            if (strict)
                config_dec_err(d, k, k->value, "unknown field in %s", what);
            continue;
        }
        if (vals[i]) {
            config_dec_err(d, k, k->value, "duplicate field in %s (first set at %d:%d)", what,
                    keys[i]->line, keys[i]->col);
            continue;
        }
        vals[i] = v;
        keys[i] = k;
    }
    return true;
}

bool config_dec_fields(config_dec *d, const config_ynode *n, const char *field, const char *what,
                const char *const *names, size_t count, const config_ynode **vals, const config_ynode **keys)
{
    return fields(d, n, field, what, names, count, vals, keys, true);
}

bool config_dec_fields_lax(config_dec *d, const config_ynode *n, const char *field, const char *what,
                    const char *const *names, size_t count, const config_ynode **vals,
                    const config_ynode **keys)
{
    return fields(d, n, field, what, names, count, vals, keys, false);
}

const config_ynode *config_dec_seq(config_dec *d, const config_ynode *v, const char *field)
{
    if (!v || config_ynode_is_null(v))
        return NULL;
    if (v->kind != CONFIG_YNODE_SEQ) {
        config_dec_err(d, v, field, "expected a list, got %s", config_dec_kind(v));
        return NULL;
    }
    return v;
}

const config_ynode *config_dec_later(const config_ynode *a, const config_ynode *b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    return (b->line > a->line || (b->line == a->line && b->col > a->col)) ? b : a;
}

bool config_dec_str(config_dec *d, const config_ynode *v, const char *field, char **out)
{
    if (!v || config_ynode_is_null(v))
        return true;
    if (v->kind != CONFIG_YNODE_SCALAR) {
        config_dec_err(d, v, field, "expected a string, got %s", config_dec_kind(v));
        return false;
    }
    if (strlen(v->value) != v->len) {
        config_dec_err(d, v, field, "string contains a NUL byte");
        return false;
    }
    if (!firn_utf8_valid(v->value, v->len)) {
        config_dec_err(d, v, field, "string is not valid UTF-8");
        return false;
    }
    *out = v->value;   /* the tree lives in the decoder's arena */
    return true;
}

/* YAML 1.1 booleans, as go-yaml v2 reads them (plain scalars only). */
bool config_dec_bool(config_dec *d, const config_ynode *v, const char *field, bool *out)
{
    if (!v || config_ynode_is_null(v))
        return true;
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On",
                                      "ON", "y", "Y"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off",
                                     "OFF", "n", "N"};
    if (v->kind == CONFIG_YNODE_SCALAR && v->plain) {
        for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
            if (strcmp(v->value, yes[i]) == 0) {
                *out = true;
                return true;
            }
            if (strcmp(v->value, no[i]) == 0) {
                *out = false;
                return true;
            }
        }
    }
    if (v->kind == CONFIG_YNODE_SCALAR)
        config_dec_err(d, v, field, "expected a boolean, got \"%.64s\"", v->value);
    else
        config_dec_err(d, v, field, "expected a boolean, got %s", config_dec_kind(v));
    return false;
}

/* A list of strings; null is an empty list. */
bool config_dec_str_list(config_dec *d, const config_ynode *v, const char *field, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!v || config_ynode_is_null(v))
        return true;
    if (v->kind != CONFIG_YNODE_SEQ) {
        config_dec_err(d, v, field, "expected a list of strings, got %s", config_dec_kind(v));
        return false;
    }
    char **list = config_dec_calloc(d, v->n, sizeof *list);
    if (v->n && !list)
        return false;
    bool ok = true;
    size_t k = 0;
    for (size_t i = 0; i < v->n; i++) {
        char *s = NULL;
        if (!config_dec_str(d, v->items[i], field, &s)) {
            ok = false;
            continue;
        }
        if (!s) {
            config_dec_err(d, v->items[i], field, "null entry in a list of strings");
            ok = false;
            continue;
        }
        list[k++] = s;
    }
    *out = list;
    *n = k;
    return ok;
}

/* ---- loading ---------------------------------------------------------------- */

/* err->msg: as many whole lines as fit, then "(and N more)". */
static void summarize(char *const *lines, size_t n, size_t total, firn_err *err)
{
    if (!err)
        return;
    char buf[FIRN_ERR_MSG_MAX];
    size_t used = 0, shown = 0;
    const size_t reserve = 32;   /* room for the "(and N more)" tail */
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(lines[i]);
        if (shown > 0 && used + 1 + len + reserve >= sizeof buf)
            break;
        snprintf(buf + used, sizeof buf - used, "%s%s", shown ? "\n" : "", lines[i]);
        used = strlen(buf);
        shown++;
        if (used + reserve >= sizeof buf)
            break;
    }
    if (shown < total) {
        if (used + reserve >= sizeof buf)
            used = sizeof buf - reserve;
        snprintf(buf + used, sizeof buf - used, "\n(and %zu more)", total - shown);
    }
    firn_errf(err, FIRN_EINVAL, "%s", buf);
}

bool config_dec_parse(config_dec *d, const char *text, size_t len, config_ynode **root)
{
    *root = NULL;
    if (len > CONFIG_MAX_BYTES) {
        config_dec_err(d, NULL, NULL, "larger than the cap of %u bytes", CONFIG_MAX_BYTES);
        return false;
    }
    int line, col;
    firn_err perr = {0};
    if (config_ytree_parse(text, len, d->arena, root, &line, &col, &perr) < 0) {
        add_line(d, line, col, firn_xasprintf("%s:%s", d->name, perr.msg));
        return false;
    }
    return true;
}

void *config_dec_begin(config_errors *errs, const char **name, const char *default_name, size_t size,
                firn_arena **arena)
{
    if (errs) {
        errs->lines = NULL;
        errs->n = 0;
    }
    if (!*name)
        *name = default_name;
    *arena = firn_arena_new(0);
    return firn_xcalloc(1, size);
}

int config_dec_finish(config_dec *d, config_errors *errs, firn_err *err)
{
    if (errs) {
        errs->lines = NULL;
        errs->n = 0;
    }
    if (d->n_lines == 0) {
        free(d->errs);
        d->errs = NULL;
        return 0;
    }

    /* The lines in document order, plus a note when some were cut. */
    firn_sort(d->errs, d->n_lines, sizeof *d->errs, cmp_error);
    char **lines = firn_xreallocarray(NULL, d->n_lines + 1, sizeof *lines);
    size_t n = 0;
    for (size_t i = 0; i < d->n_lines; i++)
        lines[n++] = d->errs[i].text;
    free(d->errs);
    d->errs = NULL;
    if (d->dropped)
        lines[n++] = firn_xasprintf("%s: too many errors, %zu more not shown", d->name,
                                    d->dropped);
    summarize(lines, n, d->n_lines + d->dropped, err);
    if (errs) {
        errs->lines = lines;
        errs->n = n;
    } else {
        for (size_t i = 0; i < n; i++)
            free(lines[i]);
        free(lines);
    }
    return -1;
}

int config_dec_read_file(const char *path, unsigned char **buf, size_t *len, config_errors *errs,
                  firn_err *err)
{
    if (errs) {
        errs->lines = NULL;
        errs->n = 0;
    }
    firn_err rerr = {0};
    if (firn_read_file(path, CONFIG_MAX_BYTES, buf, len, &rerr) < 0) {
        firn_errf(err, rerr.code, "%s", rerr.msg);
        if (errs) {
            errs->lines = firn_xmalloc(sizeof *errs->lines);
            errs->lines[0] = firn_xstrdup(rerr.msg);
            errs->n = 1;
        }
        return -1;
    }
    return 0;
}
