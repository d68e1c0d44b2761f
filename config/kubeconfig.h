/* kubeconfig.h -- a kubeconfig file (client-go clientcmd v1, what kubectl
 * reads) reduced to the one connection Kubernetes SD needs: the server,
 * TLS and credentials of its current context (kubernetes_sd_configs'
 * kubeconfig_file).
 *
 * Contract
 * - The context is current-context; when that is absent or empty and the
 *   file has exactly one context, that one.  The context must name a
 *   cluster and a user that the file defines (as client-go's
 *   ConfirmUsable); the cluster must have a server, an http:// or https://
 *   URL.
 * - Lenient about keys, strict about what it reads: keys firn does not read
 *   (preferences, extensions, proxy settings of other clusters, ...) are
 *   ignored, but every field read must have its type (a string, a boolean,
 *   a list, a mapping), names must be unique within clusters, users and
 *   contexts, and the chosen context's pieces must be consistent.
 * - Refused, naming the user or cluster: credential plugins (exec,
 *   auth-provider: firn cannot run them), impersonation (as, as-uid,
 *   as-groups, as-user-extra), proxy-url, data and file given for the same
 *   item (certificate-authority, client-certificate, client-key; token and
 *   tokenFile), a client certificate without its key or a key without its
 *   certificate, token or tokenFile together with username/password (client-go:
 *   "more than one authentication method"), a CA together with
 *   insecure-skip-tls-verify, a namespace that is not a DNS-1123 label.
 * - Files: a relative certificate-authority, client-certificate,
 *   client-key or tokenFile is relative to the kubeconfig's directory, as
 *   kubectl resolves it.  Each must be readable now (stat and access only:
 *   nothing is opened); the client reads them when it connects, so a
 *   rotated token or certificate is picked up.
 * - Errors: every problem is reported (up to CONFIG_MAX_ERRORS), one per
 *   line, "PATH:LINE:COL: field: what" where a node is at fault and
 *   "PATH: what" otherwise (the file itself, a missing context).  Secrets
 *   (token, password, key data) never appear in messages.  Codes:
 *   FIRN_EIO when a file could not be read (the kubeconfig or one it
 *   names), FIRN_ETOOBIG for a kubeconfig over KUBECONFIG_MAX_BYTES, else
 *   FIRN_EINVAL.
 * - Memory: a loaded config_kubeconfig owns everything it points to, in its
 *   arena; config_kubeconfig_free releases it.  On error nothing is left
 *   to free (*out is zeroed).  Loading is reentrant; a loaded value is
 *   read-only, so any thread may read it.
 */
#ifndef FIRN_CONFIG_KUBECONFIG_H
#define FIRN_CONFIG_KUBECONFIG_H

#include <stddef.h>

#include "config/config.h"
#include "model/model.h"

/* kubeconfig files hold a few certificates and tokens: 4 MiB is plenty. */
#define KUBECONFIG_MAX_BYTES (4u << 20)

/* The connection a kubeconfig file's current context names.  For each of
 * the CA, the client certificate and the client key, at most one of the
 * file (in http.tls) and the data is set; the certificate and the key are
 * both given (file or data) or neither. */
typedef struct config_kubeconfig {
    char *server;              /* cluster.server, e.g. "https://1.2.3.4:6443" */
    config_http http;          /* tls: ca_file (certificate-authority), cert_file/key_file
                                  (client-certificate/client-key), insecure_skip_verify
                                  (insecure-skip-tls-verify), server_name (tls-server-name);
                                  authorization {Bearer, credentials (token) |
                                  credentials_file (tokenFile)};
                                  basic_auth (username/password) */
    unsigned char *ca_data, *cert_data, *key_data;  /* decoded *-data (PEM bytes) or NULL */
    size_t ca_len, cert_len, key_len;
    char *ns;                  /* context.namespace or NULL */
    firn_arena *arena;         /* owns everything above */
} config_kubeconfig;

/* Read path (at most KUBECONFIG_MAX_BYTES) and decode it as below. */
int config_kubeconfig_load(const char *path, config_kubeconfig *out, firn_err *err);

/* Decode a kubeconfig's text; path names it in messages and relative file
 * names are resolved against its directory. */
int config_kubeconfig_parse(const char *path, const char *data, size_t len,
                            config_kubeconfig *out, firn_err *err);

/* Release what a load gave; k is zeroed.  NULL or a zeroed k is fine. */
void config_kubeconfig_free(config_kubeconfig *k);

#endif
