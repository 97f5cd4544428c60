"""ext_pillar ``pigsty_pki``: the CA server's signing policies.

The CA server (the first meta node, _utils/pigsty_pki.py) receives ``x509_signing_policies``
with one policy per inventory node, ``pigsty-node-<minion id>``: only that minion may use it
(``minions``), and it fixes the certificate's names, usages and lifetime. Every other minion
receives nothing from here. A node added to the inventory gets its policy at the CA server's
next pillar refresh (orch.site refreshes it before the other nodes ask for certificates).
"""
import logging

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_inventory
    import pigsty_pki
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None

log = logging.getLogger(__name__)

__virtualname__ = "pigsty_pki"


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    return __virtualname__


def ext_pillar(minion_id, pillar, *args, pki_dir=None, **kwargs):  # pylint: disable=unused-argument
    """``pki_dir``: where the CA server keeps the PKI (its minion option ``pigsty_pki_dir``;
    only the functional test moves it; default pigsty_pki.PKI_DIR)."""
    if pki_dir is None:
        pki_dir = pigsty_pki.PKI_DIR
    if "pigsty" not in pillar:
        return {}
    try:
        inv = pigsty_inventory.inventory(pillar)
        if minion_id != pigsty_pki.ca_server(inv):
            return {}
        return {"x509_signing_policies": pigsty_pki.signing_policies(inv, pki_dir)}
    except (pigsty_inventory.InventoryError, ValueError) as exc:
        # the pigsty ext_pillar reports an invalid inventory (and blocks every state)
        log.warning("pigsty_pki: no signing policies: %s", exc)
        return {}
