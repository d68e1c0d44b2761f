/* fuzz_multipart.c -- libFuzzer target for http/'s multipart/form-data
 * splitter (Pyroscope uploads).  The input is "CONTENT_TYPE\0BODY"; without
 * a NUL it is all body, under "multipart/form-data; boundary=b".  Nothing
 * may crash or leak; a refusal must say why; what is accepted must be
 * consistent: at most HTTP_MULTIPART_PARTS_MAX parts, each named, its data
 * inside the body, in order and not overlapping. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nul = memchr(in, '\0', size);
    char *ct = nul ? strndup(in, (size_t)(nul - in)) : strdup("multipart/form-data; boundary=b");
    const char *body = nul ? nul + 1 : in;
    size_t len = nul ? size - (size_t)(nul - in) - 1 : size;
    /* a copy of exactly len bytes, so reads past the body are caught */
    char *copy = malloc(len ? len : 1);
    firn_arena *a = firn_arena_new(0);
    if (!ct || !copy || !a)
        abort();
    memcpy(copy, body, len);
    http_multipart_part *parts;
    size_t n;
    firn_err err = {0};
    if (http_multipart_parse(ct, copy, len, a, &parts, &n, &err) < 0) {
        if (err.msg[0] == '\0')
            abort();
    } else {
        if (n > HTTP_MULTIPART_PARTS_MAX)
            abort();
        const char *prev_end = copy;
        for (size_t i = 0; i < n; i++) {
            const http_multipart_part *p = &parts[i];
            if (!p->name || p->data < prev_end || p->data + p->len > copy + len)
                abort();
            prev_end = p->data + p->len;
            if (http_multipart_get(parts, n, p->name) > p)
                abort();  /* the first of a name is found */
        }
    }
    firn_arena_free(a);
    free(copy);
    free(ct);
    return 0;
}
