/* render.h -- a profile query's result in the formats /api/v1/profile
 * answers and `firnctl query profile` prints: collapsed stacks, the flame
 * graph as JSON, a standalone SVG flame graph, and the flat/cum table as
 * text or JSON.  (The pprof export is pql_profile_pprof then pprof_encode.)
 *
 * Owns only formatting: the tree and the profile come from pql.h's
 * profile queries; nothing here touches the store.  Each renderer appends
 * to b and returns 0, or FIRN_ETOOBIG when an append would have passed b's
 * cap (firn_buf_init; memory running out aborts, as ARCHITECTURE.md's
 * out-of-memory policy says).  Trees of any depth; names may hold any byte
 * (escaped or replaced as each format needs).
 */
#ifndef FIRN_PQL_RENDER_H
#define FIRN_PQL_RENDER_H

#include <stddef.h>

#include "model/model.h"
#include "pprof/pprof.h"
#include "promql-like/pql.h"

/* Collapsed stacks, flamegraph.pl's input: one line per node with a self
 * value, "frame;frame;... VALUE", root first with the root "total" left
 * out; a diff gives "... BASE COMPARE" (difffolded's input).  In names ';'
 * becomes ':' and line breaks spaces. */
int pql_render_collapsed(firn_buf *b, const pql_tree *t);

/* The flame graph as a JSON object: profile_type, sample_type,
 * sample_unit, diff, total (and compare_total), root, functions.  A node is
 * {"name", "value" (cum), "self", "function" (index into functions; absent
 * for the root, "other" and group_by nodes), "children": [...]}, and
 * "compare_value", "compare_self" in a diff; a function is {"name",
 * "system_name", "filename", "start_line", "mapping"}.  Invalid UTF-8
 * comes out as U+FFFD. */
int pql_render_flamegraph(firn_buf *b, const pql_tree *t);

typedef struct pql_svg_options {
    const char *title;       /* NULL: "Flame Graph" ("Differential Flame Graph") */
    const char *subtitle;    /* NULL: the request's, if any */
    const pql_profile_request *request;  /* NULL, or what the subtitle describes:
                                          * the selectors and their times */
    int width;               /* pixels; 0: 1200 */
} pql_svg_options;

/* A standalone SVG flame graph, root at the top, with a script: hover for
 * a frame's values, click to zoom into it, search by regular expression
 * (Ctrl-F) with the share matched.  Widths are cum values, colors a hash of
 * the function name; a diff is sized by the compare side and colored by the
 * change (red grew, blue shrank).  Frames narrower than 0.1 px are left
 * out, with everything under them.  o may be NULL. */
int pql_render_svg(firn_buf *b, const pql_tree *t, const pql_svg_options *o);

/* `go tool pprof -top`'s table of the first sample type, raw values:
 * flat, flat%, sum%, cum, cum%, name; max_rows 0 shows every function. */
int pql_render_top_text(firn_buf *b, const pprof_profile *p, size_t max_rows, firn_err *err);
/* The same as a JSON object: sample_type, sample_unit, diff, total,
 * rows_total (rows before max_rows), rows [{"name", "flat", "cum"}] in
 * pprof's order.  With compare (may be NULL) also compare_total, and each
 * row compare_flat and compare_cum, sorted by the change of flat as
 * `go tool pprof -diff_base` sorts. */
int pql_render_top_json(firn_buf *b, const pprof_profile *p, const pprof_profile *compare,
                        size_t max_rows, firn_err *err);

#endif
