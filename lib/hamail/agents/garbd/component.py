# SPDX-License-Identifier: GPL-2.0-or-later
"""Which Galera component garbd is in, read from its log: garbd has no status interface, but it logs every
component change ("New COMPONENT: primary = yes|no ..."). A cursor remembers how far the log was read, so a
monitor reads only what garbd wrote since, and a rotated log keeps the last state seen."""

from __future__ import annotations

import binascii
import os

from hamail.system.files import StateFile

MARK = "New COMPONENT: primary = "
# A monitor never reads more than this of new log: garbd logs a few lines per view change.
MAX_READ = 1 << 20
# A new log may get the old one's inode back: its first bytes tell them apart.
HEAD = 128
PRIMARY, NON_PRIMARY, UNKNOWN = "primary", "non-primary", "unknown"
# gcomm logs its own member id in short form (the uuid's first and fourth groups) when it starts listening:
# "(f7ea44f7-8b86, 'tcp://0.0.0.0:4567') listening at tcp://0.0.0.0:4567"
LISTENING = "') listening at "


def last_component(text: str, previous: str = UNKNOWN) -> str:
    """The component state the last COMPONENT line of ``text`` reports (``previous`` when there is none)."""
    state = previous
    for line in text.splitlines():
        at = line.find(MARK)
        if at >= 0:
            answer = line[at + len(MARK):].split(",", 1)[0].strip()
            state = PRIMARY if answer == "yes" else NON_PRIMARY if answer == "no" else state
    return state


def own_id(text: str) -> str | None:
    """garbd's gcomm member id (the short form gcomm logs: 8-4 hex digits) from its last "listening at" line."""
    found = None
    for line in text.splitlines():
        if LISTENING in line:
            head = line.split("(", 1)[-1].split(",", 1)[0].strip().lower()
            parts = head.split("-")
            if len(parts) == 2 and len(parts[0]) == 8 and len(parts[1]) == 4 and all(
                    c in "0123456789abcdef" for c in parts[0] + parts[1]):
                found = head
    return found


def read_from(log: str, offset: int) -> str:
    """What the log holds from offset on (at most MAX_READ), '' when absent."""
    try:
        with open(log, "rb") as handle:
            handle.seek(offset)
            return handle.read(MAX_READ).decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


class Cursor:
    """Position in garbd's log (inode, a checksum of its first bytes, offset) and the state read up to there."""

    __slots__ = ("inode", "head", "offset", "state")

    def __init__(self, inode: int, head: int, offset: int, state: str) -> None:
        self.inode, self.head, self.offset, self.state = inode, head, offset, state

    def text(self) -> str:
        """The cursor as one line for its state file."""
        return f"{self.inode} {self.head} {self.offset} {self.state}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        """A cursor from its state file's line (None when absent or unreadable)."""
        parts = (text or "").split()
        if len(parts) != 4 or not all(p.isdigit() for p in parts[:3]):
            return None
        return cls(int(parts[0]), int(parts[1]), int(parts[2]), parts[3])


def _head(handle, size: int) -> int:
    """Checksum of the file's first HEAD bytes (fewer while it is shorter)."""
    handle.seek(0)
    return binascii.crc32(handle.read(min(size, HEAD)))


def start_cursor(log: str) -> Cursor:
    """A cursor at the end of the log as it is now: what garbd logs after this moment decides."""
    try:
        with open(log, "rb") as handle:
            info = os.fstat(handle.fileno())
            return Cursor(info.st_ino, _head(handle, info.st_size), info.st_size, UNKNOWN)
    except FileNotFoundError:
        return Cursor(0, 0, 0, UNKNOWN)


def advance(log: str, cursor: Cursor) -> Cursor:
    """Read what the log gained since ``cursor``; a replaced or truncated log is read from its start."""
    try:
        handle = open(log, "rb")
    except FileNotFoundError:
        return cursor
    with handle:
        info = os.fstat(handle.fileno())
        same = (info.st_ino == cursor.inode and info.st_size >= cursor.offset
                and _head(handle, min(cursor.offset, HEAD)) == cursor.head)
        offset = max(cursor.offset if same else 0, info.st_size - MAX_READ)
        handle.seek(offset)
        data = handle.read(info.st_size - offset)
        # Only whole lines count; a line garbd is still writing is read at the next call.
        end = offset + data.rfind(b"\n") + 1
        head = cursor.head if same and cursor.offset >= HEAD else _head(handle, min(end, HEAD))
    state = last_component(data[:end - offset].decode("utf-8", "replace"), cursor.state)
    return Cursor(info.st_ino, head, end, state)


def store(directory: str, instance: str) -> StateFile:
    """The state file holding an instance's cursor."""
    return StateFile(directory, f"garbd-{instance}.cursor")
