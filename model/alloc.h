/* alloc.h -- memory: the out-of-memory policy, the x-allocators, the one
 * growth helper for arrays, arenas, and the process's malloc settings.
 *
 * The policy (docs/ARCHITECTURE.md, "Memory"): an allocation whose size is
 * firn's own -- a node, a copy of a bounded string, the next step of an
 * array whose elements are already in memory -- cannot sensibly fail, so it
 * aborts with a message on standard error when the system has no memory
 * left, as Redis, h2o and git do.  A size that comes from outside (a body,
 * a profile, a query's result) is checked against its cap and refused with
 * an error naming the cap before anything is allocated; only then is it
 * allocated, by these functions.  So no caller checks for NULL here, and no
 * "out of memory" error path exists above this file.
 */
#ifndef FIRN_MODEL_ALLOC_H
#define FIRN_MODEL_ALLOC_H

#include <stddef.h>

/* malloc, calloc, realloc, strdup and strndup that never return NULL: on
 * failure (or a count * size that overflows) they write "firn: out of memory
 * (N bytes)" to standard error and abort.  A size of 0 gets a valid pointer
 * to free. */
void *firn_xmalloc(size_t size);
void *firn_xcalloc(size_t count, size_t size);
void *firn_xrealloc(void *p, size_t size);
/* realloc(p, count * size), aborting when the product overflows. */
void *firn_xreallocarray(void *p, size_t count, size_t size);
char *firn_xstrdup(const char *s);
char *firn_xstrndup(const char *s, size_t len);
/* A malloc'd copy of len bytes. */
void *firn_xmemdup(const void *p, size_t len);
/* A malloc'd string formatted as by printf. */
char *firn_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print "firn: out of memory (size bytes)" and abort: for a library that
 * reports its own allocation failure (PCRE2, yaml, zlib...). */
_Noreturn void firn_oom(size_t size);

/* The array v (n used of *cap) with room for one more element: v itself
 * when there is room, else v reallocated to twice *cap (initial when
 * empty) with *cap updated.  Never NULL: n elements are already in memory,
 * so the doubling is an internal size (see the policy above). */
void *firn_grow(void *v, size_t n, size_t *cap, size_t elem, size_t initial);

/* ---- arenas --------------------------------------------------------------
 *
 * Per-request and per-profile work allocates from a firn_arena and frees
 * everything at once.  An arena is not thread-safe; give each thread or
 * each unit of work its own.  Chunks come from firn_xmalloc. */

typedef struct firn_arena firn_arena;

/* A bump allocator over a list of chunks.  chunk_size is the size of the
 * regular chunks (0 picks a default); larger requests get a chunk of their
 * own.  Never NULL. */
firn_arena *firn_arena_new(size_t chunk_size);
void firn_arena_free(firn_arena *a);
/* Forget everything allocated from a, keeping one chunk of the arena's
 * chunk size for what comes next (a scratch arena reused per item). */
void firn_arena_reset(firn_arena *a);

/* 16-byte aligned, uninitialized.  NULL only when size (or count * size)
 * overflows size_t, which a size already checked against a cap never does;
 * running out of memory aborts. */
void *firn_arena_alloc(firn_arena *a, size_t size);
void *firn_arena_calloc(firn_arena *a, size_t count, size_t size);
/* Copy len bytes and add a NUL; never NULL. */
char *firn_arena_strndup(firn_arena *a, const char *s, size_t len);
/* A copy of the string s in a; NULL only when s is NULL. */
char *firn_arena_strdup(firn_arena *a, const char *s);
/* firn_grow for an array that lives in the arena a: v itself when there
 * is room for one more element, else a copy of its n elements in a new
 * block of twice *cap (initial when empty), *cap updated; the old block
 * stays in the arena until it is freed.  Never NULL: n elements are
 * already in memory. */
void *firn_arena_grow(firn_arena *a, void *v, size_t n, size_t *cap, size_t elem, size_t initial);
/* Bytes obtained from the system so far (chunks included). */
size_t firn_arena_bytes(const firn_arena *a);

/* Malloc settings for programs that decode profile after profile: keep
 * buffers up to 32 MiB on the heap instead of mapping and unmapping them
 * per request, and return free heap to the kernel only past 64 MiB.  The
 * page faults this avoids cost more than decoding itself (see `firnctl
 * bench decode`).  Call once at the start of main(). */
void firn_tune_malloc(void);

#endif
