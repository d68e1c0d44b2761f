/* fuzz_pql_parse.c -- libFuzzer target for the query parser.  The input is
 * query text (up to its first NUL).  Whatever it is, nothing may crash or
 * leak, every refusal must say where and why ("LINE:COL: ..." unless the
 * query is too long), and what parses must format as an AST.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql-like/pql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > PQL_QUERY_MAX + 16)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    pql_query q;
    firn_err err = {0};
    int rc = pql_parse(text, &q, &err);
    if (rc < 0) {
        int line, col;
        if (err.msg[0] == '\0' || q.root != NULL)
            abort();
        if (rc == FIRN_EINVAL && sscanf(err.msg, "%d:%d: ", &line, &col) != 2)
            abort();
    } else {
        if (!q.root || !q.arena)
            abort();
        char *ast = pql_format_ast(&q);
        if (!ast || ast[0] == '\0')
            abort();
        free(ast);
        pql_query_free(&q);
    }
    free(text);
    return 0;
}
