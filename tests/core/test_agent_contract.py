# SPDX-License-Identifier: GPL-2.0-or-later
"""Every agent in agents/: metadata valid against ra-api-1.dtd and pcs's OCF 1.1 schema, the usage contract,
and garbage OCF_RESKEY_* values answered with a documented code, one exit reason and no traceback."""

import random
import subprocess

import pytest
from lxml import etree

from testlib import AGENTS, run_agent

ALL = sorted(p.name for p in AGENTS.iterdir() if p.is_file())
DTD_DIR = "/usr/share/resource-agents"
PCS_RNG = "/usr/share/pcs/data/ocf-1.1.rng"
GARBAGE = ["", "-1", "0", "99999999999999999999", "abc", "/", "../../etc/passwd", "1.2.3.4.5", "::::",
           "yes please", "\u00e9\u00e8\u2603", "a" * 5000, "$(reboot)", "`id`", "; rm -rf /", "%s%n", "true",
           "10s", "gcomm://", "/nonexistent/x", "-", "0x10", "1e9", " ", "\t", "nan", "None",
           "/tmp/x\nocf-exit-reason:injected", "a\rb", "gcomm://a\n,b"]


def metadata(name: str) -> bytes:
    result = run_agent(name, "meta-data")
    assert result.returncode == 0, result.stderr
    return result.stdout.encode()


@pytest.mark.parametrize("name", ALL)
def test_metadata_validates_against_the_dtd_the_way_ocf_tester_does(name):
    check = subprocess.run(["xmllint", "--noout", "--valid", "-"], input=metadata(name), cwd=DTD_DIR,
                           capture_output=True)
    assert check.returncode == 0, check.stderr.decode()


@pytest.mark.parametrize("name", ALL)
def test_metadata_validates_against_pcs_ocf_1_1(name):
    schema = etree.RelaxNG(etree.parse(PCS_RNG))
    doc = etree.fromstring(metadata(name))
    assert schema.validate(doc), schema.error_log
    assert doc.findtext("version") == "1.1"
    assert not metadata(name).startswith(b'<?xml version="1.0" encoding')  # crmsh chokes on it


@pytest.mark.parametrize("name", ALL)
def test_every_action_has_a_timeout_and_required_actions_exist(name):
    doc = etree.fromstring(metadata(name))
    actions = {a.get("name") for a in doc.iterfind("actions/action")}
    assert {"start", "stop", "monitor", "meta-data"} <= actions
    assert all(a.get("timeout") for a in doc.iterfind("actions/action"))


@pytest.mark.parametrize("name", ALL)
def test_unknown_action_and_usage(name):
    result = run_agent(name, "no-such-action")
    assert result.returncode == 3 and "usage:" in result.stderr and "Traceback" not in result.stderr
    assert_exit_reason_contract(result, result.stderr)
    result = run_agent(name, "usage")
    assert result.returncode == 0 and "usage:" in result.stdout


def _params(name):
    doc = etree.fromstring(metadata(name))
    return [p.get("name") for p in doc.iterfind("parameters/parameter")]


@pytest.mark.parametrize("name", ALL)
def test_garbage_parameters_give_documented_codes_and_one_reason(name, tmp_path):
    rng = random.Random(f"hamail-fuzz-{name}")  # reproducible
    params = _params(name)
    allowed = {0, 1, 2, 5, 6, 7}
    for _ in range(12):
        values = {p: rng.choice(GARBAGE) for p in rng.sample(params, k=min(len(params), rng.randint(1, 4)))}
        for action, meta in (("validate-all", {}), ("monitor", {"interval": "0"})):
            # HA_VARLIB: a random trace_ra=true traces into the test's directory, not the host's
            result = run_agent(name, action, values, meta, env={"HA_VARLIB": str(tmp_path)}, timeout=60)
            context = f"{name} {action} {values!r}: rc={result.returncode} stderr={result.stderr[-500:]!r}"
            assert result.returncode in allowed, context
            assert "Traceback" not in result.stderr + result.stdout, context
            assert_exit_reason_contract(result, context)


REASON = "ocf-exit-reason:"


def assert_exit_reason_contract(result: subprocess.CompletedProcess, context: str) -> None:
    """A failure prints exactly one exit reason line on stderr, readable and saying something; success and
    'not running' print none. Lines are split on '\\n' only: Pacemaker reads a reason up to the newline, so a
    carriage return or other control character inside it is a broken reason, not a second line; a garbage value
    quoted raw must not inject a second reason line."""
    reasons = [line for line in result.stderr.split("\n") if line.startswith(REASON)]
    assert REASON not in result.stdout, context
    if result.returncode in (0, 7):
        assert reasons == [], context
        return
    assert len(reasons) == 1, context
    text = reasons[0][len(REASON):]
    assert text.isprintable() and len(text.strip()) > 5, context
    # The reason is the agent's last word: a reason split by a newline (a raw value in it) leaves its tail after.
    assert result.stderr.endswith(reasons[0] + "\n"), context


def test_exit_reasons_on_the_paths_the_fuzz_rarely_reaches(tmp_path):
    """A reason quoting a raw value holding a newline stays one line; software missing on this node is 'not
    running' for a probe without a reason, OCF_ERR_INSTALLED with one for start; a stopped monitor has none."""
    hostile = tmp_path / "state\nocf-exit-reason:injected"
    hostile.mkdir()
    result = run_agent("Dummy", "validate-all", {"state": str(hostile)})
    assert result.returncode == 6, result.stderr
    assert_exit_reason_contract(result, result.stderr)
    assert "is a directory" in result.stderr.split("\n")[-2]
    absent = {"binary": str(tmp_path / "no-such-mysqld"), "wsrep_cluster_address": "gcomm://contract-node"}
    meta = {"on_node": "contract-node"}
    probe = run_agent("galera", "monitor", absent, {"interval": "0", **meta})
    assert probe.returncode == 7 and "reporting not running" in probe.stderr, probe.stderr
    assert_exit_reason_contract(probe, probe.stderr)
    start = run_agent("galera", "start", absent, meta)
    assert start.returncode == 5 and "no-such-mysqld" in start.stderr, start.stderr
    assert_exit_reason_contract(start, start.stderr)
    stopped = run_agent("Dummy", "monitor", {"state": str(tmp_path / "dummy.state")}, {"interval": "0"})
    assert stopped.returncode == 7, stopped.stderr
    assert_exit_reason_contract(stopped, stopped.stderr)
