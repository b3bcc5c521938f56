"""The one seam through which hamail runs external tools: bounded, argv-only, secrets on stdin."""

import dataclasses
import os
import signal
import subprocess
from typing import Callable, Iterable, Mapping, Optional, Sequence, Union

from hamail.clock import Deadline
from hamail.secret import Secret

__all__ = [
    "CommandResult", "CommandNotFound", "CommandTimeout", "CommandRunner", "RecordingRunner",
    "FakeRunner", "UnexpectedCommand",
]

Stdin = Union[None, str, bytes, Secret]
SAFE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin"


@dataclasses.dataclass(frozen=True)
class CommandResult:
    """What a finished command gave back."""

    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str

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


class CommandNotFound(Exception):
    """The tool to run does not exist on this node."""


class CommandTimeout(Exception):
    """The tool did not finish before its deadline and was killed."""


@dataclasses.dataclass(frozen=True)
class Invocation:
    """One call seen by a runner: for tests that check what was run and that no secret was in argv."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    stdin_was_secret: bool


class CommandRunner:
    """Runs commands with a deadline, LC_ALL=C, an explicit environment and secrets only on stdin."""

    def __init__(self, base_env: Optional[Mapping[str, str]] = None) -> None:
        env = dict(os.environ if base_env is None else base_env)
        env.setdefault("PATH", SAFE_PATH)
        env["LC_ALL"] = "C"
        self._base_env = env

    def environment(self, extra: Optional[Mapping[str, str]] = None) -> dict[str, str]:
        """The environment a command gets: the base environment plus extra."""
        env = dict(self._base_env)
        if extra:
            env.update(extra)
        return env

    def run(self, argv: Sequence[str], *, deadline: Optional[Deadline] = None,
            timeout: Optional[float] = None, stdin: Stdin = None,
            env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None) -> CommandResult:
        """Run argv to completion within min(timeout, deadline); never through a shell."""
        argv = tuple(str(a) for a in argv)
        for arg in argv:
            if isinstance(arg, Secret):  # pragma: no cover - str() above already hides it
                raise TypeError("secrets go on stdin, never in argv")
        full_env = self.environment(env)
        self._observe(Invocation(argv, full_env, isinstance(stdin, Secret)))
        limit = timeout
        if deadline is not None:
            limit = deadline.remaining() if limit is None else min(limit, deadline.remaining())
        data = stdin.reveal() if isinstance(stdin, Secret) else stdin
        if isinstance(data, str):
            data = data.encode()
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, cwd=cwd,
                start_new_session=True, close_fds=True)
        except FileNotFoundError as exc:
            raise CommandNotFound(f"{argv[0]}: not found") from None
        except PermissionError:
            raise CommandNotFound(f"{argv[0]}: not executable") from None
        try:
            out, err = proc.communicate(data, timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            raise CommandTimeout(f"{os.path.basename(argv[0])} did not finish within {limit:.1f} s") from None
        return CommandResult(argv, proc.returncode, out.decode(errors="replace"),
                             err.decode(errors="replace"))

    def _observe(self, invocation: Invocation) -> None:
        """Hook for recording runners; the plain runner records nothing."""


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill a timed-out command and everything it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class RecordingRunner(CommandRunner):
    """A real runner that also keeps every invocation, so tests can inspect argv and environments."""

    def __init__(self, base_env: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(base_env)
        self.invocations: list[Invocation] = []

    def _observe(self, invocation: Invocation) -> None:
        """Keep the invocation."""
        self.invocations.append(invocation)


class UnexpectedCommand(AssertionError):
    """A FakeRunner was asked to run something its script did not expect."""


@dataclasses.dataclass(frozen=True)
class Expected:
    """One scripted call of a FakeRunner: the argv it must see and what it answers."""

    argv: tuple[str, ...]
    result: CommandResult
    stdin: Stdin = None


class FakeRunner(CommandRunner):
    """A runner for unit tests of pure decisions: answers a script of expected calls in order."""

    def __init__(self, script: Iterable[tuple[Sequence[str], int, str, str]] = ()) -> None:
        super().__init__({"PATH": SAFE_PATH})
        self._script = [Expected(tuple(a), CommandResult(tuple(a), rc, out, err)) for a, rc, out, err in script]
        self.invocations: list[Invocation] = []

    def expect(self, argv: Sequence[str], rc: int = 0, stdout: str = "", stderr: str = "") -> "FakeRunner":
        """Add one expected call and its answer."""
        self._script.append(Expected(tuple(argv), CommandResult(tuple(argv), rc, stdout, stderr)))
        return self

    def run(self, argv: Sequence[str], *, deadline: Optional[Deadline] = None,
            timeout: Optional[float] = None, stdin: Stdin = None,
            env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None) -> CommandResult:
        """Answer the next scripted call, failing the test on anything else."""
        argv = tuple(str(a) for a in argv)
        self.invocations.append(Invocation(argv, self.environment(env), isinstance(stdin, Secret)))
        if not self._script:
            raise UnexpectedCommand(f"unexpected command {argv!r}")
        expected = self._script.pop(0)
        if expected.argv != argv:
            raise UnexpectedCommand(f"expected {expected.argv!r}, got {argv!r}")
        return expected.result

    def assert_done(self) -> None:
        """Fail if scripted calls were never made."""
        if self._script:
            raise UnexpectedCommand(f"expected calls not made: {[e.argv for e in self._script]!r}")
