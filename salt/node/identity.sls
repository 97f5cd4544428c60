{#- Identity grains from the pillar inventory, so that
    `salt -G 'pg_cluster:pg-test' ...` targets a cluster. Derived, never set by hand. -#}
{%- set ident = salt['pigsty.identity']() %}
{%- for key, value in ident|dictsort %}
{%-   if value is none %}
pigsty-grain-{{ key }}:
  grains.absent:
    - name: {{ key }}
    - destructive: True
{%-   else %}
pigsty-grain-{{ key }}:
  grains.present:
    - name: {{ key }}
    - value: {{ value|json }}
{%-   endif %}
{%- endfor %}
