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


def make_agent(device: MemoryDevice, options=COMMON_OPTIONS) -> FenceAgent:
    """A minimal fence agent whose connection yields this device."""
    @contextlib.contextmanager
    def connect(opts, deadline, log):
        yield device

    return FenceAgent(name="fence_memory", shortdesc="In-memory power", longdesc="For tests.", options=options,
                      connect=connect)


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
