# SPDX-License-Identifier: GPL-2.0-or-later
"""Exit codes behave like an IntEnum; logging honours HA_* and never shows secrets."""

import io
import pathlib
import re
import socket
import subprocess
import tempfile

import pytest

from hamail.fence.exitcodes import FenceExit
from hamail.ocf.exitcodes import OCFExit
from hamail.ocf.log import Log, is_debug
from hamail.system.log import Scrubber
from hamail.secret import Secret
from testlib import AGENTS, NODE_PYTHON


def test_codes_are_named_ints():
    assert OCFExit.NOT_RUNNING == 7 and OCFExit(7) is OCFExit.NOT_RUNNING
    assert OCFExit.DEGRADED_PROMOTED.name == "DEGRADED_PROMOTED" and OCFExit(191).value == 191
    assert [int(c) for c in OCFExit] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 190, 191]
    assert FenceExit.STATUS_OFF == 2
    with pytest.raises(ValueError):
        OCFExit(42)


def test_debug_flag_spellings():
    assert is_debug({"HA_debug": "1"}) and is_debug({"HA_debug": "yes"}) and not is_debug({"HA_debug": "0"})
    assert not is_debug({})


def test_logfile_and_debuglog(tmp_path):
    main, debug = tmp_path / "main.log", tmp_path / "debug.log"
    stderr = io.StringIO()
    log = Log("IPaddr2(vip)", {"HA_LOGFILE": str(main), "HA_DEBUGLOG": str(debug)}, [Secret("pw")], stderr)
    log.info("started with pw in %s", "text")
    log.debug("details")
    assert "IPaddr2(vip)" in main.read_text() and "started with *** in text" in main.read_text()
    assert "details" not in main.read_text() and "details" in debug.read_text()
    assert stderr.getvalue() == ""  # a log file is configured and stderr is no terminal


def test_no_destination_means_stderr_and_no_debug():
    stderr = io.StringIO()
    log = Log("x", {}, (), stderr)
    log.debug("hidden")
    log.warning("shown %d", 3)
    assert "shown 3" in stderr.getvalue() and "hidden" not in stderr.getvalue()


def test_ha_debug_sends_debug_to_stderr():
    stderr = io.StringIO()
    Log("x", {"HA_debug": "1"}, (), stderr).debug("visible")
    assert "visible" in stderr.getvalue()


SECRET = "Sys-Secret-77"
LOCAL0, DAEMON, LOCAL3 = 16, 3, 19
ERR, WARNING, INFO = 3, 4, 6


def agent_with_private_syslog(tmp_path: pathlib.Path, name: str, action: str, params: dict,
                              facility: str) -> tuple[subprocess.CompletedProcess, int, list[str]]:
    """Run agents/<name> in a private mount namespace whose /dev/log is a datagram socket this test owns.

    The agent's own code path (glibc's syslog() on /dev/log) writes to the socket: /dev is overlaid in the
    namespace only (the host's /dev/log, present or not, is left alone). Returns the result, the agent's pid
    (unshare and sh exec it, so it is the child's) and every datagram it sent, read after it exited.
    """
    run_dir = pathlib.Path(tempfile.mkdtemp(dir=tmp_path))  # one per run: a test may run several agents
    sock_path = run_dir / "dev-log.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(sock_path))
    upper, work = run_dir / "dev-upper", run_dir / "dev-work"
    upper.mkdir()
    work.mkdir()
    setup = (f"mount -t overlay hamail-devlog -o lowerdir=/dev,upperdir={upper},workdir={work} /dev\n"
             f"rm -f /dev/log\ntouch /dev/log\nmount --bind {sock_path} /dev/log\nexec \"$@\"")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": f"sys-{name}",
           "OCF_RESOURCE_TYPE": name, "OCF_RESKEY_CRM_meta_on_node": "sysnode", "HA_RSCTMP": str(run_dir),
           "HA_LOGFACILITY": facility}
    env.update({f"OCF_RESKEY_{key}": value for key, value in params.items()})
    try:
        proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-ec", setup, "sh",
                                 NODE_PYTHON, str(AGENTS / name), action], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        stdout, stderr = proc.communicate(timeout=60)
        # Datagrams on a unix socket are queued by the send itself: all are here once the agent exited.
        receiver.setblocking(False)
        datagrams = []
        while True:
            try:
                datagrams.append(receiver.recv(65536).decode())
            except BlockingIOError:
                break
    finally:
        receiver.close()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), proc.pid, datagrams


def syslog_line(datagram: str, facility: int, severity: int, tag: str, pid: int) -> str:
    """The message of one datagram, checked to be <facility*8+severity>, a timestamp, tag[pid]: ."""
    match = re.fullmatch(r"<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d (\S+)\[(\d+)\]: (.*)", datagram, re.S)
    assert match, datagram
    assert (int(match[1]), match[2], int(match[3])) == (facility * 8 + severity, tag, pid), datagram
    return match[4]


def test_syslog_carries_facility_priority_and_tag_and_never_a_secret(tmp_path):
    """Errors of a real agent (galera's validate-all) reach syslog as local3.err, tagged galera(<rsc>)[pid], with
    the private parameter's text blanked: in the log line that quotes the bad value as it is (the log's own
    scrubbing) and in the failure (scrubbed before logging); with syslog configured, stderr has only the reason."""
    params = {"wsrep_cluster_address": "gcomm://sysnode", "check_passwd": SECRET, "two_node_mode": SECRET}
    result, pid, datagrams = agent_with_private_syslog(tmp_path, "galera", "validate-all", params, "local3")
    assert result.returncode == 6, result.stderr
    assert [syslog_line(d, LOCAL3, ERR, "galera(sys-galera)", pid) for d in datagrams] == [
        "ERROR: validate-all: parameter two_node_mode: '***' is not a boolean (use true or false)"]
    assert result.stderr == "ocf-exit-reason:parameter two_node_mode: '***' is not a boolean (use true or false)\n"
    assert SECRET not in "".join(datagrams) + result.stderr + result.stdout


def test_syslog_levels_of_one_run(tmp_path):
    """A probe's info line (local0.info); a stop with a broken parameter logs an error and a warning
    (daemon.err, daemon.warning), in that order, and still succeeds."""
    params = {"wsrep_cluster_address": "gcomm://sysnode", "check_passwd": SECRET,
              "binary": f"/nonexistent/{SECRET}/mysqld", "CRM_meta_interval": "0"}
    result, pid, datagrams = agent_with_private_syslog(tmp_path, "galera", "monitor", params, "local0")
    assert (result.returncode, result.stderr, len(datagrams)) == (7, "", 1), (result, datagrams)
    message = syslog_line(datagrams[0], LOCAL0, INFO, "galera(sys-galera)", pid)
    assert message.startswith("INFO: probe: server binary /nonexistent/***/mysqld is not installed")
    result, pid, datagrams = agent_with_private_syslog(tmp_path, "Dummy", "stop", {"op_sleep": "soon"}, "daemon")
    # stop succeeds with a broken configuration: the problem is one warning, not an error
    assert (result.returncode, result.stderr, len(datagrams)) == (0, "", 1), (result, datagrams)
    warning = syslog_line(datagrams[0], DAEMON, WARNING, "Dummy(sys-Dummy)", pid)
    assert warning == ("WARNING: stop with invalid configuration (parameter op_sleep: 'soon' is not a duration "
                       "(e.g. 30, 30s, 500ms, 5min)): stopping what can be identified")


def test_facility_none_sends_nothing_to_syslog(tmp_path):
    """HA_LOGFACILITY=none: the same lines go to stderr (pacemaker-execd logs it), no datagram."""
    result, pid, datagrams = agent_with_private_syslog(tmp_path, "Dummy", "stop", {"op_sleep": "soon"}, "none")
    assert (result.returncode, datagrams) == (0, [])
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"Dummy(sys-Dummy)[{pid}]: WARNING: stop with invalid configuration (parameter op_sleep"), lines


def test_scrubber():
    assert Scrubber([Secret("abc"), Secret("")]).scrub("xabcx abc") == "x***x ***"
