/* internal.h -- what the files of pprof/ share and nobody else may use. */
#ifndef FIRN_PPROF_INTERNAL_H
#define FIRN_PPROF_INTERNAL_H

#include "pprof/pprof.h"
#include "profile.pb-c.h"

/* A protobuf-c allocator that carves from an arena and refuses to go past
 * a byte budget, so a hostile message cannot make unpacking allocate
 * without bound.  `exceeded` is set when the budget refused a request. */
typedef struct pprof_pb_alloc {
    ProtobufCAllocator pb;
    firn_arena *arena;
    size_t budget;
    size_t used;
    bool exceeded;
} pprof_pb_alloc;

void pprof_pb_alloc_init(pprof_pb_alloc *a, firn_arena *arena, size_t budget);

/* pprof_sample_identity of every sample into ids[0..n_samples), each
 * location hashed once; FIRN_ENOMEM on failure. */
int pprof_sample_identities(const pprof_profile *p, pprof_hash *ids);

#endif
