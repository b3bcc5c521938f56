# SPDX-License-Identifier: GPL-2.0-or-later
"""hamail.agents.filesystem.mounts: mountinfo parsing, submount order, canonical paths, network detection, the /proc holders walk."""

import subprocess
import sys

from hamail.agents.filesystem import mounts

SAMPLE = (
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "40 22 7:0 / /srv/data rw,relatime shared:2 - xfs /dev/loop0 rw,attr2\n"
    "41 40 0:50 / /srv/data/sub rw - tmpfs tmpfs rw\n"
    "42 41 0:51 / /srv/data/sub/deep ro - tmpfs tmpfs rw\n"
    "43 22 7:0 /shared /mnt/with\\040space rw - xfs /dev/loop0 rw\n"
    "44 40 0:52 / /srv/data/other rw - nfs4 server:/export rw\n"
)


def test_parse_mountinfo_unescapes_and_reads_fields():
    table = mounts.parse_mountinfo(SAMPLE)
    bind = mounts.find_mount(table, "/mnt/with space")
    assert bind.dev == (7, 0) and bind.root == "/shared" and bind.fstype == "xfs" and bind.source == "/dev/loop0"
    assert mounts.find_mount(table, "/srv/data/sub/deep").read_only
    assert not mounts.find_mount(table, "/srv/data").read_only
    assert mounts.find_mount(table, "/nowhere") is None


def test_submounts_deepest_first():
    table = mounts.parse_mountinfo(SAMPLE)
    points = [m.point for m in mounts.submounts(table, "/srv/data")]
    assert points[0] == "/srv/data/sub/deep" and set(points) == {"/srv/data/sub/deep", "/srv/data/sub",
                                                                 "/srv/data/other"}
    assert mounts.submounts(table, "/srv/dat") == []  # a prefix of a name is not a parent


def test_canonical_dir_resolves_symlinks_but_not_mount_points(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert mounts.canonical_dir(str(tmp_path / "link") + "/") == str(real)
    table = mounts.parse_mountinfo(f"1 0 0:1 / {tmp_path}/link rw - nfs4 h:/x rw\n")
    assert mounts.canonical_dir(str(tmp_path / "link"), table) == str(tmp_path / "link")


def test_is_network():
    assert mounts.is_network("nfs4", "server:/export") and mounts.is_network("cifs", "//srv/share")
    assert mounts.is_network("ext4", "server:/export")
    assert not mounts.is_network("ext4", "/dev/sdb1") and not mounts.is_network("xfs", "UUID=abc")


def test_resolve_device(tmp_path):
    assert mounts.resolve_device("/dev/null") == "/dev/null"
    assert mounts.resolve_device(str(tmp_path / "missing")) is None
    assert mounts.resolve_device("LABEL=hmip-no-such-label-here") is None  # no runner: no blkid


def test_holders_finds_cwd_and_open_files_by_path_only(tmp_path):
    inside, outside = tmp_path / "inside", tmp_path / "inside-not"
    inside.mkdir()
    outside.mkdir()
    # a few files open first, so that the one under test is not simply the first free descriptor
    code = ("import os, sys, time; os.chdir(sys.argv[1]); spare = [open(os.devnull) for _ in range(4)]; "
            "f = open(sys.argv[2], 'w'); print('ready', f.fileno(), flush=True); time.sleep(60)")
    a = subprocess.Popen([sys.executable, "-c", code, str(inside), str(outside / "f")], stdout=subprocess.PIPE, text=True)
    b = subprocess.Popen([sys.executable, "-c", code, str(outside), str(inside / "f")], stdout=subprocess.PIPE, text=True)
    try:
        assert a.stdout.readline().split()[0] == "ready"
        ready, fd = b.stdout.readline().split()
        assert ready == "ready"
        # a: cwd inside; b: a file inside, its cwd in the sibling whose name merely starts with "inside"
        with open(inside / "mine", "w", encoding="ascii"):  # the caller itself is never its own holder
            assert mounts.holders(str(inside)) == {a.pid: "cwd", b.pid: f"fd {fd}"}
            assert mounts.holders(str(inside), exclude=[str(a.pid)]) == {b.pid: f"fd {fd}"}
        assert mounts.holders(str(tmp_path / "insid")) == {}  # a prefix of a name is not a parent
    finally:
        a.kill()
        b.kill()
        a.wait()
        b.wait()
