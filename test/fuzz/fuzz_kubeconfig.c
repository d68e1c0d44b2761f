/* fuzz_kubeconfig.c -- libFuzzer target for kubeconfig files
 * (config/kubeconfig.h), through config_kubeconfig_parse.  Whatever the
 * input, nothing may crash or leak, a refusal must say why and leave
 * nothing behind, and what loads must keep the contract: a server URL,
 * at most one of file and data per item, certificate and key together, one
 * authentication method, a DNS-1123 namespace. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/kubeconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_data(const unsigned char *p, size_t len)
{
    if ((p != NULL) != (len > 0))
        abort();
    if (p && p[len] != '\0')
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    config_kubeconfig k;
    firn_err err = {0};
    int rc = config_kubeconfig_parse("fuzz/kubeconfig", (const char *)data, size, &k, &err);
    if (rc < 0) {
        if (err.msg[0] == '\0' || err.code != rc || k.arena || k.server)
            abort();
        if (rc != FIRN_EINVAL && rc != FIRN_EIO && rc != FIRN_ENOMEM && rc != FIRN_ETOOBIG)
            abort();
        return 0;
    }
    const config_tls *tls = &k.http.tls;
    if (!k.arena || !k.server ||
        (strncasecmp(k.server, "https://", 8) != 0 && strncasecmp(k.server, "http://", 7) != 0))
        abort();
    check_data(k.ca_data, k.ca_len);
    check_data(k.cert_data, k.cert_len);
    check_data(k.key_data, k.key_len);
    if ((tls->ca_file && k.ca_data) || (tls->cert_file && k.cert_data) ||
        (tls->key_file && k.key_data))
        abort();
    if ((tls->cert_file || k.cert_data) != (tls->key_file || k.key_data))
        abort();
    if (tls->insecure_skip_verify && (tls->ca_file || k.ca_data))
        abort();
    const config_authorization *a = &k.http.authorization;
    if (a->set && (strcmp(a->type, "Bearer") != 0 || !a->credentials == !a->credentials_file))
        abort();
    if (a->set && k.http.basic_auth.set)
        abort();
    if (k.http.basic_auth.set && !k.http.basic_auth.username)
        abort();
    if (k.ns) {
        size_t n = strlen(k.ns);
        if (n == 0 || n > 63 || strspn(k.ns, "abcdefghijklmnopqrstuvwxyz0123456789-") != n ||
            k.ns[0] == '-' || k.ns[n - 1] == '-')
            abort();
    }
    config_kubeconfig_free(&k);
    return 0;
}
