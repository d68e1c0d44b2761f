/* web.h -- firn's HTTP server: h2o's event loop, routes, and worker threads.
 *
 * Owns one listening socket and the threads that serve it:
 *  - one event-loop thread (h2o, libh2o-evloop) that accepts connections,
 *    parses requests, and sends responses.  Nothing that may block runs on
 *    it: routes registered without WEB_ROUTE_WORKER must be quick (health,
 *    metrics formatting, a small lookup).
 *  - a fixed pool of worker threads for WEB_ROUTE_WORKER routes (queries,
 *    ingest, a CPU profile that records for N seconds).  The request is
 *    copied off the loop (method, path, parameters, headers, body), the
 *    handler runs on a worker, and its response is handed back to the loop
 *    through h2o's multithread queue.  A client that disconnects meanwhile
 *    costs nothing but the handler's work.  When every worker is busy and
 *    the wait queue is full, the request gets 503 at once.
 *
 * Requests: GET, HEAD and POST.  Query parameters are percent-decoded ('+'
 * is a space) as Go's url.ParseQuery decodes them, and so are the
 * parameters of an application/x-www-form-urlencoded POST body, appended
 * after the URL's (Go's Request.Form puts the body's first), except on
 * WEB_ROUTE_RAW_BODY routes, whose bodies are uploads.  A malformed
 * escape or a ';' separator gets 400 with Go's message ("invalid URL escape
 * \"%zz\""); more than 10000 parameters 400.  Bodies larger than
 * max_body_bytes get 413 (from h2o itself when the length is declared or
 * the chunks run over); a path with no route 404 "404 page not found"; a
 * route with another method 405 with an Allow header.  HEAD is answered
 * like GET without the body.  Routing uses the path h2o has percent-decoded
 * and cleaned of "." and "..".
 *
 * TLS and authentication (web_options.web_config, Prometheus's web config:
 * config/web_config.h).  With tls_server_config the socket speaks HTTPS
 * only (HTTP/1.1 over TLS 1.2 or 1.3, client certificates as configured):
 * plain HTTP gets Go's "400 Bad Request ... Client sent an HTTP request to
 * an HTTPS server.", a failed handshake or 10 s of silence a closed
 * connection.  With basic_auth_users or firn_bearer_token_sha256 every
 * request, on every path (/-/healthy and /metrics too, as Prometheus), needs
 * a valid "Authorization: Basic" or "Bearer" credential; otherwise 401
 * "Unauthorized" with WWW-Authenticate: Basic (and Bearer when tokens are
 * configured).  A password is checked with bcrypt on a worker, never on the
 * loop, and the answer is cached under a keyed hash of user and password: a
 * "yes" until unused for WEB_AUTH_CACHE_TTL_S, a "no" for that long, so a
 * client that keeps sending the same credentials pays bcrypt once.  A
 * request whose credentials are not cached waits for a worker even on an
 * inline route, then is routed as usual.  Configured response headers go
 * on every response firn makes.  Bodies are read (up to max_body_bytes)
 * before credentials are checked: h2o 2.2 hands over whole requests.
 *
 * Self-metrics (web_metrics_write): firn_http_requests_total{code,handler},
 * firn_http_request_duration_seconds{handler} (a histogram),
 * firn_http_requests_in_flight, handler being the route's path as
 * registered, or "other" for paths with no route; with credentials
 * configured also firn_http_auth_bcrypt_checks_total{result} (passwords that
 * missed the cache).
 *
 * Memory: a web_request and everything it returns belong to the server and
 * live until the handler returns.  A handler puts a malloc'd body in the
 * response; the server frees it.
 * Threads: web_route before web_start, from one thread; handlers run on the
 * loop thread or a worker, as registered; web_metrics_write from any
 * thread; web_stop from the thread that started it.  The server's threads
 * block SIGPIPE (a client gone mid-response is an EPIPE, not a dead
 * process) and no other signal.
 */
#ifndef FIRN_WEB_H
#define FIRN_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/web_config.h"
#include "model/model.h"
#include "promql-like/pql.h"
#include "scrape/scrape.h"
#include "tsdb/tsdb.h"

#define WEB_DEFAULT_LISTEN ":7070"
#define WEB_DEFAULT_MAX_BODY (64u << 20)
#define WEB_AUTH_CACHE_TTL_S 60   /* how long a checked password is remembered unused */

typedef struct web_server web_server;
typedef struct web_request web_request;

typedef struct web_options {
    const char *listen_address;  /* "host:port", ":port" (all addresses), "[v6]:port" */
    size_t workers;              /* worker threads, 1..1024 (default 4) */
    size_t queue_max;            /* requests waiting for a worker before 503 (default 256;
                                  * 0: 503 whenever every worker is busy) */
    size_t max_body_bytes;       /* at least 1; default WEB_DEFAULT_MAX_BODY */
    const config_web *web_config;  /* --web.config.file: TLS, credentials, response
                                  * headers (see "TLS and authentication" above); NULL
                                  * (the default): plain HTTP, no credentials.  Must
                                  * outlive the server. */
} web_options;

void web_options_default(web_options *o);

typedef struct web_response {
    int status;                    /* 200 when left 0; outside 200..599 the client gets 500 */
    const char *content_type;      /* a static string; "text/plain; charset=utf-8" when NULL */
    const char *content_encoding;  /* a static string or NULL ("gzip") */
    const char *content_disposition;  /* a static string or NULL */
    const char *retry_after;       /* a static string or NULL: Retry-After (with 503) */
    bool go_pprof_error;           /* "X-Go-Pprof: 1": `go tool pprof` then prints the
                                      body of an error instead of only its status */
    char *body;                    /* malloc'd, freed by the server; may be NULL */
    size_t body_len;
} web_response;

typedef void (*web_handler_fn)(void *ctx, const web_request *req, web_response *resp);

enum web_route_flags {
    WEB_ROUTE_PREFIX = 1u << 0,  /* path matches itself and anything below it: "/a" matches
                                  * "/a" and "/a/b", not "/ab"; "/a/" matches "/a/" and
                                  * "/a/b", not "/a" */
    WEB_ROUTE_WORKER = 1u << 1,  /* run on a worker thread: may block */
    WEB_ROUTE_RAW_BODY = 1u << 2, /* never parse the body as a form, whatever its
                                  * Content-Type (uploads: `curl --data-binary` sends
                                  * pprof or folded stacks as form-urlencoded) */
};

/* The server, its socket bound and listening (so a port in use fails
 * here, with the address in the message: "listen tcp 127.0.0.1:7070:
 * address already in use"), no thread started yet.  o may be NULL for the
 * defaults.  ":port" listens on every IPv6 and IPv4 address; a host name
 * binds its first IPv4 address if it has one (as Go). */
web_server *web_new(const web_options *o, firn_err *err);
/* methods: "GET", "POST", "GET,POST" ("GET" also answers HEAD).  Exact
 * routes win over prefix routes; among prefixes the longest wins.  A path
 * is registered once (FIRN_EEXIST), since it is the handler label of the
 * route's metrics. */
int web_route(web_server *s, const char *methods, const char *path, unsigned flags,
              web_handler_fn fn, void *ctx, firn_err *err);
/* The port actually bound (useful with port 0). */
int web_port(const web_server *s);
int web_start(web_server *s, firn_err *err);
/* Stop accepting, answer requests still waiting for a worker 503, let
 * running handlers finish and their responses be written (clients that do
 * not read get 5 s), join the threads, free.  Accepts a server never
 * started, and NULL. */
void web_stop(web_server *s);

void web_metrics_write(web_server *s, firn_buf *b);

/* ---- requests ------------------------------------------------------------ */

const char *web_request_method(const web_request *r);   /* "GET", "HEAD", "POST" */
const char *web_request_path(const web_request *r);     /* without the query */
/* The first value of a parameter, or NULL. */
const char *web_request_param(const web_request *r, const char *name);
/* Every value of a parameter, in order (match[]); *values is NULL when 0. */
size_t web_request_params(const web_request *r, const char *name, const char *const **values);
/* A header by name, case-insensitively (the first when repeated), or NULL. */
const char *web_request_header(const web_request *r, const char *name);
/* The body, NUL-terminated after its len bytes ("" when there is none). */
const void *web_request_body(const web_request *r, size_t *len);

/* ---- responses ------------------------------------------------------------ */

/* Set resp to status with a copy of a printf-formatted text body (plain
 * text, newline added); a body already in resp is freed, and the content
 * type and encodings are reset. */
void web_respond_text(web_response *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- firn's endpoints ------------------------------------------------------
 *
 * web_api_register adds the endpoints of the running server:
 *   GET  /-/healthy, /-/ready         (Prometheus's lifecycle texts)
 *   POST /-/reload                    (only with enable_lifecycle; 403 else)
 *   GET  /metrics                     (text exposition: build info, process,
 *                                      HTTP, scrape, store, config reloads)
 *   GET  /api/v1/targets              (Prometheus's shape; state, scrapePool)
 *   GET|POST /api/v1/query, /api/v1/query_range, /api/v1/series,
 *        /api/v1/labels, /api/v1/query_exemplars; GET /api/v1/label/NAME/values,
 *        /api/v1/metadata, /api/v1/status/buildinfo, /config, /flags
 *                                     (Prometheus's query API: api_prom.c)
 *   GET|POST /api/v1/profile_types, /api/v1/profile
 *                                     (profile types; merge, single and diff
 *                                      queries as flamegraph JSON, top, pprof,
 *                                      collapsed, svg: api_profile.c)
 *   GET  /debug/pprof/, /debug/pprof/profile, /heap, /allocs  (selfprof/)
 * The struct must outlive the server.  reload runs on a worker thread.
 */
/* /debug/pprof/profile: the longest recording a request may ask for, and
 * how many may record at once (each holds a worker for its duration: firn
 * runs 8, so half stay for queries and ingest; firn's scrape of itself
 * takes one). */
#define WEB_MAX_PROFILE_SECONDS 600
#define WEB_MAX_CPU_PROFILE_REQUESTS 4

typedef struct web_api {
    tsdb *db;
    scrape_manager *scrape;
    bool enable_lifecycle;
    /* Reload the configuration; 0, or an error whose message says why. */
    int (*reload)(void *ctx, firn_err *err);
    void *reload_ctx;
    /* More families for /metrics (config reload state...); may be NULL. */
    void (*metrics)(void *ctx, firn_buf *b);
    void *metrics_ctx;
    /* /api/v1/status/flags: name, value, name, value, ..., NULL; may be NULL. */
    const char *const *flags;
    /* /api/v1/status/config: the running configuration's YAML, malloc'd (the
     * caller frees it), or NULL (then "").  Called on a worker thread. */
    char *(*config_yaml)(void *ctx);
    void *config_yaml_ctx;
    _Atomic int cpu_profile_requests;  /* /debug/pprof/profile requests recording */
    _Atomic uint64_t cpu_profile_refused_total;  /* refused: too many at once */
    _Atomic bool ready;             /* /-/ready says 503 until set */
    _Atomic bool stopping;          /* set before web_stop: long handlers end early */
    web_server *server;             /* set by web_api_register */
} web_api;

int web_api_register(web_server *s, web_api *api, firn_err *err);

/* ---- profile renderers (render.c) ------------------------------------------
 *
 * A profile query's result in the formats /api/v1/profile answers; firnctl
 * query profile prints the same.  Each appends to b and returns 0, or a
 * negative code (FIRN_ENOMEM when an append failed).  Trees of any depth;
 * names may hold any byte (escaped or replaced as each format needs).
 */

/* Collapsed stacks, flamegraph.pl's input: one line per node with a self
 * value, "frame;frame;... VALUE", root first with the root "total" left
 * out; a diff gives "... BASE COMPARE" (difffolded's input).  In names ';'
 * becomes ':' and line breaks spaces. */
int web_render_collapsed(firn_buf *b, const pql_tree *t);

/* The flame graph as a JSON object: profile_type, sample_type,
 * sample_unit, diff, total (and compare_total), root, functions.  A node is
 * {"name", "value" (cum), "self", "function" (index into functions; absent
 * for the root, "other" and group_by nodes), "children": [...]}, and
 * "compare_value", "compare_self" in a diff; a function is {"name",
 * "system_name", "filename", "start_line", "mapping"}.  Invalid UTF-8
 * comes out as U+FFFD. */
int web_render_flamegraph(firn_buf *b, const pql_tree *t);

typedef struct web_svg_options {
    const char *title;       /* NULL: "Flame Graph" ("Differential Flame Graph") */
    const char *subtitle;    /* NULL: the request's, if any */
    const pql_profile_request *request;  /* NULL, or what the subtitle describes:
                                          * the selectors and their times */
    int width;               /* pixels; 0: 1200 */
} web_svg_options;

/* A standalone SVG flame graph, root at the top, with a script: hover for
 * a frame's values, click to zoom into it, search by regular expression
 * (Ctrl-F) with the share matched.  Widths are cum values, colors a hash of
 * the function name; a diff is sized by the compare side and colored by the
 * change (red grew, blue shrank).  Frames narrower than 0.1 px are left
 * out, with everything under them.  o may be NULL. */
int web_render_svg(firn_buf *b, const pql_tree *t, const web_svg_options *o);

/* `go tool pprof -top`'s table of the first sample type, raw values:
 * flat, flat%, sum%, cum, cum%, name; max_rows 0 shows every function. */
int web_render_top_text(firn_buf *b, const pprof_profile *p, size_t max_rows, firn_err *err);
/* The same as a JSON object: sample_type, sample_unit, diff, total,
 * rows_total (rows before max_rows), rows [{"name", "flat", "cum"}] in
 * pprof's order.  With compare (may be NULL) also compare_total, and each
 * row compare_flat and compare_cum, sorted by the change of flat as
 * `go tool pprof -diff_base` sorts. */
int web_render_top_json(firn_buf *b, const pprof_profile *p, const pprof_profile *compare,
                        size_t max_rows, firn_err *err);

#endif
