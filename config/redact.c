/* redact.c -- the running configuration as /api/v1/status/config shows it:
 * the parsed document written out again by libyaml's emitter, with every
 * secret value replaced by "<secret>" (Prometheus's config.Secret).
 *
 * Re-serializing instead of masking the text drops comments (a comment may
 * quote a password) and cannot miss a secret written in an unusual style
 * (block scalar, flow mapping, quoted key).  The secret positions follow the
 * schema (config.h):
 *   basic_auth: {password}         authorization: {credentials}
 *   bearer_token (a key of a scrape config or a kubernetes_sd_configs entry:
 *                 a mapping that is an item of a sequence)
 *   headers       (a profile_remote_write entry's: every value)
 *   object_storage: every scalar but bucket.type (Parca's bucket config is
 *                 free-form and firn does not use it, so nothing in it is
 *                 known not to be a key)
 * Paths (*_file, kubeconfig_file) are not secrets and are shown.
 *
 * The tree is a DAG (an alias shares its anchor's node): a node reached twice
 * is written once with an anchor and then as aliases, so the output is as
 * small as the input and the walk never expands an alias bomb.  A node that
 * is secret on any of its paths is masked on all of them.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "config/config.h"

/* Where a node sits, as far as secrets are concerned. */
enum ctx {
    CTX_NONE,
    CTX_SEQ_ITEM,       /* an item of a sequence: scrape config, SD entry... */
    CTX_BASIC_AUTH,     /* the value of a basic_auth key */
    CTX_AUTHORIZATION,  /* the value of an authorization key */
    CTX_OBJECT_STORAGE, /* the value of object_storage */
    CTX_BUCKET,         /* object_storage.bucket */
    CTX_MASKED,         /* every scalar value below is a secret */
};

typedef struct redactor {
    firn_u64map visits;   /* (node, ctx) pairs already walked */
    firn_u64map secret;   /* nodes to mask */
    firn_u64map seen;     /* nodes reached once */
    firn_u64map shared;   /* nodes reached more than once: written with an anchor */
    firn_u64map anchors;  /* node -> anchor number, once written */
    uint32_t next_anchor;
} redactor;

static uint64_t key_of(const config_ynode *n) { return (uint64_t)(uintptr_t)n; }

static bool scalar_is(const config_ynode *n, const char *s)
{
    return n->kind == CONFIG_YNODE_SCALAR && strlen(s) == n->len && memcmp(n->value, s, n->len) == 0;
}

/* Insert key into m: true when new, false when it was there. */
static bool put(firn_u64map *m, uint64_t key)
{
    return firn_u64map_put(m, key, 1, NULL) == 1;
}

/* The context of the value of key k in a mapping whose context is ctx. */
static enum ctx value_ctx(enum ctx ctx, const config_ynode *k)
{
    switch (ctx) {
    case CTX_MASKED:
        return CTX_MASKED;
    case CTX_OBJECT_STORAGE:
        return scalar_is(k, "bucket") ? CTX_BUCKET : CTX_MASKED;
    case CTX_BUCKET:
        return scalar_is(k, "type") ? CTX_NONE : CTX_MASKED;
    case CTX_BASIC_AUTH:
        if (scalar_is(k, "password"))
            return CTX_MASKED;
        break;
    case CTX_AUTHORIZATION:
        if (scalar_is(k, "credentials"))
            return CTX_MASKED;
        break;
    case CTX_SEQ_ITEM:
        /* a profile_remote_write's headers may carry a tenant's token */
        if (scalar_is(k, "bearer_token") || scalar_is(k, "headers"))
            return CTX_MASKED;
        break;
    case CTX_NONE:
        break;
    }
    if (scalar_is(k, "basic_auth"))
        return CTX_BASIC_AUTH;
    if (scalar_is(k, "authorization"))
        return CTX_AUTHORIZATION;
    if (scalar_is(k, "object_storage"))
        return CTX_OBJECT_STORAGE;
    return CTX_NONE;
}

/* Mark the secret nodes under n.  Each (node, context) pair is walked once
 * (nodes are arena-aligned, so the context fits in the pointer's low bits):
 * the work is bounded by the distinct nodes, not by the aliases. */
static void mark(redactor *r, const config_ynode *n, enum ctx ctx)
{
    _Static_assert(CTX_MASKED < 8, "the context must fit in 3 bits");
    assert((key_of(n) & 7) == 0);
    if (!put(&r->visits, key_of(n) | (uint64_t)ctx))
        return;
    bool masked = ctx == CTX_MASKED || ctx == CTX_OBJECT_STORAGE || ctx == CTX_BUCKET;
    if (n->kind == CONFIG_YNODE_SCALAR) {
        if (masked)
            put(&r->secret, key_of(n));
        return;
    }
    if (n->kind == CONFIG_YNODE_SEQ) {
        for (size_t i = 0; i < n->n; i++)
            mark(r, n->items[i], masked ? CTX_MASKED : CTX_SEQ_ITEM);
        return;
    }
    for (size_t p = 0; p < n->n; p++) {
        mark(r, n->items[2 * p], CTX_NONE);
        mark(r, n->items[2 * p + 1], value_ctx(ctx, n->items[2 * p]));
    }
}

/* Find the nodes reached more than once (each node's children walked once). */
static void find_shared(redactor *r, const config_ynode *n)
{
    if (!put(&r->seen, key_of(n))) {
        put(&r->shared, key_of(n));
        return;
    }
    if (n->kind != CONFIG_YNODE_SCALAR)
        for (size_t i = 0; i < (n->kind == CONFIG_YNODE_MAP ? 2 * n->n : n->n); i++)
            find_shared(r, n->items[i]);
}

static int emit_node(redactor *r, yaml_emitter_t *e, const config_ynode *n)
{
    yaml_event_t ev;
    uint32_t id = 0;
    char anchor[16] = "";
    if (firn_u64map_get(&r->anchors, key_of(n), &id) == 1) {
        snprintf(anchor, sizeof anchor, "a%u", id);
        if (!yaml_alias_event_initialize(&ev, (yaml_char_t *)anchor))
            return -1;
        return yaml_emitter_emit(e, &ev) ? 0 : -1;
    }
    if (firn_u64map_get(&r->shared, key_of(n), &id) == 1) {
        id = ++r->next_anchor;
        firn_u64map_put(&r->anchors, key_of(n), id, NULL);
        snprintf(anchor, sizeof anchor, "a%u", id);
    }
    yaml_char_t *a = anchor[0] ? (yaml_char_t *)anchor : NULL;
    int ok;
    if (n->kind == CONFIG_YNODE_SCALAR) {
        uint32_t masked = 0;
        if (firn_u64map_get(&r->secret, key_of(n), &masked) == 1)
            ok = yaml_scalar_event_initialize(&ev, a, NULL, (yaml_char_t *)"<secret>", 8, 1, 1,
                                              YAML_PLAIN_SCALAR_STYLE);
        else
            /* a quoted scalar stays quoted, so "true" stays a string */
            ok = yaml_scalar_event_initialize(&ev, a, NULL, (yaml_char_t *)n->value, (int)n->len,
                                              n->plain, !n->plain, YAML_ANY_SCALAR_STYLE);
        return ok && yaml_emitter_emit(e, &ev) ? 0 : -1;
    }
    bool map = n->kind == CONFIG_YNODE_MAP;
    ok = map ? yaml_mapping_start_event_initialize(&ev, a, NULL, 1, YAML_BLOCK_MAPPING_STYLE)
             : yaml_sequence_start_event_initialize(&ev, a, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
    if (!ok || !yaml_emitter_emit(e, &ev))
        return -1;
    for (size_t i = 0; i < (map ? 2 * n->n : n->n); i++)
        if (emit_node(r, e, n->items[i]) < 0)
            return -1;
    ok = map ? yaml_mapping_end_event_initialize(&ev) : yaml_sequence_end_event_initialize(&ev);
    return ok && yaml_emitter_emit(e, &ev) ? 0 : -1;
}

static int write_buf(void *data, unsigned char *bytes, size_t size)
{
    firn_buf_append(data, bytes, size);   /* no cap: the text is a loaded file's */
    return 1;
}

char *config_redacted_yaml(const config_ynode *root, firn_arena *arena)
{
    if (!root)
        return firn_arena_strdup(arena, "");
    redactor r = {0};
    firn_buf out = {0};
    firn_u64map_init(&r.visits, 64);
    firn_u64map_init(&r.secret, 16);
    firn_u64map_init(&r.seen, 64);
    firn_u64map_init(&r.shared, 16);
    firn_u64map_init(&r.anchors, 16);
    mark(&r, root, CTX_NONE);
    find_shared(&r, root);
    yaml_emitter_t e;
    if (!yaml_emitter_initialize(&e))   /* fails only for want of memory */
        firn_oom(sizeof e);
    yaml_emitter_set_output(&e, write_buf, &out);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, -1);
    yaml_event_t ev;
    int ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
             yaml_emitter_emit(&e, &ev) &&
             yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
             yaml_emitter_emit(&e, &ev) && emit_node(&r, &e, root) == 0 &&
             yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&e, &ev) &&
             yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&e, &ev) &&
             yaml_emitter_flush(&e);
    if (!ok && e.error == YAML_MEMORY_ERROR)
        firn_oom(out.len);
    /* Anything else libyaml refuses to write back (the writer never fails)
     * leaves the caller without the text: NULL. */
    yaml_emitter_delete(&e);
    char *text = ok ? firn_arena_strndup(arena, out.data ? out.data : "", out.len) : NULL;
    firn_buf_free(&out);
    firn_u64map_destroy(&r.visits);
    firn_u64map_destroy(&r.secret);
    firn_u64map_destroy(&r.seen);
    firn_u64map_destroy(&r.shared);
    firn_u64map_destroy(&r.anchors);
    return text;
}
