{#- Pillar top: the public inventory goes to every node; each cluster's private file
    (users, databases, passwords) only to the minions that host its members.
    Membership comes from the inventory itself, by minion id (never from grains, which a
    minion could set for itself). -#}
{%- import_yaml 'pigsty.sls' as public %}
{%- set inv = public.pigsty %}
{%- set by_ip = {} %}
{%- for nid, node in (inv.nodes or {}).items() %}{% do by_ip.update({node.ip|string: nid}) %}{% endfor %}
base:
  '*':
    - pigsty
{%- for name, cls in (inv.clusters or {}).items() %}
{%-   set ids = [] %}
{%-   for ip in (cls.hosts or {}) %}{% if by_ip.get(ip|string) %}{% do ids.append(by_ip[ip|string]) %}{% endif %}{% endfor %}
{%-   if ids %}
  'L@{{ ids|join(",") }}':
    - match: compound
    - clusters.{{ name }}
{%-   endif %}
{%- endfor %}
