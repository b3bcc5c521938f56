# SPDX-License-Identifier: GPL-2.0-or-later
"""The bench rows of postfix and dovecot (bench_postfix, bench_dovecot): the monitor of one running daemon (ours
started it, from the tests' private recipe in tests/services/mail_support.py), ours at depth 0 (target 0.7x) and
at depth 10 (its cost shown) against heartbeat's monitor. Every timed run must answer 0; the daemon is stopped by
our agent and its files removed after the rows."""

import pathlib
import shutil
import sys
import tempfile

from harness import BenchFailure, Case, agent_argv, run_step

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEARTBEAT = "/usr/lib/ocf/resource.d/heartbeat"


class Lab:
    """One daemon both agents monitor, made on first use (make(base) gives a mail_support lab) and killed at the
    end; upstream_params(server): heartbeat's parameters and environment for the same instance."""

    def __init__(self, agent: str, make, upstream_params):
        self.agent_name, self.make, self.upstream_params = agent, make, upstream_params
        self.server = None
        self.agent = agent_argv(ROOT / "agents" / agent)

    def env(self, level="0", upstream=False):
        """One recurring monitor's environment (20 s timeout), the same instance for both agents."""
        if self.server is None:
            base = pathlib.Path(tempfile.mkdtemp(prefix=f"hm-bench-{self.agent_name}-"))
            self.server = self.make(base)
            self.server.rsctmp = base / "rsc"
        params, extra = self.upstream_params(self.server) if upstream else (self.server.params(), {})
        env = {f"OCF_RESKEY_{k}": v for k, v in params.items()}
        env.update({"OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": f"bench-{self.agent_name}",
                    "OCF_CHECK_LEVEL": level, "OCF_RESKEY_CRM_meta_interval": "60000",
                    "OCF_RESKEY_CRM_meta_timeout": "20000", "HA_RSCTMP": str(self.server.rsctmp), **extra})
        return env

    def up(self):
        """Start the daemon through our agent (no-op when it runs)."""
        run_step(self.agent + ["start"], self.env(), what=f"ours {self.agent_name} start")
        if self.server.master() is None:
            raise BenchFailure(f"{self.agent_name} start answered 0 but no master process runs")

    def down(self):
        """Stop the daemon through our agent, then kill whatever is left and remove its files."""
        if self.server is None:
            return
        try:
            run_step(self.agent + ["stop"], self.env(), what=f"ours {self.agent_name} stop")
        finally:
            self.server.kill()
            shutil.rmtree(self.server.base.parent, ignore_errors=True)
            self.server = None


def mail_cases(agent: str, make, upstream_params, upstream_monitor: str) -> list:
    """Depth 0 and depth 10 of ours against heartbeat's monitor (which does upstream_monitor)."""
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "services")]
    lab = Lab(agent, make, upstream_params)
    upstream = agent_argv(f"{HEARTBEAT}/{agent}")

    def monitor(level, target, teardown=None):
        return Case(agent, f"monitor depth {level} (running; heartbeat: {upstream_monitor})",
                    lab.agent + ["monitor"], upstream + ["monitor"], env_ours=lab.env(level),
                    env_upstream=lab.env("0", upstream=True), setup=lab.up, teardown=teardown, repeat=20,
                    target=target)

    return [monitor("0", 0.7), monitor("10", None, teardown=lab.down)]
