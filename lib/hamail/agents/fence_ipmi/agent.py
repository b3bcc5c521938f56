"""fence_ipmi: IPMI power control for fencing through pyghmi's session layer (no ipmitool, no pyghmi Command).

One RMCP+ session per process and per action, always logged out; raw Chassis Status (netfn 0 cmd 1)
and Chassis Control (netfn 0 cmd 2). pyghmi is imported only when a power action runs, so metadata and
validate-all stay cheap. A sessionless pre-flight (Get Channel Authentication Capabilities on a connected
UDP socket) tells "unreachable" apart from "authentication" quickly: a closed port answers ICMP at once,
where pyghmi alone would retry for about five seconds and report a bare timeout.
"""

from __future__ import annotations

import errno
import socket
import struct
import threading
from collections.abc import Callable

from hamail.system.clock import Deadline
from hamail.fence.agent import (
    AUTHENTICATION, BMC, COMMON_OPTIONS, PRIVILEGE, TIMEOUT, UNREACHABLE, FenceAgent, FenceError, FenceOptions,
    PowerDevice, fence_option,
)
from hamail.fence.log import FenceLog
from hamail.params import Kind
from hamail.secret import Secret

__all__ = ["IPMI_OPTIONS", "AGENT", "IpmiDevice", "IpmiConnection", "import_pyghmi_session", "preflight",
           "completion_text", "classify"]

PRIVILEGES = {"callback": 1, "user": 2, "operator": 3, "administrator": 4}
CONTROL = {"off": 0x00, "on": 0x01, "cycle": 0x02, "reset": 0x03}
# Completion codes worth retrying shortly: the BMC is busy or not ready, the request itself was fine.
TRANSIENT = frozenset({0xC0, 0xC3, 0xCE, 0xD2, 0xFF})
BMC_ADDRESS = 0x20
# Send Message's own completion codes (IPMI 2.0 table 22-14), when bridging to a target fails.
SEND_MESSAGE = (0x06, 0x34)
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

IPMI_OPTIONS = (
    fence_option("ip", Kind.STRING, "IP address or hostname of the BMC", short="a", placeholder="ip", aliases=("ipaddr",),
         required=True),
    fence_option("ipport", Kind.PORT, "UDP port of the BMC", short="u", placeholder="port", default="623"),
    fence_option("username", Kind.STRING, "Login name", short="l", placeholder="name", aliases=("login",)),
    fence_option("password", Kind.STRING, "Login password or passphrase", short="p", placeholder="password",
         aliases=("passwd",), private=True),
    fence_option("password_script", Kind.STRING, "Command to run to retrieve the password (run without a shell)",
         short="S", placeholder="script", aliases=("passwd_script",)),
    fence_option("lanplus", Kind.BOOLEAN, "Use IPMI 2.0 (RMCP+)", short="P", default="1",
         longdesc="pyghmi negotiates IPMI 2.0 whenever the BMC offers it; lanplus=0 changes nothing."),
    fence_option("auth", Kind.SELECT, "IPMI 1.5 authentication type", short="A", placeholder="auth",
         choices=("md5", "password", "none"), ignored="RMCP+ authenticates with RAKP"),
    fence_option("cipher", Kind.STRING, "Cipher suite: 17 or 3 (default: 17, falling back to 3)", short="C",
         placeholder="cipher",
         longdesc="Suite 0 (no authentication) is refused; pyghmi implements only suites 3 and 17."),
    fence_option("privlvl", Kind.SELECT, "Privilege level on the BMC", short="L", placeholder="level",
         choices=tuple(PRIVILEGES), default="administrator"),
    fence_option("hexadecimal_kg", Kind.STRING, "Hexadecimal-encoded Kg key for IPMI 2.0 authentication",
         placeholder="key", private=True),
    fence_option("target", Kind.STRING, "Bridge IPMI requests to the remote target address",
         placeholder="targetaddress",
         longdesc="The IPMB slave address (e.g. 0x82) of the controller behind the BMC that controls this "
                  "machine's power, as ipmitool -t: requests go through Send Message on channel 0 (primary "
                  "IPMB). Empty: the BMC itself."),
    fence_option("method", Kind.SELECT, "Method to fence: onoff (off, verify, on) or cycle", short="m",
         placeholder="method", choices=("onoff", "cycle"), default="onoff"),
    fence_option("ipmitool_path", Kind.STRING, "Path to ipmitool", placeholder="path",
         ignored="fence_ipmi speaks IPMI itself through pyghmi"),
    fence_option("ipmitool_timeout", Kind.STRING, "Timeout (sec) for IPMI operation", placeholder="timeout",
         ignored="bounded by login_timeout, power_timeout and fence_timeout"),
) + COMMON_OPTIONS

LONGDESC = (
    "fence_ipmi powers a machine off and on through its BMC with IPMI 2.0 (RMCP+, cipher suite 17 or 3), "
    "using pyghmi rather than ipmitool. It accepts fence_ipmilan's options and aliases, verifies every "
    "off and on by polling the power state with a short backoff, handles method=cycle on a machine that "
    "is already off, bounds every wait by power_timeout and fence_timeout, and never passes the password "
    "or Kg to another process. It controls the one machine behind its BMC (or, with target, behind the "
    "controller at that IPMB address): there is no list action and plug/port are ignored, so configure "
    "pcmk_host_list (the node name) on the stonith resource.")


def check(opts: FenceOptions) -> list[str]:
    """fence_ipmi's own validation rules."""
    problems = []
    if opts.cipher not in (None, "", "3", "17"):
        if opts.cipher.strip() == "0":
            problems.append("cipher 0 sends commands without authentication; refused (use 17 or 3)")
        else:
            problems.append(f"cipher {opts.cipher!r} is not supported (pyghmi implements 17 and 3)")
    if opts.target:
        try:
            target_address(opts)
        except ValueError as exc:
            problems.append(f"target: {exc}")
    if opts.hexadecimal_kg is not None:
        try:
            kg = bytes.fromhex(opts.hexadecimal_kg.reveal().strip().removeprefix("0x"))
        except ValueError:
            problems.append("hexadecimal_kg is not hexadecimal")
        else:
            if len(kg) > 20:
                problems.append("hexadecimal_kg is longer than 20 bytes")
    if opts.username and len(opts.username.encode()) > 16:
        problems.append("username is longer than 16 bytes (IPMI limit)")
    if opts.password is not None and len(opts.password.reveal().encode()) > 20:
        problems.append("password is longer than 20 bytes (IPMI 2.0 limit)")
    return problems


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


def completion_text(code: int) -> str:
    """'0xC0 (node busy)'."""
    return f"0x{code:02X} ({COMPLETION.get(code, 'unknown completion code')})"


def classify(text: str, where: str) -> FenceError:
    """A pyghmi error message turned into a FenceError of the right kind."""
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


def _bounded(call: Callable[[], object], deadline: Deadline, what: str):
    """Run a blocking pyghmi call in a daemon thread, giving up at the deadline (pyghmi retries for long)."""
    box: dict[str, object] = {}

    def target() -> None:
        """Run the call, keeping its result or exception for the waiting thread."""
        try:
            box["result"] = call()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"ipmi {what}", daemon=True)
    thread.start()
    thread.join(deadline.remaining())
    if thread.is_alive():
        raise FenceError(TIMEOUT, f"{what} did not finish within the time left")
    if "error" in box:
        raise box["error"]
    return box["result"]


def import_pyghmi_session() -> object:
    """pyghmi's session module, its AES-CBC done by libcrypto directly when that works (see hamail.agents.fence_ipmi.aes).

    pyghmi calls cryptography's default_backend() while its module is imported, only to hand the result to
    Cipher(); the backend's import is most of fence_ipmi's run time. So the import runs with default_backend
    answering None, then the module's Cipher is replaced by hamail.agents.fence_ipmi.aes's. If pyghmi does not have that shape
    (another version), or HAMAIL_IPMI_AES=cryptography, or libcrypto is unusable, it is imported as it is.
    """
    import os
    import sys
    name = "pyghmi.ipmi.private.session"
    if name in sys.modules:
        return sys.modules[name]
    libcrypto = None
    if os.environ.get("HAMAIL_IPMI_AES") != "cryptography":
        from hamail.agents.fence_ipmi.aes import CbcCipher, open_libcrypto
        libcrypto = open_libcrypto()
    if libcrypto is not None:
        from cryptography.hazmat import backends
        real = backends.default_backend
        backends.default_backend = _no_backend
        try:
            from pyghmi.ipmi.private import session
        finally:
            backends.default_backend = real
        if _patchable(session):
            session.Cipher = CbcCipher(libcrypto)
            return session
        # Another shape: forget this import (it may hold a None backend) and import pyghmi's module afresh.
        del sys.modules[name]
        import importlib
        return importlib.import_module(name)
    from pyghmi.ipmi.private import session
    return session


def _no_backend() -> None:
    """default_backend() while pyghmi's session module is imported (it only passes it on to Cipher)."""
    return None


def _patchable(session) -> bool:
    """Whether pyghmi's session module uses cryptography only through its module-level Cipher name."""
    import cryptography.hazmat.primitives.ciphers as ciphers
    return (getattr(session, "Cipher", None) is ciphers.Cipher
            and getattr(session, "default_backend", None) is _no_backend
            and getattr(session.Session, "_crypto_backend", object()) is None)


def _session_class(cipher: int | None) -> type:
    """pyghmi's Session, restricted to one cipher suite when asked (3: SHA1 only, 17: SHA256 only)."""
    pyghmi_session = import_pyghmi_session()

    class Session(pyghmi_session.Session):
        """A Session that proposes only the configured suite (pyghmi never proposes suite 0)."""

        def _open_rmcpplus_request(self) -> None:
            if cipher == 3:
                self.attemptedhash = 1
            elif cipher == 17 and self.attemptedhash == 1:
                # pyghmi would fall back to suite 3; with cipher=17 that is an error.
                self.onlogon({"error": "No Cipher suite match with proposed security algorithms (17)"})
                return
            super()._open_rmcpplus_request()

        def awaitresponse(self, retry, *expected) -> None:
            """Wait for the answer in short slices of pyghmi's own event loop.

            pyghmi waits for "a packet from this BMC"; a BMC that answers within microseconds (loopback, a
            fast LAN) can have its answer taken by the IO thread before that wait is registered, and the
            wait then lasts a whole retry interval (0.5-1 s). wait_for_rsp first drains what was already
            received, handles pyghmi's retransmissions, and returns within 50 ms either way.
            """
            def pending() -> bool:
                """Whether the answer to the command just sent has not arrived yet."""
                response = self.lastresponse
                if response is None:
                    return True
                if expected:  # pyghmi 1.6 passes (netfn, command) of the answer it waits for
                    if (response.get("netfn"), response.get("command")) == (SEND_MESSAGE[0] + 1, SEND_MESSAGE[1]) \
                            and response.get("code"):
                        return False  # bridging to a target failed: the BMC's answer is final
                    return response.get("netfn") != expected[0] or response.get("command") != expected[1]
                return False

            while retry and pending() and (self.logged or getattr(self, "onlogpayload", None)):
                pyghmi_session.Session.wait_for_rsp(timeout=0.05)

    return Session


def _login(session_class: type, host: str, username: str, password: Secret, port: int, kg: bytes | None,
           privilege: int) -> object:
    """Log in asynchronously and drive pyghmi's event loop in 50 ms slices until the login completes.

    The synchronous constructor waits for a whole retry interval when a fast BMC's answer slips in before
    its wait is registered (see Session.awaitresponse below); an onlogon callback avoids that.
    """
    from pyghmi.exceptions import IpmiException
    outcome: dict[str, object] = {}
    session = session_class(host, username, password.reveal(), port=port, kg=kg, privlevel=privilege,
                            keepalive=False, onlogon=lambda result: outcome.update(result or {"success": True}))
    while not outcome:
        session.wait_for_rsp(timeout=0.05)
    if "error" in outcome:
        raise IpmiException(str(outcome["error"]))
    return session


class IpmiDevice(PowerDevice):
    """A logged-in RMCP+ session to one BMC: the PowerDevice of fence_ipmi."""

    __slots__ = ("session", "where", "deadline", "log", "bridge")

    def __init__(self, session, where: str, deadline: Deadline, log: FenceLog, target: int | None = None) -> None:
        self.session = session
        self.where = where if target is None else f"{where} target {target:#04x}"
        self.deadline = deadline
        self.log = log
        # pyghmi wraps each request in Send Message to this IPMB address (channel 0), as ipmitool -t does.
        self.bridge = None if target is None else {"addr": target, "channel": 0}

    def _raw(self, netfn: int, command: int, data: tuple = ()) -> bytes:
        """One raw command, retrying transient completion codes with a short backoff; response data."""
        from pyghmi.exceptions import IpmiException
        delay = 0.05
        while True:
            try:
                response = _bounded(lambda: self.session.raw_command(netfn=netfn, command=command, data=data,
                                                                     bridge_request=self.bridge),
                                    self.deadline, f"IPMI command {netfn:#x}/{command:#x}")
            except IpmiException as exc:
                raise classify(str(exc), self.where) from None
            code = response.get("code", 0) if response else 0xFFFF
            if self.bridge and code and (response.get("netfn", 0) & ~1, response.get("command")) == SEND_MESSAGE:
                # The BMC could not deliver the request to the target: its own Send Message answer.
                text = f"0x{code:02X} ({BRIDGING.get(code) or COMPLETION.get(code, 'unknown completion code')})"
                if code in BRIDGING_TRANSIENT and self.deadline.remaining() > delay:
                    self.log.info("%s: bridging answered %s; retrying in %.2f s", self.where, text, delay)
                    self.deadline.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                raise FenceError(BMC, f"{self.where}: the BMC could not bridge the request: {text}")
            if response and "error" in response and not code:
                raise classify(str(response["error"]), self.where)
            if code == 0:
                return bytes(response.get("data", b""))
            if code == 0xD4:
                raise FenceError(PRIVILEGE, f"{self.where} answered {completion_text(code)}: "
                                 "raise privlvl or the user's privilege")
            if code in TRANSIENT and self.deadline.remaining() > delay:
                self.log.info("%s answered %s; retrying in %.2f s", self.where, completion_text(code), delay)
                self.deadline.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if code == 0xFFFF:
                raise FenceError(TIMEOUT, f"{self.where} stopped answering")
            raise FenceError(BMC, f"{self.where} answered {completion_text(code)}")

    def is_on(self) -> bool:
        """Get Chassis Status: bit 0 of the first byte is 'power is on'."""
        data = self._raw(0x00, 0x01)
        if not data:
            raise FenceError(BMC, f"{self.where} sent an empty chassis status")
        on = bool(data[0] & 0x01)
        self.log.debug("power is %s", "on" if on else "off")
        return on

    def control(self, operation: str) -> None:
        """Chassis Control: power down / up / cycle / hard reset."""
        self.log.info("chassis control %s", operation)
        self._raw(0x00, 0x02, (CONTROL[operation],))


class IpmiConnection:
    """Log in to the BMC on entering (bounded by login_timeout), give the device, always log out on leaving."""

    def __init__(self, opts: FenceOptions, deadline: Deadline, log: FenceLog) -> None:
        self.opts = opts
        self.deadline = deadline
        self.log = log
        self.session = None

    def __enter__(self) -> IpmiDevice:
        opts, deadline, log = self.opts, self.deadline, self.log
        host, port = opts.ip, opts.ipport
        where = f"BMC {host}:{port}"
        login_deadline = deadline.sub(opts.login_timeout)
        kg_status = preflight(host, port, login_deadline)
        kg = bytes.fromhex(opts.hexadecimal_kg.reveal().strip().removeprefix("0x")) if opts.hexadecimal_kg else None
        if kg_status and not kg:
            raise FenceError(AUTHENTICATION, f"{where} requires a Kg key: set hexadecimal_kg")
        password: Secret = opts.password or Secret("")
        session_class = _session_class(int(opts.cipher) if opts.cipher else None)
        from pyghmi.exceptions import IpmiException  # loaded with the session module above
        log.info("logging in to %s as %r at privilege %s", where, opts.username or "", opts.privlvl)
        try:
            self.session = _bounded(lambda: _login(session_class, host, opts.username or "", password, port, kg,
                                                   PRIVILEGES[opts.privlvl]),
                                    login_deadline, f"login to {where}")
        except IpmiException as exc:
            raise classify(str(exc), where) from None
        except FenceError as exc:
            if exc.kind == TIMEOUT:
                raise FenceError(TIMEOUT, f"login to {where} did not finish within {opts.login_timeout:g} s") \
                    from None
            raise
        return IpmiDevice(self.session, where, deadline, log, target_address(opts))

    def __exit__(self, *exc_info) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        try:
            # Close Session is sent without waiting for the answer, but pyghmi first waits for a command still
            # in flight (one abandoned at the deadline): bound that too.
            _bounded(session.logout, Deadline.after(0.5, self.deadline.clock), "logout")
        except Exception as exc:  # a failed logout must not hide the action's result
            self.log.debug("logout: %s", exc)


AGENT = FenceAgent(
    name="fence_ipmi",
    shortdesc="Fence agent for IPMI (pyghmi, RMCP+)",
    longdesc=LONGDESC,
    options=IPMI_OPTIONS,
    connect=IpmiConnection,
    check=check,
    vendor_url="https://www.intel.com/content/www/us/en/products/docs/servers/ipmi/ipmi-home.html",
)
