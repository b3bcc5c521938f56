# SPDX-License-Identifier: GPL-2.0-or-later
"""What the web agents (apache, nginx) share: WebServer, the Service both describe their server with, and
the HTTP checks with heartbeat's http-mon semantics, over http.client.

heartbeat's apache and nginx agents share one way to describe a check: a URL (relative ones are taken from the
server's first listen address), a regular expression matched case-insensitively anywhere in the body (`grep
-Ei`), or a named test in a test configuration file (resource-agents' README.webapps: `test NAME`, then `url`,
`match`, `user`, `password`, `client`, `client_opts`, up to `end`). Here the check is one HTTP GET by
probes.http_get (status 200; heartbeat followed no status at all, only the body), the password goes into an
Authorization header and never into argv or a message, and `client`/`client_opts` are read and ignored: no
curl or wget is run. Both agents take heartbeat's `httpd` parameter for their binary, whose default
/usr/sbin/httpd exists on no Debian node: then the agent's own list is searched, as heartbeat does.
"""

from __future__ import annotations

import os

from hamail.ocf import ConfigError, Context, NotInstalled
from hamail.secret import Secret
from hamail.service.daemon import Service

__all__ = ["WebServer", "WebTest", "local_url", "read_test_file", "web_test", "check", "validate_web"]

# heartbeat's default for `httpd` in both agents.
UPSTREAM_HTTPD = "/usr/sbin/httpd"

# The keywords of README.webapps' test definitions (anything else is an error there too).
KEYWORDS = ("url", "user", "password", "client", "client_opts", "match")


class WebTest:
    """One HTTP check: url (absolute), regex (case-insensitive), optional user and password (a Secret)."""

    __slots__ = ("url", "regex", "user", "password")

    def __init__(self, url: str, regex: str, user: str = "", password: Secret | None = None) -> None:
        self.url, self.regex, self.user, self.password = url, regex, user, password

    def __repr__(self) -> str:
        return f"WebTest({self.url!r}, {self.regex!r}, user={self.user!r})"


def local_url(base: str, url: str) -> str:
    """url itself when it starts with http, else relative to base (http://host:port), as heartbeat's fixtesturl."""
    url = url.strip()
    return url if url.startswith("http") else base + url


def read_test_file(path: str, name: str, parameter: str, warn=None) -> tuple:
    """(url, regex, user, password Secret or None) of test `name` (the first test when name is empty) in a
    README.webapps file; NotInstalled when it cannot be read here, ConfigError when it is malformed."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(1 << 16)
            private = not os.fstat(handle.fileno()).st_mode & 0o077
    except OSError as exc:
        raise NotInstalled(f"parameter {parameter}: cannot read {path}: {exc.strerror}") from None
    values, reading = {}, False
    for number, line in enumerate(text.splitlines(), 1):
        key, _, value = line.strip().partition(" ")
        key, value = key.strip(), value.strip()
        if not reading:
            reading = key == "test" and (not name or value == name)
            continue
        if key == "end":
            break
        if not key or key.startswith("#"):
            continue
        if key not in KEYWORDS:
            raise ConfigError(f"parameter {parameter}: {path} line {number}: {key}: unknown keyword")
        values[key] = value
    if not reading:
        raise ConfigError(f"parameter {parameter}: {path} has no test {name!r}" if name
                          else f"parameter {parameter}: {path} defines no test")
    if bool(values.get("user")) != bool(values.get("password")):
        raise ConfigError(f"parameter {parameter}: {path}: a test needs both user and password, or neither")
    if values.get("password") and not private and warn is not None:
        warn(f"parameter {parameter}: {path} holds a password and others can read it (chmod 0600)")
    password = Secret(values["password"]) if values.get("password") else None
    return values.get("url", ""), values.get("match", ""), values.get("user", ""), password


def web_test(base: str, url: str, regex: str, conffile: str | None, name: str, names: tuple, warn=None):
    """The check a configuration describes: the test file's named test when conffile is given, else url and regex;
    None when nothing is configured. names: the agent's (conffile, url, regex) parameter names. ConfigError (as
    heartbeat's is_testconf_sane) when only half of a test is there."""
    user, password = "", None
    if conffile:
        url, regex, user, password = read_test_file(conffile, name, names[0], warn)
        if not url.strip() or not regex:
            raise ConfigError(f"parameter {names[0]}: the test in {conffile} needs both url and match")
    elif not url and not regex:
        return None
    elif not url.strip() or not regex:
        raise ConfigError(f"parameters {names[1]} and {names[2]}: a test needs both a URL and a regular expression")
    return WebTest(local_url(base, url), regex, user, password)


def check(test: WebTest, deadline, tls=None) -> None:
    """GET test.url: status 200 and a body matching test.regex case-insensitively; ProbeFailed otherwise."""
    from hamail.service.probes import http_get
    headers = None
    if test.user:
        import base64
        token = base64.b64encode(f"{test.user}:{test.password.reveal()}".encode()).decode()
        headers = {"Authorization": "Basic " + token}
    http_get(test.url, deadline, regex="(?i)" + test.regex, tls=tls, headers=headers)


class WebServer(Service):
    """A web server as the shared lifecycle sees it; one instance per action (it remembers what it read).

    Subclasses set label, names, search (where the binary is looked for), status_param and regex_param (the
    depth-10 URL and regex parameters), default_status (the status path when the configuration names none),
    test_params (the depth-20 (conffile, url, regex, name) parameters), and implement config_path and endpoints.
    """

    search: tuple = ()
    status_param, regex_param, default_status = "", "", ""
    test_params: tuple = ()

    def __init__(self) -> None:
        self._memo = {}

    def once(self, key: str, compute):
        """compute() the first time key is asked for in this action."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def binary(self, ctx: Context) -> str:
        """The configured server binary, or the first of search when it is unset or heartbeat's absent default."""
        return self.once("binary", lambda: self._binary(ctx))

    def _binary(self, ctx: Context) -> str:
        configured = ctx.config.httpd
        found = ctx.runner.find(configured) if configured else None
        if found is not None:
            return found
        if configured and configured != UPSTREAM_HTTPD:
            raise NotInstalled(f"parameter httpd: {configured} is not installed on this node")
        found = next((p for p in self.search if ctx.runner.find(p)), None)
        if found is None:
            raise NotInstalled(f"{self.label} is not installed on this node (looked for {', '.join(self.search)})")
        if configured and ctx.action in ("start", "validate-all"):
            ctx.log.warning("parameter httpd: %s does not exist; using %s (as heartbeat's %s does)", configured,
                            found, self.label)
        return found

    def config_path(self, ctx: Context) -> str:
        """The server's configuration file."""
        raise NotImplementedError

    def endpoints(self, ctx: Context) -> list:
        """(Endpoint, speaks TLS) of every listen address of the configuration."""
        raise NotImplementedError

    def loopback(self, ctx: Context) -> str:
        """The address a wildcard listener is reached on."""
        return "127.0.0.1"

    def listeners(self, ctx: Context) -> list:
        """Every listen address (depth 0)."""
        return [endpoint for endpoint, _ in self.endpoints(ctx)]

    def base_url(self, ctx: Context) -> str:
        """scheme://host:port of the first TCP listen address (heartbeat's buildlocalurl), else of port (80)."""
        for endpoint, tls in self.endpoints(ctx):
            if not endpoint.path:
                return f"{'https' if tls else 'http'}://{endpoint}"
        host = self.loopback(ctx)
        return f"http://{'[' + host + ']' if ':' in host else host}:{ctx.config.port or 80}"

    def status_location(self, ctx: Context) -> str:
        """The status page's path found in the configuration ('' when none)."""
        return ""

    def status_url(self, ctx: Context) -> str:
        """The status URL parameter (relative to base_url unless it starts with http), else the configuration's
        status location (else default_status) on the first listen address."""
        given = ctx.config[self.status_param]
        if given:
            return local_url(self.base_url(ctx), given)
        return self.base_url(ctx) + (self.status_location(ctx) or self.default_status)

    def exchange(self, ctx: Context, deadline) -> None:
        """GET the status URL: 200 and the regex in the body (a listener's own certificate is not verified)."""
        from hamail.service.probes import TLSPolicy, http_get
        http_get(self.status_url(ctx), deadline, regex="(?i)" + ctx.config[self.regex_param],
                 tls=TLSPolicy(verify=False))

    def web_test(self, ctx: Context, warn=None):
        """The depth-20 test, None when none is configured."""
        conffile, url, regex, name = (ctx.config[p] for p in self.test_params)
        return web_test(self.base_url(ctx), url or "", regex or "", conffile, name or "", self.test_params[:3], warn)

    def end_to_end(self, ctx: Context, deadline) -> None:
        """Depth 20: the configured web test, when there is one."""
        from hamail.service.probes import TLSPolicy
        test = self.web_test(ctx)
        if test is not None:
            check(test, deadline, tls=TLSPolicy(verify=False))


def validate_web(service: WebServer, ctx: Context) -> None:
    """What both agents validate: the binary and configuration file are here, the status URL is HTTP; at start and
    validate-all the depth-20 test (a half-configured one tolerated with a warning, as heartbeat tolerates it until
    its monitor), and at validate-all the server's own checker."""
    from hamail.service.daemon import validate_all
    service.binary(ctx)
    path = service.config_path(ctx)
    if not os.path.isfile(path):
        raise NotInstalled(f"parameter configfile: {path} does not exist on this node")
    if not service.status_url(ctx).startswith(("http://", "https://")):
        raise ConfigError(f"parameter {service.status_param}: {ctx.config[service.status_param]!r} is not an "
                          "http:// or https:// URL")
    if ctx.action in ("start", "validate-all"):
        try:
            service.web_test(ctx, warn=lambda text: ctx.log.warning("%s", text))
        except ConfigError as exc:
            if ctx.config[service.test_params[0]]:
                raise
            ctx.log.warning("%s: the depth-20 monitor will fail", exc.reason)
        if ctx.config.given("port") and not service.base_url(ctx).endswith(f":{ctx.config.port}"):
            ctx.log.warning("parameter port: the status URL is on the first listen address (%s), as heartbeat's "
                            "%s reads it; port is used only without one", service.base_url(ctx), service.label)
    validate_all(service, ctx)
