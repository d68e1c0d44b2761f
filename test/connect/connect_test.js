// connect_test.js -- firn's Pyroscope API through the real Connect client
// libraries (@connectrpc/connect, @connectrpc/connect-node,
// @bufbuild/protobuf), with no generated code: the services come from the
// descriptor set protoc-c builds from the vendored protos.
//
// usage: node connect_test.js BASE_URL DESCRIPTOR_SET EXPECT_JSON
//
// EXPECT_JSON (written by test/e2e/grafana_connect.sh) holds what other
// tools said about the same data: `go tool pprof -top` tables (flat, cum per
// function) of the scraped profiles and of the fixture files pushed here,
// and /api/v1/query_range's points.  Every RPC runs over four transports
// (binary and JSON, each with and without gzip in both directions); each
// check prints "ok ..." or "FAIL ...", and the exit status is 1 when one
// failed.
import { readFileSync } from 'node:fs';
import { createFileRegistry, fromBinary, toJson } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { compressionGzip, createConnectTransport } from '@connectrpc/connect-node';

const [baseUrl, fdsPath, expectPath] = process.argv.slice(2);
if (!baseUrl || !fdsPath || !expectPath) {
  console.error('usage: node connect_test.js BASE_URL DESCRIPTOR_SET EXPECT_JSON');
  process.exit(2);
}
const expect = JSON.parse(readFileSync(expectPath, 'utf8'));
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(fdsPath)));
const services = {
  querier: registry.getService('querier.v1.QuerierService'),
  pusher: registry.getService('push.v1.PusherService'),
  settings: registry.getService('settings.v1.SettingsService'),
};

let failed = 0;
function ok(what) { console.log(`ok ${what}`); }
function fail(what, why) { failed++; console.log(`FAIL ${what}: ${why}`); }
function check(what, cond, why) { cond ? ok(what) : fail(what, why ?? 'false'); }
function same(what, got, want) {
  const g = JSON.stringify(got), w = JSON.stringify(want);
  g === w ? ok(what) : fail(what, `got ${g.slice(0, 400)} want ${w.slice(0, 400)}`);
}
async function rejects(what, promise, code) {
  try {
    await promise;
    fail(what, `succeeded; want ${Code[code]}`);
  } catch (e) {
    const ce = ConnectError.from(e);
    ce.code === code ? ok(`${what} (${Code[code]}: ${ce.rawMessage.slice(0, 80)})`)
                     : fail(what, `got ${Code[ce.code]} (${ce.rawMessage}) want ${Code[code]}`);
  }
}

const CPU = 'process_cpu:cpu:nanoseconds:cpu:nanoseconds';
const SAMPLES = 'process_cpu:samples:count:cpu:nanoseconds';
const start = BigInt(expect.start), end = BigInt(expect.end);

// The flame graph's bars from `levels` as Grafana's levelsToTree reads
// them: [x delta, total, self, name] per bar, x relative to the end of the
// previous bar in the level.  Checks the encoding's invariants on the way.
function decode(fg, what) {
  const levels = fg.levels.map((l) => l.values.map(Number));
  const bars = [];
  let bad = '';
  levels.forEach((vals, depth) => {
    if (vals.length % 4) bad ||= `level ${depth} has ${vals.length} values`;
    let prevEnd = 0;
    for (let i = 0; i < vals.length; i += 4) {
      const x = prevEnd + vals[i];
      const bar = { depth, x, total: vals[i + 1], self: vals[i + 2], name: fg.names[vals[i + 3]] };
      prevEnd = x + bar.total;
      if (depth > 0) {   // the parent: the bar one level up whose span holds this one
        bar.parent = bars.findLast((p) => p.depth === depth - 1 && p.x <= x && x + bar.total <= p.x + p.total);
        if (!bar.parent) bad ||= `bar ${bar.name} at depth ${depth} has no parent`;
      }
      bars.push(bar);
    }
  });
  check(`${what}: names[0] is "total" and level 0 is [0, total, 0, 0]`,
        fg.names[0] === 'total' && levels[0].join() === `0,${Number(fg.total)},0,0`,
        `${fg.names[0]} ${levels[0]}`);
  check(`${what}: every bar lies within its parent`, !bad, bad);
  const kids = new Map();
  for (const b of bars) if (b.parent) kids.set(b.parent, (kids.get(b.parent) ?? 0) + b.total);
  const over = bars.find((b) => (kids.get(b) ?? 0) + b.self > b.total);
  check(`${what}: self plus children never exceeds a bar's total`, !over, over?.name);
  const maxSelf = Math.max(...bars.map((b) => b.self));
  same(`${what}: max_self is the largest self`, Number(fg.maxSelf), maxSelf);
  return bars;
}

// Per function: flat (sum of self) and cum (the totals of its bars that
// have no ancestor of the same name), as go tool pprof -top counts them.
function table(bars) {
  const t = {};
  for (const b of bars) {
    if (b.depth === 0) continue;
    t[b.name] ??= [0, 0];
    t[b.name][0] += b.self;
    let a = b.parent, rec = false;
    while (a && !rec) { rec = a.name === b.name; a = a.parent; }
    if (!rec) t[b.name][1] += b.total;
  }
  return t;
}

function sameTable(what, got, want) {
  const names = [...new Set([...Object.keys(got), ...Object.keys(want)])].sort();
  const diff = names.filter((n) => JSON.stringify(got[n] ?? [0, 0]) !== JSON.stringify(want[n] ?? [0, 0]));
  check(`${what}: flat and cum of all ${names.length} functions equal go tool pprof's`, diff.length === 0,
        diff.slice(0, 5).map((n) => `${n}: ${JSON.stringify(got[n])} vs ${JSON.stringify(want[n])}`).join('; '));
}

const TRANSPORTS = [
  { name: 'binary', useBinaryFormat: true },
  { name: 'binary+gzip', useBinaryFormat: true, gzip: true },
  { name: 'json', useBinaryFormat: false },
  { name: 'json+gzip', useBinaryFormat: false, gzip: true },
];

function clients(t) {
  const transport = createConnectTransport({
    baseUrl, httpVersion: '1.1', useBinaryFormat: t.useBinaryFormat,
    acceptCompression: t.gzip ? [compressionGzip] : [],
    sendCompression: t.gzip ? compressionGzip : undefined,
    compressMinBytes: 0,
  });
  return {
    q: createClient(services.querier, transport),
    push: createClient(services.pusher, transport),
    settings: createClient(services.settings, transport),
  };
}

// Everything each transport must answer the same; the answers are compared
// across transports as protobuf JSON.
async function run(t, answers) {
  const { q, push, settings } = clients(t);
  const tag = t.name;
  const keep = (k, schema, m) => { answers[k] = toJson(schema, m); return m; };
  const Q = services.querier.method;

  // Grafana's health check: a range in 1970 with no data answers 200.
  const health = await q.profileTypes({ start: 1000n, end: 4000n });
  same(`${tag}: ProfileTypes over 1970 (Grafana's health check) is empty`, health.profileTypes.length, 0);
  const types = keep('types', Q.profileTypes.output, await q.profileTypes({ start, end }));
  const ids = types.profileTypes.map((p) => p.ID);
  check(`${tag}: ProfileTypes lists the Go CPU types by Pyroscope's IDs`, ids.includes(CPU) && ids.includes(SAMPLES), ids.join(' '));
  check(`${tag}: every profile type ID has five fields and no :delta`,
        ids.every((id) => id.split(':').length === 5), ids.join(' '));
  const cpuType = types.profileTypes.find((p) => p.ID === CPU);
  same(`${tag}: the CPU type's fields`, cpuType && [cpuType.name, cpuType.sampleType, cpuType.sampleUnit, cpuType.periodType, cpuType.periodUnit],
       ['process_cpu', 'cpu', 'nanoseconds', 'cpu', 'nanoseconds']);

  const names = keep('names', Q.labelNames.output, await q.labelNames({ matchers: ['{service_name="go"}'], start, end }));
  check(`${tag}: LabelNames has service_name, __profile_type__, __name__, job`,
        ['service_name', '__profile_type__', '__name__', 'job'].every((n) => names.names.includes(n)), names.names.join(' '));
  same(`${tag}: LabelNames is sorted`, names.names, [...names.names].sort());
  const svc = keep('services', Q.labelValues.output, await q.labelValues({ name: 'service_name', matchers: [`{__profile_type__="${CPU}"}`], start, end }));
  check(`${tag}: LabelValues service_name holds "go" (from job)`, svc.names.includes('go'), svc.names.join(' '));
  const pn = await q.labelValues({ name: '__name__', matchers: ['{service_name="go"}'], start, end });
  check(`${tag}: LabelValues __name__ are profile names`, pn.names.includes('process_cpu') && pn.names.includes('memory') && pn.names.every((n) => !n.includes(':')), pn.names.join(' '));

  // (the pushes below add services in this range: the answers compared
  // across transports are the Go service's alone)
  const series = await q.series({ labelNames: ['service_name', '__profile_type__'], start, end });
  keep('series', Q.series.output, await q.series({ matchers: ['{service_name="go"}'], labelNames: ['service_name', '__profile_type__'], start, end }));
  const sets = series.labelsSet.map((l) => Object.fromEntries(l.labels.map((p) => [p.name, p.value])));
  check(`${tag}: Series projects onto service_name and __profile_type__`,
        sets.length > 0 && sets.every((s) => Object.keys(s).length === 2 && s.service_name && s.__profile_type__),
        JSON.stringify(sets.slice(0, 3)));
  check(`${tag}: Series has (go, ${CPU})`, sets.some((s) => s.service_name === 'go' && s.__profile_type__ === CPU), JSON.stringify(sets));

  const stats = await q.getProfileStats({});
  check(`${tag}: GetProfileStats says data was ingested, oldest <= newest`,
        stats.dataIngested && stats.oldestProfileTime > 0n && stats.oldestProfileTime <= stats.newestProfileTime,
        toJson(Q.getProfileStats.output, stats));

  // Flame graph of the scraped profiles against go tool pprof on firn's pprof export.
  const fg = await q.selectMergeStacktraces({ profileTypeID: SAMPLES, labelSelector: '{service_name="go"}', start, end, MaxNodes: { case: 'maxNodes', value: 1048576n } });
  keep('flamegraph', Q.selectMergeStacktraces.output, fg);
  if (!fg.flamegraph) {
    fail(`${tag}: SelectMergeStacktraces of the scraped Go service`, 'no flame graph');
  } else {
    const bars = decode(fg.flamegraph, `${tag}: scraped flame graph`);
    same(`${tag}: scraped flame graph total`, Number(fg.flamegraph.total), expect.scraped.total);
    sameTable(`${tag}: scraped flame graph`, table(bars), expect.scraped.top);
    // max_nodes: the smaller nodes summed into "other", totals kept
    const small = await q.selectMergeStacktraces({ profileTypeID: SAMPLES, labelSelector: '{service_name="go"}', start, end, MaxNodes: { case: 'maxNodes', value: 5n } });
    const sb = decode(small.flamegraph, `${tag}: max_nodes=5 flame graph`);
    // Pyroscope's rule, from the full graph: the 5th largest total is the
    // least a node needs to keep its bar; the others go into "other".
    const totals = bars.filter((b) => b.depth > 0).map((b) => b.total).sort((a, b) => b - a);
    const minVal = totals[4];
    const key = (b) => `${b.depth}:${b.name}:${b.total}`;
    same(`${tag}: max_nodes=5 keeps exactly the bars whose total reaches the 5th largest (${minVal})`,
         sb.filter((b) => b.depth > 0 && b.name !== 'other').map(key).sort(),
         bars.filter((b) => b.depth > 0 && b.total >= minVal).map(key).sort());
    check(`${tag}: max_nodes=5 sums the rest into "other" bars`,
          sb.some((b) => b.name === 'other') === totals.some((t) => t < minVal), 'other missing or extra');
    same(`${tag}: max_nodes=5 keeps the total`, Number(small.flamegraph.total), expect.scraped.total);
    // call site: the path to a node holding part of the total (not all of
    // it, so that the filter shows), root first
    const part = bars.filter((b) => b.depth > 0 && b.total < Number(fg.flamegraph.total)).sort((a, b) => b.total - a.total)[0];
    const path = [];
    for (let b = part; b && b.depth > 0; b = b.parent) path.unshift({ name: b.name });
    const site = path.map((p) => p.name).join(' > ');
    const cs = await q.selectMergeStacktraces({ profileTypeID: SAMPLES, labelSelector: '{service_name="go"}', start, end,
      StackTraceSelector: { case: 'stackTraceSelector', value: { callSite: path } } });
    same(`${tag}: call_site [${site}] keeps the stacks under it (${part.total} of ${Number(fg.flamegraph.total)})`,
         Number(cs.flamegraph?.total), part.total);
    const css = await q.selectSeries({ profileTypeID: SAMPLES, labelSelector: '{service_name="go"}', start, end, step: 60,
      StackTraceSelector: { case: 'stackTraceSelector', value: { callSite: path } } });
    same(`${tag}: SelectSeries with that call_site sums to the node's total`,
         (css.series[0]?.points ?? []).reduce((a, p) => a + p.value, 0), part.total);
  }
  const none = await q.selectMergeStacktraces({ profileTypeID: SAMPLES, labelSelector: '{service_name="no-such-service"}', start, end });
  check(`${tag}: nothing matching answers no flame graph (Grafana's "no data")`, none.flamegraph === undefined, toJson(Q.selectMergeStacktraces.output, none));
  const spans = await q.selectMergeStacktraces({ profileTypeID: SAMPLES, labelSelector: '{service_name="go"}', start, end, spanSelector: ['9a517183f26a089d'] });
  check(`${tag}: a span selector selects nothing (firn has no span IDs)`, spans.flamegraph === undefined, 'a flame graph');

  // Push: the fixture, then its flame graph against go tool pprof on the file.
  for (const p of expect.pushed) {
    const service = `pushed-${p.key}-${tag}`;
    await push.push({ series: [{ labels: [{ name: '__name__', value: 'process_cpu' }, { name: 'service_name', value: service },
      { name: 'otel.scope.name', value: 'e2e' }, { name: '__delta__', value: 'false' }],
    samples: [{ rawProfile: readFileSync(p.file), ID: '734FD599-6865-419E-9475-932762D8F469' }] }] });
    ok(`${tag}: Push ${p.key} as service_name=${service}`);
    // start = end = 0: all time (the fixture was recorded years ago)
    const pf = await q.selectMergeStacktraces({ profileTypeID: SAMPLES, labelSelector: `{service_name="${service}"}`, start: 0n, end: 0n });
    if (!pf.flamegraph) {
      fail(`${tag}: flame graph of the pushed ${p.key}`, 'none');
      continue;
    }
    sameTable(`${tag}: pushed ${p.key} flame graph`, table(decode(pf.flamegraph, `${tag}: pushed ${p.key}`)), p.top);
    same(`${tag}: pushed ${p.key} flame graph total`, Number(pf.flamegraph.total), p.total);
    const ln = await q.labelNames({ matchers: [`{service_name="${service}"}`] });
    check(`${tag}: the pushed series has otel_scope_name, not __delta__`, ln.names.includes('otel_scope_name') && !ln.names.includes('__delta__'), ln.names.join(' '));
    const prof = await q.selectMergeProfile({ profileTypeID: SAMPLES, labelSelector: `{service_name="${service}"}` });
    const sum = prof.sample.reduce((a, s) => a + Number(s.value[0]), 0);
    same(`${tag}: SelectMergeProfile of the pushed ${p.key} sums to its total`, sum, p.total);
    same(`${tag}: SelectMergeProfile's sample type`, prof.sampleType.map((v) => prof.stringTable[Number(v.type)]), ['samples']);
  }

  // Cumulative pushes (no __delta__): the first is the baseline, the
  // second stored as its difference, as go tool pprof -base computes it.
  {
    const cum = expect.cumulative, service = `cumulative-${tag}`;
    const pushAllocs = (file) => push.push({ series: [{ labels: [{ name: '__name__', value: 'memory' },
      { name: 'service_name', value: service }], samples: [{ rawProfile: readFileSync(file) }] }] });
    const ALLOC = 'memory:alloc_space:bytes:space:bytes', INUSE = 'memory:inuse_space:bytes:space:bytes';
    const sel = `{service_name="${service}"}`;
    await pushAllocs(cum.first);
    const first = await q.selectMergeStacktraces({ profileTypeID: ALLOC, labelSelector: sel, start: 0n, end: 0n });
    check(`${tag}: the first cumulative push is only the baseline (nothing stored)`, first.flamegraph === undefined, 'stored');
    await pushAllocs(cum.second);
    const ap = await q.selectMergeStacktraces({ profileTypeID: ALLOC, labelSelector: sel, start: 0n, end: 0n, MaxNodes: { case: 'maxNodes', value: 1048576n } });
    const total = (top) => Object.values(top).reduce((a, v) => a + v[0], 0);
    if (total(cum.alloc_space) === 0) {
      check(`${tag}: the second push, no allocation in between: nothing to store`, ap.flamegraph === undefined, 'stored');
    } else {
      sameTable(`${tag}: the second cumulative push: alloc_space`, ap.flamegraph ? table(decode(ap.flamegraph, `${tag}: alloc delta`)) : {},
                Object.fromEntries(Object.entries(cum.alloc_space).filter(([, v]) => v[0] || v[1])));
    }
    const ip = await q.selectMergeStacktraces({ profileTypeID: INUSE, labelSelector: sel, start: 0n, end: 0n, MaxNodes: { case: 'maxNodes', value: 1048576n } });
    sameTable(`${tag}: ... and inuse_space, a snapshot, as pushed`, ip.flamegraph ? table(decode(ip.flamegraph, `${tag}: inuse`)) : {},
              Object.fromEntries(Object.entries(cum.inuse_space).filter(([, v]) => v[0] || v[1])));
  }

  // Diff: the scraped window on the left, the pushed fixture on the right;
  // each side's flat per function is go tool pprof's.
  const fix = expect.pushed[0];
  const diff = await q.diff({
    left: { profileTypeID: SAMPLES, labelSelector: '{service_name="go"}', start, end, MaxNodes: { case: 'maxNodes', value: 1048576n } },
    right: { profileTypeID: SAMPLES, labelSelector: `{service_name="pushed-${fix.key}-${tag}"}`, start: 0n, end: 0n } });
  const d = diff.flamegraph;
  same(`${tag}: Diff leftTicks and rightTicks are both sides' totals`, [Number(d?.leftTicks), Number(d?.rightTicks)],
       [expect.scraped.total, fix.total]);
  if (d) {
    const flat = [{}, {}];
    let bad = '';
    d.levels.forEach((l, depth) => {
      if (l.values.length % 7) bad ||= `level ${depth}: ${l.values.length} values`;
      for (let i = 0; i < l.values.length; i += 7) {
        const name = d.names[Number(l.values[i + 6])];
        if (depth === 0) continue;
        for (const sd of [0, 1]) {
          const self = Number(l.values[i + 3 * sd + 2]);
          if (self) flat[sd][name] = (flat[sd][name] ?? 0) + self;
        }
      }
    });
    check(`${tag}: Diff levels hold 7 values per bar`, !bad, bad);
    const want = (top) => Object.fromEntries(Object.entries(top).filter(([, v]) => v[0]).map(([k, v]) => [k, v[0]]));
    const sorted = (o) => Object.fromEntries(Object.entries(o).sort());
    same(`${tag}: Diff left flat per function is go tool pprof's on the scraped export`, sorted(flat[0]), sorted(want(expect.scraped.top)));
    same(`${tag}: Diff right flat per function is go tool pprof's on ${fix.key}`, sorted(flat[1]), sorted(want(fix.top)));
  }
  await rejects(`${tag}: Diff of two profile types`, q.diff({ left: { profileTypeID: SAMPLES, start, end }, right: { profileTypeID: CPU, start, end } }), Code.InvalidArgument);

  // SelectSeries against /api/v1/query_range on the same data.
  const step = expect.range.step;
  const ss = keep('selectSeries', Q.selectSeries.output, await q.selectSeries({ profileTypeID: CPU, labelSelector: '{service_name="go"}', start, end, step }));
  same(`${tag}: SelectSeries (no group_by) is one series without labels`, ss.series.map((s) => s.labels.length), [0]);
  same(`${tag}: SelectSeries SUM points equal query_range's sum(sum_over_time(...[${step}s]))`,
       (ss.series[0]?.points ?? []).map((p) => [Number(p.timestamp), p.value]), expect.range.sum);
  const avg = await q.selectSeries({ profileTypeID: CPU, labelSelector: '{service_name="go"}', start, end, step, groupBy: ['service_name'],
    Aggregation: { case: 'aggregation', value: 1 } });
  same(`${tag}: SelectSeries AVERAGE by service_name equals sum_over_time / count_over_time`,
       avg.series.map((s) => [s.labels.map((l) => `${l.name}=${l.value}`).join(), s.points.map((p) => [Number(p.timestamp), p.value])]),
       [['service_name=go', expect.range.avg]]);
  const all = await q.selectSeries({ profileTypeID: SAMPLES, labelSelector: '{}', start: 1n, end: BigInt(Date.now()), step: 3600, groupBy: ['service_name'] });
  const lim = await q.selectSeries({ profileTypeID: SAMPLES, labelSelector: '{}', start: 1n, end: BigInt(Date.now()), step: 3600, groupBy: ['service_name'], Limit: { case: 'limit', value: 1n } });
  const totalOf = (s) => s.points.reduce((a, p) => a + p.value, 0);
  const biggest = Math.max(...all.series.map(totalOf));
  check(`${tag}: SelectSeries limit=1 keeps a series with the largest total of ${all.series.length}`,
        all.series.length > 1 && lim.series.length === 1 && totalOf(lim.series[0]) === biggest,
        `${lim.series.length} series`);

  // Settings, as the Drilldown stores its plugin settings.
  const value = JSON.stringify({ maxNodes: 16384, transport: tag });
  const set = await settings.set({ setting: { name: 'pluginSettings', value } });
  same(`${tag}: Settings Set answers the setting`, set.setting?.value, value);
  const got = await settings.get({});
  same(`${tag}: Settings Get returns it`, got.settings.find((s) => s.name === 'pluginSettings')?.value, value);

  // What firn does not do, as the clients expect to hear it.
  await rejects(`${tag}: SelectHeatmap`, q.selectHeatmap({ profileTypeID: CPU, start, end, step: 15 }), Code.Unimplemented);
  await rejects(`${tag}: AnalyzeQuery`, q.analyzeQuery({ start, end, query: '{}' }), Code.Unimplemented);
  await rejects(`${tag}: a bad selector`, q.labelNames({ matchers: ['{service_name='], start, end }), Code.InvalidArgument);
  await rejects(`${tag}: SelectSeries with step 0`, q.selectSeries({ profileTypeID: CPU, labelSelector: '{}', start, end, step: 0 }), Code.InvalidArgument);
  await rejects(`${tag}: max_nodes over 2^20`, q.selectMergeStacktraces({ profileTypeID: CPU, labelSelector: '{}', start, end, MaxNodes: { case: 'maxNodes', value: 1048577n } }), Code.InvalidArgument);
  await rejects(`${tag}: Push of a body that is not pprof`, push.push({ series: [{ labels: [{ name: '__name__', value: 'process_cpu' }, { name: 'service_name', value: 'bad' }],
    samples: [{ rawProfile: new TextEncoder().encode('not a profile') }] }] }), Code.InvalidArgument);
}

const answers = {};
for (const t of TRANSPORTS) {
  answers[t.name] = {};
  try {
    await run(t, answers[t.name]);
  } catch (e) {
    fail(`${t.name}: a call failed`, `${e?.stack ?? e}`.slice(0, 600));
  }
}
// The same questions get the same answers over every transport.
for (const t of TRANSPORTS.slice(1))
  for (const k of Object.keys(answers.binary))
    same(`${t.name} answers ${k} as binary does`, answers[t.name][k], answers.binary[k]);
process.exit(failed ? 1 : 0);
