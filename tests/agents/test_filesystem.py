# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:Filesystem on real loop devices with ext4 and xfs, real mounts and real processes holding them."""

import errno
import os
import re
import signal
import subprocess
import time

import pytest

from agent_support import AGENTS, NODE_PYTHON, assert_clean, exit_reason, mounted, ocf_env, sh, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for loop devices and mounts")

OPEN_FILE = "import sys, time; f = open(sys.argv[1], 'w'); print('ready', flush=True); time.sleep(600)"
CWD = "import os, sys, time; os.chdir(sys.argv[1]); print('ready', flush=True); time.sleep(600)"
# The file stays mapped after every descriptor is closed (mmap keeps a dup): only /proc/PID/maps shows the hold.
MMAP = ("import mmap, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); os.ftruncate(fd, 4096); "
        "m = mmap.mmap(fd, 4096); fds = [int(f) for f in os.listdir('/proc/self/fd') if int(f) > 2]\n"
        "for f in fds:\n    try: os.close(f)\n    except OSError: pass\n"
        "print('ready', flush=True); time.sleep(600)")
IGNORE_TERM = ("import os, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); os.chdir(sys.argv[1]); "
               "print('ready', flush=True); time.sleep(600)")


def _params(device, directory, fstype="ext4", **extra):
    return {"device": device, "directory": str(directory), "fstype": fstype, **extra}


@pytest.mark.parametrize("fstype", ["ext4", "xfs"])
def test_lifecycle_and_monitor_depths(fs, looplab, fstype):
    params = _params(looplab.device(fstype), looplab.base / "mnt", fstype)
    assert fs("monitor", **params).returncode == 7
    assert fs("start", **params).returncode == 0
    assert fs("start", **params).returncode == 0  # double start
    assert mounted(looplab.base / "mnt")
    for level in ("0", "10", "20"):
        result = fs("monitor", env={"OCF_CHECK_LEVEL": level}, **params)
        assert result.returncode == 0, (level, result.stderr)
    assert list((looplab.base / "mnt" / ".Filesystem_status").iterdir())
    assert fs("stop", **params).returncode == 0
    assert fs("stop", **params).returncode == 0  # double stop
    assert not mounted(looplab.base / "mnt")
    assert fs("monitor", **params).returncode == 7


def test_stop_kills_holders_of_this_mount_only(fs, looplab):
    device = looplab.device()
    mnt, other = looplab.base / "mnt", looplab.dir("other")
    params = _params(device, mnt)
    assert fs("start", **params).returncode == 0
    (mnt / "shared").mkdir()
    # The same filesystem visible elsewhere through a bind mount, used by an unrelated process.
    sh("mount", "--bind", mnt / "shared", other)
    unrelated = looplab.hold(CWD, other)
    unrelated_file = looplab.hold(OPEN_FILE, other / "keep")
    holders = [looplab.hold(OPEN_FILE, mnt / "open"), looplab.hold(CWD, mnt / "shared"),
               looplab.hold(MMAP, mnt / "mapped")]
    result = fs("stop", **params)
    assert result.returncode == 0, result.stderr
    assert not mounted(mnt)
    for proc in holders:
        assert proc.wait(timeout=5) == -signal.SIGTERM  # the agent's TERM ended it
    assert unrelated.poll() is None and unrelated_file.poll() is None
    assert mounted(other)
    for reason in ("fd", "cwd", "maps"):
        assert reason in result.stderr, result.stderr


def test_bind_mount_resource_spares_users_of_the_source(fs, looplab):
    source, mnt = looplab.dir("source"), looplab.base / "bindmnt"
    params = _params(str(source), mnt, "none", options="bind")
    user_of_source = looplab.hold(CWD, source)
    assert fs("start", **params).returncode == 0
    assert fs("monitor", **params).returncode == 0
    holder = looplab.hold(CWD, mnt)
    assert fs("stop", **params).returncode == 0
    assert holder.wait(timeout=5) == -signal.SIGTERM and user_of_source.poll() is None
    assert not mounted(mnt)


def test_submounts_unmounted_first_and_their_holders_killed(fs, looplab):
    params = _params(looplab.device(), looplab.base / "mnt")
    assert fs("start", **params).returncode == 0
    sub = looplab.base / "mnt" / "sub"
    sub.mkdir()
    sh("mount", "-t", "tmpfs", "hmiptmp", sub)
    deeper = sub / "deeper"
    deeper.mkdir()
    sh("mount", "-t", "tmpfs", "hmiptmp", deeper)
    holder = looplab.hold(CWD, deeper)
    assert fs("stop", **params).returncode == 0
    assert holder.wait(timeout=5) == -signal.SIGTERM
    assert not looplab.mounts_below()


def test_process_ignoring_term_is_killed_within_the_deadline(fs, looplab):
    params = _params(looplab.device(), looplab.base / "mnt", signal_delay="0.5", fast_stop="true")
    assert fs("start", **params).returncode == 0
    stubborn = looplab.hold(IGNORE_TERM, looplab.base / "mnt")
    began = time.monotonic()
    result = fs("stop", meta={"timeout": 20000}, **params)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - began < 10
    assert stubborn.wait(timeout=5) == -9


def test_symlinked_mountpoint(fs, looplab):
    real = looplab.dir("real")
    link = looplab.base / "link"
    link.symlink_to(real)
    params = _params(looplab.device(), link)
    assert fs("start", **params).returncode == 0
    assert mounted(real)
    assert fs("monitor", **params).returncode == 0
    assert fs("start", **params).returncode == 0
    assert fs("stop", **params).returncode == 0
    assert not mounted(real)


def test_depth_20_on_a_read_only_mount(fs, looplab):
    params = _params(looplab.device("xfs"), looplab.base / "mnt", "xfs", options="ro")
    assert fs("start", **params).returncode == 0
    result = fs("monitor", env={"OCF_CHECK_LEVEL": "20"}, **params)
    assert result.returncode == 0, result.stderr
    assert not (looplab.base / "mnt" / ".Filesystem_status").exists()
    assert fs("stop", **params).returncode == 0


def _super_options(point):
    """The superblock options of the mount at point (mountinfo's last field)."""
    for line in open("/proc/self/mountinfo"):
        if line.split()[4] == str(point):
            return set(line.split(" - ", 1)[1].split()[2].split(","))
    raise AssertionError(f"nothing mounted at {point}")


def test_depth_20_fails_on_a_mount_read_only_without_options_ro(fs, looplab):
    """ext4's errors=remount-ro (Debian's default): after an error the kernel remounts the filesystem read-only.
    Everything still reads, so depths 0 and 10 pass, but writers are dead: depth 20 fails and says why. The
    same for a remount read-only behind the cluster's back; only options=ro asks for a read-only mount."""
    device = looplab.device("ext4")
    mnt = looplab.base / "mnt"
    params = _params(device, mnt, options="errors=remount-ro")
    assert fs("start", **params).returncode == 0
    deep = {"OCF_CHECK_LEVEL": "20"}
    assert fs("monitor", env=deep, **params).returncode == 0  # the control: writable
    sh("mount", "-o", "remount,ro", mnt)
    result = fs("monitor", env=deep, **params)
    assert result.returncode == 1, result.stderr
    assert exit_reason(result) == (f"depth 20 check of {mnt} failed: it is mounted read-only, but options "
                                   "'errors=remount-ro' do not ask for ro"), result.stderr
    sh("mount", "-o", "remount,rw", mnt)
    assert fs("monitor", env=deep, **params).returncode == 0
    # A real filesystem error: ext4 handles it as configured, remounting read-only.
    with open(f"/sys/fs/ext4/{os.path.basename(device)}/trigger_fs_error", "w", encoding="ascii") as trigger:
        trigger.write("1")
    assert wait_for(lambda: "emergency_ro" in _super_options(mnt) or "ro" in _super_options(mnt)), \
        _super_options(mnt)
    with pytest.raises(OSError) as refused:
        open(mnt / "new-file", "w").close()
    assert refused.value.errno == errno.EROFS
    for level in ("0", "10"):
        assert fs("monitor", env={"OCF_CHECK_LEVEL": level}, **params).returncode == 0, level
    result = fs("monitor", env=deep, **params)
    assert result.returncode == 1, result.stderr
    # Kernels from 6.x mark the emergency (emergency_ro); older ones show a plain ro superblock.
    why = "the kernel remounted it read-only after errors" if "emergency_ro" in _super_options(mnt) else \
        "it is mounted read-only"
    assert exit_reason(result) == f"depth 20 check of {mnt} failed: {why}, but options 'errors=remount-ro' do " \
                                  "not ask for ro", result.stderr
    assert fs("stop", **params).returncode == 0
    assert not mounted(mnt)


def _fs_state(device):
    """The ext4 superblock's 'Filesystem state' (clean, or 'clean with errors' until fsck repairs it)."""
    out = sh("dumpe2fs", "-h", device).stdout
    return re.search(r"^Filesystem state:\s+(.*)$", out, re.M).group(1).strip()


def test_label_and_uuid_devices_and_fsck(fs, looplab):
    device = looplab.device("ext4", label="hmiplbl")
    uuid = sh("blkid", "-p", "-o", "value", "-s", "UUID", device).stdout.strip()
    # mount(8)'s TAG= forms, and heartbeat's option forms of them
    for spec in ("LABEL=hmiplbl", f"UUID={uuid}", "-L hmiplbl", f"--uuid={uuid}"):
        # The superblock's error flag: mount alone keeps it, only an fsck run clears it.
        sh("tune2fs", "-E", "force_fsck", device)
        assert _fs_state(device) == "clean with errors"
        params = _params(spec, looplab.base / "mnt", run_fsck="force")
        result = fs("start", **params)
        assert result.returncode == 0, result.stderr
        assert sh("findmnt", "-n", "-o", "SOURCE", looplab.base / "mnt").stdout.strip() == device
        assert fs("monitor", env={"OCF_CHECK_LEVEL": "10"}, **params).returncode == 0
        assert fs("stop", **params).returncode == 0
        assert not mounted(looplab.base / "mnt")
        assert _fs_state(device) == "clean", spec  # fsck ran before the mount
    # The control: run_fsck=no mounts the flagged filesystem as it is.
    sh("tune2fs", "-E", "force_fsck", device)
    params = _params(device, looplab.base / "mnt", run_fsck="no")
    assert fs("start", **params).returncode == 0
    assert fs("stop", **params).returncode == 0
    assert _fs_state(device) == "clean with errors"


def _openat_lines(trace, path_part):
    """The openat calls of an strace -f log whose path contains path_part."""
    return [line for line in trace.read_text().splitlines() if "openat(" in line and path_part in line]


def test_deep_monitors_open_with_o_direct(fs, looplab, tmp_path):
    """README: depth 20 writes its status file with O_DIRECT (and O_SYNC); depth 10 reads the device with O_DIRECT."""
    device = looplab.device("ext4")
    params = _params(device, looplab.base / "mnt")
    assert fs("start", **params).returncode == 0
    for level, path_part in (("20", str(looplab.base / "mnt" / ".Filesystem_status") + "/"), ("10", f'"{device}"')):
        trace = tmp_path / f"strace-{level}.log"
        env = ocf_env("Filesystem", params, env={"OCF_CHECK_LEVEL": level}, rsctmp=tmp_path / "rsc")
        result = subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat", "-o", str(trace), NODE_PYTHON,
                                 str(AGENTS / "Filesystem"), "monitor"], env=env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        opens = _openat_lines(trace, path_part)
        assert opens, trace.read_text()[-2000:]
        direct = [line for line in opens if "O_DIRECT" in line]
        assert direct, opens
        # The O_DIRECT open itself succeeded (no fallback after EINVAL).
        assert all(re.search(r"= \d+$", line) for line in direct), direct
        if level == "20":
            assert all("O_WRONLY" in line and "O_SYNC" in line for line in direct), direct
    assert fs("stop", **params).returncode == 0


def test_refuse_network_fs_mounts_local_block_storage_and_refuses_network_types(fs, looplab):
    device = looplab.device("ext4")
    mnt = looplab.base / "mnt"
    local = _params(device, mnt, refuse_network_fs="true")
    assert fs("validate-all", **local).returncode == 0
    assert fs("start", **local).returncode == 0
    assert sh("findmnt", "-n", "-o", "SOURCE,FSTYPE", mnt).stdout.split() == [device, "ext4"]
    assert fs("monitor", env={"OCF_CHECK_LEVEL": "20"}, **local).returncode == 0
    assert fs("stop", **local).returncode == 0
    assert not mounted(mnt)
    for source, fstype in (("server:/export", "nfs4"), ("server:/export", "nfs"), ("//server/share", "cifs"),
                           ("root@server:/export", "fuse.sshfs"), ("hmiptmp", "tmpfs")):
        allowed = fs("validate-all", **_params(source, mnt, fstype))
        assert allowed.returncode == 0, (fstype, allowed.stderr)  # the control: only the parameter refuses it
        for action in ("validate-all", "start"):
            result = fs(action, **_params(source, mnt, fstype, refuse_network_fs="true"))
            assert result.returncode == 6, (fstype, action, result.stderr)
            assert "must be on local block storage" in exit_reason(result), (fstype, result.stderr)
            assert_clean(result)
        assert not mounted(mnt)


def test_refuses_to_mount_over_or_above_other_mounts(fs, looplab):
    device = looplab.device()
    taken = looplab.dir("taken")
    sh("mount", "-t", "tmpfs", "hmiptmp", taken)
    result = fs("start", **_params(device, taken))
    assert result.returncode == 1 and "already has" in exit_reason(result)
    assert fs("monitor", **_params(device, taken)).returncode == 7
    assert fs("stop", **_params(device, taken)).returncode == 0
    assert mounted(taken)  # not ours: stop leaves it alone
    above = looplab.dir("above")
    (above / "inner").mkdir()
    sh("mount", "-t", "tmpfs", "hmiptmp", above / "inner")
    result = fs("start", **_params(device, above))
    assert result.returncode == 1 and "beneath" in exit_reason(result)
    assert not mounted(above)


def test_bad_input(fs, looplab):
    device = looplab.device("ext4")
    mnt = looplab.base / "mnt"
    # Values heartbeat's agent tolerates (run_fsck=sometimes, a relative directory) are in
    # tests/core/test_upstream_side_by_side.py, beside heartbeat's own answers.
    cases = [
        (_params(str(looplab.base / "nosuchdev"), mnt), 5, "does not exist on this node"),
        (_params(str(looplab.base / "disk0.img"), mnt), 5, "is not a block device on this node"),
        (_params(device, "/"), 6, "parameter directory: / is the root filesystem"),
        (_params(device, mnt, "xfs"), 1, "(/dev/loop"),  # mount refuses; the reason says what the device holds
        (_params("server:/export", mnt, "nfs4", refuse_network_fs="true"), 6,
         "parameter refuse_network_fs: " + str(mnt) + " must be on local block storage"),
        (_params(device, mnt, term_signals="NOSUCH"), 6, "parameter term_signals: unknown signal 'NOSUCH'"),
        (_params(device, mnt, "hamailnofs"), 5, "no hamailnofs filesystem"),
        ({"directory": str(mnt), "fstype": "ext4"}, 6, "parameter device: is required"),
    ]
    for params, code, reason in cases:
        result = fs("start", **params)
        assert result.returncode == code, (params, result.stderr)
        assert reason in exit_reason(result), (params, result.stderr)
        assert_clean(result)
        assert fs("stop", **params).returncode == 0
        assert not mounted(mnt)
    xfs = exit_reason(fs("start", **_params(device, mnt, "xfs")))
    assert xfs.startswith(f"mount {device} on {mnt} failed ({device} holds a ext4 filesystem, not xfs): "), xfs
    # A probe on a node without the device: not running.
    assert fs("monitor", **_params(str(looplab.base / "nosuchdev"), mnt)).returncode == 7
    clone = fs("validate-all", meta={"clone": "0", "clone_max": "2"}, **_params(device, mnt))
    assert clone.returncode == 6 and "cluster-aware" in exit_reason(clone)
    assert not mounted(mnt)


def test_ocf_tester(looplab):
    device = looplab.device("ext4")
    mnt = looplab.dir("mnt")
    result = subprocess.run(["ocf-tester", "-n", "fs", "-o", f"device={device}", "-o", f"directory={mnt}",
                             "-o", "fstype=ext4", str(AGENTS / "Filesystem")], capture_output=True, text=True,
                            timeout=300, env=ocf_env("Filesystem"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed all tests" in result.stdout + result.stderr
    assert not mounted(mnt)
