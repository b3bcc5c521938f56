# SPDX-License-Identifier: GPL-2.0-or-later
"""A private OpenLDAP slapd for the slapd agent's tests: a cn=config directory made with slapadd (or a slapd.conf
checked with slaptest) under the test's directory, an mdb database for dc=example,dc=test holding its base entry,
ldap://127.0.0.1:<free port>/ and an ldapi:// socket there, its pid file there.

The agent starts and stops the server; kill() removes whatever of it is left (also a SIGSTOPped one), so a
failing test never leaves a slapd behind.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess

from service_support import free_port, pids_of, traversable

AGENT = "slapd"
SUFFIX = "dc=example,dc=test"
ADMIN = f"cn=admin,{SUFFIX}"
PASSWORD = "Lab-Slapd-Pw-7731"
SECOND = "dc=second,dc=test"  # a database whose base entry is never added (a suffix that does not answer)


def _sh(*argv: str, stdin: str | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{argv}: {done.stderr}"
    return done.stdout


class SlapdLab:
    """One server's files under base: slapd.d/ (or slapd.conf), db/, db2/, slapd.pid, ldapi, password file."""

    def __init__(self, base: pathlib.Path, *, conf_file: bool = False, second_database: bool = False,
                 owner: str | None = None) -> None:
        self.base = pathlib.Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.pid = self.base / "run" / "slapd.pid"
        self.ldapi = self.base / "ldapi"
        assert len(str(self.ldapi)) < 100, f"{self.ldapi}: too long for a unix socket"
        self.db, self.db2 = self.base / "db", self.base / "db2"
        self.db.mkdir()
        self.second = second_database
        if second_database:
            self.db2.mkdir()
        hashed = _sh("slappasswd", "-s", PASSWORD).strip()
        if conf_file:
            self.config = self.base / "slapd.conf"
            self.config.write_text(self._conf(hashed))
            self.pid.parent.mkdir()  # slaptest -f checks that slapd could write the pid file
            _sh("slaptest", "-f", str(self.config), "-u")
            flag = "-f"
        else:
            self.config = self.base / "slapd.d"
            self.config.mkdir()
            _sh("slapadd", "-n0", "-F", str(self.config), stdin=self._ldif(hashed))
            flag = "-F"
        _sh("slapadd", "-n1", flag, str(self.config),
            stdin=f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: example\n")
        self.password_file = self.base / "bind.pw"
        self.password_file.write_text(PASSWORD + "\n")
        self.password_file.chmod(0o600)
        if owner:
            traversable(self.base)
            for path in [self.base, *self.base.rglob("*")]:
                if path != self.password_file:
                    os.chown(path, *_ids(owner))

    def _ldif(self, hashed: str) -> str:
        second = (f"\ndn: olcDatabase={{2}}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n"
                  f"olcDatabase: {{2}}mdb\nolcDbDirectory: {self.db2}\nolcSuffix: {SECOND}\n"
                  f"olcDbMaxSize: 10485760\n") if self.second else ""
        return (f"dn: cn=config\nobjectClass: olcGlobal\ncn: config\nolcPidFile: {self.pid}\n\n"
                "dn: cn=module{0},cn=config\nobjectClass: olcModuleList\ncn: module{0}\n"
                "olcModulePath: /usr/lib/ldap\nolcModuleLoad: back_mdb\n\n"
                "dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n"
                + pathlib.Path("/etc/ldap/schema/core.ldif").read_text() + "\n"
                "dn: olcDatabase={-1}frontend,cn=config\nobjectClass: olcDatabaseConfig\n"
                "objectClass: olcFrontendConfig\nolcDatabase: {-1}frontend\n\n"
                "dn: olcDatabase={0}config,cn=config\nobjectClass: olcDatabaseConfig\nolcDatabase: {0}config\n"
                "olcAccess: {0}to * by dn.exact=gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth manage "
                "by * break\n\n"
                f"dn: olcDatabase={{1}}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n"
                f"olcDatabase: {{1}}mdb\nolcDbDirectory: {self.db}\nolcSuffix: {SUFFIX}\nolcRootDN: {ADMIN}\n"
                f"olcRootPW: {hashed}\nolcDbMaxSize: 10485760\n" + second)

    def _conf(self, hashed: str) -> str:
        second = f'\ndatabase mdb\nsuffix "{SECOND}"\ndirectory {self.db2}\nmaxsize 10485760\n' if self.second else ""
        return ("include /etc/ldap/schema/core.schema\n"
                f"pidfile {self.pid}\n"
                "modulepath /usr/lib/ldap\nmoduleload back_mdb\n\n"
                f'database mdb\nsuffix "{SUFFIX}"\nrootdn "{ADMIN}"\nrootpw {hashed}\n'
                f"directory {self.db}\nmaxsize 10485760\n" + second)

    @property
    def services(self) -> str:
        """slapd -h: loopback TCP and the ldapi socket (percent-encoded path)."""
        return f"ldap://127.0.0.1:{self.port}/ ldapi://{str(self.ldapi).replace('/', '%2F')}"

    def params(self, **extra) -> dict:
        """The agent's parameters for this server (extra ones added, None ones removed)."""
        values = {"config": str(self.config), "services": self.services, "stop_escalate": "3"}
        values.update(extra)
        return {k: v for k, v in values.items() if v is not None}

    def bound(self, **extra) -> dict:
        """params() with a bind as the database's root DN, its password from the password file."""
        return self.params(bind_dn=ADMIN, password_file=str(self.password_file), **extra)

    def main_pid(self) -> int | None:
        """The running slapd's pid from its pid file, None when none runs."""
        try:
            pid = int(self.pid.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if os.path.exists(f"/proc/{pid}") else None

    def processes(self) -> list[int]:
        """Every slapd serving this lab's configuration."""
        return pids_of("slapd", under=str(self.config))

    def kill(self) -> None:
        """SIGKILL whatever slapd of this lab is left (SIGCONT first: a stopped process still dies)."""
        for pid in self.processes():
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass


def _ids(user: str) -> tuple[int, int]:
    import pwd
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
