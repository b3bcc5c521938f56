# SPDX-License-Identifier: GPL-2.0-or-later
"""container-attribute-target=host on a real 3-node Pacemaker: the agent run on node1 as a bundle replica whose
container runs on node2 (OCF_RESKEY_CRM_meta_physical_host=node2) publishes its position and promotion score on
node2 and withdraws them there; without the meta the same run writes on node1. (A real bundle needs podman or
docker, which this machine has not: Pacemaker's handling of such a bundle is shown on a CIB file in
tests/core/test_galera_bundle.py.)"""

import pytest

import galera_lab as gl

AGENT = str(gl.ROOT / "agents" / "galera")
RSC = "bt"  # a name no other test uses: only these runs write its attributes


def run(lab, action, meta: dict, address: str, rsctmp: str):
    """The agent inside node1, as pacemaker-execd would run it there (clean environment, OCF_RESKEY_*)."""
    env = {"OCF_RESOURCE_INSTANCE": f"{RSC}:0", "OCF_RESOURCE_TYPE": "galera", "OCF_RESOURCE_PROVIDER": "hamail",
           "OCF_RESKEY_CRM_meta_interval": "0", "OCF_RESKEY_CRM_meta_timeout": "90000",
           "OCF_RESKEY_crm_feature_set": "3.16.2", "OCF_RESKEY_CRM_meta_clone_max": "1",
           "OCF_RESKEY_CRM_meta_promoted_max": "1", "OCF_RESKEY_CRM_meta_promotable": "true", "HA_RSCTMP": rsctmp,
           **meta}
    env.update({f"OCF_RESKEY_{k}": v for k, v in gl.params([address]).items()})
    proc = lab.run("node1", [AGENT, action], env=env, timeout=120)
    return proc.returncode, proc.stderr


def transient(lab, node: str, name: str) -> str | None:
    """A transient attribute of node as crm_attribute reads it (from node3: not the node that wrote it)."""
    proc = lab.run("node3", ["crm_attribute", "-N", node, "-l", "reboot", "-n", name, "-G", "-q"])
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def values(lab, node: str) -> dict:
    """What an instance of RSC published for node: its seqno, uuid and promotion score."""
    return {name: transient(lab, node, attr) for name, attr in
            (("seqno", f"{RSC}-last-committed"), ("uuid", f"{RSC}-uuid"), ("score", f"master-{RSC}"))}


@pytest.fixture(scope="module")
def lab(lab3):
    """lab3 with an initialised galera datadir on node1 (not running)."""
    gl.init_node(lab3, "node1")
    assert lab3.run("node1", ["mkdir", "-p", "/run/hamail-bt-host", "/run/hamail-bt-local"]).returncode == 0
    return lab3


@pytest.mark.parametrize("meta,target,other", [
    ({"OCF_RESKEY_CRM_meta_on_node": "galera-bundle-0", "OCF_RESKEY_CRM_meta_physical_host": "node2",
      "OCF_RESKEY_CRM_meta_container_attribute_target": "host"}, "node2", "node1"),
    ({"OCF_RESKEY_CRM_meta_on_node": "node1", "OCF_RESKEY_CRM_meta_physical_host": "node2"}, "node1", "node2"),
], ids=["bundle-host-target", "no-target-meta"])
def test_start_publishes_and_stop_withdraws_on_the_attribute_target(lab, meta, target, other):
    rsctmp = "/run/hamail-bt-host" if target == "node2" else "/run/hamail-bt-local"
    # the address names the target only: the decision then makes it the bootstrap node and sets its score
    rc, err = run(lab, "start", meta, target, rsctmp)
    try:
        assert rc == 0, err
        published = lab.wait_for(lambda: (lambda v: v if v["score"] else None)(values(lab, target)), 30,
                                 f"{RSC}'s attributes on {target}")
        assert published["seqno"] is not None and published["uuid"] is not None and published["score"] == "100"
        assert values(lab, other) == {"seqno": None, "uuid": None, "score": None}
    finally:
        rc, err = run(lab, "stop", meta, target, rsctmp)
    assert rc == 0, err
    lab.wait_for(lambda: values(lab, target) == {"seqno": None, "uuid": None, "score": None} or None, 30,
                 f"{RSC}'s attributes withdrawn from {target}")
