"""The cluster VIP on this node: is it here, and put it here / take it away.
vip-manager normally does this on its own; the failover runner uses it to check and correct.

    salt -G 'pg_cluster:pg-test' pigsty_vip.holds 10.10.10.3/24 eth1
"""
import salt.exceptions

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_model
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None

__virtualname__ = "pigsty_vip"


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    if not __salt__["cmd.has_exec"]("ip"):
        return (False, "pigsty_vip: the ip command (iproute2) is not installed")
    return __virtualname__


def _parse(address, interface):
    try:
        vip = pigsty_model.parse_vip(address)
    except ValueError as exc:
        raise salt.exceptions.SaltInvocationError("address: %s" % exc)
    if not isinstance(interface, str) or not interface.replace("-", "").replace(".", "").isalnum():
        raise salt.exceptions.SaltInvocationError("interface: %r is not an interface name" % (interface,))
    return vip


def holds(address, interface):
    """True when the VIP is configured on ``interface``."""
    vip = _parse(address, interface)
    out = __salt__["cmd.run"](["ip", "-o", "-4", "addr", "show", "dev", interface], python_shell=False)
    return (" %s " % vip.cidr) in (out + " ")


def ensure(address, interface, present=True):
    """Add (present=True, with gratuitous ARP) or remove the VIP; returns whether it changed."""
    vip = _parse(address, interface)
    if holds(address, interface) == bool(present):
        return False
    spec = vip.cidr
    res = __salt__["cmd.run_all"](["ip", "addr", "add" if present else "del", spec, "dev", interface],
                                  python_shell=False)
    if res["retcode"] != 0:
        raise salt.exceptions.CommandExecutionError("ip addr %s %s: %s" % (
            "add" if present else "del", spec, res["stderr"]))
    if present and __salt__["cmd.has_exec"]("arping"):
        __salt__["cmd.run_all"](["arping", "-c", "1", "-U", "-I", interface, vip.ip], python_shell=False)
    return True
