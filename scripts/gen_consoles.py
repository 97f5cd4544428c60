#!/usr/bin/env python3
"""Write Pigsty's Prometheus console templates (salt/infra/files/consoles/) from the specs in
_utils/pigsty_consoles.py. The files are committed; tests/unit/test_consoles.py checks that
they are what this script writes, so edit the specs and rerun:

    /opt/pigsty/venv/bin/python scripts/gen_consoles.py
"""
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "_utils"))
import pigsty_consoles  # noqa: E402

OUT = os.path.join(REPO, "salt", "infra", "files", "consoles")


def main():
    os.makedirs(OUT, exist_ok=True)
    texts = pigsty_consoles.render()
    for name in os.listdir(OUT):
        if name not in texts:
            os.remove(os.path.join(OUT, name))
            print("removed", os.path.join(OUT, name))
    for name, text in sorted(texts.items()):
        with open(os.path.join(OUT, name), "w") as fh:
            fh.write(text)
        print("wrote", os.path.join(OUT, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
