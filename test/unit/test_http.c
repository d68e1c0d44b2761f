/* test_http.c -- the HTTP server library (http/) through real sockets on loopback:
 * routing, methods, parameters and their decoding, bodies, worker routes,
 * the bounded queue, clients that go away, shutdown, listen addresses and
 * the server's own metrics.  libcurl is the client; raw sockets where a
 * test needs to control exactly when a client leaves.
 *
 * No sleeps: a test that needs a handler to be running waits on a gate the
 * handler signals, and releases it when it is ready. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <zlib.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/model.h"
#include "http_reply.h"
#include "http/http.h"
#include "http/internal.h"

#define MAX_BODY 4096

#include "h2o_lsan.h"

/* ---- handlers -------------------------------------------------------------- */

static void h_hello(void *ctx, const http_request *r, http_response *resp)
{
    (void)ctx;
    (void)r;
    http_respond_text(resp, 200, "hello");
}

/* Every value of a few parameter names, one line each: "a=[1,2]". */
static void h_echo(void *ctx, const http_request *r, http_response *resp)
{
    (void)ctx;
    static const char *const names[] = {"a", "b", "q", "u", "match[]", "x", "empty"};
    firn_buf b = {0};
    firn_buf_printf(&b, "method=%s path=%s\n", http_request_method(r), http_request_path(r));
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *const *values;
        size_t n = http_request_params(r, names[i], &values);
        if (n == 0) {
            assert_null(values);
            assert_null(http_request_param(r, names[i]));
            continue;
        }
        assert_string_equal(http_request_param(r, names[i]), values[0]);
        firn_buf_printf(&b, "%s=[", names[i]);
        for (size_t j = 0; j < n; j++)
            firn_buf_printf(&b, "%s%s", j ? "," : "", values[j]);
        firn_buf_puts(&b, "]\n");
    }
    size_t body_len;
    http_request_body(r, &body_len);
    firn_buf_printf(&b, "body=%zu\n", body_len);
    resp->status = 200;
    resp->body = firn_buf_take(&b, &resp->body_len);
}

static void h_headers(void *ctx, const http_request *r, http_response *resp)
{
    (void)ctx;
    const char *v = http_request_header(r, "X-TEST");
    http_respond_text(resp, 200, "x-test=%s", v ? v : "(none)");
    resp->content_type = "application/x-test";
    resp->content_encoding = "gzip";
    resp->content_disposition = "attachment; filename=\"p.pb.gz\"";
}

static void h_worker(void *ctx, const http_request *r, http_response *resp)
{
    (void)ctx;
    const char *n = http_request_param(r, "n");
    /* A little work, so that concurrent requests overlap on the workers. */
    unsigned long x = 0;
    for (int i = 0; i < 10000; i++)
        x = x * 31 + (unsigned long)i;
    http_respond_text(resp, 201, "worker %s %lu", n ? n : "-", x % 2);
}

static void h_prefix(void *ctx, const http_request *r, http_response *resp)
{
    http_respond_text(resp, 200, "prefix %s %s", (const char *)ctx, http_request_path(r));
}

/* A protocol with its own answer to a body over the cap. */
static void h_own_413(void *ctx, const http_request *r, http_response *resp)
{
    (void)ctx;
    if (http_request_too_large(r)) {
        http_respond_text(resp, 429, "too large, said the handler");
        resp->content_type = "application/json";
        return;
    }
    size_t len;
    http_request_body(r, &len);
    http_respond_text(resp, 200, "body=%zu", len);
}

static void h_empty(void *ctx, const http_request *r, http_response *resp)
{
    (void)ctx;
    (void)r;
    resp->status = 204;
}

/* More than loopback's socket buffers hold (tcp_wmem's max is 4 MiB by
 * default), for a client that does not read. */
#define BIG_BODY (32u << 20)

static void h_big(void *ctx, const http_request *r, http_response *resp)
{
    (void)ctx;
    (void)r;
    resp->body = malloc(BIG_BODY);
    if (resp->body) {
        memset(resp->body, 'x', BIG_BODY);
        resp->body_len = BIG_BODY;
    }
}

/* The n-th byte of /text's body: text that compresses, yet not a run. */
static char text_byte(size_t i)
{
    return (char)('a' + (i * 7 + i / 13) % 26);
}

/* /text?n=N&type=T[&encoded][&etag]: N bytes of text_byte as T (default
 * application/json), labelled Content-Encoding: gzip with "encoded" (as a
 * handler that compressed its body itself would), with a strong ETag with
 * "etag". */
static void h_text(void *ctx, const http_request *r, http_response *resp)
{
    (void)ctx;
    const char *n = http_request_param(r, "n"), *type = http_request_param(r, "type");
    size_t len = n ? strtoul(n, NULL, 10) : 0;
    resp->body = malloc(len + 1);
    assert_non_null(resp->body);
    for (size_t i = 0; i < len; i++)
        resp->body[i] = text_byte(i);
    resp->body_len = len;
    resp->content_type = type ? type : "application/json";
    resp->content_encoding = http_request_param(r, "encoded") ? "gzip" : NULL;
    if (http_request_param(r, "etag"))
        snprintf(resp->etag, sizeof resp->etag, "\"v1\"");
}

static void h_fail(void *ctx, const http_request *r, http_response *resp)
{
    (void)ctx;
    (void)r;
    resp->status = 42;  /* not an HTTP status: the server answers 500 */
}

/* A handler that blocks until the test opens the gate. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int entered;
    bool open;
} gate;

static gate the_gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false};

static void gate_reset(void)
{
    pthread_mutex_lock(&the_gate.mu);
    the_gate.entered = 0;
    the_gate.open = false;
    pthread_mutex_unlock(&the_gate.mu);
}

static void gate_wait_entered(int n)
{
    pthread_mutex_lock(&the_gate.mu);
    while (the_gate.entered < n)
        pthread_cond_wait(&the_gate.cv, &the_gate.mu);
    pthread_mutex_unlock(&the_gate.mu);
}

static void gate_open(void)
{
    pthread_mutex_lock(&the_gate.mu);
    the_gate.open = true;
    pthread_cond_broadcast(&the_gate.cv);
    pthread_mutex_unlock(&the_gate.mu);
}

static void h_block(void *ctx, const http_request *r, http_response *resp)
{
    (void)ctx;
    (void)r;
    pthread_mutex_lock(&the_gate.mu);
    the_gate.entered++;
    pthread_cond_broadcast(&the_gate.cv);
    while (!the_gate.open)
        pthread_cond_wait(&the_gate.cv, &the_gate.mu);
    pthread_mutex_unlock(&the_gate.mu);
    http_respond_text(resp, 200, "released");
}

/* ---- servers --------------------------------------------------------------- */

/* max_body_bytes_in_flight of the servers started next (0: the default). */
static size_t servers_in_flight;

/* A started server with the test routes; NULL (with err) when http_new
 * fails. */
static http_server *try_start_server(const char *listen, size_t workers, size_t queue_max,
                                    size_t max_body, firn_err *err)
{
    http_options o;
    http_options_default(&o);
    o.listen_address = listen;
    o.workers = workers;
    o.queue_max = queue_max;
    o.max_body_bytes = max_body;
    o.max_body_bytes_in_flight = servers_in_flight;
    http_server *s = http_new(&o, err);
    if (!s)
        return NULL;
    assert_true(http_port(s) > 0);
#define ROUTE(m, p, f, fn, c) assert_int_equal(http_route(s, m, p, f, fn, c, err), 0)
    ROUTE("GET", "/hello", 0, h_hello, NULL);
    ROUTE("GET,POST", "/echo", 0, h_echo, NULL);
    ROUTE("POST", "/post", 0, h_echo, NULL);
    ROUTE("GET", "/headers", 0, h_headers, NULL);
    ROUTE("GET", "/worker", HTTP_ROUTE_WORKER, h_worker, NULL);
    ROUTE("GET,POST", "/wecho", HTTP_ROUTE_WORKER, h_echo, NULL);
    ROUTE("GET", "/block", HTTP_ROUTE_WORKER, h_block, NULL);
    ROUTE("GET", "/static", HTTP_ROUTE_PREFIX, h_prefix, "static");
    ROUTE("GET", "/static/deep/", HTTP_ROUTE_PREFIX, h_prefix, "deep");
    ROUTE("GET", "/static/exact", 0, h_prefix, "exact");
    ROUTE("GET", "/mounted/x", HTTP_ROUTE_MOUNTED, h_prefix, "mounted");
    ROUTE("GET", "/svc", HTTP_ROUTE_MOUNTED | HTTP_ROUTE_PREFIX, h_prefix, "svc");
    ROUTE("POST", "/own413", HTTP_ROUTE_TOO_LARGE | HTTP_ROUTE_WORKER, h_own_413, NULL);
    ROUTE("GET", "/empty", 0, h_empty, NULL);
    ROUTE("GET", "/fail", HTTP_ROUTE_WORKER, h_fail, NULL);
    ROUTE("GET", "/big", 0, h_big, NULL);
    ROUTE("GET", "/text", 0, h_text, NULL);
#undef ROUTE
    if (http_start(s, err) < 0)
        fail_msg("http_start: %s", err->msg);
    return s;
}

static http_server *start_server(const char *listen, size_t workers, size_t queue_max,
                                size_t max_body)
{
    firn_err err = {0};
    http_server *s = try_start_server(listen, workers, queue_max, max_body, &err);
    if (!s)
        fail_msg("http_new: %s", err.msg);
    return s;
}

/* ---- the client -------------------------------------------------------------- */

/* Where the client connects ("[::1]" in the IPv6 test). */
static const char *client_host = "127.0.0.1";


static CURL *easy_new(http_server *s, const char *method, const char *target, const char *body,
                      size_t body_len, struct curl_slist *headers, reply *out)
{
    char url[2048];
    snprintf(url, sizeof url, "http://%s:%d%s", client_host, http_port(s), target);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &out->headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);  /* a hung server fails the test, not CI */
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    if (headers)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    return c;
}

/* One request; a transport error fails the test. */
static reply http(http_server *s, const char *method, const char *target, const char *body,
                  const char *content_type)
{
    reply r = {0};
    struct curl_slist *headers = NULL;
    char ct[256];
    if (content_type) {
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        headers = curl_slist_append(headers, ct);
    }
    /* Big bodies are sent at once, not after "Expect: 100-continue". */
    headers = curl_slist_append(headers, "Expect:");
    CURL *c = easy_new(s, method, target, body, body ? strlen(body) : 0, headers, &r);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
        fail_msg("%s %s: %s", method, target, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(c);
    curl_slist_free_all(headers);
    return r;
}

static void expect(http_server *s, const char *method, const char *target, const char *body,
                   const char *content_type, long status, const char *want_body)
{
    reply r = http(s, method, target, body, content_type);
    if (r.status != status || (want_body && strcmp(body_of(&r), want_body) != 0))
        fail_msg("%s %s: got %ld \"%s\", want %ld \"%s\"", method, target, r.status,
                 body_of(&r), status, want_body ? want_body : "*");
    reply_free(&r);
}

/* A request on its own thread, for tests where requests must overlap. */
typedef struct client {
    pthread_t thread;
    http_server *server;
    const char *target;
    reply r;
    bool open_gate_on_shutdown;   /* open the gate once answered "server shutting down" */
} client;

/* Completed clients, so a test can wait for the first answer. */
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static int done_count;

static void *client_main(void *arg)
{
    client *c = arg;
    c->r = http(c->server, "GET", c->target, NULL, NULL);
    if (c->open_gate_on_shutdown && strcmp(body_of(&c->r), "server shutting down\n") == 0)
        gate_open();
    pthread_mutex_lock(&done_mu);
    done_count++;
    pthread_cond_broadcast(&done_cv);
    pthread_mutex_unlock(&done_mu);
    return NULL;
}

static void client_start(client *c, http_server *s, const char *target)
{
    c->server = s;
    c->target = target;
    assert_int_equal(pthread_create(&c->thread, NULL, client_main, c), 0);
}

static void wait_done(int n)
{
    pthread_mutex_lock(&done_mu);
    while (done_count < n)
        pthread_cond_wait(&done_cv, &done_mu);
    pthread_mutex_unlock(&done_mu);
}

static void reset_done(void)
{
    pthread_mutex_lock(&done_mu);
    done_count = 0;
    pthread_mutex_unlock(&done_mu);
}

/* A raw connection, for clients that leave at a moment of the test's
 * choosing. */
static int raw_connect(http_server *s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port(s))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void raw_send(int fd, const char *s)
{
    size_t len = strlen(s);
    assert_int_equal(send(fd, s, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* ---- tests ----------------------------------------------------------------- */

static int setup_server(void **state)
{
    *state = start_server("127.0.0.1:0", 4, 256, MAX_BODY);
    return 0;
}

static int teardown_server(void **state)
{
    http_stop(*state);
    return 0;
}

static void test_inline_get_and_head(void **state)
{
    http_server *s = *state;
    reply r = http(s, "GET", "/hello", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(body_of(&r), "hello\n");
    assert_string_equal(header_of(&r, "content-type"), "text/plain; charset=utf-8");
    assert_string_equal(header_of(&r, "content-length"), "6");
    reply_free(&r);

    r = http(s, "HEAD", "/hello", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(body_of(&r), "");
    assert_string_equal(header_of(&r, "content-length"), "6");
    reply_free(&r);

    expect(s, "GET", "/empty", NULL, NULL, 204, "");
}

static void test_not_found_and_method_not_allowed(void **state)
{
    http_server *s = *state;
    expect(s, "GET", "/nope", NULL, NULL, 404, "404 page not found\n");
    expect(s, "GET", "/hello/more", NULL, NULL, 404, NULL);  /* exact routes are exact */
    expect(s, "GET", "/", NULL, NULL, 404, NULL);

    reply r = http(s, "POST", "/hello", "a=1", NULL);
    assert_int_equal(r.status, 405);
    assert_string_equal(header_of(&r, "allow"), "GET, HEAD");
    reply_free(&r);
    r = http(s, "GET", "/post", NULL, NULL);
    assert_int_equal(r.status, 405);
    assert_string_equal(header_of(&r, "allow"), "POST");
    reply_free(&r);
    r = http(s, "DELETE", "/echo", NULL, NULL);
    assert_int_equal(r.status, 405);
    assert_string_equal(header_of(&r, "allow"), "GET, HEAD, POST");
    reply_free(&r);
    r = http(s, "PUT", "/hello", "x", NULL);
    assert_int_equal(r.status, 405);
    reply_free(&r);
}

static void test_prefix_routes(void **state)
{
    http_server *s = *state;
    expect(s, "GET", "/static", NULL, NULL, 200, "prefix static /static\n");
    expect(s, "GET", "/static/a/b", NULL, NULL, 200, "prefix static /static/a/b\n");
    expect(s, "GET", "/static/deep/x", NULL, NULL, 200, "prefix deep /static/deep/x\n");
    expect(s, "GET", "/static/deep/", NULL, NULL, 200, "prefix deep /static/deep/\n");
    /* "/static/deep/" covers what is below it, not "/static/deep" itself. */
    expect(s, "GET", "/static/deep", NULL, NULL, 200, "prefix static /static/deep\n");
    expect(s, "GET", "/static/exact", NULL, NULL, 200, "prefix exact /static/exact\n");
    expect(s, "GET", "/staticx", NULL, NULL, 404, NULL);
    /* h2o decodes and cleans the path before routing. */
    expect(s, "GET", "/static/%61/../b", NULL, NULL, 200, "prefix static /static/b\n");
    /* mounted routes: also under any prefix of whole segments, the whole
     * path handed over; a route that matches the path itself comes first */
    expect(s, "GET", "/mounted/x", NULL, NULL, 200, "prefix mounted /mounted/x\n");
    expect(s, "GET", "/p/q/mounted/x", NULL, NULL, 200, "prefix mounted /p/q/mounted/x\n");
    expect(s, "GET", "/pmounted/x", NULL, NULL, 404, NULL);
    expect(s, "GET", "/p/mounted/x/y", NULL, NULL, 404, NULL);
    expect(s, "GET", "/p/svc/m", NULL, NULL, 200, "prefix svc /p/svc/m\n");
    expect(s, "GET", "/static/svc/m", NULL, NULL, 200, "prefix static /static/svc/m\n");
    /* not mounted: no prefix */
    expect(s, "GET", "/p/hello", NULL, NULL, 404, NULL);
}

static void test_params_decoding(void **state)
{
    http_server *s = *state;
    expect(s, "GET", "/echo?q=a+b%20c&u=%E2%82%AC&x&empty=&&", NULL, NULL, 200,
           "method=GET path=/echo\nq=[a b c]\nu=[\xe2\x82\xac]\nx=[]\nempty=[]\nbody=0\n");
    expect(s, "GET", "/echo?match[]=up&x=1&match%5B%5D=%7Bjob%3D%22a%22%7D&match[]=down", NULL,
           NULL, 200, "method=GET path=/echo\nmatch[]=[up,{job=\"a\"},down]\nx=[1]\nbody=0\n");
    /* The same through a worker. */
    expect(s, "GET", "/wecho?a=2&a=1&b=%2B", NULL, NULL, 200,
           "method=GET path=/wecho\na=[2,1]\nb=[+]\nbody=0\n");
}

/* A request of its own for a batch item: its query decoded as a URL's,
 * its body as given, no headers; a bad escape refused with Go's message. */
static void test_request_make(void **state)
{
    (void)state;
    firn_arena *a = firn_arena_new(0);
    assert_non_null(a);
    http_request *r = NULL;
    firn_err err = {0};
    static const char q[] = "name=process_cpu&pid=42&comm=a+b%2Fc&pid=43";
    assert_int_equal(http_request_make(a, "POST", "/api/v1/ingest", q, sizeof q - 1, "\x1f\x8b",
                                       2, &r, &err), 0);
    assert_string_equal(http_request_method(r), "POST");
    assert_string_equal(http_request_path(r), "/api/v1/ingest");
    assert_string_equal(http_request_param(r, "name"), "process_cpu");
    assert_string_equal(http_request_param(r, "comm"), "a b/c");
    const char *const *values;
    assert_int_equal(http_request_params(r, "pid", &values), 2);
    assert_string_equal(values[1], "43");
    size_t len;
    const char *body = http_request_body(r, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(body, "\x1f\x8b", 2);
    assert_null(http_request_header(r, "Content-Type"));
    assert_int_equal(http_request_make(a, "POST", "/x", "a=%zz", 5, NULL, 0, &r, &err), FIRN_EINVAL);
    assert_string_equal(err.msg, "invalid URL escape \"%zz\"");
    firn_arena_free(a);
}

static void test_params_malformed(void **state)
{
    http_server *s = *state;
    expect(s, "GET", "/echo?a=%zz", NULL, NULL, 400, "invalid URL escape \"%zz\"\n");
    expect(s, "GET", "/echo?a=1&b=%4", NULL, NULL, 400, "invalid URL escape \"%4\"\n");
    /* The name and the value are decoded apart, as in Go. */
    expect(s, "GET", "/echo?a%=1", NULL, NULL, 400, "invalid URL escape \"%\"\n");
    expect(s, "GET", "/echo?a=%", NULL, NULL, 400, "invalid URL escape \"%\"\n");
    expect(s, "GET", "/echo?a=1;b=2", NULL, NULL, 400, "invalid semicolon separator in query\n");
    expect(s, "POST", "/echo?a=1", "b=%G1", "application/x-www-form-urlencoded", 400,
           "invalid URL escape \"%G1\"\n");
    expect(s, "GET", "/wecho?a=%zz", NULL, NULL, 400, "invalid URL escape \"%zz\"\n");
    /* Not a form: the body is not parsed. */
    expect(s, "POST", "/echo?a=1", "b=%G1", "text/plain", 200,
           "method=POST path=/echo\na=[1]\nbody=5\n");
}

static void test_post_form_after_url(void **state)
{
    http_server *s = *state;
    expect(s, "POST", "/echo?a=1&x=u", "a=2&b=3&a=4&match[]=m%2Bn",
           "application/x-www-form-urlencoded", 200,
           "method=POST path=/echo\na=[1,2,4]\nb=[3]\nmatch[]=[m+n]\nx=[u]\nbody=25\n");
    expect(s, "POST", "/wecho", "q=a+b", "Application/X-WWW-Form-Urlencoded; charset=utf-8", 200,
           "method=POST path=/wecho\nq=[a b]\nbody=5\n");
    /* A GET's body is never a form. */
    expect(s, "GET", "/echo?a=1", NULL, NULL, 200, "method=GET path=/echo\na=[1]\nbody=0\n");
}

static void test_too_many_params(void **state)
{
    http_server *s = start_server("127.0.0.1:0", 1, 4, 1u << 20);
    (void)state;
    firn_buf b = {0};
    for (int i = 0; i < 10001; i++)
        firn_buf_puts(&b, i ? "&a=1" : "a=1");
    expect(s, "POST", "/echo", b.data, "application/x-www-form-urlencoded", 400,
           "too many parameters: more than 10000\n");
    b.len -= 4;  /* exactly 10000 */
    b.data[b.len] = '\0';
    reply r = http(s, "POST", "/echo", b.data, "application/x-www-form-urlencoded");
    assert_int_equal(r.status, 200);
    reply_free(&r);
    firn_buf_free(&b);
    http_stop(s);
}

static void test_body_limit(void **state)
{
    http_server *s = *state;
    char *big = malloc(MAX_BODY + 2);
    assert_non_null(big);
    memset(big, 'x', MAX_BODY + 1);
    big[MAX_BODY + 1] = '\0';
    reply r = http(s, "POST", "/echo", big, "text/plain");
    assert_int_equal(r.status, 413);
    reply_free(&r);
    big[MAX_BODY] = '\0';  /* exactly the limit */
    expect(s, "POST", "/echo", big, "text/plain", 200, "method=POST path=/echo\nbody=4096\n");
    /* The server still serves after refusing a body. */
    expect(s, "GET", "/hello", NULL, NULL, 200, "hello\n");
    /* a route that answers over-the-cap bodies itself, declared by
     * Content-Length (h2o refuses those first: the filter's path) */
    memset(big, 'x', MAX_BODY + 1);
    big[MAX_BODY + 1] = '\0';
    expect(s, "POST", "/own413", big, "text/plain", 429, "too large, said the handler\n");
    expect(s, "POST", "/own413", "abc", "text/plain", 200, "body=3\n");
    free(big);
}

/* The head as h2o frames its body (lib/http1.c): the first Content-Length,
 * unless a Transfer-Encoding is there (the last one wins). */
static void test_head_scan(void **state)
{
    (void)state;
    http_head h;
    const char *req = "POST /api/v1/ingest?name=x HTTP/1.1\r\nHost: x\r\n"
                      "authorization: Basic YTpi\r\nContent-Length: 12\r\n"
                      "Content-Length: 99\r\n\r\nbody...";
    assert_int_equal(http_head_scan(req, strlen(req), &h), 1);
    assert_int_equal(h.head_len, strstr(req, "body...") - req);
    assert_int_equal(h.path_len, strlen("/api/v1/ingest?name=x"));
    assert_memory_equal(h.path, "/api/v1/ingest?name=x", h.path_len);
    assert_true(h.has_length);
    assert_int_equal(h.content_length, 12);
    assert_false(h.chunked);
    assert_int_equal(h.authorization_len, strlen("Basic YTpi"));
    assert_memory_equal(h.authorization, "Basic YTpi", h.authorization_len);
    /* incomplete: wait */
    assert_int_equal(http_head_scan(req, 30, &h), 0);
    /* Transfer-Encoding wins over Content-Length, in either order */
    const char *te = "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n"
                     "TRANSFER-ENCODING: Chunked\r\n\r\n";
    assert_int_equal(http_head_scan(te, strlen(te), &h), 1);
    assert_true(h.chunked);
    assert_false(h.has_length);
    assert_null(h.authorization);
    /* a framing h2o refuses itself (400): neither */
    const char *bad = "POST / HTTP/1.1\r\nContent-Length: 12a\r\n\r\n";
    assert_int_equal(http_head_scan(bad, strlen(bad), &h), 1);
    assert_false(h.has_length);
    assert_false(h.chunked);
    const char *huge = "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n";
    assert_int_equal(http_head_scan(huge, strlen(huge), &h), 1);
    assert_false(h.has_length);
    const char *none = "GET / HTTP/1.1\r\n\r\n";
    assert_int_equal(http_head_scan(none, strlen(none), &h), 1);
    assert_false(h.has_length || h.chunked);
    assert_int_equal(http_head_scan("\x16\x03\x01 junk\r\n\r\n", 14, &h), -1);
}

/* The status line a raw connection gets (at most 255 bytes of it), or "" when
 * the server closes it first. */
static void raw_status(int fd, char *line, size_t size)
{
    size_t n = 0;
    line[0] = '\0';
    while (n + 1 < size) {
        ssize_t r = recv(fd, line + n, 1, 0);
        if (r <= 0 || line[n] == '\r')
            break;
        n++;
    }
    line[n] = '\0';
}

static double metric_value(http_server *s, const char *name)
{
    firn_buf m = {0};
    http_metrics_write(s, &m);
    char *at = strstr(m.data, name);
    double v = at ? strtod(at + strlen(name), NULL) : -1;
    firn_buf_free(&m);
    return v;
}

/* Bodies are judged from the head, before h2o reads them: over the route's
 * cap 413, past the in-flight budget 503 with Retry-After; the budget frees
 * when a request is answered. */
static void test_body_budget(void **state)
{
    (void)state;
    servers_in_flight = 1u << 20;
    http_server *s = start_server("127.0.0.1:0", 2, 8, 4u << 20);
    servers_in_flight = 0;
    char line[256];
    /* a GET-only route takes at most HTTP_SMALL_BODY_CAP: 413 with no body sent */
    int fd = raw_connect(s);
    raw_send(fd, "GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
    raw_status(fd, line, sizeof line);
    assert_string_equal(line, "HTTP/1.1 413 Request Entity Too Large");
    close(fd);
    /* a worker route's body counts twice: 300000 x 2 fits in 1 MiB */
    int a = raw_connect(s);
    raw_send(a, "POST /wecho HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
                "Content-Length: 300000\r\n\r\nxxxx");
    for (int i = 0; i < 10000 && metric_value(s, "\nfirn_http_request_body_bytes_in_flight ") <
                                     600000; i++)
        usleep(1000);   /* polling the server's own count, bounded */
    assert_true(metric_value(s, "\nfirn_http_request_body_bytes_in_flight ") >= 600000);
    /* another 300000 x 2 does not: 503 at once, nothing of its body sent */
    int b = raw_connect(s);
    raw_send(b, "POST /wecho HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
                "Content-Length: 300000\r\n\r\n");
    raw_status(b, line, sizeof line);
    assert_string_equal(line, "HTTP/1.1 503 Service Unavailable");
    close(b);
    /* a request without a body is not refused for the budget */
    expect(s, "GET", "/hello", NULL, NULL, 200, "hello\n");
    /* the first body completes and is answered */
    char *rest = malloc(300000 - 4);
    assert_non_null(rest);
    memset(rest, 'x', 300000 - 4);
    assert_int_equal(send(a, rest, 300000 - 4, MSG_NOSIGNAL), 300000 - 4);
    free(rest);
    raw_status(a, line, sizeof line);
    assert_string_equal(line, "HTTP/1.1 200 OK");
    close(a);
    /* then the budget is free again */
    char *body = malloc(300001);
    assert_non_null(body);
    memset(body, 'y', 300000);
    body[300000] = '\0';
    expect(s, "POST", "/wecho", body, "application/octet-stream", 200,
           "method=POST path=/wecho\nbody=300000\n");
    free(body);
    assert_true(metric_value(s, "\nfirn_http_request_bodies_refused_total{reason=\"budget\"} ") ==
                1);
    http_stop(s);
}

static void test_headers(void **state)
{
    http_server *s = *state;
    reply r = {0};
    struct curl_slist *h = curl_slist_append(NULL, "X-Test: hi there");
    CURL *c = easy_new(s, "GET", "/headers", NULL, 0, h, &r);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    assert_int_equal(r.status, 200);
    assert_string_equal(body_of(&r), "x-test=hi there\n");
    assert_string_equal(header_of(&r, "content-type"), "application/x-test");
    assert_string_equal(header_of(&r, "content-encoding"), "gzip");
    assert_string_equal(header_of(&r, "content-disposition"), "attachment; filename=\"p.pb.gz\"");
    reply_free(&r);
}

/* GET target with an Accept-Encoding (NULL: none), the body as sent. */
static reply get_encoded(http_server *s, const char *target, const char *accept)
{
    reply r = {0};
    char h[256];
    struct curl_slist *hs = NULL;
    if (accept) {
        snprintf(h, sizeof h, "Accept-Encoding: %s", accept);
        hs = curl_slist_append(NULL, h);
    }
    CURL *c = easy_new(s, "GET", target, NULL, 0, hs, &r);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hs);
    return r;
}

/* Whether body is exactly n bytes of text_byte, inflated first when gz
 * (zlib, the peer of h2o's gzip). */
static bool text_body_is(const reply *r, size_t n, bool gz)
{
    const unsigned char *in = (const unsigned char *)r->body.data;
    size_t in_len = r->body.len;
    char *out = malloc(n + 1);
    assert_non_null(out);
    size_t out_len = in_len;
    if (gz) {
        z_stream z = {0};
        assert_int_equal(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
        z.next_in = (unsigned char *)in;
        z.avail_in = (uInt)in_len;
        z.next_out = (unsigned char *)out;
        z.avail_out = (uInt)(n + 1);
        int rc = inflate(&z, Z_FINISH);
        out_len = z.total_out;
        inflateEnd(&z);
        if (rc != Z_STREAM_END) {
            free(out);
            return false;
        }
    } else if (in_len <= n) {
        memcpy(out, in, in_len);
    }
    bool same = out_len == n;
    for (size_t i = 0; same && i < n; i++)
        same = out[i] == text_byte(i);
    free(out);
    return same;
}

/* Responses are gzipped for a client that takes gzip (RFC 9110 q-values
 * honoured), from 1 KiB, for compressible types only, never twice. */
static void test_gzip_negotiation(void **state)
{
    http_server *s = *state;
    static const struct {
        const char *target, *accept;
        size_t n;
        bool gz;
    } cases[] = {
        {"/text?n=65536", "gzip", 65536, true},
        {"/text?n=65536", "gzip, deflate, br", 65536, true},
        {"/text?n=65536", "*", 65536, false}, /* allowed, not asked: identity is fine */
        {"/text?n=65536&type=image/svg%2Bxml", "gzip", 65536, true},
        {"/text?n=65536&type=text/plain%3B%20version%3D0.0.4", "gzip", 65536, true},
        {"/text?n=65536", NULL, 65536, false},
        {"/text?n=65536", "identity", 65536, false},
        {"/text?n=65536", "gzip;q=0, identity", 65536, false},
        {"/text?n=65536", "*, gzip;q=0", 65536, false},
        {"/text?n=1000", "gzip", 1000, false},
        {"/text?n=65536&type=application/octet-stream", "gzip", 65536, false},
        {"/text?n=65536&etag", "gzip", 65536, false}, /* its ETag names identity */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        reply r = get_encoded(s, cases[i].target, cases[i].accept);
        const char *enc = header_of(&r, "content-encoding");
        enc = enc ? enc : "";
        if (r.status != 200 || (strcmp(enc, "gzip") == 0) != cases[i].gz ||
            !text_body_is(&r, cases[i].n, cases[i].gz))
            fail_msg("GET %s, Accept-Encoding %s: status %ld, Content-Encoding \"%s\", %zu bytes",
                     cases[i].target, cases[i].accept ? cases[i].accept : "(none)", r.status, enc,
                     r.body.len);
        if (cases[i].gz) {
            assert_true(r.body.len < cases[i].n / 2);
            const char *vary = header_of(&r, "vary");
            assert_true(vary && strcasestr(vary, "accept-encoding"));
        }
        reply_free(&r);
    }
    /* A body its handler encoded goes out as it is, not compressed again. */
    reply r = get_encoded(s, "/text?n=65536&encoded", "gzip");
    assert_string_equal(header_of(&r, "content-encoding"), "gzip");
    assert_true(text_body_is(&r, 65536, false));
    reply_free(&r);
}

static void test_worker_routes(void **state)
{
    http_server *s = *state;
    expect(s, "GET", "/worker?n=7", NULL, NULL, 201, "worker 7 0\n");
    expect(s, "HEAD", "/worker?n=7", NULL, NULL, 201, "");
    expect(s, "GET", "/fail", NULL, NULL, 500, "handler returned invalid status 42\n");
}

static void test_many_concurrent_workers(void **state)
{
    http_server *s = *state;
    enum { N = 50 };
    CURLM *m = curl_multi_init();
    CURL *easy[N];
    reply replies[N];
    char targets[N][32];
    memset(replies, 0, sizeof replies);
    for (int i = 0; i < N; i++) {
        snprintf(targets[i], sizeof targets[i], "/worker?n=%d", i);
        easy[i] = easy_new(s, "GET", targets[i], NULL, 0, NULL, &replies[i]);
        curl_multi_add_handle(m, easy[i]);
    }
    int running = 1;
    while (running) {
        assert_int_equal(curl_multi_perform(m, &running), CURLM_OK);
        if (running)
            assert_int_equal(curl_multi_poll(m, NULL, 0, 1000, NULL), CURLM_OK);
    }
    CURLMsg *msg;
    int left, ok = 0;
    while ((msg = curl_multi_info_read(m, &left)))
        if (msg->msg == CURLMSG_DONE && msg->data.result == CURLE_OK)
            ok++;
    assert_int_equal(ok, N);
    for (int i = 0; i < N; i++) {
        long status;
        curl_easy_getinfo(easy[i], CURLINFO_RESPONSE_CODE, &status);
        assert_int_equal(status, 201);
        char want[64];
        snprintf(want, sizeof want, "worker %d 0\n", i);
        assert_string_equal(body_of(&replies[i]), want);
        curl_multi_remove_handle(m, easy[i]);
        curl_easy_cleanup(easy[i]);
        reply_free(&replies[i]);
    }
    curl_multi_cleanup(m);
}

/* One worker, one queue slot: a blocked handler, a queued request, and the
 * next one is refused at once. */
static void test_queue_full(void **state)
{
    (void)state;
    http_server *s = start_server("127.0.0.1:0", 1, 1, MAX_BODY);
    gate_reset();
    reset_done();
    client a = {0}, b = {0}, c = {0};
    client_start(&a, s, "/block");
    gate_wait_entered(1);
    client_start(&b, s, "/block");
    client_start(&c, s, "/block");
    /* Whichever of b and c arrived second is refused without waiting for
     * the worker, so it is the first to finish. */
    wait_done(1);
    gate_open();
    pthread_join(a.thread, NULL);
    pthread_join(b.thread, NULL);
    pthread_join(c.thread, NULL);
    client *refused = b.r.status == 503 ? &b : &c;
    client *queued = refused == &b ? &c : &b;
    assert_int_equal(a.r.status, 200);
    assert_int_equal(refused->r.status, 503);
    assert_string_equal(body_of(&refused->r), "server busy\n");
    assert_int_equal(queued->r.status, 200);
    assert_string_equal(body_of(&queued->r), "released\n");
    reply_free(&a.r);
    reply_free(&b.r);
    reply_free(&c.r);

    firn_buf m = {0};
    http_metrics_write(s, &m);
    assert_non_null(
        strstr(m.data, "firn_http_requests_total{code=\"503\",handler=\"/block\"} 1\n"));
    assert_non_null(
        strstr(m.data, "firn_http_requests_total{code=\"200\",handler=\"/block\"} 2\n"));
    firn_buf_free(&m);
    http_stop(s);
}

/* A client that leaves while its worker handler runs: the response is
 * dropped (or written to a dead socket), nothing is freed twice, and the
 * server goes on serving. */
static void test_client_disconnects(void **state)
{
    (void)state;
    http_server *s = start_server("127.0.0.1:0", 1, 1, MAX_BODY);
    for (int round = 0; round < 2; round++) {
        gate_reset();
        int fd = raw_connect(s);
        raw_send(fd, "GET /block HTTP/1.1\r\nHost: t\r\n\r\n");
        gate_wait_entered(1);
        if (round == 1) {
            /* Leave with a reset rather than a FIN. */
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(fd);
        gate_open();
        /* The worker is free again once this one is answered. */
        expect(s, "GET", "/block", NULL, NULL, 200, "released\n");
        expect(s, "GET", "/hello", NULL, NULL, 200, "hello\n");
    }
    http_stop(s);
}

/* http_stop answers queued jobs 503, lets the running one finish, and
 * closes idle keep-alive connections. */
static void test_stop_with_work_in_progress(void **state)
{
    (void)state;
    http_server *s = start_server("127.0.0.1:0", 1, 1, MAX_BODY);
    gate_reset();
    reset_done();

    /* An idle keep-alive connection that never says goodbye. */
    int idle = raw_connect(s);
    raw_send(idle, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    char buf[512];
    size_t got = 0;
    while (got < 6 || memcmp(buf + got - 6, "hello\n", 6) != 0) {
        ssize_t n = recv(idle, buf + got, sizeof buf - 1 - got, 0);
        assert_true(n > 0);
        got += (size_t)n;
    }
    buf[got] = '\0';
    assert_non_null(strstr(buf, "200 OK"));

    client a = {0}, b = {.open_gate_on_shutdown = true}, c = {.open_gate_on_shutdown = true};
    client_start(&a, s, "/block");
    gate_wait_entered(1);
    /* Once one of b and c is refused as busy, the other is queued. */
    client_start(&b, s, "/block");
    client_start(&c, s, "/block");
    wait_done(1);
    /* The queued one is answered 503 by http_stop, and opens the gate. */
    http_stop(s);
    pthread_join(a.thread, NULL);
    pthread_join(b.thread, NULL);
    pthread_join(c.thread, NULL);
    assert_int_equal(a.r.status, 200);
    assert_int_equal(b.r.status, 503);
    assert_int_equal(c.r.status, 503);
    bool b_busy = strcmp(body_of(&b.r), "server busy\n") == 0;
    assert_string_equal(body_of(b_busy ? &c.r : &b.r), "server shutting down\n");
    assert_string_equal(body_of(b_busy ? &b.r : &c.r), "server busy\n");
    reply_free(&a.r);
    reply_free(&b.r);
    reply_free(&c.r);

    /* The idle connection was closed by the server. */
    assert_int_equal(recv(idle, buf, sizeof buf, 0), 0);
    close(idle);
}

/* A client that never reads its response cannot hold http_stop for ever:
 * after the drain time (5 s) its connection is shut. */
static void test_stop_with_client_not_reading(void **state)
{
    (void)state;
    http_server *s = start_server("127.0.0.1:0", 1, 1, MAX_BODY);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port(s))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    raw_send(fd, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
    /* The response has started: the server is writing to a full socket. */
    char buf[16];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_WAITALL);
    assert_int_equal(n, (ssize_t)sizeof buf);
    assert_memory_equal(buf, "HTTP/1.1 200 OK\r", 16);
    http_stop(s);
    close(fd);
}

static bool promtool_accepts(const char *text)
{
    if (access("/usr/bin/promtool", X_OK) != 0)
        return true;  /* not installed: nothing to check against */
    char path[] = "/tmp/test_web_metrics_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "/usr/bin/promtool check metrics < %s", path);
    int rc = system(cmd);
    unlink(path);
    return rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

static void test_metrics(void **state)
{
    (void)state;
    http_server *s = start_server("127.0.0.1:0", 2, 8, MAX_BODY);
    firn_buf m = {0};
    http_metrics_write(s, &m);
    assert_false(m.failed);
    assert_non_null(strstr(m.data, "firn_http_requests_in_flight 0\n"));
    assert_true(promtool_accepts(m.data));
    firn_buf_free(&m);

    expect(s, "GET", "/hello", NULL, NULL, 200, NULL);
    expect(s, "HEAD", "/hello", NULL, NULL, 200, NULL);
    expect(s, "GET", "/nope", NULL, NULL, 404, NULL);
    expect(s, "POST", "/hello", "", NULL, 405, NULL);
    expect(s, "GET", "/worker", NULL, NULL, 201, NULL);
    expect(s, "GET", "/static/x", NULL, NULL, 200, NULL);
    char big[MAX_BODY + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    expect(s, "POST", "/echo", big, "text/plain", 413, NULL);  /* answered by h2o itself */

    static const char *const want[] = {
        "# TYPE firn_http_requests_total counter\n",
        "firn_http_requests_total{code=\"200\",handler=\"/hello\"} 2\n",
        "firn_http_requests_total{code=\"405\",handler=\"/hello\"} 1\n",
        "firn_http_requests_total{code=\"404\",handler=\"other\"} 1\n",
        "firn_http_requests_total{code=\"201\",handler=\"/worker\"} 1\n",
        "firn_http_requests_total{code=\"200\",handler=\"/static\"} 1\n",
        "firn_http_requests_total{code=\"413\",handler=\"/echo\"} 1\n",
        "# TYPE firn_http_request_duration_seconds histogram\n",
        "firn_http_request_duration_seconds_bucket{handler=\"/hello\",le=\"1\"} 3\n",
        "firn_http_request_duration_seconds_bucket{handler=\"/hello\",le=\"120\"} 3\n",
        "firn_http_request_duration_seconds_bucket{handler=\"/hello\",le=\"+Inf\"} 3\n",
        "firn_http_request_duration_seconds_count{handler=\"/hello\"} 3\n",
        "firn_http_request_duration_seconds_count{handler=\"other\"} 1\n",
        "firn_http_request_duration_seconds_count{handler=\"/empty\"} 0\n",
        "# TYPE firn_http_requests_in_flight gauge\n",
        "firn_http_requests_in_flight 0\n",
    };
    /* A request is counted once its response is on its way, so the client
     * may read the answer before the count moves: poll, with a deadline. */
    size_t missing = 0;
    for (int attempt = 0; attempt < 500; attempt++) {
        firn_buf_free(&m);
        http_metrics_write(s, &m);
        missing = sizeof want / sizeof want[0];
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
            if (strstr(m.data, want[i]))
                missing--;
        if (missing == 0)
            break;
        usleep(10000);
    }
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(m.data, want[i]))
            fail_msg("metrics lack %s in:\n%s", want[i], m.data);
    assert_null(strstr(m.data, "code=\"404\",handler=\"/hello\""));
    assert_true(promtool_accepts(m.data));
    firn_buf_free(&m);
    http_stop(s);
}

static void test_listen_addresses(void **state)
{
    (void)state;
    firn_err err = {0};
    http_options o;
    http_options_default(&o);

    http_server *a = start_server("127.0.0.1:0", 1, 1, MAX_BODY);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", http_port(a));
    o.listen_address = addr;
    assert_null(http_new(&o, &err));
    char want[128];
    snprintf(want, sizeof want, "listen tcp %s: address already in use", addr);
    assert_string_equal(err.msg, want);
    http_stop(a);

    static const struct {
        const char *addr, *msg;
    } bad[] = {
        {"7070", "listen tcp 7070: missing port in address"},
        {"1.2.3.4:", "listen tcp 1.2.3.4:: missing port in address"},
        {":65536", "listen tcp :65536: invalid port"},
        {":http", "listen tcp :http: invalid port"},
        {"::1:80", "listen tcp ::1:80: too many colons in address"},
        {"[::1:80", "listen tcp [::1:80: missing ']' in address"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.listen_address = bad[i].addr;
        firn_err_clear(&err);
        assert_null(http_new(&o, &err));
        assert_string_equal(err.msg, bad[i].msg);
    }

    /* ":port" is every address, IPv4 included. */
    http_server *all = start_server(":0", 1, 1, MAX_BODY);
    expect(all, "GET", "/hello", NULL, NULL, 200, "hello\n");
    http_stop(all);
    http_server *local = start_server("localhost:0", 1, 1, MAX_BODY);
    expect(local, "GET", "/hello", NULL, NULL, 200, "hello\n");
    http_stop(local);

    /* IPv6, where loopback has it: "[::1]:port", and ":port" answering on
     * IPv6 too. */
    http_server *v6 = try_start_server("[::1]:0", 1, 1, MAX_BODY, &err);
    if (!v6) {
        assert_non_null(strstr(err.msg, "listen tcp [::1]:0: "));
        return;
    }
    client_host = "[::1]";
    expect(v6, "GET", "/hello", NULL, NULL, 200, "hello\n");
    http_stop(v6);
    all = start_server(":0", 1, 1, MAX_BODY);
    expect(all, "GET", "/hello", NULL, NULL, 200, "hello\n");
    http_stop(all);
    client_host = "127.0.0.1";
}

static void test_route_errors(void **state)
{
    (void)state;
    http_options o;
    http_options_default(&o);
    o.listen_address = "127.0.0.1:0";
    firn_err err = {0};
    http_server *s = http_new(&o, &err);
    assert_non_null(s);
    assert_int_equal(http_route(s, "GET", "/a", 0, h_hello, NULL, &err), 0);
    assert_int_equal(http_route(s, "GET", "/a", HTTP_ROUTE_PREFIX, h_hello, NULL, &err), FIRN_EEXIST);
    assert_string_equal(err.msg, "web: route /a: already registered");
    assert_int_equal(http_route(s, "PUT", "/b", 0, h_hello, NULL, &err), FIRN_EINVAL);
    assert_int_equal(http_route(s, "", "/b", 0, h_hello, NULL, &err), FIRN_EINVAL);
    assert_int_equal(http_route(s, "GET", "b", 0, h_hello, NULL, &err), FIRN_EINVAL);
    assert_int_equal(http_route(s, "GET", "/b", 0, NULL, NULL, &err), FIRN_EINVAL);
    assert_int_equal(http_route(s, "GET, POST", "/b", 0, h_hello, NULL, &err), 0);
    /* Never started: http_stop only closes the socket. */
    http_stop(s);

    o.workers = 0;
    assert_null(http_new(&o, &err));
    assert_int_equal(err.code, FIRN_EINVAL);
}

static void test_start_stop_without_requests(void **state)
{
    (void)state;
    http_server *s = start_server("127.0.0.1:0", 3, 2, MAX_BODY);
    http_stop(s);
    http_stop(NULL);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* Quiet unless asked (FIRN_TEST_LOG=debug shows every request). */
    const char *level = getenv("FIRN_TEST_LOG");
    firn_log_set_level(level && firn_log_level_parse(level) >= 0
                           ? (enum firn_log_level)firn_log_level_parse(level)
                           : FIRN_LOG_ERROR);
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_inline_get_and_head),
        cmocka_unit_test(test_not_found_and_method_not_allowed),
        cmocka_unit_test(test_prefix_routes),
        cmocka_unit_test(test_params_decoding),
        cmocka_unit_test(test_params_malformed),
        cmocka_unit_test(test_request_make),
        cmocka_unit_test(test_post_form_after_url),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_gzip_negotiation),
        cmocka_unit_test(test_worker_routes),
        cmocka_unit_test(test_many_concurrent_workers),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_too_many_params),
        cmocka_unit_test(test_head_scan),
        cmocka_unit_test(test_body_budget),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_client_disconnects),
        cmocka_unit_test(test_stop_with_work_in_progress),
        cmocka_unit_test(test_stop_with_client_not_reading),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_listen_addresses),
        cmocka_unit_test(test_route_errors),
        cmocka_unit_test(test_start_stop_without_requests),
    };
    int failed = cmocka_run_group_tests_name("web (one server)", shared, setup_server,
                                             teardown_server);
    failed += cmocka_run_group_tests_name("web (own servers)", own, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
