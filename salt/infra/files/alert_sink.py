#!/usr/bin/python3
"""Webhook sink for Alertmanager (deployed by Salt: Pigsty on Salt).

Appends the body of every POST (Alertmanager's webhook JSON) as one line to a file, so
tests and operators can read what Alertmanager sent. GET answers with the number of
notifications received. Standard library only.

    alert_sink.py --listen 127.0.0.1:9095 --file /var/lib/pigsty-alerts/alerts.jsonl
"""
import argparse
import http.server
import json
import socketserver
import threading
import time

MAX_BODY = 1024 * 1024


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", action="append", required=True, help="ADDRESS:PORT (repeatable)")
    p.add_argument("--file", required=True)
    args = p.parse_args()
    lock = threading.Lock()
    count = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, code, body):
            data = (json.dumps(body) + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):  # noqa: N802 (http.server's API)
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY:
                return self._answer(400, {"error": "expected a JSON body up to 1 MiB"})
            raw = self.rfile.read(length)
            try:
                doc = json.loads(raw.decode("utf-8"))
            except ValueError:
                return self._answer(400, {"error": "body is not JSON"})
            line = json.dumps({"received": time.time(), "path": self.path, "body": doc},
                              sort_keys=True, separators=(",", ":"))
            with lock:
                with open(args.file, "a") as fh:
                    fh.write(line + "\n")
                count[0] += 1
            return self._answer(200, {"ok": True})

        def do_GET(self):  # noqa: N802
            return self._answer(200, {"received": count[0], "file": args.file})

        def log_message(self, *a):
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    servers = []
    for listen in args.listen:
        host, port = listen.rsplit(":", 1)
        servers.append(Server((host, int(port)), Handler))
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
