# SPDX-License-Identifier: GPL-2.0-or-later
"""Real web servers for the apache and nginx agents' tests: Debian's apache2 and nginx, each with a private
configuration file, pid file, error log and document root under a test's directory, listening on
127.0.0.1:<free port>; apache with mod_status (server-status) and mod_info (server-info) allowed from 127.0.0.1,
nginx with a stub_status location, a fixed answer at /health and a page behind basic authentication.

apache's children run as www-data, which cannot enter pytest's private temporary directories: the apache site
serves only pages its modules generate (server-status, server-info), mapped by Alias to a path outside them.
"""

from __future__ import annotations

import os
import pathlib
import signal

import pytest

from service_support import assert_clean, free_port, ocf, ocf_tester, pids_of, reason, wait_for

APACHE_MODULES = "/usr/lib/apache2/modules"
# A path www-data can look up and that holds no file: where apache maps the pages its modules generate.
NO_FILE = "/nonexistent-hamail-page"


class Site:
    """One web server's files under base; subclasses write the configuration."""

    comm = ""

    def __init__(self, base) -> None:
        self.base = pathlib.Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.pid_file = self.base / "server.pid"
        self.error_log = self.base / "error.log"
        self.docroot = self.base / "htdocs"
        self.docroot.mkdir(exist_ok=True)
        self.config = self.base / "server.conf"
        self.config.write_text(self.render(self.port))

    def render(self, port: int) -> str:
        """The configuration text for a server on 127.0.0.1:port."""
        raise NotImplementedError

    def write_config(self, name: str, extra: str = "", port: int | None = None) -> pathlib.Path:
        """Another configuration file beside the main one (a broken or different one for a test)."""
        path = self.base / name
        path.write_text(self.render(self.port if port is None else port) + extra)
        return path

    def params(self, **extra) -> dict:
        """The agent's parameters for this site."""
        return {"configfile": str(self.config), **extra}

    def pids(self) -> list[int]:
        """Every process of this server: those named comm whose command line names a file under base, and the
        others of their process groups (nginx's workers name no file)."""
        groups = set()
        for pid in pids_of(self.comm, under=str(self.base)):
            try:
                groups.add(os.getpgid(pid))
            except ProcessLookupError:
                continue
        found = []
        for pid in pids_of(self.comm):
            try:
                if os.getpgid(pid) in groups:
                    found.append(pid)
            except ProcessLookupError:
                continue
        return found

    def main_pid(self) -> int:
        """The pid in the pid file."""
        return int(self.pid_file.read_text().split()[0])

    def stop_all(self, sig=signal.SIGSTOP) -> list[int]:
        """Send sig to every process of the server; the pids."""
        pids = self.pids()
        for pid in pids:
            os.kill(pid, sig)
        return pids

    def kill_all(self) -> None:
        """Leave nothing running: continue stopped processes, then SIGKILL every one (fixture teardown)."""
        for pid in self.pids():
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        wait_for(lambda: not self.alive_pids(), what=f"{self.comm} processes to exit")

    def alive_pids(self) -> list[int]:
        """Pids of the server that have not exited (zombies left to an init that does not reap do not count)."""
        alive = []
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    state = handle.read().rpartition(")")[2].split()[0]
            except OSError:
                continue
            if state not in ("Z", "X"):
                alive.append(pid)
        return alive


class ApacheSite(Site):
    """apache2 with mpm_event, mod_status at /server-status and mod_info at /server-info."""

    comm = "apache2"

    def render(self, port: int) -> str:
        base = self.base
        modules = [("mpm_event", "mpm_event"), ("authz_core", "authz_core"), ("authz_host", "authz_host"),
                   ("status", "status"), ("info", "info"), ("alias", "alias")]
        loads = "".join(f"LoadModule {name}_module {APACHE_MODULES}/mod_{so}.so\n" for name, so in modules)
        return (f'ServerRoot "{base}"\nServerName 127.0.0.1\nListen 127.0.0.1:{port}\n'
                f"PidFile {self.pid_file}\nErrorLog {self.error_log}\nDefaultRuntimeDir {base}\n"
                f"Mutex file:{base} default\nUser www-data\nGroup www-data\n{loads}"
                f"DocumentRoot {self.docroot}\n<Directory />\n    AllowOverride None\n</Directory>\n"
                # www-data cannot search pytest's directories: the generated pages map to a path it can
                f"Alias /server-status {NO_FILE}\nAlias /server-info {NO_FILE}\n"
                "<Location /server-status>\n    SetHandler server-status\n    Require ip 127.0.0.1\n</Location>\n"
                "<Location /server-info>\n    SetHandler server-info\n    Require ip 127.0.0.1\n</Location>\n")


class NginxSite(Site):
    """nginx with stub_status at /nginx_status, /health answering 'hamail web ok', /secret/ behind basic auth."""

    comm = "nginx"
    user, password = "probe", "s3cret-web"

    def render(self, port: int) -> str:
        base = self.base
        (self.docroot / "secret").mkdir(exist_ok=True)
        (self.docroot / "secret" / "index.html").write_text("<html>secret page ok</html>\n")
        htpasswd = base / "htpasswd"
        htpasswd.write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        temp = base / "tmp"
        temp.mkdir(exist_ok=True)
        temps = "".join(f"    {kind}_temp_path {temp};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                        "scgi"))
        return (f"worker_processes 1;\npid {self.pid_file};\nerror_log {self.error_log};\nuser root;\n"
                "events { worker_connections 64; }\n"
                f"http {{\n    access_log off;\n{temps}"
                f"    server {{\n        listen 127.0.0.1:{port};\n        root {self.docroot};\n"
                "        location = /nginx_status { stub_status; allow 127.0.0.1; deny all; }\n"
                '        location /health { return 200 "hamail web ok\\n"; }\n'
                f'        location /secret/ {{ auth_basic "probe"; auth_basic_user_file {htpasswd}; }}\n'
                "    }\n}\n")


# ---------------------------------------------------------------- scenarios both agents' tests run

def lifecycle(agent: str, site: Site, depth20: dict) -> None:
    """Probe when absent (7), start, double start, monitor at 0, 10 and 20, stop, double stop, probe (7)."""
    params = site.params(**depth20)
    probe = ocf(agent, "monitor", params)
    assert (probe.returncode, reason(probe)) == (7, ""), probe.stderr
    for attempt in ("start", "second start"):
        started = ocf(agent, "start", params)
        assert started.returncode == 0, f"{attempt}: {started.stderr}"
    assert len(set(site.pids())) >= 2  # the main process and its workers, one pid file's worth
    main = site.main_pid()
    for depth in (0, 10, 20):
        checked = ocf(agent, "monitor", params, depth=depth, interval_ms=10000)
        assert checked.returncode == 0, f"depth {depth}: {checked.stderr}"
    assert site.main_pid() == main, "the second start started another server"
    for attempt in ("stop", "second stop"):
        stopped_ = ocf(agent, "stop", params)
        assert stopped_.returncode == 0, f"{attempt}: {stopped_.stderr}"
        assert "still runs" not in stopped_.stderr, "the graceful stop did not stop it: " + stopped_.stderr
        assert_clean(stopped_)
    assert site.alive_pids() == []
    after = ocf(agent, "monitor", params)
    assert after.returncode == 7, after.stderr


def wedged(agent: str, site: Site) -> str:
    """Every process of a running server SIGSTOPped: a depth-10 monitor fails within its 4 s timeout; its reason."""
    params = site.params()
    assert ocf(agent, "start", params).returncode == 0
    pids = site.stop_all(signal.SIGSTOP)
    try:
        result = ocf(agent, "monitor", params, depth=10, interval_ms=10000, timeout_ms=4000, timeout=15)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert result.returncode == 1, result.stderr
    assert_clean(result)
    return reason(result)


def killed(agent: str, site: Site) -> None:
    """kill -9 of every process: a probe says 7, a recurring monitor fails (1) saying the server died."""
    params = site.params()
    assert ocf(agent, "start", params).returncode == 0
    main = site.main_pid()
    site.stop_all(signal.SIGKILL)
    wait_for(lambda: not site.alive_pids(), what="the killed server to exit")
    probe = ocf(agent, "monitor", params)
    assert probe.returncode == 7, probe.stderr
    recurring = ocf(agent, "monitor", params, interval_ms=10000)
    assert recurring.returncode == 1, recurring.stderr
    assert "died" in reason(recurring) and str(main) in reason(recurring), reason(recurring)


def ignores_term(agent: str, site: Site) -> None:
    """A server stopped by SIGSTOP (it cannot act on the graceful stop or TERM) is still stopped within 8 s."""
    params = site.params()
    assert ocf(agent, "start", params).returncode == 0
    site.stop_all(signal.SIGSTOP)
    result = ocf(agent, "stop", params, timeout_ms=8000, timeout=20)
    assert result.returncode == 0, result.stderr
    wait_for(lambda: not site.alive_pids(), timeout=5, what="the stopped server to be gone")
    assert ocf(agent, "monitor", params).returncode == 7


def missing_binary(agent: str, site: Site, tmp) -> None:
    """httpd naming a program absent here: a probe says 7, start 5 naming it, never a traceback."""
    params = site.params(httpd=str(tmp / "no-such-httpd"))
    probe = ocf(agent, "monitor", params)
    assert probe.returncode == 7, probe.stderr
    start = ocf(agent, "start", params)
    assert start.returncode == 5, start.stderr
    assert "no-such-httpd" in reason(start) and "not installed" in reason(start)
    for result in (probe, start):
        assert_clean(result)


def broken_config(agent: str, site: Site, extra: str, expected: str) -> None:
    """A configuration the checker rejects: start 6 with the checker's first error line; nothing runs."""
    bad = site.write_config("broken.conf", extra)
    start = ocf(agent, "start", {"configfile": str(bad)})
    assert start.returncode == 6, start.stderr
    assert "rejects the configuration" in reason(start) and expected in reason(start), reason(start)
    assert_clean(start)
    assert site.alive_pids() == []


def port_taken(agent: str, site: Site, expected: str) -> None:
    """The Listen port is held by another program: start fails (1) with the server's own bind error."""
    import socket
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", site.port))
        holder.listen()
        start = ocf(agent, "start", site.params(), timeout_ms=10000)
    assert start.returncode == 1, start.stderr
    assert expected in reason(start), reason(start)
    assert_clean(start)


def wrong_status_port(agent: str, site: Site, url_param: str) -> None:
    """A status URL on a port nothing listens on: the depth-10 monitor fails naming the URL and the refusal."""
    params = site.params()
    assert ocf(agent, "start", params).returncode == 0
    url = f"http://127.0.0.1:{free_port()}/status"
    result = ocf(agent, "monitor", {**params, url_param: url}, depth=10, interval_ms=10000)
    assert result.returncode == 1, result.stderr
    assert url in reason(result) and "connection refused" in reason(result), reason(result)


def unreadable_test_file(agent: str, site: Site, param: str, tmp) -> None:
    """A test configuration file that cannot be read here: start 5 naming the parameter and why; the probe 7."""
    for path, why in ((tmp / "absent.test", "No such file"), (tmp, "Is a directory")):
        params = site.params(**{param: str(path)})
        start = ocf(agent, "start", params)
        assert start.returncode == 5, start.stderr
        assert f"parameter {param}" in reason(start) and why in reason(start), reason(start)
        assert_clean(start)
        assert ocf(agent, "monitor", params).returncode == 7
    assert site.alive_pids() == []


class WebAgentTests:
    """The tests both agents must pass, as a base class their test modules subclass (class Test...): agent, the
    site class, the depth-20 parameters of the lifecycle, the status URL and test file parameters, a line the
    checker rejects and what its first error line then says."""

    agent = ""
    site_class = Site
    depth20: dict = {}
    status_param = conffile_param = ""
    broken_line = broken_expected = ""

    @pytest.fixture
    def site(self, tmp_path):
        """A site; whatever of it runs is killed afterwards, also when the test failed."""
        made = self.site_class(tmp_path / self.agent)
        try:
            yield made
        finally:
            made.kill_all()

    def test_lifecycle_at_every_depth(self, site):
        lifecycle(self.agent, site, self.depth20)

    def test_ocf_tester(self, site):
        result = ocf_tester(self.agent, site.params())
        assert result.returncode == 0, result.stdout + result.stderr

    def test_wedged_server_fails_depth10_naming_the_step(self, site):
        text = wedged(self.agent, site)
        assert "does not answer" in text and "HTTP response" in text and "timed out" in text, text

    def test_killed_server(self, site):
        killed(self.agent, site)

    def test_server_ignoring_term_is_stopped_in_time(self, site):
        ignores_term(self.agent, site)

    def test_missing_binary(self, site, tmp_path):
        missing_binary(self.agent, site, tmp_path)

    def test_broken_configuration(self, site):
        broken_config(self.agent, site, self.broken_line, self.broken_expected)

    def test_listen_port_taken(self, site):
        port_taken(self.agent, site, "Address already in use")

    def test_wrong_status_port(self, site):
        wrong_status_port(self.agent, site, self.status_param)

    def test_unreadable_test_file(self, site, tmp_path):
        unreadable_test_file(self.agent, site, self.conffile_param, tmp_path)
