#!/bin/bash
# The project's test command (make test; .ci/run). Installs what it needs, runs the unit
# tests, the functional tests (a throwaway local PostgreSQL), then the integration tests against
# the real sandbox, which their session fixture tears down at the end and checks that nothing
# is left (KEEP_SANDBOX=1 keeps it up).
set -euo pipefail
cd "$(dirname "$0")/.."
/usr/bin/python3 sandbox/sandbox.py prepare
# Host tools the tests use, installed in one apt run (with its own `apt-get update`, so a
# machine whose package lists were never fetched or were cleaned works too):
#   functional tests: a throwaway PostgreSQL 15 from Debian's server binaries, and pgbouncer
#   in front of it (SCRAM pass-through with the verifiers the userlist carries);
#   infra checks: promtool (prometheus), amtool (prometheus-alertmanager), nginx -t, and the
#   postgres exporter that runs the pgsql role's extra queries;
#   the Vagrantfile: `vagrant validate --ignore-provider` (nothing is booted, no provider needed);
#   HAProxy: `haproxy -c` on the rendered haproxy.cfg;
#   gpg: pillar/dcs_clusters.sls ends its pipeline in Salt's gpg renderer (every render of
#   the pillar needs the program), and test_pillar_gpg encrypts and decrypts for real.
need=()
command -v pgbackrest >/dev/null || need+=(pgbackrest)   # backup and PITR (test_backup_pitr)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
[ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
command -v promtool >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
[ -x /usr/sbin/nginx ] || need+=(nginx)
[ -x /usr/bin/prometheus-postgres-exporter ] || need+=(prometheus-postgres-exporter)
command -v vagrant >/dev/null || need+=(vagrant)
[ -x /usr/sbin/haproxy ] || need+=(haproxy)     # haproxy -c on the rendered config
command -v gpg >/dev/null || need+=(gnupg)      # Salt's gpg renderer (pillar)
[ -x /lib/systemd/systemd-journal-remote ] || need+=(systemd-journal-remote)   # test_logs_collect
# headless Chromium (driven by Playwright from the venv) loads the portal and the consoles
# (test_portal_live), trusting the sandbox's CA through an NSS database made with certutil
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v certutil >/dev/null || need+=(libnss3-tools)
if [ ${#need[@]} -gt 0 ]; then
  echo "tests/run.sh: installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The monitoring stack test runs node_exporter, etcd, HAProxy and Pgbouncer on loopback from
# their unpacked Debian packages (nothing installed, no service started).
bash tests/support/fetch_exporters.sh
VENV=${PIGSTY_SALT_VENV:-/opt/pigsty/venv}
if [ $# -eq 0 ]; then set -- tests/unit tests/functional tests/integration; fi
exec "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
