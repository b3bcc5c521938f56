# SPDX-License-Identifier: GPL-2.0-or-later
"""The agent on one real mariadbd (1-node lab cluster): every action, and bad input giving the right code."""

import hashlib
import os
import shutil

import pytest

import galera_lab as gl

AGENT = str(gl.ROOT / "agents" / "galera")  # the checkout (the nodes share the host file system)
NODE = "node1"


def run(lab, action, interval=0, depth=0, wrap=(), **overrides):
    """Run the agent inside the node as pacemaker-execd would (clean environment, OCF_RESKEY_*); wrap: an argv
    prefix the agent runs under."""
    env = {"OCF_RESOURCE_INSTANCE": "gal1", "OCF_RESOURCE_TYPE": "galera", "OCF_RESOURCE_PROVIDER": "hamail",
           "OCF_RESKEY_CRM_meta_on_node": NODE, "OCF_RESKEY_CRM_meta_interval": str(interval),
           "OCF_RESKEY_CRM_meta_timeout": "60000", "OCF_CHECK_LEVEL": str(depth), "HA_RSCTMP": "/run/hamail-test"}
    values = gl.params([NODE])
    values.update(overrides)
    for key, value in values.items():
        if value is not None:
            env[f"OCF_RESKEY_{key}"] = value
    proc = lab.run(NODE, [*wrap, AGENT, action], env=env, timeout=90)
    reasons = [line.split(":", 1)[1] for line in proc.stderr.splitlines() if line.startswith("ocf-exit-reason:")]
    return proc.returncode, (reasons[-1] if reasons else ""), proc.stderr


def snapshot(lab):
    """Digest of every file's content in the datadir (to prove a failed action destroyed nothing)."""
    root = lab.data_dir(NODE) / "galera" / "data"
    digest = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


def contents(lab):
    """What the running server holds: every table's name, and the rows of the test table and of the accounts."""
    proc = gl.sql(lab, NODE, "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema "
                             "NOT IN ('information_schema', 'performance_schema', 'sys') ORDER BY 1, 2;"
                             "SELECT * FROM t2.rows ORDER BY i;"
                             "CHECKSUM TABLE mysql.global_priv, mysql.db, t2.rows EXTENDED")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def kill9(lab):
    """Crash the node's mariadbd and wait until it is gone."""
    gl.crash_server(lab, NODE)


@pytest.fixture(scope="module")
def node(galera1):
    """The 1-node lab with a clean agent state; the instance stopped afterwards."""
    lab = galera1
    assert lab.run(NODE, ["mkdir", "-p", "/run/hamail-test"]).returncode == 0
    yield lab
    run(lab, "stop")


def test_lifecycle(node):
    lab = node
    assert run(lab, "monitor")[0] == 7
    rc, reason, err = run(lab, "start")
    assert rc == 0, err
    assert gl.attribute(lab, NODE, "gal1-last-committed") is not None
    assert run(lab, "monitor", interval=4000)[0] == 0            # Unpromoted: published, not running
    rc, reason, err = run(lab, "promote")
    assert rc == 0, err
    assert "new cluster, node1 bootstraps" in err, err        # a fresh datadir: no position anywhere
    assert run(lab, "monitor", interval=3000)[0] == 8
    assert run(lab, "monitor", interval=3000, depth=10)[0] == 8
    status = gl.wsrep(lab, NODE)
    assert status["wsrep_cluster_status"] == "Primary" and status["wsrep_local_state_comment"] == "Synced"
    assert gl.sql(lab, NODE, "CREATE DATABASE IF NOT EXISTS t1; CREATE TABLE IF NOT EXISTS t1.x (i INT PRIMARY KEY);"
                             "REPLACE INTO t1.x VALUES (1)").returncode == 0
    assert run(lab, "promote")[0] == 0                          # idempotent
    rc, reason, err = run(lab, "demote")
    assert rc == 0, err
    grastate = (lab.data_dir(NODE) / "galera" / "data" / "grastate.dat")
    text = grastate.read_text()
    assert "safe_to_bootstrap: 1" in text                         # the last node to leave may bootstrap
    assert grastate.stat().st_uid == __import__("pwd").getpwnam("mysql").pw_uid
    assert gl.attribute(lab, NODE, "gal1-safe-to-bootstrap") == "1"
    assert run(lab, "monitor", interval=4000)[0] == 0
    assert run(lab, "promote")[0] == 0                            # safe_to_bootstrap=1 bootstraps again
    assert gl.sql(lab, NODE, "SELECT i FROM t1.x").stdout.split() == ["1"]
    assert run(lab, "stop")[0] == 0
    assert run(lab, "stop")[0] == 0
    assert run(lab, "monitor")[0] == 7
    assert gl.attribute(lab, NODE, "gal1-last-committed") is None
    data = lab.data_dir(NODE) / "galera" / "data"
    # stopped while Primary: it left cleanly and keeps no view (a copy is kept only by a server that had lost
    # its Primary component, tests/galera/test_galera_cluster.py and test_galera_two_node.py)
    assert not (data / "gvwstate.dat").exists()
    junk = [p.name for p in data.iterdir()
            if p.name.startswith(("grastate.dat.", "grastate.date", "gvwstate.dat.")) or "hamail" in p.name]
    assert junk == []


def test_crash_recovery_uses_wsrep_recover(node):
    lab = node
    assert run(lab, "start")[0] == 0
    assert run(lab, "promote")[0] == 0
    proc = gl.sql(lab, NODE, "CREATE DATABASE IF NOT EXISTS t3; CREATE TABLE IF NOT EXISTS t3.c (i INT PRIMARY KEY);"
                             "REPLACE INTO t3.c VALUES (1); REPLACE INTO t3.c VALUES (2); REPLACE INTO t3.c VALUES (3)")
    assert proc.returncode == 0, proc.stderr
    status = gl.wsrep(lab, NODE)
    before, history = int(status["wsrep_last_committed"]), status["wsrep_cluster_state_uuid"]
    kill9(lab)
    assert "seqno:   -1" in (lab.data_dir(NODE) / "galera" / "data" / "grastate.dat").read_text()  # only InnoDB knows
    rc, reason, err = run(lab, "monitor", interval=3000)
    assert rc == 0  # not running, but the instance is started (unpromoted): Pacemaker sees the role change
    assert run(lab, "stop")[0] == 0
    rc, reason, err = run(lab, "start")
    assert rc == 0, err
    assert "--wsrep-recover" in err
    assert int(gl.attribute(lab, NODE, "gal1-last-committed")) == before
    assert run(lab, "promote")[0] == 0
    # the bootstrap continued the cluster's history from the recovered position (--wsrep-start-position), as
    # mysqld_safe does: a new history at 0 would make every other node take a full state transfer (Galera 4
    # gives the new component's configuration change a seqno of its own)
    status = gl.wsrep(lab, NODE)
    assert status["wsrep_cluster_state_uuid"] == history and int(status["wsrep_last_committed"]) >= before
    assert run(lab, "stop")[0] == 0


@pytest.mark.parametrize("overrides,action,code,words", [
    ({"wsrep_cluster_address": None}, "start", 6, "wsrep_cluster_address"),
    ({"wsrep_cluster_address": "node1,node2"}, "start", 6, "gcomm://"),
    # A node outside the address is a fact about this node (an arbitrator, a mail node): 5 bans it here only.
    ({"wsrep_cluster_address": "gcomm://nodeX,nodeY"}, "start", 5, "not in wsrep_cluster_address"),
    ({"wsrep_cluster_address": "gcomm://nodeX,nodeY"}, "monitor", 7, ""),
    ({"cluster_host_map": "node1:gal1;node9:gal9"}, "start", 6, "cluster_host_map"),
    ({"cluster_host_map": "node1"}, "start", 6, "cluster_host_map"),
    # Missing on this node only (its disk): 5 keeps the instance off this node; 6 would stop it everywhere.
    ({"datadir": "/var/lib/hamail-lab-node/nowhere"}, "start", 5, "datadir"),
    ({"datadir": "/var/lib/hamail-lab-node/nowhere"}, "monitor", 7, ""),
    ({"binary": "/usr/sbin/no-such-mariadbd"}, "start", 5, "not installed"),
    ({"credentials_file": "/var/lib/hamail-lab-node/galera/creds-open"}, "start", 6, "0600"),
])
def test_bad_input(node, overrides, action, code, words):
    lab = node
    (lab.data_dir(NODE) / "galera" / "creds-open").write_text("[client]\nuser=root\npassword=s3cret\n")
    os.chmod(lab.data_dir(NODE) / "galera" / "creds-open", 0o644)
    before = snapshot(lab)
    rc, reason, err = run(lab, action, **overrides)
    assert rc == code, err
    assert words in reason
    assert "Traceback" not in err and "s3cret" not in err
    assert snapshot(lab) == before
    assert run(lab, "stop", **overrides)[0] == 0


def test_unreadable_grastate_is_left_alone(node):
    lab = node
    grastate = lab.data_dir(NODE) / "galera" / "data" / "grastate.dat"
    original = grastate.read_bytes() if grastate.exists() else None
    try:
        grastate.write_text("this is not a grastate file\n")
        before = snapshot(lab)
        rc, reason, err = run(lab, "start")
        assert rc == 1 and "grastate.dat is unreadable" in reason, err
        assert snapshot(lab) == before
    finally:
        if original is None:
            grastate.unlink()
        else:
            grastate.write_bytes(original)
    assert run(lab, "stop")[0] == 0


def test_wrong_credentials(node):
    lab = node
    creds = lab.data_dir(NODE) / "galera" / "creds"
    creds.write_text("[client]\nuser=nosuchuser\npassword=wr0ng-secret\n")
    os.chmod(creds, 0o600)
    inside = f"{gl.BASE}/creds"
    assert run(lab, "start")[0] == 0
    assert run(lab, "promote")[0] == 0
    proc = gl.sql(lab, NODE, "CREATE DATABASE IF NOT EXISTS t2; CREATE TABLE IF NOT EXISTS t2.rows "
                             "(i INT PRIMARY KEY, v VARCHAR(40)); REPLACE INTO t2.rows VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    assert proc.returncode == 0, proc.stderr
    before = contents(lab)
    rc, reason, err = run(lab, "monitor", interval=3000, credentials_file=inside)
    assert rc == 6 and "cannot log in" in reason, err
    assert "wr0ng-secret" not in err
    rc, reason, err = run(lab, "monitor", interval=3000, check_user="nosuchuser", check_passwd="wr0ng-secret")
    assert rc == 6 and "wr0ng-secret" not in err
    assert run(lab, "monitor", interval=3000)[0] == 8   # the server was left running and intact
    assert contents(lab) == before                      # every table still there, same rows
    assert run(lab, "stop")[0] == 0


def with_clustercheck(lab, text):
    """An argv prefix giving the agent a private /etc/default holding clustercheck with text (the host's and
    the node's /etc stay untouched: a bind mount in a mount namespace of its own)."""
    host = lab.data_dir(NODE) / "galera" / "etc-default"
    shutil.rmtree(host, ignore_errors=True)
    shutil.copytree("/etc/default", host, symlinks=True)
    (host / "clustercheck").write_text(text)
    os.chmod(host / "clustercheck", 0o600)
    inside = f"{gl.BASE}/etc-default"
    return ("unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /etc/default && exec "$@"', inside)


def test_check_credentials_from_the_clustercheck_file(node):
    """As heartbeat galera: with check_user/check_passwd unset, MYSQL_USERNAME/MYSQL_PASSWORD of
    /etc/default/clustercheck are the monitor's credentials (a wrong password there fails the monitor)."""
    lab = node
    assert run(lab, "start")[0] == 0
    assert run(lab, "promote")[0] == 0
    proc = gl.sql(lab, NODE, "CREATE USER IF NOT EXISTS 'clchk'@'localhost' IDENTIFIED BY 'cl-s3cret-1'")
    assert proc.returncode == 0, proc.stderr
    try:
        good = with_clustercheck(lab, '# written by the installer\nMYSQL_USERNAME="clchk"\n'
                                      "export MYSQL_PASSWORD='cl-s3cret-1'\n")
        rc, reason, err = run(lab, "monitor", interval=3000, wrap=good)
        assert rc == 8, err
        bad = with_clustercheck(lab, "MYSQL_USERNAME=clchk\nMYSQL_PASSWORD=cl-wr0ng-2\n")
        rc, reason, err = run(lab, "monitor", interval=3000, wrap=bad)
        assert rc == 6 and "cannot log in" in reason and "clchk" in reason, err
        assert "cl-wr0ng-2" not in err and "cl-s3cret-1" not in err
        # given parameters win over the file
        rc, reason, err = run(lab, "monitor", interval=3000, wrap=bad, check_user="clchk", check_passwd="cl-s3cret-1")
        assert rc == 8, err
    finally:
        gl.sql(lab, NODE, "DROP USER IF EXISTS 'clchk'@'localhost'")
        assert run(lab, "stop")[0] == 0


def test_metadata_is_valid(node):
    import subprocess
    out = subprocess.run(["/usr/bin/python3", AGENT, "meta-data"], capture_output=True, text=True, check=True).stdout
    for name in ("wsrep_cluster_address", "cluster_host_map", "check_user", "check_passwd", "two_node_mode",
                 "enable_creation", "additional_parameters", "client_binary", "force_bootstrap_node", "sync_allowance"):
        assert f'name="{name}"' in out
    proc = subprocess.run(["xmllint", "--noout", "--relaxng", "/usr/share/pcs/data/ocf-1.1.rng", "-"], input=out,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


class ProcScanner:
    """Reads every process's command line on the host (nodes' processes included) until stopped."""

    def __init__(self, needle: bytes) -> None:
        import threading
        self.needle, self.hits, self.scans = needle, [], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or int(pid) == os.getpid():
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as handle:
                        line = handle.read()
                except OSError:
                    continue
                if self.needle in line:
                    self.hits.append((pid, line.replace(b"\0", b" ")[:200]))
            self.scans += 1

    def stop(self) -> list:
        """Stop scanning; the command lines that held the needle."""
        self._stop.set()
        self._thread.join(10)
        return self.hits


def test_password_never_in_argv_env_logs_or_reasons(node):
    """check_passwd: not in any process's argv (scanned live), runner argv/env, the server's env, logs, reasons."""
    import json
    import secrets
    lab = node
    password = "Hm-" + secrets.token_hex(8) + "-pw"
    assert run(lab, "start")[0] == 0 and run(lab, "promote")[0] == 0
    proc = lab.run(NODE, ["mariadb", f"--socket={gl.RUN}/mysqld.sock"], input=(
        "CREATE USER IF NOT EXISTS 'hamailchk'@'localhost' IDENTIFIED BY '" + password + "';"
        "ALTER USER 'hamailchk'@'localhost' IDENTIFIED BY '" + password + "';"))
    assert proc.returncode == 0, proc.stderr
    kill9(lab)                                          # a crash: the next start runs --wsrep-recover
    assert run(lab, "stop")[0] == 0
    host_log = lab.data_dir(NODE) / "galera" / "ha.log"
    host_log.unlink(missing_ok=True)
    env = {"OCF_RESOURCE_INSTANCE": "gal1", "OCF_RESOURCE_TYPE": "galera", "OCF_RESOURCE_PROVIDER": "hamail",
           "OCF_RESKEY_CRM_meta_on_node": NODE, "OCF_RESKEY_CRM_meta_timeout": "60000",
           "HA_RSCTMP": "/run/hamail-test", "HA_debug": "1", "HA_LOGFILE": f"{gl.BASE}/ha.log",
           "HA_DEBUGLOG": f"{gl.BASE}/ha.log"}
    env.update({f"OCF_RESKEY_{k}": v for k, v in gl.params([NODE], check_user="hamailchk",
                                                           check_passwd=password).items()})
    steps = [("start", 0, 0, 0), ("monitor", 4000, 0, 0), ("promote", 0, 0, 0), ("monitor", 3000, 0, 8),
             ("monitor", 3000, 10, 8)]
    scanner = ProcScanner(password.encode())
    outputs, invocations = [], []
    try:
        for action, interval, depth, code in steps:
            out = f"{gl.BASE}/rec-{action}.json"
            proc = lab.run(NODE, ["/usr/bin/python3", str(gl.ROOT / "tests" / "galera" / "agent_recorded.py"), action,
                                  out], env=dict(env, OCF_RESKEY_CRM_meta_interval=str(interval),
                                                 OCF_CHECK_LEVEL=str(depth)), timeout=120)
            assert proc.returncode == code, (action, proc.stderr)
            outputs.append(proc.stdout + proc.stderr)
            invocations += json.loads((lab.data_dir(NODE) / "galera" / f"rec-{action}.json").read_text())["invocations"]
        pid = lab.run(NODE, ["cat", f"{gl.RUN}/mysqld.pid"]).stdout.strip()
        proc = lab.run(NODE, ["cat", f"/proc/{pid}/environ"])
        assert pid.isdigit() and proc.returncode == 0 and "PATH=" in proc.stdout, (pid, proc.stderr)
        server_env = proc.stdout
        proc = lab.run(NODE, [AGENT, "monitor"], env=dict(env, OCF_RESKEY_CRM_meta_interval="3000",
                                                          OCF_RESKEY_check_passwd=password + "x"))
        assert proc.returncode == 6 and "ocf-exit-reason:" in proc.stderr, proc.stderr
        outputs.append(proc.stdout + proc.stderr)
    finally:
        hits = scanner.stop()
        run(lab, "stop")
    assert scanner.scans > 10
    assert hits == []
    assert any(i["argv"][0] == "crm_mon" for i in invocations) and any("--wsrep-recover" in i["argv"]
                                                                      for i in invocations)
    for inv in invocations:
        assert not any(password in arg for arg in inv["argv"]), inv["argv"]
        assert not any(password in value for value in inv["env"].values()), inv["argv"]
    assert password not in server_env and "OCF_RESKEY_check_passwd" not in server_env
    assert host_log.exists() and password not in host_log.read_text()
    for text in outputs:
        assert password not in text
