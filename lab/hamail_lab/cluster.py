# SPDX-License-Identifier: GPL-2.0-or-later
"""A real Pacemaker/Corosync cluster of 1 or 3 nodes on this machine, one set of namespaces per node.

Each node is a network namespace ``<prefix>-nodeN`` (veth ``<prefix>-vN`` into the bridge
``<prefix>-br``, address ``<subnet>.1N/24`` on its ``eth0``) plus its own mount, PID, UTS and
IPC namespaces.  Its PID 1 is node_init.py, which makes mounts private, masks
/proc/sysrq-trigger, mounts fresh tmpfs on /run and /dev/shm, bind-mounts per-node
directories (below ``<workdir>/nodes/nodeN``) over the cluster stack's state directories,
/etc/hosts and ``/var/lib/hamail-lab-node`` (free for tests' per-node data), then runs
``corosync -f`` and ``pacemakerd -f`` and reaps orphans.  Everything the lab creates on the
host is named from the prefix, so ``stop()`` (or ``start()`` of a later run) can find and
remove leftovers of a crashed run.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pwd
import grp
import secrets
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence, TypeVar

from . import agents, hostsys
from .hostsys import LabError, wait_for

T = TypeVar("T")

NODE_PYTHON = "/usr/bin/python3"
NODE_INIT = Path(__file__).resolve().with_name("node_init.py")
NODE_DATA_MOUNT = "/var/lib/hamail-lab-node"
# With shared=True every node sees <workdir>/shared here: the lab's stand-in for shared storage (a SAN LUN or
# NFS export mounted at the same path on every node). /srv gets a tmpfs inside each node first, so the mount
# point never appears on the host.
SHARED_MOUNT = "/srv/hamail-lab"
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STATE_FILE = "lab.json"
POST_CHILD = "HAMAIL_LAB_POST_CHILD"  # marks the detached process that boots a node after its POST delay
# Host directories that every node gets its own (empty, same owner) copy of, when they exist.
DEFAULT_PRIVATE_DIRS = ("/var/lib/mysql", "/var/log/mysql")
# (mount point, per-node directory name, required)
STACK_DIRS = (
    ("/etc/corosync", "etc-corosync", True),
    ("/var/lib/corosync", "var-lib-corosync", True),
    ("/var/lib/pacemaker", "var-lib-pacemaker", True),
    ("/var/log/pacemaker", "var-log-pacemaker", True),
    ("/var/log/corosync", "var-log-corosync", False),
    ("/var/log/cluster", "var-log-cluster", False),
)
DOC_NETS = tuple(ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))


@dataclass
class NodeStatus:
    """One node as crm_mon reports it."""

    name: str
    online: bool
    unclean: bool
    pending: bool
    standby: bool
    is_dc: bool
    attrs: dict = field(default_factory=dict)


@dataclass
class ClusterStatus:
    """The parts of ``crm_mon --output-as=xml`` that tests poll on most."""

    dc: str | None
    quorate: bool
    nodes: dict
    xml: ET.Element

    def online(self) -> list[str]:
        """Names of the nodes reported online."""
        return [n.name for n in self.nodes.values() if n.online]


def parse_crm_mon(xml_bytes: bytes) -> ClusterStatus:
    """Parse crm_mon XML into a ClusterStatus (raises LabError if it is not crm_mon output)."""
    try:
        root = ET.fromstring(xml_bytes)
    except ET.ParseError as exc:
        raise LabError(f"crm_mon gave no XML: {xml_bytes[:300]!r}") from exc
    dc_el = root.find("summary/current_dc")
    dc = None
    quorate = False
    if dc_el is not None and dc_el.get("present") == "true":
        dc = dc_el.get("name")
        quorate = dc_el.get("with_quorum") == "true"
    nodes = {}
    for el in root.findall("nodes/node"):
        flag = lambda key: el.get(key) == "true"  # noqa: E731
        nodes[el.get("name")] = NodeStatus(el.get("name"), flag("online"), flag("unclean"), flag("pending"),
                                           flag("standby"), flag("is_dc"), dict(el.attrib))
    return ClusterStatus(dc, quorate, nodes, root)


class Cluster:
    """A real 1- or 3-node Pacemaker cluster running in namespaces on this machine."""

    def __init__(self, workdir: Path, nodes: int = 3, prefix: str = "hml", subnet: str = "192.0.2", *,
                 stonith_enabled: bool = False, no_quorum_policy: str = "stop",
                 recheck_interval: str = "30s", dc_deadtime: str = "5s",
                 properties: Mapping[str, str] | None = None,
                 private_dirs: Sequence[str] = DEFAULT_PRIVATE_DIRS,
                 host_address: bool = False, shared: bool = False, client: bool = False,
                 checkout: Path | None = None):
        """Describe a cluster; nothing is created until start() (``checkout``: whose agents the nodes run)."""
        if nodes not in (1, 2, 3, 4, 5):
            raise ValueError("nodes must be between 1 and 5 (1 and 3 are what the tests use)")
        if not (prefix.isascii() and prefix.isalnum() and prefix.islower() and 1 <= len(prefix) <= 8):
            raise ValueError("prefix must be 1-8 lower-case letters/digits (it names netns, veths and a bridge)")
        net = ipaddress.ip_network(f"{subnet}.0/24")
        if not any(net.subnet_of(doc) for doc in DOC_NETS):
            raise ValueError(f"subnet {subnet} is not a documentation prefix (192.0.2, 198.51.100, 203.0.113)")
        self.workdir = Path(workdir).resolve()
        self.prefix = prefix
        self.subnet = subnet
        self.node_count = nodes
        self.stonith_enabled = stonith_enabled
        self.no_quorum_policy = no_quorum_policy
        self.recheck_interval = recheck_interval
        self.dc_deadtime = dc_deadtime
        self.properties = dict(properties or {})
        self.private_dirs = tuple(private_dirs)
        self.host_address = host_address
        self.shared = shared
        self.client = client
        self.checkout = Path(checkout or agents.CHECKOUT).resolve()
        self._inits: dict[str, tuple[int, int | None]] = {}
        self._procs: dict[str, subprocess.Popen] = {}
        self.startup_seconds: float | None = None

    # ------------------------------------------------------------ naming
    @property
    def nodes(self) -> list[str]:
        """Node names: node1..nodeN."""
        return [f"node{i}" for i in range(1, self.node_count + 1)]

    def address(self, node: str) -> str:
        """The node's IPv4 address (<subnet>.1N)."""
        return f"{self.subnet}.{10 + self._index(node)}"

    def netns(self, node: str) -> str:
        """Name of the node's network namespace on the host."""
        return f"{self.prefix}-{node}"

    @property
    def bridge(self) -> str:
        """Name of the host bridge joining the nodes."""
        return f"{self.prefix}-br"

    @property
    def client_netns(self) -> str:
        """The client namespace on the bridge (<subnet>.200), when client=True: the lab's users and drills
        talk to the cluster from there, so the host's own addresses and routes are never touched."""
        return f"{self.prefix}-client"

    def veth(self, node: str) -> str:
        """Host-side name of the node's veth (the node side is eth0)."""
        return f"{self.prefix}-v{self._index(node)}"

    def node_dir(self, node: str) -> Path:
        """The node's persistent state directory on the host (its 'disk')."""
        return self.workdir / "nodes" / node

    def data_dir(self, node: str) -> Path:
        """Host path of the directory seen inside the node as /var/lib/hamail-lab-node."""
        return self.node_dir(node) / "data"

    @property
    def shared_dir(self) -> Path:
        """Host path of the directory every node sees as /srv/hamail-lab (when shared=True)."""
        return self.workdir / "shared"

    def _index(self, node: str) -> int:
        """1-based index of a node name, LabError if unknown."""
        if node not in self.nodes:
            raise LabError(f"unknown node {node!r}; nodes are {self.nodes}")
        return int(node[4:])

    # ------------------------------------------------------------ state file
    def _save_state(self, running: bool) -> None:
        """Write lab.json so another process (the CLI) can find and stop this cluster."""
        state = {
            "prefix": self.prefix, "subnet": self.subnet, "nodes": self.node_count,
            "stonith_enabled": self.stonith_enabled, "no_quorum_policy": self.no_quorum_policy,
            "recheck_interval": self.recheck_interval, "dc_deadtime": self.dc_deadtime,
            "properties": self.properties, "private_dirs": list(self.private_dirs),
            "host_address": self.host_address, "shared": self.shared, "client": self.client,
            "checkout": str(self.checkout),
            "running": running,
            "inits": {node: list(value) for node, value in self._merged_inits().items()},
        }
        self.workdir.mkdir(parents=True, exist_ok=True)
        tmp = self.workdir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.workdir / STATE_FILE)

    def _merged_inits(self) -> dict[str, tuple[int, int | None]]:
        """The nodes' init processes to record: this object's where they live, else what another process (a
        BMC that booted a node, the CLI) recorded where that lives. Each process only knows the nodes it
        booted itself; writing its own view alone would put a dead pid over a node booted elsewhere."""
        recorded = self._recorded_inits()
        merged = {}
        for node in sorted(set(recorded) | set(self._inits)):
            mine, theirs = self._inits.get(node), recorded.get(node)
            if mine is not None and hostsys.alive(*mine):
                merged[node] = mine
            elif theirs is not None and hostsys.alive(*theirs):
                merged[node] = theirs
                self._inits[node] = theirs  # this object now knows where that node runs
        return merged

    def _recorded_inits(self) -> dict[str, tuple[int, int | None]]:
        """The nodes' init processes as lab.json records them now (any process may have booted a node)."""
        try:
            return {node: tuple(value) for node, value in
                    json.loads((self.workdir / STATE_FILE).read_text()).get("inits", {}).items()}
        except (OSError, ValueError):
            return {}

    @classmethod
    def load(cls, workdir: Path) -> "Cluster":
        """Rebuild a Cluster object from the lab.json an earlier process wrote in ``workdir``."""
        path = Path(workdir) / STATE_FILE
        try:
            state = json.loads(path.read_text())
        except OSError as exc:
            raise LabError(f"no lab state in {workdir} ({exc})") from exc
        cluster = cls(Path(workdir), state["nodes"], state["prefix"], state["subnet"],
                      stonith_enabled=state["stonith_enabled"], no_quorum_policy=state["no_quorum_policy"],
                      recheck_interval=state["recheck_interval"], dc_deadtime=state["dc_deadtime"],
                      properties=state["properties"], private_dirs=state["private_dirs"],
                      host_address=state["host_address"], shared=state.get("shared", False),
                      client=state.get("client", False),
                      checkout=state.get("checkout"))
        cluster._inits = {node: (pid, started) for node, (pid, started) in state["inits"].items()}
        return cluster

    # ------------------------------------------------------------ preparation
    def _check_host(self) -> tuple[int, int]:
        """Fail early and clearly when this machine cannot run the lab; return hacluster uid, haclient gid."""
        if os.geteuid() != 0:
            raise LabError("the lab needs root (namespaces, bridges, mounts)")
        for tool in ("corosync", "pacemakerd", "crm_mon", "nsenter", "unshare", "ip"):
            if shutil.which(tool, path=NODE_PATH) is None:
                raise LabError(f"{tool} is not installed")
        try:
            return pwd.getpwnam("hacluster").pw_uid, grp.getgrnam("haclient").gr_gid
        except KeyError as exc:
            raise LabError("user hacluster / group haclient missing (install pacemaker)") from exc

    def _binds(self, node: str) -> list[list[str]]:
        """(source, mount point) pairs for node_init, only for mount points that exist or that we own."""
        ndir = self.node_dir(node)
        binds = []
        for target, name, required in STACK_DIRS:
            if os.path.isdir(target):
                binds.append([str(ndir / name), target])
            elif required:
                raise LabError(f"{target} does not exist on the host: is the cluster stack installed?")
        for target in self.private_dirs:
            if os.path.isdir(target):
                binds.append([str(ndir / "private" / target.strip("/").replace("/", "-")), target])
        binds.append([str(self.data_dir(node)), NODE_DATA_MOUNT])
        if self.shared:
            binds.append([str(self.shared_dir), SHARED_MOUNT])
        binds.append([str(ndir / "hosts"), "/etc/hosts"])
        return binds

    def _prepare_node_dir(self, node: str, fresh: bool, ids: tuple[int, int]) -> None:
        """Create (or wipe, if ``fresh``) the node's state directories and write its config files."""
        ndir = self.node_dir(node)
        if fresh and ndir.exists():
            shutil.rmtree(ndir)
        ndir.mkdir(parents=True, exist_ok=True)
        uid, gid = ids
        for source, target in self._binds(node):
            src = Path(source)
            if target == "/etc/hosts":
                continue
            src.mkdir(parents=True, exist_ok=True)
            host = os.stat(target) if os.path.exists(target) else None
            if host is not None and target not in ("/var/lib/pacemaker", "/var/log/pacemaker"):
                os.chown(src, host.st_uid, host.st_gid)
                os.chmod(src, host.st_mode & 0o7777)
        for sub in ("cib", "pengine", "blackbox", "cores"):
            (ndir / "var-lib-pacemaker" / sub).mkdir(exist_ok=True)
        hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        hosts += [f"{self.address(n)}\t{n}" for n in self.nodes]
        (ndir / "hosts").write_text("\n".join(hosts) + "\n")
        (ndir / "etc-corosync" / "corosync.conf").write_text(self.corosync_conf())
        key = ndir / "etc-corosync" / "authkey"
        if not key.exists():
            key.write_bytes(self._authkey())
            key.chmod(0o400)
        cib = ndir / "var-lib-pacemaker" / "cib" / "cib.xml"
        if not cib.exists():
            cib.write_text(self.initial_cib())
            os.chown(cib, uid, gid)
            cib.chmod(0o600)
        env = {"PATH": NODE_PATH, "LANG": "C.UTF-8", "HOME": "/root", "OCF_ROOT": "/usr/lib/ocf",
               "PCMK_logfile": "/var/log/pacemaker/pacemaker.log", "PCMK_logfacility": "none",
               "PCMK_panic_action": "off"}
        overlays = agents.overlay_layers(self.checkout, ndir / "agent-layers")
        init_cfg = {"hostname": node, "binds": self._binds(node), "overlays": overlays, "env": env,
                    "tmpfs": [str(Path(SHARED_MOUNT).parent)] if self.shared else [],
                    "hacluster_uid": uid, "haclient_gid": gid}
        (ndir / "init.json").write_text(json.dumps(init_cfg, indent=2) + "\n")

    def _authkey(self) -> bytes:
        """The cluster's corosync authkey, shared by all nodes (generated once per workdir)."""
        path = self.workdir / "authkey"
        if not path.exists():
            path.write_bytes(secrets.token_bytes(256))
            path.chmod(0o400)
        return path.read_bytes()

    def corosync_conf(self) -> str:
        """corosync.conf text: knet, encrypted with the authkey, token 3000, one entry per node."""
        entries = "".join(
            f"    node {{\n        ring0_addr: {self.address(n)}\n        name: {n}\n"
            f"        nodeid: {self._index(n)}\n    }}\n" for n in self.nodes)
        return (
            "# written by hamail_lab\n"
            f"totem {{\n    version: 2\n    cluster_name: {self.prefix}\n    transport: knet\n"
            "    token: 3000\n    crypto_cipher: aes256\n    crypto_hash: sha256\n}\n"
            f"nodelist {{\n{entries}}}\n"
            "quorum {\n    provider: corosync_votequorum\n}\n"
            "logging {\n    to_logfile: yes\n    logfile: /var/log/corosync/corosync.log\n"
            "    to_syslog: no\n    to_stderr: no\n    timestamp: on\n}\n")

    def cluster_properties(self) -> dict[str, str]:
        """The cluster properties the lab pre-seeds into a fresh CIB."""
        props = {
            "stonith-enabled": "true" if self.stonith_enabled else "false",
            "no-quorum-policy": self.no_quorum_policy,
            "cluster-recheck-interval": self.recheck_interval,
            "dc-deadtime": self.dc_deadtime,
        }
        props.update(self.properties)
        return props

    def initial_cib(self) -> str:
        """A fresh CIB (from ``cibadmin --empty``) with the lab's cluster properties."""
        empty = hostsys.sh(["cibadmin", "--empty"]).stdout
        root = ET.fromstring(empty)
        crm_config = root.find("configuration/crm_config")
        props = ET.SubElement(crm_config, "cluster_property_set", id="cib-bootstrap-options")
        for name, value in self.cluster_properties().items():
            ET.SubElement(props, "nvpair", id=f"cib-bootstrap-options-{name}", name=name, value=value)
        return ET.tostring(root, encoding="unicode") + "\n"

    # ------------------------------------------------------------ network
    def _setup_network(self) -> None:
        """Create the bridge, one netns per node with a veth into the bridge and the node address."""
        hostsys.sh(["ip", "link", "add", self.bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"])
        if self.host_address:
            hostsys.sh(["ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge])
        hostsys.sh(["ip", "link", "set", self.bridge, "up"])
        if self.client:
            ns, veth = self.client_netns, f"{self.prefix}-vc"
            hostsys.netns_add(ns)
            hostsys.sh(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
            hostsys.sh(["ip", "link", "set", veth, "master", self.bridge, "up"])
            for argv in (["addr", "add", f"{self.subnet}.200/24", "dev", "eth0"], ["link", "set", "eth0", "up"],
                         ["link", "set", "lo", "up"]):
                hostsys.sh(["ip", "-n", ns, *argv])
        for node in self.nodes:
            ns = self.netns(node)
            hostsys.netns_add(ns)
            hostsys.sh(["ip", "link", "add", self.veth(node), "type", "veth", "peer", "name", "eth0", "netns", ns])
            hostsys.sh(["ip", "link", "set", self.veth(node), "master", self.bridge, "up"])
            hostsys.sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            hostsys.sh(["ip", "-n", ns, "addr", "add", f"{self.address(node)}/24", "dev", "eth0"])
            hostsys.sh(["ip", "-n", ns, "link", "set", "eth0", "up"])

    def _nic_off(self, node: str) -> None:
        """A powered-off machine's NIC: down, without addresses (a killed node's namespace would otherwise keep
        answering ARP and TCP for its address and for any VIP it held)."""
        ns = self.netns(node)
        if ns in hostsys.netns_names():
            hostsys.sh(["ip", "-n", ns, "link", "set", "eth0", "down"], check=False)
            hostsys.sh(["ip", "-n", ns, "addr", "flush", "dev", "eth0"], check=False)

    def _nic_on(self, node: str) -> None:
        """The NIC of a booting node: its own address only (what IPaddr2 added before is gone), link up."""
        ns = self.netns(node)
        hostsys.sh(["ip", "-n", ns, "addr", "flush", "dev", "eth0"], check=False)
        hostsys.sh(["ip", "-n", ns, "addr", "add", f"{self.address(node)}/24", "dev", "eth0"])
        hostsys.sh(["ip", "-n", ns, "link", "set", "eth0", "up"])

    def link_up(self, node: str) -> bool:
        """False while the node's link is cut (cut_link), True otherwise."""
        try:
            flags = int(Path(f"/sys/class/net/{self.veth(node)}/flags").read_text(), 16)
        except (OSError, ValueError):
            return False
        return bool(flags & 0x1)  # IFF_UP

    def cut_link(self, node: str) -> None:
        """Isolate a node from the others (its veth goes down; it keeps running). Call it from a thread in the
        host's network namespace, where the host side of the veth is."""
        hostsys.sh(["ip", "link", "set", self.veth(node), "down"])

    def restore_link(self, node: str) -> None:
        """Reconnect a node isolated by cut_link."""
        hostsys.sh(["ip", "link", "set", self.veth(node), "up"])

    # ------------------------------------------------------------ node processes
    def _boot(self, node: str) -> None:
        """Start the node's PID-1 (node_init.py) in its namespaces and remember its host PID."""
        ndir = self.node_dir(node)
        with open(ndir / "console.log", "ab") as console:
            console.write(f"--- boot {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
            console.flush()
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.netns(node), "unshare", "-m", "-u", "-i", "-p", "-f", "--mount-proc",
                 NODE_PYTHON, str(NODE_INIT), str(ndir / "init.json")],
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                start_new_session=True, cwd="/", env={"PATH": NODE_PATH, "LANG": "C.UTF-8"})
        self._procs[node] = proc

        def init_pid() -> int | None:
            """The node's init PID once unshare has forked it (LabError if the launcher died)."""
            if proc.poll() is not None:
                raise LabError(f"{node} exited at boot with {proc.returncode}:\n{self.logs_tail(node)}")
            return hostsys.find_ns_init(proc.pid)
        pid = wait_for(init_pid, 20, f"the init process of {node}", interval=0.02, max_interval=0.2)
        self._inits[node] = (pid, hostsys.start_time(pid))
        self._save_state(running=True)

    def init_pid(self, node: str) -> int:
        """Host PID of the node's PID-namespace init; LabError if the node is not running."""
        if not self.is_running(node):
            raise LabError(f"{node} is not running")
        return self._inits[node][0]

    def is_running(self, node: str) -> bool:
        """True while the node's init process is alive. When the one this object knows died, the node may have
        been booted again by another process (a BMC's power on after a fencing): lab.json says where."""
        self._index(node)
        self._reap()
        entry = self._inits.get(node)
        if entry is not None and hostsys.alive(*entry):
            return True
        recorded = self._recorded_inits().get(node)
        if recorded is not None and recorded != entry and hostsys.alive(*recorded):
            self._inits[node] = recorded
            return True
        return False

    def _reap(self) -> None:
        """Collect exit statuses of our own node launchers (no zombies)."""
        for proc in self._procs.values():
            proc.poll()

    def _wait_node_gone(self, node: str, timeout: float) -> None:
        """Wait until no process is left in the node's network namespace."""
        inode = hostsys.ns_inode(hostsys.NETNS_DIR / self.netns(node))
        if inode is not None:
            hostsys.kill_netns_processes(inode, timeout)
        entry = self._inits.get(node)
        if entry is not None:
            wait_for(lambda: not hostsys.alive(*entry), timeout, f"{node} to die", interval=0.05)
        proc = self._procs.pop(node, None)
        if proc is not None:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def _post_file(self, node: str) -> Path:
        """Where a pending power-on (a BMC's "on" before the node boots) records its process."""
        return self.node_dir(node) / "powering-on"

    def powering_on(self, node: str) -> bool:
        """True while a power-on is pending: powered on (as a BMC reports it) but not booted yet."""
        try:
            pid, started = (int(x) for x in self._post_file(node).read_text().split())
        except (OSError, ValueError):
            return False
        return hostsys.alive(pid, started)

    def power_on_later(self, node: str, delay: float) -> None:
        """Power the node on now and boot it ``delay`` seconds later, as a real machine's POST delays its OS.

        Fencing needs it: Pacemaker stops a node that rejoins before the cluster has recorded its fencing.
        """
        lab_main = Path(__file__).resolve().with_name("__main__.py")
        subprocess.Popen([NODE_PYTHON, str(lab_main), "--workdir", str(self.workdir), "boot", "--no-wait",
                          "--post", str(delay), node], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, cwd="/",
                         env={"PATH": NODE_PATH, "LANG": "C.UTF-8", POST_CHILD: node})
        # Report "on" from now: wait until the delayed boot has registered itself.
        wait_for(lambda: self.powering_on(node) or self.is_running(node), 10, f"{node}'s power-on", interval=0.02)

    def post_then_boot(self, node: str, delay: float) -> None:
        """The delayed half of power_on_later: register, wait the POST delay, boot unless powered off meanwhile."""
        marker = self._post_file(node)
        marker.write_text(f"{os.getpid()} {hostsys.start_time(os.getpid())}\n")
        time.sleep(delay)  # a machine's POST: a fixed duration by design, not a wait for a condition
        try:
            if not self.is_running(node):
                self.start_node(node, wait=False)
        finally:
            marker.unlink(missing_ok=True)

    def _cancel_power_on(self, node: str) -> None:
        """Power off during POST: the pending boot never happens."""
        try:
            pid, started = (int(x) for x in self._post_file(node).read_text().split())
        except (OSError, ValueError):
            return
        if hostsys.alive(pid, started):
            os.kill(pid, signal.SIGKILL)
        self._post_file(node).unlink(missing_ok=True)

    def kill_node(self, node: str, timeout: float = 30) -> None:
        """Power-cut a node: SIGKILL its PID-namespace init, so every process in it dies at once."""
        self._cancel_power_on(node)
        entry = self._inits.get(node)
        if entry is not None and hostsys.alive(*entry):
            os.kill(entry[0], signal.SIGKILL)
        self._wait_node_gone(node, timeout)
        self._nic_off(node)
        self._inits.pop(node, None)
        self._save_state(running=True)

    def stop_node(self, node: str, timeout: float = 120) -> None:
        """Cleanly shut a node down (pacemakerd stops its resources and leaves, then corosync); kill on timeout."""
        entry = self._inits.get(node)
        if entry is not None and hostsys.alive(*entry):
            os.kill(entry[0], signal.SIGTERM)
            try:
                wait_for(lambda: not hostsys.alive(*entry), timeout, f"{node} to shut down", interval=0.1)
            except LabError:
                pass
        self.kill_node(node)

    def start_node(self, node: str, timeout: float = 120, wait: bool = True) -> None:
        """Boot a stopped or killed node again with its preserved state; wait until the cluster has it online."""
        if self.is_running(node):
            raise LabError(f"{node} is already running")
        self._wait_node_gone(node, 30)
        self._prepare_node_dir(node, fresh=False, ids=self._check_host())
        self._nic_on(node)
        self._boot(node)
        if wait:
            self.wait_online(timeout, nodes=[n for n in self.nodes if self.is_running(n)])
            self.check_agents(node)

    def heal(self, timeout: float = 180) -> ClusterStatus:
        """Undo cut_link/kill_node/stop_node: links up, dead nodes booted, wait until all are online."""
        for node in self.nodes:
            self.restore_link(node)
        for node in self.nodes:
            if not self.is_running(node):
                self.start_node(node, wait=False)
        return self.wait_online(timeout)

    # ------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 180, fresh: bool = True) -> None:
        """Clean up leftovers of this prefix, boot all nodes and wait until all are online with a DC."""
        began = time.monotonic()
        ids = self._check_host()
        hostsys.claim_prefix(self.prefix, self.workdir)
        self.cleanup()
        self.workdir.mkdir(parents=True, exist_ok=True)
        for node in self.nodes:
            self._prepare_node_dir(node, fresh, ids)
        self._save_state(running=True)
        self._setup_network()
        for node in self.nodes:
            self._boot(node)
        self.wait_online(max(1.0, timeout - (time.monotonic() - began)))
        for node in self.nodes:
            self.check_agents(node)
        self.startup_seconds = time.monotonic() - began

    def wait_online(self, timeout: float = 120, nodes: Sequence[str] | None = None) -> ClusterStatus:
        """Wait until every node in ``nodes`` (default all) sees all of them online and the same DC, with quorum."""
        members = list(nodes or self.nodes)

        def settled() -> ClusterStatus | None:
            """One node's status if every member agrees on membership, DC and quorum, else None."""
            views = []
            for node in members:
                if not self.is_running(node):
                    raise LabError(f"{node} died while starting:\n{self.logs_tail(node)}")
                status = self.status(node)
                if status.dc is None or not status.quorate:
                    return None
                if not all(status.nodes.get(m) is not None and status.nodes[m].online
                           and not status.nodes[m].pending for m in members):
                    return None
                views.append(status)
            return views[0] if len({v.dc for v in views}) == 1 else None
        try:
            return wait_for(settled, timeout, f"nodes {members} online with a DC")
        except LabError as exc:
            tails = "\n".join(self.logs_tail(n) for n in members)
            raise LabError(f"{exc}\n{tails}") from None

    def cleanup(self) -> None:
        """Remove every process, namespace, link and mount of this prefix, including a crashed run's."""
        for node, entry in list(self._inits.items()):
            if hostsys.alive(*entry):
                os.kill(entry[0], signal.SIGKILL)
        for ns in hostsys.netns_names():
            if ns.startswith(f"{self.prefix}-node") or ns == self.client_netns:
                inode = hostsys.ns_inode(hostsys.NETNS_DIR / ns)
                if inode is not None:
                    hostsys.kill_netns_processes(inode)
                hostsys.sh(["ip", "netns", "del", ns], check=False)
        for node in list(self._procs):
            self._wait_node_gone(node, 30)
        self._inits.clear()
        links = [name for name in hostsys.link_names()
                 if name in (self.bridge, f"{self.prefix}-vc")
                 or (name.startswith(f"{self.prefix}-v") and name[len(self.prefix) + 2:].isdigit())]
        hostsys.delete_links(links)
        hostsys.netns_release_dir()

    def stop(self, force: bool = False) -> None:
        """Tear everything down (idempotent, safe after a failed start); node state dirs stay in the workdir.

        Refuses (LabError) when another live process owns the prefix, unless ``force``.
        """
        owner = hostsys.prefix_owner(self.prefix)
        if owner is not None and not force:
            raise LabError(f"lab prefix {self.prefix} belongs to running pid {owner['pid']} "
                           f"(workdir {owner['workdir']}); not stopping it (use force)")
        self.cleanup()
        hostsys.release_prefix(self.prefix)
        if (self.workdir / STATE_FILE).exists():
            self._save_state(running=False)

    @staticmethod
    def prefix_in_use(prefix: str) -> bool:
        """True if another live process runs a lab cluster with this prefix."""
        return hostsys.prefix_owner(prefix) is not None

    def __enter__(self) -> "Cluster":
        """Start the cluster (stopping it again if the start fails)."""
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        """Stop the cluster."""
        self.stop()

    # ------------------------------------------------------------ inside the nodes
    def run(self, node: str, argv: Sequence[str], *, input: str | None = None,
            env: Mapping[str, str] | None = None, timeout: float = 60,
            check: bool = False) -> subprocess.CompletedProcess:
        """Run argv inside the node (all its namespaces, cwd /, a clean environment); text mode."""
        pid = self.init_pid(node)
        full_env = {"PATH": NODE_PATH, "LANG": "C.UTF-8", "HOME": "/root", "OCF_ROOT": "/usr/lib/ocf"}
        full_env.update(env or {})
        cmd = ["nsenter", "-t", str(pid), "-a", "--wd=/", "--", *argv]
        proc = hostsys.run_killable(cmd, input=input, env=full_env, timeout=timeout)
        proc.args = list(argv)
        if check and proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, list(argv), proc.stdout, proc.stderr)
        return proc

    def check_agents(self, node: str) -> None:
        """LabError unless, inside the node, Pacemaker's agent paths resolve into this cluster's checkout."""
        for path, wanted in agents.expected_targets(self.checkout).items():
            seen = self.run(node, ["readlink", "-f", path], timeout=30).stdout.strip()
            if seen != wanted:
                raise LabError(f"{node} would run {path} from {seen or 'nowhere'}, not the checkout under test "
                               f"({wanted}): the agent overlay is missing")

    def first_running(self) -> str:
        """The first node that is running (the default node for cluster-wide queries)."""
        for node in self.nodes:
            if self.is_running(node):
                return node
        raise LabError("no node of the cluster is running")

    def crm_mon_xml(self, node: str | None = None) -> bytes:
        """``crm_mon --output-as=xml`` with inactive resources and fencing history, as seen from ``node``."""
        node = node or self.first_running()
        proc = self.run(node, ["crm_mon", "--output-as=xml", "--inactive", "--fence-history=3"], timeout=30)
        if not proc.stdout.strip():
            raise LabError(f"crm_mon on {node} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout.encode()

    def status(self, node: str | None = None) -> ClusterStatus:
        """Parsed crm_mon status as seen from ``node``."""
        return parse_crm_mon(self.crm_mon_xml(node))

    def set_property(self, name: str, value: str, node: str | None = None) -> None:
        """Set a cluster property (crm_config) through a running node."""
        self.run(node or self.first_running(), ["crm_attribute", "--type", "crm_config", "--name", name,
                                                "--update", value], check=True)

    def logs_tail(self, node: str, lines: int = 30) -> str:
        """The last lines of the node's console, corosync and pacemaker logs, for error messages."""
        ndir = self.node_dir(node)
        parts = []
        for rel in ("console.log", "var-log-corosync/corosync.log", "var-log-pacemaker/pacemaker.log"):
            path = ndir / rel
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            parts.append(f"==> {node}: {path} <==\n" + "\n".join(text))
        return "\n".join(parts) or f"(no logs for {node} in {ndir})"

    def wait_for(self, predicate: Callable[[], T], timeout: float, what: str) -> T:
        """Poll ``predicate`` with short growing pauses until truthy; LabError after ``timeout`` seconds."""
        return wait_for(predicate, timeout, what)
