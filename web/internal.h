/* internal.h -- what web/'s files share: the request a handler sees and how
 * it is built from the parts of an HTTP request.
 *
 * request.c knows nothing of h2o: the server (server.c) hands it plain
 * bytes (method, path, raw query, headers, body), and everything it builds
 * lives in one firn_arena, so a request can cross to a worker thread and be
 * freed at once.  Keeping the decoding apart also keeps it testable and
 * fuzzable without a socket.
 */
#ifndef FIRN_WEB_INTERNAL_H
#define FIRN_WEB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "model/model.h"
#include "web/web.h"

/* Most parameters (URL and form body together) a request may carry. */
#define WEB_PARAMS_MAX 10000

typedef struct web_header {
    const char *name;
    const char *value;
} web_header;

/* Every value of one parameter name, in the order they came. */
typedef struct web_param_group {
    const char *name;
    const char **values;
    size_t n_values;
} web_param_group;

struct web_request {
    const char *method;
    const char *path;
    web_param_group *groups;  /* sorted by name (strcmp), for bsearch */
    size_t n_groups;
    web_header *headers;      /* as received, names as h2o gives them (lower case) */
    size_t n_headers;
    const char *body;         /* NUL-terminated copy; "" when there is none */
    size_t body_len;
};

/* A header as h2o holds it: not NUL-terminated. */
typedef struct web_header_part {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} web_header_part;

/* The parts of a request as they arrived; nothing here needs to be
 * NUL-terminated. */
typedef struct web_request_parts {
    const char *method;
    size_t method_len;
    const char *path;        /* already percent-decoded by h2o */
    size_t path_len;
    const char *query;       /* the raw query, without '?'; may be NULL */
    size_t query_len;
    const web_header_part *headers;
    size_t n_headers;
    const char *body;        /* may be NULL */
    size_t body_len;
    bool form_body;          /* body is application/x-www-form-urlencoded: parse it */
} web_request_parts;

/* Build *r from parts, copying everything into a: URL parameters first,
 * then the form body's.  FIRN_EINVAL with Go's message for a malformed
 * escape ("invalid URL escape \"%zz\"") or a ';' separator,
 * FIRN_ETOOBIG past WEB_PARAMS_MAX parameters, FIRN_ENOMEM. */
int web_request_build(web_request *r, firn_arena *a, const web_request_parts *parts,
                      firn_err *err);

/* Whether a Content-Type value names application/x-www-form-urlencoded
 * (case-insensitive, parameters such as "; charset=utf-8" ignored). */
bool web_is_form_content_type(const char *value, size_t len);

/* ---- JSON responses and API parameters (json.c) --------------------------- */

/* Send j (taken, also on failure) as application/json with status. */
void web_respond_json(web_response *resp, int status, json_t *j);
/* 200 {"status":"success","data":data} (data taken). */
void web_respond_data(web_response *resp, json_t *data);
/* Prometheus's error envelope {"status":"error","errorType":type,"error":msg}
 * with the status Prometheus gives type: bad_data 400, execution 422,
 * canceled 499, timeout 503, internal 500, not_found 404,
 * not_acceptable 406, unavailable 500. */
void web_respond_error(web_response *resp, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A time as Prometheus's API takes it: a float of Unix seconds (rounded to
 * ms) or RFC3339 / RFC3339Nano.  FIRN_EINVAL with a message. */
int web_parse_time(const char *s, int64_t *ms, firn_err *err);
/* A duration: a float of seconds or a Prometheus duration ("15s", "1m"). */
int web_parse_duration(const char *s, int64_t *ms, firn_err *err);

/* ---- the API's parts, each registered by web_api_register ----------------- */

int web_api_prom_register(web_server *s, web_api *api, firn_err *err);     /* api_prom.c */
int web_api_profile_register(web_server *s, web_api *api, firn_err *err);  /* api_profile.c */
int web_api_ingest_register(web_server *s, web_api *api, firn_err *err);   /* api_ingest.c */

/* ---- Prometheus query results (json.c; firnctl prints them too) ---------- */

struct pql_result;

/* Prometheus's cap on a range query's points per series. */
#define WEB_QUERY_RANGE_POINTS_MAX 11000
/* Room for any value web_format_value writes, NUL included. */
#define WEB_VALUE_MAX 40

/* Milliseconds as seconds with 3 decimals, none when whole (Prometheus's
 * jsonutil.MarshalTimestamp): 1700000000500 -> 1700000000.500. */
void web_json_timestamp(firn_buf *b, int64_t ms);
/* A sample value as Prometheus writes it: Go's strconv.FormatFloat(v, 'f',
 * -1, 64), or 'e' when v != 0 and |v| < 1e-6 or |v| >= 1e21; "NaN",
 * "+Inf", "-Inf".  Returns the length. */
size_t web_format_value(double v, char *buf, size_t size);
/* s as a JSON string escaped as Go's encoding/json does (<, >, & and
 * U+2028/9 as \u escapes; invalid UTF-8 as \ufffd). */
void web_json_string(firn_buf *b, const char *s);
/* A label set as a JSON object, in the set's (sorted) order. */
void web_json_labels(firn_buf *b, const firn_label *labels, size_t n);
/* The "data" of a query's success, {"resultType":...,"result":...}. */
void web_json_pql_result(firn_buf *b, const struct pql_result *r);
/* A range query's bounds as Prometheus checks them: FIRN_EINVAL with its
 * message (end before start, step <= 0, more than 11,000 points). */
int web_query_range_check(int64_t start_ms, int64_t end_ms, int64_t step_ms, firn_err *err);

/* ---- ingest: uploads as Pyroscope clients send them (multipart.c,
 * api_ingest.c; exposed for tests and fuzz targets) ------------------------ */

/* Most parts a multipart body may have. */
#define WEB_MULTIPART_PARTS_MAX 64

typedef struct web_multipart_part {
    const char *name;          /* the form field (Content-Disposition name) */
    const char *filename;      /* NULL when absent */
    const char *content_type;  /* NULL when absent */
    const char *data;          /* into the body, not NUL-terminated */
    size_t len;
} web_multipart_part;

/* Whether a Content-Type value is multipart/form-data (parameters aside). */
bool web_is_multipart_content_type(const char *value);
/* Split a multipart/form-data body (RFC 7578), its boundary taken from
 * content_type; parts without a name are skipped (as Go's ReadForm does).
 * The parts array and header values live in a; data points into body.
 * FIRN_EINVAL saying what is wrong (no boundary, no closing delimiter...),
 * FIRN_ETOOBIG past WEB_MULTIPART_PARTS_MAX parts or 16 KiB of headers. */
int web_multipart_parse(const char *content_type, const char *body, size_t len, firn_arena *a,
                        web_multipart_part **parts, size_t *n_parts, firn_err *err);
/* The first part with this name, or NULL. */
const web_multipart_part *web_multipart_get(const web_multipart_part *parts, size_t n,
                                            const char *name);

/* Pyroscope's "name" parameter, app.name{k=v,k2=v2}: the application name
 * before the braces (Pyroscope's rule: [A-Za-z0-9_.\-/]+, trimmed) and the
 * labels in them (names with '.' turned into '_', then checked as
 * Prometheus names; values trimmed; no __name__), into a.  FIRN_EINVAL
 * saying what is wrong. */
int web_pyroscope_name_parse(const char *s, firn_arena *a, const char **app,
                             firn_label **labels, size_t *n_labels, firn_err *err);

/* The profile name Pyroscope gives a pprof upload by its sample types
 * (display names from sample_type_config when config is not NULL): "wall"
 * when one is wall; else by the first that matches: process_cpu (contains
 * cpu; "samples" is cpu), memory (alloc_*, inuse_*, space, objects), mutex
 * (mutex_*), block (block_*), goroutines; else the last one's name, or NULL
 * when fallback is false. */
const char *web_pyroscope_profile_name(const pprof_profile *p, json_t *config, bool fallback);

/* How collapsed stacks become a one-column profile. */
typedef struct web_folded_type {
    const char *sample_type, *sample_unit;
    const char *period_type, *period_unit;  /* "" when none */
    int64_t period;
    int64_t scale;   /* every value is multiplied by it (1, or a CPU period) */
    bool lines;      /* Pyroscope's "lines": one stack per line, each counted once */
} web_folded_type;

/* Most frames in one collapsed stack. */
#define WEB_FOLDED_DEPTH_MAX 16384

/* Collapsed stacks ("root;child;leaf 12" per line, flamegraph.pl's and
 * Pyroscope's "folded" format) as a pprof profile with one sample per
 * distinct stack; blank lines and lines without a value are skipped, as
 * Pyroscope skips them.  FIRN_EINVAL naming the line of a bad value. */
pprof_profile *web_folded_parse(const char *body, size_t len, const web_folded_type *t,
                                firn_err *err);

#endif
