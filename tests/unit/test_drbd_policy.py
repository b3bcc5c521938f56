# SPDX-License-Identifier: GPL-2.0-or-later
"""linbit's promotion-score policy, on the states a real DRBD 8.4 pair went through (data/drbd) and DRBD 9 cases."""

import pathlib

import pytest

from hamail.agents.drbd import policy
from hamail.agents.drbd.state import Connection, PeerVolume, ResourceState, Volume, from_proc_drbd, parse_sh_status

DATA = pathlib.Path(__file__).parent / "data" / "drbd"
DEFAULT = policy.parse_adjust("0 10 1000 10000")

# captured state -> score with the default adjust_master_score (None: no score, Pacemaker does not promote here)
SCORES = {
    "unconfigured": None,
    "inconsistent-wfconnection": None,        # no good data anywhere
    "inconsistent-connected": None,
    "primary-syncsource": 10000,              # Primary with UpToDate data
    "secondary-synctarget": 10,               # only the peer's data is UpToDate
    "primary-connected": 10000,
    "secondary-peer-primary": 10000,          # the peer's role is ignored by default
    "secondary-connected": 10000,             # UpToDate here, peer known
    "secondary-wfconnection": 1000,           # UpToDate here, peer disk unknown
    "primary-wfconnection": 10000,
    "secondary-standalone": 1000,
    "outdated-wfconnection": None,            # Outdated data is never promoted
    "diskless-wfconnection": None,
}


@pytest.mark.parametrize("name", sorted(SCORES))
def test_captured_states(name):
    """The score for each state the real pair was in, from both 8.4 views."""
    for state in (parse_sh_status("r0", (DATA / f"{name}.sh-status").read_text()),
                  from_proc_drbd("r0", [0], (DATA / f"{name}.proc-drbd").read_text())):
        assert policy.score(state, DEFAULT) == SCORES[name], state


def test_custom_levels_are_used():
    """Each of the four levels comes from adjust_master_score."""
    adjust = policy.parse_adjust("1 20 300 4000")
    got = {name: policy.score(parse_sh_status("r0", (DATA / f"{name}.sh-status").read_text()), adjust)
           for name in ("secondary-synctarget", "secondary-wfconnection", "secondary-connected")}
    assert got == {"secondary-synctarget": 20, "secondary-wfconnection": 300, "secondary-connected": 4000}
    consistent = ResourceState("r0", True, "Secondary", [Volume(0, 0, "Consistent")],
                               [Connection("", "WFConnection", "Unknown", [PeerVolume(0, "WFConnection", "DUnknown")])])
    assert policy.score(consistent, adjust) == 1
    assert policy.score(consistent, DEFAULT) is None  # 0 withdraws, as linbit's set_master_score does


def test_peer_primary_rules():
    """remove_master_score_if_peer_primary: true withdraws next to a healthy Primary; unexpected only when
    Pacemaker knows no Promoted instance; the Primary itself keeps its score."""
    secondary = parse_sh_status("r0", (DATA / "secondary-peer-primary.sh-status").read_text())
    primary = parse_sh_status("r0", (DATA / "primary-connected.sh-status").read_text())
    always = policy.parse_peer_primary_rule("true")
    unexpected = policy.parse_peer_primary_rule("unexpected")
    assert policy.score(secondary, DEFAULT, always) is None
    assert policy.score(primary, DEFAULT, always) == 10000
    assert policy.score(secondary, DEFAULT, unexpected, pacemaker_knows_promoted=True) == 10000
    assert policy.score(secondary, DEFAULT, unexpected, pacemaker_knows_promoted=False) is None
    assert policy.score(secondary, DEFAULT, unexpected, pacemaker_knows_promoted=None) == 10000
    assert policy.score(secondary, DEFAULT, policy.parse_peer_primary_rule("no")) == 10000


def _res(role, disks, peers, quorum=None, client=False):
    return ResourceState("r0", True, role, [Volume(i, i, d, client) for i, d in enumerate(disks)],
                         [Connection(name, state, peer_role, [PeerVolume(i, state, p) for i, p in enumerate(pdsks)])
                          for name, state, peer_role, pdsks in peers], quorum)


def test_quorum_loss_withdraws_even_uptodate_primary():
    """DRBD 9 quorum:no: no score whatever the data."""
    assert policy.score(_res("Primary", ["UpToDate"], [("b", "Connecting", "Unknown", ["DUnknown"])],
                             quorum=False), DEFAULT) is None


def test_transitional_disk_keeps_the_score():
    """Attaching/Negotiating: leave the current score alone."""
    assert policy.score(_res("Secondary", ["Negotiating"], [("b", "Connected", "Secondary", ["Inconsistent"])]),
                        DEFAULT) == policy.KEEP


def test_multi_volume_needs_every_volume():
    """One Inconsistent volume of two (DRBD 9, peer UpToDate on both): only the peer's data counts."""
    st = _res("Secondary", ["UpToDate", "Inconsistent"], [("b", "Connected", "Secondary", ["UpToDate", "UpToDate"])])
    assert policy.score(st, DEFAULT) == 10
    three = _res("Secondary", ["UpToDate"], [("b", "Connected", "Secondary", ["UpToDate"]),
                                            ("c", "Connecting", "Unknown", ["DUnknown"])])
    assert policy.score(three, DEFAULT) == 1000  # one of two peers unknown


def test_diskless_client():
    """An intentionally diskless client: best-1 with every peer UpToDate, local_ok-1 with some, none without."""
    good = ("b", "Connected", "Secondary", ["UpToDate"])
    bad = ("c", "Connected", "Secondary", ["Outdated"])
    assert policy.score(_res("Secondary", ["Diskless"], [good], client=True), DEFAULT) == 9999
    assert policy.score(_res("Primary", ["Diskless"], [good, bad], client=True), DEFAULT) == 9999
    assert policy.score(_res("Secondary", ["Diskless"], [good, bad], client=True), DEFAULT) == 999
    assert policy.score(_res("Secondary", ["Diskless"], [bad], client=True), DEFAULT) is None


@pytest.mark.parametrize("text", ["0 10 1000", "0 10 x 10000", "10 0 1000 10000", ""])
def test_bad_adjust_is_refused(text):
    """Four non-decreasing integers, or ValueError naming the problem."""
    with pytest.raises(ValueError):
        policy.parse_adjust(text)
