# SPDX-License-Identifier: GPL-2.0-or-later
"""crm_mon's XML as typed objects: nodes, resources, fencing history."""

import dataclasses
from typing import Mapping, Optional

from hamail.system.clock import Deadline
from hamail.pacemaker import PacemakerError
from hamail.system.runner import CommandRunner

__all__ = ["NodeStatus", "FenceEvent", "ResourceStatus", "ClusterStatus", "parse_crm_mon", "read_cluster_status"]


@dataclasses.dataclass(frozen=True)
class NodeStatus:
    """A node as crm_mon sees it."""

    name: str
    id: str
    online: bool
    standby: bool
    unclean: bool
    shutdown: bool
    is_dc: bool
    expected_up: bool
    container: Optional[str] = None  # a guest node's (bundle replica's) container resource: id_as_resource


@dataclasses.dataclass(frozen=True)
class FenceEvent:
    """One entry of the fencing history."""

    target: str
    action: str
    status: str
    delegate: str
    completed: str

    @property
    def succeeded(self) -> bool:
        """Whether the fencing completed successfully."""
        return self.status == "success"

    @property
    def completed_epoch(self) -> Optional[float]:
        """When the fencing completed, as seconds since the epoch (None when unknown or unparsable)."""
        import datetime
        text = self.completed.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            stamp = datetime.datetime.fromisoformat(text)
        except ValueError:
            return None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=datetime.timezone.utc)
        return stamp.timestamp()


@dataclasses.dataclass(frozen=True)
class ResourceStatus:
    """One resource instance (a primitive, possibly in a clone) as crm_mon sees it."""

    id: str
    agent: str
    role: str
    active: bool
    failed: bool
    nodes: tuple[str, ...]
    clone: Optional[str]
    pending: Optional[str] = None  # the operation in flight ("Starting", "Promoting", ...), None when settled

    @property
    def settled_active(self) -> bool:
        """Active, not failed, and no operation in flight (a resource still Starting does not serve yet)."""
        return self.active and not self.failed and not self.pending


@dataclasses.dataclass(frozen=True)
class ClusterStatus:
    """The parts of crm_mon's XML that agents base decisions on."""

    have_quorum: bool
    dc: Optional[str]
    nodes: Mapping[str, NodeStatus]
    resources: tuple[ResourceStatus, ...]
    fencing: tuple[FenceEvent, ...]
    attributes: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)

    def online_nodes(self) -> list[str]:
        """Names of online nodes."""
        return [n.name for n in self.nodes.values() if n.online]

    def was_fenced(self, node: str, since: Optional[float] = None) -> bool:
        """Whether the history records a successful off/reboot of node (completed at or after `since`, epoch s).

        With `since`, an event whose time cannot be read does not count: an old fencing must not
        excuse a node that came back and left again.
        """
        for event in self.fencing:
            if event.target != node or not event.succeeded or event.action not in ("off", "reboot"):
                continue
            if since is None:
                return True
            completed = event.completed_epoch
            if completed is not None and completed >= since:
                return True
        return False

    def last_fenced(self, node: str) -> Optional[float]:
        """When the newest successful off/reboot of node completed (epoch s), None when the history has none."""
        times = [e.completed_epoch for e in self.fencing if e.target == node and e.succeeded
                 and e.action in ("off", "reboot") and e.completed_epoch is not None]
        return max(times) if times else None

    def node_attribute(self, node: str, name: str) -> Optional[str]:
        """A node's attribute as crm_mon shows it (transient and permanent), None when absent."""
        return self.attributes.get(node, {}).get(name)

    def host_of(self, node: str) -> str:
        """The cluster node a guest node's container runs on (a bundle replica's host); any other node itself."""
        info = self.nodes.get(node)
        if info is None or not info.container:
            return node
        for rsc in self.resources:
            if rsc.id == info.container and rsc.active and rsc.nodes:
                return rsc.nodes[0]
        return node

    def instances(self, resource: str) -> list[ResourceStatus]:
        """The instances of a (clone) resource, matching by clone id or primitive id."""
        base = resource.split(":", 1)[0]
        return [r for r in self.resources if r.clone == base or r.id.split(":", 1)[0] == base]


# Pacemaker 2.1 shows an operation in flight as the resource's role in crm_mon's XML (role="Starting");
# the schema also allows a separate pending="..." attribute, which other versions write.
_PENDING_ROLES = frozenset({"Starting", "Stopping", "Promoting", "Demoting", "Migrating"})


def _bool(value: Optional[str]) -> bool:
    return (value or "").lower() == "true"


def parse_crm_mon(xml: bytes) -> ClusterStatus:
    """Parse `crm_mon --output-as=xml` into a ClusterStatus."""
    from lxml import etree
    root = etree.fromstring(xml)
    summary = root.find("summary")
    dc = summary.find("current_dc") if summary is not None else None
    nodes = {}
    for node in root.iterfind("nodes/node"):
        status = NodeStatus(
            name=node.get("name", ""), id=node.get("id", ""), online=_bool(node.get("online")),
            standby=_bool(node.get("standby")), unclean=_bool(node.get("unclean")),
            shutdown=_bool(node.get("shutdown")), is_dc=_bool(node.get("is_dc")),
            expected_up=_bool(node.get("expected_up")),
            container=node.get("id_as_resource") or node.get("container_id") or None)
        nodes[status.name] = status
    resources = []
    for rsc in root.iter("resource"):
        parent = rsc.getparent()
        clone = parent.get("id") if parent is not None and parent.tag == "clone" else None
        resources.append(ResourceStatus(
            id=rsc.get("id", ""), agent=rsc.get("resource_agent", ""), role=rsc.get("role", ""),
            active=_bool(rsc.get("active")), failed=_bool(rsc.get("failed")),
            nodes=tuple(n.get("name", "") for n in rsc.iterfind("node")), clone=clone,
            pending=rsc.get("pending") or (rsc.get("role") if rsc.get("role") in _PENDING_ROLES else None)))
    fencing = tuple(
        FenceEvent(target=e.get("target", ""), action=e.get("action", ""), status=e.get("status", ""),
                   delegate=e.get("delegate", ""), completed=e.get("completed", ""))
        for e in root.iterfind("fence_history/fence_event"))
    attributes = {
        node.get("name", ""): {a.get("name", ""): a.get("value", "") for a in node.iterfind("attribute")}
        for node in root.iterfind("node_attributes/node")}
    return ClusterStatus(
        have_quorum=dc is not None and _bool(dc.get("with_quorum")),
        dc=dc.get("name") if dc is not None and _bool(dc.get("present")) else None,
        nodes=nodes, resources=tuple(resources), fencing=fencing, attributes=attributes)


def read_cluster_status(runner: CommandRunner, deadline: Optional[Deadline] = None) -> ClusterStatus:
    """The live cluster status from crm_mon: inactive resources, full fencing history, node attributes."""
    result = runner.run(["crm_mon", "--output-as=xml", "--inactive", "--fence-history=3", "--show-node-attributes"],
                        deadline=deadline, timeout=20)
    if not result.stdout.lstrip().startswith("<"):
        raise PacemakerError(f"crm_mon failed: {result.first_error_line()}")
    return parse_crm_mon(result.stdout.encode())


