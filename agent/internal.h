/* internal.h -- what the files of agent/ share beyond agent.h: the
 * symbolizer, the BPF sampler and the pusher.  All of them are driven by
 * agent.c; their counters are atomics that /metrics reads. */
#ifndef FIRN_AGENT_INTERNAL_H
#define FIRN_AGENT_INTERNAL_H

#include "agent/agent.h"
#include "symbolize/symbolize.h"

/* ---- symbolizer (symbolize.c) ------------------------------------------------- */

typedef struct agent_symbolizer_stats {
    _Atomic uint64_t cache_hits, cache_misses;  /* addresses, per object */
    _Atomic uint64_t objects_opened, object_errors;
    _Atomic uint64_t objects_open;       /* files known, one per build ID */
    _Atomic uint64_t files_open;         /* of those, files kept open (DWARF) */
    _Atomic uint64_t index_bytes;        /* the symbol indexes' bytes */
} agent_symbolizer_stats;

/* What is known of one process, kept across drains (agent.c's cache).
 * Read in full once (agent_proc_load); a later drain that samples the same
 * image again (agent_proc_stat identity: start time, text and stack
 * addresses) reads only /proc/PID/stat, and re-reads the maps when an
 * address falls outside every executable mapping (a library loaded since),
 * the perf map when its mtime or size changed. */
typedef struct agent_proc {
    int pid, ns_pid;
    bool loaded;                  /* read in full (the process still ran) */
    agent_proc_stat stat;         /* its identity when read */
    agent_maps maps;
    bool maps_current;            /* maps read in this drain: no re-read on a miss */
    char comm[64];
    char executable[1024];
    char cgroup[1024];
    agent_perf_map perf_map;
    bool perf_map_current;        /* perf map checked in this drain */
    int64_t perf_map_mtime_ns, perf_map_size;   /* of what perf_map holds, -1: none */
    uint64_t loaded_at;           /* the drain of the full read (agent.c) */
    uint64_t last_seen;           /* the drain that last sampled it (agent.c) */
    bool superseded;              /* a newer read of the same pid replaced it */
    bool gone;                    /* found exited: freed after this drain */
    uint64_t maps_gen;            /* changes with every read of the maps (never 0 after one) */
    /* What its unwind entry (unwind.c) was written from: maps_gen then,
     * and the table slots it names with their epochs. */
    uint64_t unwind_gen;
    size_t n_unwind;
    uint16_t unwind_slot[PROFILE_MAX_MAPPINGS];
    uint32_t unwind_epoch[PROFILE_MAX_MAPPINGS];
    /* The files its sampled stacks passed through (agent_unwind_note):
     * only these get a table compiled for it; n_hit_written is n_hit when
     * its entry was written. */
    uint64_t hit_files[PROFILE_MAX_MAPPINGS];
    size_t n_hit, n_hit_written;
} agent_proc;

/* /proc/PID/stat of pid into st; an error when the process is gone. */
int agent_proc_read_stat(int pid, agent_proc_stat *st);
/* Whether st (just read) is still the image p was read from. */
bool agent_proc_same(const agent_proc *p, const agent_proc_stat *st);
/* Read /proc/PID/{maps,comm,exe,cgroup,status} of the process st
 * identifies; an error when it is gone (its maps cannot be read). */
int agent_proc_load(agent_proc *p, int pid, const agent_proc_stat *st, firn_err *err);
void agent_proc_free(agent_proc *p);

typedef struct agent_symbolizer agent_symbolizer;

/* One user frame resolved. */
typedef struct agent_user_frame {
    const agent_map *map;          /* NULL: in no executable mapping */
    const char *build_id;          /* of the mapped file, "" or NULL when unknown */
    bool has_functions;            /* the file was read */
    const symbolize_frame *frames;  /* innermost first; valid until the next call */
    size_t n_frames;
    const char *jit_name;          /* from the perf map, or NULL */
} agent_user_frame;

/* Reads /proc/kallsyms (a warning when it cannot: kernel frames then stay
 * addresses). */
agent_symbolizer *agent_symbolizer_new(agent_symbolizer_stats *stats);
void agent_symbolizer_free(agent_symbolizer *s);
/* Around each drain: begin counts drains, end closes objects unused for a
 * while. */
void agent_symbolizer_begin(agent_symbolizer *s);
void agent_symbolizer_end(agent_symbolizer *s);
/* The kernel symbol ("name" or "name [module]") at addr, or NULL. */
const char *agent_symbolize_kernel(agent_symbolizer *s, uint64_t addr);
/* addr of process p; leaf says whether it is the interrupted PC (else a
 * return address, looked up at addr - 1). */
void agent_symbolize_user(agent_symbolizer *s, agent_proc *p, uint64_t addr, bool leaf,
                          agent_user_frame *out);

/* ---- unwind tables in the BPF maps (unwind.c) ---------------------------------- */

typedef struct agent_unwind_stats {
    _Atomic uint64_t tables, rows, bytes;        /* now in the BPF maps */
    _Atomic uint64_t loaded;                     /* tables compiled and loaded */
    _Atomic uint64_t failed;                     /* files without a usable CFI (or unreadable) */
    _Atomic uint64_t evicted;                    /* tables evicted for room */
    _Atomic uint64_t no_room;                    /* tables that did not fit */
    _Atomic uint64_t procs_full;                 /* processes the procs map had no room for */
    _Atomic uint64_t mappings_dropped;           /* mappings past PROFILE_MAX_MAPPINGS */
    _Atomic uint64_t deferred;                   /* process updates left for the next drain */
} agent_unwind_stats;

typedef struct agent_unwinder agent_unwinder;

/* Over the BPF maps unwind_rows (n_shards entries), unwind_tables
 * (n_tables) and unwind_procs. */
agent_unwinder *agent_unwinder_new(int rows_fd, int tables_fd, int procs_fd, uint32_t n_shards,
                                   uint32_t n_tables, agent_unwind_stats *stats);
void agent_unwinder_free(agent_unwinder *u);
/* Once per drain, before the updates: once compiling tables took
 * budget_ms, no other is started; the processes that need one wait. */
void agent_unwinder_begin(agent_unwinder *u, int64_t budget_ms);
/* p was sampled in this drain (samples times): (re)write its entry when
 * its maps, the tables it names or the files its stacks passed through
 * changed since, loading the tables of those files (past the deadline:
 * left for the next drain, counted); files with a table already get it
 * whether its stacks passed through them or not.  When
 * the maps are full, tables unused in this drain are evicted first (least
 * recently used), then those of processes with fewer samples. */
void agent_unwinder_update(agent_unwinder *u, agent_proc *p, uint64_t samples);
/* pid exited: its entry goes. */
void agent_unwinder_forget(agent_unwinder *u, int pid);
/* A sampled stack of p has a frame in mapping m: its file is one p needs
 * a table for. */
void agent_unwind_note(agent_proc *p, const agent_map *m);

/* ---- sampler (sampler.c) ------------------------------------------------------- */

typedef struct agent_sampler agent_sampler;

typedef struct agent_sampler_stats {
    _Atomic uint64_t samples;             /* samples the BPF side took */
    _Atomic uint64_t user_stack_errors, kernel_stack_errors;
    _Atomic uint64_t stack_map_full, counts_full;
    _Atomic uint64_t stacks_lost;         /* ids a count referenced that were gone */
    _Atomic uint64_t stacks_table, stacks_fp;   /* user stacks walked by the program */
    _Atomic uint64_t trunc_no_table, trunc_table_miss, trunc_depth, trunc_read_fault;
    _Atomic uint64_t ustack_map_full;
    _Atomic uint64_t drains;
    _Atomic uint64_t cpus;                /* perf events attached */
    _Atomic uint64_t map_bytes;           /* BPF memory of the maps (memlock) */
} agent_sampler_stats;

/* One key of a drain: a stack of a thread with its count (CPU samples, or
 * blocks off the CPU and their time).  Addresses are leaf first;
 * n_user/n_kernel are 0 when that stack is absent. */
typedef struct agent_sample {
    uint32_t pid, tid;
    char comm[16];
    bool off_cpu;
    uint64_t count;
    uint64_t wait_ns;                     /* off_cpu: nanoseconds blocked */
    const uint64_t *user;
    size_t n_user;
    const uint64_t *kernel;
    size_t n_kernel;
} agent_sample;

typedef void (*agent_sample_fn)(void *ctx, const agent_sample *s);

/* Load the BPF program (stack maps of stack_map_size entries, unwind_shards
 * shards of unwind rows: 0 turns table unwinding off) and attach it to a
 * CPU-clock perf event at hz on every online CPU; with off_cpu_min_ns >= 0
 * the off-CPU program too (blocks shorter than that are not counted).
 * Errors name what is missing: root or CAP_BPF/CAP_PERFMON, BTF,
 * perf_event support. */
agent_sampler *agent_sampler_new(int hz, uint32_t stack_map_size, uint32_t unwind_shards,
                                 int64_t off_cpu_min_ns, agent_sampler_stats *stats,
                                 agent_unwind_stats *unwind_stats, firn_err *err);
/* The unwind tables of the sampler's maps; NULL when table unwinding is off. */
agent_unwinder *agent_sampler_unwinder(agent_sampler *s);
/* Flip generations and hand every key of the previous one to fn, then
 * clear it.  Samples keep going into the new generation meanwhile. */
void agent_sampler_drain(agent_sampler *s, agent_sample_fn fn, void *ctx);
void agent_sampler_free(agent_sampler *s);

/* ---- pusher (push.c) -------------------------------------------------------------- */

typedef struct agent_pusher agent_pusher;

typedef struct agent_push_stats {
    _Atomic uint64_t ok, failed;            /* requests (batches) by outcome */
    _Atomic uint64_t retried;               /* profiles put back to be sent again */
    _Atomic uint64_t rejected;              /* profiles firn refused (4xx), not retried */
    _Atomic uint64_t profiles;              /* profiles firn stored */
    _Atomic uint64_t bytes;                 /* their bytes */
} agent_push_stats;

/* A thread taking every profile waiting in q and POSTing them as one batch
 * to remote/api/v1/ingest.  A failure (connection refused, timeout, 5xx,
 * 429: of the batch, or of a profile in firn's answer) puts the profiles
 * concerned back and waits, doubling the wait from 500 ms up to 30 s; a
 * success resets it.  A profile refused with another 4xx is dropped. */
agent_pusher *agent_pusher_start(const char *remote, agent_pushbuf *q, agent_push_stats *stats,
                                 firn_err *err);
/* Stop: tries what is queued for up to grace_ms, then ends the thread. */
void agent_pusher_stop(agent_pusher *p, int64_t grace_ms);

/* ---- Kubernetes names (k8s.c) ------------------------------------------------- */

typedef struct agent_k8s agent_k8s;

/* Watch the pods of node through the API server (discovery/'s Kubernetes
 * client: kubeconfig, or NULL for the in-cluster service account).  NULL
 * with an error when there is no way to reach a server at all; a server
 * that fails later is retried with back-off. */
agent_k8s *agent_k8s_start(const char *node, const char *kubeconfig, firn_err *err);
void agent_k8s_stop(agent_k8s *k);

/* The labels of the pod the cgroup says a process runs in: namespace, pod,
 * container (when the container id is known), then the pod's labels as
 * __meta_kubernetes_pod_label_NAME for relabel_configs; at most cap, the
 * strings copied into arena.  0 when no known pod matches. */
size_t agent_k8s_labels(agent_k8s *k, const agent_cgroup_info *cg, firn_arena *arena,
                        firn_label *out, size_t cap);

/* The pods known now; *refresh_failures: lists and watches that failed. */
size_t agent_k8s_pods(agent_k8s *k, uint64_t *refresh_failures);

#endif
