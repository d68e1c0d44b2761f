/* profile.h -- what the CPU-sampling BPF program (profile.bpf.c) and
 * firn-agent's sampler (agent/sampler.c) share: the key of a sample count,
 * the counters the BPF side keeps about itself, and the sizes of its maps.
 *
 * Two generations of maps (counts0/stacks0 and counts1/stacks1): the BPF
 * side writes into the generation named by its global `generation`; the
 * agent flips it, then drains and clears the other one while sampling goes
 * on into the new one, so no sample falls between two drains.
 */
#ifndef FIRN_BPF_PROFILE_H
#define FIRN_BPF_PROFILE_H

#define PROFILE_COMM_LEN 16
#define PROFILE_MAX_DEPTH 127           /* frames per stack (the kernel's default cap) */
#define PROFILE_DEFAULT_STACKS 16384    /* stack-trace map entries per generation */
#define PROFILE_MAX_KEYS 16384          /* distinct keys counted per generation */

struct profile_key {
    __u32 pid;                /* process (thread group) id, as the host sees it */
    __u32 tid;                /* thread id */
    __s32 user_stack_id;      /* id in the stack map, or a negative errno */
    __s32 kernel_stack_id;    /* id in the stack map, or a negative errno */
    /* Non-zero: the user stack was walked by the program itself (unwind
     * tables, frame pointers where there are none) and is the value of
     * this key in the ustacks map of the generation; user_stack_id is then
     * unused.  The top bit is always set, so it never equals a stack id. */
    __u64 user_stack_hash;
    /* Non-zero: the kernel stack is the value of this key in off_kstacks
     * (off-CPU counts only, whose kernel stacks are taken from another
     * task's context); kernel_stack_id is then unused. */
    __u64 kernel_stack_hash;
    char comm[PROFILE_COMM_LEN];
};

/* A user stack walked by the program: return addresses leaf first, ended
 * by the first 0 (or PROFILE_MAX_DEPTH entries). */
struct profile_stack {
    __u64 pcs[PROFILE_MAX_DEPTH];
};

/* ---- unwind tables --------------------------------------------------------
 *
 * The agent compiles each mapped file's CFI (.eh_frame, else .debug_frame)
 * into rows sorted by address: from row.pc up to the next row's pc, the
 * caller's frame is found by the row's rules.  x86-64 only needs three
 * registers to go on walking: the return address is always at CFA - 8 (the
 * call pushed it; a row where CFI says otherwise is left out), the CFA is
 * rsp or rbp plus an offset (or one of the two expressions glibc writes for
 * PLT entries and signal frames), and rbp is unchanged or saved at CFA plus
 * an offset.
 *
 * Rows live in shards of PROFILE_SHARD_ROWS (one value of the `unwind_rows`
 * array each); a file's table takes whole shards, described by a chunk
 * each (first pc, shard, rows) in its `unwind_tables` entry.  A process's
 * executable mappings, sorted by address, each name the table of their
 * file (0: none, walk by frame pointers there) and the epoch it had when
 * written: a table evicted since (its slot reused) no longer matches. */
#define PROFILE_SHARD_ROWS 1024         /* rows per shard (a power of two); a table's
                                           last shard is part empty: small ones waste little */
#define PROFILE_MAX_CHUNKS 1024         /* shards one file's table may take (a power of two) */
#define PROFILE_MAX_MAPPINGS 64         /* executable mappings of a process (a power of two) */
#define PROFILE_DEFAULT_SHARDS 1024     /* 1M rows, 12 MiB */
#define PROFILE_DEFAULT_TABLES 512      /* files with a table at once (8 KiB each) */
#define PROFILE_DEFAULT_PROCS 2048      /* processes walked by tables at once */

enum profile_cfa {
    PROFILE_CFA_NONE = 0,   /* no rule covers this pc (a gap, or CFI we do not follow) */
    PROFILE_CFA_RSP,        /* CFA = rsp + cfa_off */
    PROFILE_CFA_RBP,        /* CFA = rbp + cfa_off */
    PROFILE_CFA_PLT,        /* CFA = rsp + cfa_off + ((pc & 15) >= rbp_off ? 8 : 0) */
    PROFILE_CFA_SIGNAL,     /* a signal trampoline: rsp points at the ucontext's
                               mcontext minus cfa_off; the interrupted frame's
                               registers are read from there */
    PROFILE_CFA_END,        /* the return address is undefined: the outermost frame */
};

enum profile_rbp {
    PROFILE_RBP_SAME = 0,   /* the caller's rbp is this frame's */
    PROFILE_RBP_CFA,        /* saved at CFA + rbp_off */
};

struct profile_unwind_row {
    __u32 pc;               /* ELF virtual address in the file */
    __u8 cfa;               /* enum profile_cfa */
    __u8 rbp;               /* enum profile_rbp */
    __s16 rbp_off;
    __s32 cfa_off;          /* frames of more than 32 KiB exist (libc has some) */
};

struct profile_shard {
    struct profile_unwind_row rows[PROFILE_SHARD_ROWS];
};

struct profile_chunk {
    __u32 first_pc;         /* the pc of its first row */
    __u16 shard;
    __u16 n_rows;           /* 1..PROFILE_SHARD_ROWS */
};

struct profile_table {
    __u32 epoch;            /* 0: the slot is free */
    __u32 n_chunks;
    struct profile_chunk chunks[PROFILE_MAX_CHUNKS];
};

struct profile_mapping {
    __u64 start, end;       /* [start, end) in the process */
    __u64 bias;             /* ELF address = address - bias */
    __u32 table;            /* slot in unwind_tables; 0: no table */
    __u32 epoch;            /* the table's epoch when this was written */
};

struct profile_proc {
    __u32 n;
    __u32 reserved;
    struct profile_mapping maps[PROFILE_MAX_MAPPINGS];
};

/* ---- off-CPU time ------------------------------------------------------------ */

#define PROFILE_OFF_KSTACKS 4096       /* kernel stacks of long blocks (LRU) */

/* What a key of the off_counts maps adds up: blocks of at least the
 * minimum, and their time off the CPU. */
struct profile_off_value {
    __u64 switches;
    __u64 nanoseconds;
};

/* Indexes of the BPF side's counters (the `stats` array map). */
enum profile_stat {
    PROFILE_STAT_SAMPLES,            /* every sample of a process (idle left out) */
    PROFILE_STAT_USER_STACK_ERRORS,  /* a user stack that could not be read (not EFAULT) */
    PROFILE_STAT_KERNEL_STACK_ERRORS,/* a kernel stack that could not be read (not EFAULT) */
    PROFILE_STAT_STACK_MAP_FULL,     /* EEXIST/ENOMEM from bpf_get_stackid: map too small */
    PROFILE_STAT_COUNTS_FULL,        /* a new key that found the counts map full */
    PROFILE_STAT_UNWIND_TABLE,       /* user stacks walked with unwind tables (a frame or more) */
    PROFILE_STAT_UNWIND_FP,          /* user stacks walked by frame pointers only */
    PROFILE_STAT_TRUNC_NO_TABLE,     /* walks cut short: frame pointers failed where no table was */
    PROFILE_STAT_TRUNC_TABLE_MISS,   /* ...where the file's table had no usable row */
    PROFILE_STAT_TRUNC_DEPTH,        /* ...at PROFILE_MAX_DEPTH frames */
    PROFILE_STAT_TRUNC_READ_FAULT,   /* ...reading the stack failed or made no progress */
    PROFILE_STAT_USTACK_MAP_FULL,    /* a walked stack that found the ustacks map full */
    PROFILE_STAT_N,
};

#endif
