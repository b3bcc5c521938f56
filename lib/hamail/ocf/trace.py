# SPDX-License-Identifier: GPL-2.0-or-later
"""RA tracing as ocf-shellfuncs agents do it (trace_ra, trace_file): an action's debug trace in a file, secrets blanked.

ocf-shellfuncs runs `set -x` when OCF_TRACE_RA (else the parameter trace_ra) is true, writing to OCF_TRACE_FILE
(an absolute path, or a descriptor 3-9 the caller opened) or by default to
$OCF_RESKEY_trace_dir/<type>/<instance>.<action>.<date +%F.%T>, trace_dir defaulting to $HA_VARLIB/trace_ra
(/var/lib/heartbeat/trace_ra); `crm resource trace` sets trace_ra (and trace_dir) on an operation. hamail has
no shell to trace: its trace is the environment the action got, the action's log at every level (debug
included), each command run with its exit status and output, and the exit code and reason. pcs documents a
trace_file parameter (OCF_RESKEY_trace_file), honoured like OCF_TRACE_FILE. Differences: a trace file is
appended to rather than truncated (two runs of a trace_file both stay), and created 0600 (it holds what the
agent saw); a run from a terminal traces to the file too.
"""

from __future__ import annotations

import os
import time

__all__ = ["wanted", "start", "Trace", "trace_commands"]

_TRUE = frozenset({"1", "t", "y", "yes", "on", "true"})  # ocf_is_true
_OUTPUT_LINES = 40  # per stream of a traced command: enough to see why it failed


def wanted(environ) -> bool:
    """Whether this run is traced: ocf_is_true of OCF_TRACE_RA, or of the trace_ra parameter when that is unset."""
    value = environ.get("OCF_TRACE_RA", "") or environ.get("OCF_RESKEY_trace_ra", "")
    return value.strip().lower() in _TRUE


class Trace:
    """An open trace destination; every write is scrubbed of the run's secrets and never fails the action."""

    __slots__ = ("target", "_fd", "_owned", "_scrubber")

    def __init__(self, target: str, fd: int, owned: bool, scrubber) -> None:
        self.target, self._fd, self._owned, self._scrubber = target, fd, owned, scrubber

    def write(self, text: str) -> None:
        """Append text (already line-terminated) with the secrets blanked."""
        if self._fd < 0:
            return
        try:
            os.write(self._fd, self._scrubber.scrub(text).encode("utf-8", "replace"))
        except OSError:
            pass

    def line(self, text: str) -> None:
        """Append one time-stamped line."""
        self.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")

    def close(self) -> None:
        """Close the file (a descriptor the caller handed over stays open)."""
        if self._owned and self._fd >= 0:
            os.close(self._fd)
        self._fd = -1


def _safe(name: str) -> str:
    return name.replace("/", "_") or "_"


def destination(environ, rsc_type: str, instance: str, action: str) -> tuple:
    """(path or descriptor, warning or None): where ocf_start_trace would write this action's trace."""
    chosen = environ.get("OCF_TRACE_FILE", "") or environ.get("OCF_RESKEY_trace_file", "")
    warning = None
    if chosen in ("3", "4", "5", "6", "7", "8", "9"):
        return int(chosen), None
    if chosen.startswith("/"):
        return chosen, None
    if chosen:
        warning = f"trace_file must be a descriptor (3-9) or an absolute path, not {chosen!r}: using the default"
    directory = environ.get("OCF_RESKEY_trace_dir", "")
    if not directory.startswith("/"):
        directory = os.path.join(environ.get("HA_VARLIB", "") or "/var/lib/heartbeat", "trace_ra")
    stamp = time.strftime("%Y-%m-%d.%H:%M:%S")  # date +%F.%T
    return os.path.join(directory, _safe(rsc_type), f"{_safe(instance)}.{_safe(action)}.{stamp}"), warning


def _open(target) -> tuple:
    """(descriptor, owned): the destination opened for appending; OSError when it cannot be."""
    if isinstance(target, int):
        os.fstat(target)  # OSError when the caller did not open it
        return target, False
    os.makedirs(os.path.dirname(target) or "/", mode=0o755, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        import stat
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, 0o600)  # an existing file too: the trace holds what the agent saw
    except OSError:
        os.close(fd)
        raise
    return fd, True


def start(environ, env, action: str, scrubber, private_names, log):
    """Open this action's trace and write its header, or None (with a warning logged) when it cannot be written."""
    target, warning = destination(environ, env.type, env.instance, action)
    if warning:
        log.warning("%s", warning)
    try:
        fd, owned = _open(target)
    except OSError as exc:
        log.warning("trace_ra: %s not writable (%s), trace not going to happen", target, exc.strerror or exc)
        return None
    trace = Trace(str(target), fd, owned, scrubber)
    trace.line(f"trace of ocf:{env.provider}:{env.type} {action} for {env.instance} (pid {os.getpid()})")
    from hamail.system.runner import inherited
    hidden = frozenset(private_names)
    lines = [f"  {name}={'***' if name in hidden else value}" for name, value in sorted(inherited(environ).items())]
    trace.write("environment (what commands inherit; private parameters blanked):\n" + "\n".join(lines) + "\n")
    log.trace = trace
    return trace


def _render(argv) -> str:
    import shlex  # only traced runs pay for it
    return " ".join(shlex.quote(str(a)) for a in argv)


def _output(log, stream: str, text: str) -> None:
    lines = text.splitlines()
    for line in lines[:_OUTPUT_LINES]:
        log.debug("  %s| %s", stream, line)
    if len(lines) > _OUTPUT_LINES:
        log.debug("  %s| ... %d more lines", stream, len(lines) - _OUTPUT_LINES)


def trace_commands(runner, log) -> None:
    """Make every command this runner runs or spawns appear in the log at debug level, with its result."""
    from hamail.secret import Secret
    plain_run, plain_spawn = runner.run, runner.spawn

    def describe(argv, kwargs) -> str:
        extra = []
        if kwargs.get("env"):
            extra.append("env " + ",".join(sorted(kwargs["env"])))  # names only: values may be private
        stdin = kwargs.get("stdin")
        if stdin is not None:
            extra.append("a secret on stdin" if isinstance(stdin, Secret) else f"{len(stdin)} bytes on stdin")
        return "+ " + _render(argv) + (f"  [{'; '.join(extra)}]" if extra else "")

    def run(argv, **kwargs):
        log.debug("%s", describe(argv, kwargs))
        try:
            result = plain_run(argv, **kwargs)
        except Exception as exc:
            log.debug("  failed: %s: %s", type(exc).__name__, exc)
            raise
        log.debug("  exit status %s", result.rc)
        _output(log, "stdout", result.stdout)
        _output(log, "stderr", result.stderr)
        return result

    def spawn(argv, **kwargs):
        log.debug("%s  [daemon]", describe(argv, kwargs))
        try:
            process = plain_spawn(argv, **kwargs)
        except Exception as exc:
            log.debug("  failed: %s: %s", type(exc).__name__, exc)
            raise
        log.debug("  started, pid %s", process.pid)
        return process

    runner.run, runner.spawn = run, spawn
