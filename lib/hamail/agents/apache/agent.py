# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:apache: an Apache httpd instance, started from its configuration file and watched through HTTP.

heartbeat apache's parameters with their meaning. The lifecycle is the shared one (hamail.service.daemon):
`apache2 -t` judges the configuration before start (its first error line is the exit reason), start is
`apache2 -f CONFIG -k start` and succeeds once server-status answers, stop is `-k graceful-stop` and then TERM
and KILL of the whole process group within the stop timeout. Depth 0: the process named in the configuration's
PidFile lives and every Listen address accepts; 10: GET statusurl, status 200 and testregex in the body;
20: also testurl/testregex10 or the test of testconffile (heartbeat checks those at its depth 10).
"""

from __future__ import annotations

import os

from hamail.ocf import ActionSpec, Agent, AgentSpec, ConfigError, Context, Kind, Param, ParamTable, main
from hamail.service import daemon
from hamail.service.web import WebServer, validate_web

# Where heartbeat looks for httpd (its HTTPDLIST) when the parameter is unset or its absent default.
HTTPD_LIST = ("/sbin/httpd2", "/usr/sbin/httpd2", "/usr/sbin/apache2", "/sbin/httpd", "/usr/sbin/httpd",
              "/usr/sbin/apache")
# heartbeat's detect_default_config, in its order (SUSE, Debian, RHEL).
DEFAULT_CONFIGS = ("/etc/apache2/httpd.conf", "/etc/apache2/apache2.conf", "/etc/httpd/conf/httpd.conf")
DEFAULT_REGEX = "</ *html *>"
# Sources the envfiles as heartbeat's source_envfiles does (readable regular files only) and prints what results.
ENV_SCRIPT = 'for f; do if [ -f "$f" ] && [ -r "$f" ]; then . "$f"; fi; done; exec env -0'
# Variables every shell sets for itself: not configuration.
SHELL_VARIABLES = ("PWD", "OLDPWD", "SHLVL", "_")

PARAMS = ParamTable(
    Param("configfile", Kind.STRING, "configuration file path",
          "The full pathname of the Apache configuration file. Its ServerRoot, PidFile, Listen and the <Location> "
          "of server-status are read from it (Include and IncludeOptional followed). Default: the first of "
          + ", ".join(DEFAULT_CONFIGS) + " that exists, as heartbeat's apache.", unique_group="configfile"),
    Param("httpd", Kind.STRING, "httpd binary path",
          "The full pathname of the httpd binary. Unset (or heartbeat's default /usr/sbin/httpd where it does not "
          "exist): the first of " + ", ".join(HTTPD_LIST) + " that exists."),
    Param("port", Kind.PORT, "httpd port",
          "The port of the status URL when the configuration has no Listen directive (default 80); with Listen, "
          "the first Listen address is used, as heartbeat's apache does. An invalid port is read as 80 (with a "
          "warning), as heartbeat does.", fallback="80"),
    Param("statusurl", Kind.STRING, "url name",
          "The URL the depth-10 monitor GETs (status 200 and testregex in the body). Default: the <Location> "
          "whose handler is server-status, on the first Listen address. A URL not starting with http is taken "
          "relative to that address. Make sure it answers only from 127.0.0.1."),
    Param("testregex", Kind.STRING, "monitor regular expression",
          "Regular expression to match in the body of statusurl (case-insensitive, anywhere in the body).",
          default=DEFAULT_REGEX),
    Param("client", Kind.STRING, "http client",
          "heartbeat's choice of wget or curl: accepted and ignored (the monitor speaks HTTP itself)."),
    Param("testurl", Kind.STRING, "test url",
          "URL the depth-20 monitor GETs (status 200 and testregex10 in the body). If it does not start with "
          "http, it is relative to the first Listen address. heartbeat checks it at depth 10."),
    Param("testregex10", Kind.STRING, "extended monitor regular expression",
          "Regular expression to match in the body of testurl (case-insensitive)."),
    Param("testconffile", Kind.STRING, "test configuration file",
          "A file describing the depth-20 test instead of testurl/testregex10 (resource-agents' README.webapps: "
          "'test NAME', then url, match, user, password, up to 'end'); a password is sent as HTTP basic "
          "authentication and never appears in a command line or a message. Keep it mode 0600."),
    Param("testname", Kind.STRING, "test name",
          "Name of the test within testconffile (default: the first test)."),
    Param("options", Kind.STRING, "command line options",
          "Extra options for httpd (split at white space, as heartbeat does), given to the checker, start and "
          "stop alike."),
    Param("envfiles", Kind.STRING, "environment settings files",
          "Files (separated by spaces) sourced by /bin/sh for httpd's environment (Debian's APACHE_* "
          "variables); ${VAR} in the configuration is expanded from it. Set it to an empty string to read none.",
          default="/etc/apache2/envvars"),
    Param("use_ipv6", Kind.BOOLEAN, "use ipv6 with http clients",
          "Use ::1 rather than 127.0.0.1 for a Listen address that names no host.", default="false",
          fallback="false"),
)

SPEC = AgentSpec(
    name="apache", version="0.1.0", shortdesc="Manages an Apache Web server instance",
    longdesc="The Apache httpd web server, started from its configuration file (Debian's apache2 with its "
             "envvars, or a configuration of its own). The configuration is checked with httpd -t before start; "
             "start waits until the server answers its status URL. Monitor depth 0: the process of the "
             "configuration's PidFile lives and every Listen address accepts connections; depth 10: an HTTP GET "
             "of statusurl (mod_status's server-status by default: allow it from 127.0.0.1 only) answers 200 and "
             "matches testregex; depth 20: also testurl/testregex10 or the test of testconffile. Stop: a graceful "
             "stop, then TERM and KILL of the server's process group within the stop timeout.",
    params=PARAMS,
    actions=(ActionSpec("start", 40), ActionSpec("stop", 60), ActionSpec("monitor", 20, interval=10, depth=0),
             ActionSpec("monitor", 20, interval=30, depth=10), ActionSpec("monitor", 40, interval=60, depth=20),
             ActionSpec("meta-data", 5), ActionSpec("validate-all", 20)),
)


class Apache(WebServer):
    """httpd as the shared lifecycle sees it; one instance per action (it remembers what it read)."""

    label = "apache"
    names = ("apache2", "httpd", "httpd2", "apache")
    search = HTTPD_LIST
    status_param, regex_param = "statusurl", "testregex"
    test_params = ("testconffile", "testurl", "testregex10", "testname")

    def config_path(self, ctx: Context) -> str:
        """configfile, or heartbeat's default for this distribution."""
        return ctx.config.configfile or next((p for p in DEFAULT_CONFIGS if os.path.isfile(p)), DEFAULT_CONFIGS[-1])

    def environment(self, ctx: Context) -> dict:
        """httpd's extra environment: APACHE_CONFDIR for a Debian instance directory, and what envfiles set."""
        return self.once("environment", lambda: _environment(ctx, self.config_path(ctx)))

    def conf(self, ctx: Context):
        """The parsed configuration (None when it cannot be read); envfiles are run only when it uses ${VAR}."""
        return self.once("conf", lambda: self._parse(ctx))

    def _parse(self, ctx: Context):
        from hamail.agents.apache import conf
        path = self.config_path(ctx)
        try:
            parsed = conf.parse(path, ctx.runner.environment())
            if parsed.unexpanded and _envfiles(ctx):
                parsed = conf.parse(path, ctx.runner.environment(self.environment(ctx)))
        except OSError:
            return None
        return parsed

    def pid_file(self, ctx: Context) -> str | None:
        """The configuration's PidFile (ServerRoot-relative if relative), else heartbeat's per-instance default."""
        parsed = self.conf(ctx)
        if parsed is not None and parsed.pid_file:
            return os.path.join(parsed.server_root, parsed.pid_file)
        return self.default_pid_file(ctx)

    def default_pid_file(self, ctx: Context) -> str:
        """Where heartbeat puts the pid of a configuration without PidFile (given to httpd with -c)."""
        run_dir = ctx.env.raw.get("HA_VARRUN") or "/var/run/"
        name = os.path.basename(self.binary(ctx)).split("-")[0]
        return os.path.join(run_dir, f"{name}-{ctx.env.instance}.pid")

    def _argv(self, ctx: Context, *tail: str) -> list:
        """httpd with heartbeat's -DSTATUS, the options, the configuration, a PidFile if it has none, and tail."""
        argv = [self.binary(ctx), "-DSTATUS", *(ctx.config.options or "").split(), "-f", self.config_path(ctx)]
        parsed = self.conf(ctx)
        if parsed is None or not parsed.pid_file:
            argv += ["-c", f"PidFile {self.default_pid_file(ctx)}"]
        return argv + list(tail)

    def check_argv(self, ctx: Context) -> list:
        """httpd -t: the configuration's syntax, modules and files."""
        return self._argv(ctx, "-t")

    def start_argv(self, ctx: Context) -> list:
        """httpd -k start (it detaches itself)."""
        return self._argv(ctx, "-k", "start")

    def start_env(self, ctx: Context) -> dict:
        """The envfiles' variables (Debian's apache2 needs APACHE_RUN_DIR and friends)."""
        return self.environment(ctx)

    def stop_argv(self, ctx: Context) -> list:
        """httpd -k graceful-stop: running requests finish (escalation follows if they do not in time)."""
        return self._argv(ctx, "-k", "graceful-stop")

    def endpoints(self, ctx: Context) -> list:
        """Every Listen address (heartbeat's status URL is plain http on each)."""
        from hamail.service.probes import Endpoint
        parsed = self.conf(ctx)
        found = []
        for listen in parsed.listens if parsed is not None else ():
            try:
                found.append((Endpoint.parse(listen, default_host=self.loopback(ctx)), False))
            except ValueError:
                continue  # not an address httpd -t accepts either
        return found

    def loopback(self, ctx: Context) -> str:
        """::1 with use_ipv6, else 127.0.0.1."""
        return "::1" if ctx.config.use_ipv6 else "127.0.0.1"

    def status_location(self, ctx: Context) -> str:
        """The <Location> whose handler is server-status."""
        parsed = self.conf(ctx)
        return parsed.status_location if parsed is not None else ""


def _envfiles(ctx: Context) -> list:
    """The envfiles to source; an explicitly empty parameter means none (heartbeat's ${x=default})."""
    if "OCF_RESKEY_envfiles" in ctx.env.raw and not ctx.env.raw["OCF_RESKEY_envfiles"].strip():
        return []
    return [f for f in (ctx.config.envfiles or "").split() if os.path.isfile(f) and os.access(f, os.R_OK)]


def _environment(ctx: Context, config_path: str) -> dict:
    """What sourcing the envfiles adds to or changes in the environment httpd would get."""
    extra = {}
    directory = os.path.dirname(config_path)
    # Debian's multi-instance layout (/etc/apache2-NAME/apache2.conf): envvars derives its suffix from this.
    if os.path.basename(config_path) == "apache2.conf" and os.path.basename(directory).startswith("apache2"):
        extra["APACHE_CONFDIR"] = directory
    files = _envfiles(ctx)
    if not files:
        return extra
    result = ctx.run(["/bin/sh", "-c", ENV_SCRIPT, "sh", *files], env=extra,
                     timeout=max(1.0, min(10.0, ctx.deadline.remaining())))
    if not result.ok:
        raise ConfigError(f"parameter envfiles: sourcing {' '.join(files)} failed: {result.first_error_line()}")
    base = ctx.runner.environment(extra)
    for entry in result.stdout.split("\0"):
        name, sep, value = entry.partition("=")
        if sep and name not in SHELL_VARIABLES and base.get(name) != value:
            extra[name] = value
    return extra


def validate(ctx: Context) -> None:
    """httpd and the configuration file exist here; testconffile is readable; statusurl is an HTTP URL; at
    validate-all, httpd -t accepts the configuration."""
    validate_web(Apache(), ctx)


def _prepare(service: Apache, ctx: Context) -> None:
    """Directories httpd needs and does not create (heartbeat's ocf_mkstatedir; Debian's apache2ctl)."""
    env = service.environment(ctx)
    for directory in (os.path.dirname(service.pid_file(ctx) or ""), env.get("APACHE_RUN_DIR"),
                      env.get("APACHE_LOCK_DIR")):
        if directory and not os.path.isdir(directory):
            os.makedirs(directory, mode=0o755, exist_ok=True)


def start(ctx: Context) -> int:
    """Start httpd (after its checker) and wait until the status URL answers."""
    service = Apache()
    _prepare(service, ctx)
    return daemon.start(service, ctx)


def stop(ctx: Context) -> int:
    """Stop httpd: graceful, then its process group."""
    return daemon.stop(Apache(), ctx)


def monitor(ctx: Context) -> int:
    """Depth 0, 10 or 20 (OCF_CHECK_LEVEL); 7 when httpd does not run."""
    return daemon.monitor(Apache(), ctx)


AGENT = Agent(SPEC, {"start": start, "stop": stop, "monitor": monitor}, validate)

if __name__ == "__main__":
    main(AGENT)
