# SPDX-License-Identifier: GPL-2.0-or-later
"""Fixtures for fence tests: hamail-vbmc instances on 127.0.0.1 high ports and a fence_ipmi runner."""

import dataclasses
import os
import pathlib
import re
import subprocess
import time
from typing import Optional, Sequence

import pytest

from hamail_lab.ipmisim import free_udp_port  # noqa: F401  (also used by the fence tests)
from testlib import terminate

ROOT = pathlib.Path(__file__).resolve().parents[2]
FENCE_IPMI = ROOT / "fence" / "fence_ipmi"
VBMC = ROOT / "lab" / "hamail-vbmc"
# Recognisable, 20 bytes at most (the IPMI 2.0 limit), found by the secret scans.
PASSWORD = "Hm-Pw-7Q2x-Zk9Secret"
KG_HEX = "0badc0ffee0123456789"
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
# PyPI's pyghmi, installed beside Debian's by scripts/ensure-deps (or any directory named by HAMAIL_PYGHMI_PATH).
# README promises fence_ipmi is tested with both: its absence fails those tests (other_pyghmi), never skips them.
PYPI_PYGHMI_VERSION = "1.6.19"
PYPI_PYGHMI = pathlib.Path(f"/var/cache/hamail/pypi-pyghmi-{PYPI_PYGHMI_VERSION}")
DEBIAN_PACKAGES = pathlib.Path("/usr/lib/python3/dist-packages")


@dataclasses.dataclass
class RunningVbmc:
    """A hamail-vbmc in the foreground, its port, its log file and its address."""

    proc: subprocess.Popen
    port: int
    log: pathlib.Path
    address: str = "127.0.0.1"

    def log_text(self) -> str:
        """What the vbmc logged so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """Terminate it (by its own pid) and wait."""
        terminate(self.proc)


class VbmcFactory:
    """Starts vbmcs for one test and stops them all afterwards."""

    def __init__(self, tmp: pathlib.Path) -> None:
        self.tmp = tmp
        self.running: list[RunningVbmc] = []
        self.password_file = tmp / "vbmc-password"
        self.password_file.write_text(PASSWORD + "\n")
        self.password_file.chmod(0o600)

    def start(self, *extra: str, kg: Optional[str] = None, password_file: Optional[pathlib.Path] = None,
              address: str = "127.0.0.1", port: Optional[int] = None) -> RunningVbmc:
        """Start one vbmc with these extra arguments (on address:port, a free port by default); waits until it
        serves."""
        port = port or free_udp_port()
        log = self.tmp / f"vbmc-{address}-{port}.log"
        argv = ["/usr/bin/python3", str(VBMC), "--foreground", "--address", address, "--port", str(port),
                "--password-file", str(password_file or self.password_file), "--log-file", str(log), "--debug",
                *extra]
        if kg:
            kg_file = self.tmp / f"kg-{port}"
            kg_file.write_text(kg)
            argv += ["--kg-file", str(kg_file)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CLEAN_ENV)
        line = proc.stdout.readline()
        if not line.startswith("ready"):
            proc.kill()
            raise RuntimeError(f"hamail-vbmc did not start: {line!r} {proc.stderr.read()}")
        vbmc = RunningVbmc(proc, port, log, address)
        self.running.append(vbmc)
        return vbmc

    def stop_all(self) -> None:
        """Stop every vbmc this factory started."""
        for vbmc in self.running:
            vbmc.stop()


@pytest.fixture
def vbmcs(tmp_path):
    """A factory of hamail-vbmc instances, all stopped at the end of the test."""
    factory = VbmcFactory(tmp_path)
    yield factory
    factory.stop_all()


@pytest.fixture
def vbmc(vbmcs):
    """One running hamail-vbmc (user admin, administrator, power on)."""
    return vbmcs.start()


def run_fence(args: Sequence[str] = (), stdin: Optional[str] = None, env: Optional[dict] = None,
              timeout: float = 60, agent: pathlib.Path = FENCE_IPMI) -> subprocess.CompletedProcess:
    """Run fence/fence_ipmi as Pacemaker would (its shebang: /usr/bin/python3) with a clean environment."""
    environ = dict(CLEAN_ENV)
    environ.update(env or {})
    return subprocess.run([str(agent), *args], input=stdin, capture_output=True, text=True, env=environ,
                          timeout=timeout)


def stdin_for(vbmc: RunningVbmc, action: str, **extra: str) -> str:
    """The key=value lines pacemaker-fenced would send for this vbmc."""
    lines = [f"action={action}", f"ip={vbmc.address}", f"ipport={vbmc.port}", "username=admin",
             f"password={PASSWORD}", "nodename=node1"]
    lines += [f"{key}={value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def cli_for(vbmc: RunningVbmc, action: str, *extra: str) -> list[str]:
    """The command-line form of the same invocation."""
    return ["-o", action, "-a", "127.0.0.1", "-u", str(vbmc.port), "-l", "admin", "-p", PASSWORD, *extra]


def wait_for(predicate, timeout: float, what: str):
    """Poll predicate with a short, growing pause until it returns something true (returned); the test fails
    after timeout seconds, naming what it waited for."""
    deadline = time.monotonic() + timeout
    pause = 0.02
    while True:
        value = predicate()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"still waiting for {what} after {timeout:g} s", pytrace=False)
        time.sleep(min(pause, left))
        pause = min(pause * 2, 1.0)


def timed(fn, *args, **kwargs):
    """(result, seconds) of one call."""
    start = time.monotonic()
    result = fn(*args, **kwargs)
    return result, time.monotonic() - start


@pytest.fixture
def fence():
    """The run_fence helper."""
    return run_fence


def _dist_version(directory: pathlib.Path) -> Optional[str]:
    """The pyghmi version pip recorded in that --target directory, None without one."""
    for metadata in directory.glob("pyghmi-*.dist-info/METADATA"):
        for line in metadata.read_text(errors="replace").splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
    return None


def find_other_pyghmi() -> str:
    """The directory holding the second pyghmi: HAMAIL_PYGHMI_PATH, else PyPI's pinned one that
    scripts/ensure-deps installs. Fails the test (never skips it) with what to do when it is missing."""
    override = os.environ.get("HAMAIL_PYGHMI_PATH")
    if override:
        where = pathlib.Path(override).resolve()
        if not (where / "pyghmi" / "__init__.py").is_file():
            pytest.fail(f"HAMAIL_PYGHMI_PATH={override} holds no pyghmi package", pytrace=False)
        if where == DEBIAN_PACKAGES:
            pytest.fail(f"HAMAIL_PYGHMI_PATH={override} is Debian's pyghmi, not another one", pytrace=False)
        return str(where)
    version = _dist_version(PYPI_PYGHMI)
    if version == PYPI_PYGHMI_VERSION and (PYPI_PYGHMI / "pyghmi" / "__init__.py").is_file():
        return str(PYPI_PYGHMI)
    found = f"pyghmi {version}" if version else "no pyghmi"
    pip = subprocess.run(["/usr/bin/python3", "-m", "pip", "--version"], capture_output=True, env=CLEAN_ENV)
    if pip.returncode != 0:
        how = "/usr/bin/python3 has no pip: scripts/ensure-deps installs python3-pip, then fetches it"
    else:
        how = "scripts/ensure-deps fetches it with pip (PyPI must be reachable)"
    pytest.fail(f"PyPI's pyghmi {PYPI_PYGHMI_VERSION} is missing ({found} in {PYPI_PYGHMI}): {how}; run "
                f"`make deps`, or set HAMAIL_PYGHMI_PATH to a directory holding another pyghmi", pytrace=False)


@pytest.fixture
def other_pyghmi():
    """The directory of the second pyghmi (find_other_pyghmi), for PYTHONPATH."""
    return find_other_pyghmi()


def pyghmi_sources(stdin: str, env: dict) -> tuple[subprocess.CompletedProcess, set]:
    """fence_ipmi (its interpreter, -S) under python -v: the result and the directories every pyghmi module
    it loaded came from (what the agent really used, not what a path lookup predicts)."""
    result = subprocess.run(["/usr/bin/python3", "-S", "-v", str(FENCE_IPMI)], input=stdin, capture_output=True,
                            text=True, env=dict(CLEAN_ENV, **env), timeout=60)
    roots = {match.group(1) for line in result.stderr.splitlines() if line.startswith("# code object from")
             for match in [re.search(r"(/[^\s']*?)/pyghmi/[^\s']*\.py", line)] if match}
    return result, roots
