"""Pacemaker access for agents: promotion scores, transient node attributes, notify data, crm_mon XML."""

import dataclasses
from typing import Mapping, Optional, Sequence

from hamail.clock import Deadline
from hamail.runner import CommandResult, CommandRunner

__all__ = [
    "PacemakerError", "Attributes", "PromotionScore", "NodeStatus", "FenceEvent", "ResourceStatus",
    "ClusterStatus", "parse_crm_mon", "read_cluster_status", "NotifyData", "feature_set_at_least",
]


class PacemakerError(Exception):
    """A Pacemaker attribute tool failed (the cluster or attrd did not answer)."""


def feature_set_at_least(feature_set: str, wanted: tuple[int, ...]) -> bool:
    """Whether a CRM feature set like '3.16.2' is at least wanted; unknown counts as new."""
    if not feature_set:
        return True
    try:
        have = tuple(int(part) for part in feature_set.split("."))
    except ValueError:
        return True
    return have >= wanted


class Attributes:
    """Transient (reboot-lifetime) node attributes through pacemaker-attrd."""

    def __init__(self, runner: CommandRunner, deadline: Optional[Deadline] = None) -> None:
        self._runner = runner
        self._deadline = deadline

    def _run(self, argv: Sequence[str]) -> CommandResult:
        return self._runner.run(argv, deadline=self._deadline, timeout=15)

    def set(self, node: str, name: str, value: str) -> None:
        """Set a transient attribute of a node."""
        result = self._run(["attrd_updater", "-n", name, "-U", value, "-N", node])
        if not result.ok:
            raise PacemakerError(f"cannot set {name} on {node}: {result.first_error_line()}")

    def delete(self, node: str, name: str) -> None:
        """Remove a transient attribute of a node (absent is fine)."""
        result = self._run(["attrd_updater", "-n", name, "-D", "-N", node])
        if not result.ok:
            raise PacemakerError(f"cannot delete {name} on {node}: {result.first_error_line()}")

    def get(self, node: str, name: str) -> Optional[str]:
        """A node's value of a transient attribute, None when unset."""
        return self.get_all(name).get(node)

    def get_all(self, name: str) -> dict[str, str]:
        """Every node's value of a transient attribute (nodes without one are absent)."""
        result = self._run(["attrd_updater", "-Q", "-A", "-n", name])
        if not result.ok:
            text = result.first_error_line()
            if "No such" in text or "not found" in text.lower() or result.rc == 105:
                return {}
            raise PacemakerError(f"cannot read {name}: {text}")
        return parse_attrd_query(result.stdout)


def parse_attrd_query(text: str) -> dict[str, str]:
    """Parse `attrd_updater -Q -A` lines: name="x" host="node1" value="5"."""
    import shlex
    values = {}
    for line in text.splitlines():
        fields = {}
        for token in shlex.split(line):
            key, sep, value = token.partition("=")
            if sep:
                fields[key] = value
        if "host" in fields and fields.get("value", "") != "":
            values[fields["host"]] = fields["value"]
    return values


class PromotionScore:
    """This resource's promotion score on this node (crm_attribute -p, crm_master on old clusters)."""

    def __init__(self, runner: CommandRunner, instance: str, node: str, feature_set: str = "",
                 deadline: Optional[Deadline] = None) -> None:
        self._runner = runner
        self._instance = instance
        self._node = node
        self._deadline = deadline
        self._modern = feature_set_at_least(feature_set, (3, 10, 0))

    def _argv(self, *args: str) -> list[str]:
        if self._modern:
            return ["crm_attribute", f"--promotion={self._instance.split(':', 1)[0]}", "-N", self._node, *args]
        return ["crm_master", "-l", "reboot", "-N", self._node, *args]

    def _run(self, *args: str) -> CommandResult:
        env = {"OCF_RESOURCE_INSTANCE": self._instance}
        return self._runner.run(self._argv(*args), deadline=self._deadline, timeout=15, env=env)

    def set(self, score: int) -> None:
        """Set the score."""
        result = self._run("-v", str(score))
        if not result.ok:
            raise PacemakerError(f"cannot set promotion score: {result.first_error_line()}")

    def delete(self) -> None:
        """Remove the score (absent is fine)."""
        result = self._run("-D")
        if not result.ok and "No such" not in result.first_error_line():
            raise PacemakerError(f"cannot delete promotion score: {result.first_error_line()}")

    def get(self) -> Optional[int]:
        """The current score, None when unset."""
        result = self._run("-G", "-q")
        if not result.ok:
            return None
        text = result.stdout.strip()
        try:
            return int(text)
        except ValueError:
            if text.upper() in ("INFINITY", "+INFINITY"):
                return 1000000
            return None


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


@dataclasses.dataclass(frozen=True)
class ClusterStatus:
    """The parts of crm_mon's XML that agents base decisions on."""

    have_quorum: bool
    dc: Optional[str]
    nodes: Mapping[str, NodeStatus]
    resources: tuple[ResourceStatus, ...]
    fencing: tuple[FenceEvent, ...]

    def online_nodes(self) -> list[str]:
        """Names of online nodes."""
        return [n.name for n in self.nodes.values() if n.online]

    def was_fenced(self, node: str) -> bool:
        """Whether the history records a successful off/reboot of node."""
        return any(e.target == node and e.succeeded and e.action in ("off", "reboot")
                   for e in self.fencing)

    def instances(self, resource: str) -> list[ResourceStatus]:
        """The instances of a (clone) resource, matching by clone id or primitive id."""
        base = resource.split(":", 1)[0]
        return [r for r in self.resources if r.clone == base or r.id.split(":", 1)[0] == base]


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
            expected_up=_bool(node.get("expected_up")))
        nodes[status.name] = status
    resources = []
    for rsc in root.iter("resource"):
        parent = rsc.getparent()
        clone = parent.get("id") if parent is not None and parent.tag == "clone" else None
        resources.append(ResourceStatus(
            id=rsc.get("id", ""), agent=rsc.get("resource_agent", ""), role=rsc.get("role", ""),
            active=_bool(rsc.get("active")), failed=_bool(rsc.get("failed")),
            nodes=tuple(n.get("name", "") for n in rsc.iterfind("node")), clone=clone))
    fencing = tuple(
        FenceEvent(target=e.get("target", ""), action=e.get("action", ""), status=e.get("status", ""),
                   delegate=e.get("delegate", ""), completed=e.get("completed", ""))
        for e in root.iterfind("fence_history/fence_event"))
    return ClusterStatus(
        have_quorum=dc is not None and _bool(dc.get("with_quorum")),
        dc=dc.get("name") if dc is not None and _bool(dc.get("present")) else None,
        nodes=nodes, resources=tuple(resources), fencing=fencing)


def read_cluster_status(runner: CommandRunner, deadline: Optional[Deadline] = None) -> ClusterStatus:
    """The live cluster status from crm_mon, with inactive resources and full fencing history."""
    result = runner.run(["crm_mon", "--output-as=xml", "--inactive", "--fence-history=3"],
                        deadline=deadline, timeout=20)
    if not result.stdout.lstrip().startswith("<"):
        raise PacemakerError(f"crm_mon failed: {result.first_error_line()}")
    return parse_crm_mon(result.stdout.encode())


_NOTIFY_LISTS = ("start", "stop", "promote", "demote", "active", "promoted", "unpromoted", "inactive")


@dataclasses.dataclass(frozen=True)
class NotifyData:
    """The notify variables of one notification, as lists of node names and instance ids."""

    type: str
    operation: str
    unames: Mapping[str, tuple[str, ...]]
    resources: Mapping[str, tuple[str, ...]]
    all_unames: tuple[str, ...]
    available_unames: tuple[str, ...]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "NotifyData":
        """Read OCF_RESKEY_CRM_meta_notify_*; the legacy master/slave lists fill promoted/unpromoted."""
        def words(name: str) -> tuple[str, ...]:
            return tuple(environ.get("OCF_RESKEY_CRM_meta_notify_" + name, "").split())
        legacy = {"promoted": "master", "unpromoted": "slave"}
        unames, resources = {}, {}
        for kind in _NOTIFY_LISTS:
            unames[kind] = words(f"{kind}_uname") or (words(f"{legacy[kind]}_uname") if kind in legacy else ())
            resources[kind] = words(f"{kind}_resource") or (
                words(f"{legacy[kind]}_resource") if kind in legacy else ())
        return cls(
            type=environ.get("OCF_RESKEY_CRM_meta_notify_type", ""),
            operation=environ.get("OCF_RESKEY_CRM_meta_notify_operation", ""),
            unames=unames, resources=resources,
            all_unames=words("all_uname"), available_unames=words("available_uname"))

    @property
    def is_pre(self) -> bool:
        """A pre-operation notification."""
        return self.type == "pre"

    def nodes(self, kind: str) -> tuple[str, ...]:
        """Node names of one list (start, stop, promote, demote, active, promoted, unpromoted)."""
        return self.unames.get(kind, ())
