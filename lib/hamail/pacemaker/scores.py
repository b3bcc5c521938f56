# SPDX-License-Identifier: GPL-2.0-or-later
"""This resource's promotion score on this node: crm_attribute --promotion, crm_master on old clusters."""

from __future__ import annotations

from hamail.pacemaker import PacemakerError
from hamail.pacemaker.attributes import TOOL_TIMEOUT
from hamail.system.clock import Deadline
from hamail.system.runner import CommandResult, CommandRunner

__all__ = ["PromotionScore", "feature_set_at_least"]


def feature_set_at_least(feature_set: str, wanted: tuple[int, ...]) -> bool:
    """Whether a CRM feature set like '3.16.2' is at least wanted; unknown counts as new."""
    if not feature_set:
        return True
    try:
        have = tuple(int(part) for part in feature_set.split("."))
    except ValueError:
        return True
    return have >= wanted


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
        return self._runner.run(self._argv(*args), deadline=self._deadline, timeout=TOOL_TIMEOUT, env=env)

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
