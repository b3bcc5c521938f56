# SPDX-License-Identifier: GPL-2.0-or-later
"""A private Dovecot and a private Postfix for the mail agents' tests, from Debian's packages, on 127.0.0.1.

DovecotLab: its own dovecot.conf (no include of /etc/dovecot), base_dir, imap/pop3/lmtp listeners on free ports
(imaps/pop3s too with tls=True, from a self-signed certificate for 127.0.0.1), a passwd-file userdb with one
probe user whose Maildir is under the lab, and the probe user's credentials file (mode 0600).
PostfixLab: its own config_directory (main.cf, master.cf with an smtp and a submission smtpd on free ports, no
chroot), queue_directory and data_directory, inet_interfaces=127.0.0.1, the probe domain delivered over LMTP
to a given port (a DovecotLab's). The agents start and stop the daemons; kill() removes whatever is left of one
(also a SIGSTOPped one), so a failing test leaves nothing running.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import pwd
import signal
import subprocess

from hamail_lab.mailstack import POSTFIX_INTERNAL_SERVICES
from service_support import free_port, ocf, pids_of, reason, wait_for

DOMAIN = "example.test"
PROBE_USER = f"probe@{DOMAIN}"
PROBE_PASSWORD = "Lab-Mail-Pw-4417"
MAIL_UID = 65534  # nobody: dovecot refuses root as a mail user, and the lab needs no user of its own
POSTFIX_SERVICES = POSTFIX_INTERNAL_SERVICES


def sh(*argv: str, stdin: str | None = None) -> str:
    """Run a setup command; its stdout (the test fails with its stderr when it fails)."""
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{argv}: {done.stderr}"
    return done.stdout


def traversable(path: pathlib.Path) -> None:
    """Let the daemons' users (dovecot, postfix, nobody) walk down to path: pytest makes its base 0700."""
    for folder in [path, *path.parents]:
        if str(folder) in ("/", "/tmp"):
            break
        os.chmod(folder, os.stat(folder).st_mode | 0o711)


def self_signed(base: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """A self-signed certificate for 127.0.0.1 (also its own CA file) and its key."""
    cert, key = base / "tls.crt", base / "tls.key"
    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
       "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert))
    os.chmod(key, 0o644)  # the lab's throwaway key: postfix's smtpd reads it after dropping privileges
    return cert, key


def _with_groups(leaders: list[int]) -> list[int]:
    """The pids and every process in their process groups."""
    groups = set()
    for pid in leaders:
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:
            pass
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.getpgid(int(name)) in groups:
                    members.append(int(name))
            except ProcessLookupError:
                continue
    return sorted(set(leaders) | set(members))


def alive(pid: int) -> bool:
    """Whether pid runs (a zombie has exited: PID 1 here may reap late or never)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def signal_all(pids, sig) -> None:
    """Send sig to every pid still there."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def killed_master(run, lab) -> None:
    """The scenario of a master killed with SIGKILL (run: the test's runner of agent actions on lab): a probe
    answers 7, a recurring monitor an error naming the dead pid, stop succeeds."""
    master = lab.master()
    os.kill(master, signal.SIGKILL)
    wait_for(lambda: not alive(master), what="the killed master to exit")
    assert run(lab, "monitor").returncode == 7
    result = run(lab, "monitor", interval_ms=10000)
    assert result.returncode == 1 and f"names pid {master}: it died" in reason(result), result.stderr
    assert run(lab, "stop").returncode == 0


def term_ignored(run, lab, stop_these: list[int]) -> None:
    """The scenario of a daemon that ignores TERM (stop_these SIGSTOPped): stop escalates to the process group
    and nothing of the instance is left."""
    members = lab.processes()
    signal_all(stop_these, signal.SIGSTOP)
    result = run(lab, "stop", timeout_ms=8000)
    assert result.returncode == 0, result.stderr
    assert "sending SIGTERM to its process group" in result.stderr
    assert [pid for pid in members if alive(pid)] == []


def missing_binary(run, lab, name: str) -> None:
    """The scenario of a binary absent on this node: a probe answers 7, start 5 naming it."""
    missing = str(lab.base / f"no-such-{name}")
    assert run(lab, "monitor", binary=missing).returncode == 7
    result = run(lab, "start", binary=missing)
    assert result.returncode == 5 and f"no-such-{name} is not installed" in reason(result)


def _kill_group_of(pids: list[int]) -> None:
    """SIGCONT and SIGKILL each pid's process group (the daemon's master and its children)."""
    for pid in pids:
        try:
            group = os.getpgid(pid)
        except ProcessLookupError:
            continue
        if group in (0, 1, os.getpgrp()):
            continue
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                pass


class DovecotLab:
    """One Dovecot instance's files under base."""

    def __init__(self, base: pathlib.Path, *, tls: bool = False) -> None:
        self.base = pathlib.Path(base)
        self.etc, self.run, self.mail = self.base / "etc", self.base / "run", self.base / "mail"
        for folder in (self.etc, self.run, self.mail):
            folder.mkdir(parents=True, exist_ok=True)
        os.chown(self.mail, MAIL_UID, MAIL_UID)
        traversable(self.base)
        self.imap, self.pop3, self.lmtp = free_port(), free_port(), free_port()
        self.imaps = self.pop3s = 0
        self.cert = self.key = None
        if tls:
            self.cert, self.key = self_signed(self.etc)
            self.imaps, self.pop3s = free_port(), free_port()
        hashed = sh("doveadm", "pw", "-s", "SHA512-CRYPT", "-p", PROBE_PASSWORD).strip()
        self.users = self.etc / "users"
        self.users.write_text(f"{PROBE_USER}:{hashed}:{MAIL_UID}:{MAIL_UID}::{self.mail / 'probe'}\n")
        self.config = self.etc / "dovecot.conf"
        self.config.write_text(self._conf())
        self.credentials = self.etc / "probe.cred"
        self.credentials.write_text(f"user = {PROBE_USER}\npassword = {PROBE_PASSWORD}\n")
        self.credentials.chmod(0o600)

    def _conf(self) -> str:
        tls = (f"ssl = yes\nssl_cert = <{self.cert}\nssl_key = <{self.key}\n" if self.cert else "ssl = no\n")
        return f"""\
base_dir = {self.run}
state_dir = {self.base / 'state'}
instance_name = hamail-test-{self.imap}
protocols = imap pop3 lmtp
listen = 127.0.0.1
log_path = {self.base / 'dovecot.log'}
{tls}disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 100
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=SHA512-CRYPT username_format=%u {self.users}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.users}
}}
service imap-login {{
  inet_listener imap {{
    port = {self.imap}
  }}
  inet_listener imaps {{
    port = {self.imaps}
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.pop3}
  }}
  inet_listener pop3s {{
    port = {self.pop3s}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.lmtp}
  }}
}}
"""

    def params(self, **extra) -> dict:
        """The agent's parameters for this instance (None values are left out)."""
        base = {"config_file": str(self.config), "credentials_file": str(self.credentials)}
        base.update(extra)
        return {k: v for k, v in base.items() if v is not None}

    @property
    def pid_file(self) -> pathlib.Path:
        """The master's pid file (in base_dir)."""
        return self.run / "master.pid"

    def master(self) -> int | None:
        """The running master's pid, found by its command line (which names the lab's configuration)."""
        found = pids_of("dovecot", under=str(self.config))
        return found[0] if found else None

    def processes(self) -> list[int]:
        """Pids of this instance's processes: the master and its process group."""
        return _with_groups(pids_of("dovecot", under=str(self.config)))

    def messages(self) -> list[pathlib.Path]:
        """The messages in the probe user's INBOX (new and cur)."""
        box = self.mail / "probe" / "Maildir"
        return [p for sub in ("new", "cur") for p in (box / sub).glob("*") if p.is_file()]

    def kill(self) -> None:
        """Remove whatever is left of this instance (also stopped processes)."""
        _kill_group_of(pids_of("dovecot", under=str(self.config)))


class PostfixLab:
    """One Postfix instance's files under base, delivering the probe domain over LMTP to lmtp_port."""

    def __init__(self, base: pathlib.Path, lmtp_port: int, *, tls: bool = False) -> None:
        self.base = pathlib.Path(base)
        self.conf, self.spool, self.data = self.base / "etc", self.base / "spool", self.base / "data"
        for folder in (self.conf, self.spool, self.data):
            folder.mkdir(parents=True, exist_ok=True)
        postfix = pwd.getpwnam("postfix")
        os.chown(self.data, postfix.pw_uid, postfix.pw_gid)
        traversable(self.base)
        self.smtp, self.submission, self.lmtp_port = free_port(), free_port(), lmtp_port
        self.cert = self.key = None
        if tls:
            self.cert, self.key = self_signed(self.conf)
        self.log = self.base / "postfix.log"
        self.main_cf = self.conf / "main.cf"
        self.main_cf.write_text(self._main())
        (self.conf / "master.cf").write_text(
            f"127.0.0.1:{self.smtp} inet n - n - - smtpd\n"
            f"127.0.0.1:{self.submission} inet n - n - - smtpd -o syslog_name=postfix/submission\n"
            + POSTFIX_SERVICES)

    def _main(self) -> str:
        tls = (f"smtpd_tls_cert_file = {self.cert}\nsmtpd_tls_key_file = {self.key}\n"
               "smtpd_tls_security_level = may\n" if self.cert else "smtpd_tls_security_level = none\n")
        return f"""\
compatibility_level = 3.6
queue_directory = {self.spool}
data_directory = {self.data}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.{DOMAIN}
mydomain = {DOMAIN}
mydestination =
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = {DOMAIN}
virtual_transport = lmtp:inet:127.0.0.1:{self.lmtp_port}
maillog_file = {self.log}
maillog_file_prefixes = {self.base}
alias_maps =
alias_database =
smtputf8_enable = no
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
{tls}"""

    def params(self, dovecot: DovecotLab | None = None, **extra) -> dict:
        """The agent's parameters for this instance, with the depth-20 probe through dovecot when given."""
        base = {"config_dir": str(self.conf)}
        if dovecot is not None:
            base.update(probe_address=PROBE_USER, probe_imap=f"127.0.0.1:{dovecot.imap}",
                        credentials_file=str(dovecot.credentials))
        base.update(extra)
        return {k: v for k, v in base.items() if v is not None}

    @property
    def pid_file(self) -> pathlib.Path:
        """The master's pid file (queue_directory/pid/master.pid)."""
        return self.spool / "pid" / "master.pid"

    def processes(self) -> list[int]:
        """Pids of this instance's processes: the master (MAIL_CONFIG in its environment names the lab's
        configuration directory; its command line does not) and its process group."""
        masters = []
        for pid in pids_of("master"):
            try:
                with open(f"/proc/{pid}/environ", "rb") as handle:
                    environ = handle.read().split(b"\0")
            except OSError:
                continue
            if f"MAIL_CONFIG={self.conf}".encode() in environ:
                masters.append(pid)
        return _with_groups(masters)

    def master(self) -> int | None:
        """The running master's pid."""
        found = [pid for pid in self.processes() if pid in pids_of("master")]
        return found[0] if found else None

    def kill(self) -> None:
        """Remove whatever is left of this instance (also stopped processes)."""
        _kill_group_of(self.processes())


@contextlib.contextmanager
def dovecot_instance(tmp_path):
    """A DovecotLab (not started); whatever of it runs afterwards is stopped and killed."""
    lab = DovecotLab(tmp_path / "dc")
    lab.rsctmp = tmp_path / "rsc"
    try:
        yield lab
    finally:
        ocf("dovecot", "stop", lab.params(), rsctmp=lab.rsctmp)
        lab.kill()


@contextlib.contextmanager
def mail_instances(tmp_path):
    """A DovecotLab and a PostfixLab delivering to its LMTP port (neither started); both cleaned up after."""
    dovecot = DovecotLab(tmp_path / "dc")
    postfix = PostfixLab(tmp_path / "pf", dovecot.lmtp)
    dovecot.rsctmp = postfix.rsctmp = tmp_path / "rsc"
    try:
        yield dovecot, postfix
    finally:
        ocf("postfix", "stop", postfix.params(), rsctmp=postfix.rsctmp)
        ocf("dovecot", "stop", dovecot.params(), rsctmp=dovecot.rsctmp)
        postfix.kill()
        dovecot.kill()
