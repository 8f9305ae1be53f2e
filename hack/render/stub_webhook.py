#!/usr/bin/python3
"""A stand-in admission webhook for hack/render/wiring.sh: serves HTTPS on
ADDR:PORT with CERT/KEY, appends one JSON line per AdmissionReview it gets to
LOG, denies DELETE of backups (so a test can see which webhook entry routed
the call) and allows everything else. Not the guard: it checks the chart's
wiring (Service, port, path, CA, rules, selectors), not decisions.

    stub_webhook.py ADDR PORT CERT KEY LOG
"""
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ADDR, PORT, CERT, KEY, LOG = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        review = json.loads(body)
        req = review["request"]
        path = self.path.split("?", 1)[0]   # the API server appends ?timeout=5s
        record = {
            "path": path,
            "operation": req["operation"],
            "resource": req["resource"]["resource"],
            "name": req.get("name", ""),
            "namespace": req.get("namespace", ""),
            "dryRun": req.get("dryRun", False),
            "user": req["userInfo"]["username"],
        }
        with open(LOG, "a") as f:
            f.write(json.dumps(record) + "\n")
        deny = path == "/validate" and req["operation"] == "DELETE" and record["resource"] == "backups"
        response = {"uid": req["uid"], "allowed": not deny}
        if deny:
            response["status"] = {"code": 403, "message": f"stub denies {req['operation']} {record['resource']} {record['name']}"}
        out = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
server = ThreadingHTTPServer((ADDR, PORT), Handler)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
