/* profile.c -- profile queries: what a flame graph shows.
 *
 * A request's selector picks series of one profile type; their profiles in
 * a time range (or at one timestamp) are merged by the store, then the
 * stack filters drop samples (every __function__ matcher of the selector
 * and the request's function regex must hold), and the result is either
 * returned as pprof or turned into a stack tree: root-first paths of
 * function frames, one node per function per path, with self/cum values of
 * one side or of both sides of a diff.  A selector's offset shifts its
 * range back, as in PromQL.  A frame's name for the stack filters is its
 * function's name ("" when unsymbolized), as tsdb_stack_functions gives it,
 * so metric expressions and profile queries filter alike; in the tree an
 * unsymbolized frame is named by its binary and address.
 *
 * Invariants of the tree while it is built (struct build):
 *  - node 0 is the root; every other node has a parent with a smaller
 *    index, and (parent, key) is unique: frames of the same function (same
 *    name and file) under the same parent are one node;
 *  - a node's self is the sum of the values of the samples whose path ends
 *    there, and once every sample is in (sum_cums) its cum the sum of those
 *    whose path goes through it; so the root's cum is the side's total;
 *  - node and function-info keys are interned byte strings, so equality of
 *    names is equality of ids.
 * The finished tree lives in one arena (pql_tree.arena); everything else
 * is freed before returning, on success and on every error.  The function
 * table holds the functions the finished nodes name.
 *
 * Threads: a query runs on the caller's thread with the caller's reader.
 */
#include "pql.h"
#include "internal.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define PROFILE_TYPES_SHOWN 5   /* profile types named in a "several types" error */
#define SELECTOR_EXAMPLE "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta{job=\"api\"}"
#define NODE_NONE UINT32_MAX

/* ---- one side: select, merge, filter ---------------------------------------- */

struct side_spec {
    const char *what;            /* "query" or "compare query", for messages */
    const char *query;
    pql_profile_mode mode;
    int64_t start_ms, end_ms, time_ms;
};

struct side {
    pprof_profile *p;            /* merged and filtered; NULL when no series matched */
    char *type_name;             /* malloc'd __name__ of the series (or the selector's); NULL if unknown */
};

static void side_free(struct side *s)
{
    pprof_free(s->p);
    free(s->type_name);
    s->p = NULL;
    s->type_name = NULL;
}

/* t - offset without overflow; the unbounded ends stay unbounded. */
static int64_t shift_time(int64_t t, int64_t offset)
{
    if (t == INT64_MIN || t == INT64_MAX || offset == 0)
        return t;
    int64_t r;
    if (__builtin_sub_overflow(t, offset, &r))
        return offset > 0 ? INT64_MIN : INT64_MAX;
    return r;
}

/* The profile type a selector names with __name__="...", or NULL. */
static const char *selector_type(const pql_expr *sel)
{
    for (size_t i = 0; i < sel->sel.n_matchers; i++) {
        const firn_matcher *m = &sel->sel.matchers[i];
        if (m->type == FIRN_MATCH_EQ && strcmp(m->name, FIRN_LABEL_NAME) == 0)
            return m->value;
    }
    return NULL;
}

bool pql_filter_hit(const firn_matcher *m, const char *name)
{
    if (m->type == FIRN_MATCH_EQ || m->type == FIRN_MATCH_NE)
        return strcmp(name, m->value) == 0;
    return firn_regex_match(m->re, name, strlen(name), NULL) == 1;
}

bool pql_filter_positive(const firn_matcher *m)
{
    return m->type == FIRN_MATCH_EQ || m->type == FIRN_MATCH_RE;
}

/* Whether one filter (matcher index f, or the request regex when f == nm)
 * holds for a function name. */
static int name_hits(const firn_matcher *ms, size_t nm, const firn_regex *re, size_t f,
                     const char *name, firn_err *err)
{
    if (f < nm)
        return pql_filter_hit(&ms[f], name);
    int rc = firn_regex_match(re, name, strlen(name), err);
    if (rc < 0)
        firn_err_prefix(err, "filter");
    return rc;
}

/* Drops the samples whose stack fails a filter. */
static int apply_filters(pprof_profile *p, const firn_matcher *ms, size_t nm,
                         const firn_regex *re, firn_err *err)
{
    size_t nf = nm + (re ? 1 : 0);
    if (nf == 0 || p->n_samples == 0)
        return 0;
    size_t nfn = p->n_functions, nloc = p->n_locations;
    /* per filter: [0, nfn) functions, nfn "" (no function), then locations */
    size_t stride = nfn + 1 + nloc;
    /* the profile's tables are in memory: an internal size */
    unsigned char *hit = firn_xcalloc(nf, stride);
    int rc = 0;
    for (size_t f = 0; f < nf && rc == 0; f++) {
        unsigned char *h = hit + f * stride;
        for (size_t i = 0; i <= nfn && rc == 0; i++) {
            const char *name = i < nfn ? pprof_str(p, p->functions[i].name) : "";
            int r = name_hits(ms, nm, re, f, name, err);
            if (r < 0)
                rc = r;
            else
                h[i] = (unsigned char)r;
        }
        for (size_t l = 0; l < nloc && rc == 0; l++) {
            const pprof_location *loc = &p->locations[l];
            unsigned char any = loc->n_lines == 0 ? h[nfn] : 0;
            for (size_t j = 0; j < loc->n_lines && !any; j++) {
                uint32_t fn = loc->lines[j].function;
                any = fn < nfn ? h[fn] : h[nfn];
            }
            h[nfn + 1 + l] = any;
        }
    }
    if (rc) {
        free(hit);
        return rc;
    }
    size_t kept = 0;
    for (size_t s = 0; s < p->n_samples; s++) {
        const pprof_sample *smp = &p->samples[s];
        bool keep = true;
        for (size_t f = 0; f < nf && keep; f++) {
            const unsigned char *lh = hit + f * stride + nfn + 1;
            bool has = false;
            for (size_t k = 0; k < smp->n_locations && !has; k++)
                has = smp->locations[k] < nloc && lh[smp->locations[k]];
            bool positive = f < nm ? pql_filter_positive(&ms[f]) : true;
            keep = positive ? has : !has;
        }
        if (keep)
            p->samples[kept++] = *smp;
    }
    p->n_samples = kept;
    free(hit);
    return 0;
}

/* Checks that every series has the same __name__; fills *type with it. */
static int one_type(const tsdb_series_set *set, const char **type, firn_err *err)
{
    const char *shown[PROFILE_TYPES_SHOWN];
    size_t n_shown = 0, n_types = 0;
    *type = NULL;
    for (size_t i = 0; i < set->n; i++) {
        const tsdb_series *s = &set->series[i];
        const char *name = firn_labels_get(s->labels, s->n_labels, FIRN_LABEL_NAME);
        if (!name)
            name = "";
        bool seen = false;
        for (size_t k = 0; k < n_shown && !seen; k++)
            seen = strcmp(shown[k], name) == 0;
        if (seen)
            continue;
        /* a type not among the first few shown: count it if new */
        if (n_shown == PROFILE_TYPES_SHOWN) {
            bool earlier = false;
            for (size_t j = 0; j < i && !earlier; j++) {
                const tsdb_series *e = &set->series[j];
                const char *en = firn_labels_get(e->labels, e->n_labels, FIRN_LABEL_NAME);
                earlier = strcmp(en ? en : "", name) == 0;
            }
            if (!earlier)
                n_types++;
            continue;
        }
        shown[n_shown++] = name;
        n_types++;
    }
    if (n_types <= 1) {
        *type = n_shown ? shown[0] : NULL;
        return 0;
    }
    char list[1024];
    size_t len = 0;
    list[0] = 0;
    for (size_t k = 0; k < n_shown && len < sizeof list; k++) {
        int w = snprintf(list + len, sizeof list - len, "%s%s", k ? ", " : "", shown[k]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    return firn_errf(err, FIRN_EINVAL,
                     "the selector matches %zu profile types (%s%s); add __name__ to select one",
                     n_types, list, n_types > n_shown ? ", ..." : "");
}

/* The request's cap on samples (pql.h: stack values read and tree nodes). */
static size_t samples_cap(const pql_profile_request *req)
{
    return req->max_samples ? req->max_samples : PQL_MAX_SAMPLES_DEFAULT;
}

/* Parses, selects, merges and filters one side of a request, its merge
 * held to *left samples (what the query has not used yet), which it then
 * takes from *left. */
static int side_eval(tsdb_reader *r, const pql_profile_request *req, const struct side_spec *sp,
                     const firn_regex *re, struct side *out, size_t *left, firn_err *err)
{
    out->p = NULL;
    out->type_name = NULL;
    if (!sp->query)
        return firn_errf(err, FIRN_EINVAL, "%s: none given; a profile query is a selector, "
                         "such as %s", sp->what, SELECTOR_EXAMPLE);
    int64_t start, end;
    if (sp->mode == PQL_PROFILE_MERGE) {
        if (sp->start_ms > sp->end_ms)
            return firn_errf(err, FIRN_EINVAL, "start %" PRId64 " is after end %" PRId64,
                         sp->start_ms, sp->end_ms);
        start = sp->start_ms;
        end = sp->end_ms;
    } else if (sp->mode == PQL_PROFILE_SINGLE) {
        start = end = sp->time_ms;
    } else {
        return firn_errf(err, FIRN_EINVAL, "unknown profile query mode %d", (int)sp->mode);
    }

    pql_query q = {0};
    int rc = pql_parse(sp->query, &q, err);
    if (rc < 0)
        return rc;
    tsdb_series_set set = {0};
    uint64_t *ids = NULL;
    const pql_expr *sel = q.root;
    if (!sel || sel->kind != PQL_VECTOR_SELECTOR) {
        rc = firn_errf(err, FIRN_EINVAL, "a profile query is a selector, such as %s",
                       SELECTOR_EXAMPLE);
        goto out;
    }
    start = shift_time(start, sel->sel.offset_ms);
    end = shift_time(end, sel->sel.offset_ms);
    if ((rc = tsdb_select(r, sel->sel.matchers, sel->sel.n_matchers, start, end, &set, err)) < 0)
        goto out;
    /* float series (recorded by rules) have no stacks: a profile query skips them */
    size_t kept = 0;
    for (size_t i = 0; i < set.n; i++)
        if (!set.series[i].floats)
            set.series[kept++] = set.series[i];
    set.n = kept;
    const char *type;
    if ((rc = one_type(&set, &type, err)) < 0)
        goto out;
    if (!type)
        type = selector_type(sel);
    if (type)
        out->type_name = firn_xstrdup(type);
    if (set.n == 0)
        goto out;   /* nothing matches: no profile, not an error */
    ids = firn_xreallocarray(NULL, set.n, sizeof *ids);
    for (size_t i = 0; i < set.n; i++)
        ids[i] = set.series[i].id;
    tsdb_merge_options mo = {
        .keep_labels = req->n_group_by > 0,
        /* tsdb takes 0 for no cap: with nothing left, a second side is
         * held to 1 and refused below for any sample */
        .max_samples = *left ? *left : 1,
        .raw = req->raw,
    };
    tsdb_merge_stats ms = {0};
    if (!(out->p = tsdb_merge(r, ids, set.n, start, end, &mo, &ms, err))) {
        rc = err && err->code ? err->code : FIRN_EIO;
        goto out;
    }
    if (ms.samples > *left) {
        rc = firn_errf(err, FIRN_ETOOBIG, "%s", PQL_TOO_MANY_SAMPLES);
        goto out;
    }
    *left -= (size_t)ms.samples;
    if (out->p->n_sample_types != 1) {
        rc = firn_errf(err, FIRN_EIO, "the merged profile has %zu sample types, want 1",
                       out->p->n_sample_types);
        goto out;
    }
    rc = apply_filters(out->p, sel->sel.filters, sel->sel.n_filters, re, err);
out:
    free(ids);
    tsdb_series_set_free(&set);
    pql_query_free(&q);
    if (rc < 0)
        side_free(out);
    return rc;
}

static int check_request(const pql_profile_request *req, firn_err *err)
{
    if (!req)
        return firn_errf(err, FIRN_EINVAL, "no profile request");
    if (req->n_group_by > FIRN_LABELS_MAX)
        return firn_errf(err, FIRN_EINVAL, "group_by: %zu labels, at most %d",
                         req->n_group_by, FIRN_LABELS_MAX);
    for (size_t i = 0; i < req->n_group_by; i++)
        if (!req->group_by || !req->group_by[i] || !*req->group_by[i])
            return firn_errf(err, FIRN_EINVAL, "group_by: label %zu is empty", i + 1);
    return 0;
}

static void base_spec(const pql_profile_request *req, struct side_spec *sp)
{
    *sp = (struct side_spec){"query", req->query, req->mode, req->start_ms, req->end_ms,
                             req->time_ms};
}

static void compare_spec(const pql_profile_request *req, struct side_spec *sp)
{
    *sp = (struct side_spec){"compare query", req->compare_query, req->compare_mode,
                             req->compare_start_ms, req->compare_end_ms, req->compare_time_ms};
}

/* The request regex, or NULL with *re NULL when there is none. */
static int compile_filter(const pql_profile_request *req, firn_regex **re, firn_err *err)
{
    *re = NULL;
    if (!req->filter || !*req->filter)
        return 0;
    if (!(*re = firn_regex_compile(req->filter, err))) {
        firn_err_prefix(err, "filter");
        return err && err->code ? err->code : FIRN_EINVAL;
    }
    return 0;
}

static const char *label_key(const pprof_profile *p, const pprof_label *l)
{
    return pprof_str(p, l->key);
}

/* Whether a sample label's key is one of the group_by keys. */
static bool is_group_key(const pql_profile_request *req, const char *key)
{
    for (size_t i = 0; i < req->n_group_by; i++)
        if (strcmp(req->group_by[i], key) == 0)
            return true;
    return false;
}

/* ---- pprof ----------------------------------------------------------------- */

static pprof_profile *empty_profile(const char *type_name, firn_err *err)
{
    firn_profile_type pt;
    if (firn_profile_type_parse(type_name, &pt, NULL) < 0) {
        /* nothing matched, and the name gives no sample type to show */
        firn_errf(err, FIRN_EINVAL, "no profile matches: no series named \"%.200s\"",
                  type_name);
        return NULL;
    }
    pprof_builder *b = pprof_builder_new(1);
    char f[5][256];
    for (int i = 0; i < 5; i++)
        snprintf(f[i], sizeof f[i], "%.*s", (int)pt.len[i], pt.field[i]);
    pprof_builder_sample_type(b, 0, f[FIRN_PT_SAMPLE_TYPE], f[FIRN_PT_SAMPLE_UNIT]);
    pprof_builder_period(b, f[FIRN_PT_PERIOD_TYPE], f[FIRN_PT_PERIOD_UNIT], 0);
    return pprof_builder_finish(b, err);
}

pprof_profile *pql_profile_pprof(tsdb_reader *r, const pql_profile_request *req, firn_err *err)
{
    if (check_request(req, err) < 0)
        return NULL;
    firn_regex *re;
    if (compile_filter(req, &re, err) < 0)
        return NULL;
    struct side_spec sp;
    base_spec(req, &sp);
    struct side s;
    size_t left = samples_cap(req);
    int rc = side_eval(r, req, &sp, re, &s, &left, err);
    firn_regex_free(re);
    if (rc < 0)
        return NULL;
    pprof_profile *p = s.p;
    s.p = NULL;
    if (!p) {
        if (s.type_name)
            p = empty_profile(s.type_name, err);
        else
            firn_errf(err, FIRN_EINVAL, "no profile matches %s", req->query);
        side_free(&s);
        return p;
    }
    side_free(&s);
    if (req->n_group_by == 0)
        return p;
    /* keep the group_by labels only, then sum samples that became equal */
    for (size_t i = 0; i < p->n_samples; i++) {
        pprof_sample *smp = &p->samples[i];
        size_t k = 0;
        for (size_t j = 0; j < smp->n_labels; j++)
            if (is_group_key(req, label_key(p, &smp->labels[j])))
                smp->labels[k++] = smp->labels[j];
        smp->n_labels = k;
    }
    pprof_merge_samples(p, err);   /* cannot fail (pprof.h) */
    return p;
}

/* ---- interning ------------------------------------------------------------- */

/* Byte strings -> dense ids 0, 1, ...; the bytes are copied into arena. */
struct intern {
    uint32_t *slots;             /* id + 1; 0 = empty; cap is a power of two */
    size_t cap;
    struct intern_key {
        const char *s;
        size_t len;
        uint64_t hash;
    } *keys;
    size_t n, keys_cap;
    firn_arena *arena;
};

static void intern_destroy(struct intern *in)
{
    free(in->slots);
    free(in->keys);
}

static void intern_grow(struct intern *in)
{
    size_t cap = in->cap ? in->cap * 2 : 1024;
    uint32_t *slots = firn_xcalloc(cap, sizeof *slots);
    for (size_t i = 0; i < in->n; i++) {
        size_t h = (size_t)in->keys[i].hash & (cap - 1);
        while (slots[h])
            h = (h + 1) & (cap - 1);
        slots[h] = (uint32_t)i + 1;
    }
    free(in->slots);
    in->slots = slots;
    in->cap = cap;
}

/* 1 when new, 0 when found, FIRN_ETOOBIG past UINT32_MAX - 1 keys (ids
 * are 32 bits); *id is the key's id. */
static int intern_get(struct intern *in, const void *s, size_t len, uint32_t *id)
{
    if ((in->n + 1) * 2 > in->cap)
        intern_grow(in);
    /* at most half full, so a probe ends at an empty slot; a power of two
     * for the mask */
    assert(in->n < in->cap / 2 && (in->cap & (in->cap - 1)) == 0);
    uint64_t hash = XXH3_64bits(s, len);
    size_t h = (size_t)hash & (in->cap - 1);
    while (in->slots[h]) {
        const struct intern_key *k = &in->keys[in->slots[h] - 1];
        if (k->hash == hash && k->len == len && memcmp(k->s, s, len) == 0) {
            *id = in->slots[h] - 1;
            return 0;
        }
        h = (h + 1) & (in->cap - 1);
    }
    if (in->n >= UINT32_MAX - 1)
        return FIRN_ETOOBIG;
    in->keys = firn_grow(in->keys, in->n, &in->keys_cap, sizeof *in->keys, 1024);
    char *copy = firn_arena_strndup(in->arena, s, len);
    in->keys[in->n] = (struct intern_key){copy, len, hash};
    in->slots[h] = (uint32_t)in->n + 1;
    *id = (uint32_t)in->n++;
    return 1;
}

/* A key is built in a scratch buffer reused for every key: emptied, its
 * room kept. */
static void key_reset(firn_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* A field of a key: its length, then its bytes, so that no two different
 * field lists give the same key. */
static void key_field(firn_buf *b, const char *s)
{
    uint64_t n = strlen(s);
    firn_buf_append(b, &n, sizeof n);
    firn_buf_append(b, s, (size_t)n);
}

/* ---- the tree under construction ---------------------------------------- */

/* A node's children are a list (first_child, next_sibling; the newest
 * first), searched by walking it while it is short; once a node has more
 * than FANOUT_LIST children they are also in build.children, found by
 * hashing.  Most nodes of a big profile have one child or none, so most
 * lookups touch only the node just reached, and the hash table holds only
 * the children of the few wide nodes (its probes were the build's largest
 * cost: a cache miss each). */
#define FANOUT_LIST 8

struct bnode {
    uint32_t parent, key, function;
    uint32_t first_child, next_sibling, n_children;
    int64_t self[2], cum[2];
};

struct build {
    firn_arena *arena;           /* the tree's arena: names and infos land here */
    struct bnode *nodes;
    size_t n_nodes, cap_nodes;
    firn_u64map children;        /* parent << 32 | key -> node, for the children
                                  * of nodes with more than FANOUT_LIST */
    struct intern keys;          /* node keys: 'N' name, filename / 'G' group name */
    const char **key_names;      /* per key id */
    size_t key_names_cap;
    struct intern infos;         /* function info keys */
    pql_function_info *info;     /* per info id */
    size_t info_cap;
    firn_buf kb;                 /* scratch for keys (no cap: names of a profile in memory) */
    size_t max_nodes;            /* nodes below the root the query may still hold
                                    (--query.max-samples less the samples read) */
    firn_err *err;
};

static void build_init(struct build *b, firn_arena *arena, size_t max_nodes, firn_err *err)
{
    memset(b, 0, sizeof *b);
    b->arena = arena;
    b->max_nodes = max_nodes;
    b->err = err;
    b->keys.arena = arena;
    b->infos.arena = arena;
    b->nodes = firn_grow(NULL, 0, &b->cap_nodes, sizeof *b->nodes, 1024);
    firn_u64map_init(&b->children, 1024);
    b->nodes[0] = (struct bnode){.parent = NODE_NONE, .key = NODE_NONE, .function = NODE_NONE,
                                 .first_child = NODE_NONE, .next_sibling = NODE_NONE};
    b->n_nodes = 1;
}

static void build_destroy(struct build *b)
{
    free(b->nodes);
    firn_u64map_destroy(&b->children);
    intern_destroy(&b->keys);
    intern_destroy(&b->infos);
    free(b->key_names);
    free(b->info);
    firn_buf_free(&b->kb);
}

/* The intern tables' ids are 32 bits: a profile with more distinct names
 * or functions than that is refused rather than its ids wrapped. */
static int too_many(struct build *b, const char *what)
{
    return firn_errf(b->err, FIRN_ETOOBIG, "the stack tree has too many %s", what);
}

/* The id of a node key; name is what the node will be called. */
static int node_key(struct build *b, char tag, const char *name, const char *filename,
                    uint32_t *id)
{
    key_reset(&b->kb);
    firn_buf_append(&b->kb, &tag, 1);
    key_field(&b->kb, name);
    if (filename)
        key_field(&b->kb, filename);
    int r = intern_get(&b->keys, b->kb.data, b->kb.len, id);
    if (r < 0)
        return too_many(b, "names");
    if (r == 1) {
        b->key_names = firn_grow(b->key_names, *id, &b->key_names_cap, sizeof *b->key_names,
                                 1024);
        b->key_names[*id] = firn_arena_strdup(b->arena, name);
    }
    return 0;
}

/* The id of a function info. */
static int info_id(struct build *b, const char *name, const char *system_name,
                   const char *filename, int64_t start_line, const char *mapping, uint32_t *id)
{
    key_reset(&b->kb);
    key_field(&b->kb, name);
    key_field(&b->kb, system_name);
    key_field(&b->kb, filename);
    firn_buf_append(&b->kb, &start_line, sizeof start_line);
    key_field(&b->kb, mapping);
    int r = intern_get(&b->infos, b->kb.data, b->kb.len, id);
    if (r < 0)
        return too_many(b, "functions");
    if (r == 1) {
        b->info = firn_grow(b->info, *id, &b->info_cap, sizeof *b->info, 1024);
        pql_function_info *fi = &b->info[*id];
        fi->name = firn_arena_strdup(b->arena, name);
        fi->system_name = firn_arena_strdup(b->arena, system_name);
        fi->filename = firn_arena_strdup(b->arena, filename);
        fi->start_line = start_line;
        fi->mapping = firn_arena_strdup(b->arena, mapping);
    }
    return 0;
}

/* The child of parent with key (created with function info when new). */
static int child_of(struct build *b, uint32_t parent, uint32_t key, uint32_t function,
                    uint32_t *out)
{
    assert(parent < b->n_nodes);   /* a parent comes before its children */
    struct bnode *pn = &b->nodes[parent];
    uint64_t k = (uint64_t)parent << 32 | key;
    uint32_t idx = (uint32_t)b->n_nodes;
    if (pn->n_children <= FANOUT_LIST) {
        for (uint32_t c = pn->first_child; c != NODE_NONE; c = b->nodes[c].next_sibling) {
            if (b->nodes[c].key == key) {
                *out = c;
                return 0;
            }
        }
        if (pn->n_children == FANOUT_LIST) {
            /* the list is getting long: from now on its keys are hashed */
            for (uint32_t c = pn->first_child; c != NODE_NONE; c = b->nodes[c].next_sibling)
                firn_u64map_put(&b->children, (uint64_t)parent << 32 | b->nodes[c].key, c, NULL);
            firn_u64map_put(&b->children, k, idx, NULL);
        }
    } else if (firn_u64map_put(&b->children, k, idx, out) == 0) {
        return 0;
    }
    if (b->n_nodes >= UINT32_MAX - 1 || b->n_nodes > b->max_nodes)
        return firn_errf(b->err, FIRN_ETOOBIG, "%s", PQL_TOO_MANY_SAMPLES);
    b->nodes = firn_grow(b->nodes, b->n_nodes, &b->cap_nodes, sizeof *b->nodes, 1024);
    pn = &b->nodes[parent];   /* the array may have moved */
    b->nodes[idx] = (struct bnode){.parent = parent, .key = key, .function = function,
                                   .first_child = NODE_NONE, .next_sibling = pn->first_child};
    pn->first_child = idx;
    pn->n_children++;
    b->n_nodes++;
    *out = idx;
    return 0;
}

/* Frames of every location of a profile, root-first within the location
 * (lines[0], the innermost inlined frame, comes last): location i's are
 * at[off[i]] to at[off[i + 1]].  A frame's node key and function info sit
 * side by side, as the build reads them. */
struct frames {
    struct frame {
        uint32_t key, info;
    } *at;
    size_t *off;                 /* per location, and one past the last */
};

static void frames_free(struct frames *f)
{
    free(f->at);
    free(f->off);
}

/* "[libc.so.6] 0x1234", or "0x1234" without a mapping file. */
static void unsymbolized_name(const pprof_profile *p, const pprof_location *l, char *buf,
                              size_t size)
{
    const char *file = l->mapping < p->n_mappings
                           ? pprof_str(p, p->mappings[l->mapping].filename) : "";
    const char *slash = strrchr(file, '/');
    if (slash)
        file = slash + 1;
    if (*file)
        snprintf(buf, size, "[%s] 0x%" PRIx64, file, l->address);
    else
        snprintf(buf, size, "0x%" PRIx64, l->address);
}

static int frames_make(struct build *b, const pprof_profile *p, struct frames *f)
{
    size_t nloc = p->n_locations, total = 0;
    for (size_t i = 0; i < nloc; i++)
        total += p->locations[i].n_lines ? p->locations[i].n_lines : 1;
    /* sizes of the profile's tables, in memory: internal */
    f->at = firn_xreallocarray(NULL, total ? total : 1, sizeof *f->at);
    f->off = firn_xreallocarray(NULL, nloc + 1, sizeof *f->off);
    /* per function: the mapping of its last frame (a location's, which may
     * be PPROF_NONE) and that frame's ids, which a frame of the same
     * function and mapping shares (a function is on many locations: one per
     * call site) */
    struct fn_frame {
        bool seen;
        uint32_t mapping;
        struct frame ids;
    } *last = firn_xreallocarray(NULL, p->n_functions ? p->n_functions : 1, sizeof *last);
    for (size_t i = 0; i < p->n_functions; i++)
        last[i].seen = false;
    size_t k = 0;
    char addr[320];
    for (size_t i = 0; i < nloc; i++) {
        const pprof_location *l = &p->locations[i];
        const char *mapping = l->mapping < p->n_mappings
                                  ? pprof_str(p, p->mappings[l->mapping].filename) : "";
        size_t nl = l->n_lines ? l->n_lines : 1;
        f->off[i] = k;
        for (size_t j = nl; j-- > 0;) {
            const pprof_function *fn = NULL;
            if (l->n_lines && l->lines[j].function < p->n_functions)
                fn = &p->functions[l->lines[j].function];
            const char *name = fn ? pprof_str(p, fn->name) : "";
            int rc;
            if (!*name) {   /* unsymbolized: the binary and the address */
                unsymbolized_name(p, l, addr, sizeof addr);
                rc = info_id(b, addr, "", "", 0, mapping, &f->at[k].info);
                if (!rc)
                    rc = node_key(b, 'N', addr, "", &f->at[k].key);
            } else if (last[fn - p->functions].seen &&
                       last[fn - p->functions].mapping == l->mapping) {
                f->at[k] = last[fn - p->functions].ids;
                rc = 0;
            } else {
                const char *file = pprof_str(p, fn->filename);
                rc = info_id(b, name, pprof_str(p, fn->system_name), file, fn->start_line,
                             mapping, &f->at[k].info);
                if (!rc)
                    rc = node_key(b, 'N', name, file, &f->at[k].key);
                last[fn - p->functions] = (struct fn_frame){true, l->mapping, f->at[k]};
            }
            if (rc) {
                free(last);
                return rc;
            }
            k++;
        }
    }
    free(last);
    f->off[nloc] = k;
    return 0;
}

/* "key=value, key2=value2" of a sample's group_by labels (missing: ""). */
static int group_key(struct build *b, const pprof_profile *p, const pprof_sample *s,
                     const pql_profile_request *req, uint32_t *id)
{
    firn_buf g = {0};   /* no cap: group_by names and values of a profile in memory */
    char num[32];
    for (size_t i = 0; i < req->n_group_by; i++) {
        const char *value = "";
        for (size_t j = 0; j < s->n_labels; j++) {
            const pprof_label *l = &s->labels[j];
            if (strcmp(label_key(p, l), req->group_by[i]) != 0)
                continue;
            if (l->str) {
                value = pprof_str(p, l->str);
            } else {
                snprintf(num, sizeof num, "%" PRId64, l->num);
                value = num;
            }
            break;
        }
        if (i)
            firn_buf_append(&g, ", ", 2);
        firn_buf_puts(&g, req->group_by[i]);
        firn_buf_append(&g, "=", 1);
        firn_buf_puts(&g, value);
    }
    assert(g.data);   /* called with group_by labels only, none empty (check_request) */
    int rc = node_key(b, 'G', g.data, NULL, id);
    firn_buf_free(&g);
    return rc;
}

/* Adds one side's samples to the tree. */
static int build_add(struct build *b, const pprof_profile *p, int side,
                     const pql_profile_request *req)
{
    struct frames f = {0};
    int rc = frames_make(b, p, &f);
    for (size_t i = 0; i < p->n_samples && !rc; i++) {
        const pprof_sample *s = &p->samples[i];
        int64_t v = s->values[0];
        uint32_t node = 0;
        if (req->n_group_by) {
            uint32_t g;
            if ((rc = group_key(b, p, s, req, &g)) || (rc = child_of(b, node, g, NODE_NONE, &node)))
                break;
        }
        for (size_t k = s->n_locations; k-- > 0 && !rc;) {
            uint32_t loc = s->locations[k];
            if (loc >= p->n_locations)
                continue;
            for (size_t x = f.off[loc]; x < f.off[loc + 1]; x++) {
                if ((rc = child_of(b, node, f.at[x].key, f.at[x].info, &node)))
                    break;
            }
        }
        if (!rc)
            b->nodes[node].self[side] = pprof_add_sat(b->nodes[node].self[side], v);
    }
    frames_free(&f);
    return rc;
}

/* Every node's cum on one side: its self plus its children's cum.  The
 * samples only add to the self of the node their path ends at, so a frame
 * costs one lookup and no write; children come after their parent, so one
 * pass from the last node up sums every subtree.  (Saturated sums of
 * values of mixed signs may differ from adding along each path; the
 * values of one side are of one sign in practice.) */
static void sum_cums(struct build *b, int side)
{
    for (size_t i = b->n_nodes; i-- > 1;) {
        struct bnode *nd = &b->nodes[i];
        nd->cum[side] = pprof_add_sat(nd->cum[side], nd->self[side]);
        int64_t *up = &b->nodes[nd->parent].cum[side];
        *up = pprof_add_sat(*up, nd->cum[side]);
    }
    b->nodes[0].cum[side] = pprof_add_sat(b->nodes[0].cum[side], b->nodes[0].self[side]);
}

/* ---- node limit ------------------------------------------------------------ */

/* The order in which nodes are offered to the limit: larger rank first, then
 * name, then node index, a total order so the kept set is determined.
 * name is the node's place among the node keys' names in strcmp order
 * (equal names, equal places), so comparing needs no strcmp. */
struct ranked {
    int64_t rank;
    uint32_t name;
    uint32_t node;
};

static bool ranked_before(const struct ranked *a, const struct ranked *c)
{
    if (a->rank != c->rank)
        return a->rank > c->rank;
    if (a->name != c->name)
        return a->name < c->name;
    return a->node < c->node;
}

/* Restores the heap below i (the first in ranked_before order on top). */
static void heap_down(struct ranked *h, size_t n, size_t i)
{
    struct ranked x = h[i];
    for (size_t c; (c = 2 * i + 1) < n; i = c) {
        if (c + 1 < n && ranked_before(&h[c + 1], &h[c]))
            c++;
        if (!ranked_before(&h[c], &x))
            break;
        h[i] = h[c];
    }
    h[i] = x;
}

struct key_name {
    const char *name;
    uint32_t key;
};

static int cmp_key_name(const void *x, const void *y)
{
    return strcmp(((const struct key_name *)x)->name, ((const struct key_name *)y)->name);
}

/* place[key]: the key's name's place in strcmp order among the keys of
 * the nodes in heap (equal names, equal places: two keys may share a name,
 * same function name, other file); the other keys' places are left unset. */
static uint32_t *name_places(struct build *b, const struct ranked *heap, size_t n_heap)
{
    size_t n = b->keys.n;
    uint32_t *place = firn_xreallocarray(NULL, n ? n : 1, sizeof *place);
    struct key_name *by = firn_xreallocarray(NULL, n ? n : 1, sizeof *by);
    unsigned char *seen = firn_xcalloc(n ? n : 1, 1);
    size_t m = 0;
    for (size_t i = 0; i < n_heap; i++) {
        uint32_t key = b->nodes[heap[i].node].key;
        if (!seen[key]) {
            seen[key] = 1;
            by[m++] = (struct key_name){b->key_names[key], key};
        }
    }
    free(seen);
    firn_sort(by, m, sizeof *by, cmp_key_name);
    uint32_t at = 0;
    for (size_t k = 0; k < m; k++) {
        if (k && strcmp(by[k - 1].name, by[k].name) != 0)
            at++;
        place[by[k].key] = at;
    }
    free(by);
    return place;
}

static int64_t node_rank(const struct bnode *nd, bool diff)
{
    return diff && nd->cum[1] > nd->cum[0] ? nd->cum[1] : nd->cum[0];
}

/* Restores the min-heap h[0..n) below i. */
static void min_heap_down(int64_t *h, size_t n, size_t i)
{
    int64_t x = h[i];
    for (size_t c; (c = 2 * i + 1) < n; i = c) {
        if (c + 1 < n && h[c + 1] < h[c])
            c++;
        if (h[c] >= x)
            break;
        h[i] = h[c];
    }
    h[i] = x;
}

/* The k-th largest rank of the nodes other than the root (1 <= k < n_nodes):
 * the smallest of the k largest, kept in a min-heap (n log k at worst; most
 * ranks are below it and cost one comparison). */
static int64_t kth_rank(const struct build *b, bool diff, size_t k)
{
    assert(k >= 1 && k < b->n_nodes);
    int64_t *h = firn_xreallocarray(NULL, k, sizeof *h);
    for (size_t i = 0; i < k; i++)
        h[i] = node_rank(&b->nodes[i + 1], diff);
    for (size_t i = k / 2; i-- > 0;)
        min_heap_down(h, k, i);
    for (size_t i = k + 1; i < b->n_nodes; i++) {
        int64_t r = node_rank(&b->nodes[i], diff);
        if (r > h[0]) {
            h[0] = r;
            min_heap_down(h, k, 0);
        }
    }
    int64_t kth = h[0];
    free(h);
    return kth;
}

/* Offers the nodes other than the root whose rank is at least min (or,
 * at_least false, below it) in ranked_before order, keeping each with its
 * ancestors unless that would pass max_nodes, until max_nodes are kept.
 * The offers come off a heap: a linear heap build and a pop per offer. */
static void offer_nodes(struct build *b, bool diff, int64_t min, bool at_least,
                        size_t max_nodes, unsigned char *keep, size_t *kept)
{
    size_t n = b->n_nodes, left = 0;
    struct ranked *heap = firn_xreallocarray(NULL, n - 1, sizeof *heap);
    for (uint32_t i = 1; i < n; i++) {
        int64_t rank = node_rank(&b->nodes[i], diff);
        if ((rank >= min) == at_least)
            heap[left++] = (struct ranked){rank, 0, i};
    }
    uint32_t *place = name_places(b, heap, left);
    for (size_t i = 0; i < left; i++)
        heap[i].name = place[b->nodes[heap[i].node].key];
    free(place);
    for (size_t i = left / 2; i-- > 0;)
        heap_down(heap, left, i);
    while (left && *kept < max_nodes) {
        uint32_t x = heap[0].node;
        heap[0] = heap[--left];
        heap_down(heap, left, 0);
        size_t chain = 0;
        for (uint32_t a = x; !keep[a]; a = b->nodes[a].parent)
            chain++;
        if (*kept + chain > max_nodes)
            continue;
        for (uint32_t a = x; !keep[a]; a = b->nodes[a].parent)
            keep[a] = 1;
        *kept += chain;
    }
    assert(*kept <= max_nodes);
    free(heap);
}

/* keep[i]: whether node i stays.  With a limit, the max_nodes nodes of the
 * largest cum (max of both sides for a diff) stay, each with its
 * ancestors, so the count never exceeds the limit: nodes are offered in
 * ranked_before order and one whose missing ancestors would overflow the
 * limit is passed over.
 *
 * The order offers every node ranked at least T, the max_nodes-th largest
 * rank, before any other, so those go on the heap first, and the rest only
 * if the limit is not reached among them (offers passed over can leave it
 * short): the same offers in the same order, but a big profile's cut heaps
 * and sorts the names of a few thousand of its hundreds of thousands of
 * nodes (there are at least max_nodes of them, and with values of one sign
 * a node's rank is at most its parent's, so they hold their ancestors). */
static unsigned char *select_nodes(struct build *b, size_t max_nodes, bool diff)
{
    size_t n = b->n_nodes;
    unsigned char *keep = firn_xmalloc(n);
    if (max_nodes == 0 || n - 1 <= max_nodes) {
        memset(keep, 1, n);
        return keep;
    }
    memset(keep, 0, n);
    keep[0] = 1;
    int64_t t = kth_rank(b, diff, max_nodes);
    size_t kept = 0;
    offer_nodes(b, diff, t, true, max_nodes, keep, &kept);
    if (kept < max_nodes)
        offer_nodes(b, diff, t, false, max_nodes, keep, &kept);
    return keep;
}

/* ---- the finished tree ---------------------------------------------------- */

struct pending {
    pql_node node;
    uint32_t src;                /* build node, or NODE_NONE for "other" */
};

static int cmp_pending(const void *x, const void *y)
{
    const pql_node *a = &((const struct pending *)x)->node, *c = &((const struct pending *)y)->node;
    if (a->cum != c->cum)
        return a->cum > c->cum ? -1 : 1;
    if (a->compare_cum != c->compare_cum)
        return a->compare_cum > c->compare_cum ? -1 : 1;
    return strcmp(a->name, c->name);
}

static void node_values(pql_node *d, const struct bnode *s)
{
    d->self = s->self[0];
    d->cum = s->cum[0];
    d->compare_self = s->self[1];
    d->compare_cum = s->cum[1];
}

/* Whether every node's cum is its self plus its children's cum, on each
 * side (pql.h's promise: a sample's value counts in every node of its path
 * and in the self of the last), where no sum saturated.  Iterative: stacks
 * may be deep. */
__attribute__((unused)) static bool tree_sums_hold(const pql_node *root)
{
    size_t cap = 0, n = 0;
    const pql_node **stack = firn_grow(NULL, 0, &cap, sizeof *stack, 64);
    bool ok = true;
    stack[n++] = root;
    while (ok && n) {
        const pql_node *nd = stack[--n];
        int64_t sum[2] = {nd->self, nd->compare_self};
        bool exact = true;
        for (size_t i = 0; i < nd->n_children; i++) {
            const pql_node *c = &nd->children[i];
            exact &= !__builtin_add_overflow(sum[0], c->cum, &sum[0]);
            exact &= !__builtin_add_overflow(sum[1], c->compare_cum, &sum[1]);
            stack = firn_grow(stack, n, &cap, sizeof *stack, 64);
            stack[n++] = c;
        }
        ok = !exact || (sum[0] == nd->cum && sum[1] == nd->compare_cum);
    }
    free(stack);
    return ok;
}

/* Turns the kept build nodes into pql_nodes (breadth first, no recursion:
 * stacks may be deep), with an "other" child where children were cut and
 * the function table holding the functions the nodes use. */
static void finish_tree(struct build *b, const unsigned char *keep, pql_tree *out)
{
    size_t n = b->n_nodes;
    struct qitem {
        uint32_t src;
        pql_node *dst;
    } *queue = firn_xreallocarray(NULL, n, sizeof *queue);
    uint32_t *remap = firn_xreallocarray(NULL, b->infos.n ? b->infos.n : 1, sizeof *remap);
    struct pending *scratch = NULL;
    size_t scratch_cap = 0;
    for (size_t i = 0; i < b->infos.n; i++)
        remap[i] = NODE_NONE;
    size_t n_used = 0;
    pql_function_info *fns =
        firn_arena_alloc(out->arena, (b->infos.n ? b->infos.n : 1) * sizeof *fns);
    out->root = (pql_node){.function = NODE_NONE, .name = "total"};
    node_values(&out->root, &b->nodes[0]);
    size_t head = 0, tail = 0;
    queue[tail++] = (struct qitem){0, &out->root};
    while (head < tail) {
        struct qitem it = queue[head++];
        size_t n_children = b->nodes[it.src].n_children;
        if (n_children == 0)
            continue;
        if (n_children + 1 > scratch_cap) {   /* every child, and an "other" */
            scratch_cap = (n_children + 1) * 2;
            scratch = firn_xreallocarray(scratch, scratch_cap, sizeof *scratch);
        }
        /* one walk of the children list: its nodes lie anywhere in the
         * node array, a cache miss each */
        size_t k = 0;
        int64_t other[2] = {0, 0};
        bool has_other = false;
        for (uint32_t c = b->nodes[it.src].first_child; c != NODE_NONE;
             c = b->nodes[c].next_sibling) {
            const struct bnode *src = &b->nodes[c];
            if (!keep[c]) {
                has_other = true;
                other[0] = pprof_add_sat(other[0], src->cum[0]);
                other[1] = pprof_add_sat(other[1], src->cum[1]);
                continue;
            }
            pql_node *d = &scratch[k].node;
            *d = (pql_node){.function = NODE_NONE, .name = b->key_names[src->key]};
            node_values(d, src);
            if (src->function != NODE_NONE) {
                if (remap[src->function] == NODE_NONE) {
                    remap[src->function] = (uint32_t)n_used;
                    fns[n_used++] = b->info[src->function];
                }
                d->function = remap[src->function];
            }
            scratch[k++].src = c;
        }
        if (has_other) {
            scratch[k].node = (pql_node){.function = NODE_NONE, .name = "other",
                                         .self = other[0], .cum = other[0],
                                         .compare_self = other[1], .compare_cum = other[1]};
            scratch[k++].src = NODE_NONE;
        }
        size_t nc = k;
        firn_sort(scratch, nc, sizeof *scratch, cmp_pending);
        pql_node *kids = firn_arena_alloc(out->arena, nc * sizeof *kids);
        for (size_t i = 0; i < nc; i++) {
            kids[i] = scratch[i].node;
            if (scratch[i].src != NODE_NONE) {
                assert(tail < n);   /* each kept node is queued once */
                queue[tail++] = (struct qitem){scratch[i].src, &kids[i]};
            }
        }
        it.dst->children = kids;
        it.dst->n_children = nc;
    }
    out->functions = fns;
    out->n_functions = n_used;
    free(queue);
    free(remap);
    free(scratch);
}

/* ---- the request ---------------------------------------------------------- */

/* Sample type and unit of a profile type name, into the arena.  A name
 * that is no profile type (only a selector's, when nothing matched) leaves
 * them "": an empty result is not an error. */
static void type_fields(firn_arena *a, const char *type_name, const char **sample_type,
                        const char **sample_unit)
{
    firn_profile_type pt;
    if (firn_profile_type_parse(type_name, &pt, NULL) < 0)
        return;
    *sample_type = firn_arena_strndup(a, pt.field[FIRN_PT_SAMPLE_TYPE],
                                      pt.len[FIRN_PT_SAMPLE_TYPE]);
    *sample_unit = firn_arena_strndup(a, pt.field[FIRN_PT_SAMPLE_UNIT],
                                      pt.len[FIRN_PT_SAMPLE_UNIT]);
}

/* Both sides of a diff must count the same thing in the same unit. */
static int check_comparable(const struct side *base, const struct side *cmp, firn_err *err)
{
    if (!base->type_name || !cmp->type_name)
        return 0;
    firn_profile_type a, c;
    if (firn_profile_type_parse(base->type_name, &a, NULL) < 0 ||
        firn_profile_type_parse(cmp->type_name, &c, NULL) < 0)
        return 0;   /* a selector's name, nothing matched: nothing to compare */
    for (int f = FIRN_PT_SAMPLE_TYPE; f <= FIRN_PT_SAMPLE_UNIT; f++)
        if (a.len[f] != c.len[f] || memcmp(a.field[f], c.field[f], a.len[f]) != 0)
            return firn_errf(err, FIRN_EINVAL,
                             "cannot compare %s with %s: the sample types or units differ",
                             base->type_name, cmp->type_name);
    return 0;
}

int pql_profile_tree(tsdb_reader *r, const pql_profile_request *req, pql_tree *out,
                     firn_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = check_request(req, err);
    if (rc < 0)
        return rc;
    firn_regex *re;
    if ((rc = compile_filter(req, &re, err)) < 0)
        return rc;
    struct side sides[2] = {{0}};
    struct build b;
    unsigned char *keep = NULL;
    bool diff = req->compare_query != NULL;
    bool built = false;
    struct side_spec sp;
    base_spec(req, &sp);
    size_t left = samples_cap(req);
    if ((rc = side_eval(r, req, &sp, re, &sides[0], &left, err)) < 0)
        goto out;
    if (diff) {
        compare_spec(req, &sp);
        if ((rc = side_eval(r, req, &sp, re, &sides[1], &left, err)) < 0) {
            /* past the samples it is the whole query's error, said as Prometheus does */
            if (rc != FIRN_ETOOBIG)
                firn_err_prefix(err, "compare query");
            goto out;
        }
        if ((rc = check_comparable(&sides[0], &sides[1], err)) < 0)
            goto out;
    }
    out->arena = firn_arena_new(0);
    out->diff = diff;
    const char *type = sides[0].type_name ? sides[0].type_name : sides[1].type_name;
    out->profile_type = firn_arena_strdup(out->arena, type ? type : "");
    out->sample_type = out->sample_unit = "";
    if (type)
        type_fields(out->arena, type, &out->sample_type, &out->sample_unit);
    build_init(&b, out->arena, left, err);
    built = true;
    for (int s = 0; s < 2; s++)
        if (sides[s].p && (rc = build_add(&b, sides[s].p, s, req)) < 0)
            goto out;
    for (int s = 0; s < 2; s++)
        if (sides[s].p)
            sum_cums(&b, s);
    /* the cap on samples held the build to what the query had left */
    assert(b.n_nodes - 1 <= left);
    keep = select_nodes(&b, req->max_nodes, diff);
    finish_tree(&b, keep, out);
    assert(tree_sums_hold(&out->root));
    out->total = out->root.cum;
    out->compare_total = out->root.compare_cum;
out:
    free(keep);
    if (built)
        build_destroy(&b);
    side_free(&sides[0]);
    side_free(&sides[1]);
    firn_regex_free(re);
    if (rc < 0)
        pql_tree_free(out);
    return rc;
}

void pql_tree_free(pql_tree *t)
{
    if (!t)
        return;
    firn_arena_free(t->arena);
    memset(t, 0, sizeof *t);
}
