# SPDX-License-Identifier: GPL-2.0-or-later
"""hamail.adapters.mysql (PyMySQL) against a real mariadbd on a unix socket: what agents decide on."""

import os
import pathlib
import shutil
import socket
import stat
import subprocess
import sys
import time

import pytest

from hamail.adapters.mysql import (AccessDenied, Credentials, MySQLError, QueryFailed, Unavailable, connect,
                                   global_status, load_credentials)
from hamail.secret import Secret

MARIADBD = shutil.which("mariadbd", path="/usr/sbin:/usr/bin")
PASSWORD = "chk-Pa55word"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A throw-away mariadbd (no Galera, no network) with a password user 'chk'; its socket path."""
    assert MARIADBD, "mariadbd is missing: run scripts/ensure-deps"
    root = tmp_path_factory.mktemp("mariadb")
    data, sock = root / "data", root / "s.sock"
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
                    "--auth-root-authentication-method=socket", "--skip-test-db"], check=True,
                   capture_output=True, timeout=120)
    proc = subprocess.Popen([MARIADBD, "--no-defaults", f"--datadir={data}", f"--socket={sock}", "--skip-networking",
                             "--user=root", f"--pid-file={root / 'pid'}", f"--log-error={root / 'err.log'}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with connect(str(sock), Credentials("root"), 2) as conn:
                    conn.query(f"CREATE USER IF NOT EXISTS chk@localhost IDENTIFIED BY '{PASSWORD}'")
                break
            except Unavailable:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError((root / "err.log").read_text()) from None
                time.sleep(0.1)
        yield str(sock)
    finally:
        proc.terminate()
        proc.wait(60)


def test_root_by_unix_socket_and_a_password_user_read_status(server):
    status = global_status(server, Credentials("root"), 5, ("Innodb_page_size", "Threads_connected", "Uptime"))
    # each name with its own value: InnoDB's default page size, at least this very connection
    assert set(status) == {"innodb_page_size", "threads_connected", "uptime"}
    assert status["innodb_page_size"] == "16384" and int(status["threads_connected"]) >= 1
    with connect(server, Credentials("chk", Secret(PASSWORD)), 5) as conn:
        assert conn.query("SELECT CURRENT_USER()") == [("chk@localhost",)]
        # names the server does not know are simply missing from the answer
        assert conn.status(("no_such_status_variable", "Uptime")).keys() == {"uptime"}


def test_wrong_password_is_access_denied_and_never_echoed(server):
    with pytest.raises(AccessDenied) as caught:
        connect(server, Credentials("chk", Secret("not-" + PASSWORD)), 5)
    assert "not-" + PASSWORD not in str(caught.value)


def test_nothing_listening_is_unavailable(server, tmp_path):
    with pytest.raises(Unavailable, match="no socket"):
        connect(str(tmp_path / "absent.sock"), Credentials("root"), 1)
    stale = tmp_path / "stale.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(stale))
    listener.close()  # a socket file left behind by a dead server: connecting is refused
    assert stat.S_ISSOCK(os.stat(stale).st_mode)
    with pytest.raises(Unavailable, match="Connection refused"):
        connect(str(stale), Credentials("root"), 1)


def test_a_failed_statement_is_query_failed_with_its_errno(server):
    with connect(server, Credentials("root"), 5) as conn, pytest.raises(QueryFailed) as caught:
        conn.query("SELECT * FROM no_such_db.t")
    assert caught.value.errno == 1146 and isinstance(caught.value, MySQLError)


def test_credentials_file_must_be_private(tmp_path):
    path = tmp_path / "check.cnf"
    path.write_text(f"[client]\nuser = chk\npassword = \"{PASSWORD}\"\n")
    os.chmod(path, 0o600)
    creds = load_credentials(str(path))
    assert creds.user == "chk" and creds.password.reveal() == PASSWORD and PASSWORD not in repr(creds)
    os.chmod(path, 0o644)
    with pytest.raises(MySQLError, match="0644"):
        load_credentials(str(path))


def test_importing_the_agents_does_not_import_pymysql():
    # meta-data, validate-all and the Unpromoted monitor never talk to the server: they must not pay for PyMySQL.
    lib = pathlib.Path(__file__).resolve().parents[2] / "lib"
    code = (f"import sys; sys.path[:0] = [{str(lib)!r}]; import hamail.agents.galera.agent, hamail.adapters.mysql;"
            "print('pymysql' in sys.modules)")
    out = subprocess.run([sys.executable if sys.executable.startswith("/usr/bin") else "/usr/bin/python3", "-S",
                          "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"]
