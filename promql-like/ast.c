/* ast.c -- what a parsed query is made of, once parsed: names of its
 * operators and types, the indented text form (`firnctl query parse`), and
 * freeing.
 *
 * The text form is one node per line, children indented by two spaces,
 * matchers in Prometheus's form with Go-quoted values:
 *
 *   binary / on (job)
 *     aggregate sum by (job)
 *       call rate
 *         matrix_selector {__name__="cpu", job=~"api"} filters {__function__=~"json.*"} [5m]
 *     number 2
 */
#include "promql-like/pql.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


const char *pql_agg_name(pql_agg_op op)
{
    switch (op) {
    case PQL_AGG_SUM: return "sum";
    case PQL_AGG_AVG: return "avg";
    case PQL_AGG_MIN: return "min";
    case PQL_AGG_MAX: return "max";
    case PQL_AGG_COUNT: return "count";
    case PQL_AGG_TOPK: return "topk";
    case PQL_AGG_BOTTOMK: return "bottomk";
    }
    return "?";
}

const char *pql_func_name(pql_func fn)
{
    switch (fn) {
    case PQL_FN_RATE: return "rate";
    case PQL_FN_INCREASE: return "increase";
    case PQL_FN_SUM_OVER_TIME: return "sum_over_time";
    case PQL_FN_AVG_OVER_TIME: return "avg_over_time";
    case PQL_FN_MAX_OVER_TIME: return "max_over_time";
    case PQL_FN_MIN_OVER_TIME: return "min_over_time";
    case PQL_FN_COUNT_OVER_TIME: return "count_over_time";
    case PQL_FN_VECTOR: return "vector";
    case PQL_FN_TIME: return "time";
    }
    return "?";
}

const char *pql_binop_name(pql_binop op)
{
    switch (op) {
    case PQL_OP_ADD: return "+";
    case PQL_OP_SUB: return "-";
    case PQL_OP_MUL: return "*";
    case PQL_OP_DIV: return "/";
    case PQL_OP_EQ: return "==";
    case PQL_OP_NE: return "!=";
    case PQL_OP_GT: return ">";
    case PQL_OP_LT: return "<";
    case PQL_OP_GE: return ">=";
    case PQL_OP_LE: return "<=";
    }
    return "?";
}

/* The names of Prometheus's API ("resultType"), not of its error messages
 * ("instant vector", "range vector"). */
const char *pql_type_name(pql_value_type t)
{
    switch (t) {
    case PQL_TYPE_SCALAR: return "scalar";
    case PQL_TYPE_VECTOR: return "vector";
    case PQL_TYPE_MATRIX: return "matrix";
    case PQL_TYPE_STRING: return "string";
    }
    return "?";
}

/* ---- freeing ------------------------------------------------------------ */

/* The tree's height is at most PQL_DEPTH_MAX (the parser's promise), so
 * recursion is bounded. */
static void destroy_matchers(pql_expr *e)
{
    if (!e)
        return;
    switch (e->kind) {
    case PQL_NUMBER:
    case PQL_STRING:
        break;
    case PQL_VECTOR_SELECTOR:
    case PQL_MATRIX_SELECTOR:
        for (size_t i = 0; i < e->sel.n_matchers; i++)
            firn_matcher_destroy(&e->sel.matchers[i]);
        for (size_t i = 0; i < e->sel.n_filters; i++)
            firn_matcher_destroy(&e->sel.filters[i]);
        e->sel.n_matchers = e->sel.n_filters = 0;
        break;
    case PQL_AGGREGATE:
        destroy_matchers(e->agg.param);
        destroy_matchers(e->agg.expr);
        break;
    case PQL_CALL:
        for (size_t i = 0; i < e->call.n_args; i++)
            destroy_matchers(e->call.args[i]);
        break;
    case PQL_BINARY:
        destroy_matchers(e->bin.lhs);
        destroy_matchers(e->bin.rhs);
        break;
    case PQL_UNARY_MINUS:
    case PQL_PAREN:
        destroy_matchers(e->unary.expr);
        break;
    }
}

void pql_query_free(pql_query *q)
{
    if (!q)
        return;
    destroy_matchers(q->root);
    firn_arena_free(q->arena);
    q->root = NULL;
    q->arena = NULL;
}

/* ---- the text form --------------------------------------------------------- */

static void sb_quote(firn_buf *b, const char *s)
{
    size_t len = strlen(s);
    char small[256];
    size_t need = firn_go_quote(NULL, s, len);
    char *q = need <= sizeof small ? small : firn_xmalloc(need);
    firn_go_quote(q, s, len);
    firn_buf_append(b, q, need);
    if (q != small)
        free(q);
}

/* A label name as written in a selector: bare when it is a legacy name,
 * quoted otherwise (Prometheus 3). */
static void sb_label_name(firn_buf *b, const char *name)
{
    if (firn_label_name_valid(name))
        firn_buf_puts(b, name);
    else
        sb_quote(b, name);
}

static void sb_number(firn_buf *b, double v)
{
    if (v != v) {
        firn_buf_puts(b, "NaN");
        return;
    }
    if (v > 1.7976931348623157e308 || v < -1.7976931348623157e308) {
        firn_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    /* Whole numbers in full, others in the shortest form that reads back
     * as the same double. */
    char buf[64];
    if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v) {
        firn_buf_printf(b, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    firn_buf_puts(b, buf);
}

static void sb_duration(firn_buf *b, int64_t ms)
{
    char buf[64];
    if (ms < 0) {
        firn_buf_puts(b, "-");
        ms = -ms;
    }
    firn_duration_format(buf, sizeof buf, ms);
    firn_buf_puts(b, buf);
}

static void sb_matchers(firn_buf *b, const firn_matcher *m, size_t n)
{
    firn_buf_puts(b, "{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            firn_buf_puts(b, ", ");
        sb_label_name(b, m[i].name);
        firn_buf_puts(b, firn_match_type_str(m[i].type));
        sb_quote(b, m[i].value);
    }
    firn_buf_puts(b, "}");
}

static void sb_labels(firn_buf *b, const char *const *labels, size_t n)
{
    firn_buf_puts(b, "(");
    for (size_t i = 0; i < n; i++) {
        if (i)
            firn_buf_puts(b, ", ");
        sb_label_name(b, labels[i]);
    }
    firn_buf_puts(b, ")");
}

static void format_node(firn_buf *b, const pql_expr *e, int indent)
{
    for (int i = 0; i < indent; i++)
        firn_buf_puts(b, "  ");
    switch (e->kind) {
    case PQL_NUMBER:
        firn_buf_puts(b, "number ");
        sb_number(b, e->number);
        firn_buf_puts(b, "\n");
        return;
    case PQL_STRING:
        firn_buf_puts(b, "string ");
        sb_quote(b, e->string);
        firn_buf_puts(b, "\n");
        return;
    case PQL_VECTOR_SELECTOR:
    case PQL_MATRIX_SELECTOR:
        firn_buf_puts(b, e->kind == PQL_VECTOR_SELECTOR ? "vector_selector " : "matrix_selector ");
        sb_matchers(b, e->sel.matchers, e->sel.n_matchers);
        if (e->sel.n_filters) {
            firn_buf_puts(b, " filters ");
            sb_matchers(b, e->sel.filters, e->sel.n_filters);
        }
        if (e->kind == PQL_MATRIX_SELECTOR) {
            firn_buf_puts(b, " [");
            sb_duration(b, e->sel.range_ms);
            firn_buf_puts(b, "]");
        }
        if (e->sel.offset_ms) {
            firn_buf_puts(b, " offset ");
            sb_duration(b, e->sel.offset_ms);
        }
        firn_buf_puts(b, "\n");
        return;
    case PQL_AGGREGATE:
        firn_buf_printf(b, "aggregate %s", pql_agg_name(e->agg.op));
        if (e->agg.without || e->agg.n_labels) {
            firn_buf_puts(b, e->agg.without ? " without " : " by ");
            sb_labels(b, e->agg.labels, e->agg.n_labels);
        }
        firn_buf_puts(b, "\n");
        if (e->agg.param)
            format_node(b, e->agg.param, indent + 1);
        format_node(b, e->agg.expr, indent + 1);
        return;
    case PQL_CALL:
        firn_buf_printf(b, "call %s\n", pql_func_name(e->call.fn));
        for (size_t i = 0; i < e->call.n_args; i++)
            format_node(b, e->call.args[i], indent + 1);
        return;
    case PQL_BINARY:
        firn_buf_printf(b, "binary %s", pql_binop_name(e->bin.op));
        if (e->bin.return_bool)
            firn_buf_puts(b, " bool");
        if (e->bin.on || e->bin.ignoring) {
            firn_buf_puts(b, e->bin.on ? " on " : " ignoring ");
            sb_labels(b, e->bin.labels, e->bin.n_labels);
        }
        firn_buf_puts(b, "\n");
        format_node(b, e->bin.lhs, indent + 1);
        format_node(b, e->bin.rhs, indent + 1);
        return;
    case PQL_UNARY_MINUS:
        firn_buf_puts(b, "unary_minus\n");
        format_node(b, e->unary.expr, indent + 1);
        return;
    case PQL_PAREN:
        firn_buf_puts(b, "paren\n");
        format_node(b, e->unary.expr, indent + 1);
        return;
    }
}

/* A malloc'd string (free it with free()); never NULL. */
char *pql_format_ast(const pql_query *q)
{
    firn_buf b = {0};
    if (q && q->root)
        format_node(&b, q->root, 0);
    return firn_buf_take(&b, NULL);
}
