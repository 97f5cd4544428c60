"""Pigsty's TLS parameters, for the inventory import: ``pg_ssl_enabled``,
``pgbouncer_sslmode``, the CA's (``ca_method``, ``ca_subject``, ``ca_homedir``, ``ca_cert``,
``ca_key``) and ``cert_validity``.

Ours always has TLS (docs/security.md): the Pigsty CA on the first meta node (``node.pki``)
signs every node's certificate; PostgreSQL runs with ``ssl = on`` and pgbouncer offers TLS to
clients (``client_tls_sslmode = prefer``); HBA rules with ``auth: ssl`` and, with
``pg_ssl_required``, every remote password rule require it. What is fixed in ours: the CA's
name, place and lifetime, and that pgbouncer itself never refuses a plain connection (its
HBA does). So a value equal to ours maps, a weaker one becomes ours (a row says so), and a
stronger or different one is reported with what to use instead.

``TlsParams`` is a mixin of ``pigsty_import.Importer`` (its ``_p_<param>`` handlers). Pure
Python, no Salt imports.
"""
import pigsty_pki

# the importer's statuses (pigsty_import.MAPPED...; the unit tests check they agree)
MAPPED, CHANGED, UNSUPPORTED = "mapped", "changed", "unsupported"
OURS_PGBOUNCER = "prefer"
PGBOUNCER_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
CA_PLACE = ("the CA key %s and certificate %s on the CA server (the first meta node), the CA "
            "certificate %s on every node" % (
                pigsty_pki.paths()["ca_key"], pigsty_pki.paths()["ca_crt_master"],
                pigsty_pki.paths()["ca_crt"]))
# the CA's parameters without a handler: -> (values equal to ours, what ours does)
CA_FIXED = {
    "ca_subject": ((), "the CA's subject is fixed: CN=%s (node.pki)" % pigsty_pki.CA_CN),
    "ca_homedir": ((), "fixed: " + CA_PLACE),
    "ca_cert": (("ca.crt",), "the CA certificate is ca.crt: %s on the CA server (the first "
                             "meta node), %s on every node" % (pigsty_pki.paths()["ca_crt_master"],
                                                               pigsty_pki.paths()["ca_crt"])),
    "ca_key": (("ca.key",), "the CA key is ca.key: %s on the CA server (the first meta node) "
                           "only" % pigsty_pki.paths()["ca_key"]),
    "cert_validity": ((), "fixed: node certificates are valid %d days and node.pki renews them "
                          "%d days before they expire; the CA's %d days (_utils/pigsty_pki.py)" % (
                              pigsty_pki.NODE_DAYS_VALID, pigsty_pki.NODE_DAYS_REMAINING,
                              pigsty_pki.CA_DAYS_VALID)),
}


def _shown(value):
    return str(value).lower() if isinstance(value, bool) else repr(value) if not isinstance(
        value, str) else value


class TlsParams:
    def _p_pg_ssl_enabled(self, scope, where, key, value):
        if value is True:
            return self.row(scope, key, MAPPED, "true: ours always runs PostgreSQL with ssl = on "
                            "and the node certificate of node.pki; nothing written")
        return self.row(scope, key, CHANGED, "%s -> on: ours always offers SSL (the node "
                        "certificate of node.pki); a client that does not ask for it connects as "
                        "before, HBA rules with auth ssl (and, with pg_ssl_required, every remote "
                        "password rule) require it" % _shown(value))

    def _p_pgbouncer_sslmode(self, scope, where, key, value):
        if value == OURS_PGBOUNCER:
            return self.row(scope, key, MAPPED, "prefer: same as ours (client_tls_sslmode, the node "
                            "certificate); nothing written")
        if value in ("disable", "allow") or value is False:
            return self.row(scope, key, CHANGED, "%s -> prefer: ours always offers TLS to clients "
                            "(the node certificate); a client that does not ask for it connects "
                            "as before" % _shown(value))
        if value in PGBOUNCER_MODES:
            return self.row(scope, key, UNSUPPORTED, "%s: ours is client_tls_sslmode = prefer, "
                            "fixed (pgbouncer asks for no client certificate and refuses no plain "
                            "connection itself); to require TLS of remote clients set "
                            "pg_ssl_required: true (every remote password rule of pgbouncer's and "
                            "PostgreSQL's HBA becomes hostssl)" % value)
        return self.row(scope, key, UNSUPPORTED, "%s: expected one of %s" % (
            _shown(value), ", ".join(PGBOUNCER_MODES)))

    def _p_ca_method(self, scope, where, key, value):
        if value == "create":
            return self.row(scope, key, MAPPED, "create: ours creates the Pigsty CA on its first "
                            "run (node.pki on the first meta node) and keeps it; %s" % CA_PLACE)
        reason = {
            "recreate": "ours never recreates an existing CA (every certificate it signed would "
                        "stop being trusted); node.pki creates it once",
            "copy": "ours does not take an existing CA: node.pki creates its own on the first "
                    "meta node (and manages its certificate: CN=%s)" % pigsty_pki.CA_CN,
        }.get(value, "expected create (ours), recreate or copy")
        return self.row(scope, key, UNSUPPORTED, "%s: %s" % (_shown(value), reason))

    def _ca_fixed(self, scope, where, key, value):
        same, ours = CA_FIXED[key]
        if value in same:
            return self.row(scope, key, MAPPED, "%s: same as ours (%s); nothing written" % (
                _shown(value), ours))
        return self.row(scope, key, UNSUPPORTED, "%s: %s" % (_shown(value), ours))

    _p_ca_subject = _p_ca_homedir = _p_ca_cert = _p_ca_key = _p_cert_validity = _ca_fixed
