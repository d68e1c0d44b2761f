// bench.test.mjs -- the browser benchmark (bench.mjs) runs and prints every
// figure as `figure_name value`; its speed is not asserted (figures belong
// to the benchmark, not to tests).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { NO_UI_API, run } from './bench.mjs';

const FIGURES = [
  'ui_drawn_8192_ms', 'api_flamegraph_8192_ms', 'api_flamegraph_8192_cpu_ms', 'flamegraph_8192_nodes',
  'ui_drawn_large_ms', 'api_flamegraph_large_ms', 'api_flamegraph_large_cpu_ms', 'flamegraph_large_nodes',
  'ui_redraw_p50_ms', 'ui_redraw_p99_ms', 'ui_redraw_zoomed_p50_ms', 'ui_redraw_zoomed_p99_ms',
  'ui_hover_p50_ms', 'ui_hover_p99_ms', 'frame_budget_ms', 'ui_js_heap_mb',
  'ui_cold_load_bytes', 'ui_cold_load_raw_bytes', 'ui_cold_load_api_bytes',
];

test('bench.mjs --quick prints every figure as "figure_name value"', async (t) => {
  let lines;
  try {
    lines = await run({ quick: true });
  } catch (e) {
    // A build whose pages lack the automation API has nothing to time:
    // said as a skip (counted apart by scripts/test), never as a pass.
    if (e.code === NO_UI_API) {
      t.skip(e.message);
      return;
    }
    throw e;
  }
  for (const l of lines) assert.match(l, /^[a-z0-9_]+ [0-9]+(\.[0-9]+)?$/, l);
  const names = lines.map((l) => l.split(' ')[0]);
  assert.deepEqual(names, FIGURES);
  const value = (n) => Number(lines[names.indexOf(n)].split(' ')[1]);
  // The 8192-node view is cut by max_nodes; the whole profile is larger.
  assert.ok(value('flamegraph_large_nodes') > value('flamegraph_8192_nodes'));
  // Compressed assets: fewer bytes on the wire than their raw size.
  assert.ok(value('ui_cold_load_bytes') < value('ui_cold_load_raw_bytes'));
});
