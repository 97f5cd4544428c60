"""pg-test, the sandbox's three-member cluster, as the integration tests see it: its members
and credentials, who leads and who streams (from Patroni and Postgres, not from pillar), what
HAProxy holds and who has the VIP, a writer that counts its commits, and putting the cluster
back the way orch.site leaves it (every node running, pg-test-1 leading, two streaming
replicas, nothing held). One copy for every integration module (they used to import these
from each other, which tied them to the order of their file names)."""
import json
import subprocess
import threading
import time

import psycopg2

import patroni_rest
from pg import query, user_password
from sandbox_cli import SANDBOX, node_exec, salt_run, wait_for

IPS = {"pg-test-1": "10.10.10.11", "pg-test-2": "10.10.10.12", "pg-test-3": "10.10.10.13"}
NODE_OF = {"pg-test-1": "node-1", "pg-test-2": "node-2", "pg-test-3": "node-3"}
DBA = ("dbuser_dba", user_password("pg-test", "dbuser_dba"))
TEST = ("test", user_password("pg-test", "test"))
VIP = "10.10.10.3"


def orchestrate(sls, pillar, timeout=1800):
    """Run an orchestration; returns (ok, changed [(minion, state id)], failures, raw)."""
    res = node_exec("meta", "salt-run", "--out=json", "state.orchestrate", sls,
                    "pillar=" + json.dumps(pillar), timeout=timeout)
    try:
        doc = json.loads(res.stdout)
    except ValueError:
        return False, [], [res.stdout[-3000:] + res.stderr[-3000:]], res
    data = doc.get("data", doc)
    changed, failures = [], []
    for steps in data.values():
        if not isinstance(steps, dict):
            failures.append(str(steps))
            continue
        for sid, step in steps.items():
            if not step.get("result"):
                failures.append("%s: %s" % (sid, step.get("comment")))
            for minion, states in ((step.get("changes") or {}).get("ret") or {}).items():
                if not isinstance(states, dict):
                    continue
                for key, st in states.items():
                    if isinstance(st, dict) and st.get("changes"):
                        changed.append((minion, key.split("_|-")[1]))
    return res.returncode == 0 and not failures, changed, failures, res


# ------------------------------------------------------------------ who leads, who streams
def patroni_cluster(host="10.10.10.11"):
    return patroni_rest.get(host, "/cluster")


def leader(host):
    """The leader's name as the Patroni at ``host`` sees it (None: no answer, or no leader)."""
    try:
        for m in patroni_cluster(host)["members"]:
            if m["role"] in ("leader", "master", "primary"):
                return m["name"]
    except Exception:  # noqa: BLE001 - an unreachable member has no opinion
        return None
    return None


def live_leader():
    """pg-test's leader now, as the first member's Patroni that answers says (None: none)."""
    for ip in IPS.values():
        try:
            members = patroni_rest.get(ip, "/cluster", timeout=3)["members"]
        except Exception:  # noqa: BLE001 - try the next member
            continue
        return next((m["name"] for m in members if m.get("role") in ("leader", "master", "primary")), None)
    return None


def streaming_replicas():
    """The replicas streaming from pg-test-1 (its addresses), as pg-test-1 sees them."""
    rows = query(IPS["pg-test-1"], 5436, *DBA, "select host(client_addr), state from pg_stat_replication")
    return sorted(r[0] for r in rows if r[1] == "streaming")


def streaming_replicas_any():
    """The replicas streaming from whichever member is the primary (its addresses)."""
    for host in IPS.values():
        try:
            rows = query(host, 5436, *DBA, "select host(client_addr) from pg_stat_replication where state = 'streaming'")
            return sorted(r[0] for r in rows)
        except Exception:  # noqa: BLE001
            continue
    return []


def streaming_from(ip):
    doc = patroni_rest.get(ip, "/patroni", timeout=2)
    return {r["application_name"] for r in doc.get("replication") or [] if r.get("state") == "streaming"}


def ready_to_take_over(ip):
    """A switchover may go to the member at ``ip``: the leader sees it streaming, its own
    Patroni says it is running, and so does the cluster view the runner reads (the leader's
    /cluster, from the DCS: a member's key there is updated once per Patroni loop, so it may
    say "starting" a moment after the member itself says running; the runner rightly refuses
    such a candidate)."""
    if ip not in streaming_replicas_any():
        return False
    try:
        if patroni_rest.get(ip, "/patroni", timeout=3).get("state") != "running":
            return False
        doc = patroni_rest.get(ip, "/cluster", timeout=3)
    except Exception:  # noqa: BLE001
        return False
    return any(m.get("host") == ip and m.get("role") == "replica" and m.get("state") in ("running", "streaming")
               for m in doc.get("members", []))


def ready_candidate(instance):
    return ready_to_take_over(IPS[instance])


def healthy_cluster():
    return live_leader() in IPS and len(streaming_replicas_any()) == 2


# ------------------------------------------------------------------ HAProxy, hand-off, VIP
def handoff_state(node):
    res = node_exec("meta", "salt", "--out=json", node, "pigsty_handoff.state")
    return json.loads(res.stdout)[node]


def held(node):
    """The servers HAProxy on ``node`` holds (not READY, or held by a hand-off)."""
    res = node_exec("meta", "salt", "--out=json", node, "pigsty_haproxy.servers")
    servers = json.loads(res.stdout)[node]
    return sorted({s for be in servers.values() for s, st in be.items() if st["admin"] != "READY" or st["held"]})


def holds_vip(node):
    return VIP + "/24" in node_exec(node, "ip", "-4", "-o", "addr", "show", "dev", "eth1").stdout


# ------------------------------------------------------------------ moving the leader
def switchover(candidate):
    return salt_run("pigsty_ha.switchover", "pg-test", "candidate=" + candidate, timeout=300)


def leader_back_on(member="pg-test-1", attempts=4):
    """Switch pg-test's leader back to ``member`` through the runner when an earlier test, or
    Patroni on its own, moved it (bounded; a replica that has just rejoined may be refused for
    a while, so wait and ask again). Fails, naming the runner's answers, when it cannot."""
    answers = []
    for _attempt in range(attempts):
        current = wait_for(live_leader, 120)
        if current == member:
            return current
        data, code, res = switchover(member)
        answers.append((current, code, data if data is not None else res.stdout[-1500:] + res.stderr[-800:]))
        try:
            return wait_for(lambda: live_leader() == member and member, 60)
        except AssertionError:
            time.sleep(10)
    raise AssertionError("pg-test's leader could not be moved back to %s: %r" % (member, answers))


def put_back(within=240):
    """pg-test as orch.site leaves it: every node running, two streaming replicas, the primary
    on pg-test-1, reconciled, nothing held by HAProxy. Fixtures call it before a module that
    reads that state and after one that disturbs it, so no module depends on the ones before."""
    for node in NODE_OF.values():
        subprocess.run(SANDBOX + ["start", node], capture_output=True, timeout=120)
    wait_for(healthy_cluster, within, 2)
    # a rejoining member streams a little before Patroni calls it running (a switchover to it
    # is refused until then): wait for it, then ask (leader_back_on asks again, bounded)
    if live_leader() != "pg-test-1":
        wait_for(lambda: ready_candidate("pg-test-1"), within, 3)
    leader_back_on("pg-test-1")
    wait_for(lambda: salt_run("pigsty_ha.reconcile", "pg-test")[1] == 0
             and all(held(n) == [] for n in NODE_OF.values()), 90, 3)


# ------------------------------------------------------------------ traffic
class Writer(threading.Thread):
    """Inserts numbered rows into test.ha_switch through a 5433 (bounded in time): one
    connection for all (``persistent``) or a new connection per transaction. Keeps what
    committed and what failed."""

    def __init__(self, host, persistent, start_at, limit=120):
        super().__init__(daemon=True)
        self.host, self.persistent, self.next, self.limit = host, persistent, start_at, limit
        self.committed, self.failed, self.stop = [], [], threading.Event()

    def _connect(self):
        conn = psycopg2.connect(host=self.host, port=5433, user=TEST[0], password=TEST[1], dbname="test",
                                connect_timeout=5, application_name="pigsty-tests-writer")
        conn.autocommit = True
        return conn

    def run(self):
        deadline = time.monotonic() + self.limit
        conn = None
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                if conn is None or not self.persistent:
                    conn = self._connect()
                with conn.cursor() as cur:
                    cur.execute("insert into ha_switch(n) values (%s)", (self.next,))
                self.committed.append(self.next)
            except psycopg2.Error as exc:
                self.failed.append("%d: %s" % (self.next, str(exc).strip()[:200]))
                conn = None
            finally:
                if conn is not None and not self.persistent:
                    conn.close()
                    conn = None
            self.next += 1
            time.sleep(0.02)
        if conn is not None:
            conn.close()
