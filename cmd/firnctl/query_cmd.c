/* query_cmd.c -- `firnctl query ...`: the query language from the command
 * line.  `query parse EXPR` prints the AST as the parser sees it (one node
 * per line), or the parse error with its line and column. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firnctl.h"
#include "promql-like/pql.h"

static int query_parse(const char *text)
{
    pql_query q;
    firn_err err = {0};
    if (pql_parse(text, &q, &err) < 0) {
        fprintf(stderr, "firnctl: %s\n", err.msg);
        return 1;
    }
    char *ast = pql_format_ast(&q);
    pql_query_free(&q);
    if (!ast) {
        fprintf(stderr, "firnctl: out of memory\n");
        return 1;
    }
    fputs(ast, stdout);
    free(ast);
    return 0;
}

int cmd_query(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[0], "parse") == 0)
        return query_parse(argv[1]);
    fprintf(stderr, "usage: firnctl query parse EXPR\n");
    return 2;
}
