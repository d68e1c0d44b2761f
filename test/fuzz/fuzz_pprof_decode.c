/* fuzz_pprof_decode.c -- libFuzzer target for the pprof decoder.
 *
 * Whatever the input, decoding must not crash or leak; and whatever decodes
 * must survive the rest of the pipeline: encode -> decode (with the same
 * content counts), merging samples, and the top report.  Seeds: the shared
 * fixtures and seeds/pprof (legacy CPU profiles; see test/fuzz/CMakeLists.txt).
 */
#include <stdint.h>
#include <stdlib.h>

#include "pprof/pprof.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pprof_limits lim;
    pprof_limits_default(&lim);
    /* Small caps keep each run fast and exercise the cap paths. */
    lim.max_decoded_bytes = 8u << 20;
    lim.max_memory_bytes = 64u << 20;
    firn_err err = {0};
    pprof_profile *p = pprof_decode(data, size, &lim, &err);
    if (!p) {
        if (err.msg[0] == '\0')
            abort(); /* every refusal must say why */
        return 0;
    }
    unsigned char *buf;
    size_t len;
    if (pprof_encode(p, 0, &buf, &len, &err) < 0)
        abort();
    pprof_limits_default(&lim);
    pprof_profile *q = pprof_decode(buf, len, &lim, &err);
    free(buf);
    if (!q || q->n_samples != p->n_samples || q->n_locations != p->n_locations ||
        q->n_functions != p->n_functions || q->n_strings != p->n_strings)
        abort();
    pprof_free(q);
    pprof_merge_samples(p, &err);
    int idx = pprof_default_sample_index(p);
    if (idx >= 0) {
        pprof_top_report top;
        if (pprof_top(p, idx, &top, &err) < 0)
            abort();
        pprof_top_free(&top);
    }
    pprof_free(p);
    return 0;
}
