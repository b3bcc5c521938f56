# SPDX-License-Identifier: GPL-2.0-or-later
"""fence_ipmi's PowerDevice: one RMCP+ session per process and per action, always logged out; raw Chassis
Status (netfn 0 cmd 1) and Chassis Control (netfn 0 cmd 2: power down, up, cycle, and the diagnostic interrupt
that pyghmi's Command.set_power('diag') also sends), through hamail.agents.fence_ipmi.pyghmi_session.

A sessionless pre-flight (Get Channel Authentication Capabilities on a connected UDP socket) tells
"unreachable" apart from "authentication" quickly: a closed port answers ICMP at once, where pyghmi alone
would retry for about five seconds and report a bare timeout. Every pyghmi call is bounded by the deadline
(hamail.system.bounded.in_thread): pyghmi retries a silent BMC for much longer than fencing may take.
"""

from __future__ import annotations

import errno
import socket
import struct

from hamail.agents.fence_ipmi.pyghmi_session import NO_ANSWER, SEND_MESSAGE, PyghmiSession, SessionError
from hamail.fence.agent import PowerDevice, step_deadline, verbosity
from hamail.fence.log import FenceLog
from hamail.fence.options import AUTHENTICATION, BMC, PRIVILEGE, TIMEOUT, UNREACHABLE, FenceError, FenceOptions
from hamail.secret import Secret
from hamail.system.bounded import TimedOut, in_thread
from hamail.system.clock import Deadline

__all__ = ["PRIVILEGES", "Refused", "IpmiDevice", "IpmiConnection", "target_address", "kg_key", "preflight",
           "completion_text", "classify"]

PRIVILEGES = {"callback": 1, "user": 2, "operator": 3, "administrator": 4}
CONTROL = {"off": 0x00, "on": 0x01, "cycle": 0x02, "reset": 0x03, "diag": 0x04}
# What a BMC without a diagnostic interrupt answers to one (ipmi_sim: 0xCC; others 0xC1, 0xD5, 0xD6).
NOT_OFFERED = frozenset({0xC1, 0xCC, 0xD5, 0xD6})
# Completion codes worth retrying shortly: the BMC is busy or not ready, the request itself was fine.
TRANSIENT = frozenset({0xC0, 0xC3, 0xCE, 0xD2, 0xFF})
BMC_ADDRESS = 0x20
# Send Message's own completion codes (IPMI 2.0 table 22-14), when bridging to a target fails.
BRIDGING = {0x80: "invalid session handle", 0x81: "lost arbitration on the IPMB", 0x82: "bus error on the IPMB",
            0x83: "no answer from the target, NAK on write"}
# Lost arbitration is a busy bus: worth a retry.
BRIDGING_TRANSIENT = frozenset({0x81})
COMPLETION = {
    0xC0: "node busy", 0xC1: "invalid command", 0xC2: "invalid for this LUN", 0xC3: "timeout while processing",
    0xC4: "out of space", 0xC5: "reservation cancelled", 0xC6: "request data truncated",
    0xC7: "request data length invalid", 0xC8: "request data field length limit exceeded",
    0xC9: "parameter out of range", 0xCA: "cannot return the requested number of bytes",
    0xCB: "requested sensor, data or record not present", 0xCC: "invalid data field in request",
    0xCD: "command illegal for this sensor or record type", 0xCE: "response could not be provided",
    0xCF: "duplicated request", 0xD0: "SDR repository in update mode", 0xD1: "device in firmware update mode",
    0xD2: "BMC initialization in progress", 0xD3: "destination unavailable",
    0xD4: "insufficient privilege level", 0xD5: "not supported in present state",
    0xD6: "parameter illegal (sub-function disabled)", 0xFF: "unspecified error",
}


def target_address(opts: FenceOptions) -> int | None:
    """The IPMB address to bridge to (None: the BMC itself); ValueError for what is not one."""
    text = (opts.target or "").strip()
    if not text:
        return None
    try:
        address = int(text, 0)  # as ipmitool's -t: 0x82, 130
    except ValueError:
        raise ValueError(f"{text!r} is not an address (e.g. 0x82)") from None
    if not 0 < address <= 0xFF:
        raise ValueError(f"{text!r} is not an IPMB address (0x01-0xFF)")
    return None if address == BMC_ADDRESS else address


def kg_key(opts: FenceOptions) -> bytes | None:
    """The Kg key from hexadecimal_kg (None when not set); ValueError when it is not hexadecimal."""
    if opts.hexadecimal_kg is None:
        return None
    return bytes.fromhex(opts.hexadecimal_kg.reveal().strip().removeprefix("0x"))


def completion_text(code: int) -> str:
    """'0xC0 (node busy)'."""
    return f"0x{code:02X} ({COMPLETION.get(code, 'unknown completion code')})"


def classify(text: str, where: str) -> FenceError:
    """A pyghmi error message (a SessionError's) turned into a FenceError of the right kind."""
    low = text.lower()
    if "incorrect password" in low or "invalid integrity check value" in low:
        return FenceError(AUTHENTICATION, f"wrong password for {where}")
    if "unauthorized name" in low or "invalid username" in low or "invalid user name" in low:
        return FenceError(AUTHENTICATION, f"user unknown to {where}")
    if "wrong kg" in low:
        return FenceError(AUTHENTICATION, f"wrong Kg (hexadecimal_kg) for {where}")
    if "role" in low or "privilege" in low or "privelege" in low:
        return FenceError(PRIVILEGE, f"privilege level refused by {where}")
    if "cipher suite" in low or "algorithm" in low:
        return FenceError(AUTHENTICATION, f"no common cipher suite with {where}")
    if "insufficient resources" in low:
        return FenceError(BMC, f"{where} has no free session")
    if "timeout" in low or "no longer connected" in low:
        return FenceError(TIMEOUT, f"{where} stopped answering")
    return FenceError(BMC, f"{where}: {text}")


def _auth_capabilities_request() -> bytes:
    """A sessionless IPMI 1.5 Get Channel Authentication Capabilities request (IPMI 2.0 extended)."""
    head = bytes([0x20, 0x06 << 2])
    rest = bytes([0x81, 0x00, 0x38, 0x8E, 0x04])
    message = head + bytes([(-sum(head)) & 0xFF]) + rest + bytes([(-sum(rest)) & 0xFF])
    return b"\x06\x00\xff\x07" + b"\x00" + struct.pack("<II", 0, 0) + bytes([len(message)]) + message


def preflight(host: str, port: int, deadline: Deadline) -> int:
    """Check the BMC answers (sessionless) before logging in; returns the Kg status bit of its answer."""
    where = f"BMC {host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise FenceError(UNREACHABLE, f"cannot resolve {host}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    request = _auth_capabilities_request()
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            # Connected: ICMP port/host unreachable comes back as an error on this socket at once.
            sock.connect(address)
        except OSError as exc:
            raise FenceError(UNREACHABLE, f"{where}: {exc.strerror}") from None
        wait = 0.25
        while True:
            try:
                sock.send(request)
                sock.settimeout(max(0.001, min(wait, deadline.remaining())))
                data = sock.recv(512)
            except socket.timeout:
                if deadline.expired():
                    raise FenceError(UNREACHABLE, f"no answer from {where} within "
                                     f"{deadline.end - deadline.clock.monotonic() + wait:.0f} s") from None
                wait = min(wait * 2, 1.0)
                continue
            except ConnectionRefusedError:
                raise FenceError(UNREACHABLE, f"{where} refused the connection (nothing listens there)") from None
            except OSError as exc:
                kind = UNREACHABLE if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH) else BMC
                raise FenceError(kind, f"{where}: {exc.strerror}") from None
            if len(data) >= 14 + 8 and data[4] == 0x00:
                message = data[14:14 + data[13]]
                if len(message) >= 8 and message[5] == 0x38:
                    if message[6] != 0:
                        raise FenceError(BMC, f"{where} answered channel capabilities with "
                                         f"{completion_text(message[6])}")
                    caps = message[7:-1]
                    if len(caps) >= 4 and not (caps[1] & 0x80 and caps[3] & 0x02):
                        raise FenceError(BMC, f"{where} does not offer IPMI 2.0 (RMCP+)")
                    return caps[2] & 0x20 if len(caps) >= 3 else 0
            # Something else answered: not an IPMI BMC, or a stray packet; keep waiting within the budget.
            if deadline.expired():
                raise FenceError(UNREACHABLE, f"{where} does not answer IPMI")


class Refused(FenceError):
    """The BMC answered a request with a completion code that is not worth retrying (code: that code)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(BMC, message)
        self.code = code


class IpmiDevice(PowerDevice):
    """A logged-in RMCP+ session to one BMC: the PowerDevice of fence_ipmi."""

    __slots__ = ("session", "where", "deadline", "log", "bridge", "trace")

    def __init__(self, session: PyghmiSession, where: str, deadline: Deadline, log: FenceLog,
                 target: int | None = None, trace: bool = False) -> None:
        self.session = session
        self.where = where if target is None else f"{where} target {target:#04x}"
        self.deadline = deadline
        self.log = log
        # pyghmi wraps each request in Send Message to this IPMB address (channel 0), as ipmitool -t does.
        self.bridge = None if target is None else {"addr": target, "channel": 0}
        # verbose_level 2 and more: every request and answer is logged.
        self.trace = trace

    def _raw(self, netfn: int, command: int, data: tuple = ()) -> bytes:
        """One raw command, retrying transient completion codes with a short backoff; response data."""
        delay = 0.05
        while True:
            try:
                answer = in_thread(lambda: self.session.raw_command(netfn, command, data, self.bridge),
                                   self.deadline, f"IPMI command {netfn:#x}/{command:#x}")
            except TimedOut as exc:
                raise FenceError(TIMEOUT, str(exc)) from None
            except SessionError as exc:
                raise classify(str(exc), self.where) from None
            if self.trace:
                self.log.debug("request netfn %#04x cmd %#04x data [%s]: %r data [%s]", netfn, command,
                               bytes(data).hex(" "), answer, answer.data.hex(" "))
            code = answer.code
            if self.bridge and code and (answer.netfn & ~1, answer.command) == SEND_MESSAGE:
                # The BMC could not deliver the request to the target: its own Send Message answer.
                text = f"0x{code:02X} ({BRIDGING.get(code) or COMPLETION.get(code, 'unknown completion code')})"
                if code in BRIDGING_TRANSIENT and self.deadline.remaining() > delay:
                    self.log.info("%s: bridging answered %s; retrying in %.2f s", self.where, text, delay)
                    self.deadline.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                raise FenceError(BMC, f"{self.where}: the BMC could not bridge the request: {text}")
            if code == 0:
                return answer.data
            if code == 0xD4:
                raise FenceError(PRIVILEGE, f"{self.where} answered {completion_text(code)}: "
                                 "raise privlvl or the user's privilege")
            if code in TRANSIENT and self.deadline.remaining() > delay:
                self.log.info("%s answered %s; retrying in %.2f s", self.where, completion_text(code), delay)
                self.deadline.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if code == NO_ANSWER:
                raise FenceError(TIMEOUT, f"{self.where} stopped answering")
            raise Refused(code, f"{self.where} answered {completion_text(code)}")

    def is_on(self) -> bool:
        """Get Chassis Status: bit 0 of the first byte is 'power is on'."""
        data = self._raw(0x00, 0x01)
        if not data:
            raise FenceError(BMC, f"{self.where} sent an empty chassis status")
        on = bool(data[0] & 0x01)
        self.log.debug("power is %s", "on" if on else "off")
        return on

    def control(self, operation: str) -> None:
        """Chassis Control: power down / up / cycle / hard reset / pulse diagnostic interrupt."""
        self.log.info("chassis control %s", operation)
        try:
            self._raw(0x00, 0x02, (CONTROL[operation],))
        except Refused as exc:
            if operation == "diag" and exc.code in NOT_OFFERED:
                raise FenceError(BMC, f"{exc.message} to the diagnostic interrupt (chassis control 4): this BMC "
                                 "does not offer it") from None
            raise


class IpmiConnection:
    """Log in to the BMC on entering (bounded by login_timeout), give the device, always log out on leaving."""

    def __init__(self, opts: FenceOptions, deadline: Deadline, log: FenceLog) -> None:
        self.opts = opts
        self.deadline = deadline
        self.log = log
        self.session: PyghmiSession | None = None

    def __enter__(self) -> IpmiDevice:
        opts, deadline, log = self.opts, self.deadline, self.log
        host, port = opts.ip, opts.ipport
        where = f"BMC {host}:{port}"
        login_deadline = step_deadline(opts, deadline, opts.login_timeout)
        kg_status = preflight(host, port, login_deadline)
        kg = kg_key(opts) if opts.hexadecimal_kg else None
        if kg_status and not kg:
            raise FenceError(AUTHENTICATION, f"{where} requires a Kg key: set hexadecimal_kg")
        password: Secret = opts.password or Secret("")
        session = PyghmiSession(int(opts.cipher) if opts.cipher else None)
        log.info("logging in to %s as %r at privilege %s", where, opts.username or "", opts.privlvl)
        try:
            in_thread(lambda: session.login(host, port, opts.username or "", password, kg, PRIVILEGES[opts.privlvl]),
                      login_deadline, f"login to {where}")
        except SessionError as exc:
            raise classify(str(exc), where) from None
        except TimedOut:
            raise FenceError(TIMEOUT, f"login to {where} did not finish within {opts.login_timeout:g} s") from None
        self.session = session
        return IpmiDevice(session, where, deadline, log, target_address(opts), trace=verbosity(opts) >= 2)

    def __exit__(self, *exc_info) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        try:
            # Close Session is sent without waiting for the answer, but pyghmi first waits for a command still
            # in flight (one abandoned at the deadline): bound that too.
            in_thread(session.logout, Deadline.after(0.5, self.deadline.clock), "logout")
        except TimedOut as exc:
            self.log.debug("logout: %s", FenceError(TIMEOUT, str(exc)))
        except Exception as exc:  # a failed logout must not hide the action's result
            self.log.debug("logout: %s", exc)
