# node role: everything a Pigsty node needs before any service role.
include:
  - node.identity
