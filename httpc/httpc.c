/* httpc.c -- a Prometheus <http_config> on a libcurl handle (contract in
 * httpc.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    if (!u)   /* libcurl's allocation: the policy of model/alloc.h */
        firn_oom(0);
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
        char *t = firn_xasprintf("%s:%s:%s:%s", server_name, port, host, port);
        curl_slist_free_all(r->connect_to);
        r->connect_to = curl_slist_append(NULL, t);
        free(t);
        if (!r->connect_to)
            firn_oom(0);
        curl_easy_setopt(e, CURLOPT_URL, rewritten);  /* libcurl copies strings */
        curl_easy_setopt(e, CURLOPT_CONNECT_TO, r->connect_to);
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
        char *line = firn_xasprintf("Authorization: %s %s", h->authorization.type, cred);
        struct curl_slist *l = curl_slist_append(r->headers, line);
        free(line);
        if (!l)
            firn_oom(0);
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

static size_t keep_body(char *p, size_t size, size_t nmemb, void *ctx)
{
    httpc_response *resp = ctx;
    size_t have = strlen(resp->body), n = size * nmemb;
    size_t take = n < HTTPC_RESPONSE_KEEP - have ? n : HTTPC_RESPONSE_KEEP - have;
    memcpy(resp->body + have, p, take);
    resp->body[have + take] = '\0';
    return n;
}

/* Retry-After in seconds (an HTTP date is left as absent). */
static size_t header_line(char *p, size_t size, size_t nmemb, void *ctx)
{
    httpc_response *resp = ctx;
    size_t len = size * nmemb;
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
        int64_t v = 0;
        size_t digits = 0, i = sizeof name - 1;
        while (i < len && p[i] == ' ')
            i++;
        for (; i < len && p[i] >= '0' && p[i] <= '9' && digits < 9; i++, digits++)
            v = v * 10 + (p[i] - '0');
        while (i < len && (p[i] == ' ' || p[i] == '\r' || p[i] == '\n'))
            i++;
        if (digits && i == len)
            resp->retry_after_ms = v * 1000;
    }
    return len;
}

static int cancel_check(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                        curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    const _Atomic bool *cancel = ctx;
    return cancel && *cancel;   /* non-zero aborts the transfer */
}

int httpc_post(CURL *reuse, const config_http *h, const char *url,
               const struct curl_slist *headers, const void *body, size_t len,
               int64_t timeout_ms, const char *user_agent, const _Atomic bool *cancel,
               httpc_response *resp)
{
    *resp = (httpc_response){.retry_after_ms = -1};
    CURL *e = reuse ? reuse : curl_easy_init();
    if (!e)
        firn_oom(0);   /* libcurl's own allocation failed */
    if (reuse)
        curl_easy_reset(e);
    httpc_request r = {0};
    int rc = -1;
    for (const struct curl_slist *l = headers; l; l = l->next) {
        struct curl_slist *grown = curl_slist_append(r.headers, l->data);
        if (!grown)
            firn_oom(strlen(l->data));   /* libcurl's own allocation failed */
        r.headers = grown;
    }
    const char *fail = httpc_apply(e, h, url, &r, resp->error, sizeof resp->error);
    if (fail) {
        if (fail != resp->error)
            snprintf(resp->error, sizeof resp->error, "%s", fail);
    } else {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_USERAGENT, user_agent);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, resp);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_line);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, resp);
        if (cancel) {
            curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, cancel_check);
            curl_easy_setopt(e, CURLOPT_XFERINFODATA, (void *)cancel);
            curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
        }
        curl_easy_setopt(e, CURLOPT_PROXY, "");
        CURLcode cc = curl_easy_perform(e);
        if (cc == CURLE_OK) {
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->status);
            char *ct = NULL;
            if (curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
                snprintf(resp->content_type, sizeof resp->content_type, "%s", ct);
            rc = 0;
        } else {
            snprintf(resp->error, sizeof resp->error, "%s",
                     cc == CURLE_ABORTED_BY_CALLBACK ? "canceled" : curl_easy_strerror(cc));
        }
    }
    httpc_request_free(&r);
    if (!reuse)
        curl_easy_cleanup(e);
    return rc;
}

bool httpc_retryable(long status, bool retry_on_429)
{
    return status == 0 || status / 100 == 5 || (status == 429 && retry_on_429);
}
