# SPDX-License-Identifier: GPL-2.0-or-later
"""The soak: a seeded random sequence of drills on the running mail lab, resumable, with an HTML report.

Drill i of seed S is chosen by ``random.Random(f"{S}:{i}")`` alone, so a soak interrupted after any drill goes
on where it stopped and picks exactly the drills an uninterrupted run would have. Every finished drill is one
JSON line appended to ``<workdir>/soak/<stack>-<seed>.jsonl`` (what was injected and where, when each VIP moved, the
recovery time, what was checked, any violation with the tail of the nodes' Pacemaker logs that explain it).
``render`` turns those lines into a self-contained HTML page (inline CSS and SVG, no script, no network
resource) with one timeline per drill.
"""

from __future__ import annotations

import dataclasses
import html
import json
import random
import re
import time
from pathlib import Path
from typing import Iterator

from .bmc import BmcNetwork
from .cluster import Cluster
from .drills import DRILLS, Drill, Report, stack_ready
from .hostsys import LabError

# Relative frequency: the quick drills most often, the whole-cluster power loss least (it takes longest).
WEIGHTS = {"kill-service": 4, "standby": 3, "power-off": 3, "network-cut": 2, "power-loss": 1, "bmc-silent": 1,
           "never-returns": 1}


def choose(seed: int, index: int) -> str:
    """The drill a soak of this seed runs at this position (independent of any earlier draw)."""
    names = sorted(WEIGHTS)
    return random.Random(f"{seed}:{index}").choices(names, weights=[WEIGHTS[n] for n in names])[0]


def results_file(workdir: Path, seed: int, stack: str = "galera") -> Path:
    """Where the soak of this seed on this stack appends its drills."""
    return Path(workdir) / "soak" / f"{stack}-{seed}.jsonl"


def load(path: Path) -> list[dict]:
    """The drills recorded so far (a line cut short by a crash is ignored)."""
    records = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def _log_tails(drill: Drill, since: float) -> dict[str, str]:
    """Each node's Pacemaker log lines written since the drill began (for a violation's report)."""
    tails = {}
    stamp = time.strftime("%b %d %H:%M", time.localtime(since))
    for node in drill.cluster.nodes:
        path = drill.cluster.node_dir(node) / "var-log-pacemaker" / "pacemaker.log"
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        start = next((i for i, line in enumerate(lines) if line.startswith(stamp)), max(0, len(lines) - 80))
        tails[node] = "\n".join(line for line in lines[start:]
                                if re.search(r"error|warning|notice: (Result|Fenc|Initiating|Move|Recover)", line)
                                )[-6000:]
    return tails


def run(workdir: Path, seed: int, count: int, stack: str = "galera", timeout: float = 600.0) -> Iterator[dict]:
    """Run drills until the soak of this seed on the lab's stack has ``count`` of them; yield each new record."""
    path = results_file(workdir, seed, stack)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = len(load(path))
    for index in range(done, count):
        name = choose(seed, index)
        began = time.time()
        try:
            report = Drill(workdir, name, timeout=timeout).run()
        except Exception as exc:  # noqa: BLE001 - an unattended soak records what broke and goes on
            report = Report(name, "?", stack, violations=[f"the drill could not run: {type(exc).__name__}: {exc}"])
        record = {"index": index, "seed": seed, "started": began, "ended": time.time(), "passed": report.passed,
                  **dataclasses.asdict(report)}
        if not report.passed:
            record["logs"] = _log_tails(Drill(workdir, name), began)
            record["healed"] = heal(workdir, timeout)
        with path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        yield record
        if record.get("healed", "") != "":
            # Unattended, a lab that cannot be brought back would only collect "could not run" records.
            raise LabError(f"the lab did not recover after drill #{index} ({record['healed']}); the soak stops "
                           "here and resumes from the next drill once the lab runs again")


def heal(workdir: Path, timeout: float) -> str:
    """Bring the lab back after a failed drill, as an admin would: every BMC answering, every link up, every
    node powered on, failed actions cleaned up; '' once the stack runs in full again, else why not."""
    cluster = Cluster.load(workdir)
    try:
        bmcs = BmcNetwork(cluster)
        for node in cluster.nodes:
            bmcs.stop_bmc(node)
            bmcs.start_bmc(node)
        cluster.heal(timeout)
        cluster.run(cluster.first_running(), ["crm_resource", "--cleanup"], timeout=60)
        cluster.wait_for(lambda: stack_ready(cluster) or None, timeout, "the stack to run in full again")
    except LabError as exc:
        return str(exc)[:2000]
    return ""


def _timeline(record: dict, width: int = 640) -> str:
    """An inline SVG: injection at 0, each move as a tick, recovery as a bar, violations in red."""
    total = max(record.get("recovery_s") or 0, *[_at(m) for m in record.get("moves", [])], 1.0) * 1.1
    scale = (width - 20) / total
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="46" role="img" '
             f'aria-label="timeline of drill {record["index"]}">',
             '<line x1="10" y1="30" x2="{0}" y2="30" stroke="#888"/>'.format(width - 10)]
    if record.get("recovery_s") is not None:
        parts.append(f'<rect class="recovery" x="10" y="24" width="{record["recovery_s"] * scale:.1f}" height="12" '
                     f'fill="{"#4a4" if record["passed"] else "#c33"}"><title>recovered after '
                     f'{record["recovery_s"]:.1f} s</title></rect>')
    for move in record.get("moves", []):
        x = 10 + _at(move) * scale
        parts.append(f'<line class="move" x1="{x:.1f}" y1="8" x2="{x:.1f}" y2="40" stroke="#36c">'
                     f'<title>{html.escape(move)}</title></line>')
    parts.append('<text x="10" y="14" font-size="10">0 s: injected</text></svg>')
    return "".join(parts)


def _at(move: str) -> float:
    """Seconds of a move line ('+12.3s mail-vip on node2'), relative to the drill's traffic start."""
    found = re.match(r"\+([0-9.]+)s", move)
    return float(found.group(1)) if found else 0.0


def render(records: list[dict], seed: int, stack: str = "galera") -> str:
    """The soak's HTML report."""
    passed = sum(1 for r in records if r["passed"])
    recoveries = sorted(r["recovery_s"] for r in records if r.get("recovery_s") is not None)
    median = recoveries[len(recoveries) // 2] if recoveries else None
    rows = []
    for r in records:
        issues = "".join(f"<li>{html.escape(v)}</li>" for v in r.get("violations", []))
        logs = "".join(f"<details><summary>{html.escape(node)} Pacemaker log</summary><pre>{html.escape(text)}</pre>"
                       "</details>" for node, text in sorted(r.get("logs", {}).items()))
        rows.append(
            f'<section class="drill {"passed" if r["passed"] else "failed"}" id="drill-{r["index"]}">'
            f'<h2>#{r["index"]} {html.escape(r["name"])} on {html.escape(r["target"])}: '
            f'{"passed" if r["passed"] else "FAILED"}</h2>'
            f'<p>started {time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["started"]))}; recovery '
            f'{"-" if r.get("recovery_s") is None else format(r["recovery_s"], ".1f") + " s"}; mails accepted '
            f'{r["mails_accepted"]}, missing {r["mails_missing"]}; rows acknowledged {r["writes_acked"]}, missing '
            f'{r["writes_missing"]}</p>{_timeline(r)}'
            f'<ul class="moves">{"".join(f"<li>{html.escape(m)}</li>" for m in r.get("moves", []))}</ul>'
            + (f'<ul class="violations">{issues}</ul>{logs}' if issues else "") + "</section>")
    per_drill = "".join(
        f"<tr><td>{n}</td><td>{sum(1 for r in records if r['name'] == n)}</td>"
        f"<td>{sum(1 for r in records if r['name'] == n and r['passed'])}</td></tr>" for n in DRILLS)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>hamail soak, {stack} stack, seed {seed}</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:60em}section{border-top:1px solid #ccc;padding:.5em 0}"
        ".failed h2{color:#c33}.passed h2{color:#282}pre{white-space:pre-wrap;font-size:80%}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em}</style></head><body>"
        f'<h1>hamail soak, {stack} stack, seed {seed}</h1><p id="summary">{len(records)} drills, {passed} passed, '
        f"{len(records) - passed} failed; median recovery "
        f'{"-" if median is None else format(median, ".1f") + " s"}</p>'
        f"<table><tr><th>drill</th><th>runs</th><th>passed</th></tr>{per_drill}</table>"
        + "".join(rows) + "</body></html>\n")
