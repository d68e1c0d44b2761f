// rules.test.mjs -- grouping, state counts, filtering and durations of
// /api/v1/rules for the Alerts and Rules pages.
import test from 'node:test';
import assert from 'node:assert/strict';
import { alertGroups, ruleGroups, parseStates, formatDuration, exploreHref } from '../js/lib/rules.js';

const data = {
  groups: [
    {
      name: 'a', file: '/etc/r1.yml', interval: 60,
      rules: [
        { type: 'recording', name: 'job:x:sum', query: 'sum(x)', health: 'ok' },
        { type: 'alerting', name: 'Hot', query: 'x > 1', state: 'firing', labels: { severity: 'page' }, annotations: {},
          alerts: [{ labels: { alertname: 'Hot', job: 'api' }, state: 'firing' }] },
        { type: 'alerting', name: 'Cold', query: 'x < 0', state: 'inactive', labels: {}, annotations: { summary: 'freezing' }, alerts: [] },
      ],
    },
    { name: 'only-records', file: '/etc/r1.yml', rules: [{ type: 'recording', name: 'y', query: 'y', health: 'err', lastError: 'boom' }] },
    {
      name: 'b', file: '/etc/r2.yml',
      rules: [{ type: 'alerting', name: 'Slow', query: 'z > 2', state: 'pending', labels: {}, annotations: {}, alerts: [] }],
    },
  ],
};

test('alert groups keep alerting rules only, with counts per state', () => {
  const { groups, counts } = alertGroups(data);
  assert.deepEqual(groups.map((g) => [g.name, g.rules.map((r) => r.name)]), [['a', ['Hot', 'Cold']], ['b', ['Slow']]]);
  assert.deepEqual(counts, { inactive: 1, pending: 1, firing: 1 });
  assert.deepEqual(groups[0].counts, { inactive: 1, pending: 0, firing: 1 });
  assert.deepEqual(alertGroups({}).groups, []);
  assert.deepEqual(alertGroups(null).counts, { inactive: 0, pending: 0, firing: 0 });
});

test('alert filters: state and words (name, expression, labels, annotations, alert labels)', () => {
  const names = (o) => o.groups.flatMap((g) => g.rules.map((r) => r.name));
  assert.deepEqual(names(alertGroups(data, { states: ['firing'] })), ['Hot']);
  assert.deepEqual(names(alertGroups(data, { states: ['inactive', 'pending'] })), ['Cold', 'Slow']);
  assert.deepEqual(names(alertGroups(data, { text: 'FREEZING' })), ['Cold']);
  assert.deepEqual(names(alertGroups(data, { text: 'job="api"' })), ['Hot']);
  assert.deepEqual(names(alertGroups(data, { text: 'z >' })), ['Slow']);
  assert.deepEqual(names(alertGroups(data, { text: 'hot page' })), ['Hot']);
  assert.deepEqual(names(alertGroups(data, { text: 'hot nope' })), []);
  // counts stay those of every rule
  assert.deepEqual(alertGroups(data, { text: 'nope', states: ['firing'] }).counts, { inactive: 1, pending: 1, firing: 1 });
});

test('rule groups: every group, rules filtered, a matching group keeps all', () => {
  assert.deepEqual(ruleGroups(data).map((g) => [g.name, g.total, g.rules.length]), [['a', 3, 3], ['only-records', 1, 1], ['b', 1, 1]]);
  assert.deepEqual(ruleGroups(data, 'boom').map((g) => g.rules.length), [0, 1, 0]);
  assert.deepEqual(ruleGroups(data, 'r2.yml').map((g) => g.rules.length), [0, 0, 1]);
  assert.deepEqual(ruleGroups(data, 'sum(').map((g) => g.rules.map((r) => r.name)), [['job:x:sum'], [], []]);
  assert.deepEqual(ruleGroups({}), []);
});

test('states from the URL', () => {
  assert.deepEqual(parseStates('firing,pending'), ['pending', 'firing']);
  assert.deepEqual(parseStates('bogus,inactive'), ['inactive']);
  assert.deepEqual(parseStates(''), []);
  assert.deepEqual(parseStates(null), []);
});

test('durations as Prometheus prints them', () => {
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(30), '30s');
  assert.equal(formatDuration(90), '1m30s');
  assert.equal(formatDuration(3600), '1h');
  assert.equal(formatDuration(86400 + 60), '1d1m');
  assert.equal(formatDuration(14 * 86400), '2w');
  assert.equal(formatDuration(0.25), '250ms');
  assert.equal(formatDuration(NaN), '');
  assert.equal(formatDuration(-1), '');
});

test('Explore links carry the query', () => {
  assert.equal(exploreHref('vector(1) > 0'), '/?query=vector%281%29+%3E+0');
  assert.equal(new URLSearchParams(exploreHref('a{b="c"} > 1').slice(2)).get('query'), 'a{b="c"} > 1');
});
