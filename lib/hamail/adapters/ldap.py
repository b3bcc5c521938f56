# SPDX-License-Identifier: GPL-2.0-or-later
"""The python-ldap adapter: LDAP over ldap://, ldaps:// and ldapi://, every operation bounded, the bind password
revealed only to the library.

Everything hamail says to an LDAP server goes through this module and python-ldap (Debian's python3-ldap, on
the system's libldap, which reads /etc/ldap/ldap.conf as ldapsearch does: TLS_CACERT, TLS_REQCERT): no other
module imports ldap, and no protocol is spoken by hand. `import ldap` costs 70-90 ms, so it happens inside
connect(), which only a depth-10 monitor or a start calls. python-ldap's errors become the few kinds agents
decide on: Unavailable (nothing answers), TimedOut (connected, no answer in time: a wedged server),
AuthFailed (the bind was refused: a configuration error), OperationFailed (answered with an error code).
"""

from __future__ import annotations

from hamail.secret import Secret

__all__ = ["LDAPError", "Unavailable", "TimedOut", "AuthFailed", "OperationFailed", "Connection", "connect",
           "normalize_dn"]

# The attribute list that asks for no attributes at all (RFC 4511 4.5.1.8): a base search only proves the entry.
NO_ATTRIBUTES = ["1.1"]


class LDAPError(Exception):
    """Talking to the server failed; the message is one line and never holds a credential."""


class Unavailable(LDAPError):
    """Nothing answers at the URL (not running, refused, no such socket, TLS handshake refused)."""


class TimedOut(Unavailable):
    """Connected, but the server did not answer before the operation's time ran out."""


class AuthFailed(LDAPError):
    """The server refused the bind (invalid credentials, or a DN it cannot bind)."""


class OperationFailed(LDAPError):
    """The server answered an operation with an error result (code: the LDAP result code, e.g. 32 noSuchObject)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


def _describe(exc: Exception) -> str:
    """One line from a python-ldap exception: its description and the server's diagnostic text."""
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    parts = [str(info.get("desc") or type(exc).__name__)]
    if info.get("info"):
        parts.append(str(info["info"]))
    return " ".join(": ".join(parts).split())[:300]


def _translate(exc: Exception, binding: bool = False) -> LDAPError:
    import ldap
    if isinstance(exc, (ldap.TIMEOUT, ldap.TIMELIMIT_EXCEEDED)):
        return TimedOut("timed out (no answer)")
    if isinstance(exc, (ldap.SERVER_DOWN, ldap.CONNECT_ERROR)):
        return Unavailable(_describe(exc))
    if isinstance(exc, ldap.INVALID_CREDENTIALS) or (
            binding and isinstance(exc, (ldap.INAPPROPRIATE_AUTH, ldap.INVALID_DN_SYNTAX, ldap.UNWILLING_TO_PERFORM))):
        return AuthFailed(_describe(exc))
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    code = info.get("result", 0)
    return OperationFailed(f"{_describe(exc)} (result {code})", code if isinstance(code, int) else 0)


class Connection:
    """One connection to an LDAP server, each operation bounded by the time left on a deadline; a context manager."""

    __slots__ = ("_raw", "_deadline", "url")

    def __init__(self, raw, deadline, url: str) -> None:
        self._raw, self._deadline, self.url = raw, deadline, url

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _timeout(self) -> float:
        left = self._deadline.remaining()
        if left <= 0:
            raise TimedOut("no time left in the operation")
        return max(0.05, left)

    def _bounded(self):
        """Apply the time left to libldap's connect and result waits before an operation."""
        import ldap
        timeout = self._timeout()
        self._raw.set_option(ldap.OPT_NETWORK_TIMEOUT, timeout)
        self._raw.set_option(ldap.OPT_TIMEOUT, timeout)
        self._raw.timeout = timeout  # python-ldap's own wait in its synchronous calls
        return timeout

    def bind(self, dn: str, password: Secret | None) -> None:
        """A simple bind as dn (anonymous when dn is empty); AuthFailed when the server refuses it."""
        import ldap
        self._bounded()
        try:
            self._raw.simple_bind_s(dn, password.reveal() if password else "")
        except ldap.LDAPError as exc:
            raise _translate(exc, binding=True) from None

    def read(self, dn: str, attributes: list | None = None) -> dict:
        """A base-scope search of dn: its attributes (names as the server spells them, values as text)."""
        import ldap
        timeout = self._bounded()
        try:
            found = self._raw.search_ext_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", attributes or NO_ATTRIBUTES,
                                           timeout=timeout, sizelimit=1)
        except ldap.LDAPError as exc:
            raise _translate(exc) from None
        for entry_dn, values in found:
            if entry_dn is not None:  # a search reference has no DN
                return {name: [v.decode("utf-8", errors="replace") for v in vals] for name, vals in values.items()}
        raise OperationFailed(f"no entry {dn!r} returned", 32)

    def root_dse(self) -> dict:
        """The server's root DSE (base '', scope base): namingContexts, supportedLDAPVersion and the like."""
        return self.read("", ["namingContexts", "supportedLDAPVersion", "vendorVersion"])

    def close(self) -> None:
        """Unbind and close (errors ignored: the server may already be gone)."""
        try:
            self._raw.unbind_ext_s()
        except Exception:  # closing a dead or wedged connection is not a failure worth reporting
            pass


def connect(url: str, deadline) -> Connection:
    """A connection to the server at url (ldap://, ldaps://, ldapi://); libldap connects at the first operation,
    so Unavailable or TimedOut come from there. Referrals are not chased: a monitor checks this server only."""
    import ldap  # 70-90 ms: only depth-10 monitors and starts pay it
    try:
        raw = ldap.initialize(url, bytes_mode=False)
        raw.set_option(ldap.OPT_PROTOCOL_VERSION, ldap.VERSION3)
        raw.set_option(ldap.OPT_REFERRALS, 0)
        raw.set_option(ldap.OPT_RESTART, 1)  # an EINTR is not a failed server
    except ldap.LDAPError as exc:
        raise Unavailable(f"bad LDAP URL {url!r}: {_describe(exc)}") from None
    connection = Connection(raw, deadline, url)
    connection._bounded()
    return connection


def normalize_dn(dn: str) -> str:
    """dn in a form that compares equal for equal DNs (attribute types and values case-folded, spacing removed);
    dn itself, stripped and lower-cased, when it does not parse."""
    import ldap.dn
    try:
        parsed = ldap.dn.str2dn(dn.strip())
    except ldap.DECODING_ERROR:
        return dn.strip().lower()
    return ldap.dn.dn2str([[(kind.lower(), value.lower(), flags) for kind, value, flags in rdn]
                           for rdn in parsed])
