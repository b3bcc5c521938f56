# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:dovecot: a Dovecot instance whose monitor speaks IMAP, POP3 and LMTP (heartbeat dovecot's parameters).

Unlike heartbeat's agent, config_file is honoured (dovecot -c). Depth 0: the master process lives and every
listener accepts; 10: IMAP CAPABILITY and NOOP, POP3 CAPA, LMTP LHLO on each (IMAPS/POP3S with TLS); 20: a probe
message delivered over LMTP, read back over IMAP and deleted. What doveconf says (base_dir, the listeners) is kept
in HA_RSCTMP while the configuration files are unchanged, so a depth-0 monitor runs no program.
"""

from __future__ import annotations

import os

from hamail.ocf import ActionSpec, Agent, AgentSpec, ConfigError, Context, Kind
from hamail.ocf import Param, ParamTable, main
from hamail.service import daemon
from hamail.service.mailparams import CREDENTIALS, TLS_PARAMS, credentials, endpoints, reload_action
from hamail.service.mailparams import split_parameters, tls_policy, validate_mail

# Dovecot's compiled-in configuration file on Debian, read when config_file is not set.
DEFAULT_CONFIG = "/etc/dovecot/dovecot.conf"
# Which protocol each override parameter names, and the discovered kinds it replaces.
OVERRIDES = {"imap_address": ("imap", ("imap", "imaps")), "pop3_address": ("pop3", ("pop3", "pop3s")),
             "lmtp_address": ("lmtp", ("lmtp",))}

PARAMS = ParamTable(
    Param("binary", Kind.STRING, "Full path to Dovecot binary",
          "The dovecot command (a bare name is looked up in PATH); doveconf is taken from PATH.",
          default="/usr/sbin/dovecot"),
    Param("config_file", Kind.PATH, "Full path to configuration file",
          "A Dovecot configuration file (dovecot -c), e.g. /etc/dovecot/dovecot.conf. Heartbeat's agent ignores "
          "it; ours starts, checks and stops the instance it describes.", unique_group="config_file"),
    Param("pid_file", Kind.PATH, "Full path to PID file",
          "The master's pid file. Default: master.pid in the configuration's base_dir (heartbeat's default is "
          "/var/run/dovecot/master.pid, which is base_dir's default).", unique_group="pid_file"),
    Param("parameters", Kind.STRING, "Additional dovecot options",
          "Options given to dovecot at start and stop (after -c), split like a shell would."),
    Param("imap_address", Kind.STRING, "IMAP listeners to check",
          "host:port of each IMAP listener to check (spaces or commas between), instead of the configuration's "
          "imap and imaps listeners."),
    Param("pop3_address", Kind.STRING, "POP3 listeners to check",
          "host:port of each POP3 listener to check, instead of the configuration's pop3 and pop3s listeners."),
    Param("lmtp_address", Kind.STRING, "LMTP listeners to check",
          "host:port or socket path of each LMTP listener to check, instead of the configuration's."),
    *TLS_PARAMS,
    Param("probe_address", Kind.STRING, "Probe recipient",
          "Depth 20: the address the probe message is delivered to over LMTP (default: the credentials_file "
          "user)."),
    CREDENTIALS,
)

SPEC = AgentSpec(
    name="dovecot", version="0.1.0", shortdesc="Manages a highly available Dovecot IMAP/POP3 server instance",
    longdesc="Starts, stops and monitors a Dovecot instance. The configuration is checked with 'doveconf -n' "
             "before start (its first error is the reason); start waits until every protocol answers. Monitor "
             "depth 0: the master process and every listener accepts; depth 10: IMAP CAPABILITY and NOOP, POP3 "
             "CAPA and LMTP LHLO (IMAPS and POP3S over TLS); depth 20: a probe message delivered over LMTP, read "
             "back over IMAP and deleted. Stop: 'dovecot stop', then TERM and KILL of the instance's processes.",
    params=PARAMS,
    actions=(ActionSpec("start", 60), ActionSpec("stop", 60), ActionSpec("reload", 20),
             ActionSpec("monitor", 20, interval=60, depth=0), ActionSpec("monitor", 30, interval=120, depth=10),
             ActionSpec("meta-data", 5), ActionSpec("validate-all", 30)),
)


def _config(ctx: Context) -> list:
    return ["-c", ctx.config.config_file] if ctx.config.config_file else []


def _config_files(path: str) -> list:
    """The configuration file and the *.conf(.ext) files beside it and in conf.d (where !include usually points)."""
    found = [path]
    directory = os.path.dirname(path)
    for where in (directory, os.path.join(directory, "conf.d")):
        try:
            found += sorted(entry.path for entry in os.scandir(where)
                            if entry.path != path and entry.name.endswith((".conf", ".conf.ext")) and entry.is_file())
        except OSError:
            pass
    return found


def layout(ctx: Context) -> dict:
    """base_dir and the listeners, from doveconf -S, remembered while the configuration files are unchanged."""
    from hamail.service.cache import remembered

    def ask():
        from hamail.agents.dovecot.listeners import listeners, parse_settings
        result = ctx.run(["doveconf", *_config(ctx), "-S"], timeout=max(1.0, min(10.0, ctx.deadline.remaining())))
        if not result.ok:
            raise ConfigError(f"doveconf rejects the configuration: {result.first_error_line()}")
        settings = parse_settings(result.stdout)
        return [["base_dir", settings.get("base_dir", "")]] + [["listener", *item] for item in listeners(settings)]
    # The parser's own file is part of the key: an upgraded agent must not reuse what older code concluded.
    paths = _config_files(ctx.config.config_file or DEFAULT_CONFIG) + [
        os.path.join(os.path.dirname(__file__), "listeners.py")]
    rows = remembered(ctx.env.raw, f"hamail-dovecot-{ctx.env.instance}", paths, ask, ctx.log)
    found = {"base_dir": "", "listeners": []}
    for row in rows:
        if row[0] == "base_dir" and len(row) == 2:
            found["base_dir"] = row[1]
        elif row[0] == "listener" and len(row) == 5 and row[3].isdigit():
            found["listeners"].append((row[1], row[2], int(row[3]), row[4]))
    return found


class Dovecot(daemon.Service):
    """Dovecot's master and its IMAP, POP3 and LMTP services."""

    label = "dovecot"
    names = ("dovecot",)

    def binary(self, ctx: Context) -> str:
        """The dovecot command."""
        return ctx.config.binary

    def pid_file(self, ctx: Context) -> str | None:
        """pid_file, else base_dir/master.pid."""
        if ctx.config.pid_file:
            return ctx.config.pid_file
        try:
            base_dir = layout(ctx)["base_dir"]
        except ConfigError as exc:  # a configuration never read before: start's checker says what is wrong
            ctx.log.info("no pid file to look at: %s", exc.reason)
            return None
        return os.path.join(base_dir, "master.pid") if base_dir else None

    def check_argv(self, ctx: Context) -> list:
        """doveconf -n."""
        return ["doveconf", *_config(ctx), "-n"]

    def start_argv(self, ctx: Context) -> list:
        """dovecot (it detaches the master)."""
        return [ctx.config.binary, *_config(ctx), *split_parameters(ctx)]

    def stop_argv(self, ctx: Context) -> list:
        """dovecot stop."""
        return [ctx.config.binary, *_config(ctx), *split_parameters(ctx), "stop"]

    def endpoints(self, ctx: Context) -> list:
        """(protocol, Endpoint) of each listener to check: the override parameters, else the configuration's."""
        from hamail.service.probes import Endpoint
        found = [(kind, Endpoint(host, port, path)) for kind, host, port, path in layout(ctx)["listeners"]]
        for name, (kind, replaced) in OVERRIDES.items():
            given = endpoints(ctx, name)
            if given:
                found = [item for item in found if item[0] not in replaced] + [(kind, e) for e in given]
        return found

    def listeners(self, ctx: Context) -> list:
        """Every listener."""
        return [endpoint for _, endpoint in self.endpoints(ctx)]

    def exchange(self, ctx: Context, deadline) -> None:
        """IMAP CAPABILITY+NOOP, POP3 CAPA, LMTP LHLO on each listener (TLS first on imaps and pop3s)."""
        from hamail.service.probes import imap, pop3, smtp
        tls = tls_policy(ctx)
        for kind, endpoint in self.endpoints(ctx):
            if kind in ("imap", "imaps"):
                imap(endpoint, deadline, ssl_wrapped=kind == "imaps", tls=tls)
            elif kind in ("pop3", "pop3s"):
                pop3(endpoint, deadline, ssl_wrapped=kind == "pop3s", tls=tls)
            else:
                smtp(endpoint, deadline, lmtp=True)

    def end_to_end(self, ctx: Context, deadline) -> None:
        """A probe message delivered over LMTP, read back over IMAP and deleted."""
        from hamail.service.mailprobe import round_trip
        found = self.endpoints(ctx)
        lmtp = [endpoint for kind, endpoint in found if kind == "lmtp"]
        imap_at = [(endpoint, kind == "imaps") for kind, endpoint in found if kind in ("imap", "imaps")]
        if not lmtp or not imap_at:
            raise ConfigError("depth 20 needs an LMTP and an IMAP listener (enable lmtp and imap in protocols, or "
                              "name them in lmtp_address and imap_address)")
        imap_at.sort(key=lambda item: item[1])  # plain IMAP first: no certificate to trust on loopback
        login = credentials(ctx)
        round_trip(lmtp[0], imap_at[0][0], deadline, login, ctx.config.probe_address or login.user, lmtp=True,
                   imap_ssl=imap_at[0][1], tls=tls_policy(ctx))


SERVICE = Dovecot()


def validate(ctx: Context) -> None:
    """The dovecot command and config_file exist here; the parameters parse; validate-all runs doveconf -n."""
    validate_mail(SERVICE, ctx, config=("config_file", "isfile", "a file"), endpoint_params=tuple(OVERRIDES),
                  probe_params=("credentials_file",))


AGENT = Agent(SPEC, {**daemon.actions(SERVICE),
                     "reload": reload_action(SERVICE, lambda ctx: [ctx.config.binary, *_config(ctx), "reload"])},
              validate)

if __name__ == "__main__":
    main(AGENT)
