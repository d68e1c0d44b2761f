/* err.c -- firn_err: one human sentence per failure, with context added on the
 * way up the call stack. */
#include "model/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int firn_errf(firn_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void firn_err_prefix(firn_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[FIRN_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    /* Truncation is acceptable: the message stays NUL-terminated. */
    char joined[FIRN_ERR_MSG_MAX];
    size_t plen = strnlen(prefix, sizeof joined - 3);
    memcpy(joined, prefix, plen);
    memcpy(joined + plen, ": ", 2);
    size_t room = sizeof joined - plen - 3;
    size_t mlen = strnlen(err->msg, room);
    memcpy(joined + plen + 2, err->msg, mlen);
    joined[plen + 2 + mlen] = '\0';
    memcpy(err->msg, joined, sizeof joined);
}

void firn_err_clear(firn_err *err)
{
    if (err) {
        err->code = FIRN_OK;
        err->msg[0] = '\0';
    }
}
