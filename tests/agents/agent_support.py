# SPDX-License-Identifier: GPL-2.0-or-later
"""Fixtures for agents on real components: network namespaces with veth pairs, loop devices with filesystems.

Everything created here carries the prefix `hmip` (namespaces, interfaces) or lives under pytest's
tmp_path (images, mount points) and is removed at teardown, also when a test fails. Only the
documentation prefixes 192.0.2.0/24 and 2001:db8::/32 are used, and only inside our namespaces.
"""

import itertools
import os
import pathlib
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
AGENTS = ROOT / "agents"
NODE_PYTHON = "/usr/bin/python3"
_COUNTER = itertools.count()


def sh(*argv, check=True, ns=None, timeout=60):
    """Run a command (argv list) on the host or inside namespace ns; CompletedProcess with text output."""
    full = (["ip", "netns", "exec", ns] if ns else []) + [str(a) for a in argv]
    return subprocess.run(full, check=check, capture_output=True, text=True, timeout=timeout)


def ocf_env(name, params=None, meta=None, env=None, rsctmp=None):
    """The environment pacemaker-execd gives an agent (as tests/conftest.py's run_agent)."""
    environ = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf",
               "OCF_RESOURCE_INSTANCE": f"test-{name}", "OCF_RESOURCE_TYPE": name,
               "OCF_RESOURCE_PROVIDER": "hamail", "OCF_RA_VERSION_MAJOR": "1", "OCF_RA_VERSION_MINOR": "1"}
    if rsctmp:
        environ["HA_RSCTMP"] = str(rsctmp)
    for key, value in (params or {}).items():
        environ[f"OCF_RESKEY_{key}"] = str(value)
    for key, value in (meta or {}).items():
        environ[f"OCF_RESKEY_CRM_meta_{key}"] = str(value)
    environ.update(env or {})
    return environ


def run_agent_in(ns, name, action, params=None, meta=None, env=None, rsctmp=None, timeout=60):
    """Run agents/<name> <action> inside network namespace ns (None: on the host)."""
    argv = (["ip", "netns", "exec", ns] if ns else []) + [NODE_PYTHON, str(AGENTS / name), action]
    return subprocess.run(argv, env=ocf_env(name, params, meta, env, rsctmp), capture_output=True, text=True,
                          timeout=timeout)


def assert_clean(result):
    """No Python traceback leaked to the agent's output."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr


def mounted(point) -> bool:
    """Whether something is mounted exactly at point (this process's mount table)."""
    return any(line.split()[4] == str(point) for line in open("/proc/self/mountinfo"))


def exit_reason(result):
    """The ocf-exit-reason line of a run, '' if none."""
    for line in result.stderr.splitlines():
        if line.startswith("ocf-exit-reason:"):
            return line[len("ocf-exit-reason:"):]
    return ""


class NetPair:
    """Two namespaces joined by a veth pair: `ns` runs the agent, `peer` observes the wire."""

    def __init__(self, tag):
        self.ns, self.peer = f"hmip{tag}a", f"hmip{tag}b"
        self.nic, self.peer_nic = f"hmip{tag}a0", f"hmip{tag}b0"
        self.created = []

    def setup(self):
        for name in (self.ns, self.peer):
            sh("ip", "netns", "add", name)
            self.created.append(name)
        sh("ip", "link", "add", self.nic, "netns", self.ns, "type", "veth", "peer", "name", self.peer_nic,
           "netns", self.peer)
        for name, nic, last in ((self.ns, self.nic, 1), (self.peer, self.peer_nic, 9)):
            sh("ip", "-n", name, "link", "set", "lo", "up")
            sh("ip", "-n", name, "link", "set", nic, "up")
            sh("ip", "-n", name, "addr", "add", f"192.0.2.{last}/24", "dev", nic)
            sh("ip", "-n", name, "addr", "add", f"2001:db8::{last}/64", "dev", nic, "nodad")
        return self

    def teardown(self):
        for name in self.created:
            sh("ip", "netns", "del", name, check=False)

    def addrs(self, ns=None, dev=None):
        """The `ip -o addr` lines of a namespace (default: the agent's), optionally of one device."""
        argv = ["ip", "-n", ns or self.ns, "-o", "addr", "show"] + (["dev", dev] if dev else [])
        return sh(*argv).stdout

    def mac(self, ns=None, dev=None):
        """The MAC address of an interface."""
        out = sh("ip", "-n", ns or self.ns, "-o", "link", "show", dev or self.nic).stdout
        return out.split("link/ether ", 1)[1].split()[0]

    def neigh(self, address):
        """The peer's neighbour entry line for address ('' when absent)."""
        return sh("ip", "-n", self.peer, "neigh", "show", address, "dev", self.peer_nic).stdout.strip()


@pytest.fixture
def netpair():
    """A fresh pair of namespaces with 192.0.2.1/24 + 2001:db8::1/64 (agent side) and .9 / ::9 (peer)."""
    pair = NetPair(f"{os.getpid() % 1000:03d}{next(_COUNTER) % 100:02d}")  # names fit IFNAMSIZ with a label
    try:
        yield pair.setup()
    finally:
        pair.teardown()


@pytest.fixture
def ip2(netpair, tmp_path):
    """Run IPaddr2 in the agent namespace with a per-test HA_RSCTMP: ip2(action, **params)."""
    def run(action, meta=None, env=None, ns=None, **params):
        return run_agent_in(netpair.ns if ns is None else ns or None, "IPaddr2", action, params, meta, env,
                            tmp_path / "rsc")
    return run


def wait_for(probe, timeout=5.0, step=0.05):
    """Poll probe until it returns something true; that value, or the last falsy one at the timeout."""
    end = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > end:
            return value
        time.sleep(step)


class LoopLab:
    """Loop devices with fresh filesystems under a tmp directory, and processes started to hold them."""

    def __init__(self, base):
        self.base = pathlib.Path(base)
        self.loops, self.procs = [], []

    def device(self, fstype="ext4", label=None, size_mb=300):
        """A new loop device carrying a new filesystem of that type; its /dev path."""
        image = self.base / f"disk{len(self.loops)}.img"
        with open(image, "wb") as handle:
            handle.truncate(size_mb * 1024 * 1024)
        loop = sh("losetup", "-f", "--show", image).stdout.strip()
        self.loops.append(loop)
        mkfs = {"ext4": ["mkfs.ext4", "-q", "-F"], "xfs": ["mkfs.xfs", "-q", "-f"]}[fstype]
        sh(*mkfs, *(["-L", label] if label else []), loop)
        return loop

    def dir(self, name):
        """A directory under the lab's base."""
        path = self.base / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def hold(self, code, *args):
        """Start a Python process running code (which prints 'ready' once it holds something); its Popen."""
        proc = subprocess.Popen([NODE_PYTHON, "-c", code, *map(str, args)], stdout=subprocess.PIPE, text=True,
                                start_new_session=True)
        self.procs.append(proc)
        assert proc.stdout.readline().strip() == "ready"
        return proc

    def mounts_below(self):
        """Mount points under the lab's base (from /proc/self/mountinfo), deepest first."""
        base = str(self.base)
        points = [line.split()[4] for line in open("/proc/self/mountinfo") if line.split()[4].startswith(base)]
        return sorted(points, key=lambda p: -p.count("/"))

    def teardown(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for point in self.mounts_below():
            sh("umount", "-l", point, check=False)
        for loop in self.loops:
            # A loop device can be briefly busy right after its last unmount: retry until it detaches.
            assert wait_for(lambda: sh("losetup", "-d", loop, check=False).returncode == 0, timeout=10), \
                f"{loop} is still attached: {sh('losetup', loop, check=False).stdout}"


@pytest.fixture
def looplab(tmp_path):
    """Loop devices, mount points and holder processes that are all gone after the test."""
    lab = LoopLab(tmp_path)
    try:
        yield lab
    finally:
        lab.teardown()


@pytest.fixture
def fs(tmp_path):
    """Run Filesystem on the host with a per-test HA_RSCTMP: fs(action, meta=..., env=..., **params)."""
    def run(action, meta=None, env=None, **params):
        return run_agent_in(None, "Filesystem", action, params, meta, env, tmp_path / "rsc")
    return run
