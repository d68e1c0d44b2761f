/* u64map.c -- open-addressing hash map from uint64 keys to uint32 values.
 *
 * Invariant: len < cap * 3/4, so a probe always ends on an unused slot.
 * Keys are mixed with a 64-bit finalizer so dense ids and addresses both
 * spread over the table.  A slot holds its key, value and used flag
 * together: a probe of a big table costs one cache miss, not three.
 */
#include "model/table.h"
#include "model/alloc.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static void alloc_table(firn_u64map *m, size_t cap)
{
    m->slots = firn_xcalloc(cap, sizeof *m->slots);
    m->cap = cap;
    m->len = 0;
}

int firn_u64map_init(firn_u64map *m, size_t expected)
{
    size_t cap = 16;
    while (cap / 4 * 3 <= expected) {
        if (cap > SIZE_MAX / 4 / sizeof *m->slots)
            firn_oom(SIZE_MAX);   /* more keys than memory could hold */
        cap *= 2;
    }
    alloc_table(m, cap);
    return 0;
}

void firn_u64map_clear(firn_u64map *m)
{
    if (m->slots)
        memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->len = 0;
}

void firn_u64map_destroy(firn_u64map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->len = 0;
}

static void grow(firn_u64map *m)
{
    firn_u64map bigger;
    if (m->cap > SIZE_MAX / 4 / sizeof *m->slots)
        firn_oom(SIZE_MAX);
    alloc_table(&bigger, m->cap * 2);
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].used)
            firn_u64map_put(&bigger, m->slots[i].key, m->slots[i].val, NULL);
    firn_u64map_destroy(m);
    *m = bigger;
}

int firn_u64map_put(firn_u64map *m, uint64_t key, uint32_t val, uint32_t *existing)
{
    if ((m->len + 1) > m->cap / 4 * 3)
        grow(m);
    /* a power of two with room: the probe below ends on an unused slot */
    assert(m->cap && (m->cap & (m->cap - 1)) == 0 && m->len < m->cap / 4 * 3);
    size_t mask = m->cap - 1;
    for (size_t i = mix64(key) & mask;; i = (i + 1) & mask) {
        struct firn_u64map_slot *s = &m->slots[i];
        if (!s->used) {
            *s = (struct firn_u64map_slot){key, val, 1};
            m->len++;
            return 1;
        }
        if (s->key == key) {
            if (existing)
                *existing = s->val;
            return 0;
        }
    }
}

int firn_u64map_get(const firn_u64map *m, uint64_t key, uint32_t *val)
{
    if (m->cap == 0)
        return 0;
    assert((m->cap & (m->cap - 1)) == 0 && m->len < m->cap);
    size_t mask = m->cap - 1;
    for (size_t i = mix64(key) & mask; m->slots[i].used; i = (i + 1) & mask) {
        if (m->slots[i].key == key) {
            *val = m->slots[i].val;
            return 1;
        }
    }
    return 0;
}
