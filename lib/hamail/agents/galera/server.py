# SPDX-License-Identifier: GPL-2.0-or-later
"""The mariadbd process of one Galera node: its files and directories, starting it (through the runner's
spawn) until it answers, stopping it cleanly, and asking it for its wsrep status through the PyMySQL adapter."""

from __future__ import annotations

import os

from hamail.ocf import ConfigError, Context, NotInstalled, OCFError, OCFExit
from hamail.system import proc

__all__ = ["JOINING", "DONOR", "JOINED", "SYNCED", "POLL_LONGEST", "credentials", "pid", "connect", "wsrep_status",
           "primary_ok", "prepare_dirs", "argv", "start", "stop", "log_errors"]

# wsrep_local_state numbers (Galera's gcs node states).
JOINING, DONOR, JOINED, SYNCED = 1, 2, 3, 4
SERVER_NAMES = ("mariadbd", "mysqld")
# A wrapper that restarts a server it sees die: killed with the server when a stop runs out of time.
SAFE_WRAPPERS = ("mysqld_safe", "mariadbd-safe")
# The longest pause between two looks at a starting, joining or stopping server: each pause is time the
# cluster waits for nothing, and a look (a connection over the local socket, a /proc read) costs milliseconds.
POLL_LONGEST = 0.25


# Where heartbeat galera finds check credentials it was not given (MYSQL_USERNAME, MYSQL_PASSWORD), in order.
CLUSTERCHECK_FILES = ("/etc/sysconfig/clustercheck", "/etc/default/clustercheck")


def credentials(ctx: Context):
    """The check credentials: credentials_file when set (a ConfigError if unusable), else check_user/passwd,
    each falling back as heartbeat galera's do to the clustercheck file's MYSQL_USERNAME/MYSQL_PASSWORD."""
    from hamail.adapters.mysql import Credentials, MySQLError, load_credentials
    cfg = ctx.config
    if cfg.credentials_file:
        try:
            return load_credentials(cfg.credentials_file)
        except MySQLError as exc:
            raise ConfigError(str(exc)) from None
    user, password = cfg.check_user, cfg.check_passwd
    if not user or not password:
        found_user, found_password = clustercheck(ctx)
        user, password = user or found_user, password or found_password
    return Credentials(user or "root", password or None)


def clustercheck(ctx: Context):
    """(MYSQL_USERNAME, MYSQL_PASSWORD as a Secret) from the first clustercheck file that exists, else Nones.

    The file is a shell fragment that heartbeat sources; it is parsed here (KEY=value, optional export and
    quotes), never run.
    """
    from hamail.secret import Secret
    for path in CLUSTERCHECK_FILES:
        try:
            handle = open(path, encoding="utf-8", errors="replace")
        except OSError:
            continue
        with handle:
            mode = os.fstat(handle.fileno()).st_mode
            text = handle.read()
        if mode & 0o077 and ctx.action in ("start", "validate-all"):
            ctx.log.warning("%s holds the check password and others can read it (mode %04o): chmod 0600 it",
                            path, mode & 0o777)
        values = _shell_assignments(text, ("MYSQL_USERNAME", "MYSQL_PASSWORD"))
        password = values.get("MYSQL_PASSWORD")
        return values.get("MYSQL_USERNAME") or None, Secret(password) if password else None
    return None, None


def _shell_assignments(text: str, names: tuple[str, ...]) -> dict[str, str]:
    """The values of simple NAME=value assignments (last one wins) in a shell fragment; a value the shell would
    expand ($VAR, $(...), backquotes outside single quotes) is skipped, never run or guessed."""
    import shlex
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("export "):
            line = line[len("export "):].strip()
        name, sep, value = line.partition("=")
        if not sep or name not in names:
            continue
        if not value.startswith("'") and ("$" in value or "`" in value):
            continue
        try:
            words = shlex.split(value, comments=True)
        except ValueError:
            continue
        found[name] = words[0] if words else ""
    return found


def pid(ctx: Context) -> int | None:
    """The pid of the running server (from the pid file, checked against /proc), else None."""
    try:
        with open(ctx.config.pid, encoding="ascii") as handle:
            number = int(handle.read().strip() or "0")
    except (OSError, ValueError):
        return None
    if number <= 1:
        return None
    return number if proc.comm(number) in SERVER_NAMES else None


def connect(ctx: Context, timeout: float = 5.0):
    """A PyMySQL connection over the socket, bounded by timeout and the action's deadline."""
    from hamail.adapters.mysql import connect as mysql_connect
    return mysql_connect(ctx.config.socket, credentials(ctx), min(timeout, max(0.5, ctx.deadline.remaining())))


def wsrep_status(ctx: Context) -> dict[str, str]:
    """The wsrep status variables; AccessDenied becomes a configuration error."""
    from hamail.adapters.mysql import AccessDenied, global_status
    try:
        return global_status(ctx.config.socket, credentials(ctx), min(5.0, max(0.5, ctx.deadline.remaining())))
    except AccessDenied as exc:
        raise ConfigError(f"check user {credentials(ctx).user!r} cannot log in: {exc}") from None


def read_only(ctx: Context) -> bool:
    """Whether the server refuses writes (read_only=ON, as heartbeat galera checks after promote)."""
    with connect(ctx) as conn:
        rows = conn.query("SELECT @@global.read_only")
    return bool(rows) and str(rows[0][0]) in ("1", "ON")


def database_members(status: dict[str, str]) -> int | None:
    """How many members of the component are database servers: garbd is a member with no incoming address.

    wsrep_cluster_size counts arbitrators too; wsrep_incoming_addresses lists every member's client address,
    an empty entry for garbd ("192.0.2.11:3306," with node1 and garbd). None when the server reports neither.
    """
    addresses = status.get("wsrep_incoming_addresses")
    if addresses is None:
        size = status.get("wsrep_cluster_size", "")
        return int(size) if size.isdigit() else None
    return sum(1 for entry in addresses.split(",") if entry.strip())


def primary_ok(status: dict[str, str]) -> tuple[bool, str]:
    """Whether a status says Primary, Synced/Donor and ready, and a one-line description."""
    cluster = status.get("wsrep_cluster_status", "?")
    state = int(status.get("wsrep_local_state", "0") or 0)
    desc = (f"wsrep_cluster_status={cluster} wsrep_local_state={state}"
            f"({status.get('wsrep_local_state_comment', '?')}) wsrep_ready={status.get('wsrep_ready', '?')} "
            f"wsrep_cluster_size={status.get('wsrep_cluster_size', '?')}")
    ok = cluster == "Primary" and state in (SYNCED, DONOR) and status.get("wsrep_ready") == "ON"
    return ok, desc


def prepare_dirs(ctx: Context) -> None:
    """Directories for the pid file and socket (on tmpfs they vanish at boot), owned by the server user; with
    enable_creation, a new database in an empty datadir (mariadb-install-db, bounded by the deadline)."""
    import grp
    import pwd
    cfg = ctx.config
    uid = pwd.getpwnam(cfg.user).pw_uid
    try:
        gid = grp.getgrnam(cfg.group).gr_gid
    except KeyError:
        gid = pwd.getpwnam(cfg.user).pw_gid
    for path in {os.path.dirname(cfg.pid), os.path.dirname(cfg.socket)}:
        if not os.path.isdir(path):
            os.makedirs(path, mode=0o755)
            os.chown(path, uid, gid)
    if os.path.isdir(os.path.join(cfg.datadir, "mysql")):
        return
    if not cfg.enable_creation:
        # A fact about this node's disk: keep the instance off this node only (a 6 stops it everywhere).
        if not os.path.isdir(cfg.datadir):
            raise NotInstalled(f"datadir {cfg.datadir} does not exist on this node")
        raise NotInstalled(f"datadir {cfg.datadir} holds no database on this node (set enable_creation=true to "
                           "create one)")
    os.makedirs(cfg.datadir, mode=0o750, exist_ok=True)
    os.chown(cfg.datadir, uid, gid)
    ctx.log.info("enable_creation: initialising %s", cfg.datadir)
    result = ctx.run(["mariadb-install-db", f"--defaults-file={cfg.config}", f"--datadir={cfg.datadir}",
                      f"--user={cfg.user}", "--wsrep-on=OFF", "--skip-test-db"])
    if not result.ok:
        raise OCFError(OCFExit.ERR_GENERIC, f"mariadb-install-db failed: {result.first_error_line()}")


def argv(ctx: Context, *extra: str) -> list[str]:
    """The server's command line: the configured binary, files and user, additional_parameters, then extra."""
    import shlex
    cfg = ctx.config
    return [cfg.binary, f"--defaults-file={cfg.config}", f"--pid-file={cfg.pid}", f"--socket={cfg.socket}",
            f"--datadir={cfg.datadir}", f"--user={cfg.user}", *shlex.split(cfg.additional_parameters or ""), *extra]


def start(ctx: Context, *extra: str) -> None:
    """Launch the server detached (it outlives this action), then wait until it answers on the socket."""
    from hamail.adapters.mysql import AccessDenied, MySQLError
    from hamail.system.clock import DeadlineExceeded, poll
    # The address always goes on the command line: the option file may lack it, and then the server
    # refuses to start with wsrep_sst_method=rsync (and heartbeat galera passes it the same way).
    command = argv(ctx, f"--log-error={ctx.config.log}",
                   f"--wsrep-cluster-address={ctx.config.wsrep_cluster_address}", *extra)
    ctx.log.info("starting %s", " ".join(command))
    daemon = ctx.runner.spawn(command)

    def answering():
        """The server's status once it answers; None while it starts; OCFError if it died."""
        if daemon.poll() is not None and pid(ctx) is None:
            raise OCFError(OCFExit.ERR_GENERIC, f"server exited with {daemon.returncode} while starting; "
                           f"see {ctx.config.log}" + log_errors(ctx))
        try:
            with connect(ctx, 2.0) as conn:
                return conn.status()
        except AccessDenied:
            raise
        except MySQLError:
            return None
    try:
        poll(ctx.deadline, answering, what="the server to answer", longest=POLL_LONGEST)
    except AccessDenied as exc:
        raise ConfigError(f"check user {credentials(ctx).user!r} cannot log in: {exc}") from None
    except DeadlineExceeded:
        raise OCFError(OCFExit.ERR_GENERIC, "the server did not answer on its socket before the timeout"
                       + log_errors(ctx)) from None


def log_errors(ctx: Context) -> str:
    """The last ERROR lines of the server's log, for exit reasons."""
    try:
        with open(ctx.config.log, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 16384))
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    errors = [line.split("[ERROR]", 1)[-1].strip() for line in lines if "[ERROR]" in line]
    return (": " + " | ".join(errors[-2:])) if errors else ""


def stop(ctx: Context) -> None:
    """TERM the server and wait for it (a clean Galera shutdown writes grastate.dat); KILL when time runs out."""
    import signal
    from hamail.system.clock import DeadlineExceeded, poll
    server = pid(ctx)
    if server is None:
        return
    ctx.log.info("stopping server pid %d", server)
    try:
        os.kill(server, signal.SIGTERM)
    except ProcessLookupError:
        return

    def gone():
        """True once the server has exited."""
        return None if proc.alive(server) else True
    try:
        poll(ctx.deadline.sub(max(1.0, ctx.deadline.remaining() - 5)), gone, what="the server to stop",
             longest=POLL_LONGEST)
        return
    except DeadlineExceeded:
        ctx.log.warning("server pid %d ignored SIGTERM until the deadline: killing it", server)
    info = proc.stat(server)
    wrapper = info.ppid if info is not None and proc.comm(info.ppid) in SAFE_WRAPPERS else None
    for victim in ([wrapper] if wrapper else []) + [server]:
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass
    poll(ctx.deadline, gone, what="the killed server to vanish", longest=0.2)
