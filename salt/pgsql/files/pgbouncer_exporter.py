#!/usr/bin/python3
"""Prometheus exporter for pgbouncer (deployed by Salt: Pigsty on Salt).

Debian 12's prometheus-pgbouncer-exporter crashes against Debian 12's pgbouncer 1.18
(KeyError 'total_requests': a column pgbouncer dropped), so the pgsql role ships this one.
It reads pgbouncer's admin console over the local unix socket as the dbsu (peer
authentication: no password anywhere) on every scrape and serves the text format.

    pgbouncer_exporter.py --listen 10.10.10.11:9631 --socket-dir /var/run/postgresql --port 6432
"""
import argparse
import decimal
import http.server
import re
import socketserver

import psycopg2

# console command -> (metric prefix, label columns)
QUERIES = {
    "SHOW POOLS": ("pgbouncer_pools", ("database", "user")),
    "SHOW STATS": ("pgbouncer_stats", ("database",)),
    "SHOW DATABASES": ("pgbouncer_databases", ("name",)),
    "SHOW LISTS": ("pgbouncer_lists", ("list",)),
}
SKIP = {"host", "port", "force_user", "pool_mode", "paused", "disabled", "server_lifetime"}
NAME_RE = re.compile(r"[^a-zA-Z0-9_]")


def _escape(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def collect(args):
    lines = []
    try:
        conn = psycopg2.connect(host=args.socket_dir, port=args.port, user=args.user,
                                dbname="pgbouncer", connect_timeout=3)
        conn.autocommit = True
    except psycopg2.Error:
        return ["# pgbouncer unreachable", "pgbouncer_up 0"]
    try:
        with conn.cursor() as cur:
            for query, (prefix, label_cols) in QUERIES.items():
                cur.execute(query)
                cols = [d[0] for d in cur.description]
                for row in cur.fetchall():
                    rec = dict(zip(cols, row))
                    if query == "SHOW LISTS":
                        lines.append('%s_items{list="%s"} %s' % (prefix, _escape(rec["list"]), rec["items"]))
                        continue
                    labels = ",".join('%s="%s"' % (c, _escape(rec.get(c))) for c in label_cols)
                    for col, value in rec.items():
                        if isinstance(value, decimal.Decimal):   # SHOW STATS' numeric totals
                            value = int(value) if value == value.to_integral_value() else float(value)
                        if col in label_cols or col in SKIP or not isinstance(value, (int, float)):
                            continue
                        if isinstance(value, bool):
                            value = int(value)
                        lines.append("%s_%s{%s} %s" % (prefix, NAME_RE.sub("_", col), labels, value))
            cur.execute("SHOW VERSION")
            version = cur.fetchone()[0]
        lines.append('pgbouncer_version_info{version="%s"} 1' % _escape(version))
        lines.append("pgbouncer_up 1")
    except psycopg2.Error:
        lines.append("pgbouncer_up 0")
    finally:
        conn.close()
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", default="127.0.0.1:9631")
    p.add_argument("--socket-dir", default="/var/run/postgresql")
    p.add_argument("--port", type=int, default=6432)
    p.add_argument("--user", default="postgres")
    args = p.parse_args()
    host, port = args.listen.rsplit(":", 1)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's API)
            if self.path.split("?")[0] != "/metrics":
                self.send_response(302)
                self.send_header("Location", "/metrics")
                self.end_headers()
                return
            body = ("\n".join(collect(args)) + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    Server((host, int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
