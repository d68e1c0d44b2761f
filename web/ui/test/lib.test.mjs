// lib.test.mjs -- units, times, colours, URL state, selector parsing,
// profile type names.
import test from 'node:test';
import assert from 'node:assert/strict';
import { formatValue, formatRate, percent, change, num3, formatTime, counted } from '../js/lib/format.js';
import { parseTime, parseDuration, apiTime, inputTime, chooseStep } from '../js/lib/time.js';
import { packageOf, colorKey, hashColor, diffRatio, diffColor, diffLegend, hash32, textOn } from '../js/lib/colors.js';
import { parseState, formatState, defaultState, dataKey } from '../js/lib/url.js';
import { completionContext, applyCompletion, scanSelector, matchSelector, filterSuggestions, withMetric } from '../js/lib/selector.js';
import { splitType, friendlyName, chartExpr } from '../js/lib/types.js';

test('values by unit', () => {
  assert.equal(formatValue(1.5e9, 'nanoseconds'), '1.5 s');
  assert.equal(formatValue(2500000, 'nanoseconds'), '2.5 ms');
  assert.equal(formatValue(90e9, 'nanoseconds'), '1.5 min');
  assert.equal(formatValue(0, 'nanoseconds'), '0 s');
  assert.equal(formatValue(3 * 1024 * 1024, 'bytes'), '3 MiB');
  assert.equal(formatValue(512, 'bytes'), '512 B');
  assert.equal(formatValue(1234, 'count'), '1.23 k');
  assert.equal(formatValue(7, 'count'), '7');
  assert.equal(formatValue(12, 'objects'), '12 objects');
  assert.equal(num3(0.000123), '0.000123');
  assert.equal(num3(123.4), '123');
});

test('rates: CPU time per second is cores', () => {
  assert.equal(formatRate(2.5e9, 'nanoseconds'), '2.5 cores');
  assert.equal(formatRate(0.25, 'seconds'), '0.25 cores');
  assert.equal(formatRate(1e9, 'nanoseconds'), '1 core');
  assert.equal(formatRate(2048, 'bytes'), '2 KiB/s');
  assert.equal(formatRate(1500, 'count'), '1.5 k/s');
});

test('percentages and changes', () => {
  assert.equal(percent(1, 3), '33.3%');
  assert.equal(percent(1, 300), '0.33%');
  assert.equal(percent(1, 1e6), '<0.01%');
  assert.equal(percent(1, 0), '0%');
  assert.equal(change(100, 150), '+50.0%');
  assert.equal(change(100, 95), '-5.00%');
  assert.equal(change(0, 5), 'new');
  assert.equal(change(5, 0), 'gone');
  assert.equal(formatTime(Date.UTC(2026, 11, 7, 2, 30, 0)), '2026-12-07 02:30:00 UTC');
});

test('range inputs show Unix seconds as a UTC date that parses back to the same instant', () => {
  // 1764000000 s is 2025-11-24 16:00:00 UTC (date -u -d @1764000000).
  assert.equal(inputTime('1764000000'), '2025-11-24 16:00:00Z');
  assert.equal(inputTime('1764000000.25'), '2025-11-24 16:00:00.250Z');
  assert.equal(inputTime(1764000000), '2025-11-24 16:00:00Z');
  assert.equal(parseTime(inputTime('1764000000'), 0), 1764000000e3);
  assert.equal(parseTime(inputTime('1764000000.25'), 0), 1764000000250);
  for (const s of ['now-1h', 'now', '2026-12-07T02:00:00Z', '', 'soon']) assert.equal(inputTime(s), s);
});

test('times: now-relative, Unix seconds, RFC3339', () => {
  const now = Date.UTC(2026, 11, 7, 3, 0, 0);
  assert.equal(parseTime('now', now), now);
  assert.equal(parseTime('now-1h', now), now - 3600e3);
  assert.equal(parseTime('now - 15m', now), now - 900e3);
  assert.equal(parseTime('now-1h30m', now), now - 5400e3);
  assert.equal(parseTime('now-7d', now), now - 7 * 86400e3);
  assert.equal(parseTime('1764000000', now), 1764000000e3);
  assert.equal(parseTime('1764000000.5', now), 1764000000500);
  assert.equal(parseTime('2026-12-07T02:00:00Z', now), Date.UTC(2026, 11, 7, 2));
  assert.equal(parseTime('2026-12-07T04:00:00+02:00', now), Date.UTC(2026, 11, 7, 2));
  assert.equal(parseTime('2026-12-07 02:00:00', now), Date.UTC(2026, 11, 7, 2));
  assert.throws(() => parseTime('yesterday', now), /bad time "yesterday"/);
  assert.throws(() => parseTime('now-1x', now), /bad duration "1x"/);
  assert.equal(parseDuration('90s'), 90e3);
  assert.ok(Number.isNaN(parseDuration('5 minutes')));
  assert.equal(apiTime(1764000000500), '1764000000.5');
  assert.equal(chooseStep(3600e3), 15e3);
  assert.equal(chooseStep(60e3), 10e3);
});

test('package of a function name', () => {
  assert.equal(packageOf('github.com/x/y.(*T).Method'), 'github.com/x/y');
  assert.equal(packageOf('runtime.mallocgc'), 'runtime');
  assert.equal(packageOf('net/http.(*conn).serve'), 'net/http');
  assert.equal(packageOf('std::vector<int>::push_back'), 'std');
  assert.equal(packageOf('core::ptr::drop_in_place<T>'), 'core');
  assert.equal(packageOf('java.util.HashMap.get'), 'java');
  assert.equal(packageOf('main'), '');
  assert.equal(colorKey('main', '/usr/bin/app'), 'app');
  assert.equal(colorKey('runtime.x', '/usr/bin/app', 'binary'), 'app');
  assert.equal(colorKey('f', ''), 'f');
});

test('hash colours are stable and differ by key', () => {
  assert.equal(hash32(''), 0x811c9dc5);
  assert.equal(hash32('a'), 0xe40c292c); // FNV-1a reference value
  assert.equal(hashColor('runtime'), hashColor('runtime'));
  assert.notEqual(hashColor('runtime'), hashColor('net/http'));
  assert.match(hashColor('x', true), /^hsl\(\d+ \d+% (3\d)%\)$/);
});

test('diff ratios and colours: blue less, grey same, red more', () => {
  assert.equal(diffRatio(100, 100), 0);
  assert.equal(diffRatio(100, 150), 0.5);
  assert.equal(diffRatio(100, 500), 1);
  assert.equal(diffRatio(0, 5), 1);
  assert.equal(diffRatio(5, 0), -1);
  assert.equal(diffColor(0), 'rgb(160 160 160)');
  assert.equal(diffColor(1), 'rgb(215 48 39)');
  assert.equal(diffColor(-1), 'rgb(40 110 220)');
  assert.equal(diffColor(1, 'cb'), 'rgb(230 97 1)');
  assert.equal(diffColor(0.51), diffColor(0.5)); // quantized
  const legend = diffLegend();
  assert.equal(legend[0].ratio, -1);
  assert.equal(legend[legend.length - 1].ratio, 1);
});

test('text colour: dark on light fills, light on dark fills', () => {
  assert.equal(textOn('#ffffff'), '#111111');
  assert.equal(textOn('#000000'), '#f5f5f5');
  assert.equal(textOn('rgb(160 160 160)'), '#111111');
  assert.equal(textOn('rgb(40 110 220)'), '#f5f5f5');
  assert.equal(textOn('hsl(200 50% 75%)'), '#111111');
  assert.equal(textOn('hsl(200 50% 30%)'), '#f5f5f5');
  assert.equal(textOn('hsl(60 100% 50%)'), '#111111'); // yellow is light
  assert.equal(textOn('hsl(240 100% 50%)'), '#f5f5f5'); // blue is dark
});

test('URL state round trip, defaults left out', () => {
  assert.equal(formatState(defaultState()), '');
  const s = defaultState();
  Object.assign(s, {
    query: 'process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta{job="api"}', from: 'now-6h',
    zoom: ['main', 'a;b', 'c'], search: 'json', regex: true, view: 'sandwich', sandwich: 'runtime.mallocgc',
    compare: true, compare_from: '1764000000', diff: 'absolute', palette: 'cb', group_by: 'handler',
    sort: '-self', invert: true, merge_from: '1764000000', merge_to: '1764000600',
    expand: ['main;a', 'main;b|c'],
  });
  const q = formatState(s);
  const back = parseState(q);
  assert.deepEqual({ ...back, zoom: back.zoom.join(';') }, { ...s, zoom: s.zoom.join(';') });
  assert.deepEqual(back.zoom, ['main', 'a', 'b', 'c']); // ';' separates frames, as in collapsed stacks
  assert.deepEqual(back.expand, ['main;a', 'main;b|c']);
  assert.equal(new URLSearchParams(q).getAll('expand').length, 2);
  assert.equal(parseState('view=bogus&diff=x').view, 'both');
  assert.equal(parseState('?query=a&from=now-1h&to=now').query, 'a');
  assert.notEqual(dataKey(s), dataKey({ ...s, filter: 'x' }));
  assert.equal(dataKey(s), dataKey({ ...s, search: 'other' }));
});

test('selector: completion context', () => {
  const t = 'process_cpu:cpu{job="api", inst';
  let c = completionContext(t, t.length);
  assert.equal(c.kind, 'label');
  assert.equal(c.prefix, 'inst');
  assert.equal(c.match, 'process_cpu:cpu{job="api"}');
  const t2 = 'mem{job="api", instance="10.0';
  c = completionContext(t2, t2.length);
  assert.deepEqual([c.kind, c.label, c.prefix, c.match], ['value', 'instance', '10.0', 'mem{job="api"}']);
  c = completionContext('proc', 4);
  assert.deepEqual([c.kind, c.prefix], ['metric', 'proc']);
  c = completionContext('m{job=', 6);
  assert.deepEqual([c.kind, c.label, c.quote], ['value', 'job', '']);
  c = completionContext('m{job="a"} ', 11);
  assert.equal(c.kind, 'none');
  c = completionContext('m{a="x\\"y", b=~"z.*"}', 3);
  assert.equal(c.kind, 'label');
  const s = scanSelector('m{a="x\\"y", b=~"z.*"}');
  assert.deepEqual(s.matchers, [{ name: 'a', op: '=', value: 'x"y' }, { name: 'b', op: '=~', value: 'z.*' }]);
  assert.equal(matchSelector('m', s.matchers), 'm{a="x\\"y",b=~"z.*"}');
  assert.equal(matchSelector('', []), '');
  assert.equal(matchSelector('', [{ name: 'job', op: '!=', value: 'x' }]), '');
  assert.equal(matchSelector('m', [{ name: 'job', op: '=', value: '' }]), 'm{}');
  assert.equal(matchSelector('', [{ name: 'job', op: '=', value: '' }, { name: 'a', op: '=~', value: 'b.*' }]), '{a=~"b.*"}');
});

test('selector: applying a completion', () => {
  let t = 'm{job="api", inst';
  let c = completionContext(t, t.length);
  let r = applyCompletion(t, c, 'instance');
  assert.equal(r.text, 'm{job="api", instance=""}');
  assert.equal(r.text[r.pos], '"');
  c = completionContext(r.text, r.pos);
  assert.equal(c.kind, 'value');
  r = applyCompletion(r.text, c, '10.0.0.1:6060');
  assert.equal(r.text, 'm{job="api", instance="10.0.0.1:6060"}');
  t = 'm{job=';
  r = applyCompletion(t, completionContext(t, t.length), 'a"b');
  assert.equal(r.text, 'm{job="a\\"b"}');
  t = 'm{job="ap';
  r = applyCompletion(t, completionContext(t, t.length), 'api');
  assert.deepEqual(r, { text: 'm{job="api"}', pos: 12 });
  t = 'pro{job="x"}';
  r = applyCompletion(t, completionContext(t, 2), 'process_cpu');
  assert.equal(r.text, 'process_cpu{job="x"}');
  assert.deepEqual(filterSuggestions(['api', 'web', 'rapid', 'API2'], 'ap'), ['api', 'API2', 'rapid']);
  assert.equal(withMetric('a:b{job="x"}', 'c:d'), 'c:d{job="x"}');
  assert.equal(withMetric('', 'c:d'), 'c:d');
  assert.equal(withMetric('{job="x"}', 'c:d'), 'c:d{job="x"}');
});

test('profile types: friendly names and chart expressions', () => {
  const t = splitType('process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta');
  assert.equal(t.delta, true);
  assert.equal(friendlyName(t), 'CPU');
  assert.equal(friendlyName(splitType('memory:inuse_space:bytes:space:bytes')), 'In-use memory');
  assert.equal(friendlyName(splitType('memory:alloc_space:bytes:space:bytes:delta')), 'Memory allocated');
  assert.equal(friendlyName(splitType('mutex:delay:nanoseconds:contentions:count:delta')), 'Mutex contention');
  assert.equal(friendlyName(splitType('custom:thing:count::')), 'custom (thing)');
  assert.equal(chartExpr('a{x="y"}', true, 15, ''), 'sum (rate(a{x="y"}[15s]))');
  assert.equal(chartExpr('a', false, 15, 'job'), 'sum by (job) (a)');
});

test('counted: a count with its noun, singular only for one', () => {
  assert.equal(counted(0, 'rule'), '0 rules');
  assert.equal(counted(1, 'rule'), '1 rule');
  assert.equal(counted(2, 'group'), '2 groups');
  assert.equal(counted(1, 'alerting rule'), '1 alerting rule');
  assert.equal(counted(3, 'child', 'children'), '3 children');
});
