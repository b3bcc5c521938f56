# SPDX-License-Identifier: GPL-2.0-or-later
"""Addresses, routes and links through rtnetlink, and gratuitous ARP / unsolicited NA on raw sockets.

Lean on purpose: the IPaddr2 monitor imports this module, so it uses `_socket` and `_struct` (the C
modules under socket.py and struct.py; socket.py alone pulls in selectors and collections) and
imports nothing else at module level.
"""

from __future__ import annotations

import os

import _socket
import _struct

__all__ = [
    "AddressError", "NetlinkError", "parse_ip", "parse_prefix", "ip_text", "in_prefix", "broadcast_of", "network_of",
    "offset_ip", "Netlink", "Addr", "Route", "Link", "find_route", "send_garp", "send_unsolicited_na",
    "arp_probe", "read_sysctl", "write_sysctl",
]

AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6

# rtnetlink message types and flags (linux/rtnetlink.h, linux/netlink.h).
_RTM_NEWLINK, _RTM_GETLINK = 16, 18
_RTM_NEWADDR, _RTM_DELADDR, _RTM_GETADDR = 20, 21, 22
_RTM_GETROUTE = 26
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_F_REQUEST, _F_ACK, _F_DUMP, _F_EXCL, _F_CREATE = 0x1, 0x4, 0x300, 0x200, 0x400
_IFA_ADDRESS, _IFA_LOCAL, _IFA_LABEL, _IFA_BROADCAST, _IFA_CACHEINFO, _IFA_FLAGS = 1, 2, 3, 4, 6, 8
_IFLA_ADDRESS, _IFLA_IFNAME, _IFLA_OPERSTATE = 1, 3, 16
_RTA_DST, _RTA_OIF, _RTA_PRIORITY, _RTA_PREFSRC, _RTA_TABLE = 1, 4, 6, 7, 15
_RT_TABLE_MAIN, _RT_SCOPE_LINK, _RTN_UNICAST = 254, 253, 1

IFA_F_NODAD = 0x02
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
IFA_F_NOPREFIXROUTE = 0x200
IFF_UP = 0x1
IFF_LOOPBACK = 0x8
_OPER_UNKNOWN, _OPER_UP = 0, 6
FOREVER = 0xFFFFFFFF


class AddressError(ValueError):
    """A malformed address, prefix length or broadcast given by the user."""


class NetlinkError(OSError):
    """The kernel refused a netlink request (errno set as for the matching system call)."""


def parse_ip(text: str) -> tuple[int, bytes]:
    """(family, packed address) of an IPv4 or IPv6 literal; AddressError when it is neither."""
    text = text.strip()
    family = AF_INET6 if ":" in text else AF_INET
    try:
        packed = _socket.inet_pton(family, text)
    except (OSError, ValueError):
        raise AddressError(f"{text!r} is not a valid IPv{4 if family == AF_INET else 6} address") from None
    return family, packed


def ip_text(family: int, packed: bytes) -> str:
    """The canonical text form (RFC 5952 for IPv6) of a packed address."""
    return _socket.inet_ntop(family, packed)


def parse_prefix(family: int, text: str) -> int:
    """A prefix length from '24' or a dotted-quad netmask ('255.255.255.0'), checked against the family."""
    text = text.strip()
    limit = 32 if family == AF_INET else 128
    if family == AF_INET and "." in text:
        try:
            value = int.from_bytes(_socket.inet_pton(AF_INET, text), "big")
        except OSError:
            raise AddressError(f"netmask {text!r} is not a prefix length or a dotted-quad netmask") from None
        length = bin(value).count("1")
        if value != (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF:
            raise AddressError(f"netmask {text!r} is not contiguous")
        return length
    if not text.isdigit():
        raise AddressError(f"netmask {text!r} is not a prefix length (0..{limit})")
    length = int(text)
    if not 1 <= length <= limit:
        raise AddressError(f"netmask {length} is out of range 1..{limit} for IPv{4 if limit == 32 else 6}")
    return length


def in_prefix(packed: bytes, network: bytes, length: int) -> bool:
    """Whether an address lies inside network/length (both packed, same family)."""
    bits = len(packed) * 8
    mask = ((1 << bits) - 1) ^ ((1 << (bits - length)) - 1)
    return int.from_bytes(packed, "big") & mask == int.from_bytes(network, "big") & mask


def broadcast_of(packed: bytes, length: int) -> bytes:
    """The IPv4 broadcast address of packed/length (all host bits set)."""
    value = int.from_bytes(packed, "big") | ((1 << (32 - length)) - 1)
    return value.to_bytes(4, "big")


def network_of(packed: bytes, length: int) -> bytes:
    """The address with its host bits cleared."""
    bits = len(packed) * 8
    value = int.from_bytes(packed, "big") >> (bits - length) << (bits - length) if length else 0
    return value.to_bytes(len(packed), "big")


def offset_ip(packed: bytes, offset: int) -> bytes:
    """The address offset places after packed (unique_clone_address)."""
    size = len(packed)
    value = int.from_bytes(packed, "big") + offset
    if value >= 1 << (size * 8):
        raise AddressError("address overflow when adding the clone number")
    return value.to_bytes(size, "big")


def _attrs(data: bytes, offset: int) -> dict:
    """The rtattrs of one message body from offset, type -> raw value (last one wins)."""
    out = {}
    end = len(data)
    while offset + 4 <= end:
        length, kind = _struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        out[kind & 0x3FFF] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return out


def _attr(kind: int, value: bytes) -> bytes:
    length = 4 + len(value)
    return _struct.pack("=HH", length, kind) + value + b"\0" * (((length + 3) & ~3) - length)


class Addr:
    """One address as the kernel reports it (RTM_NEWADDR)."""

    __slots__ = ("family", "prefix", "flags", "scope", "index", "local", "broadcast", "label")

    def __init__(self, family, prefix, flags, scope, index, local, broadcast, label):
        self.family, self.prefix, self.flags, self.scope, self.index = family, prefix, flags, scope, index
        self.local, self.broadcast, self.label = local, broadcast, label

    @property
    def text(self) -> str:
        """The address as text."""
        return ip_text(self.family, self.local)

    def __repr__(self) -> str:
        return f"Addr({self.text}/{self.prefix} if={self.index} flags={self.flags:#x} label={self.label!r})"


class Route:
    """One route of the main table (RTM_NEWROUTE)."""

    __slots__ = ("family", "dst", "dst_len", "scope", "oif", "metric", "prefsrc")

    def __init__(self, family, dst, dst_len, scope, oif, metric, prefsrc):
        self.family, self.dst, self.dst_len, self.scope = family, dst, dst_len, scope
        self.oif, self.metric, self.prefsrc = oif, metric, prefsrc

    def __repr__(self) -> str:
        return f"Route({ip_text(self.family, self.dst)}/{self.dst_len} oif={self.oif} metric={self.metric})"


class Link:
    """One network interface: index, name, flags, operational state and hardware address."""

    __slots__ = ("index", "name", "flags", "operstate", "mac")

    def __init__(self, index, name, flags, operstate, mac):
        self.index, self.name, self.flags, self.operstate, self.mac = index, name, flags, operstate, mac

    @property
    def usable(self) -> bool:
        """Administratively up with a carrier (UNKNOWN counts: lo and some drivers never report UP)."""
        return bool(self.flags & IFF_UP) and self.operstate in (_OPER_UP, _OPER_UNKNOWN)

    def state_text(self) -> str:
        """A short description for logs and exit reasons."""
        names = {0: "unknown", 1: "notpresent", 2: "down", 3: "lowerlayerdown", 4: "testing", 5: "dormant", 6: "up"}
        admin = "up" if self.flags & IFF_UP else "down"
        return f"admin {admin}, operstate {names.get(self.operstate, self.operstate)}"


class Netlink:
    """A NETLINK_ROUTE socket for the requests IPaddr2 makes: dumps, address add/delete, link up."""

    def __init__(self) -> None:
        self._sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW, 0)
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()

    def __enter__(self) -> "Netlink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _send(self, kind: int, flags: int, body: bytes) -> int:
        self._seq += 1
        self._sock.send(_struct.pack("=LHHLL", 16 + len(body), kind, flags | _F_REQUEST, self._seq, 0) + body)
        return self._seq

    def _replies(self, seq: int):
        """Yield (type, body) of the replies to seq until DONE or the ACK; raise NetlinkError on an error."""
        while True:
            data = self._sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, kind, _flags, mseq, _pid = _struct.unpack_from("=LHHLL", data, offset)
                body = data[offset + 16:offset + length]
                offset += (length + 3) & ~3
                if mseq != seq:
                    continue
                if kind == _NLMSG_DONE:
                    return
                if kind == _NLMSG_ERROR:
                    errno = -_struct.unpack_from("=i", body)[0]
                    if errno:
                        raise NetlinkError(errno, os.strerror(errno))
                    return
                yield kind, body

    def _request(self, kind: int, flags: int, body: bytes) -> None:
        for _ in self._replies(self._send(kind, flags | _F_ACK, body)):
            pass

    def addresses(self, family: int = 0) -> list[Addr]:
        """Every address of the given family (0: both)."""
        out = []
        for kind, body in self._replies(self._send(_RTM_GETADDR, _F_DUMP, _struct.pack("=BBBBI", family, 0, 0, 0, 0))):
            if kind != _RTM_NEWADDR:
                continue
            fam, prefix, flags, scope, index = _struct.unpack_from("=BBBBI", body)
            attrs = _attrs(body, 8)
            local = attrs.get(_IFA_LOCAL) or attrs.get(_IFA_ADDRESS)
            if local is None:
                continue
            if _IFA_FLAGS in attrs:  # the 32-bit flags carry what the 8-bit field cannot
                flags = _struct.unpack("=I", attrs[_IFA_FLAGS])[0]
            label = attrs.get(_IFA_LABEL, b"").rstrip(b"\0").decode(errors="replace")
            out.append(Addr(fam, prefix, flags, scope, index, local, attrs.get(_IFA_BROADCAST), label))
        return out

    def routes(self, family: int) -> list[Route]:
        """The unicast routes of the main table for one family."""
        out = []
        request = _struct.pack("=BBBBBBBBI", family, 0, 0, 0, 0, 0, 0, 0, 0)
        for kind, body in self._replies(self._send(_RTM_GETROUTE, _F_DUMP, request)):
            fam, dst_len, _src, _tos, table, _proto, scope, rtype, _flags = _struct.unpack_from("=BBBBBBBBI", body)
            attrs = _attrs(body, 12)
            if _RTA_TABLE in attrs:
                table = _struct.unpack("=I", attrs[_RTA_TABLE])[0]
            if fam != family or table != _RT_TABLE_MAIN or rtype != _RTN_UNICAST or _RTA_OIF not in attrs:
                continue
            dst = attrs.get(_RTA_DST, b"\0" * (4 if family == AF_INET else 16))
            metric = _struct.unpack("=I", attrs[_RTA_PRIORITY])[0] if _RTA_PRIORITY in attrs else 0
            out.append(Route(fam, dst, dst_len, scope, _struct.unpack("=i", attrs[_RTA_OIF])[0], metric,
                             attrs.get(_RTA_PREFSRC)))
        return out

    def link(self, index: int) -> Link:
        """One interface by index (NetlinkError ENODEV when it is gone)."""
        request = _struct.pack("=BxHiII", 0, 0, index, 0, 0)
        for kind, body in self._replies(self._send(_RTM_GETLINK, 0, request)):
            if kind == _RTM_NEWLINK:
                return _parse_link(body)
        raise NetlinkError(19, f"no interface with index {index}")

    def links(self) -> list[Link]:
        """Every interface."""
        request = _struct.pack("=BxHiII", 0, 0, 0, 0, 0)
        return [_parse_link(body) for kind, body in self._replies(self._send(_RTM_GETLINK, _F_DUMP, request))
                if kind == _RTM_NEWLINK]

    def set_up(self, index: int) -> None:
        """Set IFF_UP on an interface (ip link set dev X up)."""
        self._request(_RTM_NEWLINK, 0, _struct.pack("=BxHiII", 0, 0, index, IFF_UP, IFF_UP))

    def _addr_body(self, family: int, packed: bytes, prefix: int, index: int, *, flags: int = 0,
                   scope: int = 0, broadcast: bytes | None = None, label: str = "",
                   preferred: int = FOREVER) -> bytes:
        body = _struct.pack("=BBBBI", family, prefix, flags & 0xFF, scope, index)
        body += _attr(_IFA_LOCAL, packed) + _attr(_IFA_ADDRESS, packed)
        if broadcast:
            body += _attr(_IFA_BROADCAST, broadcast)
        if label:
            body += _attr(_IFA_LABEL, label.encode() + b"\0")
        if flags:
            body += _attr(_IFA_FLAGS, _struct.pack("=I", flags))
        if preferred != FOREVER:
            body += _attr(_IFA_CACHEINFO, _struct.pack("=IIII", preferred, FOREVER, 0, 0))
        return body

    def add_address(self, family: int, packed: bytes, prefix: int, index: int, **options) -> None:
        """Add an address (fails with EEXIST when it is already there)."""
        self._request(_RTM_NEWADDR, _F_CREATE | _F_EXCL,
                      self._addr_body(family, packed, prefix, index, **options))

    def delete_address(self, family: int, packed: bytes, prefix: int, index: int) -> bool:
        """Delete one address; False when it was not there."""
        try:
            self._request(_RTM_DELADDR, 0, self._addr_body(family, packed, prefix, index))
        except NetlinkError as exc:
            if exc.errno in (99, 19):  # EADDRNOTAVAIL, ENODEV: already gone
                return False
            raise
        return True


def _parse_link(body: bytes) -> Link:
    _fam, _type, index, flags, _change = _struct.unpack_from("=BxHiII", body)
    attrs = _attrs(body, 16)
    name = attrs.get(_IFLA_IFNAME, b"").rstrip(b"\0").decode(errors="replace")
    operstate = attrs.get(_IFLA_OPERSTATE, b"\0")[0]
    return Link(index, name, flags, operstate, attrs.get(_IFLA_ADDRESS, b""))


def find_route(routes: list[Route], family: int, packed: bytes, prefix: int | None, index: int | None,
               index_names: dict) -> Route:
    """The connected route the address belongs to, as heartbeat's findif chooses it.

    Candidates are main-table routes with a real prefix (not the default route) containing the
    address (and the whole given prefix); IPv4 only considers on-link (scope link) routes. The most
    specific wins, then the lowest metric; a tie between interfaces is an error rather than a guess.
    Raises LookupError with a readable message.
    """
    where = f" on {index_names.get(index, index)}" if index else ""
    candidates = [r for r in routes
                  if r.dst_len > 0 and (family == AF_INET6 or r.scope == _RT_SCOPE_LINK)
                  and (prefix is None or r.dst_len <= prefix) and in_prefix(packed, r.dst, r.dst_len)
                  and (index is None or r.oif == index)]
    if not candidates:
        raise LookupError(f"no connected route contains {ip_text(family, packed)}{where}: cannot choose "
                          f"an interface and netmask (set nic and cidr_netmask, or add an address "
                          f"of that subnet to an interface)")
    best = max(r.dst_len for r in candidates)
    candidates = [r for r in candidates if r.dst_len == best]
    low = min(r.metric for r in candidates)
    candidates = [r for r in candidates if r.metric == low]
    if len({r.oif for r in candidates}) > 1:
        names = ", ".join(sorted(str(index_names.get(r.oif, r.oif)) for r in candidates))
        raise LookupError(f"{ip_text(family, packed)} matches {ip_text(family, candidates[0].dst)}/{best} "
                          f"on several interfaces with the same metric ({names}): set nic")
    return candidates[0]


def read_sysctl(name: str) -> str:
    """A sysctl value from /proc/sys (name in dotted form)."""
    with open("/proc/sys/" + name.replace(".", "/"), encoding="ascii") as handle:
        return handle.read().strip()


def write_sysctl(name: str, value: str) -> None:
    """Set a sysctl through /proc/sys."""
    with open("/proc/sys/" + name.replace(".", "/"), "w", encoding="ascii") as handle:
        handle.write(value)


_ETH_P_ARP = 0x0806
_BROADCAST_MAC = b"\xff" * 6


def _arp_frame(mac: bytes, op: int, sender_ip: bytes, target_mac: bytes, target_ip: bytes) -> bytes:
    header = _BROADCAST_MAC + mac + _struct.pack("!H", _ETH_P_ARP)
    arp = _struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + mac + sender_ip + target_mac + target_ip
    return (header + arp).ljust(60, b"\0")  # Ethernet minimum frame size


def _packet_socket(nic: str):
    sock = _socket.socket(_socket.AF_PACKET, _socket.SOCK_RAW, _socket.htons(_ETH_P_ARP))
    sock.bind((nic, _ETH_P_ARP))
    return sock


def send_garp(nic: str, mac: bytes, packed: bytes, count: int, interval: float, *, reply: bool = False,
              sleep=None) -> int:
    """Broadcast count gratuitous ARPs for packed from nic; returns how many went out.

    Requests (RFC 5227 announcements) by default, ARP replies when reply is set (arping -A):
    both update the neighbour entries of hosts that already know the address.
    """
    import time
    sleep = sleep or time.sleep
    op, target_mac = (2, mac) if reply else (1, b"\0" * 6)
    frame = _arp_frame(mac, op, packed, target_mac, packed)
    sent = 0
    sock = _packet_socket(nic)
    try:
        for i in range(count):
            if i:
                sleep(interval)
            sock.send(frame)
            sent += 1
    finally:
        sock.close()
    return sent


def arp_probe(nic: str, mac: bytes, packed: bytes, wait: float, probes: int = 2) -> bytes | None:
    """Duplicate-address detection for IPv4 (RFC 5227 probe): the MAC of another host using packed, or None."""
    import select
    import time
    frame = _arp_frame(mac, 1, b"\0\0\0\0", b"\0" * 6, packed)
    sock = _packet_socket(nic)
    try:
        end = time.monotonic() + wait
        step = wait / max(probes, 1)
        next_probe = 0.0
        while True:
            now = time.monotonic()
            if now >= end:
                return None
            if now >= next_probe and probes > 0:
                sock.send(frame)
                probes -= 1
                next_probe = now + step
            ready, _, _ = select.select([sock], [], [], max(0.0, min(end, next_probe) - now) if probes else end - now)
            if not ready:
                continue
            data = sock.recv(2048)
            if len(data) < 42 or data[12:14] != b"\x08\x06":
                continue
            sender_mac, sender_ip = data[22:28], data[28:32]
            # Any ARP from another station claiming the address (a reply, or its own probe/announcement).
            if sender_ip == packed and sender_mac != mac:
                return sender_mac
    finally:
        sock.close()


def _icmp6_socket(index: int, source: bytes | None):
    sock = _socket.socket(AF_INET6, _socket.SOCK_RAW, _socket.IPPROTO_ICMPV6)
    # Neighbour discovery messages are dropped by receivers unless the hop limit is 255 (RFC 4861 7.1.2).
    sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_MULTICAST_HOPS, 255)
    sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_UNICAST_HOPS, 255)
    sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_MULTICAST_IF, index)
    if source is not None:
        sock.bind((ip_text(AF_INET6, source), 0, 0, index))
    return sock


def send_unsolicited_na(index: int, mac: bytes, packed: bytes, count: int, interval: float, *,
                        sleep=None) -> int:
    """Send count unsolicited neighbour advertisements (override flag set) for packed to ff02::1.

    The address must have finished DAD: the socket binds to it as the source.
    """
    import time
    sleep = sleep or time.sleep
    # type 136, code 0, checksum filled in by the kernel for raw ICMPv6 sockets, flags O (override).
    message = _struct.pack("!BBHI", 136, 0, 0, 0x20000000) + packed
    if mac:
        message += _struct.pack("!BB", 2, 1) + mac  # option: target link-layer address
    sock = _icmp6_socket(index, packed)
    sent = 0
    try:
        for i in range(count):
            if i:
                sleep(interval)
            sock.sendto(message, ("ff02::1", 0, 0, index))
            sent += 1
    finally:
        sock.close()
    return sent
