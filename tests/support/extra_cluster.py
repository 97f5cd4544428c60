"""A temporary cluster in the sandbox's inventory, on an extra machine (sandbox.py add NODE).

    with extra_cluster("pg-delay", nodes={"node-4": "10.10.10.14"},
                       hosts={"10.10.10.14": {"pg_seq": 1, "pg_role": "primary"}},
                       vars={...}, private_vars={"pg_admin_password": ..., ...}) as cls:
        ...   # the master's pillar has the cluster; apply what the test needs

The repository checkout is the master's pillar (bind-mounted into meta at /srv/pigsty), so
the cluster is added there: its node(s) are appended under ``pigsty: nodes:`` and the
cluster under ``pigsty: clusters:`` of pillar/pigsty.sls (text appended to those blocks, the
file's comments kept), its private vars written to pillar/clusters/<name>.sls (mode 0600),
then every minion's pillar is refreshed. On exit -- normal, exception, or the interpreter
ending on an uncaught exception (atexit) -- pillar/pigsty.sls gets back its bytes as they
were, the private file goes, and the pillars are refreshed again. Nested uses must exit in
reverse order (each restores the file it found). A SIGKILL leaves the files changed:
``repo_pillar_is_clean()`` tells, ``git checkout pillar/pigsty.sls`` and deleting the
untracked private file repair it.

The machine itself is the caller's (sandbox.py add / remove): this only edits the inventory.
"""
import atexit
import json
import os
import subprocess
import sys
import tempfile

import yaml

from sandbox_cli import salt_json

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PILLAR = os.path.join(REPO, "pillar")
PUBLIC = os.path.join(PILLAR, "pigsty.sls")
MARK = "# temporary, tests/support/extra_cluster.py"


class ExtraClusterError(RuntimeError):
    pass


# ---------------------------------------------------------------- sandbox calls
def refresh_pillar(timeout=300):
    """saltutil.refresh_pillar on every minion, waiting for each to have its new pillar.
    Raises when the master cannot be asked or a minion that answers reports a failure
    (a minion that does not answer, e.g. a machine a test killed, is not an error here)."""
    data, code = salt_json("-t", "60", "*", "saltutil.refresh_pillar", "wait=True", timeout=timeout)
    if not data:
        raise ExtraClusterError("salt '*' saltutil.refresh_pillar on meta: no answer (rc %d)" % code)
    failed = {m: r for m, r in data.items() if r is not True}
    if failed:
        raise ExtraClusterError("saltutil.refresh_pillar failed on %s" % json.dumps(failed)[:2000])
    return sorted(data)


def converge_etcd_users(timeout=600):
    """The meta node's dcs state, so that etcd's users follow the restored inventory (a
    removed cluster's user, role and node users go once its keys are gone:
    pigsty_etcd.removed_clusters). Raises when the state fails."""
    data, code = salt_json("meta", "state.apply", "dcs", timeout=timeout)
    states = data.get("meta")
    if code != 0 or not isinstance(states, dict) or not all(
            isinstance(s, dict) and s.get("result") for s in states.values()):
        raise ExtraClusterError("salt meta state.apply dcs (rc %d): %s" % (code, json.dumps(data)[:2000]))


# ---------------------------------------------------------------- the repository's pillar
def repo_pillar_is_clean():
    """True when pillar/pigsty.sls is as committed (HEAD) and no untracked
    pillar/clusters/*.sls exists (ignored ones included)."""
    head = subprocess.run(["git", "-C", REPO, "show", "HEAD:pillar/pigsty.sls"],
                          capture_output=True, check=True).stdout
    with open(PUBLIC, "rb") as fh:
        if fh.read() != head:
            return False
    others = subprocess.run(["git", "-C", REPO, "ls-files", "--others", "--", "pillar/clusters/"],
                            capture_output=True, text=True, check=True).stdout.split()
    return not [p for p in others if p.endswith(".sls")]


def _load(text):
    doc = yaml.safe_load(text) or {}
    inv = doc.get("pigsty") if isinstance(doc, dict) else None
    if not isinstance(inv, dict):
        raise ExtraClusterError("%s has no 'pigsty:' mapping" % PUBLIC)
    return inv


def _is_content(line):
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _indent(line):
    return len(line) - len(line.lstrip(" "))


def _block_end(lines, start, indent):
    """Index after the last content line of the block opened at ``start`` (its lines are
    indented deeper than ``indent``); comments and blank lines after it stay with what follows."""
    end = start + 1
    for i in range(start + 1, len(lines)):
        if not _is_content(lines[i]):
            continue
        if _indent(lines[i]) <= indent:
            break
        end = i + 1
    return end


def _child_indent(lines, start, end, indent):
    for i in range(start + 1, end):
        if _is_content(lines[i]):
            return _indent(lines[i])
    return indent + 2


def _append_under(lines, key, entries):
    """Append ``entries`` (a dict) as YAML lines at the end of the block ``pigsty: key:``
    (created at the end of ``pigsty:`` when absent). ``lines`` keep their line ends."""
    top = next((i for i, l in enumerate(lines) if l.rstrip("\r\n").split("#")[0].rstrip() == "pigsty:"), None)
    if top is None:
        raise ExtraClusterError("%s: no top-level 'pigsty:' line to append under" % PUBLIC)
    pend = _block_end(lines, top, 0)
    pindent = _child_indent(lines, top, pend, 0)
    at = None
    for i in range(top + 1, pend):
        if _is_content(lines[i]) and _indent(lines[i]) == pindent:
            head = lines[i].strip().split("#")[0].rstrip()
            if head == key + ":":
                at = i
            elif head.startswith(key + ":"):
                raise ExtraClusterError("%s: 'pigsty: %s:' is written inline (%s); only a block "
                                        "mapping can be appended to" % (PUBLIC, key, head))
    new = []
    if at is None:
        new.append(" " * pindent + key + ":\n")
        end, indent = pend, pindent + 2
    else:
        end = _block_end(lines, at, pindent)
        indent = _child_indent(lines, at, end, pindent)
    new.append(" " * indent + MARK + "\n")
    dumped = yaml.safe_dump(entries, default_flow_style=None, sort_keys=False, width=1000)
    new += [" " * indent + l + "\n" for l in dumped.splitlines()]
    if end > 0 and not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    lines[end:end] = new


def _write(path, data):
    """Replace ``path``'s bytes at once (a reader never sees half a file), mode kept."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".extra-cluster-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        st = os.stat(path)
        os.chmod(tmp, st.st_mode & 0o7777)
        os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ExtraCluster:
    """What ``extra_cluster`` added (yielded by it)."""

    def __init__(self, name, nodes, hosts, private_path):
        self.name, self.nodes, self.hosts, self.private_path = name, nodes, hosts, private_path
        self._saved = None
        self._done = True
        self._private_written = False

    def add(self, vars, private_vars, refresh):
        with open(PUBLIC, "rb") as fh:
            saved = fh.read()
        inv = _load(saved)
        nodes_now = inv.get("nodes") or {}
        clusters_now = inv.get("clusters") or {}
        problems = []
        if self.name is not None and self.name in clusters_now:
            problems.append("cluster %s is already in pigsty:clusters" % self.name)
        if self.private_path and os.path.lexists(self.private_path):
            problems.append("%s exists already" % os.path.relpath(self.private_path, REPO))
        ips_now = {str(n.get("ip")): nid for nid, n in nodes_now.items() if isinstance(n, dict)}
        for nid, node in self.nodes.items():
            if nid in nodes_now:
                problems.append("node %s is already in pigsty:nodes" % nid)
            if str(node["ip"]) in ips_now:
                problems.append("address %s is already node %s's" % (node["ip"], ips_now[str(node["ip"])]))
        for cname, cls in clusters_now.items():
            for ip in ((cls or {}).get("hosts") or {}):
                if str(ip) in {str(h) for h in self.hosts}:
                    problems.append("host %s is already a member of cluster %s" % (ip, cname))
        if problems:
            raise ExtraClusterError("extra_cluster(%s) refused: %s" % (self.name, "; ".join(problems)))

        entry = {"hosts": self.hosts}
        if vars:
            entry["vars"] = vars
        lines = saved.decode("utf-8").splitlines(keepends=True)
        _append_under(lines, "nodes", self.nodes)
        if self.name is not None:
            _append_under(lines, "clusters", {self.name: entry})
        text = "".join(lines)
        # the text must mean the old inventory plus exactly the new node(s) and cluster
        want = _load(saved)
        want.setdefault("nodes", {})
        want["nodes"] = dict(want["nodes"] or {}, **self.nodes)
        if self.name is not None:
            want["clusters"] = dict(want.get("clusters") or {}, **{self.name: entry})
        if _load(text) != want:
            raise ExtraClusterError("appending to %s did not give the intended inventory "
                                    "(unexpected layout); nothing written" % PUBLIC)
        private = ("# %s private vars (%s): deleted when the test ends.\n" % (self.name, MARK[2:])
                   + yaml.safe_dump({"pigsty": {"clusters": {self.name: {"vars": private_vars or {}}}}},
                                    default_flow_style=False, sort_keys=False, width=1000))

        self._saved, self._done = saved, False
        atexit.register(self.restore)
        try:
            if self.private_path:
                fd = os.open(self.private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                self._private_written = True
                with os.fdopen(fd, "w") as fh:
                    os.fchmod(fh.fileno(), 0o600)
                    fh.write(private)
            _write(PUBLIC, text.encode("utf-8"))
            if refresh:
                refresh_pillar()
        except BaseException:
            self.restore(refresh=refresh)
            raise

    def restore(self, refresh=True):
        """Put pillar/pigsty.sls back byte for byte, delete the private file, refresh the
        pillars and apply the meta node's dcs state (etcd's users follow the inventory again;
        a failure is reported on stderr: it must not hide the test's error). Idempotent;
        registered with atexit while the cluster is in."""
        if self._done:
            return
        self._done = True
        atexit.unregister(self.restore)
        errors = []
        try:
            _write(PUBLIC, self._saved)
        except OSError as exc:
            errors.append("restoring %s: %s" % (PUBLIC, exc))
        try:
            if self._private_written and os.path.lexists(self.private_path):
                os.unlink(self.private_path)
        except OSError as exc:
            errors.append("deleting %s: %s" % (self.private_path, exc))
        if errors:
            raise ExtraClusterError("extra_cluster(%s) cleanup: %s" % (self.name, "; ".join(errors)))
        if refresh:
            try:
                refresh_pillar()
                if self.name is not None:
                    converge_etcd_users()
            except (ExtraClusterError, OSError, subprocess.SubprocessError) as exc:
                print("extra_cluster(%s): pillar restored, but refreshing it or converging etcd's "
                      "users failed: %s" % (self.name, exc), file=sys.stderr)


def _nodes(nodes):
    """minion id -> node dict ({"ip": ...}), from an address or a node dict each."""
    norm = {}
    for nid, node in (nodes or {}).items():
        node = dict(node) if isinstance(node, dict) else {"ip": node}
        if not node.get("ip"):
            raise ExtraClusterError("node %s: no address" % nid)
        norm[str(nid)] = node
    return norm


class extra_cluster:  # noqa: N801 - used as a function: with extra_cluster(...)
    """Context manager: cluster ``name`` with ``hosts`` (address -> instance vars, e.g.
    {"pg_seq": 1, "pg_role": "primary"}) and public ``vars``, its private vars
    ``private_vars`` (passwords, users, databases), on ``nodes`` (minion id -> address, or
    -> node dict such as {"ip": ..., "meta": True}) added to the inventory. Raises
    ExtraClusterError, changing nothing, when the name, a node id or an address is in the
    inventory already. ``refresh=False`` skips the pillar refreshes (no sandbox needed)."""

    def __init__(self, name, nodes, hosts, vars=None, private_vars=None, refresh=True):
        if not name or "/" in name or name.startswith("."):
            raise ExtraClusterError("bad cluster name %r" % (name,))
        self.cluster = ExtraCluster(name, _nodes(nodes), {str(ip): dict(v or {}) for ip, v in hosts.items()},
                                    os.path.join(PILLAR, "clusters", name + ".sls"))
        self.vars, self.private_vars, self.refresh = vars, private_vars, refresh

    def __enter__(self):
        self.cluster.add(self.vars, self.private_vars, self.refresh)
        return self.cluster

    def __exit__(self, *exc):
        self.cluster.restore(refresh=self.refresh)
        return False


class extra_nodes(extra_cluster):  # noqa: N801 - used as a function: with extra_nodes(...)
    """Context manager: ``nodes`` (minion id -> address or node dict, e.g. {"ip": ...,
    "meta": True}: a second meta node) added to the inventory without a cluster; restored
    on exit like extra_cluster."""

    def __init__(self, nodes, refresh=True):  # pylint: disable=super-init-not-called
        norm = _nodes(nodes)
        if not norm:
            raise ExtraClusterError("extra_nodes: no node")
        self.cluster = ExtraCluster(None, norm, {}, None)
        self.vars, self.private_vars, self.refresh = None, None, refresh
