/* identity.c -- content identities of frames and samples, and merging samples
 * of equal identity.
 *
 * Ids are renumbered by every producer and every scrape, and the same binary
 * loads at different addresses in different processes, so identity is
 * computed from content: symbolized frames by (function, file, line),
 * unsymbolized ones by (build id or file name, file-relative address).
 * Hashes are xxh3-128 over a length-prefixed encoding, so no two different
 * contents share an encoding.
 */
#include "internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* The hashed encoding is written into a firn_buf without a cap (its size is
 * that of a frame or a sample already in memory), reused by setting len to 0. */
typedef firn_buf hbuf;

static inline void hb_put(hbuf *h, const void *data, size_t n)
{
    /* in line while there is room for n bytes and the NUL firn_buf keeps:
     * the call per field was a tenth of ingest's identity work */
    if (h->data && h->cap - h->len > n) {
        memcpy(h->data + h->len, data, n);
        h->len += n;
        h->data[h->len] = '\0';
        return;
    }
    firn_buf_append(h, data, n);
}

static void hb_u64(hbuf *h, uint64_t v)
{
    hb_put(h, &v, sizeof v);
}

static void hb_str(hbuf *h, const char *s)
{
    size_t n = strlen(s);
    hb_u64(h, n);
    hb_put(h, s, n);
}

static pprof_hash hb_hash(const hbuf *h)
{
    XXH128_hash_t x = XXH3_128bits(h->data, h->len);
    pprof_hash r = {x.low64, x.high64};
    return r;
}

static bool location_is_symbolized(const pprof_location *l)
{
    for (size_t i = 0; i < l->n_lines; i++)
        if (l->lines[i].function != PPROF_NONE)
            return true;
    return false;
}

static void encode_location(const pprof_profile *p, uint32_t idx, hbuf *h)
{
    const pprof_location *l = &p->locations[idx];
    if (location_is_symbolized(l)) {
        hb_put(h, "S", 1);
        hb_u64(h, l->n_lines);
        for (size_t i = 0; i < l->n_lines; i++) {
            const pprof_line *ln = &l->lines[i];
            if (ln->function == PPROF_NONE) {
                hb_str(h, "");
                hb_str(h, "");
            } else {
                const pprof_function *f = &p->functions[ln->function];
                hb_str(h, pprof_str(p, f->name));
                hb_str(h, pprof_str(p, f->filename));
            }
            hb_u64(h, (uint64_t)ln->line);
        }
        return;
    }
    hb_put(h, "U", 1);
    if (l->mapping == PPROF_NONE) {
        hb_str(h, "");
        hb_u64(h, l->address);
        return;
    }
    const pprof_mapping *m = &p->mappings[l->mapping];
    const char *bid = pprof_str(p, m->build_id);
    hb_str(h, bid[0] ? bid : pprof_str(p, m->filename));
    hb_u64(h, l->address - m->memory_start + m->file_offset);
}

/* Each function's part of a symbolized location's encoding (name and file,
 * length-prefixed, as encode_location writes them), made once per profile
 * instead of once per line naming the function: in a Go CPU profile a
 * function is named by many lines, and its strings' lengths and copies were
 * a large share of ingest's identity work.  The bytes hashed, and so the
 * identities, are the same. */
struct fn_part {
    size_t off, len;   /* in the parts buffer */
};

static void encode_functions(const pprof_profile *p, hbuf *parts, struct fn_part *fp)
{
    for (size_t i = 0; i < p->n_functions; i++) {
        fp[i].off = parts->len;
        hb_str(parts, pprof_str(p, p->functions[i].name));
        hb_str(parts, pprof_str(p, p->functions[i].filename));
        fp[i].len = parts->len - fp[i].off;
    }
}

/* encode_location with the functions' parts made beforehand. */
static void encode_location_parts(const pprof_profile *p, uint32_t idx, const hbuf *parts,
                                  const struct fn_part *fp, hbuf *h)
{
    const pprof_location *l = &p->locations[idx];
    if (!location_is_symbolized(l)) {
        encode_location(p, idx, h);
        return;
    }
    static const uint64_t no_function[2] = {0, 0};   /* hb_str("") twice */
    hb_put(h, "S", 1);
    hb_u64(h, l->n_lines);
    for (size_t i = 0; i < l->n_lines; i++) {
        const pprof_line *ln = &l->lines[i];
        if (ln->function == PPROF_NONE)
            hb_put(h, no_function, sizeof no_function);
        else
            hb_put(h, parts->data + fp[ln->function].off, fp[ln->function].len);
        hb_u64(h, (uint64_t)ln->line);
    }
}

int pprof_location_identities(const pprof_profile *p, pprof_hash *out)
{
    hbuf h = {0}, parts = {0};
    struct fn_part *fp =
        firn_xreallocarray(NULL, p->n_functions ? p->n_functions : 1, sizeof *fp);
    encode_functions(p, &parts, fp);
    for (size_t i = 0; i < p->n_locations; i++) {
        h.len = 0;
        encode_location_parts(p, (uint32_t)i, &parts, fp, &h);
        out[i] = hb_hash(&h);
    }
    free(fp);
    firn_buf_free(&parts);
    firn_buf_free(&h);
    return 0;
}

pprof_hash pprof_location_identity(const pprof_profile *p, uint32_t location)
{
    hbuf h = {0};
    encode_location(p, location, &h);
    pprof_hash r = hb_hash(&h);
    firn_buf_free(&h);
    return r;
}

/* Orders labels by content so that label order does not change identity. */
struct label_sort_ctx {
    const pprof_profile *p;
    const pprof_label *labels;
};

static _Thread_local struct label_sort_ctx sort_ctx;

static int cmp_label(const void *a, const void *b)
{
    const pprof_label *x = &sort_ctx.labels[*(const uint32_t *)a];
    const pprof_label *y = &sort_ctx.labels[*(const uint32_t *)b];
    const pprof_profile *p = sort_ctx.p;
    int c = strcmp(pprof_str(p, x->key), pprof_str(p, y->key));
    if (c)
        return c;
    if ((c = strcmp(pprof_str(p, x->str), pprof_str(p, y->str))))
        return c;
    if (x->num != y->num)
        return x->num < y->num ? -1 : 1;
    return strcmp(pprof_str(p, x->num_unit), pprof_str(p, y->num_unit));
}

/* Appends the sorted labels of a sample to h. */
static void encode_labels(const pprof_profile *p, const pprof_sample *s, hbuf *h)
{
    hb_u64(h, s->n_labels);
    if (s->n_labels == 0)
        return;
    uint32_t stack_order[16];
    uint32_t *order =
        s->n_labels <= 16 ? stack_order : firn_xreallocarray(NULL, s->n_labels, sizeof *order);
    for (size_t i = 0; i < s->n_labels; i++)
        order[i] = (uint32_t)i;
    if (s->n_labels > 1) {
        sort_ctx.p = p;
        sort_ctx.labels = s->labels;
        firn_sort(order, s->n_labels, sizeof *order, cmp_label);
    }
    for (size_t i = 0; i < s->n_labels; i++) {
        const pprof_label *l = &s->labels[order[i]];
        hb_str(h, pprof_str(p, l->key));
        hb_str(h, pprof_str(p, l->str));
        hb_u64(h, (uint64_t)l->num);
        hb_str(h, pprof_str(p, l->num_unit));
    }
    if (order != stack_order)
        free(order);
}

pprof_hash pprof_labels_identity(const pprof_profile *p, size_t sample)
{
    hbuf h = {0};
    encode_labels(p, &p->samples[sample], &h);
    pprof_hash r = hb_hash(&h);
    firn_buf_free(&h);
    return r;
}

/* Whether samples a and b carry the same labels in the same order, string
 * indexes and numbers alike (then their identities are equal). */
static bool same_raw_labels(const pprof_sample *a, const pprof_sample *b)
{
    if (a->n_labels != b->n_labels)
        return false;
    for (size_t i = 0; i < a->n_labels; i++) {
        const pprof_label *x = &a->labels[i], *y = &b->labels[i];
        if (x->key != y->key || x->str != y->str || x->num != y->num ||
            x->num_unit != y->num_unit)
            return false;
    }
    return true;
}

/* The samples of a profile mostly repeat a few label sets (a goroutine's
 * pprof labels, the agent's thread and process): each set as written (its
 * string indexes and numbers, in order) is encoded, sorted and hashed once,
 * the samples that repeat it take its identity.  A set written in another
 * order is hashed anew and comes out the same: the identity itself is
 * pprof_labels_identity's. */
void pprof_labels_identities(const pprof_profile *p, pprof_hash *out)
{
    static const pprof_hash none = {0, 0};
    assert(p->n_samples <= UINT32_MAX);   /* capped far below (pprof_limits) */
    hbuf h = {0};
    firn_u64map seen;   /* raw hash of a label set -> first sample with it */
    firn_u64map_init(&seen, 64);
    for (size_t i = 0; i < p->n_samples; i++) {
        const pprof_sample *s = &p->samples[i];
        if (!s->n_labels) {
            out[i] = none;
            continue;
        }
        uint64_t raw = XXH3_64bits(s->labels, s->n_labels * sizeof *s->labels);
        uint32_t first;
        if (firn_u64map_put(&seen, raw, (uint32_t)i, &first) == 0 &&
            same_raw_labels(&p->samples[first], s)) {
            out[i] = out[first];
            continue;
        }
        h.len = 0;
        encode_labels(p, s, &h);
        out[i] = hb_hash(&h);
    }
    firn_u64map_destroy(&seen);
    firn_buf_free(&h);
}

/* Sample identity from precomputed location identities (loc_ids may be NULL:
 * computed on the fly). */
static pprof_hash sample_identity(const pprof_profile *p, size_t i, const pprof_hash *loc_ids,
                                  hbuf *h)
{
    const pprof_sample *s = &p->samples[i];
    h->len = 0;
    hb_u64(h, s->n_locations);
    for (size_t j = 0; j < s->n_locations; j++) {
        pprof_hash lh = loc_ids ? loc_ids[s->locations[j]]
                                : pprof_location_identity(p, s->locations[j]);
        hb_u64(h, lh.lo);
        hb_u64(h, lh.hi);
    }
    encode_labels(p, s, h);
    return hb_hash(h);
}

pprof_hash pprof_sample_identity(const pprof_profile *p, size_t sample)
{
    hbuf h = {0};
    pprof_hash r = sample_identity(p, sample, NULL, &h);
    firn_buf_free(&h);
    return r;
}

void pprof_sample_identities(const pprof_profile *p, pprof_hash *ids)
{
    pprof_hash *loc_ids = firn_xreallocarray(NULL, p->n_locations ? p->n_locations : 1,
                                             sizeof *loc_ids);
    pprof_location_identities(p, loc_ids);
    hbuf h = {0};
    for (size_t i = 0; i < p->n_samples; i++)
        ids[i] = sample_identity(p, i, loc_ids, &h);
    firn_buf_free(&h);
    free(loc_ids);
}

int pprof_merge_samples(pprof_profile *p, firn_err *err)
{
    if (p->n_samples < 2)
        return 0;
    (void)err;   /* nothing left that can fail: see pprof.h */
    hbuf h = {0};
    firn_u64map seen;
    firn_u64map_init(&seen, p->n_samples);
    pprof_hash *loc_ids = firn_xreallocarray(NULL, p->n_locations ? p->n_locations : 1,
                                             sizeof *loc_ids);
    pprof_hash *ids = firn_xreallocarray(NULL, p->n_samples, sizeof *ids);
    pprof_location_identities(p, loc_ids);
    size_t kept = 0;
    for (size_t i = 0; i < p->n_samples; i++) {
        ids[i] = sample_identity(p, i, loc_ids, &h);
        uint32_t first;
        int r = firn_u64map_put(&seen, ids[i].lo, (uint32_t)kept, &first);
        assert(r == 1 || first < kept);
        if (r == 0 && pprof_hash_eq(ids[first], ids[i])) {
            int64_t *dst = p->samples[first].values;
            const int64_t *src = p->samples[i].values;
            for (size_t j = 0; j < p->n_sample_types; j++)
                dst[j] = pprof_add_sat(dst[j], src[j]);
            continue;
        }
        /* New identity (or a 64-bit collision with a different one, which
         * stays a separate sample). */
        ids[kept] = ids[i];
        p->samples[kept++] = p->samples[i];
    }
    p->n_samples = kept;
    firn_buf_free(&h);
    free(loc_ids);
    free(ids);
    firn_u64map_destroy(&seen);
    return 0;
}
