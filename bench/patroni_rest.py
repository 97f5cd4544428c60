#!/usr/bin/env python3
"""Benchmark: what one call to Patroni's REST API costs over TLS, with and without the quick ACK.

    /opt/pigsty/venv/bin/python bench/patroni_rest.py [--requests N] [--node-ip 10.10.10.12]

From the host (10.10.10.1, on the sandbox's bridge) to a database node's Patroni (8008), with
the Pigsty CA (copied from node-1 into a private temporary directory, removed at the end):
N sequential `GET /patroni` per mode, each on its own TLS connection (Patroni speaks HTTP/1.0):
  http.client  the standard library's HTTPSConnection as it is (TCP_NODELAY, delayed ACKs)
  quick ACK    pigsty_patroni.request, which sets TCP_QUICKACK before reading the answer
Patroni writes its headers and its body in two TLS records with Nagle on; the second waits for
the client's ACK of the first, which Linux delays up to 40 ms. Prints min / median / max.
Traffic goes to the sandbox's node only; N is bounded.
"""
import argparse
import http.client
import os
import shutil
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "_utils"))
import pigsty_patroni  # noqa: E402
from benchlib import sandbox  # noqa: E402

PORT = 8008
PATH = "/patroni"


def plain_call(host, access):
    conn = http.client.HTTPSConnection(host, PORT, timeout=5, context=access.context())
    try:
        conn.request("GET", PATH)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def quick_call(host, access):
    return pigsty_patroni.request(host, PORT, PATH, timeout=5, access=access)[0]


def timed(fn, host, access, n):
    times = []
    for _ in range(n):
        t = time.monotonic()
        status = fn(host, access)
        times.append(time.monotonic() - t)
        if status != 200:
            sys.exit("Patroni at %s answered %s to %s" % (host, status, PATH))
    return times


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=50)
    p.add_argument("--node-ip", default="10.10.10.12", help="a database node of the sandbox (10.10.10.11-13)")
    args = p.parse_args()
    if args.node_ip not in ("10.10.10.11", "10.10.10.12", "10.10.10.13"):
        sys.exit("--node-ip: expected one of the sandbox's database nodes 10.10.10.11-13, got %r" % args.node_ip)
    n = max(1, min(args.requests, 500))
    tmp = tempfile.mkdtemp(prefix="pigsty-bench-patroni-")
    try:
        os.chmod(tmp, 0o700)
        ca = os.path.join(tmp, "ca.crt")
        with open(os.open(ca, os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
            fh.write(sandbox("exec", "node-1", "cat", "/etc/pki/pigsty/ca.crt"))
        access = pigsty_patroni.Access(ca_file=ca)
        print("%d sequential GET %s to %s:%d per mode, each on a new TLS connection" % (n, PATH, args.node_ip, PORT))
        for name, fn in (("http.client", plain_call), ("quick ACK", quick_call)):
            times = timed(fn, args.node_ip, access, n)
            print("  %-11s min %.4f s  median %.4f s  max %.4f s" % (
                name, min(times), statistics.median(times), max(times)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
