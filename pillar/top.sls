{#- Pillar top: the public inventory goes to every node; each cluster's private file
    (users, databases, passwords) only to the minions that host its members.
    The meta nodes also receive pillar/dcs.sls (etcd's root password) and
    pillar/dcs_clusters.sls (each cluster's etcd password, copied from its private file).
    Membership comes from the inventory itself, by minion id (never from grains, which a
    minion could set for itself). -#}
{%- import_yaml 'pigsty.sls' as public %}
{%- set inv = public.pigsty %}
{%- set by_ip = {} %}
{%- set metas = [] %}
{%- for nid, node in (inv.nodes or {}).items() %}{% do by_ip.update({node.ip|string: nid}) %}{% if node.meta is sameas true %}{% do metas.append(nid) %}{% endif %}{% endfor %}
base:
  '*':
    - pigsty
{%- if metas %}
  # the meta nodes run etcd: its root password and each cluster's etcd password (only that)
  '{{ metas|join(",") }}':
    - match: list
    - dcs
    - dcs_clusters
{%- endif %}
{%- for name, cls in (inv.clusters or {}).items() %}
{%-   set ids = [] %}
{%-   for ip in (cls.hosts or {}) %}{% if by_ip.get(ip|string) %}{% do ids.append(by_ip[ip|string]) %}{% endif %}{% endfor %}
{%-   if ids %}
  'L@{{ ids|join(",") }}':
    - match: compound
    - clusters.{{ name }}
{%-   endif %}
{%- endfor %}
