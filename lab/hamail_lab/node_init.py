# SPDX-License-Identifier: GPL-2.0-or-later
"""PID-1 of one lab node: private mounts, hostname, corosync + pacemakerd, zombie reaping.

Run by the host as
``ip netns exec NS unshare -m -u -i -p -f --mount-proc /usr/bin/python3 node_init.py NODE_DIR/init.json``.
Standard library only; it must not import anything from the hamail_lab package
(it runs as a plain script).  Being PID 1 of the node's PID namespace it reaps
every orphan (daemonised mariadbd, agent helpers), so ``kill -0`` checks by agents
never see zombies.  SIGKILL of this process from the host is a power cut of the
node; SIGTERM is a clean shutdown (pacemakerd first, then corosync).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

# Pacemaker's panic path writes 'b' to /proc/sysrq-trigger: that would reboot the
# HOST.  These files are covered with /dev/null inside every node.
PROC_MASKS = ("/proc/sysrq-trigger", "/proc/sys/kernel/sysrq")


def log(message):
    """Write one timestamped line to the node's console log."""
    stamp = time.strftime("%H:%M:%S")
    sys.stderr.write(f"{stamp} node-init[{os.getpid()}]: {message}\n")
    sys.stderr.flush()


def run(argv):
    """Run a setup command; raise with its output on failure."""
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv!r} failed ({proc.returncode}): {proc.stderr.strip()}")


def setup_mounts(cfg):
    """Make mounts private, mount fresh tmpfs and bind the per-node directories."""
    run(["mount", "--make-rprivate", "/"])
    for path in PROC_MASKS:
        if os.path.exists(path):
            run(["mount", "--bind", "/dev/null", path])
    run(["mount", "-t", "tmpfs", "-o", "mode=0755,nosuid,nodev,size=256m", "tmpfs", "/run"])
    run(["mount", "-t", "tmpfs", "-o", "mode=1777,nosuid,nodev,size=512m", "tmpfs", "/dev/shm"])
    for sub, mode in (("lock", 0o1777), ("user", 0o755)):
        os.makedirs(f"/run/{sub}", exist_ok=True)
        os.chmod(f"/run/{sub}", mode)
    # Fresh tmpfs over host directories (e.g. /srv) so mount points made below them stay in this node.
    for path in cfg.get("tmpfs", ()):
        run(["mount", "-t", "tmpfs", "-o", "mode=0755,nosuid,nodev,size=1m", "tmpfs", path])
    for src, dst in cfg["binds"]:
        if not os.path.exists(dst):
            os.makedirs(dst, exist_ok=True)
        run(["mount", "--bind", src, dst])
    # The checkout's agents on top of the host's directories, in this namespace only (read-only overlay).
    for layer, dst in cfg.get("overlays", ()):
        run(["mount", "-t", "overlay", "hamail-agents", "-o", f"lowerdir={layer}:{dst}", dst])


def prepare_pacemaker_dirs(cfg):
    """Recreate /var/lib/pacemaker/{cib,pengine,blackbox,cores} owned by hacluster:haclient."""
    uid, gid = cfg["hacluster_uid"], cfg["haclient_gid"]
    for sub in ("cib", "pengine", "blackbox", "cores"):
        path = os.path.join("/var/lib/pacemaker", sub)
        os.makedirs(path, exist_ok=True)
        os.chown(path, uid, gid)
        os.chmod(path, 0o750)
    os.chown("/var/lib/pacemaker", uid, gid)
    os.chown("/var/log/pacemaker", uid, gid)
    os.chmod("/var/log/pacemaker", 0o770)
    for entry in os.listdir("/var/lib/pacemaker/cib"):
        os.chown(os.path.join("/var/lib/pacemaker/cib", entry), uid, gid)


def wait_corosync(proc, deadline):
    """Wait (bounded, short backoff) until corosync answers on its IPC."""
    delay = 0.05
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"corosync exited early with {proc.returncode}")
        probe = subprocess.run(["corosync-cmapctl", "-g", "totem.cluster_name"],
                               stdin=subprocess.DEVNULL, capture_output=True, check=False)
        if probe.returncode == 0:
            return
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    raise RuntimeError("corosync did not answer within the deadline")


class Init:
    """The reaping init loop with a clean-shutdown path."""

    def __init__(self, cfg):
        """Remember the configuration; nothing is started yet."""
        self.cfg = cfg
        self.corosync = None
        self.pacemakerd = None
        self.stopping = False

    def on_term(self, signum, _frame):
        """Begin a clean shutdown: pacemakerd first, corosync when it has gone."""
        log(f"signal {signum}: shutting down")
        self.stopping = True
        target = self.pacemakerd or self.corosync
        if target is not None and target.returncode is None:
            try:
                os.kill(target.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def start(self):
        """Start corosync, wait for it, then start pacemakerd."""
        env = dict(self.cfg["env"])
        self.corosync = subprocess.Popen(["corosync", "-f"], stdin=subprocess.DEVNULL, env=env)
        log(f"corosync pid {self.corosync.pid}")
        wait_corosync(self.corosync, time.monotonic() + 60)
        if self.stopping:
            os.kill(self.corosync.pid, signal.SIGTERM)
            return
        self.pacemakerd = subprocess.Popen(["pacemakerd", "-f"], stdin=subprocess.DEVNULL, env=env)
        log(f"pacemakerd pid {self.pacemakerd.pid}")

    def loop(self):
        """Reap every child; leave when the cluster stack has gone."""
        while True:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                return 0
            except InterruptedError:
                continue
            code = os.waitstatus_to_exitcode(status)
            for proc, name in ((self.pacemakerd, "pacemakerd"), (self.corosync, "corosync")):
                if proc is not None and proc.pid == pid:
                    proc.returncode = code
                    log(f"{name} exited with {code}")
            if self.pacemakerd is not None and self.pacemakerd.returncode is not None:
                if self.corosync.returncode is None:
                    os.kill(self.corosync.pid, signal.SIGTERM)
                else:
                    return 0
            elif self.corosync is not None and self.corosync.returncode is not None:
                if self.pacemakerd is None:
                    return 0
                # corosync died under pacemaker: the node's stack is gone.
                os.kill(self.pacemakerd.pid, signal.SIGTERM)


def main():
    """Boot the node described by the JSON file named on the command line."""
    with open(sys.argv[1], encoding="utf-8") as handle:
        cfg = json.load(handle)
    init = Init(cfg)
    signal.signal(signal.SIGTERM, init.on_term)
    signal.signal(signal.SIGINT, init.on_term)
    setup_mounts(cfg)
    socket.sethostname(cfg["hostname"])
    prepare_pacemaker_dirs(cfg)
    os.chdir("/")
    log(f"booting {cfg['hostname']}")
    init.start()
    return init.loop()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # noqa: BLE001 - a node that cannot boot must say why
        log(f"boot failed: {exc}")
        sys.exit(1)
