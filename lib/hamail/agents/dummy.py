# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:Dummy: a state-file resource for testing clusters and constraints, like heartbeat Dummy."""

import os

from hamail.ocf import ActionSpec, Agent, AgentSpec, ConfigError, Context, Kind, OCFExit, Param, ParamTable, main
from hamail.system.files import StateFile, rsctmp

PARAMS = ParamTable(
    Param("state", Kind.STRING, "State file",
          "Location to store the resource state in. Defaults to a file named after the instance in HA_RSCTMP. "
          "A relative path is taken from the agent's working directory (with a warning), as heartbeat's Dummy "
          "does; its directory is created when missing.", unique_group="state"),
    Param("fake", Kind.STRING, "Fake attribute that can be changed to cause a reload",
          "Fake attribute that can be changed to cause an agent reload.", default="dummy", reloadable=True),
    Param("op_sleep", Kind.DURATION, "Operation sleep duration",
          "Time every start and stop takes, to simulate a slow service (bounded by the operation timeout).",
          default="0"),
    Param("fail_start_on", Kind.STRING, "Fail to start on this node",
          "Start fails with a generic error on the node of this name (for recovery tests)."),
)

SPEC = AgentSpec(
    name="Dummy", version="0.1.0", shortdesc="Example stateless resource agent",
    longdesc="A resource that only records whether it runs in a state file: for testing a cluster's "
             "behaviour (constraints, failover, fencing) without real services.",
    params=PARAMS,
    actions=(ActionSpec("start", 20), ActionSpec("stop", 20), ActionSpec("monitor", 20, interval=10, depth=0),
             ActionSpec("reload", 20), ActionSpec("reload-agent", 20), ActionSpec("migrate_to", 20),
             ActionSpec("migrate_from", 20), ActionSpec("meta-data", 5), ActionSpec("validate-all", 20)),
)


def _state(ctx: Context) -> StateFile:
    path = ctx.config.state
    if path:
        path = os.path.abspath(path)
        return StateFile(os.path.dirname(path), os.path.basename(path))
    return StateFile(rsctmp(ctx.env.raw), f"Dummy-{ctx.env.instance}.state")


def _slow(ctx: Context) -> None:
    if ctx.config.op_sleep:
        ctx.deadline.sleep(ctx.config.op_sleep)


def validate(ctx: Context) -> None:
    """Refuse a state path that is a directory; warn about a relative one (heartbeat's Dummy accepts it)."""
    state = ctx.config.state
    if state and os.path.isdir(state):
        raise ConfigError(f"parameter state: {state} is a directory")
    if state and not state.startswith("/") and ctx.action in ("start", "validate-all"):
        ctx.log.warning("parameter state: %r is not an absolute path: taken from the working directory (%s), "
                        "as heartbeat's Dummy does", state, os.getcwd())


def start(ctx: Context) -> int:
    """Record the resource as running."""
    if ctx.config.fail_start_on and ctx.config.fail_start_on == ctx.env.node_name:
        ctx.log.error("start: configured to fail on %s", ctx.env.node_name)
        return OCFExit.ERR_GENERIC
    _slow(ctx)
    _state(ctx).write("running")
    return OCFExit.SUCCESS


def stop(ctx: Context) -> int:
    """Record the resource as stopped."""
    _slow(ctx)
    state = _state(ctx)
    if os.path.isdir(state.path):  # validate refused it: no state file of ours can be there
        return OCFExit.SUCCESS
    state.remove()
    return OCFExit.SUCCESS


def monitor(ctx: Context) -> int:
    """Running when the state file exists."""
    return OCFExit.SUCCESS if _state(ctx).read() == "running" else OCFExit.NOT_RUNNING


def reload_agent(ctx: Context) -> int:
    """Nothing to reload: the reloadable parameter is only read."""
    ctx.log.info("reload-agent: fake=%s", ctx.config.fake)
    return OCFExit.SUCCESS


def migrate_to(ctx: Context) -> int:
    """Live migration, source side (meta allow-migrate=true): the resource leaves this node."""
    ctx.log.info("migrating %s to %s", ctx.env.instance, ctx.env.raw.get("OCF_RESKEY_CRM_meta_migrate_target", "?"))
    return stop(ctx)


def migrate_from(ctx: Context) -> int:
    """Live migration, target side: the resource arrives on this node."""
    ctx.log.info("migrating %s from %s", ctx.env.instance,
                 ctx.env.raw.get("OCF_RESKEY_CRM_meta_migrate_source", "?"))
    return start(ctx)


AGENT = Agent(SPEC, {"start": start, "stop": stop, "monitor": monitor, "reload": reload_agent,
                     "reload-agent": reload_agent, "migrate_to": migrate_to, "migrate_from": migrate_from},
              validate)

if __name__ == "__main__":
    main(AGENT)
