#!/bin/bash
# The project's test command (make test; .ci/run). Installs what it needs, runs the unit
# tests, the functional tests (a throwaway local PostgreSQL), then the integration tests against the real sandbox, which the last integration
# test tears down (KEEP_SANDBOX=1 keeps it up).
set -euo pipefail
cd "$(dirname "$0")/.."
/usr/bin/python3 sandbox/sandbox.py prepare
# functional tests start a throwaway PostgreSQL 15 from Debian's server binaries
if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
fi
# infra checks: promtool (prometheus), amtool (prometheus-alertmanager), nginx -t, and the
# postgres exporter that runs the pgsql role's extra queries
if ! command -v promtool >/dev/null || ! command -v amtool >/dev/null || [ ! -x /usr/sbin/nginx ] \
   || [ ! -x /usr/bin/prometheus-postgres-exporter ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    prometheus prometheus-alertmanager nginx prometheus-postgres-exporter >/dev/null
fi
# the Vagrantfile is checked with `vagrant validate` (nothing is booted)
if ! command -v vagrant >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends vagrant >/dev/null
fi
VENV=${PIGSTY_SALT_VENV:-/opt/pigsty/venv}
if [ $# -eq 0 ]; then set -- tests/unit tests/functional tests/integration; fi
exec "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
