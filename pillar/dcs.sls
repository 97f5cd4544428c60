# etcd's root password: only the meta nodes receive this file (pillar/top.sls). The meta
# node creates each cluster's etcd user with it and enables etcd's authentication.
# SANDBOX PASSWORD: replace it before using this outside the sandbox.
pigsty:
  dcs:
    etcd_root_password: Sandbox.Etcd.Root
