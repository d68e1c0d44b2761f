// targets.js -- the Targets page (/targets): every scrape pool and its
// targets as Prometheus shows them (endpoint, health, labels, discovered
// labels on demand, last scrape, duration, last error), filterable; the
// filter lives in the URL (?search=&health=).

import { header, el, chips, api, withLoading, ago, settled } from './common.js';
import { groupTargets, formatSeconds } from './lib/targets.js';
import { counted } from './lib/format.js';

const $ = (id) => document.getElementById(id);
let data = null;
let pending = Promise.resolve();

header('targets');

function params() {
  return new URLSearchParams(location.search);
}

function syncURL() {
  const p = new URLSearchParams();
  if ($('filter').value) p.set('search', $('filter').value);
  if ($('health').value) p.set('health', $('health').value);
  if ($('unhealthy-pools').checked) p.set('unhealthy', '1');
  const url = location.pathname + (p.toString() ? '?' + p : '');
  if (url !== location.pathname + location.search) history.replaceState(null, '', url);
}

function targetRow(t) {
  const discovered = el('div', { class: 'discovered', hidden: true }, chips(t.discoveredLabels));
  const toggle = el('button', { type: 'button', 'aria-expanded': 'false', onclick: () => {
    discovered.hidden = !discovered.hidden;
    toggle.setAttribute('aria-expanded', String(!discovered.hidden));
    toggle.textContent = discovered.hidden ? 'show discovered labels' : 'hide discovered labels';
  } }, 'show discovered labels');
  return el('tr', {},
    // a link only to what a browser should open (the URL comes from discovery)
    el('td', {}, /^https?:\/\//i.test(t.scrapeUrl) ? el('a', { href: t.scrapeUrl, rel: 'noreferrer' }, t.scrapeUrl) : t.scrapeUrl),
    el('td', {}, el('span', { class: `health ${t.health}` }, t.health)),
    el('td', {}, chips(t.labels), el('div', { class: 'discovered' }, toggle), discovered),
    el('td', { title: t.lastScrape }, ago(t.lastScrape)),
    el('td', {}, formatSeconds(t.lastScrapeDuration)),
    el('td', { class: 'err' }, t.lastError || ''));
}

function draw() {
  const box = $('pools');
  box.textContent = '';
  if (!data) return;
  const pools = groupTargets(data, $('filter').value, $('health').value)
    .filter((p) => !$('unhealthy-pools').checked || p.up < p.total);
  let shown = 0;
  let total = 0;
  for (const p of pools) {
    total += p.total;
    shown += p.targets.length;
    if (!p.targets.length) continue;
    const table = el('table', { class: 'targets', 'aria-label': `Targets of ${p.name}` },
      el('thead', {}, el('tr', {}, ['Endpoint', 'Health', 'Labels', 'Last scrape', 'Duration', 'Last error'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, p.targets.map(targetRow)));
    box.append(el('section', { class: 'pool', 'aria-label': p.name },
      el('h2', {}, p.name, el('span', { class: 'count' }, `${p.up}/${p.total} up`)), table));
  }
  const dropped = (data.droppedTargets || []).length;
  $('summary').textContent = `${shown} of ${counted(total, 'target')} shown` + (dropped ? `; ${dropped} dropped by relabeling` : '');
  if (!total) box.append(el('div', { class: 'empty' }, 'No targets: firn scrapes what its configuration (--config.file) lists; pushed profiles have no targets.'));
  else if (!shown) box.append(el('div', { class: 'empty' }, 'No target matches the filter.'));
  if (dropped) {
    const list = el('table', { class: 'targets', 'aria-label': 'Dropped targets' },
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Discovered labels'))),
      el('tbody', {}, data.droppedTargets.map((t) => el('tr', {}, el('td', {}, chips(t.discoveredLabels))))));
    box.append(el('details', { class: 'pool' }, el('summary', {}, `Dropped targets (${dropped})`), list));
  }
}

async function load() {
  const p = (async () => {
    try {
      data = await withLoading($('pools'), api('/api/v1/targets', { state: 'any' }));
      $('error').hidden = true;
    } catch (e) {
      $('error').textContent = `Loading targets failed: ${e.message}`;
      $('error').hidden = false;
    }
    draw();
  })();
  pending = p;
  return p;
}

$('filter').value = params().get('search') || '';
$('health').value = params().get('health') || '';
$('unhealthy-pools').checked = params().get('unhealthy') === '1';
$('filter-form').addEventListener('submit', (e) => e.preventDefault());
for (const id of ['filter', 'health', 'unhealthy-pools']) {
  $(id).addEventListener(id === 'filter' ? 'input' : 'change', () => {
    syncURL();
    draw();
  });
}
$('refresh').addEventListener('click', load);
document.addEventListener('keydown', (e) => {
  if (e.key === '/' && !/^(INPUT|SELECT|TEXTAREA)$/.test(e.target.tagName)) {
    e.preventDefault();
    $('filter').focus();
  }
});

window.firnUI = {
  // resolves once the targets are loaded and drawn
  ready: () => settled(() => pending),
};

load();
