/* yaml_tree.c -- libyaml events to a tree of positioned nodes (config.h, part 5).
 *
 * Built with an explicit stack of open collections, never recursion, so a
 * hostile nesting depth costs nothing before the depth cap refuses it.
 */

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config/config.h"

#define FIRN_STR_(x) #x
#define FIRN_STR(x) FIRN_STR_(x)

typedef struct frame {
    config_ynode *node;
    char *anchor;     /* malloc'd, or NULL */
    config_ynode **kids;     /* malloc'd until the collection ends */
    size_t n, cap;
    size_t weight;
} frame;

typedef struct anchor {
    char *name;       /* malloc'd */
    config_ynode *node;
} anchor;

typedef struct builder {
    firn_arena *arena;
    frame stack[CONFIG_MAX_DEPTH];
    size_t depth;
    anchor *anchors;
    size_t n_anchors, cap_anchors;
    config_ynode *root;
    bool have_root;
    int line, col;
    firn_err *err;
} builder;

bool config_ynode_is_null(const config_ynode *n)
{
    if (!n)
        return true;
    if (n->kind != CONFIG_YNODE_SCALAR || !n->plain)
        return false;
    return n->len == 0 || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0 ||
           strcmp(n->value, "Null") == 0 || strcmp(n->value, "NULL") == 0;
}

static int fail_at(builder *b, yaml_mark_t mark, int code, const char *msg)
{
    b->line = (int)mark.line + 1;
    b->col = (int)mark.column + 1;
    return firn_errf(b->err, code, "%d:%d: %s", b->line, b->col, msg);
}

static size_t add_sat(size_t a, size_t b)
{
    size_t s;
    return __builtin_add_overflow(a, b, &s) ? SIZE_MAX : s;
}

static void remember_anchor(builder *b, const yaml_char_t *name, config_ynode *node)
{
    if (!name)
        return;
    b->anchors = firn_grow(b->anchors, b->n_anchors, &b->cap_anchors, sizeof *b->anchors, 16);
    b->anchors[b->n_anchors].name = firn_xstrdup((const char *)name);
    b->anchors[b->n_anchors].node = node;
    b->n_anchors++;
}

static int too_large(builder *b, yaml_mark_t mark)
{
    char msg[96];
    snprintf(msg, sizeof msg, "document too large: more than %d nodes with aliases expanded",
             CONFIG_MAX_NODES);
    return fail_at(b, mark, FIRN_ETOOBIG, msg);
}

/* Attach a complete node to the open collection, or make it the root. */
static int attach(builder *b, config_ynode *node, yaml_mark_t mark)
{
    if (node->weight > CONFIG_MAX_NODES)
        return too_large(b, mark);
    if (b->depth == 0) {
        b->root = node;
        b->have_root = true;
        return 0;
    }
    frame *f = &b->stack[b->depth - 1];
    f->kids = firn_grow(f->kids, f->n, &f->cap, sizeof *f->kids, 8);
    f->kids[f->n++] = node;
    f->weight = add_sat(f->weight, node->weight);
    if (f->weight > CONFIG_MAX_NODES)
        return too_large(b, mark);
    return 0;
}

static config_ynode *new_node(builder *b, config_ynode_kind kind, yaml_mark_t mark)
{
    config_ynode *n = firn_arena_calloc(b->arena, 1, sizeof *n);
    n->kind = kind;
    n->line = (int)mark.line + 1;
    n->col = (int)mark.column + 1;
    n->weight = 1;
    return n;
}

static int on_scalar(builder *b, const yaml_event_t *ev)
{
    config_ynode *n = new_node(b, CONFIG_YNODE_SCALAR, ev->start_mark);
    n->value = firn_arena_strndup(b->arena, (const char *)ev->data.scalar.value,
                                  ev->data.scalar.length);
    n->len = ev->data.scalar.length;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    remember_anchor(b, ev->data.scalar.anchor, n);
    return attach(b, n, ev->start_mark);
}

static int on_start(builder *b, const yaml_event_t *ev, config_ynode_kind kind, const yaml_char_t *anchor_name)
{
    if (b->depth == CONFIG_MAX_DEPTH)
        return fail_at(b, ev->start_mark, FIRN_ETOOBIG, "nesting deeper than the cap of " FIRN_STR(CONFIG_MAX_DEPTH) " levels");
    config_ynode *n = new_node(b, kind, ev->start_mark);
    frame *f = &b->stack[b->depth];
    memset(f, 0, sizeof *f);
    f->node = n;
    f->weight = 1;
    if (anchor_name)
        f->anchor = firn_xstrdup((const char *)anchor_name);
    b->depth++;
    return 0;
}

static int on_end(builder *b, const yaml_event_t *ev)
{
    frame *f = &b->stack[b->depth - 1];
    config_ynode *n = f->node;
    if (f->n) {
        n->items = firn_arena_calloc(b->arena, f->n, sizeof *n->items);
        assert(n->items);   /* f->n kids are in memory: no overflow */
        memcpy(n->items, f->kids, f->n * sizeof *n->items);
    }
    n->n = n->kind == CONFIG_YNODE_MAP ? f->n / 2 : f->n;
    n->weight = f->weight;
    free(f->kids);
    char *anchor_name = f->anchor;
    f->kids = NULL;
    f->anchor = NULL;
    b->depth--;
    remember_anchor(b, (const yaml_char_t *)anchor_name, n);
    free(anchor_name);
    return attach(b, n, ev->start_mark);
}

static int on_alias(builder *b, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    for (size_t i = b->n_anchors; i-- > 0;)
        if (strcmp(b->anchors[i].name, name) == 0)
            return attach(b, b->anchors[i].node, ev->start_mark);
    return fail_at(b, ev->start_mark, FIRN_EINVAL, "unknown anchor referenced by alias");
}

static int syntax_error(builder *b, const yaml_parser_t *p)
{
    char msg[400];
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->context)
        snprintf(msg, sizeof msg, "yaml: %s %s at line %zu column %zu", problem, p->context,
                 p->context_mark.line + 1, p->context_mark.column + 1);
    else
        snprintf(msg, sizeof msg, "yaml: %s", problem);
    if (p->error == YAML_MEMORY_ERROR)
        firn_oom(0);   /* libyaml's own allocation failed */
    return fail_at(b, p->problem_mark, FIRN_EINVAL, msg);
}

int config_ytree_parse(const char *text, size_t len, firn_arena *arena, config_ynode **root,
                int *line, int *col, firn_err *err)
{
    builder b = {.arena = arena, .err = err};
    yaml_parser_t parser;
    *root = NULL;
    *line = *col = 0;
    if (!yaml_parser_initialize(&parser))   /* fails only for want of memory */
        firn_oom(sizeof parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

    int rc = 0, documents = 0;
    bool done = false;
    while (!done && rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = syntax_error(&b, &parser);
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++documents > 1)
                rc = fail_at(&b, ev.start_mark, FIRN_EINVAL,
                             "a config file holds one YAML document, found a second one");
            break;
        case YAML_SCALAR_EVENT:
            rc = on_scalar(&b, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            rc = on_start(&b, &ev, CONFIG_YNODE_SEQ, ev.data.sequence_start.anchor);
            break;
        case YAML_MAPPING_START_EVENT:
            rc = on_start(&b, &ev, CONFIG_YNODE_MAP, ev.data.mapping_start.anchor);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            rc = on_end(&b, &ev);
            break;
        case YAML_ALIAS_EVENT:
            rc = on_alias(&b, &ev);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    for (size_t i = 0; i < b.depth; i++) {
        free(b.stack[i].kids);
        free(b.stack[i].anchor);
    }
    for (size_t i = 0; i < b.n_anchors; i++)
        free(b.anchors[i].name);
    free(b.anchors);
    if (rc < 0) {
        *line = b.line;
        *col = b.col;
        return rc;
    }
    *root = b.root;
    return 0;
}
