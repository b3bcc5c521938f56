# SPDX-License-Identifier: GPL-2.0-or-later
"""Secrets never leave fence_ipmi or hamail-vbmc; ipmitool and fence_ipmilan agree with fence_ipmi; the daemon."""

import os
import pathlib
import subprocess
import threading
import time

import pytest

from fence_support import KG_HEX, PASSWORD, VBMC, CLEAN_ENV, free_udp_port, run_fence, stdin_for, wait_for


class CmdlineScanner:
    """Samples every /proc/*/cmdline and environ-free argv while it runs, collecting those that hold a needle."""

    def __init__(self, needles) -> None:
        self.needles = [n.encode() for n in needles]
        self.hits: list[str] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    cmdline = pathlib.Path(entry.path, "cmdline").read_bytes()
                except OSError:
                    continue
                if any(n in cmdline for n in self.needles):
                    self.hits.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
            self.samples += 1
            time.sleep(0.002)  # leave CPU to the processes being watched

    def __enter__(self) -> "CmdlineScanner":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def test_password_and_kg_never_in_argv_logs_or_output(vbmcs, tmp_path):
    vbmc = vbmcs.start(kg=KG_HEX)
    debug_file = tmp_path / "fence-debug.log"
    script = tmp_path / "password-script"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' '{PASSWORD}'\n")
    script.chmod(0o700)
    outputs = []
    # Each action's code as the run goes: the machine is on, then off twice, on twice, rebooted; list only prints
    # a notice; the diagnostic interrupt reaches the (running, rebooted) machine.
    codes = {"status": 0, "monitor": 0, "off": 0, "on": 0, "reboot": 0, "validate-all": 0, "metadata": 0, "list": 0,
             "manpage": 0, "diag": 0}
    with CmdlineScanner([PASSWORD, KG_HEX]) as scanner:
        for action, code in codes.items():
            for extra in ({}, {"verbose": "1", "debug_file": str(debug_file)}):
                result = run_fence(stdin=stdin_for(vbmc, action, hexadecimal_kg=KG_HEX, **extra))
                assert result.returncode == code, (action, extra, result.stderr)
                outputs += [result.stdout, result.stderr]
        # Failures print their reason: none may quote a secret.
        for bad in ({"password": "x" + PASSWORD[1:]}, {"hexadecimal_kg": "11" * 10}, {"privlvl": "callback"}):
            result = run_fence(stdin=stdin_for(vbmc, "off", **{"hexadecimal_kg": KG_HEX, "verbose": "1", **bad}))
            assert result.returncode == 1 and "fence_ipmi: error: " in result.stderr, (bad, result.stderr)
            outputs += [result.stdout, result.stderr]
        text = (f"action=status\nip=127.0.0.1\nipport={vbmc.port}\nusername=admin\nverbose=1\n"
                f"hexadecimal_kg={KG_HEX}\npassword_script={script}\ndebug_file={debug_file}\n")
        result = run_fence(stdin=text)
        assert (result.returncode, result.stdout) == (0, "Status: ON\n"), result.stderr
        outputs += [result.stdout, result.stderr]
    assert scanner.samples > 5
    assert scanner.hits == []
    for text in outputs + [debug_file.read_text(), vbmc.log_text()]:
        assert PASSWORD not in text and KG_HEX not in text
    assert "logging in" in debug_file.read_text()  # the debug file did get written


def test_password_typo_on_the_command_line_is_not_echoed():
    result = run_fence(["-o", "status", "-a", "127.0.0.1", "-u", str(free_udp_port()), "-p", PASSWORD,
                        "--hexadecimal-kg", "not-hex-" + PASSWORD])
    assert result.returncode == 1 and PASSWORD not in result.stderr + result.stdout


# -- interop -------------------------------------------------------------------------------------------------

def ipmitool(vbmc, *command: str, cipher: str = "17") -> subprocess.CompletedProcess:
    """ipmitool -I lanplus against the vbmc (password via the environment, -E, not argv)."""
    return subprocess.run(["ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", str(vbmc.port), "-U", "admin",
                           "-E", "-C", cipher, *command], capture_output=True, text=True, timeout=30,
                          env={**CLEAN_ENV, "IPMI_PASSWORD": PASSWORD})


def fence_ipmilan(vbmc, action: str, *extra: str) -> subprocess.CompletedProcess:
    """Upstream fence_ipmilan (lanplus) against the vbmc, password from a script rather than argv."""
    text = (f"action={action}\nip=127.0.0.1\nipport={vbmc.port}\nusername=admin\npassword={PASSWORD}\n"
            "lanplus=1\n" + "".join(f"{e}\n" for e in extra))
    return subprocess.run(["fence_ipmilan"], input=text, capture_output=True, text=True, timeout=60, env=CLEAN_ENV)


def power_status(vbmc, cipher: str = "17") -> str:
    """What ipmitool's chassis power status says (it must succeed)."""
    result = ipmitool(vbmc, "chassis", "power", "status", cipher=cipher)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("cipher", ["17", "3"])
def test_ipmitool_and_fence_ipmi_agree(vbmc, cipher):
    assert power_status(vbmc, cipher) == "Chassis Power is on"
    result = run_fence(stdin=stdin_for(vbmc, "off", cipher=cipher))
    assert (result.returncode, result.stdout) == (0, "Success: Powered OFF\n"), result.stderr
    assert power_status(vbmc, cipher) == "Chassis Power is off"
    assert ipmitool(vbmc, "chassis", "power", "on", cipher=cipher).returncode == 0
    result = run_fence(stdin=stdin_for(vbmc, "status", cipher=cipher))
    assert (result.returncode, result.stdout) == (0, "Status: ON\n"), result.stderr
    result = ipmitool(vbmc, "chassis", "status", cipher=cipher)
    assert result.returncode == 0 and "System Power         : on" in result.stdout, result.stderr
    result = ipmitool(vbmc, "power", "status")  # ipmitool's own suite choice
    assert (result.returncode, result.stdout.strip()) == (0, "Chassis Power is on"), result.stderr


def test_ipmitool_sees_wrong_password_too(vbmc):
    result = subprocess.run(["ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", str(vbmc.port), "-U", "admin",
                             "-E", "chassis", "power", "status"], capture_output=True, text=True, timeout=30,
                            env={**CLEAN_ENV, "IPMI_PASSWORD": "wrong"})
    assert result.returncode != 0


def test_fence_ipmilan_and_fence_ipmi_agree(vbmc):
    def same_status(code: int, text: str) -> None:
        ours, theirs = run_fence(stdin=stdin_for(vbmc, "status")), fence_ipmilan(vbmc, "status")
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (code, f"Status: {text}\n"), \
            (ours.stderr, theirs.stderr)

    same_status(0, "ON")
    assert fence_ipmilan(vbmc, "off", "power_wait=0").returncode == 0
    same_status(2, "OFF")
    assert run_fence(stdin=stdin_for(vbmc, "on")).returncode == 0
    same_status(0, "ON")
    assert fence_ipmilan(vbmc, "monitor").returncode == 0


def test_upstream_cycle_on_off_node_fails_where_ours_succeeds(vbmcs):
    # fence-agents #596, reproduced against the simulator, and fixed in fence_ipmi.
    vbmc = vbmcs.start("--power", "off")
    assert fence_ipmilan(vbmc, "reboot", "method=cycle").returncode == 1
    result = run_fence(stdin=stdin_for(vbmc, "reboot", method="cycle"))
    assert (result.returncode, result.stdout) == (0, "Success: Rebooted\n"), result.stderr
    assert power_status(vbmc) == "Chassis Power is on"


# -- the daemon ----------------------------------------------------------------------------------------------

def test_vbmc_daemonises_and_stops(tmp_path):
    port = free_udp_port()
    pid_file, log_file = tmp_path / "vbmc.pid", tmp_path / "vbmc.log"
    password_file = tmp_path / "pw"
    password_file.write_text(PASSWORD)
    argv = ["/usr/bin/python3", str(VBMC), "--port", str(port), "--password-file", str(password_file),
            "--pid-file", str(pid_file), "--log-file", str(log_file)]
    started = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=CLEAN_ENV)
    assert started.returncode == 0, started.stderr
    try:
        # the lock file appears before the pid is written into it
        pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 10, "the vbmc's pid file"))
        assert pathlib.Path(f"/proc/{pid}").exists()
        assert os.getsid(pid) != os.getsid(0)  # detached: a session of its own (double fork: not its leader)
        result = run_fence(["-o", "status", "-a", "127.0.0.1", "-u", str(port), "-l", "admin", "-S",
                            f"cat {password_file}"])
        assert (result.returncode, result.stdout) == (0, "Status: ON\n"), result.stderr
    finally:
        stopped = subprocess.run(["/usr/bin/python3", str(VBMC), "--stop", "--pid-file", str(pid_file)],
                                 capture_output=True, text=True, timeout=30)
    assert stopped.returncode == 0, stopped.stderr
    assert not pid_file.exists()
    assert "stopped" in log_file.read_text()
    wait_for(lambda: not pathlib.Path(f"/proc/{pid}").exists(), 10, f"the vbmc (pid {pid}) to exit")


def test_vbmc_refuses_bad_setups(tmp_path):
    def vbmc(*args, env=None):
        return subprocess.run(["/usr/bin/python3", str(VBMC), "--foreground", *args], capture_output=True,
                              text=True, timeout=30, env={**CLEAN_ENV, **(env or {})})

    result = vbmc("--port", str(free_udp_port()))
    assert result.returncode == 2 and "no password" in result.stderr, result
    result = vbmc("--port", str(free_udp_port()), "--suites", "0", env={"HAMAIL_VBMC_PASSWORD": "x"})
    assert result.returncode == 2 and "--suites" in result.stderr, result
    with __import__("socket").socket(2, 2) as busy:
        busy.bind(("127.0.0.1", 0))
        result = vbmc("--port", str(busy.getsockname()[1]), env={"HAMAIL_VBMC_PASSWORD": "x"})
        assert result.returncode == 1 and "cannot listen" in result.stderr
