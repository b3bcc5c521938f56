"""The fence-agent contract: one typed option table gives stdin and command-line parsing, metadata, help and
validation; actions on/off/reboot/status/monitor/metadata/validate-all run against a PowerDevice with exact
exit codes, bounded waits and stdout kept for what the action prints.

The library never exits and never touches sys.argv: `run()` takes argv, stdin and streams and returns the
exit code, so one process (a test) can run many actions.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence

from hamail.system.clock import Clock, Deadline, DeadlineExceeded, SystemClock, poll
from hamail.fence.exitcodes import FenceExit
from hamail.fence.log import FenceLog
from hamail.system.log import Scrubber
from hamail.params import Config, Kind, Param
from hamail.system.runner import CommandNotFound, CommandRunner, CommandTimeout
from hamail.secret import Secret

# Every fencing and every stonith monitor starts a process: this module avoids dataclasses, typing, logging,
# getopt and shlex at import (~45 ms together); getopt and shlex are imported where they are used.

__all__ = [
    "FenceOption", "fence_option", "FenceOptions", "FenceError", "UsageError", "PowerDevice", "FenceAgent",
    "COMMON_OPTIONS", "ACTIONS", "parse_stdin", "parse_argv", "metadata_xml", "help_text", "run",
]

# Error kinds: the first word of the one line printed on failure.
UNREACHABLE, AUTHENTICATION, PRIVILEGE, TIMEOUT, BMC, CONFIG, UNSUPPORTED = (
    "unreachable", "authentication", "privilege", "timeout", "bmc", "configuration", "unsupported")

ACTIONS = ("on", "off", "reboot", "status", "monitor", "list", "list-status", "metadata", "validate-all")
MAX_STDIN_BYTES = 1 << 20


class FenceError(Exception):
    """An action failed; kind is one of unreachable/authentication/privilege/timeout/bmc/... ."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


class UsageError(FenceError):
    """The options are malformed or invalid."""

    def __init__(self, message: str) -> None:
        super().__init__(CONFIG, message)


class _Frozen:
    """A small immutable record: keyword fields named by __slots__, equality by value, replace()."""

    __slots__ = ()

    def __init__(self, **fields) -> None:
        for slot in self.__slots__:
            object.__setattr__(self, slot, fields[slot])

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, s) for s in self.__slots__))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({getattr(self, 'name', '')!r})"

    def replace(self, **changes):
        """A copy with some fields changed."""
        fields = {slot: getattr(self, slot) for slot in self.__slots__}
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        fields.update(changes)
        return type(self)(**fields)


class FenceOption(_Frozen):
    """One option of a fence agent: the typed parameter plus its spellings (aliases, getopt short/long)."""

    # param: the typed Param; short: getopt letter ("a"); long: getopt long name ("ip"); placeholder: what
    # metadata and help show after "=" ([ip], None for flags); aliases: legacy stdin names, the first is
    # published as obsoletes=; ignored: non-empty if accepted for compatibility only, saying why.
    __slots__ = ("param", "short", "long", "placeholder", "aliases", "ignored")

    def __init__(self, param: Param, short: str | None = None, long: str | None = None,
                 placeholder: str | None = None, aliases: tuple[str, ...] = (), ignored: str = "") -> None:
        super().__init__(param=param, short=short, long=long, placeholder=placeholder, aliases=tuple(aliases),
                         ignored=ignored)

    @property
    def name(self) -> str:
        """The canonical (stdin) name."""
        return self.param.name

    @property
    def is_flag(self) -> bool:
        """Whether the command line takes it without a value (booleans)."""
        return self.param.kind is Kind.BOOLEAN

    def mixed(self) -> str:
        """The getopt spelling fence-agents publishes: '-a, --ip=[ip]'."""
        value = "" if self.is_flag else f"=[{self.placeholder or 'value'}]"
        parts = []
        if self.short:
            parts.append(f"-{self.short}")
        if self.long:
            parts.append(f"--{self.long}{value}")
        return ", ".join(parts)


def fence_option(name: str, kind: Kind, desc: str, *, short: str | None = None, long: str | None = None,
         placeholder: str | None = None, aliases: tuple[str, ...] = (), default: str | None = None,
         required: bool = False, private: bool = False, choices: tuple[str, ...] = (),
         ignored: str = "", minimum: int | None = None, longdesc: str = "") -> FenceOption:
    """A FenceOption, written compactly."""
    param = Param(name, kind, desc, longdesc=longdesc, default=default, required=required, private=private,
                  choices=choices, minimum=minimum)
    return FenceOption(param, short, long if long is not None else name.replace("_", "-"), placeholder,
                       aliases, ignored)


# Options every hamail fence agent has (the fence-agents standard set that makes sense for us).
COMMON_OPTIONS: tuple[FenceOption, ...] = (
    fence_option("action", Kind.SELECT, "Fencing action", short="o", placeholder="action", default="reboot",
         choices=ACTIONS),
    fence_option("plug", Kind.STRING, "Ignored: this agent fences the one machine its BMC controls",
         short="n", placeholder="id", aliases=("port",),
         longdesc="Pacemaker passes the target here; it is ignored. Configure pcmk_host_list instead."),
    fence_option("delay", Kind.DURATION, "Wait X seconds before fencing is started", placeholder="seconds",
         default="0"),
    fence_option("power_wait", Kind.DURATION, "Wait X seconds after issuing ON/OFF before checking the state",
         placeholder="seconds", default="0",
         longdesc="0 (default) checks at once with a short backoff; fence_ipmilan's default was a fixed 2."),
    fence_option("power_timeout", Kind.DURATION, "Test X seconds for status change after ON/OFF",
         placeholder="seconds", default="20"),
    fence_option("login_timeout", Kind.DURATION, "Give up reaching and logging in to the device after X seconds",
         placeholder="seconds", default="5"),
    fence_option("fence_timeout", Kind.DURATION, "Overall bound of one action in seconds, delay included",
         placeholder="seconds", default="60",
         longdesc="Keep it at or below Pacemaker's fencing timeout (pcmk_off_timeout, default 60 s)."),
    fence_option("retry_on", Kind.INTEGER, "Count of attempts to retry power on", placeholder="attempts",
         default="1", minimum=1),
    fence_option("verbose", Kind.BOOLEAN, "Verbose mode: log each step to stderr", short="v"),
    fence_option("debug_file", Kind.STRING, "Write debug information to given file", short="D",
         placeholder="debugfile", aliases=("debug",)),
    fence_option("quiet", Kind.BOOLEAN, "Disable logging to stderr except the final error line", short="q"),
    fence_option("version", Kind.BOOLEAN, "Display version information and exit", short="V"),
    fence_option("help", Kind.BOOLEAN, "Display help and exit", short="h"),
)


class FenceOptions(Config):
    """The typed, frozen values of one invocation (attribute access: opts.power_timeout is a float)."""

    __slots__ = ()


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


class FenceAgent(_Frozen):
    """One fence agent: its name, documentation, options and how to connect to its device.

    connect(opts, deadline, log) returns a context manager yielding a PowerDevice; check(opts) returns the
    agent's own validation problems.
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


# -- parsing ------------------------------------------------------------------------------------------

def _canonical(options: Sequence[FenceOption]) -> dict[str, FenceOption]:
    """Every accepted stdin name (canonical and legacy) to its option."""
    names: dict[str, FenceOption] = {}
    for option in options:
        names[option.name] = option
        for alias in option.aliases:
            names.setdefault(alias, option)
    # fence-agents' stdin also accepts 'option' for 'action'.
    names.setdefault("option", next(o for o in options if o.name == "action"))
    return names


def parse_stdin(options: Sequence[FenceOption], text: str) -> tuple[dict[str, str], list[str]]:
    """Raw values from Pacemaker's key=value lines, and the names of ignored keys.

    Comments and blank lines are skipped, the last duplicate wins, unknown keys are ignored (Pacemaker
    passes nodename and others). A canonical name beats its legacy alias whatever the order. Values are
    never echoed anywhere: a malformed line could hold a password.
    """
    names = _canonical(options)
    raw: dict[str, str] = {}
    via_alias: set[str] = set()
    ignored: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        option = names.get(key) if sep else None
        if option is None:
            ignored.append(key if sep and key.isidentifier() else "(malformed line)")
            continue
        if key != option.name:
            if option.name in raw and option.name not in via_alias:
                continue  # the canonical spelling was given: it wins over the legacy one
            via_alias.add(option.name)
        else:
            via_alias.discard(option.name)
        raw[option.name] = value
    return raw, ignored


def parse_argv(options: Sequence[FenceOption], argv: Sequence[str]) -> dict[str, str]:
    """Raw values from the command line as fence-agents accepts it (-o off -a ip, --action=off --ip=ip)."""
    shorts = ""
    longs = []
    by_short: dict[str, FenceOption] = {}
    by_long: dict[str, FenceOption] = {}
    for option in options:
        if option.short:
            shorts += option.short + ("" if option.is_flag else ":")
            by_short["-" + option.short] = option
        if option.long:
            longs.append(option.long + ("" if option.is_flag else "="))
            by_long["--" + option.long] = option
    import getopt  # only for command-line use; pacemaker-fenced passes stdin

    try:
        pairs, rest = getopt.gnu_getopt(list(argv), shorts, longs)
    except getopt.GetoptError as exc:
        # getopt's message names the option, never a value.
        raise UsageError(f"{exc.msg} (see --help)") from None
    if rest:
        raise UsageError(f"unexpected argument{'s' if len(rest) > 1 else ''} on the command line (see --help)")
    raw: dict[str, str] = {}
    for flag, value in pairs:
        option = by_short.get(flag) or by_long[flag]
        raw[option.name] = "1" if option.is_flag else value
    return raw


def convert(options: Sequence[FenceOption], raw: Mapping[str, str]) -> FenceOptions:
    """Typed values (defaults filled in); UsageError naming the first bad option (never a private value)."""
    values: dict[str, object] = {}
    given: set[str] = set()
    for option in options:
        param = option.param
        text = raw.get(option.name, "")
        if text != "":
            try:
                values[param.name] = param.convert(text)
            except ValueError as exc:
                raise UsageError(f"{param.name}: {exc}") from None
            given.add(param.name)
        else:
            values[param.name] = param.convert(param.default) if param.default is not None else None
    return FenceOptions(values, frozenset(given))


# -- metadata and help --------------------------------------------------------------------------------

def _content_type(param: Param) -> str:
    """fence-agents' content types: durations are published as 'second'."""
    return {Kind.DURATION: "second", Kind.PORT: "integer", Kind.PATH: "string"}.get(param.kind, param.kind.value)


def metadata_xml(agent: FenceAgent) -> bytes:
    """The agent's metadata in the fence-agents shape (lib/metadata.rng), built with lxml."""
    from lxml import etree  # lazy: only metadata needs lxml

    root = etree.Element("resource-agent", name=agent.name, shortdesc=agent.shortdesc)
    etree.SubElement(root, "longdesc").text = agent.longdesc
    etree.SubElement(root, "vendor-url").text = agent.vendor_url
    parameters = etree.SubElement(root, "parameters")

    def add(name: str, option: FenceOption, **extra: str) -> None:
        """One <parameter> element (the canonical name or a legacy alias)."""
        param = option.param
        # A legacy alias is never required: its canonical name carries the requirement.
        required = "1" if param.required and name == option.name else "0"
        element = etree.SubElement(parameters, "parameter", name=name, unique="0", required=required, **extra)
        etree.SubElement(element, "getopt", mixed=option.mixed())
        content = etree.SubElement(element, "content", type=_content_type(param))
        if param.default is not None:
            content.set("default", param.default)
        for choice in param.choices:
            etree.SubElement(content, "option", value=choice)
        text = param.shortdesc + (f" (ignored: {option.ignored})" if option.ignored else "")
        etree.SubElement(element, "shortdesc", lang="en").text = text

    for option in agent.options:
        if option.name in ("help", "version"):
            continue
        extra = {"obsoletes": option.aliases[0]} if option.aliases else {}
        add(option.name, option, **extra)
        for alias in option.aliases:
            add(alias, option, deprecated="1")
    actions = etree.SubElement(root, "actions")
    for name in ("on", "off", "reboot", "status", "monitor", "metadata", "validate-all"):
        # 'on' is not automatic: Pacemaker must not unfence with this agent unless told to.
        etree.SubElement(actions, "action", name=name, **({"automatic": "0"} if name == "on" else {}))
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")


def help_text(agent: FenceAgent) -> str:
    """Usage text in fence-agents' layout."""
    lines = ["Usage:", f"\t{agent.name} [options]", "Options:"]
    for option in agent.options:
        param = option.param
        desc = param.shortdesc
        if param.choices:
            desc += f" ({'|'.join(param.choices)})"
        if param.default is not None and not param.private and param.default not in ("", "0") \
                and not option.is_flag:
            desc += f" (default {param.default})"
        if option.ignored:
            desc += f" [ignored: {option.ignored}]"
        lines.append(f"   {option.mixed():<30} {desc}")
    lines.append("")
    lines.append("With no options, key=value lines are read from stdin (as pacemaker-fenced sends them).")
    return "\n".join(lines) + "\n"


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


def _reboot(device: PowerDevice, opts: FenceOptions, deadline: Deadline, log: FenceLog) -> None:
    """Off (verified) then on; with method=cycle a running target is power-cycled instead."""
    if opts.method == "cycle" and device.is_on():
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
            _reboot(device, opts, deadline, log)
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
            stdout.write(help_text(agent))
            return FenceExit.SUCCESS
        if raw.get("version") == "1" and argv:
            stdout.write(f"{agent.name} {agent.version}\n")
            return FenceExit.SUCCESS
        action = raw.get("action", agent.option("action").param.default or "")
        if action == "metadata":
            # Metadata never depends on the other options being valid.
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
