#!/usr/bin/env python3
"""Memory of the event path as events repeat: the minion's Patroni beacon and the master's HA
runner, each driven 1,000 times (or --events) in one process, with RSS and tracemalloc's
growth printed at intervals; and the runner's own compute per role-change event.

    /opt/pigsty/venv/bin/python bench/memory.py                      # both parts, 1,000 events each
    /opt/pigsty/venv/bin/python bench/memory.py --part beacon --patroni scripted

beacon   _beacons/patroni.py through Salt's own beacon machinery (salt.beacons.Beacon.process,
         the loader, the beacon's own import of the synced _utils), with the configuration
         salt/pgsql/beacon.sls gives it (cafile, timeout 0.5, interval 1), polling a local
         Patroni REST endpoint on 127.0.0.1 whose role changes between polls: every change
         is one event (and --steady polls without a change follow each). The endpoint runs in
         a child process, so the measured process holds only the beacon's side:
         --patroni patroni (default): Patroni's own REST server (Patroni 3.0.2 of Debian 12,
           unpacked by tests/support/fetch_exporters.sh, as tests/functional/
           test_patroni_rest_server.py runs it) over HTTPS with our restapi configuration
           and a CA made here; its /patroni document comes from Patroni's own status query on
           two real PostgreSQL 15 servers (a primary and a streaming standby of it,
           tests/support/pg_server.py). The Patroni daemon itself (its HA loop and the DCS)
           is stood in for: a role change is the REST server switching from one PostgreSQL
           to the other, a stop is Patroni's "stopped" state.
         --patroni scripted: a scripted HTTP server (tests/support/scripted_http.py), plain
           HTTP, that answers Patroni's /patroni document: Patroni is emulated.
runner   _runners/pigsty_ha.py's reconcile(event=...) as the reactor calls it
         (reactor/patroni_change.sls), over a synthetic inventory of --clusters clusters x 3
         members (tests/support/synthetic.py) compiled by Salt's own pillar code from a pillar
         tree like pillar/ (the runner's inventory cache, pigsty_inventory_cache, as on the
         master). Replaced at the boundary only, where a real master and minions are needed:
         the members' Patroni answers (live_roles: the event's instance is primary, the
         others replicas) and Salt's fan-out to minions (_fan_out): HAProxy answers with its
         commands, the VIP's holder moves when asked, and the meta node's pigsty_live.record
         is pigsty_live_files.record writing into a temp dir. Everything else is the
         runner's: the event's admission (rate limits and counters on disk), the cluster
         lock, the steps' threads, the history file. Events go round-robin over --hit
         clusters, the primary moving between members 1 and 2 each time.

Each part runs the events twice in the same process: an RSS pass (tracemalloc off: RSS at
every --every events; for the runner also the wall time and CPU time of each
reconcile(event=...) at --clusters clusters, median, p95 and max; "record" is the share
spent in the meta node's pigsty_live_files.record, which the runner itself does when the
master runs on the meta node, Pigsty's layout), then a tracemalloc pass (the traced
allocation sites at every --every events; RSS is printed but not judged there: the
snapshots themselves move it).
The runner's part then writes history entries into one cluster's history until it has
rotated (pigsty_ha_history: 1 MiB per file, 5 rotated files) and checks the bound on disk.

Flat, the verdict (exit status 1 when a part is not flat):
  - in the RSS pass, RSS grows by at most --rss-limit KiB (default 2048) from --warm
    events (default 200; by then every cluster of the round-robin was seen twice) to the
    last event;
  - in the tracemalloc pass, no allocation site grows linearly: none grows by more than
    --site-bytes-per-event (default 40) bytes per event (and more than 16 KiB: below that,
    Python's free lists and caches filling up) from --warm to the end AND in at least three
    quarters of the intervals (a site that grows once, a dict resized, is not linear
    growth; one that grows with the events is).
Local only: loopback, temp dirs; no sandbox.
"""
import argparse
import array
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (os.path.join(REPO, "_utils"), os.path.join(REPO, "tests", "support")):
    if _path not in sys.path:
        sys.path.insert(0, _path)
TEST_ROOT = os.environ.get("PIGSTY_TEST_ROOT", "/var/cache/pigsty-test-root")
PATRONI_DIST = os.path.join(TEST_ROOT, "usr", "lib", "python3", "dist-packages")
BEACON_CLUSTER, BEACON_INSTANCE, BEACON_IP = "pg-test", "pg-test-1", "10.10.10.11"
KIB = 1024
SITE_FLOOR = 16 * KIB    # bytes: below this a site's growth is noise (free lists, caches filling)


# ------------------------------------------------------------------ measuring
def rss_kib():
    """This process's resident set size (KiB), from /proc/self/status."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Tracker:
    """RSS (and, with ``trace``, tracemalloc's allocation sites) at checkpoints."""

    def __init__(self, trace):
        self.trace = trace
        self.points = []           # (events, rss KiB, traced bytes, {site: bytes} or None)
        self._filters = [tracemalloc.Filter(False, tracemalloc.__file__),
                         tracemalloc.Filter(False, os.path.abspath(__file__))]

    def __enter__(self):
        if self.trace:
            tracemalloc.start()
        return self

    def __exit__(self, *exc):
        if self.trace:
            tracemalloc.stop()

    def checkpoint(self, events):
        gc.collect()
        sites, traced = None, None
        if self.trace:
            snap = tracemalloc.take_snapshot().filter_traces(self._filters)
            sites = {str(s.traceback[0]): s.size for s in snap.statistics("lineno")}
            traced = sum(sites.values())
        self.points.append((events, rss_kib(), traced, sites))
        return self.points[-1]


def verdict(points, warm, rss_limit_kib, site_bytes_per_event, site_floor=SITE_FLOOR):
    """(flat?, [reasons], [(site, growth bytes, intervals grown, intervals)] top growth)
    of the checkpoints from the one at ``warm`` events on (see the module's docstring);
    ``rss_limit_kib`` None: RSS is not judged."""
    later = [p for p in points if p[0] >= warm]
    if len(later) < 2:
        return False, ["fewer than two checkpoints after %d events" % warm], []
    first, last = later[0], later[-1]
    reasons = []
    rss_growth = last[1] - first[1]
    if rss_limit_kib is not None and rss_growth > rss_limit_kib:
        reasons.append("RSS grew by %d KiB from event %d to %d (limit %d KiB)" % (
            rss_growth, first[0], last[0], rss_limit_kib))
    top = []
    if first[3] is not None:
        events = last[0] - first[0]
        intervals = len(later) - 1
        for site in set(first[3]) | set(last[3]):
            growth = last[3].get(site, 0) - first[3].get(site, 0)
            if growth <= 0:
                continue
            grown = sum(1 for a, b in zip(later, later[1:]) if b[3].get(site, 0) > a[3].get(site, 0))
            top.append((site, growth, grown, intervals))
        top.sort(key=lambda t: -t[1])
        for site, growth, grown, intervals in top:
            if growth > max(site_floor, site_bytes_per_event * events) and grown * 4 >= intervals * 3:
                reasons.append("%s grew by %d bytes (%.0f per event) in %d of %d intervals" % (
                    site, growth, growth / events, grown, intervals))
    return not reasons, reasons, top[:5]


def print_points(title, points, out=print):
    out(title)
    out("")
    out("| events | RSS MiB | RSS growth KiB | traced KiB |")
    out("|---:|---:|---:|---:|")
    base = points[0][1]
    for events, rss, traced, _sites in points:
        out("| %d | %.1f | %+d | %s |" % (events, rss / KIB, rss - base,
                                          "%.0f" % (traced / KIB) if traced is not None else "-"))


def _short(site):
    for prefix in (REPO + os.sep, os.path.dirname(os.__file__) + os.sep):
        if site.startswith(prefix):
            return site[len(prefix):]
    return site


# ------------------------------------------------------------------ the Patroni endpoint
def _doc(role, state):
    """Patroni's /patroni document as Patroni 3 writes it (the scripted endpoint)."""
    doc = {"state": state, "role": "master" if role == "primary" else "replica",
           "server_version": 150000, "dcs_last_seen": int(time.time()),
           "patroni": {"version": "3.0.2", "scope": BEACON_CLUSTER}}
    if state == "running":
        doc["timeline"] = 1
        doc["xlog"] = {"location": 67108864} if role == "primary" else {
            "received_location": 67108864, "replayed_location": 67108864, "paused": False}
    return doc


def serve_scripted():
    """The scripted endpoint (child process): each answer is the current document."""
    from scripted_http import ScriptedHTTP     # pylint: disable=import-outside-toplevel
    server = ScriptedHTTP([(200, _doc("replica", "running"))])
    _serve_loop({"port": server.port, "cafile": None, "what": "scripted HTTP (Patroni emulated)"},
                lambda role, state: server.steps.__setitem__(0, (200, _doc(role, state))))
    server.close()


class _Ha:
    """What Patroni's REST handler asks of Patroni's HA loop (stood in for)."""

    class watchdog:          # pylint: disable=invalid-name,too-few-public-methods
        is_healthy = True

    def __init__(self, pg):
        self.pg = pg

    def get_effective_tags(self):
        return {}

    def is_paused(self):
        return False

    def is_standby_cluster(self):
        return False

    def failsafe_is_active(self):
        return False

    def is_leader(self):
        return self.pg.current == "primary" and self.pg.state == "running"


def serve_patroni():
    """Patroni's own REST server (child process) over two real PostgreSQL servers."""
    sys.path.insert(0, PATRONI_DIST)
    import psycopg2                               # pylint: disable=import-outside-toplevel
    import yaml                                   # pylint: disable=import-outside-toplevel
    import patroni.api                            # pylint: disable=import-outside-toplevel
    import patroni.config                         # pylint: disable=import-outside-toplevel
    from patroni.postgresql import Postgresql     # pylint: disable=import-outside-toplevel
    import pg_server                              # pylint: disable=import-outside-toplevel
    import pigsty_inventory                       # pylint: disable=import-outside-toplevel
    import pigsty_pgsql                           # pylint: disable=import-outside-toplevel
    from local_http import free_port              # pylint: disable=import-outside-toplevel
    from pillar_fixture import default_pillar     # pylint: disable=import-outside-toplevel
    from throwaway_ca import CA                   # pylint: disable=import-outside-toplevel

    work = tempfile.mkdtemp(prefix="pigsty-memory-patroni-")
    stops = []
    try:
        primary, stop = pg_server.start_instance(hba=pg_server.HBA + "local replication postgres trust\n",
                                                 prefix="pigsty-memory-pg-")
        stops.append(stop)
        standby, stop = pg_server.start_instance(prefix="pigsty-memory-pg-", basebackup_from=primary)
        stops.append(stop)
        pki = CA(os.path.join(work, "ca")).node(os.path.join(work, "node"), "node-1",
                                                 dns=["node-1"], ips=["127.0.0.1"])
        conf = pigsty_inventory.instance_config(default_pillar(), "node-1")
        text = yaml.safe_dump(pigsty_pgsql.patroni_config(conf, 4096))
        for name, key in (("ca.crt", "ca_crt"), ("node.crt", "node_crt"), ("node.key", "node_key")):
            text = text.replace("/etc/pki/pigsty/" + name, pki[key])
        cfg = yaml.safe_load(text)
        port = free_port()
        cfg["restapi"]["listen"] = cfg["restapi"]["connect_address"] = "127.0.0.1:%d" % port
        cfg["postgresql"]["data_dir"] = os.path.join(work, "data")
        with open(os.path.join(work, "config.yml"), "w") as fh:
            yaml.safe_dump(cfg, fh)
        config = patroni.config.Config(os.path.join(work, "config.yml"))
        conns = {}
        for role, inst in (("primary", primary), ("replica", standby)):
            conns[role] = psycopg2.connect(host=inst.host, port=inst.port, user="postgres", dbname="postgres")
            conns[role].autocommit = True

        class Pg:       # Patroni's Postgresql object, as far as the REST handler reads it
            POSTMASTER_START_TIME = Postgresql.POSTMASTER_START_TIME
            TL_LSN = Postgresql.TL_LSN
            wal_name, lsn_name, server_version = "wal", "lsn", 150000
            scope, name, sysid, pending_restart = BEACON_CLUSTER, BEACON_INSTANCE, None, False
            current, state = "replica", "running"

            @property
            def role(self):
                return "master" if self.current == "primary" else "replica"

            def connection(self):
                return conns[self.current]

            def replica_cached_timeline(self, _primary_timeline):
                with conns["replica"].cursor() as cur:      # the standby's own answer
                    cur.execute("SELECT received_tli FROM pg_catalog.pg_stat_wal_receiver")
                    row = cur.fetchone()
                return row[0] if row else None

        class StandIn:  # the Patroni daemon object the REST server is given
            version, scheduled_restart = "3.0.2", {}
            noloadbalance = False

            def __init__(self):
                self.postgresql = Pg()
                self.ha = _Ha(self.postgresql)
                self.dcs = type("Dcs", (), {"cluster": None, "last_seen": int(time.time())})()
                self.logger = type("Log", (), {"queue_size": 0, "NORMAL_LOG_QUEUE_SIZE": 2})()

        stand_in = StandIn()
        server = patroni.api.RestApiServer(stand_in, config["restapi"])
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()

        def switch(role, state):
            stand_in.postgresql.current = role
            stand_in.postgresql.state = state
        try:
            _serve_loop({"port": port, "cafile": pki["ca_crt"],
                         "what": "Patroni 3.0.2's REST server over HTTPS on two PostgreSQL 15 servers "
                                 "(the Patroni daemon stood in for)"}, switch)
        finally:
            server.shutdown()
            server.server_close()
            for c in conns.values():
                c.close()
    finally:
        for stop in reversed(stops):
            stop()
        shutil.rmtree(work, ignore_errors=True)


def _serve_loop(hello, switch):
    """Tell the parent where to connect, then switch to each ``ROLE STATE`` read on stdin
    (answering ``ok``) until ``quit`` or the end of stdin."""
    print(json.dumps(hello), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        switch(words[0], words[1])
        print("ok", flush=True)


class Endpoint:
    """The endpoint's child process: ``set(role, state)`` before a poll."""

    def __init__(self, kind):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", kind],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(30)
            raise RuntimeError("the %s endpoint did not start (exit %s)" % (kind, self.proc.returncode))
        hello = json.loads(line)
        self.port, self.cafile, self.what = hello["port"], hello["cafile"], hello["what"]

    def set(self, role, state="running"):
        self.proc.stdin.write("%s %s\n" % (role, state))
        self.proc.stdin.flush()
        if self.proc.stdout.readline().strip() != "ok":
            raise RuntimeError("the endpoint did not switch to %s %s" % (role, state))

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ------------------------------------------------------------------ the beacon
def beacon_config(endpoint):
    """The beacon's configuration as salt/pgsql/beacon.sls writes it."""
    config = [{"cluster": BEACON_CLUSTER}, {"instance": BEACON_INSTANCE}, {"ip": BEACON_IP},
              {"port": endpoint.port}]
    if endpoint.cafile:
        config.append({"cafile": endpoint.cafile})
    return config + [{"timeout": 0.5}, {"interval": 1}]


def beacon_states(n):
    """The n-th (role, state) the endpoint takes: primary and replica in turn, every tenth
    change Patroni's "stopped" (PostgreSQL down, Patroni up)."""
    if n % 10 == 9:
        return ("primary" if n % 2 else "replica", "stopped")
    return ("primary" if n % 2 == 0 else "replica", "running")


def run_beacon(endpoint, events, every, steady=2, passes=(False, True), workdir=None):
    """Drive the beacon through Salt's Beacon.process for ``events`` changes (each followed
    by ``steady`` polls without one), once per pass (``passes``: tracemalloc on in each?),
    one beacon all along; a Tracker per pass, with a checkpoint every ``every`` events.
    Raises AssertionError when the beacon does not fire exactly once per change."""
    import salt.beacons     # pylint: disable=import-outside-toplevel
    import salt.config      # pylint: disable=import-outside-toplevel
    own = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="pigsty-memory-beacon-")
    # the beacon takes its _utils out of sys.modules (see _load_utils there): put back what
    # this process had (the unit tests share one process)
    saved = {name: sys.modules[name] for name in ("pigsty_patroni", "pigsty_events") if name in sys.modules}
    try:
        ext = os.path.join(workdir, "extmods")
        os.makedirs(os.path.join(ext, "beacons"), exist_ok=True)
        os.symlink(os.path.join(REPO, "_beacons", "patroni.py"), os.path.join(ext, "beacons", "patroni.py"))
        os.symlink(os.path.join(REPO, "_utils"), os.path.join(ext, "utils"))
        opts = dict(salt.config.DEFAULT_MINION_OPTS, id="node-1", extension_modules=ext,
                    cachedir=os.path.join(workdir, "cache"), loop_interval=1, beacons={},
                    grains={}, pillar={})
        beacons = salt.beacons.Beacon(opts, {})
        config = {"patroni": beacon_config(endpoint)}
        endpoint.set("replica")
        polls = [beacons.process(config, {}) for _ in range(2)]   # the first only starts the interval
        assert polls == [[], []], "the first polls must only record the state: %r" % (polls,)
        trackers, changes = [], 0
        for trace in passes:
            tracker = Tracker(trace)
            with tracker:
                tracker.checkpoint(0)
                for n in range(events):
                    role, state = beacon_states(changes)
                    changes += 1
                    endpoint.set(role, state)
                    fired = beacons.process(config, {})
                    assert len(fired) == 1, "change %d (%s, %s): %r" % (changes, role, state, fired)
                    data = fired[0]["data"]
                    assert fired[0]["tag"] == "salt/beacon/node-1/patroni/pigsty/patroni/change", fired
                    assert (data["new_role"], data["state"]) == (role, state), data
                    for _ in range(steady):
                        assert beacons.process(config, {}) == [], "no change, no event"
                    if (n + 1) % every == 0:
                        tracker.checkpoint(n + 1)
            trackers.append(tracker)
        return trackers
    finally:
        sys.modules.update(saved)
        if own:
            shutil.rmtree(workdir, ignore_errors=True)


# ------------------------------------------------------------------ the runner
class RunnerBench:
    """The HA runner over a synthetic inventory, its boundary replaced (see the docstring)."""

    def __init__(self, clusters, hit, workdir):
        import pigsty_events                 # pylint: disable=import-outside-toplevel
        import pigsty_live_files             # pylint: disable=import-outside-toplevel
        import synthetic                     # pylint: disable=import-outside-toplevel
        from loader import load_module       # pylint: disable=import-outside-toplevel
        from salt_master import master_opts  # pylint: disable=import-outside-toplevel
        self.events_mod, self.live_files, self.synthetic = pigsty_events, pigsty_live_files, synthetic
        self.clusters, self.hit, self.workdir = clusters, min(hit, clusters), workdir
        with open(os.path.join(REPO, "pillar", "top.sls")) as fh:
            synthetic.write_pillar_tree(os.path.join(workdir, "pillar"), clusters, top_file=fh.read())
        self.opts = master_opts(workdir, [os.path.join(workdir, "pillar")])
        self.dirs = {"live_dir": os.path.join(workdir, "meta", "live"),
                     "target_dir": os.path.join(workdir, "meta", "targets"),
                     "hosts_file": os.path.join(workdir, "meta", "dns", "hosts")}
        for d in ("live", "targets/pgsql", "dns"):
            os.makedirs(os.path.join(workdir, "meta", d), exist_ok=True)
        self.runner = load_module("_runners/pigsty_ha.py", "pigsty_ha_memory_bench", opts=self.opts,
                                  context={})
        t0 = time.perf_counter()
        _merged, self.inv = self.runner._inventory()      # pylint: disable=protected-access
        self.compile_s = time.perf_counter() - t0
        self.primary = {}           # cluster -> seq of its live primary
        self.vip = {}               # cluster -> minion holding the VIP
        self.record_s = 0.0         # time spent in the meta node's record (the boundary's share)
        self.runner._live_roles = self.live_roles
        self.runner._fan_out = self.fan_out         # pylint: disable=protected-access
        self.sent = 0

    # the boundary: the members' Patroni, and Salt's fan-out to the minions
    def live_roles(self, members, _port, _access=None):
        cluster = members[0]["pg_instance"].rsplit("-", 1)[0]
        seq = self.primary.get(cluster, 1)
        roles = {m["pg_instance"]: "primary" if m["pg_seq"] == seq else "replica" for m in members}
        return roles, {i: {"state": "running", "timeline": 1} for i in roles}

    def fan_out(self, minions, fun, arg=None, kwarg=None, timeout=None):   # pylint: disable=unused-argument
        arg = arg or []
        if fun == "pigsty_haproxy.apply_health":
            return {m: {"commands": [], "held": {}} for m in minions}
        if fun == "pigsty_vip.holds":
            return {m: self.vip.get(self._cluster_of(m)) == m for m in minions}
        if fun == "pigsty_vip.ensure":
            for m in minions:
                cluster = self._cluster_of(m)
                if (kwarg or {}).get("present"):
                    self.vip[cluster] = m
                elif self.vip.get(cluster) == m:
                    self.vip[cluster] = None
            return {m: True for m in minions}
        if fun == "pigsty_live.record":
            t0 = time.perf_counter()
            out = {m: self.live_files.record(self.inv, arg[0], arg[1], lambda: None, **self.dirs)
                   for m in minions}
            self.record_s += time.perf_counter() - t0
            return out
        raise AssertionError("the event path asked %s of %s: not expected here" % (fun, minions))

    def _cluster_of(self, minion):
        return self.synthetic.cluster_name(int(minion[1:].split("-")[0]))

    def event(self):
        """The reactor's data of the next role-change event (round-robin over ``hit``
        clusters, the primary moving between members 1 and 2)."""
        i = self.sent % self.hit
        self.sent += 1
        cluster = self.synthetic.cluster_name(i)
        old = self.primary.get(cluster, 1)
        new = 2 if old == 1 else 1
        self.primary[cluster] = new
        minion = self.synthetic.minion(i, new)
        identity = {"cluster": cluster, "instance": "%s-%d" % (cluster, new),
                    "ip": "%s.%d" % (self.synthetic.subnet(i), 10 + new)}
        ev = self.events_mod.event(
            identity, {"role": "replica", "state": "running", "timeline": 1},
            {"role": "primary", "state": "running", "timeline": 2, "lsn": 1000 + self.sent})
        ev.update(id=minion, _stamp="2026-12-02T00:00:00.000000",
                  _tag="salt/beacon/%s/patroni/%s" % (minion, self.events_mod.EVENT_TAG))
        return ev

    def one(self):
        """One reconcile(event=...): (wall s, CPU s of this process, the record's share s)."""
        ev = self.event()
        rec0 = self.record_s
        c0, t0 = time.process_time(), time.perf_counter()
        out = self.runner.reconcile(event=ev)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if out.get("result") is not True or out["steps"]["vip"].get("holder") != ev["instance"]:
            raise AssertionError("event %d was not reconciled: %s" % (
                self.sent, json.dumps(out, default=str)[:2000]))
        return wall, cpu, self.record_s - rec0

    def history_dir(self):
        return os.path.join(self.opts["cachedir"], "pigsty", "history")


def run_runner(bench, events, every, trace=True):
    """``events`` events with a checkpoint every ``every``: (Tracker, [(wall, cpu, record)])."""
    tracker = Tracker(trace)
    # preallocated: a list of tuples would grow by ~110 bytes per event, the bench's own
    # growth (seen in a 5,000-event run before this)
    timings = array.array("d", bytes(8 * 3 * events))
    with tracker:
        tracker.checkpoint(0)
        for n in range(events):
            timings[3 * n], timings[3 * n + 1], timings[3 * n + 2] = bench.one()
            if (n + 1) % every == 0:
                tracker.checkpoint(n + 1)
    return tracker, [tuple(timings[3 * n:3 * n + 3]) for n in range(events)]


def history_rotation(bench, writes_mib=8):
    """Write real history entries into one cluster's history through pigsty_ha_history until
    ``writes_mib`` MiB went in; (entries, RSS growth KiB, files, bytes on disk, bound)."""
    import pigsty_ha_history     # pylint: disable=import-outside-toplevel
    cluster = bench.synthetic.cluster_name(0)
    entries = pigsty_ha_history.read_jsonl(pigsty_ha_history.path(bench.opts, cluster), 1)
    entry = entries[-1]
    size = len(json.dumps(entry, sort_keys=True, default=str)) + 1
    n = writes_mib * 1024 * 1024 // size
    gc.collect()
    rss0 = rss_kib()
    for _ in range(n):
        pigsty_ha_history.record(bench.opts, cluster, entry)
    gc.collect()
    path = pigsty_ha_history.path(bench.opts, cluster)
    files = [p for p in [path] + ["%s.%d" % (path, k) for k in range(1, pigsty_ha_history.HISTORY_KEEP + 2)]
             if os.path.exists(p)]
    on_disk = sum(os.path.getsize(p) for p in files)
    bound = (pigsty_ha_history.HISTORY_KEEP + 1) * pigsty_ha_history.HISTORY_MAX_BYTES
    return {"entries": n, "entry_bytes": size, "rss_growth_kib": rss_kib() - rss0, "files": len(files),
            "on_disk": on_disk, "bound": bound,
            "rotated": len(files) == pigsty_ha_history.HISTORY_KEEP + 1 and on_disk <= bound,
            "last_read": len(pigsty_ha_history.read(bench.opts, cluster, 20))}


def _pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


# ------------------------------------------------------------------ main
def beacon_part(args, out=print):
    with Endpoint(args.patroni) as endpoint:
        out("beacon: %d changes (each then %d polls without one), twice, against %s on 127.0.0.1:%d%s" % (
            args.events, args.steady, endpoint.what, endpoint.port,
            ", HTTPS verified against its CA" if endpoint.cafile else ", plain HTTP"))
        t0 = time.perf_counter()
        plain, traced = run_beacon(endpoint, args.events, args.every, args.steady)
        out("%d polls in %.1f s" % (2 * args.events * (1 + args.steady) + 2, time.perf_counter() - t0))
    print_points("\nThe beacon's process, RSS pass (tracemalloc off)", plain.points, out)
    first = verdict(plain.points, args.warm, args.rss_limit, args.site_bytes_per_event)
    print_points("\nThen the tracemalloc pass", traced.points, out)
    second = verdict(traced.points, args.warm, None, args.site_bytes_per_event)
    return _judge("beacon", first, second, args.warm, out)


def _judge(name, rss_result, sites_result, warm, out):
    flat = rss_result[0] and sites_result[0]
    out("")
    if sites_result[2]:
        out("tracemalloc, the sites that grew most from event %d to the end:" % warm)
        for site, growth, grown, intervals in sites_result[2]:
            out("  %+8d bytes  grew in %d of %d intervals  %s" % (growth, grown, intervals, _short(site)))
    reasons = rss_result[1] + sites_result[1]
    out("%s: %s" % (name, "FLAT" if flat else "NOT FLAT: " + "; ".join(reasons)))
    return flat


def runner_part(args, out=print):
    workdir = tempfile.mkdtemp(prefix="pigsty-memory-runner-")
    try:
        bench = RunnerBench(args.clusters, args.hit, workdir)
        out("runner: %d clusters x 3 members (inventory compiled by Salt's pillar code in %.1f s); "
            "%d role-change events round-robin over %d clusters, twice" % (
                args.clusters, bench.compile_s, args.events, bench.hit))
        plain, timings = run_runner(bench, args.events, args.every, trace=False)
        print_points("\nThe runner's process, RSS pass (tracemalloc off)", plain.points, out)
        first = verdict(plain.points, args.warm, args.rss_limit, args.site_bytes_per_event)
        out("")
        out("Its compute per role-change event at %d clusters (RSS pass), milliseconds:" % args.clusters)
        out("")
        out("| per event | median | p95 | max |")
        out("|---|---:|---:|---:|")
        for name, k in (("reconcile(event=...), wall", 0), ("CPU of the process", 1),
                        ("of which the meta node's record, wall", 2)):
            vals = [t[k] * 1000 for t in timings]
            out("| %s | %.1f | %.1f | %.1f |" % (name, statistics.median(vals), _pct(vals, 0.95), max(vals)))
        vals = [(t[0] - t[2]) * 1000 for t in timings]
        out("| wall without the record | %.1f | %.1f | %.1f |" % (
            statistics.median(vals), _pct(vals, 0.95), max(vals)))
        traced, _timings = run_runner(bench, args.events, args.every, trace=True)
        print_points("\nThen the tracemalloc pass", traced.points, out)
        second = verdict(traced.points, args.warm, None, args.site_bytes_per_event)
        flat = _judge("runner", first, second, args.warm, out)
        hist = os.listdir(bench.history_dir())
        out("history: %d files, %.0f KiB on disk after %d events" % (
            len([h for h in hist if h.endswith(".jsonl")]),
            sum(os.path.getsize(os.path.join(bench.history_dir(), h)) for h in hist) / KIB, bench.sent))
        if args.rotation:
            rot = history_rotation(bench)
            ok = rot["rotated"] and rot["rss_growth_kib"] <= args.rss_limit
            out("history rotation: %d entries of %d bytes into one cluster's history: %d files, %.2f MiB on "
                "disk (bound %.0f MiB), RSS %+d KiB, `history` reads %d entries: %s" % (
                    rot["entries"], rot["entry_bytes"], rot["files"], rot["on_disk"] / KIB / KIB,
                    rot["bound"] / KIB / KIB, rot["rss_growth_kib"], rot["last_read"],
                    "ok" if ok else "NOT OK"))
            flat = flat and ok
        return flat
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=("both", "beacon", "runner"), default="both")
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--every", type=int, default=100, help="a checkpoint every N events")
    ap.add_argument("--warm", type=int, default=200, help="growth is measured from this event on")
    ap.add_argument("--patroni", choices=("patroni", "scripted"), default="patroni",
                    help="the beacon's endpoint (see the docstring)")
    ap.add_argument("--steady", type=int, default=2, help="beacon polls without a change after each change")
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--hit", type=int, default=100,
                    help="clusters the runner's events go round-robin over (each minion may send 20 events "
                         "at once, then one a second: pigsty_events.RateLimiter refuses more; keep "
                         "events / hit, what each minion sends over both passes, under 20 plus the "
                         "run's seconds)")
    ap.add_argument("--rss-limit", type=int, default=2048, help="KiB")
    ap.add_argument("--site-bytes-per-event", type=float, default=40)
    ap.add_argument("--no-rotation", dest="rotation", action="store_false",
                    help="skip the history rotation check")
    ap.add_argument("--serve", choices=("patroni", "scripted"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve == "patroni":
        serve_patroni()
        return 0
    if args.serve == "scripted":
        serve_scripted()
        return 0
    print("bench/memory.py: Python %s, %d CPUs, load average %.1f at the start" % (
        sys.version.split()[0], os.cpu_count(), os.getloadavg()[0]))
    print("flat: RSS growth from event %d to the end <= %d KiB, and no allocation site growing by "
          "more than %g bytes per event (and %d KiB) in 3/4 of the intervals" % (
              args.warm, args.rss_limit, args.site_bytes_per_event, SITE_FLOOR // KIB))
    flat = True
    if args.part in ("both", "beacon"):
        print()
        flat = beacon_part(args) and flat
    if args.part in ("both", "runner"):
        print()
        flat = runner_part(args) and flat
    print()
    print("load average at the end: %.1f; %s" % (os.getloadavg()[0], "flat" if flat else "NOT FLAT"))
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
