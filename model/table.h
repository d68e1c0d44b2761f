/* table.h -- lookup tables: a uint64 -> uint32 hash map, and sorting and
 * searching of sorted arrays (address tables). */
#ifndef FIRN_MODEL_TABLE_H
#define FIRN_MODEL_TABLE_H

#include <stddef.h>
#include <stdint.h>

/* qsort that takes an empty array as it comes (NULL included: qsort's
 * arguments must not be NULL even for no elements) and sorts nothing below
 * two elements. */
void firn_sort(void *base, size_t n, size_t elem, int (*cmp)(const void *, const void *));

/* In an array of n elements of elem bytes sorted by the uint64_t at
 * key_offset in each, the number of elements whose key is <= key: the
 * element at the result - 1 is the last one at or below key (none when 0).
 * For address tables: symbols, mappings, JIT code ranges. */
size_t firn_sorted_count_le(const void *base, size_t n, size_t elem, size_t key_offset,
                            uint64_t key);

/* ---- u64 -> u32 hash map ---------------------------------------------------
 *
 * Open addressing, linear probing; keys are arbitrary uint64 values (0 is a
 * valid key).  Used to map sparse ids to dense indexes and hashes to slots.
 * The table grows by firn_xmalloc (model/alloc.h), so no call fails for
 * want of memory. */
typedef struct firn_u64map {
    struct firn_u64map_slot {
        uint64_t key;
        uint32_t val, used;
    } *slots;
    size_t cap;     /* power of two */
    size_t len;
} firn_u64map;

/* Room for expected keys before the first growth; returns 0. */
int firn_u64map_init(firn_u64map *m, size_t expected);
void firn_u64map_destroy(firn_u64map *m);
/* Empty m, keeping its capacity. */
void firn_u64map_clear(firn_u64map *m);
/* Insert key -> val.  Returns 1 if inserted, 0 if the key existed (its value
 * is left unchanged and written to *existing if not NULL). */
int firn_u64map_put(firn_u64map *m, uint64_t key, uint32_t val, uint32_t *existing);
/* Returns 1 and sets *val when found, 0 otherwise. */
int firn_u64map_get(const firn_u64map *m, uint64_t key, uint32_t *val);

#endif
