/* sort.c -- sorting and searching sorted arrays (model/table.h). */
#include "model/table.h"

#include <stdlib.h>
#include <string.h>

void firn_sort(void *base, size_t n, size_t elem, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, elem, cmp);
}

size_t firn_sorted_count_le(const void *base, size_t n, size_t elem, size_t key_offset,
                            uint64_t key)
{
    const unsigned char *a = base;
    size_t lo = 0, hi = n;
    while (lo < hi) {   /* the first element above key */
        size_t mid = lo + (hi - lo) / 2;
        uint64_t k;
        memcpy(&k, a + mid * elem + key_offset, sizeof k);
        if (k <= key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
