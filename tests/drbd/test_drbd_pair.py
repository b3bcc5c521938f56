# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:drbd against a real DRBD 8.4 pair: two qemu TCG guests (lab/hamail_lab/pair.py), with a real
two-node Pacemaker (corosync knet + pacemakerd) inside them, so promotion scores go through crm_attribute
to a live CIB. The agent is run in the guests as pacemaker-execd would run it (OCF environment, timeouts).

Run only these: ``/usr/bin/python3 -m pytest -q -m drbd_pair tests/drbd``. Needs root, qemu-system-x86,
busybox-static and drbd-utils; the kernel package is fetched into /var/cache/hamail/drbd-pair once.
The tests are ordered: each continues from the state the previous one left (one pair for the module).
"""

import os
import shutil

import pytest

pytestmark = pytest.mark.drbd_pair

if os.geteuid() != 0 or not shutil.which("qemu-system-x86_64") or not shutil.which("drbdadm"):
    pytest.skip("needs root, qemu-system-x86 and drbd-utils", allow_module_level=True)

from hamail_lab.pair import Pair  # noqa: E402

# The guests see the host's / read-only at the same paths: the checkout's agent runs there as it is.
AGENT = os.path.realpath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "agents", "drbd"))
RES = """resource r0 {
  protocol C;
  net { after-sb-0pri discard-zero-changes; after-sb-1pri discard-secondary; }
  on pair-a { device /dev/drbd0; disk /dev/vda; address 192.0.2.21:7788; meta-disk internal; }
  on pair-b { device /dev/drbd0; disk /dev/vda; address 192.0.2.22:7788; meta-disk internal; }
}
"""
CLONE_META = {"OCF_RESKEY_CRM_meta_clone_max": "2", "OCF_RESKEY_CRM_meta_clone_node_max": "1",
              "OCF_RESKEY_CRM_meta_promotable": "true", "OCF_RESKEY_CRM_meta_promoted_max": "1",
              "OCF_RESKEY_CRM_meta_promoted_node_max": "1", "OCF_RESKEY_CRM_meta_notify": "true"}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Both guests booted, r0's metadata created on each, Pacemaker formed; always powered off afterwards."""
    with Pair(tmp_path_factory.mktemp("drbd-pair")) as pair:
        for key in "ab":
            pair.write(key, "/etc/drbd.d/r0.res", RES)
            pair.run(key, ["drbdadm", "create-md", "--force", "r0"], check=True)
        pair.cluster_seconds = pair.start_cluster()
        print(f"pair: cluster formed in {pair.cluster_seconds:.0f} s")
        yield pair


def ocf(pair, key, action, *, interval_ms=0, timeout_ms=60000, params=None, meta=True):
    """Run the agent in a guest as pacemaker-execd does; (rc, exit reason, stderr)."""
    env = {"OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": "drbd-r0:0", "OCF_RESOURCE_TYPE": "drbd",
           "OCF_RESOURCE_PROVIDER": "hamail", "OCF_RESKEY_drbd_resource": "r0",
           "OCF_RESKEY_CRM_meta_timeout": str(timeout_ms), "OCF_RESKEY_CRM_meta_interval": str(interval_ms),
           "OCF_RESKEY_crm_feature_set": "3.16.1", "OCF_RESKEY_CRM_meta_on_node": pair.guests[key].name,
           "HA_LOGFACILITY": "none", "HA_debug": "0"}
    if meta:
        env.update(CLONE_META)
    env.update(params or {})
    done = pair.run(key, ["/usr/bin/python3", "-S", AGENT, action], env=env, timeout=timeout_ms / 1000 + 30)
    reason = next((line.split(":", 1)[1] for line in done.stderr.splitlines() if line.startswith("ocf-exit-reason:")),
                  "")
    return done.returncode, reason, done.stderr


def score(pair, key):
    """This node's promotion score for drbd-r0 in the live CIB (None when unset)."""
    done = pair.run(key, ["crm_attribute", "--promotion=drbd-r0", "-N", pair.guests[key].name, "-G", "-q"],
                    env={"OCF_RESOURCE_INSTANCE": "drbd-r0:0"})
    return int(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip().lstrip("-").isdigit() else None


def proc(pair, key):
    """/proc/drbd's status line of minor 0."""
    return next((line for line in pair.run(key, ["cat", "/proc/drbd"]).stdout.splitlines()
                 if line.strip().startswith("0:")), "")


def wait_proc(pair, key, word, timeout=60):
    """Wait until /proc/drbd's minor 0 line contains word."""
    import time
    end = time.monotonic() + timeout
    while word not in proc(pair, key):
        assert time.monotonic() < end, f"{key}: {word} not reached: {proc(pair, key)}"
        time.sleep(0.5)


def test_probe_before_start_is_not_running(pair):
    """A probe on a node where r0 is down says 7 and sets no score."""
    for key in "ab":
        assert ocf(pair, key, "monitor")[0] == 7
        assert score(pair, key) is None


def test_validate_names_the_missing_clone_meta(pair):
    """validate-all under a clone without notify=true says exactly what to set (6)."""
    rc, reason, _ = ocf(pair, "a", "validate-all", params={"OCF_RESKEY_CRM_meta_notify": "false"})
    assert rc == 6
    assert "notify=true" in reason and "drbd-r0-clone" in reason


def test_start_both_is_secondary_secondary_and_inconsistent_data_refuses_promote(pair):
    """start/start: connected Secondary/Secondary; fresh (Inconsistent) data: no score, promote refused."""
    for key in "ab":
        assert ocf(pair, key, "start", params={"OCF_RESKEY_wfc_timeout": "20"})[0] == 0
    wait_proc(pair, "a", "cs:Connected")
    for key in "ab":
        assert "ro:Secondary/Secondary" in proc(pair, key)
        assert ocf(pair, key, "monitor", interval_ms=20000)[0] == 0
        assert score(pair, key) is None  # Inconsistent: linbit's policy gives no score
    rc, reason, _ = ocf(pair, "a", "promote", timeout_ms=20000)
    assert rc == 1
    assert "Refusing to be promoted to Primary without access to UpToDate data" in reason
    assert "ro:Secondary" in proc(pair, "a")


def test_double_start_is_success(pair):
    """A second start on a running Secondary succeeds and changes nothing."""
    assert ocf(pair, "a", "start")[0] == 0
    assert "ro:Secondary/Secondary" in proc(pair, "a")


def test_uptodate_pair_publishes_the_best_score(pair):
    """After a new current UUID with a cleared bitmap (no full sync needed) both are UpToDate: 10000 each."""
    pair.run("a", ["drbdadm", "--", "--clear-bitmap", "new-current-uuid", "r0"], check=True)
    wait_proc(pair, "b", "ds:UpToDate/UpToDate")
    for key in "ab":
        assert ocf(pair, key, "monitor", interval_ms=20000)[0] == 0
        assert score(pair, key) == 10000


def test_promote_write_demote_promote_other_read_back(pair):
    """Promote a, write a file system and a file, demote; promote b and read the file back."""
    assert ocf(pair, "a", "promote")[0] == 0
    assert ocf(pair, "a", "monitor", interval_ms=10000)[0] == 8
    assert "ro:Primary/Secondary" in proc(pair, "a")
    pair.run("a", ["mkfs.ext4", "-q", "-F", "/dev/drbd0"], check=True, timeout=120)
    pair.run("a", ["sh", "-c", "mkdir -p /mnt/r0 && mount /dev/drbd0 /mnt/r0 && echo hamail-drbd-pair > "
                   "/mnt/r0/proof && sync && umount /mnt/r0"], check=True, timeout=120)
    # the peer is Primary: with fail_promote_early_if_peer_primary, b gives up after one attempt
    rc, reason, _ = ocf(pair, "b", "promote", timeout_ms=30000,
                        params={"OCF_RESKEY_fail_promote_early_if_peer_primary": "true"})
    assert (rc, reason) == (1, "Peer node already/still Primary")
    assert "ro:Secondary/Primary" in proc(pair, "b")
    assert ocf(pair, "a", "demote")[0] == 0
    assert ocf(pair, "a", "monitor", interval_ms=20000)[0] == 0
    assert ocf(pair, "b", "promote")[0] == 0
    assert ocf(pair, "b", "monitor", interval_ms=10000)[0] == 8
    read = pair.run("b", ["sh", "-c", "mkdir -p /mnt/r0 && mount -o ro /dev/drbd0 /mnt/r0 && cat /mnt/r0/proof; "
                          "umount /mnt/r0"], timeout=120)
    assert read.stdout.strip() == "hamail-drbd-pair"


def test_double_promote_is_success(pair):
    """Promoting the Primary again succeeds."""
    assert ocf(pair, "b", "promote")[0] == 0


def test_stop_of_primary_demotes_then_downs(pair):
    """stop on the Primary demotes and downs r0, withdraws its score; the peer sees the disk unknown: 1000."""
    assert ocf(pair, "b", "stop")[0] == 0
    assert ocf(pair, "b", "monitor")[0] == 7
    assert score(pair, "b") is None
    wait_proc(pair, "a", "cs:WFConnection")
    assert ocf(pair, "a", "monitor", interval_ms=20000)[0] == 0
    assert score(pair, "a") == 1000  # UpToDate here, Secondary, peer disk unknown
    assert ocf(pair, "b", "stop")[0] == 0  # double stop


def test_post_notification_republishes_the_score(pair):
    """A post notification recomputes the score from DRBD (here: withdrawn by hand, back to 1000)."""
    pair.run("a", ["crm_attribute", "--promotion=drbd-r0", "-N", "pair-a", "-D"], check=True)
    assert score(pair, "a") is None
    notify = {"OCF_RESKEY_CRM_meta_notify_type": "post", "OCF_RESKEY_CRM_meta_notify_operation": "stop",
              "OCF_RESKEY_CRM_meta_notify_stop_uname": "pair-b"}
    assert ocf(pair, "a", "notify", params=notify)[0] == 0
    assert score(pair, "a") == 1000


def test_stop_both(pair):
    """Stopping the last node leaves r0 down everywhere."""
    assert ocf(pair, "a", "stop")[0] == 0
    for key in "ab":
        assert ocf(pair, key, "monitor")[0] == 7
        assert "cs:Unconfigured" in proc(pair, key) or proc(pair, key) == ""


def test_ocf_tester_passes_in_a_guest(pair):
    """resource-agents' ocf-tester against the agent and the real r0 on pair-a (peer down, UpToDate data)."""
    done = pair.run("a", ["ocf-tester", "-n", "drbd-r0", "-o", "drbd_resource=r0", "-o", "wfc_timeout=1", AGENT],
                    timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ocf(pair, "a", "monitor")[0] == 7
