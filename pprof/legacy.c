/* legacy.c -- the legacy binary CPU profile format, read as `go tool pprof`
 * reads it (facts from google/pprof profile/legacy_profile.go and
 * legacy_java_profile.go; the code is ours).
 *
 * gperftools' CPU profiler, Go's runtime/pprof before Go 1.9 and the legacy
 * Java agent write a sequence of machine words, all of one size (4 or 8
 * bytes) and one byte order:
 *   header   0, 3, 0 (C++/Go) or 1 (Java), period in microseconds, 0
 *   samples  count, depth, depth program counters (leaf first)
 *   trailer  0, 1, 0
 * then text: for C++/Go a /proc/self/maps listing (executable lines become
 * mappings), for Java lines "0xADDR function (file:line)" naming frames.
 * Values become samples/count and cpu/nanoseconds = count x period.
 *
 * C++/Go program counters but the leaf are return addresses: each is
 * lowered by 1 to land on the call, as pprof does.  pprof then drops a
 * second frame shared by nearly every sample (the signal handler's frame)
 * and a second frame equal to the leaf minus 1 (the leaf recorded twice);
 * both are repeated here so that stacks, not only flat values, match.
 * Java addresses are frame ids, not adjusted, and dropped once the text
 * has named them.
 *
 * Every size comes from the input and is checked against what is left of
 * it, so allocations are bounded by the (already capped) input length.
 */
#include "internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static const char WHAT[] = "legacy CPU profile";

struct words {
    const unsigned char *b;
    size_t len;
    unsigned size;   /* 4 or 8 */
    bool big;        /* big-endian */
};

static uint64_t word_at(const struct words *w, size_t at)
{
    assert(at + w->size <= w->len);
    uint64_t v = 0;
    for (unsigned i = 0; i < w->size; i++) {
        unsigned shift = w->big ? 8 * (w->size - 1 - i) : 8 * i;
        v |= (uint64_t)w->b[at + i] << shift;
    }
    return v;
}

int pprof_legacy_detect(const unsigned char *b, size_t len, bool *java)
{
    /* pprof's order: 32-bit little, 32-bit big, 64-bit little, 64-bit big. */
    static const struct {
        unsigned size;
        bool big;
    } kinds[] = {{4, false}, {4, true}, {8, false}, {8, true}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        struct words w = {b, len, kinds[k].size, kinds[k].big};
        if (len < 5u * w.size)
            continue;
        uint64_t h[5];
        for (size_t i = 0; i < 5; i++)
            h[i] = word_at(&w, i * w.size);
        if (h[0] == 0 && h[1] == 3 && h[2] <= 1 && h[3] > 0 && h[4] == 0) {
            *java = h[2] == 1;
            return (int)k;
        }
    }
    return -1;
}

/* A sample as read: its stack is addrs[off .. off+n). */
struct raw_sample {
    size_t off, n;
    int64_t count;
};

struct raw {
    uint64_t *addrs;
    struct raw_sample *s;
    size_t n, cap;
    size_t text_at;   /* where the text after the trailer starts */
};

static int read_samples(const struct words *w, bool adjust, const pprof_limits *lim,
                        struct raw *r, firn_err *err)
{
    size_t n_words = w->len / w->size;
    /* n_words was judged against the memory cap by the caller. */
    r->addrs = firn_xreallocarray(NULL, n_words ? n_words : 1, sizeof *r->addrs);
    size_t used = 0, at = 5u * w->size;
    r->text_at = w->len;
    while (at < w->len) {
        size_t start = at;
        if (w->len - at < 2u * w->size)
            return firn_errf(err, FIRN_EINVAL, "%s: sample %zu at byte %zu: truncated (%zu bytes left)",
                             WHAT, r->n, start, w->len - at);
        uint64_t count = word_at(w, at), depth = word_at(w, at + w->size);
        at += 2u * w->size;
        if (depth > (w->len - at) / w->size)
            return firn_errf(err, FIRN_EINVAL,
                             "%s: sample %zu at byte %zu: a stack of %llu words runs past the end "
                             "of the input (%zu bytes left)",
                             WHAT, r->n, start, (unsigned long long)depth, w->len - at);
        if (count == 0 && depth == 1 && word_at(w, at) == 0) {
            r->text_at = at + w->size;   /* the trailer */
            return 0;
        }
        if (count > INT64_MAX)
            return firn_errf(err, FIRN_EINVAL, "%s: sample %zu at byte %zu: count %llu is out of range",
                             WHAT, r->n, start, (unsigned long long)count);
        if (r->n >= lim->max_samples)
            return firn_errf(err, FIRN_ETOOBIG, "%s: more than %zu samples", WHAT, lim->max_samples);
        r->s = firn_grow(r->s, r->n, &r->cap, sizeof *r->s, 64);
        /* Each address was one input word: used never passes n_words. */
        assert(used + depth <= n_words);
        for (size_t i = 0; i < depth; i++, at += w->size)
            r->addrs[used + i] = word_at(w, at) - (adjust && i > 0 ? 1 : 0);
        r->s[r->n++] = (struct raw_sample){used, (size_t)depth, (int64_t)count};
        used += depth;
    }
    return 0;   /* no trailer: pprof accepts that too, with no text */
}

static void drop_second_frame(struct raw *r, struct raw_sample *s)
{
    memmove(&r->addrs[s->off + 1], &r->addrs[s->off + 2], (s->n - 2) * sizeof r->addrs[0]);
    s->n--;
}

/* pprof's two clean-ups of C++ stacks (see the file comment). */
static void drop_handler_frames(struct raw *r)
{
    size_t margin = r->n / 32;
    for (int iter = 0; iter < 2; iter++) {
        /* A frame on at least n - n/32 samples is on more than half of
         * them: the majority vote finds the only candidate. */
        uint64_t cand = 0;
        size_t votes = 0;
        for (size_t i = 0; i < r->n; i++) {
            if (r->s[i].n < 2)
                continue;
            uint64_t a = r->addrs[r->s[i].off + 1];
            if (votes == 0)
                cand = a, votes = 1;
            else
                votes += a == cand ? 1 : (size_t)-1;
        }
        size_t count = 0;
        for (size_t i = 0; i < r->n; i++)
            count += r->s[i].n > 1 && r->addrs[r->s[i].off + 1] == cand;
        if (count == 0 || count < r->n - margin)
            continue;
        for (size_t i = 0; i < r->n; i++)
            if (r->s[i].n > 1 && r->addrs[r->s[i].off + 1] == cand)
                drop_second_frame(r, &r->s[i]);
    }
    for (size_t i = 0; i < r->n; i++) {
        struct raw_sample *s = &r->s[i];
        if (s->n > 1 && r->addrs[s->off] == r->addrs[s->off + 1] + 1)
            drop_second_frame(r, s);
    }
}

/* ---- the text after the samples --------------------------------------- */

struct span {
    const char *p;
    size_t n;
};

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\n';
}

static struct span trim(struct span s)
{
    while (s.n && is_ws(s.p[0]))
        s.p++, s.n--;
    while (s.n && is_ws(s.p[s.n - 1]))
        s.n--;
    return s;
}

/* Next line of text (without its newline) from *rest. */
static bool next_line(struct span *rest, struct span *line)
{
    if (!rest->n)
        return false;
    const char *nl = memchr(rest->p, '\n', rest->n);
    size_t n = nl ? (size_t)(nl - rest->p) : rest->n;
    *line = (struct span){rest->p, n};
    rest->p += nl ? n + 1 : n;
    rest->n -= nl ? n + 1 : n;
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Hex digits at s[*i..]: at least one, and no overflow. */
static bool take_hex(struct span s, size_t *i, uint64_t *v)
{
    size_t start = *i;
    *v = 0;
    for (; *i < s.n && hexval(s.p[*i]) >= 0; (*i)++) {
        if (*v >> 60)
            return false;
        *v = *v << 4 | (uint64_t)hexval(s.p[*i]);
    }
    return *i > start;
}

static bool take_ws(struct span s, size_t *i, bool required)
{
    size_t start = *i;
    while (*i < s.n && is_ws(s.p[*i]))
        (*i)++;
    return !required || *i > start;
}

static struct span take_token(struct span s, size_t *i)
{
    size_t start = *i;
    while (*i < s.n && !is_ws(s.p[*i]))
        (*i)++;
    return (struct span){s.p + start, *i - start};
}

struct map_entry {
    uint64_t start, limit, offset;
    struct span file;
};

/* One line of the memory map: 1 and *m for an executable mapping, 0 for a
 * line to skip (not a mapping, or not executable), as pprof skips them. */
static int parse_map_line(struct span l, struct map_entry *m)
{
    size_t i = 0;
    memset(m, 0, sizeof *m);
    if (!take_hex(l, &i, &m->start) || i >= l.n || l.p[i++] != '-' || !take_hex(l, &i, &m->limit))
        return 0;
    size_t after_range = i;
    /* /proc/self/maps: start-limit perms offset dev:dev inode [file] */
    if (take_ws(l, &i, true)) {
        size_t p0 = i;
        while (i < l.n && l.p[i] && strchr("-rwxp", l.p[i]))
            i++;
        struct span perms = {l.p + p0, i - p0};
        uint64_t off, dev;
        if (perms.n && take_ws(l, &i, true) && take_hex(l, &i, &off) && take_ws(l, &i, true) &&
            take_hex(l, &i, &dev) && i < l.n && l.p[i++] == ':' && take_hex(l, &i, &dev) &&
            take_ws(l, &i, true)) {
            size_t d0 = i;
            while (i < l.n && l.p[i] >= '0' && l.p[i] <= '9')
                i++;
            if (i > d0) {
                if (!memchr(perms.p, 'x', perms.n))
                    return 0;
                take_ws(l, &i, false);
                m->offset = off;
                m->file = take_token(l, &i);
                return 1;
            }
        }
    }
    /* The brief form: start-limit: file [... @offset] */
    i = after_range;
    if (i >= l.n || l.p[i++] != ':')
        return 0;
    take_ws(l, &i, false);
    m->file = take_token(l, &i);
    if (!m->file.n)
        return 0;
    struct span tail = {l.p + i, l.n - i};
    const char *at = NULL;
    for (size_t k = 0; k < tail.n; k++)
        if (tail.p[k] == '@')
            at = tail.p + k;
    if (at && tail.n && is_ws(tail.p[0])) {
        struct span rest = {at + 1, (size_t)(tail.p + tail.n - at - 1)};
        size_t k = 0;
        if (!take_hex(rest, &k, &m->offset))
            m->offset = 0;
    }
    return 1;
}

static bool span_eq(struct span a, struct span b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* The main binary: named, not a shared library, not "[vdso]" and the like. */
static bool looks_main(struct span f)
{
    static const char deleted[] = "(deleted)";
    if (f.n >= sizeof deleted - 1 && !memcmp(f.p + f.n - (sizeof deleted - 1), deleted, sizeof deleted - 1))
        f.n -= sizeof deleted - 1;
    f = trim(f);
    if (!f.n || f.p[0] == '[')
        return false;
    for (size_t k = 0; k + 3 <= f.n; k++)
        if (!memcmp(f.p + k, ".so", 3) &&
            (k + 3 == f.n || ((f.p[k + 3] == '.' || f.p[k + 3] == '_') && k + 4 < f.n &&
                              f.p[k + 4] >= '0' && f.p[k + 4] <= '9')))
            return false;
    return true;
}

/* Executable mappings of the map text, merged and ordered as pprof does. */
static int read_maps(struct span text, const pprof_limits *lim, struct map_entry **out, size_t *n_out,
                     firn_err *err)
{
    struct map_entry *m = NULL;
    size_t n = 0, cap = 0;
    struct span line;
    while (next_line(&text, &line)) {
        struct map_entry e;
        if (!parse_map_line(trim(line), &e))
            continue;
        /* Adjacent pieces of one file are one mapping. */
        if (n) {
            struct map_entry *last = &m[n - 1];
            bool same_file = !last->file.n || !e.file.n || span_eq(last->file, e.file);
            bool offsets = !last->offset || !e.offset ||
                           last->offset + (last->limit - last->start) == e.offset;
            if (same_file && last->limit == e.start && offsets) {
                last->limit = e.limit;
                if (e.file.n)
                    last->file = e.file;
                continue;
            }
        }
        if (n >= lim->max_mappings) {
            free(m);
            return firn_errf(err, FIRN_ETOOBIG, "%s: memory map: more than %zu mappings", WHAT,
                             lim->max_mappings);
        }
        m = firn_grow(m, n, &cap, sizeof *m, 16);
        m[n++] = e;
    }
    for (size_t k = 0; k < n; k++)
        if (looks_main(m[k].file)) {
            struct map_entry t = m[0];
            m[0] = m[k];
            m[k] = t;
            break;
        }
    if (n > 1 && m[0].file.n >= 14 && !memcmp(m[0].file.p, "/anon_hugepage", 14) &&
        m[0].limit == m[1].start) {
        memmove(&m[0], &m[1], (n - 1) * sizeof *m);
        n--;
    }
    /* A main binary mapped from 0x400000 with its first part missing. */
    if (n && m[0].start - m[0].offset == 0x400000) {
        m[0].start = 0x400000;
        m[0].offset = 0;
    }
    *out = m;
    *n_out = n;
    return 0;
}

/* Index of the mapping holding a (n_maps for "the fake one"), as pprof's
 * remapMappingIDs chooses. */
static size_t find_map(struct map_entry *m, size_t n, uint64_t a)
{
    for (size_t k = 0; k < n; k++)
        if (m[k].start <= a && a < m[k].limit)
            return k;
    for (size_t k = 0; k < n; k++)
        if (m[k].offset && m[k].start - m[k].offset <= a && a < m[k].start) {
            m[k].start -= m[k].offset;
            m[k].offset = 0;
            return k;
        }
    return n;
}

/* ---- Java frame names -------------------------------------------------- */

struct java_frame {
    uint64_t addr;
    struct span func, file;
    int64_t line;
};

/* "0xADDR function (file:line)", "0xADDR function (path)" or
 * "0xADDR name"; 0 when the line is none of these. */
static int parse_java_line(struct span l, struct java_frame *f)
{
    size_t i = 0;
    memset(f, 0, sizeof *f);
    if (l.n < 3 || l.p[0] != '0' || l.p[1] != 'x')
        return 0;
    i = 2;
    if (!take_hex(l, &i, &f->addr) || !take_ws(l, &i, true))
        return 0;
    struct span d = {l.p + i, l.n - i};
    f->func = d;
    if (!d.n || d.p[d.n - 1] != ')')
        return 1;
    /* The last " (" whose inside is "file:line", else whose inside is a
     * path, as pprof's greedy patterns pick. */
    for (int want_line = 1; want_line >= 0; want_line--) {
        for (size_t k = d.n - 1; k-- > 1;) {
            if (d.p[k] != '(' || !is_ws(d.p[k - 1]))
                continue;
            struct span in = {d.p + k + 1, d.n - k - 2};
            if (want_line) {
                const char *colon = NULL;
                for (size_t c = 0; c < in.n; c++)
                    if (in.p[c] == ':')
                        colon = in.p + c;
                if (!colon || colon == in.p)
                    continue;
                const char *q = colon + 1, *end = in.p + in.n;
                bool neg = q < end && *q == '-';
                q += neg;
                if (q == end)
                    continue;
                int64_t v = 0;
                bool digits = true, big = false;
                for (; q < end; q++) {
                    if (*q < '0' || *q > '9') {
                        digits = false;
                        break;
                    }
                    if (v > (INT64_MAX - 9) / 10)
                        big = true;
                    else
                        v = v * 10 + (*q - '0');
                }
                if (!digits)
                    continue;
                f->func = (struct span){d.p, k - 1};
                f->file = (struct span){in.p, (size_t)(colon - in.p)};
                f->line = !neg && !big && v > 0 ? v : 0;
                return 1;
            }
            f->func = (struct span){d.p, k - 1};
            const char *slash = NULL;
            for (size_t c = 0; c < in.n; c++)
                if (in.p[c] == '/')
                    slash = in.p + c;
            f->file = slash ? (struct span){slash + 1, (size_t)(in.p + in.n - slash - 1)} : in;
            if (!f->file.n)
                f->file = (struct span){".", 1};   /* filepath.Base("") */
            return 1;
        }
    }
    static const char stub[] = "generated stub/JIT";
    for (size_t k = 0; k + sizeof stub - 1 <= d.n; k++)
        if (!memcmp(d.p + k, stub, sizeof stub - 1)) {
            f->func = (struct span){"STUB", 4};
            break;
        }
    return 1;
}

/* ---- assembling the profile ------------------------------------------- */

struct frame {
    uint64_t addr;
    uint32_t loc;   /* builder index, PPROF_NONE until made */
    size_t map;     /* index into the maps, n_maps for pprof's fake one, SIZE_MAX for none */
};

static int cmp_frame(const void *a, const void *b)
{
    const struct frame *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* A builder string from a span that may be empty (and then have no bytes). */
static int64_t span_string(pprof_builder *pb, struct span s)
{
    return pprof_builder_string(pb, s.n ? s.p : "", s.n);
}

static struct frame *find_frame(struct frame *t, size_t n, uint64_t a)
{
    struct frame key = {a, 0, 0};
    return bsearch(&key, t, n, sizeof *t, cmp_frame);
}

pprof_profile *pprof_legacy_decode(const unsigned char *b, size_t len, int kind, bool java,
                                   const pprof_limits *lim, firn_err *err)
{
    static const unsigned sizes[] = {4, 4, 8, 8};
    assert(kind >= 0 && kind < 4);
    struct words w = {b, len, sizes[kind], kind == 1 || kind == 3};
    uint64_t period_us = word_at(&w, 3u * w.size);
    struct raw r = {0};
    struct frame *frames = NULL;
    struct map_entry *maps = NULL;
    size_t n_maps = 0, n_frames = 0;
    pprof_builder *pb = NULL;
    pprof_profile *p = NULL;

    if (period_us > (uint64_t)INT64_MAX / 1000) {
        firn_errf(err, FIRN_EINVAL, "%s: byte %u: period %llu microseconds is out of range", WHAT,
                  3u * w.size, (unsigned long long)period_us);
        goto out;
    }
    int64_t period = (int64_t)period_us * 1000;
    /* Per input word at most: one address, one frame (dedup table) and one
     * stack slot; the builder's tables come on top, like protobuf-c's. */
    size_t per_word = sizeof(uint64_t) + sizeof(struct frame) + sizeof(uint32_t);
    if (len / w.size > lim->max_memory_bytes / per_word) {
        firn_errf(err, FIRN_ETOOBIG, "%s: %zu words need more than the memory cap of %zu bytes",
                  WHAT, len / w.size, lim->max_memory_bytes);
        goto out;
    }
    if (read_samples(&w, !java, lim, &r, err) < 0)
        goto out;
    if (!java)
        drop_handler_frames(&r);
    struct span text = {(const char *)b + r.text_at, len - r.text_at};
    if (!java && read_maps(text, lim, &maps, &n_maps, err) < 0)
        goto out;

    /* The distinct addresses, each to become one location. */
    size_t total = 0;
    for (size_t i = 0; i < r.n; i++)
        total += r.s[i].n;
    assert(total <= len / w.size);   /* each address was one input word */
    frames = firn_xreallocarray(NULL, total ? total : 1, sizeof *frames);
    for (size_t i = 0; i < r.n; i++)
        for (size_t k = 0; k < r.s[i].n; k++)
            frames[n_frames++] = (struct frame){r.addrs[r.s[i].off + k], PPROF_NONE, SIZE_MAX};
    qsort(frames, n_frames, sizeof *frames, cmp_frame);
    size_t u = 0;
    for (size_t k = 0; k < n_frames; k++)
        if (!u || frames[u - 1].addr != frames[k].addr)
            frames[u++] = frames[k];
    n_frames = u;
    if (n_frames > lim->max_locations) {
        firn_errf(err, FIRN_ETOOBIG, "%s: more than %zu locations", WHAT, lim->max_locations);
        goto out;
    }

    pb = pprof_builder_new(2);
    pprof_builder_sample_type(pb, 0, "samples", "count");
    pprof_builder_sample_type(pb, 1, "cpu", "nanoseconds");
    pprof_builder_period(pb, "cpu", "nanoseconds", period);

    /* Java: frames named by the text (a later line for the same id wins,
     * as in pprof); one function per name, with the first line's file. */
    struct java_named {
        bool named;
        uint32_t function;
        int64_t line;
    } *named = NULL;
    if (java) {
        named = firn_xcalloc(n_frames ? n_frames : 1, sizeof *named);
        uint32_t *fn_of_name = NULL;   /* by the name's string index */
        size_t n_fn_of_name = 0;
        bool too_many = false;
        struct span line;
        size_t n_lines = 0;
        while (!too_many && next_line(&text, &line)) {
            struct java_frame jf;
            if (!parse_java_line(trim(line), &jf))
                continue;
            struct frame *f = find_frame(frames, n_frames, jf.addr);
            if (!f)
                continue;   /* a frame no sample uses */
            if (++n_lines > lim->max_functions) {
                too_many = true;
                break;
            }
            int64_t name = span_string(pb, jf.func);
            if ((size_t)name >= n_fn_of_name) {
                /* name indexes the builder's strings, already in memory */
                size_t nn = (size_t)name * 2 + 16;
                fn_of_name = firn_xreallocarray(fn_of_name, nn, sizeof *fn_of_name);
                for (size_t k = n_fn_of_name; k < nn; k++)
                    fn_of_name[k] = PPROF_NONE;
                n_fn_of_name = nn;
            }
            if (fn_of_name[name] == PPROF_NONE) {
                pprof_function fn = {0};
                fn.name = fn.system_name = name;
                fn.filename = span_string(pb, jf.file);
                fn_of_name[name] = pprof_builder_function(pb, &fn);
            }
            named[f - frames] = (struct java_named){true, fn_of_name[name], jf.line};
        }
        free(fn_of_name);
        if (too_many) {
            free(named);
            firn_errf(err, FIRN_ETOOBIG, "%s: more than %zu frame names", WHAT, lim->max_functions);
            goto out;
        }
    }

    /* Mappings are chosen in the order pprof visits locations (first use
     * in the samples), since choosing may move a mapping's start. */
    bool any_fake = false;
    for (size_t i = 0; i < r.n; i++)
        for (size_t k = 0; k < r.s[i].n; k++) {
            struct frame *f = find_frame(frames, n_frames, r.addrs[r.s[i].off + k]);
            assert(f);
            if (f->map != SIZE_MAX || !f->addr || java)
                continue;
            f->map = find_map(maps, n_maps, f->addr);
            any_fake |= f->map == n_maps;
        }
    uint32_t *map_index = firn_xcalloc(n_maps + 1, sizeof *map_index);
    uint32_t *stack = firn_xreallocarray(NULL, total ? total : 1, sizeof *stack);
    for (size_t k = 0; k < n_maps; k++) {
        pprof_mapping pm = {0};
        pm.memory_start = maps[k].start;
        pm.memory_limit = maps[k].limit;
        pm.file_offset = maps[k].offset;
        pm.filename = span_string(pb, maps[k].file);
        map_index[k] = pprof_builder_mapping(pb, &pm);
    }
    if (any_fake) {
        /* pprof's stand-in for addresses no listed mapping holds. */
        pprof_mapping pm = {0};
        pm.memory_limit = UINT64_MAX;
        map_index[n_maps] = pprof_builder_mapping(pb, &pm);
    }
    bool overflow = false;
    for (size_t i = 0; i < r.n && !overflow; i++) {
        const struct raw_sample *s = &r.s[i];
        for (size_t k = 0; k < s->n; k++) {
            struct frame *f = find_frame(frames, n_frames, r.addrs[s->off + k]);
            assert(f);
            if (f->loc == PPROF_NONE) {
                pprof_location l = {0};
                pprof_line ln = {0};
                l.address = f->addr;
                l.mapping = f->map == SIZE_MAX ? PPROF_NONE : map_index[f->map];
                if (java) {
                    /* Java frame ids are no addresses: pprof drops them
                     * (its Aggregate without addresses), so frames of one
                     * name and line are one location, and unnamed ones are
                     * all one unknown frame. */
                    l.address = 0;
                    if (named[f - frames].named) {
                        ln.function = named[f - frames].function;
                        ln.line = named[f - frames].line;
                        l.lines = &ln;
                        l.n_lines = 1;
                    }
                }
                f->loc = pprof_builder_location(pb, &l);
            }
            stack[k] = f->loc;
        }
        int64_t values[2] = {s->count, 0};
        if (__builtin_mul_overflow(s->count, period, &values[1])) {
            firn_errf(err, FIRN_EINVAL, "%s: sample %zu: count %lld x period %lld overflows", WHAT, i,
                      (long long)s->count, (long long)period);
            overflow = true;
            break;
        }
        pprof_builder_sample(pb, stack, s->n, values, NULL, 0);
    }
    free(map_index);
    free(stack);
    free(named);
    if (overflow)
        goto out;
    p = pprof_builder_finish(pb, err);
    pb = NULL;
    /* The profiler writes a stack once per table slot it held, so one stack
     * can come several times; pprof shows them as one sample (go tool pprof
     * -raw), and so does firn. */
    pprof_merge_samples(p, err);

out:
    pprof_builder_free(pb);
    free(r.addrs);
    free(r.s);
    free(frames);
    free(maps);
    return p;
}
