# SPDX-License-Identifier: GPL-2.0-or-later
"""hamail.fence's power state machine for an agent other than fence_ipmi: run() in-process against an
in-memory PowerDevice, for an agent without the method option and for one that offers it."""

import contextlib
import io

import pytest

from hamail.fence.agent import FenceAgent, PowerDevice, run
from hamail.fence.exitcodes import FenceExit
from hamail.fence.options import COMMON_OPTIONS, METHOD_OPTION, UsageError
from hamail.system.clock import FakeClock


class MemoryDevice(PowerDevice):
    """A machine whose power follows each command at once; records the commands it was sent."""

    __slots__ = ("on", "commands")

    def __init__(self, on: bool) -> None:
        self.on = on
        self.commands = []

    def is_on(self) -> bool:
        """The simulated power state."""
        return self.on

    def control(self, operation: str) -> None:
        """Record the command and apply it (cycle ends on)."""
        self.commands.append(operation)
        self.on = operation != "off"


def make_agent(device: MemoryDevice, options=COMMON_OPTIONS, diag: bool = False) -> FenceAgent:
    """A minimal fence agent whose connection yields this device."""
    @contextlib.contextmanager
    def connect(opts, deadline, log):
        yield device

    return FenceAgent(name="fence_memory", shortdesc="In-memory power", longdesc="For tests.", options=options,
                      connect=connect, diag=diag)


def invoke(agent: FenceAgent, stdin: str = "", argv=()) -> tuple:
    """(exit code, stdout, stderr) of one in-process run."""
    out, err = io.StringIO(), io.StringIO()
    rc = run(agent, list(argv), io.StringIO(stdin) if not argv else None, out, err, clock=FakeClock())
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("on_before, commands", [(True, ["off", "on"]), (False, ["on"])])
def test_reboot_without_a_method_option_is_off_then_on(on_before, commands):
    device = MemoryDevice(on=on_before)
    assert invoke(make_agent(device), "action=reboot\nnodename=n1\n") == (FenceExit.SUCCESS, "Success: Rebooted\n", "")
    assert device.commands == commands and device.on


def test_off_on_status_monitor_without_a_method_option():
    device = MemoryDevice(on=True)
    agent = make_agent(device)
    assert invoke(agent, "action=status\n") == (FenceExit.SUCCESS, "Status: ON\n", "")
    assert invoke(agent, "action=off\n") == (FenceExit.SUCCESS, "Success: Powered OFF\n", "")
    assert invoke(agent, "action=status\n") == (FenceExit.STATUS_OFF, "Status: OFF\n", "")
    assert invoke(agent, "action=monitor\n") == (FenceExit.SUCCESS, "", "")
    assert invoke(agent, "action=off\n") == (FenceExit.SUCCESS, "Success: Powered OFF\n", "")  # already off
    assert invoke(agent, "action=on\n") == (FenceExit.SUCCESS, "Success: Powered ON\n", "")
    assert device.commands == ["off", "on"]
    assert invoke(agent, argv=["-o", "status"]) == (FenceExit.SUCCESS, "Status: ON\n", "")


def test_method_is_not_an_option_of_an_agent_that_does_not_offer_it():
    device = MemoryDevice(on=True)
    agent = make_agent(device)
    # From Pacemaker's stdin an unknown key is ignored: the reboot stays off then on.
    assert invoke(agent, "action=reboot\nmethod=cycle\n")[:2] == (FenceExit.SUCCESS, "Success: Rebooted\n")
    assert device.commands == ["off", "on"]
    rc, out, err = invoke(agent, argv=["-o", "reboot", "-m", "cycle"])
    assert (rc, out) == (FenceExit.ERROR, "") and err.startswith("fence_memory: error: configuration: ")
    assert len(err.splitlines()) == 1 and device.commands == ["off", "on"]
    with pytest.raises(KeyError):
        agent.option("method")
    assert not agent.offers("method")


@pytest.mark.parametrize("method, commands", [("cycle", ["cycle"]), ("onoff", ["off", "on"]), (None, ["off", "on"])])
def test_an_agent_offering_method_cycles_only_when_asked(method, commands):
    device = MemoryDevice(on=True)
    agent = make_agent(device, (METHOD_OPTION,) + COMMON_OPTIONS)
    assert agent.offers("method")
    stdin = "action=reboot\n" + (f"method={method}\n" if method else "")
    assert invoke(agent, stdin) == (FenceExit.SUCCESS, "Success: Rebooted\n", "")
    assert device.commands == commands and device.on


def test_cycle_of_a_machine_already_off_only_powers_it_on():
    device = MemoryDevice(on=False)
    agent = make_agent(device, (METHOD_OPTION,) + COMMON_OPTIONS)
    assert invoke(agent, "action=reboot\nmethod=cycle\n")[:2] == (FenceExit.SUCCESS, "Success: Rebooted\n")
    assert device.commands == ["on"]


def test_usage_error_is_a_fence_error_of_kind_configuration():
    assert UsageError("x").kind == "configuration"


def test_diag_sends_one_diagnostic_interrupt_to_a_running_machine():
    """The success path of diag (neither hamail-vbmc nor ipmi_sim implement the interrupt): one 'diag' command,
    no power change, no verification; a machine that is off is left alone and that is a success."""
    device = MemoryDevice(on=True)
    agent = make_agent(device, diag=True)
    assert invoke(agent, "action=diag\n") == (FenceExit.SUCCESS, "Success: Diagnostic interrupt sent\n", "")
    assert device.commands == ["diag"] and device.on
    device.on = False
    rc, out, err = invoke(agent, argv=["-o", "diag"])
    assert (rc, out) == (FenceExit.SUCCESS, "Success: Already OFF\n")
    assert "power is off: no diagnostic interrupt sent" in err and device.commands == ["diag"]
    assert "diag" in agent.actions()


def test_diag_of_an_agent_whose_device_cannot_send_it_is_a_configuration_error():
    device = MemoryDevice(on=True)
    agent = make_agent(device)
    rc, out, err = invoke(agent, "action=diag\n")
    assert (rc, out) == (FenceExit.ERROR, "")
    assert err == "fence_memory: error: configuration: action: diag is not offered: this agent's device cannot " \
                  "send a diagnostic interrupt\n"
    assert device.commands == [] and "diag" not in agent.actions()
    rc, out, err = invoke(agent, argv=["-o", "manpage"])
    actions = out[out.index(".SH ACTIONS"):out.index(".SH EXIT STATUS")]
    assert rc == FenceExit.SUCCESS and "\\fBoff\\fR" in actions and "diag" not in actions


def test_list_prints_a_notice_without_connecting():
    @contextlib.contextmanager
    def refuse(opts, deadline, log):
        raise AssertionError("list must not reach the device")
        yield  # pragma: no cover

    agent = make_agent(MemoryDevice(on=True)).replace(connect=refuse)
    for action in ("list", "list-status"):
        rc, out, err = invoke(agent, f"action={action}\n")
        assert (rc, err) == (FenceExit.SUCCESS, "") and out.startswith("NOTICE: fence_memory has no list")


def test_every_problem_is_reported_in_one_line():
    agent = make_agent(MemoryDevice(on=True))
    rc, out, err = invoke(agent, "action=off\ndelay=soon\npower_timeout=0\nretry_on=0\nverbose_level=x\n")
    assert (rc, out) == (FenceExit.ERROR, "")
    assert err == ("fence_memory: error: configuration: delay: 'soon' is not a duration (e.g. 30, 30s, 500ms, 5min); "
                   "retry_on: 0 is out of range 1..; verbose_level: 'x' is not an integer; "
                   "power_timeout must be more than 0\n")


def test_an_option_declared_twice_is_refused():
    with pytest.raises(ValueError):
        make_agent(MemoryDevice(on=True), COMMON_OPTIONS + (COMMON_OPTIONS[0],))
