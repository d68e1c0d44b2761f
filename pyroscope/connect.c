/* connect.c -- the Connect protocol's unary calls on firn's HTTP server:
 * routes, codecs, compression and errors (the rules are in pyroscope.h).
 *
 * Every method of the three services has its own route, so the route's
 * path is its metrics label; a prefix route per service answers any other
 * method of it unimplemented (501), as connect-go does for a method it does
 * not know, and so do the services firn does not serve at all that the
 * Drilldown probes (recording rules, ad-hoc profiles, VCS) and Alloy's
 * debuginfo upload: clients treat 501 as "not supported" and carry on.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pyroscope/internal.h"

typedef struct pyroscope_method {
    const char *path;
    const ProtobufCMessageDescriptor *in;
    pyroscope_rpc_fn fn;
} pyroscope_method;

#define QS "/querier.v1.QuerierService/"
static const pyroscope_method METHODS[] = {
    {QS "ProfileTypes", &querier__v1__profile_types_request__descriptor,
     pyroscope_rpc_profile_types},
    {QS "LabelNames", &types__v1__label_names_request__descriptor, pyroscope_rpc_label_names},
    {QS "LabelValues", &types__v1__label_values_request__descriptor,
     pyroscope_rpc_label_values},
    {QS "Series", &querier__v1__series_request__descriptor, pyroscope_rpc_series},
    {QS "GetProfileStats", &types__v1__get_profile_stats_request__descriptor,
     pyroscope_rpc_profile_stats},
    {QS "SelectMergeStacktraces", &querier__v1__select_merge_stacktraces_request__descriptor,
     pyroscope_rpc_merge_stacktraces},
    {QS "SelectMergeSpanProfile", &querier__v1__select_merge_span_profile_request__descriptor,
     pyroscope_rpc_merge_span_profile},
    {QS "SelectMergeProfile", &querier__v1__select_merge_profile_request__descriptor,
     pyroscope_rpc_merge_profile},
    {QS "SelectSeries", &querier__v1__select_series_request__descriptor,
     pyroscope_rpc_select_series},
    {QS "Diff", &querier__v1__diff_request__descriptor, pyroscope_rpc_diff},
    {"/push.v1.PusherService/Push", &push__v1__push_request__descriptor, pyroscope_rpc_push},
    {"/settings.v1.SettingsService/Get", &settings__v1__get_settings_request__descriptor,
     pyroscope_rpc_settings_get},
    {"/settings.v1.SettingsService/Set", &settings__v1__set_settings_request__descriptor,
     pyroscope_rpc_settings_set},
    {"/settings.v1.SettingsService/Delete", &settings__v1__delete_settings_request__descriptor,
     pyroscope_rpc_settings_delete},
};

/* Services whose other methods, or all of them, are unimplemented here. */
static const char *const SERVICES[] = {
    QS,
    "/push.v1.PusherService/",
    "/settings.v1.SettingsService/",
    "/settings.v1.RecordingRulesService/",
    "/adhocprofiles.v1.AdHocProfileService/",
    "/vcs.v1.VCSService/",
    "/debuginfo.v1alpha1.DebuginfoService/",
    "/capabilities.v1.FeatureFlagsService/",
    "/status.v1.StatusService/",
    "/version.v1.Version/",
};

/* ---- codes ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    int status;
} CODES[] = {
    [PYRO_CANCELED] = {"canceled", 499},
    [PYRO_UNKNOWN] = {"unknown", 500},
    [PYRO_INVALID_ARGUMENT] = {"invalid_argument", 400},
    [PYRO_DEADLINE_EXCEEDED] = {"deadline_exceeded", 504},
    [PYRO_NOT_FOUND] = {"not_found", 404},
    [PYRO_ALREADY_EXISTS] = {"already_exists", 409},
    [PYRO_PERMISSION_DENIED] = {"permission_denied", 403},
    [PYRO_RESOURCE_EXHAUSTED] = {"resource_exhausted", 429},
    [PYRO_FAILED_PRECONDITION] = {"failed_precondition", 400},
    [PYRO_ABORTED] = {"aborted", 409},
    [PYRO_OUT_OF_RANGE] = {"out_of_range", 400},
    [PYRO_UNIMPLEMENTED] = {"unimplemented", 501},
    [PYRO_INTERNAL] = {"internal", 500},
    [PYRO_UNAVAILABLE] = {"unavailable", 503},
    [PYRO_DATA_LOSS] = {"data_loss", 500},
    [PYRO_UNAUTHENTICATED] = {"unauthenticated", 401},
};

const char *pyroscope_code_name(pyroscope_code c)
{
    assert(c >= PYRO_CANCELED && c <= PYRO_UNAUTHENTICATED);
    return CODES[c].name;
}

int pyroscope_code_http_status(pyroscope_code c)
{
    assert(c >= PYRO_CANCELED && c <= PYRO_UNAUTHENTICATED);
    return CODES[c].status;
}

pyroscope_code pyroscope_code_of(int firn_code)
{
    switch (firn_code) {
    case FIRN_EINVAL:
        return PYRO_INVALID_ARGUMENT;
    case FIRN_EBUSY:
        return PYRO_UNAVAILABLE;   /* Alloy retries it */
    case FIRN_ETOOBIG:
        return PYRO_RESOURCE_EXHAUSTED;
    case FIRN_EEXIST:
        return PYRO_ALREADY_EXISTS;   /* a different profile at that time: not retried */
    default:
        return PYRO_INTERNAL;
    }
}

/* A Connect error: its status, application/json, {"code","message"}. */
void pyroscope_respond_error(http_response *resp, pyroscope_code code, const char *msg)
{
    /* each byte of msg that is not UTF-8 becomes \ufffd, as Go's encoding/json
     * writes it: a message quoting a client's bad bytes is still JSON */
    firn_buf b = {0};
    firn_buf_printf(&b, "{\"code\":\"%s\",\"message\":", pyroscope_code_name(code));
    firn_json_string(&b, msg);
    firn_buf_puts(&b, "}");
    size_t n;
    char *s = firn_buf_take(&b, &n);   /* no cap: never NULL */
    free(resp->body);
    *resp = (http_response){.status = pyroscope_code_http_status(code),
                           .content_type = "application/json", .body = s, .body_len = n,
                           /* a full store queue drains within a second */
                           .retry_after = code == PYRO_UNAVAILABLE ? "1" : NULL};
}

/* ---- the call ------------------------------------------------------------------------ */

/* protobuf-c's allocator: the call's arena, which never answers NULL for
 * a size protobuf-c asks (each bounded by the body it decodes) */
static void *arena_alloc(void *a, size_t size)
{
    void *p = firn_arena_alloc(a, size ? size : 1);
    assert(p);
    return p;
}

static void arena_free(void *a, void *p)
{
    (void)a;
    (void)p;   /* the arena goes as a whole */
}

void *pyroscope_new(pyroscope_call *c, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = firn_arena_alloc(c->arena, d->sizeof_message);
    assert(m);   /* a message's own size never overflows */
    protobuf_c_message_init(d, m);
    return m;
}

static const pyroscope_method *method_find(const char *path)
{
    for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++)
        if (strcmp(METHODS[i].path, path) == 0)
            return &METHODS[i];
    return NULL;
}

/* The codec a Content-Type names: 1 binary, 0 JSON, -1 neither. */
static int codec_of(const char *ct)
{
    if (!ct)
        return -1;
    if (strcasecmp(ct, "application/proto") == 0)
        return 1;
    if (strcasecmp(ct, "application/json") == 0)
        return 0;
    /* application/json; charset=utf-8, with any spacing */
    if (strncasecmp(ct, "application/json", 16) == 0) {
        const char *p = ct + 16;
        p += strspn(p, " \t");
        if (*p++ != ';')
            return -1;
        p += strspn(p, " \t");
        if (strncasecmp(p, "charset", 7) != 0)
            return -1;
        p += 7 + strspn(p + 7, " \t");
        if (*p++ != '=')
            return -1;
        p += strspn(p, " \t\"");
        if (strncasecmp(p, "utf-8", 5) == 0 && p[5 + strspn(p + 5, " \t\"")] == '\0')
            return 0;
    }
    return -1;
}

static void serve(const pyroscope_request *req, pyroscope_call *c, http_response *resp)
{
    firn_err err = {0};
    const pyroscope_method *m = method_find(req->path);
    if (!m) {
        char msg[300];
        snprintf(msg, sizeof msg, "%.200s is not implemented", req->path);
        pyroscope_respond_error(resp, PYRO_UNIMPLEMENTED, msg);
        return;
    }
    if (req->protocol_version && strcmp(req->protocol_version, "1") != 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "connect-protocol-version must be \"1\": got \"%.100s\"",
                 req->protocol_version);
        pyroscope_respond_error(resp, PYRO_INVALID_ARGUMENT, msg);
        return;
    }
    int binary = codec_of(req->content_type);
    if (binary < 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "Content-Type \"%.100s\" is not supported: want "
                 "application/proto or application/json", req->content_type ?
                 req->content_type : "");
        pyroscope_respond_error(resp, PYRO_UNKNOWN, msg);
        resp->status = 415;   /* what connect-go answers, and its Accept-Post */
        resp->accept_post = "application/json, application/json; charset=utf-8, "
                            "application/proto";
        return;
    }
    const char *body = req->body;
    size_t len = req->body_len;
    unsigned char *inflated = NULL;
    const char *ce = req->content_encoding;
    if (ce && *ce && strcasecmp(ce, "identity") != 0) {
        if (strcasecmp(ce, "gzip") != 0) {
            char msg[200];
            snprintf(msg, sizeof msg, "Content-Encoding \"%.100s\" is not supported: want "
                     "gzip or identity", ce);
            pyroscope_respond_error(resp, PYRO_UNIMPLEMENTED, msg);
            return;
        }
        if (pprof_gunzip(body, len, PYROSCOPE_GUNZIP_MAX, &inflated, &len, &err) < 0) {
            firn_err_prefix(&err, "Content-Encoding gzip");
            pyroscope_respond_error(resp, err.code == FIRN_ETOOBIG ? PYRO_RESOURCE_EXHAUSTED
                                                                   : PYRO_INVALID_ARGUMENT,
                                    err.msg);
            return;
        }
        body = (const char *)inflated;
    }
    ProtobufCMessage *in = NULL;
    if (binary) {
        in = protobuf_c_message_unpack(m->in, &c->alloc, len, (const uint8_t *)body);
        if (!in)
            firn_errf(&err, FIRN_EINVAL, "the body is not a valid %s message (binary "
                      "protobuf)", m->in->name);
    } else if (len == 0) {
        in = pyroscope_new(c, m->in);   /* no body: every field its default */
    } else if (pyroscope_json_decode(m->in, body, len, &c->alloc, &in, &err) < 0) {
        firn_err_prefix(&err, "decoding %s", m->in->name);
    }
    free(inflated);
    if (!in) {
        pyroscope_respond_error(resp, PYRO_INVALID_ARGUMENT, err.msg);
        return;
    }

    ProtobufCMessage *out = NULL;
    if (m->fn(c, in, &out, &err) < 0) {
        pyroscope_respond_error(resp, pyroscope_code_of(err.code), err.msg);
        return;
    }
    if (c->raw && !binary) {   /* encoded bytes as JSON: decode them first */
        out = protobuf_c_message_unpack(c->raw_type, &c->alloc, c->raw_len, c->raw);
        if (!out) {
            pyroscope_respond_error(resp, PYRO_INTERNAL, "re-reading the encoded answer failed");
            return;
        }
    }
    char *data = NULL;
    size_t n = 0;
    if (c->raw && binary) {
        data = (char *)c->raw;
        n = c->raw_len;
        c->raw = NULL;
    } else if (binary) {
        assert(out);
        /* the answer is in memory already (each RPC caps what it
         * gathers): its encoding is no bigger than it */
        n = protobuf_c_message_get_packed_size(out);
        data = firn_xmalloc(n);
        protobuf_c_message_pack(out, (uint8_t *)data);
    } else {
        firn_buf b = {0};
        pyroscope_json_encode(out, &b);
        data = firn_buf_take(&b, &n);   /* no cap: never NULL */
    }
    free(resp->body);
    *resp = (http_response){.status = 200,
                           .content_type = binary ? "application/proto" : "application/json",
                           .body = data, .body_len = n};
    if (n >= PYROSCOPE_GZIP_MIN && http_accepts_gzip(req->accept_encoding)) {
        unsigned char *gz;
        size_t gz_len;
        if (pprof_gzip(data, n, 1, &gz, &gz_len, NULL) == 0) {
            free(data);
            resp->body = (char *)gz;
            resp->body_len = gz_len;
            resp->content_encoding = "gzip";
        }
    }
}

void pyroscope_call_begin(pyroscope_call *c, pyroscope_api *api)
{
    *c = (pyroscope_call){.api = api, .arena = firn_arena_new(0)};
    c->alloc = (ProtobufCAllocator){.alloc = arena_alloc, .free = arena_free,
                                    .allocator_data = c->arena};
}

void pyroscope_query_enter(pyroscope_call *c)
{
    if (c->in_query)
        return;
    pql_limits_enter(c->api->limits);
    c->in_query = true;
    c->samples_left = pql_limits_samples(c->api->limits);
}

void pyroscope_call_end(pyroscope_call *c)
{
    if (c->in_query)
        pql_limits_leave(c->api->limits, c->query_rc);
    free(c->raw);
    firn_arena_free(c->arena);
}

void pyroscope_serve(pyroscope_api *api, const pyroscope_request *req, http_response *resp)
{
    pyroscope_call c;
    pyroscope_call_begin(&c, api);
    serve(req, &c, resp);
    pyroscope_call_end(&c);
}

/* The procedure, "/<package>.<Service>/<Method>": the path's last two
 * segments, so a client given a base URL with a path prefix is served
 * (the route is HTTP_ROUTE_MOUNTED). */
static const char *procedure(const char *path)
{
    const char *end = path + strlen(path), *p = end;
    int slashes = 0;
    while (p > path && slashes < 2)
        if (*--p == '/')
            slashes++;
    return slashes == 2 ? p : path;
}

static void handle_connect(void *ctx, const http_request *r, http_response *resp)
{
    if (http_request_too_large(r)) {
        /* connect-go's answer to a body past its read limit */
        pyroscope_respond_error(resp, PYRO_RESOURCE_EXHAUSTED,
                                "request body too large: over the server's body limit");
        return;
    }
    pyroscope_request req = {
        .path = procedure(http_request_path(r)),
        .content_type = http_request_header(r, "Content-Type"),
        .content_encoding = http_request_header(r, "Content-Encoding"),
        .accept_encoding = http_request_header(r, "Accept-Encoding"),
        .protocol_version = http_request_header(r, "Connect-Protocol-Version"),
    };
    req.body = http_request_body(r, &req.body_len);
    pyroscope_serve(ctx, &req, resp);
}

void pyroscope_free(pyroscope_api *api)
{
    pyroscope_deltas_free(api->deltas);
    api->deltas = NULL;
}

int pyroscope_register(http_server *s, pyroscope_api *api, firn_err *err)
{
    unsigned flags = HTTP_ROUTE_WORKER | HTTP_ROUTE_RAW_BODY | HTTP_ROUTE_TOO_LARGE |
                     HTTP_ROUTE_MOUNTED;
    if (!api->deltas)
        api->deltas = pyroscope_deltas_new();
    for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++)
        if (http_route(s, "POST", METHODS[i].path, flags, handle_connect, api, err) < 0)
            return -1;
    for (size_t i = 0; i < sizeof SERVICES / sizeof SERVICES[0]; i++)
        if (http_route(s, "POST", SERVICES[i], flags | HTTP_ROUTE_PREFIX, handle_connect, api,
                      err) < 0)
            return -1;
    return pyroscope_render_register(s, api, err);
}
