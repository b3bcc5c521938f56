"""Pacemaker access for agents: promotion scores, transient node attributes, notify data, crm_mon XML."""

from __future__ import annotations

from hamail.clock import Deadline
from hamail.exitcodes import OCFExit
from hamail.ocf import OCFError
from hamail.runner import CommandResult, CommandRunner

__all__ = ["PacemakerError", "Attributes", "PromotionScore", "feature_set_at_least", "parse_attrd_query"]

# crm_mon parsing (hamail.crmmon) and notify data (hamail.notify) live in their own modules so the
# monitor path, which only sets scores, does not import dataclasses and lxml; these names are
# re-exported lazily for convenience.
_LAZY = {"NodeStatus": "crmmon", "FenceEvent": "crmmon", "ResourceStatus": "crmmon", "ClusterStatus": "crmmon",
         "parse_crm_mon": "crmmon", "read_cluster_status": "crmmon", "NotifyData": "notify"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"hamail.{_LAZY[name]}"), name)
    raise AttributeError(name)


class PacemakerError(OCFError):
    """A Pacemaker tool failed (the cluster or attrd did not answer): a generic, retryable failure."""

    def __init__(self, reason: str) -> None:
        super().__init__(OCFExit.ERR_GENERIC, reason)


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

    def __init__(self, runner: CommandRunner, deadline: Deadline | None = None) -> None:
        self._runner = runner
        self._deadline = deadline

    def _run(self, argv: list) -> CommandResult:
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

    def get(self, node: str, name: str) -> str | None:
        """A node's value of a transient attribute, None when unset."""
        return self.get_all(name).get(node)

    def get_all(self, name: str) -> dict[str, str]:
        """Every node's value of a transient attribute (nodes without one are absent)."""
        result = self._run(["attrd_updater", "-Q", "-A", "-n", name])
        if not result.ok:
            text = result.first_error_line()
            # attrd answers "attribute does not exist" (2.1) or "No such ..." for never-set names
            if "does not exist" in text or "No such" in text or "not found" in text.lower() or result.rc == 105:
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
                 deadline: Deadline | None = None) -> None:
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

    def get(self) -> int | None:
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


