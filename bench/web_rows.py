# SPDX-License-Identifier: GPL-2.0-or-later
"""The bench rows of apache and nginx (bench_apache, bench_nginx): the monitor of one running server (ours
started it), ours vs heartbeat's.

Depth 0 (target 0.7): ours checks the pid and connects to every Listen address; heartbeat's apache GETs the
status page with curl at depth 0 (so ours' depth 10, the same GET, is shown beside it), heartbeat's nginx only
checks the pid. Depth 10 of both: the status page's GET and its regex. The servers are tests/services'
web_support sites (a private configuration on 127.0.0.1), stopped and removed after the rows."""

import pathlib
import shutil
import sys
import tempfile

from harness import Case, agent_argv, run_step

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEARTBEAT = "/usr/lib/ocf/resource.d/heartbeat"


def _site(kind: str):
    """A web_support site of this kind in a new temporary directory."""
    for path in (ROOT / "tests", ROOT / "tests" / "services"):
        if str(path) not in sys.path:
            sys.path.append(str(path))
    import web_support
    return getattr(web_support, kind)(tempfile.mkdtemp(prefix="hamail-bench-web-"))


def _env(agent: str, site, level: str) -> dict:
    """The OCF environment of a recurring monitor of this site."""
    return {"OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": f"bench-{agent}", "OCF_RESKEY_configfile":
            str(site.config), "OCF_CHECK_LEVEL": level, "OCF_RESKEY_CRM_meta_interval": "10000",
            "OCF_RESKEY_CRM_meta_timeout": "20000", "HA_RSCTMP": str(site.base)}


def web_cases(agent: str, kind: str, upstream_depth10: str, status_param: str = "") -> list:
    """Depth 0 and depth 10 of ours against heartbeat's (its depth for the second row: upstream_depth10); the
    status URL given to both as status_param when heartbeat cannot find it (nginx's `stub_status;` without on)."""
    site = _site(kind)
    status = {f"OCF_RESKEY_{status_param}": f"http://127.0.0.1:{site.port}/nginx_status"} if status_param else {}
    ours, upstream = agent_argv(ROOT / "agents" / agent), agent_argv(f"{HEARTBEAT}/{agent}")

    def setup():
        run_step(ours + ["start"], _env(agent, site, "0"), what=f"ours {agent} start")

    def teardown():
        run_step(ours + ["stop"], _env(agent, site, "0"), what=f"ours {agent} stop")

    def remove():
        teardown()
        site.kill_all()
        shutil.rmtree(site.base, ignore_errors=True)

    label = "heartbeat's depth 0: its status GET" if upstream_depth10 == "0" else "both depth 10"
    return [
        Case(agent, "monitor depth 0 (running)", ours + ["monitor"], upstream + ["monitor"],
             env_ours=_env(agent, site, "0"), env_upstream=_env(agent, site, "0"), setup=setup, teardown=teardown,
             repeat=20, target=0.7),
        Case(agent, f"monitor depth 10: status page GET + regex ({label})", ours + ["monitor"],
             upstream + ["monitor"], env_ours={**_env(agent, site, "10"), **status},
             env_upstream={**_env(agent, site, upstream_depth10), **status},
             setup=setup, teardown=remove, repeat=20),
    ]
