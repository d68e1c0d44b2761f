/* text.c -- UTF-8, Go's strconv.Quote, JSON strings and HTTP reason phrases.
 *
 * Go decides which runes it prints as is from the Unicode tables
 * (unicode.IsPrint).  Carrying those tables is not worth it here; rune_printable
 * escapes what matters for a reader -- controls, format characters,
 * separators other than the ASCII space, private use, surrogates and
 * noncharacters -- and prints every other rune as is.
 */
#include "model/text.h"

#include <stdint.h>
#include <string.h>

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

void firn_json_string(firn_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t len = strlen((const char *)p), start = 0, i = 0;
    firn_buf_append(b, "\"", 1);
    while (i < len) {
        unsigned char c = p[i];
        const char *esc = NULL;
        char u[8];
        size_t step = 1;
        if (c >= 0x80) {
            uint32_t rune;
            step = firn_utf8_decode(p + i, len - i, &rune);
            if (step == 0) {
                esc = "\\ufffd";   /* invalid UTF-8, as Go replaces it */
                step = 1;
            } else if (rune == 0x2028 || rune == 0x2029) {
                esc = rune == 0x2028 ? "\\u2028" : "\\u2029";
            }
        } else if (c == '"') {
            esc = "\\\"";
        } else if (c == '\\') {
            esc = "\\\\";
        } else if (c == '\n') {
            esc = "\\n";
        } else if (c == '\r') {
            esc = "\\r";
        } else if (c == '\t') {
            esc = "\\t";
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            /* Go's encoding/json escapes HTML's specials too */
            u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0';
            u[4] = hex[c >> 4], u[5] = hex[c & 15], u[6] = 0;
            esc = u;
        }
        if (esc) {
            firn_buf_append(b, p + start, i - start);
            firn_buf_puts(b, esc);
            start = i + step;
        }
        i += step;
    }
    firn_buf_append(b, p + start, len - start);
    firn_buf_append(b, "\"", 1);
}

const char *firn_http_status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Request Entity Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
    }
}
