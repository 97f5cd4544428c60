"""This node's certificate request to the Pigsty CA (read by salt/node/pki.sls).

    salt-call pigsty_pki.request      paths, CA server, signing policy, CN and SANs

The directory is /etc/pki/pigsty; the minion option ``pigsty_pki_dir`` moves it (only the
functional test does, to run the state into a scratch directory).
"""
import salt.exceptions

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_inventory
    import pigsty_pki
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None

__virtualname__ = "pigsty_pki"


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    return __virtualname__


def request():
    """What this node's pki state asks for (no secret in it).

    CLI example::

        salt-call pigsty_pki.request
    """
    inv = pigsty_inventory.inventory(__pillar__)
    pki_dir = __salt__["config.get"]("pigsty_pki_dir", pigsty_pki.PKI_DIR)
    try:
        return pigsty_pki.node_request(inv, __opts__["id"], pki_dir)
    except ValueError as exc:
        raise salt.exceptions.CommandExecutionError(str(exc)) from exc
