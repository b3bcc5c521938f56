# SPDX-License-Identifier: GPL-2.0-or-later
"""Deadlines, polling with backoff, and the command runner seam (against real processes)."""

import os
import signal
import time

import pytest

from hamail.system.clock import Deadline, DeadlineExceeded, FakeClock, SystemClock, poll
from hamail.system import proc as procfs
from hamail.system.runner import (CommandNotFound, CommandRunner, CommandTimeout, FakeRunner, RecordingRunner,
                                  UnexpectedCommand)
from hamail.secret import Secret


def test_operation_deadline_leaves_a_margin_before_pacemakers_timeout():
    clock = FakeClock()
    assert Deadline.for_operation(20000, 99, clock).remaining() == pytest.approx(18.0)
    assert Deadline.for_operation(120000, 99, clock).remaining() == pytest.approx(115.0)
    assert Deadline.for_operation(2000, 99, clock).remaining() == pytest.approx(1.5)
    # no meta timeout: the action's advertised default
    assert Deadline.for_operation(None, 30, clock).remaining() == pytest.approx(27.0)


def test_poll_backs_off_and_gives_up_at_the_deadline():
    clock = FakeClock()
    deadline = Deadline.after(5, clock)
    with pytest.raises(DeadlineExceeded, match="the thing"):
        poll(deadline, lambda: None, what="the thing")
    # 50 ms growing by 1.6 up to 1 s, then 1 s each time; the last pause is cut short by the deadline
    growing = [0.05, 0.08, 0.128, 0.2048, 0.32768, 0.524288, 0.8388608]
    assert clock.sleeps[:len(growing)] == pytest.approx(growing)
    assert clock.sleeps[len(growing):-1] == pytest.approx([1.0] * (len(clock.sleeps) - len(growing) - 1))
    assert 0 < clock.sleeps[-1] <= 1.0
    assert clock.now - 1000 == pytest.approx(5.0)


def test_poll_returns_the_first_value():
    clock = FakeClock()
    answers = iter([None, None, "ready"])
    assert poll(Deadline.after(5, clock), lambda: next(answers), what="x") == "ready"
    assert len(clock.sleeps) == 2


def test_sub_deadline_never_extends():
    clock = FakeClock()
    outer = Deadline.after(3, clock)
    assert outer.sub(10).remaining() == pytest.approx(3)
    assert outer.sub(1).remaining() == pytest.approx(1)


def test_runner_runs_real_commands_with_lc_all_c():
    result = CommandRunner().run(["sh", "-c", "echo $LC_ALL; echo err >&2; exit 3"], timeout=10)
    assert result.rc == 3 and result.stdout == "C\n" and result.first_error_line() == "err"


def test_runner_passes_secrets_on_stdin_only():
    runner = RecordingRunner()
    result = runner.run(["cat"], stdin=Secret("s3cret"), timeout=10)
    assert result.stdout == "s3cret"  # the child read it on stdin
    assert runner.invocations[0].stdin_was_secret
    assert "s3cret" not in "".join(runner.invocations[0].env.values())
    with pytest.raises(TypeError, match="never in argv"):
        runner.run(["echo", Secret("s3cret")], timeout=10)
    assert len(runner.invocations) == 1  # refused before anything was started


def test_runner_kills_the_whole_group_at_the_deadline(tmp_path):
    pidfile = tmp_path / "background.pid"
    start = time.monotonic()
    deadline = Deadline.after(0.5, SystemClock())
    try:
        # the background sleep keeps stdout open: only killing the whole group ends the command in time
        with pytest.raises(CommandTimeout, match=r"did not finish within 0\.\d s$"):
            CommandRunner().run(["sh", "-c", f"sleep 30 & echo $! > {pidfile}; sleep 30"], deadline=deadline)
        assert time.monotonic() - start < 5  # the deadline's contract, generous for a loaded machine
        background = int(pidfile.read_text())
        poll(Deadline.after(5, SystemClock()), lambda: not procfs.alive(background) or None,
             what=f"the background sleep {background} to die with its group")
    finally:
        # a runner that left it behind: stop it by the pid the test's command reported
        if pidfile.exists() and procfs.alive(int(pidfile.read_text())):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_runner_reports_missing_tools():
    with pytest.raises(CommandNotFound, match="no-such-tool"):
        CommandRunner().run(["/nonexistent/no-such-tool"], timeout=10)


def test_fake_runner_checks_the_script():
    fake = FakeRunner().expect(["crm_attribute", "-G"], 0, "5\n")
    assert fake.run(["crm_attribute", "-G"], timeout=10).stdout == "5\n"
    with pytest.raises(UnexpectedCommand):
        fake.run(["rm", "-rf", "/"], timeout=10)
    fake.expect(["a"])
    with pytest.raises(UnexpectedCommand, match="not made"):
        fake.assert_done()


def test_runner_refuses_a_command_without_a_bound():
    for runner in (CommandRunner(), FakeRunner().expect(["true"])):
        with pytest.raises(TypeError, match="deadline or a timeout"):
            runner.run(["true"])


def test_spawn_starts_a_detached_daemon_with_the_runner_environment(tmp_path):
    runner = RecordingRunner({"PATH": "/usr/bin:/bin", "OCF_RESKEY_secret": "s3cret", "OCF_RESKEY_keep": "yes"})
    runner.hide_variables(["OCF_RESKEY_secret"])
    out = tmp_path / "env"
    daemon = runner.spawn(["sh", "-c", f"env > {out}; echo $$ > {out}.pid; exec sleep 30"])
    try:
        deadline = Deadline.after(5, SystemClock())
        poll(deadline, lambda: True if (tmp_path / "env.pid").exists() else None, what="the daemon")
        text = out.read_text()
        seen = dict(line.split("=", 1) for line in text.splitlines())
        assert seen["OCF_RESKEY_keep"] == "yes" and seen["LC_ALL"] == "C" and "OCF_RESKEY_secret" not in seen
        assert "s3cret" not in text
        assert daemon.poll() is None
        # detached from the agent's pipes: pacemaker-execd waits for them to close
        assert [os.readlink(f"/proc/{daemon.pid}/fd/{fd}") for fd in (0, 1, 2)] == ["/dev/null"] * 3
        # its own session: killing the test's process group would not reach it
        assert os.getsid(daemon.pid) == daemon.pid
    finally:
        os.kill(daemon.pid, signal.SIGKILL)
    poll(Deadline.after(5, SystemClock()), daemon.poll, what="the daemon to exit")
    assert daemon.returncode == -signal.SIGKILL
    with pytest.raises(CommandNotFound):
        runner.spawn(["/nonexistent/mariadbd"])


def test_find_program_looks_where_the_runner_would():
    runner = CommandRunner({"PATH": "/nonexistent:/bin"})
    assert runner.find("sh") == "/bin/sh"
    assert runner.find("/bin/sh") == "/bin/sh"
    assert runner.find("no-such-tool-here") is None
    assert runner.find("/etc/passwd") is None  # exists, not executable


def test_children_inherit_only_the_allowlisted_environment():
    environ = {"PATH": "/usr/bin:/bin", "HOME": "/root", "OCF_RESOURCE_INSTANCE": "db:0", "HA_RSCTMP": "/run/ra",
               "PCMK_logfile": "/var/log/pcmk", "CIB_file": "/tmp/cib.xml", "MYSQL_PWD": "hunter2",
               "AWS_SECRET_ACCESS_KEY": "k3y", "PYTHONPATH": "/tmp/evil"}
    result = CommandRunner(environ).run(["env"], timeout=10, env={"EXPLICIT": "1"})
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert seen == {"PATH": "/usr/bin:/bin", "HOME": "/root", "OCF_RESOURCE_INSTANCE": "db:0", "HA_RSCTMP": "/run/ra",
                    "PCMK_logfile": "/var/log/pcmk", "CIB_file": "/tmp/cib.xml", "LC_ALL": "C", "EXPLICIT": "1"}
