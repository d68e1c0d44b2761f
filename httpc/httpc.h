/* httpc.h -- what every HTTP client of firn sets up the same way on a
 * libcurl easy handle: a Prometheus <http_config> (basic_auth,
 * authorization / bearer token, tls_config).  Used by the scrape loops and
 * Kubernetes discovery, and, through httpc_post, by the Alertmanager
 * notifier, remote_write and profile_remote_write.
 *
 * Secrets given as files (password_file, credentials_file) are read at
 * each call, as Prometheus reads them at each request, so a rotated token
 * is picked up without a reload.
 */
#ifndef FIRN_HTTPC_H
#define FIRN_HTTPC_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* The lists a request's handle points at; they must outlive the transfer.
 * Zero-initialise; httpc_request_free releases them (and may be called
 * again before the next httpc_apply on the same handle). */
typedef struct httpc_request {
    struct curl_slist *headers;     /* the caller may add its own first */
    struct curl_slist *connect_to;  /* tls_config.server_name */
} httpc_request;

void httpc_request_free(httpc_request *r);

/* Set url and h on e: CURLOPT_URL, Authorization (appended to r->headers,
 * which then become CURLOPT_HTTPHEADER), basic auth, CA / client
 * certificate files, insecure_skip_verify.  tls_config.server_name: libcurl
 * takes the TLS name (SNI and certificate check) from the URL's host, so
 * the URL is rewritten to name server_name and CURLOPT_CONNECT_TO sends
 * the connection to the original host (the Host header then says
 * server_name too, unlike Go).  Returns NULL, or the reason it failed (a
 * secret file unreadable: "PATH: why"; a bad URL) in why. */
const char *httpc_apply(CURL *e, const config_http *h, const char *url, httpc_request *r,
                        char *why, size_t why_size);

/* ---- one POST ------------------------------------------------------------ */

#define HTTPC_RESPONSE_KEEP 1024   /* bytes of a response body kept */

typedef struct httpc_response {
    long status;                   /* the HTTP status; 0 when none came */
    int64_t retry_after_ms;        /* Retry-After given in seconds, as ms; -1 when absent */
    char content_type[128];        /* the response's Content-Type ("" when none) */
    char body[HTTPC_RESPONSE_KEEP + 1];  /* the body's start, NUL-terminated */
    char error[256];               /* why no response came ("" when one did) */
} httpc_response;

/* POSTs len bytes of body to url with h's auth and TLS (httpc_apply), the
 * header lines given (may be NULL: "Name: value" each), a timeout and a
 * User-Agent, never through a proxy.  e is a handle to reuse (reset first,
 * so a sender thread keeps its kept-alive connection), or NULL for a one-off.
 * When cancel is not NULL and turns true the transfer is aborted (error
 * "canceled").  0 when a response came, whatever its status; -1 with
 * resp->error set when none did (connection, timeout, cancel, a secret file
 * unreadable).  Secrets are never written to resp->error.  Blocking: call it
 * from a sender thread. */
int httpc_post(CURL *e, const config_http *h, const char *url, const struct curl_slist *headers,
               const void *body, size_t len, int64_t timeout_ms, const char *user_agent,
               const _Atomic bool *cancel, httpc_response *resp);

/* Whether a POST's outcome is worth retrying, as Prometheus's remote-write
 * client decides: no answer (status 0), a 5xx, or a 429 when retry_on_429. */
bool httpc_retryable(long status, bool retry_on_429);

/* A secret file's contents without trailing newlines and blanks, into out
 * (at most size - 1 bytes).  -1 with why set when it cannot be read. */
int httpc_read_secret(const char *path, char *out, size_t size, char *why, size_t why_size);

#endif
