"""Health of the DCS that Patroni uses: etcd (HTTP /health) or the user's Consul (py-consul,
the maintained fork of python-consul, same `import consul` API).

    salt meta pigsty_dcs.health
"""
import json
import urllib.error
import urllib.request

import salt.exceptions

import pigsty_inventory

__virtualname__ = "pigsty_dcs"


def __virtual__():
    return __virtualname__


def _etcd(endpoint, timeout):
    try:
        with urllib.request.urlopen("http://%s/health" % endpoint, timeout=timeout) as resp:
            return json.load(resp).get("health") in ("true", True)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _consul(endpoint, timeout):
    try:
        import consul  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise salt.exceptions.CommandExecutionError(
            "dcs_type consul needs py-consul in Salt's Python (requirements.txt)")
    host, port = endpoint.rsplit(":", 1)
    try:
        return bool(consul.Consul(host=host, port=int(port), timeout=timeout).status.leader())
    except Exception:  # pylint: disable=broad-except
        return False


def health(timeout=2):
    """{endpoint: healthy} for every DCS endpoint of the inventory."""
    gvars = pigsty_inventory.global_vars(pigsty_inventory.inventory(__pillar__))
    if gvars["dcs_type"] == "consul":
        return {e: _consul(e, timeout) for e in gvars["consul_hosts"]}
    nodes = pigsty_inventory.inventory(__pillar__).get("nodes") or {}
    endpoints = ["%s:%d" % (nodes[n]["ip"], gvars["etcd_port"])
                 for n in pigsty_inventory.meta_nodes(pigsty_inventory.inventory(__pillar__))]
    return {e: _etcd(e, timeout) for e in endpoints}
