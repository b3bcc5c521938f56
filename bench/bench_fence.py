# SPDX-License-Identifier: GPL-2.0-or-later
"""Bench rows of fence_ipmi vs fence_ipmilan (lanplus), both against the same BMC on 127.0.0.1: hamail-vbmc,
and OpenIPMI's ipmi_sim (a BMC that is not ours).

Two kinds of rows. "defaults": both agents as users run them (fence_ipmilan's power_wait is 2 s, ours 0; against
ipmi_sim without cipher=, where ipmitool waits ~14 s per call), so off/reboot mostly time that sleep. "like for
like, power_wait=0": the same work on both sides: power_wait=0 (and cipher=3 against ipmi_sim) and the same
verification, which both agents do by themselves after every change: off = status, off, status polled until off;
reboot = that, then on, status polled until on (fencing.py's fence_action with method onoff, ours
hamail.fence.agent._reboot). After every run the bench checks at the BMC that the power commands really were
sent (off; off then on; none for status) and the final state, so no row times a run that did nothing."""

import os
import pathlib
import re
import secrets
import shutil
import socket
import subprocess
import tempfile

from harness import BenchFailure, Case, agent_argv, run_step
from hamail_lab.ipmisim import Account, IpmiSim

ROOT = pathlib.Path(__file__).resolve().parent.parent
OURS = agent_argv(ROOT / "fence" / "fence_ipmi")
UPSTREAM = agent_argv("/usr/sbin/fence_ipmilan")
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
# The power commands each action sends to the BMC and the state it leaves, as the BMC sees them.
EXPECTED = {"status": ([], None), "off": (["off"], "off"), "reboot": (["off", "on"], "on")}
LIKE_FOR_LIKE = {"power_wait": "0"}
VBMC_EVENT = re.compile(r" power (on|off) \(was (?:on|off)\)$")


class BenchBmc:
    """One hamail-vbmc in the foreground per case, a way to reset its power and the power commands it got."""

    def __init__(self) -> None:
        self.password = secrets.token_hex(8)
        self.proc = None
        self.work = self.log = None
        self.mark = 0
        # Chosen now so that every case's stdin can name it; bound when setup starts the vbmc.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]

    def start(self) -> None:
        """Start the vbmc on a free high port (no-op when running)."""
        if self.proc is not None:
            return
        self.work = work = tempfile.mkdtemp(prefix="hamail-bench-fence-")
        password_file = os.path.join(work, "password")
        with open(password_file, "w", encoding="ascii") as handle:
            handle.write(self.password)
        self.log = os.path.join(work, "log")
        self.proc = subprocess.Popen(
            [str(ROOT / "lab" / "hamail-vbmc"), "--foreground", "--address", "127.0.0.1",
             "--port", str(self.port), "--password-file", password_file, "--log-file", self.log],
            stdout=subprocess.PIPE, env=ENV, text=True)
        if not self.proc.stdout.readline().startswith("ready"):
            raise BenchFailure("hamail-vbmc did not start")

    def stop(self) -> None:
        """Stop the vbmc (by its pid) and remove its directory."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
        if self.work is not None:
            shutil.rmtree(self.work, ignore_errors=True)
            self.work = None

    def stdin(self, action: str, upstream: bool, **extra: str) -> str:
        """What pacemaker-fenced would send; fence_ipmilan needs lanplus=1 to speak RMCP+."""
        values = {"action": action, "ip": "127.0.0.1", "ipport": str(self.port), "username": "admin",
                  "password": self.password, "nodename": "node1", **({"lanplus": "1"} if upstream else {}), **extra}
        return "".join(f"{key}={value}\n" for key, value in values.items())

    def events(self) -> list:
        """The power commands the vbmc carried out so far ('on'/'off'), from its log."""
        with open(self.log, encoding="utf-8") as handle:
            return [m.group(1) for m in map(VBMC_EVENT.search, handle.read().splitlines()) if m]

    def power_on(self, _side: str = "") -> None:
        """Put the simulated machine back on before a timed run (not timed), then remember where its log is."""
        run_step(OURS, ENV, stdin=self.stdin("on", False), what="power on (action=on on stdin) before the run")
        self.mark = len(self.events())

    def checker(self, action: str):
        """An after_each: exactly the action's power commands reached the vbmc during the run."""
        def check(side: str) -> None:
            got, (wanted, _) = self.events()[self.mark:], EXPECTED[action]
            if got != wanted:
                raise BenchFailure(f"{side} {action}: hamail-vbmc carried out {got or 'no power command'}, "
                                   f"expected {wanted or 'none'}")
        return check


class BenchSim:
    """One ipmi_sim for one row, started by setup and stopped (its directory removed) by teardown."""

    def __init__(self) -> None:
        self.work = tempfile.mkdtemp(prefix="hamail-bench-ipmisim-")
        self.sim = IpmiSim(self.work, (Account("admin", secrets.token_hex(8)),))
        self.mark = 0

    def stop(self) -> None:
        """Stop ipmi_sim and remove its directory."""
        self.sim.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def stdin(self, action: str, upstream: bool, **extra: str) -> str:
        """What pacemaker-fenced would send; without extra, no cipher=, as most configurations have it."""
        return self.sim.stdin(action, **({"lanplus": "1"} if upstream else {}), **extra)

    def power_on(self, _side: str = "") -> None:
        """The machine back on before a timed run (not timed, not through IPMI)."""
        self.sim.set_power(True)
        self.mark = len(self.sim.commands())

    def checker(self, action: str):
        """An after_each: exactly the action's power commands reached the chassis, and the final state is right."""
        def check(side: str) -> None:
            got = [line.removeprefix("set power ") for line in self.sim.commands()[self.mark:]]
            wanted, final = EXPECTED[action]
            wanted_codes = ["0" if w == "off" else "1" for w in wanted]
            if got != wanted_codes or (final and self.sim.power() != final):
                raise BenchFailure(f"{side} {action}: ipmi_sim's chassis got power {got or 'nothing'} and is "
                                   f"{self.sim.power()}, expected power {wanted_codes or 'nothing'} ending {final}")
        return check


def cases() -> list:
    """status, off (verified) and reboot: fence_ipmi vs fence_ipmilan, against ipmi_sim and hamail-vbmc,
    with each side's defaults and like for like (power_wait=0, same verification)."""
    bmc = BenchBmc()

    def on_sim(action, label, repeat, **extra):
        sim = BenchSim()
        return Case("fence_ipmi", f"{action}, ipmi_sim, {label}", OURS, UPSTREAM, env_ours=ENV, env_upstream=ENV,
                    stdin_ours=sim.stdin(action, False, **extra), stdin_upstream=sim.stdin(action, True, **extra),
                    setup=sim.sim.start, teardown=sim.stop, before_each=sim.power_on,
                    after_each=sim.checker(action), repeat=repeat)

    def on_vbmc(action, label, repeat, target=None, **extra):
        return Case("fence_ipmi", f"{action}, hamail-vbmc, {label}", OURS, UPSTREAM, env_ours=ENV,
                    env_upstream=ENV, stdin_ours=bmc.stdin(action, False, **extra),
                    stdin_upstream=bmc.stdin(action, True, **extra), setup=bmc.start, teardown=bmc.stop,
                    before_each=bmc.power_on, after_each=bmc.checker(action), repeat=repeat, target=target)

    like = "like for like, power_wait=0"
    # fence_ipmilan takes ~14 s per ipmitool call against ipmi_sim without cipher=: few repeats.
    return [
        on_sim("status", "defaults (no cipher=)", 3),
        on_sim("off", "defaults (no cipher=; upstream power_wait=2)", 3),
        on_sim("status", "like for like (cipher=3)", 10, cipher="3"),
        on_sim("off", f"{like}, cipher=3, both verify off", 10, cipher="3", **LIKE_FOR_LIKE),
        on_sim("reboot", f"{like}, cipher=3, both verify off then on", 8, cipher="3", **LIKE_FOR_LIKE),
        on_vbmc("status", "defaults (lanplus)", 20, target=0.7),
        on_vbmc("off", "defaults (lanplus; upstream power_wait=2)", 10, target=0.25),
        on_vbmc("reboot", "defaults (lanplus; upstream power_wait=2)", 8, target=0.25),
        on_vbmc("off", f"{like}, both verify off", 10, **LIKE_FOR_LIKE),
        on_vbmc("reboot", f"{like}, both verify off then on", 8, **LIKE_FOR_LIKE),
    ]
