# SPDX-License-Identifier: GPL-2.0-or-later
"""Where a Galera node's data ends: grastate.dat after a clean shutdown, else --wsrep-recover; the last Primary
view it saw (gvwstate.dat); and the one change the agent makes to the datadir, grastate.dat's safe_to_bootstrap.
The parsing itself is pure (hamail.agents.galera.recovery); this module reads and writes the files."""

from __future__ import annotations

import os

from hamail.agents.galera import server
from hamail.ocf import Context, OCFError, OCFExit
from hamail.system.files import atomic_write

__all__ = ["Position", "read_grastate", "set_safe_to_bootstrap", "read_view", "recover"]


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


def read_view(ctx: Context):
    """(last Primary view from gvwstate.dat, when it was written) or (None, None); an empty file is removed
    (codership/galera#354)."""
    from hamail.agents.galera.recovery import parse_gvwstate
    path = os.path.join(ctx.config.datadir, "gvwstate.dat")
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            written = os.fstat(handle.fileno()).st_mtime
            text = handle.read()
    except OSError:
        return None, None
    if not text.strip():
        ctx.log.warning("empty %s: removing it, it would prevent the next start (codership/galera#354)", path)
        os.unlink(path)
        return None, None
    view = parse_gvwstate(text)
    return view, (written if view is not None else None)


class Position:
    """Where this node's data ends and what it knows of the cluster: what it publishes for the decision.

    uuid and seqno of its last commit, safe_to_bootstrap from grastate.dat, no_grastate (no file, or
    transactions rolled back: never the bootstrap choice), its last Primary view (encoded) and when it was
    written (epoch seconds as text, '' when unknown).
    """

    __slots__ = ("uuid", "seqno", "safe_to_bootstrap", "no_grastate", "view", "view_time")

    def __init__(self, uuid: str, seqno: int, safe_to_bootstrap: bool, no_grastate: bool, view: str = "",
                 view_time: str = "") -> None:
        self.uuid, self.seqno, self.safe_to_bootstrap = uuid, seqno, safe_to_bootstrap
        self.no_grastate, self.view, self.view_time = no_grastate, view, view_time

    def __repr__(self) -> str:
        return (f"Position({self.uuid}:{self.seqno}, safe_to_bootstrap={int(self.safe_to_bootstrap)}, "
                f"no_grastate={int(self.no_grastate)})")


def recover(ctx: Context) -> Position:
    """This node's position: grastate.dat after a clean shutdown, else --wsrep-recover (with the known quirks)."""
    state, _ = read_grastate(ctx)
    view, written = read_view(ctx)
    encoded = view.encode() if view else ""
    view_time = str(int(written)) if written else ""
    if state is not None and state.has_position:
        ctx.log.info("position from grastate.dat: %s:%d safe_to_bootstrap=%d", state.uuid, state.seqno,
                     int(state.safe_to_bootstrap))
        return Position(state.uuid, state.seqno, state.safe_to_bootstrap, False, encoded, view_time)
    ctx.log.info("grastate.dat %s: running --wsrep-recover", "is absent" if state is None else
                 f"has no position ({state.uuid}:{state.seqno})")
    no_grastate = state is None
    rec = _run_recovery(ctx)
    if not rec.found and rec.prepared:
        ctx.log.warning("--wsrep-recover found %d prepared transaction(s): rolling back with --tc-heuristic-recover",
                        rec.prepared)
        rec = _run_recovery(ctx, "--tc-heuristic-recover=rollback")
        if rec.found and state is not None:
            # The rolled-back transactions may have committed elsewhere: make this node take a full
            # state transfer when it joins, and avoid choosing it to bootstrap (no_grastate).
            no_grastate = True
    if not rec.found:
        raise OCFError(OCFExit.ERR_GENERIC, "unable to detect the last committed seqno: --wsrep-recover reported no "
                       "position" + (f" ({rec.prepared} prepared transactions)" if rec.prepared else "")
                       + f"; see {ctx.config.log}")
    ctx.log.info("position from --wsrep-recover: %s:%d", rec.uuid, rec.seqno)
    return Position(rec.uuid, rec.seqno, bool(state is not None and state.safe_to_bootstrap), no_grastate, encoded,
                    view_time)


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
