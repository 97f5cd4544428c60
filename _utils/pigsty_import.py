"""Import a Pigsty inventory (Ansible's ``pigsty.yml``) into our pillar.

    result = convert(load("pigsty.yml"))
    result["public"]            # pillar/pigsty.sls:   {"pigsty": {"vars", "nodes", "clusters"}}
    result["private"][cluster]  # pillar/clusters/<cluster>.sls: users, databases, HBA, passwords
    result["rows"]              # one row per parameter met: scope, param, status, detail

Both inventory shapes are read:

- v1 (Pigsty <= 1.5): ``all.children`` groups, a ``meta`` group (or ``meta_node: true``),
  ``vip_mode``/``vip_address``/``vip_cidrmask``/``vip_interface``, HBA rules as
  ``{title, role, rules: [raw lines]}``, ``pg_services`` (the defaults) + ``pg_services_extra``
  with ``src_port``/``dst_port``/``selector``/``selector_backup``/``check_url``;
- v2+ : ``infra`` and ``etcd`` groups, ``pg_vip_*``, HBA rules as ``{user, db, addr, auth}``,
  ``pg_default_services`` + ``pg_services`` with ``port``/``dest``/``check``/``backup``.

Every parameter gets a row with one status:

- ``mapped``: carried over as it means in Pigsty (or it equals what we always do);
- ``changed``: carried over with a difference, which the row explains;
- ``unsupported``: left out, with the reason (a parameter our validation would refuse is
  left out and reported with the validator's own message);
- ``skipped``: a group or component we do not run (Redis, MinIO, Greenplum, ...).

Secrets (the system passwords, users' passwords) go to the private per-cluster part only,
and no row ever shows a secret's value.

What each Pigsty parameter means for us is in ``pigsty_import_catalog`` (tables);
selectors and access rules are translated by ``pigsty_import_rules``; the log parameters
(Loki, Promtail, VictoriaLogs, Vector) by ``pigsty_import_logs``.

Pure Python (standard library + PyYAML, plus our own pure modules): the runner
``pigsty.import`` and the unit tests call it.
"""
import copy
import json
import os
import re
import secrets

import yaml

import pigsty_baseline
import pigsty_crontab
import pigsty_defaults as D
import pigsty_hba
import pigsty_import_catalog as C
import pigsty_import_logs as LG
import pigsty_import_node as N
import pigsty_import_rules as R
import pigsty_import_tls as T
import pigsty_inventory
import pigsty_sql
import pigsty_standby
import pigsty_syntax

MAPPED, CHANGED, UNSUPPORTED, SKIPPED = "mapped", "changed", "unsupported", "skipped"
STATUSES = (MAPPED, CHANGED, UNSUPPORTED, SKIPPED)
GLOBAL = "all.vars"
# What a malformed value raises while it is read (reported as a row, never a crash).
UNREADABLE = (TypeError, ValueError, AttributeError, KeyError, IndexError)


class Refused(ValueError):
    """The inventory cannot be imported; ``field`` names where (``all.children.pg-test...``)."""

    def __init__(self, field, message):
        self.field = field
        super().__init__("%s: %s" % (field, message))


# ------------------------------------------------------------------ reading
def load(path):
    """The parsed inventory, or Refused naming the path."""
    if not isinstance(path, str) or not path:
        raise Refused("path", "expected the path of a Pigsty inventory (pigsty.yml)")
    if not os.path.isfile(path):
        raise Refused("path", "no such file: %s" % path)
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " (line %d)" % (mark.line + 1) if mark is not None else ""
        raise Refused("path", "%s is not YAML%s: %s" % (
            path, where, getattr(exc, "problem", None) or exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise Refused("path", "cannot read %s: %s" % (path, exc)) from None
    if not isinstance(doc, dict):
        raise Refused("path", "%s is not a Pigsty inventory (expected a mapping with 'all', "
                      "got %s)" % (path, type(doc).__name__))
    return doc



def _empty(value):
    return value is None or value == "" or value == [] or value == {}


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


PLACEHOLDERS = ("${dbsu}", "${admin}", "${repl}", "${monitor}")   # Pigsty v2's name templates
SYSTEM_ROLE_FIELDS = {"name", "superuser", "roles", "comment", "replication", "bypassrls"}
NAME_PARAMS = ("pg_dbsu", "pg_admin_username", "pg_replication_username", "pg_monitor_username")


def _direct_problem(key, value):
    """What a parameter of ours expects when ``value`` is not even of its kind (our validation
    checks the rest), or None."""
    default = D.DEFAULTS[key]
    if key in NAME_PARAMS:
        ok = isinstance(value, str) and pigsty_inventory.PG_NAME_RE.fullmatch(value)
        return None if ok else "a safe identifier (lowercase letters, digits, '_')"
    if default is None:
        return None if isinstance(value, (str, int, float)) else "a single value"
    for kind, what in ((bool, "true or false"), (int, "an integer"), (str, "a string"),
                       (list, "a list"), (dict, "a mapping")):
        if isinstance(default, kind):
            ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
            return None if ok else what
    return None


def _text(value):
    """A number where Ansible would read text (a password written 123456) as that text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def _short(value, limit=70):
    text = json.dumps(value, default=str, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ------------------------------------------------------------------ the importer
class _Row(dict):
    """One line of the table; ``refs`` (not printed) tie it to what was written."""


class Importer(LG.LogParams, N.NodeParams, T.TlsParams):
    def __init__(self, doc, meta=None, password_factory=None, file_roots=None):
        self.doc = doc
        self.file_roots = file_roots
        self.meta_arg = meta
        self.new_password = password_factory or (lambda: "Gen." + secrets.token_urlsafe(18))
        self.rows = []
        self.gvars_out = {}
        self.clusters = {}       # name -> {"group", "path", "hosts", "vars_in", "hosts_in", ...}
        self.nodes = {}          # ip -> {"id", "meta", "why"}
        self.public_vars = {}    # cluster -> public vars
        self.private_vars = {}   # cluster -> private vars
        self.hosts_out = {}      # cluster -> {ip: member}
        self.written = {}        # (where, key) -> row ; where: "global" | ("cluster", c) | ...
        self.shape = None
        self.meta_groups = []    # the meta (v1) / infra (v2+) groups: their vars apply on meta
        self.consumed = set()    # (cluster or GLOBAL, composed key) read by the composition
        self._current = None

    # -------------------------------------------------------------- rows
    def row(self, scope, param, status, detail, ref=None):
        r = _Row(scope=scope, param=param, status=status, detail=detail)
        if ref is not None:
            self.written.setdefault(ref, []).append(r)
        self.rows.append(r)
        return r

    # -------------------------------------------------------------- groups
    def _groups(self):
        doc = self.doc
        if "all" in doc:
            root = doc["all"]
            if not isinstance(root, dict):
                raise Refused("all", "expected a mapping with children and vars")
            gvars = root.get("vars") or {}
            children = root.get("children") or {}
            if not isinstance(gvars, dict):
                raise Refused("all.vars", "expected a mapping of parameters")
            if not isinstance(children, dict):
                raise Refused("all.children", "expected a mapping of groups")
            for host in sorted(root.get("hosts") or {}, key=str):
                self.row("all.hosts", str(host), UNSUPPORTED,
                         "a host outside any group: it belongs to no cluster, so nothing runs there")
            prefix = "all.children"
        else:
            gvars, children, prefix = {}, doc, ""
        defs = {}   # Ansible merges every definition of a group name

        def walk(name, group, parent, path):
            if group is None:
                group = {}
            if not isinstance(group, dict):
                raise Refused(path, "expected a group (a mapping with hosts and vars)")
            gv = group.get("vars") or {}
            if not isinstance(gv, dict):
                raise Refused(path + ".vars", "expected a mapping of parameters")
            hosts = group.get("hosts") or {}
            if not isinstance(hosts, dict):
                raise Refused(path + ".hosts", "expected a mapping of host address -> variables")
            sub = group.get("children") or {}
            if not isinstance(sub, dict):
                raise Refused(path + ".children", "expected a mapping of groups")
            d = defs.setdefault(str(name), {"name": str(name), "own_vars": {}, "hosts": {},
                                            "parents": [], "children": [], "path": path})
            if (gv or hosts) and not (d["own_vars"] or d["hosts"]):
                d["path"] = path
            d["own_vars"].update(gv)
            for key, hv in hosts.items():
                if isinstance(d["hosts"].get(key), dict) and isinstance(hv, dict):
                    d["hosts"][key].update(hv)
                else:
                    d["hosts"][key] = hv
            if parent and parent not in d["parents"]:
                d["parents"].append(parent)
            for cname, child in sub.items():
                if str(cname) not in d["children"]:
                    d["children"].append(str(cname))
                walk(cname, child, str(name), "%s.children.%s" % (path, cname))

        for name, group in children.items():
            walk(name, group, None, "%s.%s" % (prefix, name) if prefix else str(name))

        def inherited(name, seen=()):
            out = {}
            for parent in defs[name]["parents"]:
                if parent in seen:
                    continue
                out.update(inherited(parent, seen + (name,)))
                out.update(defs[parent]["own_vars"])
            return out

        groups = []
        for name, d in defs.items():
            if d["hosts"] or not d["children"]:
                merged = inherited(name)
                merged.update(d["own_vars"])
                groups.append({"name": name, "vars": merged, "own_vars": d["own_vars"],
                               "hosts": d["hosts"], "path": d["path"]})
            else:
                self.row("group " + name, "(group)", MAPPED, "a parent of %s: its %d parameter(s) "
                         "apply to those groups and are reported there" % (
                             ", ".join(d["children"]), len(d["own_vars"])))
        return gvars, groups

    def _detect_shape(self, gvars, groups):
        names = {g["name"] for g in groups}
        keys = set(gvars)
        for g in groups:
            keys |= set(g["vars"])
        v2 = bool({"infra", "etcd"} & names) or bool(keys & {
            "pg_vip_enabled", "pg_vip_address", "pg_default_services", "pg_default_hba_rules",
            "pgb_hba_rules", "pgb_default_hba_rules", "node_id_from_pg", "infra_portal",
            "etcd_cluster", "pg_rto", "admin_ip"})
        v1 = "meta" in names or bool(keys & {
            "meta_node", "vip_mode", "vip_address", "pg_services_extra", "pg_hba_rules_extra",
            "pgbouncer_hba_rules", "dcs_servers", "pg_dcs_type", "nginx_upstream"})
        version = str(gvars.get("version") or "")
        if version.lstrip("v").startswith("1."):
            return "v1"
        if re.match(r"v?[2-9]\.", version):
            return "v2"
        if v1 and not v2:
            return "v1"
        return "v2" if v2 else "v1"

    # -------------------------------------------------------------- identity
    def _host_ip(self, key, hvars, path):
        ip = R.ipv4(key)
        if ip:
            return ip
        alt = R.ipv4((hvars or {}).get("ansible_host")) if isinstance(hvars, dict) else None
        if alt:
            return alt
        raise Refused(path, "expected a node's IPv4 address as the key (or ansible_host: IP)")

    def _classify(self, groups):
        pg, meta, etcd, other = [], [], [], []
        for g in groups:
            gv, hosts = g["vars"], g["hosts"]
            hostvars = [h for h in hosts.values() if isinstance(h, dict)]
            name = g["name"]
            component = None
            for key, comp, reason in C.COMPONENT_KEYS:
                if key in g["own_vars"] or any(key in h for h in hostvars):
                    component = (comp, reason)
                    break
            mode = gv.get("pg_mode", "pgsql")
            if component is None and mode not in (None, "pgsql") and (
                    "pg_cluster" in gv or any("pg_seq" in h for h in hostvars)):
                component = (C.PG_MODES_SKIPPED.get(mode, "pg_mode %s" % mode),
                             "we run plain PostgreSQL only (pg_mode: pgsql)")
            if component:
                other.append((g, component))
            elif "pg_cluster" in g["own_vars"] or any("pg_seq" in h or "pg_role" in h for h in hostvars):
                pg.append(g)
            elif name in ("meta", "infra") or g["own_vars"].get("meta_node") is True or any(
                    "infra_seq" in h for h in hostvars):
                meta.append(g)
            elif name == "etcd" or "etcd_cluster" in g["own_vars"] or any("etcd_seq" in h for h in hostvars):
                etcd.append(g)
            else:
                other.append((g, None))
        return pg, meta, etcd, other

    def _check_clusters(self, pg_groups):
        seen_nodes = {}
        for g in pg_groups:
            path = g["path"]
            name = g["own_vars"].get("pg_cluster", g["vars"].get("pg_cluster", g["name"]))
            if not isinstance(name, str) or not pigsty_inventory.CLUSTER_RE.fullmatch(name):
                raise Refused(path + ".vars.pg_cluster", "%r is not a cluster name we accept "
                              "(lowercase letters, digits and '-', starting with a letter)" % (name,))
            if name in self.clusters:
                raise Refused(path + ".vars.pg_cluster", "cluster %s is defined twice (also %s)" % (
                    name, self.clusters[name]["path"]))
            hosts = g["hosts"]
            if not hosts:
                raise Refused(path + ".hosts", "cluster %s has no hosts" % name)
            members, seqs, primaries = {}, {}, []
            for key, hv in hosts.items():
                hpath = "%s.hosts.%s" % (path, key)
                if not isinstance(hv, dict):
                    raise Refused(hpath, "expected the member's variables (pg_seq, pg_role)")
                ip = self._host_ip(key, hv, hpath)
                if ip in members:
                    raise Refused(hpath, "address %s is listed twice" % ip)
                seq = hv.get("pg_seq")
                if not _is_int(seq) or seq < 0:
                    raise Refused(hpath + ".pg_seq", "expected a non-negative integer, got %r" % (seq,))
                if seq in seqs:
                    raise Refused(hpath + ".pg_seq", "duplicate pg_seq %d (also used by %s)" % (seq, seqs[seq]))
                seqs[seq] = ip
                role = hv.get("pg_role", g["vars"].get("pg_role"))
                if role not in ("primary", "replica", "offline", "standby", "delayed"):
                    raise Refused(hpath + ".pg_role", "unknown role %r (expected primary, replica "
                                  "or offline)" % (role,))
                if role == "primary":
                    primaries.append(ip)
                if ip in seen_nodes:
                    raise Refused(hpath, "node %s is already a member of cluster %s (we run one "
                                  "instance per node)" % (ip, seen_nodes[ip]))
                seen_nodes[ip] = name
                members[ip] = {"key": key, "vars": hv, "seq": seq, "role": role}
            if not primaries:
                raise Refused(path + ".hosts", "cluster %s has no primary (expected exactly one "
                              "member with pg_role: primary)" % name)
            if len(primaries) > 1:
                raise Refused(path + ".hosts", "cluster %s has %d primaries (%s); expected exactly "
                              "one" % (name, len(primaries), ", ".join(primaries)))
            self.clusters[name] = {"group": g, "path": path, "members": members}

    def _meta_ips(self, meta_groups):
        ips = []
        for g in meta_groups:
            for key, hv in g["hosts"].items():
                ip = self._host_ip(key, hv, "%s.hosts.%s" % (g["path"], key))
                if ip not in ips:
                    ips.append(ip)
        if not ips and self.meta_arg:
            ip = R.ipv4(self.meta_arg)
            if not ip:
                raise Refused("meta", "expected the meta node's IPv4 address, got %r" % (self.meta_arg,))
            ips.append(ip)
            self.row("nodes", ip, CHANGED, "meta node given on the command line (meta=%s): the "
                     "inventory has no meta (v1) or infra (v2) group" % ip)
        if not ips:
            raise Refused("all.children.meta", "no meta (v1) or infra (v2) group: our pillar needs "
                          "an admin node for etcd, Prometheus and the repository; add the group, "
                          "or pass meta=IP")
        return ips

    def _node_ids(self, meta_ips, all_groups):
        hostvars = {}
        for g in all_groups:
            for key, hv in g["hosts"].items():
                ip = R.ipv4(key) or (R.ipv4(hv.get("ansible_host")) if isinstance(hv, dict) else None)
                if ip:
                    hostvars.setdefault(ip, []).append((g, key, hv if isinstance(hv, dict) else {}))
        member_of = {ip: (c, m) for c, info in self.clusters.items() for ip, m in info["members"].items()}
        ips = list(meta_ips) + [ip for ip in member_of if ip not in meta_ips]
        ids = {}
        for ip in ips:
            entries = hostvars.get(ip, [])
            nodename = next((hv["nodename"] for _g, _k, hv in entries if hv.get("nodename")), None)
            named_key = next((str(k) for _g, k, _hv in entries if not R.ipv4(k)), None)
            by_pg = True
            if ip in member_of:
                cvars = self.clusters[member_of[ip][0]]["group"]["vars"]
                gv = self.gvars_in
                for flag in ("pg_hostname", "node_id_from_pg"):
                    if cvars.get(flag, gv.get(flag, True)) is False:
                        by_pg = False
            if nodename and pigsty_inventory.NODE_RE.fullmatch(str(nodename)):
                nid, status, why = str(nodename), MAPPED, "minion id from nodename"
            elif named_key and pigsty_inventory.NODE_RE.fullmatch(named_key):
                nid, status, why = named_key, MAPPED, "minion id from the inventory's host name"
            elif ip in member_of and by_pg:
                c, m = member_of[ip]
                nid, status = "%s-%s" % (c, m["seq"]), CHANGED
                why = ("minion id %s derived from pg_cluster and pg_seq, as Pigsty names a "
                       "database node" % nid)
            else:
                nid, status = "node-%s" % ip.replace(".", "-"), CHANGED
                why = "minion id %s invented from the address (no nodename in the inventory)" % nid
            if nodename and nid != str(nodename):
                why += " (nodename %r is not a valid minion id)" % nodename
            if nid in ids.values():
                other = next(i for i, n in ids.items() if n == nid)
                raise Refused("nodename", "nodes %s and %s would both be minion %s" % (other, ip, nid))
            ids[ip] = nid
            self.nodes[ip] = {"id": nid, "meta": ip in meta_ips}
            self.row("nodes", ip, status, why + "; the node's salt minion id must be %s" % nid)

    # -------------------------------------------------------------- parameters
    def _write(self, where, key, value):
        if where == "global":
            self.gvars_out[key] = value
        else:
            kind, cluster = where
            target = self.public_vars if kind == "cluster" else self.private_vars
            target.setdefault(cluster, {})[key] = value

    def param(self, scope, where, key, value):
        """One plain (not composed) parameter at a scope. ``where``: "global", ("cluster", c),
        or None (a scope we cannot write to: the meta/etcd group)."""
        key = str(key)
        secret = bool(C.SECRET_NAME_RE.search(key))
        shown = "(secret, not shown)" if secret else _short(value)
        if key in C.COMPOSED and where != ("cluster", getattr(self, "_current", None)):
            return self.row(scope, key, UNSUPPORTED, "%s: set on a group that is not a cluster "
                            "(ours: globally or per cluster)" % shown)
        handler = getattr(self, "_p_" + key, None)
        if handler is not None:
            try:
                return handler(scope, where, key, value)
            except UNREADABLE as exc:
                return self.row(scope, key, UNSUPPORTED, "%s: cannot read it (%s)" % (shown, exc))
        if key in C.DIRECT:
            if where is None:
                return self.row(scope, key, UNSUPPORTED, "set on a group that is not a cluster: "
                                "set it globally or on a cluster")
            if key in D.INFRA_PARAMS and where != "global":
                return self._cluster_infra(scope, where, key, value)
            expected = _direct_problem(key, value)
            if expected:
                return self.row(scope, key, UNSUPPORTED, "%s: expected %s" % (shown, expected))
            self._write(where, key, value)
            return self.row(scope, key, MAPPED, shown, ref=(where, key))
        if key in C.SAME_AS_OURS:
            values, ours = C.SAME_AS_OURS[key]
            if value in values or (isinstance(value, str) and value in [str(v) for v in values]):
                return self.row(scope, key, MAPPED, "%s: same as ours (%s); nothing written" % (shown, ours))
            reason = C.REASONS.get(key) or "ours is fixed: %s" % ours
            return self.row(scope, key, UNSUPPORTED, "%s: %s" % (shown, reason))
        for prefix, comp in C.SKIPPED_PREFIXES:
            if key.startswith(prefix):
                return self.row(scope, key, SKIPPED, "%s parameter: we do not run %s" % (comp, comp))
        if _empty(value) or value is False and key.endswith(("_enabled", "_overwrite")):
            return self.row(scope, key, MAPPED, "%s: empty or off, nothing to carry over" % (
                "''" if value == "" else shown))
        reason = C.REASONS.get(key)
        if reason is None:
            reason = next((r for p, r in C.UNSUPPORTED_PREFIXES if key.startswith(p)),
                          "not a Pigsty parameter we know")
        return self.row(scope, key, UNSUPPORTED, "%s: %s" % (shown, reason))

    def _cluster_infra(self, scope, where, key, value):
        gval = self.gvars_in.get(key)
        if value == gval:
            return self.row(scope, key, MAPPED, "same as the global value (ours is global only)")
        return self.row(scope, key, UNSUPPORTED, "%s: a global parameter in ours (the infra role "
                        "runs once for every cluster); the global value applies" % _short(value))

    # ---- specific parameters
    def _p_pg_version(self, scope, where, key, value):
        if where is None:
            return self.row(scope, key, UNSUPPORTED, "set on a group that is not a cluster")
        self._write(where, key, 15)
        if value == 15:
            return self.row(scope, key, MAPPED, "15", ref=(where, key))
        return self.row(scope, key, CHANGED, "%s -> 15: Debian 12 ships PostgreSQL 15 only; "
                        "existing data of another major version needs an upgrade first" % _short(value),
                        ref=(where, key))

    def _p_pg_conf(self, scope, where, key, value):
        name = str(value)
        base = name[:-4] if name.endswith(".yml") else name
        if where is None:
            return self.row(scope, key, UNSUPPORTED, "set on a group that is not a cluster")
        if base not in C.PROFILES:
            return self.row(scope, key, UNSUPPORTED, "%s: not one of our tuning profiles (oltp, "
                            "olap, crit, tiny); the default oltp applies" % _short(value))
        self._write(where, key, base)
        if base == name:
            return self.row(scope, key, MAPPED, base, ref=(where, key))
        return self.row(scope, key, CHANGED, "%s -> %s: our profile of the same name (parameters "
                        "sized from the node's memory)" % (name, base), ref=(where, key))

    def _p_pg_rto(self, scope, where, key, value):
        plan = C.RTO_BY_TTL.get(value) if _is_int(value) else None
        if where is None or plan is None:
            return self.row(scope, key, UNSUPPORTED, "%s: ours has HA timing plans fast (ttl 20), "
                            "norm (30) and safe (60) only (pg_rto_plan)" % _short(value))
        self._write(where, "pg_rto_plan", plan)
        p = pigsty_inventory.RTO_PLANS[plan]
        return self.row(scope, key, CHANGED, "%s -> pg_rto_plan: %s (ttl %d, loop_wait %d, "
                        "retry_timeout %d)" % (value, plan, p["ttl"], p["loop_wait"],
                                               p["retry_timeout"]), ref=(where, "pg_rto_plan"))

    def _p_pg_rto_plan(self, scope, where, key, value):
        if where is None or value not in pigsty_inventory.RTO_PLANS:
            return self.row(scope, key, UNSUPPORTED, "%s: ours has fast, norm and safe" % _short(value))
        self._write(where, key, value)
        return self.row(scope, key, MAPPED, value, ref=(where, key))

    def _p_pg_dcs_type(self, scope, where, key, value):
        if value == "etcd":
            return self.row(scope, key, MAPPED, "etcd: same as ours (etcd on the meta nodes); nothing written")
        if value == "consul":
            return self.row(scope, key, CHANGED, "consul -> etcd on the meta nodes: Pigsty v1 "
                            "installs Consul, which Debian 12 does not package (our dcs_type: "
                            "consul only uses a Consul you already run: consul_hosts)")
        return self.row(scope, key, UNSUPPORTED, "%s: ours runs etcd (or uses your Consul)" % _short(value))

    def _p_dcs_servers(self, scope, where, key, value):
        if where != "global":
            return self.row(scope, key, UNSUPPORTED, "global only in ours")
        if not isinstance(value, dict) or not value:
            return self.row(scope, key, MAPPED, "empty: etcd on each meta node (ours' default); nothing written")
        ips = {name: R.ipv4(ip) for name, ip in value.items()}
        metas = {ip for ip, n in self.nodes.items() if n["meta"]}
        bad = sorted(str(n) for n, ip in ips.items() if not ip or ip not in self.nodes)
        if bad:
            return self.row(scope, key, UNSUPPORTED, "%s: not nodes of the inventory (ours runs etcd on "
                            "nodes Salt manages)" % ", ".join(bad))
        if not set(ips.values()) & metas:
            return self.row(scope, key, UNSUPPORTED, "%s: no meta node among them (ours needs one: it "
                            "manages etcd's users and members)" % _short(value))
        names = [n for n in ips if not isinstance(n, str) or not pigsty_inventory.DCS_MEMBER_RE.fullmatch(n)]
        if names:
            return self.row(scope, key, UNSUPPORTED, "%s: member names etcd would refuse (lower-case "
                            "letters, digits and '-')" % ", ".join(map(str, names)))
        self._write(where, key, {n: ip for n, ip in ips.items()})
        return self.row(scope, key, MAPPED, ", ".join("%s: %s" % kv for kv in ips.items())
                        + " (etcd members, the first on a meta node bootstraps)", ref=(where, key))

    def _p_node_dns_method(self, scope, where, key, value):
        if where != "global":
            return self.row(scope, key, UNSUPPORTED, "global only in ours")
        if value in ("overwrite", "none"):
            self._write(where, key, value)
            return self.row(scope, key, MAPPED, value, ref=(where, key))
        if value == "add":
            self._write(where, key, "none")
            return self.row(scope, key, CHANGED, "add -> none: ours has no 'add' (put meta first, "
                            "keep the rest); resolv.conf is left as it is. overwrite points the "
                            "nodes at meta's dnsmasq only (then set dns_upstream)", ref=(where, key))
        return self.row(scope, key, UNSUPPORTED, "%s: expected add, overwrite or none" % _short(value))

    def _p_node_dns_servers(self, scope, where, key, value):
        metas = sorted(ip for ip, n in self.nodes.items() if n["meta"])
        if isinstance(value, list) and sorted(str(v) for v in value) == metas:
            method = self.gvars_out.get("node_dns_method", D.DEFAULTS["node_dns_method"])
            if method == "overwrite":
                return self.row(scope, key, MAPPED, "the meta nodes: same as ours with "
                                "node_dns_method: overwrite; nothing written")
            return self.row(scope, key, CHANGED, "the meta nodes: not used, since node_dns_method "
                            "is %s here (resolv.conf is left as it is)" % method)
        return self.row(scope, key, UNSUPPORTED, "%s: ours points nodes at the meta nodes' "
                        "dnsmasq only" % _short(value))

    def _p_node_ntp_servers(self, scope, where, key, value):
        metas = {ip for ip, n in self.nodes.items() if n["meta"]}
        if where != "global" or not isinstance(value, list):
            return self.row(scope, key, UNSUPPORTED, "%s: global NTP sources only" % _short(value))
        lines, dropped = [], []
        for line in value:
            toks = str(line).split()
            if len(toks) >= 2 and toks[0] in ("server", "pool", "peer") and toks[1] not in metas:
                lines.append(" ".join(toks))
            else:
                dropped.append(str(line))
        if lines:
            self._write(where, "ntp_upstream", lines)
        detail = "-> ntp_upstream: the meta nodes sync from these; the other nodes sync from meta"
        if dropped:
            detail += "; left out: %s (a meta node itself, or not a chrony source line)" % ", ".join(dropped)
        return self.row(scope, key, CHANGED, detail, ref=(where, "ntp_upstream") if lines else None)

    def _p_node_ntp_service(self, scope, where, key, value):
        if value == "chrony":
            return self.row(scope, key, MAPPED, "chrony: same as ours; nothing written")
        return self.row(scope, key, CHANGED, "%s -> chrony: the nodes run chrony" % _short(value))

    def _p_node_ntp_enabled(self, scope, where, key, value):
        if where != "global":
            return self.row(scope, key, UNSUPPORTED, "global only in ours")
        self._write(where, key, value)
        return self.row(scope, key, MAPPED, _short(value), ref=(where, key))

    def _p_node_repo_method(self, scope, where, key, value):
        if where != "global":
            return self.row(scope, key, UNSUPPORTED, "global only in ours")
        if value == "local":
            self._write(where, "node_repo_local", True)
            return self.row(scope, key, CHANGED, "local -> node_repo_local: true (database nodes "
                            "install from meta's Debian repository only)", ref=(where, "node_repo_local"))
        if value in ("none", "public"):
            return self.row(scope, key, MAPPED, "%s: nodes keep their own apt sources (ours by "
                            "default); nothing written" % value)
        return self.row(scope, key, UNSUPPORTED, "%s: expected local, public or none" % _short(value))

    def _p_haproxy_exporter_port(self, scope, where, key, value):
        return self._renamed(scope, where, key, value, "haproxy_admin_port")

    def _p_haproxy_admin_port(self, scope, where, key, value):
        return self._renamed(scope, where, key, value, "haproxy_admin_port")

    def _renamed(self, scope, where, key, value, ours):
        if where is None:
            return self.row(scope, key, UNSUPPORTED, "set on a group that is not a cluster")
        self._write(where, ours, value)
        status = MAPPED if key == ours else CHANGED
        detail = _short(value) if key == ours else "-> %s: %s" % (ours, _short(value))
        return self.row(scope, key, status, detail, ref=(where, ours))

    def _p_prometheus_options(self, scope, where, key, value):
        m = re.search(r"--storage\.tsdb\.retention(?:\.time)?=(\S+)", str(value or ""))
        rest = re.sub(r"--storage\.tsdb\.retention(?:\.time)?=\S+", "", str(value or "")).strip()
        if m and where == "global":
            self._write(where, "prometheus_retention", m.group(1))
            detail = "retention %s -> prometheus_retention" % m.group(1)
            if rest:
                detail += "; other options left out: %s" % rest
            return self.row(scope, key, CHANGED, detail, ref=(where, "prometheus_retention"))
        return self.row(scope, key, UNSUPPORTED, "%s: Prometheus runs with our options "
                        "(retention: prometheus_retention)" % _short(value))

    def _p_nginx_upstream(self, scope, where, key, value):
        if where != "global" or not isinstance(value, list):
            return self.row(scope, key, UNSUPPORTED, "global only, a list of {name, domain, endpoint}")
        portal = copy.deepcopy(D.DEFAULTS["infra_portal"])
        kept, left = [], []
        for item in value:
            name = item.get("name") if isinstance(item, dict) else None
            if name in portal and isinstance(item.get("domain"), str):
                portal[name] = {"domain": item["domain"]}
                kept.append("%s %s" % (name, item["domain"]))
            else:
                left.append(str(name))
        given = {item.get("name") for item in value if isinstance(item, dict)}
        taken = {portal[n]["domain"]: n for n in portal if n in given}
        clashes = sorted(n for n in portal if n not in given and portal[n]["domain"] in taken)
        dropped = []
        for name in clashes:
            dropped.append("our %s entry (its default domain %s is %s's here)" % (
                name, portal[name]["domain"], taken[portal[name]["domain"]]))
            del portal[name]
        self._write(where, "infra_portal", portal)
        detail = "-> infra_portal: %s (upstreams are ours: each service on the meta node)" % ", ".join(kept)
        if left:
            detail += "; left out: %s (our Nginx proxies home, prometheus, alertmanager, " \
                      "grafana and haproxy only)" % ", ".join(left)
        if dropped:
            detail += "; left out %s" % "; ".join(dropped)
        return self.row(scope, key, CHANGED, detail, ref=(where, "infra_portal"))

    def _p_infra_portal(self, scope, where, key, value):
        if where != "global" or not isinstance(value, dict):
            return self.row(scope, key, UNSUPPORTED, "global only, a mapping of name -> {domain, endpoint}")
        return self._p_nginx_upstream(scope, where, key, [
            dict(v, name=k) for k, v in value.items() if isinstance(v, dict)])

    def _p_dns_records(self, scope, where, key, value):
        admin = R.ipv4(self.gvars_in.get("admin_ip"))
        if where != "global":
            return self._cluster_infra(scope, where, key, value)
        if not isinstance(value, list):
            return self.row(scope, key, UNSUPPORTED, "%s: expected a list of \"ADDRESS NAME...\" "
                            "lines" % _short(value))
        records = [str(r).replace("${admin_ip}", admin) if admin else r for r in value]
        self._write(where, key, records)
        changed = records != value
        return self.row(scope, key, CHANGED if changed else MAPPED, _short(records) + (
            " (${admin_ip} -> %s)" % admin if changed else ""), ref=(where, key))

    def _p_grafana_enabled(self, scope, where, key, value):
        if value is False:
            return self.row(scope, key, MAPPED, "false: no Grafana (ours without a package source)")
        return self.row(scope, key, UNSUPPORTED, "%s: Debian 12 has no Grafana package; ours installs "
                        "it only when grafana_repo or grafana_package_url names a source (not in a "
                        "Pigsty inventory)" % _short(value))

    def _p_patroni_watchdog_mode(self, scope, where, key, value):
        if where is None:
            return self.row(scope, key, UNSUPPORTED, "set on a group that is not a cluster")
        # YAML reads an unquoted off as false; Patroni also takes require and auto
        mode = {False: "off", "off": "off", "automatic": "automatic", "auto": "automatic",
                "required": "required", "require": "required"}.get(value) if not isinstance(
                    value, (list, dict)) else None
        if mode is None:
            return self.row(scope, key, UNSUPPORTED, "%s: expected off, automatic or required"
                            % _short(value))
        self._write(where, key, mode)
        detail = {"off": "off: Patroni runs without a watchdog",
                  "automatic": "automatic: Patroni uses /dev/watchdog when the node has one "
                               "(pgsql.patroni loads softdog where none is)",
                  "required": "required: pgsql.patroni refuses a node without a watchdog "
                              "device before it changes anything"}[mode]
        if str(value) != mode:
            detail = "%s -> %s" % (_short(value), detail)
        return self.row(scope, key, MAPPED if str(value) == mode or value is False else CHANGED,
                        detail, ref=(where, key))

    def _p_node_crontab(self, scope, where, key, value):
        if where is None:
            return self.row(scope, key, UNSUPPORTED, "set on a group that is not a cluster")
        if not isinstance(value, list):
            return self.row(scope, key, UNSUPPORTED, "%s: expected a list of crontab lines"
                            % _short(value))
        if not value:
            return self.row(scope, key, MAPPED, "empty: nothing to carry over")
        kept, notes = [], []
        for i, line in enumerate(value):
            problems = pigsty_crontab.line_problems(line, "%s[%d]" % (key, i))
            if problems:
                notes.append("left out %s" % "; ".join(problems))
            elif re.search(r"(^|\s)/pg/bin/", line.split(None, 6)[-1]):
                notes.append("left out %s[%d] %s: it runs one of Pigsty's own scripts (/pg/bin), "
                             "which ours does not install (backups: pgbackrest_schedule)" % (
                                 key, i, _short(line)))
            else:
                kept.append(line.strip())
        if not kept:
            return self.row(scope, key, UNSUPPORTED, "nothing kept (%s)" % "; ".join(notes))
        self._write(where, key, kept)
        return self.row(scope, key, CHANGED if notes else MAPPED, "%s%s" % (
            _short(kept), " (%s)" % "; ".join(notes) if notes else ""), ref=(where, key))

    def _p_pg_pwd_enc(self, scope, where, key, value):
        if value == "scram-sha-256":
            return self.row(scope, key, MAPPED, "scram-sha-256: same as ours; nothing written")
        return self.row(scope, key, CHANGED, "%s -> scram-sha-256: ours stores SCRAM verifiers only" % _short(value))

    def _p_pg_libs(self, scope, where, key, value):
        if where is None:
            return self.row(scope, key, UNSUPPORTED, "set on a group that is not a cluster")
        libs = [x.strip() for x in str(value or "").split(",") if x.strip()]
        kept = [x for x in libs if x in C.CONTRIB_LIBRARIES]
        dropped = [x for x in libs if x not in kept]
        notes = []
        if dropped:
            notes.append("left out %s (not in Debian's postgresql-15: install its package with "
                         "pg_extensions, then add it back)" % ", ".join(dropped))
        if "pg_stat_statements" not in kept:
            kept.insert(0, "pg_stat_statements")
            notes.append("pg_stat_statements added (our monitoring reads it)")
        self._write(where, key, ", ".join(kept))
        return self.row(scope, key, CHANGED if notes else MAPPED, "%s%s" % (
            ", ".join(kept), " (%s)" % "; ".join(notes) if notes else ""), ref=(where, key))

    def _p_pg_extensions(self, scope, where, key, value):
        if where is None:
            return self.row(scope, key, UNSUPPORTED, "set on a group that is not a cluster")
        if not isinstance(value, list):
            return self.row(scope, key, UNSUPPORTED, "%s: expected a list of package names" % _short(value))
        pkgs = [p.replace("${pg_version}", "15") for item in value for p in str(item).split()]
        debian = [p for p in pkgs if re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", p)]
        if pkgs and len(debian) == len(pkgs):
            self._write(where, key, pkgs)
            return self.row(scope, key, MAPPED, _short(pkgs), ref=(where, key))
        if not pkgs:
            return self.row(scope, key, MAPPED, "empty: nothing to carry over")
        return self.row(scope, key, UNSUPPORTED, "%s: EL package names (%s); pg_extensions takes "
                        "Debian package names, such as postgresql-15-postgis-3" % (
                            _short(value), _short(", ".join(p for p in pkgs if p not in debian))))

    def _p_pg_default_privileges(self, scope, where, key, value):
        if where is None:
            return self.row(scope, key, UNSUPPORTED, "set on a group that is not a cluster")
        try:
            granted = pigsty_sql.parse_default_privileges(value)
        except ValueError as exc:
            return self.row(scope, key, UNSUPPORTED, "cannot read it: %s" % _short(str(exc), 160))
        if set(granted) == set(pigsty_sql.DEFAULT_PRIVILEGES):
            return self.row(scope, key, MAPPED, "Pigsty's default privileges: same as ours; nothing written")
        self._write(where, key, value)
        return self.row(scope, key, MAPPED, "%d line(s)" % len(value), ref=(where, key))

    def _p_pg_default_extensions(self, scope, where, key, value):
        if where is None:
            return self.row(scope, key, UNSUPPORTED, "set on a group that is not a cluster")
        if not isinstance(value, list):
            return self.row(scope, key, UNSUPPORTED, "%s: expected a list of extensions" % _short(value))
        kept, dropped = [], []
        for e in value:
            ename = e.get("name") if isinstance(e, dict) else e
            (kept if ename in C.CONTRIB_EXTENSIONS else dropped).append(e)
        self._write(where, key, kept)
        if not dropped:
            return self.row(scope, key, MAPPED, _short(kept), ref=(where, key))
        return self.row(scope, key, CHANGED, "%s (left out %s: not in Debian's postgresql-15 "
                        "contrib; install its package with pg_extensions, then add it back)" % (
                            _short(kept), ", ".join(str(e.get("name") if isinstance(e, dict) else e)
                                                    for e in dropped)), ref=(where, key))

    def _p_pg_default_service_dest(self, scope, where, key, value):
        if value == "pgbouncer":
            return self.row(scope, key, MAPPED, "pgbouncer: same as ours; nothing written")
        return self.row(scope, key, UNSUPPORTED, "%s: our primary and replica services route to "
                        "Pgbouncer (fixed)" % _short(value))

    def _p_pg_default_version(self, scope, where, key, value):
        return self.row(scope, key, UNSUPPORTED, "%s: ours installs PostgreSQL 15 (Debian 12)" % _short(value))

    def _p_version(self, scope, where, key, value):
        return self.row(scope, key, MAPPED, "%s: read as the %s shape; nothing written" % (
            _short(value), self.shape))

    def _p_admin_ip(self, scope, where, key, value):
        return self.row(scope, key, MAPPED, "%s: used for HBA rules with addr: admin; nothing "
                        "written" % _short(value))

    def _p_meta_node(self, scope, where, key, value):
        return self.row(scope, key, MAPPED, "%s: meta nodes are the nodes map's meta: true" % _short(value))

    def _p_pg_hostname(self, scope, where, key, value):
        return self.row(scope, key, MAPPED if value is not False else CHANGED,
                        "%s: minion ids are derived as described in the nodes rows" % _short(value))

    _p_node_id_from_pg = _p_pg_hostname

    def _p_nodename(self, scope, where, key, value):
        return self.row(scope, key, MAPPED, "%s: the node's minion id (see the nodes rows)" % _short(value))

    def _p_pg_mode(self, scope, where, key, value):
        if value == "pgsql":
            return self.row(scope, key, MAPPED, "pgsql: plain PostgreSQL; nothing written")
        return self.row(scope, key, SKIPPED, "%s: we run plain PostgreSQL only" % _short(value))

    def _p_pg_upstream(self, scope, where, key, value):
        # on a cluster's hosts it is read by _standby_member; anywhere else it means nothing
        return self.row(scope, key, UNSUPPORTED, "%s: %s" % (_short(value), D.INSTANCE_ONLY[key]))

    def _standby_member(self, scope, c, ip, m, member, hk, value):
        """pg_upstream / pg_delay of a cluster member: a standby cluster (pigsty_standby) when
        they are on its primary member."""
        ref = (("host", c, ip), hk)
        if hk == "pg_upstream":
            if m["role"] != "primary":
                return self.row(scope, hk, UNSUPPORTED, "%s: on a %s, a cascaded replica, which "
                                "we do not build" % (_short(value), m["role"]))
            member[hk] = str(value)
            return self.row(scope, hk, MAPPED, "%s: a standby cluster, its leader streams from "
                            "there" % _short(value), ref=ref)
        try:
            delay = pigsty_standby.delay_setting(value)
        except ValueError as exc:
            return self.row(scope, hk, UNSUPPORTED, str(exc))
        if delay is None:
            return self.row(scope, hk, MAPPED, "%s: no delay; nothing written" % _short(value))
        if m["role"] != "primary" or "pg_upstream" not in m["vars"]:
            return self.row(scope, hk, UNSUPPORTED, "%s: a delay applies to a standby cluster's "
                            "leader only (pg_upstream on its primary member)" % _short(value))
        member[hk] = value
        return self.row(scope, hk, MAPPED, "%s: the standby leader applies WAL that late "
                        "(recovery_min_apply_delay %s)" % (_short(value), delay), ref=ref)

    def _p_pg_cluster(self, scope, where, key, value):
        return self.row(scope, key, MAPPED, "%s: the cluster's key" % _short(value))

    def _p_infra_seq(self, scope, where, key, value):
        return self.row(scope, key, MAPPED, "%s: an infra (meta) node" % _short(value))

    def _p_etcd_seq(self, scope, where, key, value):
        return self.row(scope, key, MAPPED, "%s: an etcd member (ours: etcd on the meta nodes)" % _short(value))

    def _p_etcd_cluster(self, scope, where, key, value):
        return self.row(scope, key, MAPPED, "%s: ours is one etcd on the meta nodes" % _short(value))

    # -------------------------------------------------------------- composition
    def _eff(self, cluster, key):
        """(value, scope) of a composed parameter for a cluster, Pigsty's precedence."""
        cv = self.clusters[cluster]["group"]["vars"]
        if key in cv:
            self.consumed.add((cluster, key))
            return cv[key], cluster
        if key in self.gvars_in:
            self.consumed.add((GLOBAL, key))
            return self.gvars_in[key], GLOBAL
        return None, None

    def _names(self, cluster):
        conf = self._conf(cluster)
        return {"dbsu": conf["pg_dbsu"], "repl": conf["pg_replication_username"],
                "monitor": conf["pg_monitor_username"], "admin": conf["pg_admin_username"]}

    def _conf(self, cluster):
        conf = copy.deepcopy(D.DEFAULTS)
        conf.update(self.gvars_out)
        conf.update(self.public_vars.get(cluster, {}))
        return conf

    def compose(self, cluster):
        """The parameters a cluster takes from itself or else from all.vars."""
        steps = [("VIP", self._vip), ("system passwords", self._secrets), ("pg_users", self._users),
                 ("pg_databases", self._databases), ("pg_hba_rules", lambda c: self._hba(c, False)),
                 ("pgb_hba_rules", lambda c: self._hba(c, True)), ("services", self._services)]
        for what, step in steps:
            try:
                step(cluster)
            except UNREADABLE as exc:
                self.row(cluster, what, UNSUPPORTED, "cannot read it: %s (left out)" % exc)

    def _label(self, cluster, scope):
        return cluster if scope == cluster else "%s (from %s)" % (cluster, scope)

    def _vip(self, c):
        where = ("cluster", c)
        v1 = {k: self._eff(c, k) for k in ("vip_mode", "vip_address", "vip_cidrmask", "vip_interface")}
        v2 = {k: self._eff(c, k) for k in ("pg_vip_enabled", "pg_vip_address", "pg_vip_interface")}
        mode, mode_scope = v1["vip_mode"]
        if v2["pg_vip_enabled"][1] or v2["pg_vip_address"][1]:
            enabled, es = v2["pg_vip_enabled"]
            address, as_ = v2["pg_vip_address"]
            if es:
                self._write(where, "pg_vip_enabled", enabled)
                self.row(self._label(c, es), "pg_vip_enabled", MAPPED, _short(enabled),
                         ref=(where, "pg_vip_enabled"))
            if as_:
                self._write(where, "pg_vip_address", address)
                self.row(self._label(c, as_), "pg_vip_address", MAPPED, _short(address),
                         ref=(where, "pg_vip_address"))
        elif mode_scope:
            label = self._label(c, mode_scope)
            address, as_ = v1["vip_address"]
            mask, ms = v1["vip_cidrmask"]
            if mode == "l2" and address:
                self._write(where, "pg_vip_enabled", True)
                value = str(address) if "/" in str(address) else "%s/%s" % (
                    address, mask if mask is not None else 24)
                self._write(where, "pg_vip_address", value)
                self.row(label, "vip_mode", CHANGED, "l2 -> pg_vip_enabled: true (vip-manager "
                         "moves the VIP with the leader key)", ref=(where, "pg_vip_enabled"))
                self.row(self._label(c, as_), "vip_address", CHANGED, "-> pg_vip_address %s" % value,
                         ref=(where, "pg_vip_address"))
                if ms:
                    self.row(self._label(c, ms), "vip_cidrmask", CHANGED, "-> the prefix of "
                             "pg_vip_address", ref=(where, "pg_vip_address"))
                else:
                    self.row(label, "vip_cidrmask", CHANGED, "not given: /24 assumed",
                             ref=(where, "pg_vip_address"))
            elif mode in ("none", None, False):
                self.row(label, "vip_mode", MAPPED, "none: no VIP (ours by default); nothing written")
                for k in ("vip_address", "vip_cidrmask"):
                    if v1[k][1]:
                        self.row(self._label(c, v1[k][1]), k, MAPPED, "unused without vip_mode l2")
            else:
                self.row(label, "vip_mode", UNSUPPORTED, "%s: ours has the L2 VIP (vip-manager) "
                         "only" % _short(mode))
                for k in ("vip_address", "vip_cidrmask"):
                    if v1[k][1]:
                        self.row(self._label(c, v1[k][1]), k, UNSUPPORTED, "vip_mode %s is not "
                                 "supported" % _short(mode))
        for key in ("vip_interface", "pg_vip_interface"):
            value, s = (v1 if key == "vip_interface" else v2)[key]
            if s:
                self._write(where, "pg_vip_interface", value)
                self.row(self._label(c, s), key, MAPPED if key == "pg_vip_interface" else CHANGED,
                         _short(value) if key == "pg_vip_interface" else "-> pg_vip_interface %s" % value,
                         ref=(where, "pg_vip_interface"))

    def _secrets(self, c):
        where = ("private", c)
        for key in C.SECRETS:
            value, s = self._eff(c, key)
            value = _text(value)
            if isinstance(value, str) and value:
                self._write(where, key, value)
                detail = "moved to the cluster's private file" if s == GLOBAL else "private file"
                if value in C.PUBLISHED_PASSWORDS:
                    detail += "; this is Pigsty's published default password: change it"
                self.row(self._label(c, s), key, CHANGED if s == GLOBAL or value in C.PUBLISHED_PASSWORDS
                         else MAPPED, detail, ref=(where, key))
            else:
                self._write(where, key, self.new_password())
                self.row(self._label(c, s) if s else c, key, CHANGED,
                         "not in the inventory (Pigsty would use its published default): a random "
                         "password was generated in the cluster's private file", ref=(where, key))

    # ---- users
    def _user(self, spec):
        """(user, notes) or (None, reason)."""
        if not isinstance(spec, dict):
            return None, "expected a mapping with name"
        name = spec.get("name")
        if not isinstance(name, str) or not pigsty_inventory.PG_NAME_RE.fullmatch(name):
            return None, "name %r is not a user name we accept (lowercase letters, digits, '_')" % (name,)
        user, notes = {"name": name}, []
        for key in spec:
            if key == "name":
                continue
            value = spec[key]
            if key in ("search_path", "admin"):
                notes.append("%s left out (not supported: %s)" % (key, {
                    "search_path": "use parameters: {search_path: ...}",
                    "admin": "grant with admin option"}[key]))
                continue
            if key in ("pool_mode", "pool_connlimit"):       # pgbouncer's [users] options
                if key == "pool_mode" and value not in pigsty_syntax.POOL_MODES or \
                        key == "pool_connlimit" and not (isinstance(value, int) and value >= -1):
                    notes.append("%s left out (%s is not a pgbouncer %s)" % (key, _short(value), key))
                else:
                    user[key] = value
                continue
            if key not in pigsty_sql.USER_FIELDS:
                notes.append("%s left out (unknown field)" % key)
                continue
            if key == "password":
                continue
            try:
                pigsty_sql.normalize_user({"name": name, key: value})
            except ValueError as exc:
                notes.append("%s left out (%s)" % (key, str(exc).split(": ", 1)[-1]))
                continue
            user[key] = value
        if "expire_in" in user and "expire_at" in user:
            del user["expire_at"]
            notes.append("expire_at left out: expire_in wins, as in Pigsty")
        if isinstance(user.get("roles"), list) and name in user["roles"]:
            user["roles"] = [r for r in user["roles"] if r != name]
        password = _text(spec.get("password"))
        login = user.get("login", True)
        if isinstance(password, str) and pigsty_sql.MD5_RE.fullmatch(password):
            user["password"] = self.new_password()
            notes.append("password: an md5 hash cannot become a SCRAM verifier and our HBA "
                         "authenticates with scram-sha-256: a random password was generated in the "
                         "private file; set the real one there")
        elif isinstance(password, str) and password and pigsty_sql._check_password(password) is None:
            user["password"] = password
            if not pigsty_sql.is_hashed(password):
                notes.append("password stored as a SCRAM-SHA-256 verifier")
            if password in C.PUBLISHED_PASSWORDS:
                notes.append("Pigsty's published default password: change it")
        elif password is not None:
            user["password"] = self.new_password()
            notes.append("password not usable: a random one was generated in the private file")
        elif login and user.get("state", "present") != "absent":
            user["password"] = self.new_password()
            notes.append("login user without a password (our validation requires one): a random "
                         "password was generated in the private file")
        first = [k for k in ("name", "password") if k in user]
        return {k: user[k] for k in first + [k for k in user if k not in first]}, notes

    def _users(self, c):
        where = ("private", c)
        users, names = [], set(self._names(c).values())
        value, s = self._eff(c, "pg_default_roles")
        if s:
            self._default_roles(c, value, s, users, names)
        value, s = self._eff(c, "pg_users")
        label = self._label(c, s) if s else c
        items = value if isinstance(value, list) else []
        if s and not isinstance(value, list):
            self.row(label, "pg_users", UNSUPPORTED, "expected a list of users")
        elif s:
            self.row(label, "pg_users", MAPPED,
                     "%d user(s): private file (each below)" % len(items) if items else "empty")
        for i, spec in enumerate(items):
            try:
                user, notes = self._user(spec)
                pname = "pg_users[%s]" % (spec.get("name") if isinstance(spec, dict) and spec.get("name") else i)
                if user is None:
                    self.row(label, pname, UNSUPPORTED, notes)
                    continue
                if user["name"] in names:
                    self.row(label, pname, UNSUPPORTED, "defined twice, or a system user")
                    continue
                names.add(user["name"])
                users.append(user)
                self.row(label, pname, CHANGED if notes else MAPPED, "; ".join(notes) or "private file",
                         ref=(where, "pg_users", user["name"]))
            except UNREADABLE as exc:
                self.row(label, "pg_users[%d]" % i, UNSUPPORTED, "cannot read this entry: %s" % exc)
        if users:
            self._write(where, "pg_users", users)

    def _default_roles(self, c, value, s, users, names):
        label = self._label(c, s)
        if not isinstance(value, list):
            return self.row(label, "pg_default_roles", UNSUPPORTED, "expected a list of roles")
        builtin = {r["name"]: r for r in pigsty_sql.DEFAULT_ROLES}
        system = self._names(c)
        self.row(label, "pg_default_roles", CHANGED, "%d role(s): built-in ones are kept as ours "
                 "(each below); others are added to the cluster's pg_users" % len(value))
        for i, spec in enumerate(value):
            try:
                name = spec.get("name") if isinstance(spec, dict) else None
                pname = "pg_default_roles[%s]" % (name or i)
                if name in builtin:
                    mine = builtin[name]
                    same = (spec.get("login", True) == mine.get("login", True) and
                            sorted(spec.get("roles") or [], key=str) == sorted(mine.get("roles") or []))
                    ours = _short({k: v for k, v in mine.items() if k != "comment"}, 120)
                    self.row(label, pname, MAPPED if same else CHANGED, "our built-in role" + (
                        "" if same else " (its attributes are ours: %s)" % ours))
                elif name in system.values() or name in PLACEHOLDERS:
                    extra = sorted(set(spec) - SYSTEM_ROLE_FIELDS, key=str)
                    self.row(label, pname, CHANGED if extra else MAPPED,
                             "our built-in system user (its attributes are ours%s)" % (
                                 "; left out: %s" % ", ".join(extra) if extra else ""))
                else:
                    user, notes = self._user(spec)
                    if user is None:
                        self.row(label, pname, UNSUPPORTED, notes)
                        continue
                    if user["name"] in names:
                        self.row(label, pname, UNSUPPORTED, "defined twice")
                        continue
                    names.add(user["name"])
                    users.append(user)
                    self.row(label, pname, CHANGED, "; ".join(["added to pg_users (a default role of "
                             "every cluster in Pigsty)"] + notes), ref=(("private", c), "pg_users", user["name"]))
            except UNREADABLE as exc:
                self.row(label, "pg_default_roles[%d]" % i, UNSUPPORTED, "cannot read this entry: %s" % exc)

    # ---- databases
    def _databases(self, c):
        where = ("private", c)
        value, s = self._eff(c, "pg_databases")
        if not s:
            return
        label = self._label(c, s)
        if not isinstance(value, list):
            return self.row(label, "pg_databases", UNSUPPORTED, "expected a list of databases")
        self.row(label, "pg_databases", MAPPED, "%d database(s): private file (each below)" % len(value)
                 if value else "empty")
        users = {u["name"] for u in self.private_vars.get(c, {}).get("pg_users", [])}
        users |= set(self._names(c).values())
        dbs, seen = [], set()
        for i, spec in enumerate(value):
            try:
                name = spec.get("name") if isinstance(spec, dict) else None
                pname = "pg_databases[%s]" % (name or i)
                if not isinstance(name, str) or not pigsty_inventory.PG_NAME_RE.fullmatch(name):
                    self.row(label, pname, UNSUPPORTED, "name %r is not a database name we accept" % (name,))
                    continue
                if name in seen:
                    self.row(label, pname, UNSUPPORTED, "defined twice")
                    continue
                seen.add(name)
                db, notes = {"name": name}, []
                for key, v in spec.items():
                    if key == "name":
                        continue
                    if key == "baseline" and pigsty_baseline.name_problem(v) is None:
                        found = pigsty_baseline.in_roots(v, self.file_roots)
                        if found is False:
                            notes.append("baseline %s left out: the state tree has no %s/%s (copy "
                                         "Pigsty's files/%s there, then add baseline: %s back)" % (
                                             v, pigsty_baseline.DIRECTORY, v, v, v))
                            continue
                        if found is None:
                            notes.append("baseline %s: run once when the database is created; put "
                                         "Pigsty's files/%s in the state tree's %s/ (salt-run "
                                         "pigsty.validate checks it)" % (v, v, pigsty_baseline.DIRECTORY))
                    if key == "extensions" and isinstance(v, list):
                        kept, dropped = [], []
                        for e in v:
                            ename = e.get("name") if isinstance(e, dict) else e
                            (kept if ename in C.CONTRIB_EXTENSIONS else dropped).append(e)
                        if dropped:
                            notes.append("extensions %s left out (not in Debian's postgresql-15 "
                                         "contrib; install its package with pg_extensions, then "
                                         "add it back)" % ", ".join(
                                             str(e.get("name") if isinstance(e, dict) else e) for e in dropped))
                        if not kept:
                            continue
                        v = kept
                    if key not in pigsty_sql.DATABASE_FIELDS:
                        notes.append("%s left out (%s)" % (key, "not supported: pool settings are "
                                     "Pgbouncer's global ones" if key.startswith("pool_")
                                     else "not supported"))
                        continue
                    try:
                        pigsty_sql.normalize_database({"name": name, key: v})
                    except ValueError as exc:
                        notes.append("%s left out (%s)" % (key, str(exc).split(": ", 1)[-1]))
                        continue
                    if key == "owner" and v not in users:
                        notes.append("owner %s left out: not a user of this cluster" % v)
                        continue
                    db[key] = v
                try:
                    pigsty_sql.normalize_database(db)
                except ValueError as exc:
                    notes.append(str(exc))
                    for key in ("schemas", "extensions"):
                        db.pop(key, None)
                dbs.append(db)
                self.row(label, pname, CHANGED if notes else MAPPED, "; ".join(notes) or "private file",
                         ref=(where, "pg_databases", name))
            except UNREADABLE as exc:
                self.row(label, "pg_databases[%d]" % i, UNSUPPORTED, "cannot read this entry: %s" % exc)
        if dbs:
            self._write(where, "pg_databases", dbs)

    # ---- HBA
    def _builtin_lines(self, c, pgbouncer):
        conf = self._conf(c)
        conf["pigsty_meta_ips"] = sorted(ip for ip, n in self.nodes.items() if n["meta"])
        defaults = (pigsty_hba.default_pgbouncer_rules if pgbouncer else pigsty_hba.default_postgres_rules)(conf)
        out = {}
        for role in pigsty_hba.ROLES:
            rconf = dict(conf, pg_role="offline" if role == "offline" else "primary"
                         if role in ("common", "primary") else role, pg_offline_query=False)
            rules = [dict(r, role="common") for r in defaults if r.get("role", "common") == role]
            out[role] = set(self._render(rules, rconf, pgbouncer))
        return out, conf

    @staticmethod
    def _render(rules, conf, pgbouncer):
        return pigsty_hba.lines(rules, conf, ident_map=None if pgbouncer else pigsty_hba.IDENT_MAP,
                                comments=False)

    def _hba(self, c, pgbouncer):
        if pgbouncer:
            sources = (("pgbouncer_hba_rules", "pgbouncer_hba_rules_extra") if self.shape == "v1"
                       else ("pgb_default_hba_rules", "pgb_hba_rules"))
            sources += tuple(k for k in ("pgbouncer_hba_rules", "pgbouncer_hba_rules_extra",
                                         "pgb_default_hba_rules", "pgb_hba_rules") if k not in sources)
            ours = "pgb_hba_rules"
        else:
            sources = ("pg_hba_rules", "pg_hba_rules_extra", "pg_default_hba_rules")
            ours = "pg_hba_rules"
        where = ("private", c)
        builtin, conf = self._builtin_lines(c, pgbouncer)
        members = sorted(self.clusters[c]["members"])
        ctx = {"admin_ip": R.ipv4(self.gvars_in.get("admin_ip")), "members": members}
        names = self._names(c)
        out = []
        for key in sources:
            value, s = self._eff(c, key)
            if not s:
                continue
            label = self._label(c, s)
            if not isinstance(value, list):
                self.row(label, key, UNSUPPORTED, "expected a list of rules")
                continue
            if not value:
                self.row(label, key, MAPPED, "empty")
                continue
            self.row(label, key, CHANGED, "%d rule(s) -> %s, after our built-in rules (which come "
                     "first and cannot be replaced); each below" % (len(value), ours))
            for i, item in enumerate(value):
                try:
                    title = item.get("title") if isinstance(item, dict) else None
                    pname = "%s[%d]%s" % (key, i, " '%s'" % title if title else "")
                    self._hba_item(c, label, pname, item, pgbouncer, names, ctx, conf, builtin, out)
                except UNREADABLE as exc:
                    self.row(label, "%s[%d]" % (key, i), UNSUPPORTED, "cannot read this entry: %s" % exc)
        if out:
            self._write(where, ours, out)

    def _hba_item(self, c, label, pname, item, pgbouncer, names, ctx, conf, builtin, out):
        if not isinstance(item, dict):
            return self.row(label, pname, UNSUPPORTED, "expected a mapping")
        notes, rules = [], []
        role = item.get("role", "common")
        title = item.get("title")
        try:
            if "rules" in item:
                unknown = sorted(set(item) - {"title", "role", "rules", "order"}, key=str)
                if unknown:
                    raise ValueError("unknown field(s) %s" % ", ".join(unknown))
                for line in item.get("rules") or []:
                    try:
                        got, n = R.parse_hba_line(line, pgbouncer)
                    except ValueError as exc:
                        notes.append("line %r left out: %s" % (str(line).strip(), exc))
                        continue
                    for r in got:
                        r["user"] = R.substitute(r["user"], names)
                        r["db"] = R.substitute(r["db"], names)
                        if role != "common":
                            r["role"] = role
                        if "order" in item:
                            r["order"] = item["order"]
                    rules += got
                    notes += [x for x in n if x not in notes]
            else:
                rules, n = R.convert_v2_rule(item, names, ctx, pgbouncer)
                notes += n
        except ValueError as exc:
            return self.row(label, pname, UNSUPPORTED, str(exc))
        kept, dup = [], 0
        for r in rules:
            if title:
                r["title"] = str(title).replace("\n", " ")
            problems = pigsty_hba.rule_problems(r, pname, pgbouncer=pgbouncer)
            if problems:
                notes.append("%s left out: %s" % (R.rule_text(r), "; ".join(
                    p.split(": ", 1)[-1] for p in problems)))
                continue
            lines = set(self._render([dict(r, role="common")], conf, pgbouncer))
            if lines <= builtin.get(r.get("role", "common"), set()):
                dup += 1
                continue
            if r in out:
                dup += 1
                continue
            kept.append(r)
        kept = R.collapse_intra(kept)
        out += kept
        if not kept and dup and not any("left out" in n for n in notes):
            return self.row(label, pname, MAPPED, "already among our built-in rules (not written)")
        if dup:
            notes.append("%d already among our built-in rules (not written)" % dup)
        status = MAPPED if not notes else CHANGED
        if not kept and not dup:
            status = UNSUPPORTED
        text = "; ".join([", ".join(R.rule_text(r) for r in kept)] if kept else [])
        detail = "; ".join(x for x in [text] + notes if x)
        self.row(label, pname, status, detail or "nothing to carry over")

    # ---- services
    def _service(self, item, conf):
        """(service of ours, notes) or raise ValueError with the reason."""
        if not isinstance(item, dict):
            raise ValueError("expected a mapping")
        notes = []
        name = item.get("name")
        v1 = "src_port" in item or "dst_port" in item or "check_url" in item or "selector_backup" in item
        if v1:
            known = {"name", "src_ip", "src_port", "dst_port", "check_method", "check_port",
                     "check_url", "check_code", "selector", "selector_backup", "haproxy"}
            port, dest, check = item.get("src_port"), item.get("dst_port", "postgres"), item.get("check_url", "/")
            sel, backup, ip = item.get("selector", "[]"), item.get("selector_backup"), item.get("src_ip", "*")
            hap = item.get("haproxy") or {}
            if not isinstance(hap, dict):
                raise ValueError("haproxy: expected a mapping")
            maxconn, balance, options = hap.get("maxconn"), hap.get("balance"), hap.get("default_server_options")
            if item.get("check_method", "http") != "http":
                raise ValueError("check_method %r: HTTP checks only" % item.get("check_method"))
            if item.get("check_port", "patroni") not in ("patroni", conf["patroni_port"]):
                raise ValueError("check_port %r: ours checks Patroni" % item.get("check_port"))
            if item.get("check_code", 200) != 200:
                raise ValueError("check_code %r: ours expects 200" % item.get("check_code"))
            if "dst_port" not in item:
                notes.append("no dst_port: postgres, as Pigsty's template routes it")
        else:
            known = {"name", "ip", "port", "dest", "check", "selector", "backup", "maxconn",
                     "balance", "options"}
            port, dest, check = item.get("port"), item.get("dest", "default"), item.get("check", "/")
            sel, backup, ip = item.get("selector", "[]"), item.get("backup"), item.get("ip", "*")
            maxconn, balance, options = item.get("maxconn"), item.get("balance"), item.get("options")
        unknown = sorted(set(item) - known, key=str)
        if unknown:
            raise ValueError("unknown field(s) %s" % ", ".join(unknown))
        if not isinstance(name, str) or not pigsty_inventory.CLUSTER_RE.fullmatch(name):
            raise ValueError("name %r: expected a lowercase service name" % (name,))
        if ip not in ("*", None):
            raise ValueError("bind address %r: ours binds every address (*)" % ip)
        if dest == "default":
            dest = "pgbouncer"
            notes.append("dest default -> pgbouncer (pg_default_service_dest)")
        elif dest == conf["pg_port"]:
            dest = "postgres"
        elif dest == conf["pgbouncer_port"]:
            dest = "pgbouncer"
        if dest not in ("postgres", "pgbouncer"):
            raise ValueError("destination %r: ours routes to postgres or pgbouncer" % (dest,))
        if check in ("/", None):
            check = "/primary"
            notes.append("check / -> /primary (the same Patroni endpoint)")
        if not isinstance(check, str) or not check.startswith("/"):
            raise ValueError("check %r: expected a Patroni URL path" % (check,))
        try:
            ours_sel, ours_backup, differs = R.translate_selectors(sel, backup, conf.get("_kinds"))
        except R.SelectorError as exc:
            raise ValueError("selector %s / backup %s: %s" % (sel, backup, exc)) from None
        if differs:
            notes.append("selector %s / backup %s -> %s / %s: the same servers for this cluster's "
                         "members; a member that is %s would be routed differently" % (
                             sel, backup, ours_sel, ours_backup, " or ".join(differs)))
        svc = {"name": name, "port": port, "dest": dest, "check": check,
               "selector": ours_sel, "backup": ours_backup}
        if balance is not None:
            if balance not in ("roundrobin", "leastconn", "first", "source"):
                raise ValueError("balance %r: expected roundrobin, leastconn, first or source" % balance)
            svc["balance"] = balance
        if maxconn is not None:
            if not _is_int(maxconn) or maxconn < 1:
                raise ValueError("maxconn %r: expected a positive integer" % (maxconn,))
            svc["maxconn"] = maxconn
        if options is not None:
            if " ".join(str(options).split()) == C.PIGSTY_SERVER_OPTIONS:
                notes.append("server options: ours come from the HA timing plan (pg_rto_plan)")
            else:
                raise ValueError("server options %r: ours come from the HA timing plan" % options)
        return svc, notes

    def _services(self, c):
        where = ("cluster", c)
        conf = self._conf(c)
        conf["_kinds"] = {(m["pg_role"], bool(m.get("pg_offline_query")))
                          for m in self.hosts_out[c].values()}
        if self.shape == "v1":
            default_key, extra_keys = "pg_services", ("pg_services_extra",)
        else:
            default_key, extra_keys = "pg_default_services", ("pg_services", "pg_services_extra")
        extras = []
        builtin = {s["name"]: s for s in D.DEFAULT_SERVICES}
        value, s = self._eff(c, default_key)
        if s:
            label = self._label(c, s)
            if not isinstance(value, list):
                self.row(label, default_key, UNSUPPORTED, "expected a list of services")
            else:
                names = [i.get("name") for i in value if isinstance(i, dict)]
                missing = [n for n in builtin if n not in names]
                self.row(label, default_key, CHANGED if missing else MAPPED,
                         "the default services: ours are built in (each below)" + (
                             "; ours also run %s" % ", ".join(missing) if missing else ""))
                for i, item in enumerate(value):
                    try:
                        name = item.get("name") if isinstance(item, dict) else None
                        pname = "%s[%s]" % (default_key, name or i)
                        self._default_service(label, pname, item, conf, builtin, extras)
                    except UNREADABLE as exc:
                        self.row(label, "%s[%d]" % (default_key, i), UNSUPPORTED, "cannot read this entry: %s" % exc)
        for key in extra_keys:
            value, s = self._eff(c, key)
            if not s:
                continue
            label = self._label(c, s)
            if not isinstance(value, list):
                self.row(label, key, UNSUPPORTED, "expected a list of services")
                continue
            self.row(label, key, MAPPED, "%d extra service(s) -> pg_services (each below)" % len(value)
                     if value else "empty")
            for i, item in enumerate(value):
                try:
                    name = item.get("name") if isinstance(item, dict) else None
                    pname = "%s[%s]" % (key, name or i)
                    try:
                        svc, notes = self._service(item, conf)
                    except ValueError as exc:
                        self.row(label, pname, UNSUPPORTED, str(exc))
                        continue
                    if svc["name"] in builtin or any(e["name"] == svc["name"] for e in extras):
                        self.row(label, pname, UNSUPPORTED, "service %s is defined twice (or is one of "
                                 "our built-in services)" % svc["name"])
                        continue
                    extras.append(svc)
                    self.row(label, pname, CHANGED if notes else MAPPED, "; ".join(
                        ["-> %s" % _svc_text(svc)] + notes), ref=(where, "pg_services", svc["name"]))
                except UNREADABLE as exc:
                    self.row(label, "%s[%d]" % (key, i), UNSUPPORTED, "cannot read this entry: %s" % exc)
        if extras:
            self._write(where, "pg_services", extras)

    def _default_service(self, label, pname, item, conf, builtin, extras):
        try:
            svc, notes = self._service(item, conf)
        except ValueError as exc:
            name = item.get("name") if isinstance(item, dict) else None
            if name in builtin:
                return self.row(label, pname, CHANGED, "cannot be translated (%s); our built-in "
                                "%s service (%s) runs instead" % (exc, name, _svc_text(builtin[name])))
            return self.row(label, pname, UNSUPPORTED, str(exc))
        mine = builtin.get(svc["name"])
        if mine is None:
            extras.append(svc)
            return self.row(label, pname, CHANGED, "not one of our built-in services: added as an "
                            "extra service -> %s" % _svc_text(svc),
                            ref=(("cluster", self._current), "pg_services", svc["name"]))
        live_reads = svc["name"] == "replica" and svc["check"] in ("/read-only", "/replica") \
            and mine["check"] == "/replica"
        diffs = ["%s %s (ours %s)" % (k, svc[k], mine[k]) for k in ("port", "dest", "check")
                 if svc[k] != mine[k] and not (k == "check" and live_reads)]
        if live_reads and svc["check"] != mine["check"]:
            notes = list(notes) + ["check %s -> %s: ours serves the live replicas and falls back to the "
                                   "live primary" % (svc["check"], mine["check"])]
        if diffs:
            return self.row(label, pname, UNSUPPORTED, "our built-in %s service is fixed: %s" % (
                svc["name"], ", ".join(diffs)))
        sel = item.get("selector", "[]")
        backup = item.get("selector_backup", item.get("backup"))
        diff = R.membership_difference(sel, backup, mine["selector"], mine["backup"])
        extra = [k for k in ("balance", "maxconn") if k in svc and svc[k] != {"balance": "roundrobin",
                                                                              "maxconn": 3000}[k]]
        notes = list(notes) + (["members differ: " + "; ".join(diff)] if diff else []) + (
            ["%s left out (ours is fixed)" % ", ".join(extra)] if extra else [])
        if svc["selector"] != mine["selector"] or svc["backup"] != mine["backup"]:
            if not diff:
                notes.append("same members as ours")
        return self.row(label, pname, CHANGED if notes else MAPPED, "our built-in %s service%s" % (
            svc["name"], (": " + "; ".join(notes)) if notes else ""))

    # -------------------------------------------------------------- run
    def run(self):
        gvars, groups = self._groups()
        self.gvars_in = gvars
        self.shape = self._detect_shape(gvars, groups)
        pg, meta, etcd, other = self._classify(groups)
        if not pg:
            raise Refused("all.children", "no PostgreSQL cluster (expected a group with pg_cluster "
                          "in its vars, or hosts with pg_seq and pg_role)")
        self._check_clusters(pg)
        meta_ips = self._meta_ips(meta)
        self.meta_groups = meta
        self._node_ids(meta_ips, groups)
        self.row("inventory", "shape", MAPPED, "read as Pigsty %s" % self.shape)

        # global parameters (composed ones are reported per cluster)
        for key in sorted(gvars, key=str):
            if key in C.COMPOSED:
                continue
            self.param(GLOBAL, "global", key, gvars[key])
        # groups we do not write: meta / infra / etcd / others
        for g in meta:
            self._aux_group(g, "meta (admin) nodes", meta_ips)
        for g in etcd:
            ips = [self._host_ip(k, v, "%s.hosts.%s" % (g["path"], k)) for k, v in g["hosts"].items()]
            inside = set(ips) <= set(meta_ips)
            self.row("group " + g["name"], "hosts", MAPPED if inside else CHANGED,
                     "etcd members %s: ours runs etcd on the meta nodes (%s)%s" % (
                         ", ".join(ips), ", ".join(meta_ips), "" if inside else
                         "; members elsewhere are not run (DCS on any nodes needs a validation change)"))
            for key in sorted(g["own_vars"], key=str):
                self.param("group " + g["name"], None, key, g["own_vars"][key])
            self._aux_hostvars(g)
        for g, component in other:
            hosts = len(g["hosts"])
            if component:
                self.row("group " + g["name"], "(group)", SKIPPED, "%s (%d host%s): %s" % (
                    component[0], hosts, "" if hosts == 1 else "s", component[1]))
            else:
                self.row("group " + g["name"], "(group)", SKIPPED, "%d host(s), no pg_cluster: not a "
                         "group we run (nodes outside a cluster get no role)" % hosts)
        # clusters
        for name in sorted(self.clusters):
            self._current = name
            self._cluster(name)
        self._current = None
        for key in sorted(set(gvars) & C.COMPOSED, key=str):
            if (GLOBAL, key) not in self.consumed:
                self.row(GLOBAL, key, MAPPED if self.shape == "v1" or key not in (
                    "pg_services_extra",) else UNSUPPORTED,
                         "every cluster sets its own value, which Pigsty uses; nothing to carry "
                         "over" if any((c, key) in self.consumed for c in self.clusters) else
                         "not read for the %s shape of the inventory" % self.shape)
        for c in sorted(self.clusters):
            for key in sorted(set(self.clusters[c]["group"]["vars"]) & C.COMPOSED, key=str):
                if (c, key) not in self.consumed:
                    self.row(c, key, UNSUPPORTED, "not read for the %s shape of the inventory" % self.shape)
        self._check_and_prune()
        return self.result()

    def _aux_group(self, g, what, meta_ips):
        scope = "group " + g["name"]
        ips = [R.ipv4(k) or R.ipv4((v or {}).get("ansible_host")) for k, v in g["hosts"].items()]
        self.row(scope, "hosts", MAPPED, "%s: %s" % (what, ", ".join(
            self.nodes[ip]["id"] for ip in ips if ip in self.nodes)))
        for key in sorted(g["own_vars"], key=str):
            value = g["own_vars"][key]
            if key in D.INFRA_PARAMS or key in D.DEFAULTS:
                self._meta_param(scope, key, value)
            elif LG.is_log_param(key):    # the log store runs on the meta nodes
                self.param(scope, "meta", key, value)
            else:
                self.param(scope, None, key, value)
        self._aux_hostvars(g)

    def _meta_param(self, scope, key, value):
        if key not in D.INFRA_PARAMS:
            return self.param(scope, None, key, value)
        if key in self.gvars_in and self.gvars_in[key] != value:
            return self.row(scope, key, UNSUPPORTED, "%s: differs from the global value; ours has "
                            "one value for every meta node" % _short(value))
        return self.param(scope, "global", key, value)

    def _aux_hostvars(self, g):
        for key, hv in g["hosts"].items():
            if hv is not None and not isinstance(hv, dict):
                self.row("%s host %s" % (g["name"], key), "(host)", UNSUPPORTED,
                         "expected the host's variables (a mapping), got %s" % _short(hv))
                continue
            for hk in sorted(hv or {}, key=str):
                self.param("%s host %s" % (g["name"], key), None, hk, hv[hk])

    def _cluster(self, c):
        info = self.clusters[c]
        g = info["group"]
        where = ("cluster", c)
        self.public_vars.setdefault(c, {})
        self.private_vars.setdefault(c, {})
        if g["name"] != c:
            self.row(g["path"], "(group)", CHANGED, "cluster named %s after its pg_cluster" % c)
        for key in sorted(g["vars"], key=str):
            if key in C.COMPOSED:
                continue
            scope = c if key in g["own_vars"] else "%s (from a parent group)" % c
            self.param(scope, where, key, g["vars"][key])
        hosts = {}
        for ip, m in sorted(info["members"].items(), key=lambda kv: kv[1]["seq"]):
            member = {"pg_seq": m["seq"], "pg_role": m["role"]}
            scope = "%s host %s" % (c, m["key"])
            if m["role"] == "standby":
                pg_conf = str(g["vars"].get("pg_conf", self.gvars_in.get("pg_conf", "")))
                pg_rpo = g["vars"].get("pg_rpo", self.gvars_in.get("pg_rpo"))
                if pg_conf in ("crit", "crit.yml") or pg_rpo == 0:
                    self.row(scope, "pg_role", MAPPED, "standby: a synchronous standby (only the "
                             "cluster's standby members may be Patroni's synchronous standby)")
                else:
                    member["pg_role"] = "replica"
                    self.row(scope, "pg_role", CHANGED, "standby -> replica: the cluster replicates "
                             "asynchronously (ours: standby is a synchronous standby, with pg_rpo: 0 "
                             "or pg_conf: crit)")
            elif m["role"] == "delayed":
                member["pg_role"] = "replica"
                self.row(scope, "pg_role", CHANGED, "delayed -> replica: %s" % D.ROLES_ELSEWHERE["delayed"])
            else:
                self.row(scope, "pg_role", MAPPED, m["role"])
            self.row(scope, "pg_seq", MAPPED, "%s (instance %s-%s on minion %s)" % (
                m["seq"], c, m["seq"], self.nodes[ip]["id"]))
            for hk in sorted(m["vars"], key=str):
                if hk in ("pg_seq", "pg_role"):
                    continue
                value = m["vars"][hk]
                if hk == "pg_offline_query":
                    if isinstance(value, bool):
                        if value:
                            member[hk] = True
                        self.row(scope, hk, MAPPED, _short(value), ref=(("host", c, ip), hk))
                    else:
                        self.row(scope, hk, UNSUPPORTED, "%s: expected true or false" % _short(value))
                elif hk in ("nodename", "ansible_host") and hk == "nodename":
                    self._p_nodename(scope, None, hk, value)
                elif hk == "pg_weight":
                    cval = g["vars"].get(hk, self.gvars_in.get(hk, D.DEFAULTS[hk]))
                    if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 256):
                        self.row(scope, hk, UNSUPPORTED, "%s: expected an integer 0-256" % _short(value))
                    elif value == cval:
                        self.row(scope, hk, MAPPED, "%s: same as the cluster's value" % value)
                    else:
                        member[hk] = value
                        self.row(scope, hk, MAPPED, "%s (HAProxy server weight)" % value,
                                 ref=(("host", c, ip), hk))
                elif hk == "pg_listen":
                    cval = g["vars"].get(hk, self.gvars_in.get(hk, D.DEFAULTS[hk]))
                    if value == cval:
                        self.row(scope, hk, MAPPED, "%s: same as the cluster's value" % _short(value))
                    elif not isinstance(value, str):
                        self.row(scope, hk, UNSUPPORTED, "%s: expected a comma-separated list of "
                                 "addresses" % _short(value))
                    else:
                        member[hk] = value
                        self.row(scope, hk, MAPPED, "%s (this member's listen addresses)" % _short(value),
                                 ref=(("host", c, ip), hk))
                elif hk in ("pg_delay", "pg_upstream"):
                    self._standby_member(scope, c, ip, m, member, hk, value)
                elif hk.startswith("ansible_"):
                    self.param(scope, None, hk, value)
                elif hk in C.COMPOSED or hk in C.DIRECT or hk in D.DEFAULTS:
                    cval = g["vars"].get(hk, self.gvars_in.get(hk))
                    if value == cval:
                        self.row(scope, hk, MAPPED, "same as the cluster's value")
                    else:
                        self.row(scope, hk, UNSUPPORTED, "%s: a per-instance value; ours sets "
                                 "this per cluster" % ("(secret, not shown)" if C.SECRET_NAME_RE.search(hk)
                                                       else _short(value)))
                else:
                    self.param(scope, None, hk, value)
            hosts[ip] = member
        self.hosts_out[c] = hosts
        self.compose(c)

    # -------------------------------------------------------------- result and checks
    def public(self):
        nodes = {}
        for ip, n in self.nodes.items():
            entry = {"ip": ip}
            if n["meta"]:
                entry["meta"] = True
            nodes[n["id"]] = entry
        clusters = {}
        for c in sorted(self.clusters):
            clusters[c] = {"hosts": self.hosts_out[c], "vars": dict(sorted(self.public_vars.get(c, {}).items()))}
        return {"pigsty": {"vars": dict(sorted(self.gvars_out.items())), "nodes": nodes,
                           "clusters": clusters}}

    def private(self):
        order = list(C.SECRETS) + ["pg_users", "pg_databases", "pg_hba_rules", "pgb_hba_rules"]
        out = {}
        for c in sorted(self.clusters):
            v = self.private_vars.get(c, {})
            out[c] = {"pigsty": {"clusters": {c: {"vars": {k: v[k] for k in order if k in v}}}}}
        return out

    def merged(self):
        pillar = copy.deepcopy(self.public())
        for c, priv in self.private().items():
            pillar["pigsty"]["clusters"][c]["vars"].update(
                copy.deepcopy(priv["pigsty"]["clusters"][c]["vars"]))
        return pillar

    def _drop(self, where, key, message):
        rows = self.written.pop((where, key), [])
        if where != "global":
            rows += self.written.pop((("private", where[1]), key), [])
        if where == "global":
            self.gvars_out.pop(key, None)
        else:
            for store in (self.public_vars, self.private_vars):
                store.get(where[1], {}).pop(key, None)
        for r in rows:
            r["status"] = UNSUPPORTED
            r["detail"] = "left out: our validation refuses it: %s" % message
        return bool(rows) or True

    def _check_and_prune(self):
        """Run our validation on the result; leave out whatever it refuses (reported with its
        message). What cannot be left out is a bug of the importer: raised."""
        for _round in range(20):
            problems = pigsty_inventory.validate(self.merged())
            if not problems:
                return
            progress = False
            for problem in problems:
                progress |= self._prune(problem)
            if not progress:
                break
        problems = pigsty_inventory.validate(self.merged())
        if problems:
            raise Refused("import", "the result would not pass validation:\n  - " + "\n  - ".join(problems))

    def _prune(self, problem):
        path, _, message = problem.partition(": ")
        parts = path.split(":")
        if parts[:2] == ["pigsty", "vars"] and len(parts) >= 3:
            m = re.fullmatch(r"(\w+)\[(\d+)\]", parts[2])
            if m and isinstance(self.gvars_out.get(m.group(1)), list):
                items = self.gvars_out[m.group(1)]
                index = int(m.group(2))
                if index < len(items):
                    dropped = items.pop(index)
                    for r in self.written.get(("global", m.group(1)), []):
                        r["status"] = CHANGED
                        r["detail"] += "; left out %r: %s" % (dropped, message)
                    return True
            return self._drop("global", re.sub(r"\[.*", "", parts[2]), message)
        if parts[:2] == ["pigsty", "clusters"] and len(parts) >= 4:
            c = parts[2]
            if parts[3] == "vars":
                if len(parts) == 4:
                    m = re.search(r"port \d+ of (\w+) clashes", message) or re.search(
                        r"clashes with (\w+)$", message)
                    if m and m.group(1) in D.DEFAULTS:
                        return self._drop(("cluster", c), m.group(1), message)
                    m = re.search(r"clashes with service (\S+)", message) or re.search(
                        r"port \d+ of service (\S+) clashes", message)
                    if m:
                        return self._drop_item(c, "pg_services", m.group(1), message)
                    return False
                key = parts[4]
                m = re.fullmatch(r"(\w+)\[(.+)\]", key)
                if m:
                    return self._drop_item(c, m.group(1), m.group(2), message, parts[5:])
                if key in ("pg_vip_address", "pg_vip_enabled"):
                    self._drop(("cluster", c), "pg_vip_enabled", message)
                return self._drop(("cluster", c), key, message)
            if parts[3] == "hosts" and len(parts) >= 6:
                member = self.hosts_out.get(c, {}).get(parts[4])
                if member and parts[5] not in ("pg_seq", "pg_role"):
                    member.pop(parts[5], None)
                    for r in self.written.pop((("host", c, parts[4]), parts[5]), []):
                        r["status"], r["detail"] = UNSUPPORTED, "left out: " + message
                    return True
        return False

    def _drop_item(self, c, key, ident, message, rest=()):
        for store, kind in ((self.private_vars, "private"), (self.public_vars, "cluster")):
            items = store.get(c, {}).get(key)
            if not isinstance(items, list):
                continue
            for i, item in enumerate(items):
                if str(i) == ident or (isinstance(item, dict) and item.get("name") == ident):
                    if key == "pg_databases" and rest and rest[0] == "owner":
                        item.pop("owner", None)
                        for r in self.written.get(((kind, c), key, item["name"]), []):
                            r["status"] = CHANGED
                            r["detail"] += "; owner left out: " + message
                        return True
                    del items[i]
                    name = item.get("name") if isinstance(item, dict) else None
                    for r in self.written.pop(((kind, c), key, name), []):
                        r["status"], r["detail"] = UNSUPPORTED, "left out: " + message
                    if not items:
                        store[c].pop(key)
                    return True
        return False

    def result(self):
        counts = {s: sum(1 for r in self.rows if r["status"] == s) for s in STATUSES}
        rows = [{k: r[k] for k in ("scope", "param", "status", "detail")} for r in self.rows]
        return {"shape": self.shape, "public": self.public(), "private": self.private(),
                "rows": rows, "counts": counts,
                "summary": summary_line(counts, len(self.clusters), len(self.nodes))}


def _svc_text(s):
    text = "%s %s -> %s, check %s, %s" % (s["name"], s["port"], s["dest"], s["check"], s["selector"])
    if s.get("backup"):
        text += " (backup %s)" % s["backup"]
    return text


def summary_line(counts, clusters, nodes):
    return ("%d cluster(s), %d node(s); %d rows (parameters and their entries): %d mapped, "
            "%d changed, %d not supported, %d skipped" % (
                clusters, nodes, sum(counts.values()), counts[MAPPED], counts[CHANGED],
                counts[UNSUPPORTED], counts[SKIPPED]))


def convert(doc, meta=None, password_factory=None, file_roots=None):
    """Import a parsed inventory: {"shape", "public", "private", "rows", "counts",
    "summary"}; Refused naming the field for input that cannot be imported. ``file_roots``:
    the master's option, where databases' baseline files are looked for."""
    if not isinstance(doc, dict):
        raise Refused("path", "not a Pigsty inventory (expected a mapping with 'all')")
    return Importer(doc, meta=meta, password_factory=password_factory,
                    file_roots=file_roots).run()


# ------------------------------------------------------------------ output
def table_lines(rows, statuses=STATUSES):
    """The table as text lines, one per row, grouped by status."""
    out = []
    for status in statuses:
        for r in rows:
            if r["status"] == status:
                out.append("%-11s %-28s %-34s %s" % (status, r["scope"], r["param"], r["detail"]))
    return out


HEADER_PUBLIC = """\
# Pigsty inventory: the public part, read by every node.
# Imported from a Pigsty %(shape)s inventory (%(source)s) by `salt-run pigsty.import`.
# Users, databases, access rules and passwords are in clusters/<cluster>.sls, which only
# that cluster's members receive (top.sls). Parameters and defaults: _utils/pigsty_defaults.py.
# Minion ids: each node's salt minion id must be the key it has under `nodes`.
"""
HEADER_PRIVATE = """\
# %(cluster)s private vars: only the cluster's members receive this file (top.sls).
# Imported from a Pigsty %(shape)s inventory (%(source)s) by `salt-run pigsty.import`.
# It holds passwords: keep it mode 0600, out of version control.
"""


def dump(data):
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False, allow_unicode=True,
                          width=100)


JINJA_MARKS = ("{{", "{%", "{#")


def jinja_safe(text):
    """Salt renders pillar files (and top.sls's import_yaml) with Jinja first: a value that
    holds Jinja's markers (a password "a{{b", say) is kept verbatim inside a raw block."""
    if not any(mark in text for mark in JINJA_MARKS):
        return text
    if re.search(r"{%-?\s*endraw", text):
        raise Refused("import", "a value holds Jinja's {% endraw %}, which a pillar file "
                      "cannot carry verbatim")
    return "{% raw %}\n" + text + "{% endraw %}\n"


def render_files(result, source="inventory"):
    """{relative path: (text, mode)} of the pillar files."""
    files = {"pigsty.sls": (HEADER_PUBLIC % {"shape": result["shape"], "source": source}
                            + jinja_safe(dump(result["public"])), 0o644)}
    for cluster, data in sorted(result["private"].items()):
        files[os.path.join("clusters", "%s.sls" % cluster)] = (
            HEADER_PRIVATE % {"cluster": cluster, "shape": result["shape"], "source": source}
            + jinja_safe(dump(data)), 0o600)
    return files


def write_atomic(path, text, mode):
    """Write ``text`` to ``path`` through a temporary file in the same directory, created with
    ``mode`` (never readable by others first), then renamed over the target."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, ".%s.%d.%s.tmp" % (os.path.basename(path), os.getpid(),
                                                     secrets.token_hex(4)))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
