// chart.js -- the metrics chart (uPlot) of a query_range answer: one line
// per series, a legend, the merged range shaded; click a point = that
// time, drag = a range.

import uPlot from '../vendor/uplot/uPlot.esm.js';
import { formatRate, formatValue, formatTime } from './lib/format.js';
import { hashColor } from './lib/colors.js';

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function seriesLabel(metric, sumBy) {
  if (!sumBy) return 'total';
  return sumBy.split(',').map((k) => metric[k.trim()] ?? '').join(', ') || '(none)';
}

// The uPlot data of a matrix: shared timestamps (seconds), one array per series.
export function toColumns(result, sumBy) {
  const times = new Set();
  for (const s of result) for (const [t] of s.values) times.add(t);
  const xs = [...times].sort((a, b) => a - b);
  const at = new Map(xs.map((t, i) => [t, i]));
  const cols = [xs];
  const labels = [];
  for (const s of result) {
    const col = new Array(xs.length).fill(null);
    for (const [t, v] of s.values) col[at.get(t)] = parseFloat(v);
    cols.push(col);
    labels.push(seriesLabel(s.metric || {}, sumBy));
  }
  return { cols, labels };
}

export class MetricsChart {
  // opts: onPoint(tSeconds), onRange(fromSeconds, toSeconds, shiftKey)
  constructor(host, opts) {
    this.host = host;
    this.opts = opts;
    this.plot = null;
    this.band = null; // [from, to] seconds shaded
    this.bandB = null; // side B's range, shaded apart
    this.mark = null; // a time (seconds) marked with a line
    this.dragged = false;
    this.shift = false; // whether the drag began with Shift held
    this.resizeObserver = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize({ width: this.width(), height: this.plot.height });
    });
    this.resizeObserver.observe(host);
  }

  width() {
    return Math.max(200, this.host.clientWidth - 4);
  }

  // data: {cols, labels}; unit and delta pick the value format; range [from, to] seconds.
  set(data, unit, delta, range) {
    if (this.plot) this.plot.destroy();
    this.plot = null;
    this.host.textContent = '';
    const fmt = (v) => (v == null ? '–' : delta ? formatRate(v, unit) : formatValue(v, unit));
    const axis = cssVar('--fg-soft');
    const grid = cssVar('--chart-grid');
    const dark = document.documentElement.dataset.theme === 'dark';
    const series = [{ value: (u, t) => (t == null ? '' : formatTime(t * 1000)) }];
    data.labels.forEach((label, k) => {
      const color = data.labels.length === 1 ? cssVar('--accent') : hashColor(label + k, false).replace(/(\d+)%\)$/, dark ? '65%)' : '45%)');
      series.push({ label, stroke: color, width: 1.5, fill: data.labels.length === 1 ? color + '22' : undefined, value: (u, v) => fmt(v), points: { size: 5 } });
    });
    const self = this;
    const opts = {
      width: this.width(),
      height: 180,
      series,
      scales: { x: { time: true, range: range ? () => range : undefined } },
      axes: [
        { stroke: axis, grid: { stroke: grid }, ticks: { stroke: grid } },
        { stroke: axis, grid: { stroke: grid }, ticks: { stroke: grid }, size: 80, values: (u, vals) => vals.map(fmt) },
      ],
      cursor: { drag: { x: true, y: false, setScale: false } },
      legend: { show: data.labels.length > 0, live: true },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 2) return;
          const from = u.posToVal(u.select.left, 'x');
          const to = u.posToVal(u.select.left + u.select.width, 'x');
          self.dragged = true;
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          self.opts.onRange(from, to, self.shift);
        }],
        draw: [(u) => self.drawMarks(u)],
      },
    };
    this.plot = new uPlot(opts, data.cols, this.host);
    this.plot.over.setAttribute('aria-label', 'Metrics chart: click a point for that profile, drag for a range');
    this.plot.over.setAttribute('role', 'img');
    this.plot.over.addEventListener('mousedown', (e) => { this.shift = e.shiftKey; });
    this.plot.over.addEventListener('click', () => {
      if (this.dragged) {
        this.dragged = false;
        return;
      }
      const idx = this.plot.cursor.idx;
      if (idx == null) return;
      this.opts.onPoint(this.plot.data[0][idx]);
    });
  }

  setMarks(band, mark, bandB = null) {
    this.band = band;
    this.bandB = bandB;
    this.mark = mark;
    if (this.plot) this.plot.redraw(false, false);
  }

  drawMarks(u) {
    const ctx = u.ctx;
    const { top, height } = u.bbox;
    ctx.save();
    for (const [band, color] of [[this.band, '--chart-select'], [this.bandB, '--chart-select-b']]) {
      if (!band) continue;
      const x0 = u.valToPos(band[0], 'x', true);
      const x1 = u.valToPos(band[1], 'x', true);
      ctx.fillStyle = cssVar(color);
      ctx.fillRect(Math.min(x0, x1), top, Math.max(1, Math.abs(x1 - x0)), height);
    }
    if (this.mark != null) {
      const x = u.valToPos(this.mark, 'x', true);
      ctx.strokeStyle = cssVar('--accent');
      ctx.lineWidth = 2 * (window.devicePixelRatio || 1);
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
    }
    ctx.restore();
  }

  clear(message) {
    if (this.plot) this.plot.destroy();
    this.plot = null;
    this.host.textContent = '';
    if (message) {
      const p = document.createElement('p');
      p.className = 'note';
      p.textContent = message;
      this.host.append(p);
    }
  }
}
