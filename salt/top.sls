# State top: every node gets the node role (identity grains, base settings).
# Later roles: infra on meta nodes, pgsql on nodes that host an instance.
base:
  '*':
    - node
