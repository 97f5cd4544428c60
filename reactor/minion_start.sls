# A minion (re)started: events may have been missed while it was away.
pigsty-reconcile-on-minion-start:
  runner.pigsty_ha.reconcile_all: []
