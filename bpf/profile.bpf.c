/* profile.bpf.c -- firn-agent's kernel side: on every CPU-clock sample,
 * count (process, thread, user stack, kernel stack, comm) in the current
 * generation's maps.  The kernel stack, and the user stack of a process
 * the agent has no unwind tables for, come from bpf_get_stackid (frame
 * pointers).  A process with tables (the `unwind_procs` map, filled by
 * agent/unwind.c) has its user stack walked here: per frame the row of
 * its file's table gives the caller's CFA, return address and rbp; where
 * no table covers a pc, frame pointers.  Everything else happens in
 * userspace (agent/sampler.c). */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "profile.h"

#define EFAULT 14
#define ENOMEM 12
#define EEXIST 17
#define ENOENT 2

char LICENSE[] SEC("license") = "GPL";

/* Which generation of maps samples go to; the agent flips it. */
volatile __u32 generation;

/* max_entries of the stack maps is set by the agent before loading
 * (--stack-map-size). */
#define STACK_MAP(name)                                              \
    struct {                                                         \
        __uint(type, BPF_MAP_TYPE_STACK_TRACE);                      \
        __uint(key_size, sizeof(__u32));                             \
        __uint(value_size, PROFILE_MAX_DEPTH * sizeof(__u64));       \
        __uint(max_entries, PROFILE_DEFAULT_STACKS);                 \
    } name SEC(".maps")

#define COUNTS_MAP(name)                                             \
    struct {                                                         \
        __uint(type, BPF_MAP_TYPE_HASH);                             \
        __type(key, struct profile_key);                             \
        __type(value, __u64);                                        \
        __uint(max_entries, PROFILE_MAX_KEYS);                       \
    } name SEC(".maps")

/* Stacks the program walked, by hash; max_entries as the stack maps'. */
#define USTACKS_MAP(name)                                            \
    struct {                                                         \
        __uint(type, BPF_MAP_TYPE_HASH);                             \
        __type(key, __u64);                                          \
        __type(value, struct profile_stack);                         \
        __uint(max_entries, PROFILE_DEFAULT_STACKS);                 \
    } name SEC(".maps")

STACK_MAP(stacks0);
STACK_MAP(stacks1);
COUNTS_MAP(counts0);
COUNTS_MAP(counts1);
USTACKS_MAP(ustacks0);
USTACKS_MAP(ustacks1);

/* The unwind tables (bpf/profile.h); sizes set by the agent before loading. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, struct profile_shard);
    __uint(max_entries, PROFILE_DEFAULT_SHARDS);
} unwind_rows SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, struct profile_table);
    __uint(max_entries, PROFILE_DEFAULT_TABLES);
} unwind_tables SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, __u32);
    __type(value, struct profile_proc);
    __uint(max_entries, PROFILE_DEFAULT_PROCS);
} unwind_procs SEC(".maps");

/* Where a walk is: the stack so far and the registers of the frame to
 * unwind next (per CPU: a walk is 1 KiB, more than the BPF stack). */
struct walk {
    struct profile_stack stack;
    __u64 ip, sp, bp;
    __u64 hash;
    __u32 pid;
    __u32 len;
    __u32 table_steps;
    __u32 end;              /* why the walk ended: enum walk_end */
    __u8 exact;             /* ip is not a return address (leaf, after a signal) */
};

enum walk_end {
    WALK_ON = 0,
    WALK_DONE,              /* the outermost frame */
    WALK_NO_TABLE,
    WALK_TABLE_MISS,
    WALK_DEPTH,
    WALK_READ_FAULT,
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __type(key, __u32);
    __type(value, struct walk);
    __uint(max_entries, 1);
} walks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, PROFILE_STAT_N);
} stats SEC(".maps");

static __always_inline void stat_inc(__u32 which)
{
    __u64 *v = bpf_map_lookup_elem(&stats, &which);
    if (v)
        *v += 1;   /* per-CPU: no other writer */
}

/* A stack id that is an error other than "no stack of this kind here"
 * (EFAULT: a kernel thread has no user stack, user mode no kernel one). */
static __always_inline void stack_error(long id, __u32 which)
{
    if (id >= 0 || id == -EFAULT)
        return;
    if (id == -EEXIST || id == -ENOMEM)
        stat_inc(PROFILE_STAT_STACK_MAP_FULL);
    else
        stat_inc(which);
}

/* A binary search for the last entry at or below key, one bpf_loop step
 * per halving (the verifier checks the step once instead of every path
 * through nested loops).  The array is found again by id in each step:
 * a process (mappings by start), a table slot (chunks by first pc) or a
 * shard (rows by pc).  After the loop, lo is one past the entry found. */
struct search {
    __u64 key;
    __u32 id;
    __u32 lo, hi;
};

/* The process's mappings are searched through the entry found once (a
 * hash look-up per step cost more than the rest of the step). */
struct search_proc {
    __u64 key;
    const struct profile_proc *proc;
    __u32 lo, hi;
};

static long search_mapping(__u32 index, void *ctx)
{
    struct search_proc *q = ctx;
    if (q->lo >= q->hi)
        return 1;
    __u32 mid = (q->lo + q->hi) / 2;
    const struct profile_proc *proc = q->proc;
    if (!proc)
        return 1;
    if (proc->maps[mid & (PROFILE_MAX_MAPPINGS - 1)].start <= q->key)
        q->lo = mid + 1;
    else
        q->hi = mid;
    return 0;
}

static long search_chunk(__u32 index, void *ctx)
{
    struct search *q = ctx;
    if (q->lo >= q->hi)
        return 1;
    __u32 mid = (q->lo + q->hi) / 2;
    const struct profile_table *t = bpf_map_lookup_elem(&unwind_tables, &q->id);
    if (!t)
        return 1;
    if (t->chunks[mid & (PROFILE_MAX_CHUNKS - 1)].first_pc <= q->key)
        q->lo = mid + 1;
    else
        q->hi = mid;
    return 0;
}

static long search_row(__u32 index, void *ctx)
{
    struct search *q = ctx;
    if (q->lo >= q->hi)
        return 1;
    __u32 mid = (q->lo + q->hi) / 2;
    const struct profile_shard *shard = bpf_map_lookup_elem(&unwind_rows, &q->id);
    if (!shard)
        return 1;
    if (shard->rows[mid & (PROFILE_SHARD_ROWS - 1)].pc <= q->key)
        q->lo = mid + 1;
    else
        q->hi = mid;
    return 0;
}

/* The executable mapping of a process (its entry proc) holding pc, or NULL. */
static __always_inline const struct profile_mapping *find_mapping(const struct profile_proc *proc,
                                                                   __u64 pc)
{
    struct search_proc q = {.key = pc, .proc = proc, .lo = 0, .hi = proc->n};
    if (q.hi > PROFILE_MAX_MAPPINGS)
        q.hi = PROFILE_MAX_MAPPINGS;
    bpf_loop(8, search_mapping, &q, 0);   /* 2^7 > PROFILE_MAX_MAPPINGS */
    if (q.lo == 0)
        return NULL;
    const struct profile_mapping *m = &proc->maps[(q.lo - 1) & (PROFILE_MAX_MAPPINGS - 1)];
    return pc < m->end ? m : NULL;
}

/* The row of table slot (entry t) covering ELF address pc, or NULL. */
static __always_inline const struct profile_unwind_row *find_row(const struct profile_table *t,
                                                                 __u32 slot, __u32 pc)
{
    struct search q = {.key = pc, .id = slot, .lo = 0, .hi = t->n_chunks};
    if (q.hi > PROFILE_MAX_CHUNKS)
        q.hi = PROFILE_MAX_CHUNKS;
    bpf_loop(12, search_chunk, &q, 0);   /* 2^11 > PROFILE_MAX_CHUNKS */
    if (q.lo == 0)
        return NULL;
    const struct profile_chunk *c = &t->chunks[(q.lo - 1) & (PROFILE_MAX_CHUNKS - 1)];
    __u32 shard_id = c->shard;
    const struct profile_shard *shard = bpf_map_lookup_elem(&unwind_rows, &shard_id);
    if (!shard)
        return NULL;
    q = (struct search){.key = pc, .id = shard_id, .lo = 0, .hi = c->n_rows};
    if (q.hi > PROFILE_SHARD_ROWS)
        q.hi = PROFILE_SHARD_ROWS;
    bpf_loop(12, search_row, &q, 0);   /* 2^11 > PROFILE_SHARD_ROWS */
    if (q.lo == 0)
        return NULL;
    return &shard->rows[(q.lo - 1) & (PROFILE_SHARD_ROWS - 1)];
}

static __always_inline bool read_user(__u64 *v, __u64 addr)
{
    return bpf_probe_read_user(v, sizeof *v, (const void *)addr) == 0;
}

/* One frame: record ip, then find the caller's ip, sp and bp.  Returns 1
 * (stop) once w->end is set. */
static long walk_step(__u32 index, void *unused)
{
    __u32 zero = 0;
    struct walk *w = bpf_map_lookup_elem(&walks, &zero);
    if (!w)
        return 1;
    __u32 n = w->len;
    if (n >= PROFILE_MAX_DEPTH) {
        w->end = WALK_DEPTH;
        return 1;
    }
    w->stack.pcs[n] = w->ip;
    w->len = n + 1;
    w->hash = (w->hash ^ w->ip) * 0x100000001b3ULL;

    const struct profile_proc *proc = bpf_map_lookup_elem(&unwind_procs, &w->pid);
    __u64 pc = w->exact ? w->ip : w->ip - 1;
    const struct profile_mapping *m = proc ? find_mapping(proc, pc) : NULL;
    const struct profile_unwind_row *row = NULL;
    __u32 why = WALK_NO_TABLE;
    if (m && m->table) {
        __u32 slot = m->table;
        const struct profile_table *t = bpf_map_lookup_elem(&unwind_tables, &slot);
        __u64 elf_pc = pc - m->bias;
        if (t && t->epoch == m->epoch && elf_pc <= 0xffffffffULL) {
            why = WALK_TABLE_MISS;
            row = find_row(t, slot, (__u32)elf_pc);
            if (row && row->cfa == PROFILE_CFA_NONE)
                row = NULL;
        }
    }

    __u64 ra, cfa, bp = w->bp;
    if (!row) {
        /* frame pointers: [bp] the caller's bp, [bp + 8] the return address */
        if (w->bp == 0) {
            w->end = WALK_DONE;
            return 1;
        }
        if (!read_user(&ra, w->bp + 8) || !read_user(&bp, w->bp)) {
            w->end = why;
            return 1;
        }
        cfa = w->bp + 16;
    } else if (row->cfa == PROFILE_CFA_END) {
        w->end = WALK_DONE;
        return 1;
    } else if (row->cfa == PROFILE_CFA_SIGNAL) {
        /* rsp + cfa_off is mcontext's rsp, rip follows it, rbp is 5 slots before */
        __u64 regs = w->sp + (__s64)row->cfa_off;
        if (!read_user(&cfa, regs) || !read_user(&ra, regs + 8) || !read_user(&bp, regs - 40)) {
            w->end = WALK_READ_FAULT;
            return 1;
        }
        w->table_steps++;
        w->ip = ra;
        w->sp = cfa;
        w->bp = bp;
        w->exact = 1;   /* the interrupted instruction, not a return address */
        return ra == 0 ? (w->end = WALK_DONE, 1) : 0;
    } else {
        if (row->cfa == PROFILE_CFA_RSP)
            cfa = w->sp + (__s64)row->cfa_off;
        else if (row->cfa == PROFILE_CFA_RBP)
            cfa = w->bp + (__s64)row->cfa_off;
        else   /* PROFILE_CFA_PLT */
            cfa = w->sp + (__s64)row->cfa_off + ((w->ip & 15) >= (__u64)row->rbp_off ? 8 : 0);
        if (!read_user(&ra, cfa - 8) ||
            (row->rbp == PROFILE_RBP_CFA && !read_user(&bp, cfa + (__s64)row->rbp_off))) {
            w->end = WALK_READ_FAULT;
            return 1;
        }
        w->table_steps++;
    }
    if (cfa <= w->sp) {   /* no progress: a loop or garbage */
        w->end = row ? WALK_READ_FAULT : why;
        return 1;
    }
    if (ra == 0) {
        w->end = WALK_DONE;
        return 1;
    }
    w->ip = ra;
    w->sp = cfa;
    w->bp = bp;
    w->exact = 0;
    return 0;
}

/* Walk the current task's user stack with the tables of process pid into
 * a ustacks map; its key (0 when not walked).  The registers are the perf
 * event's (ctx) when it hit user mode, else those saved when the task
 * entered the kernel (ctx NULL: the scheduler switching it out). */
static __always_inline __u64 walk_user(struct bpf_perf_event_data *ctx, __u32 pid, void *ustacks)
{
    __u32 zero = 0;
    struct walk *w = bpf_map_lookup_elem(&walks, &zero);
    if (!w)
        return 0;
    struct task_struct *task = bpf_get_current_task_btf();
    if (!BPF_CORE_READ(task, mm))
        return 0;   /* a kernel thread */
    if (!ctx || ctx->regs.ip >> 63) {
        /* in the kernel: the user registers saved at its entry */
        struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
        w->ip = BPF_CORE_READ(regs, ip);
        w->sp = BPF_CORE_READ(regs, sp);
        w->bp = BPF_CORE_READ(regs, bp);
    } else {
        w->ip = ctx->regs.ip;
        w->sp = ctx->regs.sp;
        w->bp = ctx->regs.bp;
    }
    w->pid = pid;
    w->len = 0;
    w->table_steps = 0;
    w->end = WALK_ON;
    w->exact = 1;
    w->hash = 0xcbf29ce484222325ULL;
    bpf_loop(PROFILE_MAX_DEPTH + 1, walk_step, NULL, 0);
    __u32 len = w->len;
    if (len == 0)
        return 0;
    if (len < PROFILE_MAX_DEPTH)
        w->stack.pcs[len] = 0;   /* the end mark */
    stat_inc(w->table_steps ? PROFILE_STAT_UNWIND_TABLE : PROFILE_STAT_UNWIND_FP);
    if (w->end == WALK_NO_TABLE)
        stat_inc(PROFILE_STAT_TRUNC_NO_TABLE);
    else if (w->end == WALK_TABLE_MISS)
        stat_inc(PROFILE_STAT_TRUNC_TABLE_MISS);
    else if (w->end == WALK_DEPTH)
        stat_inc(PROFILE_STAT_TRUNC_DEPTH);
    else if (w->end == WALK_READ_FAULT)
        stat_inc(PROFILE_STAT_TRUNC_READ_FAULT);
    __u64 hash = w->hash | (1ULL << 63);
    long rc = bpf_map_update_elem(ustacks, &hash, &w->stack, BPF_NOEXIST);
    if (rc != 0 && rc != -EEXIST) {
        stat_inc(PROFILE_STAT_USTACK_MAP_FULL);
        return 0;
    }
    return hash;
}

SEC("perf_event")
int profile_sample(struct bpf_perf_event_data *ctx)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u32 pid = id >> 32;
    if (pid == 0)
        return 0;   /* the idle task: no process to profile */
    stat_inc(PROFILE_STAT_SAMPLES);

    __u32 gen = generation & 1;
    void *stacks = gen ? (void *)&stacks1 : (void *)&stacks0;
    void *counts = gen ? (void *)&counts1 : (void *)&counts0;

    struct profile_key key = {.pid = pid, .tid = (__u32)id};
    key.kernel_stack_id = bpf_get_stackid(ctx, stacks, 0);
    if (bpf_map_lookup_elem(&unwind_procs, &pid))
        key.user_stack_hash = walk_user(ctx, pid, gen ? (void *)&ustacks1 : (void *)&ustacks0);
    if (key.user_stack_hash) {
        key.user_stack_id = -ENOENT;
    } else {
        key.user_stack_id = bpf_get_stackid(ctx, stacks, BPF_F_USER_STACK);
        stack_error(key.user_stack_id, PROFILE_STAT_USER_STACK_ERRORS);
    }
    stack_error(key.kernel_stack_id, PROFILE_STAT_KERNEL_STACK_ERRORS);
    bpf_get_current_comm(&key.comm, sizeof key.comm);

    __u64 *count = bpf_map_lookup_elem(counts, &key);
    if (count) {
        __sync_fetch_and_add(count, 1);
        return 0;
    }
    __u64 one = 1;
    long rc = bpf_map_update_elem(counts, &key, &one, BPF_NOEXIST);
    if (rc == -EEXIST) {   /* another CPU added the key meanwhile */
        count = bpf_map_lookup_elem(counts, &key);
        if (count)
            __sync_fetch_and_add(count, 1);
    } else if (rc != 0) {
        stat_inc(PROFILE_STAT_COUNTS_FULL);
    }
    return 0;
}

/* ---- off-CPU time ------------------------------------------------------------
 *
 * What a context switch costs has to stay small, since a busy machine
 * switches tens of thousands of times a second and most blocks are shorter
 * than the minimum; so the stacks are taken only once a block is known to
 * be long enough, in three steps kept in the thread's task storage:
 *
 * 1. tp_btf/sched_switch, the thread leaving while blocked (its state is
 *    not TASK_RUNNING: sleeping, waiting for I/O, a futex, poll...; a
 *    thread preempted while runnable leaves in TASK_RUNNING, or with the
 *    preempt flag, and waits for nothing): note the time.
 * 2. The same tracepoint, the thread coming back: away for at least
 *    off_cpu_min_ns, its kernel stack (still the one it blocked with: it
 *    has not run yet) goes to off_kstacks (bpf_get_task_stack works on
 *    another task), where its user registers point (ip, sp) is noted, and
 *    the block waits for step 3.  A thread that blocks
 *    again before its system call returns adds the next long block to it.
 * 3. tp_btf/sys_exit, in the thread's own context, where its user memory
 *    can be read: if the user registers are those of step 1 (the block
 *    was this system call's), its user stack is taken and the block added
 *    to its key in the current generation's off_counts.  A block that was
 *    not a system call's (a page fault's I/O) is dropped at the next one,
 *    whose registers differ.
 *
 * sys_exit runs on every system call of every process, and nearly all of
 * them have no block waiting; so step 2 also notes, per CPU, the thread it
 * switched in if that thread has one (off_pending), and sys_exit, whose
 * thread is the CPU's last switched in, looks no further when the note is
 * not its thread: an inlined per-CPU array read instead of a task-storage
 * lookup (measured in README, "bench agent").  A kernel with BPF task work
 * (6.18) could run step 3 only in threads that blocked long, without the
 * global hook; its verifier refuses to schedule the work from a
 * non-sleepable program ("sleepable callback in a program that is not
 * sleepable"), and sched_switch programs cannot sleep.
 *
 * The kernel stacks live in an LRU map of their own, read but not deleted
 * by drains (a count may name one taken a generation earlier). */
const volatile __u64 off_cpu_min_ns = 1000000;

struct off_state {
    __u64 ts;           /* when it blocked (ns); 0: not blocked */
    __u64 away;         /* step 2 passed: the block's length; 0: not yet */
    __u64 ip, sp;       /* its user registers when it blocked */
    __u64 kernel_hash;  /* its kernel stack in off_kstacks; 0: none */
};

struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct off_state);
} off_states SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __type(key, __u64);
    __type(value, struct profile_stack);
    __uint(max_entries, PROFILE_OFF_KSTACKS);
} off_kstacks SEC(".maps");

#define OFF_COUNTS_MAP(name)                                         \
    struct {                                                         \
        __uint(type, BPF_MAP_TYPE_HASH);                             \
        __type(key, struct profile_key);                             \
        __type(value, struct profile_off_value);                     \
        __uint(max_entries, PROFILE_MAX_KEYS);                       \
    } name SEC(".maps")

OFF_COUNTS_MAP(off_counts0);
OFF_COUNTS_MAP(off_counts1);

#define TASK_RUNNING 0

/* A kernel stack being read (per CPU: the walk's scratch is the sampler's). */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __type(key, __u32);
    __type(value, struct profile_stack);
    __uint(max_entries, 1);
} off_scratch SEC(".maps");

/* The kernel stack of task (not running) into off_kstacks; its key, 0
 * when it could not be read. */
static __always_inline __u64 task_kernel_stack(struct task_struct *task)
{
    __u32 zero = 0;
    struct profile_stack *k = bpf_map_lookup_elem(&off_scratch, &zero);
    if (!k)
        return 0;
    long n = bpf_get_task_stack(task, k, sizeof *k, 0);
    if (n <= 0) {
        stat_inc(PROFILE_STAT_KERNEL_STACK_ERRORS);
        return 0;
    }
    __u32 frames = (__u64)n / sizeof(__u64);
    __u32 end = frames;
    barrier_var(end);   /* clang would drop the bound the verifier needs to see */
    if (end < PROFILE_MAX_DEPTH)
        k->pcs[end] = 0;   /* the end mark */
    /* another seed than the user stacks': the two never share a key.  A
     * plain bounded loop over the frames read: a bpf_loop step per frame
     * (a call and a map lookup each) cost more than the hashing */
    __u64 hash = 0x84222325cbf29ce4ULL;
#pragma clang loop unroll(disable)
    for (__u32 i = 0; i < PROFILE_MAX_DEPTH && i < frames; i++)
        hash = (hash ^ k->pcs[i]) * 0x100000001b3ULL;
    hash |= 1ULL << 63;
    if (bpf_map_update_elem(&off_kstacks, &hash, k, BPF_ANY) != 0)
        return 0;
    return hash;
}

/* Per CPU: the thread last switched in, if a long block of it waits for
 * sys_exit; else 0. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __type(key, __u32);
    __type(value, __u32);
    __uint(max_entries, 1);
} off_pending SEC(".maps");

SEC("tp_btf/sched_switch")
int off_cpu_switch(__u64 *ctx)
{
    bool preempt = (bool)ctx[0];
    struct task_struct *prev = (struct task_struct *)ctx[1];
    struct task_struct *next = (struct task_struct *)ctx[2];
    unsigned int prev_state = (unsigned int)ctx[3];
    __u32 zero = 0;
    __u32 *pending = bpf_map_lookup_elem(&off_pending, &zero);
    if (!pending)
        return 0;
    __u64 now = 0;

    /* next comes back: was it away long enough to count?  The idle task
     * and kernel threads (no mm) never have a note: no lookup for them. */
    struct off_state *st = next->mm ? bpf_task_storage_get(&off_states, next, 0, 0) : NULL;
    if (st && st->ts) {
        now = bpf_ktime_get_ns();
        __u64 away = now - st->ts;
        st->ts = 0;
        if (away >= off_cpu_min_ns) {
            /* its user registers are still those it entered the kernel
             * with (it has not run since): read here, for long blocks
             * only.  Blocked long again before the system call returned:
             * its blocks add up; a block left over from elsewhere (a page
             * fault) is dropped.  The pointer is read directly (BTF), not
             * by helper calls. */
            struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(next);
            __u64 ip = regs->ip, sp = regs->sp;
            if (st->away && (st->ip != ip || st->sp != sp))
                st->away = 0;
            if (st->away == 0)   /* the first long block of this system call */
                st->kernel_hash = task_kernel_stack(next);
            st->away += away;
            st->ip = ip;
            st->sp = sp;
        }
    }
    *pending = st && st->away ? next->pid : 0;

    /* prev leaves: note it when it blocks */
    if (preempt || prev_state == TASK_RUNNING || !prev->mm)
        return 0;   /* runnable, the idle task, a kernel thread */
    st = bpf_task_storage_get(&off_states, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!st)
        return 0;
    st->ts = now ? now : bpf_ktime_get_ns();
    return 0;
}

SEC("tp_btf/sys_exit")
int off_cpu_return(__u64 *ctx)
{
    __u32 zero = 0;
    __u32 *pending = bpf_map_lookup_elem(&off_pending, &zero);
    if (!pending || *pending == 0)
        return 0;   /* nearly every system call: nothing waits on this CPU */
    *pending = 0;
    struct task_struct *task = bpf_get_current_task_btf();
    struct off_state *st = bpf_task_storage_get(&off_states, task, 0, 0);
    if (!st || st->away == 0)
        return 0;
    __u64 away = st->away;
    st->away = 0;
    struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
    if (regs->ip != st->ip || regs->sp != st->sp)
        return 0;   /* not this system call's block */

    __u64 id = bpf_get_current_pid_tgid();
    __u32 pid = id >> 32;
    __u32 gen = generation & 1;
    void *stacks = gen ? (void *)&stacks1 : (void *)&stacks0;
    void *counts = gen ? (void *)&off_counts1 : (void *)&off_counts0;
    struct profile_key key = {.pid = pid, .tid = (__u32)id, .kernel_stack_id = -ENOENT,
                              .kernel_stack_hash = st->kernel_hash};
    if (bpf_map_lookup_elem(&unwind_procs, &pid))
        key.user_stack_hash = walk_user(NULL, pid, gen ? (void *)&ustacks1 : (void *)&ustacks0);
    if (key.user_stack_hash) {
        key.user_stack_id = -ENOENT;
    } else {
        key.user_stack_id = bpf_get_stackid(ctx, stacks, BPF_F_USER_STACK);
        stack_error(key.user_stack_id, PROFILE_STAT_USER_STACK_ERRORS);
    }
    bpf_get_current_comm(&key.comm, sizeof key.comm);

    struct profile_off_value *v = bpf_map_lookup_elem(counts, &key);
    if (!v) {
        struct profile_off_value one = {1, away};
        long rc = bpf_map_update_elem(counts, &key, &one, BPF_NOEXIST);
        if (rc == 0)
            return 0;
        if (rc != -EEXIST) {
            stat_inc(PROFILE_STAT_COUNTS_FULL);
            return 0;
        }
        v = bpf_map_lookup_elem(counts, &key);   /* another CPU added the key meanwhile */
        if (!v)
            return 0;
    }
    __sync_fetch_and_add(&v->switches, 1);
    __sync_fetch_and_add(&v->nanoseconds, away);
    return 0;
}
