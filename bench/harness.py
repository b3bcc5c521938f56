"""make bench: time an hamail action and the upstream agent's same action alternately, print medians and ratios."""

import dataclasses
import datetime
import importlib
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable, Mapping, Optional, Sequence, Union

__all__ = ["Case", "Sample", "time_command", "run_case", "main"]

ROOT = pathlib.Path(__file__).resolve().parent.parent
Runnable = Union[Sequence[str], Callable[[], None]]


@dataclasses.dataclass
class Case:
    """One comparison: the same work done by our agent and by the upstream agent."""

    group: str
    name: str
    ours: Runnable
    upstream: Optional[Runnable]
    env_ours: Optional[Mapping[str, str]] = None
    env_upstream: Optional[Mapping[str, str]] = None
    stdin_ours: Optional[str] = None
    stdin_upstream: Optional[str] = None
    setup: Optional[Callable[[], None]] = None
    teardown: Optional[Callable[[], None]] = None
    before_each: Optional[Callable[[str], None]] = None
    repeat: int = 15
    target: Optional[float] = None
    expect_rc: Optional[int] = None
    # For a scenario timed from inside (e.g. a recovery): returns (ours, upstream) seconds, run once.
    once: Optional[Callable[[], tuple]] = None


@dataclasses.dataclass(frozen=True)
class Sample:
    """One timed run: wall and CPU seconds (user+system of the process and its children), exit code."""

    wall: float
    cpu: float
    rc: int


def time_command(argv: Sequence[str], env: Optional[Mapping[str, str]] = None,
                 stdin: Optional[str] = None, timeout: float = 600) -> Sample:
    """Run a command once and measure its wall and CPU time (rusage of the child tree)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    start = time.perf_counter()
    proc = subprocess.Popen(list(argv), env=full_env, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if stdin is not None:
        proc.stdin.write(stdin.encode())
        proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Sample(wall, usage.ru_utime + usage.ru_stime, proc.returncode)


def _time_callable(fn: Callable[[], None]) -> Sample:
    wall0, cpu0 = time.perf_counter(), os.times()
    fn()
    cpu1 = os.times()
    cpu = (cpu1.user + cpu1.system + cpu1.children_user + cpu1.children_system
           - cpu0.user - cpu0.system - cpu0.children_user - cpu0.children_system)
    return Sample(time.perf_counter() - wall0, cpu, 0)


def _once(case: Case, side: str) -> Sample:
    target = case.ours if side == "ours" else case.upstream
    if case.before_each:
        case.before_each(side)
    if callable(target):
        return _time_callable(target)
    env = case.env_ours if side == "ours" else case.env_upstream
    stdin = case.stdin_ours if side == "ours" else case.stdin_upstream
    return time_command(target, env, stdin)


def run_case(case: Case) -> dict:
    """Alternate ours and upstream case.repeat times (after one untimed warm-up each) and summarise."""
    if case.once is not None:
        ours, upstream = case.once()
        row = {"group": case.group, "name": case.name, "target": case.target,
               "ours": {"wall": ours, "cpu": None, "rcs": "-"}, "upstream": {"wall": upstream, "cpu": None, "rcs": "-"}}
        row["ratio_wall"], row["ratio_cpu"] = ours / upstream, None
        return row
    sides = ["ours"] + (["upstream"] if case.upstream is not None else [])
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
        f"({sys.executable}). Medians of alternating runs; wall and CPU in seconds; ratio = ours / upstream.", "",
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
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str]) -> int:
    """Run every bench/bench_*.py module's cases() (or those named on the command line)."""
    sys.path[:0] = [str(ROOT / "lib"), str(ROOT / "lab"), str(ROOT / "bench")]
    wanted = argv[1:]
    modules = sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
    rows = []
    for name in modules:
        if wanted and name not in wanted and name.removeprefix("bench_") not in wanted:
            continue
        module = importlib.import_module(name)
        for case in module.cases():
            print(f"bench: {case.group} {case.name} ...", file=sys.stderr, flush=True)
            try:
                rows.append(run_case(case))
            except Exception as exc:  # one broken case must not hide the others' numbers
                print(f"bench: {case.group} {case.name} failed: {exc}", file=sys.stderr)
    table = render(rows)
    print(table)
    if not wanted:  # a partial run must not replace the full table
        (ROOT / "bench" / "RESULTS.md").write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
