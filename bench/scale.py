#!/usr/bin/env python3
"""Scale of the inventory code, offline: synthetic inventories of N clusters x 3 members
(tests/support/synthetic.py), and the time each of the project's own functions takes on them.

    /opt/pigsty/venv/bin/python bench/scale.py                       # this tree
    /opt/pigsty/venv/bin/python bench/scale.py --before fae9dbe      # and the code of a commit

Measured, best of --repeat runs (seconds of wall time):
  validate      pigsty_inventory.validate of the master's full view (every cluster's private part)
  ext cold      the ext_pillar (_pillar/pigsty.py) for one minion, nothing cached
  ext warm      the same for a minion of another cluster once the inventory was validated
                (mean over 20 minions: what each further minion of a pillar refresh costs)
  file_sd       pigsty_monitor.target_files: every Prometheus file_sd file
  dns           pigsty_dns.hosts_file(records): every DNS record
  portal        pigsty_infra.nginx: the Nginx config and portal of every cluster
  haproxy       pigsty_pgsql.haproxy_services(instance_config) of one cluster
  total         validate + file_sd + dns + portal + haproxy
  event         the HA runner's own compute for one role-change event, offline: the event
                check, the cluster's members, its instance config (three times, as the steps
                ask) and HAProxy services, the wanted health, and pigsty_live_files.record
                (the cluster's targets and every DNS record, written to a temp dir). For this
                tree with the index passed as _runners/pigsty_ha.py would pass it once wired
                (it is not yet: see the report of the offline scale work); for --before, as
                pigsty_ha.py calls the functions today (the event check maps every cluster).
                Best of --repeat events after a first one; the primary moves every time.
The ext_pillar gets its pillar as Salt gives it (OrderedDicts). With Salt importable, a second
table: Salt's own pillar compile of one minion (ext=False, the repository's pillar/top.sls over
pillar files written to a temp dir), the ext_pillar's share of a pillar refresh, and the
master's full view for `salt-run pigsty.validate` (_utils/pigsty_pillar.full_inventory: every
pillar file rendered once) plus the validation.

``--before REV`` runs the first table on the code of REV (git archive of _utils/ and _pillar/
into a temp dir), in a process of its own. Local CPU only: no network, no sandbox.
"""
import argparse
import collections
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLUMNS = ("validate", "ext cold", "ext warm", "file_sd", "dns", "portal", "haproxy", "total",
           "event")
SALT_COLUMNS = ("salt compile", "ext warm", "ext share", "full view", "runner validate")


def _best(fn, repeat):
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best = dt if best is None or dt < best else best
    return best


def _load_ext_pillar(code):
    spec = importlib.util.spec_from_file_location("bench_ext_pillar",
                                                  os.path.join(code, "_pillar", "pigsty.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.__opts__ = {"id": "salt-master"}
    return mod


def _salt(n, workdir, ext_warm, validate):
    """Salt's own pillar work on the inventory (None without Salt): one minion's compile
    (ext=False) and the master's full view, with the repository's pillar/top.sls."""
    try:
        import salt.pillar      # pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        return None
    import pigsty_pillar        # pylint: disable=import-outside-toplevel
    import synthetic            # pylint: disable=import-outside-toplevel
    from salt_master import master_opts   # pylint: disable=import-outside-toplevel
    root = os.path.join(workdir, "salt-%d" % n)
    with open(os.path.join(REPO, "pillar", "top.sls")) as fh:
        synthetic.write_pillar_tree(os.path.join(root, "pillar"), n, top_file=fh.read())
    opts = master_opts(root, [os.path.join(root, "pillar")])
    c = n // 2
    minion, name = synthetic.minion(c, 2), synthetic.cluster_name(c)
    salt.pillar.Pillar(opts, {}, minion, "base").compile_pillar(ext=False)   # warm the loaders
    t0 = time.perf_counter()
    compiled = salt.pillar.Pillar(opts, {}, minion, "base").compile_pillar(ext=False)
    compile_s = time.perf_counter() - t0
    assert "pg_users" in compiled["pigsty"]["clusters"][name]["vars"], compiled.get("_errors")
    t0 = time.perf_counter()
    merged, problems = pigsty_pillar.full_inventory(opts)
    full_s = time.perf_counter() - t0
    assert problems == [] and len(merged["pigsty"]["clusters"]) == n
    t0 = time.perf_counter()
    assert validate(merged) == []
    return {"salt compile": compile_s, "ext warm": ext_warm, "ext share": ext_warm / compile_s,
            "full view": full_s, "runner validate": full_s + time.perf_counter() - t0}


def _event(full, n, workdir, repeat):
    """Seconds of the HA runner's own compute for one role-change event (see the docstring)."""
    import pigsty_events         # pylint: disable=import-outside-toplevel
    import pigsty_haproxy        # pylint: disable=import-outside-toplevel
    import pigsty_inventory      # pylint: disable=import-outside-toplevel
    import pigsty_live_files     # pylint: disable=import-outside-toplevel
    import pigsty_pgsql          # pylint: disable=import-outside-toplevel
    import synthetic             # pylint: disable=import-outside-toplevel
    try:
        import pigsty_model      # pylint: disable=import-outside-toplevel
    except ImportError:          # the code before the index
        pigsty_model = None
    inv = pigsty_inventory.inventory(full)
    if pigsty_model is not None:
        inv = pigsty_model.index(inv)         # kept with the runner's inventory cache
        merged = {"pigsty": inv}
    else:
        merged = full
    dirs = {"live_dir": os.path.join(workdir, "live"), "target_dir": os.path.join(workdir, "targets"),
            "hosts_file": os.path.join(workdir, "dns", "hosts")}
    for d in ("live", "targets/pgsql", "dns"):
        os.makedirs(os.path.join(workdir, d), exist_ok=True)
    cluster = synthetic.cluster_name(n // 2)
    flips = iter(range(10 ** 6))

    def one():
        new = "%s-%d" % (cluster, 1 + next(flips) % 2)       # a primary that moves each time
        event = {"cluster": cluster, "instance": new, "ip": None, "new_role": "primary"}
        if pigsty_model is not None:
            clusters = inv.instance_addresses()
        else:
            clusters = {name: {m["pg_instance"]: m["ip"] for m in pigsty_inventory.cluster_members(inv, name)}
                        for name in (inv.get("clusters") or {})}
        event["ip"] = clusters[cluster][new]
        assert pigsty_events.check_payload(event, clusters) == []
        members = pigsty_inventory.cluster_members(inv, cluster)
        roles = {m["pg_instance"]: "primary" if m["pg_instance"] == new else "replica" for m in members}
        for _step in ("haproxy", "handoff", "vip"):
            conf = pigsty_inventory.instance_config(merged, members[0]["minion"])
        pigsty_haproxy.desired_health(pigsty_pgsql.haproxy_services(conf), roles)
        pigsty_live_files.record(inv, cluster, roles, lambda: None, **dirs)
    one()                        # the first event after a (re)load also resolves every cluster
    return _best(one, repeat)


def as_salt_gives_it(data):
    """``data`` with every mapping an OrderedDict, as Salt's YAML loader returns pillar."""
    if isinstance(data, dict):
        return collections.OrderedDict((k, as_salt_gives_it(v)) for k, v in data.items())
    if isinstance(data, list):
        return [as_salt_gives_it(v) for v in data]
    return data


def worker(code, sizes, repeat, salt_sizes):
    """Measure in this process with ``code``'s _utils/ and _pillar/; print one JSON line per
    size."""
    sys.path[:0] = [os.path.join(code, "_utils"), os.path.join(REPO, "tests", "support")]
    import pigsty_dns            # pylint: disable=import-outside-toplevel
    import pigsty_infra          # pylint: disable=import-outside-toplevel
    import pigsty_inventory      # pylint: disable=import-outside-toplevel
    import pigsty_monitor        # pylint: disable=import-outside-toplevel
    import pigsty_pgsql          # pylint: disable=import-outside-toplevel
    import synthetic             # pylint: disable=import-outside-toplevel
    ext = _load_ext_pillar(code)
    cache = getattr(pigsty_inventory, "VALIDATIONS", None)
    workdir = tempfile.mkdtemp(prefix="pigsty-scale-")
    try:
        for n in sizes:
            full = synthetic.pillar(n)
            public = as_salt_gives_it(synthetic.pillar(n, private=None))
            inv = pigsty_inventory.inventory(full)
            c = n // 2
            mid = synthetic.minion(c, 2)
            mine = synthetic.minion_pillar(public, synthetic.cluster_name(c))
            assert pigsty_inventory.validate(full) == []
            row = {"clusters": n}
            row["validate"] = _best(lambda: pigsty_inventory.validate(full), repeat)

            def cold():
                if cache is not None:
                    cache.clear()
                ext.ext_pillar(mid, mine)
            row["ext cold"] = _best(cold, repeat)
            others = [(synthetic.minion(i, 1), synthetic.minion_pillar(public, synthetic.cluster_name(i)))
                      for i in range(0, n, max(1, n // 20))][:20]
            t0 = time.perf_counter()
            for other_id, other in others:
                ext.ext_pillar(other_id, other)
            row["ext warm"] = (time.perf_counter() - t0) / len(others)
            row["file_sd"] = _best(lambda: pigsty_monitor.target_files(inv), repeat)
            row["dns"] = _best(lambda: pigsty_dns.hosts_file(pigsty_dns.records(inv)), repeat)
            row["portal"] = _best(lambda: pigsty_infra.nginx(inv), repeat)
            row["haproxy"] = _best(lambda: pigsty_pgsql.haproxy_services(
                pigsty_inventory.instance_config(mine, mid)), repeat)
            row["total"] = sum(row[k] for k in ("validate", "file_sd", "dns", "portal", "haproxy"))
            row["event"] = _event(full, n, workdir, repeat)
            row["salt"] = _salt(n, workdir, row["ext warm"], pigsty_inventory.validate) \
                if n in salt_sizes else None
            print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(code, sizes, repeat, salt_sizes=()):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", code,
           "--sizes", ",".join(map(str, sizes)), "--repeat", str(repeat),
           "--salt-sizes", ",".join(map(str, salt_sizes))]
    rows = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        for line in proc.stdout:
            rows.append(json.loads(line))
            print("  measured %s, %d clusters: total %.2f s" % (
                os.path.basename(code.rstrip("/")) or code, rows[-1]["clusters"],
                rows[-1]["total"]), file=sys.stderr, flush=True)
    if proc.returncode:
        sys.exit("worker for %s failed (exit %d)" % (code, proc.returncode))
    return rows


def _fmt(value):
    if value is None:
        return "-"
    return "%.3f" % value if value < 10 else "%.1f" % value


def table(title, rows):
    lines = ["%s (seconds; synthetic inventories of N clusters x 3 members)" % title, "",
             "| clusters | " + " | ".join(COLUMNS) + " | total per cluster |",
             "|---:|" + "---:|" * (len(COLUMNS) + 1)]
    for row in rows:
        lines.append("| %d | %s | %.0f us |" % (row["clusters"], " | ".join(
            _fmt(row[c]) for c in COLUMNS), 1e6 * row["total"] / row["clusters"]))
    return "\n".join(lines)


def salt_table(rows):
    lines = ["Salt's own pillar work (seconds): one minion's compile without ext_pillar, the "
             "ext_pillar's share of it, and the runner's full view", "",
             "| clusters | " + " | ".join(SALT_COLUMNS) + " |",
             "|---:|" + "---:|" * len(SALT_COLUMNS)]
    for row in rows:
        s = row["salt"]
        lines.append("| %d | %s | %s | %.1f %% | %s | %s |" % (
            row["clusters"], _fmt(s["salt compile"]), _fmt(s["ext warm"]), 100 * s["ext share"],
            _fmt(s["full view"]), _fmt(s["runner validate"])))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100,300,1000,3000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--salt-sizes", default="100,300,1000,3000",
                    help="sizes for Salt's own pillar work ('' to skip it)")
    ap.add_argument("--before", metavar="REV", help="also measure the code of this commit")
    ap.add_argument("--before-sizes", default="100,300,1000",
                    help="sizes for --before (the old code is quadratic: 3000 takes minutes)")
    ap.add_argument("--worker", metavar="CODE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    salt_sizes = [int(s) for s in args.salt_sizes.split(",") if s]
    if args.worker:
        worker(args.worker, sizes, args.repeat, salt_sizes)
        return
    print("bench/scale.py: Python %s, %d CPUs, load average %.1f at the start" % (
        sys.version.split()[0], os.cpu_count(), os.getloadavg()[0]))
    after = run(REPO, sizes, args.repeat, salt_sizes)
    print()
    print(table("This tree", after))
    if any(r["salt"] for r in after):
        print()
        print(salt_table([r for r in after if r["salt"]]))
    if args.before:
        tmp = tempfile.mkdtemp(prefix="pigsty-before-")
        try:
            archive = subprocess.run(["git", "-C", REPO, "archive", args.before, "_utils", "_pillar"],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            before_sizes = [int(s) for s in args.before_sizes.split(",") if s]
            before = run(tmp, before_sizes, 1)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print()
        print(table("Before: commit %s (one run each)" % args.before, before))
        print()
        print("| clusters | before total | after total | speed-up |")
        print("|---:|---:|---:|---:|")
        now = {r["clusters"]: r for r in after}
        for row in before:
            if row["clusters"] in now:
                print("| %d | %s | %s | %.0fx |" % (row["clusters"], _fmt(row["total"]),
                                                   _fmt(now[row["clusters"]]["total"]),
                                                   row["total"] / now[row["clusters"]]["total"]))
    print()
    print("load average at the end: %.1f" % os.getloadavg()[0])


if __name__ == "__main__":
    main()
