// bench.mjs -- the web UI's speed in Debian's chromium against a real firn on
// loopback: `node test/ui/bench.mjs [--quick]` prints `figure_name value`
// lines, each next to its anchor measured in the same run.
//
// Data: the largest fixture (pprof's large.cpu: 23k locations) pushed as
// job="bench".  Views: the default cut of the flame graph (max_nodes 8192)
// and the whole profile (max_nodes=0).
//   ui_drawn_8192_ms, ui_drawn_large_ms   navigation start to window.firnUI.ready()
//                       resolved (data loaded and drawn), cold cache, median of runs;
//                       an upper bound by one evaluate round trip
//   api_flamegraph_8192_ms, api_flamegraph_large_ms   the anchor: the same
//                       flame-graph JSON fetched from Node (no browser)
//   api_flamegraph_8192_cpu_ms, api_flamegraph_large_cpu_ms   firn's CPU time
//                       (user + system, /proc/PID/stat) per such request, the
//                       mean over the runs: what the wall times cost the
//                       server, whatever else the machine runs
//   flamegraph_8192_nodes, flamegraph_large_nodes   nodes in those trees (API)
//   ui_redraw_p50_ms, ui_redraw_p99_ms, ui_redraw_zoomed_p50_ms, ui_redraw_zoomed_p99_ms
//                       full redraws of the 8192-node graph (the viewport's width
//                       changed by a pixel, each draw timed by the UI itself:
//                       firnUI.flamegraph.drawTimes()), before and after a click
//                       zoomed into a frame; anchor: frame_budget_ms (60 Hz)
//   ui_hover_p50_ms, ui_hover_p99_ms   one mousemove over the graph: its handlers
//                       (hit test, highlight, tooltip), timed around dispatchEvent
//   ui_js_heap_mb       JS heap in use after the 8192-node load and a GC
//   ui_cold_load_bytes  bytes on the wire (headers included) for a cold load of
//                       the page's own files (HTML, JS, CSS...);
//                       ui_cold_load_raw_bytes the same files uncompressed (anchor);
//                       ui_cold_load_api_bytes what its API calls transferred
// --quick (the smoke test) runs each measurement a few times only.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

import { launchBrowser, pushProfile, startFirn } from './harness.mjs';

const FIXTURE = 'pprof-internal_proftest_testdata_large.cpu';
const TYPE = 'process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta';
const QUERY = `${TYPE}{job="bench"}`;
/** The error code run() throws when the page has no automation API to time. */
export const NO_UI_API = 'FIRN_NO_UI_API';

function quantile(xs, q) {
  if (!xs.length) throw new Error('quantile of nothing');
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

const fmt = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(3));

function countNodes(root) {
  let n = 0;
  const stack = [root];
  while (stack.length) {
    const x = stack.pop();
    n++;
    for (const c of x.children || []) stack.push(c);
  }
  return n;
}

// The Explore page's URL for the bench data, max_nodes as given ('' = default).
function explorePath(maxNodes) {
  const p = new URLSearchParams({ query: QUERY, from: 'now-1h', to: 'now', view: 'flame' });
  if (maxNodes !== '') p.set('max_nodes', maxNodes);
  return `/?${p}`;
}

async function withPage(browser, fn, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  try {
    const out = await fn(page, context);
    if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
    return out;
  } catch (e) {
    // A failed step says what the page reported meanwhile (an exception in
    // a draw shows up here, not in the step that waited for the draw).
    if (errors.length && !e.message.startsWith('page errors')) e.message += ` (page errors: ${errors.join('; ')})`;
    throw e;
  } finally {
    await context.close();
  }
}

// Navigation start to drawn, in a fresh context (cold cache).
async function timeToDrawn(browser, firn, path) {
  return withPage(browser, async (page) => {
    await page.goto(firn.url + path, { waitUntil: 'load' });
    const api = await page.evaluate(() => typeof window.firnUI?.flamegraph?.drawTimes === 'function');
    if (!api) {
      throw Object.assign(new Error(`${path}: the page has no window.firnUI.flamegraph.drawTimes`),
        { code: NO_UI_API });
    }
    return page.evaluate(async () => {
      await window.firnUI.ready();
      return performance.now();
    });
  });
}

// Wait in the page until the flame graph has drawn more than `before` times.
// The deadline is checked only after one more frame has had its chance to
// draw, so a main thread stalled by the machine past the deadline does not
// read as a missing redraw; a real miss says what the page looked like.
async function drawsAfter(page, before) {
  return page.evaluate(async (n) => {
    const frame = () => new Promise((r) => requestAnimationFrame(r));
    const drawn = () => window.firnUI.flamegraph.drawTimes().length > n;
    const t0 = performance.now();
    while (!drawn()) {
      const late = performance.now() - t0 > 30_000;
      await frame();
      if (late && !drawn()) {
        const c = window.firnUI.flamegraph.canvas;
        throw new Error(`no redraw within 30 s: ${window.firnUI.flamegraph.drawTimes().length} draws, ` +
          `window ${window.innerWidth}px, graph ${c.parentElement.parentElement.clientWidth}px, ` +
          `canvas ${c.width}px`);
      }
    }
    return window.firnUI.flamegraph.drawTimes().slice(n);
  }, before);
}

// Redraws forced by resizing the window between two widths far enough apart
// that every pane's width changes whatever the layout rounds to.
async function redraws(page, n) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const before = await page.evaluate(() => window.firnUI.flamegraph.drawTimes().length);
    await page.setViewportSize({ width: i % 2 ? 1280 : 1240, height: 800 });
    times.push(...(await drawsAfter(page, before)));
  }
  return times;
}

async function hovers(page, n) {
  return page.evaluate(async (count) => {
    const c = window.firnUI.flamegraph.canvas;
    const r = c.getBoundingClientRect();
    const out = [];
    for (let i = 0; i < count; i++) {
      // Walk the canvas on a coprime grid, so consecutive moves hit different frames.
      const x = r.left + ((i * 97) % Math.max(1, Math.floor(r.width)));
      const y = r.top + ((i * 13) % Math.max(1, Math.floor(r.height)));
      const t0 = performance.now();
      c.dispatchEvent(new MouseEvent('mousemove', { clientX: x, clientY: y, bubbles: true }));
      out.push(performance.now() - t0);
      await new Promise((res) => requestAnimationFrame(res));
    }
    return out;
  }, n);
}

// Click the widest frame a few rows down, so the graph zooms into it.
async function zoomIn(page) {
  const target = await page.evaluate(() => {
    const c = window.firnUI.flamegraph.canvas;
    const r = c.getBoundingClientRect();
    for (const row of [4, 3, 2, 1]) {
      for (let x = 1; x < r.width; x += 8) {
        const hit = window.firnUI.flamegraph.hitTest(x, 0);
        if (!hit) continue;
        const node = window.firnUI.flamegraph.hitTest(x, hit.height * row + hit.height / 2);
        // "other" (what max_nodes cut) re-queries instead of zooming.
        if (node && node.depth > 0 && node.name !== 'other' && node.width < r.width - 1 &&
            node.width > 20) {
          return { x: r.left + node.x + node.width / 2, y: r.top + node.y + node.height / 2,
            name: node.name };
        }
      }
    }
    return null;
  });
  if (!target) throw new Error('no frame to zoom into');
  await page.mouse.click(target.x, target.y);
  await page.evaluate(() => window.firnUI.ready());
  const zoom = await page.evaluate(() => window.firnUI.state().zoom);
  if (!zoom.length) throw new Error(`clicking ${target.name} did not zoom`);
}

async function coldLoadBytes(browser, firn, path) {
  return withPage(browser, async (page, context) => {
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    const urls = new Map();
    const sizes = { asset: 0, api: 0, raw: 0 };
    const rawLengths = [];
    cdp.on('Network.responseReceived', (e) => urls.set(e.requestId, e.response.url));
    cdp.on('Network.loadingFinished', (e) => {
      const u = urls.get(e.requestId);
      if (!u) return;
      const p = new URL(u).pathname;
      if (p.startsWith('/api/')) sizes.api += e.encodedDataLength;
      else {
        sizes.asset += e.encodedDataLength;
        rawLengths.push(cdp.send('Network.getResponseBody', { requestId: e.requestId })
          .then((b) => { sizes.raw += b.base64Encoded ? Buffer.from(b.body, 'base64').length
            : Buffer.byteLength(b.body); }));
      }
    });
    await page.goto(firn.url + path, { waitUntil: 'load' });
    await page.evaluate(() => window.firnUI.ready());
    await Promise.all(rawLengths);
    return sizes;
  });
}

async function jsHeapMB(browser, firn, path) {
  return withPage(browser, async (page, context) => {
    await page.goto(firn.url + path, { waitUntil: 'load' });
    await page.evaluate(() => window.firnUI.ready());
    const cdp = await context.newCDPSession(page);
    await cdp.send('HeapProfiler.collectGarbage');
    const { usedSize } = await cdp.send('Runtime.getHeapUsage');
    return usedSize / (1 << 20);
  });
}

// A process's CPU time so far (user + system), in ms.
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
function cpuMs(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // fields after the command name (which may hold spaces): state is the 3rd field, utime the 14th
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

async function apiFlamegraph(firn, maxNodes) {
  const now = Math.floor(Date.now() / 1000);
  const p = new URLSearchParams({ query: QUERY, start: String(now - 3600), end: String(now) });
  if (maxNodes !== '') p.set('max_nodes', maxNodes);
  const t0 = performance.now();
  const res = await firn.fetch(`/api/v1/profile?${p}`);
  const body = await res.json();
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`/api/v1/profile: ${res.status}: ${JSON.stringify(body)}`);
  return { ms, nodes: countNodes(body.root ?? body.data?.root) };
}

/** Run the benchmark; returns its lines ("figure_name value"). */
export async function run({ quick = false } = {}) {
  const runs = quick ? 1 : 5;
  const frames = quick ? 6 : 100;
  const firn = await startFirn();
  let browser;
  const lines = [];
  const out = (name, v) => lines.push(`${name} ${fmt(v)}`);
  try {
    await pushProfile(firn, {
      fixture: FIXTURE, name: 'process_cpu', labels: { job: 'bench', instance: 'bench:1' },
      time: Math.floor(Date.now() / 1000) - 300,
    });
    browser = await launchBrowser();
    for (const [label, maxNodes] of [['8192', ''], ['large', '0']]) {
      const api = [];
      let nodes = 0;
      const cpu0 = cpuMs(firn.pid);
      for (let i = 0; i < runs; i++) {
        const a = await apiFlamegraph(firn, maxNodes);
        api.push(a.ms);
        nodes = a.nodes;
      }
      const cpu = (cpuMs(firn.pid) - cpu0) / runs;
      const ui = [];
      for (let i = 0; i < runs; i++) ui.push(await timeToDrawn(browser, firn, explorePath(maxNodes)));
      out(`ui_drawn_${label}_ms`, quantile(ui, 0.5));
      out(`api_flamegraph_${label}_ms`, quantile(api, 0.5));
      out(`api_flamegraph_${label}_cpu_ms`, cpu);
      out(`flamegraph_${label}_nodes`, nodes);
    }
    const { plain, zoomed, hover } = await withPage(browser, async (page) => {
      await page.goto(firn.url + explorePath(''), { waitUntil: 'load' });
      await page.evaluate(() => window.firnUI.ready());
      const plainTimes = await redraws(page, frames);
      const hoverTimes = await hovers(page, frames);
      await zoomIn(page);
      return { plain: plainTimes, zoomed: await redraws(page, frames), hover: hoverTimes };
    });
    out('ui_redraw_p50_ms', quantile(plain, 0.5));
    out('ui_redraw_p99_ms', quantile(plain, 0.99));
    out('ui_redraw_zoomed_p50_ms', quantile(zoomed, 0.5));
    out('ui_redraw_zoomed_p99_ms', quantile(zoomed, 0.99));
    out('ui_hover_p50_ms', quantile(hover, 0.5));
    out('ui_hover_p99_ms', quantile(hover, 0.99));
    out('frame_budget_ms', 1000 / 60);
    out('ui_js_heap_mb', await jsHeapMB(browser, firn, explorePath('')));
    const bytes = await coldLoadBytes(browser, firn, explorePath(''));
    out('ui_cold_load_bytes', bytes.asset);
    out('ui_cold_load_raw_bytes', bytes.raw);
    out('ui_cold_load_api_bytes', bytes.api);
  } finally {
    await browser?.close();
    await firn.stop();
  }
  return lines;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const lines = await run({ quick: process.argv.includes('--quick') });
  for (const l of lines) console.log(l);
}
