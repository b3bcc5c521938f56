# SPDX-License-Identifier: GPL-2.0-or-later
"""hamail.agents.ipaddr2.netlink: address parsing, route choice (findif's rules), and rtnetlink reads of this host."""

import json
import pathlib
import socket
import subprocess

import pytest

from hamail.agents.ipaddr2 import netlink
from hamail.agents.ipaddr2.netlink import AF_INET, AF_INET6, AddressError, Route

LIB = pathlib.Path(__file__).resolve().parents[2] / "lib"


def _p(text):
    return netlink.parse_ip(text)[1]


def test_parse_ip_and_canonical_text():
    assert netlink.parse_ip("192.0.2.1") == (AF_INET, bytes([192, 0, 2, 1]))
    family, packed = netlink.parse_ip("2001:DB8:0:0::0:1")
    assert family == AF_INET6 and netlink.ip_text(family, packed) == "2001:db8::1"
    for bad in ("192.0.2", "192.0.2.256", "2001:db8:::1", "", "eth0"):
        with pytest.raises(AddressError):
            netlink.parse_ip(bad)


def test_parse_prefix():
    assert netlink.parse_prefix(AF_INET, "24") == 24
    assert netlink.parse_prefix(AF_INET, "255.255.255.128") == 25
    assert netlink.parse_prefix(AF_INET6, "64") == 64
    for family, bad in ((AF_INET, "33"), (AF_INET, "0"), (AF_INET, "255.0.255.0"), (AF_INET6, "129"),
                        (AF_INET, "x"), (AF_INET6, "255.255.255.0")):
        with pytest.raises(AddressError):
            netlink.parse_prefix(family, bad)


def test_prefix_arithmetic():
    assert netlink.in_prefix(_p("192.0.2.77"), _p("192.0.2.0"), 24)
    assert not netlink.in_prefix(_p("192.0.3.1"), _p("192.0.2.0"), 24)
    assert netlink.in_prefix(_p("2001:db8::5"), _p("2001:db8::"), 64)
    assert netlink.broadcast_of(_p("192.0.2.77"), 25) == _p("192.0.2.127")
    assert netlink.network_of(_p("192.0.2.77"), 25) == _p("192.0.2.0")
    assert netlink.offset_ip(_p("192.0.2.10"), 3) == _p("192.0.2.13")
    with pytest.raises(AddressError):
        netlink.offset_ip(_p("255.255.255.255"), 1)


def _route(dst, length, oif, metric=0, scope=253, family=AF_INET):
    return Route(family, _p(dst), length, scope, oif, metric, None)


def test_find_route_most_specific_then_metric():
    routes = [_route("192.0.2.0", 24, 2), _route("192.0.2.0", 25, 3), _route("0.0.0.0", 0, 4),
              _route("192.0.2.0", 25, 5, metric=10)]
    best = netlink.find_route(routes, AF_INET, _p("192.0.2.10"), None, None, {})
    assert (best.oif, best.dst_len) == (3, 25)
    assert netlink.find_route(routes, AF_INET, _p("192.0.2.10"), None, 2, {}).oif == 2
    # A given prefix longer than a route's excludes nothing; shorter excludes the more specific routes.
    assert netlink.find_route(routes, AF_INET, _p("192.0.2.10"), 24, None, {}).dst_len == 24


def test_find_route_errors_are_readable():
    routes = [_route("192.0.2.0", 24, 2), _route("192.0.2.0", 24, 3), _route("0.0.0.0", 0, 4),
              _route("198.51.100.0", 24, 5, scope=0)]
    with pytest.raises(LookupError, match=r"several interfaces .*\(a0, b0\): set nic"):
        netlink.find_route(routes, AF_INET, _p("192.0.2.10"), None, None, {2: "a0", 3: "b0"})
    with pytest.raises(LookupError, match="no connected route"):  # default and gateway routes never count
        netlink.find_route(routes, AF_INET, _p("198.51.100.7"), None, None, {})


# Run inside a fresh network namespace (unshare --net): interfaces and addresses the test configures with
# iproute2, then read back through hamail's rtnetlink code and through `ip -j`, an independent reader.
IN_NAMESPACE = r"""
import json, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from hamail.agents.ipaddr2 import netlink

def ip(*args):
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10).stdout

for cmd in (["link", "set", "lo", "up"], ["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
            ["link", "set", "v0", "address", "02:00:00:00:00:10"], ["addr", "add", "192.0.2.5/24", "dev", "v0"],
            ["addr", "add", "198.51.100.9/25", "dev", "v0", "label", "v0:vip"],
            ["-6", "addr", "add", "2001:db8::5/64", "dev", "v0", "nodad"],
            ["link", "set", "v0", "up"], ["link", "set", "v1", "up"]):
    ip(*cmd)
end = time.monotonic() + 10
while json.loads(ip("-j", "link", "show", "v0"))[0]["operstate"] != "UP" and time.monotonic() < end:
    time.sleep(0.05)
with netlink.Netlink() as nl:
    mine = {"addrs": [[a.index, a.text, a.prefix, a.label] for a in nl.addresses()],
            "links": [[l.index, l.name, ":".join(f"{b:02x}" for b in l.mac or b""), l.usable] for l in nl.links()],
            "routes": [[r.family, netlink.ip_text(r.family, r.dst), r.dst_len, r.oif, r.metric]
                       for family in (netlink.AF_INET, netlink.AF_INET6) for r in nl.routes(family)],
            "missing": ""}
    try:
        nl.link(999999)
    except netlink.NetlinkError as exc:
        mine["missing"] = type(exc).__name__
print(json.dumps({"mine": mine, "addr": json.loads(ip("-j", "addr", "show")),
                  "route4": json.loads(ip("-j", "-4", "route", "show", "table", "main")),
                  "route6": json.loads(ip("-j", "-6", "route", "show", "table", "main"))}))
"""


def test_netlink_reads_addresses_links_and_routes_as_iproute2_does():
    result = subprocess.run(["unshare", "--net", "/usr/bin/python3", "-c", IN_NAMESPACE, str(LIB)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    mine, links = seen["mine"], seen["addr"]
    index = {link["ifname"]: link["ifindex"] for link in links}
    # every address, with its prefix and (IPv4) label, exactly as ip lists them
    assert sorted(map(tuple, mine["addrs"])) == sorted(
        (link["ifindex"], a["local"], a["prefixlen"], a.get("label", "") if a["family"] == "inet" else "")
        for link in links for a in link["addr_info"])
    assert (index["v0"], "198.51.100.9", 25, "v0:vip") in map(tuple, mine["addrs"])
    # every link with its name and MAC; lo and the veth that is up with a carrier are usable, its peer too
    assert sorted(tuple(l[:3]) for l in mine["links"]) == sorted(
        (link["ifindex"], link["ifname"], link["address"]) for link in links)
    usable = {name for _, name, _, ok in mine["links"] if ok}
    assert usable == {link["ifname"] for link in links
                      if "UP" in link["flags"] and link["operstate"] in ("UP", "UNKNOWN")}
    assert {"lo", "v0"} <= usable and ["02:00:00:00:00:10"] == [l[2] for l in mine["links"] if l[1] == "v0"]
    # every route of the main table, with the interface and metric (ip omits a host route's length)
    def with_length(family, dst):
        return dst if "/" in dst else f"{dst}/{32 if family == AF_INET else 128}"
    routes = {(family, f"{dst}/{length}", oif, metric) for family, dst, length, oif, metric in mine["routes"]}
    assert routes == {(family, with_length(family, r["dst"]), index[r["dev"]], r.get("metric", 0))
                      for family, key in ((AF_INET, "route4"), (AF_INET6, "route6")) for r in seen[key]}
    assert (AF_INET, "192.0.2.0/24", index["v0"], 0) in routes
    assert mine["missing"] == "NetlinkError"


def test_sysctl_read_gives_the_kernels_value():
    with open("/proc/sys/kernel/hostname", encoding="ascii") as handle:
        assert netlink.read_sysctl("kernel.hostname") == handle.read().strip() == socket.gethostname()
    shown = subprocess.run(["sysctl", "-n", "net.ipv4.conf.lo.arp_ignore", "net.ipv6.conf.lo.disable_ipv6"],
                           capture_output=True, text=True, timeout=10)
    assert shown.returncode == 0, shown.stderr
    assert [netlink.read_sysctl("net.ipv4.conf.lo.arp_ignore"),
            netlink.read_sysctl("net.ipv6.conf.lo.disable_ipv6")] == shown.stdout.split()
