#!/bin/bash
# Unpacks the Debian 12 packages of the daemons the monitoring stack test runs on loopback
# (tests/functional/test_monitoring_stack.py): node_exporter, etcd (and etcdctl), HAProxy, Pgbouncer and
# the shared libraries they may lack, plus Patroni (its /metrics code is read; its etcd client
# runs against etcd with TLS and a cluster user, with python3-etcd and python3-dnspython).
# They are downloaded with `apt-get download` and unpacked with `dpkg-deb -x` into
# $PIGSTY_TEST_ROOT (default /var/cache/pigsty-test-root): nothing is installed on the host and
# no service is started. Re-running with everything in place does nothing.
set -euo pipefail
ROOT=${PIGSTY_TEST_ROOT:-/var/cache/pigsty-test-root}
PKGS=(prometheus-node-exporter etcd-server etcd-client haproxy pgbouncer patroni python3-etcd python3-dnspython
      liblua5.3-0 libopentracing-c-wrapper0 libopentracing1 libevent-2.1-7 libc-ares2)
# Nothing to do when every package is unpacked already (a root with more packages, from
# another checkout's list, is kept as it is: test roots are shared between worktrees).
if [ -f "$ROOT/.packages" ]; then
  have=" $(cat "$ROOT/.packages") "
  missing=0
  for p in "${PKGS[@]}"; do [[ "$have" == *" $p "* ]] || missing=1; done
  [ "$missing" -eq 0 ] && exit 0
  # unpack the union, so that a checkout with the older list still finds its packages
  for p in $(cat "$ROOT/.packages"); do [[ " ${PKGS[*]} " == *" $p "* ]] || PKGS+=("$p"); done
fi
debs=$(mktemp -d)
trap 'rm -rf "$debs"' EXIT
chmod 777 "$debs"        # apt's _apt user downloads into it
# a machine whose package lists were never fetched (or were cleaned) needs them first
if ! (cd "$debs" && apt-get download -q "${PKGS[@]}" >/dev/null 2>&1); then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  (cd "$debs" && apt-get download -q "${PKGS[@]}" >/dev/null)
fi
rm -rf "$ROOT.new" && mkdir -p "$ROOT.new"
for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$ROOT.new"; done
echo "${PKGS[*]}" > "$ROOT.new/.packages"
rm -rf "$ROOT" && mv "$ROOT.new" "$ROOT"
echo "tests/support/fetch_exporters.sh: unpacked ${PKGS[*]} into $ROOT"
