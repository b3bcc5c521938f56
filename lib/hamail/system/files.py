# SPDX-License-Identifier: GPL-2.0-or-later
"""Files written atomically: replacement that a crash leaves old or new, never half; small per-instance state
files under HA_RSCTMP."""

from __future__ import annotations

import os

__all__ = ["atomic_write", "rsctmp", "StateFile", "PrivateFileError", "read_private"]


def atomic_write(path: str, text: str, *, mode: int = 0o600, keep_owner: bool = False, sync: bool = False) -> None:
    """Replace path's content atomically (a temporary file beside it, then rename).

    mode applies to a new file; keep_owner keeps an existing file's owner, group and mode (a data file of
    another user, e.g. grastate.dat); sync flushes to disk before the rename. No backup copy is left behind.
    """
    info = os.stat(path) if keep_owner else None
    if info is not None:
        mode = info.st_mode & 0o7777
    tmp = f"{path}.hamail.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        if info is not None:
            os.chown(tmp, info.st_uid, info.st_gid)
        os.chmod(tmp, mode)  # the umask may have narrowed it
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def rsctmp(environ) -> str:
    """The directory for volatile agent state (cleared at boot)."""
    return environ.get("HA_RSCTMP", "") or "/run/resource-agents"


class StateFile:
    """One small text file holding an instance's state (mode 0600); absent means stopped."""

    def __init__(self, directory: str, name: str) -> None:
        self.path = os.path.join(directory, name.replace("/", "_"))

    def read(self) -> str | None:
        """The stored text, None when absent."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                return handle.read().strip()
        except FileNotFoundError:
            return None

    def write(self, text: str) -> None:
        """Replace the content atomically."""
        os.makedirs(os.path.dirname(self.path), mode=0o755, exist_ok=True)
        atomic_write(self.path, text + "\n")

    def remove(self) -> None:
        """Delete the file (absent is fine)."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class PrivateFileError(Exception):
    """A file that holds a secret is missing, unreadable, not a regular file or readable by others."""


def read_private(path: str, what: str = "credentials file") -> str:
    """The text of a file holding secrets: a regular file (no symlink) that only its owner can read."""
    import stat
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise PrivateFileError(f"cannot open {what} {path}: {exc.strerror}") from None
    with os.fdopen(fd, encoding="utf-8", errors="replace") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise PrivateFileError(f"{what} {path} is not a regular file")
        if info.st_mode & 0o077:
            raise PrivateFileError(f"{what} {path} has mode {info.st_mode & 0o777:04o}: it must be 0600 or stricter")
        return handle.read(1 << 16)
