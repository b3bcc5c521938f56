# SPDX-License-Identifier: GPL-2.0-or-later
"""The galera promotable clone on the real 3-node lab: the seed's failure scenarios, no acknowledged commit lost.

Where a node is left without Pacemaker quorum and the scenario is about what the agent decides there, the test
sets no-quorum-policy=ignore for its duration: with the lab's "stop", Pacemaker would stop that instance whatever
the agent decided, and the test would prove nothing about the agent.
"""

import shutil
import time

import pytest

import galera_lab as gl

NODES = ["node1", "node2", "node3"]


def all_promoted(lab, timeout=240, nodes=NODES):
    """Wait until every one of nodes runs a Promoted instance that is Primary and Synced, all in one component."""
    gl.all_promoted(lab, nodes, timeout=timeout)


ok = gl.ok


def force_parameter(lab):
    """The force_bootstrap_node parameter of the galera primitive (None when unset)."""
    proc = lab.run(lab.first_running(), ["crm_resource", "-r", "galera", "--get-parameter", "force_bootstrap_node",
                                         "--quiet"])
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None


def heal(lab):
    """Everything back: links, nodes, fencing history, no override left; then all Promoted."""
    lab.heal()
    for node in NODES:
        ok(lab, ["stonith_admin", "--cleanup", f"--history={node}"])
        ok(lab, ["attrd_updater", "-n", "galera-force-bootstrap", "-D", "-N", node])
    if force_parameter(lab) is not None:  # a failed run's override would force that node at the next outage
        ok(lab, ["crm_resource", "-r", "galera", "--delete-parameter", "force_bootstrap_node"])
    ok(lab, ["crm_resource", "--cleanup", "-r", "galera-clone"])
    all_promoted(lab)


def assert_nothing_lost(lab, acked):
    """Every instance Promoted again, and every acknowledged id present on every node."""
    all_promoted(lab)
    for node in NODES:
        assert lost(lab, acked, node) == []


def lost(lab, acked, node):
    """Acknowledged ids missing on node."""
    return sorted(acked - gl.committed(lab, node))


def wait_reasons(lab, nodes, via=None, saying=""):
    """Wait until every one of nodes published why it waits (<rsc>-bootstrap-wait) and says `saying`; {node: reason}.

    A reason may name more nodes at first (those whose instance has not reported its position yet), so the
    test waits for the settled one instead of reading the first. Meanwhile none of them may run a Primary.
    """
    seen = {}

    def published():
        for node in nodes:
            assert not gl.primary(lab, node), f"{node} formed a Primary component instead of waiting"
        seen.update({n: gl.attribute(lab, n, "galera-bootstrap-wait", via=via) for n in nodes})
        return dict(seen) if all(r and saying in r for r in seen.values()) else None
    try:
        return lab.wait_for(published, 120, f"{nodes} to publish why they wait, saying {saying!r}")
    except RuntimeError as exc:  # the lab's timeout (LabError): show what they said instead
        raise AssertionError(f"{exc}; last published: {seen}") from exc


@pytest.fixture(scope="module")
def galera3(lab3, tmp_path_factory):
    """The clone running Promoted on all three nodes with a counter table."""
    lab = lab3
    gl.remove_clone(lab)
    gl.remove_clone(lab, "gal2-clone")  # the two-node scenarios' clone, if a run of them was aborted
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


def full_status(lab, node):
    """hamail-galera status on node once the Promoted monitors have noticed that all three are back (they
    withdraw <rsc>-cluster-members): (exit status, document)."""
    def full():
        rc, doc, _ = gl.status(lab, node)
        return (rc, doc) if doc and doc["primary"] and doc["primary"]["members"] == "3 of 3" else None
    return lab.wait_for(full, 30, f"hamail-galera status on {node} to show a Primary of 3 of 3")


def test_status_from_every_node_while_the_primary_runs(galera3):
    """hamail-galera status on each node: all Promoted in a Primary of 3 of 3, exit 0; an unknown resource is one
    line and exit 2; the clone's id names the same resource."""
    lab = galera3
    for node in NODES:
        rc, doc = full_status(lab, node)
        assert rc == 0
        assert doc["read_on"] == node and doc["resource"] == "galera" and doc["clone"] == "galera-clone"
        assert doc["primary"] == {"nodes": NODES, "members": "3 of 3"}
        assert doc["decision"]["action"] == "join" and doc["overrides"] == [] and doc["ends_wait"] == []
        assert [(r["node"], r["pacemaker"], r["role"]) for r in doc["nodes"]] == [(n, "online", "Promoted")
                                                                                    for n in NODES]
    rc, doc, err = gl.status(lab, "node2", "galera-clone")
    assert rc == 0 and doc["resource"] == "galera"
    rc, doc, err = gl.status(lab, "node3", "nosuch")
    assert (rc, doc, err) == (2, None, "hamail-galera: no resource nosuch in the CIB\n")


def test_one_node_killed(galera3):
    """node3 dies: node1+node2 go on as a 2-node Primary; node3 returns and joins it (nobody bootstraps)."""
    lab = galera3
    w = writer(lab, "node1")
    try:
        lab.kill_node("node3")
        lab.wait_for(lambda: gl.primary(lab, "node1") and gl.wsrep(lab, "node1").get("wsrep_cluster_size") == "2",
                     60, "node1+node2 to re-form a 2-node Primary component")
        # what seed 001 has operators check by hand, shown on the survivors
        lab.wait_for(lambda: all(gl.attribute(lab, n, "galera-cluster-members") == "2 of 3" for n in ("node1", "node2"))
                     or None, 30, "the survivors to show 2 of 3 members")
        rc, doc, _ = gl.status(lab, "node2")
        assert rc == 0 and doc["primary"] == {"nodes": ["node1", "node2"], "members": "2 of 3"}
        assert doc["decision"]["action"] == "join" and doc["nodes"][2]["pacemaker"] in ("offline", "unclean")
        before = len(w.acked())
        w.wait_for(before + 30, timeout=60)
        marks = gl.log_marks(lab, NODES)
        lab.start_node("node3")
        all_promoted(lab)
        acked = w.stop()
        assert gl.bootstrapped_since(lab, marks) == []
        lab.wait_for(lambda: all(gl.attribute(lab, n, "galera-cluster-members") is None for n in NODES) or None,
                     30, "the members attribute to go once all three are back")
        for node in NODES:
            assert lost(lab, acked, node) == []
    finally:
        w.stop()
        heal(lab)


def test_all_killed_power_loss(galera3):
    """All three lose power: exactly one bootstraps by itself, the others join it, nothing acknowledged lost."""
    lab = galera3
    w = writer(lab, "node2")
    marks = gl.log_marks(lab, NODES)
    history = gl.wsrep(lab, "node1")["wsrep_cluster_state_uuid"]
    try:
        node, seconds, acked = gl.power_loss(lab, w)
        print(f"\nall killed -> Primary accepting writes on {node}: {seconds:.1f} s")
        (lab.tmp / "recovery-seconds.txt").write_text(f"{seconds:.1f}\n")
        assert lost(lab, acked, node) == []
        assert_nothing_lost(lab, acked)
        assert len(gl.bootstrapped_since(lab, marks)) == 1
        rc, doc = full_status(lab, "node3")
        assert rc == 0 and doc["primary"] == {"nodes": NODES, "members": "3 of 3"}
        # every node reported and nobody waits any more
        assert all(r["waiting"] is None and r["role"] == "Promoted" for r in doc["nodes"]), doc["nodes"]
        # the history goes on (the others joined by incremental transfer, not a full copy of a new one)
        assert {gl.wsrep(lab, n)["wsrep_cluster_state_uuid"] for n in NODES} == {history}
    finally:
        w.stop()
        heal(lab)


def kill_all_at_one_position(lab):
    """Power loss once every node has applied the same last commit: all recover the same position, so the
    address order makes node1 the bootstrap node."""
    seen = {}

    def same():
        """Whether every node reports the same last committed seqno."""
        seen.update({n: gl.wsrep(lab, n).get("wsrep_last_committed") for n in NODES})
        return len(set(seen.values())) == 1 and None not in seen.values() or None
    try:
        lab.wait_for(same, 60, "every node to apply the same last commit")
    except Exception as exc:
        raise AssertionError(f"{exc}: last seen {seen}") from None
    for node in NODES:
        lab.kill_node(node)


def test_unfinished_state_transfer_is_never_the_bootstrap_node(galera3):
    """Power lost while node1 was receiving a state transfer (the SST script's sst_in_progress marker in its
    datadir): all three hold the same position, so address order would pick node1; its partial copy must not
    start the cluster. node2 bootstraps, node1 joins with a full transfer, which removes the marker."""
    lab = galera3
    kill_all_at_one_position(lab)
    marker = lab.data_dir("node1") / "galera" / "data" / "sst_in_progress"
    marker.touch()
    shutil.chown(marker, "mysql", "mysql")
    marks = gl.log_marks(lab, NODES)
    try:
        for node in NODES:
            lab.start_node(node, wait=False)
        all_promoted(lab)
        assert gl.bootstrapped_since(lab, marks) == ["node2"]
        assert not marker.exists()  # the full state transfer into node1 finished
        assert gl.committed(lab, "node1") == gl.committed(lab, "node2")
    finally:
        marker.unlink(missing_ok=True)
        heal(lab)


def bootstrap_attempts(lab, node, marks):
    """How often node's server tried to start a new Primary component since the marks."""
    with open(lab.data_dir(node) / "galera" / "error.log", "rb") as handle:
        handle.seek(marks[node])
        return handle.read().count(gl.NEW_GROUP.encode())


def block_port(lab, node, port):
    """A listener holding node's Galera address:port (so its server cannot start); its pid inside the node."""
    program = ("import socket, time\n"
               f"s = socket.create_server(({lab.address(node)!r}, {port}))\n"
               "time.sleep(600)\n")
    proc = lab.run(node, ["sh", "-c", 'python3 -c "$0" </dev/null >/dev/null 2>&1 & echo $!', program])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_a_bootstrap_that_keeps_failing_hands_over_to_a_node_with_the_same_data(galera3):
    """After a power loss all three hold the same position and node1 (first in address order) is chosen, but
    its server cannot start (its Galera port is taken). After its second failed bootstrap, node2, holding the
    same data, bootstraps instead; once node1 is fixed it joins, and the failure count is gone."""
    lab = galera3
    kill_all_at_one_position(lab)
    marks = gl.log_marks(lab, NODES)
    blocker = None
    try:
        lab.start_node("node1", wait=False)
        blocker = block_port(lab, "node1", 4567)
        for node in ("node2", "node3"):
            lab.start_node(node, wait=False)
        lab.wait_for(lambda: gl.primary(lab, "node2") and gl.primary(lab, "node3") or None, 300,
                     "node2 and node3 to form a Primary component without node1")
        assert gl.bootstrapped_since(lab, marks) == ["node1", "node2"]
        assert bootstrap_attempts(lab, "node1", marks) == 2  # recovery.BOOTSTRAP_ATTEMPTS, then node2 took over
        ok(lab, ["kill", blocker], "node1")
        blocker = None
        # Pacemaker recovers the failed instance by itself (migration-threshold is INFINITY); a cleanup here would
        # race with that recovery's start (CI saw the start fail "No such device" and the node banned)
        all_promoted(lab)
        lab.wait_for(lambda: all(gl.attribute(lab, n, "galera-bootstrap-failures") is None for n in NODES) or None,
                     60, "the failure count to go once a Primary exists")
    finally:
        if blocker is not None and lab.is_running("node1"):
            lab.run("node1", ["kill", blocker])
        heal(lab)


def test_two_killed_survivor_waits(galera3):
    """node2 and node3 die unfenced: node1, alone, cannot know they hold nothing newer, so its agent waits.

    no-quorum-policy=ignore: Pacemaker recovers node1's failed instance instead of stopping it, and the agent's
    decision alone keeps node1 from bootstrapping a Primary of its own.
    """
    lab = galera3
    w = writer(lab, "node1")
    try:
        with gl.quorum_policy(lab, "ignore"):
            lab.kill_node("node2")
            lab.kill_node("node3")
            lab.wait_for(lambda: not gl.primary(lab, "node1"), 60, "node1 to lose the Primary component")
            acked = w.stop()
            reason = wait_reasons(lab, ["node1"], saying="waiting for node2, node3")["node1"]
            assert "waiting for node2, node3" in reason and "not recorded as fenced" in reason, reason
            rc, doc, _ = gl.status(lab, "node1")
            assert rc == 1 and doc["decision"]["action"] == "wait"
            assert doc["decision"]["reason"][:500] == reason  # the agent's own decision, in its words
            view = doc["nodes"][0]["last_view"]
            assert view["members"] == 3
            # both were in node1's last Primary view: fencing them would not end the wait, their return would
            assert not any("stonith_admin" in (w["command"] or "") for w in doc["ends_wait"])
            assert {w["how"].split()[0] for w in doc["ends_wait"]} == {"node2", "node3"}
            [override] = doc["overrides"]
            assert override["node"] == "node1" and override["allowed"]
            assert (f"2 of the 3 members of the last Primary view ({view['seq']}) are not reporting (missing: "
                    f"node2, node3): commits acknowledged after view {view['seq']} may exist only there"
                    ) in override["risks"], override["risks"]
            gl.never_primary(lab, ["node1"], gl.HOLD_S)
            assert gl.roles(lab, node="node1").get("node1") == "Unpromoted"  # recovered, started, not promoted
            marks = gl.log_marks(lab, NODES)
            for node in ("node2", "node3"):
                lab.start_node(node, wait=False)
            gl.writable(lab, NODES)
            assert_nothing_lost(lab, acked)
            assert len(gl.bootstrapped_since(lab, marks)) == 1
    finally:
        w.stop()
        heal(lab)


def fence_node3_while_writing(lab, w):
    """node3 dies and is fenced (the operator confirms it is off); node1+node2 go on and commit more."""
    lab.kill_node("node3")
    ok(lab, ["stonith_admin", "--confirm=node3"], "node1")
    lab.wait_for(lambda: gl.wsrep(lab, "node1").get("wsrep_cluster_size") == "2" or None, 30,
                 "node1+node2 to form a Primary view without node3")
    fenced = max(gl.fencings(lab, "node3"))
    # Pacemaker keeps fencing history in memory only: the survivors' agents copy it into the CIB
    lab.wait_for(lambda: (gl.recorded_fencing(lab, "node3") or 0) >= int(fenced) or None, 30,
                 "the survivors to record node3's fencing")
    before = len(w.acked())
    w.wait_for(before + 30, timeout=60)


@pytest.mark.parametrize("how", ["both crash", "node1 crashes, node2 is stopped cleanly"])
def test_fenced_node_that_left_earlier_is_left_out(galera3, how):
    """node3 dies and is fenced; node1+node2 go on without it, then stop: they recover without node3.

    "both crash": node1 and node2 die. "node1 crashes, node2 is stopped cleanly": node2, alone without quorum,
    is stopped by Pacemaker (no-quorum-policy=stop) and Galera removes its gvwstate.dat at that clean shutdown;
    the view the agent kept at the stop still proves node3 left before the last Primary view.
    """
    lab = galera3
    w = writer(lab, "node1")
    try:
        fence_node3_while_writing(lab, w)
        if how == "both crash":
            for node in ("node1", "node2"):
                lab.kill_node(node)
            acked = w.stop()
            booted = ("node1", "node2")
        else:
            lab.kill_node("node1")
            acked = w.stop()
            gvwstate = lab.data_dir("node2") / "galera" / "data" / "gvwstate.dat"
            lab.wait_for(lambda: "node2" not in gl.roles(lab, node="node2") and not gvwstate.exists() or None,
                         120, "node2's instance to be stopped cleanly (gvwstate.dat removed)")
            booted = ("node1",)
        marks = gl.log_marks(lab, ["node1", "node2"])
        for node in booted:
            lab.start_node(node, wait=False)
        node, _ = gl.writable(lab, ["node1", "node2"], timeout=180)
        assert lost(lab, acked, node) == []
        # the recovered cluster is node1+node2, started by one of them, while node3 is still off
        all_promoted(lab, nodes=["node1", "node2"])
        assert len(gl.bootstrapped_since(lab, marks)) == 1
        assert not lab.is_running("node3")
    finally:
        w.stop()
        # node3's recorded fencing stays in the CIB: the next scenario checks that an old one excuses nobody
        heal(lab)
    for other in NODES:
        assert lost(lab, acked, other) == []


def test_fenced_node_stays_left_out_after_a_rolling_restart(galera3):
    """node3 is fenced; then node2's and node1's servers restart one after the other (new gcomm processes, new
    Primary views, well after the fencing); then both crash. They recover without node3 and without an operator.

    The proof compares no clock of a survivor with the fencer's: node3's fencing is newer than the one it had come
    back from when it last joined (a wall-clock cutoff of "fenced no earlier than the survivors' newest view"
    waits here: the restarts made newer views).
    """
    lab = galera3
    w = writer(lab, "node1")
    try:
        fence_node3_while_writing(lab, w)
        for node in ("node2", "node1"):
            joined = gl.fencing_at_last_join(lab, node)
            gl.crash_server(lab, node)
            # Pacemaker recovers the instance: it rejoins (and notes so) with a new gcomm process
            lab.wait_for(lambda: gl.wsrep(lab, node).get("wsrep_cluster_size") == "2" or None, 180,
                         f"{node}'s new server to join")
            all_promoted(lab, nodes=["node1", "node2"])
            assert gl.fencing_at_last_join(lab, node) == joined  # nobody fenced it: what it noted is unchanged
        w.wait_for(len(w.acked()) + 30, timeout=60)
        _, acked, marks = gl.crash_and_recover(lab, w, ["node1", "node2"])
        all_promoted(lab, nodes=["node1", "node2"])
        assert len(gl.bootstrapped_since(lab, marks)) == 1
        assert not lab.is_running("node3")
    finally:
        w.stop()
        heal(lab)
    for other in NODES:
        assert lost(lab, acked, other) == []


def kill_all_keep_node3_off(lab, w):
    """Kill all three under the writer, boot node1 and node2 only; the acknowledged ids."""
    for node in NODES:
        lab.kill_node(node)
    acked = w.stop()
    for node in ("node1", "node2"):
        lab.start_node(node, wait=False)
    lab.wait_online(120, nodes=["node1", "node2"])
    return acked


def test_all_killed_one_never_returns_waits_then_override(galera3):
    """node3 (in the last Primary view) never returns: the others wait and say why; the override proceeds.

    node3 also carries an old fencing (from the previous scenario, or made here): it was fenced, came back
    and rejoined before this outage, so that fencing must not excuse it now.
    """
    lab = galera3
    if gl.recorded_fencing(lab, "node3") is None:
        lab.kill_node("node3")
        ok(lab, ["stonith_admin", "--confirm=node3"], "node1")
        lab.wait_for(lambda: gl.recorded_fencing(lab, "node3"), 30, "the survivors to record node3's fencing")
        lab.start_node("node3")
        all_promoted(lab)
    w = writer(lab, "node1")
    try:
        acked = kill_all_keep_node3_off(lab, w)
        reason = wait_reasons(lab, ["node1"], saying="waiting for node3 ")["node1"]
        gl.never_primary(lab, ["node1", "node2"], gl.HOLD_S)
        assert "waiting for node3" in reason, reason
        # node3 came back from that fencing and joined: it noted so, and the fencing excuses it no more
        assert gl.recorded_fencing(lab, "node3") <= gl.fencing_at_last_join(lab, "node3")
        assert "not recorded as fenced" in reason, reason
        # the operator asks hamail-galera status (on node2, whose server is not running): the same decision, and
        # what an override of each node would risk
        rc, doc, _ = gl.status(lab, "node2")
        assert rc == 1 and doc["decision"]["action"] == "wait" and doc["decision"]["reason"][:500] == reason
        rows = {r["node"]: r for r in doc["nodes"]}
        assert rows["node3"]["pacemaker"] in ("offline", "unclean") and rows["node3"]["seqno"] is None
        assert rows["node3"]["fenced"]["counts"] is False  # its old fencing is one it came back from
        seq = rows["node1"]["last_view"]["seq"]
        offers = {o["node"]: o for o in doc["overrides"]}
        assert set(offers) == {"node1", "node2"}
        for o in offers.values():
            if o["allowed"]:
                assert (f"node3 was in the last Primary view ({seq}): commits acknowledged after view {seq} may "
                        "exist only there") in o["risks"], o["risks"]
            else:  # behind the other node: refused, with the numbers
                other = "node1" if o["node"] == "node2" else "node2"
                behind = rows[other]["seqno"] - rows[o["node"]]["seqno"]
                assert f"{o['node']} is {behind:,} transaction" in o["refused"], o["refused"]
                assert f"behind {other}'s seqno {rows[other]['seqno']:,}" in o["refused"], o["refused"]
        # the operator checked node3 and applies the override printed for node2 (or node1 when node2 is behind)
        forced = offers["node2"] if offers["node2"]["allowed"] else offers["node1"]
        other = "node1" if forced["node"] == "node2" else "node2"
        assert forced["allowed"] and forced["command"].startswith("attrd_updater -n galera-force-bootstrap")
        marks = gl.log_marks(lab, ["node1", "node2"])
        ok(lab, forced["command"].split(), "node1")
        node, _ = gl.writable(lab, [forced["node"], other])
        # writes are accepted while the promote action is still finishing ("Promoting"): wait for its end
        lab.wait_for(lambda: gl.roles(lab).get(forced["node"]) == "Promoted" or None, 120, "the forced node Promoted")
        assert lost(lab, acked, node) == []
        assert gl.bootstrapped_since(lab, marks) == [forced["node"]]  # what the status said the override does
        assert gl.attribute(lab, forced["node"], "galera-force-bootstrap") is None   # used once, then removed
    finally:
        w.stop()
        heal(lab)
    for other in NODES:
        assert lost(lab, acked, other) == []


def test_force_bootstrap_node_parameter(galera3):
    """As above, with the resource parameter force_bootstrap_node: exactly that node bootstraps, the other joins.

    The writer runs on node2, the node forced: its own acknowledged commits are on its disk, so the forced
    Primary holds every acknowledged write of what is available (node3 stays off).
    """
    lab = galera3
    w = writer(lab, "node2")
    try:
        acked = kill_all_keep_node3_off(lab, w)
        reasons = wait_reasons(lab, ["node1", "node2"], saying="waiting for node3 ")
        gl.never_primary(lab, ["node1", "node2"], gl.HOLD_S)
        for node, reason in reasons.items():
            assert "waiting for node3" in reason and "not recorded as fenced" in reason, (node, reason)
        marks = gl.log_marks(lab, ["node1", "node2"])
        ok(lab, ["crm_resource", "-r", "galera", "--set-parameter", "force_bootstrap_node",
                 "--parameter-value", "node2"], "node1")
        gl.writable(lab, ["node2", "node1"], timeout=180)
        all_promoted(lab, nodes=["node1", "node2"])
        assert gl.bootstrapped_since(lab, marks) == ["node2"]
        assert not lab.is_running("node3")
        for node in ("node1", "node2"):
            assert lost(lab, acked, node) == []
        # with all three back the cluster runs as after any recovery; the override is removed (a reload)
        lab.start_node("node3")
        all_promoted(lab)
        ok(lab, ["crm_resource", "-r", "galera", "--delete-parameter", "force_bootstrap_node"])
        assert force_parameter(lab) is None
    finally:
        w.stop()
        heal(lab)
    for other in NODES:
        assert lost(lab, acked, other) == []


def server_pids(lab):
    """{node: mariadbd's pid} on every node."""
    return {n: lab.run(n, ["cat", f"{gl.RUN}/mysqld.pid"]).stdout.strip() for n in NODES}


def test_a_force_bootstrap_node_left_in_place_never_wins_over_newer_data(galera3):
    """force_bootstrap_node=node2 is set and forgotten: setting and removing it restart nothing (reload-agent),
    and at the next outage, where node2 fell behind, the node holding the newest data bootstraps, not node2."""
    lab = galera3
    w = None
    try:
        pids = server_pids(lab)
        ok(lab, ["crm_resource", "-r", "galera", "--set-parameter", "force_bootstrap_node",
                 "--parameter-value", "node2"], "node1")
        time.sleep(2 * gl.MONITOR_PROMOTED_S)  # a restart would show within a monitor interval
        all_promoted(lab)
        assert server_pids(lab) == pids  # reloaded, not restarted
        w = writer(lab, "node1")
        # node2 comes back alone first: its agent decides, not quorum (set before node2 goes: it keeps its CIB)
        with gl.quorum_policy(lab, "ignore"):
            lab.kill_node("node2")
            lab.wait_for(lambda: gl.primary(lab, "node1") and gl.wsrep(lab, "node1").get("wsrep_cluster_size") == "2"
                         or None, 60, "node1+node3 to go on without node2")
            w.wait_for(len(w.acked()) + 30, timeout=60)  # node1 and node3 now hold commits node2 never saw
            marks = gl.log_marks(lab, NODES)
            for node in ("node1", "node3"):
                lab.kill_node(node)
            acked = w.stop()
            lab.start_node("node2", wait=False)
            wait_reasons(lab, ["node2"], via="node2", saying="waiting for node1, node3")
            gl.never_primary(lab, ["node2"], gl.HOLD_S)  # the forgotten override would bootstrap node2 here
            rc, doc, _ = gl.status(lab, "node2")
            assert rc == 1 and doc["force_bootstrap_node"] == {"node": "node2", "spent": True}
            assert "force_bootstrap_node=node2 is ignored" in doc["decision"]["reason"], doc["decision"]
            for node in ("node1", "node3"):
                lab.start_node(node, wait=False)
            all_promoted(lab)
        [chosen] = gl.bootstrapped_since(lab, marks)
        assert chosen in ("node1", "node3"), chosen  # the newest data, whatever the forgotten override said
        for node in NODES:
            assert lost(lab, acked, node) == []
        pids = server_pids(lab)
        ok(lab, ["crm_resource", "-r", "galera", "--delete-parameter", "force_bootstrap_node"], "node1")
        time.sleep(2 * gl.MONITOR_PROMOTED_S)
        all_promoted(lab)
        assert server_pids(lab) == pids
    finally:
        if w is not None:
            w.stop()
        heal(lab)


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
        marks = gl.log_marks(lab, NODES)
        for node in NODES:
            lab.start_node(node, wait=False)
        gl.writable(lab, NODES)
        assert_nothing_lost(lab, acked)
        assert gl.bootstrapped_since(lab, marks) == ["node3"]
    finally:
        w.stop()
        heal(lab)


def grastate(lab, node):
    """A node's grastate.dat text (host side)."""
    return (lab.data_dir(node) / "galera" / "data" / "grastate.dat").read_text()


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
        marks = gl.log_marks(lab, NODES)
        lab.start_node("node2", wait=False)
        lab.start_node("node3", wait=False)
        gl.writable(lab, NODES)
        assert_nothing_lost(lab, acked)
        assert gl.bootstrapped_since(lab, marks) == ["node1"]
    finally:
        w.stop()
        heal(lab)


@pytest.mark.slow
def test_network_cut_node_never_forms_its_own_primary(galera3):
    """node3 is cut off: node1+node2 go on; node3's agent, alone and recovered by Pacemaker, waits; it rejoins.

    no-quorum-policy=ignore: node3's partition recovers its failed instance rather than stopping it, so only
    the agent's decision keeps node3 from a Primary component of its own (split brain).
    """
    lab = galera3
    w = writer(lab, "node1")
    try:
        with gl.quorum_policy(lab, "ignore"):
            lab.cut_link("node3")
            lab.wait_for(lambda: not gl.primary(lab, "node3"), 60, "node3 to lose the Primary component")
            lab.wait_for(lambda: gl.primary(lab, "node1") and gl.wsrep(lab, "node1").get("wsrep_cluster_size") == "2",
                         60, "node1+node2 to re-form a 2-node Primary component")
            reason = wait_reasons(lab, ["node3"], via="node3", saying="waiting for node1, node2")["node3"]
            assert "waiting for node1, node2" in reason, reason
            gl.never_primary(lab, ["node3"], gl.HOLD_S)
            assert gl.roles(lab, node="node3").get("node3") == "Unpromoted"
            w.wait_for(len(w.acked()) + 30, timeout=60)  # the majority kept working all along
            marks = gl.log_marks(lab, NODES)
            lab.restore_link("node3")
            all_promoted(lab)
            acked = w.stop()
            assert gl.bootstrapped_since(lab, marks) == []
            for other in NODES:
                assert lost(lab, acked, other) == []
    finally:
        w.stop()
        heal(lab)
