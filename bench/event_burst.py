#!/usr/bin/env python3
"""Benchmark: a burst of Patroni role-change events through the real master, none lost.

    /usr/bin/python3 bench/event_burst.py [--per-minion 15] [--rounds 3]

Needs the sandbox up with the main job applied (`make sandbox`). In each round every database
minion (meta for pg-meta-1, node-1..3 for pg-test-1..3) sends ``--per-minion`` events at the
same instant, with the beacon's tag and a payload naming its own instance and its live role
(so nothing has to move): Salt's event bus, the reactor and `pigsty_ha.reconcile` handle them
as they would handle the beacon's. Each event carries a unique ``time``, which the runner keeps
in the history entry it writes for the event (a reconciliation, or "covered by" one that
started after it), so every event is accounted for: reconciled, covered, refused (counted by
`pigsty_ha.events`) or lost. Printed per round: how many of each, and the time from the send
to the last event's entry.

This is the closest measurement the sandbox allows of issue 16's "100 simultaneous events of
100 clusters": the runner acts on an event only from the minion that owns the instance it
names, one instance per node, so 100 clusters need 100 minions; the sandbox has 2 clusters on
4 minions. A burst of events of the same cluster is cheaper than one of as many clusters
(a reconciliation that starts after an event covers it), see docs/benchmarks.md.
"""
import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import threading
import time

from benchlib import REPO, SANDBOX, sandbox as sh

sys.path.insert(0, os.path.join(REPO, "tests", "support"))   # shared test helpers
import patroni_rest  # noqa: E402

MEMBERS = {"meta": ("pg-meta", "pg-meta-1", "10.10.10.10"), "node-1": ("pg-test", "pg-test-1", "10.10.10.11"),
           "node-2": ("pg-test", "pg-test-2", "10.10.10.12"), "node-3": ("pg-test", "pg-test-3", "10.10.10.13")}
TAG = "salt/beacon/%s/patroni/pigsty/patroni/change"
# runs on a node, in the minion's Python: hands the events to the running minion daemon at
# ``at``, each as a beacon hands its events over (an event list for the master: the master
# fires each event's data as it is; a single event.send would arrive nested under "data")
SENDER = """
import json, sys, time
import salt.config, salt.utils.event
spec = json.loads(sys.argv[1])
opts = salt.config.minion_config("/etc/salt/minion")
bus = salt.utils.event.MinionEvent(opts, listen=False)
while time.time() < spec["at"]:
    time.sleep(0.002)
for data in spec["events"]:
    bus.fire_event({"events": [{"tag": spec["tag"], "data": data}], "data": None, "tag": None,
                    "pretag": None}, "fire_master")
bus.destroy()
print(json.dumps({"sent": len(spec["events"]), "took": time.time() - spec["at"]}))
"""
MINION_PYTHON = "/opt/pigsty/venv/bin/python"


def live_role(ip):
    try:
        role = patroni_rest.get(ip, "/patroni", timeout=3).get("role")
    except Exception:  # noqa: BLE001 - an unreachable member
        return None
    return "primary" if role in ("master", "primary") else role


def salt_run(*args):
    out = sh("exec", "meta", "salt-run", "--out=json", *args, check=False)
    try:
        return json.loads(out)
    except ValueError:
        sys.exit("salt-run %s printed no JSON:\n%s" % (" ".join(args), out[-2000:]))


def refused_total():
    counts = salt_run("pigsty_ha.events") or {}
    return sum((counts.get("refused_by_minion") or {}).values())


HISTORY = "/var/cache/salt/master/pigsty/history/%s.jsonl"     # the runner's own record, raw


def entries(cluster, marks):
    """{event time: history entry} of this round's events in ``cluster``'s history (the raw
    JSONL file on meta: `pigsty_ha.history` summarises entries and drops the event's time)."""
    out = {}
    text = sh("exec", "meta", "sh", "-c", "tail -n 3000 %s.1 %s 2>/dev/null; true" % (HISTORY % cluster, HISTORY % cluster),
              check=False)          # the file and its last rotated copy (rotated at a size bound)
    for line in text.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        t = (e.get("event") or {}).get("time") if isinstance(e, dict) else None
        if t in marks:
            out[t] = e
    return out


def send(minion, spec, results):
    code = base64.b64encode(SENDER.encode()).decode()
    res = subprocess.run(SANDBOX + ["exec", minion, MINION_PYTHON, "-c",
                                    "import base64; exec(base64.b64decode('%s'))" % code, json.dumps(spec)],
                         capture_output=True, text=True, timeout=300)
    results[minion] = res


def one_round(per_minion, settle):
    roles = {m: live_role(ip) for m, (_c, _i, ip) in MEMBERS.items()}
    if None in roles.values():
        sys.exit("a member's Patroni does not answer: %r" % roles)
    at = time.time() + settle
    marks, specs = {}, {}
    for k, (minion, (cluster, instance, ip)) in enumerate(sorted(MEMBERS.items())):
        events = []
        for i in range(per_minion):
            stamp = round(at + k * 0.001 + i * 0.00001, 5)       # unique per event
            marks[stamp] = cluster
            events.append({"id": minion, "cluster": cluster, "instance": instance, "ip": ip, "old_role": roles[minion],
                           "new_role": roles[minion], "changed": ["state"], "source": "beacon", "time": stamp})
        specs[minion] = {"at": at, "tag": TAG % minion, "events": events}
    refused_before = refused_total()
    results = {}
    threads = [threading.Thread(target=send, args=(m, specs[m], results)) for m in specs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for minion, res in results.items():
        if res.returncode != 0:
            sys.exit("sending from %s failed:\n%s\n%s" % (minion, res.stdout[-2000:], res.stderr[-2000:]))
    sent_took = max(json.loads(r.stdout.strip().splitlines()[-1])["took"] for r in results.values())
    found, deadline = {}, time.time() + 180
    while time.time() < deadline:
        for cluster in sorted(set(marks.values())):
            found.update(entries(cluster, {t for t, c in marks.items() if c == cluster}))
        refused = refused_total() - refused_before
        if len(found) + refused >= len(marks):
            break
        time.sleep(2)
    refused = refused_total() - refused_before
    done_at = [e["time"] + e.get("duration", 0) for e in found.values()]
    full = [e for e in found.values() if not e.get("covered_by")]
    return {"sent": len(marks), "reconciled": len(full), "covered": len(found) - len(full), "refused": refused,
            "lost": len(marks) - len(found) - refused, "send_spread": sent_took,
            "last": (max(done_at) - at) if done_at else None,
            "median": statistics.median(d - at for d in done_at) if done_at else None,
            "ok": sum(1 for e in full if all((s or {}).get("result") for s in (e.get("steps") or {}).values()))}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-minion", type=int, default=15, help="events each minion sends (its burst allows 20)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--settle", type=float, default=8.0, help="seconds between starting the senders and the burst")
    args = p.parse_args()
    if not 1 <= args.per_minion <= 20:
        sys.exit("--per-minion: expected 1..20 (the runner's per-minion burst), got %d" % args.per_minion)
    print("burst: %d minions x %d events, %d rounds" % (len(MEMBERS), args.per_minion, args.rounds), flush=True)
    rows = []
    for r in range(args.rounds):
        if r:
            time.sleep(25)           # the per-minion bucket refills (1 event/s)
        row = one_round(args.per_minion, args.settle)
        rows.append(row)
        print("round %d: sent %d  reconciled %d (ok %d)  covered %d  refused %d  lost %d  "
              "sent within %.2fs  median %.2fs  last %.2fs after the burst" % (
                  r + 1, row["sent"], row["reconciled"], row["ok"], row["covered"], row["refused"], row["lost"],
                  row["send_spread"], row["median"] or -1, row["last"] or -1), flush=True)
    lost = sum(r["lost"] for r in rows)
    print("\n%d events in %d rounds: lost %d, refused %d; last entry median %.2fs, max %.2fs after the burst" % (
        sum(r["sent"] for r in rows), len(rows), lost, sum(r["refused"] for r in rows),
        statistics.median(r["last"] or 0 for r in rows), max(r["last"] or 0 for r in rows)))
    sys.exit(1 if lost else 0)


if __name__ == "__main__":
    main()
