"""Agent logging as Pacemaker sets it up: HA_LOGFACILITY, HA_LOGFILE, HA_DEBUGLOG, HA_debug; secrets scrubbed."""

import logging
import logging.handlers
import os
import sys
from typing import Iterable, Mapping, Optional, TextIO

from hamail.secret import Secret

__all__ = ["make_logger", "Scrubber", "is_debug"]

_FACILITIES = logging.handlers.SysLogHandler.facility_names


def is_debug(environ: Mapping[str, str]) -> bool:
    """Whether HA_debug asks for debug output (Pacemaker passes 0/1, people write yes/true)."""
    return environ.get("HA_debug", "0").strip().lower() in {"1", "yes", "true", "on"}


class Scrubber(logging.Filter):
    """Replaces every secret's text by *** in log records, whatever formatted it."""

    def __init__(self, secrets: Iterable[Secret] = ()) -> None:
        super().__init__()
        self._texts = tuple(s.reveal() for s in secrets if s)

    def scrub(self, text: str) -> str:
        """Text with the secrets blanked."""
        for secret in self._texts:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message now and scrub it, so no handler sees a secret."""
        if self._texts:
            record.msg = self.scrub(record.getMessage())
            record.args = None
            if record.exc_text:
                record.exc_text = self.scrub(record.exc_text)
        return True


def make_logger(tag: str, environ: Mapping[str, str], secrets: Iterable[Secret] = (),
                stderr: Optional[TextIO] = None) -> logging.Logger:
    """A logger for one agent run, with the handlers Pacemaker's environment asks for.

    The logger is created unregistered so that one process can run many actions (tests) without
    handlers piling up in logging's global registry.
    """
    stderr = stderr or sys.stderr
    debug = is_debug(environ)
    logger = logging.Logger(f"hamail.{tag}", logging.DEBUG)
    logger.propagate = False
    scrubber = Scrubber(secrets)
    logger.addFilter(scrubber)
    fmt = logging.Formatter(f"{tag}[{os.getpid()}]: %(levelname)s: %(message)s")
    stamped = logging.Formatter(f"%(asctime)s {tag}[{os.getpid()}]: %(levelname)s: %(message)s")
    main_level = logging.DEBUG if debug else logging.INFO
    facility = environ.get("HA_LOGFACILITY", "").strip().lower()
    configured = False
    if facility and facility != "none" and facility in _FACILITIES and os.path.exists("/dev/log"):
        try:
            handler = logging.handlers.SysLogHandler("/dev/log", facility=_FACILITIES[facility])
            handler.setFormatter(fmt)
            handler.setLevel(main_level)
            logger.addHandler(handler)
            configured = True
        except OSError:
            pass
    for variable, level in (("HA_LOGFILE", main_level), ("HA_DEBUGLOG", logging.DEBUG)):
        path = environ.get(variable, "").strip()
        if path:
            try:
                handler = logging.FileHandler(path, encoding="utf-8", delay=True)
            except OSError:
                continue
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


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
