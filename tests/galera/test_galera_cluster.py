"""The galera promotable clone on the real 3-node lab: the seed's failure scenarios, no acknowledged commit lost."""

import time

import pytest

import galera_lab as gl

NODES = ["node1", "node2", "node3"]


def all_promoted(lab, timeout=240):
    """Wait until every node runs a Promoted instance that is Primary and Synced."""
    def done():
        roles = gl.roles(lab)
        if any(roles.get(n) != "Promoted" for n in NODES):
            return None
        return all(gl.wsrep(lab, n).get("wsrep_local_state_comment") == "Synced" for n in NODES) or None
    lab.wait_for(done, timeout, "all three galera instances Promoted and Synced")


def never_primary(lab, node, seconds):
    """Assert node does not run a Primary component for the given time."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        status = gl.wsrep(lab, node) if lab.is_running(node) else {}
        assert status.get("wsrep_cluster_status", "") != "Primary", f"{node} formed a Primary alone"
        time.sleep(1)


def heal(lab):
    """Everything back: links, nodes, fencing history; then all Promoted."""
    lab.heal()
    for node in NODES:
        lab.run(lab.first_running(), ["stonith_admin", "--cleanup", f"--history={node}"])
        lab.run(lab.first_running(), ["attrd_updater", "-n", "galera-force-bootstrap", "-D", "-N", node])
    lab.run(lab.first_running(), ["crm_resource", "--cleanup", "-r", "galera-clone"])
    all_promoted(lab)


def assert_nothing_lost(lab, acked):
    """Every instance Promoted again, and every acknowledged id present on every node."""
    all_promoted(lab)
    for node in NODES:
        assert lost(lab, acked, node) == []


def lost(lab, acked, node):
    """Acknowledged ids missing on node."""
    return sorted(acked - gl.committed(lab, node))


@pytest.fixture(scope="module")
def galera3(lab3, tmp_path_factory):
    """The clone running Promoted on all three nodes with a counter table."""
    lab = lab3
    gl.remove_clone(lab)
    for node in NODES:
        gl.init_node(lab, node)
    proc = lab.run("node1", ["cibadmin", "--create", "-o", "resources", "-X", gl.resource_xml(NODES)])
    assert proc.returncode == 0, proc.stderr
    all_promoted(lab)
    proc = gl.sql(lab, "node1", "CREATE DATABASE IF NOT EXISTS hamail_test;"
                  "CREATE TABLE IF NOT EXISTS hamail_test.counter (id INT PRIMARY KEY);"
                  "CREATE TABLE IF NOT EXISTS hamail_test.probe (id INT AUTO_INCREMENT PRIMARY KEY)")
    assert proc.returncode == 0, proc.stderr
    lab.tmp = tmp_path_factory.mktemp("galera")
    lab.next_id = [1]
    yield lab
    lab.heal()
    gl.remove_clone(lab)


def writer(lab, node):
    """A counter writer on node, its ids disjoint from earlier writers'."""
    start = lab.next_id[0]
    lab.next_id[0] += 1_000_000
    w = gl.Writer(lab, node, lab.tmp / f"acks-{start}.txt", start)
    w.wait_for(30)
    return w


def test_one_node_killed(galera3):
    lab = galera3
    w = writer(lab, "node1")
    try:
        lab.kill_node("node3")
        time.sleep(8)  # Galera's suspect/inactive timeouts: the survivors re-form a 2-node Primary
        before = len(w.acked())
        w.wait_for(before + 30, timeout=60)
        assert gl.wsrep(lab, "node1")["wsrep_cluster_status"] == "Primary"
        lab.start_node("node3")
        all_promoted(lab)
        acked = w.stop()
        assert lost(lab, acked, "node3") == [] and lost(lab, acked, "node1") == []
    finally:
        w.stop()
        heal(lab)


def test_all_killed_power_loss(galera3):
    lab = galera3
    w = writer(lab, "node2")
    try:
        node, seconds, acked = gl.power_loss(lab, w)
        print(f"\nall killed -> Primary accepting writes on {node}: {seconds:.1f} s")
        (lab.tmp / "recovery-seconds.txt").write_text(f"{seconds:.1f}\n")
        assert lost(lab, acked, node) == []
        assert_nothing_lost(lab, acked)
    finally:
        w.stop()
        heal(lab)


def test_two_killed_survivor_waits(galera3):
    lab = galera3
    w = writer(lab, "node1")
    try:
        lab.kill_node("node2")
        lab.kill_node("node3")
        acked = set()
        never_primary_after = time.monotonic() + 10
        lab.wait_for(lambda: gl.wsrep(lab, "node1").get("wsrep_cluster_status", "") != "Primary" or None, 30,
                     "node1 to lose the Primary component")
        acked = w.stop()
        never_primary(lab, "node1", max(5.0, never_primary_after - time.monotonic() + 10))
        assert gl.roles(lab, node="node1").get("node1") != "Promoted"
        for node in ("node2", "node3"):
            lab.start_node(node, wait=False)
        node, _ = gl.writable(lab, NODES)
        assert_nothing_lost(lab, acked)
    finally:
        w.stop()
        heal(lab)


def test_fenced_node_that_left_earlier_is_left_out(galera3):
    """node3 dies and is fenced; node1+node2 go on without it, then die too: they recover without node3."""
    lab = galera3
    w = writer(lab, "node1")
    try:
        lab.kill_node("node3")
        lab.run("node1", ["stonith_admin", "--confirm=node3"])  # the operator checked: node3 is off
        lab.wait_for(lambda: gl.wsrep(lab, "node1").get("wsrep_cluster_size") == "2" or None, 30,
                     "node1+node2 to form a Primary view without node3")
        fenced = max(gl.fencings(lab, "node3"))
        # Pacemaker keeps fencing history in memory only: the survivors' agents copy it into the CIB
        lab.wait_for(lambda: (gl.recorded_fencing(lab, "node3") or 0) >= int(fenced) or None, 30,
                     "the survivors to record node3's fencing")
        before = len(w.acked())
        w.wait_for(before + 30, timeout=60)
        for node in ("node1", "node2"):
            lab.kill_node(node)
        acked = w.stop()
        for node in ("node1", "node2"):
            lab.start_node(node, wait=False)
        node, _ = gl.writable(lab, ["node1", "node2"])
        assert lost(lab, acked, node) == []
        assert gl.roles(lab).get("node3") is None
    finally:
        w.stop()
        # node3's recorded fencing stays in the CIB: the next scenario checks that an old one excuses nobody
        heal(lab)
    for other in NODES:
        assert lost(lab, acked, other) == []


def test_all_killed_one_never_returns_waits_then_override(galera3):
    """node3 (in the last Primary view) never returns: the others wait and say why; the override proceeds.

    node3 also carries an old fencing (from the previous scenario, or made here): it was fenced, came back
    and rejoined before this outage, so that fencing must not excuse it now.
    """
    lab = galera3
    if gl.recorded_fencing(lab, "node3") is None:
        lab.kill_node("node3")
        lab.run("node1", ["stonith_admin", "--confirm=node3"])
        lab.wait_for(lambda: gl.recorded_fencing(lab, "node3"), 30, "the survivors to record node3's fencing")
        lab.start_node("node3")
        all_promoted(lab)
    old_fencing = gl.recorded_fencing(lab, "node3")
    w = writer(lab, "node1")
    try:
        for node in NODES:
            lab.kill_node(node)
        acked = w.stop()
        for node in ("node1", "node2"):
            lab.start_node(node, wait=False)
        lab.wait_online(120, nodes=["node1", "node2"])
        lab.wait_for(lambda: gl.attribute(lab, "node1", "galera-bootstrap-wait") or None, 60, "a wait reason")
        time.sleep(10)
        assert not any(r == "Promoted" for r in gl.roles(lab).values())
        reason = gl.attribute(lab, "node1", "galera-bootstrap-wait")
        assert "waiting for node3" in reason, reason
        view_time = min(int(gl.attribute(lab, n, "galera-last-view-time")) for n in ("node1", "node2"))
        # node3 rejoined well after that fencing (more than view_change_time before the views): it must not count
        assert old_fencing < view_time - 12, (old_fencing, view_time)
        assert "not recorded as fenced" in reason, reason
        # the operator checked node3 and forces node2 (the automated --force-safe-to-bootstrap)
        proc = lab.run("node1", ["attrd_updater", "-n", "galera-force-bootstrap", "-U", "1", "-N", "node2"])
        assert proc.returncode == 0, proc.stderr
        node, _ = gl.writable(lab, ["node2", "node1"])
        # writes are accepted while the promote action is still finishing ("Promoting"): wait for its end
        lab.wait_for(lambda: gl.roles(lab).get("node2") == "Promoted" or None, 120, "node2 Promoted")
        assert lost(lab, acked, node) == []
        assert gl.attribute(lab, "node2", "galera-force-bootstrap") is None   # used once, then removed
    finally:
        w.stop()
        heal(lab)
    for other in NODES:
        assert lost(lab, acked, other) == []


def grastate(lab, node):
    """A node's grastate.dat text (host side)."""
    return (lab.data_dir(node) / "galera" / "data" / "grastate.dat").read_text()


@pytest.mark.slow
def test_all_stopped_gracefully_last_bootstraps(galera3):
    """node1, node2, node3 shut down in turn: node3 left last, so it alone may and does bootstrap."""
    lab = galera3
    w = writer(lab, "node3")
    try:
        lab.stop_node("node1")
        w.wait_for(len(w.acked()) + 20)                  # node2+node3 go on
        lab.stop_node("node2")
        # node3 alone has no Pacemaker quorum (no-quorum-policy=stop): its instance is stopped cleanly, or
        # the node shutdown below does it; either way node3 is the last to leave
        lab.stop_node("node3")
        acked = w.stop()
        assert "safe_to_bootstrap: 1" in grastate(lab, "node3")
        for node in ("node1", "node2"):
            assert "safe_to_bootstrap: 0" in grastate(lab, node)
        for node in NODES:
            lab.start_node(node, wait=False)
        node, _ = gl.writable(lab, NODES)
        assert node == "node3" or gl.roles(lab).get("node3") == "Promoted"
        assert_nothing_lost(lab, acked)
    finally:
        w.stop()
        heal(lab)


@pytest.mark.slow
def test_one_and_two_stopped_gracefully(galera3):
    """node3 then node2 shut down: the rest goes on; when they return, they rejoin without loss."""
    lab = galera3
    w = writer(lab, "node1")
    try:
        lab.stop_node("node3")
        w.wait_for(len(w.acked()) + 20)                  # one stopped: node1+node2 go on
        assert gl.wsrep(lab, "node1")["wsrep_cluster_size"] == "2"
        lab.stop_node("node2")
        # Galera keeps node1 Primary after graceful leaves, but Pacemaker has no quorum with one node of three
        # (no-quorum-policy=stop): it stops node1's instance cleanly, and node1, the last to leave, may bootstrap
        lab.wait_for(lambda: "safe_to_bootstrap: 1" in grastate(lab, "node1") or None, 90,
                     "node1 stopped cleanly as the last to leave")
        acked = w.stop()
        lab.start_node("node2", wait=False)
        lab.start_node("node3", wait=False)
        node, _ = gl.writable(lab, NODES)
        assert_nothing_lost(lab, acked)
    finally:
        w.stop()
        heal(lab)


@pytest.mark.slow
def test_network_cut_node_never_forms_its_own_primary(galera3):
    lab = galera3
    w = writer(lab, "node1")
    try:
        lab.cut_link("node3")
        end = time.monotonic() + 25
        while time.monotonic() < end:
            assert gl.wsrep(lab, "node3").get("wsrep_cluster_status", "") != "Primary" or time.monotonic() < end - 17
            time.sleep(1)
        w.wait_for(len(w.acked()) + 30, timeout=60)
        lab.restore_link("node3")
        all_promoted(lab)
        acked = w.stop()
        for other in NODES:
            assert lost(lab, acked, other) == []
    finally:
        w.stop()
        heal(lab)
