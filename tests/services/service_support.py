# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers shared by the service agents' tests (real daemons from Debian's packages, on loopback).

Every daemon gets its own configuration directory under pytest's tmp_path and ports the kernel hands out
(free_port), so tests never collide with each other or with anything installed on the host.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time

from testlib import AGENTS, NODE_PYTHON

OCF_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf", "OCF_RA_VERSION_MAJOR": "1",
           "OCF_RA_VERSION_MINOR": "1", "OCF_RESOURCE_PROVIDER": "hamail"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ocf(name: str, action: str, params: dict, *, depth: int = 0, interval_ms: int = 0, timeout_ms: int = 20000,
        rsctmp=None, upstream: str | None = None, extra_env: dict | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    """Run agents/<name> (or the upstream agent at path `upstream`) as pacemaker-execd does: OCF_RESKEY_*,
    OCF_CHECK_LEVEL, the operation's interval and timeout."""
    env = dict(OCF_ENV, OCF_RESOURCE_INSTANCE=f"test-{name}", OCF_RESOURCE_TYPE=name,
               OCF_RESKEY_CRM_meta_timeout=str(timeout_ms), OCF_RESKEY_CRM_meta_interval=str(interval_ms),
               OCF_CHECK_LEVEL=str(depth))
    if upstream:
        env["OCF_RESOURCE_PROVIDER"] = "heartbeat"
    if rsctmp:
        env["HA_RSCTMP"] = str(rsctmp)
    env.update({f"OCF_RESKEY_{k}": str(v) for k, v in params.items() if v is not None})
    env.update(extra_env or {})
    argv = [upstream, action] if upstream else [NODE_PYTHON, str(AGENTS / name), action]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)


def reason(result: subprocess.CompletedProcess) -> str:
    """The ocf-exit-reason line of an agent run ('' when none)."""
    for line in result.stderr.splitlines():
        if line.startswith("ocf-exit-reason:"):
            return line[len("ocf-exit-reason:"):]
    return ""


def assert_clean(result: subprocess.CompletedProcess) -> None:
    """No Python traceback reached the agent's output."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr


def pids_of(comm: str, under: str | None = None) -> list[int]:
    """Pids of processes named comm (and, if given, whose command line mentions the path under)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/comm") as handle:
                if handle.read().strip() != comm:
                    continue
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if under is None or under in cmdline:
            found.append(int(name))
    return found


@contextlib.contextmanager
def stopped(pid: int):
    """SIGSTOP a process for the duration (a wedged daemon: alive, holding its listener, not answering)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    """Poll predicate until truthy (its value) or fail the test after timeout seconds."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def traversable(path) -> None:
    """Let a daemon's own user walk down to path (pytest makes its base directory 0700): search permission only."""
    import pathlib
    path = pathlib.Path(path)
    for folder in [path, *path.parents]:
        if str(folder) in ("/", "/tmp"):
            break
        os.chmod(folder, os.stat(folder).st_mode | 0o711)


def ocf_tester(name: str, params: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    """ocf-tester (resource-agents) on agents/<name> with these parameters."""
    argv = ["ocf-tester", "-n", f"ocft-{name}"]
    for key, value in params.items():
        argv += ["-o", f"{key}={value}"]
    argv.append(str(AGENTS / name))
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env={"PATH": OCF_ENV["PATH"], "OCF_ROOT": "/usr/lib/ocf"})
