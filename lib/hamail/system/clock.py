# SPDX-License-Identifier: GPL-2.0-or-later
"""Time as a seam: the real monotonic clock, a fake one for tests, and deadlines every wait derives from."""

from __future__ import annotations

import time

__all__ = ["Clock", "SystemClock", "FakeClock", "Deadline", "DeadlineExceeded", "poll"]

# Agents start every few seconds on every node: this module avoids typing/dataclasses imports
# (10-25 ms each) and keeps its classes small by hand.


class Clock:
    """What the library needs of time: a monotonic reading and a way to wait."""

    __slots__ = ()

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        raise NotImplementedError

    def sleep(self, seconds: float) -> None:
        """Wait this many seconds."""
        raise NotImplementedError


class SystemClock(Clock):
    """The real clock."""

    __slots__ = ()

    def monotonic(self) -> float:
        """Seconds from time.monotonic()."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Block for the given seconds."""
        if seconds > 0:
            time.sleep(seconds)


class FakeClock(Clock):
    """A clock for tests: sleeping advances it instantly."""

    __slots__ = ("now", "sleeps")

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """The fake current time."""
        return self.now

    def sleep(self, seconds: float) -> None:
        """Advance the fake time and record the sleep."""
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


class DeadlineExceeded(Exception):
    """A bounded wait ran out of time."""


class Deadline:
    """A point in time that every wait of one action must end before."""

    __slots__ = ("clock", "end")

    def __init__(self, clock, end: float) -> None:
        self.clock = clock
        self.end = end

    @classmethod
    def after(cls, seconds: float, clock=None) -> Deadline:
        """A deadline the given seconds from now."""
        clock = clock or SystemClock()
        return cls(clock, clock.monotonic() + seconds)

    @classmethod
    def for_operation(cls, timeout_ms: int | None, default_s: float, clock=None) -> Deadline:
        """The deadline of an operation: Pacemaker's timeout (ms) less a margin to report before being killed."""
        total = timeout_ms / 1000.0 if timeout_ms and timeout_ms > 0 else default_s
        # Leave time to log, write the exit reason and exit before Pacemaker's timer fires.
        margin = min(max(total * 0.1, 0.5), 5.0)
        return cls.after(max(total - margin, total * 0.5), clock)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.end - self.clock.monotonic())

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self.remaining() <= 0.0

    def sub(self, seconds: float) -> Deadline:
        """A deadline at most this many seconds from now and never after this one."""
        return Deadline(self.clock, min(self.end, self.clock.monotonic() + seconds))

    def sleep(self, seconds: float) -> None:
        """Sleep, but never past the deadline."""
        self.clock.sleep(min(seconds, self.remaining()))

    def __repr__(self) -> str:
        return f"Deadline(remaining={self.remaining():.3f})"


def poll(deadline: Deadline, probe, *, what: str, first: float = 0.05, factor: float = 1.6,
         longest: float = 1.0):
    """Call probe with a short, growing backoff until it returns non-None; DeadlineExceeded when time runs out."""
    delay = first
    while True:
        result = probe()
        if result is not None:
            return result
        if deadline.expired():
            raise DeadlineExceeded(f"timed out waiting for {what}")
        deadline.sleep(delay)
        delay = min(delay * factor, longest)
