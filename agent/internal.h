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
    _Atomic uint64_t objects_open;
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
agent_symbolizer *agent_symbolizer_new(agent_symbolizer_stats *stats, firn_err *err);
void agent_symbolizer_free(agent_symbolizer *s);
/* Around each drain: begin counts drains, end closes objects unused for a
 * while. */
void agent_symbolizer_begin(agent_symbolizer *s);
void agent_symbolizer_end(agent_symbolizer *s);
/* The kernel symbol ("name" or "name [module]") at addr, or NULL. */
const char *agent_symbolize_kernel(agent_symbolizer *s, uint64_t addr);
/* addr of process p; leaf says whether it is the interrupted PC (else a
 * return address, looked up at addr - 1). */
int agent_symbolize_user(agent_symbolizer *s, agent_proc *p, uint64_t addr, bool leaf,
                         agent_user_frame *out);

/* ---- sampler (sampler.c) ------------------------------------------------------- */

typedef struct agent_sampler agent_sampler;

typedef struct agent_sampler_stats {
    _Atomic uint64_t samples;             /* samples the BPF side took */
    _Atomic uint64_t user_stack_errors, kernel_stack_errors;
    _Atomic uint64_t stack_map_full, counts_full;
    _Atomic uint64_t stacks_lost;         /* ids a count referenced that were gone */
    _Atomic uint64_t drains;
    _Atomic uint64_t cpus;                /* perf events attached */
} agent_sampler_stats;

/* One key of a drain: a stack of a thread with its count.  Addresses are
 * leaf first; n_user/n_kernel are 0 when that stack is absent. */
typedef struct agent_sample {
    uint32_t pid, tid;
    char comm[16];
    uint64_t count;
    const uint64_t *user;
    size_t n_user;
    const uint64_t *kernel;
    size_t n_kernel;
} agent_sample;

typedef void (*agent_sample_fn)(void *ctx, const agent_sample *s);

/* Load the BPF program (stack maps of stack_map_size entries) and attach
 * it to a CPU-clock perf event at hz on every online CPU.  Errors name
 * what is missing: root or CAP_BPF/CAP_PERFMON, BTF, perf_event support. */
agent_sampler *agent_sampler_new(int hz, uint32_t stack_map_size,
                                 agent_sampler_stats *stats, firn_err *err);
/* Flip generations and hand every key of the previous one to fn, then
 * clear it.  Samples keep going into the new generation meanwhile. */
void agent_sampler_drain(agent_sampler *s, agent_sample_fn fn, void *ctx);
void agent_sampler_free(agent_sampler *s);

/* ---- pusher (push.c) -------------------------------------------------------------- */

typedef struct agent_pusher agent_pusher;

typedef struct agent_push_stats {
    _Atomic uint64_t ok, failed, retried;   /* pushes by outcome (attempts) */
    _Atomic uint64_t rejected;              /* 4xx: firn refused the profile, not retried */
    _Atomic uint64_t bytes;                 /* body bytes firn accepted */
} agent_push_stats;

/* A thread taking profiles from q and POSTing them to
 * remote/api/v1/ingest?QUERY.  A failure (connection refused, timeout,
 * 5xx, 429) puts the profile back and waits, doubling the wait from
 * 500 ms up to 30 s; a success resets it.  4xx other than 429 drops it. */
agent_pusher *agent_pusher_start(const char *remote, agent_pushbuf *q, agent_push_stats *stats,
                                 firn_err *err);
/* Stop: tries what is queued for up to grace_ms, then ends the thread. */
void agent_pusher_stop(agent_pusher *p, int64_t grace_ms);

#endif
