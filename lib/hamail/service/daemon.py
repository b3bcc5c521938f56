# SPDX-License-Identifier: GPL-2.0-or-later
"""One daemon lifecycle for every service agent: validate with the daemon's own checker, start and wait until it
answers, monitor at three depths, stop gracefully then by force, all within the operation's deadline.

An agent describes its daemon by subclassing Service (where the pid file is, how to check the configuration,
how to start and stop it gracefully, where it listens, how to talk to it) and gets its OCF actions from
`actions(service)`. The rules live here once:

- a pid counts only while that process lives and has one of the daemon's names (a pid file surviving a crash,
  or naming a pid since reused by another program, is stale);
- start: the checker's first error line is the exit reason (OCF_ERR_CONFIGURED); "started" means answering
  (the depth-10 exchange), not "a pid exists";
- monitor: depth 0 the process lives and every listener accepts, 10 a protocol exchange, 20 end to end; a
  probe answers 7 when nothing runs, a recurring monitor fails with a reason when the daemon died under it;
- stop: graceful command (or SIGTERM), then SIGTERM and SIGKILL to the daemon's whole process group, each
  step ending before the stop deadline; a stop always ends with nothing of the daemon left.
"""

from __future__ import annotations

import os

from hamail.ocf import ConfigError, Context, NotInstalled, OCFError, OCFExit
from hamail.service.probes import ProbeFailed
from hamail.system import proc

__all__ = ["Service", "actions", "read_pid_file", "running_pid", "stop_daemon", "wait_until_answering", "validate_all",
           "check_configuration", "probe_depth"]

# How long polls wait between looks at a starting or stopping daemon at most.
POLL_LONGEST = 0.25


class Service:
    """What the shared lifecycle needs to know about one daemon; agents subclass it and override."""

    label = "daemon"   # the daemon's name in messages
    names: tuple = ()  # process names (/proc/PID/comm) a pid from the pid file may have

    def binary(self, ctx: Context) -> str:
        """The program that must exist on this node (NotInstalled otherwise)."""
        raise NotImplementedError

    def pid_file(self, ctx: Context) -> str | None:
        """Where the daemon writes its main pid."""
        return None

    def find_pid(self, ctx: Context) -> int | None:
        """The pid of the running daemon, None when it does not run."""
        path = self.pid_file(ctx)
        return running_pid(path, self.names) if path else None

    def check_argv(self, ctx: Context) -> list | None:
        """The daemon's own configuration checker, run before start and in validate-all (None: none)."""
        return None

    def start_argv(self, ctx: Context) -> list:
        """The command that starts the daemon (it detaches itself unless `foreground`)."""
        raise NotImplementedError

    def foreground(self, ctx: Context) -> bool:
        """Whether start_argv stays in the foreground (then it is spawned and outlives the action)."""
        return False

    def start_env(self, ctx: Context) -> dict | None:
        """Extra environment for the start command."""
        return None

    def stop_argv(self, ctx: Context) -> list | None:
        """The daemon's graceful stop command (None: SIGTERM to its pid)."""
        return None

    def stop_grace(self, ctx: Context) -> float | None:
        """Seconds the graceful stop may take before escalation (None: all but the escalation's reserve)."""
        return None

    def listeners(self, ctx: Context) -> list:
        """The Endpoints that must accept connections (depth 0)."""
        return []

    def exchange(self, ctx: Context, deadline) -> None:
        """Depth 10: one protocol exchange with the daemon; ProbeFailed names the step that failed."""

    def end_to_end(self, ctx: Context, deadline) -> None:
        """Depth 20: a round trip through the service where one makes sense (default: none beyond depth 10)."""

    def check_failure(self, ctx: Context, result) -> str:
        """Why the checker refused the configuration, in one line (default: its first error line; a checker that
        writes its errors elsewhere than stderr, like `postfix check` without a terminal, finds them there)."""
        return result.first_error_line()

    def after_stop(self, ctx: Context) -> None:
        """Tidy what a stopped daemon leaves behind (a stale socket or pid file)."""
        path = self.pid_file(ctx)
        if path and read_pid_file(path) is not None and self.find_pid(ctx) is None:
            _unlink(path)


def read_pid_file(path: str) -> int | None:
    """The number in a pid file (first word), None when it is absent, empty or not a pid."""
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            words = handle.read(64).split()
    except OSError:
        return None
    if not words or not words[0].isdigit() or int(words[0]) <= 1:
        return None
    return int(words[0])


def running_pid(path: str, names: tuple) -> int | None:
    """The pid in path if that process lives and is named one of names (a reused pid is not ours)."""
    pid = read_pid_file(path)
    if pid is None or not proc.alive(pid):
        return None
    return pid if not names or proc.comm(pid) in names else None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _installed(service: Service, ctx: Context) -> None:
    binary = service.binary(ctx)
    if ctx.runner.find(binary) is None:
        raise NotInstalled(f"{service.label}: {binary} is not installed on this node")


def check_configuration(service: Service, ctx: Context) -> None:
    """Run the daemon's checker; its first error line as an OCF_ERR_CONFIGURED reason."""
    argv = service.check_argv(ctx)
    if not argv:
        return
    # The checker reads the configuration as the daemon will: with the daemon's environment (apache's envvars).
    result = ctx.run(argv, timeout=max(1.0, min(30.0, ctx.deadline.remaining())), env=service.start_env(ctx))
    if not result.ok:
        raise ConfigError(f"{os.path.basename(str(argv[0]))} rejects the configuration: "
                          f"{service.check_failure(ctx, result)}")


def probe_depth(service: Service, ctx: Context, deadline, depth: int) -> None:
    """The checks of one monitor depth, in order; ProbeFailed from the first that fails."""
    from hamail.service.probes import accepts, bounded
    # The probes' own socket timeouts end a little before the bound, so that a silent daemon is reported with
    # the protocol step it did not answer; the bound only catches a library that retries past its timeout.
    inner = deadline.sub(max(0.1, deadline.remaining() - min(1.0, deadline.remaining() * 0.1)))
    for endpoint in service.listeners(ctx):
        accepts(endpoint, inner)
    if depth >= 10:
        bounded(lambda: service.exchange(ctx, inner), deadline, f"{service.label} protocol exchange")
    if depth >= 20:
        bounded(lambda: service.end_to_end(ctx, inner), deadline, f"{service.label} end-to-end check")


def wait_until_answering(service: Service, ctx: Context, launched=None) -> int:
    """Poll until the daemon runs and passes the depth-10 exchange; its pid. OCFError when it dies or time runs out."""
    from hamail.system.clock import DeadlineExceeded, poll
    last = ["no pid yet"]

    def answering():
        """The pid once the daemon answers; None while it starts."""
        pid = service.find_pid(ctx)
        if pid is None:
            if launched is not None and launched.poll() is not None:
                raise OCFError(OCFExit.ERR_GENERIC, f"{service.label} exited with status {launched.returncode} "
                               "while starting")
            last[0] = "no running process found"
            return None
        try:
            probe_depth(service, ctx, ctx.deadline.sub(5.0), 10)
        except ProbeFailed as exc:
            # The last poll often finds no time left; keep the failure before it, which says why.
            if exc.step != "probe" or last[0] in ("no pid yet", "no running process found"):
                last[0] = str(exc)
            return None
        return pid
    try:
        return poll(ctx.deadline, answering, what=f"{service.label} to answer", longest=POLL_LONGEST)
    except DeadlineExceeded:
        raise OCFError(OCFExit.ERR_GENERIC, f"{service.label} did not answer before the start timeout "
                       f"(last: {last[0]})") from None


def start(service: Service, ctx: Context) -> int:
    """Start the daemon unless it runs; success once it answers."""
    _installed(service, ctx)
    if service.find_pid(ctx) is not None:
        ctx.log.info("%s already runs: waiting for it to answer", service.label)
        wait_until_answering(service, ctx)
        return OCFExit.SUCCESS
    check_configuration(service, ctx)
    argv = service.start_argv(ctx)
    ctx.log.info("starting %s: %s", service.label, " ".join(str(a) for a in argv))
    launched = None
    if service.foreground(ctx):
        launched = ctx.runner.spawn(argv, env=service.start_env(ctx))
    else:
        result = ctx.run(argv, env=service.start_env(ctx), daemonizes=True)
        if not result.ok:
            raise OCFError(OCFExit.ERR_GENERIC, f"{service.label} failed to start: {result.first_error_line()}")
    wait_until_answering(service, ctx, launched)
    return OCFExit.SUCCESS


def stop_daemon(service: Service, ctx: Context) -> None:
    """Stop the daemon: graceful first, then its whole process group by TERM and KILL, before the deadline."""
    import signal
    from hamail.system.clock import DeadlineExceeded, poll
    pid = service.find_pid(ctx)
    if pid is None:
        return
    group = _group_of(pid)
    # Keep the last quarter of the stop (at least 2 s, at most 10 s) for escalation.
    reserve = min(10.0, max(2.0, ctx.deadline.remaining() * 0.25))
    span = max(0.5, ctx.deadline.remaining() - reserve)
    grace = service.stop_grace(ctx)
    graceful = ctx.deadline.sub(span if grace is None else min(span, max(0.5, grace)))
    argv = service.stop_argv(ctx)
    ctx.log.info("stopping %s (pid %d)", service.label, pid)
    if argv:
        try:
            result = ctx.run(argv, deadline=graceful, env=service.start_env(ctx), daemonizes=True)
            if not result.ok:
                ctx.log.warning("%s: %s", " ".join(str(a) for a in argv), result.first_error_line())
        except Exception as exc:  # a wedged stop command is what escalation is for
            ctx.log.warning("graceful stop of %s failed: %s", service.label, exc)
    else:
        _signal(pid, signal.SIGTERM)

    def gone():
        """True once the daemon and everything in its process group have exited."""
        return True if not proc.alive(pid) and not _group_alive(group) else None
    try:
        poll(graceful, gone, what=f"{service.label} to stop", longest=POLL_LONGEST)
        return
    except DeadlineExceeded:
        pass
    for sig, share in ((signal.SIGTERM, 0.4), (signal.SIGKILL, 1.0)):
        ctx.log.warning("%s (pid %d) still runs: sending %s to its process group", service.label, pid, sig.name)
        _signal(pid, sig)
        if group:
            _signal_group(group, sig)
        try:
            poll(ctx.deadline.sub(max(0.2, ctx.deadline.remaining() * share)), gone,
                 what=f"{service.label} to stop", longest=0.1)
            return
        except DeadlineExceeded:
            continue
    raise OCFError(OCFExit.ERR_GENERIC, f"{service.label} (pid {pid}) survived SIGKILL until the stop deadline")


def _group_of(pid: int) -> int | None:
    """The daemon's process group, if it is not ours (never signal the agent's own group)."""
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return None
    return group if group > 1 and group != os.getpgrp() else None


def _group_alive(group: int | None) -> bool:
    if group is None:
        return False
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg(0) also succeeds for zombies only: look for a member that has not exited.
    return any(_in_group(pid, group) for pid in proc.pids())


def _in_group(pid: int, group: int) -> bool:
    info = proc.stat(pid)
    if info is None or info.zombie:
        return False
    try:
        return os.getpgid(pid) == group
    except ProcessLookupError:
        return False


def _signal(pid: int, sig) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _signal_group(group: int, sig) -> None:
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        pass


def stop(service: Service, ctx: Context) -> int:
    """stop: the daemon stopped (success when it was not running)."""
    stop_daemon(service, ctx)
    service.after_stop(ctx)
    return OCFExit.SUCCESS


def monitor(service: Service, ctx: Context) -> int:
    """monitor at OCF_CHECK_LEVEL: 7 when nothing runs (an error when the daemon died under a recurring monitor)."""
    _installed(service, ctx)
    pid = service.find_pid(ctx)
    if pid is None:
        path = service.pid_file(ctx)
        stale = read_pid_file(path) if path else None
        if stale is not None and not ctx.env.is_probe:
            raise OCFError(OCFExit.ERR_GENERIC, f"{service.label} is not running although its pid file {path} "
                           f"names pid {stale}: it died")
        return OCFExit.NOT_RUNNING
    try:
        probe_depth(service, ctx, ctx.deadline, ctx.env.check_level)
    except ProbeFailed as exc:
        raise OCFError(OCFExit.ERR_GENERIC, f"{service.label} (pid {pid}) runs but does not answer: {exc}") from None
    return OCFExit.SUCCESS


def validate_all(service: Service, ctx: Context) -> None:
    """validate-all only: the binary exists and the daemon's checker accepts the configuration (start runs the
    checker itself; monitors do not pay for it)."""
    if ctx.action == "validate-all":
        _installed(service, ctx)
        check_configuration(service, ctx)


def actions(service: Service) -> dict:
    """The OCF actions of a service agent, by name (validate-all: call validate_all from the agent's validator)."""
    return {
        "start": lambda ctx: start(service, ctx),
        "stop": lambda ctx: stop(service, ctx),
        "monitor": lambda ctx: monitor(service, ctx),
    }
