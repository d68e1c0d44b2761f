/* log.c -- structured one-line logs (logfmt) on standard error.
 *
 * A line is built in a PIPE_BUF-sized buffer on the stack and written with a
 * single write(2): lines from different threads never interleave, and an
 * over-long line is cut (on a UTF-8 boundary, never inside an escape) rather
 * than split.  The level threshold is one atomic int, so firn_log_set_level
 * may be called while other threads log.
 */
#include "model/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096   /* PIPE_BUF: one write(2) of this is atomic on a pipe */
#define LOG_COMPONENT_MAX 64

static atomic_int log_threshold = FIRN_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void firn_log_set_level(enum firn_log_level level)
{
    atomic_store(&log_threshold, (int)level);
}

int firn_log_level_parse(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

static bool is_utf8_continuation(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

/* The length of s[0..len) cut back so that it does not end inside a UTF-8
 * sequence: a trailing lead byte whose continuation bytes were cut off is
 * dropped with them. */
static size_t utf8_cut(const char *s, size_t len)
{
    size_t i = len;
    while (i > 0 && is_utf8_continuation((unsigned char)s[i - 1]))
        i--;
    if (i == 0)
        return len;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    return len - (i - 1) >= want ? len : i - 1;
}

static bool needs_quote(const char *s)
{
    if (*s == '\0')
        return true;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == 0x7f)
            return true;
    return false;
}

/* Append s, escaped for the inside of a logfmt double-quoted value, at
 * out[pos]; nothing is written at or past out[limit].  An escape or a UTF-8
 * sequence is written whole or not at all.  Returns the new position. */
static size_t escape_into(char *out, size_t limit, size_t pos, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        char unit[8];
        size_t n = 0, take = 1;
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            unit[n++] = '\\';
            unit[n++] = (char)c;
        } else if (c == '\n') {
            unit[n++] = '\\';
            unit[n++] = 'n';
        } else if (c == '\r') {
            unit[n++] = '\\';
            unit[n++] = 'r';
        } else if (c == '\t') {
            unit[n++] = '\\';
            unit[n++] = 't';
        } else if (c < ' ' || c == 0x7f) {
            memcpy(unit, "\\u00", 4);
            n = 4;
            unit[n++] = hex[c >> 4];
            unit[n++] = hex[c & 0xf];
        } else {
            /* A UTF-8 sequence (or a stray byte) is copied whole. */
            while (take < 4 && is_utf8_continuation(p[take]))
                take++;
            if (c < 0x80)
                take = 1;
            memcpy(unit, p, take);
            n = take;
        }
        if (pos + n > limit)
            break;
        memcpy(out + pos, unit, n);
        pos += n;
        p += take;
    }
    return pos;
}

const char *firn_log_quote(char *buf, size_t size, const char *s)
{
    if (size == 0)
        return buf;
    if (!s)
        s = "";
    if (!needs_quote(s)) {
        size_t len = strnlen(s, size);
        if (len == size)
            len = utf8_cut(s, size - 1);
        memcpy(buf, s, len);
        buf[len] = '\0';
        return buf;
    }
    if (size < 3) {   /* not even room for "" */
        buf[0] = '\0';
        return buf;
    }
    size_t pos = 0;
    buf[pos++] = '"';
    pos = escape_into(buf, size - 2, pos, s);
    buf[pos++] = '"';
    buf[pos] = '\0';
    return buf;
}

/* "2026-11-24T10:00:00.123Z" into out (at least 25 bytes). */
static void format_timestamp(char *out, size_t size)
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03dZ", (int)(now.tv_nsec / 1000000));
}

void firn_log(enum firn_log_level level, const char *component, const char *msg,
              const char *kv_fmt, ...)
{
    if ((int)level < atomic_load(&log_threshold))
        return;
    int li = (int)level;
    if (li < FIRN_LOG_DEBUG || li > FIRN_LOG_ERROR)
        li = FIRN_LOG_ERROR;

    char line[LOG_LINE_MAX];
    char ts[40], comp[LOG_COMPONENT_MAX];
    format_timestamp(ts, sizeof ts);
    firn_log_quote(comp, sizeof comp, component ? component : "");
    int head = snprintf(line, sizeof line, "ts=%s level=%s component=%s msg=\"", ts,
                        level_names[li], comp);
    if (head < 0)
        return;
    size_t pos = (size_t)head;   /* short: ts, level and comp are bounded */

    /* Room is kept for the closing quote and the newline. */
    pos = escape_into(line, sizeof line - 2, pos, msg ? msg : "");
    line[pos++] = '"';

    if (kv_fmt && pos + 2 < sizeof line) {
        line[pos++] = ' ';
        size_t room = sizeof line - 1 - pos;   /* the newline's byte is kept back */
        va_list ap;
        va_start(ap, kv_fmt);
        int n = vsnprintf(line + pos, room + 1, kv_fmt, ap);
        va_end(ap);
        if (n < 0)
            n = 0;
        if ((size_t)n > room)
            n = (int)utf8_cut(line + pos, room);
        pos += (size_t)n;
    }
    line[pos++] = '\n';

    const char *p = line;
    size_t left = pos;
    while (left > 0) {
        ssize_t w = write(STDERR_FILENO, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;   /* nowhere left to report a failing stderr */
        p += w;
        left -= (size_t)w;
    }
}
