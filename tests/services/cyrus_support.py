# SPDX-License-Identifier: GPL-2.0-or-later
"""A real Cyrus IMAP server for ocf:hamail:cyrus's tests, from Debian's own packages, beside dovecot.

Debian's cyrus-imapd conflicts with dovecot-imapd (both provide imap-server), which other tests need installed,
so cyrus is never installed here. Instead `cyrus_root()` unpacks Debian's cyrus packages into a private root
(CYRUS_ROOT) and writes three small wrappers there (cyrmaster, cyr_info, saslpasswd2) that set LD_LIBRARY_PATH
to the root's libraries and exec Debian's binaries; cyrus master passes that environment to every service it
starts. Once per machine it:

1. `apt-get download`s PACKAGES (cyrus-common, cyrus-imapd, cyrus-pop3d, sasl2-bin, and the three libraries
   they need that this machine lacks: libical3, libpcre3, libxapian30) into a temporary directory;
2. `dpkg-deb -x`s each into a staging directory, writes the wrappers, checks with ldd that every binary finds
   its libraries, and renames the staging directory to CYRUS_ROOT (a marker file names the packages: a changed
   list unpacks again);
3. creates the system user `cyrus` (group mail) as cyrus-common's postinst does: cyrus's programs run as that
   user and refuse root (`fatal error: must run as the Cyrus user`).

About 2 s with the packages in reach of apt; nothing is installed through dpkg and no file outside CYRUS_ROOT
changes except /etc/passwd (the user). `CyrusServer` then writes one private instance into a directory of its
own (`private_dir`: under /tmp, mode 0755, removed by the test's teardown; not under pytest's tmp_path, whose
base directory pytest resets to 0700 whenever any pytest session starts, which the cyrus user then cannot
traverse: services failed at random with "couldn't create proc directory"): imapd.conf and cyrus.conf, configdirectory, partition and sockets, imap/pop3/lmtp on 127.0.0.1 at free ports
and an LMTP unix socket, a sasldb with a probe user, another user and an admin (their INBOXes made by create_mailboxes once it runs).
"""

from __future__ import annotations

import fcntl
import glob
import imaplib
import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

from service_support import free_port, pids_of

CYRUS_ROOT = pathlib.Path("/var/cache/hamail/cyrus-root")
PACKAGES = ("cyrus-common", "cyrus-imapd", "cyrus-pop3d", "sasl2-bin", "libical3", "libpcre3", "libxapian30")
MARKER = ".hamail-unpacked"
# Debian's binaries inside the root (cyrmaster is a symlink to ../lib/cyrus/bin/master: its comm is cyrmaster).
REAL = {"cyrmaster": "usr/sbin/cyrmaster", "cyr_info": "usr/lib/cyrus/bin/cyr_info",
        "saslpasswd2": "usr/sbin/saslpasswd2"}
SERVICES_DIR = "usr/lib/cyrus/bin"
PROBE_USER, PROBE_PASSWORD = "probe", "Cyr-Probe-Pw-7"
ADMIN_USER, ADMIN_PASSWORD = "cyrusadm", "Cyr-Admin-Pw-9"
OTHER_USER, OTHER_PASSWORD = "other", "Cyr-Other-Pw-3"


def _library_path(root: pathlib.Path) -> str:
    """The root's library directories (usr/lib/<triplet> and lib/<triplet>) for LD_LIBRARY_PATH."""
    found = sorted(glob.glob(str(root / "usr/lib/*-linux-gnu")) + glob.glob(str(root / "lib/*-linux-gnu")))
    return ":".join(found)


def _write_wrappers(root: pathlib.Path, final: pathlib.Path) -> None:
    """bin/<tool>: exec Debian's binary (at its final path) with the root's libraries."""
    (root / "bin").mkdir()
    libs = _library_path(root).replace(str(root), str(final))
    for name, relative in REAL.items():
        wrapper = root / "bin" / name
        wrapper.write_text(f'#!/bin/sh\n# hamail tests: Debian\'s {name} from the private root {final}\n'
                           f'LD_LIBRARY_PATH={libs}\nexport LD_LIBRARY_PATH\nexec {final / relative} "$@"\n')
        wrapper.chmod(0o755)


def _check_libraries(root: pathlib.Path) -> None:
    """Every binary the tests run finds its shared libraries (else name what is missing)."""
    env = {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": _library_path(root)}
    binaries = [root / r for r in REAL.values()] + [root / SERVICES_DIR / n for n in ("imapd", "pop3d", "lmtpd",
                                                                                     "ctl_cyrusdb")]
    missing = []
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], env=env, capture_output=True, text=True, check=True).stdout
        missing += [f"{binary.name}: {line.split()[0]}" for line in out.splitlines() if "not found" in line]
    if missing:
        raise RuntimeError("cyrus's private root lacks libraries (add their packages to PACKAGES): "
                           + ", ".join(missing))


def _download(into: str) -> None:
    argv = ["apt-get", "download", *PACKAGES]
    result = subprocess.run(argv, cwd=into, capture_output=True, text=True)
    if result.returncode != 0:  # a fresh machine may have no package lists yet
        subprocess.run(["apt-get", "update"], capture_output=True, check=True)
        subprocess.run(argv, cwd=into, capture_output=True, text=True, check=True)


def _ensure_user() -> None:
    """The system user cyrus (group mail), as cyrus-common's postinst creates it."""
    try:
        pwd.getpwnam("cyrus")
    except KeyError:
        subprocess.run(["useradd", "--system", "--gid", "mail", "--home-dir", "/var/spool/cyrus",
                        "--no-create-home", "--shell", "/usr/sbin/nologin", "--comment", "Cyrus Mailsystem User",
                        "cyrus"], check=True)


def cyrus_root() -> pathlib.Path:
    """CYRUS_ROOT, unpacked from Debian's packages if it is not already (idempotent, safe in parallel)."""
    _ensure_user()
    marker = CYRUS_ROOT / MARKER
    wanted = " ".join(PACKAGES) + "\n"
    CYRUS_ROOT.parent.mkdir(parents=True, exist_ok=True)
    with open(CYRUS_ROOT.parent / "cyrus-root.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == wanted:
            return CYRUS_ROOT
        with tempfile.TemporaryDirectory(dir=CYRUS_ROOT.parent, prefix="cyrus-root.") as work:
            debs, staging = os.path.join(work, "debs"), pathlib.Path(work) / "root"
            os.mkdir(debs)
            staging.mkdir()
            _download(debs)
            for deb in sorted(glob.glob(os.path.join(debs, "*.deb"))):
                subprocess.run(["dpkg-deb", "-x", deb, str(staging)], check=True)
            _write_wrappers(staging, CYRUS_ROOT)
            _check_libraries(staging)
            (staging / MARKER).write_text(wanted)
            if CYRUS_ROOT.exists():
                shutil.rmtree(CYRUS_ROOT)
            staging.rename(CYRUS_ROOT)
            CYRUS_ROOT.chmod(0o755)
    return CYRUS_ROOT


def tool(name: str) -> str:
    """The wrapper of a cyrus tool in the private root (cyrmaster, cyr_info, saslpasswd2)."""
    return str(CYRUS_ROOT / "bin" / name)


def private_dir() -> pathlib.Path:
    """A new directory the cyrus user can reach (remove it with shutil.rmtree when done)."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="hamail-cyrus-test-"))
    path.chmod(0o755)
    return path


class CyrusServer:
    """One private cyrus instance under a directory: its files, ports and the agent parameters that run it."""

    def __init__(self, base: pathlib.Path) -> None:
        self.base = base
        self.root = cyrus_root()
        self.imap_port, self.pop3_port, self.lmtp_port = free_port(), free_port(), free_port()
        self.conf_dir, self.spool, self.run_dir = base / "conf", base / "spool", base / "run"
        self.imapd_conf, self.cyrus_conf = base / "imapd.conf", base / "cyrus.conf"
        self.pid_file = self.run_dir / "cyrus-master.pid"
        self.lmtp_socket = self.run_dir / "lmtp"
        self.credentials = base / "probe.cred"
        self.write()

    def service_cmd(self, program: str, *args: str) -> str:
        """A cyrus.conf cmd: the private root's program with this instance's imapd.conf (master passes no -C)."""
        return " ".join([str(self.root / SERVICES_DIR / program), "-C", str(self.imapd_conf), *args])

    def write(self, imapd_extra: str = "", services: str | None = None) -> None:
        """Write the instance (again): directories, imapd.conf, cyrus.conf, sasldb, the credentials file."""
        for directory in (self.conf_dir, self.spool, self.run_dir, self.base / "sieve"):
            directory.mkdir(parents=True, exist_ok=True)
        self.imapd_conf.write_text(f"""configdirectory: {self.conf_dir}
partition-default: {self.spool}
sievedir: {self.base / 'sieve'}
servername: localhost
admins: {ADMIN_USER}
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {self.base / 'sasldb2'}
sasl_mech_list: PLAIN LOGIN
lmtpsocket: {self.lmtp_socket}
idlesocket: {self.run_dir / 'idle'}
notifysocket: {self.run_dir / 'notify'}
proc_path: {self.run_dir / 'proc'}
mboxname_lockpath: {self.run_dir / 'lock'}
syslog_prefix: cyrus-test
lmtp_downcase_rcpt: yes
{imapd_extra}""")
        if services is None:
            # prefork=0 and -U 1 (one connection per service process): no idle service process waits on a
            # listener, so every connection needs master to fork one, and a stopped master answers nothing.
            services = f"""  imap cmd="{self.service_cmd('imapd', '-U', '1')}" listen="127.0.0.1:{self.imap_port}" prefork=0
  pop3 cmd="{self.service_cmd('pop3d', '-U', '1')}" listen="127.0.0.1:{self.pop3_port}" prefork=0
  lmtp cmd="{self.service_cmd('lmtpd', '-a', '-U', '1')}" listen="127.0.0.1:{self.lmtp_port}" prefork=0
  lmtpunix cmd="{self.service_cmd('lmtpd', '-U', '1')}" listen="{self.lmtp_socket}" prefork=0
"""
        self.cyrus_conf.write_text(f"""# hamail test instance
START {{
  recover cmd="{self.service_cmd('ctl_cyrusdb', '-r')}"
}}
SERVICES {{
{services}}}
EVENTS {{
  checkpoint cmd="{self.service_cmd('ctl_cyrusdb', '-c')}" period=30
}}
""")
        self._users()
        self.credentials.write_text(f"# probe mailbox login\nuser = {PROBE_USER}\npassword = {PROBE_PASSWORD}\n")
        self.credentials.chmod(0o600)
        subprocess.run(["chown", "-R", "cyrus:mail", str(self.base)], check=True)
        os.chown(self.credentials, 0, 0)  # the agent's file: root's, 0600, as on a node

    def _users(self) -> None:
        sasldb = self.base / "sasldb2"
        for user, password in ((PROBE_USER, PROBE_PASSWORD), (ADMIN_USER, ADMIN_PASSWORD), (OTHER_USER, OTHER_PASSWORD)):
            # -u localhost: imapd looks users up in the realm of its servername.
            subprocess.run([tool("saslpasswd2"), "-p", "-c", "-u", "localhost", "-f", str(sasldb), user],
                           input=password, text=True, check=True, capture_output=True)

    def add_imaps(self) -> int:
        """Add an imaps service (imapd -s) with a new self-signed certificate for localhost; its port."""
        cert, key = self.base / "cert.pem", self.base / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                        "/CN=localhost", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
        port = free_port()
        services = self.cyrus_conf.read_text().split("SERVICES {\n", 1)[1].split("}", 1)[0]
        services += (f'  imaps cmd="{self.service_cmd("imapd", "-s", "-U", "1")}" '
                     f'listen="127.0.0.1:{port}" prefork=0\n')
        self.write(imapd_extra=f"tls_server_cert: {cert}\ntls_server_key: {key}\n", services=services)
        return port

    def create_mailboxes(self, *users: str) -> None:
        """Create the users' INBOXes in one admin session. Debian's cyrus 3.6 draws a mailbox's unique id from
        rand() (it is built without libuuid): two INBOXes autocreated by two service processes forked from the
        same master can get the same id and then share one spool directory; one process creating both cannot."""
        client = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        try:
            client.login(ADMIN_USER, ADMIN_PASSWORD)
            for user in users:
                typ, data = client.create(f"user/{user}")
                assert typ == "OK", data
        finally:
            client.logout()

    def params(self, **extra) -> dict:
        """The agent's parameters for this instance."""
        params = {"binary": tool("cyrmaster"), "cyr_info": tool("cyr_info"), "config": str(self.cyrus_conf),
                  "imapd_conf": str(self.imapd_conf), "pid_file": str(self.pid_file),
                  "credentials_file": str(self.credentials)}
        params.update(extra)
        return {k: v for k, v in params.items() if v is not None}

    def master_pid(self) -> int | None:
        """The running master's pid (from its pid file), None when it does not run."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid in pids_of("cyrmaster") else None

    def processes(self) -> list[int]:
        """Every process of this instance: master and the services it started (their argv name our files)."""
        return [pid for comm in ("cyrmaster", "imapd", "pop3d", "lmtpd", "ctl_cyrusdb")
                for pid in pids_of(comm, str(self.base))]

    def kill_all(self) -> None:
        """Teardown: SIGCONT and SIGKILL whatever of this instance is left (also after a failed test)."""
        for _ in range(50):
            left = self.processes()
            if not left:
                return
            for pid in left:
                for sig in (signal.SIGCONT, signal.SIGKILL):
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
            time.sleep(0.1)
