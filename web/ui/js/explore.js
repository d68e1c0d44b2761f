// explore.js -- the Explore page (/): profile type, selector with
// autocomplete, time range, metrics chart, flame graph (icicle), top
// table, sandwich, inverted graph, compare, group by, filter, downloads.
// The whole state lives in the URL (lib/url.js); this module reads it,
// loads what it needs and draws.  window.firnUI is the automation API.

import { header, el, api, apiURL, withLoading, onThemeChange, currentTheme, settled } from './common.js';
import { parseState, formatState, dataKey } from './lib/url.js';
import { parseTime, apiTime, inputTime, PRESETS, chooseStep } from './lib/time.js';
import { formatValue, percent, change, formatTime } from './lib/format.js';
import { colorKey, hashColor, diffRatio, diffColor, diffLegend } from './lib/colors.js';
import {
  buildFlame, invertFlame, sandwich, topTable, sortRows, matcher, searchFlame, pathOf, findPath,
  keyOf, functionInfo, graftChildren, KIND_OTHER, KIND_FRAME, KIND_ROOT,
} from './lib/flame.js';
import { splitType, friendlyName, chartExpr } from './lib/types.js';
import { withMetric } from './lib/selector.js';
import { FlameGraph } from './flamegraph.js';
import { MetricsChart, toColumns } from './chart.js';
import { Autocomplete } from './autocomplete.js';

const $ = (id) => document.getElementById(id);
const TABLE_ROWS = 100; // more on demand: building rows is the slow part of a first draw
let tableRows = TABLE_ROWS;

let state = parseState(location.search);
let types = [];
let loadedKey = null; // dataKey of the tree shown
let tree = null; // the server's tree (mutable: "other" nodes get expanded)
let base = null; // buildFlame(tree)
let shown = null; // what the main graph shows (base, or inverted)
let chartKey = null;
let chartStep = 15;
let chartDelta = false;
let nowMs = Date.now();
let pending = Promise.resolve();
let highlightKey = null;
let controller = null;

const helpButton = el('button', { type: 'button', 'aria-label': 'Keyboard shortcuts', title: 'Keyboard shortcuts (?)', onclick: () => $('help').showModal() }, '?');
header('explore', [helpButton]);

// ---- state and history ------------------------------------------------------------

function go(patch, push = true) {
  const next = { ...state, ...patch };
  // expanded "other" frames belong to the data they were expanded in
  if (!('expand' in patch) && dataKey(next) !== dataKey(state)) next.expand = [];
  state = next;
  const q = formatState(state);
  const url = location.pathname + (q ? '?' + q : '');
  if (url !== location.pathname + location.search) {
    if (push) history.pushState(null, '', url);
    else history.replaceState(null, '', url);
  }
  return render();
}

window.addEventListener('popstate', () => {
  state = parseState(location.search);
  render();
});

function currentType() {
  const m = /^\s*([A-Za-z_:][A-Za-z0-9_:]*)/.exec(state.query);
  const id = m ? m[1] : '';
  return types.find((t) => t.id === id) || (id.includes(':') ? splitType(id) : null);
}

function typeName(t) {
  return t ? friendlyName(t) : 'profiles';
}

// [from, to] of side A's chart in ms; throws on a bad time.
function range() {
  const from = parseTime(state.from, nowMs);
  const to = parseTime(state.to, nowMs);
  if (to <= from) throw new Error(`"to" (${state.to}) is not after "from" (${state.from})`);
  return [from, to];
}

// The profile request of the current state (both sides for a compare).
function profileParams() {
  const [from, to] = range();
  const p = { query: state.query };
  if (state.time) p.time = state.time;
  else {
    p.start = state.merge_from || apiTime(from);
    p.end = state.merge_to || apiTime(to);
  }
  if (state.compare) {
    p.compare_query = state.compare_query || state.query;
    p.compare_start = apiTime(state.compare_from ? parseTime(state.compare_from, nowMs) : from);
    p.compare_end = apiTime(state.compare_to ? parseTime(state.compare_to, nowMs) : to);
  }
  if (state.group_by) p.group_by = state.group_by;
  if (state.filter) p.filter = state.filter;
  if (state.max_nodes) p.max_nodes = state.max_nodes;
  return p;
}

// ---- errors and empty states -----------------------------------------------------

function showError(e) {
  const box = $('error');
  if (!e) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  let msg = e.message || String(e);
  const pos = /(?:^|: )(\d+):(\d+): /.exec(msg);
  if (pos && e.status === 400) {
    // the parser's position: point at it under the query
    const col = parseInt(pos[2], 10);
    const line = state.query.split('\n')[parseInt(pos[1], 10) - 1] || '';
    msg = `Bad query: ${msg}\n  ${line}\n  ${' '.repeat(Math.max(0, col - 1))}^`;
    const q = $('query');
    const lines = state.query.split('\n').slice(0, parseInt(pos[1], 10) - 1);
    const at = lines.reduce((n, l) => n + l.length + 1, 0) + col - 1;
    q.setSelectionRange(at, at + 1);
  } else if (e.status) {
    msg = `The server answered ${e.status}${e.type ? ' (' + e.type + ')' : ''}: ${msg}`;
  }
  box.textContent = msg;
  box.hidden = false;
}

function describeRange() {
  if (state.time) return `at ${formatTime(parseFloat(state.time) * 1000)}`;
  try {
    const [from, to] = range();
    const f = state.merge_from ? parseFloat(state.merge_from) * 1000 : from;
    const t = state.merge_to ? parseFloat(state.merge_to) * 1000 : to;
    return `between ${formatTime(f)} and ${formatTime(t)}`;
  } catch {
    return '';
  }
}

function emptyMessage() {
  const t = currentType();
  const brace = state.query.indexOf('{');
  const sel = brace >= 0 ? state.query.slice(brace) : '{}';
  return `No ${typeName(t)} profiles for ${sel} ${describeRange()}. Try a longer time range, another selector, or check the targets page.`;
}

// ---- profile types, query box, time range -----------------------------------------

async function loadTypes() {
  try {
    const list = await api('/api/v1/profile_types');
    types = list.map((t) => ({ ...t, delta: !!t.delta }));
  } catch (e) {
    showError(e);
  }
  const sel = $('ptype');
  sel.textContent = '';
  if (!types.length) sel.append(el('option', { value: '' }, 'no profiles stored yet'));
  const seen = new Map();
  for (const t of types) seen.set(friendlyName(t), (seen.get(friendlyName(t)) || 0) + 1);
  for (const t of types) {
    const name = friendlyName(t);
    sel.append(el('option', { value: t.id, title: t.id }, seen.get(name) > 1 ? `${name} (${t.id})` : name));
  }
}

function defaultQuery() {
  const cpu = types.find((t) => t.name === 'process_cpu' && t.sample_type === 'cpu');
  const t = cpu || types[0];
  return t ? t.id : '';
}

function initControls() {
  const preset = $('preset');
  for (const p of PRESETS) preset.append(el('option', { value: p.from }, p.label));
  preset.append(el('option', { value: '' }, 'Custom'));
  preset.addEventListener('change', () => {
    if (preset.value) go({ from: preset.value, to: 'now', time: '', merge_from: '', merge_to: '', zoom: [] });
  });
  $('ptype').addEventListener('change', (e) => {
    go({ query: withMetric($('query').value, e.target.value), zoom: [], time: '', merge_from: '', merge_to: '', sandwich: '', sum_by: '' });
  });
  $('query-form').addEventListener('submit', (e) => {
    e.preventDefault();
    ac.close();
    go({ query: $('query').value.trim(), from: $('from').value.trim() || 'now-1h', to: $('to').value.trim() || 'now',
      zoom: [], time: '', merge_from: '', merge_to: '' });
  });
  for (const id of ['from', 'to']) {
    $(id).addEventListener('change', () => $('query-form').requestSubmit());
  }
  $('sumby').addEventListener('change', (e) => go({ sum_by: e.target.value }));
  $('compare').addEventListener('change', (e) => go({ compare: e.target.checked, zoom: [] }));
  $('compare-form').addEventListener('submit', (e) => {
    e.preventDefault();
    go({ compare_query: $('bquery').value.trim(), compare_from: $('bfrom').value.trim(), compare_to: $('bto').value.trim(), zoom: [] });
  });
  $('absolute').addEventListener('change', (e) => go({ diff: e.target.checked ? 'absolute' : 'relative' }));
  $('palette').addEventListener('change', (e) => go({ palette: e.target.value }));
  for (const b of document.querySelectorAll('[data-view]')) b.addEventListener('click', () => go({ view: b.dataset.view }));
  $('invert').addEventListener('change', (e) => go({ invert: e.target.checked, zoom: [] }));
  let searchTimer = 0;
  $('search').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => go({ search: $('search').value }, false), 150);
  });
  $('regex').addEventListener('change', (e) => go({ regex: e.target.checked }));
  $('group-by').addEventListener('change', (e) => go({ group_by: e.target.value.trim(), zoom: [] }));
  $('filter').addEventListener('change', (e) => go({ filter: e.target.value.trim(), zoom: [] }));
  $('color-by').addEventListener('change', (e) => go({ color: e.target.value }));
  $('clear-selection').addEventListener('click', () => go({ time: '', merge_from: '', merge_to: '', zoom: [] }));
  $('copy-link').addEventListener('click', copyLink);
}

const ac = new Autocomplete($('query'), $('suggest'), { metrics: () => types.map((t) => t.id) });

async function copyLink() {
  const b = $('copy-link');
  const text = location.href;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // no clipboard API (plain http off localhost): the old way
    const t = el('textarea', { 'aria-hidden': 'true' }, text);
    document.body.append(t);
    t.select();
    document.execCommand('copy');
    t.remove();
  }
  b.textContent = 'Copied';
  setTimeout(() => { b.textContent = 'Copy link'; }, 1500);
}

function syncControls() {
  if (document.activeElement !== $('query')) $('query').value = state.query;
  const t = currentType();
  if (t && [...$('ptype').options].some((o) => o.value === t.id)) $('ptype').value = t.id;
  const preset = PRESETS.find((p) => p.from === state.from && state.to === 'now');
  $('preset').value = preset ? preset.from : '';
  for (const id of ['from', 'to']) {
    const el = $(id);
    el.value = inputTime(state[id]);
    el.classList.toggle('date', el.value.length > 10);   // a whole date, not now-1h
  }
  $('compare').checked = state.compare;
  $('compare-form').hidden = !state.compare;
  $('bquery').value = state.compare_query;
  $('bfrom').value = inputTime(state.compare_from);
  $('bto').value = inputTime(state.compare_to);
  $('absolute').checked = state.diff === 'absolute';
  $('palette').value = state.palette;
  for (const b of document.querySelectorAll('[data-view]')) b.setAttribute('aria-pressed', String(b.dataset.view === state.view));
  $('invert').checked = state.invert;
  if (document.activeElement !== $('search')) $('search').value = state.search;
  $('regex').checked = state.regex;
  $('group-by').value = state.group_by;
  $('filter').value = state.filter;
  $('color-by').value = state.color;
  $('color-by').disabled = state.compare; // a diff is coloured by its change
}

// ---- the metrics chart -------------------------------------------------------------

const chart = new MetricsChart($('chart'), {
  onPoint: (t) => pickPoint(t),
  onRange: (from, to, shift) => go(shift
    // shift+drag: side B's range (a compare)
    ? { compare: true, compare_from: apiTime(from * 1000), compare_to: apiTime(to * 1000), zoom: [] }
    : { time: '', merge_from: apiTime(from * 1000), merge_to: apiTime(to * 1000), zoom: [] }),
});

function pickPoint(t) {
  const mergeStep = { time: '', merge_from: apiTime((t - chartStep) * 1000), merge_to: apiTime(t * 1000), zoom: [] };
  // a delta type's point is the sum over its step: merge that step
  if (chartDelta) return go(mergeStep);
  const p = (async () => {
    // the latest profile at or before the point (its exact time)
    let ts = 0;
    try {
      const d = await api('/api/v1/query', { query: `${state.query}[${chartStep}s]`, time: apiTime(t * 1000) });
      for (const s of d.result || []) for (const [at] of s.values || []) if (at <= t && at > ts) ts = at;
    } catch { /* no range vectors for this query: merge the step instead */ }
    await go(ts ? { time: String(ts), merge_from: '', merge_to: '', zoom: [] } : mergeStep);
  })();
  pending = p; // firnUI.ready() waits for the lookup too
  return p;
}

async function loadChart() {
  const key = JSON.stringify([state.query, state.from, state.to, state.sum_by]);
  if (key === chartKey) return;
  chartKey = key;
  const t = currentType();
  if (!state.query || !t) {
    chart.clear(state.query ? '' : 'Pick a profile type to start.');
    return;
  }
  const [from, to] = range();
  const step = chooseStep(to - from);
  chartStep = step / 1000;
  chartDelta = !!t.delta;
  const query = chartExpr(state.query, t.delta, chartStep, state.sum_by);
  const p = api('/api/v1/query_range', { query, start: apiTime(from), end: apiTime(to), step: chartStep });
  const d = await withLoading($('chart').parentElement, p);
  if (chartKey !== key) return; // a newer chart is on its way
  const cols = toColumns(d.result || [], state.sum_by);
  if (!d.result || !d.result.length) {
    chart.clear(emptyMessage());
    return;
  }
  chart.set(cols, t.sample_unit, t.delta, [from / 1000, to / 1000]);
}

async function loadSumBy() {
  const sel = $('sumby');
  if (sel.dataset.query === state.query) return;
  sel.dataset.query = state.query;
  let names = [];
  try {
    names = await api('/api/v1/labels', { 'match[]': state.query || undefined, limit: 100 });
  } catch { /* the chart's own request reports a bad query */ }
  sel.textContent = '';
  sel.append(el('option', { value: '' }, '(total)'));
  for (const n of names) if (n !== '__name__') sel.append(el('option', { value: n }, n));
  if (state.sum_by && !names.includes(state.sum_by)) sel.append(el('option', { value: state.sum_by }, state.sum_by));
  sel.value = state.sum_by;
}

function syncChartMarks() {
  let band = null;
  if (state.merge_from && state.merge_to) band = [parseFloat(state.merge_from), parseFloat(state.merge_to)];
  let bandB = null;
  if (state.compare && (state.compare_from || state.compare_to)) {
    try {
      const [from, to] = range();
      bandB = [(state.compare_from ? parseTime(state.compare_from, nowMs) : from) / 1000,
        (state.compare_to ? parseTime(state.compare_to, nowMs) : to) / 1000];
    } catch { /* a bad B time is reported by the profile request */ }
  }
  chart.setMarks(band, state.time ? parseFloat(state.time) : null, bandB);
  const has = !!(state.time || state.merge_from);
  $('clear-selection').hidden = !has;
  const b = bandB || (state.compare ? (() => { try { return range().map((t) => t / 1000); } catch { return null; } })() : null);
  $('selection').textContent = (!state.query ? '' : state.time
    ? `Single profile ${describeRange()}`
    : `Merged ${describeRange()}` + (has ? '' : ' (click a point for one profile, drag for a range)'))
    + (b ? ` · B: between ${formatTime(b[0] * 1000)} and ${formatTime(b[1] * 1000)}` : '');
}

// ---- the profile ------------------------------------------------------------------------

async function loadProfile() {
  const key = dataKey(state);
  if (key === loadedKey) return;
  loadedKey = key;
  tableRows = TABLE_ROWS;
  tree = null;
  base = null;
  if (!state.query) return;
  if (controller) controller.abort();
  controller = new AbortController();
  const p = api('/api/v1/profile', profileParams(), { signal: controller.signal });
  tree = await withLoading($('panes'), p);
  base = null;
  // the "other" frames a link had expanded, in the order they were
  for (const path of state.expand) {
    if (loadedKey !== key) return; // a newer load replaced the tree
    try {
      await withLoading($('panes'), graftPath(path.split(';')));
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      showError(e);
    }
  }
}

// Re-queries the stacks through the frame at path (names from the top)
// with four times the node budget the whole graph had, and grafts its
// children in place: what an "other" frame under it stands for.
async function graftPath(path) {
  const fname = path[path.length - 1];
  const withFn = (q) => {
    const b = q.lastIndexOf('}');
    const m = `__function__=${JSON.stringify(fname)}`;
    if (b < 0) return `${q}{${m}}`;
    return q.slice(0, b).trimEnd().endsWith('{') ? `${q.slice(0, b)}${m}}` : `${q.slice(0, b)},${m}}`;
  };
  const params = profileParams();
  params.query = withFn(params.query);
  if (params.compare_query) params.compare_query = withFn(params.compare_query);
  params.max_nodes = String(4 * (parseInt(state.max_nodes || '8192', 10) || 8192));
  const fresh = await api('/api/v1/profile', params);
  if (!graftChildren(tree, fresh, path)) return false;
  base = null;
  return true;
}

// A click on an "other" frame: re-query its parent's stacks (kept in the
// URL's expand list, so a link shows the same), or, under the root or a
// group_by value (no function to filter by), a larger budget for the whole graph.
function expandOther(i) {
  const fl = shown;
  const parent = fl.parent[i];
  if (parent <= 0 || state.invert || fl.kind[parent] !== KIND_FRAME) {
    const n = parseInt(state.max_nodes || '8192', 10) || 8192;
    return go({ max_nodes: String(n * 4) });
  }
  const path = pathOf(fl, parent);
  const p = (async () => {
    try {
      if (!await withLoading($('panes'), graftPath(path))) throw new Error(`"${path.at(-1)}" is no longer in the profile; run the query again`);
    } catch (e) {
      showError(e);
      return;
    }
    await go({ expand: [...state.expand, path.join(';')] });
  })();
  pending = p; // firnUI.ready() waits for the re-query
  return p;
}

// ---- drawing the views ---------------------------------------------------------------

const tooltip = $('tooltip');

function colorFor(fl) {
  const dark = currentTheme() === 'dark';
  if (fl.diff) {
    return (i) => {
      const rel = state.diff !== 'absolute';
      const a = rel ? (fl.total ? fl.value[i] / fl.total : 0) : fl.value[i];
      const b = rel ? (fl.compareTotal ? fl.cvalue[i] / fl.compareTotal : 0) : fl.cvalue[i];
      return diffColor(diffRatio(a, b), state.palette);
    };
  }
  const byKey = new Map(); // colour key -> colour
  const byFn = []; // function index -> colour
  return (i) => {
    const fn = fl.fn[i];
    if (fn >= 0 && byFn[fn]) return byFn[fn];
    const info = functionInfo(fl, i);
    const key = colorKey(fl.name[i], info ? info.mapping : '', state.color);
    let c = byKey.get(key);
    if (!c) byKey.set(key, (c = hashColor(key, dark)));
    if (fn >= 0) byFn[fn] = c;
    return c;
  };
}

function makeGraph(host, opts) {
  const g = new FlameGraph(host, { ...opts, onHover: (i, e) => showTooltip(g, i, e) });
  // one colour function per data set (it caches per function), set with the data
  const set = g.setData.bind(g);
  g.setData = (fl, zoom) => {
    const f = fl ? colorFor(fl) : null;
    g.opts.colorOf = f;
    set(fl, zoom);
  };
  g.recolorAll = () => {
    if (g.fl) g.opts.colorOf = colorFor(g.fl);
    g.recolor();
  };
  return g;
}

const main = makeGraph($('flame-pane'), {
  label: 'Flame graph',
  onClick: (i, e) => {
    const fl = main.fl;
    if (fl.kind[i] === KIND_OTHER) return expandOther(i);
    if (e.shiftKey && fl.kind[i] === KIND_FRAME) return go({ view: 'sandwich', sandwich: fl.name[i] });
    highlightKey = null;
    return go({ zoom: i === 0 ? [] : pathOf(fl, i) });
  },
});
const callers = makeGraph($('callers'), {
  label: 'Callers flame graph', flip: true,
  onClick: (i) => { if (callers.fl.kind[i] === KIND_FRAME) go({ sandwich: callers.fl.name[i] }); },
});
const callees = makeGraph($('callees'), {
  label: 'Callees flame graph',
  onClick: (i) => { if (callees.fl.kind[i] === KIND_FRAME) go({ sandwich: callees.fl.name[i] }); },
});

let tooltipOf = null; // [graph, data, node, zoom] the tooltip describes

function showTooltip(g, i, e) {
  if (i < 0 || !e) {
    tooltip.hidden = true;
    tooltipOf = null;
    return;
  }
  const of = [g, g.fl, i, g.zoom];
  if (!tooltipOf || of.some((x, k) => x !== tooltipOf[k])) {
    describeFrame(g, i);
    tooltipOf = of;
  }
  tooltip.hidden = false;
  const pad = 14;
  const w = tooltip.offsetWidth;
  const h = tooltip.offsetHeight;
  let x = e.clientX + pad;
  let y = e.clientY + pad;
  if (x + w > innerWidth - 4) x = Math.max(4, e.clientX - w - pad);
  if (y + h > innerHeight - 4) y = Math.max(4, e.clientY - h - pad);
  tooltip.style.left = `${x}px`;
  tooltip.style.top = `${y}px`;
}

// The tooltip's content for frame i of graph g.
function describeFrame(g, i) {
  const fl = g.fl;
  const unit = fl.unit;
  const zoom = g.zoom;
  const rows = [];
  const fmt = (v) => formatValue(v, unit);
  if (fl.diff) {
    const rel = state.diff !== 'absolute';
    rows.push(['A total', `${fmt(fl.value[i])} (${percent(fl.value[i], fl.total)})`]);
    rows.push(['B total', `${fmt(fl.cvalue[i])} (${percent(fl.cvalue[i], fl.compareTotal)})`]);
    rows.push(['A self', `${fmt(fl.self[i])} (${percent(fl.self[i], fl.total)})`]);
    rows.push(['B self', `${fmt(fl.cself[i])} (${percent(fl.cself[i], fl.compareTotal)})`]);
    const ch = rel ? change(fl.total ? fl.value[i] / fl.total : 0, fl.compareTotal ? fl.cvalue[i] / fl.compareTotal : 0)
      : change(fl.value[i], fl.cvalue[i]);
    rows.push(['Change', `${ch} ${rel ? '(of each side\'s share)' : '(absolute)'}`]);
  } else {
    const ofZoom = zoom > 0 ? `, ${percent(fl.value[i], fl.value[zoom])} of ${fl.name[zoom]}` : '';
    const whole = g === main ? 'all' : fl.name[0]; // a sandwich's root is its function
    rows.push(['Total', `${fmt(fl.value[i])} (${percent(fl.value[i], fl.value[0])} of ${whole}${ofZoom})`]);
    rows.push(['Self', `${fmt(fl.self[i])} (${percent(fl.self[i], fl.value[0])})`]);
  }
  const info = functionInfo(fl, i);
  if (info && info.filename) rows.push(['File', fileLine(info.filename, info.start_line)]);
  if (info && info.mapping) rows.push(['Binary', info.mapping]);
  if (info && info.system_name && info.system_name !== info.name) rows.push(['System name', info.system_name]);
  const hint = fl.kind[i] === KIND_OTHER ? 'click: re-query what was cut here'
    : fl.kind[i] === KIND_FRAME ? (g === main ? 'click: zoom · shift+click: sandwich' : 'click: sandwich of this function') : 'click: zoom';
  tooltip.replaceChildren(
    el('div', { class: 'tt-name' }, fl.name[i]),
    el('table', {}, el('tbody', {}, rows.map(([k, v]) => el('tr', {}, el('td', {}, k), el('td', {}, v))))),
    el('div', { class: 'hint' }, hint));
}

function renderCrumbs(fl, zoom) {
  const nav = $('crumbs');
  nav.textContent = '';
  if (!fl) return;
  const chain = [];
  for (let k = zoom; k >= 0; k = fl.parent[k]) chain.push(k);
  chain.reverse();
  chain.forEach((k, n) => {
    if (n) nav.append(el('span', { 'aria-hidden': 'true' }, '›'));
    nav.append(el('button', { type: 'button', title: fl.name[k], 'aria-current': k === zoom ? 'true' : null,
      onclick: () => go({ zoom: k === 0 ? [] : pathOf(fl, k) }) }, k === 0 ? 'all' : fl.name[k]));
  });
  if (zoom > 0) {
    nav.append(el('button', { type: 'button', onclick: () => go({ zoom: [] }), title: 'Esc' }, 'Reset zoom'));
    if (fl.kind[zoom] === KIND_FRAME) nav.append(el('button', { type: 'button', onclick: () => go({ view: 'sandwich', sandwich: fl.name[zoom] }) }, 'Sandwich'));
  }
}

// How much of the profile max_nodes cut into "other" nodes, with a way
// to ask for more.
function renderCut(fl) {
  const box = $('cut');
  box.textContent = '';
  if (!fl) return;
  let cut = 0;
  for (let i = 0; i < fl.n; i++) if (fl.kind[i] === KIND_OTHER) cut += fl.value[i] + fl.cvalue[i];
  const whole = fl.value[0] + fl.cvalue[0];
  if (!cut || cut / whole < 0.01) return;
  const n = parseInt(state.max_nodes || '8192', 10) || 8192;
  box.append(`${percent(cut, whole)} of the profile is in "other" frames (the graph keeps the ${n} largest nodes). `,
    el('button', { type: 'button', onclick: () => go({ max_nodes: String(n * 4) }) }, `Load ${n * 4} nodes`),
    ' or click an "other" frame to re-query what it holds.');
}

function renderLegend(fl) {
  const box = $('legend');
  box.textContent = '';
  if (!fl || !fl.n) return;
  if (fl.diff) {
    const rel = state.diff !== 'absolute';
    box.append(el('span', {}, rel ? 'B vs A, each as a share of its total:' : 'B vs A, absolute:'),
      el('span', {}, 'less'),
      el('span', { class: 'ramp', role: 'img', 'aria-label': 'colour scale from less (−100%) to more (+100%)' },
        diffLegend(state.palette).map((s) => el('span', { style: `background:${s.color}`, title: `${Math.round(s.ratio * 100)}%` }))),
      el('span', {}, 'more'),
      el('span', {}, `(−100% … +100%; A total ${formatValue(fl.total, fl.unit)}, B total ${formatValue(fl.compareTotal, fl.unit)})`));
    return;
  }
  const dark = currentTheme() === 'dark';
  const sums = new Map(); // key -> self; keys without self too (in order of appearance)
  for (let i = 0; i < fl.n; i++) {
    if (fl.kind[i] !== KIND_FRAME) continue;
    const info = functionInfo(fl, i);
    const k = colorKey(fl.name[i], info ? info.mapping : '', state.color);
    sums.set(k, (sums.get(k) || 0) + fl.self[i]);
  }
  const top = [...sums].sort((a, b) => b[1] - a[1]).slice(0, 12); // stable: equal selfs keep their order
  box.append(el('span', {}, `Colour by ${state.color}:`));
  for (const [k, v] of top) {
    box.append(el('span', { title: `${k}: ${percent(v, fl.value[0])} of the total is its own (self)` },
      el('span', { class: 'sw', style: `background:${hashColor(k, dark)}` }), v ? `${k} ${percent(v, fl.value[0])}` : k));
  }
}

function fileLine(file, line) {
  return file ? (line > 0 ? `${file}:${line}` : file) : '';
}

let tableOf = { fl: null, rows: null }; // the top table of the graph shown

function renderTable(fl, pred) {
  const pane = $('table-pane');
  pane.textContent = '';
  if (!fl) return;
  if (tableOf.fl !== fl) tableOf = { fl, rows: topTable(fl) };
  let rows = tableOf.rows.slice();
  if (pred) rows = rows.filter((r) => pred(r.name));
  sortRows(rows, state.sort);
  const total = fl.value[0];
  const fmt = (v) => formatValue(v, fl.unit);
  const cols = fl.diff
    ? [['self', 'A self'], ['cself', 'B self'], ['total', 'A total'], ['ctotal', 'B total'], ['diff', 'Change'], ['name', 'Name'], ['file', 'File']]
    : [['self', 'Self'], [null, 'Self %'], ['total', 'Total'], [null, 'Total %'], ['name', 'Name'], ['file', 'File']];
  const field = state.sort.replace(/^-/, '');
  const rev = state.sort.startsWith('-');
  const textField = field === 'name' || field === 'file';
  const head = el('tr', {}, cols.map(([f, label]) => {
    const sorted = f === field;
    const dir = sorted ? ((textField ? !rev : rev) ? 'ascending' : 'descending') : null;
    const cls = f === 'name' || f === 'file' ? f : null;
    if (!f) return el('th', { scope: 'col' }, label);
    return el('th', { scope: 'col', class: cls, 'aria-sort': dir || 'none' },
      el('button', { type: 'button', onclick: () => go({ sort: sorted ? (rev ? f : '-' + f) : f }) }, label));
  }), el('th', { scope: 'col' }, el('span', { class: 'note' }, '')));
  const body = el('tbody');
  const rel = state.diff !== 'absolute';
  for (const r of rows.slice(0, tableRows)) {
    const cells = [];
    if (fl.diff) {
      const ch = rel ? change(fl.total ? r.total / fl.total : 0, fl.compareTotal ? r.ctotal / fl.compareTotal : 0) : change(r.total, r.ctotal);
      const ratio = rel ? diffRatio(fl.total ? r.total / fl.total : 0, fl.compareTotal ? r.ctotal / fl.compareTotal : 0) : diffRatio(r.total, r.ctotal);
      cells.push(el('td', {}, fmt(r.self)), el('td', {}, fmt(r.cself)), el('td', {}, fmt(r.total)), el('td', {}, fmt(r.ctotal)),
        el('td', { class: ratio > 0.005 ? 'more' : ratio < -0.005 ? 'less' : null }, ch));
    } else {
      cells.push(el('td', {}, fmt(r.self)), el('td', {}, percent(r.self, total)), el('td', {}, fmt(r.total)), el('td', {}, percent(r.total, total)));
    }
    cells.push(el('td', { class: 'name', title: r.name }, r.name),
      el('td', { class: 'file', title: fileLine(r.file, r.line) }, fileLine(r.file.slice(r.file.lastIndexOf('/') + 1), r.line)),
      el('td', { class: 'act' }, el('button', { type: 'button', title: `Sandwich of ${r.name}`, 'aria-label': `Sandwich of ${r.name}`,
        onclick: (e) => { e.stopPropagation(); go({ view: 'sandwich', sandwich: r.name }); } }, '⇅')));
    body.append(el('tr', { class: r.key === highlightKey ? 'selected' : null, dataset: { name: r.name },
      onclick: () => {
        highlightKey = r.key;
        const zoom = state.view === 'table' || state.view === 'sandwich' ? state.zoom : pathOf(fl, r.node);
        go({ zoom, view: state.view === 'table' ? 'both' : state.view });
      } }, cells));
  }
  const table = el('table', { class: 'top', 'aria-label': 'Top functions' }, el('thead', {}, head), body);
  pane.append(el('div', { class: 'table-wrap' }, table));
  if (rows.length > tableRows) {
    pane.append(el('div', { class: 'table-note' }, `${tableRows} of ${rows.length} functions shown; search to narrow, or `,
      el('button', { type: 'button', onclick: () => { tableRows = rows.length; renderTable(fl, pred); } }, `show all ${rows.length}`)));
  }
  else if (!rows.length) pane.append(el('div', { class: 'table-note' }, pred ? 'No function matches the search.' : 'No functions.'));
}

function renderSandwich(fl) {
  const name = state.sandwich;
  let key = null;
  if (fl && name) {
    for (let i = 0; i < fl.n; i++) if (fl.kind[i] === KIND_FRAME && fl.name[i] === name) { key = keyOf(fl, i); break; }
  }
  const s = key !== null ? sandwich(fl, key) : null;
  $('callers-title').textContent = s ? `Callers of ${name}` : name ? `"${name}" is not in this profile` : 'Pick a function: shift+click a frame, or ⇅ in the table';
  $('callees-title').textContent = s ? `Callees of ${name}` : '';
  callers.setData(s ? buildFlame(s.callers, { diff: state.diff }) : null);
  callees.setData(s ? buildFlame(s.callees, { diff: state.diff }) : null);
}

async function render() {
  const p = (async () => {
    syncControls();
    showError(null);
    nowMs = Date.now();
    // a link names its type: its data loads while the type list does
    const typesLoaded = types.length ? null : loadTypes();
    if (typesLoaded && !state.query) await typesLoaded;
    if (!state.query && types.length) {
      state.query = defaultQuery();
      history.replaceState(null, '', location.pathname + '?' + formatState(state));
      syncControls();
    }
    try {
      range();
    } catch (e) {
      showError(e);
      return;
    }
    loadSumBy();
    const [chartDone, profileDone] = await Promise.allSettled([loadChart(), loadProfile()]);
    if (typesLoaded) {
      await typesLoaded;
      syncControls();
    }
    if (chartDone.status === 'rejected') {
      chartKey = null;
      chart.clear('');
    }
    if (profileDone.status === 'rejected') loadedKey = null;
    // the profile request's error first: its query is the selector as
    // typed, so a parser's position points into the query box
    const e = profileDone.status === 'rejected' ? profileDone.reason
      : chartDone.status === 'rejected' ? chartDone.reason : null;
    if (e && e.name === 'AbortError') return;
    if (e) showError(e);
    syncChartMarks();
    draw();
  })();
  pending = p;
  return p;
}

function draw() {
  const v = state.view;
  $('panes').className = 'panes' + (v === 'flame' ? ' only-flame' : v === 'table' ? ' only-table' : '');
  $('flame-pane').hidden = v === 'table' || v === 'sandwich';
  $('sandwich-pane').hidden = v !== 'sandwich';
  $('table-pane').hidden = v === 'flame';
  if (!tree) {
    main.setData(null);
    renderCrumbs(null);
    renderLegend(null);
    $('table-pane').textContent = '';
    $('matched').textContent = '';
    for (const a of ['dl-pprof', 'dl-collapsed', 'dl-svg']) $(a).removeAttribute('href');
    if (!state.query) {
      $('flame-pane').replaceChildren(main.scroll, el('div', { class: 'empty' }, types.length
        ? 'Pick a profile type and run a query.'
        : 'firn holds no profiles yet: it stores what it scrapes (see Targets) and what is pushed to /api/v1/ingest.'));
    }
    return;
  }
  if (!base || base.mode !== state.diff) base = buildFlame(tree, { groupBy: !!state.group_by, diff: state.diff });
  if (!state.invert) shown = base;
  else if (!shown || shown.from !== base) {
    shown = buildFlame(invertFlame(base), { diff: state.diff });
    shown.from = base; // rebuilt when base is
  }
  const empty = base.value[0] === 0 && (!base.diff || base.cvalue[0] === 0);
  const pane = $('flame-pane');
  for (const n of [...pane.children]) if (n !== main.scroll) n.remove();
  if (empty) pane.append(el('div', { class: 'empty' }, emptyMessage()));
  const zoom = findPath(shown, state.zoom);
  main.setData(empty ? null : shown, zoom);
  main.recolorAll();
  let pred = null;
  $('matched').textContent = '';
  $('search').removeAttribute('aria-invalid');
  if (state.search) {
    try {
      pred = matcher(state.search, state.regex);
    } catch (e) {
      $('search').setAttribute('aria-invalid', 'true');
      $('matched').textContent = `bad regex: ${e.message}`;
    }
  }
  if (pred && !empty) {
    const r = searchFlame(shown, pred, 0);
    main.setSearch(r.hit);
    const inZoom = zoom > 0 ? searchFlame(shown, pred, zoom) : null;
    $('matched').textContent = `matched ${formatValue(r.matched, shown.unit)} = ${percent(r.matched, r.total)} of total`
      + (inZoom ? `, ${percent(inZoom.matched, inZoom.total)} of ${shown.name[zoom]}` : '');
  }
  if (highlightKey !== null && !empty) {
    const set = new Set();
    for (let i = 0; i < shown.n; i++) if (shown.kind[i] !== KIND_ROOT && keyOf(shown, i) === highlightKey) set.add(i);
    main.setHighlight(set);
  }
  if (zoom > 0) main.reveal(zoom);
  renderCrumbs(empty ? null : shown, zoom);
  renderLegend(empty ? null : shown);
  renderCut(empty ? null : base);
  // the top table is built only where it shows: a flame-only view would pay
  // for every function's row (and its DOM) without showing one
  if (v === 'flame') $('table-pane').textContent = '';
  else renderTable(empty ? null : shown, pred);
  if (v === 'sandwich') renderSandwich(empty ? null : base);
  updateDownloads();
}

function updateDownloads() {
  let p;
  try {
    p = profileParams();
  } catch {
    return;
  }
  delete p.max_nodes;
  const noDiff = { ...p };
  for (const k of ['compare_query', 'compare_start', 'compare_end']) delete noDiff[k];
  const pprof = $('dl-pprof');
  pprof.href = apiURL('/api/v1/profile', { ...noDiff, format: 'pprof' });
  pprof.title = state.compare ? 'pprof holds one profile: side A' : 'open with go tool pprof';
  $('dl-collapsed').href = apiURL('/api/v1/profile', { ...p, format: 'collapsed' });
  $('dl-svg').href = apiURL('/api/v1/profile', { ...p, format: 'svg' });
}

onThemeChange(() => {
  main.readTheme();
  callers.readTheme();
  callees.readTheme();
  for (const g of [main, callers, callees]) g.recolorAll();
  renderLegend(main.fl);
  chartKey = null;
  if (types.length) loadChart().then(syncChartMarks, () => {});
});

// ---- keyboard ---------------------------------------------------------------------------

document.addEventListener('keydown', (e) => {
  const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName);
  if (e.key === 'Escape') {
    if ($('help').open) return; // the dialog closes itself
    if (!tooltip.hidden) tooltip.hidden = true;
    if (typing) {
      if (e.target.id === 'search' && e.target.value) return;
      e.target.blur();
    }
    if (state.zoom.length) go({ zoom: [] });
    highlightKey = null;
    return;
  }
  if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === '/') {
    e.preventDefault();
    $('search').focus();
    $('search').select();
  } else if (e.key === '?') {
    e.preventDefault();
    $('help').showModal();
  }
});

// ---- automation API ------------------------------------------------------------------

function describe(g, i) {
  const fl = g.fl;
  const r = g.rect(i);
  const d = { name: fl.name[i], self: fl.self[i], total: fl.value[i], depth: fl.depth[i], x: r.x, y: r.y, width: r.width, height: r.height };
  if (fl.diff) {
    d.compareSelf = fl.cself[i];
    d.compareTotal = fl.cvalue[i];
  }
  return d;
}

window.firnUI = {
  // resolves once the current view has loaded its data and drawn
  async ready() {
    await settled(() => pending);
    await Promise.all([main.drawn(), callers.drawn(), callees.drawn()]);
  },
  flamegraph: {
    find: (name) => {
      if (!main.fl) return [];
      const out = [];
      for (let i = 0; i < main.fl.n; i++) if (main.fl.name[i] === name) out.push(describe(main, i));
      return out;
    },
    hitTest: (x, y) => {
      const i = main.hitTest(x, y);
      return i < 0 ? null : describe(main, i);
    },
    get canvas() {
      return main.canvas;
    },
    // per-frame draw times (ms) of the main graph, for the benchmark
    drawTimes: () => main.drawTimes.slice(),
  },
  sandwich: { callers: { find: (n) => (callers.fl ? callers.find(n) : []) }, callees: { find: (n) => (callees.fl ? callees.find(n) : []) } },
  state: () => ({ ...state, zoom: [...state.zoom] }),
  // nodes in the main graph
  nodeCount: () => (main.fl ? main.fl.n : 0),
};

initControls();
render();
