# SPDX-License-Identifier: GPL-2.0-or-later
"""`make lab STACK=shared`'s promise, as README states it: the shared-storage mail cluster (one loop device
every node reaches, ocf:hamail:Filesystem by label, mysql, dovecot, postfix and the VIP as one group) on
three nodes with fencing on; a mail round trip through the VIP; the pcs script configures the same cluster
as the crm file; the drills' watcher sees the filesystem mounted on two nodes the moment it happens; the
network-cut drill (the node holding the filesystem loses its link while it keeps running) passes with the
filesystem never mounted twice and nothing lost; the soak's heal brings a broken lab back; `make lab-down` detaches the loop device and leaves nothing."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

from hamail_lab import Cluster, soak, stacks
from hamail_lab.bmc import BmcNetwork
from hamail_lab.drills import Invariants, placement, stack_ready
from hamail_lab.fixtures import require_root
from hamail_lab.hostsys import enter_netns, link_names, netns_names
from hamail_lab.sharedstack import DATA_MOUNT, RESOURCES
from make_lab_support import CHECKOUT, live_configuration, pcs_configuration
from make_lab_support import lab as run_lab

PREFIX = "hmj"  # neither make lab's hml nor the other make lab test's hmk
PCS_SCRIPT = CHECKOUT / "lab" / "stacks" / "shared-mail.pcs.sh"


def lab(workdir: Path, *args: str, timeout: float = 420) -> subprocess.CompletedProcess:
    """scripts/lab on this test's lab."""
    return run_lab(workdir, PREFIX, *args, timeout=timeout)


def watch_while_mounted_twice(cluster: Cluster, stack, other: str) -> list[str]:
    """The drills' invariants, running, while the shared filesystem is mounted by hand on a second node for a
    second: what they report (in a thread of its own: it enters the lab's client namespace)."""
    found: list[str] = []

    def body() -> None:
        enter_netns(cluster.client_netns)
        with Invariants(cluster, stack) as inv:
            time.sleep(1)
            mount = cluster.run(other, ["sh", "-c", f"mkdir -p {DATA_MOUNT} && mount LABEL={stack.label} "
                                        f"{DATA_MOUNT} && sleep 1.5 && umount {DATA_MOUNT}"], timeout=30)
            assert mount.returncode == 0, mount.stderr
            time.sleep(1)
        found.extend(inv.violations)
    thread = threading.Thread(target=body)
    thread.start()
    thread.join(timeout=120)
    return found


def test_make_lab_shared_runs_the_stack_never_mounts_twice_and_lab_down_detaches_the_disk(tmp_path):
    """up: the group runs; mail round trip; pcs == crm; the mount watcher works; network-cut; down."""
    require_root()
    workdir = tmp_path / "lab"
    up = lab(workdir, "--stack", "shared", "up")
    image = workdir / "shared-disk.img"
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        cluster = Cluster.load(workdir)
        stack = stacks.load(cluster)
        assert stack.name == "shared" and stack_ready(cluster)
        device = subprocess.run(["losetup", "--noheadings", "--output", "NAME", "--associated", str(image)],
                                capture_output=True, text=True, check=True).stdout.split()
        assert len(device) == 1, device
        sent = lab(workdir, "send", timeout=60)
        assert sent.returncode == 0, sent.stderr
        token = sent.stdout.split("token ")[1].strip(")\n")
        cluster.wait_for(lambda: token[:8] in lab(workdir, "read", timeout=60).stdout or None, 60,
                         "the mail in the INBOX")
        live = live_configuration(cluster, PREFIX)
        assert set(live["primitives"]) == set(RESOURCES) and live["groups"] == {"mail": list(RESOURCES)}
        assert pcs_configuration(cluster, PCS_SCRIPT, PREFIX) == live
        # The watcher the drills rely on: a second mount is reported while it lasts.
        active = placement(cluster)["shared-fs"]
        other = next(n for n in cluster.nodes if n != active)
        violations = watch_while_mounted_twice(cluster, stack, other)
        assert any(f"{DATA_MOUNT} mounted on" in v and active in v and other in v for v in violations), violations
        # The drill made for shared storage: the node holding the filesystem is cut off but keeps running;
        # the others fence it before they mount, and nothing accepted or acknowledged is lost.
        drill = lab(workdir, "--stack", "shared", "--name", "network-cut", "--no-record", "drill", timeout=900)
        assert drill.returncode == 0 and "PASSED" in drill.stdout, drill.stdout + drill.stderr[-3000:]
        assert "mails accepted 0" not in drill.stdout and "acknowledged 0" not in drill.stdout, drill.stdout
        # What an unattended soak does after a failed drill: the node running the group dead with its BMC and
        # another node cut off leave nothing running; heal brings all of it back (BMCs, links, power, cleanup).
        cluster = Cluster.load(workdir)
        active = placement(cluster)["shared-fs"]
        other = next(n for n in cluster.nodes if n != active)
        BmcNetwork(cluster).stop_bmc(active)
        cluster.kill_node(active)
        cluster.cut_link(other)
        cluster.wait_for(lambda: not stack_ready(cluster) or None, 60, "the broken lab to stop being ready")
        assert soak.heal(workdir, 300) == ""
        assert stack_ready(Cluster.load(workdir))
        wrong = lab(workdir, "--stack", "galera", "--name", "kill-service", "drill", timeout=60)
        assert wrong.returncode == 1 and "runs the shared stack, not galera" in wrong.stderr, wrong.stderr
    finally:
        down = lab(workdir, "down", timeout=180)
    assert down.returncode == 0, down.stderr
    assert not [ns for ns in netns_names() if ns.startswith(f"{PREFIX}-")]
    assert not [link for link in link_names() if link.startswith(f"{PREFIX}-")]
    assert not subprocess.run(["losetup", "--associated", str(image)], capture_output=True, text=True).stdout
    assert not Path(DATA_MOUNT).exists()
    assert str(workdir) not in Path("/proc/self/mounts").read_text()
