# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:postfix against a real Postfix (Debian's postfix) with its own config_directory, queue_directory and
data_directory, smtpd (smtp and submission) on free loopback ports, delivering the probe domain over LMTP to a
real Dovecot that the depth-20 monitor reads the probe message back from."""

from __future__ import annotations

import os
import signal

import pytest

from mail_support import PostfixLab, killed_master, mail_instances, missing_binary, signal_all, term_ignored
from service_support import assert_clean, free_port, ocf, ocf_tester, reason, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="postfix's master needs root")
AGENT = "postfix"


@pytest.fixture
def mail_pair(tmp_path):
    """mail_support.mail_instances: a Dovecot and a Postfix delivering to it, cleaned up after the test."""
    with mail_instances(tmp_path) as labs:
        yield labs


def run(lab, action, depth=0, interval_ms=0, timeout_ms=20000, dovecot=None, **extra):
    """One action of ours on the lab's instance (with the depth-20 probe through dovecot when given)."""
    result = ocf(AGENT, action, lab.params(dovecot, **extra), depth=depth, interval_ms=interval_ms,
                 timeout_ms=timeout_ms, rsctmp=lab.rsctmp, timeout=timeout_ms / 1000 + 30)
    assert_clean(result)
    return result


def start_dovecot(dovecot):
    """The pair's Dovecot, started by our dovecot agent."""
    result = ocf("dovecot", "start", dovecot.params(), rsctmp=dovecot.rsctmp)
    assert result.returncode == 0, result.stderr


def test_start_monitor_every_depth_stop(mail_pair):
    dovecot, lab = mail_pair
    start_dovecot(dovecot)
    assert run(lab, "monitor").returncode == 7
    assert run(lab, "start").returncode == 0
    master = lab.master()
    assert master and int(lab.pid_file.read_text().split()[0]) == master
    for depth in (0, 10, 20, 20):
        result = run(lab, "monitor", depth=depth, interval_ms=60000, dovecot=dovecot)
        assert result.returncode == 0, (depth, result.stderr)
    assert dovecot.messages() == [], "the probe mailbox must be empty after depth-20 monitors"
    assert run(lab, "start").returncode == 0, "a second start of a running instance succeeds"
    assert lab.master() == master
    assert run(lab, "stop").returncode == 0
    assert lab.master() is None
    assert run(lab, "stop").returncode == 0, "stop of a stopped instance succeeds"
    assert run(lab, "monitor").returncode == 7


def test_wedged_instance_fails_depth_10_naming_the_step(mail_pair):
    """Postfix's master hands connections to smtpd processes that outlive a request: the whole instance is
    stopped (master and children), which is what a wedged Postfix looks like from outside."""
    _, lab = mail_pair
    assert run(lab, "start").returncode == 0
    members = lab.processes()
    signal_all(members, signal.SIGSTOP)
    try:
        result = run(lab, "monitor", depth=10, interval_ms=60000, timeout_ms=4000)
    finally:
        signal_all(members, signal.SIGCONT)
    assert result.returncode == 1, result.stderr
    assert "SMTP greeting at 127.0.0.1:" in reason(result) and "timed out" in reason(result), reason(result)
    assert run(lab, "monitor", depth=10, interval_ms=60000).returncode == 0, "answers again once resumed"


def test_killed_master_probe_7_recurring_monitor_error(mail_pair):
    _, lab = mail_pair
    assert run(lab, "start").returncode == 0
    killed_master(run, lab)


def test_stop_escalates_when_term_is_ignored(mail_pair):
    _, lab = mail_pair
    assert run(lab, "start").returncode == 0
    term_ignored(run, lab, lab.processes())


def test_missing_binary(mail_pair):
    missing_binary(run, mail_pair[1], "postfix")


def test_missing_config_dir_probe_7_start_5(mail_pair):
    _, lab = mail_pair
    missing = str(lab.base / "no-such-dir")
    assert run(lab, "monitor", config_dir=missing).returncode == 7
    result = run(lab, "start", config_dir=missing)
    assert result.returncode == 5 and "is not a directory on this node" in reason(result)


def test_broken_configuration_start_6_with_the_checkers_line(mail_pair):
    _, lab = mail_pair
    lab.main_cf.write_text(lab.main_cf.read_text() + "bogus line\n")
    assert run(lab, "monitor").returncode == 7
    result = run(lab, "start")
    assert result.returncode == 6, result.stderr
    assert "postfix rejects the configuration: postconf: fatal:" in reason(result), reason(result)
    assert "missing '=' after attribute name: \"bogus line\"" in reason(result)
    assert lab.master() is None


def test_wrong_port_names_the_listener(mail_pair):
    _, lab = mail_pair
    assert run(lab, "start").returncode == 0
    port = free_port()
    result = run(lab, "monitor", interval_ms=60000, smtp_address=f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"TCP connect at 127.0.0.1:{port}: connection refused" in reason(result), reason(result)
    result = run(lab, "monitor", interval_ms=60000, smtp_address="127.0.0.1:99999")
    assert result.returncode == 6 and "parameter smtp_address:" in reason(result)


def test_both_smtpd_services_of_master_cf_are_checked(mail_pair):
    """The listeners come from master.cf (smtp and submission here), read again when it changes: the submission
    service moved to another port is refused until postfix reload makes it listen there."""
    _, lab = mail_pair
    assert run(lab, "start").returncode == 0
    master_cf = lab.conf / "master.cf"
    master_cf.write_text(master_cf.read_text().replace(f"127.0.0.1:{lab.submission} inet",
                                                         f"127.0.0.1:{free_port()} inet"))
    result = run(lab, "monitor", interval_ms=60000)
    assert result.returncode == 1 and "connection refused" in reason(result), reason(result)
    assert run(lab, "reload").returncode == 0
    wait_for(lambda: run(lab, "monitor", depth=10, interval_ms=60000).returncode == 0, what="the reload")


def test_credentials_file_problems(mail_pair):
    dovecot, lab = mail_pair
    dovecot.credentials.chmod(0o644)
    result = run(lab, "start", dovecot=dovecot)
    assert result.returncode == 5 and "has mode 0644: it must be 0600" in reason(result), reason(result)
    dovecot.credentials.chmod(0o600)
    assert run(lab, "start", dovecot=dovecot).returncode == 0
    result = run(lab, "monitor", depth=20, interval_ms=60000, dovecot=dovecot, probe_imap=None)
    assert result.returncode == 6 and "needs probe_imap" in reason(result), reason(result)


def test_depth_20_fails_when_the_message_does_not_arrive(mail_pair):
    """Delivery to Dovecot's LMTP broken (postfix defers the probe message): the read-back says so."""
    dovecot, lab = mail_pair
    start_dovecot(dovecot)
    lab.main_cf.write_text(lab.main_cf.read_text().replace(f"127.0.0.1:{dovecot.lmtp}", f"127.0.0.1:{free_port()}"))
    assert run(lab, "start").returncode == 0
    result = run(lab, "monitor", depth=20, interval_ms=60000, dovecot=dovecot, timeout_ms=6000)
    assert result.returncode == 1, result.stderr
    assert "IMAP SEARCH at 127.0.0.1:" in reason(result) and "did not arrive" in reason(result), reason(result)


def test_starttls_with_verification(tmp_path):
    lab = PostfixLab(tmp_path / "pf", free_port(), tls=True)
    lab.rsctmp = tmp_path / "rsc"
    try:
        ca = str(lab.cert)
        assert run(lab, "start", starttls="true", tls_ca_file=ca).returncode == 0
        assert run(lab, "monitor", depth=10, interval_ms=60000, starttls="true", tls_ca_file=ca).returncode == 0
        result = run(lab, "monitor", depth=10, interval_ms=60000, starttls="true")
        assert result.returncode == 1 and "SMTP STARTTLS at 127.0.0.1:" in reason(result), reason(result)
        assert "CERTIFICATE_VERIFY_FAILED" in reason(result)
        assert run(lab, "monitor", depth=10, interval_ms=60000, starttls="true", tls_verify="false").returncode == 0
        lab.main_cf.write_text(lab.main_cf.read_text().replace("smtpd_tls_security_level = may",
                                                               "smtpd_tls_security_level = none"))
        assert run(lab, "reload").returncode == 0
        result = run(lab, "monitor", depth=10, interval_ms=60000, starttls="true", tls_verify="false")
        assert result.returncode == 1 and "not offered by the server" in reason(result), reason(result)
    finally:
        ocf(AGENT, "stop", lab.params(), rsctmp=lab.rsctmp)
        lab.kill()


def test_depth_0_runs_no_program(mail_pair):
    _, lab = mail_pair
    assert run(lab, "start").returncode == 0
    no_tools = {"PATH": str(lab.base)}  # postconf cannot be found: any attempt to run it would show
    result = ocf(AGENT, "monitor", lab.params(), interval_ms=60000, rsctmp=lab.rsctmp, extra_env=no_tools)
    assert result.returncode == 0 and "WARNING" not in result.stderr, result.stderr


def test_ocf_tester(mail_pair):
    _, lab = mail_pair
    result = ocf_tester(AGENT, lab.params())
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- master.cf's SMTP services (no daemon)

def test_smtp_services_from_master_cf():
    from hamail.agents.postfix.services import smtp_services
    master = "\n".join([
        "smtp       inet  n       -       y       -       1       postscreen",
        "smtpd      pass  -       -       y       -       -       smtpd",
        "submission inet  n       -       y       -       -       smtpd -o syslog_name=postfix/submission",
        "192.0.2.9:smtps inet n   -       y       -       -       smtpd -o smtpd_tls_wrappermode=yes",
        "127.0.0.1:10025 inet n   -       n       -       -       smtpd -o { smtpd_tls_wrappermode = no }",
        "2525       inet  n       -       y       -       -       /usr/lib/postfix/sbin/smtpd",
        "submissions inet n       -       y       -       -       smtpd",
        "pickup     unix  n       -       y       60      1       pickup",
        "mystery    inet  n       -       y       -       -       smtpd",
        "127.0.0.1:8025 inet n    -       n       -       -       spawn user=nobody argv=/bin/true",
    ])
    assert smtp_services(master, "192.0.2.1, 192.0.2.2") == [
        ["smtp", "192.0.2.1", 25, False], ["submission", "192.0.2.1", 587, False],
        ["192.0.2.9:smtps", "192.0.2.9", 465, True], ["127.0.0.1:10025", "127.0.0.1", 10025, False],
        ["2525", "192.0.2.1", 2525, False], ["submissions", "192.0.2.1", 465, True]]
    assert smtp_services("smtp inet n - y - - smtpd", "all") == [["smtp", "127.0.0.1", 25, False]]
