{#- Remove instances of a cluster, or the whole cluster: replicas first, the leader last.
      salt-run state.orchestrate orch.pgsql_remove pillar='{"pg_cluster": "pg-test", "pg_instances": ["pg-test-3"]}'
      salt-run state.orchestrate orch.pgsql_remove pillar='{"pg_cluster": "pg-test", "pg_rm_force": true}'
    Refuses to remove a running primary (or a whole cluster that has one) unless
    pg_rm_force is true. The inventory is not edited: to drop a member for good, remove it
    from pillar and re-apply pgsql.service on the others. -#}
{%- set name = pillar.get('pg_cluster') %}
{%- if not name %}{{ raise("pillar pg_cluster: missing (expected the cluster to remove from)") }}{% endif %}
{%- set plan = salt['saltutil.runner']('pigsty.removal_plan', arg=[name],
                                       kwarg={'instances': pillar.get('pg_instances'),
                                              'force': pillar.get('pg_rm_force', False)}) %}
{%- if plan is not mapping or not plan.get('result') %}
{{ raise("orch.pgsql_remove refused: " ~ (plan.comment if plan is mapping else plan)) }}
{%- endif %}
{%- for minion in plan.minions %}

{{ name }}-remove-{{ minion }}:
  salt.state:
    - tgt: {{ minion }}
    - sls: [pgsql.remove]
{%-   if not loop.first %}
    - require:
      - salt: {{ name }}-remove-{{ plan.minions[loop.index0 - 1] }}
{%-   endif %}
{%- endfor %}
{%- set info = salt['saltutil.runner']('pigsty.cluster', arg=[name]) %}
{%- if plan.whole_cluster and info.dcs_type == 'etcd' %}
{#- Patroni's keys of the cluster (pg_namespace/pg_cluster). With dcs_type consul they stay
    in the user's Consul: the meta nodes have no Consul client. #}

{{ name }}-forget-dcs:
  salt.function:
    - name: pigsty_dcs.forget
    - tgt: {{ info.meta | first }}
    - arg:
      - {{ name }}
    - require:
      - salt: {{ name }}-remove-{{ plan.minions | last }}
{%- endif %}
