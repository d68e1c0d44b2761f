/* httpc.h -- what every HTTP client of firn sets up the same way on a
 * libcurl easy handle: a Prometheus <http_config> (basic_auth,
 * authorization / bearer token, tls_config).  Used by the scrape loops and
 * Kubernetes discovery; the agent's push and the Alertmanager notifier are
 * meant to use it too.
 *
 * Secrets given as files (password_file, credentials_file) are read at
 * each call, as Prometheus reads them at each request, so a rotated token
 * is picked up without a reload.
 */
#ifndef FIRN_HTTPC_H
#define FIRN_HTTPC_H

#include <curl/curl.h>
#include <stddef.h>

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

/* A secret file's contents without trailing newlines and blanks, into out
 * (at most size - 1 bytes).  -1 with why set when it cannot be read. */
int httpc_read_secret(const char *path, char *out, size_t size, char *why, size_t why_size);

#endif
