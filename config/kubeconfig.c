/* kubeconfig.c -- read a kubeconfig file down to the connection of its
 * current context (config.h, part 4, has the contract), with the decoder the
 * other YAML loaders use (part 5), leniently: keys firn does not read are
 * ignored, as client-go ignores them.
 *
 * The tree and everything decoded live in a scratch arena; only a
 * successful result is copied into the arena the caller keeps, so a
 * large file with many clusters costs its tree only while it is read.
 */
#include "config/config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* A decoder plus what a kubeconfig needs beside it. */
typedef struct kdec {
    config_dec d;             /* d.arena: the scratch arena */
    const char *dir;   /* the kubeconfig's directory with its '/', or "" */
    bool io;           /* a file could not be read */
} kdec;

/* One entry of clusters, users or contexts: {name, KIND: {...}}. */
typedef struct named {
    const char *name;
    const config_ynode *name_node;
    const config_ynode *body;    /* the value of the KIND key, or NULL */
    const config_ynode *entry;
} named;

typedef struct named_list {
    named *items;
    size_t n;          /* entries with a name */
    size_t n_entries;  /* entries in the file's list */
} named_list;

/* ---- values ------------------------------------------------------------------- */

/* A string field; "" counts as not given, as client-go's len() checks do.
 * False only after a type error was reported. */
static bool get_str(kdec *k, const config_ynode *v, const char *field, char **out)
{
    char *s = NULL;
    if (!config_dec_str(&k->d, v, field, &s))
        return false;
    *out = s && *s ? s : NULL;
    return true;
}

/* Whether a key firn refuses is really set: null and empty values
 * (as-groups: [], exec: {}) are what kubectl writes for "not set". */
static bool given(const config_ynode *v)
{
    if (!v || config_ynode_is_null(v))
        return false;
    return v->kind == CONFIG_YNODE_SCALAR ? v->len > 0 : v->n > 0;
}

/* A file named in the kubeconfig: relative to its directory, as kubectl
 * resolves it, and readable now.  Only stat and access: opening could
 * block on a FIFO or touch a device. */
static bool get_path(kdec *k, const config_ynode *v, const char *field, const char *what,
                     const char *name, char **out)
{
    char *s = NULL;
    if (!get_str(k, v, field, &s) || !s)
        return false;
    char *p = s;
    if (s[0] != '/' && k->dir[0]) {
        size_t a = strlen(k->dir), b = strlen(s);
        p = firn_arena_alloc(k->d.arena, a + b + 1);
        assert(p);   /* two strings of the file: no overflow */
        memcpy(p, k->dir, a);
        memcpy(p + a, s, b + 1);
    }
    struct stat st;
    int e = 0;
    if (stat(p, &st) < 0)
        e = errno;
    else if (S_ISDIR(st.st_mode))
        e = EISDIR;
    else if (faccessat(AT_FDCWD, p, R_OK, AT_EACCESS) < 0)
        e = errno;
    if (e) {
        config_dec_err(&k->d, v, field, "%s \"%.128s\": cannot read \"%.256s\": %s", what, name, p,
                strerror(e));
        k->io = true;
        return false;
    }
    *out = p;
    return true;
}

static bool b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

/* Standard base64 with padding, line breaks skipped: what Go's
 * encoding/json reads into the []byte *-data fields.  EVP_DecodeBlock
 * counts the padding as zero bytes, so the length comes from the '='s. */
static bool b64_decode(kdec *k, const char *s, unsigned char **out, size_t *out_len)
{
    size_t n = strlen(s), m = 0;
    unsigned char *clean = firn_arena_alloc(k->d.arena, n + 1);
    assert(clean);   /* a string of the file: no overflow */
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\n' && s[i] != '\r')
            clean[m++] = (unsigned char)s[i];
    if (m == 0 || m % 4 != 0 || m > KUBECONFIG_MAX_BYTES)
        return false;
    size_t pad = clean[m - 1] == '=' ? (clean[m - 2] == '=' ? 2 : 1) : 0;
    for (size_t i = 0; i < m - pad; i++)
        if (!b64_char(clean[i]))
            return false;
    size_t whole = m / 4 * 3;
    unsigned char *buf = firn_arena_alloc(k->d.arena, whole + 1);
    assert(buf);
    if (EVP_DecodeBlock(buf, clean, (int)m) != (int)whole)
        return false;
    *out_len = whole - pad;
    buf[*out_len] = '\0';
    *out = buf;
    return true;
}

/* A *-data field: base64 of PEM.  Absent, null or "" leaves *out NULL. */
static void get_data(kdec *k, const config_ynode *v, const char *field, const char *what,
                     const char *name, unsigned char **out, size_t *len)
{
    char *s = NULL;
    if (!get_str(k, v, field, &s) || !s)
        return;
    if (!b64_decode(k, s, out, len))
        config_dec_err(&k->d, v, field, "%s \"%.128s\": not valid base64", what, name);
}

/* Kubernetes's DNS-1123 label, the rule for namespace names. */
static bool dns1123_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (c != '-' || i == 0 || i == n - 1))
            return false;
    }
    return true;
}

/* An http:// or https:// URL with a host, and nothing a request line
 * could not carry. */
static bool server_ok(const char *s)
{
    size_t skip = strncasecmp(s, "https://", 8) == 0  ? 8
                  : strncasecmp(s, "http://", 7) == 0 ? 7
                                                      : 0;
    if (!skip || !s[skip] || s[skip] == '/' || s[skip] == '?' || s[skip] == '#')
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

/* ---- clusters, users, contexts --------------------------------------------- */

static int cmp_named(const void *a, const void *b)
{
    const named *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    if (x->name_node->line != y->name_node->line)
        return x->name_node->line < y->name_node->line ? -1 : 1;
    return (x->name_node->col > y->name_node->col) - (x->name_node->col < y->name_node->col);
}

/* Index a list of named entries (list: "clusters", kind: "cluster"):
 * every entry a mapping, names strings and unique, as client-go's
 * conversion to a map requires.  Entries without a name cannot be chosen
 * and are left out. */
static void index_list(kdec *k, const config_ynode *v, const char *list, const char *kind,
                       named_list *out)
{
    config_dec *d = &k->d;
    memset(out, 0, sizeof *out);
    const config_ynode *seq = config_dec_seq(d, v, list);
    if (!seq || seq->n == 0)
        return;
    out->n_entries = seq->n;
    out->items = config_dec_calloc(d, seq->n, sizeof *out->items);
    char what[32];
    snprintf(what, sizeof what, "a %s entry", kind);
    const char *const names[] = {"name", kind};
    for (size_t i = 0; i < seq->n; i++) {
        const config_ynode *vals[2];
        char *name = NULL;
        if (!config_dec_fields_lax(d, seq->items[i], list, what, names, 2, vals, NULL) ||
            !get_str(k, vals[0], "name", &name) || !name)
            continue;
        out->items[out->n++] = (named){name, vals[0], vals[1], seq->items[i]};
    }
    if (out->n < 2)
        return;
    /* sorted by name, then position: a name's first entry leads its run */
    named *sorted = config_dec_calloc(d, out->n, sizeof *sorted);
    memcpy(sorted, out->items, out->n * sizeof *sorted);
    firn_sort(sorted, out->n, sizeof *sorted, cmp_named);
    for (size_t i = 1, first = 0; i < out->n; i++) {
        if (strcmp(sorted[i].name, sorted[first].name) != 0) {
            first = i;
            continue;
        }
        config_dec_err(d, sorted[i].name_node, "name", "duplicate %s name \"%.128s\" (first at %d:%d)",
                kind, sorted[i].name, sorted[first].name_node->line, sorted[first].name_node->col);
    }
}

/* The first entry called name (duplicates are reported by index_list). */
static const named *find_named(const named_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].name, name) == 0)
            return &l->items[i];
    return NULL;
}

/* Where to report about an entry as a whole: its body, else its start. */
static const config_ynode *at_entry(const named *e)
{
    return e->body && !config_ynode_is_null(e->body) ? e->body : e->entry;
}

static void dec_cluster(kdec *k, const named *c, config_kubeconfig *out)
{
    enum { C_SERVER, C_CA, C_CA_DATA, C_INSECURE, C_SNI, C_PROXY, C_COUNT };
    static const char *const names[C_COUNT] = {
        "server", "certificate-authority", "certificate-authority-data",
        "insecure-skip-tls-verify", "tls-server-name", "proxy-url"};
    const config_ynode *vals[C_COUNT], *keys[C_COUNT];
    config_dec *d = &k->d;
    config_tls *tls = &out->http.tls;
    if (!config_dec_fields_lax(d, c->body, "cluster", "cluster", names, C_COUNT, vals, keys))
        return;
    if (get_str(k, vals[C_SERVER], "server", &out->server)) {
        if (!out->server)
            config_dec_err(d, at_entry(c), NULL, "cluster \"%.128s\" has no server", c->name);
        else if (!server_ok(out->server))
            config_dec_err(d, vals[C_SERVER], "server",
                    "cluster \"%.128s\": \"%.256s\" is not an http:// or https:// URL", c->name,
                    out->server);
    }
    get_path(k, vals[C_CA], "certificate-authority", "cluster", c->name, &tls->ca_file);
    get_data(k, vals[C_CA_DATA], "certificate-authority-data", "cluster", c->name, &out->ca_data,
             &out->ca_len);
    if (tls->ca_file && out->ca_data)
        config_dec_err(d, config_dec_later(keys[C_CA], keys[C_CA_DATA]), NULL,
                "cluster \"%.128s\" has both certificate-authority and "
                "certificate-authority-data (give one)",
                c->name);
    if (config_dec_bool(d, vals[C_INSECURE], "insecure-skip-tls-verify", &tls->insecure_skip_verify) &&
        tls->insecure_skip_verify && (tls->ca_file || out->ca_data))
        config_dec_err(d, vals[C_INSECURE], "insecure-skip-tls-verify",
                "cluster \"%.128s\" has a certificate authority and skips verification: give "
                "one (client-go refuses both)",
                c->name);
    get_str(k, vals[C_SNI], "tls-server-name", &tls->server_name);
    char *proxy = NULL;
    if (get_str(k, vals[C_PROXY], "proxy-url", &proxy) && proxy)
        config_dec_err(d, vals[C_PROXY], "proxy-url",
                "cluster \"%.128s\" is reached through a proxy, which firn does not support",
                c->name);
}

static void dec_user(kdec *k, const named *u, config_kubeconfig *out)
{
    enum {
        U_TOKEN, U_TOKEN_FILE, U_CERT, U_CERT_DATA, U_KEY, U_KEY_DATA, U_USERNAME, U_PASSWORD,
        U_EXEC, U_AUTH_PROVIDER, U_AS, U_AS_UID, U_AS_GROUPS, U_AS_EXTRA, U_COUNT
    };
    static const char *const names[U_COUNT] = {
        "token", "tokenFile", "client-certificate", "client-certificate-data", "client-key",
        "client-key-data", "username", "password", "exec", "auth-provider", "as", "as-uid",
        "as-groups", "as-user-extra"};
    const config_ynode *vals[U_COUNT], *keys[U_COUNT];
    config_dec *d = &k->d;
    config_http *h = &out->http;
    if (!config_dec_fields_lax(d, u->body, "user", "user", names, U_COUNT, vals, keys))
        return;
    const char *fix = "give the user a token, tokenFile, client certificate or username and "
                      "password";
    if (given(vals[U_EXEC]))
        config_dec_err(d, keys[U_EXEC], "exec",
                "user \"%.128s\" gets its credentials from an exec plugin, which firn cannot "
                "run (%s)",
                u->name, fix);
    if (given(vals[U_AUTH_PROVIDER]))
        config_dec_err(d, keys[U_AUTH_PROVIDER], "auth-provider",
                "user \"%.128s\" gets its credentials from an auth-provider plugin, which firn "
                "cannot run (%s)",
                u->name, fix);
    for (int i = U_AS; i <= U_AS_EXTRA; i++)
        if (given(vals[i]))
            config_dec_err(d, keys[i], names[i],
                    "user \"%.128s\" impersonates another user, which firn does not support",
                    u->name);

    char *token = NULL, *token_file = NULL, *username = NULL, *password = NULL;
    get_str(k, vals[U_TOKEN], "token", &token);
    get_path(k, vals[U_TOKEN_FILE], "tokenFile", "user", u->name, &token_file);
    get_str(k, vals[U_USERNAME], "username", &username);
    get_str(k, vals[U_PASSWORD], "password", &password);
    get_path(k, vals[U_CERT], "client-certificate", "user", u->name, &h->tls.cert_file);
    get_data(k, vals[U_CERT_DATA], "client-certificate-data", "user", u->name, &out->cert_data,
             &out->cert_len);
    get_path(k, vals[U_KEY], "client-key", "user", u->name, &h->tls.key_file);
    get_data(k, vals[U_KEY_DATA], "client-key-data", "user", u->name, &out->key_data,
             &out->key_len);

    /* What was given, read or not, decides the conflicts: a missing file
     * is one error, not two. */
    bool has_token = given(vals[U_TOKEN]), has_token_file = given(vals[U_TOKEN_FILE]);
    bool has_basic = given(vals[U_USERNAME]) || given(vals[U_PASSWORD]);
    bool has_cert = given(vals[U_CERT]) || given(vals[U_CERT_DATA]);
    bool has_key = given(vals[U_KEY]) || given(vals[U_KEY_DATA]);
    if (has_token && has_token_file)
        config_dec_err(d, config_dec_later(keys[U_TOKEN], keys[U_TOKEN_FILE]), NULL,
                "user \"%.128s\" has both token and tokenFile (give one)", u->name);
    if ((has_token || has_token_file) && has_basic)
        config_dec_err(d,
                config_dec_later(config_dec_later(keys[U_TOKEN], keys[U_TOKEN_FILE]),
                          config_dec_later(keys[U_USERNAME], keys[U_PASSWORD])),
                NULL,
                "user \"%.128s\" has more than one authentication method (a token and a "
                "username/password): give one",
                u->name);
    if (given(vals[U_CERT]) && given(vals[U_CERT_DATA]))
        config_dec_err(d, config_dec_later(keys[U_CERT], keys[U_CERT_DATA]), NULL,
                "user \"%.128s\" has both client-certificate and client-certificate-data (give "
                "one)",
                u->name);
    if (given(vals[U_KEY]) && given(vals[U_KEY_DATA]))
        config_dec_err(d, config_dec_later(keys[U_KEY], keys[U_KEY_DATA]), NULL,
                "user \"%.128s\" has both client-key and client-key-data (give one)", u->name);
    if (has_cert && !has_key)
        config_dec_err(d, keys[U_CERT] ? keys[U_CERT] : keys[U_CERT_DATA], NULL,
                "user \"%.128s\" has a client certificate but no client-key or client-key-data",
                u->name);
    if (has_key && !has_cert)
        config_dec_err(d, keys[U_KEY] ? keys[U_KEY] : keys[U_KEY_DATA], NULL,
                "user \"%.128s\" has a client key but no client-certificate or "
                "client-certificate-data",
                u->name);

    if (token || token_file) {
        h->authorization.set = true;
        h->authorization.type = "Bearer";
        h->authorization.credentials = token;
        h->authorization.credentials_file = token ? NULL : token_file;
    }
    if (username || password) {
        h->basic_auth.set = true;
        h->basic_auth.username = username ? username : "";
        h->basic_auth.password = password;
    }
}

/* The context's cluster or user: its name given and defined. */
static const named *resolve(kdec *k, const named *ctx, const config_ynode *v, const char *kind,
                            const named_list *l)
{
    char *name = NULL;
    if (!get_str(k, v, kind, &name))
        return NULL;
    if (!name) {
        config_dec_err(&k->d, v && !config_ynode_is_null(v) ? v : at_entry(ctx), NULL,
                "context \"%.128s\" names no %s", ctx->name, kind);
        return NULL;
    }
    const named *e = find_named(l, name);
    if (!e)
        config_dec_err(&k->d, v, kind, "no %s named \"%.128s\" (context \"%.128s\")", kind, name,
                ctx->name);
    return e;
}

static void dec_kubeconfig(kdec *k, const config_ynode *root, config_kubeconfig *out)
{
    enum { T_CLUSTERS, T_USERS, T_CONTEXTS, T_CURRENT, T_COUNT };
    static const char *const names[T_COUNT] = {"clusters", "users", "contexts",
                                               "current-context"};
    const config_ynode *vals[T_COUNT];
    config_dec *d = &k->d;
    if (root && root->kind != CONFIG_YNODE_MAP && !config_ynode_is_null(root)) {
        config_dec_err(d, root, NULL, "expected a mapping at the top level, got %s", config_dec_kind(root));
        return;
    }
    if (!config_dec_fields_lax(d, root, NULL, "the top level", names, T_COUNT, vals, NULL))
        return;
    named_list clusters, users, contexts;
    index_list(k, vals[T_CLUSTERS], "clusters", "cluster", &clusters);
    index_list(k, vals[T_USERS], "users", "user", &users);
    index_list(k, vals[T_CONTEXTS], "contexts", "context", &contexts);

    char *current = NULL;
    if (!get_str(k, vals[T_CURRENT], "current-context", &current))
        return;
    const named *ctx = NULL;
    if (current) {
        ctx = find_named(&contexts, current);
        if (!ctx)
            config_dec_err(d, vals[T_CURRENT], "current-context", "no context named \"%.128s\"",
                    current);
    } else if (contexts.n_entries == 1 && contexts.n == 1) {
        ctx = &contexts.items[0];
    } else if (contexts.n_entries == 0) {
        config_dec_err(d, NULL, NULL, "no current-context and no contexts: nothing names a cluster");
    } else {
        config_dec_err(d, NULL, NULL,
                "no current-context, and %zu contexts to choose from: set current-context",
                contexts.n_entries);
    }
    if (!ctx)
        return;

    static const char *const ctx_names[] = {"cluster", "user", "namespace"};
    const config_ynode *cv[3];
    if (!config_dec_fields_lax(d, ctx->body, "context", "context", ctx_names, 3, cv, NULL))
        return;
    const named *cluster = resolve(k, ctx, cv[0], "cluster", &clusters);
    const named *user = resolve(k, ctx, cv[1], "user", &users);
    if (get_str(k, cv[2], "namespace", &out->ns) && out->ns && !dns1123_label(out->ns))
        config_dec_err(d, cv[2], "namespace",
                "\"%.128s\" is not a valid namespace name (a DNS-1123 label: at most 63 lower "
                "case letters, digits and '-', starting and ending with a letter or digit)",
                out->ns);
    if (cluster)
        dec_cluster(k, cluster, out);
    if (user)
        dec_user(k, user, out);
}

/* ---- the result ----------------------------------------------------------------- */

static unsigned char *keep_data(firn_arena *a, const unsigned char *p, size_t len)
{
    return p ? (unsigned char *)firn_arena_strndup(a, (const char *)p, len) : NULL;
}

/* Copy what the scratch arena holds into the caller's. */
static void keep(const config_kubeconfig *in, firn_arena *a, config_kubeconfig *out)
{
    config_http_copy(a, &in->http, &out->http);
    out->server = firn_arena_strdup(a, in->server);
    out->ns = firn_arena_strdup(a, in->ns);
    out->ca_data = keep_data(a, in->ca_data, in->ca_len);
    out->cert_data = keep_data(a, in->cert_data, in->cert_len);
    out->key_data = keep_data(a, in->key_data, in->key_len);
    out->ca_len = in->ca_len;
    out->cert_len = in->cert_len;
    out->key_len = in->key_len;
    out->arena = a;
}

int config_kubeconfig_parse(const char *path, const char *data, size_t len,
                            config_kubeconfig *out, firn_err *err)
{
    memset(out, 0, sizeof *out);
    if (!path)
        path = "<kubeconfig>";
    if (len > KUBECONFIG_MAX_BYTES)
        return firn_errf(err, FIRN_ETOOBIG, "%s: larger than the cap of %u bytes", path,
                         KUBECONFIG_MAX_BYTES);
    firn_arena *scratch = firn_arena_new(0);
    kdec k = {.d = {.name = path, .arena = scratch}, .dir = ""};
    const char *slash = strrchr(path, '/');
    if (slash)
        k.dir = firn_arena_strndup(scratch, path, (size_t)(slash - path) + 1);
    config_kubeconfig tmp = {0};
    config_ynode *root;
    if (config_dec_parse(&k.d, data, len, &root))
        dec_kubeconfig(&k, root, &tmp);
    int rc = FIRN_OK;
    if (config_dec_finish(&k.d, NULL, err) < 0) {
        rc = k.io ? FIRN_EIO : FIRN_EINVAL;
        if (err)
            err->code = rc;
    } else {
        keep(&tmp, firn_arena_new(0), out);
    }
    firn_arena_free(scratch);
    return rc;
}

int config_kubeconfig_load(const char *path, config_kubeconfig *out, firn_err *err)
{
    memset(out, 0, sizeof *out);
    unsigned char *buf;
    size_t len;
    int rc = firn_read_file(path, KUBECONFIG_MAX_BYTES, &buf, &len, err);
    if (rc < 0)
        return rc;
    rc = config_kubeconfig_parse(path, (const char *)buf, len, out, err);
    free(buf);
    return rc;
}

void config_kubeconfig_free(config_kubeconfig *k)
{
    if (!k)
        return;
    firn_arena_free(k->arena);
    memset(k, 0, sizeof *k);
}
