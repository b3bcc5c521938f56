# SPDX-License-Identifier: GPL-2.0-or-later
"""What the mail daemons' agents (postfix, dovecot) share: the parameters of their probes (TLS verification, the
depth-20 probe mailbox and its credentials file) and what they turn into (a TLSPolicy, endpoints, credentials
read at the right moment), the `parameters` option string, their validation and their reload action."""

from __future__ import annotations

import os

from hamail.ocf import ConfigError, Context, Kind, NotInstalled, OCFError, OCFExit, Param
from hamail.service.probes import Endpoint, TLSPolicy

__all__ = ["TLS_PARAMS", "CREDENTIALS", "tls_policy", "endpoints", "credentials", "check_credentials_file",
           "require_probe", "split_parameters", "validate_mail", "reload_action"]

TLS_PARAMS = (
    Param("tls_verify", Kind.BOOLEAN, "Verify TLS certificates",
          "Whether the monitor's TLS connections (STARTTLS, SMTPS, IMAPS, POP3S) verify the server's certificate "
          "and host name. Turn off only for self-signed test certificates.", default="true"),
    Param("tls_ca_file", Kind.PATH, "CA file for TLS verification",
          "PEM file of the certificate authorities the monitor trusts (default: the system's)."),
)
CREDENTIALS = Param(
    "credentials_file", Kind.PATH, "Probe mailbox credentials file",
    "A file of mode 0600 holding 'user = ...' and 'password = ...' for the probe mailbox that depth-20 monitors "
    "read back over IMAP (the password is never in the CIB, argv or logs).")


def tls_policy(ctx: Context) -> TLSPolicy:
    """The TLS verification the parameters ask for."""
    return TLSPolicy(verify=ctx.config.tls_verify, ca_file=ctx.config.tls_ca_file)


def endpoints(ctx: Context, name: str) -> list:
    """The endpoints listed in a parameter (separated by spaces or commas); ConfigError naming it."""
    text = ctx.config[name] or ""
    found = []
    for word in text.replace(",", " ").split():
        try:
            found.append(Endpoint.parse(word))
        except ValueError as exc:
            raise ConfigError(f"parameter {name}: {exc}") from None
    return found


def check_credentials_file(ctx: Context) -> None:
    """At start and validate-all: a configured credentials file is readable and well formed (5 or 6 with why)."""
    if ctx.config.credentials_file and ctx.action in ("start", "validate-all"):
        credentials(ctx)


def credentials(ctx: Context):
    """The probe mailbox's MailCredentials from credentials_file."""
    from hamail.service.mailprobe import load_credentials
    return load_credentials(ctx.config.credentials_file, "credentials_file")


def require_probe(ctx: Context, *names: str) -> None:
    """A depth-20 monitor needs these parameters: ConfigError naming the missing ones."""
    missing = [name for name in names if not ctx.config[name]]
    if missing:
        raise ConfigError(f"a depth-20 monitor (OCF_CHECK_LEVEL=20) needs {', '.join(missing)}: set "
                          f"{'it' if len(missing) == 1 else 'them'} or monitor at depth 0 or 10")


def split_parameters(ctx: Context) -> list:
    """The `parameters` option string split as a shell would (heartbeat's agents pass it unquoted)."""
    if not ctx.config.parameters:
        return []  # shlex imports re (~4 ms): only when there is something to split
    import shlex
    try:
        return shlex.split(ctx.config.parameters)
    except ValueError as exc:
        raise ConfigError(f"parameter parameters: {exc}") from None


def validate_mail(service, ctx: Context, *, config: tuple, endpoint_params: tuple, probe_params: tuple) -> None:
    """The daemon's command and its configuration (config: parameter name and os.path test) exist here, the
    parameters parse, a depth-20 monitor has its probe parameters; validate-all runs the daemon's checker."""
    from hamail.service import daemon
    if ctx.runner.find(ctx.config.binary) is None:
        raise NotInstalled(f"{service.label}: {ctx.config.binary} is not installed on this node")
    name, exists, what = config
    if ctx.config[name] and not getattr(os.path, exists)(ctx.config[name]):
        raise NotInstalled(f"parameter {name}: {ctx.config[name]} is not {what} on this node")
    split_parameters(ctx)
    for name in endpoint_params:
        endpoints(ctx, name)
    if ctx.env.check_level >= 20 and ctx.action == "monitor":
        require_probe(ctx, *probe_params)
    check_credentials_file(ctx)
    daemon.validate_all(service, ctx)


def reload_action(service, argv):
    """A reload action: when the daemon runs, check the configuration, then run argv(ctx)."""
    from hamail.service import daemon

    def reload(ctx: Context) -> int:
        """Reload the daemon's configuration when it runs (checked first: a refused one is the reason)."""
        if service.find_pid(ctx) is None:
            return OCFExit.SUCCESS
        daemon.check_configuration(service, ctx)
        result = ctx.run(argv(ctx))
        if not result.ok:
            raise OCFError(OCFExit.ERR_GENERIC, f"{service.label} reload failed: {result.first_error_line()}")
        return OCFExit.SUCCESS
    return reload
