# SPDX-License-Identifier: GPL-2.0-or-later
"""The core against a real 3-node Pacemaker: metadata through crm_resource and pcs, transient attributes and
promotion scores through pacemaker-attrd, notify data, crm_mon parsing, the shared promotable logic."""

import json
import re
import textwrap

import pytest
from lxml import etree

from testlib import AGENTS, ROOT

ALL = sorted(p.name for p in AGENTS.iterdir() if p.is_file())


def py(cluster, node, code, timeout=60):
    """Run Python with hamail importable inside a node, as an agent there would."""
    prologue = f"import sys; sys.path.insert(0, {str(ROOT / 'lib')!r})\n"
    result = cluster.run(node, ["/usr/bin/python3", "-c", prologue + textwrap.dedent(code)], timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout


def checked(cluster, node, argv, timeout=60):
    """Run argv in a node; it must succeed (its output on failure is in the assertion message)."""
    result = cluster.run(node, argv, timeout=timeout)
    assert result.returncode == 0, f"{argv} exited {result.returncode}\n{result.stdout}{result.stderr}"
    return result


@pytest.mark.parametrize("name", ALL)
def test_pacemaker_and_pcs_read_every_agents_metadata(cluster3, name):
    shown = checked(cluster3, "node1", ["crm_resource", "--show-metadata", f"ocf:hamail:{name}"])
    root = etree.fromstring(shown.stdout.encode())
    assert root.tag == "resource-agent" and root.get("name") == name
    params = [p.get("name") for p in root.iter("parameter")]
    # pcs parses the metadata itself (its OCF 1.1 schema): it must list every parameter the agent declares
    described = checked(cluster3, "node1", ["pcs", "resource", "describe", "--full", f"ocf:hamail:{name}"])
    assert not re.search(r"^(Error|Warning)", described.stderr, re.M), described.stderr
    options = described.stdout.partition("\nResource options:\n")[2].partition("\n\n")[0]
    # "  name: desc", "  name (required) (unique group: g): desc"
    assert re.findall(r"^  (\w+)(?: \([^)]*\))*:", options, re.M) == params, described.stdout


def test_permanent_attributes_live_in_the_cib(cluster3):
    out = py(cluster3, "node2", """
        from hamail.pacemaker.attributes import PermanentAttributes
        from hamail.system.runner import CommandRunner
        attrs = PermanentAttributes(CommandRunner())
        attrs.set("node3", "hamail-test-forever", "1700000000")
        print(attrs.get("node3", "hamail-test-forever"), attrs.get("node3", "hamail-test-never-set"))
    """)
    assert out.split() == ["1700000000", "None"]

    def in_cib():
        """Every node's value of the attribute in the CIB's nodes section, read with cibadmin."""
        nodes = etree.fromstring(checked(cluster3, "node1", ["cibadmin", "--query", "--scope", "nodes"]).stdout.encode())
        return {node.get("uname"): pair.get("value") for node in nodes.iter("node")
                for pair in node.iterfind("instance_attributes/nvpair[@name='hamail-test-forever']")}
    # in the CIB's nodes section (survives a restart of every node), not in attrd, and only on node3
    assert in_cib() == {"node3": "1700000000"}
    py(cluster3, "node1", """
        from hamail.pacemaker.attributes import PermanentAttributes
        from hamail.system.runner import CommandRunner
        attrs = PermanentAttributes(CommandRunner())
        attrs.delete("node3", "hamail-test-forever")
        attrs.delete("node3", "hamail-test-forever")  # absent is fine
        assert attrs.get("node3", "hamail-test-forever") is None
    """)
    assert in_cib() == {}


def test_transient_attributes_cross_nodes(cluster3):
    py(cluster3, "node2", """
        from hamail.pacemaker.attributes import Attributes
        from hamail.system.runner import CommandRunner
        Attributes(CommandRunner()).set("node2", "hamail-test-seqno", "42")
    """)
    py(cluster3, "node3", """
        from hamail.pacemaker.attributes import Attributes
        from hamail.system.runner import CommandRunner
        Attributes(CommandRunner()).set("node3", "hamail-test-seqno", "41")
    """)
    def seen_from_node1():
        """Every node's value as hamail reads it on node1."""
        return json.loads(py(cluster3, "node1", """
            import json
            from hamail.pacemaker.attributes import Attributes
            from hamail.system.runner import CommandRunner
            print(json.dumps(Attributes(CommandRunner()).get_all("hamail-test-seqno")))
        """))
    expected = {"node2": "42", "node3": "41"}
    # attrd propagates asynchronously: wait for both values, then they must be exactly these
    seen = cluster3.wait_for(lambda: (lambda s: s if len(s) >= 2 else None)(seen_from_node1()), 30,
                             "both attributes to reach node1")
    assert seen == expected
    py(cluster3, "node1", """
        from hamail.pacemaker.attributes import Attributes
        from hamail.system.runner import CommandRunner
        a = Attributes(CommandRunner())
        a.delete("node2", "hamail-test-seqno"); a.delete("node3", "hamail-test-seqno")
        assert a.get("node1", "never-set") is None
    """)
    cluster3.wait_for(lambda: seen_from_node1() == {} or None, 30, "the deletions to reach every node")


CONFIG = """\
primitive pm-state ocf:hamail:Stateful params notify_log={log} \\
    op monitor interval=3s role=Promoted timeout=20s op monitor interval=4s role=Unpromoted timeout=20s
clone pm-clone pm-state meta promotable=true promoted-max=1 notify=true
"""


def roles(cluster3):
    """Node -> role of the pm-clone instances, through hamail's own crm_mon parser inside a node."""
    out = py(cluster3, cluster3.first_running(), """
        import json
        from hamail.pacemaker.crmmon import read_cluster_status
        from hamail.system.runner import CommandRunner
        status = read_cluster_status(CommandRunner())
        print(json.dumps({r.nodes[0]: r.role for r in status.instances("pm-clone") if r.nodes}))
    """)
    return json.loads(out)


def test_promotable_clone_scores_and_notifications(cluster3, tmp_path):
    log = tmp_path / "notify.jsonl"
    log.touch()
    crm = tmp_path / "pm.crm"
    crm.write_text(CONFIG.format(log=log))
    checked(cluster3, "node1", ["crm", "configure", "load", "update", str(crm)], timeout=120)
    try:
        def one_promoted():
            current = roles(cluster3)
            values = sorted(current.values())
            return current if values == ["Promoted", "Unpromoted", "Unpromoted"] else None
        current = cluster3.wait_for(one_promoted, 90, "one Promoted and two Unpromoted instances")
        promoted = next(n for n, r in current.items() if r == "Promoted")

        # Scores were published by the shared promotable logic through crm_attribute --promotion: what
        # Pacemaker's scheduler sees, read with crm_mon (not with hamail's own reader).
        def scores():
            """Node -> promotion score of pm-state, from crm_mon's node attributes."""
            xml = checked(cluster3, "node1", ["crm_mon", "--output-as=xml", "--show-node-attributes"]).stdout
            return {node.get("name"): attr.get("value")
                    for node in etree.fromstring(xml.encode()).iterfind("node_attributes/node")
                    for attr in node.iterfind("attribute[@name='master-pm-state']")}
        wanted = {node: "10" if role == "Promoted" else "5" for node, role in current.items()}
        cluster3.wait_for(lambda: scores() == wanted or None, 30, f"promotion scores {wanted}")

        # Notifications arrived parsed: post-promote ones (one from each instance, delivered after the
        # promotion shows in crm_mon), all naming the promoted node.
        def posts(operation):
            """The post-<operation> notifications logged so far by every instance."""
            records = [json.loads(line) for line in log.read_text().splitlines()]
            return [r for r in records if r["type"] == "post" and r["operation"] == operation]
        first = cluster3.wait_for(lambda: posts("promote") or None, 30, "a post-promote notification")
        assert all(r["unames"]["promote"] == [promoted] for r in first), first

        # Move the promoted role away: demote there, promote elsewhere, notifications for both.
        checked(cluster3, "node1", ["crm_resource", "--ban", "--resource", "pm-clone", "--node", promoted, "--promoted"])
        moved = cluster3.wait_for(lambda: (lambda c: c if c.get(promoted) != "Promoted"
                                           and "Promoted" in c.values() else None)(roles(cluster3)),
                                  90, "the promoted role to move")
        assert moved[promoted] == "Unpromoted"
        successor = next(n for n, r in moved.items() if r == "Promoted")
        cluster3.wait_for(lambda: any(r["unames"]["demote"] == [promoted] for r in posts("demote")) or None, 30,
                          f"a post-demote notification naming {promoted}")
        cluster3.wait_for(lambda: any(r["unames"]["promote"] == [successor] for r in posts("promote")) or None, 30,
                          f"a post-promote notification naming {successor}")
    finally:
        cluster3.run("node1", ["crm_resource", "--clear", "--resource", "pm-clone"])
        cluster3.run("node1", ["crm", "configure", "delete", "--force", "pm-clone", "pm-state"], timeout=120)
        cluster3.wait_for(lambda: roles(cluster3) == {} or None, 60, "pm-clone to be removed")


def test_fencing_history_of_a_killed_node(cluster3):
    """A power-cut node confirmed fenced shows in hamail's parsed fencing history, with a usable time."""
    import time
    before = time.time() - 5  # the clocks are the same machine's; allow for second rounding
    cluster3.kill_node("node3")
    try:
        cluster3.wait_for(lambda: not cluster3.status("node1").nodes["node3"].online or None, 60, "node3 to be offline")
        confirmed = cluster3.run("node1", ["stonith_admin", "--confirm=node3"], timeout=60)
        assert confirmed.returncode == 0, confirmed.stderr
        out = cluster3.wait_for(lambda: (lambda o: o if '"fenced": true' in o else None)(py(cluster3, "node1", f"""
            import json
            from hamail.pacemaker.crmmon import read_cluster_status
            from hamail.system.runner import CommandRunner
            s = read_cluster_status(CommandRunner())
            print(json.dumps({{"fenced": s.was_fenced("node3", since={before}),
                              "old": s.was_fenced("node3", since={before} + 3600),
                              "online": s.nodes["node3"].online}}))
        """)), 30, "the fencing to show in crm_mon")
        assert json.loads(out) == {"fenced": True, "old": False, "online": False}

        # The durable record: node1 copies the fencing into the CIB; node2 reads it back; a second pass
        # records nothing new. (What galera's Promoted monitor does for a recovery after total power loss.)
        recorded = json.loads(py(cluster3, "node1", """
            import json
            from hamail.pacemaker.crmmon import read_cluster_status
            from hamail.pacemaker.fencing import FencingRecords
            from hamail.system.runner import CommandRunner
            runner = CommandRunner()
            records = FencingRecords(runner, "hamail-test-fenced-at")
            status = read_cluster_status(runner)
            first = records.record_missing(status, ["node1", "node2", "node3"], "node1")
            again = records.record_missing(status, ["node1", "node2", "node3"], "node1")
            print(json.dumps({"first": first, "again": again, "last": status.last_fenced("node3")}))
        """))
        assert [node for node, _ in recorded["first"]] == ["node3"] and recorded["again"] == []
        assert recorded["first"][0][1] == int(recorded["last"]) >= int(before)
        seen = py(cluster3, "node2", """
            from hamail.pacemaker.fencing import FencingRecords
            from hamail.system.runner import CommandRunner
            print(FencingRecords(CommandRunner(), "hamail-test-fenced-at").recorded("node3"))
        """).strip()
        assert seen == str(recorded["first"][0][1])

        # node3 came back from that fencing and joined (it notes so): the fencing no longer excuses it; a
        # fencing after that does. Only fencing times are compared, never a node's clock with the fencer's.
        since = """
            import json
            from hamail.pacemaker.crmmon import read_cluster_status
            from hamail.pacemaker.fencing import FencingRecords
            from hamail.system.runner import CommandRunner
            runner = CommandRunner()
            records, status = FencingRecords(runner, "hamail-test-fenced-at"), read_cluster_status(runner)
            before = records.fenced_since_joined("node3", status)
            {action}
            print(json.dumps([before, records.fenced_since_joined("node3", status)]))
        """
        fenced = recorded["first"][0][1]
        out = py(cluster3, "node2", since.format(action='records.note_joined("node3", status)'))
        assert json.loads(out) == [fenced, None]
        later = fenced + 60
        out = py(cluster3, "node1", since.format(action=f'records.record("node3", {later})'))
        assert json.loads(out) == [None, later]
    finally:
        for name in ("hamail-test-fenced-at", "hamail-test-fenced-at-last-join"):
            cluster3.run("node1", ["crm_attribute", "-N", "node3", "-n", name, "-l", "forever", "-D"])
        cluster3.heal()
        cluster3.run("node1", ["stonith_admin", "--cleanup", "--history=node3"])
