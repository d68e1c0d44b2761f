/* multipart.c -- multipart/form-data bodies (RFC 7578 over RFC 2046), as
 * Pyroscope clients upload profiles: a "profile" part and optional others.
 *
 * The body is split in place: each part's data points into it, so nothing is
 * copied but the few header values.  Line ends may be CRLF or bare LF (Go's
 * mime/multipart accepts both, and so do its servers).  Everything from
 * outside is capped: the number of parts, the size of a part's header block,
 * the boundary's length (70, RFC 2046).  A body that ends before its closing
 * delimiter is refused, so a truncated upload is never taken for a whole one.
 * The header values copied go to the caller's arena, within those caps: no
 * allocation here fails (docs/ARCHITECTURE.md, "Memory").
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"

#define BOUNDARY_MAX 70          /* RFC 2046 5.1.1 */
#define PART_HEADER_MAX 16384    /* bytes of one part's header block */

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_tspecial(char c)
{
    return strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

/* A token of RFC 2045: printable ASCII without spaces and tspecials. */
static bool is_token_char(char c)
{
    return c > ' ' && c < 0x7f && !is_tspecial(c);
}

/* The value of parameter want in a header value such as
 * `form-data; name="profile"; filename="a.pprof"` (RFC 2045 5.1 / 2183),
 * unquoted into a: 0 with *out set, 1 when absent, FIRN_EINVAL when the
 * parameters are malformed.  The value before the first ';' is skipped. */
static int header_param(const char *v, size_t len, const char *want, firn_arena *a,
                        const char **out, firn_err *err)
{
    const char *end = v + len;
    const char *p = memchr(v, ';', len);
    if (!p)
        return 1;
    while (p < end) {
        p++;  /* past ';' */
        while (p < end && is_space(*p))
            p++;
        if (p == end)
            break;  /* a trailing ';' */
        const char *name = p;
        while (p < end && is_token_char(*p))
            p++;
        size_t name_len = (size_t)(p - name);
        while (p < end && is_space(*p))
            p++;
        if (name_len == 0 || p == end || *p != '=')
            return firn_errf(err, FIRN_EINVAL, "malformed parameter in \"%.*s\"",
                             (int)(len > 200 ? 200 : len), v);
        p++;
        while (p < end && is_space(*p))
            p++;
        char *value;
        size_t value_len = 0;
        if (p < end && *p == '"') {
            p++;
            value = firn_arena_alloc(a, (size_t)(end - p) + 1);
            while (p < end && *p != '"') {
                if (*p == '\\' && p + 1 < end)
                    p++;
                value[value_len++] = *p++;
            }
            if (p == end)
                return firn_errf(err, FIRN_EINVAL, "unterminated quoted string in \"%.*s\"",
                                 (int)(len > 200 ? 200 : len), v);
            p++;
        } else {
            /* RFC 2045 wants a token; like most servers, take anything up to
             * ';' or white space (boundaries with '/' or '=' unquoted) */
            const char *start = p;
            while (p < end && *p != ';' && *p != '"' && !is_space(*p))
                p++;
            value_len = (size_t)(p - start);
            value = firn_arena_strndup(a, start, value_len);
        }
        value[value_len] = '\0';
        while (p < end && is_space(*p))
            p++;
        if (p < end && *p != ';')
            return firn_errf(err, FIRN_EINVAL, "malformed parameter in \"%.*s\"",
                             (int)(len > 200 ? 200 : len), v);
        if (name_len == strlen(want) && strncasecmp(name, want, name_len) == 0) {
            *out = value;
            return 0;
        }
    }
    return 1;
}

/* The header value's first element ("multipart/form-data" of
 * "multipart/form-data; boundary=x") equals want, case-insensitively. */
static bool media_type_is(const char *v, size_t len, const char *want)
{
    size_t i = 0, n = strlen(want);
    while (i < len && is_space(v[i]))
        i++;
    size_t end = i;
    while (end < len && v[end] != ';')
        end++;
    while (end > i && is_space(v[end - 1]))
        end--;
    return end - i == n && strncasecmp(v + i, want, n) == 0;
}

bool http_is_multipart_content_type(const char *value)
{
    return value && media_type_is(value, strlen(value), "multipart/form-data");
}

/* The end of the line at p (its '\n', or end), and where the next begins. */
static const char *line_end(const char *p, const char *end, const char **next)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) {
        *next = end;
        return end;
    }
    *next = nl + 1;
    return nl > p && nl[-1] == '\r' ? nl - 1 : nl;
}

/* The delimiter "--boundary" at the start of a line at or after from: the
 * position of its "--", or NULL.  It must be followed by "--", white space or
 * a line end: a longer boundary-like string inside the data is data. */
static const char *find_delimiter(const char *from, const char *end, const char *boundary,
                                  size_t blen, bool at_line_start)
{
    const char *p = from;
    for (;;) {
        if (at_line_start && (size_t)(end - p) >= blen + 2 && p[0] == '-' && p[1] == '-' &&
            memcmp(p + 2, boundary, blen) == 0) {
            const char *after = p + 2 + blen;
            if (after == end || *after == '\r' || *after == '\n' || is_space(*after) ||
                (end - after >= 2 && after[0] == '-' && after[1] == '-'))
                return p;
        }
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return NULL;
        p = nl + 1;
        at_line_start = true;
    }
}

/* Headers of one part, from p to the blank line: its form name, file name
 * and content type.  *data is set to where the part's data begins. */
static int part_headers(const char *p, const char *end, firn_arena *a, http_multipart_part *part,
                        const char **data, firn_err *err)
{
    const char *start = p;
    bool disposition = false;
    for (;;) {
        const char *next;
        const char *le = line_end(p, end, &next);
        if (le == end)  /* no line end: the body stops inside the headers */
            return firn_errf(err, FIRN_EINVAL, "the body ends inside a part's headers");
        if (le == p) {  /* the blank line */
            *data = next;
            break;
        }
        if ((size_t)(next - start) > PART_HEADER_MAX)
            return firn_errf(err, FIRN_ETOOBIG, "a part's headers are longer than %d bytes",
                             PART_HEADER_MAX);
        if (!is_space(*p)) {  /* a folded continuation line is ignored */
            const char *colon = memchr(p, ':', (size_t)(le - p));
            if (!colon)
                return firn_errf(err, FIRN_EINVAL, "malformed part header \"%.*s\"",
                                 (int)((le - p) > 100 ? 100 : (le - p)), p);
            size_t name_len = (size_t)(colon - p);
            const char *v = colon + 1;
            while (v < le && is_space(*v))
                v++;
            size_t vlen = (size_t)(le - v);
            while (vlen && is_space(v[vlen - 1]))
                vlen--;
            if (name_len == 19 && strncasecmp(p, "Content-Disposition", 19) == 0) {
                if (!media_type_is(v, vlen, "form-data"))
                    return firn_errf(err, FIRN_EINVAL,
                                     "part with Content-Disposition \"%.*s\": not form-data",
                                     (int)(vlen > 100 ? 100 : vlen), v);
                disposition = true;
                int rc = header_param(v, vlen, "name", a, &part->name, err);
                if (rc >= 0)
                    rc = header_param(v, vlen, "filename", a, &part->filename, err);
                if (rc < 0) {
                    firn_err_prefix(err, "Content-Disposition");
                    return rc;
                }
            } else if (name_len == 12 && strncasecmp(p, "Content-Type", 12) == 0) {
                part->content_type = firn_arena_strndup(a, v, vlen);
            }
        }
        p = next;
    }
    if (!disposition)
        return firn_errf(err, FIRN_EINVAL, "a part has no Content-Disposition header");
    return 0;
}

int http_multipart_parse(const char *content_type, const char *body, size_t len, firn_arena *a,
                        http_multipart_part **parts, size_t *n_parts, firn_err *err)
{
    *parts = NULL;
    *n_parts = 0;
    if (!http_is_multipart_content_type(content_type))
        return firn_errf(err, FIRN_EINVAL, "Content-Type \"%.200s\" is not multipart/form-data",
                         content_type ? content_type : "");
    const char *boundary = NULL;
    int rc = header_param(content_type, strlen(content_type), "boundary", a, &boundary, err);
    if (rc < 0) {
        firn_err_prefix(err, "Content-Type");
        return rc;
    }
    size_t blen = boundary ? strlen(boundary) : 0;
    if (rc == 1 || blen == 0)
        return firn_errf(err, FIRN_EINVAL, "Content-Type multipart/form-data has no boundary");
    if (blen > BOUNDARY_MAX)
        return firn_errf(err, FIRN_EINVAL, "multipart boundary longer than %d bytes",
                         BOUNDARY_MAX);

    http_multipart_part *out = firn_arena_calloc(a, HTTP_MULTIPART_PARTS_MAX, sizeof *out);
    const char *end = body + len;
    const char *d = find_delimiter(body, end, boundary, blen, true);
    if (!d)
        return firn_errf(err, FIRN_EINVAL, "no part (boundary \"%s\" not found)", boundary);
    size_t n = 0;
    for (;;) {
        const char *p = d + 2 + blen;
        if ((size_t)(end - p) >= 2 && p[0] == '-' && p[1] == '-')
            break;  /* the close delimiter; what follows is the epilogue */
        while (p < end && is_space(*p))
            p++;  /* transport padding */
        if (p < end && *p == '\r')
            p++;
        if (p == end || *p != '\n')
            return firn_errf(err, FIRN_EINVAL,
                             p == end ? "the body ends after a delimiter"
                                      : "a delimiter not followed by a line end");
        p++;
        if (n == HTTP_MULTIPART_PARTS_MAX)
            return firn_errf(err, FIRN_ETOOBIG, "more than %d parts",
                             HTTP_MULTIPART_PARTS_MAX);
        http_multipart_part part = {0};
        const char *data = NULL;
        if ((rc = part_headers(p, end, a, &part, &data, err)) < 0)
            return rc;
        const char *next = find_delimiter(data, end, boundary, blen, true);
        if (!next)
            return firn_errf(err, FIRN_EINVAL,
                             "the body ends inside part %s (no closing boundary: "
                             "truncated?)", part.name ? part.name : "?");
        /* the line end before the delimiter belongs to it, not to the data */
        const char *data_end = next;
        if (data_end > data && data_end[-1] == '\n')
            data_end--;
        if (data_end > data && data_end[-1] == '\r')
            data_end--;
        part.data = data;
        part.len = (size_t)(data_end - data);
        if (part.name)  /* as Go's ReadForm: a part without a name is skipped */
            out[n++] = part;
        d = next;
    }
    assert(n <= HTTP_MULTIPART_PARTS_MAX);
    *parts = out;
    *n_parts = n;
    return 0;
}

const http_multipart_part *http_multipart_get(const http_multipart_part *parts, size_t n,
                                            const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(parts[i].name, name) == 0)
            return &parts[i];
    return NULL;
}
