"""HAProxy's runtime API (the stats socket), and what a cluster's HAProxy should route to
according to Patroni's live view. Standard library only.

The runtime API changes routing at once, without waiting for health checks; the checks
(against Patroni's REST API) keep running and stay the ground truth afterwards.
"""
import socket

SOCKET = "/run/haproxy/admin.sock"


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
    """{backend: {server: {"op": UP/DOWN/..., "admin": READY/MAINT/DRAIN, "addr": ip}}}
    from `show servers state`."""
    text = command("show servers state", path)
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    out = {}
    for line in lines[1:]:
        f = line.split()
        if len(f) < 7:
            continue
        # be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ...
        op = {"0": "DOWN", "1": "STARTING", "2": "UP", "3": "STOPPING"}.get(f[5], f[5])
        admin = "MAINT" if int(f[6]) & 0x0F else ("DRAIN" if int(f[6]) & 0x10 else "READY")
        out.setdefault(f[1], {})[f[3]] = {"op": op, "admin": admin, "addr": f[4]}
    return out


def desired_health(services, live_roles):
    """{backend: {server: "up"|"down"}} for the servers whose health the live Patroni view
    decides: /primary -> only the leader is up; /read-only -> running members;
    /replica -> running replicas. Unreachable members are down everywhere. Services with
    other checks are left to HAProxy's own checks.

    ``live_roles``: instance -> primary | replica | unreachable (| other: left alone)."""
    want = {}
    for svc in services:
        check = svc["check"].split("?")[0]
        for server in svc["servers"]:
            role = live_roles.get(server["name"], "unreachable")
            if role == "unreachable":
                health = "down"
            elif check in ("/primary", "/master", "/read-write", "/"):
                health = "up" if role == "primary" else "down"
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
    """Runtime commands that make ``current`` (servers_state) match ``want``."""
    cmds = []
    for backend, servers in sorted(want.items()):
        for server, health in sorted(servers.items()):
            state = (current.get(backend) or {}).get(server)
            if state is None:
                continue
            is_up = state["op"] == "UP"
            if (health == "up") != is_up:
                cmds.append("set server %s/%s health %s" % (backend, server, health))
    return cmds
