"""The repository's default pillar (pillar/pigsty.sls + pillar/clusters/*.sls), merged the
way Salt's pillar merge would for the master's full view."""
import copy
import glob
import os

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def merge(a, b):
    out = copy.deepcopy(a)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load(name):
    with open(os.path.join(REPO, "pillar", name)) as fh:
        return yaml.safe_load(fh)


def default_pillar(clusters=None):
    """Full view (every private file) or, with ``clusters``, only those private files."""
    pillar = load("pigsty.sls")
    for path in sorted(glob.glob(os.path.join(REPO, "pillar", "clusters", "*.sls"))):
        name = os.path.basename(path)[:-4]
        if clusters is None or name in clusters:
            pillar = merge(pillar, load("clusters/" + name + ".sls"))
    if clusters is None:
        pillar = merge(pillar, _dcs())             # the meta nodes' etcd secrets
    return pillar


def _dcs():
    """pillar/dcs.sls plus what pillar/dcs_clusters.sls copies from each private file."""
    users = {}
    for path in sorted(glob.glob(os.path.join(REPO, "pillar", "clusters", "*.sls"))):
        name = os.path.basename(path)[:-4]
        password = load("clusters/" + name + ".sls")["pigsty"]["clusters"][name]["vars"].get("pg_etcd_password")
        if password is not None:
            users[name] = password
    return merge(load("dcs.sls"), {"pigsty": {"dcs": {"etcd_users": users}}})


def meta_pillar():
    """The meta node's pillar as pillar/top.sls targets it: the public inventory, pg-meta's
    private file (it hosts pg-meta) and etcd's secrets (dcs.sls, dcs_clusters.sls)."""
    return merge(default_pillar(clusters=["pg-meta"]), _dcs())
