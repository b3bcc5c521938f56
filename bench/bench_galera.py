"""Bench rows of ocf:hamail:galera: the Promoted monitor on one running Galera node, and the time a 3-node lab
takes from a power loss of all nodes to a Primary accepting writes, ours vs heartbeat galera."""

import json
import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

from harness import Case

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEARTBEAT = "/usr/lib/ocf/resource.d/heartbeat/galera"
NODE = "benchnode"


class BenchNode:
    """A one-node Galera cluster (bootstrapped mariadbd on 127.0.0.1) in a temporary directory."""

    def __init__(self) -> None:
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="hamail-bench-galera-"))
        self.proc = None

    @property
    def params(self) -> dict:
        """The instance parameters both agents get."""
        d = self.dir
        return {"binary": "/usr/sbin/mariadbd", "config": f"{d}/my.cnf", "datadir": f"{d}/data",
                "pid": f"{d}/run/mysqld.pid", "socket": f"{d}/run/mysqld.sock", "log": f"{d}/error.log",
                "wsrep_cluster_address": f"gcomm://{NODE}", "check_user": "root"}

    def env(self, upstream: bool) -> dict:
        """The environment pacemaker-execd would give a Promoted monitor."""
        env = {"OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": "galera:0", "OCF_RESOURCE_TYPE": "galera",
               "OCF_RESKEY_CRM_meta_interval": "10000", "OCF_RESKEY_CRM_meta_timeout": "20000",
               "OCF_RESKEY_CRM_meta_on_node": NODE, "OCF_RESKEY_CRM_meta_role": "Promoted", "HA_RSCTMP": str(self.dir),
               "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        env.update({f"OCF_RESKEY_{k}": v for k, v in self.params.items()})
        if upstream:
            # heartbeat's monitor runs the client without its socket parameter (agent-anchors.md): a
            # ~/.my.cnf points the client at the same server (instead of a link in /run/mysqld).
            env["HOME"] = str(self.dir)
        return env

    def start(self) -> None:
        """Initialise and bootstrap the node, wait until it is Primary."""
        mysql = pwd.getpwnam("mysql")
        for sub in ("data", "run"):
            (self.dir / sub).mkdir()
            os.chown(self.dir / sub, mysql.pw_uid, mysql.pw_gid)
        os.chown(self.dir, mysql.pw_uid, mysql.pw_gid)
        os.chmod(self.dir, 0o755)
        (self.dir / "my.cnf").write_text(
            f"[mysqld]\ndatadir={self.dir}/data\nsocket={self.dir}/run/mysqld.sock\nbind-address=127.0.0.1\n"
            "port=23306\nskip-name-resolve\nbinlog_format=ROW\ninnodb_autoinc_lock_mode=2\n"
            "innodb_buffer_pool_size=24M\nperformance_schema=OFF\nwsrep_on=ON\n"
            "wsrep_provider=/usr/lib/galera/libgalera_smm.so\nwsrep_cluster_name=bench\nwsrep_node_address=127.0.0.1\n"
            'wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:24567;gcache.size=16M"\n')
        (self.dir / ".my.cnf").write_text(f"[client]\nsocket={self.dir}/run/mysqld.sock\n")
        subprocess.run(["mariadb-install-db", f"--defaults-file={self.dir}/my.cnf", "--user=mysql", "--wsrep-on=OFF",
                        "--skip-test-db", "--auth-root-authentication-method=socket"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        p = self.params
        self.proc = subprocess.Popen(
            ["/usr/sbin/mariadbd", f"--defaults-file={p['config']}", f"--pid-file={p['pid']}", "--user=mysql",
             f"--log-error={p['log']}", "--wsrep-new-cluster", "--wsrep-cluster-address=gcomm://"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(300):
            out = subprocess.run(["mariadb", f"--socket={p['socket']}", "-N", "-B", "-e",
                                  "SHOW STATUS LIKE 'wsrep_cluster_status'"], capture_output=True, text=True)
            if "Primary" in out.stdout:
                return
            time.sleep(0.1)
        raise RuntimeError("bench galera node did not become Primary")

    def stop(self) -> None:
        """Stop the server and remove the directory."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def cases() -> list:
    """Promoted monitor (depth 0) of both agents against the same running node."""
    node = BenchNode()
    # Executed as pacemaker-execd does: through its #! line (/usr/bin/python3 -S), as heartbeat's through /bin/sh.
    ours = [str(ROOT / "agents" / "galera"), "monitor"]
    theirs = [HEARTBEAT, "monitor"]
    return [Case("galera", "monitor (Promoted)", ours, theirs, env_ours=node.env(False), env_upstream=node.env(True),
                 setup=node.start, teardown=node.stop, repeat=30, target=0.7, expect_rc=8),
            Case("galera", "power loss: all 3 nodes killed -> Primary accepting writes (1 run, 3-node lab)",
                 None, None, once=power_loss_recovery)]


def power_loss_recovery() -> tuple:
    """Run the lab scenario that kills all three nodes under each agent; (ours, heartbeat) seconds."""
    out = pathlib.Path(tempfile.mkdtemp(prefix="hamail-bench-recovery-")) / "recovery.json"
    try:
        subprocess.run(["/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(ROOT / "tests" / "galera" / "test_galera_heartbeat_recovery.py")],
                       cwd=ROOT, check=True, env={**os.environ, "HAMAIL_RECOVERY_OUT": str(out)},
                       stdout=subprocess.DEVNULL, timeout=1800)
        times = json.loads(out.read_text())
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
    return times["hamail"], times["heartbeat"]
