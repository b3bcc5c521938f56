# SPDX-License-Identifier: GPL-2.0-or-later
"""Agent logging as Pacemaker sets it up: HA_LOGFACILITY, HA_LOGFILE, HA_DEBUGLOG, HA_debug; secrets scrubbed."""

from __future__ import annotations

import os
import sys
import time

from hamail.system.log import INFO, LEVELS, LevelLog, Scrubber, append_line, isatty, render

__all__ = ["Log", "is_debug"]

_FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
               "ftp", "", "", "", "", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
               "local7")


def is_debug(environ) -> bool:
    """Whether HA_debug asks for debug output (Pacemaker passes 0/1, people write yes/true)."""
    return environ.get("HA_debug", "0").strip().lower() in {"1", "yes", "true", "on"}


class Log(LevelLog):
    """The log of one agent run, to the destinations Pacemaker's environment names.

    HA_LOGFACILITY (a syslog facility, 'none' for none), HA_LOGFILE (info and up; debug with HA_debug),
    HA_DEBUGLOG (everything); stderr when nothing else is configured or stderr is a terminal
    (pacemaker-execd logs an agent's stderr). trace (a hamail.ocf.trace.Trace, set while trace_ra is on) gets
    everything too.
    """

    def __init__(self, tag: str, environ, secrets=(), stderr=None) -> None:
        self._tag = tag
        self._pid = os.getpid()
        self._scrubber = Scrubber(secrets)
        self._stderr = stderr
        self._debug = is_debug(environ)
        facility = environ.get("HA_LOGFACILITY", "").strip().lower()
        self._facility = _FACILITIES.index(facility) if facility and facility in _FACILITIES else None
        self._logfile = environ.get("HA_LOGFILE", "").strip()
        self._debuglog = environ.get("HA_DEBUGLOG", "").strip()
        self._syslog_open = False
        self.trace = None

    def _log(self, level: int, msg: str, args: tuple, exc_info: bool = False) -> None:
        main = level >= INFO or self._debug
        if not (main or self._debuglog or self.trace):
            return
        text = self._scrubber.scrub(render(msg, args, exc_info))
        name, severity = LEVELS[level]
        line = f"{self._tag}[{self._pid}]: {name}: {text}"
        stamped = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n"
        configured = False
        if main and self._facility is not None:
            configured = self._syslog(severity, line.split(": ", 1)[1])
        if self._logfile:
            configured = True
            if main:
                append_line(self._logfile, stamped)
        if self._debuglog:
            append_line(self._debuglog, stamped)
        if self.trace is not None:
            self.trace.write(stamped)
        stderr = self._stderr or sys.stderr
        if main and (not configured or isatty(stderr)):
            try:
                stderr.write(line + "\n")
                stderr.flush()
            except (OSError, ValueError):
                pass

    def _syslog(self, severity: int, text: str) -> bool:
        if not os.path.exists("/dev/log"):
            return False
        import syslog  # a C module: no measurable cost
        if not self._syslog_open:
            syslog.openlog(self._tag, syslog.LOG_PID, self._facility << 3)
            self._syslog_open = True
        syslog.syslog(severity, text)
        return True
