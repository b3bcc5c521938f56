# SPDX-License-Identifier: GPL-2.0-or-later
"""hamail-vbmc: a virtual BMC serving IPMI 2.0 (RMCP+ lanplus) for one simulated machine, for labs and tests.

It speaks enough IPMI for fencing: Get Channel Authentication Capabilities, Get Channel Cipher Suites,
RMCP+ Open Session / RAKP 1-4 with cipher suites 17 (HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128) and
3 (HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128), Set Session Privilege Level, Close Session, Get Device ID,
Get Chassis Status and Chassis Control. Suite 0 (no authentication) is never accepted. Power on/off/
reset/cycle run configured argv commands through the CommandRunner; the power state lives in the process
unless a status command is configured. Written on raw sockets rather than pyghmi's Bmc classes because
pyghmi's server answers suite 17 with SHA1 algorithms and its own clients cannot log in to it.
"""

import dataclasses
import hmac
import logging
import os
import select
import socket
import struct
import sys
import threading
import time
from typing import Callable, Optional, Sequence

from hamail.system.runner import CommandRunner, CommandNotFound, CommandTimeout
from hamail.secret import Secret

__all__ = [
    "PRIVILEGES", "CipherSuite", "SUITES", "Fault", "VbmcConfig", "PowerModel", "Vbmc", "aes_cbc",
]

LOG = logging.getLogger("hamail_vbmc")

PRIVILEGES = {"callback": 1, "user": 2, "operator": 3, "administrator": 4}
RMCP_HEADER = b"\x06\x00\xff\x07"
BMC_ADDR = 0x20

# Payload types of RMCP+ (IPMI 2.0 table 13-16).
PT_IPMI, PT_OPEN_REQ, PT_OPEN_RSP, PT_RAKP1, PT_RAKP2, PT_RAKP3, PT_RAKP4 = 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15

# RMCP+ status codes (IPMI 2.0 table 13-15).
RMCP_OK = 0x00
RMCP_NO_RESOURCES = 0x01
RMCP_INVALID_SESSION = 0x02
RMCP_UNAUTHORIZED_ROLE = 0x0A
RMCP_INVALID_NAME_LENGTH = 0x0C
RMCP_UNAUTHORIZED_NAME = 0x0D
RMCP_INVALID_ICV = 0x0F
RMCP_NO_SUITE_MATCH = 0x11

# Completion codes (IPMI 2.0 table 5-2).
CC_OK = 0x00
CC_PRIV_TOO_HIGH_FOR_USER = 0x80
CC_PRIV_TOO_HIGH = 0x81
CC_INVALID_COMMAND = 0xC1
CC_INVALID_DATA = 0xCC
CC_UNSPECIFIED = 0xFF
CC_INSUFFICIENT_PRIVILEGE = 0xD4
CC_NOT_IN_PRESENT_STATE = 0xD5

MAX_SESSIONS = 16
SESSION_IDLE_S = 60.0


@dataclasses.dataclass(frozen=True)
class CipherSuite:
    """An RMCP+ cipher suite: its number, algorithm numbers and hash."""

    number: int
    auth: int
    integrity: int
    confidentiality: int
    digest: str
    icv_length: int  # bytes of the truncated HMAC in packets and in RAKP4

    def hmac(self, key: bytes, data: bytes) -> bytes:
        """The full HMAC of data with this suite's hash."""
        return hmac.new(key, data, self.digest).digest()


SUITES = {
    17: CipherSuite(17, auth=3, integrity=4, confidentiality=1, digest="sha256", icv_length=16),
    3: CipherSuite(3, auth=1, integrity=1, confidentiality=1, digest="sha1", icv_length=12),
}


@dataclasses.dataclass(frozen=True)
class Fault:
    """An injected failure: answer this completion code (or nothing: DROP) to the next `count` commands."""

    code: int
    count: int

    DROP = -1  # a BMC that stops answering

    @classmethod
    def parse(cls, text: str) -> "Fault":
        """'0xc0:3' -> answer 0xC0 three times; 'drop:5' -> ignore five requests."""
        code, _, count = text.partition(":")
        return cls(cls.DROP if code.strip().lower() == "drop" else int(code, 0), int(count or "1"))


@dataclasses.dataclass(frozen=True)
class VbmcConfig:
    """Everything one virtual BMC needs: where it listens, who may log in, and how power maps to commands."""

    address: str
    port: int
    username: str
    password: Secret
    privilege: int = 4
    kg: Optional[bytes] = None
    suites: tuple[int, ...] = (17, 3)
    power_on: Optional[tuple[str, ...]] = None
    power_off: Optional[tuple[str, ...]] = None
    power_reset: Optional[tuple[str, ...]] = None
    power_cycle: Optional[tuple[str, ...]] = None
    power_status: Optional[tuple[str, ...]] = None
    initial_power: bool = True
    command_timeout: float = 30.0
    power_delay: float = 0.0
    cycle_off_time: float = 0.2
    stuck: bool = False
    control_fault: Optional[Fault] = None
    status_fault: Optional[Fault] = None
    guid: bytes = b"hamail-vbmc-guid"


def aes_cbc(key: bytes, iv: bytes, data: bytes, encrypt: bool) -> bytes:
    """AES-128-CBC without padding (IPMI pads itself), with the cryptography library pyghmi also uses."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # lazy: only the server needs it
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = cipher.encryptor() if encrypt else cipher.decryptor()
    return op.update(data) + op.finalize()


def _checksum(data: bytes) -> int:
    """IPMI's two's-complement checksum."""
    return (-sum(data)) & 0xFF


class PowerModel:
    """The simulated machine's power: state in the process (or from a status command), transitions via commands."""

    def __init__(self, config: VbmcConfig, runner: Optional[CommandRunner] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._runner = runner or CommandRunner()
        self._clock = clock
        self._lock = threading.Lock()
        self._on = config.initial_power
        self._pending: Optional[tuple[bool, float]] = None  # (target state, when it takes effect)
        self._threads: list[threading.Thread] = []

    def is_on(self) -> bool:
        """The current power state."""
        if self._config.power_status:
            try:
                result = self._runner.run(self._config.power_status, timeout=self._config.command_timeout)
            except (CommandNotFound, CommandTimeout) as exc:
                LOG.error("status command failed: %s", exc)
                raise
            return result.rc == 0
        with self._lock:
            if self._pending and self._clock() >= self._pending[1]:
                self._on = self._pending[0]
                self._pending = None
            return self._on

    def control(self, operation: str) -> int:
        """Start a chassis control operation (on/off/reset/cycle/diag); the completion code to answer."""
        on = self.is_on()
        if operation == "diag":
            # A diagnostic interrupt (NMI) reaches only a running machine; it changes no power state.
            if not on:
                return CC_NOT_IN_PRESENT_STATE
            LOG.info("power diag: diagnostic interrupt delivered")
            return CC_OK
        if operation in ("reset", "cycle") and not on:
            # What real BMCs answer (and what breaks fence_ipmilan's method=cycle, fence-agents #596).
            return CC_NOT_IN_PRESENT_STATE
        if self._config.stuck:
            LOG.info("power %s accepted but ignored (stuck)", operation)
            return CC_OK
        argv = getattr(self._config, "power_" + operation)
        LOG.info("power %s (was %s)", operation, "on" if on else "off")
        if argv:
            thread = threading.Thread(target=self._run_command, args=(operation, argv), daemon=True)
            self._threads.append(thread)
            thread.start()
        else:
            self._transition(operation)
        return CC_OK

    def _run_command(self, operation: str, argv: Sequence[str]) -> None:
        """Run a power command in the background (a BMC answers at once and switches later)."""
        try:
            result = self._runner.run(argv, timeout=self._config.command_timeout)
        except (CommandNotFound, CommandTimeout) as exc:
            LOG.error("power %s command failed: %s", operation, exc)
            return
        if not result.ok:
            LOG.error("power %s command failed: %s", operation, result.first_error_line())
            return
        self._transition(operation)

    def _transition(self, operation: str) -> None:
        """Record the new state, after the configured delay."""
        with self._lock:
            now = self._clock()
            if operation == "cycle":
                # Off now, back on after cycle_off_time: a status poll can observe the off phase.
                self._on = False
                self._pending = (True, now + self._config.cycle_off_time + self._config.power_delay)
            elif operation == "reset":
                self._on = True
                self._pending = None
            else:
                self._pending = (operation == "on", now + self._config.power_delay)

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait for background power commands (for tests and clean shutdown)."""
        for thread in list(self._threads):
            thread.join(timeout)


@dataclasses.dataclass
class _Session:
    """One RMCP+ session as the BMC sees it (mutable: it advances through the handshake)."""

    bmc_sid: int
    console_sid: int
    suite: CipherSuite
    max_priv: int
    peer: tuple
    last_seen: float
    rm: bytes = b""
    rc: bytes = b""
    role: int = 0
    username: bytes = b""
    sik: bytes = b""
    k1: bytes = b""
    k2: bytes = b""
    established: bool = False
    privilege: int = 2  # sessions start at User level (IPMI 2.0 section 13.28)
    out_seq: int = 0


class Vbmc:
    """The protocol engine: takes one datagram, returns the answer (or None). No sockets inside."""

    def __init__(self, config: VbmcConfig, power: PowerModel,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.power = power
        self._clock = clock
        self._sessions: dict[int, _Session] = {}
        self._faults = {"control": config.control_fault.count if config.control_fault else 0,
                        "status": config.status_fault.count if config.status_fault else 0}

    # -- datagram level --------------------------------------------------------------------------

    def handle(self, data: bytes, peer: tuple) -> Optional[bytes]:
        """Answer one UDP datagram."""
        if len(data) < 5 or data[0] != 0x06:
            return None
        if data[3] == 0x06:  # ASF class: presence ping
            return self._asf_pong(data)
        if data[3] != 0x07:
            return None
        authtype = data[4]
        try:
            if authtype == 0x00:
                return self._handle_v15(data)
            if authtype == 0x06:
                return self._handle_v20(data, peer)
        except (IndexError, struct.error, ValueError) as exc:
            LOG.debug("malformed packet from %s: %s", peer, exc)
        return None

    @staticmethod
    def _asf_pong(data: bytes) -> Optional[bytes]:
        """Answer an RMCP/ASF presence ping so discovery tools see a BMC."""
        if len(data) < 12 or data[8] != 0x80:
            return None
        tag = data[9]
        body = struct.pack(">IBBBB", 4542, 0x40, tag, 0, 16) + struct.pack(">IIBB6x", 4542, 0, 0x81, 0)
        return b"\x06\x00\xff\x06" + body

    def _handle_v15(self, data: bytes) -> Optional[bytes]:
        """Sessionless IPMI 1.5 framing: only the pre-session discovery commands are answered."""
        length = data[13]
        message = data[14:14 + length]
        answer = self._dispatch(message, None)
        if answer is None:
            return None
        return RMCP_HEADER + b"\x00" + struct.pack("<II", 0, 0) + bytes([len(answer)]) + answer

    def _handle_v20(self, data: bytes, peer: tuple) -> Optional[bytes]:
        """RMCP+ framing: handshake payloads, sessionless IPMI, or an authenticated session message."""
        ptype = data[5] & 0x3F
        sid, seq, length = struct.unpack("<IIH", data[6:16])
        payload = data[16:16 + length]
        if ptype == PT_OPEN_REQ:
            return self._frame(PT_OPEN_RSP, self._open_session(payload, peer))
        if ptype == PT_RAKP1:
            return self._frame(PT_RAKP2, self._rakp1(payload))
        if ptype == PT_RAKP3:
            return self._frame(PT_RAKP4, self._rakp3(payload))
        if ptype != PT_IPMI:
            return None
        if sid == 0:
            answer = self._dispatch(payload, None)
            return None if answer is None else self._frame(PT_IPMI, answer)
        session = self._sessions.get(sid)
        if session is None or not session.established:
            return None
        message = self._unwrap(session, data)
        if message is None:
            return None
        session.last_seen = self._clock()
        answer = self._dispatch(message, session)
        if answer is None:
            return None
        packet = self._wrap(session, answer)
        if message[5] == 0x3C and answer[6] == CC_OK and message[1] >> 2 == 0x06:
            # Close Session: answer with its keys, then forget it.
            self._sessions.pop(session.bmc_sid, None)
            LOG.info("session %08x closed", session.bmc_sid)
        return packet

    @staticmethod
    def _frame(ptype: int, payload: Optional[bytes]) -> Optional[bytes]:
        """An unauthenticated RMCP+ packet (session 0, sequence 0)."""
        if payload is None:
            return None
        return RMCP_HEADER + bytes([0x06, ptype]) + struct.pack("<IIH", 0, 0, len(payload)) + payload

    def _unwrap(self, session: _Session, data: bytes) -> Optional[bytes]:
        """Check the integrity code and decrypt a session packet; None if it does not authenticate."""
        suite = session.suite
        if not data[5] & 0x40:  # unauthenticated traffic inside a session is refused
            return None
        auth_code = data[-suite.icv_length:]
        expected = hmac.new(session.k1, data[4:-suite.icv_length], suite.digest).digest()[:suite.icv_length]
        if not hmac.compare_digest(auth_code, expected):
            LOG.debug("integrity check failed for session %08x", session.bmc_sid)
            return None
        length = struct.unpack("<H", data[14:16])[0]
        payload = data[16:16 + length]
        if data[5] & 0x80:
            clear = aes_cbc(session.k2[:16], payload[:16], payload[16:], encrypt=False)
            payload = clear[:len(clear) - clear[-1] - 1]
        return payload

    def _wrap(self, session: _Session, message: bytes) -> bytes:
        """An encrypted, authenticated session packet to the console."""
        suite = session.suite
        pad = (16 - (len(message) + 1) % 16) % 16
        iv = os.urandom(16)
        clear = message + bytes(range(1, pad + 1)) + bytes([pad])
        body = iv + aes_cbc(session.k2[:16], iv, clear, encrypt=True)
        session.out_seq += 1
        packet = bytearray(RMCP_HEADER + bytes([0x06, PT_IPMI | 0xC0]))
        packet += struct.pack("<IIH", session.console_sid, session.out_seq, len(body)) + body
        integrity_pad = (4 - (len(packet) - 4 + 2) % 4) % 4
        packet += b"\xff" * integrity_pad + bytes([integrity_pad, 0x07])
        packet += hmac.new(session.k1, bytes(packet[4:]), suite.digest).digest()[:suite.icv_length]
        return bytes(packet)

    # -- RMCP+ handshake -----------------------------------------------------------------------

    def _open_session(self, req: bytes, peer: tuple) -> bytes:
        """Open Session Request -> Response: accept exactly one of our suites, never suite 0."""
        tag, wanted_priv = req[0], req[1] & 0x0F
        console_sid = struct.unpack("<I", req[4:8])[0]
        algorithms = (req[12], req[20], req[28])
        suite = next((SUITES[n] for n in self.config.suites
                      if (SUITES[n].auth, SUITES[n].integrity, SUITES[n].confidentiality) == algorithms), None)
        if suite is None:
            LOG.info("refused cipher proposal auth=%d integrity=%d confidentiality=%d", *algorithms)
            return bytes([tag, RMCP_NO_SUITE_MATCH, 0, 0]) + struct.pack("<I", console_sid)
        self._expire()
        if len(self._sessions) >= MAX_SESSIONS:
            return bytes([tag, RMCP_NO_RESOURCES, 0, 0]) + struct.pack("<I", console_sid)
        bmc_sid = struct.unpack("<I", os.urandom(4))[0] | 1
        max_priv = wanted_priv or self.config.privilege
        self._sessions[bmc_sid] = _Session(bmc_sid, console_sid, suite, max_priv, peer, self._clock())
        LOG.debug("open session %08x suite %d", bmc_sid, suite.number)
        return (bytes([tag, RMCP_OK, max_priv, 0]) + struct.pack("<II", console_sid, bmc_sid)
                + bytes([0, 0, 0, 8, suite.auth, 0, 0, 0, 1, 0, 0, 8, suite.integrity, 0, 0, 0,
                         2, 0, 0, 8, suite.confidentiality, 0, 0, 0]))

    def _rakp1(self, req: bytes) -> Optional[bytes]:
        """RAKP 1 -> 2: check name and role, prove the password to the console."""
        tag = req[0]
        bmc_sid = struct.unpack("<I", req[4:8])[0]
        session = self._sessions.get(bmc_sid)
        if session is None:
            return bytes([tag, RMCP_INVALID_SESSION, 0, 0, 0, 0, 0, 0])
        rm, role, name_length = req[8:24], req[24], req[27]
        username = req[28:28 + name_length]
        header = bytes([tag, 0, 0, 0]) + struct.pack("<I", session.console_sid)

        def refuse(code: int, why: str) -> bytes:
            """An RAKP2 carrying an error status; the half-open session is dropped."""
            LOG.info("login refused for %r: %s", username.decode(errors="replace"), why)
            self._sessions.pop(bmc_sid, None)
            return bytes([tag, code]) + header[2:]

        if name_length > 16:
            return refuse(RMCP_INVALID_NAME_LENGTH, "name too long")
        if username != self.config.username.encode():
            return refuse(RMCP_UNAUTHORIZED_NAME, "unknown user")
        if (role & 0x0F) > self.config.privilege:
            return refuse(RMCP_UNAUTHORIZED_ROLE, "privilege above the user's limit")
        session.rm, session.role, session.username = bytes(rm), role, bytes(username)
        session.rc = os.urandom(16)
        session.max_priv = min(role & 0x0F or self.config.privilege, self.config.privilege)
        suite = session.suite
        key = self.config.password.reveal().encode()
        auth = suite.hmac(key, struct.pack("<II", session.console_sid, bmc_sid) + session.rm + session.rc
                          + self.config.guid + bytes([role, name_length]) + session.username)
        kg = self.config.kg or key
        session.sik = suite.hmac(kg, session.rm + session.rc + bytes([role, name_length]) + session.username)
        session.k1 = suite.hmac(session.sik, b"\x01" * 20)
        session.k2 = suite.hmac(session.sik, b"\x02" * 20)
        return header + session.rc + self.config.guid + auth

    def _rakp3(self, req: bytes) -> Optional[bytes]:
        """RAKP 3 -> 4: check the console's proof of the password, then prove the session key."""
        tag, status = req[0], req[1]
        bmc_sid = struct.unpack("<I", req[4:8])[0]
        session = self._sessions.get(bmc_sid)
        if session is None or not session.rc:
            return bytes([tag, RMCP_INVALID_SESSION, 0, 0, 0, 0, 0, 0])
        header = struct.pack("<I", session.console_sid)
        if status != RMCP_OK:  # the console gave up (e.g. it found our RAKP2 proof wrong)
            self._sessions.pop(bmc_sid, None)
            return None
        suite = session.suite
        key = self.config.password.reveal().encode()
        expected = suite.hmac(key, session.rc + struct.pack("<I", session.console_sid)
                              + bytes([session.role, len(session.username)]) + session.username)
        if not hmac.compare_digest(bytes(req[8:8 + len(expected)]), expected):
            LOG.info("login refused for %r: wrong password", session.username.decode(errors="replace"))
            self._sessions.pop(bmc_sid, None)
            return bytes([tag, RMCP_INVALID_ICV, 0, 0]) + header
        icv = suite.hmac(session.sik, session.rm + struct.pack("<I", bmc_sid) + self.config.guid)
        session.established = True
        LOG.info("session %08x established for %r (suite %d)", bmc_sid,
                 session.username.decode(errors="replace"), suite.number)
        return bytes([tag, RMCP_OK, 0, 0]) + header + icv[:suite.icv_length]

    def _expire(self) -> None:
        """Forget sessions idle for longer than a BMC would keep them."""
        now = self._clock()
        for sid, session in list(self._sessions.items()):
            if now - session.last_seen > SESSION_IDLE_S:
                del self._sessions[sid]

    # -- IPMI commands ---------------------------------------------------------------------------

    def _dispatch(self, message: bytes, session: Optional[_Session]) -> Optional[bytes]:
        """Answer one IPMI LAN message (request layout: rsAddr netFn/LUN cksum rqAddr rqSeq cmd data cksum)."""
        if len(message) < 7 or _checksum(message[:2]) != message[2]:
            return None
        netfn, rq_addr, rq_seq, cmd = message[1] >> 2, message[3], message[4], message[5]
        data = message[6:-1]
        code, body = self._command(netfn, cmd, data, session)
        if code == Fault.DROP:
            return None
        head = bytes([rq_addr, ((netfn + 1) << 2) | (rq_seq & 0x03)])
        rest = bytes([BMC_ADDR, rq_seq, cmd, code]) + body
        return head + bytes([_checksum(head)]) + rest + bytes([_checksum(rest)])

    def _command(self, netfn: int, cmd: int, data: bytes, session: Optional[_Session]) -> tuple[int, bytes]:
        """Completion code and response data of one command."""
        if netfn == 0x06 and cmd == 0x38:
            return self._channel_auth_capabilities(data)
        if netfn == 0x06 and cmd == 0x54:
            return self._cipher_suites(data)
        if session is None:
            return CC_INSUFFICIENT_PRIVILEGE, b""
        if netfn == 0x06 and cmd == 0x3B:
            return self._set_privilege(data, session)
        if netfn == 0x06 and cmd == 0x3C:
            return CC_OK, b""
        if netfn == 0x06 and cmd == 0x01:
            return CC_OK, bytes([0x20, 0x01, 0x01, 0x00, 0x02, 0x81, 0x00, 0x00, 0x00, 0x00, 0x00])
        if netfn == 0x00 and cmd == 0x01:
            if self._take_fault("status"):
                return self.config.status_fault.code, b""
            try:
                on = self.power.is_on()
            except (CommandNotFound, CommandTimeout):
                return CC_UNSPECIFIED, b""
            return CC_OK, bytes([0x01 if on else 0x00, 0x00, 0x00, 0x00])
        if netfn == 0x00 and cmd == 0x02:
            if session.privilege < PRIVILEGES["operator"]:
                return CC_INSUFFICIENT_PRIVILEGE, b""
            if self._take_fault("control"):
                return self.config.control_fault.code, b""
            operation = {0: "off", 1: "on", 2: "cycle", 3: "reset", 4: "diag"}.get(data[0] & 0x0F if data else -1)
            if operation is None:
                return CC_INVALID_DATA, b""
            try:
                return self.power.control(operation), b""
            except (CommandNotFound, CommandTimeout):
                return CC_UNSPECIFIED, b""
        return CC_INVALID_COMMAND, b""

    def _take_fault(self, which: str) -> bool:
        """Whether to answer the injected fault now (and count it down)."""
        if self._faults[which] > 0:
            self._faults[which] -= 1
            return True
        return False

    def _channel_auth_capabilities(self, data: bytes) -> tuple[int, bytes]:
        """IPMI 2.0 capable, name/password users, Kg status as configured."""
        if not data:
            return CC_INVALID_DATA, b""
        v2 = bool(data[0] & 0x80)
        kg_status = 0x20 if self.config.kg else 0x00
        auth_types = 0x80 if v2 else 0x00  # no IPMI 1.5 session authentication offered
        return CC_OK, bytes([0x01, auth_types, kg_status | 0x04, 0x02 if v2 else 0x00, 0, 0, 0, 0])

    def _cipher_suites(self, data: bytes) -> tuple[int, bytes]:
        """Get Channel Cipher Suites, list by suite: what ipmitool reads to pick its suite."""
        if len(data) < 3:
            return CC_INVALID_DATA, b""
        records = b"".join(bytes([0xC0, n, SUITES[n].auth, 0x40 | SUITES[n].integrity,
                                  0x80 | SUITES[n].confidentiality]) for n in self.config.suites)
        index = data[2] & 0x3F
        return CC_OK, bytes([0x01]) + records[index * 16:(index + 1) * 16]

    def _set_privilege(self, data: bytes, session: _Session) -> tuple[int, bytes]:
        """Set Session Privilege Level within the session's limit."""
        level = data[0] & 0x0F if data else 0
        if level == 0:
            return CC_OK, bytes([session.privilege])
        if level > self.config.privilege:
            return CC_PRIV_TOO_HIGH_FOR_USER, b""
        if level > session.max_priv:
            return CC_PRIV_TOO_HIGH, b""
        session.privilege = level
        return CC_OK, bytes([level])


def serve(vbmc: Vbmc, sock: socket.socket, stop: threading.Event) -> None:
    """Answer datagrams on sock until stop is set."""
    while not stop.is_set():
        ready, _, _ = select.select([sock], [], [], 0.2)
        if not ready:
            continue
        try:
            data, peer = sock.recvfrom(4096)
        except OSError:
            continue
        answer = vbmc.handle(data, peer)
        if answer is not None:
            try:
                sock.sendto(answer, peer)
            except OSError as exc:
                LOG.debug("send to %s failed: %s", peer, exc)


def bind(address: str, port: int) -> socket.socket:
    """A UDP socket bound to address:port."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((address, port))
    return sock


def _argv_option(text: Optional[str]) -> Optional[tuple[str, ...]]:
    """A command given as a shell-like string (split with shlex, run without a shell)."""
    import shlex
    if not text:
        return None
    return tuple(shlex.split(text))


def _read_secret(path: Optional[str], env_name: str) -> Optional[str]:
    """A secret from a file (first line) or from the environment; never from argv."""
    if path:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().rstrip("\r\n")
    return os.environ.get(env_name)


def build_parser():
    """The command line of hamail-vbmc."""
    import argparse
    parser = argparse.ArgumentParser(
        prog="hamail-vbmc",
        description="A virtual BMC (IPMI 2.0 lanplus) for one simulated machine; power maps to commands.")
    parser.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=623, help="UDP port (default 623)")
    parser.add_argument("--user", default="admin", help="the one user name (default admin)")
    parser.add_argument("--privilege", choices=sorted(PRIVILEGES), default="administrator",
                        help="the user's highest privilege level")
    parser.add_argument("--password-file", help="file whose first line is the password")
    parser.add_argument("--password-env", default="HAMAIL_VBMC_PASSWORD",
                        help="environment variable holding the password when no file is given")
    parser.add_argument("--kg-file", help="file holding the BMC key Kg in hexadecimal (default: no Kg)")
    parser.add_argument("--kg-env", default="HAMAIL_VBMC_KG", help="environment variable holding Kg in hex")
    parser.add_argument("--suites", default="17,3", help="cipher suites to accept, of 17 and 3 (default 17,3)")
    parser.add_argument("--power", choices=("on", "off"), default="on", help="initial power state")
    for op in ("on", "off", "reset", "cycle", "status"):
        parser.add_argument(f"--{op}-command", metavar="CMD",
                            help=f"command for power {op} (split like a shell, run without one)"
                            + ("; exit 0 means on" if op == "status" else ""))
    parser.add_argument("--command-timeout", type=float, default=30.0, help="seconds a power command may run")
    parser.add_argument("--power-delay", type=float, default=0.0, help="seconds a power change takes to show")
    parser.add_argument("--stuck", action="store_true", help="accept power commands but never change state")
    parser.add_argument("--control-fault", type=Fault.parse, metavar="CODE:N",
                        help="answer Chassis Control with completion code CODE N times (e.g. 0xc0:2, or drop:N: no answer)")
    parser.add_argument("--status-fault", type=Fault.parse, metavar="CODE:N",
                        help="answer Get Chassis Status with completion code CODE N times")
    parser.add_argument("--foreground", action="store_true", help="do not detach (for tests and debugging)")
    parser.add_argument("--pid-file", help="pid file (daemon mode)")
    parser.add_argument("--log-file", help="log file (default: stderr in the foreground, none when detached)")
    parser.add_argument("--debug", action="store_true", help="log every login step")
    parser.add_argument("--stop", action="store_true", help="stop the daemon named by --pid-file and exit")
    return parser


def config_from_args(args) -> VbmcConfig:
    """A VbmcConfig from parsed arguments; ValueError with a readable message when something is wrong."""
    password = _read_secret(args.password_file, args.password_env)
    if not password:
        raise ValueError(f"no password: give --password-file or set {args.password_env}")
    kg_text = _read_secret(args.kg_file, args.kg_env)
    kg = None
    if kg_text:
        try:
            kg = bytes.fromhex(kg_text.strip().removeprefix("0x"))
        except ValueError:
            raise ValueError("Kg is not hexadecimal") from None
    suites = tuple(int(s) for s in args.suites.split(",") if s.strip())
    if not suites or any(s not in SUITES for s in suites):
        raise ValueError(f"--suites must list some of {sorted(SUITES)}")
    return VbmcConfig(
        address=args.address, port=args.port, username=args.user, password=Secret(password),
        privilege=PRIVILEGES[args.privilege], kg=kg, suites=suites,
        power_on=_argv_option(args.on_command), power_off=_argv_option(args.off_command),
        power_reset=_argv_option(args.reset_command), power_cycle=_argv_option(args.cycle_command),
        power_status=_argv_option(args.status_command), initial_power=args.power == "on",
        command_timeout=args.command_timeout, power_delay=args.power_delay, stuck=args.stuck,
        control_fault=args.control_fault, status_fault=args.status_fault)


def _stop_daemon(pid_file: str, timeout: float = 10.0) -> int:
    """Send SIGTERM to the daemon in pid_file and wait for it to go."""
    import signal
    try:
        with open(pid_file, encoding="ascii") as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError):
        print(f"hamail-vbmc: no daemon running ({pid_file} unreadable)", file=sys.stderr)
        return 1
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return 0
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return 0
        time.sleep(0.05)
    print(f"hamail-vbmc: pid {pid} did not stop within {timeout:.0f} s", file=sys.stderr)
    return 1


def main(argv: Sequence[str]) -> int:
    """Entry point of lab/hamail-vbmc."""
    import signal
    args = build_parser().parse_args(argv)
    if args.stop:
        if not args.pid_file:
            print("hamail-vbmc: --stop needs --pid-file", file=sys.stderr)
            return 2
        return _stop_daemon(args.pid_file)
    try:
        config = config_from_args(args)
    except (ValueError, OSError) as exc:
        print(f"hamail-vbmc: {exc}", file=sys.stderr)
        return 2
    try:
        # Bind before detaching: errors reach the caller, and the port is ready when we return.
        sock = bind(config.address, config.port)
    except OSError as exc:
        print(f"hamail-vbmc: cannot listen on {config.address}:{config.port}: {exc.strerror}", file=sys.stderr)
        return 1
    handler: logging.Handler
    if args.log_file:
        handler = logging.FileHandler(args.log_file)
    elif args.foreground:
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s hamail-vbmc[%(process)d] %(levelname)s %(message)s"))
    root = logging.getLogger("hamail_vbmc")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if args.debug else logging.INFO)
    stop = threading.Event()
    if args.foreground:
        context = None
    else:
        import daemon  # lazy: only the detaching path needs python-daemon
        import daemon.pidfile
        preserve = [sock.fileno()]
        if isinstance(handler, logging.FileHandler):
            preserve.append(handler.stream.fileno())
        context = daemon.DaemonContext(
            files_preserve=preserve, umask=0o022,
            pidfile=daemon.pidfile.TimeoutPIDLockFile(args.pid_file, 5) if args.pid_file else None,
            signal_map={signal.SIGTERM: lambda *_: stop.set(), signal.SIGHUP: None})
        context.open()
    if args.foreground:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    power = PowerModel(config)
    vbmc = Vbmc(config, power)
    LOG.info("serving %s:%d for user %r (suites %s)", config.address, sock.getsockname()[1],
             config.username, ",".join(map(str, config.suites)))
    if args.foreground:
        # Tests wait for this line to know the socket is served.
        print(f"ready {sock.getsockname()[1]}", flush=True)
    try:
        serve(vbmc, sock, stop)
    finally:
        power.wait_idle(config.command_timeout)
        LOG.info("stopped")
        sock.close()
        if context is not None:
            context.close()
    return 0
