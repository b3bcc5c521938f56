"""Agent logging as Pacemaker sets it up: HA_LOGFACILITY, HA_LOGFILE, HA_DEBUGLOG, HA_debug; secrets scrubbed."""

from __future__ import annotations

import os
import sys

__all__ = ["Log", "Scrubber", "is_debug"]

_DEBUG, _INFO, _WARNING, _ERROR = 10, 20, 30, 40


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


class Log:
    """The log of one agent run; the logging machinery is built on the first message only.

    A healthy monitor usually logs nothing, and importing logging costs 10-20 ms at every run.
    The logger is created unregistered so one process can run many actions (tests) without
    handlers piling up in logging's global registry.
    """

    def __init__(self, tag: str, environ, secrets=(), stderr=None) -> None:
        self._tag = tag
        self._environ = environ
        self._scrubber = Scrubber(secrets)
        self._stderr = stderr
        self._logger = None

    def debug(self, msg: str, *args) -> None:
        """Log at debug level (only with HA_debug or into HA_DEBUGLOG)."""
        self._log(_DEBUG, msg, args)

    def info(self, msg: str, *args) -> None:
        """Log at info level."""
        self._log(_INFO, msg, args)

    def warning(self, msg: str, *args) -> None:
        """Log at warning level."""
        self._log(_WARNING, msg, args)

    def error(self, msg: str, *args) -> None:
        """Log at error level."""
        self._log(_ERROR, msg, args)

    def _log(self, level: int, msg: str, args: tuple) -> None:
        if level == _DEBUG and not (is_debug(self._environ) or self._environ.get("HA_DEBUGLOG")):
            return
        text = msg % args if args else msg
        self._get().log(level, self._scrubber.scrub(text))

    def _get(self):
        if self._logger is None:
            self._logger = _build(self._tag, self._environ, self._stderr or sys.stderr)
        return self._logger


def _build(tag: str, environ, stderr):
    """A logging.Logger with the handlers Pacemaker's environment asks for."""
    import logging
    import logging.handlers
    debug = is_debug(environ)
    logger = logging.Logger(f"hamail.{tag}", logging.DEBUG)
    logger.propagate = False
    fmt = logging.Formatter(f"{tag}[{os.getpid()}]: %(levelname)s: %(message)s")
    stamped = logging.Formatter(f"%(asctime)s {tag}[{os.getpid()}]: %(levelname)s: %(message)s")
    main_level = logging.DEBUG if debug else logging.INFO
    facilities = logging.handlers.SysLogHandler.facility_names
    facility = environ.get("HA_LOGFACILITY", "").strip().lower()
    configured = False
    if facility and facility != "none" and facility in facilities and os.path.exists("/dev/log"):
        try:
            handler = logging.handlers.SysLogHandler("/dev/log", facility=facilities[facility])
            handler.setFormatter(fmt)
            handler.setLevel(main_level)
            logger.addHandler(handler)
            configured = True
        except OSError:
            pass
    for variable, level in (("HA_LOGFILE", main_level), ("HA_DEBUGLOG", logging.DEBUG)):
        path = environ.get(variable, "").strip()
        if path:
            handler = logging.FileHandler(path, encoding="utf-8", delay=True)
            handler.setFormatter(stamped)
            handler.setLevel(level)
            logger.addHandler(handler)
            configured = configured or variable == "HA_LOGFILE"
    # With nowhere else to log, or a person at a terminal, write to stderr (pacemaker-execd logs it).
    if not configured or _isatty(stderr):
        handler = logging.StreamHandler(stderr)
        handler.setFormatter(fmt)
        handler.setLevel(main_level)
        logger.addHandler(handler)
    return logger


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
