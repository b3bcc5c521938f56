# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:garbd: the Galera arbitrator, with the parameters of ocf:heartbeat:garbd.

garbd holds no data; it is a vote that lets two database nodes keep a Primary component when one of them is
lost (seed 002's third machine). The monitor checks more than a live pid: garbd must be in the Primary
component, because an arbitrator cut off from the cluster counts for nothing. Order it after the galera
clone is promoted (``order galera-then-garbd Mandatory: galera-clone:promote garbd:start``) so it starts
when a Primary component exists to join.
"""

from __future__ import annotations

import os

from hamail.agents.garbd import component
from hamail.ocf import ActionSpec, Agent, AgentSpec, ConfigError, Context, Kind, NotInstalled, OCFError, OCFExit
from hamail.ocf import Param, ParamTable, main
from hamail.system import proc
from hamail.system.files import rsctmp

GALERA_PORT = 4567  # Galera's group communication port, the one garbd must be told

PARAMS = ParamTable(
    Param("binary", Kind.STRING, "garbd binary",
          "The arbitrator program; a bare name is looked up in PATH (Debian installs /usr/bin/garbd, "
          "heartbeat's default is /usr/sbin/garbd).", default="garbd"),
    Param("user", Kind.STRING, "garbd user", "Unix user garbd runs as.", default="mysql"),
    Param("group", Kind.STRING, "garbd group", "Unix group garbd runs as.", default="mysql"),
    Param("log", Kind.PATH, "Log file",
          "garbd's log; the monitor reads from it which component garbd is in.", default="/var/log/garbd.log"),
    Param("pid", Kind.PATH, "PID file", "Where the agent records garbd's pid (garbd writes none).",
          default="/var/run/garbd.pid"),
    Param("options", Kind.STRING, "garbd options",
          "Group communication options (garbd --options), e.g. gmcast.listen_addr or socket.ssl_* settings."),
    Param("wsrep_cluster_address", Kind.STRING, "Galera cluster address",
          "gcomm://node1:4567,node2:4567: the database nodes garbd joins. A node given without a port gets "
          f"Galera's default {GALERA_PORT} (garbd itself needs it spelled out).", required=True),
    Param("wsrep_cluster_name", Kind.STRING, "Galera cluster name",
          "The group name, wsrep_cluster_name of the database nodes.", required=True),
)

SPEC = AgentSpec(
    name="garbd", version="0.1.0", shortdesc="Galera arbitrator",
    longdesc="Runs garbd, the Galera arbitrator, as the given user; start returns once garbd is a member of the "
             "Primary component, and the monitor fails when it is not (a non-Primary arbitrator is no vote).",
    params=PARAMS,
    actions=(ActionSpec("start", 20), ActionSpec("stop", 20), ActionSpec("monitor", 20, interval=20, depth=0),
             ActionSpec("meta-data", 5), ActionSpec("validate-all", 20)),
)


def address(ctx: Context) -> str:
    """The gcomm:// address garbd is given: every host with a port (Galera's default where none is given)."""
    value = ctx.config.wsrep_cluster_address.strip()
    if not value.startswith("gcomm://"):
        raise ConfigError(f"wsrep_cluster_address must start with gcomm:// (got {value!r})")
    hosts, sep, query = value[len("gcomm://"):].partition("?")
    names = [h.strip() for h in hosts.split(",") if h.strip()]
    if not names:
        raise ConfigError("wsrep_cluster_address names no node: garbd needs the database nodes to join")
    with_ports = [h if h.rsplit("]", 1)[-1].count(":") == 1 else f"{h}:{GALERA_PORT}" for h in names]
    return "gcomm://" + ",".join(with_ports) + sep + query


def validate(ctx: Context) -> None:
    """The program, the user and group, and an address naming the database nodes."""
    import grp
    import pwd
    address(ctx)
    _binary(ctx)
    if ctx.runner.find("setpriv") is None:
        raise NotInstalled("setpriv (util-linux) is not installed: garbd cannot be started as its user")
    try:
        pwd.getpwnam(ctx.config.user)
    except KeyError:
        raise NotInstalled(f"user {ctx.config.user} does not exist on this node") from None
    try:
        grp.getgrnam(ctx.config.group)
    except KeyError:
        raise NotInstalled(f"group {ctx.config.group} does not exist on this node") from None


def _binary(ctx: Context) -> str:
    """The garbd program: as configured, or (heartbeat's /usr/sbin/garbd on a Debian node) the same name in PATH."""
    configured = ctx.config.binary
    found = ctx.runner.find(configured)
    if found is None and "/" in configured:
        found = ctx.runner.find(os.path.basename(configured))
        if found is not None:
            ctx.log.warning("binary %s does not exist; using %s", configured, found)
    if found is None:
        raise NotInstalled(f"{configured} is not installed (Debian: galera-arbitrator-4)")
    return found


def _pid(ctx: Context) -> int | None:
    """garbd's pid from the pid file when that process lives and is garbd (stale or reused pids are not)."""
    try:
        with open(ctx.config.pid, encoding="ascii") as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    return pid if proc.alive(pid) and (proc.comm(pid) or "").startswith("garbd") else None


def _cursor_store(ctx: Context):
    """Where this instance keeps its position in garbd's log."""
    return component.store(rsctmp(ctx.env.raw), ctx.env.instance)


def _component(ctx: Context) -> str:
    """The component state garbd logged last (the cursor advanced and saved)."""
    store = _cursor_store(ctx)
    cursor = component.Cursor.parse(store.read()) or component.Cursor(0, 0, 0, component.UNKNOWN)
    cursor = component.advance(ctx.config.log, cursor)
    store.write(cursor.text())
    return cursor.state


def _log_errors(ctx: Context) -> str:
    """garbd's last error lines, for an exit reason."""
    try:
        with open(ctx.config.log, "rb") as handle:
            handle.seek(max(0, os.fstat(handle.fileno()).st_size - 8192))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    errors = [line.strip() for line in lines if "ERROR" in line or "FATAL" in line]
    return (": " + errors[-1][:300]) if errors else ""


def _workdir(ctx: Context) -> str:
    """garbd's working directory: gcomm saves its view (gvwstate.dat) in the current directory."""
    return os.path.join(rsctmp(ctx.env.raw), f"garbd-{ctx.env.instance}".replace("/", "_"))


def _prepare_files(ctx: Context) -> str:
    """garbd writes its log and view as its user: create the log (mode 0640), the pid file's directory and
    a private working directory (Pacemaker's is not writable for garbd's user); that directory."""
    import grp
    import pwd
    uid, gid = pwd.getpwnam(ctx.config.user).pw_uid, grp.getgrnam(ctx.config.group).gr_gid
    workdir = _workdir(ctx)
    os.makedirs(workdir, mode=0o700, exist_ok=True)
    os.chown(workdir, uid, gid)
    os.chmod(workdir, 0o700)
    os.makedirs(os.path.dirname(ctx.config.pid) or "/", exist_ok=True)
    log = ctx.config.log
    os.makedirs(os.path.dirname(log) or "/", exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.fchown(fd, uid, gid)
    finally:
        os.close(fd)
    return workdir


def start(ctx: Context) -> int:
    """Start garbd as its user and wait, within the deadline, until it is in the Primary component."""
    from hamail.system.clock import DeadlineExceeded, poll
    from hamail.system.files import atomic_write
    cfg = ctx.config
    pid = _pid(ctx)
    begin = None
    if pid is None:
        workdir = _prepare_files(ctx)
        begin = component.start_cursor(cfg.log)
        _cursor_store(ctx).write(begin.text())
        argv = ["setpriv", f"--reuid={cfg.user}", f"--regid={cfg.group}", "--init-groups",
                _binary(ctx), "--address", address(ctx), "--group", cfg.wsrep_cluster_name,
                "--log", cfg.log]
        if cfg.options:
            argv += ["--options", cfg.options]
        daemon = ctx.runner.spawn(argv, cwd=workdir)
        pid = daemon.pid  # setpriv execs garbd: the same process
        atomic_write(cfg.pid, f"{pid}\n", mode=0o644)
        ctx.log.info("started garbd pid %d for cluster %s at %s", pid, cfg.wsrep_cluster_name, address(ctx))
    else:
        daemon = None

    def joined():
        """True once garbd logged a Primary component; OCFError if it exited."""
        if daemon is not None and daemon.poll() is not None:
            raise OCFError(OCFExit.ERR_GENERIC, f"garbd exited with {daemon.returncode} while joining "
                                                f"{cfg.wsrep_cluster_name}{_log_errors(ctx)}")
        return True if _component(ctx) == component.PRIMARY else None
    try:
        poll(ctx.deadline.sub(max(0.5, ctx.deadline.remaining() - 1)), joined,
             what="garbd to join the Primary component", longest=0.5)
    except DeadlineExceeded:
        raise OCFError(OCFExit.ERR_GENERIC, f"garbd did not join a Primary component of {cfg.wsrep_cluster_name} "
                                            f"before the start timeout (is a database node Primary?)"
                                            f"{_log_errors(ctx)}") from None
    if begin is not None:
        _record_id(ctx, begin.offset)
    return OCFExit.SUCCESS


def _record_id(ctx: Context, offset: int) -> None:
    """Record garbd's member id in the CIB: the database nodes' recovery must tell this vote from a data node."""
    from hamail.pacemaker.arbitrators import record
    member_id = component.own_id(component.read_from(ctx.config.log, offset))
    if member_id is None:
        ctx.log.warning("garbd logged no member id: a recovery of the database nodes may wait for it")
        return
    try:
        ids = record(ctx.runner, ctx.env.attribute_target, member_id, ctx.deadline)
        ctx.log.info("recorded arbitrator id %s (known here: %s)", member_id, " ".join(ids))
    except Exception as exc:  # garbd runs and votes; only a later recovery could need this
        ctx.log.warning("cannot record garbd's member id %s: %s", member_id, exc)


def stop(ctx: Context) -> int:
    """TERM garbd, KILL it if it ignores that until shortly before the deadline; forget its pid and cursor."""
    import signal
    from hamail.system.clock import DeadlineExceeded, poll
    pid = _pid(ctx)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        try:
            poll(ctx.deadline.sub(max(0.5, ctx.deadline.remaining() - 2)),
                 lambda: None if proc.alive(pid) else True, what="garbd to exit", longest=0.2)
        except DeadlineExceeded:
            ctx.log.warning("garbd pid %d ignored SIGTERM: killing it", pid)
            os.kill(pid, signal.SIGKILL)
            poll(ctx.deadline, lambda: None if proc.alive(pid) else True, what="garbd to die", longest=0.1)
    for path in (ctx.config.pid, _cursor_store(ctx).path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return OCFExit.SUCCESS


def monitor(ctx: Context) -> int:
    """Running means garbd lives AND is in the Primary component."""
    if _pid(ctx) is None:
        return OCFExit.NOT_RUNNING
    state = _component(ctx)
    if state == component.PRIMARY:
        return OCFExit.SUCCESS
    if state == component.UNKNOWN and ctx.env.is_probe:
        return OCFExit.SUCCESS  # a probe asks whether it runs; its log (rotated?) cannot say more
    raise OCFError(OCFExit.ERR_GENERIC,
                   f"garbd is {'not in any component' if state == component.UNKNOWN else 'in a non-Primary component'}"
                   f" of {ctx.config.wsrep_cluster_name}: it is no vote (are the database nodes reachable?)")


AGENT = Agent(SPEC, {"start": start, "stop": stop, "monitor": monitor}, validate)

if __name__ == "__main__":
    main(AGENT)
