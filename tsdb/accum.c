/* accum.c -- the merge accumulator: sums (stack, label set) -> value over
 * any number of profiles and rollups.
 *
 * Stack ids are small integers allocated in order within a partition, so
 * the accumulator keeps, per partition, a dense array of values indexed by
 * stack id and a bitmap of the ids seen: adding a sample is one load, one
 * add and one store, with no hashing.  Samples that carry a label set (kept
 * only when a query groups by labels) go to a hash map per partition
 * instead, as their (stack, label set) pairs are sparse.
 *
 * The entries come out sorted by (partition, stack, label set), whatever
 * the order of the additions, so a merge built from rollups and one built
 * from raw profiles yield the same profile, sample for sample.  The arrays
 * are allocated with calloc, so a partition whose ids run high costs only
 * the pages its stacks touch (large callocs are fresh zero pages).
 *
 * Memory: everything but the dense arrays follows the policy of
 * model/alloc.h.  The dense arrays are sized by the largest stack id read
 * from the store, up to 2^32 slots (32 GiB), which a corrupt block can
 * ask for; no cap short of that is right for a store that large, so their
 * allocation failing is an error of the query (ENOMEM), not an abort.
 */
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct acc_part {
    uint32_t partition;
    uint64_t cap;              /* slots of val; seen has cap / 64 words */
    int64_t *val;
    uint64_t *seen;
    firn_u64map lmap;          /* stack << 32 | label set -> index into le */
    bool lmap_ready;
    struct acc_entry *le;
    size_t n_le, cap_le;
};

void tsdb_acc_init(struct acc *a, bool keep_labels)
{
    memset(a, 0, sizeof *a);
    a->keep_labels = keep_labels;
    a->min_ts = INT64_MAX;
    a->max_end_ns = INT64_MIN;
}

void tsdb_acc_free(struct acc *a)
{
    for (size_t i = 0; i < a->n_parts; i++) {
        struct acc_part *p = &a->parts[i];
        free(p->val);
        free(p->seen);
        free(p->le);
        if (p->lmap_ready)
            firn_u64map_destroy(&p->lmap);
    }
    free(a->parts);
    a->parts = NULL;
    a->n_parts = a->cap_parts = 0;
}

void tsdb_acc_note(struct acc *a, int64_t min_ts, int64_t max_end_ns, int64_t period,
                   uint64_t blocks)
{
    if (!blocks)
        return;
    a->blocks += blocks;
    if (min_ts < a->min_ts)
        a->min_ts = min_ts;
    if (max_end_ns > a->max_end_ns)
        a->max_end_ns = max_end_ns;
    /* the first nonzero period in time order, as a merge of the raw
     * profiles picks it */
    if (!a->period)
        a->period = period;
}

static struct acc_part *part_get(struct acc *a, uint32_t partition)
{
    if (a->n_parts && a->parts[a->last].partition == partition)
        return &a->parts[a->last];
    for (size_t i = 0; i < a->n_parts; i++)
        if (a->parts[i].partition == partition) {
            a->last = i;
            return &a->parts[i];
        }
    a->parts = firn_grow(a->parts, a->n_parts, &a->cap_parts, sizeof *a->parts, 8);
    struct acc_part *p = &a->parts[a->n_parts];
    memset(p, 0, sizeof *p);
    p->partition = partition;
    a->last = a->n_parts++;
    return p;
}

/* Makes stack ids below need addressable. */
static int part_reserve(struct acc_part *p, uint64_t need)
{
    if (need <= p->cap)
        return 0;
    uint64_t ncap = p->cap ? p->cap : 1024;
    while (ncap < need)
        ncap *= 2;
    if (ncap > (uint64_t)UINT32_MAX + 1)
        ncap = (uint64_t)UINT32_MAX + 1;
    /* fresh zeroed memory, the old contents copied: calloc of a large size
     * maps zero pages instead of clearing them */
    int64_t *val = calloc((size_t)ncap, sizeof *val);
    uint64_t *seen = calloc((size_t)(ncap / 64), sizeof *seen);
    if (!val || !seen) {
        free(val);
        free(seen);
        return ENOMEM;
    }
    if (p->cap) {
        memcpy(val, p->val, p->cap * sizeof *val);
        memcpy(seen, p->seen, p->cap / 64 * sizeof *seen);
    }
    free(p->val);
    free(p->seen);
    p->val = val;
    p->seen = seen;
    p->cap = ncap;
    return 0;
}

static inline int64_t add_sat(int64_t a, int64_t b)
{
    int64_t s;
    if (__builtin_add_overflow(a, b, &s))
        return a < 0 ? INT64_MIN : INT64_MAX;
    return s;
}

static void add_labelled(struct acc_part *p, uint32_t stack, uint32_t ls, int64_t value)
{
    if (!p->lmap_ready) {
        firn_u64map_init(&p->lmap, 256);
        p->lmap_ready = true;
    }
    uint32_t idx = (uint32_t)p->n_le;
    if (firn_u64map_put(&p->lmap, (uint64_t)stack << 32 | ls, idx, &idx) == 0) {
        assert(idx < p->n_le);
        p->le[idx].value = add_sat(p->le[idx].value, value);
        return;
    }
    p->le = firn_grow(p->le, p->n_le, &p->cap_le, sizeof *p->le, 256);
    p->le[p->n_le++] = (struct acc_entry){p->partition, stack, ls, value};
}

int tsdb_acc_add(struct acc *a, uint32_t partition, const uint32_t *stacks,
                 const uint32_t *labelsets, const int64_t *values, size_t n)
{
    a->samples += n;
    if (n == 0)
        return 0;
    struct acc_part *p = part_get(a, partition);
    /* blocks and rollup segments hold their stacks in ascending order (the
     * decoder only yields nondecreasing ids), so the last is the largest */
    uint32_t max = stacks[n - 1];
    assert(n < 2 || stacks[0] <= max);
    if (part_reserve(p, (uint64_t)max + 1))
        return ENOMEM;
    int64_t *val = p->val;
    uint64_t *seen = p->seen;
    if (!a->keep_labels || !labelsets) {
        /* The seen bits of a run of ids in one word gather in a register:
         * ids ascend, so most neighbours share a word, and an OR into
         * memory per sample chained every sample's store to the next
         * one's load. */
        uint64_t word = (uint64_t)stacks[0] >> 6, bits = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t s = stacks[i];
            val[s] = add_sat(val[s], values[i]);
            if (s >> 6 != word) {
                seen[word] |= bits;
                word = s >> 6;
                bits = 0;
            }
            bits |= 1ull << (s & 63);
        }
        seen[word] |= bits;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t s = stacks[i];
        if (labelsets[i]) {
            add_labelled(p, s, labelsets[i], values[i]);
            continue;
        }
        val[s] = add_sat(val[s], values[i]);
        seen[s >> 6] |= 1ull << (s & 63);
    }
    return 0;
}

static int cmp_part(const void *x, const void *y)
{
    const struct acc_part *a = x, *b = y;
    return a->partition < b->partition ? -1 : a->partition > b->partition;
}

static int cmp_entry(const void *x, const void *y)
{
    const struct acc_entry *a = x, *b = y;
    if (a->stack != b->stack)
        return a->stack < b->stack ? -1 : 1;
    return a->labelset < b->labelset ? -1 : a->labelset > b->labelset;
}

/* The order tsdb_acc_entries promises: (partition, stack, label set)
 * strictly ascending, so each entry is one distinct sample. */
__attribute__((unused)) static bool entries_sorted(const struct acc_entry *e, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (e[i - 1].partition > e[i].partition ||
            (e[i - 1].partition == e[i].partition && cmp_entry(&e[i - 1], &e[i]) >= 0))
            return false;
    return true;
}

size_t tsdb_acc_count(const struct acc *a)
{
    size_t n = 0;
    for (size_t i = 0; i < a->n_parts; i++) {
        const struct acc_part *p = &a->parts[i];
        for (uint64_t w = 0; w < p->cap / 64; w++)
            n += (size_t)__builtin_popcountll(p->seen[w]);
        n += p->n_le;
    }
    return n;
}

void tsdb_acc_entries(struct acc *a, struct acc_entry **out, size_t *n_out)
{
    size_t n = tsdb_acc_count(a);
    struct acc_entry *e = firn_xreallocarray(NULL, n ? n : 1, sizeof *e);
    firn_sort(a->parts, a->n_parts, sizeof *a->parts, cmp_part);
    a->last = 0;
    size_t k = 0;
    for (size_t i = 0; i < a->n_parts; i++) {
        struct acc_part *p = &a->parts[i];
        firn_sort(p->le, p->n_le, sizeof *p->le, cmp_entry);
        size_t j = 0;   /* next labelled entry */
        for (uint64_t w = 0; w < p->cap / 64; w++) {
            uint64_t bits = p->seen[w];
            while (bits) {
                uint32_t s = (uint32_t)(w * 64 + (uint64_t)__builtin_ctzll(bits));
                bits &= bits - 1;
                while (j < p->n_le && p->le[j].stack < s)
                    e[k++] = p->le[j++];
                e[k++] = (struct acc_entry){p->partition, s, 0, p->val[s]};
            }
        }
        while (j < p->n_le)
            e[k++] = p->le[j++];
    }
    assert(k == n && entries_sorted(e, n));
    *out = e;
    *n_out = n;
}
