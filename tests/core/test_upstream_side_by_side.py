# SPDX-License-Identifier: GPL-2.0-or-later
"""Switching provider never makes a working configuration worse: upstream's agent and ours run side by side on the
same inputs (the same OCF_RESKEY_* and meta attributes, the same real loop device, veth or state directory), and
their exit codes for a probe, validate-all, start and stop are compared row by row with the table below.

A row states upstream's codes as observed here (resource-agents 4.12's heartbeat agents) and ours; where ours
differs, the row says why (ours is safer, or upstream is plainly broken there). Whatever the table says, a probe
of ours never answers 5 or 6 for a condition local to the node (that would stop the resource on every node), a
value upstream tolerates is tolerated by ours with a warning naming the parameter, and a configuration with
several problems is refused with all of them named in the one exit reason.

Each agent's actions run as one batch, Filesystem's in a private mount and PID namespace: upstream's stop with
directory=/ unmounts everything beneath / and signals every process using the root filesystem.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from testlib import AGENTS, NODE_PYTHON

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "agents"))
from agent_support import LoopLab, NetPair, sh  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for loop devices, mounts and namespaces")

UPSTREAM = pathlib.Path("/usr/lib/ocf/resource.d")
ACTIONS = ("probe", "validate-all", "start", "stop")
REASON = "ocf-exit-reason:"


class Row:
    """One input: parameters (a function of the lab), meta attributes, and the codes for ACTIONS.

    upstream: upstream's codes; ours: our codes when they differ (with why); None in a tuple: the action is not
    run (its effect cannot be had here, e.g. a start needing an NFS server, or running it is unsafe). local: the
    problem is a condition of this node (a device, interface or directory absent here), so our probe must not
    answer 5 or 6. warns: parameters our validate-all must warn about (tolerated odd values). names: parameters
    our exit reason must name, all at once.
    """

    def __init__(self, agent, ident, params, upstream, ours=None, why="", meta=None, local=False, warns=(),
                 names=()):
        self.agent, self.ident, self.params, self.meta = agent, ident, params, dict(meta or {})
        self.upstream, self.ours, self.why = tuple(upstream), tuple(ours or upstream), why
        self.local, self.warns, self.names = local, tuple(warns), tuple(names)

    def __repr__(self):
        return f"{self.agent}:{self.ident}"


def _fs(lab, **extra):
    base = {"device": lab.device, "directory": str(lab.mnt), "fstype": "ext4"}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def _ip(lab, **extra):
    return {"ip": "192.0.2.50", **extra}


def _gal(lab, **extra):
    base = {"binary": "/usr/sbin/mariadbd", "config": str(lab.cnf), "datadir": str(lab.datadir),
            "pid": str(lab.base / "mysqld.pid"), "socket": str(lab.base / "mysqld.sock"),
            "log": str(lab.base / "error.log"), "wsrep_cluster_address": "gcomm://node1,n2,n3"}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def _garbd(lab, **extra):
    base = {"binary": "/usr/bin/garbd", "wsrep_cluster_address": "gcomm://n1:4567,n2:4567",
            "wsrep_cluster_name": "hmsbs", "pid": str(lab.base / "garbd.pid"), "log": str(lab.base / "garbd.log")}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


# What Pacemaker 2.1 passes a promotable clone's instances (seen in an environment dump on the lab): both
# spellings of promoted-max, never `promotable` itself; a plain clone's instances get clone_max only.
PROMOTABLE_PAIR = {"clone_max": "2", "promoted_max": "1", "master_max": "1", "notify": "true"}
PROMOTABLE_GALERA = {"clone_max": "3", "promoted_max": "3", "master_max": "3", "notify": "true", "on_node": "node1"}


# Why ours differs, where the reason is shared by several rows.
STOP_RULE = ("stop: ours succeeds on an invalid configuration when nothing it describes is there to stop (a failed "
             "stop gets the node fenced)")
SYNTAX_AT_PROBE = ("a malformed value is wrong on every node: ours says so at the probe too (upstream's findif checks "
                   "only for start and validate-all); not a condition of this node")
CLONE = ("a clone of a non-cluster filesystem corrupts it: ours refuses it at validate-all (so pcs "
         "--agent-validation catches it) and at the probe; upstream only at start")
UPSTREAM_REQUIRED = ("upstream's own metadata declares {} required (pcs refuses the resource without it){}: ours "
                     "enforces it at every action, so pcs --agent-validation catches it")

TABLE = [
    # ---------------------------------------------------------------- Filesystem
    Row("Filesystem", "good", lambda lab: _fs(lab), (7, 0, 0, 0)),
    Row("Filesystem", "mount point absent (created)", lambda lab: _fs(lab, directory=str(lab.base / "new")),
        (7, 0, 0, 0), local=True),
    Row("Filesystem", "device absent on this node", lambda lab: _fs(lab, device=lab.absent_device),
        (7, 0, 5, 0), local=True),
    Row("Filesystem", "run_fsck=maybe", lambda lab: _fs(lab, run_fsck="maybe"), (7, 0, 0, 0), warns=["run_fsck"]),
    Row("Filesystem", "force_unmount=maybe", lambda lab: _fs(lab, force_unmount="maybe"), (7, 0, 0, 0),
        warns=["force_unmount"]),
    Row("Filesystem", "force_unmount=safe", lambda lab: _fs(lab, force_unmount="safe"), (7, 0, 0, 0)),
    Row("Filesystem", "fast_stop=maybe", lambda lab: _fs(lab, fast_stop="maybe"), (7, 0, 0, 0),
        warns=["fast_stop"]),
    Row("Filesystem", "device -L label", lambda lab: _fs(lab, device=f"-L {lab.label}"), (7, 0, 0, 0)),
    Row("Filesystem", "device --uuid=", lambda lab: _fs(lab, device=f"--uuid={lab.uuid}"), (7, 0, 0, 0)),
    Row("Filesystem", "device LABEL=", lambda lab: _fs(lab, device=f"LABEL={lab.label}"), (7, 0, 5, 0),
        ours=(7, 0, 0, 0), why="ours resolves mount(8)'s LABEL= form; upstream 4.12 looks for a block device "
                               "literally named 'LABEL=...' and fails"),
    Row("Filesystem", "device is a regular file", lambda lab: _fs(lab, device=str(lab.plain_file)),
        (7, 0, 5, 0), local=True),
    Row("Filesystem", "device holds another fstype", lambda lab: _fs(lab, fstype="xfs"), (7, 0, 1, 0),
        local=True),
    Row("Filesystem", "fstype unknown to this kernel", lambda lab: _fs(lab, fstype="hamailnofs"), (7, 0, 5, 0),
        local=True),
    Row("Filesystem", "bind mount", lambda lab: _fs(lab, device=str(lab.bind_source), fstype="none",
                                                     options="bind"), (7, 0, 0, 0)),
    Row("Filesystem", "bind source absent", lambda lab: _fs(lab, device=str(lab.base / "nosuchsrc"),
                                                             fstype="none", options="bind"), (7, 0, 1, 0),
        ours=(7, 0, 5, 0), local=True,
        why="the source is missing on this node: ours says so before mounting, with OCF_ERR_INSTALLED as for a "
            "missing device (this node is banned, the others may run it); upstream's mount fails generically"),
    Row("Filesystem", "tmpfs", lambda lab: _fs(lab, device="hmsbs", fstype="tmpfs"), (7, 0, 0, 0)),
    Row("Filesystem", "nfs (no start: no server)", lambda lab: _fs(lab, device="server:/export", fstype="nfs4"),
        (7, 0, None, 0)),
    Row("Filesystem", "device unset", lambda lab: _fs(lab, device=None), (6, 6, 6, 6), ours=(6, 6, 6, 0),
        why=STOP_RULE),
    Row("Filesystem", "directory unset", lambda lab: _fs(lab, directory=None), (7, 0, 6, 0), ours=(6, 6, 6, 0),
        why=UPSTREAM_REQUIRED.format("directory", " and its start fails without it")),
    Row("Filesystem", "fstype unset", lambda lab: _fs(lab, fstype=None), (7, 0, 0, 0), ours=(6, 6, 6, 0),
        why=UPSTREAM_REQUIRED.format("fstype", "") + " rather than letting mount guess the type of whatever the "
                                                     "device holds"),
    Row("Filesystem", "directory is /", lambda lab: _fs(lab, directory="/"), (0, 0, 0, None), ours=(6, 6, 6, 0),
        why="upstream's probe reports the root filesystem as this resource running, and its stop unmounts "
            "everything beneath / and signals every process using the root filesystem (so it is not run here): "
            "ours refuses to manage /"),
    Row("Filesystem", "directory relative", lambda lab: _fs(lab, directory="relative/dir"), (7, 0, 0, 0),
        warns=["directory"]),
    Row("Filesystem", "ext4 clone", lambda lab: _fs(lab), (7, 0, 6, 0), ours=(6, 6, 6, 0), why=CLONE,
        meta={"clone": "0", "clone_max": "2"}),
    Row("Filesystem", "ext4 clone, force_clones=maybe", lambda lab: _fs(lab, force_clones="maybe"), (7, 0, 6, 0),
        ours=(6, 6, 6, 0), why=CLONE, meta={"clone": "0", "clone_max": "2"}, warns=["force_clones"]),
    Row("Filesystem", "ext4 clone, force_clones=true", lambda lab: _fs(lab, force_clones="true"), (7, 0, 0, 0),
        meta={"clone": "0", "clone_max": "2"}),
    Row("Filesystem", "several problems", lambda lab: _fs(lab, device="hmsbs", fstype="tmpfs", term_signals="NOSUCH",
                                                           kill_signals="BOGUS", refuse_network_fs="true"),
        (7, 0, 0, 0), ours=(6, 6, 6, 0), names=["term_signals", "kill_signals", "refuse_network_fs"],
        why="parameters upstream 4.12 does not have (it ignores them; newer resource-agents have the signal ones): "
            "an unknown signal would leave stop unable to free the mount, and refuse_network_fs is there to "
            "refuse a filesystem that is not on local block storage"),
    # ---------------------------------------------------------------- IPaddr2
    Row("IPaddr2", "good, autodetected", lambda lab: _ip(lab), (7, 0, 0, 0)),
    Row("IPaddr2", "good, nic and dotted netmask", lambda lab: _ip(lab, nic=lab.nic, cidr_netmask="255.255.255.0"),
        (7, 0, 0, 0)),
    Row("IPaddr2", "nic:label form", lambda lab: _ip(lab, nic=f"{lab.nic}:v1"), (7, 0, 0, 0)),
    Row("IPaddr2", "nic absent on this node", lambda lab: _ip(lab, nic="hmsbsnosuch0"), (7, 6, 6, 0),
        ours=(7, 5, 5, 0), local=True,
        why="the interface is missing on this node only: OCF_ERR_INSTALLED bans this node and the address "
            "starts elsewhere; upstream's 6 keeps it stopped on every node"),
    Row("IPaddr2", "no route for the address", lambda lab: _ip(lab, ip="198.51.100.5"), (7, 1, 1, 0),
        local=True),
    Row("IPaddr2", "network_namespace absent", lambda lab: _ip(lab, network_namespace="hmsbsnosuchns"),
        (255, 255, 255, 255), ours=(7, 5, 5, 0), local=True,
        why="upstream exits with ip netns exec's 255, which is no OCF code; the namespace is missing on this "
            "node only (OCF_ERR_INSTALLED, and a probe finds nothing running)"),
    Row("IPaddr2", "bad ip", lambda lab: _ip(lab, ip="192.0.2.300"), (7, 6, 6, 0), ours=(6, 6, 6, 0),
        why=SYNTAX_AT_PROBE),
    Row("IPaddr2", "cidr_netmask 33", lambda lab: _ip(lab, cidr_netmask="33"), (7, 6, 6, 0), ours=(6, 6, 6, 0),
        why=SYNTAX_AT_PROBE),
    Row("IPaddr2", "broadcast nonsense", lambda lab: _ip(lab, broadcast="nonsense"), (7, 6, 6, 0),
        ours=(6, 6, 6, 0), why=SYNTAX_AT_PROBE),
    Row("IPaddr2", "iflabel too long", lambda lab: _ip(lab, iflabel="much-too-long-label"), (6, 6, 6, 6),
        ours=(6, 6, 6, 0), why=STOP_RULE),
    Row("IPaddr2", "ip unset", lambda lab: {}, (6, 6, 6, 0)),
    Row("IPaddr2", "lvs_support=maybe", lambda lab: _ip(lab, lvs_support="maybe"), (7, 0, 0, 0),
        warns=["lvs_support"]),
    Row("IPaddr2", "flush_routes=maybe", lambda lab: _ip(lab, flush_routes="maybe"), (7, 0, 0, 0),
        warns=["flush_routes"]),
    Row("IPaddr2", "arp_count=many", lambda lab: _ip(lab, arp_count="many"), (6, 6, 6, 6), ours=(6, 6, 6, 0),
        why=STOP_RULE),
    Row("IPaddr2", "arp_count=0", lambda lab: _ip(lab, arp_count="0"), (6, 6, 6, 6), ours=(7, 0, 0, 0),
        why="no announcement at all is a valid choice for ours (where gratuitous ARPs are policed); upstream "
            "requires at least one"),
    Row("IPaddr2", "several problems", lambda lab: _ip(lab, ip="192.0.2.300", cidr_netmask="33",
                                                        broadcast="nonsense", iflabel="much-too-long-label"),
        (7, 6, 6, 0), ours=(6, 6, 6, 0), why=SYNTAX_AT_PROBE, names=["ip", "cidr_netmask", "broadcast", "iflabel"]),
    # ---------------------------------------------------------------- Dummy
    Row("Dummy", "good, default state", lambda lab: {}, (7, 0, 0, 0)),
    Row("Dummy", "state given", lambda lab: {"state": str(lab.base / "dummy.state")}, (7, 0, 0, 0)),
    Row("Dummy", "state directory absent", lambda lab: {"state": str(lab.base / "nosuchdir" / "x.state")},
        (7, 2, 1, 0), ours=(7, 0, 0, 0), local=True,
        why="ours creates the state file's directory (as it does HA_RSCTMP); upstream's validate-all answers 2, "
            "which is no validation code, and its start fails"),
    Row("Dummy", "state relative", lambda lab: {"state": "relative.state"}, (7, 0, 0, 0), warns=["state"]),
    Row("Dummy", "state is a directory", lambda lab: {"state": str(lab.base)}, (7, 0, 0, 0), ours=(6, 6, 6, 0),
        why="upstream's start touches the directory and answers 0, and every monitor after it reports stopped: "
            "the resource can never run; ours refuses the configuration"),
    # ---------------------------------------------------------------- Stateful (pacemaker's)
    Row("Stateful", "good, default state", lambda lab: {}, (7, 0, 0, 0), meta=PROMOTABLE_PAIR),
    Row("Stateful", "state given", lambda lab: {"state": str(lab.base / "stateful.state")}, (7, 0, 0, 0),
        meta=PROMOTABLE_PAIR),
    Row("Stateful", "state directory absent", lambda lab: {"state": str(lab.base / "nosuchdir" / "s.state")},
        (7, 0, 0, 0), local=True, meta=PROMOTABLE_PAIR),
    Row("Stateful", "envfile and notify_delay", lambda lab: {"envfile": str(lab.base / "stateful.env"),
                                                            "notify_delay": "1"}, (7, 0, 0, 0),
        meta=PROMOTABLE_PAIR),
    # ---------------------------------------------------------------- galera
    # start needs a running Pacemaker (both agents publish node attributes): a start that gets past validation is
    # not run here (tests/galera runs it on real clusters); every refused configuration is refused before that.
    Row("galera", "good", lambda lab: _gal(lab), (7, 0, None, 0), meta=PROMOTABLE_GALERA),
    Row("galera", "wsrep_cluster_address unset", lambda lab: _gal(lab, wsrep_cluster_address=None), (7, 6, 6, 0),
        ours=(6, 6, 6, 0), meta=PROMOTABLE_GALERA,
        why="a required parameter missing is wrong on every node: ours says so at the probe too (upstream's probe "
            "answers 'not running' for any invalid configuration)"),
    Row("galera", "this node not in the address", lambda lab: _gal(lab, wsrep_cluster_address="gcomm://n2,n3"),
        (7, 0, None, 0), ours=(7, 5, 5, 0), local=True, meta=PROMOTABLE_GALERA,
        why="no galera instance may run on a node outside the address (an arbitrator or mail node beside the "
            "database nodes): OCF_ERR_INSTALLED keeps the instance off this node only, at validate-all already"),
    Row("galera", "binary absent on this node", lambda lab: _gal(lab, binary=str(lab.base / "no-mysqld")),
        (7, 5, 5, 0), local=True, meta=PROMOTABLE_GALERA),
    Row("galera", "config absent on this node", lambda lab: _gal(lab, config=str(lab.base / "no.cnf")),
        (7, 5, 5, 0), local=True, meta=PROMOTABLE_GALERA),
    Row("galera", "datadir absent on this node", lambda lab: _gal(lab, datadir=str(lab.base / "nodata")),
        (7, 5, 5, 0), local=True, meta=PROMOTABLE_GALERA),
    Row("galera", "user absent on this node", lambda lab: _gal(lab, user="hmsbsnosuchuser"), (7, 5, 5, 0),
        local=True, meta=PROMOTABLE_GALERA),
    Row("galera", "group absent on this node", lambda lab: _gal(lab, group="hmsbsnosuchgroup"), (7, 5, 5, 0),
        local=True, meta=PROMOTABLE_GALERA),
    Row("galera", "client_binary absent", lambda lab: _gal(lab, client_binary=str(lab.base / "no-mysql")),
        (7, 5, 5, 0), ours=(7, 0, None, 0), meta=PROMOTABLE_GALERA,
        why="ours never runs the client (it talks to the server with PyMySQL over the socket), so a missing "
            "client is no reason to keep the database off this node"),
    Row("galera", "not a promotable clone", lambda lab: _gal(lab), (7, 0, 6, 0), ours=(6, 6, 6, 0),
        meta={"clone_max": "3", "on_node": "node1"},
        why="a galera instance that can never be promoted never runs the server: ours says so at validate-all "
            "(pcs --agent-validation) and at the probe, naming the clone meta to set; upstream only at start"),
    Row("galera", "a primitive, not a clone", lambda lab: _gal(lab, crm_feature_set="3.16.1"), (7, 0, 6, 0),
        ours=(6, 6, 6, 0), meta={"on_node": "node1"},
        why="a galera primitive is never promoted, so it never runs the server: ours says so at validate-all and "
            "at the probe (Pacemaker passes crm_feature_set to every agent it runs), naming the clone to make"),
    Row("galera", "promoted-max below the node count", lambda lab: _gal(lab), (7, 0, None, 0), ours=(6, 6, 6, 0),
        meta={**PROMOTABLE_GALERA, "promoted_max": "1", "master_max": "1"},
        why="with promoted-max 1 only one of the three nodes ever runs the server (the others wait Unpromoted "
            "forever, with upstream too): ours refuses it, naming the meta attribute to set"),
    Row("galera", "credentials_file readable by others", lambda lab: _gal(lab, credentials_file=str(lab.open_creds)),
        (7, 0, None, 0), ours=(6, 6, 6, 0), meta=PROMOTABLE_GALERA,
        why="a password file others can read is refused on every action (upstream has no such parameter and "
            "ignores it)"),
    Row("galera", "several problems", lambda lab: _gal(lab, sync_allowance="soon", two_node_mode="perhaps",
                                                       enable_creation="perhaps"),
        (7, 0, None, 0), ours=(6, 6, 6, 0), meta=PROMOTABLE_GALERA,
        names=["sync_allowance", "two_node_mode", "enable_creation"],
        why="upstream 4.12 has no sync_allowance, takes any two_node_mode but a true word as false, and reads "
            "enable_creation only when it finds an empty datadir: ours refuses all three at once, naming each"),
    Row("galera", "malformed cluster_host_map", lambda lab: _gal(lab, cluster_host_map="node1"),
        (7, 0, None, 0), ours=(6, 6, 6, 0), meta=PROMOTABLE_GALERA,
        why="upstream 4.12 reads cluster_host_map only when it needs a name (it then finds none and fails "
            "later); the map is the same on every node, so ours refuses it at once"),
    # ---------------------------------------------------------------- garbd
    # A start that passes validation needs a Primary component to join (tests/galera/test_garbd_agent.py).
    Row("garbd", "good", lambda lab: _garbd(lab), (7, 0, None, 0)),
    Row("garbd", "binary /usr/sbin/garbd (upstream's default)", lambda lab: _garbd(lab, binary="/usr/sbin/garbd"),
        (5, 5, 5, 0),
        ours=(7, 0, None, 0), warns=["binary"],
        why="upstream's default /usr/sbin/garbd does not exist on Debian (galera-arbitrator-4 installs "
            "/usr/bin/garbd), so upstream refuses its own default everywhere; ours uses garbd from PATH and warns"),
    Row("garbd", "binary absent on this node", lambda lab: _garbd(lab, binary=str(lab.base / "no-garbd")),
        (5, 5, 5, 0), ours=(7, 5, 5, 0), local=True,
        why="software missing on this node: ours' probe says not running (upstream's 5 from a probe stops the "
            "resource on every node)"),
    Row("garbd", "address without ports", lambda lab: _garbd(lab, wsrep_cluster_address="gcomm://n1,n2"),
        (6, 6, 6, 0), ours=(7, 0, None, 0),
        why="ours gives garbd Galera's default port 4567 where none is spelled out, as the database nodes "
            "themselves assume; upstream refuses the address the galera resource beside it accepts"),
    Row("garbd", "wsrep_cluster_address unset", lambda lab: _garbd(lab, wsrep_cluster_address=None),
        (6, 6, 6, 0)),
    Row("garbd", "wsrep_cluster_name unset", lambda lab: _garbd(lab, wsrep_cluster_name=None), (6, 6, 6, 0)),
    Row("garbd", "user absent on this node", lambda lab: _garbd(lab, user="hmsbsnosuchuser"), (5, 5, 5, 0),
        ours=(7, 5, 5, 0), local=True,
        why="a user missing on this node: ours' probe says not running (upstream's 5 from a probe stops the "
            "resource on every node)"),
    Row("garbd", "group absent on this node", lambda lab: _garbd(lab, group="hmsbsnosuchgroup"), (5, 5, 5, 0),
        ours=(7, 5, 5, 0), local=True,
        why="a group missing on this node: ours' probe says not running (upstream's 5 from a probe stops the "
            "resource on every node)"),
]


# ---------------------------------------------------------------- labs: the real things each agent works on

# Runs one agent's actions in sequence and reports their results and the mount table it ends with: Filesystem's
# batches run in a private mount and PID namespace, so whatever either agent's stop signals or leaves mounted
# (upstream's fuser -m sees every process using the filesystem a directory is on) cannot touch the host.
BATCH = r"""
import json, subprocess, sys
results = []
for job in json.load(sys.stdin):
    done = subprocess.run(job["argv"], env=job["env"], cwd=job["cwd"], capture_output=True, text=True, timeout=120)
    results.append([done.returncode, done.stderr])
with open("/proc/self/mountinfo") as handle:
    mounts = [line.split()[4] for line in handle]
json.dump({"results": results, "mounts": mounts}, sys.stdout)
"""


class FsLab:
    """An ext4 loop device (labelled), a bind source, a plain file, a device path absent here; all removed after."""

    prefix = ("unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc")

    def __init__(self, base):
        self.base = pathlib.Path(base)
        self.loops = LoopLab(self.base)
        self.label = f"hmsbs{os.getpid() % 100000}"
        self.device = self.loops.device("ext4", label=self.label)
        self.uuid = sh("blkid", "-p", "-o", "value", "-s", "UUID", self.device).stdout.strip()
        self.mnt = self.loops.dir("mnt")
        self.bind_source = self.loops.dir("bindsrc")
        self.plain_file = self.base / "plain.img"
        self.plain_file.write_bytes(b"\0" * 4096)
        # /dev/drbd0 as in the report, or the first DRBD minor that does not exist on this node
        self.absent_device = next(f"/dev/drbd{n}" for n in range(1000) if not os.path.exists(f"/dev/drbd{n}"))

    def residue(self, mounts, rsctmp):
        """What a stop left behind: mounts under the lab (in the batch's namespace)."""
        return [point for point in mounts if point.startswith(str(self.base))]

    def teardown(self):
        self.loops.teardown()


class NetLab:
    """A veth pair in two private network namespaces; the agents run in the first."""

    def __init__(self, base):
        self.base = pathlib.Path(base)
        self.pair = NetPair(f"{os.getpid() % 1000:03d}99").setup()
        self.nic = self.pair.nic
        self.prefix = ("ip", "netns", "exec", self.pair.ns)

    def residue(self, mounts, rsctmp):
        """Addresses a stop left behind."""
        return [line for line in self.pair.addrs().splitlines() if "192.0.2.50" in line or "198.51.100" in line]

    def teardown(self):
        self.pair.teardown()


class DirLab:
    """A directory for state files."""

    prefix = ()

    def __init__(self, base):
        self.base = pathlib.Path(base)

    def residue(self, mounts, rsctmp):
        """State files a stop left behind (given ones under the lab, default ones in HA_RSCTMP)."""
        return sorted(str(p) for d in (self.base, rsctmp) for p in d.rglob("*.state") if p.is_file())

    def teardown(self):
        pass


class NodeDirLab(DirLab):
    """A directory for state files, the agents run inside the 1-node lab cluster's node: both Stateful agents
    publish promotion scores, and Pacemaker's tools need a running cluster to take them."""

    def __init__(self, base, cluster):
        super().__init__(base)
        self.prefix = ("nsenter", "-t", str(cluster.init_pid(cluster.nodes[0])), "-a", "--")


class DbLab(NodeDirLab):
    """An option file, a data directory and a credentials file others can read, for galera, whose agents run
    inside the lab's node (both withdraw node attributes at stop)."""

    def __init__(self, base, cluster):
        super().__init__(base, cluster)
        self.cnf = self.base / "my.cnf"
        self.cnf.write_text("[mysqld]\n")
        self.datadir = self.base / "data"
        self.datadir.mkdir()
        self.open_creds = self.base / "open.cnf"
        self.open_creds.write_text("[client]\nuser = check\npassword = not-so-secret\n")
        self.open_creds.chmod(0o644)

    def residue(self, mounts, rsctmp):
        """Processes or pid files a stop left behind."""
        return sorted(str(p) for p in self.base.glob("*.pid"))


class ArbLab(DirLab):
    """A directory for garbd's pid file and log."""

    def residue(self, mounts, rsctmp):
        """A pid file a stop left behind."""
        return sorted(str(p) for p in self.base.glob("*.pid"))


LABS = {"Filesystem": FsLab, "IPaddr2": NetLab, "Dummy": DirLab, "Stateful": NodeDirLab, "galera": DbLab,
        "garbd": ArbLab}
# Where each upstream twin lives: heartbeat's agents, and pacemaker's Stateful.
TWINS = {"Filesystem": "heartbeat", "IPaddr2": "heartbeat", "Dummy": "heartbeat", "galera": "heartbeat",
         "garbd": "heartbeat", "Stateful": "pacemaker"}


@pytest.fixture(scope="module")
def labs(tmp_path_factory, request):
    """One lab per agent, made on first use, torn down at the end of the module."""
    made = {}

    def get(agent):
        if agent not in made:
            base = tmp_path_factory.mktemp(f"sbs-{agent}")
            if issubclass(LABS[agent], NodeDirLab):
                made[agent] = LABS[agent](base, request.getfixturevalue("cluster1"))
            else:
                made[agent] = LABS[agent](base)
        return made[agent]
    try:
        yield get
    finally:
        for lab in made.values():
            lab.teardown()


class Result:
    """One action's outcome."""

    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr


def job(which, row, action, params, lab, rsctmp):
    """One action of upstream's agent or ours ('upstream'/'ours') with the row's inputs, as pacemaker-execd runs it."""
    op = "monitor" if action == "probe" else action
    upstream = which == "upstream"
    program = [str(UPSTREAM / TWINS[row.agent] / row.agent)] if upstream else [NODE_PYTHON, str(AGENTS / row.agent)]
    # HA_VARRUN: pacemaker's Stateful keeps its default state file there (ocf-directories lets it be set)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf", "OCF_RA_VERSION_MAJOR": "1",
           "OCF_RA_VERSION_MINOR": "1", "OCF_RESOURCE_INSTANCE": f"sbs-{row.agent}", "OCF_RESOURCE_TYPE": row.agent,
           "OCF_RESOURCE_PROVIDER": TWINS[row.agent] if upstream else "hamail", "HA_RSCTMP": str(rsctmp),
           "HA_VARRUN": f"{rsctmp}/",
           "OCF_RESKEY_CRM_meta_timeout": "20000", "OCF_RESKEY_CRM_meta_interval": "0"}
    env.update({f"OCF_RESKEY_{k}": str(v) for k, v in params.items()})
    env.update({f"OCF_RESKEY_CRM_meta_{k}": str(v) for k, v in row.meta.items()})
    return {"argv": [*program, op], "env": env, "cwd": str(lab.base)}


def observe(row, lab, rsctmp):
    """{which: {action: Result or None}} for both agents; each one's start is undone by its own stop."""
    params = row.params(lab)
    rsctmp.mkdir(parents=True, exist_ok=True)
    seen = {}
    for which, expected in (("upstream", row.upstream), ("ours", row.ours)):
        actions = [a for a, code in zip(ACTIONS, expected) if code is not None]
        jobs = [job(which, row, action, params, lab, rsctmp) for action in actions]
        batch = subprocess.run([*lab.prefix, NODE_PYTHON, "-c", BATCH], input=json.dumps(jobs), capture_output=True,
                               text=True, timeout=600)
        assert batch.returncode == 0, batch.stderr
        report = json.loads(batch.stdout)
        done = dict(zip(actions, (Result(*r) for r in report["results"])))
        seen[which] = {action: done.get(action) for action in ACTIONS}
        left = lab.residue(report["mounts"], rsctmp)
        assert not left, f"{which} {row}: stop left {left}: {seen[which]['stop'].stderr}"
    return seen


def codes(results):
    """The exit codes of observe()'s results, None for actions not run."""
    return tuple(None if r is None else r.returncode for r in results.values())


def reason(result):
    """The exit reason line's text ('' when there is none)."""
    lines = [line[len(REASON):] for line in result.stderr.splitlines() if line.startswith(REASON)]
    return lines[-1] if lines else ""


def _params():
    """The rows as pytest parameters; those needing a cluster are marked (make test-fast leaves them out)."""
    return [pytest.param(row, id=repr(row), marks=[pytest.mark.cluster] if issubclass(LABS[row.agent], NodeDirLab) else [])
            for row in TABLE]


@pytest.mark.parametrize("row", _params())
def test_side_by_side(row, labs, tmp_path):
    lab = labs(row.agent)
    seen = observe(row, lab, tmp_path / "rsc")
    upstream, ours = codes(seen["upstream"]), codes(seen["ours"])
    detail = {w: {a: (r.returncode, r.stderr[-600:]) for a, r in res.items() if r is not None}
              for w, res in seen.items()}
    assert (upstream, ours) == (row.upstream, row.ours), f"upstream {upstream}, ours {ours}: {detail}"
    validate = seen["ours"]["validate-all"]
    for name in row.warns:
        warned = [line for line in validate.stderr.splitlines() if "WARNING" in line and name in line]
        assert warned, f"validate-all tolerated {name} without a warning naming it: {validate.stderr}"
    if row.names:
        text = reason(validate)
        assert all(f"parameter {name}:" in text for name in row.names), text
        assert validate.stderr.count(REASON) == 1, validate.stderr


def test_the_table_keeps_the_rules():
    """Every agent with an upstream twin has rows; ours differs only with a reason; no probe of ours answers 5 or 6
    for a condition of this node (Pacemaker would stop the resource on every node); rows are unique."""
    ours = {p.name for p in AGENTS.iterdir()}
    twins = {name for name in ours if (UPSTREAM / "heartbeat" / name).exists() or (UPSTREAM / "pacemaker" / name).exists()}
    assert {row.agent for row in TABLE} == twins == set(LABS) == set(TWINS)
    assert all((UPSTREAM / where / name).is_file() for name, where in TWINS.items())
    unjustified = [row for row in TABLE if row.ours != row.upstream and not row.why.strip()]
    assert unjustified == []
    needless = [row for row in TABLE if row.ours == row.upstream and row.why]
    assert needless == [], "a row saying why where nothing differs"
    local_failures = [row for row in TABLE if row.local and row.ours[0] in (5, 6)]
    assert local_failures == []
    idents = [(row.agent, row.ident) for row in TABLE]
    assert len(idents) == len(set(idents))
