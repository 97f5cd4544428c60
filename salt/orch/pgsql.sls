{#- Create or converge one cluster, in order:
      validate -> the suite's modules synced -> DCS ready -> primary -> leader -> users -> replicas -> backup stanza,
      services -> exporters
    salt-run state.orchestrate orch.pgsql pillar='{"pg_cluster": "pg-test"}'
    Re-running it converges; members added to the inventory join as replicas. -#}
{%- set name = pillar.get('pg_cluster') %}
{%- if not name %}{{ raise("pillar pg_cluster: missing (expected the cluster to create, e.g. pillar='{\"pg_cluster\": \"pg-test\"}')") }}{% endif %}
{%- set c = salt['saltutil.runner']('pigsty.cluster', arg=[name]) %}
{%- if c is not mapping or 'members' not in c %}{{ raise("pillar pg_cluster: " ~ c) }}{% endif %}

{{ name }}-validate:
  salt.runner:
    - name: pigsty.validate

# the suite's modules, states and grains on the members (a node new to Salt has none: its
# states would not render) and on the meta nodes
{{ name }}-sync:
  salt.function:
    - name: saltutil.sync_all
    - tgt: {{ (c.meta + c.minions) | unique | list | json }}
    - tgt_type: list
    - require:
      - salt: {{ name }}-validate

{{ name }}-dcs:
  salt.state:
    - tgt: {{ c.meta | json }}
    - tgt_type: list
    - sls: [node, dcs]
    - require:
      - salt: {{ name }}-sync

# the backup repository knows the cluster (its configuration, the members' TLS identities)
# before the primary archives its first WAL segment
{{ name }}-backup-repo:
  salt.state:
    - tgt: {{ c.meta[:1] | json }}
    - tgt_type: list
    - sls: [infra.backup_repo]
    - require:
      - salt: {{ name }}-dcs

{%- if c.clone_of %}

# a clone (pg_pitr): the source's backups must cover the target before the first member
# restores them (a running clone: nothing to check, pg_pitr acts only at creation)
{{ name }}-clone-check:
  salt.runner:
    - name: pigsty_backup.clone_check
    - arg: [{{ name }}]
    - require:
      - salt: {{ name }}-backup-repo
    - require_in:
      - salt: {{ name }}-primary
{%- endif %}

{{ name }}-primary:
  salt.state:
    - tgt: {{ c.primary | json }}
    - tgt_type: list
    - sls: [node, pgsql.install, pgsql.pgbackrest, pgsql.patroni]
    - require:
      - salt: {{ name }}-backup-repo

# pgBackRest creates a stanza on the repository host only, once the primary runs and every
# member's pgBackRest server is up (after the replicas): pgBackRest checks every pgN-host of
# the stanza and waits 120 s for each one that refuses (measured: a fresh pg-test spent 241 s
# here when the stanza came before its replicas). WAL the primary could not archive
# meanwhile stays in pg_wal and is archived once the stanza exists.
# (idempotent: an existing matching stanza is fine)
# A standby cluster (pg_upstream) archives nothing and has no backups of its own: its
# upstream's cover its data; salt-run pigsty_ha.promote creates its stanza when it becomes a
# cluster of its own.
{%- if not c.standby_of %}
{{ name }}-stanza:
  salt.function:
    - name: pigsty_backup.stanza_create
    - tgt: {{ c.meta[:1] | json }}
    - tgt_type: list
    - arg: [{{ name }}]
    - require:
      - salt: {{ name }}-leader
{%- endif %}

{{ name }}-leader:
  salt.runner:
    - name: pigsty.wait_leader
    - arg: [{{ name }}]
    - kwarg: {timeout: 120}
    - require:
      - salt: {{ name }}-primary

{{ name }}-users:
  salt.state:
    - tgt: {{ c.minions | json }}
    - tgt_type: list
    - sls: [pgsql.user]
    - require:
      - salt: {{ name }}-leader
{%- if c.replicas %}

{{ name }}-replicas:
  salt.state:
    - tgt: {{ c.replicas | json }}
    - tgt_type: list
    - sls: [node, pgsql.install, pgsql.patroni, pgsql.pgbackrest]
    - require:
      - salt: {{ name }}-users
    - require_in:
      - salt: {{ name }}-services
{%- if not c.standby_of %}
      - salt: {{ name }}-stanza
{%- endif %}
{%- endif %}

{{ name }}-services:
  salt.state:
    - tgt: {{ c.minions | json }}
    - tgt_type: list
    - sls: [pgsql.pgbouncer, pgsql.pause_watchdog, pgsql.service, pgsql.vip, pgsql.beacon]
    - require:
      - salt: {{ name }}-users

{{ name }}-exporters:
  salt.state:
    - tgt: {{ c.minions | json }}
    - tgt_type: list
    - sls: [pgsql.monitor]
    - require:
      - salt: {{ name }}-services
