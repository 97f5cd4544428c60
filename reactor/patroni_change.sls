# A Patroni role/state/timeline change on some member: reconcile that cluster.
# The runner gets the event with its tag under "_tag", set here after the data so that the
# payload cannot choose it. It acts only when the tag's minion owns the instance the event
# names, within that minion's rate limit, on a well-formed payload (pigsty_events.admit);
# it refuses and counts the rest, and records only the known fields.
{%- set event = dict(data) %}
{%- do event.update({'_tag': tag}) %}
pigsty-reconcile-on-patroni-change:
  runner.pigsty_ha.reconcile:
    - event: {{ event | json }}
