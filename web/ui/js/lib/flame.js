// flame.js -- the flame graph as data: the server's nested tree flattened
// into per-node typed arrays (preorder, so a subtree is the index range
// [i, end[i])), laid out in value space (start, width), bucketed by depth
// for O(log n) hit testing; and what views derive from it: search and the
// matched share, the top table, the sandwich (callers and callees of a
// function) and the inverted (bottom-up) tree.  No DOM.
//
// A node from the server: {name, value, self, [compare_value, compare_self],
// [function], children}; "function" indexes the tree's functions table and
// is absent for the root, "other" and group_by nodes.

export const KIND_FRAME = 0;
export const KIND_ROOT = 1;
export const KIND_OTHER = 2;
export const KIND_GROUP = 3;

// Flattens a server tree.  opts.groupBy: the root's children are group_by
// value nodes ("key=value").  opts.diff: 'relative' (default) or 'absolute'
// widths for a diff.
export function buildFlame(data, opts = {}) {
  const root = data.root || { name: 'total', value: 0, self: 0, children: [] };
  let n = 0;
  const count = [root];
  while (count.length) {
    const node = count.pop();
    n++;
    const ch = node.children;
    if (ch) for (let k = 0; k < ch.length; k++) count.push(ch[k]);
  }
  const fl = {
    n,
    diff: !!data.diff,
    total: data.total ?? root.value ?? 0,
    compareTotal: data.compare_total ?? 0,
    functions: data.functions || [],
    sampleType: data.sample_type || '',
    unit: data.sample_unit || '',
    profileType: data.profile_type || '',
    name: new Array(n),
    fn: new Int32Array(n),
    kind: new Uint8Array(n),
    value: new Float64Array(n),
    self: new Float64Array(n),
    cvalue: new Float64Array(n),
    cself: new Float64Array(n),
    parent: new Int32Array(n),
    depth: new Int32Array(n),
    end: new Int32Array(n),
    start: new Float64Array(n),
    width: new Float64Array(n),
    levels: [],
    levelStarts: [],
    maxDepth: 0,
  };
  // preorder with an explicit stack (stacks may be thousands deep)
  const stack = [[root, -1, 0]];
  const open = []; // indices whose subtree is not closed yet
  let i = 0;
  while (stack.length) {
    const [node, parent, depth] = stack.pop();
    while (open.length && fl.depth[open[open.length - 1]] >= depth) fl.end[open.pop()] = i;
    fl.name[i] = node.name ?? '';
    fl.fn[i] = Number.isInteger(node.function) ? node.function : -1;
    fl.kind[i] = parent < 0 ? KIND_ROOT
      : fl.fn[i] >= 0 ? KIND_FRAME
      : node.name === 'other' ? KIND_OTHER
      : opts.groupBy && depth === 1 ? KIND_GROUP : KIND_FRAME;
    fl.value[i] = node.value || 0;
    fl.self[i] = node.self || 0;
    fl.cvalue[i] = node.compare_value || 0;
    fl.cself[i] = node.compare_self || 0;
    fl.parent[i] = parent;
    fl.depth[i] = depth;
    if (depth > fl.maxDepth) fl.maxDepth = depth;
    open.push(i);
    const ch = node.children;
    if (ch) for (let k = ch.length - 1; k >= 0; k--) stack.push([ch[k], i, depth + 1]);
    i++;
  }
  while (open.length) fl.end[open.pop()] = n;
  const levels = Array.from({ length: fl.maxDepth + 1 }, () => []);
  for (let k = 0; k < n; k++) levels[fl.depth[k]].push(k);
  fl.levels = levels.map((l) => Int32Array.from(l));
  fl.levelStarts = fl.levels.map((l) => new Float64Array(l.length));
  layout(fl, opts.diff || 'relative');
  return fl;
}

// The layout weight of node i: its value; in a diff both sides' (as
// shares of their totals when relative, so the two sides weigh the same).
function weight(fl, i, mode) {
  if (!fl.diff) return fl.value[i];
  if (mode === 'absolute') return fl.value[i] + fl.cvalue[i];
  const a = fl.total > 0 ? fl.value[i] / fl.total : 0;
  const b = fl.compareTotal > 0 ? fl.cvalue[i] / fl.compareTotal : 0;
  return a + b;
}

// Positions every node in value space: a node starts where its previous
// sibling ends, its first child where it starts.
export function layout(fl, mode = 'relative') {
  fl.mode = mode;
  const nextStart = new Float64Array(fl.n); // where the next child of a node goes
  for (let i = 0; i < fl.n; i++) {
    const p = fl.parent[i];
    fl.width[i] = weight(fl, i, mode);
    fl.start[i] = p < 0 ? 0 : nextStart[p];
    if (p >= 0) nextStart[p] += fl.width[i];
    nextStart[i] = fl.start[i];
  }
  for (let d = 0; d < fl.levels.length; d++) {
    const l = fl.levels[d];
    const s = fl.levelStarts[d];
    for (let k = 0; k < l.length; k++) s[k] = fl.start[l[k]];
  }
}

// A function's identity: its function-table index, else its name.
export function keyOf(fl, i) {
  if (fl.kind[i] === KIND_GROUP) return 'g:' + fl.name[i];
  return fl.fn[i] >= 0 ? fl.fn[i] : 'n:' + fl.name[i];
}

export function functionInfo(fl, i) {
  return fl.fn[i] >= 0 ? fl.functions[fl.fn[i]] || null : null;
}

// The first index k in the sorted array a with a[k] > v.
function upperBound(a, v) {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// A view: the value range [x0, x1) spread over width CSS pixels, rows of
// rowH pixels scrolled by top pixels; flip puts the root at the bottom.
export function makeView(fl, zoom, width, opts = {}) {
  const z = zoom >= 0 && zoom < fl.n ? zoom : 0;
  return {
    zoom: z,
    x0: fl.start[z],
    x1: fl.start[z] + fl.width[z],
    width,
    rowH: opts.rowH || 20,
    top: opts.top || 0,
    flip: !!opts.flip,
  };
}

// The row (from the top of the content) of depth d.
export function rowOf(fl, view, d) {
  return view.flip ? fl.maxDepth - d : d;
}

// Node i's rectangle in CSS pixels relative to the canvas (the visible
// part of the content), unclipped.
export function nodeRect(fl, view, i) {
  const scale = view.x1 > view.x0 ? view.width / (view.x1 - view.x0) : 0;
  const x = (fl.start[i] - view.x0) * scale;
  return {
    x,
    y: rowOf(fl, view, fl.depth[i]) * view.rowH - view.top,
    width: fl.width[i] * scale,
    height: view.rowH,
  };
}

// The node drawn at canvas point (x, y), or -1: binary search in the row.
export function hitTest(fl, view, x, y) {
  if (x < 0 || x >= view.width || view.x1 <= view.x0) return -1;
  const row = Math.floor((y + view.top) / view.rowH);
  const d = view.flip ? fl.maxDepth - row : row;
  if (d < 0 || d > fl.maxDepth || y + view.top < 0) return -1;
  const v = view.x0 + (x / view.width) * (view.x1 - view.x0);
  const starts = fl.levelStarts[d];
  const k = upperBound(starts, v) - 1;
  if (k < 0) return -1;
  const i = fl.levels[d][k];
  if (v >= fl.start[i] + fl.width[i] || fl.width[i] <= 0) return -1;
  // above the zoomed node only its ancestors are shown
  if (d < fl.depth[view.zoom] && !(i <= view.zoom && view.zoom < fl.end[i])) return -1;
  return i;
}

// The nodes of depth d overlapping [x0, x1): index range into levels[d].
export function levelRange(fl, d, x0, x1) {
  const starts = fl.levelStarts[d];
  const l = fl.levels[d];
  let k = upperBound(starts, x0) - 1;
  if (k < 0 || fl.start[l[k]] + fl.width[l[k]] <= x0) k++;
  const e = k < 0 ? 0 : upperBound(starts, x1 - 1e-12 * Math.abs(x1));
  return [Math.max(0, k), Math.max(0, Math.min(l.length, e))];
}

export function isAncestor(fl, a, b) {
  return a <= b && b < fl.end[a];
}

// Names from the root's child down to i (the zoom path of the URL).
export function pathOf(fl, i) {
  const names = [];
  for (let k = i; k > 0; k = fl.parent[k]) names.push(fl.name[k]);
  return names.reverse();
}

// The node at a path of names, or the deepest one found on the way.
export function findPath(fl, names) {
  let at = 0;
  for (const name of names) {
    let found = -1;
    for (let c = at + 1; c < fl.end[at]; c = fl.end[c]) {
      if (fl.name[c] === name) {
        found = c;
        break;
      }
    }
    if (found < 0) break;
    at = found;
  }
  return at;
}

// ---- search ----------------------------------------------------------------

// A predicate on names: a case-insensitive substring, or a regex (throws
// SyntaxError with the browser's message when the regex is bad).
export function matcher(text, regex = false) {
  if (!text) return null;
  if (regex) {
    const re = new RegExp(text, 'i');
    return (name) => re.test(name);
  }
  const t = text.toLowerCase();
  return (name) => name.toLowerCase().includes(t);
}

// Which nodes match (Uint8Array) and their share: the value of the
// matching nodes with no matching ancestor, so nothing counts twice.
export function searchFlame(fl, pred, under = 0) {
  const hit = new Uint8Array(fl.n);
  let matched = 0;
  let coveredEnd = -1;
  for (let i = 0; i < fl.n; i++) {
    if (fl.kind[i] !== KIND_FRAME || !pred(fl.name[i])) continue;
    hit[i] = 1;
    if (i >= coveredEnd && isAncestor(fl, under, i)) {
      matched += fl.value[i];
      coveredEnd = fl.end[i];
    }
  }
  return { hit, matched, total: fl.value[under] };
}

// ---- top table ---------------------------------------------------------------

// One row per function: self (sum of self), total (sum of value over the
// nodes with no ancestor of the same function, as pprof's cum), and the
// compare side's in a diff.  Group and "other" nodes have no row.
export function topTable(fl) {
  const rows = new Map();
  const active = new Map(); // key -> open ancestors with that key
  const open = [];
  for (let i = 0; i < fl.n; i++) {
    while (open.length && fl.end[open[open.length - 1]] <= i) {
      const k = keyOf(fl, open.pop());
      active.set(k, active.get(k) - 1);
    }
    if (fl.kind[i] !== KIND_FRAME) continue;
    const key = keyOf(fl, i);
    let r = rows.get(key);
    if (!r) {
      const info = functionInfo(fl, i);
      r = { key, name: fl.name[i], node: i, file: info ? info.filename : '', line: info ? info.start_line : 0,
        mapping: info ? info.mapping : '', self: 0, total: 0, cself: 0, ctotal: 0 };
      rows.set(key, r);
    }
    r.self += fl.self[i];
    r.cself += fl.cself[i];
    if (!active.get(key)) {
      r.total += fl.value[i];
      r.ctotal += fl.cvalue[i];
    }
    if (fl.value[i] + fl.cvalue[i] > fl.value[r.node] + fl.cvalue[r.node]) r.node = i;
    active.set(key, (active.get(key) || 0) + 1);
    open.push(i);
  }
  return [...rows.values()];
}

const SORT_FIELDS = {
  self: (r) => r.self,
  total: (r) => r.total,
  cself: (r) => r.cself,
  ctotal: (r) => r.ctotal,
  diff: (r) => r.ctotal - r.total,
  name: (r) => r.name,
  file: (r) => r.file,
};

// Sorts rows in place by a field ("total", "-name": a leading "-" reverses
// the field's natural order, numbers descending and names ascending).
export function sortRows(rows, sort = 'total') {
  const rev = sort.startsWith('-');
  const field = rev ? sort.slice(1) : sort;
  const get = SORT_FIELDS[field] || SORT_FIELDS.total;
  const text = field === 'name' || field === 'file';
  const dir = (text ? 1 : -1) * (rev ? -1 : 1);
  rows.sort((a, b) => {
    const x = get(a);
    const y = get(b);
    if (x < y) return -dir;
    if (x > y) return dir;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
  return rows;
}

// ---- derived trees (server tree shape, so they go through buildFlame) ---------

function trieNode(fl, i) {
  const node = { name: fl.name[i], value: 0, self: 0, children: [] };
  if (fl.fn[i] >= 0) node.function = fl.fn[i];
  if (fl.diff) {
    node.compare_value = 0;
    node.compare_self = 0;
  }
  node.index = new Map();
  return node;
}

function trieChild(fl, parent, i) {
  const key = keyOf(fl, i);
  let c = parent.index.get(key);
  if (!c) {
    c = trieNode(fl, i);
    parent.index.set(key, c);
    parent.children.push(c);
  }
  return c;
}

function add(fl, node, v, cv, self) {
  node.value += v;
  if (self) node.self += v;
  if (fl.diff) {
    node.compare_value += cv;
    if (self) node.compare_self += cv;
  }
}

// Drops the helper indexes and sorts children by value, largest first.
function finish(node) {
  const stack = [node];
  while (stack.length) {
    const t = stack.pop();
    delete t.index;
    t.children.sort((a, b) => (b.value + (b.compare_value || 0)) - (a.value + (a.compare_value || 0)) || (a.name < b.name ? -1 : 1));
    for (const c of t.children) stack.push(c);
  }
  return node;
}

function wrap(fl, root) {
  root.name = root.name || 'total';
  return {
    root: finish(root), functions: fl.functions, diff: fl.diff, total: root.value,
    compare_total: root.compare_value || 0, sample_type: fl.sampleType, sample_unit: fl.unit,
    profile_type: fl.profileType,
  };
}

// The bottom-up tree: its roots are the functions where samples end (their
// self), each one's children its callers.
export function invertFlame(fl) {
  const root = { name: 'total', value: 0, self: 0, children: [], index: new Map() };
  if (fl.diff) {
    root.compare_value = 0;
    root.compare_self = 0;
  }
  for (let i = 1; i < fl.n; i++) {
    const v = fl.self[i];
    const cv = fl.cself[i];
    if (v === 0 && cv === 0) continue;
    add(fl, root, v, cv, false);
    let t = root;
    for (let k = i; k > 0; k = fl.parent[k]) {
      t = trieChild(fl, t, k);
      add(fl, t, v, cv, fl.parent[k] === 0);
    }
  }
  return wrap(fl, root);
}

// The sandwich of the function with key: callees (its subtrees merged,
// rooted at it) and callers (the paths to it merged, rooted at it, each
// node's children its callers).  Only the outermost occurrences count, so
// recursion is not counted twice.
export function sandwich(fl, key) {
  let first = -1;
  const outer = [];
  let coveredEnd = -1;
  for (let i = 0; i < fl.n; i++) {
    if (fl.kind[i] === KIND_ROOT || keyOf(fl, i) !== key) continue;
    if (first < 0) first = i;
    if (i >= coveredEnd) {
      outer.push(i);
      coveredEnd = fl.end[i];
    }
  }
  if (first < 0) return null;
  const callees = trieNode(fl, first);
  const callers = trieNode(fl, first);
  for (const o of outer) {
    add(fl, callers, fl.value[o], fl.cvalue[o], fl.parent[o] === 0);
    let t = callers;
    for (let k = fl.parent[o]; k > 0; k = fl.parent[k]) {
      t = trieChild(fl, t, k);
      add(fl, t, fl.value[o], fl.cvalue[o], fl.parent[k] === 0);
    }
    // merge o's subtree under callees, keeping the path of trie nodes
    add(fl, callees, fl.value[o], fl.cvalue[o], false);
    callees.self += fl.self[o];
    if (fl.diff) callees.compare_self += fl.cself[o];
    const path = [[o, callees]];
    for (let k = o + 1; k < fl.end[o]; k++) {
      while (path[path.length - 1][0] !== fl.parent[k]) path.pop();
      const c = trieChild(fl, path[path.length - 1][1], k);
      c.value += fl.value[k];
      c.self += fl.self[k];
      if (fl.diff) {
        c.compare_value += fl.cvalue[k];
        c.compare_self += fl.cself[k];
      }
      path.push([k, c]);
    }
  }
  return { callers: wrap(fl, callers), callees: wrap(fl, callees) };
}

// ---- the server tree -----------------------------------------------------------

// The node of a server tree at a path of names (null when not there).
export function treeAt(root, names) {
  let at = root;
  for (const name of names) {
    at = (at.children || []).find((c) => c.name === name);
    if (!at) return null;
  }
  return at;
}

// Replaces the children of the node at path in tree (a server tree) with
// those of the same node in a re-queried tree (the "other" node expanded);
// false when the path is in either tree no more.
export function graftChildren(tree, fresh, names) {
  const at = treeAt(tree.root, names);
  const src = treeAt(fresh.root, names);
  if (!at || !src) return false;
  at.children = src.children;
  const fns = tree.functions;
  const id = (f) => `${f.name}\0${f.filename}\0${f.start_line}\0${f.mapping}`;
  const known = new Map(fns.map((f, k) => [id(f), k]));
  const map = new Map();
  const stack = [...at.children];
  while (stack.length) {
    const c = stack.pop();
    if (Number.isInteger(c.function)) {
      let k = map.get(c.function);
      if (k === undefined) {
        const f = fresh.functions[c.function];
        k = known.get(id(f));
        if (k === undefined) {
          k = fns.length;
          fns.push(f);
          known.set(id(f), k);
        }
        map.set(c.function, k);
      }
      c.function = k;
    }
    for (const g of c.children || []) stack.push(g);
  }
  return true;
}

// A regex matching exactly s (the server's filter is anchored).
export function exactRegex(s) {
  return s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}
