/* web_config.c -- decode and validate the web configuration file
 * (config.h, part 2, has the contract and keys), with the decoder config.c
 * uses (part 5): same strictness, same FILE:LINE:COL errors.
 *
 * Secrets never appear in messages: a bad hash or token is named by its
 * user or position, not quoted.
 */
#include "config/config.h"

#include <assert.h>
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BCRYPT_HASH_LEN 60     /* "$2b$10$" + 22 characters of salt + 31 of hash */

/* The response headers exporter-toolkit lets a web config set, with the
 * values allowed where the set is closed (handler.go extraHTTPHeaders). */
static const struct {
    const char *name;
    const char *values[3];   /* NULL-terminated; empty: any value */
} allowed_headers[] = {
    {"Strict-Transport-Security", {NULL}},
    {"X-Content-Type-Options", {"nosniff", NULL}},
    {"X-Frame-Options", {"deny", "sameorigin", NULL}},
    {"X-XSS-Protection", {NULL}},
    {"Content-Security-Policy", {NULL}},
};

static const struct {
    const char *name;
    config_web_client_auth value;
} client_auth_types[] = {
    {"NoClientCert", CONFIG_WEB_NO_CLIENT_CERT},
    {"RequestClientCert", CONFIG_WEB_REQUEST_CLIENT_CERT},
    {"RequireAnyClientCert", CONFIG_WEB_REQUIRE_ANY_CLIENT_CERT},
    {"RequireClientCert", CONFIG_WEB_REQUIRE_ANY_CLIENT_CERT},  /* exporter-toolkit's old name */
    {"VerifyClientCertIfGiven", CONFIG_WEB_VERIFY_CLIENT_CERT_IF_GIVEN},
    {"RequireAndVerifyClientCert", CONFIG_WEB_REQUIRE_AND_VERIFY_CLIENT_CERT},
};

/* The decoder plus where relative paths start. */
typedef struct wdec {
    config_dec d;
    const char *dir;   /* the config file's directory with its '/', or "" */
} wdec;

/* Report a key of Prometheus's format that firn does not implement. */
static void refuse(config_dec *d, const config_ynode *key, const char *hint)
{
    config_dec_err(d, key, key->value, "not supported by firn%s%s", hint ? ": " : "", hint ? hint : "");
}

static bool dec_path(wdec *w, const config_ynode *v, const char *field, char **out)
{
    char *s = NULL;
    if (!config_dec_str(&w->d, v, field, &s) || !s)
        return false;
    if (!*s) {
        config_dec_err(&w->d, v, field, "empty file name");
        return false;
    }
    if (s[0] == '/' || !w->dir[0]) {
        *out = s;
        return true;
    }
    size_t a = strlen(w->dir), b = strlen(s);
    char *p = firn_arena_alloc(w->d.arena, a + b + 1);
    assert(p);   /* two strings of the file: no overflow */
    memcpy(p, w->dir, a);
    memcpy(p + a, s, b + 1);
    *out = p;
    return true;
}

static const char *tls_version_name(int v)
{
    return v == CONFIG_WEB_TLS12 ? "TLS12" : "TLS13";
}

static bool dec_tls_version(config_dec *d, const config_ynode *v, const char *field, int *out)
{
    char *s = NULL;
    if (!config_dec_str(d, v, field, &s) || !s)
        return false;
    if (strcmp(s, "TLS12") == 0) {
        *out = CONFIG_WEB_TLS12;
        return true;
    }
    if (strcmp(s, "TLS13") == 0) {
        *out = CONFIG_WEB_TLS13;
        return true;
    }
    if (strcmp(s, "TLS10") == 0 || strcmp(s, "TLS11") == 0)
        config_dec_err(d, v, field, "%s is not supported by firn (TLS12 or TLS13)", s);
    else
        config_dec_err(d, v, field, "unknown TLS version \"%.64s\" (want TLS12 or TLS13)", s);
    return false;
}

/* ---- tls_server_config ---------------------------------------------------- */

enum {
    T_CERT_FILE, T_KEY_FILE, T_CLIENT_AUTH, T_CLIENT_CA_FILE, T_MIN, T_MAX, T_PREFER,
    T_CERT, T_KEY, T_CLIENT_CA, T_CIPHERS, T_CURVES, T_SANS, T_COUNT
};

static void dec_tls_server(wdec *w, const config_ynode *key, const config_ynode *v, config_web *out)
{
    static const char *const names[T_COUNT] = {
        "cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version",
        "max_version", "prefer_server_cipher_suites", "cert", "key", "client_ca",
        "cipher_suites", "curve_preferences", "client_allowed_sans"};
    const config_ynode *vals[T_COUNT], *keys[T_COUNT];
    config_dec *d = &w->d;
    if (!config_dec_fields(d, v, "tls_server_config", "tls_server_config", names, T_COUNT, vals, keys))
        return;
    bool any = false;
    for (int i = 0; i < T_COUNT; i++)
        any |= keys[i] != NULL;
    if (!any)
        return;   /* null or {}: no TLS, as exporter-toolkit */
    out->tls = true;

    if (keys[T_CERT])
        refuse(d, keys[T_CERT], "give the certificate in cert_file");
    if (keys[T_KEY])
        refuse(d, keys[T_KEY], "give the key in key_file");
    if (keys[T_CLIENT_CA])
        refuse(d, keys[T_CLIENT_CA], "give the CA certificates in client_ca_file");
    if (keys[T_CIPHERS])
        refuse(d, keys[T_CIPHERS], "OpenSSL's default TLS 1.2 cipher suites are used");
    if (keys[T_CURVES])
        refuse(d, keys[T_CURVES], "OpenSSL's default groups are used");
    if (keys[T_SANS])
        refuse(d, keys[T_SANS], NULL);

    if (vals[T_CERT_FILE] && !config_ynode_is_null(vals[T_CERT_FILE]))
        dec_path(w, vals[T_CERT_FILE], "cert_file", &out->cert_file);
    else
        config_dec_err(d, key, "tls_server_config", "cert_file is required (with key_file)");
    if (vals[T_KEY_FILE] && !config_ynode_is_null(vals[T_KEY_FILE]))
        dec_path(w, vals[T_KEY_FILE], "key_file", &out->key_file);
    else
        config_dec_err(d, key, "tls_server_config", "key_file is required (with cert_file)");

    char *auth = NULL;
    bool auth_ok = config_dec_str(d, vals[T_CLIENT_AUTH], "client_auth_type", &auth);
    if (auth) {
        size_t i = 0, n = sizeof client_auth_types / sizeof *client_auth_types;
        while (i < n && strcmp(client_auth_types[i].name, auth) != 0)
            i++;
        if (i < n) {
            out->client_auth = client_auth_types[i].value;
        } else {
            config_dec_err(d, vals[T_CLIENT_AUTH], "client_auth_type",
                    "invalid ClientAuth \"%.64s\" (want NoClientCert, RequestClientCert, "
                    "RequireAnyClientCert, VerifyClientCertIfGiven or "
                    "RequireAndVerifyClientCert)",
                    auth);
            auth_ok = false;
        }
    }
    bool ca = vals[T_CLIENT_CA_FILE] && !config_ynode_is_null(vals[T_CLIENT_CA_FILE]);
    if (ca)
        dec_path(w, vals[T_CLIENT_CA_FILE], "client_ca_file", &out->client_ca_file);
    if (auth_ok && ca && out->client_auth == CONFIG_WEB_NO_CLIENT_CERT)
        config_dec_err(d, keys[T_CLIENT_CA_FILE], "client_ca_file",
                "client CAs are configured without a client_auth_type that asks for client "
                "certificates");
    if (!ca && (out->client_auth == CONFIG_WEB_VERIFY_CLIENT_CERT_IF_GIVEN ||
                out->client_auth == CONFIG_WEB_REQUIRE_AND_VERIFY_CLIENT_CERT))
        config_dec_err(d, vals[T_CLIENT_AUTH], "client_auth_type",
                "%s needs client_ca_file (the CAs that verify client certificates)", auth);

    bool min_ok = dec_tls_version(d, vals[T_MIN], "min_version", &out->min_version);
    bool max_ok = dec_tls_version(d, vals[T_MAX], "max_version", &out->max_version);
    if ((min_ok || max_ok) && out->min_version > out->max_version)
        config_dec_err(d, vals[max_ok ? T_MAX : T_MIN], max_ok ? "max_version" : "min_version",
                "min_version %s is above max_version %s", tls_version_name(out->min_version),
                tls_version_name(out->max_version));
    bool prefer = true;
    config_dec_bool(d, vals[T_PREFER], "prefer_server_cipher_suites", &prefer);
}

/* ---- http_server_config ---------------------------------------------------- */

static bool header_value_ok(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    return true;
}

static void dec_headers(config_dec *d, const config_ynode *v, config_web *out)
{
    if (!v || config_ynode_is_null(v))
        return;
    if (v->kind != CONFIG_YNODE_MAP) {
        config_dec_err(d, v, "headers", "expected a mapping of header names to values, got %s",
                config_dec_kind(v));
        return;
    }
    out->headers = config_dec_calloc(d, v->n, sizeof *out->headers);
    if (v->n && !out->headers)
        return;
    const size_t n_allowed = sizeof allowed_headers / sizeof *allowed_headers;
    const config_ynode *seen[sizeof allowed_headers / sizeof *allowed_headers] = {NULL};
    for (size_t p = 0; p < v->n; p++) {
        const config_ynode *k = v->items[2 * p], *val = v->items[2 * p + 1];
        char *name = NULL, *value = NULL;
        if (!config_dec_str(d, k, "headers", &name) || !name)
            continue;
        size_t i = 0;
        while (i < n_allowed && strcmp(allowed_headers[i].name, name) != 0)
            i++;
        if (i == n_allowed) {
            config_dec_err(d, k, "headers",
                    "HTTP header \"%.128s\" can not be configured (only "
                    "Content-Security-Policy, X-Frame-Options, X-Content-Type-Options, "
                    "X-XSS-Protection and Strict-Transport-Security)",
                    name);
            continue;
        }
        if (seen[i]) {
            config_dec_err(d, k, name, "duplicate header (first set at %d:%d)", seen[i]->line,
                    seen[i]->col);
            continue;
        }
        seen[i] = k;
        if (!config_dec_str(d, val, name, &value) || !value || !*value)
            continue;   /* blank: no header */
        if (!header_value_ok(value)) {
            config_dec_err(d, val, name, "header value holds a control character");
            continue;
        }
        const char *const *allowed = allowed_headers[i].values;
        if (allowed[0]) {
            size_t j = 0;
            while (allowed[j] && strcmp(allowed[j], value) != 0)
                j++;
            if (!allowed[j]) {
                config_dec_err(d, val, name, "invalid value \"%.64s\" (want %s%s%s)", value, allowed[0],
                        allowed[1] ? " or " : "", allowed[1] ? allowed[1] : "");
                continue;
            }
        }
        out->headers[out->n_headers++] = (config_web_header){name, value};
    }
}

static void dec_http_server(config_dec *d, const config_ynode *v, config_web *out)
{
    static const char *const names[] = {"headers", "http2"};
    const config_ynode *vals[2], *keys[2];
    if (!config_dec_fields(d, v, "http_server_config", "http_server_config", names, 2, vals, keys))
        return;
    dec_headers(d, vals[0], out);
    bool http2 = false;
    if (config_dec_bool(d, vals[1], "http2", &http2) && http2)
        config_dec_err(d, vals[1], "http2",
                "HTTP/2 is not supported by firn, which serves HTTP/1.1 (set false or leave "
                "it out)");
}

/* ---- credentials -------------------------------------------------------------- */

/* A bcrypt hash as Go's bcrypt reads one and libcrypt checks it: $2a$,
 * $2b$ or $2y$, a two-digit cost 04..31, then 53 characters of bcrypt's
 * base64. */
static bool bcrypt_hash_valid(const char *h)
{
    if (strlen(h) != BCRYPT_HASH_LEN || h[0] != '$' || h[1] != '2' ||
        (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') || h[3] != '$' || h[4] < '0' ||
        h[4] > '9' || h[5] < '0' || h[5] > '9' || h[6] != '$')
        return false;
    int cost = (h[4] - '0') * 10 + (h[5] - '0');
    if (cost < 4 || cost > 31)
        return false;
    for (const char *p = h + 7; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '/'))
            return false;
    return true;
}

static int cmp_user(const void *a, const void *b)
{
    return strcmp(((const config_web_user *)a)->name, ((const config_web_user *)b)->name);
}

static void dec_users(config_dec *d, const config_ynode *v, config_web *out)
{
    if (!v || config_ynode_is_null(v))
        return;
    if (v->kind != CONFIG_YNODE_MAP) {
        config_dec_err(d, v, "basic_auth_users", "expected a mapping of user names to bcrypt hashes, "
                "got %s", config_dec_kind(v));
        return;
    }
    out->users = config_dec_calloc(d, v->n, sizeof *out->users);
    if (v->n && !out->users)
        return;
    for (size_t p = 0; p < v->n; p++) {
        const config_ynode *k = v->items[2 * p], *val = v->items[2 * p + 1];
        char *name = NULL, *hash = NULL;
        if (!config_dec_str(d, k, "basic_auth_users", &name))
            continue;
        if (!name)
            name = "";
        if (strchr(name, ':')) {
            config_dec_err(d, k, "basic_auth_users", "user name \"%.64s\" holds ':', which basic "
                    "auth cannot send", name);
            continue;
        }
        const config_ynode *first = NULL;
        for (size_t q = 0; q < p && !first; q++) {
            const config_ynode *kq = v->items[2 * q];
            if (kq->kind == CONFIG_YNODE_SCALAR && strcmp(config_ynode_is_null(kq) ? "" : kq->value, name) == 0)
                first = kq;
        }
        if (first) {
            config_dec_err(d, k, "basic_auth_users", "duplicate user \"%.64s\" (first set at %d:%d)",
                    name, first->line, first->col);
            continue;
        }
        if (!config_dec_str(d, val, name, &hash))
            continue;
        if (!hash || !bcrypt_hash_valid(hash)) {
            config_dec_err(d, val ? val : k, name,
                    "not a bcrypt hash ($2a$, $2b$ or $2y$ with a cost of 04 to 31, 60 "
                    "characters: `htpasswd -nbBC 10 USER PASSWORD` makes one)");
            continue;
        }
        if (crypt_checksalt(hash) != CRYPT_SALT_OK) {
            config_dec_err(d, val, name, "this system's libcrypt does not accept this bcrypt hash");
            continue;
        }
        out->users[out->n_users++] = (config_web_user){name, hash};
    }
    firn_sort(out->users, out->n_users, sizeof *out->users, cmp_user);
}

static void dec_tokens(config_dec *d, const config_ynode *v, config_web *out)
{
    const char *field = "firn_bearer_token_sha256";
    char **list;
    size_t n;
    if (!config_dec_str_list(d, v, field, &list, &n) || n == 0)
        return;
    out->tokens = config_dec_calloc(d, n, sizeof *out->tokens);
    for (size_t i = 0; i < n; i++) {
        config_web_token *t = &out->tokens[out->n_tokens];
        size_t len = 0;
        bool ok = strlen(list[i]) == 2 * CONFIG_WEB_SHA256_LEN &&
                  OPENSSL_hexstr2buf_ex(t->sha256, sizeof t->sha256, &len, list[i], '\0') == 1 &&
                  len == CONFIG_WEB_SHA256_LEN;
        ERR_clear_error();
        if (!ok) {
            config_dec_err(d, v->items[i], field, "entry %zu is not a SHA-256 in hex (64 hex digits: "
                    "printf %%s \"$TOKEN\" | sha256sum)", i + 1);
            continue;
        }
        out->n_tokens++;
    }
}

/* ---- the file ------------------------------------------------------------------ */

static void dec_web(wdec *w, const config_ynode *root, config_web *out)
{
    static const char *const names[] = {"tls_server_config", "http_server_config",
                                        "basic_auth_users", "firn_bearer_token_sha256",
                                        "rate_limit"};
    const config_ynode *vals[5], *keys[5];
    if (!config_dec_fields(&w->d, root, NULL, "the web config", names, 5, vals, keys))
        return;
    if (vals[0])
        dec_tls_server(w, keys[0], vals[0], out);
    dec_http_server(&w->d, vals[1], out);
    dec_users(&w->d, vals[2], out);
    dec_tokens(&w->d, vals[3], out);
    if (keys[4])
        refuse(&w->d, keys[4], NULL);
}

void config_web_free(config_web *w)
{
    if (!w)
        return;
    firn_arena_free(w->arena);
    free(w);
}

bool config_web_auth_required(const config_web *w)
{
    return w && (w->n_users > 0 || w->n_tokens > 0);
}

bool config_web_check_basic(const config_web *w, const char *user, size_t user_len,
                            const char *password, size_t password_len)
{
    if (!w || w->n_users == 0)
        return false;
    const config_web_user *found = NULL;
    for (size_t i = 0; i < w->n_users && !found; i++)
        if (strlen(w->users[i].name) == user_len && memcmp(w->users[i].name, user, user_len) == 0)
            found = &w->users[i];
    /* crypt_r reads a C string: a NUL inside would cut the password short. */
    bool usable = memchr(password, '\0', password_len) == NULL;
    /* password_len is within the request head's cap (the HTTP server's). */
    char *pw = firn_xstrndup(password, password_len);
    struct crypt_data *cd = firn_xcalloc(1, sizeof *cd);   /* 32 KiB: not on a worker's stack */
    const char *hash = found ? found->hash : w->users[0].hash;
    const char *out = crypt_r(pw, hash, cd);
    bool ok = out && strlen(out) == strlen(hash) && CRYPTO_memcmp(out, hash, strlen(hash)) == 0;
    OPENSSL_cleanse(pw, password_len);
    free(pw);
    free(cd);
    return ok && found && usable;
}

bool config_web_check_bearer(const config_web *w, const char *token, size_t len)
{
    if (!w || w->n_tokens == 0 || len == 0)
        return false;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!EVP_Digest(token, len, md, &md_len, EVP_sha256(), NULL) ||
        md_len != CONFIG_WEB_SHA256_LEN)
        return false;
    int match = 0;
    for (size_t i = 0; i < w->n_tokens; i++)
        match |= CRYPTO_memcmp(md, w->tokens[i].sha256, CONFIG_WEB_SHA256_LEN) == 0;
    return match != 0;
}

config_web *config_web_load_string(const char *text, size_t len, const char *name,
                                   config_errors *errs, firn_err *err)
{
    firn_arena *arena;
    config_web *out = config_dec_begin(errs, &name, "<web config>", sizeof *out, &arena);
    out->arena = arena;
    out->client_auth = CONFIG_WEB_NO_CLIENT_CERT;
    out->min_version = CONFIG_WEB_TLS12;
    out->max_version = CONFIG_WEB_TLS13;
    wdec w = {.d = {.name = name, .arena = arena}, .dir = ""};
    out->source = config_dec_strdup(&w.d, name);
    const char *slash = strrchr(name, '/');
    if (slash) {
        w.dir = firn_arena_strndup(arena, name, (size_t)(slash - name) + 1);
    }
    config_ynode *root;
    if (config_dec_parse(&w.d, text, len, &root))
        dec_web(&w, root, out);
    if (config_dec_finish(&w.d, errs, err) == 0)
        return out;
    config_web_free(out);
    return NULL;
}

config_web *config_web_load_file(const char *path, config_errors *errs, firn_err *err)
{
    unsigned char *buf;
    size_t len;
    if (config_dec_read_file(path, &buf, &len, errs, err) < 0)
        return NULL;
    config_web *w = config_web_load_string((const char *)buf, len, path, errs, err);
    free(buf);
    return w;
}
