# SPDX-License-Identifier: GPL-2.0-or-later
"""The monitor/promote/demote logic of promotable resources, written once for galera, DRBD and the rest."""

from __future__ import annotations

from hamail.system.clock import DeadlineExceeded, poll
from hamail.ocf.exitcodes import OCFExit
from hamail.ocf.agent import Context, OCFError

__all__ = ["Role", "Observation", "monitor_code", "Promotable", "ScoreStore", "PromotableResource"]


class _RoleValue:
    """One role, compared by identity; .value is Pacemaker's name for it."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Role.{self.value.upper()}"


class Role:
    """The roles a resource is observed in on this node (enum-like, without enum's import cost)."""

    STOPPED = _RoleValue("Stopped")
    UNPROMOTED = _RoleValue("Unpromoted")
    PROMOTED = _RoleValue("Promoted")


class Observation:
    """What an agent sees of its resource on this node, and the promotion score that follows from it.

    score None withdraws the score; keep_score leaves it as it is (transitional states).
    """

    __slots__ = ("role", "healthy", "reason", "score", "keep_score", "degraded")

    def __init__(self, role: _RoleValue, healthy: bool = True, reason: str = "", score: int | None = None,
                 keep_score: bool = False, degraded: bool = False) -> None:
        self.role, self.healthy, self.reason, self.score = role, healthy, reason, score
        self.keep_score, self.degraded = keep_score, degraded

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Observation) and all(
            getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __repr__(self) -> str:
        return (f"Observation({self.role!r}, healthy={self.healthy}, score={self.score}, "
                f"reason={self.reason!r})")


def monitor_code(obs: Observation) -> OCFExit:
    """The OCF code a monitor returns for an observation."""
    if obs.role is Role.STOPPED:
        return OCFExit.NOT_RUNNING
    if obs.role is Role.PROMOTED:
        if not obs.healthy:
            return OCFExit.FAILED_PROMOTED
        return OCFExit.DEGRADED_PROMOTED if obs.degraded else OCFExit.RUNNING_PROMOTED
    if not obs.healthy:
        return OCFExit.ERR_GENERIC
    return OCFExit.DEGRADED if obs.degraded else OCFExit.SUCCESS


class ScoreStore:
    """Where promotion scores go (hamail.pacemaker.scores.PromotionScore on a live cluster): the interface."""

    def set(self, score: int) -> None:
        """Publish a score."""
        raise NotImplementedError

    def delete(self) -> None:
        """Withdraw the score."""
        raise NotImplementedError


class Promotable:
    """What a promotable agent implements: observing, and the two transitions (the interface)."""

    def observe(self, ctx: Context) -> Observation:
        """Look at the resource on this node."""
        raise NotImplementedError

    def do_promote(self, ctx: Context) -> None:
        """Start the promotion (may return before it completes)."""
        raise NotImplementedError

    def do_demote(self, ctx: Context) -> None:
        """Start the demotion (may return before it completes)."""
        raise NotImplementedError


class PromotableResource:
    """Monitor, promote and demote for any Promotable, with scores published from observations."""

    def __init__(self, impl: Promotable, scores: ScoreStore) -> None:
        self._impl = impl
        self._scores = scores

    def publish(self, obs: Observation) -> None:
        """Publish the score an observation asks for."""
        if obs.keep_score:
            return
        if obs.score is None:
            self._scores.delete()
        else:
            self._scores.set(obs.score)

    def monitor(self, ctx: Context, obs: Observation | None = None) -> int:
        """Observe (unless the caller already did), publish the score, and report the role.

        A failure carries the observation's reason.
        """
        obs = obs or self._impl.observe(ctx)
        self.publish(obs)
        code = monitor_code(obs)
        if code in (OCFExit.ERR_GENERIC, OCFExit.FAILED_PROMOTED):
            raise OCFError(code, obs.reason or f"{obs.role.value} instance is unhealthy")
        if obs.reason:
            ctx.log.info("monitor: %s", obs.reason)
        return code

    def promote(self, ctx: Context) -> int:
        """Promote this instance and wait, within the deadline, until it is observed promoted and healthy."""
        obs = self._impl.observe(ctx)
        if obs.role is Role.PROMOTED and obs.healthy:
            return OCFExit.SUCCESS
        if obs.role is Role.STOPPED:
            raise OCFError(OCFExit.ERR_GENERIC, "cannot promote: the instance is not running")
        self._impl.do_promote(ctx)
        final = self._wait_for(ctx, Role.PROMOTED, "promotion")
        self.publish(final)
        return OCFExit.SUCCESS

    def demote(self, ctx: Context) -> int:
        """Demote this instance and wait, within the deadline, until it is observed unpromoted."""
        obs = self._impl.observe(ctx)
        if obs.role is Role.UNPROMOTED:
            return OCFExit.SUCCESS
        if obs.role is Role.STOPPED:
            return OCFExit.NOT_RUNNING
        self._impl.do_demote(ctx)
        final = self._wait_for(ctx, Role.UNPROMOTED, "demotion")
        self.publish(final)
        return OCFExit.SUCCESS

    def _wait_for(self, ctx: Context, role: Role, what: str) -> Observation:
        last: list = []

        def reached() -> Observation | None:
            obs = self._impl.observe(ctx)
            last[:] = [obs]
            return obs if obs.role is role and obs.healthy else None
        try:
            return poll(ctx.deadline, reached, what=what, longest=2.0)
        except DeadlineExceeded:
            seen = last[0] if last else None
            detail = f" (last seen {seen.role.value}{': ' + seen.reason if seen and seen.reason else ''})" if seen else ""
            raise OCFError(OCFExit.ERR_GENERIC, f"{what} did not complete before the timeout{detail}") from None
