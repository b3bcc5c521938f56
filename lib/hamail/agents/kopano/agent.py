# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:kopano: one agent for Kopano's daemons (server, spooler, dagent, gateway, ical, monitor, search,
presence), each checked by the protocol it serves, on the shared service lifecycle (hamail.service.daemon).

Kopano's guide runs these as lsb: init scripts, whose status is "the pid lives". Here a monitor asks the
daemon itself: kopano-server's SOAP endpoint over HTTP (TCP and its unix socket), kopano-dagent's LMTP,
kopano-gateway's IMAP/POP3, kopano-ical's and kopano-presence's HTTP, kopano-search's own socket protocol;
spooler and monitor have no listener, so their process must live and not be stopped.
"""

from __future__ import annotations

import os

from hamail.agents.kopano.config import ConfigProblem, KopanoConfig, read_config, parse_listen_param
from hamail.agents.kopano.config import service_listeners
from hamail.ocf import ActionSpec, Agent, AgentSpec, ConfigError, Context, Kind, NotInstalled, OCFError, OCFExit
from hamail.ocf import Param, ParamTable, main
from hamail.service import daemon
from hamail.service.probes import Endpoint, ProbeFailed

SERVICES = ("server", "spooler", "dagent", "gateway", "ical", "monitor", "search", "presence")
# Every Kopano daemon takes its configuration as --config (kopano-search's short flag is -c in Kopano 8 and -C
# in Kopano 10, where -c means --company).
# How each daemon stays in the foreground (then the agent owns it as a spawned process): kopano-dagent's -F
# names a delivery folder, its LMTP listener without -d is -l.
FOREGROUND = {"dagent": ("-l",)}
# Starts the daemon under sh so that its pid is recorded before exec (Kopano 10 and later write no pid file;
# Kopano 8 writes one itself and must not find ours there first: its Python services would wait on the lock).
LAUNCH = 'echo $$ > "$1" && shift && exec "$@"'
# Any HTTP answer proves kopano-server's SOAP loop runs (a GET gets 405 or a SOAP fault); ical and presence
# answer a plain GET with a client error (401, 404) and fail with 5xx.
ANY_STATUS = tuple(range(100, 600))
# A daemon without listener has started once it has lived this long (seconds): Kopano exits within
# milliseconds on a configuration it refuses, and start must see that exit rather than report success.
SETTLE = 1.0
CLIENT_STATUS = tuple(range(100, 500))

PARAMS = ParamTable(
    Param("service", Kind.SELECT, "Kopano daemon",
          "Which Kopano daemon this resource runs: server, spooler, dagent, gateway, ical, monitor, search or "
          "presence (the program kopano-<service>).", required=True, choices=SERVICES),
    Param("binary", Kind.PATH, "Daemon binary",
          "The daemon's program (default /usr/sbin/kopano-<service>)."),
    Param("config", Kind.PATH, "Configuration file",
          "The daemon's configuration file, passed as --config (default /etc/kopano/<service>.cfg). Its listener keys "
          "(server_listen and server_pipe_name, lmtp_listen, imap_listen/imaps_listen/pop3_listen/pop3s_listen, "
          "ical_listen/icals_listen, server_bind_name, server_bind/server_port), pid_file and "
          "run_as_user/run_as_group are read, with Kopano's defaults where unset."),
    Param("pid_file", Kind.PATH, "PID file",
          "Where the daemon's pid is kept (default: the configuration's pid_file, else "
          "/var/run/kopano/<service>.pid). Kopano 8 writes it itself; for later versions the agent writes it."),
    Param("user", Kind.STRING, "Run directory owner",
          "Owner of the pid file's and unix sockets' directories when start creates them, as Kopano's init "
          "scripts do (default: the configuration's run_as_user, else kopano). The daemon drops privileges to "
          "run_as_user itself."),
    Param("group", Kind.STRING, "Run directory group",
          "Group of those directories (default: the configuration's run_as_group, else kopano)."),
    Param("listen", Kind.STRING, "Listeners to check",
          "Space-separated addresses the monitor checks instead of the configuration's listeners: "
          "[protocol=]address, address host:port, [v6]:port or a unix socket (unix:/path); protocol one of "
          "soap, lmtp, imap, imaps, pop3, pop3s, http, https, search (default: the service's own)."),
    Param("options", Kind.STRING, "Extra daemon arguments",
          "More command-line arguments for the daemon, split like a shell would (no expansion)."),
    Param("probe_recipient", Kind.STRING, "Depth-20 LMTP recipient",
          "kopano-dagent at depth 20: an address whose RCPT TO the dagent must accept (250) after resolving "
          "it through kopano-server; nothing is delivered (RSET). Unset: depth 20 is depth 10."),
    Param("credentials_file", Kind.PATH, "Depth-20 mailbox login",
          "kopano-gateway at depth 20: a file of mode 0600 holding `user = ...` and `password = ...` of a "
          "mailbox to log in to over IMAP (SELECT INBOX) or, without an IMAP listener, POP3 (STAT); the login "
          "goes through kopano-server. Unset: depth 20 is depth 10."),
    Param("tls_verify", Kind.BOOLEAN, "Verify TLS certificates",
          "Whether the monitor verifies the certificate of imaps, pop3s and https listeners (it sends no "
          "credentials at depth 10, and the listener is usually reached as 127.0.0.1, which a certificate "
          "rarely names).", default="false"),
    Param("tls_ca_file", Kind.PATH, "CA file",
          "CA certificates to verify TLS listeners against (default: the system's)."),
)

SPEC = AgentSpec(
    name="kopano", version="0.1.0", shortdesc="Kopano groupware daemons, checked by their protocols",
    longdesc="Runs one Kopano daemon (parameter service) in the foreground as `kopano-<service> -F --config "
             "config` "
             "(kopano-dagent: -l), after creating its run directory; start succeeds once the daemon answers. "
             "Monitor depth 0: the process (pid file, process name) lives and every listener accepts a "
             "connection; depth 10 and 20: a protocol exchange on each listener: kopano-server an HTTP request "
             "to its SOAP endpoint on TCP and on its unix socket (any HTTP answer), kopano-dagent LMTP "
             "greeting and LHLO, kopano-gateway IMAP CAPABILITY and NOOP, POP3 CAPA (also over TLS), "
             "kopano-ical and kopano-presence an HTTP GET answered without a server error, kopano-search its "
             "PROPS command; kopano-spooler and kopano-monitor have no listener: their process must not be "
             "stopped. Depth 20 adds, where configured, what goes through kopano-server: kopano-dagent's RCPT TO "
             "of probe_recipient, kopano-gateway's login with credentials_file. Stop: SIGTERM, then TERM and "
             "KILL to the daemon's process group within the timeout.",
    params=PARAMS,
    actions=(ActionSpec("start", 60), ActionSpec("stop", 90), ActionSpec("monitor", 20, interval=30, depth=0),
             ActionSpec("monitor", 30, interval=120, depth=10), ActionSpec("meta-data", 5),
             ActionSpec("validate-all", 20)),
)


class KopanoService(daemon.Service):
    """One Kopano daemon as the shared lifecycle sees it, for one action (its configuration read once)."""

    def __init__(self, ctx: Context, cfg: KopanoConfig, problem: str = "") -> None:
        service = ctx.config.service
        self.service = service
        self.label = f"kopano-{service}"
        self.program = ctx.config.binary or f"/usr/sbin/kopano-{service}"
        self.names = (os.path.basename(self.program)[:15],)  # /proc/PID/comm keeps 15 characters
        self.cfg, self.problem = cfg, problem
        self.path = ctx.config.pid_file or cfg.get("pid_file") or f"/var/run/kopano/{service}.pid"
        from hamail.system.files import rsctmp
        self.record = os.path.join(rsctmp(ctx.env.raw), f"kopano-{ctx.env.instance.replace('/', '_')}.launch")

    def binary(self, ctx: Context) -> str:
        """kopano-<service>, or the binary parameter."""
        return self.program

    def pid_file(self, ctx: Context) -> str | None:
        """The pid file (parameter, the configuration's pid_file, Kopano's default)."""
        return self.path

    def find_pid(self, ctx: Context) -> int | None:
        """The daemon's pid from its pid file, else from the launch record of a start in progress."""
        return daemon.running_pid(self.path, self.names) or daemon.running_pid(self.record, self.names)

    def start_argv(self, ctx: Context) -> list:
        """sh records the pid and execs `kopano-<service> -F --config config [options]`."""
        import shlex
        flags = FOREGROUND.get(self.service, ("-F",))
        extra = shlex.split(ctx.config.options) if ctx.config.options else []
        return ["/bin/sh", "-c", LAUNCH, "kopano-launch", self.record, self.program, *flags, "--config",
                self.cfg.path, *extra]

    def foreground(self, ctx: Context) -> bool:
        """Kopano's daemons stay in the foreground with -F (dagent: -l): the agent spawns them."""
        return True

    def checked(self, ctx: Context) -> list:
        """The listeners the monitor checks (parameter listen, else the configuration's); ConfigError."""
        if self.problem:
            raise ConfigError(self.problem)
        try:
            if ctx.config.listen:
                return parse_listen_param(ctx.config.listen, self.service)
            return service_listeners(self.service, self.cfg)
        except ConfigProblem as exc:
            raise ConfigError(f"{self.label}: {exc}") from None

    def listeners(self, ctx: Context) -> list:
        """Every listener must accept a connection (depth 0)."""
        return [Endpoint(host=item.host, port=item.port, path=item.path) for item in self.checked(ctx)]

    def exchange(self, ctx: Context, deadline) -> None:
        """Depth 10: each listener's protocol; a daemon without listener must not be stopped."""
        listeners = self.checked(ctx)
        for item in listeners:
            _speak(ctx, item, deadline)
        if not listeners:
            _not_stopped(self.find_pid(ctx), SETTLE if ctx.action == "start" else 0.0)

    def end_to_end(self, ctx: Context, deadline) -> None:
        """Depth 20: dagent resolves probe_recipient, gateway logs in with credentials_file (through the server)."""
        listeners = self.checked(ctx)
        if self.service == "dagent" and ctx.config.probe_recipient:
            for item in listeners:
                if item.protocol == "lmtp":
                    _lmtp_recipient(item, deadline, ctx.config.probe_recipient)
        elif self.service == "gateway" and ctx.config.credentials_file:
            credentials = _credentials(ctx)
            usable = [item for item in listeners if not item.path]
            imap = [item for item in usable if item.protocol in ("imap", "imaps")]
            pop3 = [item for item in usable if item.protocol in ("pop3", "pop3s")]
            if imap:
                _imap_login(ctx, imap[0], deadline, credentials)
            elif pop3:
                _pop3_login(ctx, pop3[0], deadline, credentials)

    def after_stop(self, ctx: Context) -> None:
        """Remove the pid file of a daemon that is gone, and the launch record."""
        super().after_stop(ctx)
        if self.find_pid(ctx) is None:
            _unlink(self.record)

    def run_directories(self) -> list:
        """Directories the daemon writes its pid file and unix sockets in."""
        dirs = [os.path.dirname(self.path)]
        if not self.problem:
            try:
                dirs += [os.path.dirname(item.path) for item in service_listeners(self.service, self.cfg)
                         if item.path]
            except ConfigProblem:
                pass  # reported by the checks that need the listeners
        return sorted(set(d for d in dirs if d))

    def log_file(self) -> str:
        """The daemon's log file when it logs to one ('' for syslog or stderr)."""
        path = self.cfg.get("log_file")
        return path if path.startswith("/") and self.cfg.get("log_method", "file") in ("file", "auto") else ""

    def log_size(self) -> int:
        """The log file's size now (where this start's lines will begin)."""
        try:
            return os.stat(self.log_file()).st_size if self.log_file() else 0
        except OSError:
            return 0

    def log_tail(self, since: int) -> str:
        """The last line the daemon logged after offset since (why this start failed), '' when none."""
        path = self.log_file()
        if not path:
            return ""
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                handle.seek(since if since <= size else 0)  # a log rotated meanwhile: read it from its start
                handle.seek(max(handle.tell(), size - 4096))
                lines = handle.read().decode("utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        lines = [line.strip() for line in lines if line.strip()]
        return lines[-1][:300] if lines else ""


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _url(item) -> str:
    scheme = "https" if item.protocol in ("https",) else "http"
    if item.path:
        return "http://localhost/"
    host = f"[{item.host}]" if ":" in item.host else item.host
    return f"{scheme}://{host}:{item.port}/"


def _tls(ctx: Context):
    from hamail.service.probes import TLSPolicy
    return TLSPolicy(verify=ctx.config.tls_verify, ca_file=ctx.config.tls_ca_file or None)


def _speak(ctx: Context, item, deadline) -> None:
    """One protocol exchange with one listener; ProbeFailed names the step."""
    from hamail.service import probes
    endpoint = Endpoint(host=item.host, port=item.port, path=item.path)
    protocol = item.protocol
    if protocol == "lmtp":
        probes.smtp(endpoint, deadline, lmtp=True)
    elif protocol in ("imap", "imaps") and not item.path:
        probes.imap(endpoint, deadline, ssl_wrapped=protocol == "imaps", tls=_tls(ctx))
    elif protocol in ("pop3", "pop3s") and not item.path:
        probes.pop3(endpoint, deadline, ssl_wrapped=protocol == "pop3s", tls=_tls(ctx))
    elif protocol in ("soap", "http", "https"):
        probes.http_get(_url(item), deadline, tls=_tls(ctx), unix_socket=item.path,
                        expect_status=ANY_STATUS if protocol == "soap" else CLIENT_STATUS)
    elif protocol == "search":
        _search_props(endpoint, deadline)
    # IMAP or POP3 on a unix socket: the client libraries speak TCP only; depth 0 checked that it accepts.


def _credentials(ctx: Context):
    from hamail.service.mailprobe import load_credentials
    return load_credentials(ctx.config.credentials_file, "credentials_file")


def _lmtp_recipient(item, deadline, recipient: str) -> None:
    """LHLO, MAIL FROM:<>, RCPT TO:<recipient> answered 250 (kopano-dagent resolved it), RSET, QUIT."""
    import smtplib
    where = str(item)
    client = smtplib.LMTP(local_hostname="localhost", timeout=max(0.05, deadline.remaining()))
    step = "LMTP greeting"
    try:
        client.connect(item.path or item.host, item.port)
        step = "LMTP LHLO"
        code, answer = client.ehlo("localhost")
        if code == 250:
            step = "LMTP MAIL FROM"
            code, answer = client.mail("")
        if code == 250:
            step = "LMTP RCPT TO"
            code, answer = client.rcpt(recipient)
        if code != 250:
            raise ProbeFailed(step, where, f"{recipient if 'RCPT' in step else ''} answered {code} "
                              f"{answer.decode(errors='replace')[:200]}".strip())
        step = "LMTP RSET"
        client.rset()
        client.quit()
    except (OSError, smtplib.SMTPException) as exc:
        raise ProbeFailed(step, where, _why(exc) if isinstance(exc, OSError) else str(exc)[:200]) from None
    finally:
        client.close()


def _imap_login(ctx: Context, item, deadline, credentials) -> None:
    """IMAP LOGIN, SELECT INBOX, LOGOUT with the probe mailbox's credentials."""
    import imaplib
    where, timeout = str(item), max(0.05, deadline.remaining())
    step = "IMAP greeting"
    try:
        if item.protocol == "imaps":
            client = imaplib.IMAP4_SSL(item.host, item.port, timeout=timeout, ssl_context=_tls(ctx).context())
        else:
            client = imaplib.IMAP4(item.host, item.port, timeout=timeout)
        try:
            step = "IMAP LOGIN"
            client.login(credentials.user, credentials.password.reveal())
            step = "IMAP SELECT"
            typ, data = client.select("INBOX", readonly=True)
            if typ != "OK":
                raise ProbeFailed(step, where, f"answered {typ}")
            step = "IMAP LOGOUT"
            client.logout()
        except BaseException:
            try:
                client.shutdown()
            except OSError:
                pass  # the server already went away
            raise
    except (OSError, imaplib.IMAP4.error) as exc:
        raise ProbeFailed(step, where, _login_cause(exc, credentials)) from None


def _pop3_login(ctx: Context, item, deadline, credentials) -> None:
    """POP3 USER, PASS, STAT, QUIT with the probe mailbox's credentials."""
    import poplib
    where, timeout = str(item), max(0.05, deadline.remaining())
    step = "POP3 greeting"
    try:
        if item.protocol == "pop3s":
            client = poplib.POP3_SSL(item.host, item.port, timeout=timeout, context=_tls(ctx).context())
        else:
            client = poplib.POP3(item.host, item.port, timeout=timeout)
        try:
            step = "POP3 USER"
            client.user(credentials.user)
            step = "POP3 PASS"
            client.pass_(credentials.password.reveal())
            step = "POP3 STAT"
            client.stat()
            step = "POP3 QUIT"
            client.quit()
        finally:
            client.close()
    except (OSError, poplib.error_proto) as exc:
        raise ProbeFailed(step, where, _login_cause(exc, credentials)) from None


def _login_cause(exc: Exception, credentials) -> str:
    """A one-line cause that never carries the password (a server may echo what it was sent)."""
    text = _why(exc) if isinstance(exc, OSError) else " ".join(str(exc).split())[:200]
    return text.replace(credentials.password.reveal(), "***") if credentials.password.reveal() else text


def _search_props(endpoint: Endpoint, deadline) -> None:
    """kopano-search's socket protocol (one implementation, no client library): `PROPS` answered `OK:...`."""
    import socket
    where = str(endpoint)
    timeout = max(0.05, deadline.remaining())
    try:
        if endpoint.path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(endpoint.path)
        else:
            sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
    except OSError as exc:
        raise ProbeFailed("search connect", where, _why(exc)) from None
    with sock:
        try:
            sock.sendall(b"PROPS\r\n")
            answer = b""
            while b"\n" not in answer and len(answer) < 65536:
                sock.settimeout(max(0.05, deadline.remaining()))
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except OSError as exc:
            raise ProbeFailed("search PROPS", where, _why(exc)) from None
    line = answer.split(b"\n", 1)[0].strip().decode("utf-8", errors="replace")
    if not line.startswith("OK:"):
        raise ProbeFailed("search PROPS", where, f"answered {line[:200]!r}" if line else "connection closed")


def _why(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out (no answer)"
    return exc.strerror or type(exc).__name__


def _not_stopped(pid: int | None, settle: float) -> None:
    """A daemon without listener is healthy at depth 10 when its process runs (not stopped by a signal) and,
    while starting, has lived settle seconds."""
    from hamail.system import proc
    info = proc.stat(pid) if pid else None
    if info is None or info.zombie:
        raise ProbeFailed("process state", f"pid {pid}", "the process is gone")
    if info.state in ("T", "t"):
        raise ProbeFailed("process state", f"pid {pid}", "stopped by a signal: it does no work")
    if settle and _age(info) < settle:
        raise ProbeFailed("start-up", f"pid {pid}", f"running for less than {settle:g} s")


def _age(info) -> float:
    """Seconds since the process started (its start time in clock ticks after boot)."""
    try:
        with open("/proc/uptime", encoding="ascii") as handle:
            uptime = float(handle.read().split()[0])
        return uptime - int(info.starttime) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("inf")  # cannot tell: do not hold the start


def _service(ctx: Context, strict: bool) -> KopanoService:
    """The daemon of this resource. strict (start, monitor, validate-all): its configuration file must be
    readable here (NotInstalled otherwise: a probe then reports 'not running'); stop settles for defaults."""
    path = ctx.config.config or f"/etc/kopano/{ctx.config.service}.cfg"
    try:
        return KopanoService(ctx, read_config(path))
    except OSError as exc:
        if strict:
            raise NotInstalled(f"kopano-{ctx.config.service}: configuration {path} cannot be read: "
                               f"{exc.strerror}") from None
        return KopanoService(ctx, KopanoConfig(path, {}, {}))
    except ConfigProblem as exc:
        return KopanoService(ctx, KopanoConfig(path, {}, {}), problem=f"kopano-{ctx.config.service}: {exc}")


def _owner(ctx: Context, svc: KopanoService) -> tuple:
    """uid and gid of the run directories' owner; NotInstalled when the user or group is unknown here."""
    import grp
    import pwd
    user = ctx.config.user or svc.cfg.get("run_as_user") or "kopano"
    group = ctx.config.group or svc.cfg.get("run_as_group") or "kopano"
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        raise NotInstalled(f"{svc.label}: user {user} (parameter user or run_as_user) does not exist on "
                           "this node") from None
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise NotInstalled(f"{svc.label}: group {group} (parameter group or run_as_group) does not exist on "
                           "this node") from None
    return uid, gid


def validate(ctx: Context) -> None:
    """Start and validate-all: the configuration readable and its listeners valid, the run directories'
    owner known here, the program installed (validate-all)."""
    if ctx.action not in ("start", "validate-all"):
        return
    svc = _service(ctx, strict=True)
    svc.checked(ctx)
    _owner(ctx, svc)
    if ctx.config.credentials_file:
        _credentials(ctx)
    daemon.validate_all(svc, ctx)


def start(ctx: Context) -> int:
    """Create the run directories, start the daemon and wait until it answers; keep its pid in the pid file."""
    svc = _service(ctx, strict=True)
    uid, gid = _owner(ctx, svc)
    os.makedirs(os.path.dirname(svc.record), mode=0o755, exist_ok=True)
    logged = svc.log_size()
    for directory in svc.run_directories():
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o775)
            os.chown(directory, uid, gid)
    try:
        daemon.actions(svc)["start"](ctx)
    except OCFError as exc:
        tail = svc.log_tail(logged) if "while starting" in exc.reason else ""
        if not tail:
            raise
        text = f"{exc.reason}; its log {svc.log_file()} ends: {tail}"
        # Kopano reports a configuration it refuses as "Config error: ..." (LogConfigErrors) and exits.
        raise (ConfigError(text) if "Config error:" in tail else OCFError(exc.code, text)) from None
    pid = svc.find_pid(ctx)
    if pid is not None and daemon.running_pid(svc.path, svc.names) != pid:
        from hamail.system.files import atomic_write
        atomic_write(svc.path, f"{pid}\n", mode=0o644)  # Kopano 10 and later write none
    _unlink(svc.record)
    return OCFExit.SUCCESS


def stop(ctx: Context) -> int:
    """Stop the daemon (success when it does not run)."""
    return daemon.actions(_service(ctx, strict=False))["stop"](ctx)


def monitor(ctx: Context) -> int:
    """The daemon's health at OCF_CHECK_LEVEL (0, 10, 20)."""
    return daemon.actions(_service(ctx, strict=True))["monitor"](ctx)


AGENT = Agent(SPEC, {"start": start, "stop": stop, "monitor": monitor}, validate)

if __name__ == "__main__":
    main(AGENT)
