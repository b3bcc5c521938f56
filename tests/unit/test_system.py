# SPDX-License-Identifier: GPL-2.0-or-later
"""hamail.system's /proc reader, atomic files and bounded calls, on the real kernel."""

import os
import stat
import subprocess
import threading
import time

import pytest

from hamail.system import bounded, proc
from hamail.system.clock import Deadline, SystemClock, poll
from hamail.system.files import StateFile, atomic_write
from hamail.system.runner import run_detached


def ps(pid: int, field: str) -> str:
    """One field of a process as procps's ps reports it (an independent reader of /proc)."""
    result = subprocess.run(["ps", "-o", f"{field}=", "-p", str(pid)], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_proc_reads_this_process_and_its_parent():
    me = proc.stat(os.getpid())
    assert me.ppid == os.getppid() and me.state in ("R", "S") and not me.zombie
    assert proc.alive(os.getpid())
    assert proc.comm(os.getpid()) == ps(os.getpid(), "comm")
    parent = proc.stat(os.getppid())
    assert parent.ppid == int(ps(os.getppid(), "ppid"))
    assert proc.comm(os.getppid()) == ps(os.getppid(), "comm")
    assert os.getpid() in proc.pids() and os.getppid() in proc.pids()


def test_proc_parses_names_with_spaces_and_parentheses(tmp_path):
    (tmp_path / "42").mkdir()
    # field 22 (starttime) is the 20th after the name
    fields = ["S", "7"] + ["0"] * 17 + ["123456"] + ["0"] * 10
    (tmp_path / "42" / "stat").write_text(f"42 (evil) name ) x) {' '.join(fields)}\n")
    info = proc.stat(42, root=str(tmp_path))
    assert (info.state, info.ppid, info.starttime) == ("S", 7, "123456")


def test_proc_sees_zombies_as_gone_and_identity_survives_no_reuse():
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 5
    while proc.stat(child.pid) is not None and not proc.stat(child.pid).zombie and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.stat(child.pid).zombie and not proc.alive(child.pid)
    assert proc.identity(child.pid) == ""
    child.wait()
    assert proc.stat(child.pid) is None and proc.same_process(f"{child.pid}:1") is None
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        record = proc.identity(sleeper.pid)
        assert proc.same_process(record) == sleeper.pid
        pid, _, start = record.partition(":")
        assert proc.same_process(f"{pid}:{int(start) + 1}") is None  # another process with a reused pid
    finally:
        sleeper.kill()
        sleeper.wait()


def test_atomic_write_keeps_owner_and_mode_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "grastate.dat"
    path.write_text("old\n")
    os.chmod(path, 0o640)
    os.chown(path, 65534, 65534)
    atomic_write(str(path), "new\n", keep_owner=True, sync=True)
    info = os.stat(path)
    assert path.read_text() == "new\n"
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o640, 65534, 65534)
    assert os.listdir(tmp_path) == ["grastate.dat"]


def test_state_files_are_private_and_replaced_whole(tmp_path):
    old = os.umask(0)
    try:
        state = StateFile(str(tmp_path / "run"), "IPaddr2-vip/1")
        assert state.read() is None
        state.write("a=1")
        assert state.read() == "a=1"
        assert stat.S_IMODE(os.stat(state.path).st_mode) == 0o600
        state.remove()
        state.remove()
        assert state.read() is None
    finally:
        os.umask(old)


def test_in_thread_returns_raises_and_gives_up_at_the_deadline():
    deadline = Deadline.after(5, SystemClock())
    assert bounded.in_thread(lambda: 42, deadline, "answer") == 42
    with pytest.raises(ZeroDivisionError):
        bounded.in_thread(lambda: 1 / 0, deadline, "division")
    blocker = threading.Event()
    start = time.monotonic()
    with pytest.raises(bounded.TimedOut, match="hang"):
        bounded.in_thread(blocker.wait, Deadline.after(0.3, SystemClock()), "hang")
    assert time.monotonic() - start < 5  # the deadline's contract, generous for a loaded machine
    blocker.set()


def test_in_child_reports_success_failure_and_kills_a_stuck_child(tmp_path):
    deadline = Deadline.after(5, SystemClock())
    assert bounded.in_child(lambda: None, deadline, "ok") is True
    assert bounded.in_child(lambda: 1 / 0, deadline, "fails") is False
    pidfile = tmp_path / "child.pid"

    def stuck() -> None:
        """Say who it is, then hang."""
        pidfile.write_text(str(os.getpid()))
        time.sleep(30)
    start = time.monotonic()
    with pytest.raises(bounded.TimedOut, match="stuck did not finish"):
        bounded.in_child(stuck, Deadline.after(0.3, SystemClock()), "stuck")
    assert time.monotonic() - start < 5  # the deadline's contract, generous for a loaded machine
    child = int(pidfile.read_text())
    try:
        # SIGKILLed and left unreaped: a zombie of this process until someone waits for it
        poll(Deadline.after(5, SystemClock()), lambda: proc.stat(child).zombie or None, what="the child to die")
        assert proc.stat(child).ppid == os.getpid()
    finally:
        if not proc.stat(child).zombie:
            os.kill(child, 9)
        os.waitpid(child, 0)


def test_run_detached_returns_the_identity_of_a_child_in_its_own_session(tmp_path):
    marker = tmp_path / "done"

    def work() -> None:
        """Write the child's session id, then linger."""
        marker.write_text(str(os.getsid(0)))
        time.sleep(30)
    record = run_detached(work)
    pid = proc.same_process(record)
    try:
        assert pid is not None and pid != os.getpid() and proc.stat(pid).ppid == os.getpid()
        written = poll(Deadline.after(5, SystemClock()), lambda: (marker.read_text() or None) if marker.exists() else None,
                       what="the child to write its session id")
        assert written == str(pid)  # setsid: the child leads its own session
        # detached from the agent's pipes: pacemaker-execd waits for them to close
        assert [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in (0, 1, 2)] == ["/dev/null"] * 3
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
