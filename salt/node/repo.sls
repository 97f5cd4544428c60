{%- set node = salt['pigsty.node']() %}
{%- if node.repo_local and not salt['pigsty.repo_served']() %}
# The repository is not served yet (the infra role builds it on the meta node; orch.site
# applies infra before the other nodes): keep the current sources until it is.
node-repo-not-served-yet:
  test.show_notification:
    - text: node_repo_local is on but {{ node.repo.url }}/ does not answer yet (apply infra on the meta node first); this node keeps its current apt sources
{%- elif node.repo_local %}
# The meta node's package repository as this node's only apt source
# ({{ node.repo.source }}), fetched directly, not through an apt proxy, over HTTPS: apt
# checks the meta node's certificate with the Pigsty CA (node.pki comes first).
# Enabled by pigsty:vars:node_repo_local; the original sources.list is kept as
# /etc/apt/sources.list.pigsty-orig and comes back when the flag is off.
node-repo-keep-sources:
  file.copy:
    - name: /etc/apt/sources.list.pigsty-orig
    - source: /etc/apt/sources.list
    - unless: grep -q 'Pigsty on Salt' /etc/apt/sources.list

node-repo-sources:
  file.managed:
    - name: /etc/apt/sources.list
    - contents: |
        # Managed by Salt (Pigsty on Salt): packages come from the meta node's repository only
        # (see sources.list.d/pigsty.list); the original is sources.list.pigsty-orig
    - require:
      - file: node-repo-keep-sources

node-repo-list:
  file.managed:
    - name: /etc/apt/sources.list.d/pigsty.list
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        {{ node.repo.source }}

node-repo-direct:
  file.managed:
    - name: /etc/apt/apt.conf.d/90pigsty-local-repo
    - contents: |
        # Managed by Salt (Pigsty on Salt): the meta repository is fetched directly, over
        # HTTPS verified with the Pigsty CA (node.pki)
{%- for host in node.repo_hosts %}
        Acquire::https::Proxy::{{ host }} "DIRECT";
        Acquire::https::{{ host }}::CaInfo "{{ node.repo.ca }}";
        Acquire::https::{{ host }}::Verify-Peer "true";
        Acquire::https::{{ host }}::Verify-Host "true";
{%- endfor %}

node-repo-update:
  cmd.run:
    - name: apt-get -qq update
    - onchanges:
      - file: node-repo-sources
      - file: node-repo-list
      - file: node-repo-direct
{%- else %}
# pigsty:vars:node_repo_local is off: this node keeps (or gets back) its own apt sources.
node-repo-restore-sources:
  file.rename:
    - name: /etc/apt/sources.list
    - source: /etc/apt/sources.list.pigsty-orig
    - force: True
    - onlyif: test -f /etc/apt/sources.list.pigsty-orig

node-repo-list:
  file.absent:
    - name: /etc/apt/sources.list.d/pigsty.list

node-repo-direct:
  file.absent:
    - name: /etc/apt/apt.conf.d/90pigsty-local-repo

node-repo-update:
  cmd.run:
    - name: apt-get -qq update
    - onchanges:
      - file: node-repo-restore-sources
      - file: node-repo-list
{%- endif %}
