# SPDX-License-Identifier: GPL-2.0-or-later
"""DRBD's fence-peer and unfence handlers for Pacemaker (hamail-drbd-fence-peer, hamail-drbd-unfence-peer).

What drbd-utils' crm-fence-peer.sh / crm-unfence-peer.sh do, in the library: fence-peer places the location
constraint ``<id-prefix>-<resource>-<clone id>`` that keeps the Promoted role of the resource's promotable
clone off every node but this one (a -INFINITY rule on ``#uname ne <this node>``), and answers DRBD with the
fence-peer exit codes of drbd.conf(5): 3 the peer is Inconsistent, 4 the peer is outdated (the constraint is
in the CIB), 5 the peer is unreachable (DRBD outdates it only while our disk is UpToDate), 6 outdate
yourself, 7 the peer was fenced (STONITH) and the constraint is in the CIB; anything else DRBD treats as a
broken handler: it claims nothing about the peer (with ``fencing resource-and-stonith`` IO stays frozen).
The unfence handler (``after-resync-target``, or DRBD 9's ``unfence-peer``) removes the constraint once this
node's and the peer's disks are all UpToDate.

Safety rules kept here: 4 and 7 (and 5 with UpToDate data) are answered only after the constraint has been
read back from the CIB; a constraint of the same id that keeps the role on another node is never replaced
(the peer won a race: this node must not be promoted); DRBD's state is read from /proc/drbd (8.4: a fence-peer
callback may run under DRBD's netlink lock) or ``drbdsetup events2`` (9); every tool call is bounded by
one deadline derived from ``--timeout`` and ``--dc-timeout``.
"""

from __future__ import annotations

import os

from hamail.agents.drbd.state import ResourceState, UNCONFIGURED, from_proc_drbd, kernel_version, parse_events2

__all__ = ["Options", "parse_options", "constraint_id", "PeerState", "classify_peer", "Outcome", "fence_outcome",
           "unfence_outcome", "fence_peer", "unfence_peer", "main",
           "PEER_INCONSISTENT", "PEER_OUTDATED", "PEER_UNREACHABLE", "OUTDATE_MYSELF", "PEER_FENCED", "FAILED"]

# The fence-peer exit codes DRBD acts on (drbd.conf(5); drbd_nl.c conn_try_outdate_peer in the 8.4 kernel).
PEER_INCONSISTENT = 3
PEER_OUTDATED = 4
PEER_UNREACHABLE = 5
OUTDATE_MYSELF = 6
PEER_FENCED = 7
# Any other code: "fence-peer helper broken"; DRBD marks nothing outdated and refuses a promotion that needed it.
FAILED = 1

PROC_DRBD = "/proc/drbd"
LOCK_DIR = "/var/lock/drbd"
DEFAULT_PREFIX = "drbd-fence-by-handler"
# Time for the CIB reads and the write once the peer's state is known, on top of --timeout.
WRITE_GRACE = 30.0
# Names that reach cibadmin's XML and the lock file's name: what Pacemaker ids and DRBD resource names use.
_NAME_CHARS = frozenset("-._:0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_ROLES = ("Promoted", "Master")


class Options:
    """What a handler was asked to do: drbd.conf's handler arguments (crm-fence-peer.sh's names)."""

    __slots__ = ("resource", "master_id", "role", "id_prefix", "timeout", "dc_timeout", "quiet", "owner_match",
                 "flock_timeout", "flock_required")

    def __init__(self, resource: str = "", master_id: str = "", role: str = "", id_prefix: str = DEFAULT_PREFIX,
                 timeout: int = 90, dc_timeout: int = 20, quiet: bool = False, owner_match: bool = False,
                 flock_timeout: int = 120, flock_required: bool = False) -> None:
        self.resource, self.master_id, self.role, self.id_prefix = resource, master_id, role, id_prefix
        self.timeout, self.dc_timeout, self.quiet, self.owner_match = timeout, dc_timeout, quiet, owner_match
        self.flock_timeout, self.flock_required = flock_timeout, flock_required


# option -> (Options field, takes a value); the short names are crm-fence-peer.sh's.
_OPTIONS = {
    "--resource": ("resource", True), "-r": ("resource", True),
    "--master-id": ("master_id", True), "-i": ("master_id", True),
    "--role": ("role", True), "-l": ("role", True),
    "--id-prefix": ("id_prefix", True), "-p": ("id_prefix", True),
    "--timeout": ("timeout", True), "-t": ("timeout", True),
    "--dc-timeout": ("dc_timeout", True), "-d": ("dc_timeout", True),
    "--flock-timeout": ("flock_timeout", True),
    "--quiet": ("quiet", False), "--unfence-only-if-owner-match": ("owner_match", False),
    "--flock-required": ("flock_required", False),
}
_NUMBERS = {"timeout": 86400, "dc_timeout": 86400, "flock_timeout": 86400}


def parse_options(argv, environ) -> Options:
    """The handler's arguments, then OCF_RESKEY_unfence_extra_args (as the drbd agent passes them), over the
    environment DRBD gives (DRBD_RESOURCE); ValueError with a one-line reason for anything else."""
    words = list(argv) + environ.get("OCF_RESKEY_unfence_extra_args", "").split()
    opts = Options(resource=environ.get("DRBD_RESOURCE", ""))
    index = 0
    while index < len(words):
        word = words[index]
        name, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if name not in _OPTIONS:
            raise ValueError(f"unknown option {word!r} (supported: {', '.join(sorted(_OPTIONS))})")
        field, takes = _OPTIONS[name]
        if not takes:
            if eq:
                raise ValueError(f"option {name} takes no value")
            setattr(opts, field, True)
        else:
            if not eq:
                index += 1
                if index >= len(words):
                    raise ValueError(f"option {name} needs a value")
                value = words[index]
            setattr(opts, field, _value(field, name, value))
        index += 1
    if not opts.resource:
        raise ValueError("no DRBD resource: DRBD_RESOURCE is not set (drbdadm sets it) and --resource was not given")
    for field in ("resource", "master_id", "id_prefix"):
        text = getattr(opts, field)
        if text and not set(text) <= _NAME_CHARS:
            raise ValueError(f"{field.replace('_', '-')} {text!r} may only contain letters, digits and -._:")
    if opts.role and opts.role not in _ROLES:
        raise ValueError(f"role {opts.role!r}: the constraint bans Promoted (or its old name Master)")
    return opts


def _value(field: str, name: str, text: str):
    if field not in _NUMBERS:
        return text
    if not text.isdigit() or not 0 <= int(text) <= _NUMBERS[field]:
        raise ValueError(f"option {name} wants whole seconds (0..{_NUMBERS[field]}), got {text!r}")
    return int(text)


def constraint_id(id_prefix: str, resource: str, master_id: str) -> str:
    """<prefix>-<resource>-<clone id>: one constraint per DRBD resource, even when several share one clone (the
    resource is appended to the prefix unless the prefix already ends with it, as crm-fence-peer.sh does)."""
    prefix = id_prefix if id_prefix.endswith(f"-{resource}") else f"{id_prefix}-{resource}"
    return f"{prefix}-{master_id}"


# ------------------------------------------------------------------------------ the peer, as Pacemaker sees it

class PeerState:
    """Where Pacemaker stands on the peer node. WAIT_* are passing states the poll waits out."""

    REACHABLE = "reachable"        # online, and its controller answers
    FENCED = "fenced"              # offline and cleanly down (fenced, or shut down): Pacemaker runs nothing there
    UNREACHABLE = "unreachable"    # offline and unclean at the end of --timeout: fencing did not complete
    UNKNOWN = "unknown"            # still not definite at the end of --timeout
    DC_UNREACHABLE = "DC-unreachable"  # no DC within --dc-timeout: the CIB cannot be written
    WAIT_DC = "wait-dc"
    WAIT_ONLINE = "wait-online"    # online in the CIB: ask its controller
    WAIT_FENCING = "wait-fencing"  # offline and unclean: fencing is pending
    WAIT_UNKNOWN = "wait-unknown"  # not in the status at all


def classify_peer(status, peer: str | None, me: str) -> str:
    """One look at crm_mon's status (a crmmon.ClusterStatus): the peer's state or what to wait for. Without a
    named peer, the one other node of a two-node cluster is the peer."""
    if status.dc is None:
        return PeerState.WAIT_DC
    if not peer:
        others = [name for name in status.nodes if name != me]
        peer = others[0] if len(others) == 1 else None
    node = status.nodes.get(peer) if peer else None
    if node is None:
        return PeerState.WAIT_UNKNOWN
    if node.online:
        return PeerState.WAIT_ONLINE
    if not node.unclean:
        return PeerState.FENCED
    return PeerState.WAIT_FENCING


def final_peer_state(waiting: str) -> str:
    """What a passing state means once --timeout is over."""
    return {PeerState.WAIT_FENCING: PeerState.UNREACHABLE, PeerState.WAIT_DC: PeerState.DC_UNREACHABLE}.get(
        waiting, PeerState.UNKNOWN)


# ------------------------------------------------------------------------------ the decisions

class Outcome:
    """A decision: whether to place (or remove) the constraint, the exit code, and why (one line)."""

    __slots__ = ("act", "code", "why")

    def __init__(self, act: bool, code: int, why: str) -> None:
        self.act, self.code, self.why = act, code, why

    def __repr__(self) -> str:
        return f"Outcome(act={self.act}, code={self.code}, why={self.why!r})"


def fence_outcome(state: ResourceState, peer_state: str) -> Outcome:
    """Whether to place the constraint and what to answer once it is in the CIB (or, without one, at once).

    Only whole data bans the peer: a reachable peer is outdated by our UpToDate or Consistent data, a fenced
    or unreachable one only by UpToDate data (Consistent data after a crash may be older than the peer's).
    """
    disks = "/".join(state.disk_states) or "none"
    if not state.configured or not state.volumes:
        return Outcome(False, FAILED, f"cannot tell the local disk state of {state.name}: no constraint placed")
    if state.peer_disks_all_up_to_date:
        return Outcome(False, FAILED, "every peer disk is UpToDate (the link is back): no constraint placed")
    if peer_state == PeerState.REACHABLE and state.disks_all_consistent:
        return Outcome(True, PEER_OUTDATED, f"peer is reachable, my disk is {disks}")
    if peer_state == PeerState.FENCED and state.disks_all_up_to_date:
        return Outcome(True, PEER_FENCED, f"peer is fenced, my disk is {disks}")
    if state.disks_all_up_to_date:
        return Outcome(True, PEER_UNREACHABLE, f"peer is {peer_state}, my disk is UpToDate")
    # DRBD outdates a peer on 5 only while our disk is UpToDate: this claims nothing, and a promotion that
    # needed the peer fenced fails.
    return Outcome(False, PEER_UNREACHABLE, f"peer is {peer_state}, my disk is {disks}: no constraint placed")


def unfence_outcome(state: ResourceState, owner: str | None, me: str, owner_match: bool) -> Outcome:
    """Whether to remove an existing constraint: once every disk here and on the peer is UpToDate (and, with
    --unfence-only-if-owner-match, only a constraint that keeps the role on this node)."""
    if owner_match and owner != me:
        return Outcome(False, 0, f"the constraint keeps the Promoted role on {owner or 'another node'}, not on "
                                 f"{me}: left in place (--unfence-only-if-owner-match)")
    if not state.disks_all_up_to_date:
        return Outcome(False, FAILED, f"my disk is {'/'.join(state.disk_states) or 'unknown'}, not UpToDate: "
                                      f"constraint left in place")
    if not state.peer_disks_all_up_to_date:
        peers = "/".join(v.peer_disk for c in state.connections for v in c.volumes) or "unknown"
        return Outcome(False, FAILED, f"peer disk is {peers}, not UpToDate: constraint left in place")
    return Outcome(True, 0, "every disk here and on the peer is UpToDate")


# ------------------------------------------------------------------------------ the handlers

class _Handler:
    """One handler run: options, runner, deadline, log, and what both handlers read."""

    def __init__(self, opts: Options, environ, runner, deadline, log, proc_drbd: str = PROC_DRBD) -> None:
        from hamail.pacemaker.constraints import Constraints
        self.opts, self.environ, self.runner, self.deadline, self.log = opts, environ, runner, deadline, log
        self.proc_drbd = proc_drbd
        self.cib = Constraints(runner, deadline)

    def tool_timeout(self, most: float = 20.0) -> float:
        """A tool call's timeout: at most `most`, never past the deadline."""
        return max(0.5, min(most, self.deadline.remaining()))

    def node_name(self) -> str:
        """This node's name in Pacemaker (crm_node -n), uname's when Pacemaker does not answer."""
        result = self.runner.run(["crm_node", "-n"], deadline=self.deadline, timeout=self.tool_timeout(10))
        name = result.stdout.strip() if result.ok else ""
        return name or os.uname().nodename

    def clone_and_id(self, cib) -> tuple[str, str]:
        """The promotable clone running this DRBD resource and the constraint id; ValueError without a clone."""
        from hamail.pacemaker.constraints import promotable_holding
        master = self.opts.master_id or promotable_holding(cib, "drbd_resource", self.opts.resource)
        if not master:
            raise ValueError(f"no promotable clone with drbd_resource={self.opts.resource} in the CIB "
                             f"(or give --master-id)")
        return master, constraint_id(self.opts.id_prefix, self.opts.resource, master)

    def observe(self) -> ResourceState:
        """The resource's DRBD state: /proc/drbd on 8.4 (minors from DRBD_MINOR or drbdadm), events2 on 9."""
        name = self.opts.resource
        try:
            with open(self.proc_drbd, encoding="ascii", errors="replace") as handle:
                text = handle.read()
        except OSError:
            return UNCONFIGURED(name)
        version = kernel_version(text)
        if version and version >= (9, 0, 0):
            result = self.runner.run(["drbdsetup", "events2", "--now", name], deadline=self.deadline,
                                     timeout=self.tool_timeout())
            return parse_events2(name, result.stdout) if result.ok else UNCONFIGURED(name)
        minors = [int(w) for w in self.environ.get("DRBD_MINOR", "").split() if w.isdigit()]
        if not minors:
            conf = self.environ.get("DRBD_CONF", "")
            result = self.runner.run(["drbdadm", *(["-c", conf] if conf else []), "sh-minor", name],
                                     deadline=self.deadline, timeout=self.tool_timeout())
            minors = [int(w) for w in result.stdout.split() if w.isdigit()] if result.ok else []
        return from_proc_drbd(name, minors, text)

    def peer_name(self) -> str | None:
        """The peer DRBD names: DRBD_PEER (8.4), the one name in DRBD_PEERS, or DRBD_NODE_ID_<peer id> (9)."""
        peer = self.environ.get("DRBD_PEER", "").strip()
        peers = self.environ.get("DRBD_PEERS", "").split()
        node_id = self.environ.get("DRBD_PEER_NODE_ID", "").strip()
        by_id = self.environ.get(f"DRBD_NODE_ID_{node_id}", "").strip() if node_id else ""
        return peer or by_id or (peers[0] if len(peers) == 1 else None)

    def confirm_online(self, peer: str | None) -> bool:
        """Whether the peer's controller answers crmadmin (a node the CIB shows online may have just died)."""
        if not peer:
            return False
        seconds = self.tool_timeout(10)
        result = self.runner.run(["crmadmin", "--timeout", f"{int(seconds * 1000)}ms", "--status", peer],
                                 deadline=self.deadline, timeout=seconds + 2)
        text = result.stdout.strip()
        return result.ok and (text.endswith(": ok") or text.endswith("(ok)"))

    def peer_state(self, me: str) -> str:
        """Poll crm_mon until the peer's state is definite; bounded by --dc-timeout and --timeout."""
        from hamail.pacemaker import PacemakerError
        from hamail.pacemaker.crmmon import read_cluster_status
        from hamail.system.runner import CommandTimeout
        peer = self.peer_name()
        dc_deadline = self.deadline.sub(self.opts.dc_timeout)
        peer_deadline = self.deadline.sub(self.opts.timeout)
        while True:
            try:
                status = read_cluster_status(self.runner, self.deadline.sub(self.tool_timeout()))
                seen = classify_peer(status, peer, me)
                if peer is None and seen != PeerState.WAIT_DC:
                    peer = next((n for n in status.nodes if n != me), None) if len(status.nodes) == 2 else None
            except (PacemakerError, CommandTimeout) as exc:
                self.log.debug("crm_mon: %s", exc)
                seen = PeerState.WAIT_DC
            if seen == PeerState.FENCED:
                return seen
            if seen == PeerState.WAIT_ONLINE and self.confirm_online(peer):
                return PeerState.REACHABLE
            if seen == PeerState.WAIT_DC and dc_deadline.expired():
                return PeerState.DC_UNREACHABLE
            if peer_deadline.expired():
                return final_peer_state(seen)
            self.log.debug("peer %s: %s; polling again", peer, seen)
            (dc_deadline if seen == PeerState.WAIT_DC else peer_deadline).sleep(1.0)


def fence_peer(handler: _Handler) -> int:
    """The fence-peer handler: place the constraint when the data allows it, answer with DRBD's exit codes."""
    from hamail.pacemaker.constraints import find_by_id, node_name_in_rule, role_name, role_only_on, same_constraint
    opts, log = handler.opts, handler.log
    cib = handler.cib.query()
    master, cid = handler.clone_and_id(cib)
    me = handler.node_name()
    want = role_only_on(cid, master, opts.role or role_name(cib), me)
    have = find_by_id(cib, "rsc_location", cid)
    if have is not None:
        if same_constraint(have, want):
            log.info("suitable constraint already placed: %s", cid)
            return PEER_OUTDATED
        log.warning("constraint %s exists and keeps the Promoted role on %s: not replaced, peer not outdated",
                    cid, node_name_in_rule(have) or "another node")
        return FAILED
    peer_state = handler.peer_state(me)
    state = handler.observe()
    outcome = fence_outcome(state, peer_state)
    if not outcome.act:
        log.warning("%s", outcome.why)
        return outcome.code
    created = handler.cib.create(want)
    placed = find_by_id(handler.cib.query(), "rsc_location", cid)
    if not same_constraint(placed, want):
        log.error("constraint %s is not in the CIB as placed (%s): DATA INTEGRITY at RISK, peer not outdated",
                  cid, "created, then changed" if created else "another one exists")
        return FAILED
    log.info("%s: placed constraint %s", outcome.why, cid)
    if outcome.code in (PEER_OUTDATED, PEER_FENCED) and handler.observe().peer_disks_all_up_to_date:
        # The link came back while we worked: a peer that is UpToDate again is no longer outdated, and no
        # resync will run the unfence handler to lift the ban.
        handler.cib.delete("rsc_location", cid)
        log.warning("every peer disk is UpToDate again: constraint %s removed", cid)
        return FAILED
    return outcome.code


def unfence_peer(handler: _Handler) -> int:
    """The unfence handler: remove the constraint once every disk here and on the peer is UpToDate."""
    from hamail.pacemaker.constraints import find_by_id, node_name_in_rule
    opts, log = handler.opts, handler.log
    cib = handler.cib.query()
    master, cid = handler.clone_and_id(cib)
    have = find_by_id(cib, "rsc_location", cid)
    if have is None:
        if not opts.quiet:
            log.info("no constraint %s in place, nothing to do", cid)
        return 0
    me = handler.node_name() if opts.owner_match else ""
    outcome = unfence_outcome(handler.observe(), node_name_in_rule(have), me, opts.owner_match)
    if not outcome.act:
        log.warning("%s", outcome.why)
        return outcome.code
    handler.cib.delete("rsc_location", cid)
    if find_by_id(handler.cib.query(), "rsc_location", cid) is not None:
        log.error("constraint %s is still in the CIB after cibadmin --delete", cid)
        return FAILED
    log.info("%s: removed constraint %s", outcome.why, cid)
    return 0


class _Lock:
    """crm-fence-peer.sh's per-resource lock (/var/lock/drbd/fence.<resource>): one handler run at a time."""

    def __init__(self, resource: str, log) -> None:
        self.path = os.path.join(LOCK_DIR, f"fence.{resource}")
        self.log = log
        self.fd = -1

    def acquire(self, deadline, required: bool) -> bool:
        """Take the lock within the deadline; without it, go on unless it is required."""
        import fcntl
        from hamail.system.clock import DeadlineExceeded, poll
        try:
            os.makedirs(LOCK_DIR, mode=0o700, exist_ok=True)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            self.log.warning("cannot open the lock %s: %s", self.path, exc)
            return not required

        def take():
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return None
        try:
            return bool(poll(deadline, take, what=f"the lock {self.path}", longest=0.5))
        except DeadlineExceeded:
            self.log.warning("the lock %s is held by another handler run", self.path)
            return not required

    def release(self) -> None:
        """Close the lock file (which releases the lock)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def main(which: str, argv, environ, runner=None, clock=None, proc_drbd: str = PROC_DRBD) -> int:
    """Run the fence ("fence") or unfence ("unfence") handler; the exit code for DRBD, never a traceback."""
    from hamail.ocf.log import Log
    from hamail.pacemaker import PacemakerError
    from hamail.system.clock import Deadline, DeadlineExceeded
    from hamail.system.runner import CommandNotFound, CommandRunner, CommandTimeout
    # syslog's local5 as crm-fence-peer.sh logs (the kernel discards a helper's output); HA_LOGFILE, HA_DEBUGLOG
    # and HA_debug in the handler's command line add a file or debug output.
    log_env = {"HA_LOGFACILITY": "local5", **{k: environ[k] for k in ("HA_LOGFILE", "HA_DEBUGLOG", "HA_debug",
                                                                      "HA_LOGFACILITY") if k in environ}}
    log = Log(f"hamail-drbd-{which}-peer", log_env)
    try:
        opts = parse_options(argv, environ)
    except ValueError as exc:
        log.error("%s", exc)
        return FAILED
    log.debug("%s", " ".join(f"{k}={v}" for k, v in sorted(environ.items()) if k.startswith("DRBD_")))
    deadline = Deadline.after(max(opts.timeout, opts.dc_timeout) + WRITE_GRACE, clock)
    lock = _Lock(opts.resource, log)
    try:
        if not lock.acquire(deadline.sub(opts.flock_timeout), opts.flock_required):
            log.error("could not take the lock %s (--flock-required)", lock.path)
            return FAILED
        handler = _Handler(opts, environ, runner or CommandRunner(environ), deadline, log, proc_drbd)
        return fence_peer(handler) if which == "fence" else unfence_peer(handler)
    except (ValueError, PacemakerError, CommandNotFound, CommandTimeout, DeadlineExceeded) as exc:
        log.error("%s", exc)
        return FAILED
    except Exception as exc:  # a handler must answer DRBD, never die with a traceback
        log.debug("unexpected error", exc_info=True)
        log.error("unexpected error: %s: %s", type(exc).__name__, exc)
        return FAILED
    finally:
        lock.release()
