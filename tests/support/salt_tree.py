"""Facts read from the repository's state tree, shared by unit and integration tests."""
import glob
import os
import re

from pillar_fixture import REPO

_RUNNING = re.compile(r"^\s+service\.running:\s*\n\s+- name:\s*(\S+)", re.M)


def services_started_by(role):
    """Names of the services a role's states keep running (service.running in salt/<role>/)."""
    names = set()
    for path in glob.glob(os.path.join(REPO, "salt", role, "*.sls")):
        with open(path) as fh:
            names.update(_RUNNING.findall(fh.read()))
    return names


def services_stopped_by_pgsql_remove():
    """The services pgsql.remove stops, in its order."""
    with open(os.path.join(REPO, "salt", "pgsql", "remove.sls")) as fh:
        listed = re.search(r"set role_services = \[(.*?)\]", fh.read(), re.S).group(1)
    return re.findall(r"'([\w.-]+)'", listed)
