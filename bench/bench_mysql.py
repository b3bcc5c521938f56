# SPDX-License-Identifier: GPL-2.0-or-later
"""Bench rows of ocf:hamail:mysql vs heartbeat mysql on one running MariaDB server (started by our agent, in a
temporary directory, on 127.0.0.1): the depth-0 monitor (ours: pid, socket and TCP port accept; upstream's: the
pid lives) and the depth-10 monitor (ours: a PyMySQL login, SELECT 1 and SELECT COUNT(*) FROM mysql.user;
upstream's: the mysql client running the same COUNT)."""

import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import tempfile

from harness import Case, agent_argv, run_step

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEARTBEAT = "/usr/lib/ocf/resource.d/heartbeat/mysql"


class Lab:
    """A datadir made by mariadb-install-db, its option file and run directory, in a temporary directory."""

    def __init__(self) -> None:
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="hamail-bench-mysql-"))
        os.chmod(self.dir, 0o755)  # mariadbd runs as mysql and must reach its datadir
        self.made = False

    def params(self) -> dict:
        """The instance parameters both agents get."""
        d = self.dir
        return {"binary": "/usr/sbin/mariadbd", "config": f"{d}/my.cnf", "datadir": f"{d}/data",
                "pid": f"{d}/run/mysqld.pid", "socket": f"{d}/run/mysqld.sock", "log": f"{d}/run/error.log"}

    def env(self, level: str) -> dict:
        """The environment pacemaker-execd gives a recurring monitor at this depth."""
        env = {"OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": "bench-mysql", "OCF_RESOURCE_TYPE": "mysql",
               "OCF_RESKEY_CRM_meta_interval": "20000", "OCF_RESKEY_CRM_meta_timeout": "30000",
               "OCF_CHECK_LEVEL": level, "HA_RSCTMP": str(self.dir), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        env.update({f"OCF_RESKEY_{k}": v for k, v in self.params().items()})
        return env

    def make(self) -> None:
        """The option file (a free port on loopback) and an initialised datadir (once)."""
        if self.made:
            return
        mysql = pwd.getpwnam("mysql")
        for sub in ("data", "run"):
            (self.dir / sub).mkdir()
            os.chown(self.dir / sub, mysql.pw_uid, mysql.pw_gid)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        (self.dir / "my.cnf").write_text(f"[mysqld]\nport={port}\nbind-address=127.0.0.1\nskip-log-bin\n"
                                         "innodb_buffer_pool_size=24M\nperformance_schema=OFF\n")
        run_step(["mariadb-install-db", f"--defaults-file={self.dir}/my.cnf", f"--datadir={self.dir}/data",
                  "--user=mysql", "--skip-test-db", "--auth-root-authentication-method=socket"],
                 what="mariadb-install-db")
        self.made = True

    def start(self) -> None:
        """The server, started by our agent (answering when it returns)."""
        self.make()
        run_step(agent_argv(ROOT / "agents" / "mysql") + ["start"], {**self.env("0"), "OCF_RESKEY_CRM_meta_interval": "0"},
                 what="ocf:hamail:mysql start")

    def stop(self) -> None:
        """Stop the server through our agent."""
        run_step(agent_argv(ROOT / "agents" / "mysql") + ["stop"], self.env("0"), what="ocf:hamail:mysql stop")

    def down(self) -> None:
        """Stop the server and remove the directory."""
        try:
            self.stop()
        finally:
            left = subprocess.run(["pgrep", "-f", f"--datadir={self.dir}/data"], capture_output=True, text=True)
            for pid in left.stdout.split():
                os.kill(int(pid), 9)
            shutil.rmtree(self.dir, ignore_errors=True)


def cases() -> list:
    """Depth-0 and depth-10 monitors of both agents against the same running server."""
    lab = Lab()
    ours = agent_argv(ROOT / "agents" / "mysql") + ["monitor"]
    theirs = agent_argv(HEARTBEAT) + ["monitor"]
    return [
        Case("mysql", "monitor depth 0 (running)", ours, theirs, env_ours=lab.env("0"), env_upstream=lab.env("0"),
             setup=lab.start, repeat=20, target=0.7),
        Case("mysql", "monitor depth 10 (running: login, SELECT 1, COUNT(*) FROM mysql.user)", ours, theirs,
             env_ours=lab.env("10"), env_upstream=lab.env("10"), setup=lab.start, teardown=lab.down, repeat=20),
    ]
