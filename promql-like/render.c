/* render.c -- a profile query's result as the formats /api/v1/profile
 * answers and firnctl query profile prints: collapsed stacks, the flame
 * graph as JSON, a standalone SVG flame graph, and the flat/cum table as
 * text or JSON.
 *
 * Every renderer appends to a firn_buf and walks the tree with an explicit
 * stack (profiles may be thousands of frames deep; a worker thread's stack
 * is not).  Names come from profiles, so they may hold any byte: JSON
 * strings are firn_json_string's (invalid UTF-8 as U+FFFD, as Go's
 * encoding/json writes it), XML text replaces invalid UTF-8 too and drops the control characters XML 1.0 forbids, and collapsed
 * stacks replace the separators ';' and line breaks.
 */
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "promql-like/render.h"

/* An append fails only when it would pass the buffer's cap (memory itself
 * never runs out here: firn_buf aborts, as the out-of-memory policy says). */
static int buf_status(const firn_buf *b)
{
    return b->failed ? FIRN_ETOOBIG : 0;
}

/* A string literal, its length known at compile time: the per-node
 * appends without a strlen each (a tree may have millions of nodes). */
#define put_lit(b, lit) firn_buf_append((b), "" lit, sizeof(lit) - 1)

/* A literal prefix, then v in decimal, in one append: the per-node numbers
 * without printf's cost. */
#define put_num(b, prefix, v) put_num_n((b), "" prefix, sizeof(prefix) - 1, (v))

static void put_num_n(firn_buf *b, const char *prefix, size_t prefix_len, int64_t v)
{
    char out[64], digits[24], *p = digits + sizeof digits;
    assert(prefix_len <= sizeof out - sizeof digits);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    size_t n = (size_t)(digits + sizeof digits - p);
    memcpy(out, prefix, prefix_len);
    memcpy(out + prefix_len, p, n);
    firn_buf_append(b, out, prefix_len + n);
}

/* ---- walking a tree --------------------------------------------------------
 *
 * walk_next yields the nodes in depth-first order, each once on entry
 * (enter true) and once when all its children are done (enter false), with
 * its depth (the root is 0). */

struct walk_item {
    const pql_node *node;
    size_t next;       /* the next child to enter */
};

struct walk {
    struct walk_item *stack;
    size_t n, cap;
    bool started;
};

/* The stack grows with the tree's depth, which is in memory already. */
static void walk_push(struct walk *w, const pql_node *node)
{
    w->stack = firn_grow(w->stack, w->n, &w->cap, sizeof *w->stack, 64);
    w->stack[w->n++] = (struct walk_item){node, 0};
}

/* The next event, or NULL at the end. */
static const pql_node *walk_next(struct walk *w, const pql_node *root, bool *enter,
                                 size_t *depth)
{
    if (!w->started) {
        w->started = true;
        walk_push(w, root);
        *enter = true;
        *depth = 0;
        return root;
    }
    if (w->n == 0)
        return NULL;
    struct walk_item *top = &w->stack[w->n - 1];
    if (top->next < top->node->n_children) {
        const pql_node *child = &top->node->children[top->next++];
        walk_push(w, child);
        *enter = true;
        *depth = w->n - 1;
        return child;
    }
    w->n--;
    *enter = false;
    *depth = w->n;
    return top->node;
}

static void walk_free(struct walk *w)
{
    free(w->stack);
}

/* ---- collapsed stacks ------------------------------------------------------ */

/* A name as one collapsed-stack frame: ';' separates frames and a line ends
 * the stack, so neither may appear inside. */
static void put_frame(firn_buf *b, const char *name)
{
    const char *p = name;
    while (*p) {
        size_t run = strcspn(p, ";\n\r");
        firn_buf_append(b, p, run);
        p += run;
        if (*p) {
            firn_buf_append(b, *p == ';' ? ":" : " ", 1);
            p++;
        }
    }
}

int pql_render_collapsed(firn_buf *b, const pql_tree *t)
{
    struct walk w = {0};
    const char **path = NULL;   /* path[d]: the open frame of depth d */
    size_t path_cap = 0;
    bool enter;
    size_t depth;
    const pql_node *n;
    while ((n = walk_next(&w, &t->root, &enter, &depth))) {
        if (!enter || depth == 0)
            continue;   /* the root "total" is left out of every line */
        path = firn_grow(path, depth, &path_cap, sizeof *path, 64);
        path[depth] = n->name;
        if (!n->self && !(t->diff && n->compare_self))
            continue;
        for (size_t d = 1; d <= depth; d++) {
            if (d > 1)
                put_lit(b, ";");
            put_frame(b, path[d]);
        }
        put_num(b, " ", n->self);
        if (t->diff)
            put_num(b, " ", n->compare_self);
        put_lit(b, "\n");
    }
    walk_free(&w);
    free(path);
    return buf_status(b);
}

/* ---- JSON ------------------------------------------------------------------ */

static void json_key_str(firn_buf *b, const char *key, const char *value)
{
    firn_buf_printf(b, "\"%s\":", key);
    firn_json_string(b, value);
}

int pql_render_flamegraph(firn_buf *b, const pql_tree *t)
{
    put_lit(b, "{");
    json_key_str(b, "profile_type", t->profile_type);
    put_lit(b, ",");
    json_key_str(b, "sample_type", t->sample_type);
    put_lit(b, ",");
    json_key_str(b, "sample_unit", t->sample_unit);
    firn_buf_printf(b, ",\"diff\":%s,\"total\":%" PRId64, t->diff ? "true" : "false", t->total);
    if (t->diff)
        firn_buf_printf(b, ",\"compare_total\":%" PRId64, t->compare_total);
    put_lit(b, ",\"root\":");
    struct walk w = {0};
    bool enter;
    size_t depth;
    const pql_node *n;
    while ((n = walk_next(&w, &t->root, &enter, &depth))) {
        if (!enter) {
            put_lit(b, "]}");
            continue;
        }
        if (depth > 0 && w.stack[w.n - 2].next > 1)
            put_lit(b, ",");   /* not its parent's first child */
        put_lit(b, "{\"name\":");
        firn_json_string(b, n->name);
        put_num(b, ",\"value\":", n->cum);
        put_num(b, ",\"self\":", n->self);
        if (t->diff) {
            put_num(b, ",\"compare_value\":", n->compare_cum);
            put_num(b, ",\"compare_self\":", n->compare_self);
        }
        if (n->function < t->n_functions)
            put_num(b, ",\"function\":", n->function);
        put_lit(b, ",\"children\":[");
    }
    walk_free(&w);
    put_lit(b, ",\"functions\":[");
    for (size_t i = 0; i < t->n_functions; i++) {
        const pql_function_info *f = &t->functions[i];
        firn_buf_puts(b, i ? ",{" : "{");
        json_key_str(b, "name", f->name);
        put_lit(b, ",");
        json_key_str(b, "system_name", f->system_name);
        put_lit(b, ",");
        json_key_str(b, "filename", f->filename);
        firn_buf_printf(b, ",\"start_line\":%" PRId64 ",", f->start_line);
        json_key_str(b, "mapping", f->mapping);
        put_lit(b, "}");
    }
    put_lit(b, "]}");
    return buf_status(b);
}

/* ---- the flat/cum table ------------------------------------------------------ */

static void put_percent(firn_buf *b, int64_t part, int64_t whole)
{
    firn_buf_printf(b, " %6.2f%%", whole ? 100.0 * (double)part / (double)whole : 0.0);
}

int pql_render_top_text(firn_buf *b, const pprof_profile *p, size_t max_rows, firn_err *err)
{
    pprof_top_report top;
    if (pprof_top(p, 0, &top, err) < 0)
        return err && err->code ? err->code : FIRN_EINVAL;
    size_t shown = max_rows && max_rows < top.n_rows ? max_rows : top.n_rows;
    int64_t shown_flat = 0;
    for (size_t i = 0; i < shown; i++)
        shown_flat = pprof_add_sat(shown_flat, top.rows[i].flat);
    if (p->n_sample_types)
        firn_buf_printf(b, "Type: %s (%s)\n", pprof_str(p, p->sample_types[0].type),
                        pprof_str(p, p->sample_types[0].unit));
    firn_buf_printf(b, "Showing nodes accounting for %" PRId64 ",", shown_flat);
    put_percent(b, shown_flat, top.total);
    firn_buf_printf(b, " of %" PRId64 " total\n", top.total);
    if (shown < top.n_rows)
        firn_buf_printf(b, "Dropped %zu nodes\n", top.n_rows - shown);
    firn_buf_printf(b, "%12s %7s %7s %12s %7s\n", "flat", "flat%", "sum%", "cum", "cum%");
    int64_t sum = 0;
    for (size_t i = 0; i < shown; i++) {
        const pprof_top_row *row = &top.rows[i];
        sum = pprof_add_sat(sum, row->flat);
        firn_buf_printf(b, "%12" PRId64, row->flat);
        put_percent(b, row->flat, top.total);
        put_percent(b, sum, top.total);
        firn_buf_printf(b, " %12" PRId64, row->cum);
        put_percent(b, row->cum, top.total);
        firn_buf_printf(b, "  %s\n", row->name);
    }
    pprof_top_free(&top);
    if (b->failed)
        return firn_errf(err, FIRN_ETOOBIG, "the table passed its buffer's cap of %zu bytes",
                         b->max);
    return 0;
}

/* A row of a diff table: both sides of one function. */
struct top_pair {
    const char *name;
    int64_t flat, cum, compare_flat, compare_cum;
};

static int cmp_row_name(const void *x, const void *y)
{
    return strcmp(((const pprof_top_row *)x)->name, ((const pprof_top_row *)y)->name);
}

static uint64_t abs_diff(int64_t a, int64_t c)
{
    return a > c ? (uint64_t)a - (uint64_t)c : (uint64_t)c - (uint64_t)a;
}

/* As go tool pprof -diff_base sorts: the largest change of flat first. */
static int cmp_pair(const void *x, const void *y)
{
    const struct top_pair *a = x, *c = y;
    uint64_t da = abs_diff(a->flat, a->compare_flat), dc = abs_diff(c->flat, c->compare_flat);
    if (da != dc)
        return da > dc ? -1 : 1;
    return strcmp(a->name, c->name);
}

/* Both tables joined by function name (each sorted by name first). */
static struct top_pair *join_tops(pprof_top_report *a, pprof_top_report *c, size_t *n_out)
{
    struct top_pair *pairs = firn_xreallocarray(NULL, a->n_rows + c->n_rows + 1, sizeof *pairs);
    firn_sort(a->rows, a->n_rows, sizeof *a->rows, cmp_row_name);
    firn_sort(c->rows, c->n_rows, sizeof *c->rows, cmp_row_name);
    size_t i = 0, k = 0, n = 0;
    while (i < a->n_rows || k < c->n_rows) {
        int order = i == a->n_rows ? 1 : k == c->n_rows ? -1
                                                        : strcmp(a->rows[i].name, c->rows[k].name);
        struct top_pair *pr = &pairs[n++];
        *pr = (struct top_pair){.name = order <= 0 ? a->rows[i].name : c->rows[k].name};
        if (order <= 0) {
            pr->flat = a->rows[i].flat;
            pr->cum = a->rows[i++].cum;
        }
        if (order >= 0) {
            pr->compare_flat = c->rows[k].flat;
            pr->compare_cum = c->rows[k++].cum;
        }
    }
    firn_sort(pairs, n, sizeof *pairs, cmp_pair);
    *n_out = n;
    return pairs;
}

static void json_type_fields(firn_buf *b, const pprof_profile *p)
{
    json_key_str(b, "sample_type", p->n_sample_types ? pprof_str(p, p->sample_types[0].type) : "");
    firn_buf_puts(b, ",");
    json_key_str(b, "sample_unit", p->n_sample_types ? pprof_str(p, p->sample_types[0].unit) : "");
}

int pql_render_top_json(firn_buf *b, const pprof_profile *p, const pprof_profile *compare,
                        size_t max_rows, firn_err *err)
{
    pprof_top_report top, ctop = {0};
    if (pprof_top(p, 0, &top, err) < 0)
        return err && err->code ? err->code : FIRN_EINVAL;
    if (compare && pprof_top(compare, 0, &ctop, err) < 0) {
        pprof_top_free(&top);
        return err && err->code ? err->code : FIRN_EINVAL;
    }
    struct top_pair *pairs = NULL;
    size_t n = top.n_rows;
    if (compare)
        pairs = join_tops(&top, &ctop, &n);
    size_t shown = max_rows && max_rows < n ? max_rows : n;
    firn_buf_puts(b, "{");
    json_type_fields(b, p);
    firn_buf_printf(b, ",\"diff\":%s,\"total\":%" PRId64, compare ? "true" : "false", top.total);
    if (compare)
        firn_buf_printf(b, ",\"compare_total\":%" PRId64, ctop.total);
    firn_buf_printf(b, ",\"rows_total\":%zu,\"rows\":[", n);
    for (size_t i = 0; i < shown; i++) {
        firn_buf_puts(b, i ? ",{" : "{");
        if (compare) {
            json_key_str(b, "name", pairs[i].name);
            firn_buf_printf(b, ",\"flat\":%" PRId64 ",\"cum\":%" PRId64
                               ",\"compare_flat\":%" PRId64 ",\"compare_cum\":%" PRId64 "}",
                            pairs[i].flat, pairs[i].cum, pairs[i].compare_flat,
                            pairs[i].compare_cum);
        } else {
            json_key_str(b, "name", top.rows[i].name);
            firn_buf_printf(b, ",\"flat\":%" PRId64 ",\"cum\":%" PRId64 "}", top.rows[i].flat,
                            top.rows[i].cum);
        }
    }
    firn_buf_puts(b, "]}");
    free(pairs);
    pprof_top_free(&top);
    pprof_top_free(&ctop);
    if (b->failed)
        return firn_errf(err, FIRN_ETOOBIG, "the table passed its buffer's cap of %zu bytes",
                         b->max);
    return 0;
}

/* ---- SVG ------------------------------------------------------------------------ */

#define SVG_WIDTH_DEFAULT 1200
#define SVG_XPAD 10             /* left and right margin */
#define SVG_FRAME_HEIGHT 16
#define SVG_FONT_SIZE 12
#define SVG_CHAR_WIDTH 0.59     /* of the font size: Verdana's average glyph */
#define SVG_MIN_WIDTH 0.1       /* pixels: narrower frames (and all below) are left out */

/* s as XML character data or an attribute value: the five special
 * characters escaped, control characters (which XML 1.0 forbids) and
 * invalid UTF-8 replaced, at most max_chars characters (then ".."). */
static void xml_text(firn_buf *b, const char *s, size_t max_chars)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s), chars = 0, total = 0;
    for (size_t i = 0; i < len; i++)
        total += (p[i] & 0xc0) != 0x80;
    bool cut = total > max_chars;
    size_t keep = !cut ? SIZE_MAX : max_chars >= 2 ? max_chars - 2 : 0;
    while (len && chars < keep) {
        uint32_t rune = 0;
        size_t n = *p < 0x80 ? 1 : firn_utf8_decode(p, len, &rune);
        if (*p < 0x80) {
            switch (*p) {
            case '<': firn_buf_puts(b, "&lt;"); break;
            case '>': firn_buf_puts(b, "&gt;"); break;
            case '&': firn_buf_puts(b, "&amp;"); break;
            case '"': firn_buf_puts(b, "&quot;"); break;
            case '\'': firn_buf_puts(b, "&apos;"); break;
            default: firn_buf_append(b, *p < 0x20 || *p == 0x7f ? "?" : (const char *)p, 1);
            }
        } else if (n == 0 || rune == 0xfffe || rune == 0xffff) {
            firn_buf_puts(b, "\xef\xbf\xbd");   /* U+FFFD */
            n = n ? n : 1;
        } else {
            firn_buf_append(b, p, n);
        }
        p += n;
        len -= n;
        chars++;
    }
    if (cut)
        firn_buf_puts(b, "..");
}

/* A value in the unit pprof would show it in: 1.25s, 3.50MB, 42. */
static void human_value(char *buf, size_t size, int64_t v, const char *unit)
{
    static const struct {
        const char *unit;
        double scale;        /* to the base unit (seconds, bytes) */
        const char *base;
    } U[] = {
        {"nanoseconds", 1e-9, "s"}, {"microseconds", 1e-6, "s"}, {"milliseconds", 1e-3, "s"},
        {"seconds", 1, "s"},        {"bytes", 1, "B"},
    };
    for (size_t i = 0; i < sizeof U / sizeof U[0]; i++) {
        if (strcmp(unit, U[i].unit) != 0)
            continue;
        double x = (double)v * U[i].scale, ax = fabs(x);
        if (U[i].base[0] == 'B') {
            static const char *const S[] = {"B", "kB", "MB", "GB", "TB", "PB"};
            size_t k = 0;
            while (ax >= 1024 && k + 1 < sizeof S / sizeof S[0]) {
                x /= 1024;
                ax /= 1024;
                k++;
            }
            snprintf(buf, size, k ? "%.2f%s" : "%.0f%s", x, S[k]);
        } else if (ax >= 1 || ax == 0) {
            snprintf(buf, size, "%.2fs", x);
        } else if (ax >= 1e-3) {
            snprintf(buf, size, "%.2fms", x * 1e3);
        } else if (ax >= 1e-6) {
            snprintf(buf, size, "%.2fus", x * 1e6);
        } else {
            snprintf(buf, size, "%.0fns", x * 1e9);
        }
        return;
    }
    snprintf(buf, size, "%" PRId64 "%s%s", v, *unit && strcmp(unit, "count") != 0 ? " " : "",
             strcmp(unit, "count") != 0 ? unit : "");
}

/* FNV-1a of a name: the same function gets the same color in every graph. */
static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

/* The value a frame's width shows: a diff shows the compare side (the
 * "after" of flamegraph.pl's difffolded), colored by the change, unless
 * that side is empty. */
static int64_t shown_value(const pql_tree *t, const pql_node *n)
{
    return t->diff && t->compare_total > 0 ? n->compare_cum : n->cum;
}

static void frame_fill(char *buf, size_t size, const pql_tree *t, const pql_node *n,
                       double max_change)
{
    if (!t->diff) {
        uint32_t h = name_hash(n->name);
        snprintf(buf, size, "rgb(%u,%u,%u)", 205 + h % 51, (h >> 8) % 231, (h >> 16) % 56);
        return;
    }
    double change = (double)n->compare_cum - (double)n->cum;
    double k = max_change > 0 ? fmin(fabs(change) / max_change, 1) : 0;   /* the root: > 1 */
    unsigned other = (unsigned)lround(220 - 180 * k);
    if (change > 0)
        snprintf(buf, size, "rgb(255,%u,%u)", other, other);   /* grew: red */
    else if (change < 0)
        snprintf(buf, size, "rgb(%u,%u,255)", other, other);   /* shrank: blue */
    else
        snprintf(buf, size, "rgb(220,220,220)");
}

static void frame_title(firn_buf *b, const pql_tree *t, const pql_node *n)
{
    char v[64], s[64];
    xml_text(b, n->name, SIZE_MAX);
    firn_buf_puts(b, "\n");
    if (!t->diff) {
        human_value(v, sizeof v, n->cum, t->sample_unit);
        human_value(s, sizeof s, n->self, t->sample_unit);
        firn_buf_printf(b, "%s (%.2f%%), self %s", v,
                        t->total ? 100.0 * (double)n->cum / (double)t->total : 0.0, s);
        return;
    }
    human_value(v, sizeof v, n->cum, t->sample_unit);
    human_value(s, sizeof s, n->compare_cum, t->sample_unit);
    firn_buf_printf(b, "base %s, compare %s", v, s);
    if (n->cum)
        firn_buf_printf(b, " (%+.2f%%)",
                        100.0 * ((double)n->compare_cum - (double)n->cum) / (double)n->cum);
    else if (n->compare_cum)
        firn_buf_puts(b, " (new)");
}

/* The script: my own small take on flamegraph.pl's interactions.  Frames
 * are <g> in #frames, each a <title> (name, newline, details), a <rect>
 * and a <text>; the root's rect is the full width W at x XPAD. */
static const char SVG_SCRIPT[] =
    "var frames = [], details, matched, unzoomBtn, searchBtn, searching = false;\n"
    "function init() {\n"
    "  details = document.getElementById('details');\n"
    "  matched = document.getElementById('matched');\n"
    "  unzoomBtn = document.getElementById('unzoom');\n"
    "  searchBtn = document.getElementById('search');\n"
    "  var gs = document.getElementById('frames').children;\n"
    "  for (var i = 0; i < gs.length; i++) {\n"
    "    var g = gs[i], r = g.querySelector('rect');\n"
    "    g._x = +r.getAttribute('x'); g._w = +r.getAttribute('width');\n"
    "    g._y = +r.getAttribute('y'); g._fill = r.getAttribute('fill');\n"
    "    g._title = g.querySelector('title').textContent;\n"
    "    g._n = g._title.split('\\n')[0];\n"
    "    frames.push(g);\n"
    "  }\n"
    "  var fr = document.getElementById('frames');\n"
    "  fr.addEventListener('mouseover', function (e) {\n"
    "    var g = frameOf(e.target);\n"
    "    if (g) details.textContent = g._title.replace('\\n', ': ');\n"
    "  });\n"
    "  fr.addEventListener('mouseout', function () { details.textContent = ' '; });\n"
    "  fr.addEventListener('click', function (e) { var g = frameOf(e.target); if (g) zoom(g); });\n"
    "  unzoomBtn.addEventListener('click', unzoom);\n"
    "  searchBtn.addEventListener('click', function () {\n"
    "    if (searching) resetSearch(); else searchPrompt();\n"
    "  });\n"
    "  matched.addEventListener('click', resetSearch);\n"
    "  window.addEventListener('keydown', function (e) {\n"
    "    if ((e.ctrlKey || e.metaKey) && e.key === 'f') { e.preventDefault(); searchPrompt(); }\n"
    "    else if (e.key === 'Escape') { resetSearch(); unzoom(); }\n"
    "  });\n"
    "}\n"
    "function frameOf(el) {\n"
    "  while (el && el.parentNode && el.parentNode.id !== 'frames') el = el.parentNode;\n"
    "  return el && el.parentNode ? el : null;\n"
    "}\n"
    "function fit(name, w) {\n"
    "  var n = Math.floor((w - 6) / (FONT * CHAR));\n"
    "  if (n < 3) return '';\n"
    "  var cs = Array.from(name);\n"
    "  return cs.length <= n ? name : cs.slice(0, n - 2).join('') + '..';\n"
    "}\n"
    "function place(g, x, w, cls) {\n"
    "  g.setAttribute('class', cls);\n"
    "  if (cls === 'hide') return;\n"
    "  var r = g.querySelector('rect'), t = g.querySelector('text');\n"
    "  r.setAttribute('x', x.toFixed(2)); r.setAttribute('width', w.toFixed(2));\n"
    "  t.setAttribute('x', (x + 3).toFixed(2)); t.textContent = fit(g._n, w);\n"
    "}\n"
    "function zoom(g) {\n"
    "  var x0 = g._x, w0 = g._w, y0 = g._y, s = W / w0, eps = 0.02;\n"
    "  for (var i = 0; i < frames.length; i++) {\n"
    "    var f = frames[i];\n"
    "    if (f._y < y0 && f._x <= x0 + eps && f._x + f._w >= x0 + w0 - eps)\n"
    "      place(f, XPAD, W, 'anc');\n"
    "    else if (f._y >= y0 && f._x >= x0 - eps && f._x + f._w <= x0 + w0 + eps)\n"
    "      place(f, XPAD + (f._x - x0) * s, f._w * s, '');\n"
    "    else\n"
    "      place(f, 0, 0, 'hide');\n"
    "  }\n"
    "  unzoomBtn.setAttribute('class', 'btn');\n"
    "}\n"
    "function unzoom() {\n"
    "  for (var i = 0; i < frames.length; i++) place(frames[i], frames[i]._x, frames[i]._w, '');\n"
    "  unzoomBtn.setAttribute('class', 'btn hide');\n"
    "}\n"
    "function searchPrompt() {\n"
    "  var term = prompt('Search for a function (a regular expression)', '');\n"
    "  if (term) search(term);\n"
    "}\n"
    "function search(term) {\n"
    "  var re;\n"
    "  try { re = new RegExp(term); } catch (e) { alert(e.message); return; }\n"
    "  var spans = [];\n"
    "  for (var i = 0; i < frames.length; i++) {\n"
    "    var f = frames[i], r = f.querySelector('rect');\n"
    "    if (re.test(f._n)) { r.setAttribute('fill', 'rgb(230,0,230)'); spans.push([f._x, f._x + f._w]); }\n"
    "    else r.setAttribute('fill', f._fill);\n"
    "  }\n"
    "  spans.sort(function (a, b) { return a[0] - b[0]; });\n"
    "  var covered = 0, end = -1;\n"
    "  for (var k = 0; k < spans.length; k++) {\n"
    "    var a = Math.max(spans[k][0], end), b = spans[k][1];\n"
    "    if (b > a) covered += b - a;\n"
    "    if (b > end) end = b;\n"
    "  }\n"
    "  searching = true;\n"
    "  searchBtn.textContent = 'Reset Search';\n"
    "  matched.textContent = 'Matched: ' + (100 * covered / W).toFixed(1) + '%';\n"
    "}\n"
    "function resetSearch() {\n"
    "  for (var i = 0; i < frames.length; i++)\n"
    "    frames[i].querySelector('rect').setAttribute('fill', frames[i]._fill);\n"
    "  searching = false;\n"
    "  searchBtn.textContent = 'Search';\n"
    "  matched.textContent = ' ';\n"
    "}\n";

static const char SVG_STYLE[] =
    "text { font-family: Verdana, sans-serif; font-size: 12px; fill: #000; }\n"
    "#title { font-size: 17px; text-anchor: middle; }\n"
    "#subtitle { fill: #555; text-anchor: middle; }\n"
    "#matched { text-anchor: end; cursor: pointer; }\n"
    ".btn { cursor: pointer; fill: #225; }\n"
    ".btn:hover { text-decoration: underline; }\n"
    "#frames g { cursor: pointer; }\n"
    "#frames g:hover rect { stroke: #000; stroke-width: 0.5; }\n"
    "#frames text { pointer-events: none; }\n"
    ".anc { opacity: 0.6; }\n"
    ".hide { display: none; }\n";

static void put_time(firn_buf *b, int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char buf[40];
    if (gmtime_r(&s, &tm) && strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm))
        firn_buf_puts(b, buf);
    else
        firn_buf_printf(b, "%" PRId64 "ms", ms);
}

/* "QUERY, FROM to TO" or "QUERY at T". */
static void describe_side(firn_buf *b, const char *query, pql_profile_mode mode, int64_t start,
                          int64_t end, int64_t at)
{
    firn_buf_puts(b, query ? query : "");
    firn_buf_puts(b, mode == PQL_PROFILE_SINGLE ? " at " : ", ");
    put_time(b, mode == PQL_PROFILE_SINGLE ? at : start);
    if (mode != PQL_PROFILE_SINGLE) {
        firn_buf_puts(b, " to ");
        put_time(b, end);
    }
}

/* What a request asked for, both sides of a diff. */
static void describe_request(firn_buf *b, const pql_profile_request *r)
{
    describe_side(b, r->query, r->mode, r->start_ms, r->end_ms, r->time_ms);
    if (r->compare_query) {
        firn_buf_puts(b, " vs ");
        describe_side(b, r->compare_query, r->compare_mode, r->compare_start_ms,
                      r->compare_end_ms, r->compare_time_ms);
    }
}

/* Frames to draw: the depth of the deepest one at least SVG_MIN_WIDTH wide
 * (a narrower frame's children are narrower still), and the largest change
 * of a diff, for the color scale. */
static void svg_measure(const pql_tree *t, double px_per_unit, size_t *max_depth,
                        double *max_change)
{
    struct walk w = {0};
    bool enter;
    size_t depth;
    const pql_node *n;
    *max_depth = 0;
    *max_change = 0;
    while ((n = walk_next(&w, &t->root, &enter, &depth))) {
        if (!enter)
            continue;
        if ((double)shown_value(t, n) * px_per_unit < SVG_MIN_WIDTH) {
            w.stack[w.n - 1].next = n->n_children;   /* skip the subtree */
            continue;
        }
        if (depth > *max_depth)
            *max_depth = depth;
        double change = fabs((double)n->compare_cum - (double)n->cum);
        if (depth > 0 && change > *max_change)
            *max_change = change;
    }
    walk_free(&w);
}

int pql_render_svg(firn_buf *b, const pql_tree *t, const pql_svg_options *o)
{
    int width = o && o->width > 2 * SVG_XPAD + 100 ? o->width : SVG_WIDTH_DEFAULT;
    const char *title = o && o->title ? o->title
                        : t->diff     ? "Differential Flame Graph"
                                      : "Flame Graph";
    firn_buf described = {0};
    if (o && !o->subtitle && o->request)
        describe_request(&described, o->request);
    const char *subtitle = o && o->subtitle ? o->subtitle : described.data;
    double frame_w = width - 2.0 * SVG_XPAD;
    int64_t total = shown_value(t, &t->root);
    double px = total > 0 ? frame_w / (double)total : 0;
    size_t max_depth;
    double max_change;
    svg_measure(t, px, &max_depth, &max_change);
    int top = subtitle ? 56 : 40;
    size_t rows = total > 0 ? max_depth + 1 : 0;
    size_t height = (size_t)top + rows * SVG_FRAME_HEIGHT + 40;

    firn_buf_printf(b,
                    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
                    "<svg version=\"1.1\" width=\"%d\" height=\"%zu\" viewBox=\"0 0 %d %zu\" "
                    "xmlns=\"http://www.w3.org/2000/svg\" onload=\"init()\">\n"
                    "<style type=\"text/css\"><![CDATA[\n%s]]></style>\n"
                    "<script type=\"text/ecmascript\"><![CDATA[\n"
                    "'use strict';\nvar W = %.2f, XPAD = %d, FONT = %d, CHAR = %.2f;\n%s]]>"
                    "</script>\n"
                    "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%zu\" fill=\"#f8f8f8\"/>\n",
                    width, height, width, height, SVG_STYLE, frame_w, SVG_XPAD, SVG_FONT_SIZE,
                    SVG_CHAR_WIDTH, SVG_SCRIPT, width, height);
    firn_buf_printf(b, "<text id=\"title\" x=\"%d\" y=\"24\">", width / 2);
    xml_text(b, title, SIZE_MAX);
    firn_buf_puts(b, "</text>\n");
    if (subtitle) {
        firn_buf_printf(b, "<text id=\"subtitle\" x=\"%d\" y=\"42\">", width / 2);
        xml_text(b, subtitle, (size_t)(frame_w / (SVG_FONT_SIZE * SVG_CHAR_WIDTH)));
        firn_buf_puts(b, "</text>\n");
    }
    firn_buf_free(&described);
    firn_buf_printf(b,
                    "<text id=\"unzoom\" class=\"btn hide\" x=\"%d\" y=\"24\">Reset Zoom</text>\n"
                    "<text id=\"search\" class=\"btn\" x=\"%d\" y=\"24\">Search</text>\n"
                    "<text id=\"details\" x=\"%d\" y=\"%zu\"> </text>\n"
                    "<text id=\"matched\" x=\"%d\" y=\"%zu\"> </text>\n",
                    SVG_XPAD, width - SVG_XPAD - 90, SVG_XPAD, height - 14,
                    width - SVG_XPAD, height - 14);
    if (total <= 0)
        firn_buf_printf(b, "<text x=\"%d\" y=\"%d\">No data</text>\n", SVG_XPAD, top + 12);
    firn_buf_puts(b, "<g id=\"frames\">\n");

    /* x of each open frame's next child */
    double *next_x = NULL;
    size_t next_cap = 0;
    struct walk w = {0};
    bool enter;
    size_t depth;
    const pql_node *n;
    while (total > 0 && (n = walk_next(&w, &t->root, &enter, &depth))) {
        if (!enter)
            continue;
        double fw = (double)shown_value(t, n) * px;
        if (fw < SVG_MIN_WIDTH) {
            w.stack[w.n - 1].next = n->n_children;
            if (depth > 0)
                next_x[depth - 1] += fw;
            continue;
        }
        next_x = firn_grow(next_x, depth, &next_cap, sizeof *next_x, 64);
        double x = depth == 0 ? SVG_XPAD : next_x[depth - 1];
        if (depth > 0)
            next_x[depth - 1] += fw;
        next_x[depth] = x;
        char fill[32];
        frame_fill(fill, sizeof fill, t, n, max_change);
        size_t y = (size_t)top + depth * SVG_FRAME_HEIGHT;
        firn_buf_puts(b, "<g><title>");
        frame_title(b, t, n);
        firn_buf_printf(b,
                        "</title><rect x=\"%.2f\" y=\"%zu\" width=\"%.2f\" height=\"%d\" "
                        "fill=\"%s\" rx=\"2\"/><text x=\"%.2f\" y=\"%.1f\">",
                        x, y, fw, SVG_FRAME_HEIGHT - 1, fill, x + 3,
                        (double)y + SVG_FRAME_HEIGHT - 4.5);
        double chars = (fw - 6) / (SVG_FONT_SIZE * SVG_CHAR_WIDTH);
        if (chars >= 3)
            xml_text(b, n->name, (size_t)chars);
        firn_buf_puts(b, "</text></g>\n");
    }
    walk_free(&w);
    free(next_x);
    firn_buf_puts(b, "</g>\n</svg>\n");
    return buf_status(b);
}
