/* ingest.c -- decode, limit, keep, delta, append: the steps of ingest.h's
 * contract, shared by the scrape workers and every push endpoint. */
#include <assert.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"

/* The forwarder, if any (ingest_forward_set). */
static ingest_forward_fn forward_fn;
static void *forward_ctx;

void ingest_forward_set(ingest_forward_fn fn, void *ctx)
{
    forward_fn = fn;
    forward_ctx = ctx;
}

void ingest_result_free(ingest_result *r)
{
    if (!r)
        return;
    pprof_free(r->profile);
    free(r->delta_columns);
    r->profile = NULL;
    r->delta_columns = NULL;
}

/* The first grant for decoding len bytes: a gzipped pprof inflates to a few
 * times its size, and protobuf-c's structs take a few times that (a raw one
 * about its size again).  A profile that needs more asks again, doubling,
 * up to pprof/'s caps or the whole budget. */
static size_t decode_first_grant(size_t len, bool gzipped)
{
    size_t k = gzipped ? 16 : 2;
    size_t g = len > SIZE_MAX / k ? SIZE_MAX : len * k;
    return g < ((size_t)4 << 20) ? (size_t)4 << 20 : g;
}

pprof_profile *ingest_decode(const void *data, size_t len, ingest_grant *g, firn_err *err)
{
    assert(g && g->bytes == 0);
    pprof_limits def;
    pprof_limits_default(&def);
    bool gzipped = pprof_is_gzip(data, len);
    /* a raw body is the caller's (counted there): only the structures count */
    size_t caps = def.max_memory_bytes + (gzipped ? def.max_decoded_bytes : 0);
    if (caps > ingest_budget_limit())
        caps = ingest_budget_limit();
    size_t want = decode_first_grant(len, gzipped);
    if (want > caps)
        want = caps;
    for (;;) {
        if (g->bytes < want && !ingest_budget_take(g, want - g->bytes)) {
            ingest_grant_release(g);
            firn_errf(err, FIRN_EBUSY,
                      "decoding profile: the ingest memory budget (%zu bytes) is in use; "
                      "retry later", ingest_budget_limit());
            return NULL;
        }
        /* within the grant: a gzipped profile's inflated bytes a quarter,
         * the decoded structures the rest, neither past pprof/'s caps */
        pprof_limits lim = def;
        if (gzipped && want / 4 < lim.max_decoded_bytes)
            lim.max_decoded_bytes = want / 4;
        size_t structures = want - (gzipped ? lim.max_decoded_bytes : 0);
        if (structures < lim.max_memory_bytes)
            lim.max_memory_bytes = structures;
        bool reduced = lim.max_decoded_bytes < def.max_decoded_bytes ||
                       lim.max_memory_bytes < def.max_memory_bytes;
        firn_err e = {0};
        pprof_profile *p = pprof_decode(data, len, &lim, &e);
        if (p) {
            /* the inflated bytes are freed: keep what the profile holds */
            ingest_grant_keep(g, firn_arena_bytes(p->arena));
            return p;
        }
        if (e.code == FIRN_ETOOBIG && reduced && want < caps) {
            want = want > caps / 2 ? caps : want * 2;
            continue;
        }
        ingest_grant_release(g);
        if (err)
            *err = e;
        if (e.code == FIRN_ETOOBIG && reduced)
            firn_err_prefix(err, "more than the ingest memory budget (%zu bytes) allows",
                            ingest_budget_limit());
        firn_err_prefix(err, "decoding profile");
        if (err)
            err->code = e.code == FIRN_ETOOBIG ? e.code : FIRN_EINVAL;
        return NULL;
    }
}

/* Keep only the sample types listed (Parca's keep_sample_type); columns are
 * removed from every sample in place. */
static void keep_sample_types(const ingest_options *o, pprof_profile *p)
{
    if (!o->n_keep_sample_types)
        return;
    size_t kept = 0;
    bool keep[64] = {0};
    size_t n = p->n_sample_types < 64 ? p->n_sample_types : 64;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < o->n_keep_sample_types; k++)
            if (strcmp(pprof_str(p, p->sample_types[i].type), o->keep_sample_types[k].type) == 0 &&
                strcmp(pprof_str(p, p->sample_types[i].unit), o->keep_sample_types[k].unit) == 0)
                keep[i] = true;
    for (size_t i = 0; i < n; i++)
        if (keep[i])
            p->sample_types[kept++] = p->sample_types[i];
    for (size_t s = 0; s < p->n_samples; s++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (keep[i])
                p->samples[s].values[k++] = p->samples[s].values[i];
    }
    p->n_sample_types = kept;
}

/* Which columns are deltas, and the delta against the target's previous
 * profile when they are cumulative: 1 to store, 0 a baseline only (nothing
 * here can fail: pprof's delta follows the out-of-memory policy). */
static int delta_columns(const ingest_options *o, pprof_profile *p, bool *columns, firn_err *err)
{
    size_t n = p->n_sample_types;
    switch (o->delta) {
    case INGEST_DELTA_AUTO:
        for (size_t i = 0; i < n; i++)
            columns[i] = p->duration_nanos != 0;
        return 1;
    case INGEST_DELTA_ALL:
    case INGEST_DELTA_NONE:
        for (size_t i = 0; i < n; i++)
            columns[i] = o->delta == INGEST_DELTA_ALL;
        return 1;
    case INGEST_DELTA_COLUMNS:
        for (size_t i = 0; i < n; i++)
            columns[i] = o->delta_columns[i];
        return 1;
    case INGEST_DELTA_CUMULATIVE:
        break;
    }
    pprof_delta_columns(p, columns);
    bool cumulative = false;
    for (size_t i = 0; i < n; i++)
        cumulative |= columns[i];
    if (!cumulative)
        return 1;
    if (!*o->delta_state)
        *o->delta_state = pprof_delta_new();
    return pprof_delta_apply(*o->delta_state, p, columns, err);
}

/* The default timestamp: the profile's time, else now (the store's rule,
 * made here so a caller can say which it was). */
static int64_t profile_time_ms(const pprof_profile *p)
{
    return p->time_nanos > 0 ? p->time_nanos / 1000000 : firn_now_ms();
}

/* Steps 2 to 4 of ingest_profile: 1 to store p (*columns set, r's
 * timestamp set, *req the append of p under labels), 0 a baseline (p
 * freed), <0 refused (p freed). */
static int ingest_before_store(pprof_profile *p, const firn_label *labels, size_t n_labels,
                               const ingest_options *o, ingest_result *r, bool **columns_out,
                               tsdb_append_req *req, firn_err *err)
{
    *r = (ingest_result){0};
    if (o->sample_limit && p->n_samples > o->sample_limit) {
        r->failed = INGEST_FAILED_LIMIT;
        int rc = firn_errf(err, FIRN_ETOOBIG, "sample limit exceeded (samples: %zu, limit: %llu)",
                           p->n_samples, (unsigned long long)o->sample_limit);
        pprof_free(p);
        return rc;
    }
    keep_sample_types(o, p);
    if (p->n_sample_types == 0) {
        r->failed = INGEST_FAILED_DECODE;
        pprof_free(p);
        return firn_errf(err, FIRN_EINVAL, "no sample type left after keep_sample_type");
    }
    bool *columns = firn_xcalloc(p->n_sample_types, sizeof *columns);
    if (!delta_columns(o, p, columns, err)) {
        r->baseline = true;
        free(columns);
        pprof_free(p);
        return 0;
    }
    r->timestamp_ms = o->timestamp_ms ? o->timestamp_ms : profile_time_ms(p);
    *columns_out = columns;
    *req = (tsdb_append_req){
        .labels = labels,
        .n_labels = n_labels,
        .profile_name = o->profile_name,
        .delta_columns = columns,
        .profile = p,
        .timestamp_ms = r->timestamp_ms,
    };
    return 1;
}

static void forward_stored(const firn_label *labels, size_t n_labels, const char *profile_name,
                           const pprof_profile *p, const bool *columns, int64_t ts)
{
    if (forward_fn)
        forward_fn(forward_ctx, &(ingest_stored){labels, n_labels, profile_name, p, columns, ts});
}

int ingest_profile(tsdb *db, const firn_label *labels, size_t n_labels, pprof_profile *p,
                   const ingest_options *o, ingest_result *r, firn_err *err)
{
    bool *columns = NULL;
    tsdb_append_req req;
    int rc = ingest_before_store(p, labels, n_labels, o, r, &columns, &req, err);
    if (rc <= 0)
        return rc;
    req.duplicate = &r->duplicate;
    if (!db) {
        r->failed = INGEST_FAILED_STORE;
        rc = firn_errf(err, FIRN_EIO, "no store to write to");
    } else if ((rc = tsdb_append(db, &req, err)) < 0) {
        r->failed = INGEST_FAILED_STORE;
        firn_err_prefix(err, "storing the profile");
    } else {
        r->samples = p->n_samples;
        if (!r->duplicate)
            forward_stored(labels, n_labels, o->profile_name, p, columns, r->timestamp_ms);
    }
    if (rc == 0 && o->keep_profile) {
        r->profile = p;
        r->delta_columns = columns;
    } else {
        pprof_free(p);
        free(columns);
    }
    return rc;
}

/* ---- asynchronous ingest ------------------------------------------------------ */

struct ingest_pending {
    pprof_profile *profile;
    bool *columns;
    firn_label *labels;          /* a copy, for the forwarder */
    size_t n_labels;
    char *profile_name;
    firn_arena *arena;           /* labels and name */
    ingest_grant grant;          /* the decoding's, released by ingest_pending_finish */
    ingest_result result;
    int rc;
    firn_err err;
    bool keep;                   /* keep_profile: finish hands the profile back */
    ingest_done_fn done;
    void *ctx;
};

/* The store's completion (writer thread): record, hand on. */
static void pending_stored(void *ctx, int status, const firn_err *err, bool duplicate)
{
    ingest_pending *pd = ctx;
    pd->rc = status;
    if (status < 0) {
        pd->result.failed = INGEST_FAILED_STORE;
        pd->err = *err;
        firn_err_prefix(&pd->err, "storing the profile");
    } else {
        pd->result.samples = pd->profile->n_samples;
        pd->result.duplicate = duplicate;
    }
    pd->done(pd->ctx, pd);
}

int ingest_profile_async(tsdb *db, const firn_label *labels, size_t n_labels, pprof_profile *p,
                         ingest_grant *g, const ingest_options *o, ingest_result *r,
                         ingest_done_fn done, void *ctx, firn_err *err)
{
    bool *columns = NULL;
    tsdb_append_req req;
    int rc = ingest_before_store(p, labels, n_labels, o, r, &columns, &req, err);
    if (rc <= 0) {
        ingest_grant_release(g);
        return rc;
    }
    if (!db) {
        r->failed = INGEST_FAILED_STORE;
        pprof_free(p);
        free(columns);
        ingest_grant_release(g);
        return firn_errf(err, FIRN_EIO, "no store to write to");
    }
    ingest_pending *pd = firn_xcalloc(1, sizeof *pd);
    pd->profile = p;
    pd->columns = columns;
    pd->result = *r;
    pd->keep = o->keep_profile;
    pd->done = done;
    pd->ctx = ctx;
    pd->grant = *g;
    *g = (ingest_grant){0};
    if (forward_fn) {
        pd->arena = firn_arena_new(0);
        pd->labels = firn_arena_alloc(pd->arena, (n_labels + 1) * sizeof *pd->labels);
        for (size_t i = 0; i < n_labels; i++) {
            pd->labels[i].name = firn_arena_strdup(pd->arena, labels[i].name);
            pd->labels[i].value = firn_arena_strdup(pd->arena, labels[i].value);
        }
        pd->n_labels = n_labels;
        pd->profile_name = firn_arena_strdup(pd->arena, o->profile_name);
    }
    if ((rc = tsdb_append_async(db, &req, pending_stored, pd, err)) < 0) {
        r->failed = INGEST_FAILED_STORE;
        firn_err_prefix(err, "storing the profile");
        pd->rc = rc;   /* nothing stored: nothing forwarded */
        ingest_pending_finish(pd, NULL, NULL);
        return rc;
    }
    return INGEST_QUEUED;
}

int ingest_pending_finish(ingest_pending *pd, ingest_result *r, firn_err *err)
{
    int rc = pd->rc;
    if (rc == 0 && !pd->result.duplicate)
        forward_stored(pd->labels, pd->n_labels, pd->profile_name, pd->profile, pd->columns,
                       pd->result.timestamp_ms);
    if (r)
        *r = pd->result;
    if (rc < 0 && err)
        *err = pd->err;
    if (rc == 0 && pd->keep && r) {
        r->profile = pd->profile;
        r->delta_columns = pd->columns;
    } else {
        pprof_free(pd->profile);
        free(pd->columns);
    }
    firn_arena_free(pd->arena);
    ingest_grant_release(&pd->grant);
    free(pd);
    return rc;
}

int ingest_pprof_async(tsdb *db, const firn_label *labels, size_t n_labels, const void *data,
                       size_t len, const ingest_options *o, ingest_result *r, ingest_done_fn done,
                       void *ctx, firn_err *err)
{
    *r = (ingest_result){0};
    ingest_grant g = {0};
    pprof_profile *p = ingest_decode(data, len, &g, err);
    if (!p) {
        r->failed = INGEST_FAILED_DECODE;
        return err ? err->code : FIRN_EINVAL;
    }
    return ingest_profile_async(db, labels, n_labels, p, &g, o, r, done, ctx, err);
}

int ingest_pprof(tsdb *db, const firn_label *labels, size_t n_labels, const void *data,
                 size_t len, const ingest_options *o, ingest_result *r, firn_err *err)
{
    *r = (ingest_result){0};
    ingest_grant g = {0};
    pprof_profile *p = ingest_decode(data, len, &g, err);
    if (!p) {
        r->failed = INGEST_FAILED_DECODE;
        return err ? err->code : FIRN_EINVAL;
    }
    int rc = ingest_profile(db, labels, n_labels, p, o, r, err);
    ingest_grant_release(&g);
    return rc;
}

int ingest_labels_check(firn_label *labels, size_t *n_labels, firn_err *err)
{
    if (*n_labels > INGEST_MAX_LABELS)
        return firn_errf(err, FIRN_EINVAL, "labels: %zu labels, more than the %d a pushed "
                         "profile may have", *n_labels, INGEST_MAX_LABELS);
    for (size_t i = 0; i < *n_labels; i++)
        if (strcmp(labels[i].name, FIRN_LABEL_NAME) == 0)
            return firn_errf(err, FIRN_EINVAL, "label __name__: the profile type is the "
                             "store's to derive; give the profile name as name=");
    if (firn_labels_normalize(labels, n_labels, err) < 0) {
        firn_err_prefix(err, "labels");
        return FIRN_EINVAL;
    }
    return 0;
}

int ingest_kv_list_parse(firn_arena *a, const char *what, const char *p, const char *end,
                         firn_label **pairs, size_t *n_pairs, firn_err *err)
{
    size_t room = 1, n = 0;
    for (const char *q = p; q < end; q++)
        room += *q == ',';
    firn_label *out = firn_arena_calloc(a, room, sizeof *out);
    while (p < end) {
        const char *item = p, *item_end = memchr(p, ',', (size_t)(end - p));
        if (!item_end)
            item_end = end;
        p = item_end < end ? item_end + 1 : end;
        while (item < item_end && isspace((unsigned char)*item))
            item++;
        while (item_end > item && isspace((unsigned char)item_end[-1]))
            item_end--;
        if (item == item_end)
            continue;
        const char *eq = memchr(item, '=', (size_t)(item_end - item));
        if (!eq)
            return firn_errf(err, FIRN_EINVAL, "%s: \"%.*s\" is not k=v", what,
                             (int)(item_end - item > 100 ? 100 : item_end - item), item);
        const char *name_end = eq, *v = eq + 1;
        while (name_end > item && isspace((unsigned char)name_end[-1]))
            name_end--;
        while (v < item_end && isspace((unsigned char)*v))
            v++;
        assert(n < room);   /* one item per comma, plus one */
        out[n].name = firn_arena_strndup(a, item, (size_t)(name_end - item));
        out[n].value = firn_arena_strndup(a, v, (size_t)(item_end - v));
        n++;
    }
    *pairs = out;
    *n_pairs = n;
    return 0;
}
