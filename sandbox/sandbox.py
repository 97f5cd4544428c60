#!/usr/bin/env python3
"""Local 4-node sandbox: systemd-nspawn machines on a bridge, like Pigsty's Vagrant sandbox.

    sandbox.py up [--no-apply]   build/reuse the base image, start meta + node-1..3,
                                 start Salt (master on meta, minion everywhere), accept keys,
                                 then run the main job (sync modules, state.apply)
    sandbox.py down              stop every machine; remove mounts, cgroups, veths, bridge
    sandbox.py prepare           host packages and the Salt venv only
    sandbox.py status            machines, their PID 1, address and state
    sandbox.py add NODE          start an extra machine (node-4, meta-2) on the running
                                 sandbox with a minion of meta's master, key accepted;
                                 applies no state (idempotent). meta-2 also becomes a
                                 second Salt master (Salt's multi-master): meta's key pair
                                 and accepted keys, the repository at /srv/pigsty, and
                                 every minion connected to both masters
    sandbox.py remove NODE       stop an extra machine, delete its key on the master and
                                 its disk, veth and cgroups (meta-2: the minions first go
                                 back to meta's master alone)
    sandbox.py exec NODE CMD...  run a command inside a node (exit code passed through)
    sandbox.py shell NODE        interactive shell inside a node
    sandbox.py kill NODE         hard-kill a machine (disk kept); start NODE boots it again
    sandbox.py leftovers         print what `down` would have to remove (empty = clean)

NODE is one of meta, node-1..3, or an extra machine once added. `down` removes the extra
machines too.

Everything the sandbox keeps lives under $PIGSTY_SANDBOX_HOME (default
/var/lib/pigsty-sandbox): the cached base image, one overlay upper dir per machine, the apt
cache. Runs as root on Debian 12; uses only the standard library.
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOME = os.environ.get("PIGSTY_SANDBOX_HOME", "/var/lib/pigsty-sandbox")
VENV = os.environ.get("PIGSTY_SALT_VENV", "/opt/pigsty/venv")
SALT_VERSION = "3008.4"
BRIDGE = "pgsty-br0"
HOST_IP = "10.10.10.1"
NETMASK = 24
APT_PROXY_PORT = 3142
MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
# The default sandbox: Pigsty's meta + node-1..3 (minion id = host name).
MACHINES = [
    ("meta", "10.10.10.10"),
    ("node-1", "10.10.10.11"),
    ("node-2", "10.10.10.12"),
    ("node-3", "10.10.10.13"),
]
# Extra machines: never started by `up`; `add NODE` starts one on the running sandbox (a
# Salt minion of meta's master, no state applied), `remove NODE` deletes it. Tests that need
# another node (a temporary cluster, a second master) use them.
EXTRA_MACHINES = [
    ("node-4", "10.10.10.14"),
    ("meta-2", "10.10.10.9"),     # a second Salt master (and meta node, once the pillar says so)
]
META = "meta"
SECOND_MASTER = "meta-2"
IMAGE_VERSION = "2"   # bump when customise_image changes
BASE_PACKAGES = [  # changing this list (or the image customisation version) rebuilds the image
    "systemd", "systemd-sysv", "dbus", "iproute2", "python3", "iputils-ping", "curl",
    "procps", "ca-certificates", "netbase", "less", "dnsutils", "iptables",
]
CGROUP_ROOTS = ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"]
ENV_PATH = VENV + "/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class SandboxError(RuntimeError):
    pass


def log(msg):
    print("[sandbox %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def run(cmd, check=True, capture=False, timeout=None, env=None, quiet=False):
    if not quiet:
        log("$ " + " ".join(cmd))
    res = subprocess.run(cmd, check=False, timeout=timeout, env=env,
                         stdout=subprocess.PIPE if capture else None,
                         stderr=subprocess.PIPE if capture else None,
                         universal_newlines=True)
    if check and res.returncode != 0:
        detail = (res.stderr or "").strip() if capture else ""
        raise SandboxError("command failed (%d): %s %s" % (res.returncode, " ".join(cmd), detail))
    return res


# ---------------------------------------------------------------- paths
def image_dir():
    return os.path.join(HOME, "images", SUITE)


def machine_dir(name):
    return os.path.join(HOME, "machines", name)


def merged_dir(name):
    return os.path.join(machine_dir(name), "root")


def pid_file(name):
    return os.path.join(machine_dir(name), "nspawn.pid")


def all_machines():
    return MACHINES + EXTRA_MACHINES


def is_extra(name):
    return name in dict(EXTRA_MACHINES)


def extra_present():
    """The extra machines that exist now (their machine dir is there), running or not."""
    return [(n, ip) for n, ip in EXTRA_MACHINES if os.path.isdir(machine_dir(n))]


def veth_name(name):
    """Host end of a machine's veth: systemd-nspawn names it vb-<machine> (names here are
    short enough not to be truncated)."""
    return "vb-" + name


# ---------------------------------------------------------------- host set-up
def ensure_host_packages():
    pkgs = {"systemd-nspawn": "systemd-container", "debootstrap": "debootstrap",
            "apt-cacher-ng": "apt-cacher-ng"}          # binary -> package
    need = [b for b in pkgs if not shutil.which(b)]
    if not need:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq"] + [pkgs[b] for b in need] + ["python3-venv"], env=env)


def requirements_files():
    return [os.path.join(REPO, "requirements.txt")]


def ensure_venv():
    """The Salt venv: built once on the host with Debian's python3, bind-mounted read-only
    into every machine at the same path (its scripts' shebangs name that path)."""
    want = hashlib.sha256()
    for f in requirements_files():
        with open(f, "rb") as fh:
            want.update(fh.read())
    stamp = os.path.join(VENV, ".pigsty-requirements")
    digest = want.hexdigest()
    if os.path.exists(stamp) and open(stamp).read().strip() == digest:
        return
    log("building the Salt venv at %s (salt==%s; about a minute)" % (VENV, SALT_VERSION))
    if not os.path.exists(os.path.join(VENV, "bin", "python3")):
        run(["/usr/bin/python3", "-m", "venv", VENV])
    pip = os.path.join(VENV, "bin", "pip")
    run([pip, "install", "-q", "--upgrade", "pip"])
    for f in requirements_files():
        run([pip, "install", "-q", "-r", f])
    with open(stamp, "w") as fh:
        fh.write(digest + "\n")


def ensure_image():
    """Debian bookworm minbase + systemd, cached; rebuilt only when BASE_PACKAGES change."""
    target = image_dir()
    digest = hashlib.sha256(" ".join(BASE_PACKAGES + [SUITE, MIRROR, IMAGE_VERSION]).encode()).hexdigest()
    stamp = os.path.join(target, "etc", "pigsty-image")
    if os.path.exists(stamp) and open(stamp).read().strip() == digest:
        return False
    log("building base image %s (debootstrap, about a minute)" % target)
    tmp = target + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    run(["debootstrap", "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES),
         SUITE, tmp, MIRROR], capture=True)
    customise_image(tmp)
    with open(os.path.join(tmp, "etc", "pigsty-image"), "w") as fh:
        fh.write(digest + "\n")
    if os.path.exists(target):
        shutil.rmtree(target)
    os.rename(tmp, target)
    return True


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)
    os.chmod(path, mode)


def customise_image(root):
    # resolver: local only, fail fast (the host's resolver is unreachable from machines)
    if os.path.islink(os.path.join(root, "etc/resolv.conf")):
        os.unlink(os.path.join(root, "etc/resolv.conf"))
    write(os.path.join(root, "etc/resolv.conf"),
          "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    # packages come through the host's apt cache on the bridge address
    write(os.path.join(root, "etc/apt/apt.conf.d/01pigsty-sandbox-proxy"),
          'Acquire::http::Proxy "http://%s:%d";\n' % (HOST_IP, APT_PROXY_PORT))
    write(os.path.join(root, "etc/apt/apt.conf.d/02pigsty-no-recommends"),
          'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n')
    write(os.path.join(root, "etc/apt/sources.list"),
          "deb %s %s main\ndeb %s %s-updates main\ndeb http://deb.debian.org/debian-security "
          "%s-security main\n" % (MIRROR, SUITE, MIRROR, SUITE, SUITE))
    # networkd configures host0; nothing waits for a network that is already there
    wants = os.path.join(root, "etc/systemd/system/multi-user.target.wants")
    os.makedirs(wants, exist_ok=True)
    link = os.path.join(wants, "systemd-networkd.service")
    if not os.path.lexists(link):
        os.symlink("/lib/systemd/system/systemd-networkd.service", link)
    for unit in ("systemd-networkd-wait-online.service", "apt-daily.timer",
                 "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer"):
        p = os.path.join(root, "etc/systemd/system", unit)
        if not os.path.lexists(p):
            os.symlink("/dev/null", p)
    # The bridge's interface is host0 in a container; rename it eth1 before networkd starts,
    # so the pillar is the same as on the Vagrant boxes (private network on eth1).
    write(os.path.join(root, "etc/systemd/system/pigsty-sandbox-eth1.service"),
          "[Unit]\nDescription=Rename host0 to eth1 (as on the Vagrant boxes)\n"
          "DefaultDependencies=no\nBefore=systemd-networkd.service network-pre.target\n"
          "Wants=network-pre.target\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
          "ExecStart=/bin/sh -c 'if ip link show host0 >/dev/null 2>&1; then "
          "ip link set host0 down && ip link set host0 name eth1; fi'\n\n"
          "[Install]\nWantedBy=sysinit.target\n")
    sysinit = os.path.join(root, "etc/systemd/system/sysinit.target.wants")
    os.makedirs(sysinit, exist_ok=True)
    link = os.path.join(sysinit, "pigsty-sandbox-eth1.service")
    if not os.path.lexists(link):
        os.symlink("/etc/systemd/system/pigsty-sandbox-eth1.service", link)
    write(os.path.join(root, "etc/machine-id"), "")
    os.makedirs(os.path.join(root, VENV.lstrip("/")), exist_ok=True)
    os.makedirs(os.path.join(root, "srv/pigsty"), exist_ok=True)


def bridge_exists():
    return os.path.exists("/sys/class/net/" + BRIDGE)


def ensure_bridge():
    if not bridge_exists():
        run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    addrs = run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE], capture=True, quiet=True).stdout
    if "%s/%d" % (HOST_IP, NETMASK) not in addrs:
        run(["ip", "addr", "add", "%s/%d" % (HOST_IP, NETMASK), "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"], quiet=True)


def acng_dir():
    return os.path.join(HOME, "apt-cacher-ng")


def acng_pid():
    try:
        pid = int(open(os.path.join(acng_dir(), "acng.pid")).read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def ensure_apt_cache():
    """apt-cacher-ng bound to the bridge address only; the machines' one way to packages."""
    if acng_pid():
        return
    conf = acng_dir()
    for sub in ("cache", "log"):
        os.makedirs(os.path.join(conf, sub), exist_ok=True)
    write(os.path.join(conf, "acng.conf"), "\n".join([
        "CacheDir: %s/cache" % conf,
        "LogDir: %s/log" % conf,
        "SupportDir: /usr/lib/apt-cacher-ng",
        "Port: %d" % APT_PROXY_PORT,
        "BindAddress: %s" % HOST_IP,
        "PidFile: %s/acng.pid" % conf,
        "Remap-debrep: file:deb_mirror*.gz /debian ; %s/" % MIRROR,
        "Remap-secdeb: security.debian.org deb.debian.org/debian-security /debian-security ;"
        " http://deb.debian.org/debian-security/",
        "ExThreshold: 4",
        "",
    ]))
    shutil.chown(os.path.join(conf, "cache"), "apt-cacher-ng", "apt-cacher-ng")
    shutil.chown(os.path.join(conf, "log"), "apt-cacher-ng", "apt-cacher-ng")
    run(["/usr/sbin/apt-cacher-ng", "-c", conf, "ForeGround=0"])
    for _ in range(50):
        if acng_pid():
            return
        time.sleep(0.1)
    raise SandboxError("apt-cacher-ng did not start; see %s/log" % conf)


# ---------------------------------------------------------------- machines
def nspawn_pid(name):
    try:
        pid = int(open(pid_file(name)).read().strip())
    except (OSError, ValueError):
        return None
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            if b"systemd-nspawn" not in fh.read():
                return None
    except OSError:
        return None
    return pid


def machine_init_pid(name):
    """PID (host view) of the machine's systemd, i.e. its PID 1."""
    parent = nspawn_pid(name)
    if parent is None:
        return None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/status" % entry) as fh:
                status = fh.read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields.get("PPid", "0").strip()) != parent:
            continue
        nspid = fields.get("NSpid", "").split()
        if len(nspid) >= 2 and nspid[-1] == "1":
            return int(entry)
    return None


def machine_memory_mib(name):
    """Sum of PSS (MiB) of every process in the machine's PID namespace (for benchmarks)."""
    init = machine_init_pid(name)
    if init is None:
        raise SandboxError("machine %s is not running" % name)
    ns = os.readlink("/proc/%d/ns/pid" % init)
    total_kib = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink("/proc/%s/ns/pid" % entry) != ns:
                continue
            with open("/proc/%s/smaps_rollup" % entry) as fh:
                total_kib += sum(int(l.split()[1]) for l in fh if l.startswith("Pss:"))
        except OSError:
            continue
    return total_kib / 1024.0


def is_mounted(path):
    with open("/proc/self/mounts") as fh:
        return any(line.split()[1] == path for line in fh)


def mount_overlay(name):
    mdir = machine_dir(name)
    upper, work, root = (os.path.join(mdir, d) for d in ("upper", "work", "root"))
    for d in (upper, work, root):
        os.makedirs(d, exist_ok=True)
    if not is_mounted(root):
        run(["mount", "-t", "overlay", "overlay", "-o",
             "lowerdir=%s,upperdir=%s,workdir=%s" % (image_dir(), upper, work), root], quiet=True)
    return root


def configure_machine(name, ip):
    root = merged_dir(name)
    write(os.path.join(root, "etc/hostname"), name + "\n")
    hosts = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback",
             "127.0.1.1 %s" % name]
    known = MACHINES if name in dict(MACHINES) else MACHINES + [(name, ip)]
    hosts += ["%s %s" % (mip, mname) for mname, mip in known]
    write(os.path.join(root, "etc/hosts"), "\n".join(hosts) + "\n")
    write(os.path.join(root, "etc/systemd/network/10-eth1.network"),
          "[Match]\nName=eth1\n\n[Network]\nAddress=%s/%d\nLinkLocalAddressing=no\n"
          "IPv6AcceptRA=no\n" % (ip, NETMASK))
    mid = os.path.join(root, "etc/machine-id")
    if not open(mid).read().strip():
        write(mid, hashlib.md5(("pigsty-sandbox-" + name).encode()).hexdigest() + "\n", 0o444)


def cgroup_paths(name):
    return [os.path.join(c, "nspawn-" + name) for c in CGROUP_ROOTS if os.path.isdir(c)]


def start_machine(name, ip):
    if nspawn_pid(name):
        return False
    root = mount_overlay(name)
    configure_machine(name, ip)
    cgroups = cgroup_paths(name)
    for c in cgroups:
        os.makedirs(c, exist_ok=True)
    cmd = ["systemd-nspawn", "-D", root, "-M", name, "--boot", "--register=no",
           "--keep-unit", "--network-bridge=" + BRIDGE, "--console=passive",
           "--resolv-conf=off", "--timezone=off", "--link-journal=no",
           "--bind-ro=%s" % VENV]
    if name in (META, SECOND_MASTER):
        cmd.append("--bind-ro=%s:/srv/pigsty" % REPO)
    logf = open(os.path.join(machine_dir(name), "nspawn.log"), "ab")

    def enter_cgroup():
        os.setsid()
        for c in cgroups:
            with open(os.path.join(c, "cgroup.procs"), "w") as fh:
                fh.write(str(os.getpid()))

    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                            preexec_fn=enter_cgroup, close_fds=True)
    write(pid_file(name), "%d\n" % proc.pid)
    return True


def not_running(name):
    hint = "sandbox add %s" % name if is_extra(name) and not os.path.isdir(machine_dir(name)) \
        else "sandbox start %s" % name if is_extra(name) else "sandbox up"
    return SandboxError("machine %s is not running (try: %s)" % (name, hint))


def nsenter(name, cmd, check=True, capture=True, timeout=300, interactive=False):
    pid = machine_init_pid(name)
    if pid is None:
        raise not_running(name)
    full = ["nsenter", "-t", str(pid), "-a", "--", "/usr/bin/env", "-i",
            "PATH=" + ENV_PATH, "HOME=/root", "LANG=C.UTF-8", "TERM=" + os.environ.get("TERM", "xterm")]
    full += list(cmd)
    if interactive:
        return subprocess.call(full)
    res = subprocess.run(full, stdout=subprocess.PIPE if capture else None,
                         stderr=subprocess.PIPE if capture else None,
                         universal_newlines=True, timeout=timeout)
    if check and res.returncode != 0:
        raise SandboxError("in %s: %s -> rc %d\n%s%s" % (name, " ".join(cmd), res.returncode,
                                                        res.stdout or "", res.stderr or ""))
    return res


def wait_running(name, timeout=60):
    deadline = time.time() + timeout
    state = "?"
    while time.time() < deadline:
        if machine_init_pid(name):
            res = nsenter(name, ["systemctl", "is-system-running"], check=False)
            state = res.stdout.strip()
            if state in ("running", "degraded"):
                return state
        time.sleep(0.2)
    raise SandboxError("machine %s did not boot within %ds (state %s); see %s" % (
        name, timeout, state, os.path.join(machine_dir(name), "nspawn.log")))


def request_poweroff(name):
    init = machine_init_pid(name)
    if init:
        subprocess.run(["nsenter", "-t", str(init), "-a", "systemctl", "poweroff", "--no-block"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_machine(name, timeout=20):
    parent = nspawn_pid(name)
    if parent:
        request_poweroff(name)
        deadline = time.time() + timeout
        while time.time() < deadline and nspawn_pid(name):
            time.sleep(0.2)
        if nspawn_pid(name):
            log("%s did not power off in %ds: killing it" % (name, timeout))
            kill_cgroup(name)
            os.kill(parent, signal.SIGKILL)
            time.sleep(0.5)
    root = merged_dir(name)
    if os.path.isdir(root):
        for _ in range(20):
            if not is_mounted(root):
                break
            if subprocess.run(["umount", root], stderr=subprocess.DEVNULL).returncode != 0:
                subprocess.run(["umount", "-l", root], stderr=subprocess.DEVNULL)
                time.sleep(0.2)
    remove_cgroups(name)
    shutil.rmtree(machine_dir(name), ignore_errors=True)


def remove_stray_veths(wait=5.0):
    """Host ends of machine veths (vb-*) that outlive their machine: the kernel removes them
    when the container's network namespace goes, which can lag behind a killed nspawn."""
    deadline = time.time() + wait
    while True:
        stray = [i for i in os.listdir("/sys/class/net") if i.startswith("vb-")]
        if not stray or time.time() >= deadline:
            break
        time.sleep(0.2)
    for ifname in stray:
        subprocess.run(["ip", "link", "del", ifname], stderr=subprocess.DEVNULL)


def kill_cgroup(name):
    for c in cgroup_paths(name):
        for dirpath, _dirs, files in os.walk(c):
            if "cgroup.procs" in files:
                for pid in open(os.path.join(dirpath, "cgroup.procs")).read().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except OSError:
                        pass


def remove_cgroups(name):
    for c in cgroup_paths(name):
        if not os.path.isdir(c):
            continue
        for dirpath, _dirs, _files in sorted(os.walk(c), key=lambda t: -t[0].count("/")):
            for _ in range(25):
                try:
                    os.rmdir(dirpath)
                    break
                except OSError:
                    time.sleep(0.2)


# ---------------------------------------------------------------- salt
def second_master_up():
    """meta-2 runs as a second Salt master (added, running, its salt-master unit written)."""
    return bool(machine_init_pid(SECOND_MASTER)) and os.path.exists(
        os.path.join(merged_dir(SECOND_MASTER), "etc/systemd/system/salt-master.service"))


def master_ips():
    """The masters every minion connects to: meta's, and meta-2's while it is one."""
    ips = [MACHINES[0][1]]
    if second_master_up():
        ips.append(dict(EXTRA_MACHINES)[SECOND_MASTER])
    return ips


def bootstrap_salt(name, ip, masters=None, master=None):
    """bootstrap-salt.sh on ``name``: a minion of ``masters`` (default master_ips()), and a
    salt-master too for meta (and meta-2 when ``master``). Restarts a daemon only when its
    config changed."""
    script = os.path.join(REPO, "scripts", "bootstrap-salt.sh")
    # non-meta machines do not see the repo: copy the script in
    dest = os.path.join(merged_dir(name), "usr/local/sbin/pigsty-bootstrap-salt")
    shutil.copy(script, dest)
    os.chmod(dest, 0o755)
    args = ["/usr/local/sbin/pigsty-bootstrap-salt", "--master-ip", ",".join(masters or master_ips()),
            "--id", name, "--venv", VENV]
    if name == META or (master if master is not None else name == SECOND_MASTER and second_master_up()):
        args += ["--master", "--repo", "/srv/pigsty"]
    nsenter(name, args, timeout=600)


def salt(args, timeout=600, check=True, on=META):
    return nsenter(on, ["salt"] + list(args), timeout=timeout, check=check)


def accept_keys(names, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        res = nsenter(META, ["salt-key", "--out=json", "-L"], check=False)
        try:
            keys = json.loads(res.stdout)
        except ValueError:
            keys = {}
        accepted = set(keys.get("minions", []))
        pending = set(keys.get("minions_pre", []))
        if set(names) <= accepted:
            return
        if pending & set(names):
            nsenter(META, ["salt-key", "-y", "-A"], check=False)
        time.sleep(0.3)
    raise SandboxError("minion keys not accepted within %ds: want %s" % (timeout, names))


def wait_minions(names, timeout=90, on=META):
    deadline = time.time() + timeout
    answered = set()
    while time.time() < deadline:
        res = salt(["--out=json", "--static", "-t", "5", "*", "test.ping"], check=False, on=on)
        try:
            answered = {k for k, v in json.loads(res.stdout or "{}").items() if v is True}
        except ValueError:
            answered = set()
        if set(names) <= answered:
            return
        time.sleep(0.5)
    raise SandboxError("minions not answering %s's master within %ds: %s"
                       % (on, timeout, sorted(set(names) - answered)))


MASTER_PKI = "etc/salt/pki/master"


def in_root(root, path):
    """``path`` of a machine as a host path under its ``root``, its symlinks (absolute ones
    meaning the machine's own root) followed."""
    host = os.path.join(root, path.lstrip("/"))
    for _ in range(20):
        if not os.path.islink(host):
            return host
        target = os.readlink(host)
        host = os.path.join(root, target.lstrip("/")) if target.startswith("/") \
            else os.path.join(os.path.dirname(host), target)
    raise SandboxError("%s: too many symlinks under %s" % (path, root))


def share_master_keys(to):
    """What Salt's multi-master needs the masters to share, copied from meta to ``to``:
    the master's key pair (minions accept one master key), the accepted minion keys, and
    the gpg key ring of the encrypted pillar (master.d: gpg renderer). Keys of minions
    no longer accepted on meta are deleted on ``to``."""
    src, dst = merged_dir(META), merged_dir(to)
    key = in_root(src, "/%s/master.pem" % MASTER_PKI)
    if not os.path.isfile(key):
        raise SandboxError("%s has no master key (/%s/master.pem): is its salt-master up?" % (META, MASTER_PKI))
    os.makedirs(os.path.join(dst, MASTER_PKI, "minions"), mode=0o700, exist_ok=True)
    os.chmod(os.path.join(dst, MASTER_PKI), 0o700)
    # Salt 3008 keeps a master's key as <id>.pem (master.pem: a link to it): the copy goes
    # there, so the second master uses it rather than making its own
    for ext, mode in (("pem", 0o400), ("pub", 0o644)):
        own = os.path.join(dst, MASTER_PKI, "%s.%s" % (to, ext))
        if os.path.exists(own):
            os.chmod(own, 0o600)
        shutil.copyfile(in_root(src, "/%s/master.%s" % (MASTER_PKI, ext)), own)
        os.chmod(own, mode)
        link = os.path.join(dst, MASTER_PKI, "master." + ext)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink("/%s/%s.%s" % (MASTER_PKI, to, ext), link)
    accepted = set(os.listdir(os.path.join(src, MASTER_PKI, "minions")))
    for name in accepted:
        shutil.copyfile(os.path.join(src, MASTER_PKI, "minions", name), os.path.join(dst, MASTER_PKI, "minions", name))
        pending = os.path.join(dst, MASTER_PKI, "minions_pre", name)
        if os.path.exists(pending):
            os.unlink(pending)
    for name in set(os.listdir(os.path.join(dst, MASTER_PKI, "minions"))) - accepted:
        os.unlink(os.path.join(dst, MASTER_PKI, "minions", name))
    ring = os.path.join(src, "etc/salt/gpgkeys")
    if os.path.isdir(ring):
        shutil.rmtree(os.path.join(dst, "etc/salt/gpgkeys"), ignore_errors=True)
        shutil.copytree(ring, os.path.join(dst, "etc/salt/gpgkeys"), symlinks=True)
        os.chmod(os.path.join(dst, "etc/salt/gpgkeys"), 0o700)
    return sorted(accepted)


def running_machines():
    return [(n, ip) for n, ip in all_machines() if machine_init_pid(n)]


def connect_minions(masters, skip=()):
    """Point every running machine's minion at ``masters`` (a restart where that changed)."""
    for name, ip in running_machines():
        if name not in skip:
            bootstrap_salt(name, ip, masters=masters)


def make_second_master():
    """meta-2 becomes a second salt-master: meta's keys (share_master_keys), the repository's
    master.d config, then every minion connects to both masters and answers each."""
    both = [MACHINES[0][1], dict(EXTRA_MACHINES)[SECOND_MASTER]]
    keys = share_master_keys(SECOND_MASTER)
    log("%s: meta's master key pair, %d accepted minion keys and the gpg key ring copied"
        % (SECOND_MASTER, len(keys)))
    bootstrap_salt(SECOND_MASTER, dict(EXTRA_MACHINES)[SECOND_MASTER], masters=both, master=True)
    connect_minions(both)
    names = [n for n, _ in running_machines()]
    for on in (META, SECOND_MASTER):
        wait_minions(names, on=on)
    log("salt: masters on %s and %s, %d minions answer both" % (META, SECOND_MASTER, len(names)))


def main_job():
    """Sync the project's extension modules, then orchestrate the whole site (orch.site:
    validate, node role everywhere, DCS, every cluster in order), printing each step as it
    finishes (salt-run pigsty_orch.run: Salt's state.orchestrate plus its step events)."""
    log("main job: saltutil.sync_all, then state.orchestrate orch.site (each step as it ends)")
    salt(["*", "saltutil.sync_all", "--out=json"], timeout=300)
    rc, result = nsenter_stream(META, ["salt-run", "--out=json", "--out-indent=-1", "pigsty_orch.run", "orch.site"],
                                progress_line, timeout=3000)
    failures = print_orchestration(result)
    if rc != 0 or failures:
        raise SandboxError("orch.site failed (rc %d): %s" % (rc, "; ".join(failures) or result[-2000:]))


def progress_line(line):
    """Print a progress event of salt-run's JSON output as it comes; False for other lines."""
    try:
        doc = json.loads(line)
    except ValueError:
        return False
    if isinstance(doc, dict) and doc.get("suffix") == "progress" and isinstance(doc.get("event"), dict) \
            and "message" in doc["event"]:
        log("  " + str(doc["event"]["message"]))
        return True
    return False


def nsenter_stream(name, cmd, on_line, timeout=300):
    """Run ``cmd`` in machine ``name``, handing each stdout line to ``on_line`` as it comes
    (True: consumed); returns (exit code, the other lines). stderr is printed when it fails."""
    pid = machine_init_pid(name)
    if pid is None:
        raise not_running(name)
    full = ["nsenter", "-t", str(pid), "-a", "--", "/usr/bin/env", "-i",
            "PATH=" + ENV_PATH, "HOME=/root", "LANG=C.UTF-8",
            "PYTHONUNBUFFERED=1"] + list(cmd)          # each line as it is printed, not at exit
    rest = []
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=err, universal_newlines=True)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            for line in proc.stdout:
                if not on_line(line.rstrip("\n")):
                    rest.append(line)
            rc = proc.wait()
        finally:
            timer.cancel()
        if rc != 0:
            err.seek(0)
            print(err.read()[-4000:], file=sys.stderr)
    return rc, "".join(rest)


def print_orchestration(text):
    """Print one line per orchestration step (nested ones included); return the failures."""
    try:
        doc = json.loads(text)
    except ValueError:
        return ["no JSON from the orchestration"]
    failures = []

    def walk(data, depth):
        for steps in (data or {}).values():
            if not isinstance(steps, dict):
                failures.append(str(steps)[:500])
                continue
            for sid, step in sorted(steps.items(), key=lambda kv: kv[1].get("__run_num__", 0)):
                name = sid.split("_|-")[1] if "_|-" in sid else sid
                ok = step.get("result")
                print("  %s %-28s %6.1fs  %s" % ("ok  " if ok else "FAIL", name,
                                                 (step.get("duration") or 0) / 1000.0,
                                                 "" if ok else step.get("comment", "")[:300]))
                if not ok:
                    failures.append("%s: %s" % (name, step.get("comment", "")[:300]))
                inner = (step.get("changes") or {}).get("return")
                if isinstance(inner, dict) and "data" in inner:
                    walk(inner["data"], depth + 1)

    walk(doc.get("data", doc), 0)
    return failures


# ---------------------------------------------------------------- commands
def cmd_prepare(_args):
    """Host prerequisites only: Debian packages and the Salt venv (what the tests need)."""
    if os.geteuid() != 0:
        raise SandboxError("the sandbox needs root")
    ensure_host_packages()
    ensure_venv()


def cmd_up(args):
    t0 = time.time()
    cmd_prepare(args)
    ensure_image()
    ensure_bridge()
    ensure_apt_cache()
    started = [name for name, ip in MACHINES if start_machine(name, ip)]
    for name, _ip in MACHINES:
        wait_running(name)
    log("machines running (%s started now)" % (", ".join(started) or "none"))
    for name, ip in MACHINES:
        bootstrap_salt(name, ip)      # idempotent: restarts a daemon only if its config changed
    names = [n for n, _ in MACHINES]
    accept_keys(names)
    wait_minions(names)
    log("salt: master on %s, %d minions answer (%.1fs since start)" % (META, len(names), time.time() - t0))
    if not args.no_apply:
        main_job()
    log("sandbox up in %.1fs" % (time.time() - t0))
    print_where()


def print_where():
    print("\nSandbox (state under %s):" % HOME)
    for name, ip in MACHINES:
        print("  %-7s %s%s" % (name, ip, "  salt-master, repo at /srv/pigsty" if name == META else ""))
    me = os.path.relpath(os.path.abspath(__file__))
    print("Shell on a node:   %s shell node-1" % me)
    print("Salt command:      %s exec meta salt '*' test.ping" % me)
    print("Tear down:         %s down" % me)


def cmd_down(_args):
    t0 = time.time()
    machines = MACHINES + extra_present()
    for name, _ip in machines:          # all machines shut down at once
        request_poweroff(name)
    for name, _ip in reversed(machines):
        stop_machine(name)
    # machines from an older, larger sandbox
    mroot = os.path.join(HOME, "machines")
    if os.path.isdir(mroot):
        for name in os.listdir(mroot):
            stop_machine(name)
    pid = acng_pid()
    if pid:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not acng_pid():
                break
            time.sleep(0.1)
    remove_stray_veths()
    if bridge_exists():
        run(["ip", "link", "del", BRIDGE], quiet=True)
    left = leftovers()
    if left:
        raise SandboxError("down left things behind:\n  " + "\n  ".join(left))
    log("sandbox down in %.1fs; nothing left behind" % (time.time() - t0))


def leftovers():
    """Everything a running sandbox creates on the host, that down must remove."""
    left = []
    names = {n for n, _ in all_machines()}
    mroot = os.path.join(HOME, "machines")
    if os.path.isdir(mroot):
        names |= set(os.listdir(mroot))
        left += ["machine dir %s" % os.path.join(mroot, n) for n in os.listdir(mroot)]
    with open("/proc/self/mounts") as fh:
        left += ["mount %s" % line.split()[1] for line in fh if HOME in line.split()[1]]
    for name in sorted(names):
        left += ["cgroup %s" % c for c in cgroup_paths(name) if os.path.isdir(c)]
    for ifname in os.listdir("/sys/class/net"):
        if ifname == BRIDGE or ifname.startswith("vb-"):
            left.append("interface %s" % ifname)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = open("/proc/%s/cmdline" % entry, "rb").read()
            except OSError:
                continue
            if cmdline.startswith(b"systemd-nspawn") and HOME.encode() in cmdline:
                left.append("process %s systemd-nspawn" % entry)
    if acng_pid():
        left.append("process apt-cacher-ng %d" % acng_pid())
    return left


def cmd_status(_args):
    print("%-8s %-13s %-8s %-8s %s" % ("machine", "address", "pid1", "state", "salt-minion"))
    for name, ip in MACHINES + extra_present():
        pid = machine_init_pid(name)
        state = minion = "-"
        if pid:
            state = nsenter(name, ["systemctl", "is-system-running"], check=False).stdout.strip()
            minion = nsenter(name, ["systemctl", "is-active", "salt-minion"], check=False).stdout.strip()
        print("%-8s %-13s %-8s %-8s %s" % (name, ip, pid or "-", state if pid else "stopped", minion))
    print("bridge %s: %s; apt cache: %s" % (BRIDGE, "up" if bridge_exists() else "absent",
                                            "running" if acng_pid() else "stopped"))


def cmd_kill(args):
    """Hard-kill a machine (like pulling its power): every process dies at once, its veth
    goes away; its disk (overlay upper dir) stays for `start`."""
    parent = nspawn_pid(args.node)
    if not parent:
        raise SandboxError("machine %s is not running" % args.node)
    kill_cgroup(args.node)
    try:
        os.kill(parent, signal.SIGKILL)
    except OSError:
        pass
    for _ in range(50):
        if not nspawn_pid(args.node):
            break
        time.sleep(0.1)
    log("%s killed" % args.node)


def cmd_start(args):
    """Start a machine again (after kill) on its existing disk, and wait for it to boot."""
    ip = dict(all_machines())[args.node]
    if is_extra(args.node) and not os.path.isdir(machine_dir(args.node)):
        raise SandboxError("extra machine %s does not exist: create it with `sandbox add %s`"
                           % (args.node, args.node))
    start_machine(args.node, ip)
    wait_running(args.node)
    log("%s started" % args.node)


def delete_key(name):
    """Delete a minion's key on the master (and with it the master's cache of that minion)."""
    res = nsenter(META, ["salt-key", "--out=json", "-L"], check=False)
    try:
        keys = json.loads(res.stdout)
    except ValueError:
        raise SandboxError("salt-key -L on %s printed no JSON: %s%s" % (META, res.stdout, res.stderr))
    if any(name in (ids or []) for ids in keys.values()):
        nsenter(META, ["salt-key", "-y", "-d", name])
        return True
    return False


def cmd_add(args):
    """Start an extra machine on the running sandbox: same base image, bridge and apt cache,
    a salt-minion of meta's master (bootstrap-salt.sh, as for node-1..3), its key accepted,
    answering test.ping. No state is applied: the caller decides what the node becomes."""
    t0 = time.time()
    name = args.node
    ip = dict(EXTRA_MACHINES)[name]
    down = [n for n, _ in MACHINES if not machine_init_pid(n)]
    if down or not bridge_exists():
        raise SandboxError("the default sandbox is not up (%s): run `sandbox up` first, then "
                           "`sandbox add %s`" % ("not running: " + ", ".join(down) if down
                                                 else "no bridge " + BRIDGE, name))
    master = nsenter(META, ["systemctl", "is-active", "salt-master"], check=False).stdout.strip()
    if master != "active":
        raise SandboxError("salt-master on %s is %s: run `sandbox up` first" % (META, master or "?"))
    if not os.path.isdir(image_dir()):
        raise SandboxError("no base image at %s: run `sandbox up` first" % image_dir())
    ensure_apt_cache()
    fresh = not os.path.isdir(machine_dir(name))
    if fresh and delete_key(name):
        # a key left by an earlier machine of that name would refuse the new one's
        log("deleted a stale key of %s on the master" % name)
    started = start_machine(name, ip)
    wait_running(name)
    log("%s %s" % (name, "started" if started else "already running"))
    log("salt-minion on %s (master %s), key, test.ping" % (name, MACHINES[0][1]))
    bootstrap_salt(name, ip, masters=master_ips() if name != SECOND_MASTER else [MACHINES[0][1]],
                   master=False)      # idempotent: restarts the minion only if its config changed
    accept_keys([name])
    wait_minions([name])
    if name == SECOND_MASTER:
        make_second_master()
    elif second_master_up():
        share_master_keys(SECOND_MASTER)  # its key too: the second master accepts it as well
        wait_minions([name], on=SECOND_MASTER)
    log("%s (%s) added: minion of %s answers (%.1fs); no state applied"
        % (name, ip, " and ".join(n for n in (META, SECOND_MASTER) if n == META or second_master_up()),
           time.time() - t0))


def cmd_remove(args):
    """Remove an extra machine: its key on the master, the machine, its disk, veth, cgroups."""
    t0 = time.time()
    name = args.node
    existed = os.path.isdir(machine_dir(name))
    if name == SECOND_MASTER and second_master_up():
        # the minions first go back to meta's master alone (restarted without meta-2)
        connect_minions([MACHINES[0][1]], skip=(SECOND_MASTER,))
        log("minions connect to %s's master alone again" % META)
    stop_machine(name)        # first: a running minion would send its key again at once
    if machine_init_pid(META):
        if delete_key(name):
            log("key of %s deleted on the master" % name)
            existed = True
        if name != SECOND_MASTER and second_master_up():
            share_master_keys(SECOND_MASTER)      # the second master forgets it too
    elif os.path.isdir(machine_dir(META)):
        log("%s is not running: the key of %s stays on its disk (start %s and remove again, "
            "or `sandbox down`)" % (META, name, META))
    veth = veth_name(name)
    deadline = time.time() + 5
    while os.path.exists("/sys/class/net/" + veth) and time.time() < deadline:
        time.sleep(0.2)       # the kernel removes it with the machine's network namespace
    if os.path.exists("/sys/class/net/" + veth):
        run(["ip", "link", "del", veth], check=False, quiet=True)
    left = [item for item in leftovers() if item.endswith((machine_dir(name), "nspawn-" + name, " " + veth))
            or item.startswith("mount " + machine_dir(name))]
    if left:
        raise SandboxError("remove %s left things behind:\n  %s" % (name, "\n  ".join(left)))
    if existed:
        log("%s removed in %.1fs; nothing of it left behind" % (name, time.time() - t0))
    else:
        log("%s was not there: nothing to remove" % name)


def cmd_exec(args):
    res = nsenter(args.node, args.cmd, check=False, capture=False, timeout=None)
    return res.returncode


def cmd_shell(args):
    return nsenter(args.node, ["/bin/bash", "-l"], interactive=True)


def cmd_leftovers(_args):
    left = leftovers()
    print("\n".join(left) if left else "nothing")
    return 1 if left else 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="sandbox", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="create/start the sandbox and run the main job")
    up.add_argument("--no-apply", action="store_true", help="start Salt but skip the main job")
    sub.add_parser("prepare", help="install host packages and the Salt venv only")
    sub.add_parser("down", help="remove every machine, mount, cgroup, veth and the bridge")
    sub.add_parser("status", help="show machines and Salt")
    sub.add_parser("leftovers", help="list host objects a sandbox left behind (exit 1 if any)")
    every = [n for n, _ in all_machines()]
    extras = [n for n, _ in EXTRA_MACHINES]
    ex = sub.add_parser("exec", help="run a command inside a node")
    ex.add_argument("node", choices=every)
    ex.add_argument("cmd", nargs=argparse.REMAINDER)
    for name, helptext in (("kill", "hard-kill a machine (its disk stays)"),
                           ("start", "start a killed machine again on its disk")):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("node", choices=every)
    sh = sub.add_parser("shell", help="interactive shell inside a node")
    sh.add_argument("node", choices=every)
    ad = sub.add_parser("add", help="start an extra machine with a Salt minion (no state applied)")
    ad.add_argument("node", choices=extras)
    rm = sub.add_parser("remove", help="remove an extra machine, its key, disk, veth and cgroups")
    rm.add_argument("node", choices=extras)
    args = p.parse_args(argv)
    handler = {"prepare": cmd_prepare, "up": cmd_up, "down": cmd_down, "status": cmd_status, "exec": cmd_exec,
               "shell": cmd_shell, "leftovers": cmd_leftovers,
               "kill": cmd_kill, "start": cmd_start,
               "add": cmd_add, "remove": cmd_remove}[args.command]
    try:
        return handler(args) or 0
    except SandboxError as exc:
        log("ERROR: %s" % exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
