# SPDX-License-Identifier: GPL-2.0-or-later
"""What a Galera node tells the cluster and what it learns from it: its published position (transient node
attributes), its promotion score, its local record (a state file), the durable fencing records, and the
bootstrap decision gathered from crm_mon and handed to the pure recovery.decide."""

from __future__ import annotations

import os

from hamail.ocf import ConfigError, Context, NotInstalled

__all__ = ["PROMOTED_SCORE", "PUBLISHED", "galera_nodes", "names", "Inputs", "gather", "report_of", "attr",
           "load_state", "save_state", "drop_state", "attributes", "scores", "publish", "withdraw", "decision",
           "count_failed_bootstrap", "record_fencings", "show_members", "apply_decision", "number", "FAILURES",
           "SPENT", "override_spent", "spend_override", "unspend_override"]

PROMOTED_SCORE = 100


def galera_nodes(config) -> tuple[list[str], dict[str, str]]:
    """Pacemaker nodes of the Galera cluster (address order) and pacemaker->galera names, from the parameters
    wsrep_cluster_address and cluster_host_map; ConfigError when they are malformed."""
    from hamail.agents.galera.recovery import parse_address, parse_host_map
    try:
        hosts = parse_address(config.wsrep_cluster_address)
    except ValueError as exc:
        raise ConfigError(f"wsrep_cluster_address: {exc}") from None
    try:
        mapping = parse_host_map(config.cluster_host_map or "")
    except ValueError as exc:
        raise ConfigError(f"cluster_host_map: {exc}") from None
    for pcmk, galera in mapping.items():
        if galera not in hosts:
            raise ConfigError(f"cluster_host_map maps {pcmk} to {galera}, which is not in wsrep_cluster_address")
    reverse = {g: p for p, g in mapping.items()}
    if mapping:
        unmapped = [h for h in hosts if h not in reverse]
        if unmapped:
            raise ConfigError(f"cluster_host_map has no Pacemaker node for {', '.join(unmapped)}")
    nodes = [reverse.get(h, h) for h in hosts]
    return nodes, {n: mapping.get(n, n) for n in nodes}


def names(ctx: Context) -> tuple[list[str], dict[str, str], str]:
    """Pacemaker nodes of the Galera cluster (address order), pacemaker->galera names, this node's name;
    NotInstalled when this node is not one of them."""
    nodes, full = galera_nodes(ctx.config)
    me = ctx.env.attribute_target
    if me not in full:
        # Local to this node (an arbitrator, a mail node beside the database nodes): a probe says "not running"
        # and start is refused here only; a 6 would stop the clone on every node.
        raise NotInstalled(f"local node {me} is not in wsrep_cluster_address "
                           f"{ctx.config.wsrep_cluster_address}: no galera instance runs here")
    return nodes, full, me


def attr(ctx: Context, name: str) -> str:
    return f"{ctx.env.clone_base}-{name}"


def state_path(ctx: Context) -> str:
    from hamail.system.files import rsctmp
    return os.path.join(rsctmp(ctx.env.raw), f"hamail-galera-{ctx.env.clone_base}.json")


def load_state(ctx: Context) -> dict | None:
    """This node's local record (absent: the instance is stopped)."""
    try:
        handle = open(state_path(ctx), encoding="utf-8")
    except FileNotFoundError:
        return None  # a probe of a stopped instance ends here, without json (re, enum) on its path
    import json
    with handle:
        try:
            return json.load(handle)
        except ValueError:
            return {}


def save_state(ctx: Context, state: dict) -> None:
    import json
    from hamail.system.files import StateFile
    path = state_path(ctx)
    StateFile(os.path.dirname(path), os.path.basename(path)).write(json.dumps(state, sort_keys=True))


def drop_state(ctx: Context) -> None:
    for path in (state_path(ctx), _members_path(ctx)):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _members_path(ctx: Context) -> str:
    return state_path(ctx)[:-len(".json")] + ".members"


def show_members(ctx: Context, size: int | None, count: int) -> None:
    """Show on this node (attribute <resource>-cluster-members, e.g. "2 of 3") while the running Primary
    component has fewer members than wsrep_cluster_address names, as seed 001 has operators check by hand.

    A small file remembers what is shown, so the healthy path costs one stat and no Pacemaker call.
    """
    path = _members_path(ctx)
    shown = os.path.exists(path)
    if size is None or (size >= count and not shown):
        return
    from hamail.system.files import StateFile
    record = StateFile(os.path.dirname(path), os.path.basename(path))
    try:
        if size >= count:
            attributes(ctx).delete(ctx.env.attribute_target, attr(ctx, "cluster-members"))
            os.unlink(path)
            return
        value = f"{size} of {count}"
        if record.read() != value:
            attributes(ctx).set(ctx.env.attribute_target, attr(ctx, "cluster-members"), value)
            record.write(value)
            ctx.log.warning("the Primary component has %s members of wsrep_cluster_address", value)
    except Exception as exc:  # information for operators must never fail a healthy monitor
        ctx.log.warning("cannot show the component's size: %s", exc)


# ------------------------------------------------------------------------------ Pacemaker side

def attributes(ctx: Context):
    from hamail.pacemaker.attributes import Attributes
    return Attributes(ctx.runner, ctx.deadline)


def scores(ctx: Context, node: str | None = None):
    from hamail.pacemaker.scores import PromotionScore
    return PromotionScore(ctx.runner, ctx.env.instance, node or ctx.env.attribute_target,
                          ctx.env.raw.get("OCF_RESKEY_crm_feature_set", ""), ctx.deadline)


PUBLISHED = ("last-committed", "uuid", "safe-to-bootstrap", "no-grastate", "last-view", "last-view-time",
             "sst-incomplete")
# Kept across stop (a failed promote is followed by stop and start) and dropped once a Primary exists.
FAILURES = "bootstrap-failures"


def publish(ctx: Context, position) -> None:
    """Publish this node's position as transient node attributes (what every node decides from)."""
    attrs, me = attributes(ctx), ctx.env.attribute_target
    values = {"last-committed": str(position.seqno), "uuid": position.uuid,
              "safe-to-bootstrap": "1" if position.safe_to_bootstrap else "0",
              "no-grastate": "1" if position.no_grastate else "0", "last-view": position.view,
              "last-view-time": position.view_time, "sst-incomplete": "1" if position.sst_incomplete else ""}
    # last-committed goes last: its presence tells other nodes this node's report is complete.
    for name in PUBLISHED[1:] + PUBLISHED[:1]:
        if values[name]:
            attrs.set(me, attr(ctx, name), values[name])
        else:
            attrs.delete(me, attr(ctx, name))


def position_record(position) -> dict:
    """What the state file keeps of a published position, to publish it again (republish)."""
    return {"uuid": position.uuid, "seqno": position.seqno, "safe_to_bootstrap": position.safe_to_bootstrap,
            "no_grastate": position.no_grastate, "view": position.view, "view_time": position.view_time,
            "sst_incomplete": position.sst_incomplete, "start_position": position.start_position}


def republish(ctx: Context) -> bool:
    """Publish again what this stopped node last published (Pacemaker erased its transient attributes: it left
    the membership, or Pacemaker restarted); False when there is no record to publish."""
    from hamail.agents.galera.positions import Position
    record = (load_state(ctx) or {}).get("position")
    if not record:
        return False
    try:
        position = Position(**record)
    except TypeError:
        return False
    publish(ctx, position)
    ctx.log.warning("this node's published position was missing from the cluster: published %r again", position)
    return True


def withdraw(ctx: Context) -> None:
    attrs, me = attributes(ctx), ctx.env.attribute_target
    # force-bootstrap too: an override left behind would force this node again at a later outage. Not
    # bootstrap-failures: Pacemaker stops and starts an instance whose promote failed, and the count must last.
    for name in ("last-committed",) + PUBLISHED[1:] + ("bootstrap-wait", "force-bootstrap", "bootstrap-override",
                                                        "cluster-members"):
        attrs.delete(me, attr(ctx, name))


TRUE_WORDS = ("1", "true", "yes")


class Inputs:
    """Everything a bootstrap decision is made from, as read from Pacemaker (hamail-galera status shows it)."""

    def __init__(self, nodes, reports, primary, fenced, since_join, status, base, config, arbitrators,
                 override_spent: bool = False) -> None:
        self.nodes = nodes                  # the Galera nodes' Pacemaker names, in address order
        self.reports = reports              # {node: recovery.NodeReport}
        self.primary = primary              # nodes (other than the caller's) running a Promoted instance
        self.fenced = fenced                # nodes counted as provably down
        self.since_join = since_join        # {missing node: its fencing since it last joined, or None}
        self.status = status                # the crm_mon reading (hamail.pacemaker.crmmon.ClusterStatus)
        self.base = base                    # the resource's name, without clone instance
        self.config = config                # the resource's parameters
        self.arbitrators = arbitrators      # gcomm ids of known arbitrators (garbd)
        self.override_spent = override_spent  # force_bootstrap_node was already set while a Primary ran

    @property
    def online(self) -> frozenset[str]:
        """Nodes Pacemaker sees online."""
        return frozenset(self.status.online_nodes())

    def pending(self) -> frozenset[str]:
        """Galera nodes where an instance runs or is about to (online, not in standby) that have not reported."""
        return frozenset(n for n in self.nodes if n in self.status.nodes and self.status.nodes[n].online
                         and not self.status.nodes[n].standby and not self.reports[n].reported
                         and n not in self.primary)

    def decide(self, override: str | None | bool = False):
        """The agent's decision from these inputs (recovery.decide); override False: the resource's own."""
        from hamail.agents.galera.recovery import decide
        ignored = None
        if override is False:
            override = self.config.force_bootstrap_node or None
            if override and self.override_spent:
                ignored, override = override, None
        chosen = decide(self.nodes, self.reports, primary_nodes=self.primary, fenced=self.fenced,
                        online=self.online, override=override, two_node=self.config.two_node_mode,
                        arbitrators=self.arbitrators, pending=self.pending())
        chosen.reporting = tuple(n for n in self.nodes if self.reports[n].reported)
        if ignored and chosen.action == "wait":
            chosen.reason += (f"; force_bootstrap_node={ignored} is ignored: it was already set while a Primary "
                              "component ran, and an override is for the outage it is set in (set it again, or "
                              f"attrd_updater -n {self.base}-force-bootstrap -U 1 -N {ignored})")
        return chosen

    def history(self) -> list[str]:
        """The fencing history the decision saw, for logs."""
        history = sorted(f"{e.target}:{e.action}:{e.status}@{e.completed}" for e in self.status.fencing
                         if e.target in self.nodes)
        return history + [f"{n}:fenced@{when(t)} since it last joined" if t else f"{n}:not fenced since it last joined"
                          for n, t in sorted(self.since_join.items())]


def report_of(status, base: str, node: str):
    """What node published about its data, as crm_mon shows its attributes (a recovery.NodeReport)."""
    from hamail.agents.galera.recovery import NodeReport, View

    def attr_of(name: str) -> str | None:
        return status.node_attribute(node, f"{base}-{name}")
    return NodeReport(node, attr_of("uuid"), number(attr_of("last-committed")),
                      attr_of("safe-to-bootstrap") == "1", attr_of("no-grastate") == "1",
                      View.decode(attr_of("last-view")), (attr_of("force-bootstrap") or "").lower() in TRUE_WORDS,
                      number(attr_of("last-view-time")), attr_of("sst-incomplete") == "1",
                      number(attr_of(FAILURES)) or 0)


def gather(runner, deadline, base: str, config, me: str | None = None, status=None, log=None) -> Inputs:
    """Read what a bootstrap decision needs from Pacemaker, changing nothing: every node's report (crm_mon's node
    attributes), Promoted instances other than me's, which missing nodes count as down (fencing since they last
    joined; two_node_mode's clean leave), and the arbitrators when a missing node's last view matters."""
    from hamail.pacemaker.crmmon import read_cluster_status
    nodes, _ = galera_nodes(config)
    status = status if status is not None else read_cluster_status(runner, deadline)
    # In a bundle an instance runs on a guest node (galera-bundle-0); with container-attribute-target=host the
    # Galera nodes named in the parameters are the hosts, so such an instance counts for its container's host.
    running = {n if n in nodes else status.host_of(n) for r in status.instances(base)
               if r.role in ("Promoted", "Master") and r.active for n in r.nodes}
    primary = tuple(sorted(running - {me}))
    reports = {node: report_of(status, base, node) for node in nodes}
    records = fencing_records_of(runner, base, deadline)
    online = set(status.online_nodes())
    fenced, since_join = set(), {}
    for node in nodes:
        if node in online or reports[node].reported:
            continue
        since_join[node] = records.fenced_since_joined(node, status)
        if since_join[node] is not None:
            fenced.add(node)
    if config.two_node_mode and len(nodes) == 2:
        # A peer that left cleanly (Pacemaker shut it down: expected down) stopped Galera cleanly, so it is as
        # provably down as a fenced one; the last-view rule in decide still applies to it. "Offline" alone
        # proves nothing: both halves of a split see the other offline.
        for node in nodes:
            info = status.nodes.get(node)
            if (node != me and node not in online and not reports[node].reported and info is not None
                    and not info.expected_up and not info.unclean):
                if log is not None:
                    log.info("two_node_mode: %s left the cluster cleanly: counted as down", node)
                fenced.add(node)
    arbitrators = frozenset()
    if not primary and fenced:
        # Only a missing node's last-view check needs them: a garbd beside the database nodes is a view member.
        from hamail.pacemaker.arbitrators import known
        arbitrators = known(runner, sorted(status.nodes), deadline)
    spent = bool(config.force_bootstrap_node) and not primary and override_spent(runner, base, config, deadline)
    return Inputs(nodes, reports, primary, frozenset(fenced), since_join, status, base, config, arbitrators, spent)


SPENT = "force-bootstrap-spent"


def override_spent(runner, base: str, config, deadline=None) -> bool:
    """Whether the force_bootstrap_node parameter was already set while a Primary component ran (permanent
    attribute <base>-force-bootstrap-spent on the node it names): left in place, it is not for this outage."""
    from hamail.pacemaker.attributes import PermanentAttributes
    return PermanentAttributes(runner, deadline).get(config.force_bootstrap_node, f"{base}-{SPENT}") == "1"


def spend_override(ctx: Context) -> None:
    """A Primary component runs while force_bootstrap_node is set: mark it spent, so that, forgotten, it cannot
    bootstrap the node it names over newer data at a later outage (reload-agent clears the mark when an operator
    sets the parameter again). Costs one Pacemaker call per Promoted monitor while the parameter stays set."""
    from hamail.pacemaker.attributes import PermanentAttributes
    node = ctx.config.force_bootstrap_node
    try:
        store = PermanentAttributes(ctx.runner, ctx.deadline)
        if store.get(node, attr(ctx, SPENT)) != "1":
            store.set(node, attr(ctx, SPENT), "1")
            ctx.log.warning("force_bootstrap_node=%s is set while a Primary component runs: it will not apply at a "
                            "later outage unless set again (remove it: crm_resource -r %s --delete-parameter "
                            "force_bootstrap_node)", node, ctx.env.clone_base)
    except Exception as exc:  # bookkeeping must never fail a healthy monitor
        ctx.log.warning("cannot mark force_bootstrap_node spent: %s", exc)


def unspend_override(ctx: Context) -> None:
    """force_bootstrap_node changed (reload-agent): an operator set it for now; clear every spent mark."""
    from hamail.pacemaker.attributes import PermanentAttributes
    store = PermanentAttributes(ctx.runner, ctx.deadline)
    for node in galera_nodes(ctx.config)[0]:
        store.delete(node, attr(ctx, SPENT))


def decision(ctx: Context):
    """Gather every node's report from Pacemaker and decide (pure logic in hamail.agents.galera.recovery); publish
    this node's report again if Pacemaker lost it, tidy overrides once a Primary exists, log the decision with
    everything it was based on."""
    from hamail.agents.galera.recovery import NodeReport, View
    me = names(ctx)[2]
    base = ctx.env.clone_base
    inputs = gather(ctx.runner, ctx.deadline, base, ctx.config, me, log=ctx.log)
    reports = inputs.reports
    if not reports[me].reported and me not in inputs.primary and republish(ctx):
        record = (load_state(ctx) or {})["position"]
        reports[me] = NodeReport(me, record["uuid"], record["seqno"], record["safe_to_bootstrap"],
                                 record["no_grastate"], View.decode(record["view"]), reports[me].force,
                                 number(record["view_time"]), bool(record.get("sst_incomplete")),
                                 reports[me].failed_bootstraps)
    chosen = inputs.decide()
    if inputs.primary:
        # A Primary component exists: an override attribute has done its job (or was never needed), and
        # failed bootstraps of the last outage say nothing about the next one.
        for node in inputs.nodes:
            for name, present in (("force-bootstrap", reports[node].force),
                                  (FAILURES, reports[node].failed_bootstraps)):
                if present:
                    attributes(ctx).delete(node, attr(ctx, name))
                    ctx.log.info("removed %s's %s: a Primary component exists", node, attr(ctx, name))
    if chosen.overridden:
        ctx.log.warning("OPERATOR OVERRIDE: %s", chosen.reason)
    ctx.log.info("bootstrap decision: %s %s: %s [reports: %s; counted as fenced: %s; fencing: %s; online: %s; "
                 "pending: %s; arbitrators: %s]", chosen.action, chosen.node or "-", chosen.reason,
                 list(reports.values()), sorted(inputs.fenced), inputs.history(), sorted(inputs.online),
                 sorted(inputs.pending()), sorted(inputs.arbitrators))
    return chosen


def fencing_records_of(runner, base: str, deadline=None):
    """The durable fencing records of the resource `base` (permanent node attribute <base>-fenced-at)."""
    from hamail.pacemaker.fencing import FencingRecords
    return FencingRecords(runner, f"{base}-fenced-at", deadline)


def fencing_records(ctx: Context):
    """This resource's durable fencing records."""
    return fencing_records_of(ctx.runner, ctx.env.clone_base, ctx.deadline)


def note_joined(ctx: Context) -> None:
    """Before this node enters a Primary component: note in the CIB the newest fencing of it known now, so that
    only a later fencing ever excuses it from a recovery (FencingRecords.fenced_since_joined)."""
    from hamail.pacemaker.crmmon import read_cluster_status
    me = ctx.env.attribute_target
    try:
        fencing_records(ctx).note_joined(me, read_cluster_status(ctx.runner, ctx.deadline))
    except Exception as exc:
        # Not noted: an older fencing could later be taken as proof that this node is down. It would still have
        # to be absent from every survivor's last Primary view (recovery.decide), which it is not once joined.
        ctx.log.error("cannot note this node's return in the CIB: %s", exc)


def count_failed_bootstrap(ctx: Context, why: str) -> int:
    """Count a failed bootstrap of this node where every node sees it (<resource>-bootstrap-failures); the
    decision stops choosing a node whose bootstrap failed recovery.BOOTSTRAP_ATTEMPTS times."""
    from hamail.agents.galera.recovery import BOOTSTRAP_ATTEMPTS
    me, name = ctx.env.attribute_target, attr(ctx, FAILURES)
    try:
        count = (number(attributes(ctx).get(me, name)) or 0) + 1
        attributes(ctx).set(me, name, str(count))
    except Exception as exc:  # the failure itself is what the action reports
        ctx.log.warning("could not count the failed bootstrap: %s", exc)
        return 0
    ctx.log.error("bootstrap of this node failed (%d of %d attempts before another node or an operator must "
                  "take over): %s", count, BOOTSTRAP_ATTEMPTS, why)
    return count


def record_fencings(ctx: Context) -> None:
    """While this Primary component lacks nodes, copy their fencings from the history into the CIB.

    Pacemaker keeps the fencing history in pacemaker-fenced's memory only: after the survivors lose power
    too, nobody remembers that the missing node was fenced, and recovery would wait for it forever. The
    record (hamail.pacemaker.fencing, permanent node attribute <resource>-fenced-at) survives that; it counts
    only while it is newer than the fencing the node had already come back from when it last joined a Primary
    component (note_joined), so a stale one is harmless. Only a Promoted monitor of a shrunk component pays for
    this.
    """
    nodes, _, me = names(ctx)
    try:
        from hamail.pacemaker.crmmon import read_cluster_status
        status = read_cluster_status(ctx.runner, ctx.deadline)
        for node, completed in fencing_records(ctx).record_missing(status, nodes, me):
            ctx.log.info("recorded the fencing of %s (completed %s) for a later recovery", node, when(completed))
    except Exception as exc:  # bookkeeping for a later outage must never fail a healthy monitor
        ctx.log.warning("cannot record fencings of missing nodes: %s", exc)


def number(text: str | None) -> int | None:
    """An integer attribute value, None when absent or malformed."""
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


def when(epoch: float | None) -> str:
    """A UTC timestamp for logs ('never' for None)."""
    if epoch is None:
        return "never"
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def apply_decision(ctx: Context, state: dict) -> str:
    """Set or withdraw this node's promotion score from the decision; return the wait reason ('' if none)."""
    chosen = decision(ctx)
    me = ctx.env.attribute_target
    want = PROMOTED_SCORE if chosen.action == "join" or chosen.node == me else None
    wait = chosen.reason if chosen.action == "wait" else ""
    if want != state.get("score"):
        if want is None:
            scores(ctx).delete()
        else:
            scores(ctx).set(want)
        state["score"] = want
    if wait != state.get("wait", ""):
        if wait:
            attributes(ctx).set(me, attr(ctx, "bootstrap-wait"), wait[:500])
        else:
            attributes(ctx).delete(me, attr(ctx, "bootstrap-wait"))
        state["wait"] = wait
    state["decision"] = chosen.action
    state["bootstrap"] = chosen.node == me and chosen.action == "bootstrap"
    if chosen.overridden and chosen.node == me and state.get("override") != chosen.reason:
        # Shown where operators look (crm_mon -A) for as long as this instance runs.
        attributes(ctx).set(me, attr(ctx, "bootstrap-override"), chosen.reason[:500])
        state["override"] = chosen.reason
    save_state(ctx, state)
    return wait
