{#- etcd's members (dcs_servers, or the meta nodes), in etcd's safe order:
      salt-run state.orchestrate orch.dcs
    the first member's node (a meta node) bootstraps etcd, sets up its users and adds the next
    member as a learner; that member's node starts it; the first member's node promotes it and
    adds the next; ... one member at a time (etcd 3.4 takes one learner at a time). Re-running
    it changes nothing; a member added to dcs_servers later joins the same way. The CA server
    re-reads its pillar first: a node that is new to dcs_servers needs its etcd peer
    certificate's signing policy there. -#}
{%- set v = salt['saltutil.runner']('pigsty.validate') %}
{%- set members = v.dcs if v is mapping and v.get('dcs') else [] %}
{%- set meta = v.meta if v is mapping and v.get('meta') else [] %}
dcs-validate:
  salt.runner:
    - name: pigsty.validate
{%- if members %}

dcs-ca-pillar:
  salt.function:
    - name: saltutil.refresh_pillar
    - tgt: {{ meta[:1] | json }}
    - tgt_type: list
    - kwarg: {wait: True}
    - require:
      - salt: dcs-validate

dcs-first:
  salt.state:
    - tgt: {{ members[:1] | json }}
    - tgt_type: list
    - sls: [node, dcs]
    - require:
      - salt: dcs-ca-pillar
{%- for node in members[1:] %}

dcs-join-{{ node }}:
  salt.state:
    - tgt: {{ [node] | json }}
    - tgt_type: list
    - sls: [node, dcs]
    - require:
      - salt: {{ 'dcs-first' if loop.first else 'dcs-promote-' ~ loop.previtem }}

{#- promotes the member that just started, adds the next one #}
dcs-promote-{{ node }}:
  salt.state:
    - tgt: {{ members[:1] | json }}
    - tgt_type: list
    - sls: [dcs]
    - require:
      - salt: dcs-join-{{ node }}
{%- endfor %}
{%- endif %}
