# SPDX-License-Identifier: GPL-2.0-or-later
"""A mail user of the lab: send a message to the mail VIP over SMTP, read the mailbox back over IMAP.

Python's smtplib and imaplib (no protocol of our own), every step bounded. The drills use it to check that
every mail the cluster accepted is still readable after a failure.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import imaplib
import smtplib
import time
import uuid
from email.message import EmailMessage

TOKEN_HEADER = "X-Hamail-Lab-Token"


def send(host: str, recipient: str, *, subject: str = "hamail lab", timeout: float = 10.0) -> str:
    """Submit one message over SMTP (port 25); return its token once the server accepted it."""
    token = uuid.uuid4().hex
    message = EmailMessage()
    message["From"] = "lab-client@example.net"
    message["To"] = recipient
    message["Subject"] = f"{subject} {token[:8]}"
    message["Date"] = email.utils.formatdate(localtime=True)
    message[TOKEN_HEADER] = token
    message.set_content(f"sent by the hamail lab at {time.strftime('%H:%M:%S')}\n")
    with smtplib.SMTP(host, 25, timeout=timeout) as smtp:
        smtp.send_message(message)
    return token


def tokens(host: str, user: str, password: str, *, timeout: float = 10.0) -> set[str]:
    """The tokens of every lab message in the user's INBOX, read over IMAP (port 143)."""
    found = set()
    with imaplib.IMAP4(host, 143, timeout=timeout) as imap:
        imap.login(user, password)
        imap.select("INBOX", readonly=True)
        status, data = imap.search(None, "ALL")
        if status != "OK":
            raise imaplib.IMAP4.error(f"SEARCH answered {status}")
        for number in data[0].split():
            status, parts = imap.fetch(number, f"(BODY.PEEK[HEADER.FIELDS ({TOKEN_HEADER})])")
            for part in parts:
                if isinstance(part, tuple):
                    value = email.message_from_bytes(part[1], policy=email.policy.default).get(TOKEN_HEADER)
                    if value:
                        found.add(str(value).strip())
        imap.logout()
    return found


def summary(host: str, user: str, password: str, *, timeout: float = 10.0) -> list[str]:
    """One line per message of the INBOX: its Subject and Date, for people reading the lab's output."""
    lines = []
    with imaplib.IMAP4(host, 143, timeout=timeout) as imap:
        imap.login(user, password)
        imap.select("INBOX", readonly=True)
        _, data = imap.search(None, "ALL")
        for number in data[0].split():
            _, parts = imap.fetch(number, "(BODY.PEEK[HEADER.FIELDS (SUBJECT DATE)])")
            for part in parts:
                if isinstance(part, tuple):
                    header = email.message_from_bytes(part[1], policy=email.policy.default)
                    lines.append(f"{header.get('Date', '?')}  {header.get('Subject', '')}")
        imap.logout()
    return lines
