# SPDX-License-Identifier: GPL-2.0-or-later
"""make bench: time an hamail action and the upstream agent's same action alternately, print medians and ratios.

Every timed run must end as the case expects (its exit code, and its after_each check): a failed run is never a
sample. Failures are printed with the row, the command and the tail of its stderr, and make harness.py exit 1
(without writing RESULTS.md). Agents run as Pacemaker's executor runs them: the file itself, through its #! line.
"""

import dataclasses
import datetime
import importlib
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Mapping, Optional, Sequence, Union

__all__ = ["Case", "Sample", "BenchFailure", "agent_argv", "run_step", "time_command", "run_case", "main"]

ROOT = pathlib.Path(__file__).resolve().parent.parent
Runnable = Union[Sequence[str], Callable[[], None]]
STDERR_TAIL = 2000


class BenchFailure(Exception):
    """A run or step that did not end as expected: what was run, its exit code and the tail of its stderr."""

    def __init__(self, what: str, command: Optional[Sequence[str]] = None, rc: Optional[int] = None,
                 stderr: str = "") -> None:
        super().__init__(what)
        self.what, self.command, self.rc, self.stderr = what, list(command or []), rc, stderr

    def report(self) -> str:
        """Several lines for a human: what failed, the command, the exit code and the stderr tail."""
        lines = [self.what]
        if self.command:
            lines.append("command: " + " ".join(self.command))
        if self.rc is not None:
            lines.append(f"exit code: {self.rc}")
        if self.stderr:
            lines.append("stderr (tail):")
            lines += ["  " + line for line in self.stderr.rstrip().splitlines()]
        return "\n".join(lines)


def _tail(data: bytes) -> str:
    return data[-STDERR_TAIL:].decode(errors="replace")


def _redact(stdin: str) -> str:
    """A fence agent's key=value stdin on one line, passwords and keys masked."""
    pairs = (line.partition("=") for line in stdin.splitlines() if line.strip())
    return " ".join(f"{k}={'***' if 'passw' in k or 'kg' in k else v}" for k, _, v in pairs)


def agent_argv(path: Union[str, pathlib.Path]) -> list[str]:
    """[path] for an agent that is executed as a file through its own #! line (as pacemaker-execd does)."""
    path = str(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(2)
    except OSError as exc:
        raise BenchFailure(f"agent {path}: {exc.strerror}") from None
    if head != b"#!" or not os.access(path, os.X_OK):
        raise BenchFailure(f"{path} is not an executable script with a #! line: agents are run as files, "
                           "through their own interpreter line, never as `python3 file`")
    return [path]


def run_step(argv: Sequence[str], env: Optional[Mapping[str, str]] = None, expect_rc: int = 0,
             timeout: float = 600, what: str = "step", stdin: Optional[str] = None) -> str:
    """Run an untimed step (setup, before/after a timed run); BenchFailure unless it exits expect_rc. Its stdout."""
    # Files, not pipes: a daemon the step leaves behind (heartbeat IPaddr2's send_arp) would hold a pipe open
    # and make the step (and a callable timed around it) wait for that daemon.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run(list(argv), env={**os.environ, **(env or {})}, stdout=out, stderr=err,
                              timeout=timeout, input=stdin.encode() if stdin is not None else None,
                              stdin=subprocess.DEVNULL if stdin is None else None)
        out.seek(0)
        err.seek(0)
        if proc.returncode != expect_rc:
            raise BenchFailure(f"{what} exited {proc.returncode}, expected {expect_rc}", argv, proc.returncode,
                               _tail(err.read()))
        return out.read().decode(errors="replace")


@dataclasses.dataclass
class Case:
    """One comparison: the same work done by our agent and by the upstream agent."""

    group: str
    name: str
    ours: Optional[Runnable]
    upstream: Optional[Runnable]
    env_ours: Optional[Mapping[str, str]] = None
    env_upstream: Optional[Mapping[str, str]] = None
    stdin_ours: Optional[str] = None
    stdin_upstream: Optional[str] = None
    setup: Optional[Callable[[], None]] = None
    teardown: Optional[Callable[[], None]] = None
    before_each: Optional[Callable[[str], None]] = None
    # Untimed check after every run (warm-up included) that the run did the work; raises BenchFailure if not.
    after_each: Optional[Callable[[str], None]] = None
    repeat: int = 15
    target: Optional[float] = None
    expect_rc: int = 0
    # For a scenario timed from inside (e.g. a recovery): returns (ours, upstream) lists of seconds, one per run.
    once: Optional[Callable[[], tuple]] = None


@dataclasses.dataclass(frozen=True)
class Sample:
    """One timed run: wall and CPU seconds (user+system of the process and its children), exit code, stderr tail."""

    wall: float
    cpu: float
    rc: int
    stderr: str = ""


def time_command(argv: Sequence[str], env: Optional[Mapping[str, str]] = None,
                 stdin: Optional[str] = None, timeout: float = 600) -> Sample:
    """Run a command once and measure its wall and CPU time (rusage of the child tree)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    # stderr into a file (not a pipe nobody reads while the child runs), read only after the timing.
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), env=full_env,
                                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
        if stdin is not None:
            proc.stdin.write(stdin.encode())
            proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        return Sample(wall, usage.ru_utime + usage.ru_stime, proc.returncode, _tail(err.read()))


def _time_callable(fn: Callable[[], None]) -> Sample:
    wall0, cpu0 = time.perf_counter(), os.times()
    fn()
    cpu1 = os.times()
    cpu = (cpu1.user + cpu1.system + cpu1.children_user + cpu1.children_system
           - cpu0.user - cpu0.system - cpu0.children_user - cpu0.children_system)
    return Sample(time.perf_counter() - wall0, cpu, 0)


def _once(case: Case, side: str) -> Sample:
    """One run of one side, checked: its exit code and the case's after_each (BenchFailure otherwise)."""
    target = case.ours if side == "ours" else case.upstream
    if case.before_each:
        case.before_each(side)
    if callable(target):
        sample = _time_callable(target)
    else:
        env = case.env_ours if side == "ours" else case.env_upstream
        stdin = case.stdin_ours if side == "ours" else case.stdin_upstream
        sample = time_command(target, env, stdin)
        if sample.rc != case.expect_rc:
            raise BenchFailure(f"{side} exited {sample.rc}, expected {case.expect_rc}"
                               + (f" (stdin: {_redact(stdin)})" if stdin else ""), target, sample.rc, sample.stderr)
    if case.after_each:
        case.after_each(side)
    return sample


def run_case(case: Case) -> dict:
    """Alternate ours and upstream case.repeat times (after one untimed warm-up each) and summarise."""
    if case.once is not None:
        ours, upstream = case.once()
        if not ours or not upstream:
            raise BenchFailure("the scenario returned no runs")
        row = {"group": case.group, "name": case.name, "target": case.target,
               "ours": {"wall": statistics.median(ours), "cpu": None, "rcs": "-"},
               "upstream": {"wall": statistics.median(upstream), "cpu": None, "rcs": "-"},
               "runs": {"ours": list(ours), "upstream": list(upstream)}}
        row["ratio_wall"], row["ratio_cpu"] = row["ours"]["wall"] / row["upstream"]["wall"], None
        return row
    sides = ["ours"] + (["upstream"] if case.upstream is not None else [])
    for side in sides:  # a mistake in the case itself fails before anything runs
        target = case.ours if side == "ours" else case.upstream
        if not callable(target):
            agent_argv(target[0])
    samples: dict[str, list[Sample]] = {s: [] for s in sides}
    if case.setup:
        case.setup()
    try:
        for side in sides:
            _once(case, side)
        for _ in range(case.repeat):
            for side in sides:
                samples[side].append(_once(case, side))
    finally:
        if case.teardown:
            case.teardown()
    row = {"group": case.group, "name": case.name, "target": case.target}
    for side in sides:
        row[side] = {"wall": statistics.median(s.wall for s in samples[side]),
                     "cpu": statistics.median(s.cpu for s in samples[side]),
                     "rcs": sorted({s.rc for s in samples[side]})}
    if "upstream" in row and row["upstream"]["wall"] > 0:
        row["ratio_wall"] = row["ours"]["wall"] / row["upstream"]["wall"]
        row["ratio_cpu"] = row["ours"]["cpu"] / row["upstream"]["cpu"] if row["upstream"]["cpu"] > 0 else None
    return row


def _fmt(value: Optional[float], spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def render(rows: list[dict]) -> str:
    """A Markdown table of the results with the machine description."""
    lines = [
        "# hamail benchmark results", "",
        f"Run {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} on "
        f"{platform.node()}: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()} "
        f"({sys.executable}). Medians of alternating runs; wall and CPU in seconds; ratio = ours / upstream. "
        "Every timed run ended with the expected exit code (a failed run fails the bench).", "",
        "| group | case | ours wall | upstream wall | ratio wall | ours CPU | upstream CPU | ratio CPU | target | rc ours/upstream |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        up = r.get("upstream", {})
        lines.append(
            f"| {r['group']} | {r['name']} | {_fmt(r['ours']['wall'])} | {_fmt(up.get('wall'))} | "
            f"{_fmt(r.get('ratio_wall'), '.2f')} | {_fmt(r['ours']['cpu'])} | {_fmt(up.get('cpu'))} | "
            f"{_fmt(r.get('ratio_cpu'), '.2f')} | {'<= ' + format(r['target'], '.2f') if r['target'] else '-'} | "
            f"{r['ours']['rcs']}/{up.get('rcs', '-')} |")
    runs = [r for r in rows if r.get("runs")]
    if runs:
        lines += ["", "Each run of the scenarios timed from inside (seconds, in the order run, ours and upstream "
                  "alternating):", ""]
        for r in runs:
            lines.append(f"- {r['group']} {r['name']}: ours " + ", ".join(f"{v:.1f}" for v in r["runs"]["ours"])
                         + "; upstream " + ", ".join(f"{v:.1f}" for v in r["runs"]["upstream"]))
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str]) -> int:
    """Run every bench/bench_*.py module's cases() (or those named on the command line); 1 if any run failed."""
    sys.path[:0] = [str(ROOT / "lib"), str(ROOT / "lab"), str(ROOT / "bench")]
    wanted = argv[1:]
    modules = sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
    unknown = [w for w in wanted if w not in modules and f"bench_{w}" not in modules]
    if unknown:
        print(f"bench: no module {', '.join(unknown)} (have {', '.join(modules)})", file=sys.stderr)
        return 2
    rows, failures = [], []
    for name in modules:
        if wanted and name not in wanted and name.removeprefix("bench_") not in wanted:
            continue
        module = importlib.import_module(name)
        for case in module.cases():
            print(f"bench: {case.group} {case.name} ...", file=sys.stderr, flush=True)
            try:
                rows.append(run_case(case))
            except Exception as exc:  # one broken case must not hide the others' numbers, but fails the bench
                text = exc.report() if isinstance(exc, BenchFailure) else f"{type(exc).__name__}: {exc}"
                failures.append(f"{case.group} | {case.name}\n{text}")
                print(f"bench: FAILED {case.group} | {case.name}\n{text}", file=sys.stderr, flush=True)
    table = render(rows)
    print(table)
    if failures:
        print(f"bench: {len(failures)} case(s) FAILED (their rows are not in the table):", file=sys.stderr)
        for failure in failures:
            print("\n" + failure, file=sys.stderr)
        return 1
    if not wanted:  # a partial run must not replace the full table
        (ROOT / "bench" / "RESULTS.md").write_text(table)
    return 0


def _exit_on_sigterm(signum, frame) -> None:
    """SIGTERM (make interrupted, a CI timeout) unwinds like ^C: every case's teardown stops what it started
    (BMC simulators, servers, labs) instead of leaving them running."""
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    sys.exit(main(sys.argv))
