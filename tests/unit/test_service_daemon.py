# SPDX-License-Identifier: GPL-2.0-or-later
"""The shared daemon lifecycle (hamail.service.daemon) on real processes: a small Python daemon that detaches,
writes a pid file, listens on loopback and greets each connection; variants that ignore SIGTERM with a child
in their process group, and a checker that refuses the configuration.

What the mail agents rely on: started means answering, a pid file naming a dead or foreign process is not
ours, a probe answers 7 and a recurring monitor fails when the daemon died, a wedged daemon fails the depth-10
exchange with the step named, and stop ends a TERM-ignoring process group before the deadline.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import sys
import textwrap
import time

import pytest

from hamail.ocf import ActionSpec, Agent, AgentSpec, Kind, OCFExit, Param, ParamTable, run
from hamail.service import daemon
from hamail.service.probes import Endpoint, ProbeFailed

DAEMON = textwrap.dedent("""\
    import os, signal, socket, sys, time
    port, pidfile, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    if os.fork():
        os._exit(0)
    os.setsid()
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if os.fork() == 0:  # a child in the same group that also ignores TERM
            while True:
                time.sleep(1)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    with open(pidfile + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\\n")
    os.rename(pidfile + ".tmp", pidfile)
    while True:
        conn, _ = srv.accept()
        conn.sendall(b"220 toy ready\\r\\n")
        conn.close()
""")


class Toy(daemon.Service):
    """A daemon for the lifecycle's tests."""

    label = "toy"
    names = ("python3",)

    def binary(self, ctx):
        """The interpreter (or the configured program, to test a missing one)."""
        return ctx.config.binary

    def pid_file(self, ctx):
        """Where the toy writes its pid."""
        return ctx.config.pidfile

    def check_argv(self, ctx):
        """A checker that fails when the configuration says so."""
        return [ctx.config.binary, "-c", "import sys; sys.stderr.write('line 3: bad directive\\nmore\\n'); "
                "sys.exit(1)" if ctx.config.broken else "pass"]

    def start_argv(self, ctx):
        """Start the toy detached."""
        return [ctx.config.binary, ctx.config.script, str(ctx.config.port), ctx.config.pidfile, ctx.config.mode]

    def listeners(self, ctx):
        """Its one TCP listener."""
        return [Endpoint("127.0.0.1", ctx.config.port)]

    def exchange(self, ctx, deadline):
        """Read the greeting."""
        try:
            with socket.create_connection(("127.0.0.1", ctx.config.port), timeout=deadline.remaining()) as sock:
                if not sock.recv(64).startswith(b"220"):
                    raise ProbeFailed("TOY greeting", "toy", "unexpected answer")
        except OSError as exc:
            raise ProbeFailed("TOY greeting", f"127.0.0.1:{ctx.config.port}", type(exc).__name__) from None


SERVICE = Toy()
SPEC = AgentSpec(
    name="toy", version="0.1", shortdesc="toy daemon", longdesc="A daemon for tests.",
    params=ParamTable(Param("binary", Kind.STRING, "interpreter", default=sys.executable),
                      Param("script", Kind.PATH, "daemon script", required=True),
                      Param("pidfile", Kind.PATH, "pid file", required=True),
                      Param("port", Kind.PORT, "port", required=True),
                      Param("mode", Kind.STRING, "plain or stubborn", default="plain"),
                      Param("broken", Kind.BOOLEAN, "checker refuses", default="false")),
    actions=(ActionSpec("start", 20), ActionSpec("stop", 20), ActionSpec("monitor", 20, interval=10),
             ActionSpec("meta-data", 5), ActionSpec("validate-all", 20)))
AGENT = Agent(SPEC, daemon.actions(SERVICE), lambda ctx: daemon.validate_all(SERVICE, ctx))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def toy(tmp_path):
    """Parameters for one toy instance; whatever it left running is killed at teardown."""
    script = tmp_path / "toy.py"
    script.write_text(DAEMON)
    params = {"script": str(script), "pidfile": str(tmp_path / "toy.pid"), "port": str(free_port())}
    yield params
    for pid in _toys(str(script)):
        os.kill(pid, signal.SIGKILL)


def _toys(script: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                if script.encode() in handle.read():
                    found.append(int(name))
        except (OSError, ValueError):
            continue
    return found


def act(action, params, *, interval_ms=0, depth=0, timeout_ms=8000, **extra):
    """(exit code, exit reason) of one action of the toy agent."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OCF_RESKEY_CRM_meta_timeout": str(timeout_ms),
           "OCF_RESKEY_CRM_meta_interval": str(interval_ms), "OCF_CHECK_LEVEL": str(depth)}
    env.update({f"OCF_RESKEY_{k}": v for k, v in {**params, **extra}.items()})
    err = io.StringIO()
    code = run(AGENT, ["toy", action], env, stdout=io.StringIO(), stderr=err)
    reasons = [line for line in err.getvalue().splitlines() if line.startswith("ocf-exit-reason:")]
    assert "Traceback" not in err.getvalue()
    return code, (reasons[-1][len("ocf-exit-reason:"):] if reasons else "")


def test_start_means_answering_and_stop_leaves_nothing(toy):
    assert act("monitor", toy) == (OCFExit.NOT_RUNNING, "")
    assert act("start", toy) == (OCFExit.SUCCESS, "")
    pid = int(open(toy["pidfile"]).read())
    for depth in (0, 10, 20):
        assert act("monitor", toy, interval_ms=10000, depth=depth)[0] == OCFExit.SUCCESS
    assert act("start", toy)[0] == OCFExit.SUCCESS
    assert int(open(toy["pidfile"]).read()) == pid, "a second start must not start a second daemon"
    assert act("stop", toy)[0] == OCFExit.SUCCESS
    assert _toys(toy["script"]) == []
    assert not os.path.exists(toy["pidfile"])
    assert act("stop", toy)[0] == OCFExit.SUCCESS
    assert act("monitor", toy)[0] == OCFExit.NOT_RUNNING


def test_a_killed_daemon_is_not_running_to_a_probe_and_an_error_to_a_recurring_monitor(toy):
    assert act("start", toy)[0] == OCFExit.SUCCESS
    pid = int(open(toy["pidfile"]).read())
    os.kill(pid, signal.SIGKILL)
    while os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] != "Z":
        time.sleep(0.02)
    assert act("monitor", toy) == (OCFExit.NOT_RUNNING, "")
    code, why = act("monitor", toy, interval_ms=10000)
    assert code == OCFExit.ERR_GENERIC and "died" in why and str(pid) in why
    assert act("stop", toy)[0] == OCFExit.SUCCESS
    assert not os.path.exists(toy["pidfile"]), "stop tidies the stale pid file"


def test_a_pid_file_naming_another_program_is_not_ours(toy):
    sleeper = os.spawnlp(os.P_NOWAIT, "sleep", "sleep", "60")
    while open(f"/proc/{sleeper}/comm").read().strip() != "sleep":  # until the fork has exec'd
        time.sleep(0.01)
    try:
        with open(toy["pidfile"], "w") as handle:
            handle.write(f"{sleeper}\n")
        assert act("monitor", toy)[0] == OCFExit.NOT_RUNNING
        assert act("stop", toy)[0] == OCFExit.SUCCESS
        assert os.path.exists(f"/proc/{sleeper}"), "stop killed a process that only reused the daemon's pid"
    finally:
        os.kill(sleeper, signal.SIGKILL)
        os.waitpid(sleeper, 0)


def test_a_wedged_daemon_fails_the_exchange_naming_the_step(toy):
    assert act("start", toy)[0] == OCFExit.SUCCESS
    pid = int(open(toy["pidfile"]).read())
    os.kill(pid, signal.SIGSTOP)
    try:
        assert act("monitor", toy, interval_ms=10000, depth=0)[0] == OCFExit.SUCCESS, "the kernel still accepts"
        began = time.monotonic()
        code, why = act("monitor", toy, interval_ms=10000, depth=10, timeout_ms=3000)
        assert time.monotonic() - began < 3.0
        assert code == OCFExit.ERR_GENERIC and "TOY greeting" in why and "does not answer" in why
    finally:
        os.kill(pid, signal.SIGCONT)
    assert act("stop", toy)[0] == OCFExit.SUCCESS


def test_stop_ends_a_process_group_that_ignores_term_within_the_deadline(toy):
    assert act("start", toy, mode="stubborn")[0] == OCFExit.SUCCESS
    assert len(_toys(toy["script"])) == 2
    began = time.monotonic()
    assert act("stop", toy, mode="stubborn", timeout_ms=6000)[0] == OCFExit.SUCCESS
    assert time.monotonic() - began < 6.0
    deadline = time.monotonic() + 2
    while _toys(toy["script"]) and time.monotonic() < deadline:  # killed children await their reaper (init)
        time.sleep(0.05)
    alive = [p for p in _toys(toy["script"]) if open(f"/proc/{p}/stat").read().split(")")[-1].split()[0] != "Z"]
    assert alive == [], "a member of the daemon's process group survived stop"


def test_the_checker_refuses_a_broken_configuration_with_its_first_line(toy):
    code, why = act("start", toy, broken="true")
    assert code == OCFExit.ERR_CONFIGURED and "line 3: bad directive" in why and "more" not in why
    assert act("validate-all", toy, broken="true")[0] == OCFExit.ERR_CONFIGURED
    assert _toys(toy["script"]) == []


def test_a_missing_binary_is_not_running_to_a_probe_and_not_installed_to_start(toy):
    assert act("monitor", toy, binary="/nonexistent/python3")[0] == OCFExit.NOT_RUNNING
    assert act("start", toy, binary="/nonexistent/python3")[0] == OCFExit.ERR_INSTALLED
    assert act("stop", toy, binary="/nonexistent/python3")[0] == OCFExit.SUCCESS


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:25", Endpoint("127.0.0.1", 25)), ("[::1]:143", Endpoint("::1", 143)), ("587", Endpoint("127.0.0.1", 587)),
    ("*:110", Endpoint("127.0.0.1", 110)), ("0.0.0.0:993", Endpoint("127.0.0.1", 993)),
    ("/run/dovecot/lmtp", Endpoint(path="/run/dovecot/lmtp"))])
def test_endpoints_parse_as_daemons_write_them(text, expected):
    assert Endpoint.parse(text) == expected


@pytest.mark.parametrize("text", ["", "host:", "host:0", "host:70000", "a:b"])
def test_endpoints_refuse_garbage(text):
    with pytest.raises(ValueError):
        Endpoint.parse(text)
