"""Patroni's watchdog device (Pigsty's patroni_watchdog_mode), checked before Patroni is
configured.

    pgsql-watchdog:
      pigsty_watchdog.ready:
        - name: /dev/watchdog
        - mode: required          # off | automatic | required
        - user: postgres          # who runs Patroni (pg_dbsu)

- ``off``: nothing to do.
- ``automatic`` / ``required``: when the device is missing, the ``softdog`` kernel module is
  loaded (Pigsty's and Debian's unit: ``modprobe softdog``); the device is then given to
  ``user`` (Patroni opens it as that user). ``automatic`` succeeds without a device (Patroni
  logs that it has none and runs on). ``required`` fails when there is still no device:
  Patroni would never take the leader lock on this node, so the state that writes Patroni's
  configuration requires this one and nothing of Patroni's changes.

Test mode changes nothing: it says whether the module would be loaded and the device
handed over, and fails ``required`` when the device is missing and ``modprobe -n softdog``
says the module cannot be loaded.
"""
import os
import pwd

__virtualname__ = "pigsty_watchdog"

MODES = ("off", "automatic", "required")


def __virtual__():
    if "cmd.run_all" in __salt__:
        return __virtualname__
    return (False, "pigsty_watchdog state: the cmd execution module is not loaded")


def _modprobe(module, dry_run):
    """(loaded or loadable, what modprobe said). A machine without modprobe (kmod; a
    container, for one) cannot load it: that is an answer, not an error."""
    argv = ["modprobe"] + (["-n"] if dry_run else []) + [module]
    try:
        res = __salt__["cmd.run_all"](argv, python_shell=False, ignore_retcode=True)
    except Exception as exc:  # pylint: disable=broad-except  (cmd raises when the program is missing)
        return False, "modprobe cannot run here: %s" % exc
    return res["retcode"] == 0, (res.get("stderr") or res.get("stdout") or "").strip()


def ready(name, mode="off", user="postgres", module="softdog"):
    """Make watchdog device ``name`` usable by ``user`` for Patroni's ``mode``; ``module``:
    the kernel module to load when it is missing ('' or None: load none); ``user`` None:
    check (and load) the device only."""
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    mode = "off" if mode in (False, None) else mode
    if mode not in MODES:
        ret.update(result=False, comment="patroni_watchdog_mode: expected one of %s, got %r"
                   % (", ".join(MODES), mode))
        return ret
    if mode == "off":
        ret["comment"] = "patroni_watchdog_mode is off: no watchdog device needed"
        return ret
    test = __opts__.get("test")
    try:
        uid = pwd.getpwnam(user).pw_uid if user is not None else None
    except KeyError:
        uid = None
    why = ""
    if not os.path.exists(name) and module:
        ok, out = _modprobe(module, dry_run=test)
        if ok and test:
            ret["changes"]["module"] = "%s would be loaded" % module
        elif ok:
            ret["changes"]["module"] = "%s loaded" % module
        else:
            why = " (modprobe %s: %s)" % (module, out or "failed")
    present = os.path.exists(name) or (test and "module" in ret["changes"])
    if not present:
        if mode == "required":
            ret.update(result=False, comment=(
                "patroni_watchdog_mode is required but this node has no watchdog device %s%s: "
                "Patroni would never become leader here. Give the node a watchdog (hardware, "
                "or the softdog module), or set patroni_watchdog_mode to automatic or off. "
                "Nothing of Patroni's was changed." % (name, why)))
        else:
            ret["comment"] = ("no watchdog device %s%s: Patroni runs without one "
                              "(patroni_watchdog_mode automatic)" % (name, why))
        return ret
    if user is None:
        ret["comment"] = "watchdog %s is there (%s)%s" % (
            name, mode, ": %s" % ret["changes"]["module"] if ret["changes"] else "")
        if test and ret["changes"]:
            ret["result"] = None
        return ret
    if uid is None:
        if test:
            ret["changes"]["owner"] = "%s (created by an earlier state)" % user
            ret.update(result=None, comment="watchdog %s would be handed to %s" % (name, user))
            return ret
        ret.update(result=False, comment="user %s does not exist (pg_dbsu)" % user)
        return ret
    owner = os.stat(name).st_uid if os.path.exists(name) else None
    if owner != uid:
        if test:
            ret["changes"]["owner"] = user
        else:
            try:
                os.chown(name, uid, -1)
            except OSError as exc:
                ret.update(result=False if mode == "required" else True,
                           comment="cannot give %s to %s: %s" % (name, user, exc))
                return ret
            ret["changes"]["owner"] = user
    if test and ret["changes"]:
        ret.update(result=None, comment="watchdog %s would be made ready for %s (%s)" % (
            name, user, mode))
    elif ret["changes"]:
        ret["comment"] = "watchdog %s is ready for %s (%s)" % (name, user, mode)
    else:
        ret["comment"] = "watchdog %s is already ready for %s (%s)" % (name, user, mode)
    return ret
