/* head.c -- what a request's head says about its body, read before h2o
 * reads the body (see "Request bodies" in server.c).
 *
 * h2o 2.2.5 parses a request head with picohttpparser and then reads the
 * whole body into the socket's input buffer before any handler runs.  To
 * refuse a body by its declared length (over the route's cap, past the
 * in-flight budget, without credentials) firn must read the head first,
 * and read it exactly as h2o will: the same parser (libh2o exports it), and
 * h2o's choice of the header that frames the body (lib/http1.c,
 * init_headers: the first Content-Length, unless a Transfer-Encoding is
 * present, the last of those winning).  A head the two read differently
 * would let a body past its cap.
 */
#include <stdint.h>
#include <string.h>

#include <h2o.h>

#include "http/internal.h"

/* picohttpparser's API (h2o bundles the parser and exports it; Debian does
 * not ship its header). */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                      const char **path, size_t *path_len, int *minor_version,
                      struct phr_header *headers, size_t *num_headers, size_t last_len);

static bool name_is(const struct phr_header *h, const char *name)
{
    return h2o_lcstris(h->name, h->name_len, name, strlen(name));
}

int http_head_scan(const char *buf, size_t len, http_head *h)
{
    memset(h, 0, sizeof *h);
    if (len > H2O_MAX_REQLEN)   /* a longer head is h2o's to refuse */
        len = H2O_MAX_REQLEN;
    const char *method, *path;
    size_t method_len, path_len;
    int minor;
    struct phr_header headers[H2O_MAX_HEADERS];
    size_t n = H2O_MAX_HEADERS;
    int r = phr_parse_request(buf, len, &method, &method_len, &path, &path_len, &minor, headers,
                              &n, 0);
    if (r == -2)
        return 0;
    if (r < 0)
        return -1;
    h->head_len = (size_t)r;
    h->path = path;
    h->path_len = path_len;
    const struct phr_header *framing = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!headers[i].name)   /* a folded continuation line */
            continue;
        if (name_is(&headers[i], "content-length")) {
            if (!framing)
                framing = &headers[i];
        } else if (name_is(&headers[i], "transfer-encoding")) {
            framing = &headers[i];
        } else if (name_is(&headers[i], "authorization") && !h->authorization) {
            h->authorization = headers[i].value;
            h->authorization_len = headers[i].value_len;
        }
    }
    if (!framing)
        return 1;
    if (name_is(framing, "transfer-encoding")) {
        /* anything but chunked h2o refuses itself (400) */
        h->chunked = h2o_lcstris(framing->value, framing->value_len, H2O_STRLIT("chunked"));
        return 1;
    }
    /* a broken length h2o refuses itself (400) */
    h->content_length = h2o_strtosize(framing->value, framing->value_len);
    h->has_length = h->content_length != SIZE_MAX;
    return 1;
}
