# SPDX-License-Identifier: GPL-2.0-or-later
"""`make lab`'s promise, as README states it: three nodes with STONITH through fence_ipmi and hamail-vbmc, a
promotable clone, and an ocf:hamail:IPaddr2 VIP grouped with a service on the promoted node; README's
"try" command (fencing the promoted node) moves them; `make lab-down` leaves nothing of the lab on the host."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from hamail_lab import Cluster
from hamail_lab.agents import FENCE_DIR, OCF_PROVIDER_DIR
from hamail_lab.fixtures import require_root
from hamail_lab.hostsys import link_names, netns_names
from hamail.pacemaker.crmmon import parse_crm_mon

CHECKOUT = Path(__file__).resolve().parents[2]
PREFIX = "hmk"  # not make lab's own hml: a lab the user left running is never touched
VIP = "192.0.2.100"


def lab(workdir: Path, command: str, timeout: float = 360) -> subprocess.CompletedProcess:
    """Run scripts/lab as the Makefile does."""
    return subprocess.run(["/usr/bin/python3", str(CHECKOUT / "scripts" / "lab"), "--workdir", str(workdir),
                           "--prefix", PREFIX, command], capture_output=True, text=True, timeout=timeout, check=False)


def placement(cluster: Cluster) -> dict[str, str | None]:
    """Where the promoted instance, the VIP and the grouped service run (None: nowhere)."""
    status = parse_crm_mon(cluster.crm_mon_xml())
    promoted = [r.nodes[0] for r in status.instances("state-clone") if r.role == "Promoted" and r.nodes]
    where = {"promoted": promoted[0] if len(promoted) == 1 else None}
    for rsc in status.resources:
        if rsc.id in ("vip", "web-dummy"):
            where[rsc.id] = rsc.nodes[0] if rsc.active and len(rsc.nodes) == 1 else None
    return where


def holders_of_vip(cluster: Cluster) -> list[str]:
    """The nodes whose eth0 really carries the VIP (read from the kernel, not from Pacemaker)."""
    found = []
    for node in cluster.nodes:
        if not cluster.is_running(node):
            continue
        addrs = subprocess.run(["ip", "-n", cluster.netns(node), "-o", "-4", "addr", "show", "dev", "eth0"],
                               capture_output=True, text=True, check=True).stdout
        if f" {VIP}/24 " in addrs:
            found.append(node)
    return found


def together(cluster: Cluster) -> str | None:
    """The promoted node when the VIP and the service run there (Pacemaker and kernel agree), else None."""
    where = placement(cluster)
    node = where.get("promoted")
    if node and where.get("vip") == node and where.get("web-dummy") == node and holders_of_vip(cluster) == [node]:
        return node
    return None


def test_make_lab_runs_the_promise_and_lab_down_leaves_the_host_as_it_was(tmp_path):
    """up: VIP + service on the promoted node; fencing that node moves them; down: nothing left on the host."""
    require_root()
    workdir = tmp_path / "lab"
    up = lab(workdir, "up")
    try:
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        assert "stonith_admin --reboot node3" in up.stdout  # the command README tells users to try
        cluster = Cluster.load(workdir)
        status = parse_crm_mon(cluster.crm_mon_xml())
        assert {"fence-node1", "fence-node2", "fence-node3"} <= {r.id for r in status.resources if r.active}
        first = cluster.wait_for(lambda: together(cluster), 60, "VIP and service on the promoted node")
        # README's try command, aimed at the node that holds everything: a real fence_ipmi reboot through its BMC.
        target = first
        old_init = cluster.init_pid(target)
        other = next(n for n in cluster.nodes if n != target)
        since = time.time() - 5
        fenced = cluster.run(other, ["stonith_admin", "--reboot", target, "--timeout", "120"], timeout=180)
        assert fenced.returncode == 0, fenced.stderr
        assert parse_crm_mon(cluster.crm_mon_xml(other)).was_fenced(target, since=since)

        def rebooted():
            now = Cluster.load(workdir)
            return now if now.is_running(target) and now.init_pid(target) != old_init else None
        fresh = cluster.wait_for(rebooted, 120, f"{target} power-cycled by its BMC")
        moved = fresh.wait_for(lambda: together(fresh), 180, "VIP and service on the promoted node again")
        assert fresh.wait_online(180).online() == fresh.nodes
        # Still exactly one holder of the VIP, on whichever node is promoted now.
        assert holders_of_vip(fresh) == [moved]
    finally:
        down = lab(workdir, "down", timeout=180)
    assert down.returncode == 0, down.stderr
    assert not [ns for ns in netns_names() if ns.startswith(f"{PREFIX}-")]
    assert not [link for link in link_names() if link.startswith(f"{PREFIX}-")]
    # The agents were visible only inside the nodes: nothing of the checkout is linked on the host.
    for path in [OCF_PROVIDER_DIR] + sorted(FENCE_DIR.glob("fence_*")):
        assert not (path.is_symlink() and os.path.realpath(path).startswith(f"{CHECKOUT}/")), path
