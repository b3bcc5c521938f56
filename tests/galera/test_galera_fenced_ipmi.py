# SPDX-License-Identifier: GPL-2.0-or-later
"""The fenced-node case with stonith ENABLED: Pacemaker itself fences a cut-off node through fence_ipmi and its
hamail-vbmc BMC (a real power cycle of that node's namespaces), not an operator's `stonith_admin --confirm`.
The survivors record the fencing, lose power too, and recover without the fenced node and without an operator;
when its network returns it joins, nothing acknowledged lost."""

import time

import galera_lab as gl
from hamail_lab import Cluster
from hamail.pacemaker.crmmon import parse_crm_mon

NODES = ["node1", "node2", "node3"]


def test_a_node_fenced_through_ipmi_is_left_out_of_the_recovery(fenced_cluster3, tmp_path):
    lab, _ = fenced_cluster3
    for node in NODES:
        gl.init_node(lab, node)
    gl.ok(lab, ["cibadmin", "--create", "-o", "resources", "-X", gl.resource_xml(NODES)])
    gl.all_promoted(lab, NODES)
    made = gl.sql(lab, "node1", "CREATE DATABASE hamail_test; CREATE TABLE hamail_test.counter (id INT PRIMARY KEY);"
                                "CREATE TABLE hamail_test.probe (id INT AUTO_INCREMENT PRIMARY KEY)")
    assert made.returncode == 0, made.stderr
    w = gl.Writer(lab, "node1", tmp_path / "acks.txt")
    w.wait_for(30)
    try:
        started = time.time() - 5
        lab.cut_link("node3")
        lab.wait_for(lambda: parse_crm_mon(lab.crm_mon_xml("node1")).was_fenced("node3", since=started) or None,
                     120, "node1/node2 to fence node3 through fence_ipmi")
        lab.wait_for(lambda: gl.wsrep(lab, "node1").get("wsrep_cluster_size") == "2" or None, 60,
                     "node1+node2 to form a Primary view without node3")
        # Pacemaker keeps fencing history in memory only: the survivors' agents copy it into the CIB
        lab.wait_for(lambda: gl.recorded_fencing(lab, "node3"), 60, "the survivors to record node3's fencing")
        w.wait_for(len(w.acked()) + 30)
        node, acked, marks = gl.crash_and_recover(lab, w, ["node1", "node2"], timeout=240)
        assert len(gl.bootstrapped_since(lab, marks)) == 1
    finally:
        w.stop()
    # node3's network returns: it joins. The BMCs power-cycle node3 from their own processes (its fencing, the
    # restarted survivors' startup fencing, maybe again when it rejoins): the lab's state is read afresh.
    Cluster.load(lab.workdir).restore_link("node3")

    def joined():
        """The lab once all three run Promoted, Synced, in one component; else None."""
        fresh = Cluster.load(lab.workdir)
        if not all(fresh.is_running(n) for n in NODES):
            return None
        if any(gl.roles(fresh, node="node1").get(n) != "Promoted" for n in NODES):
            return None
        status = [gl.wsrep(fresh, n) for n in NODES]
        return fresh if all(s.get("wsrep_local_state_comment") == "Synced" and s.get("wsrep_cluster_size") == "3"
                            for s in status) else None
    lab = lab.wait_for(joined, 300, "node3 back, all three Promoted and Synced")
    assert sorted(acked - gl.committed(lab, "node3")) == []
