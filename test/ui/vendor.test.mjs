// vendor.test.mjs -- the vendored uPlot (web/ui/vendor/uplot/) is the npm
// package pinned in package-lock.json, byte for byte, with its licence.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { repoRoot } from './harness.mjs';

const vendored = path.join(repoRoot, 'web', 'ui', 'vendor', 'uplot');
const pkg = path.join(repoRoot, 'test', 'ui', 'node_modules', 'uplot');

test('web/ui/vendor/uplot holds the pinned npm package\'s files', () => {
  const lock = JSON.parse(fs.readFileSync(path.join(repoRoot, 'test', 'ui', 'package-lock.json'), 'utf8'));
  const version = lock.packages['node_modules/uplot'].version;
  assert.equal(JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')).version, version);
  assert.match(fs.readFileSync(path.join(vendored, 'VERSION'), 'utf8'), new RegExp(`^uPlot ${version.replace(/\./g, '\\.')} `));
  for (const [mine, theirs] of [['uPlot.esm.js', 'dist/uPlot.esm.js'], ['uPlot.min.css', 'dist/uPlot.min.css'], ['LICENSE', 'LICENSE']]) {
    assert.ok(fs.readFileSync(path.join(vendored, mine)).equals(fs.readFileSync(path.join(pkg, theirs))), mine);
  }
});
