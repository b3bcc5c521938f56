# SPDX-License-Identifier: GPL-2.0-or-later
"""IPaddr2, Filesystem and Dummy run by Pacemaker itself (the lab's 1-node cluster), not called directly.

Each test creates the resource with pcs as an administrator would, waits for crm_mon to show it Started,
checks its real effect inside the node (the address on the node's eth0, the mount in the node's mount
namespace, Dummy's state file), breaks that effect behind Pacemaker's back and checks that the recurring
monitor notices it (a failed monitor operation, fail-count 1) and that Pacemaker recovers the resource (effect
back), then deletes the resource and checks the effect is gone.
"""

import re
import subprocess
import xml.etree.ElementTree as ET

import pytest

NODE = "node1"
MONITOR_MS = 2000  # the recurring monitor's interval: short, so a failure is seen within seconds
SETTLE = 90  # seconds allowed for Pacemaker to start, recover or stop a resource on a loaded 2-core box


def sh(*argv, check=True):
    """Run a command on the host; CompletedProcess with text output."""
    return subprocess.run([str(a) for a in argv], check=check, capture_output=True, text=True, timeout=120)


class Pcmk:
    """Pacemaker's view of one node of the lab cluster, through its own tools run inside the node."""

    def __init__(self, cluster, node=NODE):
        self.cluster, self.node = cluster, node

    def run(self, *argv, check=True, timeout=120):
        """Run a command inside the node; with check, fail the test (with its output) on a non-zero exit."""
        result = self.cluster.run(self.node, [str(a) for a in argv], timeout=timeout)
        if check:
            assert result.returncode == 0, (argv, result.stdout, result.stderr)
        return result

    def resource(self, rsc):
        """crm_mon's <resource> element of rsc, None when the resource is not in the configuration."""
        return ET.fromstring(self.cluster.crm_mon_xml(self.node)).find(f"resources/resource[@id='{rsc}']")

    def started_here(self, rsc) -> bool:
        """Whether crm_mon shows rsc Started, active and not failed, on this node."""
        el = self.resource(rsc)
        return (el is not None and el.get("role") == "Started" and el.get("active") == "true"
                and el.get("failed") == "false" and [n.get("name") for n in el.findall("node")] == [self.node])

    def failures(self, rsc) -> list:
        """crm_mon's recorded failed operations of rsc (attribute dicts)."""
        root = ET.fromstring(self.cluster.crm_mon_xml(self.node))
        return [dict(f.attrib) for f in root.findall("failures/failure") if f.get("op_key", "").startswith(rsc + "_")]

    def fail_count(self, rsc) -> int:
        """The resource's fail-count on this node (0 when none is recorded)."""
        out = self.run("crm_failcount", "--query", "--resource", rsc, "--node", self.node).stdout
        value = re.search(r"value=(\S+)", out)
        assert value, out
        return 0 if value.group(1) in ("0", "(null)") else int(value.group(1))

    def create(self, rsc, agent, *params, check_level=None):
        """pcs resource create with a short recurring monitor (at OCF_CHECK_LEVEL check_level if given)."""
        monitor = [f"interval={MONITOR_MS // 1000}s", "timeout=20s"]
        if check_level is not None:
            monitor.append(f"OCF_CHECK_LEVEL={check_level}")
        self.run("pcs", "resource", "create", rsc, f"ocf:hamail:{agent}", *params, "op", "monitor", *monitor)

    def wait_started(self, rsc, what):
        """Wait until crm_mon shows rsc Started here."""
        self.cluster.wait_for(lambda: self.started_here(rsc), SETTLE, f"{rsc} Started ({what})")

    def wait_recovered(self, rsc, effect):
        """Wait until the recurring monitor's failure is recorded and the resource runs again with its effect;
        the failure it recorded."""
        def recovered():
            monitor_failures = [f for f in self.failures(rsc) if f.get("task") == "monitor"
                                and f.get("interval") == str(MONITOR_MS)]
            if monitor_failures and self.fail_count(rsc) >= 1 and self.started_here(rsc) and effect():
                return monitor_failures
            return None
        found = self.cluster.wait_for(recovered, SETTLE, f"{rsc} failed by its monitor and recovered")
        assert [f["exitcode"] for f in found] == ["7"], found  # "not running", as the agent reported it
        assert self.fail_count(rsc) == 1
        return found

    def delete(self, rsc):
        """Stop and remove the resource (pcs stops it first); Pacemaker then drops its fail-count too."""
        if self.resource(rsc) is None:
            return
        self.run("pcs", "resource", "delete", rsc, timeout=SETTLE + 30)
        self.cluster.wait_for(lambda: self.resource(rsc) is None, SETTLE, f"{rsc} to leave crm_mon")
        assert self.fail_count(rsc) == 0


@pytest.fixture
def pcmk(cluster1):
    """Pacemaker on node1 of the 1-node lab cluster."""
    return Pcmk(cluster1)


def test_dummy_recovered_after_its_state_file_is_deleted(pcmk):
    rsc = "hm-under-dummy"
    # Dummy's default state file: named after the instance in HA_RSCTMP (the node's /run/resource-agents).
    state = f"/run/resource-agents/Dummy-{rsc}.state"

    def state_text():
        return pcmk.run("cat", state, check=False).stdout.strip()

    assert state_text() == ""
    pcmk.create(rsc, "Dummy")
    try:
        pcmk.wait_started(rsc, "created")
        assert state_text() == "running"
        assert pcmk.fail_count(rsc) == 0

        pcmk.run("rm", state)
        pcmk.wait_recovered(rsc, lambda: state_text() == "running")
    finally:
        pcmk.delete(rsc)
    assert pcmk.run("test", "-e", state, check=False).returncode == 1  # stop removed it


def test_ipaddr2_recovered_after_its_address_is_deleted(pcmk, cluster1):
    rsc = "hm-under-vip"
    netns = cluster1.netns(NODE)
    vip = f"{cluster1.subnet}.50"

    def on_eth0() -> bool:
        # The agent chose the interface itself: the one of the node's own subnet, eth0 in the node's netns.
        return f" {vip}/24 " in sh("ip", "-n", netns, "-o", "addr", "show", "dev", "eth0").stdout

    assert not on_eth0()
    pcmk.create(rsc, "IPaddr2", f"ip={vip}", "cidr_netmask=24")
    try:
        pcmk.wait_started(rsc, "created")
        assert on_eth0()
        assert vip in pcmk.run("ip", "-o", "addr", "show", "dev", "eth0").stdout  # as seen inside the node
        assert pcmk.fail_count(rsc) == 0

        sh("ip", "-n", netns, "addr", "del", f"{vip}/24", "dev", "eth0")
        assert not on_eth0()
        pcmk.wait_recovered(rsc, on_eth0)
    finally:
        pcmk.delete(rsc)
    assert vip not in sh("ip", "-n", netns, "-o", "addr", "show").stdout


class Loop:
    """A loop device with a fresh ext4, made on the host (the lab nodes share the host's /dev)."""

    def __init__(self, base):
        image = base / "disk.img"
        with open(image, "wb") as handle:
            handle.truncate(64 * 1024 * 1024)
        self.device = sh("losetup", "-f", "--show", image).stdout.strip()
        try:
            sh("mkfs.ext4", "-q", "-F", self.device)
        except subprocess.CalledProcessError:
            sh("losetup", "-d", self.device, check=False)
            raise

    def detach(self, cluster):
        """Detach the device (a loop device can be busy for a moment after its last unmount: poll)."""
        cluster.wait_for(lambda: sh("losetup", "-d", self.device, check=False).returncode == 0, 30,
                         f"{self.device} to detach")


def test_filesystem_recovered_after_it_is_unmounted(pcmk, cluster1, tmp_path):
    rsc = "hm-under-fs"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    loop = Loop(tmp_path)

    def mounted_in_node():
        """SOURCE and FSTYPE of the mount at mnt in the node's mount namespace, [] when none."""
        return pcmk.run("findmnt", "-n", "-o", "SOURCE,FSTYPE", "--mountpoint", mnt, check=False).stdout.split()

    def host_mounted():
        return any(line.split()[4] == str(mnt) for line in open("/proc/self/mountinfo"))

    try:
        pcmk.create(rsc, "Filesystem", f"device={loop.device}", f"directory={mnt}", "fstype=ext4",
                    check_level=20)
        try:
            pcmk.wait_started(rsc, "created")
            assert mounted_in_node() == [loop.device, "ext4"]
            assert not host_mounted()  # the node's private mount namespace, not the host's
            # The depth-20 recurring monitor (its first run follows the start) writes its status file there.
            status = mnt / ".Filesystem_status" / f"{rsc}_{NODE}"
            cluster1.wait_for(lambda: pcmk.run("test", "-s", status, check=False).returncode == 0, SETTLE,
                              "the depth-20 monitor's status file")
            assert pcmk.fail_count(rsc) == 0

            pcmk.run("umount", mnt)
            assert mounted_in_node() == []
            pcmk.wait_recovered(rsc, lambda: mounted_in_node() == [loop.device, "ext4"])
        finally:
            pcmk.delete(rsc)
        assert mounted_in_node() == []
    finally:
        if mounted_in_node():
            pcmk.run("umount", "-l", mnt, check=False)
        loop.detach(cluster1)


def operations(cluster, rsc) -> list[tuple[str, str, str]]:
    """(node, task, rc) of every operation crm_mon's history holds for rsc, in call order per node."""
    root = ET.fromstring(cluster.run(cluster.first_running(), ["crm_mon", "--output-as=xml", "--include=operations"],
                                     timeout=30).stdout)
    found = []
    for node in root.findall("node_history/node"):
        for op in node.findall(f"resource_history[@id='{rsc}']/operation_history"):
            found.append((int(op.get("call", "0")), node.get("name"), op.get("task"), op.get("rc")))
    return [(n, t, rc) for _, n, t, rc in sorted(found)]


def test_dummy_live_migrates_with_allow_migrate(cluster3):
    """With allow-migrate=true, Pacemaker moves a Dummy by migrate_to on the source and migrate_from on the
    target (heartbeat Dummy's actions), not by stop and start; the state file follows."""
    rsc = "migdummy"
    pcmk = Pcmk(cluster3, "node1")
    try:
        pcmk.run("pcs", "resource", "create", rsc, "ocf:hamail:Dummy", "meta", "allow-migrate=true",
                 "op", "monitor", "interval=5s", "timeout=20s")
        pcmk.run("pcs", "constraint", "location", rsc, "prefers", "node1=100")
        cluster3.wait_for(lambda: Pcmk(cluster3, "node1").started_here(rsc), SETTLE, f"{rsc} on node1")
        pcmk.run("crm_resource", "--move", "--resource", rsc, "--node", "node2")
        cluster3.wait_for(lambda: Pcmk(cluster3, "node2").started_here(rsc), SETTLE, f"{rsc} migrated to node2")
        ops = operations(cluster3, rsc)
        assert ("node1", "migrate_to", "0") in ops and ("node2", "migrate_from", "0") in ops, ops
        assert ("node2", "start", "0") not in ops, ops  # migrated, not restarted
        state = f"/run/resource-agents/Dummy-{rsc}.state"
        assert cluster3.run("node2", ["cat", state]).stdout == "running\n"
        assert cluster3.run("node1", ["test", "-e", state]).returncode == 1
    finally:
        pcmk.run("crm_resource", "--clear", "--resource", rsc, check=False)
        pcmk.run("pcs", "resource", "delete", rsc, check=False, timeout=SETTLE + 30)
