# infra role (meta nodes): Pigsty's control centre, from Debian 12 packages and pillar.
#   Prometheus (targets: one file per cluster), alert rules, Alertmanager (+ webhook sink),
#   the backup repository (pgBackRest, infra.backup_repo),
#   Grafana provisioning (when pillar names a package source), Nginx (portal, vhosts, the
#   local package repository), dnsmasq (DNS records), chrony (NTP server), every node's
#   logs (systemd-journal-remote, infra.logs).
# `salt -G pigsty_meta:True state.apply infra`; orch.site runs it before the clusters.
include:
  - infra.prometheus
  - infra.alertmanager
  - infra.webhook
  - infra.grafana
  - infra.repo
  - infra.nginx
  - infra.dnsmasq
  - infra.chrony
  - infra.backup_repo
  - infra.logs
