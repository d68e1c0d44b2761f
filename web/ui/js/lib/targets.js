// targets.js -- /api/v1/targets grouped by scrape pool and filtered as
// the Targets page shows it.  No DOM.

// The text a filter looks in: endpoint, labels, error.
function haystack(t) {
  const labels = Object.entries(t.labels || {}).map(([k, v]) => `${k}="${v}"`).join(' ');
  return `${t.scrapeUrl || ''} ${labels} ${t.lastError || ''}`.toLowerCase();
}

// Pools in name order, each {name, targets, up, total}; a target is kept
// when it contains every word of text and has the health asked for.
export function groupTargets(data, text = '', health = '') {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  const pools = new Map();
  for (const t of data.activeTargets || []) {
    const name = t.scrapePool || '';
    if (!pools.has(name)) pools.set(name, { name, targets: [], up: 0, total: 0 });
    const p = pools.get(name);
    p.total++;
    if (t.health === 'up') p.up++;
    if (health && t.health !== health) continue;
    const h = haystack(t);
    if (words.every((w) => h.includes(w))) p.targets.push(t);
  }
  const out = [...pools.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const p of out) p.targets.sort((a, b) => (a.scrapeUrl < b.scrapeUrl ? -1 : a.scrapeUrl > b.scrapeUrl ? 1 : 0));
  return out;
}

// Seconds as "4 ms", "1.2 s".
export function formatSeconds(s) {
  if (!Number.isFinite(s)) return '';
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  return `${s.toFixed(s < 10 ? 2 : 1)} s`;
}
