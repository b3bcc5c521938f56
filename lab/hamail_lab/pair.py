# SPDX-License-Identifier: GPL-2.0-or-later
"""A pair of qemu TCG guests running Debian's 6.1 kernel (real DRBD 8.4) over the host's root, read-only.

Each guest: Debian's linux-image-6.1 (downloaded with ``apt-get download`` into the cache, unpacked with
``dpkg-deb -x``, never installed), a busybox initramfs (cached, rebuilt when its inputs change) that loads
the modules, mounts the host's ``/`` over 9p as the lower layer of an overlayfs with a tmpfs upper layer and
``switch_root``s into it, so the guest runs the host's Python, drbd-utils and the checkout. Two virtio disks
per guest (``/dev/vda``, ``/dev/vdb``), one virtio NIC joined to the other guest by qemu's UDP socket
networking (either side may restart). Commands run through a spool directory shared over 9p (read-write,
one per guest): the host writes ``cmd/<id>.json``, ``pair_guest.py`` (PID 1 in the guest) runs it and writes
``out/<id>.json``. Progress of both goes to the serial console, kept in ``<workdir>/<name>/console.log``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .hostsys import LabError, wait_for

CACHE = Path("/var/cache/hamail/drbd-pair")
KERNEL_PACKAGE = "linux-image-6.1.0-50-amd64"
BUSYBOX = Path("/bin/busybox")
QEMU = "qemu-system-x86_64"
GUEST_SCRIPT = Path(__file__).with_name("pair_guest.py")
# Loaded in this order after their dependencies (modules.dep); crc32c_generic first because libcrc32c asks
# the crypto API for crc32c at load time and the initramfs has no modprobe to find it.
MODULES = ("crc32c_generic", "virtio_pci", "virtio_blk", "virtio_net", "9pnet_virtio", "9p", "overlay",
           "crc16", "ext4", "drbd")
BOOT_TIMEOUT = 120.0

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
exec >/dev/console 2>&1
echo "hamail-init: loading modules"
for m in $(cat /modules.order); do insmod "/modules/$m" || echo "hamail-init: insmod $m failed"; done
echo "hamail-init: mounting the host root"
mkdir -p /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /lower || echo "hamail-init: 9p failed"
mount -t tmpfs -o size=256m tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot
for d in proc sys dev; do mount --move /$d /newroot/$d; done
mount -t tmpfs tmpfs /newroot/run
# /tmp stays the host's, seen through the overlay (writes land in its tmpfs layer): a checkout under /tmp
# (CI clones there) must be visible at the same path in the guest.
mkdir -p /newroot/dev/shm /newroot/run/lock /newroot/hamail-share
mount -t tmpfs tmpfs /newroot/dev/shm
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share /newroot/hamail-share
echo "hamail-init: switch_root"
exec switch_root /newroot /usr/bin/python3 -S /hamail-share/pair_guest.py
"""


# Started by the host through the command loop (``Pair.start_cluster``): corosync (knet on eth0, two_node
# quorum) then pacemakerd, with every step on the serial console. What made Pacemaker run in a TCG guest here:
# knet on the guest's own interface (not lo), tmpfs on /dev/shm (libqb's IPC), /var/lib/pacemaker/* owned
# by hacluster:haclient in the overlay's writable layer, and a fresh CIB.
CLUSTER_SCRIPT = r"""#!/bin/sh
exec >/dev/console 2>&1
say() { echo "[$(cut -d' ' -f1 /proc/uptime)] cluster: $*"; }
mkdir -p /etc/corosync /var/lib/corosync /var/log/corosync /var/log/pacemaker
for d in cib pengine blackbox cores; do mkdir -p /var/lib/pacemaker/$d; done
rm -f /var/lib/pacemaker/cib/*
chown -R hacluster:haclient /var/lib/pacemaker /var/log/pacemaker
chmod 770 /var/log/pacemaker
cp /hamail-share/corosync.conf /etc/corosync/corosync.conf
say "starting corosync"
setsid corosync -f >/var/log/corosync/stdout 2>&1 </dev/null &
i=0
while ! corosync-cmapctl -g totem.cluster_name >/dev/null 2>&1; do
  i=$((i+1)); [ $i -gt 120 ] && { say "corosync did not answer in 120 s"; exit 1; }
  sleep 1
done
say "corosync answers after $i s; starting pacemakerd"
PCMK_logfile=/var/log/pacemaker/pacemaker.log setsid pacemakerd -f >/var/log/pacemaker/stdout 2>&1 </dev/null &
say "pacemakerd started"
"""


def corosync_conf(guests: Sequence["Guest"], name: str = "hmpair") -> str:
    """corosync.conf for the pair: knet over the guests' eth0, two_node quorum."""
    nodes = "".join(f"  node {{\n    ring0_addr: {g.address}\n    name: {g.name}\n    nodeid: {i}\n  }}\n"
                    for i, g in enumerate(guests, 1))
    return (f"totem {{\n  version: 2\n  cluster_name: {name}\n  transport: knet\n  crypto_cipher: none\n"
            f"  crypto_hash: none\n  token: 5000\n}}\nnodelist {{\n{nodes}}}\n"
            f"quorum {{\n  provider: corosync_votequorum\n  two_node: 1\n}}\n"
            f"logging {{\n  to_logfile: yes\n  logfile: /var/log/corosync/corosync.log\n  to_stderr: no\n"
            f"  timestamp: on\n}}\n")


def _die_with_parent() -> None:
    """In the qemu child: SIGKILL when the process that started it dies (a killed test run leaves no guest)."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpio_newc(root: Path) -> bytes:
    """A newc cpio archive of ``root`` (what the kernel unpacks as an initramfs)."""
    out = bytearray()
    ino = 1

    def entry(name: str, mode: int, data: bytes) -> None:
        nonlocal ino
        header = "070701" + "".join(f"{v:08x}" for v in (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0,
                                                          len(name) + 1, 0))
        ino += 1
        out.extend(header.encode() + name.encode() + b"\0")
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            entry(name, st.st_mode, os.readlink(path).encode())
        elif stat.S_ISDIR(st.st_mode):
            entry(name, st.st_mode, b"")
        else:
            entry(name, st.st_mode, path.read_bytes())
    entry("TRAILER!!!", 0, b"")
    return bytes(out)


@dataclass
class Images:
    """The kernel and initramfs a guest boots."""
    kernel: Path
    initramfs: Path


def ensure_kernel(cache: Path = CACHE) -> Path:
    """Debian's 6.1 kernel package unpacked under the cache (downloaded once, never installed); its module dir."""
    unpacked = cache / "kernel"
    moddirs = sorted((unpacked / "lib" / "modules").glob("*")) if unpacked.is_dir() else []
    if not moddirs:
        cache.mkdir(parents=True, exist_ok=True)
        debs = sorted(cache.glob(f"{KERNEL_PACKAGE}_*.deb"))
        if not debs:
            print(f"pair: downloading {KERNEL_PACKAGE}", flush=True)
            subprocess.run(["apt-get", "download", KERNEL_PACKAGE], cwd=cache, check=True, timeout=600,
                           stdin=subprocess.DEVNULL)
            debs = sorted(cache.glob(f"{KERNEL_PACKAGE}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(unpacked)], check=True, timeout=300)
        moddirs = sorted((unpacked / "lib" / "modules").glob("*"))
    moddir = moddirs[-1]
    if not (moddir / "modules.dep").exists():
        subprocess.run(["depmod", "-b", str(unpacked), moddir.name], check=True, timeout=120)
    return moddir


def _module_order(moddir: Path) -> list[str]:
    deps: dict[str, list[str]] = {}
    paths: dict[str, str] = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        target, _, rest = line.partition(":")
        name = Path(target).name.split(".ko")[0].replace("-", "_")
        paths[name] = target
        deps[target] = rest.split()
    order: list[str] = []

    def add(target: str) -> None:
        for dep in reversed(deps.get(target, [])):
            add(dep)
        if target not in order:
            order.append(target)

    for module in MODULES:
        if module not in paths:
            raise LabError(f"module {module} is not in {moddir}")
        add(paths[module])
    return order


def ensure_images(cache: Path = CACHE) -> Images:
    """The kernel and a busybox initramfs, rebuilt when the init script, busybox or the module set changes."""
    moddir = ensure_kernel(cache)
    order = _module_order(moddir)
    digest = hashlib.sha256()
    for part in (INIT.encode(), BUSYBOX.read_bytes(), moddir.name.encode(), "\n".join(order).encode()):
        digest.update(part)
    initramfs = cache / f"initramfs-{digest.hexdigest()[:16]}.cpio"
    if not initramfs.exists():
        build = cache / f"build-{os.getpid()}"
        shutil.rmtree(build, ignore_errors=True)
        for sub in ("bin", "dev", "proc", "sys", "modules"):
            (build / sub).mkdir(parents=True)
        shutil.copy2(BUSYBOX, build / "bin" / "busybox")
        (build / "bin" / "sh").symlink_to("busybox")
        names = []
        for target in order:
            shutil.copy2(moddir / target, build / "modules" / Path(target).name)
            names.append(Path(target).name)
        (build / "modules.order").write_text("\n".join(names) + "\n")
        (build / "init").write_text(INIT)
        (build / "init").chmod(0o755)
        tmp = initramfs.with_suffix(".tmp")
        tmp.write_bytes(_cpio_newc(build))
        tmp.rename(initramfs)
        shutil.rmtree(build, ignore_errors=True)
    kernel = sorted((cache / "kernel" / "boot").glob("vmlinuz-*"))[-1]
    return Images(kernel, initramfs)


@dataclass
class Result:
    """What a command in a guest did."""
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Guest:
    """One qemu guest of the pair."""
    name: str
    address: str
    dir: Path
    disks: list[Path]
    udp_local: int
    udp_remote: int
    mac: str
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def console(self) -> Path:
        """The serial console log."""
        return self.dir / "console.log"

    @property
    def share(self) -> Path:
        """The spool directory shared with the guest."""
        return self.dir / "share"


class Pair:
    """Two TCG guests with real DRBD 8.4; ``with Pair(workdir) as p: p.run("a", [...])``."""

    def __init__(self, workdir: str | Path, *, disk_mib: int = 32, memory_mib: int = 768,
                 cache: Path = CACHE, subnet: str = "192.0.2") -> None:
        self.workdir = Path(workdir)
        self.disk_mib = disk_mib
        self.memory_mib = memory_mib
        self.cache = cache
        ports = (_free_udp_port(), _free_udp_port())
        self.guests = {
            "a": Guest("pair-a", f"{subnet}.21", self.workdir / "a", [], ports[0], ports[1], "52:54:00:48:4d:0a"),
            "b": Guest("pair-b", f"{subnet}.22", self.workdir / "b", [], ports[1], ports[0], "52:54:00:48:4d:0b"),
        }

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> "Pair":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout: float = BOOT_TIMEOUT) -> None:
        """Boot both guests and wait until each answers a command."""
        images = ensure_images(self.cache)
        try:
            for key in self.guests:
                self.boot(key, images)
            for key in self.guests:
                self.wait_ready(key, timeout)
        except BaseException:
            self.stop()
            raise

    def boot(self, key: str, images: Images | None = None) -> None:
        """Start one guest's qemu (its disks are created once and kept across boots)."""
        images = images or ensure_images(self.cache)
        guest = self.guests[key]
        for sub in ("cmd", "out"):
            (guest.share / sub).mkdir(parents=True, exist_ok=True)
            for stale in (guest.share / sub).iterdir():
                stale.unlink()
        (guest.share / "ready").unlink(missing_ok=True)  # written by this boot's guest, not a previous one
        shutil.copy2(GUEST_SCRIPT, guest.share / "pair_guest.py")
        (guest.share / "identity.json").write_text(json.dumps(
            {"hostname": guest.name, "address": f"{guest.address}/24"}))
        guest.disks = []
        for index in range(2):
            disk = guest.dir / f"disk{index}.img"
            if not disk.exists():
                with open(disk, "wb") as handle:
                    handle.truncate(self.disk_mib << 20)
            guest.disks.append(disk)
        argv = [QEMU, "-accel", "tcg", "-m", str(self.memory_mib), "-smp", "1", "-nodefaults", "-no-user-config",
                "-display", "none", "-monitor", "none", "-serial", f"file:{guest.console}",
                "-kernel", str(images.kernel), "-initrd", str(images.initramfs),
                "-append", "console=ttyS0 panic=-1 quiet loglevel=4",
                "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
                "-virtfs", f"local,path={guest.share},mount_tag=share,security_model=none,multidevs=remap",
                "-netdev", f"socket,id=n0,udp=127.0.0.1:{guest.udp_remote},localaddr=127.0.0.1:{guest.udp_local}",
                "-device", f"virtio-net-pci,netdev=n0,mac={guest.mac}", "-no-reboot"]
        for disk in guest.disks:
            argv += ["-drive", f"file={disk},if=virtio,format=raw,cache=unsafe"]
        with open(guest.dir / "qemu.err", "wb") as err:
            guest.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                             start_new_session=True, preexec_fn=_die_with_parent)

    def wait_ready(self, key: str, timeout: float = BOOT_TIMEOUT) -> None:
        """Wait until the guest's command loop answers (raising with the console's tail if it does not)."""
        guest = self.guests[key]

        def ready() -> bool:
            if guest.process is None or guest.process.poll() is not None:
                raise LabError(f"{guest.name}: qemu exited: {self.tail(key)}")
            return (guest.share / "ready").exists()
        try:
            wait_for(ready, timeout, f"{guest.name} to boot", max_interval=0.5)
        except LabError as exc:
            raise LabError(f"{exc}; console: {self.tail(key)}") from None

    def kill(self, key: str) -> None:
        """Power cut: SIGKILL this guest's qemu."""
        guest = self.guests[key]
        if guest.process is not None and guest.process.poll() is None:
            guest.process.kill()
            guest.process.wait(timeout=30)
        guest.process = None

    def stop(self, timeout: float = 20.0) -> None:
        """Power both guests off (``poweroff -f`` through the command loop), killing qemu if it lingers."""
        for key, guest in self.guests.items():
            if guest.process is not None and guest.process.poll() is None:
                try:
                    self._submit(key, {"argv": ["poweroff", "-f"], "timeout": 5}, wait=False)
                except OSError:
                    pass
        end = time.monotonic() + timeout
        for key, guest in self.guests.items():
            if guest.process is None:
                continue
            try:
                guest.process.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            self.kill(key)

    def start_cluster(self, timeout: float = 240.0) -> float:
        """corosync + Pacemaker in both guests; wait until both are online under one DC; return seconds taken."""
        began = time.monotonic()
        conf = corosync_conf(list(self.guests.values()))
        for key, guest in self.guests.items():
            (guest.share / "corosync.conf").write_text(conf)
            (guest.share / "cluster.sh").write_text(CLUSTER_SCRIPT)
            self.run(key, ["sh", "/hamail-share/cluster.sh"], timeout=150, check=True)

        def formed() -> bool:
            text = self.run("a", ["crm_mon", "-1", "-X"], timeout=60).stdout
            return ('<current_dc present="true"' in text and text.count('online="true"') == 2)
        wait_for(formed, timeout, "the pair's Pacemaker to elect a DC with both nodes online", interval=2,
                 max_interval=5)
        return time.monotonic() - began

    def tail(self, key: str, lines: int = 15) -> str:
        """The last lines of a guest's serial console."""
        try:
            text = self.guests[key].console.read_text(errors="replace")
        except OSError:
            return "(no console output)"
        return " | ".join(text.strip().splitlines()[-lines:])

    # ------------------------------------------------------------ commands

    def _submit(self, key: str, request: dict, *, wait: bool = True, timeout: float = 60.0) -> dict | None:
        guest = self.guests[key]
        ident = uuid.uuid4().hex
        tmp = guest.share / "cmd" / f".{ident}.tmp"
        tmp.write_text(json.dumps(request))
        tmp.rename(guest.share / "cmd" / f"{ident}.json")
        if not wait:
            return None
        out = guest.share / "out" / f"{ident}.json"

        def answered() -> bool:
            if guest.process is None or guest.process.poll() is not None:
                raise LabError(f"{guest.name} died while running {request.get('argv')}: {self.tail(key)}")
            return out.exists()
        wait_for(answered, timeout + 15, f"{guest.name} to run {request.get('argv')}", max_interval=0.2)
        result = json.loads(out.read_text())
        out.unlink()
        return result

    def run(self, key: str, argv: Sequence[str], *, timeout: float = 60.0, env: dict | None = None,
            input: str | None = None, check: bool = False) -> Result:
        """Run argv in a guest (no shell) and return its exit code and output; ``check`` raises on failure."""
        answer = self._submit(key, {"argv": list(argv), "timeout": timeout, "env": env or {}, "input": input},
                              timeout=timeout)
        result = Result(list(argv), answer["returncode"], answer["stdout"], answer["stderr"])
        if check and result.returncode != 0:
            raise LabError(f"{self.guests[key].name}: {' '.join(argv)} exited {result.returncode}: "
                           f"{result.stderr.strip() or result.stdout.strip()}")
        return result

    def write(self, key: str, path: str, text: str) -> None:
        """Write a file inside a guest (its overlay's tmpfs layer)."""
        self.run(key, ["/usr/bin/python3", "-S", "-c",
                       "import sys,os; os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True); "
                       "open(sys.argv[1], 'w').write(sys.stdin.read())", path], input=text, check=True)
