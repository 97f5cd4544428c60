{#- The whole deployment: validate, every node, the DCS, then every cluster in order.
      salt-run state.orchestrate orch.site
    This is the sandbox's main job. -#}
{%- set v = salt['saltutil.runner']('pigsty.validate') %}
site-validate:
  salt.runner:
    - name: pigsty.validate

site-nodes:
  salt.state:
    - tgt: '*'
    - sls: [node]
    - require:
      - salt: site-validate
{%- for name in (v.clusters if v is mapping and v.get('clusters') else {}) %}

site-{{ name }}:
  salt.runner:
    - name: state.orchestrate
    - arg: [orch.pgsql]
    - kwarg:
        pillar: {pg_cluster: {{ name }}}
    - require:
      - salt: site-nodes
{%- endfor %}
