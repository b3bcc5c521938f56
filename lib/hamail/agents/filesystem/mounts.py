# SPDX-License-Identifier: GPL-2.0-or-later
"""The mount table, canonical mount points, device resolution and the /proc walk for processes holding a mount.

Nothing here touches a mounted filesystem unless asked: the table comes from /proc/self/mountinfo and
the holders walk only reads /proc links, so a dead NFS server cannot hang a monitor or a stop.
"""

from __future__ import annotations

import os

from hamail.system import proc

__all__ = ["Mount", "mountinfo", "find_mount", "submounts", "canonical_dir", "device_spec", "resolve_device",
           "is_network", "holders", "same_source", "NETWORK_FSTYPES"]

# Filesystems whose data lives on another host: refused where block storage is required.
NETWORK_FSTYPES = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "9p", "glusterfs", "ceph", "afs",
                             "lustre", "fuse.sshfs", "fuse.glusterfs", "fuse.s3fs", "efs", "beegfs", "gpfs"})


def _unescape(text: str) -> str:
    """Undo mountinfo's octal escapes (space, tab, newline, backslash)."""
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1:i + 4].isdigit():
            out.append(chr(int(text[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


class Mount:
    """One line of /proc/self/mountinfo."""

    __slots__ = ("mount_id", "parent_id", "dev", "root", "point", "options", "fstype", "source", "super_options")

    def __init__(self, mount_id, parent_id, dev, root, point, options, fstype, source, super_options):
        self.mount_id, self.parent_id, self.dev, self.root, self.point = mount_id, parent_id, dev, root, point
        self.options, self.fstype, self.source, self.super_options = options, fstype, source, super_options

    @property
    def read_only(self) -> bool:
        """Whether this mount (or its superblock) is read-only, also after an emergency remount by the kernel."""
        return "ro" in self.options or "ro" in self.super_options or self.emergency_read_only

    @property
    def emergency_read_only(self) -> bool:
        """Whether the kernel made the filesystem read-only after errors (ext4 errors=remount-ro).

        Kernels from 6.x say so with emergency_ro among the superblock options; older ones only show ro there.
        """
        return "emergency_ro" in self.super_options

    def __repr__(self) -> str:
        return f"Mount({self.source} on {self.point} type {self.fstype} dev {self.dev[0]}:{self.dev[1]} root {self.root})"


def parse_mountinfo(text: str) -> list:
    """Mounts from mountinfo text, in mount order."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 6 or len(tail) < 2:
            continue
        major, _, minor = fields[2].partition(":")
        mounts.append(Mount(int(fields[0]), int(fields[1]), (int(major), int(minor)), _unescape(fields[3]),
                            _unescape(fields[4]), frozenset(fields[5].split(",")), tail[0], _unescape(tail[1]),
                            frozenset(tail[2].split(",")) if len(tail) > 2 else frozenset()))
    return mounts


def mountinfo(path: str = "/proc/self/mountinfo") -> list:
    """This process's mount table."""
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        return parse_mountinfo(handle.read())


def find_mount(mounts: list, point: str):
    """The mount visible at point (the last one mounted there), or None."""
    found = None
    for mount in mounts:
        if mount.point == point:
            found = mount
    return found


def submounts(mounts: list, point: str) -> list:
    """Mounts strictly beneath point, deepest first (the order to unmount them in)."""
    prefix = point.rstrip("/") + "/"
    below = [m for m in mounts if m.point.startswith(prefix)]
    # Later mounts can stack on earlier ones at the same point: unmount in reverse mount order too.
    return [m for _, m in sorted(enumerate(below), key=lambda im: (-im[1].point.count("/"), -im[0]))]


def canonical_dir(path: str, mounts=None) -> str:
    """The mount point path as the kernel reports it: normalised, symlinks resolved.

    When the normalised path is itself a mount point, it is returned without touching the filesystem
    (resolving it would stat the mounted root, which hangs on a dead NFS server).
    """
    normal = os.path.normpath(path)
    if mounts is not None and find_mount(mounts, normal) is not None:
        return normal
    return os.path.realpath(normal)


def is_network(fstype: str, device: str) -> bool:
    """Whether a filesystem is served over the network (by type, or by an NFS/CIFS style device)."""
    if fstype in NETWORK_FSTYPES or fstype.startswith("nfs"):
        return True
    device = device_spec(device)
    return device.startswith("//") or (":" in device and not device.startswith(("/", "LABEL=", "UUID=")))


_DEVICE_OPTIONS = {"-L": "LABEL", "--label": "LABEL", "-U": "UUID", "--uuid": "UUID"}


def device_spec(spec: str) -> str:
    """The device as mount(8)'s TAG=value when given in heartbeat Filesystem's option forms.

    heartbeat accepts "-L label", "--label=label", "-U uuid", "--uuid uuid" (and the like) as its device.
    """
    text = spec.strip()
    for option, tag in _DEVICE_OPTIONS.items():
        if text.startswith(option):
            value = text[len(option):]
            if option.startswith("--"):
                if value[:1] not in ("=", " ", "\t"):
                    continue  # e.g. --labelx: not this option
                value = value[1:]
            value = value.strip()
            return f"{tag}={value}" if value else spec
    return spec


def resolve_device(spec: str, run=None):
    """The device node of a path, LABEL= or UUID= spec (symlinks such as /dev/disk/by-* resolved); None if absent.

    heartbeat's "-L label" / "--uuid=..." forms are understood too (device_spec). run (a command runner's run)
    is used for blkid when udev's /dev/disk links do not exist.
    """
    spec = device_spec(spec)
    tag, _, value = spec.partition("=")
    if tag in ("LABEL", "UUID", "PARTLABEL", "PARTUUID") and value:
        link = f"/dev/disk/by-{tag.lower()}/{value}"
        if os.path.exists(link):
            return os.path.realpath(link)
        if run is None:
            return None
        result = run(["blkid", "-l", "-o", "device", "-t", f"{tag}={value}"])
        device = result.stdout.strip() if result.ok else ""
        return device or None
    if not spec.startswith("/"):
        return None
    path = os.path.realpath(spec)
    return path if os.path.exists(path) else None


def same_source(mount: Mount, mounts: list, source_dir: str) -> bool:
    """Whether mount is a bind mount of source_dir (same filesystem and same directory inside it)."""
    try:
        dev = os.stat(source_dir).st_dev
    except OSError:
        return False
    if (os.major(dev), os.minor(dev)) != mount.dev:
        return False
    parent = None
    for candidate in mounts:
        if candidate is mount:
            continue
        prefix = candidate.point.rstrip("/") + "/"
        if (source_dir == candidate.point or source_dir.startswith(prefix)) and candidate.dev == mount.dev:
            if parent is None or len(candidate.point) >= len(parent.point):
                parent = candidate
    if parent is None:
        return True  # the source's own mount is not visible here: device equality is all we can check
    inside = os.path.relpath(source_dir, parent.point)
    expected = os.path.normpath(os.path.join(parent.root, inside)) if inside != "." else parent.root
    return expected == mount.root


def _under(path: str, point: str, prefix: str) -> bool:
    if path.endswith(" (deleted)"):
        path = path[:-10]
    return path == point or path.startswith(prefix)


def _process_holds(pid: str, point: str, prefix: str):
    """Why pid holds point (e.g. 'cwd', 'fd 3', 'maps'), or None. Only /proc links are read."""
    base = f"/proc/{pid}/"
    for what in ("cwd", "root", "exe"):
        try:
            if _under(os.readlink(base + what), point, prefix):
                return what
        except OSError:
            continue
    try:
        fds = os.listdir(base + "fd")
    except OSError:
        fds = ()
    for fd in fds:
        try:
            if _under(os.readlink(f"{base}fd/{fd}"), point, prefix):
                return f"fd {fd}"
        except OSError:
            continue
    try:
        with open(base + "maps", encoding="utf-8", errors="surrogateescape") as handle:
            for line in handle:
                parts = line.rstrip("\n").split(None, 5)
                if len(parts) == 6 and _under(parts[5], point, prefix):
                    return "maps"
    except OSError:
        pass
    return None


def holders(point: str, exclude=()) -> dict:
    """Processes using point or anything beneath it, pid -> reason: by path, so other bind mounts of the
    same filesystem elsewhere (and their users) are not counted."""
    prefix = point.rstrip("/") + "/"
    skip = {int(p) for p in exclude} | {os.getpid()}
    found = {}
    for pid in proc.pids():
        if pid in skip:
            continue
        reason = _process_holds(str(pid), point, prefix)
        if reason:
            found[pid] = reason
    return found
