# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:kopano against protocol stand-ins (Kopano is in neither registry here): small servers speaking
kopano-server's SOAP/HTTP (TCP and unix socket), kopano-dagent's LMTP, kopano-gateway's IMAP and POP3,
kopano-ical's and kopano-presence's HTTP and kopano-search's socket protocol, run as real processes named
kopano-<service> (tests/services/kopano_standins.py), each with its own configuration file under the test's
directory and ports from free_port().

What each test proves is in its docstring; the agent runs as pacemaker-execd runs it."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "lib"))
import kopano_standins  # noqa: E402
from service_support import assert_clean, free_port, ocf, ocf_tester, pids_of, reason, stopped, wait_for  # noqa: E402

from hamail.agents.kopano import config as kconfig  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the agent creates run directories owned by root")

AGENT = "kopano"
SERVICES = kopano_standins.SERVICES
PROBE, PROBE_PASSWORD = "probe@example.org", "Pr0be-Secret-77"


class KopanoLab:
    """Stand-in executables, one configuration file per service with free ports, a run directory."""

    def __init__(self, base: pathlib.Path) -> None:
        self.base = base
        self.sbin, self.etc, self.run = base / "sbin", base / "etc", base / "run"
        self.rsctmp = base / "rsctmp"
        for directory in (self.etc, self.rsctmp):
            directory.mkdir(parents=True, exist_ok=True)
        kopano_standins.install(self.sbin)
        self.ports = {name: free_port() for name in ("server", "lmtp", "imap", "pop3", "ical", "presence")}

    def socket(self, name: str) -> str:
        """A unix socket path under the run directory."""
        return str(self.run / f"{name}.sock")

    def settings(self, service: str) -> dict:
        """The Kopano keys of service's configuration file in this lab."""
        common = {"run_as_user": "root", "run_as_group": "root", "log_file": str(self.base / f"{service}.log")}
        own = {
            "server": {"server_listen": f"*:{self.ports['server']}", "server_pipe_name": self.socket("server"),
                       "standin_users": f"{PROBE}:{PROBE_PASSWORD}"},
            "dagent": {"lmtp_listen": f"127.0.0.1:{self.ports['lmtp']}",
                       "server_socket": "file://" + self.socket("server")},
            "gateway": {"imap_listen": f"*%lo:{self.ports['imap']}", "pop3_listen": f"*:{self.ports['pop3']}",
                        "server_socket": f"http://localhost:{self.ports['server']}/"},
            "ical": {"ical_listen": f"127.0.0.1:{self.ports['ical']}"},
            "search": {"server_bind_name": "file://" + self.socket("search")},
            "presence": {"server_bind": "127.0.0.1", "server_port": str(self.ports["presence"])},
        }.get(service, {})
        return {**common, **own}

    def write_config(self, service: str, **changes) -> str:
        """Write service's configuration (changes: None removes a key) and return its path."""
        values = {**self.settings(service), **changes}
        path = self.etc / f"{service}.cfg"
        path.write_text("# stand-in configuration\n" + "".join(f"{key} = {value}\n" for key, value in
                                                               values.items() if value is not None))
        return str(path)

    def params(self, service: str, **extra) -> dict:
        """The resource's parameters (pid file in the run directory, which start creates)."""
        params = {"service": service, "binary": str(self.sbin / f"kopano-{service}"),
                  "config": str(self.etc / f"{service}.cfg"), "pid_file": str(self.run / f"{service}.pid")}
        if not (self.etc / f"{service}.cfg").exists():
            self.write_config(service)
        params.update(extra)
        return {k: v for k, v in params.items() if v is not None}

    def credentials(self, name: str = "probe.cred", password: str = PROBE_PASSWORD, mode: int = 0o600) -> str:
        """A credentials file (user = / password =) of the given mode."""
        path = self.base / name
        path.write_text(f"user = {PROBE}\npassword = {password}\n")
        path.chmod(mode)
        return str(path)

    def certificate(self) -> tuple:
        """A self-signed certificate for 127.0.0.1 and its key (files)."""
        cert, key = self.base / "cert.pem", self.base / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                        str(cert), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        return str(cert), str(key)

    def pids(self, service: str) -> list:
        """Running stand-ins of service from this lab."""
        return pids_of(f"kopano-{service}", under=str(self.base))

    def kill(self) -> None:
        """Kill every stand-in of this lab (also stopped ones)."""
        for service in SERVICES:
            for pid in self.pids(service):
                for sig in (signal.SIGCONT, signal.SIGKILL):
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass


@pytest.fixture
def lab(tmp_path):
    """A Kopano stand-in lab; whatever of it runs is killed afterwards, also on failure."""
    made = KopanoLab(tmp_path)
    try:
        yield made
    finally:
        made.kill()


def run(lab, action, params, **kwargs):
    """One agent action as pacemaker-execd runs it; never a traceback, whatever it answers."""
    kwargs.setdefault("rsctmp", lab.rsctmp)
    result = ocf(AGENT, action, params, **kwargs)
    assert_clean(result)
    return result


def one_pid(lab, service) -> int:
    """The single running stand-in of service."""
    pids = wait_for(lambda: lab.pids(service), what=f"kopano-{service} to run")
    assert len(pids) == 1, pids
    return pids[0]


# ---- Kopano's configuration as the agent reads it (pure) ----

def test_bindspecs_are_read_as_kopano_writes_them():
    """Kopano's bind specifications: wildcards and the %interface infix reach loopback, IPv6 in brackets, unix
    sockets in both spellings; an address without a port is refused naming its key and line."""
    got = kconfig.parse_bindspec("*%lo:236 [::1]:2003 0.0.0.0:143 [::]:110 unix:/run/x.sock", "soap", "k")
    assert [(item.host, item.port, item.path) for item in got] == [
        ("127.0.0.1", 236, ""), ("::1", 2003, ""), ("127.0.0.1", 143, ""), ("::1", 110, ""), ("", 0, "/run/x.sock")]
    with pytest.raises(kconfig.ConfigProblem, match="lmtp_listen.*'localhost'"):
        kconfig.parse_bindspec("localhost", "lmtp", "lmtp_listen (/etc/kopano/dagent.cfg:3)")


def test_defaults_includes_and_listen_parameter(tmp_path):
    """Unset keys take Kopano's defaults (236 and server.sock, 2003, 143/110, 8080, search.sock, 1234), an
    !include is followed relative to the including file, an empty value disables a listener, and the listen
    parameter overrides with [protocol=]address."""
    (tmp_path / "common.cfg").write_text("imap_listen = 127.0.0.1:1143\n")
    (tmp_path / "gateway.cfg").write_text("!include common.cfg\npop3_listen =\nnot a setting\n")
    gateway = kconfig.read_config(str(tmp_path / "gateway.cfg"))
    assert [(i.protocol, str(i)) for i in kconfig.service_listeners("gateway", gateway)] == [("imap", "127.0.0.1:1143")]
    empty = kconfig.KopanoConfig("x", {}, {})
    expect = {"server": ["127.0.0.1:236", "/var/run/kopano/server.sock"], "dagent": ["127.0.0.1:2003"],
              "ical": ["127.0.0.1:8080"], "search": ["/var/run/kopano/search.sock"],
              "presence": ["127.0.0.1:1234"], "spooler": [], "monitor": []}
    for service, listeners in expect.items():
        assert [str(i) for i in kconfig.service_listeners(service, empty)] == listeners, service
    got = kconfig.parse_listen_param("127.0.0.1:25 pop3=[::1]:110 soap=unix:/s", "dagent")
    assert [(i.protocol, str(i)) for i in got] == [("lmtp", "127.0.0.1:25"), ("pop3", "[::1]:110"), ("soap", "/s")]
    with pytest.raises(kconfig.ConfigProblem, match="no protocol of its own"):
        kconfig.parse_listen_param("127.0.0.1:25", "spooler")


# ---- the lifecycle, every service ----

@pytest.mark.parametrize("service", SERVICES)
def test_lifecycle(lab, service):
    """Probe when absent (7); start once it answers; monitor at depths 0, 10 and 20; a second start succeeds
    and starts nothing more; stop, a second stop, and a probe after stop (7). The daemon runs in the
    foreground as the agent's spawned process with Kopano's command line, and the agent keeps its pid in the
    pid file (the stand-in, like Kopano 10, writes none)."""
    params = lab.params(service)
    assert run(lab, "monitor", params).returncode == 7
    result = run(lab, "start", params)
    assert result.returncode == 0, result.stderr
    pid = one_pid(lab, service)
    assert (lab.run / f"{service}.pid").read_text().strip() == str(pid)
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        argv = handle.read().split(b"\0")
    assert (b"-l" if service == "dagent" else b"-F") in argv and b"--config" in argv
    for depth in (0, 10, 20):
        result = run(lab, "monitor", params, depth=depth, interval_ms=10000)
        assert result.returncode == 0, (depth, result.stderr)
    assert run(lab, "start", params).returncode == 0
    assert lab.pids(service) == [pid]
    assert run(lab, "stop", params).returncode == 0
    assert lab.pids(service) == []
    assert not (lab.run / f"{service}.pid").exists()
    assert run(lab, "stop", params).returncode == 0
    assert run(lab, "monitor", params).returncode == 7


def test_start_waits_until_the_daemon_answers(lab):
    """A daemon that listens only a while after it runs: start returns once it answers, not once a pid
    exists, so a depth-10 monitor right after start succeeds."""
    lab.write_config("gateway", standin_start_delay="1.5")
    params = lab.params("gateway")
    assert run(lab, "start", params).returncode == 0
    assert run(lab, "monitor", params, depth=10, interval_ms=10000).returncode == 0


def test_kopano8_pid_file_from_the_configuration(lab):
    """With no pid_file parameter the configuration's pid_file is used; Kopano 8 writes it itself (the agent
    leaves it as it is), and stop removes it once the daemon is gone."""
    pidfile = lab.run / "own-server.pid"
    lab.run.mkdir()
    lab.write_config("server", pid_file=str(pidfile))
    params = lab.params("server", pid_file=None)
    assert run(lab, "start", params).returncode == 0
    pid = one_pid(lab, "server")
    assert pidfile.read_text().strip() == str(pid)
    assert run(lab, "monitor", params, interval_ms=10000).returncode == 0
    assert run(lab, "stop", params).returncode == 0
    assert not pidfile.exists() and lab.pids("server") == []


def test_start_creates_the_run_directory(lab):
    """The pid file's and unix sockets' directory (tmpfs after a boot) is created by start, as Kopano's init
    scripts do; the server then listens on its unix socket there."""
    params = lab.params("server")
    assert not lab.run.exists()
    assert run(lab, "start", params).returncode == 0
    assert lab.run.is_dir() and os.path.exists(lab.socket("server"))


# ---- wedged, killed, deaf to TERM ----

WEDGED_STEP = {"server": "HTTP response", "dagent": "LMTP greeting", "gateway": "IMAP greeting",
               "ical": "HTTP response", "search": "search PROPS", "presence": "HTTP response",
               "spooler": "process state", "monitor": "process state"}


@pytest.mark.parametrize("service", SERVICES)
def test_wedged_daemon_fails_depth_10_naming_the_step(lab, service):
    """SIGSTOP: the pid lives and the kernel still accepts connections, but nothing answers. The depth-10
    monitor fails (1) within its operation timeout, and its reason names the protocol step that got no
    answer (spooler and monitor, which have no listener: their stopped process)."""
    params = lab.params(service)
    assert run(lab, "start", params).returncode == 0
    with stopped(one_pid(lab, service)):
        result = run(lab, "monitor", params, depth=10, interval_ms=10000, timeout_ms=4000, timeout=4)
    assert result.returncode == 1, result.stderr
    assert WEDGED_STEP[service] in reason(result), reason(result)


@pytest.mark.parametrize("service", ["server", "spooler"])
def test_killed_daemon(lab, service):
    """kill -9: a probe says not running (7); a recurring monitor reports the death as an error (1) naming
    the pid file; stop then succeeds and tidies the stale pid file."""
    params = lab.params(service)
    assert run(lab, "start", params).returncode == 0
    pid = one_pid(lab, service)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not lab.pids(service), what="the killed stand-in to go")
    assert run(lab, "monitor", params).returncode == 7
    result = run(lab, "monitor", params, interval_ms=10000)
    assert result.returncode == 1 and "died" in reason(result) and f"{service}.pid" in reason(result)
    assert run(lab, "stop", params).returncode == 0
    assert not (lab.run / f"{service}.pid").exists()


def test_daemon_ignoring_term_is_stopped_in_time(lab):
    """A daemon that does not react to SIGTERM (SIGSTOPped during stop): stop still ends it, by TERM and KILL
    to its process group, within the stop timeout."""
    params = lab.params("dagent")
    assert run(lab, "start", params).returncode == 0
    os.kill(one_pid(lab, "dagent"), signal.SIGSTOP)
    result = run(lab, "stop", params, timeout_ms=8000, timeout=8)
    assert result.returncode == 0, result.stderr
    assert lab.pids("dagent") == []


def test_missing_unix_socket_fails_depth_0(lab):
    """kopano-server's unix socket is a listener like its TCP port: when it is gone (removed under a running
    server), even depth 0 fails, naming the socket."""
    params = lab.params("server")
    assert run(lab, "start", params).returncode == 0
    os.unlink(lab.socket("server"))
    result = run(lab, "monitor", params, interval_ms=10000)
    assert result.returncode == 1 and lab.socket("server") in reason(result), reason(result)


# ---- bad input ----

def test_missing_binary(lab):
    """A binary absent on this node: a probe says not running (7), start fails with OCF_ERR_INSTALLED (5)."""
    params = lab.params("dagent", binary=str(lab.base / "nowhere" / "kopano-dagent"))
    assert run(lab, "monitor", params).returncode == 7
    result = run(lab, "start", params)
    assert result.returncode == 5 and "kopano-dagent" in reason(result) and "not installed" in reason(result)


def test_missing_configuration(lab):
    """A configuration file absent on this node: a probe says not running (7), start 5 naming the file."""
    params = lab.params("gateway", config=str(lab.etc / "absent.cfg"))
    assert run(lab, "monitor", params).returncode == 7
    result = run(lab, "start", params)
    assert result.returncode == 5 and "absent.cfg" in reason(result)


def test_broken_listener_value(lab):
    """A listener Kopano cannot bind (no port): start and validate-all refuse it with OCF_ERR_CONFIGURED (6),
    naming the key, the file and line; nothing is started."""
    path = lab.write_config("dagent", lmtp_listen="localhost")
    params = lab.params("dagent")
    for action in ("start", "validate-all"):
        result = run(lab, action, params)
        assert result.returncode == 6, result.stderr
        assert "lmtp_listen" in reason(result) and f"{path}:" in reason(result), reason(result)
    assert lab.pids("dagent") == []


def test_configuration_the_daemon_refuses(lab):
    """A configuration the daemon itself refuses (an unknown option): start fails with OCF_ERR_CONFIGURED
    (6), the reason quoting Kopano's own 'Config error' line from its log file. The stand-in takes half a
    second to exit: spooler has no listener, so start must not call it started before it has lived a while."""
    lab.write_config("spooler", smtp_servr="localhost", standin_refuse_delay="0.5")
    result = run(lab, "start", lab.params("spooler"))
    assert result.returncode == 6, result.stderr
    assert 'Config error: Unknown option "smtp_servr"' in reason(result), reason(result)


def test_daemon_exiting_at_start_is_not_blamed_on_an_old_log_line(lab):
    """A daemon that exits at once without logging: start fails (1) saying it exited; a 'Config error' line
    an earlier start left in the log is not quoted (only what this start logged counts)."""
    lab.write_config("spooler")
    pathlib.Path(lab.settings("spooler")["log_file"]).write_text("Mon: [1] Config error: an old one\n")
    result = run(lab, "start", lab.params("spooler", binary="/bin/false"))
    assert result.returncode == 1 and "exited with status 1" in reason(result), reason(result)
    assert "old one" not in reason(result)


def test_wrong_port(lab):
    """The listen parameter naming a port nothing listens on: start fails within its timeout saying the
    connection was refused there, and a monitor of the running daemon fails (1) the same way."""
    wrong = free_port()
    params = lab.params("ical", listen=f"127.0.0.1:{wrong}")
    result = run(lab, "start", params, timeout_ms=5000, timeout=10)
    assert result.returncode == 1 and f"127.0.0.1:{wrong}" in reason(result) and "refused" in reason(result)
    assert run(lab, "stop", params).returncode == 0
    right = lab.params("ical")
    assert run(lab, "start", right).returncode == 0
    result = run(lab, "monitor", {**right, "listen": f"http=127.0.0.1:{wrong}"}, interval_ms=10000)
    assert result.returncode == 1 and f"127.0.0.1:{wrong}" in reason(result) and "refused" in reason(result)


def test_unknown_run_as_user(lab):
    """The run directories' owner (run_as_user) unknown on this node: start 5 naming the user."""
    lab.write_config("monitor", run_as_user="kopano-nobody-here")
    result = run(lab, "start", lab.params("monitor"))
    assert result.returncode == 5 and "kopano-nobody-here" in reason(result), reason(result)


# ---- ocf-tester ----

@pytest.mark.parametrize("service", ["server", "gateway", "spooler"])
def test_ocf_tester(lab, service):
    """resource-agents' ocf-tester passes (metadata, validate-all, start/monitor/stop, double start and stop)."""
    params = lab.params(service)
    result = ocf_tester(AGENT, params)
    assert result.returncode == 0, result.stdout + result.stderr
    assert lab.pids(service) == []


# ---- depth 20: what goes through kopano-server ----

def test_dagent_depth_20_resolves_the_recipient_through_the_server(lab):
    """Depth 20 of kopano-dagent: RCPT TO probe_recipient answered 250 (resolved through kopano-server), nothing
    delivered. An unknown recipient fails naming the RCPT step; with kopano-server stopped, depth 10 still
    passes (LMTP answers) but depth 20 fails with the dagent's connection error."""
    server = lab.params("server")
    dagent = lab.params("dagent", probe_recipient=PROBE)
    assert run(lab, "start", server).returncode == 0
    assert run(lab, "start", dagent).returncode == 0
    assert run(lab, "monitor", dagent, depth=20, interval_ms=10000).returncode == 0
    result = run(lab, "monitor", {**dagent, "probe_recipient": "nobody@example.org"}, depth=20, interval_ms=10000)
    assert result.returncode == 1 and "LMTP RCPT TO" in reason(result) and "does not exist" in reason(result)
    assert run(lab, "stop", server).returncode == 0
    assert run(lab, "monitor", dagent, depth=10, interval_ms=10000).returncode == 0
    result = run(lab, "monitor", dagent, depth=20, interval_ms=10000)
    assert result.returncode == 1 and "Connection error" in reason(result), reason(result)


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_gateway_depth_20_logs_in_through_the_server(lab, protocol):
    """Depth 20 of kopano-gateway: a login with credentials_file (IMAP LOGIN + SELECT, or POP3 USER/PASS/STAT
    when there is no IMAP listener) succeeds; a wrong password fails naming the login step and the password
    never appears in the output; with kopano-server stopped the login fails while depth 10 passes."""
    if protocol == "pop3":
        lab.write_config("gateway", imap_listen="")
    server = lab.params("server")
    gateway = lab.params("gateway", credentials_file=lab.credentials())
    assert run(lab, "start", server).returncode == 0
    assert run(lab, "start", gateway).returncode == 0
    assert run(lab, "monitor", gateway, depth=20, interval_ms=10000).returncode == 0
    wrong = {**gateway, "credentials_file": lab.credentials("wrong.cred", password="Wr0ng-Secret-13")}
    result = run(lab, "monitor", wrong, depth=20, interval_ms=10000)
    step = "IMAP LOGIN" if protocol == "imap" else "POP3 PASS"
    assert result.returncode == 1 and step in reason(result), reason(result)
    assert "Wr0ng-Secret-13" not in result.stderr + result.stdout
    assert run(lab, "stop", server).returncode == 0
    assert run(lab, "monitor", gateway, depth=10, interval_ms=10000).returncode == 0
    result = run(lab, "monitor", gateway, depth=20, interval_ms=10000)
    assert result.returncode == 1 and step in reason(result), reason(result)


def test_unreadable_credentials_file(lab):
    """A credentials file others can read, or one absent here: validate-all and start fail with
    OCF_ERR_INSTALLED (5) naming the parameter and why, a probe says not running (7); never a traceback."""
    for path in (lab.credentials("open.cred", mode=0o644), str(lab.base / "absent.cred")):
        params = lab.params("gateway", credentials_file=path)
        for action in ("validate-all", "start"):
            result = run(lab, action, params)
            assert result.returncode == 5, result.stderr
            assert "credentials_file" in reason(result) and path in reason(result), reason(result)
        assert run(lab, "monitor", params, depth=20).returncode == 7
    assert "0644" in reason(run(lab, "start", lab.params("gateway", credentials_file=str(lab.base / "open.cred"))))
    assert lab.pids("gateway") == []


def test_imaps(lab):
    """An imaps listener is checked over TLS (IMAP CAPABILITY and NOOP, and the depth-20 login); with
    tls_verify the certificate must verify: against tls_ca_file it does, against the system's CAs it fails
    naming the IMAPS greeting."""
    cert, key = lab.certificate()
    lab.write_config("gateway", imaps_listen=f"127.0.0.1:{free_port()}", ssl_certificate_file=cert,
                     ssl_private_key_file=key, imap_listen="")
    server = lab.params("server")
    gateway = lab.params("gateway", credentials_file=lab.credentials())
    assert run(lab, "start", server).returncode == 0
    assert run(lab, "start", gateway).returncode == 0
    for depth in (10, 20):
        assert run(lab, "monitor", gateway, depth=depth, interval_ms=10000).returncode == 0
    verified = {**gateway, "tls_verify": "true", "tls_ca_file": cert}
    assert run(lab, "monitor", verified, depth=20, interval_ms=10000).returncode == 0
    result = run(lab, "monitor", {**gateway, "tls_verify": "true"}, depth=10, interval_ms=10000)
    assert result.returncode == 1 and "IMAPS greeting" in reason(result), reason(result)
    assert "certificate verify failed" in reason(result).lower(), reason(result)
