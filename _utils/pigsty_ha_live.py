"""The live view of a cluster: what each member's Patroni says it is, right now."""
import pigsty_fanout
import pigsty_patroni

REST_TIMEOUT = 0.5      # seconds for each Patroni REST call (a dead member costs this once)


def live_roles(members, port, timeout=REST_TIMEOUT, access=None):
    """instance -> primary | replica | stopped | demoting | unresponsive | unreachable, from
    the members' Patroni APIs (each asked about itself, all at once, bounded); and
    instance -> {state, timeline} (or the error). ``access``: pigsty_patroni.Access (HTTPS)."""
    roles, details = {}, {}

    def ask(m):
        try:
            st = pigsty_patroni.get_json(m["ip"], port, "/patroni", timeout=timeout, access=access)
            role = pigsty_patroni.normalize_role(st.get("role"))
            roles[m["pg_instance"]] = role if st.get("state") == "running" else "stopped"
            details[m["pg_instance"]] = {"state": st.get("state"), "timeline": st.get("timeline")}
        except pigsty_patroni.PatroniError as exc:
            roles[m["pg_instance"]] = "unreachable"
            details[m["pg_instance"]] = {"state": "unreachable", "error": str(exc)}
    # all at once: a dead member costs one timeout, not one per member before it
    pigsty_fanout.parallel({m["pg_instance"]: (ask, m) for m in members})
    for m in members:                     # a thread that died without an answer: unreachable
        roles.setdefault(m["pg_instance"], "unreachable")
        details.setdefault(m["pg_instance"], {"state": "unreachable", "error": "no answer"})
    reachable = [m["ip"] for m in members if roles[m["pg_instance"]] != "unreachable"]
    primaries = [i for i, r in roles.items() if r == "primary"]
    if not reachable or (len(primaries) <= 1 and "unreachable" not in roles.values()):
        return roles, details
    leader, _errors = pigsty_patroni.find_leader(reachable, port, timeout, access=access)   # the DCS leader key
    # two members claiming primary: only the leader key's holder is
    if len(primaries) > 1:
        for inst in primaries:
            if not leader or inst != leader["name"]:
                roles[inst] = "demoting"
    # a member that did not answer but still holds the leader key may just be slow: it is
    # "unresponsive", and its routing is left to HAProxy's checks (never forced down)
    if leader and roles.get(leader["name"]) == "unreachable":
        roles[leader["name"]] = "unresponsive"
    return roles, details
