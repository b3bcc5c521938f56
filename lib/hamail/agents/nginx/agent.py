# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:nginx: an nginx instance, started from its configuration file and watched through HTTP.

heartbeat nginx's parameters with their meaning. The lifecycle is the shared one (hamail.service.daemon):
`nginx -t` judges the configuration before start (its first error line is the exit reason), start is
`nginx -c CONFIG` and succeeds once the status page answers, stop is `nginx -s quit` (graceful) and then TERM
and KILL of the whole process group within the stop timeout. Depth 0: the process named by the configuration's
pid file lives and every listen address accepts; 10: GET status10url, status 200 and status10regex in the body;
20: also test20url/test20regex or the test of test20conffile; 30: also external_monitor30_cmd.
"""

from __future__ import annotations

import os

from hamail.ocf import ActionSpec, Agent, AgentSpec, ConfigError, Context, Kind, OCFError, OCFExit, Param
from hamail.ocf import ParamTable, main
from hamail.service import daemon
from hamail.service.web import WebServer, validate_web

# Where heartbeat looks for nginx (its NGINXDLIST) when httpd is unset or its absent default /usr/sbin/httpd.
NGINX_LIST = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
DEFAULT_REGEX = "Reading: [0-9]+ Writing: [0-9]+ Waiting: [0-9]+"
DEFAULT_STATUS_PATH = "/nginx_status"

PARAMS = ParamTable(
    Param("configfile", Kind.STRING, "configuration file path",
          "The full pathname of the nginx configuration file. Its pid, listen and the location serving "
          "stub_status are read from it (include followed). Default: nginx's compiled --conf-path.",
          unique_group="configfile"),
    Param("httpd", Kind.STRING, "httpd binary path",
          "The full pathname of the nginx binary. Unset (or heartbeat's default /usr/sbin/httpd where it does not "
          "exist): the first of " + ", ".join(NGINX_LIST) + " that exists."),
    Param("port", Kind.PORT, "httpd port",
          "The port of the status URL when the configuration has no listen directive (default 80); with listen, "
          "the first listen address is used, as heartbeat's nginx does. An invalid port is read as 80 (with a "
          "warning), as heartbeat does.", fallback="80"),
    Param("status10url", Kind.STRING, "url name",
          "The URL the depth-10 monitor GETs (status 200 and status10regex in the body). Default: the location "
          "with stub_status (else " + DEFAULT_STATUS_PATH + ") on the first listen address. A URL not starting "
          "with http is taken relative to that address. Make sure it answers only from 127.0.0.1."),
    Param("status10regex", Kind.STRING, "monitor regular expression",
          "Regular expression to match in the body of status10url (case-insensitive).", default=DEFAULT_REGEX),
    Param("testclient", Kind.STRING, "http client",
          "heartbeat's choice of curl or wget: accepted and ignored (the monitor speaks HTTP itself)."),
    Param("client", Kind.STRING, "http client",
          "What heartbeat's nginx actually reads for testclient: accepted and ignored likewise."),
    Param("test20url", Kind.STRING, "Level 20 monitor url",
          "URL the depth-20 monitor GETs (status 200 and test20regex in the body). If it does not start with "
          "http, it is relative to the first listen address."),
    Param("test20regex", Kind.STRING, "Level 20 monitor regular expression",
          "Regular expression to match in the body of test20url (case-insensitive)."),
    Param("test20conffile", Kind.STRING, "Level 20 test configuration file",
          "A file describing the depth-20 test instead of test20url/test20regex (resource-agents' README.webapps: "
          "'test NAME', then url, match, user, password, up to 'end'); a password is sent as HTTP basic "
          "authentication and never appears in a command line or a message. Keep it mode 0600."),
    Param("test20name", Kind.STRING, "Level 20 test name",
          "Name of the test within test20conffile (default: the first test)."),
    Param("external_monitor30_cmd", Kind.STRING, "Level 30 test string",
          "Command (split at white space, run without a shell) that the depth-30 monitor runs after the "
          "depth-20 checks; a non-zero exit fails the monitor with its first output line."),
    Param("options", Kind.STRING, "nginx start options",
          "Extra options for nginx (split at white space, as heartbeat does), given to the checker, start and "
          "stop alike."),
)

SPEC = AgentSpec(
    name="nginx", version="0.1.0", shortdesc="Manages an Nginx web/proxy server instance",
    longdesc="The nginx web and proxy server, started from its configuration file. The configuration is checked "
             "with nginx -t before start; start waits until the server answers its status URL. Monitor depth 0: "
             "the process of the configuration's pid file lives and every listen address accepts connections; "
             "depth 10: an HTTP GET of status10url (a location with stub_status: allow it from 127.0.0.1 only) "
             "answers 200 and matches status10regex; depth 20: also test20url/test20regex or the test of "
             "test20conffile; depth 30: also external_monitor30_cmd. Stop: nginx -s quit, then TERM and KILL of "
             "the server's process group within the stop timeout.",
    params=PARAMS,
    actions=(ActionSpec("start", 40), ActionSpec("stop", 60), ActionSpec("monitor", 30, interval=10, depth=0),
             ActionSpec("monitor", 30, interval=30, depth=10), ActionSpec("monitor", 45, interval=60, depth=20),
             ActionSpec("monitor", 60, interval=120, depth=30), ActionSpec("meta-data", 5),
             ActionSpec("validate-all", 20)),
)


class Nginx(WebServer):
    """nginx as the shared lifecycle sees it; one instance per action (it remembers what it read)."""

    label = "nginx"
    names = ("nginx",)
    search = NGINX_LIST
    status_param, regex_param, default_status = "status10url", "status10regex", DEFAULT_STATUS_PATH
    test_params = ("test20conffile", "test20url", "test20regex", "test20name")

    def built(self, ctx: Context) -> dict:
        """nginx -V's --prefix, --conf-path and --pid-path (run only when the configuration leaves one open)."""
        return self.once("built", lambda: _built(ctx, self.binary(ctx)))

    def config_path(self, ctx: Context) -> str:
        """configfile, or nginx's compiled --conf-path."""
        return ctx.config.configfile or self.built(ctx).get("conf-path", "/etc/nginx/nginx.conf")

    def conf(self, ctx: Context):
        """The parsed configuration (None when it cannot be read)."""
        from hamail.agents.nginx import conf

        def parse():
            try:
                return conf.parse(self.config_path(ctx))
            except OSError:
                return None
        return self.once("conf", parse)

    def pid_file(self, ctx: Context) -> str | None:
        """The configuration's pid (relative to nginx's prefix), else the compiled --pid-path."""
        parsed = self.conf(ctx)
        pid = parsed.pid if parsed is not None else ""
        if pid.startswith("/"):
            return pid
        built = self.built(ctx)
        if pid:
            return os.path.join(built.get("prefix", "/usr/share/nginx"), pid)
        return built.get("pid-path", "/run/nginx.pid")

    def _argv(self, ctx: Context, *middle: str) -> list:
        return [self.binary(ctx), *(ctx.config.options or "").split(), *middle, "-c", self.config_path(ctx)]

    def check_argv(self, ctx: Context) -> list:
        """nginx -t: the configuration's syntax and files."""
        return self._argv(ctx, "-t")

    def start_argv(self, ctx: Context) -> list:
        """nginx -c CONFIG (it detaches itself)."""
        return self._argv(ctx)

    def stop_argv(self, ctx: Context) -> list:
        """nginx -s quit: workers finish their requests (escalation follows if they do not in time)."""
        return self._argv(ctx) + ["-s", "quit"]

    def endpoints(self, ctx: Context) -> list:
        """(Endpoint, ssl) of every listen address (a wildcard one on loopback, unix: sockets by path)."""
        from hamail.service.probes import Endpoint
        parsed = self.conf(ctx)
        found = []
        for listen in parsed.listens if parsed is not None else ():
            address = listen.address[len("unix:"):] if listen.address.startswith("unix:") else listen.address
            try:
                found.append((Endpoint.parse(address), listen.ssl))
            except ValueError:
                continue  # not an address nginx -t accepts either
        return found

    def status_location(self, ctx: Context) -> str:
        """The location with stub_status."""
        parsed = self.conf(ctx)
        return parsed.status_location if parsed is not None else ""


def _built(ctx: Context, binary: str) -> dict:
    """--prefix, --conf-path, --pid-path from `nginx -V` (an empty dict when it cannot say)."""
    result = ctx.run([binary, "-V"], timeout=max(1.0, min(5.0, ctx.deadline.remaining())))
    found = {}
    for word in (result.stderr + result.stdout).split():
        name, sep, value = word.partition("=")
        if sep and name in ("--prefix", "--conf-path", "--pid-path"):
            found[name[2:]] = value.strip("'\"")
    return found


def _level(ctx: Context) -> int:
    """OCF_CHECK_LEVEL as given (the core reads only 0, 10 and 20; heartbeat's nginx also has 30)."""
    text = ctx.env.raw.get("OCF_CHECK_LEVEL", "0").strip()
    return int(text) if text.isdigit() else 0


def validate(ctx: Context) -> None:
    """nginx and the configuration file exist here; status10url is an HTTP URL; test20conffile is readable; at
    validate-all, nginx -t accepts the configuration."""
    validate_web(Nginx(), ctx)
    command = (ctx.config.external_monitor30_cmd or "").split()
    if command and ctx.action in ("start", "validate-all") and ctx.runner.find(command[0]) is None:
        ctx.log.warning("parameter external_monitor30_cmd: %s is not installed: the depth-30 monitor will fail",
                        command[0])


def _external(ctx: Context) -> None:
    """Depth 30: external_monitor30_cmd must exit 0."""
    command = (ctx.config.external_monitor30_cmd or "").split()
    if not command:
        raise ConfigError("parameter external_monitor30_cmd: a depth-30 monitor needs a command")
    if ctx.runner.find(command[0]) is None:
        raise ConfigError(f"parameter external_monitor30_cmd: {command[0]} is not installed")
    result = ctx.run(command)
    if not result.ok:
        raise OCFError(OCFExit.ERR_GENERIC, f"external_monitor30_cmd {command[0]} failed (exit {result.rc}): "
                                            f"{result.first_error_line()}")


def start(ctx: Context) -> int:
    """Start nginx (after its checker) and wait until the status URL answers."""
    return daemon.start(Nginx(), ctx)


def stop(ctx: Context) -> int:
    """Stop nginx: graceful, then its process group."""
    return daemon.stop(Nginx(), ctx)


def monitor(ctx: Context) -> int:
    """Depth 0, 10, 20 (OCF_CHECK_LEVEL) or 30 (the depth-20 checks, then external_monitor30_cmd)."""
    service = Nginx()
    code = daemon.monitor(service, ctx)
    if code != OCFExit.SUCCESS or _level(ctx) < 30:
        return code
    from hamail.service.probes import ProbeFailed
    try:
        daemon.probe_depth(service, ctx, ctx.deadline, 20)
    except ProbeFailed as exc:
        raise OCFError(OCFExit.ERR_GENERIC, f"nginx runs but does not answer: {exc}") from None
    _external(ctx)
    return OCFExit.SUCCESS


AGENT = Agent(SPEC, {"start": start, "stop": stop, "monitor": monitor}, validate)

if __name__ == "__main__":
    main(AGENT)
