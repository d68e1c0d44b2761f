// alerts.js -- the Alerts page (/alerts): every alerting rule of
// /api/v1/rules grouped by file and group as Prometheus shows them, with
// counts per state (inactive, pending, firing) that double as filters, each
// rule's expression (a link to Explore), for, keep_firing_for, labels,
// annotations and active alerts, each alert with its filled-in annotations.
// The filters live in the URL (?search=&state=firing,pending).

import { header, el, chips, api, withLoading, ago, settled } from './common.js';
import { alertGroups, parseStates, formatDuration, exploreHref, STATES } from './lib/rules.js';
import { counted } from './lib/format.js';

const $ = (id) => document.getElementById(id);
let data = null;
let pending = Promise.resolve();

header('alerts');

function checkedStates() {
  return STATES.filter((s) => $(`state-${s}`).checked);
}

function syncURL() {
  const p = new URLSearchParams();
  if ($('filter').value) p.set('search', $('filter').value);
  const st = checkedStates();
  if (st.length) p.set('state', st.join(','));
  const url = location.pathname + (p.toString() ? '?' + p : '');
  if (url !== location.pathname + location.search) history.replaceState(null, '', url);
}

function stateBadge(s) {
  return el('span', { class: `state ${s}` }, s);
}

// Annotations as name/value pairs in name order (a rule's templates, or an
// alert's filled ones); null when there are none.
function annotationList(annotations, label) {
  const entries = Object.entries(annotations || {});
  if (!entries.length) return null;
  return el('dl', { class: 'annotations', 'aria-label': label },
    entries.sort(([a], [b]) => (a < b ? -1 : 1)).flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

// Each alert instance with its own annotations, filled in by the rule's
// templates for that alert's labels and value (as Prometheus's UI shows them).
function alertsTable(r) {
  if (!(r.alerts || []).length) return null;
  const annotated = r.alerts.some((a) => Object.keys(a.annotations || {}).length);
  const heads = ['Labels', 'State', 'Active since', 'Value', ...(annotated ? ['Annotations'] : [])];
  return el('table', { class: 'targets alerts', 'aria-label': `Active alerts of ${r.name}` },
    el('thead', {}, el('tr', {}, heads.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, r.alerts.map((a) => el('tr', {},
      el('td', {}, chips(a.labels)),
      el('td', {}, stateBadge(a.state)),
      el('td', { title: a.activeAt }, ago(a.activeAt)),
      el('td', { class: 'mono' }, a.value),
      annotated ? el('td', { class: 'annotations' }, annotationList(a.annotations, 'Annotations of this alert')) : null))));
}

function ruleBlock(r) {
  const st = STATES.includes(r.state) ? r.state : 'inactive';
  const n = (r.alerts || []).length;
  const dl = el('dl', { class: 'props' },
    el('dt', {}, 'expr'), el('dd', {}, el('a', { class: 'expr', href: exploreHref(r.query), title: 'Open in Explore' }, r.query)),
    r.duration ? [el('dt', {}, 'for'), el('dd', {}, formatDuration(r.duration))] : null,
    r.keepFiringFor ? [el('dt', {}, 'keep_firing_for'), el('dd', {}, formatDuration(r.keepFiringFor))] : null,
    Object.keys(r.labels || {}).length ? [el('dt', {}, 'labels'), el('dd', {}, chips(r.labels))] : null,
    Object.keys(r.annotations || {}).length ? [el('dt', {}, 'annotations'), el('dd', {}, annotationList(r.annotations))] : null,
    r.lastError ? [el('dt', {}, 'error'), el('dd', { class: 'err' }, r.lastError)] : null);
  return el('details', { class: `rule ${st}`, 'aria-label': r.name, open: st !== 'inactive' },
    el('summary', {}, stateBadge(st), el('span', { class: 'name' }, r.name),
      el('span', { class: 'count' }, `${n} active`)),
    dl, alertsTable(r));
}

function draw() {
  const box = $('groups');
  box.textContent = '';
  if (!data) return;
  const { groups, counts } = alertGroups(data, { text: $('filter').value, states: checkedStates() });
  for (const s of STATES) $(`count-${s}`).textContent = String(counts[s]);
  let shown = 0;
  let total = 0;
  for (const g of groups) {
    total += g.total;
    shown += g.rules.length;
    if (!g.rules.length) continue;
    const label = `${g.file} > ${g.name}`;
    box.append(el('section', { class: 'pool', 'aria-label': label },
      el('h2', {}, el('span', { class: 'file' }, g.file), el('span', { class: 'sep' }, '›'), g.name,
        el('span', { class: 'count' }, STATES.filter((s) => g.counts[s]).map((s) => `${g.counts[s]} ${s}`).join(', '))),
      g.rules.map(ruleBlock)));
  }
  $('summary').textContent = `${shown} of ${counted(total, 'alerting rule')} shown`;
  if (!total) {
    box.append(el('div', { class: 'empty' }, (data.groups || []).length
      ? 'No alerting rules: the loaded rule files hold recording rules only (see Rules).'
      : 'No rules are loaded: add rule_files to the config (see README, "Rules and alerting").'));
  } else if (!shown) box.append(el('div', { class: 'empty' }, 'No alerting rule matches the filter.'));
}

async function load() {
  const p = (async () => {
    try {
      data = await withLoading($('groups'), api('/api/v1/rules', { type: 'alert' }));
      $('error').hidden = true;
    } catch (e) {
      $('error').textContent = `Loading alerting rules failed: ${e.message}`;
      $('error').hidden = false;
    }
    draw();
  })();
  pending = p;
  return p;
}

const params = new URLSearchParams(location.search);
$('filter').value = params.get('search') || '';
for (const s of parseStates(params.get('state'))) $(`state-${s}`).checked = true;
$('filter-form').addEventListener('submit', (e) => e.preventDefault());
$('filter').addEventListener('input', () => { syncURL(); draw(); });
for (const s of STATES) $(`state-${s}`).addEventListener('change', () => { syncURL(); draw(); });
$('refresh').addEventListener('click', load);
document.addEventListener('keydown', (e) => {
  if (e.key === '/' && !/^(INPUT|SELECT|TEXTAREA)$/.test(e.target.tagName)) {
    e.preventDefault();
    $('filter').focus();
  }
});

window.firnUI = {
  // resolves once the rules are loaded and drawn
  ready: () => settled(() => pending),
};

load();
