# SPDX-License-Identifier: GPL-2.0-or-later
"""Formation on the real 3-node lab: once the bootstrap node is Primary, the others are promoted in the next
transition, not at their next Unpromoted monitor."""

import galera_lab as gl

NODES = ["node1", "node2", "node3"]


def test_joiners_are_promoted_without_waiting_for_their_monitor(lab3):
    """The Unpromoted monitor runs once an hour here: only the bootstrap node's promote, which sets the scores
    of the nodes that reported to its decision, can bring the two others in; they join within minutes."""
    lab = lab3
    for clone in ("galera-clone", "gal2-clone", "gal-formation-clone"):
        gl.remove_clone(lab, clone)
    for node in NODES:
        gl.init_node(lab, node)
    marks = gl.log_marks(lab, NODES)
    proc = lab.run("node1", ["cibadmin", "--create", "-o", "resources", "-X",
                             gl.resource_xml(NODES, "gal-formation", unpromoted_interval=3600)])
    assert proc.returncode == 0, proc.stderr
    try:
        gl.all_promoted(lab, NODES, resource="gal-formation", timeout=240)
        assert gl.bootstrapped_since(lab, marks) == ["node1"]
    finally:
        gl.remove_clone(lab, "gal-formation-clone")
