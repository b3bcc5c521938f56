# SPDX-License-Identifier: GPL-2.0-or-later
"""Protocol probes for the mail services' monitors, each through the maintained client library for its protocol.

A probe either returns or raises ProbeFailed naming the protocol step that failed ("SMTP EHLO at 127.0.0.1:25:
timed out"), so an exit reason says where a wedged or broken daemon stopped answering. Every socket operation
is bounded by the time left on the caller's deadline, and the whole probe by in_thread at that deadline (a
library may do several reads, each with the full socket timeout). smtplib, imaplib, poplib, http.client and
ssl are imported only by the probe that needs them: a depth-0 monitor pays for a socket connect and no more.
"""

from __future__ import annotations

import os

__all__ = ["Endpoint", "ProbeFailed", "TLSPolicy", "accepts", "smtp", "imap", "pop3", "http_get", "bounded", "greeted",
           "Steps"]


class ProbeFailed(Exception):
    """A probe step failed: step ("SMTP EHLO") and a readable cause, never a credential."""

    def __init__(self, step: str, where: str, cause: str) -> None:
        super().__init__(f"{step} at {where}: {cause}")
        self.step, self.where, self.cause = step, where, cause


class Endpoint:
    """Where a service listens: host and port, or a unix socket path."""

    __slots__ = ("host", "port", "path")

    def __init__(self, host: str = "", port: int = 0, path: str = "") -> None:
        self.host, self.port, self.path = host, port, path

    @classmethod
    def parse(cls, text: str, default_host: str = "127.0.0.1") -> Endpoint:
        """'host:port', '[v6]:port', 'port' (on default_host), '*:port' or a unix socket '/path'; ValueError."""
        text = text.strip()
        if text.startswith("/"):
            return cls(path=text)
        host, sep, port = text.rpartition(":")
        if not sep:
            host, port = default_host, text
        host = host.strip("[]")
        if host in ("", "*", "0.0.0.0", "::", "all"):
            host = default_host  # a wildcard listener answers on loopback
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{text!r} is not host:port, a port or a socket path")
        return cls(host=host, port=int(port))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Endpoint) and (self.host, self.port, self.path) == (other.host, other.port, other.path)

    def __hash__(self) -> int:
        return hash((self.host, self.port, self.path))

    def __str__(self) -> str:
        if self.path:
            return self.path
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    __repr__ = __str__


class TLSPolicy:
    """How a probe checks a server's certificate: verify (and against which CA file), or not at all."""

    __slots__ = ("verify", "ca_file")

    def __init__(self, verify: bool = True, ca_file: str | None = None) -> None:
        self.verify, self.ca_file = verify, ca_file

    def context(self):
        """An ssl.SSLContext for this policy (ssl costs ~14 ms: only TLS probes import it)."""
        import ssl
        ctx = ssl.create_default_context(cafile=self.ca_file or None)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


def _cause(exc: BaseException) -> str:
    """A one-line cause for an exception from a socket or protocol library."""
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since Python 3.10
        return "timed out (no answer)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, FileNotFoundError):
        return "no such socket"
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Steps:
    """Runs a probe's steps, turning any failure into ProbeFailed naming the step."""

    __slots__ = ("protocol", "where")

    def __init__(self, protocol: str, where: str) -> None:
        self.protocol, self.where = protocol, where

    def __call__(self, step: str, call):
        """call()'s result; ProbeFailed('<protocol> <step>') on any error."""
        try:
            return call()
        except ProbeFailed:
            raise
        except Exception as exc:  # every library error is a failed step, reported in one line
            raise ProbeFailed(f"{self.protocol} {step}", self.where, _cause(exc)) from None

    def fail(self, step: str, cause: str) -> None:
        """Report a step whose answer was wrong."""
        raise ProbeFailed(f"{self.protocol} {step}", self.where, cause)


def _timeout(deadline, limit: float | None = None) -> float:
    left = deadline.remaining()
    if left <= 0:
        raise ProbeFailed("probe", "-", "no time left in the operation")
    return max(0.05, min(left, limit) if limit else left)


def bounded(call, deadline, what: str):
    """call() ended at the deadline (a library may wait on several reads); ProbeFailed when time runs out."""
    from hamail.system.bounded import TimedOut, in_thread
    try:
        return in_thread(call, deadline, what)
    except TimedOut:
        raise ProbeFailed(what, "-", "did not finish before the operation's deadline") from None


def _connect(endpoint: Endpoint, timeout: float):
    import socket
    if endpoint.path:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(endpoint.path)
        except BaseException:
            sock.close()
            raise
        return sock
    return socket.create_connection((_host(endpoint), endpoint.port), timeout=timeout)


def _host(endpoint: Endpoint):
    """The host as getaddrinfo takes it cheapest: a str is encoded with the idna codec, whose import (re,
    stringprep, unicodedata) costs a depth-0 monitor ~2.5 ms; an ASCII name or address as bytes skips it."""
    return endpoint.host.encode("ascii") if endpoint.host.isascii() else endpoint.host


def _connect_and_close(endpoint: Endpoint, timeout: float) -> None:
    """Connect to each address of the endpoint until one accepts, then close: the `_socket` module that `socket`
    wraps, because importing `socket` (enum, selectors, collections) costs a depth-0 monitor ~6 ms."""
    import _socket
    if endpoint.path:
        targets = [(_socket.AF_UNIX, endpoint.path)]
    else:
        targets = [(family, address) for family, _, _, _, address
                   in _socket.getaddrinfo(_host(endpoint), endpoint.port, 0, _socket.SOCK_STREAM)]
    error = None
    for family, address in targets:
        sock = _socket.socket(family, _socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            return
        except OSError as exc:
            error = exc
        finally:
            sock.close()
    raise error or OSError(f"{endpoint} resolves to no address")


def accepts(endpoint: Endpoint, deadline, limit: float | None = None) -> None:
    """The listener accepts a connection (depth 0: the process lives and listens)."""
    steps = Steps("TCP" if not endpoint.path else "socket", str(endpoint))
    steps("connect", lambda: _connect_and_close(endpoint, _timeout(deadline, limit)))


def smtp(endpoint: Endpoint, deadline, *, lmtp: bool = False, starttls: bool = False, tls: TLSPolicy | None = None,
         helo: str = "localhost", ssl_wrapped: bool = False) -> dict:
    """SMTP: greeting, EHLO (LMTP: LHLO), STARTTLS and EHLO again when asked, QUIT; the extensions offered."""
    import smtplib
    steps = Steps("LMTP" if lmtp else "SMTP", str(endpoint))
    timeout = _timeout(deadline)
    host, port = (endpoint.path, 0) if endpoint.path else (endpoint.host, endpoint.port)
    kind = smtplib.LMTP if lmtp else smtplib.SMTP_SSL if ssl_wrapped else smtplib.SMTP
    extra = {"context": (tls or TLSPolicy()).context()} if ssl_wrapped else {}
    # smtplib verifies a certificate against the host given to its constructor only (connect() leaves it
    # unset: STARTTLS and SMTPS fail with "check_hostname requires server_hostname"), so the constructor
    # connects and reads the greeting (SMTPConnectError when it is not 220).
    client = steps("greeting", lambda: kind(host, port, local_hostname=helo, timeout=timeout, **extra))
    try:
        hello = "LHLO" if lmtp else "EHLO"
        code, answer = steps(hello, lambda: client.ehlo(helo))
        if code != 250:
            steps.fail(hello, f"answered {code} {answer.decode(errors='replace')[:200]}")
        if starttls:
            if not client.has_extn("starttls"):
                steps.fail("STARTTLS", "not offered by the server")
            steps("STARTTLS", lambda: client.starttls(context=(tls or TLSPolicy()).context()))
            code, answer = steps(f"{hello} after STARTTLS", lambda: client.ehlo(helo))
            if code != 250:
                steps.fail(f"{hello} after STARTTLS", f"answered {code}")
        features = dict(client.esmtp_features)
        steps("QUIT", client.quit)
        return features
    finally:
        client.close()


def greeted(steps, endpoint: Endpoint, deadline, client_class, tls: TLSPolicy | None, context_keyword: str):
    """A connected imaplib/poplib client (its greeting read); context_keyword names the TLS context argument of
    a TLS-wrapped class ('' for a plain one)."""
    timeout = _timeout(deadline)
    extra = {context_keyword: (tls or TLSPolicy()).context()} if context_keyword else {}
    return steps("greeting", lambda: client_class(endpoint.host, endpoint.port, timeout=timeout, **extra))


def imap(endpoint: Endpoint, deadline, *, ssl_wrapped: bool = False, starttls: bool = False,
         tls: TLSPolicy | None = None) -> tuple:
    """IMAP: greeting, CAPABILITY, NOOP, LOGOUT; the capabilities offered."""
    import imaplib
    steps = Steps("IMAPS" if ssl_wrapped else "IMAP", str(endpoint))
    client = greeted(steps, endpoint, deadline, imaplib.IMAP4_SSL if ssl_wrapped else imaplib.IMAP4, tls,
                     "ssl_context" if ssl_wrapped else "")
    try:
        if starttls:
            steps("STARTTLS", lambda: client.starttls((tls or TLSPolicy()).context()))
        typ, data = steps("CAPABILITY", client.capability)
        if typ != "OK":
            steps.fail("CAPABILITY", f"answered {typ}")
        typ, _ = steps("NOOP", client.noop)
        if typ != "OK":
            steps.fail("NOOP", f"answered {typ}")
        steps("LOGOUT", client.logout)
        return tuple(client.capabilities)
    finally:
        _close_imap(client)


def _close_imap(client) -> None:
    try:
        client.shutdown()
    except Exception:  # already closed by LOGOUT, or the server went away: nothing left to release
        pass


def pop3(endpoint: Endpoint, deadline, *, ssl_wrapped: bool = False, starttls: bool = False,
         tls: TLSPolicy | None = None) -> dict:
    """POP3: greeting, CAPA, QUIT; the capabilities offered."""
    import poplib
    steps = Steps("POP3S" if ssl_wrapped else "POP3", str(endpoint))
    client = greeted(steps, endpoint, deadline, poplib.POP3_SSL if ssl_wrapped else poplib.POP3, tls,
                     "context" if ssl_wrapped else "")
    try:
        if starttls:
            steps("STLS", lambda: client.stls((tls or TLSPolicy()).context()))
        capabilities = steps("CAPA", client.capa)
        steps("QUIT", client.quit)
        return capabilities
    finally:
        try:
            client.close()
        except Exception:  # QUIT already closed it
            pass


def http_get(url: str, deadline, *, regex: str | None = None, tls: TLSPolicy | None = None,
             expect_status: tuple = (200,), host_header: str | None = None, unix_socket: str = "",
             headers: dict | None = None) -> tuple:
    """HTTP GET of url: the status must be in expect_status and the body match regex (re.search, as heartbeat
    apache's testregex); (status, body text). headers: extra request headers (an Authorization header's value
    never appears in a ProbeFailed)."""
    import http.client
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProbeFailed("HTTP", url, "not an http:// or https:// URL")
    steps = Steps("HTTPS" if parts.scheme == "https" else "HTTP", url)
    timeout = _timeout(deadline)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, port, timeout=timeout, context=(tls or TLSPolicy()).context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    if unix_socket:
        conn.sock = steps("connect", lambda: _connect(Endpoint(path=unix_socket), timeout))
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        sent = {"User-Agent": "hamail-monitor", "Connection": "close", **(headers or {})}
        if host_header:
            sent["Host"] = host_header
        steps("GET", lambda: conn.request("GET", path, headers=sent))
        response = steps("response", conn.getresponse)
        body = steps("body", lambda: response.read(1 << 20)).decode("utf-8", errors="replace")
        if response.status not in expect_status:
            steps.fail("status", f"{response.status} {response.reason}")
        if regex:
            import re
            try:
                pattern = re.compile(regex, re.MULTILINE)
            except re.error as exc:
                raise ProbeFailed("HTTP test regex", url, f"invalid regular expression: {exc}") from None
            if not pattern.search(body):
                steps.fail("body", f"does not match {regex!r}")
        return response.status, body
    finally:
        conn.close()


def socket_path_exists(path: str) -> bool:
    """Whether a unix socket exists at path (a file of another type does not count)."""
    import stat
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False
