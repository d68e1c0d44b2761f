#!/usr/bin/env python3
"""memory_load.py PORT PID CPU_FIXTURE -- load a firn that scrapes many
targets with large pushes and queries, and watch its memory.

  - 50 concurrent POSTs to /api/v1/ingest of about 30 MiB each, all of the
    same series and time (one is stored; the same profile again is
    answered 200 and stores nothing): 25 gzipped, inflating to about 4
    times their size (a string of random and zero bytes added to CPU_FIXTURE's string
    table), 25 raw (the same with 30 MiB of random bytes);
  - meanwhile three queries that merge every scraped memory profile.

Samples RssAnon (and RssFile, RssShmem) of PID from /proc every 10 ms.
Prints one JSON line: the largest growth of each over the value before the
load, in KiB; the POSTs' last status codes; the queries' status codes.  Every
socket has a timeout; the whole load gives up after 300 s."""
import gzip, http.client, json, os, sys, threading, time

from rss_watch import RssWatch

port, pid, fixture = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
MIB = 1 << 20


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def with_string(raw, s):
    """raw pprof with one more (unused) string in its table: field 6."""
    return raw + b"\x32" + varint(len(s)) + s


raw = gzip.decompress(open(fixture, "rb").read())
# 120 MiB, a quarter random: gzips to about 30 MiB
mixed = b"".join(os.urandom(256 << 10) + bytes(768 << 10) for _ in range(120))
bodies = {"gzip": gzip.compress(with_string(raw, mixed), 1),
          "raw": with_string(raw, os.urandom(30 * MIB))}
del mixed


def request(method, path, body=None, timeout=120):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        r.read()
        return str(r.status)
    except OSError:
        return "closed"
    finally:
        c.close()


def push(i, results):
    """As a client that honours 503's Retry-After (1 s): up to 10 tries."""
    kind = "gzip" if i % 2 == 0 else "raw"
    for _ in range(10):
        status = request("POST", "/api/v1/ingest?name=process_cpu&job=push&time=1700000000",
                         bodies[kind])
        if status != "503" or time.monotonic() > deadline - 30:
            break
        time.sleep(1)   # the Retry-After firn asked for
    results[i] = kind + ":" + status


def query(results):
    for _ in range(3):
        results.append(request(
            "GET", "/api/v1/profile?query=memory:inuse_space:bytes:space:bytes%7Bjob%3D%22t%22%7D"
                   "&format=top&start=0&end=9999999999", timeout=180))


watch = RssWatch(pid)
deadline = time.monotonic() + 300
pushes = [None] * 50
queries = []
threads = [threading.Thread(target=push, args=(i, pushes)) for i in range(50)]
threads.append(threading.Thread(target=query, args=(queries,)))
for t in threads:
    t.start()
for t in threads:
    t.join(max(0.0, deadline - time.monotonic()))
growth = watch.stop()
print(json.dumps({
    "growth_kib": growth,
    "body_mib": {k: round(len(v) / MIB, 1) for k, v in bodies.items()},
    "pushes": sorted(str(p) for p in pushes),
    "queries": queries,
}))
