# SPDX-License-Identifier: GPL-2.0-or-later
"""OpenIPMI's ipmi_sim as a BMC for tests and benchmarks: an IPMI implementation that is not hamail's.

Its chassis_control program is a small script keeping the power line in a file, so a caller sees the
machine's power as the BMC itself does. ipmi_sim offers RMCP+ suite 3 (not 17) and drops Get Channel
Cipher Suites, which makes ipmitool without -C wait about 14 s per call.
"""

from __future__ import annotations

import pathlib
import subprocess
import time

__all__ = ["IpmiSim", "Account", "free_udp_port"]

CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
LEVELS = ("callback", "user", "operator", "admin")

CHASSIS_CONTROL = """#!/bin/sh
# ipmi_sim chassis_control: "<mc> get power" prints power:0|1; "<mc> set power 0|1 [reset 1 ...]".
state="$(dirname "$0")/power-$1"
shift
op=$1
shift
case "$op" in
get) for parm in "$@"; do [ "$parm" = power ] && echo "power:$(cat "$state")"; done ;;
set) while [ $# -ge 2 ]; do
        case "$1" in
        power) echo "$2" > "$state"; echo "set power $2" >> "$state.log" ;;
        reset|boot) echo "set $1 $2" >> "$state.log" ;;
        *) echo "unknown parameter $1"; exit 1 ;;
        esac
        shift 2
     done ;;
*) echo "unknown operation $op"; exit 1 ;;
esac
"""


class Account:
    """One BMC user: name, password and the highest privilege level (callback/user/operator/admin)."""

    __slots__ = ("name", "password", "level")

    def __init__(self, name: str, password: str, level: str = "admin") -> None:
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}")
        self.name, self.password, self.level = name, password, level


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing listens on right now."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class IpmiSim:
    """One ipmi_sim on 127.0.0.1:<free port> with these accounts (the first is the one wait_ready uses).

    The BMC (IPMB address 0x20) controls one machine; each satellite address adds a controller on the
    primary IPMB with a machine of its own, reached by bridging (ipmitool -t, fence_ipmi target=).
    """

    def __init__(self, work: pathlib.Path, accounts: tuple[Account, ...], satellites: tuple[int, ...] = ()) -> None:
        self.work = pathlib.Path(work)
        self.accounts = tuple(accounts)
        self.port = free_udp_port()
        work = self.work
        controllers = (0x20, *satellites)
        for address in controllers:
            self._power_file(address).write_text("1\n")
        script = work / "chassis-control"
        script.write_text(CHASSIS_CONTROL)
        script.chmod(0o700)
        (work / "state").mkdir()
        config = work / "lan.conf"
        users = [f'  user {number} true "{a.name}" "{a.password}" {a.level} 10 none md2 md5 straight'
                 for number, a in enumerate(self.accounts, start=2)]
        config.write_text("\n".join([
            'name "hamailsim"',
            "set_working_mc 0x20",
            "  startlan 1",
            f"    addr 127.0.0.1 {self.port}",
            "    priv_limit admin",
            "    allowed_auths_callback none md2 md5 straight",
            "    allowed_auths_user none md2 md5 straight",
            "    allowed_auths_operator none md2 md5 straight",
            "    allowed_auths_admin none md2 md5 straight",
            "    guid 6861616d61696c2d6970696d6973696d",
            "  endlan",
            f'  chassis_control "{script} 0x20"',
            '  user 1 false "" "" user 10 none md2 md5 straight',  # no anonymous login
            *users,
            *(f'set_working_mc {address:#04x}\n  chassis_control "{script} {address:#04x}"' for address in satellites),
        ]) + "\n")
        config.chmod(0o600)
        commands = work / "bmc.emu"
        # mc_add <address> <device id> ...: one controller each, the BMC first.
        commands.write_text("mc_setbmc 0x20\n" + "".join(
            f"mc_add {address:#04x} {number} no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n"
            f"mc_enable {address:#04x}\n" for number, address in enumerate(controllers)))
        self.proc: subprocess.Popen | None = None
        self._config, self._commands = config, commands

    def start(self) -> None:
        """Start ipmi_sim and wait until it answers."""
        # -n: no console on stdin/stdout; -s: its persistent state stays in the work directory.
        self.proc = subprocess.Popen(
            ["ipmi_sim", "-c", str(self._config), "-f", str(self._commands), "-s", str(self.work / "state"), "-n"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.work)
        self.wait_ready()

    def stop(self) -> None:
        """Stop it (by its own pid): TERM, then KILL after 10 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def _power_file(self, address: int) -> pathlib.Path:
        return self.work / f"power-{address:#04x}"

    def power(self, address: int = 0x20) -> str:
        """'on' or 'off' for the machine of that controller, as the chassis-control script holds it."""
        return "on" if self._power_file(address).read_text().strip() == "1" else "off"

    def set_power(self, on: bool, address: int = 0x20) -> None:
        """Put a machine in a state before a test step (not through IPMI)."""
        self._power_file(address).write_text("1\n" if on else "0\n")

    def commands(self, address: int = 0x20) -> list[str]:
        """The power commands that controller passed to its chassis so far."""
        log = self.work / f"power-{address:#04x}.log"
        return log.read_text().splitlines() if log.exists() else []

    def wait_ready(self) -> None:
        """Wait until it answers a status request (ipmitool, suite 3), at most 10 s."""
        end = time.monotonic() + 10
        while True:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError("ipmi_sim is not running")
            account = self.accounts[0]
            answer = subprocess.run(["ipmitool", "-I", "lanplus", "-C", "3", "-N", "1", "-R", "1", "-H", "127.0.0.1",
                                     "-p", str(self.port), "-U", account.name, "-E", "chassis", "power", "status"],
                                    env=dict(CLEAN_ENV, IPMI_PASSWORD=account.password), capture_output=True,
                                    text=True, timeout=10)
            if answer.returncode == 0:
                return
            if time.monotonic() > end:
                raise RuntimeError(f"ipmi_sim does not answer: {answer.stderr.strip()}")
            time.sleep(0.1)

    def stdin(self, action: str, **extra: str) -> str:
        """What pacemaker-fenced would send a fence agent for this BMC (first account)."""
        values = {"action": action, "ip": "127.0.0.1", "ipport": str(self.port), "username": self.accounts[0].name,
                  "password": self.accounts[0].password, "nodename": "node1", **extra}
        return "".join(f"{key}={value}\n" for key, value in values.items())
