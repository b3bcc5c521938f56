# SPDX-License-Identifier: GPL-2.0-or-later
"""Node attributes: transient ones (reboot lifetime) through pacemaker-attrd, permanent ones in the CIB."""

from __future__ import annotations

from hamail.pacemaker import PacemakerError
from hamail.system.clock import Deadline
from hamail.system.runner import CommandResult, CommandRunner

__all__ = ["Attributes", "PermanentAttributes", "parse_attrd_query"]

# Each Pacemaker tool call gets at most this long (and never more than the action's deadline).
TOOL_TIMEOUT = 15


class Attributes:
    """Transient (reboot-lifetime) node attributes through pacemaker-attrd."""

    def __init__(self, runner: CommandRunner, deadline: Deadline | None = None) -> None:
        self._runner = runner
        self._deadline = deadline

    def _run(self, argv: list) -> CommandResult:
        return self._runner.run(argv, deadline=self._deadline, timeout=TOOL_TIMEOUT)

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


class PermanentAttributes:
    """Permanent (CIB, lifetime forever) node attributes: what must survive every node losing power."""

    def __init__(self, runner: CommandRunner, deadline: Deadline | None = None) -> None:
        self._runner = runner
        self._deadline = deadline

    def _run(self, node: str, name: str, *args: str) -> CommandResult:
        return self._runner.run(["crm_attribute", "-N", node, "-n", name, "-l", "forever", *args],
                                deadline=self._deadline, timeout=TOOL_TIMEOUT)

    def set(self, node: str, name: str, value: str) -> None:
        """Set a permanent attribute of a node."""
        result = self._run(node, name, "-v", value)
        if not result.ok:
            raise PacemakerError(f"cannot set {name} on {node}: {result.first_error_line()}")

    def get(self, node: str, name: str) -> str | None:
        """A node's permanent attribute, None when unset (or when the CIB cannot be read)."""
        result = self._run(node, name, "-G", "-q")
        return result.stdout.strip() if result.ok else None

    def delete(self, node: str, name: str) -> None:
        """Remove a permanent attribute of a node (absent is fine)."""
        result = self._run(node, name, "-D")
        if not result.ok and "No such" not in result.first_error_line():
            raise PacemakerError(f"cannot delete {name} on {node}: {result.first_error_line()}")
