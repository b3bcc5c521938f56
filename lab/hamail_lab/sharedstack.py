# SPDX-License-Identifier: GPL-2.0-or-later
"""Stack 2, the shared-storage mail cluster (BlueMind style, seed 004; the Kopano guide's first design).

One block device every node reaches (a loop device on the host over a sparse file in the workdir, with an
ext4 filesystem labelled ``hamail-<prefix>``) holds the data the seed lists for shared storage: the MariaDB
datadir, the mail store and Postfix's queue. One group runs it all on one node: ocf:hamail:Filesystem mounts
the device by label at /srv/hamail-data, then the mail VIP, ocf:hamail:mysql, dovecot and postfix. The
services' configuration files sit in the lab's shared directory (as the seed keeps /etc synchronised between
the servers). Fencing is on: the filesystem must never be mounted on two nodes at once, which the drills
watch continuously. The crm configuration is ``lab/stacks/shared-mail.crm`` (and ``shared-mail.pcs.sh``).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

from .hostsys import LabError
from .mailstack import MAIL_UID, STACKS, MailStack, _private, _sh

DATA_MOUNT = "/srv/hamail-data"  # inside the node running the group: the shared filesystem
RESOURCES = ("shared-fs", "mail-vip", "db", "imap", "smtp")
DISK_SIZE = 512 * 1024 * 1024  # sparse: MariaDB's datadir, a few thousand mails and the queue
DEFAULT_LABEL = "hamail-hml"  # the label the crm file names: make lab's own prefix
MYSQL_RUN = "/run/hamail-mysql"
# Formatting and first use happen in a private mount namespace of the host: the filesystem is never mounted
# where the host or a node could see it. $1 device, $2 mount point; the database user's SQL arrives on stdin.
INIT_SCRIPT = """\
set -eu
mount "$1" "$2"
trap 'umount "$2"' EXIT
mkdir "$2/mail" "$2/postfix" "$2/postfix/spool" "$2/postfix/data"
chown {mail_uid}:{mail_uid} "$2/mail"
chown postfix:postfix "$2/postfix/data"
mariadb-install-db --no-defaults --datadir="$2/mysql" --user=mysql --skip-test-db \\
    --auth-root-authentication-method=socket >/dev/null
mariadbd --no-defaults --bootstrap --datadir="$2/mysql" --user=mysql --log-error="$2/mysql-bootstrap.log"
"""


class SharedStack(MailStack):
    """The shared-storage stack's disk, files and crm configuration."""

    name = "shared"
    title = "the shared-storage mail cluster"
    crm_file = STACKS / "shared-mail.crm"
    resources = RESOURCES
    vip_resources = ("mail-vip",)
    exclusive_mount = DATA_MOUNT
    directory_lookups = False  # no directory in this stack: dovecot's passwd-file, postfix's domain

    @property
    def db_vip(self) -> str:
        """The database answers on the mail VIP: one group, one address."""
        return self.mail_vip

    @property
    def label(self) -> str:
        """The filesystem label, unique per lab prefix (two labs on one host never mount each other's disk)."""
        return f"hamail-{self.cluster.prefix}"

    @property
    def image(self) -> Path:
        """The sparse file behind the loop device."""
        return self.cluster.workdir / "shared-disk.img"

    # ------------------------------------------------------------ files and the disk
    def prepare(self) -> None:
        """Write the services' configuration on the shared directory; make and fill the shared disk."""
        self._empty_root()
        self._dovecot(self._mailboxes())
        self._postfix()
        self._mysql()
        _private(self.root / "db.pw", secrets.token_urlsafe(12) + "\n")
        self._disk()

    def _mail_store(self) -> str:
        """The mail store is on the shared filesystem (created when the disk is made)."""
        return f"{DATA_MOUNT}/mail"

    def _queue(self) -> tuple[str, str]:
        """Postfix's queue and data directories are on the shared filesystem."""
        return f"{DATA_MOUNT}/postfix/spool", f"{DATA_MOUNT}/postfix/data"

    def _mysql(self) -> None:
        """my.cnf for ocf:hamail:mysql: datadir on the shared filesystem, socket and pid in the node's /run."""
        base = self.root / "mysql"
        base.mkdir()
        (base / "my.cnf").write_text(f"""\
# ocf:hamail:mysql's configuration in the shared-storage lab (the datadir is on the shared filesystem)
[mysqld]
datadir={DATA_MOUNT}/mysql
socket={MYSQL_RUN}/mysqld.sock
pid-file={MYSQL_RUN}/mysqld.pid
bind-address=0.0.0.0
port=3306
skip-name-resolve
skip-log-bin
innodb_buffer_pool_size=24M
innodb_log_file_size=8M
innodb_flush_log_at_trx_commit=1
performance_schema=OFF
""")

    def _disk(self) -> None:
        """A fresh sparse image on a loop device, ext4 with this lab's label, holding the initial data."""
        self.release()
        with self.image.open("wb") as handle:
            handle.truncate(DISK_SIZE)
        device = _sh(["losetup", "--find", "--show", str(self.image)]).strip()
        _sh(["mkfs.ext4", "-q", "-F", "-L", self.label, device])
        point = self.cluster.workdir / "disk-init"
        point.mkdir(exist_ok=True)
        sql = (f"FLUSH PRIVILEGES;\nCREATE USER 'lab'@'%' IDENTIFIED BY '{self.db_password()}';\n"
               "GRANT ALL ON labdb.* TO 'lab'@'%';\nCREATE DATABASE labdb;\n")
        try:
            _sh(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 INIT_SCRIPT.format(mail_uid=MAIL_UID), "sh", device, str(point)], stdin=sql)
        finally:
            point.rmdir()

    def release(self) -> None:
        """Detach every loop device backed by this lab's image (the nodes that mounted it are gone)."""
        release_disk(self.cluster.workdir)

    # ------------------------------------------------------------ configuration
    def crm_config(self) -> str:
        """The crm configuration for this lab's subnet and disk label (the file is written for make lab's)."""
        return super().crm_config().replace(f"LABEL={DEFAULT_LABEL} ", f"LABEL={self.label} ")

    def create_db_user(self) -> None:
        """Nothing to do: the 'lab' user was created on the disk when it was made."""

    def usage(self) -> str:
        """Where the stack answers, for the message `make lab` ends with."""
        return (f"The mail cluster answers on {self.mail_vip} (SMTP 25, submission 587, IMAP 143, POP3 110, "
                f"MariaDB 3306);\nits data is on {self.label} (a loop device), mounted at {DATA_MOUNT} on the "
                "node running the group only.")

    # ------------------------------------------------------------ health, as the drills judge it
    def ready(self, status) -> bool:
        """Every resource of the group and the fence device of every online node running, two nodes serving."""
        return bool(self._in_full(status))

    def rejoined(self, status, node: str) -> bool:
        """True once a node that was away is online and out of standby (it is a failover target again)."""
        return node in status.online_nodes() and not status.nodes[node].standby


def release_disk(workdir: Path) -> None:
    """Detach the loop devices over ``<workdir>/shared-disk.img`` (none: nothing to do)."""
    image = Path(workdir) / "shared-disk.img"
    if not image.exists() or shutil.which("losetup") is None:
        return
    listed = subprocess.run(["losetup", "--noheadings", "--output", "NAME", "--associated", str(image)],
                            capture_output=True, text=True, timeout=30, check=False)
    for device in listed.stdout.split():
        done = subprocess.run(["losetup", "--detach", device], capture_output=True, text=True, timeout=30,
                              check=False)
        if done.returncode != 0:
            raise LabError(f"cannot detach {device} ({image}): {done.stderr.strip()}")

