# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:drbd's answers to bad input, on this host (no DRBD module here: nothing is started).

Missing drbd-utils, an unreadable drbd.conf, broken parameters and a wrong clone each give the OCF code
Pacemaker needs and a reason saying what to fix, never a traceback. The real-DRBD behaviour is tested in
test_drbd_pair.py inside qemu guests.
"""

import pytest

from testlib import run_agent

CLONE = {"clone_max": "2", "clone_node_max": "1", "promotable": "true", "promoted_max": "1",
         "promoted_node_max": "1", "notify": "true"}
FEATURES = {"OCF_RESKEY_crm_feature_set": "3.16.1"}


def _reason(result):
    assert "Traceback" not in result.stderr
    return next((line.split(":", 1)[1] for line in result.stderr.splitlines() if line.startswith("ocf-exit-reason:")),
                "")


def test_missing_drbd_utils_probe_7_start_5():
    """Without drbdadm on PATH: a probe says not running, start says not installed, naming drbd-utils."""
    env = {"PATH": "/nonexistent"}
    assert run_agent("drbd", "monitor", {"drbd_resource": "r0"}, env=env).returncode == 7
    start = run_agent("drbd", "start", {"drbd_resource": "r0"}, env=env)
    assert start.returncode == 5
    assert "drbdadm is not installed (drbd-utils)" in _reason(start)


def test_unreadable_drbdconf_is_not_installed(tmp_path):
    """A drbdconf that does not exist: 5 with the path (another node may have it), 7 on a probe."""
    params = {"drbd_resource": "r0", "drbdconf": str(tmp_path / "nope.conf")}
    start = run_agent("drbd", "start", params)
    assert start.returncode == 5
    assert str(tmp_path / "nope.conf") in _reason(start)
    assert run_agent("drbd", "monitor", params).returncode == 7


@pytest.mark.parametrize("params, words", [
    ({"adjust_master_score": "0 10 1000"}, "adjust_master_score"),
    ({"adjust_master_score": "10000 1000 10 0"}, "non-decreasing"),
    ({"require_drbd_module_version_ge": "9.0"}, "invalid version format"),
    ({"drbd_resource": "r0;rm"}, "may only contain"),
])
def test_broken_parameters_are_6(params, words):
    """Each broken parameter is refused with 6 and a reason naming it."""
    result = run_agent("drbd", "validate-all", {"drbd_resource": "r0", **params})
    assert result.returncode == 6
    assert words in _reason(result)


@pytest.mark.parametrize("meta, words", [
    ({"notify": "false"}, "pcs resource meta test-drbd-clone notify=true"),
    ({"promoted_max": "3"}, "promoted-max is 3"),
    ({"clone_node_max": "2"}, "clone-node-max=1"),
    ({"clone_max": "3"}, "clone-max=2"),
    ({"promotable": "false", "promoted_max": ""}, "pcs resource promotable test-drbd"),
])
def test_clone_meta_says_what_to_set(meta, words):
    """Under Pacemaker, a clone the agent cannot work in is refused (6) with the command that fixes it."""
    result = run_agent("drbd", "validate-all", {"drbd_resource": "r0"}, meta={**CLONE, **meta}, env=FEATURES)
    assert result.returncode == 6, result.stderr
    assert words in _reason(result)


def test_clone_meta_accepted_and_notify_may_be_waived():
    """The guide's clone passes; ignore_missing_notifications accepts notify=false; stop never checks meta."""
    assert run_agent("drbd", "validate-all", {"drbd_resource": "r0"}, meta=CLONE, env=FEATURES).returncode == 0
    waived = {"drbd_resource": "r0", "ignore_missing_notifications": "true"}
    assert run_agent("drbd", "validate-all", waived, meta={**CLONE, "notify": "false"}, env=FEATURES).returncode == 0


def test_stop_without_module_succeeds():
    """No DRBD module on this node: nothing can run, stop succeeds."""
    assert run_agent("drbd", "stop", {"drbd_resource": "r0"}, env={"HA_RSCTMP": "/tmp"}).returncode in (0,)
