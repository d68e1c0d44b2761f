/* codec.c -- byte encodings of the store's keys and values.
 *
 * Keys are big-endian so that LMDB's bytewise order is numeric order and a
 * time range of one series is one key range.  Values are varints: a block
 * stores its samples sorted by stack id, in columns: the id deltas, then
 * label set ids, then the values divided by their greatest common divisor
 * (CPU profiles count in multiples of the sampling period), so a typical
 * sample costs three bytes before zstd and one and a half after.
 */
#include "internal.h"

#include <assert.h>
#include <endian.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY   /* XXH3_state_t on the stack */
#include <xxhash.h>
#include <zlib.h>
#include <zstd.h>

void tsdb_buf_varint(firn_buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (unsigned char)v;
    firn_buf_append(b, tmp, n);
}

void tsdb_buf_zigzag(firn_buf *b, int64_t v)
{
    tsdb_buf_varint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void tsdb_buf_bytes(firn_buf *b, const void *data, size_t n)
{
    tsdb_buf_varint(b, n);
    firn_buf_append(b, data, n);
}

/* Room for n more bytes after b's end, for a library that writes into the
 * buffer itself (zstd); the caller then sets len and the NUL.  The store's
 * buffers have no cap, so this is the same growth firn_buf_append does. */
static void buf_room(firn_buf *b, size_t n)
{
    assert(!b->max && n < SIZE_MAX - 1 - b->len);
    if (b->cap < b->len + n + 1) {
        b->data = firn_xrealloc(b->data, b->len + n + 1);
        b->cap = b->len + n + 1;
    }
}

const unsigned char *tsdb_cur_bytes(struct cur *c, size_t *len)
{
    uint64_t n = tsdb_cur_varint(c);
    if (c->bad || n > (uint64_t)(c->end - c->p)) {
        c->bad = true;
        c->p = c->end;
        *len = 0;
        return (const unsigned char *)"";
    }
    const unsigned char *s = c->p;
    c->p += n;
    *len = (size_t)n;
    return s;
}

void tsdb_be32_put(unsigned char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

void tsdb_be64_put(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

uint32_t tsdb_be32_get(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t tsdb_be64_get(const unsigned char *p)
{
    return (uint64_t)tsdb_be32_get(p) << 32 | tsdb_be32_get(p + 4);
}

void tsdb_sym_key(unsigned char out[SYM_KEY_LEN], uint32_t partition, enum sym_kind kind, uint32_t id)
{
    tsdb_be32_put(out, partition);
    out[4] = (unsigned char)kind;
    tsdb_be32_put(out + 5, id);
}

void tsdb_sym_idx_key(unsigned char out[SYM_IDX_KEY_LEN], uint32_t partition, enum sym_kind kind,
                 pprof_hash h)
{
    tsdb_be32_put(out, partition);
    out[4] = (unsigned char)kind;
    tsdb_be64_put(out + 5, h.hi);
    tsdb_be64_put(out + 13, h.lo);
}

void tsdb_sample_key(unsigned char out[SAMPLE_KEY_LEN], uint64_t series, int64_t ts)
{
    /* timestamps are >= 0 (checked on append), so big-endian order is time order */
    assert(ts >= 0);
    tsdb_be64_put(out, series);
    tsdb_be64_put(out + 8, (uint64_t)ts);
}

size_t tsdb_posting_key(unsigned char *out, const char *name, const char *value, bool *is_long)
{
    size_t nl = strlen(name), vl = strlen(value);
    memcpy(out, name, nl);
    out[nl] = 0;
    if (nl + 1 + vl <= POSTING_KEY_MAX) {
        memcpy(out + nl + 1, value, vl);
        *is_long = false;
        return nl + 1 + vl;
    }
    memcpy(out + nl + 1, value, POSTING_LONG_CUT);
    unsigned char *p = out + nl + 1 + POSTING_LONG_CUT;
    *p++ = 0xff;
    XXH128_hash_t h = XXH3_128bits(value, vl);
    tsdb_be64_put(p, h.high64);
    tsdb_be64_put(p + 8, h.low64);
    *is_long = true;
    return nl + 1 + POSTING_LONG_CUT + 1 + 16;
}

/* A label set's identity needs one order: sorted by name, names unique. */
__attribute__((unused)) static bool labels_sorted(const firn_label *labels, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (strcmp(labels[i - 1].name, labels[i].name) >= 0)
            return false;
    return true;
}

pprof_hash tsdb_labels_hash(const firn_label *labels, size_t n)
{
    assert(labels_sorted(labels, n));
    XXH3_state_t st;
    XXH3_128bits_reset(&st);
    for (size_t i = 0; i < n; i++) {
        uint64_t nl = strlen(labels[i].name), vl = strlen(labels[i].value);
        XXH3_128bits_update(&st, &nl, sizeof nl);
        XXH3_128bits_update(&st, labels[i].name, nl);
        XXH3_128bits_update(&st, &vl, sizeof vl);
        XXH3_128bits_update(&st, labels[i].value, vl);
    }
    XXH128_hash_t h = XXH3_128bits_digest(&st);
    pprof_hash r = {h.low64, h.high64};
    return r;
}

void tsdb_series_encode(firn_buf *b, const firn_label *labels, size_t n, int64_t min_ts,
                        int64_t max_ts, bool floats)
{
    assert(labels_sorted(labels, n) && min_ts <= max_ts);
    b->len = 0;
    tsdb_buf_zigzag(b, min_ts);
    tsdb_buf_zigzag(b, max_ts);
    tsdb_buf_varint(b, n);
    for (size_t i = 0; i < n; i++) {
        tsdb_buf_bytes(b, labels[i].name, strlen(labels[i].name));
        tsdb_buf_bytes(b, labels[i].value, strlen(labels[i].value));
    }
    if (floats) {
        unsigned char kind = SERIES_KIND_FLOAT;
        firn_buf_append(b, &kind, 1);
    }
}

bool tsdb_series_record_floats(const MDB_val *v)
{
    struct cur c = {v->mv_data, (const unsigned char *)v->mv_data + v->mv_size, false};
    tsdb_cur_zigzag(&c);
    tsdb_cur_zigzag(&c);
    uint64_t n = tsdb_cur_varint(&c);
    for (uint64_t i = 0; i < n && !c.bad; i++) {
        size_t l;
        tsdb_cur_bytes(&c, &l);
        tsdb_cur_bytes(&c, &l);
    }
    return !c.bad && c.end - c.p == 1 && *c.p == SERIES_KIND_FLOAT;
}

int tsdb_series_decode(const MDB_val *v, firn_arena *arena, tsdb_series *out, firn_err *err)
{
    struct cur c = {v->mv_data, (const unsigned char *)v->mv_data + v->mv_size, false};
    out->min_time_ms = tsdb_cur_zigzag(&c);
    out->max_time_ms = tsdb_cur_zigzag(&c);
    uint64_t n = tsdb_cur_varint(&c);
    if (c.bad || n > FIRN_LABELS_MAX + 1)
        return firn_errf(err, FIRN_EIO, "series %llu: corrupt series record",
                         (unsigned long long)out->id);
    out->labels = firn_arena_alloc(arena, (n ? n : 1) * sizeof *out->labels);
    for (uint64_t i = 0; i < n; i++) {
        size_t nl, vl;
        const unsigned char *name = tsdb_cur_bytes(&c, &nl);
        const unsigned char *value = tsdb_cur_bytes(&c, &vl);
        out->labels[i].name = firn_arena_strndup(arena, (const char *)name, nl);
        out->labels[i].value = firn_arena_strndup(arena, (const char *)value, vl);
    }
    if (c.bad || c.end - c.p > 1 || (c.end - c.p == 1 && *c.p != SERIES_KIND_FLOAT))
        return firn_errf(err, FIRN_EIO, "series %llu: corrupt series record",
                         (unsigned long long)out->id);
    out->n_labels = (size_t)n;
    out->floats = c.end - c.p == 1;
    return 0;
}

static int cmp_block_sample(const void *a, const void *b)
{
    const struct block_sample *x = a, *y = b;
    if (x->stack != y->stack)
        return x->stack < y->stack ? -1 : 1;
    if (x->labelset != y->labelset)
        return x->labelset < y->labelset ? -1 : 1;
    return 0;
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static uint64_t magnitude(int64_t v)
{
    return v < 0 ? -(uint64_t)v : (uint64_t)v;
}

/* Compresses body into b after the header when that saves at least an
 * eighth; returns whether it did. */
static bool put_compressed(firn_buf *b, const firn_buf *body, ZSTD_CCtx *zstd)
{
    if (body->len < BLOCK_COMPRESS_MIN)
        return false;
    size_t bound = ZSTD_compressBound(body->len);
    size_t at = b->len;
    tsdb_buf_varint(b, body->len);
    size_t head = b->len;
    /* room for the bound, then cut back to what zstd wrote */
    buf_room(b, bound);
    size_t z = ZSTD_compressCCtx(zstd, b->data + head, bound, body->data, body->len,
                                 BLOCK_ZSTD_LEVEL);
    if (ZSTD_isError(z) || z > body->len - body->len / 8) {
        b->len = at;
        b->data[at] = '\0';
        return false;
    }
    b->len = head + z;
    b->data[b->len] = '\0';
    return true;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes the stack column of s (sorted) as a bitmap when the ids are
 * distinct and the bitmap is shorter than their deltas; returns whether it
 * did.  A profile holds a third to nine tenths of its partition's stacks
 * (bench fleet), so its ids are dense: a bitmap takes a bit or a few per
 * sample where a delta takes a byte, and zstd, whose time goes with the
 * bytes it restores, then has 40% fewer bytes to restore
 * (docs/ARCHITECTURE.md, "Merges and rollups"). */
static bool stack_bitmap(firn_buf *body, const struct block_sample *s, size_t n)
{
    if (n == 0)
        return false;
    size_t deltas = 0;
    uint32_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && s[i].stack == prev)
            return false;   /* label sets of one stack: ids repeat */
        deltas += varint_len(s[i].stack - prev);
        prev = s[i].stack;
    }
    uint32_t first = s[0].stack;
    size_t bytes = ((size_t)(s[n - 1].stack - first)) / 8 + 1;
    if (varint_len(first) + varint_len(bytes) + bytes >= deltas)
        return false;
    tsdb_buf_varint(body, first);
    tsdb_buf_varint(body, bytes);
    size_t at = body->len;
    buf_room(body, bytes);
    memset(body->data + at, 0, bytes);
    unsigned char *bm = (unsigned char *)body->data + at;
    for (size_t i = 0; i < n; i++) {
        uint32_t k = s[i].stack - first;
        bm[k / 8] |= (unsigned char)(1u << (k % 8));
    }
    body->len = at + bytes;
    body->data[body->len] = '\0';
    return true;
}

size_t tsdb_block_encode(firn_buf *b, firn_buf *body, ZSTD_CCtx *zstd, struct block_sample *s,
                         size_t n, int64_t duration_nanos, int64_t period)
{
    assert(zstd);
    firn_sort(s, n, sizeof *s, cmp_block_sample);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (kept && s[kept - 1].stack == s[i].stack && s[kept - 1].labelset == s[i].labelset)
            s[kept - 1].value = pprof_add_sat(s[kept - 1].value, s[i].value);
        else
            s[kept++] = s[i];
    }
    assert(kept <= n);
    int64_t total = 0;
    uint64_t g = 0;
    unsigned flags = 0;
    for (size_t i = 0; i < kept; i++) {
        total = pprof_add_sat(total, s[i].value);
        g = gcd64(g, magnitude(s[i].value));
        if (s[i].labelset)
            flags |= BLOCK_HAS_LABELSETS;
    }
    if (g == 0 || g > INT64_MAX)
        g = 1;
    /* Columns: zstd packs them as well as rows (docs/ARCHITECTURE.md,
     * "Blocks"), and a reader decodes each in one tight loop.  Equal
     * (stack, labelset) pairs were summed, so a stack delta is 0 only
     * between label sets of one stack. */
    body->len = 0;
    if (stack_bitmap(body, s, kept)) {
        flags |= BLOCK_STACK_BITMAP;
    } else {
        uint32_t prev = 0;
        for (size_t i = 0; i < kept; i++) {
            assert(s[i].stack >= prev);   /* sorted: the deltas are never negative */
            tsdb_buf_varint(body, s[i].stack - prev);
            prev = s[i].stack;
        }
    }
    if (flags & BLOCK_HAS_LABELSETS)
        for (size_t i = 0; i < kept; i++)
            tsdb_buf_varint(body, s[i].labelset);
    for (size_t i = 0; i < kept; i++)
        /* exact, as g divides every value; in range as 1 <= g <= INT64_MAX
         * (negating the magnitude would overflow for INT64_MIN) */
        tsdb_buf_zigzag(body, s[i].value / (int64_t)g);
    b->len = 0;
    unsigned char head[2] = {BLOCK_VERSION, (unsigned char)flags};
    firn_buf_append(b, head, 2);
    tsdb_buf_varint(b, kept);
    tsdb_buf_zigzag(b, total);
    tsdb_buf_zigzag(b, duration_nanos);
    tsdb_buf_zigzag(b, period);
    tsdb_buf_varint(b, g);
    if (put_compressed(b, body, zstd))
        b->data[1] |= BLOCK_ZSTD;
    else
        firn_buf_append(b, body->data, body->len);
    return kept;
}

void tsdb_block_scratch_free(struct block_scratch *s)
{
    firn_buf_free(&s->body);
    ZSTD_freeDCtx(s->zstd);
    s->zstd = NULL;
}

int tsdb_block_open(struct block_reader *br, const MDB_val *v, struct block_scratch *scratch)
{
    memset(br, 0, sizeof *br);
    br->c.p = v->mv_data;
    br->c.end = br->c.p + v->mv_size;
    if (v->mv_size < 2)
        return -1;
    br->version = br->c.p[0];
    br->flags = br->c.p[1];
    unsigned compressed = br->version == BLOCK_VERSION ? BLOCK_ZSTD
                          : br->version == BLOCK_VERSION_ROWS ? BLOCK_DEFLATE
                                                              : 0;
    unsigned bitmap = br->version == BLOCK_VERSION ? BLOCK_STACK_BITMAP : 0;
    if (!compressed || (br->flags & ~(BLOCK_HAS_LABELSETS | compressed | bitmap)))
        return -1;
    br->c.p += 2;
    br->n = tsdb_cur_varint(&br->c);
    br->total = tsdb_cur_zigzag(&br->c);
    br->duration_nanos = tsdb_cur_zigzag(&br->c);
    br->period = tsdb_cur_zigzag(&br->c);
    br->gcd = tsdb_cur_varint(&br->c);
    uint64_t raw_len = (br->flags & compressed) ? tsdb_cur_varint(&br->c) : 0;
    if (br->c.bad || br->gcd == 0)
        return -1;
    br->header_len = (size_t)(br->c.p - (const unsigned char *)v->mv_data);
    if (!scratch) {   /* header only */
        br->c.p = br->c.end;
        return 0;
    }
    if (br->flags & compressed) {
        if (raw_len > BLOCK_RAW_MAX || raw_len < br->n)
            return -1;
        /* raw_len is capped above: the allocation is the store's own */
        firn_buf *body = &scratch->body;
        body->len = 0;
        buf_room(body, raw_len);
        unsigned char *raw = (unsigned char *)body->data;
        size_t in_len = (size_t)(br->c.end - br->c.p);
        if (compressed == BLOCK_ZSTD) {
            if (!scratch->zstd && !(scratch->zstd = ZSTD_createDCtx()))
                firn_oom(0);   /* zstd's allocation: the policy of model/alloc.h */
            size_t got = ZSTD_decompressDCtx(scratch->zstd, raw, raw_len, br->c.p, in_len);
            if (ZSTD_isError(got) || got != raw_len)
                return -1;
        } else {
            uLongf got = raw_len;
            if (uncompress(raw, &got, br->c.p, (uLong)in_len) != Z_OK || got != raw_len)
                return -1;
        }
        body->len = raw_len;
        body->data[raw_len] = '\0';
        br->c.p = raw;
        br->c.end = raw + raw_len;
    }
    /* each sample takes at least a byte (its value) */
    if (br->n > (uint64_t)(br->c.end - br->c.p))
        return -1;
    return 0;
}

/* A stored quotient times the block's gcd, saturated. */
static int64_t scaled(int64_t q, uint64_t gcd)
{
    int64_t v;
    if (__builtin_mul_overflow(q, (int64_t)gcd, &v))
        v = q < 0 ? INT64_MIN : INT64_MAX;
    return v;
}

/* Eight one-byte varints at p (eight bytes with no continuation bit):
 * most stack id deltas and value quotients are, and a column decodes them
 * eight at a time, with no branch per value. */
static inline bool eight_short(const unsigned char *p, const unsigned char *end)
{
    if (end - p < 8)
        return false;
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return !(w & 0x8080808080808080ull);
}

int tsdb_block_decode(struct block_reader *br, uint32_t *stacks, uint32_t *labelsets,
                      int64_t *values)
{
    struct cur *c = &br->c;
    bool labels = br->flags & BLOCK_HAS_LABELSETS;
    uint32_t stack = 0;
    if (br->version == BLOCK_VERSION_ROWS) {
        for (uint64_t i = 0; i < br->n; i++) {
            uint64_t delta = tsdb_cur_varint(c);
            uint64_t ls = labels ? tsdb_cur_varint(c) : 0;
            int64_t q = tsdb_cur_zigzag(c);
            if (c->bad || delta > UINT32_MAX - stack || ls > UINT32_MAX)
                return -1;
            stack += (uint32_t)delta;
            stacks[i] = stack;
            labelsets[i] = (uint32_t)ls;
            values[i] = scaled(q, br->gcd);
        }
        return 0;
    }
    /* The columns of version 2, each in its own loop over locals (the
     * cursor's fields would be reloaded after every store). */
    const unsigned char *p = c->p, *end = c->end;
    bool bad = false;
    uint64_t n = br->n, i = 0;
    if (br->flags & BLOCK_STACK_BITMAP) {
        uint64_t first = tsdb_varint_at(&p, end, &bad);
        uint64_t bytes = tsdb_varint_at(&p, end, &bad);
        /* the bitmap lies in the body, and its last id fits 32 bits */
        if (bad || bytes == 0 || bytes > (uint64_t)(end - p) || first > UINT32_MAX)
            return -1;
        uint64_t top = bytes - 1;
        while (top > 0 && !p[top])
            top--;
        if (p[top] && first + top * 8 + (uint64_t)(31 - __builtin_clz(p[top])) > UINT32_MAX)
            return -1;
        for (uint64_t at = 0; at < bytes; at += 8) {
            uint64_t w = 0;
            memcpy(&w, p + at, bytes - at < 8 ? (size_t)(bytes - at) : 8);
            w = le64toh(w);
            /* ids past n: a corrupt block (its count and bitmap disagree) */
            if ((uint64_t)__builtin_popcountll(w) > n - i)
                return -1;
            while (w) {
                stacks[i++] = (uint32_t)(first + at * 8 + (uint64_t)__builtin_ctzll(w));
                w &= w - 1;
            }
        }
        if (i != n)
            return -1;
        p += bytes;
        i = n;   /* the delta loop below has nothing left to read */
    }
    while (i < n) {
        /* eight deltas below 128 cannot take stack past UINT32_MAX unless
         * it is within 1,016 of it (then one at a time, checked) */
        if (n - i >= 8 && stack <= UINT32_MAX - 8 * 127 && eight_short(p, end)) {
            for (int k = 0; k < 8; k++)
                stacks[i + k] = stack += p[k];
            p += 8;
            i += 8;
            continue;
        }
        uint64_t delta = tsdb_varint_at(&p, end, &bad);
        if (delta > UINT32_MAX - stack)
            return -1;
        stack += (uint32_t)delta;
        stacks[i++] = stack;
    }
    if (!labels && n)   /* (n == 0: the arrays may be NULL) */
        memset(labelsets, 0, n * sizeof *labelsets);
    for (i = 0; i < n && labels; i++) {
        uint64_t ls = tsdb_varint_at(&p, end, &bad);
        if (ls > UINT32_MAX)
            return -1;
        labelsets[i] = (uint32_t)ls;
    }
    uint64_t gcd = br->gcd;
    for (i = 0; i < n;) {
        if (n - i >= 8 && eight_short(p, end)) {
            /* one-byte quotients (|q| <= 64) times the gcd: exact when the
             * gcd is at most INT64_MAX / 64, else scaled() saturates */
            if (gcd <= (uint64_t)INT64_MAX / 64)
                for (int k = 0; k < 8; k++)
                    values[i + k] = ((int64_t)(p[k] >> 1) ^ -(int64_t)(p[k] & 1)) * (int64_t)gcd;
            else
                for (int k = 0; k < 8; k++)
                    values[i + k] = scaled((int64_t)(p[k] >> 1) ^ -(int64_t)(p[k] & 1), gcd);
            p += 8;
            i += 8;
            continue;
        }
        uint64_t z = tsdb_varint_at(&p, end, &bad);
        values[i++] = scaled((int64_t)(z >> 1) ^ -(int64_t)(z & 1), gcd);
    }
    c->p = p;
    c->bad = c->bad || bad;
    /* a version 2 body is exactly its three columns */
    return c->bad || c->p != c->end ? -1 : 0;
}

bool tsdb_block_same(const MDB_val *x, const MDB_val *y)
{
    struct block_scratch sx = {0}, sy = {0};
    struct block_reader a, b;
    bool same = false;
    if (tsdb_block_open(&a, x, &sx) == 0 && tsdb_block_open(&b, y, &sy) == 0 && a.n == b.n &&
        a.total == b.total && a.duration_nanos == b.duration_nanos && a.period == b.period) {
        /* n is at most the bytes of a body in memory (tsdb_block_open) */
        size_t n = (size_t)a.n, m = n ? n : 1;
        uint32_t *st = firn_xreallocarray(NULL, 2 * m, sizeof *st);
        uint32_t *ls = firn_xreallocarray(NULL, 2 * m, sizeof *ls);
        int64_t *v = firn_xreallocarray(NULL, 2 * m, sizeof *v);
        same = tsdb_block_decode(&a, st, ls, v) == 0 &&
               tsdb_block_decode(&b, st + m, ls + m, v + m) == 0 &&
               memcmp(st, st + m, n * sizeof *st) == 0 &&
               memcmp(ls, ls + m, n * sizeof *ls) == 0 && memcmp(v, v + m, n * sizeof *v) == 0;
        free(st);
        free(ls);
        free(v);
    }
    tsdb_block_scratch_free(&sx);
    tsdb_block_scratch_free(&sy);
    return same;
}
