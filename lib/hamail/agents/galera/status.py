# SPDX-License-Identifier: GPL-2.0-or-later
"""hamail-galera status: what the cluster knows about a Galera resource, what the agent decides now and why, and
what each possible override would cost.

It reads what ocf:hamail:galera publishes (node attributes, fencing records) through the same gathering code
the agent uses (cluster.gather) and asks the agent's own pure decision function (recovery.decide, through
Inputs.decide) every question: the decision now, whether a fencing would end a wait, and what an override
naming each node would do. It never changes anything: applying an override stays an explicit operator command.
"""

from __future__ import annotations

import copy
import dataclasses
import time

from hamail.agents.galera import recovery
from hamail.agents.galera.cluster import Inputs, fencing_records_of, galera_nodes, gather

__all__ = ["StatusError", "AGENT", "find_resource", "config_of", "analyse", "render", "collect", "EXIT_PRIMARY",
           "EXIT_NO_PRIMARY", "EXIT_UNREADABLE"]

AGENT = "ocf:hamail:galera"
EXIT_PRIMARY, EXIT_NO_PRIMARY, EXIT_UNREADABLE = 0, 1, 2


class StatusError(Exception):
    """The cluster or the resource cannot be read: one line for the operator (exit 2)."""


def find_resource(primitives, name: str | None):
    """The galera primitive named (by its id, its clone's id or an instance) or, with no name, the only one."""
    if name:
        named = [p for p in primitives if p.named(name)]
        if not named:
            raise StatusError(f"no resource {name} in the CIB")
        if named[0].agent != AGENT:
            raise StatusError(f"resource {name} runs {named[0].agent or 'no agent'}, not {AGENT}")
        return named[0]
    galera = [p for p in primitives if p.agent == AGENT]
    if not galera:
        raise StatusError(f"no {AGENT} resource in the CIB")
    if len(galera) > 1:
        raise StatusError(f"several {AGENT} resources ({', '.join(p.id for p in galera)}): name one")
    return galera[0]


def config_of(primitive):
    """The resource's parameters as its agent reads them (the same typed table and checks)."""
    from hamail.agents.galera.agent import PARAMS
    config, errors = PARAMS.parse({f"OCF_RESKEY_{k}": v for k, v in primitive.params.items()})
    if errors:
        raise StatusError(f"resource {primitive.id}: {'; '.join(str(e) for e in errors)}")
    from hamail.ocf import ConfigError
    try:
        galera_nodes(config)
    except ConfigError as exc:
        raise StatusError(f"resource {primitive.id}: {exc}") from None
    return config


def _count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _transactions(n: int) -> str:
    return f"{n:,} transaction{'' if n == 1 else 's'}"


def _utc(epoch: float | None) -> str | None:
    return None if epoch is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _pacemaker_state(inputs: Inputs, node: str) -> str:
    info = inputs.status.nodes.get(node)
    if info is None:
        return "unknown"
    if info.unclean:
        return "unclean"
    if not info.online:
        return "offline"
    return "standby" if info.standby else "online"


def _role(inputs: Inputs, node: str) -> str:
    roles = [r.role for r in inputs.status.instances(inputs.base) if node in r.nodes and r.active]
    if not roles:
        return "Stopped"
    return "Promoted" if any(r in ("Promoted", "Master") for r in roles) else roles[0]


def _assuming_fenced(inputs: Inputs, nodes) -> Inputs:
    """The same inputs with nodes counted as fenced since they last joined (what a fencing now would give)."""
    changed = copy.copy(inputs)
    changed.fenced = inputs.fenced | frozenset(nodes)
    return changed


def _missing(inputs: Inputs) -> list[str]:
    return [n for n in inputs.nodes if not inputs.reports[n].reported]


def _ways_out(inputs: Inputs, decision) -> list[dict]:
    """What would end a wait safely: a fencing that would count, or a node reporting its position."""
    if decision.action != "wait":
        return []
    ways = []
    online = inputs.online
    down = [n for n in _missing(inputs) if n not in online and n not in inputs.fenced]
    for node in down:
        then = _assuming_fenced(inputs, [node]).decide(override=None)
        if then.action == "bootstrap" and not then.overridden:
            ways.append({"how": f"fence {node} (Pacemaker turns it off; a fencing since it last joined counts)",
                         "command": f"stonith_admin --fence {node}", "then": f"{then.node} bootstraps: {then.reason}"})
    if len(down) > 1:
        then = _assuming_fenced(inputs, down).decide(override=None)
        if then.action == "bootstrap" and not then.overridden and not ways:
            ways.append({"how": f"fence {', '.join(down)}",
                         "command": "; ".join(f"stonith_admin --fence {n}" for n in down),
                         "then": f"{then.node} bootstraps: {then.reason}"})
    for node in _missing(inputs):
        if node in online:
            ways.append({"how": f"{node} is online: its instance publishes its position when it starts (if it failed, "
                                f"clean it up)", "command": f"crm_resource --cleanup -r {inputs.base} -N {node}",
                         "then": "the decision is taken again with its position"})
        else:
            ways.append({"how": f"{node} comes back: its instance publishes its position", "command": None,
                         "then": "the decision is taken again with its position"})
    return ways


def _risks(inputs: Inputs, node: str) -> list[str]:
    """What bootstrapping node by an override may lose, with names and numbers."""
    chosen = inputs.reports[node]
    present = [inputs.reports[n] for n in inputs.nodes if inputs.reports[n].reported]
    risks = []
    if chosen.sst_incomplete:
        risks.append(f"{node}'s datadir holds an unfinished state transfer: a partial copy of the data")
    if chosen.seqno is None or chosen.seqno == recovery.NO_SEQNO:
        risks.append(f"{node} has no recorded position ({chosen.uuid}:{chosen.seqno})")
    for other in present:
        if other.node == node or other.seqno is None or other.seqno == recovery.NO_SEQNO:
            continue
        if other.uuid != chosen.uuid:
            risks.append(f"{other.node} holds another cluster history ({other.uuid}:{_count(other.seqno)}): its "
                         f"data is replaced by a full state transfer from {node}")
        elif chosen.seqno is not None and other.seqno > chosen.seqno:
            why = "unfinished state transfer" if other.sst_incomplete else \
                f"its bootstrap failed {other.failed_bootstraps} times"
            risks.append(f"{node} is {_transactions(other.seqno - chosen.seqno)} behind {other.node}'s last "
                         f"reported seqno {_count(other.seqno)} ({why}): if that data was sound, those transactions "
                         "are lost")
    missing = _missing(inputs)
    members, unaccounted = recovery.view_members(present, inputs.arbitrators)
    if unaccounted:
        views = sorted({r.view.seq for r in present if r.view is not None and r.view.members & unaccounted})
        seqs = ", ".join(str(s) for s in views)
        if len(missing) == len(unaccounted) == 1:
            who = f"{missing[0]} was in the last Primary view ({seqs})"
        else:
            who = (f"{len(unaccounted)} of the {len(members)} members of the last Primary view ({seqs}) are not "
                   f"reporting (missing: {', '.join(missing) or 'none'})")
        risks.append(f"{who}: commits acknowledged after view {seqs} may exist only there")
    for other in missing:
        if other not in inputs.fenced:
            risks.append(f"{other} has not reported and is not recorded as fenced since it last joined: if it ran on "
                         "after the others, what it committed then exists only there")
    return risks


def _overrides(inputs: Inputs, decision) -> list[dict]:
    """For each node an override could name: what it would do (decide with that override) and risk."""
    if decision.action != "wait":
        return []
    safe = inputs.decide(override=None)
    result = []
    for node in inputs.nodes:
        if not inputs.reports[node].reported:
            continue
        then = inputs.decide(override=node)
        entry = {"node": node, "position": _position(inputs.reports[node]), "allowed": then.action == "bootstrap"}
        if then.action == "bootstrap":
            entry["risks"] = _risks(inputs, node)
            entry["command"] = f"attrd_updater -n {inputs.base}-force-bootstrap -U 1 -N {node}"
            entry["refused"] = None
        else:
            prefix = f"{safe.reason}; "
            entry["risks"] = []
            entry["command"] = None
            entry["refused"] = then.reason[len(prefix):] if then.reason.startswith(prefix) else then.reason
            ahead = recovery.ahead_of(inputs.reports[node], [inputs.reports[n] for n in inputs.nodes])
            if ahead and inputs.reports[node].seqno not in (None, recovery.NO_SEQNO):
                best = ahead[0]
                entry["refused"] += (f" ({node} is {_transactions(best.seqno - inputs.reports[node].seqno)} "
                                     f"behind {best.node}'s seqno {_count(best.seqno)})")
        result.append(entry)
    return result


def _position(report) -> str | None:
    return None if not report.reported else f"{report.uuid}:{report.seqno}"


def analyse(inputs: Inputs, fencings: dict, primitive, local: str | None, now: float) -> dict:
    """Everything the command shows, as data (the --json document): rows, Primary, decision, ways out, overrides.

    fencings: {node: (newest fencing known, epoch s, or None)} from the fencing history and the durable records.
    """
    decision = inputs.decide()
    promoted = [n for n in inputs.nodes if _role(inputs, n) == "Promoted"]
    rows = []
    for node in inputs.nodes:
        r = inputs.reports[node]
        attribute = lambda name: inputs.status.node_attribute(node, f"{inputs.base}-{name}")  # noqa: E731
        latest = fencings.get(node)
        rows.append({
            "node": node, "pacemaker": _pacemaker_state(inputs, node), "role": _role(inputs, node),
            "uuid": r.uuid, "seqno": r.seqno, "safe_to_bootstrap": r.safe_to_bootstrap if r.reported else None,
            "no_grastate": r.no_grastate, "sst_incomplete": r.sst_incomplete, "failed_bootstraps": r.failed_bootstraps,
            "force_bootstrap": r.force,
            "last_view": None if r.view is None else {"seq": r.view.seq, "members": len(r.view.members),
                                                      "recorded": _utc(r.view_time)},
            "fenced": {"last": _utc(latest), "counts": node in inputs.fenced} if latest is not None or
                      node in inputs.fenced else None,
            "waiting": attribute("bootstrap-wait"),
            "override_used": attribute("bootstrap-override"),
        })
    primary = None
    if promoted:
        shown = next((inputs.status.node_attribute(n, f"{inputs.base}-cluster-members") for n in promoted
                      if inputs.status.node_attribute(n, f"{inputs.base}-cluster-members")), None)
        primary = {"nodes": promoted, "members": shown or f"{len(promoted)} of {len(inputs.nodes)}"}
    return {
        "resource": primitive.id, "clone": primitive.clone, "agent": primitive.agent, "read_on": local,
        "time": _utc(now), "nodes": rows, "primary": primary,
        "decision": {"action": decision.action, "node": decision.node, "reason": decision.reason,
                     "overridden": decision.overridden, "awaited": list(decision.awaited)},
        "force_bootstrap_node": None if not inputs.config.force_bootstrap_node else {
            "node": inputs.config.force_bootstrap_node, "spent": inputs.override_spent},
        "ends_wait": _ways_out(inputs, decision), "overrides": _overrides(inputs, decision),
        "exit": EXIT_PRIMARY if primary else EXIT_NO_PRIMARY,
    }


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def render(doc: dict) -> str:
    """The report as text for a terminal."""
    where = f", read on {doc['read_on']}" if doc["read_on"] else ""
    clone = f", clone {doc['clone']}" if doc["clone"] else ""
    lines = [f"{doc['resource']} ({doc['agent']}{clone}){where} at {doc['time']}", ""]
    table = [["NODE", "PACEMAKER", "ROLE", "CLUSTER UUID", "SEQNO", "SAFE", "LAST PRIMARY VIEW", "FENCED"]]
    for row in doc["nodes"]:
        view = row["last_view"]
        fenced = row["fenced"]
        flags = [f for f, on in (("no grastate.dat", row["no_grastate"]), ("unfinished SST", row["sst_incomplete"]),
                                 (f"{row['failed_bootstraps']} failed bootstraps", row["failed_bootstraps"]),
                                 ("force-bootstrap set", row["force_bootstrap"])) if on]
        table.append([
            row["node"], row["pacemaker"], row["role"], row["uuid"] or "-",
            _count(row["seqno"]) + (f" ({', '.join(flags)})" if flags else ""),
            "-" if row["safe_to_bootstrap"] is None else str(int(row["safe_to_bootstrap"])),
            "-" if view is None else f"{view['seq']} ({view['members']} members{', ' + view['recorded'] if view['recorded'] else ''})",
            "-" if fenced is None else f"{fenced['last'] or 'yes'}{' (counts)' if fenced['counts'] else ' (before it last joined)'}",
        ])
    lines += _table(table)
    lines.append("")
    primary = doc["primary"]
    lines.append(f"Primary component: {', '.join(primary['nodes'])} ({primary['members']} members of "
                 "wsrep_cluster_address)" if primary else "Primary component: none running")
    forced = doc["force_bootstrap_node"]
    if forced:
        lines.append(f"Parameter force_bootstrap_node: {forced['node']}" + (
            " (spent: it was set while a Primary component ran; it applies to no later outage)"
            if forced["spent"] else ""))
    d = doc["decision"]
    lines.append(f"Decision: {d['action']}{' ' + d['node'] if d['node'] else ''}: {d['reason']}")
    if doc["ends_wait"]:
        lines += ["", "What would end the wait safely:"]
        for way in doc["ends_wait"]:
            lines.append(f"  - {way['how']}" + (f"\n      {way['command']}" if way["command"] else "")
                         + f"\n      then: {way['then']}")
    if doc["overrides"]:
        lines += ["", "Overrides (an explicit operator decision; it ends this wait only):"]
        for o in doc["overrides"]:
            if o["allowed"]:
                lines.append(f"  - {o['node']} ({o['position']}): would bootstrap")
                lines += [f"      risk: {r}" for r in o["risks"]] or ["      risk: none found in what the nodes reported"]
                lines.append(f"      {o['command']}")
            else:
                lines.append(f"  - {o['node']} ({o['position']}): refused: {o['refused']}")
    return "\n".join(lines) + "\n"


@dataclasses.dataclass(frozen=True)
class Reading:
    """What collect read: the resource and the analysis."""

    primitive: object
    document: dict


def collect(runner, deadline, name: str | None, clock=time.time) -> Reading:
    """Read the CIB, crm_mon and the fencing records, and analyse them; StatusError when they cannot be read."""
    from hamail.pacemaker import PacemakerError
    from hamail.pacemaker.cib import read_resources
    from hamail.system.runner import CommandNotFound, CommandTimeout
    try:
        primitive = find_resource(read_resources(runner, deadline), name)
        config = config_of(primitive)
        local = runner.run(["crm_node", "-n"], deadline=deadline, timeout=10)
        inputs = gather(runner, deadline, primitive.id, config)
        records = fencing_records_of(runner, primitive.id, deadline)
        fencings = {n: records.latest(n, inputs.status) for n in inputs.nodes}
    except CommandNotFound as exc:
        raise StatusError(f"Pacemaker's tools are not installed here ({exc})") from None
    except CommandTimeout as exc:
        raise StatusError(f"the cluster did not answer in time ({exc})") from None
    except PacemakerError as exc:
        raise StatusError(str(exc)) from None
    me = local.stdout.strip() if local.ok else None
    return Reading(primitive, analyse(inputs, fencings, primitive, me or None, clock()))
