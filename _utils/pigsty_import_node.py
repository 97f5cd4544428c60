"""Pigsty's node parameters that need a conversion on import: ``node_tune`` (a tuned profile
-> our kernel parameters of the same name), ``node_packages`` (Pigsty's lists may hold
comma-separated names, and EL names) and ``node_admin_pk_list`` (Pigsty's published sandbox
key is left out). ``node_admin_enabled``, ``_uid`` and ``_username`` are ours as they are;
``node_admin_ssh_exchange`` and ``node_admin_pk_current`` map when false and are reported
with the reason when true (pigsty_import_catalog, pigsty_defaults.FIXED).

``NodeParams`` is a mixin of ``pigsty_import.Importer`` (its ``_p_<param>`` handlers, which
call its ``row`` and ``_write``). Pure Python, no Salt imports.
"""
import base64
import hashlib
import json

import pigsty_node_admin
import pigsty_node_tune
import pigsty_syntax

# the importer's statuses (pigsty_import.MAPPED...; the unit tests check they agree)
MAPPED, CHANGED, UNSUPPORTED = "mapped", "changed", "unsupported"
# SHA256 fingerprints of public keys published with Pigsty (its Vagrant sandbox's): whoever
# has the sandbox's private key would log in as the admin on every node
PUBLISHED_KEYS = {"SHA256:kH5onLApcPlwg6oG3NBwBKuzK+EA4M8e32oHHFW1vL0": "Pigsty's Vagrant sandbox key"}


def fingerprint(line):
    """OpenSSH's SHA256 fingerprint of a public key line."""
    blob = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _short(value, limit=70):
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class NodeParams:
    def _p_node_tune(self, scope, where, key, value):
        if where is None:
            return self.row(scope, key, UNSUPPORTED, "set on a group that is not a cluster")
        if value in (None, "", pigsty_node_tune.NONE):
            self._write(where, key, pigsty_node_tune.NONE)
            return self.row(scope, key, MAPPED, "none: the kernel is left alone", ref=(where, key))
        if not isinstance(value, str) or value not in pigsty_node_tune.PROFILES:
            return self.row(scope, key, UNSUPPORTED, "%s: expected one of %s" % (
                _short(value), ", ".join(pigsty_node_tune.CHOICES)))
        self._write(where, key, value)
        values = ", ".join("%s=%s" % kv for kv in sorted(pigsty_node_tune.PROFILES[value].items()))
        return self.row(scope, key, CHANGED, "%s: our profile of the same name, kernel parameters "
                        "(%s) written by node.tune as node_sysctl_params are (which win over "
                        "them), not a tuned profile" % (value, values), ref=(where, key))

    def _p_node_packages(self, scope, where, key, value):
        if where is None:
            return self.row(scope, key, UNSUPPORTED, "set on a group that is not a cluster")
        if not isinstance(value, list):
            return self.row(scope, key, UNSUPPORTED, "%s: expected a list of package names" % _short(value))
        names = [n for item in value for n in str(item).replace(",", " ").split()]
        if not names:
            return self.row(scope, key, MAPPED, "empty: nothing to carry over")
        bad = [n for n in names if not pigsty_syntax.PACKAGE_RE.fullmatch(n)]
        kept = [n for n in names if n not in bad]
        notes = []
        if bad:
            notes.append("left out %s (not Debian package names)" % ", ".join(bad))
        if not kept:
            return self.row(scope, key, UNSUPPORTED, "nothing kept (%s)" % "; ".join(notes))
        self._write(where, key, kept)
        notes.append("node.packages installs them with apt on every node: check that they are "
                     "Debian's names (an EL-only name fails the node role)")
        return self.row(scope, key, CHANGED, "%s (%s)" % (_short(kept), "; ".join(notes)),
                        ref=(where, key))

    def _p_node_admin_pk_list(self, scope, where, key, value):
        if where is None:
            return self.row(scope, key, UNSUPPORTED, "set on a group that is not a cluster")
        if not isinstance(value, list):
            return self.row(scope, key, UNSUPPORTED, "%s: expected a list of public keys" % _short(value))
        kept, notes = [], []
        for i, line in enumerate(value):
            line = line.strip() if isinstance(line, str) else line
            if pigsty_node_admin.key_problem(line):
                notes.append("left out [%d] %s: not an OpenSSH public key line" % (i, _short(line, 40)))
            elif fingerprint(line) in PUBLISHED_KEYS:
                notes.append("left out [%d] %s: %s, published with Pigsty (its private key is "
                             "public too): add your own" % (i, fingerprint(line),
                                                            PUBLISHED_KEYS[fingerprint(line)]))
            else:
                kept.append(line)
        if not value:
            return self.row(scope, key, MAPPED, "empty: nothing to carry over")
        if not kept:
            return self.row(scope, key, CHANGED, "no key kept (%s)" % "; ".join(notes))
        self._write(where, key, kept)
        return self.row(scope, key, CHANGED if notes else MAPPED, "%d key(s)%s" % (
            len(kept), " (%s)" % "; ".join(notes) if notes else ""), ref=(where, key))
