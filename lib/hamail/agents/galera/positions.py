# SPDX-License-Identifier: GPL-2.0-or-later
"""Where a Galera node's data ends: grastate.dat after a clean shutdown, else --wsrep-recover; the last Primary
view it saw (gvwstate.dat); and the one change the agent makes to the datadir, grastate.dat's safe_to_bootstrap.
The parsing itself is pure (hamail.agents.galera.recovery); this module reads and writes the files."""

from __future__ import annotations

import os

from hamail.agents.galera import server
from hamail.ocf import Context, OCFError, OCFExit
from hamail.system.files import atomic_write

__all__ = ["Position", "SST_MARKERS", "KEPT_VIEW", "unfinished_transfer", "read_grastate",
           "set_safe_to_bootstrap", "read_view", "keep_view", "forget_view", "recover"]


def read_grastate(ctx: Context):
    """(GraState or None when absent, raw text); OCFError if the file exists but cannot be used."""
    from hamail.agents.galera.recovery import parse_grastate
    path = os.path.join(ctx.config.datadir, "grastate.dat")
    try:
        with open(path, encoding="utf-8", errors="strict") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None, ""
    except (OSError, UnicodeDecodeError) as exc:
        raise OCFError(OCFExit.ERR_GENERIC, f"{path} is unreadable ({exc}); fix or move it aside by hand") from None
    try:
        return parse_grastate(text), text
    except ValueError as exc:
        raise OCFError(OCFExit.ERR_GENERIC, f"{path} is unreadable ({exc}); fix or move it aside by hand") from None


def set_safe_to_bootstrap(ctx: Context, value: bool) -> bool:
    """Set safe_to_bootstrap in grastate.dat; returns the previous value."""
    from hamail.agents.galera.recovery import set_safe_to_bootstrap as rewritten
    state, text = read_grastate(ctx)
    if state is None:
        return False
    if state.safe_to_bootstrap != value:
        atomic_write(os.path.join(ctx.config.datadir, "grastate.dat"), rewritten(text, value), keep_owner=True,
                     sync=True)
        ctx.log.info("grastate.dat: safe_to_bootstrap %d -> %d", int(state.safe_to_bootstrap), int(value))
    return state.safe_to_bootstrap


# A copy of gvwstate.dat that the agent keeps across a clean shutdown (Galera removes gvwstate.dat then).
KEPT_VIEW = "hamail-gvwstate.dat"


def read_view(ctx: Context):
    """(last Primary view, when it was written) or (None, None): from gvwstate.dat, else from the copy taken
    before this node's last clean shutdown (keep_view); an empty gvwstate.dat is removed (codership/galera#354)."""
    view, written, _ = _read_view_file(ctx, os.path.join(ctx.config.datadir, "gvwstate.dat"))
    if view is None:
        kept, kept_time, _ = _read_view_file(ctx, os.path.join(ctx.config.datadir, KEPT_VIEW))
        if kept is not None:
            ctx.log.info("last Primary view from the copy kept at the last clean shutdown: %r", kept)
            return kept, kept_time
    return view, written


def _read_view_file(ctx: Context, path: str):
    """(view, mtime, text) of a gvwstate file, Nones when absent, empty or unusable; an empty one is removed
    (codership/galera#354: it would prevent the next start)."""
    from hamail.agents.galera.recovery import parse_gvwstate
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            written = os.fstat(handle.fileno()).st_mtime
            text = handle.read()
    except OSError:
        return None, None, None
    if not text.strip():
        ctx.log.warning("empty %s: removing it, it would prevent the next start (codership/galera#354)", path)
        os.unlink(path)
        return None, None, None
    view = parse_gvwstate(text)
    return (view, written, text) if view is not None else (None, None, None)


def keep_view(ctx: Context) -> None:
    """Before a clean shutdown (which makes Galera remove gvwstate.dat) of a server that is no longer in a
    Primary component: keep a copy of its last Primary view, with its time, for the next recovery. The
    server's next start removes the copy (forget_view).

    A server still in a Primary component leaves it cleanly and the others go on committing without it: its
    last view then says nothing about what happened after, so nothing is kept (it waits for the others, as a
    node that left cleanly must).
    """
    from hamail.adapters.mysql import MySQLError
    try:
        status = server.wsrep_status(ctx)
    except (MySQLError, OCFError):
        return  # unknown: keeping nothing is the safe side (the node waits for the others)
    if status.get("wsrep_cluster_status") == "Primary":
        return
    view, mtime, text = _read_view_file(ctx, os.path.join(ctx.config.datadir, "gvwstate.dat"))
    if view is None:
        return  # never Primary since the last start: nothing newer to keep
    target = os.path.join(ctx.config.datadir, KEPT_VIEW)
    atomic_write(target, text, sync=True)
    os.utime(target, (mtime, mtime))


def forget_view(ctx: Context) -> None:
    """The server starts: a kept copy would be older than what Galera records from now on."""
    try:
        os.unlink(os.path.join(ctx.config.datadir, KEPT_VIEW))
    except FileNotFoundError:
        pass


class Position:
    """Where this node's data ends and what it knows of the cluster: what it publishes for the decision.

    uuid and seqno of its last commit, safe_to_bootstrap from grastate.dat, no_grastate (no file, or
    transactions rolled back: never the bootstrap choice), its last Primary view (encoded) and when it was
    written (epoch seconds as text, '' when unknown).
    """

    __slots__ = ("uuid", "seqno", "safe_to_bootstrap", "no_grastate", "view", "view_time", "sst_incomplete",
                 "start_position")

    def __init__(self, uuid: str, seqno: int, safe_to_bootstrap: bool, no_grastate: bool, view: str = "",
                 view_time: str = "", sst_incomplete: bool = False, start_position: str = "") -> None:
        self.uuid, self.seqno, self.safe_to_bootstrap = uuid, seqno, safe_to_bootstrap
        self.no_grastate, self.view, self.view_time = no_grastate, view, view_time
        self.sst_incomplete = sst_incomplete
        # uuid:seqno recovered by --wsrep-recover where grastate.dat has none: the server must be started with it
        # (--wsrep-start-position, as mysqld_safe does), else a bootstrap starts a new history at 0 and every
        # joiner needs a full state transfer instead of an incremental one
        self.start_position = start_position

    def __repr__(self) -> str:
        return (f"Position({self.uuid}:{self.seqno}, safe_to_bootstrap={int(self.safe_to_bootstrap)}, "
                f"no_grastate={int(self.no_grastate)}{', sst_incomplete=1' if self.sst_incomplete else ''})")


# What Galera's SST scripts (wsrep_sst_common: rsync, mariabackup) leave in the datadir while a state transfer
# into it runs, removed when it finishes: present after a restart, the datadir is a partial copy.
SST_MARKERS = ("sst_in_progress",)


def unfinished_transfer(datadir: str) -> str | None:
    """The marker of a state transfer into datadir that never finished, or None."""
    for name in SST_MARKERS:
        path = os.path.join(datadir, name)
        if os.path.lexists(path):
            return path
    return None


def recover(ctx: Context) -> Position:
    """This node's position: grastate.dat after a clean shutdown, else --wsrep-recover (with the known quirks)."""
    state, _ = read_grastate(ctx)
    view, written = read_view(ctx)
    encoded = view.encode() if view else ""
    view_time = str(int(written)) if written else ""
    marker = unfinished_transfer(ctx.config.datadir)
    if marker is not None:
        # No --wsrep-recover: InnoDB of a half-copied datadir may report any position, or crash. Galera gives
        # this node a full state transfer when it joins (the SST script removes the marker when it is done).
        from hamail.agents.galera.recovery import NO_SEQNO, ZERO_UUID
        ctx.log.warning("%s exists: a state transfer into this datadir never finished; this node holds a partial "
                        "copy, is never a bootstrap candidate and will take a full state transfer", marker)
        uuid = state.uuid if state is not None else ZERO_UUID
        return Position(uuid, NO_SEQNO, False, True, encoded, view_time, sst_incomplete=True)
    if state is not None and state.has_position:
        ctx.log.info("position from grastate.dat: %s:%d safe_to_bootstrap=%d", state.uuid, state.seqno,
                     int(state.safe_to_bootstrap))
        return Position(state.uuid, state.seqno, state.safe_to_bootstrap, False, encoded, view_time)
    ctx.log.info("grastate.dat %s: running --wsrep-recover", "is absent" if state is None else
                 f"has no position ({state.uuid}:{state.seqno})")
    no_grastate = state is None
    rolled_back = False
    rec = _run_recovery(ctx)
    if not rec.found and rec.prepared:
        ctx.log.warning("--wsrep-recover found %d prepared transaction(s): rolling back with --tc-heuristic-recover",
                        rec.prepared)
        rec = _run_recovery(ctx, "--tc-heuristic-recover=rollback")
        if rec.found and state is not None:
            # The rolled-back transactions may have committed elsewhere: without grastate.dat this node takes
            # a full state transfer when it joins (as heartbeat galera does), and it is the last choice to
            # bootstrap among equals (no_grastate).
            path = os.path.join(ctx.config.datadir, "grastate.dat")
            try:
                os.unlink(path)
                ctx.log.warning("removed %s after rolling back prepared transactions: this node takes a full "
                                "state transfer when it joins", path)
            except FileNotFoundError:
                pass
            no_grastate = True
            rolled_back = True
    if not rec.found:
        raise OCFError(OCFExit.ERR_GENERIC, "unable to detect the last committed seqno: --wsrep-recover reported no "
                       "position" + (f" ({rec.prepared} prepared transactions)" if rec.prepared else "")
                       + f"; see {ctx.config.log}")
    ctx.log.info("position from --wsrep-recover: %s:%d", rec.uuid, rec.seqno)
    # Not after a rollback: that node must take a full state transfer (its grastate.dat is gone on purpose).
    start = f"{rec.uuid}:{rec.seqno}" if not rolled_back and rec.seqno >= 0 else ""
    return Position(rec.uuid, rec.seqno, bool(state is not None and state.safe_to_bootstrap), no_grastate, encoded,
                    view_time, start_position=start)


def _run_recovery(ctx: Context, *extra: str):
    """Run the server with --wsrep-recover into a private log file and parse it."""
    import pwd
    import tempfile
    from hamail.agents.galera.recovery import parse_recovery_log
    user = pwd.getpwnam(ctx.config.user)
    fd, log = tempfile.mkstemp(prefix="hamail-galera-recover.", suffix=".log")
    try:
        os.fchown(fd, user.pw_uid, user.pw_gid)
        os.close(fd)
        # --wsrep-cluster-address: with wsrep_sst_method=rsync and no address in my.cnf the server refuses to
        # recover; --wsrep-recover never connects to it. The pid file and socket are the recovery's own.
        argv = [a for a in server.argv(ctx) if not a.startswith(("--pid-file=", "--socket="))]
        argv += [f"--pid-file={log}.pid", f"--socket={log}.sock", "--wsrep-recover",
                 f"--wsrep-cluster-address={ctx.config.wsrep_cluster_address}", f"--log-error={log}", *extra]
        result = ctx.run(argv, timeout=max(5.0, ctx.deadline.remaining() - 2))
        with open(log, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        text += "\n" + result.stderr
        rec = parse_recovery_log(text)
        if not rec.found and rec.redirect and os.path.isfile(rec.redirect):
            with open(rec.redirect, encoding="utf-8", errors="replace") as handle:
                rec = parse_recovery_log(handle.read())
        if not rec.found:
            tail = [line for line in text.splitlines() if "ERROR" in line][-3:]
            ctx.log.error("--wsrep-recover (rc %d) gave no position: %s", result.rc, " | ".join(tail) or "(no errors)")
        return rec
    finally:
        for path in (log, f"{log}.pid", f"{log}.sock"):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
