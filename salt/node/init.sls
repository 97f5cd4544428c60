# node role: everything a Pigsty node needs before any service role: identity grains, the
# resolver (meta's dnsmasq), time (meta's chrony; the meta node serves it), and on database
# nodes with node_repo_local the meta node's package repository as the only apt source
# (node.repo; it restores the original sources when the flag is off again), and the
# extra packages (node.packages: node_packages), the node tuning of pillar (node.tune:
# node_timezone, node_tune, node_sysctl_params), the administrator account (node.admin:
# node_admin_*), the lines of /etc/crontab (node.crontab: node_crontab,
# node_crontab_overwrite), and the upload of its journal to the meta node (node.logs); the
# node's certificate from the Pigsty CA on the meta node (node.pki) comes before the
# repository, which apt reads over HTTPS verified with the CA.
{%- set node = salt['pigsty.node']() %}
include:
  - node.identity
  # the certificate first: apt verifies the meta node's repository (HTTPS) with the CA
  - node.pki
{%- if not node.meta %}
  - node.repo
{%- endif %}
  - node.dns
  - node.ntp
  - node.packages
  - node.tune
  - node.admin
  - node.crontab
  - node.logs
