# State top. Roles follow the node's identity in the pillar inventory (computed by the
# pigsty execution module, not read from grains, so the very first highstate is complete):
#   every node       -> node
#   meta nodes       -> dcs (etcd), infra (Prometheus, Alertmanager, Nginx, repo, DNS, NTP)
#   instance nodes   -> pgsql
{%- set ident = salt['pigsty.identity']() %}
base:
  '*':
    - node
{%- if ident.pigsty_meta or ident.pg_cluster %}
  '{{ grains.id }}':
{%-   if ident.pigsty_meta %}
    - dcs
    - infra
{%-   endif %}
{%-   if ident.pg_cluster %}
    - pgsql
{%-   endif %}
{%- endif %}
