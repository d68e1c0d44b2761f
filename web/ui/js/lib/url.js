// url.js -- the Explore page's whole state as URL query parameters and
// back: only values that differ from the defaults are written, so links
// stay short, and reading a link gives back exactly the state that wrote
// it.  No DOM (URLSearchParams is in node too).

export const DEFAULTS = Object.freeze({
  query: '',
  from: 'now-1h',
  to: 'now',
  time: '', // the single profile at this time (from a chart click)
  merge_from: '', // a sub-range of the chart (a drag), Unix seconds
  merge_to: '',
  view: 'both', // both | flame | table | sandwich
  invert: false,
  zoom: [], // names from the root's child to the zoomed frame
  search: '',
  regex: false,
  sort: 'total',
  sandwich: '', // function name
  compare: false,
  compare_query: '', // B; empty: A's
  compare_from: '',
  compare_to: '',
  diff: 'relative', // relative | absolute
  palette: 'default', // default | cb (colour-blind safe)
  group_by: '',
  filter: '',
  sum_by: '',
  color: 'package', // package | binary
  max_nodes: '',
  expand: [], // "other" frames re-queried: their parents' paths (';'-joined), repeated
});
const LISTS = ['expand']; // repeated parameters

const VIEWS = ['both', 'flame', 'table', 'sandwich'];
const ZOOM_SEP = ';'; // as in collapsed stacks

export function defaultState() {
  return { ...DEFAULTS, zoom: [], expand: [] };
}

// State from a query string (or URLSearchParams); unknown parameters and
// bad values fall back to the defaults.
export function parseState(search) {
  const p = search instanceof URLSearchParams ? search : new URLSearchParams(search);
  const s = defaultState();
  for (const key of Object.keys(DEFAULTS)) {
    if (!p.has(key)) continue;
    if (LISTS.includes(key)) {
      s[key] = p.getAll(key).filter(Boolean);
      continue;
    }
    const v = p.get(key);
    const d = DEFAULTS[key];
    if (typeof d === 'boolean') s[key] = v === '1' || v === 'true';
    else if (Array.isArray(d)) s[key] = v === '' ? [] : v.split(ZOOM_SEP);
    else s[key] = v;
  }
  if (!VIEWS.includes(s.view)) s.view = DEFAULTS.view;
  if (s.diff !== 'absolute') s.diff = 'relative';
  if (s.palette !== 'cb') s.palette = 'default';
  if (s.color !== 'binary') s.color = 'package';
  return s;
}

// The query string of a state (without "?"), default values left out.
export function formatState(s) {
  const p = new URLSearchParams();
  for (const key of Object.keys(DEFAULTS)) {
    const v = s[key];
    const d = DEFAULTS[key];
    if (LISTS.includes(key)) {
      for (const x of v || []) p.append(key, x);
    } else if (typeof d === 'boolean') {
      if (v) p.set(key, '1');
    } else if (Array.isArray(d)) {
      if (v && v.length) p.set(key, v.join(ZOOM_SEP));
    } else if (v !== undefined && v !== null && String(v) !== d) {
      p.set(key, String(v));
    }
  }
  return p.toString();
}

// Whether two states would load different data from the server (as
// opposed to showing the same data differently).
export function dataKey(s) {
  return JSON.stringify([s.query, s.from, s.to, s.time, s.merge_from, s.merge_to, s.compare,
    s.compare_query, s.compare_from, s.compare_to, s.group_by, s.filter, s.max_nodes]);
}
