# SPDX-License-Identifier: GPL-2.0-or-later
"""Pure Galera recovery decisions: grastate/gvwstate parsing, recovered positions, who bootstraps (no I/O)."""

from __future__ import annotations

__all__ = [
    "NO_SEQNO", "ZERO_UUID", "GraState", "View", "Recovery", "NodeReport", "Decision",
    "parse_grastate", "parse_gvwstate", "parse_recovery_log", "parse_address", "parse_host_map",
    "normalise_seqno", "decide", "view_members", "ahead_of", "usable", "BOOTSTRAP_ATTEMPTS",
]

# A node whose bootstrap failed this often stops being the bootstrap node (its error log says why).
BOOTSTRAP_ATTEMPTS = 2

NO_SEQNO = -1
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
# Galera writes seqno -1 as an unsigned 64-bit value in some versions and in heartbeat's attributes.
_UNSIGNED_MINUS_ONE = 18446744073709551615
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# Every spelling seen in the wild: mariadbd's "[Note] WSREP: Recovered position: U:S", mysqld_safe's
# "WSREP: Recovered position U:S", lower-case "recovered", PXC's "from storage", and MariaDB's
# optional ",domain-server-seqno" GTID suffix.
# Patterns are strings, compiled (and cached) by `re` on first use: validate and the Promoted monitor import
# this module for parse_address only, and `re` is a measurable part of a monitor's start-up.
_RECOVERED = (r"(?m)WSREP:\s*[Rr]ecovered\s+position(?:\s+from\s+storage)?\s*:?\s*"
              rf"({_UUID}):(-?\d+)(?:,\S*)?\s*$")
_PREPARED = r"\[ERROR\]\s+Found\s+(\d+)\s+prepared\s+transactions?!"
# mysqld_safe runs the recovery with its own temporary log and names it in the main log.
_REDIRECT = r"WSREP:.*position\s*recovery.*--log_error='([^']*)'"


def normalise_seqno(value: int) -> int:
    """-1 for 'no position', whichever way it was written."""
    return NO_SEQNO if value in (_UNSIGNED_MINUS_ONE, -1) or value < -1 else value


def _int(text: str) -> int | None:
    try:
        return int(text.strip())
    except (ValueError, AttributeError):
        return None


class GraState:
    """The content of grastate.dat: cluster uuid, seqno (-1 when unknown) and safe_to_bootstrap."""

    __slots__ = ("uuid", "seqno", "safe_to_bootstrap", "version")

    def __init__(self, uuid: str, seqno: int, safe_to_bootstrap: bool, version: str = "2.1") -> None:
        self.uuid = uuid
        self.seqno = seqno
        self.safe_to_bootstrap = safe_to_bootstrap
        self.version = version

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GraState) and (self.uuid, self.seqno, self.safe_to_bootstrap) == (
            other.uuid, other.seqno, other.safe_to_bootstrap)

    def __repr__(self) -> str:
        return f"GraState({self.uuid}:{self.seqno}, safe_to_bootstrap={int(self.safe_to_bootstrap)})"

    @property
    def has_position(self) -> bool:
        """Whether the file itself says where this node's data ends (clean shutdown)."""
        return self.seqno != NO_SEQNO and self.uuid != ZERO_UUID


def parse_grastate(text: str) -> GraState:
    """Parse grastate.dat; ValueError if it is not one (missing uuid line)."""
    import re
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    uuid = fields.get("uuid", "")
    if not re.fullmatch(_UUID, uuid):
        raise ValueError("grastate.dat has no valid uuid line")
    seqno = _int(fields.get("seqno", "-1"))
    if seqno is None:
        raise ValueError(f"grastate.dat has an invalid seqno {fields.get('seqno')!r}")
    return GraState(uuid.lower(), normalise_seqno(seqno), fields.get("safe_to_bootstrap", "0") == "1",
                    fields.get("version", "2.1"))


def set_safe_to_bootstrap(text: str, value: bool) -> str:
    """grastate.dat text with safe_to_bootstrap set (added if absent), everything else untouched."""
    wanted = f"safe_to_bootstrap: {1 if value else 0}"
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("safe_to_bootstrap:"):
            lines[i] = wanted
            break
    else:
        lines.append(wanted)
    return "\n".join(lines) + "\n"


class View:
    """The last Primary view a node recorded in gvwstate.dat: its own gcomm uuid, the view seqno, members."""

    __slots__ = ("my_uuid", "seq", "members")

    def __init__(self, my_uuid: str, seq: int, members: frozenset[str]) -> None:
        self.my_uuid = my_uuid
        self.seq = seq
        self.members = members

    def __repr__(self) -> str:
        return f"View(seq={self.seq}, me={self.my_uuid[:8]}, members={sorted(m[:8] for m in self.members)})"

    def encode(self) -> str:
        """Compact form for a node attribute: seq/my_uuid/member,member."""
        return f"{self.seq}/{self.my_uuid}/{','.join(sorted(self.members))}"

    @classmethod
    def decode(cls, text: str | None) -> "View | None":
        """The inverse of encode; None for absent or malformed text."""
        import re
        if not text:
            return None
        parts = text.split("/")
        if len(parts) != 3 or _int(parts[0]) is None or not re.fullmatch(_UUID, parts[1]):
            return None
        members = frozenset(m for m in parts[2].split(",") if re.fullmatch(_UUID, m))
        return cls(parts[1], int(parts[0]), members) if members else None


def parse_gvwstate(text: str) -> View | None:
    """Parse gvwstate.dat; None when empty or incomplete (Galera leaves empty files after some crashes)."""
    import re
    my_uuid, seq, members = "", None, set()
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "my_uuid:":
            my_uuid = words[1].lower()
        elif len(words) >= 4 and words[0] == "view_id:":
            seq = _int(words[3])
        elif len(words) >= 2 and words[0] == "member:":
            members.add(words[1].lower())
    if not re.fullmatch(_UUID, my_uuid) or seq is None or not members:
        return None
    return View(my_uuid, seq, frozenset(members))


class Recovery:
    """What a --wsrep-recover log says: the recovered position, or why there is none."""

    __slots__ = ("uuid", "seqno", "prepared", "redirect")

    def __init__(self, uuid: str | None, seqno: int | None, prepared: int = 0, redirect: str | None = None):
        self.uuid = uuid
        self.seqno = seqno
        self.prepared = prepared
        self.redirect = redirect

    @property
    def found(self) -> bool:
        """Whether a position was recovered."""
        return self.uuid is not None and self.seqno is not None

    def __repr__(self) -> str:
        return f"Recovery({self.uuid}:{self.seqno}, prepared={self.prepared}, redirect={self.redirect!r})"


def parse_recovery_log(text: str) -> Recovery:
    """The last recovered position in a --wsrep-recover log, prepared-transaction count, redirected log."""
    import re
    matches = re.findall(_RECOVERED, text)
    prepared = max((int(n) for n in re.findall(_PREPARED, text)), default=0)
    redirect = re.search(_REDIRECT, text)
    if matches:
        uuid, seqno = matches[-1]
        return Recovery(uuid.lower(), normalise_seqno(int(seqno)), prepared,
                        redirect.group(1) if redirect else None)
    return Recovery(None, None, prepared, redirect.group(1) if redirect else None)


def parse_address(address: str) -> list[str]:
    """Host names of a gcomm:// address, in order, ports and options stripped; ValueError if malformed."""
    text = (address or "").strip()
    if not text.startswith("gcomm://"):
        raise ValueError(f"{address!r} does not start with gcomm://")
    body = text[len("gcomm://"):].split("?", 1)[0]
    hosts = []
    for item in body.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):  # [IPv6]:port
            host = item[1:].split("]", 1)[0]
        else:
            host = item.rsplit(":", 1)[0] if item.count(":") == 1 else item
        if not host or any(c.isspace() for c in host):
            raise ValueError(f"bad host {item!r} in {address!r}")
        hosts.append(host)
    if not hosts:
        raise ValueError(f"{address!r} names no hosts")
    if len(set(hosts)) != len(hosts):
        raise ValueError(f"{address!r} names a host twice")
    return hosts


def parse_host_map(text: str) -> dict[str, str]:
    """cluster_host_map 'pcmk1:gal1;pcmk2:gal2' as {pacemaker name: galera name}; ValueError if malformed."""
    mapping: dict[str, str] = {}
    for item in (text or "").split(";"):
        item = item.strip()
        if not item:
            continue
        pcmk, sep, galera = item.partition(":")
        pcmk, galera = pcmk.strip(), galera.strip()
        if not sep or not pcmk or not galera:
            raise ValueError(f"bad cluster_host_map entry {item!r} (expected pacemaker_node:galera_host)")
        mapping[pcmk] = galera
    return mapping


class NodeReport:
    """What one node published about its data: position, safe_to_bootstrap, grastate presence, last view."""

    __slots__ = ("node", "uuid", "seqno", "safe_to_bootstrap", "no_grastate", "view", "force", "view_time",
                 "sst_incomplete", "failed_bootstraps")

    def __init__(self, node: str, uuid: str | None, seqno: int | None, safe_to_bootstrap: bool = False,
                 no_grastate: bool = False, view: View | None = None, force: bool = False,
                 view_time: float | None = None, sst_incomplete: bool = False, failed_bootstraps: int = 0) -> None:
        self.node = node
        self.uuid = uuid
        self.seqno = seqno
        self.safe_to_bootstrap = safe_to_bootstrap
        self.no_grastate = no_grastate
        self.view = view
        self.force = force
        self.view_time = view_time  # when the node recorded that view (gvwstate.dat's mtime, epoch seconds)
        # A state transfer into its datadir never finished (Galera's SST scripts' sst_in_progress marker): its
        # data is a partial copy, whatever a recovery of it says, so it is never a bootstrap candidate.
        self.sst_incomplete = sst_incomplete
        self.failed_bootstraps = failed_bootstraps  # its bootstraps that failed since a Primary last existed

    @property
    def reported(self) -> bool:
        """Whether the node published a recovered position."""
        return self.seqno is not None

    def __repr__(self) -> str:
        return (f"{self.node}({self.uuid}:{self.seqno}, stb={int(self.safe_to_bootstrap)}"
                f"{', no-grastate' if self.no_grastate else ''}{', force' if self.force else ''}"
                f"{', sst-incomplete' if self.sst_incomplete else ''}"
                f"{f', failed-bootstraps={self.failed_bootstraps}' if self.failed_bootstraps else ''}"
                f"{f', view={self.view!r}@{self.view_time:.0f}' if self.view and self.view_time else ''})")


class Decision:
    """The outcome: 'bootstrap' (node is the winner), 'join' (a Primary exists) or 'wait' (reason says why)."""

    __slots__ = ("action", "node", "reason", "awaited", "overridden", "reporting")

    def __init__(self, action: str, node: str | None, reason: str, awaited: tuple[str, ...] = (),
                 overridden: bool = False) -> None:
        self.action = action
        self.node = node
        self.reason = reason
        self.awaited = awaited
        self.overridden = overridden  # an operator override resolved a wait
        self.reporting: tuple[str, ...] = ()  # the nodes whose reports it was made from (set by the caller)

    def __repr__(self) -> str:
        return f"Decision({self.action}, {self.node}, {self.reason!r})"


def _rank(report: NodeReport, order: dict[str, int]) -> tuple:
    """Sort key: higher seqno first, then nodes with grastate.dat, then address order; total, so all agree."""
    return (-(report.seqno if report.seqno is not None else NO_SEQNO - 1), report.no_grastate,
            order.get(report.node, len(order)), report.node)


def _describe(reports: list[NodeReport]) -> str:
    return ", ".join(f"{r.node}={r.uuid}:{r.seqno}" for r in reports)


def decide(nodes: list[str], reports: dict[str, NodeReport], *, primary_nodes: tuple[str, ...] = (),
           fenced: frozenset[str] = frozenset(), online: frozenset[str] | None = None,
           override: str | None = None, two_node: bool = False,
           arbitrators: frozenset[str] = frozenset(), pending: frozenset[str] = frozenset()) -> Decision:
    """Which node bootstraps the cluster, or why nobody may yet.

    nodes: every Pacemaker node of the Galera cluster (address order); reports: what the nodes published;
    primary_nodes: nodes where an instance runs Promoted (a Primary component exists); fenced: nodes the
    fencing history shows fenced; online: nodes Pacemaker sees online (None: all); override: a node an
    operator chose (parameter or force attribute), the automated --force-safe-to-bootstrap; two_node: a
    two-node Galera cluster (two_node_mode), where one node alone is never a Primary component;
    arbitrators: gcomm member ids of arbitrators (garbd, full or in gcomm's short log form): view members that
    hold no data; pending: nodes whose instance runs (online, not in standby) but has not reported yet.

    An override only ever ends a wait, and only once every node that can report has: a node about to report
    may hold newer data, and an override is never applied over a usable node of the same history that is ahead.
    """
    if primary_nodes:
        return Decision("join", None, f"a Primary component exists on {', '.join(sorted(primary_nodes))}: join it")
    safe_choice = _decide_safely(nodes, reports, fenced, online, two_node and len(nodes) == 2, arbitrators)
    if safe_choice.action != "wait":
        return safe_choice  # an override never replaces a safe decision: left in place it would win over newer data
    order = {n: i for i, n in enumerate(nodes)}
    present = [reports[n] for n in nodes if n in reports and reports[n].reported]
    forced = sorted((r for r in present if r.force), key=lambda r: order[r.node])
    if override is None and forced:
        override = forced[0].node
    if override is None:
        return safe_choice
    chosen = reports.get(override)
    if override not in order:
        return Decision("wait", None, f"{safe_choice.reason}; the operator override names {override}, which is "
                        "not a galera node", safe_choice.awaited)
    if chosen is None or not chosen.reported:
        return Decision("wait", None, f"{safe_choice.reason}; the operator override names {override}, which has "
                        "not reported a position", safe_choice.awaited + (override,))
    unreported = sorted((n for n in pending if n in order and not (n in reports and reports[n].reported)),
                        key=order.get)
    if unreported:
        # A node whose instance runs reports within seconds, and it may hold newer data than the named one.
        return Decision("wait", None, f"{safe_choice.reason}; the operator override names {override} but waits "
                        f"for {', '.join(unreported)} (online, not in standby) to report its position first",
                        tuple(unreported))
    ahead = ahead_of(chosen, present)
    if ahead:
        return Decision("wait", None, f"{safe_choice.reason}; the operator override names {override} "
                        f"({chosen.uuid}:{chosen.seqno}) but refuses it: {_describe(ahead)} hold(s) newer data of "
                        f"the same cluster; name {ahead[0].node} instead (or put it in standby if its data is "
                        "unusable)", safe_choice.awaited)
    return Decision("bootstrap", override, f"operator override: {override} bootstraps at {chosen.uuid}:"
                    f"{chosen.seqno} although the safe rules would wait ({safe_choice.reason})", (), True)


def usable(report: NodeReport) -> bool:
    """Whether a node's report may stand for its data: a finished state transfer, a bootstrap that is not failing."""
    return report.reported and not report.sst_incomplete and report.failed_bootstraps < BOOTSTRAP_ATTEMPTS


def ahead_of(chosen: NodeReport, present: list[NodeReport]) -> list[NodeReport]:
    """Usable reporters of chosen's cluster history holding a higher seqno, newest first: an override naming
    chosen would discard what they committed after it."""
    if chosen.seqno is None or chosen.seqno == NO_SEQNO:
        same = [r for r in present if r.node != chosen.node and usable(r) and r.seqno != NO_SEQNO
                and (chosen.uuid in (None, ZERO_UUID) or r.uuid == chosen.uuid)]
    else:
        same = [r for r in present if r.node != chosen.node and usable(r) and r.uuid == chosen.uuid
                and r.seqno is not None and r.seqno > chosen.seqno]
    return sorted(same, key=lambda r: (-r.seqno, r.node))


def _decide_safely(nodes: list[str], reports: dict[str, NodeReport], fenced: frozenset[str],
                   online: frozenset[str] | None, two_node: bool = False,
                   arbitrators: frozenset[str] = frozenset()) -> Decision:
    """The decision from the data alone (no override): bootstrap only a node provably holding the newest data,
    and not one whose bootstrap keeps failing unless another node provably holds the same data."""
    choice = _choose(nodes, reports, fenced, online, two_node, arbitrators)
    if choice.action != "bootstrap" or reports[choice.node].failed_bootstraps < BOOTSTRAP_ATTEMPTS:
        return choice
    order = {n: i for i, n in enumerate(nodes)}
    failed = reports[choice.node]
    present = [reports[n] for n in nodes if n in reports and reports[n].reported]
    # Another node may stand in only where it holds at least the same position of the same history, and is
    # behind no other reporter of its own history (that one's bootstrap may have failed too).
    def newest_of_its_history(r: NodeReport) -> bool:
        return not any(o.uuid == r.uuid and o.seqno is not None and o.seqno > r.seqno and not o.sst_incomplete
                       for o in present)
    equal = sorted((r for r in present if r.node != failed.node and r.failed_bootstraps < BOOTSTRAP_ATTEMPTS
                    and not r.sst_incomplete and r.seqno is not None and failed.seqno is not None
                    and r.seqno >= failed.seqno and (r.uuid == failed.uuid or failed.seqno == NO_SEQNO)
                    and newest_of_its_history(r)),
                   key=lambda r: _rank(r, order))
    why = (f"{failed.node}'s bootstrap failed {failed.failed_bootstraps} times (its server error log says why)")
    if equal:
        return Decision("bootstrap", equal[0].node, f"{why}; {equal[0].node} holds the same data "
                        f"({equal[0].uuid}:{equal[0].seqno}) and bootstraps instead ({choice.reason})")
    return Decision("wait", None, f"{why} and no other node provably holds its data ({failed.uuid}:{failed.seqno}; "
                    f"positions: {_describe(present)}): fix {failed.node} and clear its attribute "
                    "<resource>-bootstrap-failures, or override (force_bootstrap_node) accepting the loss of what "
                    f"only {failed.node} holds", (failed.node,))


def _choose(nodes: list[str], reports: dict[str, NodeReport], fenced: frozenset[str],
            online: frozenset[str] | None, two_node: bool, arbitrators: frozenset[str] = frozenset()) -> Decision:
    """The node provably holding the newest data, or why nobody may bootstrap."""
    order = {n: i for i, n in enumerate(nodes)}
    present = [reports[n] for n in nodes if n in reports and reports[n].reported]
    safe = sorted((r for r in present if r.safe_to_bootstrap and not r.sst_incomplete), key=lambda r: _rank(r, order))
    if safe:
        return Decision("bootstrap", safe[0].node, f"{safe[0].node} has safe_to_bootstrap=1 at "
                        f"{safe[0].uuid}:{safe[0].seqno} (positions: {_describe(present)})")
    if not present:
        return Decision("wait", None, f"no node has reported its position yet (awaiting {', '.join(nodes)})",
                        tuple(nodes))
    missing = [n for n in nodes if n not in reports or not reports[n].reported]
    if missing:
        blocked = _blocking(missing, present, fenced, online, two_node, arbitrators)
        if blocked:
            return Decision("wait", None, blocked[1], blocked[0])
    uuids = sorted({r.uuid for r in present if r.uuid and r.uuid != ZERO_UUID and r.seqno != NO_SEQNO})
    if len(uuids) > 1:
        return Decision("wait", None, f"nodes disagree on the cluster uuid ({_describe(present)}): "
                        "an operator must choose (force_bootstrap_node)", ())
    candidates = sorted((r for r in present if r.seqno != NO_SEQNO and r.uuid in uuids and not r.sst_incomplete),
                        key=lambda r: _rank(r, order))
    partial = [r.node for r in present if r.sst_incomplete]
    if not candidates and partial:
        # A datadir that was receiving a state transfer proves a cluster with data existed: never "new".
        return Decision("wait", None, f"{', '.join(partial)} hold(s) an unfinished state transfer and no other "
                        f"reporting node has a usable position ({_describe(present)}): waiting for a node that "
                        "holds the cluster's data", tuple(n for n in nodes if n not in partial))
    if not candidates and not missing:
        # Nobody holds state Galera knows of (a new cluster, or datadirs without any wsrep position):
        # every node is equal, so the first in address order starts it, as every node computes alike.
        first = sorted(present, key=lambda r: _rank(r, order))[0]
        return Decision("bootstrap", first.node, f"no node has a recorded position ({_describe(present)}): "
                        f"new cluster, {first.node} bootstraps by address order")
    if not candidates:
        return Decision("wait", None, f"no reporting node has a usable position ({_describe(present)}): "
                        "an operator must choose (force_bootstrap_node)")
    best = candidates[0]
    left_out = f"; left out (fenced, not in the last Primary view): {', '.join(missing)}" if missing else ""
    if partial:
        left_out += f"; never candidates (unfinished state transfer): {', '.join(partial)}"
    return Decision("bootstrap", best.node, f"{best.node} has the highest seqno {best.seqno} of cluster {best.uuid} "
                    f"(positions: {_describe(present)}{left_out})")


def _arbitrator(member: str, arbitrators: frozenset[str]) -> bool:
    """Whether a view member is one of the arbitrators, given in full or as gcomm logs them: the uuid's first and
    fourth groups (f03bb273-ee76-11f1-9100-f7c5ca3f3972 is logged as f03bb273-9100)."""
    parts = member.split("-")
    short = f"{parts[0]}-{parts[3]}" if len(parts) == 5 else member
    return member in arbitrators or short in arbitrators


def _blocking(missing: list[str], present: list[NodeReport], fenced: frozenset[str],
              online: frozenset[str] | None, two_node: bool = False,
              arbitrators: frozenset[str] = frozenset()) -> tuple[tuple[str, ...], str] | None:
    """Why the missing nodes must be waited for, or None when all of them provably hold no newer data."""
    unfenced = [n for n in missing if n not in fenced or (online is not None and n in online)]
    if unfenced:
        return (tuple(missing), f"waiting for {', '.join(missing)} to report its position "
                f"({', '.join(unfenced)} not recorded as fenced since it last joined, or online; "
                f"have {_describe(present)})")
    no_view = [r.node for r in present if r.view is None]
    if no_view:
        return (tuple(missing), f"waiting for {', '.join(missing)} (fenced): cannot prove it left before the last "
                f"Primary view because {', '.join(no_view)} recorded no view (gvwstate.dat)")
    if two_node:
        # Two nodes: one alone is never a Primary component, so after the last Primary view this node saw (it
        # recorded one, so it did not leave cleanly) its peer committed nothing without it; the peer is down.
        return None
    members, unaccounted = view_members(present, arbitrators)
    if unaccounted:
        seqs = ", ".join(f"{r.node}:{r.view.seq}" for r in present)
        return (tuple(missing), f"waiting for {', '.join(missing)}: the last Primary views ({seqs}) had "
                f"{len(members)} members and {len(unaccounted)} of them {'is' if len(unaccounted) == 1 else 'are'} "
                "not among the reporting nodes")
    return None


def view_members(present: list[NodeReport], arbitrators: frozenset[str] = frozenset()) -> tuple[set[str], set[str]]:
    """(every member of the reporting nodes' last Primary views, those members that are neither a reporting node
    nor an arbitrator): the second may be a missing node that committed after the others left."""
    # View seqnos restart with every bootstrap, so they cannot say which view is newest: take the union
    # of every reporting node's last view. Any member that is not a reporting node may be a missing one.
    members: set[str] = set()
    for r in present:
        if r.view is not None:
            members |= r.view.members
    mine = {r.view.my_uuid for r in present if r.view is not None}
    # An arbitrator (garbd) is a member that holds no data.
    return members, {m for m in members - mine if not _arbitrator(m, arbitrators)}
