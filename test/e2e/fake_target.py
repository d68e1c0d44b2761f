#!/usr/bin/env python3
"""fake_target.py PROFILE SECONDS -- a cheap scrape target on 127.0.0.1:
answers GET /debug/pprof/allocs with the bytes of PROFILE (a gzipped pprof)
and anything else with 404.  Prints its port on the first line, then serves
on many threads until killed or SECONDS have passed."""
import http.server, sys, threading

body = open(sys.argv[1], "rb").read()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.split("?")[0] != "/debug/pprof/allocs":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
threading.Timer(float(sys.argv[2]), server.shutdown).start()
server.serve_forever()
