# A Patroni role/state/timeline change on some member: reconcile that cluster.
# The runner checks the payload (unknown cluster, bad instance, missing fields -> refused).
pigsty-reconcile-on-patroni-change:
  runner.pigsty_ha.reconcile:
    - event: {{ data | json }}
