#!/usr/bin/env python3
"""api_prom_expect.py -- what api_prom.sh's queries must answer, computed by
hand from the store it builds, not by firn's evaluator.

The store (api_prom.sh): delta CPU profiles, whose value is the profile's
CPU total (TOTAL_A, _B, _C: go tool pprof -raw of each fixture):
  job=api    instance=a:1   A at T1, T1+20s, T1+40s; C at T1+10s, +30s, +50s
  job=api    instance=c:1   C at T1 + 0, 10, ..., 50 s
  job=worker instance=b:1   B at T1 + 0, 10, ..., 50 s
Semantics used (Prometheus's, and firn's README for delta types):
  - an instant selector takes each series' latest sample at or before t
    within the 5 m lookback;
  - rate(x[1m]) of a delta type is the sum of its profiles in (t-60s, t]
    over 60 s (the CPU time per second), not a counter's rate.

usage: api_prom_expect.py A B C T1_MS QUERY ARGS...
  QUERY: sum_instant T | rate_instant T | api_range START END STEP |
         rate_range START END STEP | sum_range START END STEP
  (times in seconds).  Prints JSON: for an instant query a list of
  [labels, value], for a range query a list of [labels, [[t, value]...]],
  sorted by labels; values as numbers.
"""
import json
import sys

a, b, c, t1 = (int(x) for x in sys.argv[1:5])
t1 = t1 / 1000
query, args = sys.argv[5], [float(x) for x in sys.argv[6:]]

SERIES = {
    ("api", "a:1"): [(t1 + 10 * i, a if i % 2 == 0 else c) for i in range(6)],
    ("api", "c:1"): [(t1 + 10 * i, c) for i in range(6)],
    ("worker", "b:1"): [(t1 + 10 * i, b) for i in range(6)],
}


def latest(points, t):
    got = [v for ts, v in points if t - 300 < ts <= t]
    return got[-1] if got else None


def rate(points, t):
    got = [v for ts, v in points if t - 60 < ts <= t]
    return sum(got) / 60 if got else None


def by_job(fn, t):
    out = {}
    for (job, _), points in SERIES.items():
        v = fn(points, t)
        if v is not None:
            out[job] = out.get(job, 0) + v
    return out


def steps(start, end, step):
    t, out = start, []
    while t <= end + 1e-9:
        out.append(t)
        t += step
    return out


if query in ("sum_instant", "rate_instant"):
    fn = latest if query == "sum_instant" else rate
    res = [[{"job": j}, v] for j, v in sorted(by_job(fn, args[0]).items())]
elif query in ("sum_range", "rate_range"):
    fn = latest if query == "sum_range" else rate
    acc = {}
    for t in steps(*args):
        for j, v in by_job(fn, t).items():
            acc.setdefault(j, []).append([t, v])
    res = [[{"job": j}, pts] for j, pts in sorted(acc.items())]
elif query == "api_range":
    name = "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta"
    res = []
    for (job, inst), points in sorted(SERIES.items()):
        if job != "api":
            continue
        pts = [[t, latest(points, t)] for t in steps(*args) if latest(points, t) is not None]
        res.append([{"__name__": name, "instance": inst, "job": job}, pts])
else:
    sys.exit("unknown query " + query)
print(json.dumps(res, sort_keys=True))
