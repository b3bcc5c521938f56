# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:mysql against a real MariaDB server (Debian's mariadb-server), each test with its own datadir,
option file, socket and port under its tmp_path: the lifecycle at every depth, a wedged, killed or TERM-ignoring
server, bad input (binary, configuration, port, credentials, test table, a promotable clone), enable_creation,
ocf-tester, and no password in any argv, environment or log."""

from __future__ import annotations

import os
import signal
import socket

import pytest

from mysql_support import AGENT, MySQLLab
from service_support import assert_clean, free_port, ocf, ocf_tester, reason, stopped, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mariadbd runs as the mysql user: needs root")

RECURRING = 20000  # a recurring monitor's interval (ms)
SECRET = "s3cr3t-Probe-pw"


@pytest.fixture
def lab(tmp_path):
    """A private initialised server on 127.0.0.1:<free port>; whatever of it runs is killed afterwards."""
    made = MySQLLab(tmp_path / "db")
    try:
        yield made
    finally:
        made.kill()


def run(lab, action, *, params=None, **kwargs):
    """The agent's action on this lab (params override the lab's); no traceback ever."""
    result = ocf(AGENT, action, lab.params(**(params or {})), **kwargs)
    assert_clean(result)
    return result


def started(lab, **params):
    """Start the server through the agent (asserted)."""
    result = run(lab, "start", params=params)
    assert result.returncode == 0, result.stderr
    return lab.server_pid()


def test_lifecycle_at_every_depth(lab):
    assert run(lab, "monitor").returncode == 7  # probe: nothing runs
    pid = started(lab)
    for depth in (0, 10, 20):
        for interval in (0, RECURRING):
            result = run(lab, "monitor", depth=depth, interval_ms=interval)
            assert result.returncode == 0, (depth, interval, result.stderr)
    # "started" means answering: the server takes logins over the socket and over TCP on its port.
    assert lab.sql("SELECT 1") == [(1,)]
    with socket.create_connection(("127.0.0.1", lab.port), timeout=5) as conn:
        assert conn.recv(4)  # the server's greeting packet
    again = run(lab, "start")
    assert again.returncode == 0, again.stderr
    assert lab.server_pid() == pid  # a double start starts nothing
    assert run(lab, "stop").returncode == 0
    assert lab.server_pids() == []
    assert not lab.pid.exists() and not lab.socket.exists()
    second = run(lab, "stop")
    assert second.returncode == 0, second.stderr
    assert run(lab, "monitor").returncode == 7
    assert run(lab, "monitor", interval_ms=RECURRING).returncode == 7  # stopped cleanly: not a failure


def test_skip_networking_is_monitored_on_the_socket_alone(tmp_path):
    lab = MySQLLab(tmp_path / "db", networking=False)
    try:
        started(lab)
        for depth in (0, 10):
            result = run(lab, "monitor", depth=depth, interval_ms=RECURRING)
            assert result.returncode == 0, result.stderr
        # a socket removed under the running server (a tmpfs cleaner): clients cannot reach it, depth 0 says so
        moved = lab.socket.with_name("moved.sock")
        lab.socket.rename(moved)
        result = run(lab, "monitor", interval_ms=RECURRING)
        assert result.returncode == 1
        assert f"socket connect at {lab.socket}: no such socket" in reason(result)
        moved.rename(lab.socket)
        assert run(lab, "stop").returncode == 0
    finally:
        lab.kill()


def test_the_port_is_read_as_the_server_reads_it(lab):
    """!includedir'd option files, and additional_parameters over them: depth 0 checks the port the server got."""
    conf_d = lab.base / "conf.d"
    conf_d.mkdir()
    included = lab.port
    lab.port = free_port()
    lab.write_cnf(extra=f"!includedir {conf_d}\n")  # the main file names lab.port, the included one wins
    (conf_d / "port.cnf").write_text(f"[mariadbd]\nport = {included}\n")
    started(lab)
    assert run(lab, "monitor", interval_ms=RECURRING).returncode == 0
    socket.create_connection(("127.0.0.1", included), timeout=5).close()
    run(lab, "stop")
    given = free_port()
    params = {"additional_parameters": f"--port={given} --skip-name-resolve"}
    started(lab, **params)
    socket.create_connection(("127.0.0.1", given), timeout=5).close()
    result = run(lab, "monitor", interval_ms=RECURRING, params=params)
    assert result.returncode == 0, result.stderr
    # without them the agent looks where the server does not listen, and says so
    assert run(lab, "monitor", interval_ms=RECURRING).returncode == 1


def test_wedged_server_fails_depth_10_within_the_timeout_naming_the_step(lab):
    pid = started(lab)
    with stopped(pid):
        # depth 0 is process and listeners: the kernel still accepts on a stopped server's sockets
        assert run(lab, "monitor", interval_ms=RECURRING, timeout_ms=6000).returncode == 0
        # ocf() fails the test (TimeoutExpired) if the agent outlives the operation timeout
        result = run(lab, "monitor", depth=10, interval_ms=RECURRING, timeout_ms=6000, timeout=6)
    assert result.returncode == 1, result.stderr
    assert "does not answer: MySQL connect and login at " + str(lab.socket) in reason(result)
    assert run(lab, "monitor", depth=10, interval_ms=RECURRING).returncode == 0  # continued: answers again


def test_killed_server_is_not_running_for_a_probe_and_an_error_for_a_recurring_monitor(lab):
    pid = started(lab)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not lab.server_pids(), what="the killed server to vanish")
    assert lab.pid.exists()  # what a crash leaves
    assert run(lab, "monitor").returncode == 7
    recurring = run(lab, "monitor", interval_ms=RECURRING)
    assert recurring.returncode == 1
    assert f"names pid {pid}: it died" in reason(recurring)
    assert run(lab, "stop").returncode == 0
    assert not lab.pid.exists() and not lab.socket.exists()
    started(lab)  # nothing stale stands in the way of the next start


def test_a_server_ignoring_term_is_stopped_within_the_stop_timeout(lab):
    pid = started(lab)
    os.kill(pid, signal.SIGSTOP)  # a stopped process lets TERM wait: only KILL ends it
    result = run(lab, "stop", timeout_ms=12000, timeout=12)
    assert result.returncode == 0, result.stderr
    assert "sending SIGKILL" in result.stderr
    assert lab.server_pids() == []
    assert run(lab, "monitor", interval_ms=RECURRING).returncode == 7


def test_missing_binary(lab, tmp_path):
    params = {"binary": str(tmp_path / "no-mariadbd")}
    assert run(lab, "monitor", params=params).returncode == 7
    result = run(lab, "start", params=params)
    assert result.returncode == 5
    assert "no-mariadbd is not installed" in reason(result)


@pytest.mark.parametrize("line,first_error", [
    ("bogus_option = 1", "unknown variable 'bogus_option=1'"),
    # exits 0 with --help, logs [ERROR] only: the start would fail on it
    ("innodb_buffer_pool_size = banana", "Unknown suffix 'b' used for variable 'innodb-buffer-pool-size'"),
])
def test_broken_configuration_is_refused_with_the_checkers_first_error(lab, line, first_error):
    lab.write_cnf(extra=line + "\n")
    for action in ("validate-all", "start"):
        result = run(lab, action)
        assert result.returncode == 6, (action, result.stderr)
        text = reason(result)
        assert text.startswith("mariadbd rejects the configuration: ") and first_error in text, text
    assert lab.server_pids() == []


def test_port_in_use_fails_start_with_the_servers_reason(lab):
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", lab.port))
        squatter.listen()
        result = run(lab, "start", timeout_ms=30000)
    assert result.returncode == 1
    assert "exited with status" in reason(result) and "Address already in use" in reason(result), reason(result)


def test_port_not_the_servers_fails_depth_0_naming_it(lab):
    started(lab)
    other = lab.port
    lab.port = other + 1 if other < 65535 else other - 1
    lab.write_cnf()  # the option file now names a port the running server does not listen on
    result = run(lab, "monitor", interval_ms=RECURRING)
    assert result.returncode == 1
    assert f"TCP connect at 127.0.0.1:{lab.port}: connection refused" in reason(result)


def test_credentials_file(lab, tmp_path):
    started(lab)
    lab.sql(f"CREATE USER 'probe'@'localhost' IDENTIFIED BY '{SECRET}'", "GRANT SELECT ON mysql.* TO 'probe'@'localhost'")
    creds = tmp_path / "check.cnf"
    creds.write_text(f"[client]\nuser = probe\npassword = {SECRET}\n")
    creds.chmod(0o600)
    good = run(lab, "monitor", depth=10, interval_ms=RECURRING, params={"credentials_file": str(creds)})
    assert good.returncode == 0, good.stderr
    creds.write_text("[client]\nuser = probe\npassword = wrong\n")
    denied = run(lab, "monitor", depth=10, interval_ms=RECURRING, params={"credentials_file": str(creds)})
    assert denied.returncode == 6
    assert "test user 'probe' cannot log in" in reason(denied)
    creds.chmod(0o644)
    for action, code in (("validate-all", 6), ("start", 6)):
        result = run(lab, action, params={"credentials_file": str(creds)})
        assert result.returncode == code
        assert "must be 0600 or stricter" in reason(result)
    monitor = run(lab, "monitor", depth=10, interval_ms=RECURRING, params={"credentials_file": str(creds)})
    assert monitor.returncode == 1 and "cannot check the server" in reason(monitor), monitor.stderr
    absent = run(lab, "validate-all", params={"credentials_file": str(tmp_path / "absent.cnf")})
    assert absent.returncode == 5 and "cannot open credentials file" in reason(absent)


def test_test_user_and_password_never_leave_the_agent(lab):
    started(lab)
    lab.sql(f"CREATE USER 'probe'@'localhost' IDENTIFIED BY '{SECRET}'", "GRANT SELECT ON mysql.* TO 'probe'@'localhost'")
    run(lab, "stop")
    params = {"test_user": "probe", "test_passwd": SECRET}
    start = run(lab, "start", params=params, extra_env={"HA_debug": "1"})
    assert start.returncode == 0, start.stderr
    pid = lab.server_pid()
    with open(f"/proc/{pid}/environ", "rb") as handle:
        assert SECRET.encode() not in handle.read()
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        assert SECRET.encode() not in handle.read()
    good = run(lab, "monitor", depth=10, params=params, extra_env={"HA_debug": "1"})
    assert good.returncode == 0
    bad = run(lab, "monitor", depth=10, params={"test_user": "probe", "test_passwd": "not-" + SECRET})
    assert bad.returncode == 6
    for result in (start, good, bad):
        assert SECRET not in result.stderr + result.stdout


def test_test_table(lab):
    started(lab)
    missing = run(lab, "monitor", depth=10, interval_ms=RECURRING, params={"test_table": "nosuch.tbl"})
    assert missing.returncode == 1
    assert "MySQL SELECT COUNT(*) FROM nosuch.tbl at" in reason(missing)
    quoted = run(lab, "monitor", depth=10, interval_ms=RECURRING, params={"test_table": "`mysql`.`db`"})
    assert quoted.returncode == 0, quoted.stderr
    injected = run(lab, "monitor", depth=10, interval_ms=RECURRING, params={"test_table": "mysql.user; DROP TABLE x"})
    assert injected.returncode == 6
    assert "parameter test_table" in reason(injected)


def test_enable_creation(tmp_path):
    lab = MySQLLab(tmp_path / "db", initialise=False)
    try:
        absent = run(lab, "start")
        assert absent.returncode == 5
        assert "does not exist on this node (set enable_creation=true" in reason(absent)
        lab.data.mkdir()  # an empty datadir (a fresh filesystem): no database to run
        empty = run(lab, "start")
        assert empty.returncode == 5
        assert "holds no database on this node (set enable_creation=true" in reason(empty)
        assert lab.server_pids() == []
        result = run(lab, "start", params={"enable_creation": "true"})
        assert result.returncode == 0, result.stderr
        assert (lab.data / "mysql").is_dir()
        assert run(lab, "monitor", depth=10).returncode == 0
        assert run(lab, "stop").returncode == 0
    finally:
        lab.kill()


def test_a_promotable_clone_is_refused(lab):
    for meta in ({"promotable": "true", "clone_max": "2"}, {"clone_max": "2", "promoted_max": "1", "master_max": "1"}):
        env = {f"OCF_RESKEY_CRM_meta_{k}": v for k, v in meta.items()}
        for action in ("validate-all", "start", "monitor"):
            result = run(lab, action, extra_env=env)
            assert result.returncode == 6, (meta, action)
            assert "not a promotable clone" in reason(result)
    assert lab.server_pids() == []


def test_replication_parameters_are_accepted(lab):
    params = {"replication_user": "repl", "replication_passwd": SECRET, "replication_port": "3307",
              "max_slave_lag": "60", "evict_outdated_slaves": "true", "reader_attribute": "readable"}
    result = run(lab, "validate-all", params=params)
    assert result.returncode == 0, result.stderr


def test_ocf_tester(lab):
    result = ocf_tester(AGENT, lab.params())
    assert result.returncode == 0, result.stdout + result.stderr
    assert lab.server_pids() == []


def test_mysqld_safe_as_binary(lab):
    """heartbeat mysql's default binary: the wrapper runs the server, the agent manages that server."""
    started(lab, binary="/usr/bin/mysqld_safe")
    assert run(lab, "monitor", depth=10, params={"binary": "/usr/bin/mysqld_safe"}).returncode == 0
    assert run(lab, "stop", params={"binary": "/usr/bin/mysqld_safe"}).returncode == 0
    wait_for(lambda: not lab.server_pids(), what="mysqld_safe to exit after its server")


def test_upstream_agent_and_ours_see_the_same_server(lab):
    """Side by side on one server: upstream's monitor and ours agree while it runs and after it stops."""
    upstream = "/usr/lib/ocf/resource.d/heartbeat/mysql"
    started(lab)
    theirs = ocf(AGENT, "monitor", lab.params(), upstream=upstream, depth=10)
    assert (theirs.returncode, run(lab, "monitor", depth=10).returncode) == (0, 0), theirs.stderr
    run(lab, "stop")
    theirs = ocf(AGENT, "monitor", lab.params(), upstream=upstream)
    assert (theirs.returncode, run(lab, "monitor").returncode) == (7, 7)

