"""etcd over HTTPS with authentication: the client every module, state and runner uses.

Patroni (``etcd:``, the v2 API) and Debian's vip-manager 1.0.2 (its v2 client,
github.com/coreos/etcd/client) keep a cluster's keys in etcd's v2 store, so each cluster
gets a **v2** user and role: read and write on its own Patroni prefix
(``<pg_namespace>/<cluster>`` and everything under it), nothing else. etcd 3.4 keeps v2
and v3 authentication apart, so the v3 API is locked as well: it gets a root user and
authentication too (nothing of ours uses v3; left open, anyone could remove members or
fill the backend through it).

Who logs in how. etcd asks every client for a certificate of the Pigsty CA
(``--client-cert-auth``). A request without an ``Authorization`` header is then the v2 user
named like the certificate's CN, that is the node's minion id: each database node has a
**node user** holding its cluster's role, so Patroni, vip-manager and the hand-off log in with
the node certificate they already have. Passwords stay for root (the meta node's states) and
for each cluster's user (people and tools off the nodes). Why not passwords on the nodes:
etcd's v2 API checks a password with bcrypt on **every** request (v3 has tokens; v2 has
none): bench/etcd_login.py measured 0.069 s per GET with a password against 0.0044 s with
the certificate alone, and with Patroni and vip-manager on passwords a switchover's clients
waited 3.9-5.2 s instead of about 1.4 s (docs/benchmarks.md).

Passwords travel in request bodies and HTTP Basic headers over TLS, never on a command
line (etcdctl's v2 mode takes ``--username user:password`` on argv or prompts on a tty).

Pure Python (standard library), no Salt import: tests use it against a real etcd.
"""
import base64
import json
import secrets
import ssl
import urllib.error
import urllib.parse
import urllib.request

ROOT = "root"
GUEST = "guest"
# Several Salt masters (meta nodes) share the HA runner's reconcile lock under HA_PREFIX
# (_utils/pigsty_ha_shared_lock.py): each meta node's user (its certificate's CN) holds
# MASTERS_ROLE. An underscore: no cluster can be named like it (CLUSTER_RE).
MASTERS_ROLE = "pigsty_masters"
HA_PREFIX = "/pigsty/ha"
TIMEOUT = 5
# etcd 3.4's v3 HTTP gateway, asked with a client certificate while v3 authentication is on
GATEWAY_REFUSES_CN = "CommonName of client sending a request against gateway will be ignored"


class EtcdError(Exception):
    """An etcd request failed; ``code`` is the HTTP status (None: no answer)."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


def user_name(cluster):
    """The etcd user (and role) of a PostgreSQL cluster: its name."""
    return cluster


def prefix(namespace, cluster):
    """A cluster's key prefix in Patroni's namespace: ``/service/pg-test``."""
    return "%s/%s" % ("/" + namespace.strip("/") if namespace.strip("/") else "", cluster)


def masters_paths():
    """v2 permission paths of the masters' role: the HA runner's keys, nothing else."""
    return [HA_PREFIX, HA_PREFIX + "/*"]


def role_paths(namespace, cluster):
    """v2 permission paths of a cluster's role: the directory itself (Patroni lists it)
    and everything under it. A v2 pattern ending in ``*`` is a prefix match."""
    base = prefix(namespace, cluster)
    return [base, base + "/*"]


def tls_context(cafile, certfile=None, keyfile=None):
    """A client TLS context that trusts ``cafile`` only (and checks the host name), with
    the client certificate ``certfile``/``keyfile`` when given."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if certfile:
        ctx.load_cert_chain(certfile, keyfile)
    return ctx


class Client:
    """One etcd endpoint (``https://HOST:PORT``) with a client certificate (etcd asks for
    one) and optional v2 Basic credentials. Without credentials, etcd takes the request as
    the user named like the certificate's CN."""

    def __init__(self, endpoint, cafile=None, username=None, password=None, timeout=TIMEOUT,
                 certfile=None, keyfile=None):
        self.endpoint = endpoint.rstrip("/")
        self.context = (tls_context(cafile, certfile, keyfile)
                        if self.endpoint.startswith("https://") else None)
        self.username, self.password = username, password
        self.timeout = timeout

    def as_user(self, username, password):
        """The same endpoint with other credentials."""
        twin = Client(self.endpoint, None, username, password, self.timeout)
        twin.context = self.context
        return twin

    def request(self, method, path, body=None, form=None, headers=None, auth=True):
        """(status, decoded JSON or None). HTTP errors are returned, not raised; no answer
        raises EtcdError. Nothing of the request (credentials) goes into an error text."""
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        if auth and self.username is not None:
            token = base64.b64encode(("%s:%s" % (self.username, self.password)).encode()).decode()
            hdrs["Authorization"] = "Basic " + token
        req = urllib.request.Request(self.endpoint + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise EtcdError("etcd %s did not answer %s %s: %s" % (
                self.endpoint, method, path.split("?")[0], getattr(exc, "reason", exc))) from None
        try:
            return status, json.loads(raw.decode() or "null")
        except ValueError:
            return status, raw.decode("utf-8", "replace")[:500]     # a plain-text answer

    def _ok(self, method, path, body=None, expect=(200, 201)):
        status, answer = self.request(method, path, body=body)
        if status not in expect:
            raise EtcdError("etcd %s: %s %s answered %s: %s" % (
                self.endpoint, method, path, status, _message(answer)), status)
        return answer

    # ---------------------------------------------------------------- v2 keys
    def get(self, key, recursive=False):
        """(status, answer) of a v2 GET of ``key``."""
        query = "?recursive=true" if recursive else ""
        return self.request("GET", "/v2/keys" + urllib.parse.quote(key) + query)

    def put(self, key, value):
        return self.request("PUT", "/v2/keys" + urllib.parse.quote(key), form={"value": value})

    def delete(self, key, recursive=False, prev_value=None):
        query = {}
        if recursive:
            query.update({"recursive": "true", "dir": "true"})
        if prev_value is not None:
            query["prevValue"] = prev_value
        return self.request("DELETE", "/v2/keys" + urllib.parse.quote(key)
                            + ("?" + urllib.parse.urlencode(query) if query else ""))

    def create(self, key, value, ttl):
        """Create ``key`` only if it does not exist (v2 prevExist=false), expiring after ``ttl``
        seconds: (status, answer); 201 created, 412 it exists."""
        return self.request("PUT", "/v2/keys" + urllib.parse.quote(key) + "?prevExist=false",
                            form={"value": value, "ttl": int(ttl)})

    def swap(self, key, value, prev_value=None):
        """Put ``value`` at ``key`` only if it still holds ``prev_value`` (v2 prevValue), or,
        with ``prev_value`` None, only if it does not exist (prevExist=false): (status,
        answer); 200/201 done, 412 another value (or it exists), 404 it does not exist."""
        cond = {"prevExist": "false"} if prev_value is None else {"prevValue": prev_value}
        return self.request("PUT", "/v2/keys" + urllib.parse.quote(key) + "?" + urllib.parse.urlencode(cond),
                            form={"value": value})

    def refresh(self, key, ttl, prev_value):
        """Renew ``key``'s TTL while it still holds ``prev_value`` (v2 refresh: watchers see no
        change): (status, answer); 200 renewed, 404 expired, 412 another value."""
        return self.request("PUT", "/v2/keys" + urllib.parse.quote(key) + "?" + urllib.parse.urlencode(
            {"refresh": "true", "prevExist": "true", "prevValue": prev_value, "ttl": int(ttl)}))

    def health(self):
        status, answer = self.request("GET", "/health", auth=False)
        return status == 200 and isinstance(answer, dict) and answer.get("health") in ("true", True)

    # ---------------------------------------------------------------- v2 auth
    def v2_auth_enabled(self):
        return bool(self._ok("GET", "/v2/auth/enable").get("enabled"))

    def v2_user(self, name):
        """The v2 user's role names, or None when there is no such user."""
        status, answer = self.request("GET", "/v2/auth/users/" + urllib.parse.quote(name))
        if status == 404:
            return None
        if status != 200:
            raise EtcdError("etcd %s: reading v2 user %s answered %s: %s" % (
                self.endpoint, name, status, _message(answer)), status)
        return sorted(r["role"] if isinstance(r, dict) else r for r in (answer.get("roles") or []))

    def v2_role(self, name):
        """{"read": [...], "write": [...]} of a v2 role, or None when there is none."""
        status, answer = self.request("GET", "/v2/auth/roles/" + urllib.parse.quote(name))
        if status == 404:
            return None
        if status != 200:
            raise EtcdError("etcd %s: reading v2 role %s answered %s: %s" % (
                self.endpoint, name, status, _message(answer)), status)
        kv = (answer.get("permissions") or {}).get("kv") or {}
        return {"read": sorted(kv.get("read") or []), "write": sorted(kv.get("write") or [])}

    def v2_roles(self):
        """The names of every v2 role."""
        answer = self._ok("GET", "/v2/auth/roles")
        return sorted(r.get("role") if isinstance(r, dict) else r for r in (answer or {}).get("roles") or [])

    def v2_delete_role(self, name):
        self._ok("DELETE", "/v2/auth/roles/" + urllib.parse.quote(name))

    def v2_put_role(self, name, paths):
        self._ok("PUT", "/v2/auth/roles/" + urllib.parse.quote(name),
                 {"role": name, "permissions": {"kv": {"read": list(paths), "write": list(paths)}}})

    def v2_revoke(self, name, read, write):
        self._ok("PUT", "/v2/auth/roles/" + urllib.parse.quote(name),
                 {"role": name, "revoke": {"kv": {"read": list(read), "write": list(write)}}})

    def v2_add_user(self, name, password, roles):
        body = {"user": name, "password": password}
        if roles:
            body["roles"] = list(roles)
        self._ok("PUT", "/v2/auth/users/" + urllib.parse.quote(name), body)

    def v2_users(self):
        """{user: [role names]} of every v2 user."""
        answer = self._ok("GET", "/v2/auth/users")
        out = {}
        for user in (answer or {}).get("users") or []:
            if isinstance(user, dict):
                out[user.get("user")] = sorted(r["role"] if isinstance(r, dict) else r
                                               for r in (user.get("roles") or []))
            else:
                out[user] = None        # an etcd that lists names only: ask one by one
        for name in [n for n, roles in out.items() if roles is None]:
            out[name] = self.v2_user(name) or []
        return out

    def v2_delete_user(self, name):
        self._ok("DELETE", "/v2/auth/users/" + urllib.parse.quote(name))

    def v2_revoke_roles(self, name, roles):
        self._ok("PUT", "/v2/auth/users/" + urllib.parse.quote(name), {"user": name, "revoke": list(roles)})

    def v2_grant(self, name, roles):
        self._ok("PUT", "/v2/auth/users/" + urllib.parse.quote(name), {"user": name, "grant": list(roles)})

    def v2_set_password(self, name, password):
        self._ok("PUT", "/v2/auth/users/" + urllib.parse.quote(name), {"user": name, "password": password})

    def v2_enable(self):
        self._ok("PUT", "/v2/auth/enable", expect=(200, 201, 409))

    def v2_login_works(self, name, password, key):
        """Whether ``name``/``password`` is accepted (a GET of ``key``, one of the user's
        own: 200 or 404 means accepted, 401/403 refused)."""
        status, _ = self.as_user(name, password).get(key)
        return status in (200, 404)

    # ---------------------------------------------------------------- v3 auth (lock only)
    def v3_call(self, path, body, token=None):
        headers = {"Authorization": token} if token else None
        return self.request("POST", "/v3" + path, body=body, headers=headers, auth=False)

    def v3_token(self, name, password):
        """(enabled, token): authentication state of the v3 API and, when enabled and the
        password is right, a token."""
        status, answer = self.v3_call("/auth/authenticate", {"name": name, "password": password})
        if status == 200 and isinstance(answer, dict) and answer.get("token"):
            return True, answer["token"]
        text = _message(answer)
        if "not enabled" in text:
            return False, None
        if "authentication failed" in text or "invalid" in text:
            return True, None
        if status == 400 and GATEWAY_REFUSES_CN in text:
            # etcd 3.4's HTTP gateway refuses a client certificate once v3 authentication is
            # on (it would drop the CN): on, and the v3 API is reachable over gRPC only
            return True, None
        raise EtcdError("etcd %s: v3 authenticate answered %s: %s" % (self.endpoint, status, text), status)

    def v3_lock(self, root_password):
        """Root user and role on the v3 API, then authentication on. Call only while v3
        authentication is off."""
        for path, body, tolerate in (
                ("/auth/role/add", {"name": ROOT}, "already exists"),
                ("/auth/user/add", {"name": ROOT, "password": root_password}, "already exists"),
                ("/auth/user/changepw", {"name": ROOT, "password": root_password}, None),
                ("/auth/user/grant", {"user": ROOT, "role": ROOT}, None),
                ("/auth/enable", {}, None)):
            status, answer = self.v3_call(path, body)
            if status != 200 and not (tolerate and tolerate in _message(answer)):
                raise EtcdError("etcd %s: v3 %s answered %s: %s" % (
                    self.endpoint, path, status, _message(answer)), status)


def _message(answer):
    if isinstance(answer, dict):
        return str(answer.get("message") or answer.get("error") or answer)[:200]
    return str(answer)[:200]


# -------------------------------------------------------------------- the plan
def plan(client, root_password, users, namespace, members=None, masters=()):
    """What ``apply`` would do to make etcd match: ``users`` is {cluster: password},
    ``namespace`` Patroni's namespace, or {cluster: namespace}, ``members`` {cluster: [node
    names]} (each node's user: its certificate's CN).
    Returns a list of step names (empty: nothing to do). Asks etcd as root when
    authentication is on (anonymously before). ``masters``: the meta nodes whose users hold
    the masters' role (the HA keys several masters share); empty: nobody holds it."""
    return _converge(client, root_password, users, namespace, members or {}, masters, dry=True)


def apply(client, root_password, users, namespace, members=None, masters=()):
    """Create/repair the root user, one role and one user per cluster, one user per member
    node holding its cluster's role (removing the node users of nodes that left), close the
    guest role, the masters' role for ``masters``, then enable v2 and v3 authentication (users
    exist before authentication is on, and enabling is skipped when it is on already).
    Returns the steps done."""
    return _converge(client, root_password, users, namespace, members or {}, masters, dry=False)


def node_user_conflicts(users, members):
    """Problems with node user names (a node's user is its certificate's CN, the minion id):
    a node named root or guest, like another cluster's user, or member of two clusters."""
    problems, seen = [], {}
    for cluster in sorted(members):
        for node in members[cluster]:
            if node in (ROOT, GUEST):
                problems.append("node %s (cluster %s): a node named %s would be etcd's %s user"
                                % (node, cluster, node, node))
            elif node in users and node != cluster:
                problems.append("node %s (cluster %s): named like cluster %s, whose etcd user it "
                                "would be" % (node, cluster, node))
            elif seen.setdefault(node, cluster) != cluster:
                problems.append("node %s: member of clusters %s and %s" % (node, seen[node], cluster))
    return problems


def _converge(client, root_password, users, namespace, members, masters, dry):
    conflicts = node_user_conflicts(users, members)
    if conflicts:
        raise EtcdError("etcd node users: " + "; ".join(conflicts))
    steps = []
    anon = client.as_user(None, None)
    enabled = anon.v2_auth_enabled()
    root = client.as_user(ROOT, root_password)
    if enabled and not anon.v2_login_works(ROOT, root_password, "/"):
        raise EtcdError("etcd %s: authentication is on and the root password from pillar "
                        "(etcd_root_password) is refused" % client.endpoint, 401)
    admin = root if enabled else anon

    def do(step, action):
        steps.append(step)
        if not dry:
            action()

    existing = admin.v2_users()
    if ROOT not in existing:
        do("v2 user root", lambda: admin.v2_add_user(ROOT, root_password, [ROOT]))
    for cluster in sorted(users):
        name, password = user_name(cluster), users[cluster]
        ns = namespace[cluster] if isinstance(namespace, dict) else namespace
        paths = sorted(role_paths(ns, cluster))
        role = admin.v2_role(name)
        if role != {"read": paths, "write": paths}:
            do("v2 role %s" % name, lambda n=name, p=paths, r=role: _put_role(admin, n, p, r))
        roles = existing.get(name)
        if roles is None:
            do("v2 user %s" % name, lambda n=name, pw=password: admin.v2_add_user(n, pw, [n]))
            continue
        if name not in roles:
            do("v2 grant %s" % name, lambda n=name: admin.v2_grant(n, [n]))
        if enabled and not anon.v2_login_works(name, password, paths[0]):
            do("v2 password %s" % name, lambda n=name, pw=password: admin.v2_set_password(n, pw))
        elif not enabled:
            # without authentication any password is accepted: set it, so that enabling
            # cannot lock out a cluster whose user was created with another password
            do("v2 password %s" % name, lambda n=name, pw=password: admin.v2_set_password(n, pw))
    masters = sorted(set(masters or ()))
    if masters and admin.v2_role(MASTERS_ROLE) != {"read": masters_paths(), "write": masters_paths()}:
        do("v2 role %s" % MASTERS_ROLE,
           lambda: _put_role(admin, MASTERS_ROLE, masters_paths(), admin.v2_role(MASTERS_ROLE)))
    gone = removed_clusters(admin, users, namespace, existing)
    _converge_node_users(admin, users, members, masters, existing, do, gone)
    for name in sorted(gone):
        if name in existing:
            do("v2 user %s removed (its cluster left the inventory, no keys left)" % name,
               lambda n=name: admin.v2_delete_user(n))
        do("v2 role %s removed (its cluster left the inventory, no keys left)" % name,
           lambda n=name: admin.v2_delete_role(n))
    guest = admin.v2_role(GUEST)
    if guest and (guest["read"] or guest["write"]):
        do("v2 guest closed", lambda g=guest: admin.v2_revoke(GUEST, g["read"], g["write"]))
    if not enabled:
        do("v2 auth enabled", admin.v2_enable)
    v3_on, _ = client.v3_token(ROOT, root_password)
    if not v3_on:
        do("v3 root and auth enabled", lambda: client.v3_lock(root_password))
    # guest's permissions only exist once v2 auth is on: close them right after enabling
    if not enabled and not dry:
        guest = root.v2_role(GUEST)
        if guest and (guest["read"] or guest["write"]):
            root.v2_revoke(GUEST, guest["read"], guest["write"])
            steps.append("v2 guest closed")
    return steps


def removed_clusters(admin, users, namespace, existing):
    """The clusters that left the inventory and whose user and role may go: a role that is no
    cluster's of ``users`` but exactly what ``apply`` gives a cluster of that name (read and
    write of its prefix in one of the inventory's namespaces), whose user of the same name
    (if any) holds that role only, and whose prefix holds no key any more (the removal's
    pigsty_dcs.forget deleted them). A cluster that still has keys (it runs, or was left out
    of pillar by mistake) keeps its user: its Patroni may still need it. Roles that someone
    else made are never matched."""
    namespaces = set(namespace.values()) if isinstance(namespace, dict) else {namespace}
    ours = set(user_name(c) for c in users) | {ROOT, GUEST, MASTERS_ROLE}
    gone = set()
    for name in admin.v2_roles():
        if name in ours or existing.get(name, [name]) != [name]:
            continue
        role = admin.v2_role(name) or {}
        ns = next((ns for ns in sorted(namespaces)
                   if role == {"read": sorted(role_paths(ns, name)), "write": sorted(role_paths(ns, name))}), None)
        if ns is None:
            continue
        status, _ = admin.get(prefix(ns, name))
        if status == 404:
            gone.add(name)
    return gone


def _converge_node_users(admin, users, members, masters, existing, do, gone=()):
    """Each member node's user holds exactly its cluster's role among the clusters' roles,
    and the masters' role exactly when it is one of ``masters`` (other roles someone granted
    are left). Its password is random and kept nowhere: a node logs in with its certificate
    only. A user that holds nothing but these roles (or those of ``gone`` clusters) and is no
    longer a member node or a master (nor a cluster user, nor root) is a node that left:
    removed, so that its certificate opens nothing."""
    cluster_roles = set(user_name(c) for c in users)
    managed = cluster_roles | {MASTERS_ROLE} | set(gone)
    wanted = {}
    for cluster in members:
        for node in members[cluster]:
            wanted.setdefault(node, []).append(user_name(cluster))
    for node in masters:
        wanted.setdefault(node, []).append(MASTERS_ROLE)
    for node in sorted(wanted):
        want = sorted(wanted[node])
        roles = existing.get(node)
        if roles is None and node in cluster_roles:
            roles = [node]                 # a node named like a cluster: its user, created above
        if roles is None:
            do("v2 node user %s" % node,
               lambda n=node, r=want: admin.v2_add_user(n, secrets.token_urlsafe(32), r))
            continue
        missing = [r for r in want if r not in roles]
        if missing:
            do("v2 grant %s to %s" % (", ".join(missing), node),
               lambda n=node, r=missing: admin.v2_grant(n, r))
        stale = sorted(set(roles) & managed - set(want) - ({node} & cluster_roles))
        if stale:
            do("v2 revoke %s from %s" % (", ".join(stale), node),
               lambda n=node, r=stale: admin.v2_revoke_roles(n, r))
    for name in sorted(existing):
        roles = set(existing[name] or ())
        if (name in wanted or name in cluster_roles or name in gone or name in (ROOT, GUEST)
                or not roles or not roles <= managed):
            continue
        do("v2 node user %s removed (no longer a member)" % name,
           lambda n=name: admin.v2_delete_user(n))


def _put_role(admin, name, paths, current):
    if current is not None:
        extra_r = sorted(set(current["read"]) - set(paths))
        extra_w = sorted(set(current["write"]) - set(paths))
        if extra_r or extra_w:
            admin.v2_revoke(name, extra_r, extra_w)
    admin.v2_put_role(name, paths)
