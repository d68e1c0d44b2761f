/* model.h -- the vocabulary every firn layer shares: errors and arenas.
 *
 * model/ sits below every other module (pprof/ included): it knows nothing of
 * profiles, storage, HTTP or the query language.  Later additions (labels,
 * label matchers, logging) land here too so that the query parser can build
 * matchers the store evaluates without the store knowing the parser.
 *
 * Errors: a function that can fail returns an int (0 = ok, a negative
 * firn_status on error) or a pointer (NULL on error) and fills the caller's
 * firn_err with one human sentence naming what failed and where.
 *
 * Arenas: per-request and per-profile work allocates from a firn_arena and
 * frees everything at once.  An arena is not thread-safe; give each thread or
 * each unit of work its own.
 */
#ifndef FIRN_MODEL_H
#define FIRN_MODEL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors ---------------------------------------------------------- */

enum firn_status {
    FIRN_OK = 0,
    FIRN_EINVAL = -1,   /* bad input: malformed, out of range, inconsistent */
    FIRN_ENOMEM = -2,   /* allocation failed */
    FIRN_EIO = -3,      /* read/write/system call failed */
    FIRN_ETOOBIG = -4,  /* input exceeds a configured cap */
};

#define FIRN_ERR_MSG_MAX 512

typedef struct firn_err {
    int code;                    /* a firn_status, FIRN_OK when unset */
    char msg[FIRN_ERR_MSG_MAX];  /* "what: where: why", NUL-terminated */
} firn_err;

/* Fill err (if not NULL) with code and a printf-style message; returns code so
 * callers can write `return firn_errf(err, FIRN_EINVAL, "...")`. */
int firn_errf(firn_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepend "prefix: " to an error already set, to add context on the way up
 * ("fixture.pb.gz: " + "sample 3: ..."). */
void firn_err_prefix(firn_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void firn_err_clear(firn_err *err);

/* ---- arenas ---------------------------------------------------------- */

typedef struct firn_arena firn_arena;

/* A bump allocator over a list of chunks.  chunk_size is the size of the
 * regular chunks (0 picks a default); larger requests get a chunk of their
 * own.  Returns NULL when out of memory. */
firn_arena *firn_arena_new(size_t chunk_size);
void firn_arena_free(firn_arena *a);

/* 16-byte aligned, uninitialized; NULL when out of memory or on overflow. */
void *firn_arena_alloc(firn_arena *a, size_t size);
void *firn_arena_calloc(firn_arena *a, size_t count, size_t size);
/* Copy len bytes and add a NUL. */
char *firn_arena_strndup(firn_arena *a, const char *s, size_t len);
/* Bytes obtained from the system so far (chunks included). */
size_t firn_arena_bytes(const firn_arena *a);

/* ---- process --------------------------------------------------------- */

/* Malloc settings for programs that decode profile after profile: keep
 * buffers up to 32 MiB on the heap instead of mapping and unmapping them
 * per request, and return free heap to the kernel only past 64 MiB.  The
 * page faults this avoids cost more than decoding itself (see `firnctl
 * bench decode`).  Call once at the start of main(). */
void firn_tune_malloc(void);

/* ---- files ----------------------------------------------------------- */

/* Read a whole file (or standard input for "-") into a malloc'd buffer;
 * FIRN_ETOOBIG when it is larger than max bytes. */
int firn_read_file(const char *path, size_t max, unsigned char **out, size_t *out_len,
                   firn_err *err);

/* Write len bytes to path through a temporary file and rename(2), so a
 * reader never sees a half-written file. */
int firn_write_file_atomic(const char *path, const void *data, size_t len, firn_err *err);

/* ---- u64 -> u32 hash map --------------------------------------------- */

/* Open addressing, linear probing; keys are arbitrary uint64 values (0 is a
 * valid key).  Used to map sparse ids to dense indexes and hashes to slots. */
typedef struct firn_u64map {
    uint64_t *keys;
    uint32_t *vals;
    uint8_t *used;
    size_t cap;     /* power of two */
    size_t len;
} firn_u64map;

int firn_u64map_init(firn_u64map *m, size_t expected);
void firn_u64map_destroy(firn_u64map *m);
/* Insert key -> val.  Returns 1 if inserted, 0 if the key existed (its value
 * is left unchanged and written to *existing if not NULL), negative on OOM. */
int firn_u64map_put(firn_u64map *m, uint64_t key, uint32_t val, uint32_t *existing);
/* Returns 1 and sets *val when found, 0 otherwise. */
int firn_u64map_get(const firn_u64map *m, uint64_t key, uint32_t *val);

#endif
