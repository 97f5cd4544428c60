#!/usr/bin/python3
"""Prometheus exporter for pgbouncer (deployed by Salt: Pigsty on Salt).

Debian 12's prometheus-pgbouncer-exporter crashes against Debian 12's pgbouncer 1.18
(KeyError 'total_requests': a column pgbouncer dropped), so the pgsql role ships this one.
It reads pgbouncer's admin console over the local unix socket as the dbsu (peer
authentication: no password anywhere) on every scrape and serves the text format.

With --cert, --key and --client-ca it serves HTTPS only (TLS 1.2 or later) and asks every
client for a certificate of that CA (_utils/pigsty_exporter_tls.py); a plain HTTP request gets
no answer. The files are checked before each connection is accepted and loaded again when
they change, so a renewed certificate is served without a restart (as exporter-toolkit does).

    pgbouncer_exporter.py --listen 10.10.10.11:9631 --socket-dir /var/run/postgresql --port 6432 \
        --cert /etc/pki/pigsty/node.crt --key /etc/pki/pigsty/node.key --client-ca /etc/pki/pigsty/ca.crt
"""
import argparse
import decimal
import http.server
import os
import re
import socketserver
import ssl
import sys

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


class TLSFiles:
    """A server SSL context made from the certificate, key and client CA files, made again
    when one of them changes (a renewal). A change that does not load (a key that does not
    match the new certificate yet) keeps the last context that did, and says so once."""

    def __init__(self, cert, key, client_ca):
        self.files = (cert, key, client_ca)
        self.stamp = None
        self.context = None
        self.refresh()          # the first load must work: a wrong file stops the exporter

    def _stamp(self):
        out = []
        for path in self.files:
            st = os.stat(path)
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(out)

    def _load(self):
        cert, key, client_ca = self.files
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key)
        ctx.load_verify_locations(cafile=client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def refresh(self):
        """The context to use for the next connection."""
        try:
            stamp = self._stamp()
            if stamp != self.stamp:
                self.context, self.stamp = self._load(), stamp
        except (OSError, ssl.SSLError) as exc:
            if self.context is None:
                raise
            if self.stamp is not None:
                print("pgbouncer exporter: keeping the certificate loaded before: %s" % exc,
                      file=sys.stderr, flush=True)
                self.stamp = None       # try again on the next connection, say it once
        return self.context


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", default="127.0.0.1:9631")
    p.add_argument("--socket-dir", default="/var/run/postgresql")
    p.add_argument("--port", type=int, default=6432)
    p.add_argument("--user", default="postgres")
    p.add_argument("--cert", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--key", help="the certificate's private key (PEM)")
    p.add_argument("--client-ca", help="require client certificates signed by this CA (PEM)")
    args = p.parse_args()
    tls_args = (args.cert, args.key, args.client_ca)
    if any(tls_args) and not all(tls_args):
        p.error("--cert, --key and --client-ca go together (HTTPS with client certificates)")
    tls = TLSFiles(*tls_args) if all(tls_args) else None
    host, port = args.listen.rsplit(":", 1)

    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = 10            # a client that stalls (in the handshake too) is dropped

        def setup(self):
            super().setup()
            if tls is not None:
                self.request.do_handshake()   # in the connection's thread, under the timeout

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

        def get_request(self):
            sock, addr = super().get_request()
            if tls is not None:
                # the handshake is left to the connection's thread: a slow client does not
                # hold up the others
                sock = tls.refresh().wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            return sock, addr

        def handle_error(self, request, client_address):
            exc = sys.exc_info()[1]
            if isinstance(exc, (ssl.SSLError, OSError)):
                return          # a refused handshake, plain HTTP, a client that went away
            super().handle_error(request, client_address)

    Server((host, int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
