/* internal.h -- what the selfprof core (libfirn_selfprof.a) and the malloc
 * interposer (malloc.c, an object linked only into the firn server) share.
 *
 * Stacks everywhere in selfprof are arrays of program counters in "return
 * PC" form, leaf first, as Go's runtime keeps them: every entry is one past
 * an instruction of its frame (a return address, or the interrupted PC + 1
 * for the leaf of a CPU sample), so that pc - 1 always lies inside the
 * instruction the frame is executing.  The symbolizer looks up pc - 1 and
 * writes pc - 1 as the location's address (Go writes Frame.PC, the call
 * site, and pprof expects producers to have done this adjustment).
 */
#ifndef FIRN_SELFPROF_INTERNAL_H
#define FIRN_SELFPROF_INTERNAL_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "selfprof/selfprof.h"

/* Frames kept per stack (Go 1.19 keeps 64 for CPU and 32 for the heap). */
#define SELFPROF_MAX_FRAMES 64

/* Set while this thread is inside libunwind on selfprof's behalf (the heap
 * sampler in malloc, or the SIGPROF handler).  A SIGPROF arriving then is
 * dropped rather than unwinding re-entrantly, and an allocation made by
 * libunwind then is not sampled (which would recurse).  Initial-exec TLS:
 * reading it never allocates, which matters inside malloc. */
extern __thread volatile sig_atomic_t selfprof_in_unwind
    __attribute__((tls_model("initial-exec")));

/* ---- heap sampler (defined by malloc.c when it is linked) ---------------- */

/* Called for each bucket with a consistent-enough copy of its counters
 * (frees are read before allocs, so frees <= allocs).  pcs is the bucket's
 * own and stays valid: buckets are never freed. */
typedef void (*selfprof_heap_visit_fn)(void *ctx, const uintptr_t *pcs, size_t depth,
                                       size_t size, int64_t allocs, int64_t alloc_bytes,
                                       int64_t frees, int64_t free_bytes);

struct selfprof_heap_source {
    size_t (*rate)(void);
    void (*set_rate)(size_t rate);
    void (*visit)(selfprof_heap_visit_fn fn, void *ctx);
    /* Samples not recorded: bucket space used up, or no memory to track
     * the block. */
    uint64_t (*dropped)(void);
};

/* Defined in malloc.c; heap.c refers to it weakly, so its address is NULL
 * in programs that do not link the interposer. */
extern const struct selfprof_heap_source selfprof_heap_source;

/* ---- symbolization (symbolize.c) ----------------------------------------- */

/* Turns return-PC-form addresses into builder locations: mappings from
 * /proc/self/maps (executable ones, the main binary first, build ids from
 * libdwfl), functions/files/lines (inlined frames included) from the
 * symbol tables and DWARF.  Degrades to bare addresses when libdwfl cannot
 * be used.  One per profile built, on the building thread. */
typedef struct selfprof_symbolizer selfprof_symbolizer;

/* Adds every executable mapping to b, the main binary first, with
 * has_functions when libdwfl knows its module (selfprof.h says why). */
selfprof_symbolizer *selfprof_symbolizer_new(pprof_builder *b);
/* Builder index of the location for pc (cached per pc). */
uint32_t selfprof_symbolizer_location(selfprof_symbolizer *s, uintptr_t pc);
void selfprof_symbolizer_free(selfprof_symbolizer *s);

/* Sets the mappings' has_filenames/has_line_numbers from what their
 * locations in the finished profile carry: true when some location of the
 * mapping has it (the module's DWARF was read), as pprof's own symbolizer
 * does.  has_inline_frames follows has_line_numbers: line numbers come from
 * DWARF, and whenever DWARF is there inlined frames were expanded.
 * has_functions is the symbolizer's, set when it adds the mapping. */
void selfprof_mark_mappings(pprof_profile *p);

#endif
