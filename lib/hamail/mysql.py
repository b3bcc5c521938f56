"""MariaDB/MySQL access over the unix socket with PyMySQL: deadline-bound, credentials never in argv."""

from __future__ import annotations

import os
import stat
import sys

from hamail.secret import Secret

__all__ = ["MySQLError", "Unavailable", "AccessDenied", "QueryFailed", "Credentials", "load_credentials",
           "import_pymysql", "Connection", "connect"]

WSREP_STATUS = ("wsrep_cluster_status", "wsrep_local_state", "wsrep_local_state_comment", "wsrep_ready",
                "wsrep_cluster_size", "wsrep_last_committed", "wsrep_connected", "wsrep_cluster_state_uuid")
# Modules PyMySQL imports eagerly but only needs for TLS and sha256/caching_sha2 authentication:
# neither applies over a unix socket to MariaDB, and together they cost ~50 ms per monitor.
_OPTIONAL = ("cryptography", "ssl")


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
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise MySQLError(f"cannot open credentials file {path}: {exc.strerror}") from None
    with os.fdopen(fd, encoding="utf-8") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise MySQLError(f"credentials file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise MySQLError(f"credentials file {path} has mode {info.st_mode & 0o777:04o}: it must be 0600 or stricter")
        text = handle.read()
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


def import_pymysql():
    """Import PyMySQL without its TLS and RSA dependencies (loaded again on demand if a server needs them)."""
    module = sys.modules.get("pymysql")
    if module is not None:
        return module
    blocked = [name for name in _OPTIONAL if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # makes `import name` raise ImportError, which PyMySQL handles
    try:
        import pymysql
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    return pymysql


def _enable_rsa_auth() -> bool:
    """Let PyMySQL's auth module find cryptography after all (for sha256/caching_sha2 servers)."""
    import importlib
    pymysql = import_pymysql()
    try:
        importlib.reload(pymysql._auth)
    except ImportError:
        return False
    return bool(getattr(pymysql._auth, "_have_cryptography", False))


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
        pymysql = import_pymysql()
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
    pymysql = import_pymysql()
    timeout = max(0.2, float(timeout))
    kwargs = {"unix_socket": socket_path, "user": credentials.user, "connect_timeout": timeout,
              "read_timeout": timeout, "write_timeout": timeout, "autocommit": True, "charset": "utf8mb4"}
    if credentials.password:
        kwargs["password"] = credentials.password.reveal()
    if database:
        kwargs["database"] = database
    for attempt in (1, 2):
        try:
            return Connection(pymysql.connect(**kwargs))
        except RuntimeError as exc:
            # PyMySQL says so when a server demands RSA-based auth: load cryptography after all, once.
            if attempt == 1 and "cryptography" in str(exc) and _enable_rsa_auth():
                continue
            raise MySQLError(f"cannot authenticate: {_message(exc)}") from None
        except pymysql.err.MySQLError as exc:
            raise _translate(exc) from None
        except OSError as exc:
            raise Unavailable(f"cannot connect to {socket_path}: {exc.strerror or exc}") from None
    raise MySQLError("cannot connect")  # pragma: no cover - the loop always returns or raises
