/* arena.c -- bump allocation over a singly linked list of chunks.
 *
 * Invariant: `head` is the chunk being carved; `used <= size` for every chunk.
 * Oversized requests get a dedicated chunk linked *behind* the head so the
 * head's free space is not wasted.
 */
#include "model/alloc.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16
#define ARENA_DEFAULT_CHUNK (64 * 1024)

struct chunk {
    struct chunk *next;
    size_t size;
    size_t used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

struct firn_arena {
    struct chunk *head;
    size_t chunk_size;
    size_t bytes;
};

static struct chunk *chunk_new(firn_arena *a, size_t size)
{
    if (size > SIZE_MAX - sizeof(struct chunk))
        return NULL;
    struct chunk *c = firn_xmalloc(sizeof(struct chunk) + size);
    c->size = size;
    c->used = 0;
    c->next = NULL;
    a->bytes += sizeof(struct chunk) + size;
    return c;
}

firn_arena *firn_arena_new(size_t chunk_size)
{
    firn_arena *a = firn_xcalloc(1, sizeof *a);
    a->chunk_size = chunk_size ? chunk_size : ARENA_DEFAULT_CHUNK;
    return a;
}

void firn_arena_free(firn_arena *a)
{
    if (!a)
        return;
    struct chunk *c = a->head;
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
}

void firn_arena_reset(firn_arena *a)
{
    struct chunk *keep = NULL, *c = a->head;
    while (c) {
        struct chunk *next = c->next;
        if (!keep && c->size == a->chunk_size)
            keep = c;
        else
            free(c);
        c = next;
    }
    a->head = keep;
    a->bytes = 0;
    if (keep) {
        keep->next = NULL;
        keep->used = 0;
        a->bytes = sizeof *keep + keep->size;
    }
}

void *firn_arena_alloc(firn_arena *a, size_t size)
{
    if (size > SIZE_MAX - ARENA_ALIGN)
        return NULL;
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (size == 0)
        size = ARENA_ALIGN;
    struct chunk *h = a->head;
    assert(!h || h->used <= h->size);
    if (h && h->size - h->used >= size) {
        void *p = h->data + h->used;
        h->used += size;
        assert(h->used <= h->size);
        return p;
    }
    if (size > a->chunk_size / 4) {
        struct chunk *c = chunk_new(a, size);
        if (!c)
            return NULL;
        c->used = size;
        assert(c->size == size);
        if (h) {
            c->next = h->next;
            h->next = c;
        } else {
            a->head = c;
        }
        return c->data;
    }
    struct chunk *c = chunk_new(a, a->chunk_size);
    if (!c)
        return NULL;
    c->next = h;
    a->head = c;
    c->used = size;
    assert(c->used <= c->size);
    return c->data;
}

void *firn_arena_calloc(firn_arena *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = firn_arena_alloc(a, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void *firn_arena_grow(firn_arena *a, void *v, size_t n, size_t *cap, size_t elem, size_t initial)
{
    assert(n <= *cap && initial > 0);
    if (n < *cap)
        return v;
    size_t want = *cap ? *cap * 2 : initial;
    if (want < *cap || (elem && want > SIZE_MAX / elem))
        firn_oom(SIZE_MAX);
    void *grown = firn_arena_alloc(a, want * elem);
    assert(grown);   /* want * elem fits (checked), and chunks do not fail */
    if (n)
        memcpy(grown, v, n * elem);
    *cap = want;
    return grown;
}

char *firn_arena_strdup(firn_arena *a, const char *s)
{
    return s ? firn_arena_strndup(a, s, strlen(s)) : NULL;
}

char *firn_arena_strndup(firn_arena *a, const char *s, size_t len)
{
    if (len == SIZE_MAX)
        firn_oom(SIZE_MAX);   /* no string in memory is that long */
    char *p = firn_arena_alloc(a, len + 1);
    assert(p);   /* len + 1 fits, and firn_xmalloc does not fail */
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

size_t firn_arena_bytes(const firn_arena *a)
{
    return a->bytes;
}
