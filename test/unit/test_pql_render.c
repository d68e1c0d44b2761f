/* test_pql_render.c -- the profile renderers (promql-like/render.c) against
 * their contract in promql-like/render.h: collapsed stacks, the flame graph
 * JSON, the SVG flame graph and the top table.
 *
 * Trees are built by hand (names with every special character, diffs,
 * trees deeper than any recursion would survive) or by pql_profile_tree
 * over a store in a mkdtemp directory (the node limit's "other").  The SVG
 * is checked for well-formedness by a small XML scanner below (tags
 * balanced, attribute values quoted, only the five predefined entities and
 * character references, no control characters).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixtures.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pprof/pprof.h"
#include "promql-like/pql.h"
#include "tsdb/tsdb.h"
#include "promql-like/render.h"

#define N(a) (sizeof(a) / sizeof *(a))
#define NONE UINT32_MAX

/* ---- hand-built trees ------------------------------------------------------- */

static pql_node node(const char *name, uint32_t fn, int64_t self, int64_t cum, pql_node *kids,
                     size_t n)
{
    return (pql_node){.function = fn, .name = name, .self = self, .cum = cum, .children = kids,
                      .n_children = n};
}

static pql_function_info FUNCS[] = {
    {"main.main", "main.main", "/src/main.go", 10, "/bin/app"},
    {"main.work", "main.work", "/src/work.go", 20, "/bin/app"},
    {"main.idle", "main.idle", "/src/idle.go", 30, ""},
};

/* total 10 = main.main (self 2) -> {main.work 5, main.idle 3} */
struct small {
    pql_node kids[2], main_kids[1];
    pql_tree t;
};

static void small_tree(struct small *s)
{
    s->kids[0] = node("main.work", 1, 5, 5, NULL, 0);
    s->kids[1] = node("main.idle", 2, 3, 3, NULL, 0);
    s->main_kids[0] = node("main.main", 0, 2, 10, s->kids, 2);
    s->t = (pql_tree){.root = node("total", NONE, 0, 10, s->main_kids, 1),
                      .functions = FUNCS, .n_functions = N(FUNCS),
                      .profile_type = "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta",
                      .sample_type = "cpu", .sample_unit = "nanoseconds", .total = 10};
}

static char *render_collapsed(const pql_tree *t)
{
    firn_buf b = {0};
    assert_int_equal(pql_render_collapsed(&b, t), 0);
    char *s = firn_buf_take(&b, NULL);
    assert_non_null(s);
    return s;
}

static json_t *render_json(const pql_tree *t)
{
    firn_buf b = {0};
    assert_int_equal(pql_render_flamegraph(&b, t), 0);
    json_error_t jerr;
    json_t *j = json_loadb(b.data, b.len, 0, &jerr);
    if (!j)
        fail_msg("not JSON (%s at %d): %.300s", jerr.text, jerr.position, b.data);
    firn_buf_free(&b);
    return j;
}

static char *render_svg(const pql_tree *t, const pql_svg_options *o)
{
    firn_buf b = {0};
    assert_int_equal(pql_render_svg(&b, t, o), 0);
    char *s = firn_buf_take(&b, NULL);
    assert_non_null(s);
    return s;
}

/* ---- a small XML well-formedness check ---------------------------------------- */

/* NULL when s is well-formed (for what the renderer writes: one root,
 * balanced tags, quoted attributes, CDATA sections, the XML declaration),
 * else what is wrong and where. */
static const char *xml_problem(const char *s, char *why, size_t size)
{
    const char *stack[4096];
    size_t depth_of[4096];
    size_t depth = 0, roots = 0;
    const char *p = s;
#define BAD(...) (snprintf(why, size, __VA_ARGS__), why)
    while (*p) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 && c != '\n' && c != '\t' && c != '\r')
            return BAD("control character 0x%02x at %td", c, p - s);
        if (c == '&') {
            static const char *const ents[] = {"&lt;", "&gt;", "&amp;", "&quot;", "&apos;"};
            size_t k = 0;
            while (k < N(ents) && strncmp(p, ents[k], strlen(ents[k])) != 0)
                k++;
            if (k == N(ents) && !(p[1] == '#' && strchr(p, ';')))
                return BAD("bare '&' at %td: %.20s", p - s, p);
            p++;
            continue;
        }
        if (c == '>' && depth == 0)
            return BAD("'>' outside the root at %td", p - s);
        if (c != '<') {
            if (depth == 0 && c != '\n' && c != ' ')
                return BAD("text outside the root at %td", p - s);
            p++;
            continue;
        }
        if (strncmp(p, "<?", 2) == 0) {
            const char *e = strstr(p, "?>");
            if (!e || p != s)
                return BAD("bad declaration at %td", p - s);
            p = e + 2;
        } else if (strncmp(p, "<![CDATA[", 9) == 0) {
            const char *e = strstr(p, "]]>");
            if (!e || depth == 0)
                return BAD("bad CDATA at %td", p - s);
            p = e + 3;
        } else if (p[1] == '/') {
            size_t n = strcspn(p + 2, ">");
            if (!depth || depth_of[depth - 1] != n || strncmp(stack[depth - 1], p + 2, n) != 0)
                return BAD("unbalanced </%.*s> at %td", (int)n, p + 2, p - s);
            depth--;
            p += 2 + n + 1;
        } else {
            const char *name = p + 1;
            size_t n = strcspn(name, " \t\n/>");
            if (n == 0)
                return BAD("'<' without a tag name at %td", p - s);
            const char *q = name + n;
            for (;;) {   /* attributes: name="value" with no '<' inside */
                while (*q == ' ' || *q == '\n' || *q == '\t')
                    q++;
                if (*q == '>' || strncmp(q, "/>", 2) == 0)
                    break;
                size_t an = strcspn(q, "= >");
                if (!an || q[an] != '=' || q[an + 1] != '"')
                    return BAD("bad attribute at %td: %.30s", q - s, q);
                const char *v = q + an + 2, *e = strchr(v, '"');
                if (!e || memchr(v, '<', (size_t)(e - v)))
                    return BAD("bad attribute value at %td", v - s);
                q = e + 1;
            }
            if (depth == 0 && roots++)
                return BAD("a second root at %td", p - s);
            if (*q == '>') {
                if (depth == N(stack))
                    return BAD("too deep");
                stack[depth] = name;
                depth_of[depth++] = n;
                p = q + 1;
            } else {
                p = q + 2;
            }
        }
    }
    if (depth)
        return BAD("<%.*s> not closed", (int)depth_of[depth - 1], stack[depth - 1]);
    if (!roots)
        return BAD("no root element");
    return NULL;
#undef BAD
}

static void assert_xml(const char *svg)
{
    char why[200];
    const char *problem = xml_problem(svg, why, sizeof why);
    if (problem)
        fail_msg("SVG is not well-formed: %s", problem);
}

/* Occurrences of needle in s (not with strstr: under ASan each call reads
 * all of s, and the deep tree's output is megabytes). */
static size_t count(const char *s, const char *needle)
{
    size_t n = 0, len = strlen(needle);
    for (const char *p = strchr(s, needle[0]); p; p = strchr(p + 1, needle[0]))
        n += strncmp(p, needle, len) == 0;
    return n;
}

/* ---- collapsed -------------------------------------------------------------------- */

static void test_collapsed(void **state)
{
    (void)state;
    struct small s;
    small_tree(&s);
    char *out = render_collapsed(&s.t);
    assert_string_equal(out, "main.main 2\nmain.main;main.work 5\nmain.main;main.idle 3\n");
    free(out);
}

static void test_collapsed_separators_in_names(void **state)
{
    (void)state;
    struct small s;
    small_tree(&s);
    s.kids[0].name = "a;b";
    s.kids[1].name = "line\none\rtwo";
    char *out = render_collapsed(&s.t);
    assert_string_equal(out, "main.main 2\nmain.main;a:b 5\nmain.main;line one two 3\n");
    free(out);
}

static void test_collapsed_diff(void **state)
{
    (void)state;
    struct small s;
    small_tree(&s);
    s.t.diff = true;
    s.kids[0].compare_self = s.kids[0].compare_cum = 7;
    /* a node present only on the compare side still gets its line */
    s.kids[1].self = s.kids[1].cum = 0;
    s.kids[1].compare_self = s.kids[1].compare_cum = 1;
    char *out = render_collapsed(&s.t);
    assert_string_equal(out, "main.main 2 0\nmain.main;main.work 5 7\nmain.main;main.idle 0 1\n");
    free(out);
}

static void test_collapsed_empty(void **state)
{
    (void)state;
    pql_tree t = {.root = node("total", NONE, 0, 0, NULL, 0), .sample_unit = ""};
    char *out = render_collapsed(&t);
    assert_string_equal(out, "");
    free(out);
}

/* ---- flame graph JSON ---------------------------------------------------------------- */

static void test_flamegraph_json(void **state)
{
    (void)state;
    struct small s;
    small_tree(&s);
    json_t *j = render_json(&s.t);
    assert_string_equal(json_string_value(json_object_get(j, "profile_type")),
                        "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta");
    assert_string_equal(json_string_value(json_object_get(j, "sample_unit")), "nanoseconds");
    assert_true(json_is_false(json_object_get(j, "diff")));
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 10);
    assert_null(json_object_get(j, "compare_total"));
    json_t *root = json_object_get(j, "root");
    assert_string_equal(json_string_value(json_object_get(root, "name")), "total");
    assert_int_equal(json_integer_value(json_object_get(root, "value")), 10);
    assert_null(json_object_get(root, "function"));
    json_t *m = json_array_get(json_object_get(root, "children"), 0);
    assert_string_equal(json_string_value(json_object_get(m, "name")), "main.main");
    assert_int_equal(json_integer_value(json_object_get(m, "value")), 10);
    assert_int_equal(json_integer_value(json_object_get(m, "self")), 2);
    json_t *kids = json_object_get(m, "children");
    assert_int_equal(json_array_size(kids), 2);
    json_t *idle = json_array_get(kids, 1);
    assert_string_equal(json_string_value(json_object_get(idle, "name")), "main.idle");
    assert_int_equal(json_integer_value(json_object_get(idle, "value")), 3);
    assert_int_equal(json_array_size(json_object_get(idle, "children")), 0);
    json_int_t fn = json_integer_value(json_object_get(idle, "function"));
    json_t *f = json_array_get(json_object_get(j, "functions"), (size_t)fn);
    assert_string_equal(json_string_value(json_object_get(f, "name")), "main.idle");
    assert_string_equal(json_string_value(json_object_get(f, "filename")), "/src/idle.go");
    assert_int_equal(json_integer_value(json_object_get(f, "start_line")), 30);
    assert_string_equal(json_string_value(json_object_get(f, "mapping")), "");
    assert_null(json_object_get(m, "compare_value"));
    json_decref(j);
}

static void test_flamegraph_json_escaping(void **state)
{
    (void)state;
    struct small s;
    small_tree(&s);
    s.kids[0].name = "a<b>&\"c\\d\n";
    s.kids[1].name = "bad\xff utf8 \xe2\x82";
    json_t *j = render_json(&s.t);
    json_t *kids = json_object_get(
        json_array_get(json_object_get(json_object_get(j, "root"), "children"), 0), "children");
    assert_string_equal(json_string_value(json_object_get(json_array_get(kids, 0), "name")),
                        "a<b>&\"c\\d\n");
    assert_string_equal(json_string_value(json_object_get(json_array_get(kids, 1), "name")),
                        "bad\xef\xbf\xbd utf8 \xef\xbf\xbd\xef\xbf\xbd");
    json_decref(j);
}

static void test_flamegraph_json_diff(void **state)
{
    (void)state;
    struct small s;
    small_tree(&s);
    s.t.diff = true;
    s.t.compare_total = 12;
    s.t.root.compare_cum = 12;
    s.main_kids[0].compare_cum = 12;
    s.kids[0].compare_self = s.kids[0].compare_cum = 12;
    json_t *j = render_json(&s.t);
    assert_true(json_is_true(json_object_get(j, "diff")));
    assert_int_equal(json_integer_value(json_object_get(j, "compare_total")), 12);
    json_t *root = json_object_get(j, "root");
    assert_int_equal(json_integer_value(json_object_get(root, "compare_value")), 12);
    json_t *work = json_array_get(
        json_object_get(json_array_get(json_object_get(root, "children"), 0), "children"), 0);
    assert_int_equal(json_integer_value(json_object_get(work, "value")), 5);
    assert_int_equal(json_integer_value(json_object_get(work, "compare_value")), 12);
    assert_int_equal(json_integer_value(json_object_get(work, "compare_self")), 12);
    json_decref(j);
}

/* ---- deep trees: no recursion ------------------------------------------------------------ */

#define DEEP 50000

static void test_deep_tree(void **state)
{
    (void)state;
    pql_node *chain = calloc(DEEP, sizeof *chain);
    assert_non_null(chain);
    for (size_t i = 0; i < DEEP; i++)
        chain[i] = node("f", NONE, i + 1 == DEEP ? 1 : 0, 1, i + 1 < DEEP ? &chain[i + 1] : NULL,
                        i + 1 < DEEP);
    pql_tree t = {.root = node("total", NONE, 0, 1, chain, 1), .sample_type = "samples",
                  .sample_unit = "count", .profile_type = "", .total = 1};
    char *c = render_collapsed(&t);
    assert_int_equal(count(c, ";"), DEEP - 1);
    assert_int_equal(strlen(c), 2 * DEEP - 1 + strlen(" 1\n"));
    free(c);
    firn_buf b = {0};
    assert_int_equal(pql_render_flamegraph(&b, &t), 0);
    assert_int_equal(count(b.data, "{"), DEEP + 1 + 1);   /* nodes, and the object */
    assert_int_equal(count(b.data, "}"), DEEP + 1 + 1);
    assert_int_equal(count(b.data, "\"children\":[]}"), 1);
    firn_buf_free(&b);
    char *svg = render_svg(&t, NULL);
    assert_int_equal(count(svg, "<g><title>"), DEEP + 1);
    assert_xml(svg);
    free(svg);
    free(chain);
}

/* ---- SVG -------------------------------------------------------------------------------- */

static void test_svg(void **state)
{
    (void)state;
    struct small s;
    small_tree(&s);
    pql_svg_options o = {.title = "CPU", .width = 1000};
    char *svg = render_svg(&s.t, &o);
    assert_xml(svg);
    assert_non_null(strstr(svg, "<svg version=\"1.1\" width=\"1000\""));
    assert_non_null(strstr(svg, ">CPU</text>"));
    /* one frame per node, the root full width (980 = 1000 minus margins) */
    assert_int_equal(count(svg, "<g><title>"), 4);
    assert_non_null(strstr(svg, "<title>total\n"));
    assert_non_null(strstr(svg, "x=\"10.00\" y=\"40\" width=\"980.00\""));
    /* main.work: half of the width, right of nothing */
    assert_non_null(strstr(svg, "x=\"10.00\" y=\"72\" width=\"490.00\""));
    assert_non_null(strstr(svg, "x=\"500.00\" y=\"72\" width=\"294.00\""));
    /* tooltips with the values in the sample unit */
    assert_non_null(strstr(svg, "<title>main.work\n5ns (50.00%), self 5ns</title>"));
    /* the script: zoom and search */
    assert_non_null(strstr(svg, "function zoom(g)"));
    assert_non_null(strstr(svg, "function search(term)"));
    assert_non_null(strstr(svg, "onload=\"init()\""));
    /* the same name, the same color */
    struct small s2;
    small_tree(&s2);
    s2.kids[1].name = "main.work";
    char *svg2 = render_svg(&s2.t, &o);
    const char *a = strstr(svg2, "<title>main.work\n"), *b = strstr(a + 1, "<title>main.work\n");
    assert_non_null(b);
    const char *fa = strstr(a, "fill="), *fb = strstr(b, "fill=");
    assert_memory_equal(fa, fb, (size_t)(strchr(fa + 6, '"') - fa));
    free(svg2);
    free(svg);
}

static void test_svg_escaping(void **state)
{
    (void)state;
    struct small s;
    small_tree(&s);
    s.kids[0].name = "op<T>&\"q\"'x'";
    s.kids[1].name = "ctl\x01\x1f bad\xff";
    pql_svg_options o = {.subtitle = "sel{job=\"a&b\"} <now>"};
    char *svg = render_svg(&s.t, &o);
    assert_xml(svg);
    assert_non_null(strstr(svg, "<title>op&lt;T&gt;&amp;&quot;q&quot;&apos;x&apos;\n"));
    assert_non_null(strstr(svg, ">op&lt;T&gt;&amp;&quot;q&quot;&apos;x&apos;</text>"));
    assert_non_null(strstr(svg, "<title>ctl?? bad\xef\xbf\xbd\n"));
    assert_non_null(strstr(svg, "sel{job=&quot;a&amp;b&quot;} &lt;now&gt;"));
    free(svg);
}

static void test_svg_long_names_trimmed(void **state)
{
    (void)state;
    struct small s;
    small_tree(&s);
    char longname[400];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    s.kids[1].name = longname;   /* 3/10 of 1180 px: room for ~50 characters */
    char *svg = render_svg(&s.t, NULL);
    const char *text = strstr(strstr(svg, "<title>xxx"), "<text");
    assert_non_null(text);
    const char *start = strchr(text, '>') + 1, *end = strstr(start, "</text>");
    assert_true(end - start > 20 && end - start < 60);
    assert_memory_equal(end - 2, "..", 2);
    free(svg);
}

static void test_svg_narrow_frames_left_out(void **state)
{
    (void)state;
    struct small s;
    small_tree(&s);
    /* main.idle is 1 in 10^9: far below a tenth of a pixel */
    s.t.root.cum = s.main_kids[0].cum = s.t.total = 1000000000;
    s.kids[0].cum = s.kids[0].self = 999999997;
    s.kids[1].cum = s.kids[1].self = 1;
    char *svg = render_svg(&s.t, NULL);
    assert_xml(svg);
    assert_null(strstr(svg, "main.idle"));
    assert_non_null(strstr(svg, "<title>main.work"));
    free(svg);
}

/* Every fill is rgb(R,G,B) with components in 0..255. */
static void assert_fills(const char *svg)
{
    for (const char *p = strstr(svg, "fill=\"rgb("); p; p = strstr(p + 1, "fill=\"rgb(")) {
        int c[3], n = 0;
        if (sscanf(p, "fill=\"rgb(%d,%d,%d)\"%n", &c[0], &c[1], &c[2], &n) != 3 || !n)
            fail_msg("bad fill: %.40s", p);
        for (int i = 0; i < 3; i++)
            if (c[i] < 0 || c[i] > 255)
                fail_msg("fill out of range: %.40s", p);
    }
}

static void test_svg_diff_colors(void **state)
{
    (void)state;
    struct small s;
    small_tree(&s);
    s.t.diff = true;
    s.t.compare_total = s.t.root.compare_cum = s.main_kids[0].compare_cum = 10;
    s.kids[0].compare_cum = s.kids[0].compare_self = 8;   /* grew from 5 */
    s.main_kids[0].compare_self = 2;                      /* idle shrank from 3 to 0 */
    char *svg = render_svg(&s.t, NULL);
    assert_xml(svg);
    assert_non_null(strstr(svg, ">Differential Flame Graph</text>"));
    const char *work = strstr(svg, "<title>main.work\nbase 5ns, compare 8ns (+60.00%)</title>");
    assert_non_null(work);
    assert_non_null(strstr(work, "fill=\"rgb(255,"));
    /* main.idle has no width on the compare side: not drawn */
    assert_null(strstr(svg, "<title>main.idle"));
    assert_fills(svg);
    free(svg);
    /* the root changes most (it is left out of the color scale) */
    s.t.compare_total = s.t.root.compare_cum = 30;
    svg = render_svg(&s.t, NULL);
    assert_fills(svg);
    free(svg);
    s.t.compare_total = s.t.root.compare_cum = 10;
    /* shrank: blue */
    s.kids[0].compare_cum = 1;
    s.kids[0].compare_self = 1;
    svg = render_svg(&s.t, NULL);
    work = strstr(svg, "<title>main.work\nbase 5ns, compare 1ns (-80.00%)</title>");
    assert_non_null(work);
    const char *fill = strstr(work, "fill=\"rgb(");
    assert_memory_equal(strchr(fill, ')') - 4, ",255", 4);
    free(svg);
}

static void test_svg_empty(void **state)
{
    (void)state;
    pql_tree t = {.root = node("total", NONE, 0, 0, NULL, 0), .sample_unit = ""};
    char *svg = render_svg(&t, NULL);
    assert_xml(svg);
    assert_non_null(strstr(svg, "No data"));
    assert_int_equal(count(svg, "<g><title>"), 0);
    free(svg);
}

static void test_svg_subtitle_from_request(void **state)
{
    (void)state;
    struct small s;
    small_tree(&s);
    pql_profile_request r = {.query = "a{x=\"1\"}", .mode = PQL_PROFILE_MERGE,
                             .start_ms = 1700000000000, .end_ms = 1700003600000,
                             .compare_query = "b", .compare_mode = PQL_PROFILE_SINGLE,
                             .compare_time_ms = 1700000000500};
    pql_svg_options o = {.request = &r};
    char *svg = render_svg(&s.t, &o);
    assert_non_null(strstr(svg, ">a{x=&quot;1&quot;}, 2023-11-14T22:13:20Z to "
                                "2023-11-14T23:13:20Z vs b at 2023-11-14T22:13:20Z</text>"));
    free(svg);
}

/* ---- top -------------------------------------------------------------------------------- */

/* A profile with stacks "leaf;...;root" (leaf first) and values. */
static pprof_profile *profile_of(const char *const *stacks, const int64_t *values, size_t n)
{
    pprof_builder *b = pprof_builder_new(1);
    assert_non_null(b);
    pprof_builder_sample_type(b, 0, "cpu", "nanoseconds");
    pprof_builder_period(b, "cpu", "nanoseconds", 10000000);
    for (size_t i = 0; i < n; i++) {
        uint32_t locs[16];
        size_t nl = 0;
        char buf[256];
        snprintf(buf, sizeof buf, "%s", stacks[i]);
        for (char *tok = strtok(buf, ";"); tok && nl < N(locs); tok = strtok(NULL, ";")) {
            pprof_function f = {.name = pprof_builder_string(b, tok, strlen(tok)),
                                .filename = pprof_builder_string(b, "x.go", 4)};
            pprof_line line = {.function = pprof_builder_function(b, &f), .line = 1};
            pprof_location l = {.mapping = PPROF_NONE, .lines = &line, .n_lines = 1};
            locs[nl++] = pprof_builder_location(b, &l);
        }
        assert_int_equal(pprof_builder_sample(b, locs, nl, &values[i], NULL, 0), 0);
    }
    firn_err err = {0};
    pprof_profile *p = pprof_builder_finish(b, &err);
    assert_non_null(p);
    return p;
}

static void test_top_text(void **state)
{
    (void)state;
    const char *stacks[] = {"work;main", "idle;main", "work;main"};
    int64_t values[] = {30, 10, 20};
    pprof_profile *p = profile_of(stacks, values, 3);
    firn_buf b = {0};
    firn_err err = {0};
    assert_int_equal(pql_render_top_text(&b, p, 0, &err), 0);
    assert_string_equal(b.data,
                        "Type: cpu (nanoseconds)\n"
                        "Showing nodes accounting for 60, 100.00% of 60 total\n"
                        "        flat   flat%    sum%          cum    cum%\n"
                        "          50  83.33%  83.33%           50  83.33%  work\n"
                        "          10  16.67% 100.00%           10  16.67%  idle\n"
                        "           0   0.00% 100.00%           60 100.00%  main\n");
    firn_buf_free(&b);
    assert_int_equal(pql_render_top_text(&b, p, 1, &err), 0);
    assert_non_null(strstr(b.data, "accounting for 50,  83.33% of 60 total\nDropped 2 nodes\n"));
    firn_buf_free(&b);
    pprof_free(p);
}

static void test_top_json(void **state)
{
    (void)state;
    const char *stacks[] = {"work;main", "idle;main", "a<b>;main"};
    int64_t values[] = {50, 10, 5};
    pprof_profile *p = profile_of(stacks, values, 3);
    firn_buf b = {0};
    firn_err err = {0};
    assert_int_equal(pql_render_top_json(&b, p, NULL, 2, &err), 0);
    json_t *j = json_loads(b.data, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "sample_type")), "cpu");
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 65);
    assert_int_equal(json_integer_value(json_object_get(j, "rows_total")), 4);
    json_t *rows = json_object_get(j, "rows");
    assert_int_equal(json_array_size(rows), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "name")),
                        "work");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "flat")), 50);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "cum")), 50);
    json_decref(j);
    firn_buf_free(&b);

    /* diff: joined by name, the largest change of flat first */
    const char *cstacks[] = {"work;main", "new;main", "a<b>;main"};
    int64_t cvalues[] = {52, 30, 5};
    pprof_profile *c = profile_of(cstacks, cvalues, 3);
    assert_int_equal(pql_render_top_json(&b, p, c, 0, &err), 0);
    j = json_loads(b.data, 0, NULL);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "diff")));
    assert_int_equal(json_integer_value(json_object_get(j, "compare_total")), 87);
    rows = json_object_get(j, "rows");
    const char *want[] = {"new", "idle", "work", "a<b>", "main"};
    int64_t want_flat[][2] = {{0, 30}, {10, 0}, {50, 52}, {5, 5}, {0, 0}};
    assert_int_equal(json_array_size(rows), N(want));
    for (size_t i = 0; i < N(want); i++) {
        json_t *r = json_array_get(rows, i);
        assert_string_equal(json_string_value(json_object_get(r, "name")), want[i]);
        assert_int_equal(json_integer_value(json_object_get(r, "flat")), want_flat[i][0]);
        assert_int_equal(json_integer_value(json_object_get(r, "compare_flat")), want_flat[i][1]);
    }
    json_t *m = json_array_get(rows, 4);
    assert_int_equal(json_integer_value(json_object_get(m, "cum")), 65);
    assert_int_equal(json_integer_value(json_object_get(m, "compare_cum")), 87);
    json_decref(j);
    firn_buf_free(&b);
    pprof_free(c);
    pprof_free(p);
}

/* ---- trees from the store: the node limit ----------------------------------------------- */

static void test_max_nodes_other(void **state)
{
    (void)state;
    char *dir = temp_dir("webrender");
    tsdb_options o;
    tsdb_options_default(&o);
    o.path = dir;
    o.retention_ms = 0;
    firn_err err = {0};
    tsdb *db = tsdb_open(&o, &err);
    if (!db)
        fail_msg("tsdb_open: %s", err.msg);
    const char *stacks[] = {"a1;a;main", "a2;a;main", "b1;b;main", "c1;c;main", "d;main"};
    int64_t values[] = {40, 30, 15, 10, 5};
    pprof_profile *p = profile_of(stacks, values, N(stacks));
    firn_label labels[] = {{"job", "t"}};
    tsdb_append_req ar = {.labels = labels, .n_labels = 1, .profile_name = "process_cpu",
                          .profile = p, .timestamp_ms = 1700000000000};
    assert_int_equal(tsdb_append(db, &ar, &err), 0);
    pprof_free(p);
    tsdb_reader *r = tsdb_reader_open(db, &err);
    assert_non_null(r);
    pql_profile_request req = {.query = "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                               .mode = PQL_PROFILE_SINGLE, .time_ms = 1700000000000,
                               .max_nodes = 4};
    pql_tree t;
    if (pql_profile_tree(r, &req, &t, &err) < 0)
        fail_msg("pql_profile_tree: %s", err.msg);
    json_t *j = render_json(&t);
    /* nodes besides the root and "other": at most 4; the values still add up */
    json_t *stack = json_array();
    json_array_append(stack, json_object_get(j, "root"));
    size_t named = 0, others = 0;
    while (json_array_size(stack)) {
        json_t *n = json_incref(json_array_get(stack, json_array_size(stack) - 1));
        json_array_remove(stack, json_array_size(stack) - 1);
        const char *name = json_string_value(json_object_get(n, "name"));
        json_t *kids = json_object_get(n, "children");
        int64_t sum = json_integer_value(json_object_get(n, "self"));
        for (size_t i = 0; i < json_array_size(kids); i++) {
            json_array_append(stack, json_array_get(kids, i));
            sum += json_integer_value(json_object_get(json_array_get(kids, i), "value"));
        }
        assert_int_equal(sum, json_integer_value(json_object_get(n, "value")));
        if (strcmp(name, "other") == 0) {
            others++;
            assert_null(json_object_get(n, "function"));
        } else if (strcmp(name, "total") != 0) {
            named++;
        }
        json_decref(n);
    }
    json_decref(stack);
    assert_true(named <= 4);
    assert_true(others >= 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "root"), "value")),
                     100);
    json_decref(j);
    /* collapsed: "other" lines, and the lines still sum to the total */
    char *c = render_collapsed(&t);
    assert_non_null(strstr(c, "other "));
    int64_t sum = 0;
    for (const char *line = c; *line;) {
        const char *nl = strchr(line, '\n'), *sp = nl;
        while (sp > line && sp[-1] != ' ')
            sp--;
        sum += strtoll(sp, NULL, 10);
        line = nl + 1;
    }
    assert_int_equal(sum, 100);
    free(c);
    char *svg = render_svg(&t, NULL);
    assert_xml(svg);
    assert_non_null(strstr(svg, "<title>other\n"));
    free(svg);
    pql_tree_free(&t);
    tsdb_reader_close(r);
    tsdb_close(db);
    remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collapsed),
        cmocka_unit_test(test_collapsed_separators_in_names),
        cmocka_unit_test(test_collapsed_diff),
        cmocka_unit_test(test_collapsed_empty),
        cmocka_unit_test(test_flamegraph_json),
        cmocka_unit_test(test_flamegraph_json_escaping),
        cmocka_unit_test(test_flamegraph_json_diff),
        cmocka_unit_test(test_deep_tree),
        cmocka_unit_test(test_svg),
        cmocka_unit_test(test_svg_escaping),
        cmocka_unit_test(test_svg_long_names_trimmed),
        cmocka_unit_test(test_svg_narrow_frames_left_out),
        cmocka_unit_test(test_svg_diff_colors),
        cmocka_unit_test(test_svg_empty),
        cmocka_unit_test(test_svg_subtitle_from_request),
        cmocka_unit_test(test_top_text),
        cmocka_unit_test(test_top_json),
        cmocka_unit_test(test_max_nodes_other),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
