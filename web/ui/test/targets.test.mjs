// targets.test.mjs -- grouping and filtering of /api/v1/targets.
import test from 'node:test';
import assert from 'node:assert/strict';
import { groupTargets, formatSeconds } from '../js/lib/targets.js';

const data = {
  activeTargets: [
    { scrapePool: 'web', scrapeUrl: 'http://b:1/debug/pprof/heap', health: 'down', labels: { job: 'web', instance: 'b:1' }, lastError: 'connection refused' },
    { scrapePool: 'api', scrapeUrl: 'http://a:1/debug/pprof/profile', health: 'up', labels: { job: 'api', instance: 'a:1' }, lastError: '' },
    { scrapePool: 'web', scrapeUrl: 'http://a:2/debug/pprof/heap', health: 'up', labels: { job: 'web', instance: 'a:2' }, lastError: '' },
  ],
};

test('pools in name order with their health counts', () => {
  const p = groupTargets(data);
  assert.deepEqual(p.map((x) => [x.name, x.up, x.total, x.targets.length]), [['api', 1, 1, 1], ['web', 1, 2, 2]]);
  assert.equal(p[1].targets[0].scrapeUrl, 'http://a:2/debug/pprof/heap');
});

test('filter by words (all must match) and by health', () => {
  assert.deepEqual(groupTargets(data, 'refused').map((x) => x.targets.length), [0, 1]);
  assert.deepEqual(groupTargets(data, 'heap a:2').map((x) => x.targets.length), [0, 1]);
  assert.deepEqual(groupTargets(data, 'JOB="API"').map((x) => x.targets.length), [1, 0]);
  assert.deepEqual(groupTargets(data, '', 'down').map((x) => x.targets.length), [0, 1]);
  assert.deepEqual(groupTargets({}).length, 0);
});

test('durations', () => {
  assert.equal(formatSeconds(0.0042), '4 ms');
  assert.equal(formatSeconds(1.234), '1.23 s');
  assert.equal(formatSeconds(NaN), '');
});
