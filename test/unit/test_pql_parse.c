/* test_pql_parse.c -- the query parser: Prometheus's selector and string
 * tests ported one for one (promql/parser/parse_test.go, vector and matrix
 * selector sections; lex_test.go, strings, numbers, selectors, encoding and
 * mismatched-parentheses sections), then firn's own tables for the rest of
 * the language: aggregations, calls, operators and their precedence, types,
 * offsets, comments, numbers, stack filters, limits, and the AST's text form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql-like/pql.h"

#define EQ FIRN_MATCH_EQ
#define NE FIRN_MATCH_NE
#define RE FIRN_MATCH_RE
#define NRE FIRN_MATCH_NRE

#define COUNT_OF(a) (sizeof(a) / sizeof *(a))

/* Every error is "LINE:COL: message". */
static void assert_positioned(const char *input, const char *msg)
{
    int line = 0, col = 0, n = 0;
    if (sscanf(msg, "%d:%d: %n", &line, &col, &n) != 2 || n == 0 || line < 1 || col < 1)
        fail_msg("%s: error without a position: \"%s\"", input, msg);
}

static pql_query parse_ok(const char *input)
{
    pql_query q;
    firn_err err = {0};
    if (pql_parse(input, &q, &err) != 0)
        fail_msg("%s: unexpected error: %s", input, err.msg);
    assert_non_null(q.root);
    return q;
}

/* want NULL: any positioned error will do. */
static void parse_fails(const char *input, const char *want)
{
    pql_query q;
    firn_err err = {0};
    int rc = pql_parse(input, &q, &err);
    if (rc == 0) {
        char *ast = pql_format_ast(&q);
        pql_query_free(&q);
        fail_msg("%s: parsed, expected error \"%s\":\n%s", input, want ? want : "", ast);
    }
    assert_int_equal(rc, FIRN_EINVAL);
    assert_int_equal(err.code, FIRN_EINVAL);
    assert_null(q.root);
    assert_positioned(input, err.msg);
    if (want && strcmp(err.msg, want) != 0)
        fail_msg("%s:\n  got  \"%s\"\n  want \"%s\"", input, err.msg, want);
}

/* ---- Prometheus: parse_test.go, vector and matrix selectors --------------------------- */

struct want_matcher {
    firn_match_type type;
    const char *name, *value;
};

struct selector_case {
    const char *input;
    const char *name;            /* sel.name, NULL when not written outside braces */
    struct want_matcher m[6];    /* until name NULL; the metric name first */
    int64_t offset_ms, range_ms; /* range 0: a vector selector */
};

#define MIN_MS (60 * 1000LL)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)

static const struct selector_case SELECTORS[] = {
    /* parse_test.go */
    {"foo", "foo", {{EQ, "__name__", "foo"}}, 0, 0},
    {"min", "min", {{EQ, "__name__", "min"}}, 0, 0},
    {"foo offset 5m", "foo", {{EQ, "__name__", "foo"}}, 5 * MIN_MS, 0},
    {"foo offset -7m", "foo", {{EQ, "__name__", "foo"}}, -7 * MIN_MS, 0},
    {"foo OFFSET 1h30m", "foo", {{EQ, "__name__", "foo"}}, 90 * MIN_MS, 0},
    {"foo OFFSET 1m30ms", "foo", {{EQ, "__name__", "foo"}}, MIN_MS + 30, 0},
    {"foo:bar{a=\"bc\"}", "foo:bar", {{EQ, "__name__", "foo:bar"}, {EQ, "a", "bc"}}, 0, 0},
    {"{\"foo\"}", NULL, {{EQ, "__name__", "foo"}}, 0, 0},
    {"{'foo\\'bar', 'a\\\\dos\\\\path'='boo\\\\urns'}", NULL,
     {{EQ, "__name__", "foo'bar"}, {EQ, "a\\dos\\path", "boo\\urns"}}, 0, 0},
    {"{'foo\\'bar', `a\\dos\\path`=\"boo\"}", NULL,
     {{EQ, "__name__", "foo'bar"}, {EQ, "a\\dos\\path", "boo"}}, 0, 0},
    {"{\"foo\", a=\"bc\"}", NULL, {{EQ, "__name__", "foo"}, {EQ, "a", "bc"}}, 0, 0},
    {"foo{NaN='bc'}", "foo", {{EQ, "__name__", "foo"}, {EQ, "NaN", "bc"}}, 0, 0},
    {"foo{bar='}'}", "foo", {{EQ, "__name__", "foo"}, {EQ, "bar", "}"}}, 0, 0},
    {"foo{a=\"b\", foo!=\"bar\", test=~\"test\", bar!~\"baz\"}", "foo",
     {{EQ, "__name__", "foo"}, {EQ, "a", "b"}, {NE, "foo", "bar"}, {RE, "test", "test"},
      {NRE, "bar", "baz"}}, 0, 0},
    {"{a=\"b\", foo!=\"bar\", \"foo\", test=~\"test\", bar!~\"baz\"}", NULL,
     {{EQ, "a", "b"}, {NE, "foo", "bar"}, {EQ, "__name__", "foo"}, {RE, "test", "test"},
      {NRE, "bar", "baz"}}, 0, 0},
    {"foo{a=\"b\", foo!=\"bar\", test=~\"test\", bar!~\"baz\",}", "foo",
     {{EQ, "__name__", "foo"}, {EQ, "a", "b"}, {NE, "foo", "bar"}, {RE, "test", "test"},
      {NRE, "bar", "baz"}}, 0, 0},
    {"{__name__=~\"bar\", __name__!~\"baz\"}", NULL,
     {{RE, "__name__", "bar"}, {NRE, "__name__", "baz"}}, 0, 0},
    {"{__name__=\"bar\", __name__=\"baz\"}", NULL,
     {{EQ, "__name__", "bar"}, {EQ, "__name__", "baz"}}, 0, 0},
    {"{\"bar\", __name__=\"baz\"}", NULL, {{EQ, "__name__", "bar"}, {EQ, "__name__", "baz"}}, 0,
     0},
    {"test[1000ms]", "test", {{EQ, "__name__", "test"}}, 0, 1000},
    {"test[1001ms]", "test", {{EQ, "__name__", "test"}}, 0, 1001},
    {"test[5s]", "test", {{EQ, "__name__", "test"}}, 0, 5000},
    {"test[5m]", "test", {{EQ, "__name__", "test"}}, 0, 5 * MIN_MS},
    {"foo[5m30s]", "foo", {{EQ, "__name__", "foo"}}, 0, 5 * MIN_MS + 30000},
    {"test[5h] OFFSET 5m", "test", {{EQ, "__name__", "test"}}, 5 * MIN_MS, 5 * HOUR_MS},
    {"test[5d] OFFSET 10s", "test", {{EQ, "__name__", "test"}}, 10000, 5 * DAY_MS},
    {"test[5w] offset 2w", "test", {{EQ, "__name__", "test"}}, 14 * DAY_MS, 35 * DAY_MS},
    {"test{a=\"b\"}[5y] OFFSET 3d", "test", {{EQ, "__name__", "test"}, {EQ, "a", "b"}},
     3 * DAY_MS, 5 * 365 * DAY_MS},
    {"test{a=\"b\"}[5m] OFFSET 3600", "test", {{EQ, "__name__", "test"}, {EQ, "a", "b"}},
     HOUR_MS, 5 * MIN_MS},
    {"foo[4.18]", "foo", {{EQ, "__name__", "foo"}}, 0, 4180},
    {"foo[4s18ms]", "foo", {{EQ, "__name__", "foo"}}, 0, 4018},
    {"test[5]", "test", {{EQ, "__name__", "test"}}, 0, 5000},
    /* lex_test.go, selectors (with a metric name where the matcher alone
     * would match the empty string) */
    {"{foo='bar'}", NULL, {{EQ, "foo", "bar"}}, 0, 0},
    {"{foo=\"bar\"}", NULL, {{EQ, "foo", "bar"}}, 0, 0},
    {"{foo=\"bar\\\"bar\"}", NULL, {{EQ, "foo", "bar\"bar"}}, 0, 0},
    {"x{NaN\t!= \"bar\" }", "x", {{EQ, "__name__", "x"}, {NE, "NaN", "bar"}}, 0, 0},
    {"{alert=~\"bar\" }", NULL, {{RE, "alert", "bar"}}, 0, 0},
    {"x{on!~\"bar\"}", "x", {{EQ, "__name__", "x"}, {NRE, "on", "bar"}}, 0, 0},
    {"test_name{on!~\"b:ar\"}[4m]", "test_name", {{EQ, "__name__", "test_name"},
     {NRE, "on", "b:ar"}}, 0, 4 * MIN_MS},
    /* keywords as label and metric names */
    {"{by=\"a\", offset=\"b\", bool=\"c\", sum=\"d\", ignoring=\"e\"}", NULL,
     {{EQ, "by", "a"}, {EQ, "offset", "b"}, {EQ, "bool", "c"}, {EQ, "sum", "d"},
      {EQ, "ignoring", "e"}}, 0, 0},
    {"by", "by", {{EQ, "__name__", "by"}}, 0, 0},
    {"offset offset 1m", "offset", {{EQ, "__name__", "offset"}}, MIN_MS, 0},
    {"sum{a=\"b\"}", "sum", {{EQ, "__name__", "sum"}, {EQ, "a", "b"}}, 0, 0},
    /* comments, also inside braces */
    {"foo{ # the job\n job=\"api\", # and the instance\n}", "foo",
     {{EQ, "__name__", "foo"}, {EQ, "job", "api"}}, 0, 0},
    /* two matchers on one label: both must hold */
    {"foo{a=~\"x.*\", a!=\"xy\"}", "foo",
     {{EQ, "__name__", "foo"}, {RE, "a", "x.*"}, {NE, "a", "xy"}}, 0, 0},
};

static void test_selectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT_OF(SELECTORS); i++) {
        const struct selector_case *c = &SELECTORS[i];
        pql_query q = parse_ok(c->input);
        const pql_expr *e = q.root;
        if (e->kind != (c->range_ms ? PQL_MATRIX_SELECTOR : PQL_VECTOR_SELECTOR))
            fail_msg("%s: kind %d", c->input, (int)e->kind);
        assert_int_equal(q.type, c->range_ms ? PQL_TYPE_MATRIX : PQL_TYPE_VECTOR);
        if (c->name)
            assert_string_equal(e->sel.name, c->name);
        else
            assert_null(e->sel.name);
        size_t n = 0;
        while (n < COUNT_OF(c->m) && c->m[n].name)
            n++;
        if (e->sel.n_matchers != n)
            fail_msg("%s: %zu matchers, want %zu", c->input, e->sel.n_matchers, n);
        for (size_t j = 0; j < n; j++) {
            const firn_matcher *m = &e->sel.matchers[j];
            if (m->type != c->m[j].type || strcmp(m->name, c->m[j].name) != 0 ||
                strcmp(m->value, c->m[j].value) != 0)
                fail_msg("%s: matcher %zu is %s%s\"%s\", want %s%s\"%s\"", c->input, j, m->name,
                         firn_match_type_str(m->type), m->value, c->m[j].name,
                         firn_match_type_str(c->m[j].type), c->m[j].value);
        }
        assert_int_equal(e->sel.n_filters, 0);
        assert_int_equal(e->sel.offset_ms, c->offset_ms);
        assert_int_equal(e->sel.range_ms, c->range_ms);
        assert_int_equal(e->line, 1);
        assert_int_equal(e->col, 1);
        pql_query_free(&q);
    }
}

struct error_case {
    const char *input;
    const char *error; /* NULL: any positioned error */
};

static const struct error_case SELECTOR_ERRORS[] = {
    /* parse_test.go, with Prometheus's positions and messages */
    {"{", "1:2: unexpected end of input inside braces"},
    {"}", "1:1: unexpected character: '}'"},
    {"some{", "1:6: unexpected end of input inside braces"},
    {"some}", "1:5: unexpected character: '}'"},
    {"some_metric{a=b}", "1:15: unexpected identifier \"b\" in label matching, expected string"},
    {"some_metric{a:b=\"b\"}", "1:14: unexpected character inside braces: ':'"},
    {"foo{a*\"b\"}", "1:6: unexpected character inside braces: '*'"},
    {"foo{a>=\"b\"}", "1:6: unexpected character inside braces: '>'"},
    {"some_metric{a=\"\xff\"}", "1:15: invalid UTF-8 rune"},
    {"foo{gibberish}",
     "1:14: unexpected \"}\" in label matching, expected label matching operator"},
    {"foo{1}", "1:5: unexpected character inside braces: '1'"},
    {"{}", "1:1: vector selector must contain at least one non-empty matcher"},
    {"{x=\"\"}", "1:1: vector selector must contain at least one non-empty matcher"},
    {"{x=~\".*\"}", "1:1: vector selector must contain at least one non-empty matcher"},
    {"{x!~\".+\"}", "1:1: vector selector must contain at least one non-empty matcher"},
    {"{x!=\"a\"}", "1:1: vector selector must contain at least one non-empty matcher"},
    {"foo{__name__=\"bar\"}", "1:1: metric name must not be set twice: \"foo\" or \"bar\""},
    {"foo{__name__= =}", "1:15: unexpected \"=\" in label matching, expected string"},
    {"foo{,}", "1:5: unexpected \",\" in label matching, expected identifier or \"}\""},
    {"foo{__name__ == \"bar\"}", "1:15: unexpected \"=\" in label matching, expected string"},
    {"foo{__name__=\"bar\" lol}",
     "1:20: unexpected identifier \"lol\" in label matching, expected \",\" or \"}\""},
    {"foo{\"a\"=}", "1:9: unexpected \"}\" in label matching, expected string"},
    {"foo[5mm]", "1:5: bad number or duration syntax: \"5mm\""},
    {"foo[5m1]", "1:5: bad number or duration syntax: \"5m1\""},
    {"foo[5y1hs]", "1:5: bad number or duration syntax: \"5y1hs\""},
    {"foo[5m1h]", "1:5: not a valid duration string: \"5m1h\""},
    {"foo[5m1m]", "1:5: not a valid duration string: \"5m1m\""},
    {"foo[0m]", "1:5: duration must be greater than 0"},
    {"foo[\"5m\"]", "1:5: unexpected string \"\\\"5m\\\"\" in range selector, expected number or "
                    "duration"},
    {"foo[]", "1:5: unexpected \"]\" in range selector, expected number or duration"},
    {"foo[-1]", "1:5: unexpected \"-\" in range selector, expected number or duration"},
    {"some_metric[5m] OFFSET 1mm", "1:24: bad number or duration syntax: \"1mm\""},
    {"some_metric[5m] OFFSET",
     "1:23: unexpected end of input in offset, expected number or duration"},
    {"some_metric OFFSET 1m[5m]", "1:22: no offset modifiers allowed before range"},
    {"(foo + bar)[5m]", "1:12: ranges only allowed for vector selectors"},
    {"foo @ 1603774568", "1:5: the @ modifier is not supported"},
    {"foo[5m:1m]", "1:7: subqueries are not supported"},
    /* lex_test.go, selectors */
    {"台北", "1:1: unexpected character: '台'"},
    {"{台北='a'}", "1:2: unexpected character inside braces: '台'"},
    {"{0a='a'}", "1:2: unexpected character inside braces: '0'"},
    {"{alert!#\"bar\"}", "1:7: unexpected character after '!' inside braces: '#'"},
    {"{foo:a=\"bar\"}", "1:5: unexpected character inside braces: ':'"},
    {"foo{a=\"b\"{", "1:10: unexpected left brace '{'"},
    /* lex_test.go, common errors and mismatched parentheses */
    {"=~", "1:1: unexpected \"=\""},
    {"!~", "1:1: unexpected character after '!': '~'"},
    {"!(", "1:1: unexpected character after '!': '('"},
    {"1a", "1:1: bad number or duration syntax: \"1a\""},
    {"(", "1:2: unexpected end of input"},
    {"())", "1:2: unexpected \")\""},
    {"(()", "1:3: unexpected \")\""},
    {"{{", "1:2: unexpected left brace '{'"},
    {"{{}}", "1:2: unexpected left brace '{'"},
    {"[", "1:1: unexpected \"[\""},
    {"[[", "1:1: unexpected \"[\""},
    {"[]]", "1:1: unexpected \"[\""},
    {"[[]]", "1:1: unexpected \"[\""},
    {"]", "1:1: unexpected \"]\""},
    /* quoted label names must name something */
    {"{\"\"=\"a\"}", "1:2: label name must not be empty"},
    /* an invalid regex is a parse error at its matcher */
    {"foo{\n  job=~\"(\"}", NULL},
};

static void test_selector_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT_OF(SELECTOR_ERRORS); i++)
        parse_fails(SELECTOR_ERRORS[i].input, SELECTOR_ERRORS[i].error);
}

static void test_invalid_regex_names_position(void **state)
{
    (void)state;
    pql_query q;
    firn_err err = {0};
    assert_int_equal(pql_parse("foo{\n  job=~\"(\"}", &q, &err), FIRN_EINVAL);
    assert_non_null(strstr(err.msg, "2:3: "));
    assert_non_null(strstr(err.msg, "job"));
    assert_non_null(strstr(err.msg, "invalid regex"));
}

/* ---- Prometheus: lex_test.go, strings and encoding ------------------------------------- */

struct string_case {
    const char *input;
    const char *value; /* NULL: an error */
    const char *error;
};

static const struct string_case STRINGS[] = {
    {"\"test\\tsequence\"", "test\tsequence", NULL},
    {"\"test\\\\.expression\"", "test\\.expression", NULL},
    {"\"test\\.expression\"", NULL, "1:1: unknown escape sequence U+002E '.'"},
    {"`test\\.expression`", "test\\.expression", NULL},
    {".٩", NULL, "1:1: unexpected character: '.'"},
    {"\"\xff\"", NULL, "1:1: invalid UTF-8 rune"},
    {"`\xff`", NULL, "1:1: invalid UTF-8 rune"},
    /* Go's escapes */
    {"\"\\a\\b\\f\\n\\r\\t\\v\\\\\\\"\"", "\a\b\f\n\r\t\v\\\"", NULL},
    {"'\\''", "'", NULL},
    {"'\"'", "\"", NULL},
    {"\"\\'\"", NULL, "1:1: unknown escape sequence U+0027 '''"},
    {"'\\\"'", NULL, "1:1: unknown escape sequence U+0022 '\"'"},
    {"\"\\101\\x42\\u0043\"", "ABC", NULL},
    {"\"\\u00e9\\U0001F600\"", "\xc3\xa9\xf0\x9f\x98\x80", NULL},
    {"\"\\377\"", "\xff", NULL},   /* a byte, as in Go */
    {"\"\\400\"", NULL, "1:1: escape sequence is an invalid Unicode code point"},
    {"\"\\ud800\"", NULL, "1:1: escape sequence is an invalid Unicode code point"},
    {"\"\\U00110000\"", NULL, "1:1: escape sequence is an invalid Unicode code point"},
    {"\"\\xZZ\"", NULL, "1:1: illegal character U+005A 'Z' in escape sequence"},
    {"\"\\18\"", NULL, "1:1: illegal character U+0038 '8' in escape sequence"},
    {"\"\\x4", NULL, "1:1: escape sequence not terminated"},
    {"\"\\", NULL, "1:1: escape sequence not terminated"},
    {"\"\\\n\"", NULL, "1:1: unknown escape sequence U+000A"},
    {"\"\\x00\"", NULL, "1:1: strings must not contain the NUL character"},
    {"\"abc", NULL, "1:1: unterminated quoted string"},
    {"'abc\n'", NULL, "1:1: unterminated quoted string"},
    {"`abc", NULL, "1:1: unterminated raw string"},
    {"`a\nb`", "a\nb", NULL},
    {"\"日本語\"", "日本語", NULL},
    {"''", "", NULL},
};

static void test_strings(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT_OF(STRINGS); i++) {
        const struct string_case *c = &STRINGS[i];
        if (!c->value) {
            parse_fails(c->input, c->error);
            continue;
        }
        pql_query q = parse_ok(c->input);
        assert_int_equal(q.root->kind, PQL_STRING);
        assert_int_equal(q.type, PQL_TYPE_STRING);
        if (strcmp(q.root->string, c->value) != 0)
            fail_msg("%s: value \"%s\", want \"%s\"", c->input, q.root->string, c->value);
        pql_query_free(&q);
    }
}

/* Positions count lines and bytes, and raw strings may span lines. */
static void test_positions(void **state)
{
    (void)state;
    parse_fails("foo +\n  bar{a=b}", "2:9: unexpected identifier \"b\" in label matching, "
                                     "expected string");
    parse_fails("`a\nb` + `c\n\nd` + {", "4:7: unexpected end of input inside braces");
    parse_fails("sum(foo) # sum\n  by (a) x", "2:10: unexpected identifier \"x\"");

    pql_query q = parse_ok("foo\n + 2 * bar");
    assert_int_equal(q.root->kind, PQL_BINARY);
    assert_int_equal(q.root->line, 1);
    assert_int_equal(q.root->col, 1);
    const pql_expr *mul = q.root->bin.rhs;
    assert_int_equal(mul->line, 2);
    assert_int_equal(mul->col, 4);
    assert_int_equal(mul->bin.rhs->line, 2);
    assert_int_equal(mul->bin.rhs->col, 8);
    pql_query_free(&q);
}

/* ---- numbers ----------------------------------------------------------------------------- */

struct number_case {
    const char *input;
    double value;
};

static const struct number_case NUMBERS[] = {
    {"1", 1},        {"4.23", 4.23},  {".3", 0.3},    {"5.", 5},       {"0x1F", 31},
    {"0X1f", 31},    {"1e3", 1000},   {"1E-3", 0.001}, {"2.5e+2", 250}, {"-1", -1},
    {"- 2.5", -2.5}, {"+3", 3},       {"--4", 4},      {"0", 0},
};

static void test_numbers(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT_OF(NUMBERS); i++) {
        pql_query q = parse_ok(NUMBERS[i].input);
        assert_int_equal(q.root->kind, PQL_NUMBER);
        assert_int_equal(q.type, PQL_TYPE_SCALAR);
        if (q.root->number != NUMBERS[i].value)
            fail_msg("%s: %g, want %g", NUMBERS[i].input, q.root->number, NUMBERS[i].value);
        pql_query_free(&q);
    }
    const char *infs[] = {"Inf", "iNf", "+Inf", "INF"};
    for (size_t i = 0; i < COUNT_OF(infs); i++) {
        pql_query q = parse_ok(infs[i]);
        assert_true(isinf(q.root->number) && q.root->number > 0);
        pql_query_free(&q);
    }
    pql_query q = parse_ok("-Inf");
    assert_true(isinf(q.root->number) && q.root->number < 0);
    pql_query_free(&q);
    const char *nans[] = {"NaN", "nAN", "nan"};
    for (size_t i = 0; i < COUNT_OF(nans); i++) {
        q = parse_ok(nans[i]);
        assert_true(isnan(q.root->number));
        pql_query_free(&q);
    }
    /* NaN123 and Infoo are metric names, as in Prometheus's lexer */
    q = parse_ok("NaN123 + Infoo");
    assert_string_equal(q.root->bin.lhs->sel.name, "NaN123");
    assert_string_equal(q.root->bin.rhs->sel.name, "Infoo");
    pql_query_free(&q);
    parse_fails("0x", "1:1: bad number or duration syntax: \"0x\"");
    parse_fails("1e", "1:1: bad number or duration syntax: \"1e\"");
    parse_fails("0xfg", "1:1: bad number or duration syntax: \"0xfg\"");
    parse_fails("5m", "1:1: unexpected duration \"5m\"");
}

/* ---- the rest of the language, through the AST's text form ----------------------------- */

struct ast_case {
    const char *input;
    pql_value_type type;
    const char *ast;
};

static const struct ast_case ASTS[] = {
    /* Grafana's health check */
    {"1+1", PQL_TYPE_SCALAR, "binary +\n  number 1\n  number 1\n"},
    /* precedence and associativity */
    {"1 + 2 * 3", PQL_TYPE_SCALAR,
     "binary +\n  number 1\n  binary *\n    number 2\n    number 3\n"},
    {"1 - 2 - 3", PQL_TYPE_SCALAR,
     "binary -\n  binary -\n    number 1\n    number 2\n  number 3\n"},
    {"8 / 4 / 2", PQL_TYPE_SCALAR,
     "binary /\n  binary /\n    number 8\n    number 4\n  number 2\n"},
    {"2 * 3 + 4", PQL_TYPE_SCALAR,
     "binary +\n  binary *\n    number 2\n    number 3\n  number 4\n"},
    {"(1 + 2) * 3", PQL_TYPE_SCALAR,
     "binary *\n  paren\n    binary +\n      number 1\n      number 2\n  number 3\n"},
    {"1 + 2 > bool 3 * 4", PQL_TYPE_SCALAR,
     "binary > bool\n  binary +\n    number 1\n    number 2\n  binary *\n    number 3\n"
     "    number 4\n"},
    {"-foo * 2", PQL_TYPE_VECTOR,
     "binary *\n  unary_minus\n    vector_selector {__name__=\"foo\"}\n  number 2\n"},
    {"-(1)", PQL_TYPE_SCALAR, "unary_minus\n  paren\n    number 1\n"},
    {"1 - -1", PQL_TYPE_SCALAR, "binary -\n  number 1\n  number -1\n"},
    {"+foo", PQL_TYPE_VECTOR, "vector_selector {__name__=\"foo\"}\n"},
    /* comparisons */
    {"foo > 2", PQL_TYPE_VECTOR, "binary >\n  vector_selector {__name__=\"foo\"}\n  number 2\n"},
    {"1 >= bool 2", PQL_TYPE_SCALAR, "binary >= bool\n  number 1\n  number 2\n"},
    {"foo == bool bar", PQL_TYPE_VECTOR,
     "binary == bool\n  vector_selector {__name__=\"foo\"}\n  vector_selector {__name__=\"bar\"}\n"},
    {"foo != 1 < 2", PQL_TYPE_VECTOR,
     "binary <\n  binary !=\n    vector_selector {__name__=\"foo\"}\n    number 1\n  number 2\n"},
    {"foo <= 0.5", PQL_TYPE_VECTOR,
     "binary <=\n  vector_selector {__name__=\"foo\"}\n  number 0.5\n"},
    /* vector matching */
    {"foo + on(a, b) bar", PQL_TYPE_VECTOR,
     "binary + on (a, b)\n  vector_selector {__name__=\"foo\"}\n"
     "  vector_selector {__name__=\"bar\"}\n"},
    {"foo / ignoring(job) bar", PQL_TYPE_VECTOR,
     "binary / ignoring (job)\n  vector_selector {__name__=\"foo\"}\n"
     "  vector_selector {__name__=\"bar\"}\n"},
    {"foo > bool on(x) bar", PQL_TYPE_VECTOR,
     "binary > bool on (x)\n  vector_selector {__name__=\"foo\"}\n"
     "  vector_selector {__name__=\"bar\"}\n"},
    {"foo * on() bar", PQL_TYPE_VECTOR,
     "binary * on ()\n  vector_selector {__name__=\"foo\"}\n  vector_selector {__name__=\"bar\"}\n"},
    /* aggregations: modifier before or after, keywords case-insensitive */
    {"sum by (job) (foo)", PQL_TYPE_VECTOR,
     "aggregate sum by (job)\n  vector_selector {__name__=\"foo\"}\n"},
    {"sum(foo) by (job)", PQL_TYPE_VECTOR,
     "aggregate sum by (job)\n  vector_selector {__name__=\"foo\"}\n"},
    {"SUM(foo) BY (job, instance,)", PQL_TYPE_VECTOR,
     "aggregate sum by (job, instance)\n  vector_selector {__name__=\"foo\"}\n"},
    {"avg without (a) (foo)", PQL_TYPE_VECTOR,
     "aggregate avg without (a)\n  vector_selector {__name__=\"foo\"}\n"},
    {"min(foo) without ()", PQL_TYPE_VECTOR,
     "aggregate min without ()\n  vector_selector {__name__=\"foo\"}\n"},
    {"max(foo)", PQL_TYPE_VECTOR, "aggregate max\n  vector_selector {__name__=\"foo\"}\n"},
    {"count by (on, by, sum) (foo)", PQL_TYPE_VECTOR,
     "aggregate count by (on, by, sum)\n  vector_selector {__name__=\"foo\"}\n"},
    {"sum by (\"a.b\") (foo)", PQL_TYPE_VECTOR,
     "aggregate sum by (\"a.b\")\n  vector_selector {__name__=\"foo\"}\n"},
    {"topk(3, foo)", PQL_TYPE_VECTOR,
     "aggregate topk\n  number 3\n  vector_selector {__name__=\"foo\"}\n"},
    {"bottomk by (a) (2 + 1, foo)", PQL_TYPE_VECTOR,
     "aggregate bottomk by (a)\n  binary +\n    number 2\n    number 1\n"
     "  vector_selector {__name__=\"foo\"}\n"},
    {"sum(sum(foo) by (a))", PQL_TYPE_VECTOR,
     "aggregate sum\n  aggregate sum by (a)\n    vector_selector {__name__=\"foo\"}\n"},
    /* calls */
    {"rate(foo[5m])", PQL_TYPE_VECTOR, "call rate\n  matrix_selector {__name__=\"foo\"} [5m]\n"},
    {"increase(foo[1h30m])", PQL_TYPE_VECTOR,
     "call increase\n  matrix_selector {__name__=\"foo\"} [1h30m]\n"},
    {"sum_over_time(foo[1m] offset 1m)", PQL_TYPE_VECTOR,
     "call sum_over_time\n  matrix_selector {__name__=\"foo\"} [1m] offset 1m\n"},
    {"avg_over_time(foo[1m],)", PQL_TYPE_VECTOR,
     "call avg_over_time\n  matrix_selector {__name__=\"foo\"} [1m]\n"},
    {"max_over_time (foo[2m])", PQL_TYPE_VECTOR,
     "call max_over_time\n  matrix_selector {__name__=\"foo\"} [2m]\n"},
    {"min_over_time(foo[10s])", PQL_TYPE_VECTOR,
     "call min_over_time\n  matrix_selector {__name__=\"foo\"} [10s]\n"},
    {"count_over_time(foo[1d])", PQL_TYPE_VECTOR,
     "call count_over_time\n  matrix_selector {__name__=\"foo\"} [1d]\n"},
    /* selectors in full, with a stack filter */
    {"process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta{job=~\"api\", __function__=~\"json.*\"} "
     "offset 5m",
     PQL_TYPE_VECTOR,
     "vector_selector {__name__=\"process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta\", "
     "job=~\"api\"} filters {__function__=~\"json.*\"} offset 5m\n"},
    {"foo[5m] offset -1h", PQL_TYPE_MATRIX,
     "matrix_selector {__name__=\"foo\"} [5m] offset -1h\n"},
    {"{\"a.b\"=\"x\\ny\", 'c'!~'\\\\d+'}", PQL_TYPE_VECTOR,
     "vector_selector {\"a.b\"=\"x\\ny\", c!~\"\\\\d+\"}\n"},
    {"sum by (job) (rate(process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta{__function__=~"
     "\"json.*\"}[5m])) / on (job) sum by (job) (rate(process_cpu:cpu:nanoseconds:cpu:"
     "nanoseconds:delta[5m]))",
     PQL_TYPE_VECTOR,
     "binary / on (job)\n"
     "  aggregate sum by (job)\n"
     "    call rate\n"
     "      matrix_selector {__name__=\"process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta\"} "
     "filters {__function__=~\"json.*\"} [5m]\n"
     "  aggregate sum by (job)\n"
     "    call rate\n"
     "      matrix_selector {__name__=\"process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta\"} "
     "[5m]\n"},
    /* comments */
    {"# the answer\n42 # is\n# this", PQL_TYPE_SCALAR, "number 42\n"},
    /* strings and special numbers */
    {"\"a\\tb\"", PQL_TYPE_STRING, "string \"a\\tb\"\n"},
    {"NaN + -Inf + 1e300", PQL_TYPE_SCALAR,
     "binary +\n  binary +\n    number NaN\n    number -Inf\n  number 1e+300\n"},
    {"0.1 + 100000", PQL_TYPE_SCALAR, "binary +\n  number 0.1\n  number 100000\n"},
};

static void test_asts(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT_OF(ASTS); i++) {
        const struct ast_case *c = &ASTS[i];
        pql_query q = parse_ok(c->input);
        char *ast = pql_format_ast(&q);
        assert_non_null(ast);
        if (strcmp(ast, c->ast) != 0)
            fail_msg("%s:\n--- got\n%s--- want\n%s", c->input, ast, c->ast);
        if (q.type != c->type)
            fail_msg("%s: type %s, want %s", c->input, pql_type_name(q.type),
                     pql_type_name(c->type));
        free(ast);
        pql_query_free(&q);
    }
}

/* on() with no labels next to a scalar is dropped, as Prometheus drops it;
 * with labels it is an error (see ERRORS). */
static void test_vector_matching_scalar(void **state)
{
    (void)state;
    pql_query q = parse_ok("foo * on() 2");
    assert_false(q.root->bin.on);
    assert_false(q.root->bin.ignoring);
    pql_query_free(&q);
    q = parse_ok("foo + ignoring(a, b) bar");
    assert_true(q.root->bin.ignoring);
    assert_false(q.root->bin.on);
    assert_int_equal(q.root->bin.n_labels, 2);
    assert_string_equal(q.root->bin.labels[0], "a");
    assert_string_equal(q.root->bin.labels[1], "b");
    pql_query_free(&q);
}

static void test_aggregate_fields(void **state)
{
    (void)state;
    pql_query q = parse_ok("topk without (a) (5, foo)");
    const pql_expr *e = q.root;
    assert_int_equal(e->kind, PQL_AGGREGATE);
    assert_int_equal(e->agg.op, PQL_AGG_TOPK);
    assert_true(e->agg.without);
    assert_int_equal(e->agg.n_labels, 1);
    assert_string_equal(e->agg.labels[0], "a");
    assert_int_equal(e->agg.param->kind, PQL_NUMBER);
    assert_true(e->agg.param->number == 5);
    assert_int_equal(e->agg.expr->kind, PQL_VECTOR_SELECTOR);
    pql_query_free(&q);

    q = parse_ok("sum(foo)");
    assert_null(q.root->agg.param);
    assert_false(q.root->agg.without);
    assert_int_equal(q.root->agg.n_labels, 0);
    pql_query_free(&q);

    q = parse_ok("rate(foo[5m])");
    assert_int_equal(q.root->kind, PQL_CALL);
    assert_int_equal(q.root->call.fn, PQL_FN_RATE);
    assert_int_equal(q.root->call.n_args, 1);
    assert_int_equal(q.root->call.args[0]->kind, PQL_MATRIX_SELECTOR);
    assert_int_equal(q.root->call.args[0]->col, 6);
    pql_query_free(&q);
}

static void test_function_filters(void **state)
{
    (void)state;
    pql_query q = parse_ok("foo{__function__=~\"json.*\", job=\"a\", __function__!=\"main\"}");
    const pql_expr *e = q.root;
    assert_int_equal(e->sel.n_matchers, 2);
    assert_string_equal(e->sel.matchers[0].name, "__name__");
    assert_string_equal(e->sel.matchers[1].name, "job");
    assert_int_equal(e->sel.n_filters, 2);
    assert_string_equal(e->sel.filters[0].name, PQL_FUNCTION_LABEL);
    assert_int_equal(e->sel.filters[0].type, RE);
    assert_string_equal(e->sel.filters[0].value, "json.*");
    assert_true(firn_matcher_matches(&e->sel.filters[0], "json.Marshal"));
    assert_false(firn_matcher_matches(&e->sel.filters[0], "xjson"));
    assert_int_equal(e->sel.filters[1].type, NE);
    pql_query_free(&q);

    /* A filter counts toward "at least one non-empty matcher". */
    q = parse_ok("{__function__=~\"json.*\"}");
    assert_int_equal(q.root->sel.n_matchers, 0);
    assert_int_equal(q.root->sel.n_filters, 1);
    pql_query_free(&q);
    parse_fails("{__function__=~\".*\"}",
                "1:1: vector selector must contain at least one non-empty matcher");
}

static const struct error_case ERRORS[] = {
    /* empty input */
    {"", "1:1: unexpected end of input"},
    {"  # only a comment\n", "2:1: unexpected end of input"},
    /* aggregations */
    {"sum(foo, bar)", "1:1: wrong number of arguments for aggregate expression provided, "
                      "expected 1, got 2"},
    {"sum()", "1:1: no arguments for aggregate expression provided"},
    {"topk(foo)", "1:1: wrong number of arguments for aggregate expression provided, "
                  "expected 2, got 1"},
    {"sum(foo[5m])", "1:5: expected type instant vector in aggregation expression, "
                     "got range vector"},
    {"sum(1)", "1:5: expected type instant vector in aggregation expression, got scalar"},
    {"topk(foo, bar)", "1:6: expected type scalar in aggregation parameter, got instant vector"},
    {"sum by (a) (foo) by (b)", "1:18: unexpected identifier \"by\""},
    {"sum by (a:b) (foo)", "1:9: unexpected identifier \"a:b\" in grouping opts, expected label"},
    {"sum by a (foo)", "1:8: unexpected identifier \"a\" in grouping opts, expected \"(\""},
    {"sum by (a b) (foo)", "1:11: unexpected identifier \"b\" in grouping opts, expected \",\" "
                           "or \")\""},
    {"sum(foo", "1:8: unexpected end of input in aggregation, expected \",\" or \")\""},
    /* calls */
    {"rate(foo)", "1:6: expected type range vector in call to function \"rate\", "
                  "got instant vector"},
    {"increase(1)", "1:10: expected type range vector in call to function \"increase\", "
                    "got scalar"},
    {"rate(foo[5m], bar[5m])", "1:1: expected 1 argument(s) in call to \"rate\", got 2"},
    {"rate()", "1:1: expected 1 argument(s) in call to \"rate\", got 0"},
    /* vector() and time(): texts as promtool 2.42 prints them */
    {"vector(1, 2)", "1:1: expected 1 argument(s) in call to \"vector\", got 2"},
    {"vector()", "1:1: expected 1 argument(s) in call to \"vector\", got 0"},
    {"time(1)", "1:1: expected 0 argument(s) in call to \"time\", got 1"},
    {"vector(foo)", "1:8: expected type scalar in call to function \"vector\", "
                    "got instant vector"},
    {"time() > 1", "1:8: comparisons between scalars must use BOOL modifier"},
    {"foo(bar)", "1:1: unknown function with name \"foo\""},
    {"histogram_quantile(0.9, foo)", "1:1: unknown function with name \"histogram_quantile\""},
    {"RATE(foo[5m])", "1:1: unknown function with name \"RATE\""},
    {"sum(x) + foo:bar(x)", "1:10: unknown function with name \"foo:bar\""},
    /* operators and types */
    {"1 > 2", "1:3: comparisons between scalars must use BOOL modifier"},
    {"(1) == (2)", "1:5: comparisons between scalars must use BOOL modifier"},
    {"foo + bool bar", "1:5: bool modifier can only be used on comparison operators"},
    {"foo + on(a) 1", "1:1: vector matching only allowed between instant vectors"},
    {"foo * ON(a,) 2", "1:1: vector matching only allowed between instant vectors"},
    {"foo[5m] + 1", "1:1: binary expression must contain only scalar and instant vector types"},
    {"\"a\" + 1", "1:1: binary expression must contain only scalar and instant vector types"},
    {"-foo[5m]", "1:1: unary expression only allowed on expressions of type scalar or "
                 "instant vector"},
    {"-\"a\"", "1:1: unary expression only allowed on expressions of type scalar or "
               "instant vector"},
    {"+\"a\"", "1:2: unary expression only allowed on expressions of type scalar or "
               "instant vector"},
    {"foo + on(a) group_left bar", "1:13: group_left and group_right modifiers are not "
                                   "supported"},
    {"foo > on(a) bool bar", "1:13: unexpected identifier \"bool\""},
    {"foo and bar", "1:5: operator \"and\" is not supported"},
    {"foo OR bar", "1:5: operator \"OR\" is not supported"},
    {"foo unless bar", "1:5: operator \"unless\" is not supported"},
    {"2 ^ 3", "1:3: operator \"^\" is not supported"},
    {"2 % 3", "1:3: operator \"%\" is not supported"},
    {"foo = bar", "1:5: unexpected \"=\""},
    {"foo bar", "1:5: unexpected identifier \"bar\""},
    {"5 # 1+1\n5", "2:1: unexpected number \"5\""},
    {"foo +", "1:6: unexpected end of input"},
    {"on(a)", "1:1: unknown function with name \"on\""},
    {"bool", "1:1: unexpected identifier \"bool\""},
    {"(foo", "1:5: unexpected end of input in paren expression, expected \")\""},
    /* offsets */
    {"foo offset 5m offset 1m", "1:15: offset may not be set multiple times"},
    {"sum(foo) offset 5m", "1:10: offset modifier must be preceded by an instant vector "
                           "selector or range vector selector or a subquery"},
    {"(foo) offset 5m", "1:7: offset modifier must be preceded by an instant vector selector "
                        "or range vector selector or a subquery"},
    {"foo offset", "1:11: unexpected end of input in offset, expected number or duration"},
    {"foo[5m][5m]", "1:8: subqueries are not supported"},
    {"foo[1h", "1:7: unexpected end of input in range selector, expected \"]\""},
    {"rate(foo[5m])[5m]", "1:14: ranges only allowed for vector selectors"},
    {"foo[99999999999999999999y]", "1:5: duration out of range: \"99999999999999999999y\""},
    {"foo offset 1e300", "1:12: duration out of range"},
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT_OF(ERRORS); i++)
        parse_fails(ERRORS[i].input, ERRORS[i].error);
}

/* ---- limits ----------------------------------------------------------------------------- */

static char *repeat(const char *prefix, const char *unit, size_t n, const char *suffix_unit,
                    size_t n_suffix)
{
    size_t len = strlen(prefix) + strlen(unit) * n + strlen(suffix_unit) * n_suffix + 1;
    char *s = malloc(len), *p = s;
    assert_non_null(s);
    p += sprintf(p, "%s", prefix);
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s", unit);
    for (size_t i = 0; i < n_suffix; i++)
        p += sprintf(p, "%s", suffix_unit);
    return s;
}

static void test_nesting_limits(void **state)
{
    (void)state;
    /* 100k "(" without a stack overflow */
    char *s = repeat("", "(", 60000, "", 0);
    parse_fails(s, NULL);
    free(s);
    s = repeat("", "-", 60000, "1", 1);
    parse_fails(s, NULL);
    free(s);
    s = repeat("", "sum(", 10000, ")", 10000);
    parse_fails(s, NULL);
    free(s);

    /* balanced: fine below the limit, refused above it */
    s = repeat("", "(", 150, "", 0);
    char *t = repeat(s, "1", 1, ")", 150);
    pql_query q = parse_ok(t);
    pql_query_free(&q);
    free(s);
    free(t);
    s = repeat("", "(", PQL_DEPTH_MAX + 5, "", 0);
    t = repeat(s, "foo", 1, ")", PQL_DEPTH_MAX + 5);
    parse_fails(t, NULL);
    assert_true(strstr(t, "foo") != NULL);
    free(s);
    free(t);

    /* a long chain of operators is a tall tree too */
    s = repeat("1", "+1", 100, "", 0);
    q = parse_ok(s);
    pql_query_free(&q);
    free(s);
    s = repeat("foo", " + foo", 1000, "", 0);
    parse_fails(s, NULL);
    free(s);
    firn_err err = {0};
    s = repeat("1", "*1", PQL_DEPTH_MAX + 1, "", 0);
    assert_int_equal(pql_parse(s, &q, &err), FIRN_EINVAL);
    assert_non_null(strstr(err.msg, "nested too deeply"));
    free(s);
}

static void test_size_limit(void **state)
{
    (void)state;
    /* a comment up to the limit is fine; one byte more is refused */
    char *s = malloc(PQL_QUERY_MAX + 2);
    assert_non_null(s);
    memset(s, ' ', PQL_QUERY_MAX + 1);
    s[0] = '1';
    s[1] = '#';
    s[PQL_QUERY_MAX] = '\0';
    pql_query q = parse_ok(s);
    pql_query_free(&q);
    s[PQL_QUERY_MAX] = ' ';
    s[PQL_QUERY_MAX + 1] = '\0';
    firn_err err = {0};
    assert_int_equal(pql_parse(s, &q, &err), FIRN_ETOOBIG);
    assert_int_equal(err.code, FIRN_ETOOBIG);
    assert_null(q.root);
    free(s);
    assert_int_equal(pql_parse(NULL, &q, &err), FIRN_EINVAL);
}

/* Many selectors, then an error: their matchers are freed (ASan checks). */
static void test_no_leak_on_error(void **state)
{
    (void)state;
    parse_fails("sum(rate(a{x=~\"a.*\"}[5m])) + b{y=~\"b+\", __function__=~\"f\"} + {z=\"\"}",
                "1:62: vector selector must contain at least one non-empty matcher");
    parse_fails("a{x=~\"a.*\"} + b{y=~\"(\"}", NULL);
    parse_fails("a{x=~\"a.*\"} + rate(b{y=~\"b\"})", NULL);
    parse_fails("a{x=~\"a.*\"} > 1 > ", NULL);
}

/* ---- names ------------------------------------------------------------------------------ */

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(pql_agg_name(PQL_AGG_SUM), "sum");
    assert_string_equal(pql_agg_name(PQL_AGG_BOTTOMK), "bottomk");
    assert_string_equal(pql_func_name(PQL_FN_RATE), "rate");
    assert_string_equal(pql_func_name(PQL_FN_COUNT_OVER_TIME), "count_over_time");
    assert_string_equal(pql_binop_name(PQL_OP_ADD), "+");
    assert_string_equal(pql_binop_name(PQL_OP_LE), "<=");
    assert_string_equal(pql_type_name(PQL_TYPE_SCALAR), "scalar");
    assert_string_equal(pql_type_name(PQL_TYPE_VECTOR), "vector");
    assert_string_equal(pql_type_name(PQL_TYPE_MATRIX), "matrix");
    assert_string_equal(pql_type_name(PQL_TYPE_STRING), "string");
    pql_query q = {0};
    pql_query_free(&q);   /* a zeroed query frees to nothing */
    pql_query_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selectors),
        cmocka_unit_test(test_selector_errors),
        cmocka_unit_test(test_invalid_regex_names_position),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_asts),
        cmocka_unit_test(test_vector_matching_scalar),
        cmocka_unit_test(test_aggregate_fields),
        cmocka_unit_test(test_function_filters),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_nesting_limits),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_no_leak_on_error),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
