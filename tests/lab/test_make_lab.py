# SPDX-License-Identifier: GPL-2.0-or-later
"""`make lab`'s promise, as README states it: the Galera mail cluster on three nodes with STONITH through
fence_ipmi and hamail-vbmc; a mail sent to the mail VIP is read back over IMAP; the pcs script configures the
same cluster as the crm file; the quick drills pass with nothing lost (a service killed -9 is restarted in
place; the node running the mail group powered off through its BMC is fenced, everything moves and the node
rejoins); `make lab-down` leaves nothing of the lab on the host."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lxml import etree

from hamail_lab import Cluster
from hamail_lab.agents import FENCE_DIR, OCF_PROVIDER_DIR
from hamail_lab.drills import stack_ready
from hamail_lab.fixtures import require_root
from hamail_lab.hostsys import link_names, netns_names
from hamail_lab.mailstack import DEFAULT_SUBNET, RESOURCES

CHECKOUT = Path(__file__).resolve().parents[2]
PREFIX = "hmk"  # not make lab's own hml: a lab the user left running is never touched
SUBNET = "198.51.100"  # nor its network: both labs give the host an address on their bridge
PCS_SCRIPT = CHECKOUT / "lab" / "stacks" / "galera-mail.pcs.sh"


def lab(workdir: Path, *args: str, timeout: float = 420) -> subprocess.CompletedProcess:
    """Run scripts/lab as the Makefile does."""
    return subprocess.run(["/usr/bin/python3", str(CHECKOUT / "scripts" / "lab"), "--workdir", str(workdir),
                           "--prefix", PREFIX, "--subnet", SUBNET, *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def configuration(cib_xml: str) -> dict:
    """What an admin configured, independent of the tool: primitives (agent, parameters, meta, recurring
    monitors), clones, groups, constraints and the stonith-enabled property; ids pcs and crm name differently
    (operations, nvpairs, constraint ids) are left out."""
    root = etree.fromstring(cib_xml.encode())
    conf = root.find("configuration")

    def nvpairs(element, tag):
        return {nv.get("name"): nv.get("value").replace(DEFAULT_SUBNET + ".", SUBNET + ".")
                for block in element.findall(tag) for nv in block.findall("nvpair")}

    primitives = {}
    for prim in conf.iter("primitive"):
        if prim.get("class") == "stonith":
            continue
        monitors = sorted((op.get("interval"), op.get("role") or "", op.get("timeout"),
                           nvpairs(op, "instance_attributes").get("OCF_CHECK_LEVEL", "0"))
                          for op in prim.iterfind("operations/op") if op.get("name") == "monitor")
        primitives[prim.get("id")] = (prim.get("class"), prim.get("provider"), prim.get("type"),
                                      nvpairs(prim, "instance_attributes"), monitors)
    clones = {c.get("id"): (c.find("primitive").get("id"), {k: v for k, v in nvpairs(c, "meta_attributes").items()
                                                             if k != "target-role"})
              for c in conf.iter("clone")}
    groups = {g.get("id"): [p.get("id") for p in g.findall("primitive")] for g in conf.iter("group")}
    # Locations are the lab's fence devices; a role of Started is the default that pcs writes out and crm not.
    constraints = sorted(
        (c.tag, tuple(sorted((k, v) for k, v in c.attrib.items()
                             if k != "id" and not (k.endswith("rsc-role") and v == "Started"))))
        for c in conf.find("constraints") if c.tag != "rsc_location")
    stonith = {nv.get("name"): nv.get("value") for nv in conf.iter("nvpair")
               if nv.get("name") in ("stonith-enabled", "resource-stickiness")}
    return {"primitives": primitives, "clones": clones, "groups": groups, "constraints": constraints,
            "stonith": stonith}


def test_make_lab_runs_the_mail_cluster_drills_pass_and_lab_down_leaves_the_host_as_it_was(tmp_path):
    """up: the whole stack runs; mail round trip; pcs == crm; kill-service and power-off drills; down: nothing left."""
    require_root()
    workdir = tmp_path / "lab"
    up = lab(workdir, "up")
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        assert "stonith_admin --reboot node3" in up.stdout  # the command README tells users to try
        cluster = Cluster.load(workdir)
        assert stack_ready(cluster)
        # A mail user: send through the mail VIP, read it back over IMAP (what README tells users to try).
        sent = lab(workdir, "send", timeout=60)
        assert sent.returncode == 0, sent.stderr
        token = sent.stdout.split("token ")[1].strip(")\n")
        read = cluster.wait_for(lambda: (lambda r: r if token[:8] in r.stdout else None)(lab(workdir, "read",
                                                                                              timeout=60)),
                                60, "the mail in the INBOX")
        assert read.returncode == 0 and "1 message(s)" in read.stdout, read.stdout + read.stderr
        # The pcs script builds, on an empty CIB, the configuration crm loaded into the running cluster.
        node = cluster.first_running()
        empty = cluster.run(node, ["cibadmin", "--empty"]).stdout
        cib_file = "/var/lib/hamail-lab-node/pcs-cib.xml"
        (cluster.data_dir(node) / "pcs-cib.xml").write_text(empty)
        pcs = cluster.run(node, ["sh", str(PCS_SCRIPT), cib_file], timeout=300)
        assert pcs.returncode == 0, pcs.stdout + pcs.stderr
        live = configuration(cluster.run(node, ["cibadmin", "-Q"]).stdout)
        offline = configuration((cluster.data_dir(node) / "pcs-cib.xml").read_text())
        assert set(live["primitives"]) >= set(RESOURCES) | {"db"}
        assert offline == live
        # The quick drills: each checks continuously that no VIP is held by two nodes and, after recovery,
        # that every accepted mail is readable and every acknowledged database row present.
        for name in ("kill-service", "power-off"):
            drill = lab(workdir, "--name", name, "--no-record", "drill", timeout=900)
            assert drill.returncode == 0 and "PASSED" in drill.stdout, drill.stdout + drill.stderr[-3000:]
            assert "mails accepted 0" not in drill.stdout and "acknowledged 0" not in drill.stdout, drill.stdout
    finally:
        down = lab(workdir, "down", timeout=180)
    assert down.returncode == 0, down.stderr
    assert not [ns for ns in netns_names() if ns.startswith(f"{PREFIX}-")]
    assert not [link for link in link_names() if link.startswith(f"{PREFIX}-")]
    # The shared directory's mount point and the agents existed only inside the nodes.
    assert not Path("/srv/hamail-lab").exists()
    for path in [OCF_PROVIDER_DIR] + sorted(FENCE_DIR.glob("fence_*")):
        assert not (path.is_symlink() and os.path.realpath(path).startswith(f"{CHECKOUT}/")), path
    mounts = Path("/proc/self/mounts").read_text()
    assert str(workdir) not in mounts
