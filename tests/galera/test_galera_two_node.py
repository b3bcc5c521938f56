# SPDX-License-Identifier: GPL-2.0-or-later
"""A two-node Galera cluster (node1, node2, two_node_mode=true) inside the 3-node lab.

node3 runs no galera instance (a location constraint keeps the clone off it, without probes): its vote only
keeps the partition of a surviving galera node quorate, as corosync's two_node option does on a real two-node
cluster. A lone Galera node of two has half the votes and no Primary component; two_node_mode lets it bootstrap
when its peer is gone. The scenarios are ones where that is safe and stays allowed once the peer must also be
recorded fenced or have left cleanly, with this node's last Primary view proving it is not behind.
"""

import pytest

import galera_lab as gl

NODES = ["node1", "node2"]
RSC = "gal2"


def promoted(lab, nodes=NODES, timeout=240):
    """Wait until the instances on nodes are Promoted, Synced and in one component of len(nodes)."""
    gl.all_promoted(lab, nodes, RSC, timeout)


ok = gl.ok


def lost(lab, acked, node):
    """Acknowledged ids missing on node."""
    return sorted(acked - gl.committed(lab, node))


def heal(lab):
    """All nodes back, fencing history and fencing records gone, both instances Promoted."""
    lab.heal()
    for node in NODES:
        ok(lab, ["stonith_admin", "--cleanup", f"--history={node}"])
        for name in (f"{RSC}-fenced-at", f"{RSC}-fenced-at-last-join"):
            proc = lab.run(lab.first_running(), ["crm_attribute", "-N", node, "-n", name, "-l", "forever", "-D"])
            assert proc.returncode in (0, 105), proc.stderr  # 105 (ENXIO): there was no record
    ok(lab, ["crm_resource", "--cleanup", "-r", f"{RSC}-clone"])
    promoted(lab)


@pytest.fixture(scope="module")
def galera2(lab3, tmp_path_factory):
    """The clone with two_node_mode=true Promoted on node1 and node2, never on node3, with a counter table."""
    lab = lab3
    for clone in ("galera-clone", "hb-clone", f"{RSC}-clone"):
        gl.remove_clone(lab, clone)
    for node in NODES:
        gl.init_node(lab, node)
    # node3 is not in wsrep_cluster_address: Pacemaker still probes there (no resource-discovery=never) and the
    # probe must say "not running": a 6 would stop the clone on every node, and promoted() below would time out.
    constraint = f'<rsc_location id="{RSC}-not-node3" rsc="{RSC}-clone" node="node3" score="-INFINITY"/>'
    ok(lab, ["cibadmin", "--modify", "--allow-create", "--scope", "configuration", "-X",
             f"<configuration><resources>{gl.resource_xml(NODES, RSC, two_node_mode='true')}</resources>"
             f"<constraints>{constraint}</constraints></configuration>"], "node1")
    promoted(lab)
    proc = gl.sql(lab, "node1", "CREATE DATABASE IF NOT EXISTS hamail_test;"
                  "CREATE TABLE IF NOT EXISTS hamail_test.counter (id INT PRIMARY KEY);"
                  "CREATE TABLE IF NOT EXISTS hamail_test.probe (id INT AUTO_INCREMENT PRIMARY KEY)")
    assert proc.returncode == 0, proc.stderr
    lab.tmp = tmp_path_factory.mktemp("galera2")
    lab.next_id = [1]
    yield lab
    lab.heal()
    gl.remove_clone(lab, f"{RSC}-clone")
    for node in NODES:
        for name in (f"{RSC}-fenced-at", f"{RSC}-fenced-at-last-join"):
            lab.run(lab.first_running(), ["crm_attribute", "-N", node, "-n", name, "-l", "forever", "-D"])


def writer(lab, node):
    """A counter writer on node, its ids disjoint from earlier writers'."""
    start = lab.next_id[0]
    lab.next_id[0] += 1_000_000
    w = gl.Writer(lab, node, lab.tmp / f"acks-{start}.txt", start)
    w.wait_for(30)
    return w


def grastate(lab, node):
    """A node's grastate.dat text (host side)."""
    return (lab.data_dir(node) / "galera" / "data" / "grastate.dat").read_text()


def test_peer_left_cleanly_survivor_restarts_and_bootstraps_alone(galera2):
    """node2 shuts down cleanly and node1 goes on alone; node1 then loses power and boots while node2 is still
    down: its peer left before it, so node1 bootstraps by itself with every acknowledged write, and node2 joins
    it when it returns.

    Galera records safe_to_bootstrap=1 on the last member of a Primary component the others left cleanly, and the
    agent keeps that flag through a crash; two_node_mode (peer offline, partition quorate) would allow it too, so
    this scenario fails only when both are broken.
    """
    lab = galera2
    w = writer(lab, "node1")
    try:
        lab.stop_node("node2")
        assert "safe_to_bootstrap: 0" in grastate(lab, "node2")  # node2 left first: it alone may not bootstrap
        w.wait_for(len(w.acked()) + 30)                         # node1 goes on alone
        assert gl.wsrep(lab, "node1").get("wsrep_cluster_size") == "1"
        lab.kill_node("node1")
        acked = w.stop()
        assert "safe_to_bootstrap: 1" in grastate(lab, "node1")  # the last member of the Primary component
        marks = gl.log_marks(lab, ["node1"])
        lab.start_node("node1", wait=False)
        lab.wait_online(120, nodes=["node1", "node3"])
        gl.writable(lab, ["node1"], timeout=180)
        promoted(lab, ["node1"])
        assert gl.bootstrapped_since(lab, marks) == ["node1"]
        assert not lab.is_running("node2")
        assert lost(lab, acked, "node1") == []
        marks = gl.log_marks(lab, NODES)
        lab.start_node("node2")
        promoted(lab)
        assert gl.bootstrapped_since(lab, marks) == []          # node2 joined node1's component
        assert lost(lab, acked, "node2") == []
    finally:
        w.stop()
        heal(lab)


def test_peer_fenced_survivor_recovers_alone_from_the_view_it_kept(galera2):
    """node2 loses power and is fenced; node1, with half the votes, loses its Primary component and Pacemaker
    stops it cleanly, which removes its gvwstate.dat. The agent kept node1's last Primary view (node1+node2) at
    that stop: one of two nodes is never Primary alone, so node2 committed nothing after it, and node1
    bootstraps by itself while node2 is still off. When node2 returns it joins; nothing acknowledged is lost."""
    lab = galera2
    w = writer(lab, "node1")
    try:
        marks = gl.log_marks(lab, NODES)
        lab.kill_node("node2")
        ok(lab, ["stonith_admin", "--confirm=node2"], "node1")  # the operator checked: node2 is off
        acked = w.stop()
        node, _ = gl.writable(lab, ["node1"], timeout=180)
        assert lost(lab, acked, node) == []
        assert not lab.is_running("node2")
        lab.start_node("node2")
        promoted(lab)
        assert gl.bootstrapped_since(lab, marks) == ["node1"]
        assert lost(lab, acked, "node1") == [] and lost(lab, acked, "node2") == []
    finally:
        w.stop()
        heal(lab)


def test_a_node_that_left_cleanly_never_bootstraps_over_its_peers_later_commits(galera2):
    """node1 shuts down cleanly, node2 goes on alone and then loses power (and is even confirmed fenced): node1
    booting alone must wait, because node2 committed after node1 left; when node2 returns it bootstraps and
    nothing acknowledged is lost (heartbeat-style two_node_mode, "peer offline, partition quorate", lost 491
    of 526 acknowledged writes in this scenario)."""
    lab = galera2
    w = writer(lab, "node2")
    try:
        lab.stop_node("node1")
        w.wait_for(len(w.acked()) + 30)                         # node2 goes on alone
        lab.kill_node("node2")
        acked = w.stop()
        marks = gl.log_marks(lab, NODES)
        lab.start_node("node1", wait=False)
        lab.wait_online(120, nodes=["node1", "node3"])
        ok(lab, ["stonith_admin", "--confirm=node2"], "node1")  # fenced proves node2 is down, not that it is behind
        lab.wait_for(lambda: "node2" in (gl.attribute(lab, "node1", f"{RSC}-bootstrap-wait") or ""), 180,
                     "node1 to say it waits for node2")
        gl.never_primary(lab, ["node1"], gl.HOLD_S, RSC)
        lab.start_node("node2")
        promoted(lab)
        assert gl.bootstrapped_since(lab, marks) == ["node2"]
        assert lost(lab, acked, "node1") == [] and lost(lab, acked, "node2") == []
    finally:
        w.stop()
        heal(lab)
