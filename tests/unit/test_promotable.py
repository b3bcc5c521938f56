# SPDX-License-Identifier: GPL-2.0-or-later
"""The shared promotable logic: observation -> code and score, promote/demote transitions, bounded waits."""

import io

import pytest

from hamail.system.clock import FakeClock
from hamail.ocf import OCFExit
from hamail.ocf.metadata import ActionSpec, AgentSpec
from hamail.ocf import Agent, run
from hamail.params import ParamTable
from hamail.promotable import Observation, PromotableResource, Role, monitor_code


@pytest.mark.parametrize("obs,code", [
    (Observation(Role.STOPPED), OCFExit.NOT_RUNNING),
    (Observation(Role.UNPROMOTED), OCFExit.SUCCESS),
    (Observation(Role.UNPROMOTED, degraded=True), OCFExit.DEGRADED),
    (Observation(Role.UNPROMOTED, healthy=False), OCFExit.ERR_GENERIC),
    (Observation(Role.PROMOTED), OCFExit.RUNNING_PROMOTED),
    (Observation(Role.PROMOTED, degraded=True), OCFExit.DEGRADED_PROMOTED),
    (Observation(Role.PROMOTED, healthy=False), OCFExit.FAILED_PROMOTED),
])
def test_monitor_codes(obs, code):
    assert monitor_code(obs) is code


class Scores:
    def __init__(self):
        self.history = []

    def set(self, score):
        self.history.append(score)

    def delete(self):
        self.history.append(None)


class Fake:
    """A resource whose promotion takes `lag` observations to show."""

    def __init__(self, role, lag=0, stuck=False):
        self.role, self.lag, self.stuck, self.target = role, lag, stuck, None

    def observe(self, ctx):
        if self.target and not self.stuck:
            if self.lag == 0:
                self.role, self.target = self.target, None
            else:
                self.lag -= 1
        return Observation(self.role, score=100 if self.role is Role.PROMOTED else 5 if self.role is Role.UNPROMOTED else None)

    def do_promote(self, ctx):
        self.target = Role.PROMOTED

    def do_demote(self, ctx):
        self.target = Role.UNPROMOTED


def drive(impl, action, timeout_ms=10000):
    scores = Scores()
    resource = PromotableResource(impl, scores)
    spec = AgentSpec("P", "1", "p", "p", ParamTable(), (ActionSpec(action, 10),))
    agent = Agent(spec, {action: getattr(resource, action)})
    clock = FakeClock()
    err = io.StringIO()
    rc = run(agent, ["P", action], {"OCF_RESKEY_CRM_meta_timeout": str(timeout_ms)}, stdout=io.StringIO(),
             stderr=err, clock=clock)
    return rc, scores.history, err.getvalue(), clock


def test_monitor_publishes_the_score():
    assert drive(Fake(Role.UNPROMOTED), "monitor")[:2] == (0, [5])
    assert drive(Fake(Role.PROMOTED), "monitor")[:2] == (8, [100])
    assert drive(Fake(Role.STOPPED), "monitor")[:2] == (7, [None])


def test_promote_waits_for_the_role_with_backoff():
    rc, scores, _, clock = drive(Fake(Role.UNPROMOTED, lag=3), "promote")
    assert rc == 0 and scores == [100] and len(clock.sleeps) == 3
    assert clock.sleeps[0] > 0 and all(b > a for a, b in zip(clock.sleeps, clock.sleeps[1:])), clock.sleeps


def test_promote_is_bounded_by_the_operation_timeout():
    rc, _, err, clock = drive(Fake(Role.UNPROMOTED, stuck=True), "promote", timeout_ms=20000)
    assert rc == 1 and "promotion did not complete before the timeout (last seen Unpromoted)" in err
    assert clock.now - 1000 == pytest.approx(18.0)


def test_promote_of_promoted_is_a_no_op_and_of_stopped_an_error():
    assert drive(Fake(Role.PROMOTED), "promote")[:2] == (0, [])
    rc, _, err, _ = drive(Fake(Role.STOPPED), "promote")
    assert rc == 1 and "not running" in err


def test_demote():
    assert drive(Fake(Role.PROMOTED, lag=1), "demote")[:2] == (0, [5])
    assert drive(Fake(Role.UNPROMOTED), "demote")[:2] == (0, [])
    assert drive(Fake(Role.STOPPED), "demote")[0] == OCFExit.NOT_RUNNING
