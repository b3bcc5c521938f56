# SPDX-License-Identifier: GPL-2.0-or-later
"""Durable fencing records: when a node was last fenced, kept in the CIB where it survives a total power loss.

pacemaker-fenced keeps its fencing history in memory only: once every node has lost power, nobody remembers
that a missing node was fenced, and a recovery that needs that proof would wait for it forever. A record is
a permanent node attribute <name> holding the epoch seconds of the node's latest successful off/reboot,
copied from the live history while the cluster still has it (galera's Promoted monitor; DRBD's fence-peer
handler needs the same).

Whether a fencing proves a node has stayed down since it last ran is decided without comparing clocks of
different nodes: when a node (re)joins, it notes the newest fencing of itself known then (<name>-last-join);
only a fencing newer than that one counts. Both are fencing completion times from the fencing history, so
only the fencers' clocks meet, and a fencer whose clock is behind can make a new fencing look old (the
caller then waits), never an old one look new.
"""

from __future__ import annotations

from hamail.pacemaker.attributes import PermanentAttributes

__all__ = ["FencingRecords"]


def _epoch(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


class FencingRecords:
    """Read and write the durable fencing records of one name (e.g. '<resource>-fenced-at')."""

    def __init__(self, runner, name: str, deadline=None) -> None:
        self._attrs = PermanentAttributes(runner, deadline)
        self.name = name
        self.joined_name = f"{name}-last-join"

    def latest(self, node: str, status=None) -> int | None:
        """The newest fencing of node known: the record, or the live history (a crmmon.ClusterStatus)."""
        times = [t for t in (self.recorded(node), status.last_fenced(node) if status is not None else None)
                 if t is not None]
        return int(max(times)) if times else None

    def note_joined(self, node: str, status=None) -> None:
        """node (re)joins: the fencings known now are ones it came back from and excuse it no more."""
        latest = self.latest(node, status)
        if latest is not None and latest != _epoch(self._attrs.get(node, self.joined_name)):
            self._attrs.set(node, self.joined_name, str(latest))

    def fenced_since_joined(self, node: str, status=None) -> int | None:
        """The newest fencing of node if it is newer than the last one it came back from (else None): node has
        not run since it was fenced."""
        latest = self.latest(node, status)
        joined = _epoch(self._attrs.get(node, self.joined_name))
        return latest if latest is not None and (joined is None or latest > joined) else None

    def recorded(self, node: str) -> int | None:
        """When node's latest recorded fencing completed (epoch seconds), None without a record."""
        return _epoch(self._attrs.get(node, self.name))

    def record(self, node: str, completed: float) -> None:
        """Record a fencing of node that completed at `completed` (epoch seconds)."""
        self._attrs.set(node, self.name, str(int(completed)))

    def record_missing(self, status, nodes, me: str) -> list[tuple[str, int]]:
        """Copy the newest successful fencing of every offline node in `nodes` from the live history (a
        crmmon.ClusterStatus) into the CIB, where it is newer than the record; returns what was recorded."""
        online = set(status.online_nodes())
        done = []
        for node in nodes:
            if node == me or node in online:
                continue
            latest = status.last_fenced(node)
            if latest is None or int(latest) <= (self.recorded(node) or 0):
                continue
            self.record(node, latest)
            done.append((node, int(latest)))
        return done
