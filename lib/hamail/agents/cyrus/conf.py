# SPDX-License-Identifier: GPL-2.0-or-later
"""Where a Cyrus server listens and which protocol each listener speaks, read from cyrus.conf (pure).

cyrus.conf's SERVICES section names one service per line: `imap cmd="imapd -U 30" listen="imap" prefork=0`.
The program in cmd says the protocol (imapd and proxyd speak IMAP, pop3d and pop3proxyd POP3, lmtpd and
lmtpproxyd LMTP; `-s` means TLS from the first byte), listen says where: a unix socket path, or
[host:]port with the port a number or a service name from /etc/services. A service with proto="udp" (notifyd)
accepts no connection and is left out; any other program (timsieved, httpd, nntpd) only has to accept one.
"""

from __future__ import annotations

import os

from hamail.service.probes import Endpoint

__all__ = ["Listener", "PROTOCOLS", "services", "listeners", "parse_addresses", "resolve_listen"]

# What a monitor can say to each kind of listener; "tcp": only that it accepts a connection.
PROTOCOLS = ("imap", "imaps", "pop3", "pop3s", "lmtp", "tcp")
_PROGRAMS = {"imapd": "imap", "proxyd": "imap", "pop3d": "pop3", "pop3proxyd": "pop3", "lmtpd": "lmtp",
             "lmtpproxyd": "lmtp"}
# Ports of the service names cyrus.conf uses, for a node whose /etc/services lacks one.
_WELL_KNOWN = {"imap": 143, "imap2": 143, "imaps": 993, "pop3": 110, "pop3s": 995, "lmtp": 24, "sieve": 4190,
               "nntp": 119, "nntps": 563, "http": 80, "https": 443, "mupdate": 3905, "csync": 2005}


class Listener:
    """One listener of the server: the cyrus.conf service it belongs to, its protocol and its endpoint."""

    __slots__ = ("service", "protocol", "endpoint")

    def __init__(self, service: str, protocol: str, endpoint: Endpoint) -> None:
        self.service, self.protocol, self.endpoint = service, protocol, endpoint

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Listener) and (self.service, self.protocol, self.endpoint) == (
            other.service, other.protocol, other.endpoint)

    def __repr__(self) -> str:
        return f"Listener({self.service!r}, {self.protocol!r}, {self.endpoint})"


def _pairs(text: str) -> dict:
    """key=value and key="quoted value" pairs of one entry (re costs a monitor ~4 ms to import: split by hand)."""
    pairs, rest = {}, text.strip()
    while rest:
        key, sep, rest = rest.partition("=")
        if not sep:
            break
        if rest.startswith('"'):
            value, _, rest = rest[1:].partition('"')
        else:
            value, _, rest = rest.partition(" ")
        pairs[key.strip().lower()] = value.strip()
        rest = rest.strip()
    return pairs


def services(text: str) -> list[dict]:
    """The entries of cyrus.conf's SERVICES section: {'name': ..., 'cmd': ..., 'listen': ..., ...}."""
    found, section = [], None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("{"):
            section = line[:-1].strip().upper()
            continue
        if line.startswith("}"):
            section = None
            continue
        if section != "SERVICES":
            continue
        name, *rest = line.split(None, 1)
        entry = _pairs(rest[0].replace("\t", " ")) if rest else {}
        entry["name"] = name
        found.append(entry)
    return found


def protocol_of(cmd: str) -> str:
    """The protocol a service's cmd speaks ("tcp" for a program the monitor only connects to)."""
    words = cmd.split()
    if words and os.path.basename(words[0]) == "cyrus" and len(words) > 1:
        words = words[1:]  # Debian's /usr/sbin/cyrus runs /usr/lib/cyrus/bin/<command>
    if not words:
        return "tcp"
    protocol = _PROGRAMS.get(os.path.basename(words[0]), "tcp")
    if protocol in ("imap", "pop3") and "-s" in words[1:]:
        protocol += "s"
    return protocol


def resolve_listen(listen: str, proto: str = "tcp") -> Endpoint:
    """The Endpoint of a listen= value ('/path', 'port', 'name', 'host:port', '[v6]:name'); ValueError."""
    value = listen.strip()
    if not value:
        raise ValueError("empty listen value")
    if value.startswith("/"):
        return Endpoint(path=value)
    host, sep, port = value.rpartition(":")
    if not sep:
        host = ""
    elif not host:
        raise ValueError(f"{listen!r} has no host before ':'")
    if not port.isdigit():
        port = str(_service_port(port))
    default_host = "::1" if proto == "tcp6" else "127.0.0.1"
    return Endpoint.parse(f"{host}:{port}" if host else port, default_host=default_host)


def _service_port(name: str) -> int:
    import _socket  # socket's wrapper costs ~6 ms (enum, selectors); the C module answers the same
    try:
        return _socket.getservbyname(name, "tcp")
    except OSError:
        if name.lower() in _WELL_KNOWN:
            return _WELL_KNOWN[name.lower()]
        raise ValueError(f"{name!r} is neither a port number nor a service name known here") from None


def listeners(text: str) -> list[Listener]:
    """Every listener cyrus.conf declares that accepts connections (proto udp left out); ValueError when a
    listen value cannot be read."""
    found = []
    for entry in services(text):
        proto = entry.get("proto", "tcp").lower()
        if "listen" not in entry or proto == "udp":
            continue
        try:
            endpoint = resolve_listen(entry["listen"], proto)
        except ValueError as exc:
            raise ValueError(f"service {entry['name']}: listen={entry['listen']!r}: {exc}") from None
        found.append(Listener(entry["name"], protocol_of(entry.get("cmd", "")), endpoint))
    return found


def parse_addresses(value: str, protocol: str) -> list[Listener]:
    """An address override parameter: endpoints separated by spaces or commas, each host:port, a port or a
    socket path, or TLS from the first byte as imaps=host:port / pop3s=host:port; ValueError naming the item."""
    found = []
    for item in value.replace(",", " ").split():
        kind, sep, where = item.partition("=")
        if not sep:
            kind, where = protocol, item
        if kind.lower() not in (protocol, protocol + "s") or kind.lower() == "lmtps":
            raise ValueError(f"{item!r}: only {protocol}{'' if protocol == 'lmtp' else ' or ' + protocol + 's'} "
                             "listeners belong here")
        try:
            endpoint = resolve_listen(where)
        except ValueError as exc:
            raise ValueError(f"{item!r}: {exc}") from None
        found.append(Listener(kind.lower(), kind.lower(), endpoint))
    return found
