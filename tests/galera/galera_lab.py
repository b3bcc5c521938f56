# SPDX-License-Identifier: GPL-2.0-or-later
"""Real MariaDB Galera nodes inside the lab's node namespaces, a counter writer, and the clone resource."""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
import time

from hamail_lab import galera as lab_galera
from testlib import terminate

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The option file and datadir setup live in the lab (the mail stack uses them too); the tests call them as gl.*.
BASE, RUN = lab_galera.BASE, lab_galera.RUN
init_node, my_cnf = lab_galera.init_node, lab_galera.my_cnf
WRITER = pathlib.Path(__file__).resolve().with_name("writer.py")
MONITOR_PROMOTED_S, MONITOR_UNPROMOTED_S = 3, 4  # the intervals resource_xml gives the two monitors
# "Nothing bad happens" checks last three Unpromoted monitors: each of them re-runs the bootstrap decision
HOLD_S = 3 * MONITOR_UNPROMOTED_S
NEW_GROUP = "gcomm: bootstrapping new group"  # what Galera logs when it starts with --wsrep-new-cluster


def params(nodes: list[str], **extra) -> dict[str, str]:
    """The agent's instance parameters for the lab (same paths on every node, private contents)."""
    values = {"binary": "/usr/sbin/mariadbd", "config": f"{BASE}/my.cnf", "datadir": f"{BASE}/data",
              "log": f"{BASE}/error.log", "pid": f"{RUN}/mysqld.pid", "socket": f"{RUN}/mysqld.sock",
              "wsrep_cluster_address": "gcomm://" + ",".join(nodes), "sync_allowance": "600s"}
    values.update(extra)
    return values


def resource_xml(nodes: list[str], name: str = "galera", provider: str = "hamail", values: dict | None = None,
                 unpromoted_interval: int = MONITOR_UNPROMOTED_S, **extra) -> str:
    """The promotable clone (promoted-max = all nodes) with short monitor intervals for tests."""
    attrs = "".join(f'<nvpair id="{name}-ia-{k}" name="{k}" value="{v}"/>'
                    for k, v in (values if values is not None else params(nodes, **extra)).items())
    ops = [("start", "0", "120s", None), ("stop", "0", "120s", None), ("promote", "0", "300s", None),
           ("demote", "0", "120s", None), ("monitor", f"{MONITOR_PROMOTED_S}s", "20s", "Promoted"),
           ("monitor", f"{unpromoted_interval}s", "30s", "Unpromoted")]
    op_xml = "".join(f'<op id="{name}-{op}-{i}" name="{op}" interval="{iv}" timeout="{to}"'
                     + (f' role="{role}"' if role else "") + "/>" for i, (op, iv, to, role) in enumerate(ops))
    return (f'<clone id="{name}-clone"><meta_attributes id="{name}-clone-meta">'
            f'<nvpair id="{name}-clone-promotable" name="promotable" value="true"/>'
            f'<nvpair id="{name}-clone-pmax" name="promoted-max" value="{len(nodes)}"/>'
            f'<nvpair id="{name}-clone-tr" name="target-role" value="Started"/>'
            f'</meta_attributes><primitive id="{name}" class="ocf" provider="{provider}" type="galera">'
            f'<instance_attributes id="{name}-ia">{attrs}</instance_attributes>'
            f'<operations>{op_xml}</operations></primitive></clone>')


def roles(cluster, resource: str = "galera", node: str | None = None) -> dict[str, str]:
    """{node: role} of the clone's active instances as crm_mon reports them (ElementTree: any Python runs it)."""
    import xml.etree.ElementTree as ET
    root = ET.fromstring(cluster.crm_mon_xml(node))
    out = {}
    for clone in root.iter("clone"):
        if clone.get("id") != f"{resource}-clone":
            continue
        for rsc in clone.iter("resource"):
            if rsc.get("active") == "true":
                for n in rsc.iter("node"):
                    out[n.get("name")] = rsc.get("role")
    return out


def attribute(cluster, node: str, name: str, via: str | None = None) -> str | None:
    """A transient node attribute as attrd has it."""
    import shlex
    proc = cluster.run(via or cluster.first_running(), ["attrd_updater", "-Q", "-n", name, "-N", node])
    if proc.returncode != 0:
        return None
    for word in shlex.split(proc.stdout):  # values contain spaces: name="x" host="n" value="a b c"
        if word.startswith("value="):
            return word[len("value="):] or None
    return None


def fencings(cluster, target: str) -> list[float]:
    """Completion times (epoch s) of successful fencings of target in the cluster's history."""
    import datetime
    import xml.etree.ElementTree as ET
    root = ET.fromstring(cluster.crm_mon_xml())
    out = []
    for event in root.iter("fence_event"):
        if event.get("target") == target and event.get("status") == "success":
            text = event.get("completed", "").replace("Z", "+00:00")
            stamp = datetime.datetime.fromisoformat(text)
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=datetime.timezone.utc)
            out.append(stamp.timestamp())
    return out


def permanent(cluster, node: str, name: str) -> str | None:
    """A permanent (CIB) node attribute, None when unset."""
    proc = cluster.run(cluster.first_running(), ["crm_attribute", "-N", node, "-n", name, "-l", "forever", "-G", "-q"])
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None


def _epoch(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def recorded_fencing(cluster, node: str, resource: str = "galera") -> int | None:
    """The fencing time the agent recorded in the CIB for node (permanent attribute <resource>-fenced-at)."""
    return _epoch(permanent(cluster, node, f"{resource}-fenced-at"))


def fencing_at_last_join(cluster, node: str, resource: str = "galera") -> int | None:
    """The newest fencing of node known when node last joined a Primary component (<resource>-fenced-at-last-join):
    fencings up to then never excuse it again."""
    return _epoch(permanent(cluster, node, f"{resource}-fenced-at-last-join"))


def crash_server(cluster, node: str) -> None:
    """Crash node's mariadbd (SIGKILL by its pid file) and wait until it is gone."""
    pid = cluster.run(node, ["cat", f"{RUN}/mysqld.pid"]).stdout.strip()
    assert pid.isdigit(), pid
    assert cluster.run(node, ["kill", "-9", pid]).returncode == 0
    cluster.wait_for(lambda: cluster.run(node, ["kill", "-0", pid]).returncode != 0, 10, "mariadbd to die")


def crash_and_recover(cluster, writer: "Writer", nodes, timeout: float = 180) -> tuple[str, set[int], dict]:
    """Kill nodes under a running writer and boot them: (the node accepting writes again, the acknowledged ids,
    the log marks taken before the boot for bootstrapped_since); nothing acknowledged is missing there."""
    for node in nodes:
        cluster.kill_node(node)
    acked = writer.stop()
    marks = log_marks(cluster, nodes)
    for node in nodes:
        cluster.start_node(node, wait=False)
    node, _ = writable(cluster, nodes, timeout=timeout)
    assert sorted(acked - committed(cluster, node)) == []
    return node, acked, marks


def sql(cluster, node: str, statement: str, timeout: float = 30,
        socket: str = f"{RUN}/mysqld.sock") -> subprocess.CompletedProcess:
    """Run SQL as root over the node's socket (the mariadb client, tests only)."""
    return cluster.run(node, ["mariadb", f"--socket={socket}", "-N", "-B", "-e", statement], timeout=timeout)


def writable(cluster, nodes, timeout: float = 240, socket: str = f"{RUN}/mysqld.sock") -> tuple[str, float]:
    """Wait until one of nodes accepts a write; return (node, seconds waited)."""
    began = time.monotonic()

    def probe():
        """The first node whose server takes an insert, else None."""
        for node in nodes:
            if cluster.is_running(node) and sql(cluster, node, "INSERT INTO hamail_test.probe () VALUES ()",
                                                timeout=10, socket=socket).returncode == 0:
                return node
        return None
    node = cluster.wait_for(probe, timeout, f"a Primary accepting writes on {nodes}")
    return node, time.monotonic() - began


def power_loss(cluster, writer: "Writer", timeout: float = 240,
               socket: str = f"{RUN}/mysqld.sock") -> tuple[str, float, set[int]]:
    """Kill every node under a running writer, boot them all: (node accepting writes, seconds from the kill, acked)."""
    for node in cluster.nodes:
        cluster.kill_node(node)
    killed = time.monotonic()
    acked = writer.stop()
    for node in cluster.nodes:
        cluster.start_node(node, wait=False)
    node, _ = writable(cluster, cluster.nodes, timeout, socket)
    return node, time.monotonic() - killed, acked


def remove_clone(cluster, clone: str = "galera-clone") -> None:
    """Stop and delete a clone if it is configured (a previous, possibly aborted, run may have left it)."""
    node = cluster.first_running()
    exists = cluster.run(node, ["cibadmin", "-Q", "-o", "resources", "-A", f"//clone[@id='{clone}']"]).returncode == 0
    if exists:
        proc = cluster.run(node, ["crm_resource", "--resource", clone, "--meta", "--set-parameter", "target-role",
                                  "--parameter-value", "Stopped"])
        assert proc.returncode == 0, proc.stderr
        cluster.wait_for(lambda: not roles(cluster, clone[:-len("-clone")]) or None, 180, f"{clone} stopped")
    located = f"//constraints/rsc_location[@rsc='{clone}']"  # before the clone: they must name an existing one
    if cluster.run(node, ["cibadmin", "-Q", "-A", located]).returncode == 0:
        proc = cluster.run(node, ["cibadmin", "--delete-all", "--force", "--xpath", located])
        assert proc.returncode == 0, proc.stderr
    if exists:
        proc = cluster.run(node, ["cibadmin", "--delete", "-o", "resources", "-X", f'<clone id="{clone}"/>'])
        assert proc.returncode == 0, proc.stderr


def wsrep(cluster, node: str) -> dict[str, str]:
    """The node's wsrep status variables ({} when the server does not answer)."""
    proc = sql(cluster, node, "SHOW GLOBAL STATUS LIKE 'wsrep_%'", timeout=10)
    if proc.returncode != 0:
        return {}
    return dict(line.split("\t", 1) for line in proc.stdout.splitlines() if "\t" in line)


class Writer:
    """Commits to a counter table continuously from inside a node; records every acknowledged id on the host."""

    def __init__(self, cluster, node: str, path: pathlib.Path, start: int = 1, socket: str = f"{RUN}/mysqld.sock") -> None:
        self.cluster, self.node, self.path = cluster, node, path
        self._out = open(path, "w")
        cmd = ["nsenter", "-t", str(cluster.init_pid(node)), "-a", "--wd=/", "--", "/usr/bin/python3", "-u",
               str(WRITER), socket, str(start)]
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

    def acked(self) -> set[int]:
        """Ids the server acknowledged so far."""
        text = self.path.read_text()
        return {int(line) for line in text.split("\n")[:-1] if line.strip().isdigit()}

    def wait_for(self, count: int, timeout: float = 60) -> None:
        """Wait until at least count commits were acknowledged."""
        end = time.monotonic() + timeout
        while len(self.acked()) < count:
            if time.monotonic() > end:
                raise AssertionError(f"writer on {self.node} acknowledged only {len(self.acked())} commits")
            time.sleep(0.2)

    def stop(self) -> set[int]:
        """Stop the writer; return the acknowledged ids."""
        terminate(self.proc)
        self._out.close()
        return self.acked()


def committed(cluster, node: str) -> set[int]:
    """Ids present in the counter table on a node."""
    proc = sql(cluster, node, "SELECT id FROM hamail_test.counter")
    assert proc.returncode == 0, proc.stderr
    return {int(x) for x in proc.stdout.split()}


def primary(cluster, node: str) -> bool:
    """Whether node's server runs in a Primary component now."""
    return cluster.is_running(node) and wsrep(cluster, node).get("wsrep_cluster_status") == "Primary"


def never_primary(cluster, nodes, seconds: float, resource: str = "galera") -> None:
    """Poll for the given time: none of nodes runs a Primary component or a Promoted instance (in its own view)."""
    end = time.monotonic() + seconds
    while True:
        for node in nodes:
            assert not primary(cluster, node), f"{node} formed a Primary component"
            if cluster.is_running(node):
                role = roles(cluster, resource, node=node).get(node)
                assert role != "Promoted", f"{node} runs a Promoted instance"
        if time.monotonic() >= end:
            return
        time.sleep(0.5)


def log_marks(cluster, nodes) -> dict[str, int]:
    """The current length of each node's server error log (what bootstrapped_since reads from)."""
    marks = {}
    for node in nodes:
        path = cluster.data_dir(node) / "galera" / "error.log"
        marks[node] = path.stat().st_size if path.exists() else 0
    return marks


def bootstrapped_since(cluster, marks: dict[str, int]) -> list[str]:
    """Nodes whose server started a new Primary component (--wsrep-new-cluster) after the marks."""
    out = []
    for node, offset in sorted(marks.items()):
        path = cluster.data_dir(node) / "galera" / "error.log"
        if not path.exists():
            continue
        with open(path, "rb") as handle:
            handle.seek(offset)
            if NEW_GROUP.encode() in handle.read():
                out.append(node)
    return out


@contextlib.contextmanager
def quorum_policy(cluster, value: str):
    """Run the block with the cluster property no-quorum-policy set to value; restore the old value after.

    With the lab's "stop", Pacemaker stops every instance of a partition without quorum whatever the agent
    decides; with "ignore" it recovers them there like anywhere else, so the agent's decision is what holds.
    """
    node = cluster.first_running()
    proc = cluster.run(node, ["crm_attribute", "-t", "crm_config", "-n", "no-quorum-policy", "-G", "-q"])
    old = proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None
    proc = cluster.run(node, ["crm_attribute", "-t", "crm_config", "-n", "no-quorum-policy", "-v", value])
    assert proc.returncode == 0, proc.stderr
    # A node killed next boots with the CIB on its disk, which pacemaker-based writes a moment after the change:
    # wait until every running node has it there (a CI run once killed node2 first and it came back with "stop").
    running = [n for n in cluster.nodes if cluster.is_running(n)]
    cluster.wait_for(lambda: all(_policy_on_disk(cluster, n) == value for n in running) or None, 30,
                     f"no-quorum-policy={value} written to every running node's CIB on disk")
    try:
        yield
    finally:
        tail = ["-v", old] if old else ["-D"]
        proc = cluster.run(cluster.first_running(), ["crm_attribute", "-t", "crm_config", "-n", "no-quorum-policy",
                                                     *tail])
        assert proc.returncode == 0, proc.stderr


def _policy_on_disk(cluster, node: str) -> str | None:
    """no-quorum-policy in the CIB file a node would boot with (None: unset or unreadable)."""
    from lxml import etree
    try:
        root = etree.parse(str(cluster.node_dir(node) / "var-lib-pacemaker" / "cib" / "cib.xml")).getroot()
    except (OSError, etree.XMLSyntaxError):
        return None
    found = root.xpath("//crm_config//nvpair[@name='no-quorum-policy']/@value")
    return str(found[0]) if found else None


def all_promoted(cluster, nodes, resource: str = "galera", timeout: float = 240, members: int | None = None) -> None:
    """Wait until every one of nodes runs a Promoted instance of resource, Synced, all in one component (of
    `members` members: more than the nodes when an arbitrator is one)."""
    def done():
        current = roles(cluster, resource)
        if any(current.get(n) != "Promoted" for n in nodes):
            return None
        status = [wsrep(cluster, n) for n in nodes]
        size = str(members or len(nodes))
        return all(s.get("wsrep_local_state_comment") == "Synced" and s.get("wsrep_cluster_size") == size
                   for s in status) or None
    cluster.wait_for(done, timeout, f"{resource} on {list(nodes)} Promoted, Synced, in one component")


STATUS_SCHEMA = ROOT / "lib" / "hamail" / "agents" / "galera" / "status-schema.json"


def status(cluster, node: str, resource: str | None = None) -> tuple[int, dict | None, str]:
    """`hamail-galera status [resource] --json` run inside node (this checkout's command): (exit status, the
    document checked against its schema, stderr)."""
    import json
    import jsonschema
    proc = cluster.run(node, [str(ROOT / "sbin" / "hamail-galera"), "status", *([resource] if resource else []),
                              "--json"], timeout=60)
    doc = None
    if proc.stdout.strip():
        doc = json.loads(proc.stdout)
        jsonschema.validate(doc, json.loads(STATUS_SCHEMA.read_text()))
    return proc.returncode, doc, proc.stderr


def ok(cluster, argv, node: str | None = None):
    """Run a command inside a node (the first running by default) and insist that it succeeds."""
    proc = cluster.run(node or cluster.first_running(), argv)
    assert proc.returncode == 0, (argv, proc.stdout, proc.stderr)
    return proc
