# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:slapd: OpenLDAP's slapd, with the parameters of ocf:heartbeat:slapd.

heartbeat's monitor runs ldapsearch on each database suffix; a slapd that listens but no longer answers makes
it hang until Pacemaker's timer kills it. Here the depth-0 monitor checks that the process lives and every
`services` URL accepts connections (cheap: no LDAP library), and depth 10 speaks LDAP through python-ldap:
a rootDSE search on every listener, then a bind as bind_dn (when set) and a base search of each watched suffix,
each step bounded by the operation's deadline and named in the exit reason when it fails. Start runs
`slaptest -u` first (its first error line is the reason) and returns once slapd answers; stop sends SIGTERM,
waits stop_escalate seconds, then TERM and KILL to slapd's process group within the stop timeout.
"""

from __future__ import annotations

import os

from hamail.agents.slapd import config as slapdconf
from hamail.ocf import ActionSpec, Agent, AgentSpec, ConfigError, Context, Kind, NotInstalled, OCFError, OCFExit
from hamail.ocf import Param, ParamTable, main
from hamail.service import daemon
from hamail.service.probes import ProbeFailed

PARAMS = ParamTable(
    Param("slapd", Kind.STRING, "Full path to slapd binary",
          "The slapd program (a bare name is looked up in PATH).", default="/usr/sbin/slapd"),
    Param("ldapsearch", Kind.STRING, "Full path to ldapsearch binary",
          "Accepted for compatibility with ocf:heartbeat:slapd and not used: this agent's monitor speaks LDAP "
          "through python-ldap (the same libldap and /etc/ldap/ldap.conf ldapsearch uses).",
          default="ldapsearch"),
    Param("config", Kind.PATH, "Full path to configuration directory or file",
          "A slapd configuration directory (cn=config, given to slapd -F) or a slapd.conf (slapd -f). Unset: "
          "/etc/ldap/slapd.d where it exists, else /etc/ldap/slapd.conf (/etc/openldap on systems that have it), "
          "as heartbeat's agent chooses.", unique_group="config"),
    Param("pidfile", Kind.PATH, "File to read PID from",
          "slapd's pid file; read from olcPidFile (cn=config) or pidfile (slapd.conf) when unset. It must be the "
          "file the configuration names: slapd has no option to write another one."),
    Param("user", Kind.STRING, "User name or id slapd will run with",
          "slapd -u: the user slapd switches to after binding its listeners (its group too, unless group is set)."),
    Param("group", Kind.STRING, "Group name or id slapd will run with", "slapd -g."),
    Param("services", Kind.STRING, "LDAP (and other scheme) URLs to serve",
          "slapd -h: the space-separated URLs slapd serves, e.g. \"ldap://192.0.2.10:389/ ldaps:/// ldapi:///\". "
          "Each one's listener is checked by every monitor (a wildcard host on loopback; ldapi:/// is "
          f"{slapdconf.LDAPI_DEFAULT}).", default="ldap:///", unique_group="services"),
    Param("watch_suffix", Kind.STRING, "Suffix that will be monitored for availability.",
          "Space-separated database suffixes the depth-10 monitor reads (a base search of each; quote a suffix "
          "that holds a space). Set, it replaces ignore_suffix; unset, every suffix in the configuration is read."),
    Param("ignore_suffix", Kind.STRING, "Suffix that will not be monitored for availability.",
          "Space-separated suffixes of the configuration the depth-10 monitor leaves out (when watch_suffix is "
          "unset)."),
    Param("bind_dn", Kind.STRING, "Distinguished Name used to bind to the LDAP directory for testing.",
          "The depth-10 monitor binds as this DN (simple bind) before reading the suffixes; unset, it reads "
          "anonymously. A refused bind is a configuration error, as with heartbeat's agent."),
    Param("password", Kind.STRING, "Password used to bind to the LDAP directory for testing.",
          "bind_dn's password. Never put on a command line or logged; password_file keeps it out of the CIB.",
          private=True),
    Param("password_file", Kind.PATH, "File holding bind_dn's password",
          "A file of mode 0600 (or stricter) whose content is bind_dn's password (one trailing newline is "
          "dropped), instead of the password parameter."),
    Param("parameters", Kind.STRING, "Any additional parameters to slapd.",
          "Further slapd options, split as a shell would (without running one), e.g. \"-o slp=off\"."),
    Param("stop_escalate", Kind.INTEGER, "Seconds before stop escalation to KILL",
          "How long stop waits for slapd to end after SIGTERM before it signals slapd's whole process group "
          "(TERM, then KILL); bounded by the stop timeout, which always leaves time to escalate.",
          default="15", minimum=0),
    Param("maxfiles", Kind.STRING, "Max open files",
          "slapd's limit of open files (ulimit -n): a number or \"unlimited\"."),
)

SPEC = AgentSpec(
    name="slapd", version="0.1.0", shortdesc="Manages a Stand-alone LDAP Daemon (slapd) instance",
    longdesc="Runs OpenLDAP's slapd with a cn=config directory or a slapd.conf. Depth 0 of the monitor checks the "
             "process and that each services URL accepts connections; depth 10 performs a rootDSE search on every "
             "listener, a bind as bind_dn when set, and a base search of each watched suffix, naming the LDAP step "
             "that failed. Start validates the configuration with slaptest and returns once slapd answers.",
    params=PARAMS,
    actions=(ActionSpec("start", 20), ActionSpec("stop", 20), ActionSpec("monitor", 20, interval=60, depth=0),
             ActionSpec("monitor", 20, interval=120, depth=10), ActionSpec("meta-data", 5),
             ActionSpec("validate-all", 20)),
)


def config_path(ctx: Context) -> str:
    """The configuration slapd runs with: the parameter, else heartbeat's default."""
    return ctx.config.config or slapdconf.default_config()


def listeners(ctx: Context) -> list:
    """The Listeners of the services parameter (validated by validate)."""
    return slapdconf.parse_services(ctx.config.services)


class Slapd(daemon.Service):
    """slapd as the shared lifecycle sees it."""

    label = "slapd"
    names = ("slapd",)

    def binary(self, ctx: Context) -> str:
        """The slapd program."""
        return ctx.config.slapd

    def pid_file(self, ctx: Context) -> str | None:
        """pidfile, else the one the configuration names (validate made sure there is one)."""
        return ctx.config.pidfile or _configured_pid_file(config_path(ctx))

    def check_argv(self, ctx: Context) -> list:
        """slaptest -u (a dry run that does not open the databases) on the configuration."""
        found = ctx.runner.find(ctx.config.slapd) or ctx.config.slapd
        beside = os.path.join(os.path.dirname(found), "slaptest")
        slaptest = beside if os.path.exists(beside) else "slaptest"
        return [slaptest, _config_flag(ctx), config_path(ctx), "-u"]

    def start_argv(self, ctx: Context) -> list:
        """slapd -h services -F/-f config [-u user] [-g group] parameters (slapd detaches itself)."""
        argv = [ctx.config.slapd, "-h", ctx.config.services, _config_flag(ctx), config_path(ctx)]
        if ctx.config.user:
            argv += ["-u", ctx.config.user]
        if ctx.config.group:
            argv += ["-g", ctx.config.group]
        return argv + _extra_parameters(ctx)

    def stop_grace(self, ctx: Context) -> float:
        """stop_escalate: how long SIGTERM alone may take."""
        return float(ctx.config.stop_escalate)

    def listeners(self, ctx: Context) -> list:
        """Every services URL's listener (TCP port or ldapi socket)."""
        return [listener.endpoint for listener in listeners(ctx)]

    def exchange(self, ctx: Context, deadline) -> None:
        """rootDSE on every listener; on the first local one also the bind and each watched suffix."""
        from hamail.adapters import ldap as ldapad
        found = listeners(ctx)
        chosen = _preferred(found)
        for listener in found:
            with _connection(listener, deadline) as conn:
                _step(conn, "rootDSE search", conn.root_dse)
                if listener is not chosen:
                    continue
                if ctx.config.bind_dn:
                    try:
                        _step(conn, f"bind as {ctx.config.bind_dn}",
                              lambda: conn.bind(ctx.config.bind_dn, _password(ctx)))
                    except ldapad.AuthFailed as exc:
                        raise OCFError(OCFExit.ERR_CONFIGURED, f"LDAP bind as {ctx.config.bind_dn} at "
                                       f"{listener.client_url} refused: {exc}") from None
                for suffix in watched(ctx):
                    _step(conn, f"base search of {suffix}", lambda: conn.read(suffix))

    def after_stop(self, ctx: Context) -> None:
        """Remove a pid file a killed slapd left behind (slapd itself removes it on a clean exit)."""
        try:
            super().after_stop(ctx)
        except OCFError:  # no pid file can be known (validate says why): nothing to tidy
            pass


SERVICE = Slapd()


def _config_flag(ctx: Context) -> str:
    return "-F" if slapdconf.is_directory_config(config_path(ctx)) else "-f"


def _extra_parameters(ctx: Context) -> list:
    if not ctx.config.parameters:
        return []
    import shlex  # ~6 ms: only start and validate-all split the parameters
    try:
        return shlex.split(ctx.config.parameters)
    except ValueError as exc:
        raise ConfigError(f"parameter parameters: {exc}") from None


def _split_dns(text: str | None) -> list:
    """Space-separated DNs; a DN holding spaces is quoted (shlex is paid only then)."""
    if not text:
        return []
    if '"' not in text and "'" not in text:
        return text.split()
    import shlex
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise ConfigError(f"unbalanced quotes in {text!r}: {exc}") from None


def watched(ctx: Context) -> list:
    """The suffixes the depth-10 monitor reads: watch_suffix, else the configuration's minus ignore_suffix."""
    if ctx.config.watch_suffix:
        return _split_dns(ctx.config.watch_suffix)
    from hamail.adapters.ldap import normalize_dn
    path = config_path(ctx)
    try:
        configured = slapdconf.suffixes(path)
    except OSError as exc:
        raise NotInstalled(f"slapd configuration {path} cannot be read here: {exc.strerror}") from None
    ignored = {normalize_dn(dn) for dn in _split_dns(ctx.config.ignore_suffix)}
    return [dn for dn in configured if normalize_dn(dn) not in ignored]


def _password(ctx: Context):
    """bind_dn's password: the parameter, or the content of password_file (a Secret either way)."""
    if not ctx.config.password_file:
        return ctx.config.password
    from hamail.secret import Secret
    from hamail.system.files import PrivateFileError, read_private
    try:
        text = read_private(ctx.config.password_file, "password_file")
    except PrivateFileError as exc:
        raise NotInstalled(f"parameter password_file: {exc}") from None
    return Secret(text[:-1] if text.endswith("\n") else text)


def _preferred(found: list):
    """The listener the bind and suffix searches go through: ldapi (local, no TLS), else ldap, else ldaps."""
    for scheme in ("ldapi", "ldap", "ldaps"):
        for listener in found:
            if listener.scheme == scheme:
                return listener
    return None


def _connection(listener, deadline):
    from hamail.adapters import ldap as ldapad
    try:
        return ldapad.connect(listener.client_url, deadline)
    except ldapad.LDAPError as exc:
        raise ProbeFailed("LDAP connect", listener.client_url, str(exc)) from None


def _step(conn, step: str, call):
    """call() on an open connection; ProbeFailed naming the LDAP step when the server does not answer right."""
    from hamail.adapters import ldap as ldapad
    try:
        return call()
    except ldapad.AuthFailed:
        raise
    except ldapad.LDAPError as exc:
        raise ProbeFailed(f"LDAP {step}", conn.url, str(exc)) from None


def _user_and_group(ctx: Context) -> tuple:
    """(uid, gid) slapd runs as (-1: unchanged); NotInstalled when the user or group is missing on this node."""
    uid = gid = -1
    if ctx.config.user:
        import pwd
        try:
            entry = pwd.getpwnam(ctx.config.user) if not ctx.config.user.isdigit() else pwd.getpwuid(
                int(ctx.config.user))
        except KeyError:
            raise NotInstalled(f"slapd user {ctx.config.user} does not exist on this node") from None
        uid, gid = entry.pw_uid, entry.pw_gid
    if ctx.config.group:
        import grp
        try:
            gid = (grp.getgrgid(int(ctx.config.group)) if ctx.config.group.isdigit()
                   else grp.getgrnam(ctx.config.group)).gr_gid
        except KeyError:
            raise NotInstalled(f"slapd group {ctx.config.group} does not exist on this node") from None
    return uid, gid


def _open_files_limit(ctx: Context) -> int | None:
    """maxfiles as a number (RLIM_INFINITY for unlimited); None when unset, or (with a warning) when it is
    neither: heartbeat's agent warns that ulimit failed and starts slapd anyway."""
    text = (ctx.config.maxfiles or "").strip()
    if not text:
        return None
    import resource
    if text.lower() in ("unlimited", "infinity"):
        return resource.RLIM_INFINITY
    if not text.isdigit() or int(text) < 1:
        ctx.log.warning("parameter maxfiles: %r is not a number of files or 'unlimited': slapd keeps the "
                        "inherited limit, as with heartbeat's agent", text)
        return None
    return int(text)


def validate(ctx: Context) -> None:
    """Every action: services URLs parse, the password comes from one place, a pid file can be known.
    start and validate-all also: user and group exist, the configuration exists and slaptest accepts it."""
    try:
        found = listeners(ctx)
    except ValueError as exc:
        raise ConfigError(f"parameter services: {exc}") from None
    if not found:
        raise ConfigError(f"parameter services: {ctx.config.services!r} names no ldap://, ldaps:// or ldapi:// URL "
                          "to monitor")
    if ctx.config.password and ctx.config.password_file:
        raise ConfigError("parameters password and password_file are both set: use one")
    path = config_path(ctx)
    if not os.path.exists(path):
        raise NotInstalled(f"slapd configuration {path} does not exist on this node")
    configured = _configured_pid_file(path)
    if configured is None:
        raise ConfigError(f"slapd configuration {path} names no pid file (olcPidFile / pidfile): slapd would "
                          "write none, and without one nothing can tell whether it runs")
    if ctx.config.pidfile and os.path.realpath(ctx.config.pidfile) != os.path.realpath(configured):
        raise ConfigError(f"parameter pidfile: {ctx.config.pidfile} is not the pid file slapd writes with "
                          f"{path} ({configured})")
    if ctx.action in ("start", "validate-all"):
        _prepare_directories(ctx, found)
        if ctx.action == "validate-all":  # start reads (and warns about) maxfiles itself
            _open_files_limit(ctx)
        _extra_parameters(ctx)
        if ctx.config.password_file:
            _password(ctx)  # unreadable or readable by others: refused before slapd starts
        if (ctx.config.password or ctx.config.password_file) and not ctx.config.bind_dn:
            ctx.log.warning("parameter password/password_file is set without bind_dn: the monitor reads "
                            "anonymously and does not use it")
        daemon.validate_all(SERVICE, ctx)


def _configured_pid_file(path: str) -> str | None:
    try:
        return slapdconf.pid_file(path)
    except OSError as exc:
        raise NotInstalled(f"slapd configuration {path} cannot be read here: {exc.strerror}") from None


def _make_directory(path: str, uid: int, gid: int) -> None:
    """Create a missing directory slapd writes into (its pid file's, an ldapi socket's), owned by its user."""
    if not path or os.path.isdir(path):
        return
    try:
        os.makedirs(path, mode=0o755, exist_ok=True)
        if uid != -1 or gid != -1:
            os.chown(path, uid, gid)
    except OSError as exc:
        raise OCFError(OCFExit.ERR_GENERIC, f"cannot create {path} for slapd: {exc.strerror}") from None


def _prepare_directories(ctx: Context, found: list) -> None:
    """Create the missing directories of the pid file and ldapi sockets, owned by slapd's user (as heartbeat's
    validate does: a /run that is a tmpfs comes back empty after a reboot, and slaptest checks the pid file)."""
    uid, gid = _user_and_group(ctx)
    _make_directory(os.path.dirname(SERVICE.pid_file(ctx) or ""), uid, gid)
    for listener in found:
        if listener.endpoint.path:
            _make_directory(os.path.dirname(listener.endpoint.path), uid, gid)


def start(ctx: Context) -> int:
    """Apply maxfiles (validate prepared the directories), then the shared start."""
    if SERVICE.find_pid(ctx) is None:
        limit = _open_files_limit(ctx)
        if limit is not None:
            import resource
            try:  # slapd inherits the agent's limits
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
            except (ValueError, OSError) as exc:
                ctx.log.warning("could not set slapd's open files limit to %s: %s", ctx.config.maxfiles, exc)
    return daemon.start(SERVICE, ctx)


AGENT = Agent(SPEC, {**daemon.actions(SERVICE), "start": start}, validate)

if __name__ == "__main__":
    main(AGENT)
