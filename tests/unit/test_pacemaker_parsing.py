# SPDX-License-Identifier: GPL-2.0-or-later
"""Pure parsing of Pacemaker data: attrd queries, notify variables, feature sets, crm_mon XML shapes."""

from hamail.pacemaker.crmmon import parse_crm_mon
from hamail.pacemaker.notify import NotifyData
from hamail.pacemaker.attributes import parse_attrd_query
from hamail.pacemaker.scores import PromotionScore, feature_set_at_least
from hamail.system.runner import FakeRunner


def test_attrd_query_lines():
    text = 'name="galera-last-committed" host="node1" value="42"\nname="galera-last-committed" host="node 2" value=""\n'
    assert parse_attrd_query(text) == {"node1": "42"}


def test_feature_sets():
    assert feature_set_at_least("3.16.2", (3, 10, 0)) and not feature_set_at_least("3.0.14", (3, 10, 0))
    assert feature_set_at_least("", (3, 10, 0)) and feature_set_at_least("junk", (3, 10, 0))


def test_promotion_score_uses_crm_attribute_or_crm_master():
    modern = FakeRunner().expect(["crm_attribute", "--promotion=db", "-N", "node1", "-v", "10"])
    PromotionScore(modern, "db:0", "node1", "3.16.2").set(10)
    modern.assert_done()
    assert modern.invocations[0].env["OCF_RESOURCE_INSTANCE"] == "db:0"
    legacy = FakeRunner().expect(["crm_master", "-l", "reboot", "-N", "node1", "-D"])
    PromotionScore(legacy, "db:0", "node1", "3.0.14").delete()
    legacy.assert_done()


def test_notify_variables_with_legacy_names():
    env = {
        "OCF_RESKEY_CRM_meta_notify_type": "pre", "OCF_RESKEY_CRM_meta_notify_operation": "promote",
        "OCF_RESKEY_CRM_meta_notify_promote_uname": "node2 ", "OCF_RESKEY_CRM_meta_notify_master_uname": "node1",
        "OCF_RESKEY_CRM_meta_notify_slave_uname": "node2 node3", "OCF_RESKEY_CRM_meta_notify_all_uname": "node1 node2 node3",
        "OCF_RESKEY_CRM_meta_notify_active_resource": "db:0 db:1",
    }
    data = NotifyData.from_environ(env)
    assert data.is_pre and data.operation == "promote"
    assert data.nodes("promote") == ("node2",) and data.nodes("promoted") == ("node1",)
    assert data.nodes("unpromoted") == ("node2", "node3") and data.nodes("stop") == ()
    assert data.resources["active"] == ("db:0", "db:1") and data.all_unames == ("node1", "node2", "node3")


CRM_MON = b"""<pacemaker-result api-version="2.25" request="crm_mon --output-as=xml">
  <summary><current_dc present="true" version="2.1.5" name="node1" id="1" with_quorum="true"/></summary>
  <nodes>
    <node name="node1" id="1" online="true" standby="false" unclean="false" shutdown="false" is_dc="true" expected_up="true" type="member"/>
    <node name="node3" id="3" online="false" standby="false" unclean="true" shutdown="false" is_dc="false" expected_up="true" type="member"/>
  </nodes>
  <resources>
    <clone id="db-clone" multi_state="true" unique="false">
      <resource id="db" resource_agent="ocf:hamail:galera" role="Promoted" active="true" failed="false" nodes_running_on="1"><node name="node1" id="1" cached="true"/></resource>
      <resource id="db" resource_agent="ocf:hamail:galera" role="Stopped" active="false" failed="false" nodes_running_on="0"/>
    </clone>
    <resource id="smtp" resource_agent="ocf:hamail:postfix" role="Started" active="true" failed="false" nodes_running_on="1" pending="Starting"><node name="node1" id="1" cached="true"/></resource>
    <resource id="imap" resource_agent="ocf:hamail:dovecot" role="Starting" active="true" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1"><node name="node1" id="1" cached="true"/></resource>
  </resources>
  <node_attributes>
    <node name="node1"><attribute name="galera-last-committed" value="42"/><attribute name="master-db" value="100"/></node>
  </node_attributes>
  <fence_history>
    <fence_event action="off" target="node3" client="stonith_admin" origin="node1" status="success" delegate="node1" completed="2026-11-22 03:00:00Z"/>
    <fence_event action="reboot" target="node2" client="pacemaker-controld" origin="node1" status="failed" completed="2026-11-22 02:00:00Z"/>
  </fence_history>
  <status code="0" message="OK"/>
</pacemaker-result>"""


def test_crm_mon_shape():
    status = parse_crm_mon(CRM_MON)
    assert status.dc == "node1" and status.have_quorum
    assert status.online_nodes() == ["node1"] and status.nodes["node3"].unclean
    assert status.was_fenced("node3") and not status.was_fenced("node2")
    instances = status.instances("db-clone")
    assert [(r.role, r.nodes) for r in instances] == [("Promoted", ("node1",)), ("Stopped", ())]
    assert instances[0].settled_active and instances[0].pending is None
    smtp = status.instances("smtp")[0]
    assert smtp.active and smtp.pending == "Starting" and not smtp.settled_active
    imap = status.instances("imap")[0]  # how crm_mon 2.1.5 shows a start in flight
    assert imap.active and imap.pending == "Starting" and not imap.settled_active
    assert status.node_attribute("node1", "galera-last-committed") == "42"
    assert status.node_attribute("node3", "galera-last-committed") is None


def test_fencing_since():
    status = parse_crm_mon(CRM_MON)
    completed = status.fencing[0].completed_epoch
    assert completed == 1795316400.0  # 2026-11-22 03:00:00 UTC
    assert status.was_fenced("node3", since=completed - 60)
    assert not status.was_fenced("node3", since=completed + 60)
