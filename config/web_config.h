/* web_config.h -- the web configuration file (firn --web.config.file): TLS
 * and authentication for firn's HTTP server, in Prometheus's web-config
 * format (exporter-toolkit, docs/web-configuration.md), so a file written
 * for Prometheus or an exporter loads unchanged unless it uses a key listed
 * below as refused.
 *
 * Contract
 * - Strict, like config.h: unknown keys, duplicate keys, wrong node kinds
 *   and bad values are errors "NAME:LINE:COL: field: message"; all are
 *   collected (up to CONFIG_MAX_ERRORS); a file with any error yields no
 *   config.  Keys of Prometheus's format that firn does not implement are
 *   refused with "not supported by firn", never ignored: a file that asks
 *   for a protection firn would not give must not start a server.
 * - Only the text is checked here (no file is opened but the config
 *   itself): http_new loads the certificates and says what is wrong with
 *   them.  A relative cert_file, key_file or client_ca_file is relative to
 *   the directory of the config file (of `name` for the string loaders), as
 *   exporter-toolkit does.
 * - Memory: a config_web owns everything it points to; config_web_free.
 *   Read-only once loaded: any thread may read it.
 *
 * Keys (defaults in parentheses)
 *   tls_server_config:        serve HTTPS only (HTTP/1.1, ALPN http/1.1)
 *     cert_file, key_file     PEM certificate (chain) and key; each needs
 *                             the other, and any other key of
 *                             tls_server_config needs them
 *     client_auth_type        (NoClientCert) RequestClientCert,
 *                             RequireAnyClientCert (also RequireClientCert),
 *                             VerifyClientCertIfGiven,
 *                             RequireAndVerifyClientCert: Go's
 *                             tls.ClientAuthType
 *     client_ca_file          PEM CAs that verify client certificates;
 *                             refused with NoClientCert (as exporter-
 *                             toolkit); required by VerifyClientCertIfGiven
 *                             and RequireAndVerifyClientCert (Go would fall
 *                             back to the system's roots, which lets in any
 *                             client with a certificate from a public CA)
 *     min_version, max_version   TLS12 or TLS13 (TLS12, TLS13); TLS10 and
 *                             TLS11 are refused
 *     prefer_server_cipher_suites   a boolean, accepted and ignored, as Go
 *                             itself ignores it since Go 1.18
 *     refused: cert, key, client_ca (inline PEM), cipher_suites,
 *              curve_preferences, client_allowed_sans
 *   http_server_config:
 *     headers                 {name: value} added to every response (401s
 *                             too): Content-Security-Policy, X-Frame-Options
 *                             (deny or sameorigin), X-Content-Type-Options
 *                             (nosniff), X-XSS-Protection,
 *                             Strict-Transport-Security; a blank value adds
 *                             nothing; any other name is an error
 *     http2                   false only (firn serves HTTP/1.1; Prometheus's
 *                             default is true)
 *   basic_auth_users          {user: bcrypt hash}, $2a$, $2b$ or $2y$ with a
 *                             cost of 4 to 31 (`htpasswd -nbBC 10 USER PASS`);
 *                             a user name may not hold ':'
 *   firn_bearer_token_sha256  firn's extension, not Prometheus's: [hex
 *                             SHA-256 of a token] (`printf %s "$TOKEN" |
 *                             sha256sum`); a request with "Authorization:
 *                             Bearer TOKEN" for one of them is let in
 *   refused: rate_limit
 *   With basic_auth_users or firn_bearer_token_sha256 every request needs
 *   one valid credential, as Prometheus protects every path.
 */
#ifndef FIRN_CONFIG_WEB_CONFIG_H
#define FIRN_CONFIG_WEB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "model/model.h"

/* TLS versions as on the wire (and as OpenSSL's TLS1_2_VERSION...). */
#define CONFIG_WEB_TLS12 0x0303
#define CONFIG_WEB_TLS13 0x0304
#define CONFIG_WEB_SHA256_LEN 32

typedef enum config_web_client_auth {
    CONFIG_WEB_NO_CLIENT_CERT,
    CONFIG_WEB_REQUEST_CLIENT_CERT,           /* asked for, not verified, not required */
    CONFIG_WEB_REQUIRE_ANY_CLIENT_CERT,       /* required, not verified */
    CONFIG_WEB_VERIFY_CLIENT_CERT_IF_GIVEN,   /* verified when given */
    CONFIG_WEB_REQUIRE_AND_VERIFY_CLIENT_CERT,
} config_web_client_auth;

typedef struct config_web_user {
    char *name;
    char *hash;   /* a bcrypt hash, checked to be one */
} config_web_user;

typedef struct config_web_header {
    char *name;   /* as the file spells it, one of the five allowed */
    char *value;  /* not blank; no control characters */
} config_web_header;

typedef struct config_web_token {
    unsigned char sha256[CONFIG_WEB_SHA256_LEN];
} config_web_token;

typedef struct config_web {
    char *source;             /* the file's name, as in messages */
    bool tls;                 /* tls_server_config given: HTTPS only */
    char *cert_file;          /* with tls: paths resolved as said above */
    char *key_file;
    char *client_ca_file;     /* NULL unless given */
    config_web_client_auth client_auth;
    int min_version, max_version;   /* CONFIG_WEB_TLS12 or CONFIG_WEB_TLS13 */
    config_web_user *users;   /* sorted by name, unique */
    size_t n_users;
    config_web_token *tokens;
    size_t n_tokens;
    config_web_header *headers;
    size_t n_headers;
    firn_arena *arena;        /* owns everything above */
} config_web;

/* Load a web configuration file (CONFIG_MAX_BYTES at most).  On error
 * returns NULL, err holds the first lines and errs (when not NULL) every
 * line; free errs with config_errors_free, also after success. */
config_web *config_web_load_file(const char *path, config_errors *errs, firn_err *err);
/* The same for text in memory; name stands for the file. */
config_web *config_web_load_string(const char *text, size_t len, const char *name,
                                   config_errors *errs, firn_err *err);
void config_web_free(config_web *w);

/* ---- credentials ----------------------------------------------------------- */

/* Whether requests need credentials (users or tokens are configured). */
bool config_web_auth_required(const config_web *w);

/* Whether user and password are one of basic_auth_users.  Slow on
 * purpose (bcrypt: tens of milliseconds at cost 10): never on an event
 * loop.  An unknown user costs one bcrypt too (against another user's
 * hash), so timing does not tell which users exist; a password holding a
 * NUL byte never matches.  Any thread. */
bool config_web_check_basic(const config_web *w, const char *user, size_t user_len,
                            const char *password, size_t password_len);

/* Whether token is one of firn_bearer_token_sha256: one SHA-256 and
 * constant-time compares, fast enough for an event loop.  Any thread. */
bool config_web_check_bearer(const config_web *w, const char *token, size_t len);

#endif
