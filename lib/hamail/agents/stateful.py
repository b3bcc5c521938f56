# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:Stateful: a promotable state-file resource exercising the shared promotable logic."""

import os

from hamail.ocf import ActionSpec, Agent, AgentSpec, Context, Kind, OCFExit, Param, ParamTable, main
from hamail.pacemaker.scores import PromotionScore
from hamail.promotable import Observation, PromotableResource, Role
from hamail.system.files import StateFile, rsctmp

PARAMS = ParamTable(
    Param("state", Kind.PATH, "State file",
          "Location to store the resource state in. Defaults to a file named after the instance in HA_RSCTMP.",
          unique_group="state"),
    Param("promoted_score", Kind.INTEGER, "Promotion score when promoted", default="10", minimum=0),
    Param("unpromoted_score", Kind.INTEGER, "Promotion score when unpromoted", default="5", minimum=0),
    Param("notify_log", Kind.PATH, "Notification log",
          "Append every notification received, as one JSON object per line (for tests and auditing)."),
    Param("envfile", Kind.PATH, "Environment dump file",
          "If set, the environment of every call is written to this file (as pacemaker's Stateful does).",
          reloadable=True),
    Param("notify_delay", Kind.DURATION, "Notify delay in seconds",
          "The notify action sleeps this long before returning, to simulate a long-running notify "
          "(bounded by the operation timeout).", default="0", reloadable=True),
)

SPEC = AgentSpec(
    name="Stateful", version="0.1.0", shortdesc="Example promotable resource agent",
    longdesc="A promotable resource recording its role in a state file and publishing promotion "
             "scores through Pacemaker: for testing promotable clones without real services.",
    params=PARAMS,
    actions=(ActionSpec("start", 20), ActionSpec("stop", 20),
             ActionSpec("monitor", 20, interval=10, depth=0, role="Promoted"),
             ActionSpec("monitor", 20, interval=11, depth=0, role="Unpromoted"),
             ActionSpec("promote", 10), ActionSpec("demote", 10), ActionSpec("notify", 5),
             ActionSpec("reload-agent", 10), ActionSpec("meta-data", 5), ActionSpec("validate-all", 20)),
)


class StatefulResource:
    """The Promotable implementation: the role is whatever the state file says."""

    def state(self, ctx: Context) -> StateFile:
        """This instance's state file."""
        if ctx.config.state:
            return StateFile(os.path.dirname(ctx.config.state), os.path.basename(ctx.config.state))
        return StateFile(rsctmp(ctx.env.raw), f"Stateful-{ctx.env.instance}.state")

    def observe(self, ctx: Context) -> Observation:
        """Read the role; unpromoted and promoted instances publish their configured scores."""
        text = self.state(ctx).read()
        if text == "promoted":
            return Observation(Role.PROMOTED, score=ctx.config.promoted_score)
        if text == "unpromoted":
            return Observation(Role.UNPROMOTED, score=ctx.config.unpromoted_score)
        return Observation(Role.STOPPED)

    def do_promote(self, ctx: Context) -> None:
        """Record the promoted role."""
        self.state(ctx).write("promoted")

    def do_demote(self, ctx: Context) -> None:
        """Record the unpromoted role."""
        self.state(ctx).write("unpromoted")


def _dump_environment(ctx: Context) -> None:
    """Write this call's environment to envfile, if configured (mode 0600: it holds the parameters)."""
    if ctx.config.envfile:
        from hamail.system.files import atomic_write
        atomic_write(ctx.config.envfile, "".join(f"{k}={v}\n" for k, v in sorted(ctx.env.raw.items())))


def _resource(ctx: Context) -> PromotableResource:
    scores = PromotionScore(ctx.runner, ctx.env.instance, ctx.env.attribute_target,
                            ctx.env.raw.get("OCF_RESKEY_crm_feature_set", ""), ctx.deadline)
    return PromotableResource(StatefulResource(), scores)


def start(ctx: Context) -> int:
    """Start unpromoted."""
    _dump_environment(ctx)
    impl = StatefulResource()
    if impl.observe(ctx).role is Role.STOPPED:
        impl.state(ctx).write("unpromoted")
    _resource(ctx).publish(impl.observe(ctx))
    return OCFExit.SUCCESS


def stop(ctx: Context) -> int:
    """Withdraw the score and forget the state."""
    _dump_environment(ctx)
    impl = StatefulResource()
    impl.state(ctx).remove()
    _resource(ctx).publish(Observation(Role.STOPPED))
    return OCFExit.SUCCESS


def monitor(ctx: Context) -> int:
    """Report the role through the shared promotable logic."""
    _dump_environment(ctx)
    return _resource(ctx).monitor(ctx)


def promote(ctx: Context) -> int:
    """Promote through the shared promotable logic."""
    _dump_environment(ctx)
    return _resource(ctx).promote(ctx)


def demote(ctx: Context) -> int:
    """Demote through the shared promotable logic."""
    _dump_environment(ctx)
    return _resource(ctx).demote(ctx)


def notify(ctx: Context) -> int:
    """Append the parsed notification to notify_log, if configured; then wait notify_delay."""
    _dump_environment(ctx)
    if ctx.config.notify_log:
        import json  # only here: json pulls in re and enum, which the monitor path must not pay for
        import time
        from hamail.pacemaker.notify import NotifyData
        data = NotifyData.from_environ(ctx.env.raw)
        record = {"node": ctx.env.node_name, "time": time.time(), "type": data.type,
                  "operation": data.operation, "unames": {k: list(v) for k, v in data.unames.items()}}
        with open(ctx.config.notify_log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
    if ctx.config.notify_delay:
        ctx.deadline.sleep(ctx.config.notify_delay)
    return OCFExit.SUCCESS


def reload_agent(ctx: Context) -> int:
    """envfile and notify_delay are read at every call: nothing to reload."""
    _dump_environment(ctx)
    return OCFExit.SUCCESS


AGENT = Agent(SPEC, {"start": start, "stop": stop, "monitor": monitor, "promote": promote,
                     "demote": demote, "notify": notify, "reload-agent": reload_agent})

if __name__ == "__main__":
    main(AGENT)
