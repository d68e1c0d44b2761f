// types.js -- profile types by the names people use ("CPU", "In-use
// memory") instead of "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta".
// No DOM.

const FRIENDLY = {
  'process_cpu:cpu': 'CPU',
  'process_cpu:samples': 'CPU samples',
  'memory:alloc_space': 'Memory allocated',
  'memory:alloc_objects': 'Objects allocated',
  'memory:inuse_space': 'In-use memory',
  'memory:inuse_objects': 'In-use objects',
  'goroutine:goroutine': 'Goroutines',
  'goroutines:goroutine': 'Goroutines',
  'goroutine:goroutines': 'Goroutines',
  'mutex:contentions': 'Mutex contentions',
  'mutex:delay': 'Mutex contention',
  'block:contentions': 'Block contentions',
  'block:delay': 'Blocking time',
  'wall:wall': 'Wall time',
  'wall:samples': 'Wall samples',
  'threadcreate:threadcreate': 'Threads created',
};

// The parts of a type id "name:sample_type:sample_unit:period_type:period_unit[:delta]".
export function splitType(id) {
  const p = String(id).split(':');
  return {
    id,
    name: p[0] || '',
    sample_type: p[1] || '',
    sample_unit: p[2] || '',
    period_type: p[3] || '',
    period_unit: p[4] || '',
    delta: p[5] === 'delta',
  };
}

// A type's name for people; unknown types keep name and sample type.
export function friendlyName(t) {
  const f = FRIENDLY[`${t.name}:${t.sample_type}`];
  if (f) return f;
  return t.sample_type && t.sample_type !== t.name ? `${t.name} (${t.sample_type})` : t.name || t.id;
}

// The metric expression the chart plots for a selector: per-second rates
// of delta types (CPU seconds per second = cores), the latest value of
// the others; optionally one line per value of a label.
export function chartExpr(selector, delta, stepSeconds, sumBy) {
  const by = sumBy ? ` by (${sumBy})` : '';
  if (delta) return `sum${by} (rate(${selector}[${stepSeconds}s]))`;
  return `sum${by} (${selector})`;
}
