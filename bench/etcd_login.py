#!/usr/bin/env python3
"""Benchmark: what one etcd v2 read costs with a password against a node certificate.

    /opt/pigsty/venv/bin/python bench/etcd_login.py [--requests N]

From the host (10.10.10.1, on the sandbox's bridge) to meta's etcd (10.10.10.10:2379), with
node-1's certificate and key (copied into a private temporary directory, removed at the end):
N sequential GETs of pg-test's leader key
  certificate  no Authorization header: etcd takes the request as the v2 user node-1
  password     the same certificate plus pg-test's password (pillar/clusters/pg-test.sls) in
               an HTTP Basic header: etcd's v2 API checks it with bcrypt on every request
Each request opens its own TLS connection (as a new client would). Prints min / median / max
per mode, and etcd's CPU seconds on meta before and after each mode (`ps -o cputime`).
Traffic goes to 10.10.10.10 only; N is bounded.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "_utils"))
import pigsty_etcd  # noqa: E402
from benchlib import sandbox  # noqa: E402

ETCD = "https://10.10.10.10:2379"
KEY = "/service/pg-test/leader"


def etcd_cpu_seconds():
    out = sandbox("exec", "meta", "ps", "-o", "cputime=", "-C", "etcd").strip().split(":")
    h, m, s = (int(x) for x in out)
    return h * 3600 + m * 60 + s


def timed(client, n):
    times = []
    for _ in range(n):
        t = time.monotonic()
        status, _answer = client.get(KEY)
        times.append(time.monotonic() - t)
        if status != 200:
            sys.exit("etcd answered %s to %s" % (status, KEY))
    return times


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=50)
    args = p.parse_args()
    n = max(1, min(args.requests, 500))
    with open(os.path.join(REPO, "pillar", "clusters", "pg-test.sls")) as fh:
        password = yaml.safe_load(fh)["pigsty"]["clusters"]["pg-test"]["vars"]["pg_etcd_password"]
    tmp = tempfile.mkdtemp(prefix="pigsty-bench-etcd-")
    try:
        os.chmod(tmp, 0o700)
        paths = {}
        for name in ("ca.crt", "node.crt", "node.key"):
            paths[name] = os.path.join(tmp, name)
            with open(os.open(paths[name], os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
                fh.write(sandbox("exec", "node-1", "cat", "/etc/pki/pigsty/" + name))
        base = dict(cafile=paths["ca.crt"], certfile=paths["node.crt"], keyfile=paths["node.key"], timeout=10)
        modes = [("certificate", pigsty_etcd.Client(ETCD, **base)),
                 ("password", pigsty_etcd.Client(ETCD, username="pg-test", password=password, **base))]
        print("%d sequential GETs of %s per mode, each on a new TLS connection" % (n, KEY))
        for name, client in modes:
            cpu0 = etcd_cpu_seconds()
            times = timed(client, n)
            cpu1 = etcd_cpu_seconds()
            print("  %-11s min %.4f s  median %.4f s  max %.4f s  (etcd CPU +%d s over %.1f s)" % (
                name, min(times), statistics.median(times), max(times), cpu1 - cpu0, sum(times)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
