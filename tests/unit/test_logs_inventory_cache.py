"""`salt-run pigsty.logs ...` and `pigsty.logs_vacuum` read the inventory from the master's
shared cache (_utils/pigsty_inventory_cache.py, the HA runner's too): the pillar is rendered
once while no pillar file changes, across salt-run processes (the cache file, mode 0600), and
again when a file is edited, added or removed, or after the bounded age."""
import os
import stat
import time
import types

import pytest

import pigsty_ha_inventory
import pigsty_inventory_cache
from loader import load_module
from pillar_fixture import default_pillar


@pytest.fixture
def runner(tmp_path, monkeypatch):
    pillar = tmp_path / "pillar"
    (pillar / "clusters").mkdir(parents=True)
    for rel in ("top.sls", "pigsty.sls", os.path.join("clusters", "pg-test.sls")):
        (pillar / rel).write_text("# rendered by the fake below\n")
    old = time.time() - 100                  # everything older than what the tests change
    for path in (pillar / "top.sls", pillar / "pigsty.sls", pillar / "clusters" / "pg-test.sls",
                 pillar / "clusters", pillar):
        os.utime(path, (old, old))
    remote = tmp_path / "remote"
    remote.mkdir()
    for ip in ("10.10.10.11", "10.10.10.12", "10.10.10.13"):
        (remote / ("remote-%s.journal" % ip)).write_text("")
    mod = load_module("_runners/pigsty.py", opts={"cachedir": str(tmp_path / "cache"),
                                                  "pillar_roots": {"base": [str(pillar)]}}, context={})
    monkeypatch.setattr(mod.pigsty_logs, "REMOTE_DIR", str(remote))
    files_of = mod.pigsty_logs.files_of
    monkeypatch.setattr(mod.pigsty_logs, "files_of", lambda hosts: files_of(hosts, str(remote)))
    rendered = []

    def full_inventory(opts):
        rendered.append(1)
        return default_pillar(), []
    monkeypatch.setattr(pigsty_inventory_cache.pigsty_pillar, "full_inventory", full_inventory)
    ran = []
    monkeypatch.setattr(mod.subprocess, "run", lambda argv, **kw: ran.append(argv) or types.SimpleNamespace(
        returncode=0, stdout="", stderr="Vacuuming done, freed 0B"))
    pigsty_inventory_cache._CACHE.clear()
    mod.pillar, mod.rendered, mod.ran = pillar, rendered, ran
    yield mod
    pigsty_inventory_cache._CACHE.clear()


def new_process():
    """The next salt-run is a process of its own: only the cache file is left."""
    pigsty_inventory_cache._CACHE.clear()


def test_two_log_reads_with_an_unchanged_pillar_render_it_once(runner):
    first = runner.logs(cluster="pg-test")
    assert first.startswith("# logs of node-1, node-2, node-3 since ")
    assert len(runner.rendered) == 1
    assert runner.logs(cluster="pg-test", ins="pg-test-2").startswith("# logs of node-2 since ")
    assert len(runner.rendered) == 1                       # this process
    new_process()
    runner.logs(cluster="pg-test")
    assert len(runner.rendered) == 1                       # another salt-run: the cache file
    cache_file = os.path.join(runner.__opts__["cachedir"], "pigsty", "inventory.json")
    assert stat.S_IMODE(os.stat(cache_file).st_mode) == 0o600
    # journalctl read only the inventory's addresses' files
    assert [a for a in runner.ran[0] if a.startswith("--file=")] == [
        "--file=%s" % os.path.join(runner.pigsty_logs.REMOTE_DIR, "remote-10.10.10.1%d.journal" % i)
        for i in (1, 2, 3)]


def test_an_edited_pillar_file_renders_it_again(runner):
    runner.logs(cluster="pg-test")
    later = time.time() + 5
    os.utime(runner.pillar / "clusters" / "pg-test.sls", (later, later))      # an edit
    new_process()
    runner.logs(cluster="pg-test")
    assert len(runner.rendered) == 2
    runner.logs(cluster="pg-test")                          # and then cached again
    assert len(runner.rendered) == 2


def test_an_edit_is_seen_by_the_same_process_too(runner):
    runner.logs(cluster="pg-test")
    later = time.time() + 5
    os.utime(runner.pillar / "pigsty.sls", (later, later))
    runner.logs(cluster="pg-test")
    assert len(runner.rendered) == 2


def test_a_file_added_or_removed_renders_it_again(runner):
    runner.logs_vacuum()
    assert len(runner.rendered) == 1
    added = runner.pillar / "clusters" / "pg-new.sls"
    added.write_text("# x\n")
    os.utime(added, (1, 1))                  # copied with an old mtime: its directory changed
    new_process()
    runner.logs_vacuum()
    assert len(runner.rendered) == 2
    old = time.time() - 100
    for path in (runner.pillar / "clusters", added):
        os.utime(path, (old, old))
    runner.logs_vacuum()                     # the tree as it is now, all older than 100 s
    assert len(runner.rendered) == 3
    added.unlink()                           # its directory's mtime is now
    new_process()
    runner.logs_vacuum()
    assert len(runner.rendered) == 4


def test_logs_vacuum_uses_the_cached_inventory_and_its_retention(runner):
    runner.logs(cluster="pg-test")
    out = runner.logs_vacuum()
    assert out == "Vacuuming done, freed 0B" and len(runner.rendered) == 1
    assert runner.ran[-1][-2:] == ["--vacuum-size=1G", "--vacuum-time=15d"]


def test_the_cache_is_bounded_in_age(runner, monkeypatch):
    runner.logs(cluster="pg-test")
    real_time = time.time
    monkeypatch.setattr(pigsty_inventory_cache.time, "time", lambda: real_time() + 301)
    new_process()
    runner.logs(cluster="pg-test")
    assert len(runner.rendered) == 2


def test_the_ha_runners_share_the_same_cache(runner):
    runner.logs(cluster="pg-test")
    new_process()
    _merged, inv = pigsty_ha_inventory.load(runner.__opts__)
    assert "pg-test" in inv["clusters"] and len(runner.rendered) == 1
    assert pigsty_ha_inventory._CACHE is pigsty_inventory_cache._CACHE
