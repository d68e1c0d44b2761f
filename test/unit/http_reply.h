/* http_reply.h -- what the unit tests' HTTP clients (libcurl) collect of a
 * response: status, body and raw headers, with small accessors.  Include
 * after <curl/curl.h> and model/model.h. */
#ifndef FIRN_TEST_HTTP_REPLY_H
#define FIRN_TEST_HTTP_REPLY_H

#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct reply {
    CURLcode rc;
    long status;
    firn_buf body, headers;
} reply;

/* A CURLOPT_WRITEFUNCTION / HEADERFUNCTION appending to a firn_buf. */
static inline size_t collect(char *p, size_t size, size_t n, void *userdata)
{
    firn_buf_append(userdata, p, size * n);
    return size * n;
}

static inline void reply_free(reply *r)
{
    firn_buf_free(&r->body);
    firn_buf_free(&r->headers);
}

static inline const char *body_of(const reply *r)
{
    return r->body.data ? r->body.data : "";
}

/* The value of response header name (case-insensitive) in a static buffer,
 * or NULL. */
static inline const char *header_of(const reply *r, const char *name)
{
    static char value[512];
    size_t n = strlen(name);
    const char *p = r->headers.data;
    while (p && *p) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            snprintf(value, sizeof value, "%.*s", (int)(len - (size_t)(v - p)), v);
            return value;
        }
        p = eol ? eol + 2 : p + len;
    }
    return NULL;
}

#endif
