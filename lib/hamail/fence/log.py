# SPDX-License-Identifier: GPL-2.0-or-later
"""Fence-agent logging as fence-agents does it: stderr by verbose/quiet, everything into debug_file."""

from __future__ import annotations

import os
import sys
import time

from hamail.system.log import DEBUG, WARNING, LEVELS, LevelLog, Scrubber, append_line, render

__all__ = ["FenceLog"]


class FenceLog(LevelLog):
    """The log of one fence agent run, as fence-agents does it: warnings and errors on stderr (everything with
    verbose, nothing with quiet), everything into debug_file. pacemaker-fenced logs the agent's stderr."""

    def __init__(self, tag: str, secrets=(), stderr=None, verbose: bool = False, quiet: bool = False,
                 debug_file: str | None = None) -> None:
        self._tag = tag
        self._scrubber = Scrubber(secrets)
        self._stderr = stderr
        self._threshold = None if quiet else (DEBUG if verbose else WARNING)
        self._debug_file = debug_file or None
        if self._debug_file:
            # Opened once now so that a bad path is a usage error, not a silently missing log.
            os.close(os.open(self._debug_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640))

    def _log(self, level: int, msg: str, args: tuple, exc_info: bool = False) -> None:
        to_stderr = self._threshold is not None and level >= self._threshold
        if not (to_stderr or self._debug_file):
            return
        text = self._scrubber.scrub(render(msg, args, exc_info))
        name = LEVELS[level][0]
        if to_stderr:
            try:
                stderr = self._stderr or sys.stderr
                stderr.write(f"{self._tag}: {name}: {text}\n")
                stderr.flush()
            except (OSError, ValueError):
                pass
        if self._debug_file:
            now = time.time()
            stamp = f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(now))},{int(now % 1 * 1000):03d}"
            append_line(self._debug_file, f"{stamp} {self._tag}[{os.getpid()}]: {name}: {text}\n")
