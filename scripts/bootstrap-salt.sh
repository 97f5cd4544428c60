#!/bin/bash
# Install (if needed) and configure Salt on one node of a Pigsty-on-Salt deployment.
# Shared by the local sandbox (sandbox/sandbox.py) and the Vagrantfile.
#
#   bootstrap-salt.sh --master-ip IP[,IP...] --id MINION_ID [--venv DIR] [--master --repo DIR]
#
# --master-ip  the Salt master(s): with several (comma-separated, e.g. two meta nodes) the
#              minion connects to each of them at once (Salt's multi-master, "hot" mode):
#              every master can run jobs on it and gets its events. The masters must share
#              one key pair and the accepted minion keys (docs/multi-master.md).
# --venv DIR   Salt venv (default /opt/pigsty/venv). Built here with pip when it does not
#              exist yet (Vagrant); the sandbox bind-mounts a ready one read-only.
# --master     also run salt-master, with the repository's master.d/ config; its paths name
#              /srv/pigsty and are rewritten to --repo when the repository lives elsewhere.
set -euo pipefail

MASTER_IP="" ; MINION_ID="" ; VENV=/opt/pigsty/venv ; IS_MASTER=0 ; REPO=/srv/pigsty
SALT_VERSION=3008.4
while [ $# -gt 0 ]; do
  case "$1" in
    --master-ip) MASTER_IP="$2"; shift 2 ;;
    --id)        MINION_ID="$2"; shift 2 ;;
    --venv)      VENV="$2"; shift 2 ;;
    --master)    IS_MASTER=1; shift ;;
    --repo)      REPO="$2"; shift 2 ;;
    *) echo "bootstrap-salt: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -n "$MASTER_IP" ] || { echo "bootstrap-salt: --master-ip is required" >&2; exit 2; }
# every master: an IPv4 address or a host name, each once, no empty item (checked before
# anything is installed or written)
bad_master() {
  echo "bootstrap-salt: --master-ip '$MASTER_IP': $1 (expected IP[,IP...], each an IPv4 address or a host name, e.g. 10.10.10.10,10.10.10.9)" >&2
  exit 2
}
case "$MASTER_IP" in ,*|*,|*,,*) bad_master "an empty item" ;; esac
IFS=',' read -r -a MASTERS <<< "$MASTER_IP"
SEEN=","
for m in "${MASTERS[@]}"; do
  if [[ "$m" =~ ^[0-9.]+$ ]]; then
    [[ "$m" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || bad_master "'$m' is not an IPv4 address"
    for o in 1 2 3 4; do
      [ "$((10#${BASH_REMATCH[$o]}))" -le 255 ] || bad_master "'$m' is not an IPv4 address (an octet above 255)"
    done
  elif ! [[ "$m" =~ ^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$ ]]; then
    bad_master "'$m' is neither an IPv4 address nor a host name"
  fi
  case "$SEEN" in *",$m,"*) bad_master "'$m' is given twice" ;; esac
  SEEN="$SEEN$m,"
done
[ -n "$MINION_ID" ] || MINION_ID=$(hostname)
[[ "$MINION_ID" =~ ^[A-Za-z0-9._-]+$ ]] || {
  echo "bootstrap-salt: --id '$MINION_ID': expected letters, digits, '.', '_' or '-' only" >&2; exit 2; }
if [ "$IS_MASTER" = 1 ] && [ ! -d "$REPO/master.d" ]; then
  echo "bootstrap-salt: --repo $REPO has no master.d/ directory" >&2; exit 2
fi

if [ ! -x "$VENV/bin/salt-minion" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq python3-venv python3-dev gcc >/dev/null
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  if [ -f "$REPO/requirements.txt" ]; then
    "$VENV/bin/pip" install -q -r "$REPO/requirements.txt"
  else
    "$VENV/bin/pip" install -q "salt==$SALT_VERSION"
  fi
fi

install -d -m 0755 /etc/salt/minion.d /etc/salt/master.d /var/log/salt
CHANGED_MINION=0 ; CHANGED_MASTER=0

# put FILE from stdin; returns 0 (and marks the daemon to restart) only when it changed
put() {
  local tmp; tmp=$(mktemp)
  cat > "$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 1; fi
  install -m 0644 "$tmp" "$1"; rm -f "$tmp"; return 0
}

case "$MASTER_IP" in
  *,*) MASTER_CONF="master:"$'\n'"$(echo "$MASTER_IP" | tr ',' '\n' | sed 's/^/  - /')" ;;
  *)   MASTER_CONF="master: $MASTER_IP" ;;
esac
put /etc/salt/minion.d/pigsty.conf <<CONF && CHANGED_MINION=1
# written by bootstrap-salt.sh
$MASTER_CONF
id: $MINION_ID
ipv6: False
acceptance_wait_time: 1
acceptance_wait_time_max: 5
random_reauth_delay: 0
recon_default: 200
recon_max: 2000
recon_randomize: False
auth_tries: 10
enable_fqdns_grains: False
CONF

unit() { # name binary description
  put "/etc/systemd/system/$1.service" <<UNIT
[Unit]
Description=$3
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
LimitNOFILE=8192
ExecStart=$VENV/bin/$2
KillMode=process
Restart=on-failure
RestartSec=2

[Install]
WantedBy=multi-user.target
UNIT
}
unit salt-minion salt-minion "Salt minion (Pigsty on Salt)" && CHANGED_MINION=1

if [ "$IS_MASTER" = 1 ]; then
  # Salt's gpg renderer runs the gpg program on the master: pillar/dcs_clusters.sls ends its
  # pipeline in gpg, and private pillar files may hold encrypted values (docs/security.md,
  # "Encrypted pillar"). Its key ring is gpg_keydir, by default /etc/salt/gpgkeys.
  if ! command -v gpg >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnupg >/dev/null
  fi
  install -d -m 0700 /etc/salt/gpgkeys
  unit salt-master salt-master "Salt master (Pigsty on Salt)" && CHANGED_MASTER=1
  for f in /etc/salt/master.d/*.conf; do   # configs no longer in the repository
    [ -e "$f" ] && [ ! -e "$REPO/master.d/$(basename "$f")" ] && rm -f "$f" && CHANGED_MASTER=1
  done
  for f in "$REPO"/master.d/*.conf; do
    sed "s#/srv/pigsty#$REPO#g" "$f" | put "/etc/salt/master.d/$(basename "$f")" && CHANGED_MASTER=1
  done
fi
systemctl daemon-reload
if [ "$IS_MASTER" = 1 ]; then
  systemctl enable -q salt-master
  if [ "$CHANGED_MASTER" = 1 ] || ! systemctl -q is-active salt-master; then systemctl restart salt-master; fi
fi
systemctl enable -q salt-minion
if [ "$CHANGED_MINION" = 1 ] || ! systemctl -q is-active salt-minion; then systemctl restart salt-minion; fi
echo "bootstrap-salt: $MINION_ID -> master $MASTER_IP$( [ "$IS_MASTER" = 1 ] && echo " (master, repo $REPO)")" \
     "config changed: minion=$CHANGED_MINION master=$CHANGED_MASTER"
