/* test_web_config.c -- the web configuration (config/web_config.h) and what
 * the server does with it (http/server.c):
 *  - loading: a full file, the defaults, relative paths, and every error
 *    with its position (a table), secrets never quoted in messages;
 *  - credentials: bcrypt and bearer checks;
 *  - a plain-HTTP server with users and tokens: 401 and its challenges,
 *    the bcrypt cache (counted in /metrics), inline routes kept on the loop
 *    thread after an off-loop check, auth before routing;
 *  - HTTPS servers on certificates made here (a CA, a server and a client
 *    certificate, and a self-signed stranger): each client_auth_type,
 *    min_version, plain HTTP on the TLS port, bad certificate files.
 * libcurl is the client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/web_config.h"
#include "model/model.h"
#include "http_reply.h"
#include "http/http.h"

#include "h2o_lsan.h"

/* htpasswd -nbBC 4 alice secret, and bob hunter2 (cost 4: fast tests). */
#define ALICE_HASH "$2y$04$z8V8q8MUER3SwnKdSPVWHOnsda9/L4hObsH3CihYLBhJlWo6SCLjq"
#define BOB_HASH "$2y$04$iCTYvIg6MLpnOb3Xk2K8j.oEPw9aDGFK41H7P5ma0cCbcsTOLc26q"
/* carl's password holds a ':' (only the first one ends the user name). */
#define CARL_HASH "$2y$04$h93slMmuFsPew/UbHRSRLuGiKBi6dFvu/yZQHpu43BgB8vAbaUlV2"
/* printf %s tok-123 | sha256sum */
#define TOKEN_SHA256 "c8963414bf6c4c869eeac5f8a057c3dc574d422f1b108397b66f67bab3d2f981"

static config_web *load(const char *yaml, const char *name)
{
    firn_err err = {0};
    config_web *w = config_web_load_string(yaml, strlen(yaml), name, NULL, &err);
    if (!w)
        fail_msg("unexpected error:\n%s", err.msg);
    return w;
}

/* ---- loading ------------------------------------------------------------------ */

static void test_full_file(void **state)
{
    (void)state;
    config_web *w = load("tls_server_config:\n"
                         "  cert_file: tls/server.pem\n"
                         "  key_file: /abs/server.key\n"
                         "  client_auth_type: RequireAndVerifyClientCert\n"
                         "  client_ca_file: ca.pem\n"
                         "  min_version: TLS13\n"
                         "  prefer_server_cipher_suites: true\n"
                         "http_server_config:\n"
                         "  http2: false\n"
                         "  headers:\n"
                         "    X-Frame-Options: sameorigin\n"
                         "    Strict-Transport-Security: max-age=31536000\n"
                         "    Content-Security-Policy: ''\n"
                         "basic_auth_users:\n"
                         "  bob: " BOB_HASH "\n"
                         "  alice: '" ALICE_HASH "'\n"
                         "firn_bearer_token_sha256:\n"
                         "  - " TOKEN_SHA256 "\n",
                         "/etc/firn/web.yml");
    assert_string_equal(w->source, "/etc/firn/web.yml");
    assert_true(w->tls);
    assert_string_equal(w->cert_file, "/etc/firn/tls/server.pem");
    assert_string_equal(w->key_file, "/abs/server.key");
    assert_string_equal(w->client_ca_file, "/etc/firn/ca.pem");
    assert_int_equal(w->client_auth, CONFIG_WEB_REQUIRE_AND_VERIFY_CLIENT_CERT);
    assert_int_equal(w->min_version, CONFIG_WEB_TLS13);
    assert_int_equal(w->max_version, CONFIG_WEB_TLS13);
    assert_int_equal(w->n_headers, 2);   /* the blank one adds nothing */
    assert_string_equal(w->headers[0].name, "X-Frame-Options");
    assert_string_equal(w->headers[0].value, "sameorigin");
    assert_string_equal(w->headers[1].name, "Strict-Transport-Security");
    assert_int_equal(w->n_users, 2);
    assert_string_equal(w->users[0].name, "alice");   /* sorted */
    assert_string_equal(w->users[0].hash, ALICE_HASH);
    assert_string_equal(w->users[1].name, "bob");
    assert_int_equal(w->n_tokens, 1);
    assert_int_equal(w->tokens[0].sha256[0], 0xc8);
    assert_int_equal(w->tokens[0].sha256[31], 0x81);
    assert_true(config_web_auth_required(w));
    config_web_free(w);
}

static void test_defaults(void **state)
{
    (void)state;
    static const char *const docs[] = {"", "# nothing\n", "tls_server_config:\n",
                                       "tls_server_config: {}\nbasic_auth_users: {}\n",
                                       "http_server_config: {headers: {}}\n"};
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        config_web *w = load(docs[i], "web.yml");
        assert_false(w->tls);
        assert_null(w->cert_file);
        assert_int_equal(w->client_auth, CONFIG_WEB_NO_CLIENT_CERT);
        assert_int_equal(w->min_version, CONFIG_WEB_TLS12);
        assert_int_equal(w->max_version, CONFIG_WEB_TLS13);
        assert_int_equal(w->n_users + w->n_tokens + w->n_headers, 0);
        assert_false(config_web_auth_required(w));
        config_web_free(w);
    }
    assert_false(config_web_auth_required(NULL));

    /* Without a directory in the name, paths stay as given. */
    config_web *w = load("tls_server_config: {cert_file: c.pem, key_file: k.pem}\n", "web.yml");
    assert_string_equal(w->cert_file, "c.pem");
    assert_int_equal(w->client_auth, CONFIG_WEB_NO_CLIENT_CERT);
    config_web_free(w);
    w = load("tls_server_config: {cert_file: c, key_file: k, client_auth_type: RequireClientCert}\n",
             "web.yml");
    assert_int_equal(w->client_auth, CONFIG_WEB_REQUIRE_ANY_CLIENT_CERT);
    config_web_free(w);
}

typedef struct error_case {
    const char *yaml;
    const char *want;   /* the first error line, whole */
} error_case;

static const error_case error_cases[] = {
    {"tls_server_confg: {}\n", "w.yml:1:1: tls_server_confg: unknown field in the web config"},
    {"tls_server_config:\n  cert_file: c\n  key_file: k\n  bogus: 1\n",
     "w.yml:4:3: bogus: unknown field in tls_server_config"},
    {"tls_server_config:\n  cert_file: c\n  key_file: k\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
     "w.yml:4:3: cipher_suites: not supported by firn: OpenSSL's default TLS 1.2 cipher suites "
     "are used"},
    {"tls_server_config:\n  cert: \"-----BEGIN\"\n  key_file: k\n",
     "w.yml:1:1: tls_server_config: cert_file is required (with key_file)"},
    {"tls_server_config:\n  cert_file: c\n  key_file: k\n  client_allowed_sans: [a]\n",
     "w.yml:4:3: client_allowed_sans: not supported by firn"},
    {"tls_server_config:\n  cert_file: c.pem\n",
     "w.yml:1:1: tls_server_config: key_file is required (with cert_file)"},
    {"tls_server_config:\n  key_file: k.pem\n",
     "w.yml:1:1: tls_server_config: cert_file is required (with key_file)"},
    {"tls_server_config:\n  cert_file: ''\n  key_file: k\n", "w.yml:2:14: cert_file: empty file name"},
    {"tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: ca.pem\n",
     "w.yml:4:3: client_ca_file: client CAs are configured without a client_auth_type that "
     "asks for client certificates"},
    {"tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: RequireAndVerifyClientCert\n",
     "w.yml:4:21: client_auth_type: RequireAndVerifyClientCert needs client_ca_file (the CAs "
     "that verify client certificates)"},
    {"tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: Always\n",
     "w.yml:4:21: client_auth_type: invalid ClientAuth \"Always\" (want NoClientCert, "
     "RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or "
     "RequireAndVerifyClientCert)"},
    {"tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS11\n",
     "w.yml:4:16: min_version: TLS11 is not supported by firn (TLS12 or TLS13)"},
    {"tls_server_config:\n  cert_file: c\n  key_file: k\n  max_version: TLS14\n",
     "w.yml:4:16: max_version: unknown TLS version \"TLS14\" (want TLS12 or TLS13)"},
    {"tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS13\n  max_version: TLS12\n",
     "w.yml:5:16: max_version: min_version TLS13 is above max_version TLS12"},
    {"tls_server_config:\n  cert_file: c\n  key_file: k\n  prefer_server_cipher_suites: maybe\n",
     "w.yml:4:32: prefer_server_cipher_suites: expected a boolean, got \"maybe\""},
    {"tls_server_config: [cert_file]\n",
     "w.yml:1:20: tls_server_config: expected a mapping, got a list"},
    {"http_server_config:\n  http2: true\n",
     "w.yml:2:10: http2: HTTP/2 is not supported by firn, which serves HTTP/1.1 (set false or "
     "leave it out)"},
    {"http_server_config:\n  headers:\n    X-Powered-By: firn\n",
     "w.yml:3:5: headers: HTTP header \"X-Powered-By\" can not be configured (only "
     "Content-Security-Policy, X-Frame-Options, X-Content-Type-Options, X-XSS-Protection and "
     "Strict-Transport-Security)"},
    {"http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
     "w.yml:3:22: X-Frame-Options: invalid value \"allow\" (want deny or sameorigin)"},
    {"http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
     "w.yml:3:29: X-Content-Type-Options: invalid value \"sniff\" (want nosniff)"},
    {"http_server_config:\n  headers:\n    Content-Security-Policy: \"a\\r\\nSet-Cookie: x\"\n",
     "w.yml:3:30: Content-Security-Policy: header value holds a control character"},
    {"http_server_config:\n  headers:\n    X-Frame-Options: deny\n    X-Frame-Options: deny\n",
     "w.yml:4:5: X-Frame-Options: duplicate header (first set at 3:5)"},
    {"http_server_config:\n  headers: [X-Frame-Options]\n",
     "w.yml:2:12: headers: expected a mapping of header names to values, got a list"},
    {"basic_auth_users:\n  alice: hunter2\n",
     "w.yml:2:10: alice: not a bcrypt hash ($2a$, $2b$ or $2y$ with a cost of 04 to 31, 60 "
     "characters: `htpasswd -nbBC 10 USER PASSWORD` makes one)"},
    {"basic_auth_users:\n  alice: $1$abc$iUbCWW89D2V9MXDEFGV8x0\n",
     "w.yml:2:10: alice: not a bcrypt hash ($2a$, $2b$ or $2y$ with a cost of 04 to 31, 60 "
     "characters: `htpasswd -nbBC 10 USER PASSWORD` makes one)"},
    {"basic_auth_users:\n  alice: $2y$03$z8V8q8MUER3SwnKdSPVWHOnsda9/L4hObsH3CihYLBhJlWo6SCLjq\n",
     "w.yml:2:10: alice: not a bcrypt hash ($2a$, $2b$ or $2y$ with a cost of 04 to 31, 60 "
     "characters: `htpasswd -nbBC 10 USER PASSWORD` makes one)"},
    {"basic_auth_users:\n  alice: $2x$04$z8V8q8MUER3SwnKdSPVWHOnsda9/L4hObsH3CihYLBhJlWo6SCLjq\n",
     "w.yml:2:10: alice: not a bcrypt hash ($2a$, $2b$ or $2y$ with a cost of 04 to 31, 60 "
     "characters: `htpasswd -nbBC 10 USER PASSWORD` makes one)"},
    {"basic_auth_users:\n  alice: $2y$04$z8V8q8MUER3SwnKdSPVWHOnsda9/L4hObsH3CihYLBhJlWo6SCLj\n",
     "w.yml:2:10: alice: not a bcrypt hash ($2a$, $2b$ or $2y$ with a cost of 04 to 31, 60 "
     "characters: `htpasswd -nbBC 10 USER PASSWORD` makes one)"},
    {"basic_auth_users:\n  alice:\n",
     "w.yml:2:9: alice: not a bcrypt hash ($2a$, $2b$ or $2y$ with a cost of 04 to 31, 60 "
     "characters: `htpasswd -nbBC 10 USER PASSWORD` makes one)"},
    {"basic_auth_users:\n  'a:b': " ALICE_HASH "\n",
     "w.yml:2:3: basic_auth_users: user name \"a:b\" holds ':', which basic auth cannot send"},
    {"basic_auth_users:\n  alice: " ALICE_HASH "\n  alice: " BOB_HASH "\n",
     "w.yml:3:3: basic_auth_users: duplicate user \"alice\" (first set at 2:3)"},
    {"basic_auth_users: [alice]\n",
     "w.yml:1:19: basic_auth_users: expected a mapping of user names to bcrypt hashes, got a "
     "list"},
    {"firn_bearer_token_sha256: [abc]\n",
     "w.yml:1:28: firn_bearer_token_sha256: entry 1 is not a SHA-256 in hex (64 hex digits: "
     "printf %s \"$TOKEN\" | sha256sum)"},
    {"firn_bearer_token_sha256:\n  - " TOKEN_SHA256 "\n"
     "  - g8963414bf6c4c869eeac5f8a057c3dc574d422f1b108397b66f67bab3d2f981\n",
     "w.yml:3:5: firn_bearer_token_sha256: entry 2 is not a SHA-256 in hex (64 hex digits: "
     "printf %s \"$TOKEN\" | sha256sum)"},
    {"firn_bearer_token_sha256: " TOKEN_SHA256 "\n",
     "w.yml:1:27: firn_bearer_token_sha256: expected a list of strings, got a scalar"},
    {"rate_limit:\n  burst: 10\n  interval: 1s\n", "w.yml:1:1: rate_limit: not supported by firn"},
    {"basic_auth_users: {\n", "w.yml:2:1: yaml: did not find expected node content while parsing a flow node "
     "at line 2 column 1"},
    {"- a\n", "w.yml:1:1: expected a mapping, got a list"},
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof error_cases / sizeof *error_cases; i++) {
        const error_case *c = &error_cases[i];
        config_errors errs = {0};
        firn_err err = {0};
        config_web *w = config_web_load_string(c->yaml, strlen(c->yaml), "w.yml", &errs, &err);
        if (w)
            fail_msg("case %zu loaded:\n%s", i, c->yaml);
        assert_true(errs.n >= 1);
        if (strcmp(errs.lines[0], c->want) != 0)
            fail_msg("case %zu:\n got  %s\n want %s", i, errs.lines[0], c->want);
        /* Hashes and passwords are secrets: never quoted back. */
        for (size_t j = 0; j < errs.n; j++) {
            assert_null(strstr(errs.lines[j], "z8V8q8MUER"));
            assert_null(strstr(errs.lines[j], "iCTYvIg6"));
            assert_null(strstr(errs.lines[j], "hunter2"));
            assert_null(strstr(errs.lines[j], "iUbCWW89"));
        }
        assert_non_null(strstr(err.msg, c->want));
        config_errors_free(&errs);
    }
}

/* Every error of a file, in document order, in one load. */
static void test_errors_collected(void **state)
{
    (void)state;
    const char *yaml = "basic_auth_users:\n"
                       "  alice: nope\n"
                       "tls_server_config:\n"
                       "  cert_file: c\n"
                       "  curve_preferences: [X25519]\n"
                       "rate_limit: {}\n";
    config_errors errs = {0};
    firn_err err = {0};
    assert_null(config_web_load_string(yaml, strlen(yaml), "w.yml", &errs, &err));
    assert_int_equal(errs.n, 4);
    assert_non_null(strstr(errs.lines[0], "w.yml:2:10: alice: not a bcrypt hash"));
    assert_string_equal(errs.lines[1],
                        "w.yml:3:1: tls_server_config: key_file is required (with cert_file)");
    assert_string_equal(errs.lines[2], "w.yml:5:3: curve_preferences: not supported by firn: "
                                       "OpenSSL's default groups are used");
    assert_string_equal(errs.lines[3], "w.yml:6:1: rate_limit: not supported by firn");
    config_errors_free(&errs);
}

static void test_load_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/firn-webcfg-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof path, "%s/web.yml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("tls_server_config:\n  cert_file: cert.pem\n  key_file: ../key.pem\n", f);
    fclose(f);
    firn_err err = {0};
    config_errors errs = {0};
    config_web *w = config_web_load_file(path, &errs, &err);
    assert_non_null(w);
    assert_int_equal(errs.n, 0);
    char want[600];
    snprintf(want, sizeof want, "%s/cert.pem", dir);
    assert_string_equal(w->cert_file, want);
    snprintf(want, sizeof want, "%s/../key.pem", dir);
    assert_string_equal(w->key_file, want);
    config_web_free(w);
    unlink(path);
    rmdir(dir);

    assert_null(config_web_load_file(path, &errs, &err));
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.lines[0], "web.yml"));
    assert_non_null(strstr(err.msg, "No such file"));
    config_errors_free(&errs);
}

/* ---- credentials ------------------------------------------------------------------ */

static void test_check_credentials(void **state)
{
    (void)state;
    config_web *w = load("basic_auth_users:\n  alice: " ALICE_HASH "\n  bob: " BOB_HASH "\n"
                         "firn_bearer_token_sha256: [" TOKEN_SHA256 "]\n",
                         "w.yml");
    assert_true(config_web_check_basic(w, "alice", 5, "secret", 6));
    assert_true(config_web_check_basic(w, "bob", 3, "hunter2", 7));
    assert_false(config_web_check_basic(w, "alice", 5, "hunter2", 7));
    assert_false(config_web_check_basic(w, "alice", 5, "secre", 5));
    assert_false(config_web_check_basic(w, "alice", 5, "", 0));
    assert_false(config_web_check_basic(w, "alic", 4, "secret", 6));
    assert_false(config_web_check_basic(w, "carol", 5, "secret", 6));   /* another's password */
    assert_false(config_web_check_basic(w, "alice", 5, "secret\0x", 8)); /* NUL: never */
    assert_true(config_web_check_bearer(w, "tok-123", 7));
    assert_false(config_web_check_bearer(w, "tok-12", 6));
    assert_false(config_web_check_bearer(w, "", 0));
    config_web_free(w);

    w = load("basic_auth_users: {}\n", "w.yml");
    assert_false(config_web_check_basic(w, "alice", 5, "secret", 6));
    assert_false(config_web_check_bearer(w, "tok-123", 7));
    config_web_free(w);
}

/* ---- a server with credentials ------------------------------------------------------ */

static _Atomic(pthread_t) inline_thread;
static _Atomic(pthread_t) worker_thread;

static void h_inline(void *ctx, const http_request *r, http_response *resp)
{
    (void)ctx;
    (void)r;
    atomic_store(&inline_thread, pthread_self());
    http_respond_text(resp, 200, "inline");
}

static void h_worker(void *ctx, const http_request *r, http_response *resp)
{
    (void)ctx;
    size_t len;
    const char *body = http_request_body(r, &len);
    atomic_store(&worker_thread, pthread_self());
    if (len)
        http_respond_text(resp, 200, "worker %s", body);
    else
        http_respond_text(resp, 200, "worker");
}

static void h_metrics(void *ctx, const http_request *r, http_response *resp)
{
    (void)r;
    firn_buf b = {0};
    http_metrics_write(ctx, &b);
    resp->body = b.data;
    resp->body_len = b.len;
}

static http_server *start(const config_web *w, firn_err *err)
{
    http_options o;
    http_options_default(&o);
    o.listen_address = "127.0.0.1:0";
    o.workers = 2;
    o.web_config = w;
    http_server *s = http_new(&o, err);
    if (!s)
        return NULL;
    assert_int_equal(http_route(s, "GET", "/inline", 0, h_inline, NULL, err), 0);
    assert_int_equal(http_route(s, "GET,POST", "/work", HTTP_ROUTE_WORKER, h_worker, NULL, err),
                     0);
    assert_int_equal(http_route(s, "GET", "/metrics", 0, h_metrics, s, err), 0);
    assert_int_equal(http_start(s, err), 0);
    return s;
}

/* What a client sends: credentials and TLS files, all optional. */
typedef struct client {
    const char *userpwd;       /* "user:password" for basic auth */
    const char *post;          /* a body to POST */
    const char *authorization; /* a whole Authorization header */
    const char *ca;            /* https when set */
    const char *cert, *key;    /* a client certificate */
    long tls_max;              /* CURL_SSLVERSION_MAX_... or 0 */
} client;


static reply request(const http_server *s, const char *scheme, const char *path, const client *c)
{
    reply r = {0};
    char url[256], auth[512];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", scheme, http_port(s), path);
    CURL *e = curl_easy_init();
    assert_non_null(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &r.headers);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(e, CURLOPT_HTTP09_ALLOWED, 0L);
    struct curl_slist *headers = NULL;
    if (c && c->userpwd) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERPWD, c->userpwd);
    }
    if (c && c->authorization) {
        snprintf(auth, sizeof auth, "Authorization: %s", c->authorization);
        headers = curl_slist_append(headers, auth);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    }
    if (c && c->post)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->post);
    if (c && c->ca)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca);
    if (c && c->cert) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert);
        curl_easy_setopt(e, CURLOPT_SSLKEY, c->key);
    }
    if (c && c->tls_max)
        curl_easy_setopt(e, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2 | c->tls_max);
    r.rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(e);
    curl_slist_free_all(headers);
    return r;
}

static const char *text(const firn_buf *b)
{
    return b->data ? b->data : "";
}

/* One request that must get status (and body, when given). */
static void expect(const http_server *s, const char *scheme, const char *path, const client *c,
                   long status, const char *body)
{
    reply r = request(s, scheme, path, c);
    if (r.rc != CURLE_OK)
        fail_msg("%s %s: %s", scheme, path, curl_easy_strerror(r.rc));
    if (r.status != status || (body && strcmp(text(&r.body), body) != 0))
        fail_msg("%s %s: got %ld \"%s\", want %ld \"%s\"", scheme, path, r.status,
                 text(&r.body), status, body ? body : "*");
    firn_buf_free(&r.body);
    firn_buf_free(&r.headers);
}

/* A request the TLS layer must refuse (no HTTP status at all). */
static void expect_refused(const http_server *s, const char *path, const client *c)
{
    reply r = request(s, "https", path, c);
    if (r.rc == CURLE_OK)
        fail_msg("https %s: got %ld, want a refused handshake", path, r.status);
    firn_buf_free(&r.body);
    firn_buf_free(&r.headers);
}

/* The value of a sample of /metrics, or -1. */
static double metric(const http_server *s, const client *c, const char *scheme,
                     const char *series)
{
    reply r = request(s, scheme, "/metrics", c);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    double v = -1;
    const char *p = strstr(text(&r.body), series);
    if (p && p[strlen(series)] == ' ')
        v = strtod(p + strlen(series) + 1, NULL);
    firn_buf_free(&r.body);
    firn_buf_free(&r.headers);
    return v;
}

static void test_server_credentials(void **state)
{
    (void)state;
    config_web *w = load("http_server_config:\n  headers: {X-Frame-Options: deny}\n"
                         "basic_auth_users:\n  alice: " ALICE_HASH "\n  bob: " BOB_HASH "\n"
                         "  carl: " CARL_HASH "\n"
                         "firn_bearer_token_sha256: [" TOKEN_SHA256 "]\n",
                         "w.yml");
    firn_err err = {0};
    http_server *s = start(w, &err);
    assert_non_null(s);
    const client alice = {.userpwd = "alice:secret"}, bob = {.userpwd = "bob:hunter2"};
    const char *ok_series = "firn_http_auth_bcrypt_checks_total{result=\"ok\"}";
    const char *denied_series = "firn_http_auth_bcrypt_checks_total{result=\"denied\"}";

    /* No credentials: 401, both challenges, the configured header. */
    reply r = request(s, "http", "/inline", NULL);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 401);
    assert_string_equal(text(&r.body), "Unauthorized\n");
    assert_non_null(strcasestr(text(&r.headers), "www-authenticate: Basic\r\n"));
    assert_non_null(strcasestr(text(&r.headers), "www-authenticate: Bearer\r\n"));
    assert_non_null(strcasestr(text(&r.headers), "x-frame-options: deny\r\n"));
    firn_buf_free(&r.body);
    firn_buf_free(&r.headers);

    /* A wrong password is checked once, then its refusal is remembered. */
    const client wrong = {.userpwd = "alice:hunter2"};
    expect(s, "http", "/inline", &wrong, 401, "Unauthorized\n");
    expect(s, "http", "/work", &wrong, 401, "Unauthorized\n");
    assert_true(metric(s, &alice, "http", denied_series) == 1);
    assert_true(metric(s, &alice, "http", ok_series) == 1);   /* that /metrics request */

    /* The right one: checked once, on a worker; the inline handler still
     * runs on the loop thread, whether the check was cached or not. */
    expect(s, "http", "/inline", &bob, 200, "inline\n");
    pthread_t first = atomic_load(&inline_thread);
    expect(s, "http", "/inline", &bob, 200, "inline\n");
    assert_true(pthread_equal(first, atomic_load(&inline_thread)));
    expect(s, "http", "/work", &bob, 200, "worker\n");
    assert_false(pthread_equal(first, atomic_load(&worker_thread)));
    expect(s, "http", "/work", &alice, 200, "worker\n");
    assert_true(metric(s, &alice, "http", ok_series) == 2);   /* alice once, bob once */
    assert_true(metric(s, &alice, "http", denied_series) == 1);

    /* Unknown users, a user's password for another, malformed headers. */
    const client carol = {.userpwd = "carol:secret"}, swapped = {.userpwd = "bob:secret"};
    expect(s, "http", "/inline", &carol, 401, NULL);
    expect(s, "http", "/inline", &swapped, 401, NULL);
    static const char *const malformed[] = {
        "Basic", "Basic ", "Basic YWxpY2U6c2VjcmV", "Basic YWxpY2Vfc2VjcmV0" /* no ':' */, "Basic !!!!", "Basic YWxpY2U6c2VjcmV0=", "Digest x",
        "Bearer", "Bearer tok-1234", "Token tok-123"};
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
        const client m = {.authorization = malformed[i]};
        expect(s, "http", "/inline", &m, 401, NULL);
    }
    /* base64("alice:secret"), the scheme in lower case. */
    const client spelled = {.authorization = "basic YWxpY2U6c2VjcmV0"};
    expect(s, "http", "/inline", &spelled, 200, "inline\n");
    const client token = {.authorization = "Bearer tok-123"};
    expect(s, "http", "/work", &token, 200, "worker\n");
    const client token_lower = {.authorization = "bearer tok-123"};
    expect(s, "http", "/inline", &token_lower, 200, "inline\n");

    /* A body waits with its request for the check, then reaches the handler. */
    expect(s, "http", "/work", &(client){.userpwd = "carl:p@ss:w0rd", .post = "a=1"}, 200,
           "worker a=1\n");
    assert_true(metric(s, &alice, "http", ok_series) == 3);

    /* Credentials come before routing, as Prometheus wraps its whole mux. */
    expect(s, "http", "/nowhere", NULL, 401, NULL);
    expect(s, "http", "/nowhere", &alice, 404, NULL);

    /* A body over 64 KiB is refused from the head without credentials that
     * may be valid (none, or a password the cache knows is wrong), and
     * taken with the right ones. */
    char *big = malloc(70000 + 1);
    assert_non_null(big);
    memset(big, 'a', 70000);
    big[70000] = '\0';
    double refused = metric(s, &alice, "http",
                            "firn_http_request_bodies_refused_total{reason=\"unauthenticated\"}");
    expect(s, "http", "/work", &(client){.post = big}, 401, "Unauthorized\n");
    expect(s, "http", "/work", &(client){.post = big, .userpwd = "alice:hunter2"}, 401,
           "Unauthorized\n");
    assert_true(metric(s, &alice, "http",
                       "firn_http_request_bodies_refused_total{reason=\"unauthenticated\"}") ==
                refused + 2);
    expect(s, "http", "/work", &(client){.post = big, .userpwd = "alice:secret"}, 200, NULL);
    free(big);
    http_stop(s);
    config_web_free(w);
}

/* A worker route that holds its worker until the gate opens. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static bool gate_entered;   /* h_block is running (under gate_mu) */

static void h_block(void *ctx, const http_request *r, http_response *resp)
{
    (void)ctx;
    (void)r;
    pthread_mutex_lock(&gate_mu);
    gate_entered = true;
    pthread_cond_broadcast(&gate_cv);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    http_respond_text(resp, 200, "released");
}

typedef struct async_request {
    pthread_t thread;
    const http_server *s;
    const char *path;
    client c;
    reply r;
} async_request;

static void *async_main(void *arg)
{
    async_request *a = arg;
    a->r = request(a->s, "http", a->path, &a->c);
    return NULL;
}

static void *stop_main(void *arg)
{
    http_stop(arg);
    return NULL;
}

static double in_flight(http_server *s)
{
    firn_buf b = {0};
    http_metrics_write(s, &b);
    const char *p = strstr(b.data, "\nfirn_http_requests_in_flight ");
    double v = p ? strtod(p + strlen("\nfirn_http_requests_in_flight "), NULL) : -1;
    firn_buf_free(&b);
    return v;
}

/* A request waiting for a worker to check its password when the server
 * stops gets 503, like any queued job, and nothing leaks. */
static void test_server_stop_while_checking(void **state)
{
    (void)state;
    config_web *w = load("basic_auth_users:\n  alice: " ALICE_HASH "\n  bob: " BOB_HASH "\n",
                         "w.yml");
    http_options o;
    http_options_default(&o);
    o.listen_address = "127.0.0.1:0";
    o.workers = 1;
    o.web_config = w;
    firn_err err = {0};
    http_server *s = http_new(&o, &err);
    assert_non_null(s);
    assert_int_equal(http_route(s, "GET", "/inline", 0, h_inline, NULL, &err), 0);
    assert_int_equal(http_route(s, "GET", "/block", HTTP_ROUTE_WORKER, h_block, NULL, &err), 0);
    assert_int_equal(http_start(s, &err), 0);
    expect(s, "http", "/inline", &(client){.userpwd = "alice:secret"}, 200, "inline\n");

    gate_open = false;
    gate_entered = false;
    async_request blocker = {.s = s, .path = "/block", .c = {.userpwd = "alice:secret"}};
    async_request checking = {.s = s, .path = "/inline", .c = {.userpwd = "bob:hunter2"}};
    assert_int_equal(pthread_create(&blocker.thread, NULL, async_main, &blocker), 0);
    /* the blocker runs on its worker (a job still queued would be answered
     * 503 by the stop) */
    pthread_mutex_lock(&gate_mu);
    while (!gate_entered)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    assert_int_equal(pthread_create(&checking.thread, NULL, async_main, &checking), 0);
    for (int i = 0; i < 60000 && in_flight(s) < 2; i++)
        usleep(1000);
    assert_true(in_flight(s) == 2);

    pthread_t stopper;
    assert_int_equal(pthread_create(&stopper, NULL, stop_main, s), 0);
    pthread_join(checking.thread, NULL);
    assert_int_equal(checking.r.rc, CURLE_OK);
    assert_int_equal(checking.r.status, 503);
    assert_string_equal(text(&checking.r.body), "server shutting down\n");
    pthread_mutex_lock(&gate_mu);
    gate_open = true;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
    pthread_join(blocker.thread, NULL);
    pthread_join(stopper, NULL);
    assert_int_equal(blocker.r.status, 200);
    firn_buf_free(&blocker.r.body);
    firn_buf_free(&blocker.r.headers);
    firn_buf_free(&checking.r.body);
    firn_buf_free(&checking.r.headers);
    config_web_free(w);
}

/* ---- HTTPS -------------------------------------------------------------------------- */

typedef struct pki {
    char dir[64];
    char ca[128], server_cert[128], server_key[128], client_cert[128], client_key[128],
        stranger_cert[128], stranger_key[128], garbage[128];
} pki;

static pki certs;

static void add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A certificate for key, signed by issuer (self-signed when NULL). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, bool ca, X509 *issuer, EVP_PKEY *issuer_key)
{
    static long serial = 1;
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    add_ext(x, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, &v3, NID_key_usage,
            ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    if (!ca)
        add_ext(x, &v3, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (cert)
        assert_int_equal(PEM_write_X509(f, cert), 1);
    if (key)
        assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

static int make_pki(void **state)
{
    (void)state;
    snprintf(certs.dir, sizeof certs.dir, "/tmp/firn-pki-XXXXXX");
    if (!mkdtemp(certs.dir))
        return -1;
#define FILE_IN(field, base) snprintf(certs.field, sizeof certs.field, "%s/" base, certs.dir)
    FILE_IN(ca, "ca.pem");
    FILE_IN(server_cert, "server.pem");
    FILE_IN(server_key, "server.key");
    FILE_IN(client_cert, "client.pem");
    FILE_IN(client_key, "client.key");
    FILE_IN(stranger_cert, "stranger.pem");
    FILE_IN(stranger_key, "stranger.key");
    FILE_IN(garbage, "garbage.pem");
#undef FILE_IN
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *server_key = EVP_EC_gen("P-256"),
             *client_key = EVP_EC_gen("P-256"), *stranger_key = EVP_EC_gen("P-256");
    X509 *ca = make_cert(ca_key, "firn test CA", true, NULL, NULL);
    X509 *server = make_cert(server_key, "localhost", false, ca, ca_key);
    X509 *client_cert = make_cert(client_key, "client", false, ca, ca_key);
    X509 *stranger = make_cert(stranger_key, "stranger", false, NULL, NULL);
    write_pem(certs.ca, ca, NULL);
    write_pem(certs.server_cert, server, NULL);
    write_pem(certs.server_key, NULL, server_key);
    write_pem(certs.client_cert, client_cert, NULL);
    write_pem(certs.client_key, NULL, client_key);
    write_pem(certs.stranger_cert, stranger, NULL);
    write_pem(certs.stranger_key, NULL, stranger_key);
    FILE *f = fopen(certs.garbage, "w");
    fputs("not a certificate\n", f);
    fclose(f);
    X509_free(ca);
    X509_free(server);
    X509_free(client_cert);
    X509_free(stranger);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(server_key);
    EVP_PKEY_free(client_key);
    EVP_PKEY_free(stranger_key);
    return 0;
}

static int remove_pki(void **state)
{
    (void)state;
    const char *files[] = {certs.ca, certs.server_cert, certs.server_key, certs.client_cert,
                           certs.client_key, certs.stranger_cert, certs.stranger_key,
                           certs.garbage};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        unlink(files[i]);
    rmdir(certs.dir);
    return 0;
}

/* A web config for the test certificates, with extra tls_server_config
 * lines. */
static config_web *tls_config(const char *extra)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "tls_server_config:\n  cert_file: %s\n  key_file: %s\n%s", certs.server_cert,
             certs.server_key, extra);
    return load(yaml, "w.yml");
}

static void test_tls_server(void **state)
{
    (void)state;
    config_web *w = tls_config("");
    firn_err err = {0};
    http_server *s = start(w, &err);
    if (!s)
        fail_msg("%s", err.msg);
    const client trusting = {.ca = certs.ca};
    expect(s, "https", "/inline", &trusting, 200, "inline\n");
    expect(s, "https", "/work", &trusting, 200, "worker\n");
    expect(s, "https", "/nowhere", &trusting, 404, NULL);
    /* Not trusting the CA, the client refuses the server. */
    expect_refused(s, "/inline", &(client){.ca = certs.stranger_cert});
    /* Plain HTTP on the TLS port: Go's answer, then the connection closes. */
    expect(s, "http", "/inline", NULL, 400, "Client sent an HTTP request to an HTTPS server.\n");
    /* A client certificate nobody asked for is harmless. */
    expect(s, "https", "/inline",
           &(client){.ca = certs.ca, .cert = certs.stranger_cert, .key = certs.stranger_key},
           200, NULL);
    http_stop(s);
    config_web_free(w);
}

static void test_tls_client_auth(void **state)
{
    (void)state;
    char extra[512];
    const client none = {.ca = certs.ca};
    const client good = {.ca = certs.ca, .cert = certs.client_cert, .key = certs.client_key};
    const client stranger = {.ca = certs.ca, .cert = certs.stranger_cert,
                             .key = certs.stranger_key};
    static const struct {
        const char *type;
        bool ca;
        bool none_ok, good_ok, stranger_ok;
    } cases[] = {
        {"RequireAndVerifyClientCert", true, false, true, false},
        {"VerifyClientCertIfGiven", true, true, true, false},
        {"RequireAnyClientCert", false, false, true, true},
        {"RequestClientCert", false, true, true, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(extra, sizeof extra, "  client_auth_type: %s\n%s%s%s", cases[i].type,
                 cases[i].ca ? "  client_ca_file: " : "", cases[i].ca ? certs.ca : "",
                 cases[i].ca ? "\n" : "");
        config_web *w = tls_config(extra);
        firn_err err = {0};
        http_server *s = start(w, &err);
        if (!s)
            fail_msg("%s: %s", cases[i].type, err.msg);
        if (cases[i].none_ok)
            expect(s, "https", "/inline", &none, 200, "inline\n");
        else
            expect_refused(s, "/inline", &none);
        if (cases[i].good_ok)
            expect(s, "https", "/work", &good, 200, "worker\n");
        else
            expect_refused(s, "/work", &good);
        if (cases[i].stranger_ok)
            expect(s, "https", "/inline", &stranger, 200, "inline\n");
        else
            expect_refused(s, "/inline", &stranger);
        http_stop(s);
        config_web_free(w);
    }
}

static void test_tls_versions_and_auth(void **state)
{
    (void)state;
    config_web *w = tls_config("  min_version: TLS13\n"
                               "basic_auth_users:\n  alice: " ALICE_HASH "\n");
    firn_err err = {0};
    http_server *s = start(w, &err);
    assert_non_null(s);
    expect_refused(s, "/inline", &(client){.ca = certs.ca, .tls_max = CURL_SSLVERSION_MAX_TLSv1_2,
                                          .userpwd = "alice:secret"});
    expect(s, "https", "/inline", &(client){.ca = certs.ca}, 401, "Unauthorized\n");
    expect(s, "https", "/inline", &(client){.ca = certs.ca, .userpwd = "alice:secret"}, 200,
           "inline\n");
    /* Over TLS firn cannot write past h2o: a body refused from the head
     * gets h2o's 413 instead of 401, or a closed connection when h2o had
     * read the head already.  A request whose bytes all came with the end
     * of the handshake is h2o's alone (401 once read): which of the three
     * a client gets depends on how its bytes arrive, so this checks that
     * the path answers and that the server serves on. */
    char *big = malloc(70000 + 1);
    assert_non_null(big);
    memset(big, 'a', 70000);
    big[70000] = '\0';
    reply r = request(s, "https", "/work", &(client){.ca = certs.ca, .post = big});
    assert_true(r.rc != CURLE_OK || r.status == 413 || r.status == 401);
    firn_buf_free(&r.body);
    firn_buf_free(&r.headers);
    expect(s, "https", "/work", &(client){.ca = certs.ca, .post = big, .userpwd = "alice:secret"},
           200, NULL);
    free(big);
    http_stop(s);
    config_web_free(w);
}

static void test_tls_bad_files(void **state)
{
    (void)state;
    char yaml[1024];
    const struct {
        const char *cert, *key, *extra;
        const char *want;
    } cases[] = {
        {"/nonexistent/cert.pem", certs.server_key, "",
         "web: tls_server_config: cert_file /nonexistent/cert.pem: no such file or directory"},
        {certs.server_cert, "/nonexistent/key.pem", "",
         "web: tls_server_config: key_file /nonexistent/key.pem: no such file or directory"},
        {certs.garbage, certs.server_key, "", "cert_file"},
        {certs.server_cert, certs.garbage, "", "key_file"},
        {certs.server_cert, certs.client_key, "", "does not match the certificate of cert_file"},
        {certs.server_cert, certs.server_key,
         "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: /nonexistent/ca\n",
         "client_ca_file /nonexistent/ca: no such file or directory"},
        {certs.server_cert, certs.server_key,
         "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: GARBAGE\n",
         "client_ca_file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char extra[512];
        snprintf(extra, sizeof extra, "%s", cases[i].extra);
        char *g = strstr(extra, "GARBAGE");
        if (g)
            snprintf(g, sizeof extra - (size_t)(g - extra), "%s\n", certs.garbage);
        snprintf(yaml, sizeof yaml, "tls_server_config:\n  cert_file: %s\n  key_file: %s\n%s",
                 cases[i].cert, cases[i].key, extra);
        config_web *w = load(yaml, "w.yml");
        firn_err err = {0};
        http_server *s = start(w, &err);
        if (s)
            fail_msg("case %zu: started", i);
        if (!strstr(err.msg, cases[i].want))
            fail_msg("case %zu: %s", i, err.msg);
        config_web_free(w);
    }
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *level = getenv("FIRN_TEST_LOG");
    firn_log_set_level(level && firn_log_level_parse(level) >= 0
                           ? (enum firn_log_level)firn_log_level_parse(level)
                           : FIRN_LOG_ERROR);
    const struct CMUnitTest loading[] = {
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_errors_collected),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_check_credentials),
    };
    const struct CMUnitTest serving[] = {
        cmocka_unit_test(test_server_credentials),
        cmocka_unit_test(test_server_stop_while_checking),
    };
    const struct CMUnitTest tls[] = {
        cmocka_unit_test(test_tls_server),
        cmocka_unit_test(test_tls_client_auth),
        cmocka_unit_test(test_tls_versions_and_auth),
        cmocka_unit_test(test_tls_bad_files),
    };
    int failed = cmocka_run_group_tests_name("web config", loading, NULL, NULL);
    failed += cmocka_run_group_tests_name("web config: credentials", serving, NULL, NULL);
    failed += cmocka_run_group_tests_name("web config: TLS", tls, make_pki, remove_pki);
    curl_global_cleanup();
    return failed;
}
