"""Real etcd processes on loopback with the settings salt/dcs/init.sls renders (Debian's
etcd 3.4, unpacked by tests/support/fetch_exporters.sh): the environment of
/etc/default/etcd plus /etc/default/etcd-initial, a scratch data directory."""
import os
import shlex
import subprocess
import time

import pigsty_etcd
from render import state_arg

ROOT = os.environ.get("PIGSTY_TEST_ROOT", "/var/cache/pigsty-test-root")
ETCD = os.path.join(ROOT, "usr", "bin", "etcd")
ETCDCTL = os.path.join(ROOT, "usr", "bin", "etcdctl")


def etcd_env(states, data_dir):
    """The environment etcd gets from the rendered state's /etc/default/etcd and
    /etc/default/etcd-initial (the unit's two environment files)."""
    env = {}
    for sid in ("etcd-config", "etcd-initial"):
        for line in state_arg(states, sid, "contents").splitlines():
            line = line.strip()
            if line.startswith("ETCD_"):
                key, value = line.split("=", 1)
                env[key] = shlex.split(value)[0]
    env["ETCD_DATA_DIR"] = data_dir
    return env


class Member:
    """One etcd process: ``start()``, ``stop()`` (SIGKILL with ``kill=True``), its log."""

    def __init__(self, env, base, name):
        self.env, self.base, self.name = env, base, name
        self.proc = None
        self.log_path = os.path.join(base, "%s.log" % name)

    def start(self):
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([ETCD], env=dict(self.env, PATH="/usr/bin:/bin"), stdout=log,
                                     stderr=subprocess.STDOUT, cwd=self.base)
        log.close()
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, kill=False):
        if not self.running():
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def log(self, tail=3000):
        with open(self.log_path) as fh:
            return fh.read()[-tail:]


def wait_healthy(client, member, timeout=30):
    """Wait until ``client`` (a pigsty_etcd.Client of the member) says healthy; fails with
    the member's log."""
    deadline = time.monotonic() + timeout
    while True:
        if not member.running():
            raise AssertionError("etcd %s exited:\n%s" % (member.name, member.log()))
        try:
            if client.health():
                return
        except pigsty_etcd.EtcdError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("etcd %s did not become healthy:\n%s" % (member.name, member.log()))
        time.sleep(0.2)
