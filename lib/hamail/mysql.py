"""MariaDB/MySQL access over the unix socket with PyMySQL: deadline-bound, credentials never in argv."""

from __future__ import annotations

import os
import stat
import sys

from hamail.secret import Secret

__all__ = ["MySQLError", "Unavailable", "AccessDenied", "QueryFailed", "Credentials", "load_credentials",
           "import_pymysql", "Connection", "connect", "read_status"]

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


# ------------------------------------------------------------------------- the monitor's status reader
# Importing PyMySQL costs ~40 ms here (socket's enums, traceback, configparser, converters), half of a
# Promoted monitor's budget, to send one SHOW STATUS. read_status speaks the few packets that takes (protocol
# 4.1 handshake, unix_socket or mysql_native_password auth, one text query) over the C _socket module, and
# hands anything else (other auth plugins, TLS-only servers, odd packets) to PyMySQL.

_CLIENT_CAPS = (0x1 | 0x4 | 0x200 | 0x2000 | 0x8000 | 0x20000 | 0x80000)  # LONG_PASSWORD, LONG_FLAG,
# PROTOCOL_41, TRANSACTIONS, SECURE_CONNECTION, MULTI_RESULTS, PLUGIN_AUTH
_UTF8MB4 = 45
_NATIVE = b"mysql_native_password"


class _Unsupported(Exception):
    """The server wants something the small reader does not speak: use PyMySQL."""


class _Packets:
    """MySQL packets (3-byte length, sequence id, payload) over a connected socket."""

    __slots__ = ("sock", "seq", "buf")

    def __init__(self, sock) -> None:
        self.sock, self.seq, self.buf = sock, 0, b""

    def _take(self, count: int) -> bytes:
        while len(self.buf) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Unavailable("the server closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:count], self.buf[count:]
        return data

    def read(self) -> bytes:
        """One payload; an ERR packet raises the matching MySQLError."""
        payload = b""
        while True:
            head = self._take(4)
            length = head[0] | head[1] << 8 | head[2] << 16
            self.seq = (head[3] + 1) & 0xFF
            payload += self._take(length)
            if length < 0xFFFFFF:
                break
        if payload[:1] == b"\xff":
            code = int.from_bytes(payload[1:3], "little")
            text = payload[3:]
            if text[:1] == b"#":  # SQL state marker
                text = text[6:]
            raise _server_error(code, text.decode("utf-8", "replace"))
        return payload

    def write(self, payload: bytes) -> None:
        """Send one payload with the next sequence id."""
        self.sock.sendall(len(payload).to_bytes(3, "little") + bytes((self.seq,)) + payload)
        self.seq = (self.seq + 1) & 0xFF


def _server_error(code: int, message: str) -> MySQLError:
    message = " ".join(message.split())[:300]
    if code in (1045, 1698):
        return AccessDenied(f"access denied ({code}): {message}")
    return QueryFailed(f"({code}) {message}", code)


def _lenenc(data: bytes, pos: int) -> tuple:
    """A length-encoded integer at pos: (value or None for NULL, next position)."""
    first = data[pos]
    if first < 0xFB:
        return first, pos + 1
    if first == 0xFB:
        return None, pos + 1
    size = {0xFC: 2, 0xFD: 3, 0xFE: 8}[first]
    return int.from_bytes(data[pos + 1:pos + 1 + size], "little"), pos + 1 + size


def _auth_data(plugin: bytes, password: bytes, salt: bytes) -> bytes:
    """The client's answer for an authentication plugin; _Unsupported for plugins it does not know."""
    if plugin in (b"unix_socket", b"auth_socket"):
        return b""  # the server checks the peer's uid (SO_PEERCRED) itself
    if plugin != _NATIVE:
        raise _Unsupported(f"authentication plugin {plugin.decode(errors='replace')}")
    if not password:
        return b""
    import hashlib  # only with a password: OpenSSL's hashlib costs a few ms
    stage1 = hashlib.sha1(password).digest()
    mask = hashlib.sha1(salt + hashlib.sha1(stage1).digest()).digest()
    return bytes(a ^ b for a, b in zip(stage1, mask))


def _handshake(wire: _Packets, credentials: Credentials) -> None:
    """Read the server greeting, log in, and read the OK (following one auth switch request)."""
    hello = wire.read()
    if hello[:1] != b"\x0a":
        raise _Unsupported(f"protocol version {hello[:1]!r}")
    pos = hello.index(b"\0", 1) + 1 + 4                # server version, connection id
    salt = hello[pos:pos + 8]
    pos += 9
    caps = int.from_bytes(hello[pos:pos + 2], "little")
    pos += 5                                            # capabilities (low), charset, status
    caps |= int.from_bytes(hello[pos:pos + 2], "little") << 16
    salt_len = hello[pos + 2]
    pos += 13                                           # capabilities (high), salt length, reserved
    if not caps & 0x200 or not caps & 0x8000:
        raise _Unsupported("server without protocol 4.1 secure connection")
    part = max(13, salt_len - 8)
    salt += hello[pos:pos + part - 1]
    pos += part
    plugin = _NATIVE
    if caps & 0x80000:
        end = hello.find(b"\0", pos)
        plugin = hello[pos:end if end >= 0 else len(hello)]
    password = credentials.password.reveal().encode() if credentials.password else b""
    if plugin not in (_NATIVE, b"unix_socket"):
        plugin = _NATIVE  # offer native; the server asks for its own plugin with an auth switch if needed
    answer = _auth_data(plugin, password, salt)
    wire.write(_CLIENT_CAPS.to_bytes(4, "little") + (1 << 24).to_bytes(4, "little") + bytes((_UTF8MB4,))
               + bytes(23) + credentials.user.encode() + b"\0" + bytes((len(answer),)) + answer + plugin + b"\0")
    reply = wire.read()
    if reply[:1] == b"\xfe":                            # auth switch request: plugin name, its data
        end = reply.find(b"\0", 1)
        wire.write(_auth_data(reply[1:end], password, reply[end + 1:].rstrip(b"\0")))
        reply = wire.read()
    if reply[:1] != b"\x00":
        raise _Unsupported(f"authentication continues with {reply[:1]!r}")


def _text_query(wire: _Packets, sql: str) -> list[tuple]:
    """COM_QUERY; the rows of a text result set as tuples of str/None."""
    wire.seq = 0
    wire.write(b"\x03" + sql.encode())
    columns, _ = _lenenc(wire.read(), 0)
    for _ in range(columns + 1):                        # column definitions, then their EOF
        wire.read()
    rows = []
    while True:
        packet = wire.read()
        if packet[:1] == b"\xfe" and len(packet) < 9:   # EOF: end of rows
            return rows
        row, pos = [], 0
        for _ in range(columns):
            size, pos = _lenenc(packet, pos)
            row.append(None if size is None else packet[pos:pos + size].decode("utf-8", "replace"))
            pos += size or 0
        rows.append(tuple(row))


def _wire_status(socket_path: str, credentials: Credentials, timeout: float, names: tuple[str, ...]) -> dict:
    import _socket  # the C module: socket.py's enums alone cost ~15 ms of start-up
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(socket_path)
        except OSError as exc:
            raise Unavailable(f"cannot connect to {socket_path}: {exc.strerror or exc}") from None
        wire = _Packets(sock)
        try:
            _handshake(wire, credentials)
            # names are this module's constants (no quoting needed, nothing user-supplied).
            listed = ",".join(f"'{n}'" for n in names)
            rows = _text_query(wire, f"SHOW GLOBAL STATUS WHERE Variable_name IN ({listed})")
        except OSError as exc:
            raise Unavailable(f"server not answering: {exc.strerror or exc}") from None
        except (IndexError, KeyError, ValueError) as exc:
            raise _Unsupported(f"unexpected packet ({type(exc).__name__})") from None
        try:
            wire.seq = 0
            wire.write(b"\x01")                          # COM_QUIT: a courtesy, the answer is already here
        except OSError:
            pass
        return {str(name).lower(): str(value) for name, value in rows}
    finally:
        sock.close()


def read_status(socket_path: str, credentials: Credentials, timeout: float,
                names: tuple[str, ...] = WSREP_STATUS) -> dict[str, str]:
    """Global status variables over the socket, quickly; PyMySQL when the server needs more than the basics."""
    if not all(name.replace("_", "").isalnum() for name in names):
        raise ValueError("status variable names must be identifiers")
    if not os.path.exists(socket_path):
        raise Unavailable(f"no socket at {socket_path}")
    timeout = max(0.2, float(timeout))
    try:
        return _wire_status(socket_path, credentials, timeout, names)
    except _Unsupported:
        with connect(socket_path, credentials, timeout) as conn:
            return conn.status(names)
