# SPDX-License-Identifier: GPL-2.0-or-later
"""What the apache agent reads from httpd's configuration: ServerRoot, PidFile, the Listen addresses and the
<Location> that serves server-status, following Include/IncludeOptional (globs and directories) and expanding
${VAR} from the environment (envfiles) and Define, as httpd does.

Like heartbeat's apachecat, sections (<IfModule>, <IfDefine>, <VirtualHost>) are not evaluated: every directive
counts. httpd's own checker (apache2 -t) is what judges the configuration; this reading only finds the daemon.
"""

from __future__ import annotations

import os

__all__ = ["ApacheConf", "parse"]

# How deep Includes may nest (httpd's own limit is 128; a loop must not hang a monitor).
MAX_DEPTH = 32


class ApacheConf:
    """server_root, pid_file (as written, expanded), listens (first words of Listen), status_location, files read."""

    __slots__ = ("server_root", "pid_file", "listens", "status_location", "files", "unexpanded")

    def __init__(self, server_root: str) -> None:
        self.server_root, self.pid_file, self.listens = server_root, "", []
        self.status_location, self.files, self.unexpanded = "", [], False


def _expand(text: str, variables: dict, conf: ApacheConf) -> str:
    """${NAME} replaced by its value; an undefined one stays (httpd -t then says which) and is noted."""
    if "${" not in text:
        return text
    out, rest = [], text
    while "${" in rest:
        head, _, tail = rest.partition("${")
        name, close, after = tail.partition("}")
        out.append(head)
        if close and name in variables:
            out.append(variables[name])
        else:
            conf.unexpanded = True
            out.append("${" + name + close)
        rest = after if close else ""
    out.append(rest)
    return "".join(out)


def _lines(path: str):
    """Logical lines of one file: continuations joined, comments and blank lines dropped."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        pending = ""
        for raw in handle:
            line = raw.rstrip("\n").rstrip()
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line, pending = (pending + line).strip(), ""
            if line and not line.startswith("#"):
                yield line


def _included(spec: str, server_root: str) -> list:
    """The files an Include names: relative to ServerRoot, a glob or a directory (its files, sorted)."""
    spec = spec.strip('"')
    if not spec.startswith("/"):
        spec = os.path.join(server_root, spec)
    found, matches = [], [spec]
    if any(c in spec for c in "*?["):
        import glob  # with fnmatch and re: paid only by configurations that include by pattern
        matches = sorted(glob.glob(spec))
    for match in matches:
        if os.path.isdir(match):
            for root, dirs, files in os.walk(match):
                dirs.sort()
                found += [os.path.join(root, name) for name in sorted(files)]
        elif os.path.exists(match):
            found.append(match)
    return found


def parse(path: str, variables: dict, server_root: str = "/etc/apache2") -> ApacheConf:
    """Read path and its includes; OSError when the main file cannot be read."""
    conf = ApacheConf(server_root)
    variables = dict(variables)
    _read(path, conf, variables, 0)
    return conf


def _read(path: str, conf: ApacheConf, variables: dict, depth: int) -> None:
    conf.files.append(path)
    location = ""
    for line in _lines(path):
        words = _expand(line, variables, conf).split(None, 1)
        key, value = words[0].lower(), (words[1] if len(words) > 1 else "").strip()
        if key.startswith("<location") and not key.startswith("<locationmatch"):
            location = value.rstrip(">").strip().strip('"')
        elif key == "</location>":
            location = ""
        elif key == "sethandler" and value.strip('"').lower() == "server-status":
            conf.status_location = location or "/"
        elif key == "serverroot":
            conf.server_root = value.strip('"')
        elif key == "pidfile":
            conf.pid_file = value.strip('"')
        elif key == "listen" and value:
            conf.listens.append(value.split()[0])
        elif key == "define" and value:
            name, _, defined = value.partition(" ")
            variables[name] = defined.strip().strip('"')
        elif key in ("include", "includeoptional") and value and depth < MAX_DEPTH:
            for child in _included(value, conf.server_root):
                try:
                    _read(child, conf, variables, depth + 1)
                except OSError:
                    continue  # httpd's checker reports an unreadable Include; finding the daemon goes on
