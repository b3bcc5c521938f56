# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:Filesystem: mount a filesystem (block device, LABEL=/UUID=, bind or network), a drop-in for heartbeat's."""

from __future__ import annotations

import os

from hamail.agents.filesystem import mounts
from hamail.ocf import ActionSpec, Agent, AgentSpec, ConfigError, Kind, NotInstalled, OCFError, OCFExit, Param
from hamail.ocf import ParamTable
from hamail.params import ParamError, parse_boolean
from hamail.system import bounded, proc
from hamail.system.clock import DeadlineExceeded, poll
from hamail.system.runner import CommandTimeout


PARAMS = ParamTable(
    Param("device", Kind.STRING, "block device",
          "The block device (a path, /dev/disk/by-* link, LABEL=... or UUID=..., or heartbeat's -L label and "
          "-U uuid forms), the source directory of a bind mount, or a network specification (host:/export, "
          "//server/share).", required=True),
    Param("directory", Kind.STRING, "mount point",
          "The mount point. Symlinks are resolved, so the directory is compared with the mount table as the "
          "kernel reports it. Created when missing.", required=True),
    Param("fstype", Kind.STRING, "filesystem type",
          "The type of filesystem to be mounted (ext4, xfs, nfs4, ...); 'none' for bind mounts.", required=True),
    Param("options", Kind.STRING, "options",
          "Extra options given to mount -o. For bind mounts add 'bind' (with fstype none); 'bind,ro' works."),
    Param("statusfile_prefix", Kind.STRING, "status file prefix",
          "Prefix, inside the mount, of the status file written and read back by the depth-20 monitor.",
          default=".Filesystem_status/"),
    Param("run_fsck", Kind.SELECT, "run_fsck",
             "Whether to run fsck before mounting: auto (only for filesystem types without a journal), force, no. "
             "Any other value is taken as auto (with a warning), as heartbeat's agent does.",
             default="auto", choices=("auto", "force", "no"), fallback="auto"),
    Param("fast_stop", Kind.BOOLEAN, "fast stop",
             "If true, processes still using the filesystem at stop get signal_delay to exit after the TERM "
             "signals before they are killed; if false, they get up to half of the stop timeout.",
             default="false", fallback="false"),
    Param("force_clones", Kind.BOOLEAN, "allow running as a clone, regardless of filesystem type",
             "A clone of a local, non-cluster filesystem (ext4, xfs...) is refused unless this is true.",
             default="false", fallback="false"),
    Param("force_unmount", Kind.STRING, "Kill processes before unmount",
          "true or safe: signal the processes using the mount (found by reading /proc, which never blocks "
          "on a dead server); false: never signal anything. Any other value is taken as false (with a "
          "warning), as heartbeat's agent does.", default="true"),
    Param("term_signals", Kind.STRING, "Signals to use for graceful termination",
          "Signals (names or numbers, space or comma separated) sent first to processes using the mount.",
          default="TERM"),
    Param("kill_signals", Kind.STRING, "Signals to use for forceful termination",
          "Signals sent to processes still using the mount after the graceful period.", default="KILL"),
    Param("signal_delay", Kind.DURATION, "How long to wait after sending a signal",
          "Time processes get to exit after each signal.", default="1"),
    Param("refuse_network_fs", Kind.BOOLEAN, "Require local block storage",
          "If true, validation refuses network filesystems (NFS, CIFS, ...): for paths that must be on block "
          "storage, such as Cyrus's /var/spool/cyrus and /var/lib/cyrus.", default="false"),
)

SPEC = AgentSpec(
    name="Filesystem", version="0.1.0", shortdesc="Manages filesystem mounts",
    longdesc="Mounts a filesystem on a directory and unmounts it, first its submounts and after signalling "
             "exactly the processes using that mount (found by walking /proc). Monitor depth 0 checks the "
             "mount table, 10 reads the device, 20 writes and reads a status file with O_DIRECT (a mount that "
             "is read-only without ro in options, as after the kernel's remount on errors, fails it). "
             "Parameters are those of heartbeat's Filesystem.",
    params=PARAMS,
    actions=(ActionSpec("start", 60), ActionSpec("stop", 60),
             ActionSpec("monitor", 40, interval=20, depth=0), ActionSpec("status", 40, interval=20, depth=0),
             ActionSpec("meta-data", 5), ActionSpec("validate-all", 5)),
)

# Types needing no fsck before mount: journalled, network, virtual (heartbeat's list, extended).
_NO_FSCK = frozenset({"ext3", "ext4", "ext4dev", "xfs", "jfs", "reiserfs", "reiser4", "btrfs", "nss", "vfat",
                      "fat", "ocfs2", "gfs2", "none", "bind", "tmpfs", "overlay", "overlayfs", "zfs", "cvfs",
                      "lxcfs", "rozofs", "f2fs"}) | mounts.NETWORK_FSTYPES
# Types safe to mount on several nodes at once (clones).
_CLUSTER_SAFE = frozenset({"gfs2", "ocfs2", "none", "bind", "tmpfs", "overlay", "overlayfs", "cvfs"}) | \
    mounts.NETWORK_FSTYPES
_BLOCK = 4096


def _is_bind(ctx) -> bool:
    opts = (ctx.config.options or "").split(",")
    return "bind" in opts or "rbind" in opts or ctx.config.fstype == "bind"


def _network(ctx) -> bool:
    return mounts.is_network(ctx.config.fstype or "", ctx.config.device or "")


def _directory(ctx, table=None) -> str:
    # A relative directory is taken from the working directory, as heartbeat's agent does (validate warns).
    path = os.path.abspath(ctx.config.directory or "")
    point = mounts.canonical_dir(path, table)
    if point == "/":
        raise ConfigError(f"parameter directory: {ctx.config.directory} is the root filesystem: "
                          "refusing to manage it")
    return point


def _uses_block_device(ctx) -> bool:
    return not _is_bind(ctx) and not _network(ctx) and ctx.config.fstype not in ("tmpfs", "overlay", "proc")


def validate(ctx) -> None:
    """Configuration checks (all problems at once, each naming its parameter); the node's state is a warning here.

    What depends on this node (the device, the bind source) cannot make a probe or validate-all fail: another
    node may have it, and DRBD devices appear only once promoted. start refuses it (OCF_ERR_INSTALLED).
    """
    cfg = ctx.config
    problems = []
    if ctx.action in ("start", "validate-all"):
        if not (cfg.directory or "").startswith("/"):
            ctx.log.warning("parameter directory: %r is not an absolute path: taken from the working directory "
                            "(%s), as heartbeat's Filesystem does", cfg.directory, os.getcwd())
        if _force_unmount(cfg.force_unmount) is None:
            ctx.log.warning("parameter force_unmount: %r is not true, false or safe: taken as false (no process "
                            "is signalled at stop), as heartbeat's Filesystem does", cfg.force_unmount)
    try:
        _directory(ctx, mounts.mountinfo())
    except ConfigError as exc:
        problems.append(exc.reason)
    # Naming signals needs the signal module, which imports enum: checked by the actions that signal or vouch
    # for the configuration (start, stop, validate-all), not by every monitor, which never signals.
    if ctx.action != "monitor":
        for name in ("term_signals", "kill_signals"):
            try:
                _signals(cfg[name])
            except ValueError as exc:
                problems.append(str(ParamError(name, str(exc))))
    if cfg.refuse_network_fs and (_network(ctx) or cfg.fstype in ("tmpfs",)):
        problems.append(str(ParamError("refuse_network_fs", f"{cfg.directory} must be on local block storage, "
                                                            f"not {cfg.device} ({cfg.fstype})")))
    if ctx.env.meta("clone") and cfg.fstype not in _CLUSTER_SAFE and not cfg.force_clones \
            and not _configured_read_only(ctx):
        problems.append(str(ParamError("force_clones", f"{cfg.fstype} on {cfg.device} is not cluster-aware: "
                                                       "refusing to run it as a clone (force_clones=true overrides)")))
    if problems:
        raise ConfigError("; ".join(problems))
    if ctx.action == "validate-all":
        try:
            _source(ctx)
        except NotInstalled as exc:
            ctx.log.warning("%s (start fails on this node until it does)", exc.reason)


def _source(ctx) -> str:
    """What to hand to mount: the resolved device node, the bind source, or the network spec."""
    cfg = ctx.config
    if _is_bind(ctx):
        if not os.path.isdir(cfg.device):
            raise NotInstalled(f"bind mount source {cfg.device} is not a directory on this node")
        return os.path.realpath(cfg.device)
    if not _uses_block_device(ctx):
        return cfg.device
    device = mounts.resolve_device(cfg.device, ctx.run)
    if device is None:
        raise NotInstalled(f"device {cfg.device} does not exist on this node")
    import stat
    if not stat.S_ISBLK(os.stat(device).st_mode):
        raise NotInstalled(f"device {cfg.device} ({device}) is not a block device on this node")
    return device


def _force_unmount(text: str):
    """Whether stop signals the processes using the mount; None for a value that is neither (taken as false)."""
    text = (text or "true").strip().lower()
    if text == "safe":
        return True
    try:
        return parse_boolean(text)
    except ValueError:
        return None


def _signals(text: str) -> list:
    import signal
    out = []
    for word in (text or "").replace(",", " ").split():
        name = word.upper()
        if word.isdigit():
            number = int(word)
        elif hasattr(signal, "SIG" + name.removeprefix("SIG")):
            number = int(getattr(signal, "SIG" + name.removeprefix("SIG")))
        else:
            raise ValueError(f"unknown signal {word!r}")
        out.append(number)
    return out


def _ours(ctx, mount, table, source=None) -> bool:
    """Whether the mount at our directory is the configured filesystem (and not something else)."""
    cfg = ctx.config
    if _is_bind(ctx):
        return mounts.same_source(mount, table, os.path.realpath(cfg.device))
    if not _uses_block_device(ctx):
        return mount.source == cfg.device
    device = source or mounts.resolve_device(cfg.device)
    if device is None:
        if cfg.device.startswith("/"):  # the device vanished while mounted (lost LUN): match by name
            return mount.source in (cfg.device, os.path.realpath(cfg.device))
        return mount.fstype == cfg.fstype  # LABEL=/UUID= without udev links: the type is what we can check
    try:
        rdev = os.stat(device).st_rdev
    except OSError:
        return False
    return (os.major(rdev), os.minor(rdev)) == mount.dev


def start(ctx) -> int:
    """fsck where due, create the directory, mount; refuse to cover another mount or hide mounts beneath."""
    cfg = ctx.config
    table = mounts.mountinfo()
    point = _directory(ctx, table)
    source = _source(ctx)
    current = mounts.find_mount(table, point)
    if current is not None:
        if _ours(ctx, current, table, source):
            return OCFExit.SUCCESS
        raise OCFError(OCFExit.ERR_GENERIC, f"{point} already has {current.source} ({current.fstype}) mounted: "
                                            f"refusing to mount {cfg.device} over it")
    beneath = mounts.submounts(table, point)
    if beneath:
        raise OCFError(OCFExit.ERR_GENERIC, f"{beneath[-1].point} is mounted beneath {point}: refusing to hide it")
    _supported(ctx)
    found = ""
    if cfg.fstype and _uses_block_device(ctx):
        found = _check_fstype(ctx, source)
        _fsck(ctx, source)
    os.makedirs(point, exist_ok=True)
    if _is_bind(ctx):
        argv = ["mount", "-o", cfg.options or "bind", source, point]
    else:
        argv = ["mount", "-t", cfg.fstype] + (["-o", cfg.options] if cfg.options else []) + [source, point]
    ctx.log.info("mounting %s on %s", source, point)
    result = ctx.run(argv)
    if not result.ok:
        # what the device holds first: mount's own message is long and the reason is cut at 400 characters
        hint = f" ({source} holds a {found} filesystem, not {cfg.fstype})" if found else ""
        raise OCFError(OCFExit.ERR_GENERIC, f"mount {source} on {point} failed{hint}: {result.first_error_line()}")
    return OCFExit.SUCCESS


def _supported(ctx) -> None:
    """The kernel knows the filesystem type here, its module loaded if need be; else OCF_ERR_INSTALLED (this node)."""
    fstype = ctx.config.fstype or ""
    if not fstype or fstype in ("none", "bind", "auto") or _is_bind(ctx):
        return
    # heartbeat's mapping: FUSE filesystems need fuse, EFS is NFS 4
    support = "fuse" if fstype.startswith("fuse.") or fstype in ("glusterfs", "rozofs") else \
        "nfs4" if fstype == "efs" else fstype
    if support in _kernel_filesystems():
        return
    ctx.run(["modprobe", "-q", support])
    if support not in _kernel_filesystems():
        raise NotInstalled(f"the kernel of this node has no {support} filesystem (not in /proc/filesystems, "
                           f"modprobe {support} failed)")


def _kernel_filesystems() -> set:
    with open("/proc/filesystems", encoding="ascii", errors="replace") as handle:
        return {line.split()[-1] for line in handle if line.strip()}


def _check_fstype(ctx, device: str) -> str:
    """The filesystem type blkid finds on the device when it is not the configured one ('' otherwise).

    Mount decides: ext4's driver mounts ext2 and ext3 too, as it does under heartbeat's agent; when mount
    fails, the reason names what the device holds.
    """
    result = ctx.run(["blkid", "-p", "-o", "value", "-s", "TYPE", device])
    found = result.stdout.strip()
    if result.ok and found and found != ctx.config.fstype:
        ctx.log.warning("%s holds a %s filesystem, not %s", device, found, ctx.config.fstype)
        return found
    return ""


def _fsck(ctx, device: str) -> None:
    mode = ctx.config.run_fsck
    if mode == "no" or (mode == "auto" and ctx.config.fstype in _NO_FSCK):
        return
    ctx.log.info("checking %s (run_fsck=%s)", device, mode)
    result = ctx.run(["fsck", "-p", "-t", ctx.config.fstype, device])
    if result.rc & ~3:  # 1 and 2 mean errors corrected; anything above is not mountable safely
        raise OCFError(OCFExit.ERR_GENERIC, f"fsck of {device} failed (exit {result.rc}): "
                                            f"{result.first_error_line()}")


def _our_mount(ctx):
    """(mount table, canonical directory, the mount there if it is the configured filesystem, else None)."""
    table = mounts.mountinfo()
    point = _directory(ctx, table)
    current = mounts.find_mount(table, point)
    if current is not None and not _ours(ctx, current, table):
        ctx.log.warning("%s has %s (%s) mounted, not %s: not ours", point, current.source, current.fstype,
                        ctx.config.device)
        current = None
    return table, point, current


def stop(ctx) -> int:
    """Unmount submounts, then the filesystem; signal only the processes using this mount, within the deadline."""
    table, point, target = _our_mount(ctx)
    if target is None:
        return OCFExit.SUCCESS  # nothing mounted there, or something that is not ours: leave it alone
    if not target.read_only and not mounts.is_network(target.fstype, target.source):
        _remove_status_file(ctx, point)
    for mount in mounts.submounts(table, point) + [target]:
        _unmount(ctx, mount)
    return OCFExit.SUCCESS


def _unmount(ctx, mount) -> None:
    import signal
    cfg = ctx.config
    network = mounts.is_network(mount.fstype, mount.source)
    force = bool(_force_unmount(cfg.force_unmount))
    term, kill = _signals(cfg.term_signals) or [signal.SIGTERM], _signals(cfg.kill_signals) or [signal.SIGKILL]
    delay = cfg.signal_delay if cfg.signal_delay is not None else 1.0
    # The graceful phase: with fast_stop, one signal_delay; otherwise up to half the time left.
    graceful_until = ctx.clock.monotonic() + (delay if cfg.fast_stop else max(delay, ctx.deadline.remaining() / 2))
    attempt = 0
    while True:
        # -c: the point is mountinfo's already; canonicalizing it would stat the mounted root, which hangs
        # while a network filesystem's server is dead. -f on a network mount aborts its pending requests.
        argv = ["umount", "-c"] + (["-f"] if network and attempt else []) + [mount.point]
        try:
            result = ctx.run(argv, timeout=max(0.5, min(10.0, ctx.deadline.remaining())))
            failure = result.first_error_line()
        except CommandTimeout as exc:  # umount itself stuck on the server: try again, then detach
            result, failure = None, str(exc)
        if (result is not None and result.ok) or mounts.find_mount(mounts.mountinfo(), mount.point) is None:
            ctx.log.info("unmounted %s", mount.point)
            return
        attempt += 1
        busy = mounts.holders(mount.point) if force else {}
        if ctx.deadline.remaining() < 1.0 or (not busy and attempt > 3):
            if network:  # a dead server must not keep the node from stopping: detach it lazily
                # Its own short budget: the deadline may be all but used up by now, and a detach is instant.
                lazy = ctx.run(["umount", "-c", "-l", mount.point], deadline=None,
                               timeout=max(0.3, ctx.deadline.remaining()))
                if lazy.ok or mounts.find_mount(mounts.mountinfo(), mount.point) is None:
                    ctx.log.warning("lazily unmounted %s (server not answering)", mount.point)
                    return
                failure = lazy.first_error_line()
            raise OCFError(OCFExit.ERR_GENERIC, f"cannot unmount {mount.point}: {failure}")
        if not busy:
            ctx.deadline.sleep(0.1 * attempt)
            continue
        signals = term if ctx.clock.monotonic() < graceful_until else kill
        ctx.log.warning("%s is busy: sending %s to %s", mount.point, "/".join(signal.Signals(s).name for s in signals),
                        ", ".join(f"{pid} ({why})" for pid, why in sorted(busy.items())))
        for pid in busy:
            for number in signals:
                try:
                    os.kill(pid, number)
                except ProcessLookupError:
                    pass
        _wait_gone(ctx, busy, min(delay, ctx.deadline.remaining()))


def _wait_gone(ctx, pids: dict, seconds: float) -> None:
    """Wait up to seconds for the signalled processes to exit (early as soon as they have)."""
    try:
        poll(ctx.deadline.sub(seconds), lambda: True if not any(proc.alive(pid) for pid in pids) else None,
             what="the signalled processes to exit", first=0.02, longest=0.1)
    except DeadlineExceeded:
        pass  # the caller unmounts again and escalates to the kill signals


def _status_file(ctx, point: str) -> str:
    suffix = ctx.env.instance + (f"_{ctx.env.meta('clone')}" if ctx.env.meta("clone") else "")
    return os.path.join(point, (ctx.config.statusfile_prefix or "") + f"{suffix}_{os.uname().nodename}")


def _remove_status_file(ctx, point: str) -> None:
    try:
        os.unlink(_status_file(ctx, point))
    except OSError:
        pass


def monitor(ctx) -> int:
    """Depth 0: mounted here and ours; 10: the device reads; 20: a status file writes and reads back."""
    _table, point, current = _our_mount(ctx)
    if current is None:
        return OCFExit.NOT_RUNNING
    level = ctx.env.check_level
    if level >= 20 and current.read_only and not _configured_read_only(ctx):
        # Not asked for: the kernel remounted it after I/O errors (ext4 errors=remount-ro), or someone else
        # did. Writers cannot use it, so it is not healthy, even though everything still reads.
        why = "the kernel remounted it read-only after errors" if current.emergency_read_only else \
            "it is mounted read-only"
        asked = f"options {ctx.config.options!r} do not" if ctx.config.options else "no options"
        raise OCFError(OCFExit.ERR_GENERIC, f"depth 20 check of {point} failed: {why}, but {asked} ask for ro")
    if level >= 10:
        _io_check(ctx, current, lambda: _deep_check(ctx, current, point, level))
    return OCFExit.SUCCESS


def _configured_read_only(ctx) -> bool:
    return "ro" in (ctx.config.options or "").split(",")


def _deep_check(ctx, mount, point: str, level: int) -> None:
    if level >= 20 and not mount.read_only:
        _status_check(ctx, point, network=mounts.is_network(mount.fstype, mount.source))
        return
    # Depth 10, and depth 20 on a mount configured read-only (nothing can be written): read the device, list
    # the root.
    if _uses_block_device(ctx):
        _read_direct(mount.source if mount.source.startswith("/dev/") else mounts.resolve_device(ctx.config.device))
    os.listdir(point)


def _aligned_buffer():
    import mmap
    return mmap.mmap(-1, _BLOCK)  # page-aligned, as O_DIRECT requires


def _read_direct(device: str) -> None:
    """Read the first block of the device around the page cache."""
    fd = os.open(device, os.O_RDONLY | os.O_DIRECT)
    try:
        buf = _aligned_buffer()
        if os.preadv(fd, [buf], 0) <= 0:
            raise OSError(5, f"short read from {device}")
    finally:
        os.close(fd)


def _status_check(ctx, point: str, network: bool) -> None:
    """Write this node's status file with O_DIRECT|O_SYNC and read it back (O_SYNC only where O_DIRECT is refused)."""
    path = _status_file(ctx, point)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    buf = _aligned_buffer()
    text = f"{ctx.env.instance}\n".encode()
    buf[:len(text)] = text
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_SYNC
    try:
        fd = os.open(path, flags | (0 if network else os.O_DIRECT), 0o600)
    except OSError as exc:
        if exc.errno != 22:  # EINVAL: this filesystem has no O_DIRECT (tmpfs, cifs)
            raise
        fd = os.open(path, flags, 0o600)
    try:
        os.pwritev(fd, [buf], 0)
    finally:
        os.close(fd)
    with open(path, "rb") as handle:
        if handle.read(len(text)) != text:
            raise OSError(5, f"status file {path} reads back wrong")


def _io_check(ctx, mount, check) -> None:
    """Run an I/O check; on a network filesystem in a child process, so a dead server cannot hang the monitor."""
    try:
        if not mounts.is_network(mount.fstype, mount.source):
            check()
            return
        if not bounded.in_child(check, ctx.deadline, f"I/O on {mount.point}"):
            raise OSError(5, "I/O check failed")
    except bounded.TimedOut:
        raise OCFError(OCFExit.ERR_GENERIC, f"depth {ctx.env.check_level} check of {mount.point} failed: "
                                            "I/O did not finish before the monitor timeout") from None
    except OSError as exc:
        raise OCFError(OCFExit.ERR_GENERIC, f"depth {ctx.env.check_level} check of {mount.point} failed: "
                                            f"{exc.strerror or exc}") from None


AGENT = Agent(SPEC, {"start": start, "stop": stop, "monitor": monitor, "status": monitor}, validate)
