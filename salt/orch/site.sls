{#- The whole deployment: validate; the meta nodes (node role, then infra: Prometheus,
    Alertmanager, Nginx, the local package repository, DNS, NTP); every other node; the DCS
    (etcd's members, one at a time: orch.dcs); then every cluster in order.
      salt-run state.orchestrate orch.site
    The infra comes before the other nodes' node role because that role points them at it:
    resolver (dnsmasq), time (chrony) and, with node_repo_local, their only apt source.
    This is the sandbox's main job. -#}
{%- set v = salt['saltutil.runner']('pigsty.validate', kwarg={'verbose': True}) %}
{%- set meta = v.meta if v is mapping and v.get('meta') else [] %}
site-validate:
  salt.runner:
    - name: pigsty.validate
{%- if meta %}

site-meta-nodes:
  salt.state:
    - tgt: {{ meta | json }}
    - tgt_type: list
    - sls: [node]
    - require:
      - salt: site-validate

{#- the CA server (first meta node) signs the other nodes' certificates under policies from
    its pillar (_pillar/pigsty_pki.py): refresh it so that nodes new in the inventory have one #}
site-ca-pillar:
  salt.function:
    - name: saltutil.refresh_pillar
    - tgt: {{ meta | json }}
    - tgt_type: list
    - kwarg: {wait: True}
    - require:
      - salt: site-meta-nodes
    - require_in:
      - salt: site-nodes

site-infra:
  salt.state:
    - tgt: {{ meta | json }}
    - tgt_type: list
    - sls: [infra]
    - require:
      - salt: site-meta-nodes
    - require_in:
      - salt: site-nodes
{%- endif %}

{#- in batches: each node's certificate request holds a master worker while the CA server
    signs (master.d/pigsty.conf: worker_threads) #}
site-nodes:
  salt.state:
    - tgt: '*'
    - sls: [node]
    - batch: 4
    - require:
      - salt: site-validate

site-dcs:
  salt.runner:
    - name: state.orchestrate
    - arg: [orch.dcs]
    - require:
      - salt: site-nodes
{%- for name in (v.clusters if v is mapping and v.get('clusters') else {}) %}

site-{{ name }}:
  salt.runner:
    - name: state.orchestrate
    - arg: [orch.pgsql]
    - kwarg:
        pillar: {pg_cluster: {{ name }}}
    - require:
      - salt: site-dcs
{%- endfor %}
