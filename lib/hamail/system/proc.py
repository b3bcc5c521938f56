# SPDX-License-Identifier: GPL-2.0-or-later
"""The one reader of /proc/<pid>: a process's state, parent, start time and name, without blocking.

Only /proc's own files are read, never anything on a mounted filesystem, so a dead NFS server cannot hang a
caller. A pid alone names a process only until it is reused: callers that keep a pid across actions keep its
start time too (`identity`) and compare it before signalling.
"""

from __future__ import annotations

import os

__all__ = ["ProcStat", "stat", "alive", "comm", "identity", "same_process", "pids"]


class ProcStat:
    """The fields of /proc/<pid>/stat hamail uses: state letter, parent pid, start time (clock ticks)."""

    __slots__ = ("pid", "state", "ppid", "starttime")

    def __init__(self, pid: int, state: str, ppid: int, starttime: str) -> None:
        self.pid, self.state, self.ppid, self.starttime = pid, state, ppid, starttime

    @property
    def zombie(self) -> bool:
        """Whether the process has exited and only waits to be reaped."""
        return self.state in ("Z", "X")

    def __repr__(self) -> str:
        return f"ProcStat({self.pid}, state={self.state!r}, ppid={self.ppid})"


def stat(pid: int, root: str = "/proc") -> ProcStat | None:
    """The process's stat fields, None when it does not exist."""
    try:
        with open(f"{root}/{pid}/stat", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    # The name (field 2) is in parentheses and may itself contain spaces and ')': split after the last one.
    fields = text.rsplit(")", 1)[-1].split()
    if len(fields) < 20:
        return None
    try:
        return ProcStat(pid, fields[0], int(fields[1]), fields[19])
    except ValueError:
        return None


def alive(pid: int) -> bool:
    """Whether the process exists and has not exited (a zombie counts as gone)."""
    info = stat(pid)
    return info is not None and not info.zombie


def comm(pid: int) -> str | None:
    """The process's name (/proc/<pid>/comm), None when it does not exist."""
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def identity(pid: int) -> str:
    """'pid:starttime' of a living process ('' when gone): a name for it that a reused pid cannot match."""
    info = stat(pid)
    return "" if info is None or info.zombie else f"{pid}:{info.starttime}"


def same_process(record: str) -> int | None:
    """The pid of an `identity` record if that very process still lives, else None."""
    pid, _, start = record.partition(":")
    if not pid.isdigit() or not start:
        return None
    return int(pid) if identity(int(pid)) == record else None


def pids() -> list[int]:
    """Every process id visible in this pid namespace."""
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]
