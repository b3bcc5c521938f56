"""hamail.mysql.read_status against a scripted server on a unix socket: the packets it speaks, and when it hands
over to PyMySQL (no MariaDB needed)."""

import os
import socket
import tempfile
import threading

import pytest

from hamail import mysql
from hamail.mysql import AccessDenied, Credentials, QueryFailed, Unavailable, read_status
from hamail.secret import Secret

SALT = b"abcdefgh" + b"ijklmnopqrst"


def packet(seq: int, payload: bytes) -> bytes:
    """One MySQL packet."""
    return len(payload).to_bytes(3, "little") + bytes((seq,)) + payload


def greeting(plugin: bytes = b"mysql_native_password") -> bytes:
    """A protocol-10 handshake as MariaDB 10.11 sends it."""
    caps = 0x200 | 0x8000 | 0x80000 | 0x1
    return (b"\x0a" + b"5.5.5-10.11.6-MariaDB\0" + (7).to_bytes(4, "little") + SALT[:8] + b"\0"
            + (caps & 0xFFFF).to_bytes(2, "little") + b"\x2d" + b"\x02\x00" + (caps >> 16).to_bytes(2, "little")
            + bytes((21,)) + bytes(10) + SALT[8:] + b"\0" + plugin + b"\0")


def lenenc_str(text: str) -> bytes:
    """A short length-encoded string."""
    data = text.encode()
    return bytes((len(data),)) + data


def result_set(rows) -> list[bytes]:
    """Column count, two column definitions, EOF, rows, EOF."""
    out = [b"\x02", b"\x03def" + b"\0" * 8, b"\x03def" + b"\0" * 8, b"\xfe\0\0\x02\0"]
    out += [b"".join(lenenc_str(v) for v in row) for row in rows]
    return out + [b"\xfe\0\0\x02\0"]


class Server:
    """Answers each client packet with the next list of payloads from a script; records what the client sent."""

    def __init__(self, script) -> None:
        self.dir = tempfile.mkdtemp(prefix="hamail-wire-")
        self.path = os.path.join(self.dir, "s.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.script, self.received = list(script), []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            seq = 0
            for i, answers in enumerate(self.script):
                if i:
                    head = conn.recv(4)
                    if len(head) < 4:
                        return
                    body = b""
                    while len(body) < int.from_bytes(head[:3], "little"):
                        body += conn.recv(65536)
                    self.received.append(body)
                    seq = head[3] + 1
                for payload in answers:
                    conn.sendall(packet(seq & 0xFF, payload))
                    seq += 1

    def close(self) -> None:
        """Remove the socket."""
        self.sock.close()
        self.thread.join(5)
        os.unlink(self.path)
        os.rmdir(self.dir)


@pytest.fixture
def server():
    """A factory of scripted servers, closed after the test."""
    made = []

    def make(script):
        """A server answering with script."""
        made.append(Server(script))
        return made[-1]
    yield make
    for srv in made:
        srv.close()


def test_status_with_native_password(server):
    rows = [("wsrep_cluster_status", "Primary"), ("wsrep_local_state", "4")]
    srv = server([[greeting()], [b"\x00\x00\x00\x02\x00"], result_set(rows)])
    status = read_status(srv.path, Credentials("chk", Secret("pw")), 2)
    assert status == {"wsrep_cluster_status": "Primary", "wsrep_local_state": "4"}
    login = srv.received[0]
    assert b"chk\0" in login and b"pw" not in login           # a scramble, never the password
    assert srv.received[1].startswith(b"\x03SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_status'")


def test_unix_socket_auth_switch(server):
    switch = b"\xfe" + b"unix_socket\0"
    srv = server([[greeting()], [switch], [b"\x00\x00\x00\x02\x00"], result_set([("wsrep_ready", "ON")])])
    assert read_status(srv.path, Credentials("root"), 2) == {"wsrep_ready": "ON"}
    assert srv.received[1] == b""                              # unix_socket: the server checks SO_PEERCRED


def test_access_denied(server):
    denied = b"\xff" + (1045).to_bytes(2, "little") + b"#28000Access denied for user 'chk'@'localhost'"
    srv = server([[greeting()], [denied]])
    with pytest.raises(AccessDenied):
        read_status(srv.path, Credentials("chk", Secret("wrong")), 2)


def test_query_error(server):
    error = b"\xff" + (1047).to_bytes(2, "little") + b"#08S01WSREP has not yet prepared node for application use"
    srv = server([[greeting()], [b"\x00\x00\x00\x02\x00"], [error]])
    with pytest.raises(QueryFailed) as info:
        read_status(srv.path, Credentials("root"), 2)
    assert info.value.errno == 1047


def test_unknown_auth_plugin_hands_over_to_pymysql(server, monkeypatch):
    srv = server([[greeting()], [b"\xfe" + b"client_ed25519\0" + SALT + b"\0"]])
    calls = []

    class FakeConnection:
        """What hamail.mysql.connect returns, answering status() only."""

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def status(self, names):
            """A fixed status."""
            return {"wsrep_ready": "ON"}

    def fake_connect(path, credentials, timeout):
        """Stands in for PyMySQL; records the call."""
        calls.append(path)
        return FakeConnection()
    monkeypatch.setattr(mysql, "connect", fake_connect)
    assert read_status(srv.path, Credentials("chk", Secret("pw")), 2) == {"wsrep_ready": "ON"}
    assert calls == [srv.path]


def test_no_socket_and_closed_connection(server, tmp_path):
    with pytest.raises(Unavailable):
        read_status(str(tmp_path / "absent.sock"), Credentials("root"), 1)
    srv = server([[]])
    with pytest.raises(Unavailable):
        read_status(srv.path, Credentials("root"), 1)


def test_monitor_path_does_not_import_pymysql():
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = ("import sys; sys.path[:0] = [%r]; import hamail.agents.galera, hamail.mysql;"
            "print('pymysql' in sys.modules, 'socket' in sys.modules)") % os.path.join(root, "lib")
    out = subprocess.run(["/usr/bin/python3", "-S", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
