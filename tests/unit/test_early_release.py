"""The hand-off's early release of the leader key (_modules/pigsty_handoff._release_early):
the candidate is asked again, for a short bound, when it has not yet received the shutdown
checkpoint at the moment the old primary's clean shutdown is seen."""
import threading

import pigsty_patroni
from loader import load_module

MEMBERS = {"pg-test-1": "10.10.10.11", "pg-test-2": "10.10.10.12"}
CONTROL = {"Database cluster state": "shut down", "Latest checkpoint location": "0/3000028",
           "Latest checkpoint's TimeLineID": "4"}


def _module(monkeypatch, positions, deleted):
    mod = load_module("_modules/pigsty_handoff.py")
    monkeypatch.setattr(mod, "_controldata", lambda conf: CONTROL)
    answers = iter(positions)

    def get_json(host, port, path, timeout=None, access=None):
        pos = next(answers, positions[-1])
        return {"timeline": 4, "xlog": {"received_location": pos}}
    monkeypatch.setattr(mod.pigsty_patroni, "get_json", get_json)
    monkeypatch.setattr(mod.pigsty_pgsql, "leader_key", lambda conf: "/service/pg-test/leader")
    monkeypatch.setattr(mod.pigsty_pgsql, "dcs_client", lambda conf: {"cacert": "ca.crt", "cert": "node.crt", "key": "node.key"})
    monkeypatch.setattr(mod.pigsty_pgsql, "dcs_endpoints", lambda conf: ["10.10.10.10:2379"])

    class Client:
        def __init__(self, url, **kwargs):
            # the node certificate, no password (etcd takes it as the node's user)
            assert kwargs.get("certfile") == "node.crt" and kwargs.get("keyfile") == "node.key"
            assert not kwargs.get("password")

        def delete(self, key, prev_value=None):
            deleted.append((key, prev_value))
            return 200, {}
    monkeypatch.setattr(mod.pigsty_etcd, "Client", Client)
    return mod


def test_a_candidate_that_receives_the_checkpoint_a_moment_later_still_gets_the_key(monkeypatch):
    checkpoint = pigsty_patroni.lsn("0/3000028")
    deleted, marks = [], {}
    mod = _module(monkeypatch, [checkpoint - 200, checkpoint - 40, checkpoint + 40], deleted)
    how = mod._release_early({"dcs_type": "etcd"}, "pg-test-1", MEMBERS, "pg-test-2", 8008,
                             threading.Event(), marks)
    assert how.startswith("released the leader key") and deleted == [("/service/pg-test/leader", "pg-test-1")]
    assert "leader key released" in marks


def test_a_candidate_that_never_gets_it_leaves_the_key_to_patroni_within_the_bound(monkeypatch):
    checkpoint = pigsty_patroni.lsn("0/3000028")
    deleted = []
    mod = _module(monkeypatch, [checkpoint - 200], deleted)
    monkeypatch.setattr(mod, "CHECKPOINT_WAIT", 0.2)
    how = mod._release_early({"dcs_type": "etcd"}, "pg-test-1", MEMBERS, "pg-test-2", 8008,
                             threading.Event(), {})
    assert how == "left to Patroni (no candidate has the shutdown checkpoint yet)" and deleted == []
