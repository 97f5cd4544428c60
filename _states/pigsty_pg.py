"""States for Pigsty's users, databases and default roles, applied on the primary.

.. code-block:: yaml

    pigsty-default-roles:
      pigsty_pg.default_roles_present:
        - admin_user: dbuser_dba

    dbuser_meta:
      pigsty_pg.user_present:
        - password: {{ user.password }}
        - roles: [dbrole_admin]
        - comment: pigsty admin user

    meta:
      pigsty_pg.database_present:
        - owner: dbuser_meta
        - extensions: [pgcrypto]

Fields are Pigsty's (see pigsty_sql.USER_FIELDS / DATABASE_FIELDS). Salt reserves the key
``state`` in a state's arguments, so a user with ``state: absent`` maps to ``user_absent``.
Test mode reports the would-be changes with result None and changes nothing; a bad spec
gives result False with the reason, and nothing is changed. Passwords show as "changed".
"""
from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "pigsty_pg"


def __virtual__():
    if "pigsty_pg.user_ensure" in __salt__:
        return __virtualname__
    return (False, "pigsty_pg: the pigsty_pg execution module is not loaded (psycopg2 missing?)")


def _run(name, call):
    """State return of ``call(test)``, a call of the execution module."""
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    test = bool(__opts__.get("test"))
    try:
        res = call(test)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    ret.update(changes=res["changes"], comment=res["comment"])
    if test and res["changes"]:
        ret["result"] = None
    return ret


def user_present(name, **spec):
    """The role exists with the given Pigsty user fields (password, roles, comment...)."""
    return _run(name, lambda test: __salt__["pigsty_pg.user_ensure"](name, test=test, **spec))


def user_absent(name):
    """The role does not exist."""
    return _run(name, lambda test: __salt__["pigsty_pg.user_remove"](name, test=test))


def database_present(name, **spec):
    """The database exists with the given Pigsty database fields, its schemas and
    extensions created."""
    return _run(name, lambda test: __salt__["pigsty_pg.db_ensure"](name, test=test, **spec))


def database_absent(name):
    """The database does not exist (dropped WITH (FORCE): its sessions end)."""
    return _run(name, lambda test: __salt__["pigsty_pg.db_ensure"](name, test=test, state="absent"))


def default_roles_present(name, admin_user=None, privileges=None):
    """Pigsty's dbrole_* roles and their default privileges (``privileges``: Pigsty's
    pg_default_privileges lines; ours by default). ``name`` is only a label."""
    return _run(name, lambda test: __salt__["pigsty_pg.default_roles_ensure"](
        test=test, admin_user=admin_user, privileges=privileges))
