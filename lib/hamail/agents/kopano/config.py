# SPDX-License-Identifier: GPL-2.0-or-later
"""Kopano's configuration files as its daemons read them, and the listeners each service has (pure, no I/O
beyond reading the files).

The format is Kopano's (kopano-server.cfg(5)): `name = value` lines, `#` comments, `!include FILE` (relative
to the including file's directory); a line without `=` is ignored, as Kopano ignores it. Listener values are
Kopano's bind specifications: space-separated `address:port` with an optional `%interface` infix (`*%lo:236`),
`[v6]:port`, `*` the any-address wildcard, and `unix:/path` for a unix socket.
"""

from __future__ import annotations

import os

__all__ = ["KopanoConfig", "ConfigProblem", "Listener", "read_config", "parse_bindspec", "parse_listen_param",
           "service_listeners", "PROTOCOLS", "DEFAULTS"]

# Include nesting Kopano would follow at most before we call it a loop.
MAX_INCLUDE_DEPTH = 8

# What each service listens on when its configuration does not say (Kopano 8.x's built-in defaults; Kopano
# 10 and later bind the same ports on lo only, which loopback reaches as well).
DEFAULTS = {
    "server_listen": "*:236",
    "server_pipe_enabled": "yes",
    "server_pipe_name": "/var/run/kopano/server.sock",
    "lmtp_listen": "*:2003",
    "imap_listen": "*:143",
    "imaps_listen": "",
    "pop3_listen": "*:110",
    "pop3s_listen": "",
    "ical_listen": "*:8080",
    "icals_listen": "",
    "server_bind_name": "file:///var/run/kopano/search.sock",
    "server_bind": "127.0.0.1",
    "server_port": "1234",
}

# The protocol a monitor speaks to a listener, by name; the `listen` parameter may name them.
PROTOCOLS = ("soap", "lmtp", "imap", "imaps", "pop3", "pop3s", "http", "https", "search")
# Each service's main protocol (a `listen` entry without `protocol=` speaks it); None: no listener.
MAIN_PROTOCOL = {"server": "soap", "dagent": "lmtp", "gateway": "imap", "ical": "http", "search": "search",
                 "presence": "http", "spooler": None, "monitor": None}


class ConfigProblem(ValueError):
    """A configuration file that cannot be read, or a value that is not what Kopano accepts."""


class KopanoConfig:
    """The settings of one Kopano configuration file (after includes), with where each was set."""

    __slots__ = ("path", "values", "origin")

    def __init__(self, path: str, values: dict, origin: dict) -> None:
        self.path, self.values, self.origin = path, values, origin

    def get(self, name: str, default: str = "") -> str:
        """The value set in the file, else default."""
        return self.values.get(name, default)

    def setting(self, name: str) -> str:
        """The value set in the file, else Kopano's default (DEFAULTS)."""
        return self.values.get(name, DEFAULTS.get(name, ""))

    def where(self, name: str) -> str:
        """'file:line' where name was set, or 'default' for Kopano's default."""
        return self.origin.get(name, "default")


def read_config(path: str) -> KopanoConfig:
    """Read a Kopano configuration file and its includes; OSError when the file itself cannot be read,
    ConfigProblem for an include that cannot be (Kopano refuses to start then too)."""
    values: dict = {}
    origin: dict = {}
    _read_into(path, values, origin, 0, ())
    return KopanoConfig(path, values, origin)


def _read_into(path: str, values: dict, origin: dict, depth: int, seen: tuple) -> None:
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = handle.read(1 << 20).splitlines()
    seen = seen + (os.path.realpath(path),)
    for number, line in enumerate(lines, 1):
        if not line or line[0] == "#":
            continue
        if line[0] == "!":
            words = line[1:].split(None, 1)
            if len(words) == 2 and words[0] == "include":
                _include(path, number, words[1].strip(), values, origin, depth, seen)
            continue  # other directives (propmap) say nothing about listeners or pid files
        name, sep, value = line.partition("=")
        name = name.strip()
        if sep and name:
            values[name], origin[name] = value.strip(), f"{path}:{number}"


def _include(path: str, number: int, target: str, values: dict, origin: dict, depth: int, seen: tuple) -> None:
    target = target if target.startswith("/") else os.path.join(os.path.dirname(path), target)
    if depth >= MAX_INCLUDE_DEPTH or os.path.realpath(target) in seen:
        raise ConfigProblem(f"{path}:{number}: !include {target} nests too deep (an include loop?)")
    try:
        _read_into(target, values, origin, depth + 1, seen)
    except OSError as exc:
        raise ConfigProblem(f"{path}:{number}: !include {target}: {exc.strerror}") from None


class Listener:
    """One address a service listens on, and the protocol the monitor speaks there."""

    __slots__ = ("protocol", "host", "port", "path", "source")

    def __init__(self, protocol: str, host: str = "", port: int = 0, path: str = "", source: str = "") -> None:
        self.protocol, self.host, self.port, self.path, self.source = protocol, host, port, path, source

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Listener) and (self.protocol, self.host, self.port, self.path) == (
            other.protocol, other.host, other.port, other.path)

    def __hash__(self) -> int:
        return hash((self.protocol, self.host, self.port, self.path))

    def __str__(self) -> str:
        if self.path:
            return self.path
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"Listener({self.protocol}, {self})"


def _loopback_for(host: str) -> str:
    """The address a local monitor reaches a listener bound to host at (wildcards answer on loopback)."""
    if host in ("", "*", "0.0.0.0"):
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "::1"
    return host


def parse_address(text: str, protocol: str, source: str) -> Listener:
    """One Kopano bind specification (`*%lo:236`, `[::1]:2003`, `unix:/path`, `file:///path`, `/path`)."""
    spec = text.strip()
    for prefix in ("unix:", "file://"):
        if spec.startswith(prefix):
            spec = spec[len(prefix):]
            break
    if spec.startswith("/"):
        return Listener(protocol, path=spec, source=source)
    if spec.startswith("["):
        host, sep, rest = spec[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ConfigProblem(f"{source}: {text!r} is not [address]:port")
        port = rest[1:]
    else:
        host, sep, port = spec.rpartition(":")
        if not sep:
            raise ConfigProblem(f"{source}: {text!r} is not address:port or unix:/path")
    host = host.partition("%")[0]  # the %interface infix binds to a device; the address is what we reach
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigProblem(f"{source}: {text!r} has no valid port")
    return Listener(protocol, host=_loopback_for(host), port=int(port), source=source)


def parse_bindspec(value: str, protocol: str, source: str) -> list:
    """A space-separated Kopano bind specification: its Listeners (an empty value: none)."""
    return [parse_address(word, protocol, source) for word in value.split()]


def parse_listen_param(value: str, service: str) -> list:
    """The `listen` parameter: space-separated `[protocol=]address`; a bare address speaks the service's main
    protocol. ConfigProblem names the bad entry."""
    found = []
    for word in value.split():
        protocol, sep, address = word.partition("=")
        if not sep:
            protocol, address = MAIN_PROTOCOL.get(service) or "", word
            if not protocol:
                raise ConfigProblem(f"parameter listen: kopano-{service} has no protocol of its own: write "
                                    f"protocol=address with protocol one of {', '.join(PROTOCOLS)}")
        if protocol not in PROTOCOLS:
            raise ConfigProblem(f"parameter listen: {protocol!r} in {word!r} is not one of {', '.join(PROTOCOLS)}")
        found.append(parse_address(address, protocol, "parameter listen"))
    return found


def _url_listener(value: str, protocol_of_scheme: dict, source: str) -> list:
    """A Kopano socket URL (file:///path, http://host:port/, https://...) as a Listener."""
    value = value.strip()
    if not value:
        return []
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in protocol_of_scheme:
        raise ConfigProblem(f"{source}: {value!r} is not file:///path or http(s)://host:port")
    if scheme == "file":
        return [parse_address(rest, protocol_of_scheme[scheme], source)]
    hostport = rest.split("/", 1)[0]
    if ":" not in hostport.rsplit("]", 1)[-1]:
        hostport += ":443" if scheme == "https" else ":80"
    return [parse_address(hostport, protocol_of_scheme[scheme], source)]


def service_listeners(service: str, cfg: KopanoConfig) -> list:
    """Where kopano-<service> listens according to its configuration (Kopano's defaults where unset)."""
    def spec(name: str, protocol: str) -> list:
        return parse_bindspec(cfg.setting(name), protocol, f"{name} ({cfg.where(name)})")

    if service == "server":
        found = spec("server_listen", "soap")
        if cfg.setting("server_pipe_enabled").strip().lower() not in ("no", "false", "0", "off"):
            found += _url_listener("file://" + cfg.setting("server_pipe_name").strip(), {"file": "soap"},
                                   f"server_pipe_name ({cfg.where('server_pipe_name')})")
        return found
    if service == "dagent":
        return spec("lmtp_listen", "lmtp")
    if service == "gateway":
        return (spec("imap_listen", "imap") + spec("imaps_listen", "imaps") + spec("pop3_listen", "pop3")
                + spec("pop3s_listen", "pop3s"))
    if service == "ical":
        return spec("ical_listen", "http") + spec("icals_listen", "https")
    if service == "search":
        return _url_listener(cfg.setting("server_bind_name"), {"file": "search", "http": "search",
                                                               "https": "search"},
                             f"server_bind_name ({cfg.where('server_bind_name')})")
    if service == "presence":
        port = cfg.setting("server_port").strip()
        where = f"server_port ({cfg.where('server_port')})"
        host = cfg.setting("server_bind").strip() or "127.0.0.1"
        return [parse_address(f"[{host}]:{port}" if ":" in host else f"{host}:{port}", "http", where)]
    return []
