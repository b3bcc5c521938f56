# SPDX-License-Identifier: GPL-2.0-or-later
"""fence_ipmi against OpenIPMI's ipmi_sim: a BMC implementation that is not ours (suite 3 only, no suite 17).

Every test checks what the BMC itself saw: the power of each machine and the power lines its chassis-control
program set (hamail_lab.ipmisim), and the Chassis Control requests it received, decoded from its own message
trace (a power cycle is one request, 'cycle', even though ipmi_sim carries it out as power 0, then 1).
"""

import re
import subprocess

import pytest

from fence_support import CLEAN_ENV, pyghmi_sources, run_fence, timed
from hamail_lab.ipmisim import Account, IpmiSim

ADMIN_PASSWORD = "Sim-Pw-4tq8-Secret"
OPERATOR_PASSWORD = "Op-Pw-0bv3"
VIEWER_PASSWORD = "View-Pw-9ku1"
SATELLITE = 0x82  # a controller on the BMC's primary IPMB with a machine of its own (a blade, say)
OFF, ON, CYCLE = ["set power 0"], ["set power 1"], ["set power 0", "set power 1"]  # chassis-control lines

CONTROL = {0: "off", 1: "on", 2: "cycle", 3: "reset", 4: "diag", 5: "soft-off"}  # Chassis Control's byte
# One request in ipmi_sim's message trace (-d -d): its header, then the data bytes (if any) on the next line.
TRACED = re.compile(r"Receive message:\n channel=\d+ netfn=(0x[0-9a-f]+) cmd=(0x[0-9a-f]+) rs_addr=(0x[0-9a-f]+)"
                    r"[^\n]*\n rq_lun=[^\n]*\n(?:((?: [0-9a-f]{2})+)$)?", re.M)


class RecordingSim(IpmiSim):
    """ipmi_sim with its message trace in the work directory: every request it received, after decryption."""

    _trace = None

    def start(self) -> None:
        """Start ipmi_sim tracing messages, and wait until it answers."""
        self._trace = open(self.work / "ipmi_sim.trace", "w")
        # The trace is printed on ipmi_sim's console, which -n (no console) would silence and which stops
        # ipmi_sim at end of input: its stdin is a pipe nobody writes to.
        self.proc = subprocess.Popen(
            ["ipmi_sim", "-c", str(self._config), "-f", str(self._commands), "-s", str(self.work / "state"),
             "-d", "-d"], stdin=subprocess.PIPE, stdout=self._trace, stderr=subprocess.STDOUT, cwd=self.work)
        self.wait_ready()

    def stop(self) -> None:
        """Stop it (by its own pid) and close the pipe and the trace."""
        proc = self.proc
        super().stop()
        if proc is not None:
            proc.stdin.close()
        if self._trace is not None:
            self._trace.close()

    def requests(self, address: int = 0x20) -> list[str]:
        """The Chassis Control operations ('off', 'on', 'cycle', ...) addressed to that controller so far:
        sent to the BMC itself, or bridged through its Send Message (an IPMB frame to the satellite)."""
        self._trace.flush()
        operations = []
        # The console ends its lines with \n\r and blank lines: one line per line, as TRACED expects.
        text = (self.work / "ipmi_sim.trace").read_text(errors="replace").replace("\r", "\n")
        trace = "\n".join(line for line in text.split("\n") if line.strip())
        for netfn, cmd, rs_addr, data in TRACED.findall(trace):
            data = bytes.fromhex(data)
            if (int(netfn, 16), int(cmd, 16)) == (0x00, 0x02) and int(rs_addr, 16) == address:
                operations.append(CONTROL[data[0] & 0x0F])
            elif (int(netfn, 16), int(cmd, 16)) == (0x06, 0x34):
                # channel, then the frame: rsSA, netFn/rsLUN, checksum, rqSA, rqSeq/rqLUN, cmd, data, checksum
                frame = data[1:]
                if frame[0] == address and (frame[1] >> 2, frame[5]) == (0x00, 0x02):
                    operations.append(CONTROL[frame[6] & 0x0F])
        return operations


@pytest.fixture
def sim(tmp_path):
    """A running ipmi_sim (accounts admin, oper, viewer), stopped afterwards."""
    bmc = RecordingSim(tmp_path, (Account("admin", ADMIN_PASSWORD, "admin"),
                                  Account("oper", OPERATOR_PASSWORD, "operator"),
                                  Account("viewer", VIEWER_PASSWORD, "user")), satellites=(SATELLITE,))
    try:
        bmc.start()
        yield bmc
    finally:
        bmc.stop()


def fence(sim: IpmiSim, action: str, env=None, **extra: str) -> subprocess.CompletedProcess:
    """fence_ipmi with key=value lines on stdin, as pacemaker-fenced runs it."""
    return run_fence(stdin=sim.stdin(action, **extra), env=env)


def ok(result: subprocess.CompletedProcess, stdout: str) -> None:
    """A successful run that printed exactly this."""
    assert (result.returncode, result.stdout) == (0, stdout), result.stderr


def error_line(result: subprocess.CompletedProcess, kind: str) -> str:
    """The one error line of a failed run, checked to be of that kind."""
    assert result.returncode == 1 and result.stdout == "", result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"fence_ipmi: error: {kind}: "), result.stderr
    return lines[0]


def test_every_action_changes_the_chassis_as_the_bmc_sees_it(sim):
    ok(fence(sim, "status"), "Status: ON\n")
    ok(fence(sim, "monitor"), "")
    assert sim.requests() == []
    ok(fence(sim, "off"), "Success: Powered OFF\n")
    assert (sim.power(), sim.requests(), sim.commands()) == ("off", ["off"], OFF)
    result = fence(sim, "status")
    assert (result.returncode, result.stdout) == (2, "Status: OFF\n"), result.stderr
    ok(fence(sim, "off"), "Success: Powered OFF\n")  # already off: verified, nothing sent
    assert (sim.requests(), sim.commands()) == (["off"], OFF)
    ok(fence(sim, "on"), "Success: Powered ON\n")
    assert (sim.power(), sim.requests(), sim.commands()) == ("on", ["off", "on"], OFF + ON)
    ok(fence(sim, "reboot"), "Success: Rebooted\n")  # method=onoff, the default: off, verified, then on
    assert (sim.power(), sim.requests(), sim.commands()) == ("on", ["off", "on", "off", "on"], 2 * (OFF + ON))


@pytest.mark.parametrize("method,requests", [("onoff", ["off", "on"]), ("cycle", ["cycle"])])
def test_reboot_of_a_running_machine(sim, method, requests):
    """onoff is two requests; cycle is one Chassis Control 'power cycle', which the BMC carries out itself."""
    ok(fence(sim, "reboot", method=method), "Success: Rebooted\n")
    assert (sim.power(), sim.requests(), sim.commands()) == ("on", requests, CYCLE)


@pytest.mark.parametrize("method", ["onoff", "cycle"])
def test_reboot_of_a_machine_that_is_off(sim, method):
    """Either method powers an off machine on with one 'on' (a cycle would be refused there: #596)."""
    sim.set_power(False)
    ok(fence(sim, "reboot", method=method), "Success: Rebooted\n")
    assert (sim.power(), sim.requests(), sim.commands()) == ("on", ["on"], ON)


def test_suite_17_is_absent_there_and_the_default_falls_back_to_3(sim):
    assert "cipher suite" in error_line(fence(sim, "status", cipher="17"), "authentication")
    # fence_ipmilan without cipher= waits ~14 s per call on this BMC (it drops Get Channel Cipher Suites).
    result, seconds = timed(fence, sim, "status")
    ok(result, "Status: ON\n")
    assert seconds < 5
    ok(fence(sim, "status", cipher="3"), "Status: ON\n")
    # Suite 0 (no authentication) is accepted by ipmi_sim with any password: never offered.
    assert "cipher" in error_line(fence(sim, "off", cipher="0"), "configuration")
    assert (sim.power(), sim.requests(), sim.commands()) == ("on", [], [])


def test_wrong_password_unknown_user_and_privilege(sim):
    assert "wrong password" in error_line(fence(sim, "off", password="not-the-password"), "authentication")
    error_line(fence(sim, "off", username="nobody"), "authentication")
    assert sim.requests() == []  # no session: nothing reached the BMC's command handler
    # A user-level account can read the power state but Chassis Control needs operator: refused, said so.
    viewer = {"username": "viewer", "password": VIEWER_PASSWORD}
    ok(fence(sim, "status", privlvl="user", **viewer), "Status: ON\n")
    assert "0xD4" in error_line(fence(sim, "off", privlvl="user", **viewer), "privilege")
    assert (sim.power(), sim.commands()) == ("on", [])
    # ipmi_sim grants whatever level is asked, above the account's limit (ipmitool -L ADMINISTRATOR gets
    # the same): a strict BMC's refusal at login is tested against hamail-vbmc. Here an operator account
    # fences with the default privlvl and with privlvl=operator, verified on the chassis.
    ok(fence(sim, "off", username="oper", password=OPERATOR_PASSWORD), "Success: Powered OFF\n")
    assert (sim.power(), sim.commands()) == ("off", OFF)
    ok(fence(sim, "on", username="oper", password=OPERATOR_PASSWORD, privlvl="operator"), "Success: Powered ON\n")
    assert (sim.power(), sim.commands()) == ("on", OFF + ON)


def test_same_answers_as_fence_ipmilan_and_ipmitool(sim):
    env = dict(CLEAN_ENV, IPMI_PASSWORD=ADMIN_PASSWORD)
    ipmitool = ["ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", str(sim.port), "-U", "admin",
                "-E", "chassis", "power", "status"]
    for on, code, text in ((True, 0, "ON"), (False, 2, "OFF")):
        sim.set_power(on)
        ours = fence(sim, "status")
        theirs = subprocess.run(["fence_ipmilan"], input=sim.stdin("status", lanplus="1", cipher="3"),
                                capture_output=True, text=True, env=CLEAN_ENV, timeout=60)
        tool = subprocess.run(ipmitool, capture_output=True, text=True, env=env, timeout=60)
        assert (ours.returncode, ours.stdout) == (code, f"Status: {text}\n"), ours.stderr
        assert (theirs.returncode, theirs.stdout) == (code, f"Status: {text}\n"), theirs.stderr
        assert (tool.returncode, tool.stdout.strip()) == (0, f"Chassis Power is {text.lower()}"), tool.stderr


def test_target_bridges_to_the_controller_behind_the_bmc(sim):
    """target= reaches the satellite's machine through Send Message; the BMC's own machine is left alone."""
    for target in ("0x82", "130"):
        ok(fence(sim, "status", target=target), "Status: ON\n")
    ok(fence(sim, "off", target="0x82"), "Success: Powered OFF\n")
    assert (sim.power(SATELLITE), sim.power()) == ("off", "on")
    result = fence(sim, "status", target="0x82")
    assert (result.returncode, result.stdout) == (2, "Status: OFF\n"), result.stderr
    ok(fence(sim, "reboot", target="0x82", method="cycle"), "Success: Rebooted\n")  # off: only 'on'
    ok(fence(sim, "reboot", target="0x82", method="cycle"), "Success: Rebooted\n")  # on: one 'cycle'
    ok(fence(sim, "reboot", target="0x82"), "Success: Rebooted\n")
    assert (sim.power(SATELLITE), sim.power()) == ("on", "on")
    assert sim.requests(SATELLITE) == ["off", "on", "cycle", "off", "on"]
    assert sim.commands(SATELLITE) == OFF + ON + CYCLE + OFF + ON
    assert (sim.requests(), sim.commands()) == ([], [])
    # ipmitool -t and fence_ipmilan target= see the same machine.
    sim.set_power(False, SATELLITE)
    tool = subprocess.run(["ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", str(sim.port), "-U",
                           "admin", "-E", "-t", "0x82", "chassis", "power", "status"], capture_output=True, text=True,
                          env=dict(CLEAN_ENV, IPMI_PASSWORD=ADMIN_PASSWORD), timeout=60)
    assert (tool.returncode, tool.stdout.strip()) == (0, "Chassis Power is off"), tool.stderr
    theirs = subprocess.run(["fence_ipmilan"], input=sim.stdin("status", lanplus="1", cipher="3", target="0x82"),
                            capture_output=True, text=True, env=CLEAN_ENV, timeout=60)
    ours = fence(sim, "status", target="0x82")
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (2, "Status: OFF\n")


def test_target_that_nobody_answers(sim):
    result, seconds = timed(fence, sim, "off", target="0x40")
    line = error_line(result, "bmc")
    assert "target 0x40" in line and "0x83" in line and "could not bridge" in line
    assert seconds < 5
    assert (sim.power(), sim.power(SATELLITE), sim.commands(), sim.commands(SATELLITE)) == ("on", "on", [], [])


def test_with_another_pyghmi(sim, other_pyghmi):
    """Power, cycle, bridging and a failed bridge with PyPI's pyghmi first on the path, the one really loaded."""
    env = {"PYTHONPATH": other_pyghmi}
    result, sources = pyghmi_sources(sim.stdin("status"), env)
    assert (result.returncode, result.stdout) == (0, "Status: ON\n"), result.stderr[-2000:]
    assert sources == {other_pyghmi}
    ok(fence(sim, "off", env), "Success: Powered OFF\n")
    ok(fence(sim, "reboot", env, method="cycle"), "Success: Rebooted\n")  # off: only 'on'
    ok(fence(sim, "reboot", env, method="cycle"), "Success: Rebooted\n")  # on: one 'cycle'
    assert (sim.power(), sim.requests(), sim.commands()) == ("on", ["off", "on", "cycle"], OFF + ON + CYCLE)
    ok(fence(sim, "off", env, target="0x82"), "Success: Powered OFF\n")
    assert (sim.power(SATELLITE), sim.requests(SATELLITE)) == ("off", ["off"])
    result = fence(sim, "status", env, target="0x82")
    assert (result.returncode, result.stdout) == (2, "Status: OFF\n"), result.stderr
    result, seconds = timed(fence, sim, "status", env, target="0x40")
    assert "could not bridge" in error_line(result, "bmc") and seconds < 5


def test_diag_sends_the_diagnostic_interrupt_which_ipmi_sim_refuses(sim):
    """diag is Chassis Control 4 (pulse diagnostic interrupt), as pyghmi's set_power('diag') and ipmitool's
    'chassis power diag' send it. ipmi_sim does not implement it and answers 0xCC: the one error line says so,
    and nothing else was done to the machine."""
    line = error_line(fence(sim, "diag"), "bmc")
    assert "0xCC" in line and "diagnostic interrupt" in line and "does not offer it" in line
    assert (sim.power(), sim.requests(), sim.commands()) == ("on", ["diag"], [])
    # Bridged to the satellite: the same request reaches that controller, the BMC's own machine is left alone.
    assert "diagnostic interrupt" in error_line(fence(sim, "diag", target="0x82"), "bmc")
    assert (sim.requests(SATELLITE), sim.requests()) == (["diag"], ["diag"])
    # A machine that is off has nothing to interrupt: no request, success (as a fencing action, it is off).
    sim.set_power(False)
    result = fence(sim, "diag")
    assert (result.returncode, result.stdout) == (0, "Success: Already OFF\n"), result.stderr
    assert "no diagnostic interrupt sent" in result.stderr
    assert (sim.power(), sim.requests(), sim.commands()) == ("off", ["diag"], [])
    # ipmitool sends the same request and gets the same refusal.
    tool = subprocess.run(["ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", str(sim.port), "-U",
                           "admin", "-E", "chassis", "power", "diag"], capture_output=True, text=True,
                          env=dict(CLEAN_ENV, IPMI_PASSWORD=ADMIN_PASSWORD), timeout=60)
    assert tool.returncode == 1 and "Invalid data field in request" in tool.stderr, tool.stderr
    assert sim.requests() == ["diag", "diag"]
