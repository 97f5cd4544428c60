{%- set node = salt['pigsty.node']() %}
# Pigsty's node_packages: extra Debian packages on every node (a cluster's list applies to its
# members, pigsty:vars' to the other nodes). With node_repo_local the meta node's repository
# carries them (infra.repo). Removing a name from the list does not remove the package.
{%- if node.packages %}

node-packages:
  pkg.installed:
    - pkgs: {{ node.packages | json }}
{%- else %}

node-packages-nothing:
  test.succeed_without_changes:
    - name: no node_packages in pillar
{%- endif %}
