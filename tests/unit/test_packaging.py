"""setup.cfg describes the whole suite as a Salt extension (installed for real in
tests/functional/test_salt_extension.py): every _utils file is a py_module, every loader
directory a package, and the entry point's function names the directories of a checkout."""
import configparser
import glob
import os

import pytest

from loader import load_module
from pillar_fixture import REPO

KINDS = {"modules": "_modules", "states": "_states", "runners": "_runners", "beacons": "_beacons",
         "pillar": "_pillar", "output": "_output"}


@pytest.fixture(scope="module")
def options():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(REPO, "setup.cfg"))
    return cfg


def _lines(value):
    return [v.strip() for v in value.strip().splitlines() if v.strip()]


def test_every_util_is_a_py_module(options):
    utils = sorted(os.path.basename(f)[:-3] for f in glob.glob(os.path.join(REPO, "_utils", "*.py")))
    assert sorted(_lines(options["options"]["py_modules"])) == utils


def test_every_loader_directory_is_a_package_mapped_to_the_top_level_dir(options):
    dirs = dict(line.split("=") for line in _lines(options["options"]["package_dir"]))
    dirs = {k.strip(): v.strip() for k, v in dirs.items()}
    assert dirs[""] == "_utils"
    packages = _lines(options["options"]["packages"])
    for kind, top in KINDS.items():
        assert "pigsty_salt." + kind in packages
        assert dirs["pigsty_salt." + kind] == top
    assert _lines(options["options.entry_points"]["salt.loader"]) == ["pigsty-salt = pigsty_salt:loader_dirs"]


def test_loader_dirs_in_a_checkout_are_the_top_level_dirs():
    pigsty_salt = load_module("pigsty_salt/__init__.py")
    assert pigsty_salt.loader_dirs() == {kind: [os.path.join(REPO, top)] for kind, top in KINDS.items()}


def test_loader_dirs_of_an_installed_package_are_its_own(tmp_path):
    """Installed, the package's modules/, states/, ... win over any directory beside it."""
    pkg = tmp_path / "pigsty_salt"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(open(os.path.join(REPO, "pigsty_salt", "__init__.py")).read())
    for kind, top in KINDS.items():
        (pkg / kind).mkdir()
        (tmp_path / top).mkdir()
    mod = load_module(str(pkg / "__init__.py"))              # an absolute path: that file
    assert mod.loader_dirs() == {kind: [str(pkg / kind)] for kind in KINDS}
