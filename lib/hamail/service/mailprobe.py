# SPDX-License-Identifier: GPL-2.0-or-later
"""Depth 20 for the mail agents: deliver a probe message (SMTP or LMTP) to a probe mailbox, read it back over
IMAP, delete it. Credentials come from a file of mode 0600 (`user = ...`, `password = ...`), never from argv.

Each probe message carries a unique token in its Subject and an X-Hamail-Probe header; the read-back deletes
every probe message it finds, also those an earlier, interrupted monitor left, so the mailbox stays empty.
"""

from __future__ import annotations

from hamail.ocf import NotInstalled, OCFError, OCFExit
from hamail.secret import Secret
from hamail.service.probes import Endpoint, ProbeFailed, TLSPolicy

__all__ = ["MailCredentials", "load_credentials", "round_trip", "PROBE_HEADER"]

PROBE_HEADER = "X-Hamail-Probe"


class MailCredentials:
    """A mailbox login: user and password (a Secret)."""

    __slots__ = ("user", "password")

    def __init__(self, user: str, password: Secret) -> None:
        self.user, self.password = user, password

    def __repr__(self) -> str:
        return f"MailCredentials({self.user!r}, password=***)"


def load_credentials(path: str, parameter: str) -> MailCredentials:
    """user/password from a private file; NotInstalled when it cannot be read here, ERR_CONFIGURED when it is wrong."""
    from hamail.system.files import PrivateFileError, read_private
    try:
        text = read_private(path)
    except PrivateFileError as exc:
        raise NotInstalled(f"parameter {parameter}: {exc}") from None
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.strip().startswith("#"):
            values[key.strip().lower()] = value.strip()
    user, password = values.get("user", ""), values.get("password", values.get("pass", ""))
    if not user or not password:
        raise OCFError(OCFExit.ERR_CONFIGURED, f"parameter {parameter}: {path} must hold 'user = ...' and "
                       "'password = ...' lines")
    return MailCredentials(user, Secret(password))


def _message(sender: str, recipient: str, token: str) -> bytes:
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid
    msg = EmailMessage()
    msg["From"], msg["To"] = sender, recipient
    msg["Subject"] = f"hamail monitor probe {token}"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid("hamail-probe")
    msg[PROBE_HEADER] = token
    msg.set_content("A monitor of the cluster sent this message to check delivery end to end; it deletes it.\n")
    return msg.as_bytes()


def deliver(endpoint: Endpoint, deadline, sender: str, recipient: str, token: str, *, lmtp: bool = False,
            helo: str = "localhost") -> None:
    """Hand the probe message to an SMTP or LMTP server; ProbeFailed names the step that failed."""
    import smtplib
    protocol = "LMTP" if lmtp else "SMTP"
    where = str(endpoint)
    timeout = max(0.1, deadline.remaining())
    client = smtplib.LMTP(local_hostname=helo, timeout=timeout) if lmtp else smtplib.SMTP(local_hostname=helo,
                                                                                          timeout=timeout)
    host, port = (endpoint.path, 0) if endpoint.path else (endpoint.host, endpoint.port)
    try:
        try:
            client.connect(host, port)
            refused = client.sendmail(sender, [recipient], _message(sender, recipient, token))
        except smtplib.SMTPRecipientsRefused as exc:
            code, answer = exc.recipients.get(recipient, (0, b""))
            raise ProbeFailed(f"{protocol} RCPT TO", where, f"{recipient} refused: {code} "
                              f"{answer.decode(errors='replace')[:200]}") from None
        except smtplib.SMTPResponseException as exc:
            raise ProbeFailed(f"{protocol} delivery", where,
                              f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace')[:200]}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ProbeFailed(f"{protocol} delivery", where, f"{type(exc).__name__}: {exc}"[:300]) from None
        if refused:
            raise ProbeFailed(f"{protocol} RCPT TO", where, f"{recipient} refused")
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            pass  # the message is accepted; a lost QUIT changes nothing
    finally:
        client.close()


def read_back(endpoint: Endpoint, deadline, credentials: MailCredentials, token: str, *, ssl_wrapped: bool = False,
              tls: TLSPolicy | None = None, mailbox: str = "INBOX") -> None:
    """Wait (bounded) until the probe message is in the mailbox over IMAP, then delete every probe message."""
    import imaplib
    from hamail.service.probes import Steps, greeted
    where = str(endpoint)

    def step(name: str, call):
        try:
            typ, data = call()
        except (OSError, imaplib.IMAP4.error) as exc:
            message = " ".join(str(exc).split())[:300]
            raise ProbeFailed(f"IMAP {name}", where, f"{type(exc).__name__}: {message}") from None
        if typ != "OK":
            raise ProbeFailed(f"IMAP {name}", where, f"answered {typ} {data!r}"[:300])
        return data
    client = greeted(Steps("IMAPS" if ssl_wrapped else "IMAP", where), endpoint, deadline,
                     imaplib.IMAP4_SSL if ssl_wrapped else imaplib.IMAP4, tls, "ssl_context" if ssl_wrapped else "")
    try:
        step("LOGIN", lambda: client.login(credentials.user, credentials.password.reveal()))
        delay = 0.05
        while True:
            step("SELECT", lambda: client.select(mailbox))
            found = step("SEARCH", lambda: client.search(None, "HEADER", PROBE_HEADER, token))
            if found and found[0].split():
                break
            if deadline.remaining() <= delay:
                raise ProbeFailed("IMAP SEARCH", where, f"the probe message {token} did not arrive in "
                                  f"{credentials.user}'s {mailbox} before the deadline")
            deadline.sleep(delay)
            delay = min(delay * 1.6, 0.5)
        # imaplib sends arguments unquoted: an empty string must be spelled '""' (every message with the header).
        stale = step("SEARCH", lambda: client.search(None, "HEADER", PROBE_HEADER, '""'))
        numbers = b",".join(stale[0].split()) if stale and stale[0] else b""
        if numbers:
            step("STORE", lambda: client.store(numbers.decode(), "+FLAGS.SILENT", r"(\Deleted)"))
            step("EXPUNGE", client.expunge)
        # LOGOUT answers BYE, not OK (imaplib returns it as the type): the work is done, only a lost line is left.
        try:
            client.logout()
        except (OSError, imaplib.IMAP4.error):
            pass
    finally:
        try:
            client.shutdown()
        except Exception:  # LOGOUT already closed it
            pass


def round_trip(deliver_to: Endpoint, imap_at: Endpoint, deadline, credentials: MailCredentials, recipient: str, *,
               lmtp: bool = False, imap_ssl: bool = False, tls: TLSPolicy | None = None,
               sender: str = "") -> None:
    """Deliver a probe message and read it back (then delete it); ProbeFailed at the first step that fails."""
    import secrets
    token = secrets.token_hex(8)
    deliver(deliver_to, deadline, sender or recipient, recipient, token, lmtp=lmtp)
    read_back(imap_at, deadline, credentials, token, ssl_wrapped=imap_ssl, tls=tls)
