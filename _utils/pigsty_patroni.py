"""A small, bounded client for Patroni's REST API (standard library only).

Every call has a total deadline (connect, send, headers and body together, enforced by a
timer that shuts the socket down), follows no redirect and reads at most MAX_BODY bytes.
Every failure, whatever the transport or HTTP layer raised (refused, reset, truncated,
garbage status line, slow answer, oversized answer), is a PatroniError naming the URL and
the reason, so the execution module, states, runners and the beacon report "Patroni on X
is down" clearly and a caller can move on.

How to reach the API is an ``Access``: HTTPS verified against the Pigsty CA (the server's
certificate must name the address asked, as the node certificates do), and HTTP basic
authentication, which Patroni requires for its unsafe methods (POST, PUT, PATCH, DELETE).
The password is never part of a URL, an error, a log line or the Access's repr.
"""
import base64
import http.client
import json
import socket
import ssl
import threading
import time

DEFAULT_TIMEOUT = 2.0
MAX_BODY = 1 << 20          # Patroni's largest answers (/cluster, /history) are a few KiB
RETRY_STATUSES = (502, 503)  # what Patroni answers for /config, /cluster while it bootstraps


class PatroniError(RuntimeError):
    """A Patroni REST call failed; ``status`` is the HTTP status when there was one."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class Access:
    """How to reach a Patroni REST API: HTTPS verified against ``ca_file`` (plain HTTP
    without one) and HTTP basic authentication with ``username`` / ``password`` (sent with
    every request when given). The SSL context is built once per Access."""

    __slots__ = ("ca_file", "username", "_password", "_context", "_lock")

    def __init__(self, ca_file=None, username=None, password=None):
        if (username is None) != (password is None):
            raise ValueError("Patroni REST access: give both a username and a password, or neither")
        if username is not None and (not isinstance(username, str) or ":" in username or not username):
            raise ValueError("Patroni REST access: the username must be a non-empty string without ':'")
        self.ca_file = ca_file
        self.username = username
        self._password = password
        self._context = None
        self._lock = threading.Lock()

    @property
    def scheme(self):
        return "https" if self.ca_file else "http"

    @property
    def authenticated(self):
        return self.username is not None

    def __repr__(self):
        return "Access(%s, ca_file=%r, username=%r%s)" % (
            self.scheme, self.ca_file, self.username, ", password=***" if self.authenticated else "")

    __str__ = __repr__

    def context(self):
        """The client SSL context: the CA file only, the server's name checked, TLS 1.2+."""
        with self._lock:
            if self._context is None:
                try:
                    ctx = ssl.create_default_context(cafile=self.ca_file)
                except (OSError, ValueError) as exc:
                    raise PatroniError("Patroni REST API: cannot load the CA file %s: %s" % (
                        self.ca_file, getattr(exc, "strerror", None) or type(exc).__name__))
                ctx.minimum_version = ssl.TLSVersion.TLSv1_2
                self._context = ctx
            return self._context

    def headers(self):
        if not self.authenticated:
            return {}
        token = base64.b64encode(("%s:%s" % (self.username, self._password)).encode("utf-8"))
        return {"Authorization": "Basic " + token.decode("ascii")}

    def connection(self, host, port, timeout):
        if self.ca_file:
            return _HTTPSConnection(host, int(port), timeout=timeout, context=self.context())
        return _HTTPConnection(host, int(port), timeout=timeout)


def _quickack(sock):
    """Acknowledge the answer's first segment at once. Patroni (Python's http.server, HTTP/1.0)
    writes its headers and its body separately, with Nagle on: the body waits for the ACK of
    the headers, which a client in delayed-ACK mode sends up to 40 ms late. Over TLS every
    request hit it: 43-48 ms per call in the sandbox, 4-5 ms with this (bench/patroni_rest.py)."""
    opt = getattr(socket, "TCP_QUICKACK", None)       # Linux only; elsewhere a no-op
    if sock is None or opt is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, opt, 1)
    except OSError:
        pass


class _HTTPConnection(http.client.HTTPConnection):
    """http.client's connection (it sets TCP_NODELAY), answers acknowledged at once."""

    def getresponse(self):
        _quickack(self.sock)
        return super().getresponse()


class _HTTPSConnection(http.client.HTTPSConnection):
    """The same over TLS."""

    def getresponse(self):
        _quickack(self.sock)
        return super().getresponse()


PLAIN = Access()     # plain HTTP, no credentials (a Patroni without TLS; the unit tests' servers)


def _read_body(resp, limit):
    chunks, size = [], 0
    while True:
        chunk = resp.read1(65536)
        if not chunk:
            if resp.length:      # closed before Content-Length was reached (read1 does not raise)
                raise http.client.IncompleteRead(b"".join(chunks), resp.length)
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise PatroniError("answer larger than %d bytes" % limit)
        chunks.append(chunk)


def request(host, port, path, method="GET", body=None, timeout=DEFAULT_TIMEOUT, max_body=MAX_BODY,
            access=None):
    """(HTTP status, decoded JSON body or text). Health endpoints answer 503 with a JSON
    body: that is a status, not an error. Anything else that goes wrong raises PatroniError
    within ``timeout`` seconds in total. ``access``: how to reach it (default PLAIN)."""
    access = access or PLAIN
    url = "%s://%s:%d%s" % (access.scheme, host, int(port), path)
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    headers.update(access.headers())
    conn = access.connection(host, port, timeout)
    expired = threading.Event()

    def _expire():          # the deadline: whatever is blocked on the socket fails now
        expired.set()
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(timeout, _expire)
    timer.daemon = True
    started = time.monotonic()
    timer.start()
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        status, raw = resp.status, _read_body(resp, max_body)
    except PatroniError as exc:
        raise PatroniError("Patroni REST API at %s: %s" % (url, exc))
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # the deadline's timer, or the socket's own timeout (the same bound) firing first
        if expired.is_set() or isinstance(exc, TimeoutError) or time.monotonic() - started >= timeout:
            reason = "no complete answer within %ss" % timeout
        else:
            reason = "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__
        raise PatroniError("Patroni REST API at %s unreachable: %s (after %.2fs)"
                           % (url, reason, time.monotonic() - started))
    finally:
        timer.cancel()
        conn.close()
    if expired.is_set():     # the answer was read, but only just: keep the promise anyway
        raise PatroniError("Patroni REST API at %s unreachable: no complete answer within %ss" % (url, timeout))
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


def get_json(host, port, path, timeout=DEFAULT_TIMEOUT, wait=0, interval=0.5, access=None):
    """The JSON document at ``path`` (HTTP 200 only). With ``wait`` > 0 seconds, a Patroni
    that is not answering yet (refused, reset, timed out) or answers 502/503 (for example
    /config while the cluster bootstraps) is asked again every ``interval`` seconds until
    ``wait`` has passed; then the error says how long it waited and what it last saw."""
    deadline = time.monotonic() + float(wait)
    while True:
        try:
            status, body = request(host, port, path, timeout=timeout, access=access)
        except PatroniError as exc:
            last = exc
        else:
            if status == 200 and isinstance(body, (dict, list)):
                return body
            last = PatroniError("Patroni %s:%s%s answered HTTP %s" % (host, port, path, status), status)
            if status not in RETRY_STATUSES:
                raise last
        if time.monotonic() + interval > deadline:
            if wait:
                raise PatroniError("%s (still so after waiting %ss)" % (last, wait), last.status)
            raise last
        time.sleep(interval)


def normalize_role(role):
    """Patroni 3 says master, Patroni 4 primary: we say primary."""
    return "primary" if role == "master" else role


def members(cluster_doc):
    """Members of a /cluster document: name, role, state, host, lag (bytes), timeline."""
    out = []
    for m in (cluster_doc or {}).get("members", []):
        role = normalize_role(m.get("role"))
        out.append({
            "name": m.get("name"), "role": "primary" if role == "leader" else role,
            "state": m.get("state"), "host": m.get("host"), "port": m.get("port"),
            "lag": m.get("lag", 0) if role not in ("leader", "primary", "standby_leader") else 0,
            "timeline": m.get("timeline"), "tags": m.get("tags", {}),
        })
    return sorted(out, key=lambda m: m["name"] or "")


# the roles that hold a cluster's leader key: a primary, or a standby cluster's standby leader
LEADER_ROLES = ("primary", "standby_leader")


def leader(cluster_doc):
    for m in members(cluster_doc):
        if m["role"] in LEADER_ROLES:
            return m
    return None


def find_leader(hosts, port, timeout=DEFAULT_TIMEOUT, access=None):
    """(leader member, list of errors) asking each host's /cluster in turn."""
    errors = []
    for host in hosts:
        try:
            doc = get_json(host, port, "/cluster", timeout=timeout, access=access)
        except PatroniError as exc:
            errors.append(str(exc))
            continue
        found = leader(doc)
        if found:
            return found, errors
        errors.append("%s: cluster has no leader yet" % host)
    return None, errors


def config_diff(current, desired):
    """The part of ``desired`` (nested dicts) that differs from ``current``: the PATCH."""
    patch = {}
    for key, value in desired.items():
        cur = (current or {}).get(key)
        if isinstance(value, dict):
            sub = config_diff(cur if isinstance(cur, dict) else {}, value)
            if sub:
                patch[key] = sub
        elif not _same(cur, value):
            patch[key] = value
    return patch


def _same(a, b):
    if a == b:
        return True
    # Patroni keeps parameters as given; compare numbers and strings loosely ("on" vs True).
    norm = lambda v: str(v).lower() if not isinstance(v, bool) else ("on" if v else "off")
    return norm(a) == norm(b)


# ------------------------------------------------------------------ switchover: early release
def lsn(text):
    """'0/4193888' -> int, as Patroni's REST API reports WAL positions."""
    hi, lo = str(text).strip().split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


def parse_controldata(text):
    """pg_controldata's output -> {field: value}."""
    out = {}
    for line in text.splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            out[key.strip()] = value.strip()
    return out


def shutdown_checkpoint(controldata):
    """The LSN of the shutdown checkpoint of a cleanly shut down primary, else None (still
    running, or shut down in recovery)."""
    if controldata.get("Database cluster state") != "shut down":
        return None
    try:
        return lsn(controldata["Latest checkpoint location"])
    except (KeyError, ValueError):
        return None


def wal_position(status):
    """How far a replica has WAL, from its /patroni answer (received or replayed)."""
    xlog = (status or {}).get("xlog") or {}
    values = [v for v in (xlog.get("received_location"), xlog.get("replayed_location")) if isinstance(v, int)]
    return max(values) if values else None


def streaming(leader_status):
    """Members that stream WAL from the leader right now: the application names of its
    walsenders in state 'streaming', from the leader's /patroni answer (pg_stat_replication)."""
    return {r.get("application_name") for r in (leader_status or {}).get("replication") or []
            if r.get("state") == "streaming"}


def switchover_candidates(cluster_doc, leader_status, max_lag):
    """Which replicas a planned switchover may go to, and why the others may not.

    Returns ([(name, lag bytes)] best first, {name: reason}). A candidate must be a running
    replica without nofailover, lag at most ``max_lag`` bytes, and stream from the leader:
    a replica that is not streaming (just restarted, rewound, slot not created yet) reports
    a small lag from its own replay position while it misses the leader's newest WAL, and a
    switchover to it forks the timeline and loses what it misses. Every reason a replica is
    refused is given (a replica cut off from the leader is usually behind as well)."""
    live = streaming(leader_status)
    ok, why = [], {}
    for m in members(cluster_doc):
        name = m["name"]
        if m["role"] in ("primary", "standby_leader"):
            continue
        reasons = []
        if m["role"] != "replica" or m["state"] not in ("running", "streaming"):
            reasons.append("not a running replica (role %s, state %s)" % (m["role"], m["state"]))
        else:
            if name not in live:
                reasons.append("not streaming from the leader (no walsender in state streaming for it)")
            if not isinstance(m["lag"], int) or m["lag"] > max_lag:
                reasons.append("lag %s bytes, more than max_lag %d" % (m["lag"], max_lag))
        if m["tags"].get("nofailover"):
            reasons.append("tagged nofailover")
        if reasons:
            why[name] = "; ".join(reasons)    # every reason, the most fundamental first
        else:
            ok.append((name, m["lag"]))
    ok.sort(key=lambda x: (x[1], x[0]))
    return ok, why


def caught_up(leader_status, candidate_status):
    """(True, detail) when the candidate has received and flushed every WAL byte the leader
    had written when ``leader_status`` was read, on the leader's timeline."""
    leader_status, candidate_status = leader_status or {}, candidate_status or {}
    target = (leader_status.get("xlog") or {}).get("location")
    received = (candidate_status.get("xlog") or {}).get("received_location")
    if not isinstance(target, int):
        return False, "the leader reported no WAL position"
    if candidate_status.get("timeline") != leader_status.get("timeline"):
        return False, "on timeline %s, the leader on %s" % (candidate_status.get("timeline"),
                                                            leader_status.get("timeline"))
    if not isinstance(received, int):
        return False, "has received no WAL by streaming"
    if received < target:
        return False, "received up to %d, the leader is at %d (%d bytes behind)" % (received, target,
                                                                                  target - received)
    return True, "received up to %d, the leader is at %d" % (received, target)


def writable_primary(status, body):
    """True when a /primary answer says both: this member holds the leader key (HTTP 200)
    and PostgreSQL is out of recovery (the body's role, from pg_is_in_recovery()). Patroni 3
    answers 200 from the moment it holds the key, while the promotion may still be going."""
    return status == 200 and isinstance(body, dict) and normalize_role(body.get("role")) == "primary"
