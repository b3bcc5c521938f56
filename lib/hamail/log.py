"""Agent logging as Pacemaker sets it up: HA_LOGFACILITY, HA_LOGFILE, HA_DEBUGLOG, HA_debug; secrets scrubbed."""

from __future__ import annotations

import os
import sys
import time

__all__ = ["Log", "FenceLog", "Scrubber", "is_debug"]

# Written without the logging package: importing logging and logging.handlers costs ~20 ms, paid by
# every start and stop that logs a line. syslog is the C module (libc's openlog/syslog).

_LEVELS = {10: ("DEBUG", 7), 20: ("INFO", 6), 30: ("WARNING", 4), 40: ("ERROR", 3)}
_DEBUG, _INFO, _WARNING, _ERROR = 10, 20, 30, 40
_FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
               "ftp", "", "", "", "", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
               "local7")


def is_debug(environ) -> bool:
    """Whether HA_debug asks for debug output (Pacemaker passes 0/1, people write yes/true)."""
    return environ.get("HA_debug", "0").strip().lower() in {"1", "yes", "true", "on"}


class Scrubber:
    """Replaces every secret's text by *** in text bound for a log or an exit reason."""

    __slots__ = ("_texts",)

    def __init__(self, secrets=()) -> None:
        self._texts = tuple(s.reveal() for s in secrets if s)

    def scrub(self, text: str) -> str:
        """Text with the secrets blanked."""
        for secret in self._texts:
            text = text.replace(secret, "***")
        return text


class _Levels:
    """debug/info/warning/error in the logging package's calling style, over one _log of the subclass."""

    __slots__ = ()

    def debug(self, msg: str, *args, exc_info: bool = False) -> None:
        """Log at debug level; exc_info adds the current exception's traceback (scrubbed like the rest)."""
        self._log(_DEBUG, msg, args, exc_info)

    def info(self, msg: str, *args) -> None:
        """Log at info level."""
        self._log(_INFO, msg, args)

    def warning(self, msg: str, *args) -> None:
        """Log at warning level."""
        self._log(_WARNING, msg, args)

    def error(self, msg: str, *args) -> None:
        """Log at error level."""
        self._log(_ERROR, msg, args)

    def _log(self, level: int, msg: str, args: tuple, exc_info: bool = False) -> None:
        raise NotImplementedError


def _render(msg: str, args: tuple, exc_info: bool) -> str:
    """The message with its arguments, and the current traceback when asked."""
    text = msg % args if args else msg
    if exc_info:
        import traceback  # only for the rare unexpected error
        text += "\n" + traceback.format_exc().rstrip()
    return text


class Log(_Levels):
    """The log of one agent run, to the destinations Pacemaker's environment names.

    HA_LOGFACILITY (a syslog facility, 'none' for none), HA_LOGFILE (info and up; debug with HA_debug),
    HA_DEBUGLOG (everything); stderr when nothing else is configured or stderr is a terminal
    (pacemaker-execd logs an agent's stderr).
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

    def _log(self, level: int, msg: str, args: tuple, exc_info: bool = False) -> None:
        main = level >= _INFO or self._debug
        if not (main or self._debuglog):
            return
        text = self._scrubber.scrub(_render(msg, args, exc_info))
        name, severity = _LEVELS[level]
        line = f"{self._tag}[{self._pid}]: {name}: {text}"
        stamped = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n"
        configured = False
        if main and self._facility is not None:
            configured = self._syslog(severity, line.split(": ", 1)[1])
        if self._logfile:
            configured = True
            if main:
                _append(self._logfile, stamped)
        if self._debuglog:
            _append(self._debuglog, stamped)
        stderr = self._stderr or sys.stderr
        if main and (not configured or _isatty(stderr)):
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


class FenceLog(_Levels):
    """The log of one fence agent run, as fence-agents does it: warnings and errors on stderr (everything with
    verbose, nothing with quiet), everything into debug_file. pacemaker-fenced logs the agent's stderr."""

    def __init__(self, tag: str, secrets=(), stderr=None, verbose: bool = False, quiet: bool = False,
                 debug_file: str | None = None) -> None:
        self._tag = tag
        self._scrubber = Scrubber(secrets)
        self._stderr = stderr
        self._threshold = None if quiet else (_DEBUG if verbose else _WARNING)
        self._debug_file = debug_file or None
        if self._debug_file:
            # Opened once now so that a bad path is a usage error, not a silently missing log.
            os.close(os.open(self._debug_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640))

    def _log(self, level: int, msg: str, args: tuple, exc_info: bool = False) -> None:
        to_stderr = self._threshold is not None and level >= self._threshold
        if not (to_stderr or self._debug_file):
            return
        text = self._scrubber.scrub(_render(msg, args, exc_info))
        name = _LEVELS[level][0]
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
            _append(self._debug_file, f"{stamp} {self._tag}[{os.getpid()}]: {name}: {text}\n")


def _append(path: str, text: str) -> None:
    """Append one line; a log that cannot be written must not fail the action."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, text.encode("utf-8", "replace"))
        finally:
            os.close(fd)
    except OSError:
        pass


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
