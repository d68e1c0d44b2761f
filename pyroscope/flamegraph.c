/* flamegraph.c -- merged profiles as Pyroscope's FlameGraph message.
 *
 * Pyroscope merges stacks by function name alone, root first, and encodes
 * the tree level by level ("flamebearer"): names[] with names[0] = "total"
 * (the root), and for each level 4 int64 per bar, left to right:
 * [x - end of the previous bar in the level, total, self, name index].  A
 * node's self part sits on its left, its children after it.  With more
 * nodes than max_nodes, the children whose total is below the max_nodes-th
 * largest total are summed into one "other" child, last among its
 * siblings.  A diff (FlameGraphDiff) is the union of both sides' trees, 7
 * int64 per bar: [left x, total, self, right x, total, self, name], each x
 * delta-encoded within its own side; a node keeps its bar when either side
 * reaches the max_nodes-th largest of max(left, right), as Pyroscope's
 * NewFlamegraphDiff.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyroscope/internal.h"

typedef struct tnode {
    uint32_t name;
    uint32_t first_child, last_child, next_sibling;   /* 0: none (0 is the root) */
    int64_t total[2], self[2];   /* per side: a diff's left and right */
} tnode;

struct pyroscope_tree {
    tnode *nodes;
    size_t n, cap;
    char **names;          /* interned, in the arena */
    size_t n_names, cap_names;
    firn_u64map names_by_hash;
    firn_u64map children;  /* parent << 32 | name -> node */
    firn_arena *arena;
    size_t max_n;          /* nodes (root included) it may hold; 0: no cap */
    bool over;             /* a node was refused for max_n */
};

#define ROOT_NAME 0
#define OTHER_NAME 1

static uint64_t fnv1a(const char *s, uint64_t salt)
{
    uint64_t h = 1469598103934665603ULL ^ salt;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The interned id of a name. */
static uint32_t intern(pyroscope_tree *t, const char *s)
{
    for (uint64_t salt = 0;; salt++) {
        uint64_t h = fnv1a(s, salt);
        uint32_t id;
        if (firn_u64map_get(&t->names_by_hash, h, &id) == 1) {
            if (strcmp(t->names[id], s) == 0)
                return id;
            continue;   /* a collision: probe with the next salt */
        }
        t->names = firn_grow(t->names, t->n_names, &t->cap_names, sizeof *t->names, 256);
        assert(t->n_names < UINT32_MAX);   /* a name per frame in memory: far fewer */
        id = (uint32_t)t->n_names;
        firn_u64map_put(&t->names_by_hash, h, id, NULL);
        t->names[t->n_names++] = firn_arena_strdup(t->arena, s);
        return id;
    }
}

static uint32_t child_of(pyroscope_tree *t, uint32_t parent, uint32_t name)
{
    uint64_t key = (uint64_t)parent << 32 | name;
    uint32_t id;
    if (firn_u64map_get(&t->children, key, &id) == 1)
        return id;
    if (t->max_n && t->n >= t->max_n) {
        t->over = true;
        return 0;
    }
    t->nodes = firn_grow(t->nodes, t->n, &t->cap, sizeof *t->nodes, 1024);
    assert(t->n < UINT32_MAX);   /* a node per frame in memory: far fewer */
    id = (uint32_t)t->n++;
    t->nodes[id] = (tnode){.name = name};
    firn_u64map_put(&t->children, key, id, NULL);
    tnode *p = &t->nodes[parent];
    if (p->last_child)
        t->nodes[p->last_child].next_sibling = id;
    else
        p->first_child = id;
    p->last_child = id;
    return id;
}

void pyroscope_tree_free(pyroscope_tree *t)
{
    if (!t)
        return;
    free(t->nodes);
    free(t->names);
    firn_u64map_destroy(&t->names_by_hash);
    firn_u64map_destroy(&t->children);
    firn_arena_free(t->arena);
    free(t);
}

/* The name of a frame: its function's, else its address. */
static const char *frame_name(const pprof_profile *p, const pprof_location *loc, size_t line,
                              char *buf, size_t size)
{
    if (line < loc->n_lines && loc->lines[line].function != PPROF_NONE) {
        const char *n = pprof_str(p, p->functions[loc->lines[line].function].name);
        if (*n)
            return n;
    }
    snprintf(buf, size, "0x%" PRIx64, loc->address);
    return buf;
}

/* Calls fn for each frame of sample s, root first, until it returns false. */
typedef bool (*frame_fn)(void *ctx, const char *name);
static void each_frame(const pprof_profile *p, const pprof_sample *s, frame_fn fn, void *ctx)
{
    char buf[32];
    for (size_t i = s->n_locations; i-- > 0;) {
        const pprof_location *loc = &p->locations[s->locations[i]];
        size_t lines = loc->n_lines ? loc->n_lines : 1;
        for (size_t l = lines; l-- > 0;)   /* lines[0] is the innermost */
            if (!fn(ctx, frame_name(p, loc, l, buf, sizeof buf)))
                return;
    }
}

struct prefix_check {
    char *const *want;
    size_t n, at;
    bool ok;
};

static bool prefix_frame(void *ctx, const char *name)
{
    struct prefix_check *c = ctx;
    if (c->at >= c->n)
        return false;
    if (strcmp(c->want[c->at], name) != 0) {
        c->ok = false;
        return false;
    }
    c->at++;
    return true;
}

void pyroscope_filter_call_site(pprof_profile *p, char *const *call_site, size_t n)
{
    if (!n)
        return;
    size_t o = 0;
    for (size_t i = 0; i < p->n_samples; i++) {
        struct prefix_check c = {.want = call_site, .n = n, .ok = true};
        each_frame(p, &p->samples[i], prefix_frame, &c);
        if (c.ok && c.at == n)
            p->samples[o++] = p->samples[i];
    }
    p->n_samples = o;
}

size_t pyroscope_call_site(pyroscope_call *c, const Types__V1__StackTraceSelector *sel,
                           char ***names)
{
    *names = NULL;
    if (!sel || !sel->n_call_site)
        return 0;
    char **v = firn_arena_calloc(c->arena, sel->n_call_site, sizeof *v);
    for (size_t i = 0; i < sel->n_call_site; i++)
        v[i] = sel->call_site[i] && sel->call_site[i]->name ? sel->call_site[i]->name : "";
    *names = v;
    return sel->n_call_site;
}

struct insert {
    pyroscope_tree *t;
    uint32_t at;
    int side;
    int64_t v;
};

static bool insert_frame(void *ctx, const char *name)
{
    struct insert *in = ctx;
    uint32_t child = child_of(in->t, in->at, intern(in->t, name));
    if (!child)   /* refused for max_n (t->over) */
        return false;
    in->at = child;
    int64_t *total = &in->t->nodes[child].total[in->side];
    *total = pprof_add_sat(*total, in->v);
    return true;
}

pyroscope_tree *pyroscope_tree_new(void)
{
    pyroscope_tree *t = firn_xcalloc(1, sizeof *t);
    t->arena = firn_arena_new(0);
    /* small tables that grow: zeroing big ones cost 3% of a
     * SelectMergeStacktraces on a tree of a few hundred nodes */
    firn_u64map_init(&t->names_by_hash, 256);
    firn_u64map_init(&t->children, 256);
    uint32_t root = intern(t, "total"), other = intern(t, "other");
    assert(root == ROOT_NAME && other == OTHER_NAME);
    (void)root, (void)other;
    t->nodes = firn_xcalloc(1, sizeof *t->nodes);
    t->cap = t->n = 1;   /* the root */
    return t;
}

int pyroscope_tree_add(pyroscope_tree *t, const pprof_profile *p, int side, firn_err *err)
{
    assert(side == 0 || side == 1);
    for (size_t i = 0; i < p->n_samples; i++) {
        const pprof_sample *s = &p->samples[i];
        int64_t v = p->n_sample_types ? s->values[0] : 0;
        if (v == 0)
            continue;
        struct insert in = {.t = t, .at = 0, .side = side, .v = v};
        t->nodes[0].total[side] = pprof_add_sat(t->nodes[0].total[side], v);
        each_frame(p, s, insert_frame, &in);
        if (t->over)
            return firn_errf(err, FIRN_ETOOBIG, "%s", PQL_TOO_MANY_SAMPLES);
        t->nodes[in.at].self[side] = pprof_add_sat(t->nodes[in.at].self[side], v);
    }
    return 0;
}

int pyroscope_tree_add_query(pyroscope_call *c, pyroscope_tree *t, const pprof_profile *p,
                             int side, firn_err *err)
{
    pyroscope_query_enter(c);
    size_t before = t->n;
    /* the nodes are the query's samples too: what its merges left */
    t->max_n = before + c->samples_left;
    t->over = false;
    int rc = pyroscope_tree_add(t, p, side, err);
    t->max_n = 0;
    if (rc == FIRN_ETOOBIG)
        c->query_rc = rc;
    else if (rc == 0)
        c->samples_left -= t->n - before;
    return rc;
}

pyroscope_tree *pyroscope_tree_build(pyroscope_call *c, const pprof_profile *p, firn_err *err)
{
    pyroscope_tree *t = pyroscope_tree_new();
    if (pyroscope_tree_add_query(c, t, p, 0, err) < 0) {
        pyroscope_tree_free(t);
        return NULL;
    }
    return t;
}

int pyroscope_max_nodes(bool given, int64_t v, int64_t *out, firn_err *err)
{
    if (!given || v == 0) {
        *out = PYROSCOPE_MAX_NODES_DEFAULT;
        return 0;
    }
    if (v < 0 || v > PYROSCOPE_MAX_NODES_MAX)
        return firn_errf(err, FIRN_EINVAL, "max_nodes %" PRId64 ": want 0 (the default, "
                         "%d) to %d", v, PYROSCOPE_MAX_NODES_DEFAULT, PYROSCOPE_MAX_NODES_MAX);
    *out = v;
    return 0;
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

/* A node's weight for max_nodes: its total, or in a diff the larger side's
 * (Pyroscope's combineMinValues). */
static int64_t weight(const tnode *n, int sides)
{
    return sides == 2 && n->total[1] > n->total[0] ? n->total[1] : n->total[0];
}

/* The smallest weight a node may have and keep its own bar. */
static int64_t min_value(const pyroscope_tree *t, int64_t max_nodes, int sides)
{
    if ((int64_t)t->n - 1 <= max_nodes)
        return 0;
    int64_t *v = firn_xreallocarray(NULL, t->n - 1, sizeof *v);
    for (size_t i = 1; i < t->n; i++)
        v[i - 1] = weight(&t->nodes[i], sides);
    firn_sort(v, t->n - 1, sizeof *v, cmp_desc);
    int64_t m = v[max_nodes - 1];
    free(v);
    return m;
}

typedef struct bar {
    uint32_t node;       /* UINT32_MAX: an "other" bar */
    uint32_t depth;
    int64_t x[2], total[2];
} bar;

typedef struct level {
    int64_t *v;          /* 4 (7 in a diff) per bar, x absolute until encoded */
    size_t n, cap;
} level;

static void level_push(level *l, const int64_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        l->v = firn_grow(l->v, l->n, &l->cap, sizeof *l->v, 64);
        l->v[l->n++] = v[i];
    }
}

/* The bars of a tree, level by level: names and levels in the call's
 * arena.  One side: [x, total, self, name]; two: [lx, ltotal, lself, rx,
 * rtotal, rself, name]; x delta-encoded per side within each level. */
typedef struct encoded {
    char **names;
    size_t n_names;
    Querier__V1__Level **levels;
    size_t n_levels;
    int64_t max_self;
} encoded;

static void encode_tree(pyroscope_call *c, const pyroscope_tree *t, int64_t max_nodes,
                        int sides, encoded *out)
{
    const size_t width = sides == 2 ? 7 : 4;
    int64_t min = min_value(t, max_nodes, sides);
    level *levels = NULL;
    size_t n_levels = 0, cap_levels = 0;
    /* sized by the tree, which is in memory already */
    int32_t *out_name = firn_xreallocarray(NULL, t->n_names, sizeof *out_name);
    bar *stack = firn_xreallocarray(NULL, 2 * t->n, sizeof *stack);
    size_t sp = 0, n_out = 0;
    char **names = firn_arena_calloc(c->arena, t->n_names, sizeof *names);
    int64_t max_self = 0;
    for (size_t i = 0; i < t->n_names; i++)
        out_name[i] = -1;
    stack[sp++] = (bar){.node = 0, .depth = 0,
                        .total = {t->nodes[0].total[0], t->nodes[0].total[1]}};
    while (sp) {
        bar b = stack[--sp];
        const tnode *nd = b.node == UINT32_MAX ? NULL : &t->nodes[b.node];
        uint32_t name = nd ? nd->name : OTHER_NAME;
        int64_t self[2] = {nd ? nd->self[0] : b.total[0], nd ? nd->self[1] : b.total[1]};
        if (out_name[name] < 0) {
            /* the answer outlives the tree: its names go to the call's arena */
            names[n_out] = firn_arena_strdup(c->arena, t->names[name]);
            out_name[name] = (int32_t)n_out++;
        }
        while (n_levels <= b.depth) {
            levels = firn_grow(levels, n_levels, &cap_levels, sizeof *levels, 16);
            levels[n_levels++] = (level){0};
        }
        int64_t v[7];
        size_t k = 0;
        for (int sd = 0; sd < sides; sd++) {
            v[k++] = b.x[sd];
            v[k++] = b.total[sd];
            v[k++] = self[sd];
            if (self[sd] > max_self)
                max_self = self[sd];
        }
        v[k++] = out_name[name];
        level_push(&levels[b.depth], v, k);
        if (!nd)
            continue;
        /* children left to right after the self part; pushed in reverse */
        size_t first = sp;
        int64_t x[2] = {b.x[0] + nd->self[0], b.x[1] + nd->self[1]}, other[2] = {0, 0};
        for (uint32_t ch = nd->first_child; ch; ch = t->nodes[ch].next_sibling) {
            const tnode *cn = &t->nodes[ch];
            if (weight(cn, sides) < min) {
                other[0] = pprof_add_sat(other[0], cn->total[0]);
                other[1] = pprof_add_sat(other[1], cn->total[1]);
                continue;
            }
            stack[sp++] = (bar){.node = ch, .depth = b.depth + 1, .x = {x[0], x[1]},
                                .total = {cn->total[0], cn->total[1]}};
            x[0] += cn->total[0];
            x[1] += cn->total[1];
        }
        if (other[0] || other[1])
            stack[sp++] = (bar){.node = UINT32_MAX, .depth = b.depth + 1, .x = {x[0], x[1]},
                                .total = {other[0], other[1]}};
        for (size_t i = first, e = sp; e > i + 1; i++) {
            e--;
            bar tmp = stack[i];
            stack[i] = stack[e];
            stack[e] = tmp;
        }
    }
    Querier__V1__Level **lv = firn_arena_calloc(c->arena, n_levels + 1, sizeof *lv);
    for (size_t d = 0; d < n_levels; d++) {
        level *l = &levels[d];
        for (int sd = 0; sd < sides; sd++) {
            int64_t prev_end = 0;
            for (size_t i = (size_t)sd * 3; i < l->n; i += width) {
                int64_t xa = l->v[i];
                l->v[i] = xa - prev_end;
                prev_end = xa + l->v[i + 1];
            }
        }
        lv[d] = pyroscope_new(c, &querier__v1__level__descriptor);
        int64_t *vals = firn_arena_calloc(c->arena, l->n ? l->n : 1, sizeof *vals);
        memcpy(vals, l->v, l->n * sizeof *vals);
        lv[d]->values = vals;
        lv[d]->n_values = l->n;
    }
    for (size_t d = 0; d < n_levels; d++)
        free(levels[d].v);
    free(levels);
    free(stack);
    free(out_name);
    *out = (encoded){.names = names, .n_names = n_out, .levels = lv, .n_levels = n_levels,
                     .max_self = max_self};
}

Querier__V1__FlameGraph *pyroscope_flamegraph(pyroscope_call *c, const pyroscope_tree *t,
                                              int64_t max_nodes)
{
    if (t->nodes[0].total[0] == 0)
        return NULL;
    encoded e;
    Querier__V1__FlameGraph *fg = pyroscope_new(c, &querier__v1__flame_graph__descriptor);
    encode_tree(c, t, max_nodes, 1, &e);
    fg->names = e.names;
    fg->n_names = e.n_names;
    fg->levels = e.levels;
    fg->n_levels = e.n_levels;
    fg->total = t->nodes[0].total[0];
    fg->max_self = e.max_self;
    return fg;
}

Querier__V1__FlameGraphDiff *pyroscope_flamegraph_diff(pyroscope_call *c,
                                                       const pyroscope_tree *t,
                                                       int64_t max_nodes)
{
    encoded e;
    Querier__V1__FlameGraphDiff *fg = pyroscope_new(c, &querier__v1__flame_graph_diff__descriptor);
    encode_tree(c, t, max_nodes, 2, &e);
    fg->names = e.names;
    fg->n_names = e.n_names;
    fg->levels = e.levels;
    fg->n_levels = e.n_levels;
    fg->leftticks = t->nodes[0].total[0];
    fg->rightticks = t->nodes[0].total[1];
    fg->total = pprof_add_sat(fg->leftticks, fg->rightticks);
    fg->max_self = e.max_self;
    return fg;
}

pprof_profile *pyroscope_merge(pyroscope_call *c, tsdb_reader *r, const pyroscope_selection *s,
                               int64_t start_ms, int64_t end_ms, firn_err *err)
{
    if (!s->n)
        return NULL;
    uint64_t *ids = firn_arena_calloc(c->arena, s->n, sizeof *ids);
    for (size_t i = 0; i < s->n; i++)
        ids[i] = s->v[i].series->id;
    /* the query's samples are shared by its merges (a diff's two sides);
     * tsdb takes 0 for no cap, so with nothing left it is held to 1 */
    pyroscope_query_enter(c);
    tsdb_merge_options o = {.max_samples = c->samples_left ? c->samples_left : 1};
    tsdb_merge_stats st = {0};
    pprof_profile *p = tsdb_merge(r, ids, s->n, start_ms, end_ms, &o, &st, err);
    if (p && st.samples > c->samples_left) {
        pprof_free(p);
        p = NULL;
        firn_errf(err, FIRN_ETOOBIG, "%s", PQL_TOO_MANY_SAMPLES);
    }
    if (!p && err && err->code == FIRN_ETOOBIG)
        c->query_rc = FIRN_ETOOBIG;
    if (p)
        c->samples_left -= (size_t)st.samples;
    return p;
}
