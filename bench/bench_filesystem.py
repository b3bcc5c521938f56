"""Bench rows of Filesystem: monitor depth 0 and 20, and stop with 20 processes holding the mount, vs heartbeat."""

import os
import pathlib
import shutil
import subprocess
import tempfile
import time

from harness import Case

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEARTBEAT = "/usr/lib/ocf/resource.d/heartbeat/Filesystem"
HOLD = "import os, sys, time; os.chdir(sys.argv[1]); time.sleep(600)"


class Lab:
    """Two loop devices with ext4, one for each agent, and the processes started to hold them."""

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="hamail-bench-fs-")
        self.loops, self.procs = {}, []

    def up(self):
        for side in ("ours", "upstream"):
            if side in self.loops:
                continue
            image = os.path.join(self.base, f"{side}.img")
            with open(image, "wb") as handle:
                handle.truncate(64 * 1024 * 1024)
            loop = subprocess.run(["losetup", "-f", "--show", image], check=True, capture_output=True,
                                  text=True).stdout.strip()
            self.loops[side] = loop
            subprocess.run(["mkfs.ext4", "-q", "-F", loop], check=True)
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

    def hold(self, side, count=20):
        """Start count processes with their working directory inside the side's mount."""
        for _ in range(count):
            self.procs.append(subprocess.Popen(["/usr/bin/python3", "-S", "-c", HOLD, self.mnt(side)]))

    def reap(self):
        """Collect the killed holders (and kill any survivor)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self.procs.clear()

    def down(self):
        self.reap()
        for side, loop in self.loops.items():
            subprocess.run(["umount", self.mnt(side)], capture_output=True)
            for _ in range(20):  # just after an unmount the loop device can still be busy for a moment
                if subprocess.run(["losetup", "-d", loop], capture_output=True).returncode == 0:
                    break
                time.sleep(0.1)
        self.loops.clear()
        shutil.rmtree(self.base, ignore_errors=True)


def cases() -> list:
    """Monitor at depths 0 and 20 (mounted) and stop with 20 holders, ours against heartbeat's."""
    lab = Lab()
    lab.up()  # the environments name the loop devices, so they must exist before the cases are built
    agents = {"ours": [str(ROOT / "agents" / "Filesystem")], "upstream": [HEARTBEAT]}

    def action(side, name, level="0"):
        subprocess.run(agents[side] + [name], env={**os.environ, **lab.env(side, level)},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

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

    def monitor(level):
        return Case("Filesystem", f"monitor depth {level} (mounted)", agents["ours"] + ["monitor"],
                    agents["upstream"] + ["monitor"], env_ours=lab.env("ours", level),
                    env_upstream=lab.env("upstream", level), setup=setup, teardown=stop_all, repeat=20, target=0.7)

    return [
        monitor("0"),
        monitor("20"),
        Case("Filesystem", "stop with 20 processes holding the mount", agents["ours"] + ["stop"],
             agents["upstream"] + ["stop"], env_ours=lab.env("ours"), env_upstream=lab.env("upstream"),
             setup=lab.up, before_each=before_stop, teardown=lab.down, repeat=5),
    ]
