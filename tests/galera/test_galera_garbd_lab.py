# SPDX-License-Identifier: GPL-2.0-or-later
"""Seed 002's topology on the 3-node lab: two database nodes (node1, node2: the galera clone) and an arbitrator
(ocf:hamail:garbd on node3). garbd holds no data but is a member of every Primary view; the recovery must know
it for what it is, or any outage that leaves one database node missing waits for an operator."""

import pytest

import galera_lab as gl

DB = ["node1", "node2"]
RSC, ARB = "galg", "arb"
GARBD_LOG = "/var/lib/hamail-lab-node/garbd.log"  # inside node3's private directory
GARBD_OPTIONS = ("gmcast.listen_addr=tcp://0.0.0.0:4567;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT8S;"
                 "evs.install_timeout=PT7.5S;evs.keepalive_period=PT0.5S;evs.inactive_check_period=PT0.5S")

ok = gl.ok


def garbd_xml() -> str:
    """The arbitrator primitive, as seed 002 runs it beside the database nodes."""
    values = {"wsrep_cluster_address": "gcomm://node1,node2", "wsrep_cluster_name": "hamail", "log": GARBD_LOG,
              "pid": "/run/hamail-garbd.pid", "options": GARBD_OPTIONS}
    attrs = "".join(f'<nvpair id="{ARB}-ia-{k}" name="{k}" value="{v}"/>' for k, v in values.items())
    return (f'<primitive id="{ARB}" class="ocf" provider="hamail" type="garbd">'
            f'<instance_attributes id="{ARB}-ia">{attrs}</instance_attributes><operations>'
            f'<op id="{ARB}-start" name="start" interval="0" timeout="60s"/>'
            f'<op id="{ARB}-monitor" name="monitor" interval="5s" timeout="20s"/></operations></primitive>')


def members(lab, node="node1"):
    """wsrep_cluster_size seen on node (None when its server does not answer)."""
    return gl.wsrep(lab, node).get("wsrep_cluster_size")


def arbitrating(lab):
    """All Promoted on the database nodes and garbd in their component (3 members)."""
    gl.all_promoted(lab, DB, RSC, 240, members=3)


@pytest.fixture(scope="module")
def with_garbd(lab3, tmp_path_factory):
    """galg Promoted on node1+node2 (never node3), garbd on node3 (never elsewhere), after a Promoted instance."""
    lab = lab3
    for clone in ("galera-clone", "hb-clone", "gal2-clone", f"{RSC}-clone"):
        gl.remove_clone(lab, clone)
    for node in DB:
        gl.init_node(lab, node)
    ok(lab, ["cibadmin", "--modify", "--allow-create", "--scope", "configuration", "-X",
             f"<configuration><resources>{gl.resource_xml(DB, RSC)}</resources><constraints>"
             f'<rsc_location id="{RSC}-not-node3" rsc="{RSC}-clone" node="node3" score="-INFINITY"/>'
             "</constraints></configuration>"], "node1")
    gl.all_promoted(lab, DB, RSC, 240)
    # garbd only joins a Primary component: added once there is one (an order constraint would also stop it
    # whenever the clone's instances are demoted)
    located = (f'<rsc_location id="{ARB}-on-node3" rsc="{ARB}" node="node3" score="INFINITY"/>'
               + "".join(f'<rsc_location id="{ARB}-not-{n}" rsc="{ARB}" node="{n}" score="-INFINITY"/>' for n in DB))
    ok(lab, ["cibadmin", "--modify", "--allow-create", "--scope", "configuration", "-X",
             f"<configuration><resources>{garbd_xml()}</resources><constraints>{located}</constraints>"
             "</configuration>"], "node1")
    arbitrating(lab)
    proc = gl.sql(lab, "node1", "CREATE DATABASE IF NOT EXISTS hamail_test;"
                  "CREATE TABLE IF NOT EXISTS hamail_test.counter (id INT PRIMARY KEY);"
                  "CREATE TABLE IF NOT EXISTS hamail_test.probe (id INT AUTO_INCREMENT PRIMARY KEY)")
    assert proc.returncode == 0, proc.stderr
    lab.tmp = tmp_path_factory.mktemp("garbd")
    yield lab
    lab.heal()
    node = lab.first_running()
    lab.run(node, ["crm_resource", "-r", ARB, "--meta", "-p", "target-role", "-v", "Stopped"])
    lab.wait_for(lambda: ARB not in lab.run(node, ["crm_resource", "-r", ARB, "--locate"]).stdout or None, 60,
                 "garbd stopped")
    lab.run(node, ["cibadmin", "--delete-all", "--force", "--xpath", f"//constraints/*[contains(@id, '{ARB}-')]"])
    lab.run(node, ["cibadmin", "--delete", "-o", "resources", "-X", f'<primitive id="{ARB}"/>'])
    gl.remove_clone(lab, f"{RSC}-clone")
    for node in lab.nodes:
        for name in (f"{RSC}-fenced-at", f"{RSC}-fenced-at-last-join", "hamail-galera-arbitrator-ids"):
            lab.run(lab.first_running(), ["crm_attribute", "-N", node, "-n", name, "-l", "forever", "-D"])


def test_one_database_node_fenced_then_the_survivors_lose_power_recovers_without_the_arbitrator(with_garbd):
    """node2 dies and is fenced; node1 and garbd stay a Primary component (2 of 3 votes) and commit, node1's
    monitor shows "1 of 2" database nodes and copies node2's fencing into the CIB; then node1 and node3 (garbd)
    lose power, so no fencer remembers node2's fencing. node1's last Primary view holds node1 and garbd: garbd
    recorded its id and node2's fencing is on record, so node1 bootstraps alone (no operator), with every
    acknowledged write, and garbd and node2 join it."""
    lab = with_garbd
    # recorded by garbd's start once it is in the Primary component
    ids = lab.wait_for(lambda: gl.permanent(lab, "node3", "hamail-galera-arbitrator-ids"), 30, "garbd's id")
    assert ids and all(len(i) == 13 for i in ids.split()), ids  # gcomm's short member ids, newest first
    w = gl.Writer(lab, "node1", lab.tmp / "acks.txt", 1)
    try:
        w.wait_for(30)
        lab.kill_node("node2")
        ok(lab, ["stonith_admin", "--confirm=node2"], "node1")
        lab.wait_for(lambda: members(lab) == "2" and gl.primary(lab, "node1") or None, 60,
                     "node1 and garbd to stay a Primary component")
        # garbd is a member of the component, not a database node: node1 is 1 of the 2 database nodes
        lab.wait_for(lambda: gl.attribute(lab, "node1", f"{RSC}-cluster-members") == "1 of 2" or None, 60,
                     "node1 to show 1 of 2 database nodes")
        lab.wait_for(lambda: gl.recorded_fencing(lab, "node2", RSC), 60, "node1 to record node2's fencing")
        # hamail-galera status on node3, where no galera instance runs (the arbitrator's node)
        rc, doc, err = gl.status(lab, "node3")
        assert (rc, err) == (0, ""), err
        assert doc["resource"] == RSC and doc["primary"] == {"nodes": ["node1"], "members": "1 of 2"}
        rows = {r["node"]: r for r in doc["nodes"]}
        assert set(rows) == set(DB) and rows["node1"]["role"] == "Promoted"
        assert rows["node2"]["pacemaker"] in ("offline", "unclean") and rows["node2"]["fenced"]["last"]
        w.wait_for(len(w.acked()) + 30, timeout=60)
        marks = gl.log_marks(lab, ["node1"])
        for node in ("node1", "node3"):
            lab.kill_node(node)
        acked = w.stop()
        for node in ("node1", "node3"):
            lab.start_node(node, wait=False)
        node, _ = gl.writable(lab, ["node1"], timeout=180)
        assert sorted(acked - gl.committed(lab, node)) == []
        assert gl.bootstrapped_since(lab, marks) == ["node1"]
        assert not lab.is_running("node2")
        lab.start_node("node2")
        ok(lab, ["crm_resource", "--cleanup", "-r", ARB])  # its start failed while no Primary component existed
        arbitrating(lab)
        assert sorted(acked - gl.committed(lab, "node2")) == []
    finally:
        w.stop()
        lab.heal()
        ok(lab, ["stonith_admin", "--cleanup", "--history=node2"])
        ok(lab, ["crm_resource", "--cleanup"])
