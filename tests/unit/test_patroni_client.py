"""The Patroni REST client: role names, members, config diff, and bounded failures."""
import socket

import pytest

import pigsty_patroni as p

CLUSTER_3 = {"members": [
    {"name": "pg-test-1", "role": "leader", "state": "running", "host": "10.10.10.11", "timeline": 1},
    {"name": "pg-test-2", "role": "replica", "state": "streaming", "host": "10.10.10.12", "lag": 0, "timeline": 1},
    {"name": "pg-test-3", "role": "replica", "state": "running", "host": "10.10.10.13", "lag": 1024, "timeline": 1},
]}


def test_role_names_of_patroni_3_and_4():
    assert p.normalize_role("master") == "primary"
    assert p.normalize_role("primary") == "primary"
    assert p.normalize_role("replica") == "replica"


def test_members_and_leader():
    members = p.members(CLUSTER_3)
    assert [m["role"] for m in members] == ["primary", "replica", "replica"]
    assert members[2]["lag"] == 1024
    assert p.leader(CLUSTER_3)["name"] == "pg-test-1"
    assert p.leader({"members": [{"name": "x", "role": "replica"}]}) is None


def test_config_diff_is_the_minimal_patch():
    current = {"ttl": 30, "loop_wait": 10, "postgresql": {"parameters": {"max_connections": 100, "wal_level": "logical"}}}
    desired = {"ttl": 30, "loop_wait": 5, "postgresql": {"parameters": {"max_connections": "100", "hot_standby": True}}}
    assert p.config_diff(current, desired) == {"loop_wait": 5, "postgresql": {"parameters": {"hot_standby": True}}}
    assert p.config_diff(desired, desired) == {}


def test_unreachable_patroni_is_a_clear_bounded_error():
    # a port on loopback with nothing listening
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(p.PatroniError) as err:
        p.get_json("127.0.0.1", port, "/patroni", timeout=1)
    assert "unreachable" in str(err.value) and str(port) in str(err.value)
    leader, errors = p.find_leader(["127.0.0.1"], port, timeout=1)
    assert leader is None and errors


# ---------------------------------------------------------------- bounded, hardened client
# Real sockets on loopback (tests/support/scripted_http.py), no mocks.
import threading  # noqa: E402
import time  # noqa: E402

from scripted_http import ScriptedHTTP, free_port  # noqa: E402


def test_read_waits_through_502_while_the_cluster_bootstraps():
    with ScriptedHTTP([(502, {}), (502, {}), (200, {"ttl": 30})]) as srv:
        assert p.get_json("127.0.0.1", srv.port, "/config", timeout=1, wait=5, interval=0.05) == {"ttl": 30}
        assert srv.hits == 3


def test_read_waits_through_connection_refused_until_patroni_listens():
    port = free_port()
    late = socket.socket()
    late.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    def listen_later():      # Patroni starting: nothing listens for 0.4 s, then it answers
        time.sleep(0.4)
        late.bind(("127.0.0.1", port))
        late.listen(4)
        conn, _ = late.accept()
        conn.recv(65536)
        body = b'{"state": "running"}'
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        conn.close()

    t = threading.Thread(target=listen_later, daemon=True)
    t.start()
    try:
        assert p.get_json("127.0.0.1", port, "/patroni", timeout=1, wait=5, interval=0.1) == {"state": "running"}
    finally:
        t.join(5)
        late.close()


def test_read_gives_up_after_its_bound_with_a_clear_message():
    with ScriptedHTTP([(502, {})]) as srv:
        started = time.monotonic()
        with pytest.raises(p.PatroniError) as err:
            p.get_json("127.0.0.1", srv.port, "/config", timeout=1, wait=0.6, interval=0.1)
        assert time.monotonic() - started < 2
    assert "answered HTTP 502" in str(err.value) and "still so after waiting 0.6s" in str(err.value)
    assert err.value.status == 502


def test_a_read_without_wait_fails_at_once_and_other_statuses_are_not_retried():
    with ScriptedHTTP([(502, {})]) as srv:
        with pytest.raises(p.PatroniError):
            p.get_json("127.0.0.1", srv.port, "/config", timeout=1)
        assert srv.hits == 1
    with ScriptedHTTP([(404, {})]) as srv:
        with pytest.raises(p.PatroniError):
            p.get_json("127.0.0.1", srv.port, "/config", timeout=1, wait=5)
        assert srv.hits == 1


def test_the_timeout_bounds_the_whole_call_not_each_read():
    # headers dribbled one byte every 0.2 s: each read is quick, the whole answer is not
    with ScriptedHTTP([("slow", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 0.2)]) as srv:
        started = time.monotonic()
        with pytest.raises(p.PatroniError) as err:
            p.request("127.0.0.1", srv.port, "/patroni", timeout=0.5)
        took = time.monotonic() - started
    assert took < 1.0, took
    assert "within 0.5s" in str(err.value)


@pytest.mark.parametrize("step, words", [
    (("raw", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\""), "IncompleteRead"),
    (("raw", b"garbage\r\n\r\n"), "BadStatusLine"),
    (("close",), "RemoteDisconnected"),
])
def test_every_http_error_is_a_patroni_error(step, words):
    with ScriptedHTTP([step]) as srv:
        with pytest.raises(p.PatroniError) as err:
            p.request("127.0.0.1", srv.port, "/patroni", timeout=1)
    assert words in str(err.value)


def test_redirects_are_not_followed():
    with ScriptedHTTP([("raw", b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/x\r\nContent-Length: 0\r\n\r\n")]) as srv:
        status, _body = p.request("127.0.0.1", srv.port, "/switchover", method="POST", body={}, timeout=1)
        assert status == 302 and srv.hits == 1
        with pytest.raises(p.PatroniError):
            p.get_json("127.0.0.1", srv.port, "/cluster", timeout=1)


def test_answers_are_capped():
    with ScriptedHTTP([(200, b"[" + b"0," * 600000 + b"0]")]) as srv:
        with pytest.raises(p.PatroniError) as err:
            p.request("127.0.0.1", srv.port, "/cluster", timeout=2)
    assert "larger than" in str(err.value)


def test_each_answer_is_acknowledged_at_once(monkeypatch):
    # Patroni writes headers and body in two segments with Nagle on: the client must not
    # delay its ACK of the first (40 ms per call over TLS otherwise; bench/patroni_rest.py)
    seen = []
    real = p._quickack

    def spy(sock):
        seen.append(sock is not None and sock.fileno() >= 0)
        real(sock)
    monkeypatch.setattr(p, "_quickack", spy)
    with ScriptedHTTP([(200, {"role": "replica"}), (200, {"role": "replica"})]) as srv:
        assert p.request("127.0.0.1", srv.port, "/patroni", timeout=1)[0] == 200
        assert p.request("127.0.0.1", srv.port, "/patroni", timeout=1, access=p.Access())[0] == 200
    assert seen == [True, True]


def test_the_quick_ack_sets_the_socket_option_and_tolerates_a_closed_socket():
    p._quickack(None)                  # no socket yet: nothing to do, no error
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    cli = socket.create_connection(srv.getsockname())
    conn, _ = srv.accept()
    try:
        p._quickack(cli)
        assert cli.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 1
    finally:
        cli.close()
        conn.close()
        srv.close()
    p._quickack(cli)                   # closed: ignored
