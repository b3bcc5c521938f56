# SPDX-License-Identifier: GPL-2.0-or-later
"""Bench rows of ocf:hamail:galera: the Promoted monitor on one running Galera node, and the cluster rows of a
3-node lab, ours vs heartbeat galera: first formation, one node killed and back, a power loss of all nodes (to
a Primary accepting writes, and to all three Promoted and Synced).

The cluster rows come from one sequential run on one 3-node lab: ours, heartbeat, ours, heartbeat, ... (RUNS
each), every run from freshly initialised datadirs: the clone created (formation), node3 killed and booted, then
the scenario of tests/galera/test_galera_heartbeat_recovery.py (a writer on node1, all three nodes killed, no
acknowledged commit lost); the rows show the medians, and each run's value is listed under the table."""

import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from harness import BenchFailure, Case, agent_argv

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEARTBEAT = "/usr/lib/ocf/resource.d/heartbeat/galera"
NODE = "benchnode"
RUNS = 3  # power-loss runs of each agent


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
    """Promoted monitor (depth 0) of both agents against the same running node; the 3-node cluster rows."""
    node = BenchNode()
    scenario = Scenario()
    # Executed as pacemaker-execd does: through its #! line (/usr/bin/python3 -S), as heartbeat's through /bin/bash.
    ours = agent_argv(ROOT / "agents" / "galera") + ["monitor"]
    theirs = agent_argv(HEARTBEAT) + ["monitor"]
    return [Case("galera", "monitor (Promoted)", ours, theirs, env_ours=node.env(False), env_upstream=node.env(True),
                 setup=node.start, teardown=node.stop, repeat=30, target=0.7, expect_rc=8),
            *(Case("galera", f"{title} (3-node lab, {RUNS} alternating runs each, median)", None, None,
                   once=lambda row=row: scenario.row(row), target=target)
              for row, title, target in (
                  ("formation", "first formation: clone created -> all 3 Promoted and Synced", 0.7),
                  ("one killed", "one node killed -> back, Promoted and Synced", 0.7),
                  ("power loss: write", "power loss: all 3 nodes killed -> Primary accepting writes", None),
                  ("power loss: all", "power loss: all 3 nodes killed -> all 3 Promoted and Synced", 0.7)))]


def _scenario():
    """The recovery test's helpers: galera_lab and its ocf:heartbeat:galera parameters and recover()."""
    for path in (ROOT / "tests", ROOT / "tests" / "galera"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    import galera_lab
    import test_galera_heartbeat_recovery as recovery
    return galera_lab, recovery


def _lab3():
    """A 3-node lab as the cluster3 fixture makes it (or the running one HAMAIL_GALERA_LAB3 names): (lab, owned)."""
    from hamail_lab.cluster import Cluster
    if os.environ.get("HAMAIL_GALERA_LAB3"):
        return Cluster.load(pathlib.Path(os.environ["HAMAIL_GALERA_LAB3"])), False
    from hamail_lab.fixtures import SPECS, free_prefix
    spec = dict(SPECS["cluster3"], prefix=free_prefix(SPECS["cluster3"]["prefix"]))
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="hamail-bench-lab3-"))
    return Cluster(workdir / "cluster3", **spec, checkout=ROOT), True


ROWS = ("formation", "one killed", "power loss: write", "power loss: all")


def _all_synced(lab, gl, clone, nodes, socket) -> bool:
    """Every node Promoted (crm_mon) and its server Primary and Synced."""
    if not all(gl.roles(lab, clone).get(n) == "Promoted" for n in nodes):
        return False
    for node in nodes:
        proc = gl.sql(lab, node, "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_status', "
                      "'wsrep_local_state_comment')", timeout=10, socket=socket)
        values = dict(line.split("\t", 1) for line in proc.stdout.splitlines() if "\t" in line)
        if (values.get("wsrep_cluster_status"), values.get("wsrep_local_state_comment")) != ("Primary", "Synced"):
            return False
    return True


def _one_run(lab, gl, recovery, provider: str, number: int, tmp: pathlib.Path) -> dict:
    """Fresh datadirs, then for one agent: {row: seconds} for first formation (clone created -> all Promoted and
    Synced), one node killed (-> booted again and Promoted and Synced), and a power loss of all three (-> a
    write accepted; -> all Promoted and Synced)."""
    nodes = recovery.NODES
    for node in nodes:
        gl.init_node(lab, node)
        cnf = gl.my_cnf(node, lab.address(node)).replace(f"{gl.RUN}/mysqld.sock", recovery.HB_SOCKET).replace(
            f"{gl.RUN}/mysqld.pid", "/run/mysqld/mysqld.pid")
        (lab.data_dir(node) / "galera" / "my-hb.cnf").write_text(
            cnf + f"wsrep_cluster_address=gcomm://{','.join(nodes)}\n")
    clone, values, socket = (("galera", None, f"{gl.RUN}/mysqld.sock") if provider == "hamail"
                             else ("hb", recovery.hb_values(), recovery.HB_SOCKET))
    from hamail_lab.hostsys import wait_for as poll  # short pauses: each pause is an error of the measure
    synced = lambda: _all_synced(lab, gl, clone, nodes, socket) or None  # noqa: E731
    out = {}
    began = time.monotonic()
    proc = lab.run("node1", ["cibadmin", "--create", "-o", "resources", "-X",
                             gl.resource_xml(nodes, clone, provider, values)])
    if proc.returncode != 0:
        raise BenchFailure(f"{provider} run {number}: creating the clone failed", ["cibadmin", "--create"],
                           proc.returncode, proc.stderr)
    try:
        poll(synced, 300, f"{clone} Promoted and Synced everywhere", max_interval=0.3)
        out["formation"] = time.monotonic() - began
        made = gl.sql(lab, "node1", "CREATE DATABASE IF NOT EXISTS hamail_test;"
                      "CREATE TABLE IF NOT EXISTS hamail_test.counter (id INT PRIMARY KEY);"
                      "CREATE TABLE IF NOT EXISTS hamail_test.probe (id INT AUTO_INCREMENT PRIMARY KEY)",
                      socket=socket)
        if made.returncode != 0:
            raise BenchFailure(f"{provider} run {number}: creating the tables failed", ["mariadb"], made.returncode,
                               made.stderr)
        began = time.monotonic()
        lab.kill_node("node3")
        lab.start_node("node3", wait=False)
        poll(synced, 300, f"{clone}: node3 Promoted and Synced again", max_interval=0.3)
        out["one killed"] = time.monotonic() - began
        # recover() asserts that no acknowledged commit is missing after the recovery.
        out["power loss: write"] = recovery.recover(lab, clone, socket, tmp)
        began = time.monotonic() - out["power loss: write"]  # the moment of the power loss
        poll(synced, 300, f"{clone} Promoted and Synced everywhere after the power loss", max_interval=0.3)
        out["power loss: all"] = time.monotonic() - began
        return out
    finally:
        lab.heal()
        gl.remove_clone(lab, f"{clone}-clone")


class Scenario:
    """The 3-node runs, made once for all galera cluster rows: {row: (ours, heartbeat) lists of seconds}."""

    def __init__(self) -> None:
        self.times: dict | None = None

    def row(self, name: str) -> tuple:
        """(ours, heartbeat) seconds of one row, running the scenario first if it has not run."""
        if self.times is None:
            self.times = power_loss_recovery()
        return self.times[name]


def power_loss_recovery() -> dict:
    """On one 3-node lab, ours and heartbeat's galera alternately, RUNS each: {row: (ours, heartbeat) lists of
    seconds}."""
    gl, recovery = _scenario()
    lab, owned = _lab3()
    times = {row: ([], []) for row in ROWS}
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="hamail-bench-recovery-"))
    net = None
    try:
        if owned:
            from hamail_lab.fixtures import SafetyNet
            net = SafetyNet()  # stops the lab on SIGTERM/SIGHUP or at exit if the bench dies
            net.add(lab)
            lab.start()
        gl.remove_clone(lab)
        gl.remove_clone(lab, "hb-clone")
        for number in range(1, RUNS + 1):
            for provider in ("hamail", "heartbeat"):
                seconds = _one_run(lab, gl, recovery, provider, number, tmp)
                for row, value in seconds.items():
                    times[row][0 if provider == "hamail" else 1].append(value)
                print(f"bench: galera run {number} {provider}: "
                      + ", ".join(f"{row} {value:.1f} s" for row, value in seconds.items()), file=sys.stderr,
                      flush=True)
    except BaseException:
        if owned:
            print(f"bench: the lab's state (logs, CIBs) is kept in {lab.workdir}", file=sys.stderr, flush=True)
        raise
    finally:
        try:
            if owned:
                lab.stop()
            else:
                lab.heal()
                gl.remove_clone(lab)
                gl.remove_clone(lab, "hb-clone")
        finally:
            if net is not None:
                net.discard(lab)
                net.disarm()
            shutil.rmtree(tmp, ignore_errors=True)
    if owned:
        shutil.rmtree(lab.workdir.parent, ignore_errors=True)
    return times
