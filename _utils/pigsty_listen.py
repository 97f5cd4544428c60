"""Pigsty's pg_listen: the addresses PostgreSQL listens on.

A comma-separated list (Pigsty's form) of:

- a wildcard: ``*`` (every address), ``0.0.0.0`` (every IPv4 address, Pigsty's default),
  ``::`` (every IPv6 address; ``0.0.0.0,::`` is both);
- Pigsty v2's placeholders: ``${ip}`` (the member's own address), ``${vip}`` (the cluster's
  VIP, pg_vip_address: only with pg_vip_enabled), ``${lo}`` (127.0.0.1);
- literal addresses: the member's own, 127.0.0.1 or ::1, the cluster's VIP.

Any other address is refused: PostgreSQL could not bind it. The list must reach the
member's own address (``${ip}``, that address, or a wildcard): replicas stream from the
primary's address (Patroni's connect_address), HAProxy's postgres services (5436, 5438)
and the switchover hand-off (pgbouncer forwarding to the new primary) connect to it. The
unix socket (/var/run/postgresql) is always there: Patroni, pgbouncer, the exporter,
pgBackRest and Salt's own SQL use it.

A list with the VIP also sets net.ipv4.ip_nonlocal_bind on the members (pgsql.patroni):
the VIP is on the primary only, and a member that is promoted later must already listen
on it (Pigsty's tuned profiles set the same sysctl).

Pure Python (no Salt).
"""
import ipaddress

import pigsty_model

WILDCARDS = ("*", "0.0.0.0", "::")
LOOPBACK = ("127.0.0.1", "::1")
PLACEHOLDERS = ("${ip}", "${vip}", "${lo}")
EXPECTED = ("a comma-separated list of '*', '0.0.0.0', '::', ${ip}, ${vip}, ${lo}, the "
            "member's own address, 127.0.0.1 or the cluster's VIP")


def _word(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _vip_ip(conf):
    if not conf.get("pg_vip_enabled") or not conf.get("pg_vip_address"):
        return None
    try:
        return pigsty_model.parse_vip(conf["pg_vip_address"]).ip
    except ValueError:
        return None


def _canonical(token):
    try:
        return str(ipaddress.ip_address(token))
    except ValueError:
        return None


def resolve(value, ip, vip):
    """(addresses, problems) of a pg_listen value for the member at ``ip`` of a cluster
    whose VIP is ``vip`` (None: no VIP). The addresses keep their order, without repeats."""
    if not isinstance(value, str) or not value.strip():
        return [], ["expected %s, got %s" % (EXPECTED, _word(value))]
    out, problems = [], []
    for raw in value.split(","):
        token = raw.strip()
        if token == "${ip}":
            addr = ip
        elif token == "${lo}":
            addr = "127.0.0.1"
        elif token == "${vip}":
            if vip is None:
                problems.append("${vip}: the cluster has no VIP (pg_vip_enabled with "
                                "pg_vip_address)")
                continue
            addr = vip
        elif token == "*":
            addr = "*"
        else:
            addr = _canonical(token)
            if addr is None:
                problems.append("%s is not an address (expected %s)" % (_word(token), EXPECTED))
                continue
            if addr not in WILDCARDS + LOOPBACK and addr not in (ip, vip):
                problems.append("%s is not this member's address (%s), loopback, the cluster's "
                                "VIP%s or a wildcard: PostgreSQL cannot listen on it here" % (
                                    addr, ip, " (%s)" % vip if vip else ""))
                continue
        if addr not in out:
            out.append(addr)
    wild = [a for a in out if a in WILDCARDS]
    if "*" in out and len(out) > 1:
        problems.append("'*' listens on every address already: give it alone")
    elif wild and len(out) > len(wild):
        problems.append("%s listens on every address of its family already: give it alone "
                        "(or with the other wildcard, 0.0.0.0,::)" % wild[0])
    elif out and not problems and not wild and ip not in out:
        problems.append("the member's own address is missing (add ${ip}): replicas stream "
                        "from it, HAProxy's postgres services and the switchover hand-off "
                        "connect to it")
    return out, problems


def addresses(conf):
    """The addresses of a member's resolved configuration (valid: validation has run)."""
    return resolve(conf["pg_listen"], conf["node_ip"], _vip_ip(conf))[0]


def listen_addresses(conf):
    """PostgreSQL's listen_addresses (and the host part of Patroni's postgresql.listen)."""
    return ",".join(addresses(conf))


def needs_nonlocal_bind(conf):
    """True when the member listens on the cluster's VIP (not always its own address)."""
    vip = _vip_ip(conf)
    return vip is not None and vip in addresses(conf)


def cluster_problems(path, conf, hosts):
    """pg_listen of every member of a cluster: ``conf`` the cluster's parameters, ``hosts``
    its ``hosts`` mapping (a member's own pg_listen wins). Messages name where the value is
    set: the member's entry, or the cluster's vars."""
    problems = []
    if not isinstance(hosts, dict):
        return problems
    vip = _vip_ip(conf)
    for ip, member in sorted(hosts.items(), key=lambda kv: str(kv[0])):
        member = member if isinstance(member, dict) else {}
        if "pg_listen" in member:
            value, where = member["pg_listen"], "%s:hosts:%s:pg_listen" % (path, ip)
        else:
            value, where = conf.get("pg_listen"), "%s:vars:pg_listen" % path
        _out, found = resolve(value, str(ip), vip)
        for p in found:
            msg = "%s: %s" % (where, p)
            if "pg_listen" not in member and len(hosts) > 1:
                msg += " (member %s)" % ip
            if msg not in problems:
                problems.append(msg)
    return problems
