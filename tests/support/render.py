"""Render the state tree's templates outside Salt, for unit and functional tests."""
import os

import jinja2

import pigsty_crypt
import pigsty_pgsql
from pillar_fixture import REPO


def render_haproxy_cfg(conf, ca_file="/etc/pki/pigsty/ca.crt", node_crt="/etc/pki/pigsty/node.crt"):
    """salt/pgsql/files/haproxy.cfg.jinja with the services of ``conf`` (map.jinja stubbed;
    the Pigsty CA certificate at ``ca_file``, the node certificate at ``node_crt``, its key
    beside it as node.key)."""
    with open(os.path.join(REPO, "salt", "pgsql", "files", "haproxy.cfg.jinja")) as fh:
        text = fh.read()
    pg = {"pg_cluster": conf["pg_cluster"], "pg_instance": conf["pg_instance"], "node_ip": conf["node_ip"],
          "haproxy_admin_port": conf["haproxy_admin_port"], "patroni_port": conf["patroni_port"]}
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, loader=jinja2.DictLoader({   # as Salt renders
        "haproxy.cfg": text, "pgsql/map.jinja": "{% set pg = " + repr(pg) + " %}"}))
    services = pigsty_pgsql.haproxy_services(conf)
    return env.get_template("haproxy.cfg").render(salt={
        "pigsty.haproxy_services": lambda: {"services": services},
        "pigsty_pki.request": lambda: {"paths": {"ca_crt": ca_file, "node_crt": node_crt,
                                                 "node_key": node_crt[:-len(".crt")] + ".key"}},
        "pigsty_haproxy.admin_login": lambda: {"username": conf["haproxy_admin_username"],
                                               "hash": pigsty_crypt.sha512_crypt(conf["haproxy_admin_password"])}})



class SaltRaise(Exception):
    pass


def _raise(message):
    raise SaltRaise(message)


def salt_jinja(extra_globals=None):
    """A Jinja environment over the repository's state tree with what Salt's renderer gives
    the states used here: the ``do`` extension, ``raise``, and the ``json``, ``yaml`` and
    ``yaml_dquote`` filters (as Salt prints them)."""
    import json

    import yaml

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(REPO, "salt")),
                             undefined=jinja2.StrictUndefined, extensions=["jinja2.ext.do"])
    env.filters["json"] = json.dumps
    env.filters["yaml"] = lambda value, flow=True: yaml.safe_dump(value, default_flow_style=flow)
    env.filters["yaml_dquote"] = json.dumps
    env.globals["raise"] = _raise
    env.globals.update(extra_globals or {})
    return env


def render_state(relpath, salt, pillar=None):
    """The text of one of salt/'s files (an .sls or a template) rendered with the ``salt``
    functions given (a dict: "pigsty.config" -> function, ...)."""
    return salt_jinja().get_template(relpath).render(salt=salt, pillar=pillar or {})


def render_dcs_sls(dcs, initial=None):
    """salt/dcs/init.sls as Salt renders it on a node whose ``pigsty_dcs.layout`` is ``dcs``,
    and ``pigsty_dcs.initial`` is ``initial`` (default: none to write), loaded as YAML:
    {state id: {state: [args]}}."""
    import yaml     # pylint: disable=import-outside-toplevel
    with open(os.path.join(REPO, "salt", "dcs", "init.sls")) as fh:
        text = fh.read()
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, extensions=["jinja2.ext.do"])
    env.filters["json"] = __import__("json").dumps
    return yaml.safe_load(env.from_string(text).render(salt={"pigsty_dcs.layout": lambda: dcs,
                                                                     "pigsty_dcs.initial": lambda: initial or {}}))


def state_arg(states, sid, key):
    """The value of argument ``key`` of state ``sid`` in a rendered SLS."""
    for args in states[sid].values():
        for arg in args:
            if isinstance(arg, dict) and key in arg:
                return arg[key]
    raise KeyError("%s has no %s" % (sid, key))
