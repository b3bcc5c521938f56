# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:galera in a Pacemaker bundle with container-attribute-target=host, as far as it can be run here
without podman: Pacemaker's own scheduler (crm_simulate on a CIB file) runs a 3-replica bundle on node1-3 with the
galera attributes on the HOSTS, crm_mon renders the result, and the agent's decision inputs are read from it."""

import subprocess

from hamail.agents.galera import cluster
from hamail.agents.galera.agent import PARAMS
from hamail.pacemaker.crmmon import read_cluster_status
from hamail.system.clock import Deadline
from hamail.system.runner import CommandRunner

NODES = ("node1", "node2", "node3")
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def cib(target_host: bool) -> str:
    """Three members, a galera bundle (3 replicas, all may be Promoted), and what galera instances running with the
    attribute target published on the hosts: positions and promotion scores."""
    target = '<nvpair id="gb-cat" name="container-attribute-target" value="host"/>' if target_host else ""
    states = "".join(
        f'<node_state id="{i}" uname="{n}" in_ccm="true" crmd="online" join="member" expected="member">'
        f'<transient_attributes id="{i}"><instance_attributes id="status-{i}">'
        f'<nvpair id="s{i}-score" name="master-galera" value="100"/>'
        f'<nvpair id="s{i}-seqno" name="galera-last-committed" value="{40 + i}"/>'
        f'</instance_attributes></transient_attributes></node_state>' for i, n in enumerate(NODES, 1))
    return (
        '<cib have-quorum="1" crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" '
        'admin_epoch="0"><configuration><crm_config><cluster_property_set id="opts">'
        '<nvpair id="o-st" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>'
        '<nodes>' + "".join(f'<node id="{i}" uname="{n}"/>' for i, n in enumerate(NODES, 1)) + '</nodes>'
        f'<resources><bundle id="galera-bundle"><meta_attributes id="gb-meta">{target}</meta_attributes>'
        '<podman image="localhost/mariadb" replicas="3" promoted-max="3" network="host"/>'
        '<network control-port="3123"/>'
        '<primitive id="galera" class="ocf" provider="hamail" type="galera">'
        '<instance_attributes id="g-ia"><nvpair id="g-addr" name="wsrep_cluster_address" '
        'value="gcomm://node1,node2,node3"/></instance_attributes>'
        '<operations><op id="g-mon" name="monitor" interval="10s" role="Promoted"/></operations>'
        '</primitive></bundle></resources><constraints/></configuration>'
        f'<status>{states}</status></cib>')


def simulated(tmp_path, target_host: bool) -> CommandRunner:
    """Run the scheduler's transitions on the CIB until nothing is left to do; a runner whose Pacemaker tools
    (crm_mon, crm_attribute) read the result."""
    path = tmp_path / "cib.xml"
    path.write_text(cib(target_host))
    for _ in range(8):  # probes, container and guest starts, galera starts, promotions: one transition each
        out = tmp_path / "next.xml"
        proc = subprocess.run(["crm_simulate", "-x", str(path), "-S", "-O", str(out)], capture_output=True,
                              text=True, timeout=60, env={"PATH": PATH})
        assert proc.returncode == 0, proc.stderr
        out.replace(path)
        if "Executing Cluster Transition:\n\nRevised" in proc.stdout:
            break
    return CommandRunner({"PATH": PATH, "CIB_file": str(path)})


def test_pacemaker_promotes_bundle_replicas_from_scores_on_their_hosts(tmp_path):
    """The premise: with container-attribute-target=host the scheduler reads promotion scores on the hosts (what
    the agent writes there), without it on the guest nodes, where these are not."""
    for target_host, promoted in ((True, 3), (False, 0)):
        status = read_cluster_status(simulated(tmp_path, target_host), Deadline.after(60))
        roles = [r.role for r in status.instances("galera")]
        assert len(roles) == 3 and roles.count("Promoted") == promoted, (target_host, roles)


def test_guest_nodes_are_mapped_to_the_hosts_their_containers_run_on(tmp_path):
    status = read_cluster_status(simulated(tmp_path, True), Deadline.after(60))
    guests = {r.nodes[0] for r in status.instances("galera")}
    assert {g: status.host_of(g) for g in guests} == {f"galera-bundle-{i}": n for i, n in enumerate(NODES)}
    assert status.host_of("node2") == "node2" and status.host_of("unknown") == "unknown"


def test_the_bootstrap_decision_counts_promoted_replicas_as_their_hosts(tmp_path):
    runner = simulated(tmp_path, True)
    config, errors = PARAMS.parse({"OCF_RESKEY_wsrep_cluster_address": "gcomm://node1,node2,node3"})
    assert errors == []
    inputs = cluster.gather(runner, Deadline.after(60), "galera", config, me="node1")
    # the others' instances run Promoted in their replicas: a Primary exists on node2 and node3 (not on "me")
    assert inputs.primary == ("node2", "node3")
    assert {n: inputs.reports[n].seqno for n in NODES} == {"node1": 41, "node2": 42, "node3": 43}
    assert inputs.decide().action == "join"
