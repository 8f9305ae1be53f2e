#!/usr/bin/env python3
"""Recording admission webhook (python3 stdlib only).

Serves HTTPS on 127.0.0.1, saves the body of every AdmissionReview it gets as
pretty-printed JSON into OUT_DIR, named
    <counter>-<path>-<operation>-<resource>[-<name>].json
(path = the URL path, e.g. "validate" or "mutate"), and answers allowed: true
with the request's uid. Used by capture-fixtures.sh.

    recorder.py --cert tls.crt --key tls.key --port 0 --out DIR [--port-file F]

With --port 0 a free port is chosen and written to --port-file.
"""

import argparse
import http.server
import itertools
import json
import os
import re
import ssl
import sys
import threading

COUNTER = itertools.count(1)
LOCK = threading.Lock()


def safe(s):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s or "")[:80]


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "bg-recorder/1"
    out_dir = "."

    def log_message(self, fmt, *args):  # to stderr, one line per request
        sys.stderr.write("recorder: " + (fmt % args) + "\n")

    def _reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/healthz":
            self._reply(200, {"ok": True})
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            review = json.loads(raw)
        except ValueError as e:
            self._reply(400, {"error": "bad json: %s" % e})
            return
        req = review.get("request") or {}
        with LOCK:
            n = next(COUNTER)
        parts = [
            "%04d" % n,
            safe(self.path.split("?")[0].strip("/")) or "root",
            safe(req.get("operation", "NONE")),
            safe((req.get("resource") or {}).get("resource", "unknown")),
        ]
        if req.get("subResource"):
            parts.append(safe(req["subResource"]))
        if req.get("name"):
            parts.append(safe(req["name"]))
        fname = os.path.join(self.out_dir, "-".join(parts) + ".json")
        tmp = fname + ".tmp"
        with open(tmp, "w") as f:
            json.dump(review, f, indent=2, sort_keys=False)
            f.write("\n")
        os.rename(tmp, fname)
        self._reply(
            200,
            {
                "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
                "kind": "AdmissionReview",
                "response": {"uid": req.get("uid", ""), "allowed": True},
            },
        )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--port-file")
    a = ap.parse_args()

    os.makedirs(a.out, exist_ok=True)
    Handler.out_dir = a.out
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    port = httpd.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, a.port_file)
    sys.stderr.write("recorder: listening on https://127.0.0.1:%d, saving to %s\n" % (port, a.out))
    sys.stderr.flush()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
