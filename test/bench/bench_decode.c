/* bench_decode.c -- pprof decode throughput against zlib inflate as the floor. */
#include "bench.h"
#include "bench_util.h"

#include <stdlib.h>
#include <time.h>

#include "pprof/pprof.h"

struct input {
    unsigned char *gz;
    size_t len;
};

/* One pass over every input; returns 0 or the first error. */
static int pass_decode(const struct input *in, size_t n, const pprof_limits *lim, firn_err *err)
{
    for (size_t i = 0; i < n; i++) {
        pprof_profile *p = pprof_decode(in[i].gz, in[i].len, lim, err);
        if (!p)
            return err->code;
        pprof_free(p);
    }
    return 0;
}

static int pass_inflate(const struct input *in, size_t n, const pprof_limits *lim, firn_err *err)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char *out;
        size_t out_len;
        int rc = pprof_gunzip(in[i].gz, in[i].len, lim->max_decoded_bytes, &out, &out_len, err);
        if (rc < 0)
            return rc;
        free(out);
    }
    return 0;
}

/* Runs pass() repeatedly for at least `seconds` and 3 rounds; returns the
 * mean seconds per round, or a negative value on error. */
static double time_rounds(int (*pass)(const struct input *, size_t, const pprof_limits *, firn_err *),
                          const struct input *in, size_t n, const pprof_limits *lim, double seconds,
                          firn_err *err)
{
    if (pass(in, n, lim, err) < 0) /* warm-up */
        return -1;
    double start = bench_now(), elapsed;
    long rounds = 0;
    do {
        if (pass(in, n, lim, err) < 0)
            return -1;
        rounds++;
        elapsed = bench_now() - start;
    } while (elapsed < seconds || rounds < 3);
    return elapsed / (double)rounds;
}

int bench_decode(const char **files, size_t n_files, double seconds, FILE *out, FILE *log,
                 firn_err *err)
{
    pprof_limits lim;
    pprof_limits_default(&lim);
    struct input *in = calloc(n_files, sizeof *in);
    if (!in)
        return firn_errf(err, FIRN_ENOMEM, "out of memory");
    size_t n = 0, total_bytes = 0;
    int rc = 0;
    for (size_t i = 0; i < n_files; i++) {
        unsigned char *buf;
        size_t len;
        firn_err ferr = {0};
        if (firn_read_file(files[i], lim.max_input_bytes, &buf, &len, &ferr) < 0) {
            fprintf(log, "skip %s\n", ferr.msg);
            continue;
        }
        /* Only inputs firn accepts are timed. */
        pprof_profile *p = pprof_decode(buf, len, &lim, &ferr);
        if (!p) {
            fprintf(log, "skip %s: %s\n", files[i], ferr.msg);
            free(buf);
            continue;
        }
        pprof_free(p);
        if (pprof_is_gzip(buf, len)) {
            in[n].gz = buf;
            in[n].len = len;
        } else {
            rc = pprof_gzip(buf, len, -1, &in[n].gz, &in[n].len, err);
            free(buf);
            if (rc < 0)
                goto out;
        }
        total_bytes += in[n].len;
        n++;
    }
    if (n == 0) {
        rc = firn_errf(err, FIRN_EINVAL, "none of the %zu files is a profile firn decodes", n_files);
        goto out;
    }
    double t_decode = time_rounds(pass_decode, in, n, &lim, seconds, err);
    if (t_decode < 0) {
        rc = err->code;
        goto out;
    }
    double t_inflate = time_rounds(pass_inflate, in, n, &lim, seconds, err);
    if (t_inflate < 0) {
        rc = err->code;
        goto out;
    }
    double mb = (double)total_bytes / 1e6;
    fprintf(out, "bench_files %zu\n", n);
    fprintf(out, "bench_input_mb %.3f\n", mb);
    fprintf(out, "decode_mb_per_s %.2f\n", mb / t_decode);
    fprintf(out, "decode_profiles_per_s %.1f\n", (double)n / t_decode);
    fprintf(out, "inflate_mb_per_s %.2f\n", mb / t_inflate);
    fprintf(out, "decode_vs_inflate_ratio %.2f\n", t_decode / t_inflate);
out:
    for (size_t i = 0; i < n; i++)
        free(in[i].gz);
    free(in);
    return rc;
}
