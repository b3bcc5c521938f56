# SPDX-License-Identifier: GPL-2.0-or-later
"""hamail-vbmc's protocol engine without sockets: cipher negotiation and the login checks."""

import contextlib
import dataclasses
import io
import struct

from hamail.fence import agent as fencing
from hamail.agents.fence_ipmi.agent import AGENT
from hamail.secret import Secret
from hamail_vbmc import PowerModel, Vbmc, VbmcConfig

CONFIG = VbmcConfig(address="127.0.0.1", port=0, username="admin", password=Secret("pw"))


def open_session(vbmc: Vbmc, auth: int, integrity: int, confidentiality: int, console_sid: int = 7) -> bytes:
    """Send an RMCP+ Open Session Request and return the response payload."""
    payload = bytes([1, 4, 0, 0]) + struct.pack("<I", console_sid) + bytes(
        [0, 0, 0, 8, auth, 0, 0, 0, 1, 0, 0, 8, integrity, 0, 0, 0, 2, 0, 0, 8, confidentiality, 0, 0, 0])
    packet = b"\x06\x00\xff\x07\x06\x10" + struct.pack("<IIH", 0, 0, len(payload)) + payload
    answer = vbmc.handle(packet, ("127.0.0.1", 1))
    assert answer[5] == 0x11
    return answer[16:]


def test_suite_0_and_other_unsupported_suites_are_refused():
    vbmc = Vbmc(CONFIG, PowerModel(CONFIG))
    for algorithms in ((0, 0, 0), (1, 0, 0), (1, 1, 0), (3, 4, 0), (1, 4, 1)):
        assert open_session(vbmc, *algorithms)[1] == 0x11, algorithms  # no cipher suite match


def test_suites_17_and_3_are_accepted_and_echoed():
    vbmc = Vbmc(CONFIG, PowerModel(CONFIG))
    for algorithms in ((3, 4, 1), (1, 1, 1)):
        answer = open_session(vbmc, *algorithms)
        assert answer[1] == 0 and (answer[16], answer[24], answer[32]) == algorithms
    only3 = Vbmc(dataclasses.replace(CONFIG, suites=(3,)), PowerModel(CONFIG))
    assert open_session(only3, 3, 4, 1)[1] == 0x11


def test_rakp1_checks_the_name_and_the_role():
    config = dataclasses.replace(CONFIG, privilege=3)
    vbmc = Vbmc(config, PowerModel(config))
    for name, role, status in ((b"nobody", 0x14, 0x0D), (b"admin", 0x14, 0x0A), (b"admin", 0x13, 0x00)):
        answer = open_session(vbmc, 3, 4, 1)
        bmc_sid = struct.unpack("<I", answer[8:12])[0]
        rakp1 = bytes([2, 0, 0, 0]) + struct.pack("<I", bmc_sid) + b"r" * 16 + bytes([role, 0, 0, len(name)]) + name
        packet = b"\x06\x00\xff\x07\x06\x12" + struct.pack("<IIH", 0, 0, len(rakp1)) + rakp1
        assert vbmc.handle(packet, ("127.0.0.1", 1))[16 + 1] == status, (name, role)


def test_library_prints_do_not_reach_stdout():
    @contextlib.contextmanager
    def chatty(opts, deadline, log):
        class Device:
            def is_on(self):
                print("repr of some pyghmi exception")  # what pyghmi does in places
                return True

            def control(self, operation):
                print("more noise")
        yield Device()

    agent = AGENT.replace(connect=chatty)
    out, err = io.StringIO(), io.StringIO()
    assert fencing.run(agent, ["-o", "status", "-a", "127.0.0.1"], None, out, err) == 0
    assert out.getvalue() == "Status: ON\n" and "repr of some" in err.getvalue()
