/* buf.c -- firn_buf, the growable byte buffer with an optional cap. */
#include "model/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/alloc.h"

void firn_buf_init(firn_buf *b, size_t max)
{
    *b = (firn_buf){.max = max};
}

/* Room for extra more bytes and the NUL; false (with failed set) when that
 * would pass the cap. */
static bool buf_reserve(firn_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra > SIZE_MAX - 1 - b->len || (b->max && b->len + extra > b->max)) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b->data = firn_xrealloc(b->data, cap);
    b->cap = cap;
    return true;
}

void firn_buf_append(firn_buf *b, const void *p, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void firn_buf_puts(firn_buf *b, const char *s)
{
    firn_buf_append(b, s, strlen(s));
}

void firn_buf_printf(firn_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        firn_buf_append(b, small, (size_t)n);
        return;
    }
    if (!buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *firn_buf_take(firn_buf *b, size_t *len)
{
    char *p = b->data;
    size_t n = b->len;
    bool failed = b->failed;
    *b = (firn_buf){.max = b->max};
    if (failed) {
        free(p);
        p = NULL;
        n = 0;
    } else if (!p) {
        p = firn_xcalloc(1, 1);  /* an empty buffer still yields a string */
    }
    if (len)
        *len = n;
    return p;
}

void firn_buf_free(firn_buf *b)
{
    free(b->data);
    *b = (firn_buf){.max = b->max};
}
