# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:IPaddr2: a floating IPv4/IPv6 address, a drop-in replacement for heartbeat's IPaddr2.

Everything goes through rtnetlink and raw sockets (no `ip`, no `arping`, no `send_arp`), so a
monitor is one netlink dump and the ARP/NA announcements are sent by the agent itself.
"""

from __future__ import annotations

import os

from hamail.agents.ipaddr2 import netlink
from hamail.ocf import ActionSpec, Agent, AgentSpec, ConfigError, Kind, NotInstalled, OCFError, OCFExit, Param
from hamail.ocf import ParamTable
from hamail.params import ParamError
from hamail.system import proc
from hamail.system.clock import DeadlineExceeded, poll
from hamail.system.files import StateFile, rsctmp
from hamail.system.runner import run_detached

PARAMS = ParamTable(
    Param("ip", Kind.STRING, "IPv4 or IPv6 address",
          "The IPv4 (dotted quad) or IPv6 (colon hexadecimal) address, e.g. 192.0.2.10 or 2001:db8::10.",
          required=True, unique_group="ip"),
    Param("nic", Kind.STRING, "Network interface",
          "The base interface the address is brought up on. If empty, it is the interface of the most "
          "specific connected route containing the address (lowest metric on a tie; a tie between "
          "interfaces is an error). 'nic:label' is accepted as in heartbeat (use iflabel instead). "
          "With 'lo' the address is an LVS direct-routing VIP of a real server: /32 (/128) on lo, and "
          "net.ipv4.conf.all.arp_ignore=1 / arp_announce=2 while any such VIP is up (restored after)."),
    Param("cidr_netmask", Kind.STRING, "CIDR netmask",
          "The prefix length (e.g. 24, not 255.255.255.0, though a dotted-quad IPv4 netmask is "
          "accepted). If empty, taken from the route the interface was chosen from."),
    Param("netmask", Kind.STRING, "Netmask (old name of cidr_netmask)",
          "Old spelling of cidr_netmask kept for existing configurations.",
          deprecated=True, replaced_with="cidr_netmask"),
    Param("broadcast", Kind.STRING, "Broadcast address",
          "IPv4 broadcast address; '+' sets and '-' clears the host bits of the prefix. If empty, the "
          "broadcast of the interface's address in the same subnet, else '+' (for prefixes up to /30)."),
    Param("iflabel", Kind.STRING, "Interface label",
          "A label appended to the interface name (eth0:LABEL, at most 15 characters in all). IPv4 only."),
    Param("lvs_support", Kind.BOOLEAN, "Enable support for LVS DR",
             "For an LVS director that is also a real server: on start the address is removed from lo, on "
             "stop it is moved to lo as /32 instead of being removed. IPv4 only.", default="false", fallback="false"),
    Param("lvs_ipv6_addrlabel", Kind.BOOLEAN, "Enable adding IPv6 address label",
             "Add an address label for the IPv6 address so that it is not chosen as a source address "
             "(RFC 3484), as LVS-DR health checks need.", default="false", fallback="false"),
    Param("lvs_ipv6_addrlabel_value", Kind.INTEGER, "IPv6 address label value",
          "The label used when lvs_ipv6_addrlabel is set; an unused label of 'ip addrlabel list'.",
          default="99", minimum=0, maximum=0xFFFFFFFE),
    Param("mac", Kind.STRING, "Cluster IP MAC address",
          "Only for the CLUSTERIP load-sharing mode, which Linux removed: accepted and ignored."),
    Param("clusterip_hash", Kind.STRING, "Cluster IP hashing function",
          "Only for the CLUSTERIP load-sharing mode, which Linux removed: accepted and ignored.",
          default="sourceip-sourceport"),
    Param("unique_clone_address", Kind.BOOLEAN, "Create a unique address for cloned instances",
             "If true, the clone number is added to ip, so every instance of a clone has its own address.",
             default="false", fallback="false"),
    Param("arp_interval", Kind.INTEGER, "ARP/NA packet interval in ms",
          "Milliseconds between the unsolicited ARP (IPv4) or NA (IPv6) packets.", default="200",
          minimum=0, maximum=60000),
    Param("arp_count", Kind.INTEGER, "ARP/NA packet count sent during initialization",
          "How many unsolicited ARP (IPv4) or NA (IPv6) packets start sends.", default="5",
          minimum=0, maximum=1000),
    Param("arp_count_refresh", Kind.INTEGER, "ARP packet count sent during monitoring",
          "IPv4: gratuitous ARPs sent by every monitor, against stale ARP caches after a split brain.",
          default="0", minimum=0, maximum=1000),
    Param("arp_bg", Kind.BOOLEAN, "ARP/NA from background",
             "Send the ARP/NA packets from a background process, so start returns at once. "
             "Default: true for IPv4, false for IPv6.", fallback="false"),
    Param("arp_sender", Kind.STRING, "ARP sender",
          "heartbeat's choice of external ARP tool. hamail sends the packets itself on a raw socket: "
          "accepted for compatibility and ignored."),
    Param("send_arp_opts", Kind.STRING, "Options for ARP sender",
          "Only '-A' is understood: send ARP replies instead of ARP requests as gratuitous ARPs."),
    Param("flush_routes", Kind.BOOLEAN, "Flush kernel routing table on stop",
             "Flush the route cache on stop, so local clients stop using the address at once.",
             default="false", fallback="false"),
    Param("run_arping", Kind.BOOLEAN, "Run arping for IPv4 collision detection check",
             "IPv4: before adding the address, probe for another host using it (RFC 5227) and fail if one answers.",
             default="false", fallback="false"),
    Param("nodad", Kind.BOOLEAN, "Use nodad flag",
             "IPv6: add the address without duplicate address detection.", default="false", fallback="false"),
    Param("noprefixroute", Kind.BOOLEAN, "Use noprefixroute flag",
             "Do not create the prefix route for the address (see 'man ip-address').", default="false", fallback="false"),
    Param("preferred_lft", Kind.STRING, "IPv6 preferred lifetime",
          "IPv6: preferred lifetime in seconds or 'forever'; 0 keeps the address from being used as a "
          "source address (RFC 4862 5.5.4).", default="forever"),
    Param("network_namespace", Kind.STRING, "Network namespace to use",
          "An existing network namespace (ip netns) to operate within; the interface must be in it."),
    Param("check_link_status", Kind.BOOLEAN, "Consider the link state",
          "If true, monitor reports the resource as not running when the interface is down or has no "
          "carrier, so the address moves to a node with a working link.", default="true"),
)

SPEC = AgentSpec(
    name="IPaddr2", version="0.1.0", shortdesc="Manages virtual IPv4 and IPv6 addresses (Linux)",
    longdesc="Adds and removes a floating IPv4 or IPv6 address with rtnetlink, announces it with gratuitous "
             "ARP or unsolicited neighbour advertisements sent on raw sockets, detects duplicates, and "
             "supports LVS direct routing. Parameters are those of heartbeat's IPaddr2.",
    params=PARAMS,
    actions=(ActionSpec("start", 20), ActionSpec("stop", 20),
             ActionSpec("status", 20, interval=10, depth=0), ActionSpec("monitor", 20, interval=10, depth=0),
             ActionSpec("meta-data", 5), ActionSpec("validate-all", 20)),
)

_LVS_SYSCTLS = (("net.ipv4.conf.all.arp_ignore", "1"), ("net.ipv4.conf.all.arp_announce", "2"))
_CLONE_NEWNET = 0x40000000


class Target:
    """The address this instance manages, resolved from the parameters (and the routing table)."""

    __slots__ = ("family", "packed", "text", "prefix", "nic", "index", "broadcast", "label", "lo")

    def __init__(self, family: int, packed: bytes, prefix, nic, index, broadcast=None, label=""):
        self.family, self.packed, self.prefix, self.nic, self.index = family, packed, prefix, nic, index
        self.text = netlink.ip_text(family, packed)
        self.broadcast, self.label = broadcast, label
        self.lo = bool(nic) and nic.startswith("lo")

    @property
    def v4(self) -> bool:
        """Whether this is an IPv4 address."""
        return self.family == netlink.AF_INET


# ---------------------------------------------------------------- parsing and resolution

def _parsed(ctx) -> Target:
    """The address, prefix and nic as given (no routing lookup); ConfigError naming every malformed parameter."""
    problems: list = []
    target = _parse(ctx, problems)
    if problems:
        raise ConfigError("; ".join(problems))
    return target


def _parse(ctx, problems: list) -> Target:
    """The Target the parameters describe; each problem found appended to problems (the Target is then partial)."""
    cfg = ctx.config

    def bad(name, message):
        problems.append(str(ParamError(name, message)))
    family, packed = (netlink.AF_INET6 if ":" in (cfg.ip or "") else netlink.AF_INET), b""
    try:
        family, packed = netlink.parse_ip(cfg.ip or "")
        if cfg.unique_clone_address and ctx.env.meta("clone"):
            packed = netlink.offset_ip(packed, int(ctx.env.meta("clone") or 0))
    except netlink.AddressError as exc:
        bad("ip", str(exc))
    prefix = None
    if cfg.cidr_netmask:
        try:
            prefix = netlink.parse_prefix(family, cfg.cidr_netmask)
        except netlink.AddressError as exc:
            # the name the user wrote: netmask is cidr_netmask's old spelling
            raw = ctx.env.raw
            old = raw.get("OCF_RESKEY_netmask") and not raw.get("OCF_RESKEY_cidr_netmask")
            bad("netmask" if old else "cidr_netmask", str(exc))
    nic, label = (cfg.nic or "").strip(), cfg.iflabel or ""
    if ":" in nic:  # heartbeat's old nic:label form
        nic, label = nic.split(":", 1)
    if nic and (len(nic) > 15 or "/" in nic or not nic.isprintable() or " " in nic):
        bad("nic", f"{nic!r} is not a valid interface name")
    if nic.startswith("lo"):
        prefix = 32 if family == netlink.AF_INET else 128  # a VIP on loopback must not claim a subnet
    if not _netns_name_ok(cfg.network_namespace):
        bad("network_namespace", f"{cfg.network_namespace!r} is not a namespace name")
    target = Target(family, packed or bytes(4 if family == netlink.AF_INET else 16), prefix, nic or None, None,
                    label=label)
    _check_options(ctx, target, bad)
    return target


def _check_options(ctx, target: Target, bad) -> None:
    """Parameter combinations heartbeat refuses, and the values only meaningful for one family: bad(name, why)."""
    cfg = ctx.config
    clone_max = ctx.env.meta("clone_max")
    if clone_max and clone_max != "1" and not cfg.unique_clone_address:
        bad("unique_clone_address", "a cloned IPaddr2 needs unique_clone_address=true: the CLUSTERIP "
                                    "load-sharing mode is no longer in Linux kernels")
    if target.v4:
        if cfg.lvs_ipv6_addrlabel:
            bad("lvs_ipv6_addrlabel", "is for IPv6 addresses only")
        if target.label:
            full = f"{target.nic or 'ethX'}:{target.label}"
            if len(full) > 15 or not all(c.isalnum() or c in "-_.:" for c in target.label):
                bad("iflabel", f"the label {full!r} must be at most 15 alphanumeric characters")
        if cfg.broadcast and cfg.broadcast not in ("+", "-"):
            try:
                family, _ = netlink.parse_ip(cfg.broadcast)
            except netlink.AddressError:
                family = 0
            if family != netlink.AF_INET:
                bad("broadcast", f"{cfg.broadcast!r} is not an IPv4 address, '+' or '-'")
    else:
        if cfg.lvs_support:
            bad("lvs_support", "is for IPv4; use lvs_ipv6_addrlabel for IPv6")
        try:
            _preferred_lft(cfg.preferred_lft)
        except ConfigError as exc:
            bad("preferred_lft", exc.reason)


def _preferred_lft(text: str) -> int:
    text = (text or "forever").strip().lower()
    if text in ("forever", "infinity"):
        return netlink.FOREVER
    if text.endswith("sec"):
        text = text[:-3]
    if not text.isdigit() or int(text) >= netlink.FOREVER:
        raise ConfigError(f"{text!r} is not a number of seconds or 'forever'")
    return int(text)


def _index(nic: str):
    """The interface index of nic, None when there is no such interface here."""
    import _socket
    try:
        return _socket.if_nametoindex(nic)
    except OSError:
        return None


def _resolve(ctx, nl: netlink.Netlink, target: Target, broadcast: bool = True) -> Target:
    """Fill in nic, prefix (and for start the broadcast) from the routing table where the user left them out."""
    if target.nic:
        target.index = _index(target.nic)
        if target.index is None:  # another node may have it: ban this node only
            raise NotInstalled(f"parameter nic: {target.nic} does not exist on this node")
    if target.nic is None or target.prefix is None:
        names = {link.index: link.name for link in nl.links()}
        try:
            route = netlink.find_route(nl.routes(target.family), target.family, target.packed, target.prefix,
                                       target.index, names)
        except LookupError as exc:
            # The route depends on this node's network, not on the configuration: another node may do.
            raise OCFError(OCFExit.ERR_GENERIC, str(exc)) from None
        if target.nic is None:
            target.nic, target.index = names.get(route.oif, str(route.oif)), route.oif
            target.lo = target.nic.startswith("lo")
        if target.prefix is None:
            target.prefix = route.dst_len
    if broadcast and target.v4 and not target.lo:
        target.broadcast = _broadcast(ctx, nl, target)
    return target


def _broadcast(ctx, nl: netlink.Netlink, target: Target):
    text = ctx.config.broadcast
    if text == "+" or (not text and target.prefix <= 30):
        computed = netlink.broadcast_of(target.packed, target.prefix)
        if not text:  # prefer what the interface's own address of this subnet uses
            for addr in nl.addresses(netlink.AF_INET):
                if (addr.index == target.index and addr.prefix == target.prefix and addr.broadcast
                        and netlink.in_prefix(addr.local, target.packed, target.prefix)):
                    return addr.broadcast
        return computed
    if text == "-":
        return netlink.network_of(target.packed, target.prefix)
    if text:
        return netlink.parse_ip(text)[1]
    return None


# ---------------------------------------------------------------- network namespace

def _netns_name_ok(name) -> bool:
    """Whether name can be a namespace of ip netns (a file name in /run/netns); an empty one is none."""
    return not name or ("/" not in name and name not in (".", ".."))


def _enter_netns(ctx) -> bool:
    """Move this process into network_namespace; False when that namespace does not exist."""
    name = ctx.config.network_namespace
    if not name:
        return True
    if not _netns_name_ok(name):
        raise ConfigError(f"parameter network_namespace: {name!r} is not a namespace name")
    path = "/run/netns/" + name
    try:
        wanted = os.stat(path)
    except FileNotFoundError:
        return False
    current = os.stat("/proc/self/ns/net")
    if (current.st_dev, current.st_ino) == (wanted.st_dev, wanted.st_ino):
        return True
    import ctypes  # setns(2): os.setns only exists from Python 3.12
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OCFError(OCFExit.ERR_GENERIC, f"cannot enter network namespace {name}: {os.strerror(errno)}")
    finally:
        os.close(fd)
    return True


def _require_netns(ctx) -> None:
    if not _enter_netns(ctx):  # another node may have it: ban this node only
        raise NotInstalled(f"parameter network_namespace: {ctx.config.network_namespace} does not exist on "
                           "this node")


# ---------------------------------------------------------------- state

def _state(ctx) -> StateFile:
    return StateFile(rsctmp(ctx.env.raw), f"IPaddr2-{ctx.env.instance}.state")


def _read_state(ctx) -> dict:
    text = _state(ctx).read() or ""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _write_state(ctx, values: dict) -> None:
    _state(ctx).write("\n".join(f"{k}={v}" for k, v in values.items()))


def _lvs_sysctl_file(ctx) -> StateFile:
    # Shared by every LVS VIP of this node: the first one up saves the originals, the last one down restores.
    return StateFile(rsctmp(ctx.env.raw), "IPaddr2-lvs-sysctl.orig")


def _lvs_arp_setup(ctx) -> None:
    saved = _lvs_sysctl_file(ctx)
    if saved.read() is None:
        saved.write("\n".join(f"{name}={netlink.read_sysctl(name)}" for name, _ in _LVS_SYSCTLS))
    for name, value in _LVS_SYSCTLS:
        netlink.write_sysctl(name, value)


def _lvs_arp_restore(ctx, nl: netlink.Netlink) -> None:
    """Restore the ARP sysctls once no LVS VIP is left on loopback."""
    saved = _lvs_sysctl_file(ctx)
    text = saved.read()
    if text is None:
        return
    lo = _index("lo")
    others = [a for a in nl.addresses(netlink.AF_INET) if a.index == lo and a.scope == 0]
    if others:
        ctx.log.info("keeping LVS ARP settings: %s still on lo", ", ".join(a.text for a in others))
        return
    for line in text.splitlines():
        name, _, value = line.partition("=")
        netlink.write_sysctl(name, value)
    saved.remove()


# ---------------------------------------------------------------- announcements

def _announce(ctx, target: Target, link: netlink.Link, count: int) -> None:
    cfg = ctx.config
    interval = cfg.arp_interval / 1000.0
    if target.v4:
        reply = "-A" in (cfg.send_arp_opts or "").split()
        netlink.send_garp(target.nic, link.mac, target.packed, count, interval, reply=reply,
                          sleep=ctx.deadline.sleep)
    else:
        netlink.send_unsolicited_na(target.index, link.mac, target.packed, count, interval,
                                    sleep=ctx.deadline.sleep)


def _announce_in_background(ctx, target: Target, link: netlink.Link) -> str:
    """Announce from a detached child; its identity ('pid:starttime') so stop can kill it and nothing else."""
    return run_detached(lambda: _announce(ctx, target, link, ctx.config.arp_count))


def _kill_sender(ctx, record: str) -> None:
    pid = proc.same_process(record)
    if pid is not None:
        import signal
        try:
            os.kill(pid, signal.SIGTERM)
            ctx.log.info("stopped the background ARP/NA sender %s", pid)
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------- actions

def validate(ctx) -> None:
    """Check syntax always (every problem at once); the interface and routing only where the node's state matters
    (start, validate-all), where what this node lacks is OCF_ERR_INSTALLED: another node may have it."""
    target = _parsed(ctx)
    if ctx.action in ("start", "validate-all"):
        _require_netns(ctx)
        with netlink.Netlink() as nl:
            _resolve(ctx, nl, target)


def _present(nl: netlink.Netlink, target: Target) -> list:
    return [a for a in nl.addresses(target.family) if a.local == target.packed and a.index == target.index]


def start(ctx) -> int:
    """Add the address (after a duplicate check where asked), bring the link up, wait for DAD, announce."""
    _require_netns(ctx)
    with netlink.Netlink() as nl:
        target = _resolve(ctx, nl, _parsed(ctx))
        link = nl.link(target.index)
        existing = _present(nl, target)
        if existing and not existing[0].flags & netlink.IFA_F_DADFAILED:
            ctx.log.info("%s is already on %s", target.text, target.nic)
            if not _read_state(ctx):
                _write_state(ctx, {"nic": target.nic, "prefix": existing[0].prefix})
            return OCFExit.SUCCESS
        if existing:  # a leftover that failed DAD earlier: clear it and try again
            nl.delete_address(target.family, target.packed, existing[0].prefix, target.index)
        _write_state(ctx, {"nic": target.nic, "prefix": target.prefix})
        try:
            _configure(ctx, nl, target, link)
        except BaseException:
            # Never leave a half-configured address behind: undo whatever was done, then report.
            _undo(ctx, nl, target)
            raise
    return OCFExit.SUCCESS


def _configure(ctx, nl: netlink.Netlink, target: Target, link: netlink.Link) -> None:
    cfg = ctx.config
    if cfg.lvs_support and not target.lo:
        _drop_loopback_copy(ctx, nl, target)
    if cfg.run_arping and target.v4 and not target.lo:
        other = netlink.arp_probe(target.nic, link.mac, target.packed, min(1.0, ctx.deadline.remaining()))
        if other:
            raise OCFError(OCFExit.ERR_GENERIC, f"IPv4 address collision: {target.text} is in use by "
                                                f"{other.hex(':')} on {target.nic}")
    if not link.flags & netlink.IFF_UP:
        ctx.log.info("bringing %s up", target.nic)
        nl.set_up(target.index)
    if target.lo and target.v4:
        _lvs_arp_setup(ctx)
    if cfg.lvs_ipv6_addrlabel and not target.v4:
        _addrlabel(ctx, "add", target)
    flags = 0
    if not target.v4 and (cfg.nodad or target.lo):
        flags |= netlink.IFA_F_NODAD
    if cfg.noprefixroute:
        flags |= netlink.IFA_F_NOPREFIXROUTE
    label = f"{target.nic}:{target.label}" if target.label and target.v4 else ""
    preferred = netlink.FOREVER if target.v4 else _preferred_lft(cfg.preferred_lft)
    ctx.log.info("adding %s/%s to %s", target.text, target.prefix, target.nic)
    try:
        nl.add_address(target.family, target.packed, target.prefix, target.index, flags=flags,
                       broadcast=target.broadcast, label=label, preferred=preferred)
    except netlink.NetlinkError as exc:
        raise OCFError(OCFExit.ERR_GENERIC, f"cannot add {target.text}/{target.prefix} to {target.nic}: "
                                            f"{exc.strerror}") from None
    if target.lo or cfg.arp_count == 0:
        return
    if not target.v4 and not flags & netlink.IFA_F_NODAD:
        _wait_dad(ctx, nl, target)
    background = cfg.arp_bg if cfg.arp_bg is not None else target.v4
    if background:
        state = _read_state(ctx)
        state["sender"] = _announce_in_background(ctx, target, nl.link(target.index))
        _write_state(ctx, state)
    else:
        _announce(ctx, target, nl.link(target.index), cfg.arp_count)


def _wait_dad(ctx, nl: netlink.Netlink, target: Target) -> None:
    """Wait while the IPv6 address is tentative; a duplicate elsewhere fails the start."""
    def settled():
        found = _present(nl, target)
        if not found:
            raise OCFError(OCFExit.ERR_GENERIC, f"{target.text} disappeared from {target.nic} during DAD")
        flags = found[0].flags
        if flags & netlink.IFA_F_DADFAILED:
            raise OCFError(OCFExit.ERR_GENERIC, f"duplicate address detection failed for {target.text} on "
                                                f"{target.nic} (dadfailed): another host uses it")
        return None if flags & netlink.IFA_F_TENTATIVE else True
    try:
        poll(ctx.deadline, settled, what="DAD", factor=1.5, longest=0.25)
    except DeadlineExceeded:
        raise OCFError(OCFExit.ERR_GENERIC,
                       f"{target.text} still tentative (DAD) when the start timed out") from None


def _undo(ctx, nl: netlink.Netlink, target: Target) -> None:
    try:
        nl.delete_address(target.family, target.packed, target.prefix, target.index)
        if target.lo and target.v4:
            _lvs_arp_restore(ctx, nl)
        if ctx.config.lvs_ipv6_addrlabel and not target.v4:
            _addrlabel(ctx, "del", target)
    except Exception as exc:  # report the original failure, not the clean-up's
        ctx.log.error("clean-up after failed start: %s", exc)
    _state(ctx).remove()


def _drop_loopback_copy(ctx, nl: netlink.Netlink, target: Target) -> None:
    lo = _index("lo")
    for addr in nl.addresses(netlink.AF_INET):
        if addr.index == lo and addr.local == target.packed:
            ctx.log.info("removing %s from lo (lvs_support)", target.text)
            nl.delete_address(addr.family, addr.local, addr.prefix, lo)
    _lvs_arp_restore(ctx, nl)


def _addrlabel(ctx, verb: str, target: Target) -> None:
    result = ctx.run(["ip", "addrlabel", verb, "prefix", f"{target.text}/128", "label",
                      str(ctx.config.lvs_ipv6_addrlabel_value)])
    if not result.ok and verb == "add":
        raise OCFError(OCFExit.ERR_GENERIC, f"ip addrlabel add: {result.first_error_line()}")


def _stop_target(ctx, nl: netlink.Netlink, state: dict):
    """What to remove: the recorded interface, else what the parameters resolve to; None when nothing."""
    target = _parsed(ctx)
    nic = state.get("nic") or target.nic
    if nic:
        target.nic, target.index, target.lo = nic, _index(nic), nic.startswith("lo")
        if target.index is None:
            return None
    else:
        try:
            _resolve(ctx, nl, target, broadcast=False)
        except OCFError:
            return None
    found = _present(nl, target)
    if state.get("prefix", "").isdigit():
        found = [a for a in found if a.prefix == int(state["prefix"])] or found
    if not found:
        return None
    target.prefix = found[0].prefix
    return target


def stop(ctx) -> int:
    """Remove the address we manage (only it), stop the ARP sender, restore what start changed."""
    if not _enter_netns(ctx):
        return OCFExit.SUCCESS  # no namespace: nothing of ours can be configured in it
    state = _read_state(ctx)
    if state.get("sender"):
        _kill_sender(ctx, state["sender"])
    with netlink.Netlink() as nl:
        target = _stop_target(ctx, nl, state)
        if target is not None:
            ctx.log.info("removing %s/%s from %s", target.text, target.prefix, target.nic)
            try:
                nl.delete_address(target.family, target.packed, target.prefix, target.index)
            except netlink.NetlinkError as exc:
                raise OCFError(OCFExit.ERR_GENERIC, f"cannot remove {target.text} from {target.nic}: "
                                                    f"{exc.strerror}") from None
            if ctx.config.lvs_support and target.v4 and not target.lo:
                _move_to_loopback(ctx, nl, target)
        lo_mode = target.lo if target is not None else (state.get("nic", "").startswith("lo"))
        if lo_mode:
            _lvs_arp_restore(ctx, nl)
    if ctx.config.lvs_ipv6_addrlabel and target is not None and not target.v4:
        _addrlabel(ctx, "del", target)
    if ctx.config.flush_routes:
        ctx.run(["ip", "route", "flush", "cache"])
    _state(ctx).remove()
    return OCFExit.SUCCESS


def _move_to_loopback(ctx, nl: netlink.Netlink, target: Target) -> None:
    """lvs_support: keep serving the VIP locally (as an LVS real server) without answering ARP for it."""
    _lvs_arp_setup(ctx)
    try:
        nl.add_address(target.family, target.packed, 32, _index("lo"))
    except netlink.NetlinkError as exc:
        if exc.errno != 17:  # EEXIST
            raise
    ctx.log.info("moved %s to lo (lvs_support)", target.text)


def monitor(ctx) -> int:
    """Running when the address is on the right interface and (if asked) the link is usable."""
    if not _enter_netns(ctx):
        return OCFExit.NOT_RUNNING
    target = _parsed(ctx)
    state = _read_state(ctx)
    with netlink.Netlink() as nl:
        nic = target.nic or state.get("nic")
        if nic:
            target.nic, target.index, target.lo = nic, _index(nic), nic.startswith("lo")
            if target.index is None:
                return OCFExit.NOT_RUNNING
        else:
            try:
                _resolve(ctx, nl, target, broadcast=False)
            except OCFError:
                return OCFExit.NOT_RUNNING
        found = _present(nl, target)
        if target.prefix is not None:
            found = [a for a in found if a.prefix == target.prefix]
        if not found:
            return OCFExit.NOT_RUNNING
        if found[0].flags & netlink.IFA_F_DADFAILED:
            ctx.log.error("%s on %s failed duplicate address detection", target.text, target.nic)
            return OCFExit.NOT_RUNNING
        if ctx.config.check_link_status and not target.lo:
            link = nl.link(target.index)
            if not link.usable:
                ctx.log.warning("%s is on %s but the link is not usable (%s)", target.text, target.nic,
                                link.state_text())
                return OCFExit.NOT_RUNNING
        if ctx.config.arp_count_refresh and target.v4 and not target.lo:
            link = nl.link(target.index)
            netlink.send_garp(target.nic, link.mac, target.packed, ctx.config.arp_count_refresh,
                              ctx.config.arp_interval / 1000.0, sleep=ctx.deadline.sleep)
    return OCFExit.SUCCESS


AGENT = Agent(SPEC, {"start": start, "stop": stop, "monitor": monitor, "status": monitor}, validate)
