# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared test helpers (import as `testlib`: every test directory has its own conftest, so `from conftest
import ...` would resolve to whichever was loaded first)."""

import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
AGENTS = ROOT / "agents"
FENCE = ROOT / "fence"
# Agents run as on a cluster node: Debian's interpreter and Debian's python3-* packages.
NODE_PYTHON = "/usr/bin/python3"
# Our OCF agents' upstream twins installed here (resource-agents' heartbeat agents, pacemaker's Stateful).
UPSTREAM = {
    "IPaddr2": "/usr/lib/ocf/resource.d/heartbeat/IPaddr2",
    "Filesystem": "/usr/lib/ocf/resource.d/heartbeat/Filesystem",
    "Dummy": "/usr/lib/ocf/resource.d/heartbeat/Dummy",
    "galera": "/usr/lib/ocf/resource.d/heartbeat/galera",
    "garbd": "/usr/lib/ocf/resource.d/heartbeat/garbd",
    "mysql": "/usr/lib/ocf/resource.d/heartbeat/mysql",
    "slapd": "/usr/lib/ocf/resource.d/heartbeat/slapd",
    "Stateful": "/usr/lib/ocf/resource.d/pacemaker/Stateful",
    "apache": "/usr/lib/ocf/resource.d/heartbeat/apache",
    "nginx": "/usr/lib/ocf/resource.d/heartbeat/nginx",
    "postfix": "/usr/lib/ocf/resource.d/heartbeat/postfix",
    "dovecot": "/usr/lib/ocf/resource.d/heartbeat/dovecot",
    "drbd": "/usr/lib/ocf/resource.d/linbit/drbd",
}


def run_agent(name: str, action: str, params=None, meta=None, env=None, timeout=120):
    """Run agents/<name> <action> the way pacemaker-execd does: OCF_RESKEY_* in a clean environment."""
    environ = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf",
               "OCF_RESOURCE_INSTANCE": f"test-{name}", "OCF_RESOURCE_TYPE": name,
               "OCF_RESOURCE_PROVIDER": "hamail", "OCF_RA_VERSION_MAJOR": "1", "OCF_RA_VERSION_MINOR": "1"}
    for key, value in (params or {}).items():
        environ[f"OCF_RESKEY_{key}"] = str(value)
    for key, value in (meta or {}).items():
        environ[f"OCF_RESKEY_CRM_meta_{key}"] = str(value)
    environ.update(env or {})
    return subprocess.run([NODE_PYTHON, str(AGENTS / name), action], env=environ, capture_output=True,
                          text=True, timeout=timeout)


def terminate(proc: subprocess.Popen, grace: float = 10) -> None:
    """Stop a helper process the test started (by its own pid): TERM, then KILL after the grace period."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
