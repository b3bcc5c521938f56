"""hamail.agents.ipaddr2.netlink: address parsing, route choice (findif's rules), and rtnetlink reads of this host."""

import _socket

import pytest

from hamail.agents.ipaddr2 import netlink
from hamail.agents.ipaddr2.netlink import AF_INET, AF_INET6, AddressError, Route


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


def test_netlink_reads_this_hosts_loopback():
    lo = _socket.if_nametoindex("lo")
    with netlink.Netlink() as nl:
        addrs = nl.addresses(AF_INET)
        assert any(a.index == lo and a.text == "127.0.0.1" and a.prefix == 8 for a in addrs)
        link = nl.link(lo)
        assert link.name == "lo" and link.usable
        assert any(l.name == "lo" for l in nl.links())
        with pytest.raises(netlink.NetlinkError):
            nl.link(999999)


def test_sysctl_read():
    assert netlink.read_sysctl("net.ipv4.conf.all.arp_ignore") in {"0", "1", "2", "3", "8"}
