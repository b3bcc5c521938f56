# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:IPaddr2 on real interfaces: veth pairs in network namespaces, observed from the peer side."""

import os
import subprocess
import sys

import pytest

from agent_support import AGENTS, NODE_PYTHON, assert_clean, exit_reason, ocf_env, sh, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")

# Counts the ARP frames announcing an address, seen on the peer's interface for a while (raw socket).
CAPTURE = r"""
import socket, sys, time
nic, ip, seconds = sys.argv[1], socket.inet_aton(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind((nic, 0x0806)); s.settimeout(0.1)
print("ready", flush=True)
end, n = time.monotonic() + seconds, 0
while time.monotonic() < end:
    try:
        f = s.recv(2048)
    except socket.timeout:
        continue
    if f[12:14] == b"\x08\x06" and f[28:32] == ip and f[38:42] == ip:
        n += 1
print(n)
"""


def test_autodetect_start_monitor_stop_idempotent(ip2, netpair):
    assert ip2("monitor", ip="192.0.2.100").returncode == 7  # probe before start
    first = ip2("start", ip="192.0.2.100")
    assert first.returncode == 0, first.stderr
    line = [l for l in netpair.addrs().splitlines() if "192.0.2.100/" in l]
    assert len(line) == 1 and netpair.nic in line[0] and "192.0.2.100/24 brd 192.0.2.255" in line[0]
    assert ip2("start", ip="192.0.2.100").returncode == 0  # double start
    assert netpair.addrs().count("192.0.2.100/") == 1
    assert ip2("monitor", ip="192.0.2.100", meta={"interval": 10000}).returncode == 0
    assert ip2("stop", ip="192.0.2.100").returncode == 0
    assert ip2("stop", ip="192.0.2.100").returncode == 0  # double stop
    assert "192.0.2.100" not in netpair.addrs()
    assert ip2("monitor", ip="192.0.2.100").returncode == 7


def test_gratuitous_arp_updates_peer_neighbour(ip2, netpair):
    sh("ip", "-n", netpair.peer, "neigh", "replace", "192.0.2.100", "lladdr", "02:00:00:00:00:99",
       "dev", netpair.peer_nic, "nud", "stale")
    assert ip2("start", ip="192.0.2.100").returncode == 0  # arp_bg defaults to true for IPv4
    mac = netpair.mac()
    assert wait_for(lambda: mac in netpair.neigh("192.0.2.100"), timeout=3), netpair.neigh("192.0.2.100")
    assert ip2("stop", ip="192.0.2.100").returncode == 0


def test_gratuitous_arp_count_seen_on_the_wire(ip2, netpair):
    capture = subprocess.Popen(["ip", "netns", "exec", netpair.peer, sys.executable, "-c", CAPTURE,
                                netpair.peer_nic, "192.0.2.101", "2.5"], stdout=subprocess.PIPE, text=True)
    try:
        assert capture.stdout.readline().strip() == "ready"
        result = ip2("start", ip="192.0.2.101", arp_bg="false", arp_count=3, arp_interval=50)
        assert result.returncode == 0, result.stderr
        assert int(capture.stdout.readline()) == 3
    finally:
        capture.kill()
        capture.wait()


def test_ipv6_dad_then_unsolicited_na(ip2, netpair):
    sh("ip", "-n", netpair.peer, "neigh", "replace", "2001:db8::100", "lladdr", "02:00:00:00:00:99",
       "dev", netpair.peer_nic, "nud", "stale")
    result = ip2("start", ip="2001:db8::100", arp_count=2, arp_interval=50)
    assert result.returncode == 0, result.stderr
    line = [l for l in netpair.addrs().splitlines() if "2001:db8::100/64" in l][0]
    assert "tentative" not in line  # start returned after DAD
    assert netpair.mac() in netpair.neigh("2001:db8::100")  # NA sent in the foreground by default
    assert ip2("monitor", ip="2001:db8::100").returncode == 0
    assert ip2("stop", ip="2001:db8::100").returncode == 0
    assert "2001:db8::100" not in netpair.addrs()


def test_lvs_ipv6_addrlabel_keeps_the_vip_out_of_source_selection(ip2, netpair):
    """RFC 6724 rule 8 would pick 2001:db8::8 as the source towards ::9 (longest common prefix); with its
    own label (rule 6) the node's own 2001:db8::1 is chosen, as LVS-DR health checks need."""
    def source_towards_peer():
        return sh("ip", "-n", netpair.ns, "-6", "route", "get", "2001:db8::9").stdout.split(" src ")[1].split()[0]

    assert ip2("start", ip="2001:db8::8").returncode == 0
    assert source_towards_peer() == "2001:db8::8"  # the control: without a label the VIP wins
    assert ip2("stop", ip="2001:db8::8").returncode == 0
    params = {"ip": "2001:db8::8", "lvs_ipv6_addrlabel": "true", "lvs_ipv6_addrlabel_value": "77"}
    result = ip2("start", **params)
    assert result.returncode == 0, result.stderr
    assert "prefix 2001:db8::8/128 label 77" in sh("ip", "-n", netpair.ns, "addrlabel", "list").stdout
    assert source_towards_peer() == "2001:db8::1"
    assert ip2("monitor", **params).returncode == 0
    assert ip2("stop", **params).returncode == 0
    assert "2001:db8::8/128" not in sh("ip", "-n", netpair.ns, "addrlabel", "list").stdout
    assert ip2("stop", **params).returncode == 0  # double stop: the label is already gone


def test_ipv6_dad_conflict_fails_and_leaves_nothing(ip2, netpair, tmp_path):
    result = ip2("start", ip="2001:db8::9")  # the peer owns it
    assert result.returncode == 1
    assert "dadfailed" in exit_reason(result)
    assert "2001:db8::9/" not in netpair.addrs()
    assert not list((tmp_path / "rsc").glob("IPaddr2-*"))
    assert_clean(result)


def test_ipv4_collision_detected_with_run_arping(ip2, netpair):
    result = ip2("start", ip="192.0.2.9", run_arping="true")
    assert result.returncode == 1
    assert "collision" in exit_reason(result) and netpair.mac(netpair.peer, netpair.peer_nic) in exit_reason(result)
    assert "192.0.2.9/" not in netpair.addrs()


def _sysctls(ns):
    out = sh("sysctl", "-n", "net.ipv4.conf.all.arp_ignore", "net.ipv4.conf.all.arp_announce", ns=ns).stdout
    return out.split()


def test_lvs_real_server_vip_on_loopback(ip2, netpair):
    assert _sysctls(netpair.ns) == ["0", "0"]
    assert ip2("start", ip="192.0.2.50", nic="lo").returncode == 0
    assert ip2("start", ip="192.0.2.51", nic="lo", env={"OCF_RESOURCE_INSTANCE": "other"}).returncode == 0
    lo = netpair.addrs(dev="lo")
    assert "192.0.2.50/32" in lo and "192.0.2.51/32" in lo
    assert _sysctls(netpair.ns) == ["1", "2"]
    assert ip2("monitor", ip="192.0.2.50", nic="lo").returncode == 0
    assert ip2("stop", ip="192.0.2.50", nic="lo").returncode == 0
    assert _sysctls(netpair.ns) == ["1", "2"]  # another VIP still needs them
    assert ip2("stop", ip="192.0.2.51", nic="lo", env={"OCF_RESOURCE_INSTANCE": "other"}).returncode == 0
    assert _sysctls(netpair.ns) == ["0", "0"]
    assert "192.0.2.5" not in netpair.addrs(dev="lo")


def test_lvs_support_director_moves_vip_between_nic_and_lo(ip2, netpair):
    sh("ip", "-n", netpair.ns, "addr", "add", "192.0.2.60/32", "dev", "lo")
    assert ip2("start", ip="192.0.2.60", lvs_support="true").returncode == 0
    assert "192.0.2.60" not in netpair.addrs(dev="lo") and "192.0.2.60/24" in netpair.addrs(dev=netpair.nic)
    assert ip2("stop", ip="192.0.2.60", lvs_support="true").returncode == 0
    assert "192.0.2.60/32" in netpair.addrs(dev="lo") and "192.0.2.60" not in netpair.addrs(dev=netpair.nic)
    assert _sysctls(netpair.ns) == ["1", "2"]


def test_network_namespace_parameter_from_the_host(ip2, netpair):
    params = {"ip": "192.0.2.70", "network_namespace": netpair.ns}
    assert ip2("start", ns="", **params).returncode == 0
    assert "192.0.2.70/24" in netpair.addrs()
    assert "192.0.2.70" not in sh("ip", "-o", "addr", "show").stdout  # not in the host's namespace
    assert ip2("monitor", ns="", **params).returncode == 0
    assert ip2("stop", ns="", **params).returncode == 0
    assert "192.0.2.70" not in netpair.addrs()
    missing = {"ip": "192.0.2.70", "network_namespace": "hmipnosuchns"}
    assert ip2("monitor", ns="", **missing).returncode == 7
    assert ip2("stop", ns="", **missing).returncode == 0
    for action in ("validate-all", "start"):  # missing on this node only: OCF_ERR_INSTALLED bans just this node
        result = ip2(action, ns="", **missing)
        assert result.returncode == 5 and "hmipnosuchns does not exist on this node" in exit_reason(result)


def test_monitor_after_address_deleted_and_link_down(ip2, netpair):
    assert ip2("start", ip="192.0.2.80").returncode == 0
    sh("ip", "-n", netpair.ns, "link", "set", netpair.nic, "down")
    assert ip2("monitor", ip="192.0.2.80").returncode == 7  # link down: not running
    assert ip2("monitor", ip="192.0.2.80", check_link_status="false").returncode == 0
    sh("ip", "-n", netpair.ns, "link", "set", netpair.nic, "up")
    sh("ip", "-n", netpair.peer, "link", "set", netpair.peer_nic, "down")  # no carrier on our side
    assert ip2("monitor", ip="192.0.2.80").returncode == 7
    sh("ip", "-n", netpair.peer, "link", "set", netpair.peer_nic, "up")
    assert wait_for(lambda: ip2("monitor", ip="192.0.2.80").returncode == 0)
    sh("ip", "-n", netpair.ns, "addr", "del", "192.0.2.80/24", "dev", netpair.nic)
    assert ip2("monitor", ip="192.0.2.80").returncode == 7
    assert ip2("stop", ip="192.0.2.80").returncode == 0
    assert "192.0.2.80" not in netpair.addrs()


def test_stop_removes_only_our_address(ip2, netpair):
    sh("ip", "-n", netpair.ns, "addr", "add", "192.0.2.91/24", "dev", netpair.nic)
    assert ip2("start", ip="192.0.2.90", cidr_netmask="24", nic=netpair.nic).returncode == 0
    assert ip2("stop", ip="192.0.2.90", cidr_netmask="24", nic=netpair.nic).returncode == 0
    addrs = netpair.addrs()
    assert "192.0.2.90" not in addrs and "192.0.2.91/24" in addrs and "192.0.2.1/24" in addrs
    assert "192.0.2.0/24" in sh("ip", "-n", netpair.ns, "route").stdout


def test_explicit_options_label_broadcast_flags(ip2, netpair):
    result = ip2("start", ip="192.0.2.110", nic=netpair.nic, cidr_netmask="255.255.255.128", iflabel="v1",
                 broadcast="+", noprefixroute="true")
    assert result.returncode == 0, result.stderr
    line = [l for l in netpair.addrs().splitlines() if "192.0.2.110" in l][0]
    assert "192.0.2.110/25 brd 192.0.2.127" in line and f"{netpair.nic}:v1" in line and "noprefixroute" in line
    result = ip2("start", ip="2001:db8::110", nodad="true", preferred_lft="0",
                 env={"OCF_RESOURCE_INSTANCE": "v6"})
    assert result.returncode == 0, result.stderr
    line = [l for l in netpair.addrs().splitlines() if "2001:db8::110" in l][0]
    assert "nodad" in line and "deprecated" in line


def test_unique_clone_address_and_clusterip_refused(ip2, netpair):
    result = ip2("start", ip="192.0.2.120", unique_clone_address="true", meta={"clone": 2, "clone_max": 3})
    assert result.returncode == 0, result.stderr
    addrs = netpair.addrs()
    assert "192.0.2.122/24" in addrs and "192.0.2.120/" not in addrs  # base + clone instance 2
    result = ip2("start", ip="192.0.2.120", meta={"clone": 0, "clone_max": 2})
    assert result.returncode == 6 and "unique_clone_address" in exit_reason(result)


def test_ambiguous_autodetection_is_an_error(ip2, netpair):
    sh("ip", "link", "add", netpair.nic[:-1] + "x", "netns", netpair.ns, "type", "veth", "peer", "name",
       netpair.nic[:-1] + "y", "netns", netpair.ns)
    sh("ip", "-n", netpair.ns, "link", "set", netpair.nic[:-1] + "x", "up")
    sh("ip", "-n", netpair.ns, "addr", "add", "192.0.2.2/24", "dev", netpair.nic[:-1] + "x")
    result = ip2("start", ip="192.0.2.130")
    assert result.returncode == 1 and "several interfaces" in exit_reason(result) and "set nic" in exit_reason(result)
    assert "192.0.2.130" not in netpair.addrs()
    assert ip2("start", ip="192.0.2.130", nic=netpair.nic).returncode == 0
    assert "192.0.2.130/24" in netpair.addrs(dev=netpair.nic)
    assert "192.0.2.130" not in netpair.addrs(dev=netpair.nic[:-1] + "x")


@pytest.mark.parametrize("params,code,reason", [
    ({"ip": "192.0.2.300"}, 6, "parameter ip: '192.0.2.300' is not a valid IPv4 address"),
    ({"ip": "2001:db8::zz"}, 6, "parameter ip: '2001:db8::zz' is not a valid IPv6 address"),
    ({"ip": "192.0.2.5", "nic": "hmipnosuch0"}, 5, "parameter nic: hmipnosuch0 does not exist on this node"),
    ({"ip": "192.0.2.5", "cidr_netmask": "33"}, 6, "parameter cidr_netmask: netmask 33 is out of range"),
    ({"ip": "192.0.2.5", "netmask": "33"}, 6, "parameter netmask: netmask 33 is out of range"),  # the old name
    ({"ip": "192.0.2.5", "cidr_netmask": "255.0.255.0"}, 6, "parameter cidr_netmask: netmask '255.0.255.0' is not "
                                                            "contiguous"),
    ({"ip": "2001:db8::5", "cidr_netmask": "129"}, 6, "parameter cidr_netmask: netmask 129 is out of range"),
    ({"ip": "192.0.2.5", "broadcast": "nonsense"}, 6, "parameter broadcast: 'nonsense' is not an IPv4 address"),
    ({"ip": "192.0.2.5", "iflabel": "much-too-long-label"}, 6, "parameter iflabel: the label"),
    ({"ip": "192.0.2.5", "arp_count": "many"}, 6, "parameter arp_count: 'many' is not an integer"),
    ({"ip": "2001:db8::5", "lvs_support": "true"}, 6, "parameter lvs_support: is for IPv4"),
    ({"ip": "2001:db8::5", "preferred_lft": "soon"}, 6, "parameter preferred_lft: 'soon' is not a number"),
    ({"ip": "192.0.2.5", "network_namespace": "a/b"}, 6, "parameter network_namespace: 'a/b' is not a namespace"),
    ({"ip": "198.51.100.5"}, 1, "no connected route"),
    ({}, 6, "parameter ip: is required"),
])
def test_bad_input(ip2, params, code, reason):
    for action in ("validate-all", "start"):
        result = ip2(action, **params)
        assert result.returncode == code, (action, result.stderr)
        assert reason in exit_reason(result)
        assert_clean(result)
    assert ip2("stop", **params).returncode == 0  # stop never fails on bad configuration


def test_probe_of_unknown_nic_is_not_running(ip2):
    assert ip2("monitor", ip="192.0.2.5", nic="hmipnosuch0").returncode == 7


def test_ocf_tester(netpair):
    result = subprocess.run(["ip", "netns", "exec", netpair.ns, "ocf-tester", "-n", "vip", "-o", "ip=192.0.2.140",
                             str(AGENTS / "IPaddr2")], capture_output=True, text=True, timeout=120,
                            env={**ocf_env("IPaddr2"), "HA_RSCTMP": "/run/resource-agents"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed all tests" in result.stdout + result.stderr
    assert "192.0.2.140" not in netpair.addrs()


def test_node_python_runs_agent_without_site(netpair, tmp_path):
    """The executable itself (what Pacemaker runs) starts Python without site and still works."""
    executable = AGENTS / "IPaddr2"
    assert executable.read_text().splitlines()[0] == f"#!{NODE_PYTHON} -S"
    # site imports sitecustomize from the path: its marker file shows whether site ran.
    marker = tmp_path / "site-ran"
    (tmp_path / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    env = ocf_env("IPaddr2", {"ip": "192.0.2.150"}, env={"PYTHONPATH": str(tmp_path)},
                  rsctmp=tmp_path / "rsc")

    def run(*argv):
        return subprocess.run(["ip", "netns", "exec", netpair.ns, *argv], env=env, capture_output=True, text=True,
                              timeout=60)

    control = run(NODE_PYTHON, str(executable), "monitor")  # the same agent with site: the marker appears
    assert control.returncode == 7, control.stderr
    assert marker.exists()
    marker.unlink()
    for action, code in (("monitor", 7), ("start", 0), ("monitor", 0), ("stop", 0)):
        result = run(str(executable), action)
        assert result.returncode == code, (action, result.stderr)
        assert_clean(result)
    assert not marker.exists()
    assert "192.0.2.150" not in netpair.addrs()
