"""The core against a real 3-node Pacemaker: metadata through crm_resource and pcs, transient attributes and
promotion scores through pacemaker-attrd, notify data, crm_mon parsing, the shared promotable logic."""

import json
import textwrap

import pytest

from testlib import AGENTS, ROOT

ALL = sorted(p.name for p in AGENTS.iterdir() if p.is_file())


def py(cluster, node, code, timeout=60):
    """Run Python with hamail importable inside a node, as an agent there would."""
    prologue = f"import sys; sys.path.insert(0, {str(ROOT / 'lib')!r})\n"
    result = cluster.run(node, ["/usr/bin/python3", "-c", prologue + textwrap.dedent(code)], timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("name", ALL)
def test_pacemaker_and_pcs_read_every_agents_metadata(cluster3, name):
    shown = cluster3.run("node1", ["crm_resource", "--show-metadata", f"ocf:hamail:{name}"])
    assert shown.returncode == 0 and f'name="{name}"' in shown.stdout, shown.stderr
    described = cluster3.run("node1", ["pcs", "resource", "describe", f"ocf:hamail:{name}"])
    assert described.returncode == 0, described.stderr
    assert "Error" not in described.stderr


def test_permanent_attributes_live_in_the_cib(cluster3):
    out = py(cluster3, "node2", """
        from hamail.pacemaker.attributes import PermanentAttributes
        from hamail.system.runner import CommandRunner
        attrs = PermanentAttributes(CommandRunner())
        attrs.set("node3", "hamail-test-forever", "1700000000")
        print(attrs.get("node3", "hamail-test-forever"), attrs.get("node3", "hamail-test-never-set"))
    """)
    assert out.split() == ["1700000000", "None"]
    # in the CIB's nodes section (survives a restart of every node), not in attrd
    cib = cluster3.run("node1", ["cibadmin", "--query", "--scope", "nodes"]).stdout
    assert 'name="hamail-test-forever" value="1700000000"' in cib
    py(cluster3, "node1", """
        from hamail.pacemaker.attributes import PermanentAttributes
        from hamail.system.runner import CommandRunner
        attrs = PermanentAttributes(CommandRunner())
        attrs.delete("node3", "hamail-test-forever")
        attrs.delete("node3", "hamail-test-forever")  # absent is fine
        assert attrs.get("node3", "hamail-test-forever") is None
    """)


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
    seen = cluster3.wait_for(lambda: json.loads(py(cluster3, "node1", """
        import json
        from hamail.pacemaker.attributes import Attributes
        from hamail.system.runner import CommandRunner
        print(json.dumps(Attributes(CommandRunner()).get_all("hamail-test-seqno")))
    """)) or None, 30, "attributes to propagate")
    assert seen == {"node2": "42", "node3": "41"}
    py(cluster3, "node1", """
        from hamail.pacemaker.attributes import Attributes
        from hamail.system.runner import CommandRunner
        a = Attributes(CommandRunner())
        a.delete("node2", "hamail-test-seqno"); a.delete("node3", "hamail-test-seqno")
        assert a.get("node1", "never-set") is None
    """)


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
    assert cluster3.run("node1", ["crm", "configure", "load", "update", str(crm)], timeout=120).returncode == 0
    try:
        def one_promoted():
            current = roles(cluster3)
            values = sorted(current.values())
            return current if values == ["Promoted", "Unpromoted", "Unpromoted"] else None
        current = cluster3.wait_for(one_promoted, 90, "one Promoted and two Unpromoted instances")
        promoted = next(n for n, r in current.items() if r == "Promoted")

        # Scores were published by the shared promotable logic through crm_attribute --promotion.
        for node, role in current.items():
            score = py(cluster3, node, f"""
                from hamail.pacemaker.scores import PromotionScore
                from hamail.system.runner import CommandRunner
                print(PromotionScore(CommandRunner(), "pm-state:0", {node!r}, "3.16.2").get())
            """).strip()
            assert score == ("10" if role == "Promoted" else "5")

        # Notifications arrived parsed: a post-promote naming the promoted node.
        records = [json.loads(line) for line in log.read_text().splitlines()]
        posts = [r for r in records if r["type"] == "post" and r["operation"] == "promote"]
        assert posts and all(r["unames"]["promote"] == [promoted] for r in posts)

        # Move the promoted role away: demote there, promote elsewhere, notifications for both.
        assert cluster3.run("node1", ["crm_resource", "--ban", "--resource", "pm-clone", "--node", promoted,
                                      "--promoted"]).returncode == 0
        moved = cluster3.wait_for(lambda: (lambda c: c if c.get(promoted) != "Promoted"
                                           and "Promoted" in c.values() else None)(roles(cluster3)),
                                  90, "the promoted role to move")
        assert moved[promoted] == "Unpromoted"
        records = [json.loads(line) for line in log.read_text().splitlines()]
        assert any(r["operation"] == "demote" and r["unames"]["demote"] == [promoted] for r in records)
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
    finally:
        cluster3.run("node1", ["crm_attribute", "-N", "node3", "-n", "hamail-test-fenced-at", "-l", "forever", "-D"])
        cluster3.heal()
        cluster3.run("node1", ["stonith_admin", "--cleanup", "--history=node3"])
