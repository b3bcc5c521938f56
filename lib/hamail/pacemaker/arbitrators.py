# SPDX-License-Identifier: GPL-2.0-or-later
"""Group-communication member ids of arbitrators (garbd), kept in the CIB where a database recovery finds them.

A Galera arbitrator is a member of the Primary component that holds no data. After an outage the database
nodes' last Primary views name every member by its gcomm id, and a member that is not a reporting database node
may be a missing one holding newer commits, unless it is known to be an arbitrator. ocf:hamail:garbd records
its id each time garbd starts, as the permanent node attribute ARBITRATOR_IDS (newest first, the last KEPT), so
the record survives every node losing power; ocf:hamail:galera reads it only when a node is missing.
"""

from __future__ import annotations

from hamail.pacemaker.attributes import PermanentAttributes

__all__ = ["ARBITRATOR_IDS", "KEPT", "record", "known"]

ARBITRATOR_IDS = "hamail-galera-arbitrator-ids"
# garbd gets a new id at every start; a view may name one from before the last restart or two.
KEPT = 4


def record(runner, node: str, member_id: str, deadline=None) -> list[str]:
    """Add an arbitrator's id to node's record (newest first, the last KEPT); returns the record."""
    attrs = PermanentAttributes(runner, deadline)
    ids = [member_id] + [i for i in (attrs.get(node, ARBITRATOR_IDS) or "").split() if i != member_id]
    ids = ids[:KEPT]
    attrs.set(node, ARBITRATOR_IDS, " ".join(ids))
    return ids


def known(runner, nodes, deadline=None) -> frozenset[str]:
    """Every arbitrator id recorded on any of nodes."""
    attrs = PermanentAttributes(runner, deadline)
    ids: set[str] = set()
    for node in nodes:
        ids.update((attrs.get(node, ARBITRATOR_IDS) or "").split())
    return frozenset(ids)
