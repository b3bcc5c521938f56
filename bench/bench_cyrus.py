# SPDX-License-Identifier: GPL-2.0-or-later
"""Bench rows of cyrus: the monitor of one running Cyrus IMAP (the tests' private instance from Debian's packages:
imap, pop3, lmtp on loopback and an lmtp unix socket), ours at depth 0 and depth 10. There is no heartbeat cyrus
agent, so there is no upstream column. Cyrus is started once by our agent and stopped by it at the end. Every
timed run must answer 0."""

import pathlib
import shutil
import sys

from harness import BenchFailure, Case, agent_argv, run_step

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The tests' private cyrus (tests/services/cyrus_support.py) is the bench's too: one recipe for the server.
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "services")]
from cyrus_support import CyrusServer, private_dir  # noqa: E402


class Lab:
    """The cyrus instance the agent monitors, made on first use and removed at the end."""

    def __init__(self):
        self.server = None
        self.agent = agent_argv(ROOT / "agents" / "cyrus")

    def env(self, level="0"):
        """One recurring monitor's environment (20 s timeout)."""
        if self.server is None:
            self.server = CyrusServer(private_dir())
        env = {f"OCF_RESKEY_{k}": v for k, v in self.server.params().items()}
        env.update({"OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": "bench-cyrus", "OCF_CHECK_LEVEL": level,
                    "OCF_RESKEY_CRM_meta_interval": "60000", "OCF_RESKEY_CRM_meta_timeout": "20000"})
        return env

    def up(self):
        """Start cyrus through our agent (no-op when it runs)."""
        run_step(self.agent + ["start"], self.env(), what="ours cyrus start")
        if self.server.master_pid() is None:
            raise BenchFailure("cyrus start answered 0 but no master runs")

    def down(self):
        """Stop cyrus through our agent, then kill whatever is left and remove its files."""
        if self.server is None:
            return
        try:
            run_step(self.agent + ["stop"], self.env(), what="ours cyrus stop")
        finally:
            self.server.kill_all()
            shutil.rmtree(self.server.base, ignore_errors=True)
            self.server = None


def cases() -> list:
    """Monitor at depth 0 and at depth 10 (four listeners: IMAP CAPABILITY+NOOP, POP3 CAPA, LMTP LHLO twice)."""
    lab = Lab()

    def monitor(level, teardown=None):
        return Case("cyrus", f"monitor depth {level} (running; no heartbeat agent)", lab.agent + ["monitor"], None,
                    env_ours=lab.env(level), setup=lab.up, teardown=teardown, repeat=20)

    return [monitor("0"), monitor("10", teardown=lab.down)]
