/* fuzz_web_config.c -- libFuzzer target for the web configuration loader
 * (config/web_config.h).  Whatever the input, nothing may crash or leak, a
 * refusal must say why, and what loads must keep the contract: TLS has
 * both files, versions are TLS12..TLS13 in order, verifying client
 * certificates has CAs, users have bcrypt-shaped hashes, headers are not
 * blank.  Bearer checks run on the input too (bcrypt checks would only
 * slow the fuzzer down). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/web_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    config_errors errs = {0};
    firn_err err = {0};
    config_web *w =
        config_web_load_string((const char *)data, size, "fuzz/web.yml", &errs, &err);
    if (!w) {
        if (errs.n == 0 || err.msg[0] == '\0')
            abort();
        config_errors_free(&errs);
        return 0;
    }
    if (errs.n != 0)
        abort();
    if (w->tls && (!w->cert_file || !w->key_file || !*w->cert_file || !*w->key_file))
        abort();
    if (w->min_version < CONFIG_WEB_TLS12 || w->max_version > CONFIG_WEB_TLS13 ||
        w->min_version > w->max_version)
        abort();
    if ((w->client_auth == CONFIG_WEB_VERIFY_CLIENT_CERT_IF_GIVEN ||
         w->client_auth == CONFIG_WEB_REQUIRE_AND_VERIFY_CLIENT_CERT) &&
        !w->client_ca_file)
        abort();
    if (w->client_ca_file && w->client_auth == CONFIG_WEB_NO_CLIENT_CERT)
        abort();
    for (size_t i = 0; i < w->n_users; i++) {
        if (!w->users[i].name || strchr(w->users[i].name, ':') ||
            strlen(w->users[i].hash) != 60 || strncmp(w->users[i].hash, "$2", 2) != 0)
            abort();
        if (i > 0 && strcmp(w->users[i - 1].name, w->users[i].name) >= 0)
            abort();
    }
    for (size_t i = 0; i < w->n_headers; i++)
        if (!w->headers[i].value[0])
            abort();
    if (config_web_auth_required(w) != (w->n_users > 0 || w->n_tokens > 0))
        abort();
    (void)config_web_check_bearer(w, (const char *)data, size);
    config_web_free(w);
    return 0;
}
