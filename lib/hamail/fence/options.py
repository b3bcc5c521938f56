# SPDX-License-Identifier: GPL-2.0-or-later
"""A fence agent's options: one typed table gives stdin and command-line parsing and typed values; the error
kinds every agent reports with.

COMMON_OPTIONS are the standard options every hamail fence agent has; METHOD_OPTION is the standard one an
agent offers when its device can power-cycle (the core reboots with cycle only when it is declared and set);
with_port_as_ip() gives the table of an agent whose device is reached at an address (ip) and has no plugs, so
that one stonith device can serve every node through pcmk_host_map (plug names each node's BMC).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hamail.params import Config, Kind, Param

# Every fencing and every stonith monitor starts a process: this module avoids dataclasses, typing and getopt
# at import; getopt is imported where it is used.

__all__ = [
    "UNREACHABLE", "AUTHENTICATION", "PRIVILEGE", "TIMEOUT", "BMC", "CONFIG", "UNSUPPORTED", "ACTIONS",
    "FenceError", "UsageError", "Frozen", "FenceOption", "fence_option", "COMMON_OPTIONS", "METHOD_OPTION",
    "PORT_AS_IP_OPTIONS", "with_port_as_ip", "FenceOptions", "parse_stdin", "parse_argv", "typed", "convert",
]

# Error kinds: the first word of the one line printed on failure.
UNREACHABLE, AUTHENTICATION, PRIVILEGE, TIMEOUT, BMC, CONFIG, UNSUPPORTED = (
    "unreachable", "authentication", "privilege", "timeout", "bmc", "configuration", "unsupported")

ACTIONS = ("on", "off", "reboot", "status", "monitor", "list", "list-status", "metadata", "manpage", "validate-all",
           "diag")


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


class Frozen:
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


class FenceOption(Frozen):
    """One option of a fence agent: the typed parameter plus its spellings (aliases, getopt short/long)."""

    # param: the typed Param; short: getopt letter ("a"); long: getopt long name ("ip"); placeholder: what
    # metadata and help show after "=" ([ip], None for flags); aliases: legacy stdin names, the first is
    # published as obsoletes=; ignored: non-empty if accepted for compatibility only, saying why; flag: whether
    # the command line takes it without a value (None: booleans do, as fence-agents' flags).
    __slots__ = ("param", "short", "long", "placeholder", "aliases", "ignored", "flag")

    def __init__(self, param: Param, short: str | None = None, long: str | None = None,
                 placeholder: str | None = None, aliases: tuple[str, ...] = (), ignored: str = "",
                 flag: bool | None = None) -> None:
        super().__init__(param=param, short=short, long=long, placeholder=placeholder, aliases=tuple(aliases),
                         ignored=ignored, flag=param.kind is Kind.BOOLEAN if flag is None else flag)

    @property
    def name(self) -> str:
        """The canonical (stdin) name."""
        return self.param.name

    @property
    def is_flag(self) -> bool:
        """Whether the command line takes it without a value (booleans, unless declared otherwise)."""
        return self.flag

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
                 ignored: str = "", minimum: int | None = None, longdesc: str = "",
                 flag: bool | None = None) -> FenceOption:
    """A FenceOption, written compactly."""
    param = Param(name, kind, desc, longdesc=longdesc, default=default, required=required, private=private,
                  choices=choices, minimum=minimum)
    return FenceOption(param, short, long if long is not None else name.replace("_", "-"), placeholder,
                       aliases, ignored, flag)


# Options every hamail fence agent has: fence-agents' standard set. Where a default differs from fence-agents',
# the published description says so and why (pcs stonith describe shows it).
COMMON_OPTIONS: tuple[FenceOption, ...] = (
    fence_option("action", Kind.SELECT, "Fencing action", short="o", placeholder="action", default="reboot",
                 choices=ACTIONS),
    fence_option("plug", Kind.STRING, "Ignored: this agent fences the one machine its device controls",
                 short="n", placeholder="id", aliases=("port",),
                 longdesc="Pacemaker passes the target here; it is ignored. Configure pcmk_host_list instead."),
    fence_option("delay", Kind.DURATION, "Wait X seconds before fencing is started", placeholder="seconds",
                 default="0"),
    fence_option("power_wait", Kind.DURATION,
                 "Wait X seconds after issuing ON/OFF before checking the state. Default 0 (fence_ipmilan: 2): "
                 "the state is polled at once with a short backoff, so a fixed wait only slows fencing down",
                 placeholder="seconds", default="0"),
    fence_option("power_timeout", Kind.DURATION, "Test X seconds for status change after ON/OFF",
                 placeholder="seconds", default="20"),
    fence_option("login_timeout", Kind.DURATION,
                 "Give up reaching and logging in to the device after X seconds", placeholder="seconds",
                 default="5"),
    fence_option("shell_timeout", Kind.DURATION, "Wait X seconds for cmd prompt after issuing command",
                 placeholder="seconds", default="3",
                 ignored="there is no command prompt: each step is bounded by login_timeout, power_timeout and "
                         "fence_timeout"),
    fence_option("disable_timeout", Kind.BOOLEAN,
                 "Disable timeout (true/false): with true, login_timeout and power_timeout no longer bound their "
                 "step and only fence_timeout bounds the action. Default false, also under Pacemaker "
                 "(fence_ipmilan: true when run from Pacemaker 2.0+): fence_timeout already keeps the whole "
                 "action within Pacemaker's timeout, and a reboot whose power-on hangs must give up in time to "
                 "report the verified off as a success rather than be killed as a failure",
                 placeholder="true/false", flag=False),
    fence_option("stonith_status_sleep", Kind.DURATION,
                 "Sleep X seconds between status calls during a STONITH action. Default: a backoff from 0.02 s "
                 "to 0.5 s (fence_ipmilan: 1), so that a change is seen within a fraction of a second",
                 placeholder="seconds"),
    fence_option("fence_timeout", Kind.DURATION, "Overall bound of one action in seconds, delay included",
                 placeholder="seconds", default="60",
                 longdesc="Keep it at or below Pacemaker's fencing timeout (pcmk_off_timeout, default 60 s)."),
    fence_option("retry_on", Kind.INTEGER, "Count of attempts to retry power on", placeholder="attempts",
                 default="1", minimum=1),
    fence_option("plug_separator", Kind.STRING, "Separator for plug parameter when specifying more than 1 plug",
                 placeholder="char", default=",", ignored="plug is never split: one device fences one machine"),
    fence_option("verbose", Kind.BOOLEAN,
                 "Verbose mode: log each step to stderr. Multiple -v flags can be stacked on the command line "
                 "(e.g., -vvv) to increase verbosity", short="v"),
    fence_option("verbose_level", Kind.INTEGER,
                 "Level of debugging detail in output: 0 silences verbose, 1 logs each step, 2 also each request "
                 "to the device and its answer. Defaults to the number of --verbose flags on the command line, or to 1 if "
                 "verbose=1 on stdin", placeholder="level", minimum=0),
    fence_option("debug_file", Kind.STRING, "Write debug information to given file", short="D",
                 placeholder="debugfile", aliases=("debug",)),
    fence_option("quiet", Kind.BOOLEAN, "Disable logging to stderr except the final error line", short="q"),
    fence_option("version", Kind.BOOLEAN,
                 "Display version information and exit (command line only: ignored on stdin, where it would "
                 "turn a fencing call into a successful no-op)", short="V"),
    fence_option("help", Kind.BOOLEAN,
                 "Display help and exit (command line only: ignored on stdin, where it would turn a fencing "
                 "call into a successful no-op)", short="h"),
)

# Offered to agents whose device can power-cycle; without it a reboot is always off (verified) then on.
METHOD_OPTION = fence_option("method", Kind.SELECT, "Method to fence: onoff (off, verify, on) or cycle", short="m",
                             placeholder="method", choices=("onoff", "cycle"), default="onoff")

# Offered (through with_port_as_ip) to agents whose device is reached at the address in 'ip' and has no plugs.
PORT_AS_IP_OPTIONS: tuple[FenceOption, ...] = (
    fence_option("plug", Kind.STRING, "IP address or hostname of fencing device (together with --port-as-ip)",
                 short="n", placeholder="ip", aliases=("port",),
                 longdesc="With port_as_ip, the address of the device that fences the target: Pacemaker passes it "
                          "from pcmk_host_map (node1:bmc1;node2:bmc2), so one stonith device serves every node. "
                          "Without port_as_ip it is ignored."),
    fence_option("port_as_ip", Kind.BOOLEAN,
                 'Make "port/plug" to be an alias to IP address: plug names the device to use, and ip is '
                 "optional", short=None,
                 longdesc="A monitor without ip then checks only the configuration: there is no device to reach "
                          "until Pacemaker names a target (fence_ipmilan fails such a monitor)."),
)


def with_port_as_ip(options: Sequence[FenceOption]) -> tuple[FenceOption, ...]:
    """The table with plug redeclared as the device's address and port_as_ip beside it (fence-agents' port_as_ip)."""
    table: list[FenceOption] = []
    for option in options:
        if option.name == "plug":
            table.extend(PORT_AS_IP_OPTIONS)
        else:
            table.append(option)
    if "port_as_ip" not in [option.name for option in table]:
        raise ValueError("with_port_as_ip needs a table that has plug (COMMON_OPTIONS)")
    return tuple(table)


class FenceOptions(Config):
    """The typed, frozen values of one invocation (attribute access: opts.power_timeout is a float)."""

    __slots__ = ()


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
    verbose = 0
    for flag, value in pairs:
        option = by_short.get(flag) or by_long[flag]
        raw[option.name] = "1" if option.is_flag else value
        verbose += option.name == "verbose"
    if verbose > 1 and any(option.name == "verbose_level" for option in options):
        # fence-agents: -vvv is verbose_level 3 unless --verbose-level says otherwise.
        raw.setdefault("verbose_level", str(verbose))
    return raw


MAX_PROBLEM = 160


def _short(problem: str) -> str:
    """One problem, cut to a readable length (a value quoted in it may be garbage of any size)."""
    return problem if len(problem) <= MAX_PROBLEM else problem[:MAX_PROBLEM - 3] + "..."


def typed(options: Sequence[FenceOption], raw: Mapping[str, str]) -> tuple[FenceOptions, list[str]]:
    """Typed values (defaults filled in, also for an invalid value) and every conversion problem, each naming
    its option (never a private value)."""
    values: dict[str, object] = {}
    given: set[str] = set()
    problems: list[str] = []
    for option in options:
        param = option.param
        text = raw.get(option.name, "")
        if text != "":
            try:
                values[param.name] = param.convert(text)
                given.add(param.name)
                continue
            except ValueError as exc:
                problems.append(_short(f"{param.name}: {exc}"))
        values[param.name] = param.convert(param.default) if param.default is not None else None
    return FenceOptions(values, frozenset(given)), problems


def convert(options: Sequence[FenceOption], raw: Mapping[str, str]) -> FenceOptions:
    """Typed values (defaults filled in); one UsageError naming every bad option (never a private value)."""
    opts, problems = typed(options, raw)
    if problems:
        raise UsageError("; ".join(problems))
    return opts
