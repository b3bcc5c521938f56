# SPDX-License-Identifier: GPL-2.0-or-later
"""hamail-galera status from Pacemaker's own XML: finding the resource, the rows, the decision (the agent's),
what ends a wait, what each override risks, the JSON schema, and one line with exit 2 for bad input.

The same command runs against a real 3-node cluster in tests/galera/test_galera_cluster.py."""

import json
import pathlib

import jsonschema
import pytest

from hamail.agents.galera import status as st
from hamail.agents.galera.cluster import Inputs, report_of
from hamail.agents.galera.command import main
from hamail.pacemaker.cib import parse_resources
from hamail.pacemaker.crmmon import parse_crm_mon
from hamail.system.runner import FakeRunner

SCHEMA = json.loads((pathlib.Path(st.__file__).parent / "status-schema.json").read_text())
U1 = "52603c78-eec8-11f1-a0c0-272d58bc41e1"
U2 = "9909804e-eeca-11f1-98eb-4a87c8cd733d"
G1, G2, G3 = ("365a429a-eec9-11f1-ba49-9b3f3fc9c58b", "632c8317-eec9-11f1-a4a6-f3cebe7404e9",
              "52e02b73-eec8-11f1-881d-e6079fe1b0f7")
NODES = ["node1", "node2", "node3"]

CIB = b"""<resources>
  <primitive id="vip" class="ocf" provider="hamail" type="IPaddr2">
    <instance_attributes id="vip-ia"><nvpair id="vip-ip" name="ip" value="192.0.2.100"/></instance_attributes>
  </primitive>
  <clone id="galera-clone">
    <meta_attributes id="gc-meta"><nvpair id="gc-p" name="promotable" value="true"/></meta_attributes>
    <primitive id="galera" class="ocf" provider="hamail" type="galera">
      <instance_attributes id="g-ia">
        <nvpair id="g-a" name="wsrep_cluster_address" value="gcomm://node1,node2,node3"/>
        <nvpair id="g-s" name="socket" value="/run/mysqld/mysqld.sock"/>
      </instance_attributes>
      <instance_attributes id="g-ia-rule">
        <rule id="r" score="0"><expression id="e" attribute="#uname" operation="eq" value="node9"/></rule>
        <nvpair id="g-a2" name="wsrep_cluster_address" value="gcomm://node9"/>
      </instance_attributes>
    </primitive>
  </clone>
  <clone id="heartbeat-clone">
    <primitive id="hb" class="ocf" provider="heartbeat" type="galera"/>
  </clone>
</resources>"""


def view(seq, me, *members):
    return f"{seq}/{me}/{','.join(sorted(members))}"


def crm_mon(nodes, promoted=(), unpromoted=(), attrs=None, fencing=()):
    """A crm_mon --output-as=xml document: nodes {name: (online, standby, unclean)}, galera instances, attributes."""
    node_xml = "".join(
        f'<node name="{n}" id="{i}" online="{str(on).lower()}" standby="{str(sb).lower()}" '
        f'unclean="{str(uc).lower()}" shutdown="false" is_dc="{str(i == 1).lower()}" expected_up="true" '
        'type="member"/>' for i, (n, (on, sb, uc)) in enumerate(nodes.items(), 1))
    inst = "".join(f'<resource id="galera" resource_agent="ocf:hamail:galera" role="{role}" active="true" '
                   f'failed="false" nodes_running_on="1"><node name="{n}" id="0" cached="true"/></resource>'
                   for role, group in (("Promoted", promoted), ("Unpromoted", unpromoted)) for n in group)
    attr_xml = "".join(f'<node name="{n}">' + "".join(f'<attribute name="galera-{k}" value="{v}"/>'
                                                      for k, v in values.items()) + "</node>"
                       for n, values in (attrs or {}).items())
    fence_xml = "".join(f'<fence_event action="off" target="{t}" client="stonith_admin" origin="node1" '
                        f'status="success" delegate="node1" completed="{when}"/>' for t, when in fencing)
    return (f'<pacemaker-result api-version="2.25" request="crm_mon"><summary><current_dc present="true" '
            f'version="2.1.5" name="node1" id="1" with_quorum="true"/></summary><nodes>{node_xml}</nodes>'
            f'<resources><clone id="galera-clone" multi_state="true" unique="false">{inst}</clone></resources>'
            f'<node_attributes>{attr_xml}</node_attributes><fence_history>{fence_xml}</fence_history>'
            '<status code="0" message="OK"/></pacemaker-result>').encode()


def reported(uuid, seqno, v=None, **extra):
    values = {"uuid": uuid, "last-committed": seqno, "safe-to-bootstrap": 0, "no-grastate": 0}
    if v:
        values["last-view"] = v
        values["last-view-time"] = 1796268426
    values.update(extra)
    return values


def inputs_of(xml, fenced=(), since_join=None, cib=CIB, spent=False):
    """Inputs as gather() builds them from crm_mon (fencing records passed in, as gather reads them)."""
    status = parse_crm_mon(xml)
    primitive = st.find_resource(parse_resources(cib), None)
    config = st.config_of(primitive)
    reports = {n: report_of(status, "galera", n) for n in NODES}
    primary = tuple(n for r in status.instances("galera") if r.role == "Promoted" for n in r.nodes)
    return Inputs(NODES, reports, primary, frozenset(fenced), since_join or {}, status, "galera", config,
                  frozenset(), spent), primitive


def analyse(xml, fenced=(), fencings=None, cib=CIB, spent=False):
    inputs, primitive = inputs_of(xml, fenced, cib=cib, spent=spent)
    doc = st.analyse(inputs, fencings or {}, primitive, "node1", 1796268500)
    jsonschema.validate(doc, SCHEMA)
    st.render(doc)  # renders every shape without error
    return inputs, doc


ONLINE, OFFLINE = (True, False, False), (False, False, False)


def never_returns():
    """All three killed; node1 and node2 came back (node1 ahead), node3 never returns and is not fenced: the last
    Primary view had all three."""
    v = (G1, G2, G3)
    return crm_mon({"node1": ONLINE, "node2": ONLINE, "node3": OFFLINE}, unpromoted=("node1", "node2"),
                   attrs={"node1": reported(U1, 2660, view(13, G1, *v)), "node2": reported(U1, 1456, view(13, G2, *v))})


def test_a_node_that_never_returns_risks_name_the_node_and_the_numbers():
    inputs, doc = analyse(never_returns())
    assert doc["exit"] == st.EXIT_NO_PRIMARY and doc["primary"] is None
    assert doc["decision"]["action"] == "wait" and doc["decision"]["reason"] == inputs.decide().reason
    assert "node3" in doc["decision"]["reason"]
    # fencing node3 would not do: it was in the last Primary view. Its return would.
    assert [w for w in doc["ends_wait"] if w["command"] and "stonith_admin" in w["command"]] == []
    assert any(w["how"].startswith("node3 comes back") for w in doc["ends_wait"])
    by_node = {o["node"]: o for o in doc["overrides"]}
    assert set(by_node) == {"node1", "node2"}
    node1, node2 = by_node["node1"], by_node["node2"]
    assert node1["allowed"] and node1["command"] == "attrd_updater -n galera-force-bootstrap -U 1 -N node1"
    assert any(r.startswith("node3 was in the last Primary view (13): commits acknowledged after view 13")
               for r in node1["risks"]), node1["risks"]
    assert any("node3 has not reported and is not recorded as fenced" in r for r in node1["risks"])
    assert not node2["allowed"] and node2["command"] is None
    assert "node2 is 1,204 transactions behind node1's seqno 2,660" in node2["refused"], node2["refused"]
    assert "name node1 instead" in node2["refused"]
    rows = {r["node"]: r for r in doc["nodes"]}
    assert rows["node1"]["seqno"] == 2660 and rows["node3"]["seqno"] is None
    assert rows["node3"]["pacemaker"] == "offline" and rows["node3"]["role"] == "Stopped"
    assert rows["node1"]["last_view"]["members"] == 3 and rows["node1"]["last_view"]["seq"] == 13


def test_the_override_an_operator_applies_is_what_the_agent_then_does():
    """Setting the attribute the command prints makes the agent's own decision bootstrap that node."""
    xml = never_returns().replace(b'<attribute name="galera-uuid" value="' + U1.encode() + b'"/>',
                                  b'<attribute name="galera-uuid" value="' + U1.encode()
                                  + b'"/><attribute name="galera-force-bootstrap" value="1"/>', 1)
    inputs, doc = analyse(xml)
    assert doc["decision"]["action"] == "bootstrap" and doc["decision"]["node"] == "node1"
    assert doc["decision"]["overridden"]
    assert doc["nodes"][0]["force_bootstrap"]


def test_the_resource_parameter_override_is_the_decision_shown():
    """force_bootstrap_node in the CIB: the decision shown is the agent's with that parameter."""
    cib = CIB.replace(b'<nvpair id="g-s"', b'<nvpair id="g-f" name="force_bootstrap_node" value="node1"/><nvpair id="g-s"')
    _, doc = analyse(never_returns(), cib=cib)
    assert (doc["decision"]["action"], doc["decision"]["node"], doc["decision"]["overridden"]) == \
        ("bootstrap", "node1", True)
    assert doc["force_bootstrap_node"] == {"node": "node1", "spent": False}


def test_a_parameter_override_set_while_a_primary_ran_is_ignored_and_says_so():
    """Forgotten in the CIB since an earlier outage (marked spent by a Promoted monitor), it decides nothing."""
    cib = CIB.replace(b'<nvpair id="g-s"', b'<nvpair id="g-f" name="force_bootstrap_node" value="node1"/><nvpair id="g-s"')
    _, doc = analyse(never_returns(), cib=cib, spent=True)
    assert doc["decision"]["action"] == "wait" and not doc["decision"]["overridden"]
    assert "force_bootstrap_node=node1 is ignored: it was already set while a Primary component ran" \
        in doc["decision"]["reason"]
    assert doc["force_bootstrap_node"] == {"node": "node1", "spent": True}
    assert "(spent: " in st.render(doc)
    # an explicit override (the attribute the command prints) still applies
    assert next(o for o in doc["overrides"] if o["node"] == "node1")["allowed"]


def test_an_unfenced_node_outside_the_last_view_is_waited_for_and_fencing_it_ends_the_wait():
    v = (G1, G2)
    xml = crm_mon({"node1": ONLINE, "node2": ONLINE, "node3": OFFLINE}, unpromoted=("node1", "node2"),
                  attrs={"node1": reported(U1, 50, view(14, G1, *v)), "node2": reported(U1, 49, view(14, G2, *v))})
    _, doc = analyse(xml)
    assert doc["decision"]["action"] == "wait"
    fence = [w for w in doc["ends_wait"] if w["command"] == "stonith_admin --fence node3"]
    assert len(fence) == 1 and fence[0]["then"].startswith("node1 bootstraps")
    # an override of node1 risks only what an unreported, unfenced node3 may hold
    node1 = next(o for o in doc["overrides"] if o["node"] == "node1")
    assert node1["allowed"] and len(node1["risks"]) == 1 and node1["risks"][0].startswith("node3 has not reported")


def test_a_fenced_node_is_shown_as_counting_and_the_decision_follows():
    v = (G1, G2)
    xml = crm_mon({"node1": ONLINE, "node2": ONLINE, "node3": OFFLINE}, unpromoted=("node1", "node2"),
                  attrs={"node1": reported(U1, 50, view(14, G1, *v)), "node2": reported(U1, 49, view(14, G2, *v))},
                  fencing=[("node3", "2026-12-03 03:27:19Z")])
    _, doc = analyse(xml, fenced=("node3",), fencings={"node3": 1796268439})
    assert doc["decision"]["action"] == "bootstrap" and doc["decision"]["node"] == "node1"
    assert doc["ends_wait"] == [] and doc["overrides"] == []
    row = doc["nodes"][2]
    assert row["fenced"] == {"last": "2026-12-03T03:27:19Z", "counts": True}


def test_differing_uuids_wait_and_an_override_names_the_other_history():
    xml = crm_mon({n: ONLINE for n in NODES}, unpromoted=NODES,
                  attrs={"node1": reported(U1, 10), "node2": reported(U2, 20), "node3": reported(U1, 5)})
    _, doc = analyse(xml)
    assert doc["decision"]["action"] == "wait" and "disagree on the cluster uuid" in doc["decision"]["reason"]
    by_node = {o["node"]: o for o in doc["overrides"]}
    assert by_node["node1"]["allowed"]
    assert any(r.startswith(f"node2 holds another cluster history ({U2}:20)") for r in by_node["node1"]["risks"])
    assert by_node["node2"]["allowed"]
    assert any(r.startswith(f"node1 holds another cluster history ({U1}:10)") for r in by_node["node2"]["risks"])
    assert not by_node["node3"]["allowed"] and "5 transactions behind node1's seqno 10" in by_node["node3"]["refused"]


def test_an_online_node_that_has_not_reported_holds_every_override():
    v = (G1, G2, G3)
    xml = crm_mon({n: ONLINE for n in NODES}, unpromoted=("node1", "node2"),
                  attrs={"node1": reported(U1, 9, view(13, G1, *v)), "node2": reported(U1, 9, view(13, G2, *v))})
    _, doc = analyse(xml)
    assert all(not o["allowed"] and "waits for node3 (online, not in standby)" in o["refused"]
               for o in doc["overrides"])
    assert any(w["command"] == "crm_resource --cleanup -r galera -N node3" for w in doc["ends_wait"])


def test_a_running_primary_exits_0_and_shows_its_size():
    v = (G1, G2)
    xml = crm_mon({"node1": ONLINE, "node2": ONLINE, "node3": OFFLINE}, promoted=("node1", "node2"),
                  attrs={"node1": {"cluster-members": "2 of 3"}})
    _, doc = analyse(xml)
    assert doc["exit"] == st.EXIT_PRIMARY and doc["decision"]["action"] == "join"
    assert doc["primary"] == {"nodes": ["node1", "node2"], "members": "2 of 3"}
    assert doc["overrides"] == [] and doc["ends_wait"] == []
    assert "Primary component: node1, node2 (2 of 3 members" in st.render(doc)
    del v


def test_the_text_report_shows_rows_decision_and_commands():
    _, doc = analyse(never_returns())
    text = st.render(doc)
    assert "node1  online     Unpromoted" in text and "2,660" in text
    assert "Decision: wait: " in text and "attrd_updater -n galera-force-bootstrap -U 1 -N node1" in text
    assert "node2 (" in text and "refused:" in text


@pytest.mark.parametrize("name,message", [
    ("nosuch", "no resource nosuch in the CIB"),
    ("vip", "resource vip runs ocf:hamail:IPaddr2, not ocf:hamail:galera"),
    ("hb", "resource hb runs ocf:heartbeat:galera, not ocf:hamail:galera"),
])
def test_a_resource_that_is_not_hamail_galera_is_refused(name, message):
    with pytest.raises(st.StatusError, match=f"^{message}$"):
        st.find_resource(parse_resources(CIB), name)


@pytest.mark.parametrize("name", [None, "galera", "galera-clone", "galera:1"])
def test_the_resource_is_found_by_any_of_its_names(name):
    primitive = st.find_resource(parse_resources(CIB), name)
    assert (primitive.id, primitive.clone, primitive.promotable) == ("galera", "galera-clone", True)
    # a rule-dependent set applies on some nodes only: never read as the resource's parameters
    assert primitive.params["wsrep_cluster_address"] == "gcomm://node1,node2,node3"


def test_several_galera_resources_must_be_named():
    cib = CIB.replace(b"</resources>", b'<primitive id="g2" class="ocf" provider="hamail" type="galera"/></resources>')
    with pytest.raises(st.StatusError, match="several ocf:hamail:galera resources \\(galera, g2\\): name one"):
        st.find_resource(parse_resources(cib), None)


def test_a_resource_without_a_cluster_address_is_unreadable():
    cib = CIB.replace(b'<nvpair id="g-a" name="wsrep_cluster_address" value="gcomm://node1,node2,node3"/>', b"")
    with pytest.raises(st.StatusError, match="^resource galera: parameter wsrep_cluster_address"):
        st.config_of(st.find_resource(parse_resources(cib), None))


def run_main(capsys, runner, argv):
    """main() with a scripted runner; (exit status, stdout, stderr)."""
    code = main(argv, runner)
    out, err = capsys.readouterr()
    return code, out, err


def test_no_cluster_is_one_line_and_exit_2(capsys):
    runner = FakeRunner().expect(["cibadmin", "--query", "--scope", "resources"], 102, "",
                                 "Could not connect to the CIB: Transport endpoint is not connected\n")
    code, out, err = run_main(capsys, runner, ["status"])
    assert (code, out) == (2, "")
    assert err == "hamail-galera: cannot read the CIB: Could not connect to the CIB: Transport endpoint is not " \
                  "connected\n"


def test_an_unknown_resource_is_one_line_and_exit_2(capsys):
    runner = FakeRunner().expect(["cibadmin", "--query", "--scope", "resources"], 0, CIB.decode())
    code, out, err = run_main(capsys, runner, ["status", "nosuch", "--json"])
    assert (code, out, err) == (2, "", "hamail-galera: no resource nosuch in the CIB\n")


@pytest.mark.parametrize("argv", [["status", "--timeout", "0"], ["status", "--timeout", "-3"]])
def test_a_bad_timeout_is_refused(capsys, argv):
    code, out, err = run_main(capsys, FakeRunner(), argv)
    assert code == 2 and err.startswith("hamail-galera: --timeout") and err.count("\n") == 1
