# SPDX-License-Identifier: GPL-2.0-or-later
"""Galera's bootstrap decision (hamail.agents.galera.recovery.decide) over random outages, with hypothesis:
whatever the nodes report, who is missing, fenced or online and what views they recorded, without an operator
override it never bootstraps a node behind another reporter of the same cluster, never leaves out a missing
node that was not proven down after leaving, and every node computing it from the same facts names the same
single node."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hamail.agents.galera.recovery import NO_SEQNO, NodeReport, View, decide

NODES = ["node1", "node2", "node3"]
CLUSTER_UUIDS = ["6e2a4c3e-0000-4000-8000-00000000000a", "6e2a4c3e-0000-4000-8000-00000000000b"]
# gcomm uuids: each node's own member id (a restarted node gets a new one: two per node).
GCOMM = {n: [f"{i:08x}-1111-4111-8111-{j:012x}" for j in range(2)] for i, n in enumerate(NODES, 1)}


@st.composite
def outages(draw):
    """Reports of a random subset of nodes, their views, fencings, online nodes."""
    reporting = draw(st.lists(st.sampled_from(NODES), unique=True, min_size=1))
    incarnation = {n: draw(st.integers(0, 1)) for n in NODES}
    reports = {}
    for node in reporting:
        members = draw(st.sets(st.sampled_from(NODES), min_size=0))
        view = None
        if draw(st.booleans()):
            uuids = frozenset(GCOMM[m][incarnation[m]] for m in members | {node})
            view = View(GCOMM[node][incarnation[node]], draw(st.integers(1, 9)), uuids)
        reports[node] = NodeReport(
            node, draw(st.sampled_from(CLUSTER_UUIDS)), draw(st.sampled_from([NO_SEQNO, 0, 5, 9, 1000, 1001])),
            safe_to_bootstrap=draw(st.booleans()) and draw(st.booleans()), no_grastate=draw(st.booleans()),
            view=view, view_time=draw(st.one_of(st.none(), st.floats(1e9, 1e9 + 100))),
            sst_incomplete=draw(st.integers(0, 5)) == 0, failed_bootstraps=draw(st.sampled_from([0, 0, 0, 1, 2, 3])))
    fenced = frozenset(draw(st.sets(st.sampled_from(NODES))))
    online = frozenset(draw(st.sets(st.sampled_from(NODES)))) | frozenset(reporting)
    return reports, fenced, online


def data_choice(reports, fenced, online):
    """The decision the data alone makes when no bootstrap has failed."""
    without_failures = {n: NodeReport(r.node, r.uuid, r.seqno, r.safe_to_bootstrap, r.no_grastate, r.view, r.force,
                                      r.view_time, r.sst_incomplete, 0) for n, r in reports.items()}
    return decide(NODES, without_failures, fenced=fenced, online=online)


def seen_in_views(reports, node) -> bool:
    """Whether any reporter's last Primary view holds one of node's gcomm identities."""
    return any(r.view is not None and r.view.members & set(GCOMM[node]) for r in reports.values())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outages())
def test_never_a_lower_seqno_of_the_same_cluster_without_override(outage):
    reports, fenced, online = outage
    chosen = decide(NODES, reports, fenced=fenced, online=online)
    if chosen.action != "bootstrap":
        return
    winner = reports[chosen.node]
    if winner.safe_to_bootstrap:
        return  # Galera's own marker: the node shut down last and cleanly
    # a datadir holding an unfinished state transfer is a partial copy: whatever seqno it reports means nothing
    behind = [r.node for r in reports.values() if r.uuid == winner.uuid and r.seqno is not None
              and r.seqno > winner.seqno and not r.sst_incomplete]
    assert behind == [], (chosen, reports)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outages())
def test_never_a_partial_copy_nor_a_node_whose_bootstrap_keeps_failing(outage):
    """Without an override: never a datadir whose state transfer did not finish; a node whose bootstrap failed
    twice only when no other node holds its data, and another node stands in only holding at least its data."""
    reports, fenced, online = outage
    chosen = decide(NODES, reports, fenced=fenced, online=online)
    if chosen.action != "bootstrap":
        return
    winner = reports[chosen.node]
    assert not winner.sst_incomplete, (chosen, reports)
    assert winner.failed_bootstraps < 2, (chosen, reports)
    first = data_choice(reports, fenced, online)
    if first.node != chosen.node:  # a stand-in for the node the data chose
        failed = reports[first.node]
        assert failed.failed_bootstraps >= 2
        assert winner.seqno >= failed.seqno and (winner.uuid == failed.uuid or failed.seqno == NO_SEQNO)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outages())
def test_never_without_a_missing_node_that_was_in_a_view_or_is_unproven(outage):
    reports, fenced, online = outage
    chosen = decide(NODES, reports, fenced=fenced, online=online)
    if chosen.action != "bootstrap" or reports[chosen.node].safe_to_bootstrap:
        return
    if reports[data_choice(reports, fenced, online).node].safe_to_bootstrap:
        return  # a stand-in holding the data of the node that shut down last (whose bootstrap keeps failing)
    for node in NODES:
        if node in reports:
            continue
        assert node in fenced and node not in online, (node, chosen, reports, fenced, online)
        assert not seen_in_views(reports, node), (node, chosen, reports)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outages())
def test_every_node_names_the_same_single_winner(outage):
    """The nodes compute the decision each on their own, from the same facts in whatever order they arrive."""
    reports, fenced, online = outage
    outcomes = set()
    for order in itertools.permutations(reports):
        chosen = decide(NODES, {n: reports[n] for n in order}, fenced=fenced, online=online)
        outcomes.add((chosen.action, chosen.node))
    assert len(outcomes) == 1, outcomes
    action, node = outcomes.pop()
    assert (action == "bootstrap") == (node is not None)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outages(), st.sampled_from(NODES + ["nodeX"]), st.sets(st.sampled_from(NODES)))
def test_an_override_never_discards_newer_usable_data_nor_runs_ahead_of_a_report(outage, override, pending):
    """An override bootstraps only a node no usable reporter of its cluster is ahead of, and only once every
    running node has reported (a node about to report may hold newer data)."""
    reports, fenced, online = outage
    chosen = decide(NODES, reports, fenced=fenced, online=online, override=override, pending=frozenset(pending))
    if not chosen.overridden:
        return
    assert all(n in reports and reports[n].reported for n in pending)
    mine = reports[chosen.node]
    for other in reports.values():
        usable = not other.sst_incomplete and other.failed_bootstraps < 2
        if usable and other.uuid == mine.uuid and mine.seqno != NO_SEQNO:
            assert other.seqno <= mine.seqno, (chosen.reason, other)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outages(), st.sampled_from(NODES + ["nodeX"]), st.booleans())
def test_an_override_only_ever_ends_a_wait(outage, override, as_attribute):
    """Left in place (parameter or force attribute), an override never replaces what the data decides."""
    reports, fenced, online = outage
    safe = decide(NODES, reports, fenced=fenced, online=online)
    if as_attribute and override in reports:
        forced = dict(reports)
        original = reports[override]
        forced[override] = NodeReport(original.node, original.uuid, original.seqno, original.safe_to_bootstrap,
                                      original.no_grastate, original.view, True, original.view_time,
                                      original.sst_incomplete, original.failed_bootstraps)
        chosen = decide(NODES, forced, fenced=fenced, online=online)
    else:
        chosen = decide(NODES, reports, fenced=fenced, online=online, override=override)
    if safe.action != "wait":
        assert (chosen.action, chosen.node, chosen.overridden) == (safe.action, safe.node, False)
    elif chosen.action == "bootstrap":
        assert chosen.overridden and chosen.node == override and reports[override].reported
        assert safe.reason in chosen.reason  # the log says what the override overrode
    else:
        assert not chosen.overridden


def test_two_node_mode_trusts_a_fenced_peer_only_when_this_node_did_not_leave_cleanly():
    """Two nodes: one alone is never Primary, so a peer fenced after this node's last Primary view (which held
    both) committed nothing after it; a node without a view left cleanly and may be behind: it waits."""
    nodes = ["node1", "node2"]
    both = View(GCOMM["node1"][0], 4, frozenset({GCOMM["node1"][0], GCOMM["node2"][0]}))
    crashed = {"node1": NodeReport("node1", CLUSTER_UUIDS[0], 9, view=both, view_time=1e9)}
    fenced, online = frozenset({"node2"}), frozenset({"node1"})
    assert decide(nodes, crashed, fenced=fenced, online=online).action == "wait"
    chosen = decide(nodes, crashed, fenced=fenced, online=online, two_node=True)
    assert (chosen.action, chosen.node) == ("bootstrap", "node1")
    left_cleanly = {"node1": NodeReport("node1", CLUSTER_UUIDS[0], 9, view=None, view_time=None)}
    assert decide(nodes, left_cleanly, fenced=fenced, online=online, two_node=True).action == "wait"
    # offline is not fenced: both halves of a split see the other offline
    assert decide(nodes, crashed, fenced=frozenset(), online=online, two_node=True).action == "wait"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outages(), st.sampled_from(NODES), st.floats(-900, 900))
def test_clocks_that_disagree_change_nothing(outage, skewed, offset):
    """A node whose clock is minutes off (before NTP) records view times that disagree with the others': the
    decision is made from seqnos, views and marks only, so it is the same."""
    reports, fenced, online = outage
    shifted = dict(reports)
    if skewed in reports and reports[skewed].view_time is not None:
        r = reports[skewed]
        shifted[skewed] = NodeReport(r.node, r.uuid, r.seqno, r.safe_to_bootstrap, r.no_grastate, r.view, r.force,
                                     r.view_time + offset, r.sst_incomplete, r.failed_bootstraps)
    before = decide(NODES, reports, fenced=fenced, online=online)
    after = decide(NODES, shifted, fenced=fenced, online=online)
    assert (after.action, after.node, after.reason) == (before.action, before.node, before.reason)
