# SPDX-License-Identifier: GPL-2.0-or-later
"""The one MariaDB/MySQL server of ocf:hamail:mysql as a hamail.service Service: where it listens (read from its
option files), its configuration check, preparing its directories (and a new database with enable_creation),
and the SELECTs of the depth-10 monitor through the PyMySQL adapter."""

from __future__ import annotations

import os

from hamail.ocf import ConfigError, Context, NotInstalled, OCFError, OCFExit
from hamail.service.daemon import Service
from hamail.service.probes import Endpoint, ProbeFailed

__all__ = ["SERVER_NAMES", "MySQLServer", "option_values", "listen_endpoints", "credentials", "prepare",
           "check_node", "check_config", "log_size", "log_errors"]

SERVER_NAMES = ("mariadbd", "mysqld")
# Wrappers that run the server as their child (heartbeat mysql's default binary is mysqld_safe).
SAFE_WRAPPERS = ("mysqld_safe", "mariadbd-safe", "safe_mysqld")
# Option-file groups the server reads (MariaDB's list; a version-suffixed group counts whatever its version).
SERVER_GROUPS = ("mysqld", "server", "mariadb", "mariadbd", "client-server", "galera")
DEFAULT_PORT = 3306
# !include nesting a server accepts before it gives up on a file; a cycle must not hang the monitor.
INCLUDE_DEPTH = 10
# The options that decide where the server listens, as both spellings name them.
LISTEN_OPTIONS = ("port", "bind-address", "skip-networking", "networking")


class MySQLServer(Service):
    """mariadbd (or the configured binary) in the foreground, its pid file, socket and TCP port."""

    label = "MySQL server"
    names = SERVER_NAMES

    def binary(self, ctx: Context) -> str:
        """The configured server binary (or wrapper)."""
        return ctx.config.binary

    def pid_file(self, ctx: Context) -> str:
        """The pid file the agent names on the server's command line."""
        return ctx.config.pid

    def start_argv(self, ctx: Context) -> list:
        """The server in the foreground with the agent's files, its user and additional_parameters."""
        import shlex
        cfg = ctx.config
        # --defaults-file must come first (mysqld_safe and mariadbd insist).
        return [cfg.binary, f"--defaults-file={cfg.config}", f"--pid-file={cfg.pid}", f"--socket={cfg.socket}",
                f"--datadir={cfg.datadir}", f"--user={cfg.user}", f"--log-error={cfg.log}",
                *shlex.split(cfg.additional_parameters or "")]

    def foreground(self, ctx: Context) -> bool:
        """mariadbd and mysqld_safe both stay in the foreground: spawned, never daemonizing."""
        return True

    def listeners(self, ctx: Context) -> list:
        """The socket, and the TCP port unless networking is off."""
        return [Endpoint(path=ctx.config.socket)] + listen_endpoints(ctx)

    def exchange(self, ctx: Context, deadline) -> None:
        """Log in over the socket, SELECT 1 and, as heartbeat mysql does, SELECT COUNT(*) FROM test_table."""
        from hamail.adapters.mysql import AccessDenied, MySQLError, connect
        creds = credentials(ctx, monitoring=True)
        where = ctx.config.socket
        # The socket timeout ends just before the deadline, so a wedged server fails with the step it hung in.
        timeout = max(0.2, deadline.remaining() - 0.5)
        try:
            conn = connect(where, creds, timeout)
        except AccessDenied as exc:
            raise ConfigError(f"test user {creds.user!r} cannot log in over {where}: {exc}") from None
        except MySQLError as exc:
            raise ProbeFailed("MySQL connect and login", where, str(exc)) from None
        with conn:
            for step in ["SELECT 1"] + ([f"SELECT COUNT(*) FROM {ctx.config.test_table}"]
                                        if ctx.config.test_table else []):
                try:
                    conn.query(step)
                except MySQLError as exc:
                    raise ProbeFailed(f"MySQL {step}", where, str(exc)) from None

    def after_stop(self, ctx: Context) -> None:
        """A killed server leaves its pid file and socket: remove them once nothing runs (as heartbeat mysql)."""
        super().after_stop(ctx)
        import stat
        try:
            if stat.S_ISSOCK(os.lstat(ctx.config.socket).st_mode) and self.find_pid(ctx) is None:
                os.unlink(ctx.config.socket)
        except OSError:
            pass


def server_binary(ctx: Context) -> str | None:
    """The server program itself: the binary, or the mariadbd a mysqld_safe wrapper would run."""
    binary = ctx.config.binary
    if os.path.basename(binary) not in SAFE_WRAPPERS:
        return ctx.runner.find(binary)
    return ctx.runner.find("mariadbd") or ctx.runner.find("mysqld")


def _is_server_group(name: str) -> bool:
    name = name.strip().lower()
    base, _, version = name.partition("-")
    if name in SERVER_GROUPS:
        return True
    return base in ("mysqld", "mariadb", "mariadbd") and version.replace(".", "").isdigit()


def _read_option_file(path: str, found: dict, depth: int = 0) -> None:
    """Fold the server groups' listening options of one option file (and its !include/!includedir) into found."""
    if depth > INCLUDE_DEPTH:
        return
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read(1 << 20).splitlines()
    except OSError:
        return
    in_server = False
    for raw in lines:
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("!include "):
            _read_option_file(line[len("!include "):].strip(), found, depth + 1)
        elif line.startswith("!includedir "):
            folder = line[len("!includedir "):].strip()
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                continue
            for name in names:
                if name.endswith(".cnf"):
                    _read_option_file(os.path.join(folder, name), found, depth + 1)
        elif line.startswith("[") and line.endswith("]"):
            in_server = _is_server_group(line[1:-1])
        elif in_server:
            key, sep, value = line.partition("=")
            _note(found, key, value.split("#", 1)[0].strip().strip("'\"") if sep else None)


def _note(found: dict, key: str, value: str | None) -> None:
    """Record one option (either spelling, an optional loose- prefix) if it decides where the server listens."""
    key = key.strip().lower().replace("_", "-")
    if key.startswith("loose-"):
        key = key[len("loose-"):]
    if key in ("skip-networking", "disable-networking"):
        key, value = "networking", "0" if value is None or _true(value) else "1"
    elif key in ("enable-networking",):
        key, value = "networking", "1"
    if key in LISTEN_OPTIONS:
        found[key] = value if value is not None else "1"


def _true(value: str) -> bool:
    return value.strip().lower() in ("1", "on", "true", "yes")


def option_values(ctx: Context) -> dict:
    """The listening options the server will see: its option file, then additional_parameters (which win)."""
    found: dict = {}
    if not os.access(ctx.config.config, os.R_OK):
        # Guessing the default port would fail a healthy server, and skipping TCP would hide a dead listener.
        raise OCFError(OCFExit.ERR_GENERIC, f"cannot read the option file {ctx.config.config} to find the "
                       "server's TCP port")
    _read_option_file(ctx.config.config, found)
    if not ctx.config.additional_parameters:
        return found
    import shlex  # it imports re (and enum, ~9 ms): only when there is something to split
    for word in shlex.split(ctx.config.additional_parameters):
        if word.startswith("--"):
            key, sep, value = word[2:].partition("=")
            _note(found, key, value if sep else None)
    return found


def listen_endpoints(ctx: Context) -> list:
    """The TCP endpoint the server listens on ([] with skip-networking); ConfigError for a port that is none."""
    found = option_values(ctx)
    if found.get("networking", "1").lower() in ("0", "off", "false"):
        return []
    port = found.get("port") or str(DEFAULT_PORT)
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{ctx.config.config}: port {port!r} is not a TCP port")
    if int(port) == 0:  # port=0: the server takes the default port
        port = str(DEFAULT_PORT)
    host = (found.get("bind-address") or "").split(",")[0].strip()
    return [Endpoint.parse(f"[{host}]:{port}" if ":" in host else f"{host}:{port}" if host else port)]


def credentials(ctx: Context, monitoring: bool = False):
    """The test credentials: credentials_file when set, else test_user/test_passwd (heartbeat mysql's).

    An unusable file is a configuration error (6) at start and validate-all, except a file missing on this
    node (5: this node only); under a monitor, where the server runs and cannot be checked, an error (1).
    """
    from hamail.adapters.mysql import Credentials, MySQLError, load_credentials
    cfg = ctx.config
    if not cfg.credentials_file:
        return Credentials(cfg.test_user, cfg.test_passwd or None)
    try:
        return load_credentials(cfg.credentials_file)
    except MySQLError as exc:
        if monitoring:
            raise OCFError(OCFExit.ERR_GENERIC, f"cannot check the server: {exc}") from None
        if not os.path.lexists(cfg.credentials_file):
            raise NotInstalled(str(exc)) from None
        raise ConfigError(str(exc)) from None


def _ids(ctx: Context) -> tuple:
    import grp
    import pwd
    cfg = ctx.config
    try:
        user = pwd.getpwnam(cfg.user)
    except KeyError:
        raise NotInstalled(f"user {cfg.user} does not exist on this node") from None
    try:
        gid = grp.getgrnam(cfg.group).gr_gid
    except KeyError:
        raise NotInstalled(f"group {cfg.group} does not exist on this node") from None
    return user.pw_uid, gid


def check_node(ctx: Context) -> None:
    """What this node must have (NotInstalled otherwise): the binary, option file, datadir, user and group."""
    cfg = ctx.config
    if ctx.runner.find(cfg.binary) is None:
        raise NotInstalled(f"server binary {cfg.binary} is not installed or not executable")
    if not os.path.isfile(cfg.config):
        raise NotInstalled(f"option file {cfg.config} does not exist on this node")
    if not os.path.isdir(cfg.datadir) and not cfg.enable_creation:
        raise NotInstalled(f"datadir {cfg.datadir} does not exist on this node (set enable_creation=true to "
                           "create it)")
    _ids(ctx)


def prepare(ctx: Context) -> None:
    """Directories for the pid file and socket (gone after a reboot on tmpfs) and the log file, owned by the
    server's user; with enable_creation, a new database in an empty datadir (mariadb-install-db, as upstream)."""
    cfg = ctx.config
    uid, gid = _ids(ctx)
    for path in {os.path.dirname(cfg.pid), os.path.dirname(cfg.socket), os.path.dirname(cfg.log)}:
        if not os.path.isdir(path):
            ctx.log.info("creating %s", path)
            os.makedirs(path, mode=0o755)
            os.chown(path, uid, gid)
    if not os.path.exists(cfg.log):
        fd = os.open(cfg.log, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o640)
        os.fchown(fd, uid, gid)
        os.close(fd)
    if os.path.isdir(os.path.join(cfg.datadir, "mysql")):
        return
    if not cfg.enable_creation:
        # A fact about this node's disk (an unmounted DRBD filesystem): keep the instance off this node only.
        raise NotInstalled(f"datadir {cfg.datadir} holds no database on this node (set enable_creation=true to "
                           "create one)")
    os.makedirs(cfg.datadir, mode=0o750, exist_ok=True)
    os.chown(cfg.datadir, uid, gid)
    ctx.log.info("enable_creation: initialising a database in %s", cfg.datadir)
    result = ctx.run(["mariadb-install-db", f"--defaults-file={cfg.config}", f"--datadir={cfg.datadir}",
                      f"--user={cfg.user}", "--skip-test-db"])
    if not result.ok:
        raise OCFError(OCFExit.ERR_GENERIC, f"mariadb-install-db failed: {_first_error(result)}")


def _first_error(result) -> str:
    """The first [ERROR] line of a server's output (its warnings come first), else the first line."""
    for text in (result.stderr, result.stdout):
        for line in text.splitlines():
            if "[ERROR]" in line:
                return line.split("[ERROR]", 1)[1].strip()
            if line.startswith(("error:", "Fatal error", "Could not open required defaults file")):
                return line.strip()
    return result.first_error_line()


def check_config(ctx: Context) -> None:
    """The server's own option parser over the configuration: `mariadbd --help --verbose` with the agent's
    options reads every option file and plugin option as a start would, and touches no data.

    MariaDB 10.11 has no --validate-config (MySQL 8's): this is its check. It exits non-zero for a syntax
    error or an unknown option but only logs [ERROR] for a bad plugin option value (then the start fails on
    it): both are refused, with the first [ERROR] line as the reason (OCF_ERR_CONFIGURED).
    """
    import shlex
    cfg = ctx.config
    program = server_binary(ctx)
    if program is None:
        raise NotInstalled(f"no mariadbd or mysqld beside {cfg.binary} to check the configuration with")
    argv = [program, f"--defaults-file={cfg.config}", f"--user={cfg.user}", f"--datadir={cfg.datadir}",
            f"--pid-file={cfg.pid}", f"--socket={cfg.socket}", *shlex.split(cfg.additional_parameters or ""),
            "--help", "--verbose"]
    result = ctx.run(argv, timeout=max(1.0, min(30.0, ctx.deadline.remaining())))
    if not result.ok or "[ERROR]" in result.stderr:
        raise ConfigError(f"{os.path.basename(program)} rejects the configuration: {_first_error(result)}")


def log_size(ctx: Context) -> int:
    """The error log's size now: a failed start reads only what this start wrote."""
    try:
        return os.stat(ctx.config.log).st_size
    except OSError:
        return 0


def log_errors(ctx: Context, since: int) -> str:
    """The first [ERROR] lines the server logged after offset since, for a start's exit reason ('' when none)."""
    try:
        with open(ctx.config.log, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(since, handle.tell() - 16384))
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    errors = [line.split("[ERROR]", 1)[1].strip() for line in lines if "[ERROR]" in line]
    # The first lines say why; the last is always "Aborting".
    return " | ".join([error for error in errors if error != "Aborting"][:2])

