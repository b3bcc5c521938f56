# SPDX-License-Identifier: GPL-2.0-or-later
"""What the slapd agent reads from slapd's configuration (a cn=config directory or a slapd.conf) and from the
`services` URLs: the pid file, the database suffixes, and where each listener is.

Pure functions of text and paths (no LDAP library): the depth-0 monitor uses them, and it must stay cheap.
"""

from __future__ import annotations

import os

from hamail.service.probes import Endpoint

__all__ = ["Listener", "parse_services", "is_directory_config", "pid_file", "suffixes", "read_ldif",
           "LDAPI_DEFAULT", "default_config"]

# Where Debian's slapd puts the ldapi socket for `ldapi:///` (compiled in: LDAPI_SOCK).
LDAPI_DEFAULT = "/var/run/slapd/ldapi"
DEFAULT_PORTS = {"ldap": 389, "ldaps": 636}


class Listener:
    """One URL of `services`: its scheme, where to connect to check it, and the URL a client uses for it."""

    __slots__ = ("scheme", "endpoint", "client_url", "given")

    def __init__(self, scheme: str, endpoint: Endpoint, client_url: str, given: str) -> None:
        self.scheme, self.endpoint, self.client_url, self.given = scheme, endpoint, client_url, given

    def __repr__(self) -> str:
        return f"Listener({self.given!r} -> {self.client_url})"


def _unquote(text: str) -> str:
    if "%" not in text:
        return text
    from urllib.parse import unquote  # ~8 ms: only for URLs that percent-encode a socket path or a host
    return unquote(text)


def _client_host(host: str) -> str:
    """The address a local client uses for a listener's host (a wildcard listener answers on loopback)."""
    if host in ("", "*", "0.0.0.0"):
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "::1"
    return host.strip("[]")


def parse_services(text: str) -> list:
    """The Listeners of slapd's -h URLs (space separated); ValueError naming a URL slapd would not serve.
    cldap:// (UDP) has no listener to connect to and is left out."""
    listeners = []
    for url in text.split():
        scheme, sep, rest = url.partition("://")
        scheme = scheme.lower()
        if not sep or scheme not in ("ldap", "ldaps", "ldapi", "cldap"):
            raise ValueError(f"{url!r} is not an ldap://, ldaps://, ldapi:// or cldap:// URL")
        hostport = rest.split("/", 1)[0].split("?", 1)[0]
        if scheme == "cldap":
            continue
        if scheme == "ldapi":
            path = _unquote(hostport) or LDAPI_DEFAULT
            if not path.startswith("/"):
                raise ValueError(f"{url!r}: the ldapi socket must be an absolute path (%2F for each /)")
            from_path = "ldapi://" + path.replace("%", "%25").replace("/", "%2F")
            listeners.append(Listener(scheme, Endpoint(path=path), from_path, url))
            continue
        hostport = _unquote(hostport)
        if hostport.startswith("["):
            host, _, port = hostport[1:].partition("]")
            port = port[1:] if port.startswith(":") else port
        else:
            host, _, port = hostport.partition(":")
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"{url!r}: {port!r} is not a port")
        number = int(port) if port else DEFAULT_PORTS[scheme]
        client = _client_host(host)
        shown = f"[{client}]" if ":" in client else client
        listeners.append(Listener(scheme, Endpoint(host=client, port=number), f"{scheme}://{shown}:{number}", url))
    return listeners


def default_config() -> str:
    """heartbeat's default: the cn=config directory where it exists, else slapd.conf (under /etc/openldap on
    distributions that use it, else /etc/ldap)."""
    base = "/etc/openldap" if os.path.exists("/etc/openldap") else "/etc/ldap"
    return f"{base}/slapd.d" if os.path.exists(f"{base}/slapd.d") else f"{base}/slapd.conf"


def is_directory_config(path: str) -> bool:
    """Whether config names a cn=config directory (slapd -F) rather than a slapd.conf (slapd -f)."""
    return os.path.isdir(path)


def read_ldif(path: str) -> list:
    """The (attribute, value) pairs of an LDIF file, folded lines joined and base64 values decoded."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = handle.read().splitlines()
    joined: list = []
    for line in lines:
        if line.startswith(" ") and joined:
            joined[-1] += line[1:]
        elif line and not line.startswith("#"):
            joined.append(line)
    pairs = []
    for line in joined:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        if value.startswith(":"):
            import base64
            try:
                value = base64.b64decode(value[1:].strip()).decode("utf-8", errors="replace")
            except ValueError:
                continue
        pairs.append((name.strip().lower(), value.strip()))
    return pairs


def _conf_lines(path: str) -> list:
    """slapd.conf's directives as word lists (continuation lines joined, comments dropped)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = handle.read().splitlines()
    joined: list = []
    for line in lines:
        if line[:1] in (" ", "\t") and joined and line.strip():
            joined[-1] += " " + line.strip()
        elif line.strip() and not line.lstrip().startswith("#"):
            joined.append(line.strip())
    return [line.split(None, 1) for line in joined]


def _unquoted(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def pid_file(config: str) -> str | None:
    """The pid file slapd writes with this configuration (olcPidFile / pidfile), None when it writes none.
    OSError when the configuration cannot be read."""
    if is_directory_config(config):
        for name, value in read_ldif(os.path.join(config, "cn=config.ldif")):
            if name == "olcpidfile":
                return value
        return None
    for words in _conf_lines(config):
        if words[0].lower() == "pidfile" and len(words) > 1:
            return _unquoted(words[1])
    return None


def suffixes(config: str) -> list:
    """The suffixes of the configuration's databases (olcSuffix / suffix), in the configuration's order.
    OSError when the configuration cannot be read."""
    found = []
    if is_directory_config(config):
        directory = os.path.join(config, "cn=config")
        for entry in sorted(os.listdir(directory)):
            if entry.startswith("olcDatabase=") and entry.endswith(".ldif"):
                found += [v for n, v in read_ldif(os.path.join(directory, entry)) if n == "olcsuffix"]
        return [_unquoted(value) for value in found]
    for words in _conf_lines(config):
        if words[0].lower() == "suffix" and len(words) > 1:
            found.append(_unquoted(words[1]))
    return found
