"""fence_ipmi against OpenIPMI's ipmi_sim: a BMC implementation that is not ours (suite 3 only, no suite 17).

Every test checks the machine's power as the BMC itself sees it (hamail_lab.ipmisim), not what fence_ipmi
printed.
"""

import subprocess

import pytest

from fence_support import CLEAN_ENV, OTHER_PYGHMI, WITH_OTHER_PYGHMI, run_fence, timed
from hamail_lab.ipmisim import Account, IpmiSim

ADMIN_PASSWORD = "Sim-Pw-4tq8-Secret"
OPERATOR_PASSWORD = "Op-Pw-0bv3"
VIEWER_PASSWORD = "View-Pw-9ku1"
SATELLITE = 0x82  # a controller on the BMC's primary IPMB with a machine of its own (a blade, say)

@pytest.fixture
def sim(tmp_path):
    """A running ipmi_sim (accounts admin, oper, viewer), stopped afterwards."""
    bmc = IpmiSim(tmp_path, (Account("admin", ADMIN_PASSWORD, "admin"), Account("oper", OPERATOR_PASSWORD, "operator"),
                             Account("viewer", VIEWER_PASSWORD, "user")), satellites=(SATELLITE,))
    try:
        bmc.start()
        yield bmc
    finally:
        bmc.stop()


def fence(sim: IpmiSim, action: str, **extra: str) -> subprocess.CompletedProcess:
    """fence_ipmi with key=value lines on stdin, as pacemaker-fenced runs it."""
    return run_fence(stdin=sim.stdin(action, **extra))


def error_line(result: subprocess.CompletedProcess, kind: str) -> str:
    """The one error line of a failed run, checked to be of that kind."""
    assert result.returncode == 1 and result.stdout == "", result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"fence_ipmi: error: {kind}: "), result.stderr
    return lines[0]


def test_every_action_changes_the_chassis_as_the_bmc_sees_it(sim):
    result = fence(sim, "status")
    assert (result.returncode, result.stdout) == (0, "Status: ON\n")
    assert fence(sim, "monitor").returncode == 0
    assert fence(sim, "off").stdout == "Success: Powered OFF\n" and sim.power() == "off"
    assert (fence(sim, "status").returncode, sim.power()) == (2, "off")
    assert fence(sim, "off").returncode == 0 and sim.commands() == ["set power 0"]  # already off: nothing sent
    assert fence(sim, "on").stdout == "Success: Powered ON\n" and sim.power() == "on"
    assert fence(sim, "reboot").stdout == "Success: Rebooted\n" and sim.power() == "on"
    assert sim.commands() == ["set power 0", "set power 1", "set power 0", "set power 1"]


def test_reboot_of_a_machine_that_is_off(sim):
    for method in ("onoff", "cycle"):
        sim.set_power(False)
        result = fence(sim, "reboot", method=method)
        assert (result.returncode, result.stdout, sim.power()) == (0, "Success: Rebooted\n", "on"), method


def test_cycle_of_a_running_machine_goes_through_the_bmc(sim):
    result = fence(sim, "reboot", method="cycle")
    assert (result.returncode, sim.power()) == (0, "on")
    assert sim.commands(), "the BMC was asked to cycle the chassis"


def test_suite_17_is_absent_there_and_the_default_falls_back_to_3(sim):
    assert "cipher suite" in error_line(fence(sim, "status", cipher="17"), "authentication")
    # fence_ipmilan without cipher= waits ~14 s per call on this BMC (it drops Get Channel Cipher Suites).
    result, seconds = timed(fence, sim, "status")
    assert result.returncode == 0 and seconds < 5
    assert fence(sim, "status", cipher="3").returncode == 0
    # Suite 0 (no authentication) is accepted by ipmi_sim with any password: never offered.
    error_line(fence(sim, "off", cipher="0"), "configuration")
    assert sim.power() == "on" and sim.commands() == []


def test_wrong_password_unknown_user_and_privilege(sim):
    assert "wrong password" in error_line(fence(sim, "off", password="not-the-password"), "authentication")
    error_line(fence(sim, "off", username="nobody"), "authentication")
    # A user-level account can read the power state but Chassis Control needs operator: refused, said so.
    viewer = {"username": "viewer", "password": VIEWER_PASSWORD}
    assert fence(sim, "status", privlvl="user", **viewer).returncode == 0
    assert "0xD4" in error_line(fence(sim, "off", privlvl="user", **viewer), "privilege")
    assert sim.power() == "on" and sim.commands() == []
    # ipmi_sim grants whatever level is asked, above the account's limit (ipmitool -L ADMINISTRATOR gets
    # the same): a strict BMC's refusal at login is tested against hamail-vbmc. Here an operator account
    # fences with the default privlvl and with privlvl=operator, verified on the chassis.
    result = fence(sim, "off", username="oper", password=OPERATOR_PASSWORD)
    assert result.returncode == 0 and sim.power() == "off"
    result = fence(sim, "on", username="oper", password=OPERATOR_PASSWORD, privlvl="operator")
    assert result.returncode == 0 and sim.power() == "on"


def test_same_answers_as_fence_ipmilan_and_ipmitool(sim):
    env = dict(CLEAN_ENV, IPMI_PASSWORD=ADMIN_PASSWORD)
    ipmitool = ["ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", str(sim.port), "-U", "admin",
                "-E", "chassis", "power", "status"]
    for on in (True, False):
        sim.set_power(on)
        ours = fence(sim, "status")
        theirs = subprocess.run(["fence_ipmilan"], input=sim.stdin("status", lanplus="1", cipher="3"),
                                capture_output=True, text=True, env=CLEAN_ENV, timeout=60)
        tool = subprocess.run(ipmitool, capture_output=True, text=True, env=env, timeout=60)
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), theirs.stderr
        assert tool.stdout.strip() == f"Chassis Power is {'on' if on else 'off'}"


def test_target_bridges_to_the_controller_behind_the_bmc(sim):
    """target= reaches the satellite's machine through Send Message; the BMC's own machine is left alone."""
    for target in ("0x82", "130"):
        assert fence(sim, "status", target=target).stdout == "Status: ON\n"
    assert fence(sim, "off", target="0x82").stdout == "Success: Powered OFF\n"
    assert (sim.power(SATELLITE), sim.power()) == ("off", "on")
    assert fence(sim, "status", target="0x82").returncode == 2
    assert fence(sim, "reboot", target="0x82", method="cycle").returncode == 0
    assert fence(sim, "reboot", target="0x82").returncode == 0
    assert (sim.power(SATELLITE), sim.power()) == ("on", "on")
    assert sim.commands(SATELLITE)[:3] == ["set power 0", "set power 1", "set power 0"] and sim.commands() == []
    # ipmitool -t and fence_ipmilan target= see the same machine.
    sim.set_power(False, SATELLITE)
    tool = subprocess.run(["ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", str(sim.port), "-U",
                           "admin", "-E", "-t", "0x82", "chassis", "power", "status"], capture_output=True, text=True,
                          env=dict(CLEAN_ENV, IPMI_PASSWORD=ADMIN_PASSWORD), timeout=60)
    assert tool.stdout.strip() == "Chassis Power is off"
    theirs = subprocess.run(["fence_ipmilan"], input=sim.stdin("status", lanplus="1", cipher="3", target="0x82"),
                            capture_output=True, text=True, env=CLEAN_ENV, timeout=60)
    ours = fence(sim, "status", target="0x82")
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (2, "Status: OFF\n")


def test_target_that_nobody_answers(sim):
    result, seconds = timed(fence, sim, "off", target="0x40")
    line = error_line(result, "bmc")
    assert "target 0x40" in line and "0x83" in line and "could not bridge" in line
    assert seconds < 5 and sim.power() == "on" and sim.power(SATELLITE) == "on"


@WITH_OTHER_PYGHMI
def test_with_another_pyghmi(sim):
    """Power, bridging and a failed bridge with PyPI's pyghmi first on the path."""
    env = {"PYTHONPATH": OTHER_PYGHMI}
    assert run_fence(stdin=sim.stdin("off"), env=env).returncode == 0 and sim.power() == "off"
    assert run_fence(stdin=sim.stdin("off", target="0x82"), env=env).returncode == 0
    assert sim.power(SATELLITE) == "off"
    assert run_fence(stdin=sim.stdin("status", target="0x82"), env=env).returncode == 2
    result, seconds = timed(run_fence, stdin=sim.stdin("status", target="0x40"), env=env)
    assert "could not bridge" in error_line(result, "bmc") and seconds < 5
