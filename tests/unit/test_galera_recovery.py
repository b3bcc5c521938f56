# SPDX-License-Identifier: GPL-2.0-or-later
"""Table tests of the pure Galera recovery logic: file parsing, recovered positions, who bootstraps."""

import pytest

from hamail.agents.galera.recovery import (
    ZERO_UUID, NodeReport, View, decide, parse_address, parse_grastate, parse_gvwstate,
    parse_host_map, parse_recovery_log, set_safe_to_bootstrap,
)

U = "7159b315-ed8a-11ed-b66b-82b08426f1d2"
U2 = "39cb5fa9-ed9c-11ed-a43f-9e6583adc15d"
GA, GB, GC = ("aaaaaaaa-0000-11ee-8000-000000000001", "bbbbbbbb-0000-11ee-8000-000000000002",
              "cccccccc-0000-11ee-8000-000000000003")
NODES = ["node1", "node2", "node3"]

GRASTATE = f"""# GALERA saved state
version: 2.1
uuid:    {U}
seqno:   42
safe_to_bootstrap: 1
"""


@pytest.mark.parametrize("text,uuid,seqno,safe", [
    (GRASTATE, U, 42, True),
    (GRASTATE.replace("seqno:   42", "seqno:   -1").replace("bootstrap: 1", "bootstrap: 0"), U, -1, False),
    (f"uuid: {U}\nseqno: 18446744073709551615\n", U, -1, False),
    (f"# GALERA saved state\nversion: 2.1\nuuid: {ZERO_UUID}\nseqno: -1\nsafe_to_bootstrap: 0\n", ZERO_UUID, -1, False),
    (f"uuid:{U.upper()}\nseqno:7\nsafe_to_bootstrap:1", U, 7, True),
])
def test_parse_grastate(text, uuid, seqno, safe):
    state = parse_grastate(text)
    assert (state.uuid, state.seqno, state.safe_to_bootstrap) == (uuid, seqno, safe)


@pytest.mark.parametrize("text", ["", "garbage\n", "uuid: nope\nseqno: 1\n", f"uuid: {U}\nseqno: x\n"])
def test_parse_grastate_rejects(text):
    with pytest.raises(ValueError):
        parse_grastate(text)


def test_has_position():
    assert parse_grastate(GRASTATE).has_position
    assert not parse_grastate(f"uuid: {U}\nseqno: -1\n").has_position
    assert not parse_grastate(f"uuid: {ZERO_UUID}\nseqno: 3\n").has_position


def test_set_safe_to_bootstrap_keeps_everything_else():
    text = GRASTATE.replace("bootstrap: 1", "bootstrap: 0")
    out = set_safe_to_bootstrap(text, True)
    assert out.splitlines()[:4] == text.splitlines()[:4]
    assert parse_grastate(out).safe_to_bootstrap
    assert not parse_grastate(set_safe_to_bootstrap(out, False)).safe_to_bootstrap
    assert "safe_to_bootstrap: 1" in set_safe_to_bootstrap(f"uuid: {U}\nseqno: 1\n", True)


GVW = f"""my_uuid: {GA}
#vwbeg
view_id: 3 {GA} 5
bootstrap: 0
member: {GA} 0
member: {GB} 0
member: {GC} 0
#vwend
"""


def test_parse_gvwstate():
    view = parse_gvwstate(GVW)
    assert view.my_uuid == GA and view.seq == 5 and view.members == {GA, GB, GC}
    assert View.decode(view.encode()).members == view.members
    assert View.decode(view.encode()).seq == 5


@pytest.mark.parametrize("text", ["", "my_uuid: x\n", f"my_uuid: {GA}\n#vwbeg\n#vwend\n"])
def test_parse_gvwstate_incomplete(text):
    assert parse_gvwstate(text) is None


@pytest.mark.parametrize("text", [None, "", "x/y/z", "5/notauuid/" + GA, f"5/{GA}/"])
def test_view_decode_garbage(text):
    assert View.decode(text) is None


RECOVERY_LOGS = [
    # mariadbd 10.11 itself
    (f"2024-01-01 10:00:00 0 [Note] WSREP: Recovered position: {U}:17\n", U, 17),
    # mysqld_safe's summary line (no colon after 'position')
    (f"240101 10:00:00 mysqld_safe WSREP: Recovered position {U}:18\n", U, 18),
    # MariaDB with a GTID suffix
    (f"2024-01-01 10:00:00 0 [Note] WSREP: Recovered position: {U}:19,0-1-19\n", U, 19),
    # lower-case, older servers
    (f"[Note] WSREP: recovered position: {U}:20\n", U, 20),
    # PXC / MySQL-wsrep 8
    (f"2024-01-01T10:00:00Z 0 [Note] [MY-000000] [WSREP] WSREP: Recovered position from storage: {U}:21\n", U, 21),
    # the last line wins
    (f"[Note] WSREP: Recovered position: {U}:3\n[Note] WSREP: Recovered position: {U}:4\n", U, 4),
    # no state yet
    (f"[Note] WSREP: Recovered position: {ZERO_UUID}:-1\n", ZERO_UUID, -1),
    # CRLF line ends
    (f"[Note] WSREP: Recovered position: {U}:22\r\n", U, 22),
]


@pytest.mark.parametrize("text,uuid,seqno", RECOVERY_LOGS)
def test_parse_recovery_log(text, uuid, seqno):
    result = parse_recovery_log(text.replace("\r", ""))
    assert result.found and (result.uuid, result.seqno) == (uuid, seqno)


def test_parse_recovery_log_prepared_transactions():
    text = ("2024-01-01 10:00:00 0 [ERROR] Found 2 prepared transactions! It means that server was not shut down "
            "properly last time and critical recovery information (last binlog or tc.log file) was manually "
            "deleted after a crash. You have to start server with --tc-heuristic-recover switch to commit or "
            "rollback pending transactions.\n[ERROR] Aborting\n")
    result = parse_recovery_log(text)
    assert not result.found and result.prepared == 2


def test_parse_recovery_log_redirect_and_nothing():
    text = "WSREP: Running position recovery with --log_error='/var/lib/mysql/wsrep_recovery.Xy12' --pid-file=x\n"
    result = parse_recovery_log(text)
    assert not result.found and result.redirect == "/var/lib/mysql/wsrep_recovery.Xy12"
    assert not parse_recovery_log("[ERROR] WSREP: garbage\n").found


@pytest.mark.parametrize("address,hosts", [
    ("gcomm://n1,n2,n3", ["n1", "n2", "n3"]),
    ("gcomm://n1:4567, n2:4567 ,n3", ["n1", "n2", "n3"]),
    ("gcomm://192.0.2.11,192.0.2.12?pc.wait_prim=no", ["192.0.2.11", "192.0.2.12"]),
    ("gcomm://[2001:db8::1]:4567,[2001:db8::2]", ["2001:db8::1", "2001:db8::2"]),
])
def test_parse_address(address, hosts):
    assert parse_address(address) == hosts


@pytest.mark.parametrize("address", ["", "n1,n2", "gcomm://", "gcomm://,,", "gcomm://a,a", "mysql://a"])
def test_parse_address_rejects(address):
    with pytest.raises(ValueError):
        parse_address(address)


def test_parse_host_map():
    assert parse_host_map("pcmk1:gal1; pcmk2:gal2;") == {"pcmk1": "gal1", "pcmk2": "gal2"}
    assert parse_host_map("") == {}
    for bad in ("pcmk1", "pcmk1:", ":gal"):
        with pytest.raises(ValueError):
            parse_host_map(bad)


def R(node, seqno, uuid=U, stb=False, view=None, no_grastate=False, force=False, sst=False, failed=0):  # noqa: N802
    """A node report for the decision table."""
    return NodeReport(node, uuid if seqno is not None else None, seqno, stb, no_grastate, view, force,
                      sst_incomplete=sst, failed_bootstraps=failed)


def V(me, *members, seq=4):  # noqa: N802
    """A last Primary view."""
    return View(me, seq, frozenset(members))


ALL3 = V(GA, GA, GB, GC)
AB = V(GA, GA, GB)
BA = V(GB, GA, GB)

# (id, reports, kwargs, expected action, expected node, words expected in the reason)
DECISIONS = [
    ("highest seqno wins", {"node1": R("node1", 5), "node2": R("node2", 9), "node3": R("node3", 7)}, {},
     "bootstrap", "node2", ["highest seqno 9"]),
    ("safe_to_bootstrap wins over higher seqno",
     {"node1": R("node1", 5, stb=True), "node2": R("node2", 9), "node3": R("node3", 7)}, {},
     "bootstrap", "node1", ["safe_to_bootstrap=1"]),
    ("safe_to_bootstrap needs nobody else", {"node3": R("node3", 5, stb=True)}, {}, "bootstrap", "node3",
     ["node3 has safe_to_bootstrap=1"]),
    ("tie goes to address order, same on every node",
     {"node1": R("node1", 9), "node2": R("node2", 9), "node3": R("node3", 9)}, {}, "bootstrap", "node1",
     ["highest seqno 9"]),
    ("tie prefers a node that kept grastate.dat",
     {"node1": R("node1", 9, no_grastate=True), "node2": R("node2", 9), "node3": R("node3", 1)}, {},
     "bootstrap", "node2", ["highest seqno 9"]),
    ("-1 (no position) never wins, 0 does",
     {"node1": R("node1", -1), "node2": R("node2", 0), "node3": R("node3", -1)}, {}, "bootstrap", "node2",
     ["highest seqno 0"]),
    ("a missing, unfenced node blocks", {"node1": R("node1", 5), "node2": R("node2", 9)}, {},
     "wait", None, ["waiting for node3", "not recorded as fenced"]),
    ("nobody reported", {}, {}, "wait", None, ["no node has reported"]),
    ("a Primary exists: join, never bootstrap",
     {"node1": R("node1", 5, stb=True), "node2": R("node2", 9)}, {"primary_nodes": ("node3",)}, "join", None,
     ["Primary component exists on node3"]),
    ("fenced but in the last Primary view: wait",
     {"node1": R("node1", 5, view=ALL3), "node2": R("node2", 9, view=V(GB, GA, GB, GC))},
     {"fenced": frozenset({"node3"})}, "wait", None, ["not among the reporting nodes"]),
    ("fenced and left before the last view: proceed",
     {"node1": R("node1", 5, view=AB), "node2": R("node2", 9, view=BA)},
     {"fenced": frozenset({"node3"})}, "bootstrap", "node2", ["left out", "node3"]),
    ("fenced but online again: wait",
     {"node1": R("node1", 5, view=AB), "node2": R("node2", 9, view=BA)},
     {"fenced": frozenset({"node3"}), "online": frozenset(NODES)}, "wait", None, ["not recorded as fenced"]),
    ("fenced, but one survivor has no view: wait",
     {"node1": R("node1", 5, view=AB), "node2": R("node2", 9)},
     {"fenced": frozenset({"node3"})}, "wait", None, ["recorded no view"]),
    ("views of different runs: union is conservative",
     {"node1": R("node1", 5, view=AB), "node2": R("node2", 9, view=V(GB, GB, GC, seq=9))},
     {"fenced": frozenset({"node3"})}, "wait", None, ["not among the reporting nodes"]),
    ("two fenced missing nodes, sole survivor in a one-node view",
     {"node1": R("node1", 5, view=V(GA, GA))}, {"fenced": frozenset({"node2", "node3"})}, "bootstrap", "node1",
     ["left out (fenced, not in the last Primary view): node2, node3"]),
    ("operator override parameter",
     {"node1": R("node1", 9), "node2": R("node2", 5)}, {"override": "node1"}, "bootstrap", "node1",
     ["operator override", "waiting for node3"]),
    ("operator override attribute", {"node1": R("node1", 5), "node2": R("node2", 9, force=True)}, {},
     "bootstrap", "node2", ["operator override"]),
    ("an override never bootstraps a node behind another usable reporter of its cluster (the lab found it)",
     {"node1": R("node1", 5), "node2": R("node2", 9)}, {"override": "node1"}, "wait", None,
     ["refuses it", "node2=" + U + ":9", "name node2 instead"]),
    ("an override attribute left behind never wins over newer data either",
     {"node1": R("node1", 5, force=True), "node2": R("node2", 9)}, {}, "wait", None, ["refuses it"]),
    ("an override waits while a running node has not reported yet",
     {"node1": R("node1", 9), "node2": R("node2", 5)}, {"override": "node1", "pending": frozenset({"node3"})},
     "wait", None, ["waits for node3 (online, not in standby) to report"]),
    ("a reporter ahead whose state transfer did not finish does not block an override",
     {"node1": R("node1", 5), "node2": R("node2", 9, sst=True)}, {"override": "node1"}, "bootstrap", "node1",
     ["operator override"]),
    ("a reporter ahead whose bootstraps keep failing does not block an override",
     {"node1": R("node1", 5), "node2": R("node2", 9, failed=2)}, {"override": "node1"}, "bootstrap", "node1",
     ["operator override"]),
    ("a reporter ahead in another cluster history does not block an override (differing uuids)",
     {"node1": R("node1", 5), "node2": R("node2", 9, uuid=U2), "node3": R("node3", 4)}, {"override": "node1"},
     "bootstrap", "node1", ["operator override", "disagree on the cluster uuid"]),
    ("override of an unreported node waits", {"node1": R("node1", 5)}, {"override": "node3"}, "wait", None,
     ["has not reported"]),
    ("override of an unknown node waits", {"node1": R("node1", 5)}, {"override": "node9"}, "wait", None,
     ["not a galera node"]),
    ("override never beats a Primary", {"node1": R("node1", 5, force=True)}, {"primary_nodes": ("node2",)},
     "join", None, ["Primary component exists on node2"]),
    ("different cluster uuids: wait for an operator",
     {"node1": R("node1", 5), "node2": R("node2", 9, uuid=U2), "node3": R("node3", 1)}, {}, "wait", None,
     ["disagree on the cluster uuid"]),
    ("zero uuid is ignored for the uuid check",
     {"node1": R("node1", 5), "node2": R("node2", -1, uuid=ZERO_UUID), "node3": R("node3", 1)}, {},
     "bootstrap", "node1", ["highest seqno 5"]),
    ("a new cluster: nobody has a position, the first node starts it", {n: R(n, -1, uuid=ZERO_UUID) for n in NODES},
     {}, "bootstrap", "node1", ["new cluster"]),
    ("an unfinished state transfer is never a candidate, whatever it recovered",
     {"node1": R("node1", 20, sst=True), "node2": R("node2", 9), "node3": R("node3", 7)}, {},
     "bootstrap", "node2", ["highest seqno 9", "unfinished state transfer): node1"]),
    ("an unfinished state transfer is never safe_to_bootstrap",
     {"node1": R("node1", 9, stb=True, sst=True), "node2": R("node2", 9), "node3": R("node3", 7)}, {},
     "bootstrap", "node2", ["highest seqno 9"]),
    ("an unfinished state transfer proves the cluster is not new",
     {"node1": R("node1", -1, uuid=ZERO_UUID, sst=True), "node2": R("node2", -1, uuid=ZERO_UUID),
      "node3": R("node3", -1, uuid=ZERO_UUID)}, {}, "wait", None, ["unfinished state transfer"]),
    ("one failed bootstrap: the same node tries again",
     {"node1": R("node1", 9, failed=1), "node2": R("node2", 9), "node3": R("node3", 7)}, {},
     "bootstrap", "node1", ["highest seqno 9"]),
    ("two failed bootstraps: a node holding the same data stands in",
     {"node1": R("node1", 9, failed=2), "node2": R("node2", 9), "node3": R("node3", 7)}, {},
     "bootstrap", "node2", ["node1's bootstrap failed 2 times", "node2 holds the same data"]),
    ("two failed bootstraps of the only newest node: wait, saying why",
     {"node1": R("node1", 9, failed=2), "node2": R("node2", 8), "node3": R("node3", 7)}, {},
     "wait", None, ["node1's bootstrap failed 2 times", "no other node provably holds its data",
                    "bootstrap-failures"]),
    ("two failed bootstraps of the safe_to_bootstrap node: an equal one stands in",
     {"node1": R("node1", 9, stb=True, failed=3), "node2": R("node2", 9), "node3": R("node3", 7)}, {},
     "bootstrap", "node2", ["node2 holds the same data"]),
    ("a stand-in is never behind another reporter of its history whose bootstrap failed too (hypothesis found it)",
     {"node1": R("node1", -1, stb=True, failed=2), "node2": R("node2", -1, uuid=U2),
      "node3": R("node3", 0, uuid=U2, failed=2)}, {},
     "wait", None, ["node1's bootstrap failed 2 times", "no other node provably holds its data"]),
    ("the override may still name a node whose bootstrap failed",
     {"node1": R("node1", 9, failed=2), "node2": R("node2", 8), "node3": R("node3", 7)}, {"override": "node1"},
     "bootstrap", "node1", ["operator override"]),
    ("no usable position among the reporting, one excused missing",
     {"node1": R("node1", -1, view=V(GA, GA)), "node2": R("node2", -1, view=V(GB, GA, GB))},
     {"fenced": frozenset({"node3"})}, "wait", None, ["no reporting node has a usable position"]),
]


@pytest.mark.parametrize("reports,kwargs,action,node,words", [d[1:] for d in DECISIONS], ids=[d[0] for d in DECISIONS])
def test_decide(reports, kwargs, action, node, words):
    decision = decide(NODES, reports, **kwargs)
    assert (decision.action, decision.node) == (action, node), decision.reason
    assert words, "every case names what its reason must say"
    for word in words:
        assert word in decision.reason


# Address order (the order of wsrep_cluster_address) that differs from the names' sort order, so that a tie
# broken by name instead of by address would show.
ADDRESS_ORDER = ["node3", "node1", "node2"]


def test_decision_is_the_same_whatever_order_reports_arrive_in():
    import itertools
    reports = {"node1": R("node1", 9), "node2": R("node2", 9), "node3": R("node3", 9)}
    winners = {decide(ADDRESS_ORDER, {n: reports[n] for n in perm}).node for perm in itertools.permutations(NODES)}
    assert winners == {"node3"}


def test_only_one_node_ever_wins_for_any_seqnos():
    # Every node decides alone from the reports as they reached it: all must name the same winner, the
    # highest seqno (-1 only when nobody has better), ties going to the first in address order.
    import itertools
    for seqnos in itertools.product([-1, 0, 3], repeat=3):
        reports = {n: R(n, s) for n, s in zip(ADDRESS_ORDER, seqnos)}
        decisions = {(d.action, d.node) for perm in itertools.permutations(ADDRESS_ORDER)
                     for d in [decide(ADDRESS_ORDER, {n: reports[n] for n in perm})]}
        assert decisions == {("bootstrap", ADDRESS_ORDER[seqnos.index(max(seqnos))])}, seqnos


def test_a_node_without_a_recovered_position_is_waited_for():
    decision = decide(NODES, {"node1": R("node1", None), "node2": R("node2", 3), "node3": R("node3", 2)})
    assert (decision.action, decision.node, decision.awaited) == ("wait", None, ("node1",))
    assert decision.reason.startswith("waiting for node1 to report its position (node1 not recorded as fenced")




def _short(uuid):
    """A gcomm member id as garbd's log prints it: the uuid's first and fourth groups."""
    parts = uuid.split("-")
    return f"{parts[0]}-{parts[3]}"


@pytest.mark.parametrize("arbitrators,action", [
    (frozenset({_short(GC)}), "bootstrap"),   # garbd's id as gcomm logs it: the member holds no data
    (frozenset({GC}), "bootstrap"),
    (frozenset({GC[:13]}), "wait"),           # the uuid's first 13 characters are not gcomm's short form
    (frozenset({_short(GB)}), "wait"),        # an id that is not this member's: it may hold newer commits
    (frozenset(), "wait"),
])
def test_two_database_nodes_and_garbd(arbitrators, action):
    """node2 fenced; node1 went on with garbd (member GC) in its last Primary view, then crashed."""
    reports = {"node1": R("node1", 9, view=V(GA, GA, GC)), "node2": R("node2", None)}
    decision = decide(["node1", "node2"], reports, fenced=frozenset({"node2"}), arbitrators=arbitrators)
    assert decision.action == action, decision.reason
    if action == "wait":
        assert "not among the reporting nodes" in decision.reason
    else:
        assert decision.node == "node1"
