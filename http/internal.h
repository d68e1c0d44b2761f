/* internal.h -- what http/'s files share: the request a handler sees and how
 * it is built from the parts of an HTTP request.
 *
 * request.c knows nothing of h2o: the server (server.c) hands it plain
 * bytes (method, path, raw query, headers, body), and everything it builds
 * lives in one firn_arena, so a request can cross to a worker thread and be
 * freed at once.  Keeping the decoding apart also keeps it testable and
 * fuzzable without a socket.
 */
#ifndef FIRN_HTTP_INTERNAL_H
#define FIRN_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "http/http.h"
#include "model/model.h"

/* Most parameters (URL and form body together) a request may carry. */
#define HTTP_PARAMS_MAX 10000

typedef struct http_header {
    const char *name;
    const char *value;
} http_header;

/* Every value of one parameter name, in the order they came. */
typedef struct http_param_group {
    const char *name;
    const char **values;
    size_t n_values;
} http_param_group;

struct http_request {
    const char *method;
    const char *path;
    http_param_group *groups;  /* sorted by name (strcmp), for bsearch */
    size_t n_groups;
    http_header *headers;      /* as received, names as h2o gives them (lower case) */
    size_t n_headers;
    const char *body;         /* NUL-terminated copy; "" when there is none */
    size_t body_len;
    bool too_large;           /* the body was over the cap and is not here */
};

/* A header as h2o holds it: not NUL-terminated. */
typedef struct http_header_part {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} http_header_part;

/* The parts of a request as they arrived; nothing here needs to be
 * NUL-terminated. */
typedef struct http_request_parts {
    const char *method;
    size_t method_len;
    const char *path;        /* already percent-decoded by h2o */
    size_t path_len;
    const char *query;       /* the raw query, without '?'; may be NULL */
    size_t query_len;
    const http_header_part *headers;
    size_t n_headers;
    const char *body;        /* may be NULL */
    size_t body_len;
    bool form_body;          /* body is application/x-www-form-urlencoded: parse it */
    bool too_large;          /* the body was over the cap (body is NULL) */
} http_request_parts;

/* Build *r from parts, copying everything into a: URL parameters first,
 * then the form body's.  FIRN_EINVAL with Go's message for a malformed
 * escape ("invalid URL escape \"%zz\"") or a ';' separator,
 * FIRN_ETOOBIG past HTTP_PARAMS_MAX parameters. */
int http_request_build(http_request *r, firn_arena *a, const http_request_parts *parts,
                      firn_err *err);

/* Whether a Content-Type value names application/x-www-form-urlencoded
 * (case-insensitive, parameters such as "; charset=utf-8" ignored). */
bool http_is_form_content_type(const char *value, size_t len);

/* What a request head says about its body (head.c). */
typedef struct http_head {
    size_t head_len;            /* bytes of the head, up to its blank line */
    const char *path;           /* the request target as sent (query included) */
    size_t path_len;
    const char *authorization;  /* the first Authorization value, or NULL */
    size_t authorization_len;
    bool has_length;            /* a valid Content-Length frames the body */
    size_t content_length;
    bool chunked;               /* Transfer-Encoding: chunked frames it */
} http_head;

/* Read the request head at the start of buf (len bytes received so far) as
 * h2o 2.2.5 will: 1 when it is complete (*h filled), 0 when more bytes are
 * needed, -1 when it is not a request h2o takes (h2o answers it).  Neither
 * has_length nor chunked: no body, or a framing h2o refuses (400). */
int http_head_scan(const char *buf, size_t len, http_head *h);

#endif
