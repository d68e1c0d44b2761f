#!/usr/bin/env python3
"""remote_write_capture.py PORT_FILE LOG -- a remote-write endpoint that
answers by path, on 127.0.0.1 (a free port, written to PORT_FILE):
  /bad      400 every time (a sender must not retry),
  /limited  429 with Retry-After: 1 to the first request, 204 after.
Each request is logged to LOG as one JSON line: path, the headers that the
remote-write 1.0 spec fixes (lower-cased names) and the body's length.
Runs until killed (the test stops it by PID)."""
import http.server, json, os, sys, threading

port_file, log_path = sys.argv[1], sys.argv[2]
lock = threading.Lock()
seen = {"limited": 0}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n) if 0 < n <= 64 << 20 else b""
        with lock:
            with open(log_path, "a") as f:
                f.write(json.dumps({"path": self.path,
                                    "headers": {k.lower(): v for k, v in self.headers.items()},
                                    "length": len(body)}) + "\n")
            if self.path == "/limited":
                seen["limited"] += 1
                first = seen["limited"] == 1
        if self.path == "/limited" and first:
            self.send_response(429)
            self.send_header("Retry-After", "1")
        elif self.path == "/limited":
            self.send_response(204)
        else:
            self.send_response(400)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
