# SPDX-License-Identifier: GPL-2.0-or-later
"""Tests of the lab harness itself, against real Pacemaker clusters in namespaces."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from hamail_lab import Cluster, LabError
from hamail_lab.fixtures import require_root
from hamail_lab.hostsys import link_names, netns_names

CHECKOUT = Path(__file__).resolve().parents[2]


def host_snapshot() -> dict:
    """What a lab could leave behind on the host: namespaces, links, mounts, cluster processes."""
    with open("/proc/mounts", encoding="utf-8") as handle:
        mounts = sorted(handle.read().splitlines())
    procs = {}
    for tool in ("corosync", "pacemakerd", "pacemaker-controld", "unshare"):
        found = subprocess.run(["pgrep", "-x", tool], capture_output=True, text=True, check=False).stdout.split()
        procs[tool] = sorted(found)
    return {"netns": sorted(netns_names()), "links": sorted(link_names()), "mounts": mounts, "procs": procs}


def settle(snapshot_before: dict, timeout: float = 10) -> dict:
    """The host snapshot once it equals ``snapshot_before`` (or the last one after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        now = host_snapshot()
        if now == snapshot_before or time.monotonic() > deadline:
            return now
        time.sleep(0.2)


def test_one_node_cluster_has_a_dc(cluster1):
    """The 1-node cluster is up, quorate, and node1 is its DC."""
    status = cluster1.status()
    assert status.dc == "node1"
    assert status.quorate
    assert status.online() == ["node1"]
    assert cluster1.address("node1") == "198.51.100.11"


def test_three_nodes_online_and_quorate(cluster3):
    """Every node of the 3-node cluster sees all three online, the same DC, and quorum."""
    dcs = set()
    for node in cluster3.nodes:
        status = cluster3.status(node)
        assert status.quorate, node
        assert sorted(status.online()) == ["node1", "node2", "node3"], node
        dcs.add(status.dc)
    assert len(dcs) == 1 and dcs <= set(cluster3.nodes)


def test_run_executes_inside_the_node(cluster3):
    """run() is inside the node: its hostname, its address, its /etc/hosts, its private dirs."""
    assert cluster3.run("node2", ["hostname"], check=True).stdout.strip() == "node2"
    addr = cluster3.run("node2", ["ip", "-4", "-o", "addr", "show", "dev", "eth0"], check=True).stdout
    assert "192.0.2.12/24" in addr
    hosts = cluster3.run("node1", ["getent", "hosts", "node3"], check=True).stdout
    assert hosts.split()[0] == "192.0.2.13"
    ping = cluster3.run("node1", ["ping", "-c", "1", "-W", "2", "node3"])
    assert ping.returncode == 0, ping.stdout + ping.stderr
    # The per-node data dir, /run and /dev/shm are private to each node.
    cluster3.run("node1", ["sh", "-c", "echo one > /var/lib/hamail-lab-node/marker; touch /run/marker"], check=True)
    assert (cluster3.data_dir("node1") / "marker").read_text() == "one\n"
    assert cluster3.run("node2", ["test", "-e", "/var/lib/hamail-lab-node/marker"]).returncode == 1
    assert cluster3.run("node2", ["test", "-e", "/run/marker"]).returncode == 1
    assert not Path("/run/marker").exists()
    # The node's processes are its own (PID namespace): pacemakerd is there, the host's PID 1 is not.
    ps = cluster3.run("node3", ["ps", "-eo", "comm"], check=True).stdout.split()
    assert "pacemakerd" in ps and "corosync" in ps
    # stdin and env reach the command; a non-zero exit is returned, or raised with check=True.
    echo = cluster3.run("node1", ["sh", "-c", "cat; echo $HML_X"], input="in\n", env={"HML_X": "y"})
    assert echo.stdout == "in\ny\n"
    with pytest.raises(subprocess.CalledProcessError):
        cluster3.run("node1", ["false"], check=True)
    with pytest.raises(subprocess.TimeoutExpired):
        cluster3.run("node1", ["sleep", "30"], timeout=0.5)


def test_transient_attribute_visible_from_other_node(cluster3):
    """A reboot-lifetime node attribute set on node2 is read back on node1 (attrd across nodes)."""
    cluster3.run("node2", ["crm_attribute", "-N", "node2", "-n", "hml_x", "-l", "reboot", "-v", "5"], check=True)

    def read_back():
        """True once node1 reads the value 5."""
        proc = cluster3.run("node1", ["crm_attribute", "-N", "node2", "-n", "hml_x", "-l", "reboot", "-G", "-q"])
        return proc.stdout.strip() == "5"
    cluster3.wait_for(read_back, 30, "node2's transient attribute on node1")
    cluster3.run("node2", ["crm_attribute", "-N", "node2", "-n", "hml_x", "-l", "reboot", "-D"], check=True)


def test_cut_and_restore_link(cluster3):
    """cut_link(node3): node1 and node2 see it offline and keep quorum; restore_link brings it back."""
    try:
        cluster3.cut_link("node3")
        for viewer in ("node1", "node2"):
            cluster3.wait_for(lambda v=viewer: not cluster3.status(v).nodes["node3"].online, 60,
                              f"{viewer} to see node3 gone")
        status = cluster3.status("node1")
        assert status.quorate and sorted(status.online()) == ["node1", "node2"]
        alone = cluster3.status("node3")
        assert not alone.quorate and alone.online() == ["node3"]
        assert cluster3.is_running("node3")
        cluster3.restore_link("node3")
        cluster3.wait_online(120)
    finally:
        cluster3.heal()


def test_kill_and_restart_node(cluster3):
    """kill_node is a power cut (everything in the node dies at once); start_node boots it with its old disk."""
    try:
        cluster3.run("node3", ["sh", "-c", "echo kept > /var/lib/hamail-lab-node/disk"], check=True)
        # A daemonised process inside the node dies with it, like mariadbd would.
        cluster3.run("node3", ["sh", "-c", "setsid sleep 1000 </dev/null >/dev/null 2>&1 &"], check=True)
        init = cluster3.init_pid("node3")
        cluster3.kill_node("node3")
        assert not cluster3.is_running("node3")
        assert not Path(f"/proc/{init}").exists() or "Z" in Path(f"/proc/{init}/stat").read_text().split()[2]
        with pytest.raises(LabError):
            cluster3.run("node3", ["true"])
        cluster3.wait_for(lambda: not cluster3.status("node1").nodes["node3"].online, 60, "node3 seen offline")
        cluster3.start_node("node3")
        assert cluster3.is_running("node3")
        assert cluster3.run("node3", ["cat", "/var/lib/hamail-lab-node/disk"]).stdout == "kept\n"
        assert "sleep" not in cluster3.run("node3", ["ps", "-eo", "comm"]).stdout.split()
        assert sorted(cluster3.status("node1").online()) == ["node1", "node2", "node3"]
    finally:
        cluster3.heal()


def test_stop_leaves_nothing_behind_even_after_failed_start_and_crash(tmp_path):
    """A failed start explains itself; a crashed run's leftovers are cleaned; stop() is complete and idempotent."""
    require_root()
    before = host_snapshot()
    failing = Cluster(tmp_path / "a", nodes=1, prefix="hmx", subnet="198.51.100")
    with pytest.raises(LabError) as info:
        failing.start(timeout=1)
    assert "node1" in str(info.value)
    failing.stop()
    assert settle(before) == before

    crashed = Cluster(tmp_path / "b", nodes=1, prefix="hmx", subnet="198.51.100")
    crashed.start()
    assert crashed.startup_seconds < 120
    # A new run with the same prefix (e.g. after the test process was SIGKILLed) takes over cleanly.
    again = Cluster(tmp_path / "c", nodes=1, prefix="hmx", subnet="198.51.100")
    with again:
        assert not crashed.is_running("node1")
        assert again.status().dc == "node1"
    again.stop()
    crashed.stop()
    after = settle(before)
    assert after["netns"] == before["netns"]
    assert after["links"] == before["links"]
    assert after["mounts"] == before["mounts"]
    assert after["procs"] == before["procs"]
    assert not any("hmx-" in line for line in after["mounts"])


def test_nodes_run_exactly_the_checkout_under_test_or_refuse(tmp_path):
    """Inside a node, ocf:hamail and fence_* resolve into the cluster's checkout (a copy here), not the host's."""
    require_root()
    copy = tmp_path / "checkout"
    for part in ("agents", "fence", "lib"):
        shutil.copytree(CHECKOUT / part, copy / part, symlinks=True)
    cluster = Cluster(tmp_path / "lab", nodes=1, prefix="hmz", subnet="198.51.100", checkout=copy)
    with cluster:
        seen = cluster.run("node1", ["readlink", "-f", "/usr/lib/ocf/resource.d/hamail/Dummy",
                                     "/usr/sbin/fence_ipmi"]).stdout.split()
        assert seen == [str(copy / "agents" / "Dummy"), str(copy / "fence" / "fence_ipmi")]
        meta = cluster.run("node1", ["crm_resource", "--show-metadata", "ocf:hamail:Dummy"])
        assert meta.returncode == 0 and 'name="Dummy"' in meta.stdout, meta.stderr
        # The host's own directories are untouched: the copy is visible only inside the node.
        assert not os.path.realpath("/usr/lib/ocf/resource.d/hamail").startswith(str(copy))
        cluster.check_agents("node1")
        # A node that runs anything but the checkout under test (here: the copy, when this checkout is meant)
        # makes the lab stop with the reason.
        cluster.checkout = CHECKOUT
        with pytest.raises(LabError, match="not the checkout under test"):
            cluster.check_agents("node1")


def test_cli_up_run_down(tmp_path):
    """The CLI keeps state in the workdir: up, run and down work from separate processes."""
    require_root()
    lab = Path(__file__).resolve().parents[2] / "lab"
    env = dict(os.environ, PYTHONPATH=str(lab))
    base = ["/usr/bin/python3", "-m", "hamail_lab", "--workdir", str(tmp_path)]
    before = host_snapshot()
    try:
        up = subprocess.run(base + ["up", "--nodes", "1", "--prefix", "hmy", "--subnet", "198.51.100"],
                            env=env, capture_output=True, text=True, timeout=300, check=False)
        assert up.returncode == 0, up.stderr
        assert "Online: [ node1 ]" in up.stdout
        run = subprocess.run(base + ["run", "node1", "hostname"], env=env, capture_output=True, text=True,
                             timeout=60, check=False)
        assert (run.returncode, run.stdout) == (0, "node1\n")
    finally:
        down = subprocess.run(base + ["down"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert down.returncode == 0, down.stderr
    after = settle(before)
    assert (after["netns"], after["links"], after["mounts"]) == (before["netns"], before["links"], before["mounts"])
