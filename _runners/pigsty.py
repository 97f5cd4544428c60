"""Pigsty-on-Salt operator runner.

    salt-run pigsty.validate          validate the whole inventory (every cluster, with its
                                      private part), as the master sees it: a one-line
                                      summary and the problems
    salt-run pigsty.identity node-1   the grains a node gets from the inventory
    salt-run pigsty.import path=pigsty.yml [out=DIR] [test=True] [force=True] [meta=IP]
                                      import a Pigsty inventory into this pillar
    salt-run pigsty.logs cluster=pg-test [ins=pg-test-1] [since=10m] [grep=RE] [unit=patroni]
                                      every node's logs (collected on meta), merged in time order
    salt-run pigsty.patrol [cluster=pg-test] [run=True]
                                      the daily patrol report (one line per cluster without one)
    salt-run pigsty.cleanup [test=True]  retention of patrol reports and pgBackRest's logs
"""
import logging
import os
import subprocess
import time

import salt.exceptions

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_baseline
    import pigsty_clone
    import pigsty_cleanup
    import pigsty_fanout
    import pigsty_gpg
    import pigsty_import
    import pigsty_inventory
    import pigsty_inventory_cache
    import pigsty_logs
    import pigsty_patroni
    import pigsty_patroni_rest
    import pigsty_patrol
    import pigsty_patrol_collect
    import pigsty_patrol_store
    import pigsty_pgsql
    import pigsty_pillar
    import pigsty_progress
    import pigsty_standby
    import pigsty_invalid
    from pigsty_invalid import refusing as _refusing
except ImportError as exc:
    UTILS_MISSING = str(exc)

    def _refusing(func):        # not loaded anyway: __virtual__ gives the reason
        return func
else:
    UTILS_MISSING = None

log = logging.getLogger(__name__)

__virtualname__ = "pigsty"
__func_alias__ = {"import_": "import"}


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    return __virtualname__


def _compile(minion_id):
    return pigsty_pillar.compile_for(__opts__, minion_id)


def _full_inventory():
    return pigsty_pillar.full_inventory(__opts__)


def _cached_inventory(max_age=300):
    """(merged, indexed inventory) from the master's shared cache (pigsty_inventory_cache:
    rendered again when a pillar file changes or after ``max_age`` seconds)."""
    return pigsty_inventory_cache.load(__opts__, max_age)


@_refusing
def validate(verbose=False):
    """Validate the whole Pigsty inventory: a one-line summary, and every problem (each
    naming the pillar path of the field and what was expected); exits non-zero when it is
    invalid. ``verbose=True`` also lists every cluster's instances.

    CLI example::

        salt-run pigsty.validate
        salt-run pigsty.validate verbose=True
    """
    merged, problems = _full_inventory()
    problems += pigsty_inventory.validate(merged)
    # databases' baseline files, in the master's own state tree (file_roots)
    problems += pigsty_baseline.file_problems((merged or {}).get("pigsty"), __opts__.get("file_roots"))
    try:
        # etcd's root password (the clusters' etcd passwords are checked with their files)
        problems += pigsty_inventory.validate_dcs_secrets(merged, clusters=False)
        problems += pigsty_inventory.validate_web_secrets(merged)
    except pigsty_inventory.InventoryError:
        pass                    # no inventory at all: validate() said so
    try:
        idx = pigsty_inventory.index(pigsty_inventory.inventory(merged))
    except pigsty_inventory.InventoryError:
        idx = pigsty_inventory.index({})
    summary = _summary(idx, problems)
    if problems:
        __context__["retcode"] = 1
        return {"result": False, "retcode": 1, "summary": summary, "problems": problems}
    ret = {"result": True, "summary": summary, "nodes": len(idx.nodes),
           "meta": list(idx.meta_nodes),
           "dcs": [m["node"] for m in idx.dcs_members] if idx.gvars.get("dcs_type") == "etcd" else []}
    if verbose:
        ret["clusters"] = {cls.name: [m["pg_instance"] for m in cls.members]
                           for cls in idx.clusters()}
    return ret


def _summary(idx, problems):
    """One line: valid or not, how many problems in how many clusters, the inventory's size."""
    size = "%d cluster%s, %d instance%s, %d node%s" % _plural(
        len(idx.cluster_names), len(idx.host_owner), len(idx.nodes))
    size += " (meta: %s)" % (", ".join(idx.meta_nodes) or "none")
    if not problems:
        return "inventory valid: " + size
    clusters = {p.split(":", 3)[2] for p in problems
                if p.startswith("pigsty:clusters:") and p.count(":") >= 3}
    return "inventory invalid: %d problem%s%s; %s" % (
        len(problems), "" if len(problems) == 1 else "s",
        " in %d cluster%s" % (len(clusters), "" if len(clusters) == 1 else "s") if clusters else "",
        size)


def _plural(*counts):
    out = ()
    for n in counts:
        out += (n, "" if n == 1 else "s")
    return out


@_refusing
def identity(minion_id):
    """The identity grains the inventory gives a node.

    CLI example::

        salt-run pigsty.identity node-1
    """
    return pigsty_inventory.identity(_compile(minion_id), minion_id)


def _progress(message):
    """Show a progress line in `salt-run` / orchestrate output as the step runs."""
    pigsty_progress.report(log, globals().get("__jid_event__"), message)


def _require_cluster(inv, name):
    if not isinstance(name, str) or name not in (inv.get("clusters") or {}):
        raise salt.exceptions.SaltInvocationError(
            "pg_cluster: %r is not a cluster of the inventory (expected one of: %s)" % (
                name, ", ".join(sorted(inv.get("clusters") or {})) or "none"))


@_refusing
def cluster(name):
    """A cluster's members as the inventory defines them (minion ids, roles) and the meta
    nodes; used by the orchestrations to target each step.

    CLI example::

        salt-run pigsty.cluster pg-test
    """
    merged, _problems = _full_inventory()
    inv = pigsty_inventory.index(pigsty_inventory.inventory(merged))
    _require_cluster(inv, name)
    members = pigsty_inventory.cluster_members(inv, name)
    conf = pigsty_inventory.cluster_vars(inv, name)
    return {
        "name": name,
        "members": members,
        "primary": [m["minion"] for m in members if m["pg_role"] == "primary"],
        "replicas": [m["minion"] for m in members if m["pg_role"] != "primary"],
        "minions": [m["minion"] for m in members],
        "meta": pigsty_inventory.meta_nodes(inv),
        "patroni_port": conf["patroni_port"],
        "dcs_type": conf["dcs_type"],
        "dcs_key": pigsty_pgsql.cluster_key(conf),      # Patroni's keys of the cluster
        # a standby cluster (pg_upstream): the cluster it copies, else None
        "standby_of": (pigsty_standby.standby_of(inv, name) or {}).get("cluster"),
        # a clone (pg_pitr): the cluster its backups come from, else None
        "clone_of": (pigsty_clone.clone_of(inv, name) or {}).get("cluster"),
    }


def _live_leader(info, timeout=2):
    hosts = [m["ip"] for m in info["members"]]
    return pigsty_patroni.find_leader(hosts, info["patroni_port"], timeout=timeout,
                                      access=pigsty_patroni_rest.read_access())


def _unconfirmed(info, members):
    """Why each of ``members`` cannot be confirmed safe to remove: its Patroni must answer as
    a member that is not the leader, or its minion must say that Patroni is stopped."""
    unanswered, why = [], []
    for m in members:
        try:
            st = pigsty_patroni.get_json(m["ip"], info["patroni_port"], "/patroni", timeout=2,
                                         access=pigsty_patroni_rest.read_access())
        except pigsty_patroni.PatroniError:
            unanswered.append(m)
            continue
        if pigsty_patroni.normalize_role(st.get("role")) in ("primary", "standby_leader"):
            why.append("%s answers as %s" % (m["pg_instance"], st.get("role")))
    if unanswered:
        running = pigsty_fanout.fan_out(__opts__, [m["minion"] for m in unanswered], "service.status",
                                        ["patroni"], timeout=10)
        for m in unanswered:
            state = running.get(m["minion"])
            if state is True:
                why.append("%s: Patroni runs but its REST API does not answer" % m["pg_instance"])
            elif state is not False:
                why.append("%s: Patroni does not answer and minion %s cannot confirm it is stopped (%s)" % (
                    m["pg_instance"], m["minion"], "no answer" if state is None else state))
    return why


@_refusing
def wait_leader(name, timeout=120):
    """Wait (bounded) until cluster ``name`` has a leader; fails after ``timeout`` seconds.

    CLI example::

        salt-run pigsty.wait_leader pg-test timeout=60
    """
    info = cluster(name)
    deadline = time.monotonic() + float(timeout)
    errors = []
    while time.monotonic() < deadline:
        found, errors = _live_leader(info)
        if found:
            _progress("%s: leader is %s (timeline %s)" % (name, found["name"], found.get("timeline")))
            return {"result": True, "leader": found["name"]}
        time.sleep(1)
    return _refuse("%s has no leader after %ss: %s" % (name, timeout, "; ".join(errors[-3:])))


@_refusing
def removal_plan(name, instances=None, force=False):
    """Check a removal request and order it: replicas first, the leader last.

    Refuses (retcode 1, nothing done) to remove a whole cluster, or the instance that is
    its running leader, unless ``force=True``; refuses instances that are not members.
    Fails closed: without ``force``, every instance to remove must answer through Patroni as
    a non-leader, or its minion must confirm that Patroni is stopped.

    CLI example::

        salt-run pigsty.removal_plan pg-test instances='[pg-test-3]'
    """
    info = cluster(name)
    by_instance = {m["pg_instance"]: m for m in info["members"]}
    if instances is None:
        targets = list(by_instance)
    elif isinstance(instances, (list, tuple)) and instances:
        unknown = [i for i in instances if i not in by_instance]
        if unknown:
            return _refuse("pg_instances: %s not member(s) of %s (expected some of: %s)" % (
                ", ".join(map(str, unknown)), name, ", ".join(sorted(by_instance))))
        targets = list(instances)
    else:
        raise salt.exceptions.SaltInvocationError(
            "pg_instances: expected a non-empty list of instance names, got %r" % (instances,))
    leader, _errors = _live_leader(info)
    whole = set(targets) == set(by_instance)
    if leader and leader["name"] in targets and not force:
        what = "cluster %s" % name if whole else "instance %s" % leader["name"]
        return _refuse("refusing to remove %s: %s is its running primary (pass force=True / "
                       "pillar pg_rm_force: true to remove it anyway)" % (what, leader["name"]))
    if not force:
        # fail closed: a member whose Patroni does not answer may still be a running primary
        # (or hold the only copy of recent data); it is removed only once its minion confirms
        # that Patroni is stopped there
        unsure = _unconfirmed(info, [by_instance[i] for i in targets])
        if unsure:
            return _refuse(
                "refusing to remove %s: %s (nothing was removed; start Patroni there, or stop it and "
                "check again, or pass force=True / pillar pg_rm_force: true)" % (
                    "cluster %s" % name if whole else ", ".join(targets), "; ".join(unsure)))
    ordered = sorted(targets, key=lambda i: (leader is not None and i == leader["name"], i))
    _progress("%s: removal order %s" % (name, ", ".join(ordered)))
    return {"result": True, "cluster": name, "whole_cluster": whole,
            "minions": [by_instance[i]["minion"] for i in ordered], "instances": ordered,
            "leader": leader["name"] if leader else None}


# ------------------------------------------------------------------ import
REPO_TOP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pillar", "top.sls")


def _refuse(message):
    return pigsty_invalid.refusal(message, globals())


def _pillar_root():
    roots = (__opts__.get("pillar_roots") or {}).get("base") or []
    return roots[0] if roots else None


@_refusing
def import_(path=None, out=None, test=False, force=False, meta=None):
    """Import a Pigsty inventory (v1 ``all.children``/``meta`` or v2+ ``infra``/``etcd``
    shape) into our pillar: ``OUT/pigsty.sls`` (public) and ``OUT/clusters/CLUSTER.sls``
    (users, databases, access rules, passwords; mode 0600), each written atomically.

    Prints a row for every parameter met: mapped, changed (and how), not supported (and
    why) or skipped (groups and components we do not run), then a one-line summary. The
    result passes ``salt-run pigsty.validate``.

    path
        the inventory (``pigsty.yml``)
    out
        where to write; default: the master's pillar root (``pillar_roots:base``)
    test
        True: print the table and what would be written, write nothing
    force
        True: overwrite existing files (without it, existing files are never touched)
    meta
        IP of the admin (meta) node, for an inventory without a ``meta``/``infra`` group

    Bad input (missing file, not YAML, no cluster, a cluster without a primary, a duplicate
    ``pg_seq``...) is refused with the field named, before anything is written.

    CLI example::

        salt-run pigsty.import path=/tmp/pigsty.yml test=True
        salt-run pigsty.import path=/tmp/pigsty.yml out=/srv/pillar-new
    """
    try:
        result = pigsty_import.convert(pigsty_import.load(path), meta=meta,
                                       file_roots=__opts__.get("file_roots"))
    except pigsty_import.Refused as exc:
        return _refuse("refused, nothing written: %s" % exc)
    out_dir = out or _pillar_root()
    if not out_dir:
        return _refuse("out: no directory given and the master has no pillar_roots:base")
    out_dir = os.path.abspath(out_dir)
    files = pigsty_import.render_files(result, source=os.path.basename(path))
    if not os.path.exists(os.path.join(out_dir, "top.sls")) and os.path.isfile(REPO_TOP):
        with open(REPO_TOP, encoding="utf-8") as fh:
            files["top.sls"] = (fh.read(), 0o644)
    targets = {os.path.join(out_dir, rel): spec for rel, spec in files.items()}
    existing = sorted(p for p in targets if os.path.exists(p))
    imported = {os.path.join("clusters", "%s.sls" % c) for c in result["private"]}
    stale = sorted(os.path.join("clusters", f) for f in os.listdir(os.path.join(out_dir, "clusters"))
                   if f.endswith(".sls") and os.path.join("clusters", f) not in imported
                   ) if os.path.isdir(os.path.join(out_dir, "clusters")) else []
    ret = {"parameters": pigsty_import.table_lines(result["rows"]),
           "files": {p: "mode %s" % oct(mode)[2:] for p, (_text, mode) in sorted(targets.items())}}
    notes = []
    if stale:
        notes.append("left in place (not in this inventory): %s" % ", ".join(stale))
    encrypted = pigsty_gpg.encrypted_files(existing)
    if encrypted and force:
        notes.append("%s held values encrypted for the gpg renderer: %s written in plain text; "
                     "encrypt the secrets again (scripts/pillar_encrypt.py)" % (
                         ", ".join(os.path.relpath(p, out_dir) for p in encrypted),
                         "would be" if test else "now"))
    if existing and not force:
        ret.update(_refuse("refused, nothing written: %s exist%s in %s; pass force=True to "
                           "overwrite %s" % (", ".join(os.path.relpath(p, out_dir) for p in existing),
                                             "s" if len(existing) == 1 else "",
                                             out_dir, "it" if len(existing) == 1 else "them")))
        if test:
            ret["result"] = None
        ret["summary"] = result["summary"]
        return ret
    if test:
        ret["result"] = None
        ret["summary"] = "%s; test=True: nothing written (would write %d files to %s)%s" % (
            result["summary"], len(targets), out_dir, "".join("; " + n for n in notes))
        return ret
    # private files first, the public one (which top.sls reads) last
    for target in sorted(targets, key=lambda p: (p.endswith("pigsty.sls"), p)):
        text, mode = targets[target]
        pigsty_import.write_atomic(target, text, mode)
    ret["result"] = True
    ret["summary"] = "%s; wrote %d files to %s%s%s" % (
        result["summary"], len(targets), out_dir, " (overwritten: %d)" % len(existing) if existing else "",
        "".join("; " + n for n in notes))
    return ret


@_refusing
def logs(cluster=None, ins=None, since="10m", grep=None, unit=None, limit=500):
    """Logs of a cluster's nodes (or one instance's, or every node's without ``cluster``),
    as collected on this meta node by systemd-journal-remote, merged in time order:
    PostgreSQL and Patroni (unit patroni), pgbouncer, haproxy, vip-manager, etcd, ...

    ``since``: an age (30s, 10m, 2h, 1d) or an ISO time (UTC); ``grep``: a regular
    expression the message must match; ``unit``: systemd units (comma-separated);
    ``limit``: the last N lines (at most 10000).

    CLI example::

        salt-run pigsty.logs cluster=pg-test since=10m
        salt-run pigsty.logs cluster=pg-test ins=pg-test-2 unit=patroni grep='promot|demot'
    """
    try:
        start = pigsty_logs.parse_since(since)
        units = pigsty_logs.parse_units(unit)
        pattern = pigsty_logs.parse_grep(grep)
        lines = pigsty_logs.parse_limit(limit)
    except pigsty_logs.LogsError as exc:
        return _refuse(str(exc))
    _merged, inv = _cached_inventory()
    clusters = {name: {m["pg_instance"]: m["minion"] for m in pigsty_inventory.cluster_members(inv, name)
                       if m["minion"]}
                for name in inv.get("clusters") or {}}
    nodes = inv.get("nodes") or {}
    try:
        hosts = pigsty_logs.hosts_of(clusters, nodes.keys(), cluster, ins)
    except pigsty_logs.LogsError as exc:
        return _refuse(str(exc))
    ips = {str(nodes[h]["ip"]): h for h in hosts}       # journal-remote files senders by address
    if not os.path.isdir(pigsty_logs.REMOTE_DIR):
        return _refuse("%s does not exist: this master collects no logs (infra.logs runs on the "
                       "first meta node; log_collect)" % pigsty_logs.REMOTE_DIR)
    files, missing = pigsty_logs.files_of(sorted(ips))
    missing = [ips[ip] for ip in missing]
    out, matched = [], 0
    if files:
        res = subprocess.run(pigsty_logs.journalctl_argv(files, start, units), capture_output=True,
                             text=True, timeout=120, check=False)
        if res.returncode != 0 and not res.stdout:
            return _refuse("journalctl failed: %s" % res.stderr.strip()[-500:])
        out, matched = pigsty_logs.format_lines(res.stdout.splitlines(), grep=pattern, limit=lines)
    shown = "%d line%s" % (len(out), "" if len(out) == 1 else "s")
    if matched > len(out):
        shown += " (the last of %d; limit=%d)" % (matched, lines)
    header = "# logs of %s since %s UTC: %s" % (", ".join(hosts), start.strftime("%Y-%m-%d %H:%M:%S"), shown)
    if missing:
        header += "\n# nothing collected yet from: %s" % ", ".join(missing)
    return "\n".join([header] + out)


@_refusing
def logs_vacuum():
    """Keep the collected logs within log_retention_size and log_retention_time (the
    master's schedule runs it hourly). Returns what journalctl said."""
    if not os.path.isdir(pigsty_logs.REMOTE_DIR):
        return "no collected logs here (%s)" % pigsty_logs.REMOTE_DIR
    _merged, inv = _cached_inventory()
    gvars = pigsty_inventory.global_vars(inv)
    res = subprocess.run(pigsty_logs.vacuum_argv(gvars["log_retention_size"], gvars["log_retention_time"]),
                         capture_output=True, text=True, timeout=600, check=False)
    return (res.stderr or res.stdout).strip()[-2000:]


# ------------------------------------------------------------------ patrol and cleanup
@_refusing
def patrol(cluster=None, run=False):
    """The daily patrol report of ``cluster`` (members and lag, backup age, archiving, XID
    age, disk, dead tuples, firing alerts; each check ok / warn / fail with its threshold),
    kept on this meta node; ``run=True`` takes a fresh one first. Without ``cluster``: one
    line per cluster. The schedule takes them (``pigsty.patrol_due``); the logic is in
    _utils/pigsty_patrol*.py.

    CLI example::

        salt-run pigsty.patrol
        salt-run pigsty.patrol cluster=pg-test run=True
    """
    if not isinstance(run, bool):
        return _refuse("run: expected True or False, got %r" % (run,))
    base = pigsty_patrol_store.base_dir(__opts__)
    inv = pigsty_patrol_collect.inventory(__opts__)
    if cluster is not None:
        try:
            pigsty_patrol_collect.require_cluster(inv, cluster)
        except salt.exceptions.SaltInvocationError as exc:
            return _refuse(str(exc))            # salt-run exits 1 (it would exit 0 on a raise)
    if cluster is None:
        if run:
            pigsty_patrol_collect.due(__opts__, max_age=0)
        now = time.time()
        return "\n".join(pigsty_patrol.summary_line(c, pigsty_patrol_store.read(base, c), now)
                         for c in sorted(inv.get("clusters") or {})) or "no cluster in the inventory"
    if run:
        _progress("%s: taking a patrol report" % cluster)
        report, path = pigsty_patrol_collect.take(__opts__, cluster)
    else:
        report = pigsty_patrol_store.read(base, cluster)
        path = os.path.join(base, cluster, pigsty_patrol_store.LATEST)
        if report is None:
            return _refuse("%s has no patrol report yet (the schedule takes one daily; "
                           "run=True takes one now)" % cluster)
    return pigsty_patrol.table(report, path)


@_refusing
def patrol_due(max_age=None, hour=None):
    """Take the patrol reports that are due: a cluster's first, then one a day from
    pigsty_defaults.PATROL's hour (UTC) on; with ``max_age`` (seconds), whenever the newest
    is that old (a test's shorter interval). What the master's schedule runs.

    CLI example::

        salt-run pigsty.patrol_due
    """
    try:
        return pigsty_patrol_collect.due(__opts__, max_age=max_age, hour=hour)
    except pigsty_patrol.PatrolError as exc:
        return _refuse(str(exc))


@_refusing
def cleanup(retention_days=None, max_bytes=None, test=False):
    """Retention of what grows without it: patrol reports older than ``retention_days``,
    pgBackRest's log files (every node with backups, and meta) and the alert sink's file
    past ``max_bytes`` (moved to NAME.1). Backups are expired by pgBackRest after every
    backup and the collected logs by pigsty.logs_vacuum: not here. What the master's
    schedule runs daily.

    CLI example::

        salt-run pigsty.cleanup test=True
    """
    if not isinstance(test, bool):
        return _refuse("test: expected True or False, got %r" % (test,))
    _merged, inv = _cached_inventory()
    try:
        return pigsty_cleanup.run(
            __opts__, inv, lambda minions, fun, kwarg: pigsty_fanout.fan_out(
                __opts__, minions, fun, kwarg=kwarg, timeout=60),
            retention_days=retention_days, max_bytes=max_bytes, test=test)
    except pigsty_patrol.PatrolError as exc:
        return _refuse(str(exc))
