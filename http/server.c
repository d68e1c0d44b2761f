/* server.c -- firn's HTTP server: h2o's event loop on one thread, handlers
 * on it or on a pool of workers, and the server's own metrics.
 *
 * Threads
 *  - the caller's: http_new (binds), http_route, http_start, http_stop.
 *  - the loop thread creates, runs and destroys every h2o object: it routes
 *    each request, calls inline handlers, queues worker jobs and sends every
 *    response.  h2o is single-threaded; nothing else touches it, except
 *    h2o_multithread_send_message, which is made for that.
 *  - workers take jobs from the queue, run their handler, and post the job
 *    back to the loop thread.  A job carries its own copy of the request
 *    (request.c), so a worker never reads h2o's memory.
 *  Our threads start with the caller's signal mask plus SIGPIPE blocked, so
 *  that a write to a client that went away fails with EPIPE instead of
 *  killing a process that did not ignore SIGPIPE.  Nothing else is blocked:
 *  SIGPROF must reach them for selfprof's CPU profiles.
 *
 * A job's life.  The loop thread allocates it, links a small guard object
 * into the h2o request's pool (h2o_mem_alloc_shared) and queues it.  If h2o
 * disposes of the request before the job comes back, the guard's dispose
 * callback clears job->req and the response is dropped; otherwise the loop
 * thread clears the guard's pointer before it answers.  Either way the job
 * is freed by the loop thread, once, when it comes back from its worker
 * (or, still queued at shutdown, when the loop thread answers it 503).
 * h2o 2.2.5 serves HTTP/1.1 only here (also over TLS, where ALPN offers
 * http/1.1 alone; no h2c upgrade) and stops reading a connection while its
 * request is processed, so it notices a client that left only when the
 * response is written, which then fails harmlessly; the guard is what
 * keeps a request h2o disposed of early (an HTTP/2 stream reset, an h2o
 * that watches the socket) from being written to after it was freed.
 *
 * Credentials (a web config with users or tokens).  The loop thread reads
 * the Authorization header of every request before routing it.  A bearer
 * token is checked at once (one SHA-256).  A basic-auth password is looked
 * up in a small cache keyed by a keyed hash of user and password: a hit
 * (yes or no) is answered at once; a miss becomes a "verify" job, which a
 * worker answers with bcrypt (tens of milliseconds), storing the answer in
 * the cache; back on the loop thread a verified request is dispatched as if
 * it had just arrived (an inline route runs on the loop, a worker route is
 * queued again), a refused one gets 401.  So bcrypt never runs on the loop,
 * and inline handlers never run on a worker.
 *
 * Request bodies (http.h says what a client sees).  h2o 2.2.5's HTTP/1
 * parser keeps a request's head and body in the socket's input buffer
 * until the request is answered, and checks a declared Content-Length (and
 * a chunked body's running size) against globalconf.max_request_entity_size
 * before reading on, answering 413 itself.  It offers no hook between head
 * and body, so firn puts its own read callback (on_conn_read) in front of
 * h2o's on every connection: h2o sets its callback again at every request
 * from inside libh2o, and conns_wrap, run after every turn of the loop,
 * puts ours back in front before the next read is dispatched.  On each
 * read on_conn_read judges the bytes h2o will see (body_gate): the
 * complete head once (picohttpparser, as h2o parses it: head.c), then the
 * growing buffer against the in-flight budget; it sets
 * max_request_entity_size to the route's cap for the length of h2o's
 * callback (one loop thread, so no other request reads it meanwhile); and
 * it refuses by writing the answer to the idle socket itself and handing
 * h2o a read error, on which h2o closes the connection.  A connection's
 * charge stays until h2o has answered and starts reading again (or the
 * connection closes).  A request h2o finds already buffered behind the
 * previous one (pipelining) is parsed by h2o before ours sees it: it is
 * checked against the largest cap, and charged at its next read.
 *
 * Shutdown (http_stop).  The loop thread closes the listener, answers queued
 * jobs 503, waits for running jobs to come back, joins the workers (so none
 * is left inside h2o_multithread_send_message), then shuts down the read
 * side of every connection: h2o closes each once its last response is
 * written.  Clients that do not read their response get HTTP_DRAIN_MS, then
 * the write side is shut too.  Only when no connection is left does it
 * destroy h2o's objects.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <h2o.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "http/internal.h"

#define HTTP_DEFAULT_WORKERS 4
#define HTTP_DEFAULT_QUEUE 256
#define HTTP_WORKERS_MAX 1024
#define HTTP_QUEUE_MAX (1u << 20)
#define HTTP_ACCEPT_BURST 16     /* connections accepted per wake-up, as h2o's server */
#define HTTP_DRAIN_MS 5000       /* at shutdown, time given to clients to read their responses */
#define HTTP_STATUS_MIN 100
#define HTTP_STATUS_MAX 599
#define HTTP_STATUS_SLOTS (HTTP_STATUS_MAX - HTTP_STATUS_MIN + 1)
#define HTTP_AUTH_CACHE_SLOTS 128  /* checked (user, password) pairs remembered */
#define HTTP_AUTH_MAX_BYTES 4096   /* longer credentials are refused unchecked */
#define HTTP_AUTH_KEY_LEN 32       /* SHA-256 */

enum { METHOD_GET = 1u << 0, METHOD_HEAD = 1u << 1, METHOD_POST = 1u << 2 };

/* Prometheus's web handler buckets (web/web.go). */
static const double duration_buckets[] = {0.1, 0.2, 0.4, 1, 3, 8, 20, 60, 120};

/* Counters of one handler label: a route, or "other" for paths with no
 * route.  Written by the loop thread, read by http_metrics_write. */
typedef struct route_stats {
    const char *handler;
    _Atomic uint64_t codes[HTTP_STATUS_SLOTS];
    firn_histogram duration;
} route_stats;

typedef struct route {
    char *path;
    size_t path_len;
    unsigned flags;
    unsigned methods;   /* METHOD_*; GET brings HEAD */
    char allow[24];     /* the Allow header of a 405 */
    http_handler_fn fn;
    void *ctx;
    route_stats stats;
} route;

typedef struct http_job http_job;

/* Lives in the h2o request's pool; see "A job's life" above. */
typedef struct job_guard {
    http_job *job;
} job_guard;

struct http_job {
    h2o_multithread_message_t msg;  /* the link through h2o's queue back to the loop */
    http_job *next;                  /* the worker queue */
    route *route;
    firn_arena *arena;              /* the request's copy and everything it points to */
    http_request request;
    http_response response;
    uint64_t start_ns;
    /* A verify job (see "Credentials" above): the credentials to check, in
     * the arena, and the worker's answer. */
    bool verify;
    bool auth_ok;
    const char *user, *password;
    size_t user_len, password_len;
    unsigned char auth_key[HTTP_AUTH_KEY_LEN];
    /* Loop thread only. */
    h2o_req_t *req;                 /* NULL once h2o disposed of the request */
    job_guard *guard;
};

/* Every accepted connection, so shutdown can close them. */
typedef struct http_conn {
    h2o_linklist_t link;
    h2o_socket_t *sock;
    http_server *server;
    h2o_timeout_entry_t first_bytes;  /* HTTPS: waiting for the client's first bytes */
    /* The body gate (see "Request bodies"): h2o's read callback, which
     * on_conn_read calls, and what the request being read may cost. */
    h2o_socket_cb h2o_read;
    bool fresh;         /* wrapped before the request's first byte came: h2o has
                         * not parsed its head yet */
    bool head_done;     /* the request's head was read and judged */
    size_t cap;         /* its body's cap (h2o's max_request_entity_size while it reads) */
    unsigned copies;    /* 2 when a worker copies the body off h2o's buffer, else 1 */
    size_t reserved;    /* head + declared body x copies */
    size_t charge;      /* what this connection counts in s->body_bytes */
    size_t request_len; /* head + declared body (SIZE_MAX: chunked or unknown) */
    size_t discard;     /* refused: request bytes still to read and drop before the
                         * close, so the client reads the answer (0: not refused) */
} http_conn;

/* One remembered answer of bcrypt; see auth_cache_get. */
typedef struct auth_entry {
    unsigned char key[HTTP_AUTH_KEY_LEN];
    bool used;
    bool ok;
    uint64_t expires_ns;
} auth_entry;

typedef struct http_h2o_handler {
    h2o_handler_t super;
    http_server *server;
} http_h2o_handler;

struct http_server {
    http_options opts;
    char *listen_address;
    int fd;                 /* the listening socket until h2o owns it */
    int port;
    SSL_CTX *ssl_ctx;       /* HTTPS with a web config's tls_server_config, else NULL */

    /* Credentials (opts.web_config with users or tokens).  The cache under
     * auth_mu: read by the loop thread, written by workers. */
    bool auth;
    unsigned char auth_secret[HTTP_AUTH_KEY_LEN];  /* keys the cache's hashes */
    pthread_mutex_t auth_mu;
    auth_entry auth_cache[HTTP_AUTH_CACHE_SLOTS];
    _Atomic uint64_t bcrypt_ok, bcrypt_denied, bcrypt_refused;
    size_t verifies;        /* verify jobs out (loop thread): at most max_password_checks */

    route **routes;
    size_t n_routes, cap_routes;
    route_stats other;
    atomic_llong in_flight;

    bool started;
    atomic_bool stop_requested;
    pthread_t loop_thread;

    /* Loop thread only, once started. */
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_evloop_t *loop;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    h2o_multithread_receiver_t job_receiver;
    h2o_linklist_t conns;
    _Atomic size_t n_conns;  /* in conns (written by the loop thread) */
    _Atomic size_t body_bytes;  /* request bytes in flight, the sum of the conns'
                             * charges (written by the loop thread) */
    _Atomic uint64_t bodies_refused_budget, bodies_refused_auth;
    bool accept_paused;     /* the listener is not read: max_connections are open */
    size_t jobs_out;        /* jobs handed to workers and not back yet */

    /* The worker pool: threads started by http_start, joined by the loop
     * thread at shutdown; the queue and the flags below under mu. */
    pthread_t *workers;
    size_t n_workers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    http_job *head, *tail;   /* queued, not taken by a worker yet */
    size_t queued;
    size_t idle;            /* workers waiting for a job */
    bool pool_stopping;
    bool ready;             /* the loop thread is set up (also under mu) */
    pthread_cond_t ready_cv;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- options and listening ------------------------------------------------- */

void http_options_default(http_options *o)
{
    *o = (http_options){
        .listen_address = HTTP_DEFAULT_LISTEN,
        .workers = HTTP_DEFAULT_WORKERS,
        .queue_max = HTTP_DEFAULT_QUEUE,
        .max_body_bytes = HTTP_DEFAULT_MAX_BODY,
        .max_body_bytes_in_flight = HTTP_DEFAULT_BODY_BYTES_IN_FLIGHT,
    };
}

/* strerror as Go words it: lower case ("address already in use"). */
static const char *errno_text(int e, char *buf, size_t size)
{
    snprintf(buf, size, "%s", strerror(e));
    if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
        buf[0] = (char)(buf[0] - 'A' + 'a');
    return buf;
}

/* "host:port", ":port" or "[v6]:port", as Go's net.SplitHostPort; the port
 * must be numeric. */
static int split_host_port(const char *addr, char *host, size_t host_size, int *port,
                           firn_err *err)
{
    const char *colon, *h = addr;
    size_t h_len;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close)
            return firn_errf(err, FIRN_EINVAL, "listen tcp %s: missing ']' in address", addr);
        if (close[1] != ':')
            return firn_errf(err, FIRN_EINVAL, "listen tcp %s: missing port in address", addr);
        h = addr + 1;
        h_len = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return firn_errf(err, FIRN_EINVAL, "listen tcp %s: missing port in address", addr);
        if (memchr(addr, ':', (size_t)(colon - addr)))
            return firn_errf(err, FIRN_EINVAL, "listen tcp %s: too many colons in address",
                             addr);
        h_len = (size_t)(colon - addr);
    }
    if (h_len >= host_size)
        return firn_errf(err, FIRN_EINVAL, "listen tcp %s: host too long", addr);
    memcpy(host, h, h_len);
    host[h_len] = '\0';
    const char *p = colon + 1;
    long v = 0;
    if (*p == '\0')
        return firn_errf(err, FIRN_EINVAL, "listen tcp %s: missing port in address", addr);
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || (v = v * 10 + (*p - '0')) > 65535)
            return firn_errf(err, FIRN_EINVAL, "listen tcp %s: invalid port", addr);
    }
    *port = (int)v;
    return 0;
}

/* A socket bound to sa and listening; -1 with *saved_errno on failure. */
static int bind_listen(const struct sockaddr *sa, socklen_t len, bool dual_stack,
                       int *saved_errno)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *saved_errno = errno;
        return -1;
    }
    int on = 1, off = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        (dual_stack && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) ||
        bind(fd, sa, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        *saved_errno = errno;
        close(fd);
        return -1;
    }
    return fd;
}

/* Listen on addr.  An empty host means every address: [::] with
 * IPV6_V6ONLY off (IPv4 too), or 0.0.0.0 where IPv6 is not available.  A
 * host name resolving to several addresses binds the first IPv4 one, as Go
 * does. */
static int listen_on(const char *addr, int *out_fd, firn_err *err)
{
    char host[256], ebuf[128];
    int port = 0, e = 0, fd;
    int rc = split_host_port(addr, host, sizeof host, &port, err);
    if (rc < 0)
        return rc;
    if (host[0] == '\0') {
        struct sockaddr_in6 any6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
                                    .sin6_addr = IN6ADDR_ANY_INIT};
        fd = bind_listen((struct sockaddr *)&any6, sizeof any6, true, &e);
        if (fd < 0 && (e == EAFNOSUPPORT || e == EADDRNOTAVAIL || e == EPROTONOSUPPORT)) {
            struct sockaddr_in any4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                       .sin_addr.s_addr = htonl(INADDR_ANY)};
            fd = bind_listen((struct sockaddr *)&any4, sizeof any4, false, &e);
        }
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        rc = getaddrinfo(host, NULL, &hints, &res);
        if (rc != 0)
            return firn_errf(err, FIRN_EINVAL, "listen tcp %s: lookup %s: %s", addr, host,
                             rc == EAI_SYSTEM ? errno_text(errno, ebuf, sizeof ebuf)
                                              : gai_strerror(rc));
        struct addrinfo *pick = NULL;
        for (struct addrinfo *ai = res; ai && !pick; ai = ai->ai_next)
            if (ai->ai_family == AF_INET)
                pick = ai;
        for (struct addrinfo *ai = res; ai && !pick; ai = ai->ai_next)
            if (ai->ai_family == AF_INET6)
                pick = ai;
        if (!pick) {
            freeaddrinfo(res);
            return firn_errf(err, FIRN_EINVAL, "listen tcp %s: no IP address for %s", addr,
                             host);
        }
        struct sockaddr_storage ss;
        memcpy(&ss, pick->ai_addr, pick->ai_addrlen);
        socklen_t len = pick->ai_addrlen;
        freeaddrinfo(res);
        if (ss.ss_family == AF_INET)
            ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
        fd = bind_listen((struct sockaddr *)&ss, len, false, &e);
    }
    if (fd < 0)
        return firn_errf(err, FIRN_EIO, "listen tcp %s: %s", addr,
                         errno_text(e, ebuf, sizeof ebuf));
    *out_fd = fd;
    return 0;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

static void stats_init(route_stats *st, const char *handler)
{
    st->handler = handler;
    for (size_t i = 0; i < HTTP_STATUS_SLOTS; i++)
        atomic_init(&st->codes[i], 0);
    firn_histogram_init(&st->duration, duration_buckets,
                        sizeof duration_buckets / sizeof duration_buckets[0]);
}

/* ---- TLS ------------------------------------------------------------------------ */

/* The reason of the oldest OpenSSL error queued (the cause; later ones say
 * where it surfaced), and the queue emptied. */
static const char *ssl_error_text(void)
{
    unsigned long e = ERR_get_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "unknown OpenSSL error";
}

/* Go's RequestClientCert and RequireAnyClientCert take any certificate. */
static int accept_any_certificate(int preverify_ok, X509_STORE_CTX *store)
{
    (void)preverify_ok;
    (void)store;
    return 1;
}

static int readable(const char *what, const char *path, firn_err *err)
{
    char ebuf[128];
    if (access(path, R_OK) != 0)
        return firn_errf(err, FIRN_EINVAL, "web: tls_server_config: %s %s: %s", what, path,
                         errno_text(errno, ebuf, sizeof ebuf));
    return 0;
}

/* The SSL_CTX of tls_server_config: certificate and key (checked to
 * match), versions, client certificates, ALPN http/1.1. */
static SSL_CTX *tls_context(const config_web *wc, firn_err *err)
{
    static const h2o_iovec_t alpn[] = {{H2O_STRLIT("http/1.1")}, {NULL, 0}};
    if (readable("cert_file", wc->cert_file, err) < 0 ||
        readable("key_file", wc->key_file, err) < 0 ||
        (wc->client_ca_file && readable("client_ca_file", wc->client_ca_file, err) < 0))
        return NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        firn_errf(err, FIRN_ENOMEM, "web: TLS: %s", ssl_error_text());
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_set_min_proto_version(ctx, wc->min_version) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, wc->max_version) != 1) {
        firn_errf(err, FIRN_EINVAL, "web: tls_server_config: versions: %s", ssl_error_text());
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, wc->cert_file) != 1) {
        firn_errf(err, FIRN_EINVAL, "web: tls_server_config: cert_file %s: %s", wc->cert_file,
                  ssl_error_text());
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, wc->key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
        firn_errf(err, FIRN_EINVAL, "web: tls_server_config: key_file %s: %s", wc->key_file,
                  mismatch ? "does not match the certificate of cert_file" : ssl_error_text());
        ERR_clear_error();
        goto fail;
    }
    if (wc->client_ca_file) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(wc->client_ca_file);
        if (!names || SSL_CTX_load_verify_locations(ctx, wc->client_ca_file, NULL) != 1) {
            if (names)
                sk_X509_NAME_pop_free(names, X509_NAME_free);
            firn_errf(err, FIRN_EINVAL, "web: tls_server_config: client_ca_file %s: %s",
                      wc->client_ca_file, names ? ssl_error_text() : "no certificate in it");
            ERR_clear_error();
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);   /* ctx owns names */
    }
    switch (wc->client_auth) {
    case CONFIG_WEB_NO_CLIENT_CERT:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        break;
    case CONFIG_WEB_REQUEST_CLIENT_CERT:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_certificate);
        break;
    case CONFIG_WEB_REQUIRE_ANY_CLIENT_CERT:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                           accept_any_certificate);
        break;
    case CONFIG_WEB_VERIFY_CLIENT_CERT_IF_GIVEN:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        break;
    case CONFIG_WEB_REQUIRE_AND_VERIFY_CLIENT_CERT:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        break;
    }
    /* Sessions resumed with a verified client need an id context. */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"firn", 4);
    h2o_ssl_register_alpn_protocols(ctx, alpn);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

http_server *http_new(const http_options *o, firn_err *err)
{
    http_options opts;
    http_options_default(&opts);
    if (o)
        opts = *o;
    if (!opts.listen_address)
        opts.listen_address = HTTP_DEFAULT_LISTEN;
    if (opts.workers < 1 || opts.workers > HTTP_WORKERS_MAX) {
        firn_errf(err, FIRN_EINVAL, "web: workers must be between 1 and %d, not %zu",
                  HTTP_WORKERS_MAX, opts.workers);
        return NULL;
    }
    if (opts.queue_max > HTTP_QUEUE_MAX) {
        firn_errf(err, FIRN_EINVAL, "web: queue_max must be at most %u, not %zu", HTTP_QUEUE_MAX,
                  opts.queue_max);
        return NULL;
    }
    if (opts.max_body_bytes < 1) {
        firn_errf(err, FIRN_EINVAL, "web: max_body_bytes must be at least 1");
        return NULL;
    }
    if (!opts.max_body_bytes_in_flight)
        opts.max_body_bytes_in_flight = HTTP_DEFAULT_BODY_BYTES_IN_FLIGHT;
    if (!opts.max_connections)
        opts.max_connections = HTTP_DEFAULT_MAX_CONNECTIONS;
    if (!opts.max_password_checks)
        opts.max_password_checks = opts.workers / 4 ? opts.workers / 4 : 1;
    http_server *s = firn_xcalloc(1, sizeof *s);
    s->listen_address = firn_xstrdup(opts.listen_address);
    opts.listen_address = s->listen_address;
    s->opts = opts;
    s->fd = -1;
    stats_init(&s->other, "other");
    atomic_init(&s->in_flight, 0);
    atomic_init(&s->stop_requested, false);
    h2o_linklist_init_anchor(&s->conns);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->ready_cv, NULL);
    pthread_mutex_init(&s->auth_mu, NULL);
    atomic_init(&s->bcrypt_ok, 0);
    atomic_init(&s->bcrypt_denied, 0);
    atomic_init(&s->bcrypt_refused, 0);
    atomic_init(&s->n_conns, 0);
    atomic_init(&s->body_bytes, 0);
    atomic_init(&s->bodies_refused_budget, 0);
    atomic_init(&s->bodies_refused_auth, 0);
    const config_web *wc = opts.web_config;
    if (wc && wc->tls && !(s->ssl_ctx = tls_context(wc, err))) {
        http_stop(s);
        return NULL;
    }
    if (config_web_auth_required(wc)) {
        if (RAND_bytes(s->auth_secret, sizeof s->auth_secret) != 1) {
            firn_errf(err, FIRN_EIO, "web: no random bytes for the credentials cache: %s",
                      ssl_error_text());
            http_stop(s);
            return NULL;
        }
        s->auth = true;
    }
    if (listen_on(s->listen_address, &s->fd, err) < 0) {
        http_stop(s);
        return NULL;
    }
    s->port = bound_port(s->fd);
    return s;
}

int http_port(const http_server *s)
{
    return s->port;
}

/* ---- routes ---------------------------------------------------------------- */

static int parse_methods(const char *methods, unsigned *out)
{
    unsigned m = 0;
    const char *p = methods;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        if (n == 3 && strncmp(p, "GET", 3) == 0)
            m |= METHOD_GET | METHOD_HEAD;
        else if (n == 4 && strncmp(p, "HEAD", 4) == 0)
            m |= METHOD_HEAD;
        else if (n == 4 && strncmp(p, "POST", 4) == 0)
            m |= METHOD_POST;
        else if (n > 0)
            return -1;
        p += n;
    }
    *out = m;
    return m ? 0 : -1;
}

int http_route(http_server *s, const char *methods, const char *path, unsigned flags,
              http_handler_fn fn, void *ctx, firn_err *err)
{
    unsigned m;
    if (s->started)
        return firn_errf(err, FIRN_EINVAL, "web: route %s: the server is already started", path);
    if (!path || path[0] != '/')
        return firn_errf(err, FIRN_EINVAL, "web: route %s: path must start with '/'",
                         path ? path : "(null)");
    if (!fn)
        return firn_errf(err, FIRN_EINVAL, "web: route %s: no handler", path);
    if (!methods || parse_methods(methods, &m) < 0)
        return firn_errf(err, FIRN_EINVAL,
                         "web: route %s: methods \"%s\": want GET, HEAD or POST, comma-separated",
                         path, methods ? methods : "(null)");
    if (flags & ~(unsigned)(HTTP_ROUTE_PREFIX | HTTP_ROUTE_WORKER | HTTP_ROUTE_RAW_BODY |
                             HTTP_ROUTE_TOO_LARGE | HTTP_ROUTE_MOUNTED))
        return firn_errf(err, FIRN_EINVAL, "web: route %s: unknown flags %#x", path, flags);
    /* One handler label per path: a path registered twice, even once as a
     * prefix, would give two series the same labels. */
    for (size_t i = 0; i < s->n_routes; i++)
        if (strcmp(s->routes[i]->path, path) == 0)
            return firn_errf(err, FIRN_EEXIST, "web: route %s: already registered", path);
    s->routes = firn_grow(s->routes, s->n_routes, &s->cap_routes, sizeof *s->routes, 16);
    route *rt = firn_xcalloc(1, sizeof *rt);
    rt->path = firn_xstrdup(path);
    rt->path_len = strlen(path);
    rt->flags = flags;
    rt->methods = m;
    rt->fn = fn;
    rt->ctx = ctx;
    snprintf(rt->allow, sizeof rt->allow, "%s%s%s%s", (m & METHOD_GET) ? "GET, " : "",
             (m & METHOD_HEAD) ? "HEAD" : "", (m & METHOD_HEAD) && (m & METHOD_POST) ? ", " : "",
             (m & METHOD_POST) ? "POST" : "");
    stats_init(&rt->stats, rt->path);
    s->routes[s->n_routes++] = rt;
    return 0;
}

/* A prefix route covers its path and what lies below it: "/debug/pprof"
 * covers "/debug/pprof/heap" but not "/debug/pprofx". */
static bool prefix_covers(const route *rt, const char *path, size_t len)
{
    if (len < rt->path_len || memcmp(path, rt->path, rt->path_len) != 0)
        return false;
    return len == rt->path_len || rt->path[rt->path_len - 1] == '/' || path[rt->path_len] == '/';
}

/* The exact route for path, else the longest prefix route covering it;
 * only HTTP_ROUTE_MOUNTED ones when mounted. */
static route *route_match_at(const http_server *s, const char *path, size_t len, bool mounted)
{
    route *best = NULL;
    for (size_t i = 0; i < s->n_routes; i++) {
        route *rt = s->routes[i];
        if (mounted && !(rt->flags & HTTP_ROUTE_MOUNTED))
            continue;
        if (!(rt->flags & HTTP_ROUTE_PREFIX)) {
            if (rt->path_len == len && memcmp(rt->path, path, len) == 0)
                return rt;
        } else if (prefix_covers(rt, path, len) && (!best || rt->path_len > best->path_len)) {
            best = rt;
        }
    }
    return best;
}

/* route_match_at on the path, else on what follows each of its leading
 * segments in turn, for the mounted routes ("/x/y/a/b": "/y/a/b", then
 * "/a/b"): the shortest prefix wins. */
static route *route_match(const http_server *s, const char *path, size_t len)
{
    route *rt = route_match_at(s, path, len, false);
    for (size_t i = 1; !rt && i < len; i++)
        if (path[i] == '/')
            rt = route_match_at(s, path + i, len - i, true);
    return rt;
}

static unsigned method_bit(h2o_iovec_t m)
{
    if (h2o_memis(m.base, m.len, H2O_STRLIT("GET")))
        return METHOD_GET;
    if (h2o_memis(m.base, m.len, H2O_STRLIT("HEAD")))
        return METHOD_HEAD;
    if (h2o_memis(m.base, m.len, H2O_STRLIT("POST")))
        return METHOD_POST;
    return 0;
}

/* Lives in the request's pool: the body is freed when h2o is done with it. */
typedef struct body_ref {
    char *body;
} body_ref;

static void body_ref_dispose(void *p)
{
    free(((body_ref *)p)->body);
}

static void add_header(h2o_req_t *req, const h2o_token_t *token, const char *value)
{
    h2o_iovec_t v = h2o_strdup(&req->pool, value, SIZE_MAX);
    h2o_add_header(&req->pool, &req->res.headers, token, NULL, v.base, v.len);
}

/* Send resp on req; the body goes to req's pool (or is freed now).  A
 * 401 carries the challenges of the credentials configured; every response
 * the configured headers. */
static void send_response(http_server *s, h2o_req_t *req, int status, http_response *resp,
                          const char *allow)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = status;
    req->res.reason = firn_http_status_text(status);
    add_header(req, H2O_TOKEN_CONTENT_TYPE,
               resp->content_type ? resp->content_type : "text/plain; charset=utf-8");
    if (resp->content_encoding)
        add_header(req, H2O_TOKEN_CONTENT_ENCODING, resp->content_encoding);
    if (resp->content_disposition)
        add_header(req, H2O_TOKEN_CONTENT_DISPOSITION, resp->content_disposition);
    if (resp->retry_after)
        add_header(req, H2O_TOKEN_RETRY_AFTER, resp->retry_after);
    if (resp->accept_post)
        h2o_add_header_by_str(&req->pool, &req->res.headers, "accept-post", 11, 0, NULL,
                              resp->accept_post, strlen(resp->accept_post));
    if (resp->go_pprof_error)
        h2o_add_header_by_str(&req->pool, &req->res.headers, "x-go-pprof", 10, 0, NULL, "1", 1);
    if (resp->cache_control)
        add_header(req, H2O_TOKEN_CACHE_CONTROL, resp->cache_control);
    if (resp->vary)
        add_header(req, H2O_TOKEN_VARY, resp->vary);
    if (resp->etag[0])
        add_header(req, H2O_TOKEN_ETAG, resp->etag);
    if (allow)
        add_header(req, H2O_TOKEN_ALLOW, allow);
    const config_web *wc = s->opts.web_config;
    if (status == 401 && s->auth) {
        if (wc->n_users)
            add_header(req, H2O_TOKEN_WWW_AUTHENTICATE, "Basic");
        if (wc->n_tokens)
            add_header(req, H2O_TOKEN_WWW_AUTHENTICATE, "Bearer");
    }
    for (size_t i = 0; wc && i < wc->n_headers; i++)
        h2o_add_header_by_str(&req->pool, &req->res.headers, wc->headers[i].name,
                              strlen(wc->headers[i].name), 0, NULL, wc->headers[i].value,
                              strlen(wc->headers[i].value));
    size_t len = resp->body ? resp->body_len : 0;
    /* A 304 has no body and must not claim a length other than the 200's
     * (RFC 9110 8.6): SIZE_MAX makes h2o send no Content-Length. */
    req->res.content_length = status == 304 ? SIZE_MAX : len;
    /* h2o's gzip filter (h2o_setup) compresses compressible types (JSON,
     * text, SVG) from 1 KiB; its own Accept-Encoding check ignores q=0, so
     * whether the client takes gzip is decided here.  A body already
     * encoded, or one with an ETag (a strong ETag names one representation,
     * and the handler chose it), goes out as it is. */
    const char *accept = NULL;
    ssize_t ae = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT_ENCODING, -1);
    if (ae != -1)
        accept = h2o_strdup(&req->pool, req->headers.entries[ae].value.base,
                            req->headers.entries[ae].value.len).base;
    req->compress_hint = !resp->content_encoding && !resp->etag[0] && http_accepts_gzip(accept)
                             ? H2O_COMPRESS_HINT_AUTO
                             : H2O_COMPRESS_HINT_DISABLE;
    h2o_start_response(req, &generator);
    if (len == 0 || method_bit(req->method) == METHOD_HEAD) {
        free(resp->body);
        resp->body = NULL;
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    body_ref *ref = h2o_mem_alloc_shared(&req->pool, sizeof *ref, body_ref_dispose);
    ref->body = resp->body;
    resp->body = NULL;
    h2o_iovec_t buf = h2o_iovec_init(ref->body, len);
    h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

/* Count, time and log one answered request. */
static void record(route_stats *st, const char *method, size_t method_len, const char *path,
                   size_t path_len, int status, double seconds, bool dropped)
{
    if (status >= HTTP_STATUS_MIN && status <= HTTP_STATUS_MAX)
        atomic_fetch_add(&st->codes[status - HTTP_STATUS_MIN], 1);
    firn_histogram_observe(&st->duration, seconds);

    char m[32], p[256], mq[80], pq[600];
    snprintf(m, sizeof m, "%.*s", (int)(method_len < sizeof m ? method_len : sizeof m - 1),
             method);
    snprintf(p, sizeof p, "%.*s", (int)(path_len < sizeof p ? path_len : sizeof p - 1), path);
    firn_log_quote(mq, sizeof mq, m);
    firn_log_quote(pq, sizeof pq, p);
    firn_log(FIRN_LOG_DEBUG, "web", dropped ? "client gone, response dropped" : "request",
             "method=%s path=%s code=%d duration=%.3fms", mq, pq, status, seconds * 1e3);
}

/* Record a request, then send its response if the client is still there
 * (req not NULL), else drop it.  Recorded first because h2o may dispose
 * of req inside h2o_send. */
static void finish(http_server *s, h2o_req_t *req, route_stats *st, const char *method,
                   size_t method_len, const char *path, size_t path_len, uint64_t start_ns,
                   http_response *resp, const char *allow)
{
    int status = resp->status ? resp->status : 200;
    if (status < 200 || status > HTTP_STATUS_MAX) {
        firn_log(FIRN_LOG_WARN, "web", "handler returned an invalid status", "handler=%s code=%d",
                 st->handler, status);
        http_respond_text(resp, 500, "handler returned invalid status %d", status);
        status = 500;
        allow = NULL;
    }
    record(st, method, method_len, path, path_len, status,
           (double)(now_ns() - start_ns) / 1e9, req == NULL);
    atomic_fetch_sub(&s->in_flight, 1);
    if (req) {
        send_response(s, req, status, resp, allow);
    } else {
        free(resp->body);
        resp->body = NULL;
    }
}

/* Some responses h2o makes itself, before on_req: 413 for a body over
 * max_body_bytes (h2o has the same limit, so it never buffers more), 404
 * for a path that is not absolute.  h2o binds those requests to the
 * host's fallback path, where this logger sits, so they are counted and
 * logged like ours. */
typedef struct http_h2o_logger {
    h2o_logger_t super;
    http_server *server;
} http_h2o_logger;

static void on_h2o_response(h2o_logger_t *self, h2o_req_t *req)
{
    http_server *s = ((http_h2o_logger *)self)->server;
    route *rt = route_match(s, req->path_normalized.base, req->path_normalized.len);
    struct timeval now, *begin = &req->timestamps.request_begin_at;
    gettimeofday(&now, NULL);
    double seconds = begin->tv_sec ? (double)(now.tv_sec - begin->tv_sec) +
                                         (double)(now.tv_usec - begin->tv_usec) / 1e6
                                   : 0;
    record(rt ? &rt->stats : &s->other, req->method.base, req->method.len,
           req->path_normalized.base, req->path_normalized.len, req->res.status,
           seconds > 0 ? seconds : 0, false);
}

/* h2o's own 413 (a declared or received body over max_body_bytes, refused
 * before on_req) to a HTTP_ROUTE_TOO_LARGE route: the route's handler
 * answers instead, on the loop thread, and this filter puts its status,
 * Content-Type and body in place of h2o's. */
static int build_request(http_job *job, h2o_req_t *req, bool too_large, firn_err *err);

typedef struct too_large_filter {
    h2o_filter_t super;
    http_server *server;
} too_large_filter;

typedef struct replace_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
} replace_ostream;

static void replace_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs,
                            size_t bufcnt, h2o_send_state_t state)
{
    (void)bufs, (void)bufcnt;
    replace_ostream *r = (replace_ostream *)self;
    if (h2o_send_state_is_in_progress(state)) {
        h2o_ostream_send_next(self, req, NULL, 0, state);
        return;
    }
    h2o_ostream_send_next(self, req, &r->body, 1, state);
}

static void on_setup_too_large(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    http_server *s = ((too_large_filter *)self)->server;
    route *rt = req->res.status == 413
                    ? route_match(s, req->path_normalized.base, req->path_normalized.len)
                    : NULL;
    http_job job = {.route = rt};
    firn_err err = {0};
    bool answer = rt && (rt->flags & HTTP_ROUTE_TOO_LARGE) &&
                  (method_bit(req->method) & rt->methods);
    if (answer)
        job.arena = firn_arena_new(0);
    if (answer && build_request(&job, req, true, &err) == 0) {
        rt->fn(rt->ctx, &job.request, &job.response);
        http_response *resp = &job.response;
        int status = resp->status ? resp->status : 200;
        req->res.status = status;
        req->res.reason = firn_http_status_text(status);
        ssize_t i;
        while ((i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1)) != -1)
            h2o_delete_header(&req->res.headers, i);
        add_header(req, H2O_TOKEN_CONTENT_TYPE,
                   resp->content_type ? resp->content_type : "text/plain; charset=utf-8");
        replace_ostream *r = (replace_ostream *)h2o_add_ostream(req, sizeof *r, slot);
        r->super.do_send = replace_do_send;
        r->body = h2o_strdup(&req->pool, resp->body ? resp->body : "",
                             resp->body ? resp->body_len : 0);
        req->res.content_length = r->body.len;
        slot = &r->super.next;
        free(resp->body);
    }
    firn_arena_free(job.arena);
    h2o_setup_next_ostream(req, slot);
}

/* ---- the credentials cache ----------------------------------------------------- */

/* The cache key of (user, password): SHA-256 of the server's random secret,
 * the user's length, the user and the password, so the cache holds no
 * password and its keys are of no use outside this process. */
static void auth_key(const http_server *s, const unsigned char *user, size_t user_len,
                     const unsigned char *password, size_t password_len,
                     unsigned char key[HTTP_AUTH_KEY_LEN])
{
    unsigned char buf[HTTP_AUTH_KEY_LEN + sizeof(uint64_t) + HTTP_AUTH_MAX_BYTES];
    uint64_t ulen = user_len;
    size_t n = 0;
    assert(user_len + password_len <= HTTP_AUTH_MAX_BYTES);
    memcpy(buf, s->auth_secret, HTTP_AUTH_KEY_LEN);
    n += HTTP_AUTH_KEY_LEN;
    memcpy(buf + n, &ulen, sizeof ulen);
    n += sizeof ulen;
    memcpy(buf + n, user, user_len);
    n += user_len;
    memcpy(buf + n, password, password_len);
    n += password_len;
    if (!EVP_Digest(buf, n, key, NULL, EVP_sha256(), NULL))
        memset(key, 0, HTTP_AUTH_KEY_LEN);   /* all-zero keys never match: see auth_cache_get */
    OPENSSL_cleanse(buf, n);
}

static bool key_is_zero(const unsigned char *key)
{
    unsigned char any = 0;
    for (size_t i = 0; i < HTTP_AUTH_KEY_LEN; i++)
        any |= key[i];
    return any == 0;
}

/* The remembered answer for key, if it has not expired.  An acceptance
 * lives HTTP_AUTH_CACHE_TTL_S past its last use (the users cannot change
 * while the server runs, so a steady client never pays bcrypt again and an
 * inline route such as /-/healthy stays on the loop); a refusal lives that
 * long past its check. */
static bool auth_cache_get(http_server *s, const unsigned char *key, bool *ok)
{
    if (key_is_zero(key))
        return false;
    uint64_t now = now_ns();
    bool hit = false;
    pthread_mutex_lock(&s->auth_mu);
    for (size_t i = 0; i < HTTP_AUTH_CACHE_SLOTS && !hit; i++) {
        auth_entry *e = &s->auth_cache[i];
        if (e->used && e->expires_ns > now && CRYPTO_memcmp(e->key, key, HTTP_AUTH_KEY_LEN) == 0) {
            *ok = e->ok;
            hit = true;
            if (e->ok)
                e->expires_ns = now + (uint64_t)HTTP_AUTH_CACHE_TTL_S * 1000000000u;
        }
    }
    pthread_mutex_unlock(&s->auth_mu);
    return hit;
}

/* Remember an answer.  When full, a refusal is forgotten before an
 * acceptance (so guessing passwords does not push the users' own
 * credentials out), the oldest first. */
static void auth_cache_put(http_server *s, const unsigned char *key, bool ok)
{
    if (key_is_zero(key))
        return;
    uint64_t now = now_ns();
    pthread_mutex_lock(&s->auth_mu);
    auth_entry *same = NULL, *free_slot = NULL, *oldest_refusal = NULL, *oldest = NULL;
    for (size_t i = 0; i < HTTP_AUTH_CACHE_SLOTS && !same; i++) {
        auth_entry *e = &s->auth_cache[i];
        if (!e->used || e->expires_ns <= now) {
            if (!free_slot)
                free_slot = e;
        } else if (memcmp(e->key, key, HTTP_AUTH_KEY_LEN) == 0) {
            same = e;
        } else {
            if (!e->ok && (!oldest_refusal || e->expires_ns < oldest_refusal->expires_ns))
                oldest_refusal = e;
            if (!oldest || e->expires_ns < oldest->expires_ns)
                oldest = e;
        }
    }
    auth_entry *e = same ? same : free_slot ? free_slot : oldest_refusal ? oldest_refusal : oldest;
    memcpy(e->key, key, HTTP_AUTH_KEY_LEN);
    e->used = true;
    e->ok = ok;
    e->expires_ns = now + (uint64_t)HTTP_AUTH_CACHE_TTL_S * 1000000000u;
    pthread_mutex_unlock(&s->auth_mu);
}

/* A verify job's work, on a worker: bcrypt, then remember the answer. */
static void verify_credentials(http_server *s, http_job *job)
{
    bool ok = config_web_check_basic(s->opts.web_config, job->user, job->user_len,
                                     job->password, job->password_len);
    atomic_fetch_add(ok ? &s->bcrypt_ok : &s->bcrypt_denied, 1);
    auth_cache_put(s, job->auth_key, ok);
    job->auth_ok = ok;
}

/* ---- jobs and workers -------------------------------------------------------- */

static void job_free(http_job *job)
{
    if (job->password)
        OPENSSL_cleanse((char *)job->password, job->password_len);
    firn_arena_free(job->arena);
    free(job->response.body);
    free(job);
}

static void guard_dispose(void *p)
{
    job_guard *g = p;
    if (g->job) {
        g->job->req = NULL;
        g->job->guard = NULL;
    }
}

/* Answer a job that came back (or never left) and free it. */
static void job_complete(http_server *s, http_job *job)
{
    if (job->guard)
        job->guard->job = NULL;
    const http_request *r = &job->request;
    route *rt = job->route;
    if (job->response.status >= 500 && job->response.status != 503)
        firn_log(FIRN_LOG_WARN, "web", "handler failed", "handler=%s code=%d", rt->path,
                 job->response.status);
    finish(s, job->req, &rt->stats, r->method, strlen(r->method), r->path, strlen(r->path),
           job->start_ns, &job->response, NULL);
    job_free(job);
}

static void dispatch(http_server *s, h2o_req_t *req, uint64_t start);

/* A verify job back from its worker (or answered 503 at shutdown): route
 * the request if its credentials were accepted, else answer 401. */
static void verify_done(http_server *s, http_job *job)
{
    assert(s->verifies > 0);
    s->verifies--;
    if (job->guard)
        job->guard->job = NULL;
    if (job->req && job->auth_ok && job->response.status == 0) {
        dispatch(s, job->req, job->start_ns);
    } else {
        const http_request *r = &job->request;
        if (!job->auth_ok && job->response.status == 0)
            http_respond_text(&job->response, 401, "Unauthorized");
        finish(s, job->req, job->route ? &job->route->stats : &s->other, r->method,
               strlen(r->method), r->path, strlen(r->path), job->start_ns, &job->response,
               NULL);
    }
    job_free(job);
}

static void job_done(http_server *s, http_job *job)
{
    if (job->verify)
        verify_done(s, job);
    else
        job_complete(s, job);
}

static void on_jobs_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    http_server *s = H2O_STRUCT_FROM_MEMBER(http_server, job_receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        http_job *job = H2O_STRUCT_FROM_MEMBER(http_job, msg, m);
        assert(s->jobs_out > 0);
        s->jobs_out--;
        job_done(s, job);
    }
}

static void *worker_main(void *arg)
{
    http_server *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->pool_stopping) {
            s->idle++;
            pthread_cond_wait(&s->cv, &s->mu);
            s->idle--;
        }
        http_job *job = s->head;
        if (!job)
            break;
        s->head = job->next;
        if (!s->head)
            s->tail = NULL;
        s->queued--;
        pthread_mutex_unlock(&s->mu);
        if (job->verify)
            verify_credentials(s, job);
        else
            job->route->fn(job->route->ctx, &job->request, &job->response);
        h2o_multithread_send_message(&s->job_receiver, &job->msg);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Queue a job unless that would leave more than queue_max jobs waiting
 * once every idle worker has taken one. */
static bool pool_submit(http_server *s, http_job *job)
{
    bool ok = false;
    pthread_mutex_lock(&s->mu);
    if (!s->pool_stopping && s->queued < s->idle + s->opts.queue_max) {
        job->next = NULL;
        if (s->tail)
            s->tail->next = job;
        else
            s->head = job;
        s->tail = job;
        s->queued++;
        ok = true;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

/* ---- requests ---------------------------------------------------------------- */

/* h2o refuses such bodies first (see on_h2o_response); this is for what
 * reaches on_req all the same, declared or received. */
static bool body_too_large(const h2o_req_t *req, size_t max)
{
    if (req->entity.len > max)
        return true;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_LENGTH, -1);
    if (i < 0)
        return false;
    const h2o_iovec_t *v = &req->headers.entries[i].value;
    size_t declared = h2o_strtosize(v->base, v->len);
    return declared != SIZE_MAX && declared > max;
}

/* Copy what a handler may read off h2o's request into job's arena (not
 * the body when it is too large). */
static int build_request(http_job *job, h2o_req_t *req, bool too_large, firn_err *err)
{
    http_header_part *headers = NULL;
    bool form = false;
    if (req->headers.size)   /* h2o holds them already, within its caps */
        headers = firn_arena_alloc(job->arena, req->headers.size * sizeof *headers);
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        headers[i] = (http_header_part){h->name->base, h->name->len, h->value.base, h->value.len};
        if (h->name == &H2O_TOKEN_CONTENT_TYPE->buf)
            form = form || http_is_form_content_type(h->value.base, h->value.len);
    }
    http_request_parts parts = {
        .method = req->method.base,
        .method_len = req->method.len,
        .path = req->path_normalized.base,
        .path_len = req->path_normalized.len,
        .headers = headers,
        .n_headers = req->headers.size,
        .body = too_large ? NULL : req->entity.base,
        .body_len = req->entity.base && !too_large ? req->entity.len : 0,
        .form_body = form && !too_large && method_bit(req->method) == METHOD_POST &&
                     !(job->route->flags & HTTP_ROUTE_RAW_BODY),
        .too_large = too_large,
    };
    if (req->query_at != SIZE_MAX) {
        parts.query = req->path.base + req->query_at + 1;
        parts.query_len = req->path.len - req->query_at - 1;
    }
    return http_request_build(&job->request, job->arena, &parts, err);
}

/* Queue a worker job for req, guarded (see "A job's life"); false, with
 * the job freed and resp set to 503, when the queue is full or stopping. */
static bool submit(http_server *s, h2o_req_t *req, http_job *job, http_response *resp)
{
    job->req = req;
    job->guard = h2o_mem_alloc_shared(&req->pool, sizeof *job->guard, guard_dispose);
    job->guard->job = job;
    if (!pool_submit(s, job)) {
        job->guard->job = NULL;
        job_free(job);
        bool stopping = atomic_load(&s->stop_requested);
        http_respond_text(resp, 503, stopping ? "server shutting down" : "server busy");
        return false;
    }
    s->jobs_out++;
    return true;
}

/* Route and answer a request that arrived at start (counted in flight),
 * its credentials accepted if any are needed. */
static void dispatch(http_server *s, h2o_req_t *req, uint64_t start)
{
    h2o_iovec_t path = req->path_normalized;
    route *rt = route_match(s, path.base, path.len);
    route_stats *st = rt ? &rt->stats : &s->other;
    http_response resp = {0};
#define FINISH(allow)                                                                         \
    finish(s, req, st, req->method.base, req->method.len, path.base, path.len, start, &resp, \
           (allow))

    if (!rt) {
        http_respond_text(&resp, 404, "404 page not found");
        FINISH(NULL);
        return;
    }
    if (!(method_bit(req->method) & rt->methods)) {
        http_respond_text(&resp, 405, "Method Not Allowed");
        FINISH(rt->allow);
        return;
    }
    bool too_large = body_too_large(req, s->opts.max_body_bytes);
    if (too_large && !(rt->flags & HTTP_ROUTE_TOO_LARGE)) {
        http_respond_text(&resp, 413, "request body too large: more than %zu bytes",
                         s->opts.max_body_bytes);
        FINISH(NULL);
        return;
    }

    firn_err err = {0};
    http_job *job = firn_xcalloc(1, sizeof *job);
    job->arena = firn_arena_new(0);
    job->route = rt;
    job->start_ns = start;
    if (build_request(job, req, too_large, &err) < 0) {
        http_respond_text(&resp, 400, "%s", err.msg);
        job_free(job);
        FINISH(NULL);
        return;
    }
    if (!(rt->flags & HTTP_ROUTE_WORKER) || too_large) {
        rt->fn(rt->ctx, &job->request, &job->response);
        job->req = req;
        job_complete(s, job);
        return;
    }
    if (!submit(s, req, job, &resp))
        FINISH(NULL);
#undef FINISH
}

/* Standard base64 with padding, as Go's base64.StdEncoding decodes the
 * credentials of a basic Authorization header; -1 when malformed or longer
 * than cap. */
static ssize_t base64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (len % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t n = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            char c = in[i + j];
            const char *at = c ? strchr(alphabet, c) : NULL;
            if (c == '=' && j >= 2 && i + 4 == len) {
                pad++;
            } else if (!at || pad) {
                return -1;
            }
            n = n << 6 | (uint32_t)(at ? at - alphabet : 0);
        }
        size_t bytes = (size_t)(3 - pad);
        if (o + bytes > cap)
            return -1;
        unsigned char b[3] = {(unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
        memcpy(out + o, b, bytes);
        o += bytes;
    }
    return (ssize_t)o;
}

/* "Basic " or "Bearer ": the scheme, case-insensitively, and one space. */
static bool has_scheme(h2o_iovec_t v, const char *scheme)
{
    size_t n = strlen(scheme);
    return v.len > n && strncasecmp(v.base, scheme, n) == 0 && v.base[n] == ' ';
}

typedef enum auth_result { AUTH_OK, AUTH_DENIED, AUTH_VERIFY } auth_result;

/* Basic credentials as decoded: "user:password" in buf. */
typedef struct basic_credentials {
    unsigned char buf[HTTP_AUTH_MAX_BYTES];
    size_t len, user_len;
    unsigned char key[HTTP_AUTH_KEY_LEN];
} basic_credentials;

/* What an Authorization header value (NULL base: none) is worth, on the
 * loop thread: AUTH_VERIFY (with bc filled) when only bcrypt can tell. */
static auth_result auth_check_value(http_server *s, h2o_iovec_t v, basic_credentials *bc)
{
    const config_web *wc = s->opts.web_config;
    if (!v.base)
        return AUTH_DENIED;
    if (has_scheme(v, "Bearer"))
        return config_web_check_bearer(wc, v.base + 7, v.len - 7) ? AUTH_OK : AUTH_DENIED;
    if (wc->n_users == 0 || !has_scheme(v, "Basic"))
        return AUTH_DENIED;
    ssize_t n = base64_decode(v.base + 6, v.len - 6, bc->buf, sizeof bc->buf);
    const unsigned char *colon = n > 0 ? memchr(bc->buf, ':', (size_t)n) : NULL;
    if (!colon)
        return AUTH_DENIED;
    bc->len = (size_t)n;
    bc->user_len = (size_t)(colon - bc->buf);
    auth_key(s, bc->buf, bc->user_len, colon + 1, bc->len - bc->user_len - 1, bc->key);
    bool ok;
    if (auth_cache_get(s, bc->key, &ok))
        return ok ? AUTH_OK : AUTH_DENIED;
    return AUTH_VERIFY;
}

static auth_result auth_check(http_server *s, h2o_req_t *req, basic_credentials *bc)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    return auth_check_value(s, i < 0 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value,
                            bc);
}

/* Hand credentials that missed the cache to a worker; the request waits
 * (guarded as a worker job) and comes back through verify_done.  Past
 * max_password_checks under way, 503 at once: every check costs a worker
 * tens of milliseconds, and a client guessing passwords must not take the
 * workers from requests whose credentials are known. */
static void submit_verify(http_server *s, h2o_req_t *req, route *rt, uint64_t start,
                          const basic_credentials *bc)
{
    route_stats *st = rt ? &rt->stats : &s->other;
    http_response resp = {0};
    if (s->verifies >= s->opts.max_password_checks) {
        atomic_fetch_add(&s->bcrypt_refused, 1);
        http_respond_text(&resp, 503, "too many password checks at once; retry");
        resp.retry_after = "1";
        finish(s, req, st, req->method.base, req->method.len, req->path_normalized.base,
               req->path_normalized.len, start, &resp, NULL);
        return;
    }
    http_job *job = firn_xcalloc(1, sizeof *job);
    job->arena = firn_arena_new(0);
    char *copy = firn_arena_alloc(job->arena, bc->len + 1);
    char *method = firn_arena_strndup(job->arena, req->method.base, req->method.len);
    char *path = firn_arena_strndup(job->arena, req->path_normalized.base,
                                    req->path_normalized.len);
    memcpy(copy, bc->buf, bc->len);
    copy[bc->len] = '\0';
    job->verify = true;
    job->route = rt;
    job->start_ns = start;
    job->request.method = method;
    job->request.path = path;
    job->user = copy;
    job->user_len = bc->user_len;
    job->password = copy + bc->user_len + 1;
    job->password_len = bc->len - bc->user_len - 1;
    memcpy(job->auth_key, bc->key, sizeof job->auth_key);
    if (submit(s, req, job, &resp)) {
        s->verifies++;
        assert(s->verifies <= s->opts.max_password_checks);
    } else
        finish(s, req, st, req->method.base, req->method.len, req->path_normalized.base,
               req->path_normalized.len, start, &resp, NULL);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    http_server *s = ((http_h2o_handler *)self)->server;
    uint64_t start = now_ns();
    atomic_fetch_add(&s->in_flight, 1);
    if (s->auth) {
        basic_credentials bc;
        route *rt = route_match(s, req->path_normalized.base, req->path_normalized.len);
        auth_result r = auth_check(s, req, &bc);
        if (r == AUTH_VERIFY)
            submit_verify(s, req, rt, start, &bc);
        OPENSSL_cleanse(&bc, sizeof bc);
        if (r == AUTH_VERIFY)
            return 0;
        if (r == AUTH_DENIED) {
            http_response resp = {0};
            http_respond_text(&resp, 401, "Unauthorized");
            finish(s, req, rt ? &rt->stats : &s->other, req->method.base, req->method.len,
                   req->path_normalized.base, req->path_normalized.len, start, &resp, NULL);
            return 0;
        }
    }
    dispatch(s, req, start);
    return 0;
}

/* ---- request bodies: caps and the in-flight budget ------------------------------ */

static void on_first_bytes(h2o_socket_t *sock, const char *err);

/* The cap on a route's body: POST routes take max_body_bytes; a GET-only
 * route, and a path with no route, a small body at most (nothing there
 * reads one). */
static size_t route_body_cap(const http_server *s, const route *rt)
{
    if (rt && (rt->methods & METHOD_POST))
        return s->opts.max_body_bytes;
    return s->opts.max_body_bytes < HTTP_SMALL_BODY_CAP ? s->opts.max_body_bytes
                                                        : HTTP_SMALL_BODY_CAP;
}

/* The route a request target goes to, found as dispatch will find it: on
 * the path h2o percent-decodes and cleans. */
static route *head_route(const http_server *s, const http_head *h)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    size_t query_at, *norm = NULL;
    h2o_iovec_t path = h2o_url_normalize_path(&pool, h->path, h->path_len, &query_at, &norm);
    route *rt = route_match(s, path.base, path.len);
    h2o_mem_clear_pool(&pool);
    return rt;
}

/* Whether the credentials of a head may be accepted: false when they are
 * missing or known to be wrong (a bcrypt answer still to come counts as
 * maybe). */
static bool head_may_authenticate(http_server *s, const http_head *h)
{
    basic_credentials bc;
    auth_result r =
        auth_check_value(s, h2o_iovec_init(h->authorization, h->authorization_len), &bc);
    OPENSSL_cleanse(&bc, sizeof bc);
    return r != AUTH_DENIED;
}

/* What h2o holds of a connection's input: the bytes of the request being
 * read or served (h2o keeps a request's head and body in the socket's
 * buffer until it is answered; over TLS, decrypted as they come, so what
 * waits for decryption is a record at most). */
static size_t conn_buffered(const h2o_socket_t *sock)
{
    return sock->input->size;
}

static void conn_charge(http_server *s, http_conn *c, size_t bytes)
{
    size_t total = atomic_load(&s->body_bytes);
    assert(total >= c->charge);
    atomic_store(&s->body_bytes, total - c->charge + bytes);
    c->charge = bytes;
}

/* A refusal written straight to the socket, and its write side shut: h2o
 * has not begun an answer (it reads no request while it answers one), and
 * it must not read the body to answer through its own path.  The caller
 * drops the rest of the request, then has h2o close the connection. */
static void refuse_raw(http_server *s, h2o_socket_t *sock, int status, const char *text)
{
    const config_web *wc = s->opts.web_config;
    firn_buf b = {0};
    firn_buf_printf(&b,
                    "HTTP/1.1 %d %s\r\nServer: firn/" FIRN_VERSION
                    "\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    "Connection: close\r\nContent-Length: %zu\r\n",
                    status, firn_http_status_text(status), strlen(text) + 1);
    if (status == 503)
        firn_buf_puts(&b, "Retry-After: 1\r\n");
    if (status == 401 && wc && wc->n_users)
        firn_buf_puts(&b, "WWW-Authenticate: Basic\r\n");
    if (status == 401 && wc && wc->n_tokens)
        firn_buf_puts(&b, "WWW-Authenticate: Bearer\r\n");
    for (size_t i = 0; wc && i < wc->n_headers; i++)
        firn_buf_printf(&b, "%s: %s\r\n", wc->headers[i].name, wc->headers[i].value);
    firn_buf_printf(&b, "\r\n%s\n", text);
    /* A few hundred bytes into an idle socket's send buffer: one send.  If
     * it does not all fit, the client sees the connection close. */
    if (!b.failed)
        (void)send(h2o_socket_get_fd(sock), b.data, b.len, MSG_DONTWAIT | MSG_NOSIGNAL);
    firn_buf_free(&b);
    shutdown(h2o_socket_get_fd(sock), SHUT_WR);
}

typedef enum gate_verdict {
    GATE_PASS,
    GATE_REFUSE_AUTH,    /* 401 */
    GATE_REFUSE_CAP,     /* 413, when h2o has parsed the head already */
    GATE_REFUSE_BUDGET,  /* 503 */
} gate_verdict;

/* Judge what a connection has buffered before h2o reads on: the head of its
 * request once complete (route cap, credentials, budget), then the bytes
 * as they come against the budget. */
static gate_verdict body_gate(http_server *s, http_conn *c)
{
    h2o_socket_t *sock = c->sock;
    size_t buffered = conn_buffered(sock);
    bool body = false;
    if (!c->head_done) {
        http_head h;
        if (http_head_scan(sock->input->bytes, sock->input->size, &h) <= 0) {
            conn_charge(s, c, buffered);   /* h2o waits for the rest, or refuses it */
            return GATE_PASS;
        }
        c->head_done = true;
        c->request_len = h.chunked ? SIZE_MAX
                         : h.head_len + (h.has_length ? h.content_length : 0);
        route *rt = head_route(s, &h);
        c->cap = route_body_cap(s, rt);
        c->copies = rt && (rt->flags & HTTP_ROUTE_WORKER) ? 2 : 1;
        body = h.chunked || (h.has_length && h.content_length > 0);
        size_t small = HTTP_SMALL_BODY_CAP;
        if (s->auth && (h.chunked || (h.has_length && h.content_length > small)) &&
            !head_may_authenticate(s, &h))
            return GATE_REFUSE_AUTH;
        c->reserved = h.head_len;
        if (h.has_length && h.content_length > c->cap && !c->fresh)
            return GATE_REFUSE_CAP;
        if (h.has_length && h.content_length > c->cap)
            body = false;   /* h2o answers 413 at once (on_conn_read gives it the cap) */
        else if (h.has_length)
            c->reserved += h.content_length * c->copies;
    } else {
        body = true;   /* bytes of a body h2o is reading */
    }
    size_t need = buffered * c->copies > c->reserved ? buffered * c->copies : c->reserved;
    size_t others = atomic_load(&s->body_bytes) - c->charge;
    if (body && need > c->charge && others + need > s->opts.max_body_bytes_in_flight)
        return GATE_REFUSE_BUDGET;
    conn_charge(s, c, need);
    return GATE_PASS;
}

/* Every read of a connection h2o serves comes here first (conns_wrap). */
static void on_conn_read(h2o_socket_t *sock, const char *err)
{
    http_conn *c = sock->on_close.data;
    http_server *s = c->server;
    h2o_socket_cb next = c->h2o_read;
    assert(next);
    if (c->discard && !err) {
        /* a refused request's body: dropped as it comes (h2o is not called
         * again but to close), then the connection is closed */
        size_t n = sock->input->size < c->discard ? sock->input->size : c->discard;
        c->discard -= n;
        h2o_buffer_consume(&sock->input, sock->input->size);
        if (c->discard)
            return;
        err = h2o_socket_error_closed;
    }
    gate_verdict v = err ? GATE_PASS : body_gate(s, c);
    if (v == GATE_REFUSE_BUDGET)
        atomic_fetch_add(&s->bodies_refused_budget, 1);
    else if (v == GATE_REFUSE_AUTH)
        atomic_fetch_add(&s->bodies_refused_auth, 1);
    if (v != GATE_PASS) {
        if (sock->ssl && c->fresh) {
            /* no raw bytes over TLS: h2o's own answer, 413 before the body */
            c->cap = 0;
            c->head_done = true;
        } else if (sock->ssl) {
            /* h2o has read this head already (it came with the end of the
             * handshake, or behind the previous request), so it would not
             * look at the cap again: close */
            err = h2o_socket_error_closed;
        } else {
            refuse_raw(s, sock, v == GATE_REFUSE_BUDGET ? 503 : v == GATE_REFUSE_AUTH ? 401 : 413,
                       v == GATE_REFUSE_BUDGET ? "too many request body bytes in flight; retry"
                       : v == GATE_REFUSE_AUTH ? "Unauthorized"
                                               : "request entity is too large");
            /* Closing with the body still arriving would reset the
             * connection, and the client might never read the answer: read
             * and drop the rest of the request first (a chunked one up to a
             * body cap), within h2o's request timeout. */
            size_t buffered = sock->input->size;
            c->discard = c->request_len == SIZE_MAX ? s->opts.max_body_bytes
                         : c->request_len > buffered ? c->request_len - buffered
                                                     : 0;
            h2o_buffer_consume(&sock->input, buffered);
            conn_charge(s, c, 0);
            if (c->discard)
                return;
            err = h2o_socket_error_closed;   /* h2o closes the connection */
        }
    }
    /* h2o checks a declared length, and a chunked body as it grows, against
     * max_request_entity_size: while it reads this connection that is the
     * route's cap.  One loop thread: nothing else reads it meanwhile. */
    s->globalconf.max_request_entity_size = c->head_done ? c->cap : s->opts.max_body_bytes;
    next(sock, err);   /* may close the connection and free c */
    s->globalconf.max_request_entity_size = s->opts.max_body_bytes;
}

/* Put on_conn_read in front of the read callback h2o set on c, if it set
 * a new one. */
static void conn_wrap(http_server *s, http_conn *c)
{
    h2o_socket_cb cb = c->sock->_cb.read;
    /* none: h2o serves a request, its bytes stay charged until answered */
    if (!cb || cb == on_conn_read || cb == on_first_bytes)
        return;
    c->h2o_read = cb;
    c->sock->_cb.read = on_conn_read;
    c->fresh = conn_buffered(c->sock) == 0;
    c->head_done = false;
    c->reserved = 0;
    conn_charge(s, c, conn_buffered(c->sock));
}

/* Put on_conn_read in front of the read callback h2o set on each
 * connection.  h2o sets its own at every request (h2o_socket_read_start
 * from inside libh2o, which firn cannot intercept), so the loop thread
 * calls this after every turn of the loop, before any further read is
 * dispatched.  A new callback means h2o begins a new request (or resumes
 * one after "100 Continue"): its head is judged afresh. */
static void conns_wrap(http_server *s)
{
    for (h2o_linklist_t *l = s->conns.next; l != &s->conns; l = l->next)
        conn_wrap(s, H2O_STRUCT_FROM_MEMBER(http_conn, link, l));
}

/* ---- the loop thread ----------------------------------------------------------- */

static void on_accept(h2o_socket_t *listener, const char *err);

static void on_conn_close(void *data)
{
    http_conn *c = data;
    http_server *s = c->server;
    if (h2o_timeout_is_linked(&c->first_bytes))
        h2o_timeout_unlink(&c->first_bytes);
    h2o_linklist_unlink(&c->link);
    conn_charge(s, c, 0);
    free(c);
    assert(atomic_load(&s->n_conns) > 0);
    atomic_fetch_sub(&s->n_conns, 1);
    /* a slot is free: the clients waiting in the backlog may come in */
    if (s->accept_paused && !atomic_load(&s->stop_requested) && s->listener) {
        s->accept_paused = false;
        h2o_socket_read_start(s->listener, on_accept);
    }
}

static void on_plain_refused(h2o_socket_t *sock, const char *err)
{
    (void)err;
    h2o_socket_close(sock);
}

/* HTTPS: the first bytes of a connection decide.  A TLS handshake record
 * goes to h2o; plain HTTP gets Go's answer (net/http says this to a client
 * that speaks HTTP to its TLS port), so a misconfigured scraper or browser
 * is told what is wrong; anything else is closed. */
static void on_first_bytes(h2o_socket_t *sock, const char *err)
{
    static const char plain_http[] =
        "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
    http_conn *c = sock->on_close.data;
    if (!err && sock->input->size == 0)
        return;
    h2o_socket_read_stop(sock);
    h2o_timeout_unlink(&c->first_bytes);
    if (err) {
        h2o_socket_close(sock);
        return;
    }
    unsigned char first = (unsigned char)sock->input->bytes[0];
    if (first == 0x16) {   /* TLS record type "handshake" */
        /* may close the socket (a bad handshake) and free c; conns_wrap
         * puts the body gate in front once h2o reads requests */
        h2o_accept(&c->server->accept_ctx, sock);
    } else if (first >= 'A' && first <= 'Z') {
        h2o_iovec_t buf = h2o_iovec_init(plain_http, sizeof plain_http - 1);
        h2o_socket_write(sock, &buf, 1, on_plain_refused);
    } else {
        h2o_socket_close(sock);
    }
}

/* A client that connects to the HTTPS port and sends nothing. */
static void on_first_bytes_timeout(h2o_timeout_entry_t *entry)
{
    http_conn *c = H2O_STRUCT_FROM_MEMBER(http_conn, first_bytes, entry);
    h2o_socket_read_stop(c->sock);
    h2o_socket_close(c->sock);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    http_server *s = listener->data;
    if (err)
        return;
    for (int i = 0; i < HTTP_ACCEPT_BURST; i++) {
        if (atomic_load(&s->n_conns) >= s->opts.max_connections) {
            /* --web.max-connections: leave the rest in the backlog until a
             * connection closes (as Go's netutil.LimitListener) */
            h2o_socket_read_stop(listener);
            s->accept_paused = true;
            return;
        }
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (!sock)
            return;
        http_conn *c = firn_xcalloc(1, sizeof *c);  /* h2o asserts an unlinked link is zeroed */
        int one = 1;
        setsockopt(h2o_socket_get_fd(sock), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->sock = sock;
        c->server = s;
        h2o_linklist_insert(&s->conns, &c->link);
        atomic_fetch_add(&s->n_conns, 1);
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = c;
        if (s->ssl_ctx) {
            c->first_bytes.cb = on_first_bytes_timeout;
            h2o_timeout_link(s->loop, &s->ctx.handshake_timeout, &c->first_bytes);
            h2o_socket_read_start(sock, on_first_bytes);
        } else {
            /* h2o's HTTP/1 reads nothing yet (the input is empty), so c
             * lives on; the gate goes in front before the first read,
             * which may come in this turn */
            h2o_accept(&s->accept_ctx, sock);
            conn_wrap(s, c);
        }
    }
}

static void h2o_setup(http_server *s)
{
    h2o_config_init(&s->globalconf);
    s->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("firn/" FIRN_VERSION));
    s->globalconf.max_request_entity_size = s->opts.max_body_bytes;
    s->globalconf.http1.upgrade_to_http2 = 0;
    s->globalconf.http1.req_timeout = HTTP_REQUEST_TIMEOUT_S * 1000;
    h2o_hostconf_t *host =
        h2o_config_register_host(&s->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(host, "/", 0);
    /* Flame graph JSON runs to megabytes: gzip at level 1 costs a few ms a
     * megabyte and sends a tenth of the bytes (send_response decides per
     * request whether the client takes it). */
    h2o_compress_register(pathconf, &(h2o_compress_args_t){
                                        .min_size = 1024, .gzip = {.quality = 1}, .brotli = {.quality = -1}});
    http_h2o_handler *handler = (http_h2o_handler *)h2o_create_handler(pathconf, sizeof *handler);
    handler->super.on_req = on_req;
    handler->server = s;
    http_h2o_logger *logger =
        (http_h2o_logger *)h2o_create_logger(&host->fallback_path, sizeof *logger);
    logger->super.log_access = on_h2o_response;
    logger->server = s;
    too_large_filter *tlf =
        (too_large_filter *)h2o_create_filter(&host->fallback_path, sizeof *tlf);
    tlf->super.on_setup_ostream = on_setup_too_large;
    tlf->server = s;

    s->loop = h2o_evloop_create();
    h2o_context_init(&s->ctx, s->loop, &s->globalconf);
    s->accept_ctx = (h2o_accept_ctx_t){.ctx = &s->ctx, .hosts = s->globalconf.hosts,
                                       .ssl_ctx = s->ssl_ctx};
    h2o_multithread_register_receiver(s->ctx.queue, &s->job_receiver, on_jobs_done);
    s->listener = h2o_evloop_socket_create(s->loop, s->fd, H2O_SOCKET_FLAG_DONT_READ);
    s->listener->data = s;
    h2o_socket_read_start(s->listener, on_accept);
}

static void shutdown_conns(http_server *s, int how)
{
    for (h2o_linklist_t *l = s->conns.next; l != &s->conns; l = l->next) {
        http_conn *c = H2O_STRUCT_FROM_MEMBER(http_conn, link, l);
        shutdown(h2o_socket_get_fd(c->sock), how);
    }
}

/* See "Shutdown" at the top of the file. */
static void loop_shutdown(http_server *s)
{
    h2o_socket_read_stop(s->listener);
    h2o_socket_close(s->listener);
    s->listener = NULL;
    s->fd = -1;

    pthread_mutex_lock(&s->mu);
    s->pool_stopping = true;
    http_job *queued = s->head;
    s->head = s->tail = NULL;
    s->queued = 0;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    while (queued) {
        http_job *job = queued;
        queued = job->next;
        http_respond_text(&job->response, 503, "server shutting down");
        s->jobs_out--;
        job_done(s, job);
    }
    while (s->jobs_out > 0)
        h2o_evloop_run(s->loop, INT32_MAX);
    for (size_t i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i], NULL);
    s->n_workers = 0;

    shutdown_conns(s, SHUT_RD);
    uint64_t deadline = now_ns() + (uint64_t)HTTP_DRAIN_MS * 1000000u;
    bool forced = false;
    while (!h2o_linklist_is_empty(&s->conns)) {
        uint64_t now = now_ns();
        if (!forced && now >= deadline) {
            firn_log(FIRN_LOG_WARN, "web", "closing connections whose clients do not read",
                     "connections=%zu", atomic_load(&s->n_conns));
            shutdown_conns(s, SHUT_RDWR);
            forced = true;
        }
        h2o_evloop_run(s->loop, forced ? 1000 : (int32_t)((deadline - now) / 1000000u + 1));
    }
    h2o_evloop_run(s->loop, 0);  /* frees the sockets closed last */

    h2o_multithread_unregister_receiver(s->ctx.queue, &s->job_receiver);
    h2o_context_dispose(&s->ctx);
    h2o_evloop_destroy(s->loop);
    s->loop = NULL;
    h2o_config_dispose(&s->globalconf);
}

static void *loop_main(void *arg)
{
    http_server *s = arg;
    h2o_setup(s);
    pthread_mutex_lock(&s->mu);
    s->ready = true;
    pthread_cond_signal(&s->ready_cv);
    pthread_mutex_unlock(&s->mu);
    while (!atomic_load(&s->stop_requested)) {
        h2o_evloop_run(s->loop, INT32_MAX);
        conns_wrap(s);
    }
    loop_shutdown(s);
    return NULL;
}

static void stop_workers(http_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->pool_stopping = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i], NULL);
    s->n_workers = 0;
}

int http_start(http_server *s, firn_err *err)
{
    if (s->started)
        return firn_errf(err, FIRN_EINVAL, "web: already started");
    s->workers = firn_xcalloc(s->opts.workers, sizeof *s->workers);
    /* Threads inherit the signal mask: see the top of the file. */
    sigset_t pipe_only, old;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
    int rc = 0;
    for (size_t i = 0; i < s->opts.workers && rc == 0; i++) {
        rc = pthread_create(&s->workers[i], NULL, worker_main, s);
        if (rc == 0)
            s->n_workers++;
    }
    if (rc == 0)
        rc = pthread_create(&s->loop_thread, NULL, loop_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        stop_workers(s);
        pthread_mutex_lock(&s->mu);
        s->pool_stopping = false;
        pthread_mutex_unlock(&s->mu);
        free(s->workers);
        s->workers = NULL;
        char ebuf[128];
        return firn_errf(err, FIRN_EIO, "web: starting threads: %s",
                         errno_text(rc, ebuf, sizeof ebuf));
    }
    /* http_stop needs the loop's queue to wake it. */
    pthread_mutex_lock(&s->mu);
    while (!s->ready)
        pthread_cond_wait(&s->ready_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    s->started = true;
    char q[300];
    firn_log(FIRN_LOG_INFO, "web", "Listening on", "address=%s port=%d workers=%zu",
             firn_log_quote(q, sizeof q, s->listen_address), s->port, s->opts.workers);
    return 0;
}

void http_stop(http_server *s)
{
    if (!s)
        return;
    if (s->started) {
        atomic_store(&s->stop_requested, true);
        h2o_multithread_send_message(&s->job_receiver, NULL);
        pthread_join(s->loop_thread, NULL);
    }
    if (s->fd >= 0)
        close(s->fd);
    for (size_t i = 0; i < s->n_routes; i++) {
        free(s->routes[i]->path);
        free(s->routes[i]);
    }
    free(s->routes);
    free(s->workers);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->ready_cv);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->auth_mu);
    OPENSSL_cleanse(s->auth_secret, sizeof s->auth_secret);
    SSL_CTX_free(s->ssl_ctx);
    free(s->listen_address);
    free(s);
}

/* ---- self-metrics ------------------------------------------------------------- */

static void write_counts(firn_buf *b, const route_stats *st)
{
    for (int i = 0; i < HTTP_STATUS_SLOTS; i++) {
        uint64_t n = atomic_load(&st->codes[i]);
        if (n == 0)
            continue;
        char code[8];
        snprintf(code, sizeof code, "%d", i + HTTP_STATUS_MIN);
        firn_label labels[] = {{"code", code}, {"handler", st->handler}};
        firn_metrics_sample(b, "firn_http_requests_total", labels, 2, (double)n);
    }
}

void http_metrics_write(http_server *s, firn_buf *b)
{
    firn_metrics_header(b, "firn_http_requests_total", "counter",
                        "Requests answered, by handler (the route's path) and status code.");
    for (size_t i = 0; i < s->n_routes; i++)
        write_counts(b, &s->routes[i]->stats);
    write_counts(b, &s->other);

    firn_metrics_header(b, "firn_http_request_duration_seconds", "histogram",
                        "Time from a request's arrival to its response, by handler.");
    for (size_t i = 0; i < s->n_routes; i++) {
        firn_label label = {"handler", s->routes[i]->stats.handler};
        firn_histogram_write(b, "firn_http_request_duration_seconds", &label, 1,
                             &s->routes[i]->stats.duration);
    }
    firn_label other = {"handler", s->other.handler};
    firn_histogram_write(b, "firn_http_request_duration_seconds", &other, 1, &s->other.duration);

    firn_metrics_single(b, "firn_http_requests_in_flight", "gauge",
                        "Requests being served now.",
                        (double)atomic_load(&s->in_flight));
    firn_metrics_single(b, "firn_http_connections", "gauge",
                        "Open connections (at most --web.max-connections).",
                        (double)atomic_load(&s->n_conns));
    firn_metrics_single(b, "firn_http_request_body_bytes_in_flight", "gauge",
                        "Request bytes held while read and until answered, a body a worker "
                        "copies counted twice (at most --web.max-body-bytes-in-flight).",
                        (double)atomic_load(&s->body_bytes));
    firn_metrics_header(b, "firn_http_request_bodies_refused_total", "counter",
                        "Requests refused from their head, before their body was read: "
                        "budget (503, the in-flight bytes would pass their bound) or "
                        "unauthenticated (401, a body over 64 KiB without valid credentials).");
    firn_label budget = {"reason", "budget"}, unauth = {"reason", "unauthenticated"};
    firn_metrics_sample(b, "firn_http_request_bodies_refused_total", &budget, 1,
                        (double)atomic_load(&s->bodies_refused_budget));
    firn_metrics_sample(b, "firn_http_request_bodies_refused_total", &unauth, 1,
                        (double)atomic_load(&s->bodies_refused_auth));

    if (!s->auth)
        return;
    firn_metrics_header(b, "firn_http_auth_bcrypt_checks_total", "counter",
                        "Basic-auth passwords checked with bcrypt (not found in the cache), "
                        "by result.");
    firn_label ok = {"result", "ok"}, denied = {"result", "denied"},
               refused = {"result", "refused"};
    firn_metrics_sample(b, "firn_http_auth_bcrypt_checks_total", &ok, 1,
                        (double)atomic_load(&s->bcrypt_ok));
    firn_metrics_sample(b, "firn_http_auth_bcrypt_checks_total", &denied, 1,
                        (double)atomic_load(&s->bcrypt_denied));
    firn_metrics_sample(b, "firn_http_auth_bcrypt_checks_total", &refused, 1,
                        (double)atomic_load(&s->bcrypt_refused));
}
