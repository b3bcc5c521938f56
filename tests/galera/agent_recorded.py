# SPDX-License-Identifier: GPL-2.0-or-later
"""Inside a lab node: run one galera action in-process with a RecordingRunner; print its invocations as JSON.

Usage: agent_recorded.py ACTION OUTFILE (parameters come from the OCF_* environment, as from pacemaker-execd).
"""

import json
import os
import sys

sys.path[:0] = [os.path.join(os.path.dirname(os.path.realpath(__file__)), os.pardir, os.pardir, "lib")]
sys.path.append("/usr/lib/python3/dist-packages")

from hamail.agents.galera.agent import AGENT  # noqa: E402
from hamail.ocf import run  # noqa: E402
from hamail.system.runner import RecordingRunner  # noqa: E402


def main() -> int:
    """Run the action; write {rc, invocations: [{argv, env}]} to OUTFILE; exit with the action's code."""
    action, outfile = sys.argv[1], sys.argv[2]
    runner = RecordingRunner(os.environ)
    rc = run(AGENT, ["galera", action], os.environ, runner=runner)
    with open(outfile, "w", encoding="utf-8") as handle:
        json.dump({"rc": rc, "invocations": [{"argv": list(i.argv), "env": dict(i.env)}
                                             for i in runner.invocations]}, handle)
    return rc


if __name__ == "__main__":
    sys.exit(main())
