/* target.c -- scrape targets: label population, relabeling, URL, offset.
 *
 * A port of Prometheus's scrape/target.go (PopulateDiscoveredLabels,
 * PopulateLabels, Target.URL, Target.offset) with Parca's per-profile-type
 * URL; see scrape.h for the contract and firn's choices.
 */
#include "scrape/scrape.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- label population ----------------------------------------------------- */

/* A label set under construction: the first value set for a name wins,
 * and an empty value counts as absent (Prometheus's labels.Builder). */
typedef struct builder {
    firn_label *l;
    size_t n, cap;
} builder;

static const char *builder_get(const builder *b, const char *name)
{
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->l[i].name, name) == 0)
            return b->l[i].value;
    return NULL;
}

/* Add name=value unless name already has a value.  The caller sized l. */
static void builder_set_if_empty(builder *b, const char *name, const char *value)
{
    if (!value || !value[0] || builder_get(b, name))
        return;
    assert(b->n < b->cap);
    b->l[b->n].name = name;
    b->l[b->n].value = value;
    b->n++;
}

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const firn_label *)a)->name, ((const firn_label *)b)->name);
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Go's %q of s (its first bytes, when long) into buf, for error messages. */
static const char *quote(char *buf, size_t size, const char *s)
{
    size_t len = strlen(s);
    if (len > (size - 3) / 10)
        len = (size - 3) / 10;  /* a capped prefix: 10 bytes per byte at most */
    size_t n = firn_go_quote(buf, s, len);
    buf[n] = '\0';
    return buf;
}

#define QUOTE_BUF 1024

static int populate_discovered(const config_scrape *cfg, const firn_label *target,
                               size_t n_target, const firn_label *group, size_t n_group,
                               firn_arena *arena, scrape_target *out, firn_err *err)
{
    size_t fixed = 5;  /* job, __scrape_interval__, __scrape_timeout__, path, scheme */
    if (n_target > FIRN_RELABEL_LABELS_MAX || n_group > FIRN_RELABEL_LABELS_MAX ||
        n_target + n_group + fixed + cfg->n_params > FIRN_RELABEL_LABELS_MAX)
        return firn_errf(err, FIRN_ETOOBIG, "target has more than %d labels",
                         FIRN_RELABEL_LABELS_MAX);
    builder b = {.cap = n_target + n_group + fixed + cfg->n_params};
    b.l = firn_arena_calloc(arena, b.cap, sizeof *b.l);
    char *interval = firn_arena_alloc(arena, 64), *timeout = firn_arena_alloc(arena, 64);
    firn_duration_format(interval, 64, cfg->interval_ms);
    firn_duration_format(timeout, 64, cfg->timeout_ms);

    for (size_t i = 0; i < n_target; i++)
        builder_set_if_empty(&b, target[i].name, target[i].value);
    for (size_t i = 0; i < n_group; i++)
        builder_set_if_empty(&b, group[i].name, group[i].value);
    builder_set_if_empty(&b, "job", cfg->job_name);
    builder_set_if_empty(&b, SCRAPE_LABEL_INTERVAL, interval);
    builder_set_if_empty(&b, SCRAPE_LABEL_TIMEOUT, timeout);
    builder_set_if_empty(&b, SCRAPE_LABEL_METRICS_PATH, cfg->path_prefix);
    builder_set_if_empty(&b, SCRAPE_LABEL_SCHEME, cfg->scheme);
    for (size_t i = 0; i < cfg->n_params; i++) {
        const config_param *p = &cfg->params[i];
        if (p->n_values == 0)
            continue;
        size_t len = strlen(SCRAPE_LABEL_PARAM_PREFIX) + strlen(p->name) + 1;
        char *name = firn_arena_alloc(arena, len);
        snprintf(name, len, "%s%s", SCRAPE_LABEL_PARAM_PREFIX, p->name);
        builder_set_if_empty(&b, name, p->values[0]);
    }
    firn_sort(b.l, b.n, sizeof *b.l, label_cmp);
    out->discovered = b.n ? b.l : NULL;
    out->n_discovered = b.n;
    return FIRN_OK;
}

static int parse_duration_label(const firn_label *l, size_t n, const char *name,
                                const char *what, int64_t *ms, firn_err *err)
{
    const char *v = firn_labels_get(l, n, name);
    firn_err perr = {0};
    if (firn_duration_parse(v ? v : "", ms, &perr) < 0)
        return firn_errf(err, FIRN_EINVAL, "error parsing scrape %s: %s", what, perr.msg);
    if (*ms == 0)
        return firn_errf(err, FIRN_EINVAL, "scrape %s cannot be 0", what);
    return FIRN_OK;
}

int scrape_target_labels(const config_scrape *cfg, const firn_label *target, size_t n_target,
                         const firn_label *group, size_t n_group, firn_arena *arena,
                         scrape_target *out, firn_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = populate_discovered(cfg, target, n_target, group, n_group, arena, out, err);
    if (rc < 0)
        return rc;

    firn_label *rl = NULL;
    size_t n_rl = 0;
    rc = firn_relabel_process(cfg->relabel_configs, cfg->n_relabel_configs, out->discovered,
                              out->n_discovered, arena, &rl, &n_rl, err);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        out->dropped = true;
        return FIRN_OK;
    }

    char q[QUOTE_BUF];
    const char *addr = firn_labels_get(rl, n_rl, SCRAPE_LABEL_ADDRESS);
    if (!addr || !addr[0])
        return firn_errf(err, FIRN_EINVAL, "no address");
    if (strchr(addr, '/'))
        return firn_errf(err, FIRN_EINVAL, "%s is not a valid hostname",
                         quote(q, sizeof q, addr));
    rc = parse_duration_label(rl, n_rl, SCRAPE_LABEL_INTERVAL, "interval", &out->interval_ms,
                              err);
    if (rc < 0)
        return rc;
    rc = parse_duration_label(rl, n_rl, SCRAPE_LABEL_TIMEOUT, "timeout", &out->timeout_ms, err);
    if (rc < 0)
        return rc;

    /* Room for instance, which may have to be added. */
    firn_label *l = firn_arena_calloc(arena, n_rl + 1, sizeof *l);
    size_t n = 0, n_public = 0;
    for (size_t i = 0; i < n_rl; i++)
        if (!has_prefix(rl[i].name, SCRAPE_LABEL_META_PREFIX))
            l[n++] = rl[i];
    const char *instance = firn_labels_get(l, n, "instance");
    if (!instance || !instance[0]) {
        l[n].name = "instance";
        l[n].value = addr;
        n++;
        firn_sort(l, n, sizeof *l, label_cmp);
    }
    for (size_t i = 0; i < n; i++) {
        if (!firn_utf8_valid(l[i].value, strlen(l[i].value))) {
            char qv[QUOTE_BUF];
            return firn_errf(err, FIRN_EINVAL, "invalid label value for %s: %s",
                             quote(q, sizeof q, l[i].name), quote(qv, sizeof qv, l[i].value));
        }
        if (!has_prefix(l[i].name, "__"))
            n_public++;
    }
    firn_label *pub = n_public ? firn_arena_calloc(arena, n_public, sizeof *pub) : NULL;
    for (size_t i = 0, j = 0; i < n; i++)
        if (!has_prefix(l[i].name, "__"))
            pub[j++] = l[i];
    out->labels = l;
    out->n_labels = n;
    out->public_labels = pub;
    out->n_public = n_public;
    return FIRN_OK;
}

/* ---- URL ------------------------------------------------------------------- */

/* Go's url.QueryEscape: unreserved bytes as they are, ' ' as '+', the
 * rest as %XX. */
static void buf_query_escape(firn_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            firn_buf_append(b, (const char *)&c, 1);
        } else if (c == ' ') {
            firn_buf_append(b, "+", 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            firn_buf_append(b, e, 3);
        }
    }
}

/* One query key: its first value possibly replaced, the rest from the
 * config. */
typedef struct query_key {
    const char *key;
    const char *first;
    char *const *rest;
    size_t n_rest;
} query_key;

static int query_key_cmp(const void *a, const void *b)
{
    return strcmp(((const query_key *)a)->key, ((const query_key *)b)->key);
}

static query_key *find_key(query_key *k, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(k[i].key, key) == 0)
            return &k[i];
    return NULL;
}

char *scrape_target_url(const scrape_target *t, const config_scrape *cfg,
                        const config_profile_type *pt)
{
    const char *scheme = firn_labels_get(t->labels, t->n_labels, SCRAPE_LABEL_SCHEME);
    const char *addr = firn_labels_get(t->labels, t->n_labels, SCRAPE_LABEL_ADDRESS);
    const char *prefix = firn_labels_get(t->labels, t->n_labels, SCRAPE_LABEL_METRICS_PATH);
    /* pt->path holds the job's path_prefix; the target's prefix replaces it. */
    const char *path = pt->path;
    size_t cfg_prefix = strlen(cfg->path_prefix);
    assert(strncmp(path, cfg->path_prefix, cfg_prefix) == 0);
    path += cfg_prefix;

    size_t cap = cfg->n_params + t->n_labels + 1, n = 0;
    query_key *keys = firn_xcalloc(cap, sizeof *keys);
    for (size_t i = 0; i < cfg->n_params; i++) {
        const config_param *p = &cfg->params[i];
        if (p->n_values == 0)
            continue;
        keys[n++] = (query_key){p->name, p->values[0], p->values + 1, p->n_values - 1};
    }
    size_t plen = strlen(SCRAPE_LABEL_PARAM_PREFIX);
    for (size_t i = 0; i < t->n_labels; i++) {
        if (!has_prefix(t->labels[i].name, SCRAPE_LABEL_PARAM_PREFIX))
            continue;
        const char *key = t->labels[i].name + plen;
        query_key *k = find_key(keys, n, key);
        if (k)
            k->first = t->labels[i].value;
        else
            keys[n++] = (query_key){key, t->labels[i].value, NULL, 0};
    }
    assert(n < cap);   /* room is left for seconds */
    char seconds[32];
    if (pt->delta) {
        snprintf(seconds, sizeof seconds, "%lld", (long long)pt->seconds);
        query_key *k = find_key(keys, n, "seconds");
        if (!k)
            k = &keys[n++];
        *k = (query_key){"seconds", seconds, NULL, 0};
    }
    firn_sort(keys, n, sizeof *keys, query_key_cmp);

    firn_buf b = {0};
    firn_buf_puts(&b, scheme ? scheme : "");
    firn_buf_puts(&b, "://");
    firn_buf_puts(&b, addr ? addr : "");
    firn_buf_puts(&b, prefix ? prefix : "");
    firn_buf_puts(&b, path);
    for (size_t i = 0; i < n; i++) {
        for (size_t v = 0; v <= keys[i].n_rest; v++) {
            firn_buf_puts(&b, i == 0 && v == 0 ? "?" : "&");
            buf_query_escape(&b, keys[i].key);
            firn_buf_puts(&b, "=");
            buf_query_escape(&b, v == 0 ? keys[i].first : keys[i].rest[v - 1]);
        }
    }
    free(keys);
    return firn_buf_take(&b, NULL);
}

/* ---- spreading ------------------------------------------------------------- */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv1a(uint64_t h, const void *p, size_t len)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < len; i++) {
        h ^= s[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* FNV-1a's low bits follow its last input bytes closely; targets that
 * differ in one digit must still land far apart modulo the interval, so
 * the hash goes through splitmix64's finalizer. */
static uint64_t mix(uint64_t h)
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

uint64_t scrape_target_offset_ms(const scrape_target *t, const char *url, uint64_t seed,
                                 int64_t interval_ms)
{
    if (interval_ms <= 0)
        return 0;
    static const unsigned char sep = 0xff;  /* never in UTF-8: names and values stay apart */
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < t->n_labels; i++) {
        h = fnv1a(h, t->labels[i].name, strlen(t->labels[i].name));
        h = fnv1a(h, &sep, 1);
        h = fnv1a(h, t->labels[i].value, strlen(t->labels[i].value));
        h = fnv1a(h, &sep, 1);
    }
    h = fnv1a(h, url, strlen(url));
    return (mix(h) ^ seed) % (uint64_t)interval_ms;
}

int64_t scrape_next_delay_ms(int64_t now_ms, int64_t interval_ms, uint64_t offset_ms)
{
    assert(interval_ms > 0 && offset_ms < (uint64_t)interval_ms);
    int64_t phase = now_ms % interval_ms;
    if (phase < 0)
        phase += interval_ms;
    int64_t next = interval_ms - phase + (int64_t)offset_ms;
    if (next > interval_ms)
        next -= interval_ms;
    return next;
}
