// time.js -- time-range parameters: "now", "now-1h", Unix seconds (with
// decimals) and RFC3339, as the URL and the absolute range inputs take
// them; Prometheus durations ("15m", "1h30m").  No DOM.

const UNIT_MS = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3, y: 365 * 86400e3 };

// A Prometheus duration in milliseconds, or NaN.
export function parseDuration(s) {
  const str = String(s).trim();
  if (!str) return NaN;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/y;
  let total = 0;
  let at = 0;
  while (at < str.length) {
    re.lastIndex = at;
    const m = re.exec(str);
    if (!m) return NaN;
    total += parseFloat(m[1]) * UNIT_MS[m[2]];
    at = re.lastIndex;
  }
  return total;
}

// A time parameter in Unix milliseconds relative to nowMs; throws an Error
// naming what is wrong.
export function parseTime(s, nowMs) {
  const str = String(s ?? '').trim();
  if (str === '') throw new Error('empty time');
  if (str === 'now') return nowMs;
  const rel = /^now\s*([+-])\s*(.+)$/.exec(str);
  if (rel) {
    const d = parseDuration(rel[2]);
    if (Number.isNaN(d)) throw new Error(`bad duration "${rel[2]}" in "${str}" (write e.g. now-1h, now-15m, now-7d)`);
    return rel[1] === '-' ? nowMs - d : nowMs + d;
  }
  if (/^-?\d+(\.\d+)?$/.test(str)) return Math.round(parseFloat(str) * 1000);
  if (/^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?)?$/i.test(str)) {
    const iso = str.replace(' ', 'T');
    const ms = Date.parse(/T.*(Z|[+-]\d\d:?\d\d)$/i.test(iso) || !iso.includes('T') ? iso : iso + 'Z');
    if (!Number.isNaN(ms)) return ms;
  }
  throw new Error(`bad time "${str}": want now, now-1h, Unix seconds or RFC3339`);
}

// A time parameter as the range inputs show it: Unix seconds (what a
// selection on the chart or a link puts in the URL) become a UTC date a
// person reads, in a form parseTime takes back to the same instant; every
// other form (now-1h, RFC3339) is shown as written.
export function inputTime(s) {
  const str = String(s ?? '').trim();
  if (!/^-?\d+(\.\d+)?$/.test(str)) return str;
  const ms = Math.round(parseFloat(str) * 1000);
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return str;
  const iso = d.toISOString(); // 2026-12-07T14:05:00.250Z
  return `${iso.slice(0, 10)} ${ms % 1000 ? iso.slice(11, 23) : iso.slice(11, 19)}Z`;
}

// A time for the server (Unix seconds, three decimals at most).
export function apiTime(ms) {
  return String(Math.round(ms) / 1000);
}

export const PRESETS = [
  { label: 'Last 5 minutes', from: 'now-5m' },
  { label: 'Last 15 minutes', from: 'now-15m' },
  { label: 'Last 1 hour', from: 'now-1h' },
  { label: 'Last 6 hours', from: 'now-6h' },
  { label: 'Last 24 hours', from: 'now-24h' },
  { label: 'Last 7 days', from: 'now-7d' },
];

// The chart's step for a range: about 240 points, whole seconds, at least
// 10 s (a scrape interval).
export function chooseStep(rangeMs) {
  const raw = Math.max(10e3, rangeMs / 240);
  const nice = [10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 21600e3, 43200e3, 86400e3];
  for (const n of nice) if (n >= raw) return n;
  return Math.ceil(raw / 86400e3) * 86400e3;
}
