/* gzip.c -- capped gunzip and gzip for pprof bodies (zlib).
 *
 * Inflate grows its output buffer geometrically but never past max_out, so a
 * small gzip bomb costs at most max_out bytes before it is refused.  Several
 * concatenated gzip members decode as one stream, as Go's gzip reader does.
 */
#include "internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

bool pprof_is_gzip(const void *data, size_t len)
{
    const unsigned char *b = data;
    return len >= 2 && b[0] == 0x1f && b[1] == 0x8b;
}

int pprof_gunzip(const void *data, size_t len, size_t max_out,
                 unsigned char **out, size_t *out_len, firn_err *err)
{
    *out = NULL;
    *out_len = 0;
    if (len > UINT32_MAX)
        return firn_errf(err, FIRN_ETOOBIG, "gzip: input of %zu bytes is too large", len);

    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int init = inflateInit2(&zs, 16 + MAX_WBITS);
    if (init == Z_MEM_ERROR)
        firn_oom(0);   /* zlib's own allocation (its state and window) failed */
    if (init != Z_OK)
        return firn_errf(err, FIRN_EINVAL, "gzip: cannot initialize zlib (%d)", init);

    /* The gzip trailer's ISIZE is the size mod 2^32 of the last member: for
     * the usual single member under 4 GiB it is exact, so one allocation
     * (plus a byte to see the end) usually suffices.  It is a hint only:
     * the loop below still grows, and still stops at max_out. */
    size_t isize = 0;
    if (len >= 18) {
        const unsigned char *tail = (const unsigned char *)data + len - 4;
        isize = (size_t)tail[0] | (size_t)tail[1] << 8 | (size_t)tail[2] << 16 |
                (size_t)tail[3] << 24;
    }
    size_t cap = isize >= len / 2 ? isize + 1 : (len < 4096 ? 16384 : len * 4);
    if (cap > max_out)
        cap = max_out;
    if (cap == 0)
        cap = 1;
    unsigned char *buf = firn_xmalloc(cap);   /* at most max_out: capped above */

    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)len;
    size_t used = 0;
    int rc = FIRN_OK;
    for (;;) {
        if (used == cap) {
            if (cap >= max_out) {
                /* Full at the cap: fine only if the stream ends right here. */
                unsigned char probe;
                zs.next_out = &probe;
                zs.avail_out = 1;
                int z = inflate(&zs, Z_NO_FLUSH);
                if (z == Z_STREAM_END && zs.avail_out == 1 && zs.avail_in == 0)
                    break;
                rc = firn_errf(err, FIRN_ETOOBIG,
                               "gzip: decompressed size exceeds the cap of %zu bytes", max_out);
                break;
            }
            /* Doubling, but never past the cap (growth is capped, so not
             * firn_grow). */
            cap = cap > max_out / 2 ? max_out : cap * 2;
            buf = firn_xrealloc(buf, cap);
        }
        size_t room = cap - used;
        if (room > UINT32_MAX)
            room = UINT32_MAX;
        zs.next_out = buf + used;
        zs.avail_out = (uInt)room;
        int z = inflate(&zs, Z_NO_FLUSH);
        used += room - zs.avail_out;
        if (z == Z_STREAM_END) {
            if (zs.avail_in == 0)
                break;
            /* Another gzip member follows. */
            if (inflateReset(&zs) != Z_OK) {
                rc = firn_errf(err, FIRN_EINVAL, "gzip: cannot start the next member");
                break;
            }
            continue;
        }
        if (z == Z_OK)
            continue;
        if (z == Z_BUF_ERROR && zs.avail_in == 0) {
            rc = firn_errf(err, FIRN_EINVAL,
                           "gzip: truncated stream after %zu decompressed bytes", used);
            break;
        }
        if (z == Z_MEM_ERROR)
            firn_oom(0);   /* zlib's own allocation failed */
        rc = firn_errf(err, FIRN_EINVAL, "gzip: corrupt data at input byte %zu: %s",
                       len - zs.avail_in, zs.msg ? zs.msg : "invalid stream");
        break;
    }
    inflateEnd(&zs);
    if (rc != FIRN_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = used;
    return FIRN_OK;
}

int pprof_gzip(const void *data, size_t len, int level,
               unsigned char **out, size_t *out_len, firn_err *err)
{
    *out = NULL;
    *out_len = 0;
    if (len > UINT32_MAX)
        return firn_errf(err, FIRN_ETOOBIG, "gzip: input of %zu bytes is too large", len);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int init = deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    if (init == Z_MEM_ERROR)
        firn_oom(0);   /* zlib's own allocation (its state and window) failed */
    if (init != Z_OK)
        return firn_errf(err, FIRN_EINVAL, "gzip: bad compression level %d", level);
    size_t cap = deflateBound(&zs, (uLong)len);
    unsigned char *buf = firn_xmalloc(cap);
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)len;
    zs.next_out = buf;
    zs.avail_out = (uInt)cap;
    int z = deflate(&zs, Z_FINISH);
    size_t produced = cap - zs.avail_out;
    deflateEnd(&zs);
    /* zlib promises that Z_FINISH into deflateBound's size ends the stream. */
    assert(z == Z_STREAM_END);
    (void)z;
    *out = buf;
    *out_len = produced;
    return FIRN_OK;
}
