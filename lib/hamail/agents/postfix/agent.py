# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:postfix: a Postfix instance whose monitor speaks SMTP (heartbeat postfix's parameters).

Depth 0: the master process lives and every SMTP listener of master.cf accepts; 10: greeting and EHLO on each
(STARTTLS when asked, TLS from the first byte on smtps services); 20: a probe message delivered through Postfix
to a probe mailbox and read back over IMAP, then deleted. What postconf says (queue_directory, the listeners) is
kept in HA_RSCTMP while main.cf and master.cf are unchanged, so a depth-0 monitor runs no program.
"""

from __future__ import annotations

import os

from hamail.ocf import ActionSpec, Agent, AgentSpec, ConfigError, Context, Kind
from hamail.ocf import Param, ParamTable, main
from hamail.service import daemon
from hamail.service.mailparams import CREDENTIALS, TLS_PARAMS, credentials, endpoints, reload_action
from hamail.service.mailparams import split_parameters, tls_policy, validate_mail

# Debian's (and Postfix's compiled-in) configuration directory, used when config_dir is not set.
DEFAULT_CONFIG_DIR = "/etc/postfix"

PARAMS = ParamTable(
    Param("binary", Kind.STRING, "Full path to Postfix binary",
          "The postfix command (a bare name is looked up in PATH); postconf is taken from PATH.",
          default="/usr/sbin/postfix"),
    Param("config_dir", Kind.PATH, "Full path to configuration directory",
          "A Postfix configuration directory (postfix -c), e.g. /etc/postfix-out. Unlike heartbeat's agent, "
          "ours does not require it in the default main.cf's alternate_config_directories (only the set-gid "
          "postdrop and postqueue need that, for local submission).", unique_group="config_dir"),
    Param("parameters", Kind.STRING, "Additional postfix options",
          "Options given to every postfix command after -c (e.g. -v), split like a shell would."),
    Param("smtp_address", Kind.STRING, "SMTP listeners to check",
          "host:port of each SMTP listener to check (spaces or commas between), instead of the smtpd and "
          "postscreen inet services master.cf defines."),
    Param("starttls", Kind.BOOLEAN, "STARTTLS at depth 10",
          "Whether the depth-10 monitor also requires STARTTLS (and EHLO after it) on each plain SMTP listener.",
          default="false"),
    *TLS_PARAMS,
    Param("probe_address", Kind.STRING, "Probe recipient",
          "Depth 20: the address a probe message is sent to through Postfix (it must end in the mailbox that "
          "credentials_file logs in to)."),
    Param("probe_imap", Kind.STRING, "IMAP server of the probe mailbox",
          "Depth 20: host:port of the IMAP server the probe message is read back from."),
    Param("probe_imaps", Kind.BOOLEAN, "IMAP over TLS", "Whether probe_imap speaks IMAPS (TLS from the first "
          "byte).", default="false"),
    CREDENTIALS,
)

SPEC = AgentSpec(
    name="postfix", version="0.1.0", shortdesc="Manages a highly available Postfix mail server instance",
    longdesc="Starts, stops and monitors a Postfix instance. The configuration is checked with 'postfix check' "
             "before start (its first error is the reason); start waits until SMTP answers. Monitor depth 0: the "
             "master process and every SMTP listener accepts; depth 10: SMTP greeting and EHLO (plus STARTTLS "
             "when asked) on each; depth 20: a probe message through Postfix to a probe mailbox, read back over "
             "IMAP and deleted. Stop: 'postfix stop', then TERM and KILL of the instance's processes.",
    params=PARAMS,
    actions=(ActionSpec("start", 60), ActionSpec("stop", 60), ActionSpec("reload", 20),
             ActionSpec("monitor", 20, interval=60, depth=0), ActionSpec("monitor", 30, interval=120, depth=10),
             ActionSpec("meta-data", 5), ActionSpec("validate-all", 30)),
)


def _config_dir(ctx: Context) -> str:
    return (ctx.config.config_dir or DEFAULT_CONFIG_DIR).rstrip("/") or "/"


def _options(ctx: Context) -> list:
    """-c config_dir and the extra parameters, as every postfix command takes them."""
    options = ["-c", ctx.config.config_dir.rstrip("/")] if ctx.config.config_dir else []
    return options + split_parameters(ctx)


def _postconf(ctx: Context, *args: str) -> str:
    config = ["-c", ctx.config.config_dir.rstrip("/")] if ctx.config.config_dir else []
    result = ctx.run(["postconf", *config, *args], timeout=max(1.0, min(10.0, ctx.deadline.remaining())))
    if not result.ok:
        raise ConfigError(f"postconf cannot read the configuration: {result.first_error_line()}")
    return result.stdout


def _worst_line(text: str) -> str:
    """The first fatal or error line of Postfix's messages, else the first line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for mark in ("fatal:", "error:"):
        for line in lines:
            if mark in line:
                return line
    return lines[0] if lines else ""


def layout(ctx: Context) -> dict:
    """queue_directory and the SMTP services, from postconf, remembered while main.cf and master.cf are unchanged."""
    from hamail.service.cache import remembered

    def ask():
        from hamail.agents.postfix.services import smtp_services
        queue, interfaces = (_postconf(ctx, "-h", "queue_directory", "inet_interfaces").splitlines() + ["", ""])[:2]
        services = smtp_services(_postconf(ctx, "-M"), interfaces)
        return [["queue_directory", queue.strip()]] + [["smtp", name, host, port, int(wrapped)]
                                                      for name, host, port, wrapped in services]
    directory = _config_dir(ctx)
    # The parser's own file is part of the key: an upgraded agent must not reuse what older code concluded.
    paths = [os.path.join(directory, "main.cf"), os.path.join(directory, "master.cf"),
             os.path.join(os.path.dirname(__file__), "services.py")]
    rows = remembered(ctx.env.raw, f"hamail-postfix-{ctx.env.instance}", paths, ask, ctx.log)
    found = {"queue_directory": "", "smtp": []}
    for row in rows:
        if row[0] == "queue_directory" and len(row) == 2:
            found["queue_directory"] = row[1]
        elif row[0] == "smtp" and len(row) == 5 and row[3].isdigit():
            found["smtp"].append((row[1], row[2], int(row[3]), row[4] == "1"))
    return found


class Postfix(daemon.Service):
    """Postfix's master and its SMTP services."""

    label = "postfix"
    names = ("master",)

    def binary(self, ctx: Context) -> str:
        """The postfix command."""
        return ctx.config.binary

    def pid_file(self, ctx: Context) -> str | None:
        """queue_directory/pid/master.pid (None when postconf cannot read a configuration never read before:
        then nothing it describes was started by us, and start's checker says what is wrong)."""
        try:
            queue = layout(ctx)["queue_directory"]
        except ConfigError as exc:
            ctx.log.info("no pid file to look at: %s", exc.reason)
            return None
        return os.path.join(queue, "pid", "master.pid") if queue else None

    def check_argv(self, ctx: Context) -> list:
        """postfix check."""
        return [ctx.config.binary, *_options(ctx), "check"]

    def check_failure(self, ctx: Context, result) -> str:
        """postfix check writes to stderr only when it is a terminal (else to the mail log): its output if any,
        else postconf's complaint about main.cf or master.cf (postconf always writes to stderr)."""
        if (result.stdout + result.stderr).strip():
            return _worst_line(result.stderr + "\n" + result.stdout)
        probe = ctx.run(["postconf", *(["-c", ctx.config.config_dir] if ctx.config.config_dir else []), "-n"],
                        timeout=max(1.0, min(10.0, ctx.deadline.remaining())))
        if probe.stderr.strip():
            return _worst_line(probe.stderr)
        return (f"exit status {result.rc}; postfix check writes its reasons to the mail log (maillog_file or "
                "syslog) when not run from a terminal")

    def start_argv(self, ctx: Context) -> list:
        """postfix start (it detaches the master)."""
        return [ctx.config.binary, *_options(ctx), "start"]

    def stop_argv(self, ctx: Context) -> list:
        """postfix stop."""
        return [ctx.config.binary, *_options(ctx), "stop"]

    def smtp_endpoints(self, ctx: Context) -> list:
        """(Endpoint, wrapped) of each SMTP listener: smtp_address, else master.cf's."""
        from hamail.service.probes import Endpoint
        given = endpoints(ctx, "smtp_address")
        if given:
            return [(endpoint, False) for endpoint in given]
        return [(Endpoint(host, port), wrapped) for _, host, port, wrapped in layout(ctx)["smtp"]]

    def listeners(self, ctx: Context) -> list:
        """Every SMTP listener."""
        return [endpoint for endpoint, _ in self.smtp_endpoints(ctx)]

    def exchange(self, ctx: Context, deadline) -> None:
        """Greeting and EHLO on each listener (STARTTLS when asked; TLS first on smtps)."""
        from hamail.service.probes import smtp
        tls = tls_policy(ctx)
        for endpoint, wrapped in self.smtp_endpoints(ctx):
            smtp(endpoint, deadline, ssl_wrapped=wrapped, starttls=ctx.config.starttls and not wrapped, tls=tls)

    def end_to_end(self, ctx: Context, deadline) -> None:
        """A probe message through the first plain SMTP listener, read back over IMAP and deleted."""
        from hamail.service.mailprobe import round_trip
        from hamail.service.probes import Endpoint
        plain = [endpoint for endpoint, wrapped in self.smtp_endpoints(ctx) if not wrapped]
        if not plain:
            raise ConfigError("depth 20 needs a plain SMTP listener to deliver through (name one in smtp_address)")
        try:
            imap_at = Endpoint.parse(ctx.config.probe_imap)
        except ValueError as exc:
            raise ConfigError(f"parameter probe_imap: {exc}") from None
        round_trip(plain[0], imap_at, deadline, credentials(ctx), ctx.config.probe_address,
                   imap_ssl=ctx.config.probe_imaps, tls=tls_policy(ctx))


SERVICE = Postfix()


def validate(ctx: Context) -> None:
    """The postfix command and config_dir exist here; the parameters parse; validate-all runs postfix check."""
    validate_mail(SERVICE, ctx, config=("config_dir", "isdir", "a directory"), endpoint_params=("smtp_address",),
                  probe_params=("probe_address", "probe_imap", "credentials_file"))


# postfix reload re-reads main.cf and master.cf
AGENT = Agent(SPEC, {**daemon.actions(SERVICE),
                     "reload": reload_action(SERVICE, lambda ctx: [ctx.config.binary, *_options(ctx), "reload"])},
              validate)

if __name__ == "__main__":
    main(AGENT)
