# SPDX-License-Identifier: GPL-2.0-or-later
"""The one seam through which hamail starts processes: argv only (never a shell), bounded by a deadline,
secrets only on stdin, an allowlisted environment from which private parameters are removed.

run: a tool to completion, killed with its whole process group at the deadline. spawn: a daemon that
outlives the action (mariadbd), detached, with the same environment rules. run_detached: a Python function
in a detached child (IPaddr2's background ARP sender). A program missing on this node raises
CommandNotFound; what that means for an action is decided by the agent contract (hamail.ocf, hamail.fence).
FakeRunner and RecordingRunner, for tests, live here beside the seam they fake.
"""

from __future__ import annotations

import os

from hamail.secret import Secret

__all__ = [
    "CommandResult", "CommandNotFound", "CommandTimeout", "Invocation", "CommandRunner", "Process",
    "RecordingRunner", "FakeRunner", "UnexpectedCommand", "run_detached", "find_program", "inherited",
]

SAFE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin"


class CommandResult:
    """What a finished command gave back: argv, rc, stdout, stderr (text)."""

    __slots__ = ("argv", "rc", "stdout", "stderr")

    def __init__(self, argv: tuple, rc: int, stdout: str, stderr: str) -> None:
        self.argv, self.rc, self.stdout, self.stderr = tuple(argv), rc, stdout, stderr

    @property
    def ok(self) -> bool:
        """Whether the command exited 0."""
        return self.rc == 0

    def first_error_line(self) -> str:
        """The first non-empty line of stderr (or stdout), for one-line exit reasons."""
        for text in (self.stderr, self.stdout):
            for line in text.splitlines():
                if line.strip():
                    return line.strip()
        return f"exit status {self.rc}"

    def __repr__(self) -> str:
        return f"CommandResult(argv={self.argv!r}, rc={self.rc})"


class CommandNotFound(Exception):
    """The tool to run does not exist on this node."""


class CommandTimeout(Exception):
    """The tool did not finish before its deadline and was killed."""


class Invocation:
    """One call seen by a runner: for tests that check what was run and that no secret was in argv."""

    __slots__ = ("argv", "env", "stdin_was_secret")

    def __init__(self, argv: tuple, env: dict, stdin_was_secret: bool) -> None:
        self.argv, self.env, self.stdin_was_secret = argv, env, stdin_was_secret

    def __repr__(self) -> str:
        return f"Invocation({self.argv!r})"


# How long a killed command may take to be reaped before it is left behind.
KILL_GRACE = 0.2

# What children inherit of the agent's environment: an allowlist, so that a variable nobody thought of (a
# MYSQL_PWD, a token exported by an admin's shell into a manual run) never reaches a tool or a daemon.
# Pacemaker's own variables (OCF_*, HA_*, PCMK_*, CIB_*, CRM_*) stay: its tools and crm_master read them.
INHERITED = frozenset({"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL", "TERM"})
INHERITED_PREFIXES = ("OCF_", "HA_", "PCMK_", "CIB_", "CRM_", "LC_")


def inherited(environ) -> dict:
    """The part of an environment a child may inherit (INHERITED and INHERITED_PREFIXES)."""
    return {name: value for name, value in environ.items()
            if name in INHERITED or name.startswith(INHERITED_PREFIXES)}


class CommandRunner:
    """Runs commands with a deadline, LC_ALL=C, an explicit environment and secrets only on stdin."""

    def __init__(self, base_env=None) -> None:
        env = inherited(os.environ if base_env is None else base_env)
        env.setdefault("PATH", SAFE_PATH)
        env["LC_ALL"] = "C"
        self._base_env = env

    def hide_variables(self, names) -> None:
        """Remove variables from what every later command inherits (an agent's private parameters)."""
        for name in names:
            self._base_env.pop(name, None)

    def environment(self, extra=None) -> dict:
        """The environment a command gets: the base environment plus extra."""
        env = dict(self._base_env)
        if extra:
            env.update(extra)
        return env

    def run(self, argv, *, deadline=None, timeout: float | None = None, stdin=None, env=None,
            cwd: str | None = None, daemonizes: bool = False) -> CommandResult:
        """Run argv to completion within min(timeout, deadline); never through a shell.

        stdin may be str, bytes or a Secret (how passwords reach tools: never in argv). daemonizes: the command
        leaves a daemon behind that may keep its stdout and stderr open (apache2 -k start, postfix start), so
        its output goes to a file and only the command itself is waited for, not the end of its output.
        """
        import subprocess  # 15-20 ms to import: only paid by actions that run a tool
        argv = _checked_argv(argv, deadline, timeout)
        full_env = self.environment(env)
        self._observe(Invocation(argv, full_env, isinstance(stdin, Secret)))
        limit = timeout
        if deadline is not None:
            limit = deadline.remaining() if limit is None else min(limit, deadline.remaining())
        if daemonizes:
            return _run_daemonizing(argv, full_env, cwd, limit)
        data = stdin.reveal() if isinstance(stdin, Secret) else stdin
        if isinstance(data, str):
            data = data.encode()
        proc = _popen(argv, full_env, cwd, stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(data, timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            name = os.path.basename(argv[0])
            try:
                proc.communicate(timeout=KILL_GRACE)
            except subprocess.TimeoutExpired:
                # Even SIGKILL waits for a process stuck in the kernel (a request to a dead NFS or FUSE
                # server): leave it behind rather than wait past the deadline with it.
                for pipe in (proc.stdin, proc.stdout, proc.stderr):
                    if pipe is not None:
                        pipe.close()
                proc.returncode = -9  # no further wait for it when this Popen is collected
                raise CommandTimeout(f"{name} did not finish within {limit:.1f} s and is stuck in the kernel "
                                     f"(pid {proc.pid}, left behind)") from None
            raise CommandTimeout(f"{name} did not finish within {limit:.1f} s") from None
        return CommandResult(argv, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))

    def find(self, program: str) -> str | None:
        """Where a program this runner would start lives (None: missing or not executable on this node)."""
        return find_program(program, self._base_env.get("PATH", SAFE_PATH))

    def spawn(self, argv, *, env=None, cwd: str | None = None) -> Process:
        """Start a daemon that outlives this action: its own session, stdio on /dev/null, this runner's
        environment (private parameters removed); CommandNotFound when the program is missing."""
        import subprocess
        argv = _checked_argv(argv, bounded=False)
        full_env = self.environment(env)
        self._observe(Invocation(argv, full_env, False))
        return Process(_popen(argv, full_env, cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL))

    def _observe(self, invocation: Invocation) -> None:
        """Hook for recording runners; the plain runner records nothing."""


def _run_daemonizing(argv: tuple, env: dict, cwd, limit: float | None) -> CommandResult:
    """Run a command that leaves a daemon behind: output through an unlinked file, wait for the command only."""
    import subprocess
    import tempfile
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = _popen(argv, env, cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            try:
                proc.wait(timeout=KILL_GRACE)
            except subprocess.TimeoutExpired:
                proc.returncode = -9
            raise CommandTimeout(f"{os.path.basename(argv[0])} did not finish within {limit:.1f} s") from None
        texts = []
        for handle in (out, err):
            handle.seek(0)
            texts.append(handle.read(1 << 16).decode(errors="replace"))
    return CommandResult(argv, rc, texts[0], texts[1])


def _checked_argv(argv, deadline=None, timeout=None, bounded: bool = True) -> tuple:
    """argv as strings; TypeError for a Secret in it or (bounded) a command with neither deadline nor timeout."""
    if any(isinstance(arg, Secret) for arg in argv):
        raise TypeError("secrets go on stdin, never in argv")
    if bounded and deadline is None and timeout is None:
        raise TypeError("a command needs a deadline or a timeout: nothing hamail runs may wait for ever")
    return tuple(str(a) for a in argv)


def _popen(argv: tuple, env: dict, cwd, **streams):
    """Start argv in its own session (so a deadline kills its whole group); CommandNotFound when missing."""
    import subprocess
    try:
        return subprocess.Popen(argv, env=env, cwd=cwd, start_new_session=True, close_fds=True, **streams)
    except FileNotFoundError:
        raise CommandNotFound(f"{argv[0]}: not found") from None
    except PermissionError:
        raise CommandNotFound(f"{argv[0]}: not executable") from None


class Process:
    """A daemon started by CommandRunner.spawn: its pid, and whether (and how) it has exited."""

    __slots__ = ("_popen",)

    def __init__(self, popen) -> None:
        self._popen = popen

    @property
    def pid(self) -> int:
        """The daemon's process id."""
        return self._popen.pid

    def poll(self) -> int | None:
        """Its exit status once it has exited (reaping it), else None."""
        return self._popen.poll()

    @property
    def returncode(self) -> int | None:
        """The exit status seen by the last poll()."""
        return self._popen.returncode


def find_program(program: str, path: str = SAFE_PATH) -> str | None:
    """The executable a command would run: an absolute path if it is executable, else looked up in path."""
    # Not shutil.which: importing shutil costs ~14 ms, and galera's validate runs this at every monitor.
    if "/" in program:
        return program if os.path.isfile(program) and os.access(program, os.X_OK) else None
    for directory in path.split(os.pathsep):
        candidate = os.path.join(directory or ".", program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def run_detached(function) -> str:
    """Run function() in a forked child detached from this process (own session, stdio on /dev/null) so the
    action can return while it works; the child's identity ('pid:starttime', see hamail.system.proc)."""
    from hamail.system import proc
    pid = os.fork()
    if pid == 0:  # the child: pacemaker-execd waits for the agent's pipes, so the child must not hold them
        code = 0
        try:
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            function()
        except BaseException:  # nothing to report to: the agent has already answered
            code = 1
        os._exit(code)
    return proc.identity(pid)


def _kill_group(pid: int) -> None:
    """Kill a timed-out command and everything it started."""
    import signal
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class RecordingRunner(CommandRunner):
    """A real runner that also keeps every invocation, so tests can inspect argv and environments."""

    def __init__(self, base_env=None) -> None:
        super().__init__(base_env)
        self.invocations: list = []

    def _observe(self, invocation: Invocation) -> None:
        """Keep the invocation."""
        self.invocations.append(invocation)


class UnexpectedCommand(AssertionError):
    """A FakeRunner was asked to run something its script did not expect."""


class FakeRunner(CommandRunner):
    """A runner for unit tests of pure decisions: answers a script of expected calls in order."""

    def __init__(self, script=()) -> None:
        super().__init__({"PATH": SAFE_PATH})
        self._script = [CommandResult(tuple(a), rc, out, err) for a, rc, out, err in script]
        self.invocations: list = []

    def expect(self, argv, rc: int = 0, stdout: str = "", stderr: str = "") -> FakeRunner:
        """Add one expected call and its answer."""
        self._script.append(CommandResult(tuple(argv), rc, stdout, stderr))
        return self

    def run(self, argv, *, deadline=None, timeout=None, stdin=None, env=None, cwd=None,
            daemonizes=False) -> CommandResult:
        """Answer the next scripted call, failing the test on anything else."""
        argv = _checked_argv(argv, deadline, timeout)
        self.invocations.append(Invocation(argv, self.environment(env), isinstance(stdin, Secret)))
        if not self._script:
            raise UnexpectedCommand(f"unexpected command {argv!r}")
        expected = self._script.pop(0)
        if expected.argv != argv:
            raise UnexpectedCommand(f"expected {expected.argv!r}, got {argv!r}")
        return expected

    def assert_done(self) -> None:
        """Fail if scripted calls were never made."""
        if self._script:
            raise UnexpectedCommand(f"expected calls not made: {[e.argv for e in self._script]!r}")
