# SPDX-License-Identifier: GPL-2.0-or-later
"""The one module that uses pyghmi: an RMCP+ session through pyghmi's session layer (no ipmitool, no pyghmi
Command), imported as it is, when a power action first needs it.

Everything fence_ipmi knows about pyghmi is here: the Session subclass that proposes only the configured
cipher suite and waits for answers in short slices of pyghmi's event loop, the asynchronous login, raw
commands and their answers, logout, and pyghmi's IpmiException, which leaves this module as a SessionError
holding pyghmi's message (hamail.agents.fence_ipmi.device.classify tells its kind). Calls here block for as
long as pyghmi retries: the device bounds each one with hamail.system.bounded.in_thread.

Works with Debian 12's pyghmi 1.5 and PyPI's 1.6 (whose awaitresponse is also told the answer it waits for).
"""

from __future__ import annotations

from hamail.secret import Secret

__all__ = ["SEND_MESSAGE", "SessionError", "Answer", "PyghmiSession"]

# Send Message (netfn App, command 0x34): the request bridging wraps around a command for an IPMB target.
SEND_MESSAGE = (0x06, 0x34)
# The code of an Answer that never came (pyghmi gave nothing back).
NO_ANSWER = 0xFFFF


class SessionError(Exception):
    """pyghmi reported a failure (its IpmiException, or an error instead of an answer): its message."""


class Answer:
    """The answer to one raw command: completion code, netfn and command of the answer, its data."""

    __slots__ = ("code", "netfn", "command", "data")

    def __init__(self, code: int, netfn: int = 0, command: int | None = None, data: bytes = b"") -> None:
        self.code = code
        self.netfn = netfn
        self.command = command
        self.data = data

    def __repr__(self) -> str:
        return f"Answer(code={self.code:#x}, netfn={self.netfn:#x}, command={self.command!r})"


def _session_class(cipher: int | None) -> type:
    """pyghmi's Session, restricted to one cipher suite when asked (3: SHA1 only, 17: SHA256 only)."""
    from pyghmi.ipmi.private import session as pyghmi_session

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


class PyghmiSession:
    """One RMCP+ session to a BMC through pyghmi: login, raw commands, logout (each call blocks)."""

    __slots__ = ("_class", "_session")

    def __init__(self, cipher: int | None) -> None:
        # pyghmi (and cryptography with it) is imported here, in the caller's thread, outside any bounded wait.
        self._class = _session_class(cipher)
        self._session = None

    def login(self, host: str, port: int, username: str, password: Secret, kg: bytes | None,
              privilege: int) -> None:
        """Log in asynchronously and drive pyghmi's event loop in 50 ms slices until the login completes.

        The synchronous constructor waits for a whole retry interval when a fast BMC's answer slips in before
        its wait is registered (see Session.awaitresponse above); an onlogon callback avoids that.
        """
        from pyghmi.exceptions import IpmiException
        outcome: dict[str, object] = {}
        try:
            session = self._class(host, username, password.reveal(), port=port, kg=kg, privlevel=privilege,
                                  keepalive=False, onlogon=lambda result: outcome.update(result or {"success": True}))
            while not outcome:
                session.wait_for_rsp(timeout=0.05)
        except IpmiException as exc:
            raise SessionError(str(exc)) from None
        if "error" in outcome:
            raise SessionError(str(outcome["error"]))
        self._session = session

    def raw_command(self, netfn: int, command: int, data: tuple = (), bridge: dict | None = None) -> Answer:
        """Send one raw command (wrapped in Send Message to bridge's IPMB address, if any) and give its answer."""
        from pyghmi.exceptions import IpmiException
        try:
            response = self._session.raw_command(netfn=netfn, command=command, data=data, bridge_request=bridge)
        except IpmiException as exc:
            raise SessionError(str(exc)) from None
        if not response:
            return Answer(NO_ANSWER)
        code = response.get("code", 0)
        if "error" in response and not code:
            raise SessionError(str(response["error"]))
        return Answer(code, response.get("netfn", 0), response.get("command"), bytes(response.get("data", b"")))

    def logout(self) -> None:
        """Close the session (if logged in); pyghmi first waits for a command still in flight."""
        session, self._session = self._session, None
        if session is not None:
            session.logout()
