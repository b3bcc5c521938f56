# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:cyrus: Cyrus IMAP's master process (cyrmaster) and the services it runs, checked by their protocols.

There is no heartbeat cyrus agent (BlueMind's guide runs cyrus-imapd from its init script). Start checks both
configuration files with `cyr_info conf-lint` (its first error line is the reason), runs master in the
foreground with -C imapd.conf -M cyrus.conf -p pid_file, and returns once every listener answers. The monitor
reads the listeners from cyrus.conf's SERVICES (or the *_address parameters): depth 0 master lives and each
accepts a connection, depth 10 IMAP CAPABILITY+NOOP, POP3 CAPA and LMTP LHLO on each, depth 20 an LMTP delivery
to the probe mailbox read back (and deleted) over IMAP. Stop is SIGTERM to master (it ends its services), then
the process group by force, within the stop timeout.
"""

from __future__ import annotations

import os

from hamail.agents.cyrus import conf
from hamail.ocf import ActionSpec, Agent, AgentSpec, ConfigError, Context, Kind, NotInstalled, Param, ParamTable
from hamail.ocf import main
from hamail.service.daemon import Service, actions, running_pid, validate_all
from hamail.service.mailparams import CREDENTIALS, TLS_PARAMS, check_credentials_file, credentials, require_probe
from hamail.service.mailparams import tls_policy

PARAMS = ParamTable(
    Param("binary", Kind.PATH, "cyrus master binary",
          "Cyrus's master process, which starts and supervises the IMAP, POP3 and LMTP services (Debian: "
          "/usr/sbin/cyrmaster; elsewhere .../cyrus/bin/master).", default="/usr/sbin/cyrmaster"),
    Param("config", Kind.PATH, "cyrus.conf",
          "master's configuration (master -M): the services it runs; the monitor reads their listen= "
          "values from its SERVICES section.", default="/etc/cyrus.conf"),
    Param("imapd_conf", Kind.PATH, "imapd.conf",
          "The services' configuration (master -C). master does not pass -C on to the services: each cmd= "
          "in cyrus.conf must carry `-C <this file>` when it is not /etc/imapd.conf.", default="/etc/imapd.conf"),
    Param("pid_file", Kind.PATH, "PID file",
          "Where master writes its pid (master -p); its directory is created at start when missing.",
          default="/run/cyrus-master.pid", unique_group="pid_file"),
    Param("cyr_info", Kind.PATH, "cyr_info binary",
          "Cyrus's configuration checker, run as `cyr_info -C imapd_conf -M config conf-lint` before start "
          "and in validate-all: its first error line is the exit reason. Options it does not know are not "
          "errors (cyrus ignores them too).", default="/usr/lib/cyrus/bin/cyr_info"),
    Param("imap_address", Kind.STRING, "IMAP listeners to check",
          "Endpoints (host:port, a port on 127.0.0.1; imaps=host:port for TLS from the first byte), separated by "
          "spaces or commas, checked instead of cyrus.conf's imapd services."),
    Param("pop3_address", Kind.STRING, "POP3 listeners to check",
          "Endpoints (host:port, a port; pop3s=host:port for TLS) checked instead of cyrus.conf's pop3d services."),
    Param("lmtp_address", Kind.STRING, "LMTP listeners to check",
          "Endpoints (host:port or a unix socket path) checked instead of cyrus.conf's lmtpd services."),
    *TLS_PARAMS,
    Param("probe_address", Kind.STRING, "Probe recipient",
          "Depth 20: the address the probe message is delivered to over LMTP (default: the credentials_file "
          "user). The monitor reads it back over IMAP and deletes it."),
    Param("probe_imap", Kind.STRING, "IMAP server of the probe mailbox",
          "Depth 20: host:port the probe message is read back from (default: the first IMAP listener, else the "
          "first IMAPS one)."),
    Param("probe_imaps", Kind.BOOLEAN, "IMAP over TLS", "Whether probe_imap speaks IMAPS (TLS from the first "
          "byte).", default="false"),
    Param("probe_lmtp", Kind.STRING, "LMTP listener of the probe",
          "Depth 20: where the probe message is delivered, a unix socket path or host:port (default: the first "
          "LMTP unix socket, else the first LMTP port; lmtpd on a port needs -a, preauthentication, as a local "
          "MTA uses it)."),
    CREDENTIALS,
)

SPEC = AgentSpec(
    name="cyrus", version="0.1.0", shortdesc="Cyrus IMAP server (master and its services)",
    longdesc="Runs Cyrus IMAP's master process with the given cyrus.conf and imapd.conf. Start validates "
             "both with cyr_info conf-lint and waits until every listener answers its protocol. "
             "OCF_CHECK_LEVEL 0: master lives and every listener accepts a connection; 10: IMAP CAPABILITY and "
             "NOOP, POP3 CAPA and LMTP LHLO on each listener (a wedged server fails, naming the protocol step); "
             "20: a probe message delivered by LMTP to the probe mailbox is read back over IMAP and deleted.",
    params=PARAMS,
    actions=(ActionSpec("start", 60), ActionSpec("stop", 60), ActionSpec("monitor", 20, interval=20, depth=0),
             ActionSpec("monitor", 30, interval=60, depth=10), ActionSpec("meta-data", 5),
             ActionSpec("validate-all", 30)),
)


def _names(binary: str) -> tuple:
    """The names master's process may have: the binary's, and its target's when it is a link (cyrmaster)."""
    return tuple({os.path.basename(binary), os.path.basename(os.path.realpath(binary))})


# The address parameters and the protocols of cyrus.conf's listeners each one replaces.
OVERRIDES = {"imap_address": "imap", "pop3_address": "pop3", "lmtp_address": "lmtp"}


def _addresses(ctx: Context, name: str, protocol: str) -> list | None:
    """An address parameter's Listeners (None when unset); ConfigError naming it."""
    value = (ctx.config[name] or "").strip()
    if not value:
        return None
    try:
        return conf.parse_addresses(value, protocol)
    except ValueError as exc:
        raise ConfigError(f"parameter {name}: {exc}") from None


def _cyrus_conf(ctx: Context) -> list:
    try:
        with open(ctx.config.config, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError as exc:
        raise NotInstalled(f"cyrus.conf {ctx.config.config} cannot be read: {exc.strerror}") from None
    try:
        return conf.listeners(text)
    except ValueError as exc:
        raise ConfigError(f"{ctx.config.config}: {exc}") from None


def listeners(ctx: Context) -> list:
    """The server's listeners: cyrus.conf's SERVICES, those of a protocol replaced by its address parameter."""
    found = _cyrus_conf(ctx)
    for name, protocol in OVERRIDES.items():
        given = _addresses(ctx, name, protocol)
        if given is not None:
            found = [x for x in found if x.protocol.rstrip("s") != protocol.rstrip("s")] + given
    return found


class Cyrus(Service):
    """Cyrus master: a foreground process that binds every listener and starts a service per connection."""

    label = "cyrus"

    def binary(self, ctx: Context) -> str:
        """master."""
        return ctx.config.binary

    def pid_file(self, ctx: Context) -> str:
        """master -p."""
        return ctx.config.pid_file

    def find_pid(self, ctx: Context) -> int | None:
        """master's pid while a process of master's name runs under it."""
        return running_pid(ctx.config.pid_file, _names(ctx.config.binary))

    def check_argv(self, ctx: Context) -> list:
        """cyr_info conf-lint over both files (it needs cyrus.conf to know the service names)."""
        return [ctx.config.cyr_info, "-C", ctx.config.imapd_conf, "-M", ctx.config.config, "conf-lint"]

    def start_argv(self, ctx: Context) -> list:
        """master in the foreground, so that an early exit (a failed START entry) fails the start at once."""
        return [ctx.config.binary, "-C", ctx.config.imapd_conf, "-M", ctx.config.config, "-p", ctx.config.pid_file]

    def foreground(self, ctx: Context) -> bool:
        """master stays in the foreground without -d."""
        return True

    def listeners(self, ctx: Context) -> list:
        """Every listener's endpoint."""
        return [listener.endpoint for listener in listeners(ctx)]

    def exchange(self, ctx: Context, deadline) -> None:
        """Each listener's protocol greeting and one command (imaplib, poplib, smtplib's LMTP)."""
        from hamail.service import probes
        tls = tls_policy(ctx)
        for listener in listeners(ctx):
            endpoint, protocol = listener.endpoint, listener.protocol
            if protocol == "lmtp":
                probes.smtp(endpoint, deadline, lmtp=True)
            elif endpoint.path:
                continue  # imaplib and poplib speak TCP only; the socket accepted at depth 0
            elif protocol in ("imap", "imaps"):
                probes.imap(endpoint, deadline, ssl_wrapped=protocol == "imaps", tls=tls)
            elif protocol in ("pop3", "pop3s"):
                probes.pop3(endpoint, deadline, ssl_wrapped=protocol == "pop3s", tls=tls)

    def end_to_end(self, ctx: Context, deadline) -> None:
        """Deliver a probe message by LMTP, read it back over IMAP, delete it."""
        from hamail.service.mailprobe import round_trip
        login = credentials(ctx)
        lmtp, imap = probe_endpoints(ctx)
        round_trip(lmtp.endpoint, imap.endpoint, deadline, login, ctx.config.probe_address or login.user,
                   lmtp=True, imap_ssl=imap.protocol == "imaps", tls=tls_policy(ctx))


def _probe_parameter(ctx: Context, name: str, protocol: str):
    value = (ctx.config[name] or "").strip()
    if not value:
        return None
    try:
        return conf.Listener(name, protocol, conf.resolve_listen(value))
    except ValueError as exc:
        raise ConfigError(f"parameter {name}: {exc}") from None


def probe_endpoints(ctx: Context) -> tuple:
    """(LMTP, IMAP) Listeners the depth-20 probe uses: the probe_* parameters, else the server's own."""
    found = listeners(ctx)
    lmtp = _probe_parameter(ctx, "probe_lmtp", "lmtp") or next(
        (x for x in found if x.protocol == "lmtp" and x.endpoint.path),
        next((x for x in found if x.protocol == "lmtp"), None))
    imap = _probe_parameter(ctx, "probe_imap", "imaps" if ctx.config.probe_imaps else "imap") or next(
        (x for x in found if x.protocol == "imap" and not x.endpoint.path),
        next((x for x in found if x.protocol == "imaps" and not x.endpoint.path), None))
    if lmtp is None:
        raise ConfigError("depth 20: cyrus.conf has no LMTP listener to deliver the probe to: set probe_lmtp")
    if imap is None or imap.endpoint.path:
        raise ConfigError("depth 20: no IMAP listener on a port to read the probe back from: set probe_imap")
    return lmtp, imap


SERVICE = Cyrus()
ACTIONS = actions(SERVICE)


def start(ctx: Context) -> int:
    """Create the directories master needs to write its pid and bind its sockets (/run is empty after a
    reboot; Debian's init script creates them), then the shared start."""
    wanted = {os.path.dirname(ctx.config.pid_file)}
    try:
        wanted.update(os.path.dirname(e.path) for e in SERVICE.listeners(ctx) if e.path)
    except ConfigError:
        pass  # cyr_info, run next, says what is wrong with cyrus.conf in its own words
    for directory in sorted(wanted):
        if directory and not os.path.isdir(directory):
            ctx.log.info("creating %s", directory)
            os.makedirs(directory, mode=0o755, exist_ok=True)
    return ACTIONS["start"](ctx)


def validate(ctx: Context) -> None:
    """Parameters wrong everywhere (addresses, probe endpoints, a depth-20 monitor without credentials); the
    credentials file at start and validate-all; for validate-all cyrus.conf's listeners and the checker."""
    for name, protocol in OVERRIDES.items():
        _addresses(ctx, name, protocol)
    _probe_parameter(ctx, "probe_imap", "imap")
    _probe_parameter(ctx, "probe_lmtp", "lmtp")
    if ctx.env.check_level >= 20 and ctx.action == "monitor":
        require_probe(ctx, "credentials_file")
    check_credentials_file(ctx)
    if ctx.action == "validate-all":
        listeners(ctx)
        if ctx.config.tls_ca_file and not os.path.isfile(ctx.config.tls_ca_file):
            raise NotInstalled(f"parameter tls_ca_file: {ctx.config.tls_ca_file} does not exist on this node")
    validate_all(SERVICE, ctx)


AGENT = Agent(SPEC, dict(ACTIONS, start=start), validate)

if __name__ == "__main__":
    main(AGENT)
