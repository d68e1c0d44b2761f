// rules.js -- /api/v1/rules as the Alerts and Rules pages show it:
// groups in file/name order, alert state counts, filtering, durations.
// No DOM.

export const STATES = Object.freeze(['inactive', 'pending', 'firing']);

function labelText(labels) {
  return Object.entries(labels || {}).map(([k, v]) => `${k}="${v}"`).join(' ');
}

// The text a filter looks in: name, expression, labels, annotations, the
// labels of the rule's alerts, and its last error.
function haystack(r) {
  const alerts = (r.alerts || []).map((a) => labelText(a.labels)).join(' ');
  return `${r.name || ''} ${r.query || ''} ${labelText(r.labels)} ${labelText(r.annotations)} ${alerts} ` +
    `${r.lastError || ''}`;
}

function matcher(text) {
  const words = String(text || '').toLowerCase().split(/\s+/).filter(Boolean);
  return (r) => {
    const h = haystack(r).toLowerCase();
    return words.every((w) => h.includes(w));
  };
}

// Groups of alerting rules, each {name, file, rules, counts}, and counts
// over every alerting rule: {inactive, pending, firing}. A rule is kept
// when its state is in states (all when states is empty) and it contains
// every word of text. Counts ignore the filters, as Prometheus's do.
export function alertGroups(data, { text = '', states = [] } = {}) {
  const match = matcher(text);
  const counts = { inactive: 0, pending: 0, firing: 0 };
  const groups = [];
  for (const g of (data && data.groups) || []) {
    const out = { name: g.name, file: g.file, rules: [], counts: { inactive: 0, pending: 0, firing: 0 }, total: 0 };
    for (const r of g.rules || []) {
      if (r.type !== 'alerting') continue;
      const st = STATES.includes(r.state) ? r.state : 'inactive';
      counts[st]++;
      out.counts[st]++;
      out.total++;
      if (states.length && !states.includes(st)) continue;
      if (match(r)) out.rules.push(r);
    }
    if (out.total) groups.push(out);
  }
  return { groups, counts };
}

// Every group with its rules of both kinds, each rule kept when it
// contains every word of text; a group whose name or file matches keeps
// all its rules.
export function ruleGroups(data, text = '') {
  const match = matcher(text);
  return ((data && data.groups) || []).map((g) => {
    const whole = match({ name: `${g.name} ${g.file}` });
    return { ...g, total: (g.rules || []).length, rules: (g.rules || []).filter((r) => whole || match(r)) };
  });
}

// States as the URL keeps them: "firing,pending" <-> ['pending', 'firing']
// (unknown words dropped, order canonical).
export function parseStates(s) {
  const want = String(s || '').split(',');
  return STATES.filter((x) => want.includes(x));
}

// Seconds as Prometheus's model.Duration prints them: "0s", "30s",
// "1m30s", "1h", "2d", "1w"; fractions of a second as "250ms".
export function formatDuration(sec) {
  if (!Number.isFinite(sec) || sec < 0) return '';
  let ms = Math.round(sec * 1000);
  if (ms === 0) return '0s';
  const units = [['y', 365 * 86400000], ['w', 7 * 86400000], ['d', 86400000], ['h', 3600000], ['m', 60000],
    ['s', 1000], ['ms', 1]];
  let out = '';
  for (const [u, n] of units) {
    if (ms >= n) {
      out += `${Math.floor(ms / n)}${u}`;
      ms %= n;
    }
  }
  return out;
}

// The Explore page's address for a query.
export function exploreHref(query) {
  return '/?' + new URLSearchParams({ query: query || '' });
}
