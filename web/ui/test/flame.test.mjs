// flame.test.mjs -- the flame graph data module: flattening, layout, hit
// testing, search share, top table, sandwich, inverted tree, grafting.
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  buildFlame, makeView, hitTest, nodeRect, pathOf, findPath, matcher, searchFlame, topTable,
  sortRows, invertFlame, sandwich, graftChildren, exactRegex, levelRange, KIND_OTHER, KIND_GROUP,
} from '../js/lib/flame.js';

// total 100: main(0 self) -> a(60: self 10) -> b(50 self), main -> c(30 self), main -> other(10)
// a -> a (recursion) would be in the second tree.
const fns = [
  { name: 'main', system_name: 'main', filename: 'main.go', start_line: 1, mapping: '/bin/app' },
  { name: 'a', system_name: 'a', filename: 'a.go', start_line: 10, mapping: '/bin/app' },
  { name: 'b', system_name: 'b', filename: 'b.go', start_line: 20, mapping: '/bin/app' },
  { name: 'c', system_name: 'c', filename: 'c.go', start_line: 30, mapping: '/bin/app' },
];
const node = (name, value, self, fn, children = []) => ({ name, value, self, function: fn, children });
function sample() {
  return {
    total: 100, diff: false, sample_unit: 'nanoseconds', functions: fns,
    root: { name: 'total', value: 100, self: 0, children: [
      node('main', 100, 0, 0, [
        node('a', 60, 10, 1, [node('b', 50, 50, 2)]),
        node('c', 30, 30, 3),
        { name: 'other', value: 10, self: 10, children: [] },
      ]),
    ] },
  };
}

test('flattening keeps preorder, parents, depths and subtree ends', () => {
  const fl = buildFlame(sample());
  assert.equal(fl.n, 6);
  assert.deepEqual(fl.name, ['total', 'main', 'a', 'b', 'c', 'other']);
  assert.deepEqual([...fl.parent], [-1, 0, 1, 2, 1, 1]);
  assert.deepEqual([...fl.depth], [0, 1, 2, 3, 2, 2]);
  assert.deepEqual([...fl.end], [6, 6, 4, 4, 5, 6]);
  assert.equal(fl.kind[5], KIND_OTHER);
  assert.equal(fl.maxDepth, 3);
});

test('layout puts siblings side by side and children at their parent', () => {
  const fl = buildFlame(sample());
  assert.deepEqual([...fl.start], [0, 0, 0, 0, 60, 90]);
  assert.deepEqual([...fl.width], [100, 100, 60, 50, 30, 10]);
});

test('hit test finds the node under a point, none in gaps', () => {
  const fl = buildFlame(sample());
  const v = makeView(fl, 0, 1000, { rowH: 20 });
  assert.equal(fl.name[hitTest(fl, v, 500, 5)], 'total');
  assert.equal(fl.name[hitTest(fl, v, 599, 45)], 'a');
  assert.equal(fl.name[hitTest(fl, v, 600, 45)], 'c');
  assert.equal(fl.name[hitTest(fl, v, 950, 45)], 'other');
  assert.equal(fl.name[hitTest(fl, v, 10, 65)], 'b');
  assert.equal(hitTest(fl, v, 550, 65), -1); // a's self, no child there
  assert.equal(hitTest(fl, v, 10, 85), -1); // below the deepest row
  assert.equal(hitTest(fl, v, -1, 5), -1);
  // every node's own rectangle centre hits it
  for (let i = 0; i < fl.n; i++) {
    const r = nodeRect(fl, v, i);
    assert.equal(hitTest(fl, v, r.x + r.width / 2, r.y + r.height / 2), i);
  }
});

test('zoom: the zoomed node spans the width, only ancestors above it', () => {
  const fl = buildFlame(sample());
  const a = findPath(fl, ['main', 'a']);
  assert.equal(fl.name[a], 'a');
  const v = makeView(fl, a, 600, { rowH: 10 });
  assert.deepEqual(nodeRect(fl, v, a), { x: 0, y: 20, width: 600, height: 10 });
  assert.equal(nodeRect(fl, v, 3).width, 500);
  assert.equal(fl.name[hitTest(fl, v, 599, 5)], 'total');
  assert.equal(fl.name[hitTest(fl, v, 599, 15)], 'main');
  assert.deepEqual(pathOf(fl, 3), ['main', 'a', 'b']);
  assert.equal(findPath(fl, ['main', 'zz']), 1); // the deepest found
});

test('flipped view puts the root at the bottom', () => {
  const fl = buildFlame(sample());
  const v = makeView(fl, 0, 100, { rowH: 10, flip: true });
  assert.equal(fl.name[hitTest(fl, v, 5, 35)], 'total');
  assert.equal(fl.name[hitTest(fl, v, 5, 5)], 'b');
});

test('scrolled view: rows move up by top', () => {
  const fl = buildFlame(sample());
  const v = makeView(fl, 0, 100, { rowH: 10, top: 20 });
  assert.equal(fl.name[hitTest(fl, v, 5, 5)], 'a');
  assert.equal(nodeRect(fl, v, 3).y, 10);
});

test('level range returns the nodes overlapping a value range', () => {
  const fl = buildFlame(sample());
  const [s, e] = levelRange(fl, 2, 55, 95);
  assert.deepEqual([...fl.levels[2].slice(s, e)].map((i) => fl.name[i]), ['a', 'c', 'other']);
  const [s2, e2] = levelRange(fl, 2, 61, 89);
  assert.deepEqual([...fl.levels[2].slice(s2, e2)].map((i) => fl.name[i]), ['c']);
});

test('search: matches and a share that never counts a frame twice', () => {
  const t = sample();
  // recursion: a -> a inside a
  t.root.children[0].children[0].children = [node('a', 50, 50, 1)];
  const fl = buildFlame(t);
  const r = searchFlame(fl, matcher('^A$', true));
  assert.equal(r.matched, 60); // the outer a only
  assert.equal(r.hit.reduce((x, y) => x + y), 2);
  const r2 = searchFlame(fl, matcher('^(b|c)$', true));
  assert.equal(r2.matched, 30);
  const r3 = searchFlame(fl, matcher('ai'));
  assert.equal(r3.matched, 100); // main
  assert.throws(() => matcher('(', true), SyntaxError);
});

test('top table: self sums, totals once per stack (recursion), sorted', () => {
  const t = sample();
  t.root.children[0].children[0].children = [node('a', 50, 20, 1, [node('b', 30, 30, 2)])];
  const fl = buildFlame(t);
  const rows = topTable(fl);
  const by = Object.fromEntries(rows.map((r) => [r.name, r]));
  assert.equal(by.a.self, 30);
  assert.equal(by.a.total, 60);
  assert.equal(by.b.total, 30);
  assert.equal(by.main.total, 100);
  assert.equal(by.a.file, 'a.go');
  assert.equal(by.other, undefined);
  by.c.self = 31; // ties break by name; make one
  assert.deepEqual(sortRows(rows, 'self').map((r) => r.name), ['c', 'a', 'b', 'main']);
  assert.deepEqual(sortRows(rows, 'name').map((r) => r.name), ['a', 'b', 'c', 'main']);
  assert.deepEqual(sortRows(rows, '-name').map((r) => r.name), ['main', 'c', 'b', 'a']);
  assert.deepEqual(sortRows(rows, '-self').map((r) => r.name), ['main', 'a', 'b', 'c']);
});

test('inverted tree: roots are where samples end, children their callers', () => {
  const fl = buildFlame(sample());
  const inv = invertFlame(fl);
  assert.equal(inv.total, 100);
  const names = inv.root.children.map((c) => [c.name, c.value]);
  assert.deepEqual(names, [['b', 50], ['c', 30], ['a', 10], ['other', 10]]);
  const b = inv.root.children[0];
  assert.deepEqual(b.children.map((c) => c.name), ['a']);
  assert.deepEqual(b.children[0].children.map((c) => [c.name, c.value, c.self]), [['main', 50, 50]]);
  const back = buildFlame(inv);
  assert.equal(back.value[0], 100);
});

test('sandwich: callers and callees of a function, recursion counted once', () => {
  const t = sample();
  // a second path to b: main -> c -> b (20), and a -> a recursion
  t.root.children[0].children[1] = node('c', 30, 10, 3, [node('b', 20, 20, 2)]);
  t.root.children[0].children[0].children = [node('b', 40, 40, 2), node('a', 10, 0, 1, [node('b', 10, 10, 2)])];
  const fl = buildFlame(t);
  const s = sandwich(fl, 2);
  assert.equal(s.callers.root.name, 'b');
  assert.equal(s.callers.root.value, 70);
  assert.deepEqual(s.callers.root.children.map((c) => [c.name, c.value]), [['a', 50], ['c', 20]]);
  const a = s.callers.root.children[0];
  assert.deepEqual(a.children.map((c) => [c.name, c.value]), [['main', 40], ['a', 10]]);
  const sa = sandwich(fl, 1);
  assert.equal(sa.callees.root.value, 60); // outer a only
  assert.equal(sa.callees.root.self, 10);
  assert.deepEqual(sa.callees.root.children.map((c) => [c.name, c.value]), [['b', 40], ['a', 10]]);
  assert.equal(sandwich(fl, 99), null);
});

test('diff: relative widths weigh both sides by their shares', () => {
  const d = {
    diff: true, total: 100, compare_total: 200, functions: fns,
    root: { name: 'total', value: 100, self: 0, compare_value: 200, compare_self: 0, children: [
      { name: 'a', value: 50, self: 50, compare_value: 150, compare_self: 150, function: 1, children: [] },
      { name: 'c', value: 50, self: 50, compare_value: 50, compare_self: 50, function: 3, children: [] },
    ] },
  };
  const fl = buildFlame(d);
  assert.deepEqual([...fl.width], [2, 0.5 + 0.75, 0.5 + 0.25]);
  const abs = buildFlame(d, { diff: 'absolute' });
  assert.deepEqual([...abs.width], [300, 200, 100]);
  const rows = topTable(fl);
  assert.equal(rows.find((r) => r.name === 'a').ctotal, 150);
});

test('group_by roots are group nodes, not functions', () => {
  const t = sample();
  t.root.children = [{ name: 'handler=/api', value: 100, self: 0, children: t.root.children }];
  const fl = buildFlame(t, { groupBy: true });
  assert.equal(fl.kind[1], KIND_GROUP);
  assert.equal(topTable(fl).some((r) => r.name === 'handler=/api'), false);
});

test('graft: an expanded "other" takes the re-queried children', () => {
  const t = sample();
  const fresh = {
    functions: [{ name: 'd', system_name: 'd', filename: 'd.go', start_line: 4, mapping: '' }, fns[0], fns[3]],
    root: { name: 'total', value: 100, children: [node('main', 100, 0, 1, [node('c', 30, 30, 2), node('d', 10, 10, 0)])] },
  };
  assert.equal(graftChildren(t, fresh, ['main']), true);
  const main = t.root.children[0];
  assert.deepEqual(main.children.map((c) => [c.name, t.functions[c.function].name]), [['c', 'c'], ['d', 'd']]);
  assert.equal(t.functions.length, 5); // c reused, d added
  assert.equal(graftChildren(t, fresh, ['nope']), false);
});

test('exactRegex escapes regex syntax', () => {
  const s = 'github.com/x.(*T).M[1]+';
  assert.ok(new RegExp('^' + exactRegex(s) + '$').test(s));
  assert.ok(!new RegExp('^' + exactRegex(s) + '$').test('githubXcom/x.(*T).M[1]+'));
});
