# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:slapd against a real slapd from Debian's package (a private cn=config directory or slapd.conf, an
mdb database, loopback TCP and an ldapi socket under the test's directory).

What each test proves is in its docstring; the agent runs as pacemaker-execd runs it (OCF_RESKEY_*, the
operation's interval and timeout, OCF_CHECK_LEVEL)."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from service_support import assert_clean, free_port, ocf, ocf_tester, reason, stopped, wait_for  # noqa: E402
from slapd_support import ADMIN, AGENT, PASSWORD, SECOND, SUFFIX, SlapdLab  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="slapd's tests run it as root and as openldap")


@pytest.fixture
def lab(tmp_path):
    """A slapd configuration (cn=config) with one database; whatever runs of it is killed afterwards."""
    made = SlapdLab(tmp_path / "slapd")
    try:
        yield made
    finally:
        made.kill()


def run(action, params, **kwargs):
    """One agent action; never a traceback, whatever it answers."""
    result = ocf(AGENT, action, params, **kwargs)
    assert_clean(result)
    return result


def started(lab, params):
    """Start slapd through the agent; its pid."""
    result = run("start", params)
    assert result.returncode == 0, result.stderr
    return wait_for(lab.main_pid, what="slapd's pid")


def test_lifecycle_at_every_depth(lab):
    """probe 7; start (twice: the second is a no-op); monitor at depths 0, 10 (bind and suffix search) and 20;
    stop (twice); probe 7 again, and slapd and its pid file are gone."""
    params = lab.bound()
    assert run("monitor", params).returncode == 7
    pid = started(lab, params)
    assert run("start", params).returncode == 0
    assert lab.processes() == [pid]
    for depth in (0, 10, 20):
        for interval in (0, 10000):
            result = run("monitor", params, depth=depth, interval_ms=interval)
            assert result.returncode == 0, (depth, result.stderr)
    assert run("stop", params).returncode == 0
    assert lab.processes() == [] and not lab.pid.exists()
    assert run("stop", params).returncode == 0
    assert run("monitor", params).returncode == 7
    assert run("monitor", params, depth=10, interval_ms=10000).returncode == 7


def test_slapd_conf_and_its_pidfile(tmp_path):
    """A slapd.conf (slapd -f): the pid file comes from its pidfile line; start, depth 10, stop."""
    conf = SlapdLab(tmp_path / "conf", conf_file=True)
    try:
        params = conf.bound()
        pid = started(conf, params)
        assert conf.pid.read_text().split()[0] == str(pid)
        assert f"-f {conf.config}" in " ".join(open(f"/proc/{pid}/cmdline").read().split("\0"))
        assert run("monitor", params, depth=10, interval_ms=10000).returncode == 0
        assert run("stop", params).returncode == 0
        assert conf.processes() == []
    finally:
        conf.kill()


def test_ocf_tester(lab):
    """resource-agents' ocf-tester passes (metadata against ra-api-1.dtd, probes, start/stop twice...)."""
    result = ocf_tester(AGENT, lab.params())
    assert result.returncode == 0, result.stdout + result.stderr
    assert lab.processes() == []


def test_wedged_slapd_fails_depth_10_naming_the_step(lab):
    """SIGSTOPped slapd (pid alive, the kernel still accepts connections): depth 0 cannot tell, depth 10 fails
    within its operation timeout with a reason naming the LDAP step that got no answer."""
    params = lab.bound()
    pid = started(lab, params)
    with stopped(pid):
        assert run("monitor", params, depth=0, interval_ms=10000).returncode == 0
        result = run("monitor", params, depth=10, interval_ms=10000, timeout_ms=6000, timeout=6)
        assert result.returncode == 1, result.stderr
        assert "LDAP rootDSE search at ldap://127.0.0.1" in reason(result) and "timed out" in reason(result)
    assert run("monitor", params, depth=10, interval_ms=10000).returncode == 0


def test_killed_slapd(lab):
    """kill -9: a probe says not running (7), a recurring monitor an error naming the dead pid; stop tidies the
    pid file it left, and a new start serves again (over the stale ldapi socket)."""
    params = lab.params()
    pid = started(lab, params)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), what="slapd to die")
    assert lab.pid.exists()
    assert run("monitor", params).returncode == 7
    result = run("monitor", params, interval_ms=10000)
    assert result.returncode == 1
    assert f"names pid {pid}: it died" in reason(result)
    assert run("stop", params).returncode == 0
    assert not lab.pid.exists()
    started(lab, params)
    assert run("monitor", params, depth=10, interval_ms=10000).returncode == 0


def test_stop_escalates_when_slapd_ignores_term(lab):
    """A SIGSTOPped slapd ignores SIGTERM: stop waits stop_escalate seconds (not most of the stop timeout), then
    TERM and KILL to its process group; it succeeds within the stop timeout with nothing left."""
    params = lab.params(stop_escalate="1")
    pid = started(lab, params)
    os.kill(pid, signal.SIGSTOP)
    # Of a 60 s stop timeout, 44 s would go to SIGTERM alone without stop_escalate: the run is bounded at 40 s.
    result = run("stop", params, timeout_ms=60000, timeout=40)
    assert result.returncode == 0, result.stderr
    assert "sending SIGKILL" in result.stderr
    assert lab.processes() == [] and not lab.pid.exists()


def test_missing_binary(lab):
    """slapd absent on this node: a probe says not running (7), start OCF_ERR_INSTALLED (5) naming it."""
    params = lab.params(slapd=str(lab.base / "no-slapd"))
    assert run("monitor", params).returncode == 7
    result = run("start", params)
    assert result.returncode == 5
    assert "no-slapd is not installed" in reason(result)


def test_missing_configuration(lab):
    """config absent on this node: probe 7, start 5 naming the path."""
    params = lab.params(config=str(lab.base / "nowhere.d"))
    assert run("monitor", params).returncode == 7
    result = run("start", params)
    assert result.returncode == 5 and "nowhere.d does not exist" in reason(result)


def test_broken_configuration_is_slaptests_first_line(tmp_path):
    """A slapd.conf slaptest rejects: start answers 6 with slaptest's first error line, nothing started."""
    conf = SlapdLab(tmp_path / "broken", conf_file=True)
    try:
        conf.config.write_text(conf.config.read_text() + "\nnosuchdirective here\n")
        checked = subprocess.run(["slaptest", "-f", str(conf.config), "-u"], capture_output=True, text=True)
        assert checked.returncode != 0
        first = next(line.strip() for line in checked.stderr.splitlines() if line.strip())
        result = run("start", conf.params())
        assert result.returncode == 6
        assert reason(result) == f"slaptest rejects the configuration: {first}"
        assert "nosuchdirective" in first
        assert conf.processes() == []
        assert run("validate-all", conf.params()).returncode == 6
    finally:
        conf.kill()


def test_wrong_port(lab):
    """A monitor told another port than slapd listens on fails saying the connection was refused there; a start
    on a port something else holds fails with slapd's own complaint, not a timeout."""
    params = lab.params()
    started(lab, params)
    other = free_port()
    wrong = dict(params, services=f"ldap://127.0.0.1:{other}/")
    result = run("monitor", wrong, interval_ms=10000)
    assert result.returncode == 1
    assert f"TCP connect at 127.0.0.1:{other}: connection refused" in reason(result)
    assert run("stop", params).returncode == 0
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = dict(params, services=f"ldap://127.0.0.1:{holder.getsockname()[1]}/")
        result = run("start", taken)
        assert result.returncode == 1, result.stderr
        assert "slapd failed to start" in reason(result)
    assert lab.processes() == []


def test_bind_credentials(lab):
    """A wrong password is a configuration error (6, as heartbeat's 49 -> 6) naming the DN and never the password;
    a password file others can read is refused at start (5) and at a depth-10 monitor, with a readable reason."""
    params = lab.params()
    started(lab, params)
    wrong = dict(params, bind_dn=ADMIN, password="Not-The-Password-99")
    result = run("monitor", wrong, depth=10, interval_ms=10000)
    assert result.returncode == 6
    assert f"LDAP bind as {ADMIN}" in reason(result) and "Invalid credentials" in reason(result)
    assert "Not-The-Password-99" not in result.stderr
    assert run("monitor", dict(params, bind_dn=ADMIN, password=PASSWORD), depth=10, interval_ms=10000).returncode == 0
    lab.password_file.chmod(0o644)
    bound = lab.bound()
    result = run("monitor", bound, depth=10, interval_ms=10000)
    assert result.returncode == 5
    assert "password_file" in reason(result) and "has mode 0644" in reason(result)
    assert run("stop", params).returncode == 0
    result = run("start", bound)
    assert result.returncode == 5 and "has mode 0644" in reason(result)
    assert PASSWORD not in result.stderr


def test_suffixes_watched_and_ignored(tmp_path):
    """Depth 10 reads every suffix of the configuration: a database whose base entry is missing fails naming it;
    ignore_suffix (spelled differently) leaves it out; watch_suffix reads only those named."""
    two = SlapdLab(tmp_path / "two", second_database=True)
    try:
        params = two.params()
        started(two, two.params(watch_suffix=SUFFIX))
        result = run("monitor", params, depth=10, interval_ms=10000)
        assert result.returncode == 1
        assert f"LDAP base search of {SECOND}" in reason(result) and "No such object" in reason(result)
        spelled = f"dc=nothing \"{SECOND.upper().replace(',', ', ')}\""  # quoted: it holds a space
        assert run("monitor", dict(params, ignore_suffix=spelled), depth=10, interval_ms=10000).returncode == 0
        assert run("monitor", dict(params, watch_suffix=SUFFIX), depth=10, interval_ms=10000).returncode == 0
        result = run("monitor", dict(params, watch_suffix=f"{SUFFIX} {SECOND}"), depth=10, interval_ms=10000)
        assert result.returncode == 1 and SECOND in reason(result)
    finally:
        two.kill()


def test_runs_as_user_with_maxfiles(tmp_path):
    """user/group: slapd runs as openldap, the missing pid directory is created for it; maxfiles is slapd's
    open files limit."""
    owned = SlapdLab(tmp_path / "owned", owner="openldap")
    try:
        params = owned.params(user="openldap", group="openldap", maxfiles="1234")
        assert not owned.pid.parent.exists()
        pid = started(owned, params)
        status = open(f"/proc/{pid}/status").read()
        uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
        assert int(uid) == owned.pid.parent.stat().st_uid != 0
        limits = [line for line in open(f"/proc/{pid}/limits") if line.startswith("Max open files")]
        assert limits[0].split()[3:5] == ["1234", "1234"]
        assert run("monitor", params, depth=10, interval_ms=10000).returncode == 0
        assert run("stop", params).returncode == 0
    finally:
        owned.kill()


@pytest.mark.parametrize("params, expected", [
    ({"services": "http://127.0.0.1/"}, "parameter services: 'http://127.0.0.1/' is not an ldap://"),
    ({"services": "ldap://127.0.0.1:99999/"}, "parameter services: 'ldap://127.0.0.1:99999/': '99999' is not a port"),
    ({"password": "x", "password_file": "/etc/hostname"}, "password and password_file are both set"),
    ({"pidfile": "/run/elsewhere.pid"}, "parameter pidfile: /run/elsewhere.pid is not the pid file slapd writes"),
    ({"user": "hamail-no-such-user"}, "slapd user hamail-no-such-user does not exist on this node"),
])
def test_bad_parameters(lab, params, expected):
    """Each bad value is refused by validate-all with a reason naming the parameter, never a traceback."""
    result = run("validate-all", lab.params(**params))
    assert result.returncode in (5, 6)
    assert expected in reason(result), reason(result)
