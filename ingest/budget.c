/* budget.c -- one byte budget for the memory every ingest path holds at
 * once (ingest.h, "Memory"): scraped bodies from their first byte until
 * stored, and decoding (the gunzipped bytes and the decoded profile) for
 * scrapes and pushes alike.  Process-wide, since the paths share the
 * process's memory; lock-free, since scrape fetches take from it per chunk
 * on the scrape thread while workers decode. */
#include <assert.h>
#include <stdatomic.h>
#include <stdint.h>

#include "ingest/ingest.h"

static _Atomic size_t budget_limit = INGEST_DEFAULT_BUDGET;
static _Atomic size_t budget_used;
static _Atomic uint64_t budget_refused;

void ingest_budget_set(size_t bytes)
{
    atomic_store(&budget_limit, bytes ? bytes : INGEST_DEFAULT_BUDGET);
}

size_t ingest_budget_limit(void)
{
    return atomic_load(&budget_limit);
}

size_t ingest_budget_used(void)
{
    return atomic_load(&budget_used);
}

uint64_t ingest_budget_refused(void)
{
    return atomic_load(&budget_refused);
}

bool ingest_budget_take(ingest_grant *g, size_t n)
{
    size_t used = atomic_load(&budget_used);
    do {
        if (n > atomic_load(&budget_limit) || used > atomic_load(&budget_limit) - n) {
            atomic_fetch_add(&budget_refused, 1);
            return false;
        }
    } while (!atomic_compare_exchange_weak(&budget_used, &used, used + n));
    g->bytes += n;
    return true;
}

void ingest_grant_release(ingest_grant *g)
{
    if (!g || !g->bytes)
        return;
    size_t before = atomic_fetch_sub(&budget_used, g->bytes);
    assert(before >= g->bytes);
    (void)before;
    g->bytes = 0;
}

void ingest_grant_keep(ingest_grant *g, size_t n)
{
    if (g->bytes <= n)
        return;
    size_t before = atomic_fetch_sub(&budget_used, g->bytes - n);
    assert(before >= g->bytes - n);
    (void)before;
    g->bytes = n;
}

int ingest_gunzip(const void *data, size_t len, size_t max_out, unsigned char **out,
                  size_t *out_len, ingest_grant *g, firn_err *err)
{
    assert(g && g->bytes == 0);
    /* as ingest_decode: a first grant sized to the input, doubled on need */
    size_t want = len > SIZE_MAX / 16 ? SIZE_MAX : len * 16;
    if (want < ((size_t)1 << 20))
        want = (size_t)1 << 20;
    if (want > max_out)
        want = max_out;
    for (;;) {
        if (g->bytes < want && !ingest_budget_take(g, want - g->bytes)) {
            ingest_grant_release(g);
            return firn_errf(err, FIRN_EBUSY,
                             "the ingest memory budget (%zu bytes) is in use; retry later",
                             ingest_budget_limit());
        }
        firn_err e = {0};
        if (pprof_gunzip(data, len, want, out, out_len, &e) == 0) {
            ingest_grant_keep(g, *out_len);
            return 0;
        }
        if (e.code == FIRN_ETOOBIG && want < max_out) {
            want = want > max_out / 2 ? max_out : want * 2;
            continue;
        }
        ingest_grant_release(g);
        if (err)
            *err = e;
        return e.code;
    }
}
