# SPDX-License-Identifier: GPL-2.0-or-later
"""Where a Dovecot instance answers, from `doveconf -S` (key=value lines of the full configuration), pure parsing.

Only the protocols in `protocols` run their services: imap (imap-login), pop3 (pop3-login), lmtp (lmtp). An inet
listener with port 0 is disabled, and so is every ssl=yes listener while `ssl = no` (Dovecot does not open
them: a configuration that keeps the default imaps/pop3s listeners with SSL off is valid); one without an address listens on `listen`; an haproxy listener expects a
PROXY header first and is not probed; unix listener paths are relative to base_dir.
"""

from __future__ import annotations

__all__ = ["SERVICES", "parse_settings", "listeners"]

# protocol -> (service, protocol spoken on a plain listener, protocol spoken on an ssl=yes listener)
SERVICES = {"imap": ("imap-login", "imap", "imaps"), "pop3": ("pop3-login", "pop3", "pop3s"),
            "lmtp": ("lmtp", "lmtp", "lmtps")}


def parse_settings(text: str) -> dict:
    """doveconf -S output as a dict (first '=' separates key and value)."""
    settings = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            settings[key.strip()] = value.strip()
    return settings


def _address(configured: str, listen: str) -> str:
    """The address to probe a listener on: its own, else the first of listen; loopback for a wildcard."""
    words = (configured or listen).replace(",", " ").split()
    first = words[0].strip("[]") if words else "*"
    if first in ("*", "0.0.0.0"):
        return "127.0.0.1"
    return "::1" if first == "::" else first


def listeners(settings: dict) -> list:
    """[protocol, host, port, path] for each listener that runs: inet ones with host and port, unix ones
    (LMTP) with path."""
    protocols = settings.get("protocols", "").split()
    base_dir = settings.get("base_dir", "/run/dovecot")
    listen = settings.get("listen", "*")
    ssl_off = settings.get("ssl") == "no"
    found = []
    for protocol in protocols:
        if protocol not in SERVICES:
            continue
        service, plain, secure = SERVICES[protocol]
        prefix = f"service/{service}/inet_listener"
        for name in settings.get(prefix, "").split():
            item = f"{prefix}/{name}/"
            port = settings.get(item + "port", "0")
            if not port.isdigit() or int(port) == 0 or settings.get(item + "haproxy") == "yes":
                continue
            if ssl_off and settings.get(item + "ssl") == "yes":
                continue
            spoken = secure if settings.get(item + "ssl") == "yes" else plain
            if spoken == "lmtps":
                continue  # LMTP over TLS from the first byte: no client in smtplib for it
            found.append([spoken, _address(settings.get(item + "address", ""), listen), int(port), ""])
        if protocol == "lmtp":
            prefix = f"service/{service}/unix_listener"
            for name in settings.get(prefix, "").split():
                path = settings.get(f"{prefix}/{name}/path", "")
                if path:
                    found.append(["lmtp", "", 0, path if path.startswith("/") else f"{base_dir}/{path}"])
    return found
