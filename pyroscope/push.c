/* push.c -- push.v1.PusherService/Push: what Grafana Alloy's
 * pyroscope.write and the newer Pyroscope SDKs send.
 *
 * Each RawProfileSeries is a label set and raw pprof profiles (gzipped or
 * not).  As Pyroscope reads them:
 *   - __name__ is the profile name (process_cpu, memory...), the first
 *     field of firn's profile type; without it the name comes from the
 *     sample types, as /ingest names a pprof upload;
 *   - the other __-prefixed labels (__delta__, __otel__...) are dropped, and
 *     '.' in label names becomes '_' (otel.scope.name -> otel_scope_name,
 *     as /ingest does);
 *   - __delta__="false" says the values are per interval already: the
 *     columns that count events over the interval (CPU, wall, allocations,
 *     contentions, delays) are stored as :delta types and in-use memory and
 *     goroutines as snapshots, as /ingest does;
 *   - without __delta__, a profile with cumulative columns (Go's
 *     alloc_objects, alloc_space, contentions, delay: what Alloy's scrape
 *     sends unless it computed deltas) is turned into its difference from
 *     the same series' previous push, as Pyroscope does; the first one (or
 *     one whose values went down: a restart) is only kept as the baseline,
 *     answered 200 and not stored.  Up to PUSH_DELTA_SERIES_MAX series
 *     (and about PUSH_DELTA_BYTES_MAX of their samples) are tracked; past
 *     that the table starts over (every series then begins from a new
 *     baseline).  Profiles without cumulative columns (CPU from
 *     the SDKs and the eBPF profiler) are stored as they come;
 *   - ID and annotations are ignored.
 * Every profile of the request is decoded and checked before the first is
 * stored (ingest_decode, ingest_labels_check); each is then stored through
 * ingest/'s path (ingest_profile), durable before the answer.  A bad profile or label
 * is invalid_argument (Alloy does not retry it), a full store queue
 * unavailable (Alloy retries).  A retry of a Push whose first attempt
 * stored some of its profiles finds them stored: the same profile again is
 * answered as stored without storing it twice (the store's duplicate
 * rule); a different profile of a series at a time it already holds is
 * already_exists, except for a cumulative one whose delta firn takes: the
 * first attempt took it, so the retry is the change since itself, and a
 * profile already at that time is taken as that attempt's and skipped.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pyroscope/internal.h"
#include "ingest/ingest.h"

/* Most profiles one Push may carry. */
#define PUSH_PROFILES_MAX 4096
/* Most series whose previous cumulative profile is kept, and about how
 * much memory those profiles may hold (a sample's identity and values). */
#define PUSH_DELTA_SERIES_MAX 65536
#define PUSH_DELTA_BYTES_MAX (256u << 20)

/* The previous cumulative profile of each pushed series, by a hash of its
 * profile name and labels. */
struct pyroscope_deltas {
    pthread_mutex_t mu;
    firn_u64map index;            /* hash -> slot */
    pprof_delta_state **states;
    size_t *sizes;                /* per slot: its estimated bytes */
    size_t n, cap, sizes_cap, bytes;
};

typedef struct pending {
    firn_label *labels;
    size_t n_labels;
    const char *name;
    bool cumulative;       /* no __delta__: cumulative columns get deltas */
    pprof_profile *profile;
    ingest_grant grant;    /* the ingest budget its decoding holds, until stored */
    bool *delta_columns;
    bool baseline;         /* kept as the delta baseline only: not stored */
} pending;

static int series_labels(pyroscope_call *c, const Push__V1__RawProfileSeries *s, pending *pd,
                         firn_err *err)
{
    pd->labels = firn_arena_calloc(c->arena, s->n_labels + 1, sizeof *pd->labels);
    for (size_t i = 0; i < s->n_labels; i++) {
        const Types__V1__LabelPair *l = s->labels[i];
        if (!l || !l->name)
            continue;
        if (strcmp(l->name, "__name__") == 0) {
            pd->name = l->value;
            continue;
        }
        if (strcmp(l->name, "__delta__") == 0) {
            pd->cumulative = false;
            continue;
        }
        if (strncmp(l->name, "__", 2) == 0)
            continue;
        char *name = firn_arena_strdup(c->arena, l->name);
        for (char *p = name; *p; p++)
            if (*p == '.')
                *p = '_';
        pd->labels[pd->n_labels++] = (firn_label){name, l->value ? l->value : ""};
    }
    if (pd->name && (!*pd->name || !firn_label_name_valid(pd->name)))
        return firn_errf(err, FIRN_EINVAL, "label __name__ \"%.100s\": a profile name must "
                         "match [a-zA-Z_][a-zA-Z0-9_]*", pd->name);
    return ingest_labels_check(pd->labels, &pd->n_labels, err);
}

static int decode_sample(pyroscope_call *c, const Push__V1__RawSample *raw, pending *pd,
                         firn_err *err)
{
    if (!raw || raw->raw_profile.len == 0)
        return firn_errf(err, FIRN_EINVAL, "raw_profile is empty: want a pprof profile");
    pd->profile = ingest_decode(raw->raw_profile.data, raw->raw_profile.len, &pd->grant, err);
    if (!pd->profile) {
        int code = err ? err->code : FIRN_EINVAL;
        firn_err_prefix(err, "raw_profile");
        /* too big is bad input here too (a retry will not help); a full
         * ingest budget is not */
        return code == FIRN_EBUSY ? FIRN_EBUSY : FIRN_EINVAL;
    }
    pprof_profile *p = pd->profile;
    if (!pd->name) {
        const char *n = ingest_pyroscope_profile_name(p, NULL, true);
        if (!n || !*n || !firn_label_name_valid(n))
            return firn_errf(err, FIRN_EINVAL, "no __name__ label, and the profile's sample "
                             "types give no profile name");
        pd->name = firn_arena_strdup(c->arena, n);
    }
    pd->delta_columns = firn_arena_calloc(c->arena, p->n_sample_types + 1, sizeof(bool));
    pprof_delta_columns(p, pd->delta_columns);
    bool any = false;
    for (size_t i = 0; i < p->n_sample_types; i++)
        any |= pd->delta_columns[i];
    pd->cumulative &= any;
    bool timed = strcmp(pd->name, "process_cpu") == 0 || strcmp(pd->name, "wall") == 0;
    for (size_t i = 0; i < p->n_sample_types; i++)
        pd->delta_columns[i] |= timed;
    if (p->time_nanos <= 0)
        p->time_nanos = firn_now_ms() * 1000000;
    return 0;
}

static uint64_t series_hash(const pending *pd)
{
    uint64_t h = 1469598103934665603ULL;
    const char *parts[2 * FIRN_LABELS_MAX + 1];
    size_t n = 0;
    parts[n++] = pd->name;
    for (size_t i = 0; i < pd->n_labels && n + 2 <= sizeof parts / sizeof parts[0]; i++) {
        parts[n++] = pd->labels[i].name;
        parts[n++] = pd->labels[i].value;
    }
    for (size_t i = 0; i < n; i++) {
        for (const char *p = parts[i]; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;   /* a separator no UTF-8 text holds */
    }
    return h;
}

/* The series' cumulative columns as deltas against its previous push. */
static int apply_delta(pyroscope_call *c, pyroscope_deltas *d, pending *pd, firn_err *err)
{
    bool *cumulative = firn_arena_calloc(c->arena, pd->profile->n_sample_types + 1,
                                         sizeof *cumulative);
    uint64_t h = series_hash(pd);
    pthread_mutex_lock(&d->mu);
    uint32_t slot;
    int rc = 0;
    size_t size = pd->profile->n_samples * (sizeof(pprof_hash) +
                                             pd->profile->n_sample_types * sizeof(int64_t));
    if (firn_u64map_get(&d->index, h, &slot) != 1) {
        if (d->n >= PUSH_DELTA_SERIES_MAX || d->bytes + size > PUSH_DELTA_BYTES_MAX) {
            /* start over rather than grow without end */
            for (size_t i = 0; i < d->n; i++)
                pprof_delta_free(d->states[i]);
            d->n = 0;
            d->bytes = 0;
            firn_u64map_clear(&d->index);
        }
        d->states = firn_grow(d->states, d->n, &d->cap, sizeof *d->states, 64);
        d->sizes = firn_grow(d->sizes, d->n, &d->sizes_cap, sizeof *d->sizes, 64);
        pprof_delta_state *st = pprof_delta_new();
        firn_u64map_put(&d->index, h, (uint32_t)d->n, NULL);
        slot = (uint32_t)d->n;
        d->sizes[slot] = 0;
        d->states[d->n++] = st;
    }
    d->bytes += size - d->sizes[slot];
    d->sizes[slot] = size;
    pprof_delta_columns(pd->profile, cumulative);
    rc = pprof_delta_apply(d->states[slot], pd->profile, cumulative, err);
    pthread_mutex_unlock(&d->mu);
    pd->baseline = rc == 0;
    return 0;
}

pyroscope_deltas *pyroscope_deltas_new(void)
{
    pyroscope_deltas *d = firn_xcalloc(1, sizeof *d);
    firn_u64map_init(&d->index, 1024);
    pthread_mutex_init(&d->mu, NULL);
    return d;
}

void pyroscope_deltas_free(pyroscope_deltas *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        pprof_delta_free(d->states[i]);
    free(d->states);
    free(d->sizes);
    firn_u64map_destroy(&d->index);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

int pyroscope_rpc_push(pyroscope_call *c, const ProtobufCMessage *in, ProtobufCMessage **out,
                       firn_err *err)
{
    const Push__V1__PushRequest *req = (const void *)in;
    if (!c->api->db)
        return firn_errf(err, FIRN_EBUSY, "no store to write to");
    size_t total = 0;
    for (size_t i = 0; i < req->n_series; i++)
        total += req->series[i] ? req->series[i]->n_samples : 0;
    if (total > PUSH_PROFILES_MAX)
        return firn_errf(err, FIRN_EINVAL, "%zu profiles in one push: at most %d", total,
                         PUSH_PROFILES_MAX);
    pending *pd = firn_xcalloc(total + 1, sizeof *pd);   /* total within PUSH_PROFILES_MAX */
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < req->n_series && rc == 0; i++) {
        const Push__V1__RawProfileSeries *s = req->series[i];
        if (!s)
            continue;
        pending base = {.cumulative = true};
        if ((rc = series_labels(c, s, &base, err)) < 0) {
            firn_err_prefix(err, "series %zu", i);
            break;
        }
        for (size_t k = 0; k < s->n_samples && rc == 0; k++) {
            pd[n] = base;
            rc = decode_sample(c, s->samples[k], &pd[n], err);
            n++;
            if (rc < 0)
                firn_err_prefix(err, "series %zu, sample %zu", i, k);
        }
    }
    /* deltas last: a request refused above leaves no baseline behind */
    for (size_t i = 0; i < n && rc == 0; i++)
        if (pd[i].cumulative)
            rc = c->api->deltas ? apply_delta(c, c->api->deltas, &pd[i], err)
                                : firn_errf(err, FIRN_EBUSY, "no delta table");
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (pd[i].baseline)
            continue;
        ingest_options o = {.profile_name = pd[i].name, .delta = INGEST_DELTA_COLUMNS,
                            .delta_columns = pd[i].delta_columns};
        ingest_result res;
        pprof_profile *taken = pd[i].profile;
        pd[i].profile = NULL;   /* ingest_profile takes it */
        rc = ingest_profile(c->api->db, pd[i].labels, pd[i].n_labels, taken, &o, &res, err);
        if (rc == FIRN_EEXIST && pd[i].cumulative) {
            /* A retry of a Push that stored this profile: its delta was
             * taken the first time, so this one differs (it is the change
             * since itself); the series holding a profile at this time is
             * what a retry finds.  Skipped, so the rest of the request is
             * stored. */
            rc = 0;
            firn_err_clear(err);
        } else if (rc < 0) {
            firn_err_prefix(err, "profile %zu of %zu", i + 1, n);
            if (rc == FIRN_ETOOBIG)
                rc = FIRN_EINVAL;   /* it will never fit: invalid_argument, not retried */
        }
        ingest_result_free(&res);
        ingest_grant_release(&pd[i].grant);
    }
    for (size_t i = 0; i < n; i++) {
        pprof_free(pd[i].profile);
        ingest_grant_release(&pd[i].grant);
    }
    free(pd);
    if (rc < 0)
        return rc;
    *out = pyroscope_new(c, &push__v1__push_response__descriptor);
    return 0;
}
