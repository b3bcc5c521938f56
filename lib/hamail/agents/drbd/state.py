# SPDX-License-Identifier: GPL-2.0-or-later
"""One typed model of a DRBD resource on this node, parsed from what DRBD 8.4 and DRBD 9 print.

Sources (all read-only, pure text parsers; the agent runs the tools):
- DRBD 8.4: ``drbdadm sh-status <res>`` (one ``_key=value`` block per volume, ended by ``_sh_status_process``),
  ``/proc/drbd`` (``<minor>: cs:<cstate> ro:<role>/<peer> ds:<disk>/<pdsk> ...``, resource names come from
  ``drbdadm sh-minor``) and the one-word answers of ``drbdadm role|cstate|dstate`` (``Local/Peer``).
- DRBD 9: ``drbdsetup events2 --now <res>`` (lines ``exists <object> key:value ...``, objects resource,
  connection, device, peer-device, ended by ``exists -``) and ``drbdsetup status --json <res>`` (a list of
  resources with ``devices`` and ``connections``/``peer_devices``), as documented in drbdsetup(8) of drbd-utils 9.
Unknown keys are ignored; a missing key leaves the field at its "unknown" value (DUnknown, Unknown, None).
"""

from __future__ import annotations

__all__ = ["Volume", "PeerVolume", "Connection", "ResourceState", "UNCONFIGURED",
           "parse_sh_status", "parse_proc_drbd", "from_proc_drbd", "parse_queries", "parse_events2",
           "parse_status_json", "kernel_version"]

# Disk states DRBD reports, in both versions.
UP_TO_DATE = "UpToDate"
CONSISTENT = "Consistent"
# States in which DRBD is still deciding: a monitor leaves the promotion score alone (linbit's agent does too).
TRANSITIONAL = ("Attaching", "Negotiating", "Detaching")
UNKNOWN_DISK = ("DUnknown", "")


class Volume:
    """One local volume (minor) of the resource."""

    __slots__ = ("volume", "minor", "disk", "client")

    def __init__(self, volume: int, minor: int | None, disk: str, client: bool = False) -> None:
        self.volume, self.minor, self.disk, self.client = volume, minor, disk, client

    def __repr__(self) -> str:
        return f"Volume({self.volume}, minor={self.minor}, disk={self.disk})"


class PeerVolume:
    """What this node knows of one volume on one peer."""

    __slots__ = ("volume", "replication", "peer_disk", "done")

    def __init__(self, volume: int, replication: str, peer_disk: str, done: float | None = None) -> None:
        self.volume, self.replication, self.peer_disk, self.done = volume, replication, peer_disk, done

    def __repr__(self) -> str:
        return f"PeerVolume({self.volume}, {self.replication}, peer_disk={self.peer_disk})"


class Connection:
    """The connection to one peer (DRBD 8.4 has exactly one)."""

    __slots__ = ("peer", "state", "peer_role", "volumes")

    def __init__(self, peer: str, state: str, peer_role: str, volumes: list[PeerVolume]) -> None:
        self.peer, self.state, self.peer_role, self.volumes = peer, state, peer_role, volumes

    @property
    def connected(self) -> bool:
        """Whether the replication link is up (8.4 calls sync states connection states too)."""
        return self.state not in ("StandAlone", "Disconnecting", "Unconnected", "Timeout", "BrokenPipe",
                                  "NetworkFailure", "ProtocolError", "TearDown", "WFConnection",
                                  "WFReportParams", "Connecting", "Unknown", "")

    @property
    def all_up_to_date(self) -> bool:
        """Every volume of this peer is UpToDate."""
        return bool(self.volumes) and all(v.peer_disk == UP_TO_DATE for v in self.volumes)

    def __repr__(self) -> str:
        return f"Connection({self.peer!r}, {self.state}, peer_role={self.peer_role}, {self.volumes})"


class ResourceState:
    """A DRBD resource as seen on this node: configured or not, role, local volumes, peers, quorum."""

    __slots__ = ("name", "configured", "role", "volumes", "connections", "quorum", "suspended")

    def __init__(self, name: str, configured: bool, role: str = "Unknown", volumes: list[Volume] | None = None,
                 connections: list[Connection] | None = None, quorum: bool | None = None,
                 suspended: bool = False) -> None:
        self.name, self.configured, self.role = name, configured, role
        self.volumes = volumes or []
        self.connections = connections or []
        self.quorum, self.suspended = quorum, suspended

    def __repr__(self) -> str:
        return (f"ResourceState({self.name!r}, configured={self.configured}, role={self.role}, "
                f"volumes={self.volumes}, connections={self.connections}, quorum={self.quorum})")

    @property
    def primary(self) -> bool:
        """This node is Primary."""
        return self.configured and self.role == "Primary"

    @property
    def disk_states(self) -> list[str]:
        """The local disk state of every volume."""
        return [v.disk for v in self.volumes]

    @property
    def disks_all_up_to_date(self) -> bool:
        """Every local volume is UpToDate."""
        return bool(self.volumes) and all(v.disk == UP_TO_DATE for v in self.volumes)

    @property
    def disks_all_consistent(self) -> bool:
        """Every local volume is at least Consistent (UpToDate, Consistent or Outdated data is whole)."""
        return bool(self.volumes) and all(v.disk in (UP_TO_DATE, CONSISTENT) for v in self.volumes)

    @property
    def disks_transitional(self) -> bool:
        """Some local volume is in a state DRBD is still deciding about."""
        return any(v.disk in TRANSITIONAL for v in self.volumes)

    @property
    def diskless_client(self) -> bool:
        """Intentionally diskless (DRBD 9 ``client:yes``) on every volume."""
        return bool(self.volumes) and all(v.client for v in self.volumes)

    @property
    def peer_disks_all_up_to_date(self) -> bool:
        """Every peer's every volume is UpToDate (false without peers)."""
        return bool(self.connections) and all(c.all_up_to_date for c in self.connections)

    @property
    def peer_disk_unknown(self) -> bool:
        """Some peer volume's disk state is unknown (link down), or there is no peer at all."""
        if not self.connections:
            return True
        return any(not c.volumes or any(v.peer_disk in UNKNOWN_DISK for v in c.volumes) for c in self.connections)

    @property
    def some_peer_all_up_to_date(self) -> bool:
        """Some connected peer has all its volumes UpToDate: this node can reach good data over the network."""
        return any(c.connected and c.all_up_to_date for c in self.connections)

    @property
    def peer_primary(self) -> bool:
        """Some peer is Primary."""
        return any(c.peer_role == "Primary" for c in self.connections)

    @property
    def connected(self) -> bool:
        """Every configured peer connection is up (false without peers)."""
        return bool(self.connections) and all(c.connected for c in self.connections)

    @property
    def has_up_to_date_access(self) -> bool:
        """Promotion can work: all local volumes UpToDate, or a connected peer with all volumes UpToDate."""
        return self.disks_all_up_to_date or self.some_peer_all_up_to_date

    def summary(self) -> str:
        """One line for logs and exit reasons: role, disks, connections."""
        if not self.configured:
            return f"{self.name}: not configured in the kernel"
        peers = ", ".join(f"{c.peer or 'peer'} {c.state} {c.peer_role} "
                          f"{'/'.join(v.peer_disk for v in c.volumes) or 'DUnknown'}" for c in self.connections)
        return f"{self.name}: {self.role} disk {'/'.join(self.disk_states) or 'none'}; {peers or 'no peer'}"


def UNCONFIGURED(name: str) -> ResourceState:  # noqa: N802 (reads as a constant at call sites)
    """The state of a resource the kernel does not know."""
    return ResourceState(name, configured=False, role="Unconfigured")


def _number(text: str) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _split_pair(text: str) -> tuple[str, str]:
    local, _, peer = text.partition("/")
    return local, peer


# ------------------------------------------------------------------------------ DRBD 8.4

def parse_sh_status(name: str, text: str) -> ResourceState:
    """``drbdadm sh-status <res>`` (DRBD 8.4): one block per volume; Unconfigured when the kernel has none."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line.startswith("_conf_res_name="):
            current = {}
            blocks.append(current)
        if current is None or "=" not in line:
            continue
        key, _, value = line.partition("=")
        current[key] = value.strip()
    blocks = [b for b in blocks if b.get("_conf_res_name", name) == name]
    live = [b for b in blocks if b.get("_cstate", "Unconfigured") != "Unconfigured" and b.get("_role")]
    if not live:
        return UNCONFIGURED(name)
    volumes, peers = [], []
    for block in live:
        number = _number(block.get("_volume")) or _number(block.get("_conf_volume")) or 0
        volumes.append(Volume(number, _number(block.get("_minor")), block.get("_disk", "")))
        peers.append(PeerVolume(number, block.get("_cstate", ""), block.get("_pdsk", ""),
                                _float(block.get("_resynced_percent"))))
    first = live[0]
    connection = Connection("", first.get("_cstate", ""), first.get("_peer", "") or "Unknown", peers)
    return ResourceState(name, True, first.get("_role", "Unknown"), volumes, [connection],
                         suspended=bool(first.get("_flags_susp")))


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def kernel_version(proc_drbd: str) -> tuple[int, int, int] | None:
    """The module version from /proc/drbd's first line (``version: 8.4.11 (api:1/proto:86-101)``)."""
    for line in proc_drbd.splitlines():
        if line.startswith("version:"):
            parts = line.split()[1].split("-")[0].split(".")
            try:
                return tuple(int(p) for p in (parts + ["0", "0"])[:3])  # type: ignore[return-value]
            except ValueError:
                return None
    return None


def parse_proc_drbd(text: str) -> dict[int, dict[str, str]]:
    """/proc/drbd (DRBD 8.4) by minor: cs, ro, ds and the sync percentage, e.g. {0: {"cs": "Connected", ...}}."""
    minors: dict[int, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        head, sep, rest = line.strip().partition(": ")
        if sep and head.isdigit():
            current = {}
            minors[int(head)] = current
            for word in rest.split():
                key, colon, value = word.partition(":")
                if colon:
                    current[key] = value
        elif current is not None and "sync'ed:" in line:
            current["done"] = line.split("sync'ed:", 1)[1].split("%", 1)[0].strip()
    return minors


def from_proc_drbd(name: str, minors: list[int], text: str) -> ResourceState:
    """The resource whose volumes are ``minors`` (from ``drbdadm sh-minor``, in volume order) in /proc/drbd."""
    table = parse_proc_drbd(text)
    rows = [(index, minor, table.get(minor)) for index, minor in enumerate(minors)]
    live = [(i, m, row) for i, m, row in rows if row and row.get("cs", "Unconfigured") != "Unconfigured"]
    if not live:
        return UNCONFIGURED(name)
    volumes, peers = [], []
    for index, minor, row in live:
        disk, pdsk = _split_pair(row.get("ds", ""))
        volumes.append(Volume(index, minor, disk))
        peers.append(PeerVolume(index, row.get("cs", ""), pdsk, _float(row.get("done"))))
    role, peer_role = _split_pair(live[0][2].get("ro", ""))
    connection = Connection("", live[0][2].get("cs", ""), peer_role or "Unknown", peers)
    return ResourceState(name, True, role or "Unknown", volumes, [connection])


def parse_queries(name: str, role: tuple[int, str], cstate: tuple[int, str], dstate: tuple[int, str]) -> ResourceState:
    """``drbdadm role|cstate|dstate <res>`` answers as (exit code, output); one line per volume for dstate."""
    if role[0] != 0 or cstate[0] != 0 or not role[1].strip():
        return UNCONFIGURED(name)
    local_role, peer_role = _split_pair(role[1].split()[0])
    states = dstate[1].split()
    cstates = cstate[1].split() or [""]
    volumes, peers = [], []
    for index, pair in enumerate(states):
        disk, pdsk = _split_pair(pair)
        volumes.append(Volume(index, None, disk))
        peers.append(PeerVolume(index, cstates[min(index, len(cstates) - 1)], pdsk))
    return ResourceState(name, True, local_role, volumes, [Connection("", cstates[0], peer_role or "Unknown", peers)])


# ------------------------------------------------------------------------------ DRBD 9

def _fields(words: list[str]) -> dict[str, str]:
    out = {}
    for word in words:
        key, colon, value = word.partition(":")
        if colon:
            out[key] = value
    return out


def parse_events2(name: str, text: str) -> ResourceState:
    """``drbdsetup events2 --now <res>`` (DRBD 9): the ``exists`` lines for this resource."""
    role = None
    suspended = False
    volumes: dict[int, Volume] = {}
    quorum: bool | None = None
    connections: dict[str, Connection] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) < 3 or words[0] not in ("exists", "create", "change"):
            continue
        kind, fields = words[1], _fields(words[2:])
        if fields.get("name") != name:
            continue
        if kind == "resource":
            role = fields.get("role", "Unknown")
            suspended = fields.get("suspended", "no") != "no"
        elif kind == "device":
            number = _number(fields.get("volume")) or 0
            volumes[number] = Volume(number, _number(fields.get("minor")), fields.get("disk", ""),
                                     fields.get("client") == "yes")
            if "quorum" in fields:
                quorum = (quorum is not False) and fields["quorum"] == "yes"
        elif kind == "connection":
            key = fields.get("peer-node-id", fields.get("conn-name", ""))
            old = connections.get(key)
            connections[key] = Connection(fields.get("conn-name", key), fields.get("connection", ""),
                                          fields.get("role", "Unknown"), old.volumes if old else [])
        elif kind == "peer-device":
            key = fields.get("peer-node-id", fields.get("conn-name", ""))
            conn = connections.setdefault(key, Connection(fields.get("conn-name", key), "", "Unknown", []))
            conn.volumes.append(PeerVolume(_number(fields.get("volume")) or 0, fields.get("replication", ""),
                                           fields.get("peer-disk", ""), _float(fields.get("done"))))
    if role is None:
        return UNCONFIGURED(name)
    return ResourceState(name, True, role, [volumes[k] for k in sorted(volumes)], list(connections.values()),
                         quorum, suspended)


def parse_status_json(name: str, text: str) -> ResourceState:
    """``drbdsetup status --json <res>`` (DRBD 9): a JSON list of resources."""
    import json  # only DRBD 9 pays for it
    try:
        data = json.loads(text or "[]")
    except ValueError:
        raise ValueError("drbdsetup status --json printed something that is not JSON") from None
    for res in data if isinstance(data, list) else []:
        if not isinstance(res, dict) or res.get("name") != name:
            continue
        volumes, quorum = [], None
        for dev in res.get("devices") or []:
            volumes.append(Volume(dev.get("volume", 0), dev.get("minor"), dev.get("disk-state", ""),
                                  bool(dev.get("client", False))))
            if "quorum" in dev:
                quorum = (quorum is not False) and bool(dev["quorum"])
        connections = []
        for conn in res.get("connections") or []:
            peers = [PeerVolume(pd.get("volume", 0), pd.get("replication-state", ""), pd.get("peer-disk-state", ""),
                                pd.get("percent-in-sync"))
                     for pd in conn.get("peer_devices") or []]
            connections.append(Connection(conn.get("name", str(conn.get("peer-node-id", ""))),
                                          conn.get("connection-state", ""), conn.get("peer-role", "Unknown"), peers))
        return ResourceState(name, True, res.get("role", "Unknown"), volumes, connections, quorum,
                             bool(res.get("suspended", False)))
    return UNCONFIGURED(name)
