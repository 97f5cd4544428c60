"""Shared test set-up: the repository's Python (``_utils``, ``sandbox``) and the shared test helpers
(``tests/support``) on sys.path."""
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for sub in ("_utils", "sandbox", os.path.join("tests", "support")):
    path = os.path.join(REPO, sub)
    if path not in sys.path:
        sys.path.insert(0, path)
