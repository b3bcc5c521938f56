# SPDX-License-Identifier: GPL-2.0-or-later
"""A private MariaDB server for the mysql agent's tests: a datadir made by mariadb-install-db under the test's
directory, its own option file, socket, pid file and log there, on 127.0.0.1:<free port> (or skip-networking).

The agent starts and stops the server; kill() removes whatever of it is left (also a SIGSTOPped one), so a
failing test never leaves a mariadbd behind.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess

from service_support import free_port, pids_of

AGENT = "mysql"


def _traversable(path: pathlib.Path) -> None:
    """Let the mysql user walk down to path (pytest makes its base directory 0700): search permission only."""
    for folder in [path, *path.parents]:
        if str(folder) in ("/", "/tmp"):
            break
        os.chmod(folder, os.stat(folder).st_mode | 0o711)


class MySQLLab:
    """One server's files under base: my.cnf, data/ (initialised), run/ (socket, pid), error.log."""

    def __init__(self, base: pathlib.Path, networking: bool = True, initialise: bool = True) -> None:
        self.base = pathlib.Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        _traversable(self.base)
        self.data, self.run, self.cnf = self.base / "data", self.base / "run", self.base / "my.cnf"
        self.log, self.pid, self.socket = self.base / "error.log", self.run / "mysqld.pid", self.run / "mysqld.sock"
        self.port = free_port()
        self.run.mkdir(exist_ok=True)
        os.chown(self.run, *self._mysql_ids())
        self.write_cnf(networking)
        if initialise:
            self.initialise()

    @staticmethod
    def _mysql_ids() -> tuple:
        import pwd
        entry = pwd.getpwnam("mysql")
        return entry.pw_uid, entry.pw_gid

    def write_cnf(self, networking: bool = True, extra: str = "") -> None:
        """The option file: small InnoDB, this lab's port on loopback (or no networking), extra lines."""
        listen = f"port = {self.port}\nbind-address = 127.0.0.1\n" if networking else "skip-networking\n"
        self.cnf.write_text(f"[mysqld]\n{listen}innodb_buffer_pool_size = 16M\ninnodb_log_file_size = 4M\n"
                            f"skip-log-bin\n{extra}")

    def initialise(self) -> None:
        """mariadb-install-db into data/ (root logs in through unix_socket authentication)."""
        self.data.mkdir(exist_ok=True)
        os.chown(self.data, *self._mysql_ids())
        result = subprocess.run(["mariadb-install-db", f"--defaults-file={self.cnf}", f"--datadir={self.data}",
                                 "--user=mysql", "--skip-test-db", "--auth-root-authentication-method=socket"],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr

    def params(self, **extra) -> dict:
        """The agent's parameters for this server (None removes one)."""
        base = {"binary": "/usr/sbin/mariadbd", "config": str(self.cnf), "datadir": str(self.data),
                "pid": str(self.pid), "socket": str(self.socket), "log": str(self.log)}
        base.update(extra)
        return {k: v for k, v in base.items() if v is not None}

    def server_pids(self) -> list[int]:
        """Every mariadbd (and mysqld_safe) running on this lab's files."""
        return pids_of("mariadbd", str(self.base)) + pids_of("mysqld_safe", str(self.base))

    def server_pid(self) -> int:
        """The one running server's pid (the test fails when there is not exactly one)."""
        pids = pids_of("mariadbd", str(self.base))
        assert len(pids) == 1, f"expected one mariadbd on {self.base}, found {pids}"
        return pids[0]

    def sql(self, *statements: str) -> list:
        """Run statements as root over the socket (for test users); the last one's rows."""
        import pymysql
        conn = pymysql.connect(unix_socket=str(self.socket), user="root", autocommit=True)
        try:
            with conn.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
                return list(cursor.fetchall())
        finally:
            conn.close()

    def kill(self) -> None:
        """Remove any server left on this lab's files (a SIGSTOPped one too: CONT, so nothing stays stopped, then KILL)."""
        for pid in self.server_pids():
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
