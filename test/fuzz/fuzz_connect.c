/* fuzz_connect.c -- libFuzzer target for pyroscope/'s request path: the
 * Connect layer (codec by Content-Type, gzip, decoding each service's
 * request message in binary and protobuf JSON) with no store behind it, and
 * the protojson codec on its own.  The first input byte picks the method
 * (0x10: JSON, 0x20: gzipped), the rest is the body.
 * Nothing may crash or leak; every answer must be 200 with exactly
 * application/proto or application/json, or a Connect error: JSON with a
 * code and a message.  The body is also decoded as JSON into each of
 * several messages: whatever the decoder accepts, the encoder's output of
 * it must decode again and encode to the same text, and so must its binary
 * encoding read back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pyroscope/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const PATHS[] = {
    "/querier.v1.QuerierService/ProfileTypes",
    "/querier.v1.QuerierService/LabelNames",
    "/querier.v1.QuerierService/LabelValues",
    "/querier.v1.QuerierService/Series",
    "/querier.v1.QuerierService/GetProfileStats",
    "/querier.v1.QuerierService/SelectMergeStacktraces",
    "/querier.v1.QuerierService/SelectMergeSpanProfile",
    "/querier.v1.QuerierService/SelectMergeProfile",
    "/querier.v1.QuerierService/SelectSeries",
    "/push.v1.PusherService/Push",
    "/settings.v1.SettingsService/Set",
    "/querier.v1.QuerierService/Diff",
};
static const ProtobufCMessageDescriptor *const MESSAGES[] = {
    &querier__v1__select_merge_stacktraces_request__descriptor,
    &querier__v1__select_series_request__descriptor,
    &querier__v1__series_request__descriptor,
    &push__v1__push_request__descriptor,
    &settings__v1__set_settings_request__descriptor,
    &types__v1__label_values_request__descriptor,
    &querier__v1__select_merge_stacktraces_response__descriptor,
    &google__v1__profile__descriptor,
};

static void *arena_alloc(void *a, size_t n)
{
    return firn_arena_alloc(a, n ? n : 1);
}

static void arena_free(void *a, void *p)
{
    (void)a;
    (void)p;
}

static void check_response(const http_response *r)
{
    if (r->status == 200) {
        if (strcmp(r->content_type, "application/proto") != 0 &&
            strcmp(r->content_type, "application/json") != 0)
            abort();
        return;
    }
    if (strcmp(r->content_type, "application/json") != 0)
        abort();
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    if (!j || !json_string_value(json_object_get(j, "code")) ||
        !json_string_value(json_object_get(j, "message")))
        abort();
    json_decref(j);
}

static char *encode(const ProtobufCMessage *m, size_t *len)
{
    firn_buf b = {0};
    pyroscope_json_encode(m, &b);
    return firn_buf_take(&b, len);
}

static void json_round_trip(const ProtobufCMessageDescriptor *d, const char *text, size_t len)
{
    firn_arena *a = firn_arena_new(0);
    if (!a)
        abort();
    ProtobufCAllocator alloc = {arena_alloc, arena_free, a};
    ProtobufCMessage *m;
    firn_err err = {0};
    if (pyroscope_json_decode(d, text, len, &alloc, &m, &err) < 0) {
        if (!err.msg[0])
            abort();
        firn_arena_free(a);
        return;
    }
    size_t n1, n2;
    char *once = encode(m, &n1);
    ProtobufCMessage *again;
    if (pyroscope_json_decode(d, once, n1, &alloc, &again, &err) < 0)
        abort();
    char *twice = encode(again, &n2);
    if (n1 != n2 || memcmp(once, twice, n1) != 0)
        abort();
    /* and the binary codec agrees with it */
    size_t packed = protobuf_c_message_get_packed_size(again);
    uint8_t *buf = malloc(packed ? packed : 1);
    if (!buf)
        abort();
    protobuf_c_message_pack(again, buf);
    ProtobufCMessage *unpacked = protobuf_c_message_unpack(d, &alloc, packed, buf);
    if (!unpacked)
        abort();
    size_t n3;
    char *thrice = encode(unpacked, &n3);
    if (n3 != n1 || memcmp(once, thrice, n1) != 0)
        abort();
    free(thrice);
    free(buf);
    free(once);
    free(twice);
    firn_arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    static pyroscope_api api;   /* no store, no settings file: nothing is written */
    pyroscope_request req = {
        .path = PATHS[(sel & 0x0f) % (sizeof PATHS / sizeof PATHS[0])],
        .content_type = sel & 0x10 ? "application/json" : "application/proto",
        .content_encoding = sel & 0x20 ? "gzip" : NULL,
        .accept_encoding = "gzip",
        .body = body,
        .body_len = len,
    };
    http_response resp = {0};
    pyroscope_serve(&api, &req, &resp);
    check_response(&resp);
    free(resp.body);
    for (size_t i = 0; i < sizeof MESSAGES / sizeof MESSAGES[0]; i++)
        json_round_trip(MESSAGES[i], body, len);
    return 0;
}
