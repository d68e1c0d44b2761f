/* request.c -- the request a handler sees: parameters percent-decoded as
 * Go's url.ParseQuery decodes them, headers, body; and plain-text responses.
 *
 * Everything is copied into the request's arena, so a request owes nothing
 * to h2o's memory and can be handed to a worker thread.  Parameters are kept
 * grouped by name (sorted, for bsearch) with each name's values in arrival
 * order, so http_request_params can return them as one array.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/internal.h"

/* One decoded pair while parsing; seq keeps arrival order through qsort. */
typedef struct param {
    const char *name;
    const char *value;
    size_t seq;
} param;

typedef struct param_list {
    param *items;
    size_t n, cap;
} param_list;

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Go's QueryUnescape: "%XX" is a byte, '+' a space.  A '%' without two hex
 * digits after it fails with the escape as Go quotes it (at most 3 bytes). */
static int query_unescape(firn_arena *a, const char *s, size_t len, const char **out,
                          firn_err *err)
{
    char *dst = firn_arena_alloc(a, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < len ? hex_value(s[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                size_t esc_len = len - i < 3 ? len - i : 3;
                char quoted[3 * 10 + 3];
                firn_go_quote(quoted, s + i, esc_len);
                quoted[firn_go_quote(NULL, s + i, esc_len)] = '\0';
                return firn_errf(err, FIRN_EINVAL, "invalid URL escape %s", quoted);
            }
            dst[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (s[i] == '+') {
            dst[n++] = ' ';
        } else {
            dst[n++] = s[i];
        }
    }
    dst[n] = '\0';
    *out = dst;
    return 0;
}

/* Go's url.ParseQuery over s[0..len), appending to list: pairs split on
 * '&', empty ones skipped, a pair holding ';' refused (Go 1.17 and later),
 * a pair without '=' has the value "".  Stops at the first error. */
static int parse_query(firn_arena *a, const char *s, size_t len, param_list *list,
                       firn_err *err)
{
    const char *end = s + len;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *pair_end = amp ? amp : end;
        size_t pair_len = (size_t)(pair_end - s);
        if (pair_len > 0) {
            if (memchr(s, ';', pair_len))
                return firn_errf(err, FIRN_EINVAL, "invalid semicolon separator in query");
            if (list->n == list->cap)
                return firn_errf(err, FIRN_ETOOBIG, "too many parameters: more than %d",
                                 HTTP_PARAMS_MAX);
            const char *eq = memchr(s, '=', pair_len);
            size_t name_len = eq ? (size_t)(eq - s) : pair_len;
            param *p = &list->items[list->n];
            int rc = query_unescape(a, s, name_len, &p->name, err);
            if (rc == 0)
                rc = eq ? query_unescape(a, eq + 1, (size_t)(pair_end - eq - 1), &p->value, err)
                        : query_unescape(a, "", 0, &p->value, err);
            if (rc < 0)
                return rc;
            p->seq = list->n++;
        }
        s = amp ? amp + 1 : end;
    }
    return 0;
}

static size_t count_pairs_upper_bound(const char *s, size_t len)
{
    if (!s || len == 0)
        return 0;
    size_t n = 1;
    for (const char *p = s; (p = memchr(p, '&', len - (size_t)(p - s))) != NULL; p++)
        n++;
    return n;
}

static int param_cmp(const void *x, const void *y)
{
    const param *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    if (c)
        return c;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Sort the pairs by name (arrival order within a name) and cut them into
 * groups whose values are contiguous. */
static void group_params(http_request *r, firn_arena *a, param_list *list)
{
    r->groups = NULL;
    r->n_groups = 0;
    if (list->n == 0)
        return;
    firn_sort(list->items, list->n, sizeof list->items[0], param_cmp);
    const char **values = firn_arena_alloc(a, list->n * sizeof *values);
    size_t n_groups = 1;
    for (size_t i = 1; i < list->n; i++)
        if (strcmp(list->items[i].name, list->items[i - 1].name) != 0)
            n_groups++;
    http_param_group *groups = firn_arena_alloc(a, n_groups * sizeof *groups);
    size_t g = 0;
    for (size_t i = 0; i < list->n; i++) {
        values[i] = list->items[i].value;
        if (i == 0 || strcmp(list->items[i].name, list->items[i - 1].name) != 0) {
            groups[g++] = (http_param_group){
                .name = list->items[i].name, .values = &values[i], .n_values = 0};
        }
        groups[g - 1].n_values++;
    }
    assert(g == n_groups);
    r->groups = groups;
    r->n_groups = n_groups;
}

int http_request_build(http_request *r, firn_arena *a, const http_request_parts *parts,
                      firn_err *err)
{
    /* Copies of what h2o holds already, within its caps (and the body
     * within max_body_bytes): the arena never answers NULL. */
    *r = (http_request){0};
    r->method = firn_arena_strndup(a, parts->method, parts->method_len);
    r->path = firn_arena_strndup(a, parts->path, parts->path_len);
    size_t body_len = parts->body ? parts->body_len : 0;
    char *body = firn_arena_alloc(a, body_len + 1);
    if (body_len)
        memcpy(body, parts->body, body_len);
    body[body_len] = '\0';
    r->body = body;
    r->body_len = body_len;
    r->too_large = parts->too_large;

    if (parts->n_headers) {
        r->headers = firn_arena_alloc(a, parts->n_headers * sizeof *r->headers);
        for (size_t i = 0; i < parts->n_headers; i++) {
            const http_header_part *h = &parts->headers[i];
            r->headers[i].name = firn_arena_strndup(a, h->name, h->name_len);
            r->headers[i].value = firn_arena_strndup(a, h->value, h->value_len);
        }
        r->n_headers = parts->n_headers;
    }

    /* Sized by the number of '&'-separated pieces, capped one past the
     * limit so that going over it is noticed without a huge array. */
    size_t bound = count_pairs_upper_bound(parts->query, parts->query_len);
    if (parts->form_body)
        bound += count_pairs_upper_bound(parts->body, body_len);
    if (bound > HTTP_PARAMS_MAX)
        bound = HTTP_PARAMS_MAX;
    param_list list = {0};
    if (bound) {
        list.items = firn_xreallocarray(NULL, bound, sizeof *list.items);
        list.cap = bound;
    }
    int rc = 0;
    if (parts->query)
        rc = parse_query(a, parts->query, parts->query_len, &list, err);
    if (rc == 0 && parts->form_body)
        rc = parse_query(a, body, body_len, &list, err);
    if (rc == 0)
        group_params(r, a, &list);
    free(list.items);
    return rc;
}

int http_request_make(firn_arena *a, const char *method, const char *path, const char *query,
                      size_t query_len, const void *body, size_t body_len, http_request **out,
                      firn_err *err)
{
    http_request *r = firn_arena_alloc(a, sizeof *r);
    const http_request_parts parts = {
        .method = method, .method_len = strlen(method),
        .path = path, .path_len = strlen(path),
        .query = query, .query_len = query_len,
        .body = body, .body_len = body_len,
    };
    int rc = http_request_build(r, a, &parts, err);
    if (rc == 0)
        *out = r;
    return rc;
}

bool http_is_form_content_type(const char *value, size_t len)
{
    static const char form[] = "application/x-www-form-urlencoded";
    size_t i = 0;
    while (i < len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    size_t end = i;
    while (end < len && value[end] != ';')
        end++;
    while (end > i && (value[end - 1] == ' ' || value[end - 1] == '\t'))
        end--;
    return end - i == sizeof form - 1 && strncasecmp(value + i, form, sizeof form - 1) == 0;
}

/* ---- accessors ------------------------------------------------------------ */

const char *http_request_method(const http_request *r)
{
    return r->method;
}

const char *http_request_path(const http_request *r)
{
    return r->path;
}

static int group_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const http_param_group *)elem)->name);
}

static const http_param_group *find_group(const http_request *r, const char *name)
{
    if (r->n_groups == 0)
        return NULL;
    return bsearch(name, r->groups, r->n_groups, sizeof r->groups[0], group_cmp);
}

const char *http_request_param(const http_request *r, const char *name)
{
    const http_param_group *g = find_group(r, name);
    return g ? g->values[0] : NULL;
}

size_t http_request_params(const http_request *r, const char *name, const char *const **values)
{
    const http_param_group *g = find_group(r, name);
    *values = g ? g->values : NULL;
    return g ? g->n_values : 0;
}

size_t http_request_param_count(const http_request *r)
{
    return r->n_groups;
}

const char *http_request_param_at(const http_request *r, size_t i, const char *const **values,
                                  size_t *n_values)
{
    assert(i < r->n_groups);
    *values = r->groups[i].values;
    *n_values = r->groups[i].n_values;
    return r->groups[i].name;
}

const char *http_request_header(const http_request *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

bool http_request_too_large(const http_request *r)
{
    return r->too_large;
}

const void *http_request_body(const http_request *r, size_t *len)
{
    if (len)
        *len = r->body_len;
    return r->body;
}

/* ---- responses ------------------------------------------------------------ */

void http_respond_text(http_response *resp, int status, const char *fmt, ...)
{
    free(resp->body);
    *resp = (http_response){.status = status};
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    char *body = firn_xmalloc((size_t)n + 2);
    va_start(ap, fmt);
    vsnprintf(body, (size_t)n + 1, fmt, ap);
    va_end(ap);
    body[n] = '\n';
    body[n + 1] = '\0';
    resp->body = body;
    resp->body_len = (size_t)n + 1;
}

/* ---- content negotiation ---- */

/* The q of one Accept-Encoding element's parameters ("; q=0.5"); 1 when
 * absent or malformed (RFC 9110 12.4.2: q defaults to 1). */
static double element_q(const char *params, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if ((params[i] == 'q' || params[i] == 'Q') && params[i + 1] == '=' &&
            (i == 0 || params[i - 1] == ';' || params[i - 1] == ' ')) {
            char num[16];
            size_t n = len - i - 2 < sizeof num - 1 ? len - i - 2 : sizeof num - 1;
            memcpy(num, params + i + 2, n);
            num[n] = '\0';
            char *end;
            double q = strtod(num, &end);
            return end == num ? 1 : q;
        }
    }
    return 1;
}

/* Whether an Accept-Encoding header accepts gzip: listed ("gzip" or
 * "x-gzip") with q > 0, or not listed and "*" with q > 0. */
bool http_accepts_gzip(const char *header)
{
    if (!header)
        return false;
    double gzip = -1, any = -1;
    for (const char *p = header; *p;) {
        size_t len = strcspn(p, ",");
        const char *tok = p;
        while (tok < p + len && (*tok == ' ' || *tok == '\t'))
            tok++;
        size_t tok_len = strcspn(tok, ";, \t");
        if (tok_len > (size_t)(p + len - tok))
            tok_len = (size_t)(p + len - tok);
        const char *params = tok + tok_len;
        double q = element_q(params, (size_t)(p + len - params));
        if ((tok_len == 4 && strncasecmp(tok, "gzip", 4) == 0) ||
            (tok_len == 6 && strncasecmp(tok, "x-gzip", 6) == 0))
            gzip = q > gzip ? q : gzip;
        else if (tok_len == 1 && *tok == '*')
            any = q;
        p += len;
        if (*p == ',')
            p++;
    }
    return gzip >= 0 ? gzip > 0 : any > 0;
}
