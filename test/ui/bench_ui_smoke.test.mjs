// bench_ui_smoke.test.mjs -- test/bench/bench_ui.mjs runs to the end (one
// run) and prints every figure as "name number", as the README shows them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

import { repoRoot } from './harness.mjs';

const FIGURES = [
  'ui_flamegraph_nodes', 'ui_first_draw_ms', 'ui_first_draw_api_anchor_ms', 'ui_first_draw_vs_goal',
  'ui_cold_load_assets_kb', 'ui_cold_load_api_kb', 'ui_cold_load_assets_vs_goal',
  'ui_full_flamegraph_nodes', 'ui_full_first_draw_ms', 'ui_full_first_draw_api_anchor_ms', 'ui_full_first_draw_vs_goal',
  'ui_redraw_zoomed_frames', 'ui_redraw_zoomed_p50_ms', 'ui_redraw_zoomed_p99_ms', 'ui_redraw_zoomed_p99_vs_goal',
  'ui_hover_p50_ms', 'ui_hover_p99_ms', 'ui_hover_p99_vs_goal', 'ui_js_heap_mb',
];

test('bench_ui prints every figure as a number', { timeout: 300_000 }, async () => {
  const { stdout } = await promisify(execFile)(process.execPath,
    [path.join(repoRoot, 'test', 'bench', 'bench_ui.mjs'), '--runs', '1'], { timeout: 280_000 });
  const lines = stdout.trim().split('\n');
  assert.deepEqual(lines.map((l) => l.split(' ')[0]), FIGURES);
  for (const l of lines) assert.match(l, /^\w+ -?\d+(\.\d+)?$/, l);
  const fig = Object.fromEntries(lines.map((l) => l.split(' ')).map(([k, v]) => [k, Number(v)]));
  assert.ok(fig.ui_flamegraph_nodes > 8192, 'the 8,192 kept nodes and their "other" frames');
  assert.ok(fig.ui_full_flamegraph_nodes > fig.ui_flamegraph_nodes);
  assert.equal(fig.ui_redraw_zoomed_frames, 300);
});
