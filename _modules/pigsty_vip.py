"""The cluster VIP on this node: is it here, and put it here / take it away.
vip-manager normally does this on its own; the failover runner uses it to check and correct.

    salt -G 'pg_cluster:pg-test' pigsty_vip.holds 10.10.10.3/24 eth1
"""
import ipaddress

import salt.exceptions

__virtualname__ = "pigsty_vip"


def __virtual__():
    return __virtualname__


def _parse(address, interface):
    try:
        iface = ipaddress.IPv4Interface(str(address))
    except ValueError:
        raise salt.exceptions.SaltInvocationError("address: %r is not ADDRESS/PREFIX" % (address,))
    if "/" not in str(address):
        raise salt.exceptions.SaltInvocationError("address: %r needs a /PREFIX" % (address,))
    if not isinstance(interface, str) or not interface.replace("-", "").replace(".", "").isalnum():
        raise salt.exceptions.SaltInvocationError("interface: %r is not an interface name" % (interface,))
    return iface


def holds(address, interface):
    """True when the VIP is configured on ``interface``."""
    iface = _parse(address, interface)
    out = __salt__["cmd.run"](["ip", "-o", "-4", "addr", "show", "dev", interface], python_shell=False)
    return (" %s/%d " % (iface.ip, iface.network.prefixlen)) in (out + " ")


def ensure(address, interface, present=True):
    """Add (present=True, with gratuitous ARP) or remove the VIP; returns whether it changed."""
    iface = _parse(address, interface)
    if holds(address, interface) == bool(present):
        return False
    spec = "%s/%d" % (iface.ip, iface.network.prefixlen)
    res = __salt__["cmd.run_all"](["ip", "addr", "add" if present else "del", spec, "dev", interface],
                                  python_shell=False)
    if res["retcode"] != 0:
        raise salt.exceptions.CommandExecutionError("ip addr %s %s: %s" % (
            "add" if present else "del", spec, res["stderr"]))
    if present and __salt__["cmd.has_exec"]("arping"):
        __salt__["cmd.run_all"](["arping", "-c", "1", "-U", "-I", interface, str(iface.ip)], python_shell=False)
    return True
