# SPDX-License-Identifier: GPL-2.0-or-later
"""README's example agent is real: extracted from README.md and run as pacemaker-execd would run it."""

import os
import re
import signal
import subprocess

from lxml import etree

from hamail.system import proc as procfs
from hamail.system.clock import Deadline, poll
from testlib import ROOT


def example(tmp_path):
    """README's example agent written to a file that runs it with the checkout's library."""
    text = (ROOT / "README.md").read_text()
    code = re.search(r'```python\n("""ocf:hamail:Example.*?)```', text, re.S).group(1)
    path = tmp_path / "Example"
    prologue = f"import sys\nsys.path.insert(0, {str(ROOT / 'lib')!r})\nsys.path.append('/usr/lib/python3/dist-packages')\n"
    path.write_text(prologue + code)
    return path


def run(path, action, interval=0, **params):
    """One action with OCF_RESKEY_* parameters."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_RESKEY_CRM_meta_interval": str(interval),
           "OCF_RESKEY_CRM_meta_timeout": "20000"}
    env.update({f"OCF_RESKEY_{k}": v for k, v in params.items()})
    return subprocess.run(["/usr/bin/python3", "-S", str(path), action], env=env, capture_output=True, text=True,
                          timeout=30)


def test_readme_example_agent_follows_the_contract(tmp_path):
    path = example(tmp_path)
    meta = run(path, "meta-data")
    assert meta.returncode == 0, meta.stderr
    root = etree.fromstring(meta.stdout.encode())
    assert root.get("name") == "Example"
    required = {p.get("name"): p.get("required") for p in root.iter("parameter")}
    # the two declared parameters (the library may publish its own, optional ones, after them)
    assert list(required)[:2] == ["binary", "pidfile"] and required["pidfile"] == "1"
    assert [name for name, flag in required.items() if flag != "0"] == ["pidfile"]
    assert [a.get("name") for a in root.iter("action")] == ["start", "stop", "monitor", "meta-data", "validate-all"]
    pidfile = str(tmp_path / "example.pid")
    assert run(path, "validate-all").returncode == 6  # pidfile is required
    absent = {"binary": "/nonexistent/exampled", "pidfile": pidfile}
    assert run(path, "monitor", **absent).returncode == 7  # a probe on a node without the software
    failed = run(path, "monitor", interval=10000, **absent)
    assert failed.returncode == 5 and "ocf-exit-reason:/nonexistent/exampled is not installed" in failed.stderr
    present = {"binary": "/bin/sleep", "pidfile": pidfile}
    assert run(path, "monitor", **present).returncode == 7
    with open(pidfile, "w", encoding="ascii") as handle:
        handle.write(str(os.getpid()))
    assert run(path, "monitor", interval=10000, **present).returncode == 0


def test_readme_example_starts_and_stops_its_daemon(tmp_path):
    path = example(tmp_path)
    daemon = tmp_path / "exampled"  # daemonizes like a real one: forks, writes its pid file, returns
    daemon.write_text('#!/bin/sh\n[ "$1" = --pidfile ] || exit 2\n'
                      'setsid sleep 300 </dev/null >/dev/null 2>&1 &\necho $! > "$2"\n')
    daemon.chmod(0o755)
    params = {"binary": str(daemon), "pidfile": str(tmp_path / "exampled.pid")}
    started = run(path, "start", **params)
    pid = int((tmp_path / "exampled.pid").read_text()) if (tmp_path / "exampled.pid").exists() else None
    try:
        assert started.returncode == 0 and pid is not None, started.stderr
        assert procfs.stat(pid).state in ("S", "R")
        assert run(path, "monitor", interval=10000, **params).returncode == 0
        assert run(path, "stop", **params).returncode == 0
        poll(Deadline.after(10), lambda: not procfs.alive(pid) or None, what="exampled to exit")
        assert run(path, "monitor", interval=10000, **params).returncode == 7
    finally:
        if pid is not None and procfs.alive(pid):
            os.kill(pid, signal.SIGKILL)
