# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:garbd against a real Galera node (mariadbd bootstrapped on this host) and a real garbd: it joins
the Primary component as its user, the monitor fails once garbd is no longer in a Primary component, stop
leaves nothing, and bad input gets the right code."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from testlib import ROOT, terminate

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mariadbd and garbd run as mysql: needs root")

AGENT = ROOT / "agents" / "garbd"
GALERA = "/usr/lib/galera/libgalera_smm.so"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(probe, timeout: float, what: str):
    """Poll probe with a short backoff until it returns something truthy."""
    end, delay = time.monotonic() + timeout, 0.05
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


class GaleraNode:
    """One mariadbd bootstrapping a Galera cluster on 127.0.0.1, in a directory of its own."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hamail-garbd-", dir="/var/tmp"))
        self.dir.chmod(0o755)  # mysql must reach its datadir below it
        self.port = free_port()
        self.run = self.dir / "run"  # the server's socket, pid file and log: written as mysql
        self.socket = self.run / "sock"
        self.proc: subprocess.Popen | None = None
        mysql = pwd.getpwnam("mysql")
        for sub in ("data", "run"):
            (self.dir / sub).mkdir()
            os.chown(self.dir / sub, mysql.pw_uid, mysql.pw_gid)
        init = subprocess.run(["mariadb-install-db", "--user=mysql", f"--datadir={self.dir / 'data'}",
                               "--auth-root-authentication-method=socket", "--skip-test-db"],
                              capture_output=True, text=True, timeout=120, check=False)
        assert init.returncode == 0, init.stderr

    def start(self) -> None:
        """Start mariadbd with --wsrep-new-cluster and wait until it is Primary."""
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", "--user=mysql", f"--datadir={self.dir / 'data'}", f"--socket={self.socket}",
             "--skip-networking", "--wsrep-on=ON", f"--wsrep-provider={GALERA}", "--wsrep-cluster-address=gcomm://",
             "--wsrep-cluster-name=hamailgarbd", "--binlog-format=ROW", "--innodb-autoinc-lock-mode=2",
             f"--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:{self.port}",
             f"--wsrep-node-address=127.0.0.1:{self.port}", f"--log-error={self.run / 'error.log'}",
             f"--pid-file={self.run / 'mariadbd.pid'}", "--wsrep-new-cluster"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.status().get("wsrep_cluster_status") == "Primary", 60, "mariadbd to be Primary")

    def status(self) -> dict[str, str]:
        """wsrep status variables ({} while the server does not answer)."""
        assert self.proc is not None and self.proc.poll() is None, self.log_tail()
        out = subprocess.run(["mariadb", "-S", str(self.socket), "-N", "-B", "-e", "SHOW STATUS LIKE 'wsrep_%'"],
                             capture_output=True, text=True, timeout=10, check=False)
        return dict(line.split("\t", 1) for line in out.stdout.splitlines() if "\t" in line) if out.returncode == 0 else {}

    def log_tail(self) -> str:
        """The end of the server's error log, for failure messages."""
        try:
            return (self.run / "error.log").read_text(errors="replace")[-2000:]
        except OSError as exc:
            return f"(no error log: {exc})"

    def power_off(self) -> None:
        """SIGKILL the server (the process this test started)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def remove(self) -> None:
        """Stop the server if it runs and delete its directory."""
        if self.proc is not None:
            terminate(self.proc, grace=30)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def galera():
    """A running one-node Galera cluster to arbitrate for."""
    node = GaleraNode()
    try:
        node.start()
        yield node
    finally:
        node.remove()


@pytest.fixture
def arbitrator(galera):
    """run(action, **params): the agent as pacemaker-execd runs it, configured for that Galera node."""
    rsctmp = galera.dir / "rsctmp"  # as /run/resource-agents: root's, reachable by garbd's user
    base = {"wsrep_cluster_address": f"gcomm://127.0.0.1:{galera.port}", "wsrep_cluster_name": "hamailgarbd",
            "log": str(galera.dir / "garbd.log"), "pid": str(galera.dir / "garbd.pid"),
            "options": f"gmcast.listen_addr=tcp://127.0.0.1:{free_port()}"}

    def run(action: str, interval: int = 0, timeout_ms: int = 20000, **params: str):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": "arb",
               "OCF_RESOURCE_TYPE": "garbd", "OCF_RESOURCE_PROVIDER": "hamail", "HA_RSCTMP": str(rsctmp),
               "OCF_RESKEY_CRM_meta_interval": str(interval), "OCF_RESKEY_CRM_meta_timeout": str(timeout_ms)}
        for key, value in {**base, **params}.items():
            env[f"OCF_RESKEY_{key}"] = value
        proc = subprocess.run([str(AGENT), action], env=env, capture_output=True, text=True, timeout=120)
        reasons = [line.split(":", 1)[1] for line in proc.stderr.splitlines() if line.startswith("ocf-exit-reason:")]
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc.returncode, (reasons[-1] if reasons else "")
    yield run
    run("stop")


def garbd_pids() -> list[int]:
    """Every garbd process on this host (zombies excluded)."""
    out = subprocess.run(["ps", "-C", "garbd", "-o", "pid=,stat="], capture_output=True, text=True, check=False)
    return [int(line.split()[0]) for line in out.stdout.splitlines() if not line.split()[1].startswith("Z")]


def test_joins_the_primary_component_and_fails_its_monitor_when_out_of_it(galera, arbitrator):
    assert arbitrator("monitor") == (7, "")
    before = set(garbd_pids())
    assert arbitrator("start") == (0, "")
    assert galera.status()["wsrep_cluster_size"] == "2"  # the arbitrator is a member: a vote
    pid = int((galera.dir / "garbd.pid").read_text())
    assert set(garbd_pids()) - before == {pid}
    assert Path(f"/proc/{pid}").stat().st_uid == pwd.getpwnam("mysql").pw_uid
    log = (galera.dir / "garbd.log").stat()
    assert (log.st_uid, log.st_mode & 0o777) == (pwd.getpwnam("mysql").pw_uid, 0o640)
    # gcomm saves its view in the working directory: a private one garbd's user can write (not Pacemaker's)
    view = galera.dir / "rsctmp" / "garbd-arb" / "gvwstate.dat"
    wait_for(view.exists, 10, "garbd to save its view")
    assert "Permission denied" not in (galera.dir / "garbd.log").read_text(errors="replace")
    assert (view.parent.stat().st_mode & 0o777, view.parent.stat().st_uid) == (0o700, pwd.getpwnam("mysql").pw_uid)
    assert arbitrator("monitor", interval=20000) == (0, "")
    assert arbitrator("start") == (0, "")  # idempotent: the same garbd
    assert set(garbd_pids()) - before == {pid}

    galera.power_off()  # the only database node is gone: garbd alone is no Primary component
    rc, reason = wait_for(lambda: (lambda r: r if r[0] != 0 else None)(arbitrator("monitor", interval=20000)),
                          60, "the monitor to see garbd out of the Primary component")
    assert rc == 1 and "non-Primary component" in reason
    assert pid in garbd_pids()  # garbd still runs: only the monitor can tell

    assert arbitrator("stop") == (0, "")
    assert pid not in garbd_pids() and not (galera.dir / "garbd.pid").exists()
    assert arbitrator("stop") == (0, "")
    assert arbitrator("monitor") == (7, "")


def test_start_without_a_primary_component_fails_within_its_timeout(galera, arbitrator):
    before = set(garbd_pids())
    galera.power_off()
    began = time.monotonic()
    rc, reason = arbitrator("start", timeout_ms=5000, wsrep_cluster_address="gcomm://127.0.0.1")
    assert time.monotonic() - began < 15  # the 5 s operation timeout, with slack for a loaded machine
    assert rc == 1 and "did not join a Primary component" in reason
    started = set(garbd_pids()) - before
    assert len(started) == 1
    # A node given without a port gets Galera's default, which garbd needs spelled out.
    argv = Path(f"/proc/{started.pop()}/cmdline").read_bytes().split(b"\0")
    assert b"gcomm://127.0.0.1:4567" in argv
    assert arbitrator("stop") == (0, "")
    assert set(garbd_pids()) - before == set()


def test_bad_input_gets_the_right_code(arbitrator):
    assert arbitrator("validate-all") == (0, "")
    rc, reason = arbitrator("validate-all", wsrep_cluster_address="node1,node2")
    assert rc == 6 and "gcomm://" in reason
    rc, reason = arbitrator("start", wsrep_cluster_name="")
    assert rc == 6 and "wsrep_cluster_name" in reason
    # Software or users missing on this node: a probe says "not running", start says not installed.
    for params in ({"binary": "/nonexistent/no-garbd-here"}, {"user": "no-such-user-hamail"}):
        assert arbitrator("monitor", **params)[0] == 7
        rc, reason = arbitrator("start", **params)
        assert rc == 5 and reason
        assert arbitrator("stop", **params) == (0, "")
