/* httpc.c -- a Prometheus <http_config> on a libcurl handle (contract in
 * httpc.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpc/httpc.h"
#include "model/model.h"

#define SECRET_MAX 4096

void httpc_request_free(httpc_request *r)
{
    curl_slist_free_all(r->headers);
    curl_slist_free_all(r->connect_to);
    *r = (httpc_request){0};
}

int httpc_read_secret(const char *path, char *out, size_t size, char *why, size_t why_size)
{
    unsigned char *data = NULL;
    size_t len = 0;
    firn_err err = {0};
    if (size == 0 || firn_read_file(path, size - 1, &data, &len, &err) < 0) {
        snprintf(why, why_size, "%s", size ? err.msg : "no room for a secret");
        return -1;
    }
    while (len && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' '))
        len--;
    memcpy(out, data, len);
    out[len] = '\0';
    free(data);
    return 0;
}

/* A secret given inline or in a file (read into out): the value, or NULL
 * with why set. */
static const char *secret_value(const char *inline_value, const char *file, char *out,
                                size_t size, char *why, size_t why_size)
{
    if (!file)
        return inline_value ? inline_value : "";
    return httpc_read_secret(file, out, size, why, why_size) < 0 ? NULL : out;
}

/* Point e at url with its host replaced by server_name, and connect to the
 * host url named. */
static const char *use_server_name(CURL *e, const char *url, const char *server_name,
                                   httpc_request *r, char *why, size_t why_size)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *rewritten = NULL;
    const char *fail = NULL;
    if (!u)
        return "out of memory";
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        snprintf(why, why_size, "bad URL \"%.256s\"", url);
        fail = why;
    } else if (curl_url_set(u, CURLUPART_HOST, server_name, 0) != CURLUE_OK ||
               curl_url_get(u, CURLUPART_URL, &rewritten, 0) != CURLUE_OK) {
        snprintf(why, why_size, "bad tls_config.server_name \"%.256s\"", server_name);
        fail = why;
    } else {
        /* CONNECT_TO wants an IPv6 host bracketed, as CURLUPART_HOST gives it. */
        firn_buf to = {0};
        firn_buf_printf(&to, "%s:%s:%s:%s", server_name, port, host, port);
        char *t = firn_buf_take(&to, NULL);
        curl_slist_free_all(r->connect_to);
        r->connect_to = t ? curl_slist_append(NULL, t) : NULL;
        free(t);
        if (!r->connect_to) {
            fail = "out of memory";
        } else {
            curl_easy_setopt(e, CURLOPT_URL, rewritten);  /* libcurl copies strings */
            curl_easy_setopt(e, CURLOPT_CONNECT_TO, r->connect_to);
        }
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(rewritten);
    curl_url_cleanup(u);
    return fail;
}

const char *httpc_apply(CURL *e, const config_http *h, const char *url, httpc_request *r,
                        char *why, size_t why_size)
{
    char secret[SECRET_MAX];
    if (h->authorization.set) {
        const char *cred = secret_value(h->authorization.credentials,
                                        h->authorization.credentials_file, secret,
                                        sizeof secret, why, why_size);
        if (!cred)
            return why;
        firn_buf hdr = {0};
        firn_buf_printf(&hdr, "Authorization: %s %s", h->authorization.type, cred);
        char *line = firn_buf_take(&hdr, NULL);
        struct curl_slist *l = line ? curl_slist_append(r->headers, line) : NULL;
        free(line);
        if (!l)
            return "out of memory";
        r->headers = l;
    }
    if (h->basic_auth.set) {
        const char *pw = secret_value(h->basic_auth.password, h->basic_auth.password_file,
                                      secret, sizeof secret, why, why_size);
        if (!pw)
            return why;
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, h->basic_auth.username ? h->basic_auth.username
                                                                     : "");
        curl_easy_setopt(e, CURLOPT_PASSWORD, pw);
    }
    if (r->headers)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);

    const config_tls *tls = &h->tls;
    if (tls->server_name) {
        const char *fail = use_server_name(e, url, tls->server_name, r, why, why_size);
        if (fail)
            return fail;
    } else {
        curl_easy_setopt(e, CURLOPT_URL, url);
    }
    if (tls->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, tls->ca_file);
    if (tls->cert_file) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, tls->cert_file);
        curl_easy_setopt(e, CURLOPT_SSLKEY, tls->key_file);
    }
    if (tls->insecure_skip_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return NULL;
}

/* The answer's body, up to a size, for an error message. */
typedef struct capture {
    char *buf;
    size_t size, len;
} capture;

static size_t capture_body(char *p, size_t size, size_t nmemb, void *ctx)
{
    capture *c = ctx;
    size_t n = size * nmemb;
    if (c->buf && c->len + 1 < c->size) {
        size_t take = n < c->size - 1 - c->len ? n : c->size - 1 - c->len;
        memcpy(c->buf + c->len, p, take);
        c->len += take;
        c->buf[c->len] = '\0';
    }
    return n;
}

static int cancel_check(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                        curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    const _Atomic bool *cancel = ctx;
    return cancel && *cancel;   /* non-zero aborts the transfer */
}

long httpc_post(CURL *e, const config_http *h, const char *url, const char *const *headers,
                const void *body, size_t len, int64_t timeout_ms, const char *user_agent,
                const _Atomic bool *cancel, char *resp, size_t resp_size, char *content_type,
                size_t content_type_size, char *why, size_t why_size)
{
    curl_easy_reset(e);
    capture cap = {resp, resp_size, 0};
    if (resp && resp_size)
        resp[0] = '\0';
    if (content_type && content_type_size)
        content_type[0] = '\0';
    httpc_request r = {0};
    for (size_t i = 0; headers && headers[i]; i++) {
        struct curl_slist *l = curl_slist_append(r.headers, headers[i]);
        if (!l) {
            httpc_request_free(&r);
            snprintf(why, why_size, "out of memory");
            return 0;
        }
        r.headers = l;
    }
    const char *fail = httpc_apply(e, h, url, &r, why, why_size);
    long status = 0;
    if (!fail) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_USERAGENT, user_agent);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, capture_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &cap);
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, cancel_check);
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, (void *)cancel);
        curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(e, CURLOPT_PROXY, "");
        CURLcode rc = curl_easy_perform(e);
        if (rc == CURLE_OK) {
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
            char *ct = NULL;
            if (content_type && content_type_size &&
                curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
                snprintf(content_type, content_type_size, "%s", ct);
        } else {
            snprintf(why, why_size, "%s", rc == CURLE_ABORTED_BY_CALLBACK ? "canceled"
                                                                          : curl_easy_strerror(rc));
        }
    }
    httpc_request_free(&r);
    return status;
}

bool httpc_retryable(long status, bool retry_on_429)
{
    return status == 0 || status / 100 == 5 || (status == 429 && retry_on_429);
}
