{%- set node = salt['pigsty.node']() %}
# Node tuning from pillar (Pigsty's node_timezone, node_tune, node_sysctl_params); a
# cluster's values apply to its members, pigsty:vars' to the other nodes. An empty timezone
# keeps the node's. node_tune is a set of kernel parameters (_utils/pigsty_node_tune.py),
# written as node_sysctl_params are, which win over it key by key.
{%- if node.timezone %}

node-timezone:
  timezone.system:
    - name: {{ node.timezone }}
{%- endif %}
{%- for key, value in node.sysctl | dictsort %}

node-sysctl-{{ key }}:
  sysctl.present:
    - name: {{ key }}
    - value: {{ value | string | json }}
    - config: /etc/sysctl.d/90-pigsty.conf
{%- endfor %}
{%- if not node.timezone and not node.sysctl %}

node-tune-nothing:
  test.succeed_without_changes:
    - name: no node_timezone, node_tune or node_sysctl_params in pillar
{%- endif %}
