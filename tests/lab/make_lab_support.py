# SPDX-License-Identifier: GPL-2.0-or-later
"""What the make lab tests share: running scripts/lab as the Makefile does, and reading what an admin
configured out of a CIB independently of the tool (crm or pcs) that wrote it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lxml import etree

from hamail_lab.mailstack import DEFAULT_SUBNET
from hamail_lab.sharedstack import DEFAULT_LABEL

CHECKOUT = Path(__file__).resolve().parents[2]
SUBNET = "198.51.100"  # not make lab's own network, so a lab the user left running is never touched


def lab(workdir: Path, prefix: str, *args: str, timeout: float = 420) -> subprocess.CompletedProcess:
    """Run scripts/lab as the Makefile does, on this test's prefix and subnet."""
    return subprocess.run(["/usr/bin/python3", str(CHECKOUT / "scripts" / "lab"), "--workdir", str(workdir),
                           "--prefix", prefix, "--subnet", SUBNET, *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def configuration(cib_xml: str, prefix: str) -> dict:
    """What an admin configured, independent of the tool: primitives (agent, parameters, meta, recurring
    monitors), clones, groups, constraints and the stonith-enabled property; ids pcs and crm name differently
    (operations, nvpairs, constraint ids) are left out. The files' addresses and disk label are make lab's:
    the lab under test rewrote them for its own subnet and prefix, and so are they here."""
    root = etree.fromstring(cib_xml.encode())
    conf = root.find("configuration")

    def nvpairs(element, tag):
        return {nv.get("name"): nv.get("value").replace(DEFAULT_SUBNET + ".", SUBNET + ".")
                .replace(f"LABEL={DEFAULT_LABEL}", f"LABEL=hamail-{prefix}")
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


def pcs_configuration(cluster, script: Path, prefix: str) -> dict:
    """The configuration the pcs script builds on an empty CIB inside a lab node."""
    node = cluster.first_running()
    empty = cluster.run(node, ["cibadmin", "--empty"]).stdout
    (cluster.data_dir(node) / "pcs-cib.xml").write_text(empty)
    pcs = cluster.run(node, ["sh", str(script), "/var/lib/hamail-lab-node/pcs-cib.xml"], timeout=300)
    assert pcs.returncode == 0, pcs.stdout + pcs.stderr
    return configuration((cluster.data_dir(node) / "pcs-cib.xml").read_text(), prefix)


def live_configuration(cluster, prefix: str) -> dict:
    """The configuration the running lab's CIB holds."""
    return configuration(cluster.run(cluster.first_running(), ["cibadmin", "-Q"]).stdout, prefix)
