#!/usr/bin/env python3
"""Benchmark: hard kill of pg-test's primary machine, with bounded client traffic.

    /opt/pigsty/venv/bin/python bench/failover.py [--runs N] [--plan norm|fast] [--no-reactor]
    /opt/pigsty/venv/bin/python bench/failover.py --second-master [--runs N]
    /opt/pigsty/venv/bin/python bench/failover.py --switchover [--runs N] [--archive-off]
    /opt/pigsty/venv/bin/python bench/failover.py --switchover --sequences N [--pause S]

Per run: the primary (pg-test-1 on node-1) is hard-killed (`sandbox.py kill node-1`) while
a writer opens a connection per transaction to 10.10.10.12:5433 and a reader to
10.10.10.13:5434 (connect timeout 2 s, one attempt every 50 ms each). Printed per run:
  promotion   kill -> a surviving member's Patroni reports role primary
  write gap   last committed write before the kill -> first committed write after it
  writes back promotion -> first committed write after it
  routed      promotion -> node-2's HAProxy has the new primary UP in pg-test-primary
  old down    kill -> node-2's HAProxy has pg-test-1 DOWN in pg-test-primary
  vip         promotion -> the VIP is on the new primary
  targets     promotion -> the reconciler has written role=primary for it into meta's file_sd file
  label       promotion -> Prometheus (meta's API) labels the new primary's target role=primary
              (Prometheus applies file_sd changes on two 5 s tickers of its own: discovery
              and scrape manager)
  read errors failed connections/queries through 5434 during the run
  [beacon reactor roles]  the reconciler's path, from the master's history, after promotion:
              the beacon made its event, the runner started on it, its live view was done
Then node-1 is started again, rejoins, and the primary is switched back to pg-test-1.
--switchover: planned switchovers through `salt-run pigsty_ha.switchover` around the
members, while one client writes on a single connection and one connects per transaction,
both through 5433 (every 20 ms); printed per run: how long the runner says clients waited
(and the hand-off's own timeline: caught up, shut down, key released, new primary seen),
the longest gap between commits of each client, failed transactions.
--switchover --sequences N: back-and-forth sequences (A -> B -> A -> B) with clients that
open a new connection per transaction and long sessions (bench/switchover_sequence.py).
--archive-off (with --switchover): WAL archiving off for the runs (ALTER SYSTEM archive_mode =
off on pg-test's members, a Patroni restart), put back the same way at the end: what the
hand-off costs without the archiver's last push at shutdown (PostgreSQL switches the WAL
segment and archives it before a shutdown completes when archiving is on).
--no-reactor stops the salt-master during the runs (health-check-only routing, the
baseline) and starts it again at the end.
--second-master: meta-2 joins as a second meta node and Salt master (tests/support/
second_master.py: `sandbox.py add meta-2`, the inventory, node/dcs/infra states), then meta's
salt-master and infra (Prometheus, Alertmanager, Nginx, dnsmasq) are stopped for the runs:
targets, label and the reconciler's path are read on meta-2 (its file_sd file, its
Prometheus through `sandbox exec meta-2 curl` on its loopback, adding that command's own
latency, about 0.1 s, to "label"), and the switch back to pg-test-1 goes through meta-2's
master. Everything is put back at the end (meta-2 removed). Traffic goes only to 10.10.10.0/24; every loop is
bounded in time.
"""
import argparse
import json
import os
import ssl
import statistics
import sys
import threading
import time
import urllib.request

import psycopg2
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))   # shared test helpers (pg.py)
from pg import user_password  # noqa: E402
import patroni_rest  # noqa: E402
import meta_http  # noqa: E402
from benchlib import sandbox  # noqa: E402

TEST_PW = user_password("pg-test", "test")
MEMBERS = {"pg-test-1": "10.10.10.11", "pg-test-2": "10.10.10.12", "pg-test-3": "10.10.10.13"}
NODE_OF = {"pg-test-1": "node-1", "pg-test-2": "node-2", "pg-test-3": "node-3"}


def patroni(ip, path="/patroni", timeout=0.5):
    return patroni_rest.get(ip, path, timeout=timeout)      # HTTPS, verified against the CA


def role(ip):
    try:
        r = patroni(ip).get("role")
        return "primary" if r in ("master", "primary") else r
    except Exception:  # noqa: BLE001
        return None


# the meta node whose master reconciles, and whose Prometheus and files are read
# (--second-master: meta-2, with meta's master and infra stopped)
RECORDS = "meta"


def prometheus_role(instance):
    """The role label Prometheus has for the instance's postgres target (meta's API, through
    the portal: HTTPS verified against the CA, with the portal's login; Prometheus listens
    on meta's loopback only). --second-master: meta-2's, on its loopback."""
    if RECORDS == "meta":
        status, body = meta_http.prometheus("/api/v1/targets?state=active", timeout=0.5)
        if status != 200:
            raise RuntimeError("Prometheus' targets through the portal: HTTP %d" % status)
    else:
        body = sandbox("exec", RECORDS, "curl", "-sf", "--max-time", "1",
                       "http://127.0.0.1:9090/api/v1/targets?state=active", check=False)
    targets = json.loads(body)["data"]["activeTargets"]
    for t in targets:
        if t["labels"].get("ins") == instance and t["labels"].get("cls") == "pg-test":
            return t["labels"].get("role")
    return None


def targets_file_role(instance):
    """The role the reconciler wrote for the instance into meta's (RECORDS') file_sd file."""
    text = sandbox("exec", RECORDS, "cat", "/etc/prometheus/targets/pgsql/pg-test.json", check=False)
    for group in yaml.safe_load(text) or []:
        if group.get("labels", {}).get("ins") == instance:
            return group["labels"].get("role")
    return None


def label_is(instance, want):
    try:
        return prometheus_role(instance) == want
    except Exception:  # noqa: BLE001
        return False


def haproxy_login(cluster="pg-test"):
    """The admin page's login of a cluster (its private pillar file): HAProxy asks for it."""
    path = os.path.join(REPO, "pillar", "clusters", "%s.sls" % cluster)
    with open(path) as fh:
        cvars = yaml.safe_load(fh)["pigsty"]["clusters"][cluster]["vars"]
    return cvars.get("haproxy_admin_username", "admin"), cvars["haproxy_admin_password"]


def _ca_context():
    """TLS verified against the sandbox's CA (HAProxy's admin page serves the node certificate)."""
    if "ctx" not in _CTX:
        _CTX["ctx"] = ssl.create_default_context(cafile=patroni_rest.ca_file())
    return _CTX["ctx"]


_CTX = {}


def haproxy_state(ip="10.10.10.12", backend="pg-test-primary"):
    """{server: status} from HAProxy's CSV stats on the admin port (with the cluster's login)."""
    import base64   # pylint: disable=import-outside-toplevel
    token = base64.b64encode(("%s:%s" % haproxy_login()).encode()).decode()
    req = urllib.request.Request("https://%s:9101/;csv" % ip, headers={"Authorization": "Basic " + token})
    with urllib.request.urlopen(req, timeout=0.5, context=_ca_context()) as resp:   # TLS, verified
        rows = resp.read().decode().splitlines()
    head = rows[0].lstrip("# ").split(",")
    out = {}
    for line in rows[1:]:
        rec = dict(zip(head, line.split(",")))
        if rec.get("pxname") == backend and rec.get("svname") not in ("FRONTEND", "BACKEND"):
            out[rec["svname"]] = rec["status"]
    return out


class Traffic(threading.Thread):
    def __init__(self, host, port, sql, stop):
        super().__init__(daemon=True)
        self.host, self.port, self.sql, self.stop = host, port, sql, stop
        self.ok, self.failed = [], []

    def run(self):
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                conn = psycopg2.connect(host=self.host, port=self.port, user="test", password=TEST_PW,
                                        dbname="test", connect_timeout=2)
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(self.sql)
                conn.close()
                self.ok.append(time.monotonic())
            except psycopg2.Error:
                self.failed.append(t)
            time.sleep(0.05)


def wait(check, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value, time.monotonic()
        time.sleep(interval)
    return None, None


class Watch(threading.Thread):
    """Polls ``check`` on its own (so a slow check does not delay the others) and records
    when it first returns something true; bounded by ``timeout``."""

    def __init__(self, check, timeout=90, interval=0.05):
        super().__init__(daemon=True)
        self.check, self.timeout, self.interval = check, timeout, interval
        self.value, self.at = None, None
        self.start()

    def run(self):
        self.value, self.at = wait(self._safe, self.timeout, self.interval)

    def _safe(self):
        try:
            return self.check()
        except Exception:  # noqa: BLE001
            return None


def vip_holder():
    for inst in ("pg-test-2", "pg-test-3"):
        if "10.10.10.3/24" in sandbox("exec", NODE_OF[inst], "ip", "-4", "-o", "addr", check=False):
            return inst
    return None


def one_run():
    stop = threading.Event()
    writer = Traffic("10.10.10.12", 5433, "insert into bench_failover(at) values (now())", stop)
    reader = Traffic("10.10.10.13", 5434, "select 1", stop)
    writer.start()
    reader.start()
    time.sleep(3)
    sandbox("kill", "node-1")
    t_kill = time.monotonic()
    candidates = ("pg-test-2", "pg-test-3")
    promo = Watch(lambda: next((i for i in candidates if role(MEMBERS[i]) == "primary"), None), 120)
    routed = Watch(lambda: next((i for i in candidates if haproxy_state().get(i) == "UP"), None))
    down = Watch(lambda: haproxy_state().get("pg-test-1", "DOWN").startswith("DOWN"))
    vip = Watch(vip_holder, interval=0.1)
    label = Watch(lambda: next((i for i in candidates if label_is(i, "primary")), None), interval=0.1)
    targets = Watch(lambda: next((i for i in candidates if targets_file_role(i) == "primary"), None), interval=0.1)
    for w in (promo, routed, down, vip, label, targets):
        w.join(125)
    new, t_promo = promo.value, promo.at
    if not new:
        stop.set()
        sys.exit("no promotion within 120 s")
    wait(lambda: writer.ok and writer.ok[-1] > t_kill, 60)
    time.sleep(2)
    stop.set()
    writer.join(5)
    reader.join(5)
    promo_wall = time.time() - (time.monotonic() - t_promo)
    last_before = max([t for t in writer.ok if t < t_kill] or [t_kill])
    first_after = min([t for t in writer.ok if t > t_kill] or [float("nan")])

    def after(watch, since, expect=None):
        if watch.at is None or (expect is not None and watch.value != expect):
            return float("nan")
        return watch.at - since
    return {
        "new": new,
        "promotion": t_promo - t_kill,
        "write_gap": first_after - last_before,
        "writes_back": first_after - t_promo,
        "routed": after(routed, t_promo, new),
        "old_down": after(down, t_kill),
        "vip": after(vip, t_promo, new),
        "label": after(label, t_promo, new),
        "targets": after(targets, t_promo, new),
        "read_errors": len(reader.failed),
        **reconcile_path(new, promo_wall),
    }


def reconcile_path(new, promo_wall):
    """Where the reconciler's time went, from the cluster's history on the master: when the
    beacon's event about the promotion was made (beacon), when the runner started on it
    (reactor) and when its live view of the roles was done (roles), each after promotion."""
    text = sandbox("exec", RECORDS, "tail", "-n", "60", "/var/cache/salt/master/pigsty/history/pg-test.jsonl",
                   check=False)
    for line in text.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        ev = e.get("event") or {}
        if ev.get("instance") == new and ev.get("new_role") == "primary" and ev.get("time", 0) > promo_wall - 5:
            out = {"beacon": ev["time"] - promo_wall}
            if e.get("requested"):
                out["reactor"] = e["requested"] - promo_wall
                out["roles"] = e["time"] + (e.get("timings") or {}).get("roles", float("nan")) - promo_wall
            return out
    return {}


class Writer(threading.Thread):
    """Writes through 5433 every 20 ms: on one connection (``persistent``) or a new
    connection per transaction; records commit times and failures (bounded in time)."""

    def __init__(self, host, persistent, stop, limit=180):
        super().__init__(daemon=True)
        self.host, self.persistent, self.stop, self.limit = host, persistent, stop, limit
        self.ok, self.failed, self.errors = [], [], []

    def run(self):
        deadline = time.monotonic() + self.limit
        conn = None
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = psycopg2.connect(host=self.host, port=5433, user="test", password=TEST_PW,
                                            dbname="test", connect_timeout=2)
                    conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute("insert into bench_failover(at) values (now())")
                self.ok.append(time.monotonic())
            except psycopg2.Error as exc:
                self.failed.append(time.monotonic())
                self.errors.append(str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__)
                conn = None
            if conn is not None and not self.persistent:
                conn.close()
                conn = None
            time.sleep(0.02)

    def max_gap(self, since, until):
        times = [t for t in self.ok if since - 1 <= t <= until + 1]
        return max((b - a for a, b in zip(times, times[1:])), default=float("nan"))


def leader_now():
    return next((i for i in MEMBERS if role(MEMBERS[i]) == "primary"), None)


def one_switchover(early_release=True):
    """Planned switchover through the runner, to the next member, with a persistent and a
    per-transaction writer through 5433 of the member that is neither old nor new."""
    old = leader_now()
    order = sorted(MEMBERS)
    new = order[(order.index(old) + 1) % len(order)]
    third = next(i for i in MEMBERS if i not in (old, new))
    stop = threading.Event()
    keeper = Writer(MEMBERS[third], True, stop)
    hopper = Writer(MEMBERS[old], False, stop)
    keeper.start()
    hopper.start()
    time.sleep(2)
    t0 = time.monotonic()
    out = sandbox("exec", "meta", "salt-run", "--out=json", "pigsty_ha.switchover", "pg-test",
                  "candidate=" + new, "early_release=%s" % early_release, check=False)
    t1 = time.monotonic()
    time.sleep(2)
    stop.set()
    keeper.join(10)
    hopper.join(10)
    try:
        res = json.loads(out)
    except ValueError:
        res = {"result": False, "comment": out[-500:]}
    return {
        "new": new, "ok": res.get("result") is True and res.get("new") == new,
        "waited": res.get("clients_waited_s") or float("nan"),
        "keeper_gap": keeper.max_gap(t0, t1), "hopper_gap": hopper.max_gap(t0, t1),
        "failed": len(keeper.failed) + len(hopper.failed), "runner": t1 - t0,
        "leader_key": res.get("leader_key"),
        "timeline": res.get("clients_waited_timeline") or {},
        "errors": ["%s +%.2fs after the runner started: %s" % (w, t - t0, e)
                   for w, client in (("one connection", keeper), ("per transaction", hopper))
                   for t, e in zip(client.failed, client.errors)],
    }


def switchover_runs(runs, early_release=True):
    results = []
    for i in range(runs):
        r = one_switchover(early_release)
        results.append(r)
        print("switchover %d -> %s: ok %s  clients waited %.3fs  max commit gap: one connection %.3fs, "
              "connection per transaction %.3fs  failed transactions %d  runner %.1fs  (%s)" % (
                  i + 1, r["new"], r["ok"], r["waited"], r["keeper_gap"], r["hopper_gap"], r["failed"],
                  r["runner"], r["leader_key"]), flush=True)
        if r["timeline"]:
            print("    hand-off, seconds after the pause: " + ", ".join(
                "%s %.3f" % (k, v) for k, v in sorted(r["timeline"].items(), key=lambda kv: kv[1])), flush=True)
        for line in r["errors"]:
            print("    failed: " + line, flush=True)
        time.sleep(5)
    # back to pg-test-1, and end the hand-offs (their clients are gone)
    if leader_now() != "pg-test-1":
        sandbox("exec", "meta", "salt-run", "pigsty_ha.switchover", "pg-test", "candidate=pg-test-1", check=False)
    sandbox("exec", "meta", "salt-run", "pigsty_ha.reconcile", "pg-test", check=False)
    print("\nmedian / max over %d switchovers:" % len(results))
    for key in ("waited", "keeper_gap", "hopper_gap", "failed", "runner"):
        values = [r[key] for r in results]
        print("  %-11s %7.3f / %7.3f" % (key, statistics.median(values), max(values)))
    marks = sorted({k for r in results for k in r["timeline"]})
    for mark in marks:          # the hand-off's own steps, seconds after its PAUSE
        values = [r["timeline"][mark] for r in results if mark in r["timeline"]]
        print("  %-22s %7.3f / %7.3f  (n=%d)" % (mark, statistics.median(values), max(values), len(values)))


def streaming_from(ip):
    try:
        return {r.get("application_name") for r in patroni(ip).get("replication") or []
                if r.get("state") == "streaming"}
    except Exception:  # noqa: BLE001
        return set()


def restore():
    sandbox("start", "node-1")
    wait(lambda: role("10.10.10.11") == "replica", 180, 0.5)
    leader = next((i for i in MEMBERS if role(MEMBERS[i]) == "primary"), None)
    if leader != "pg-test-1":
        # the runner switches over only to a replica that streams from the leader, and
        # refuses one that has just rejoined for a while: asked again, bounded
        wait(lambda: "pg-test-1" in streaming_from(MEMBERS[leader]), 120, 0.5)
        for _attempt in range(4):
            sandbox("exec", RECORDS, "salt-run", "pigsty_ha.switchover", "pg-test", "candidate=pg-test-1",
                    check=False)
            if wait(lambda: role("10.10.10.11") == "primary", 30, 0.5)[0]:
                break
    ok, _ = wait(lambda: role("10.10.10.11") == "primary" and role("10.10.10.12") == "replica"
                 and role("10.10.10.13") == "replica", 120, 0.5)
    if not ok:
        sys.exit("could not restore pg-test-1 as primary")
    time.sleep(8)   # health checks settle before the next run


def apply_plan(plan):
    override = json.dumps({"pigsty": {"clusters": {"pg-test": {"vars": {"pg_rto_plan": plan}}}}})
    sandbox("exec", "meta", "salt", "-t", "900", "-G", "pg_cluster:pg-test", "state.apply",
            "pgsql.patroni,pgsql.service", "pillar=" + override, timeout=900)


def set_archive_mode(value):
    """ALTER SYSTEM archive_mode on every pg-test member (None: RESET), then restart them
    with Patroni and wait until each reports the value."""
    sql = "alter system reset archive_mode" if value is None else "alter system set archive_mode = %s" % value
    for node in NODE_OF.values():
        sandbox("exec", node, "su", "postgres", "-c", "psql -XAtc '%s'" % sql)
    sandbox("exec", "node-1", "patronictl", "-c", "/etc/patroni/config.yml", "restart", "pg-test", "--force")
    want = value or "on"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        seen = {node: sandbox("exec", node, "su", "postgres", "-c", "psql -XAtc 'show archive_mode'",
                              check=False).strip() for node in NODE_OF.values()}
        if set(seen.values()) == {want}:
            return
        time.sleep(2)
    sys.exit("archive_mode is not %s on every member after 120 s: %s" % (want, seen))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--plan", choices=("norm", "fast"), default="norm")
    p.add_argument("--no-reactor", action="store_true")
    p.add_argument("--switchover", action="store_true",
                   help="planned switchovers through the runner instead of hard kills")
    p.add_argument("--no-early-release", action="store_true",
                   help="with --switchover: let Patroni release the leader key itself")
    p.add_argument("--sequences", type=int, default=0,
                   help="with --switchover: N back-and-forth sequences with connection churn")
    p.add_argument("--pause", type=float, default=3.0, help="with --sequences: seconds between switchovers")
    p.add_argument("--archive-off", action="store_true",
                   help="with --switchover: WAL archiving off during the runs (put back at the end)")
    p.add_argument("--second-master", action="store_true",
                   help="meta-2 as a second master; meta's master and infra stopped during the runs")
    args = p.parse_args()
    if args.second_master and (args.switchover or args.no_reactor):
        p.error("--second-master: only for failover runs (without --switchover or --no-reactor)")
    if args.archive_off and not args.switchover:
        p.error("--archive-off: only with --switchover")
    if args.switchover and args.sequences:
        import switchover_sequence          # it imports this module's helpers
        return switchover_sequence.run(args.sequences, args.pause)
    psycopg2.connect(host="10.10.10.11", port=5436, user="dbuser_dba", dbname="test", connect_timeout=3,
                     password=user_password("pg-test", "dbuser_dba")).cursor().execute(
        "create table if not exists bench_failover (id bigserial primary key, at timestamptz); "
        "grant insert on bench_failover to test; grant usage on sequence bench_failover_id_seq to test; commit")
    if args.switchover:
        if not args.archive_off:
            return switchover_runs(args.runs, not args.no_early_release)
        set_archive_mode("off")
        try:
            return switchover_runs(args.runs, not args.no_early_release)
        finally:
            set_archive_mode(None)
    if args.second_master:
        import second_master             # tests/support
        global RECORDS
        with second_master.second_master(on_exit=lambda: sandbox("start", "node-1", check=False)):
            RECORDS = second_master.NAME
            second_master.stop_first_master()
            print("meta-2 is a second master; meta's salt-master and infra are stopped", flush=True)
            failover_runs(args)
        return None
    failover_runs(args)
    return None


def failover_runs(args):
    if args.plan != "norm":
        apply_plan(args.plan)
    if args.no_reactor:
        sandbox("exec", "meta", "systemctl", "stop", "salt-master")
    results = []
    try:
        for i in range(args.runs):
            r = one_run()
            results.append(r)
            print("run %d (%s%s%s): promotion %.1fs  write gap %.1fs (writes back +%.2fs)  routed +%.2fs  old down %.1fs  "
                  "vip +%.2fs  targets file +%.2fs  label +%.2fs  read errors %d  (new primary %s)" % (
                      i + 1, args.plan, ", no reactor" if args.no_reactor else "",
                      ", second master" if RECORDS != "meta" else "", r["promotion"],
                      r["write_gap"], r["writes_back"], r["routed"], r["old_down"], r["vip"], r["targets"], r["label"], r["read_errors"],
                      r["new"]) + ("  [beacon +%.2fs  reactor +%.2fs  roles +%.2fs]" % (
                          r["beacon"], r.get("reactor", float("nan")), r.get("roles", float("nan")))
                                   if "beacon" in r else ""),
                  flush=True)
            if args.no_reactor:
                sandbox("exec", "meta", "systemctl", "start", "salt-master")
            restore()
            if args.no_reactor and i + 1 < args.runs:
                sandbox("exec", "meta", "systemctl", "stop", "salt-master")
        print("\nmedian / max over %d runs:" % len(results))     # before the plan is put back
        for key in ("promotion", "write_gap", "writes_back", "routed", "old_down", "vip", "targets", "label",
                    "read_errors"):
            values = [r[key] for r in results]
            print("  %-11s %7.2f / %7.2f" % (key, statistics.median(values), max(values)), flush=True)
        for key in ("beacon", "reactor", "roles"):     # the reconciler's path, after promotion
            values = [r[key] for r in results if key in r]
            if values:
                print("  %-11s %7.2f / %7.2f" % (key, statistics.median(values), max(values)), flush=True)
    finally:
        if args.no_reactor:
            sandbox("exec", "meta", "systemctl", "start", "salt-master", check=False)
        if args.plan != "norm":
            apply_plan("norm")


if __name__ == "__main__":
    main()
