"""HAProxy's runtime API (the stats socket), and what a cluster's HAProxy should route to
according to Patroni's live view. Standard library only.

The runtime API changes routing at once, without waiting for health checks; the checks
(against Patroni's REST API) keep running and stay the ground truth afterwards.
"""
import re
import socket

SOCKET = "/run/haproxy/admin.sock"
# Patroni health endpoints that answer 200 on the leader only.
LEADER_CHECKS = ("/primary", "/master", "/leader", "/read-write", "/")
# What pigsty_haproxy.run may send: server health, admin state and health-check switches.
RUNTIME_COMMAND = re.compile(
    r"(set server [\w.-]+/[\w.-]+ (health (up|down)|state (ready|drain|maint))"
    r"|(enable|disable) health [\w.-]+/[\w.-]+)")


class HAProxyError(RuntimeError):
    pass


def command(cmd, path=SOCKET, timeout=2.0):
    """Send one runtime API command, return its text answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(cmd.encode() + b"\n")
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    except OSError as exc:
        raise HAProxyError("HAProxy runtime API at %s: %s (%s)" % (path, exc, cmd.split()[0]))
    finally:
        sock.close()
    return b"".join(chunks).decode("utf-8", "replace")


def servers_state(path=SOCKET):
    """{backend: {server: {"op": UP/DOWN/..., "admin": READY/MAINT/DRAIN, "addr": ip,
    "held": health checks configured but disabled}}} from `show servers state`."""
    text = command("show servers state", path)
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    out = {}
    for line in lines[1:]:
        f = line.split()
        if len(f) < 7:
            continue
        # be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ...
        op = {"0": "DOWN", "1": "STARTING", "2": "UP", "3": "STOPPING"}.get(f[5], f[5])
        # HAProxy's SRV_ADMF_* bits: maintenance 0x01|0x02|0x04|0x20, drain 0x08|0x10
        admin = "MAINT" if int(f[6]) & 0x27 else ("DRAIN" if int(f[6]) & 0x18 else "READY")
        check_state = int(f[13]) if len(f) > 13 and f[13].isdigit() else 6
        held = bool(check_state & 0x2) and not check_state & 0x4     # CONFIGURED, not ENABLED
        out.setdefault(f[1], {})[f[3]] = {"op": op, "admin": admin, "addr": f[4], "held": held}
    return out


def desired_health(services, live_roles):
    """{backend: {server: "up"|"down"}} for the servers whose health the live Patroni view
    decides: /primary -> only the leader is up; /read-only -> running members;
    /replica -> running replicas. Unreachable members are down everywhere. Services with
    other checks are left to HAProxy's own checks.

    ``live_roles``: instance -> primary | replica | unreachable (| other, such as
    "unresponsive" for a leader whose API did not answer in time: left alone)."""
    want = {}
    # Without a primary in the view (a promotion in progress: the old leader stopped, the
    # new one not yet answering as primary), the leader services are left to their checks:
    # forcing the members down then would cut the candidate that HAProxy's own check has
    # just marked up, by the time the command lands (seen in a switchover: new connections
    # closed with "server closed the connection unexpectedly"). Unreachable ones still go.
    # a standby cluster's leader (Patroni's standby_leader) leads it as a primary would: the
    # leader services (/leader in a standby cluster, pigsty_pgsql.haproxy_services) go to it
    live_roles = {i: "primary" if r == "standby_leader" else r for i, r in live_roles.items()}
    has_primary = "primary" in live_roles.values()
    for svc in services:
        if svc.get("track"):
            continue        # its servers follow the tracked service's (no checks of their own)
        check = svc["check"].split("?")[0]
        for server in svc["servers"]:
            if server.get("track"):
                continue    # follows the server it tracks (HAProxy refuses health on it)
            role = live_roles.get(server["name"], "unreachable")
            if role == "unreachable":
                health = "down"
            elif role not in ("primary", "replica", "stopped", "demoting"):
                health = None
            elif check in LEADER_CHECKS:
                health = ("up" if role == "primary" else "down") if has_primary else None
            elif check == "/read-only":
                health = "up" if role in ("primary", "replica") else None
            elif check == "/replica":
                health = "up" if role == "replica" else "down"
            else:
                health = None
            if health:
                want.setdefault(svc["name"], {})[server["name"]] = health
    return want


def plan(current, want):
    """Runtime commands that make ``current`` (servers_state) match ``want``. Servers that
    are drained, in maintenance or whose checks are held (a switchover hand-off, or an
    operator) are left alone: marking them down would cut the sessions they still carry."""
    cmds = []
    for backend, servers in sorted(want.items()):
        for server, health in sorted(servers.items()):
            state = (current.get(backend) or {}).get(server)
            if state is None or state["admin"] != "READY" or state.get("held"):
                continue
            is_up = state["op"] == "UP"
            if (health == "up") != is_up:
                cmds.append("set server %s/%s health %s" % (backend, server, health))
    return cmds


def held_servers(current):
    """Servers a hand-off (or an operator) holds: drained, or health checks disabled."""
    return sorted({srv for servers in current.values() for srv, st in servers.items()
                   if st["admin"] == "DRAIN" or st.get("held")})


# ------------------------------------------------------------------ switchover hand-off
# A planned switchover keeps the sessions of clients that came in through the old
# primary's pgbouncer: before the switch its health checks in the leader services are
# disabled (so demotion does not mark it down and cut the sessions); after the switch the
# new primary is marked up and the old one drained in the pgbouncer services (no new
# clients; the old pgbouncer forwards the remaining ones to the new primary); when its
# last client is gone the hold is released and its checks decide again.
def handoff_backends(services, pgbouncer_port):
    """(leader services with checks of their own, services whose servers are pgbouncers)."""
    leader = [s["name"] for s in services
              if not s.get("track") and s["check"].split("?")[0] in LEADER_CHECKS]
    pgb = [s["name"] for s in services if any(x["port"] == pgbouncer_port for x in s["servers"])]
    return leader, pgb


def handoff_hold(leader_backends, server):
    return ["disable health %s/%s" % (be, server) for be in leader_backends]


def handoff_route(leader_backends, pgb_backends, old, new):
    """Route new clients to ``new`` and drain ``old``, in that order: the new primary is
    given back to its checks, marked up and made ready (out of a drain an earlier hand-off
    may have left on it) in every backend before the old primary is drained, so a leader
    service never has no usable server (HAProxy closes new connections at once then)."""
    return (["enable health %s/%s" % (be, new) for be in leader_backends]
            + ["set server %s/%s health up" % (be, new) for be in leader_backends]
            + ["set server %s/%s state ready" % (be, new) for be in pgb_backends]
            + ["set server %s/%s state drain" % (be, old) for be in pgb_backends])


def handoff_release(leader_backends, pgb_backends, server, is_primary):
    """Give ``server`` back to its health checks; a server that is no longer the primary is
    marked down in the leader services first, so it takes no write traffic meanwhile."""
    cmds = [] if is_primary else ["set server %s/%s health down" % (be, server) for be in leader_backends]
    return (cmds + ["enable health %s/%s" % (be, server) for be in leader_backends]
            + ["set server %s/%s state ready" % (be, server) for be in pgb_backends])
