# SPDX-License-Identifier: GPL-2.0-or-later
"""The promotion score of a DRBD resource on this node: linbit's drbd agent's policy, as a pure function.

``adjust_master_score`` is four numbers (default ``0 10 1000 10000``): only Consistent data, only a peer's
UpToDate data, UpToDate here as Secondary with a peer disk unknown, UpToDate here and Primary or the peers known.
A score of 0 or less withdraws the score (as linbit's agent does: Pacemaker then never promotes here).
"""

from __future__ import annotations

from hamail.agents.drbd.state import ResourceState

__all__ = ["KEEP", "Adjust", "parse_adjust", "score", "PeerPrimaryRule", "parse_peer_primary_rule"]

# The score stays as it is (DRBD is still deciding: attaching, negotiating).
KEEP = "keep"


class Adjust:
    """The four score levels of adjust_master_score."""

    __slots__ = ("only_consistent", "only_remote", "local_ok", "best")

    def __init__(self, only_consistent: int, only_remote: int, local_ok: int, best: int) -> None:
        self.only_consistent, self.only_remote, self.local_ok, self.best = only_consistent, only_remote, local_ok, best


def parse_adjust(text: str) -> Adjust:
    """Four non-decreasing integers separated by blanks; ValueError with the reason otherwise."""
    words = text.split()
    if len(words) != 4:
        raise ValueError(f"expected four numbers (e.g. \"0 10 1000 10000\"), got {len(words)}")
    try:
        numbers = [int(word) for word in words]
    except ValueError:
        raise ValueError(f"{text!r} holds something that is not an integer") from None
    if numbers != sorted(numbers):
        raise ValueError(f"{text!r} must be non-decreasing")
    return Adjust(*numbers)


class PeerPrimaryRule:
    """remove_master_score_if_peer_primary: never, always, or only when Pacemaker knows no Promoted instance."""

    NEVER = "false"
    ALWAYS = "true"
    UNEXPECTED = "unexpected"


def parse_peer_primary_rule(text: str) -> str:
    """linbit reads an OCF true as ALWAYS, the literal "unexpected" as UNEXPECTED, anything else as NEVER."""
    low = text.strip()
    if low in ("yes", "true", "1", "YES", "TRUE", "True", "ja", "on", "ON"):
        return PeerPrimaryRule.ALWAYS
    if low == "unexpected":
        return PeerPrimaryRule.UNEXPECTED
    return PeerPrimaryRule.NEVER


def score(state: ResourceState, adjust: Adjust, peer_primary_rule: str = PeerPrimaryRule.NEVER,
          pacemaker_knows_promoted: bool | None = None):
    """The score to publish: an int, None (withdraw), or KEEP (leave the current one).

    pacemaker_knows_promoted matters only for the "unexpected" rule: whether Pacemaker runs a Promoted
    instance of this clone anywhere (None: not asked, counts as known, so nothing is withdrawn on a guess).
    """
    if not state.configured:
        return None
    if state.quorum is False:
        return None
    if (peer_primary_rule != PeerPrimaryRule.NEVER and not state.primary and state.peer_primary
            and state.some_peer_all_up_to_date):
        if peer_primary_rule == PeerPrimaryRule.ALWAYS or pacemaker_knows_promoted is False:
            return None
    if state.diskless_client:
        if state.primary and state.some_peer_all_up_to_date:
            return _positive(adjust.best - 1)
        if state.peer_disks_all_up_to_date:
            return _positive(adjust.best - 1)
        if state.some_peer_all_up_to_date:
            return _positive(adjust.local_ok - 1)
        return None
    if state.disks_all_up_to_date:
        if state.primary:
            return _positive(adjust.best)
        if state.peer_disk_unknown:
            return _positive(adjust.local_ok)
        return _positive(adjust.best)
    if state.some_peer_all_up_to_date:
        return _positive(adjust.only_remote)
    if state.disks_transitional:
        return KEEP
    if state.disks_all_consistent:
        return _positive(adjust.only_consistent)
    return None


def _positive(value: int) -> int | None:
    """linbit's set_master_score: 0 or less removes the score instead of setting it."""
    return value if value > 0 else None
