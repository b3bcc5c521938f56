# SPDX-License-Identifier: GPL-2.0-or-later
"""The node a resource's attributes belong to (Pacemaker's rule for bundles with container-attribute-target=host),
and galera's writes following it: its published position and its promotion score go to the container's host."""

import pytest

from hamail.agents.galera.agent import AGENT
from hamail.agents.galera.cluster import PUBLISHED
from hamail.ocf import OCFEnv, run
from hamail.pacemaker import attribute_target
from hamail.system.runner import FakeRunner

BUNDLE = {"OCF_RESKEY_CRM_meta_on_node": "galera-bundle-0", "OCF_RESKEY_CRM_meta_physical_host": "node2",
          "OCF_RESKEY_CRM_meta_container_attribute_target": "host"}


@pytest.mark.parametrize("meta,expected", [
    ({}, "local"),
    ({"OCF_RESKEY_CRM_meta_physical_host": "node2"}, "local"),  # in a bundle, but attributes stay on the guest
    ({"OCF_RESKEY_CRM_meta_container_attribute_target": "host"}, "local"),  # no host named: nothing to go to
    ({"OCF_RESKEY_CRM_meta_container_attribute_target": "host", "OCF_RESKEY_CRM_meta_physical_host": "node2"},
     "node2"),
    ({"OCF_RESKEY_CRM_meta_container_attribute_target": "Host", "OCF_RESKEY_CRM_meta_physical_host": "node2"},
     "node2"),  # Pacemaker compares the value without case
    ({"OCF_RESKEY_CRM_meta_container_attribute_target": "guest", "OCF_RESKEY_CRM_meta_physical_host": "node2"},
     "local"),
])
def test_the_target_is_the_host_only_when_the_meta_asks_and_names_one(meta, expected):
    assert attribute_target(meta, "local") == expected


def test_ocf_env_target_in_and_out_of_a_bundle():
    inside = OCFEnv.from_environ(BUNDLE, "galera")
    assert (inside.node_name, inside.attribute_target) == ("galera-bundle-0", "node2")
    plain = OCFEnv.from_environ({"OCF_RESKEY_CRM_meta_on_node": "node1"}, "galera")
    assert (plain.node_name, plain.attribute_target) == ("node1", "node1")


def _withdrawals(node: str) -> FakeRunner:
    """What galera's stop says to Pacemaker with nothing running: every published attribute and the promotion
    score removed, each for `node`."""
    names = ("last-committed",) + PUBLISHED[1:] + ("bootstrap-wait", "force-bootstrap", "bootstrap-override",
                                                    "cluster-members")
    runner = FakeRunner()
    for name in names:
        runner.expect(["attrd_updater", "-n", f"galera-{name}", "-D", "-N", node])
    return runner.expect(["crm_attribute", "--promotion=galera", "-N", node, "-D"])


@pytest.mark.parametrize("meta,node", [(BUNDLE, "node2"), ({"OCF_RESKEY_CRM_meta_on_node": "node1"}, "node1")])
def test_galera_stop_withdraws_from_the_attribute_target(tmp_path, meta, node, capsys):
    env = {"OCF_RESOURCE_INSTANCE": "galera:0", "OCF_RESKEY_crm_feature_set": "3.16.2", "HA_RSCTMP": str(tmp_path),
           "OCF_RESKEY_wsrep_cluster_address": "gcomm://node1,node2,node3", "OCF_RESKEY_pid": str(tmp_path / "pid"),
           "OCF_RESKEY_CRM_meta_clone_max": "3", "OCF_RESKEY_CRM_meta_promoted_max": "3",
           "OCF_RESKEY_CRM_meta_promotable": "true", **meta}
    (tmp_path / "hamail-galera-galera.json").write_text("{}")  # a started instance: failures are not hidden
    runner = _withdrawals(node)
    assert run(AGENT, ["galera", "stop"], env, runner=runner) == 0, capsys.readouterr().err
    runner.assert_done()


def test_stateful_start_scores_the_attribute_target(tmp_path, capsys):
    from hamail.agents.stateful import AGENT as STATEFUL
    runner = FakeRunner().expect(["crm_attribute", "--promotion=st", "-N", "node2", "-v", "5"])
    env = {"OCF_RESOURCE_INSTANCE": "st:0", "OCF_RESKEY_crm_feature_set": "3.16.2", "HA_RSCTMP": str(tmp_path),
           **BUNDLE}
    assert run(STATEFUL, ["Stateful", "start"], env, runner=runner) == 0, capsys.readouterr().err
    runner.assert_done()
