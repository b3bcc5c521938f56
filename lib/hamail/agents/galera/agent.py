# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:galera: a promotable MariaDB Galera agent that recovers the cluster by itself, safely.

Roles as in ocf:heartbeat:galera: Unpromoted = mariadbd NOT running, its recovered position published as
transient node attributes; Promoted = mariadbd running in the Primary component. Who bootstraps is decided by
hamail.agents.galera.recovery.decide (pure) from what cluster gathers from Pacemaker; positions reads where
this node's data ends; server runs mariadbd and asks it for its status (PyMySQL, through
hamail.adapters.mysql). This module declares the parameters and the actions.
"""

from __future__ import annotations

import os

from hamail.agents.galera import cluster, positions, server
from hamail.agents.galera.server import JOINED, JOINING, POLL_LONGEST
from hamail.ocf import ActionSpec, Agent, AgentSpec, ConfigError, Context, Kind, NotInstalled, OCFError, OCFExit
from hamail.ocf import Param, ParamTable, main

PARAMS = ParamTable(
    Param("binary", Kind.PATH, "MariaDB server binary",
          "The server binary: mariadbd/mysqld, or mysqld_safe as heartbeat galera uses.", default="/usr/bin/mysqld_safe"),
    Param("client_binary", Kind.STRING, "MySQL client binary",
          "Accepted for compatibility with ocf:heartbeat:galera; unused (hamail talks to the server with PyMySQL "
          "over the socket, never through the client with a password in argv).", default="mysql"),
    Param("config", Kind.PATH, "Configuration file", "The server's option file (--defaults-file).",
          default="/etc/mysql/my.cnf"),
    Param("datadir", Kind.PATH, "Data directory", "Directory holding the databases, grastate.dat and gvwstate.dat.",
          default="/var/lib/mysql"),
    Param("user", Kind.STRING, "Server user", "Unix user the server runs as and owns the data.", default="mysql"),
    Param("group", Kind.STRING, "Server group", "Unix group of the server's files.", default="mysql"),
    Param("log", Kind.PATH, "Error log", "The server's error log (--log-error).", default="/var/log/mysql/error.log"),
    Param("pid", Kind.PATH, "PID file", "The server's pid file.", default="/var/run/mysqld/mysqld.pid"),
    Param("socket", Kind.PATH, "Socket", "The server's unix socket; the agent connects through it.",
          default="/var/run/mysqld/mysqld.sock"),
    Param("enable_creation", Kind.BOOLEAN, "Create the database if absent",
          "Initialise an empty data directory with mariadb-install-db on start.", default="false"),
    Param("additional_parameters", Kind.STRING, "Additional server parameters",
          "Extra command-line options for the server (split like a shell would, never run through one)."),
    Param("wsrep_cluster_address", Kind.STRING, "Galera cluster address",
          "gcomm://host1,host2,host3: every Galera node. Only nodes named here may run an instance.", required=True),
    Param("cluster_host_map", Kind.STRING, "Pacemaker to Galera host names",
          "pcmk1:gal1;pcmk2:gal2 when the names in wsrep_cluster_address differ from Pacemaker node names."),
    Param("check_user", Kind.STRING, "Check user",
          "User the monitor logs in as over the socket. Unset: MYSQL_USERNAME of /etc/sysconfig/clustercheck or "
          "/etc/default/clustercheck, as heartbeat galera, else root through unix_socket authentication."),
    Param("check_passwd", Kind.STRING, "Check password",
          "Password of check_user (prefer credentials_file). Unset: MYSQL_PASSWORD of the clustercheck file, as "
          "heartbeat galera.", private=True),
    Param("check_passwd_use_empty", Kind.BOOLEAN, "Use an empty check password",
          "Accepted for compatibility; an empty check_passwd always means no password here.", default="false"),
    Param("credentials_file", Kind.PATH, "Check credentials file",
          "An option file ([client] user=..., password=...) of mode 0600 holding the check credentials; "
          "overrides check_user/check_passwd and keeps the password out of the CIB."),
    Param("two_node_mode", Kind.BOOLEAN, "Two-node mode",
          "In a two-node cluster, a peer that left the cluster cleanly (Pacemaker shut it down) counts as down, "
          "as a fenced one does; the rule that a missing node must not have been in the survivor's last Primary "
          "view still holds. Unlike heartbeat galera, being offline alone proves nothing (both halves of a split "
          "see the other offline).", default="false"),
    Param("sync_allowance", Kind.DURATION, "SST/IST allowance",
          "How long a joining node may stay in Joining/Joined (state transfer) before the monitor fails it. "
          "promote returns once the server runs and joins; the transfer continues under this allowance.",
          default="3600s"),
    Param("force_bootstrap_node", Kind.STRING, "Operator override: bootstrap this node",
          "The automated form of --force-safe-to-bootstrap: when no Primary component exists, this Pacemaker node "
          "bootstraps even though the agent cannot prove it holds the newest data (e.g. a node that was in the last "
          "Primary view never returns). The same is achieved for one occasion with the transient node attribute "
          "<resource>-force-bootstrap=1 (attrd_updater -n galera-force-bootstrap -U 1 -N node), which the agent "
          "removes once a Primary component exists. An override only ever ends a wait: when the data proves a "
          "node newest, that node bootstraps whatever the override says. Each use is logged and shown as the "
          "node attribute <resource>-bootstrap-override. Reloadable: changing it restarts nothing. Still set while a "
          "Primary component runs, it is marked spent and applies to no later outage (set it again for that one).",
          reloadable=True),
)

SPEC = AgentSpec(
    name="galera", version="0.1.0", shortdesc="MariaDB Galera promotable clone that recovers the cluster safely",
    longdesc="Manages a MariaDB Galera node as a promotable clone (promoted-max = number of nodes), with the "
             "parameters of ocf:heartbeat:galera. Unpromoted instances publish their recovered position "
             "(grastate.dat or --wsrep-recover) as node attributes; the node with safe_to_bootstrap=1, else the "
             "highest seqno of the cluster's uuid, bootstraps once every node reported or the missing ones are "
             "fenced and provably not in the survivors' last Primary view; the others join. The reason for any wait "
             "is in the exit reason and the <resource>-bootstrap-wait attribute.",
    params=PARAMS,
    actions=(ActionSpec("start", 120), ActionSpec("stop", 120),
             ActionSpec("monitor", 30, interval=20, depth=0, role="Unpromoted"),
             ActionSpec("monitor", 30, interval=10, depth=0, role="Promoted"), ActionSpec("status", 20),
             ActionSpec("promote", 300), ActionSpec("demote", 120), ActionSpec("notify", 20),
             ActionSpec("reload-agent", 20),
             ActionSpec("meta-data", 5), ActionSpec("validate-all", 20)),
)


def validate(ctx: Context) -> None:
    """Checks beyond types: address and host map, the clone it runs in, files and accounts this node needs."""
    nodes, _, _ = cluster.names(ctx)
    cfg = ctx.config
    if cfg.credentials_file:
        server.credentials(ctx)  # a readable-by-others or malformed file is a configuration error on every action
    _check_clone(ctx, len(nodes))
    # What follows is a fact about this node (NotInstalled): the instance is kept off this node only.
    if ctx.runner.find(cfg.binary) is None:
        raise NotInstalled(f"server binary {cfg.binary} is not installed or not executable")
    if not os.path.isfile(cfg.config):
        raise NotInstalled(f"config file {cfg.config} does not exist")
    if not os.path.isdir(cfg.datadir) and not cfg.enable_creation:
        raise NotInstalled(f"datadir {cfg.datadir} does not exist on this node (set enable_creation=true to "
                           "create it)")
    import grp
    import pwd
    try:
        pwd.getpwnam(cfg.user)
    except KeyError:
        raise NotInstalled(f"user {cfg.user} does not exist on this node") from None
    try:
        grp.getgrnam(cfg.group)
    except KeyError:
        raise NotInstalled(f"group {cfg.group} does not exist on this node") from None


def _check_clone(ctx: Context, count: int) -> None:
    """Refuse a clone that can never run the cluster: not promotable, or fewer Promoted instances than nodes.

    Pacemaker passes a clone's meta attributes to every action (a promotable clone's include promoted_max and
    master_max, a plain clone's only clone_max) and crm_feature_set to every agent; an agent run by hand
    (ocf-tester, an operator) has neither and is not checked.
    """
    env = ctx.env
    if not env.meta("clone_max") and not env.raw.get("OCF_RESKEY_crm_feature_set"):
        return
    name = env.clone_base
    fix_crm = f"crm configure clone {name}-clone {name} meta promotable=true promoted-max={count} notify=true"
    fix_pcs = f"pcs resource promotable {name} promoted-max={count} notify=true"
    promotable = (env.meta("promotable").lower() in ("true", "1", "yes", "on") or env.meta("promoted_max")
                  or env.meta("master_max"))
    if not env.meta("clone_max") or not promotable:
        raise ConfigError(f"galera must run as a promotable clone (the server runs only in Promoted "
                          f"instances): {fix_pcs} (crm: {fix_crm})")
    promoted = env.meta("promoted_max") or env.meta("master_max") or "1"
    try:
        promoted_max = int(promoted)
    except ValueError:
        promoted_max = 0
    if promoted_max < count:
        raise ConfigError(f"promoted-max is {promoted} but wsrep_cluster_address names {count} nodes: only "
                          f"{promoted} of them would ever run the server; set promoted-max={count} "
                          f"(pcs resource meta {name}-clone promoted-max={count}; crm resource meta "
                          f"{name}-clone set promoted-max {count})")


# ------------------------------------------------------------------------------ actions

def start(ctx: Context) -> int:
    """Unpromoted start: recover and publish this node's position, then take part in the bootstrap decision."""
    if server.pid(ctx) is not None:
        status = server.wsrep_status(ctx)
        raise OCFError(OCFExit.ERR_GENERIC, f"the server is already running outside the cluster's control "
                       f"({server.primary_ok(status)[1]}); stop it first")
    server.prepare_dirs(ctx)
    position = positions.recover(ctx)
    cluster.publish(ctx, position)
    state = {"uuid": position.uuid, "seqno": position.seqno, "score": "unset",
             "position": cluster.position_record(position)}
    cluster.save_state(ctx, state)
    wait = cluster.apply_decision(ctx, state)
    if wait:
        ctx.log.info("start: %s", wait)
    return OCFExit.SUCCESS


def _undo_unfinished_bootstrap(ctx: Context, state: dict) -> None:
    """A bootstrap whose promote never finished leaves no safe_to_bootstrap=1 of ours behind (the server is down)."""
    if state.get("bootstrap") and state.get("wrote_safe"):
        ctx.log.warning("the bootstrap of this node did not finish: clearing the safe_to_bootstrap=1 it wrote")
        positions.set_safe_to_bootstrap(ctx, False)
        state.pop("wrote_safe", None)
        state["bootstrap"] = False
        cluster.save_state(ctx, state)


def stop(ctx: Context) -> int:
    """Stop the server cleanly and withdraw everything this instance published."""
    if server.pid(ctx) is not None:
        positions.keep_view(ctx)  # a clean shutdown makes Galera remove gvwstate.dat
    server.stop(ctx)
    _undo_unfinished_bootstrap(ctx, cluster.load_state(ctx) or {})
    had_state = cluster.load_state(ctx) is not None
    cluster.drop_state(ctx)
    try:
        cluster.withdraw(ctx)
        cluster.scores(ctx).delete()
    except Exception as exc:  # attrd gone (node leaving): nothing left to withdraw from
        if had_state:
            ctx.log.warning("stop: could not withdraw attributes: %s", exc)
    return OCFExit.SUCCESS


class GaleraResource:
    """The Promotable side: observe the server and the two transitions (used by PromotableResource)."""

    def observe(self, ctx: Context):
        """Promoted when the server runs Primary and Synced/Donor; joiners within the allowance are degraded."""
        from hamail.adapters.mysql import MySQLError
        from hamail.promotable import Observation, Role
        # The state file (json) is read only off the healthy Promoted path: that path runs every 10 s.
        if server.pid(ctx) is None:
            if cluster.load_state(ctx) is None:
                return Observation(Role.STOPPED)
            return Observation(Role.UNPROMOTED, keep_score=True)
        try:
            status = server.wsrep_status(ctx)
        except MySQLError as exc:
            return Observation(Role.PROMOTED, healthy=False, reason=f"server running but not answering: {exc}",
                               keep_score=True)
        ok, desc = server.primary_ok(status)
        if ok:
            if ctx.env.check_level >= 10:
                self.read_check(ctx)
            if ctx.env.interval_ms:
                size = server.database_members(status)
                count = len(cluster.names(ctx)[0])
                if size not in (None, count):
                    cluster.record_fencings(ctx)
                cluster.show_members(ctx, size, count)
                if ctx.config.force_bootstrap_node:
                    cluster.spend_override(ctx)
            return Observation(Role.PROMOTED, score=cluster.PROMOTED_SCORE, keep_score=not ctx.env.is_probe, reason="")
        component = status.get("wsrep_cluster_status", "")
        local = int(status.get("wsrep_local_state", "0") or 0)
        if component == "Primary" and local in (JOINING, JOINED, 0):
            import time
            since = (cluster.load_state(ctx) or {}).get("joining_since") or time.time()
            elapsed = time.time() - since
            if elapsed <= ctx.config.sync_allowance:
                return Observation(Role.PROMOTED, degraded=True, keep_score=True,
                                   reason=f"joining: {desc}; {elapsed:.0f} s of the {ctx.config.sync_allowance:.0f} s "
                                          "sync allowance used")
            return Observation(Role.PROMOTED, healthy=False, keep_score=True,
                               reason=f"still not synced after {elapsed:.0f} s (sync_allowance): {desc}")
        return Observation(Role.PROMOTED, healthy=False, keep_score=True,
                           reason=f"local node {ctx.env.attribute_target} is running but not in a usable Primary "
                                  f"component: {desc}")

    def read_check(self, ctx: Context) -> None:
        """Depth 10: a real read query as check_user (a wedged server passes status queries)."""
        from hamail.adapters.mysql import MySQLError
        try:
            with server.connect(ctx) as conn:
                conn.query("SELECT COUNT(*) FROM information_schema.SCHEMATA")
        except MySQLError as exc:
            user = server.credentials(ctx).user
            raise OCFError(OCFExit.FAILED_PROMOTED, f"read query as {user!r} failed: {exc}") from None

    def do_promote(self, ctx: Context) -> None:
        """Bootstrap (the chosen node) or join (a Primary exists); refuse otherwise."""
        import time
        state = cluster.load_state(ctx) or {}
        decision = cluster.decision(ctx)
        me = ctx.env.attribute_target
        if decision.action == "join":
            state["joining_since"] = time.time()
            cluster.save_state(ctx, state)
            positions.forget_view(ctx)
            cluster.note_joined(ctx)
            server.start(ctx, *_start_position(state))
            return
        if decision.action == "bootstrap" and decision.node == me:
            state["joining_since"] = time.time()
            state["bootstrap"] = True
            state["bootstrap_attempt"] = True  # until the promote ends: a failure is counted (promote)
            state["joiners"] = [n for n in decision.reporting if n != me]  # promoted at once when Primary
            cluster.save_state(ctx, state)
            # Written immediately before --wsrep-new-cluster; recorded so that no failure path leaves our 1
            # behind (it would win the next outage's decision): see _undo_unfinished_bootstrap.
            previous = positions.set_safe_to_bootstrap(ctx, True)
            if not previous:
                state["wrote_safe"] = True
                cluster.save_state(ctx, state)
            ctx.log.info("bootstrapping a new Primary component: %s", decision.reason)
            positions.forget_view(ctx)
            cluster.note_joined(ctx)
            try:
                server.start(ctx, "--wsrep-new-cluster", *_start_position(state))
            except BaseException:
                if server.pid(ctx) is None:
                    _undo_unfinished_bootstrap(ctx, state)
                raise
            return
        raise OCFError(OCFExit.ERR_GENERIC, f"no Primary component to join and this node is not the bootstrap node "
                       f"({decision.node or 'none'}: {decision.reason})")

    def do_demote(self, ctx: Context) -> None:
        """Stop the server; the next observation is Unpromoted."""
        server.stop(ctx)


def _start_position(state: dict) -> list[str]:
    """--wsrep-start-position for a server whose position only --wsrep-recover knew (grastate.dat says -1)."""
    start = (state.get("position") or {}).get("start_position")
    return [f"--wsrep-start-position={start}"] if start else []


def monitor(ctx: Context) -> int:
    """Promoted: status over the socket only. Unpromoted: re-run the bootstrap decision."""
    impl = GaleraResource()
    obs = impl.observe(ctx)
    from hamail.promotable import Role
    if obs.role is Role.UNPROMOTED:
        state = cluster.load_state(ctx) or {}
        wait = cluster.apply_decision(ctx, state)
        if wait:
            ctx.log.info("monitor: %s", wait)
        return OCFExit.SUCCESS
    if obs.role is Role.STOPPED and ctx.env.is_probe:
        return OCFExit.NOT_RUNNING
    from hamail.promotable import PromotableResource
    # The observation above is reused: observing again would query the server a second time.
    return PromotableResource(impl, cluster.scores(ctx)).monitor(ctx, obs)


def promote(ctx: Context) -> int:
    """Start the server as bootstrap or joiner; return once it is Primary (Synced, or transferring state)."""
    try:
        return _promote(ctx)
    except OCFError as exc:
        _bootstrap_failed(ctx, exc.reason)
        raise
    except Exception as exc:
        _bootstrap_failed(ctx, f"{type(exc).__name__}: {exc}")
        raise


def _bootstrap_failed(ctx: Context, why: str) -> None:
    """A bootstrap of this node that failed is counted where every node's decision sees it."""
    state = cluster.load_state(ctx) or {}
    if state.pop("bootstrap_attempt", None):
        cluster.save_state(ctx, state)
        cluster.count_failed_bootstrap(ctx, why)


def _promote(ctx: Context) -> int:
    """promote's work: start (bootstrap or join), then wait until Primary."""
    from hamail.system.clock import DeadlineExceeded, poll
    impl = GaleraResource()
    state = cluster.load_state(ctx)
    if state is None:
        raise OCFError(OCFExit.ERR_GENERIC, "cannot promote: the instance is not started")
    if server.pid(ctx) is None:
        impl.do_promote(ctx)
    last: list = []

    def settled():
        """The status once Primary and Synced (or transferring late in the timeout), else None."""
        from hamail.adapters.mysql import MySQLError
        if server.pid(ctx) is None:
            raise OCFError(OCFExit.ERR_GENERIC, "promote: the server exited before it was Primary"
                           + server.log_errors(ctx))
        try:
            status = server.wsrep_status(ctx)
        except MySQLError as exc:
            # Starting, finishing a state transfer, briefly refusing connections: expected here, so wait.
            last[:] = [f"not answering: {exc}"]
            return None
        last[:] = [server.primary_ok(status)[1]]
        ok, _ = server.primary_ok(status)
        if ok:
            return status
        # A joiner in SST/IST is Primary but not yet Synced: past half the promote timeout, hand the
        # rest of the transfer to the monitor's sync_allowance instead of failing the promotion.
        if (status.get("wsrep_cluster_status") == "Primary" and status.get("wsrep_local_state") in ("1", "3")
                and ctx.deadline.remaining() < promote_budget / 2):
            return status
        return None
    promote_budget = ctx.deadline.remaining()
    try:
        status = poll(ctx.deadline.sub(max(1.0, ctx.deadline.remaining() - 3)), settled,
                      what="Primary and Synced", longest=POLL_LONGEST)
    except DeadlineExceeded:
        raise OCFError(OCFExit.ERR_GENERIC, f"promote: not Primary before the timeout "
                                            f"({last[0] if last else 'no status'})") from None
    ok, desc = server.primary_ok(status)
    if server.read_only(ctx):
        raise OCFError(OCFExit.ERR_GENERIC, "promote: the server came up read_only=ON (an option file sets it?): "
                                            "a Promoted galera node must accept writes")
    ctx.log.info("promote: %s (%s)", "done" if ok else "joined, state transfer continues under sync_allowance", desc)
    state = cluster.load_state(ctx) or {}
    was_bootstrap = state.get("bootstrap")
    joiners = state.pop("joiners", None) or []
    state.update(score=cluster.PROMOTED_SCORE, wait="", decision="promoted", bootstrap=False)
    state.pop("wrote_safe", None)
    state.pop("bootstrap_attempt", None)
    cluster.save_state(ctx, state)
    cluster.scores(ctx).set(cluster.PROMOTED_SCORE)
    # force-bootstrap too: an override left behind would force this node again at the next outage,
    # whatever the others hold by then; failures of this outage's bootstraps are history once Primary
    for name in cluster.PUBLISHED + ("bootstrap-wait", "force-bootstrap", cluster.FAILURES):
        cluster.attributes(ctx).delete(ctx.env.attribute_target, cluster.attr(ctx, name))
    if was_bootstrap:
        _promote_everyone(ctx, joiners)
    return OCFExit.SUCCESS


def _promote_everyone(ctx: Context, joiners: list) -> None:
    """After a bootstrap, let the other nodes that reported to the decision join now, in the transition that
    follows, rather than at their next Unpromoted monitor (up to a whole interval later).

    The list is the decision's own (not a query of their attributes now: attrd may answer "does not exist"
    for a name this node has just deleted its own value of).
    """
    for node in joiners:
        try:
            cluster.scores(ctx, node).set(cluster.PROMOTED_SCORE)
            ctx.log.info("bootstrap done: %s may join", node)
        except Exception as exc:  # an optimisation only: the others' monitors do the same
            ctx.log.warning("could not set the promotion score of %s: %s", node, exc)


def demote(ctx: Context) -> int:
    """Stop the server, then publish the position its clean shutdown left in grastate.dat."""
    if server.pid(ctx) is not None:
        positions.keep_view(ctx)  # a clean shutdown makes Galera remove gvwstate.dat
    server.stop(ctx)
    _undo_unfinished_bootstrap(ctx, cluster.load_state(ctx) or {})
    cluster.scores(ctx).delete()
    if cluster.load_state(ctx) is None:
        return OCFExit.SUCCESS
    position = positions.recover(ctx)
    cluster.publish(ctx, position)
    state = {"uuid": position.uuid, "seqno": position.seqno, "score": None,
             "position": cluster.position_record(position)}
    cluster.save_state(ctx, state)
    return OCFExit.SUCCESS


def status(ctx: Context) -> int:
    """As heartbeat galera's status: whether the server process runs here (no role, no cluster state)."""
    return OCFExit.SUCCESS if server.pid(ctx) is not None else OCFExit.NOT_RUNNING


def reload_agent(ctx: Context) -> int:
    """Reloadable parameters (force_bootstrap_node) are read at every action: nothing to restart. An operator
    changed the override: it is meant for now, so earlier uses no longer mark it spent."""
    ctx.log.info("reload-agent: force_bootstrap_node=%s", ctx.config.force_bootstrap_node or "(none)")
    try:
        cluster.unspend_override(ctx)
    except Exception as exc:  # noqa: BLE001 - a Primary marks it spent again; a stale mark only makes an override wait
        ctx.log.warning("cannot clear the spent marks of force_bootstrap_node: %s", exc)
    return OCFExit.SUCCESS


def notify(ctx: Context) -> int:
    """Nothing to do: decisions come from node attributes and crm_mon, not from notifications."""
    return OCFExit.SUCCESS


AGENT = Agent(SPEC, {"start": start, "stop": stop, "monitor": monitor, "promote": promote, "demote": demote,
                     "notify": notify, "status": status, "reload-agent": reload_agent}, validate)

if __name__ == "__main__":
    main(AGENT)
