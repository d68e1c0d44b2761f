/* unwind.c -- the unwind tables in the BPF maps (bpf/profile.h): one per
 * mapped file, compiled from its CFI (cfi.c) the first time a sampled
 * stack passes through it, shared by every process that maps the same file (found
 * by device and inode, merged by build ID), and the per-process list of
 * executable mappings that points the BPF walk at them.
 *
 * Memory is bounded by the maps' sizes, set at load: `shards` shards of
 * PROFILE_SHARD_ROWS rows, `tables` table slots, `procs` processes.  A
 * table that does not fit evicts the least recently used tables (used:
 * mapped by a process sampled in that drain) that no process of this
 * drain uses; what still does not fit is counted and left to frame
 * pointers.  A slot reused for another file gets a new epoch, so the
 * mappings of processes still naming the old one stop matching it (the
 * BPF side then walks by frame pointers there) until their entry is
 * written again, which the next drain that samples them does.
 *
 * The vDSO has no file: its table is compiled from the agent's own copy
 * (the kernel maps the same image into every process).
 */
#include <assert.h>
#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent/internal.h"

#define MAX_KEYS 8          /* (device, inode) pairs seen to be one file */
#define MAX_SEGMENTS 16
#define VDSO_KEY 1          /* the file key of [vdso] (file_key is never 1 in practice) */

typedef struct utable {
    uint32_t epoch;                /* 0: the slot is free */
    uint64_t keys[MAX_KEYS];
    size_t n_keys;
    unsigned char build_id[64];
    size_t build_id_len;
    struct useg { uint64_t offset, filesz, vaddr; } seg[MAX_SEGMENTS];
    size_t n_seg;
    uint16_t *shards;              /* NULL: no rows (no usable CFI, or no room) */
    uint32_t n_shards, n_rows;
    uint64_t last_used;            /* drain */
    uint64_t heat;                 /* most samples of a process using it in that drain */
} utable;

struct agent_unwinder {
    int rows_fd, tables_fd, procs_fd;
    uint32_t n_shards, n_tables;
    uint8_t *shard_used;
    uint32_t shards_free;
    utable *tables;                /* n_tables slots; slot 0 unused (means "none") */
    uint32_t next_epoch;
    uint64_t drain;
    int64_t budget_ms;             /* compiling time a drain may spend */
    int64_t spent_ms;              /* spent in this drain */
    struct profile_shard *buf;     /* one shard being written */
    struct profile_table *tbuf;
    struct profile_proc *pbuf;
    agent_unwind_stats *stats;
};

static uint64_t file_key(uint64_t dev, uint64_t inode)
{
    uint64_t h = dev * 0x9e3779b97f4a7c15ULL ^ inode;
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    return h == VDSO_KEY ? h + 1 : h;
}

agent_unwinder *agent_unwinder_new(int rows_fd, int tables_fd, int procs_fd, uint32_t n_shards,
                                   uint32_t n_tables, agent_unwind_stats *stats)
{
    assert(n_tables >= 2 && n_tables <= 65536 && n_shards >= 1 && n_shards <= 65536);
    agent_unwinder *u = firn_xcalloc(1, sizeof *u);
    *u = (agent_unwinder){.rows_fd = rows_fd, .tables_fd = tables_fd, .procs_fd = procs_fd,
                          .n_shards = n_shards, .n_tables = n_tables, .shards_free = n_shards,
                          .next_epoch = 1, .stats = stats};
    u->shard_used = firn_xcalloc(n_shards, 1);
    u->tables = firn_xcalloc(n_tables, sizeof *u->tables);
    u->buf = firn_xmalloc(sizeof *u->buf);
    u->tbuf = firn_xmalloc(sizeof *u->tbuf);
    u->pbuf = firn_xmalloc(sizeof *u->pbuf);
    return u;
}

void agent_unwinder_free(agent_unwinder *u)
{
    if (!u)
        return;
    for (uint32_t i = 0; u->tables && i < u->n_tables; i++)
        free(u->tables[i].shards);
    free(u->tables);
    free(u->shard_used);
    free(u->buf);
    free(u->tbuf);
    free(u->pbuf);
    free(u);
}

void agent_unwinder_begin(agent_unwinder *u, int64_t budget_ms)
{
    u->drain++;
    u->budget_ms = budget_ms;
    u->spent_ms = 0;
}

static void publish_stats(agent_unwinder *u)
{
    uint64_t tables = 0, rows = 0;
    for (uint32_t i = 1; i < u->n_tables; i++) {
        if (u->tables[i].epoch && u->tables[i].shards) {
            tables++;
            rows += u->tables[i].n_rows;
        }
    }
    atomic_store(&u->stats->tables, tables);
    atomic_store(&u->stats->rows, rows);
    atomic_store(&u->stats->bytes, (uint64_t)(u->n_shards - u->shards_free) *
                                       sizeof(struct profile_shard));
}

/* Free slot i: its shards back, its BPF entry cleared. */
static void evict(agent_unwinder *u, uint32_t i)
{
    utable *t = &u->tables[i];
    for (uint32_t k = 0; k < t->n_shards; k++) {
        u->shard_used[t->shards[k]] = 0;
        u->shards_free++;
    }
    if (t->shards)
        atomic_fetch_add(&u->stats->evicted, 1);
    free(t->shards);
    memset(t, 0, sizeof *t);
    memset(u->tbuf, 0, sizeof *u->tbuf);
    (void)bpf_map_update_elem(u->tables_fd, &i, u->tbuf, BPF_ANY);
}

/* Whether table a should be evicted before table b. */
static bool colder(const agent_unwinder *u, const utable *a, const utable *b)
{
    bool a_now = a->last_used == u->drain, b_now = b->last_used == u->drain;
    if (a_now != b_now)
        return !a_now;
    return a_now ? a->heat < b->heat : a->last_used < b->last_used;
}

/* The slot to evict for a table wanted by a process with `heat` samples:
 * a free one first (unless want_rows: then the one whose shards to take),
 * else the least recently used one no process of this drain uses, else
 * the one of this drain's processes with the fewest samples below heat;
 * 0 if none. */
static uint32_t victim(agent_unwinder *u, bool want_rows, uint64_t heat)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < u->n_tables; i++) {
        const utable *t = &u->tables[i];
        if (!want_rows && t->epoch == 0)
            return i;
        if (t->epoch == 0 || (want_rows && !t->shards) ||
            (t->last_used == u->drain && t->heat >= heat))
            continue;
        if (best == 0 || colder(u, t, &u->tables[best]))
            best = i;
    }
    return best;
}

/* Put rows into shards and the table entry of slot i.  false when they
 * do not fit even after evicting. */
static bool load_rows(agent_unwinder *u, uint32_t i, const agent_unwind_table *rows,
                      uint64_t heat)
{
    utable *t = &u->tables[i];
    uint32_t need = (uint32_t)((rows->n + PROFILE_SHARD_ROWS - 1) / PROFILE_SHARD_ROWS);
    if (need == 0 || need > PROFILE_MAX_CHUNKS)
        return false;
    while (u->shards_free < need) {
        uint32_t v = victim(u, true, heat);
        if (v == 0 || v == i)
            return false;
        evict(u, v);
    }
    t->shards = firn_xmalloc(need * sizeof *t->shards);
    memset(u->tbuf, 0, sizeof *u->tbuf);
    uint32_t s = 0;
    for (uint32_t c = 0; c < need; c++) {
        while (u->shard_used[s])
            s++;
        size_t first = (size_t)c * PROFILE_SHARD_ROWS;
        size_t n = rows->n - first < PROFILE_SHARD_ROWS ? rows->n - first : PROFILE_SHARD_ROWS;
        memset(u->buf, 0, sizeof *u->buf);
        memcpy(u->buf->rows, rows->rows + first, n * sizeof *rows->rows);
        if (bpf_map_update_elem(u->rows_fd, &s, u->buf, BPF_ANY) != 0) {
            t->n_shards = c;   /* evict() gives back what was taken */
            return false;
        }
        u->shard_used[s] = 1;
        u->shards_free--;
        t->shards[c] = (uint16_t)s;
        t->n_shards = c + 1;
        u->tbuf->chunks[c] = (struct profile_chunk){.first_pc = rows->rows[first].pc,
                                                    .shard = (uint16_t)s,
                                                    .n_rows = (uint16_t)n};
    }
    t->n_rows = (uint32_t)rows->n;
    u->tbuf->n_chunks = need;
    u->tbuf->epoch = t->epoch;
    return bpf_map_update_elem(u->tables_fd, &i, u->tbuf, BPF_ANY) == 0;
}

/* The ELF of a mapping: the process's own view of the file, else its
 * path under the process's root; for [vdso], the agent's own. */
static Elf *open_elf(int pid, const agent_map *m, int *fd, void **image)
{
    *fd = -1;
    *image = NULL;
    if (strcmp(m->path, "[vdso]") == 0) {
        const char *vdso = (const char *)getauxval(AT_SYSINFO_EHDR);
        size_t size = (size_t)(m->limit - m->start);
        if (!vdso || size == 0 || size > (1u << 20))
            return NULL;
        *image = firn_xmalloc(size);
        memcpy(*image, vdso, size);   /* the same image in every process */
        return elf_memory(*image, size);
    }
    char path[4200];
    snprintf(path, sizeof path, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, m->start,
             m->limit);
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) {
        snprintf(path, sizeof path, "/proc/%d/root%s", pid, m->path);
        *fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    return *fd < 0 ? NULL : elf_begin(*fd, ELF_C_READ_MMAP, NULL);
}

/* CPU time of the calling thread, in microseconds: what compiling took,
 * whatever else the machine ran meanwhile. */
static int64_t thread_cpu_us(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A new slot for the file of mapping m: its segments, build ID and rows.
 * 0 when no slot is free. */
static uint32_t load_table(agent_unwinder *u, int pid, const agent_map *m, uint64_t key,
                           uint64_t heat)
{
    int fd;
    void *image;
    Elf *elf = open_elf(pid, m, &fd, &image);
    if (!elf) {
        /* the process exited (its map_files and root went with it): no
         * slot, so that the next process mapping the file gets a table */
        atomic_fetch_add(&u->stats->failed, 1);
        if (fd >= 0)
            close(fd);
        free(image);
        return 0;
    }
    const void *bid = NULL;
    ssize_t bid_len = dwelf_elf_gnu_build_id(elf, &bid);
    if (bid_len > 0 && (size_t)bid_len <= sizeof u->tables[0].build_id) {
        for (uint32_t i = 1; i < u->n_tables; i++) {
            utable *t = &u->tables[i];
            if (t->epoch && t->build_id_len == (size_t)bid_len &&
                memcmp(t->build_id, bid, (size_t)bid_len) == 0 && t->n_keys < MAX_KEYS) {
                t->keys[t->n_keys++] = key;   /* the same file elsewhere (another mount) */
                elf_end(elf);
                if (fd >= 0)
                    close(fd);
                free(image);
                return i;
            }
        }
    }
    uint32_t i = victim(u, false, heat);
    if (i != 0 && u->tables[i].epoch)
        evict(u, i);
    if (i == 0) {
        atomic_fetch_add(&u->stats->no_room, 1);
        elf_end(elf);
        if (fd >= 0)
            close(fd);
        free(image);
        return 0;
    }
    utable *t = &u->tables[i];
    t->epoch = u->next_epoch++;
    if (u->next_epoch == 0)
        u->next_epoch = 1;
    t->keys[t->n_keys++] = key;
    t->last_used = u->drain;
    if (bid_len > 0 && (size_t)bid_len <= sizeof t->build_id) {
        memcpy(t->build_id, bid, (size_t)bid_len);
        t->build_id_len = (size_t)bid_len;
    }
    size_t n_phdr = 0;
    if (elf_getphdrnum(elf, &n_phdr) == 0) {
        for (size_t k = 0; k < n_phdr && t->n_seg < MAX_SEGMENTS; k++) {
            GElf_Phdr ph;
            if (gelf_getphdr(elf, (int)k, &ph) && ph.p_type == PT_LOAD && (ph.p_flags & PF_X))
                t->seg[t->n_seg++] = (struct useg){ph.p_offset, ph.p_filesz, ph.p_vaddr};
        }
    }
    agent_unwind_table rows;
    firn_err err = {0};
    int64_t cpu0 = thread_cpu_us();
    if (t->n_seg == 0 || agent_cfi_compile(elf, &rows, &err) < 0) {
        atomic_fetch_add(&u->stats->failed, 1);
        char q[600], qp[600];
        firn_log(FIRN_LOG_DEBUG, "unwind", "no unwind table; frame pointers there",
                 "pid=%d path=%s err=%s", pid, firn_log_quote(qp, sizeof qp, m->path),
                 firn_log_quote(q, sizeof q, t->n_seg ? err.msg : "no executable segment"));
    } else {
        t->heat = heat;   /* not a victim of its own loading */
        if (!load_rows(u, i, &rows, heat)) {
            atomic_fetch_add(&u->stats->no_room, 1);
            evict(u, i);   /* gives back partial shards; the slot stays known as empty */
            t->epoch = u->next_epoch++;
            t->keys[t->n_keys++] = key;
            t->last_used = u->drain;
        } else {
            atomic_fetch_add(&u->stats->loaded, 1);
            char qp[600];
            firn_log(FIRN_LOG_DEBUG, "unwind", "unwind table loaded",
                     "pid=%d path=%s rows=%zu fdes=%zu unsupported=%zu cpu_ms=%.1f", pid,
                     firn_log_quote(qp, sizeof qp, m->path), rows.n, rows.fdes,
                     rows.rows_unsupported, (double)(thread_cpu_us() - cpu0) / 1000);
        }
        agent_unwind_table_free(&rows);
    }
    elf_end(elf);
    if (fd >= 0)
        close(fd);
    free(image);
    return i;
}

static uint32_t find_table(agent_unwinder *u, uint64_t key)
{
    for (uint32_t i = 1; i < u->n_tables; i++)
        for (size_t k = 0; k < u->tables[i].n_keys; k++)
            if (u->tables[i].epoch && u->tables[i].keys[k] == key)
                return i;
    return 0;
}

/* The key of mapping m's file, 0 for an anonymous or special one (no table). */
static uint64_t map_key(const agent_map *m)
{
    if (strcmp(m->path, "[vdso]") == 0)
        return VDSO_KEY;
    if (m->path[0] != '/' || m->inode == 0)
        return 0;   /* anonymous (JIT) or special: frame pointers */
    return file_key(((uint64_t)m->dev_major << 32) | m->dev_minor, m->inode);
}

static bool hit(const agent_proc *p, uint64_t key)
{
    for (size_t k = 0; k < p->n_hit; k++)
        if (p->hit_files[k] == key)
            return true;
    return false;
}

void agent_unwind_note(agent_proc *p, const agent_map *m)
{
    uint64_t key = map_key(m);
    if (key != 0 && p->n_hit < PROFILE_MAX_MAPPINGS && !hit(p, key))
        p->hit_files[p->n_hit++] = key;
}

/* Whether p's entry still names the tables it was written with, for the
 * files its stacks had passed through then. */
static bool entry_current(agent_unwinder *u, const agent_proc *p)
{
    if (p->unwind_gen != p->maps_gen || p->maps_gen == 0 || p->n_hit != p->n_hit_written)
        return false;
    for (size_t k = 0; k < p->n_unwind; k++)
        if (u->tables[p->unwind_slot[k]].epoch != p->unwind_epoch[k])
            return false;
    return true;
}

/* t is used by a process with heat samples in this drain. */
static void touch(agent_unwinder *u, utable *t, uint64_t heat)
{
    if (t->last_used != u->drain || t->heat < heat)
        t->heat = heat;
    t->last_used = u->drain;
}

void agent_unwinder_update(agent_unwinder *u, agent_proc *p, uint64_t samples)
{
    if (!p->loaded)
        return;
    if (entry_current(u, p)) {
        for (size_t k = 0; k < p->n_unwind; k++)
            touch(u, &u->tables[p->unwind_slot[k]], samples);
        return;
    }
    struct profile_proc *e = u->pbuf;
    memset(e, 0, sizeof *e);
    p->n_unwind = 0;
    size_t with_table = 0;
    for (size_t i = 0; i < p->maps.n; i++) {
        const agent_map *m = &p->maps.maps[i];
        if (e->n == PROFILE_MAX_MAPPINGS) {
            atomic_fetch_add(&u->stats->mappings_dropped, p->maps.n - i);
            break;
        }
        struct profile_mapping *pm = &e->maps[e->n++];
        *pm = (struct profile_mapping){.start = m->start, .end = m->limit};
        uint64_t key = map_key(m);
        if (key == 0)
            continue;
        uint32_t slot = find_table(u, key);
        /* A file no sampled stack of p passed through waits: a process maps
         * tens of libraries and runs in a few (a table is compiled when a
         * stack first reaches it, walked by frame pointers until then). */
        if (slot == 0 && !hit(p, key))
            continue;
        if (slot == 0 && u->spent_ms >= u->budget_ms) {
            atomic_fetch_add(&u->stats->deferred, 1);
            return;   /* unwind_gen unchanged: the next drain goes on */
        }
        if (slot == 0) {
            int64_t t0 = firn_mono_ms();
            slot = load_table(u, p->pid, m, key, samples);
            u->spent_ms += firn_mono_ms() - t0;
        }
        if (slot == 0)
            continue;
        utable *t = &u->tables[slot];
        touch(u, t, samples);
        p->unwind_slot[p->n_unwind] = (uint16_t)slot;
        p->unwind_epoch[p->n_unwind++] = t->epoch;
        if (!t->shards)
            continue;
        /* The mapping's file range holds the executable segment.  Its
         * offset is the segment's rounded down to a page, which lld's
         * layout does not page-align (Rust: offset 0x13ab0, mapped from
         * 0x13000): overlap, not containment of m->offset. */
        uint64_t m_end = m->offset + (m->limit - m->start);
        for (size_t s = 0; s < t->n_seg; s++) {
            if (t->seg[s].offset < m_end && m->offset < t->seg[s].offset + t->seg[s].filesz) {
                pm->bias = m->start - m->offset + t->seg[s].offset - t->seg[s].vaddr;
                pm->table = slot;
                pm->epoch = t->epoch;
                with_table++;
                break;
            }
        }
    }
    p->unwind_gen = p->maps_gen;
    p->n_hit_written = p->n_hit;
    if (with_table == 0) {
        (void)bpf_map_delete_elem(u->procs_fd, &(uint32_t){(uint32_t)p->pid});
    } else if (bpf_map_update_elem(u->procs_fd, &(uint32_t){(uint32_t)p->pid}, e, BPF_ANY) != 0) {
        atomic_fetch_add(&u->stats->procs_full, 1);
        p->unwind_gen = 0;   /* try again next drain */
    }
    publish_stats(u);
}

void agent_unwinder_forget(agent_unwinder *u, int pid)
{
    (void)bpf_map_delete_elem(u->procs_fd, &(uint32_t){(uint32_t)pid});
}
