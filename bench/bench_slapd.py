# SPDX-License-Identifier: GPL-2.0-or-later
"""Bench rows of slapd: the monitor of one running slapd (a private cn=config with an mdb database, loopback TCP
and an ldapi socket), ours at depth 0 and depth 10 against heartbeat's monitor (ldapsearch of each suffix).

Both agents get the same parameters (the same configuration and services URLs, a bind as the database's root
DN); the slapd is started once by our agent and stopped by it at the end. Every timed run must answer 0."""

import pathlib
import sys
import tempfile

from harness import BenchFailure, Case, agent_argv, run_step

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEARTBEAT = "/usr/lib/ocf/resource.d/heartbeat/slapd"
# The tests' private slapd (tests/services/slapd_support.py) is the bench's too: one recipe for the server.
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "services")]
from slapd_support import ADMIN, PASSWORD, SlapdLab  # noqa: E402


class Lab:
    """The slapd both agents monitor, made on first use and killed at the end."""

    def __init__(self):
        self.server = None
        self.agent = agent_argv(ROOT / "agents" / "slapd")

    def env(self, level="0"):
        """One recurring monitor's environment (20 s timeout), the same for both agents but the check level."""
        if self.server is None:
            self.server = SlapdLab(pathlib.Path(tempfile.mkdtemp(prefix="hm-bench-slapd-")))
        params = self.server.params(bind_dn=ADMIN, password=PASSWORD)
        env = {f"OCF_RESKEY_{k}": v for k, v in params.items()}
        env.update({"OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": "bench-slapd", "OCF_CHECK_LEVEL": level,
                    "OCF_RESKEY_CRM_meta_interval": "60000", "OCF_RESKEY_CRM_meta_timeout": "20000"})
        return env

    def up(self):
        """Start slapd through our agent (no-op when it runs)."""
        run_step(self.agent + ["start"], self.env(), what="ours slapd start")
        if self.server.main_pid() is None:
            raise BenchFailure("slapd start answered 0 but no slapd runs")

    def down(self):
        """Stop slapd through our agent, then kill whatever is left and remove its files."""
        if self.server is None:
            return
        try:
            run_step(self.agent + ["stop"], self.env(), what="ours slapd stop")
        finally:
            self.server.kill()
            import shutil
            shutil.rmtree(self.server.base, ignore_errors=True)
            self.server = None


def cases() -> list:
    """Monitor at depth 0 (target 0.7x heartbeat's) and at depth 10 (its cost shown), against heartbeat's monitor."""
    lab = Lab()
    upstream = agent_argv(HEARTBEAT)

    def monitor(level, target, teardown=None):
        return Case("slapd", f"monitor depth {level} (running; heartbeat: ldapsearch of each suffix)",
                    lab.agent + ["monitor"], upstream + ["monitor"], env_ours=lab.env(level),
                    env_upstream=lab.env("0"), setup=lab.up, teardown=teardown, repeat=20, target=target)

    return [monitor("0", 0.7), monitor("10", None, teardown=lab.down)]
