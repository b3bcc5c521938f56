# SPDX-License-Identifier: GPL-2.0-or-later
"""The OCF resource-agent contract: environment, context, exit reasons and action dispatch."""

from __future__ import annotations

import os
import sys

from hamail.ocf.exitcodes import OCFExit
from hamail.ocf.log import Log
from hamail.ocf import trace as tracing
from hamail.ocf.metadata import build_metadata, published_params
from hamail.pacemaker import PacemakerError, attribute_target
from hamail.params import ParamTable
from hamail.system.clock import Deadline, DeadlineExceeded, SystemClock
from hamail.system.log import Scrubber
from hamail.system.runner import CommandNotFound, CommandRunner, CommandTimeout

# Agents start every few seconds on every node: no dataclasses/typing/logging/subprocess imports
# here; they load only when an action needs them.

__all__ = ["OCFError", "ConfigError", "NotInstalled", "OCFEnv", "Context", "Agent", "run"]

class OCFError(Exception):
    """An action failed with a specific OCF code and a one-line reason for the operator."""

    def __init__(self, code: OCFExit, reason: str) -> None:
        super().__init__(reason)
        self.code = OCFExit(code)
        self.reason = reason


class ConfigError(OCFError):
    """The configuration is wrong: fatal for the resource everywhere (OCF_ERR_CONFIGURED)."""

    def __init__(self, reason: str) -> None:
        super().__init__(OCFExit.ERR_CONFIGURED, reason)


class NotInstalled(OCFError):
    """Software or files the agent needs are missing on this node (OCF_ERR_INSTALLED)."""

    def __init__(self, reason: str) -> None:
        super().__init__(OCFExit.ERR_INSTALLED, reason)


def _int(environ, name: str, default: int = 0) -> int:
    try:
        return int(environ.get(name, "") or default)
    except ValueError:
        return default


class OCFEnv:
    """What Pacemaker tells an agent through the environment, other than instance parameters."""

    __slots__ = ("raw", "instance", "type", "provider", "interval_ms", "timeout_ms", "check_level",
                 "exit_reason_prefix")

    def __init__(self, raw, instance: str, type: str, provider: str, interval_ms: int, timeout_ms: int,
                 check_level: int, exit_reason_prefix: str) -> None:
        self.raw, self.instance, self.type, self.provider = raw, instance, type, provider
        self.interval_ms, self.timeout_ms, self.check_level = interval_ms, timeout_ms, check_level
        self.exit_reason_prefix = exit_reason_prefix

    @classmethod
    def from_environ(cls, environ, agent_name: str) -> OCFEnv:
        """Read the OCF variables, tolerating their absence (agents are also run by hand)."""
        level = _int(environ, "OCF_CHECK_LEVEL")
        return cls(
            raw=environ,
            instance=environ.get("OCF_RESOURCE_INSTANCE", "") or agent_name,
            type=environ.get("OCF_RESOURCE_TYPE", "") or agent_name,
            provider=environ.get("OCF_RESOURCE_PROVIDER", "hamail") or "hamail",
            interval_ms=_int(environ, "OCF_RESKEY_CRM_meta_interval"),
            timeout_ms=_int(environ, "OCF_RESKEY_CRM_meta_timeout"),
            check_level=level if level in (0, 10, 20) else 0,
            exit_reason_prefix=environ.get("OCF_EXIT_REASON_PREFIX", "ocf-exit-reason:"),
        )

    @property
    def is_probe(self) -> bool:
        """A monitor with interval 0: Pacemaker asks whether anything runs, not whether it is healthy."""
        return self.interval_ms == 0

    def meta(self, name: str, default: str = "") -> str:
        """A meta attribute (OCF_RESKEY_CRM_meta_<name>, dashes as underscores)."""
        return self.raw.get("OCF_RESKEY_CRM_meta_" + name.replace("-", "_"), default)

    @property
    def clone_base(self) -> str:
        """The resource name without a clone instance suffix (galera:1 -> galera)."""
        return self.instance.split(":", 1)[0]

    @property
    def node_name(self) -> str:
        """This node's name as Pacemaker knows it (falls back to the host name)."""
        return self.meta("on_node") or os.uname().nodename

    @property
    def attribute_target(self) -> str:
        """The node this instance's node attributes and promotion score belong to (a bundle's host, or node_name)."""
        return attribute_target(self.raw, self.node_name)


class Context:
    """Everything one action of one agent needs, handed to the action functions.

    spec (AgentSpec), action (name), env (OCFEnv), config (params.Config), config_errors (list of
    ParamError), deadline (system.clock.Deadline), runner (system.runner.CommandRunner), clock, log (ocf.log.Log).
    """

    __slots__ = ("spec", "action", "env", "config", "config_errors", "deadline", "runner", "clock", "log")

    def __init__(self, spec, action: str, env: OCFEnv, config, config_errors: list, deadline: Deadline,
                 runner: CommandRunner, clock, log) -> None:
        self.spec, self.action, self.env, self.config = spec, action, env, config
        self.config_errors, self.deadline, self.runner, self.clock, self.log = (
            config_errors, deadline, runner, clock, log)

    def run(self, argv, **kwargs):
        """Run a command bounded by this action's deadline."""
        kwargs.setdefault("deadline", self.deadline)
        return self.runner.run(argv, **kwargs)


class Agent:
    """An agent: its declarations (AgentSpec), action functions by name, and a validator beyond types."""

    __slots__ = ("spec", "actions", "validate")

    def __init__(self, spec, actions, validate=None) -> None:
        self.spec, self.actions, self.validate = spec, dict(actions), validate

    def usage(self) -> str:
        """The usage line and parameter help."""
        names = sorted(set(self.actions) | {"meta-data", "validate-all", "usage"})
        params = ParamTable(*published_params(self.spec.params)).help_text()
        return (f"usage: {self.spec.name} {{{'|'.join(names)}}}\n\n{self.spec.shortdesc}\n\n"
                f"Parameters (as OCF_RESKEY_<name> environment variables):\n{params}\n")


def run(agent: Agent, argv, environ=None, *, stdout=None, stderr=None, runner=None, clock=None) -> int:
    """Dispatch one OCF action and return its exit code; never raises, never prints a traceback."""
    environ = os.environ if environ is None else environ
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    action = argv[1] if len(argv) > 1 else ""
    if len(argv) != 2:
        stderr.write(agent.usage())
        return OCFExit.ERR_ARGS
    if action == "meta-data":
        stdout.write(build_metadata(agent.spec).decode())
        return OCFExit.SUCCESS
    if action in ("usage", "help", "--help", "-h"):
        stdout.write(agent.usage())
        return OCFExit.SUCCESS
    if action not in agent.actions and action != "validate-all":
        stderr.write(agent.usage())
        _reason(stderr, environ, f"action {action!r} is not implemented by {agent.spec.name}")
        return OCFExit.ERR_UNIMPLEMENTED

    clock = clock or SystemClock()
    env = OCFEnv.from_environ(environ, agent.spec.name)
    config, errors = agent.spec.params.parse(environ)
    scrubber = Scrubber(config.secrets())
    log = Log(f"{env.type}({env.instance})", environ, config.secrets(), stderr)
    deadline = Deadline.for_operation(env.timeout_ms, agent.spec.action_timeout(action), clock)
    runner = runner or CommandRunner(environ)
    # Children (a long-running mariadbd, whose /proc/PID/environ its own user can read; crm_attribute)
    # never need private parameters and must not carry them.
    private = [p.env_name for p in agent.spec.params if p.private]
    runner.hide_variables(private)
    trace = tracing.start(environ, env, action, scrubber, private, log) if tracing.wanted(environ) else None
    if trace is not None:
        tracing.trace_commands(runner, log)
    ctx = Context(agent.spec, action, env, config, errors, deadline, runner, clock, log)
    if trace is None:
        return _guarded(agent, ctx, stderr, scrubber)
    try:
        code = _guarded(agent, ctx, stderr, scrubber)
        trace.line(f"exit code {code} ({OCFExit(code).name if code in OCFExit else 'not an OCF code'})")
        return code
    finally:
        trace.close()


def _guarded(agent: Agent, ctx: Context, stderr, scrubber: Scrubber) -> int:
    """The action's exit code, every failure turned into a code and a one-line reason."""
    action, log = ctx.action, ctx.log
    try:
        return int(_dispatch(agent, ctx))
    except NotInstalled as exc:
        return _missing(ctx, stderr, scrubber, exc.reason)
    except OCFError as exc:
        return _fail(ctx, stderr, scrubber, exc.code, exc.reason)
    except DeadlineExceeded as exc:
        return _fail(ctx, stderr, scrubber, OCFExit.ERR_GENERIC, f"{action}: {exc}")
    except CommandTimeout as exc:
        return _fail(ctx, stderr, scrubber, OCFExit.ERR_GENERIC, f"{action}: {exc}")
    except PacemakerError as exc:  # the cluster did not answer: retryable
        return _fail(ctx, stderr, scrubber, OCFExit.ERR_GENERIC, f"{action}: {exc}")
    except CommandNotFound as exc:
        return _missing(ctx, stderr, scrubber, str(exc))
    except Exception as exc:  # the contract: a one-line reason, the traceback only in the debug log
        import traceback
        log.debug("unexpected exception in %s:\n%s", action, traceback.format_exc())
        return _fail(ctx, stderr, scrubber, OCFExit.ERR_GENERIC,
                     f"internal error in {action}: {type(exc).__name__}: {_one_line(str(exc))}")


def _dispatch(agent: Agent, ctx: Context) -> int:
    """Validate as the action requires, then call its function."""
    action = ctx.action
    if action == "stop":
        return _stop(agent, ctx)
    if action == "notify":
        return _notify(agent, ctx)
    _validate(agent, ctx)
    if action == "validate-all":
        return OCFExit.SUCCESS
    return agent.actions[action](ctx)


def _validate(agent: Agent, ctx: Context) -> None:
    """Every parameter problem at once, each naming its parameter, in one reason (logged once, by the caller);
    values the upstream agent tolerates are warned about where a configuration takes effect."""
    if ctx.config_errors:
        raise ConfigError("; ".join(str(error) for error in ctx.config_errors))
    if ctx.action in ("start", "validate-all", "reload-agent"):
        for warning in ctx.config.tolerated:
            ctx.log.warning("%s", warning)
    if agent.validate:
        agent.validate(ctx)


def _stop(agent: Agent, ctx: Context) -> int:
    """stop must succeed when the configuration is broken and nothing of ours can run."""
    valid = True
    try:
        _validate(agent, ctx)
    except OCFError as exc:
        valid = False
        ctx.log.warning("stop with invalid configuration (%s): stopping what can be identified", exc.reason)
    try:
        return agent.actions["stop"](ctx)
    except OCFError as exc:
        if not valid and exc.code in (OCFExit.ERR_ARGS, OCFExit.ERR_CONFIGURED, OCFExit.ERR_INSTALLED):
            ctx.log.warning("stop: %s; nothing of ours can be running: success", exc.reason)
            return OCFExit.SUCCESS
        raise


def _notify(agent: Agent, ctx: Context) -> int:
    """notify always returns success; failures are logged."""
    try:
        agent.actions["notify"](ctx)
    except Exception as exc:  # notify must never fail the transition
        import traceback
        ctx.log.error("notify failed: %s: %s", type(exc).__name__, _one_line(str(exc)))
        ctx.log.debug("%s", traceback.format_exc())
    return OCFExit.SUCCESS


def _one_line(text: str) -> str:
    return " ".join(text.split())[:1000]  # long enough for every problem of a badly broken configuration


def _reason(stderr, environ, text: str) -> None:
    prefix = environ.get("OCF_EXIT_REASON_PREFIX", "ocf-exit-reason:")
    stderr.write(f"{prefix}{_one_line(text)}\n")
    stderr.flush()


def _missing(ctx: Context, stderr, scrubber: Scrubber, reason: str) -> int:
    """The one place that decides what software or files missing on this node mean.

    A probe reports "not running": nothing of ours can run where the software is absent, and a failed probe
    would make Pacemaker stop the resource everywhere. Any other action fails with OCF_ERR_INSTALLED, which
    bans the resource from this node only. Agents raise NotInstalled; the runner raises CommandNotFound.
    """
    if ctx.action == "monitor" and ctx.env.is_probe:
        ctx.log.info("probe: %s: reporting not running", scrubber.scrub(reason))
        return OCFExit.NOT_RUNNING
    return _fail(ctx, stderr, scrubber, OCFExit.ERR_INSTALLED, reason)


def _fail(ctx: Context, stderr, scrubber: Scrubber, code: OCFExit, reason: str) -> int:
    reason = scrubber.scrub(_one_line(reason))
    ctx.log.error("%s: %s", ctx.action, reason)
    _reason(stderr, ctx.env.raw, reason)
    if ctx.log.trace is not None:
        ctx.log.trace.line(f"exit reason: {reason}")
    return int(code)


def main(agent: Agent) -> None:
    """Entry point of an agent executable."""
    sys.exit(run(agent, sys.argv))
