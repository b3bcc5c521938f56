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


def _slapd(lab, **extra):
    base = {"config": str(lab.server.config), "services": f"ldap://127.0.0.1:{lab.server.port}/"}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def _pf(lab, **extra):
    base = {"config_dir": str(lab.server.conf)}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def _dc(lab, **extra):
    # heartbeat's dovecot ignores config_file (it tests an unset config_dir): `-c` in parameters and the pid file
    # make it manage the same instance as ours
    base = {"config_file": str(lab.server.config), "parameters": f"-c {lab.server.config}",
            "pid_file": str(lab.server.pid_file)}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def _my(lab, **extra):
    base = {"binary": "/usr/sbin/mariadbd", "config": str(lab.cnf), "datadir": str(lab.datadir),
            "pid": str(lab.run / "mysqld.pid"), "socket": str(lab.run / "mysqld.sock"),
            "log": str(lab.run / "error.log")}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def _web(lab, **extra):
    base = {"configfile": str(lab.site.config)}
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
OTHER_HTTPD = ("a configured httpd missing on this node: ours bans this node (OCF_ERR_INSTALLED) and its probe says not "
               "running; upstream silently runs whichever web server binary it finds instead")
NGINX_URL = ("upstream's validate-all refuses the status URL it derives itself (http://127.0.0.1:PORT, no path: it "
             "wants http://*/*) with 2, which is no validation code; ours derives the stub_status location's URL")
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
    # ---------------------------------------------------------------- mysql
    Row("mysql", "good", lambda lab: _my(lab), (7, 0, 0, 0)),
    Row("mysql", "binary absent on this node", lambda lab: _my(lab, binary=str(lab.base / "no-mariadbd")),
        (7, 5, 5, 0), local=True),
    Row("mysql", "config absent on this node", lambda lab: _my(lab, config=str(lab.base / "no.cnf")),
        (7, 5, 5, 0), local=True),
    Row("mysql", "datadir absent on this node", lambda lab: _my(lab, datadir=str(lab.base / "nodata")),
        (7, 5, 5, 0), local=True),
    Row("mysql", "user absent on this node", lambda lab: _my(lab, user="hmsbsnosuchuser"), (7, 5, 5, 0),
        local=True),
    Row("mysql", "unknown option in the config", lambda lab: _my(lab, config=str(lab.bad_cnf)), (7, 0, 1, 0),
        ours=(7, 6, 6, 0),
        why="ours runs the server's own option parser at validate-all and start and refuses the file with its "
            "first [ERROR] line (6: the same file fails on every node); upstream finds out when the server dies "
            "starting (1, and Pacemaker tries the next node with the same file)"),
    Row("mysql", "enable_creation=maybe", lambda lab: _my(lab, enable_creation="maybe"), (7, 0, 0, 0),
        warns=["enable_creation"]),
    Row("mysql", "test_table with SQL after the name", lambda lab: _my(lab, test_table="mysql.user; DROP TABLE t"),
        (7, 0, 0, 0), ours=(6, 6, 6, 0),
        why="upstream pastes test_table into its SQL (it runs at depth 10 only); ours refuses anything but "
            "database.table at every action"),
    Row("mysql", "promotable clone", lambda lab: _my(lab), (7, 0, None, 0), ours=(6, 6, 6, 0),
        meta=PROMOTABLE_PAIR,
        why="ours runs one server, as the Kopano guide does, and manages no replication: a promotable clone is "
            "refused at every action, naming the fix (upstream's replication start needs a cluster to run here)"),
    Row("mysql", "credentials_file readable by others", lambda lab: _my(lab, credentials_file=str(lab.open_creds)),
        (7, 0, 0, 0), ours=(7, 6, 6, 0),
        why="a password file others can read is refused at validate-all and start (upstream has no such "
            "parameter and ignores it)"),
    # ---------------------------------------------------------------- slapd
    Row("slapd", "good", lambda lab: _slapd(lab), (7, 0, 0, 0)),
    Row("slapd", "good, bound as the root DN", lambda lab: _slapd(lab, bind_dn=lab.admin, password=lab.password),
        (7, 0, 0, 0)),
    Row("slapd", "slapd absent on this node", lambda lab: _slapd(lab, slapd=str(lab.base / "no-slapd")),
        (5, 5, 5, 5), ours=(7, 5, 5, 0), local=True,
        why="software missing on this node: ours' probe says not running (upstream's 5 from a probe stops the "
            "resource on every node) and its stop succeeds (nothing of it can run here)"),
    Row("slapd", "config absent on this node", lambda lab: _slapd(lab, config=str(lab.base / "nowhere.d")),
        (7, 5, 5, 5), ours=(7, 5, 5, 0), local=True, why=STOP_RULE),
    Row("slapd", "user absent on this node", lambda lab: _slapd(lab, user="hmsbsnosuchuser"), (5, 5, 5, 5),
        ours=(7, 5, 5, 0), local=True,
        why="a user missing on this node: ours' probe says not running (upstream's 5 from a probe stops the "
            "resource on every node), and its stop succeeds"),
    Row("slapd", "configuration slaptest rejects", lambda lab: _slapd(lab, config=str(lab.bad_conf)),
        (7, 0, 1, 0), ours=(7, 6, 6, 0),
        why="ours runs slaptest at validate-all and start and refuses the configuration with its first line (6: "
            "the same file fails on every node); upstream finds out when slapd exits at start"),
    Row("slapd", "wrong bind password", lambda lab: _slapd(lab, bind_dn=lab.admin, password="hmsbs-wrong"),
        (7, 0, None, 0), ours=(7, 0, 6, 0),
        why="upstream's start loops on its monitor's 6 (invalid credentials) until Pacemaker's timeout kills it "
            "(so it is not run here); ours' start fails at once with 6 naming the bind"),
    Row("slapd", "maxfiles=lots", lambda lab: _slapd(lab, maxfiles="lots"), (7, 0, 0, 0), warns=["maxfiles"]),
    Row("slapd", "password_file readable by others", lambda lab: _slapd(lab, password_file=str(lab.open_pw)),
        (7, 0, 0, 0), ours=(7, 5, 5, 0), local=True,
        why="a password file others can read is refused at validate-all and start (upstream has no such "
            "parameter and ignores it)"),
    # ---------------------------------------------------------------- apache
    Row("apache", "good", lambda lab: _web(lab), (7, 0, 0, 0)),
    Row("apache", "httpd absent on this node", lambda lab: _web(lab, httpd=str(lab.base / "no-httpd")),
        (7, 0, 0, 0), ours=(7, 5, 5, 0), local=True, why=OTHER_HTTPD),
    Row("apache", "httpd=/usr/sbin/httpd (upstream's default)", lambda lab: _web(lab, httpd="/usr/sbin/httpd"),
        (7, 0, 0, 0), warns=["httpd"]),
    Row("apache", "configfile absent on this node", lambda lab: _web(lab, configfile=str(lab.base / "no.conf")),
        (7, 5, 5, 0), local=True),
    Row("apache", "configuration httpd -t rejects", lambda lab: _web(lab, configfile=str(lab.broken)),
        (7, 0, None, 0), ours=(7, 6, 6, 0),
        why="ours runs apache2 -t at validate-all and start and refuses the file with its first error line (6: "
            "the same file fails on every node); upstream's validate-all does not check it and its start ignores "
            "httpd's exit status and polls until Pacemaker's timeout (so it is not run here)"),
    Row("apache", "testconffile absent on this node", lambda lab: _web(lab, testconffile=str(lab.base / "no.t")),
        (7, 5, 5, 0), local=True),
    Row("apache", "use_ipv6=maybe", lambda lab: _web(lab, use_ipv6="maybe"), (7, 0, 0, 0), warns=["use_ipv6"]),
    Row("apache", "port=abc", lambda lab: _web(lab, port="abc"), (7, 0, 0, 0), warns=["port"]),
    # ---------------------------------------------------------------- nginx
    Row("nginx", "good", lambda lab: _web(lab), (7, 2, 0, 0), ours=(7, 0, 0, 0), why=NGINX_URL),
    Row("nginx", "httpd absent on this node", lambda lab: _web(lab, httpd=str(lab.base / "no-httpd")),
        (7, 2, 0, 0), ours=(7, 5, 5, 0), local=True, why=OTHER_HTTPD),
    Row("nginx", "httpd=/usr/sbin/httpd (upstream's default)", lambda lab: _web(lab, httpd="/usr/sbin/httpd"),
        (7, 2, 0, 0), ours=(7, 0, 0, 0), warns=["httpd"], why=NGINX_URL),
    Row("nginx", "configfile absent on this node", lambda lab: _web(lab, configfile=str(lab.base / "no.conf")),
        (7, 6, 6, 0), ours=(7, 5, 5, 0), local=True,
        why="the file is missing on this node only (shared storage not mounted here): OCF_ERR_INSTALLED bans this "
            "node and the server starts elsewhere; upstream's 6 keeps it stopped on every node"),
    Row("nginx", "configuration nginx -t rejects", lambda lab: _web(lab, configfile=str(lab.broken)),
        (7, 2, 5, 0), ours=(7, 6, 6, 0),
        why="the same file fails on every node: ours answers 6 with nginx -t's first error line at validate-all "
            "and start; upstream's start answers 5 (banning only this node) and its validate-all the 2 above"),
    Row("nginx", "status10url relative", lambda lab: _web(lab, status10url="/nginx_status"), (7, 2, 0, 0),
        ours=(7, 0, 0, 0),
        why="ours takes a URL not starting with http relative to the first listen address, as both agents do "
            "for test20url; upstream's validate-all refuses it with 2, which is no validation code"),
    Row("nginx", "port=abc", lambda lab: _web(lab, port="abc"), (7, 2, 0, 0), ours=(7, 0, 0, 0), warns=["port"],
        why=NGINX_URL),
    # ---------------------------------------------------------------- postfix
    Row("postfix", "good", lambda lab: _pf(lab), (7, 0, 0, 0)),
    Row("postfix", "parameters -v", lambda lab: _pf(lab, parameters="-v"), (7, 0, 0, 0)),
    Row("postfix", "postfix absent on this node", lambda lab: _pf(lab, binary=str(lab.base / "no-postfix")),
        (5, 5, 5, 5), ours=(7, 5, 5, 0), local=True,
        why="software missing on this node: ours' probe says not running and its stop succeeds (upstream's 5 from "
            "a probe stops the resource on every node, from a stop it fences the node)"),
    Row("postfix", "config_dir absent on this node", lambda lab: _pf(lab, config_dir=str(lab.base / "nowhere")),
        (5, 5, 5, 0), ours=(7, 5, 5, 0), local=True,
        why="a directory missing on this node: ours' probe says not running (upstream's 5 from a probe stops the "
            "resource on every node)"),
    Row("postfix", "configuration postfix check rejects", lambda lab: _pf(lab, config_dir=str(lab.broken)),
        (7, 5, 5, 0), ours=(7, 6, 6, 0),
        why="a main.cf Postfix cannot parse is wrong on every node alike: ours says so with 6 and postconf's "
            "line; upstream answers 5 ('queue directory '' does not exist'), which bans this node and tries the "
            "same file on the next"),
    Row("postfix", "credentials_file readable by others",
        lambda lab: _pf(lab, credentials_file=str(lab.open_creds), probe_address="probe@example.test",
                        probe_imap="127.0.0.1:143"),
        (7, 0, 0, 0), ours=(7, 5, 5, 0), local=True,
        why="a password file others can read is refused at validate-all and start (upstream has no such "
            "parameter and ignores it); the probe does not read it"),
    # ---------------------------------------------------------------- dovecot
    Row("dovecot", "good (config also in parameters, for upstream)", lambda lab: _dc(lab), (7, 0, 0, 0)),
    Row("dovecot", "config_file only", lambda lab: _dc(lab, parameters=None), (7, 0, None, 0), ours=(7, 0, 0, 0),
        why="upstream ignores config_file: its start would run the node's default /etc/dovecot instance (so it "
            "is not run here); ours starts, checks and stops the instance config_file describes"),
    Row("dovecot", "dovecot absent on this node", lambda lab: _dc(lab, binary=str(lab.base / "no-dovecot")),
        (5, 5, 5, 5), ours=(7, 5, 5, 0), local=True,
        why="software missing on this node: ours' probe says not running and its stop succeeds (upstream's 5 from "
            "a probe stops the resource on every node, from a stop it fences the node)"),
    Row("dovecot", "config_file absent on this node",
        lambda lab: _dc(lab, config_file=str(lab.base / "nowhere.conf"), parameters=None), (7, 5, 5, 0),
        local=True),
    Row("dovecot", "configuration doveconf rejects",
        lambda lab: _dc(lab, config_file=str(lab.broken), parameters=f"-c {lab.broken}"), (7, 0, 1, 0),
        ours=(7, 6, 6, 0),
        why="a configuration Dovecot refuses is refused on every node alike: ours runs doveconf at validate-all "
            "and start and says so with 6 and its first line; upstream's validate-all accepts it and its start "
            "fails with 1, retried on every node"),
]


# ---------------------------------------------------------------- labs: the real things each agent works on

# Runs one agent's actions in sequence and reports their results and the mount table it ends with: Filesystem's
# batches run in a private mount and PID namespace, so whatever either agent's stop signals or leaves mounted
# (upstream's fuser -m sees every process using the filesystem a directory is on) cannot touch the host.
BATCH = r"""
import json, subprocess, sys, tempfile
results = []
for job in json.load(sys.stdin):
    # stderr to a file, not a pipe: a daemon an agent leaves holding it (heartbeat mysql's `su ... &`) would
    # keep a pipe open, and the run waiting, until that daemon exits
    with tempfile.TemporaryFile() as err:
        done = subprocess.run(job["argv"], env=job["env"], cwd=job["cwd"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=err, timeout=120)
        err.seek(0)
        results.append([done.returncode, err.read().decode(errors="replace")])
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


class MyLab(DirLab):
    """A MariaDB datadir made by mariadb-install-db, its option file (skip-networking), one with an unknown
    option, and a credentials file others can read; mariadbd runs as mysql, so the path is searchable."""

    def __init__(self, base):
        super().__init__(base)
        for folder in [self.base, *self.base.parents]:
            if str(folder) in ("/", "/tmp"):
                break
            folder.chmod(folder.stat().st_mode | 0o711)
        self.cnf = self.base / "my.cnf"
        self.cnf.write_text("[mysqld]\nskip-networking\ninnodb_buffer_pool_size = 16M\nskip-log-bin\n")
        self.bad_cnf = self.base / "bad.cnf"
        self.bad_cnf.write_text("[mysqld]\nskip-networking\nhmsbs_no_such_option = 1\n")
        self.datadir, self.run = self.base / "data", self.base / "run"
        for folder in (self.datadir, self.run):  # upstream wants the pid and socket directory writable by mysql
            folder.mkdir()
            sh("chown", "mysql:mysql", str(folder))
        sh("mariadb-install-db", f"--defaults-file={self.cnf}", f"--datadir={self.datadir}", "--user=mysql",
           "--skip-test-db")
        self.open_creds = self.base / "open.cnf"
        self.open_creds.write_text("[client]\nuser = check\npassword = not-so-secret\n")
        self.open_creds.chmod(0o644)

    def residue(self, mounts, rsctmp):
        """A server or pid file a stop left behind."""
        return sorted(str(p) for p in self.run.glob("*.pid")) + self._servers()

    def _servers(self):
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if str(self.base).encode() in cmdline and b"mariadbd" in cmdline.split(b"\0")[0]:
                found.append(f"mariadbd pid {pid}")
        return found

    def teardown(self):
        for line in self._servers():
            sh("kill", "-9", line.split()[-1], check=False)


class LdapLab(DirLab):
    """A private slapd configuration (cn=config, an mdb database, a loopback port) that both agents start and stop,
    one that slaptest rejects, and a password file others can read."""

    def __init__(self, base):
        super().__init__(base)
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "services"))
        from slapd_support import ADMIN, PASSWORD, SlapdLab
        self.server, self.admin, self.password = SlapdLab(self.base / "slapd"), ADMIN, PASSWORD
        self.bad_conf = self.base / "bad.conf"
        self.bad_conf.write_text(f"pidfile {self.base}/bad.pid\nhmsbsnosuchdirective on\n")
        self.open_pw = self.base / "open.pw"
        self.open_pw.write_text(PASSWORD)
        self.open_pw.chmod(0o644)

    def residue(self, mounts, rsctmp):
        """A slapd or pid file a stop left behind."""
        return [f"slapd pid {pid}" for pid in self.server.processes()] + sorted(
            str(p) for p in self.server.pid.parent.glob("*.pid"))

    def teardown(self):
        self.server.kill()


class WebLab(DirLab):
    """A private web server configuration (tests/services/web_support) that both agents start and stop, and one its
    checker rejects."""

    site_class = "ApacheSite"

    def __init__(self, base):
        super().__init__(base)
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "services"))
        import web_support
        self.site = getattr(web_support, self.site_class)(self.base / "site")
        self.broken = self.site.write_config("broken.conf", "bogus_directive on;\n" if self.site.comm == "nginx"
                                             else "BogusDirective on\n")

    def residue(self, mounts, rsctmp):
        """A server process or pid file a stop left behind."""
        return [f"{self.site.comm} pid {pid}" for pid in self.site.alive_pids()] + sorted(
            str(p) for p in self.site.base.glob("*.pid"))

    def teardown(self):
        self.site.kill_all()


class NginxLab(WebLab):
    """WebLab with nginx."""

    site_class = "NginxSite"

class MailLab(DirLab):
    """A private Postfix or Dovecot (tests/services/mail_support) that both agents start and stop, one whose
    configuration the daemon's checker rejects, and a credentials file others can read."""

    def __init__(self, base):
        super().__init__(base)
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "services"))
        import mail_support
        self.support = mail_support
        self.open_creds = self.base / "open.cred"
        self.open_creds.write_text("user = probe@example.test\npassword = not-so-secret\n")
        self.open_creds.chmod(0o644)

    def residue(self, mounts, rsctmp):
        """A daemon process a stop left behind (Postfix keeps its pid file when it stops: a file alone is none)."""
        return [f"pid {pid}" for pid in self._processes()]

    def teardown(self):
        self.server.kill()


class PostfixLab(MailLab):
    """MailLab with Postfix. heartbeat's postfix requires a config_dir to be listed in alternate_config_directories
    of the node's default main.cf: the batch runs in a private mount namespace where /etc/postfix/main.cf is a copy
    that lists it (as a node running heartbeat's agent with config_dir has), the host's file is untouched."""

    def __init__(self, base):
        super().__init__(base)
        self.server = self.support.PostfixLab(self.base / "pf", 24)
        self.broken = self.base / "broken"
        self.broken.mkdir()
        (self.broken / "master.cf").write_text((self.server.conf / "master.cf").read_text())
        (self.broken / "main.cf").write_text((self.server.conf / "main.cf").read_text() + "hmsbs bogus line\n")
        self.default_main = self.base / "default-main.cf"
        self.default_main.write_text(pathlib.Path("/etc/postfix/main.cf").read_text() +
                                     f"\nalternate_config_directories = {self.server.conf} {self.broken}\n")
        self.prefix = ("unshare", "--mount", "--propagation", "private", "sh", "-ec",
                       f'mount --bind {self.default_main} /etc/postfix/main.cf; exec "$@"', "sh")

    def _processes(self):
        return self.server.processes()


class DovecotLab(MailLab):
    """MailLab with Dovecot."""

    def __init__(self, base):
        super().__init__(base)
        self.server = self.support.DovecotLab(self.base / "dc")
        self.broken = self.base / "broken.conf"
        self.broken.write_text(self.server.config.read_text() + "hmsbs_no_such_setting = 1\n")

    def _processes(self):
        return self.support.pids_of("dovecot", under=str(self.server.config))


class ArbLab(DirLab):
    """A directory for garbd's pid file and log."""

    def residue(self, mounts, rsctmp):
        """A pid file a stop left behind."""
        return sorted(str(p) for p in self.base.glob("*.pid"))


LABS = {"Filesystem": FsLab, "IPaddr2": NetLab, "Dummy": DirLab, "Stateful": NodeDirLab, "galera": DbLab,
        "garbd": ArbLab, "mysql": MyLab, "slapd": LdapLab, "apache": WebLab, "nginx": NginxLab,
        "postfix": PostfixLab, "dovecot": DovecotLab}
# Where each upstream twin lives: heartbeat's agents, and pacemaker's Stateful.
TWINS = {"Filesystem": "heartbeat", "IPaddr2": "heartbeat", "Dummy": "heartbeat", "galera": "heartbeat",
         "garbd": "heartbeat", "Stateful": "pacemaker", "mysql": "heartbeat", "slapd": "heartbeat",
         "apache": "heartbeat", "nginx": "heartbeat", "postfix": "heartbeat", "dovecot": "heartbeat"}


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
