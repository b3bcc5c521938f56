# SPDX-License-Identifier: GPL-2.0-or-later
"""hamail-drbd-fence-peer / hamail-drbd-unfence-peer called by a real DRBD 8.4 in the qemu pair, against the
guests' real two-node Pacemaker: cut the replication link while pair-a is Primary, the fence-peer handler
bans the Promoted role from pair-b, pair-b is refused promotion while banned, and after reconnecting the
resync completes and the after-resync-target handler lifts the ban.

The replication link is its own pair of addresses (198.51.100.21/.22, added to eth0 beside corosync's
192.0.2.x) so that cutting it leaves the cluster whole. It is cut by a blackhole route to pair-a's address
in pair-b: removing pair-b's address instead leaves its DRBD StandAlone (it cannot bind), never reconnecting.
r0 is a promotable clone in the CIB (unmanaged: the agent is run by hand, as pacemaker-execd would, so the
test does not wait for the scheduler's rounds).
The tests are ordered and share one pair: ``flock /tmp/heavy.lock /usr/bin/python3 -m pytest -m drbd_pair
tests/drbd/test_drbd_fencing.py``.
"""

import os
import shutil
import time

import pytest

pytestmark = pytest.mark.drbd_pair

if os.geteuid() != 0 or not shutil.which("qemu-system-x86_64") or not shutil.which("drbdadm"):
    pytest.skip("needs root, qemu-system-x86 and drbd-utils", allow_module_level=True)

from hamail_lab.pair import Pair  # noqa: E402

CHECKOUT = os.path.realpath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
AGENT = os.path.join(CHECKOUT, "agents", "drbd")
HANDLERS = os.path.join(CHECKOUT, "drbd-handlers")
LOG = "/var/log/hamail-drbd-handlers.log"
LINK = {"a": "198.51.100.21", "b": "198.51.100.22"}
CID = "drbd-fence-by-handler-r0-drbd-r0-clone"
RES = f"""resource r0 {{
  protocol C;
  disk {{ fencing resource-only; }}
  handlers {{
    fence-peer "/usr/bin/env HA_LOGFILE={LOG} {HANDLERS}/hamail-drbd-fence-peer --timeout 30 --dc-timeout 20";
    after-resync-target "/usr/bin/env HA_LOGFILE={LOG} {HANDLERS}/hamail-drbd-unfence-peer";
  }}
  net {{ ping-int 5; ping-timeout 10; after-sb-0pri discard-zero-changes; after-sb-1pri discard-secondary; }}
  on pair-a {{ device /dev/drbd0; disk /dev/vda; address {LINK["a"]}:7788; meta-disk internal; }}
  on pair-b {{ device /dev/drbd0; disk /dev/vda; address {LINK["b"]}:7788; meta-disk internal; }}
}}
"""
CLONE = """<clone id="drbd-r0-clone"><meta_attributes id="drbd-r0-clone-meta">
<nvpair id="drbd-r0-clone-promotable" name="promotable" value="true"/>
<nvpair id="drbd-r0-clone-notify" name="notify" value="true"/>
<nvpair id="drbd-r0-clone-managed" name="is-managed" value="false"/></meta_attributes>
<primitive id="drbd-r0" class="ocf" provider="hamail" type="drbd"><instance_attributes id="drbd-r0-params">
<nvpair id="drbd-r0-params-drbd_resource" name="drbd_resource" value="r0"/></instance_attributes></primitive></clone>"""


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Both guests with r0 (fencing and handlers), the replication addresses, Pacemaker formed and the clone
    in its CIB; r0 up on both, UpToDate/UpToDate, pair-a Primary."""
    with Pair(tmp_path_factory.mktemp("drbd-fencing")) as pair:
        for key in "ab":
            pair.run(key, ["ip", "addr", "add", f"{LINK[key]}/24", "dev", "eth0"], check=True)
            pair.write(key, "/etc/drbd.d/r0.res", RES)
            pair.run(key, ["drbdadm", "create-md", "--force", "r0"], check=True)
        print(f"pair: cluster formed in {pair.start_cluster():.0f} s")
        pair.run("a", ["cibadmin", "--create", "--scope", "resources", "--xml-text", CLONE], check=True)
        for key in "ab":
            assert agent(pair, key, "start", OCF_RESKEY_wfc_timeout="30")[0] == 0
        wait_for(pair, "a", "cs:Connected")
        pair.run("a", ["drbdadm", "--", "--clear-bitmap", "new-current-uuid", "r0"], check=True)
        wait_for(pair, "b", "ds:UpToDate/UpToDate")
        assert agent(pair, "a", "promote")[0] == 0
        yield pair


def agent(pair, key, action, timeout_ms=60000, **params):
    """ocf:hamail:drbd's action in a guest, with the environment pacemaker-execd gives a clone instance."""
    env = dict(OCF_ROOT="/usr/lib/ocf", OCF_RESOURCE_INSTANCE="drbd-r0:0", OCF_RESOURCE_TYPE="drbd",
               OCF_RESOURCE_PROVIDER="hamail", OCF_RESKEY_drbd_resource="r0", OCF_RESKEY_crm_feature_set="3.16.1",
               OCF_RESKEY_CRM_meta_timeout=str(timeout_ms), OCF_RESKEY_CRM_meta_interval="0",
               OCF_RESKEY_CRM_meta_on_node=pair.guests[key].name, OCF_RESKEY_CRM_meta_clone_max="2",
               OCF_RESKEY_CRM_meta_clone_node_max="1", OCF_RESKEY_CRM_meta_promoted_max="1",
               OCF_RESKEY_CRM_meta_promoted_node_max="1", OCF_RESKEY_CRM_meta_promotable="true",
               OCF_RESKEY_CRM_meta_notify="true", HA_LOGFACILITY="none", **params)
    done = pair.run(key, ["/usr/bin/python3", "-S", AGENT, action], env=env, timeout=timeout_ms / 1000 + 30)
    lines = [line.partition(":")[2] for line in done.stderr.splitlines() if line.startswith("ocf-exit-reason:")]
    return done.returncode, (lines or [""])[0]


def drbd_line(pair, key):
    """/proc/drbd's line for minor 0 in a guest."""
    text = pair.run(key, ["cat", "/proc/drbd"]).stdout
    return next((line.strip() for line in text.splitlines() if line.strip().startswith("0:")), "")


def wait_for(pair, key, word, timeout=180):
    """Wait until /proc/drbd's minor 0 line in a guest shows word."""
    end = time.monotonic() + timeout
    while word not in drbd_line(pair, key):
        assert time.monotonic() < end, f"{key}: no {word} in {drbd_line(pair, key)!r}; handlers: {log(pair, key)}"
        time.sleep(1)


def constraint(pair, key):
    """The fence constraint as the guest's CIB holds it (None when absent)."""
    from lxml import etree
    done = pair.run(key, ["cibadmin", "--query", "--local", "--scope", "constraints"], check=True)
    return next((e for e in etree.fromstring(done.stdout.encode()).iter("rsc_location") if e.get("id") == CID),
                None)


def log(pair, key):
    """The handlers' log in a guest."""
    return pair.run(key, ["cat", LOG]).stdout.strip().replace("\n", " | ")


def digest(pair, key):
    """A checksum of the first MiB of r0's backing disk (where the test writes while the link is cut)."""
    command = "dd if=/dev/vda bs=64k count=16 iflag=direct 2>/dev/null | md5sum"  # direct: not a stale cache
    return pair.run(key, ["sh", "-c", command], check=True).stdout


def test_cutting_the_link_bans_the_promoted_role_from_the_peer(pair):
    """pair-a Primary loses pair-b: fence-peer places the constraint (in both nodes' CIB), DRBD takes exit 4."""
    assert "ro:Primary/Secondary" in drbd_line(pair, "a")
    assert constraint(pair, "a") is None
    pair.run("b", ["ip", "route", "add", "blackhole", f"{LINK['a']}/32"], check=True)
    wait_for(pair, "a", "ds:UpToDate/Outdated")  # only fence-peer exit 4, 5 or 7 outdates the peer
    for key in "ab":
        placed = constraint(pair, key)
        assert placed is not None, f"{key}: no {CID}; handlers: {log(pair, 'a')}"
        assert placed.get("rsc") == "drbd-r0-clone"
        rule, = placed.iterfind("rule")
        assert (rule.get("role"), rule.get("score")) == ("Promoted", "-INFINITY")
        expression, = rule.iterfind("expression")
        assert [expression.get(k) for k in ("attribute", "operation", "value")] == ["#uname", "ne", "pair-a"]
    assert "peer is reachable, my disk is UpToDate: placed constraint" in log(pair, "a")
    dmesg = pair.run("a", ["dmesg"]).stdout
    assert "fence-peer" in dmesg and "exit code 4" in dmesg, dmesg[-2000:]


def test_the_banned_peer_is_refused_promotion(pair):
    """pair-a writes on; pair-b (UpToDate in its own eyes) tries to become Primary: DRBD asks its fence-peer
    handler, which finds the ban keeping Promoted on pair-a and answers 1, so DRBD refuses; the agent too."""
    pair.run("a", ["dd", "if=/dev/urandom", "of=/dev/drbd0", "bs=64k", "count=16", "oflag=direct"], check=True)
    done = pair.run("b", ["drbdadm", "primary", "r0"], timeout=120)
    print(f"drbdadm primary on pair-b: exit {done.returncode}: {done.stderr.strip()}")
    assert done.returncode != 0
    assert "Refusing to be Primary while peer is not outdated" in done.stderr
    assert "keeps the Promoted role on pair-a: not replaced, peer not outdated" in log(pair, "b")
    # The agent gives up at DRBD's first refusal and says why (retrying would end at its timeout with
    # "stuck in the kernel", running the handler at every attempt).
    rc, why = agent(pair, "b", "promote", timeout_ms=60000)
    assert rc == 1 and "while the peer is not outdated" in why, why
    assert "ro:Secondary" in drbd_line(pair, "b")
    assert constraint(pair, "a") is not None


def test_reconnect_resyncs_and_the_unfence_handler_lifts_the_ban(pair):
    """Link back: pair-b resyncs from pair-a, after-resync-target runs the unfence handler there, the ban goes."""
    assert digest(pair, "a") != digest(pair, "b")
    pair.run("b", ["ip", "route", "del", "blackhole", f"{LINK['a']}/32"], check=True)
    wait_for(pair, "a", "ds:UpToDate/UpToDate")
    end = time.monotonic() + 120
    while constraint(pair, "a") is not None:
        assert time.monotonic() < end, f"{CID} still in the CIB; handlers on pair-b: {log(pair, 'b')}"
        time.sleep(1)
    assert "every disk here and on the peer is UpToDate: removed constraint" in log(pair, "b")
    assert digest(pair, "a") == digest(pair, "b")
    assert "ro:Primary/Secondary" in drbd_line(pair, "a")
