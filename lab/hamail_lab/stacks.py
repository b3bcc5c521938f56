# SPDX-License-Identifier: GPL-2.0-or-later
"""Which mail stack a lab runs: ``make lab STACK=...`` records it in the workdir; drills and the soak read it."""

from __future__ import annotations

from .cluster import Cluster
from .hostsys import LabError
from .mailstack import MailStack
from .sharedstack import SharedStack

STACKS = {"galera": MailStack, "shared": SharedStack}
STACK_FILE = "stack"


def make(cluster: Cluster, name: str) -> MailStack:
    """The stack called ``name`` on this cluster (LabError for an unknown name)."""
    try:
        return STACKS[name](cluster)
    except KeyError:
        raise LabError(f"unknown stack {name!r}; stacks are {', '.join(STACKS)}") from None


def save(cluster: Cluster, stack: MailStack) -> None:
    """Record which stack this lab runs."""
    (cluster.workdir / STACK_FILE).write_text(stack.name + "\n")


def load(cluster: Cluster) -> MailStack:
    """The stack a running lab was started with (labs from before stacks had a name run stack 1)."""
    try:
        name = (cluster.workdir / STACK_FILE).read_text().strip()
    except FileNotFoundError:
        name = "galera"
    return make(cluster, name)
