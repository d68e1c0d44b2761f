/* buf.h -- firn_buf, the one growable byte buffer, capped like curl's
 * dynbuf.
 *
 * A buffer grows by firn_xrealloc (model/alloc.h): running out of memory
 * aborts.  A buffer may be given a cap (firn_buf_init); the first append
 * that would take it past the cap sets failed and leaves the bytes as they
 * were, and every later append is a no-op, so a writer checks once at the
 * end.  Use a cap whenever what is written depends on outside input (a
 * response body, a query's result).  data is always NUL-terminated when
 * not NULL.  Zero-initialize for a buffer without a cap. */
#ifndef FIRN_MODEL_BUF_H
#define FIRN_MODEL_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct firn_buf {
    char *data;
    size_t len, cap;
    bool failed;     /* an append would have passed max (or printf failed) */
    size_t max;      /* most bytes the buffer may hold; 0 = no cap */
} firn_buf;

/* An empty buffer holding at most max bytes (0: no cap). */
void firn_buf_init(firn_buf *b, size_t max);
void firn_buf_append(firn_buf *b, const void *p, size_t n);
void firn_buf_puts(firn_buf *b, const char *s);
void firn_buf_printf(firn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand the bytes to the caller (free them); the buffer is empty again, its
 * cap kept.  NULL when an append failed (the bytes are freed then). */
char *firn_buf_take(firn_buf *b, size_t *len);
/* Free the bytes; the buffer is empty again, its cap kept. */
void firn_buf_free(firn_buf *b);

#endif
