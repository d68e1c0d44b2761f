/* protojson.c -- protobuf's canonical JSON mapping for protobuf-c messages,
 * driven by their descriptors (protobuf-c has no JSON of its own).
 *
 * Decoding is as lenient as Go's protojson.Unmarshal with DiscardUnknown,
 * which is what Pyroscope's Connect handlers use: a field by its lowerCamel
 * JSON name or its proto name; 64-bit integers as numbers or strings; enums
 * by name or number (unknown names leave the default); null is the default;
 * bytes in standard or URL-safe base64, padded or not; doubles also as
 * "NaN", "Infinity", "-Infinity"; unknown fields skipped.  Encoding is what
 * protojson.Marshal writes: lowerCamel names, default values left out,
 * 64-bit integers as strings, enums by name, bytes in standard base64.
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pyroscope/internal.h"

/* Nesting of messages within messages: Pyroscope's deepest is 4. */
#define JSON_DEPTH_MAX 32

/* protoc's json_name: underscores dropped, the letter after one upper-cased. */
static void json_name(const char *proto, char *out, size_t size)
{
    size_t n = 0;
    bool up = false;
    for (const char *p = proto; *p && n + 1 < size; p++) {
        if (*p == '_') {
            up = true;
            continue;
        }
        out[n++] = up ? (char)toupper((unsigned char)*p) : *p;
        up = false;
    }
    out[n] = '\0';
}

static const ProtobufCFieldDescriptor *field_by_json_key(const ProtobufCMessageDescriptor *d,
                                                         const char *key)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
    if (f)
        return f;
    for (unsigned i = 0; i < d->n_fields; i++) {
        char name[128];
        json_name(d->fields[i].name, name, sizeof name);
        if (strcmp(name, key) == 0)
            return &d->fields[i];
    }
    return NULL;
}

/* ---- base64 ---------------------------------------------------------------------- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Standard or URL-safe, padded or not, into a; -1 when not base64. */
static int b64_decode(ProtobufCAllocator *a, const char *s, size_t len, ProtobufCBinaryData *out)
{
    while (len && s[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return -1;
    uint8_t *data = a->alloc(a->allocator_data, len * 3 / 4 + 1);
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            data[n++] = (uint8_t)(acc >> bits);
        }
    }
    out->data = data;
    out->len = n;
    return 0;
}

static json_t *b64_encode(const ProtobufCBinaryData *b)
{
    size_t n = (b->len + 2) / 3 * 4;
    char *s = firn_xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < b->len; i += 3) {
        uint32_t v = (uint32_t)b->data[i] << 16;
        if (i + 1 < b->len)
            v |= (uint32_t)b->data[i + 1] << 8;
        if (i + 2 < b->len)
            v |= b->data[i + 2];
        s[o++] = B64[(v >> 18) & 63];
        s[o++] = B64[(v >> 12) & 63];
        s[o++] = i + 1 < b->len ? B64[(v >> 6) & 63] : '=';
        s[o++] = i + 2 < b->len ? B64[v & 63] : '=';
    }
    json_t *j = json_stringn(s, o);
    free(s);
    return j;
}

/* ---- decoding ----------------------------------------------------------------------- */

typedef struct decoder {
    ProtobufCAllocator *alloc;
    firn_err *err;
} decoder;

static int decode_message(decoder *dc, const ProtobufCMessageDescriptor *d, json_t *obj,
                          ProtobufCMessage *m, int depth);

static size_t scalar_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:   /* the 64-bit integers and double */
        return 8;
    }
}

static bool is_signed(ProtobufCType t)
{
    return t == PROTOBUF_C_TYPE_INT32 || t == PROTOBUF_C_TYPE_SINT32 ||
           t == PROTOBUF_C_TYPE_SFIXED32 || t == PROTOBUF_C_TYPE_INT64 ||
           t == PROTOBUF_C_TYPE_SINT64 || t == PROTOBUF_C_TYPE_SFIXED64;
}

static bool is_32bit(ProtobufCType t)
{
    return scalar_size(t) == 4;
}

/* An integer from a JSON number or a decimal string: *neg and *mag. */
static int json_integer_of(json_t *v, bool *neg, uint64_t *mag)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        *neg = i < 0;
        *mag = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
        return 0;
    }
    if (json_is_real(v)) {
        double x = json_real_value(v);
        if (x != floor(x) || fabs(x) >= 18446744073709551616.0)
            return -1;
        *neg = x < 0;
        *mag = (uint64_t)fabs(x);
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    *neg = *s == '-';
    if (*neg)
        s++;
    if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 20)
        return -1;
    uint64_t x = 0;
    for (; *s; s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *mag = x;
    return 0;
}

static int bad_value(decoder *dc, const ProtobufCFieldDescriptor *f, const char *want, json_t *v)
{
    static const char *const KINDS[] = {"an object", "an array", "a string", "an integer",
                                        "a number", "true", "false", "null"};
    return firn_errf(dc->err, FIRN_EINVAL, "field \"%s\": want %s, got %s", f->name, want,
                     KINDS[json_typeof(v)]);
}

/* One value (an element, for a repeated field) into dst. */
static int decode_value(decoder *dc, const ProtobufCFieldDescriptor *f, json_t *v, void *dst,
                        int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        if (json_is_string(v)) {
            const ProtobufCEnumValue *ev =
                protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(v));
            /* an unknown name leaves the default, as protojson's DiscardUnknown */
            if (ev)
                *(int32_t *)dst = ev->value;
            return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN ||
            json_integer_value(v) > INT32_MAX)
            return bad_value(dc, f, "an enum name or number", v);
        *(int32_t *)dst = (int32_t)json_integer_value(v);
        return 0;
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            return bad_value(dc, f, "true or false", v);
        *(protobuf_c_boolean *)dst = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        double x;
        if (json_is_number(v)) {
            x = json_number_value(v);
        } else if (json_is_string(v)) {
            const char *s = json_string_value(v);
            char *end;
            if (strcmp(s, "NaN") == 0)
                x = NAN;
            else if (strcmp(s, "Infinity") == 0)
                x = INFINITY;
            else if (strcmp(s, "-Infinity") == 0)
                x = -INFINITY;
            else if (*s && (x = strtod(s, &end), !*end) && !isspace((unsigned char)*s))
                ;
            else
                return bad_value(dc, f, "a number", v);
        } else {
            return bad_value(dc, f, "a number", v);
        }
        if (f->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *)dst = (float)x;
        else
            *(double *)dst = x;
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v))
            return bad_value(dc, f, "a string", v);
        size_t n = json_string_length(v);
        char *s = dc->alloc->alloc(dc->alloc->allocator_data, n + 1);
        memcpy(s, json_string_value(v), n + 1);
        *(char **)dst = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES:
        if (!json_is_string(v) ||
            b64_decode(dc->alloc, json_string_value(v), json_string_length(v), dst) < 0)
            return firn_errf(dc->err, FIRN_EINVAL, "field \"%s\": want base64", f->name);
        return 0;
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *md = f->descriptor;
        if (!json_is_object(v))
            return bad_value(dc, f, "an object", v);
        ProtobufCMessage *sub = dc->alloc->alloc(dc->alloc->allocator_data, md->sizeof_message);
        protobuf_c_message_init(md, sub);
        *(ProtobufCMessage **)dst = sub;
        int rc = decode_message(dc, md, v, sub, depth + 1);
        if (rc < 0)
            firn_err_prefix(dc->err, "field \"%s\"", f->name);
        return rc;
    }
    default: {   /* the integers */
        bool neg;
        uint64_t mag;
        if (json_integer_of(v, &neg, &mag) < 0)
            return bad_value(dc, f, "an integer (a number or a decimal string)", v);
        uint64_t max = is_32bit(f->type) ? (is_signed(f->type) ? INT32_MAX : UINT32_MAX)
                                         : (is_signed(f->type) ? INT64_MAX : UINT64_MAX);
        if ((neg && !is_signed(f->type)) || mag > max + (neg ? 1u : 0u))
            return firn_errf(dc->err, FIRN_EINVAL, "field \"%s\": %s%" PRIu64 " is out of "
                             "range", f->name, neg ? "-" : "", mag);
        uint64_t u = neg ? (uint64_t)0 - mag : mag;
        if (is_32bit(f->type))
            *(uint32_t *)dst = (uint32_t)u;
        else
            *(uint64_t *)dst = u;
        return 0;
    }
    }
}

static int decode_field(decoder *dc, const ProtobufCFieldDescriptor *f, json_t *v,
                        ProtobufCMessage *m, int depth)
{
    char *base = (char *)m;
    if (json_is_null(v))
        return 0;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (!json_is_array(v))
            return bad_value(dc, f, "an array", v);
        size_t n = json_array_size(v), esz = scalar_size(f->type);
        char *arr = dc->alloc->alloc(dc->alloc->allocator_data, n ? n * esz : 1);
        memset(arr, 0, n ? n * esz : 1);
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(v, i);
            if (json_is_null(e))
                return firn_errf(dc->err, FIRN_EINVAL, "field \"%s\": null in a list",
                                 f->name);
            int rc = decode_value(dc, f, e, arr + i * esz, depth);
            if (rc < 0)
                return rc;
        }
        *(size_t *)(base + f->quantifier_offset) = n;
        *(void **)(base + f->offset) = arr;
        return 0;
    }
    int rc = decode_value(dc, f, v, base + f->offset, depth);
    if (rc < 0)
        return rc;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)(base + f->quantifier_offset) = f->id;
    else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
             f->type != PROTOBUF_C_TYPE_STRING)
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    return 0;
}

static int decode_message(decoder *dc, const ProtobufCMessageDescriptor *d, json_t *obj,
                          ProtobufCMessage *m, int depth)
{
    if (depth > JSON_DEPTH_MAX)
        return firn_errf(dc->err, FIRN_EINVAL, "messages nested deeper than %d",
                         JSON_DEPTH_MAX);
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        const ProtobufCFieldDescriptor *f = field_by_json_key(d, key);
        if (!f)
            continue;   /* unknown fields are ignored (DiscardUnknown) */
        int rc = decode_field(dc, f, v, m, depth);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int pyroscope_json_decode(const ProtobufCMessageDescriptor *d, const char *text, size_t len,
                          ProtobufCAllocator *alloc, ProtobufCMessage **out, firn_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root && json_error_code(&je) == json_error_out_of_memory)
        firn_oom(len);
    if (!root)
        return firn_errf(err, FIRN_EINVAL, "JSON at line %d, column %d: %s", je.line,
                         je.column, je.text);
    int rc;
    ProtobufCMessage *m = NULL;
    if (!json_is_object(root)) {
        rc = firn_errf(err, FIRN_EINVAL, "JSON body: want an object for %s", d->name);
    } else {
        m = alloc->alloc(alloc->allocator_data, d->sizeof_message);
        protobuf_c_message_init(d, m);
        decoder dc = {.alloc = alloc, .err = err};
        rc = decode_message(&dc, d, root, m, 0);
    }
    json_decref(root);
    *out = rc < 0 ? NULL : m;
    return rc;
}

/* ---- encoding ------------------------------------------------------------------------ */

static json_t *encode_message(const ProtobufCMessage *m);

/* j, or an abort: jansson answers NULL for want of memory (the values
 * given to it are valid: strings checked, reals finite). */
static json_t *built(json_t *j)
{
    if (!j)
        firn_oom(sizeof(json_t));
    return j;
}

static json_t *encode_value_of(const ProtobufCFieldDescriptor *f, const void *src)
{
    char buf[32];
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)src);
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)src);
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(buf, sizeof buf, "%" PRId64, *(const int64_t *)src);
        return json_string(buf);
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        snprintf(buf, sizeof buf, "%" PRIu64, *(const uint64_t *)src);
        return json_string(buf);
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        double x = f->type == PROTOBUF_C_TYPE_FLOAT ? *(const float *)src : *(const double *)src;
        if (isnan(x))
            return json_string("NaN");
        if (isinf(x))
            return json_string(x > 0 ? "Infinity" : "-Infinity");
        return json_real(x);
    }
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)src);
    case PROTOBUF_C_TYPE_ENUM: {
        int32_t v = *(const int32_t *)src;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        return ev ? json_string(ev->name) : json_integer(v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)src;
        /* json_string refuses invalid UTF-8; a function name may hold any byte */
        json_t *j = json_string(s ? s : "");
        return j ? j : json_string("\xef\xbf\xbd");
    }
    case PROTOBUF_C_TYPE_BYTES:
        return b64_encode(src);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)src;
        return sub ? encode_message(sub) : json_object();
    }
    }
    return json_null();
}

static json_t *encode_value(const ProtobufCFieldDescriptor *f, const void *src)
{
    return built(encode_value_of(f, src));
}

/* Whether a proto3 singular field holds its default (and is left out). */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *src)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)src;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)src)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)src == NULL;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)src == 0 && !signbit(*(const float *)src);
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)src == 0 && !signbit(*(const double *)src);
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *)src;
    default:
        return is_32bit(f->type) ? *(const uint32_t *)src == 0 : *(const uint64_t *)src == 0;
    }
}

static json_t *encode_message(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    json_t *obj = built(json_object());
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *src = base + f->offset;
        json_t *v = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            if (!n)
                continue;
            const char *arr = *(char *const *)src;
            v = built(json_array());
            for (size_t k = 0; k < n; k++)
                if (json_array_append_new(v, encode_value(f, arr + k * scalar_size(f->type))))
                    firn_oom(sizeof(json_t));
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
                continue;
            v = encode_value(f, src);
        } else {
            if (is_default(f, src))
                continue;
            v = encode_value(f, src);
        }
        char name[128];
        json_name(f->name, name, sizeof name);
        if (json_object_set_new(obj, name, v) < 0)   /* name is the descriptor's ASCII */
            firn_oom(sizeof(json_t));
    }
    return obj;
}

void pyroscope_json_encode(const ProtobufCMessage *m, firn_buf *b)
{
    json_t *j = encode_message(m);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s)   /* j is a whole tree: only memory can fail it */
        firn_oom(sizeof *j);
    json_decref(j);
    firn_buf_puts(b, s);
    free(s);
}
