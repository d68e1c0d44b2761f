// explore.test.mjs -- the Explore page in Debian's chromium against a real
// firn holding fixture profiles.  Expected values come from `go tool pprof`
// run on the fixture files (totals, flat, tag totals) or from firn's own
// API answers read here with code of the test's (diffs), never from the
// UI's modules.  Every test also checks that the page logged no error.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { fixture, launchBrowser, load, openPage, pushProfile, screenshot, startFirn } from './harness.mjs';

const CPU = 'process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta';
const A_FIXTURE = 'pyro-pkg_pprof_testdata_go.cpu.labels.pprof'; // Go CPU with pprof labels
const B_FIXTURE = 'parca-pkg_query_testdata_fib.pb.gz'; // Go CPU
const HEAP_FIXTURE = 'pyro-pkg_pprof_testdata_heap'; // Go heap (not a delta type)
const A = `${CPU}{job="api"}`;
const B = `${CPU}{job="web"}`;

let firn;
let browser;
const now = Math.floor(Date.now() / 1000);
const FROM = now - 3600;
const TO = now + 60;

// ---- go tool pprof, the peer ------------------------------------------------

function pprof(args) {
  return execFileSync('go', ['tool', 'pprof', ...args], { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

// {name: {flat, cum}} in nanoseconds, and the total, from `pprof -top`.
function pprofTop(file, extra = []) {
  const out = pprof(['-top', '-nodefraction=0', '-nodecount=1000000', '-unit=ns', '-sample_index=cpu', ...extra, file]);
  const rows = {};
  const dup = new Set();
  const num = (s) => (s === '0' ? 0 : Number(s.replace(/ns$/, '')));
  for (const line of out.split('\n')) {
    const m = /^\s*(\d+(?:ns)?)\s+[\d.]+%\s+[\d.]+%\s+(\d+(?:ns)?)\s+[\d.]+%\s+(.+?)\s*$/.exec(line);
    if (!m) continue;
    // "(inline)" marks inlined frames; firn names them plainly
    const name = m[3].replace(/ \((partial-)?inline\)$/, '');
    if (name in rows) dup.add(name);
    rows[name] = { flat: num(m[1]), cum: num(m[2]) };
  }
  for (const name of dup) delete rows[name]; // inlined and not: two pprof rows, one name
  const total = /Showing nodes accounting for (\d+)ns/.exec(out);
  assert.ok(total, `pprof -top printed no total:\n${out.slice(0, 500)}`);
  return { rows, total: Number(total[1]) };
}

// ---- helpers ------------------------------------------------------------------

const qs = (o) => new URLSearchParams(o).toString();
const explore = (o) => `/?${qs({ from: String(FROM), to: String(TO), ...o })}`;

async function apiJSON(p) {
  const r = await firn.fetch(p);
  const body = await r.json();
  assert.equal(body.status, 'success', `${p}: ${body.error}`);
  return body.data;
}

// The nodes of find(name) that have no ancestor of the same name (by
// their boxes: an ancestor is shallower and spans the descendant).
function outermost(nodes) {
  return nodes.filter((n) => !nodes.some((m) => m.depth < n.depth && m.x <= n.x + 0.01 && n.x + n.width <= m.x + m.width + 0.01));
}

const sum = (a, f) => a.reduce((s, x) => s + f(x), 0);

async function withPage(opts, f) {
  const { context, page, errors } = await openPage(browser, firn, opts);
  try {
    await f(page, errors);
  } finally {
    await context.close();
  }
}

const ready = (page) => page.evaluate(() => window.firnUI.ready());
const find = (page, name) => page.evaluate((n) => window.firnUI.flamegraph.find(n), name);

before(async () => {
  firn = await startFirn();
  browser = await launchBrowser();
  await pushProfile(firn, { fixture: A_FIXTURE, name: 'process_cpu', labels: { job: 'api', instance: 'a:1' }, time: now - 600 });
  await pushProfile(firn, { fixture: B_FIXTURE, name: 'process_cpu', labels: { job: 'web', instance: 'b:1' }, time: now - 300 });
  await pushProfile(firn, { fixture: HEAP_FIXTURE, name: 'memory', labels: { job: 'heap' }, time: now - 900 });
});

after(async () => {
  await browser?.close();
  await firn?.stop();
});

// ---- tests ------------------------------------------------------------------------

test('flame graph totals and selfs equal go tool pprof -top of the fixture', async () => {
  const peer = pprofTop(fixture(A_FIXTURE));
  await withPage({}, async (page, errors) => {
    await load(page, firn, explore({ query: A }));
    const [root] = await find(page, 'total');
    assert.equal(root.total, peer.total);
    const names = Object.keys(peer.rows);
    assert.ok(names.length > 10, `${names.length} functions`);
    for (const name of names) {
      const nodes = await find(page, name);
      assert.ok(nodes.length > 0, `${name} is in the flame graph`);
      assert.equal(sum(nodes, (n) => n.self), peer.rows[name].flat, `${name} self`);
      assert.equal(sum(outermost(nodes), (n) => n.total), peer.rows[name].cum, `${name} total`);
    }
    await screenshot(page, 'explore-light');
    assert.deepEqual(errors, []);
  });
});

test('click zooms into a frame (breadcrumb, URL), Esc resets', async () => {
  await withPage({}, async (page, errors) => {
    await load(page, firn, explore({ query: A }));
    const canvas = await page.evaluate(() => window.firnUI.flamegraph.canvas.getBoundingClientRect().toJSON());
    const [node] = (await find(page, 'main.work')).sort((a, b) => b.total - a.total);
    assert.ok(node.width > 2 && node.width < canvas.width - 1, `main.work is ${node.width}px of ${canvas.width}`);
    const hit = await page.evaluate(([x, y]) => window.firnUI.flamegraph.hitTest(x, y), [node.x + node.width / 2, node.y + node.height / 2]);
    assert.equal(hit.name, 'main.work');
    await page.mouse.click(canvas.x + node.x + node.width / 2, canvas.y + node.y + node.height / 2);
    await ready(page);
    const [zoomed] = (await find(page, 'main.work')).filter((n) => n.depth === node.depth);
    assert.ok(Math.abs(zoomed.width - canvas.width) < 1, `zoomed width ${zoomed.width} of ${canvas.width}`);
    assert.equal(zoomed.x, 0);
    assert.match(new URL(page.url()).searchParams.get('zoom'), /main\.work$/);
    assert.equal(await page.locator('#crumbs [aria-current="true"]').textContent(), 'main.work');
    await page.keyboard.press('Escape');
    await ready(page);
    const [back] = (await find(page, 'main.work')).filter((n) => n.depth === node.depth);
    assert.ok(Math.abs(back.width - node.width) < 0.01);
    assert.equal(new URL(page.url()).searchParams.get('zoom'), null);
    await page.goBack();
    await ready(page);
    assert.match(new URL(page.url()).searchParams.get('zoom'), /main\.work$/, 'back returns to the zoom');
    assert.deepEqual(errors, []);
  });
});

test('search highlights matches, mutes the rest, shows the matched share, filters the table', async () => {
  const peer = pprofTop(fixture(A_FIXTURE));
  await withPage({}, async (page, errors) => {
    await load(page, firn, explore({ query: A }));
    await page.keyboard.press('/');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'search');
    await page.keyboard.type('runtime.duffzero');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('search') === 'runtime.duffzero');
    await ready(page);
    const share = (100 * peer.rows['runtime.duffzero'].cum) / peer.total;
    assert.match(await page.locator('#matched').textContent(), new RegExp(`${share.toFixed(2)}% of total`));
    const rows = await page.locator('#table-pane tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.name));
    assert.deepEqual(rows, ['runtime.duffzero']);
    // pixels: a match keeps its colour, a non-match takes the muted colour
    const pixel = (x, y) => page.evaluate(([x, y]) => [...window.firnUI.flamegraph.canvas.getContext('2d').getImageData(x, y, 1, 1).data].slice(0, 3), [x, y]);
    const muted = await page.evaluate(() => {
      const c = document.createElement('canvas').getContext('2d');
      c.fillStyle = getComputedStyle(document.documentElement).getPropertyValue('--flame-muted').trim();
      c.fillRect(0, 0, 1, 1);
      return [...c.getImageData(0, 0, 1, 1).data].slice(0, 3);
    });
    const [work] = (await find(page, 'main.work')).sort((a, b) => b.width - a.width);
    const [duff] = (await find(page, 'runtime.duffzero')).sort((a, b) => b.width - a.width);
    // a corner of each box, away from its label
    assert.deepEqual(await pixel(work.x + 2, work.y + 2), muted);
    assert.notDeepEqual(await pixel(duff.x + 1, duff.y + 2), muted);
    assert.deepEqual(errors, []);
  });
});

test('hover shows a tooltip with name, total, self and share', async () => {
  const peer = pprofTop(fixture(A_FIXTURE));
  await withPage({}, async (page, errors) => {
    await load(page, firn, explore({ query: A }));
    const canvas = await page.evaluate(() => window.firnUI.flamegraph.canvas.getBoundingClientRect().toJSON());
    const [node] = (await find(page, 'main.work')).sort((a, b) => b.total - a.total);
    await page.mouse.move(canvas.x + node.x + node.width / 2, canvas.y + node.y + node.height / 2);
    const tip = page.getByRole('tooltip');
    await tip.waitFor({ state: 'visible', timeout: 5000 });
    const text = await tip.textContent();
    assert.match(text, /main\.work/);
    assert.match(text, /Total/);
    assert.match(text, /Self/);
    const pct = ((100 * node.total) / peer.total).toFixed(1);
    assert.ok(text.includes(`${pct}% of all`), `${text} has ${pct}%`);
    assert.ok(text.includes('work.go') || /File/.test(text), text);
    await page.mouse.move(1, 1);
    await tip.waitFor({ state: 'hidden', timeout: 5000 });
    assert.deepEqual(errors, []);
  });
});

test('table sorts by a column; the top self row is pprof\'s top flat', async () => {
  const peer = pprofTop(fixture(A_FIXTURE));
  const topFlat = Object.entries(peer.rows).sort((a, b) => b[1].flat - a[1].flat)[0][0];
  await withPage({}, async (page, errors) => {
    await load(page, firn, explore({ query: A, view: 'table' }));
    const firstRow = () => page.locator('#table-pane tbody tr').first().getAttribute('data-name');
    await page.getByRole('button', { name: 'Self', exact: true }).click();
    await ready(page);
    assert.equal(await firstRow(), topFlat);
    assert.equal(await page.locator('th[aria-sort="descending"]').textContent(), 'Self');
    assert.equal(new URL(page.url()).searchParams.get('sort'), 'self');
    await page.getByRole('button', { name: 'Self', exact: true }).click();
    await ready(page);
    assert.equal(await page.locator('th[aria-sort="ascending"]').textContent(), 'Self');
    await page.getByRole('button', { name: 'Name', exact: true }).click();
    await ready(page);
    const names = await page.locator('#table-pane tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.name));
    assert.deepEqual(names, [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    assert.deepEqual(errors, []);
  });
});

test('clicking a table row zooms the graph to the function\'s largest frame', async () => {
  await withPage({}, async (page, errors) => {
    await load(page, firn, explore({ query: A }));
    const [widest] = (await find(page, 'main.work')).sort((a, b) => b.total - a.total);
    await page.locator('#table-pane tbody tr[data-name="main.work"]').click();
    await ready(page);
    assert.match(new URL(page.url()).searchParams.get('zoom'), /main\.work$/);
    const canvas = await page.evaluate(() => window.firnUI.flamegraph.canvas.getBoundingClientRect().width);
    const [zoomed] = (await find(page, 'main.work')).filter((n) => n.depth === widest.depth && n.total === widest.total);
    assert.ok(Math.abs(zoomed.width - canvas) < 1, `${zoomed.width} of ${canvas}`);
    assert.equal(await page.locator('#table-pane tbody tr.selected').getAttribute('data-name'), 'main.work');
    assert.deepEqual(errors, []);
  });
});

test('sandwich: callers and callees of a function total what pprof says', async () => {
  const peer = pprofTop(fixture(A_FIXTURE));
  await withPage({}, async (page, errors) => {
    await load(page, firn, explore({ query: A, view: 'sandwich', sandwich: 'runtime.duffzero' }));
    const callers = await page.evaluate(() => window.firnUI.sandwich.callers.find('runtime.duffzero'));
    const callees = await page.evaluate(() => window.firnUI.sandwich.callees.find('runtime.duffzero'));
    assert.equal(callers.find((n) => n.depth === 0).total, peer.rows['runtime.duffzero'].cum);
    assert.equal(callees.find((n) => n.depth === 0).total, peer.rows['runtime.duffzero'].cum);
    // its callers are pprof's -peek callers
    // its callers are those of pprof -peek: the "| name" lines above its own
    const peek = pprof(['-peek', '^runtime\\.duffzero$', '-unit=ns', '-sample_index=cpu', fixture(A_FIXTURE)]).split('\n');
    const self = peek.findIndex((l) => /^\s*\d+\S*\s+[\d.]+%.*\|\s+runtime\.duffzero\s*$/.test(l));
    assert.ok(self > 0, peek.join('\n'));
    const peerCallers = [];
    for (let k = self - 1; k >= 0 && !/^-{5,}/.test(peek[k]); k--) peerCallers.push(/\|\s+(.+?)\s*$/.exec(peek[k])[1].replace(/ \(inline\)$/, ''));
    assert.ok(peerCallers.length > 0, peek.join('\n'));
    for (const name of peerCallers) {
      const got = await page.evaluate((n) => window.firnUI.sandwich.callers.find(n), name);
      assert.ok(got.some((n) => n.depth === 1), `caller ${name} is above runtime.duffzero`);
    }
    assert.match(await page.locator('#callers-title').textContent(), /Callers of runtime\.duffzero/);
    await screenshot(page, 'sandwich-light');
    assert.deepEqual(errors, []);
  });
});

test('inverted: the top row holds each function\'s self, as pprof -top\'s flat', async () => {
  const peer = pprofTop(fixture(A_FIXTURE));
  await withPage({}, async (page, errors) => {
    await load(page, firn, explore({ query: A, invert: '1' }));
    const [root] = await find(page, 'total');
    assert.equal(root.total, peer.total);
    let checked = 0;
    for (const [name, v] of Object.entries(peer.rows)) {
      const top = (await find(page, name)).filter((n) => n.depth === 1);
      assert.equal(sum(top, (n) => n.total), v.flat, name);
      checked += v.flat > 0;
    }
    assert.ok(checked >= 3, `${checked} functions with self`);
    assert.deepEqual(errors, []);
  });
});

test('compare A/B: each frame carries both sides as the API\'s diff answers', async () => {
  const params = { query: A, start: String(FROM), end: String(TO), compare_query: B, compare_start: String(FROM), compare_end: String(TO) };
  const diff = await apiJSON(`/api/v1/profile?${qs(params)}`);
  assert.equal(diff.diff, true);
  // every (name, depth) of the API's tree, summed: the test's own walk
  const want = new Map();
  const stack = [[diff.root, 0]];
  while (stack.length) {
    const [n, d] = stack.pop();
    const k = `${n.name}@${d}`;
    const w = want.get(k) || { total: 0, compareTotal: 0 };
    w.total += n.value;
    w.compareTotal += n.compare_value;
    want.set(k, w);
    for (const c of n.children || []) stack.push([c, d + 1]);
  }
  await withPage({}, async (page, errors) => {
    await load(page, firn, explore({ query: A, compare: '1', compare_query: B }));
    let checked = 0;
    for (const [k, w] of want) {
      const at = k.lastIndexOf('@');
      const nodes = (await find(page, k.slice(0, at))).filter((n) => n.depth === Number(k.slice(at + 1)));
      assert.equal(sum(nodes, (n) => n.total), w.total, `${k} A`);
      assert.equal(sum(nodes, (n) => n.compareTotal), w.compareTotal, `${k} B`);
      if (++checked >= 200) break;
    }
    assert.ok(checked > 20, `${checked} frames checked`);
    assert.match(await page.locator('#legend').textContent(), /less.*more/);
    assert.equal(await page.locator('#table-pane th', { hasText: 'B total' }).count(), 1);
    await page.locator('#palette').selectOption('cb');
    await ready(page);
    assert.equal(new URL(page.url()).searchParams.get('palette'), 'cb');
    await screenshot(page, 'compare-light');
    assert.deepEqual(errors, []);
  });
});

test('group by a pprof label: one subtree per value, totals as pprof -tagfocus', async () => {
  await withPage({}, async (page, errors) => {
    await load(page, firn, explore({ query: A, group_by: 'function' }));
    for (const v of ['slow', 'fast']) {
      const peer = pprofTop(fixture(A_FIXTURE), [`-tagfocus=function=^${v}$`]);
      const [g] = await find(page, `function=${v}`);
      assert.ok(g, `a group node function=${v}`);
      assert.equal(g.depth, 1);
      assert.equal(g.total, peer.total, `function=${v}`);
    }
    assert.deepEqual(errors, []);
  });
});

test('an "other" frame re-queries what max_nodes cut from its parent', async () => {
  const peer = pprofTop(fixture(A_FIXTURE));
  await withPage({}, async (page, errors) => {
    await load(page, firn, explore({ query: A, max_nodes: '12' }));
    const others = async () => (await find(page, 'other')).sort((a, b) => b.total - a.total);
    const [other] = (await others()).filter((n) => n.depth > 1);
    assert.ok(other, 'a cut below the top');
    const cutBefore = sum(await others(), (n) => n.total);
    assert.match(await page.locator('#cut').textContent(), /of the profile is in "other" frames/);
    const canvas = await page.evaluate(() => window.firnUI.flamegraph.canvas.getBoundingClientRect().toJSON());
    const n0 = await page.evaluate(() => window.firnUI.nodeCount());
    await page.mouse.click(canvas.x + other.x + Math.min(other.width / 2, 20), canvas.y + other.y + 5);
    await ready(page);
    assert.ok(await page.evaluate(() => window.firnUI.nodeCount()) > n0, 'more nodes');
    assert.ok(sum(await others(), (n) => n.total) < cutBefore, 'less is cut');
    const [root] = await find(page, 'total');
    assert.equal(root.total, peer.total, 'the total is unchanged');
    for (const [name, v] of Object.entries(peer.rows)) {
      assert.ok(sum(await find(page, name), (n) => n.self) <= v.flat, `${name}: no self counted twice`);
    }
    // the URL keeps the expansion: a reload shows the same graph
    assert.equal(new URL(page.url()).searchParams.getAll('expand').length, 1);
    const seen = { n: await page.evaluate(() => window.firnUI.nodeCount()), others: await others() };
    await page.reload();
    await ready(page);
    assert.deepEqual({ n: await page.evaluate(() => window.firnUI.nodeCount()), others: await others() }, seen);
    assert.deepEqual(errors, []);
  });
});

// The plotting area of the chart (uPlot's overlay).
const chartArea = (page) => page.locator('#chart .u-over').boundingBox();

test('chart: click a point of a delta type merges its step, drag merges a range, shift+drag sets B', async () => {
  const peer = pprofTop(fixture(A_FIXTURE));
  await withPage({}, async (page, errors) => {
    await load(page, firn, explore({ query: A }));
    const box = await chartArea(page);
    // one point in the range: the cursor snaps to it wherever it is
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    await ready(page);
    const u = new URL(page.url()).searchParams;
    // the step of the chart's own query_range request
    const chartStep = await page.evaluate(() => Number(new URL(performance.getEntriesByType('resource')
      .find((e) => e.name.includes('/api/v1/query_range')).name).searchParams.get('step')));
    assert.ok(chartStep > 0);
    assert.equal(Number(u.get('merge_to')) - Number(u.get('merge_from')), chartStep, 'one step of the chart');
    assert.ok(Number(u.get('merge_from')) <= now - 600 && now - 600 <= Number(u.get('merge_to')), u.toString());
    assert.equal((await find(page, 'total'))[0].total, peer.total);
    assert.match(await page.locator('#selection').textContent(), /^Merged between/);
    await page.getByRole('button', { name: 'Clear selection' }).click();
    await ready(page);
    assert.equal(new URL(page.url()).searchParams.get('merge_from'), null);
    // drag over the whole plot
    await page.mouse.move(box.x + 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2, { steps: 5 });
    await page.mouse.move(box.x + box.width - 2, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await ready(page);
    const d = new URL(page.url()).searchParams;
    assert.ok(Number(d.get('merge_to')) - Number(d.get('merge_from')) > 3000, d.toString());
    assert.equal((await find(page, 'total'))[0].total, peer.total);
    // shift+drag over the first quarter: side B, a range with no profile
    await page.keyboard.down('Shift');
    await page.mouse.move(box.x + 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 4, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await page.keyboard.up('Shift');
    await ready(page);
    const b = new URL(page.url()).searchParams;
    assert.equal(b.get('compare'), '1');
    assert.ok(Number(b.get('compare_to')) < now - 600 && Number(b.get('compare_from')) < Number(b.get('compare_to')), b.toString());
    const [root] = await find(page, 'total');
    assert.equal(root.total, peer.total);
    assert.equal(root.compareTotal, 0);
    assert.deepEqual(errors, []);
  });
});

test('chart: click a point of a non-delta type shows the profile at that time', async () => {
  const out = pprof(['-top', '-nodefraction=0', '-unit=bytes', '-sample_index=inuse_space', fixture(HEAP_FIXTURE)]);
  const total = Number(/Showing nodes accounting for (\d+)B/.exec(out)[1]);
  await withPage({}, async (page, errors) => {
    await load(page, firn, explore({ query: 'memory:inuse_space:bytes:space:bytes{job="heap"}' }));
    const box = await chartArea(page);
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    await page.waitForFunction(() => new URL(location.href).searchParams.has('time'), null, { timeout: 10_000 });
    await ready(page);
    assert.equal(Number(new URL(page.url()).searchParams.get('time')), now - 900);
    assert.equal((await find(page, 'total'))[0].total, total);
    assert.match(await page.locator('#selection').textContent(), /^Single profile at/);
    assert.deepEqual(errors, []);
  });
});

test('filter by function keeps the stacks through it, as pprof -focus', async () => {
  const out = pprof(['-top', '-nodefraction=0', '-unit=ns', '-sample_index=cpu', '-focus=^main\\.fastFunction$', fixture(A_FIXTURE)]);
  const total = Number(/Showing nodes accounting for (\d+)ns/.exec(out)[1]);
  await withPage({}, async (page, errors) => {
    await load(page, firn, explore({ query: A }));
    await page.getByRole('textbox', { name: 'Filter stacks by function (regex)' }).fill('main\\.fastFunction');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('filter') === 'main\\.fastFunction', null, { timeout: 5000 });
    await ready(page);
    assert.equal((await find(page, 'total'))[0].total, total);
    assert.equal((await find(page, 'main.slowFunction')).length, 0);
    assert.deepEqual(errors, []);
  });
});

test('URL round trip: a reload reproduces the view', async () => {
  await withPage({}, async (page, errors) => {
    await load(page, firn, explore({ query: A, search: 'runtime', invert: '1', sort: 'self', view: 'both' }));
    const canvas = await page.evaluate(() => window.firnUI.flamegraph.canvas.getBoundingClientRect().toJSON());
    const [node] = (await find(page, 'runtime.duffzero')).sort((a, b) => b.width - a.width);
    await page.mouse.click(canvas.x + node.x + node.width / 2, canvas.y + node.y + node.height / 2);
    await ready(page);
    const state = await page.evaluate(() => window.firnUI.state());
    const seen = await find(page, 'runtime.duffzero');
    const matched = await page.locator('#matched').textContent();
    await page.reload();
    await ready(page);
    assert.deepEqual(await page.evaluate(() => window.firnUI.state()), state);
    assert.deepEqual(await find(page, 'runtime.duffzero'), seen);
    assert.equal(await page.locator('#matched').textContent(), matched);
    assert.equal(await page.locator('#search').inputValue(), 'runtime');
    assert.equal(await page.locator('#invert').isChecked(), true);
    assert.deepEqual(errors, []);
  });
});

test('relative from/to (now-1h) and RFC3339 are honoured on /', async () => {
  await withPage({}, async (page, errors) => {
    await load(page, firn, `/?${qs({ query: A, from: 'now-1h', to: 'now' })}`);
    const [root] = await find(page, 'total');
    assert.equal(root.total, pprofTop(fixture(A_FIXTURE)).total);
    const iso = (s) => new Date(s * 1000).toISOString();
    await load(page, firn, `/?${qs({ query: A, from: iso(now - 400), to: iso(now) })}`);
    const [other] = await find(page, 'total');
    assert.equal(other, undefined, 'the A profile (10 min ago) is outside the last 400 s');
    assert.match(await page.locator('#flame-pane .empty').textContent(), /No CPU profiles for \{job="api"\} between/);
    assert.deepEqual(errors, []);
  });
});

test('Unix seconds in the URL show as UTC dates in the range inputs, and submit to the same range', async () => {
  await withPage({}, async (page, errors) => {
    await load(page, firn, explore({ query: A }));
    const total = (await find(page, 'total'))[0].total;
    // coreutils' date, not the page's code, says what the dates read as
    const utc = (s) => execFileSync('date', ['-u', '-d', `@${s}`, '+%Y-%m-%d %H:%M:%SZ'], { encoding: 'utf8' }).trim();
    assert.equal(await page.locator('#from').inputValue(), utc(FROM));
    assert.equal(await page.locator('#to').inputValue(), utc(TO));
    for (const id of ['#from', '#to']) {
      assert.ok(await page.locator(id).evaluate((e) => e.scrollWidth <= e.clientWidth), `${id} shows its whole date`);
    }
    await screenshot(page, 'explore-unix-range');
    await page.locator('#query-form').evaluate((f) => f.requestSubmit());
    await ready(page);
    const state = await page.evaluate(() => window.firnUI.state());
    assert.equal(state.from, utc(FROM));
    assert.equal((await find(page, 'total'))[0].total, total);
    assert.deepEqual(errors, []);
  });
});

test('a bad query shows the parser\'s message and position', async () => {
  await withPage({}, async (page, errors) => {
    await load(page, firn, explore({ query: `${CPU}{job=}` }));
    const alert = page.getByRole('alert');
    await alert.waitFor({ state: 'visible', timeout: 5000 });
    const lines = (await alert.textContent()).split('\n');
    const m = /^Bad query: .*1:(\d+): unexpected "\}"/.exec(lines[0]);
    assert.ok(m, lines[0]);
    // the caret under the column the parser named, which holds the "}"
    assert.equal(lines[1].trim(), `${CPU}{job=}`);
    assert.equal(lines[2].indexOf('^') - lines[1].indexOf(CPU), Number(m[1]) - 1);
    assert.equal(`${CPU}{job=}`[Number(m[1]) - 1], '}');
    assert.ok(errors.every((e) => /HTTP 400/.test(e) || /status of 400/.test(e)), errors.join('\n'));
  });
});

test('chart: sum by a label draws one series per value, with a legend', async () => {
  await withPage({}, async (page, errors) => {
    await load(page, firn, explore({ query: CPU, sum_by: 'job' }));
    const legend = await page.locator('#chart .u-legend .u-series .u-label').allTextContents();
    assert.deepEqual(legend.slice(1).sort(), ['api', 'web']);
    assert.equal(await page.locator('#sumby').inputValue(), 'job');
    assert.deepEqual(errors, []);
  });
});

test('copy link puts the page\'s URL on the clipboard', async () => {
  await withPage({ permissions: ['clipboard-read', 'clipboard-write'] }, async (page, errors) => {
    await load(page, firn, explore({ query: A, search: 'main', view: 'flame' }));
    await page.evaluate(() => navigator.clipboard.writeText('before'));
    await page.getByRole('button', { name: 'Copy link' }).click();
    await page.waitForFunction(async () => (await navigator.clipboard.readText()) !== 'before', null, { timeout: 5000 });
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), page.url());
    assert.deepEqual(errors, []);
  });
});

test('autocomplete suggests label values narrowed by the selector', async () => {
  await withPage({}, async (page, errors) => {
    const asked = [];
    page.on('request', (r) => { if (r.url().includes('/api/v1/label/')) asked.push(new URL(r.url())); });
    await load(page, firn, explore({ query: A }));
    const q = page.getByRole('combobox', { name: 'Selector' });
    await q.fill(`${CPU}{instance="b:1", job="`);
    await q.press('End');
    const list = page.getByRole('listbox', { name: 'Suggestions' });
    await list.waitFor({ state: 'visible', timeout: 5000 });
    assert.deepEqual(await list.getByRole('option').allTextContents(), ['web']);
    // asked with the selector typed so far and a limit, never unbounded
    const ask = asked.find((u) => u.pathname === '/api/v1/label/job/values');
    assert.ok(ask, asked.map(String).join(' '));
    assert.equal(ask.searchParams.get('match[]'), `${CPU}{instance="b:1"}`);
    assert.ok(Number(ask.searchParams.get('limit')) > 0);
    await q.press('ArrowDown');
    await q.press('Enter');
    assert.equal(await q.inputValue(), `${CPU}{instance="b:1", job="web"}`);
    assert.deepEqual(errors, []);
  });
});

test('downloads: the pprof opens in go tool pprof with the same total; collapsed and SVG', async () => {
  const peer = pprofTop(fixture(A_FIXTURE));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firn-ui-dl-'));
  try {
    await withPage({ acceptDownloads: true }, async (page, errors) => {
      await load(page, firn, explore({ query: A }));
      const get = async (name) => {
        const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 10000 }), page.getByRole('link', { name, exact: true }).click()]);
        const file = path.join(dir, dl.suggestedFilename());
        await dl.saveAs(file);
        return file;
      };
      const file = await get('pprof');
      assert.equal(pprofTop(file).total, peer.total);
      const collapsed = fs.readFileSync(await get('collapsed'), 'utf8');
      const total = collapsed.trim().split('\n').reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
      assert.equal(total, peer.total);
      assert.match(fs.readFileSync(await get('SVG'), 'utf8'), /^<\?xml|<svg/);
      assert.deepEqual(errors, []);
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('dark mode follows the system and the toggle, and is remembered', async () => {
  await withPage({ colorScheme: 'dark' }, async (page, errors) => {
    await load(page, firn, explore({ query: A }));
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(bg, 'rgb(20, 23, 28)');
    await screenshot(page, 'explore-dark');
    await page.getByRole('button', { name: 'Dark theme' }).click();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light');
    await page.reload();
    await ready(page);
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light');
    assert.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(255, 255, 255)');
    assert.deepEqual(errors, []);
  });
});

test('keyboard: ? opens the help sheet, every control has an accessible name', async () => {
  await withPage({}, async (page, errors) => {
    await load(page, firn, explore({ query: A }));
    await page.keyboard.press('?');
    await page.getByRole('dialog', { name: 'Keyboard and mouse' }).waitFor({ state: 'visible', timeout: 5000 });
    await page.keyboard.press('Escape');
    // the graph by keyboard: down to the root's widest child, Enter zooms
    const [first] = (await page.evaluate(() => {
      const fg = window.firnUI.flamegraph;
      const r = fg.canvas.getBoundingClientRect();
      return [fg.hitTest(1, 30)].filter(Boolean).map((n) => ({ ...n, w: r.width }));
    }));
    assert.equal(first.depth, 1);
    await page.getByRole('img', { name: 'Flame graph', exact: true }).focus();
    await page.keyboard.press('ArrowDown');
    const tip = page.getByRole('tooltip');
    await tip.waitFor({ state: 'visible', timeout: 5000 });
    assert.ok((await tip.textContent()).startsWith(first.name), await tip.textContent());
    await page.keyboard.press('Enter');
    await ready(page);
    assert.equal(new URL(page.url()).searchParams.get('zoom'), first.name);
    const unnamed = await page.evaluate(() => [...document.querySelectorAll('input, select, button, canvas[role]')]
      .filter((e) => e.offsetParent !== null || e.tagName === 'CANVAS')
      .filter((e) => !(e.getAttribute('aria-label') || e.labels?.[0]?.textContent.trim() || (e.tagName === 'BUTTON' && e.textContent.trim())))
      .map((e) => e.outerHTML.slice(0, 80)));
    assert.deepEqual(unnamed, []);
    assert.deepEqual(errors, []);
  });
});
