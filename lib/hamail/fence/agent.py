"""The fence-agent contract: a FenceAgent (its option table, documentation and how to reach its device), the
power state machine run against a PowerDevice, and run(): actions on/off/reboot/status/monitor/metadata/
validate-all with exact exit codes, bounded waits, stdout kept for what the action prints and one readable
error line on failure. Options and their parsing are in hamail.fence.options, metadata and help in
hamail.fence.metadata.

The library never exits and never touches sys.argv: `run()` takes argv, stdin and streams and returns the
exit code, so one process (a test) can run many actions.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence

from hamail.system.clock import Clock, Deadline, DeadlineExceeded, SystemClock, poll
from hamail.fence.exitcodes import FenceExit
from hamail.fence.log import FenceLog
from hamail.fence.options import (
    METHOD_OPTION, TIMEOUT, UNSUPPORTED, FenceError, FenceOption, FenceOptions, Frozen, UsageError, convert,
    parse_argv, parse_stdin,
)
from hamail.system.log import Scrubber
from hamail.system.runner import CommandNotFound, CommandRunner, CommandTimeout
from hamail.secret import Secret

# Every fencing and every stonith monitor starts a process: this module avoids dataclasses, typing, logging,
# getopt and shlex at import (~45 ms together); shlex is imported where it is used, and hamail.fence.metadata
# (with lxml) only by the metadata and help actions.

__all__ = ["PowerDevice", "FenceAgent", "resolve_password", "run", "main"]

MAX_STDIN_BYTES = 1 << 20


class PowerDevice:
    """What an agent's device gives the fencing logic, inside one logged-in connection (an interface)."""

    __slots__ = ()

    def is_on(self) -> bool:
        """The target's power state."""
        raise NotImplementedError

    def control(self, operation: str) -> None:
        """Ask for power 'on', 'off' or 'cycle'; FenceError(BMC, ...) when the device refuses."""
        raise NotImplementedError


def _no_checks(opts: FenceOptions) -> list[str]:
    """An agent without rules of its own."""
    return []


class FenceAgent(Frozen):
    """One fence agent: its name, documentation, options and how to connect to its device.

    connect(opts, deadline, log) returns a context manager yielding a PowerDevice; check(opts) returns the
    agent's own validation problems. options holds hamail.fence.options.COMMON_OPTIONS, and METHOD_OPTION
    when the device can power-cycle.
    """

    __slots__ = ("name", "shortdesc", "longdesc", "options", "connect", "check", "vendor_url", "version")

    def __init__(self, name: str, shortdesc: str, longdesc: str, options: tuple[FenceOption, ...],
                 connect: Callable, check: Callable[[FenceOptions], list[str]] = _no_checks,
                 vendor_url: str = "", version: str = "0.1.0") -> None:
        super().__init__(name=name, shortdesc=shortdesc, longdesc=longdesc, options=tuple(options),
                         connect=connect, check=check, vendor_url=vendor_url, version=version)

    def option(self, name: str) -> FenceOption:
        """The option of that canonical name."""
        for option in self.options:
            if option.name == name:
                return option
        raise KeyError(name)

    def offers(self, name: str) -> bool:
        """Whether the agent declares the option of that canonical name."""
        return any(option.name == name for option in self.options)


# -- running -------------------------------------------------------------------------------------------

def _make_logger(agent: FenceAgent, opts: FenceOptions | None, stderr, secrets: Iterable[Secret]) -> FenceLog:
    """A per-run log: stderr (warnings, or everything with verbose), debug_file (everything)."""
    try:
        return FenceLog(agent.name, secrets, stderr, verbose=bool(opts and opts.verbose),
                        quiet=bool(opts and opts.quiet), debug_file=opts.debug_file if opts else None)
    except OSError as exc:
        raise UsageError(f"debug_file: cannot open: {exc.strerror}") from None


def resolve_password(opts: FenceOptions, runner: CommandRunner, deadline: Deadline) -> FenceOptions:
    """Options with password filled from password_script (run without a shell; output never logged)."""
    try:
        script = opts["password_script"]
    except KeyError:  # an agent without password options
        return opts
    if not script or opts.given("password"):
        return opts
    import shlex  # only when a password_script is configured

    try:
        argv = shlex.split(script)
    except ValueError:
        raise UsageError("password_script: cannot be split into a command") from None
    try:
        result = runner.run(argv, deadline=deadline.sub(10.0))
    except (CommandNotFound, CommandTimeout) as exc:
        raise UsageError(f"password_script: {exc}") from None
    if not result.ok:
        # Its output is not shown: it may be the password.
        raise UsageError(f"password_script exited with status {result.rc}")
    lines = result.stdout.splitlines()
    return opts.replace(password=Secret(lines[0] if lines else ""))


def _secrets(opts: FenceOptions | None, raw: Mapping[str, str], agent: FenceAgent) -> list[Secret]:
    """Every private value of this run, converted or raw, for scrubbing logs."""
    found = [Secret(raw[o.name]) for o in agent.options if o.param.private and raw.get(o.name)]
    if opts is not None:
        found += opts.secrets()
    return found


def _power_wait(opts: FenceOptions, deadline: Deadline) -> None:
    """Honour an explicit power_wait before the first state check."""
    if opts.power_wait > 0:
        deadline.sleep(opts.power_wait)


def _wait_state(device: PowerDevice, want_on: bool, opts: FenceOptions, deadline: Deadline,
                log: FenceLog) -> None:
    """Poll the power state with a short backoff until it is want_on, within power_timeout."""
    state = "on" if want_on else "off"
    try:
        poll(deadline.sub(opts.power_timeout), lambda: True if device.is_on() == want_on else None,
             what=f"power {state}", first=0.02, factor=1.7, longest=0.5)
    except DeadlineExceeded:
        raise FenceError(TIMEOUT, f"power did not turn {state} within "
                         f"{min(opts.power_timeout, opts.fence_timeout):g} s") from None
    log.info("verified power %s", state)


def _set_power(device: PowerDevice, want_on: bool, opts: FenceOptions, deadline: Deadline,
               log: FenceLog, attempts: int = 1) -> None:
    """Switch and verify; already in the wanted state counts as done (no command sent)."""
    if device.is_on() == want_on:
        log.info("power already %s", "on" if want_on else "off")
        return
    for attempt in range(1, attempts + 1):
        device.control("on" if want_on else "off")
        _power_wait(opts, deadline)
        try:
            _wait_state(device, want_on, opts, deadline, log)
            return
        except FenceError as exc:
            if attempt == attempts or deadline.expired():
                raise
            log.warning("attempt %d: %s; retrying", attempt, exc.message)


def _cycles(agent: FenceAgent, opts: FenceOptions) -> bool:
    """Whether reboot power-cycles: only when the agent offers METHOD_OPTION and it is set to cycle."""
    return agent.offers(METHOD_OPTION.name) and opts[METHOD_OPTION.name] == "cycle"


def _reboot(device: PowerDevice, opts: FenceOptions, deadline: Deadline, log: FenceLog, cycle: bool) -> None:
    """Off (verified) then on; with cycle (method=cycle) a running target is power-cycled instead."""
    if cycle and device.is_on():
        device.control("cycle")
        _power_wait(opts, deadline)
        # A cycle cannot be observed reliably (the off phase may be shorter than a poll); trust the BMC's
        # answer and wait for the target to be on again.
        _wait_state(device, True, opts, deadline, log)
        return
    # Already off with method=cycle: a cycle would be refused ("not supported in present state",
    # fence-agents #596); the off part is done, only power on remains.
    _set_power(device, False, opts, deadline, log)
    try:
        _set_power(device, True, opts, deadline, log, attempts=opts.retry_on)
    except FenceError as exc:
        # The contract: reboot succeeds when the off part was verified; a failed on is only logged.
        log.warning("target is off but did not power on again: %s", exc.message)


def _device_action(agent: FenceAgent, action: str, opts: FenceOptions, deadline: Deadline,
                   log: FenceLog, out) -> int:
    """Connect to the device and run one power action; the exit code."""
    with agent.connect(opts, deadline, log) as device:
        if action == "monitor":
            device.is_on()
            return FenceExit.SUCCESS
        if action == "status":
            on = device.is_on()
            out.write(f"Status: {'ON' if on else 'OFF'}\n")
            return FenceExit.SUCCESS if on else FenceExit.STATUS_OFF
        if action == "on":
            _set_power(device, True, opts, deadline, log, attempts=opts.retry_on)
        elif action == "off":
            _set_power(device, False, opts, deadline, log)
        else:
            _reboot(device, opts, deadline, log, _cycles(agent, opts))
    out.write("Success: Rebooted\n" if action == "reboot" else f"Success: Powered {action.upper()}\n")
    return FenceExit.SUCCESS


MAX_ERROR_LINE = 300


def _error_line(agent: FenceAgent, exc: FenceError) -> str:
    """The one line a failure prints: printable (values may be garbage) and short."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in f"{exc.kind}: {exc.message}")
    if len(text) > MAX_ERROR_LINE:
        text = text[:MAX_ERROR_LINE - 3] + "..."
    return f"{agent.name}: error: {text}\n"


def run(agent: FenceAgent, argv: Sequence[str], stdin, stdout, stderr, clock: Clock | None = None,
        runner: CommandRunner | None = None) -> int:
    """Run one invocation of the agent; returns the exit code. Nothing here exits or reads sys.*."""
    clock = clock or SystemClock()
    raw: dict[str, str] = {}
    ignored: list[str] = []
    opts: FenceOptions | None = None
    log = _make_logger(agent, None, stderr, ())
    try:
        if argv:
            raw = parse_argv(agent.options, argv)
        elif stdin is not None:
            try:
                text = stdin.read(MAX_STDIN_BYTES)
            except UnicodeDecodeError:
                raise UsageError("stdin is not UTF-8 text (expected key=value lines)") from None
            raw, ignored = parse_stdin(agent.options, text)
        if raw.get("help") in ("1",) and argv:
            from hamail.fence.metadata import help_text
            stdout.write(help_text(agent))
            return FenceExit.SUCCESS
        if raw.get("version") == "1" and argv:
            stdout.write(f"{agent.name} {agent.version}\n")
            return FenceExit.SUCCESS
        action = raw.get("action", agent.option("action").param.default or "")
        if action == "metadata":
            # Metadata never depends on the other options being valid.
            from hamail.fence.metadata import metadata_xml
            stdout.write(metadata_xml(agent).decode())
            stdout.flush()
            return FenceExit.SUCCESS
        opts = convert(agent.options, raw)
        log = _make_logger(agent, opts, stderr, _secrets(opts, raw, agent))
        for key in ignored:
            log.debug("ignoring unknown key %s", key)
        action = opts.action
        if action in ("list", "list-status"):
            raise FenceError(UNSUPPORTED, f"{action}: this agent controls a single machine and has no list; "
                             "configure pcmk_host_list on the stonith resource")
        problems = _validate(agent, opts)
        if problems:
            raise UsageError(problems[0])
        for option in agent.options:
            if option.ignored and opts.given(option.name):
                log.warning("%s is accepted for compatibility and ignored: %s", option.name, option.ignored)
        if action == "validate-all":
            return FenceExit.SUCCESS
        deadline = Deadline.after(opts.fence_timeout, clock)
        opts = resolve_password(opts, runner or CommandRunner(), deadline)
        log = _make_logger(agent, opts, stderr, _secrets(opts, raw, agent))
        if action in ("off", "reboot") and opts.delay > 0:
            log.info("delaying %g s", opts.delay)
            deadline.sleep(opts.delay)
            if deadline.expired():
                raise FenceError(TIMEOUT, f"delay {opts.delay:g} s used up fence_timeout {opts.fence_timeout:g} s")
        # pyghmi and other libraries print to stdout; only this action's own lines may go there.
        saved, sys.stdout = sys.stdout, stderr
        try:
            return _device_action(agent, action, opts, deadline, log, stdout)
        finally:
            sys.stdout = saved
    except FenceError as exc:
        stderr.write(_error_line(agent, exc))
        return FenceExit.ERROR
    except DeadlineExceeded as exc:
        stderr.write(_error_line(agent, FenceError(TIMEOUT, str(exc))))
        return FenceExit.ERROR
    except Exception as exc:  # the contract: one readable line, exit 1, never a traceback on stderr
        log.debug("unexpected error", exc_info=True)
        scrubbed = Scrubber(_secrets(opts, raw, agent)).scrub(f"{type(exc).__name__}: {exc}")
        stderr.write(_error_line(agent, FenceError("internal", scrubbed.splitlines()[0] if scrubbed else "")))
        return FenceExit.ERROR


def _validate(agent: FenceAgent, opts: FenceOptions) -> list[str]:
    """Cross-option rules: required options, then the agent's own checks."""
    problems = []
    for option in agent.options:
        if option.param.required and opts[option.name] in (None, "") and option.name != "action":
            problems.append(f"{option.name} is required")
    if opts.power_timeout <= 0:
        problems.append("power_timeout must be more than 0")
    if opts.fence_timeout <= 0:
        problems.append("fence_timeout must be more than 0")
    return problems + agent.check(opts)


def main(agent: FenceAgent) -> int:
    """What a thin executable calls: run with the process's argv and streams."""
    try:
        return int(run(agent, sys.argv[1:], sys.stdin, sys.stdout, sys.stderr))
    except KeyboardInterrupt:
        sys.stderr.write(f"{agent.name}: error: interrupted\n")
        return FenceExit.ERROR
