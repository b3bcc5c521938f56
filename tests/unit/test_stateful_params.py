# SPDX-License-Identifier: GPL-2.0-or-later
"""pacemaker's Stateful parameters that ocf:hamail:Stateful accepts do what they do there: envfile dumps the
environment of every call, notify_delay makes notify slow (but never past its timeout)."""

import os
import time

from testlib import run_agent


def test_envfile_receives_every_calls_environment_privately(tmp_path):
    envfile = tmp_path / "env"
    params = {"envfile": envfile, "state": tmp_path / "state"}
    for action in ("notify", "reload-agent"):
        result = run_agent("Stateful", action, params, meta={"notify_type": "post", "notify_operation": "start"})
        assert result.returncode == 0, result.stderr
        lines = envfile.read_text().splitlines()
        assert f"OCF_RESKEY_envfile={envfile}" in lines and "OCF_RESKEY_CRM_meta_notify_operation=start" in lines
        assert os.stat(envfile).st_mode & 0o077 == 0
        envfile.unlink()


def test_notify_delay_waits_but_never_past_the_timeout(tmp_path):
    params = {"state": tmp_path / "state", "notify_delay": "0.5"}
    began = time.monotonic()
    assert run_agent("Stateful", "notify", params, meta={"timeout": "20000"}).returncode == 0
    assert time.monotonic() - began >= 0.5
    began = time.monotonic()
    params["notify_delay"] = "60"
    assert run_agent("Stateful", "notify", params, meta={"timeout": "1000"}).returncode == 0
    assert time.monotonic() - began < 20  # the contract: a 1 s operation must not sleep 60 s
