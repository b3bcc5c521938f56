# SPDX-License-Identifier: GPL-2.0-or-later
"""The seeds' Galera mail cluster on the 3-node lab: what ``make lab`` runs.

Galera (a promotable ocf:hamail:galera clone, each node's datadir private) with a database VIP on a Promoted
instance, and the mail group: a mail VIP, slapd (the directory), dovecot (IMAP, POP3, LMTP), postfix (SMTP,
submission, delivering over LMTP) and nginx (the webmail front), fenced through fence_ipmi and hamail-vbmc.
The mail services' files live in the cluster's shared directory (every node sees it as /srv/hamail-lab, as
it would see a shared LUN or NFS export); their runtime files (pid files, sockets) in each node's own /run.
The crm configuration is ``lab/stacks/galera-mail.crm`` (and the same as ``galera-mail.pcs.sh``).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path

from . import galera
from .cluster import SHARED_MOUNT, Cluster
from .hostsys import LabError

STACKS = Path(__file__).resolve().parents[1] / "stacks"
CRM_FILE = STACKS / "galera-mail.crm"
DOMAIN = "example.test"
SUFFIX = "dc=example,dc=test"
ADMIN_DN = f"cn=admin,{SUFFIX}"
PROBE_USER = f"probe@{DOMAIN}"  # the agents' depth-20 probe mailbox
LAB_USER = f"lab@{DOMAIN}"  # the mailbox README's commands and the drills use
MAIL_UID = 65534  # nobody: dovecot refuses root as a mail user, and the lab needs no user of its own
MAIL_VIP_HOST, DB_VIP_HOST = 100, 101  # <subnet>.100 and <subnet>.101, as in the crm file
DEFAULT_SUBNET = "192.0.2"
RESOURCES = ("db-vip", "mail-vip", "ldap", "imap", "smtp", "webmail")
# master.cf's internal services, without chroot (the tests' private instances use them too)
POSTFIX_INTERNAL_SERVICES = """\
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
virtual unix - n n - - virtual
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""


def _sh(argv: list[str], stdin: str | None = None) -> str:
    """Run a setup command on the host; its stdout, LabError with its stderr when it fails."""
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise LabError(f"{argv[0]} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def _private(path: Path, text: str, owner: str | None = None) -> None:
    """Write a secret file created mode 0600 (never readable by others, not even for a moment)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    if owner:
        user = pwd.getpwnam(owner)
        os.chown(path, user.pw_uid, user.pw_gid)


class MailStack:
    """Stack 1's files on the shared directory, the nodes' Galera datadirs and its crm configuration.

    The drills and scripts/lab use a stack through what this class offers (its addresses and secrets,
    ``prepare``, ``crm_config``, ``ready``, ``rejoined``); the shared-storage stack is a subclass.
    """

    name = "galera"
    title = "the Galera mail cluster"
    crm_file = CRM_FILE
    resources = RESOURCES
    vip_resources = ("mail-vip", "db-vip")  # the resources the drills follow as they move
    exclusive_mount: str | None = None  # a mount point that must never be mounted on two nodes at once
    directory_lookups = True  # dovecot and postfix find the mailboxes in slapd (else in a passwd-file)

    def __init__(self, cluster: Cluster) -> None:
        if not cluster.shared:
            raise LabError("the mail stack needs a cluster started with shared=True")
        self.cluster = cluster
        self.root = cluster.shared_dir  # host path; the nodes see it as SHARED_MOUNT

    # ------------------------------------------------------------ addresses and secrets
    @property
    def mail_vip(self) -> str:
        """The mail service address (SMTP 25/587, IMAP 143, POP3 110, HTTP 80)."""
        return f"{self.cluster.subnet}.{MAIL_VIP_HOST}"

    @property
    def db_vip(self) -> str:
        """The database address (MariaDB 3306 on a Promoted Galera node)."""
        return f"{self.cluster.subnet}.{DB_VIP_HOST}"

    def node_path(self, host_path: Path) -> str:
        """The path a node sees for a file of the shared directory."""
        return str(Path(SHARED_MOUNT) / host_path.relative_to(self.root))

    def credentials(self, user: str = LAB_USER) -> tuple[str, str]:
        """(user, password) of a mailbox, read from its 0600 credentials file."""
        name = "probe.cred" if user == PROBE_USER else "lab.cred"
        fields = dict(line.split(" = ", 1) for line in (self.root / "dovecot" / name).read_text().splitlines()
                      if " = " in line)
        return fields["user"], fields["password"]

    def db_password(self) -> str:
        """The password of the 'lab' database user (for writers through the database VIP)."""
        return (self.root / "db.pw").read_text().strip()

    # ------------------------------------------------------------ files
    def prepare(self) -> None:
        """Write every service's configuration on the shared directory and initialise each node's datadir."""
        self._empty_root()
        mailboxes = self._mailboxes()
        self._ldap(mailboxes)
        self._dovecot(mailboxes)
        self._postfix()
        self._nginx()
        _private(self.root / "db.pw", secrets.token_urlsafe(12) + "\n")
        for node in self.cluster.nodes:
            galera.init_node(self.cluster, node, bind="0.0.0.0")  # clients come through the database VIP

    def _empty_root(self) -> None:
        """An empty shared directory the services' users can walk down to."""
        # Empty it, never replace it: the running nodes have this very directory bind-mounted.
        self.root.mkdir(parents=True, exist_ok=True)
        for entry in self.root.iterdir():
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        os.chmod(self.root, 0o755)
        for folder in (self.cluster.workdir, *self.cluster.workdir.parents):
            if str(folder) in ("/", "/tmp", "/var/tmp"):
                break
            os.chmod(folder, os.stat(folder).st_mode | 0o711)  # the daemons' users walk down to the files
        (self.root / "log").mkdir()

    def _mail_store(self) -> str:
        """The directory (as the nodes see it) holding the mailboxes, created for the mail user."""
        mail = self.root / "mail"
        mail.mkdir()
        os.chown(mail, MAIL_UID, MAIL_UID)
        return self.node_path(mail)

    def _queue(self) -> tuple[str, str]:
        """Postfix's queue_directory and data_directory as the nodes see them, created."""
        spool, data = self.root / "postfix" / "spool", self.root / "postfix" / "data"
        for folder in (spool, data):
            folder.mkdir(parents=True)
        user = pwd.getpwnam("postfix")
        os.chown(data, user.pw_uid, user.pw_gid)
        return self.node_path(spool), self.node_path(data)

    def _mailboxes(self) -> dict[str, str]:
        """{address: password} of the two mailboxes, each also in a 0600 credentials file for its users."""
        base = self.root / "dovecot"
        base.mkdir()
        mailboxes = {}
        for user, cred in ((LAB_USER, "lab.cred"), (PROBE_USER, "probe.cred")):
            mailboxes[user] = secrets.token_urlsafe(12)
            _private(base / cred, f"user = {user}\npassword = {mailboxes[user]}\n")
        return mailboxes

    def _ldap(self, mailboxes: dict[str, str]) -> None:
        """slapd.conf, an mdb database holding the domain and its mailboxes (with their password hashes), the
        bind password of the monitor and of dovecot's and postfix's lookups."""
        base = self.root / "ldap"
        (base / "db").mkdir(parents=True)
        password = secrets.token_urlsafe(12)
        hashed = _sh(["slappasswd", "-s", password]).strip()
        conf = base / "slapd.conf"
        conf.write_text(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n"
            "include /etc/ldap/schema/inetorgperson.schema\n"
            "pidfile /run/hamail-slapd.pid\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n\n"
            f'database mdb\nsuffix "{SUFFIX}"\nrootdn "{ADMIN_DN}"\nrootpw {hashed}\n'
            f"directory {self.node_path(base / 'db')}\nmaxsize 10485760\n"
            # password hashes are for binding only, never for reading (the lookups bind as the root DN)
            "access to attrs=userPassword by anonymous auth by * none\naccess to * by * read\n")
        conf.chmod(0o600)  # it holds the root DN's password hash
        entries = (f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: example\n\n"
                   f"dn: ou=Users,{SUFFIX}\nobjectClass: organizationalUnit\nou: Users\n")
        for user, secret in mailboxes.items():
            local = user.split("@")[0]
            entries += (f"\ndn: mail={user},ou=Users,{SUFFIX}\nobjectClass: inetOrgPerson\ncn: {local}\n"
                        f"sn: {local}\nmail: {user}\nuserPassword: {_sh(['slappasswd', '-s', secret]).strip()}\n")
        # slapadd writes the database at the path in slapd.conf, which only the nodes see: give it the host's
        # path for this one run.
        host_conf = base / "slapadd.conf"
        host_conf.write_text(conf.read_text().replace(self.node_path(base / "db"), str(base / "db")))
        try:
            _sh(["slapadd", "-f", str(host_conf), "-b", SUFFIX], stdin=entries)
        finally:
            host_conf.unlink()
        _private(base / "bind.pw", password + "\n")

    def _dovecot(self, mailboxes: dict[str, str]) -> None:
        """dovecot.conf (IMAP, POP3 on every address, LMTP on loopback); mailboxes looked up in slapd, or in a
        passwd-file for a stack without a directory."""
        base = self.root / "dovecot"
        mail = self._mail_store()
        if self.directory_lookups:
            _private(base / "ldap.conf.ext", f"""\
hosts = 127.0.0.1
ldap_version = 3
dn = {ADMIN_DN}
dnpass = {(self.root / 'ldap' / 'bind.pw').read_text().strip()}
base = ou=Users,{SUFFIX}
pass_filter = (&(objectClass=inetOrgPerson)(mail=%u))
pass_attrs = mail=user,userPassword=password
default_pass_scheme = SSHA
user_filter = (&(objectClass=inetOrgPerson)(mail=%u))
user_attrs = =uid={MAIL_UID},=gid={MAIL_UID},=home={mail}/%n
""", owner="dovecot")
            lookups = "".join(f"{kind} {{\n  driver = ldap\n  args = {self.node_path(base / 'ldap.conf.ext')}\n}}\n"
                              for kind in ("passdb", "userdb"))
        else:
            users = [f"{user}:{_sh(['doveadm', 'pw', '-s', 'SHA512-CRYPT', '-p', secret]).strip()}:"
                     f"{MAIL_UID}:{MAIL_UID}::{mail}/{user.split('@')[0]}" for user, secret in mailboxes.items()]
            _private(base / "users", "\n".join(users) + "\n", owner="dovecot")
            lookups = (f"passdb {{\n  driver = passwd-file\n"
                       f"  args = scheme=SHA512-CRYPT username_format=%u {self.node_path(base / 'users')}\n}}\n"
                       f"userdb {{\n  driver = passwd-file\n"
                       f"  args = username_format=%u {self.node_path(base / 'users')}\n}}\n")
        (base / "dovecot.conf").write_text(f"""\
# ocf:hamail:dovecot's configuration in the mail lab
base_dir = /run/hamail-dovecot
state_dir = /run/hamail-dovecot-state
instance_name = hamail-lab
protocols = imap pop3 lmtp
listen = *
log_path = {self.node_path(self.root / 'log')}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 100
# sdbox, not Maildir: Maildir guards its UID list with a dotlock file naming the host, and a node powered off
# while holding it leaves a lock no other host can prove stale, so IMAP on the node taking over hangs for
# Dovecot's 2-minute stale timeout (seen in the power-off drill). dbox locks with fcntl, which die with the node.
mail_location = sdbox:~/mail
{lookups}service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = 24
  }}
}}
""")

    def _postfix(self) -> None:
        """main.cf and master.cf: SMTP and submission on every address, the domain delivered to dovecot's LMTP."""
        etc = self.root / "postfix" / "etc"
        etc.mkdir(parents=True)
        spool, data = self._queue()
        mailboxes = ""
        if self.directory_lookups:
            # Only the addresses the directory knows are accepted (others are refused at RCPT, not bounced).
            maps = etc / "ldap-mailboxes.cf"
            _private(maps, f"server_host = ldap://127.0.0.1\nversion = 3\nsearch_base = ou=Users,{SUFFIX}\n"
                           f"query_filter = (&(objectClass=inetOrgPerson)(mail=%s))\nresult_attribute = mail\n"
                           f"bind = yes\nbind_dn = {ADMIN_DN}\n"
                           f"bind_pw = {(self.root / 'ldap' / 'bind.pw').read_text().strip()}\n")
            os.chown(maps, 0, pwd.getpwnam("postfix").pw_gid)
            maps.chmod(0o640)  # postfix's lookup processes read it as the postfix group
            mailboxes = f"virtual_mailbox_maps = ldap:{self.node_path(maps)}\n"
        (etc / "master.cf").write_text("smtp inet n - n - - smtpd\n"
                                       "submission inet n - n - - smtpd -o syslog_name=postfix/submission\n"
                                       + POSTFIX_INTERNAL_SERVICES)
        (etc / "main.cf").write_text(f"""\
# ocf:hamail:postfix's configuration in the mail lab
compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
inet_interfaces = all
inet_protocols = ipv4
myhostname = mail.{DOMAIN}
mydomain = {DOMAIN}
mydestination =
mynetworks = 127.0.0.0/8 {self.cluster.subnet}.0/24
virtual_mailbox_domains = {DOMAIN}
{mailboxes}virtual_transport = lmtp:inet:127.0.0.1:24
maillog_file = {self.node_path(self.root / 'log')}/postfix.log
maillog_file_prefixes = {SHARED_MOUNT}
alias_maps =
alias_database =
smtputf8_enable = no
smtpd_tls_security_level = none
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# A mail deferred while dovecot moved is retried within seconds, not after Postfix's default 5 minutes.
queue_run_delay = 10s
minimal_backoff_time = 10s
maximal_backoff_time = 60s
""")

    def _nginx(self) -> None:
        """nginx.conf: the webmail front page on port 80 and stub_status for the monitor."""
        base = self.root / "nginx"
        www = self.root / "www"
        (base / "tmp").mkdir(parents=True)
        www.mkdir()
        (www / "index.html").write_text("<html><body><h1>hamail lab webmail</h1></body></html>\n")
        temps = "".join(f"    {kind}_temp_path {self.node_path(base / 'tmp')};\n"
                        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (base / "nginx.conf").write_text(
            "# ocf:hamail:nginx's configuration in the mail lab\n"
            "worker_processes 1;\npid /run/hamail-nginx.pid;\n"
            f"error_log {self.node_path(self.root / 'log')}/nginx-error.log;\nuser www-data;\n"
            "events { worker_connections 64; }\n"
            f"http {{\n    access_log off;\n{temps}"
            f"    server {{\n        listen 80;\n        root {self.node_path(www)};\n"
            "        location = /nginx_status { stub_status; allow 127.0.0.1; deny all; }\n"
            "    }\n}\n")

    # ------------------------------------------------------------ configuration
    def crm_config(self) -> str:
        """The stack's crm configuration for this cluster's subnet (the file is written for 192.0.2)."""
        text = self.crm_file.read_text()
        if self.cluster.subnet != DEFAULT_SUBNET:
            text = text.replace(f"ip={DEFAULT_SUBNET}.", f"ip={self.cluster.subnet}.")
        return text

    def create_db_user(self) -> None:
        """Create the 'lab' database user the drills' writers use through the database VIP (SQL on stdin)."""
        sql = (f"CREATE USER IF NOT EXISTS 'lab'@'%' IDENTIFIED BY '{self.db_password()}';\n"
               "GRANT ALL ON labdb.* TO 'lab'@'%';\nCREATE DATABASE IF NOT EXISTS labdb;\n")
        done = self.cluster.run(self.cluster.first_running(), ["mariadb", f"--socket={galera.RUN}/mysqld.sock"],
                                input=sql, timeout=60)
        if done.returncode != 0:
            raise LabError(f"creating the lab database user failed: {done.stderr.strip()}")

    def release(self) -> None:
        """Give back what the stack holds on the host beyond the workdir (nothing for this stack)."""

    def usage(self) -> str:
        """Where the stack answers, for the message `make lab` ends with."""
        return (f"The mail cluster answers on {self.mail_vip} (SMTP 25, submission 587, IMAP 143, POP3 110, "
                f"HTTP 80)\nand MariaDB/Galera on {self.db_vip}:3306.")

    # ------------------------------------------------------------ health, as the drills judge it
    def ready(self, status) -> bool:
        """Every Galera instance Promoted on the online nodes not in standby, and the stack in full (a
        hamail.pacemaker ClusterStatus)."""
        serving = self._in_full(status)
        return bool(serving) and set(serving) <= self._promoted(status)

    def _in_full(self, status) -> list[str]:
        """The nodes serving (online, not in standby) when at least two do and every resource of the stack and
        the fence device of every online node run settled; [] otherwise."""
        online = status.online_nodes()
        serving = [n for n in online if not status.nodes[n].standby]
        active = {r.id for r in status.resources if r.settled_active}
        fences = {f"fence-{n}" for n in online}
        return serving if len(serving) >= 2 and set(self.resources) | fences <= active else []

    def rejoined(self, status, node: str) -> bool:
        """True once a node that was away serves again (for Galera: its instance is Promoted)."""
        return node in self._promoted(status)

    @staticmethod
    def _promoted(status) -> set[str]:
        """The nodes where the Galera clone is Promoted."""
        return {n for r in status.instances("db-clone") if r.role == "Promoted" for n in r.nodes}
