# SPDX-License-Identifier: GPL-2.0-or-later
"""The DRBD fence-peer/unfence handlers' decisions (pure) and their runs against scripted Pacemaker tools:
which exit code for which situation, the constraint's id and shape, and never an "outdated" answer unless the
constraint was read back from the CIB. States are /proc/drbd as the real 8.4 pair showed them (data/drbd)."""

import pathlib

import pytest

from hamail.agents.drbd import handlers as h
from hamail.agents.drbd.state import Connection, PeerVolume, ResourceState, Volume, from_proc_drbd
from hamail.pacemaker import constraints as c
from hamail.pacemaker.crmmon import parse_crm_mon
from hamail.system.clock import FakeClock
from hamail.system.runner import FakeRunner

DATA = pathlib.Path(__file__).parent / "data" / "drbd"
CID = "drbd-fence-by-handler-r0-drbd-r0-clone"


def captured(name):
    """r0 (minor 0) in a /proc/drbd captured from the pair."""
    return from_proc_drbd("r0", [0], (DATA / f"{name}.proc-drbd").read_text())


def consistent_disconnected():
    """Consistent (not UpToDate) data, peer unknown: what a crashed Secondary can come back with."""
    return ResourceState("r0", True, "Secondary", [Volume(0, 0, "Consistent")],
                         [Connection("", "WFConnection", "Unknown", [PeerVolume(0, "WFConnection", "DUnknown")])])


# ------------------------------------------------------------------------------ options and names

def test_options_from_drbd_environment_and_upstream_spellings():
    """DRBD_RESOURCE from the environment; crm-fence-peer.sh's short, long and --x=v forms; the drbd agent's
    unfence_extra_args appended."""
    opts = h.parse_options(["-t", "30", "--dc-timeout=5", "-p", "my-prefix"],
                           {"DRBD_RESOURCE": "r0", "OCF_RESKEY_unfence_extra_args":
                            "--quiet --flock-required --flock-timeout 0 --unfence-only-if-owner-match"})
    assert (opts.resource, opts.timeout, opts.dc_timeout, opts.id_prefix) == ("r0", 30, 5, "my-prefix")
    assert (opts.quiet, opts.flock_required, opts.flock_timeout, opts.owner_match) == (True, True, 0, True)
    assert h.parse_options(["--resource", "r1"], {"DRBD_RESOURCE": "r0"}).resource == "r1"


@pytest.mark.parametrize("argv, env, reason", [
    (["--suicide-on-failure-if-primary"], {"DRBD_RESOURCE": "r0"}, "unknown option"),
    (["--timeout"], {"DRBD_RESOURCE": "r0"}, "needs a value"),
    (["--timeout=ninety"], {"DRBD_RESOURCE": "r0"}, "whole seconds"),
    (["--quiet=yes"], {"DRBD_RESOURCE": "r0"}, "takes no value"),
    ([], {}, "DRBD_RESOURCE is not set"),
    (["--master-id", 'x"/><rsc_location id="y'], {"DRBD_RESOURCE": "r0"}, "may only contain"),
    ([], {"DRBD_RESOURCE": "r0; reboot"}, "may only contain"),
    (["--role", "Started"], {"DRBD_RESOURCE": "r0"}, "bans Promoted"),
])
def test_bad_arguments_are_one_line_reasons(argv, env, reason):
    """What cannot be honoured is refused with the reason (the handler then answers 1: nothing claimed)."""
    with pytest.raises(ValueError, match=reason):
        h.parse_options(argv, env)


def test_constraint_id_has_the_resource_once():
    """<prefix>-<resource>-<clone>, the resource not doubled when the prefix already ends with it."""
    assert h.constraint_id("drbd-fence-by-handler", "r0", "drbd-r0-clone") == CID
    assert h.constraint_id("drbd-fence-by-handler-r0", "r0", "drbd-r0-clone") == CID


def test_constraint_shape_bans_the_role_everywhere_but_here():
    """One rsc_location on the clone: a -INFINITY rule for the role where #uname is not this node."""
    from lxml import etree
    xml = etree.fromstring(c.role_only_on(CID, "drbd-r0-clone", "Promoted", "pair-a"))
    assert (xml.tag, xml.get("id"), xml.get("rsc")) == ("rsc_location", CID, "drbd-r0-clone")
    rule, = xml
    assert dict(rule.attrib) == {"id": "drbd-fence-by-handler-r0-rule-drbd-r0-clone", "role": "Promoted",
                                 "score": "-INFINITY"}
    expression, = rule
    assert dict(expression.attrib) == {"id": "drbd-fence-by-handler-r0-expr-drbd-r0-clone", "attribute": "#uname",
                                       "operation": "ne", "value": "pair-a"}
    assert c.node_name_in_rule(xml) == "pair-a"


def test_same_constraint_ignores_ids_and_old_role_name_but_not_the_node():
    """An operator's or upstream's identical constraint counts as ours; one keeping the role elsewhere does not."""
    from lxml import etree
    ours = c.role_only_on(CID, "drbd-r0-clone", "Promoted", "pair-a")
    upstream = etree.fromstring(c.role_only_on(CID, "drbd-r0-clone", "Master", "pair-a").replace("-rule-", "-R-"))
    assert c.same_constraint(upstream, ours)
    assert not c.same_constraint(etree.fromstring(c.role_only_on(CID, "drbd-r0-clone", "Promoted", "pair-b")), ours)
    assert not c.same_constraint(None, ours)


@pytest.mark.parametrize("schema, role", [("pacemaker-3.9", "Promoted"), ("pacemaker-3.7", "Promoted"),
                                          ("pacemaker-3.6", "Master"), ("pacemaker-2.10", "Master"), ("", "Master")])
def test_role_name_follows_the_schema(schema, role):
    """Promoted only where the CIB's schema knows it (pacemaker-3.7+): an older CIB would reject the write."""
    assert c.role_name(c.parse_cib(f'<cib validate-with="{schema}"/>')) == role


def test_the_clone_is_found_by_its_drbd_resource():
    """The promotable clone (or legacy master) whose primitive runs drbd_resource=r0; not a plain clone."""
    def cib(wrapper, meta):
        return c.parse_cib(f'<cib><configuration><resources><{wrapper} id="w">{meta}<primitive id="p">'
                           f'<instance_attributes id="i"><nvpair id="n" name="drbd_resource" value="r0"/>'
                           f'</instance_attributes></primitive></{wrapper}></resources></configuration></cib>')
    promotable = '<meta_attributes id="m"><nvpair id="m1" name="promotable" value="true"/></meta_attributes>'
    assert c.promotable_holding(cib("clone", promotable), "drbd_resource", "r0") == "w"
    assert c.promotable_holding(cib("master", ""), "drbd_resource", "r0") == "w"
    assert c.promotable_holding(cib("clone", ""), "drbd_resource", "r0") is None
    assert c.promotable_holding(cib("clone", promotable), "drbd_resource", "r1") is None


# ------------------------------------------------------------------------------ the peer

def status(b_online="true", b_unclean="false", dc=True, nodes=("pair-a", "pair-b")):
    """crm_mon's XML for a two-node cluster, pair-b as given."""
    rows = "".join(f'<node name="{n}" id="{i}" online="{b_online if n == "pair-b" else "true"}" '
                   f'unclean="{b_unclean if n == "pair-b" else "false"}"/>' for i, n in enumerate(nodes, 1))
    current = '<current_dc present="true" name="pair-a" with_quorum="true"/>' if dc else '<current_dc present="false"/>'
    return f'<pacemaker-result><summary>{current}</summary><nodes>{rows}</nodes></pacemaker-result>'


@pytest.mark.parametrize("xml, peer, seen", [
    (status(), "pair-b", h.PeerState.WAIT_ONLINE),
    (status(b_online="false"), "pair-b", h.PeerState.FENCED),
    (status(b_online="false", b_unclean="true"), "pair-b", h.PeerState.WAIT_FENCING),
    (status(dc=False), "pair-b", h.PeerState.WAIT_DC),
    (status(), "pair-c", h.PeerState.WAIT_UNKNOWN),
    (status(b_online="false"), None, h.PeerState.FENCED),  # two nodes: the other one is the peer
    (status(b_online="false", nodes=("pair-a", "pair-b", "pair-c")), None, h.PeerState.WAIT_UNKNOWN),
])
def test_classify_peer(xml, peer, seen):
    """Cleanly down is fenced; unclean waits for fencing; online waits for its controller's answer."""
    assert h.classify_peer(parse_crm_mon(xml.encode()), peer, "pair-a") == seen


def test_what_waiting_means_at_the_timeout():
    """Fencing never completed: unreachable; no DC: DC-unreachable; anything else: unknown."""
    assert h.final_peer_state(h.PeerState.WAIT_FENCING) == h.PeerState.UNREACHABLE
    assert h.final_peer_state(h.PeerState.WAIT_DC) == h.PeerState.DC_UNREACHABLE
    assert h.final_peer_state(h.PeerState.WAIT_ONLINE) == h.PeerState.UNKNOWN


# ------------------------------------------------------------------------------ the decisions

P = h.PeerState


@pytest.mark.parametrize("state, peer, act, code", [
    ("primary-wfconnection", P.REACHABLE, True, h.PEER_OUTDATED),
    ("primary-wfconnection", P.FENCED, True, h.PEER_FENCED),
    ("primary-wfconnection", P.UNREACHABLE, True, h.PEER_UNREACHABLE),
    ("primary-wfconnection", P.UNKNOWN, True, h.PEER_UNREACHABLE),
    ("primary-wfconnection", P.DC_UNREACHABLE, True, h.PEER_UNREACHABLE),
    ("consistent", P.REACHABLE, True, h.PEER_OUTDATED),
    ("consistent", P.FENCED, False, h.PEER_UNREACHABLE),  # our data may be older than the fenced peer's
    ("consistent", P.UNREACHABLE, False, h.PEER_UNREACHABLE),
    ("outdated-wfconnection", P.REACHABLE, False, h.PEER_UNREACHABLE),
    ("inconsistent-wfconnection", P.FENCED, False, h.PEER_UNREACHABLE),
    ("primary-connected", P.REACHABLE, False, h.FAILED),  # the peer is UpToDate: nothing to fence
    ("unconfigured", P.REACHABLE, False, h.FAILED),
])
def test_fence_outcome(state, peer, act, code):
    """Which situation places the constraint and which exit code DRBD gets (3..7 per drbd.conf(5))."""
    resource = consistent_disconnected() if state == "consistent" else captured(state)
    outcome = h.fence_outcome(resource, peer)
    assert (outcome.act, outcome.code) == (act, code), outcome.why


@pytest.mark.parametrize("state, owner, owner_match, act, code", [
    ("primary-connected", "pair-a", False, True, 0),
    ("secondary-connected", "pair-b", False, True, 0),   # after-resync-target on the banned node lifts it
    ("secondary-connected", "pair-b", True, False, 0),   # ... unless only the owner may
    ("primary-connected", "pair-a", True, True, 0),
    ("secondary-synctarget", "pair-a", False, False, h.FAILED),
    ("primary-wfconnection", "pair-a", False, False, h.FAILED),
])
def test_unfence_outcome(state, owner, owner_match, act, code):
    """The ban goes only when every disk here and on the peer is UpToDate."""
    outcome = h.unfence_outcome(captured(state), owner, "pair-a", owner_match)
    assert (outcome.act, outcome.code) == (act, code), outcome.why


# ------------------------------------------------------------------------------ whole runs, tools scripted

CLONE = ('<clone id="drbd-r0-clone"><meta_attributes id="m"><nvpair id="m1" name="promotable" value="true"/>'
         '</meta_attributes><primitive id="drbd-r0" class="ocf" provider="hamail" type="drbd">'
         '<instance_attributes id="i"><nvpair id="i1" name="drbd_resource" value="r0"/></instance_attributes>'
         '</primitive></clone>')
WANT = c.role_only_on(CID, "drbd-r0-clone", "Promoted", "pair-a")
QUERY = ("cibadmin", "--query", "--local")
CRM_MON = ("crm_mon", "--output-as=xml", "--inactive", "--fence-history=3", "--show-node-attributes")
CREATE = ("cibadmin", "--create", "--scope", "constraints", "--xml-text", WANT)
DELETE = ("cibadmin", "--delete", "--scope", "constraints", "--xml-text", f'<rsc_location id="{CID}"/>')


def cib(constraint=""):
    """A CIB with the clone and, maybe, a constraint."""
    return (f'<cib validate-with="pacemaker-3.9"><configuration><resources>{CLONE}</resources>'
            f'<constraints>{constraint}</constraints></configuration><status/></cib>')


def run(which, script, proc_state, tmp_path, argv=("--timeout", "10", "--dc-timeout", "5"), minor="0"):
    """A handler run with scripted tools and a captured /proc/drbd; (exit code, log text)."""
    proc = tmp_path / "proc-drbd"
    proc.write_text((DATA / f"{proc_state}.proc-drbd").read_text())
    runner = FakeRunner(script)
    logfile = tmp_path / "handler.log"
    code = h.main(which, list(argv), {"DRBD_RESOURCE": "r0", "DRBD_MINOR": minor, "DRBD_PEER": "pair-b",
                                      "HA_LOGFILE": str(logfile), "HA_LOGFACILITY": "none"},
                  runner=runner, clock=FakeClock(), proc_drbd=str(proc))
    runner.assert_done()
    return code, logfile.read_text() if logfile.exists() else ""


@pytest.fixture(autouse=True)
def lock_dir(tmp_path, monkeypatch):
    """The handlers' lock in the test's directory."""
    monkeypatch.setattr(h, "LOCK_DIR", str(tmp_path / "lock"))


def test_fence_places_reads_back_and_answers_outdated(tmp_path):
    """Peer online and its controller answering, disk UpToDate: create, read back, 4."""
    script = [(QUERY, 0, cib(), ""), (("crm_node", "-n"), 0, "pair-a\n", ""), (CRM_MON, 0, status(), ""),
              (("crmadmin", "--timeout", "10000ms", "--status", "pair-b"), 0,
               "Controller on pair-b in state S_NOT_DC: ok\n", ""),
              (CREATE, 0, "", ""), (QUERY, 0, cib(WANT), "")]
    code, log = run("fence", script, "primary-wfconnection", tmp_path)
    assert code == h.PEER_OUTDATED, log
    assert f"peer is reachable, my disk is UpToDate: placed constraint {CID}" in log


def test_fence_never_answers_outdated_without_the_constraint_in_the_cib(tmp_path):
    """cibadmin said yes but the CIB does not hold the constraint: 1 (nothing claimed), never 4."""
    script = [(QUERY, 0, cib(), ""), (("crm_node", "-n"), 0, "pair-a\n", ""),
              (CRM_MON, 0, status(b_online="false"), ""), (CREATE, 0, "", ""), (QUERY, 0, cib(), "")]
    code, log = run("fence", script, "primary-wfconnection", tmp_path)
    assert code == h.FAILED
    assert "DATA INTEGRITY at RISK" in log


def test_fence_refuses_when_the_peer_keeps_the_role(tmp_path):
    """The peer's ban (keeping Promoted on pair-b) is in the CIB: never replaced, 1: this node stays Secondary."""
    theirs = c.role_only_on(CID, "drbd-r0-clone", "Promoted", "pair-b")
    script = [(QUERY, 0, cib(theirs), ""), (("crm_node", "-n"), 0, "pair-a\n", "")]
    code, log = run("fence", script, "secondary-wfconnection", tmp_path)
    assert code == h.FAILED
    assert "keeps the Promoted role on pair-b" in log


def test_fence_answers_failed_when_the_cib_cannot_be_written(tmp_path):
    """cibadmin fails (no DC): one line, 1."""
    script = [(QUERY, 0, cib(), ""), (("crm_node", "-n"), 0, "pair-a\n", ""),
              (CRM_MON, 0, status(b_online="false"), ""), (CREATE, 102, "", "Call cib_create failed: Timer expired")]
    code, log = run("fence", script, "primary-wfconnection", tmp_path)
    assert code == h.FAILED
    assert "cannot create the constraint: Call cib_create failed: Timer expired" in log
    assert "Traceback" not in log


def test_fence_without_a_clone_says_so(tmp_path):
    """No promotable clone runs r0: 1 with the reason."""
    code, log = run("fence", [(QUERY, 0, '<cib><configuration><resources/></configuration></cib>', "")],
                    "primary-wfconnection", tmp_path)
    assert code == h.FAILED
    assert "no promotable clone with drbd_resource=r0" in log


def test_unfence_removes_once_all_up_to_date_and_checks(tmp_path):
    """Both disks UpToDate: delete by id, read back, 0."""
    script = [(QUERY, 0, cib(WANT), ""), (DELETE, 0, "", ""), (QUERY, 0, cib(), "")]
    code, log = run("unfence", script, "secondary-connected", tmp_path)
    assert code == 0, log
    assert f"removed constraint {CID}" in log


def test_unfence_keeps_the_ban_while_syncing(tmp_path):
    """Still SyncTarget: the ban stays, 1."""
    code, log = run("unfence", [(QUERY, 0, cib(WANT), "")], "secondary-synctarget", tmp_path)
    assert code == h.FAILED
    assert "constraint left in place" in log
