"""The validation cache: each part of the inventory is validated once per version of it
(a changed inventory re-validates what changed; an unchanged one does not), and the ext_pillar
validates once per inventory version, not once per minion. The problems are the same with and
without the cache."""
import copy

import pytest

import pigsty_inventory as inv_mod
import synthetic
from loader import load_module
from pillar_fixture import default_pillar, meta_pillar


@pytest.fixture
def cache():
    return inv_mod.ValidationCache()


@pytest.fixture
def counted(monkeypatch):
    """Names of the clusters whose checks actually ran, in order."""
    ran = []
    real = inv_mod._validate_cluster

    def counting(name, *args):
        ran.append(name)
        return real(name, *args)
    monkeypatch.setattr(inv_mod, "_validate_cluster", counting)
    return ran


def _broken(pillar):
    clusters = pillar["pigsty"]["clusters"]
    clusters["pg-test"]["hosts"]["10.10.10.12"]["pg_seq"] = 1          # duplicate pg_seq
    clusters["pg-test"]["vars"]["pg_vip_address"] = "10.10.10.2/24"     # pg-meta's VIP
    clusters["pg-meta"]["hosts"]["10.10.10.11"] = {"pg_seq": 2, "pg_role": "replica"}  # node-1 twice
    return pillar


@pytest.mark.parametrize("make", [default_pillar, lambda: _broken(default_pillar()),
                                  lambda: synthetic.pillar(40)])
@pytest.mark.parametrize("private", [None, set(), {"pg-test"}])
def test_the_cache_does_not_change_the_problems(cache, make, private):
    pillar = make()
    expected = inv_mod.validate(copy.deepcopy(pillar), private)
    assert inv_mod.validate(pillar, private, cache) == expected            # cold
    assert inv_mod.validate(pillar, private, cache) == expected            # warm
    assert inv_mod.validate(copy.deepcopy(pillar), private, cache) == expected


def test_an_unchanged_inventory_is_not_validated_again(cache, counted):
    pillar = synthetic.pillar(30)
    assert inv_mod.validate(pillar, None, cache) == []
    assert len(counted) == 30
    del counted[:]
    assert inv_mod.validate(copy.deepcopy(pillar), None, cache) == []    # equal data, new objects
    assert counted == []
    assert cache.stats()["hits"] == 31 and cache.stats()["misses"] == 31   # global part + clusters


def test_a_changed_cluster_is_validated_again_and_only_it(cache, counted):
    pillar = synthetic.pillar(30)
    inv_mod.validate(pillar, None, cache)
    del counted[:]
    pillar["pigsty"]["clusters"]["pg-c00007"]["vars"]["pg_port"] = 70000
    problems = inv_mod.validate(pillar, None, cache)
    assert counted == ["pg-c00007"]
    assert problems == ["pigsty:clusters:pg-c00007:vars:pg_port: expected a port number 1-65535, "
                        "got 70000"]
    del counted[:]
    del pillar["pigsty"]["clusters"]["pg-c00007"]["vars"]["pg_port"]
    assert inv_mod.validate(pillar, None, cache) == [] and counted == []   # that version is known


def test_a_changed_global_part_validates_every_cluster_again(cache, counted):
    pillar = synthetic.pillar(10)
    inv_mod.validate(pillar, None, cache)
    del counted[:]
    pillar["pigsty"]["nodes"]["spare"] = {"ip": "10.0.0.20"}
    assert inv_mod.validate(pillar, None, cache) == []
    assert len(counted) == 10
    del counted[:]
    pillar["pigsty"]["vars"]["pg_rto_plan"] = "nope"
    assert len(inv_mod.validate(pillar, None, cache)) == 10 and len(counted) == 10


def test_checks_across_clusters_run_on_cached_clusters(cache, counted):
    pillar = synthetic.pillar(10)
    inv_mod.validate(pillar, None, cache)
    del counted[:]
    # pg-c00009 takes pg-c00002's VIP and one of its nodes: only pg-c00009 changed, the
    # duplicates are still found against pg-c00002's cached result
    c2 = pillar["pigsty"]["clusters"]["pg-c00002"]
    c9 = pillar["pigsty"]["clusters"]["pg-c00009"]
    c9["vars"]["pg_vip_address"] = c2["vars"]["pg_vip_address"]
    c9["hosts"]["10.1.2.13"] = {"pg_seq": 4, "pg_role": "replica"}
    problems = inv_mod.validate(pillar, None, cache)
    assert counted == ["pg-c00009"]
    assert any("hosts:10.1.2.13: node is already a member of cluster pg-c00002" in p for p in problems)
    assert any("pg-c00009:vars:pg_vip_address: 10.1.2.3 is also the VIP of cluster pg-c00002" in p
               for p in problems)
    assert problems == inv_mod.validate(copy.deepcopy(pillar))


def test_private_and_public_views_of_a_cluster_are_kept_apart(cache):
    public = synthetic.pillar(5, private=None)
    # the public view lacks the secrets: fine structurally, a problem when they are expected
    assert inv_mod.validate(public, set(), cache) == []
    assert any("missing password" in p for p in inv_mod.validate(public, {"pg-c00001"}, cache))
    mine = synthetic.minion_pillar(public, "pg-c00001")
    assert inv_mod.validate(mine, {"pg-c00001"}, cache) == []


def test_the_cache_is_bounded(counted):
    cache = inv_mod.ValidationCache(max_entries=4)
    pillar = synthetic.pillar(10)
    assert inv_mod.validate(pillar, None, cache) == []
    assert cache.stats()["entries"] == 4
    assert inv_mod.validate(pillar, None, cache) == []
    assert cache.stats()["entries"] == 4


# ------------------------------------------------------------------ the ext_pillar
@pytest.fixture
def ext(monkeypatch):
    """_pillar/pigsty.py as Salt loads it on the master, with a fresh process cache."""
    monkeypatch.setattr(inv_mod, "VALIDATIONS", inv_mod.ValidationCache())
    return load_module("_pillar/pigsty.py", opts={"id": "salt-master"})


def test_ext_pillar_validates_once_per_inventory_version(ext, counted):
    """A pillar refresh of every minion: each cluster is checked at most twice (in another
    minion's public view, and with its secrets for its own members), not once per minion."""
    n = 20
    public = synthetic.pillar(n, private=None)
    minions = [("meta", synthetic.meta_pillar(public))] + [
        (synthetic.minion(i, seq), synthetic.minion_pillar(public, synthetic.cluster_name(i)))
        for i in range(n) for seq in (1, 2, 3)]
    for minion_id, pillar in minions:
        assert ext.ext_pillar(minion_id, pillar) == {}
    assert len(counted) <= 2 * n
    assert set(counted) == {synthetic.cluster_name(i) for i in range(n)}
    del counted[:]
    for minion_id, pillar in minions:                     # the same inventory again: no checks
        ext.ext_pillar(minion_id, pillar)
    assert counted == []
    # an edit of one cluster: that cluster is checked again, not the others
    changed = synthetic.pillar(n, private=None)
    changed["pigsty"]["clusters"]["pg-c00004"]["vars"]["pg_conf"] = "olap"
    ext.ext_pillar("n00004-1", synthetic.minion_pillar(changed, "pg-c00004"))
    ext.ext_pillar("n00005-1", synthetic.minion_pillar(changed, "pg-c00005"))
    assert sorted(counted) == ["pg-c00004", "pg-c00004"]  # with and without its secrets


def test_ext_pillar_refuses_an_invalid_inventory_every_time(ext):
    pillar = default_pillar(clusters=["pg-test"])
    pillar["pigsty"]["clusters"]["pg-test"]["hosts"]["10.10.10.12"]["pg_role"] = "boss"
    for _ in range(2):                                     # the second from the cache
        with pytest.raises(inv_mod.InventoryError) as err:
            ext.ext_pillar("node-2", pillar)
        assert "unknown role 'boss'" in str(err.value)


def test_ext_pillar_checks_the_own_cluster_private_part(ext):
    pillar = default_pillar(clusters=["pg-meta"])          # node-1 gets pg-meta's secrets only
    with pytest.raises(inv_mod.InventoryError) as err:
        ext.ext_pillar("node-1", pillar)
    assert "pigsty:clusters:pg-test:vars:pg_admin_password: missing password" in str(err.value)
    assert ext.ext_pillar("meta", meta_pillar()) == {}
    assert ext.ext_pillar("salt-master", pillar) == {}     # the master: public view only


def test_ext_pillar_checks_the_meta_nodes_etcd_secrets(ext):
    """The meta node creates every cluster's etcd user: without the root password or a
    cluster's etcd password in its pillar, its pillar is refused (naming both fields)."""
    with pytest.raises(inv_mod.InventoryError) as err:
        ext.ext_pillar("meta", default_pillar(clusters=["pg-meta"]))
    text = str(err.value)
    assert "pigsty:dcs:etcd_root_password: missing password" in text
    assert "pigsty:dcs:etcd_users:pg-test: missing on the meta node" in text
    assert "Sandbox" not in text                          # no password in the message
    pillar = meta_pillar()
    pillar["pigsty"]["vars"]["etcd_auth"] = False         # no authentication: nothing needed
    del pillar["pigsty"]["dcs"]
    assert ext.ext_pillar("meta", pillar) == {}


def test_ext_pillar_unknown_minion_and_foreign_pillar(ext):
    with pytest.raises(inv_mod.InventoryError) as err:
        ext.ext_pillar("stranger", default_pillar(clusters=[]))
    assert "pigsty:nodes:stranger" in str(err.value)
    assert ext.ext_pillar("other", {"something": "else"}) == {}


def test_salt_loaders_of_one_process_share_the_cache(tmp_path, monkeypatch):
    """Salt builds a new pillar loader for each compile; the cache lives in the _utils module,
    which every loader of the master worker process imports once (sys.modules)."""
    salt_loader = pytest.importorskip("salt.loader")
    from pillar_fixture import REPO
    from salt_master import master_opts
    import os
    monkeypatch.setattr(inv_mod, "VALIDATIONS", inv_mod.ValidationCache())
    opts = master_opts(tmp_path, [os.path.join(REPO, "pillar")])
    opts.update(pillar_dirs=[os.path.join(REPO, "_pillar")], utils_dirs=[os.path.join(REPO, "_utils")])
    public = synthetic.pillar(10, private=None)
    for i in range(3):
        ext_pillar = salt_loader.pillars(opts, {})["pigsty"]
        assert ext_pillar(synthetic.minion(i, 1), synthetic.minion_pillar(public, synthetic.cluster_name(i))) == {}
    # 10 public cluster checks + the global part once, then each minion's own cluster with secrets
    assert inv_mod.VALIDATIONS.stats()["misses"] == 11 + 3
