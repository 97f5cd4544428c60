# State top. Roles follow the node's identity in the pillar inventory (computed by the
# pigsty execution module, not read from grains, so the very first highstate is complete):
#   every node       -> node
#   meta nodes       -> dcs (etcd), infra (Prometheus, Alertmanager, Nginx, repo, DNS, NTP)
#   etcd members     -> dcs (dcs_servers may put members on database nodes)
#   instance nodes   -> pgsql
{%- set ident = salt['pigsty.identity']() %}
{%- set dcs_member = salt['pigsty_dcs.layout']().name %}
base:
  '*':
    - node
{%- if ident.pigsty_meta or ident.pg_cluster or dcs_member %}
  '{{ grains.id }}':
{%-   if ident.pigsty_meta or dcs_member %}
    - dcs
{%-   endif %}
{%-   if ident.pigsty_meta %}
    - infra
{%-   endif %}
{%-   if ident.pg_cluster %}
    - pgsql
{%-   endif %}
{%- endif %}
