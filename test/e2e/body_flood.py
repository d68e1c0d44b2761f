#!/usr/bin/env python3
"""body_flood.py PORT PID USER PASSWORD -- attack a firn that requires
credentials with request bodies, and watch its memory.

  - 300 idle half-open connections: each sends the start of a request head
    and nothing more (a slowloris client);
  - 20 concurrent POSTs to /api/v1/ingest, each declaring a 50 MiB body and
    sending it as fast as firn takes it: 10 without credentials, 10 with a
    wrong password each (a password firn must check with bcrypt, so the
    head alone cannot refuse it);
  - meanwhile a client with the right (already checked) password queries
    /api/v1/query three times.

Samples RssAnon (and RssFile, RssShmem) of PID from /proc every 10 ms
while this goes on.  Prints one JSON line: the largest growth of each over
the value before the attack, in KiB; how the 20 POSTs ended (the status
code, or "closed" when firn closed the connection before an answer came);
the queries' status codes; how many of the idle connections firn had closed
by itself when the POSTs were done.  Every socket has a timeout; the whole
attack gives up after 120 s."""
import base64, json, os, socket, sys, threading, time

from rss_watch import RssWatch

port, pid, user, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
BODY = 50 << 20
CHUNK = b"\0" * (1 << 20)
deadline = time.monotonic() + 120


def basic(u, p):
    return "Basic " + base64.b64encode(f"{u}:{p}".encode()).decode()


def status_of(sock):
    """The status code of the answer on sock, or "closed"."""
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    line = data.split(b"\r\n")[0].split()
    return line[1].decode() if len(line) >= 2 else "closed"


def post(i, results):
    auth = "" if i % 2 == 0 else f"Authorization: {basic(user, f'guess-{i}-{os.getpid()}')}\r\n"
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        s.sendall((f"POST /api/v1/ingest?name=flood{i} HTTP/1.1\r\nHost: x\r\n{auth}"
                   f"Content-Length: {BODY}\r\n\r\n").encode())
        sent = 0
        while sent < BODY and time.monotonic() < deadline:
            s.sendall(CHUNK)
            sent += len(CHUNK)
    except OSError:
        pass   # firn answered and closed while the body was on its way
    results[i] = status_of(s)
    s.close()


def query(results):
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall((f"GET /api/v1/query?query=1%2B1 HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: {basic(user, password)}\r\nConnection: close\r\n\r\n").encode())
        results.append(status_of(s))
        s.close()


watch = RssWatch(pid)
idle = []
for _ in range(300):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\n")
    idle.append(s)
posts = [None] * 20
threads = [threading.Thread(target=post, args=(i, posts)) for i in range(20)]
queries = []
threads.append(threading.Thread(target=query, args=(queries,)))
for t in threads:
    t.start()
for t in threads:
    t.join(max(0.0, deadline - time.monotonic()))
growth = watch.stop()
closed = 0
for s in idle:
    s.setblocking(False)
    try:
        if s.recv(4096) == b"":
            closed += 1
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
    s.close()
print(json.dumps({
    "growth_kib": growth,
    "posts": sorted(str(p) for p in posts),
    "queries": queries,
    "idle_closed_early": closed,
}))
