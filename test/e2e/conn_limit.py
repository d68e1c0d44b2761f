#!/usr/bin/env python3
"""conn_limit.py PORT IDLE [HEADER] -- past --web.max-connections: IDLE idle
connections (they send nothing, as a slowloris client between bytes) fill
firn's slots; one more client asks for /-/healthy.  Prints one JSON line:
the order in which firn closed idle connections and answered the extra
client ("closed_before_answer": how many idle ones firn had closed when the
answer came), the answer's status line, and how many idle connections firn
closed by itself in all.  HEADER ("Name: value") goes on the extra
client's request (credentials).  Bounded: gives up after 60 s."""
import json, select, socket, sys, time

port, idle = int(sys.argv[1]), int(sys.argv[2])
header = sys.argv[3] + "\r\n" if len(sys.argv) > 3 else ""
deadline = time.monotonic() + 60
conns = []
for _ in range(idle):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    conns.append(s)
extra = socket.create_connection(("127.0.0.1", port), timeout=10)
extra.sendall(f"GET /-/healthy HTTP/1.1\r\nHost: x\r\n{header}Connection: close\r\n\r\n".encode())
open_idle = set(conns)
closed = 0
answer = b""
closed_before_answer = None
while time.monotonic() < deadline and (closed_before_answer is None or open_idle):
    r, _, _ = select.select(list(open_idle) + ([extra] if closed_before_answer is None else []),
                            [], [], 1)
    for s in r:
        if s is extra:
            chunk = s.recv(4096)
            answer += chunk
            if b"\r\n" in answer or not chunk:
                closed_before_answer = closed
        else:
            if not s.recv(4096):
                open_idle.discard(s)
                closed += 1
print(json.dumps({"closed_before_answer": closed_before_answer,
                  "status": answer.split(b"\r\n")[0].decode(errors="replace"),
                  "closed": closed}))
