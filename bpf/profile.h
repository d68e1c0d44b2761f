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
    char comm[PROFILE_COMM_LEN];
};

/* Indexes of the BPF side's counters (the `stats` array map). */
enum profile_stat {
    PROFILE_STAT_SAMPLES,            /* every sample of a process (idle left out) */
    PROFILE_STAT_USER_STACK_ERRORS,  /* a user stack that could not be read (not EFAULT) */
    PROFILE_STAT_KERNEL_STACK_ERRORS,/* a kernel stack that could not be read (not EFAULT) */
    PROFILE_STAT_STACK_MAP_FULL,     /* EEXIST/ENOMEM from bpf_get_stackid: map too small */
    PROFILE_STAT_COUNTS_FULL,        /* a new key that found the counts map full */
    PROFILE_STAT_N,
};

#endif
