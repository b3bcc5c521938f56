"""Bench rows of fence_ipmi vs fence_ipmilan (lanplus), both against the same BMC on 127.0.0.1: hamail-vbmc,
and OpenIPMI's ipmi_sim (a BMC that is not ours) as users configure it, without cipher=."""

import os
import pathlib
import secrets
import socket
import subprocess
import tempfile

from harness import Case
from hamail_lab.ipmisim import Account, IpmiSim

ROOT = pathlib.Path(__file__).resolve().parent.parent
OURS = [str(ROOT / "fence" / "fence_ipmi")]
UPSTREAM = ["/usr/sbin/fence_ipmilan"]
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


class BenchBmc:
    """One hamail-vbmc in the foreground for the whole fence bench, and a way to reset its power."""

    def __init__(self) -> None:
        self.password = secrets.token_hex(8)
        self.proc = None
        # Chosen now so that every case's stdin can name it; bound when setup starts the vbmc.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]

    def start(self) -> None:
        """Start the vbmc on a free high port (no-op when running)."""
        if self.proc is not None:
            return
        work = tempfile.mkdtemp(prefix="hamail-bench-fence-")
        password_file = os.path.join(work, "password")
        with open(password_file, "w", encoding="ascii") as handle:
            handle.write(self.password)
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(ROOT / "lab" / "hamail-vbmc"), "--foreground", "--address", "127.0.0.1",
             "--port", str(self.port), "--password-file", password_file, "--log-file", os.path.join(work, "log")],
            stdout=subprocess.PIPE, env=ENV, text=True)
        if not self.proc.stdout.readline().startswith("ready"):
            raise RuntimeError("hamail-vbmc did not start")

    def stop(self) -> None:
        """Stop the vbmc (by its pid)."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def stdin(self, action: str, upstream: bool) -> str:
        """What pacemaker-fenced would send; fence_ipmilan needs lanplus=1 to speak RMCP+."""
        lines = [f"action={action}", "ip=127.0.0.1", f"ipport={self.port}", "username=admin",
                 f"password={self.password}", "nodename=node1"]
        return "\n".join(lines + (["lanplus=1"] if upstream else [])) + "\n"

    def power_on(self, _side: str = "") -> None:
        """Put the simulated machine back on before a timed off/reboot (not timed)."""
        subprocess.run(OURS, input=self.stdin("on", False), text=True, env=ENV, check=True,
                       stdout=subprocess.DEVNULL)


class BenchSim:
    """One ipmi_sim for the rows against it, started by setup and stopped by teardown."""

    def __init__(self) -> None:
        self.sim = IpmiSim(tempfile.mkdtemp(prefix="hamail-bench-ipmisim-"), (Account("admin", secrets.token_hex(8)),))

    def stdin(self, action: str, upstream: bool) -> str:
        """What pacemaker-fenced would send; no cipher=, as most configurations have it."""
        return self.sim.stdin(action, **({"lanplus": "1"} if upstream else {}))

    def power_on(self, _side: str = "") -> None:
        """The machine back on before a timed off (not timed)."""
        self.sim.set_power(True)


def cases() -> list:
    """status, off (verified) and reboot: fence_ipmi vs fence_ipmilan, against hamail-vbmc and ipmi_sim."""
    bmc = BenchBmc()
    sim = BenchSim()
    # fence_ipmilan takes ~14 s per call against ipmi_sim without cipher=: few repeats.
    against_sim = [
        Case("fence_ipmi", f"{action} (ipmi_sim, no cipher=)", OURS, UPSTREAM, env_ours=ENV, env_upstream=ENV,
             stdin_ours=sim.stdin(action, False), stdin_upstream=sim.stdin(action, True),
             setup=sim.sim.start, teardown=sim.sim.stop, before_each=reset, repeat=3, expect_rc=0)
        for action, reset in (("status", None), ("off", sim.power_on))
    ]
    return against_sim + [
        Case("fence_ipmi", f"{action} (lanplus)", OURS, UPSTREAM, env_ours=ENV, env_upstream=ENV,
             stdin_ours=bmc.stdin(action, False), stdin_upstream=bmc.stdin(action, True),
             setup=bmc.start, teardown=bmc.stop, before_each=reset, repeat=repeat, target=target, expect_rc=0)
        for action, target, repeat, reset in (("status", 0.7, 20, None), ("off", 0.25, 10, bmc.power_on),
                                              ("reboot", 0.25, 8, bmc.power_on))
    ]
