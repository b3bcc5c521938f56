# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:drbd: a DRBD resource as a promotable clone, with ocf:linbit:drbd's parameters and score policy.

State comes from the kernel through drbd-utils (``hamail.agents.drbd.state``): on DRBD 8.4 ``drbdadm
sh-minor`` once and /proc/drbd; on DRBD 9 ``drbdsetup events2 --now``. The promotion score follows linbit's
policy (``hamail.agents.drbd.policy``) and goes through ``hamail.pacemaker.scores``. Promote refuses without
access to UpToDate data; stop demotes, then downs the resource; validate checks the clone's meta attributes.
"""

from __future__ import annotations

import os

from hamail.agents.drbd import policy
from hamail.agents.drbd.state import ResourceState, UNCONFIGURED, from_proc_drbd, kernel_version, parse_events2
from hamail.ocf import ActionSpec, Agent, AgentSpec, ConfigError, Context, Kind, NotInstalled, OCFError, OCFExit
from hamail.ocf import Param, ParamTable, main
from hamail.pacemaker import PacemakerError
from hamail.pacemaker.scores import PromotionScore

PROC_DRBD = "/proc/drbd"
# Names linbit's agent accepts for drbdconf and drbd_resource (they reach drbdadm's argv).
_SAFE = frozenset("-%+./0123456789:=@ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz")
_UNFENCE_DEFAULT = "--quiet --flock-required --flock-timeout 0 --unfence-only-if-owner-match"

PARAMS = ParamTable(
    Param("drbd_resource", Kind.STRING, "drbd resource name", "The name of the drbd resource from the drbd.conf file.",
          required=True, unique_group="drbd_resource"),
    Param("drbdconf", Kind.PATH, "Path to drbd.conf", "Full path to the drbd.conf file.", default="/etc/drbd.conf"),
    Param("adjust_master_score", Kind.STRING, "master score adjustments",
          "Four non-decreasing promotion scores: only Consistent data here; only a peer's UpToDate data; UpToDate "
          "here as Secondary while a peer's disk is unknown; UpToDate here and Primary, or every peer known. "
          "0 or less withdraws the score (Pacemaker then does not promote here).", default="0 10 1000 10000"),
    Param("stop_outdates_secondary", Kind.BOOLEAN, "outdate a secondary on stop",
          "After stopping a Secondary, or on a post notification while disconnected, mark the local data "
          "Outdated when the notification names another node Promoted.", default="false"),
    Param("ignore_missing_notifications", Kind.BOOLEAN, "ignore missing notify=true",
          "Accept a clone without notify=true (the agent then misses pre/post notifications).", default="false"),
    Param("wfc_timeout", Kind.STRING, "wait for connections with timeout",
          "Seconds start waits for the connection to the peer after bringing the resource up; empty or "
          "non-digits: do not wait.", default="5"),
    Param("remove_master_score_if_peer_primary", Kind.STRING,
          "remove master score if we are connected to a primary peer",
          "true: no promotion score while connected to a healthy Primary peer; \"unexpected\": only while "
          "Pacemaker knows no Promoted instance of this clone; anything else: the peer's role is ignored.",
          default="false"),
    Param("fail_promote_early_if_peer_primary", Kind.BOOLEAN,
          "try promote only once when connected to a primary peer",
          "When the peer is still Primary, fail promote after one attempt instead of retrying until the "
          "timeout.", default="false"),
    Param("unfence_if_all_uptodate", Kind.BOOLEAN, "call unfence hook once fully UpToDate",
          "When Primary and every volume here and on the peers is UpToDate, run drbdadm unfence-peer (the "
          "unfence-peer handler), with unfence_extra_args in its environment.", default="false"),
    Param("unfence_extra_args", Kind.STRING, "Extra arguments for the unfence hook",
          "Passed to the unfence handler as OCF_RESKEY_unfence_extra_args.", default=_UNFENCE_DEFAULT),
    Param("require_drbd_module_version_ge", Kind.STRING, "minimum DRBD module version",
          "Fail (not installed) unless the DRBD kernel module version is at least this x.y.z; empty: no check.",
          default="8.0.0"),
    Param("require_drbd_module_version_lt", Kind.STRING, "DRBD module version limit",
          "Fail (not installed) unless the DRBD kernel module version is below this x.y.z; empty: no check.",
          default="10.0.0"),
    Param("connect_only_after_promote", Kind.BOOLEAN, "connect only after promote",
          "Start attaches the disk without connecting; the connection is made (drbdadm adjust) after promote.",
          default="false"),
)

SPEC = AgentSpec(
    name="drbd", version="0.1.0", shortdesc="Manages a DRBD device as a promotable clone",
    longdesc="A DRBD resource as a promotable clone (notify=true, promoted-max 1 or 2), with ocf:linbit:drbd's "
             "parameters and promotion-score policy. Configure DRBD's fencing (fencing resource-and-stonith with "
             "fence-peer/unfence-peer handlers) and Pacemaker's STONITH: this agent alone cannot prevent "
             "diverging data.",
    params=PARAMS,
    actions=(ActionSpec("start", 240), ActionSpec("stop", 100), ActionSpec("promote", 90), ActionSpec("demote", 90),
             ActionSpec("notify", 90), ActionSpec("reload", 30),
             ActionSpec("monitor", 20, interval=20, depth=0, role="Unpromoted"),
             ActionSpec("monitor", 20, interval=10, depth=0, role="Promoted"),
             ActionSpec("meta-data", 5), ActionSpec("validate-all", 30)),
)


# ------------------------------------------------------------------------------ DRBD through drbd-utils

def _drbdadm(ctx: Context, *args: str, check: bool = True, timeout: float = 60.0):
    argv = ["drbdadm", "-c", ctx.config.drbdconf, *args]
    result = ctx.run(argv, timeout=timeout)
    if check and not result.ok:
        raise OCFError(OCFExit.ERR_GENERIC, f"drbdadm {' '.join(args)} failed ({result.rc}): "
                                            f"{result.first_error_line()}")
    return result


def _proc_drbd() -> str | None:
    try:
        with open(PROC_DRBD, encoding="ascii", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def observe(ctx: Context) -> ResourceState:
    """The resource as the kernel has it now (UNCONFIGURED when the module is not even loaded)."""
    name = ctx.config.drbd_resource
    text = _proc_drbd()
    if text is None:
        return UNCONFIGURED(name)
    version = kernel_version(text)
    if version and version >= (9, 0, 0):
        result = ctx.run(["drbdsetup", "events2", "--now", name], timeout=20)
        return parse_events2(name, result.stdout) if result.ok else UNCONFIGURED(name)
    cache = _MinorCache(ctx)
    numbers = cache.get()
    if numbers is not None:
        state = from_proc_drbd(name, numbers, text)
        if state.configured:
            return state
    minors = _drbdadm(ctx, "sh-minor", name, check=False, timeout=20)
    if not minors.ok:
        raise NotInstalled(f"DRBD resource {name} not found in {ctx.config.drbdconf}: "
                           f"{minors.first_error_line()}")
    numbers = [int(word) for word in minors.stdout.split() if word.isdigit()]
    cache.put(numbers)
    return from_proc_drbd(name, numbers, text)


class _MinorCache:
    """The resource's minors from drbdadm sh-minor, kept in HA_RSCTMP while the configuration files are unchanged.

    Asking drbdadm (which parses the whole configuration) costs more than the rest of a monitor; a minor cannot
    change under a configured resource, and a cached minor that /proc/drbd does not show is asked again.
    """

    def __init__(self, ctx: Context) -> None:
        from hamail.system.files import StateFile, rsctmp
        self._file = StateFile(rsctmp(ctx.env.raw), f"drbd-{ctx.config.drbd_resource}.minors")
        self._key = _conf_key(ctx.config.drbdconf)

    def get(self) -> list[int] | None:
        """The cached minors, None when absent or written for other configuration files."""
        text = self._file.read() or ""
        key, _, numbers = text.partition("\n")
        if key != self._key or not numbers.strip():
            return None
        return [int(word) for word in numbers.split() if word.isdigit()]

    def put(self, numbers: list[int]) -> None:
        """Remember the minors (a failure to write only costs the next monitor a drbdadm call)."""
        if numbers:
            try:
                self._file.write(self._key + "\n" + " ".join(map(str, numbers)) + "\n")
            except OSError:
                pass


def _conf_key(drbdconf: str) -> str:
    """Size and mtime of drbd.conf and of everything in drbd.d beside it (where Debian's includes live)."""
    parts = []
    directory = os.path.join(os.path.dirname(drbdconf), "drbd.d")
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        names = []
    for path in [drbdconf, directory] + [os.path.join(directory, n) for n in names]:
        try:
            st = os.stat(path)
            parts.append(f"{path}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{path}:-")
    return "|".join(parts)


def _scores(ctx: Context) -> PromotionScore:
    return PromotionScore(ctx.runner, ctx.env.instance, ctx.env.node_name,
                          ctx.env.raw.get("OCF_RESKEY_crm_feature_set", ""), ctx.deadline)


def _pacemaker_knows_promoted(ctx: Context) -> bool | None:
    """Whether crm_resource locates a Promoted instance of this clone (None when it cannot say)."""
    result = ctx.run(["crm_resource", "--locate", "--resource", ctx.env.clone_base], timeout=15)
    if not result.ok:
        return None
    return any("Promoted" in line or "Master" in line for line in result.stdout.splitlines())


def publish(ctx: Context, state: ResourceState) -> None:
    """Publish the promotion score the policy gives for this state (and unfence when asked to)."""
    cfg = ctx.config
    rule = policy.parse_peer_primary_rule(cfg.remove_master_score_if_peer_primary)
    knows = None
    if rule == policy.PeerPrimaryRule.UNEXPECTED and state.peer_primary and not state.primary:
        knows = _pacemaker_knows_promoted(ctx)
    value = policy.score(state, policy.parse_adjust(cfg.adjust_master_score), rule, knows)
    if value == policy.KEEP:
        return
    scores = _scores(ctx)
    if value is None:
        scores.delete()
    else:
        scores.set(value)
    if cfg.unfence_if_all_uptodate and state.primary and state.disks_all_up_to_date \
            and state.peer_disks_all_up_to_date:
        result = _drbdadm(ctx, "unfence-peer", cfg.drbd_resource, check=False, timeout=30)
        ctx.log.info("unfence-peer %s: exit %s", cfg.drbd_resource, result.rc)


# ------------------------------------------------------------------------------ validation

def _version(text: str, name: str) -> tuple[int, int, int] | None:
    if not text:
        return None
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ConfigError(f"parameter {name}: invalid version format {text!r} (x.y.z)")
    return int(parts[0]), int(parts[1]), int(parts[2])


def _module_version(ctx: Context) -> tuple[int, int, int] | None:
    text = _proc_drbd()
    if text is not None:
        return kernel_version(text)
    result = ctx.run(["modinfo", "-F", "version", "drbd"], timeout=10)
    return kernel_version("version: " + result.stdout.strip()) if result.ok and result.stdout.strip() else None


def _check_clone(ctx: Context) -> None:
    """The clone meta attributes linbit's agent insists on, each with the command that fixes it."""
    env = ctx.env
    if not env.meta("clone_max") and not env.raw.get("OCF_RESKEY_crm_feature_set"):
        return  # run by hand (ocf-tester, an operator): no clone to check
    name = env.clone_base
    clone = f"{name}-clone"
    promotable = (env.meta("promotable").lower() in ("true", "1", "yes", "on") or env.meta("promoted_max")
                  or env.meta("master_max"))
    if not env.meta("clone_max") or not promotable:
        raise ConfigError(f"drbd must run as a promotable clone: pcs resource promotable {name} promoted-max=1 "
                          f"promoted-node-max=1 clone-max=2 clone-node-max=1 notify=true (crm: crm configure "
                          f"clone {clone} {name} meta promotable=true promoted-max=1 notify=true)")
    checks = (("clone_node_max", "clone-node-max", 1, "1"), ("promoted_node_max", "promoted-node-max", 1, "1"),
              ("promoted_max", "promoted-max", 2, "1"), ("clone_max", "clone-max", 2, "2"))
    for key, meta, limit, advice in checks:
        raw = env.meta(key) or env.meta(key.replace("promoted", "master")) or "1"
        try:
            value = int(raw)
        except ValueError:
            value = limit + 1
        if value > limit:
            raise ConfigError(f"meta attribute {meta} is {raw}, at most {limit} works with DRBD 8.4/9 here: "
                              f"pcs resource meta {clone} {meta}={advice} (crm resource meta {clone} set {meta} "
                              f"{advice})")
    if env.meta("notify").lower() not in ("true", "1", "yes", "on") and not ctx.config.ignore_missing_notifications:
        raise ConfigError(f"meta attribute notify is {env.meta('notify') or 'unset'}; drbd needs notify=true: "
                          f"pcs resource meta {clone} notify=true (crm resource meta {clone} set notify true), "
                          f"or set ignore_missing_notifications=true")


def validate(ctx: Context) -> None:
    """Names, drbd-utils, the module version, the configuration file and the clone's meta attributes."""
    cfg = ctx.config
    for param, value in (("drbd_resource", cfg.drbd_resource), ("drbdconf", cfg.drbdconf)):
        if not set(value) <= _SAFE:
            raise ConfigError(f"parameter {param}: {value!r} may only contain [-%+./0-9:=@A-Z_a-z]")
    try:
        policy.parse_adjust(cfg.adjust_master_score)
    except ValueError as exc:
        raise ConfigError(f"parameter adjust_master_score: {exc}") from None
    low = _version(cfg.require_drbd_module_version_ge, "require_drbd_module_version_ge")
    high = _version(cfg.require_drbd_module_version_lt, "require_drbd_module_version_lt")
    for tool in ("drbdadm", "drbdsetup"):
        if ctx.runner.find(tool) is None:
            raise NotInstalled(f"{tool} is not installed (drbd-utils)")
    if not os.access(cfg.drbdconf, os.R_OK):
        raise NotInstalled(f"configuration file {cfg.drbdconf} does not exist or is not readable")
    if ctx.action != "stop":
        _check_clone(ctx)
    version = _module_version(ctx) if low or high else None
    # No module on this node at all: start's modprobe says so (OCF_ERR_INSTALLED); validate-all elsewhere passes.
    if version is not None:
        shown = ".".join(map(str, version))
        if low and version < low:
            raise NotInstalled(f"DRBD module {shown} is older than require_drbd_module_version_ge "
                               f"{cfg.require_drbd_module_version_ge}")
        if high and version >= high:
            raise NotInstalled(f"DRBD module {shown} is not below require_drbd_module_version_lt "
                               f"{cfg.require_drbd_module_version_lt}")


# ------------------------------------------------------------------------------ actions

def _code(state: ResourceState) -> int:
    if not state.configured:
        return OCFExit.NOT_RUNNING
    return OCFExit.RUNNING_PROMOTED if state.primary else OCFExit.SUCCESS


def monitor(ctx: Context) -> int:
    """Report Primary/Secondary/not running and publish the score (a probe that finds nothing leaves it)."""
    state = observe(ctx)
    if state.configured or not ctx.env.is_probe:
        publish(ctx, state)
    return _code(state)


def _wfc_seconds(text: str) -> float | None:
    text = text.strip()
    return float(text) if text.isdigit() else None


def start(ctx: Context) -> int:
    """Load the module if needed, bring the resource up (attach, connect), wait up to wfc_timeout for the peer."""
    cfg = ctx.config
    if _proc_drbd() is None:
        result = ctx.run(["modprobe", "-s", "drbd"], timeout=30)
        if not result.ok or _proc_drbd() is None:
            raise NotInstalled(f"cannot load the drbd module: {result.first_error_line()}")
    state = observe(ctx)
    if state.primary:
        ctx.log.warning("%s already Primary at start: demoting", cfg.drbd_resource)
        _drbdadm(ctx, "secondary", cfg.drbd_resource)
    elif not state.configured:
        _drbdadm(ctx, "attach" if cfg.connect_only_after_promote else "up", cfg.drbd_resource)
    elif not cfg.connect_only_after_promote:
        _drbdadm(ctx, "adjust", cfg.drbd_resource, check=False)
    wait = _wfc_seconds(cfg.wfc_timeout)
    if wait and not cfg.connect_only_after_promote:
        _wait_connected(ctx, wait)
    state = observe(ctx)
    if not state.configured:
        raise OCFError(OCFExit.ERR_GENERIC, f"{cfg.drbd_resource} is not configured in the kernel after drbdadm up")
    publish(ctx, state)
    return OCFExit.SUCCESS


def _wait_connected(ctx: Context, wait: float) -> None:
    """Poll until connected, at most ``wait`` seconds and never past the deadline: the peer may be down."""
    from hamail.system.clock import DeadlineExceeded, poll
    limit = ctx.deadline.sub(min(wait, max(0.0, ctx.deadline.remaining() - 5.0)))
    try:
        poll(limit, lambda: True if observe(ctx).connected else None, what="the peer", longest=0.5)
    except DeadlineExceeded:
        ctx.log.info("%s: not connected to the peer after %s s; continuing (the peer may be down)",
                     ctx.config.drbd_resource, ctx.config.wfc_timeout)


def promote(ctx: Context) -> int:
    """drbdadm primary, retried within the timeout; refused without access to UpToDate data."""
    cfg = ctx.config
    attempts = 0
    while True:
        state = observe(ctx)
        if not state.configured:
            raise OCFError(OCFExit.ERR_GENERIC, "cannot promote a resource that was not started")
        if state.primary:
            break
        if not state.has_up_to_date_access and not state.disks_transitional:
            _scores(ctx).delete()
            raise OCFError(OCFExit.ERR_GENERIC, f"Refusing to be promoted to Primary without access to UpToDate "
                                                f"data ({state.summary()})")
        if attempts and state.peer_primary and cfg.fail_promote_early_if_peer_primary:
            _scores(ctx).delete()
            raise OCFError(OCFExit.ERR_GENERIC, "Peer node already/still Primary")
        result = _drbdadm(ctx, "primary", cfg.drbd_resource, check=False, timeout=max(1.0, ctx.deadline.remaining()))
        attempts += 1
        if result.rc == 17:  # DRBD: no UpToDate disk reachable, or the fence-peer handler did not succeed
            raise OCFError(OCFExit.ERR_GENERIC, f"Refusing to be promoted to Primary without access to UpToDate "
                                                f"data: {result.first_error_line()}")
        if result.rc == 11 and "not outdated" in result.stdout + result.stderr:
            # DRBD 8.4's answer when fencing is on and the fence-peer handler could not outdate the peer: it
            # stays so until an operator or the peer acts, and every retry would run the handler again.
            raise OCFError(OCFExit.ERR_GENERIC, f"Refusing to be promoted to Primary while the peer is not outdated "
                                                f"(fencing): {result.first_error_line()}")
        if not result.ok:
            ctx.log.info("drbdadm primary %s: %s; retrying", cfg.drbd_resource, result.first_error_line())
            ctx.deadline.sleep(min(1.0, max(0.0, ctx.deadline.remaining() - 1.0)))
    if cfg.connect_only_after_promote:
        _drbdadm(ctx, "adjust", cfg.drbd_resource, check=False)
    publish(ctx, observe(ctx))
    return OCFExit.SUCCESS


def demote(ctx: Context) -> int:
    """drbdadm secondary, retried within the timeout (an opener of the device keeps it Primary)."""
    cfg = ctx.config
    while True:
        state = observe(ctx)
        if not state.configured:
            raise OCFError(OCFExit.ERR_GENERIC, "cannot demote a resource that was not started")
        if not state.primary:
            break
        result = _drbdadm(ctx, "secondary", cfg.drbd_resource, check=False,
                          timeout=max(1.0, ctx.deadline.remaining()))
        if not result.ok:
            ctx.log.info("drbdadm secondary %s: %s; retrying", cfg.drbd_resource, result.first_error_line())
            ctx.deadline.sleep(min(1.0, max(0.0, ctx.deadline.remaining() - 1.0)))
    publish(ctx, observe(ctx))
    return OCFExit.SUCCESS


def _maybe_outdate_self(ctx: Context, state: ResourceState) -> bool:
    """stop_outdates_secondary: mark our data Outdated when the notification names another Promoted node."""
    if not ctx.config.stop_outdates_secondary:
        return False
    from hamail.pacemaker.notify import NotifyData
    data = NotifyData.from_environ(ctx.env.raw)
    me = ctx.env.node_name.lower()
    others = [n for n in data.nodes("promoted") if n.lower() != me]
    if not others or others[0] in data.nodes("stop"):
        return False
    if state.primary:
        ctx.log.critical("resource internal SPLIT BRAIN: both %s and %s are Primary for %s, but the replication "
                         "link is down", ctx.env.node_name, others[0], ctx.config.drbd_resource)
        return False
    ctx.log.warning("outdating %s: %s is still Promoted", ctx.config.drbd_resource, others[0])
    _drbdadm(ctx, "outdate", ctx.config.drbd_resource, check=False)
    return True


def stop(ctx: Context) -> int:
    """Demote if Primary, then drbdadm down; withdraw the score."""
    cfg = ctx.config
    while True:
        state = observe(ctx) if _proc_drbd() is not None else UNCONFIGURED(cfg.drbd_resource)
        if not state.configured:
            if _proc_drbd() is not None:
                _drbdadm(ctx, "down", cfg.drbd_resource, check=False)  # a half-configured 8.4 resource
            break
        if state.primary:
            ctx.log.warning("%s still Primary at stop: demoting", cfg.drbd_resource)
            _drbdadm(ctx, "secondary", cfg.drbd_resource, check=False, timeout=max(1.0, ctx.deadline.remaining()))
        else:
            result = _drbdadm(ctx, "down", cfg.drbd_resource, check=False, timeout=max(1.0, ctx.deadline.remaining()))
            if result.ok:
                continue
            ctx.log.info("drbdadm down %s: %s; retrying", cfg.drbd_resource, result.first_error_line())
        ctx.deadline.sleep(min(1.0, max(0.0, ctx.deadline.remaining() - 1.0)))
    _maybe_outdate_self(ctx, UNCONFIGURED(cfg.drbd_resource))
    try:
        _scores(ctx).delete()
    except PacemakerError as exc:
        # DRBD is down: a stopped instance is never promoted, so a leftover score must not fail the stop (and
        # with it fence the node); the next start or monitor publishes the right one.
        ctx.log.warning("stop: %s", exc)
    return OCFExit.SUCCESS


def notify(ctx: Context) -> int:
    """*/start: adjust (connect to a peer that starts); post/*: republish the score, maybe outdate ourselves."""
    from hamail.pacemaker.notify import NotifyData
    data = NotifyData.from_environ(ctx.env.raw)
    name = ctx.config.drbd_resource
    if data.operation == "start" and not ctx.config.connect_only_after_promote:
        _drbdadm(ctx, "-v", "adjust", name, check=False)
    if not data.is_pre:
        state = observe(ctx)
        if state.configured:
            publish(ctx, state)
            if state.peer_disk_unknown:
                _maybe_outdate_self(ctx, state)
    return OCFExit.SUCCESS


def reload(ctx: Context) -> int:
    """drbdadm adjust (a changed drbd.conf), then republish the score (adjust_master_score may have changed)."""
    state = observe(ctx)
    if state.configured:
        _drbdadm(ctx, "adjust", ctx.config.drbd_resource, check=False)
        publish(ctx, observe(ctx))
    return OCFExit.SUCCESS


AGENT = Agent(SPEC, {"start": start, "stop": stop, "monitor": monitor, "promote": promote, "demote": demote,
                     "notify": notify, "reload": reload}, validate=validate)

if __name__ == "__main__":
    main(AGENT)
