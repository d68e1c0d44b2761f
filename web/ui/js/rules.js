// rules.js -- the Rules page (/rules): every rule group of /api/v1/rules
// (name, file, interval, last evaluation, evaluation time) and its rules,
// recording and alerting (expression linked to Explore, labels, health,
// last error, last evaluation, evaluation time). The filter lives in the
// URL (?search=).

import { header, el, chips, api, withLoading, ago, settled } from './common.js';
import { ruleGroups, formatDuration, exploreHref } from './lib/rules.js';
import { formatSeconds } from './lib/targets.js';
import { counted } from './lib/format.js';

const $ = (id) => document.getElementById(id);
let data = null;
let pending = Promise.resolve();

header('rules');

function syncURL() {
  const p = new URLSearchParams();
  if ($('filter').value) p.set('search', $('filter').value);
  const url = location.pathname + (p.toString() ? '?' + p : '');
  if (url !== location.pathname + location.search) history.replaceState(null, '', url);
}

// A rule that was never evaluated has the zero time (Go's "0001-01-01").
function evaluated(iso) {
  return Date.parse(iso) > 0;
}

function ruleRow(r) {
  const alerting = r.type === 'alerting';
  return el('tr', {},
    el('td', {},
      el('div', { class: 'rule-name' }, el('span', { class: 'kind' }, alerting ? 'alert' : 'record'), el('span', { class: 'name' }, r.name)),
      el('a', { class: 'expr', href: exploreHref(r.query), title: 'Open in Explore' }, r.query),
      alerting && r.duration ? el('div', { class: 'note' }, `for ${formatDuration(r.duration)}`) : null),
    el('td', {}, chips(r.labels)),
    el('td', {}, el('span', { class: `health ${r.health === 'ok' ? 'up' : r.health === 'err' ? 'down' : 'unknown'}` }, r.health)),
    el('td', { class: 'err' }, r.lastError || ''),
    el('td', { title: r.lastEvaluation }, evaluated(r.lastEvaluation) ? ago(r.lastEvaluation) : 'never'),
    el('td', {}, evaluated(r.lastEvaluation) ? formatSeconds(r.evaluationTime) : ''));
}

function draw() {
  const box = $('groups');
  box.textContent = '';
  if (!data) return;
  const groups = ruleGroups(data, $('filter').value);
  let shown = 0;
  let total = 0;
  for (const g of groups) {
    total += g.total;
    shown += g.rules.length;
    if (!g.rules.length) continue;
    const label = `${g.file} > ${g.name}`;
    const when = evaluated(g.lastEvaluation)
      ? `last evaluated ${ago(g.lastEvaluation)} in ${formatSeconds(g.evaluationTime)}` : 'not evaluated yet';
    box.append(el('section', { class: 'pool', 'aria-label': label },
      el('h2', {}, el('span', { class: 'file' }, g.file), el('span', { class: 'sep' }, '›'), g.name,
        el('span', { class: 'count' }, `every ${formatDuration(g.interval)}`),
        el('span', { class: 'count', title: g.lastEvaluation }, when)),
      el('table', { class: 'targets', 'aria-label': `Rules of ${g.name}` },
        el('thead', {}, el('tr', {}, ['Rule', 'Labels', 'Health', 'Last error', 'Last evaluation', 'Evaluation time']
          .map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, g.rules.map(ruleRow)))));
  }
  $('summary').textContent = `${shown} of ${counted(total, 'rule')} in ${counted(groups.length, 'group')} shown`;
  if (!groups.length) box.append(el('div', { class: 'empty' }, 'No rules are loaded: add rule_files to the config (see README, "Rules and alerting").'));
  else if (!shown) box.append(el('div', { class: 'empty' }, 'No rule matches the filter.'));
}

async function load() {
  const p = (async () => {
    try {
      data = await withLoading($('groups'), api('/api/v1/rules'));
      $('error').hidden = true;
    } catch (e) {
      $('error').textContent = `Loading rules failed: ${e.message}`;
      $('error').hidden = false;
    }
    draw();
  })();
  pending = p;
  return p;
}

$('filter').value = new URLSearchParams(location.search).get('search') || '';
$('filter-form').addEventListener('submit', (e) => e.preventDefault());
$('filter').addEventListener('input', () => { syncURL(); draw(); });
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
