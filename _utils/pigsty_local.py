"""This node's own settings for the execution modules (ports, dbsu): from the resolved
configuration of the instance it hosts (``pigsty.config``), so that no module keeps a
default of its own beside the inventory's.

On a node that hosts no instance (or without the inventory in its pillar) a module's Salt
option (``pgbouncer.port``, ...) or else the inventory's default (pigsty_defaults) applies.
"""
import pigsty_defaults as D


def settings(salt, keys, options=None):
    """{key: value} of ``keys`` for this node. ``salt``: the module's ``__salt__``;
    ``options``: {key: Salt option name} read when the node hosts no instance."""
    conf = None
    if "pigsty.config" in salt:
        try:
            conf = salt["pigsty.config"]()
        except ValueError:          # InventoryError: no inventory in this node's pillar
            conf = None
    out = {}
    for key in keys:
        if conf:
            out[key] = conf[key]
        elif (options or {}).get(key) and "config.option" in salt:
            out[key] = salt["config.option"](options[key], D.DEFAULTS[key])
        else:
            out[key] = D.DEFAULTS[key]
    return out


def setting(salt, key, option=None):
    """One of ``settings``."""
    return settings(salt, (key,), {key: option} if option else None)[key]
