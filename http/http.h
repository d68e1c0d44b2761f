/* http.h -- an HTTP server library: h2o's event loop, routes, worker threads,
 * request parsing, multipart bodies, TLS and credentials, request metrics.
 *
 * It knows nothing of profiles, the store, queries or scraping: firn's
 * endpoints (web/) and firn-agent's /metrics are built on it.
 *
 * Owns one listening socket and the threads that serve it:
 *  - one event-loop thread (h2o, libh2o-evloop) that accepts connections,
 *    parses requests, and sends responses.  Nothing that may block runs on
 *    it: routes registered without HTTP_ROUTE_WORKER must be quick (health,
 *    metrics formatting, a small lookup).
 *  - a fixed pool of worker threads for HTTP_ROUTE_WORKER routes (queries,
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
 * HTTP_ROUTE_RAW_BODY routes, whose bodies are uploads.  A malformed
 * escape or a ';' separator gets 400 with Go's message ("invalid URL escape
 * \"%zz\""); more than 10000 parameters 400.  A body over its route's cap
 * gets 413 (see "Request bodies"); a path with no route 404 "404 page not found"; a
 * route with another method 405 with an Allow header.  HEAD is answered
 * like GET without the body.  Routing uses the path h2o has percent-decoded
 * and cleaned of "." and "..".
 *
 * TLS and authentication (http_options.web_config, Prometheus's web config:
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
 * "yes" until unused for HTTP_AUTH_CACHE_TTL_S, a "no" for that long, so a
 * client that keeps sending the same credentials pays bcrypt once.  A
 * request whose credentials are not cached waits for a worker even on an
 * inline route, then is routed as usual.  At most max_password_checks such
 * checks are queued or running at once: past that, a password not in the
 * cache gets 503 with Retry-After at once, so guessing passwords cannot
 * take the workers from requests with known credentials.  Configured response headers go
 * on every response firn makes.
 *
 * Request bodies.  h2o 2.2 reads a whole body before a handler runs, so
 * the server judges each request's head as soon as it has arrived, before
 * h2o reads the body (HTTP/1.1 is all h2o speaks here):
 *  - cap: a POST route takes max_body_bytes, a GET-only route or a path
 *    with no route HTTP_SMALL_BODY_CAP; a declared length over it gets 413
 *    at once, a chunked body when it runs over.
 *  - credentials: with users or tokens configured, a body over
 *    HTTP_SMALL_BODY_CAP (or chunked) without credentials that may be
 *    valid (none, a wrong token, a password the cache knows is wrong) gets
 *    401 at once.  A password still to be checked may send its body.
 *  - budget: the bytes held for requests (head and body, from the first
 *    byte until the answer is written; a body bound for a worker counts
 *    twice, as the worker reads a copy) stay within
 *    max_body_bytes_in_flight: a request whose declared body would pass
 *    it gets 503 with Retry-After: 1 at once; a chunked body that passes
 *    it while it arrives, the same.  Requests without a body are not
 *    refused for it.
 *  These answers are written before the body is read, with "Connection:
 *  close"; the rest of the request (a chunked one up to max_body_bytes) is
 *  then read and dropped, within HTTP_REQUEST_TIMEOUT_S, and the
 *  connection closed, so that a client still sending reads the answer.  Over HTTPS firn cannot write past h2o: a refused
 *  request gets h2o's 413 instead, or a closed connection.  What h2o reads
 *  before firn sees it (bytes that come with the end of a TLS handshake,
 *  a request pipelined behind another) is judged from the next read: at
 *  most one read (a socket buffer) gets past per connection.
 *
 * Self-metrics (http_metrics_write): firn_http_requests_total{code,handler},
 * firn_http_request_duration_seconds{handler} (a histogram),
 * firn_http_requests_in_flight, handler being the route's path as
 * registered, or "other" for paths with no route; with credentials
 * configured also firn_http_auth_bcrypt_checks_total{result} (passwords that
 * missed the cache: ok, denied, or refused when max_password_checks were
 * already under way); firn_http_connections (open now);
 * firn_http_request_body_bytes_in_flight (the budget's count) and
 * firn_http_request_bodies_refused_total{reason="budget"|"unauthenticated"}.
 *
 * Connections: at most max_connections are open; while that many are, the
 * listener is not read and new clients wait in the kernel's backlog.  A
 * client must send a whole request (head and body: h2o's req_timeout is
 * not renewed while a body arrives) within HTTP_REQUEST_TIMEOUT_S of
 * connecting or of its previous response (slowloris), else h2o closes the
 * connection; over HTTPS the TLS handshake's first bytes within 10 s.
 *
 * Memory: a http_request and everything it returns belong to the server and
 * live until the handler returns.  A handler puts a malloc'd body in the
 * response; the server frees it.
 * Threads: http_route before http_start, from one thread; handlers run on the
 * loop thread or a worker, as registered; http_metrics_write from any
 * thread; http_stop from the thread that started it.  The server's threads
 * block SIGPIPE (a client gone mid-response is an EPIPE, not a dead
 * process) and no other signal.
 */
#ifndef FIRN_HTTP_H
#define FIRN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/web_config.h"
#include "model/model.h"

#define HTTP_DEFAULT_LISTEN ":7070"
#define HTTP_DEFAULT_MAX_BODY (64u << 20)
#define HTTP_DEFAULT_BODY_BYTES_IN_FLIGHT (256u << 20)
#define HTTP_SMALL_BODY_CAP (64u << 10)  /* the body cap of GET-only routes and unknown
                                          * paths, and of requests without credentials */
#define HTTP_AUTH_CACHE_TTL_S 60   /* how long a checked password is remembered unused */
#define HTTP_DEFAULT_MAX_CONNECTIONS 512   /* Prometheus's --web.max-connections */
#define HTTP_REQUEST_TIMEOUT_S 10  /* a request's head (and an idle keep-alive
                                    * connection) must arrive within it: h2o's
                                    * http1 req_timeout, set explicitly */

typedef struct http_server http_server;
typedef struct http_request http_request;

typedef struct http_options {
    const char *listen_address;  /* "host:port", ":port" (all addresses), "[v6]:port" */
    size_t workers;              /* worker threads, 1..1024 (default 4) */
    size_t queue_max;            /* requests waiting for a worker before 503 (default 256;
                                  * 0: 503 whenever every worker is busy) */
    size_t max_body_bytes;       /* at least 1; default HTTP_DEFAULT_MAX_BODY: the cap of
                                  * POST routes' bodies */
    size_t max_body_bytes_in_flight;  /* request bytes held at once, see "Request
                                  * bodies" (0: HTTP_DEFAULT_BODY_BYTES_IN_FLIGHT) */
    size_t max_connections;      /* open connections at most (--web.max-connections);
                                  * past it, new ones wait in the listen backlog
                                  * (0: HTTP_DEFAULT_MAX_CONNECTIONS) */
    size_t max_password_checks;  /* bcrypt checks queued or running at once; past it a
                                  * password not in the cache gets 503 at once
                                  * (0: a quarter of the workers, at least 1) */
    const config_web *web_config;  /* --web.config.file: TLS, credentials, response
                                  * headers (see "TLS and authentication" above); NULL
                                  * (the default): plain HTTP, no credentials.  Must
                                  * outlive the server. */
} http_options;

void http_options_default(http_options *o);

typedef struct http_response {
    int status;                    /* 200 when left 0; outside 200..599 the client gets 500 */
    const char *content_type;      /* a static string; "text/plain; charset=utf-8" when NULL */
    const char *content_encoding;  /* a static string or NULL ("gzip") */
    const char *content_disposition;  /* a static string or NULL */
    const char *retry_after;       /* a static string or NULL: Retry-After (with 503) */
    const char *accept_post;       /* a static string or NULL: Accept-Post (RFC 9110's
                                      companion for a 415 to a POST) */
    bool go_pprof_error;           /* "X-Go-Pprof: 1": `go tool pprof` then prints the
                                      body of an error instead of only its status */
    const char *cache_control;     /* a static string or NULL: Cache-Control */
    const char *vary;              /* a static string or NULL: Vary */
    char etag[40];                 /* the ETag, quotes included; "" for none */
    char *body;                    /* malloc'd, freed by the server; may be NULL */
    size_t body_len;
} http_response;

typedef void (*http_handler_fn)(void *ctx, const http_request *req, http_response *resp);

enum http_route_flags {
    HTTP_ROUTE_PREFIX = 1u << 0,  /* path matches itself and anything below it: "/a" matches
                                  * "/a" and "/a/b", not "/ab"; "/a/" matches "/a/" and
                                  * "/a/b", not "/a" */
    HTTP_ROUTE_WORKER = 1u << 1,  /* run on a worker thread: may block */
    HTTP_ROUTE_RAW_BODY = 1u << 2, /* never parse the body as a form, whatever its
                                  * Content-Type (uploads: `curl --data-binary` sends
                                  * pprof or folded stacks as form-urlencoded) */
    HTTP_ROUTE_TOO_LARGE = 1u << 3, /* a body over max_body_bytes is answered by the
                                  * handler, in its protocol, instead of a plain 413:
                                  * it runs on the loop thread with no body and
                                  * http_request_too_large true, and must answer at once */
    HTTP_ROUTE_MOUNTED = 1u << 4, /* also served under any path prefix: "/a/b" also
                                  * matches "/x/y/a/b" when no route matches that path
                                  * itself (a client given a base URL with a path, as
                                  * Grafana's data sources join theirs) */
};

/* The server, its socket bound and listening (so a port in use fails
 * here, with the address in the message: "listen tcp 127.0.0.1:7070:
 * address already in use"), no thread started yet.  o may be NULL for the
 * defaults.  ":port" listens on every IPv6 and IPv4 address; a host name
 * binds its first IPv4 address if it has one (as Go). */
http_server *http_new(const http_options *o, firn_err *err);
/* methods: "GET", "POST", "GET,POST" ("GET" also answers HEAD).  Exact
 * routes win over prefix routes; among prefixes the longest wins.  A path
 * is registered once (FIRN_EEXIST), since it is the handler label of the
 * route's metrics. */
int http_route(http_server *s, const char *methods, const char *path, unsigned flags,
              http_handler_fn fn, void *ctx, firn_err *err);
/* The port actually bound (useful with port 0). */
int http_port(const http_server *s);
int http_start(http_server *s, firn_err *err);
/* Stop accepting, answer requests still waiting for a worker 503, let
 * running handlers finish and their responses be written (clients that do
 * not read get 5 s), join the threads, free.  Accepts a server never
 * started, and NULL. */
void http_stop(http_server *s);

void http_metrics_write(http_server *s, firn_buf *b);

/* ---- requests ------------------------------------------------------------ */

/* A request of its own, for each item of a batch upload that names its
 * parameters as a URL query: method and path as given, query (raw, without
 * '?') decoded as a request's, body copied, no headers; all in a.  Errors
 * as for a request's query (FIRN_EINVAL naming a malformed escape,
 * FIRN_ETOOBIG past the parameter cap). */
int http_request_make(firn_arena *a, const char *method, const char *path, const char *query,
                      size_t query_len, const void *body, size_t body_len, http_request **out,
                      firn_err *err);

const char *http_request_method(const http_request *r);   /* "GET", "HEAD", "POST" */
const char *http_request_path(const http_request *r);     /* without the query */
/* The first value of a parameter, or NULL. */
const char *http_request_param(const http_request *r, const char *name);
/* Every value of a parameter, in order (match[]); *values is NULL when 0. */
size_t http_request_params(const http_request *r, const char *name, const char *const **values);
/* How many distinct parameter names the request has. */
size_t http_request_param_count(const http_request *r);
/* The i-th distinct parameter name (sorted by strcmp), i below
 * http_request_param_count, with every value of it in order. */
const char *http_request_param_at(const http_request *r, size_t i, const char *const **values,
                                  size_t *n_values);
/* A header by name, case-insensitively (the first when repeated), or NULL. */
const char *http_request_header(const http_request *r, const char *name);
/* Whether an Accept-Encoding header value takes gzip (RFC 9110 12.5.3):
 * "gzip" or "x-gzip" listed with q > 0, or not listed and "*" with q > 0;
 * NULL (no header) takes none. */
bool http_accepts_gzip(const char *accept_encoding);
/* The body, NUL-terminated after its len bytes ("" when there is none). */
const void *http_request_body(const http_request *r, size_t *len);
/* Whether the body was refused as over max_body_bytes (HTTP_ROUTE_TOO_LARGE). */
bool http_request_too_large(const http_request *r);

/* ---- responses ------------------------------------------------------------ */

/* Set resp to status with a copy of a printf-formatted text body (plain
 * text, newline added); a body already in resp is freed, and the content
 * type and encodings are reset. */
void http_respond_text(http_response *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- multipart/form-data bodies (multipart.c) ---------------------------- */

/* Most parts a multipart body may have. */
#define HTTP_MULTIPART_PARTS_MAX 64

typedef struct http_multipart_part {
    const char *name;          /* the form field (Content-Disposition name) */
    const char *filename;      /* NULL when absent */
    const char *content_type;  /* NULL when absent */
    const char *data;          /* into the body, not NUL-terminated */
    size_t len;
} http_multipart_part;

/* Whether a Content-Type value is multipart/form-data (parameters aside). */
bool http_is_multipart_content_type(const char *value);
/* Split a multipart/form-data body (RFC 7578), its boundary taken from
 * content_type; parts without a name are skipped (as Go's ReadForm does).
 * The parts array and header values live in a; data points into body.
 * FIRN_EINVAL saying what is wrong (no boundary, no closing delimiter...),
 * FIRN_ETOOBIG past HTTP_MULTIPART_PARTS_MAX parts or 16 KiB of headers. */
int http_multipart_parse(const char *content_type, const char *body, size_t len, firn_arena *a,
                        http_multipart_part **parts, size_t *n_parts, firn_err *err);
/* The first part with this name, or NULL. */
const http_multipart_part *http_multipart_get(const http_multipart_part *parts, size_t n,
                                            const char *name);

#endif
