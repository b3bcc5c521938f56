# SPDX-License-Identifier: GPL-2.0-or-later
"""Bench row of drbd: monitor of a connected UpToDate Secondary, ours against ocf:linbit:drbd, in the same guest.

There is no DRBD module on this machine's kernel: the row boots the qemu TCG pair of lab/hamail_lab/pair.py
(real DRBD 8.4, a real two-node Pacemaker inside the guests, so both agents publish their promotion score to a
live CIB), brings r0 up on both guests, and times the two agents alternately inside guest pair-a (timing from
the host would add the command spool's latency to both). Under TCG every process start is slow: the absolute
numbers are emulated-CPU seconds, the ratio is what compares. Neither agent has a deeper monitor level.
"""

import json
import pathlib
import shutil
import sys
import tempfile

from harness import BenchFailure, Case

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lab"))
LINBIT = "/usr/lib/ocf/resource.d/linbit/drbd"
RES = """resource r0 {
  protocol C;
  on pair-a { device /dev/drbd0; disk /dev/vda; address 192.0.2.21:7788; meta-disk internal; }
  on pair-b { device /dev/drbd0; disk /dev/vda; address 192.0.2.22:7788; meta-disk internal; }
}
"""
RUNS = 15
# Runs in the guest: alternate the two agents' monitor, wall time of each run, exit codes checked there.
TIMER = """
import json, os, subprocess, sys, time
env = json.loads(sys.argv[1]); runs = int(sys.argv[2]); agents = sys.argv[3:5]
times = {a: [] for a in agents}
for i in range(runs + 1):
    for agent in agents:
        began = time.monotonic()
        done = subprocess.run([agent, "monitor"], env=env, capture_output=True, text=True)
        took = time.monotonic() - began
        if done.returncode != 0:
            print(json.dumps({"failed": agent, "rc": done.returncode, "stderr": done.stderr[-1500:]})); sys.exit(1)
        if i:
            times[agent].append(took)
print(json.dumps(times))
"""


def cases() -> list:
    """Monitor (Secondary, connected, UpToDate) of ours against linbit's, timed inside the same guest."""
    from hamail_lab.pair import Pair
    state: dict = {}
    ours = str(ROOT / "agents" / "drbd")
    env = {"OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": "drbd-r0:0", "OCF_RESOURCE_TYPE": "drbd",
           "OCF_RESKEY_drbd_resource": "r0", "OCF_RESKEY_CRM_meta_interval": "20000",
           "OCF_RESKEY_CRM_meta_timeout": "20000", "OCF_RESKEY_crm_feature_set": "3.16.1",
           "OCF_RESKEY_CRM_meta_clone_max": "2", "OCF_RESKEY_CRM_meta_clone_node_max": "1",
           "OCF_RESKEY_CRM_meta_master_max": "1", "OCF_RESKEY_CRM_meta_master_node_max": "1",
           "OCF_RESKEY_CRM_meta_promotable": "true", "OCF_RESKEY_CRM_meta_promoted_max": "1",
           "OCF_RESKEY_CRM_meta_promoted_node_max": "1", "OCF_RESKEY_CRM_meta_notify": "true",
           "OCF_RESKEY_CRM_meta_on_node": "pair-a", "HA_LOGFACILITY": "none",
           "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}

    def setup():
        pair = Pair(tempfile.mkdtemp(prefix="hamail-bench-drbd-"))
        state["pair"] = pair
        pair.start()
        for key in "ab":
            pair.write(key, "/etc/drbd.d/r0.res", RES)
            pair.run(key, ["drbdadm", "create-md", "--force", "r0"], check=True)
        pair.start_cluster()
        for key in "ab":
            pair.run(key, ["drbdadm", "up", "r0"], check=True)
        pair.run("a", ["drbdadm", "wait-connect", "r0"], timeout=60, check=True)
        pair.run("a", ["drbdadm", "--", "--clear-bitmap", "new-current-uuid", "r0"], check=True)

    def teardown():
        if "pair" in state:
            pair = state.pop("pair")
            pair.stop()
            shutil.rmtree(pair.workdir, ignore_errors=True)  # the guests' disk images

    def once():
        # run_case does not call setup/teardown for a scenario timed from inside: the pair lives only here
        setup()
        try:
            return timed(state["pair"])
        finally:
            teardown()

    def timed(pair):
        done = pair.run("a", ["/usr/bin/python3", "-c", TIMER, json.dumps(env), str(RUNS), ours, LINBIT],
                        timeout=900)
        try:
            times = json.loads(done.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise BenchFailure("the timing loop in pair-a printed no result", rc=done.returncode,
                               stderr=done.stderr) from None
        if "failed" in times:
            raise BenchFailure(f"{times['failed']} monitor failed in pair-a", rc=times["rc"], stderr=times["stderr"])
        return times[ours], times[LINBIT]

    return [Case("drbd", "monitor (Secondary, connected, UpToDate; inside a TCG guest)", None, None,
                 once=once, repeat=RUNS, target=0.7)]
