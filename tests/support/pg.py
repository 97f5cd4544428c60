"""Client side of the integration tests: connect from the host to the sandbox's services
(only 10.10.10.0/24 addresses), with the passwords of the repository's default pillar."""
import contextlib
import os

import psycopg2
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cluster_secrets(cluster):
    with open(os.path.join(REPO, "pillar", "clusters", cluster + ".sls")) as fh:
        return yaml.safe_load(fh)["pigsty"]["clusters"][cluster]["vars"]


def user_password(cluster, name):
    secrets = cluster_secrets(cluster)
    if name == "dbuser_dba":
        return secrets["pg_admin_password"]
    return [u for u in secrets["pg_users"] if u["name"] == name][0]["password"]


@contextlib.contextmanager
def connect(host, port, user, password, dbname="postgres", timeout=3):
    conn = psycopg2.connect(host=host, port=port, user=user, password=password, dbname=dbname,
                            connect_timeout=timeout, application_name="pigsty-tests")
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def query(host, port, user, password, sql, dbname="postgres", args=None):
    with connect(host, port, user, password, dbname) as conn:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else None
