# SPDX-License-Identifier: GPL-2.0-or-later
"""What an admin moving a working heartbeat cluster to hamail types, on the lab's 1-node cluster (issue 13):
crmsh refuses a duplicate unique parameter for ours as for heartbeat's, pcs warns about a deprecated parameter
and accepts the tracing ones, `crm resource trace`/`untrace` work as with ocf-shellfuncs agents. The metadata
side of the same promises is checked without a cluster in tests/core/test_admin_compat.py."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET

import pytest

NODE = "node1"
SETTLE = 90  # seconds for Pacemaker to act on a loaded 2-core box
TRACE_DIR = "/var/lib/heartbeat/trace_ra"


class Node:
    """Commands an admin types, run inside the 1-node lab cluster's node."""

    def __init__(self, cluster):
        self.cluster = cluster

    def run(self, *argv, check=True, timeout=120):
        """Run argv inside the node; with check, fail (with the output) on a non-zero exit."""
        result = self.cluster.run(NODE, [str(a) for a in argv], timeout=timeout)
        if check:
            assert result.returncode == 0, (argv, result.returncode, result.stdout, result.stderr)
        return result

    def configured(self, rsc) -> bool:
        """Whether the CIB has a primitive of that id."""
        return self.run("cibadmin", "-Q", "-o", "resources", "--xpath", f"//primitive[@id='{rsc}']",
                        check=False).returncode == 0

    def primitive_xml(self, rsc) -> str:
        """The primitive's configuration as the CIB holds it."""
        return self.run("cibadmin", "-Q", "-o", "resources", "--xpath", f"//primitive[@id='{rsc}']").stdout

    def delete(self, *rscs):
        """Remove resources (stopping them first) if they are configured."""
        present = [r for r in rscs if self.configured(r)]
        if present:
            self.run("crm", "configure", "delete", "--force", *present, timeout=SETTLE + 30)
            self.cluster.wait_for(lambda: not any(self.configured(r) for r in present), SETTLE, f"{present} deleted")

    def resource(self, rsc):
        """crm_mon's <resource> element of rsc (None when absent)."""
        return ET.fromstring(self.cluster.crm_mon_xml(NODE)).find(f"resources/resource[@id='{rsc}']")

    def started(self, rsc) -> bool:
        """Whether crm_mon shows rsc Started and not failed."""
        el = self.resource(rsc)
        return el is not None and el.get("role") == "Started" and el.get("failed") == "false"

    def monitor_failures(self, rsc) -> list:
        """crm_mon's failed monitor operations of rsc."""
        root = ET.fromstring(self.cluster.crm_mon_xml(NODE))
        return [f.attrib for f in root.findall("failures/failure") if f.get("op_key", "").startswith(f"{rsc}_monitor")]

    def monitor_call(self, rsc, interval_ms) -> str | None:
        """call-id of the recurring monitor's recorded result (a rescheduled monitor records a new call)."""
        out = self.run("cibadmin", "-Q", "-o", "status", "--xpath",
                       f"//lrm_rsc_op[@id='{rsc}_monitor_{interval_ms}']", check=False).stdout
        found = re.search(r'call-id="(\d+)"', out)
        return found.group(1) if found else None

    def traces(self, rsc_type, rsc) -> list:
        """Names of rsc's trace files in the default trace directory."""
        out = self.run("ls", "-1", f"{TRACE_DIR}/{rsc_type}", check=False).stdout
        return sorted(n for n in out.split() if n.startswith(rsc + "."))

    def remove_traces(self, rsc_type, rsc):
        """Remove rsc's trace files (the node sees the host's /var/lib/heartbeat)."""
        self.run("sh", "-c", f'rm -f "$0"/{rsc}.*', f"{TRACE_DIR}/{rsc_type}")


@pytest.fixture
def node(cluster1):
    """The lab cluster's node1."""
    return Node(cluster1)


def unique_name(prefix: str) -> str:
    """A resource id no concurrent session uses (the trace directory is shared with the host)."""
    return f"{prefix}{os.getpid()}"


@pytest.mark.parametrize("provider", ["heartbeat", "hamail"])
def test_crm_refuses_a_second_primitive_with_the_same_ip(node, cluster1, provider):
    first, second = unique_name(f"acip1{provider[:2]}"), unique_name(f"acip2{provider[:2]}")
    ip = f"{cluster1.subnet}.{241 if provider == 'hamail' else 242}"
    try:
        node.run("crm", "configure", "primitive", first, f"ocf:{provider}:IPaddr2", "params", f"ip={ip}",
                 "meta", "target-role=Stopped")
        refused = node.run("crm", "configure", "primitive", second, f"ocf:{provider}:IPaddr2", "params", f"ip={ip}",
                           "meta", "target-role=Stopped", check=False)
        assert refused.returncode != 0, refused.stdout + refused.stderr
        assert f'violate uniqueness for parameter "ip": "{ip}"' in refused.stdout + refused.stderr
        assert node.configured(first) and not node.configured(second)
    finally:
        node.delete(first, second)


def test_pcs_warns_about_a_deprecated_parameter_and_accepts_the_tracing_ones(node, cluster1):
    old, new, traced, unknown = (unique_name(p) for p in ("acold", "acnew", "actr", "acunk"))
    deprecation = "Warning: resource option 'netmask' is deprecated and should not be used, use 'cidr_netmask' instead"
    try:
        created = node.run("pcs", "resource", "create", old, "ocf:hamail:IPaddr2", f"ip={cluster1.subnet}.243",
                           "netmask=24", "--disabled")
        assert deprecation in created.stderr
        created = node.run("pcs", "resource", "create", new, "ocf:hamail:IPaddr2", f"ip={cluster1.subnet}.244",
                           "cidr_netmask=24", "--disabled")
        assert "deprecated" not in created.stderr
        node.run("pcs", "resource", "create", traced, "ocf:hamail:Dummy", "trace_ra=1", "trace_file=/tmp/x.trace",
                 "--disabled")
        refused = node.run("pcs", "resource", "create", unknown, "ocf:hamail:Dummy", "no_such_option=1", "--disabled",
                           check=False)  # pcs does check names: what it accepts is declared
        assert refused.returncode != 0 and "invalid resource option 'no_such_option'" in refused.stderr
        assert all(node.configured(r) for r in (old, new, traced)) and not node.configured(unknown)
    finally:
        node.delete(old, new, traced, unknown)


TRACE_FILE_NAME = r"\.monitor\.\d{4}-\d\d-\d\d\.\d\d:\d\d:\d\d"  # <rsc>.monitor.<date +%F.%T>


def traced_monitor(node, rsc, agent, state):
    """Create rsc (a Dummy) with a 2 s monitor, wait until it runs, `crm resource trace rsc monitor`, and
    return its first trace files once they appear."""
    params = ["params", f"state={state}"] if state else []
    node.run("crm", "configure", "primitive", rsc, agent, *params, "op", "monitor", "interval=2s", "timeout=20s")
    node.cluster.wait_for(lambda: node.started(rsc), SETTLE, f"{rsc} started")
    assert node.traces("Dummy", rsc) == []
    node.run("crm", "resource", "trace", rsc, "monitor")
    return node.cluster.wait_for(lambda: node.traces("Dummy", rsc), SETTLE, f"trace files of {rsc}")


def test_crm_resource_trace_and_untrace(node):
    ours, theirs = unique_name("actrhm"), unique_name("actrhb")
    state = f"/run/{ours}.state"
    try:
        # heartbeat's Dummy, traced by ocf-shellfuncs, names its files as ours must
        assert all(re.fullmatch(theirs + TRACE_FILE_NAME, n) for n in traced_monitor(node, theirs,
                                                                                     "ocf:heartbeat:Dummy", None))
        names = traced_monitor(node, ours, "ocf:hamail:Dummy", state)
        assert all(re.fullmatch(ours + TRACE_FILE_NAME, n) for n in names), names
        path = f"{TRACE_DIR}/Dummy/{names[0]}"
        assert node.run("stat", "-c", "%a", path).stdout.strip() == "600"
        text = node.run("cat", path).stdout
        assert f"trace of ocf:hamail:Dummy monitor for {ours}" in text and "  OCF_RESKEY_trace_ra=1\n" in text
        assert text.endswith(" exit code 0 (SUCCESS)\n"), text

        # untrace: the monitor is rescheduled without trace_ra, and its runs leave no trace
        call = node.monitor_call(ours, 2000)
        assert 'name="trace_ra" value="1"' in node.primitive_xml(ours)
        node.run("crm", "resource", "untrace", ours, "monitor")
        assert "trace_ra" not in node.primitive_xml(ours)
        node.cluster.wait_for(lambda: node.monitor_call(ours, 2000) not in (None, call), SETTLE,
                              "the untraced monitor's first result")
        before = node.traces("Dummy", ours)
        node.run("rm", state)  # the next monitor fails: proof that the untraced monitor runs
        node.cluster.wait_for(lambda: node.monitor_failures(ours), SETTLE, f"{ours}'s monitor to fail")
        node.cluster.wait_for(lambda: node.started(ours) or None, SETTLE, f"{ours} recovered")
        assert node.traces("Dummy", ours) == before
    finally:
        node.delete(ours, theirs)
        node.remove_traces("Dummy", ours)
        node.remove_traces("Dummy", theirs)
