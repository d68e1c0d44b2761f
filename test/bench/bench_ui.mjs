// bench_ui.mjs -- how fast the web UI draws, in Debian's chromium against a
// real firn on loopback holding the largest fixture
// (pprof-internal_proftest_testdata_large.cpu).  Prints "figure value"
// lines, each timing next to its goal (the issue's) and to its anchor, the
// same data's API answer fetched and parsed in the same page:
//   first draw (navigation start to firnUI.ready(): the page, the chart and
//   the flame graph) for the default 8,192-node graph and for the whole
//   profile (max_nodes=0); a full redraw while zoomed and
//   the cost of one hover (hit test, outline, tooltip), p50/p99; the JS
//   heap after load; the bytes a cold load transfers (compressed).
//
// usage: node test/bench/bench_ui.mjs [--runs N]    (after `npm ci` in test/ui)
// FIRN_BIN and FIRN_FIXTURES as for the browser tests (test/ui/harness.mjs).
import { fixture, launchBrowser, pushProfile, startFirn } from '../ui/harness.mjs';

const runs = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 5;
const LARGE = 'pprof-internal_proftest_testdata_large.cpu';
const CPU = 'process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta';
const GOAL_FIRST_DRAW_MS = 1000;
const GOAL_REDRAW_P99_MS = 16;
const GOAL_COLD_KB = 300;

const note = (s) => process.stderr.write(`bench_ui: ${s}\n`);
const out = (name, v) => console.log(`${name} ${typeof v === 'number' ? +v.toFixed(3) : v}`);
const pct = (a, p) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const median = (a) => pct(a, 50);

const firn = await startFirn();
const browser = await launchBrowser();
try {
  const now = Math.floor(Date.now() / 1000);
  await pushProfile(firn, { fixture: fixture(LARGE), name: 'process_cpu', labels: { job: 'large' }, time: now - 60 });
  const query = `${CPU}{job="large"}`;
  const base = { query, from: String(now - 3600), to: String(now + 60) };

  // First draw, cold each time (a new context has an empty cache).
  async function firstDraw(extra) {
    const times = [];
    const api = [];
    let nodes = 0;
    let bytes = null;
    for (let r = 0; r < runs; r++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
      const page = await context.newPage();
      const sizes = [];
      page.on('requestfinished', (req) => sizes.push(req.sizes().then((s) => ({ url: req.url(), n: s.responseBodySize + s.responseHeadersSize }))));
      const url = `${firn.url}/?${new URLSearchParams({ ...base, ...extra })}`;
      await page.goto(url, { waitUntil: 'commit' });
      const t = await page.evaluate(async () => {
        while (!window.firnUI) await new Promise((r) => setTimeout(r, 5));
        await window.firnUI.ready();
        return performance.now();
      });
      times.push(t);
      // the anchor: the same flame graph request, fetched and parsed
      api.push(await page.evaluate(async (p) => {
        const t0 = performance.now();
        const body = await (await fetch(`/api/v1/profile?${new URLSearchParams(p)}`, { cache: 'no-store' })).json();
        if (body.status !== 'success') throw new Error(body.error);
        return performance.now() - t0;
      }, { query, start: base.from, end: base.to, ...(extra.max_nodes ? { max_nodes: extra.max_nodes } : {}) }));
      nodes = await page.evaluate(() => window.firnUI.nodeCount());
      if (r === 0) {
        const all = await Promise.all(sizes);
        const assets = all.filter((s) => !s.url.includes('/api/'));
        bytes = { assets: assets.reduce((a, s) => a + s.n, 0), api: all.reduce((a, s) => a + s.n, 0) - assets.reduce((a, s) => a + s.n, 0) };
      }
      await context.close();
    }
    return { ms: median(times), api: median(api), nodes, bytes };
  }

  const d8k = await firstDraw({});
  out('ui_flamegraph_nodes', d8k.nodes);
  out('ui_first_draw_ms', d8k.ms);
  out('ui_first_draw_api_anchor_ms', d8k.api);
  out('ui_first_draw_vs_goal', d8k.ms / GOAL_FIRST_DRAW_MS);
  out('ui_cold_load_assets_kb', d8k.bytes.assets / 1024);
  out('ui_cold_load_api_kb', d8k.bytes.api / 1024);
  out('ui_cold_load_assets_vs_goal', d8k.bytes.assets / 1024 / GOAL_COLD_KB);

  const full = await firstDraw({ max_nodes: '0' });
  out('ui_full_flamegraph_nodes', full.nodes);
  out('ui_full_first_draw_ms', full.ms);
  out('ui_full_first_draw_api_anchor_ms', full.api);
  out('ui_full_first_draw_vs_goal', full.ms / GOAL_FIRST_DRAW_MS);

  // Full redraws while zoomed (300 frames), hover
  // (one pointer move: hit test, outline on the overlay, tooltip), JS heap.
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  await page.goto(`${firn.url}/?${new URLSearchParams({ ...base, view: 'flame' })}`);
  await page.evaluate(() => window.firnUI.ready());
  const zoomTo = await page.evaluate(() => {
    // the widest frame two levels below the root
    const fg = window.firnUI.flamegraph;
    const all = [];
    for (const n of fg.find('runtime.main').concat(fg.find('main.main'))) all.push(n);
    return all.sort((a, b) => b.width - a.width)[0] || null;
  });
  const canvasBox = await page.evaluate(() => window.firnUI.flamegraph.canvas.getBoundingClientRect().toJSON());
  if (zoomTo) {
    await page.mouse.click(canvasBox.x + zoomTo.x + zoomTo.width / 2, canvasBox.y + zoomTo.y + zoomTo.height / 2);
    await page.evaluate(() => window.firnUI.ready());
  } else note('no runtime.main or main.main frame to zoom into; measuring unzoomed');
  const redraw = await page.evaluate(async () => {
    const fg = window.firnUI.flamegraph;
    const before = fg.drawTimes().length;
    for (let k = 0; k < 300; k++) await fg.redraw();
    return fg.drawTimes().slice(before);
  });
  out('ui_redraw_zoomed_frames', redraw.length);
  out('ui_redraw_zoomed_p50_ms', pct(redraw, 50));
  out('ui_redraw_zoomed_p99_ms', pct(redraw, 99));
  out('ui_redraw_zoomed_p99_vs_goal', pct(redraw, 99) / GOAL_REDRAW_P99_MS);
  const hover = await page.evaluate(async () => {
    const c = window.firnUI.flamegraph.canvas;
    const r = c.getBoundingClientRect();
    const times = [];
    for (let k = 0; k < 500; k++) {
      const x = r.left + ((k * 37) % Math.floor(r.width));
      const y = r.top + ((k * 13) % Math.floor(r.height));
      const t0 = performance.now();
      c.dispatchEvent(new MouseEvent('mousemove', { clientX: x, clientY: y, bubbles: true }));
      document.getElementById('tooltip').getBoundingClientRect(); // its layout belongs to the hover
      times.push(performance.now() - t0);
      if (k % 10 === 0) await new Promise((res) => requestAnimationFrame(res));
    }
    return times;
  });
  out('ui_hover_p50_ms', pct(hover, 50));
  out('ui_hover_p99_ms', pct(hover, 99));
  out('ui_hover_p99_vs_goal', pct(hover, 99) / GOAL_REDRAW_P99_MS);
  const cdp = await context.newCDPSession(page);
  await cdp.send('HeapProfiler.collectGarbage');
  const heap = await cdp.send('Runtime.getHeapUsage');
  out('ui_js_heap_mb', heap.usedSize / 1048576);
  await context.close();
} finally {
  await browser.close();
  await firn.stop();
}
