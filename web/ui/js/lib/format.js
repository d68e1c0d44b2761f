// format.js -- numbers as people read them: profile values by their pprof
// unit (nanoseconds as durations, bytes in binary multiples, counts with SI
// prefixes), rates for the metrics chart (CPU nanoseconds per second as
// cores), percentages.  No DOM.

const DURATIONS = [
  [86400e9, 'd'], [3600e9, 'h'], [60e9, 'min'], [1e9, 's'], [1e6, 'ms'], [1e3, 'µs'], [1, 'ns'],
];
const BYTES = [[2 ** 40, 'TiB'], [2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB']];
const SI = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];

// Three significant digits, without a trailing ".0".
export function num3(v) {
  const a = Math.abs(v);
  let s;
  if (a === 0) s = '0';
  else if (a >= 100) s = v.toFixed(0);
  else if (a >= 10) s = v.toFixed(1);
  else if (a >= 1) s = v.toFixed(2);
  else s = v.toPrecision(3);
  if (s.includes('.') && !s.includes('e')) s = s.replace(/0+$/, '').replace(/\.$/, '');
  return s;
}

function scaled(v, table, unit) {
  const a = Math.abs(v);
  for (const [f, u] of table) if (a >= f) return num3(v / f) + ' ' + u;
  return num3(v) + (unit ? ' ' + unit : '');
}

// The unit family of a pprof sample unit.
export function unitKind(unit) {
  const u = (unit || '').toLowerCase();
  if (u === 'nanoseconds' || u === 'ns') return 'ns';
  if (u === 'microseconds') return 'us';
  if (u === 'milliseconds') return 'ms';
  if (u === 'seconds' || u === 's') return 's';
  if (u === 'bytes' || u === 'byte') return 'bytes';
  return 'count';
}

const TO_NS = { ns: 1, us: 1e3, ms: 1e6, s: 1e9 };

// A profile value (a node's total, a table cell) in its unit.
export function formatValue(v, unit) {
  const k = unitKind(unit);
  if (k in TO_NS) return v === 0 ? '0 s' : scaled(v * TO_NS[k], DURATIONS, 'ns');
  if (k === 'bytes') return scaled(v, BYTES, 'B');
  const u = (unit || '').toLowerCase();
  const name = u && u !== 'count' ? ' ' + u : '';
  return scaled(v, SI, '').trim() + name;
}

// A per-second rate of a profile unit, as the metrics chart shows it:
// time per second is cores, bytes per second, counts per second.
export function formatRate(v, unit) {
  const k = unitKind(unit);
  if (k in TO_NS) {
    const cores = num3((v * TO_NS[k]) / 1e9);
    return cores + (cores === '1' ? ' core' : ' cores');
  }
  if (k === 'bytes') return scaled(v, BYTES, 'B') + '/s';
  return scaled(v, SI, '').trim() + '/s';
}

export function percent(part, whole) {
  if (!whole) return '0%';
  const p = (100 * part) / whole;
  if (p !== 0 && Math.abs(p) < 0.01) return (p < 0 ? '-' : '') + '<0.01%';
  return (Math.abs(p) >= 10 ? p.toFixed(1) : p.toFixed(2)) + '%';
}

// A count with its noun: "1 rule", "3 rules" (many: the plural when not noun + "s").
export function counted(n, noun, many = `${noun}s`) {
  return `${n} ${n === 1 ? noun : many}`;
}

// A change as "+12.5%" / "-3.1%" / "new" / "gone".
export function change(before, after) {
  if (before === 0 && after === 0) return '0%';
  if (before === 0) return 'new';
  if (after === 0) return 'gone';
  const p = (100 * (after - before)) / before;
  return (p > 0 ? '+' : '') + (Math.abs(p) >= 10 ? p.toFixed(1) : p.toFixed(2)) + '%';
}

// A Unix time in milliseconds as "2026-12-07 02:30:00 UTC".
export function formatTime(ms) {
  if (!Number.isFinite(ms)) return '';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}
