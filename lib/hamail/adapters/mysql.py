# SPDX-License-Identifier: GPL-2.0-or-later
"""The PyMySQL adapter: MariaDB/MySQL over the unix socket, every wait bounded, credentials never in argv.

Everything hamail says to a MySQL server goes through this module and PyMySQL (galera's monitors and
transitions; the mysql agent's probes): no other module imports pymysql, and no protocol is spoken by hand.
PyMySQL's errors become the few kinds agents decide on: Unavailable (nothing answers), AccessDenied (the
check credentials are wrong: a configuration error), QueryFailed (connected, the statement failed).
"""

from __future__ import annotations

import os

from hamail.secret import Secret

__all__ = ["MySQLError", "Unavailable", "AccessDenied", "QueryFailed", "Credentials", "load_credentials",
           "Connection", "connect", "global_status", "WSREP_STATUS"]

WSREP_STATUS = ("wsrep_cluster_status", "wsrep_local_state", "wsrep_local_state_comment", "wsrep_ready",
                "wsrep_cluster_size", "wsrep_last_committed", "wsrep_connected", "wsrep_cluster_state_uuid",
                "wsrep_incoming_addresses")


class MySQLError(Exception):
    """Talking to the server failed."""


class Unavailable(MySQLError):
    """Nothing answers on the socket (not running, starting, or the socket path is wrong)."""


class AccessDenied(MySQLError):
    """The server rejected the check credentials."""


class QueryFailed(MySQLError):
    """Connected, but a statement failed (e.g. WSREP not ready)."""

    def __init__(self, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.errno = errno


class Credentials:
    """A user name and an optional password (a Secret)."""

    __slots__ = ("user", "password")

    def __init__(self, user: str, password: Secret | None = None) -> None:
        self.user = user
        self.password = password

    def __repr__(self) -> str:
        return f"Credentials({self.user!r}, password={'***' if self.password else None})"


def load_credentials(path: str) -> Credentials:
    """Read user/password from an option file ([client] user=, password=) that only its owner can read."""
    from hamail.system.files import PrivateFileError, read_private
    try:
        text = read_private(path)
    except PrivateFileError as exc:
        raise MySQLError(str(exc)) from None
    user, password, section = None, None, ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            continue
        if section not in ("", "client", "mysql", "mariadb-client", "client-mariadb"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if key == "user":
            user = value
        elif key in ("password", "passwd"):
            password = Secret(value)
    if not user:
        raise MySQLError(f"credentials file {path} names no user")
    return Credentials(user, password)


class Connection:
    """One connection to the server; a context manager."""

    def __init__(self, raw) -> None:
        self._raw = raw

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (errors ignored: the server may already be gone)."""
        try:
            self._raw.close()
        except Exception:  # closing a dead connection is not a failure worth reporting
            pass

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Rows of one statement."""
        import pymysql
        try:
            with self._raw.cursor() as cursor:
                cursor.execute(sql, args or None)
                return list(cursor.fetchall())
        except pymysql.err.MySQLError as exc:
            raise _translate(exc) from None

    def status(self, names: tuple[str, ...] = WSREP_STATUS) -> dict[str, str]:
        """Global status variables by (lower-case) name; absent ones are missing from the result."""
        marks = ",".join(["%s"] * len(names))
        rows = self.query(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({marks})", tuple(names))
        return {str(name).lower(): str(value) for name, value in rows}


def _errno(exc: Exception) -> int:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


def _message(exc: Exception) -> str:
    args = getattr(exc, "args", ())
    text = args[1] if len(args) > 1 else str(exc)
    return " ".join(str(text).split())[:300]


def _translate(exc: Exception) -> MySQLError:
    code = _errno(exc)
    if code in (1045, 1698):
        return AccessDenied(f"access denied ({code}): {_message(exc)}")
    if code in (2002, 2003, 2006, 2013):
        return Unavailable(f"server not answering ({code}): {_message(exc)}")
    return QueryFailed(f"({code}) {_message(exc)}", code)


def connect(socket_path: str, credentials: Credentials, timeout: float, database: str | None = None) -> Connection:
    """Connect over the unix socket; every network wait bounded by timeout seconds."""
    if not os.path.exists(socket_path):
        raise Unavailable(f"no socket at {socket_path}")
    import pymysql  # ~40 ms and more with its TLS support: only actions that talk to the server pay it
    timeout = max(0.2, float(timeout))
    kwargs = {"unix_socket": socket_path, "user": credentials.user, "connect_timeout": timeout,
              "read_timeout": timeout, "write_timeout": timeout, "autocommit": True, "charset": "utf8mb4"}
    if credentials.password:
        kwargs["password"] = credentials.password.reveal()
    if database:
        kwargs["database"] = database
    try:
        return Connection(pymysql.connect(**kwargs))
    except RuntimeError as exc:  # PyMySQL without cryptography, asked for an RSA-based authentication
        raise MySQLError(f"cannot authenticate: {_message(exc)}") from None
    except pymysql.err.MySQLError as exc:
        raise _translate(exc) from None
    except OSError as exc:
        raise Unavailable(f"cannot connect to {socket_path}: {exc.strerror or exc}") from None


def global_status(socket_path: str, credentials: Credentials, timeout: float,
                  names: tuple[str, ...] = WSREP_STATUS) -> dict[str, str]:
    """Global status variables by (lower-case) name, on a connection of its own."""
    with connect(socket_path, credentials, timeout) as conn:
        return conn.status(names)
