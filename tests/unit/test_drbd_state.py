# SPDX-License-Identifier: GPL-2.0-or-later
"""The DRBD state parsers on output captured from a real DRBD 8.4 pair (data/drbd), and DRBD 9 literals."""

import json
import pathlib

import pytest

from hamail.agents.drbd import state as drbd

DATA = pathlib.Path(__file__).parent / "data" / "drbd"

# state -> (configured, role, connection state, local disk, peer disk, peer role), as /proc/drbd showed it
EXPECTED = {
    "unconfigured": (False, "Unconfigured", None, None, None, None),
    "inconsistent-wfconnection": (True, "Secondary", "WFConnection", "Inconsistent", "DUnknown", "Unknown"),
    "inconsistent-connected": (True, "Secondary", "Connected", "Inconsistent", "Inconsistent", "Secondary"),
    "primary-syncsource": (True, "Primary", "SyncSource", "UpToDate", "Inconsistent", "Secondary"),
    "secondary-synctarget": (True, "Secondary", "SyncTarget", "Inconsistent", "UpToDate", "Primary"),
    "primary-connected": (True, "Primary", "Connected", "UpToDate", "UpToDate", "Secondary"),
    "secondary-peer-primary": (True, "Secondary", "Connected", "UpToDate", "UpToDate", "Primary"),
    "secondary-connected": (True, "Secondary", "Connected", "UpToDate", "UpToDate", "Secondary"),
    "secondary-wfconnection": (True, "Secondary", "WFConnection", "UpToDate", "DUnknown", "Unknown"),
    "primary-wfconnection": (True, "Primary", "WFConnection", "UpToDate", "DUnknown", "Unknown"),
    "secondary-standalone": (True, "Secondary", "StandAlone", "UpToDate", "DUnknown", "Unknown"),
    "outdated-wfconnection": (True, "Secondary", "WFConnection", "Outdated", "DUnknown", "Unknown"),
    "diskless-wfconnection": (True, "Secondary", "WFConnection", "Diskless", "DUnknown", "Unknown"),
}


def _queries(name):
    answers = {}
    for line in (DATA / f"{name}.queries").read_text().splitlines():
        query, code, output = (line.split("\t") + [""])[:3]
        answers[query] = (int(code), output)
    return answers


def _check(state, expected):
    configured, role, cstate, disk, pdsk, peer_role = expected
    assert state.configured is configured
    if not configured:
        assert state.volumes == [] and state.connections == []
        return
    assert state.role == role
    assert [v.disk for v in state.volumes] == [disk]
    [conn] = state.connections
    assert conn.state == cstate and conn.peer_role == peer_role
    assert [v.peer_disk for v in conn.volumes] == [pdsk]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sh_status(name):
    """drbdadm sh-status, as the 8.4 kernel answered it, in every captured state."""
    _check(drbd.parse_sh_status("r0", (DATA / f"{name}.sh-status").read_text()), EXPECTED[name])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_proc_drbd(name):
    """/proc/drbd with minor 0 named by drbdadm sh-minor (the agent's 8.4 monitor path)."""
    text = (DATA / f"{name}.proc-drbd").read_text()
    assert drbd.kernel_version(text) == (8, 4, 11)
    _check(drbd.from_proc_drbd("r0", [0], text), EXPECTED[name])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_queries(name):
    """drbdadm role/cstate/dstate: exit code 10 and no output when down."""
    answers = _queries(name)
    _check(drbd.parse_queries("r0", answers["role"], answers["cstate"], answers["dstate"]), EXPECTED[name])


def test_the_three_84_views_agree_on_the_derived_facts():
    """sh-status and /proc/drbd give the same predicates the policy uses, in every captured state."""
    for name in EXPECTED:
        a = drbd.parse_sh_status("r0", (DATA / f"{name}.sh-status").read_text())
        b = drbd.from_proc_drbd("r0", [0], (DATA / f"{name}.proc-drbd").read_text())
        for fact in ("configured", "primary", "disks_all_up_to_date", "disks_all_consistent", "peer_disk_unknown",
                     "some_peer_all_up_to_date", "peer_primary", "connected", "has_up_to_date_access"):
            assert getattr(a, fact) == getattr(b, fact), (name, fact)


def test_sync_progress_is_read():
    """The resync percentage of a SyncTarget, from /proc/drbd and from sh-status."""
    proc = drbd.from_proc_drbd("r0", [0], (DATA / "secondary-synctarget.proc-drbd").read_text())
    assert proc.connections[0].volumes[0].done == 25.0
    sh = drbd.parse_sh_status("r0", (DATA / "primary-syncsource.sh-status").read_text())
    assert sh.connections[0].volumes[0].done == 12.5


def test_sh_status_of_another_resource_is_not_ours():
    """A block naming another resource does not make r1 configured."""
    text = (DATA / "primary-connected.sh-status").read_text()
    assert not drbd.parse_sh_status("r1", text).configured


def test_minor_missing_from_proc_drbd_is_unconfigured():
    """A minor /proc/drbd does not list (the resource is down) reads as not configured."""
    text = (DATA / "primary-connected.proc-drbd").read_text()
    assert not drbd.from_proc_drbd("r0", [7], text).configured


# ------------------------------------------------------------------------------ DRBD 9 (documented formats)

EVENTS2_PRIMARY = """\
exists resource name:r0 role:Primary suspended:no write-ordering:flush
exists connection name:r0 peer-node-id:1 conn-name:pair-b connection:Connected role:Secondary
exists device name:r0 volume:0 minor:0 disk:UpToDate client:no quorum:yes
exists device name:r0 volume:1 minor:1 disk:UpToDate client:no quorum:yes
exists peer-device name:r0 peer-node-id:1 conn-name:pair-b volume:0 replication:Established peer-disk:UpToDate peer-client:no resync-suspended:no
exists peer-device name:r0 peer-node-id:1 conn-name:pair-b volume:1 replication:SyncSource peer-disk:Inconsistent peer-client:no resync-suspended:no done:42.10
exists resource name:other role:Secondary suspended:no
exists -
"""

EVENTS2_NO_QUORUM = """\
exists resource name:r0 role:Secondary suspended:no some-future-key:whatever
exists connection name:r0 peer-node-id:1 conn-name:pair-b connection:Connecting role:Unknown
exists connection name:r0 peer-node-id:2 conn-name:pair-c connection:Connecting role:Unknown
exists device name:r0 volume:0 minor:0 disk:UpToDate client:no quorum:no
exists peer-device name:r0 peer-node-id:1 conn-name:pair-b volume:0 replication:Off peer-disk:DUnknown
exists peer-device name:r0 peer-node-id:2 conn-name:pair-c volume:0 replication:Off
exists -
"""


def test_events2_two_volumes_one_syncing():
    """Resource, connection, device and peer-device lines; other resources ignored; done: read."""
    st = drbd.parse_events2("r0", EVENTS2_PRIMARY)
    assert st.configured and st.primary and st.quorum is True
    assert [(v.volume, v.minor, v.disk) for v in st.volumes] == [(0, 0, "UpToDate"), (1, 1, "UpToDate")]
    [conn] = st.connections
    assert (conn.peer, conn.state, conn.peer_role) == ("pair-b", "Connected", "Secondary")
    assert [v.peer_disk for v in conn.volumes] == ["UpToDate", "Inconsistent"]
    assert conn.volumes[1].done == 42.1
    assert not st.peer_disks_all_up_to_date and not st.peer_disk_unknown


def test_events2_quorum_lost_unknown_and_missing_keys():
    """quorum:no is read; an unknown key is ignored; a peer-device without peer-disk counts as unknown."""
    st = drbd.parse_events2("r0", EVENTS2_NO_QUORUM)
    assert st.quorum is False and not st.primary
    assert [c.peer for c in st.connections] == ["pair-b", "pair-c"]
    assert st.connections[1].volumes[0].peer_disk == ""
    assert st.peer_disk_unknown and not st.connected


def test_events2_without_the_resource_is_unconfigured():
    """Only `exists -` (the resource is down) or another resource: not configured."""
    assert not drbd.parse_events2("r0", "exists -\n").configured
    assert not drbd.parse_events2("r9", EVENTS2_PRIMARY).configured


STATUS_JSON = [{
    "name": "r0", "node-id": 0, "role": "Secondary", "suspended": False, "write-ordering": "flush",
    "devices": [{"volume": 0, "minor": 0, "disk-state": "Inconsistent", "client": False, "quorum": True,
                 "size": 32728, "read": 0, "written": 0, "al-writes": 0, "bm-writes": 0, "upper-pending": 0,
                 "lower-pending": 0}],
    "connections": [{"peer-node-id": 1, "name": "pair-a", "connection-state": "Connected", "congested": False,
                     "peer-role": "Primary", "ap-in-flight": 0, "rs-in-flight": 0,
                     "peer_devices": [{"volume": 0, "replication-state": "SyncTarget", "peer-disk-state": "UpToDate",
                                       "peer-client": False, "resync-suspended": "no", "percent-in-sync": 61.5,
                                       "a-key-from-the-future": 1}]}],
}]


def test_status_json_synctarget_with_peer_primary():
    """status --json: a SyncTarget reaching the Primary's UpToDate data; unknown keys ignored."""
    st = drbd.parse_status_json("r0", json.dumps(STATUS_JSON))
    assert st.configured and not st.primary and st.peer_primary and st.quorum is True
    assert st.some_peer_all_up_to_date and not st.disks_all_up_to_date and st.has_up_to_date_access
    assert st.connections[0].volumes[0].done == 61.5


def test_status_json_missing_keys_and_other_resources():
    """Missing devices/connections/quorum keys leave unknowns; another resource's entry is not ours."""
    st = drbd.parse_status_json("r0", json.dumps([{"name": "r0", "role": "Secondary"}]))
    assert st.configured and st.volumes == [] and st.connections == [] and st.quorum is None
    assert not st.disks_all_up_to_date and st.peer_disk_unknown
    assert not drbd.parse_status_json("r1", json.dumps(STATUS_JSON)).configured
    assert not drbd.parse_status_json("r0", "[]").configured
    with pytest.raises(ValueError):
        drbd.parse_status_json("r0", "not json")
