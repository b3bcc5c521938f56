# SPDX-License-Identifier: GPL-2.0-or-later
"""Bench rows of dovecot (bench/mail_rows.py): one running Dovecot (a private configuration, imap, pop3 and lmtp
on loopback), ours at depth 0 and 10 against heartbeat's monitor (`dovecot process status`).

heartbeat's agent ignores config_file: it gets the configuration as `-c` in parameters and the pid file, ours
config_file; both monitor the same instance."""

from mail_rows import mail_cases


def _dovecot(base):
    from mail_support import DovecotLab
    return DovecotLab(base / "dc")


def _heartbeat(lab):
    return {"parameters": f"-c {lab.config}", "pid_file": str(lab.pid_file)}, {}


def cases() -> list:
    """Monitor at depth 0 (target 0.7x heartbeat's) and at depth 10, against heartbeat's monitor."""
    return mail_cases("dovecot", _dovecot, _heartbeat, "dovecot process status")
