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
 * location hashed once. */
void pprof_sample_identities(const pprof_profile *p, pprof_hash *ids);

/* Legacy binary CPU profiles (legacy.c).  pprof_legacy_detect returns the
 * word kind (0..3: 32-bit little/big, 64-bit little/big) of a legacy CPU
 * profile header, -1 when b does not start with one; *java tells the Java
 * variant.  pprof_legacy_decode reads b (len already capped) with that
 * kind; NULL with err naming what and where when it is malformed. */
int pprof_legacy_detect(const unsigned char *b, size_t len, bool *java);
pprof_profile *pprof_legacy_decode(const unsigned char *b, size_t len, int kind, bool java,
                                   const pprof_limits *limits, firn_err *err);

#endif
