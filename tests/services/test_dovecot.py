# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:dovecot against a real Dovecot (Debian's dovecot-imapd/-pop3d/-lmtpd) with its own configuration
file, base_dir, listeners on free loopback ports and a probe mailbox under the test's directory."""

from __future__ import annotations

import os
import signal

import pytest

from mail_support import DovecotLab, dovecot_instance, killed_master, missing_binary, term_ignored
from service_support import assert_clean, free_port, ocf, ocf_tester, reason, stopped

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dovecot's master needs root")
AGENT = "dovecot"


@pytest.fixture
def dovecot_lab(tmp_path):
    """mail_support.dovecot_instance: a Dovecot lab, whatever of it runs stopped and killed after the test."""
    with dovecot_instance(tmp_path) as lab:
        yield lab


def run(lab, action, depth=0, interval_ms=0, timeout_ms=20000, **extra):
    """One action of ours on the lab's instance; never a traceback."""
    params = lab.params(**extra)
    result = ocf(AGENT, action, params, depth=depth, interval_ms=interval_ms, timeout_ms=timeout_ms,
                 rsctmp=lab.rsctmp, timeout=timeout_ms / 1000 + 30)
    assert_clean(result)
    return result


def test_start_monitor_every_depth_stop(dovecot_lab):
    lab = dovecot_lab
    assert run(lab, "monitor").returncode == 7
    assert run(lab, "start").returncode == 0
    master = lab.master()
    assert master and int(lab.pid_file.read_text().split()[0]) == master
    for depth in (0, 10, 20, 20):
        result = run(lab, "monitor", depth=depth, interval_ms=60000)
        assert result.returncode == 0, (depth, result.stderr)
    assert lab.messages() == [], "the probe mailbox must be empty after depth-20 monitors"
    assert run(lab, "start").returncode == 0, "a second start of a running instance succeeds"
    assert lab.master() == master
    assert run(lab, "stop").returncode == 0
    assert lab.master() is None and not lab.pid_file.exists()
    assert run(lab, "stop").returncode == 0, "stop of a stopped instance succeeds"
    assert run(lab, "monitor").returncode == 7


def test_depth_20_deletes_probe_messages_an_earlier_monitor_left(dovecot_lab):
    lab = dovecot_lab
    assert run(lab, "start").returncode == 0
    import smtplib
    with smtplib.LMTP("127.0.0.1", lab.lmtp) as client:
        client.sendmail("x@example.test", ["probe@example.test"],
                        b"Subject: left behind\r\nX-Hamail-Probe: 0000\r\n\r\nan interrupted probe\r\n")
    assert len(lab.messages()) == 1
    assert run(lab, "monitor", depth=20, interval_ms=60000).returncode == 0
    assert lab.messages() == []


def test_wedged_master_fails_depth_10_naming_the_step(dovecot_lab):
    lab = dovecot_lab
    assert run(lab, "start").returncode == 0
    with stopped(lab.master()):
        result = run(lab, "monitor", depth=10, interval_ms=60000, timeout_ms=4000)
    assert result.returncode == 1, result.stderr
    assert "IMAP greeting at 127.0.0.1:" in reason(result) and "timed out" in reason(result), reason(result)
    assert run(lab, "monitor", depth=10, interval_ms=60000).returncode == 0, "answers again once resumed"


def test_killed_master_probe_7_recurring_monitor_error(dovecot_lab):
    assert run(dovecot_lab, "start").returncode == 0
    killed_master(run, dovecot_lab)


def test_stop_escalates_when_term_is_ignored(dovecot_lab):
    assert run(dovecot_lab, "start").returncode == 0
    term_ignored(run, dovecot_lab, [dovecot_lab.master()])


def test_missing_binary(dovecot_lab):
    missing_binary(run, dovecot_lab, "dovecot")


def test_broken_configuration_start_6_with_doveconf_line(dovecot_lab):
    lab = dovecot_lab
    lab.config.write_text(lab.config.read_text() + "bogus_setting = 1\n")
    assert run(lab, "monitor").returncode == 7
    result = run(lab, "start")
    assert result.returncode == 6, result.stderr
    assert "doveconf rejects the configuration: doveconf: Fatal: Error in configuration file" in reason(result)
    assert "Unknown setting: bogus_setting" in reason(result)
    assert lab.master() is None


def test_missing_config_file_probe_7_start_5(dovecot_lab):
    lab = dovecot_lab
    missing = str(lab.base / "nowhere.conf")
    assert run(lab, "monitor", config_file=missing).returncode == 7
    result = run(lab, "start", config_file=missing)
    assert result.returncode == 5 and "is not a file on this node" in reason(result)


def test_wrong_port_names_the_listener(dovecot_lab):
    lab = dovecot_lab
    assert run(lab, "start").returncode == 0
    port = free_port()
    result = run(lab, "monitor", interval_ms=60000, imap_address=f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"TCP connect at 127.0.0.1:{port}: connection refused" in reason(result), reason(result)
    result = run(lab, "monitor", interval_ms=60000, imap_address="127.0.0.1:notaport")
    assert result.returncode == 6 and "parameter imap_address:" in reason(result)


def test_credentials_file_problems(dovecot_lab):
    lab = dovecot_lab
    lab.credentials.chmod(0o644)
    result = run(lab, "start")
    assert result.returncode == 5 and "has mode 0644: it must be 0600" in reason(result), reason(result)
    assert "Lab-Mail-Pw" not in result.stderr
    lab.credentials.chmod(0o600)
    result = run(lab, "start", credentials_file=str(lab.base / "absent.cred"))
    assert result.returncode == 5 and "cannot open credentials file" in reason(result)
    assert run(lab, "start").returncode == 0
    lab.credentials.chmod(0o644)
    result = run(lab, "monitor", depth=20, interval_ms=60000)
    assert result.returncode == 5 and "parameter credentials_file:" in reason(result)
    lab.credentials.write_text("user = probe@example.test\n")
    lab.credentials.chmod(0o600)
    result = run(lab, "monitor", depth=20, interval_ms=60000)
    assert result.returncode == 6 and "must hold 'user = ...' and 'password = ...'" in reason(result)
    result = run(lab, "monitor", depth=20, interval_ms=60000, credentials_file="")
    assert result.returncode == 6 and "needs credentials_file" in reason(result)


def test_wrong_password_names_the_imap_login(dovecot_lab):
    lab = dovecot_lab
    assert run(lab, "start").returncode == 0
    lab.credentials.write_text("user = probe@example.test\npassword = not-the-password\n")
    result = run(lab, "monitor", depth=20, interval_ms=60000)
    assert result.returncode == 1 and "IMAP LOGIN at 127.0.0.1:" in reason(result), reason(result)
    assert "not-the-password" not in result.stderr


def test_imaps_and_pop3s_with_tls_verification(tmp_path):
    lab = DovecotLab(tmp_path / "dc", tls=True)
    lab.rsctmp = tmp_path / "rsc"
    try:
        assert run(lab, "start", tls_ca_file=str(lab.cert)).returncode == 0
        assert run(lab, "monitor", depth=10, interval_ms=60000, tls_ca_file=str(lab.cert)).returncode == 0
        result = run(lab, "monitor", depth=10, interval_ms=60000)
        assert result.returncode == 1 and "IMAPS greeting at 127.0.0.1:" in reason(result), reason(result)
        assert "CERTIFICATE_VERIFY_FAILED" in reason(result)
        assert run(lab, "monitor", depth=10, interval_ms=60000, tls_verify="false").returncode == 0
        result = run(lab, "monitor", depth=10, interval_ms=60000, tls_ca_file=str(lab.cert),
                     imap_address=f"127.0.0.1:{lab.imap}")
        assert result.returncode == 0
        os.kill(lab.master(), signal.SIGSTOP)
        try:
            result = run(lab, "monitor", depth=10, interval_ms=60000, tls_verify="false", timeout_ms=4000,
                         imap_address=f"127.0.0.1:{lab.imaps}", pop3_address=f"127.0.0.1:{lab.pop3s}")
        finally:
            os.kill(lab.master(), signal.SIGCONT)
        assert result.returncode == 1 and "IMAP greeting" in reason(result), reason(result)
    finally:
        ocf(AGENT, "stop", lab.params(), rsctmp=lab.rsctmp)
        lab.kill()


def test_depth_0_runs_no_program_until_the_configuration_changes(dovecot_lab):
    lab = dovecot_lab
    assert run(lab, "start").returncode == 0
    no_tools = {"PATH": str(lab.base)}  # doveconf cannot be found: any attempt to run it would show
    result = ocf(AGENT, "monitor", lab.params(), interval_ms=60000, rsctmp=lab.rsctmp, extra_env=no_tools)
    assert result.returncode == 0 and "WARNING" not in result.stderr, result.stderr
    # A changed configuration is read again: the IMAP listener moves to a port the running daemon does not use.
    moved = free_port()
    lab.config.write_text(lab.config.read_text().replace(f"port = {lab.imap}\n", f"port = {moved}\n"))
    result = run(lab, "monitor", interval_ms=60000)
    assert result.returncode == 1 and f"127.0.0.1:{moved}: connection refused" in reason(result), reason(result)


def test_explicit_pid_file_and_parameters(dovecot_lab):
    lab = dovecot_lab
    extra = {"pid_file": str(lab.pid_file), "parameters": "-c " + str(lab.config)}
    assert run(lab, "start", **extra).returncode == 0
    assert run(lab, "monitor", depth=10, interval_ms=60000, **extra).returncode == 0
    assert run(lab, "stop", **extra).returncode == 0
    assert lab.master() is None


def test_ocf_tester(dovecot_lab):
    result = ocf_tester(AGENT, dovecot_lab.params())
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- listeners from doveconf -S (no daemon)

def test_listeners_follow_protocols_ports_and_addresses():
    from hamail.agents.dovecot.listeners import listeners
    settings = {
        "protocols": "imap lmtp", "listen": "*, ::", "base_dir": "/run/dc",
        "service/imap-login/inet_listener": "imap imaps",
        "service/imap-login/inet_listener/imap/port": "143", "service/imap-login/inet_listener/imap/address": "",
        "service/imap-login/inet_listener/imaps/port": "993", "service/imap-login/inet_listener/imaps/ssl": "yes",
        "service/imap-login/inet_listener/imaps/address": "192.0.2.7",
        "service/pop3-login/inet_listener": "pop3", "service/pop3-login/inet_listener/pop3/port": "110",
        "service/lmtp/inet_listener": "lmtp lmtpx", "service/lmtp/inet_listener/lmtp/port": "0",
        "service/lmtp/inet_listener/lmtpx/port": "2424", "service/lmtp/inet_listener/lmtpx/haproxy": "yes",
        "service/lmtp/unix_listener": "lmtp", "service/lmtp/unix_listener/lmtp/path": "lmtp",
    }
    assert listeners(settings) == [["imap", "127.0.0.1", 143, ""], ["imaps", "192.0.2.7", 993, ""],
                                   ["lmtp", "", 0, "/run/dc/lmtp"]]
    # ssl = no: Dovecot opens no ssl=yes listener (the default imaps one stays in the configuration), so none is
    # waited for at start or probed (the mail lab's dovecot.conf keeps the defaults with SSL off).
    assert listeners({**settings, "ssl": "no"}) == [["imap", "127.0.0.1", 143, ""], ["lmtp", "", 0, "/run/dc/lmtp"]]
    assert listeners({**settings, "ssl": "yes"}) == listeners(settings)
