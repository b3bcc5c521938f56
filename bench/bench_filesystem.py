# SPDX-License-Identifier: GPL-2.0-or-later
"""Bench rows of Filesystem: monitor depth 0 and 20, and stop with 20 processes holding the mount, vs heartbeat.

For the stop row every holder has its working directory and an open descriptor inside the mount before the stop
is timed (each reports 'ready' with the device of its cwd), and after the stop the bench checks that the mount
is gone and every holder was killed; otherwise the run fails."""

import os
import pathlib
import select
import shutil
import subprocess
import sys
import tempfile
import time

from harness import BenchFailure, Case, agent_argv, run_step

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEARTBEAT = "/usr/lib/ocf/resource.d/heartbeat/Filesystem"
HOLD = ("import os, sys, time\n"
        "os.chdir(sys.argv[1])\n"
        "fd = os.open('.', os.O_RDONLY)\n"
        "print('ready', os.fstat(fd).st_dev, flush=True)\n"
        "time.sleep(600)\n")
HOLDERS = 20
READY_TIMEOUT = 30.0
GONE_TIMEOUT = 10.0


def _poll(condition, timeout: float):
    """condition() until it is truthy, with a short backoff, at most timeout seconds; its last value."""
    end, delay = time.monotonic() + timeout, 0.005
    while True:
        value = condition()
        if value or time.monotonic() > end:
            return value
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


class Lab:
    """Two loop devices with ext4, one for each agent, and the processes started to hold them."""

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="hamail-bench-fs-")
        self.loops, self.procs = {}, []

    def up(self):
        """Create the loop devices with ext4 and the mount points (no-op for those that exist)."""
        for side in ("ours", "upstream"):
            if side in self.loops:
                continue
            image = os.path.join(self.base, f"{side}.img")
            with open(image, "wb") as handle:
                handle.truncate(64 * 1024 * 1024)
            self.loops[side] = run_step(["losetup", "-f", "--show", image], what="losetup").strip()
            run_step(["mkfs.ext4", "-q", "-F", self.loops[side]], what="mkfs.ext4")
            os.makedirs(self.mnt(side), exist_ok=True)

    def mnt(self, side):
        """The mount point of one side."""
        return os.path.join(self.base, f"mnt-{side}")

    def env(self, side, level="0"):
        """The OCF environment of one side's instance."""
        return {"OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": f"bench-fs-{side}",
                "OCF_RESKEY_device": self.loops[side],
                "OCF_RESKEY_directory": self.mnt(side), "OCF_RESKEY_fstype": "ext4", "OCF_CHECK_LEVEL": level,
                "OCF_RESKEY_CRM_meta_interval": "20000", "OCF_RESKEY_CRM_meta_timeout": "60000",
                "HA_RSCTMP": self.base}

    def hold(self, side, count=HOLDERS):
        """Start count processes and wait until each has its cwd and an open fd inside the side's mount."""
        mnt = self.mnt(side)
        if not os.path.ismount(mnt):
            raise BenchFailure(f"{side}: {mnt} is not mounted after start")
        device = os.stat(mnt).st_dev
        started = [subprocess.Popen(["/usr/bin/python3", "-S", "-c", HOLD, mnt], stdout=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL) for _ in range(count)]
        self.procs += started
        end = time.monotonic() + READY_TIMEOUT
        for proc in started:
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, end - time.monotonic()))
            line = proc.stdout.readline().decode().split() if ready else []
            if line != ["ready", str(device)]:
                raise BenchFailure(f"{side}: holder {proc.pid} did not report ready inside {mnt} "
                                   f"within {READY_TIMEOUT:g} s (said {line})")

    def check_stopped(self, side):
        """After a stop: the mount is gone and every holder was killed (BenchFailure otherwise)."""
        mnt = self.mnt(side)
        if os.path.ismount(mnt):
            raise BenchFailure(f"{side} stop returned 0 but {mnt} is still mounted")
        # A holder leaves the mount just before it is reaped: wait for its exit a little.
        alive = _poll(lambda: [p.pid for p in self.procs if p.poll() is None] or None, GONE_TIMEOUT) or []
        if alive:
            raise BenchFailure(f"{side} stop: holders {alive} still run {GONE_TIMEOUT:g} s after the stop")
        survived = [(p.pid, p.returncode) for p in self.procs if p.returncode >= 0]
        if survived:  # they sleep 600 s: only a signal ends them
            raise BenchFailure(f"{side} stop: holders exited by themselves, not killed: {survived}")

    def reap(self):
        """Collect the killed holders (and kill any survivor)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
        self.procs.clear()

    def down(self):
        """Kill holders, unmount, detach the loop devices and remove the directory."""
        self.reap()
        for side, loop in self.loops.items():
            subprocess.run(["umount", self.mnt(side)], capture_output=True)
            # Just after an unmount the loop device can still be busy for a moment.
            if not _poll(lambda: subprocess.run(["losetup", "-d", loop], capture_output=True).returncode == 0, 2.0):
                print(f"bench: could not detach {loop}", file=sys.stderr, flush=True)
        self.loops.clear()
        shutil.rmtree(self.base, ignore_errors=True)


def cases() -> list:
    """Monitor at depths 0 and 20 (mounted) and stop with 20 holders, ours against heartbeat's."""
    lab = Lab()
    lab.up()  # the environments name the loop devices, so they must exist before the cases are built
    agents = {"ours": agent_argv(ROOT / "agents" / "Filesystem"), "upstream": agent_argv(HEARTBEAT)}

    def action(side, name, level="0"):
        run_step(agents[side] + [name], lab.env(side, level), what=f"{side} Filesystem {name}")

    def setup():
        action("ours", "start")
        action("upstream", "start")

    def stop_all():
        action("ours", "stop")
        action("upstream", "stop")

    def before_stop(side):
        lab.reap()
        action(side, "start")
        lab.hold(side)

    def after_stop(side):
        lab.check_stopped(side)
        lab.reap()

    def monitor(level):
        return Case("Filesystem", f"monitor depth {level} (mounted)", agents["ours"] + ["monitor"],
                    agents["upstream"] + ["monitor"], env_ours=lab.env("ours", level),
                    env_upstream=lab.env("upstream", level), setup=setup, teardown=stop_all, repeat=20, target=0.7)

    return [
        monitor("0"),
        monitor("20"),
        Case("Filesystem", f"stop with {HOLDERS} processes holding the mount (cwd and fd inside, all killed)",
             agents["ours"] + ["stop"], agents["upstream"] + ["stop"], env_ours=lab.env("ours"),
             env_upstream=lab.env("upstream"), setup=lab.up, before_each=before_stop, after_each=after_stop,
             teardown=lab.down, repeat=5),
    ]
