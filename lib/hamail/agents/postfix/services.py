# SPDX-License-Identifier: GPL-2.0-or-later
"""Where a Postfix instance takes mail: the SMTP services of master.cf (`postconf -M`), pure parsing.

A master.cf line is `service type private unpriv chroot wakeup maxproc command args...`; an inet service whose
command is smtpd (or postscreen, which speaks SMTP before handing over) listens on `host:port`, `port` or a
service name (smtp, submission, smtps), on every inet_interfaces address when no host is given.
"""

from __future__ import annotations

__all__ = ["SMTP_COMMANDS", "smtp_services", "first_address"]

SMTP_COMMANDS = ("smtpd", "postscreen")
# Names master.cf may use for a port; looked up here rather than in /etc/services, which may lack some.
PORT_NAMES = {"smtp": 25, "submission": 587, "smtps": 465, "submissions": 465, "lmtp": 24}
# Ports whose clients speak TLS from the first byte (RFC 8314), unless an -o says otherwise.
WRAPPED_PORTS = (465,)


def first_address(inet_interfaces: str) -> str:
    """The address to probe a listener without a host on: the first of inet_interfaces, loopback for 'all'."""
    words = inet_interfaces.replace(",", " ").split()
    if not words or words[0] in ("all", "loopback-only", "localhost"):
        return "127.0.0.1"
    return words[0].strip("[]")


def _wrapped(port: int, args: list) -> bool:
    """Whether the service runs TLS wrapper mode (`-o smtpd_tls_wrappermode=yes`, also as `-o { ... }`)."""
    text = "".join("".join(args).split())
    for value in ("yes", "no"):
        if f"smtpd_tls_wrappermode={value}" in text:
            return value == "yes"
    return port in WRAPPED_PORTS


def smtp_services(master_lines: str, inet_interfaces: str) -> list:
    """[name, host, port, wrapped] for each SMTP inet service in `postconf -M` output (lines of master.cf)."""
    found = []
    for line in master_lines.splitlines():
        fields = line.split()
        if len(fields) < 8 or fields[0].startswith("#") or fields[1] != "inet":
            continue
        command = fields[7].rsplit("/", 1)[-1]
        if command not in SMTP_COMMANDS:
            continue
        name = fields[0]
        host, sep, port_text = name.rpartition(":")
        if not sep:
            host = ""
        port = int(port_text) if port_text.isdigit() else PORT_NAMES.get(port_text)
        if port is None:
            continue  # a service name we cannot map to a port: the operator can name it in smtp_address
        host = host.strip("[]") or first_address(inet_interfaces)
        if host in ("0.0.0.0", "*", "::"):
            host = "127.0.0.1"
        found.append([name, host, port, _wrapped(port, fields[8:])])
    return found
