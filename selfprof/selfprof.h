/* selfprof.h -- firn profiling itself: CPU and heap profiles in pprof.
 *
 * So that a fresh firn has real data to scrape (its default config scrapes
 * itself) and users can profile the server as they profile a Go service,
 * firn serves Go-shaped profiles of its own process:
 *
 * CPU (selfprof_cpu): while at least one CPU profile is being recorded,
 * ITIMER_PROF sends SIGPROF at hz per second of CPU the process uses; the
 * handler unwinds the interrupted thread with libunwind (async-signal-safe
 * local unwinding) into a fixed ring that needs no locks and no
 * allocation.  Up to SELFPROF_MAX_CPU_PROFILES profiles may be recorded at
 * once, overlapping as they like (firn's self-scrape records one 9 s out
 * of every 10): each gets the samples taken between its own start and its
 * own end (duration or cancel), and as they share the one timer they must
 * all ask for the same hz.  When its time is up, a profile's samples are
 * symbolized with elfutils' libdwfl against /proc/self/maps (function,
 * file, line; mappings with build ids) and built into a profile shaped as
 * Go's /debug/pprof/profile: sample types samples/count and
 * cpu/nanoseconds, period type cpu/nanoseconds, period 1e9/hz, time and
 * duration its own.
 *
 * Heap (selfprof_heap): when the firn binary links the malloc interposer
 * (selfprof/malloc.c, not built under sanitizers), one allocation per
 * about `rate` bytes (exponentially distributed, as Go's MemProfileRate) is
 * sampled with its stack; frees of sampled blocks are matched.  The profile
 * is shaped as Go's heap profile: alloc_objects/count, alloc_space/bytes,
 * inuse_objects/count, inuse_space/bytes, period type space/bytes, period
 * = rate, values scaled up by Go's unsampling rule, a numeric label
 * "bytes" with the block size.  Unlike Go's (as of the last GC), inuse is
 * live: the counters as they were when the profile was asked for, before
 * it was symbolized (so the profile does not show its own symbolizer,
 * ~10-20 MB of libdw/libelf freed when it is done, as in use; the next
 * profile counts those allocations in alloc_*).
 *
 * Stacks are in Go's form: location addresses are call sites (return
 * address - 1; the interrupted PC for the leaf of a CPU sample), mapping 1
 * is the main binary, functions carry file and start line, inlined calls
 * are expanded into a location's lines.
 *
 * Mappings' has_* flags say what firn's symbolization was, so that pprof
 * does not try to redo it.  has_functions: libdwfl knew the mapping's
 * module, so every address in it was looked up in its symbol tables (and
 * DWARF where there is some); an address left without a function (a
 * static function of a stripped library) is one nothing names.  firn
 * serves no /debug/pprof/symbol, and pprof asks it for the functions of
 * every mapping without has_functions (`go tool pprof URL` then fails
 * with a 404), so only mappings libdwfl could not see (it could not read
 * /proc/self/maps, or a library loaded in between) say false; pprof can
 * still symbolize those from the files with -symbolize=local.
 * has_filenames, has_line_numbers: some location of the mapping has a file
 * name, a line number (its DWARF was read; code DWARF does not describe,
 * such as _start, has neither), as pprof's own symbolizer sets them;
 * has_inline_frames follows has_line_numbers (with DWARF, inlined calls
 * are expanded).
 *
 * Signals: while a CPU profile runs, SIGPROF interrupts system calls of
 * every thread (SA_RESTART restarts most; those that never restart, such as
 * epoll_wait and nanosleep, return EINTR) as in a Go program.
 *
 * Threads: selfprof_cpu blocks its caller for the duration (which drains
 * the samples every 100 ms); any thread may call any function.  Memory:
 * profiles returned are pprof_free'd by the caller.
 */
#ifndef FIRN_SELFPROF_H
#define FIRN_SELFPROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "pprof/pprof.h"

#define SELFPROF_DEFAULT_HZ 100
#define SELFPROF_MAX_SECONDS 3600
#define SELFPROF_MAX_CPU_PROFILES 16   /* recorded at once */
#define SELFPROF_DEFAULT_HEAP_RATE (512u * 1024)

/* Record this process for seconds (1..SELFPROF_MAX_SECONDS) at hz samples
 * per CPU-second, alongside any other CPU profiles being recorded.
 * Returns early, with what was recorded so far, when *cancel (may be NULL)
 * becomes true.  FIRN_EBUSY, with Go's message "cpu profiling already in
 * use" at the start, when something else in the process has ITIMER_PROF
 * armed, when SELFPROF_MAX_CPU_PROFILES are being recorded, or when those
 * being recorded sample at another hz. */
pprof_profile *selfprof_cpu(int seconds, int hz, const _Atomic bool *cancel, firn_err *err);
/* How many CPU profiles are being recorded right now. */
int selfprof_cpu_active(void);

/* Whether the heap sampler is linked into this program. */
bool selfprof_heap_available(void);
/* The heap profile so far, as Go's /debug/pprof/heap: default_sample_type
 * unset (pprof then shows the last type, inuse_space).  FIRN_EINVAL "heap
 * profiling is not built into this binary" when it is not available. */
pprof_profile *selfprof_heap(firn_err *err);
/* The same profile as Go's /debug/pprof/allocs: default_sample_type
 * alloc_space. */
pprof_profile *selfprof_allocs(firn_err *err);
/* Go's runtime.MemProfileRate: the mean bytes between samples, 1 to sample
 * every allocation, 0 to stop sampling.  Set it early: each thread's
 * countdown already drawn runs out at the old rate.  Profiles are scaled
 * by the rate current when they are built.  No-op (and rate 0) when the
 * sampler is not available. */
void selfprof_heap_set_rate(size_t rate);
size_t selfprof_heap_rate(void);

#endif
