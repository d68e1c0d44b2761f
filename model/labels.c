/* labels.c -- label sets as Prometheus's model/labels: validation,
 * normalization (sorted, unique names, no empty values), lookup, and the
 * {a="1", b="2"} text form with Go's strconv.Quote escapes.
 *
 * Go decides which runes it prints as is from the Unicode tables
 * (unicode.IsPrint).  Carrying those tables is not worth it here; quote_rune
 * escapes what matters for a reader -- controls, format characters,
 * separators other than the ASCII space, private use, surrogates and
 * noncharacters -- and prints every other rune as is.
 */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR_SHOW_MAX 128   /* bytes of a bad name or value shown in an error */

bool firn_label_name_valid(const char *name)
{
    if (!name || !*name)
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (p != name && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* Decode one UTF-8 sequence at s[0..len) (len > 0).  Returns its length and
 * sets *rune, or returns 0 for an invalid sequence: a bad lead byte, a
 * missing continuation byte, an overlong form, a surrogate, or a code point
 * past U+10FFFF. */
size_t firn_utf8_encode(uint32_t r, char out[4])
{
    if (r < 0x80) {
        out[0] = (char)r;
        return 1;
    }
    if (r < 0x800) {
        out[0] = (char)(0xc0 | (r >> 6));
        out[1] = (char)(0x80 | (r & 0x3f));
        return 2;
    }
    if (r < 0x10000) {
        out[0] = (char)(0xe0 | (r >> 12));
        out[1] = (char)(0x80 | ((r >> 6) & 0x3f));
        out[2] = (char)(0x80 | (r & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (r >> 18));
    out[1] = (char)(0x80 | ((r >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((r >> 6) & 0x3f));
    out[3] = (char)(0x80 | (r & 0x3f));
    return 4;
}

size_t firn_utf8_decode(const unsigned char *s, size_t len, uint32_t *rune)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *rune = c;
        return 1;
    }
    size_t n;
    uint32_t r, min;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, r = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, r = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, r = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        r = (r << 6) | (s[i] & 0x3f);
    }
    if (r < min || r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff))
        return 0;
    *rune = r;
    return n;
}

bool firn_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        uint32_t r;
        size_t n = firn_utf8_decode(p + i, len - i, &r);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* Whether Go's strconv.Quote would print r as is (see the top comment). */
static bool rune_printable(uint32_t r)
{
    if (r < 0x20 || (r >= 0x7f && r <= 0xa0) || r == 0xad)
        return false;
    if (r < 0x0600)
        return true;
    if ((r >= 0x0600 && r <= 0x0605) || r == 0x061c || r == 0x06dd || r == 0x070f ||
        r == 0x08e2 || r == 0x1680 || r == 0x180e)
        return false;
    if ((r >= 0x2000 && r <= 0x200f) || (r >= 0x2028 && r <= 0x202f) ||
        (r >= 0x205f && r <= 0x206f) || r == 0x3000)
        return false;
    if ((r >= 0xd800 && r <= 0xf8ff) || (r >= 0xfdd0 && r <= 0xfdef) || r == 0xfeff ||
        (r >= 0xfff9 && r <= 0xfffb))
        return false;
    if ((r & 0xfffe) == 0xfffe)   /* U+FFFE, U+FFFF and their copies in every plane */
        return false;
    if (r == 0x110bd || r == 0x110cd || (r >= 0x13430 && r <= 0x1343f) ||
        (r >= 0x1bca0 && r <= 0x1bca3) || (r >= 0x1d173 && r <= 0x1d17a))
        return false;
    if (r >= 0x40000 && r <= 0xdffff)   /* planes 4 to 13: unassigned */
        return false;
    if (r >= 0xe0000 && !(r >= 0xe0100 && r <= 0xe01ef))   /* tags, private use */
        return false;
    return true;
}

size_t firn_go_quote(char *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t pos = 0, i = 0;
    char unit[16];
#define EMIT(buf, n)                                   \
    do {                                               \
        if (out)                                       \
            memcpy(out + pos, (buf), (n));             \
        pos += (n);                                    \
    } while (0)
    EMIT("\"", 1);
    while (i < len) {
        uint32_t r;
        size_t n = firn_utf8_decode(p + i, len - i, &r);
        size_t u = 0;
        if (n == 0) {   /* an invalid byte: \xNN */
            unit[u++] = '\\';
            unit[u++] = 'x';
            unit[u++] = hex[p[i] >> 4];
            unit[u++] = hex[p[i] & 0xf];
            n = 1;
        } else if (r == '"' || r == '\\') {
            unit[u++] = '\\';
            unit[u++] = (char)r;
        } else if (rune_printable(r)) {
            memcpy(unit, p + i, n);
            u = n;
        } else {
            static const char controls[] = "abtnvfr";   /* \a=7 .. \r=13 */
            unit[u++] = '\\';
            if (r >= 7 && r <= 13) {
                unit[u++] = controls[r - 7];
            } else if (r < ' ' || r == 0x7f) {
                unit[u++] = 'x';
                unit[u++] = hex[r >> 4];
                unit[u++] = hex[r & 0xf];
            } else {
                int digits = r < 0x10000 ? 4 : 8;
                unit[u++] = r < 0x10000 ? 'u' : 'U';
                for (int d = digits - 1; d >= 0; d--)
                    unit[u++] = hex[(r >> (4 * d)) & 0xf];
            }
        }
        EMIT(unit, u);
        i += n;
    }
    EMIT("\"", 1);
#undef EMIT
    return pos;
}

/* s Go-quoted for an error message, cut to ERR_SHOW_MAX bytes of input. */
static const char *show(char *buf, const char *s)
{
    size_t len = strnlen(s, ERR_SHOW_MAX + 1);
    bool cut = len > ERR_SHOW_MAX;
    if (cut)
        len = ERR_SHOW_MAX;
    size_t n = firn_go_quote(buf, s, len);   /* at most 10 bytes per input byte, + 2 */
    if (cut) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

#define SHOW_BUF (ERR_SHOW_MAX * 10 + 8)

static int compare_by_name(const void *a, const void *b)
{
    return strcmp(((const firn_label *)a)->name, ((const firn_label *)b)->name);
}

int firn_labels_normalize(firn_label *labels, size_t *n, firn_err *err)
{
    char shown[SHOW_BUF];
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        const firn_label *l = &labels[i];
        if (!l->name)
            return firn_errf(err, FIRN_EINVAL, "label %zu: no name", i);
        size_t name_len = strnlen(l->name, FIRN_LABEL_NAME_MAX + 1);
        if (name_len > FIRN_LABEL_NAME_MAX)
            return firn_errf(err, FIRN_ETOOBIG, "label name %s: longer than %d bytes",
                             show(shown, l->name), FIRN_LABEL_NAME_MAX);
        if (!firn_label_name_valid(l->name))
            return firn_errf(err, FIRN_EINVAL,
                             "label name %s: must match [a-zA-Z_][a-zA-Z0-9_]*",
                             show(shown, l->name));
        const char *value = l->value ? l->value : "";
        size_t value_len = strnlen(value, FIRN_LABEL_VALUE_MAX + 1);
        if (value_len > FIRN_LABEL_VALUE_MAX)
            return firn_errf(err, FIRN_ETOOBIG, "label %s: value longer than %d bytes",
                             show(shown, l->name), FIRN_LABEL_VALUE_MAX);
        if (!firn_utf8_valid(value, value_len))
            return firn_errf(err, FIRN_EINVAL, "label %s: value is not valid UTF-8",
                             show(shown, l->name));
        if (value_len > 0)
            kept++;
    }
    if (kept > FIRN_LABELS_MAX)
        return firn_errf(err, FIRN_ETOOBIG, "label set has %zu labels, more than %d", kept,
                         FIRN_LABELS_MAX);

    /* The set is valid pair by pair: drop empty values, sort, look for twins. */
    size_t out = 0;
    for (size_t i = 0; i < *n; i++)
        if (labels[i].value && labels[i].value[0])
            labels[out++] = labels[i];
    firn_sort(labels, out, sizeof *labels, compare_by_name);
    for (size_t i = 1; i < out; i++)
        if (strcmp(labels[i - 1].name, labels[i].name) == 0)
            return firn_errf(err, FIRN_EINVAL, "duplicate label name %s",
                             show(shown, labels[i].name));
    *n = out;
    return FIRN_OK;
}

const char *firn_labels_get(const firn_label *labels, size_t n, const char *name)
{
    if (!name)
        return NULL;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(labels[mid].name, name);
        if (c == 0)
            return labels[mid].value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Write the text form into out (when not NULL); returns its length. */
static size_t format_into(char *out, const firn_label *labels, size_t n)
{
    size_t pos = 0;
#define PUT(s, len)                                    \
    do {                                               \
        if (out)                                       \
            memcpy(out + pos, (s), (len));             \
        pos += (len);                                  \
    } while (0)
    PUT("{", 1);
    for (size_t i = 0; i < n; i++) {
        const char *value = labels[i].value ? labels[i].value : "";
        if (i > 0)
            PUT(", ", 2);
        PUT(labels[i].name, strlen(labels[i].name));
        PUT("=", 1);
        pos += firn_go_quote(out ? out + pos : NULL, value, strlen(value));
    }
    PUT("}", 1);
#undef PUT
    return pos;
}

char *firn_labels_format(const firn_label *labels, size_t n)
{
    size_t len = format_into(NULL, labels, n);
    char *s = malloc(len + 1);
    if (!s)
        return NULL;
    format_into(s, labels, n);
    s[len] = '\0';
    return s;
}
