"""Pigsty inventory on a minion: identity, resolved configuration, local validation.

    salt-call pigsty.identity      grains derived from pillar (pg_cluster, pg_seq, ...)
    salt-call pigsty.config        this instance's resolved parameters (defaults + pillar)
    salt-call pigsty.validate      the inventory as this minion sees it
"""
import pigsty_inventory

__virtualname__ = "pigsty"


def __virtual__():
    return __virtualname__


def identity():
    """Identity grains for this minion, derived from the pillar inventory.

    CLI example::

        salt-call pigsty.identity
    """
    return pigsty_inventory.identity(__pillar__, __opts__["id"])


def config():
    """Resolved configuration of this node's instance (None when it hosts none).

    Passwords are part of it: do not print it in logs; templates read it through map.jinja.

    CLI example::

        salt-call pigsty.config
    """
    return pigsty_inventory.instance_config(__pillar__, __opts__["id"])


def validate():
    """Problems in the inventory as this minion sees it (empty list when valid).

    CLI example::

        salt-call pigsty.validate
    """
    inv = pigsty_inventory.inventory(__pillar__)
    cluster, _member = pigsty_inventory.cluster_of_node(inv, __opts__["id"])
    return pigsty_inventory.validate(__pillar__, private={cluster} if cluster else set())
