# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:cyrus against a real Cyrus IMAP 3.6 from Debian's packages (unpacked into a private root beside
dovecot: see cyrus_support), one instance per test in a private directory with IMAP, POP3 and LMTP on 127.0.0.1 and an
LMTP unix socket; plus the cyrus.conf reader on Debian's own cyrus.conf.
"""

from __future__ import annotations

import imaplib
import os
import shutil
import signal
import socket

import pytest

from cyrus_support import OTHER_PASSWORD, OTHER_USER, PROBE_PASSWORD, PROBE_USER, CyrusServer, cyrus_root
from cyrus_support import private_dir
from service_support import assert_clean, free_port, ocf, ocf_tester, reason, stopped, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="cyrus's services run as the cyrus user: needs root")

RECURRING = 20000  # interval (ms) of a recurring monitor


@pytest.fixture(scope="module")
def root():
    """Debian's cyrus unpacked once (about 2 s on a machine that has never had it)."""
    return cyrus_root()


@pytest.fixture
def server(root):
    """A private cyrus instance (not started); whatever of it is left is killed and removed at teardown."""
    instance = CyrusServer(private_dir())
    yield instance
    instance.kill_all()
    shutil.rmtree(instance.base, ignore_errors=True)


@pytest.fixture
def running(server):
    """The instance started by the agent."""
    result = ocf("cyrus", "start", server.params())
    assert result.returncode == 0, result.stderr
    server.create_mailboxes(PROBE_USER, OTHER_USER)
    return server


def run(server, action, depth=0, **kw):
    """The agent's action on this instance (extra parameters as params=...)."""
    params = server.params(**kw.pop("params", {}))
    result = ocf("cyrus", action, params, depth=depth, **kw)
    assert_clean(result)
    return result


def mailbox_count(server, user=PROBE_USER, password=PROBE_PASSWORD) -> int:
    """How many messages the user's INBOX holds."""
    client = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=10)
    try:
        client.login(user, password)
        typ, data = client.select("INBOX")
        assert typ == "OK", data
        return int(data[0])
    finally:
        client.logout()


# --- cyrus.conf, read the way the monitor reads it -------------------------------------------------------------

DEBIAN_SERVICES = """START {
\trecover\t\tcmd="/usr/sbin/cyrus ctl_cyrusdb -r"
}
SERVICES {
\t# --- Normal cyrus spool, or Murder backends ---
\timap\t\tcmd="imapd -U 30" listen="imap" prefork=0 maxchild=100
\t#imaps\t\tcmd="imapd -s -U 30" listen="imaps" prefork=0 maxchild=100
\tpop3\t\tcmd="pop3d -U 30" listen="pop3" prefork=0 maxchild=50
\tpop3s\t\tcmd="pop3d -s -U 30" listen="pop3s" prefork=0 maxchild=50
\thttp\t\tcmd="httpd -U 30" listen="8008" prefork=0 maxchild=100
\tlmtp\t\tcmd="/usr/sbin/cyrus lmtpd -a" listen="[::1]:lmtp" prefork=0 maxchild=20
\tlmtpunix\tcmd="lmtpd" listen="/run/cyrus/socket/lmtp" prefork=0 maxchild=20
  \tsieve\t\tcmd="timsieved" listen="localhost:sieve" prefork=0 maxchild=100
\tnotify\t\tcmd="notifyd" listen="/run/cyrus/socket/notify" proto="udp" prefork=1
}
EVENTS {
\tcheckpoint\tcmd="/usr/sbin/cyrus ctl_cyrusdb -c" period=30
}
"""


def test_listeners_of_debians_cyrus_conf():
    """Protocols from the programs (-s: TLS, Debian's `cyrus` wrapper seen through), ports from service names,
    wildcards on loopback, comments and the udp notify socket left out, other sections ignored."""
    from hamail.agents.cyrus import conf
    from hamail.service.probes import Endpoint
    found = conf.listeners(DEBIAN_SERVICES)
    assert found == [
        conf.Listener("imap", "imap", Endpoint("127.0.0.1", 143)),
        conf.Listener("pop3", "pop3", Endpoint("127.0.0.1", 110)),
        conf.Listener("pop3s", "pop3s", Endpoint("127.0.0.1", 995)),
        conf.Listener("http", "tcp", Endpoint("127.0.0.1", 8008)),
        conf.Listener("lmtp", "lmtp", Endpoint("::1", 24)),
        conf.Listener("lmtpunix", "lmtp", Endpoint(path="/run/cyrus/socket/lmtp")),
        conf.Listener("sieve", "tcp", Endpoint("localhost", 4190)),
    ]


def test_address_parameters_and_their_errors():
    """host:port, port, socket path, imaps=/pop3s= for TLS; a wrong item is named."""
    from hamail.agents.cyrus import conf
    from hamail.service.probes import Endpoint
    assert conf.parse_addresses("imaps=993, 10.0.0.1:143", "imap") == [
        conf.Listener("imaps", "imaps", Endpoint("127.0.0.1", 993)),
        conf.Listener("imap", "imap", Endpoint("10.0.0.1", 143))]
    assert conf.parse_addresses("/run/l 24", "lmtp") == [conf.Listener("lmtp", "lmtp", Endpoint(path="/run/l")),
                                                          conf.Listener("lmtp", "lmtp", Endpoint("127.0.0.1", 24))]
    for bad, protocol, word in (("pop3=110", "imap", "only imap or imaps"), ("lmtps=24", "lmtp", "only lmtp"),
                                ("host:nosuchservice", "imap", "nosuchservice"), ("0", "imap", "'0'")):
        with pytest.raises(ValueError, match=word):
            conf.parse_addresses(bad, protocol)


# --- the lifecycle on a real server ----------------------------------------------------------------------------

def test_start_monitor_every_depth_stop_and_repeat(server):
    """Probe 7 before start; start; monitor 0/10/20; start again keeps the same master; stop; stop again;
    the depth-20 probe leaves the probe mailbox empty."""
    assert run(server, "monitor").returncode == 7
    assert run(server, "start").returncode == 0
    pid = server.master_pid()
    assert pid
    server.create_mailboxes(PROBE_USER)
    for depth in (0, 10, 20):
        result = run(server, "monitor", depth=depth, interval_ms=RECURRING)
        assert result.returncode == 0, (depth, result.stderr)
    assert mailbox_count(server) == 0
    assert run(server, "start").returncode == 0
    assert server.master_pid() == pid
    assert run(server, "stop").returncode == 0
    assert not server.processes()
    assert not server.pid_file.exists()
    assert run(server, "stop").returncode == 0
    assert run(server, "monitor").returncode == 7


def test_validate_all_on_a_good_configuration(server):
    """validate-all runs cyr_info conf-lint and reads cyrus.conf and the credentials file."""
    assert run(server, "validate-all").returncode == 0


def test_depth_20_really_delivers_and_reads_back(running):
    """The message the monitor reads back is the one it delivered: delivered to another user's mailbox, the
    read-back in the probe mailbox finds nothing and the monitor fails naming the step (the other user got it);
    an unknown recipient fails naming LMTP RCPT TO."""
    result = run(running, "monitor", depth=20, interval_ms=RECURRING, timeout_ms=3000,
                 params={"probe_address": OTHER_USER})
    assert result.returncode == 1
    assert "IMAP SEARCH" in reason(result) and "did not arrive" in reason(result)
    assert mailbox_count(running, OTHER_USER, OTHER_PASSWORD) == 1
    result = run(running, "monitor", depth=20, interval_ms=RECURRING, params={"probe_address": "nosuchuser"})
    assert result.returncode == 1
    assert "LMTP RCPT TO" in reason(result) and "nosuchuser" in reason(result)


def test_depth_20_with_a_wrong_password_names_the_login(running):
    """The IMAP login step is named; the password is not in the reason."""
    running.credentials.write_text(f"user = {PROBE_USER}\npassword = Wrong-Pw-4711\n")
    result = run(running, "monitor", depth=20, interval_ms=RECURRING)
    assert result.returncode == 1
    assert "IMAP LOGIN" in reason(result)
    assert "Wrong-Pw-4711" not in result.stderr


def test_ocf_tester(server):
    """resource-agents' ocf-tester: metadata, validate-all, start/monitor/stop, double start and stop."""
    result = ocf_tester("cyrus", server.params())
    assert result.returncode == 0, result.stdout + result.stderr


def test_imaps_listener_is_spoken_to_over_tls(server):
    """imapd -s in cyrus.conf is IMAPS: with tls_verify off (a self-signed certificate) depth 10 passes over
    TLS; with it on the monitor fails naming the IMAPS greeting and the certificate."""
    port = server.add_imaps()
    params = {"tls_verify": "false"}
    assert run(server, "start", params=params).returncode == 0
    assert run(server, "monitor", depth=10, interval_ms=RECURRING, params=params).returncode == 0
    result = run(server, "monitor", depth=10, interval_ms=RECURRING)
    assert result.returncode == 1
    assert f"IMAPS greeting at 127.0.0.1:{port}" in reason(result) and "CERTIFICATE_VERIFY_FAILED" in reason(result)


def test_an_address_parameter_replaces_cyrus_confs_listeners_of_its_protocol(server):
    """cyrus.conf names a second IMAP service on a port held by a socket that never answers (master cannot bind
    it: bind errors are not fatal): depth 10 fails there; imap_address naming the real port replaces both."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        services = server.cyrus_conf.read_text().split("SERVICES {\n", 1)[1].split("}", 1)[0]
        server.write(services=services + f'  imap2 cmd="{server.service_cmd("imapd")}" listen="127.0.0.1:{port}"\n')
        params = {"imap_address": str(server.imap_port)}
        assert run(server, "start", params=params).returncode == 0
        assert run(server, "monitor", depth=10, interval_ms=RECURRING, params=params).returncode == 0
        result = run(server, "monitor", depth=10, interval_ms=RECURRING, timeout_ms=3000)
        assert result.returncode == 1
        assert f"IMAP greeting at 127.0.0.1:{port}: timed out" in reason(result)


# --- failures ----------------------------------------------------------------------------------------------------

def test_wedged_master_fails_depth_10_naming_the_imap_greeting(running):
    """SIGSTOP master (prefork=0, -U 1: every connection waits for it): the kernel still accepts connections, so
    depth 0 passes; depth 10 fails within its 5 s timeout naming the IMAP greeting."""
    with stopped(running.master_pid()):
        assert run(running, "monitor", depth=0, interval_ms=RECURRING, timeout_ms=5000).returncode == 0
        result = run(running, "monitor", depth=10, interval_ms=RECURRING, timeout_ms=5000, timeout=15)
    assert result.returncode == 1
    assert "IMAP greeting" in reason(result) and "timed out" in reason(result), reason(result)


def test_killed_master_is_not_running_for_a_probe_and_an_error_for_a_recurring_monitor(running):
    """kill -9: the pid file stays; a probe says 7, a recurring monitor fails saying it died; stop tidies."""
    pid = running.master_pid()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: running.master_pid() is None, what="master to die")
    assert running.pid_file.exists()
    assert run(running, "monitor").returncode == 7
    result = run(running, "monitor", interval_ms=RECURRING)
    assert result.returncode == 1
    assert "died" in reason(result) and str(pid) in reason(result)
    assert run(running, "stop").returncode == 0
    assert not running.pid_file.exists()


def test_master_that_ignores_term_is_stopped_within_the_stop_timeout(running):
    """A stopped master never handles SIGTERM: the stop escalates to SIGKILL of its group within 10 s."""
    pid = running.master_pid()
    with stopped(pid):
        result = run(running, "stop", timeout_ms=10000, timeout=20)
        assert result.returncode == 0, result.stderr
        assert not running.processes()


def test_missing_binary(server):
    """Probe 7 (nothing of ours can run here), start 5."""
    params = {"binary": "/nonexistent/cyrmaster"}
    assert run(server, "monitor", params=params).returncode == 7
    result = run(server, "start", params=params)
    assert result.returncode == 5
    assert "/nonexistent/cyrmaster" in reason(result)


def test_broken_imapd_conf_fails_start_with_cyr_infos_first_line(server):
    """A value imapd cannot read: start 6 with conf-lint's fatal line, and nothing started."""
    server.write(imapd_extra="allowanonymouslogin: maybe\n")
    result = run(server, "start")
    assert result.returncode == 6
    assert "cyr_info rejects the configuration: fatal error: non-switch value for allowanonymouslogin" in reason(result)
    assert not server.processes()
    assert run(server, "validate-all").returncode == 6


def test_broken_cyrus_conf_fails_start_with_cyr_infos_first_line(server):
    """A cyrus.conf master cannot parse is caught by conf-lint -M before master runs."""
    server.write(services='  imap cmd="imapd" listen=\n  garbage line here\n')
    result = run(server, "start", params={"imap_address": str(server.imap_port)})
    assert result.returncode == 6
    assert "fatal error: configuration file" in reason(result) and "bad character" in reason(result)


def test_master_exiting_during_start_fails_the_start_at_once(server):
    """A START entry that fails makes master exit: the start says so instead of waiting for its timeout."""
    text = server.cyrus_conf.read_text().replace('recover cmd="', 'recover cmd="/nonexistent/program ')
    server.cyrus_conf.write_text(text)
    result = run(server, "start", timeout_ms=60000, timeout=30)
    assert result.returncode == 1
    assert "exited with status" in reason(result)


def test_wrong_port(running):
    """A listener nobody serves: the monitor fails naming where; a start against it times out saying so."""
    port = free_port()
    params = {"lmtp_address": f"{running.lmtp_socket} 127.0.0.1:{port}"}
    result = run(running, "monitor", params=params, interval_ms=RECURRING)
    assert result.returncode == 1
    assert f"TCP connect at 127.0.0.1:{port}: connection refused" in reason(result)
    result = run(running, "monitor", depth=20, interval_ms=RECURRING,
                 params={"probe_imap": f"127.0.0.1:{port}"})
    assert result.returncode == 1
    assert f"IMAP greeting at 127.0.0.1:{port}" in reason(result) and "refused" in reason(result)


def test_start_waits_for_an_answer_not_a_pid(server):
    """With a listener that never answers, start fails at its timeout with the last probe failure."""
    port = free_port()
    result = run(server, "start", params={"imap_address": f"127.0.0.1:{port}"}, timeout_ms=4000, timeout=20)
    assert result.returncode == 1
    assert "did not answer before the start timeout" in reason(result)
    assert f"127.0.0.1:{port}: connection refused" in reason(result)


@pytest.mark.parametrize("how", ["missing", "mode 0644", "no password line"])
def test_unusable_credentials_file(running, how):
    """Depth 20 with a credentials file it cannot use: 5 when it cannot be read here, 6 when it is wrong
    everywhere; the reason names the parameter and the problem."""
    if how == "missing":
        running.credentials.unlink()
        code, words = 5, "No such file or directory"
    elif how == "mode 0644":
        running.credentials.chmod(0o644)
        code, words = 5, "mode 0644"
    else:
        running.credentials.write_text(f"user = {PROBE_USER}\n")
        code, words = 6, "must hold"
    result = run(running, "monitor", depth=20, interval_ms=RECURRING)
    assert result.returncode == code, result.stderr
    assert "credentials_file" in reason(result) and words in reason(result)


def test_start_refuses_a_credentials_file_it_cannot_read(server):
    """A configured credentials file is checked at start (5 here: another node may have it), not at the first
    depth-20 monitor; nothing is started."""
    server.credentials.chmod(0o640)
    result = run(server, "start")
    assert result.returncode == 5
    assert "credentials_file" in reason(result) and "mode 0640" in reason(result)
    assert not server.processes()


def test_depth_20_without_credentials_is_a_configuration_error(running):
    """OCF_CHECK_LEVEL=20 with no credentials_file cannot check anything end to end: 6, saying what is missing."""
    params = running.params()
    del params["credentials_file"]
    result = ocf("cyrus", "monitor", params, depth=20, interval_ms=RECURRING)
    assert result.returncode == 6
    assert "needs credentials_file" in reason(result), reason(result)


def test_bad_address_parameter_is_a_configuration_error(server):
    """A malformed address value is wrong on every node: 6 even for a probe."""
    result = run(server, "monitor", params={"pop3_address": "smtp=25"})
    assert result.returncode == 6
    assert "parameter pop3_address" in reason(result)
