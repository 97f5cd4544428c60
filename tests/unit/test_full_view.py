"""The master's full view of the inventory, with Salt's own pillar code, offline (no daemon,
no network): every SLS of the pillar top rendered once gives what compiling every node's
pillar and merging them gave; and `salt-run pigsty.validate` prints a one-line summary plus
the problems."""
import os

import pytest

pytest.importorskip("salt.pillar")

import pigsty_pillar       # noqa: E402  (needs Salt)
import synthetic           # noqa: E402
from loader import load_module                 # noqa: E402
from pillar_fixture import REPO, default_pillar  # noqa: E402
from salt_master import master_opts             # noqa: E402

with open(os.path.join(REPO, "pillar", "top.sls")) as _fh:
    TOP = _fh.read()


def test_one_render_gives_the_merge_of_every_node_pillar_repository_pillar(tmp_path):
    opts = master_opts(tmp_path, [os.path.join(REPO, "pillar")])
    merged, problems = pigsty_pillar.full_inventory(opts)
    assert problems == []
    assert merged["pigsty"] == default_pillar()["pigsty"]
    per_minion, problems = pigsty_pillar.full_inventory_per_minion(opts)
    assert problems == [] and per_minion["pigsty"] == merged["pigsty"]


def test_one_render_gives_the_merge_of_every_node_pillar_synthetic(tmp_path):
    root = tmp_path / "pillar"
    synthetic.write_pillar_tree(str(root), 4, top_file=TOP)     # the repository's top file
    opts = master_opts(tmp_path, [str(root)])
    merged, problems = pigsty_pillar.full_inventory(opts)
    assert problems == []
    assert merged["pigsty"] == synthetic.inventory(4)             # every cluster's secrets too
    per_minion, problems = pigsty_pillar.full_inventory_per_minion(opts)
    assert problems == [] and per_minion["pigsty"] == merged["pigsty"]


def test_a_broken_pillar_file_is_a_problem(tmp_path):
    root = tmp_path / "pillar"
    synthetic.write_pillar_tree(str(root), 3, top_file=TOP)
    (root / "clusters" / "pg-c00001.sls").write_text("pigsty: {clusters: [unbalanced\n")
    merged, problems = pigsty_pillar.full_inventory(opts := master_opts(tmp_path, [str(root)]))
    assert problems and all(p.startswith("pillar: ") for p in problems)
    assert any("clusters.pg-c00001" in p for p in problems), problems
    assert "pg_users" in merged["pigsty"]["clusters"]["pg-c00002"]["vars"]   # the rest is there
    assert opts["id"] == "salt-master"


def test_top_sls_lists_every_file_once_in_order():
    top = {"base": {"*": ["pigsty"], "L@a,b": [{"match": "compound"}, "clusters.x"],
                    "c": ["clusters.y", "pigsty"]},
           "dev": {"*": ["other"]}}
    assert pigsty_pillar.top_sls(top) == {"base": ["pigsty", "clusters.x", "clusters.y"],
                                          "dev": ["other"]}
    assert pigsty_pillar.top_sls(top, pillarenv="dev") == {"dev": ["other"]}


# ------------------------------------------------------------------ salt-run pigsty.validate
def _runner(opts):
    return load_module("_runners/pigsty.py", opts=opts, context={})


def test_runner_validate_prints_a_summary_not_every_instance(tmp_path):
    root = tmp_path / "pillar"
    synthetic.write_pillar_tree(str(root), 6, top_file=TOP)
    runner = _runner(master_opts(tmp_path, [str(root)]))
    ret = runner.validate()
    assert ret == {"result": True, "nodes": 19, "meta": ["meta"], "dcs": ["meta"],
                   "summary": "inventory valid: 6 clusters, 18 instances, 19 nodes (meta: meta)"}
    verbose = runner.validate(verbose=True)
    assert verbose["clusters"]["pg-c00002"] == ["pg-c00002-1", "pg-c00002-2", "pg-c00002-3"]
    assert runner.__context__ == {}


def test_runner_validate_lists_the_problems_and_fails(tmp_path):
    root = tmp_path / "pillar"
    synthetic.write_pillar_tree(str(root), 6, top_file=TOP)
    (root / "clusters" / "pg-c00003.sls").write_text(
        "pigsty: {clusters: {pg-c00003: {vars: {pg_monitor_password: '', pg_conf: huge, "
        "patroni_password: P, haproxy_admin_password: H}}}}\n")
    runner = _runner(master_opts(tmp_path, [str(root)]))
    ret = runner.validate()
    assert ret["result"] is False and ret["retcode"] == 1 and runner.__context__["retcode"] == 1
    assert ret["summary"] == ("inventory invalid: 5 problems in 1 cluster; 6 clusters, "
                              "18 instances, 19 nodes (meta: meta)")
    assert len(ret["problems"]) == 5 and all("pg-c00003" in p for p in ret["problems"])
    # the private file lost its etcd password too (etcd_auth is on by default)
    assert "pigsty:clusters:pg-c00003:vars:pg_etcd_password: missing password" in "\n".join(ret["problems"])


@pytest.mark.parametrize("merge_lists", [False, True])
def test_merge_into_merges_as_salt_does(merge_lists):
    import copy
    import salt.utils.dictupdate
    a = {"pigsty": {"vars": {"x": [1, 2], "y": {"z": 1}}, "clusters": {"a": {"vars": {"p": 1}}}},
         "other": 1}
    b = {"pigsty": {"vars": {"x": [2, 3], "y": 5}, "clusters": {"a": {"vars": {"q": 2}},
                                                                 "b": {"hosts": {}}}},
         "other": {"now": "a mapping"}, "new": [1]}
    want = salt.utils.dictupdate.update(copy.deepcopy(a), copy.deepcopy(b), merge_lists=merge_lists)
    assert pigsty_pillar.merge_into(copy.deepcopy(a), copy.deepcopy(b), merge_lists) == want


def test_site_orchestration_gets_every_cluster_from_the_runner(tmp_path):
    """orch.site creates the clusters pigsty.validate names: it asks for them (verbose), as
    the summary alone names none."""
    import json
    import jinja2
    runner = _runner(master_opts(tmp_path, [os.path.join(REPO, "pillar")]))
    calls = []

    def saltutil_runner(name, arg=None, kwarg=None):
        calls.append((name, arg, kwarg))
        assert name == "pigsty.validate" and not arg
        return runner.validate(**(kwarg or {}))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(REPO, "salt")))
    env.filters["json"] = json.dumps
    text = env.get_template("orch/site.sls").render(salt={"saltutil.runner": saltutil_runner})
    assert len(calls) == 1
    assert "site-pg-meta:" in text and "site-pg-test:" in text and "site-infra:" in text
