# SPDX-License-Identifier: GPL-2.0-or-later
"""The fence-agent contract: a FenceAgent (its option table, documentation and how to reach its device), the
power state machine run against a PowerDevice, and run(): actions on/off/reboot/status/monitor/list/diag/
metadata/manpage/validate-all with exact exit codes, bounded waits, stdout kept for what the action prints and
one readable error line on failure (every configuration problem at once). Options and their parsing are in
hamail.fence.options, metadata, man page and help in hamail.fence.metadata.

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
    METHOD_OPTION, TIMEOUT, FenceError, FenceOption, FenceOptions, Frozen, UsageError, parse_argv, parse_stdin, typed,
)
from hamail.system.log import Scrubber
from hamail.system.runner import CommandNotFound, CommandRunner, CommandTimeout
from hamail.secret import Secret

# Every fencing and every stonith monitor starts a process: this module avoids dataclasses, typing, logging,
# getopt and shlex at import (~45 ms together); shlex is imported where it is used, and hamail.fence.metadata
# (with lxml) only by the metadata and help actions.

__all__ = ["PowerDevice", "FenceAgent", "resolve_password", "verbosity", "step_deadline", "run", "main"]

MAX_STDIN_BYTES = 1 << 20


class PowerDevice:
    """What an agent's device gives the fencing logic, inside one logged-in connection (an interface)."""

    __slots__ = ()

    def is_on(self) -> bool:
        """The target's power state."""
        raise NotImplementedError

    def control(self, operation: str) -> None:
        """Ask for power 'on', 'off', 'cycle' or (agents with diag) 'diag', a diagnostic interrupt; FenceError(BMC,
        ...) when the device refuses."""
        raise NotImplementedError


def _no_checks(opts: FenceOptions) -> list[str]:
    """An agent without rules of its own."""
    return []


class FenceAgent(Frozen):
    """One fence agent: its name, documentation, options and how to connect to its device.

    connect(opts, deadline, log) returns a context manager yielding a PowerDevice; check(opts) returns the
    agent's own validation problems. options holds hamail.fence.options.COMMON_OPTIONS (or with_port_as_ip of
    it), and METHOD_OPTION when the device can power-cycle; diag says whether the device can send a diagnostic
    interrupt (the diag action).
    """

    __slots__ = ("name", "shortdesc", "longdesc", "options", "connect", "check", "vendor_url", "version", "diag")

    def __init__(self, name: str, shortdesc: str, longdesc: str, options: tuple[FenceOption, ...],
                 connect: Callable, check: Callable[[FenceOptions], list[str]] = _no_checks,
                 vendor_url: str = "", version: str = "0.1.0", diag: bool = False) -> None:
        names = [option.name for option in options]
        if len(names) != len(set(names)):
            raise ValueError(f"{name}: an option is declared twice")
        super().__init__(name=name, shortdesc=shortdesc, longdesc=longdesc, options=tuple(options),
                         connect=connect, check=check, vendor_url=vendor_url, version=version, diag=diag)

    def actions(self) -> tuple[str, ...]:
        """The actions its metadata and man page publish (list is not one: it only prints a notice)."""
        return ("on", "off", "reboot", "status", "monitor", "metadata", "manpage", "validate-all") + \
            (("diag",) if self.diag else ())

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

def _value(opts: FenceOptions, name: str, default=None):
    """An option's value, or default for an agent that does not declare it."""
    try:
        return opts[name]
    except KeyError:
        return default


def verbosity(opts: FenceOptions | None) -> int:
    """How much a run logs: verbose_level when set, else 1 with verbose, else 0 (as fence-agents)."""
    if opts is None:
        return 0
    level = _value(opts, "verbose_level")
    if level is not None:
        return level
    return 1 if opts.verbose else 0


def step_deadline(opts: FenceOptions, deadline: Deadline, seconds: float) -> Deadline:
    """The deadline of one step bounded by seconds (login_timeout, power_timeout); with disable_timeout only the
    action's own (fence_timeout)."""
    if _value(opts, "disable_timeout"):
        return deadline
    return deadline.sub(seconds)


def _make_logger(agent: FenceAgent, opts: FenceOptions | None, stderr, secrets: Iterable[Secret]) -> FenceLog:
    """A per-run log: stderr (warnings, or everything with verbose), debug_file (everything)."""
    try:
        return FenceLog(agent.name, secrets, stderr, verbose=verbosity(opts) >= 1,
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
    pause = _value(opts, "stonith_status_sleep")
    # A fixed pause when stonith_status_sleep says so; else a short backoff that sees a change within 0.5 s.
    pace = {"first": pause, "factor": 1.0, "longest": pause} if pause else {"first": 0.02, "factor": 1.7,
                                                                            "longest": 0.5}
    try:
        poll(step_deadline(opts, deadline, opts.power_timeout), lambda: True if device.is_on() == want_on else None,
             what=f"power {state}", **pace)
    except DeadlineExceeded:
        bound = opts.fence_timeout if _value(opts, "disable_timeout") else min(opts.power_timeout, opts.fence_timeout)
        raise FenceError(TIMEOUT, f"power did not turn {state} within {bound:g} s") from None
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
        if action == "diag":
            # Not verifiable: the interrupt's effect (a crash dump, a panic) is the target's business.
            if not device.is_on():
                log.warning("power is off: no diagnostic interrupt sent")
                out.write("Success: Already OFF\n")
                return FenceExit.SUCCESS
            device.control("diag")
            out.write("Success: Diagnostic interrupt sent\n")
            return FenceExit.SUCCESS
        if action == "on":
            _set_power(device, True, opts, deadline, log, attempts=opts.retry_on)
        elif action == "off":
            _set_power(device, False, opts, deadline, log)
        else:
            _reboot(device, opts, deadline, log, _cycles(agent, opts))
    out.write("Success: Rebooted\n" if action == "reboot" else f"Success: Powered {action.upper()}\n")
    return FenceExit.SUCCESS


# Long enough for every configuration problem at once (each is cut to MAX_PROBLEM characters).
MAX_ERROR_LINE = 2000


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
        if action in ("metadata", "manpage"):
            # Documentation never depends on the other options being valid.
            from hamail.fence.metadata import manpage, metadata_xml
            stdout.write(metadata_xml(agent).decode() if action == "metadata" else manpage(agent))
            stdout.flush()
            return FenceExit.SUCCESS
        opts, problems = typed(agent.options, raw)
        try:
            log = _make_logger(agent, opts, stderr, _secrets(opts, raw, agent))
        except UsageError as exc:
            problems.append(exc.message)
        # Every problem at once, in one line: the admin fixes them in one go.
        problems += _validate(agent, opts)
        if problems:
            raise UsageError("; ".join(problems))
        for key in ignored:
            log.debug("ignoring unknown key %s", key)
        if opts.verbose and _value(opts, "verbose_level") == 0:
            log.warning("verbose is ignored: verbose_level=0")
        action = opts.action
        # Said where the admin looks (validate-all: pcs --agent-validation, crm configure verify); at every other
        # action only in the debug log, or a migrated configuration would log it at each monitor.
        say = log.warning if action == "validate-all" else log.info
        for option in agent.options:
            if option.ignored and opts.given(option.name) and opts[option.name] is not False:
                say("%s is accepted for compatibility and ignored: %s", option.name, option.ignored)
        if action == "validate-all":
            return FenceExit.SUCCESS
        if action in ("list", "list-status"):
            # As fence_ipmilan: a notice and success, without reaching the device (its metadata offers no list,
            # so Pacemaker never asks for one unless told to).
            stdout.write(f"NOTICE: {agent.name} has no list: each device fences one machine; configure "
                         "pcmk_host_list or pcmk_host_map on the stonith resource\n")
            return FenceExit.SUCCESS
        opts = _address_from_plug(agent, opts, log)
        if agent.offers("port_as_ip") and not opts.ip:
            if action == "monitor":
                log.info("monitor: port_as_ip without ip: no device to reach until a target's plug names one")
                return FenceExit.SUCCESS
            raise UsageError(f"{action}: no device address: port_as_ip is set but no plug names the device "
                             "(Pacemaker passes it from pcmk_host_map)")
        deadline = Deadline.after(opts.fence_timeout, clock)
        opts = resolve_password(opts, runner or CommandRunner(), deadline)
        log = _make_logger(agent, opts, stderr, _secrets(opts, raw, agent))
        if action in ("off", "reboot", "diag") and opts.delay > 0:
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


def _address_from_plug(agent: FenceAgent, opts: FenceOptions, log: FenceLog) -> FenceOptions:
    """With port_as_ip, the device's address is the target's plug (as fence-agents: it wins over ip)."""
    if not (agent.offers("port_as_ip") and opts.port_as_ip and opts.plug):
        return opts
    if opts.ip and opts.ip != opts.plug:
        log.info("port_as_ip: using plug %s as the device address instead of ip %s", opts.plug, opts.ip)
    return opts.replace(ip=opts.plug)


def _validate(agent: FenceAgent, opts: FenceOptions) -> list[str]:
    """Cross-option rules: required options, then the agent's own checks; every problem found."""
    problems = []
    for option in agent.options:
        if option.param.required and opts[option.name] in (None, "") and option.name != "action":
            problems.append(f"{option.name} is required")
    if agent.offers("port_as_ip") and not opts.ip and not opts.port_as_ip:
        problems.append("ip is required (or port_as_ip=1, so that plug names the device)")
    if opts.action == "diag" and not agent.diag:
        problems.append("action: diag is not offered: this agent's device cannot send a diagnostic interrupt")
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
