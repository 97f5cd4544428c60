# The meta nodes' private pillar: only they receive this file (pillar/top.sls).
# SANDBOX PASSWORDS: replace them before using this outside the sandbox.
pigsty:
  dcs:
    # etcd's root: the meta node creates each cluster's etcd user with it
    etcd_root_password: Sandbox.Etcd.Root
  infra:
    # the portal's login (Nginx basic authentication of the portal, Prometheus and
    # Alertmanager pages; Grafana has its own login, the HAProxy pages their cluster's)
    portal_username: admin
    portal_password: Sandbox.Portal
    # Grafana's admin (when Grafana is installed: grafana_repo / grafana_package_url)
    grafana_admin_password: Sandbox.Grafana
