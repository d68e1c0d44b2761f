/* symbolize.c -- addresses of any process into functions, files and lines.
 *
 * Kernel frames: /proc/kallsyms, read once (sorted, binary search).
 *
 * User frames: the executable mappings of /proc/PID/maps, kept per process
 * across drains (agent_proc, internal.h) and read again when an address
 * lies in none of them.  Each mapped file is an "object": opened
 * through /proc/PID/map_files/START-END (the very file the process mapped,
 * also when it lives in a container's mount namespace or was deleted since),
 * else /proc/PID/root/PATH, and reported to its own libdwfl session at its
 * ELF addresses.  An address becomes a file offset (addr - start + offset),
 * then an ELF virtual address through the object's PT_LOAD segments, which
 * is what PIE executables and shared libraries need wherever they were
 * loaded.  Objects are keyed by build ID (so the same library in a hundred
 * processes, or in two containers, is read once), found again per mapping
 * by (device, inode); each keeps a cache of the addresses it resolved, and
 * the index of its compilation units that libdwfl lacks when the file has
 * no .debug_aranges (Go; see symbolize_cu_index).  A file without DWARF
 * (most of a distribution's) is closed as soon as its symbols are indexed,
 * the names copied: its frames are its symbols'.  An object unused for
 * AGENT_OBJECT_TTL drains (its processes exited) is dropped, one whose
 * file stays open for its DWARF after AGENT_OPEN_FILE_TTL, and at most
 * AGENT_MAX_OBJECTS are kept (least recently used dropped first), so
 * memory stays bounded on a busy host.
 *
 * Only the DWARF inside the files is read, never separate debug files nor
 * debuginfod (cmd/firn-agent unsets DEBUGINFOD_URLS): the sampling loop
 * must not wait for the network.
 *
 * JIT code (anonymous executable memory): the process's perf map,
 * /proc/PID/root/tmp/perf-NSPID.map, NSPID being its pid in its own
 * namespace (NSpid of /proc/PID/status).
 *
 * Threads: one symbolizer, used by the sampling loop only; its counters
 * are atomics for /metrics.
 */
#include <dirent.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/internal.h"
#include "symbolize/symbolize.h"

#define AGENT_MAX_OBJECTS 512
/* Drains an unused object is kept: a minute at 10 s.  Files in use (a
 * compiler run again and again) stay.  A file without DWARF is closed once
 * indexed, and what stays is its index and its cache of addresses. */
#define AGENT_OBJECT_TTL 6
/* Drains an unused file with DWARF stays open.  It holds the file's pages
 * it read (symbols, DWARF) and libdw's state: 1 to 3 MB each on a build
 * machine, 12 MB for a Go binary (its compressed DWARF inflated); kept a
 * minute, the files of test programs and Go services sampled in the last
 * minute were most of the agent's RSS there.  Closed with its cache after
 * two drains unused, a process sampled again later costs it again. */
#define AGENT_OPEN_FILE_TTL 1
#define AGENT_OBJECT_CACHE_MAX 65536     /* addresses remembered per object */
#define MAX_SEGMENTS 16
#define MAX_KEYS 8                       /* files (mounts) found to be one object */

typedef struct cached_addr {
    uint32_t first, n;   /* frames[first..first+n) of the object */
} cached_addr;

typedef struct object {
    bool used;
    char build_id[129];
    bool readable;                 /* false: the file could not be read */
    Dwfl *dwfl;                    /* NULL: closed (or unreadable) */
    Dwfl_Module *mod;              /* NULL: named by syms alone (no DWARF) */
    symbolize_cu_index *cus;        /* built on need (Go: no .debug_aranges) */
    symbolize_symtab *syms;         /* symbols by address: built at open when the
                                     * file has no DWARF, else on need */
    symbolize_names *names;         /* demangled names of dwfl's or syms' strings */
    GElf_Addr bias;
    struct segment { uint64_t offset, filesz, vaddr; } seg[MAX_SEGMENTS];
    uint64_t keys[MAX_KEYS];       /* file_key of every (device, inode) seen to be it */
    size_t n_keys;
    size_t n_seg;
    uint64_t last_used;            /* drain number */
    firn_u64map cache;             /* ELF address -> index into addrs */
    cached_addr *addrs;
    size_t n_addrs, cap_addrs;
    symbolize_frame *frames;
    size_t n_frames, cap_frames;
} object;

struct agent_symbolizer {
    agent_kallsyms kallsyms;
    bool have_kallsyms;
    object *objects;               /* AGENT_MAX_OBJECTS slots */
    size_t n_objects;
    firn_u64map by_file;           /* hash(dev, inode) -> slot */
    uint64_t drain;
    agent_symbolizer_stats *stats;
};

static uint64_t file_key(uint64_t dev, uint64_t inode)
{
    uint64_t h = dev * 0x9e3779b97f4a7c15ULL ^ inode;
    h ^= h >> 31;
    return h * 0xbf58476d1ce4e5b9ULL;
}

/* ---- kernel ------------------------------------------------------------------- */

static void load_kallsyms(agent_symbolizer *s)
{
    unsigned char *text = NULL;
    size_t len = 0;
    firn_err err = {0};
    char q[600];
    if (firn_read_file("/proc/kallsyms", AGENT_KALLSYMS_MAX_BYTES, &text, &len, &err) < 0 ||
        agent_kallsyms_parse((const char *)text, len, &s->kallsyms, &err) < 0) {
        firn_log(FIRN_LOG_WARN, "symbolize", "kernel frames stay unsymbolized", "err=%s",
                 firn_log_quote(q, sizeof q, err.msg));
    } else {
        s->have_kallsyms = true;
        firn_log(FIRN_LOG_INFO, "symbolize", "kernel symbols loaded", "symbols=%zu",
                 s->kallsyms.n);
    }
    free(text);
}

const char *agent_symbolize_kernel(agent_symbolizer *s, uint64_t addr)
{
    if (!s->have_kallsyms)
        return NULL;
    const agent_ksym *k = agent_kallsyms_lookup(&s->kallsyms, addr);
    return k ? k->name : NULL;
}

/* ---- objects ------------------------------------------------------------------ */

static void object_close(agent_symbolizer *s, object *o)
{
    symbolize_cu_index_free(o->cus);
    symbolize_names_free(o->names);
    symbolize_symtab_free(o->syms);
    if (o->dwfl)
        dwfl_end(o->dwfl);
    firn_u64map_destroy(&o->cache);
    free(o->addrs);
    free(o->frames);
    memset(o, 0, sizeof *o);
    s->n_objects--;
}

/* by_file from the objects' keys (the u64map cannot delete: after a close
 * it is rebuilt). */
static void rebuild_index(agent_symbolizer *s)
{
    firn_u64map_clear(&s->by_file);
    for (uint32_t i = 0; i < AGENT_MAX_OBJECTS; i++)
        for (size_t k = 0; s->objects[i].used && k < s->objects[i].n_keys; k++)
            firn_u64map_put(&s->by_file, s->objects[i].keys[k], i, NULL);
}

/* Open the file of map in process pid into a free slot. */
static object *object_open(agent_symbolizer *s, int pid, const agent_map *map)
{
    object *o = NULL;
    for (size_t i = 0; i < AGENT_MAX_OBJECTS && !o; i++)
        if (!s->objects[i].used)
            o = &s->objects[i];
    if (!o) {   /* full: close the least recently used */
        o = &s->objects[0];
        for (size_t i = 1; i < AGENT_MAX_OBJECTS; i++)
            if (s->objects[i].last_used < o->last_used)
                o = &s->objects[i];
        object_close(s, o);
    }
    memset(o, 0, sizeof *o);
    firn_u64map_init(&o->cache, 256);
    o->used = true;
    o->last_used = s->drain;
    s->n_objects++;

    char path[4200];
    snprintf(path, sizeof path, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, map->start,
             map->limit);
    int fd = -1;
    bool readable = true;
    if (access(path, R_OK) != 0) {
        /* the path as the process's root resolves it, never the agent's
         * (rootfs.c); libdwfl opens it again through /proc/self/fd */
        char root[64];
        snprintf(root, sizeof root, "/proc/%d/root", pid);
        fd = agent_root_open(root, map->path, false, NULL);
        readable = fd >= 0;
        snprintf(path, sizeof path, "/proc/%d/root%s", pid, map->path);   /* for the log */
    }
    char opened[64];
    snprintf(opened, sizeof opened, "/proc/self/fd/%d", fd);
    o->dwfl = readable ? symbolize_dwfl_begin() : NULL;
    if (o->dwfl) {
        dwfl_report_begin(o->dwfl);
        o->mod = dwfl_report_elf(o->dwfl, map->path, fd >= 0 ? opened : path, -1, 0, false);
        dwfl_report_end(o->dwfl, NULL, NULL);
    }
    if (fd >= 0)
        close(fd);
    Elf *elf = o->mod ? dwfl_module_getelf(o->mod, &o->bias) : NULL;
    size_t n_phdr = 0;
    if (elf && elf_getphdrnum(elf, &n_phdr) == 0) {
        for (size_t i = 0; i < n_phdr && o->n_seg < MAX_SEGMENTS; i++) {
            GElf_Phdr ph;
            if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD && (ph.p_flags & PF_X))
                o->seg[o->n_seg++] = (struct segment){ph.p_offset, ph.p_filesz, ph.p_vaddr};
        }
    }
    if (!elf || o->n_seg == 0) {
        atomic_fetch_add(&s->stats->object_errors, 1);
        char q[600];
        firn_log(FIRN_LOG_DEBUG, "symbolize", "cannot read mapped file", "pid=%d path=%s err=%s",
                 pid, firn_log_quote(q, sizeof q, path), dwfl_errmsg(-1));
        if (o->dwfl)
            dwfl_end(o->dwfl);
        o->dwfl = NULL;
        o->mod = NULL;
    } else {
        symbolize_build_id_hex(o->mod, o->build_id, sizeof o->build_id);
        o->names = symbolize_names_new();
        o->readable = true;
    }
    atomic_fetch_add(&s->stats->objects_opened, 1);
    return o;
}

/* The object of map: by (device, inode) if open, else opened; when its
 * build id is one an open object already has, that one (the same file
 * seen through another mount, or copied into another container image). */
static object *object_for(agent_symbolizer *s, int pid, const agent_map *map)
{
    uint64_t key = file_key((uint64_t)map->dev_major << 32 | map->dev_minor, map->inode);
    uint32_t slot;
    if (firn_u64map_get(&s->by_file, key, &slot) && s->objects[slot].used) {
        s->objects[slot].last_used = s->drain;
        return &s->objects[slot];
    }
    object *o = object_open(s, pid, map);
    for (size_t i = 0; o->build_id[0] && i < AGENT_MAX_OBJECTS; i++) {
        object *other = &s->objects[i];
        if (other != o && other->used && other->n_keys < MAX_KEYS &&
            strcmp(other->build_id, o->build_id) == 0) {
            object_close(s, o);
            other->last_used = s->drain;
            o = other;
            break;
        }
    }
    if (o->mod && !o->syms && !symbolize_has_dwarf(o->mod)) {
        /* A new file without DWARF (not one known by its build id): its
         * frames are its symbols'.  Indexed now, the file is closed, and
         * its pages (all of its symbol and string tables, read to build
         * the index) leave the agent's memory.  A file with DWARF stays
         * open for its lines and inlined calls. */
        o->syms = symbolize_symtab_new(o->mod, true);
        if (symbolize_symtab_owns_names(o->syms)) {
            dwfl_end(o->dwfl);
            o->dwfl = NULL;
            o->mod = NULL;
        }
    }
    o->keys[o->n_keys++] = key;
    rebuild_index(s);
    return o;
}

/* The frames of ELF address vaddr in o, cached. */
static size_t object_frames(agent_symbolizer *s, object *o, uint64_t vaddr,
                            const symbolize_frame **frames)
{
    uint32_t idx;
    if (firn_u64map_get(&o->cache, vaddr, &idx)) {
        atomic_fetch_add(&s->stats->cache_hits, 1);
        *frames = o->addrs[idx].n > 0 ? o->frames + o->addrs[idx].first : NULL;
        return o->addrs[idx].n;
    }
    atomic_fetch_add(&s->stats->cache_misses, 1);
    symbolize_frame found[SYMBOLIZE_MAX_INLINE_DEPTH];
    size_t n = symbolize_dwfl_frames(o->mod, &o->cus, &o->syms, o->names, vaddr + o->bias, found);
    if (o->n_addrs >= AGENT_OBJECT_CACHE_MAX) {   /* start over rather than grow */
        firn_u64map_clear(&o->cache);
        o->n_addrs = o->n_frames = 0;
    }
    o->addrs = firn_grow(o->addrs, o->n_addrs, &o->cap_addrs, sizeof *o->addrs, 256);
    while (o->n_frames + n > o->cap_frames)   /* told it is full, firn_grow doubles it */
        o->frames = firn_grow(o->frames, o->cap_frames, &o->cap_frames, sizeof *o->frames, 512);
    if (n > 0)   /* an address nothing names is cached as 0 frames */
        memcpy(o->frames + o->n_frames, found, n * sizeof *found);
    o->addrs[o->n_addrs] = (cached_addr){(uint32_t)o->n_frames, (uint32_t)n};
    firn_u64map_put(&o->cache, vaddr, (uint32_t)o->n_addrs, NULL);
    *frames = n > 0 ? o->frames + o->n_frames : NULL;
    o->n_frames += n;
    o->n_addrs++;
    return n;
}

/* ---- processes ----------------------------------------------------------------- */

/* Read /proc/PID/<name> (capped) into a malloc'd NUL-terminated buffer. */
static int read_proc(int pid, const char *name, size_t max, char **text, size_t *len,
                     firn_err *err)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
    return firn_read_file(path, max, (unsigned char **)text, len, err);
}

int agent_proc_read_stat(int pid, agent_proc_stat *st)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return FIRN_EIO;
    ssize_t n = read(fd, text, sizeof text);   /* one read: the kernel writes it whole */
    close(fd);
    if (n <= 0)
        return FIRN_EIO;
    return agent_proc_stat_parse(text, (size_t)n, st, NULL);
}

bool agent_proc_same(const agent_proc *p, const agent_proc_stat *st)
{
    return p->stat.start_time == st->start_time && p->stat.start_code == st->start_code &&
           p->stat.start_stack == st->start_stack;
}

static int load_maps(agent_proc *p, firn_err *err)
{
    char *text = NULL;
    size_t len = 0;
    if (read_proc(p->pid, "maps", AGENT_MAPS_MAX_BYTES, &text, &len, err) < 0)
        return err ? err->code : FIRN_EIO;
    agent_maps maps;
    int rc = agent_maps_parse(text, len, &maps, err);
    free(text);
    if (rc < 0)
        return rc;
    agent_maps_free(&p->maps);
    p->maps = maps;
    p->maps_current = true;
    static uint64_t maps_reads;   /* the sampling loop's thread only */
    p->maps_gen = ++maps_reads;
    return 0;
}

int agent_proc_load(agent_proc *p, int pid, const agent_proc_stat *st, firn_err *err)
{
    memset(p, 0, sizeof *p);
    p->pid = pid;
    p->stat = *st;
    p->perf_map_mtime_ns = p->perf_map_size = -1;
    int rc = load_maps(p, err);
    if (rc < 0)
        return rc;
    p->loaded = true;
    char *text = NULL;
    size_t len = 0;
    if (read_proc(pid, "comm", 4096, &text, &len, NULL) == 0) {
        snprintf(p->comm, sizeof p->comm, "%.*s", (int)strcspn(text, "\n"), text);
        free(text);
    }
    char exe[sizeof p->executable];
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    ssize_t n = readlink(path, exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        snprintf(p->executable, sizeof p->executable, "%s", exe);
    }
    if (read_proc(pid, "cgroup", AGENT_CGROUP_MAX_BYTES, &text, &len, NULL) == 0) {
        firn_err cerr = {0};
        if (agent_cgroup_path(text, len, p->cgroup, sizeof p->cgroup, &cerr) < 0)
            firn_log(FIRN_LOG_DEBUG, "symbolize", "bad cgroup file", "pid=%d err=\"%s\"", pid,
                     cerr.msg);
        free(text);
    }
    /* The pid inside the process's own namespace, for its perf map. */
    p->ns_pid = pid;
    if (read_proc(pid, "status", 1u << 16, &text, &len, NULL) == 0) {
        const char *ns = strstr(text, "\nNSpid:");
        if (ns) {
            const char *end = strchr(ns + 1, '\n');
            const char *last = end ? end : ns + strlen(ns);
            while (last > ns && (last[-1] == ' ' || last[-1] == '\t'))
                last--;
            const char *start = last;
            while (start > ns && start[-1] >= '0' && start[-1] <= '9')
                start--;
            if (start < last)
                p->ns_pid = atoi(start);
        }
        free(text);
    }
    return 0;
}

void agent_proc_free(agent_proc *p)
{
    agent_maps_free(&p->maps);
    agent_perf_map_free(&p->perf_map);
    memset(p, 0, sizeof *p);
}

/* The process's perf map, read again when its mtime or size changed (a
 * JIT appends to it as it compiles), checked once per drain. */
static const agent_perf_map *perf_map(agent_symbolizer *s, agent_proc *p)
{
    if (p->perf_map_current)
        return p->perf_map.syms ? &p->perf_map : NULL;
    p->perf_map_current = true;
    /* in the process's root, links resolved there (rootfs.c): a container
     * must not make the agent read a host file */
    char root[64], name[64], path[128];
    snprintf(root, sizeof root, "/proc/%d/root", p->pid);
    snprintf(name, sizeof name, "tmp/perf-%d.map", p->ns_pid);
    int fd = agent_root_open(root, name, false, NULL);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        agent_perf_map_free(&p->perf_map);
        p->perf_map_mtime_ns = p->perf_map_size = -1;
        return NULL;
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int64_t mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    if (mtime_ns != p->perf_map_mtime_ns || (int64_t)st.st_size != p->perf_map_size) {
        agent_perf_map_free(&p->perf_map);
        p->perf_map_mtime_ns = mtime_ns;
        p->perf_map_size = (int64_t)st.st_size;
        unsigned char *text = NULL;
        size_t len = 0;
        firn_err err = {0};
        if (firn_read_file(path, AGENT_PERF_MAP_MAX_BYTES, &text, &len, NULL) == 0 &&
            agent_perf_map_parse((const char *)text, len, &p->perf_map, &err) < 0) {
            atomic_fetch_add(&s->stats->object_errors, 1);
            char q[600];
            firn_log(FIRN_LOG_WARN, "symbolize", "bad perf map", "path=%s/%s err=%s", root,
                     name, firn_log_quote(q, sizeof q, err.msg));
        }
        free(text);
    }
    close(fd);
    return p->perf_map.syms ? &p->perf_map : NULL;
}

void agent_symbolize_user(agent_symbolizer *s, agent_proc *p, uint64_t addr, bool leaf,
                          agent_user_frame *out)
{
    memset(out, 0, sizeof *out);
    uint64_t pc = leaf ? addr : addr - 1;   /* a return address: the call is before it */
    const agent_map *m = p->loaded ? agent_maps_find(&p->maps, pc) : NULL;
    if (!m && p->loaded && !p->maps_current && load_maps(p, NULL) == 0)
        m = agent_maps_find(&p->maps, pc);   /* mapped since the maps were read? */
    out->map = m;
    if (!m || !m->path[0] || m->path[0] == '[') {
        /* anonymous or special ([vdso]...): JIT code names itself in a perf map */
        const agent_perf_map *pm = p->loaded ? perf_map(s, p) : NULL;
        const agent_perf_sym *sym = pm ? agent_perf_map_lookup(pm, pc) : NULL;
        out->jit_name = sym ? sym->name : NULL;
        return;
    }
    object *o = object_for(s, p->pid, m);
    out->build_id = o->build_id;
    if (!o->readable)
        return;
    out->has_functions = true;
    uint64_t file_off = pc - m->start + m->offset;
    for (size_t i = 0; i < o->n_seg; i++) {
        if (file_off >= o->seg[i].offset && file_off - o->seg[i].offset < o->seg[i].filesz) {
            uint64_t vaddr = file_off - o->seg[i].offset + o->seg[i].vaddr;
            out->n_frames = object_frames(s, o, vaddr, &out->frames);
            break;
        }
    }
}

/* ---- the symbolizer ------------------------------------------------------------ */

agent_symbolizer *agent_symbolizer_new(agent_symbolizer_stats *stats)
{
    agent_symbolizer *s = firn_xcalloc(1, sizeof *s);
    s->objects = firn_xcalloc(AGENT_MAX_OBJECTS, sizeof *s->objects);
    firn_u64map_init(&s->by_file, AGENT_MAX_OBJECTS * 2);
    s->stats = stats;
    load_kallsyms(s);
    return s;
}

void agent_symbolizer_begin(agent_symbolizer *s)
{
    s->drain++;
}

void agent_symbolizer_end(agent_symbolizer *s)
{
    bool closed = false;
    for (size_t i = 0; i < AGENT_MAX_OBJECTS; i++)
        if (s->objects[i].used &&
            s->drain - s->objects[i].last_used >
                (s->objects[i].dwfl ? AGENT_OPEN_FILE_TTL : AGENT_OBJECT_TTL)) {
            object_close(s, &s->objects[i]);
            closed = true;
        }
    if (closed)
        rebuild_index(s);
    size_t files_open = 0, index_bytes = 0;
    for (size_t i = 0; i < AGENT_MAX_OBJECTS; i++) {
        files_open += s->objects[i].dwfl != NULL;
        index_bytes += s->objects[i].syms ? symbolize_symtab_bytes(s->objects[i].syms) : 0;
    }
    atomic_store(&s->stats->objects_open, s->n_objects);
    atomic_store(&s->stats->files_open, files_open);
    atomic_store(&s->stats->index_bytes, index_bytes);
}

void agent_symbolizer_free(agent_symbolizer *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < AGENT_MAX_OBJECTS; i++)
        if (s->objects[i].used)
            object_close(s, &s->objects[i]);
    free(s->objects);
    firn_u64map_destroy(&s->by_file);
    agent_kallsyms_free(&s->kallsyms);
    free(s);
}
