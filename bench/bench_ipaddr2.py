# SPDX-License-Identifier: GPL-2.0-or-later
"""Bench rows of IPaddr2: monitor and start+stop, hamail vs heartbeat, inside a throw-away network namespace."""

import os
import pathlib
import shutil
import subprocess
import tempfile

from harness import Case, agent_argv, run_step

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEARTBEAT = "/usr/lib/ocf/resource.d/heartbeat/IPaddr2"
NS, PEER, NIC = "hmipbencha", "hmipbenchb", "hmipbench0"


def _sh(*argv):
    subprocess.run(list(argv), check=True, capture_output=True)


def _setns(path):
    """Move the bench process into a network namespace, so both agents run without an `ip netns exec` wrapper."""
    import ctypes
    fd = os.open(path, os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:
            raise OSError(ctypes.get_errno(), "setns")
    finally:
        os.close(fd)


class Lab:
    """Two namespaces and a veth pair (192.0.2.0/24 only inside them); the bench process joins the first."""

    def __init__(self):
        self.home = None
        self.rsc = tempfile.mkdtemp(prefix="hamail-bench-ip-")

    def up(self):
        if self.home is not None:
            return
        for name in (NS, PEER):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            _sh("ip", "netns", "add", name)
        _sh("ip", "link", "add", NIC, "netns", NS, "type", "veth", "peer", "name", NIC + "p", "netns", PEER)
        for name, nic, last in ((NS, NIC, 1), (PEER, NIC + "p", 9)):
            _sh("ip", "-n", name, "link", "set", "lo", "up")
            _sh("ip", "-n", name, "link", "set", nic, "up")
            _sh("ip", "-n", name, "addr", "add", f"192.0.2.{last}/24", "dev", nic)
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        _setns(f"/run/netns/{NS}")

    def down(self):
        if self.home is None:
            return
        os.setns(self.home, 0) if hasattr(os, "setns") else _setns(f"/proc/self/fd/{self.home}")
        os.close(self.home)
        self.home = None
        for name in (NS, PEER):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        shutil.rmtree(self.rsc, ignore_errors=True)

    def env(self, ip, instance):
        """The OCF environment of one instance (a recurring monitor, 20 s timeout)."""
        return {"OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": instance, "OCF_RESKEY_ip": ip,
                "HA_RSCTMP": self.rsc, "OCF_RESKEY_CRM_meta_interval": "10000",
                "OCF_RESKEY_CRM_meta_timeout": "20000"}


def cases() -> list:
    """IPaddr2 monitor (address up) and start+stop, ours against heartbeat's, in one namespace setup."""
    lab = Lab()
    ours, theirs = agent_argv(ROOT / "agents" / "IPaddr2"), agent_argv(HEARTBEAT)
    env_ours, env_theirs = lab.env("192.0.2.100", "bench-ours"), lab.env("192.0.2.101", "bench-theirs")
    ss_ours, ss_theirs = lab.env("192.0.2.110", "bench-ss-ours"), lab.env("192.0.2.111", "bench-ss-theirs")

    def run(argv, action, env):
        run_step(argv + [action], env, what=f"IPaddr2 {action}")

    def setup_monitor():
        lab.up()
        run(ours, "start", env_ours)
        run(theirs, "start", env_theirs)

    def teardown_monitor():
        run(ours, "stop", env_ours)
        run(theirs, "stop", env_theirs)

    def start_stop(argv, env):
        return lambda: (run(argv, "start", env), run(argv, "stop", env))

    return [
        Case("IPaddr2", "monitor (running)", ours + ["monitor"], theirs + ["monitor"], env_ours=env_ours,
             env_upstream=env_theirs, setup=setup_monitor, teardown=teardown_monitor, repeat=30, target=0.7),
        Case("IPaddr2", "start+stop (IPv4, nic auto-detected)", start_stop(ours, ss_ours),
             start_stop(theirs, ss_theirs), setup=lab.up, teardown=lab.down, repeat=20, target=0.7),
    ]
