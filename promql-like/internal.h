/* internal.h -- what the files of promql-like/ share and nobody else uses. */
#ifndef FIRN_PQL_INTERNAL_H
#define FIRN_PQL_INTERNAL_H

#include <stddef.h>

/* s[0..len) Go-quoted (strconv.Quote) into out when not NULL; returns the
 * length, at most 10 bytes per input byte + 2.  Defined in ast.c. */
size_t pql_quote(char *out, const char *s, size_t len);

#endif
