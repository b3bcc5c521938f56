# SPDX-License-Identifier: GPL-2.0-or-later
"""A management network of virtual BMCs for a lab cluster: one hamail-vbmc per node, whose power
commands kill and boot that node, so Pacemaker can fence lab nodes with fence_ipmi for real."""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
from pathlib import Path

from hamail_lab import hostsys
from hamail_lab.cluster import Cluster

__all__ = ["BmcNetwork"]

CHECKOUT = Path(__file__).resolve().parents[2]
PYTHON = "/usr/bin/python3"
BMC_HOST = 250  # the management namespace's address: <subnet>.250
FIRST_PORT = 6231
# Seconds between a BMC's power on and the node's boot, like a real machine's POST: a node that rejoined before
# the cluster recorded its fencing would be told it was fenced and stop for good (5 s was once too short on a
# loaded machine: the DC recorded a fencing 8 s after the BMC powered the node on).
POST = "8"


class BmcNetwork:
    """Virtual BMCs for every node of a cluster, in a namespace '<prefix>-bmc' on the cluster's bridge."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.netns = f"{cluster.prefix}-bmc"
        self.veth = f"{cluster.prefix}-vb"
        self.address = f"{cluster.subnet}.{BMC_HOST}"
        self.dir = cluster.workdir / "bmc"
        self.password_file = self.dir / "password"

    def port(self, node: str) -> int:
        """The UDP port of a node's BMC."""
        return FIRST_PORT + self.cluster.nodes.index(node)

    def password_script(self) -> str:
        """A password_script value for fence_ipmi that prints the BMC password (the CIB never holds it)."""
        return f"cat {self.password_file}"

    def _lab(self, *args: str) -> str:
        return shlex.join([PYTHON, str(CHECKOUT / "lab" / "hamail_lab"), "--workdir", str(self.cluster.workdir),
                           *args])

    def start(self) -> None:
        """Create the management namespace and start one daemonised hamail-vbmc per node."""
        self.stop()
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(12) + "\n")
        hostsys.netns_add(self.netns)
        hostsys.sh(["ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.netns])
        hostsys.sh(["ip", "link", "set", self.veth, "master", self.cluster.bridge, "up"])
        hostsys.sh(["ip", "-n", self.netns, "addr", "add", f"{self.address}/24", "dev", "eth0"])
        hostsys.sh(["ip", "-n", self.netns, "link", "set", "eth0", "up"])
        hostsys.sh(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        for node in self.cluster.nodes:
            self.start_bmc(node)

    def start_bmc(self, node: str) -> None:
        """Start (again) the daemonised hamail-vbmc of one node in the management namespace."""
        argv = ["ip", "netns", "exec", self.netns, PYTHON, str(CHECKOUT / "lab" / "hamail-vbmc"),
                "--address", self.address, "--port", str(self.port(node)),
                "--password-file", str(self.password_file),
                "--off-command", self._lab("kill", node),
                "--on-command", self._lab("boot", "--no-wait", "--post", POST, node),
                "--reset-command", self._lab("cycle", "--no-wait", "--post", POST, node),
                "--cycle-command", self._lab("cycle", "--no-wait", "--post", POST, node),
                "--status-command", self._lab("alive", node),
                "--command-timeout", "60",
                "--pid-file", str(self.dir / f"{node}.pid"), "--log-file", str(self.dir / f"{node}.log")]
        subprocess.run(argv, check=True, timeout=30, stdin=subprocess.DEVNULL)

    def stop_bmc(self, node: str) -> None:
        """Stop one node's BMC: it answers nothing until start_bmc (a machine whose BMC lost power too)."""
        subprocess.run([PYTHON, str(CHECKOUT / "lab" / "hamail-vbmc"), "--stop", "--pid-file",
                        str(self.dir / f"{node}.pid")], check=False, timeout=30, stdin=subprocess.DEVNULL,
                       capture_output=True)

    def crm_config(self) -> str:
        """crmsh lines for one fence_ipmi device per node, each kept off the node it fences."""
        lines = []
        for node in self.cluster.nodes:
            lines.append(
                f"primitive fence-{node} stonith:fence_ipmi params ip={self.address} ipport={self.port(node)} "
                f"username=admin password_script=\"{self.password_script()}\" lanplus=1 pcmk_host_list={node} "
                f"op monitor interval=60s timeout=20s")
            lines.append(f"location fence-{node}-not-on-{node} fence-{node} -inf: {node}")
        return "\n".join(lines) + "\n"

    def stop(self) -> None:
        """Stop the BMC daemons and remove the management namespace (idempotent)."""
        for pid_file in self.dir.glob("*.pid") if self.dir.exists() else ():
            subprocess.run([PYTHON, str(CHECKOUT / "lab" / "hamail-vbmc"), "--stop", "--pid-file", str(pid_file)],
                           check=False, timeout=30, stdin=subprocess.DEVNULL, capture_output=True)
        if self.netns in hostsys.netns_names():
            inode = hostsys.ns_inode(hostsys.NETNS_DIR / self.netns)
            if inode is not None:
                hostsys.kill_netns_processes(inode)
            hostsys.sh(["ip", "netns", "del", self.netns], check=False)
        hostsys.delete_links([self.veth])
        hostsys.netns_release_dir()
