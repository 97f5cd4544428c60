"""The suite installed with pip as a Salt extension (setup.cfg, pyproject.toml, pigsty_salt/):
`pip install` into a directory, then Salt's own loaders, in a fresh interpreter with only that
directory added (no file_roots, nothing synced, the repository not on sys.path), find the
execution modules, states, beacon, runners and ext_pillars from the installed files."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from pillar_fixture import REPO

SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "pigsty_salt", "_modules", "_states",
           "_runners", "_beacons", "_pillar", "_output", "_utils")
WANT = {"modules": ["pigsty.identity", "pigsty_pg.user_ensure", "patroni.status", "pigsty_backup.restore",
                    "pigsty_vip.holds", "test.ping"],
        "states": ["pigsty_pg.user_present", "patroni.running", "pigsty_etcd.auth", "pigsty_wait.http"],
        "beacons": ["patroni.beacon"],
        "runners": ["pigsty.validate", "pigsty_ha.reconcile", "pigsty_backup.backup"],
        "pillar": ["pigsty", "pigsty_pki"]}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """pip install (no dependencies; the build back end comes from the package index in pip's
    isolated build) of a copy of the sources, so that the build leaves nothing in the checkout."""
    tmp = tmp_path_factory.mktemp("saltext")
    src, target = tmp / "src", tmp / "site"
    src.mkdir()
    for name in SOURCES:
        path = os.path.join(REPO, name)
        if os.path.isdir(path):
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(path, src / name)
    res = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                          str(target), str(src)], capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return tmp, target


def ask(tmp, sitedirs, want):
    for sub in ("extmods", "roots", "cache"):
        (tmp / sub).mkdir(exist_ok=True)
    common = {"extension_modules": str(tmp / "extmods"), "cachedir": str(tmp / "cache"),
              "file_roots": {"base": [str(tmp / "roots")]}}
    req = {"sitedirs": [str(d) for d in sitedirs], "want": want,
           "minion": dict(common, file_client="local", id="node-1"), "master": common}
    res = subprocess.run([sys.executable, "-I", os.path.join(REPO, "tests", "support", "salt_loaders.py")],
                         input=json.dumps(req), capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


def test_installed_package_has_the_loader_dirs_and_utils(installed):
    _tmp, target = installed
    for kind, top in (("modules", "_modules"), ("states", "_states"), ("runners", "_runners"),
                      ("beacons", "_beacons"), ("pillar", "_pillar"), ("output", "_output")):
        want = sorted(f for f in os.listdir(os.path.join(REPO, top)) if f.endswith(".py"))
        got = sorted(f for f in os.listdir(target / "pigsty_salt" / kind) if f.endswith(".py"))
        assert got == want, kind
    utils = sorted(f for f in os.listdir(os.path.join(REPO, "_utils")) if f.endswith(".py"))
    assert all((target / f).is_file() for f in utils)
    entry_points = (next(target.glob("pigsty_salt-*.dist-info")) / "entry_points.txt").read_text()
    assert "[salt.loader]" in entry_points and "pigsty_salt:loader_dirs" in entry_points


def test_salt_loaders_find_the_suite_from_the_installed_package(installed):
    tmp, target = installed
    got = ask(tmp, [target], WANT)
    for kind, names in WANT.items():
        for name in names:
            assert got[kind][name] is True, (kind, name, got[kind][name])
    for name, path in got["files"].items():
        if name == "test.ping":
            continue
        assert path.startswith(str(target / "pigsty_salt") + os.sep), (name, path)
    # the _utils the modules import come from the installed package too
    assert got["imported"]["pigsty_inventory"] == str(target / "pigsty_inventory.py")
    assert not any(REPO in (p or "") for p in got["imported"].values())


def test_without_the_package_salt_finds_none_of_it(installed):
    """The same request without the installed directory: the loaders find nothing of the suite
    (the test above does not pass by finding the repository some other way)."""
    tmp, _target = installed
    got = ask(tmp, [], {"modules": ["pigsty.identity", "test.ping"], "runners": ["pigsty.validate"]})
    assert got["modules"] == {"pigsty.identity": "'pigsty.identity' is not available.", "test.ping": True}
    assert got["runners"]["pigsty.validate"] != True  # noqa: E712
