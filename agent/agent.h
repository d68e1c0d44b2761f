/* agent.h -- firn-agent: a whole-system CPU profiler that samples every
 * process with a BPF program on a CPU-clock perf event, symbolizes the
 * stacks itself, and pushes one pprof per process per interval to firn.
 *
 * The pieces, each in its own file:
 *   procfs.c    parsers of what the kernel tells about processes, pure and
 *               capped: /proc/kallsyms, /proc/PID/maps, /proc/PID/cgroup
 *               (and what a cgroup path says of containers and pods), JIT
 *               perf maps (/tmp/perf-PID.map)
 *   pushbuf.c   the bounded queue of profiles waiting to be pushed: drops
 *               the oldest, counted, when full
 *   profile.c   one process's samples into a pprof shaped as Go's CPU profile
 *   symbolize.c kernel and user addresses into mappings, functions and
 *               lines (kallsyms; libdwfl on the files of /proc/PID/maps,
 *               through /proc/PID/root; perf maps), cached per build ID
 *   sampler.c   the BPF program (bpf/profile.bpf.c) on every online CPU,
 *               and draining its maps without losing samples
 *   cfi.c       a file's .eh_frame/.debug_frame into the unwind rows the
 *               BPF program walks user stacks with (elfutils' CFI)
 *   unwind.c    those tables in the BPF maps: per file, shared, bounded,
 *               evicted least recently used; each process's mappings
 *   push.c      the push thread: libcurl, gzip, retries with backoff
 *   agent.c     the loop: every interval drain, symbolize, label, relabel,
 *               build, enqueue; and the agent's /metrics
 *
 * Threads: agent_run's caller is the sampling loop (drain, symbolize,
 * build); the pusher has one thread of its own; the kernel samples on
 * every CPU.  The loop never waits for the network: it only enqueues, and
 * a full queue drops its oldest profile.  Metrics are atomics, read by
 * the HTTP thread.
 *
 * Depends on model/ and pprof/, libbpf, elfutils (libdwfl, libelf) and
 * libcurl; talks to firn over HTTP only.
 */
#ifndef FIRN_AGENT_H
#define FIRN_AGENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "bpf/profile.h"
#include "model/model.h"
#include "pprof/pprof.h"

/* ---- /proc/kallsyms (procfs.c) --------------------------------------------- */

/* Caps on what a /proc file may cost the agent. */
#define AGENT_KALLSYMS_MAX_BYTES (64u << 20)
#define AGENT_MAPS_MAX_BYTES (16u << 20)
#define AGENT_MAPS_MAX_ENTRIES 65536
#define AGENT_PERF_MAP_MAX_BYTES (64u << 20)
#define AGENT_PERF_MAP_MAX_ENTRIES 1000000
#define AGENT_CGROUP_MAX_BYTES (64u << 10)

typedef struct agent_ksym {
    uint64_t addr;
    const char *name;     /* "name" or "name [module]" */
} agent_ksym;

/* The kernel's text symbols, sorted by address. */
typedef struct agent_kallsyms {
    agent_ksym *syms;
    size_t n;
    firn_arena *arena;    /* the names */
} agent_kallsyms;

/* Parse the text of /proc/kallsyms ("ADDR TYPE NAME [MODULE]" lines).
 * Only text symbols (t, T, w, W) are kept.  A malformed line is an error
 * naming its number.  FIRN_EINVAL as well when every address is 0: the
 * kernel hides them (kptr_restrict) from a reader without CAP_SYSLOG. */
int agent_kallsyms_parse(const char *text, size_t len, agent_kallsyms *out, firn_err *err);
/* The symbol containing addr (the last one at or below it), or NULL. */
const agent_ksym *agent_kallsyms_lookup(const agent_kallsyms *k, uint64_t addr);
void agent_kallsyms_free(agent_kallsyms *k);

/* ---- /proc/PID/maps (procfs.c) ---------------------------------------------- */

typedef struct agent_map {
    uint64_t start, limit, offset;
    uint32_t dev_major, dev_minor;
    uint64_t inode;
    bool exec;            /* 'x' in the permissions */
    const char *path;     /* "" for anonymous; " (deleted)" removed */
    bool deleted;         /* the file was replaced or removed since it was mapped */
} agent_map;

typedef struct agent_maps {
    agent_map *maps;      /* executable entries only, in address order */
    size_t n;
    firn_arena *arena;
} agent_maps;

/* Parse the text of /proc/PID/maps, keeping the executable entries.  A
 * malformed line is an error naming its number; more than
 * AGENT_MAPS_MAX_ENTRIES entries FIRN_ETOOBIG. */
int agent_maps_parse(const char *text, size_t len, agent_maps *out, firn_err *err);
/* The entry containing addr, or NULL. */
const agent_map *agent_maps_find(const agent_maps *m, uint64_t addr);
void agent_maps_free(agent_maps *m);

/* ---- /proc/PID/stat (procfs.c) ------------------------------------------------ */

/* What tells one process image from another under the same pid: the start
 * time (clock ticks after boot; another process reusing the pid has
 * another) and, as exec keeps the start time, the addresses of the
 * program's text and of its stack (an exec maps them anew; with ASLR, at
 * new addresses).  The kernel shows startcode and startstack as 0 to
 * readers that may not ptrace the process. */
typedef struct agent_proc_stat {
    char comm[16];
    uint64_t start_time, start_code, start_stack;
} agent_proc_stat;

/* Parse the text of /proc/PID/stat.  comm may hold spaces and ')': the
 * fields start after the last ')'.  FIRN_EINVAL when fields are missing. */
int agent_proc_stat_parse(const char *text, size_t len, agent_proc_stat *out, firn_err *err);

/* ---- JIT perf maps (procfs.c) ------------------------------------------------ */

typedef struct agent_perf_sym {
    uint64_t start, size;
    const char *name;
} agent_perf_sym;

/* /tmp/perf-PID.map, as Node (--perf-basic-prof) and Java agents write it:
 * "START SIZE NAME" per line, hex numbers without 0x (with it accepted). */
typedef struct agent_perf_map {
    agent_perf_sym *syms;  /* sorted by start */
    size_t n;
    firn_arena *arena;
} agent_perf_map;

int agent_perf_map_parse(const char *text, size_t len, agent_perf_map *out, firn_err *err);
const agent_perf_sym *agent_perf_map_lookup(const agent_perf_map *m, uint64_t addr);
void agent_perf_map_free(agent_perf_map *m);

/* ---- cgroups, containers, pods (procfs.c) ------------------------------------- */

/* The cgroup path of a process from the text of /proc/PID/cgroup: the
 * unified hierarchy's ("0::/path") when there is one, else the v1 line of
 * the cpu controller, else of name=systemd, else the first.  Writes it into
 * out (size bytes, NUL-terminated); FIRN_EINVAL for a malformed line. */
int agent_cgroup_path(const char *text, size_t len, char *out, size_t size, firn_err *err);

#define AGENT_CONTAINER_ID_LEN 64
#define AGENT_POD_UID_LEN 36

/* What a cgroup path says: the container id (64 hex digits) of docker,
 * containerd, cri-o and podman, in cgroupfs or systemd naming
 * (/docker/ID, /system.slice/docker-ID.scope, cri-containerd-ID.scope,
 * crio-ID.scope, libpod-ID.scope, /kubepods/.../ID); the Kubernetes pod
 * uid from kubepods paths (/kubepods/besteffort/podUID/...,
 * kubepods-burstable-podUID_WITH_UNDERSCORES.slice: '_' back to '-');
 * the systemd unit (the last *.service or *.scope that is not a
 * container's).  Fields not found are "". */
typedef struct agent_cgroup_info {
    char container_id[AGENT_CONTAINER_ID_LEN + 1];
    char pod_uid[AGENT_POD_UID_LEN + 1];
    char systemd_unit[256];
} agent_cgroup_info;

void agent_cgroup_parse(const char *path, agent_cgroup_info *out);

/* Kubernetes labels a process may get (k8s.c): namespace, pod, container
 * and the pod's labels as __meta_kubernetes_pod_label_NAME (the rest of a
 * pod with more labels than that is left out). */
#define AGENT_K8S_MAX_LABELS 64

/* The container id of a Kubernetes container status's containerID
 * ("containerd://ID", "cri-o://ID", "docker://ID") into out, as
 * agent_cgroup_parse finds it in a cgroup path: 64 lowercase hex digits;
 * false for any other shape. */
bool agent_k8s_container_id(const char *status_id, char out[AGENT_CONTAINER_ID_LEN + 1]);

/* ---- unwind tables (cfi.c) ---------------------------------------------------- */

/* Rows one file's table may have: what its PROFILE_MAX_CHUNKS shards hold. */
#define AGENT_UNWIND_MAX_ROWS ((uint32_t)PROFILE_SHARD_ROWS * PROFILE_MAX_CHUNKS)

/* A file's unwind rows (bpf/profile.h), sorted by pc, at ELF addresses. */
typedef struct agent_unwind_table {
    struct profile_unwind_row *rows;
    size_t n;
    size_t fdes;              /* FDEs turned into rows */
    size_t fdes_skipped;      /* overlapping an earlier one */
    size_t rows_unsupported;  /* rule sets without a row kind (PROFILE_CFA_NONE) */
} agent_unwind_table;

struct Elf;
/* Compile elf's .eh_frame (else its .debug_frame) into rows.  An error
 * when the file has neither, is not x86-64, its CFI cannot be read, or it
 * needs more than AGENT_UNWIND_MAX_ROWS rows or addresses above 4 GiB. */
int agent_cfi_compile(struct Elf *elf, agent_unwind_table *out, firn_err *err);
/* The row covering ELF address pc (the last at or below it), or NULL. */
const struct profile_unwind_row *agent_unwind_lookup(const agent_unwind_table *t, uint64_t pc);
void agent_unwind_table_free(agent_unwind_table *t);

/* ---- the push buffer (pushbuf.c) ---------------------------------------------- */

/* One profile to push: a gzipped pprof and the URL query of its labels. */
typedef struct agent_push_item {
    unsigned char *body;
    size_t body_len;
    char *query;          /* "name=process_cpu&delta=true&pid=1&..." */
    int64_t enqueued_ms;  /* firn_mono_ms() when queued */
} agent_push_item;

void agent_push_item_free(agent_push_item *it);

/* A FIFO bounded by item count and by bytes: a push that would exceed
 * either drops the oldest items (freeing them) until it fits, and counts
 * them; an item larger than max_bytes on its own is dropped itself.
 * Thread-safe: the sampling loop puts, the pusher takes. */
typedef struct agent_pushbuf agent_pushbuf;

/* NULL when either bound is 0; max_items is the caller's to cap (agent_new
 * takes at most AGENT_MAX_BUFFER_PROFILES). */
agent_pushbuf *agent_pushbuf_new(size_t max_items, size_t max_bytes);
/* Frees the items still queued. */
void agent_pushbuf_free(agent_pushbuf *q);
/* Takes ownership of *it (its pointers are cleared).  Returns how many
 * items were dropped to make room (1 when it itself was too big). */
size_t agent_pushbuf_put(agent_pushbuf *q, agent_push_item *it);
/* agent_pushbuf_put of each of items[0..n) at once: the pusher, woken
 * once, finds them all (a drain's profiles go in one request). */
size_t agent_pushbuf_put_many(agent_pushbuf *q, agent_push_item *items, size_t n);
/* Put back at the head an item that could not be pushed yet (a retry
 * later), unless newer items have filled the buffer: then it is the one
 * dropped (returns 1). */
size_t agent_pushbuf_requeue(agent_pushbuf *q, agent_push_item *it);
/* Wait up to timeout_ms for an item; true with *it filled when one was
 * taken, false on timeout or once agent_pushbuf_close was called and the
 * buffer is empty. */
bool agent_pushbuf_take(agent_pushbuf *q, agent_push_item *it, int64_t timeout_ms);
/* Wake every waiter; takes then return what is left, then false. */
void agent_pushbuf_close(agent_pushbuf *q);
size_t agent_pushbuf_len(agent_pushbuf *q);
size_t agent_pushbuf_bytes(agent_pushbuf *q);
uint64_t agent_pushbuf_dropped(agent_pushbuf *q);

/* ---- one process's profile (profile.c) ------------------------------------------ */

/* A pprof shaped as Go's CPU profile: sample types samples/count and
 * cpu/nanoseconds, period type cpu/nanoseconds, period 1e9/hz (hz > 0,
 * checked by agent_new); each sample
 * is a stack with its count, the nanoseconds being count * period.  A thin
 * layer on pprof_builder (which deduplicates), so that the symbolizer adds
 * mappings, functions and locations and the loop adds samples. */
typedef struct agent_profile {
    pprof_builder *b;
    int64_t period;
} agent_profile;

void agent_profile_init(agent_profile *p, int hz, int64_t time_nanos, int64_t duration_nanos);
/* The same for time off the CPU: sample types switches/count and
 * wait/nanoseconds, period type wait/nanoseconds, period 1; each sample a
 * stack with its blocks and their nanoseconds (agent_profile_sample_off_cpu). */
void agent_profile_init_off_cpu(agent_profile *p, int64_t time_nanos, int64_t duration_nanos);
/* A mapping (filename and build_id are strings, "" when unknown). */
uint32_t agent_profile_mapping(agent_profile *p, uint64_t start, uint64_t limit,
                               uint64_t offset, const char *filename, const char *build_id,
                               bool has_functions, bool has_lines);
/* A function (any field may be NULL or 0). */
uint32_t agent_profile_function(agent_profile *p, const char *name, const char *system_name,
                                const char *filename, int64_t start_line);
/* A location at address in mapping (PPROF_NONE: none) with lines[0..n)
 * (innermost first; functions from agent_profile_function). */
uint32_t agent_profile_location(agent_profile *p, uint32_t mapping, uint64_t address,
                                const pprof_line *lines, size_t n_lines);
/* A stack (location indexes, leaf first) sampled count times; thread_name
 * (may be NULL) becomes the sample label "thread_name". */
int agent_profile_sample(agent_profile *p, const uint32_t *locations, size_t n,
                         uint64_t count, const char *thread_name);
/* A stack of an off-CPU profile: blocked `switches` times for nanoseconds. */
int agent_profile_sample_off_cpu(agent_profile *p, const uint32_t *locations, size_t n,
                                 uint64_t switches, uint64_t nanoseconds,
                                 const char *thread_name);
/* The finished profile, never NULL (err is not written); p is consumed. */
pprof_profile *agent_profile_finish(agent_profile *p, firn_err *err);
void agent_profile_discard(agent_profile *p);

/* ---- the agent (agent.c) ------------------------------------------------------------ */

#define AGENT_DEFAULT_HZ 19
#define AGENT_DEFAULT_DURATION_MS 10000
#define AGENT_DEFAULT_JOB "firn-agent"
#define AGENT_DEFAULT_BUFFER_PROFILES 4096
#define AGENT_DEFAULT_BUFFER_BYTES (32u << 20)
#define AGENT_MAX_BUFFER_PROFILES (1 << 20)
#define AGENT_DEFAULT_OFF_CPU_MIN_NS 1000000   /* --off-cpu-min-block: 1ms */

typedef struct agent_options {
    int frequency_hz;              /* samples per second per CPU, 1..10000 */
    int64_t duration_ms;           /* drain and push interval, >= 100 */
    uint32_t stack_map_size;       /* stack-trace map entries per generation */
    uint32_t unwind_shards;        /* BPF memory for unwind tables, in shards of
                                      PROFILE_SHARD_ROWS rows; 0: frame pointers only */
    int64_t off_cpu_min_ns;        /* off-CPU profiles of blocks this long or longer;
                                      -1: none (the default) */
    const char *remote;            /* firn's base URL: http://HOST:PORT */
    const char *node;              /* the "node" label; NULL: the host name */
    /* Kubernetes names (namespace, pod, container, pod labels) from the API
     * server's pods of this node (spec.nodeName = node); kubeconfig NULL:
     * the in-cluster service account. */
    bool kubernetes;
    const char *kubeconfig;
    /* Added to every profile's labels after the agent's own (job included:
     * an external label job=... overrides firn-agent).  Read-only, must
     * outlive the agent. */
    const firn_label *external_labels;
    size_t n_external_labels;
    /* Applied to each profile's labels last; a rule that drops drops the
     * profile.  Labels starting with "__" are removed afterwards. */
    const firn_relabel_config *relabel_configs;
    size_t n_relabel_configs;
    size_t buffer_profiles;        /* push buffer bounds */
    size_t buffer_bytes;
} agent_options;

void agent_options_default(agent_options *o);

typedef struct agent agent;

/* Load and attach the BPF program, read kernel symbols, start the pusher.
 * Sampling starts here.  NULL with an error naming what is missing (root,
 * BTF, perf events) when the agent cannot run. */
agent *agent_new(const agent_options *o, firn_err *err);
/* The sampling loop: every duration_ms drain, symbolize, build one profile
 * per process, queue it for pushing; returns after agent_stop, once the
 * samples since the last drain were drained and queued too. */
void agent_run(agent *a);
/* From any thread (not a signal handler). */
void agent_stop(agent *a);
/* The agent's metrics, Prometheus text format; from any thread. */
void agent_metrics_write(agent *a, firn_buf *b);
/* Whether firn answers REMOTE/-/healthy (3 s at most, push.c); an error
 * saying what happened when not. */
int agent_remote_check(const char *remote, firn_err *err);
/* Stop pushing (what is queued gets grace_ms), detach, free. */
void agent_free(agent *a, int64_t grace_ms);

/* ---- container files (rootfs.c) ----------------------------------------------- */

/* Open path (read-only) as seen from the root directory root (a process's
 * /proc/PID/root): links and ".." resolve inside root, never outside it
 * (openat2 RESOLVE_IN_ROOT; without it, or when walk_only, a walk that
 * refuses every link and ".." instead).  A file descriptor, or a negative
 * code with err naming the path. */
int agent_root_open(const char *root, const char *path, bool walk_only, firn_err *err);

#endif
