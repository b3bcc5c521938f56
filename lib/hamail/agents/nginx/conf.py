# SPDX-License-Identifier: GPL-2.0-or-later
"""What the nginx agent reads from nginx's configuration: pid, the listen addresses and the location that serves
stub_status, following include (globs, relative to the main file's directory as nginx -c takes them).

Directives are read token by token (quotes, comments, ';', '{' and '}') but contexts are not evaluated: every
listen counts, as with heartbeat's nginxcat. `nginx -t` is what judges the configuration; this reading only
finds the daemon.
"""

from __future__ import annotations

import os

__all__ = ["NginxConf", "Listen", "parse"]

# How deep includes may nest (a loop must not hang a monitor).
MAX_DEPTH = 32


class Listen:
    """One listen directive: its address (first word) and whether it speaks TLS."""

    __slots__ = ("address", "ssl")

    def __init__(self, address: str, ssl: bool) -> None:
        self.address, self.ssl = address, ssl

    def __repr__(self) -> str:
        return f"Listen({self.address!r}{', ssl' if self.ssl else ''})"


class NginxConf:
    """pid (as written), listens, status_location, files read."""

    __slots__ = ("pid", "listens", "status_location", "files")

    def __init__(self) -> None:
        self.pid, self.listens, self.status_location, self.files = "", [], "", []


def _tokens(text: str):
    """nginx's tokens: words (quotes removed), and ';', '{', '}' on their own."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c in ";{}":
            yield c
            i += 1
        elif c in "\"'":
            end = i + 1
            while end < n and text[end] != c:
                end += 2 if text[end] == "\\" else 1
            yield text[i + 1:end]
            i = end + 1
        else:
            end = i
            while end < n and not text[end].isspace() and text[end] not in ";{}\"'#":
                end += 1
            yield text[i:end]
            i = end


def _included(spec: str, base: str) -> list:
    """The files an include names, relative to the main configuration's directory; globs sorted."""
    if not spec.startswith("/"):
        spec = os.path.join(base, spec)
    if any(c in spec for c in "*?["):
        import glob  # with fnmatch and re: paid only by configurations that include by pattern
        return [p for p in sorted(glob.glob(spec)) if os.path.isfile(p)]
    return [spec]


def parse(path: str) -> NginxConf:
    """Read path and its includes; OSError when the main file cannot be read."""
    conf = NginxConf()
    _read(path, conf, os.path.dirname(path), 0, [])
    return conf


def _read(path: str, conf: NginxConf, base: str, depth: int, blocks: list) -> None:
    with open(path, encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    conf.files.append(path)
    words = []
    for token in _tokens(text):
        if token == "{":
            blocks.append(words[-1] if len(words) > 1 and words[0] == "location" else None)  # after = ~ ^~
            words = []
        elif token == "}":
            if blocks:
                blocks.pop()
            words = []
        elif token == ";":
            _directive(words, conf, base, depth, blocks)
            words = []
        else:
            words.append(token)


def _directive(words: list, conf: NginxConf, base: str, depth: int, blocks: list) -> None:
    if not words:
        return
    name, args = words[0], words[1:]
    if name == "pid" and args and not blocks:
        conf.pid = args[0]
    elif name == "listen" and args:
        conf.listens.append(Listen(args[0], "ssl" in args[1:]))
    elif name == "stub_status" and args[:1] in ([], ["on"]):
        conf.status_location = next((b for b in reversed(blocks) if b), "/")
    elif name == "include" and args and depth < MAX_DEPTH:
        for child in _included(args[0], base):
            try:
                _read(child, conf, base, depth + 1, blocks)
            except OSError:
                continue  # nginx -t reports an unreadable include; finding the daemon goes on
