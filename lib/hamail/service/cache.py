# SPDX-License-Identifier: GPL-2.0-or-later
"""What an agent learns from a daemon's configuration by running the daemon's own tools (postconf, doveconf),
kept in HA_RSCTMP and reused while the configuration files are unchanged: a depth-0 monitor then reads one small
file instead of starting a program. The files' (mtime, size, inode) are the key.

Values are rows of strings stored as tab-separated lines (json would import re: ~4 ms on every monitor)."""

from __future__ import annotations

import os

__all__ = ["remembered", "stamp"]


def stamp(paths) -> list:
    """The identity of each file now: path, mtime_ns, size, inode ('-' for the three when it is absent)."""
    found = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            found += [path, "-", "-", "-"]
            continue
        found += [path, str(info.st_mtime_ns), str(info.st_size), str(info.st_ino)]
    return found


def _storable(fields) -> bool:
    return all("\t" not in field and "\n" not in field for field in fields)


def _load(path: str):
    """(stamp, rows) stored at path, None when absent or unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
    except (OSError, UnicodeDecodeError):
        return None
    if not lines or not lines[0].startswith("stamp\t"):
        return None
    return lines[0].split("\t")[1:], [line.split("\t") for line in lines[1:] if line]


def remembered(environ, name: str, paths, compute, log=None) -> list:
    """compute()'s rows (lists of strings), reused from HA_RSCTMP/<name> while every file in paths is unchanged.

    When compute fails (a tool broken or missing now) and older rows are stored, those are used with a warning:
    a stop must still find the daemon that the old configuration started."""
    from hamail.system.files import atomic_write, rsctmp
    directory = rsctmp(environ)
    path = os.path.join(directory, name.replace("/", "_"))
    now = stamp(paths)
    stored = _load(path)
    if stored is not None and stored[0] == now:
        return stored[1]
    try:
        rows = [[str(field) for field in row] for row in compute()]
    except Exception as exc:
        if stored is None:
            raise
        if log is not None:
            log.warning("using what the configuration said before (%s)", exc)
        return stored[1]
    if _storable(now) and all(_storable(row) for row in rows):
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
            atomic_write(path, "\n".join(["\t".join(["stamp", *now]), *("\t".join(row) for row in rows)]) + "\n")
        except OSError:
            pass  # a read-only or missing HA_RSCTMP costs the next monitor a tool run, nothing more
    return rows
