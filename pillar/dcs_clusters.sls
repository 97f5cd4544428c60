#!jinja|yaml|gpg
{#- The meta nodes create one etcd user per cluster, so they need each cluster's etcd
    password (pg_etcd_password) -- and nothing else of the clusters' private files. This
    file copies that one value from each private file into pigsty:dcs:etcd_users (meta
    nodes only, pillar/top.sls): the password has one source, the cluster's own file.
    A private file may hold its values encrypted for Salt's gpg renderer (its first line
    #!yaml|gpg): import_yaml reads the file's text, not what the renderer made of it, so this
    file ends its own pipeline in gpg and the copied PGP message is decrypted here, on the
    master, like the original (docs/security.md, "Encrypted pillar"). The gpg program must be
    installed on the master (scripts/bootstrap-salt.sh does). -#}
{%- import_yaml 'pigsty.sls' as public %}
pigsty:
  dcs:
    etcd_users:
{%- for name in (public.pigsty.clusters or {}) %}
{%-   import_yaml 'clusters/' ~ name ~ '.sls' as private %}
{%-   set cvars = (((private or {}).get('pigsty') or {}).get('clusters') or {}).get(name, {}).get('vars') or {} %}
{%-   if cvars.get('pg_etcd_password') is not none %}
      {{ name | json }}: {{ cvars.pg_etcd_password | json }}
{%-   endif %}
{%- endfor %}
