// colors.js -- frame colours: a stable colour per package or binary (a
// hash of its name, so a package keeps its colour across views and
// reloads), and diverging colours for a diff, with a colour-blind-safe
// palette.  No DOM.

// FNV-1a, 32 bits.
export function hash32(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

// The package of a function name: C++/Rust "a::b::f" -> "a"; Go
// "github.com/x/y.(*T).M" -> "github.com/x/y"; Java/Python "a.b.C.m" ->
// "a"; otherwise "" (colour by binary then).
export function packageOf(name) {
  if (!name) return '';
  let s = name.replace(/^[<(\[]+/, '');
  if (s.startsWith('&')) s = s.slice(1);
  const colons = s.indexOf('::');
  const paren = s.indexOf('(');
  if (colons > 0 && (paren < 0 || colons < paren)) {
    const sp = s.lastIndexOf(' ', colons);
    return s.slice(sp + 1, colons);
  }
  const slash = s.lastIndexOf('/', paren < 0 ? s.length : paren);
  const dot = s.indexOf('.', slash + 1);
  if (dot > 0 && (paren < 0 || dot < paren)) return s.slice(0, dot);
  return '';
}

// The basename of a mapping ("/usr/lib/libc.so.6" -> "libc.so.6").
export function binaryOf(mapping) {
  if (!mapping) return '';
  const i = mapping.lastIndexOf('/');
  return i >= 0 ? mapping.slice(i + 1) : mapping;
}

// The colour key of a frame: its package, else its binary, else its name.
export function colorKey(name, mapping, by = 'package') {
  if (by === 'binary') return binaryOf(mapping) || packageOf(name) || name;
  return packageOf(name) || binaryOf(mapping) || name;
}

// A stable colour per key, "hsl(...)": hue from the hash, a little
// saturation and lightness jitter so neighbours differ; darker in the dark theme.
export function hashColor(key, dark = false) {
  const h = hash32(key);
  const hue = h % 360;
  const sat = 45 + ((h >>> 9) % 20);
  const light = dark ? 30 + ((h >>> 17) % 10) : 68 + ((h >>> 17) % 10);
  return `hsl(${hue} ${sat}% ${light}%)`;
}

// Diverging palettes: less, neutral, more (RGB).
export const PALETTES = {
  // blue (less) - grey - red (more)
  default: { less: [40, 110, 220], neutral: [160, 160, 160], more: [215, 48, 39] },
  // purple (less) - grey - orange (more): PuOr, readable with every common
  // colour-vision deficiency (no red/green axis)
  cb: { less: [94, 60, 153], neutral: [160, 160, 160], more: [230, 97, 1] },
};

const STEPS = 10; // per side: colours are quantized so a draw batches by colour

// The signed change of a frame in [-1, 1]: (after - before) / before,
// clamped; a frame only in "after" is +1, only in "before" -1.  In a
// relative diff before and after are each side's share of its total.
export function diffRatio(before, after) {
  if (before === after) return 0;
  if (before <= 0) return after > 0 ? 1 : 0;
  return Math.max(-1, Math.min(1, (after - before) / before));
}

// The colour of a ratio from diffRatio, as "rgb(r g b)".
export function diffColor(ratio, palette = 'default') {
  const p = PALETTES[palette] || PALETTES.default;
  const q = Math.round(Math.max(-1, Math.min(1, ratio)) * STEPS) / STEPS;
  const end = q < 0 ? p.less : p.more;
  const t = Math.abs(q);
  const c = p.neutral.map((n, i) => Math.round(n + (end[i] - n) * t));
  return `rgb(${c[0]} ${c[1]} ${c[2]})`;
}

// The legend's stops, from -100% to +100%.
export function diffLegend(palette = 'default') {
  const stops = [];
  for (let i = -STEPS; i <= STEPS; i += 2) stops.push({ ratio: i / STEPS, color: diffColor(i / STEPS, palette) });
  return stops;
}

// Dark or light text for a fill colour ("rgb(r g b)", "hsl(h s% l%)" or
// "#rrggbb"): whichever contrasts more with its relative luminance.
export function textOn(color) {
  let rgb = null;
  const hex = /^#([0-9a-f]{6})$/i.exec(color);
  const m = /^(rgb|hsl)\(\s*([\d.]+)[\s,]+([\d.]+)%?[\s,]+([\d.]+)%?/.exec(color);
  if (hex) rgb = [0, 2, 4].map((k) => parseInt(hex[1].slice(k, k + 2), 16));
  else if (m && m[1] === 'rgb') rgb = [m[2], m[3], m[4]].map(Number);
  else if (m) {
    const h = Number(m[2]);
    const sat = Number(m[3]) / 100;
    const l = Number(m[4]) / 100;
    const a = sat * Math.min(l, 1 - l);
    const f = (n) => {
      const k = (n + h / 30) % 12;
      return 255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1)));
    };
    rgb = [f(0), f(8), f(4)];
  }
  if (!rgb) return '#111111';
  const lin = rgb.map((v) => {
    const c = v / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  const lum = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
  // contrast with near-black (lum 0.006) vs near-white (0.91)
  return (lum + 0.05) / 0.056 >= 0.96 / (lum + 0.05) ? '#111111' : '#f5f5f5';
}
