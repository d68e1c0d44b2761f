/* profile.bpf.c -- firn-agent's kernel side: on every CPU-clock sample,
 * count (process, thread, user stack, kernel stack, comm) in the current
 * generation's maps.  Kept tiny: two bpf_get_stackid calls and one atomic
 * add; everything else happens in userspace (agent/sampler.c). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "profile.h"

#define EFAULT 14
#define ENOMEM 12
#define EEXIST 17

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

STACK_MAP(stacks0);
STACK_MAP(stacks1);
COUNTS_MAP(counts0);
COUNTS_MAP(counts1);

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

SEC("perf_event")
int profile_sample(void *ctx)
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
    key.user_stack_id = bpf_get_stackid(ctx, stacks, BPF_F_USER_STACK);
    stack_error(key.kernel_stack_id, PROFILE_STAT_KERNEL_STACK_ERRORS);
    stack_error(key.user_stack_id, PROFILE_STAT_USER_STACK_ERRORS);
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
