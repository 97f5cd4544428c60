"""This node's certificate request to the Pigsty CA (read by salt/node/pki.sls).

    salt-call pigsty_pki.request       paths, CA server, signing policy, CN and SANs
    salt-call pigsty_pki.exporter_tls  the exporters' TLS: web config file, pgbouncer flags

The directory is /etc/pki/pigsty; the minion option ``pigsty_pki_dir`` moves it (only the
functional test does, to run the state into a scratch directory).
"""
import salt.exceptions

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_exporter_tls
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


def exporter_tls():
    """The exporters' TLS with this node's certificate (read by salt/pgsql/monitor.sls): the
    path and text of exporter-toolkit's web configuration file, and the pgbouncer
    exporter's flags. No secret in it.

    CLI example::

        salt-call pigsty_pki.exporter_tls
    """
    paths = pigsty_pki.paths(__salt__["config.get"]("pigsty_pki_dir", pigsty_pki.PKI_DIR))
    return {"web_config_path": pigsty_exporter_tls.WEB_CONFIG,
            "web_config": pigsty_exporter_tls.web_config_text(paths),
            "pgbouncer_flags": " ".join(pigsty_exporter_tls.pgbouncer_exporter_flags(paths))}
