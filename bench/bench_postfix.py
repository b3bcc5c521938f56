# SPDX-License-Identifier: GPL-2.0-or-later
"""Bench rows of postfix (bench/mail_rows.py): one running Postfix (a private config_directory, smtp and
submission smtpd on loopback), ours at depth 0 and 10 against heartbeat's monitor (`postfix status`).

heartbeat's agent gets the same config_dir and MAIL_CONFIG naming it, so that its postconf calls read that
main.cf (it otherwise requires the directory in the default main.cf's alternate_config_directories, which the
bench does not touch)."""

from mail_rows import mail_cases


def _postfix(base):
    from mail_support import PostfixLab
    return PostfixLab(base / "pf", 24)


def cases() -> list:
    """Monitor at depth 0 (target 0.7x heartbeat's) and at depth 10, against heartbeat's monitor."""
    return mail_cases("postfix", _postfix, lambda lab: (lab.params(), {"MAIL_CONFIG": str(lab.conf)}),
                      "postfix status")
