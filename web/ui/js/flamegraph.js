// flamegraph.js -- draws a flame graph (lib/flame.js) as an icicle on a
// Canvas 2D the size of its viewport (never as tall as the graph: a
// spacer gives the scroll height, the canvas stays put), with frames under
// a pixel culled, rectangles batched by colour, labels fitted by
// arithmetic on a monospace font, redraws coalesced to one per animation
// frame, and the hovered frame outlined on an overlay canvas so hovering
// never redraws the graph.

import { makeView, nodeRect, hitTest, levelRange, rowOf, KIND_ROOT, KIND_OTHER, KIND_GROUP } from './lib/flame.js';
import { textOn } from './lib/colors.js';

const ROW_H = 20;
const FONT_PX = 12;
const PAD = 4;
const MIN_PX = 1; // narrower frames are not drawn

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// "abcdefgh" in n characters: head…tail (the middle of a name is the least telling).
export function fitText(s, n) {
  if (s.length <= n) return s;
  if (n < 3) return '';
  const tail = Math.ceil((n - 1) / 2);
  return s.slice(0, n - 1 - tail) + '…' + s.slice(s.length - tail);
}

export class FlameGraph {
  // opts: label (accessible name), flip (root at the bottom), colorOf(i),
  // onClick(i, event), onHover(i, event) (-1 when leaving).
  constructor(host, opts = {}) {
    this.opts = opts;
    this.fl = null;
    this.zoom = 0;
    this.hit = null; // search matches (Uint8Array) or null
    this.highlight = null; // Set of node indices to outline, or null
    this.hover = -1;
    this.colors = null;
    this.scroll = document.createElement('div');
    this.scroll.className = 'flame-scroll';
    this.spacer = document.createElement('div');
    this.spacer.className = 'flame-spacer';
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'flame-canvas';
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', opts.label || 'Flame graph');
    this.canvas.tabIndex = 0;
    this.overlay = document.createElement('canvas');
    this.overlay.className = 'overlay';
    this.overlay.setAttribute('aria-hidden', 'true');
    this.spacer.append(this.canvas, this.overlay);
    this.scroll.append(this.spacer);
    host.append(this.scroll);
    this.ctx = this.canvas.getContext('2d', { alpha: false });
    this.octx = this.overlay.getContext('2d');
    this.raf = 0;
    this.drawWaiters = [];
    this.lastDrawMs = 0;
    this.drawTimes = [];
    this.size = null; // the graph canvas's CSS size at the last draw
    // Kept across draws so that a redraw allocates little (less garbage, fewer
    // collector pauses inside a frame): colour -> {a: flat [x, y, w, h, ...], n},
    // emptied when the colours change; and the labels, flat [x, y, text, colour, ...].
    this.batches = new Map();
    this.labels = [];
    this.readTheme();
    this.scroll.addEventListener('scroll', () => {
      this.hoverAt(-1);
      this.schedule();
    }, { passive: true });
    this.canvas.addEventListener('mousemove', (e) => {
      const r = this.canvas.getBoundingClientRect();
      const i = this.hitTest(e.clientX - r.left, e.clientY - r.top);
      this.hoverAt(i);
      if (this.opts.onHover) this.opts.onHover(i, e);
    });
    this.canvas.addEventListener('mouseleave', (e) => {
      this.hoverAt(-1);
      if (this.opts.onHover) this.opts.onHover(-1, e);
    });
    this.canvas.addEventListener('click', (e) => {
      const r = this.canvas.getBoundingClientRect();
      const i = this.hitTest(e.clientX - r.left, e.clientY - r.top);
      if (i >= 0 && this.opts.onClick) this.opts.onClick(i, e);
    });
    this.canvas.addEventListener('keydown', (e) => this.key(e));
    this.canvas.addEventListener('blur', () => {
      this.hoverAt(-1);
      if (this.opts.onHover) this.opts.onHover(-1, null);
    });
    this.resizeObserver = new ResizeObserver(() => this.schedule());
    this.resizeObserver.observe(this.scroll);
  }

  readTheme() {
    this.theme = {
      bg: cssVar('--bg') || '#fff',
      text: cssVar('--flame-text') || '#000',
      muted: cssVar('--flame-muted') || '#ddd',
      mutedText: cssVar('--flame-muted-text') || '#888',
      hover: cssVar('--flame-hover') || '#000',
      group: cssVar('--flame-group') || '#ccc',
      other: cssVar('--flame-other') || '#bbb',
      font: `${FONT_PX}px ${cssVar('--mono') || 'monospace'}`,
    };
    this.charW = 0;
    this.textColors = new Map();
    this.batches = new Map();
    this.schedule();
  }

  setData(fl, zoom = 0) {
    this.fl = fl;
    this.zoom = zoom;
    this.hit = null;
    this.highlight = null;
    this.hover = -1;
    this.colors = null;
    this.batches = new Map();
    this.spacer.style.height = fl ? `${(fl.maxDepth + 1) * ROW_H}px` : '0px';
    this.scroll.hidden = !fl;
    if (this.opts.flip && fl) this.scroll.scrollTop = this.scroll.scrollHeight;
    this.schedule();
  }

  setZoom(i) {
    this.zoom = i;
    this.schedule();
  }

  setSearch(hit) {
    this.hit = hit;
    this.schedule();
  }

  setHighlight(set) {
    this.highlight = set;
    this.schedule();
  }

  recolor() {
    this.colors = null;
    this.batches = new Map();
    this.schedule();
  }

  view() {
    const width = this.scroll.clientWidth || 1;
    return makeView(this.fl, this.zoom, width, { rowH: ROW_H, top: this.scroll.scrollTop, flip: this.opts.flip });
  }

  hitTest(x, y) {
    if (!this.fl) return -1;
    return hitTest(this.fl, this.view(), x, y);
  }

  rect(i) {
    return nodeRect(this.fl, this.view(), i);
  }

  schedule() {
    if (!this.raf) this.raf = requestAnimationFrame(() => this.draw());
  }

  // A promise resolved once the next scheduled draw is done (now when none is).
  drawn() {
    if (!this.raf) return Promise.resolve();
    return new Promise((resolve) => this.drawWaiters.push(resolve));
  }

  // The label colour on a fill: dark or light, whichever reads (cached per fill).
  textColor(fill) {
    let t = this.textColors.get(fill);
    if (!t) this.textColors.set(fill, (t = textOn(fill)));
    return t;
  }

  colorOf(i) {
    if (!this.colors) this.colors = new Array(this.fl.n);
    let c = this.colors[i];
    if (c === undefined) {
      const k = this.fl.kind[i];
      c = k === KIND_ROOT || k === KIND_GROUP ? this.theme.group : k === KIND_OTHER ? this.theme.other : this.opts.colorOf(i);
      this.colors[i] = c;
    }
    return c;
  }

  // Each assignment to a canvas's width or height allocates and clears a
  // new bitmap, so only a dimension that changed is assigned: a window
  // resized in width costs one allocation per redraw, not two.
  sizeCanvas(c, w, h, dpr) {
    const bw = Math.round(w * dpr);
    const bh = Math.round(h * dpr);
    if (c.width !== bw) {
      c.width = bw;
      c.style.width = `${w}px`;
    }
    if (c.height !== bh) {
      c.height = bh;
      c.style.height = `${h}px`;
    }
  }

  draw() {
    this.raf = 0;
    const t0 = performance.now();
    const fl = this.fl;
    const dpr = window.devicePixelRatio || 1;
    const width = this.scroll.clientWidth || 1;
    const contentH = fl ? (fl.maxDepth + 1) * ROW_H : 0;
    const height = Math.max(ROW_H, Math.min(contentH, this.scroll.clientHeight || contentH));
    this.sizeCanvas(this.canvas, width, height, dpr);
    this.size = { width, height };
    const ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = this.theme.bg;
    ctx.fillRect(0, 0, width, height);
    if (fl && fl.n > 0 && fl.width[0] > 0) this.paint(ctx, fl, width, height);
    this.drawOverlay();
    this.lastDrawMs = performance.now() - t0;
    if (this.drawTimes.length < 10000) this.drawTimes.push(this.lastDrawMs);
    const w = this.drawWaiters;
    this.drawWaiters = [];
    for (const f of w) f();
  }

  paint(ctx, fl, width, height) {
    const v = makeView(fl, this.zoom, width, { rowH: ROW_H, top: this.scroll.scrollTop, flip: this.opts.flip });
    const scale = width / (v.x1 - v.x0);
    const zd = fl.depth[v.zoom];
    ctx.font = this.theme.font;
    ctx.textBaseline = 'middle';
    if (!this.charW) this.charW = ctx.measureText('MMMMMMMMMM').width / 10;
    const cw = this.charW;
    const batches = this.batches;
    for (const b of batches.values()) b.n = 0;
    const faded = [];
    const labels = this.labels;
    let nl = 0;
    const firstRow = Math.floor(v.top / ROW_H);
    const lastRow = Math.min(fl.maxDepth, Math.floor((v.top + height) / ROW_H));
    const hit = this.hit;
    for (let row = firstRow; row <= lastRow; row++) {
      const d = v.flip ? fl.maxDepth - row : row;
      if (d < 0 || d > fl.maxDepth) continue;
      const y = row * ROW_H - v.top;
      if (d < zd) {
        // the zoomed frame's ancestor at this depth, faded, across the width
        let a = v.zoom;
        while (fl.depth[a] > d) a = fl.parent[a];
        faded.push(a, y);
        continue;
      }
      const level = fl.levels[d];
      const [s, e] = levelRange(fl, d, v.x0, v.x1);
      for (let k = s; k < e; k++) {
        const i = level[k];
        const w = fl.width[i] * scale;
        if (w < MIN_PX) continue;
        let x = (fl.start[i] - v.x0) * scale;
        let ww = w;
        if (x < 0) {
          ww += x;
          x = 0;
        }
        if (x + ww > width) ww = width - x;
        const muted = hit && !hit[i];
        const color = muted ? this.theme.muted : this.colorOf(i);
        let b = batches.get(color);
        if (!b) batches.set(color, (b = { a: [], n: 0 }));
        const a = b.a;
        a[b.n] = x;
        a[b.n + 1] = y;
        a[b.n + 2] = ww > 2 ? ww - 0.5 : ww;
        a[b.n + 3] = ROW_H - 1;
        b.n += 4;
        if (ww >= cw * 3 + 2 * PAD) {
          labels[nl] = x + PAD;
          labels[nl + 1] = y + ROW_H / 2;
          labels[nl + 2] = fitText(fl.name[i], Math.floor((ww - 2 * PAD) / cw));
          labels[nl + 3] = muted ? this.theme.mutedText : this.textColor(color);
          nl += 4;
        }
      }
    }
    for (const [color, b] of batches) {
      if (!b.n) continue;
      ctx.fillStyle = color;
      const a = b.a;
      for (let k = 0; k < b.n; k += 4) ctx.fillRect(a[k], a[k + 1], a[k + 2], a[k + 3]);
    }
    if (faded.length) {
      ctx.globalAlpha = 0.45;
      for (let k = 0; k < faded.length; k += 2) {
        ctx.fillStyle = this.colorOf(faded[k]);
        ctx.fillRect(0, faded[k + 1], width, ROW_H - 1);
        labels[nl] = PAD;
        labels[nl + 1] = faded[k + 1] + ROW_H / 2;
        labels[nl + 2] = fitText(fl.name[faded[k]], Math.floor((width - 2 * PAD) / cw));
        labels[nl + 3] = this.theme.text;
        nl += 4;
      }
      ctx.globalAlpha = 1;
    }
    let style = '';
    for (let k = 0; k < nl; k += 4) {
      const want = labels[k + 3];
      if (want !== style) ctx.fillStyle = style = want;
      if (labels[k + 2]) ctx.fillText(labels[k + 2], labels[k], labels[k + 1]);
    }
    if (this.highlight) {
      ctx.strokeStyle = this.theme.hover;
      ctx.lineWidth = 2;
      for (const i of this.highlight) {
        const r = nodeRect(fl, v, i);
        if (r.width >= MIN_PX && r.y + ROW_H > 0 && r.y < height && fl.depth[i] >= zd) ctx.strokeRect(r.x + 1, r.y + 1, r.width - 2, ROW_H - 3);
      }
    }
  }

  hoverAt(i) {
    if (i === this.hover) return;
    this.hover = i;
    this.drawOverlay();
  }

  // The overlay holds the hover outline only: the graph's size while a
  // frame is outlined, else empty (0 by 0), so a redraw with nothing
  // hovered (a resize, a zoom, a search) allocates one bitmap, not two.
  drawOverlay() {
    const o = this.overlay;
    const dpr = window.devicePixelRatio || 1;
    if (this.hover < 0 || !this.fl || !this.size) {
      if (o.width || o.height) this.sizeCanvas(o, 0, 0, dpr);
      return;
    }
    this.sizeCanvas(o, this.size.width, this.size.height, dpr);
    o.style.top = `${this.scroll.scrollTop}px`;
    const c = this.octx;
    c.setTransform(1, 0, 0, 1, 0, 0);
    c.clearRect(0, 0, o.width, o.height);
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    const v = this.view();
    const r = nodeRect(this.fl, v, this.hover);
    const above = this.fl.depth[this.hover] < this.fl.depth[v.zoom];
    const x = above ? 0 : Math.max(0, r.x);
    const w = above ? v.width : Math.min(v.width, r.x + r.width) - x;
    c.strokeStyle = this.theme.hover;
    c.lineWidth = 1.5;
    c.strokeRect(x + 0.75, r.y + 0.75, Math.max(1, w - 1.5), ROW_H - 2.5);
  }

  // Keyboard: arrows move between frames (up: the caller, down: the first
  // callee, left/right: the neighbours in the row), Enter acts as a click;
  // the frame is outlined and described as on hover.
  key(e) {
    const fl = this.fl;
    if (!fl) return;
    let i = this.hover >= 0 ? this.hover : this.zoom;
    const down = this.opts.flip ? 'ArrowUp' : 'ArrowDown';
    const up = this.opts.flip ? 'ArrowDown' : 'ArrowUp';
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      if (this.opts.onClick) this.opts.onClick(i, e);
      return;
    }
    if (e.key === up && fl.parent[i] >= 0) i = fl.parent[i];
    else if (e.key === down && i + 1 < fl.end[i]) i += 1;
    else if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
      const level = fl.levels[fl.depth[i]];
      let k = level.indexOf(i) + (e.key === 'ArrowLeft' ? -1 : 1);
      while (k >= 0 && k < level.length && fl.width[level[k]] <= 0) k += e.key === 'ArrowLeft' ? -1 : 1;
      if (k < 0 || k >= level.length) return;
      i = level[k];
    } else return;
    e.preventDefault();
    this.reveal(i);
    this.hoverAt(i);
    if (this.opts.onHover) {
      const c = this.canvas.getBoundingClientRect();
      const r = this.rect(i);
      const x = c.left + Math.min(Math.max(r.x, 0) + 8, c.width - 8);
      this.opts.onHover(i, { clientX: x, clientY: c.top + r.y + r.height });
    }
  }

  // Every node named name: {name, self, total, depth, x, y, width, height}.
  find(name) {
    const fl = this.fl;
    if (!fl) return [];
    const v = this.view();
    const out = [];
    for (let i = 0; i < fl.n; i++) {
      if (fl.name[i] !== name) continue;
      const r = nodeRect(fl, v, i);
      out.push({ name, self: fl.self[i], total: fl.value[i], depth: fl.depth[i], x: r.x, y: r.y, width: r.width, height: r.height });
    }
    return out;
  }

  // Scrolls so node i's row is visible.
  reveal(i) {
    const fl = this.fl;
    const y = rowOf(fl, this.view(), fl.depth[i]) * ROW_H;
    if (y < this.scroll.scrollTop || y + ROW_H > this.scroll.scrollTop + this.scroll.clientHeight) {
      this.scroll.scrollTop = Math.max(0, y - this.scroll.clientHeight / 3);
    }
  }
}
