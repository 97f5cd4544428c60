"""Every module of the suite, loaded by Salt's own loaders (a fresh interpreter, see
tests/support/salt_loaders.py) from an extension_modules directory laid out as a sync leaves it:
without the synced _utils each says why it is not loaded (instead of an ImportError in the
log and "is not available"); with them every one loads."""
import glob
import json
import os
import re
import subprocess
import sys

import pytest

from pillar_fixture import REPO

KINDS = {"modules": "_modules", "states": "_states", "runners": "_runners", "beacons": "_beacons",
         "pillar": "_pillar"}
SCRIPT = os.path.join(REPO, "tests", "support", "salt_loaders.py")


def _one_function(path):
    text = open(path).read()
    name = re.search(r'^__virtualname__ = "(\w+)"', text, re.M).group(1)
    funcs = re.findall(r"^def ([a-z]\w*)\(", text, re.M)
    if os.path.basename(os.path.dirname(path)) == "_pillar":
        return name, name                    # salt_loaders asks for NAME.ext_pillar
    func = "beacon" if "_beacons" in path else funcs[0]
    return name, "%s.%s" % (name, func)


def _wanted():
    want, files = {}, {}
    for kind, sub in KINDS.items():
        for path in sorted(glob.glob(os.path.join(REPO, sub, "*.py"))):
            _name, fun = _one_function(path)
            want.setdefault(kind, []).append(fun)
            files[(kind, fun)] = path
    return want, files


def ask(tmp_path, with_utils):
    ext = tmp_path / "extmods"
    ext.mkdir()
    for kind, sub in KINDS.items():
        (ext / kind).symlink_to(os.path.join(REPO, sub))
    if with_utils:
        (ext / "utils").symlink_to(os.path.join(REPO, "_utils"))
    (tmp_path / "roots").mkdir()
    common = {"extension_modules": str(ext), "cachedir": str(tmp_path / "cache"),
              "file_roots": {"base": [str(tmp_path / "roots")]}}
    want, files = _wanted()
    req = {"minion": dict(common, file_client="local", id="node-1"), "master": common, "want": want}
    res = subprocess.run([sys.executable, "-I", SCRIPT], input=json.dumps(req), capture_output=True,
                         text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout), files


def test_without_the_synced_utils_every_module_says_why(tmp_path):
    got, files = ask(tmp_path, with_utils=False)
    checked = 0
    for (kind, fun), path in files.items():
        answer = got[kind][fun]
        text = open(path).read()
        if "UTILS_MISSING" in text or kind == "beacons":
            assert isinstance(answer, str) and "__virtual__ returned False" in answer, (kind, fun, answer)
            assert "saltutil.sync_all" in answer and "pigsty_" in answer, (kind, fun, answer)
            checked += 1
        elif "import pigsty_" in text:
            pytest.fail("%s imports the _utils without a reason in __virtual__" % path)
    assert checked >= 20
    # states that need an execution module of the suite say that one is missing
    assert "pigsty_pg execution module is not loaded" in got["states"]["pigsty_pg.user_present"]
    assert got["states"]["pigsty_wait.http"] is True          # standard library only


def test_with_the_synced_utils_every_module_loads(tmp_path):
    got, files = ask(tmp_path, with_utils=True)
    for kind, fun in files:
        if fun == "pgbouncer.ping" and not _has("psql"):
            continue
        assert got[kind][fun] is True, (kind, fun, got[kind][fun])


def _has(binary):
    return any(os.access(os.path.join(d, binary), os.X_OK) for d in os.environ.get("PATH", "").split(":"))


def test_a_module_named_like_a_util_does_not_import_itself(tmp_path):
    """Salt puts a module's own directory on sys.path while it loads it: without the _utils,
    `import pigsty_backup` in _modules/pigsty_backup.py would find that very file and leave it in
    sys.modules as the util (until the process restarts, even after a sync). A util that is not
    named like a module is imported first, so the import stops before."""
    got, _files = ask(tmp_path, with_utils=False)
    (answer,) = [v for k, v in got["modules"].items() if k.startswith("pigsty_backup.")]
    assert "No module named 'pigsty_inventory'" in answer
    stray = {name: path for name, path in got["imported"].items()
             if path and os.path.basename(os.path.dirname(path)) in KINDS}
    assert stray == {}
