"""The Patroni beacon: validate() refuses bad config with a clear message; beacon() fires
only on a change of role, state or timeline, including Patroni unreachable and back."""
import os

import pytest

import pigsty_events
import pigsty_patroni
from loader import load_module
from pillar_fixture import REPO

GOOD = [{"cluster": "pg-test"}, {"instance": "pg-test-2"}, {"ip": "10.10.10.12"}, {"interval": 1}]


@pytest.fixture
def beacon(monkeypatch):
    mod = load_module("_beacons/patroni.py", "patroni_beacon", context={})
    # on a minion the beacon imports the synced _utils itself; here they are on sys.path
    mod.pigsty_events, mod.pigsty_patroni = pigsty_events, pigsty_patroni
    answers, accesses = [], []

    def fake_get_json(host, port, path, timeout, access=None):
        assert (host, path) == ("127.0.0.1", "/patroni") and timeout <= 5
        accesses.append(access)
        answer = answers.pop(0)
        if answer is None:
            raise pigsty_patroni.PatroniError("unreachable")
        return answer

    monkeypatch.setattr(pigsty_patroni, "get_json", fake_get_json)
    mod.answers, mod.accesses = answers, accesses
    return mod


def doc(role, state="running", timeline=1, lsn=100):
    return {"role": role, "state": state, "timeline": timeline, "xlog": {"location": lsn}}


def test_validate_accepts_a_good_config(beacon):
    assert beacon.validate(GOOD) == (True, "Valid beacon configuration")


@pytest.mark.parametrize("config,fragment", [
    ({"cluster": "pg-test"}, "must be a list"),
    ([{"cluster": "pg-test"}, {"instance": "pg-test-2"}], "missing ip"),
    (GOOD + [{"colour": "red"}], "unknown option(s) colour"),
    ([{"cluster": "PG test"}, {"instance": "pg-test-2"}, {"ip": "x"}], "cluster 'PG test'"),
    ([{"cluster": "pg-test"}, {"instance": "node2"}, {"ip": "x"}], "instance 'node2'"),
    (GOOD + [{"port": 99999}], "port 99999"),
    (GOOD + [{"timeout": 30}], "timeout 30"),
    (GOOD + [{"cafile": "ca.crt"}], "cafile 'ca.crt' is not an absolute path"),
])
def test_validate_refuses_bad_config(beacon, config, fragment):
    ok, message = beacon.validate(config)
    assert ok is False and fragment in message


def test_fires_only_on_changes(beacon):
    beacon.answers.extend([doc("replica"), doc("replica", lsn=200), doc("master", timeline=2),
                           doc("primary", timeline=2), None, None, doc("primary", timeline=2)])
    assert beacon.beacon(GOOD) == []                     # first poll: records only
    assert beacon.beacon(GOOD) == []                     # LSN moved: no event
    promoted = beacon.beacon(GOOD)                       # Patroni 3 says master
    assert len(promoted) == 1
    ev = promoted[0]
    assert (ev["old_role"], ev["new_role"], ev["timeline"]) == ("replica", "primary", 2)
    assert ev["cluster"] == "pg-test" and ev["instance"] == "pg-test-2" and ev["ip"] == "10.10.10.12"
    assert ev["tag"] == pigsty_events.EVENT_TAG and sorted(ev["changed"]) == ["role", "timeline"]
    assert beacon.beacon(GOOD) == []                     # Patroni 4 says primary: same role
    gone = beacon.beacon(GOOD)                           # unreachable
    assert gone[0]["new_role"] == "unreachable" and gone[0]["old_role"] == "primary"
    assert beacon.beacon(GOOD) == []                     # still unreachable
    back = beacon.beacon(GOOD)                           # back
    assert back[0]["old_role"] == "unreachable" and back[0]["new_role"] == "primary"


def test_state_change_alone_fires(beacon):
    beacon.answers.extend([doc("replica", state="running"), doc("replica", state="stopped")])
    beacon.beacon(GOOD)
    ev = beacon.beacon(GOOD)
    assert ev[0]["changed"] == ["state"] and ev[0]["state"] == "stopped"


def test_load_utils_leaves_no_module_behind_for_later_jobs(tmp_path):
    """The beacon runs in the minion's main process, from which jobs fork: the utils it
    imports must not stay in sys.modules (jobs would keep the code of before a sync)."""
    import shutil
    import sys
    utils = tmp_path / "utils"
    utils.mkdir()
    for name in ("pigsty_patroni", "pigsty_events"):
        shutil.copy(os.path.join(REPO, "_utils", name + ".py"), utils)
    saved = {name: sys.modules.get(name) for name in ("pigsty_patroni", "pigsty_events")}
    try:
        mod = load_module("_beacons/patroni.py", "patroni_beacon2", opts={"extension_modules": str(tmp_path)})
        mod._load_utils()
        assert callable(mod.pigsty_events.check_payload) and callable(mod.pigsty_patroni.get_json)
        assert "pigsty_events" not in sys.modules and "pigsty_patroni" not in sys.modules
        assert str(utils) not in sys.path
    finally:
        sys.modules.update({k: v for k, v in saved.items() if v is not None})


def test_with_a_cafile_it_asks_over_https_without_credentials_and_one_context(beacon):
    conf = GOOD + [{"cafile": "/etc/pki/pigsty/ca.crt"}]
    assert beacon.validate(conf)[0] is True
    beacon.answers.extend([doc("replica"), doc("replica")])
    beacon.beacon(conf)
    beacon.beacon(conf)
    first, second = beacon.accesses
    assert first is second                      # built once, its SSL context reused
    assert first.scheme == "https" and first.ca_file == "/etc/pki/pigsty/ca.crt"
    assert first.headers() == {}                # GET /patroni needs no login


def test_without_a_cafile_it_asks_over_plain_http(beacon):
    beacon.answers.append(doc("replica"))
    beacon.beacon(GOOD)
    assert beacon.accesses[0].scheme == "http"
