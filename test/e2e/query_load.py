"""query_load.py -- sends queries to firn at once and watches it meanwhile,
for query_limits.sh.

    query_load.py PORT PID COPIES PATH [PATH...]

Sends COPIES of each PATH (a GET on 127.0.0.1:PORT) together, one thread
each, while two watchers run: firn's RSS (rss_watch.py, its growth over the
value before) and /metrics every 5 ms (the most queries seen evaluating
and waiting at once: firn_engine_queries minus firn_engine_queries_waiting,
and firn_engine_queries_waiting).  Prints one JSON object: each request's
path, status, errorType and error (JSON answers), the RSS growth in KiB,
and the two maxima.  Every request has a 120 s timeout; one that fails
has status 0 and the reason as its error."""
import json, sys, threading, time, urllib.error, urllib.request

sys.path.insert(0, __import__("os").path.dirname(__file__))
from rss_watch import RssWatch

port, pid, copies = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
paths = sys.argv[4:]
base = f"http://127.0.0.1:{port}"
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(path, timeout=120):
    try:
        with opener.open(base + path, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


results = []
lock = threading.Lock()


def run(path):
    try:
        status, body = get(path)
        try:
            j = json.loads(body)
            etype, err = j.get("errorType", ""), j.get("error", "")
        except ValueError:
            etype, err = "", ""
        res = {"path": path, "status": status, "errorType": etype, "error": err,
               "bytes": len(body)}
    except Exception as e:  # a refused or reset connection: report it
        res = {"path": path, "status": 0, "errorType": "", "error": repr(e), "bytes": 0}
    with lock:
        results.append(res)


maxima = {"running": 0, "waiting": 0, "samples": 0}
done = threading.Event()


def watch_metrics():
    while not done.is_set():
        try:
            _, body = get("/metrics", timeout=20)
        except Exception:
            continue
        text = body.decode()
        queries = metric(text, "firn_engine_queries")
        waiting = metric(text, "firn_engine_queries_waiting")
        if queries is None or waiting is None:
            continue
        maxima["samples"] += 1
        maxima["running"] = max(maxima["running"], int(queries - waiting))
        maxima["waiting"] = max(maxima["waiting"], int(waiting))
        time.sleep(0.005)


rss = RssWatch(pid)
watcher = threading.Thread(target=watch_metrics)
watcher.start()
threads = [threading.Thread(target=run, args=(p,)) for p in paths for _ in range(copies)]
for t in threads:
    t.start()
for t in threads:
    t.join()
done.set()
watcher.join()
growth = rss.stop()
print(json.dumps({"results": results, "growth_kib": growth,
                  "max_running": maxima["running"], "max_waiting": maxima["waiting"],
                  "metric_samples": maxima["samples"]}))
