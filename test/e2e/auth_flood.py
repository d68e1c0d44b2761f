#!/usr/bin/env python3
"""auth_flood.py URL USER PASSWORD N CAFILE -- N clients at once, each with
its own wrong password for USER (so none is in firn's cache: each would
cost a bcrypt), while one client with the right password (already in the
cache) sends queries one after another until the flood is answered.
Prints one JSON line: the flood's statuses counted, the right client's
statuses, and how many of its answers came while the flood was still
being answered.  Bounded: every request times out after 60 s."""
import base64, collections, http.client, json, ssl, sys, threading, urllib.parse

url, user, password, n, cafile = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
u = urllib.parse.urlsplit(url)
ctx = ssl.create_default_context(cafile=cafile)


def ask(pw):
    c = http.client.HTTPSConnection(u.hostname, u.port, timeout=60, context=ctx)
    auth = base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()
    try:
        c.request("GET", u.path + ("?" + u.query if u.query else ""),
                  headers={"Authorization": "Basic " + auth})
        r = c.getresponse()
        r.read()
        return r.status
    except Exception as e:
        return type(e).__name__
    finally:
        c.close()


flood = collections.Counter()
lock = threading.Lock()
pending = [n]
start = threading.Barrier(n + 1)


def attacker(i):
    start.wait()
    s = ask("wrong-%d" % i)
    with lock:
        flood[str(s)] += 1
        pending[0] -= 1


threads = [threading.Thread(target=attacker, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
start.wait()
right, during = [], 0
while True:
    with lock:
        still = pending[0] > 0
    if not still or len(right) >= 200:
        break
    right.append(ask(password))
    with lock:
        during += pending[0] > 0
for t in threads:
    t.join()
print(json.dumps({"flood": dict(flood), "right": dict(collections.Counter(map(str, right))),
                  "right_during_flood": during}))
