# SPDX-License-Identifier: GPL-2.0-or-later
"""What both agent contracts log with: secrets scrubbed, levels in logging's style, lines appended safely.

Written without the logging package: importing logging and logging.handlers costs ~20 ms, paid by every
start and stop that logs a line. hamail.ocf.log (Pacemaker's HA_* destinations) and hamail.fence.log
(fence-agents' stderr and debug_file) build on this.
"""

from __future__ import annotations

__all__ = ["Scrubber", "LevelLog", "render", "append_line", "isatty", "DEBUG", "INFO", "WARNING", "ERROR", "LEVELS"]

LEVELS = {10: ("DEBUG", 7), 20: ("INFO", 6), 30: ("WARNING", 4), 40: ("ERROR", 3)}
DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40


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


class LevelLog:
    """debug/info/warning/error in the logging package's calling style, over one _log of the subclass (Log, FenceLog)."""

    __slots__ = ()

    def debug(self, msg: str, *args, exc_info: bool = False) -> None:
        """Log at debug level; exc_info adds the current exception's traceback (scrubbed like the rest)."""
        self._log(DEBUG, msg, args, exc_info)

    def info(self, msg: str, *args) -> None:
        """Log at info level."""
        self._log(INFO, msg, args)

    def warning(self, msg: str, *args) -> None:
        """Log at warning level."""
        self._log(WARNING, msg, args)

    def error(self, msg: str, *args) -> None:
        """Log at error level."""
        self._log(ERROR, msg, args)

    def _log(self, level: int, msg: str, args: tuple, exc_info: bool = False) -> None:
        raise NotImplementedError


def render(msg: str, args: tuple, exc_info: bool) -> str:
    """The message with its arguments, and the current traceback when asked."""
    text = msg % args if args else msg
    if exc_info:
        import traceback  # only for the rare unexpected error
        text += "\n" + traceback.format_exc().rstrip()
    return text


def append_line(path: str, text: str) -> None:
    """Append one line; a log that cannot be written must not fail the action."""
    import os
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, text.encode("utf-8", "replace"))
        finally:
            os.close(fd)
    except OSError:
        pass


def isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
