# SPDX-License-Identifier: GPL-2.0-or-later
"""Bench rows of the foundation: the floor cost of a trivial action (Python start-up and the core), hamail
Dummy vs heartbeat Dummy (a shell script: its 5 ms is not a target a Python agent can meet, it shows the floor).
Both are executed as files, through their own #! lines (ours: /usr/bin/python3 -S), as pacemaker-execd does."""

import os
import pathlib
import shutil
import tempfile

from harness import Case, agent_argv, run_step

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEARTBEAT = "/usr/lib/ocf/resource.d/heartbeat"


def _env(state: str) -> dict:
    return {"OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": "bench-dummy", "OCF_RESKEY_state": state,
            "OCF_RESKEY_CRM_meta_interval": "10000", "OCF_RESKEY_CRM_meta_timeout": "20000"}


def cases() -> list:
    """Dummy monitor and meta-data, ours against heartbeat's."""
    work = tempfile.mkdtemp(prefix="hamail-bench-")
    ours_state, theirs_state = os.path.join(work, "ours.state"), os.path.join(work, "theirs.state")
    ours = agent_argv(ROOT / "agents" / "Dummy")
    theirs = agent_argv(f"{HEARTBEAT}/Dummy")

    def setup() -> None:
        for argv, state in ((ours, ours_state), (theirs, theirs_state)):
            run_step(argv + ["start"], _env(state), what="Dummy start")

    def teardown() -> None:
        for argv, state in ((ours, ours_state), (theirs, theirs_state)):
            run_step(argv + ["stop"], _env(state), what="Dummy stop")
        shutil.rmtree(work, ignore_errors=True)

    return [
        Case("Dummy", "monitor (running)", ours + ["monitor"], theirs + ["monitor"],
             env_ours=_env(ours_state), env_upstream=_env(theirs_state), setup=setup, teardown=teardown, repeat=30),
        Case("Dummy", "meta-data", ours + ["meta-data"], theirs + ["meta-data"],
             env_ours=_env(ours_state), env_upstream=_env(theirs_state), repeat=20),
    ]
