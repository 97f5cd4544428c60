#!/usr/bin/env python3
"""Encrypt one secret for the pillar (Salt's gpg renderer; docs/security.md, "Encrypted
pillar"). The secret is read from stdin (asked twice, without echo, on a terminal), never
from the command line; one trailing line break is dropped (``echo secret |`` works). The
output is a YAML literal block to paste into a private pillar file whose first line is
``#!yaml|gpg``:

    python3 scripts/pillar_encrypt.py -r pigsty-master --name pg_admin_password --indent 8
    # on the master, with its own key ring:
    python3 scripts/pillar_encrypt.py -r pigsty-master --homedir /etc/salt/gpgkeys

It runs what Salt's documentation shows (``gpg --armor --batch --trust-model always
--encrypt -r RECIPIENT``); only the master's public key is needed.
"""
import argparse
import getpass
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "_utils"))
import pigsty_gpg  # noqa: E402


def read_secret():
    if sys.stdin.isatty():
        first = getpass.getpass("secret: ")
        if getpass.getpass("again: ") != first:
            raise pigsty_gpg.EncryptError("secret: the two entries differ (nothing was encrypted)")
        return first
    text = sys.stdin.read()
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-r", "--recipient", required=True,
                        help="the master's key: key id, fingerprint or e-mail address")
    parser.add_argument("--homedir", help="gpg key ring holding that public key "
                        "(default: gpg's own, $GNUPGHOME or ~/.gnupg)")
    parser.add_argument("--name", help="print 'NAME: |' before the message (a pillar key)")
    parser.add_argument("--indent", type=int, default=0,
                        help="spaces before the key (or the '|'); the message is 2 deeper")
    args = parser.parse_args(argv)
    if args.indent < 0:
        parser.error("--indent: expected 0 or more spaces")
    try:
        armored = pigsty_gpg.encrypt(read_secret(), args.recipient, homedir=args.homedir)
    except pigsty_gpg.EncryptError as exc:
        print("pillar_encrypt: %s" % exc, file=sys.stderr)
        return 1
    sys.stdout.write(pigsty_gpg.yaml_block(armored, args.indent, args.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
