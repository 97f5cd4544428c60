"""Render the state tree's templates outside Salt, for unit and functional tests."""
import os

import jinja2

import pigsty_pgsql
from pillar_fixture import REPO


def render_haproxy_cfg(conf, ca_file="/etc/pki/pigsty/ca.crt"):
    """salt/pgsql/files/haproxy.cfg.jinja with the services of ``conf`` (map.jinja stubbed;
    the Pigsty CA certificate at ``ca_file``)."""
    with open(os.path.join(REPO, "salt", "pgsql", "files", "haproxy.cfg.jinja")) as fh:
        text = fh.read()
    pg = {"pg_cluster": conf["pg_cluster"], "pg_instance": conf["pg_instance"], "node_ip": conf["node_ip"],
          "haproxy_admin_port": conf["haproxy_admin_port"], "patroni_port": conf["patroni_port"]}
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, loader=jinja2.DictLoader({   # as Salt renders
        "haproxy.cfg": text, "pgsql/map.jinja": "{% set pg = " + repr(pg) + " %}"}))
    services = pigsty_pgsql.haproxy_services(conf)
    return env.get_template("haproxy.cfg").render(salt={
        "pigsty.haproxy_services": lambda: {"services": services},
        "pigsty_pki.request": lambda: {"paths": {"ca_crt": ca_file}}})
