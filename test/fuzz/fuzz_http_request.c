/* fuzz_http_request.c -- libFuzzer target for http/'s request decoding (query
 * strings and form bodies).  The input is "QUERY\0BODY" (no NUL: all query).
 * Nothing may crash or leak; a refusal must say why; what is accepted must
 * be consistent: parameter names are sorted and unique, each is found again
 * by lookup with all its values, and the total stays within the cap. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nul = memchr(in, '\0', size);
    size_t query_len = nul ? (size_t)(nul - in) : size;
    http_request_parts parts = {
        .method = "POST",
        .method_len = 4,
        .path = "/fuzz",
        .path_len = 5,
        .query = in,
        .query_len = query_len,
        .body = nul ? nul + 1 : NULL,
        .body_len = nul ? size - query_len - 1 : 0,
        .form_body = nul != NULL,
    };
    firn_arena *a = firn_arena_new(0);
    if (!a)
        return 0;
    http_request r;
    firn_err err = {0};
    if (http_request_build(&r, a, &parts, &err) < 0) {
        if (err.msg[0] == '\0')
            abort();
        firn_arena_free(a);
        return 0;
    }
    size_t total = 0;
    for (size_t i = 0; i < r.n_groups; i++) {
        const http_param_group *g = &r.groups[i];
        const char *const *values = NULL;
        size_t n = http_request_params(&r, g->name, &values);
        if (n != g->n_values || n == 0 || !values)
            abort();
        const char *first = http_request_param(&r, g->name);
        if (!first || strcmp(first, values[0]) != 0)
            abort();
        if (i > 0 && strcmp(r.groups[i - 1].name, g->name) >= 0)
            abort();  /* sorted and unique */
        total += n;
    }
    if (total > HTTP_PARAMS_MAX)
        abort();
    firn_arena_free(a);
    return 0;
}
