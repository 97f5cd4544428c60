"""etcd's membership follows the inventory (dcs_servers): members join as learners, then vote.

The first member (``Inventory.dcs_members``: a meta node) bootstraps a cluster of one; every
other member joins it, one at a time (etcd 3.4 takes one learner at a time), in etcd's safe
order, driven by the first member's node, which holds root's password (orch.dcs):

1. ``etcdctl member add NAME --peer-urls=URL --learner``: a learner replicates but does not
   vote, so adding one never changes the quorum (a voting member added before it runs would
   leave a cluster of one without a majority until it starts);
2. the new member's node starts etcd with ``ETCD_INITIAL_CLUSTER_STATE=existing`` and the
   cluster's members as etcd lists them then (``join_env``: etcd checks its list against the
   cluster's, so it is read, not derived from the inventory);
3. ``etcdctl member promote ID`` once the learner has caught up (etcd refuses before); then
   the next member is added.

Members that are not in the inventory are reported, never removed here (removing a voting
member shrinks the quorum: an operator's decision, ``etcdctl member remove``).

etcdctl (v3, gRPC) is used because etcd 3.4's HTTP gateway refuses every request once v3
authentication is on and clients present certificates (pigsty_etcd.GATEWAY_REFUSES_CN).
Its credentials go in its environment (``ETCDCTL_USER``), never on its command line.

Pure Python (standard library), no Salt import: the functional test runs it against real etcds.
"""
import json
import os
import subprocess
import time

LEARNER_NOT_READY = "can only promote a learner member which is in sync with leader"
# etcd adds a member only once its leader has been connected to every voting member for 5 s
# (--strict-reconfig-check): right after a promotion it says so
NOT_CONNECTED_LONG_ENOUGH = "etcdserver: unhealthy cluster"
PROMOTE_WAIT = 60.0        # seconds a started learner may take to catch up


class MembersError(Exception):
    """etcdctl failed; the message says what was asked and etcd's answer (no credential)."""


def peer_url(ip, port):
    return "https://%s:%d" % (ip, port)


def client_url(ip, port):
    return "https://%s:%d" % (ip, port)


def initial_cluster(members, port):
    """ETCD_INITIAL_CLUSTER of ``members`` ([{name, ip}]): ``name=https://ip:port,...``."""
    return ",".join("%s=%s" % (m["name"], peer_url(m["ip"], port)) for m in members)


def bootstrap_env(members, port):
    """ETCD_INITIAL_CLUSTER / _STATE of the first member: a new cluster of itself."""
    return {"ETCD_INITIAL_CLUSTER": initial_cluster(members[:1], port), "ETCD_INITIAL_CLUSTER_STATE": "new"}


def join_env(live, me, url):
    """ETCD_INITIAL_CLUSTER / _STATE of member ``me`` (its name; ``url`` its peer URL)
    joining the cluster whose members are ``live`` (as etcd lists them: the member added
    for ``me`` has no name until it starts). Raises MembersError when the cluster does not
    list ``url`` (not added yet: the first member's node adds it)."""
    parts, found = [], False
    for m in live:
        if url in m["peer_urls"]:
            found = True
            parts.append("%s=%s" % (me, url))
        elif not m["name"]:
            raise MembersError("member %s was added but has not started: etcd takes one joining "
                               "member at a time" % ",".join(m["peer_urls"]))
        else:
            parts.extend("%s=%s" % (m["name"], u) for u in m["peer_urls"])
    if not found:
        raise MembersError("%s (%s) is not a member of the etcd cluster yet: the first member's node "
                           "adds it (salt-run state.orchestrate orch.dcs)" % (me, url))
    return {"ETCD_INITIAL_CLUSTER": ",".join(sorted(parts)), "ETCD_INITIAL_CLUSTER_STATE": "existing"}


def parse_v2_members(answer):
    """The member list of etcd's ``GET /v2/members`` answer, shaped like Etcdctl.members."""
    out = []
    for m in (answer or {}).get("members") or ():
        out.append({"id": int(m.get("id") or "0", 16), "name": m.get("name") or "",
                    "peer_urls": list(m.get("peerURLs") or ()), "client_urls": list(m.get("clientURLs") or ()),
                    "learner": False})
    return out


class Etcdctl:
    """etcdctl (API v3) against ``endpoints`` with a client certificate and, when etcd's
    authentication is on, root's password, both through the environment."""

    def __init__(self, endpoints, cacert, cert, key, user=None, password=None, binary="etcdctl",
                 timeout=10):
        self.binary = binary
        self.timeout = timeout
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ETCDCTL_API": "3",
                    "ETCDCTL_ENDPOINTS": ",".join(endpoints), "ETCDCTL_CACERT": cacert,
                    "ETCDCTL_CERT": cert, "ETCDCTL_KEY": key,
                    "ETCDCTL_DIAL_TIMEOUT": "3s", "ETCDCTL_COMMAND_TIMEOUT": "5s"}
        if user is not None:
            self.env["ETCDCTL_USER"] = "%s:%s" % (user, password)

    def run(self, *args):
        try:
            proc = subprocess.run([self.binary] + list(args), env=self.env, capture_output=True, text=True,
                                  timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MembersError("etcdctl %s: %s" % (" ".join(args[:2]), exc)) from None
        if proc.returncode != 0:
            raise MembersError("etcdctl %s: %s" % (" ".join(args[:2]), (proc.stderr or proc.stdout).strip()[-400:]))
        return proc.stdout

    def members(self):
        """The cluster's members: [{id, name, peer_urls, client_urls, learner}]; a member
        added but never started has no name yet."""
        out = json.loads(self.run("member", "list", "-w", "json"))
        return [{"id": int(m["ID"]), "name": m.get("name") or "", "peer_urls": list(m.get("peerURLs") or ()),
                 "client_urls": list(m.get("clientURLs") or ()), "learner": bool(m.get("isLearner"))}
                for m in out.get("members") or ()]

    def add_learner(self, name, url):
        self.run("member", "add", name, "--peer-urls=" + url, "--learner")

    def promote(self, member_id):
        self.run("member", "promote", "%x" % member_id)


def plan(wanted, live, port):
    """What membership needs: ``wanted`` the inventory's members ([{name, ip}], in order),
    ``live`` the cluster's (Etcdctl.members). Returns {"promote": [names of started
    learners], "waiting": [names of learners not started yet], "add": [the next missing
    member, when no learner is left after the promotions: one at a time], "pending":
    [missing members after it], "unknown": [peer URLs of members the inventory lacks]}."""
    by_url = {}
    for m in live:
        for url in m["peer_urls"]:
            by_url[url] = m
    out = {"add": [], "promote": [], "waiting": [], "pending": [], "unknown": []}
    urls, missing = set(), []
    for w in wanted:
        url = peer_url(w["ip"], port)
        urls.add(url)
        m = by_url.get(url)
        if m is None:
            missing.append(w["name"])
        elif m["learner"]:
            out["promote" if m["name"] else "waiting"].append(w["name"])
    if missing and not out["waiting"]:
        out["add"], out["pending"] = missing[:1], missing[1:]
    else:
        out["pending"] = missing
    out["unknown"] = sorted(m["peer_urls"][0] for m in live if m["peer_urls"] and m["peer_urls"][0] not in urls)
    return out


def converge(ctl, wanted, port, dry=False, wait=PROMOTE_WAIT, sleep=time.sleep, clock=time.monotonic):
    """One step of the membership towards ``wanted``: promote the started learners (retrying
    while etcd says one has not caught up, at most ``wait`` seconds), then add the next
    missing member as a learner. Returns (changes {"promoted": [...], "added": [...]} or,
    when ``dry``, what would be done, and the plan). Raises MembersError when etcd refuses."""
    steps = plan(wanted, ctl.members(), port)
    changes = {}
    if steps["promote"]:
        changes["promoted"] = list(steps["promote"])
    if steps["add"]:
        changes["added"] = list(steps["add"])
    if dry:
        return changes, steps
    by_name = {w["name"]: w for w in wanted}
    deadline = clock() + wait
    if steps["promote"]:
        urls = {peer_url(by_name[n]["ip"], port): n for n in steps["promote"]}
        for m in ctl.members():
            name = next((urls[u] for u in m["peer_urls"] if u in urls), None)
            if name is None or not m["learner"]:
                continue
            while True:
                try:
                    ctl.promote(m["id"])
                    break
                except MembersError as exc:
                    if LEARNER_NOT_READY not in str(exc) or clock() > deadline:
                        raise MembersError("%s: not promoted: %s" % (name, exc)) from None
                    sleep(1.0)
    for name in steps["add"]:
        while True:
            try:
                ctl.add_learner(name, peer_url(by_name[name]["ip"], port))
                break
            except MembersError as exc:
                if NOT_CONNECTED_LONG_ENOUGH not in str(exc) or clock() > deadline:
                    raise MembersError("%s: not added: %s" % (name, exc)) from None
                sleep(1.0)
    return changes, steps
